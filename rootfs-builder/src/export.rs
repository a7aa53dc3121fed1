//! Writing a stored image out: into an OCI image layout (added to what the layout holds), an OCI
//! archive (a tar of a layout) or a `docker save` archive. Blobs come from the store as they are
//! there, except in a Docker archive, whose layers are the uncompressed tars (as `docker save`
//! writes them: each layer's name is then its diff_id, so it is checked when loaded).
//!
//! Archives are written to a temporary name and renamed into place, with entries in a fixed
//! order and fixed metadata, so exporting the same image twice gives the same bytes.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::digest::{Algorithm, Digest, DigestReader};
use crate::source::{Compression, SourceSpec, Transport, media};
use crate::store::{self, ImageRecord, Store};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("{0} exists and is not an OCI image layout (no oci-layout file)")]
    NotLayout(String),
    #[error("{0} in the layout is not valid JSON")]
    Corrupt(String, #[source] serde_json::Error),
    #[error("writing {0}")]
    Write(String, #[source] io::Error),
    #[error("reading the stored blob {0}")]
    ReadBlob(String, #[source] io::Error),
    #[error("the layer {0} is not unpacked in the store (its size is unknown)")]
    MissingLayer(String),
    #[error("the stored layer blob {blob} does not decompress to its diff_id {diff_id}")]
    LayerMismatch { blob: String, diff_id: String },
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Write `image` to the location `spec` names, under `reference` (the name the store gives
/// it; in an OCI layout the `ref.name` is the spec's REF, or `latest`).
pub fn write(store: &Store, image: &ImageRecord, spec: &SourceSpec, reference: &str) -> Result<(), Error> {
    let ref_name = spec.reference.clone().unwrap_or_else(|| "latest".into());
    match spec.transport {
        Transport::Oci => write_layout(store, image, &spec.path, &ref_name),
        Transport::OciArchive => write_archive(store, &spec.path, |b| oci_archive(store, image, &ref_name, b)),
        Transport::DockerArchive => write_archive(store, &spec.path, |b| docker_archive(store, image, reference, b)),
    }
}

/// Check, before anything is made, that `spec` can be written: a layout directory is absent,
/// empty or a layout; an archive's directory exists.
pub fn check(spec: &SourceSpec) -> Result<(), Error> {
    match spec.transport {
        Transport::Oci => match fs::read_dir(&spec.path) {
            Ok(mut rd) => {
                if rd.next().is_some() && !spec.path.join("oci-layout").exists() {
                    return Err(Error::NotLayout(path_str(&spec.path)));
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Write(path_str(&spec.path), e)),
        },
        Transport::OciArchive | Transport::DockerArchive => {
            let parent = match spec.path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            match fs::metadata(parent) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(Error::Write(path_str(&spec.path), io::Error::from(io::ErrorKind::NotADirectory))),
                Err(e) => return Err(Error::Write(path_str(&spec.path), e)),
            }
            if spec.path.is_dir() {
                return Err(Error::Write(path_str(&spec.path), io::Error::from(io::ErrorKind::IsADirectory)));
            }
            Ok(())
        }
    }
}

/// Every blob of the image: manifest, configuration, layers.
fn blobs(image: &ImageRecord) -> Vec<Digest> {
    let mut v = vec![image.manifest.clone(), image.config.clone()];
    v.extend(image.layers.iter().map(|l| l.blob.clone()));
    v
}

fn manifest_descriptor(store: &Store, image: &ImageRecord, ref_name: &str) -> Result<Value, Error> {
    let size = fs::metadata(store.blob_path(&image.manifest))
        .map_err(|e| Error::ReadBlob(image.manifest.to_string(), e))?
        .len();
    Ok(json!({
        "mediaType": media::OCI_MANIFEST,
        "digest": image.manifest,
        "size": size,
        "annotations": { REF_NAME: ref_name },
    }))
}

fn write_atomic(store: &Store, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = tmp_name(path);
    let res = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = res {
        store.remove_best_effort(&tmp);
        return Err(Error::Write(path_str(path), e));
    }
    Ok(())
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Add the image to the OCI layout at `dir` (made if missing), replacing what `ref_name` named.
fn write_layout(store: &Store, image: &ImageRecord, dir: &Path, ref_name: &str) -> Result<(), Error> {
    let layout_file = dir.join("oci-layout");
    match fs::read_dir(dir) {
        Ok(mut rd) => {
            if rd.next().is_some() && !layout_file.exists() {
                return Err(Error::NotLayout(path_str(dir)));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Write(path_str(dir), e)),
    }
    let blob_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blob_dir).map_err(|e| Error::Write(path_str(&blob_dir), e))?;
    if !layout_file.exists() {
        write_atomic(store, &layout_file, LAYOUT)?;
    }
    for d in blobs(image) {
        let dest = dir.join("blobs").join(d.algorithm().name()).join(d.hex());
        if dest.exists() {
            continue;
        }
        fs::create_dir_all(dest.parent().unwrap_or(dir)).map_err(|e| Error::Write(path_str(&dest), e))?;
        let tmp = tmp_name(&dest);
        let res = fs::copy(store.blob_path(&d), &tmp).and_then(|_| fs::rename(&tmp, &dest));
        if let Err(e) = res {
            store.remove_best_effort(&tmp);
            return Err(Error::Write(path_str(&dest), e));
        }
    }
    let index_path = dir.join("index.json");
    let mut index: Value = match fs::read(&index_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt(path_str(&index_path), e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []})
        }
        Err(e) => return Err(Error::Write(path_str(&index_path), e)),
    };
    let mut manifests: Vec<Value> = index["manifests"].as_array().cloned().unwrap_or_default();
    manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(ref_name));
    manifests.push(manifest_descriptor(store, image, ref_name)?);
    index["manifests"] = Value::Array(manifests);
    let mut bytes = serde_json::to_vec(&index).unwrap_or_default();
    bytes.push(b'\n');
    write_atomic(store, &index_path, &bytes)
}

/// Build an archive at a temporary name with `fill`, then rename it to `path`.
fn write_archive(
    store: &Store,
    path: &Path,
    fill: impl FnOnce(&mut tar::Builder<BufWriter<File>>) -> Result<(), Error>,
) -> Result<(), Error> {
    let tmp = tmp_name(path);
    let res = (|| {
        let file = File::create(&tmp).map_err(|e| Error::Write(path_str(path), e))?;
        let mut b = tar::Builder::new(BufWriter::new(file));
        fill(&mut b)?;
        let mut w = b.into_inner().map_err(|e| Error::Write(path_str(path), e))?;
        w.flush().map_err(|e| Error::Write(path_str(path), e))?;
        fs::rename(&tmp, path).map_err(|e| Error::Write(path_str(path), e))
    })();
    if res.is_err() {
        store.remove_best_effort(&tmp);
    }
    res
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn add_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> Result<(), Error> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, name, io::empty()).map_err(|e| Error::Write(name.into(), e))
}

fn add_bytes<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<(), Error> {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    b.append_data(&mut h, name, data).map_err(|e| Error::Write(name.into(), e))
}

fn add_blob<W: Write>(b: &mut tar::Builder<W>, store: &Store, d: &Digest) -> Result<(), Error> {
    let path = store.blob_path(d);
    let f = File::open(&path).map_err(|e| Error::ReadBlob(d.to_string(), e))?;
    let size = f.metadata().map_err(|e| Error::ReadBlob(d.to_string(), e))?.len();
    let name = format!("blobs/{}/{}", d.algorithm().name(), d.hex());
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    b.append_data(&mut h, &name, f).map_err(|e| Error::Write(name, e))
}

fn oci_archive<W: Write>(
    store: &Store,
    image: &ImageRecord,
    ref_name: &str,
    b: &mut tar::Builder<W>,
) -> Result<(), Error> {
    add_bytes(b, "oci-layout", LAYOUT)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [manifest_descriptor(store, image, ref_name)?],
    });
    add_bytes(b, "index.json", &serde_json::to_vec(&index).unwrap_or_default())?;
    add_dir(b, "blobs/")?;
    add_dir(b, "blobs/sha256/")?;
    let mut seen = Vec::new();
    for d in blobs(image) {
        if !seen.contains(&d) {
            add_blob(b, store, &d)?;
            seen.push(d);
        }
    }
    Ok(())
}

fn docker_archive<W: Write>(
    store: &Store,
    image: &ImageRecord,
    reference: &str,
    b: &mut tar::Builder<W>,
) -> Result<(), Error> {
    add_dir(b, "blobs/")?;
    add_dir(b, "blobs/sha256/")?;
    add_blob(b, store, &image.config)?;
    let mut layer_names = Vec::new();
    for l in &image.layers {
        let name = format!("blobs/sha256/{}", l.diff_id.hex());
        if !layer_names.contains(&name) {
            add_uncompressed_layer(b, store, l, &name)?;
        }
        layer_names.push(name);
    }
    let manifest = json!([{
        "Config": format!("blobs/sha256/{}", image.config.hex()),
        "RepoTags": [reference],
        "Layers": layer_names,
    }]);
    add_bytes(b, "manifest.json", &serde_json::to_vec(&manifest).unwrap_or_default())
}

fn add_uncompressed_layer<W: Write>(
    b: &mut tar::Builder<W>,
    store: &Store,
    l: &store::ImageLayer,
    name: &str,
) -> Result<(), Error> {
    let rec = store.layer(&l.chain_id)?.ok_or_else(|| Error::MissingLayer(l.chain_id.to_string()))?;
    let blob = store.blob_path(&l.blob);
    let read_err = |e| Error::ReadBlob(l.blob.to_string(), e);
    let mut raw = io::BufReader::new(File::open(&blob).map_err(read_err)?);
    let compression = match Compression::from_media_type(&l.media_type) {
        Some(c) => c,
        None => Compression::sniff(io::BufRead::fill_buf(&mut raw).map_err(read_err)?),
    };
    let decoded: Box<dyn Read> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(raw).map_err(read_err)?),
    };
    let mut stream = DigestReader::new(decoded.take(rec.tar_size), Algorithm::Sha256);
    let mut h = header(tar::EntryType::Regular, 0o644, rec.tar_size);
    b.append_data(&mut h, name, &mut stream).map_err(|e| Error::Write(name.into(), e))?;
    let (digest, n) = stream.finish();
    if n != rec.tar_size || digest != l.diff_id {
        return Err(Error::LayerMismatch { blob: l.blob.to_string(), diff_id: l.diff_id.to_string() });
    }
    Ok(())
}
