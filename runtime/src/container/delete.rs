//! `delete`: stop what is left (a created container's init, or anything with `--force`), run
//! poststop hooks, remove the cgroup and the state. Works on anything `create` may have left
//! behind, even after a crash mid-create.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::id::ContainerId;
use super::state::{ContainerDir, State};
use super::status::Op;
use crate::cgroup::{CgroupState, FrozenBy, Manager};
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
    stop_processes(&state)?;
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

/// How long `delete` waits for the container's processes to die after SIGKILL. runc checks 100
/// times, 100 ms apart, then says "container init still running": a process that cannot die (in
/// a cgroup frozen by someone else, in an uninterruptible sleep) must not keep it waiting for
/// minutes.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Processes of the container that SIGKILL did not end in time.
#[derive(Debug, thiserror::Error)]
#[error("container {id}: {left} still running {} s after SIGKILL{why}", KILL_TIMEOUT.as_secs())]
pub struct StillRunning {
    id: String,
    /// "init (pid 12, state D) and 2 more processes of the cgroup (13 sh, 14 sleep)"
    left: String,
    /// What keeps them, when it is known.
    why: String,
}

/// SIGKILL the container's init and every process in its cgroup (thawed, so that they can act on
/// it), and wait until they are gone; give up after [`KILL_TIMEOUT`] naming what is left. The
/// container then stays as it is, for a later delete.
pub fn stop_processes(state: &State) -> Result<(), Error> {
    let deadline = Instant::now() + KILL_TIMEOUT;
    let manager = state.cgroup.as_ref().map(Manager::from_state);
    let cgroup_pids = || manager.as_ref().and_then(|m| m.pids().ok()).unwrap_or_default();
    let kill_each = |pids: &[Pid]| {
        for pid in pids {
            let _gone_already = nix::sys::signal::kill(*pid, Signal::SIGKILL);
        }
    };
    kill_each(&cgroup_pids());
    // A pidfd pins the init: checked again through it, the pid cannot have been recycled since.
    let init = pidfd_open(Pid::from_raw(state.pid))
        .ok()
        .filter(|_| state.pid > 0 && super::state::process_alive(state.pid, state.pid_start));
    if let Some(fd) = &init {
        let _gone_already = pidfd_send_signal(fd.as_fd(), Signal::SIGKILL as i32);
    }
    if let Some(m) = &manager {
        super::thaw_best_effort(m);
    }
    let init_gone = init.as_ref().is_none_or(|fd| wait_gone(fd, deadline));
    // Without a pid namespace of its own, the container's other processes outlive its init.
    let mut pause = Duration::from_millis(1);
    loop {
        let left = cgroup_pids();
        if left.is_empty() && init_gone {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let init_pid = init.as_ref().filter(|_| !init_gone).map(|_| state.pid);
            return Err(Error::new(ErrorKind::Other, still_running(state, manager.as_ref(), init_pid, &left)));
        }
        kill_each(&left);
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Whether the process of `pidfd` exits before `deadline`.
fn wait_gone(pidfd: &std::os::fd::OwnedFd, deadline: Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Err(Errno::EINTR) => continue,
            Ok(n) if n > 0 => return true,
            // Timed out, or the pidfd cannot be polled: the process is left to the caller.
            _ => return false,
        }
    }
}

/// The error for processes that did not die: which ones, and why when the cgroup says.
fn still_running(state: &State, manager: Option<&Manager>, init: Option<i32>, left: &[Pid]) -> StillRunning {
    const SHOWN: usize = 5;
    let describe = |pid: i32| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let run_state = super::state::read_stat(pid).map_or('?', |(s, _)| s);
        format!("{pid} {} (state {run_state})", comm.trim())
    };
    let others: Vec<i32> = left.iter().map(|p| p.as_raw()).filter(|p| Some(*p) != init).collect();
    let mut parts = Vec::new();
    if let Some(pid) = init {
        parts.push(format!("init {}", describe(pid)));
    }
    if !others.is_empty() {
        let mut shown: Vec<String> = others.iter().take(SHOWN).map(|p| describe(*p)).collect();
        if others.len() > SHOWN {
            shown.push(format!("and {} more", others.len() - SHOWN));
        }
        let what = if init.is_some() { "other processes" } else { "processes" };
        parts.push(format!("{what} of its cgroup: {}", shown.join(", ")));
    }
    let why = match manager.map(Manager::frozen_by) {
        Some(Ok(Some(FrozenBy::Parent))) => {
            "; a parent of its cgroup is frozen (thaw it, then delete again)".to_owned()
        }
        Some(Ok(Some(FrozenBy::Itself))) => "; its cgroup is still frozen".to_owned(),
        _ => {
            let pids = init.into_iter().chain(others.iter().copied());
            if pids.filter_map(super::state::read_stat).any(|(s, _)| s == 'D') {
                "; a process in uninterruptible sleep (D) dies only when its I/O completes".to_owned()
            } else {
                String::new()
            }
        }
    };
    StillRunning { id: state.id.clone(), left: parts.join("; "), why }
}

/// Remove the cgroup, retrying while the last processes finish exiting. Best effort: a
/// leftover is reported, not fatal, since the container itself is gone.
pub fn remove_cgroup(cg: &CgroupState) {
    let manager = Manager::from_state(cg);
    // Each attempt already waits about a second for a busy directory; the processes are known
    // to be gone, so this only covers their last moments.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match manager.destroy() {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => {
                crate::logging::warn(&format!("remove cgroup: {}", Error::new(ErrorKind::Other, e)));
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
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
            if !wait_gone(&fd, Instant::now() + KILL_TIMEOUT) {
                return Err(Error::msg(
                    ErrorKind::Other,
                    format!(
                        "container {}: init {pid} still running {} s after SIGKILL",
                        dir.id,
                        KILL_TIMEOUT.as_secs()
                    ),
                ));
            }
        }
    }
    dir.remove()
}
