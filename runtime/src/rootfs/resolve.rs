//! The one place where a container path becomes a file descriptor: resolved inside the rootfs
//! with `openat2(RESOLVE_IN_ROOT)`, so `..` and absolute symlinks cannot leave it, and magic
//! links (`/proc/self/fd/N`) are refused. Everything mounted later goes onto the returned fd.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat, mknodat};

/// What to create at the end of a path that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// Open `rel` (relative to the rootfs) beneath `root`.
pub fn open_in_root(root: BorrowedFd<'_>, rel: &Path, flags: OFlag, no_symlinks: bool) -> nix::Result<OwnedFd> {
    let mut resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    if no_symlinks {
        resolve |= ResolveFlag::RESOLVE_NO_SYMLINKS;
    }
    let path: &Path = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    openat2(root, path, OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(resolve))
}

/// At most this many symlinks are followed while creating a path (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// An `O_PATH` descriptor of `rel`, creating what is missing inside the root: directories (0755)
/// on the way and the last component as `leaf`. A dangling symlink on the way is followed inside
/// the root and its target created there (images link `/etc/resolv.conf` to a file that exists only
/// at run time), as runc's `SecureJoin` + create does; `..` and absolute targets never leave the
/// root. With `no_symlinks` any symlink on the way is refused (ELOOP).
pub fn ensure_in_root(root: BorrowedFd<'_>, rel: &Path, leaf: Leaf, no_symlinks: bool) -> nix::Result<OwnedFd> {
    match open_in_root(root, rel, OFlag::O_PATH, no_symlinks) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    // Walk one component at a time from the root, each looked up in the directory descriptor of
    // its parent without following it; the stack of parents is what `..` climbs back through.
    let mut pending: Vec<OsString> = rel.iter().rev().map(OsStr::to_owned).collect();
    let mut parents: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            parents.pop();
            continue;
        }
        if name == "." || name == "/" || name.is_empty() {
            continue;
        }
        let dir = parents.last().map_or(root, |fd| fd.as_fd());
        let fd =
            match openat(dir, name.as_os_str(), OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    let made = if pending.is_empty() && leaf == Leaf::File {
                        mknodat(dir, name.as_os_str(), SFlag::S_IFREG, Mode::from_bits_truncate(0o644), 0)
                    } else {
                        mkdirat(dir, name.as_os_str(), Mode::from_bits_truncate(0o755))
                    };
                    match made {
                        // EEXIST: made meanwhile; look again.
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    pending.push(name);
                    continue;
                }
                Err(e) => return Err(e),
            };
        if fstat(fd.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFLNK {
            links += 1;
            if no_symlinks || links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            let target = readlinkat(dir, name.as_os_str())?;
            let target = Path::new(&target);
            if target.is_absolute() {
                parents.clear();
            }
            pending.extend(target.iter().rev().map(OsStr::to_owned));
            continue;
        }
        parents.push(fd);
    }
    match parents.pop() {
        Some(fd) => Ok(fd),
        None => open_in_root(root, Path::new(""), OFlag::O_PATH, no_symlinks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("strata-resolve-{tag}-{}", std::process::id()));
        let _fresh = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn root_fd(p: &Path) -> OwnedFd {
        nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn creates_missing_components_inside_the_root() {
        let d = tempdir("create");
        let root = root_fd(&d);
        ensure_in_root(root.as_fd(), Path::new("a/b/file"), Leaf::File, false).unwrap();
        assert!(d.join("a/b/file").is_file());
        ensure_in_root(root.as_fd(), Path::new("a/c"), Leaf::Dir, false).unwrap();
        assert!(d.join("a/c").is_dir());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let d = tempdir("escape");
        let outside = tempdir("outside");
        let root = root_fd(&d);
        // An image symlink pointing at a host path must land inside the rootfs.
        symlink(&outside, d.join("link")).unwrap();
        std::fs::create_dir_all(d.join(outside.strip_prefix("/").unwrap())).unwrap();
        ensure_in_root(root.as_fd(), Path::new("link/made"), Leaf::Dir, false).unwrap();
        assert!(!outside.join("made").exists(), "created on the host");
        assert!(d.join(outside.strip_prefix("/").unwrap()).join("made").is_dir());
        // A dangling symlink is followed inside the root: its target is created there, never outside.
        symlink("/nonexistent-strata-target/deep", d.join("dangling")).unwrap();
        ensure_in_root(root.as_fd(), Path::new("dangling"), Leaf::File, false).unwrap();
        assert!(!Path::new("/nonexistent-strata-target").exists(), "created on the host");
        assert!(d.join("nonexistent-strata-target/deep").is_file());
        // `..` in a link target stops at the root.
        symlink("../../../../escaped-strata-target", d.join("climbing")).unwrap();
        ensure_in_root(root.as_fd(), Path::new("climbing/x"), Leaf::Dir, false).unwrap();
        assert!(d.join("escaped-strata-target/x").is_dir());
        assert!(!d.parent().unwrap().join("escaped-strata-target").exists(), "created above the root");
        // A loop is an error.
        symlink("loop-b", d.join("loop-a")).unwrap();
        symlink("loop-a", d.join("loop-b")).unwrap();
        assert_eq!(ensure_in_root(root.as_fd(), Path::new("loop-a/x"), Leaf::Dir, false).unwrap_err(), Errno::ELOOP);
        // With no_symlinks, any symlink on the way is refused.
        assert_eq!(open_in_root(root.as_fd(), Path::new("link"), OFlag::O_PATH, true).unwrap_err(), Errno::ELOOP);
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }
}
