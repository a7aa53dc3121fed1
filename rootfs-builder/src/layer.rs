//! One layer into the store: the home of every producer of layers (a local image source, a
//! registry, the store's own blobs for `commit`).
//!
//! A [`LayerJob`] takes the layer's blob as a stream and, in one pass, hashes it (digest and
//! size against the manifest), decompresses it on a second thread and unpacks the tar into
//! `tmp/` in overlay form ([`crate::extract`]), hashing the tar too (diff_id). Only when all
//! three check out is the work renamed into `layers/<chain>`; the blob is kept under `blobs/`.
//! The layer's lock makes concurrent pulls of the same layer unpack it once.

use std::cell::OnceCell;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use nix::sys::time::TimeSpec;

use crate::digest::{Algorithm, Digest, DigestReader};
use crate::extract::{self, DirMeta, OverlayXattrs};
use crate::fsutil;
use crate::merged::MergedView;
use crate::progress::{Event, Progress};
use crate::source::files::Stream;
use crate::source::{self, Compression, LayerSource};
use crate::store::{self, LayerRecord, Store};
use crate::warning::Warning;

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
    #[error("starting a worker thread with its own umask")]
    Worker(#[source] nix::Error),
    #[error("layer {index}: a layer below it failed, and it needs that layer's directories")]
    LowerFailed { index: usize },
    #[error("layer {index}: preparing {path}")]
    Prepare {
        index: usize,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
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

/// One layer of an image to have in the store.
#[derive(Clone)]
pub struct LayerJob<'a> {
    pub store: &'a Store,
    /// Its position in the image, from 1 (for messages).
    pub index: usize,
    /// What the image says about it: blob digest and size, compression, media type, diff_id.
    pub layer: &'a LayerSource,
    /// Its chain id, and those of the layers below it (bottom first).
    pub chain: &'a Digest,
    pub lower: &'a [Digest],
    pub overlay: OverlayXattrs,
    pub progress: &'a Arc<dyn Progress>,
    /// How progress names it ("layer 2/5").
    pub label: &'a str,
    /// Blocks until the layers below are in the store (they may be unpacked concurrently);
    /// false when one of them failed. Asked only if the archive leaves out a parent directory.
    pub lower_ready: &'a (dyn Fn() -> bool + Sync),
}

impl std::fmt::Debug for LayerJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerJob").field("index", &self.index).field("chain", &self.chain).finish_non_exhaustive()
    }
}

/// What [`LayerJob::ensure`] found or did.
#[derive(Debug, Clone)]
pub struct Ensured {
    pub record: LayerRecord,
    /// Unpacked now (false: it was in the store already).
    pub fresh: bool,
}

impl LayerJob<'_> {
    fn id(&self) -> String {
        self.layer.diff_id.short().to_string()
    }

    /// The layer as the store has it, unpacked from the stream `open` gives when it is not
    /// there; `open` is called only then (nothing is read or fetched for a stored layer).
    pub fn ensure<'s>(
        &self,
        open: impl FnOnce() -> Result<(Stream<'s>, Option<u64>), source::Error>,
    ) -> Result<Ensured, Error> {
        let id = self.id();
        let present = |record| {
            self.progress.event(&Event::Done { id: &id, what: self.label, status: "already in the store" });
            Ok(Ensured { record, fresh: false })
        };
        if let Some(rec) = self.store.layer(self.chain)? {
            return present(rec);
        }
        let _lock = self.store.lock_layer(self.chain)?;
        if let Some(rec) = self.store.layer(self.chain)? {
            return present(rec);
        }
        // A killed pull of this layer may have left its work behind: it was never trusted.
        let work = self.store.tmp_dir().join(format!("layer-{}", self.chain.hex()));
        self.store.remove_best_effort(&work);
        let diff = work.join("diff");
        fs::create_dir_all(&diff).map_err(|e| self.prepare(&diff, e))?;
        let result = open().map_err(Error::from).and_then(|(src, src_size)| self.unpack_into(src, src_size, &work));
        match result {
            Ok(record) => {
                self.progress.event(&Event::Done { id: &id, what: self.label, status: "unpacked" });
                Ok(Ensured { record, fresh: true })
            }
            Err(e) => {
                self.store.remove_best_effort(&work);
                Err(e)
            }
        }
    }

    fn prepare(&self, path: &Path, source: io::Error) -> Error {
        Error::Prepare { index: self.index, path: path.to_path_buf(), source }
    }

    /// Stream `src` into `work/diff` (and `work/blob`), check every digest, and rename `work`
    /// into the store.
    fn unpack_into(&self, src: Stream<'_>, src_size: Option<u64>, work: &Path) -> Result<LayerRecord, Error> {
        let diff = work.join("diff");
        let diff_fd = File::open(&diff).map_err(|e| self.prepare(&diff, e))?;
        let blob_tmp = work.join("blob");
        let blob_file = File::create(&blob_tmp).map_err(|e| self.prepare(&blob_tmp, e))?;

        let alg = self.layer.digest.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
        let id = self.id();
        self.progress.event(&Event::Start { id: &id, what: self.label, total: self.layer.size.or(src_size) });
        let progress = Arc::clone(self.progress);
        let raw = DigestReader::new(Tee { inner: src, out: blob_file }, alg)
            .with_progress(Box::new(move |done| progress.event(&Event::Bytes { id: &id, done })));

        let streamed = stream_layer(self.layer, self.index, raw, |tar| self.extract(tar, &diff_fd))?;
        check(self.layer, self.index, &streamed)?;
        let Streamed { compression, blob, blob_size, stats, diff_id, tar_size } = streamed;

        let blob_path = self.store.blob_path(&blob);
        if blob_path.exists() {
            // Already stored (a commit imports from the store's own blobs): not kept twice.
            fs::remove_file(&blob_tmp).map_err(|e| self.prepare(&blob_tmp, e))?;
        } else {
            fs::rename(&blob_tmp, &blob_path).map_err(|e| self.prepare(&blob_path, e))?;
        }
        let media_type = if self.layer.media_type.is_empty() {
            compression.media_type().to_string()
        } else {
            self.layer.media_type.clone()
        };
        let rec = LayerRecord {
            chain_id: self.chain.clone(),
            diff_id,
            parent: self.lower.last().cloned(),
            blob,
            blob_size,
            media_type,
            tar_size,
            stats,
            overlay: self.overlay,
        };
        let rec_path = work.join("layer.json");
        let json = serde_json::to_vec_pretty(&rec).unwrap_or_default();
        fs::write(&rec_path, json).map_err(|e| self.prepare(&rec_path, e))?;
        let dest = self.store.layer_dir(self.chain);
        fs::rename(work, &dest).map_err(|e| self.prepare(&dest, e))?;
        Ok(rec)
    }

    /// Unpack the tar stream into `diff_fd`.
    fn extract(&self, tar_stream: &mut TarStream, diff_fd: &File) -> Result<extract::Stats, Failure> {
        // The layers below, opened only if the archive leaves out a parent directory.
        let lower_view: OnceCell<Option<MergedView>> = OnceCell::new();
        let lower_failed = std::cell::Cell::new(false);
        let lookup = |path: &[u8]| -> Option<DirMeta> {
            let view = lower_view.get_or_init(|| {
                if !(self.lower_ready)() {
                    lower_failed.set(true);
                    return None;
                }
                MergedView::open(self.store, self.lower, self.overlay).ok()
            });
            let view = view.as_ref()?;
            let (layer, st) = view.lookup_bytes(path)?;
            let (uid, gid) = view.image_owner(layer, path, &st);
            fsutil::is_dir(&st).then(|| DirMeta {
                mode: st.st_mode & 0o7777,
                uid,
                gid,
                mtime: TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
            })
        };
        let extract_opts =
            extract::Options { overlay: self.overlay, lower: if self.lower.is_empty() { None } else { Some(&lookup) } };
        let stats = extract::apply_layer(tar_stream, diff_fd.as_fd(), &extract_opts).map_err(Failure::Unpack)?;
        if lower_failed.get() {
            return Err(Failure::LowerFailed);
        }
        warn_skipped(&|w| self.store.warn(w), self.label, &stats);
        Ok(stats)
    }
}

/// One warning per layer for what an unprivileged unpacking left out.
pub fn warn_skipped(warn: &dyn Fn(Warning), label: &str, stats: &extract::Stats) {
    if stats.skipped_devices > 0 {
        warn(Warning::new(
            format!("{label}: {} device node(s) left out", stats.skipped_devices),
            NotRoot("only root can make device nodes; a container gets its devices from the runtime"),
        ));
    }
    if stats.skipped_xattrs > 0 {
        warn(Warning::new(
            format!("{label}: {} extended attribute(s) left out", stats.skipped_xattrs),
            NotRoot("a non-root user sets only user.* attributes (file capabilities and the like are lost)"),
        ));
    }
}

/// Why an unprivileged unpacking leaves something out.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotRoot(&'static str);

/// The uncompressed layer (a tar) as its consumer reads it, hashed for the diff_id.
pub type TarStream = DigestReader<ChannelReader>;

/// What one pass over a layer blob found.
#[derive(Debug)]
pub struct Streamed {
    pub compression: Compression,
    pub blob: Digest,
    pub blob_size: u64,
    pub stats: extract::Stats,
    pub diff_id: Digest,
    pub tar_size: u64,
}

/// One pass over the blob of `layer` (the `index`th of its image), read through `raw` (which
/// hashes it): decompression on a second thread, `unpack` consuming the tar on this one, the tar
/// hashed as it goes. The blob's digest is checked here; size and diff_id by [`check`].
pub fn stream_layer<R: Read + Send>(
    layer: &LayerSource,
    index: usize,
    mut raw: DigestReader<R>,
    unpack: impl FnOnce(&mut TarStream) -> Result<extract::Stats, Failure>,
) -> Result<Streamed, Error> {
    let read_err = |source| Error::ReadLayer { index, what: layer.path.clone(), source };
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
        // The stream is dropped before the producer is joined, so a producer blocked on a full
        // channel always finishes.
        let extracted = {
            let mut tar_stream =
                DigestReader::new(ChannelReader { rx, cur: Vec::new(), pos: 0 }, layer.diff_id.algorithm());
            unpack(&mut tar_stream).and_then(|stats| {
                tar_stream.drain().map_err(Failure::Read)?;
                Ok((stats, tar_stream.finish()))
            })
        };
        (producer.join(), extracted)
    });
    let (compression, drained, (blob, blob_size)) =
        produced.map_err(|_| read_err(io::Error::other("the decompression thread panicked")))?;
    if let Some(expected) = &layer.digest
        && drained.is_ok()
        && blob != *expected
    {
        return Err(Error::DigestMismatch { index, expected: expected.clone(), actual: blob });
    }
    let compression = compression.map_err(read_err)?;
    let (stats, (diff_id, tar_size)) = match extracted {
        Ok(v) => v,
        Err(Failure::Unpack(e)) => return Err(Error::Unpack { index, what: layer.path.clone(), source: e }),
        Err(Failure::Read(e)) => return Err(read_err(e)),
        Err(Failure::LowerFailed) => return Err(Error::LowerFailed { index }),
    };
    drained.map_err(read_err)?;
    Ok(Streamed { compression, blob, blob_size, stats, diff_id, tar_size })
}

/// Size and diff_id against what the image says (the digest is checked as it streams).
pub fn check(layer: &LayerSource, index: usize, s: &Streamed) -> Result<(), Error> {
    if let Some(expected) = layer.size
        && expected != s.blob_size
    {
        return Err(Error::SizeMismatch { index, expected, actual: s.blob_size });
    }
    if s.diff_id != layer.diff_id {
        return Err(Error::DiffIdMismatch { index, expected: layer.diff_id.clone(), actual: s.diff_id.clone() });
    }
    Ok(())
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
#[derive(Debug)]
pub struct ChannelReader {
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

/// Why the consumer of a layer's tar stopped.
#[derive(Debug)]
pub enum Failure {
    Unpack(extract::Error),
    Read(io::Error),
    LowerFailed,
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
