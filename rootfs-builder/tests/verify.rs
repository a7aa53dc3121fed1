//! Verification: every digest, size and diff_id is checked while streaming; a mismatch, a
//! missing blob, an unsupported media type or an unknown reference is a clear error that leaves
//! nothing behind.

#![allow(clippy::unwrap_used, clippy::let_underscore_must_use)]

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

fn simple() -> Image {
    Image::new().layer(&[dir("etc"), file("etc/data", &"payload ".repeat(1000))]).layer(&[file("second", "2")])
}

fn manifest_of(layout: &Path) -> (std::path::PathBuf, Value) {
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let d = index["manifests"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let p = layout.join("blobs/sha256").join(d);
    let m = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    (p, m)
}

fn blob(layout: &Path, digest: &Value) -> std::path::PathBuf {
    layout.join("blobs/sha256").join(digest.as_str().unwrap().strip_prefix("sha256:").unwrap())
}

fn assert_clean(t: &Tool) {
    assert!(t.layer_dirs().is_empty(), "layers stored: {:?}", t.layer_dirs());
    assert!(t.tmp_entries().is_empty(), "leftovers in tmp/: {:?}", t.tmp_entries());
    assert!(names(&t.store.join("images")).is_empty(), "an image was recorded");
}

#[test]
fn corrupted_layer_blob_is_a_digest_error() {
    let s = Scratch::new("corrupt");
    let t = Tool::new(&s);
    let layout = s.join("img");
    let src = oci_layout(&layout, &simple(), "latest");
    let (_, m) = manifest_of(&layout);
    let p = blob(&layout, &m["layers"][0]["digest"]);
    let mut data = fs::read(&p).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&p, data).unwrap();
    let err = t.fails(&["pull", &src]);
    assert!(err.contains("does not match its digest"), "{err}");
    assert_clean(&t);
}

#[test]
fn truncated_or_padded_blob_is_a_size_error() {
    let s = Scratch::new("size");
    let t = Tool::new(&s);
    let layout = s.join("img");
    let img = Image::new().layer_with(&[file("f", "content")], Comp::Plain);
    let src = oci_layout(&layout, &img, "latest");
    let (mp, mut m) = manifest_of(&layout);
    // Keep the digest honest but lie about the size: the manifest (and its digest) must change.
    m["layers"][0]["size"] = Value::from(m["layers"][0]["size"].as_u64().unwrap() - 1);
    let bytes = serde_json::to_vec(&m).unwrap();
    fs::remove_file(&mp).unwrap();
    let hex = sha256_hex(&bytes);
    fs::write(layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
    let mut desc = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{hex}"), "size": bytes.len()});
    desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
    write_index(&layout, vec![desc]);
    let err = t.fails(&["pull", &src]);
    assert!(err.contains("bytes where the manifest says"), "{err}");
    assert_clean(&t);
}

#[test]
fn wrong_diff_id_is_an_error() {
    let s = Scratch::new("diffid");
    let t = Tool::new(&s);
    let layout = s.join("img");
    let img = simple();
    let src = oci_layout(&layout, &img, "latest");
    // Rewrite the config with a wrong diff_id for layer 2 (and the manifest pointing to it).
    let mut config: Value = serde_json::from_slice(&img.config_json()).unwrap();
    config["rootfs"]["diff_ids"][1] = Value::from(digest(b"not the layer"));
    let cbytes = serde_json::to_vec(&config).unwrap();
    let chex = sha256_hex(&cbytes);
    fs::write(layout.join("blobs/sha256").join(&chex), &cbytes).unwrap();
    let (_, mut m) = manifest_of(&layout);
    m["config"]["digest"] = Value::from(format!("sha256:{chex}"));
    m["config"]["size"] = Value::from(cbytes.len());
    let mbytes = serde_json::to_vec(&m).unwrap();
    let mhex = sha256_hex(&mbytes);
    fs::write(layout.join("blobs/sha256").join(&mhex), &mbytes).unwrap();
    write_index(
        &layout,
        vec![serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{mhex}"), "size": mbytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}})],
    );
    let err = t.fails(&["pull", &src]);
    assert!(err.contains("layer 2") && err.contains("does not match its diff_id"), "{err}");
    // The first layer was fine and may stay; the second must not be there.
    assert!(t.layer_dirs().len() <= 1);
    assert!(t.tmp_entries().is_empty());
}

#[test]
fn missing_blob_unsupported_media_type_and_bad_documents() {
    let s = Scratch::new("missing");
    let t = Tool::new(&s);
    let layout = s.join("img");
    let src = oci_layout(&layout, &simple(), "latest");
    let (mp, m) = manifest_of(&layout);
    let layer = blob(&layout, &m["layers"][1]["digest"]);
    let saved = fs::read(&layer).unwrap();
    fs::remove_file(&layer).unwrap();
    let err = t.fails(&["pull", &src]);
    assert!(err.contains("is missing from"), "{err}");
    fs::write(&layer, saved).unwrap();

    // Unsupported layer media type.
    let mut m2 = m.clone();
    m2["layers"][0]["mediaType"] = Value::from("application/vnd.example.squashfs");
    let bytes = serde_json::to_vec(&m2).unwrap();
    let hex = sha256_hex(&bytes);
    fs::write(layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
    let other = s.join("other");
    fs::create_dir_all(&other).unwrap();
    fs::rename(layout.join("blobs"), other.join("blobs")).unwrap();
    write_index(
        &other,
        vec![serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{hex}"), "size": bytes.len()})],
    );
    let err = t.fails(&["pull", &format!("oci:{}", other.display())]);
    assert!(err.contains("unsupported media type") && err.contains("squashfs"), "{err}");

    // A manifest blob that does not match its descriptor.
    fs::rename(other.join("blobs"), layout.join("blobs")).unwrap();
    let mut data = fs::read(&mp).unwrap();
    data[0] = b' ';
    fs::write(&mp, data).unwrap();
    let err = t.fails(&["pull", &src]);
    assert!(err.contains("manifest does not match its digest"), "{err}");
    // Layer 1 was good when layer 2 was missing and may stay; nothing else may.
    assert!(t.layer_dirs().len() <= 1);
    assert!(t.tmp_entries().is_empty());
    assert!(names(&t.store.join("images")).is_empty());
}

#[test]
fn unknown_references_and_sources_are_clear_errors() {
    let s = Scratch::new("refs");
    let t = Tool::new(&s);
    let layout = s.join("img");
    oci_layout(&layout, &simple(), "v1");
    let err = t.fails(&["pull", &format!("oci:{}:v2", layout.display())]);
    assert!(err.contains("no image named \"v2\"") && err.contains("v1"), "{err}");
    let err = t.fails(&["pull", &format!("oci:{}", s.join("nothing").display())]);
    assert!(err.contains("nothing"), "{err}");
    let err = t.fails(&["pull", &format!("oci:{}", s.path.display())]);
    assert!(err.contains("not an OCI image layout"), "{err}");
    let err = t.fails(&["bundle", "example.com/never:pulled", s.join("b").to_str().unwrap()]);
    assert!(err.contains("no image \"example.com/never:pulled\" in the store"), "{err}");
    assert!(!s.join("b").exists());
    let err = t.fails(&["inspect", "deadbeef"]);
    assert!(err.contains("no image"), "{err}");
    let docker = s.join("d.tar");
    docker_archive(&docker, &simple(), "example.com/a:1");
    let err = t.fails(&["pull", &format!("docker-archive:{}:example.com/b:2", docker.display())]);
    assert!(err.contains("example.com/a:1"), "the error must list the archive's tags: {err}");
}

#[test]
fn tampered_docker_archive_layer_fails_its_diff_id() {
    let s = Scratch::new("docker");
    let t = Tool::new(&s);
    let mut img = simple();
    let good = img.clone();
    img.layers[0].0 = layer_tar(&[file("evil", "swapped")]);
    // The config (and so diff_ids) of the good image, the layer of another.
    let path = s.join("d.tar");
    let f = fs::File::create(&path).unwrap();
    let mut b = tar::Builder::new(f);
    let add = |b: &mut tar::Builder<fs::File>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    let config = good.config_json();
    let cname = format!("{}.json", sha256_hex(&config));
    add(&mut b, &cname, &config);
    add(&mut b, "l1/layer.tar", &img.layers[0].0);
    add(&mut b, "l2/layer.tar", &img.layers[1].0);
    let manifest =
        serde_json::json!([{"Config": cname, "RepoTags": ["x:1"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]);
    add(&mut b, "manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.finish().unwrap();
    drop(b);
    let err = t.fails(&["pull", &format!("docker-archive:{}", path.display())]);
    assert!(err.contains("does not match its diff_id"), "{err}");
    assert_clean(&t);
}
