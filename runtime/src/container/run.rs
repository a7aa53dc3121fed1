//! `run`: create + start in one process. In the foreground it forwards signals to the
//! container, waits for it and returns its exit status (128+n for a signal); `--detach` returns
//! once it runs.

use std::os::fd::AsFd;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::create::{CreateOptions, create};
use super::delete::{destroy, stop_processes};
use super::start::{run_poststart, start};
use crate::error::{Error, ErrorKind};
use crate::sys::process::pidfd_send_signal;

pub fn run(opts: &CreateOptions, detach: bool, keep: bool) -> Result<i32, Error> {
    if detach {
        let mut o = opts.clone();
        o.foreground = false;
        create(&o)?;
        start(&o.root, &o.id)?;
        return Ok(0);
    }
    // Block the signals we forward before the clone; the child unblocks them for itself.
    let mut forwarded = SigSet::all();
    for s in [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGILL, Signal::SIGFPE, Signal::SIGKILL, Signal::SIGSTOP] {
        forwarded.remove(s);
    }
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), Some(&mut old))
        .map_err(|e| Error::new(ErrorKind::Other, e))?;
    let sfd = SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC).map_err(|e| Error::new(ErrorKind::Other, e))?;

    let created = create(&CreateOptions { foreground: true, ..opts.clone() })?;
    run_poststart(&created.state);
    let init_pid = created.init.pid;
    let code = loop {
        let Some(info) = sfd.read_signal().map_err(|e| Error::new(ErrorKind::Other, e))? else { continue };
        let signo = info.ssi_signo as i32;
        if signo == Signal::SIGCHLD as i32 {
            match waitpid(init_pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => break code,
                Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
                _ => continue,
            }
        }
        // The container may be gone already; its exit arrives as SIGCHLD next.
        let _maybe_exited = pidfd_send_signal(created.init.pidfd.as_fd(), signo);
    };
    if !keep {
        let mut state = created.state.clone();
        state.pid = init_pid.as_raw();
        // Other processes of the container (without its own pid namespace) die with it.
        stop_processes(&state);
        destroy(&created.dir, &state)?;
    }
    let _restored = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    Ok(code)
}
