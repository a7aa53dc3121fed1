//! The commands behind the command line: the library's operations, their output (plain,
//! `--quiet`, `--json`), progress and warnings. Only this side of the crate prints.

mod display;

use std::path::{Path, PathBuf};

use serde_json::json;

use strata_rootfs::digest::Digest;
use strata_rootfs::error_chain::chain;
use strata_rootfs::extract::OverlayXattrs;
use strata_rootfs::source::Compression;
use strata_rootfs::source::{Platform, SourceSpec, platform};
use strata_rootfs::store::{self, Store};
use strata_rootfs::usage::{self, LayerUsers};
use strata_rootfs::{bundle, commit, flatten, gc, pull};

use display::human;

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
    #[error(transparent)]
    Commit(#[from] commit::Error),
    #[error("unknown compression {0:?} (gzip, zstd or none)")]
    Compression(String),
}

/// Options every command takes.
#[derive(Debug, Clone)]
pub struct Global {
    pub store: PathBuf,
    pub quiet: bool,
    pub json: bool,
    pub platform: Option<String>,
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// The store a command works on; the warnings its operations recorded are printed when the
/// command is done with it, whether it succeeded or not.
struct OpenStore(Store);

impl std::ops::Deref for OpenStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.0
    }
}

impl Drop for OpenStore {
    fn drop(&mut self) {
        for w in self.0.take_warnings() {
            eprintln!("strata-rootfs: warning: {}", chain(&w));
        }
    }
}

impl Global {
    fn store(&self) -> Result<OpenStore, Error> {
        Ok(OpenStore(Store::open(&self.store)?))
    }

    fn pull_options(&self) -> Result<pull::Options, Error> {
        let platform = match &self.platform {
            Some(p) => Platform::parse(p)?,
            None => Platform::host(),
        };
        Ok(pull::Options {
            platform,
            overlay: OverlayXattrs::Trusted,
            progress: display::progress(self.quiet, self.json),
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
    let bundles = store.bundles()?;
    let users = LayerUsers::new(&images);
    let refs_of =
        |id: &Digest| -> Vec<String> { refs.iter().filter(|(_, v)| *v == id).map(|(k, _)| k.clone()).collect() };
    if g.json {
        let list: Vec<_> = images
            .iter()
            .map(|i| {
                let sizes = users.sizes(i);
                json!({
                    "id": i.id,
                    "references": refs_of(&i.id),
                    "layers": i.layers.len(),
                    "size": sizes.size,
                    "shared_size": sizes.shared_size,
                    "unique_size": sizes.unique_size,
                    "bundles": usage::bundles_of(&bundles, &i.id).len(),
                    "platform": i.platform,
                    "pulled": i.pulled,
                })
            })
            .collect();
        print_json(&json!(list));
        return Ok(());
    }
    if !g.quiet {
        println!(
            "{:<36} {:<14} {:>6} {:>10} {:>10} {:>10} {:>7}",
            "REFERENCE", "ID", "LAYERS", "SIZE", "SHARED", "UNIQUE", "BUNDLES"
        );
    }
    for i in &images {
        let names = refs_of(&i.id);
        let names = if names.is_empty() { vec!["<none>".to_string()] } else { names };
        let sizes = users.sizes(i);
        for n in names {
            if g.quiet {
                println!("{}", i.id);
                break;
            }
            println!(
                "{:<36} {:<14} {:>6} {:>10} {:>10} {:>10} {:>7}",
                n,
                i.id.short(),
                i.layers.len(),
                human(sizes.size),
                human(sizes.shared_size),
                human(sizes.unique_size),
                usage::bundles_of(&bundles, &i.id).len()
            );
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
    let images = store.images()?;
    let users = LayerUsers::new(&images);
    let sizes = users.sizes(&rec);
    let bundles: Vec<_> = store
        .bundles()?
        .into_iter()
        .filter(|b| b.image == rec.id)
        .map(|b| {
            let (bytes, entries) = usage::tree_size(&b.upper);
            json!({"name": b.name, "dir": b.dir, "writable_layer": {"path": b.upper, "size": bytes, "entries": entries}})
        })
        .collect();
    let mut layers = Vec::new();
    for l in &rec.layers {
        let shared_with: Vec<String> = users
            .others(&l.chain_id, &rec.id)
            .iter()
            .map(|id| store.refs_of(id).ok().and_then(|r| r.into_iter().next()).unwrap_or_else(|| id.to_string()))
            .collect();
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
            "shared_with": shared_with,
        }));
    }
    let out = json!({
        "id": rec.id,
        "references": store.refs_of(&rec.id)?,
        "platform": rec.platform,
        "source": rec.source,
        "pulled": rec.pulled,
        "size": sizes.size,
        "shared_size": sizes.shared_size,
        "unique_size": sizes.unique_size,
        "bundles": bundles,
        "manifest_digest": rec.manifest,
        "manifest": manifest,
        "config": config,
        "layers": layers,
        "history": config.get("history").cloned().unwrap_or(serde_json::Value::Null),
    });
    print_json(&out);
    Ok(())
}

pub fn bundle(g: &Global, image: &str, dir: &Path, args: bundle::Options) -> Result<(), Error> {
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

pub fn rm(g: &Global, dir: &Path, force: bool, state_root: &Path) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let (rec, usage) = bundle::remove(&store, dir, force, state_root)?;
    if !usage.stopped.is_empty() && !g.quiet {
        eprintln!(
            "strata-rootfs: note: strata still records the stopped container(s) {} of this bundle (strata delete ID)",
            usage.stopped.join(", ")
        );
    }
    if g.json {
        print_json(&json!({ "removed": rec.dir, "name": rec.name, "killed": usage.running, "stopped": usage.stopped }));
    } else if !g.quiet {
        if usage.in_use() {
            eprintln!("strata-rootfs: killed {}", usage.describe());
        }
        println!("{}", rec.dir.display());
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct CommitArgs {
    pub message: Option<String>,
    pub author: Option<String>,
    pub changes: Vec<String>,
    pub compress: String,
}

pub fn commit(g: &Global, dir: &Path, image: &str, args: CommitArgs) -> Result<(), Error> {
    let compression = match args.compress.as_str() {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        "none" => Compression::None,
        other => return Err(Error::Compression(other.to_string())),
    };
    let target = commit::Target::parse(image)?;
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let opts = commit::Options {
        message: args.message,
        author: args.author,
        changes: args.changes,
        compression,
        pull: g.pull_options()?,
    };
    let done = commit::commit(&store, dir, &target, &opts)?;
    if g.json {
        print_json(&serde_json::to_value(&done).unwrap_or_default());
        return Ok(());
    }
    if !g.quiet {
        let st = &done.layer.stats;
        eprintln!(
            "committed {} as {}: new layer {} ({} compressed; {} files, {} dirs, {} whiteouts, {} opaque dirs, {} of content){}",
            dir.display(),
            done.reference,
            done.layer.diff_id.short(),
            human(done.layer.size),
            st.files,
            st.dirs,
            st.whiteouts,
            st.opaque_dirs,
            human(st.bytes),
            done.written.as_deref().map(|w| format!("; written to {w}")).unwrap_or_default()
        );
        if st.changed_while_read > 0 {
            eprintln!(
                "strata-rootfs: warning: {} files changed while they were read (the container is writing them)",
                st.changed_while_read
            );
        }
        if st.sockets_skipped > 0 {
            eprintln!("strata-rootfs: note: {} sockets left out (a layer cannot hold them)", st.sockets_skipped);
        }
    }
    println!("{}", done.id);
    Ok(())
}

pub fn bundles(g: &Global) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let refs = store.refs()?;
    let name_of = |id: &Digest| -> String {
        refs.iter().find(|(_, v)| *v == id).map(|(k, _)| k.clone()).unwrap_or_else(|| id.short().to_string())
    };
    let list = store.bundles()?;
    let rows: Vec<_> = list
        .iter()
        .map(|b| {
            let (bytes, entries) = usage::tree_size(&b.upper);
            (b, bytes, entries)
        })
        .collect();
    if g.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(b, bytes, entries)| {
                json!({
                    "name": b.name, "dir": b.dir, "image": b.image, "kind": b.kind, "readonly": b.readonly,
                    "layers": b.chain.len(), "upper": b.upper, "init": b.init,
                    "writable_layer": {"size": bytes, "entries": entries},
                })
            })
            .collect();
        print_json(&json!(v));
        return Ok(());
    }
    if !g.quiet {
        println!("{:<28} {:<24} {:>6} {:>10} {:>8}  DIR", "NAME", "IMAGE", "LAYERS", "WRITTEN", "ENTRIES");
    }
    for (b, bytes, entries) in rows {
        if g.quiet {
            println!("{}", b.dir.display());
            continue;
        }
        println!(
            "{:<28} {:<24} {:>6} {:>10} {:>8}  {}",
            b.name,
            name_of(&b.image),
            b.chain.len(),
            human(bytes),
            entries,
            b.dir.display()
        );
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
