//! Masked and read-only paths, and read-only remounts, done after `pivot_root` on descriptors
//! resolved inside the new root.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, makedev};

use super::RootfsError;
use super::mounts::set_attrs;
use super::resolve::open_in_root;
use crate::plan::mounts::Attrs;
use crate::sys::mount::{FsContext, MOUNT_ATTR_RDONLY, OPEN_TREE_CLONE, move_mount_fd, open_tree};

fn is_dir(fd: BorrowedFd<'_>) -> bool {
    fstat(fd).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR).unwrap_or(false)
}

fn display(p: &Path) -> String {
    format!("/{}", p.display())
}

/// Hide each masked path: files under a bind of the verified `/dev/null`, directories under an
/// empty read-only tmpfs. Missing paths are skipped.
pub fn mask_paths(root: BorrowedFd<'_>, paths: &[PathBuf]) -> Result<(), RootfsError> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut dev_null: Option<OwnedFd> = None;
    let mut empty_dir: Option<OwnedFd> = None;
    for p in paths {
        let err = |source| RootfsError::Mask { path: display(p), source };
        let target = match open_in_root(root, p, OFlag::O_PATH, false) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(err(e)),
        };
        let source = if is_dir(target.as_fd()) {
            if empty_dir.is_none() {
                // The first masked directory gets the new tmpfs itself; the others clone it once
                // it is attached (older kernels cannot clone a detached mount).
                let ctx = FsContext::open(c"tmpfs").map_err(err)?;
                ctx.set_string(c"size", c"0").map_err(err)?;
                let mnt = ctx.mount(MOUNT_ATTR_RDONLY).map_err(err)?;
                move_mount_fd(mnt.as_fd(), target.as_fd()).map_err(err)?;
                empty_dir = Some(mnt);
                continue;
            }
            empty_dir.as_ref()
        } else {
            if dev_null.is_none() {
                dev_null = Some(verified_dev_null(root)?);
            }
            dev_null.as_ref()
        };
        let Some(source) = source else { continue };
        let clone = open_tree(source.as_fd(), c"", OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32).map_err(err)?;
        move_mount_fd(clone.as_fd(), target.as_fd()).map_err(err)?;
    }
    Ok(())
}

/// The container's `/dev/null`, refused unless it is the real null device (not a symlink, not
/// another device an image planted).
fn verified_dev_null(root: BorrowedFd<'_>) -> Result<OwnedFd, RootfsError> {
    let fd = open_in_root(root, Path::new("dev/null"), OFlag::O_PATH | OFlag::O_NOFOLLOW, true)
        .map_err(|_| RootfsError::BadDevNull)?;
    let st = fstat(fd.as_fd()).map_err(|_| RootfsError::BadDevNull)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != makedev(1, 3) {
        return Err(RootfsError::BadDevNull);
    }
    Ok(fd)
}

/// Make each path (and everything mounted below it) read-only. Missing paths are skipped.
pub fn readonly_paths(root: BorrowedFd<'_>, paths: &[PathBuf]) -> Result<(), RootfsError> {
    for p in paths {
        let err = |source| RootfsError::Readonly { path: display(p), source };
        let target = match open_in_root(root, p, OFlag::O_PATH, false) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(err(e)),
        };
        let flags = OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32 | libc::AT_RECURSIVE as u32;
        let clone = open_tree(target.as_fd(), c"", flags).map_err(err)?;
        set_attrs(clone.as_fd(), Attrs { set: MOUNT_ATTR_RDONLY, clr: 0 }, true, &display(p))?;
        move_mount_fd(clone.as_fd(), target.as_fd()).map_err(err)?;
    }
    Ok(())
}

/// Make one mount read-only (the root with `root.readonly`, a `/dev` populated after mounting).
pub fn remount_readonly(mnt: BorrowedFd<'_>, what: &str) -> Result<(), RootfsError> {
    set_attrs(mnt, Attrs { set: MOUNT_ATTR_RDONLY, clr: 0 }, false, what)
}
