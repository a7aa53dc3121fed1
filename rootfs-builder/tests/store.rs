//! The store under concurrency and crashes, sharing between bundles, and garbage collection.

#![allow(clippy::unwrap_used, clippy::let_underscore_must_use)]

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn disk_usage(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else { return 0 };
    let mut total = m.blocks() * 512;
    if m.is_dir() {
        for e in fs::read_dir(p).unwrap() {
            total += disk_usage(&e.unwrap().path());
        }
    }
    total
}

fn payload(seed: u8, len: usize) -> Vec<u8> {
    // Poorly compressible, deterministic.
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn concurrent_pulls_unpack_each_layer_once() {
    require_root();
    let s = Scratch::new("concurrent");
    let t = Tool::new(&s);
    let mut img = Image::new();
    for i in 0..5u8 {
        img = img.layer(&[bin_file(&format!("blob{i}"), payload(i, 2 << 20))]);
    }
    let src = oci_layout(&s.join("img"), &img, "latest");
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(bin())
                .arg("--store")
                .arg(&t.store)
                .args(["--json", "pull", &src])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut unpacked = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["id"], image_id(&img));
        unpacked += v["unpacked"].as_u64().unwrap();
    }
    assert_eq!(unpacked, 5, "each layer must be unpacked exactly once across the concurrent pulls");
    assert_eq!(t.layer_dirs().len(), 5);
    assert!(t.tmp_entries().is_empty());
    // And the result is right.
    let flat = s.join("flat");
    t.ok(&["flatten", &src, flat.to_str().unwrap()]);
    assert_eq!(fs::read(flat.join("blob3")).unwrap(), payload(3, 2 << 20));
}

#[test]
fn a_killed_pull_leaves_nothing_a_later_pull_trusts() {
    require_root();
    let s = Scratch::new("killed");
    let t = Tool::new(&s);
    let img = Image::new()
        .layer_with(&[file("first", "1")], Comp::Plain)
        .layer_with(&[bin_file("big", payload(7, 1 << 20))], Comp::Plain);
    let layout = s.join("img");
    let src = oci_layout(&layout, &img, "latest");
    // Swap layer 2's blob for a FIFO we feed by hand: the pull blocks in the middle of it.
    let blob_path = layout.join("blobs/sha256").join(sha256_hex(&img.layers[1].0));
    let data = fs::read(&blob_path).unwrap();
    fs::remove_file(&blob_path).unwrap();
    nix::unistd::mkfifo(&blob_path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut child = Command::new(bin())
        .arg("--store")
        .arg(&t.store)
        .args(["pull", &src])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        let mut fifo = fs::OpenOptions::new().write(true).open(&blob_path).unwrap();
        // More than a pipe holds: once written, the pull is unpacking this layer.
        fifo.write_all(&data[..data.len() / 2]).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let chain2 = {
        let d1 = digest(&img.layers[0].0);
        let d2 = digest(&img.layers[1].0);
        sha256_hex(format!("{d1} {d2}").as_bytes())
    };
    assert!(!t.layer_dirs().contains(&chain2), "the half-unpacked layer is in the store");
    assert!(names(&t.store.join("images")).is_empty(), "the killed pull recorded an image");

    fs::remove_file(&blob_path).unwrap();
    fs::write(&blob_path, &data).unwrap();
    let v = t.json(&["pull", &src]);
    assert_eq!(v["id"], image_id(&img));
    assert!(t.layer_dirs().contains(&chain2));
    let flat = s.join("flat");
    t.ok(&["flatten", &src, flat.to_str().unwrap()]);
    assert_eq!(fs::read(flat.join("big")).unwrap(), payload(7, 1 << 20));
    t.ok(&["gc"]);
    assert!(t.tmp_entries().is_empty(), "gc must clear what the killed pull left: {:?}", t.tmp_entries());
    assert_eq!(t.layer_dirs().len(), 2, "gc removed a layer in use");
}

#[test]
fn the_nth_bundle_copies_nothing() {
    require_root();
    let s = Scratch::new("nth");
    let t = Tool::new(&s);
    let img = Image::new().layer(&[dir("etc"), bin_file("big", payload(1, 8 << 20))]).layer(&[file("small", "s")]);
    let src = oci_layout(&s.join("img"), &img, "latest");
    t.ok(&["pull", &src]);
    let layers_before = disk_usage(&t.store.join("layers"));
    for i in 0..5 {
        let b = s.join(&format!("b{i}"));
        let rec = t.json(&["bundle", &image_id(&img), b.to_str().unwrap()]);
        let own = disk_usage(&t.store.join("bundles").join(rec["name"].as_str().unwrap()));
        assert!(own < 256 * 1024, "bundle {i} made {own} bytes of its own");
        assert!(names(Path::new(rec["upper"].as_str().unwrap())).is_empty(), "upper dir not empty");
        assert_eq!(fs::read(b.join("rootfs/big")).unwrap().len(), 8 << 20);
    }
    assert_eq!(disk_usage(&t.store.join("layers")), layers_before, "creating bundles changed the layers");
    // Writes go to the bundle's own upper dir, never to the shared layers.
    fs::write(s.join("b0/rootfs/big"), "changed").unwrap();
    let rec: serde_json::Value = serde_json::from_slice(&fs::read(s.join("b0/strata-bundle.json")).unwrap()).unwrap();
    assert_eq!(fs::read_to_string(Path::new(rec["upper"].as_str().unwrap()).join("big")).unwrap(), "changed");
    assert_eq!(fs::read(s.join("b1/rootfs/big")).unwrap().len(), 8 << 20, "a write leaked into another bundle");
    for i in 0..5 {
        t.ok(&["rm", s.join(&format!("b{i}")).to_str().unwrap()]);
    }
    assert!(names(&t.store.join("bundles")).is_empty());
}

#[test]
fn gc_keeps_what_an_image_or_a_bundle_uses() {
    require_root();
    let s = Scratch::new("gc");
    let t = Tool::new(&s);
    let base = vec![dir("etc"), file("etc/base", "base")];
    let a = Image::new().layer(&base).layer(&[file("a", "a")]).config(serde_json::json!({"Cmd": ["a"]}));
    let b = Image::new().layer(&base).layer(&[file("b", "b")]).config(serde_json::json!({"Cmd": ["b"]}));
    t.ok(&["pull", &oci_layout(&s.join("a"), &a, "latest")]);
    t.ok(&["pull", &oci_layout(&s.join("b"), &b, "latest")]);
    assert_eq!(t.layer_dirs().len(), 3, "the shared base layer must be stored once");
    let bundle = s.join("bundle");
    t.ok(&["bundle", &image_id(&b), bundle.to_str().unwrap()]);
    let report = t.json(&["gc"]);
    assert_eq!(
        (report["layers"].as_u64(), report["blobs"].as_u64()),
        (Some(0), Some(0)),
        "gc removed something in use"
    );

    // Forget image b (as a future `rmi` would): its bundle still holds its layers.
    fs::remove_file(t.store.join("images").join(format!("{}.json", image_id(&b).strip_prefix("sha256:").unwrap())))
        .unwrap();
    let report = t.json(&["gc"]);
    assert_eq!(report["layers"], 0, "gc removed a layer a bundle uses");
    assert!(report["blobs"].as_u64().unwrap() >= 2, "b's manifest and config are unused now");
    assert_eq!(fs::read_to_string(bundle.join("rootfs/b")).unwrap(), "b");
    t.ok(&["rm", bundle.to_str().unwrap()]);
    let report = t.json(&["gc"]);
    assert_eq!(report["layers"], 1, "b's own layer is unused once its bundle is gone");
    assert_eq!(t.layer_dirs().len(), 2);
    let flat = s.join("flat");
    t.ok(&["flatten", &image_id(&a), flat.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(flat.join("etc/base")).unwrap(), "base");
}
