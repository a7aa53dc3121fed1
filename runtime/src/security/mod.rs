//! Process security settings: capabilities the runtime can grant, seccomp and LSM labels.

pub mod caps;
pub mod lsm;
pub mod seccomp;

use crate::plan::process::ProcessPlan;

/// Adjust a process plan to this host, before anything is spawned: capabilities the runtime does
/// not hold and LSM labels the host cannot apply are left out, each with a warning.
pub fn adapt_to_host(process: &mut ProcessPlan) {
    caps::restrict_to_grantable(process);
    lsm::resolve_exec_labels(process);
}
