//! `strata-rootfs`: container images (OCI layout, OCI archive, `docker save`) into OCI runtime
//! bundles over a content-addressed layer store with overlayfs.

pub mod args;
pub mod bundle;
pub mod commit;
pub mod digest;
pub mod error_chain;
pub mod export;
pub mod extract;
pub mod flatten;
pub mod flatten_source;
pub mod fsutil;
pub mod gc;
pub mod inuse;
pub mod layer;
pub mod merged;
pub mod overlay;
pub mod progress;
pub mod pull;
pub mod push;
pub mod registry;
pub mod source;
pub mod spec;
pub mod store;
pub mod sys;
pub mod timefmt;
pub mod usage;
pub mod user;
pub mod warning;
