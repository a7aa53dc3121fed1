//! Reading an image's final filesystem straight from its unpacked layers, with overlayfs'
//! rules (top layer wins, whiteouts hide, opaque directories stop the search), no mount needed.

use std::ffi::CStr;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, SFlag};

use crate::digest::Digest;
use crate::extract::OverlayXattrs;
use crate::fsutil::{self, cstring, lstat_at, open_beneath, open_dir_beneath};
use crate::store::Store;
use crate::sys::xattr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening the unpacked layer {0}")]
    OpenLayer(String, #[source] Errno),
    #[error("layer {0} is missing from the store (run pull again)")]
    MissingLayer(String),
    #[error("reading {path} from the image")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The unpacked layers of an image, top first, cut below a layer whose root is opaque.
#[derive(Debug)]
pub struct MergedView {
    pub layers: Vec<OwnedFd>,
    /// Per layer (same order): whether its files may carry extended attributes.
    pub has_xattrs: Vec<bool>,
    pub overlay: OverlayXattrs,
}

pub fn is_opaque(dir: BorrowedFd<'_>, name: &CStr, overlay: OverlayXattrs) -> bool {
    matches!(xattr::get_at(dir, name, overlay.opaque()), Ok(Some(v)) if v == b"y")
}

impl MergedView {
    /// Open the layers of `chain` (bottom first, as images record it).
    pub fn open(store: &Store, chain: &[Digest], overlay: OverlayXattrs) -> Result<Self, Error> {
        let mut layers = Vec::with_capacity(chain.len());
        let mut has_xattrs = Vec::with_capacity(chain.len());
        for c in chain.iter().rev() {
            has_xattrs.push(store.layer(c).ok().flatten().is_none_or(|r| r.stats.xattrs > 0));
            let path = store.diff_dir(c);
            let fd = nix::fcntl::open(
                &path,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| {
                if e == Errno::ENOENT { Error::MissingLayer(c.to_string()) } else { Error::OpenLayer(c.to_string(), e) }
            })?;
            let opaque = is_opaque(fd.as_fd(), c".", overlay);
            layers.push(fd);
            if opaque {
                break;
            }
        }
        Ok(Self { layers, has_xattrs, overlay })
    }

    /// How many layers take part (a layer with an opaque root hides all below it).
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Find `path` (relative, `/`-separated, no symlinks followed): the index of the layer that
    /// provides it and its status; `None` if the merged view has nothing there.
    pub fn lookup(&self, path: &str) -> Option<(usize, FileStat)> {
        self.lookup_bytes(path.as_bytes())
    }

    /// [`MergedView::lookup`] for a name that need not be UTF-8.
    pub fn lookup_bytes(&self, path: &[u8]) -> Option<(usize, FileStat)> {
        let parts: Vec<&[u8]> = path.split(|b| *b == b'/').filter(|p| !p.is_empty() && *p != b".").collect();
        let (name, dirs) = parts.split_last()?;
        let name = cstring(name)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let mut stop = false;
            let mut dir = match open_dir_beneath(layer.as_fd(), b"") {
                Ok(fd) => fd,
                Err(_) => return None,
            };
            let mut present = true;
            for d in dirs {
                let c = cstring(d)?;
                match lstat_at(dir.as_fd(), &c) {
                    Ok(None) => {
                        present = false;
                        break;
                    }
                    Ok(Some(st)) if fsutil::is_dir(&st) => {
                        if is_opaque(dir.as_fd(), &c, self.overlay) {
                            stop = true;
                        }
                        dir = open_dir_beneath(dir.as_fd(), d).ok()?;
                    }
                    // A whiteout or a non-directory on the way hides everything below.
                    Ok(Some(_)) | Err(_) => return None,
                }
            }
            if present {
                match lstat_at(dir.as_fd(), &name) {
                    Ok(Some(st)) if fsutil::is_whiteout(&st) => return None,
                    Ok(Some(st)) => return Some((i, st)),
                    Ok(None) => {}
                    Err(_) => return None,
                }
            }
            if stop {
                return None;
            }
        }
        None
    }

    /// The image's owner of `path`, found in `layer` (as [`MergedView::lookup`] says): in a
    /// rootless store from [`crate::extract::OWNER_XATTR`] (absent: 0:0), else the file's own.
    pub fn image_owner(&self, layer: usize, path: &[u8], st: &FileStat) -> (u32, u32) {
        if self.overlay != OverlayXattrs::User {
            return (st.st_uid, st.st_gid);
        }
        let (dir, name) = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&b""[..], path),
        };
        let name = if name.is_empty() { Some(c".".to_owned()) } else { cstring(name) };
        let value = self.layers.get(layer).zip(name).and_then(|(l, name)| {
            let dfd = open_dir_beneath(l.as_fd(), dir).ok()?;
            xattr::get_at(dfd.as_fd(), &name, crate::extract::OWNER_XATTR).ok().flatten()
        });
        value.and_then(|v| crate::extract::parse_owner(&v)).unwrap_or((0, 0))
    }

    /// Read a regular file of at most `max` bytes, following up to 8 symlinks inside the image.
    pub fn read_file(&self, path: &str, max: u64) -> Result<Option<Vec<u8>>, Error> {
        let mut path = path.trim_start_matches('/').to_string();
        for _ in 0..8 {
            let Some((i, st)) = self.lookup(&path) else { return Ok(None) };
            match fsutil::file_type(&st) {
                SFlag::S_IFREG => {
                    let fd = open_beneath(self.layers[i].as_fd(), path.as_bytes(), OFlag::O_RDONLY)
                        .map_err(|e| Error::Read { path: path.clone(), source: e.into() })?;
                    let mut buf = Vec::new();
                    std::fs::File::from(fd)
                        .take(max)
                        .read_to_end(&mut buf)
                        .map_err(|source| Error::Read { path: path.clone(), source })?;
                    return Ok(Some(buf));
                }
                SFlag::S_IFLNK => {
                    let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
                    let dfd = open_dir_beneath(self.layers[i].as_fd(), dir.as_bytes())
                        .map_err(|e| Error::Read { path: path.clone(), source: e.into() })?;
                    let target = nix::fcntl::readlinkat(dfd.as_fd(), name)
                        .map_err(|e| Error::Read { path: path.clone(), source: e.into() })?;
                    let target = target.to_string_lossy().into_owned();
                    path = if target.starts_with('/') { target } else { format!("{dir}/{target}") };
                    path = normalize(&path);
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// Resolve `.` and `..` lexically, never above the root.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}
