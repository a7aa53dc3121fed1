//! A terminal standing in for the user's, for the runtime to run on: a pty pair whose peer becomes
//! the runtime's stdio and whose master the test reads and types into (as a terminal emulator).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios::{LocalFlags, tcgetattr};

use crate::fail::OrFail;

/// How long to wait for output or an exit (a safety net, not a timing assertion).
pub const LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct UserTerminal {
    master: File,
    peer: Option<OwnedFd>,
    seen: Vec<u8>,
}

impl UserTerminal {
    pub fn new(rows: u16, cols: u16) -> Self {
        // Both ends close-on-exec from the start: tests run in parallel threads, and a runtime another
        // thread spawns must not inherit this terminal (it would keep it open: no EIO at the end).
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).or_fail("posix_openpt");
        grantpt(&master).or_fail("grantpt");
        unlockpt(&master).or_fail("unlockpt");
        let name = ptsname_r(&master).or_fail("ptsname");
        let peer = nix::fcntl::open(
            name.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .or_fail(format!("open {name}"));
        let master = File::from(OwnedFd::from(master));
        crate::sys::set_window_size(master.as_fd(), rows, cols).or_fail("set the terminal size");
        UserTerminal { master, peer: Some(peer), seen: Vec::new() }
    }

    /// Make this terminal `cmd`'s stdin, stdout and stderr.
    pub fn attach(&self, cmd: &mut Command) {
        let peer = self.peer.as_ref().or_fail("the terminal's peer is closed");
        let dup = || Stdio::from(peer.try_clone().or_fail("dup the terminal's peer"));
        cmd.stdin(dup()).stdout(dup()).stderr(dup());
    }

    /// Resize it, as a terminal emulator's window (the caller sends SIGWINCH).
    pub fn resize(&self, rows: u16, cols: u16) {
        crate::sys::set_window_size(self.master.as_fd(), rows, cols).or_fail("resize the terminal");
    }

    pub fn type_in(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).or_fail("type into the terminal");
    }

    /// Whether the terminal is back in its normal (line-editing, echoing) mode.
    pub fn is_cooked(&self) -> bool {
        let peer = self.peer.as_ref().or_fail("the terminal's peer is closed");
        let mode = tcgetattr(peer.as_fd()).or_fail("tcgetattr");
        mode.local_flags.contains(LocalFlags::ICANON | LocalFlags::ECHO)
    }

    /// Reads until the output so far contains `needle`; returns all of it (`\r\n` as `\n`).
    #[track_caller]
    pub fn read_until(&mut self, needle: &str) -> String {
        let started = Instant::now();
        while !self.output().contains(needle) {
            if started.elapsed() > LIMIT {
                panic!("{needle:?} did not appear on the terminal within {LIMIT:?}; it shows {:?}", self.output());
            }
            if !self.read_some() {
                panic!("the terminal closed before {needle:?} appeared; it shows {:?}", self.output());
            }
        }
        self.output()
    }

    /// After the runtime exited: close our peer and read what is left (until EIO: nothing has the
    /// terminal open any more); returns all the output.
    #[track_caller]
    pub fn finish(&mut self) -> String {
        self.peer = None;
        let started = Instant::now();
        while self.read_some() {
            if started.elapsed() > LIMIT {
                panic!("something still holds the terminal open after {LIMIT:?}; it shows {:?}", self.output());
            }
        }
        self.output()
    }

    /// Waits up to 100 ms for output and keeps what arrives; false once the terminal is closed
    /// (EIO: no one has its peer open).
    fn read_some(&mut self) -> bool {
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).or_fail("poll the terminal") == 0 {
            return true;
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.seen.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
            Err(_) => false,
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.seen).replace("\r\n", "\n")
    }
}
