//! `delete`: stop what is left (a created container's init, or anything with `--force`), run
//! poststop hooks, remove the cgroup and the state. Works on anything `create` may have left
//! behind, even after a crash mid-create.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::id::ContainerId;
use super::state::{ContainerDir, State};
use super::status::Op;
use crate::cgroup::{CgroupState, Manager};
use crate::error::{Error, ErrorKind};
use crate::hooks::run_hooks_warn;
use crate::sys::process::{pidfd_open, pidfd_send_signal};

pub fn delete(root: &Path, id: &ContainerId, force: bool) -> Result<(), Error> {
    let dir = match ContainerDir::open(root, id) {
        Ok(d) => d,
        Err(e) if force && e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    match dir.lock(true) {
        Ok(()) => {}
        // Removed by a concurrent delete while we waited for the lock.
        Err(e) if force && e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    let state = match dir.load() {
        Ok(s) => s,
        // A directory without state: a create killed before its first write. Nothing else exists.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return if force { dir.remove() } else { Err(e) };
        }
        Err(e) if force => return salvage(&dir, &e),
        Err(e) => return Err(e),
    };
    // The runtime-spec: deleting a container that is not stopped is an error and changes nothing;
    // runc and crun kill a created container's init and delete it, and so does this (the status
    // table says which). Stopped, yet processes may be left: a create killed after its init was ready leaves that init blocked
    // on the exec fifo (its state never said "created"), and processes the init started can
    // outlive it in the cgroup. The cgroup cannot be removed until they are gone.
    super::check(&dir, &state, if force { Op::ForceDelete } else { Op::Delete })?;
    stop_processes(&state);
    destroy(&dir, &state)
}

/// Remove everything of a container whose processes are gone.
pub fn destroy(dir: &ContainerDir, state: &State) -> Result<(), Error> {
    if let Some(cg) = &state.cgroup {
        remove_cgroup(cg);
    }
    if !state.hooks.poststop.is_empty() {
        let hook_state = state.hook_json("stopped", 0);
        // The spec: a failing poststop hook is logged and the delete goes on.
        run_hooks_warn("poststop", &state.hooks.poststop, hook_state.as_bytes());
    }
    dir.remove()
}

/// SIGKILL the container's init and every process in its cgroup, and wait until they are gone.
pub fn stop_processes(state: &State) {
    let manager = state.cgroup.as_ref().map(Manager::from_state);
    if let Some(m) = &manager {
        if let Ok(pids) = m.pids() {
            for pid in pids {
                let _gone_already = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
        }
        super::thaw_best_effort(m);
    }
    if state.pid > 0 && super::state::process_alive(state.pid, state.pid_start) {
        if let Ok(fd) = pidfd_open(Pid::from_raw(state.pid)) {
            // Check again through the pidfd: the pid may have been recycled in between.
            if super::state::process_alive(state.pid, state.pid_start) {
                let _gone_already = pidfd_send_signal(fd.as_fd(), Signal::SIGKILL as i32);
                wait_gone(&fd, Duration::from_secs(10));
            }
        }
    }
}

fn wait_gone(pidfd: &std::os::fd::OwnedFd, timeout: Duration) {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(timeout.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    loop {
        match poll(&mut fds, ms) {
            Err(Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// Remove the cgroup, retrying while the last processes finish exiting. Best effort: a
/// leftover is reported, not fatal, since the container itself is gone.
pub fn remove_cgroup(cg: &CgroupState) {
    let manager = Manager::from_state(cg);
    let mut last = None;
    for attempt in 0..100 {
        match manager.destroy() {
            Ok(()) => return,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(if attempt < 10 { 1 } else { 10 }));
    }
    if let Some(e) = last {
        crate::logging::warn(&format!("remove cgroup: {}", Error::new(ErrorKind::Other, e)));
    }
}

/// `delete --force` of a container whose state file cannot be read (written by another version,
/// or damaged): stop the process it names if that is still the same process, remove the state.
fn salvage(dir: &ContainerDir, error: &Error) -> Result<(), Error> {
    crate::logging::warn(&format!("{}; removing what can be found", error.chain()));
    let raw = std::fs::read(dir.file(super::state::STATE_FILE))
        .or_else(|_| std::fs::read(dir.file(super::state::CREATING_FILE)))
        .unwrap_or_default();
    let value: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    let pid = value["pid"].as_i64().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    let start = value["pid_start"].as_u64().unwrap_or(0);
    // Without a start time there is no telling a recycled pid apart: leave it alone.
    if start != 0 && super::state::process_alive(pid, start) {
        if let Ok(fd) = pidfd_open(Pid::from_raw(pid)) {
            let _gone_already = pidfd_send_signal(fd.as_fd(), Signal::SIGKILL as i32);
            wait_gone(&fd, Duration::from_secs(10));
        }
    }
    dir.remove()
}
