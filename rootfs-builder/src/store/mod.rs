//! The content-addressed store (default `/var/lib/strata`):
//!
//! ```text
//! blobs/sha256/<hex>            verified blobs: manifests, configurations, layer tarballs
//! layers/<chain-hex>/diff       a layer unpacked once, in overlay form, under its chain id
//! layers/<chain-hex>/layer.json what it came from (diff_id, blob, parent chain id, sizes)
//! images/<config-hex>.json      an image: manifest, configuration and its layer chain
//! refs.json                     reference -> image id
//! bundles/<name>.json           a bundle: its directory, image, chain, upper/work/init dirs
//! bundles/<name>/{upper,work,init,volumes}   its private directories, separate per bundle
//! format                        "root" or "rootless": which form the layers are in (format.rs)
//! tmp/                          work in progress; only a rename makes it part of the store
//! locks/                        flock files
//! ```
//!
//! Nothing is trusted unless it was renamed into place complete: a killed pull leaves only
//! `tmp/` entries, which the next pull of the same layer (holding that layer's lock) or `gc`
//! (holding the store lock exclusively) removes. Every operation holds `locks/store` shared;
//! `gc` holds it exclusively, so it never sees a half-recorded image or bundle.

pub mod format;
pub mod location;
pub mod records;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

use crate::digest::Digest;
use crate::extract::OverlayXattrs;
use crate::warning::{Warning, Warnings};
pub use format::Format;
pub use records::{BundleRecord, ImageLayer, ImageRecord, LayerRecord};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating the store at {0}")]
    Create(PathBuf, #[source] io::Error),
    #[error("locking {0}")]
    Lock(PathBuf, #[source] nix::Error),
    #[error("reading {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("{0} is corrupt")]
    Corrupt(PathBuf, #[source] serde_json::Error),
    #[error("writing {0}")]
    Write(PathBuf, #[source] io::Error),
    #[error("removing {0}")]
    Remove(PathBuf, #[source] io::Error),
    #[error(
        "no image {0:?} in the store (pull it first, or name a source: oci:PATH, oci-archive:PATH, docker-archive:PATH)"
    )]
    UnknownImage(String),
    #[error("{0:?} matches several images ({1}); give more of the id")]
    AmbiguousImage(String, String),
    #[error(transparent)]
    Format(#[from] format::Error),
}

#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    /// The form its layers are in: the caller's (checked when opened).
    format: Format,
    /// What went wrong on the side during operations on this store; the caller shows them.
    warnings: Warnings,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] Flock<File>);

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    pub fn open(root: &Path) -> Result<Self, Error> {
        for sub in ["blobs/sha256", "blobs/sha512", "layers", "images", "bundles", "tmp", "locks"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(|e| Error::Create(p.clone(), e))?;
        }
        let root = fs::canonicalize(root).map_err(|e| Error::Create(root.to_path_buf(), e))?;
        let format = Format::of_caller();
        format::check_or_record(&root, format)?;
        Ok(Self { root, format, warnings: Warnings::default() })
    }

    /// Which form the layers are in (root's or an unprivileged user's).
    pub fn format(&self) -> Format {
        self.format
    }

    /// The overlay attributes its layers carry.
    pub fn overlay(&self) -> OverlayXattrs {
        self.format.overlay()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Record a warning for the caller to show.
    pub fn warn(&self, w: Warning) {
        self.warnings.push(w);
    }

    /// The warnings recorded so far (taken: each is returned once).
    pub fn take_warnings(&self) -> Vec<Warning> {
        self.warnings.take()
    }

    /// Remove a file or tree, recording a warning on failure: used only to clean up after an
    /// error that is being reported anyway (or a leftover under `tmp/`, which nothing trusts
    /// and `gc` empties).
    pub fn remove_best_effort(&self, path: &Path) {
        let res = match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => remove_tree(path),
            Ok(_) => fs::remove_file(path),
            Err(_) => Ok(()),
        };
        if let Err(e) = res {
            self.warn(Warning::new(format!("could not clean up {}", path.display()), e));
        }
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm().name()).join(d.hex())
    }

    pub fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("layers").join(chain.hex())
    }

    pub fn diff_dir(&self, chain: &Digest) -> PathBuf {
        self.layer_dir(chain).join("diff")
    }

    pub fn image_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    pub fn bundle_record_path(&self, name: &str) -> PathBuf {
        self.root.join("bundles").join(format!("{name}.json"))
    }

    pub fn bundle_dir(&self, name: &str) -> PathBuf {
        self.root.join("bundles").join(name)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh name under `tmp/` for one writer.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir().join(format!("{what}.{}.{n}", std::process::id()))
    }

    fn lock(&self, name: &str, arg: FlockArg) -> Result<Lock, Error> {
        let path = self.root.join("locks").join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Create(path.clone(), e))?;
        Flock::lock(file, arg).map(Lock).map_err(|(_, e)| Error::Lock(path, e))
    }

    /// Held by every operation for its whole duration; `gc` takes it exclusively.
    pub fn lock_shared(&self) -> Result<Lock, Error> {
        self.lock("store", FlockArg::LockShared)
    }

    pub fn lock_exclusive(&self) -> Result<Lock, Error> {
        self.lock("store", FlockArg::LockExclusive)
    }

    /// Serialises the unpacking of one layer across processes.
    pub fn lock_layer(&self, chain: &Digest) -> Result<Lock, Error> {
        self.lock(&format!("layer-{}", chain.hex()), FlockArg::LockExclusive)
    }

    /// Serialises changes to `refs.json` and to the set of bundle names.
    pub fn lock_names(&self) -> Result<Lock, Error> {
        self.lock("names", FlockArg::LockExclusive)
    }

    /// Write `bytes` to `path` atomically (temporary file in the store, then rename).
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        let tmp = self.tmp_path("write");
        let res = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            fs::rename(&tmp, path)
        })();
        if let Err(e) = res {
            self.remove_best_effort(&tmp);
            return Err(Error::Write(path.to_path_buf(), e));
        }
        Ok(())
    }

    /// Store a small, already verified blob (manifest, configuration) unless it is there.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(());
        }
        self.write_atomic(&path, bytes)
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let p = self.blob_path(digest);
        fs::read(&p).map_err(|e| Error::Read(p, e))
    }

    fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
        let bytes = fs::read(path).map_err(|e| Error::Read(path.to_path_buf(), e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(path.to_path_buf(), e))
    }

    fn write_json<T: serde::Serialize>(&self, path: &Path, value: &T) -> Result<(), Error> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Corrupt(path.to_path_buf(), e))?;
        bytes.push(b'\n');
        self.write_atomic(path, &bytes)
    }

    /// The record of an unpacked layer, `None` if it is not (completely) there.
    pub fn layer(&self, chain: &Digest) -> Result<Option<LayerRecord>, Error> {
        let p = self.layer_dir(chain).join("layer.json");
        if !p.exists() {
            return Ok(None);
        }
        Self::read_json(&p).map(Some)
    }

    pub fn image(&self, id: &Digest) -> Result<ImageRecord, Error> {
        Self::read_json(&self.image_path(id))
    }

    pub fn put_image(&self, rec: &ImageRecord) -> Result<(), Error> {
        self.write_json(&self.image_path(&rec.id), rec)
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>, Error> {
        let mut out = Vec::new();
        for name in list_names(&self.root.join("images"))? {
            if let Some(hex) = name.strip_suffix(".json")
                && let Ok(id) = Digest::parse(&format!("sha256:{hex}"))
            {
                out.push(self.image(&id)?);
            }
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.pulled));
        Ok(out)
    }

    pub fn refs(&self) -> Result<BTreeMap<String, Digest>, Error> {
        let p = self.root.join("refs.json");
        if !p.exists() {
            return Ok(BTreeMap::new());
        }
        Self::read_json(&p)
    }

    /// Point `reference` at `id` (caller holds [`Store::lock_names`]).
    pub fn set_ref(&self, reference: &str, id: &Digest) -> Result<(), Error> {
        let mut refs = self.refs()?;
        refs.insert(reference.to_string(), id.clone());
        self.write_json(&self.root.join("refs.json"), &refs)
    }

    /// Remove `reference` (caller holds [`Store::lock_names`]); false when there was none.
    pub fn remove_ref(&self, reference: &str) -> Result<bool, Error> {
        let mut refs = self.refs()?;
        if refs.remove(reference).is_none() {
            return Ok(false);
        }
        self.write_json(&self.root.join("refs.json"), &refs)?;
        Ok(true)
    }

    /// Remove the image record `id` (its layers and blobs stay until `gc`).
    pub fn remove_image(&self, id: &Digest) -> Result<(), Error> {
        let p = self.image_path(id);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Remove(p, e)),
        }
    }

    /// The references naming `id`.
    pub fn refs_of(&self, id: &Digest) -> Result<Vec<String>, Error> {
        Ok(self.refs()?.into_iter().filter(|(_, v)| v == id).map(|(k, _)| k).collect())
    }

    /// An image by reference (`name`, `name:tag`), id or unique id prefix (`sha256:` optional).
    pub fn find_image(&self, arg: &str) -> Result<Digest, Error> {
        let refs = self.refs()?;
        if let Some(id) = refs.get(arg).or_else(|| refs.get(&format!("{arg}:latest"))) {
            return Ok(id.clone());
        }
        let hex = arg.strip_prefix("sha256:").unwrap_or(arg);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let matches: Vec<String> = list_names(&self.root.join("images"))?
                .into_iter()
                .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
                .filter(|n| n.starts_with(&hex))
                .collect();
            match matches.as_slice() {
                [one] => {
                    return Digest::parse(&format!("sha256:{one}")).map_err(|_| Error::UnknownImage(arg.to_string()));
                }
                [] => {}
                many => {
                    let short: Vec<&str> = many.iter().map(|m| &m[..12]).collect();
                    return Err(Error::AmbiguousImage(arg.to_string(), short.join(", ")));
                }
            }
        }
        Err(Error::UnknownImage(arg.to_string()))
    }

    pub fn bundle(&self, name: &str) -> Result<Option<BundleRecord>, Error> {
        let p = self.bundle_record_path(name);
        if !p.exists() {
            return Ok(None);
        }
        Self::read_json(&p).map(Some)
    }

    pub fn put_bundle(&self, rec: &BundleRecord) -> Result<(), Error> {
        self.write_json(&self.bundle_record_path(&rec.name), rec)
    }

    pub fn bundles(&self) -> Result<Vec<BundleRecord>, Error> {
        let mut out = Vec::new();
        for name in list_names(&self.root.join("bundles"))? {
            if let Some(n) = name.strip_suffix(".json")
                && let Some(b) = self.bundle(n)?
            {
                out.push(b);
            }
        }
        Ok(out)
    }

    pub fn remove_bundle_record(&self, name: &str) -> Result<(), Error> {
        let p = self.bundle_record_path(name);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Remove(p, e)),
        }
    }
}

/// File names in a directory (empty when it does not exist).
pub fn list_names(dir: &Path) -> Result<Vec<String>, Error> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Read(dir.to_path_buf(), e)),
    };
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::Read(dir.to_path_buf(), e))?;
        if let Ok(n) = entry.file_name().into_string() {
            names.push(n);
        }
    }
    names.sort();
    Ok(names)
}

/// Remove a directory tree without following symlinks (and whatever its modes say).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let pfd = nix::fcntl::open(
        parent,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let cname = crate::fsutil::cstring(std::os::unix::ffi::OsStrExt::as_bytes(name))
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    crate::fsutil::remove_all_at(std::os::fd::AsFd::as_fd(&pfd), &cname)?;
    Ok(())
}
