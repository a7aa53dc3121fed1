//! `flatten` of an image the store does not hold: its layers are streamed from the source
//! straight into the destination, bottom first, each applied onto what the layers below left
//! ([`extract::apply_layer_merged`]), so every byte of the image is written once, where it ends
//! up. The store is not touched (pulling first, then copying out of the store, writes everything
//! twice: the flat tree is about as large as the layers).
//!
//! Every layer is verified as it streams (blob digest and size, diff_id), exactly as by `pull`;
//! a mismatch, like any other failure, removes what was written.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::digest::{Algorithm, Digest, DigestReader};
use crate::extract::{self, MergedTree};
use crate::flatten::{self, Stats};
use crate::layer::{self, Failure};
use crate::progress::{Event, Progress};
use crate::source::{self, Resolved};
use crate::warning::Warning;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Dest(#[from] flatten::Error),
    #[error(transparent)]
    Source(#[from] source::Error),
    #[error(transparent)]
    Layer(#[from] layer::Error),
    #[error("applying the directories' modes and times")]
    Finish(#[source] extract::Error),
}

/// Write the final filesystem of `image` into `dir` (created; or an existing empty directory).
/// On failure what was written is removed again; `warn` hears about what could not be.
pub fn flatten_resolved(
    image: &Resolved,
    dir: &Path,
    progress: &Arc<dyn Progress>,
    warn: &dyn Fn(Warning),
) -> Result<Stats, Error> {
    let created = flatten::prepare_dest(dir)?;
    let res = apply_all(image, dir, progress, warn);
    if res.is_err() {
        flatten::undo_dest(dir, created, warn);
    }
    res
}

fn apply_all(
    image: &Resolved,
    dir: &Path,
    progress: &Arc<dyn Progress>,
    warn: &dyn Fn(Warning),
) -> Result<Stats, Error> {
    let dest = nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| flatten::Error::CreateDest(dir.display().to_string(), e.into()))?;
    let mut tree = MergedTree::new(dest.as_fd());
    let mut stats = Stats::default();
    let total = image.layers.len();
    for (i, layer) in image.layers.iter().enumerate() {
        let index = i + 1;
        let label = format!("layer {index}/{total}");
        let id = layer.diff_id.short().to_string();
        let (src, src_size) = image.blobs.open(layer)?;
        progress.event(&Event::Start { id: &id, what: &label, total: layer.size.or(src_size) });
        let alg = layer.digest.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
        let p = Arc::clone(progress);
        let bytes_id = id.clone();
        let raw = DigestReader::new(src, alg)
            .with_progress(Box::new(move |done| p.event(&Event::Bytes { id: &bytes_id, done })));
        let streamed = layer::stream_layer(layer, index, raw, |tar| {
            extract::apply_layer_merged(tar, &mut tree).map_err(Failure::Unpack)
        })?;
        layer::check(layer, index, &streamed)?;
        layer::warn_skipped(warn, &label, &streamed.stats);
        progress.event(&Event::Done { id: &id, what: &label, status: "applied" });
        stats.files += streamed.stats.files;
        stats.bytes += streamed.stats.bytes;
    }
    tree.finish().map_err(Error::Finish)?;
    Ok(stats)
}
