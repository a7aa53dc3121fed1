//! A foreground `run` or `exec`: signals sent to the runtime go to the container's process,
//! and the runtime returns its exit status (128+n when killed by signal n).

use std::os::fd::BorrowedFd;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

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

    /// Forward signals to `pid` until it exits; returns its exit code.
    pub fn wait(&self, pid: Pid, pidfd: BorrowedFd<'_>) -> Result<i32, Error> {
        loop {
            let Some(info) = self.sfd.read_signal().map_err(|e| Error::new(ErrorKind::Other, e))? else { continue };
            let signo = info.ssi_signo as i32;
            if signo == Signal::SIGCHLD as i32 {
                match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                    _ => continue,
                }
            }
            // The process may be gone already; its exit arrives as SIGCHLD next.
            let _maybe_exited = pidfd_send_signal(pidfd, signo);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // Restoring the caller's mask cannot fail with a valid set.
        let _restored = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}
