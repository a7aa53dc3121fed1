//! Extended attributes on open descriptors, shared with strata-rootfs (`strata-syscalls`): the
//! tmpfs copy-up keeps them.

pub use strata_syscalls::xattr::{fget, flist, fset};
