//! Parent ⇄ child messages over a SOCK_SEQPACKET socketpair: one datagram per message, so no
//! framing; a closed peer reads as end-of-file.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv, send};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Message};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ToChild {
    /// The parent has written the id maps: the child may set up its namespaces and rootfs.
    Go,
    /// The parent has placed the child in its cgroup (v1 writes to cgroup.procs wait for an RCU
    /// grace period, ~10 ms: the child builds its rootfs meanwhile).
    Placed,
    /// prestart and createRuntime hooks are done; carries the state JSON for createContainer
    /// and startContainer hooks.
    HooksDone { state: String },
    /// The seccomp listener reached the agent at `listenerPath`.
    ListenerSent,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ToParent {
    /// Mounts are in place, before pivot_root: time for prestart and createRuntime hooks.
    RunHooks,
    /// Everything is set up; the child now waits for `start`.
    Ready,
    /// A seccomp filter with SCMP_ACT_NOTIFY is installed; its listener is this fd of the child.
    SeccompListener {
        fd: i32,
    },
    Failed(Failure),
}

/// An error from the child: its message chain and kind, rebuilt into an [`Error`] by the parent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub kind: String,
}

impl Failure {
    pub fn from_error(e: &Error) -> Self {
        Self { message: e.chain(), kind: format!("{:?}", e.kind()) }
    }

    pub fn into_error(self) -> Error {
        let kind = match self.kind.as_str() {
            "NotFound" => ErrorKind::NotFound,
            "AlreadyExists" => ErrorKind::AlreadyExists,
            "InvalidSpec" => ErrorKind::InvalidSpec,
            "InvalidState" => ErrorKind::InvalidState,
            "PermissionDenied" => ErrorKind::PermissionDenied,
            "Unsupported" => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        };
        Error::new(kind, Message(self.message))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("send to the {0}")]
    Send(&'static str, #[source] Errno),
    #[error("receive from the {0}")]
    Recv(&'static str, #[source] Errno),
    #[error("bad message from the {0}: {1}")]
    Decode(&'static str, String),
}

/// One end of the socketpair. `peer` names the other side in errors.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    peer: &'static str,
}

const MAX_MESSAGE: usize = 64 * 1024;

impl Channel {
    pub fn new(fd: OwnedFd, peer: &'static str) -> Self {
        Self { fd, peer }
    }

    /// Send with write(2) and wait for the answer with read(2): the two calls runc makes after a
    /// notifying seccomp filter is in place (a profile may notify on sendto/recvfrom, which would
    /// wait for the very agent this exchange hands the listener to).
    pub fn exchange_plain<T: Serialize, R: DeserializeOwned>(&self, msg: &T) -> Result<Option<R>, ChannelError> {
        let bytes = self.encode(msg)?;
        nix::unistd::write(&self.fd, &bytes).map_err(|e| ChannelError::Send(self.peer, e))?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ChannelError::Recv(self.peer, e)),
            }
        };
        self.decode(&buf[..n])
    }

    fn encode<T: Serialize>(&self, msg: &T) -> Result<Vec<u8>, ChannelError> {
        serde_json::to_vec(msg).map_err(|e| ChannelError::Decode(self.peer, e.to_string()))
    }

    /// One received message; `None` for an empty read (the peer closed its end).
    fn decode<R: DeserializeOwned>(&self, bytes: &[u8]) -> Result<Option<R>, ChannelError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(bytes).map(Some).map_err(|e| ChannelError::Decode(self.peer, e.to_string()))
    }

    pub fn raw(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), ChannelError> {
        let bytes = self.encode(msg)?;
        loop {
            match send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ChannelError::Send(self.peer, e)),
            }
        }
    }

    /// The next message, or `None` when the peer closed its end (exited).
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ChannelError::Recv(self.peer, e)),
            }
        };
        self.decode(&buf[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

    #[test]
    fn messages_round_trip_and_eof_is_none() {
        let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap();
        let parent = Channel::new(a, "child");
        let child = Channel::new(b, "parent");
        let failure =
            Failure { message: "mount proc on /proc: Permission denied".into(), kind: "PermissionDenied".into() };
        child.send(&ToParent::Failed(failure.clone())).unwrap();
        assert_eq!(parent.recv::<ToParent>().unwrap(), Some(ToParent::Failed(failure.clone())));
        assert_eq!(failure.into_error().kind(), ErrorKind::PermissionDenied);
        drop(child);
        assert_eq!(parent.recv::<ToParent>().unwrap(), None);
    }
}
