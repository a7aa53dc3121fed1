//! pause, resume, ps, events and update: what a running container's cgroup is asked to do.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use super::id::ContainerId;
use super::state::{ContainerDir, State};
use super::status::{Allowed, Op};
use crate::cgroup::{Event, Manager, watch_events};
use crate::error::{Error, ErrorKind};

/// The container, once `op` is found allowed in its status.
fn open(root: &Path, id: &ContainerId, op: Op) -> Result<(ContainerDir, State, Allowed), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    let allowed = super::check(&dir, &state, op)?;
    Ok((dir, state, allowed))
}

fn manager(state: &State) -> Result<Manager, Error> {
    state.cgroup.as_ref().map(Manager::from_state).ok_or_else(|| Error::msg(ErrorKind::Unsupported, super::NO_CGROUP))
}

pub fn pause(root: &Path, id: &ContainerId) -> Result<(), Error> {
    let (dir, state, _) = open(root, id, Op::Pause)?;
    dir.lock(true)?;
    manager(&state)?.freeze().map_err(Error::from)
}

pub fn resume(root: &Path, id: &ContainerId) -> Result<(), Error> {
    let (dir, state, _) = open(root, id, Op::Resume)?;
    dir.lock(true)?;
    manager(&state)?.thaw().map_err(Error::from)
}

/// Host pids of the container's processes; none once it stopped.
pub fn pids(root: &Path, id: &ContainerId) -> Result<Vec<i32>, Error> {
    let (_, state, allowed) = open(root, id, Op::Ps)?;
    if allowed == Allowed::NothingToDo {
        return Ok(Vec::new());
    }
    Ok(manager(&state)?.pids().map_err(Error::from)?.into_iter().map(|p| p.as_raw()).collect())
}

/// `events --stats` (one event) or a stream every `interval` with OOM events, until the
/// container is gone.
pub fn events(root: &Path, id: &ContainerId, interval: Duration, stats_once: bool) -> Result<(), Error> {
    let (_, state, _) = open(root, id, Op::Events)?;
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
    let (dir, state, _) = open(root, id, Op::Update)?;
    dir.lock(true)?;
    let m = manager(&state)?;
    for field in m.ignored_resources(resources).map_err(Error::from)? {
        crate::logging::warn(&format!("update: {field} is not available on this cgroup layout; ignored"));
    }
    m.update(resources).map_err(Error::from)
}
