//! A foreground `run` or `exec`: signals sent to the runtime go to the container's process,
//! and the runtime returns its exit status (128+n when killed by signal n).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::terminal::Relay;
use crate::error::{Error, ErrorKind};
use crate::sys::process::pidfd_send_signal;

/// Blocks (almost) every signal from creation until drop, delivering them through a signalfd.
/// Create it before the clone: the child unblocks them for itself.
#[derive(Debug)]
pub struct Forwarder {
    sfd: SignalFd,
    old: SigSet,
}

impl Forwarder {
    pub fn new() -> Result<Self, Error> {
        let mut set = SigSet::all();
        for s in [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGILL, Signal::SIGFPE, Signal::SIGKILL, Signal::SIGSTOP] {
            set.remove(s);
        }
        let mut old = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).map_err(|e| Error::new(ErrorKind::Other, e))?;
        let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(|e| Error::new(ErrorKind::Other, e))?;
        Ok(Self { sfd, old })
    }

    /// Forward signals to `pid` until it exits, relaying our terminal to its pty `master` if given;
    /// returns its exit code.
    pub fn wait(&self, pid: Pid, pidfd: BorrowedFd<'_>, master: Option<OwnedFd>) -> Result<i32, Error> {
        match master {
            Some(master) => {
                let mut relay = Relay::new(master).map_err(|e| Error::new(ErrorKind::Other, e))?;
                self.wait_relaying(pid, pidfd, &mut relay)
            }
            None => loop {
                if let Some(code) = self.handle_signal(pid, pidfd, None)? {
                    return Ok(code);
                }
            },
        }
    }

    /// `wait` while relaying our terminal to the process's (SIGWINCH resizes it instead of being
    /// forwarded, as with runc).
    fn wait_relaying(&self, pid: Pid, pidfd: BorrowedFd<'_>, relay: &mut Relay) -> Result<i32, Error> {
        let stdin = std::io::stdin();
        loop {
            let (signal, output, input) = {
                let mut fds = vec![PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN)];
                if relay.master_open() {
                    fds.push(PollFd::new(relay.master(), PollFlags::POLLIN));
                }
                if relay.stdin_open() {
                    fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(Error::new(ErrorKind::Other, e)),
                }
                let ready = |i: usize| fds.get(i).and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
                let master_at = relay.master_open().then_some(1);
                let stdin_at = relay.stdin_open().then(|| 1 + usize::from(relay.master_open()));
                (ready(0), master_at.is_some_and(ready), stdin_at.is_some_and(ready))
            };
            if output {
                relay.pump_output().map_err(|e| Error::new(ErrorKind::Other, e))?;
            }
            if input {
                relay.pump_input().map_err(|e| Error::new(ErrorKind::Other, e))?;
            }
            if signal && let Some(code) = self.handle_signal(pid, pidfd, Some(relay))? {
                relay.drain_output().map_err(|e| Error::new(ErrorKind::Other, e))?;
                return Ok(code);
            }
        }
    }

    /// Read one signal: the process's exit status when it was SIGCHLD for its exit, else forward it.
    fn handle_signal(&self, pid: Pid, pidfd: BorrowedFd<'_>, relay: Option<&Relay>) -> Result<Option<i32>, Error> {
        let Some(info) = self.sfd.read_signal().map_err(|e| Error::new(ErrorKind::Other, e))? else { return Ok(None) };
        let signo = info.ssi_signo as i32;
        if signo == Signal::SIGCHLD as i32 {
            return Ok(match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => Some(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => Some(128 + sig as i32),
                _ => None,
            });
        }
        if let Some(relay) = relay
            && signo == Signal::SIGWINCH as i32
        {
            relay.copy_window_size();
            return Ok(None);
        }
        // The process may be gone already; its exit arrives as SIGCHLD next.
        let _maybe_exited = pidfd_send_signal(pidfd, signo);
        Ok(None)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // Restoring the caller's mask cannot fail with a valid set.
        let _restored = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}
