//! Bind sources opened by the parent, before the container's user namespace exists.
//!
//! In a new user namespace the container's init is the mapped root, an unprivileged user on the
//! host: it cannot reach a source below a directory only host root may enter (a volume under
//! /var/lib/containers, /var/lib/docker). runc and crun open such sources before the namespace
//! exists; here the parent clones each source tree (`open_tree`) before `clone3`, the child
//! inherits the detached trees and attaches them where its plan says. Idmapped bind mounts are
//! opened here in every case: the mapping goes on a detached tree, with a user namespace only
//! the parent can make (its maps name host ids).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::RootfsError;
use crate::plan::{MountKind, MountStep};

/// One entry per mount step: the detached tree of a bind step, `None` for the others.
#[derive(Debug, Default)]
pub struct BindTrees(Vec<Option<OwnedFd>>);

impl BindTrees {
    /// Clone the source tree of every bind step (`all`), or only of the idmapped ones; each
    /// idmapped tree gets its mapping here, while still detached: `idmap_namespaces[i]` is the
    /// user namespace for step `i`.
    pub fn open(steps: &[MountStep], all: bool, idmap_namespaces: &[Option<OwnedFd>]) -> Result<Self, RootfsError> {
        let mut trees = Vec::with_capacity(steps.len());
        for (index, step) in steps.iter().enumerate() {
            let userns = idmap_namespaces.get(index).and_then(Option::as_ref);
            trees.push(match &step.kind {
                MountKind::Bind { source, recursive } if all || userns.is_some() => {
                    let tree = super::mounts::clone_source(source, *recursive).map_err(|e| match (e, userns) {
                        (RootfsError::BindSource { source: Errno::EPERM, .. }, Some(_)) => {
                            super::mounts::idmap_error(step, source, Errno::EPERM)
                        }
                        (e, _) => e,
                    })?;
                    if let (Some(userns), Some(idmap)) = (userns, &step.idmap) {
                        super::mounts::set_idmap(tree.as_fd(), userns.as_fd(), idmap.recursive, step, source)?;
                    }
                    Some(tree)
                }
                MountKind::Bind { .. } | MountKind::Fs { .. } | MountKind::Cgroup => None,
            });
        }
        Ok(BindTrees(trees))
    }

    /// The tree opened for step `index`, if the parent opened one.
    pub fn take(&mut self, index: usize) -> Option<OwnedFd> {
        self.0.get_mut(index).and_then(Option::take)
    }

    /// The descriptors the child must keep until it has mounted them.
    pub fn raw_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.0.iter().flatten().map(AsRawFd::as_raw_fd)
    }
}
