//! The store's images: list, inspect, remove, name; garbage collection.

use serde_json::json;

use strata_rootfs::digest::Digest;
use strata_rootfs::usage::{self, LayerUsers};

use super::display::human;
use super::find_stored;
use super::{Error, Global, image_id, print_json};
use strata_rootfs::gc;

pub fn images(g: &Global, digests: bool) -> Result<(), Error> {
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
                    "digest": i.manifest,
                    "source": i.source,
                })
            })
            .collect();
        print_json(&json!(list));
        return Ok(());
    }
    if !g.quiet {
        print!("{:<36} ", "REFERENCE");
        if digests {
            print!("{:<72}", "DIGEST");
        }
        println!("{:<14} {:>6} {:>10} {:>10} {:>10} {:>7}", "ID", "LAYERS", "SIZE", "SHARED", "UNIQUE", "BUNDLES");
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
            print!("{n:<36} ");
            if digests {
                print!("{:<72}", i.manifest.to_string());
            }
            println!(
                "{:<14} {:>6} {:>10} {:>10} {:>10} {:>7}",
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

/// `rmi`: untag each name; an image left without names, or named by id, is removed unless a
/// bundle uses it (`--force` removes it anyway: the bundles keep their layers until removed).
pub fn rmi(g: &Global, images: &[String], force: bool) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let _names = store.lock_names()?;
    let mut out = Vec::new();
    for arg in images {
        let id = find_stored(&store, arg)?;
        let refs = store.refs_of(&id)?;
        // A name (as typed, or normalised) is untagged; an id removes every name.
        let named: Vec<String> = refs.iter().filter(|r| names_match(r, arg)).cloned().collect();
        let untag = if named.is_empty() { refs.clone() } else { named };
        let left = refs.len() - untag.len();
        let bundles: Vec<String> = store.bundles()?.into_iter().filter(|b| b.image == id).map(|b| b.name).collect();
        if left == 0 && !bundles.is_empty() && !force {
            return Err(Error::ImageInUse(arg.clone(), bundles.join(", ")));
        }
        for r in &untag {
            store.remove_ref(r)?;
        }
        let removed = left == 0;
        if removed {
            store.remove_image(&id)?;
        }
        out.push(json!({"image": arg, "id": id, "untagged": untag, "removed": removed}));
        if !g.json && !g.quiet {
            for r in &untag {
                println!("Untagged: {r}");
            }
            if removed {
                println!("Deleted: {id}");
            }
        }
    }
    if g.json {
        print_json(&json!(out));
    }
    Ok(())
}

/// Whether the stored name `stored` is what `arg` names (`x` is `x:latest`; `docker.io/x` is
/// `docker.io/library/x:latest`).
fn names_match(stored: &str, arg: &str) -> bool {
    if stored == arg || stored == format!("{arg}:latest") {
        return true;
    }
    match strata_rootfs::registry::reference::parse(arg) {
        Ok(strata_rootfs::registry::reference::Parsed::Qualified(r)) => r.with_default_tag().store_name() == stored,
        _ => false,
    }
}

/// `tag IMAGE NAME`: NAME (`name` means `name:latest`) points at the image too.
pub fn tag(g: &Global, image: &str, name: &str) -> Result<(), Error> {
    let store = g.store()?;
    let _lock = store.lock_shared()?;
    let id = find_stored(&store, image)?;
    let name = match strata_rootfs::commit::Target::parse(name)? {
        strata_rootfs::commit::Target::Store(n) => n,
        strata_rootfs::commit::Target::Source(_) => return Err(Error::BadName(name.to_string())),
    };
    let name = match strata_rootfs::registry::reference::parse(&name) {
        Ok(strata_rootfs::registry::reference::Parsed::Qualified(r)) => r.with_default_tag().store_name(),
        _ => name,
    };
    {
        let _names = store.lock_names()?;
        store.set_ref(&name, &id)?;
    }
    if g.json {
        print_json(&json!({"id": id, "reference": name}));
    } else if !g.quiet {
        println!("{name}");
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
