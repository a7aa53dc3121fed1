//! `pull`: import an image into the store. Every digest is verified while streaming; each layer
//! not already there is unpacked exactly once (under a per-layer lock) into `tmp/` and renamed
//! into place only once its blob digest, size and diff_id all check out.

use std::cell::OnceCell;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::mpsc;

use nix::sys::time::TimeSpec;

use serde::Serialize;

use crate::digest::{Algorithm, Digest, DigestReader};
use crate::extract::{self, DirMeta, OverlayXattrs};
use crate::fsutil;
use crate::merged::MergedView;
use crate::progress::Progress;
use crate::source::{self, Compression, LayerSource, Platform, Resolved, SourceSpec, media};
use crate::store::{self, ImageLayer, ImageRecord, LayerRecord, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Source(#[from] source::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("layer {index} ({what}): unpacking")]
    Unpack {
        index: usize,
        what: String,
        #[source]
        source: extract::Error,
    },
    #[error("layer {index} ({what}): reading the blob")]
    ReadLayer {
        index: usize,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {index}: blob does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { index: usize, expected: Digest, actual: Digest },
    #[error("layer {index}: blob has {actual} bytes where the manifest says {expected}")]
    SizeMismatch { index: usize, expected: u64, actual: u64 },
    #[error("layer {index}: uncompressed content does not match its diff_id: expected {expected}, got {actual}")]
    DiffIdMismatch { index: usize, expected: Digest, actual: Digest },
    #[error("layer {index}: preparing {path}")]
    Prepare {
        index: usize,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct Options {
    pub platform: Platform,
    pub overlay: OverlayXattrs,
    pub progress: Progress,
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

/// `ChainID(L0) = DiffID(L0)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::sha256_of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
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
        let label = format!("layer {}/{total} {}", i + 1, layer.diff_id.short());
        let (rec, fresh) = ensure_layer(store, resolved, i + 1, layer, chain, &chains[..i], opts, &label)?;
        opts.progress.done(&label, if fresh { "unpacked" } else { "already in the store" });
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
        pulled: now(),
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

/// Decompress what `raw` yields (sniffing the compression when the source does not say) and
/// send it on in chunks; returns the compression used.
fn decompress<R: Read>(
    raw: &mut R,
    known: Option<Compression>,
    tx: &mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<Compression> {
    let mut buffered = BufReader::with_capacity(CHUNK, raw);
    let c = match known {
        Some(c) => c,
        None => Compression::sniff(buffered.fill_buf()?),
    };
    let mut decoder: Box<dyn Read> = match c {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(buffered)?),
    };
    loop {
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0;
        // Fill the chunk: fewer, larger hand-overs between the threads.
        while n < CHUNK {
            match decoder.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            return Ok(c);
        }
        buf.truncate(n);
        if tx.send(Ok(buf)).is_err() {
            // The unpacking side stopped (and reports why).
            return Ok(c);
        }
    }
}

const CHUNK: usize = 256 * 1024;

/// The receiving end of [`decompress`], as a reader.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvError) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

enum Failure {
    Unpack(extract::Error),
    Read(io::Error),
}

/// Copies what is read into a file (the blob being stored).
struct Tee<R> {
    inner: R,
    out: File,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[allow(clippy::too_many_arguments)]
fn ensure_layer(
    store: &Store,
    resolved: &Resolved,
    index: usize,
    layer: &LayerSource,
    chain: &Digest,
    lower_chain: &[Digest],
    opts: &Options,
    label: &str,
) -> Result<(LayerRecord, bool), Error> {
    if let Some(rec) = store.layer(chain)? {
        return Ok((rec, false));
    }
    let _lock = store.lock_layer(chain)?;
    if let Some(rec) = store.layer(chain)? {
        return Ok((rec, false));
    }
    // A killed pull of this layer may have left its work behind: it was never trusted.
    let work = store.tmp_dir().join(format!("layer-{}", chain.hex()));
    store::remove_best_effort(&work);
    let prepare = |path: &PathBuf, e| Error::Prepare { index, path: path.clone(), source: e };
    let diff = work.join("diff");
    fs::create_dir_all(&diff).map_err(|e| prepare(&diff, e))?;
    let result = unpack_into(store, resolved, index, layer, chain, lower_chain, opts, label, &work);
    match result {
        Ok(rec) => Ok((rec, true)),
        Err(e) => {
            store::remove_best_effort(&work);
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn unpack_into(
    store: &Store,
    resolved: &Resolved,
    index: usize,
    layer: &LayerSource,
    chain: &Digest,
    lower_chain: &[Digest],
    opts: &Options,
    label: &str,
    work: &std::path::Path,
) -> Result<LayerRecord, Error> {
    let prepare = |path: PathBuf, e| Error::Prepare { index, path, source: e };
    let what = layer.path.clone();
    let read_err = |e| Error::ReadLayer { index, what: what.clone(), source: e };
    let diff = work.join("diff");
    let diff_fd = File::open(&diff).map_err(|e| prepare(diff.clone(), e))?;
    let blob_tmp = work.join("blob");
    let blob_file = File::create(&blob_tmp).map_err(|e| prepare(blob_tmp.clone(), e))?;

    let (src, src_size) = resolved.files.open(&layer.path, layer.size).map_err(source::Error::from)?;
    let alg = layer.digest.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
    let mut raw = DigestReader::new(Tee { inner: src, out: blob_file }, alg);
    if let Some(cb) = opts.progress.layer(label.to_string(), layer.size.or(src_size)) {
        raw = raw.with_progress(cb);
    }

    // Decompression (and the blob's digest) on a second thread, unpacking on this one.
    let (produced, extracted) = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(8);
        let known = layer.compression;
        let producer = scope.spawn(move || {
            let res = decompress(&mut raw, known, &tx);
            if let Err(e) = &res
                && tx.send(Err(io::Error::new(e.kind(), e.to_string()))).is_err()
            {
                // The unpacking side has stopped already; it reports its own error.
            }
            drop(tx);
            // Whatever happened, hash the whole blob: a digest mismatch explains most failures.
            let drained = raw.drain();
            (res, drained, raw.finish())
        });
        let mut tar_stream =
            DigestReader::new(ChannelReader { rx, cur: Vec::new(), pos: 0 }, layer.diff_id.algorithm());
        // The layers below, opened only if the archive leaves out a parent directory.
        let lower_view: OnceCell<Option<MergedView>> = OnceCell::new();
        let lookup = |path: &[u8]| -> Option<DirMeta> {
            let view = lower_view.get_or_init(|| MergedView::open(store, lower_chain, opts.overlay).ok());
            let (_, st) = view.as_ref()?.lookup_bytes(path)?;
            fsutil::is_dir(&st).then(|| DirMeta {
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
                mtime: TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
            })
        };
        let extract_opts = extract::Options {
            overlay: opts.overlay,
            lower: if lower_chain.is_empty() { None } else { Some(&lookup) },
        };
        let result = extract::apply_layer(&mut tar_stream, diff_fd.as_fd(), &extract_opts);
        // The receiving end must be gone before joining, or a producer blocked on a full
        // channel would never finish.
        let extracted = match result.map(|stats| (stats, tar_stream.drain())) {
            Ok((stats, Ok(()))) => Ok((stats, tar_stream.finish())),
            Ok((_, Err(e))) => {
                drop(tar_stream);
                Err(Failure::Read(e))
            }
            Err(e) => {
                drop(tar_stream);
                Err(Failure::Unpack(e))
            }
        };
        (producer.join(), extracted)
    });
    let (compression, drained, (actual, size)) = match produced {
        Ok(v) => v,
        Err(_) => return Err(read_err(io::Error::other("the decompression thread panicked"))),
    };
    if let Some(expected) = &layer.digest
        && drained.is_ok()
        && actual != *expected
    {
        return Err(Error::DigestMismatch { index, expected: expected.clone(), actual });
    }
    let compression = compression.map_err(read_err)?;
    let (stats, (diff_id, tar_size)) = match extracted {
        Ok(v) => v,
        Err(Failure::Unpack(e)) => return Err(Error::Unpack { index, what, source: e }),
        Err(Failure::Read(e)) => return Err(read_err(e)),
    };
    drained.map_err(read_err)?;
    if let Some(expected) = layer.size
        && expected != size
    {
        return Err(Error::SizeMismatch { index, expected, actual: size });
    }
    if diff_id != layer.diff_id {
        return Err(Error::DiffIdMismatch { index, expected: layer.diff_id.clone(), actual: diff_id });
    }

    let blob = actual;
    let blob_path = store.blob_path(&blob);
    if blob_path.exists() {
        // Already stored (a commit imports from the store's own blobs): not kept twice.
        fs::remove_file(&blob_tmp).map_err(|e| prepare(blob_tmp.clone(), e))?;
    } else {
        fs::rename(&blob_tmp, &blob_path).map_err(|e| prepare(blob_path.clone(), e))?;
    }
    let media_type =
        if layer.media_type.is_empty() { compression.media_type().to_string() } else { layer.media_type.clone() };
    let rec = LayerRecord {
        chain_id: chain.clone(),
        diff_id,
        parent: lower_chain.last().cloned(),
        blob,
        blob_size: size,
        media_type,
        tar_size,
        stats,
        overlay: opts.overlay,
    };
    let rec_path = work.join("layer.json");
    let json = serde_json::to_vec_pretty(&rec).unwrap_or_default();
    fs::write(&rec_path, json).map_err(|e| prepare(rec_path.clone(), e))?;
    let dest = store.layer_dir(chain);
    fs::rename(work, &dest).map_err(|e| prepare(dest.clone(), e))?;
    Ok(rec)
}
