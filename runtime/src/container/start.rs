//! `start`: release a created container's init by opening its exec fifo, then poststart hooks.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::id::ContainerId;
use super::state::{ContainerDir, EXEC_FIFO, State, io_error};
use super::status::{Op, Refused};
use crate::error::{Error, ErrorKind};
use crate::hooks::run_hooks_warn;
use crate::spawn::protocol::Failure;
use crate::sys::process::pidfd_open;

pub fn start(root: &Path, id: &ContainerId) -> Result<(), Error> {
    let dir = ContainerDir::open(root, id)?;
    dir.lock(true)?;
    let state = dir.load()?;
    super::check(&dir, &state, Op::Start)?;
    if !state.has_process {
        return Err(Error::msg(
            ErrorKind::InvalidSpec,
            "cannot start a container without a process (config.json has none)",
        ));
    }
    crate::phases::mark("start: state loaded");
    release(&dir, &state)?;
    crate::phases::mark("start: init released, exec'd");
    run_poststart(&state);
    Ok(())
}

/// Open the fifo (which unblocks init's open for writing) and read its byte; fail if init died.
fn release(dir: &ContainerDir, state: &State) -> Result<(), Error> {
    let fifo_err = |e: Errno| io_error(ErrorKind::Other, "open exec fifo".into(), e.into());
    let pidfd = pidfd_open(Pid::from_raw(state.pid)).map_err(|_| Refused::StartStopped.into_error(&dir.id))?;
    let fifo =
        nix::fcntl::openat(dir.fd(), EXEC_FIFO, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(fifo_err)?;
    let mut fifo = std::fs::File::from(fifo);
    let mut released = false;
    // "0" releases init; anything after it ("E<message>") is a failure between release and exec
    // (a startContainer hook, execve). End of file means execve closed the write end.
    let mut report = Vec::new();
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN), PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(fifo_err(e)),
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP));
        if ready(&fds[0]) {
            let mut buf = [0u8; 4096];
            match fifo.read(&mut buf) {
                Ok(0) if released => break,
                Ok(0) => return Err(Error::msg(ErrorKind::Other, "container init exited before it was started")),
                Ok(n) => {
                    let data = if released { &buf[..n] } else { &buf[1..n] };
                    released = true;
                    report.extend_from_slice(data);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(io_error(ErrorKind::Other, "read exec fifo".into(), e)),
            }
        } else if ready(&fds[1]) {
            if released {
                break;
            }
            return Err(Error::msg(ErrorKind::Other, "container init exited before it was started"));
        }
    }
    let path = dir.file(EXEC_FIFO);
    if let Some(message) = report.strip_prefix(b"E") {
        // The init is on its way out; make sure it is gone before saying so (the container is
        // stopped when start returns).
        if crate::sys::process::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL).is_ok() {
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let _exited_or_timeout = poll(&mut fds, PollTimeout::from(5000u16));
        }
        let _gone = std::fs::remove_file(&path);
        return Err(Failure::from_report(message));
    }
    std::fs::remove_file(&path).map_err(|e| io_error(ErrorKind::Other, format!("remove {}", path.display()), e))
}

/// Poststart hooks: a failure is logged, the container keeps running (runtime-spec).
pub fn run_poststart(state: &State) {
    if state.hooks.poststart.is_empty() {
        return;
    }
    let hook_state = state.hook_json("running", state.pid);
    run_hooks_warn("poststart", &state.hooks.poststart, hook_state.as_bytes());
}
