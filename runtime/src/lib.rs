//! Strata: a runc-compatible OCI runtime. See ARCHITECTURE.md for the process model.

pub mod cgroup;
pub mod cli;
pub mod container;
pub mod error;
pub mod hooks;
pub mod logging;
pub mod phases;
pub mod plan;
pub mod rootfs;
pub mod security;
pub mod spawn;
pub mod sys;
pub mod timefmt;

pub use error::{Error, ErrorKind, Result};
