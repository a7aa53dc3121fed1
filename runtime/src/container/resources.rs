//! pause, resume, ps, events and update: what a running container's cgroup is asked to do.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use super::id::ContainerId;
use super::state::{ContainerDir, State, Status};
use crate::cgroup::{Event, Manager, watch_events};
use crate::error::{Error, ErrorKind};

fn open(root: &Path, id: &ContainerId) -> Result<(ContainerDir, State, Status), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let status = state.status(&dir, || super::frozen(&state));
    Ok((dir, state, status))
}

fn manager(state: &State) -> Result<Manager, Error> {
    state
        .cgroup
        .as_ref()
        .map(Manager::from_state)
        .ok_or_else(|| Error::msg(ErrorKind::Unsupported, "the container has no cgroup"))
}

pub fn pause(root: &Path, id: &ContainerId) -> Result<(), Error> {
    let (dir, state, status) = open(root, id)?;
    dir.lock(true)?;
    match status {
        Status::Running | Status::Created => manager(&state)?.freeze().map_err(Error::from),
        Status::Paused => Err(Error::msg(ErrorKind::InvalidState, "container already paused")),
        Status::Stopped | Status::Creating => Err(Error::msg(ErrorKind::InvalidState, "container not running")),
    }
}

pub fn resume(root: &Path, id: &ContainerId) -> Result<(), Error> {
    let (dir, state, status) = open(root, id)?;
    dir.lock(true)?;
    match status {
        Status::Paused => manager(&state)?.thaw().map_err(Error::from),
        Status::Stopped | Status::Creating => Err(Error::msg(ErrorKind::InvalidState, "container not running")),
        Status::Running | Status::Created => Err(Error::msg(ErrorKind::InvalidState, "container not paused")),
    }
}

/// Host pids of the container's processes; none once it stopped.
pub fn pids(root: &Path, id: &ContainerId) -> Result<Vec<i32>, Error> {
    let (_, state, status) = open(root, id)?;
    if status == Status::Stopped {
        return Ok(Vec::new());
    }
    Ok(manager(&state)?.pids().map_err(Error::from)?.into_iter().map(|p| p.as_raw()).collect())
}

/// `events --stats` (one event) or a stream every `interval` with OOM events, until the
/// container is gone.
pub fn events(root: &Path, id: &ContainerId, interval: Duration, stats_once: bool) -> Result<(), Error> {
    let (_, state, status) = open(root, id)?;
    if status == Status::Stopped {
        return Err(Error::msg(ErrorKind::InvalidState, "container not running"));
    }
    let m = manager(&state)?;
    let mut out = std::io::stdout().lock();
    let mut emit = |e: &Event| -> std::io::Result<()> {
        let line = serde_json::to_string(e).map_err(std::io::Error::other)?;
        writeln!(out, "{line}")?;
        out.flush()
    };
    if stats_once {
        let event = Event::stats(id.as_str(), m.stats().map_err(Error::from)?);
        return emit(&event).map_err(|e| Error::new(ErrorKind::Other, e));
    }
    watch_events(&m, id.as_str(), interval, emit).map_err(Error::from).map(drop)
}

/// Apply changed resources to a running or created container's cgroup.
pub fn update(root: &Path, id: &ContainerId, resources: &LinuxResources) -> Result<(), Error> {
    let (dir, state, status) = open(root, id)?;
    dir.lock(true)?;
    if status == Status::Stopped {
        return Err(Error::msg(ErrorKind::InvalidState, "container not running"));
    }
    let m = manager(&state)?;
    for field in m.ignored_resources(resources).map_err(Error::from)? {
        crate::logging::warn(&format!("update: {field} is not available on this cgroup layout; ignored"));
    }
    m.update(resources).map_err(Error::from)
}
