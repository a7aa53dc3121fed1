//! Mounting an overlay of store layers.
//!
//! Preferred: the new mount API with one `fsconfig(lowerdir+)` per layer (Linux 6.8), which has
//! no limit on the length of the layer list but the kernel's 500 lower layers. Older kernels
//! (Debian 12 runs 6.1) refuse `lowerdir+`; there the classic `lowerdir=a:b:c` string is used,
//! through `mount(2)`, whose options must fit in one page. To make that page hold as many layers
//! as it can, layers are named by short links in the store (`l/<12 hex digits>` pointing at
//! `../layers/<chain>/diff`, as containers/storage does) and the bundle's own directories by
//! their path relative to the store, with the store as the working directory during the mount.
//! About 240 layers fit; beyond that the error suggests `--flatten`.
//!
//! `STRATA_ROOTFS_OVERLAY=classic` forces the classic mount (for tests, and as an escape hatch).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use crate::digest::Digest;
use crate::store::Store;
use crate::sys::mount::{FsContext, MOUNT_ATTR_RDONLY, move_mount_fd};
use crate::warning::Warning;

/// The environment variable that forces the classic mount.
pub const FORCE_ENV: &str = "STRATA_ROOTFS_OVERLAY";

/// `mount(2)` copies at most one page of options, NUL included.
pub const MAX_OPTIONS: usize = 4095;

/// Hex digits of a chain id in a short link name (more only when two layers share them).
const SHORT_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mounting the overlay of {layers} layers on {target}")]
    Mount {
        layers: usize,
        target: String,
        #[source]
        source: Errno,
    },
    #[error(
        "mounting the overlay of {layers} layers on {target} (this kernel refuses lowerdir+, and the classic mount failed too)"
    )]
    ClassicMount {
        layers: usize,
        target: String,
        #[source]
        source: Errno,
    },
    #[error(
        "{layers} layers do not fit in one overlay mount on this kernel: their options take {length} bytes of at most {MAX_OPTIONS} (lowerdir+, which has no such limit, needs Linux 6.8): use --flatten"
    )]
    OptionsTooLong { layers: usize, length: usize },
    #[error("creating the short layer link {0}")]
    ShortLink(String, #[source] io::Error),
    #[error("changing into {0} for the mount")]
    Chdir(String, #[source] Errno),
}

/// How an overlay is to be mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// New mount API, one `lowerdir+` per layer; classic if the kernel refuses it.
    Auto,
    /// `mount(2)` with `lowerdir=a:b:c`.
    Classic,
}

impl Method {
    /// `Classic` when [`FORCE_ENV`] says `classic`, else `Auto`.
    pub fn from_env() -> Self {
        match std::env::var(FORCE_ENV) {
            Ok(v) if v == "classic" => Method::Classic,
            _ => Method::Auto,
        }
    }
}

/// One lower layer: a store layer (by chain id) or another directory (init layer, inner overlay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lower {
    Layer(Digest),
    Dir(PathBuf),
}

/// What to mount: lower layers top first, the writable layer if any, the mount point.
#[derive(Debug, Clone)]
pub struct Overlay<'a> {
    pub lowers: &'a [Lower],
    pub upper: Option<(&'a Path, &'a Path)>,
    pub target: &'a Path,
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Mount `o` on its target.
pub fn mount(store: &Store, o: &Overlay<'_>, method: Method) -> Result<(), Error> {
    if method == Method::Auto {
        match mount_lowerdir_plus(store, o) {
            // EINVAL: an overlay without lowerdir+ (6.5-6.7), or the legacy option parser of
            // older kernels taking it as text and refusing it at creation.
            Err(Errno::EINVAL) => {}
            Err(source) => return Err(Error::Mount { layers: o.lowers.len(), target: path_str(o.target), source }),
            Ok(()) => return Ok(()),
        }
        return mount_classic(store, o).map_err(|e| match e {
            Error::Mount { layers, target, source } => Error::ClassicMount { layers, target, source },
            other => other,
        });
    }
    mount_classic(store, o)
}

fn mount_lowerdir_plus(store: &Store, o: &Overlay<'_>) -> nix::Result<()> {
    let ctx = FsContext::open(c"overlay")?;
    ctx.set_string(c"source", c"strata")?;
    for l in o.lowers {
        let p = match l {
            Lower::Layer(chain) => store.diff_dir(chain),
            Lower::Dir(d) => d.clone(),
        };
        ctx.set_string(c"lowerdir+", &cpath(&p))?;
    }
    if let Some((u, w)) = o.upper {
        ctx.set_string(c"upperdir", &cpath(u))?;
        ctx.set_string(c"workdir", &cpath(w))?;
        // Keep the upper dir a plain diff (no redirect or metacopy xattrs), whatever the kernel's
        // defaults: it is what `commit` turns back into a tar layer.
        ctx.set_string(c"redirect_dir", c"off")?;
        ctx.set_string(c"metacopy", c"off")?;
    }
    let mnt = ctx.mount(if o.upper.is_none() { MOUNT_ATTR_RDONLY } else { 0 })?;
    let t = nix::fcntl::open(o.target, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    move_mount_fd(mnt.as_fd(), t.as_fd())
}

/// A path as the classic options name it: relative to the store root when it is inside it.
fn relative<'p>(store: &Store, p: &'p Path) -> &'p Path {
    p.strip_prefix(store.root()).ok().filter(|r| !r.as_os_str().is_empty()).unwrap_or(p)
}

/// The classic option string for `o`, with store layers as the short names in `links`
/// (same order as the layers in `o.lowers`).
pub fn classic_options(store: &Store, o: &Overlay<'_>, links: &[String]) -> Result<String, Error> {
    let mut links = links.iter();
    let mut lowers = Vec::with_capacity(o.lowers.len());
    for l in o.lowers {
        match l {
            Lower::Layer(_) => lowers.push(links.next().cloned().unwrap_or_default()),
            Lower::Dir(d) => lowers.push(relative(store, d).to_string_lossy().into_owned()),
        }
    }
    let mut opts = format!("lowerdir={}", lowers.join(":"));
    if let Some((u, w)) = o.upper {
        opts.push_str(&format!(
            ",upperdir={},workdir={},redirect_dir=off,metacopy=off",
            relative(store, u).display(),
            relative(store, w).display()
        ));
    }
    if opts.len() > MAX_OPTIONS {
        return Err(Error::OptionsTooLong { layers: o.lowers.len(), length: opts.len() });
    }
    Ok(opts)
}

/// The short link `l/<prefix>` naming the layer `chain`, created when missing. The prefix is
/// lengthened while another layer holds it.
pub fn short_link(store: &Store, chain: &Digest) -> Result<String, Error> {
    let dir = store.root().join("l");
    fs::create_dir_all(&dir).map_err(|e| Error::ShortLink(path_str(&dir), e))?;
    let target = PathBuf::from(format!("../layers/{}/diff", chain.hex()));
    let mut len = SHORT_LEN;
    loop {
        let name = &chain.hex()[..len];
        let link = dir.join(name);
        match fs::read_link(&link) {
            Ok(t) if t == target => return Ok(format!("l/{name}")),
            Ok(_) if len < chain.hex().len() => len = (len + 8).min(chain.hex().len()),
            Ok(_) => {
                return Err(Error::ShortLink(path_str(&link), io::Error::from(io::ErrorKind::AlreadyExists)));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Another bundle may make it meanwhile: either way the next round reads it.
                if let Err(e) = std::os::unix::fs::symlink(&target, &link)
                    && e.kind() != io::ErrorKind::AlreadyExists
                {
                    return Err(Error::ShortLink(path_str(&link), e));
                }
            }
            Err(e) => return Err(Error::ShortLink(path_str(&link), e)),
        }
    }
}

/// Whether the short link `name` (in `l/`) points to a layer that is gone.
pub fn is_dangling_link(store: &Store, name: &str) -> bool {
    let link = store.root().join("l").join(name);
    fs::symlink_metadata(&link).is_ok() && fs::metadata(&link).is_err()
}

/// The working directory to return to. `chdir` is process-wide: the classic mount runs on the
/// command's only thread, and nothing between `enter` and `restore` can return early.
struct SavedCwd(OwnedFd);

impl SavedCwd {
    fn enter(dir: &Path) -> Result<Self, Error> {
        let here = nix::fcntl::open(".", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::Chdir(".".into(), e))?;
        nix::unistd::chdir(dir).map_err(|e| Error::Chdir(path_str(dir), e))?;
        Ok(Self(here))
    }

    fn restore(self) -> nix::Result<()> {
        nix::unistd::fchdir(&self.0)
    }
}

fn mount_classic(store: &Store, o: &Overlay<'_>) -> Result<(), Error> {
    let mut links = Vec::new();
    for l in o.lowers {
        if let Lower::Layer(chain) = l {
            links.push(short_link(store, chain)?);
        }
    }
    let opts = classic_options(store, o, &links)?;
    let flags = if o.upper.is_none() { MsFlags::MS_RDONLY } else { MsFlags::empty() };
    let target = std::path::absolute(o.target).unwrap_or_else(|_| o.target.to_path_buf());
    let cwd = SavedCwd::enter(store.root())?;
    let mounted = nix::mount::mount(Some("strata"), &target, Some("overlay"), flags, Some(opts.as_str()));
    if let Err(e) = cwd.restore() {
        store.warn(Warning::new("could not return to the previous working directory", e));
    }
    mounted.map_err(|source| Error::Mount { layers: o.lowers.len(), target: path_str(&target), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(i: usize) -> Digest {
        Digest::sha256_of(i.to_string().as_bytes())
    }

    #[test]
    fn classic_options_use_short_relative_names() {
        let tmp = std::env::temp_dir().join(format!("strata-overlay-unit-{}", std::process::id()));
        let store = Store::open(&tmp).unwrap();
        let init = store.bundle_dir("b1").join("init");
        let upper = store.bundle_dir("b1").join("upper");
        let work = store.bundle_dir("b1").join("work");
        let lowers = vec![Lower::Dir(init), Lower::Layer(chain(2)), Lower::Layer(chain(1))];
        let o = Overlay { lowers: &lowers, upper: Some((&upper, &work)), target: Path::new("/x/rootfs") };
        let links: Vec<String> = [2, 1].iter().map(|i| short_link(&store, &chain(*i)).unwrap()).collect();
        let opts = classic_options(&store, &o, &links).unwrap();
        assert_eq!(
            opts,
            format!(
                "lowerdir=bundles/b1/init:l/{}:l/{},upperdir=bundles/b1/upper,workdir=bundles/b1/work,redirect_dir=off,metacopy=off",
                &chain(2).hex()[..12],
                &chain(1).hex()[..12]
            )
        );
        // The links resolve to the layers' diff directories.
        assert_eq!(
            fs::read_link(tmp.join(&links[0])).unwrap(),
            PathBuf::from(format!("../layers/{}/diff", chain(2).hex()))
        );
        // Read-only: no upper options.
        let ro = Overlay { lowers: &lowers, upper: None, target: Path::new("/x/rootfs") };
        assert!(!classic_options(&store, &ro, &links).unwrap().contains("upperdir"));
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn short_links_grow_past_a_taken_prefix() {
        let tmp = std::env::temp_dir().join(format!("strata-overlay-unit2-{}", std::process::id()));
        let store = Store::open(&tmp).unwrap();
        let c = chain(7);
        fs::create_dir_all(tmp.join("l")).unwrap();
        // Another layer's link holds the 12-digit prefix.
        std::os::unix::fs::symlink("../layers/other/diff", tmp.join("l").join(&c.hex()[..12])).unwrap();
        let name = short_link(&store, &c).unwrap();
        assert_eq!(name, format!("l/{}", &c.hex()[..20]));
        assert_eq!(short_link(&store, &c).unwrap(), name, "the same link is found again");
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn too_many_layers_for_one_page_is_a_clear_error() {
        let tmp = std::env::temp_dir().join(format!("strata-overlay-unit3-{}", std::process::id()));
        let store = Store::open(&tmp).unwrap();
        let n = 300;
        let lowers: Vec<Lower> = (0..n).map(|i| Lower::Layer(chain(i))).collect();
        let links: Vec<String> = (0..n).map(|i| format!("l/{}", &chain(i).hex()[..12])).collect();
        let o = Overlay { lowers: &lowers, upper: None, target: Path::new("/x") };
        let err = classic_options(&store, &o, &links).unwrap_err();
        assert!(matches!(err, Error::OptionsTooLong { layers: 300, .. }), "{err}");
        assert!(err.to_string().contains("--flatten"));
        // 240 layers with a long bundle name still fit.
        let name = "n".repeat(128);
        let (u, w) = (store.bundle_dir(&name).join("upper"), store.bundle_dir(&name).join("work"));
        let mut lowers: Vec<Lower> = vec![Lower::Dir(store.bundle_dir(&name).join("init"))];
        lowers.extend((0..240).map(|i| Lower::Layer(chain(i))));
        let links: Vec<String> = (0..240).map(|i| format!("l/{}", &chain(i).hex()[..12])).collect();
        let o = Overlay { lowers: &lowers, upper: Some((&u, &w)), target: Path::new("/x") };
        assert!(classic_options(&store, &o, &links).is_ok());
        fs::remove_dir_all(&tmp).unwrap();
    }
}
