//! The only place with `unsafe` code: thin, typed wrappers over system calls that `nix` lacks
//! (clone3, the new mount API, mount_setattr, pidfd, close_range, a few ioctls, seccomp, bpf,
//! interface flags).
//!
//! Every wrapper returns `nix::Result` and owns any file descriptor it creates as an `OwnedFd`.
//! Every `unsafe` block carries a `// SAFETY:` comment naming the invariant it relies on.
#![allow(unsafe_code)]

pub mod bpf;
pub mod mount;
pub mod net;
pub mod process;
pub mod procfs;
pub mod seccomp;
pub mod signals;
pub mod socket;
pub mod tty;
pub mod userns;
pub mod xattr;

use std::os::fd::BorrowedFd;

use nix::errno::Errno;

/// `AT_FDCWD` as a descriptor for the `*at` wrappers: "relative to the current directory".
pub fn at_fdcwd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD (-100) is never a real descriptor; the kernel reads it as "the current
    // directory" in every *at call, and nothing ever closes it.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// Turn a raw syscall return value into a `nix::Result`.
fn check(ret: libc::c_long) -> nix::Result<libc::c_long> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}
