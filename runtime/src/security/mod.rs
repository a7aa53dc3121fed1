//! Process security settings: capabilities the runtime can grant, seccomp and LSM labels.

pub mod caps;
pub mod lsm;
pub mod seccomp;

use crate::plan::process::ProcessPlan;

/// Adjust a process plan to this host, before anything is spawned: capabilities the runtime does
/// not hold are left out, each with a warning; an LSM label the host cannot apply is an error.
pub fn adapt_to_host(process: &mut ProcessPlan, in_user_namespace: bool) -> Result<(), lsm::LsmError> {
    caps::restrict_to_grantable(process, in_user_namespace);
    lsm::resolve_exec_labels(process)
}
