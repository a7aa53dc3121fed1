//! Who is using a bundle: the processes running in it, and the containers a runtime recorded
//! for it.
//!
//! The ground truth is `/proc`: a process runs in the bundle when its root directory
//! (`/proc/PID/root`) is the bundle's rootfs (same device and inode: the overlay's root, or the
//! plain directory of a flattened bundle). That holds whichever runtime started it (strata,
//! runc, crun, through podman or containerd), for `exec`'d processes too, and needs no
//! cooperation. Container names come from strata's state directories: `/run/strata/ID/state.json`
//! (or `creating.json` while `create` runs) holds `bundle`, `pid` and `pid_start`. A recorded
//! container whose init still lives counts even before it has entered its root; a stopped one is
//! reported so its record can be deleted.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};

use crate::store::BundleRecord;
use crate::sys::process::{pidfd_open, pidfd_send_signal};

/// Where strata keeps container state (its `--root` default).
pub const STRATA_STATE_ROOT: &str = "/run/strata";

/// strata's default `--root` for the caller: [`STRATA_STATE_ROOT`] for root, else
/// `$XDG_RUNTIME_DIR/strata` (where a rootless strata keeps its containers).
pub fn default_state_root() -> std::path::PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from) {
        Some(dir) if !nix::unistd::geteuid().is_root() && dir.is_absolute() => dir.join("strata"),
        _ => std::path::PathBuf::from(STRATA_STATE_ROOT),
    }
}

/// One process running in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Process {
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
    /// The container it belongs to, when a runtime's state names it.
    pub container: Option<String>,
}

/// What uses a bundle.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Usage {
    /// Processes running in it.
    pub running: Vec<Process>,
    /// Containers strata still records for it whose process is gone (`strata delete` them).
    pub stopped: Vec<String>,
}

impl Usage {
    pub fn in_use(&self) -> bool {
        !self.running.is_empty()
    }

    /// `container c1 (pid 42, sh), pid 43 (sleep)`.
    pub fn describe(&self) -> String {
        let mut by_container: BTreeMap<Option<&str>, Vec<&Process>> = BTreeMap::new();
        for p in &self.running {
            by_container.entry(p.container.as_deref()).or_default().push(p);
        }
        let mut parts = Vec::new();
        for (container, procs) in by_container {
            match container {
                Some(c) => {
                    let list: Vec<String> = procs.iter().map(|p| format!("pid {} {}", p.pid, p.command)).collect();
                    parts.push(format!("container {c} ({})", list.join(", ")));
                }
                None => {
                    let list: Vec<String> = procs.iter().map(|p| format!("pid {} ({})", p.pid, p.command)).collect();
                    parts.push(list.join(", "));
                }
            }
        }
        parts.join("; ")
    }
}

/// A recorded container of a state root.
#[derive(Debug, Clone)]
struct Recorded {
    id: String,
    bundle: PathBuf,
    pid: i32,
    pid_start: u64,
}

fn recorded_containers(state_root: &Path) -> Vec<Recorded> {
    let Ok(rd) = fs::read_dir(state_root) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        // A container being created has only creating.json (strata writes state.json when done).
        let Ok(bytes) =
            fs::read(entry.path().join("state.json")).or_else(|_| fs::read(entry.path().join("creating.json")))
        else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        let (Some(id), Some(bundle)) = (v["id"].as_str(), v["bundle"].as_str()) else { continue };
        out.push(Recorded {
            id: id.to_string(),
            bundle: PathBuf::from(bundle),
            pid: v["pid"].as_i64().and_then(|p| i32::try_from(p).ok()).unwrap_or(0),
            pid_start: v["pid_start"].as_u64().unwrap_or(0),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Field 22 of `/proc/PID/stat`: when the process started (to tell it from a recycled pid).
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn alive(pid: i32, pid_start: u64) -> bool {
    pid > 0 && start_time(pid).is_some_and(|s| pid_start == 0 || s == pid_start)
}

fn command(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim_end().to_string()).unwrap_or_else(|_| "?".into())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

/// Pids whose root directory is `root` (device and inode).
fn processes_rooted_at(root: (u64, u64)) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else { return Vec::new() };
    let mut pids: Vec<i32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| *pid != me)
        .filter(|pid| fs::metadata(format!("/proc/{pid}/root")).is_ok_and(|m| (m.dev(), m.ino()) == root))
        .collect();
    pids.sort_unstable();
    pids
}

/// Everything that uses the bundle `rec`, looking at strata's records under `state_roots`.
pub fn usage(rec: &BundleRecord, state_roots: &[&Path]) -> Usage {
    let mut usage = Usage::default();
    let mut owner: BTreeMap<i32, String> = BTreeMap::new();
    for root in state_roots {
        for c in recorded_containers(root) {
            if !same_dir(&c.bundle, &rec.dir) {
                continue;
            }
            if alive(c.pid, c.pid_start) {
                owner.insert(c.pid, c.id);
            } else {
                usage.stopped.push(c.id);
            }
        }
    }
    let mut pids = match fs::metadata(&rec.rootfs) {
        Ok(m) => processes_rooted_at((m.dev(), m.ino())),
        Err(_) => Vec::new(),
    };
    // A recorded init that has not entered its root yet still counts.
    for pid in owner.keys() {
        if !pids.contains(pid) {
            pids.push(*pid);
        }
    }
    pids.sort_unstable();
    // Processes of a container share its init's pid namespace: name them after it.
    let ns_of = |pid: i32| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let container_ns: Vec<(Option<PathBuf>, String)> = owner.iter().map(|(p, id)| (ns_of(*p), id.clone())).collect();
    for pid in pids {
        let container = owner.get(&pid).cloned().or_else(|| {
            let ns = ns_of(pid)?;
            container_ns.iter().find(|(n, _)| n.as_ref() == Some(&ns)).map(|(_, id)| id.clone())
        });
        usage.running.push(Process { pid, command: command(pid), container });
    }
    usage
}

#[derive(Debug, thiserror::Error)]
pub enum KillError {
    #[error("killing pid {0}")]
    Signal(i32, #[source] Errno),
    #[error("pids {0} still run in the bundle {1:?} after SIGKILL")]
    Survivors(String, Duration),
}

/// SIGKILL every process running in the bundle and wait (up to `timeout`) until they are gone.
pub fn kill_all(rec: &BundleRecord, state_roots: &[&Path], timeout: Duration) -> Result<(), KillError> {
    let deadline = Instant::now() + timeout;
    loop {
        let running = usage(rec, state_roots).running;
        if running.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let pids: Vec<String> = running.iter().map(|p| p.pid.to_string()).collect();
            return Err(KillError::Survivors(pids.join(", "), timeout));
        }
        let mut fds = Vec::new();
        for p in running {
            // The descriptor pins this process: a pid recycled after the scan is never signalled.
            let fd = match pidfd_open(p.pid) {
                Ok(fd) => fd,
                Err(Errno::ESRCH) => continue,
                Err(e) => return Err(KillError::Signal(p.pid, e)),
            };
            match pidfd_send_signal(fd.as_fd(), libc::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => fds.push(fd),
                Err(e) => return Err(KillError::Signal(p.pid, e)),
            }
        }
        // A pidfd turns readable when its process has exited.
        for fd in &fds {
            let left = deadline.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32;
            let mut pfd = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut pfd, nix::poll::PollTimeout::try_from(left).unwrap_or(nix::poll::PollTimeout::ZERO)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(KillError::Signal(-1, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_reads_past_a_command_with_parentheses() {
        let me = std::process::id() as i32;
        let t = start_time(me).unwrap();
        assert!(alive(me, t));
        assert!(!alive(me, t + 1), "a different start time is a recycled pid");
        assert!(!alive(0, 0));
    }

    #[test]
    fn describe_groups_by_container() {
        let u = Usage {
            running: vec![
                Process { pid: 1, command: "sh".into(), container: Some("c1".into()) },
                Process { pid: 2, command: "sleep".into(), container: Some("c1".into()) },
                Process { pid: 9, command: "cat".into(), container: None },
            ],
            stopped: vec![],
        };
        assert_eq!(u.describe(), "pid 9 (cat); container c1 (pid 1 sh, pid 2 sleep)");
    }
}
