//! Unpacking one layer tar into an empty directory, in overlay form.
//!
//! [`apply_layer`] is a pure function of a byte stream and a destination directory descriptor, so
//! it can be fuzzed on its own. Every file is created relative to a directory descriptor opened
//! with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: no name in the archive, no symlink or hardlink it
//! creates, can make a later entry land outside the destination. The `tar` crate only parses.
//!
//! Whiteouts become what overlayfs understands: `.wh.NAME` a 0/0 character device `NAME`,
//! `.wh..wh..opq` the `overlay.opaque=y` attribute on its directory. As layer.md says, a
//! whiteout only hides lower layers: an entry of the same layer stays (a directory of the same
//! layer is made opaque instead, which hides exactly the lower content).
//!
//! Unpacked by an unprivileged user (a rootless store, see [`crate::store::format`]): files are
//! the caller's, the image's owner of a file or directory other than 0:0 is kept in
//! [`OWNER_XATTR`] ("uid:gid"; a symlink or fifo cannot carry a `user.` attribute, so theirs is
//! lost), only `user.` attributes of the image are set, and device nodes are skipped (counted in
//! [`Stats`]; the caller warns). Whiteouts are 0/0 character devices all the same: Linux 5.8
//! lets anyone make one.

mod merge;
pub mod path;

pub use merge::MergedTree;

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, futimens, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use tar::EntryType;

use crate::fsutil::{self, cstring, lstat_at, open_beneath, open_dir_beneath};
use crate::sys::xattr;

/// Where an unprivileged unpacking keeps a file's owner in the image ("uid:gid"), since it
/// cannot chown; absent means 0:0 (root of the image, which a rootless container maps the
/// caller to).
pub const OWNER_XATTR: &CStr = c"user.strata.owner";

/// The xattr namespace overlayfs reads its own attributes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlayXattrs {
    /// `trusted.overlay.*`: the normal, privileged overlay mount.
    #[default]
    Trusted,
    /// `user.overlay.*`: an overlay mounted with `userxattr` (rootless).
    User,
}

impl OverlayXattrs {
    pub fn opaque(self) -> &'static CStr {
        match self {
            OverlayXattrs::Trusted => c"trusted.overlay.opaque",
            OverlayXattrs::User => c"user.overlay.opaque",
        }
    }
}

/// Whether an xattr name belongs to overlayfs (in either namespace); a layer may never set one.
pub fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// Ownership, mode and time of a directory in the layers below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: TimeSpec,
}

/// Looks a path (relative, `/`-separated) up in the layers below the one being unpacked.
pub type LowerLookup<'a> = &'a dyn Fn(&[u8]) -> Option<DirMeta>;

#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    pub overlay: OverlayXattrs,
    /// For a parent directory the archive leaves out: where the layers below have it, it is made
    /// with their ownership, mode and time (an overlay shows the top layer's directory, so a
    /// default 0755 root directory would change what the image shows); else 0755 root.
    pub lower: Option<LowerLookup<'a>>,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("overlay", &self.overlay).field("lower", &self.lower.is_some()).finish()
    }
}

/// What one layer held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub whiteouts: u64,
    pub bytes: u64,
    /// Extended attributes set (other than overlay's own): none means none to copy later.
    #[serde(default = "unknown_xattrs")]
    pub xattrs: u64,
    /// Device nodes left out (an unprivileged user cannot make them).
    #[serde(default)]
    pub skipped_devices: u64,
    /// Extended attributes left out (an unprivileged user sets only `user.` ones).
    #[serde(default)]
    pub skipped_xattrs: u64,
}

/// For layer records written before the count existed: assume there are some.
fn unknown_xattrs() -> u64 {
    u64::MAX
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the layer archive")]
    ReadArchive(#[source] io::Error),
    #[error("layer entry {path:?} rejected: {reason}")]
    Rejected { path: String, reason: String },
    #[error("layer entry {path:?}: {op}")]
    Apply {
        path: String,
        op: &'static str,
        #[source]
        source: Errno,
    },
    #[error("layer entry {path:?}: writing the file contents")]
    WriteData {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Unpack the layer tar read from `reader` into the (empty) directory `dest`, in overlay form.
///
/// Reading stops at the tar end marker; the caller drains what follows (for its digest).
/// The process umask is 0 while it runs (see [`crate::fsutil::UmaskGuard`]): other threads of
/// the process should not create files meanwhile.
pub fn apply_layer<R: Read>(reader: R, dest: BorrowedFd<'_>, opts: &Options<'_>) -> Result<Stats, Error> {
    let _umask = fsutil::UmaskGuard::zero();
    let ex = Extractor::new(dest, *opts, None);
    ex.run(reader)
}

/// Apply the layer tar read from `reader` onto `tree`, which holds the layers below it applied
/// the same way: the result is the merged view of all of them, as overlayfs would show it (see
/// [`merge`]). The same names are refused as by [`apply_layer`]; [`MergedTree::finish`] sets
/// the directories' modes and times once the last layer is applied.
pub fn apply_layer_merged<R: Read>(reader: R, tree: &mut MergedTree<'_>) -> Result<Stats, Error> {
    let _umask = fsutil::UmaskGuard::zero();
    let root = tree.root;
    let ex = Extractor::new(root, Options::default(), Some(merge::LayerMerge::new(tree)));
    ex.run(reader)
}

/// Ownership, permissions, time and attributes of one entry.
#[derive(Debug)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

struct Extractor<'a> {
    root: BorrowedFd<'a>,
    /// Who owns what we create: directories are 0755 until the end, never setgid, so a new file
    /// always gets exactly these.
    ids: (u32, u32),
    /// Not root: owners go into [`OWNER_XATTR`], devices and non-`user.` attributes are skipped.
    unprivileged: bool,
    opts: Options<'a>,
    /// The last parent directory opened (entries come grouped by directory).
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    /// Paths named by a `.wh.` entry of this layer: a directory created there must be opaque.
    whited_out: HashSet<Vec<u8>>,
    /// Directory modes and times, applied once all children are written.
    deferred_dirs: Vec<(Vec<u8>, u32, TimeSpec)>,
    buf: Vec<u8>,
    stats: Stats,
    /// Set when applying onto a merged tree rather than unpacking in overlay form.
    merge: Option<merge::LayerMerge<'a>>,
    /// The time of the entry being applied.
    entry_mtime: TimeSpec,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rejected(path: &[u8], reason: impl Into<String>) -> Error {
    Error::Rejected { path: lossy(path), reason: reason.into() }
}

pub(super) fn apply_err<'p>(path: &'p [u8], op: &'static str) -> impl FnOnce(Errno) -> Error + 'p {
    move |source| Error::Apply { path: lossy(path), op, source }
}

fn parse_pax_time(v: &str) -> Option<TimeSpec> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, c) in frac.chars().take(9).enumerate() {
        nanos += i64::from(c.to_digit(10)?) * 10i64.pow(8 - i as u32);
    }
    // A negative time with a fraction counts the fraction towards zero.
    if secs < 0 && nanos > 0 {
        Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos))
    } else {
        Some(TimeSpec::new(secs, nanos))
    }
}

impl<'a> Extractor<'a> {
    fn new(root: BorrowedFd<'a>, opts: Options<'a>, merge: Option<merge::LayerMerge<'a>>) -> Self {
        Extractor {
            root,
            ids: fsutil::creator_ids(),
            unprivileged: !nix::unistd::geteuid().is_root(),
            opts,
            cache: None,
            whited_out: HashSet::new(),
            deferred_dirs: Vec::new(),
            buf: vec![0; 256 * 1024],
            stats: Stats::default(),
            merge,
            entry_mtime: TimeSpec::new(0, 0),
        }
    }

    fn run<R: Read>(mut self, reader: R) -> Result<Stats, Error> {
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(Error::ReadArchive)? {
            let mut entry = entry.map_err(Error::ReadArchive)?;
            self.entry(&mut entry)?;
        }
        self.finish()?;
        Ok(self.stats)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Error> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        self.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let parts = path::components(&raw).map_err(|e| rejected(&raw, e.reason()))?;
        let mut meta = self.meta(entry, &raw)?;
        if self.unprivileged {
            let before = meta.xattrs.len();
            meta.xattrs.retain(|(k, _)| k.to_bytes().starts_with(b"user.") && k.as_c_str() != OWNER_XATTR);
            self.stats.skipped_xattrs += (before - meta.xattrs.len()) as u64;
        }
        self.stats.xattrs += meta.xattrs.len() as u64;
        self.entry_mtime = meta.mtime;

        self.apply(entry, kind, &parts, &meta, &raw)?;
        // Recorded once applied: until then a non-directory in the way is a lower layer's.
        if let Some(m) = &mut self.merge
            && let Some((name, parent)) = parts.split_last()
        {
            m.note_parent(parent, &raw)?;
            if !name.starts_with(b".wh.") {
                m.ours.insert(path::join(&parts));
            }
        }
        Ok(())
    }

    fn apply<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        parts: &[&[u8]],
        meta: &Meta,
        raw: &[u8],
    ) -> Result<(), Error> {
        if let Some((name, parent)) = parts.split_last()
            && let Some(hidden) = name.strip_prefix(b".wh.")
        {
            return self.whiteout(parent, hidden, raw);
        }

        match kind {
            EntryType::Directory => self.directory(parts, meta, raw),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let (name, parent) = parts.split_last().ok_or_else(|| rejected(raw, "the layer root is not a file"))?;
                self.regular(parent, name, meta, entry, raw)
            }
            EntryType::Symlink | EntryType::Link | EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (name, parent) =
                    parts.split_last().ok_or_else(|| rejected(raw, "the layer root must be a directory"))?;
                let link = entry.link_name_bytes().map(|l| l.into_owned());
                self.special(kind, parent, name, meta, link, entry.header(), raw)
            }
            other => Err(rejected(raw, format!("unsupported tar entry type {:?}", other.as_byte() as char))),
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta, Error> {
        let h = entry.header();
        let bad = |what: &str| rejected(raw, format!("unreadable {what} in the tar header"));
        let mut meta = Meta {
            uid: u32::try_from(h.uid().map_err(|_| bad("uid"))?).map_err(|_| bad("uid"))?,
            gid: u32::try_from(h.gid().map_err(|_| bad("gid"))?).map_err(|_| bad("gid"))?,
            mode: h.mode().map_err(|_| bad("mode"))? & 0o7777,
            mtime: TimeSpec::new(i64::try_from(h.mtime().map_err(|_| bad("mtime"))?).unwrap_or(i64::MAX), 0),
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(Error::ReadArchive)? {
            for ext in pax {
                let ext = ext.map_err(Error::ReadArchive)?;
                let key = ext.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    if is_overlay_xattr(name) {
                        return Err(rejected(raw, format!("sets the overlay attribute {:?}", lossy(name))));
                    }
                    let name = cstring(name).ok_or_else(|| rejected(raw, "xattr name holds a NUL byte"))?;
                    meta.xattrs.push((name, ext.value_bytes().to_vec()));
                    continue;
                }
                let Ok(value) = ext.value() else { continue };
                match key {
                    b"mtime" => meta.mtime = parse_pax_time(value).ok_or_else(|| bad("pax mtime"))?,
                    b"uid" => meta.uid = value.parse().map_err(|_| bad("pax uid"))?,
                    b"gid" => meta.gid = value.parse().map_err(|_| bad("pax gid"))?,
                    _ => {}
                }
            }
        }
        Ok(meta)
    }

    /// The directory holding an entry, created (mode 0755, root) where the archive left it out.
    fn parent(&mut self, parts: &[&[u8]], raw: &[u8]) -> Result<Rc<OwnedFd>, Error> {
        let key = path::join(parts);
        if let Some((k, fd)) = &self.cache
            && *k == key
        {
            return Ok(fd.clone());
        }
        let fd = match open_dir_beneath(self.root, &key) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EXDEV) => self.walk_parent(parts, raw)?,
            Err(e) => return Err(apply_err(raw, "opening the parent directory")(e)),
        };
        let fd = Rc::new(fd);
        self.cache = Some((key, fd.clone()));
        Ok(fd)
    }

    /// Slow path of [`Self::parent`]: one component at a time, creating what is missing and
    /// saying precisely what is in the way.
    fn walk_parent(&mut self, parts: &[&[u8]], raw: &[u8]) -> Result<OwnedFd, Error> {
        let mut cur = open_dir_beneath(self.root, b"").map_err(apply_err(raw, "opening the layer directory"))?;
        for (i, comp) in parts.iter().enumerate() {
            let here = path::join(&parts[..=i]);
            let name = cstring(comp).ok_or_else(|| rejected(raw, "path holds a NUL byte"))?;
            match lstat_at(cur.as_fd(), &name).map_err(apply_err(raw, "inspecting a parent directory"))? {
                None => {
                    self.make_dir(cur.as_fd(), &name, &here, raw)?;
                    self.implicit_dir_meta(cur.as_fd(), &name, &here, raw)?;
                }
                Some(st) if fsutil::is_dir(&st) => {}
                Some(_) if self.merge.as_ref().is_some_and(|m| !m.is_ours(&here)) => {
                    // A lower layer's non-directory, hidden by this layer's directory.
                    self.remove_existing(cur.as_fd(), &name, &here, raw)?;
                    self.make_dir(cur.as_fd(), &name, &here, raw)?;
                }
                Some(st) if fsutil::is_whiteout(&st) => {
                    // The whiteout hid the lower one: this is a new directory, default metadata.
                    unlinkat(cur.as_fd(), name.as_c_str(), UnlinkatFlags::NoRemoveDir)
                        .map_err(apply_err(raw, "removing a whiteout"))?;
                    self.make_dir(cur.as_fd(), &name, &here, raw)?;
                }
                Some(st) if fsutil::file_type(&st) == SFlag::S_IFLNK => {
                    return Err(rejected(
                        raw,
                        format!("its parent {:?} is a symlink; writing through it", lossy(&here)),
                    ));
                }
                Some(_) => return Err(rejected(raw, format!("its parent {:?} is not a directory", lossy(&here)))),
            }
            cur = nix::fcntl::openat(
                cur.as_fd(),
                name.as_c_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(apply_err(raw, "opening a parent directory"))?;
        }
        Ok(cur)
    }

    /// mkdir, then opaque if this layer whited out the same path (it hides the lower one).
    fn make_dir(&mut self, parent: BorrowedFd<'_>, name: &CStr, full: &[u8], raw: &[u8]) -> Result<(), Error> {
        mkdirat(parent, name, Mode::from_bits_truncate(0o755)).map_err(apply_err(raw, "creating a directory"))?;
        self.stats.dirs += 1;
        // A directory no entry describes gets the time of the entry that needed it, not the
        // time of unpacking: the same layers give the same tree, in the store or flattened
        // from the source. An entry for it, or the lower layers' directory, overrides this.
        self.deferred_dirs.push((full.to_vec(), 0o755, self.entry_mtime));
        if self.merge.is_none() && self.whited_out.contains(full) {
            xattr::set_at(parent, name, self.opts.overlay.opaque(), b"y")
                .map_err(apply_err(raw, "marking a directory opaque"))?;
        }
        Ok(())
    }

    /// A parent the archive leaves out takes the lower layers' metadata for it, if any.
    fn implicit_dir_meta(&mut self, parent: BorrowedFd<'_>, name: &CStr, full: &[u8], raw: &[u8]) -> Result<(), Error> {
        if self.whited_out.contains(full) {
            return Ok(());
        }
        let Some(meta) = self.opts.lower.and_then(|lookup| lookup(full)) else { return Ok(()) };
        self.set_dir_owner(parent, name, meta.uid, meta.gid, raw)?;
        self.deferred_dirs.push((full.to_vec(), meta.mode, meta.mtime));
        Ok(())
    }

    /// A directory's owner: chown, or (unprivileged) the image's owner in [`OWNER_XATTR`].
    fn set_dir_owner(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        uid: u32,
        gid: u32,
        raw: &[u8],
    ) -> Result<(), Error> {
        if !self.unprivileged {
            return fchownat(
                parent,
                name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(apply_err(raw, "setting the owner"));
        }
        if (uid, gid) == (0, 0) {
            // A directory merged over a lower layer's may carry that one's owner.
            return xattr::remove_at(parent, name, OWNER_XATTR).map_err(apply_err(raw, "recording the owner"));
        }
        self.stats.xattrs += 1;
        xattr::set_at(parent, name, OWNER_XATTR, owner_value(uid, gid).as_bytes())
            .map_err(apply_err(raw, "recording the owner"))
    }

    /// Remove whatever is at `name` so an entry of another kind can take its place.
    fn remove_existing(&mut self, parent: BorrowedFd<'_>, name: &CStr, full: &[u8], raw: &[u8]) -> Result<(), Error> {
        if let Some(m) = &mut self.merge {
            m.forget(full);
        }
        match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) => {
                // Cached descriptors may point into the tree about to go.
                self.cache = None;
                fsutil::remove_all_at(parent, name).map_err(apply_err(raw, "removing a replaced directory"))
            }
            Err(e) => Err(apply_err(raw, "removing a replaced entry")(e)),
        }
    }

    fn whiteout(&mut self, parent_parts: &[&[u8]], hidden: &[u8], raw: &[u8]) -> Result<(), Error> {
        let parent = self.parent(parent_parts, raw)?;
        if self.merge.is_some() {
            return self.merged_whiteout(parent.as_fd(), parent_parts, hidden, raw);
        }
        if hidden == b".wh..opq" {
            self.stats.whiteouts += 1;
            return xattr::set_at(parent.as_fd(), c".", self.opts.overlay.opaque(), b"y")
                .map_err(apply_err(raw, "marking a directory opaque"));
        }
        if hidden.starts_with(b".wh.") {
            // Other `.wh..wh.` names are aufs bookkeeping (`.wh..wh.plnk`...): not content.
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(rejected(raw, "whiteout of an invalid name"));
        }
        self.stats.whiteouts += 1;
        let name = cstring(hidden).ok_or_else(|| rejected(raw, "path holds a NUL byte"))?;
        let mut full = parent_parts.to_vec();
        full.push(hidden);
        self.whited_out.insert(path::join(&full));
        match lstat_at(parent.as_fd(), &name).map_err(apply_err(raw, "inspecting the whited-out entry"))? {
            None => mknodat(parent.as_fd(), name.as_c_str(), SFlag::S_IFCHR, Mode::empty(), 0).map_err(apply_err(
                raw,
                if self.unprivileged {
                    "creating a whiteout device (as a non-root user this needs Linux 5.8 or later)"
                } else {
                    "creating a whiteout device"
                },
            )),
            // Same-layer content stays visible; a directory stops showing the lower one's content.
            Some(st) if fsutil::is_dir(&st) => xattr::set_at(parent.as_fd(), &name, self.opts.overlay.opaque(), b"y")
                .map_err(apply_err(raw, "marking a directory opaque")),
            Some(_) => Ok(()),
        }
    }

    /// A whiteout or opaque marker applied to a merged tree: what the layers below put there
    /// goes; what this layer has stays.
    fn merged_whiteout(
        &mut self,
        parent: BorrowedFd<'_>,
        parent_parts: &[&[u8]],
        hidden: &[u8],
        raw: &[u8],
    ) -> Result<(), Error> {
        let parent_path = path::join(parent_parts);
        let Some(m) = self.merge.as_mut() else { return Ok(()) };
        if hidden == b".wh..opq" {
            self.stats.whiteouts += 1;
            self.cache = None;
            return m.prune_lower(self.root, &parent_path, raw);
        }
        if hidden.starts_with(b".wh.") {
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(rejected(raw, "whiteout of an invalid name"));
        }
        self.stats.whiteouts += 1;
        let name = cstring(hidden).ok_or_else(|| rejected(raw, "path holds a NUL byte"))?;
        let mut full = parent_parts.to_vec();
        full.push(hidden);
        let full = path::join(&full);
        let Some(st) = lstat_at(parent, &name).map_err(apply_err(raw, "inspecting the whited-out entry"))? else {
            return Ok(());
        };
        self.cache = None;
        if !m.is_ours(&full) {
            m.forget(&full);
            return fsutil::remove_all_at(parent, &name).map_err(apply_err(raw, "removing a whited-out entry"));
        }
        if fsutil::is_dir(&st) { m.prune_lower(self.root, &full, raw) } else { Ok(()) }
    }

    fn directory(&mut self, parts: &[&[u8]], meta: &Meta, raw: &[u8]) -> Result<(), Error> {
        let full = path::join(parts);
        let (parent, name) = match parts.split_last() {
            Some((name, parent_parts)) => {
                let parent = self.parent(parent_parts, raw)?;
                let name = cstring(name).ok_or_else(|| rejected(raw, "path holds a NUL byte"))?;
                match mkdirat(parent.as_fd(), name.as_c_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {
                        self.stats.dirs += 1;
                        if self.whited_out.contains(&full) {
                            xattr::set_at(parent.as_fd(), &name, self.opts.overlay.opaque(), b"y")
                                .map_err(apply_err(raw, "marking a directory opaque"))?;
                        }
                    }
                    Err(Errno::EEXIST) => {
                        let st = lstat_at(parent.as_fd(), &name).map_err(apply_err(raw, "inspecting an entry"))?;
                        if !st.as_ref().is_some_and(fsutil::is_dir) {
                            self.remove_existing(parent.as_fd(), &name, &full, raw)?;
                            self.make_dir(parent.as_fd(), &name, &full, raw)?;
                        } else if self.merge.is_some() {
                            // overlayfs shows this layer's directory inode: its attributes only.
                            for key in xattr::list_at(parent.as_fd(), &name)
                                .map_err(apply_err(raw, "listing extended attributes"))?
                            {
                                if !meta.xattrs.iter().any(|(k, _)| *k == key) {
                                    xattr::remove_at(parent.as_fd(), &name, &key)
                                        .map_err(apply_err(raw, "removing an extended attribute"))?;
                                }
                            }
                        }
                    }
                    Err(e) => return Err(apply_err(raw, "creating a directory")(e)),
                }
                (parent, name)
            }
            None => (
                Rc::new(open_dir_beneath(self.root, b"").map_err(apply_err(raw, "opening the layer root"))?),
                c".".to_owned(),
            ),
        };
        self.set_dir_owner(parent.as_fd(), &name, meta.uid, meta.gid, raw)?;
        for (key, value) in &meta.xattrs {
            xattr::set_at(parent.as_fd(), &name, key, value)
                .map_err(apply_err(raw, "setting an extended attribute"))?;
        }
        self.deferred_dirs.push((full, meta.mode, meta.mtime));
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        parent_parts: &[&[u8]],
        name: &[u8],
        meta: &Meta,
        data: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> Result<(), Error> {
        let parent = self.parent(parent_parts, raw)?;
        let name = cstring(name).ok_or_else(|| rejected(raw, "path holds a NUL byte"))?;
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        // Files owned by us are created with their final mode (the umask is 0 while unpacking):
        // no chown, no chmod. Others get 0600 until chown and chmod, as chown clears setuid.
        let ours = self.unprivileged || (meta.uid == self.ids.0 && meta.gid == self.ids.1);
        let create_mode = if ours { meta.mode } else { 0o600 };
        let create = || nix::fcntl::openat(parent.as_fd(), name.as_c_str(), flags, Mode::from_bits_retain(create_mode));
        let fd = match create() {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => {
                self.remove_existing(parent.as_fd(), &name, &child_path(parent_parts, name.to_bytes()), raw)?;
                create().map_err(apply_err(raw, "creating a file"))?
            }
            Err(e) => return Err(apply_err(raw, "creating a file")(e)),
        };
        let mut file = std::fs::File::from(fd);
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::ReadArchive(e)),
            };
            file.write_all(&self.buf[..n]).map_err(|source| Error::WriteData { path: lossy(raw), source })?;
            self.stats.bytes += n as u64;
        }
        self.stats.files += 1;
        if self.unprivileged && (meta.uid, meta.gid) != (0, 0) {
            self.stats.xattrs += 1;
            xattr::fset(file.as_fd(), OWNER_XATTR, owner_value(meta.uid, meta.gid).as_bytes())
                .map_err(apply_err(raw, "recording the owner"))?;
        }
        if !ours {
            fchown(&file, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)))
                .map_err(apply_err(raw, "setting the owner"))?;
            fchmod(&file, Mode::from_bits_retain(meta.mode)).map_err(apply_err(raw, "setting the mode"))?;
        } else if self.unprivileged && meta.mode & 0o6000 != 0 {
            // Writing without CAP_FSETID cleared setuid and setgid: set again.
            fchmod(&file, Mode::from_bits_retain(meta.mode)).map_err(apply_err(raw, "setting the mode"))?;
        }
        for (key, value) in &meta.xattrs {
            xattr::fset(file.as_fd(), key, value).map_err(apply_err(raw, "setting an extended attribute"))?;
        }
        futimens(&file, &meta.mtime, &meta.mtime).map_err(apply_err(raw, "setting the times"))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn special(
        &mut self,
        kind: EntryType,
        parent_parts: &[&[u8]],
        name_bytes: &[u8],
        meta: &Meta,
        link: Option<Vec<u8>>,
        header: &tar::Header,
        raw: &[u8],
    ) -> Result<(), Error> {
        let parent = self.parent(parent_parts, raw)?;
        let name = cstring(name_bytes).ok_or_else(|| rejected(raw, "path holds a NUL byte"))?;
        if kind == EntryType::Link {
            return self.hardlink(parent.as_fd(), parent_parts, name_bytes, &name, link, raw);
        }
        let create = || -> Result<(), Errno> {
            match kind {
                EntryType::Symlink => {
                    let target = link.as_deref().unwrap_or_default();
                    symlinkat(target, parent.as_fd(), name.as_c_str())
                }
                EntryType::Fifo => {
                    mknodat(parent.as_fd(), name.as_c_str(), SFlag::S_IFIFO, Mode::from_bits_truncate(0o600), 0)
                }
                _ => {
                    let major = header.device_major().ok().flatten().unwrap_or(0);
                    let minor = header.device_minor().ok().flatten().unwrap_or(0);
                    let sflag = if kind == EntryType::Char { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
                    let dev = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
                    mknodat(parent.as_fd(), name.as_c_str(), sflag, Mode::from_bits_truncate(0o600), dev)
                }
            }
        };
        if kind == EntryType::Symlink && link.as_deref().is_none_or(|l| l.is_empty() || l.contains(&0)) {
            return Err(rejected(raw, "symlink with an empty or invalid target"));
        }
        if kind == EntryType::Char
            && header.device_major().ok().flatten().unwrap_or(0) == 0
            && header.device_minor().ok().flatten().unwrap_or(0) == 0
        {
            return Err(rejected(
                raw,
                "a 0/0 character device is an overlay whiteout, which a tar layer must spell .wh.NAME",
            ));
        }
        if self.unprivileged && matches!(kind, EntryType::Char | EntryType::Block) {
            // As podman does rootless: the container gets its devices from the runtime's /dev.
            self.stats.skipped_devices += 1;
            return Ok(());
        }
        match create() {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                self.remove_existing(parent.as_fd(), &name, &child_path(parent_parts, name_bytes), raw)?;
                create().map_err(apply_err(raw, "creating the entry"))?;
            }
            Err(e) => return Err(apply_err(raw, "creating the entry")(e)),
        }
        // Unprivileged: a symlink or fifo stays the caller's (no `user.` attribute fits on it).
        if !self.unprivileged {
            fchownat(
                parent.as_fd(),
                name.as_c_str(),
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(apply_err(raw, "setting the owner"))?;
        }
        if kind != EntryType::Symlink {
            // Not a symlink (just created as a node), so following is harmless.
            fchmodat(parent.as_fd(), name.as_c_str(), Mode::from_bits_retain(meta.mode), FchmodatFlags::FollowSymlink)
                .map_err(apply_err(raw, "setting the mode"))?;
        }
        for (key, value) in &meta.xattrs {
            xattr::set_at(parent.as_fd(), &name, key, value)
                .map_err(apply_err(raw, "setting an extended attribute"))?;
        }
        nix::sys::stat::utimensat(
            parent.as_fd(),
            name.as_c_str(),
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(apply_err(raw, "setting the times"))?;
        Ok(())
    }

    fn hardlink(
        &mut self,
        parent: BorrowedFd<'_>,
        parent_parts: &[&[u8]],
        name_bytes: &[u8],
        name: &CStr,
        link: Option<Vec<u8>>,
        raw: &[u8],
    ) -> Result<(), Error> {
        let link = link.ok_or_else(|| rejected(raw, "hardlink without a target"))?;
        let target = path::components(&link).map_err(|e| rejected(raw, format!("hardlink target: {}", e.reason())))?;
        let (tname, tparent) = target.split_last().ok_or_else(|| rejected(raw, "hardlink to the layer root"))?;
        if tparent == parent_parts && *tname == name_bytes {
            return Ok(());
        }
        let not_here = || rejected(raw, format!("hardlink target {:?} is not a file of this layer", lossy(&link)));
        let tdir = match open_dir_beneath(self.root, &path::join(tparent)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EXDEV) => {
                return Err(if self.has_symlink_on(tparent) {
                    rejected(raw, format!("hardlink target {:?} is reached through a symlink", lossy(&link)))
                } else {
                    not_here()
                });
            }
            Err(e) => return Err(apply_err(raw, "opening the hardlink target's directory")(e)),
        };
        if self.merge.as_ref().is_some_and(|m| !m.is_ours(&path::join(&target))) {
            // The tree also holds the layers below: only this layer's names are linkable.
            return Err(not_here());
        }
        let tname = cstring(tname).ok_or_else(|| rejected(raw, "path holds a NUL byte"))?;
        match lstat_at(tdir.as_fd(), &tname).map_err(apply_err(raw, "inspecting the hardlink target"))? {
            None => return Err(not_here()),
            // A whiteout is not a file: linking it would hide a second name below.
            Some(st) if fsutil::is_whiteout(&st) => return Err(not_here()),
            Some(st) if fsutil::is_dir(&st) => return Err(rejected(raw, "hardlink to a directory")),
            Some(_) => {}
        }
        let link_it = || linkat(tdir.as_fd(), tname.as_c_str(), parent, name, AtFlags::empty());
        match link_it() {
            Ok(()) => Ok(()),
            Err(Errno::ENOENT) => Err(not_here()),
            Err(Errno::EPERM) => Err(rejected(raw, "hardlink to a directory")),
            Err(Errno::EEXIST) => {
                let a = lstat_at(tdir.as_fd(), &tname).map_err(apply_err(raw, "inspecting the hardlink target"))?;
                let b = lstat_at(parent, name).map_err(apply_err(raw, "inspecting an entry"))?;
                if let (Some(a), Some(b)) = (a, b)
                    && (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
                {
                    return Ok(());
                }
                self.remove_existing(parent, name, &child_path(parent_parts, name_bytes), raw)?;
                link_it().map_err(apply_err(raw, "creating a hardlink"))
            }
            Err(e) => Err(apply_err(raw, "creating a hardlink")(e)),
        }
    }

    /// Whether some component of `parts` is a symlink in this layer (for a precise error).
    fn has_symlink_on(&self, parts: &[&[u8]]) -> bool {
        (1..=parts.len()).any(|n| {
            let (last, dir) = match parts[..n].split_last() {
                Some(x) => x,
                None => return false,
            };
            let Ok(dfd) = open_dir_beneath(self.root, &path::join(dir)) else { return false };
            let Some(name) = cstring(last) else { return false };
            matches!(lstat_at(dfd.as_fd(), &name), Ok(Some(st)) if fsutil::file_type(&st) == SFlag::S_IFLNK)
        })
    }

    /// Directory modes and times last: writing children changes a directory's mtime, and a
    /// read-only mode would stop the writing. In archive order, so a duplicate's last entry wins.
    fn finish(&mut self) -> Result<(), Error> {
        self.cache = None;
        if let Some(m) = &mut self.merge {
            // Applied after the last layer (later layers write into these directories).
            for (path, mode, mtime) in std::mem::take(&mut self.deferred_dirs) {
                m.dirs.insert(path, (mode, mtime));
            }
            return Ok(());
        }
        for (path, mode, mtime) in std::mem::take(&mut self.deferred_dirs) {
            set_dir_mode_and_times(self.root, &path, mode, mtime)?;
        }
        Ok(())
    }
}

/// A directory's mode and times, set once everything below it is written. A directory that is no
/// longer there (or no longer a directory) was replaced later: that entry's metadata stands.
fn set_dir_mode_and_times(root: BorrowedFd<'_>, path: &[u8], mode: u32, mtime: TimeSpec) -> Result<(), Error> {
    let fd = match open_beneath(root, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(()),
        Err(e) => return Err(apply_err(path, "reopening a directory")(e)),
    };
    fchmod(&fd, Mode::from_bits_retain(mode)).map_err(apply_err(path, "setting the mode"))?;
    futimens(&fd, &mtime, &mtime).map_err(apply_err(path, "setting the times"))
}

/// The value of [`OWNER_XATTR`].
pub fn owner_value(uid: u32, gid: u32) -> String {
    format!("{uid}:{gid}")
}

/// Parse a value of [`OWNER_XATTR`].
pub fn parse_owner(value: &[u8]) -> Option<(u32, u32)> {
    let (u, g) = std::str::from_utf8(value).ok()?.split_once(':')?;
    Some((u.parse().ok()?, g.parse().ok()?))
}

/// The path of `name` in the directory `parent`.
fn child_path(parent: &[&[u8]], name: &[u8]) -> Vec<u8> {
    let mut full = parent.to_vec();
    full.push(name);
    path::join(&full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_values() {
        assert_eq!(parse_owner(owner_value(1000, 65534).as_bytes()), Some((1000, 65534)));
        assert_eq!(parse_owner(b"1000"), None);
        assert_eq!(parse_owner(b"a:1"), None);
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("12.5"), Some(TimeSpec::new(12, 500_000_000)));
        assert_eq!(parse_pax_time("7"), Some(TimeSpec::new(7, 0)));
        assert_eq!(parse_pax_time("-1.25"), Some(TimeSpec::new(-2, 750_000_000)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
