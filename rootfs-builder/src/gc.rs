//! `gc`: remove what no image and no bundle uses. Runs with the store lock held exclusively, so
//! no pull or bundle is half-recorded while it decides.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::digest::Digest;
use crate::store::{self, Store, list_names};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("removing {0}")]
    Remove(String, #[source] std::io::Error),
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Report {
    pub layers: usize,
    pub blobs: usize,
    pub tmp: usize,
    pub bytes: u64,
}

fn disk_usage(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else { return 0 };
    let mut total = m.blocks() * 512;
    if m.is_dir()
        && let Ok(rd) = fs::read_dir(p)
    {
        for e in rd.flatten() {
            total += disk_usage(&e.path());
        }
    }
    total
}

fn remove(p: &Path, report: &mut Report) -> Result<(), Error> {
    report.bytes += disk_usage(p);
    let res = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => store::remove_tree(p),
        Ok(_) => fs::remove_file(p),
        Err(_) => Ok(()),
    };
    res.map_err(|e| Error::Remove(p.display().to_string(), e))
}

pub fn collect(store: &Store) -> Result<Report, Error> {
    let mut live_layers: HashSet<Digest> = HashSet::new();
    let mut live_blobs: HashSet<Digest> = HashSet::new();
    for image in store.images()? {
        live_blobs.insert(image.manifest.clone());
        live_blobs.insert(image.config.clone());
        for l in &image.layers {
            live_layers.insert(l.chain_id.clone());
            live_blobs.insert(l.blob.clone());
        }
    }
    for b in store.bundles()? {
        live_layers.extend(b.chain.iter().cloned());
    }
    let mut report = Report::default();
    let root = store.root();
    for name in list_names(&root.join("layers"))? {
        let keep = Digest::parse(&format!("sha256:{name}")).is_ok_and(|d| live_layers.contains(&d));
        if !keep {
            remove(&root.join("layers").join(&name), &mut report)?;
            report.layers += 1;
        }
    }
    for alg in ["sha256", "sha512"] {
        for name in list_names(&root.join("blobs").join(alg))? {
            let keep = Digest::parse(&format!("{alg}:{name}")).is_ok_and(|d| live_blobs.contains(&d));
            if !keep {
                remove(&root.join("blobs").join(alg).join(&name), &mut report)?;
                report.blobs += 1;
            }
        }
    }
    // Short links (classic overlay mounts) of layers that are gone.
    for name in list_names(&root.join("l"))? {
        if crate::overlay::is_dangling_link(store, &name) {
            remove(&root.join("l").join(&name), &mut Report::default())?;
        }
    }
    // Nothing is in progress while the store lock is held exclusively: all of tmp/ is leftover.
    for name in list_names(&store.tmp_dir())? {
        remove(&store.tmp_dir().join(&name), &mut report)?;
        report.tmp += 1;
    }
    for name in list_names(&root.join("locks"))? {
        if name.starts_with("layer-") {
            remove(&root.join("locks").join(&name), &mut Report::default())?;
        }
    }
    Ok(report)
}
