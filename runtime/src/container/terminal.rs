//! The container's terminal relayed to ours: a foreground `run` or `exec` of a process with
//! `terminal: true` and no `--console-socket` (as runc does). The init sends the pty master over a
//! socket pair instead of a console socket; we put our own terminal in raw mode (the container's
//! line discipline does the editing and turns ^C into SIGINT), copy its window size on start and on
//! every SIGWINCH, and copy bytes both ways until the process exits.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use super::state::io_error;
use crate::error::{Error, ErrorKind};
use crate::sys::socket::recv_with_fds;
use crate::sys::tty::{set_window_size, window_size};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("create the socket pair for the container's terminal")]
    SocketPair(#[source] std::io::Error),
    #[error("receive the container's pty master")]
    ReceiveMaster(#[source] Errno),
    #[error("the container's init sent no pty master")]
    NoMaster,
    #[error("put the terminal in raw mode")]
    RawMode(#[source] Errno),
    #[error("copy the terminal output")]
    Output(#[source] Errno),
    #[error("copy the terminal input")]
    Input(#[source] Errno),
}

/// Where a child with a terminal sends its pty master: the connected `--console-socket`, or, for a
/// foreground process without one (`relay`), one end of a socket pair whose other end we keep.
#[derive(Debug, Default)]
pub struct ConsoleEndpoint {
    /// For the child.
    pub socket: Option<OwnedFd>,
    /// Ours, receiving the master to relay.
    master_from_child: Option<OwnedFd>,
}

impl ConsoleEndpoint {
    pub fn new(console_socket: Option<&Path>, terminal: bool, relay: bool) -> Result<Self, Error> {
        match console_socket {
            Some(path) => {
                let socket = UnixStream::connect(path).map(OwnedFd::from).map_err(|e| {
                    io_error(ErrorKind::Other, format!("connect to console socket {}", path.display()), e)
                })?;
                Ok(Self { socket: Some(socket), master_from_child: None })
            }
            None if terminal && relay => {
                let (ours, theirs) =
                    UnixStream::pair().map_err(|e| Error::new(ErrorKind::Other, RelayError::SocketPair(e)))?;
                Ok(Self { socket: Some(theirs.into()), master_from_child: Some(ours.into()) })
            }
            None => Ok(Self::default()),
        }
    }

    /// Whether the child's pty is relayed to our terminal (rather than sent to a console socket).
    pub fn relays(&self) -> bool {
        self.master_from_child.is_some()
    }

    /// The master the child sent when we relay (call once it reported ready: the message is queued
    /// by then); `None` when there is nothing to relay.
    pub fn master_to_relay(&self) -> Result<Option<OwnedFd>, Error> {
        let Some(ours) = &self.master_from_child else { return Ok(None) };
        let mut payload = [0u8; 64];
        let (_, fds) = recv_with_fds(ours.as_fd(), &mut payload)
            .map_err(|e| Error::new(ErrorKind::Other, RelayError::ReceiveMaster(e)))?;
        fds.into_iter().next().map(Some).ok_or_else(|| Error::new(ErrorKind::Other, RelayError::NoMaster))
    }
}

/// The size of our terminal (stdin's, else stdout's) as (rows, columns); `None` when neither is one.
pub fn our_window_size() -> Option<(u16, u16)> {
    window_size(std::io::stdin().as_fd()).or_else(|_| window_size(std::io::stdout().as_fd())).ok()
}

/// Our terminal relayed to the container's pty master; restores our terminal's mode on drop.
#[derive(Debug)]
pub struct Relay {
    master: OwnedFd,
    /// Our stdin's terminal settings before raw mode, when stdin is a terminal.
    saved: Option<Termios>,
    stdin_open: bool,
    master_open: bool,
}

impl Relay {
    pub fn new(master: OwnedFd) -> Result<Self, RelayError> {
        let stdin = std::io::stdin();
        let saved = match tcgetattr(stdin.as_fd()) {
            Ok(saved) => {
                let mut raw = saved.clone();
                cfmakeraw(&mut raw);
                tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).map_err(RelayError::RawMode)?;
                Some(saved)
            }
            // Not a terminal (a pipe, a file): relay as it is.
            Err(_) => None,
        };
        let relay = Self { master, saved, stdin_open: true, master_open: true };
        relay.copy_window_size();
        Ok(relay)
    }

    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    pub fn stdin_open(&self) -> bool {
        self.stdin_open
    }

    pub fn master_open(&self) -> bool {
        self.master_open
    }

    /// Give the container's terminal the size of ours (stdin's, else stdout's); nothing to do when
    /// neither is a terminal.
    pub fn copy_window_size(&self) {
        if let Some((rows, cols)) = our_window_size() {
            // The pty may be gone with the process; its exit is reported separately.
            let _gone = set_window_size(self.master.as_fd(), rows, cols);
        }
    }

    /// Copy what the container wrote to our stdout; on end (all its ends closed) stop watching it.
    pub fn pump_output(&mut self) -> Result<(), RelayError> {
        let mut buf = [0u8; 8192];
        match nix::unistd::read(&self.master, &mut buf) {
            Ok(0) | Err(Errno::EIO) => {
                self.master_open = false;
                Ok(())
            }
            Ok(n) => write_all(std::io::stdout().as_fd(), &buf[..n]).map_err(RelayError::Output),
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(()),
            Err(e) => Err(RelayError::Output(e)),
        }
    }

    /// Copy what we are given on stdin to the container; on end of input stop watching it.
    pub fn pump_input(&mut self) -> Result<(), RelayError> {
        let mut buf = [0u8; 8192];
        match nix::unistd::read(std::io::stdin(), &mut buf) {
            Ok(0) => {
                self.stdin_open = false;
                Ok(())
            }
            Ok(n) => match write_all(self.master.as_fd(), &buf[..n]) {
                // The process is gone; its exit is reported separately.
                Err(Errno::EIO) => Ok(()),
                other => other.map_err(RelayError::Input),
            },
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(()),
            Err(e) => Err(RelayError::Input(e)),
        }
    }

    /// After the process exited: copy what is still buffered in the pty, without waiting for the
    /// container's other processes that may hold it open.
    pub fn drain_output(&mut self) -> Result<(), RelayError> {
        let flags = fcntl(&self.master, FcntlArg::F_GETFL).map_err(RelayError::Output)?;
        let nonblocking = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&self.master, FcntlArg::F_SETFL(nonblocking)).map_err(RelayError::Output)?;
        let mut buf = [0u8; 8192];
        loop {
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(0) | Err(Errno::EIO | Errno::EAGAIN) => return Ok(()),
                Ok(n) => write_all(std::io::stdout().as_fd(), &buf[..n]).map_err(RelayError::Output)?,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(RelayError::Output(e)),
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // Best effort: the terminal may have gone away with the session.
            let _restored = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
