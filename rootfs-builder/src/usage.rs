//! Who shares what in the store: per image, the bytes of layers no other image has (unique)
//! and of layers other images have too (shared), as `docker system df -v` shows them; per
//! bundle, what its own writable layer holds.

use std::collections::HashMap;
use std::path::Path;

use crate::digest::Digest;
use crate::store::{BundleRecord, ImageRecord};

/// Sizes of one image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImageSizes {
    pub size: u64,
    pub shared_size: u64,
    pub unique_size: u64,
}

/// Which images use each layer (by chain id).
#[derive(Debug, Default)]
pub struct LayerUsers {
    users: HashMap<Digest, Vec<Digest>>,
}

impl LayerUsers {
    pub fn new(images: &[ImageRecord]) -> Self {
        let mut users: HashMap<Digest, Vec<Digest>> = HashMap::new();
        for i in images {
            for l in &i.layers {
                let list = users.entry(l.chain_id.clone()).or_default();
                if !list.contains(&i.id) {
                    list.push(i.id.clone());
                }
            }
        }
        Self { users }
    }

    /// The images other than `image` that use the layer `chain`.
    pub fn others(&self, chain: &Digest, image: &Digest) -> Vec<Digest> {
        self.users.get(chain).map(|v| v.iter().filter(|i| *i != image).cloned().collect()).unwrap_or_default()
    }

    pub fn sizes(&self, image: &ImageRecord) -> ImageSizes {
        let mut s = ImageSizes::default();
        let mut seen = Vec::new();
        for l in &image.layers {
            // A layer repeated in one chain (the same diff twice has two chain ids; this only
            // guards against a corrupt record) counts once.
            if seen.contains(&l.chain_id) {
                continue;
            }
            seen.push(l.chain_id.clone());
            s.size += l.size;
            if self.others(&l.chain_id, &image.id).is_empty() {
                s.unique_size += l.size;
            } else {
                s.shared_size += l.size;
            }
        }
        s
    }
}

/// Bytes of file content and number of entries under `dir` (symlinks not followed).
pub fn tree_size(dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut entries = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            entries += 1;
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                bytes += m.len();
            }
        }
    }
    (bytes, entries)
}

/// The bundles of `image`.
pub fn bundles_of<'a>(bundles: &'a [BundleRecord], image: &Digest) -> Vec<&'a BundleRecord> {
    bundles.iter().filter(|b| b.image == *image).collect()
}
