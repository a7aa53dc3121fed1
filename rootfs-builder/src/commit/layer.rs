//! A bundle's writable layer (an overlay upper directory) as an OCI layer tar.
//!
//! Overlay's own marks become the image-spec's: a whiteout (0/0 character device) becomes an
//! empty `.wh.NAME`, an opaque directory (`trusted.overlay.opaque=y`) its entry followed at once
//! by `.wh..wh..opq`. Overlay's other attributes are bookkeeping and are left out, as are
//! `security.selinux` labels (the host's, not the image's) and sockets (tar has none).
//!
//! The output depends only on the tree: entries in a fixed order (pre-order, each directory's
//! names sorted bytewise), ustar headers with permission bits only, no user or group names,
//! whole-second mtimes, and a PAX header only where ustar cannot say it (long names, large ids
//! or sizes, times before 1970, extended attributes, sorted by name). Markers carry fixed
//! metadata (0644 root, time 0). The same change gives the same bytes, so the same digest.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};
use tar::{EntryType, Header};

use crate::extract::{OverlayXattrs, is_overlay_xattr};
use crate::fsutil::{self, lstat_at};
use crate::sys::xattr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path} in the writable layer: {op}")]
    Read {
        path: String,
        op: &'static str,
        #[source]
        source: Errno,
    },
    #[error("writing the layer")]
    Write(#[source] io::Error),
    #[error(
        "{0} has a name starting with .wh., which a layer cannot hold (it would read as a whiteout); rename it first"
    )]
    WhiteoutName(String),
    #[error(
        "{0} carries overlay attribute {1} (a renamed directory or a metadata-only copy): this upper dir was not mounted by strata-rootfs (redirect_dir=off, metacopy=off) and cannot be committed"
    )]
    Redirect(String, String),
}

/// What went into the layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    pub hardlinks: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Sockets left out.
    pub sockets_skipped: u64,
    /// Files whose size changed while they were read (a running container writing them): the
    /// layer holds the size first seen, cut or padded with zeros.
    pub changed_while_read: u64,
}

/// ustar's octal fields: 7 digits for ids, 11 for sizes and times.
const USTAR_ID_MAX: u64 = 0o7_777_777;
const USTAR_NUM_MAX: u64 = 0o77_777_777_777;

fn display(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

/// Xattrs worth committing, sorted by name: overlay's own and SELinux labels are not.
fn wanted_xattr(name: &CStr) -> bool {
    let n = name.to_bytes();
    !is_overlay_xattr(n) && n != b"security.selinux"
}

/// Writes the layer for the upper directory open as `upper`; `exclude` lists relative paths
/// never to commit (the init layer's files).
pub fn write_layer<W: Write>(upper: BorrowedFd<'_>, exclude: &[String], out: W) -> Result<(W, Stats), Error> {
    let mut w = LayerWriter {
        builder: tar::Builder::new(out),
        exclude: exclude.iter().map(|e| e.trim_matches('/').as_bytes().to_vec()).collect(),
        links: HashMap::new(),
        overlay: OverlayXattrs::Trusted,
        stats: Stats::default(),
    };
    let root =
        fsutil::open_beneath(upper, b"", OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(read_err(b"", "opening"))?;
    w.dir_children(root.as_fd(), &mut Vec::new())?;
    let out = w.builder.into_inner().map_err(Error::Write)?;
    Ok((out, w.stats))
}

fn read_err<'p>(path: &'p [u8], op: &'static str) -> impl FnOnce(Errno) -> Error + 'p {
    move |source| Error::Read { path: display(path), op, source }
}

struct LayerWriter<W: Write> {
    builder: tar::Builder<W>,
    exclude: Vec<Vec<u8>>,
    /// (device, inode) of a multiply linked file already written -> its path.
    links: HashMap<(u64, u64), Vec<u8>>,
    overlay: OverlayXattrs,
    stats: Stats,
}

/// The header of one entry and its PAX records.
struct Entry {
    header: Header,
    pax: Vec<(String, Vec<u8>)>,
}

impl Entry {
    fn new(kind: EntryType, name: &[u8], mode: u32, uid: u64, gid: u64, mtime: i64) -> Self {
        let mut e = Self { header: Header::new_ustar(), pax: Vec::new() };
        e.header.set_entry_type(kind);
        e.set_name(name);
        e.header.set_mode(mode & 0o7777);
        e.set_id("uid", uid);
        e.set_id("gid", gid);
        if mtime < 0 || mtime as u64 > USTAR_NUM_MAX {
            e.header.set_mtime(0);
            e.pax.push(("mtime".into(), mtime.to_string().into_bytes()));
        } else {
            e.header.set_mtime(mtime as u64);
        }
        e.header.set_size(0);
        e
    }

    fn set_name(&mut self, name: &[u8]) {
        let field = &mut self.header.as_old_mut().name;
        let n = name.len().min(field.len());
        field[..n].copy_from_slice(&name[..n]);
        if name.len() > field.len() {
            self.pax.push(("path".into(), name.to_vec()));
        }
    }

    fn set_link(&mut self, target: &[u8]) {
        let field = &mut self.header.as_old_mut().linkname;
        let n = target.len().min(field.len());
        field[..n].copy_from_slice(&target[..n]);
        if target.len() > field.len() {
            self.pax.push(("linkpath".into(), target.to_vec()));
        }
    }

    fn set_id(&mut self, key: &str, id: u64) {
        let v = if id > USTAR_ID_MAX {
            self.pax.push((key.into(), id.to_string().into_bytes()));
            0
        } else {
            id
        };
        if key == "uid" {
            self.header.set_uid(v);
        } else {
            self.header.set_gid(v);
        }
    }

    fn set_size(&mut self, size: u64) {
        if size > USTAR_NUM_MAX {
            self.pax.push(("size".into(), size.to_string().into_bytes()));
        }
        // The tar crate writes sizes beyond ustar's in GNU base-256; readers take PAX first.
        self.header.set_size(size);
    }
}

impl<W: Write> LayerWriter<W> {
    fn append(&mut self, mut e: Entry, data: impl Read) -> Result<(), Error> {
        if !e.pax.is_empty() {
            let mut records = Vec::new();
            for (k, v) in &e.pax {
                pax_record(&mut records, k, v);
            }
            let mut h = Header::new_ustar();
            h.set_entry_type(EntryType::XHeader);
            let name = b"PaxHeader";
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_mode(0o644);
            h.set_size(records.len() as u64);
            h.set_cksum();
            self.builder.append(&h, records.as_slice()).map_err(Error::Write)?;
        }
        e.header.set_cksum();
        self.stats.entries += 1;
        self.builder.append(&e.header, data).map_err(Error::Write)
    }

    /// An empty marker file: a whiteout or an opaque marker.
    fn marker(&mut self, name: &[u8]) -> Result<(), Error> {
        let mut e = Entry::new(EntryType::Regular, name, 0o644, 0, 0, 0);
        e.set_size(0);
        self.append(e, io::empty())
    }

    fn xattrs_of(&self, dir: BorrowedFd<'_>, name: &CStr, path: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let mut names = xattr::list_at(dir, name).map_err(read_err(path, "listing extended attributes"))?;
        names.sort();
        let mut out = Vec::new();
        for key in names {
            let kb = key.to_bytes();
            if kb == b"trusted.overlay.redirect" || kb == b"trusted.overlay.metacopy" {
                return Err(Error::Redirect(display(path), key.to_string_lossy().into_owned()));
            }
            if !wanted_xattr(&key) {
                continue;
            }
            if let Some(v) = xattr::get_at(dir, name, &key).map_err(read_err(path, "reading an extended attribute"))? {
                out.push((format!("SCHILY.xattr.{}", key.to_string_lossy()), v));
            }
        }
        Ok(out)
    }

    /// Write the entries below the directory open as `dir` (whose path is `path`), sorted by the
    /// names they have in the layer (a whiteout of `x` as `.wh.x`).
    fn dir_children(&mut self, dir: BorrowedFd<'_>, path: &mut Vec<u8>) -> Result<(), Error> {
        let names = fsutil::list_dir(dir).map_err(read_err(path, "listing"))?;
        let mut children = Vec::with_capacity(names.len());
        for name in names {
            // Gone since the listing (a running container): nothing to commit for it.
            let Some(st) = lstat_at(dir, &name).map_err(read_err(path, "inspecting"))? else { continue };
            let mut key = Vec::new();
            if fsutil::is_whiteout(&st) {
                key.extend_from_slice(b".wh.");
            }
            key.extend_from_slice(name.as_bytes());
            children.push((key, name, st));
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, name, st) in children {
            let saved = path.len();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.as_bytes());
            let res = self.child(dir, &name, &st, path);
            path.truncate(saved);
            res?;
        }
        Ok(())
    }

    fn child(&mut self, dir: BorrowedFd<'_>, name: &CString, st: &FileStat, path: &mut Vec<u8>) -> Result<(), Error> {
        if self.exclude.iter().any(|e| e == path) {
            return Ok(());
        }
        if fsutil::is_whiteout(st) {
            let mut marker = path[..path.len() - name.as_bytes().len()].to_vec();
            marker.extend_from_slice(b".wh.");
            marker.extend_from_slice(name.as_bytes());
            self.stats.whiteouts += 1;
            return self.marker(&marker);
        }
        if name.as_bytes().starts_with(b".wh.") {
            return Err(Error::WhiteoutName(display(path)));
        }
        let kind = fsutil::file_type(st);
        let (mode, uid, gid, mtime) = (st.st_mode, u64::from(st.st_uid), u64::from(st.st_gid), st.st_mtime);
        match kind {
            SFlag::S_IFDIR => {
                let fd = nix::fcntl::openat(
                    dir,
                    name.as_c_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(read_err(path, "opening the directory"))?;
                let mut dir_name = path.clone();
                dir_name.push(b'/');
                let mut e = Entry::new(EntryType::Directory, &dir_name, mode, uid, gid, mtime);
                e.pax.extend(self.xattrs_of(dir, name, path)?);
                self.append(e, io::empty())?;
                self.stats.dirs += 1;
                let opaque = xattr::fget(fd.as_fd(), self.overlay.opaque())
                    .map_err(read_err(path, "reading the opaque attribute"))?;
                if opaque.as_deref() == Some(b"y") {
                    dir_name.extend_from_slice(b".wh..wh..opq");
                    self.stats.opaque_dirs += 1;
                    self.marker(&dir_name)?;
                }
                self.dir_children(fd.as_fd(), path)
            }
            SFlag::S_IFSOCK => {
                self.stats.sockets_skipped += 1;
                Ok(())
            }
            _ => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut e = Entry::new(EntryType::Link, path, mode, uid, gid, mtime);
                        e.set_link(&first);
                        e.pax.extend(self.xattrs_of(dir, name, path)?);
                        self.stats.hardlinks += 1;
                        return self.append(e, io::empty());
                    }
                    self.links.insert(key, path.clone());
                }
                self.non_dir(dir, name, path, kind, st)
            }
        }
    }

    fn non_dir(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CString,
        path: &[u8],
        kind: SFlag,
        st: &FileStat,
    ) -> Result<(), Error> {
        let (mode, uid, gid, mtime) = (st.st_mode, u64::from(st.st_uid), u64::from(st.st_gid), st.st_mtime);
        let xattrs = self.xattrs_of(dir, name, path)?;
        match kind {
            SFlag::S_IFREG => {
                let fd: OwnedFd = nix::fcntl::openat(
                    dir,
                    name.as_c_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(read_err(path, "opening the file"))?;
                let size = nix::sys::stat::fstat(&fd).map_err(read_err(path, "inspecting the file"))?.st_size as u64;
                let mut e = Entry::new(EntryType::Regular, path, mode, uid, gid, mtime);
                e.set_size(size);
                e.pax.extend(xattrs);
                let mut data = ExactReader { inner: std::fs::File::from(fd), left: size, short: false, path };
                self.append(e, &mut data)?;
                if data.short || data.inner.read(&mut [0u8; 1]).is_ok_and(|n| n > 0) {
                    self.stats.changed_while_read += 1;
                }
                self.stats.files += 1;
                self.stats.bytes += size;
                Ok(())
            }
            SFlag::S_IFLNK => {
                let target =
                    nix::fcntl::readlinkat(dir, name.as_c_str()).map_err(read_err(path, "reading the link"))?;
                let mut e = Entry::new(EntryType::Symlink, path, mode, uid, gid, mtime);
                e.set_link(target.as_bytes());
                e.pax.extend(xattrs);
                self.append(e, io::empty())
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                let t = match kind {
                    SFlag::S_IFCHR => EntryType::Char,
                    SFlag::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut e = Entry::new(t, path, mode, uid, gid, mtime);
                if t != EntryType::Fifo {
                    let (major, minor) = (nix::sys::stat::major(st.st_rdev), nix::sys::stat::minor(st.st_rdev));
                    // Device numbers fit ustar's 7 octal digits (major < 4096, minor < 2^20).
                    e.header.set_device_major(major as u32).map_err(Error::Write)?;
                    e.header.set_device_minor(minor as u32).map_err(Error::Write)?;
                }
                e.pax.extend(xattrs);
                self.append(e, io::empty())
            }
            _ => Ok(()),
        }
    }
}

/// One `len key=value\n` PAX record (the length counts itself).
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Yields exactly `left` bytes of a file that may change while it is read: cut when it grew,
/// padded with zeros when it shrank (so the tar stays well formed).
struct ExactReader<'p> {
    inner: std::fs::File,
    left: u64,
    short: bool,
    path: &'p [u8],
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = if self.short {
            0
        } else {
            self.inner
                .read(&mut buf[..want])
                .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", display(self.path))))?
        };
        let n = if n == 0 {
            self.short = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", b"abc");
        assert_eq!(out, b"12 path=abc\n");
        let mut out = Vec::new();
        // 3 + 4 + 91 = 98 bytes of the rest: with a 3-digit length the total is 101.
        pax_record(&mut out, "path", &[b'x'; 91]);
        assert_eq!(out.len(), 101);
        assert!(out.starts_with(b"101 path="));
    }
}
