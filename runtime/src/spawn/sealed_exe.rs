//! CVE-2019-5736 for containers that may ptrace.
//!
//! Between `clone3` and `execve` a container's init, and an `exec` child, are this process's
//! binary, visible in the container's pid namespace. Being non-dumpable (see
//! `become_non_dumpable`) keeps container processes from opening their `/proc/PID/exe`, unless a
//! process holds CAP_SYS_PTRACE in the initial user namespace: a container with that capability
//! and no user namespace of its own could reopen the host's runtime binary for writing. Only for
//! such a container, the runtime first re-executes itself from a sealed in-memory copy, so what
//! `/proc/PID/exe` leads to is that copy, which nobody can write. A binary on a read-only mount
//! needs no copy. Ordinary containers pay nothing.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::statvfs::{FsFlags, fstatvfs};

use crate::plan::process::CapSets;

/// CAP_SYS_PTRACE (capability.h).
const CAP_SYS_PTRACE: u32 = 19;

#[derive(Debug, thiserror::Error)]
pub enum SealedExeError {
    #[error("open the runtime's own binary")]
    OpenSelf(#[source] std::io::Error),
    #[error("create an in-memory copy of the runtime's binary")]
    Memfd(#[source] Errno),
    #[error("copy the runtime's binary into memory")]
    Copy(#[source] std::io::Error),
    #[error("seal the in-memory copy of the runtime's binary")]
    Seal(#[source] Errno),
    #[error("re-execute the runtime from its sealed copy")]
    Exec(#[source] Errno),
}

/// Whether processes of a container could open a runtime process's `/proc/PID/exe` although it
/// is non-dumpable: they may hold CAP_SYS_PTRACE (in the bounding set, or all capabilities when
/// the process keeps the runtime's) in the initial user namespace (no user namespace of their
/// own, new or joined).
pub fn reachable_by_container(caps: Option<&CapSets>, own_user_namespace: bool) -> bool {
    if own_user_namespace {
        return false;
    }
    match caps {
        None => true,
        Some(c) => c.bounding & (1 << CAP_SYS_PTRACE) != 0,
    }
}

/// Re-execute this process, same arguments and environment, from a sealed in-memory copy of its
/// binary, unless it already runs from one or from a read-only mount. Returns only when nothing
/// needed doing.
pub fn reexec_from_sealed_copy() -> Result<(), SealedExeError> {
    let mut exe = File::open("/proc/self/exe").map_err(SealedExeError::OpenSelf)?;
    if already_unwritable(&exe) {
        return Ok(());
    }
    let copy =
        memfd_create(c"strata", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).map_err(SealedExeError::Memfd)?;
    let mut copy = File::from(copy);
    std::io::copy(&mut exe, &mut copy).map_err(SealedExeError::Copy)?;
    let seals = SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(seals)).map_err(SealedExeError::Seal)?;
    drop(exe);
    match exec_self(&copy) {
        Ok(never) => match never {},
        Err(e) => Err(e),
    }
}

/// A sealed copy (we re-executed already) or a binary on a read-only mount cannot be written.
fn already_unwritable(exe: &File) -> bool {
    let sealed = fcntl(exe.as_fd(), FcntlArg::F_GET_SEALS)
        .is_ok_and(|s| SealFlag::from_bits_truncate(s).contains(SealFlag::F_SEAL_WRITE));
    sealed || fstatvfs(exe.as_fd()).is_ok_and(|st| st.flags().contains(FsFlags::ST_RDONLY))
}

fn exec_self(copy: &File) -> Result<Infallible, SealedExeError> {
    // Arguments and environment come from the kernel as NUL-terminated strings: no interior NUL.
    let to_c = |s: &std::ffi::OsStr| CString::new(s.as_bytes()).map_err(|_| SealedExeError::Exec(Errno::EINVAL));
    let args = std::env::args_os().map(|a| to_c(&a)).collect::<Result<Vec<_>, _>>()?;
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(&kv)
        })
        .collect::<Result<Vec<_>, _>>()?;
    nix::unistd::fexecve(copy.as_fd(), &args, &env).map_err(SealedExeError::Exec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ptrace_capable_containers_without_user_namespace() {
        let with = CapSets { bounding: 1 << CAP_SYS_PTRACE, ..CapSets::default() };
        let without = CapSets { bounding: 1 << 21, ..CapSets::default() };
        assert!(reachable_by_container(Some(&with), false));
        assert!(!reachable_by_container(Some(&without), false));
        assert!(reachable_by_container(None, false), "a process that keeps the runtime's capabilities");
        assert!(!reachable_by_container(Some(&with), true), "CAP_SYS_PTRACE only inside a user namespace");
    }
}
