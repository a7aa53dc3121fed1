//! config.json → a validated [`Plan`]: everything the runtime will do, decided before any side
//! effect. Pure (except [`load`]): unit-tested without privileges.

pub mod devices;
mod json_path;
pub mod load;
pub mod mounts;
pub mod namespaces;
pub mod process;
mod validate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hooks, LinuxResources, LinuxSeccomp, Spec};

pub use devices::DeviceNode;
pub use load::{LoadError, LoadedConfig, load_config};
pub use mounts::{MountKind, MountStep, Propagation};
pub use namespaces::{NamespacePlan, Ns};
pub use process::ProcessPlan;
pub use validate::ConfigError;

/// Everything `create` needs, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub oci_version: String,
    pub bundle: PathBuf,
    /// Absolute path of the root filesystem on the host.
    pub rootfs: PathBuf,
    pub root_readonly: bool,
    pub namespaces: NamespacePlan,
    /// `/proc/<pid>/uid_map` content ("0 100000 65536\n"), when a user namespace is created.
    pub uid_map: String,
    pub gid_map: String,
    /// `/proc/self/timens_offsets` content, when a time namespace is created.
    pub time_offsets: String,
    pub mounts: Vec<MountStep>,
    /// Propagation of `/` in the container's mount namespace (default: rslave).
    pub rootfs_propagation: Option<Propagation>,
    /// Whether the runtime populates `/dev` (false when `/dev` is a bind mount).
    pub setup_dev: bool,
    pub devices: Vec<DeviceNode>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// (path under /proc/sys, value)
    pub sysctl: Vec<(String, String)>,
    /// `None` when config.json has no process: the container can be created, not started.
    pub process: Option<ProcessPlan>,
    pub personality: Option<u64>,
    pub hooks: Hooks,
    pub annotations: HashMap<String, String>,
    pub cgroups_path: Option<String>,
    pub resources: Option<LinuxResources>,
    pub seccomp: Option<LinuxSeccomp>,
}

impl Plan {
    /// Validate `spec` (the bundle's config.json) and decide what to do.
    pub fn new(spec: &Spec, bundle: &Path) -> Result<Self, ConfigError> {
        validate::build(spec, bundle)
    }
}
