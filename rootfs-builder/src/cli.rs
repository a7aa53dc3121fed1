//! The commands behind the command line: output (plain, `--quiet`, `--json`) and error chains.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::digest::Digest;
use crate::extract::OverlayXattrs;
use crate::progress::{Progress, human};
use crate::source::{Platform, SourceSpec, platform};
use crate::store::{self, Store};
use crate::{bundle, flatten, gc, pull};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Pull(#[from] pull::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Bundle(#[from] bundle::Error),
    #[error(transparent)]
    Flatten(#[from] flatten::Error),
    #[error(transparent)]
    Gc(#[from] gc::Error),
    #[error(transparent)]
    Platform(#[from] platform::ParseError),
}

/// Options every command takes.
#[derive(Debug, Clone)]
pub struct Global {
    pub store: PathBuf,
    pub quiet: bool,
    pub json: bool,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct BundleArgs {
    pub name: Option<String>,
    pub flatten: bool,
    pub readonly: bool,
    pub hostname: Option<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub args: Vec<String>,
}

/// An error and its causes on one line: `what failed: because: because`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.ends_with(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

impl Global {
    fn store(&self) -> Result<Store, Error> {
        Ok(Store::open(&self.store)?)
    }

    fn pull_options(&self) -> Result<pull::Options, Error> {
        let platform = match &self.platform {
            Some(p) => Platform::parse(p)?,
            None => Platform::host(),
        };
        Ok(pull::Options {
            platform,
            overlay: OverlayXattrs::Trusted,
            progress: Progress::new(!self.quiet && !self.json),
        })
    }
}

/// The image an argument names: pulled first when it is a source, else looked up in the store.
fn image_id(g: &Global, store: &Store, arg: &str) -> Result<Digest, Error> {
    match SourceSpec::parse(arg) {
        Some(spec) => Ok(pull::pull(store, &spec, &g.pull_options()?)?.id),
        None => Ok(store.find_image(arg)?),
    }
}

pub fn pull(g: &Global, image: &str) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let pulled = match SourceSpec::parse(image) {
        Some(spec) => pull::pull(&store, &spec, &g.pull_options()?)?,
        None => {
            // Already in the store: nothing to import, but say which image it is.
            let id = store.find_image(image)?;
            let rec = store.image(&id)?;
            pull::Pulled { id, reference: Some(image.to_string()), layers: rec.layers.len(), unpacked: 0 }
        }
    };
    if g.json {
        print_json(&serde_json::to_value(&pulled).unwrap_or_default());
    } else {
        println!("{}", pulled.id);
    }
    Ok(())
}

pub fn images(g: &Global) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let refs = store.refs()?;
    let images = store.images()?;
    let refs_of =
        |id: &Digest| -> Vec<String> { refs.iter().filter(|(_, v)| *v == id).map(|(k, _)| k.clone()).collect() };
    if g.json {
        let list: Vec<_> = images
            .iter()
            .map(|i| {
                json!({
                    "id": i.id,
                    "references": refs_of(&i.id),
                    "layers": i.layers.len(),
                    "size": i.size(),
                    "platform": i.platform,
                    "pulled": i.pulled,
                })
            })
            .collect();
        print_json(&json!(list));
        return Ok(());
    }
    if !g.quiet {
        println!("{:<40} {:<14} {:>6} {:>10}", "REFERENCE", "ID", "LAYERS", "SIZE");
    }
    for i in &images {
        let names = refs_of(&i.id);
        let names = if names.is_empty() { vec!["<none>".to_string()] } else { names };
        for n in names {
            if g.quiet {
                println!("{}", i.id);
                break;
            }
            println!("{:<40} {:<14} {:>6} {:>10}", n, i.id.short(), i.layers.len(), human(i.size()));
        }
    }
    Ok(())
}

pub fn inspect(g: &Global, image: &str) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let id = image_id(g, &store, image)?;
    let rec = store.image(&id)?;
    let parse = |d: &Digest| -> Result<serde_json::Value, Error> {
        let bytes = store.read_blob(d)?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    };
    let manifest = parse(&rec.manifest)?;
    let config = parse(&rec.config)?;
    let mut layers = Vec::new();
    for l in &rec.layers {
        let stats = store.layer(&l.chain_id)?.map(|r| r.stats);
        layers.push(json!({
            "chain_id": l.chain_id,
            "diff_id": l.diff_id,
            "digest": l.blob,
            "media_type": l.media_type,
            "compressed_size": l.blob_size,
            "size": l.size,
            "stats": stats,
            "path": store.diff_dir(&l.chain_id),
        }));
    }
    let out = json!({
        "id": rec.id,
        "references": store.refs_of(&rec.id)?,
        "platform": rec.platform,
        "source": rec.source,
        "pulled": rec.pulled,
        "size": rec.size(),
        "manifest_digest": rec.manifest,
        "manifest": manifest,
        "config": config,
        "layers": layers,
        "history": config.get("history").cloned().unwrap_or(serde_json::Value::Null),
    });
    print_json(&out);
    Ok(())
}

pub fn bundle(g: &Global, image: &str, dir: &Path, args: BundleArgs) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let id = image_id(g, &store, image)?;
    let rec = bundle::create(&store, &id, dir, &args)?;
    if g.json {
        print_json(&serde_json::to_value(&rec).unwrap_or_default());
    } else if !g.quiet {
        println!("{}", rec.dir.display());
    }
    Ok(())
}

pub fn flatten(g: &Global, image: &str, dir: &Path) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let id = image_id(g, &store, image)?;
    let rec = store.image(&id)?;
    let stats = flatten::flatten_image(&store, &rec, dir)?;
    if g.json {
        print_json(&json!({ "id": id, "dir": dir, "files": stats.files, "bytes": stats.bytes }));
    } else if !g.quiet {
        println!("{}", dir.display());
    }
    Ok(())
}

pub fn rm(g: &Global, dir: &Path) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let rec = bundle::remove(&store, dir)?;
    if g.json {
        print_json(&json!({ "removed": rec.dir, "name": rec.name }));
    } else if !g.quiet {
        println!("{}", rec.dir.display());
    }
    Ok(())
}

pub fn gc(g: &Global) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_exclusive()?;
    let report = gc::collect(&store)?;
    if g.json {
        print_json(&serde_json::to_value(report).unwrap_or_default());
    } else if !g.quiet {
        println!(
            "removed {} layers, {} blobs, {} temporary entries; freed {}",
            report.layers,
            report.blobs,
            report.tmp,
            human(report.bytes)
        );
    }
    Ok(())
}
