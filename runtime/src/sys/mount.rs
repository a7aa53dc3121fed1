//! The new mount API (open_tree, move_mount, mount_setattr, fsopen/fsconfig/fsmount): every
//! mount is made on a file descriptor, so no path can be swapped for a symlink in between. The
//! wrappers are shared with strata-rootfs (`strata-syscalls`).

pub use strata_syscalls::mount::*;

/// `pivot_root(".", ".")` after `fchdir` into the new root: stacks the old root on top of the new
/// one, so it can be unmounted without any path naming it.
pub fn pivot_root_dot() -> nix::Result<()> {
    nix::unistd::pivot_root(".", ".")
}
