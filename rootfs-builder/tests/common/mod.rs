//! Helpers for the integration tests: layer tarballs built entry by entry (raw names, so hostile
//! ones too), images written as OCI layouts, OCI archives and `docker save` archives, the
//! binary run against a private store, and snapshots of directory trees to compare.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::let_underscore_must_use)]

pub mod registry;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub fn sha256_hex(data: &[u8]) -> String {
    strata_rootfs::digest::hex(&Sha256::digest(data))
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

// ---------------------------------------------------------------- scratch directories

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory, unmounting and removing what is below it when dropped.
#[derive(Debug)]
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(what: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("/tmp/strata-rootfs-test-{}-{n}-{what}", std::process::id()));
        if path.exists() {
            cleanup(&path);
        }
        fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

fn cleanup(path: &Path) {
    // Unmount anything still mounted below (deepest first), then remove.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut targets: Vec<&str> =
        mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|t| t.starts_with(path.to_str().unwrap())).collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = Command::new("umount").arg("-l").arg(t).status();
    }
    let _ = fs::remove_dir_all(path);
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_SCRATCH").is_none() {
            cleanup(&self.path);
        }
    }
}

// ---------------------------------------------------------------- running the binary

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_strata-rootfs")
}

/// The binary with a private store.
#[derive(Debug)]
pub struct Tool {
    pub store: PathBuf,
    /// Extra environment for every run.
    pub env: Vec<(String, String)>,
}

impl Tool {
    pub fn new(scratch: &Scratch) -> Self {
        Self { store: scratch.join("store"), env: Vec::new() }
    }

    /// The same store, with `K=V` in the environment of every run.
    pub fn with_env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--store")
            .arg(&self.store)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    }

    /// Run and expect success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "strata-rootfs {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and expect failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "strata-rootfs {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    pub fn layer_dirs(&self) -> Vec<String> {
        names(&self.store.join("layers"))
    }

    pub fn tmp_entries(&self) -> Vec<String> {
        names(&self.store.join("tmp"))
    }
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

// ---------------------------------------------------------------- layer tarballs

/// One tar entry, with raw bytes for its name and link so tests can write hostile ones.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub dev: (u32, u32),
}

impl Entry {
    fn new(name: &str, kind: tar::EntryType, mode: u32) -> Self {
        Self {
            name: name.as_bytes().to_vec(),
            kind,
            data: Vec::new(),
            link: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            xattrs: Vec::new(),
            dev: (0, 0),
        }
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    pub fn mtime(mut self, t: u64) -> Self {
        self.mtime = t;
        self
    }
    pub fn xattr(mut self, k: &str, v: &[u8]) -> Self {
        self.xattrs.push((k.to_string(), v.to_vec()));
        self
    }
    pub fn raw_name(mut self, name: &[u8]) -> Self {
        self.name = name.to_vec();
        self
    }
}

pub fn dir(name: &str) -> Entry {
    Entry::new(name, tar::EntryType::Directory, 0o755)
}
pub fn file(name: &str, data: &str) -> Entry {
    let mut e = Entry::new(name, tar::EntryType::Regular, 0o644);
    e.data = data.as_bytes().to_vec();
    e
}
pub fn bin_file(name: &str, data: Vec<u8>) -> Entry {
    let mut e = Entry::new(name, tar::EntryType::Regular, 0o755);
    e.data = data;
    e
}
pub fn symlink(name: &str, target: &str) -> Entry {
    let mut e = Entry::new(name, tar::EntryType::Symlink, 0o777);
    e.link = target.as_bytes().to_vec();
    e
}
pub fn hardlink(name: &str, target: &str) -> Entry {
    let mut e = Entry::new(name, tar::EntryType::Link, 0o644);
    e.link = target.as_bytes().to_vec();
    e
}
pub fn whiteout(path: &str) -> Entry {
    let (d, n) = path.rsplit_once('/').map(|(d, n)| (format!("{d}/"), n)).unwrap_or((String::new(), path));
    file(&format!("{d}.wh.{n}"), "")
}
pub fn opaque(dir: &str) -> Entry {
    file(&format!("{dir}/.wh..wh..opq"), "")
}
pub fn chardev(name: &str, major: u32, minor: u32) -> Entry {
    let mut e = Entry::new(name, tar::EntryType::Char, 0o666);
    e.dev = (major, minor);
    e
}
pub fn fifo(name: &str) -> Entry {
    Entry::new(name, tar::EntryType::Fifo, 0o644)
}

/// An uncompressed layer tarball of `entries`, names written byte for byte.
pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut pax: Vec<(String, Vec<u8>)> =
            e.xattrs.iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.clone())).collect();
        if e.name.len() > 99 {
            pax.push(("path".into(), e.name.clone()));
        }
        if e.link.len() > 99 {
            pax.push(("linkpath".into(), e.link.clone()));
        }
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        {
            let u = h.as_ustar_mut().unwrap();
            let n = e.name.len().min(99);
            u.name[..n].copy_from_slice(&e.name[..n]);
            let l = e.link.len().min(99);
            u.linkname[..l].copy_from_slice(&e.link[..l]);
        }
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        if matches!(e.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(e.dev.0).unwrap();
            h.set_device_minor(e.dev.1).unwrap();
        }
        h.set_cksum();
        b.append(&h, e.data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comp {
    Plain,
    Gzip,
    Zstd,
}

impl Comp {
    pub fn media_type(self) -> &'static str {
        match self {
            Comp::Plain => "application/vnd.oci.image.layer.v1.tar",
            Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
    pub fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Comp::Plain => tar.to_vec(),
            Comp::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(tar).unwrap();
                enc.finish().unwrap()
            }
            Comp::Zstd => zstd::encode_all(tar, 1).unwrap(),
        }
    }
}

// ---------------------------------------------------------------- images

/// An image under construction: layers (uncompressed tar + compression) and config fields.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<(Vec<u8>, Comp)>,
    pub config: Value,
    pub arch: String,
}

impl Image {
    pub fn new() -> Self {
        Self { layers: Vec::new(), config: json!({"Cmd": ["/bin/sh"]}), arch: "amd64".into() }
    }
    pub fn layer(mut self, entries: &[Entry]) -> Self {
        self.layers.push((layer_tar(entries), Comp::Gzip));
        self
    }
    pub fn layer_with(mut self, entries: &[Entry], comp: Comp) -> Self {
        self.layers.push((layer_tar(entries), comp));
        self
    }
    pub fn config(mut self, c: Value) -> Self {
        self.config = c;
        self
    }
    pub fn arch(mut self, a: &str) -> Self {
        self.arch = a.into();
        self
    }

    pub fn config_json(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|(t, _)| digest(t)).collect();
        let history: Vec<Value> =
            self.layers.iter().enumerate().map(|(i, _)| json!({"created_by": format!("layer {i}")})).collect();
        serde_json::to_vec(&json!({
            "created": "2024-01-02T03:04:05Z",
            "architecture": self.arch,
            "os": "linux",
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
        .unwrap()
    }
}

impl Default for Image {
    fn default() -> Self {
        Self::new()
    }
}

fn put_blob(layout: &Path, data: &[u8]) -> (String, u64) {
    let hex = sha256_hex(data);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(&hex), data).unwrap();
    (format!("sha256:{hex}"), data.len() as u64)
}

/// Write the image's blobs and manifest into `layout`; returns the manifest descriptor.
pub fn write_manifest(layout: &Path, img: &Image) -> Value {
    let config = img.config_json();
    let (cd, cs) = put_blob(layout, &config);
    let layers: Vec<Value> = img
        .layers
        .iter()
        .map(|(t, c)| {
            let (d, s) = put_blob(layout, &c.compress(t));
            json!({"mediaType": c.media_type(), "digest": d, "size": s})
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": layers,
    }))
    .unwrap();
    let (md, ms) = put_blob(layout, &manifest);
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
           "platform": {"architecture": img.arch, "os": "linux"}})
}

pub fn write_index(layout: &Path, manifests: Vec<Value>) {
    fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap(),
    )
    .unwrap();
}

/// An OCI layout at `layout` holding `img` under the tag `tag`.
pub fn oci_layout(layout: &Path, img: &Image, tag: &str) -> String {
    let mut desc = write_manifest(layout, img);
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    write_index(layout, vec![desc]);
    format!("oci:{}:{tag}", layout.display())
}

/// The image id (config digest) strata-rootfs will report for `img`.
pub fn image_id(img: &Image) -> String {
    digest(&img.config_json())
}

/// A tar of the directory `src` (an OCI archive of a layout).
pub fn tar_dir(src: &Path, dest: &Path) {
    let f = fs::File::create(dest).unwrap();
    let mut b = tar::Builder::new(f);
    b.append_dir_all(".", src).unwrap();
    b.finish().unwrap();
}

/// A `docker save` archive (legacy layout: `<id>/layer.tar`, `<hex>.json`, manifest.json).
pub fn docker_archive(dest: &Path, img: &Image, tag: &str) {
    let f = fs::File::create(dest).unwrap();
    let mut b = tar::Builder::new(f);
    let add = |b: &mut tar::Builder<fs::File>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    let config = img.config_json();
    let config_name = format!("{}.json", sha256_hex(&config));
    add(&mut b, &config_name, &config);
    let mut layers = Vec::new();
    for (i, (t, _)) in img.layers.iter().enumerate() {
        let name = format!("{:064x}/layer.tar", i + 1);
        add(&mut b, &name, t);
        layers.push(name);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": [tag], "Layers": layers}]);
    add(&mut b, "manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.finish().unwrap();
}

// ---------------------------------------------------------------- tree snapshots

/// Everything observable about one entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub content: Option<String>,
    pub target: Option<String>,
    pub rdev: u64,
    pub mtime: Option<i64>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub nlink: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct SnapOpts {
    /// Compare directory mtimes (kept equal by flatten and overlay, not by every tool).
    pub dir_mtimes: bool,
    pub xattrs: bool,
}

pub fn snapshot(root: &Path, opts: SnapOpts) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, opts, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, opts: SnapOpts, out: &mut BTreeMap<String, Node>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "socket"
        };
        let mut xattrs = BTreeMap::new();
        if opts.xattrs {
            let parent = fs::File::open(p.parent().unwrap()).unwrap();
            let name = std::ffi::CString::new(p.file_name().unwrap().as_bytes()).unwrap();
            for k in strata_rootfs::sys::xattr::list_at(parent.as_fd(), &name).unwrap() {
                let ks = k.to_string_lossy().into_owned();
                if ks.starts_with("trusted.overlay.") || ks == "security.selinux" {
                    continue;
                }
                let v = strata_rootfs::sys::xattr::get_at(parent.as_fd(), &name, &k).unwrap().unwrap_or_default();
                xattrs.insert(ks, v);
            }
        }
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let node = Node {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            content: if ft.is_file() { Some(sha256_hex(&fs::read(&p).unwrap())) } else { None },
            target: if ft.is_symlink() {
                Some(fs::read_link(&p).unwrap().to_string_lossy().into_owned())
            } else {
                None
            },
            rdev: if ft.is_char_device() || ft.is_block_device() { m.rdev() } else { 0 },
            mtime: if ft.is_dir() && !opts.dir_mtimes { None } else { Some(m.mtime()) },
            xattrs,
            nlink: if ft.is_dir() { 0 } else { m.nlink() },
        };
        out.insert(rel, node);
        if ft.is_dir() {
            walk(root, &p, opts, out);
        }
    }
}

/// Assert two snapshots are equal, listing the differences.
pub fn assert_same_tree(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>, what: &str) {
    let mut diffs = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => diffs.push(format!("only in first: {k}")),
            Some(w) if w != v => diffs.push(format!("differs: {k}\n  {v:?}\n  {w:?}")),
            _ => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            diffs.push(format!("only in second: {k}"));
        }
    }
    assert!(diffs.is_empty(), "{what}: trees differ:\n{}", diffs.join("\n"));
}

/// Drop what a bundle's init layer adds (absent from a flattened image).
pub fn without_init(mut t: BTreeMap<String, Node>, image: &BTreeMap<String, Node>) -> BTreeMap<String, Node> {
    for k in [
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "proc",
        "sys",
        "dev",
        "dev/pts",
        "dev/shm",
        "dev/mqueue",
        "etc",
    ] {
        if !image.contains_key(k) || k.starts_with("etc/h") || k == "etc/resolv.conf" {
            t.remove(k);
        }
    }
    t
}

/// Whether the running kernel's overlayfs takes `lowerdir+` (Linux 6.8 and later).
pub fn kernel_has_lowerdir_plus() -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 8)
}

/// The overlay mount options of the mount at `target`, from /proc/self/mountinfo.
pub fn mount_options(target: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        (fields.get(4) == Some(&target.to_str().unwrap())).then(|| fields.last().unwrap().to_string())
    })
}

pub fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "these tests mount overlays and set ownership: run them as root");
}

pub fn require_tool(name: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file())).unwrap_or(false);
    assert!(found, "{name} is not installed (apt-get install {name}); this test needs it");
}

/// A busybox root to build test images on: /bin/busybox with a symlink per applet, /etc/passwd and
/// /etc/group for root only, and a sticky /tmp.
pub fn busybox_root(applets: &[&str]) -> Vec<Entry> {
    let mut entries = vec![
        dir("bin"),
        bin_file("bin/busybox", std::fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)")),
        dir("etc"),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        file("etc/group", "root:x:0:\n"),
        dir("tmp").mode(0o1777),
    ];
    entries.extend(applets.iter().map(|a| symlink(&format!("bin/{a}"), "busybox")));
    entries
}
