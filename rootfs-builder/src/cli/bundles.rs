//! Bundles: create, flatten, remove, list; commit a bundle's writable layer.

use std::path::Path;

use serde_json::json;

use strata_rootfs::digest::Digest;
use strata_rootfs::source::Compression;
use strata_rootfs::usage;
use strata_rootfs::{bundle, commit, flatten, flatten_source, pull};

use super::display::human;
use super::{Error, Global, Source, image_id, print_json, resolve_source, stored};

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

/// From the store when it holds the image; else streamed from the source into `dir`, which
/// writes each byte once and leaves the store as it was.
pub fn flatten(g: &Global, image: &str, dir: &Path) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let (id, stats) = match resolve_source(g, image)? {
        Some(Source { resolved, .. }) if !stored(&store, &resolved)? => {
            let progress = g.pull_options(1)?.progress;
            let stats = flatten_source::flatten_resolved(&resolved, dir, &progress, &|w| store.warn(w))?;
            (resolved.config_digest, stats)
        }
        Some(Source { resolved, name }) => {
            // Already stored: import records the reference, and reads no layer.
            let id = pull::import(&store, &resolved, &name, &g.pull_options(1)?)?.id;
            (id.clone(), flatten::flatten_image(&store, &store.image(&id)?, dir)?)
        }
        None => {
            let id = image_id(g, &store, image)?;
            (id.clone(), flatten::flatten_image(&store, &store.image(&id)?, dir)?)
        }
    };
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
    // `docker://REF`: committed into the store under REF's name, then pushed.
    let push_to = match image.strip_prefix("docker://") {
        Some(_) => Some(super::registry::destination(image)?),
        None => None,
    };
    let target = match &push_to {
        Some(r) => commit::Target::Store(r.store_name()),
        None => commit::Target::parse(image)?,
    };
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let opts = commit::Options {
        message: args.message,
        author: args.author,
        changes: args.changes,
        compression,
        pull: g.pull_options(1)?,
    };
    let done = commit::commit(&store, dir, &target, &opts)?;
    if let Some(dest) = &push_to {
        let rec = store.image(&done.id)?;
        let progress = super::display::progress(g.quiet, g.json);
        let pushed = strata_rootfs::push::push(&store, &rec, &g.access()?, dest, &progress)?;
        if g.json {
            print_json(&json!({"commit": done, "push": pushed}));
            return Ok(());
        }
    }
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
