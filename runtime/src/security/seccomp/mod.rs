//! OCI `linux.seccomp` → BPF program, compiled in the parent, installed by the child just
//! before `execve`.
//!
//! Placeholder interface: the compiler lands separately. Until then every profile is refused
//! with a clear error rather than silently ignored.

use std::os::fd::OwnedFd;

use oci_spec::runtime::LinuxSeccomp;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profiles are not supported yet")]
    NotImplemented,
}

/// A compiled filter, ready to install in the child.
#[derive(Debug, Clone)]
pub struct CompiledSeccomp {
    _private: (),
}

/// Compile the profile (pure: no system calls).
pub fn compile(_profile: &LinuxSeccomp) -> Result<CompiledSeccomp, SeccompError> {
    Err(SeccompError::NotImplemented)
}

impl CompiledSeccomp {
    /// Install the filter on the calling thread; returns the notify listener fd when the profile
    /// uses SCMP_ACT_NOTIFY.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        Err(SeccompError::NotImplemented)
    }

    /// Whether the profile needs a listener fd sent to `listenerPath`.
    pub fn listener_path(&self) -> Option<&str> {
        None
    }
}
