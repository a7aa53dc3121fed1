//! `pull`: import an image into the store. Its documents are verified by the source
//! ([`crate::source`]); each layer the store lacks is unpacked by a [`LayerJob`]; then the image
//! and its reference are recorded.

use std::sync::Arc;

use serde::Serialize;

use crate::digest::Digest;
use crate::extract::OverlayXattrs;
use crate::layer::{self, LayerJob, chain_ids};
use crate::progress::Progress;
use crate::source::{self, Platform, Resolved, SourceSpec, media};
use crate::store::{self, ImageLayer, ImageRecord, Store};
use crate::timefmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] source::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Layer(#[from] layer::Error),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub platform: Platform,
    pub overlay: OverlayXattrs,
    pub progress: Arc<dyn Progress>,
}

/// What a pull did.
#[derive(Debug, Clone, Serialize)]
pub struct Pulled {
    pub id: Digest,
    pub reference: Option<String>,
    pub layers: usize,
    /// Layers unpacked by this pull; the others were already in the store.
    pub unpacked: usize,
}

/// Import the image `spec` names. The caller holds the store lock shared.
pub fn pull(store: &Store, spec: &SourceSpec, opts: &Options) -> Result<Pulled, Error> {
    let resolved = source::resolve(spec, &opts.platform)?;
    import(store, &resolved, &spec.path.display().to_string(), opts)
}

/// Import an image whose documents are verified (`resolved`): unpack the layers the store lacks,
/// record the image (as coming from `source`) and its reference.
pub fn import(store: &Store, resolved: &Resolved, source: &str, opts: &Options) -> Result<Pulled, Error> {
    let diff_ids: Vec<Digest> = resolved.layers.iter().map(|l| l.diff_id.clone()).collect();
    let chains = chain_ids(&diff_ids);
    let total = resolved.layers.len();
    let mut layers = Vec::with_capacity(total);
    let mut unpacked = 0;
    for (i, (layer, chain)) in resolved.layers.iter().zip(&chains).enumerate() {
        let label = format!("layer {}/{total}", i + 1);
        let job = LayerJob {
            store,
            index: i + 1,
            layer,
            chain,
            lower: &chains[..i],
            overlay: opts.overlay,
            progress: &opts.progress,
            label: &label,
        };
        let layer::Ensured { record: rec, fresh } =
            job.ensure(|| resolved.files.open(&layer.path, layer.size).map_err(source::Error::from))?;
        unpacked += usize::from(fresh);
        layers.push(ImageLayer {
            chain_id: rec.chain_id,
            diff_id: rec.diff_id,
            blob: rec.blob,
            blob_size: rec.blob_size,
            media_type: rec.media_type,
            size: rec.stats.bytes,
        });
    }

    let (manifest_digest, manifest_bytes) = match &resolved.manifest {
        Some(m) => m.clone(),
        None => synthesize_manifest(resolved, &layers),
    };
    store.put_blob(&resolved.config_digest, &resolved.config_bytes)?;
    store.put_blob(&manifest_digest, &manifest_bytes)?;
    let config = &resolved.config;
    let platform = match config.variant() {
        Some(v) => format!("{}/{}/{v}", config.os(), config.architecture()),
        None => format!("{}/{}", config.os(), config.architecture()),
    };
    let rec = ImageRecord {
        id: resolved.config_digest.clone(),
        manifest: manifest_digest,
        config: resolved.config_digest.clone(),
        layers,
        platform,
        source: source.to_string(),
        pulled: timefmt::unix_now(),
    };
    {
        let _names = store.lock_names()?;
        store.put_image(&rec)?;
        if let Some(r) = &resolved.reference {
            store.set_ref(r, &rec.id)?;
        }
    }
    Ok(Pulled { id: rec.id, reference: resolved.reference.clone(), layers: total, unpacked })
}

/// An OCI manifest for a source that has none (Docker archive), from the verified blobs.
fn synthesize_manifest(resolved: &Resolved, layers: &[ImageLayer]) -> (Digest, Vec<u8>) {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Desc<'a> {
        media_type: &'a str,
        digest: &'a Digest,
        size: u64,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Manifest<'a> {
        schema_version: u32,
        media_type: &'a str,
        config: Desc<'a>,
        layers: Vec<Desc<'a>>,
    }
    let m = Manifest {
        schema_version: 2,
        media_type: media::OCI_MANIFEST,
        config: Desc {
            media_type: media::OCI_CONFIG,
            digest: &resolved.config_digest,
            size: resolved.config_bytes.len() as u64,
        },
        layers: layers.iter().map(|l| Desc { media_type: &l.media_type, digest: &l.blob, size: l.blob_size }).collect(),
    };
    // Serialising plain strings and numbers cannot fail.
    let bytes = serde_json::to_vec(&m).unwrap_or_default();
    (Digest::sha256_of(&bytes), bytes)
}
