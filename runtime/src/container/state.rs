//! The container's persisted state (`<root>/<id>/state.json`), its lock, and its status.
//!
//! The status is derived, never trusted from the file: a container whose init process is gone
//! (or was replaced by a recycled pid: the start time is checked) is stopped; one whose exec
//! fifo still exists is created; a frozen cgroup means paused.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
#[allow(deprecated)]
use nix::fcntl::{AtFlags, FlockArg, OFlag, flock};
use nix::sys::stat::Mode;
use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};

use super::id::ContainerId;
use super::status::Status;
use crate::cgroup::CgroupState;
use crate::error::{Error, ErrorKind};

pub const STATE_FILE: &str = "state.json";
/// The state while `create` runs; replaced by state.json when it completes. Two names, so that
/// the final state never renames over an existing file (ext4 flushes data on such renames).
pub const CREATING_FILE: &str = "creating.json";
pub const EXEC_FIFO: &str = "exec.fifo";
pub const CONFIG_COPY: &str = "config.json";

/// How far `create` got; only `Created` containers are complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Creating,
    Created,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<Hook>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub phase: Phase,
    /// Host pid of the container's init (0 until it exists).
    pub pid: i32,
    /// Its start time (field 22 of /proc/<pid>/stat), to tell it from a recycled pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    pub owner: String,
    pub oci_version: String,
    pub cgroup: Option<CgroupState>,
    #[serde(default)]
    pub hooks: StoredHooks,
    /// Namespace types the container has (new or joined), as /proc/<pid>/ns names, in join order.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// config.json had a process: without one the container can be created but not started.
    #[serde(default = "yes")]
    pub has_process: bool,
}

fn yes() -> bool {
    true
}

/// The container's state directory, opened and locked.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: ContainerId,
    pub path: PathBuf,
    fd: OwnedFd,
    /// Whether this process holds the lock (through `fd`).
    locked: std::cell::Cell<bool>,
}

impl ContainerDir {
    /// Make `<root>/<id>` for a new container and lock it; an existing id is `AlreadyExists`.
    pub fn create(root: &Path, id: &ContainerId) -> Result<Self, Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(|e| io_error(ErrorKind::Other, format!("create state root {}", root.display()), e))?;
        let path = root.join(id.as_str());
        // Until we hold the lock, a concurrent `delete` may take the new, empty directory for what a
        // crashed create left and remove it: the id is free again then, and we claim it anew.
        for _ in 0..16 {
            match fs::DirBuilder::new().mode(0o711).create(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::msg(ErrorKind::AlreadyExists, format!("container with id exists: {id}")));
                }
                Err(e) => return Err(io_error(ErrorKind::Other, format!("create state dir {}", path.display()), e)),
            }
            let dir = match Self::open_path(id.clone(), path.clone()) {
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                other => other?,
            };
            match dir.lock(true) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            // The directory we opened by name may be another create's, made after ours was removed:
            // ours is still empty.
            if nix::unistd::faccessat(dir.fd.as_fd(), STATE_FILE, nix::unistd::AccessFlags::F_OK, AtFlags::empty())
                .is_ok()
            {
                return Err(Error::msg(ErrorKind::AlreadyExists, format!("container with id exists: {id}")));
            }
            return Ok(dir);
        }
        Err(Error::msg(ErrorKind::Other, format!("create state dir {}: removed again and again", path.display())))
    }

    /// Open the directory of an existing container (not locked).
    pub fn open(root: &Path, id: &ContainerId) -> Result<Self, Error> {
        Self::open_path(id.clone(), root.join(id.as_str()))
    }

    fn open_path(id: ContainerId, path: PathBuf) -> Result<Self, Error> {
        match nix::fcntl::open(&path, OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => Ok(Self { id, path, fd, locked: std::cell::Cell::new(false) }),
            Err(Errno::ENOENT | Errno::ENOTDIR) => {
                Err(Error::msg(ErrorKind::NotFound, format!("container \"{id}\" does not exist")))
            }
            Err(e) => Err(io_error(ErrorKind::Other, format!("open state dir {}", path.display()), e.into())),
        }
    }

    /// Take the container's lock (exclusive for changes). Released when the process exits.
    ///
    /// A directory removed while we waited (a concurrent `delete`) is `NotFound`: its path may
    /// already name a new container of the same id, which is not the one we opened.
    pub fn lock(&self, exclusive: bool) -> Result<(), Error> {
        let arg = if exclusive { FlockArg::LockExclusive } else { FlockArg::LockShared };
        #[allow(deprecated)]
        flock(self.fd.as_raw_fd(), arg)
            .map_err(|e| io_error(ErrorKind::Other, format!("lock {}", self.path.display()), e.into()))?;
        self.locked.set(true);
        match nix::sys::stat::fstat(self.fd.as_fd()) {
            Ok(st) if st.st_nlink == 0 => {
                Err(Error::msg(ErrorKind::NotFound, format!("container \"{}\" does not exist", self.id)))
            }
            _ => Ok(()),
        }
    }

    /// Whether another live process holds the lock (a create still in progress).
    pub fn locked_by_other(&self) -> bool {
        // Probing through our own descriptor would convert, then drop, a lock we hold ourselves.
        if self.locked.get() {
            return false;
        }
        #[allow(deprecated)]
        match flock(self.fd.as_raw_fd(), FlockArg::LockSharedNonblock) {
            Ok(()) => {
                #[allow(deprecated)]
                let _unlock = flock(self.fd.as_raw_fd(), FlockArg::UnlockNonblock);
                false
            }
            Err(_) => true,
        }
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn load(&self) -> Result<State, Error> {
        let not_found = |r: &std::io::Result<Vec<u8>>| matches!(r, Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        let mut path = self.file(STATE_FILE);
        let mut read = fs::read(&path);
        if not_found(&read) {
            path = self.file(CREATING_FILE);
            read = fs::read(&path);
            if not_found(&read) {
                // `save` may have published state.json and removed creating.json in between.
                path = self.file(STATE_FILE);
                read = fs::read(&path);
            }
        }
        let bytes = match read {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::msg(ErrorKind::NotFound, format!("container \"{}\" does not exist", self.id)));
            }
            Err(e) => return Err(io_error(ErrorKind::Other, format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(ErrorKind::Other, crate::error::Message(format!("corrupt state file {}: {e}", path.display())))
        })
    }

    /// Write the state of a container being created (creating.json), atomically: a concurrent
    /// `state` or `list` must never read it half-written.
    pub fn save_creating(&self, state: &State) -> Result<(), Error> {
        self.write_atomically(CREATING_FILE, state)
    }

    /// Publish the complete state: state.json appears atomically, then creating.json goes.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        self.write_atomically(STATE_FILE, state)?;
        match fs::remove_file(self.file(CREATING_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io_error(ErrorKind::Other, format!("remove {}", self.file(CREATING_FILE).display()), e))
            }
            _ => Ok(()),
        }
    }

    /// `state` as JSON in `name`, through a temporary file renamed into place.
    fn write_atomically(&self, name: &str, state: &State) -> Result<(), Error> {
        let tmp = self.file(&format!("{name}.tmp"));
        let path = self.file(name);
        let bytes = serde_json::to_vec(state).map_err(|e| Error::new(ErrorKind::Other, e))?;
        let write = || -> std::io::Result<()> {
            let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&bytes)?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| io_error(ErrorKind::Other, format!("write {}", path.display()), e))
    }

    /// Remove the whole directory.
    pub fn remove(&self) -> Result<(), Error> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(ErrorKind::Other, format!("remove {}", self.path.display()), e)),
        }
    }
}

pub fn io_error(kind: ErrorKind, context: String, source: std::io::Error) -> Error {
    #[derive(Debug, thiserror::Error)]
    #[error("{context}")]
    struct Ctx {
        context: String,
        #[source]
        source: std::io::Error,
    }
    Error::new(kind, Ctx { context, source })
}

impl State {
    /// The state JSON given to hooks on stdin.
    pub fn hook_json(&self, status: &str, pid: i32) -> String {
        crate::hooks::HookState {
            oci_version: &self.oci_version,
            id: &self.id,
            status,
            pid,
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
        .to_json()
    }

    /// The runtime-spec state of this container with `status`, for a seccomp agent.
    pub fn oci(&self, status: oci_spec::runtime::ContainerState, pid: i32) -> oci_spec::runtime::State {
        let mut s = oci_spec::runtime::State::default();
        s.set_version(self.oci_version.clone());
        s.set_id(self.id.clone());
        s.set_status(status);
        s.set_pid(Some(pid));
        s.set_bundle(self.bundle.clone());
        s.set_annotations((!self.annotations.is_empty()).then(|| self.annotations.clone()));
        s
    }
}

/// Whether `pid` is still the process that was started at `start` (and not a zombie).
pub fn process_alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match read_stat(pid) {
        Some((state, started)) => state != 'Z' && state != 'X' && (start == 0 || started == start),
        None => false,
    }
}

/// (state letter, start time) from /proc/<pid>/stat.
pub fn read_stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // After the state come fields 4..: starttime is field 22, i.e. the 19th after state.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl State {
    /// The status clients see, derived from the live system.
    pub fn status(&self, dir: &ContainerDir, frozen: impl FnOnce() -> bool) -> Status {
        if self.phase == Phase::Creating {
            return if dir.locked_by_other() { Status::Creating } else { Status::Stopped };
        }
        if !process_alive(self.pid, self.pid_start) {
            return Status::Stopped;
        }
        if dir.file(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if frozen() { Status::Paused } else { Status::Running }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_of_self_parses() {
        let (state, start) = read_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
        assert!(process_alive(std::process::id() as i32, start));
        assert!(!process_alive(std::process::id() as i32, start + 1), "a different start time is another process");
        assert!(!process_alive(0, 0));
    }
}
