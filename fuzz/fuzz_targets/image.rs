//! Image documents: an OCI layout (index.json, manifest, configuration) and a `docker save`
//! manifest.json, resolved and verified as `strata-rootfs pull` does, then the configuration turned
//! into a runtime config.json (with the image's /etc/passwd for `User`).
//!
//! The input is up to six parts separated by "\n--\n": index.json, manifest, configuration, layer
//! blob, docker manifest.json, passwd. Digests and sizes are written in for the placeholders
//! @MANIFEST@ @MANIFEST_SIZE@ @CONFIG@ @CONFIG_SIZE@ @CONFIG_HEX@ @LAYER@ @LAYER_SIZE@ @LAYER_HEX@, so
//! the fuzzer gets past digest verification into the parsers.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use strata_rootfs::digest::Digest;
use strata_rootfs::source::{self, Files, Platform, SourceSpec, Transport};

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() < 5 {
        match rest.windows(4).position(|w| w == b"\n--\n") {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + 4..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts.resize(6, &[]);
    parts
}

fn fill(doc: &[u8], values: &[(&str, String)]) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(doc).into_owned();
    for (k, v) in values {
        text = text.replace(k, v);
    }
    text.into_bytes()
}

fn write_blob(dir: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::sha256_of(bytes);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).expect("write a blob");
    d
}

fn scratch() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    base.join(format!("strata-fuzz-image-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
}

fuzz_target!(|data: &[u8]| {
    let p = split(data);
    let dir = scratch();
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create the layout");
    let config = write_blob(&dir, p[2]);
    let layer = write_blob(&dir, p[3]);
    let values = vec![
        ("@CONFIG_SIZE@", p[2].len().to_string()),
        ("@CONFIG_HEX@", config.hex().to_string()),
        ("@CONFIG@", config.to_string()),
        ("@LAYER_SIZE@", p[3].len().to_string()),
        ("@LAYER_HEX@", layer.hex().to_string()),
        ("@LAYER@", layer.to_string()),
    ];
    let manifest_bytes = fill(p[1], &values);
    let manifest = write_blob(&dir, &manifest_bytes);
    let mut index_values = values.clone();
    index_values.push(("@MANIFEST_SIZE@", manifest_bytes.len().to_string()));
    index_values.push(("@MANIFEST@", manifest.to_string()));
    std::fs::write(dir.join("index.json"), fill(p[0], &index_values)).expect("write index.json");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    std::fs::write(dir.join(format!("{}.json", config.hex())), p[2]).expect("write the docker config");
    std::fs::write(dir.join("manifest.json"), fill(p[4], &values)).expect("write manifest.json");
    let passwd = String::from_utf8_lossy(p[5]).into_owned();

    let oci = SourceSpec { transport: Transport::Oci, path: dir.clone(), reference: None };
    let docker = SourceSpec { transport: Transport::DockerArchive, path: dir.clone(), reference: None };
    let resolved = [
        source::oci::resolve(Files::dir(&dir).expect("open the layout"), &oci, &Platform::host()),
        source::docker::resolve(Files::dir(&dir).expect("open the layout"), &docker),
    ];
    for r in resolved.into_iter().flatten() {
        let overrides = strata_rootfs::spec::Overrides { hostname: "fuzz", ..Default::default() };
        let _spec = strata_rootfs::spec::build(&r.config, &overrides, Some(&passwd), Some(&passwd), &[]);
    }
    std::fs::remove_dir_all(&dir).expect("remove the layout");
});
