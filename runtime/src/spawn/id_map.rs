//! Writing a new user namespace's id maps, with or without privilege.
//!
//! * With privilege over the ids (root, or uid 0 of an engine's user namespace mapping them):
//!   `/proc/PID/uid_map` and `gid_map` written directly.
//! * Without, and only the caller's own uid and gid mapped, one id each: also written directly,
//!   which the kernel allows only after `setgroups` is set to `deny` (runc and crun do the same).
//! * Without, and anything more: through the setuid helpers `newuidmap` and `newgidmap` (package
//!   `uidmap`), which map what `/etc/subuid` and `/etc/subgid` grant the user.

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    #[error("write {file} of pid {pid}")]
    Write {
        file: &'static str,
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "rootless: the {what} mappings need {helper} (package uidmap) to map more than your own {what} {id}, and it is not in PATH or /usr/bin"
    )]
    HelperMissing { what: &'static str, helper: &'static str, id: u32 },
    #[error(
        "rootless: {file} has no range of subordinate {what}s for user {user}: the {what} mappings map more than your own {what} {id}"
    )]
    NoRange { file: &'static str, what: &'static str, user: String, id: u32 },
    #[error("rootless: run {helper} for pid {pid}")]
    HelperStart {
        helper: &'static str,
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("rootless: {helper} {args} failed ({status}): {stderr}")]
    HelperFailed { helper: &'static str, args: String, status: String, stderr: String },
    #[error("create a user namespace for an idmapped mount")]
    MountNamespace(#[source] nix::errno::Errno),
    #[error("open the user namespace of pid {pid} for an idmapped mount")]
    OpenMountNamespace {
        pid: i32,
        #[source]
        source: nix::errno::Errno,
    },
}

/// A user namespace with these maps, for `mount_setattr(MOUNT_ATTR_IDMAP)`: made by a child that
/// does nothing but exist until its namespace is opened, then is killed and reaped. The caller
/// must be single-threaded (a fork).
pub fn mapped_user_namespace(uid_map: &str, gid_map: &str) -> Result<std::os::fd::OwnedFd, IdMapError> {
    use crate::sys::process::{Forked, clone3_fork};
    let forked = clone3_fork(libc::CLONE_NEWUSER as u64, None).map_err(IdMapError::MountNamespace)?;
    let Forked::Parent { pid, pidfd: _pidfd } = forked else {
        // The child: its namespace is all that is wanted of it; SIGKILL ends it.
        loop {
            nix::unistd::pause();
        }
    };
    // No process of this namespace ever calls setgroups; denying it lets an unprivileged caller
    // write gid_map (the kernel's rule), so that the idmapping itself says what it lacks.
    let maps =
        IdMaps { uid_map: uid_map.to_owned(), gid_map: gid_map.to_owned(), how: How::Direct { deny_setgroups: true } };
    let opened = maps.write(pid).and_then(|()| {
        nix::fcntl::open(
            format!("/proc/{pid}/ns/user").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|source| IdMapError::OpenMountNamespace { pid: pid.as_raw(), source })
    });
    // Our own child, not yet reaped: the pid cannot have been reused.
    let _gone = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _reaped = nix::sys::wait::waitpid(pid, None);
    opened
}

/// How the maps of one user namespace get written.
#[derive(Debug)]
pub struct IdMaps {
    uid_map: String,
    gid_map: String,
    how: How,
}

#[derive(Debug)]
enum How {
    /// Written to /proc; `deny_setgroups`: the unprivileged single-id case.
    Direct {
        deny_setgroups: bool,
    },
    Helpers {
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
}

impl IdMaps {
    /// Decide how to write `uid_map` and `gid_map` (the /proc format, one range a line). Fails
    /// when a helper or a subordinate range is missing, before anything is cloned.
    pub fn plan(uid_map: &str, gid_map: &str) -> Result<Self, IdMapError> {
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        let how = if euid == 0 {
            How::Direct { deny_setgroups: false }
        } else if only_own_id(uid_map, euid) && only_own_id(gid_map, egid) {
            How::Direct { deny_setgroups: true }
        } else {
            let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(euid)).ok().flatten().map(|u| u.name);
            check_range("/etc/subuid", "uid", user.as_deref(), euid, uid_map)?;
            check_range("/etc/subgid", "gid", user.as_deref(), egid, gid_map)?;
            How::Helpers {
                newuidmap: find_helper("newuidmap").ok_or(IdMapError::HelperMissing {
                    what: "uid",
                    helper: "newuidmap",
                    id: euid,
                })?,
                newgidmap: find_helper("newgidmap").ok_or(IdMapError::HelperMissing {
                    what: "gid",
                    helper: "newgidmap",
                    id: egid,
                })?,
            }
        };
        Ok(Self { uid_map: uid_map.to_owned(), gid_map: gid_map.to_owned(), how })
    }

    /// Whether the maps are written without privilege (the child must then be dumpable until they are).
    pub fn written_by_unprivileged(&self) -> bool {
        !matches!(self.how, How::Direct { deny_setgroups: false })
    }

    pub fn write(&self, pid: Pid) -> Result<(), IdMapError> {
        match &self.how {
            How::Direct { deny_setgroups } => {
                write_proc(pid, "uid_map", &self.uid_map)?;
                if *deny_setgroups {
                    write_proc(pid, "setgroups", "deny")?;
                }
                write_proc(pid, "gid_map", &self.gid_map)
            }
            How::Helpers { newuidmap, newgidmap } => {
                run_helper("newuidmap", newuidmap, pid, &self.uid_map)?;
                run_helper("newgidmap", newgidmap, pid, &self.gid_map)
            }
        }
    }
}

fn write_proc(pid: Pid, file: &'static str, content: &str) -> Result<(), IdMapError> {
    std::fs::write(format!("/proc/{pid}/{file}"), content).map_err(|source| IdMapError::Write {
        file,
        pid: pid.as_raw(),
        source,
    })
}

/// One range, of size one, whose host id is `id`.
fn only_own_id(map: &str, id: u32) -> bool {
    let ranges = ranges(map);
    ranges.len() == 1 && ranges[0].1 == u64::from(id) && ranges[0].2 == 1
}

/// (inside, outside, size) of each line.
fn ranges(map: &str) -> Vec<(u64, u64, u64)> {
    map.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace().map(str::parse::<u64>);
            Some((f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?))
        })
        .collect()
}

/// The helpers check the ranges themselves; this only turns "no range at all" into a message
/// that says which file lacks what (newuidmap's own is "write to uid_map failed").
fn check_range(
    file: &'static str,
    what: &'static str,
    user: Option<&str>,
    id: u32,
    map: &str,
) -> Result<(), IdMapError> {
    if ranges(map).iter().all(|&(_, outside, size)| outside == u64::from(id) && size == 1) {
        return Ok(());
    }
    let content = std::fs::read_to_string(file).unwrap_or_default();
    let own = id.to_string();
    let has_range =
        content.lines().filter_map(|l| l.split(':').next()).any(|owner| owner == own || Some(owner) == user);
    if has_range {
        return Ok(());
    }
    Err(IdMapError::NoRange { file, what, user: user.map_or_else(|| own.clone(), str::to_owned), id })
}

/// The helper in PATH, else in /usr/bin (podman runs some commands with no PATH at all).
fn find_helper(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file()
}

fn run_helper(helper: &'static str, path: &Path, pid: Pid, map: &str) -> Result<(), IdMapError> {
    let mut args = vec![pid.as_raw().to_string()];
    for (inside, outside, size) in ranges(map) {
        args.extend([inside.to_string(), outside.to_string(), size.to_string()]);
    }
    let out = Command::new(path)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| IdMapError::HelperStart { helper, pid: pid.as_raw(), source })?;
    if out.status.success() {
        return Ok(());
    }
    Err(IdMapError::HelperFailed {
        helper,
        args: args.join(" "),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_id_only() {
        assert!(only_own_id("0 1000 1\n", 1000));
        assert!(!only_own_id("0 1000 2\n", 1000));
        assert!(!only_own_id("0 1000 1\n1 100000 65536\n", 1000));
        assert!(!only_own_id("0 1001 1\n", 1000));
    }

    #[test]
    fn a_map_of_only_the_own_id_needs_no_range() {
        assert!(check_range("/nonexistent", "uid", Some("u"), 1000, "0 1000 1\n").is_ok());
        let e = check_range("/nonexistent", "uid", Some("u"), 1000, "0 1000 1\n1 100000 10\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "rootless: /nonexistent has no range of subordinate uids for user u: the uid mappings map more than your own uid 1000"
        );
    }
}
