//! Process security settings: seccomp and LSM labels.

pub mod lsm;
pub mod seccomp;
