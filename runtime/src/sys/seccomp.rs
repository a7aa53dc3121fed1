//! seccomp(2) filter installation and pidfd_getfd(2), used to fetch the notify listener fd from
//! the container child.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use seccompiler::sock_filter;

use super::check;

pub const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1 << 0;
pub const SECCOMP_FILTER_FLAG_LOG: u32 = 1 << 1;
pub const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 1 << 2;
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
pub const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: u32 = 1 << 4;
pub const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// Load a filter on the calling thread (and its siblings with TSYNC). Returns the notify
/// listener when `flags` has `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
///
/// Needs no_new_privs or CAP_SYS_ADMIN, as the kernel demands.
pub fn set_mode_filter(program: &[sock_filter], flags: u32) -> nix::Result<Option<OwnedFd>> {
    let len = u16::try_from(program.len()).map_err(|_| nix::errno::Errno::EINVAL)?;
    let fprog = libc::sock_fprog { len, filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut() };
    // SAFETY: `fprog` points at `program`, a live slice of `len` instructions whose layout is
    // `struct sock_filter` (seccompiler's type is #[repr(C)] with the same fields); the kernel
    // copies the program before returning and keeps no pointer to it.
    let ret = unsafe {
        libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, libc::c_ulong::from(flags), &raw const fprog)
    };
    let ret = check(ret)?;
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = RawFd::try_from(ret).map_err(|_| nix::errno::Errno::EBADF)?;
    // SAFETY: with NEW_LISTENER a successful seccomp() returns a new file descriptor that
    // nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Duplicate file descriptor `target` of the process behind `pidfd` into this process
/// (Linux 5.6+; needs ptrace access to it, which the runtime parent has over its child).
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target: RawFd) -> nix::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on integer arguments; the kernel validates both descriptors.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
    let fd = RawFd::try_from(check(ret)?).map_err(|_| nix::errno::Errno::EBADF)?;
    // SAFETY: pidfd_getfd returns a new close-on-exec descriptor owned by the caller.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
