//! Which cgroup hierarchies this machine has, found at run time.
//!
//! - Pure v2: `/sys/fs/cgroup` is a cgroup2 mount (one `statfs`, nothing else read).
//! - v1 and hybrid: every `cgroup` mount in `/proc/self/mountinfo` is a v1 hierarchy (its
//!   controllers are the mount options that `/proc/self/cgroup` names, e.g. "cpu,cpuacct" or
//!   "name=systemd"); a `cgroup2` mount next to them (systemd's `/sys/fs/cgroup/unified`)
//!   makes the layout hybrid. Controllers that no v1 hierarchy has are then on the cgroup2 side.

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};

use super::CgroupError;

pub(crate) const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// v1 controllers ("cpu", "cpuacct", "name=systemd"); empty for cgroup2.
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The hierarchy's directory that is mounted there ("/" unless bind-mounted from deeper).
    pub root: String,
    pub unified: bool,
}

/// A line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    pub controllers: Vec<String>,
    pub path: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub mounts: Vec<Mount>,
    /// `/proc/self/cgroup`, when it had to be read.
    pub own: Option<Vec<ProcCgroup>>,
}

impl Layout {
    pub(crate) fn is_pure_v2(&self) -> bool {
        self.mounts.iter().all(|m| m.unified)
    }
}

pub(crate) fn detect() -> Result<Layout, CgroupError> {
    if statfs(DEFAULT_ROOT).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC) {
        let mount = Mount { controllers: Vec::new(), mountpoint: DEFAULT_ROOT.into(), root: "/".into(), unified: true };
        return Ok(Layout { mounts: vec![mount], own: None });
    }
    let own = parse_proc_cgroup(&read_file(Path::new("/proc/self/cgroup"))?);
    let mounts = mounts_from_mountinfo(&read_file(Path::new("/proc/self/mountinfo"))?, &own);
    if mounts.is_empty() {
        return Err(CgroupError::NoCgroupMount);
    }
    Ok(Layout { mounts, own: Some(own) })
}

pub(crate) fn read_own_cgroups() -> Result<Vec<ProcCgroup>, CgroupError> {
    Ok(parse_proc_cgroup(&read_file(Path::new("/proc/self/cgroup"))?))
}

fn read_file(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read { path: path.into(), source })
}

pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let _id = it.next()?;
            let controllers = it.next()?;
            let path = it.next()?;
            let controllers = controllers.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect::<Vec<_>>();
            Some(ProcCgroup { controllers, path: path.to_owned() })
        })
        .collect()
}

/// The cgroup hierarchies among the mounts, one mount per hierarchy (the first one seen).
pub(crate) fn mounts_from_mountinfo(mountinfo: &str, own: &[ProcCgroup]) -> Vec<Mount> {
    let known: Vec<&str> = own.iter().flat_map(|p| p.controllers.iter().map(String::as_str)).collect();
    let mut mounts: Vec<Mount> = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mut l = left.split(' ');
        let (Some(root), Some(mountpoint)) = (l.nth(3), l.next()) else { continue };
        let mut r = right.split(' ');
        let (Some(fstype), Some(_source), Some(super_opts)) = (r.next(), r.next(), r.next()) else { continue };
        let (root, mountpoint) = (unescape(root), PathBuf::from(unescape(mountpoint)));
        match fstype {
            "cgroup2" if !mounts.iter().any(|m| m.unified) => {
                mounts.push(Mount { controllers: Vec::new(), mountpoint, root, unified: true });
            }
            "cgroup" => {
                let controllers: Vec<String> =
                    super_opts.split(',').filter(|o| known.contains(o)).map(str::to_owned).collect();
                if controllers.is_empty() || mounts.iter().any(|m| m.controllers == controllers) {
                    continue;
                }
                mounts.push(Mount { controllers, mountpoint, root, unified: false });
            }
            _ => {}
        }
    }
    mounts
}

/// mountinfo escapes space, tab, newline and backslash as three-digit octal.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = (bytes[i] == b'\\' && i + 3 < bytes.len())
            .then(|| &bytes[i + 1..i + 4])
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| u8::try_from(d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'))).ok());
        if let Some(byte) = octal {
            out.push(byte);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // This machine's hybrid layout, abridged.
    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:32 /x /mnt/mem\\040dup rw - cgroup cgroup rw,memory
";
    const PROC_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/bf2d
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn hybrid_layout_is_read_from_mountinfo() {
        let own = parse_proc_cgroup(PROC_CGROUP);
        assert_eq!(own[1], ProcCgroup { controllers: vec!["memory".into()], path: "/process_api/bf2d".into() });
        assert_eq!(own[4], ProcCgroup { controllers: vec![], path: "/".into() });
        let mounts = mounts_from_mountinfo(MOUNTINFO, &own);
        let names: Vec<String> = mounts.iter().map(|m| m.controllers.join(",")).collect();
        assert_eq!(names, ["cpu", "cpuacct", "memory", "name=systemd", ""]);
        assert!(mounts[4].unified);
        assert_eq!(mounts[4].mountpoint, Path::new("/sys/fs/cgroup/unified"));
        // The second mount of the memory hierarchy is not another hierarchy.
        assert_eq!(mounts.iter().filter(|m| m.controllers == ["memory"]).count(), 1);
    }

    #[test]
    fn co_mounted_controllers_share_a_hierarchy() {
        let own = parse_proc_cgroup("3:cpu,cpuacct:/\n5:net_cls,net_prio:/\n");
        let mi = "1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                  2 0 0:2 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n";
        let mounts = mounts_from_mountinfo(mi, &own);
        assert_eq!(mounts[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(mounts[1].controllers, ["net_cls", "net_prio"]);
    }

    #[test]
    fn octal_escapes_are_decoded() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/trail\\04"), "/trail\\04");
    }
}
