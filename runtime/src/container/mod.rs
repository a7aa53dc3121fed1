//! The container lifecycle: ids, state, and the operations on them.

pub mod create;
pub mod delete;
pub mod exec;
pub mod foreground;
pub mod id;
pub mod info;
pub mod kill;
pub mod resources;
pub mod run;
pub mod start;
pub mod state;
pub mod status;
pub mod terminal;

use crate::cgroup::Manager;
use crate::error::Error;
use state::{ContainerDir, State};
use status::{Allowed, Op};

/// Why pause, resume, update, events, ps (and kill --all without a pid namespace) cannot act.
const NO_CGROUP: &str = "the container has no cgroup: it was created rootless, and the caller may not write a cgroup here (cgroup v1, or cgroup v2 without a delegated subtree)";

/// Whether `op` may run on the container now: its live status checked in the one table.
fn check(dir: &ContainerDir, state: &State, op: Op) -> Result<Allowed, Error> {
    state.status(dir, || frozen(state)).check(op).map_err(|refused| refused.into_error(&dir.id))
}

/// Whether the container's cgroup is frozen (paused).
fn frozen(state: &state::State) -> bool {
    state.cgroup.as_ref().is_some_and(|cg| Manager::from_state(cg).is_frozen())
}

/// Thaw a cgroup so that SIGKILLed processes can die; failing that, there is nothing to undo.
fn thaw_best_effort(manager: &Manager) {
    if let Err(e) = manager.thaw() {
        crate::logging::debug(&format!("thaw: {e}"));
    }
}
