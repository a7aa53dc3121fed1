//! `bundle` and `rm`: an OCI runtime bundle over the store.
//!
//! `DIR/rootfs` is an overlay: lower layers are the bundle's init layer (`/etc/hosts`,
//! `/etc/resolv.conf`, `/etc/hostname`, mount points) over the image layers, top first; the
//! upper and work directories are the bundle's own. Nothing of the image is copied, so the Nth
//! bundle of an image costs a few small files and one mount (see [`crate::overlay`]: the new
//! mount API with one `lowerdir+` per layer, or the classic option string on older kernels);
//! beyond the 500 layers one overlay takes, the bottom layers are stacked as a read-only overlay
//! of their own under the top ones (up to 998 layers).

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use oci_spec::image::ImageConfiguration;

use crate::digest::Digest;
use crate::extract::OverlayXattrs;
use crate::flatten;
use crate::fsutil;
use crate::inuse::{self, Usage};
use crate::merged::{self, MergedView};
use crate::overlay::{self, Lower, Overlay};
use crate::spec::{self, Volume};
use crate::store::{self, BundleRecord, Store, records::BundleKind};
use crate::timefmt;
use crate::warning::Warning;

/// Lower layers one overlay mount takes (the kernel's OVL_MAX_STACK).
pub const MAX_LOWERS: usize = 500;
/// Image layers a bundle can stack: init + 498 layers + one overlay of the remaining 500.
pub const MAX_LAYERS: usize = 2 * MAX_LOWERS - 2;

const RECORD_FILE: &str = "strata-bundle.json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Layers(#[from] merged::Error),
    #[error(transparent)]
    Flatten(#[from] flatten::Error),
    #[error(transparent)]
    Spec(#[from] spec::Error),
    #[error("the image configuration in the store is unreadable")]
    Config(#[source] serde_json::Error),
    #[error("invalid bundle name {0:?} (letters, digits, '.', '_', '-'; at most 128)")]
    BadName(String),
    #[error("invalid hostname {0:?} (letters, digits, '-' and '.'; at most 64)")]
    BadHostname(String),
    #[error("the image declares the volume {0:?}, which is not an absolute path without '..'")]
    BadVolume(String),
    #[error("a bundle named {0:?} exists already (at {1})")]
    NameInUse(String, String),
    #[error("{0} exists and is not an empty directory")]
    DirNotEmpty(String),
    #[error("creating {0}")]
    Create(String, #[source] io::Error),
    #[error("writing the init layer file {0}")]
    InitLayer(String, #[source] Errno),
    #[error("the image has {0} layers; an overlay bundle takes at most {MAX_LAYERS}: use --flatten")]
    TooManyLayers(usize),
    #[error(transparent)]
    Overlay(#[from] overlay::Error),
    #[error(
        "{0} is not a bundle made by strata-rootfs (no {RECORD_FILE}, and no bundle in the store has that directory)"
    )]
    NotABundle(String),
    #[error("unmounting {0}")]
    Unmount(String, #[source] Errno),
    #[error("the bundle {0} is in use: {1} runs in it; stop it first, or use --force to kill it")]
    InUse(String, String),
    #[error("killing what runs in the bundle {0}")]
    Kill(String, #[source] inuse::KillError),
    #[error("{0} is still a mount point; not removing what is below it")]
    StillMounted(String),
    #[error("removing {0}")]
    Remove(String, #[source] io::Error),
    #[error(
        "an overlay bundle needs root: a non-root user's overlay lives in its own mount namespace, which `strata run` \
         does not see; use --flatten"
    )]
    RootlessOverlay,
}

/// How to make a bundle (what the command line's `bundle` options say).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The bundle's name in the store (default: derived from the directory).
    pub name: Option<String>,
    /// A plain copy of the image instead of an overlay.
    pub flatten: bool,
    /// No writable layer.
    pub readonly: bool,
    pub hostname: Option<String>,
    /// `K=V` added to or replacing the image's environment.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// Replace the image's Cmd.
    pub args: Vec<String>,
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// A name derived from the directory: its base name and a hash of its full path.
pub fn default_name(dir: &Path) -> String {
    let base: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .take(48)
        .collect();
    let hash = Digest::sha256_of(dir.as_os_str().as_bytes());
    let base = base.trim_start_matches(['.', '-']);
    if base.is_empty() { hash.hex()[..12].to_string() } else { format!("{base}-{}", &hash.hex()[..8]) }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && n.as_bytes()[0].is_ascii_alphanumeric()
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn hostname_from(name: &str) -> String {
    let h: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).take(63).collect();
    h.trim_matches('-').to_string()
}

/// Create the bundle. The caller holds the store lock shared.
pub fn create(store: &Store, image_id: &Digest, dir: &Path, args: &Options) -> Result<BundleRecord, Error> {
    let image = store.image(image_id)?;
    let config: ImageConfiguration = serde_json::from_slice(&store.read_blob(&image.config)?).map_err(Error::Config)?;
    let dir = std::path::absolute(dir).map_err(|e| Error::Create(path_str(dir), e))?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&dir));
    if !valid_name(&name) {
        return Err(Error::BadName(name));
    }
    if let Some(h) = &args.hostname
        && !valid_hostname(h)
    {
        return Err(Error::BadHostname(h.clone()));
    }
    let kind = if args.flatten { BundleKind::Flatten } else { BundleKind::Overlay };
    if kind == BundleKind::Overlay && store.format() == store::Format::Rootless {
        return Err(Error::RootlessOverlay);
    }
    if kind == BundleKind::Overlay && image.layers.len() > MAX_LAYERS {
        return Err(Error::TooManyLayers(image.layers.len()));
    }
    let bdir = store.bundle_dir(&name);
    let rec = BundleRecord {
        name: name.clone(),
        dir: dir.clone(),
        rootfs: dir.join("rootfs"),
        image: image.id.clone(),
        chain: image.chain(),
        kind,
        readonly: args.readonly,
        upper: bdir.join("upper"),
        work: bdir.join("work"),
        init: bdir.join("init"),
        volumes: bdir.join("volumes"),
        inner_mounts: Vec::new(),
        init_files: INIT_FILES.iter().map(|f| f.to_string()).collect(),
        created: timefmt::unix_now(),
    };
    let created_dir = {
        let _names = store.lock_names()?;
        if let Some(other) = store.bundle(&name)? {
            return Err(Error::NameInUse(name, path_str(&other.dir)));
        }
        let created = flatten::prepare_dest(&dir).map_err(|e| match e {
            flatten::Error::NotEmpty(d) => Error::DirNotEmpty(d),
            other => Error::Flatten(other),
        })?;
        // Recorded before anything is made, so `rm` and `gc` know of a half-made bundle.
        store.put_bundle(&rec)?;
        created
    };
    match build(store, &image.chain(), &config, &rec, args) {
        Ok(rec) => Ok(rec),
        Err(e) => {
            // Undo what was made; the error being reported is the one that matters.
            if let Err(cleanup) = teardown(store, &rec) {
                store.warn(Warning::new("cleaning up the failed bundle", cleanup));
            }
            if created_dir && let Err(gone) = fs::remove_dir(&dir) {
                store.warn(Warning::new(format!("could not remove {}", dir.display()), gone));
            }
            Err(e)
        }
    }
}

fn mkdir(p: &Path) -> Result<(), Error> {
    fs::create_dir_all(p).map_err(|e| Error::Create(path_str(p), e))
}

fn build(
    store: &Store,
    chain: &[Digest],
    config: &ImageConfiguration,
    rec: &BundleRecord,
    args: &Options,
) -> Result<BundleRecord, Error> {
    let mut rec = rec.clone();
    for d in [&rec.upper, &rec.work, &rec.init, &rec.volumes] {
        mkdir(d)?;
    }
    let view = MergedView::open(store, chain, store.overlay())?;
    let passwd = view.read_file("etc/passwd", 4 << 20)?.map(|b| String::from_utf8_lossy(&b).into_owned());
    let group = view.read_file("etc/group", 4 << 20)?.map(|b| String::from_utf8_lossy(&b).into_owned());

    let hostname = args.hostname.clone().unwrap_or_else(|| hostname_from(&rec.name));
    let init = open_dir(&rec.init)?;
    write_init(&view, init.as_fd(), &hostname)?;

    let mut volumes = Vec::new();
    let image_volumes = config.config().as_ref().and_then(|c| c.volumes().clone()).unwrap_or_default();
    for (i, v) in image_volumes.iter().enumerate() {
        if !v.starts_with('/') || v.split('/').any(|c| c == "..") {
            return Err(Error::BadVolume(v.clone()));
        }
        let source = rec.volumes.join(i.to_string());
        mkdir(&source)?;
        volumes.push(Volume { destination: v.clone(), source: path_str(&source) });
    }
    let overrides = spec::Overrides {
        args: &args.args,
        env: &args.env,
        user: args.user.as_deref(),
        workdir: args.workdir.as_deref(),
        hostname: &hostname,
        readonly: args.readonly,
        rootless: (store.format() == store::Format::Rootless).then(fsutil::creator_ids),
    };
    let spec = spec::build(config, &overrides, passwd.as_deref(), group.as_deref(), &volumes)?;
    let mut json = serde_json::to_vec_pretty(&spec).unwrap_or_default();
    json.push(b'\n');
    let cfg_path = rec.dir.join("config.json");
    fs::write(&cfg_path, json).map_err(|e| Error::Create(path_str(&cfg_path), e))?;

    mkdir(&rec.rootfs)?;
    match rec.kind {
        BundleKind::Flatten => {
            let root = open_dir(&rec.rootfs)?;
            flatten::flatten_into(&view, root.as_fd())?;
            write_init(&view, root.as_fd(), &hostname)?;
        }
        BundleKind::Overlay => {
            let layers: Vec<Digest> = chain.iter().rev().take(view.depth()).cloned().collect();
            rec.inner_mounts = mount_rootfs(store, &rec, &layers)?;
        }
    }
    let mut json = serde_json::to_vec_pretty(&rec).unwrap_or_default();
    json.push(b'\n');
    let rec_path = rec.dir.join(RECORD_FILE);
    fs::write(&rec_path, json).map_err(|e| Error::Create(path_str(&rec_path), e))?;
    // The store has this record since before anything was made; it changes only when the layers
    // needed an inner overlay. (ext4 starts writing a file's data back when a rename replaces
    // it: a second write of the same record cost a synchronous flush on a disk store.)
    if !rec.inner_mounts.is_empty() {
        store.put_bundle(&rec)?;
    }
    Ok(rec)
}

fn open_dir(p: &Path) -> Result<std::os::fd::OwnedFd, Error> {
    nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::Create(path_str(p), e.into()))
}

/// `image_layers`: chain ids, top first.
fn mount_rootfs(store: &Store, rec: &BundleRecord, image_layers: &[Digest]) -> Result<Vec<PathBuf>, Error> {
    let method = overlay::Method::from_env();
    let mut lowers = vec![Lower::Dir(rec.init.clone())];
    let mut inner_mounts = Vec::new();
    let layers = |l: &[Digest]| -> Vec<Lower> { l.iter().cloned().map(Lower::Layer).collect() };
    if image_layers.len() + 1 > MAX_LOWERS {
        // Whiteouts of the top layers must stay visible to the outer overlay, so only the
        // bottom of the chain goes into the inner one (whose own whiteouts hide only below).
        let (top, bottom) = image_layers.split_at(MAX_LOWERS - 2);
        let inner = store.bundle_dir(&rec.name).join("lower");
        mkdir(&inner)?;
        let bottom = layers(bottom);
        overlay::mount(store, &Overlay { lowers: &bottom, upper: None, target: &inner }, method)?;
        inner_mounts.push(inner.clone());
        lowers.extend(layers(top));
        lowers.push(Lower::Dir(inner));
    } else {
        lowers.extend(layers(image_layers));
    }
    let upper = if rec.readonly { None } else { Some((rec.upper.as_path(), rec.work.as_path())) };
    if let Err(e) = overlay::mount(store, &Overlay { lowers: &lowers, upper, target: &rec.rootfs }, method) {
        for m in &inner_mounts {
            // Undoing after the error being reported; `rm` can finish what this leaves.
            if let Err(u) = unmount(m) {
                store.warn(Warning::new("undoing the bundle's inner overlay", u));
            }
        }
        return Err(e.into());
    }
    Ok(inner_mounts)
}

/// Files the init layer provides (relative to the rootfs).
pub const INIT_FILES: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];
/// Directories the init layer makes sure exist (parents first), with the mode used when the
/// image has none.
const INIT_DIRS: [(&str, u32); 7] = [
    ("etc", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("dev/pts", 0o755),
    ("dev/shm", 0o1777),
    ("dev/mqueue", 0o1777),
];

fn resolv_conf() -> Vec<u8> {
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    // Loopback resolvers of the host are unreachable from a container's network namespace.
    let kept: Vec<&str> = host
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver") && w.next().is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .collect();
    let mut out = kept.join("\n");
    out.push('\n');
    out.into_bytes()
}

/// Write the init layer into `root`: mount-point directories (with the image's ownership and
/// mode where it has them) and the three network identity files.
pub fn write_init(view: &MergedView, root: BorrowedFd<'_>, hostname: &str) -> Result<(), Error> {
    let ierr = |p: &str| {
        let p = p.to_string();
        move |e| Error::InitLayer(p, e)
    };
    let mut skipped: Vec<&str> = Vec::new();
    let mut times = Vec::new();
    // Directories are made with their final mode (umask 0 meanwhile) and chowned only when their
    // owner is not who made them: the Nth bundle's time is mostly these metadata writes.
    let _umask = fsutil::UmaskGuard::zero();
    let creator = fsutil::creator_ids();
    let mut setgid_parents: Vec<&str> = Vec::new();
    for (d, default_mode) in INIT_DIRS {
        if skipped.iter().any(|s| d.starts_with(&format!("{s}/"))) {
            continue;
        }
        let (mode, uid, gid, mtime) = match view.lookup(d) {
            // A rootless store's files are the caller's, as the directories made here are.
            Some((_, st)) if fsutil::is_dir(&st) && view.overlay == OverlayXattrs::User => {
                (st.st_mode & 0o7777, None, None, Some(TimeSpec::new(st.st_mtime, st.st_mtime_nsec)))
            }
            Some((_, st)) if fsutil::is_dir(&st) => (
                st.st_mode & 0o7777,
                Some(nix::unistd::Uid::from_raw(st.st_uid)),
                Some(nix::unistd::Gid::from_raw(st.st_gid)),
                Some(TimeSpec::new(st.st_mtime, st.st_mtime_nsec)),
            ),
            // The image has something else there (a symlink): leave it alone.
            Some(_) => {
                skipped.push(d);
                continue;
            }
            None if view.overlay == OverlayXattrs::User => (default_mode, None, None, None),
            None => (default_mode, Some(nix::unistd::Uid::from_raw(0)), Some(nix::unistd::Gid::from_raw(0)), None),
        };
        let (parent, name) = d.rsplit_once('/').unwrap_or(("", d));
        let pfd = fsutil::open_dir_beneath(root, parent.as_bytes()).map_err(ierr(d))?;
        let cname = fsutil::cstring(name.as_bytes()).unwrap_or_default();
        // mkdir keeps the permission and sticky bits; setuid/setgid need a chmod.
        match nix::sys::stat::mkdirat(pfd.as_fd(), cname.as_c_str(), Mode::from_bits_truncate(mode & 0o1777)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(ierr(d)(e)),
        }
        // A directory made in a setgid parent takes the parent's group.
        let made_as = (creator.0, if setgid_parents.contains(&parent) { u32::MAX } else { creator.1 });
        let chown = uid.zip(gid).is_some_and(|(u, g)| (u.as_raw(), g.as_raw()) != made_as);
        let chmod = chown || mode & 0o6000 != 0;
        if mode & 0o2000 != 0 {
            setgid_parents.push(d);
        }
        if !chown && !chmod && mtime.is_none() {
            continue;
        }
        let fd = fsutil::open_beneath(root, d.as_bytes(), OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(ierr(d))?;
        if chown {
            nix::unistd::fchown(&fd, uid, gid).map_err(ierr(d))?;
        }
        // chown clears setuid and setgid.
        if chmod {
            nix::sys::stat::fchmod(&fd, Mode::from_bits_retain(mode)).map_err(ierr(d))?;
        }
        if let Some(t) = mtime {
            times.push((fd, t));
        }
    }
    // Times last, children before parents: making a child changes its parent's mtime.
    for (fd, t) in times.iter().rev() {
        nix::sys::stat::futimens(fd, t, t).map_err(ierr("init layer directory"))?;
    }
    if skipped.contains(&"etc") {
        return Ok(());
    }
    let hosts = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n");
    let files: [(&str, Vec<u8>); 3] = [
        ("hosts", hosts.into_bytes()),
        ("hostname", format!("{hostname}\n").into_bytes()),
        ("resolv.conf", resolv_conf()),
    ];
    let etc = fsutil::open_dir_beneath(root, b"etc").map_err(ierr("etc"))?;
    for (name, content) in files {
        let shown = format!("etc/{name}");
        let cname = fsutil::cstring(name.as_bytes()).unwrap_or_default();
        if let Ok(Some(st)) = fsutil::lstat_at(etc.as_fd(), &cname) {
            if fsutil::file_type(&st) == SFlag::S_IFDIR {
                continue;
            }
            nix::unistd::unlinkat(etc.as_fd(), cname.as_c_str(), nix::unistd::UnlinkatFlags::NoRemoveDir)
                .map_err(ierr(&shown))?;
        }
        let fd = nix::fcntl::openat(
            etc.as_fd(),
            cname.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(ierr(&shown))?;
        // 0644 exactly: the umask is 0 here.
        let mut f = fs::File::from(fd);
        io::Write::write_all(&mut f, &content)
            .map_err(|e| Error::InitLayer(shown.clone(), Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    }
    Ok(())
}

fn unmount(p: &Path) -> Result<(), Error> {
    match nix::mount::umount2(p, nix::mount::MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => {
            nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH).map_err(|e| Error::Unmount(path_str(p), e))
        }
        Err(e) => Err(Error::Unmount(path_str(p), e)),
    }
}

fn is_mount_point(p: &Path) -> bool {
    match (fs::symlink_metadata(p), p.parent().map(fs::symlink_metadata)) {
        (Ok(a), Some(Ok(b))) => std::os::unix::fs::MetadataExt::dev(&a) != std::os::unix::fs::MetadataExt::dev(&b),
        _ => false,
    }
}

fn remove_if_exists(p: &Path) -> Result<(), Error> {
    let res = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => store::remove_tree(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    res.map_err(|e| Error::Remove(path_str(p), e))
}

/// Unmount and remove everything a bundle made, then its record.
pub fn teardown(store: &Store, rec: &BundleRecord) -> Result<(), Error> {
    if rec.kind == BundleKind::Flatten && store.format() == store::Format::Rootless {
        // Nothing was mounted (and a non-root umount2 fails with EPERM, not EINVAL).
        return remove_made(store, rec);
    }
    unmount(&rec.rootfs)?;
    for m in rec.inner_mounts.iter().rev() {
        unmount(m)?;
    }
    if is_mount_point(&rec.rootfs) {
        return Err(Error::StillMounted(path_str(&rec.rootfs)));
    }
    for m in &rec.inner_mounts {
        if is_mount_point(m) {
            return Err(Error::StillMounted(path_str(m)));
        }
    }
    remove_made(store, rec)
}

/// Remove the files and directories a bundle made (nothing mounted any more), then its record.
fn remove_made(store: &Store, rec: &BundleRecord) -> Result<(), Error> {
    remove_if_exists(&rec.rootfs)?;
    remove_if_exists(&rec.dir.join("config.json"))?;
    remove_if_exists(&rec.dir.join(RECORD_FILE))?;
    remove_if_exists(&store.bundle_dir(&rec.name))?;
    store.remove_bundle_record(&rec.name)?;
    Ok(())
}

/// The bundle whose directory is `dir`: by the record in it, or by its directory in the store.
pub fn find(store: &Store, dir: &Path) -> Result<BundleRecord, Error> {
    let dir = std::path::absolute(dir).map_err(|e| Error::Remove(path_str(dir), e))?;
    let from_dir: Option<BundleRecord> =
        fs::read(dir.join(RECORD_FILE)).ok().and_then(|b| serde_json::from_slice::<BundleRecord>(&b).ok());
    match from_dir.and_then(|r| store.bundle(&r.name).ok().flatten()) {
        Some(r) if r.dir == dir => Ok(r),
        _ => store.bundles()?.into_iter().find(|b| b.dir == dir).ok_or_else(|| Error::NotABundle(path_str(&dir))),
    }
}

/// How long `rm --force` waits for the killed processes to go.
const KILL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `rm DIR`: find the bundle, refuse while something runs in it (unless `force`, which kills
/// it), tear it down, and remove DIR when nothing else is left in it. Returns the record and
/// what used it (containers a runtime still records as stopped, processes killed).
/// `state_root` is where strata keeps its containers (its `--root`).
pub fn remove(store: &Store, dir: &Path, force: bool, state_root: &Path) -> Result<(BundleRecord, Usage), Error> {
    let rec = find(store, dir)?;
    let roots = [state_root];
    let mut usage = inuse::usage(&rec, &roots);
    if usage.in_use() {
        if !force {
            return Err(Error::InUse(path_str(&rec.dir), usage.describe()));
        }
        inuse::kill_all(&rec, &roots, KILL_TIMEOUT).map_err(|e| Error::Kill(path_str(&rec.dir), e))?;
        // The killed containers are stopped now, their records still there.
        usage.stopped = inuse::usage(&rec, &roots).stopped;
    }
    teardown(store, &rec)?;
    match fs::remove_dir(&rec.dir) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty) => {}
        Err(e) => return Err(Error::Remove(path_str(&rec.dir), e)),
    }
    Ok((rec, usage))
}
