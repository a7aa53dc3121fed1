//! Propagation of `/`, the rootfs bind, and the switch into it (`pivot_root`, or `MS_MOVE` +
//! `chroot` with `--no-pivot`).

use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

use super::{Rootfs, RootfsError};
use crate::spec::Propagation;

/// Make `/` (recursively) slave, or what `rootfsPropagation` asks, before any mount, so nothing
/// the container mounts propagates back to the host.
pub fn set_root_propagation(wanted: Option<Propagation>, rootfs: &Path) -> Result<(), RootfsError> {
    let (flag, name) = match wanted {
        // An unbindable / would refuse the rootfs bind: that one is applied after pivot_root.
        None => (MsFlags::MS_SLAVE | MsFlags::MS_REC, "rslave"),
        Some(p) if p.flag == libc::MS_UNBINDABLE => (MsFlags::MS_SLAVE | MsFlags::MS_REC, "rslave"),
        Some(p) => {
            let mut f = MsFlags::from_bits_retain(p.flag);
            if p.recursive {
                f |= MsFlags::MS_REC;
            }
            (f, propagation_name(p))
        }
    };
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>).map_err(|e| RootfsError::RootPropagation(name, e))?;
    if flag.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a new root whose parent mount is shared; like runc, make just that
        // parent private.
        if let Some(parent) = parent_mount_point(rootfs) {
            let private = MsFlags::MS_PRIVATE;
            mount(None::<&str>, parent.as_str(), None::<&str>, private, None::<&str>)
                .map_err(|e| RootfsError::RootPropagation("private (parent of the rootfs)", e))?;
        }
    }
    Ok(())
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

/// The mount point holding `path`: the longest mount point in mountinfo that is its prefix.
/// Only read in the rare shared case.
fn parent_mount_point(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|mp| path.starts_with(mp))
        .max_by_key(String::len)
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
    nix::unistd::fchdir(rootfs.fd.as_fd()).map_err(pivot_err)?;
    if no_pivot {
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(RootfsError::MoveRoot)?;
        nix::unistd::chroot(".").map_err(RootfsError::MoveRoot)?;
    } else {
        crate::sys::mount::pivot_root_dot().map_err(pivot_err)?;
        // The old root is now stacked on "."; make sure its unmount does not propagate to the
        // host, then drop it.
        mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
            .map_err(RootfsError::DetachOldRoot)?;
        umount2(".", MntFlags::MNT_DETACH).map_err(RootfsError::DetachOldRoot)?;
    }
    nix::unistd::chdir("/").map_err(pivot_err)?;
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

/// After pivot_root: give the container's `/` the propagation asked for where the bind of the
/// rootfs could not carry it (shared: a peer group of its own; unbindable).
pub fn finish_root_propagation(wanted: Option<Propagation>) -> Result<(), RootfsError> {
    let Some(p) = wanted.filter(|p| p.flag == libc::MS_SHARED || p.flag == libc::MS_UNBINDABLE) else {
        return Ok(());
    };
    let mut flag = MsFlags::from_bits_retain(p.flag);
    if p.recursive {
        flag |= MsFlags::MS_REC;
    }
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
        .map_err(|e| RootfsError::RootPropagation(propagation_name(p), e))
}
