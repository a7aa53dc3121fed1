//! `linux.cgroupsPath`: which directory of each hierarchy the container gets.
//!
//! As in runc's cgroupfs drivers:
//! - an absolute path ("/libpod_parent/libpod-<id>", "/default/<id>", "/k8s.io/<id>") is taken
//!   from the root of every hierarchy;
//! - a relative path ("foo/bar") is taken from the cgroup the runtime itself runs in: on v1
//!   from the runtime's own cgroup in each hierarchy, on pure v2 from the *parent* of the
//!   runtime's cgroup (its own cgroup holds processes, so controllers cannot be enabled below
//!   it), and in the hybrid layout's cgroup2 hierarchy from its root (runc does the same);
//! - no path at all means the container id, relative.
//!
//! Deviation from runc: runc cleans ".." lexically ("/a/../b" becomes "/b"); a path with a ".."
//! component is rejected here, so what the user wrote is what is used. A path naming the root
//! itself ("/") is rejected too (the container would share, and delete would try to remove,
//! the root cgroup).

use super::CgroupError;

/// A validated, cleaned cgroups path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupPath {
    /// From the hierarchy's root; no leading '/'.
    Absolute(String),
    /// From the runtime's own cgroup.
    Relative(String),
}

impl CgroupPath {
    pub(crate) fn inner(&self) -> &str {
        match self {
            Self::Absolute(p) | Self::Relative(p) => p,
        }
    }
}

/// Work out the container's cgroup path from `linux.cgroupsPath` (or the container id), for
/// the cgroupfs driver (the systemd driver's paths: `systemd::unit`).
pub(crate) fn parse(cgroups_path: Option<&str>, container_id: &str) -> Result<CgroupPath, CgroupError> {
    let raw = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(container_id);
    if is_systemd_form(raw) {
        return Err(CgroupError::SystemdForm(raw.to_owned()));
    }
    let invalid = |reason: &'static str| CgroupError::InvalidPath { path: raw.to_owned(), reason };
    if raw.contains(['\0', '\n']) {
        return Err(invalid("contains a NUL or newline character"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid("contains a \"..\" component")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(invalid("names the root of the cgroup hierarchy"));
    }
    let inner = parts.join("/");
    Ok(if raw.starts_with('/') { CgroupPath::Absolute(inner) } else { CgroupPath::Relative(inner) })
}

/// "slice:prefix:name" (podman's "machine.slice:libpod:<id>", CRI's
/// "kubepods-....slice:cri-containerd:<id>", containerd's ":prefix:name" with the default slice):
/// refused without --systemd-cgroup, since the engine meant the systemd driver (runc would make a
/// directory of that name). Any other relative path with colons is an ordinary directory name,
/// as with runc's cgroupfs driver.
fn is_systemd_form(path: &str) -> bool {
    if path.starts_with('/') || path.contains('/') {
        return false;
    }
    let parts: Vec<&str> = path.split(':').collect();
    parts.len() == 3 && (parts[0].is_empty() || parts[0].ends_with(".slice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: Option<&str>) -> CgroupPath {
        parse(p, "ctr1").unwrap()
    }

    #[test]
    fn absolute_paths_from_the_clients() {
        assert_eq!(ok(Some("/libpod_parent/libpod-abc")), CgroupPath::Absolute("libpod_parent/libpod-abc".into()));
        assert_eq!(ok(Some("/default/cs")), CgroupPath::Absolute("default/cs".into()));
        assert_eq!(ok(Some("/k8s.io/ee67")), CgroupPath::Absolute("k8s.io/ee67".into()));
        assert_eq!(ok(Some("//a/./b/")), CgroupPath::Absolute("a/b".into()));
    }

    #[test]
    fn relative_paths_and_the_container_id() {
        assert_eq!(ok(Some("foo/bar")), CgroupPath::Relative("foo/bar".into()));
        assert_eq!(ok(None), CgroupPath::Relative("ctr1".into()));
        assert_eq!(ok(Some("")), CgroupPath::Relative("ctr1".into()));
        // Colons without the systemd shape are a plain name, as with runc's cgroupfs driver.
        assert_eq!(ok(Some("a:b")), CgroupPath::Relative("a:b".into()));
        assert_eq!(ok(Some("x:y:z")), CgroupPath::Relative("x:y:z".into()));
    }

    #[test]
    fn dot_dot_and_root_are_refused() {
        for p in ["/../etc", "../x", "/a/../../b", "a/..", "/", "//", "/./"] {
            let err = parse(Some(p), "c").unwrap_err();
            assert!(matches!(err, CgroupError::InvalidPath { .. }), "{p}: {err}");
        }
        assert!(matches!(parse(Some("/a\nb"), "c"), Err(CgroupError::InvalidPath { .. })));
    }

    #[test]
    fn systemd_form_needs_the_systemd_driver() {
        for p in ["machine.slice:libpod:abc", ":cri-containerd:abc", "system.slice:containerd:x"] {
            let e = parse(Some(p), "c").unwrap_err();
            assert!(matches!(e, CgroupError::SystemdForm(_)), "{p}");
            assert!(e.to_string().contains("--systemd-cgroup"), "{e}");
        }
    }
}
