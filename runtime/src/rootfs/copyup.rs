//! `tmpcopyup`: a new tmpfs starts with a copy of what the rootfs holds at its destination
//! (podman's `--read-only`, `--tmpfs`, `--mount type=tmpfs`). The copy is made into the detached
//! tmpfs before it is attached, so it works on a read-only root and the container never sees a
//! half-filled directory.
//!
//! Hostile-input code: the rootfs is the image's. Every entry is reached by name from its parent's
//! descriptor without following it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`): a symlink is copied as a
//! symlink, never read through, so nothing outside the destination directory is ever read and
//! nothing outside the tmpfs is ever written. Regular files are opened non-blocking and checked to
//! still be regular files (a FIFO swapped in cannot stall the copy). The walk keeps one pair of
//! descriptors per directory level, on an explicit stack (no recursion).
//!
//! Kept: contents, owners, modes (set-id bits too: mode after owner), extended attributes of
//! files and directories, access and modification times, symlinks, hard links within the copy,
//! device nodes, FIFOs and sockets. Attributes the tmpfs cannot hold (EOPNOTSUPP) or this process
//! may not set (EPERM: `trusted.*` in a user namespace) are left out.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{
    FileStat, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, symlinkat};

use crate::sys::xattr;

/// What failed, on which entry (relative to the destination).
#[derive(Debug, thiserror::Error)]
#[error("{op} {}", display(.path))]
pub struct CopyError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: Errno,
}

fn display(p: &Path) -> String {
    if p.as_os_str().is_empty() { ".".to_owned() } else { p.display().to_string() }
}

/// One directory being copied: its source and destination, the entries left to copy, and its
/// own metadata (applied once its entries are in, so its times and mode stick).
struct Level {
    src: OwnedFd,
    dst: OwnedFd,
    rel: PathBuf,
    stat: FileStat,
    names: std::vec::IntoIter<OsString>,
}

/// Copy everything inside the directory `from` (any descriptor of it, `O_PATH` included) into
/// the directory `to`. With `root_owner` the destination directory also takes `from`'s owner; its
/// extended attributes and times are always copied; its mode is the caller's (tmpfs `mode=`).
pub fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>, root_owner: bool) -> Result<(), CopyError> {
    let root = Path::new("");
    let err = |op| move |source| CopyError { op, path: PathBuf::new(), source };
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let src = openat(from, ".", dir_flags, Mode::empty()).map_err(err("open the source directory"))?;
    let dst = openat(to, ".", dir_flags, Mode::empty()).map_err(err("open the tmpfs"))?;
    let stat = fstat(src.as_fd()).map_err(err("stat the source directory"))?;
    let dst_root = openat(to, ".", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(err("open the tmpfs"))?;
    let mut links = HashMap::new();
    let mut stack = vec![level(src, dst, root.to_owned(), stat)?];
    while let Some(top) = stack.last_mut() {
        let Some(name) = top.names.next() else {
            if let Some(done) = stack.pop() {
                let is_root = done.rel.as_os_str().is_empty();
                finish_dir(&done, root_owner || !is_root, !is_root)?;
            }
            continue;
        };
        let rel = top.rel.join(&name);
        if let Some(sub) = copy_entry(dst_root.as_fd(), top, &name, &rel, &mut links)? {
            stack.push(sub);
        }
    }
    Ok(())
}

fn level(src: OwnedFd, dst: OwnedFd, rel: PathBuf, stat: FileStat) -> Result<Level, CopyError> {
    let err = |source| CopyError { op: "read the directory", path: rel.clone(), source };
    let mut dir = Dir::openat(src.as_fd(), ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(err)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(Level { src, dst, rel, stat, names: names.into_iter() })
}

/// Copy one entry of `parent`; a directory is created and returned, to be walked next.
fn copy_entry(
    dst_root: BorrowedFd<'_>,
    parent: &Level,
    name: &OsStr,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<Option<Level>, CopyError> {
    let err = |op| move |source| CopyError { op, path: rel.to_owned(), source };
    let (src_dir, dst_dir) = (parent.src.as_fd(), parent.dst.as_fd());
    let st = fstatat(src_dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err("stat"))?;
    let kind = st.st_mode & libc::S_IFMT;
    let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
    match kind {
        libc::S_IFDIR => {
            mkdirat(dst_dir, name, Mode::from_bits_truncate(0o700)).map_err(err("create the directory"))?;
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let src = openat(src_dir, name, flags, Mode::empty()).map_err(err("open the directory"))?;
            let dst = openat(dst_dir, name, flags, Mode::empty()).map_err(err("open the copied directory"))?;
            let stat = fstat(src.as_fd()).map_err(err("stat"))?;
            return Ok(Some(level(src, dst, rel.to_owned(), stat)?));
        }
        libc::S_IFREG => {
            if st.st_nlink > 1 {
                if let Some(first) = links.get(&(st.st_dev, st.st_ino)) {
                    // The first copy's path, relative to the tmpfs: detached and written only by
                    // this walk, it holds nothing but the directories made here on the way.
                    linkat(dst_root, first.as_path(), dst_dir, name, AtFlags::empty()).map_err(err("link"))?;
                    return Ok(None);
                }
                links.insert((st.st_dev, st.st_ino), rel.to_owned());
            }
            copy_file(src_dir, dst_dir, name, rel)?;
        }
        libc::S_IFLNK => {
            let target = readlinkat(src_dir, name).map_err(err("read the symlink"))?;
            symlinkat(target.as_os_str(), dst_dir, name).map_err(err("create the symlink"))?;
        }
        libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK => {
            let kind = SFlag::from_bits_truncate(kind);
            mknodat(dst_dir, name, kind, perm, st.st_rdev).map_err(err("create the node"))?;
        }
        _ => return Err(CopyError { op: "copy (unknown file type)", path: rel.to_owned(), source: Errno::EINVAL }),
    }
    if kind != libc::S_IFREG {
        fchownat(
            dst_dir,
            name,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(err("set the owner of"))?;
        if kind != libc::S_IFLNK {
            // A node just made by us, not a symlink: nothing to follow.
            fchmodat(dst_dir, name, perm, nix::sys::stat::FchmodatFlags::FollowSymlink)
                .map_err(err("set the mode of"))?;
        }
        utimensat(dst_dir, name, &atime(&st), &mtime(&st), UtimensatFlags::NoFollowSymlink)
            .map_err(err("set the times of"))?;
    }
    Ok(None)
}

fn copy_file(src_dir: BorrowedFd<'_>, dst_dir: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> Result<(), CopyError> {
    let err = |op| move |source| CopyError { op, path: rel.to_owned(), source };
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let src = File::from(openat(src_dir, name, flags, Mode::empty()).map_err(err("open"))?);
    let st = fstat(src.as_fd()).map_err(err("stat"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(CopyError { op: "copy (changed while copying)", path: rel.to_owned(), source: Errno::EAGAIN });
    }
    let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let dst = File::from(openat(dst_dir, name, create, Mode::from_bits_truncate(0o600)).map_err(err("create"))?);
    std::io::copy(&mut &src, &mut &dst).map_err(|e| CopyError {
        op: "copy",
        path: rel.to_owned(),
        source: io_errno(&e),
    })?;
    set_meta(src.as_fd(), dst.as_fd(), &st, true, true).map_err(|(op, source)| CopyError {
        op,
        path: rel.to_owned(),
        source,
    })
}

fn finish_dir(level: &Level, owner: bool, mode: bool) -> Result<(), CopyError> {
    set_meta(level.src.as_fd(), level.dst.as_fd(), &level.stat, owner, mode).map_err(|(op, source)| CopyError {
        op,
        path: level.rel.clone(),
        source,
    })
}

/// Owner, mode, extended attributes and times of `src` onto `dst` (in that order: changing the
/// owner clears set-id bits and file capabilities); owner and mode only when asked.
fn set_meta(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    st: &FileStat,
    owner: bool,
    mode: bool,
) -> Result<(), (&'static str, Errno)> {
    if owner {
        fchown(dst, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)))
            .map_err(|e| ("set the owner of", e))?;
    }
    if mode {
        fchmod(dst, Mode::from_bits_truncate(st.st_mode & 0o7777)).map_err(|e| ("set the mode of", e))?;
    }
    copy_xattrs(src, dst)?;
    futimens(dst, &atime(st), &mtime(st)).map_err(|e| ("set the times of", e))
}

fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> Result<(), (&'static str, Errno)> {
    for key in xattr::flist(src).map_err(|e| ("list the extended attributes of", e))? {
        let Some(value) = xattr::fget(src, &key).map_err(|e| ("read an extended attribute of", e))? else {
            continue;
        };
        match xattr::fset(dst, &key, &value) {
            Ok(()) => {}
            // Deliberately left out: a namespace the tmpfs cannot hold, or one this process may not
            // write (trusted.* in a user namespace).
            Err(Errno::EOPNOTSUPP | Errno::EPERM) => {}
            Err(e) => return Err(("set an extended attribute of", e)),
        }
    }
    Ok(())
}

fn atime(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_atime, st.st_atime_nsec)
}

fn mtime(st: &FileStat) -> TimeSpec {
    TimeSpec::new(st.st_mtime, st.st_mtime_nsec)
}

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("strata-copyup-{tag}-{}", std::process::id()));
        let _fresh = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn open_dir(p: &Path) -> OwnedFd {
        nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn copies_the_tree_without_following_symlinks() {
        let (src, dst, outside) = (tempdir("src"), tempdir("dst"), tempdir("outside"));
        std::fs::write(outside.join("secret"), "host").unwrap();
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::write(src.join("sub/deeper/file"), "data").unwrap();
        std::fs::set_permissions(src.join("sub/deeper/file"), std::fs::Permissions::from_mode(0o4751)).unwrap();
        std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o710)).unwrap();
        std::fs::hard_link(src.join("sub/deeper/file"), src.join("hard")).unwrap();
        // Links out of the tree are copied as links, never read through.
        symlink(&outside, src.join("to-host-dir")).unwrap();
        symlink(outside.join("secret"), src.join("to-host-file")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        std::fs::File::options().write(true).open(src.join("sub/deeper/file")).unwrap().set_modified(old).unwrap();

        copy_tree(open_dir(&src).as_fd(), open_dir(&dst).as_fd(), true).unwrap();

        assert_eq!(std::fs::read_to_string(dst.join("sub/deeper/file")).unwrap(), "data");
        let file = std::fs::metadata(dst.join("sub/deeper/file")).unwrap();
        assert_eq!(file.mode() & 0o7777, 0o4751);
        assert_eq!(file.modified().unwrap(), old);
        assert_eq!(std::fs::metadata(dst.join("sub")).unwrap().mode() & 0o7777, 0o710);
        assert_eq!(std::fs::metadata(dst.join("hard")).unwrap().ino(), file.ino(), "hard link kept");
        assert_eq!(std::fs::read_link(dst.join("to-host-dir")).unwrap(), outside);
        assert_eq!(std::fs::read_link(dst.join("to-host-file")).unwrap(), outside.join("secret"));
        assert!(std::fs::symlink_metadata(dst.join("fifo")).unwrap().file_type().is_fifo());
        assert!(!dst.join("secret").exists() && !outside.join("sub").exists());
        for d in [src, dst, outside] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
