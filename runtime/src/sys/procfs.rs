//! The runtime's own procfs for writes into /proc from inside the container's namespaces
//! (sysctl, oom_score_adj, LSM exec labels, the exec fifo reopen).

use std::os::fd::{BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

use super::mount::FsContext;

/// A procfs instance of our own, detached: nothing the container mounts can cover its files
/// (the CVE-2025-52881 class), and it shows the container's pid namespace.
pub fn private() -> Result<OwnedFd, Errno> {
    FsContext::open(c"proc")?.mount(0)
}

/// Write a /proc file through the private procfs, refusing symlinks and mount crossings.
pub fn write(procfs: BorrowedFd<'_>, rel: &str, value: &[u8]) -> Result<(), Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_TRUNC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_XDEV | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(procfs, rel, how)?;
    let n = nix::unistd::write(&fd, value)?;
    if n != value.len() { Err(Errno::EIO) } else { Ok(()) }
}
