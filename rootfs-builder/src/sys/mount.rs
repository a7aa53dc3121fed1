//! The new mount API (fsopen/fsconfig/fsmount/move_mount), shared with the runtime
//! (`strata-syscalls`). `fsconfig` takes one lower directory per call (`lowerdir+`, Linux 6.8),
//! which lifts the one-page limit on `mount(2)` options that stops long layer chains near 30
//! layers.

pub use strata_syscalls::mount::{FsContext, MOUNT_ATTR_RDONLY, move_mount_fd};
