//! The suite's only unsafe code: taking ownership of a descriptor received over SCM_RIGHTS.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Owns a descriptor that `recvmsg` just installed in this process.
pub fn own_received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in our table when delivering SCM_RIGHTS; nothing else in
    // this process knows about it, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
