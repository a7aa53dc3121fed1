//! Bind sources opened by the parent, before the container's user namespace exists.
//!
//! In a new user namespace the container's init is the mapped root, an unprivileged user on the
//! host: it cannot reach a source below a directory only host root may enter (a volume under
//! /var/lib/containers, /var/lib/docker). runc and crun open such sources before the namespace
//! exists; here the parent clones each source tree (`open_tree`) before `clone3`, the child
//! inherits the detached trees and attaches them where its plan says.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::RootfsError;
use crate::plan::{MountKind, MountStep};

/// One entry per mount step: the detached tree of a bind step, `None` for the others.
#[derive(Debug, Default)]
pub struct BindTrees(Vec<Option<OwnedFd>>);

impl BindTrees {
    /// Clone the source tree of every bind step.
    pub fn open(steps: &[MountStep]) -> Result<Self, RootfsError> {
        let mut trees = Vec::with_capacity(steps.len());
        for step in steps {
            trees.push(match &step.kind {
                MountKind::Bind { source, recursive } => Some(super::mounts::clone_source(source, *recursive)?),
                MountKind::Fs { .. } | MountKind::Cgroup => None,
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
