//! What the store records about layers, images and bundles (JSON files).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::extract::{OverlayXattrs, Stats};

/// `layers/<chain-hex>/layer.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    /// The chain id of the layer below, `None` for the bottom layer.
    pub parent: Option<Digest>,
    /// The blob it was unpacked from, as stored under `blobs/`.
    pub blob: Digest,
    pub blob_size: u64,
    pub media_type: String,
    /// Size of the uncompressed tar stream.
    pub tar_size: u64,
    pub stats: Stats,
    pub overlay: OverlayXattrs,
}

/// One layer of an image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageLayer {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub blob: Digest,
    pub blob_size: u64,
    pub media_type: String,
    /// Bytes of file content the layer holds unpacked.
    pub size: u64,
}

/// `images/<config-hex>.json`: the image id is its configuration's digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest: Digest,
    pub config: Digest,
    /// Bottom layer first, as in the manifest.
    pub layers: Vec<ImageLayer>,
    pub platform: String,
    /// Where it was pulled from.
    pub source: String,
    /// Seconds since the epoch when it was pulled.
    pub pulled: u64,
}

impl ImageRecord {
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Chain ids, bottom first.
    pub fn chain(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.chain_id.clone()).collect()
    }
}

/// `bundles/<name>.json`, also written as `strata-bundle.json` in the bundle directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleRecord {
    pub name: String,
    /// The bundle directory (holds `config.json` and `rootfs`).
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub image: Digest,
    /// Chain ids of the image layers, bottom first.
    pub chain: Vec<Digest>,
    /// `overlay` or `flatten`.
    pub kind: BundleKind,
    pub readonly: bool,
    /// Per-bundle directories: writable layer, overlay work dir, init layer, volumes.
    pub upper: PathBuf,
    pub work: PathBuf,
    pub init: PathBuf,
    pub volumes: PathBuf,
    /// Read-only overlays stacked under the bundle's own when the chain is longer than one
    /// overlay takes (mounted in this order, unmounted in reverse).
    pub inner_mounts: Vec<PathBuf>,
    /// Files of the init layer (relative to the rootfs), never to be committed.
    pub init_files: Vec<String>,
    pub created: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BundleKind {
    Overlay,
    Flatten,
}
