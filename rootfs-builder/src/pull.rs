//! `pull`: import an image into the store. Its documents are verified by the source
//! ([`crate::source`]); each layer the store lacks is unpacked by a [`LayerJob`]; then the image
//! and its reference are recorded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use serde::Serialize;

use crate::digest::Digest;
use crate::extract::OverlayXattrs;
use crate::layer::{self, LayerJob, chain_ids};
use crate::progress::Progress;
use crate::registry::client::Access;
use crate::registry::fetch;
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
    #[error(transparent)]
    Registry(#[from] fetch::Error),
    #[error("not every layer was unpacked, and no layer reported why")]
    Incomplete,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub platform: Platform,
    pub overlay: OverlayXattrs,
    pub progress: Arc<dyn Progress>,
    /// Layers fetched and unpacked at the same time (1: one after the other, on this thread).
    pub jobs: usize,
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

/// Pull `typed` (a qualified reference or a short name) from its registry: only the layers the
/// store lacks are fetched, `opts.jobs` at a time, each streamed straight into its unpacking.
pub fn pull_registry(store: &Store, access: &Access, typed: &str, opts: &Options) -> Result<Pulled, Error> {
    let fetched = fetch::resolve(access, typed, &opts.platform)?;
    import(store, &fetched.resolved, &fetched.source, opts)
}

/// Import an image whose documents are verified (`resolved`): unpack the layers the store lacks,
/// record the image (as coming from `source`) and its reference.
pub fn import(store: &Store, resolved: &Resolved, source: &str, opts: &Options) -> Result<Pulled, Error> {
    let diff_ids: Vec<Digest> = resolved.layers.iter().map(|l| l.diff_id.clone()).collect();
    let chains = chain_ids(&diff_ids);
    let total = resolved.layers.len();
    let ensured = ensure_layers(store, resolved, &chains, opts)?;
    let unpacked = ensured.iter().filter(|e| e.fresh).count();
    let layers: Vec<ImageLayer> = ensured
        .into_iter()
        .map(|e| {
            let rec = e.record;
            ImageLayer {
                chain_id: rec.chain_id,
                diff_id: rec.diff_id,
                blob: rec.blob,
                blob_size: rec.blob_size,
                media_type: rec.media_type,
                size: rec.stats.bytes,
            }
        })
        .collect();

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

/// How far each layer of an import is, for layers waiting on the ones below them.
#[derive(Debug, Default)]
struct Board {
    /// Per layer: `None` in progress or waiting, `Some(ok)` finished.
    done: Mutex<Vec<Option<bool>>>,
    changed: Condvar,
}

impl Board {
    fn finish(&self, i: usize, ok: bool) {
        let mut d = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        d[i] = Some(ok);
        self.changed.notify_all();
    }

    fn any_failed(&self) -> bool {
        self.done.lock().unwrap_or_else(PoisonError::into_inner).contains(&Some(false))
    }

    /// Wait until every layer below `i` is finished; false if one failed.
    fn wait_below(&self, i: usize) -> bool {
        let mut d = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if d[..i].contains(&Some(false)) {
                return false;
            }
            if d[..i].iter().all(Option::is_some) {
                return true;
            }
            d = self.changed.wait(d).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Every layer in the store, `opts.jobs` at a time: each worker takes the lowest layer not yet
/// taken, so a layer waiting for those below it (see [`LayerJob::lower_ready`]) only waits for
/// work in progress. After a failure no new layer is started; the lowest failure is reported.
fn ensure_layers(
    store: &Store,
    resolved: &Resolved,
    chains: &[Digest],
    opts: &Options,
) -> Result<Vec<layer::Ensured>, Error> {
    let total = resolved.layers.len();
    let board = Board { done: Mutex::new(vec![None; total]), changed: Condvar::new() };
    let results: Vec<Mutex<Option<Result<layer::Ensured, layer::Error>>>> =
        (0..total).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            if board.any_failed() {
                return;
            }
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= total {
                return;
            }
            let layer = &resolved.layers[i];
            let label = format!("layer {}/{total}", i + 1);
            let ready = || board.wait_below(i);
            let job = LayerJob {
                store,
                index: i + 1,
                layer,
                chain: &chains[i],
                lower: &chains[..i],
                overlay: opts.overlay,
                progress: &opts.progress,
                label: &label,
                lower_ready: &ready,
            };
            let r = job.ensure(|| resolved.blobs.open(layer));
            board.finish(i, r.is_ok());
            *results[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        }
    };
    let jobs = opts.jobs.clamp(1, total.max(1));
    if jobs == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| {
                    // Unpacking sets the umask to 0 while it runs: each worker gets its own.
                    match nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS) {
                        Ok(()) => work(),
                        Err(e) => board_fail(&board, &results, &next, total, e),
                    }
                });
            }
        });
    }
    let mut out = Vec::with_capacity(total);
    for r in results {
        match r.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(Ok(e)) => out.push(e),
            Some(Err(e)) => return Err(e.into()),
            // Not started because a layer failed: that failure is reported above.
            None => {}
        }
    }
    if out.len() != total {
        return Err(Error::Incomplete);
    }
    Ok(out)
}

/// A worker that cannot get a private umask takes one layer and fails it, which stops the rest.
fn board_fail(
    board: &Board,
    results: &[Mutex<Option<Result<layer::Ensured, layer::Error>>>],
    next: &AtomicUsize,
    total: usize,
    e: nix::Error,
) {
    let i = next.fetch_add(1, Ordering::SeqCst);
    if i < total {
        board.finish(i, false);
        *results[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(Err(layer::Error::Worker(e)));
    }
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
