//! The commands behind the command line: the library's operations, their output (plain,
//! `--quiet`, `--json`), progress and warnings. Only this side of the crate prints.
//!
//! images.rs (images, inspect, rmi, tag, gc), bundles.rs (bundle, flatten, rm, bundles,
//! commit), registry.rs (pull, push, login, logout), display.rs (progress).

mod bundles;
mod display;
mod images;
mod registry;

use std::path::PathBuf;

use strata_rootfs::digest::Digest;
use strata_rootfs::error_chain::chain;
use strata_rootfs::layer::chain_ids;
use strata_rootfs::registry::auth::{self, AuthFiles, Credentials};
use strata_rootfs::registry::client::{self, Access};
use strata_rootfs::registry::conf::{self, Registries};
use strata_rootfs::registry::fetch;
use strata_rootfs::registry::reference::{self, Parsed};
use strata_rootfs::source::{self, Platform, Resolved, SourceSpec, platform};
use strata_rootfs::store::{self, Store};
use strata_rootfs::{bundle, commit, flatten, flatten_source, gc, pull, push};

pub use bundles::{CommitArgs, bundle, bundles, commit, flatten, rm};
pub use images::{gc, images, inspect, rmi, tag};
pub use registry::{login, logout, pull, push};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Pull(#[from] pull::Error),
    #[error(transparent)]
    Push(#[from] push::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    StoreLocation(#[from] store::location::Error),
    #[error(transparent)]
    Bundle(#[from] bundle::Error),
    #[error(transparent)]
    Flatten(#[from] flatten::Error),
    #[error(transparent)]
    FlattenSource(#[from] flatten_source::Error),
    #[error(transparent)]
    Gc(#[from] gc::Error),
    #[error(transparent)]
    Platform(#[from] platform::ParseError),
    #[error(transparent)]
    Commit(#[from] commit::Error),
    #[error(transparent)]
    Client(#[from] client::Error),
    #[error(transparent)]
    Auth(#[from] auth::Error),
    #[error(transparent)]
    Conf(#[from] conf::Error),
    #[error(transparent)]
    Reference(#[from] reference::Error),
    #[error("unknown compression {0:?} (gzip, zstd or none)")]
    Compression(String),
    #[error("--creds takes USER:PASS")]
    BadCreds,
    #[error("{0}")]
    Usage(String),
    #[error("reading the password from standard input")]
    ReadPassword(#[source] std::io::Error),
    #[error("{0} is used by the bundle(s) {1}; remove them first, or use --force")]
    ImageInUse(String, String),
    #[error("{0:?} is not a name for an image (give REGISTRY/NAME[:TAG] or NAME[:TAG])")]
    BadName(String),
}

/// The registry options every command takes (skopeo's and podman's names).
#[derive(Debug, Clone, Default)]
pub struct RegistryFlags {
    pub tls_verify: Option<bool>,
    pub creds: Option<String>,
    pub authfile: Option<PathBuf>,
    pub cert_dir: Option<PathBuf>,
    pub registries_conf: Option<PathBuf>,
}

/// Options every command takes.
#[derive(Debug, Clone)]
pub struct Global {
    /// `None`: the caller's default store ([`store::location::default_store`]).
    pub store: Option<PathBuf>,
    pub quiet: bool,
    pub json: bool,
    pub platform: Option<String>,
    pub registry: RegistryFlags,
}

/// Layers fetched at the same time from a registry.
const REGISTRY_JOBS: usize = 3;

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// The store a command works on; the warnings its operations recorded are printed when the
/// command is done with it, whether it succeeded or not.
struct OpenStore(Store);

impl std::ops::Deref for OpenStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.0
    }
}

impl Drop for OpenStore {
    fn drop(&mut self) {
        for w in self.0.take_warnings() {
            eprintln!("strata-rootfs: warning: {}", chain(&w));
        }
    }
}

impl Global {
    fn store(&self) -> Result<OpenStore, Error> {
        let root = match &self.store {
            Some(dir) => dir.clone(),
            None => store::location::default_store()?,
        };
        Ok(OpenStore(Store::open(&root)?))
    }

    fn pull_options(&self, jobs: usize) -> Result<pull::Options, Error> {
        let platform = match &self.platform {
            Some(p) => Platform::parse(p)?,
            None => Platform::host(),
        };
        Ok(pull::Options {
            platform,
            overlay: store::Format::of_caller().overlay(),
            progress: display::progress(self.quiet, self.json),
            jobs,
        })
    }

    /// How to reach registries, from the flags and the configuration files.
    fn access(&self) -> Result<Access, Error> {
        let f = &self.registry;
        let creds = match &f.creds {
            Some(c) => Some(Credentials::parse(c).ok_or(Error::BadCreds)?),
            None => None,
        };
        Ok(Access {
            conf: Registries::load(f.registries_conf.as_deref())?,
            auth: AuthFiles::new(f.authfile.clone()),
            creds,
            tls_verify: f.tls_verify,
            cert_dir: f.cert_dir.clone(),
        })
    }
}

/// What an IMAGE argument names.
enum Named<'a> {
    /// `oci:`, `oci-archive:`, `docker-archive:`.
    Local(SourceSpec),
    /// `docker://REF`.
    Registry(&'a str),
    /// A name or id in the store.
    Store(&'a str),
}

fn classify(arg: &str) -> Named<'_> {
    if let Some(spec) = SourceSpec::parse(arg) {
        return Named::Local(spec);
    }
    match arg.strip_prefix("docker://") {
        Some(r) => Named::Registry(r),
        None => Named::Store(arg),
    }
}

/// A stored image by name (as given, or normalised: `docker.io/busybox` is
/// `docker.io/library/busybox:latest`) or id.
fn find_stored(store: &Store, arg: &str) -> Result<Digest, Error> {
    match store.find_image(arg) {
        Ok(id) => Ok(id),
        Err(e) => match reference::parse(arg) {
            Ok(Parsed::Qualified(r)) => store.find_image(&r.with_default_tag().store_name()).map_err(|_| e.into()),
            _ => Err(e.into()),
        },
    }
}

/// An image found in a source (a local one or a registry), its layers not read yet.
struct Source {
    resolved: Resolved,
    /// Where it came from, as the store records it.
    name: String,
}

/// The image an argument names when it is a source; `None` for a name in the store.
fn resolve_source(g: &Global, arg: &str) -> Result<Option<Source>, Error> {
    let platform = g.pull_options(1)?.platform;
    Ok(match classify(arg) {
        Named::Local(spec) => Some(Source {
            resolved: source::resolve(&spec, &platform).map_err(pull::Error::from)?,
            name: spec.path.display().to_string(),
        }),
        Named::Registry(r) => {
            let fetched = fetch::resolve(&g.access()?, r, &platform).map_err(pull::Error::from)?;
            Some(Source { resolved: fetched.resolved, name: fetched.source })
        }
        Named::Store(_) => None,
    })
}

/// Whether the store holds every layer of `resolved`.
fn stored(store: &Store, resolved: &Resolved) -> Result<bool, Error> {
    let diff_ids: Vec<Digest> = resolved.layers.iter().map(|l| l.diff_id.clone()).collect();
    for chain in chain_ids(&diff_ids) {
        if store.layer(&chain)?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The image an argument names: imported first when it is a source (a registry with
/// `docker://`), else looked up in the store.
fn image_id(g: &Global, store: &Store, arg: &str) -> Result<Digest, Error> {
    match classify(arg) {
        Named::Local(spec) => Ok(pull::pull(store, &spec, &g.pull_options(1)?)?.id),
        Named::Registry(r) => Ok(pull::pull_registry(store, &g.access()?, r, &g.pull_options(REGISTRY_JOBS)?)?.id),
        Named::Store(name) => find_stored(store, name),
    }
}
