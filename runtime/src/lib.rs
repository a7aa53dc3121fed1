//! Strata: a runc-compatible OCI runtime. See ARCHITECTURE.md for the process model.

pub mod cgroup;
pub mod error;
pub mod security;
pub mod sys;

pub use error::{Error, ErrorKind, Result};
