//! A clean signal state for the programs the runtime starts.
//!
//! Ignored dispositions and the signal mask survive `execve`. The runtime's own ones (Rust's
//! runtime ignores SIGPIPE before `main`; glibc's posix_spawn leaves its internal signals ignored
//! in the child) and its caller's (nohup, systemd's `IgnoreSIGPIPE=yes`, a Python parent) must
//! not reach a container's process or a hook: a shell cannot trap a signal that was ignored when
//! it started, and a producer on a closed pipe should die of SIGPIPE, not see EPIPE.

use std::process::Command;

use super::check;

/// The kernel's `struct sigaction` for `rt_sigaction` as x86_64 and arm64 lay it out: handler,
/// flags, restorer, mask (no restorer is needed to install SIG_DFL).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The size of the kernel's signal set: 64 signals.
const SIGSET_SIZE: usize = 8;

/// Every catchable signal's disposition back to SIG_DFL, then an empty signal mask.
///
/// Raw system calls only (no allocation, no lock, no libc signal wrapper that refuses glibc's
/// internal signals 32 and 33), so it is safe between fork and exec. About 64 `rt_sigaction`
/// calls and one `rt_sigprocmask`: a few microseconds.
pub fn reset_signal_state() -> nix::Result<()> {
    let default = KernelSigaction { handler: libc::SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    for signo in 1..=64 {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `default` is a valid kernel sigaction that outlives the call; the old-action
        // pointer is null (not wanted); the size is the kernel's sigset size. SIG_DFL installs no
        // handler, so no code of ours can be called asynchronously because of it.
        check(unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signo,
                std::ptr::addr_of!(default),
                std::ptr::null_mut::<KernelSigaction>(),
                SIGSET_SIZE,
            )
        })?;
    }
    let empty: u64 = 0;
    // SAFETY: `empty` is a valid kernel sigset that outlives the call; the old mask is not wanted.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            std::ptr::addr_of!(empty),
            std::ptr::null_mut::<u64>(),
            SIGSET_SIZE,
        )
    })?;
    Ok(())
}

/// Start `cmd`'s program with a clean signal state ([`reset_signal_state`] in the child, after
/// fork and before exec).
pub fn exec_with_clean_signals(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec; it only makes raw system calls
    // (async-signal-safe: no allocation, no lock) and converts the errno into io::Error without
    // allocating (`from_raw_os_error`).
    unsafe { cmd.pre_exec(|| reset_signal_state().map_err(|e| std::io::Error::from_raw_os_error(e as i32))) }
}
