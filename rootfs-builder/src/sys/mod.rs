//! The only place with `unsafe` code: thin, typed wrappers over system calls that `nix` lacks
//! (extended attributes, the new mount API, process descriptors).
//!
//! Every wrapper returns `nix::Result` and owns any file descriptor it creates as an `OwnedFd`.
//! Every `unsafe` block carries a `// SAFETY:` comment naming the invariant it relies on.
#![allow(unsafe_code)]

pub mod mount;
pub mod process;
pub mod xattr;

use nix::errno::Errno;

/// Turn a raw syscall return value into a `nix::Result`.
fn check(ret: libc::c_long) -> nix::Result<libc::c_long> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}
