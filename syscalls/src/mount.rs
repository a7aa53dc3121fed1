//! The new mount API (open_tree, move_mount, mount_setattr, fsopen/fsconfig/fsmount): every
//! mount is made on a file descriptor, so no path can be swapped for a symlink in between.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::check;

pub const OPEN_TREE_CLONE: u32 = 1;
pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;

pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: only called with a descriptor the kernel has just returned to us.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// `open_tree(dirfd, path, flags)`; with `OPEN_TREE_CLONE` a detached copy of the mount (tree).
pub fn open_tree(dirfd: BorrowedFd<'_>, path: &CStr, flags: u32) -> nix::Result<OwnedFd> {
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    let fd = check(unsafe {
        libc::syscall(libc::SYS_open_tree, dirfd.as_raw_fd(), path.as_ptr(), flags | OPEN_TREE_CLOEXEC)
    })?;
    Ok(owned(fd))
}

/// Attach the mount behind `from` onto the file or directory `to` (both descriptors).
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: both paths are empty static C strings; the descriptors are borrowed for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// Attach the mount behind `from` at `path` relative to `dirfd` (used for `/` in no-pivot mode).
pub fn move_mount_to_path(from: BorrowedFd<'_>, dirfd: RawFd, path: &CStr) -> nix::Result<()> {
    // SAFETY: `path` is NUL-terminated and outlives the call; descriptors are borrowed.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            dirfd,
            path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// Change mount attributes and propagation of the mount at `dirfd`/`path`
/// (`AT_EMPTY_PATH` for the descriptor itself, `AT_RECURSIVE` for the whole tree).
pub fn mount_setattr(dirfd: BorrowedFd<'_>, path: &CStr, flags: u32, attr: &MountAttr) -> nix::Result<()> {
    // SAFETY: `attr` points to a valid mount_attr of the size passed; `path` is NUL-terminated.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// A filesystem context being configured (`fsopen`), turned into a mount by [`FsContext::mount`].
#[derive(Debug)]
pub struct FsContext {
    fd: OwnedFd,
}

impl FsContext {
    pub fn open(fstype: &CStr) -> nix::Result<Self> {
        // SAFETY: `fstype` is NUL-terminated and outlives the call.
        let fd = check(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
        Ok(Self { fd: owned(fd) })
    }

    pub fn set_flag(&self, key: &CStr) -> nix::Result<()> {
        // SAFETY: `key` is NUL-terminated; a flag takes no value (null, aux 0).
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                FSCONFIG_SET_FLAG,
                key.as_ptr(),
                std::ptr::null::<libc::c_char>(),
                0,
            )
        })?;
        Ok(())
    }

    pub fn set_string(&self, key: &CStr, value: &CStr) -> nix::Result<()> {
        // SAFETY: `key` and `value` are NUL-terminated and outlive the call.
        check(unsafe {
            libc::syscall(libc::SYS_fsconfig, self.fd.as_raw_fd(), FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr(), 0)
        })?;
        Ok(())
    }

    /// Create the superblock and a detached mount of it with `attr_flags` (MOUNT_ATTR_*).
    pub fn mount(self, attr_flags: u64) -> nix::Result<OwnedFd> {
        // SAFETY: CMD_CREATE takes no key or value.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_char>(),
                0,
            )
        })?;
        // SAFETY: fsmount takes the configured context descriptor and plain integer flags.
        let fd = check(unsafe { libc::syscall(libc::SYS_fsmount, self.fd.as_raw_fd(), FSMOUNT_CLOEXEC, attr_flags) })?;
        Ok(owned(fd))
    }
}
