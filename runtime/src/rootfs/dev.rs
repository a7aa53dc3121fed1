//! The container's `/dev`: device nodes (or bind mounts of the host's nodes inside a user
//! namespace, where mknod is not allowed), the standard symlinks, and the pty multiplexer.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat, makedev, mknodat};
use nix::sys::statfs::{DEVPTS_SUPER_MAGIC, fstatfs};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, symlinkat, unlinkat};

use super::RootfsError;
use super::resolve::{Leaf, ensure_in_root, open_in_root};
use crate::plan::Plan;
use crate::plan::devices::{DeviceNode, NodeKind};
use crate::sys::mount::{OPEN_TREE_CLONE, move_mount_fd, open_tree};

const SYMLINKS: [(&str, &str); 4] = [
    ("/proc/self/fd", "dev/fd"),
    ("/proc/self/fd/0", "dev/stdin"),
    ("/proc/self/fd/1", "dev/stdout"),
    ("/proc/self/fd/2", "dev/stderr"),
];

/// Populate `/dev` unless it is a bind mount the user provided.
pub fn create_devices(root: BorrowedFd<'_>, plan: &Plan, in_user_namespace: bool) -> Result<(), RootfsError> {
    if !plan.setup_dev {
        return Ok(());
    }
    // Device modes are exact, not filtered by the runtime's umask.
    let old_umask = nix::sys::stat::umask(Mode::empty());
    let result = create_all(root, plan, in_user_namespace);
    nix::sys::stat::umask(old_umask);
    result
}

fn create_all(root: BorrowedFd<'_>, plan: &Plan, in_user_namespace: bool) -> Result<(), RootfsError> {
    for node in &plan.devices {
        if in_user_namespace {
            bind_host_device(root, node)?;
        } else {
            make_node(root, node)?;
        }
    }
    for (target, link) in SYMLINKS {
        symlink_in_root(root, target, Path::new(link))?;
    }
    if Path::new("/proc/kcore").exists() {
        symlink_in_root(root, "/proc/kcore", Path::new("dev/core"))?;
    }
    // /dev/ptmx always means the container's own devpts instance.
    let dev = ensure_in_root(root, Path::new("dev"), Leaf::Dir, false)
        .map_err(|source| RootfsError::Symlink { path: "/dev/ptmx".into(), source })?;
    match unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(source) => return Err(RootfsError::Symlink { path: "/dev/ptmx".into(), source }),
    }
    symlinkat("pts/ptmx", dev.as_fd(), "ptmx")
        .map_err(|source| RootfsError::Symlink { path: "/dev/ptmx".into(), source })
}

fn split(dest: &Path) -> (&Path, &std::ffi::OsStr) {
    (dest.parent().unwrap_or(Path::new("")), dest.file_name().unwrap_or_default())
}

fn make_node(root: BorrowedFd<'_>, node: &DeviceNode) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Device { path: format!("/{}", node.dest.display()), source };
    let (parent, name) = split(&node.dest);
    let dir = ensure_in_root(root, parent, Leaf::Dir, false).map_err(err)?;
    let kind = match node.kind {
        NodeKind::Char => SFlag::S_IFCHR,
        NodeKind::Block => SFlag::S_IFBLK,
        NodeKind::Fifo => SFlag::S_IFIFO,
    };
    let dev = makedev(node.major, node.minor);
    match mknodat(dir.as_fd(), name, kind, Mode::from_bits_truncate(node.mode), dev) {
        Ok(()) => {}
        // The same device already there (a rootfs that ships its own /dev) is kept; anything
        // else at that path is an error (config-linux.md devices).
        Err(Errno::EEXIST) => {
            let st = fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err)?;
            let same_kind = st.st_mode & libc::S_IFMT == kind.bits();
            if !same_kind || (node.kind != NodeKind::Fifo && st.st_rdev != dev) {
                return Err(RootfsError::DeviceConflict { path: format!("/{}", node.dest.display()) });
            }
        }
        Err(e) => return Err(err(e)),
    }
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(err)
}

/// In a user namespace mknod is refused: bind the host's node onto an empty file instead.
fn bind_host_device(root: BorrowedFd<'_>, node: &DeviceNode) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Device { path: format!("/{}", node.dest.display()), source };
    let host = std::ffi::CString::new(format!("/{}", node.dest.display())).map_err(|_| err(Errno::EINVAL))?;
    let tree = open_tree(crate::sys::at_fdcwd(), &host, OPEN_TREE_CLONE).map_err(err)?;
    let target = ensure_in_root(root, &node.dest, Leaf::File, false).map_err(err)?;
    move_mount_fd(tree.as_fd(), target.as_fd()).map_err(err)
}

/// Create `link` (relative to the rootfs) pointing at `target`; an existing entry is kept.
pub(super) fn symlink_in_root(root: BorrowedFd<'_>, target: &str, link: &Path) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Symlink { path: format!("/{}", link.display()), source };
    let (parent, name) = split(link);
    let dir = ensure_in_root(root, parent, Leaf::Dir, false).map_err(err)?;
    match symlinkat(target, dir.as_fd(), name) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(err(e)),
    }
}

/// Open a new pty in the container's devpts instance: the master through `/dev/pts/ptmx`
/// (verified to be devpts' multiplexer, never a symlink), the peer with TIOCGPTPEER (no path).
pub fn open_pty_master(root: BorrowedFd<'_>) -> Result<(OwnedFd, OwnedFd), RootfsError> {
    let master = open_in_root(root, Path::new("dev/pts/ptmx"), OFlag::O_RDWR | OFlag::O_NOCTTY, true)
        .map_err(RootfsError::Ptmx)?;
    let on_devpts = fstatfs(master.as_fd()).map(|s| s.filesystem_type() == DEVPTS_SUPER_MAGIC).unwrap_or(false);
    let is_ptmx =
        fstat(master.as_fd()).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == makedev(5, 2));
    if !on_devpts || !is_ptmx.unwrap_or(false) {
        return Err(RootfsError::BadPtmx);
    }
    crate::sys::tty::unlock_pty(master.as_fd()).map_err(RootfsError::Ptmx)?;
    let peer = crate::sys::tty::open_pty_peer(master.as_fd()).map_err(RootfsError::Ptmx)?;
    Ok((master, peer))
}

/// Without a mount namespace the container has no devpts instance of its own: a new pty from
/// the host's `/dev/ptmx` (as runc and crun), opened before the process changes root.
pub fn open_host_pty_master() -> Result<(OwnedFd, OwnedFd), RootfsError> {
    let master = nix::fcntl::open("/dev/ptmx", OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(RootfsError::HostPtmx)?;
    let is_ptmx =
        fstat(master.as_fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == makedev(5, 2));
    if !is_ptmx {
        return Err(RootfsError::BadHostPtmx);
    }
    crate::sys::tty::unlock_pty(master.as_fd()).map_err(RootfsError::HostPtmx)?;
    let peer = crate::sys::tty::open_pty_peer(master.as_fd()).map_err(RootfsError::HostPtmx)?;
    Ok((master, peer))
}
