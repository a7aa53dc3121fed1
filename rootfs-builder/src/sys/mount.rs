//! The new mount API (fsopen/fsconfig/fsmount/move_mount). `fsconfig` takes one lower directory
//! per call (`lowerdir+`, Linux 6.8), which lifts the one-page limit on `mount(2)` options that
//! stops long layer chains near 30 layers.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::check;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;

const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: only called with a descriptor the kernel has just returned to us.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
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

/// Attach the detached mount `from` onto the directory open as `to`.
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
