//! Executes the Plan's mount steps, each onto a destination fd resolved inside the rootfs, with
//! the new mount API: attributes are set on the detached mount before it is attached.

use std::borrow::Cow;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::fstat;
use nix::sys::statvfs::{FsFlags, fstatvfs};

use super::bind_trees::BindTrees;
use super::resolve::{Leaf, ensure_in_root};
use super::{Rootfs, RootfsError};
use super::{copyup, data_page};
use crate::cgroup::ContainerView;
use crate::plan::mounts::Attrs;
use crate::plan::{MountKind, MountStep, Propagation};
use crate::sys::mount::{
    FsContext, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MountAttr,
    OPEN_TREE_CLONE, mount_setattr, move_mount_fd, open_tree,
};

/// Destinations under /proc that may be overmounted (what lxcfs-style setups need).
const PROC_ALLOWED: [&str; 10] = [
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// Mount every step in order. Returns the `/dev` mount when it must become read-only only after
/// the runtime has populated it.
/// `trees`: bind sources the parent already opened (see [`BindTrees`]); the others are opened here.
pub fn mount_all(
    rootfs: &Rootfs,
    steps: &[MountStep],
    cgroups: &ContainerView,
    mut trees: BindTrees,
    in_user_namespace: bool,
) -> Result<Option<OwnedFd>, RootfsError> {
    let root = rootfs.fd.as_fd();
    let mut deferred_dev = None;
    for (index, step) in steps.iter().enumerate() {
        check_proc_destination(step)?;
        let defer_ro = step.dest == Path::new("dev") && step.attrs.readonly();
        match &step.kind {
            MountKind::Bind { source, recursive } => {
                let tree = match trees.take(index) {
                    Some(tree) => tree,
                    None => clone_source(source, *recursive)?,
                };
                mount_bind(root, step, tree)?
            }
            MountKind::Fs { fstype, source } => {
                let mut attrs = step.attrs;
                if defer_ro {
                    attrs.set &= !MOUNT_ATTR_RDONLY;
                }
                match mount_fs(root, step, fstype, source, attrs) {
                    Ok(mnt) if defer_ro => deferred_dev = Some(mnt),
                    Ok(_) => {}
                    Err(e) if in_user_namespace && refused(&e) => refused_in_user_namespace(root, step, fstype, e)?,
                    Err(e) => return Err(e),
                }
            }
            MountKind::Cgroup => match mount_cgroup(root, step, cgroups) {
                Err(e) if in_user_namespace && refused(&e) && *cgroups == ContainerView::Unified => {
                    refused_in_user_namespace(root, step, "cgroup2", e)?
                }
                other => other?,
            },
        }
    }
    Ok(deferred_dev)
}

/// The kernel refused a new filesystem with EPERM.
fn refused(e: &RootfsError) -> bool {
    matches!(
        e,
        RootfsError::FsOpen { source: Errno::EPERM, .. }
            | RootfsError::FsOption { source: Errno::EPERM, .. }
            | RootfsError::FsMount { source: Errno::EPERM, .. }
    )
}

/// In a user namespace the kernel mounts some filesystems only for namespaces that namespace
/// owns: sysfs needs its own network namespace, mqueue its own IPC namespace, cgroup2 its own
/// cgroup namespace. Without them (the usual rootless configs, runc's `spec --rootless` among
/// them) what the host has is bound instead, read-only for sysfs and cgroup2, as crun does
/// (runc 1.1 only for cgroup2); an mqueue the host has none of to bind is left out with a
/// warning (POSIX message queues still work, only their file view is missing); any other
/// filesystem keeps the kernel's error.
fn refused_in_user_namespace(
    root: BorrowedFd<'_>,
    step: &MountStep,
    fstype: &str,
    refused: RootfsError,
) -> Result<(), RootfsError> {
    let (source, read_only) = match fstype {
        "sysfs" => ("/sys", true),
        "cgroup2" => ("/sys/fs/cgroup", true),
        "mqueue" => ("/dev/mqueue", false),
        _ => return Err(refused),
    };
    crate::logging::debug(&format!("{refused}: binding the host's {source} instead"));
    let mut attrs = step.attrs;
    attrs.set |= MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if read_only {
        attrs.set |= MOUNT_ATTR_RDONLY;
    }
    let bind = MountStep {
        kind: MountKind::Bind { source: source.into(), recursive: true },
        attrs,
        data: Vec::new(),
        copy_up: false,
        idmap: None,
        ..step.clone()
    };
    match clone_source(Path::new(source), true).and_then(|tree| mount_bind(root, &bind, tree)) {
        Err(e) if fstype == "mqueue" => {
            crate::logging::warn(&format!(
                "{refused}: not permitted in a user namespace without its own IPC namespace, and the host has no {source} to bind instead ({e}): {} left out",
                step.destination
            ));
            Ok(())
        }
        other => other,
    }
}

fn check_proc_destination(step: &MountStep) -> Result<(), RootfsError> {
    let dest = step.dest.as_path();
    if !dest.starts_with("proc") || dest == Path::new("proc") {
        return Ok(());
    }
    let is_proc_fs = matches!(&step.kind, MountKind::Fs { fstype, .. } if fstype == "proc");
    if is_proc_fs || PROC_ALLOWED.iter().any(|p| dest == Path::new(p)) {
        return Ok(());
    }
    Err(RootfsError::InsideProc { dest: step.destination.clone() })
}

/// A detached copy of the bind source's mount (with what is mounted below it when `recursive`).
pub(super) fn clone_source(source: &Path, recursive: bool) -> Result<OwnedFd, RootfsError> {
    let src = CString::new(source.as_os_str().as_encoded_bytes())
        .map_err(|_| RootfsError::BindSource { path: source.to_owned(), source: Errno::EINVAL })?;
    let mut flags = OPEN_TREE_CLONE;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    open_tree(crate::sys::at_fdcwd(), &src, flags)
        .map_err(|e| RootfsError::BindSource { path: source.to_owned(), source: e })
}

/// Make a detached tree idmapped with the mapping of `userns`.
pub(super) fn set_idmap(
    tree: BorrowedFd<'_>,
    userns: BorrowedFd<'_>,
    recursive: bool,
    step: &MountStep,
    source: &Path,
) -> Result<(), RootfsError> {
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let attr =
        MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns.as_raw_fd() as u64 };
    mount_setattr(tree, c"", flags, &attr).map_err(|errno| idmap_error(step, source, errno))
}

/// Why an idmapped bind mount of `source` could not be made (cloning its tree or mapping it).
pub(super) fn idmap_error(step: &MountStep, source: &Path, errno: Errno) -> RootfsError {
    RootfsError::IdMap {
        dest: step.destination.clone(),
        source_path: source.to_owned(),
        hint: match errno {
            // Or the tree is idmapped already.
            Errno::EINVAL => " (its filesystem does not support idmapped mounts)",
            // The kernel wants privilege over the filesystem's own user namespace (the host's for
            // a host directory, which a rootless caller never has), and a rootless caller cannot
            // even clone a tree of the host's mount namespace.
            Errno::EPERM => {
                " (only a caller privileged over the source's filesystem may idmap it: rootless, only a \
                 filesystem mounted in the caller's own user namespace)"
            }
            _ => "",
        },
        source: errno,
    }
}

fn mount_bind(root: BorrowedFd<'_>, step: &MountStep, tree: OwnedFd) -> Result<(), RootfsError> {
    let leaf = if fstat(tree.as_fd()).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR).unwrap_or(true) {
        Leaf::Dir
    } else {
        Leaf::File
    };
    let target = ensure_in_root(root, &step.dest, leaf, false)
        .map_err(|source| RootfsError::Destination { dest: step.destination.clone(), source })?;
    set_bind_attrs(tree.as_fd(), step)?;
    set_attrs(tree.as_fd(), step.recursive_attrs, true, &step.destination)?;
    move_mount_fd(tree.as_fd(), target.as_fd())
        .map_err(|source| RootfsError::Attach { dest: step.destination.clone(), source })?;
    set_propagation(tree.as_fd(), step.propagation, &step.destination)
}

/// The bind mount's own flags (see `plan::mounts::bind_attrs`). In a user namespace the source's
/// read-only, nosuid, nodev, noexec and atime flags may be locked: clearing one fails (EPERM), and
/// then, as runc does, the locked flags the options did not explicitly clear are kept and the
/// rest applied; a locked flag the options explicitly cleared is an error.
fn set_bind_attrs(tree: BorrowedFd<'_>, step: &MountStep) -> Result<(), RootfsError> {
    let attrs = step.attrs;
    match set_attrs(tree, attrs, false, &step.destination) {
        Err(RootfsError::SetAttr { source: Errno::EPERM, .. }) => {}
        other => return other,
    }
    let st = fstatvfs(tree).map_err(|source| RootfsError::SetAttr { dest: step.destination.clone(), source })?;
    let source_flags = [
        (FsFlags::ST_RDONLY, MOUNT_ATTR_RDONLY),
        (FsFlags::ST_NOSUID, MOUNT_ATTR_NOSUID),
        (FsFlags::ST_NODEV, MOUNT_ATTR_NODEV),
        (FsFlags::ST_NOEXEC, MOUNT_ATTR_NOEXEC),
    ]
    .into_iter()
    .filter(|(st_flag, _)| st.flags().contains(*st_flag))
    .fold(0, |acc, (_, attr)| acc | attr);
    let refused = source_flags & step.cleared & attrs.clr;
    if refused != 0 {
        return Err(RootfsError::BindLockedFlags {
            dest: step.destination.clone(),
            flags: attr_names(refused),
            source: Errno::EPERM,
        });
    }
    let keep = source_flags & attrs.clr;
    let retry = Attrs { set: attrs.set | keep, clr: attrs.clr & !keep };
    set_attrs(tree, retry, false, &step.destination)
}

fn attr_names(bits: u64) -> String {
    let names: Vec<&str> = [
        (MOUNT_ATTR_RDONLY, "ro"),
        (MOUNT_ATTR_NOSUID, "nosuid"),
        (MOUNT_ATTR_NODEV, "nodev"),
        (MOUNT_ATTR_NOEXEC, "noexec"),
    ]
    .into_iter()
    .filter(|(bit, _)| bits & bit != 0)
    .map(|(_, name)| name)
    .collect();
    names.join(",")
}

fn mount_fs(
    root: BorrowedFd<'_>,
    step: &MountStep,
    fstype: &str,
    source: &str,
    attrs: Attrs,
) -> Result<OwnedFd, RootfsError> {
    let dest = || step.destination.clone();
    let target = ensure_in_root(root, &step.dest, Leaf::Dir, step.no_symlinks)
        .map_err(|source| RootfsError::Destination { dest: dest(), source })?;
    let target_dir = fstat(target.as_fd()).ok().filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
    if step.no_symlinks && target_dir.is_none() {
        return Err(RootfsError::NotADirectory { fstype: fstype.to_owned(), dest: dest() });
    }
    let mut data = Cow::Borrowed(&step.data);
    // As runc: a tmpfs over an existing directory keeps that directory's mode unless the options
    // give one (the tmpfs default would be 1777).
    if let Some(st) = target_dir.filter(|_| fstype == "tmpfs" && !step.data.iter().any(|(k, _)| k == "mode")) {
        data.to_mut().insert(0, ("mode".into(), Some(format!("{:o}", st.st_mode & 0o7777))));
    }
    // A copy-up fills the tmpfs before it is attached: read-only only afterwards.
    let create_attrs = if step.copy_up { Attrs { set: attrs.set & !MOUNT_ATTR_RDONLY, clr: 0 } } else { attrs };
    let mnt = if data_page::fits_fsconfig(source, &data) {
        fs_context_mount(step, fstype, source, &data, create_attrs)?
    } else {
        let options = data_page::data_string(&data);
        if options.len() > data_page::DATA_PAGE_MAX {
            return Err(RootfsError::OptionsTooLong { fstype: fstype.to_owned(), dest: dest(), length: options.len() });
        }
        let mnt = data_page::mount_detached(target.as_fd(), fstype, source, &options, create_attrs)
            .map_err(|source| RootfsError::FsMount { fstype: fstype.to_owned(), dest: dest(), source })?;
        if create_attrs.readonly() {
            set_attrs(mnt.as_fd(), Attrs { set: MOUNT_ATTR_RDONLY, clr: 0 }, false, &step.destination)?;
        }
        mnt
    };
    if step.copy_up {
        let root_owner = !step.data.iter().any(|(k, _)| k == "uid" || k == "gid");
        copyup::copy_tree(target.as_fd(), mnt.as_fd(), root_owner)
            .map_err(|source| RootfsError::CopyUp { dest: dest(), source })?;
        if attrs.readonly() {
            set_attrs(mnt.as_fd(), Attrs { set: MOUNT_ATTR_RDONLY, clr: 0 }, false, &step.destination)?;
        }
    }
    set_attrs(mnt.as_fd(), step.recursive_attrs, true, &step.destination)?;
    move_mount_fd(mnt.as_fd(), target.as_fd()).map_err(|source| RootfsError::Attach { dest: dest(), source })?;
    set_propagation(mnt.as_fd(), step.propagation, &step.destination)?;
    Ok(mnt)
}

/// A new filesystem through `fsopen`/`fsconfig`/`fsmount`, detached, with `attrs` set.
fn fs_context_mount(
    step: &MountStep,
    fstype: &str,
    source: &str,
    data: &[(String, Option<String>)],
    attrs: Attrs,
) -> Result<OwnedFd, RootfsError> {
    let dest = || step.destination.clone();
    let fs_err = |source| RootfsError::FsOpen { fstype: fstype.to_owned(), dest: dest(), source };
    let ctx = FsContext::open(&cstring(fstype).map_err(fs_err)?).map_err(fs_err)?;
    let opt_err = |option: String| {
        move |source| RootfsError::FsOption { fstype: fstype.to_owned(), dest: dest(), option, source }
    };
    let src = cstring(source).map_err(opt_err("source".into()))?;
    ctx.set_string(c"source", &src).map_err(opt_err(format!("source={source}")))?;
    for (key, value) in data {
        let k = cstring(key).map_err(opt_err(key.clone()))?;
        match value {
            None => ctx.set_flag(&k).map_err(opt_err(key.clone()))?,
            Some(v) => {
                let cv = cstring(v).map_err(opt_err(format!("{key}={v}")))?;
                ctx.set_string(&k, &cv).map_err(opt_err(format!("{key}={v}")))?;
            }
        }
    }
    ctx.mount(attrs.set).map_err(|source| RootfsError::FsMount { fstype: fstype.to_owned(), dest: dest(), source })
}

/// `type: cgroup`: cgroup2 on a unified host; on v1 a tmpfs holding a bind mount of the
/// container's own directory in each hierarchy (what runc builds).
fn mount_cgroup(root: BorrowedFd<'_>, step: &MountStep, view: &ContainerView) -> Result<(), RootfsError> {
    match view {
        ContainerView::Unified => {
            mount_fs(root, step, "cgroup2", "cgroup", step.attrs)?;
        }
        ContainerView::V1(hierarchies) => {
            let mut tmpfs_attrs = step.attrs;
            tmpfs_attrs.set &= !MOUNT_ATTR_RDONLY;
            let tmpfs_step = MountStep { data: vec![("mode".into(), Some("755".into()))], ..step.clone() };
            let tmpfs = mount_fs(root, &tmpfs_step, "tmpfs", "cgroup", tmpfs_attrs)?;
            let bind_attrs = Attrs {
                set: step.attrs.set & (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC),
                clr: 0,
            };
            for h in hierarchies {
                let sub = MountStep {
                    destination: format!("{}/{}", step.destination.trim_end_matches('/'), h.name),
                    dest: step.dest.join(&h.name),
                    kind: MountKind::Bind { source: h.host_dir.clone(), recursive: false },
                    attrs: bind_attrs,
                    recursive_attrs: Attrs::default(),
                    propagation: None,
                    data: Vec::new(),
                    no_symlinks: true,
                    copy_up: false,
                    cleared: 0,
                    idmap: None,
                };
                mount_bind(root, &sub, clone_source(&h.host_dir, false)?)?;
                if h.name.contains(',') {
                    for part in h.name.split(',') {
                        let link = step.dest.join(part.trim_start_matches("name="));
                        super::dev::symlink_in_root(root, &h.name, &link)?;
                    }
                }
            }
            if step.attrs.readonly() {
                set_attrs(tmpfs.as_fd(), Attrs { set: MOUNT_ATTR_RDONLY, clr: 0 }, false, &step.destination)?;
            }
        }
    }
    Ok(())
}

pub(super) fn set_attrs(mnt: BorrowedFd<'_>, attrs: Attrs, recursive: bool, dest: &str) -> Result<(), RootfsError> {
    if attrs.is_empty() {
        return Ok(());
    }
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let attr = MountAttr { attr_set: attrs.set, attr_clr: attrs.clr, ..MountAttr::default() };
    mount_setattr(mnt, c"", flags, &attr).map_err(|source| RootfsError::SetAttr { dest: dest.to_owned(), source })
}

fn set_propagation(mnt: BorrowedFd<'_>, propagation: Option<Propagation>, dest: &str) -> Result<(), RootfsError> {
    let Some(p) = propagation else { return Ok(()) };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if p.recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let attr = MountAttr { propagation: p.flag, ..MountAttr::default() };
    mount_setattr(mnt, c"", flags, &attr).map_err(|source| RootfsError::SetAttr { dest: dest.to_owned(), source })
}

fn cstring(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}
