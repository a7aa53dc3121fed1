//! Directory-descriptor-relative file operations shared by extraction, flattening and removal.
//!
//! Paths handed to these helpers are relative to a directory descriptor and are resolved with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: nothing reached through them can be outside
//! that directory, whatever symlinks the tree holds.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, fstatat};
use nix::unistd::UnlinkatFlags;

use crate::sys::xattr;

/// What `openat2` may follow: nothing outside the start directory, no symlinks at all.
pub fn beneath() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// Open `path` (relative, no symlinks) under `root`; an empty path reopens `root` itself.
pub fn open_beneath(root: BorrowedFd<'_>, path: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW).resolve(beneath());
    loop {
        match openat2(root, path, how) {
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Open the directory `path` under `root` for `*at` calls (O_PATH: no read permission needed).
pub fn open_dir_beneath(root: BorrowedFd<'_>, path: &[u8]) -> nix::Result<OwnedFd> {
    open_beneath(root, path, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`, `Ok(None)` when absent.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<Option<FileStat>> {
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

pub fn is_dir(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFDIR
}

/// An overlay whiteout: a character device with device number 0/0.
pub fn is_whiteout(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

/// Remove `name` in `dir`, recursively if it is a directory. Never follows symlinks, and never
/// descends into another filesystem (a mount inside the tree fails with `EXDEV` rather than
/// having its content deleted). Without root, a directory whose mode keeps its owner out
/// (an image's 0555 or 0000 directory, unpacked by a user) is made 0700 first.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<()> {
    match nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let open = || {
        nix::fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let fd = match open() {
        Err(Errno::EACCES) => {
            // A directory (unlink said so), so following is harmless.
            nix::sys::stat::fchmodat(dir, name, Mode::from_bits_truncate(0o700), FchmodatFlags::FollowSymlink)?;
            open()?
        }
        other => other?,
    };
    if nix::sys::stat::fstat(&fd)?.st_dev != nix::sys::stat::fstat(dir)?.st_dev {
        return Err(Errno::EXDEV);
    }
    clear_dir(fd.as_fd())?;
    match nix::unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Remove everything inside the directory open as `dir` (opened for reading).
pub fn clear_dir(dir: BorrowedFd<'_>) -> nix::Result<()> {
    let mut made_writable = false;
    for name in list_dir(dir)? {
        match remove_all_at(dir, &name) {
            Err(Errno::EACCES) if !made_writable => {
                // Not writable by its owner (not root): it is ours to change.
                nix::sys::stat::fchmod(dir, Mode::from_bits_truncate(0o700))?;
                made_writable = true;
                remove_all_at(dir, &name)?;
            }
            other => other?,
        }
    }
    Ok(())
}

/// The names in the directory open as `dir`, without `.` and `..`.
pub fn list_dir(dir: BorrowedFd<'_>) -> nix::Result<Vec<CString>> {
    // Reopen: nix's Dir takes ownership and reads from the descriptor's offset.
    let fd = nix::fcntl::openat(dir, c".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// Copy every extended attribute of `src_dir/name` onto `dst_dir/name` (no symlink followed).
pub fn copy_xattrs_at(
    src_dir: BorrowedFd<'_>,
    dst_dir: BorrowedFd<'_>,
    name: &CStr,
    skip: &dyn Fn(&CStr) -> bool,
) -> nix::Result<()> {
    for key in xattr::list_at(src_dir, name)? {
        if skip(&key) {
            continue;
        }
        if let Some(value) = xattr::get_at(src_dir, name, &key)? {
            xattr::set_at(dst_dir, name, &key, &value)?;
        }
    }
    Ok(())
}

/// Bytes to a C string; `None` when they hold a NUL.
pub fn cstring(bytes: &[u8]) -> Option<CString> {
    CString::new(bytes).ok()
}

/// The umask set to 0 for as long as this lives (files are then created with the exact mode
/// asked for); restored on drop. Only the unpacking thread creates files meanwhile.
#[derive(Debug)]
pub struct UmaskGuard(Mode);

impl UmaskGuard {
    pub fn zero() -> Self {
        Self(nix::sys::stat::umask(Mode::empty()))
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        nix::sys::stat::umask(self.0);
    }
}

/// The owner and group a newly created file gets (in a directory without setgid).
pub fn creator_ids() -> (u32, u32) {
    (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
}
