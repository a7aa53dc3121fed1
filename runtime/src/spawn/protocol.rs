//! Parent ⇄ child messages over a SOCK_SEQPACKET socketpair: one datagram per message, so no
//! framing; a closed peer reads as end-of-file.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv, send};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, errno_of};

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

/// The step of the child's sequence that failed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Step {
    /// Talking to the parent.
    Sync,
    /// Non-dumpable, before anything of the container is joined.
    Prepare,
    /// Becoming root in a new user namespace, joining and creating namespaces.
    Namespaces,
    /// Moving into the cgroup.
    Cgroup,
    /// The private procfs.
    Procfs,
    /// Mounts, devices, pivot_root, masked and read-only paths.
    Rootfs,
    /// createContainer and startContainer hooks.
    Hooks,
    /// The session, the pty and the console socket.
    Terminal,
    /// Hostname, domainname, sysctl, session keyring.
    Settings,
    /// AppArmor profile, SELinux label.
    Lsm,
    /// rlimits, scheduling, signal state, capabilities, user, cwd, executable lookup, personality.
    Process,
    /// Installing the seccomp filter.
    Seccomp,
    /// Waiting for `start` on the exec fifo.
    Start,
    /// execve of the user's program.
    Execve,
}

/// A failure of the child as it crosses the fork: which step, the kind, the chain of messages
/// down to the system error, and that error's number. The parent rebuilds a typed error from it
/// ([`Failure::into_error`]) whose chain reads as the child's did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub kind: ErrorKind,
    /// The messages of the chain above the system error, joined with ": "
    /// (`exec: "/bin/x": stat /bin/x`).
    pub detail: String,
    /// The system error the chain ends in, if it ends in one.
    pub errno: Option<i32>,
}

impl Failure {
    pub fn new(step: Step, kind: ErrorKind, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut detail = Vec::new();
        let mut errno = None;
        for link in std::iter::successors(Some(error), |e| e.source()) {
            if let Some(n) = errno_of(link) {
                errno = Some(n as i32);
                break;
            }
            detail.push(link.to_string());
        }
        Self { step, kind, detail: detail.join(": "), errno }
    }

    pub fn into_error(self) -> Error {
        crate::logging::debug(&format!("the child failed at step {:?}", self.step));
        let errno = self.errno.map(Errno::from_raw);
        Error::new(self.kind, ChildFailed { detail: self.detail, errno })
    }

    /// The report a released init leaves on the exec fifo for `start`: "E" and the record.
    pub fn to_report(&self) -> Vec<u8> {
        let mut out = b"E".to_vec();
        // A record of strings and numbers always serialises.
        out.extend_from_slice(serde_json::to_string(self).unwrap_or_default().as_bytes());
        out
    }

    /// Read what [`Failure::to_report`] wrote, without its "E". An init started by another
    /// version of the runtime may have written plain text: that is the message.
    pub fn from_report(bytes: &[u8]) -> Error {
        match serde_json::from_slice::<Failure>(bytes) {
            Ok(failure) => failure.into_error(),
            Err(_) => Error::msg(ErrorKind::Other, String::from_utf8_lossy(bytes).into_owned()),
        }
    }
}

/// A failure of the child, rebuilt in the parent.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ChildFailed {
    detail: String,
    #[source]
    errno: Option<Errno>,
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

    /// A message already queued, without waiting: `Ok(None)` when there is none (or the peer is
    /// gone without one).
    pub fn try_recv<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => break n,
                // See recv: a reset comes once, ahead of what the peer sent before it closed.
                Err(Errno::EINTR | Errno::ECONNRESET) => continue,
                Err(Errno::EAGAIN) => return Ok(None),
                Err(e) => return Err(ChannelError::Recv(self.peer, e)),
            }
        };
        self.decode(&buf[..n])
    }

    /// The next message, or `None` when the peer closed its end (exited).
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<T>, ChannelError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => break n,
                // The peer closed its end before reading all we sent (a child that failed while
                // the parent was still placing it): the kernel reports that once, ahead of what
                // the peer sent before it closed, which the next recv returns, then end of file.
                Err(Errno::EINTR | Errno::ECONNRESET) => continue,
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
        let failure = Failure {
            step: Step::Rootfs,
            kind: ErrorKind::PermissionDenied,
            detail: "mount proc on /proc".into(),
            errno: Some(libc::EACCES),
        };
        child.send(&ToParent::Failed(failure.clone())).unwrap();
        assert_eq!(parent.recv::<ToParent>().unwrap(), Some(ToParent::Failed(failure.clone())));
        let error = failure.into_error();
        assert_eq!(error.kind(), ErrorKind::PermissionDenied);
        assert_eq!(error.chain(), "mount proc on /proc: permission denied");
        drop(child);
        assert_eq!(parent.recv::<ToParent>().unwrap(), None);
    }

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("exec: \"{name}\": stat {name}")]
        Stat { name: &'static str, source: Errno },
        #[error("startContainer hook #0 failed: exit status: 1")]
        Hook,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("set up the process")]
    struct Outer(#[source] Inner);

    #[test]
    fn a_failure_keeps_step_kind_errno_and_the_chain_above_it() {
        let error = Outer(Inner::Stat { name: "/x", source: Errno::ENOENT });
        let failure = Failure::new(Step::Process, ErrorKind::NotFound, &error);
        assert_eq!(failure.errno, Some(libc::ENOENT));
        assert_eq!(failure.detail, "set up the process: exec: \"/x\": stat /x");
        let rebuilt = Failure::from_report(&failure.to_report()[1..]);
        assert_eq!(rebuilt.kind(), ErrorKind::NotFound);
        assert_eq!(rebuilt.chain(), Error::new(ErrorKind::NotFound, error).chain());

        let no_errno = Failure::new(Step::Hooks, ErrorKind::Other, &Inner::Hook);
        assert_eq!((no_errno.errno, no_errno.detail.as_str()), (None, "startContainer hook #0 failed: exit status: 1"));
        assert_eq!(Failure::from_report(b"exec /x").chain(), "exec /x", "plain text from an older init");
    }
}
