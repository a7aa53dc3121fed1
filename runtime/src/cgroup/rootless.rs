//! Cgroups for a rootless container: used only where the caller may write them (a delegated
//! subtree), otherwise the container stays in the caller's cgroup, as runc and crun do.

use std::path::{Path, PathBuf};

use nix::unistd::AccessFlags;

use super::CgroupError;
use super::layout::{self, ProcCgroup};
use super::manager::{ContainerView, Manager, V1Mount};

impl Manager {
    /// Whether the caller may create the container's cgroup in every hierarchy with controllers
    /// (named ones like name=systemd are joined on a best-effort basis anyway): the deepest
    /// existing directory on the way to it is writable, and so is its `cgroup.procs` when the
    /// container's directory exists already. A systemd user session with `Delegate=yes`, or a
    /// cgroup chowned to the user, passes; a v1 hierarchy owned by root does not.
    /// Under the systemd driver, the caller's user manager makes the unit with `Delegate=yes`.
    pub fn delegated(&self) -> bool {
        if self.systemd_unit().is_some() {
            return true;
        }
        self.hierarchies().iter().filter(|h| h.unified || !h.controllers.iter().all(|c| c.starts_with("name="))).all(
            |h| {
                let existing = deepest_existing(&h.dir, &h.mount);
                let may_write = |p: &Path| nix::unistd::access(p, AccessFlags::W_OK | AccessFlags::X_OK).is_ok();
                may_write(&existing) && (existing != h.dir || may_write(&h.dir.join("cgroup.procs")))
            },
        )
    }

    /// How a `cgroup` mount looks inside a container that has no cgroup of its own: the caller's
    /// cgroup2 on a pure v2 host, else a read-only bind of the caller's directory in each v1
    /// hierarchy (what runc shows a rootless container).
    pub fn caller_view() -> Result<ContainerView, CgroupError> {
        let layout = layout::detect()?;
        if layout.is_pure_v2() {
            return Ok(ContainerView::Unified);
        }
        let own = match layout.own {
            Some(own) => own,
            None => layout::read_own_cgroups()?,
        };
        let mounts = layout
            .mounts
            .iter()
            .filter_map(|m| {
                let mine: &ProcCgroup = own.iter().find(|p| {
                    if m.unified {
                        p.controllers.is_empty()
                    } else {
                        p.controllers.iter().any(|c| m.controllers.contains(c))
                    }
                })?;
                let root = m.root.trim_end_matches('/');
                let rel = mine.path.strip_prefix(root).unwrap_or(&mine.path);
                let name = m.mountpoint.file_name()?.to_string_lossy().into_owned();
                let links = if m.controllers.len() > 1 {
                    m.controllers.iter().filter(|c| !c.starts_with("name=") && **c != name).cloned().collect()
                } else {
                    Vec::new()
                };
                Some(V1Mount { name, host_dir: m.mountpoint.join(rel.trim_start_matches('/')), links })
            })
            .collect();
        Ok(ContainerView::V1(mounts))
    }
}

/// `dir` or its deepest existing ancestor, not above `mount`.
fn deepest_existing(dir: &Path, mount: &Path) -> PathBuf {
    let mut p = dir.to_path_buf();
    while !p.exists() && p != mount {
        if !p.pop() {
            break;
        }
    }
    p
}
