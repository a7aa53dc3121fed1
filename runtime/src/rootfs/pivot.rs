//! Propagation of `/`, the rootfs bind, and the switch into it (`pivot_root`, or `MS_MOVE` +
//! `chroot` with `--no-pivot`).

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

use super::{Rootfs, RootfsError};
use crate::plan::Propagation;
use crate::sys::mount::{MountAttr, mount_setattr};

/// Before any mount, in runc's order (`prepareRoot`): give `/` the propagation asked for
/// (default `rslave`, so nothing the container mounts reaches the host), then make the mount
/// holding the rootfs a slave if it is still shared (`pivot_root` refuses a shared parent, and the
/// rootfs bind must not reach the host). A `shared` or non-recursive value leaves the host's
/// shared mounts in their peer groups, so a bind of one with `rshared` propagates the container's
/// mounts back, as runc does. runc makes that parent private; a slave still receives the host's
/// mounts, which the container's `/` keeps when it is to be a slave ([`finish_root_propagation`]).
/// `unbindable` is not applied here (it would forbid binding the rootfs and every bind source
/// under `/`): `/` is made `rslave` and the container's `/` unbindable after `pivot_root`.
pub fn set_root_propagation(wanted: Option<Propagation>, rootfs: &Path) -> Result<(), RootfsError> {
    let early = wanted.filter(|p| p.flag != libc::MS_UNBINDABLE);
    let (flag, name) = match early {
        Some(p) => (MsFlags::from_bits_retain(p.flag) | rec(p), propagation_name(p)),
        None => (MsFlags::MS_SLAVE | MsFlags::MS_REC, "rslave"),
    };
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>).map_err(|e| RootfsError::RootPropagation(name, e))?;
    // After a recursive slave or private nothing is shared: no need to read the mount table.
    let all_unshared = flag.contains(MsFlags::MS_REC) && !flag.contains(MsFlags::MS_SHARED);
    if !all_unshared {
        let real = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_owned());
        if let Some(parent) = parent_mount(&real)?.filter(|m| m.shared) {
            mount(None::<&str>, parent.point.as_str(), None::<&str>, MsFlags::MS_SLAVE, None::<&str>)
                .map_err(|e| RootfsError::RootPropagation("slave (the mount holding the rootfs)", e))?;
        }
    }
    Ok(())
}

fn rec(p: Propagation) -> MsFlags {
    if p.recursive { MsFlags::MS_REC } else { MsFlags::empty() }
}

fn propagation_name(p: Propagation) -> &'static str {
    match (p.flag, p.recursive) {
        (libc::MS_SHARED, true) => "rshared",
        (libc::MS_SHARED, false) => "shared",
        (libc::MS_PRIVATE, true) => "rprivate",
        (libc::MS_PRIVATE, false) => "private",
        (libc::MS_UNBINDABLE, true) => "runbindable",
        (libc::MS_UNBINDABLE, false) => "unbindable",
        (_, true) => "rslave",
        _ => "slave",
    }
}

/// One line of `/proc/self/mountinfo`, the fields the runtime looks at.
struct MountInfo {
    point: String,
    root: String,
    fstype: String,
    shared: bool,
}

fn mountinfo() -> Result<Vec<MountInfo>, RootfsError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RootfsError::MountInfo(e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)))?;
    Ok(info
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            Some(MountInfo {
                root: unescape_mountinfo(fields.get(3)?),
                point: unescape_mountinfo(fields.get(4)?),
                shared: fields.iter().skip(6).any(|f| f.starts_with("shared:")),
                fstype: after.split(' ').next()?.to_owned(),
            })
        })
        .collect())
}

/// The mount holding `path`: the last of the longest mount points in mountinfo that are its
/// prefix (the last is the one on top). Only read when `/` may still hold shared mounts.
fn parent_mount(path: &Path) -> Result<Option<MountInfo>, RootfsError> {
    let mut best: Option<MountInfo> = None;
    for m in mountinfo()? {
        if path.starts_with(&m.point) && best.as_ref().is_none_or(|b| m.point.len() >= b.point.len()) {
            best = Some(m);
        }
    }
    Ok(best)
}

/// mountinfo escapes space, tab, newline and backslash as octal `\NNN`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            out.push((bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bind the rootfs onto itself (recursively) and open the new mount.
pub fn bind_rootfs(path: &Path) -> Result<Rootfs, RootfsError> {
    mount(Some(path), path, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(|source| RootfsError::BindRootfs { path: path.to_owned(), source })?;
    let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|source| RootfsError::OpenRootfs { path: path.to_owned(), source })?;
    Ok(Rootfs { path: path.to_owned(), fd })
}

/// Make the rootfs the process's `/`.
pub fn enter_root(rootfs: &Rootfs, no_pivot: bool) -> Result<(), RootfsError> {
    let pivot_err = |source| RootfsError::PivotRoot { path: rootfs.path.clone(), source };
    // The old root, held by descriptor: after pivot_root "." still names the new root (only
    // umount follows to the mount stacked on it), so a propagation change through "." would hit
    // the container's own mounts.
    let old_root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(pivot_err)?;
    nix::unistd::fchdir(rootfs.fd.as_fd()).map_err(pivot_err)?;
    if no_pivot {
        hide_full_proc_and_sysfs(&rootfs.path)?;
        // The rootfs is moved onto `/`: a `/` still shared with the host (rootfsPropagation
        // shared) would carry the move there.
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_SLAVE, None::<&str>).map_err(RootfsError::MoveRoot)?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(RootfsError::MoveRoot)?;
        nix::unistd::chroot(".").map_err(RootfsError::MoveRoot)?;
    } else {
        crate::sys::mount::pivot_root_dot().map_err(pivot_err)?;
        // The old root is now stacked on "."; make sure its unmount does not propagate to the
        // host, then drop it.
        let slave = MountAttr { propagation: libc::MS_SLAVE, ..MountAttr::default() };
        let flags = libc::AT_EMPTY_PATH as u32 | libc::AT_RECURSIVE as u32;
        mount_setattr(old_root.as_fd(), c"", flags, &slave).map_err(RootfsError::DetachOldRoot)?;
        drop(old_root);
        umount2(".", MntFlags::MNT_DETACH).map_err(RootfsError::DetachOldRoot)?;
    }
    nix::unistd::chdir("/").map_err(pivot_err)?;
    Ok(())
}

/// `--no-pivot` leaves the old root in the container's mount namespace, under the rootfs: the
/// kernel lets a user namespace mount a new procfs or sysfs when the mount namespace holds a fully
/// visible one (`mnt_already_visible`), and the host's `/proc` would be one, so the container
/// could mount a fresh `/proc` without the masked paths. As runc's `msMoveRoot`: every full proc
/// and sysfs mount outside the rootfs is made a slave (its unmount must not reach the host) and
/// detached, or covered with an empty tmpfs where it cannot be unmounted (locked in a user
/// namespace). Host paths from the host's own mount table, before the container runs.
fn hide_full_proc_and_sysfs(rootfs: &Path) -> Result<(), RootfsError> {
    let err = |path: &str| {
        let path = path.to_owned();
        move |source| RootfsError::HideHostMount { path, source }
    };
    // mountinfo names mount points by their real path.
    let rootfs = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_owned());
    for m in mountinfo()? {
        if m.root != "/" || (m.fstype != "proc" && m.fstype != "sysfs") || Path::new(&m.point).starts_with(&rootfs) {
            continue;
        }
        let point = m.point.as_str();
        match mount(None::<&str>, point, None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>) {
            Ok(()) => {}
            // Gone with a mount above it, detached earlier.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(err(point)(e)),
        }
        match umount2(point, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => {
                mount(Some("tmpfs"), point, Some("tmpfs"), MsFlags::empty(), None::<&str>).map_err(err(point))?
            }
            Err(e) => return Err(err(point)(e)),
        }
    }
    Ok(())
}

/// Without a mount namespace: just `chroot` into the rootfs (nothing can be mounted without
/// changing the caller's mount table).
pub fn chroot_into(path: &Path) -> Result<(), RootfsError> {
    let err = |source| RootfsError::PivotRoot { path: path.to_owned(), source };
    nix::unistd::chdir(path).map_err(err)?;
    nix::unistd::chroot(".").map_err(err)?;
    nix::unistd::chdir("/").map_err(err)
}

/// After pivot_root: give the container's `/` the propagation asked for (a shared `/` gets a
/// peer group of its own).
pub fn finish_root_propagation(wanted: Option<Propagation>) -> Result<(), RootfsError> {
    let Some(p) = wanted else { return Ok(()) };
    let mut flag = MsFlags::from_bits_retain(p.flag);
    if p.recursive {
        flag |= MsFlags::MS_REC;
    }
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
        .map_err(|e| RootfsError::RootPropagation(propagation_name(p), e))
}
