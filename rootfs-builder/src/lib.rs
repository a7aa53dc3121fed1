//! `strata-rootfs`: container images (OCI layout, OCI archive, `docker save`) into OCI runtime
//! bundles over a content-addressed layer store with overlayfs.

pub mod digest;
pub mod source;
pub mod extract;
pub mod fsutil;
pub mod sys;
