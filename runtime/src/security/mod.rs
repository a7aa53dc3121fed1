//! Process security settings: capabilities and seccomp.

pub mod seccomp;
