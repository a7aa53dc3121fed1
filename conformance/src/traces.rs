//! What a container can leave on the host: cgroup directories and processes in them. For the tests
//! that check nothing is left after a crash, a race or a load run.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fail::OrFail;

/// Mount points of every cgroup hierarchy (v1 and v2) in the test's mount namespace.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .collect()
}

/// The directories an absolute `cgroups_path` has in the hierarchies where it exists.
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    cgroup_mounts().into_iter().map(|m| m.join(cgroups_path.trim_start_matches('/'))).filter(|d| d.exists()).collect()
}

/// Processes whose cgroup (in any hierarchy) is `cgroups_path` or below it.
pub fn processes_in(cgroups_path: &str) -> Vec<i32> {
    let below = format!("{}/", cgroups_path.trim_end_matches('/'));
    processes_where(|p| p == cgroups_path || p.starts_with(&below))
}

/// Processes whose cgroup path (in any hierarchy) starts with `prefix` (a name prefix, not only a
/// directory).
pub fn processes_with_cgroup_prefix(prefix: &str) -> Vec<i32> {
    processes_where(|p| p.starts_with(prefix))
}

fn processes_where(matches: impl Fn(&str) -> bool) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else { return found };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cg = fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cg.lines().filter_map(|l| l.splitn(3, ':').nth(2)).any(&matches) {
            found.push(pid);
        }
    }
    found
}

/// Mount points in the test's (the host's) mount namespace at or below `dir`.
pub fn mounts_below(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").or_fail("read the test's mountinfo");
    let prefix = dir.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| *mp == prefix || mp.starts_with(&format!("{prefix}/")))
        .map(str::to_string)
        .collect()
}

/// Makes the parent of `cgroups_path` in every hierarchy, as an administrator would before running
/// containers below it, so that no `create` makes (and a failed one removes) it: a test that counts
/// the runtime's system calls then sees the same calls in every run. A new v1 cpuset parent gets its
/// parent's cpus and mems, or nothing could join a cgroup below it.
pub fn make_cgroup_parent(cgroups_path: &str) {
    let parent = Path::new(cgroups_path.trim_start_matches('/')).parent().unwrap_or(Path::new(""));
    if parent.as_os_str().is_empty() {
        return;
    }
    for mount in cgroup_mounts() {
        let dir = mount.join(parent);
        if dir.exists() {
            continue;
        }
        fs::create_dir_all(&dir).or_fail(format!("create cgroup {}", dir.display()));
        for file in ["cpuset.cpus", "cpuset.mems", "cpus", "mems"] {
            let Some(up) = dir.parent() else { continue };
            if !dir.join(file).exists() || !up.join(file).exists() {
                continue;
            }
            let value = fs::read_to_string(up.join(file)).or_fail(format!("read {}", up.join(file).display()));
            let own = fs::read_to_string(dir.join(file)).unwrap_or_default();
            if own.trim().is_empty() && !value.trim().is_empty() {
                fs::write(dir.join(file), value.trim()).or_fail(format!("write {}", dir.join(file).display()));
            }
        }
    }
}
