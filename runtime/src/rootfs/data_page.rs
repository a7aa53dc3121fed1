//! Filesystem options `fsconfig` cannot take: it copies at most 255 bytes per string, while
//! `mount(2)` takes a whole page of comma-separated options (runc passes them that way: a long
//! overlay `lowerdir=` of many image layers, podman's `--mount type=image`). For those, the
//! filesystem is created with `mount(2)` — and still handed back as a detached mount, so the
//! caller sets its attributes and attaches it onto the resolved destination descriptor as for
//! any other mount:
//!
//! 1. a small scratch tmpfs is attached on the destination (by descriptor) and made our working
//!    directory;
//! 2. `mount(2)` creates the filesystem on the scratch's `m` (a name in a directory only we hold:
//!    nothing to resolve, no symlink to follow);
//! 3. `open_tree(OPEN_TREE_CLONE)` of it gives a detached mount of the same superblock;
//! 4. the scratch (and the mount on it) is detached again and the working directory restored.
//!
//! The container does not run yet, so nothing sees the scratch in between.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, mkdirat};

use crate::plan::mounts::Attrs;
use crate::sys::mount::{
    FsContext, MOUNT_ATTR__ATIME, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
    MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_STRICTATIME, OPEN_TREE_CLONE, move_mount_fd, open_tree,
};

/// The longest string `fsconfig(FSCONFIG_SET_STRING)` accepts (it copies 256 bytes, NUL included).
pub const FSCONFIG_MAX: usize = 255;

/// `mount(2)` copies one page of options, NUL included.
pub const DATA_PAGE_MAX: usize = 4095;

/// Whether every string fits `fsconfig`.
pub fn fits_fsconfig(source: &str, data: &[(String, Option<String>)]) -> bool {
    source.len() <= FSCONFIG_MAX
        && data.iter().all(|(k, v)| k.len() <= FSCONFIG_MAX && v.as_ref().is_none_or(|v| v.len() <= FSCONFIG_MAX))
}

/// The options as one `mount(2)` data string (`key=value,flag,...`, in order, as runc joins them).
pub fn data_string(data: &[(String, Option<String>)]) -> String {
    let parts: Vec<String> = data
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    parts.join(",")
}

/// Create `fstype` from `source` and `data` with `mount(2)` and return it as a detached mount with
/// the per-mount attributes in `attrs` (read-only aside: the caller sets it on the detached mount,
/// as `fsmount` would, without making the superblock read-only). `target` is the resolved
/// destination, used as the scratch's attach point.
pub fn mount_detached(
    target: BorrowedFd<'_>,
    fstype: &str,
    source: &str,
    data: &str,
    attrs: Attrs,
) -> nix::Result<OwnedFd> {
    let cstr = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
    let (fstype, source, data) = (cstr(fstype)?, cstr(source)?, cstr(data)?);
    let ctx = FsContext::open(c"tmpfs")?;
    ctx.set_string(c"size", c"4k")?;
    ctx.set_string(c"mode", c"700")?;
    let scratch = ctx.mount(0)?;
    mkdirat(scratch.as_fd(), "m", Mode::from_bits_truncate(0o700))?;
    let cwd = nix::fcntl::open(".", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    move_mount_fd(scratch.as_fd(), target)?;
    nix::unistd::fchdir(scratch.as_fd())?;
    let made = mount_and_clone(&fstype, &source, &data, attrs);
    // The scratch goes whatever happened: with MNT_DETACH it takes the mount on `m` along, while
    // the clone keeps the superblock alive.
    let detached = nix::mount::umount2(".", MntFlags::MNT_DETACH);
    let back = nix::unistd::fchdir(cwd.as_fd());
    let mnt = made?;
    detached?;
    back?;
    Ok(mnt)
}

fn mount_and_clone(fstype: &CString, source: &CString, data: &CString, attrs: Attrs) -> nix::Result<OwnedFd> {
    nix::mount::mount(Some(source.as_c_str()), "m", Some(fstype.as_c_str()), ms_flags(attrs), Some(data.as_c_str()))?;
    open_tree(crate::sys::at_fdcwd(), c"m", OPEN_TREE_CLONE)
}

/// The per-mount MOUNT_ATTR_* bits as mount(2) flags (read-only left to the caller).
fn ms_flags(attrs: Attrs) -> MsFlags {
    let mut flags = MsFlags::empty();
    for (attr, ms) in [
        (MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
        (MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
        (MOUNT_ATTR_NOEXEC, MsFlags::MS_NOEXEC),
        (MOUNT_ATTR_NODIRATIME, MsFlags::MS_NODIRATIME),
        (MOUNT_ATTR_NOSYMFOLLOW, MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)),
    ] {
        if attrs.set & attr != 0 {
            flags |= ms;
        }
    }
    match attrs.set & MOUNT_ATTR__ATIME {
        MOUNT_ATTR_NOATIME => flags |= MsFlags::MS_NOATIME,
        MOUNT_ATTR_STRICTATIME => flags |= MsFlags::MS_STRICTATIME,
        _ => {}
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_need_the_data_page() {
        let short = vec![("lowerdir".to_owned(), Some("/a:/b".to_owned())), ("ro".to_owned(), None)];
        assert!(fits_fsconfig("overlay", &short));
        assert_eq!(data_string(&short), "lowerdir=/a:/b,ro");
        let long = vec![("lowerdir".to_owned(), Some("x".repeat(256)))];
        assert!(!fits_fsconfig("overlay", &long));
        assert!(fits_fsconfig("overlay", &[("lowerdir".to_owned(), Some("x".repeat(255)))]));
        assert!(!fits_fsconfig(&"s".repeat(256), &short));
    }

    #[test]
    fn attributes_become_mount_flags() {
        let attrs =
            Attrs { set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME | crate::sys::mount::MOUNT_ATTR_RDONLY, clr: 0 };
        assert_eq!(ms_flags(attrs), MsFlags::MS_NOSUID | MsFlags::MS_NOATIME);
    }
}
