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
    #[error("decode cached seccomp filter: {reason}")]
    Decode { reason: &'static str },
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
            | SeccompError::Decode { .. }
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

/// A compiled filter, ready to install in the child. Cheap to clone; serialisable for a cache
/// keyed by the profile's content hash ([`CompiledSeccomp::to_bytes`]).
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

    /// Serialise for the compiled-filter cache.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.program.len() * 8);
        out.extend_from_slice(CACHE_MAGIC);
        out.extend_from_slice(&self.flags.to_le_bytes());
        put_optional(&mut out, self.listener_path.as_deref());
        put_optional(&mut out, self.listener_metadata.as_deref());
        out.extend_from_slice(&(self.warnings.len() as u32).to_le_bytes());
        for warning in &self.warnings {
            put_bytes(&mut out, warning.as_bytes());
        }
        out.extend_from_slice(&(self.program.len() as u32).to_le_bytes());
        for insn in &self.program {
            out.extend_from_slice(&insn.code.to_le_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend_from_slice(&insn.k.to_le_bytes());
        }
        out
    }

    /// Read back [`CompiledSeccomp::to_bytes`]. Rejects anything else (a cache written by another
    /// version or a truncated file) so that the caller recompiles.
    pub fn from_bytes(bytes: &[u8]) -> Result<CompiledSeccomp, SeccompError> {
        let mut reader = Reader { bytes };
        if reader.take(CACHE_MAGIC.len())? != CACHE_MAGIC {
            return Err(SeccompError::Decode { reason: "not a strata seccomp cache entry of this version" });
        }
        let flags = reader.u32()?;
        let listener_path = reader.optional_string()?;
        let listener_metadata = reader.optional_string()?;
        let warning_count = reader.u32()? as usize;
        let mut warnings = Vec::with_capacity(warning_count.min(64));
        for _ in 0..warning_count {
            warnings.push(reader.string()?);
        }
        let len = reader.u32()? as usize;
        if len == 0 || len > asm::MAX_INSTRUCTIONS {
            return Err(SeccompError::Decode { reason: "program length out of range" });
        }
        let mut program = Vec::with_capacity(len);
        for _ in 0..len {
            let raw = reader.take(8)?;
            program.push(sock_filter {
                code: u16::from_le_bytes([raw[0], raw[1]]),
                jt: raw[2],
                jf: raw[3],
                k: u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]),
            });
        }
        if !reader.bytes.is_empty() {
            return Err(SeccompError::Decode { reason: "trailing bytes" });
        }
        Ok(CompiledSeccomp { program, flags, listener_path, listener_metadata, warnings })
    }
}

/// Bumped whenever the encoding or the compiler's output for a given profile changes.
const CACHE_MAGIC: &[u8; 8] = b"STSCMP01";

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_optional(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => {
            out.push(1);
            put_bytes(out, text.as_bytes());
        }
        None => out.push(0),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], SeccompError> {
        if self.bytes.len() < len {
            return Err(SeccompError::Decode { reason: "truncated" });
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, SeccompError> {
        let raw = self.take(4)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
    }

    fn string(&mut self) -> Result<String, SeccompError> {
        let len = self.u32()? as usize;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| SeccompError::Decode { reason: "invalid UTF-8" })
    }

    fn optional_string(&mut self) -> Result<Option<String>, SeccompError> {
        match self.take(1)?[0] {
            0 => Ok(None),
            1 => self.string().map(Some),
            _ => Err(SeccompError::Decode { reason: "bad tag" }),
        }
    }
}
