//! Thin, typed wrappers over Linux system calls that `nix` lacks, used by more than one strata
//! crate. Each crate's own `sys` module re-exports what it uses from here and keeps the wrappers
//! only it needs; this crate holds no policy and no type of either product (see ARCHITECTURE.md,
//! "Crates").
//!
//! Every wrapper returns `nix::Result` and owns any file descriptor it creates as an `OwnedFd`.
//! Every `unsafe` block carries a `// SAFETY:` comment naming the invariant it relies on.
#![allow(unsafe_code)]

pub mod mount;
pub mod xattr;

use nix::errno::Errno;

/// Turn a raw syscall return value into a `nix::Result`.
fn check(ret: libc::c_long) -> nix::Result<libc::c_long> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}
