//! The one place where a container path becomes a file descriptor: resolved inside the rootfs
//! with `openat2(RESOLVE_IN_ROOT)`, so `..` and absolute symlinks cannot leave it, and magic
//! links (`/proc/self/fd/N`) are refused. Everything mounted later goes onto the returned fd.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag, mkdirat, mknodat};

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

/// An `O_PATH` descriptor of `rel`, creating missing directories (0755) on the way and the last
/// component as `leaf`. A component that is a dangling symlink is an error (ENOENT), never
/// followed out of the root.
pub fn ensure_in_root(root: BorrowedFd<'_>, rel: &Path, leaf: Leaf, no_symlinks: bool) -> nix::Result<OwnedFd> {
    match open_in_root(root, rel, OFlag::O_PATH, no_symlinks) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let components: Vec<&OsStr> = rel.iter().collect();
    let mut parent: Option<OwnedFd> = None;
    let mut prefix = PathBuf::new();
    for (i, name) in components.iter().enumerate() {
        prefix.push(name);
        match open_in_root(root, &prefix, OFlag::O_PATH, no_symlinks) {
            Ok(fd) => {
                parent = Some(fd);
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let dir = match &parent {
            Some(fd) => fd.as_fd(),
            None => root,
        };
        let last = i + 1 == components.len();
        let made = if last && leaf == Leaf::File {
            mknodat(dir, *name, SFlag::S_IFREG, Mode::from_bits_truncate(0o644), 0)
        } else {
            mkdirat(dir, *name, Mode::from_bits_truncate(0o755))
        };
        match made {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        parent = Some(open_in_root(root, &prefix, OFlag::O_PATH, no_symlinks)?);
    }
    match parent {
        Some(fd) => Ok(fd),
        None => open_in_root(root, rel, OFlag::O_PATH, no_symlinks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

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
        // A dangling symlink is not followed out, and nothing is created outside.
        symlink("/nonexistent-strata-target", d.join("dangling")).unwrap();
        assert_eq!(ensure_in_root(root.as_fd(), Path::new("dangling"), Leaf::Dir, false).unwrap_err(), Errno::ENOENT);
        assert!(!Path::new("/nonexistent-strata-target").exists());
        // With no_symlinks, any symlink on the way is refused.
        assert_eq!(open_in_root(root.as_fd(), Path::new("link"), OFlag::O_PATH, true).unwrap_err(), Errno::ELOOP);
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }
}
