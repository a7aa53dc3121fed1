//! `docker save` archives: `manifest.json` lists, per image, its configuration file, its tags
//! and its layer tarballs. There is no manifest: the configuration's digest is computed, each
//! layer is checked against the configuration's diff_ids, and a blob's name is its digest when
//! it has the form `blobs/sha256/<hex>` or `<hex>.json`.

use oci_spec::image::ImageConfiguration;
use serde::Deserialize;

use super::{
    Blobs, Error, Files, LayerSource, MAX_DOCUMENT, Resolved, SourceSpec, check_layer_count, full_reference,
    parse_digest, parse_json, source_name,
};
use crate::digest::Digest;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The digest a file name states, if it states one.
fn digest_in_name(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix("blobs/sha256/").or_else(|| path.strip_suffix(".json"))?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

fn tags(e: &Entry) -> &[String] {
    e.repo_tags.as_deref().unwrap_or_default()
}

pub fn resolve(files: Files, spec: &SourceSpec) -> Result<Resolved, Error> {
    let bytes = files.read_small("manifest.json", MAX_DOCUMENT)?;
    let entries: Vec<Entry> = parse_json(&bytes, spec, "manifest.json")?;
    if entries.is_empty() {
        return Err(Error::Empty { source_name: source_name(spec) });
    }
    let (entry, tag) = select(&entries, spec)?;
    let config_bytes = files.read_small(&entry.config, MAX_DOCUMENT)?;
    let config_digest = Digest::sha256_of(&config_bytes);
    if let Some(named) = digest_in_name(&entry.config)
        && named != config_digest
    {
        return Err(Error::DigestMismatch {
            what: "image configuration".into(),
            expected: named,
            actual: config_digest,
        });
    }
    let config: ImageConfiguration = parse_json(&config_bytes, spec, "image configuration")?;
    check_layer_count(&config, entry.layers.len())?;
    let mut layers = Vec::new();
    for (i, (path, diff_id)) in entry.layers.iter().zip(config.rootfs().diff_ids()).enumerate() {
        let what = format!("layer {}", i + 1);
        layers.push(LayerSource {
            path: path.clone(),
            digest: digest_in_name(path),
            size: None,
            compression: None,
            media_type: String::new(),
            diff_id: parse_digest(diff_id, &format!("diff_id of {what}"))?,
        });
    }
    Ok(Resolved {
        blobs: Blobs::Files(files),
        manifest: None,
        config_digest,
        config_bytes,
        config,
        layers,
        reference: tag.map(|t| full_reference(spec, &t)),
    })
}

/// The entry the spec's REF names (a tag, or `@N`), and the tag to record.
fn select<'e>(entries: &'e [Entry], spec: &SourceSpec) -> Result<(&'e Entry, Option<String>), Error> {
    let source = source_name(spec);
    let all_tags = || {
        let t: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| if tags(e).is_empty() { format!("@{i}") } else { tags(e).join(", ") })
            .collect();
        t.join(", ")
    };
    let chosen = match &spec.reference {
        Some(r) if r.starts_with('@') => {
            let i: usize = r[1..].parse().map_err(|_| Error::UnknownReference {
                source_name: source.clone(),
                reference: r.clone(),
                available: all_tags(),
            })?;
            let e = entries.get(i).ok_or_else(|| Error::UnknownReference {
                source_name: source.clone(),
                reference: r.clone(),
                available: all_tags(),
            })?;
            (e, tags(e).first().cloned())
        }
        Some(r) => {
            let with_latest = format!("{r}:latest");
            let found =
                entries.iter().find_map(|e| tags(e).iter().find(|t| **t == *r || **t == with_latest).map(|t| (e, t)));
            let (e, t) = found.ok_or_else(|| Error::UnknownReference {
                source_name: source.clone(),
                reference: r.clone(),
                available: all_tags(),
            })?;
            (e, Some(t.clone()))
        }
        None if entries.len() == 1 => (&entries[0], tags(&entries[0]).first().cloned()),
        None => {
            let latest: Vec<(&Entry, &String)> = entries
                .iter()
                .flat_map(|e| tags(e).iter().filter(|t| t.ends_with(":latest")).map(move |t| (e, t)))
                .collect();
            match latest.as_slice() {
                [(e, t)] => (*e, Some((*t).clone())),
                _ => {
                    return Err(Error::Ambiguous {
                        source_name: source,
                        hint: format!("{}:TAG or :@N", spec.path.display()),
                        available: all_tags(),
                    });
                }
            }
        }
    };
    Ok(chosen)
}
