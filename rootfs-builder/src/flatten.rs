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
use std::sync::{Arc, Mutex, mpsc};

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
use crate::store::{ImageRecord, Store};
use crate::sys::xattr;
use crate::warning::Warning;

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
    let view = MergedView::open(store, &image.chain(), store.overlay())?;
    let res = (|| {
        let dest = nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::CreateDest(dir.display().to_string(), e.into()))?;
        flatten_into(&view, dest.as_fd())
    })();
    if res.is_err() {
        undo_dest(dir, created, &|w| store.warn(w));
    }
    res
}

/// After a failed flatten into `dir`: remove it if it was `created` for it, else empty it again
/// (it was an empty directory of the caller's). Cleaning up after the error being reported, so
/// what cannot be removed is only a warning.
pub fn undo_dest(dir: &Path, created: bool, warn: &dyn Fn(Warning)) {
    let what = || format!("could not remove what was written to {}", dir.display());
    if created {
        // Never follows symlinks in the tree; opens what a user's 0555 directories keep shut.
        if let Err(e) = crate::store::remove_tree(dir) {
            warn(Warning::new(what(), e));
        }
    } else if let Err(e) = nix::fcntl::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .and_then(|fd| fsutil::clear_dir(fd.as_fd()))
    {
        warn(Warning::new(what(), e));
    }
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
///
/// One thread walks the layers, creating directories, symlinks and nodes and queueing the
/// regular files; worker threads copy those. Hardlinks and directory metadata (whose mtimes any
/// later creation would change) are applied once all copies are done.
pub fn flatten_into(view: &MergedView, dest: BorrowedFd<'_>) -> Result<Stats, Error> {
    let _umask = fsutil::UmaskGuard::zero();
    let ids = fsutil::creator_ids();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let (tx, rx) = mpsc::sync_channel::<CopyJob>(256);
    let rx = Mutex::new(rx);
    let has_xattrs = view.has_xattrs.clone();

    let walked = std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    // Holding the lock only to take one job.
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let already_failed = failed.lock().map(|f| f.is_some()).unwrap_or(true);
                    if already_failed {
                        continue;
                    }
                    if let Err(e) = copy_file(&job, ids, has_xattrs.get(job.layer).copied().unwrap_or(true))
                        && let Ok(mut f) = failed.lock()
                    {
                        f.get_or_insert(e);
                    }
                }
            });
        }
        // `walk` drops the sender when done, success or not: the workers drain the queue and stop.
        walk(view, dest, ids, tx)
    });
    let mut f = walked?;
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    f.finish()?;
    Ok(f.stats)
}

fn walk<'a>(
    view: &MergedView,
    dest: BorrowedFd<'a>,
    ids: (u32, u32),
    tx: mpsc::SyncSender<CopyJob>,
) -> Result<Flattener<'a>, Error> {
    let mut f = Flattener {
        dest_root: dest,
        overlay: view.overlay,
        has_xattrs: view.has_xattrs.clone(),
        ids,
        links: HashMap::new(),
        jobs: Some(tx),
        deferred_links: Vec::new(),
        deferred_dirs: Vec::new(),
        stats: Stats::default(),
    };
    let mut srcs = Vec::new();
    for (i, l) in view.layers.iter().enumerate() {
        let fd = open_dir_beneath(l.as_fd(), b"").map_err(f.err("", "opening a layer"))?;
        srcs.push((i, Arc::new(fd)));
    }
    let root = Arc::new(open_dir_beneath(dest, b"").map_err(f.err("", "opening the destination"))?);
    let merged = f.merge_dir(&srcs, &root, &mut Vec::new());
    f.jobs = None;
    merged?;
    if let Some((layer, top)) = srcs.first() {
        let st = lstat_at(top.as_fd(), c".").map_err(f.err("", "inspecting the layer root"))?;
        if let Some(st) = st {
            let xattr_src = f.has_xattrs[*layer].then(|| (top.clone(), c".".to_owned()));
            f.deferred_dirs.push((Vec::new(), st, xattr_src));
        }
    }
    Ok(f)
}

/// Where a directory's extended attributes are copied from: its parent in the layer, its name.
type XattrSource = (Arc<OwnedFd>, CString);

/// A regular file for a worker to copy.
struct CopyJob {
    src_dir: Arc<OwnedFd>,
    dest_dir: Arc<OwnedFd>,
    name: CString,
    st: FileStat,
    layer: usize,
    shown: String,
}

struct Flattener<'a> {
    dest_root: BorrowedFd<'a>,
    overlay: OverlayXattrs,
    has_xattrs: Vec<bool>,
    /// Owner of what we create (destination directories stay 0700 until filled: no setgid).
    ids: (u32, u32),
    /// (layer, inode) of a hardlinked file -> its path in the destination.
    links: HashMap<(usize, u64), Vec<u8>>,
    /// Dropped once the walk is over, which lets the workers finish.
    jobs: Option<mpsc::SyncSender<CopyJob>>,
    /// (path of the first name, path of the new name) of hardlinks, made after the copies.
    deferred_links: Vec<(Vec<u8>, Vec<u8>)>,
    /// Directories, children first: destination path, status, and where to copy xattrs from.
    deferred_dirs: Vec<(Vec<u8>, FileStat, Option<XattrSource>)>,
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
    fn merge_dir(
        &mut self,
        srcs: &[(usize, Arc<OwnedFd>)],
        dest: &Arc<OwnedFd>,
        path: &mut Vec<u8>,
    ) -> Result<(), Error> {
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
            let res = self.merge_entry(srcs, pos, name, &st, dest, path);
            path.truncate(saved);
            res?;
        }
        Ok(())
    }

    fn merge_entry(
        &mut self,
        srcs: &[(usize, Arc<OwnedFd>)],
        pos: usize,
        name: CString,
        st: &FileStat,
        dest: &Arc<OwnedFd>,
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
                    let st =
                        if j == pos { Some(*st) } else { lstat_at(dir.as_fd(), &name).map_err(e("inspecting"))? };
                    match st {
                        None => continue,
                        Some(s) if fsutil::is_dir(&s) => {
                            let fd =
                                open_dir_beneath(dir.as_fd(), name.to_bytes()).map_err(e("opening a directory"))?;
                            let opaque = is_opaque(dir.as_fd(), &name, self.overlay);
                            sub.push((*idx, Arc::new(fd)));
                            if opaque {
                                break;
                            }
                        }
                        Some(_) => break,
                    }
                }
                mkdirat(dest.as_fd(), name.as_c_str(), Mode::from_bits_truncate(0o700))
                    .map_err(e("creating a directory"))?;
                let child =
                    Arc::new(open_dir_beneath(dest.as_fd(), name.to_bytes()).map_err(e("opening a directory"))?);
                self.merge_dir(&sub, &child, path)?;
                let xattr_src = self.has_xattrs[layer].then(|| (srcs[pos].1.clone(), name.clone()));
                self.deferred_dirs.push((path.clone(), *st, xattr_src));
            }
            SFlag::S_IFREG => {
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&(layer, st.st_ino)) {
                        self.deferred_links.push((first.clone(), path.clone()));
                        return Ok(());
                    }
                    self.links.insert((layer, st.st_ino), path.clone());
                }
                self.stats.files += 1;
                self.stats.bytes += u64::try_from(st.st_size).unwrap_or(0);
                let job = CopyJob {
                    src_dir: srcs[pos].1.clone(),
                    dest_dir: dest.clone(),
                    name,
                    st: *st,
                    layer,
                    shown: shown.clone(),
                };
                if self.jobs.as_ref().is_none_or(|j| j.send(job).is_err()) {
                    return Err(e("queueing a copy")(Errno::EPIPE));
                }
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(src, name.as_c_str()).map_err(e("reading a symlink"))?;
                symlinkat(target.as_os_str(), dest.as_fd(), name.as_c_str()).map_err(e("creating a symlink"))?;
                self.node_meta(src, dest.as_fd(), &name, st, false, &shown)?;
            }
            kind => {
                mknodat(dest.as_fd(), name.as_c_str(), kind, Mode::from_bits_truncate(0o600), st.st_rdev)
                    .map_err(e("creating a node"))?;
                self.node_meta(src, dest.as_fd(), &name, st, true, &shown)?;
            }
        }
        Ok(())
    }

    /// Hardlinks, then directory metadata (children first), once every file is in place.
    fn finish(&mut self) -> Result<(), Error> {
        for (first, new) in std::mem::take(&mut self.deferred_links) {
            let shown = display(&new);
            let e = |op: &'static str| {
                let shown = shown.clone();
                move |source| Error::Copy { path: shown, op, source }
            };
            let (fdir, fname) = split(&first);
            let (ndir, nname) = split(&new);
            let ffd = open_dir_beneath(self.dest_root, fdir).map_err(e("opening a hardlink's directory"))?;
            let nfd = open_dir_beneath(self.dest_root, ndir).map_err(e("opening a directory"))?;
            let fname = fsutil::cstring(fname).unwrap_or_default();
            let nname = fsutil::cstring(nname).unwrap_or_default();
            linkat(ffd.as_fd(), fname.as_c_str(), nfd.as_fd(), nname.as_c_str(), AtFlags::empty())
                .map_err(e("creating a hardlink"))?;
        }
        for (path, st, xattr_src) in std::mem::take(&mut self.deferred_dirs) {
            let shown = display(&path);
            let e = |op: &'static str| {
                let shown = shown.clone();
                move |source| Error::Copy { path: shown, op, source }
            };
            let fd = fsutil::open_beneath(self.dest_root, &path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(e("opening a directory"))?;
            if (st.st_uid, st.st_gid) != self.ids {
                fchown(&fd, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)))
                    .map_err(e("setting the owner"))?;
            }
            if let Some((src_dir, name)) = xattr_src {
                for key in xattr::list_at(src_dir.as_fd(), &name).map_err(e("listing extended attributes"))? {
                    if is_overlay_xattr(key.to_bytes()) {
                        continue;
                    }
                    if let Some(v) =
                        xattr::get_at(src_dir.as_fd(), &name, &key).map_err(e("reading an extended attribute"))?
                    {
                        xattr::fset(fd.as_fd(), &key, &v).map_err(e("copying extended attributes"))?;
                    }
                }
            }
            fchmod(&fd, Mode::from_bits_retain(st.st_mode & 0o7777)).map_err(e("setting the mode"))?;
            futimens(&fd, &time(st.st_atime, st.st_atime_nsec), &time(st.st_mtime, st.st_mtime_nsec))
                .map_err(e("setting the times"))?;
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
}

/// Copy one regular file (a worker's job): contents with `copy_file_range`, then owner, mode,
/// attributes and times.
fn copy_file(job: &CopyJob, ids: (u32, u32), has_xattrs: bool) -> Result<(), Error> {
    let (src, dest, name, st, shown) =
        (job.src_dir.as_fd(), job.dest_dir.as_fd(), job.name.as_c_str(), &job.st, &job.shown);
    let e = |op: &'static str| move |source| Error::Copy { path: shown.to_string(), op, source };
    let input = nix::fcntl::openat(src, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(e("opening"))?;
    // Owned by us: created with its final mode (umask 0 meanwhile), no chown or chmod.
    let ours = (st.st_uid, st.st_gid) == ids;
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
    if !ours {
        fchown(&output, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)))
            .map_err(e("setting the owner"))?;
        fchmod(&output, Mode::from_bits_retain(mode)).map_err(e("setting the mode"))?;
    } else if mode & 0o6000 != 0 && !nix::unistd::geteuid().is_root() {
        // Writing without CAP_FSETID cleared setuid and setgid: set again.
        fchmod(&output, Mode::from_bits_retain(mode)).map_err(e("setting the mode"))?;
    }
    // Through the open descriptors (no path lookup), and only where the layer has any.
    let keys =
        if has_xattrs { xattr::flist(input.as_fd()).map_err(e("listing extended attributes"))? } else { Vec::new() };
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

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}
