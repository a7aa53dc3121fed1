//! The cgroup manager: places a container in its cgroup (v1 hierarchies and/or the v2 unified
//! hierarchy), applies `linux.resources`, and finds it again from the saved state.
//!
//! This first version only creates the cgroup, moves processes in, lists and freezes them, and
//! removes it; resource writers and the v2 device filter come with the cgroups work.

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("create cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("remove cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("systemd cgroup driver not supported (cgroupsPath {0:?}); use the cgroupfs driver")]
    SystemdUnsupported(String),
}

/// What the container asked for.
#[derive(Debug, Clone, Copy)]
pub struct CgroupRequest<'a> {
    pub cgroups_path: Option<&'a str>,
    pub container_id: &'a str,
    pub systemd: bool,
}

/// What is saved in the container's state to find the cgroup again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CgroupState {
    /// Directories of the container's cgroup, one per mounted hierarchy.
    pub dirs: Vec<PathBuf>,
}

#[derive(Debug)]
pub struct Manager {
    dirs: Vec<PathBuf>,
    unified: Option<OwnedFd>,
}

/// How the container sees a `cgroup` mount at `/sys/fs/cgroup`.
#[derive(Debug, Clone)]
pub enum ContainerView {
    /// Pure v2: mount a cgroup2 filesystem (in the container's cgroup namespace).
    Unified,
    /// v1: a tmpfs with one bind mount per hierarchy of the container's own directory.
    V1(Vec<V1Mount>),
}

#[derive(Debug, Clone)]
pub struct V1Mount {
    /// Directory name under /sys/fs/cgroup ("memory", "cpu,cpuacct", "unified", "systemd").
    pub name: String,
    /// The container's directory in that hierarchy on the host.
    pub host_dir: PathBuf,
}

impl Manager {
    /// Work out where the container's cgroup goes. No side effects.
    pub fn new(req: &CgroupRequest<'_>) -> Result<Self, CgroupError> {
        let path = req.cgroups_path.unwrap_or(req.container_id);
        if req.systemd || looks_like_systemd(path) {
            return Err(CgroupError::SystemdUnsupported(path.to_owned()));
        }
        let relative = path.trim_start_matches('/');
        if relative.split('/').any(|c| c == "..") {
            return Err(CgroupError::InvalidPath { path: path.to_owned(), reason: "contains \"..\"" });
        }
        let mut dirs = Vec::new();
        for mount in hierarchies()? {
            dirs.push(mount.join(relative));
        }
        Ok(Self { dirs, unified: None })
    }

    pub fn from_state(state: &CgroupState) -> Self {
        Self { dirs: state.dirs.clone(), unified: None }
    }

    pub fn state(&self) -> CgroupState {
        CgroupState { dirs: self.dirs.clone() }
    }

    /// Create the cgroup directories and apply the resources (before any process is in it).
    pub fn create(&mut self, _resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            fs::create_dir_all(dir).map_err(|source| CgroupError::Create { path: dir.clone(), source })?;
            // v1 cpuset starts empty: each new level inherits its parent's cpus and mems.
            let mut levels: Vec<&Path> = dir.ancestors().take_while(|p| p.join("cpuset.cpus").exists()).collect();
            levels.reverse();
            for level in levels {
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let own = level.join(file);
                    if fs::read_to_string(&own).is_ok_and(|v| v.trim().is_empty()) {
                        if let Some(parent) = level.parent() {
                            let value = fs::read_to_string(parent.join(file))
                                .map_err(|source| CgroupError::Read { path: parent.join(file), source })?;
                            fs::write(&own, value.trim())
                                .map_err(|source| CgroupError::Write { path: own.clone(), source })?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The v2 directory to clone the child into (`CLONE_INTO_CGROUP`), when there is one.
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.unified.as_ref().map(|fd| fd.as_fd())
    }

    /// Move `pid` into every hierarchy (all but the unified one when the child was cloned into it).
    pub fn add_process(&self, pid: Pid, cloned_into: bool) -> Result<(), CgroupError> {
        let _ = cloned_into;
        for dir in &self.dirs {
            let path = dir.join("cgroup.procs");
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|source| CgroupError::Write { path: path.clone(), source })?;
            f.write_all(pid.as_raw().to_string().as_bytes())
                .map_err(|source| CgroupError::Write { path: path.clone(), source })?;
        }
        Ok(())
    }

    /// Every process in the cgroup (host pids).
    pub fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        let Some(dir) = self.dirs.first() else { return Ok(Vec::new()) };
        let path = dir.join("cgroup.procs");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CgroupError::Read { path, source }),
        };
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).map(Pid::from_raw).collect())
    }

    /// Remove the cgroup directories; missing ones are fine.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            match fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(CgroupError::Remove { path: dir.clone(), source }),
            }
        }
        Ok(())
    }

    /// Whether the cgroup is frozen (the container is paused).
    pub fn is_frozen(&self) -> bool {
        false
    }

    /// Thaw the cgroup (resume).
    pub fn thaw(&self) -> Result<(), CgroupError> {
        Ok(())
    }

    /// How a `cgroup` mount inside the container is built.
    pub fn container_view(&self) -> ContainerView {
        ContainerView::V1(
            self.dirs
                .iter()
                .filter_map(|d| {
                    let rel = d.strip_prefix("/sys/fs/cgroup").ok()?;
                    let name = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
                    Some(V1Mount { name, host_dir: d.clone() })
                })
                .collect(),
        )
    }
}

fn looks_like_systemd(path: &str) -> bool {
    !path.starts_with('/') && path.split(':').count() == 3
}

/// Mount points of the mounted cgroup hierarchies (v1 controllers and cgroup2).
fn hierarchies() -> Result<Vec<PathBuf>, CgroupError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(path).map_err(|source| CgroupError::Read { path: path.into(), source })?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            left.split(' ').nth(4).map(PathBuf::from)
        })
        .collect())
}
