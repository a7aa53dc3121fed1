//! `commit DIR IMAGE`: a bundle's writable layer as a new layer on top of its image.
//!
//! The upper directory becomes a tar layer ([`layer`]; the init layer's files left out), which
//! is compressed and stored as a blob; the image's configuration gets the new diff_id, a history
//! entry and the `--change`s ([`changes`]); a manifest lists the image's layers and the new one.
//! The result is imported into the store like a pull (only the new layer is unpacked; every
//! digest is checked again on the way) and, when IMAGE names one, written out as an OCI layout,
//! OCI archive or Docker archive ([`crate::export`]).
//!
//! The bundle may be running: the upper directory is read as it is, file by file (a file being
//! written meanwhile is taken at the size first seen, and counted in the stats).

pub mod changes;
pub mod layer;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::image::ImageConfiguration;
use serde_json::{Value, json};

use crate::bundle;
use crate::digest::{Algorithm, Digest, DigestWriter};
use crate::export;
use crate::pull;
use crate::source::{self, Blobs, Compression, Files, LayerSource, Resolved, SourceSpec, media};
use crate::store::{self, BundleRecord, ImageRecord, Store, records::BundleKind};
use crate::timefmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bundle(#[from] bundle::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Change(#[from] changes::Error),
    #[error(transparent)]
    Layer(#[from] layer::Error),
    #[error(transparent)]
    Import(#[from] pull::Error),
    #[error(transparent)]
    Export(#[from] export::Error),
    #[error(transparent)]
    Source(#[from] source::Error),
    #[error(
        "invalid image name {0:?}: give oci:PATH[:REF], oci-archive:PATH[:REF], docker-archive:PATH[:REF] or a name for the store (no spaces or control characters, at most 255 bytes)"
    )]
    BadReference(String),
    #[error("{0} is a flattened bundle: its rootfs is a copy with no separate writable layer to commit")]
    Flattened(String),
    #[error("{0} is a read-only bundle: it has no writable layer to commit")]
    ReadOnly(String),
    #[error("the bundle's image {0} is no longer in the store (pull it again to commit on top of it)")]
    ImageGone(String),
    #[error("opening the writable layer {0}")]
    OpenUpper(String, #[source] Errno),
    #[error("writing the layer blob {0}")]
    WriteBlob(String, #[source] io::Error),
    #[error("the base image's {0} is not valid JSON")]
    BaseDocument(&'static str, #[source] serde_json::Error),
}

/// Where the committed image goes (besides the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An OCI layout, OCI archive or Docker archive.
    Source(SourceSpec),
    /// The store only, under this reference.
    Store(String),
}

impl Target {
    pub fn parse(arg: &str) -> Result<Self, Error> {
        if let Some(spec) = SourceSpec::parse(arg) {
            if spec.path.as_os_str().is_empty() {
                return Err(Error::BadReference(arg.to_string()));
            }
            return Ok(Target::Source(spec));
        }
        let ok = !arg.is_empty()
            && arg.len() <= 255
            && !arg.chars().any(|c| c.is_whitespace() || c.is_control())
            && !arg.starts_with(['-', ':', '/'])
            && !arg.ends_with([':', '/']);
        if !ok {
            return Err(Error::BadReference(arg.to_string()));
        }
        // `name` means `name:latest`; a ':' before the last '/' is a registry port.
        let last = arg.rsplit('/').next().unwrap_or(arg);
        Ok(Target::Store(if last.contains(':') { arg.to_string() } else { format!("{arg}:latest") }))
    }

    /// The reference the store records (what a pull of the written image would record).
    pub fn store_reference(&self) -> String {
        match self {
            Target::Source(spec) => source::full_reference(spec, spec.reference.as_deref().unwrap_or("latest")),
            Target::Store(r) => r.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub message: Option<String>,
    pub author: Option<String>,
    /// `--change` values, as given.
    pub changes: Vec<String>,
    pub compression: Compression,
    pub pull: pull::Options,
}

/// The new layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewLayer {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub stats: layer::Stats,
}

/// What a commit made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Committed {
    pub id: Digest,
    pub manifest: Digest,
    pub reference: String,
    /// The layout or archive written, if the target named one.
    pub written: Option<String>,
    pub layer: NewLayer,
    pub layers: usize,
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// The OCI media type for a layer of `m` (Docker's names mapped to OCI's).
fn oci_layer_media_type(m: &str) -> String {
    match m {
        "application/vnd.docker.image.rootfs.diff.tar" => media::OCI_LAYER.into(),
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => media::OCI_LAYER_GZIP.into(),
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into()
        }
        other => other.into(),
    }
}

/// Commit the bundle at `dir` as `target`. The caller holds the store lock shared.
pub fn commit(store: &Store, dir: &Path, target: &Target, opts: &Options) -> Result<Committed, Error> {
    let parsed: Vec<changes::Change> = opts.changes.iter().map(|c| changes::parse(c)).collect::<Result<_, _>>()?;
    let rec = bundle::find(store, dir)?;
    if rec.kind == BundleKind::Flatten {
        return Err(Error::Flattened(path_str(&rec.dir)));
    }
    if rec.readonly {
        return Err(Error::ReadOnly(path_str(&rec.dir)));
    }
    let image = store.image(&rec.image).map_err(|_| Error::ImageGone(rec.image.to_string()))?;
    if let Target::Source(spec) = target {
        export::check(spec)?;
    }
    let new_layer = store_layer_blob(store, &rec, opts.compression)?;
    let config = new_config(store, &image, &new_layer, &parsed, opts)?;
    let (manifest, layers) = new_manifest(store, &image, &new_layer, &config)?;
    store.put_blob(&config.0, &config.1)?;
    store.put_blob(&manifest.0, &manifest.1)?;

    // Into the store, as a pull from the store's own blobs: the new layer is unpacked (and
    // its digests checked once more), the others are there already.
    let reference = target.store_reference();
    let manifest_digest = manifest.0.clone();
    let resolved = as_resolved(store, config, manifest, &layers, &reference)?;
    let pulled = pull::import(store, &resolved, &format!("commit of {}", rec.dir.display()), &opts.pull)?;

    let written = match target {
        Target::Source(spec) => {
            export::write(store, &store.image(&pulled.id)?, spec, &reference)?;
            Some(path_str(&spec.path))
        }
        Target::Store(_) => None,
    };
    Ok(Committed {
        id: pulled.id,
        manifest: manifest_digest,
        reference,
        written,
        layer: new_layer,
        layers: layers.len(),
    })
}

/// A document and its digest.
type Document = (Digest, Vec<u8>);

/// The bundle's writable layer as a blob in the store, hashed as it is written (diff_id before
/// compression, digest after).
fn store_layer_blob(store: &Store, rec: &BundleRecord, compression: Compression) -> Result<NewLayer, Error> {
    let upper = nix::fcntl::open(&rec.upper, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::OpenUpper(path_str(&rec.upper), e))?;
    let tmp = store.tmp_path("commit-layer");
    let new_layer = match write_blob(upper.as_fd(), &rec.init_files, &tmp, compression) {
        Ok(l) => l,
        Err(e) => {
            store.remove_best_effort(&tmp);
            return Err(e);
        }
    };
    let blob_path = store.blob_path(&new_layer.digest);
    let placed = if blob_path.exists() { std::fs::remove_file(&tmp) } else { std::fs::rename(&tmp, &blob_path) };
    placed.map_err(|e| Error::WriteBlob(path_str(&blob_path), e))?;
    Ok(new_layer)
}

/// The base image's configuration with the new layer's diff_id, a history entry, the author
/// and the `--change`s.
fn new_config(
    store: &Store,
    image: &ImageRecord,
    new_layer: &NewLayer,
    parsed: &[changes::Change],
    opts: &Options,
) -> Result<Document, Error> {
    let mut config: Value = serde_json::from_slice(&store.read_blob(&image.config)?)
        .map_err(|e| Error::BaseDocument("configuration", e))?;
    let created = timefmt::rfc3339(timefmt::now_or_source_date_epoch());
    changes::apply(&mut config, parsed);
    config["created"] = json!(created);
    if let Some(a) = &opts.author {
        config["author"] = json!(a);
    }
    if !config["rootfs"].is_object() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    let mut diff_ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    diff_ids.push(json!(new_layer.diff_id));
    config["rootfs"]["diff_ids"] = Value::Array(diff_ids);
    let mut created_by = String::from("strata-rootfs commit");
    for c in &opts.changes {
        created_by.push_str(&format!(" --change '{c}'"));
    }
    let mut entry = json!({"created": created, "created_by": created_by});
    if let Some(a) = &opts.author {
        entry["author"] = json!(a);
    }
    if let Some(m) = &opts.message {
        entry["comment"] = json!(m);
    }
    let mut history = config["history"].as_array().cloned().unwrap_or_default();
    history.push(entry);
    config["history"] = Value::Array(history);
    let bytes = serde_json::to_vec(&config).unwrap_or_default();
    Ok((Digest::sha256_of(&bytes), bytes))
}

/// The manifest: the image's layers as they are stored, then the new one. Also returns the
/// layer descriptors.
fn new_manifest(
    store: &Store,
    image: &ImageRecord,
    new_layer: &NewLayer,
    config: &Document,
) -> Result<(Document, Vec<Value>), Error> {
    let base: Value =
        serde_json::from_slice(&store.read_blob(&image.manifest)?).map_err(|e| Error::BaseDocument("manifest", e))?;
    let mut layers: Vec<Value> = base["layers"].as_array().cloned().unwrap_or_default();
    for l in &mut layers {
        let mt = oci_layer_media_type(l["mediaType"].as_str().unwrap_or_default());
        l["mediaType"] = json!(mt);
    }
    layers.push(json!({"mediaType": new_layer.media_type, "digest": new_layer.digest, "size": new_layer.size}));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": config.0, "size": config.1.len()},
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    Ok(((Digest::sha256_of(&bytes), bytes), layers))
}

/// The new image as a source reading the store's own blobs, for [`pull::import`].
fn as_resolved(
    store: &Store,
    config: Document,
    manifest: Document,
    layers: &[Value],
    reference: &str,
) -> Result<Resolved, Error> {
    let (config_digest, config_bytes) = config;
    let parsed_config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|e| Error::BaseDocument("configuration", e))?;
    let mut sources = Vec::new();
    let new_diff_ids = parsed_config.rootfs().diff_ids().clone();
    for (i, (l, diff_id)) in layers.iter().zip(&new_diff_ids).enumerate() {
        let digest = Digest::parse(l["digest"].as_str().unwrap_or_default())
            .map_err(|e| source::Error::Digest { what: format!("layer {}", i + 1), source: e })?;
        let media_type = l["mediaType"].as_str().unwrap_or_default().to_string();
        sources.push(LayerSource {
            path: format!("blobs/{}/{}", digest.algorithm().name(), digest.hex()),
            digest: Some(digest),
            size: l["size"].as_u64(),
            compression: Compression::from_media_type(&media_type),
            media_type,
            diff_id: Digest::parse(diff_id)
                .map_err(|e| source::Error::Digest { what: format!("diff_id of layer {}", i + 1), source: e })?,
        });
    }
    if sources.len() != layers.len() {
        return Err(Error::Source(source::Error::LayerCount { diff_ids: new_diff_ids.len(), layers: layers.len() }));
    }
    Ok(Resolved {
        blobs: Blobs::Files(Files::dir(store.root()).map_err(source::Error::from)?),
        manifest: Some(manifest),
        config_digest,
        config_bytes,
        config: parsed_config,
        layers: sources,
        reference: Some(reference.to_string()),
    })
}

/// Write the layer of `upper` to `dest`, compressed; digests and sizes on the way.
fn write_blob(
    upper: std::os::fd::BorrowedFd<'_>,
    exclude: &[String],
    dest: &Path,
    compression: Compression,
) -> Result<NewLayer, Error> {
    let werr = |e| Error::WriteBlob(path_str(dest), e);
    let file = File::create(dest).map_err(werr)?;
    let blob = DigestWriter::new(BufWriter::new(file), Algorithm::Sha256);
    let (blob, diff_id, stats) = match compression {
        Compression::None => {
            let (w, stats) = layer::write_layer(upper, exclude, DigestWriter::new(blob, Algorithm::Sha256))?;
            let (blob, diff_id, _) = w.finish();
            (blob, diff_id, stats)
        }
        Compression::Gzip => {
            let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::default());
            let (w, stats) = layer::write_layer(upper, exclude, DigestWriter::new(gz, Algorithm::Sha256))?;
            let (gz, diff_id, _) = w.finish();
            (gz.finish().map_err(werr)?, diff_id, stats)
        }
        Compression::Zstd => {
            let zs = zstd::Encoder::new(blob, 3).map_err(werr)?;
            let (w, stats) = layer::write_layer(upper, exclude, DigestWriter::new(zs, Algorithm::Sha256))?;
            let (zs, diff_id, _) = w.finish();
            (zs.finish().map_err(werr)?, diff_id, stats)
        }
    };
    let (mut file, digest, size) = blob.finish();
    file.flush().map_err(werr)?;
    Ok(NewLayer { diff_id, digest, size, media_type: compression.media_type().to_string(), stats })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(Target::parse("demo").unwrap(), Target::Store("demo:latest".into()));
        assert_eq!(Target::parse("localhost:5000/demo").unwrap(), Target::Store("localhost:5000/demo:latest".into()));
        assert_eq!(Target::parse("localhost/demo:v2").unwrap(), Target::Store("localhost/demo:v2".into()));
        for bad in ["", "a b", "-x", "x:", "/abs", "oci:"] {
            assert!(Target::parse(bad).is_err(), "{bad:?} accepted");
        }
        let t = Target::parse("oci:/tmp/out:v2").unwrap();
        assert_eq!(t.store_reference(), "out:v2");
        let t = Target::parse("docker-archive:/tmp/x.tar:localhost/x:1").unwrap();
        assert_eq!(t.store_reference(), "localhost/x:1");
        assert_eq!(Target::parse("oci:/tmp/out").unwrap().store_reference(), "out:latest");
    }
}
