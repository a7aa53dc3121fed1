//! Handing the notify listener to the seccomp agent at `listenerPath`, as runc does: connect a
//! `SOCK_STREAM` unix socket, send the container process state as JSON in one `sendmsg` with the
//! listener fd in `SCM_RIGHTS` (named `seccompFd` in `fds`), then close the connection.
//!
//! runc does this from the **parent** (the runtime process, which the filter does not confine):
//! the child installs the filter, writes the listener's fd number to the parent over the sync
//! socket with write(2) (the reason NOTIFY may not cover `write`), and waits; the parent copies
//! the fd with `pidfd_getfd` ([`fetch_listener`]), lets the child go on, then calls
//! [`send_to_listener`] with status `creating` (`running` for `exec`).

use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use oci_spec::runtime::{ContainerProcessState, SECCOMP_FD_NAME, State};

use super::SeccompError;

/// The record sent to the agent: the container state, the process pid, `listenerMetadata`.
pub fn listener_state(state: &State, pid: i32, metadata: Option<&str>) -> ContainerProcessState {
    let mut process_state = ContainerProcessState::default();
    process_state.set_version(state.version().clone());
    process_state.set_fds(vec![SECCOMP_FD_NAME.to_owned()]);
    process_state.set_pid(pid);
    process_state.set_metadata(metadata.map(str::to_owned));
    process_state.set_state(state.clone());
    process_state
}

/// Copy the listener fd `child_fd` out of the child behind `child_pidfd`.
pub fn fetch_listener(child_pidfd: BorrowedFd<'_>, child_fd: RawFd) -> Result<OwnedFd, SeccompError> {
    crate::sys::seccomp::pidfd_getfd(child_pidfd, child_fd).map_err(SeccompError::FetchListener)
}

/// Send `state` and `listener` to the agent listening on `path`.
pub fn send_to_listener(
    path: &Path,
    state: &ContainerProcessState,
    listener: BorrowedFd<'_>,
) -> Result<(), SeccompError> {
    let json = serde_json::to_vec(state).map_err(SeccompError::EncodeListenerState)?;
    let send_error = |source: std::io::Error| SeccompError::SendListener { path: path.to_owned(), source };
    let mut stream = UnixStream::connect(path).map_err(send_error)?;
    let fds = [listener.as_raw_fd()];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&json)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|errno| send_error(errno.into()))?;
    // A stream socket may take the payload in pieces; the fd went with the first one, as the
    // runtime-spec requires.
    stream.write_all(&json[sent..]).map_err(send_error)?;
    Ok(())
}

/// The agent side: read one container process state and its fds from a runtime connection
/// (used by tests and by anything that wants to act as a seccomp agent).
pub fn receive_from_runtime(stream: &mut UnixStream) -> Result<(ContainerProcessState, Vec<OwnedFd>), SeccompError> {
    let receive_error = |source: std::io::Error| SeccompError::ReceiveListener { source };
    let mut buffer = vec![0u8; 64 * 1024];
    let (len, fds) =
        crate::sys::socket::recv_with_fds(stream.as_fd(), &mut buffer).map_err(|errno| receive_error(errno.into()))?;
    buffer.truncate(len);
    stream.read_to_end(&mut buffer).map_err(receive_error)?;
    let state = serde_json::from_slice(&buffer).map_err(SeccompError::DecodeListenerState)?;
    Ok((state, fds))
}
