//! Receiving descriptors over unix sockets.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Receive one message and the file descriptors passed with it (`SCM_RIGHTS`): a seccomp
/// listener as an agent would, or the pty master a container's init sends. Returns the number
/// of payload bytes read into `buffer`.
pub fn recv_with_fds(socket: BorrowedFd<'_>, buffer: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [std::io::IoSliceMut::new(buffer)];
    let message = recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(rights) = cmsg {
            // SAFETY: descriptors received through SCM_RIGHTS were just installed in this
            // process by the kernel and nothing else refers to them.
            fds.extend(rights.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    Ok((message.bytes, fds))
}
