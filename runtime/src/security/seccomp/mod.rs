//! OCI `linux.seccomp` → classic BPF, compiled in the parent and installed by the child just
//! before `execve`.
//!
//! The meaning of a profile is runc's (runc + libseccomp + runc's ENOSYS stub), see `rules.rs`
//! for the exact rules. The program is our own (`codegen.rs`) on seccompiler's instruction type:
//! seccompiler compiles one architecture with one match action per filter, which cannot express
//! OCI profiles (several ABIs, an action per rule, libseccomp's precedence).
//!
//! # When to install (as runc)
//! - `process.noNewPrivileges` true: set `PR_SET_NO_NEW_PRIVS` early, then call
//!   [`CompiledSeccomp::install`] as late as possible: after capabilities, setuid/setgid and
//!   everything else, right before `execve`.
//! - otherwise: install **before** dropping capabilities (the kernel then needs
//!   `CAP_SYS_ADMIN`), i.e. after the rootfs setup, before `capset`/`setuid`. The filter must
//!   then allow whatever the child still does (runc has the same constraint).
//!
//! `install` never sets no_new_privs itself.

mod arch;
mod asm;
mod codegen;
mod listener;
mod rules;
mod table;

#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag};
use seccompiler::sock_filter;

use crate::error::ErrorKind;
use crate::sys::seccomp as sys;

pub use listener::{fetch_listener, listener_state, receive_from_runtime, send_to_listener};
pub use rules::{
    RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_LOG, RET_TRACE, RET_TRAP, RET_USER_NOTIF,
};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "seccomp architecture {arch} is not supported (supported: SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32, SCMP_ARCH_AARCH64)"
    )]
    UnsupportedArchitecture { arch: String },
    #[error("seccomp {what} is {value}, beyond the largest errno value 65535")]
    ErrnoOutOfRange { what: String, value: u32 },
    #[error("seccomp rule {rule} has no syscall names")]
    NoSyscallNames { rule: usize },
    #[error("seccomp rule {rule} has an empty syscall name")]
    EmptySyscallName { rule: usize },
    #[error("seccomp rule {rule} compares argument {index}; syscalls have arguments 0 to 5")]
    ArgumentIndex { rule: usize, index: usize },
    #[error("SCMP_ACT_NOTIFY cannot be the seccomp default action")]
    NotifyDefaultAction,
    #[error("SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyOnWrite,
    #[error("seccomp profile uses SCMP_ACT_NOTIFY but sets no listenerPath")]
    NotifyWithoutListener,
    #[error("seccomp listenerPath {path:?} is not valid UTF-8")]
    ListenerPathEncoding { path: PathBuf },
    #[error("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a rule with SCMP_ACT_NOTIFY")]
    WaitKillableWithoutNotify,
    #[error(
        "seccomp rules {first} ({first_names}) and {second} ({second_names}) give different actions to the \
         same arguments of syscall {syscall} on {arch}; make their conditions exclusive"
    )]
    ConflictingRules {
        arch: &'static str,
        syscall: u32,
        first: usize,
        first_names: String,
        second: usize,
        second_names: String,
    },
    #[error("seccomp program has {len} instructions, more than the kernel's limit of 4096")]
    ProgramTooLarge { len: usize },
    #[error("seccomp compiler produced an invalid {what}")]
    Internal { what: &'static str },
    #[error(
        "install seccomp filter (without no_new_privs this needs CAP_SYS_ADMIN: install before dropping capabilities)"
    )]
    InstallPermission(#[source] nix::errno::Errno),
    #[error("install seccomp filter")]
    Install(#[source] nix::errno::Errno),
    #[error("fetch the seccomp listener fd from the container process")]
    FetchListener(#[source] nix::errno::Errno),
    #[error("encode the container process state for the seccomp agent")]
    EncodeListenerState(#[source] serde_json::Error),
    #[error("receive a seccomp listener from the runtime")]
    ReceiveListener {
        #[source]
        source: std::io::Error,
    },
    #[error("decode the container process state from the runtime")]
    DecodeListenerState(#[source] serde_json::Error),
    #[error("send the seccomp listener to {path:?}")]
    SendListener {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SeccompError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SeccompError::UnsupportedArchitecture { .. } => ErrorKind::Unsupported,
            SeccompError::InstallPermission(_) => ErrorKind::PermissionDenied,
            SeccompError::Internal { .. }
            | SeccompError::Install(_)
            | SeccompError::FetchListener(_)
            | SeccompError::EncodeListenerState(_)
            | SeccompError::ReceiveListener { .. }
            | SeccompError::DecodeListenerState(_)
            | SeccompError::SendListener { .. } => ErrorKind::Other,
            _ => ErrorKind::InvalidSpec,
        }
    }
}

impl From<SeccompError> for crate::Error {
    fn from(error: SeccompError) -> Self {
        crate::Error::new(error.kind(), error)
    }
}

/// A compiled filter, ready to install in the child. Compiled for every create and exec, not
/// cached: podman's profile costs about 0.6 ms of CPU in a release build (`strata run` with and
/// without it; `compile_time_of_the_podman_profile` prints the compile alone), and a cache would
/// need its own trust and invalidation rules to save part of that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledSeccomp {
    program: Vec<sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` passed to seccomp(2).
    flags: u32,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    warnings: Vec<String>,
}

/// Compile the profile (pure: no system calls).
pub fn compile(profile: &LinuxSeccomp) -> Result<CompiledSeccomp, SeccompError> {
    let db = rules::build(profile)?;
    let program = codegen::generate(&db)?;

    let mut flags = 0;
    for flag in profile.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => sys::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => sys::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => sys::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => sys::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        };
    }
    let (listener_path, listener_metadata) = if db.uses_notify {
        flags |= sys::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if flags & sys::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            // TSYNC alone returns a thread id on failure, which collides with the listener fd.
            flags |= sys::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
        let path = profile.listener_path().as_ref().ok_or(SeccompError::NotifyWithoutListener)?;
        let path = path.to_str().ok_or_else(|| SeccompError::ListenerPathEncoding { path: path.clone() })?;
        (Some(path.to_owned()), profile.listener_metadata().clone())
    } else {
        if flags & sys::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
            return Err(SeccompError::WaitKillableWithoutNotify);
        }
        (None, None)
    };
    Ok(CompiledSeccomp { program, flags, listener_path, listener_metadata, warnings: db.warnings })
}

impl CompiledSeccomp {
    /// Install the filter on the calling thread (see the module doc for where); returns the
    /// notify listener fd when the profile uses SCMP_ACT_NOTIFY.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        sys::set_mode_filter(&self.program, self.flags).map_err(|errno| match errno {
            nix::errno::Errno::EACCES => SeccompError::InstallPermission(errno),
            _ => SeccompError::Install(errno),
        })
    }

    /// Where to send the listener fd, when the profile uses SCMP_ACT_NOTIFY.
    pub fn listener_path(&self) -> Option<&str> {
        self.listener_path.as_deref()
    }

    /// `listenerMetadata`, to pass to [`listener_state`].
    pub fn listener_metadata(&self) -> Option<&str> {
        self.listener_metadata.as_deref()
    }

    /// The BPF program.
    pub fn program(&self) -> &[sock_filter] {
        &self.program
    }

    /// `SECCOMP_FILTER_FLAG_*` passed to seccomp(2).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Things in the profile that were ignored as runc ignores them (unknown syscall names,
    /// errnoRet on actions without an errno); worth a warning in the log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
