//! Errors of the cgroup manager.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

use crate::error::{Error, ErrorKind, kind_of_errno};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error(
        "cgroupsPath {0:?} is in the systemd driver's form \"slice:prefix:name\": pass --systemd-cgroup, \
         or give the cgroupfs driver a path such as \"/machine/<id>\""
    )]
    SystemdForm(String),
    #[error(transparent)]
    SystemdPath(#[from] super::systemd::InvalidUnitPath),
    #[error(
        "the systemd cgroup driver for a rootless container needs cgroup v2: systemd's user manager cannot delegate v1 controllers (use the cgroupfs driver: no --systemd-cgroup)"
    )]
    RootlessSystemdV1,
    #[error("systemd cgroup driver")]
    Bus(#[source] super::systemd::BusError),
    #[error("start systemd unit {unit}")]
    UnitStart {
        unit: String,
        #[source]
        source: super::systemd::BusError,
    },
    #[error("set properties of systemd unit {unit}")]
    UnitSetProperties {
        unit: String,
        #[source]
        source: super::systemd::BusError,
    },
    #[error("stop systemd unit {unit}")]
    UnitStop {
        unit: String,
        #[source]
        source: super::systemd::BusError,
    },
    #[error("{op} systemd unit {unit}: job {result}{hint}")]
    UnitJob { unit: String, op: &'static str, result: String, hint: &'static str },
    #[error("no cgroup file system is mounted")]
    NoCgroupMount,
    #[error("invalid linux.resources.{field}: {reason}")]
    InvalidResource { field: String, reason: String },
    #[error("cannot apply linux.resources.{field}: the {controller} cgroup controller is not available")]
    ControllerMissing { field: &'static str, controller: &'static str },
    #[error("cannot enable the {controller} controller for {path}")]
    ControllerNotEnabled { controller: String, path: PathBuf },
    #[error("create cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open cgroup {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("remove cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("move process {pid} into {path}")]
    AddProcess {
        pid: i32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot set {what} to {limit}: the cgroup already uses {usage} bytes")]
    BelowUsage { what: &'static str, limit: i64, usage: u64 },
    #[error("cgroup {path} is of type {cgroup_type:?} and cannot take the memory, io, hugetlb or rdma controller")]
    Threaded { path: PathBuf, cgroup_type: String },
    #[error("{op} device filter")]
    DeviceFilter {
        op: &'static str,
        #[source]
        source: Errno,
    },
    #[error("the kernel refused the device filter: {log}")]
    DeviceFilterRejected {
        log: String,
        #[source]
        source: Errno,
    },
    #[error("the container has no freezer (no freezer hierarchy and no cgroup v2)")]
    NoFreezer,
    #[error("freeze {path}: still {state} after waiting")]
    FreezeTimeout { path: PathBuf, state: String },
    #[error(
        "container's cgroup unexpectedly frozen: {} (thaw it first)",
        match by {
            super::FrozenBy::Itself => format!("{} is frozen", path.display()),
            super::FrozenBy::Parent => format!("a parent of {} is frozen", path.display()),
        }
    )]
    Frozen { path: PathBuf, by: super::FrozenBy },
    #[error("send signal {signal} to process {pid}")]
    Signal {
        pid: i32,
        signal: i32,
        #[source]
        source: Errno,
    },
    #[error("watch {path}")]
    Watch {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse update resources")]
    ParseResources(#[source] serde_json::Error),
    #[error("invalid value {value:?} for --{flag}: {reason}")]
    InvalidFlag { flag: &'static str, value: String, reason: &'static str },
}

impl CgroupError {
    /// How the CLI reports it (exit codes, the wording clients match on).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidPath { .. }
            | Self::InvalidResource { .. }
            | Self::ControllerMissing { .. }
            | Self::ControllerNotEnabled { .. }
            | Self::Threaded { .. }
            | Self::BelowUsage { .. }
            | Self::ParseResources(_)
            | Self::InvalidFlag { .. }
            | Self::SystemdForm(_)
            | Self::SystemdPath(_)
            | Self::DeviceFilterRejected { .. } => ErrorKind::InvalidSpec,
            Self::NoCgroupMount | Self::NoFreezer | Self::RootlessSystemdV1 => ErrorKind::Unsupported,
            Self::Bus(_)
            | Self::UnitStart { .. }
            | Self::UnitSetProperties { .. }
            | Self::UnitStop { .. }
            | Self::UnitJob { .. } => ErrorKind::Other,
            Self::Create { source, .. }
            | Self::Open { source, .. }
            | Self::Write { source, .. }
            | Self::Read { source, .. }
            | Self::Remove { source, .. }
            | Self::AddProcess { source, .. }
            | Self::Watch { source, .. } => {
                source.raw_os_error().map_or(ErrorKind::Other, |e| kind_of_errno(Errno::from_raw(e)))
            }
            Self::DeviceFilter { source, .. } | Self::Signal { source, .. } => kind_of_errno(*source),
            Self::Parse { .. } | Self::FreezeTimeout { .. } => ErrorKind::Other,
            Self::Frozen { .. } => ErrorKind::InvalidState,
        }
    }

    /// The errno behind the failure, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Create { source, .. }
            | Self::Open { source, .. }
            | Self::Write { source, .. }
            | Self::Read { source, .. }
            | Self::Remove { source, .. }
            | Self::AddProcess { source, .. }
            | Self::Watch { source, .. } => source.raw_os_error().map(Errno::from_raw),
            Self::DeviceFilter { source, .. }
            | Self::DeviceFilterRejected { source, .. }
            | Self::Signal { source, .. } => Some(*source),
            _ => None,
        }
    }
}

impl From<CgroupError> for Error {
    fn from(e: CgroupError) -> Self {
        Error::new(e.kind(), e)
    }
}
