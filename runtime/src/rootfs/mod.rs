//! Builds the container's root filesystem from the Plan's mount steps, inside the container's
//! mount namespace: propagation, the rootfs bind, each mount onto an fd resolved inside the root,
//! `/dev`, `pivot_root`, then masked and read-only paths.

mod bind_trees;
mod copyup;
mod data_page;
mod dev;
mod mounts;
mod paths;
mod pivot;
pub mod resolve;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::errno::Errno;

pub use bind_trees::BindTrees;
pub use dev::{create_devices, open_host_pty_master, open_pty_master};
pub use mounts::mount_all;
pub use paths::{mask_paths, readonly_paths, remount_readonly};
pub use pivot::{bind_rootfs, chroot_into, enter_root, finish_root_propagation, set_root_propagation};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("make / {0} in the container's mount namespace")]
    RootPropagation(&'static str, #[source] Errno),
    #[error("bind the rootfs {path} onto itself")]
    BindRootfs {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("open the rootfs {path}")]
    OpenRootfs {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("resolve mount destination {dest} inside the rootfs")]
    Destination {
        dest: String,
        #[source]
        source: Errno,
    },
    #[error("{fstype} must be mounted on a real directory, and {dest} is not one")]
    NotADirectory { fstype: String, dest: String },
    #[error("{dest} cannot be mounted because it is inside /proc")]
    InsideProc { dest: String },
    #[error("idmap the bind mount of {source_path} on {dest}{hint}")]
    IdMap {
        dest: String,
        source_path: PathBuf,
        /// Why, where the errno says more than itself.
        hint: &'static str,
        #[source]
        source: Errno,
    },
    #[error("open bind source {path}")]
    BindSource {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("create {fstype} filesystem for {dest}")]
    FsOpen {
        fstype: String,
        dest: String,
        #[source]
        source: Errno,
    },
    #[error("{fstype} on {dest}: option {option}")]
    FsOption {
        fstype: String,
        dest: String,
        option: String,
        #[source]
        source: Errno,
    },
    #[error("mount {fstype} on {dest}")]
    FsMount {
        fstype: String,
        dest: String,
        #[source]
        source: Errno,
    },
    #[error("{fstype} on {dest}: its options take {length} bytes, more than mount(2)'s page of {max}", max = data_page::DATA_PAGE_MAX)]
    OptionsTooLong { fstype: String, dest: String, length: usize },
    #[error("tmpcopyup of {dest}")]
    CopyUp {
        dest: String,
        #[source]
        source: copyup::CopyError,
    },
    #[error("bind mount on {dest}: the options clear {flags}, which the source mount has locked")]
    BindLockedFlags {
        dest: String,
        flags: String,
        #[source]
        source: Errno,
    },
    #[error("set attributes of the mount on {dest}")]
    SetAttr {
        dest: String,
        #[source]
        source: Errno,
    },
    #[error("attach the mount on {dest}")]
    Attach {
        dest: String,
        #[source]
        source: Errno,
    },
    #[error("create device {path}")]
    Device {
        path: String,
        #[source]
        source: Errno,
    },
    #[error("{path} already exists and is not the requested device")]
    DeviceConflict { path: String },
    #[error("create symlink {path}")]
    Symlink {
        path: String,
        #[source]
        source: Errno,
    },
    #[error("pivot_root into {path}")]
    PivotRoot {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("detach the old root")]
    DetachOldRoot(#[source] Errno),
    #[error("read the mount table (/proc/self/mountinfo)")]
    MountInfo(#[source] Errno),
    #[error("hide the host's {path} from the container (no-pivot)")]
    HideHostMount {
        path: String,
        #[source]
        source: Errno,
    },
    #[error("move the rootfs onto / (no-pivot)")]
    MoveRoot(#[source] Errno),
    #[error("mask {path}")]
    Mask {
        path: String,
        #[source]
        source: Errno,
    },
    #[error("refusing to mask paths: the container's /dev/null is not the null device (char 1:3)")]
    BadDevNull,
    #[error("make {path} read-only")]
    Readonly {
        path: String,
        #[source]
        source: Errno,
    },
    #[error("open the pty master (/dev/pts/ptmx)")]
    Ptmx(#[source] Errno),
    #[error("the container's /dev/pts/ptmx is not a devpts pty multiplexer")]
    BadPtmx,
    #[error("open the host's pty master (/dev/ptmx)")]
    HostPtmx(#[source] Errno),
    #[error("the host's /dev/ptmx is not the pty multiplexer (char 5:2)")]
    BadHostPtmx,
}

/// The rootfs, bind-mounted onto itself (so it is a mount point `pivot_root` accepts).
#[derive(Debug)]
pub struct Rootfs {
    pub path: PathBuf,
    pub fd: OwnedFd,
}
