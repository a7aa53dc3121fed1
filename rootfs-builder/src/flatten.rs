//! `flatten`: write an image's final filesystem into a plain directory.
//!
//! The unpacked layers are merged the way overlayfs merges them (so a flattened rootfs and an
//! overlay bundle show the same tree): each directory is the union of that directory in the
//! layers, top first, stopping at a whiteout, a non-directory or an opaque directory; each other
//! entry is copied once, from the topmost layer that has it. Files hardlinked inside a layer stay
//! hardlinked. Contents are copied with `copy_file_range` (in-kernel).

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{
    FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, futimens, mkdirat, mknodat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, symlinkat};

use crate::extract::{OverlayXattrs, is_overlay_xattr};
use crate::fsutil::{self, lstat_at, open_dir_beneath};
use crate::merged::{self, MergedView, is_opaque};
use crate::store::{self, ImageRecord, Store};
use crate::sys::xattr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Layers(#[from] merged::Error),
    #[error("{0} exists and is not an empty directory")]
    NotEmpty(String),
    #[error("creating {0}")]
    CreateDest(String, #[source] io::Error),
    #[error("{path}: {op}")]
    Copy {
        path: String,
        op: &'static str,
        #[source]
        source: Errno,
    },
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Stats {
    pub files: u64,
    pub bytes: u64,
}

/// Flatten the image into `dir` (created; or an existing empty directory). On failure what was
/// written is removed again.
pub fn flatten_image(store: &Store, image: &ImageRecord, dir: &Path) -> Result<Stats, Error> {
    let created = prepare_dest(dir)?;
    let view = MergedView::open(store, &image.chain(), OverlayXattrs::Trusted)?;
    let res = (|| {
        let dest = nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::CreateDest(dir.display().to_string(), e.into()))?;
        flatten_into(&view, dest.as_fd())
    })();
    if res.is_err() {
        if created {
            store::remove_best_effort(dir);
        } else if let Ok(fd) =
            nix::fcntl::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        {
            // Cleaning up after the error being reported; what remains is the user's empty dir.
            fsutil::clear_dir(fd.as_fd()).unwrap_or(());
        }
    }
    res
}

/// Create `dir` or check that it is empty; true when created here.
pub fn prepare_dest(dir: &Path) -> Result<bool, Error> {
    match fs::read_dir(dir) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(Error::NotEmpty(dir.display().to_string()));
            }
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| Error::CreateDest(dir.display().to_string(), e))?;
            Ok(true)
        }
        Err(_) => Err(Error::NotEmpty(dir.display().to_string())),
    }
}

/// Merge `view` into the directory `dest`.
pub fn flatten_into(view: &MergedView, dest: BorrowedFd<'_>) -> Result<Stats, Error> {
    let _umask = fsutil::UmaskGuard::zero();
    let mut f = Flattener {
        dest_root: dest,
        overlay: view.overlay,
        has_xattrs: view.has_xattrs.clone(),
        ids: fsutil::creator_ids(),
        links: HashMap::new(),
        stats: Stats::default(),
    };
    let mut srcs = Vec::new();
    for (i, l) in view.layers.iter().enumerate() {
        let fd = open_dir_beneath(l.as_fd(), b"").map_err(f.err("", "opening a layer"))?;
        srcs.push((i, fd));
    }
    let top = srcs.first().map(|(_, fd)| fd.as_fd());
    f.merge_dir(&srcs, dest, &mut Vec::new())?;
    if let Some(top) = top {
        let st = lstat_at(top, c".").map_err(f.err("", "inspecting the layer root"))?;
        if let Some(st) = st {
            f.dir_meta(top, dest, c".", &st, "/")?;
        }
    }
    Ok(f.stats)
}

struct Flattener<'a> {
    dest_root: BorrowedFd<'a>,
    overlay: OverlayXattrs,
    has_xattrs: Vec<bool>,
    /// Owner of what we create (destination directories stay 0700 until filled: no setgid).
    ids: (u32, u32),
    /// (layer, inode) of a hardlinked file -> its path in the destination.
    links: HashMap<(usize, u64), Vec<u8>>,
    stats: Stats,
}

fn display(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

fn time(sec: i64, nsec: i64) -> TimeSpec {
    TimeSpec::new(sec, nsec)
}

impl Flattener<'_> {
    fn err<'p>(&self, path: &'p str, op: &'static str) -> impl FnOnce(Errno) -> Error + 'p {
        move |source| Error::Copy { path: path.to_string(), op, source }
    }

    /// `srcs`: this directory in each contributing layer, top first (layer index, descriptor).
    fn merge_dir(&mut self, srcs: &[(usize, OwnedFd)], dest: BorrowedFd<'_>, path: &mut Vec<u8>) -> Result<(), Error> {
        let mut seen: HashSet<CString> = HashSet::new();
        let mut winners: Vec<(CString, usize, FileStat)> = Vec::new();
        for (pos, (_, dir)) in srcs.iter().enumerate() {
            let names = fsutil::list_dir(dir.as_fd()).map_err(|e| Error::Copy {
                path: display(path),
                op: "listing a layer directory",
                source: e,
            })?;
            for name in names {
                if seen.contains(&name) {
                    continue;
                }
                let st = lstat_at(dir.as_fd(), &name).map_err(|e| Error::Copy {
                    path: display(path),
                    op: "inspecting a layer entry",
                    source: e,
                })?;
                seen.insert(name.clone());
                if let Some(st) = st {
                    winners.push((name, pos, st));
                }
            }
        }
        for (name, pos, st) in winners {
            if fsutil::is_whiteout(&st) {
                continue;
            }
            let saved = path.len();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.to_bytes());
            let res = self.merge_entry(srcs, pos, &name, &st, dest, path);
            path.truncate(saved);
            res?;
        }
        Ok(())
    }

    fn merge_entry(
        &mut self,
        srcs: &[(usize, OwnedFd)],
        pos: usize,
        name: &CStr,
        st: &FileStat,
        dest: BorrowedFd<'_>,
        path: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let shown = display(path);
        let (layer, src) = (srcs[pos].0, srcs[pos].1.as_fd());
        let e = |op: &'static str| {
            let shown = shown.clone();
            move |source| Error::Copy { path: shown, op, source }
        };
        match fsutil::file_type(st) {
            SFlag::S_IFDIR => {
                // The same directory in this and lower layers, until something hides the rest.
                let mut sub = Vec::new();
                for (j, (idx, dir)) in srcs.iter().enumerate().skip(pos) {
                    let st = if j == pos { Some(*st) } else { lstat_at(dir.as_fd(), name).map_err(e("inspecting"))? };
                    match st {
                        None => continue,
                        Some(s) if fsutil::is_dir(&s) => {
                            let fd =
                                open_dir_beneath(dir.as_fd(), name.to_bytes()).map_err(e("opening a directory"))?;
                            let opaque = is_opaque(dir.as_fd(), name, self.overlay);
                            sub.push((*idx, fd));
                            if opaque {
                                break;
                            }
                        }
                        Some(_) => break,
                    }
                }
                mkdirat(dest, name, Mode::from_bits_truncate(0o700)).map_err(e("creating a directory"))?;
                let child = open_dir_beneath(dest, name.to_bytes()).map_err(e("opening a directory"))?;
                self.merge_dir(&sub, child.as_fd(), path)?;
                self.dir_meta(src, dest, name, st, &shown)?;
            }
            SFlag::S_IFREG => {
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&(layer, st.st_ino)) {
                        let (pdir, pname) = split(first);
                        let pfd =
                            open_dir_beneath(self.dest_root, pdir).map_err(e("opening a hardlink's directory"))?;
                        let pname = fsutil::cstring(pname).unwrap_or_default();
                        linkat(pfd.as_fd(), pname.as_c_str(), dest, name, AtFlags::empty())
                            .map_err(e("creating a hardlink"))?;
                        return Ok(());
                    }
                    self.links.insert((layer, st.st_ino), path.clone());
                }
                self.copy_file(layer, src, dest, name, st, &shown)?;
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(src, name).map_err(e("reading a symlink"))?;
                symlinkat(target.as_os_str(), dest, name).map_err(e("creating a symlink"))?;
                self.node_meta(src, dest, name, st, false, &shown)?;
            }
            kind => {
                mknodat(dest, name, kind, Mode::from_bits_truncate(0o600), st.st_rdev).map_err(e("creating a node"))?;
                self.node_meta(src, dest, name, st, true, &shown)?;
            }
        }
        Ok(())
    }

    fn copy_xattrs(&self, src: BorrowedFd<'_>, dest: BorrowedFd<'_>, name: &CStr, shown: &str) -> Result<(), Error> {
        let skip = |k: &CStr| is_overlay_xattr(k.to_bytes());
        fsutil::copy_xattrs_at(src, dest, name, &skip).map_err(|source| Error::Copy {
            path: shown.to_string(),
            op: "copying extended attributes",
            source,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_file(
        &mut self,
        layer: usize,
        src: BorrowedFd<'_>,
        dest: BorrowedFd<'_>,
        name: &CStr,
        st: &FileStat,
        shown: &str,
    ) -> Result<(), Error> {
        let e = |op: &'static str| move |source| Error::Copy { path: shown.to_string(), op, source };
        let input =
            nix::fcntl::openat(src, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(e("opening"))?;
        // Owned by us: created with its final mode (umask 0 meanwhile), no chown or chmod.
        let ours = (st.st_uid, st.st_gid) == self.ids;
        let mode = st.st_mode & 0o7777;
        let output = nix::fcntl::openat(
            dest,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_retain(if ours { mode } else { 0o600 }),
        )
        .map_err(e("creating"))?;
        let mut left = u64::try_from(st.st_size).unwrap_or(0);
        let mut fallback = false;
        while left > 0 && !fallback {
            let chunk = usize::try_from(left.min(1 << 30)).unwrap_or(1 << 30);
            match nix::fcntl::copy_file_range(&input, None, &output, None, chunk) {
                Ok(0) => break,
                Ok(n) => left -= n as u64,
                Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => fallback = true,
                Err(err) => return Err(e("copying")(err)),
            }
        }
        let mut output = fs::File::from(output);
        let mut input = fs::File::from(input);
        if fallback {
            io::copy(&mut input, &mut output)
                .map_err(|err| e("copying")(Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))))?;
        }
        self.stats.files += 1;
        self.stats.bytes += u64::try_from(st.st_size).unwrap_or(0);
        if !ours {
            fchown(&output, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)))
                .map_err(e("setting the owner"))?;
            fchmod(&output, Mode::from_bits_retain(mode)).map_err(e("setting the mode"))?;
        }
        // Through the open descriptors (no path lookup), and only where the layer has any.
        let keys = if self.has_xattrs.get(layer).copied().unwrap_or(true) {
            xattr::flist(input.as_fd()).map_err(e("listing extended attributes"))?
        } else {
            Vec::new()
        };
        for key in keys {
            if is_overlay_xattr(key.to_bytes()) {
                continue;
            }
            if let Some(value) = xattr::fget(input.as_fd(), &key).map_err(e("reading an extended attribute"))? {
                xattr::fset(output.as_fd(), &key, &value).map_err(e("copying extended attributes"))?;
            }
        }
        futimens(&output, &time(st.st_atime, st.st_atime_nsec), &time(st.st_mtime, st.st_mtime_nsec))
            .map_err(e("setting the times"))?;
        Ok(())
    }

    fn node_meta(
        &self,
        src: BorrowedFd<'_>,
        dest: BorrowedFd<'_>,
        name: &CStr,
        st: &FileStat,
        chmod: bool,
        shown: &str,
    ) -> Result<(), Error> {
        let e = |op: &'static str| move |source| Error::Copy { path: shown.to_string(), op, source };
        fchownat(
            dest,
            name,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(e("setting the owner"))?;
        if chmod {
            // Just created as a device or fifo by us: not a symlink.
            fchmodat(dest, name, Mode::from_bits_retain(st.st_mode & 0o7777), FchmodatFlags::FollowSymlink)
                .map_err(e("setting the mode"))?;
        }
        self.copy_xattrs(src, dest, name, shown)?;
        nix::sys::stat::utimensat(
            dest,
            name,
            &time(st.st_atime, st.st_atime_nsec),
            &time(st.st_mtime, st.st_mtime_nsec),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(e("setting the times"))?;
        Ok(())
    }

    /// Owner, mode, attributes and times of a directory, after its content is written.
    fn dir_meta(
        &self,
        src: BorrowedFd<'_>,
        dest: BorrowedFd<'_>,
        name: &CStr,
        st: &FileStat,
        shown: &str,
    ) -> Result<(), Error> {
        let e = |op: &'static str| move |source| Error::Copy { path: shown.to_string(), op, source };
        let fd = nix::fcntl::openat(
            dest,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(e("opening a directory"))?;
        fchown(&fd, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid))).map_err(e("setting the owner"))?;
        self.copy_xattrs(src, dest, name, shown)?;
        fchmod(&fd, Mode::from_bits_retain(st.st_mode & 0o7777)).map_err(e("setting the mode"))?;
        futimens(&fd, &time(st.st_atime, st.st_atime_nsec), &time(st.st_mtime, st.st_mtime_nsec))
            .map_err(e("setting the times"))?;
        Ok(())
    }
}

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}
