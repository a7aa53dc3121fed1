//! Applying layers one after the other onto one plain directory (a flattened rootfs), instead of
//! unpacking each into a directory of its own in overlay form.
//!
//! The result must be what overlayfs shows for the same layers. A layer's whiteouts and opaque
//! markers therefore delete from the tree what the layers below put there, but never what this
//! layer itself has (layer.md: a whiteout hides only lower layers); which entries are this
//! layer's is tracked by path, with every ancestor of an entry counting as this layer's (in
//! overlay form that directory exists in the layer). A lower non-directory in the way of one of
//! this layer's paths is replaced by a directory, as the upper directory hides it in overlayfs.
//! Directory modes and times are applied once, after the last layer: writing into a directory
//! changes its time, and later layers write into the directories of earlier ones.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fchmod, futimens};
use nix::sys::time::TimeSpec;

use super::{Error, apply_err};
use crate::fsutil::{self, lstat_at, open_beneath};
use crate::sys::xattr;

/// The tree being built, across layers.
#[derive(Debug)]
pub struct MergedTree<'a> {
    pub(super) root: BorrowedFd<'a>,
    /// Directory path -> (mode, mtime) of the topmost layer that had an entry for it.
    pub(super) dirs: BTreeMap<Vec<u8>, (u32, TimeSpec)>,
    /// Layers applied so far.
    pub(super) layers: usize,
}

impl<'a> MergedTree<'a> {
    /// A tree in the (empty) directory `root`.
    pub fn new(root: BorrowedFd<'a>) -> Self {
        Self { root, dirs: BTreeMap::new(), layers: 0 }
    }

    /// Directory modes and times, once every layer is applied. A directory that is no longer
    /// there (or no longer a directory) was replaced by a later layer: nothing to set.
    pub fn finish(self) -> Result<(), Error> {
        for (path, (mode, mtime)) in self.dirs {
            let fd = match open_beneath(self.root, &path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                Err(e) => return Err(apply_err(&path, "reopening a directory")(e)),
            };
            fchmod(&fd, Mode::from_bits_retain(mode)).map_err(apply_err(&path, "setting the mode"))?;
            futimens(&fd, &mtime, &mtime).map_err(apply_err(&path, "setting the times"))?;
        }
        Ok(())
    }
}

/// What one layer being applied to a [`MergedTree`] keeps.
#[derive(Debug)]
pub(super) struct LayerMerge<'t> {
    root: BorrowedFd<'t>,
    /// Whether layers below this one were applied (else nothing in the tree is theirs).
    has_lower: bool,
    pub(super) dirs: &'t mut BTreeMap<Vec<u8>, (u32, TimeSpec)>,
    /// Every path this layer has an entry under (the entry and its ancestors).
    pub(super) ours: HashSet<Vec<u8>>,
    /// The last parent whose ancestors were recorded (entries come grouped by directory).
    last_parent: Option<Vec<u8>>,
}

impl<'t> LayerMerge<'t> {
    pub(super) fn new(tree: &'t mut MergedTree<'_>) -> Self {
        let has_lower = tree.layers > 0;
        tree.layers += 1;
        Self { root: tree.root, has_lower, dirs: &mut tree.dirs, ours: HashSet::new(), last_parent: None }
    }

    /// Record the ancestors of an entry whose parent is `parent` as this layer's. A lower
    /// directory that becomes this layer's without an entry of its own loses its extended
    /// attributes: overlayfs shows the topmost layer's directory, which the layer's unpacking
    /// made with the lower ownership, mode and time only. (An entry for it later in the layer
    /// sets its own.)
    pub(super) fn note_parent(&mut self, parent: &[&[u8]], raw: &[u8]) -> Result<(), Error> {
        let key = super::path::join(parent);
        if self.last_parent.as_deref() == Some(key.as_slice()) {
            return Ok(());
        }
        for n in 1..=parent.len() {
            let dir = super::path::join(&parent[..n]);
            if self.ours.contains(&dir) {
                continue;
            }
            if self.has_lower {
                let fd = open_beneath(self.root, &dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(apply_err(raw, "opening a parent directory"))?;
                for k in xattr::list_at(fd.as_fd(), c".").map_err(apply_err(raw, "listing extended attributes"))? {
                    xattr::remove_at(fd.as_fd(), c".", &k).map_err(apply_err(raw, "removing an extended attribute"))?;
                }
            }
            self.ours.insert(dir);
        }
        self.last_parent = Some(key);
        Ok(())
    }

    pub(super) fn is_ours(&self, path: &[u8]) -> bool {
        self.ours.contains(path)
    }

    /// `path` was removed from the tree: its directories' pending metadata goes with it.
    pub(super) fn forget(&mut self, path: &[u8]) {
        self.dirs.remove(path);
        let mut prefix = path.to_vec();
        prefix.push(b'/');
        let below: Vec<Vec<u8>> = self
            .dirs
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.dirs.remove(&k);
        }
    }

    /// Remove from the directory `path` everything that is not this layer's (an opaque
    /// directory, or a whiteout of a directory this layer has too).
    pub(super) fn prune_lower(&mut self, root: BorrowedFd<'_>, path: &[u8], raw: &[u8]) -> Result<(), Error> {
        let mut stack = vec![path.to_vec()];
        while let Some(dir) = stack.pop() {
            let fd = open_beneath(root, &dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(apply_err(raw, "opening a directory to hide what is below it"))?;
            for name in fsutil::list_dir(fd.as_fd()).map_err(apply_err(raw, "listing a directory"))? {
                let mut child = dir.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(name.to_bytes());
                if !self.is_ours(&child) {
                    fsutil::remove_all_at(fd.as_fd(), &name).map_err(apply_err(raw, "removing a hidden entry"))?;
                    self.forget(&child);
                } else if lstat_at(fd.as_fd(), &name)
                    .map_err(apply_err(raw, "inspecting an entry"))?
                    .as_ref()
                    .is_some_and(fsutil::is_dir)
                {
                    stack.push(child);
                }
            }
        }
        Ok(())
    }
}
