//! OCI image layouts (image-layout.md), as a directory or as a tar of one.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::{
    Blobs, Compression, Error, Files, LayerSource, MAX_DOCUMENT, Platform, Resolved, SourceSpec, check_layer_count,
    full_reference, media, parse_digest, parse_json, source_name,
};
use crate::digest::Digest;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const MAX_DEPTH: usize = 4;

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str)
}

fn platform_of(d: &Descriptor) -> Option<Platform> {
    d.platform().as_ref().map(|p| Platform {
        os: p.os().to_string(),
        arch: p.architecture().to_string(),
        variant: p.variant().clone(),
    })
}

fn describe(entries: &[&Descriptor]) -> String {
    let names: Vec<String> = entries
        .iter()
        .map(|d| match (ref_name(d), platform_of(d)) {
            (Some(n), Some(p)) => format!("{n} ({p})"),
            (Some(n), None) => n.to_string(),
            (None, Some(p)) => p.to_string(),
            (None, None) => d.digest().to_string(),
        })
        .collect();
    if names.is_empty() { "nothing".into() } else { names.join(", ") }
}

/// Read the blob a descriptor names and check its size and digest.
pub fn read_blob(files: &Files, d: &Descriptor, what: &str) -> Result<(Digest, Vec<u8>), Error> {
    let digest = parse_digest(d.digest().as_ref(), what)?;
    let expected = d.size();
    if expected > MAX_DOCUMENT {
        return Err(Error::SizeMismatch { what: what.into(), expected: MAX_DOCUMENT, actual: expected });
    }
    let path = blob_path(&digest);
    let bytes = files.read_small(&path, expected)?;
    if bytes.len() as u64 != expected {
        return Err(Error::SizeMismatch { what: format!("{what} {digest}"), expected, actual: bytes.len() as u64 });
    }
    verify(&bytes, &digest, what)?;
    Ok((digest, bytes))
}

pub fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.hex())
}

fn verify(bytes: &[u8], expected: &Digest, what: &str) -> Result<(), Error> {
    let mut r = crate::digest::DigestReader::new(bytes, expected.algorithm());
    r.drain().map_err(|e| {
        Error::Files(super::files::Error::Read { source_name: String::new(), path: what.to_string(), source: e })
    })?;
    let (actual, _) = r.finish();
    if actual != *expected {
        return Err(Error::DigestMismatch { what: what.into(), expected: expected.clone(), actual });
    }
    Ok(())
}

pub fn pick_platform<'a>(
    candidates: &[&'a Descriptor],
    platform: &Platform,
    source: &str,
) -> Result<&'a Descriptor, Error> {
    if let Some(d) = candidates.iter().find(|d| platform_of(d).is_some_and(|p| platform.matches(&p))) {
        return Ok(d);
    }
    let unplatformed: Vec<_> = candidates.iter().filter(|d| d.platform().is_none()).collect();
    if unplatformed.len() == 1 {
        return Ok(unplatformed[0]);
    }
    Err(Error::NoPlatform { source_name: source.into(), wanted: platform.to_string(), available: describe(candidates) })
}

pub fn is_index(d: &Descriptor) -> bool {
    let m = d.media_type().to_string();
    m == media::OCI_INDEX || m == media::DOCKER_LIST
}

pub fn resolve(files: Files, spec: &SourceSpec, platform: &Platform) -> Result<Resolved, Error> {
    let source = source_name(spec);
    let index = read_index(&files, spec)?;
    let entries: Vec<&Descriptor> = index.manifests().iter().collect();
    if entries.is_empty() {
        return Err(Error::Empty { source_name: source });
    }
    let candidates = candidates(&entries, spec)?;
    let chosen = if candidates.len() == 1 { candidates[0] } else { pick_platform(&candidates, platform, &source)? };
    let reference = ref_name(chosen).map(|n| full_reference(spec, n));

    // Descend through nested indexes to one manifest.
    let mut desc = chosen.clone();
    let mut depth = 0;
    while is_index(&desc) {
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep(MAX_DEPTH));
        }
        let (_, bytes) = read_blob(&files, &desc, "image index")?;
        let nested: ImageIndex = parse_json(&bytes, spec, "image index")?;
        let list: Vec<&Descriptor> = nested.manifests().iter().collect();
        if list.is_empty() {
            return Err(Error::Empty { source_name: source });
        }
        desc = pick_platform(&list, platform, &source)?.clone();
    }
    let mt = desc.media_type().to_string();
    if mt != media::OCI_MANIFEST && mt != media::DOCKER_MANIFEST {
        return Err(Error::UnsupportedMediaType { what: format!("manifest {}", desc.digest()), media_type: mt });
    }
    let (manifest_digest, manifest_bytes) = read_blob(&files, &desc, "manifest")?;
    let manifest: ImageManifest = parse_json(&manifest_bytes, spec, "manifest")?;

    let cmt = manifest.config().media_type().to_string();
    if cmt != media::OCI_CONFIG && cmt != media::DOCKER_CONFIG {
        return Err(Error::UnsupportedMediaType { what: "image configuration".into(), media_type: cmt });
    }
    let (config_digest, config_bytes) = read_blob(&files, manifest.config(), "image configuration")?;
    let config: ImageConfiguration = parse_json(&config_bytes, spec, "image configuration")?;
    let layers = layer_sources(&manifest, &config)?;
    Ok(Resolved {
        blobs: Blobs::Files(files),
        manifest: Some((manifest_digest, manifest_bytes)),
        config_digest,
        config_bytes,
        config,
        layers,
        reference,
    })
}

/// `oci-layout` checked, `index.json` parsed.
fn read_index(files: &Files, spec: &SourceSpec) -> Result<ImageIndex, Error> {
    let layout = match files.read_small("oci-layout", 4096) {
        Ok(b) => b,
        Err(super::files::Error::Missing { .. }) => return Err(Error::NotLayout(source_name(spec))),
        Err(e) => return Err(e.into()),
    };
    let layout: serde_json::Value = parse_json(&layout, spec, "oci-layout")?;
    if !layout.get("imageLayoutVersion").is_some_and(serde_json::Value::is_string) {
        return Err(Error::NotLayout(source_name(spec)));
    }
    let index_bytes = files.read_small("index.json", MAX_DOCUMENT)?;
    parse_json(&index_bytes, spec, "index.json")
}

/// The entries of the index the spec's REF names (without one: the only entry, those named
/// `latest`, or all when all of them name a platform).
fn candidates<'a>(entries: &[&'a Descriptor], spec: &SourceSpec) -> Result<Vec<&'a Descriptor>, Error> {
    match &spec.reference {
        Some(r) => {
            let m: Vec<_> = entries.iter().copied().filter(|d| ref_name(d) == Some(r.as_str())).collect();
            if m.is_empty() {
                return Err(Error::UnknownReference {
                    source_name: source_name(spec),
                    reference: r.clone(),
                    available: describe(entries),
                });
            }
            Ok(m)
        }
        None if entries.len() == 1 => Ok(entries.to_vec()),
        None => {
            let latest: Vec<_> = entries.iter().copied().filter(|d| ref_name(d) == Some("latest")).collect();
            if !latest.is_empty() {
                Ok(latest)
            } else if entries.iter().all(|d| d.platform().is_some()) {
                Ok(entries.to_vec())
            } else {
                Err(Error::Ambiguous {
                    source_name: source_name(spec),
                    hint: format!("{}:REF", spec.path.display()),
                    available: describe(entries),
                })
            }
        }
    }
}

/// The manifest's layers with their diff_ids, each media type known.
pub fn layer_sources(manifest: &ImageManifest, config: &ImageConfiguration) -> Result<Vec<LayerSource>, Error> {
    check_layer_count(config, manifest.layers().len())?;
    let mut layers = Vec::new();
    for (i, (l, diff_id)) in manifest.layers().iter().zip(config.rootfs().diff_ids()).enumerate() {
        let what = format!("layer {}", i + 1);
        let media_type = l.media_type().to_string();
        let compression = Compression::from_media_type(&media_type)
            .ok_or_else(|| Error::UnsupportedMediaType { what: what.clone(), media_type: media_type.clone() })?;
        let digest = parse_digest(l.digest().as_ref(), &what)?;
        layers.push(LayerSource {
            path: blob_path(&digest),
            digest: Some(digest),
            size: Some(l.size()),
            compression: Some(compression),
            media_type,
            diff_id: parse_digest(diff_id, &format!("diff_id of {what}"))?,
        });
    }
    Ok(layers)
}
