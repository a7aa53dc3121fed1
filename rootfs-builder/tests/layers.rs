//! Layer semantics: whiteouts, opaque directories, replacements, metadata, hardlinks, names,
//! compressions, formats, platforms and long chains; the flattened tree is checked entry by
//! entry and must equal an overlay bundle's merged view.

#![allow(clippy::unwrap_used, clippy::let_underscore_must_use)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::*;

const SNAP: SnapOpts = SnapOpts { dir_mtimes: true, xattrs: true };

/// Flatten `image` and mount it as a bundle; check both show the same tree; return the flat dir.
fn flatten_and_compare(t: &Tool, s: &Scratch, image: &str) -> std::path::PathBuf {
    let flat = s.join("flat");
    t.ok(&["flatten", image, flat.to_str().unwrap()]);
    let bundle = s.join("bundle");
    t.ok(&["bundle", image, bundle.to_str().unwrap()]);
    let flat_tree = snapshot(&flat, SNAP);
    let merged = without_init(snapshot(&bundle.join("rootfs"), SNAP), &flat_tree);
    assert_same_tree(&flat_tree, &merged, "flatten vs overlay bundle");
    t.ok(&["rm", bundle.to_str().unwrap()]);
    assert!(!bundle.exists(), "rm left the bundle directory");
    flat
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

#[test]
fn whiteouts_opaque_dirs_and_replacements() {
    require_root();
    let s = Scratch::new("whiteouts");
    let t = Tool::new(&s);
    let img = Image::new()
        .layer(&[
            dir("a"),
            file("a/f1", "one"),
            file("a/f2", "two"),
            dir("b"),
            file("b/x", "x"),
            symlink("l", "a/f1"),
            dir("o"),
            file("o/keep", "k"),
            dir("o/sub"),
            file("o/sub/deep", "d"),
            dir("r"),
            file("r/inner", "i"),
            file("q", "file that becomes a dir"),
        ])
        .layer(&[
            dir("a"),
            whiteout("a/f1"),
            file("a/f2", "two").mode(0o600).mtime(1_700_000_000),
            whiteout("b"),
            whiteout("l"),
            dir("o"),
            opaque("o"),
            file("o/new", "n"),
            file("r", "now a file"),
            dir("q"),
            file("q/child", "c"),
            dir("s"),
            file("s/same", "stays"),
            whiteout("s/same"),
        ])
        .layer(&[dir("o"), file("o/more", "m"), dir("b"), file("b/y", "y")]);
    let src = oci_layout(&s.join("img"), &img, "latest");
    let flat = flatten_and_compare(&t, &s, &src);

    assert!(!flat.join("a/f1").exists(), "whited-out file still there");
    assert_eq!(read(&flat.join("a/f2")), "two");
    let m = fs::metadata(flat.join("a/f2")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0o600, 1_700_000_000), "metadata-only change lost");
    assert!(fs::symlink_metadata(flat.join("l")).is_err(), "whited-out symlink still there");
    assert_eq!(names(&flat.join("b")), vec!["y"], "a re-created directory must not show the whited-out one's content");
    assert_eq!(names(&flat.join("o")), vec!["more", "new"], "opaque dir shows lower content");
    assert_eq!(read(&flat.join("r")), "now a file");
    assert!(flat.join("q").is_dir());
    assert_eq!(read(&flat.join("q/child")), "c");
    assert_eq!(read(&flat.join("s/same")), "stays", "a whiteout must not hide its own layer's file");
}

#[test]
fn metadata_hardlinks_xattrs_devices_and_names() {
    require_root();
    let s = Scratch::new("metadata");
    let t = Tool::new(&s);
    // vfs_cap_data revision 2, effective, permitted = CAP_NET_BIND_SERVICE.
    let cap: Vec<u8> = vec![1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let long_name = format!("names/{}", "l".repeat(150));
    let img = Image::new().layer(&[
        dir("bin"),
        file("bin/su", "suid").mode(0o4755),
        file("bin/sg", "sgid").mode(0o2711),
        dir("tmp").mode(0o1777),
        dir("home"),
        dir("home/user").owner(1000, 1000).mode(0o700),
        file("home/user/file", "mine").owner(1000, 1001).mtime(1_234_567_890),
        dir("data"),
        file("data/orig", "shared content"),
        hardlink("data/link1", "data/orig"),
        dir("other"),
        hardlink("other/link2", "./data/orig"),
        dir("x"),
        file("x/attr", "a").xattr("user.test", b"hello").xattr("security.capability", &cap),
        dir("names"),
        file("names/with space", "s"),
        file("names/ünïcødé ☃", "u"),
        file(&long_name, "long"),
        symlink("link-abs", "/etc/passwd"),
        dir("dev"),
        chardev("dev/null", 1, 3),
        fifo("dev/fifo"),
    ]);
    let src = oci_layout(&s.join("img"), &img, "latest");
    let flat = flatten_and_compare(&t, &s, &src);

    let mode = |p: &str| fs::symlink_metadata(flat.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("bin/su"), 0o4755);
    assert_eq!(mode("bin/sg"), 0o2711);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("home/user"), 0o700);
    let m = fs::metadata(flat.join("home/user/file")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mtime()), (1000, 1001, 1_234_567_890));
    let ino = |p: &str| fs::metadata(flat.join(p)).unwrap().ino();
    assert_eq!(ino("data/orig"), ino("data/link1"));
    assert_eq!(ino("data/orig"), ino("other/link2"), "hardlink across directories lost");
    assert_eq!(fs::metadata(flat.join("data/orig")).unwrap().nlink(), 3);
    let tree = snapshot(&flat, SNAP);
    let attrs = &tree["x/attr"].xattrs;
    assert_eq!(attrs.get("user.test").map(Vec::as_slice), Some(&b"hello"[..]));
    assert_eq!(attrs.get("security.capability"), Some(&cap));
    assert_eq!(read(&flat.join("names/with space")), "s");
    assert_eq!(read(&flat.join("names/ünïcødé ☃")), "u");
    assert_eq!(read(&flat.join(&long_name)), "long");
    assert_eq!(fs::read_link(flat.join("link-abs")).unwrap(), Path::new("/etc/passwd"));
    let null = fs::symlink_metadata(flat.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert!(fs::symlink_metadata(flat.join("dev/fifo")).unwrap().file_type().is_fifo());
}

#[test]
fn duplicate_entries_and_same_layer_replacements() {
    require_root();
    let s = Scratch::new("dups");
    let t = Tool::new(&s);
    let img = Image::new().layer(&[
        file("dup", "first"),
        file("dup", "second"),
        dir("dd"),
        file("dd/a", "a"),
        file("dd", "dir replaced by a file"),
        file("ff", "file replaced by a dir"),
        dir("ff"),
        file("ff/c", "c"),
        symlink("sl", "dup"),
        file("sl", "symlink replaced by a file"),
        dir("md").mode(0o700),
        dir("md").mode(0o751),
    ]);
    let src = oci_layout(&s.join("img"), &img, "latest");
    let flat = flatten_and_compare(&t, &s, &src);
    assert_eq!(read(&flat.join("dup")), "second");
    assert_eq!(read(&flat.join("dd")), "dir replaced by a file");
    assert_eq!(read(&flat.join("ff/c")), "c");
    assert!(fs::symlink_metadata(flat.join("sl")).unwrap().is_file());
    assert_eq!(fs::metadata(flat.join("md")).unwrap().mode() & 0o7777, 0o751, "the last duplicate must win");
}

#[test]
fn compressions_and_empty_layers() {
    require_root();
    let s = Scratch::new("comp");
    let t = Tool::new(&s);
    let img = Image::new()
        .layer_with(&[], Comp::Plain)
        .layer_with(&[file("gz", "gzip")], Comp::Gzip)
        .layer_with(&[file("zst", "zstd")], Comp::Zstd)
        .layer_with(&[file("plain", "plain")], Comp::Plain)
        .layer_with(&[], Comp::Gzip);
    let src = oci_layout(&s.join("img"), &img, "latest");
    let pulled = t.json(&["pull", &src]);
    assert_eq!(pulled["layers"], 5);
    assert_eq!(pulled["id"], image_id(&img));
    let flat = flatten_and_compare(&t, &s, &src);
    assert_eq!(names(&flat), vec!["gz", "plain", "zst"]);
    assert_eq!(read(&flat.join("zst")), "zstd");
    let inspect = t.json(&["inspect", &image_id(&img)]);
    let media: Vec<&str> =
        inspect["layers"].as_array().unwrap().iter().map(|l| l["media_type"].as_str().unwrap()).collect();
    assert_eq!(media[1], Comp::Gzip.media_type());
    assert_eq!(media[2], Comp::Zstd.media_type());
    assert_eq!(media[3], Comp::Plain.media_type());
    assert_eq!(inspect["history"].as_array().unwrap().len(), 5);
}

#[test]
fn oci_layout_oci_archive_and_docker_archive_agree() {
    require_root();
    let s = Scratch::new("formats");
    let img = Image::new()
        .layer(&[dir("etc"), file("etc/os", "test"), symlink("lnk", "etc/os")])
        .layer(&[whiteout("lnk"), file("etc/more", "more")]);
    let layout = s.join("layout");
    let oci = oci_layout(&layout, &img, "v1");
    let archive = s.join("img.oci.tar");
    tar_dir(&layout, &archive);
    let docker = s.join("img.docker.tar");
    docker_archive(&docker, &img, "example.com/test:v1");

    let mut trees = Vec::new();
    for (i, src) in
        [oci.clone(), format!("oci-archive:{}:v1", archive.display()), format!("docker-archive:{}", docker.display())]
            .iter()
            .enumerate()
    {
        // A fresh store each time, so every format is really unpacked.
        let t = Tool { store: s.join(&format!("store{i}")), env: Vec::new() };
        let pulled = t.json(&["pull", src]);
        assert_eq!(pulled["id"], image_id(&img), "{src}");
        assert_eq!(pulled["unpacked"], 2, "{src}");
        let out = s.join(&format!("flat{i}"));
        t.ok(&["flatten", src, out.to_str().unwrap()]);
        trees.push(snapshot(&out, SNAP));
    }
    assert_same_tree(&trees[0], &trees[1], "oci vs oci-archive");
    assert_same_tree(&trees[0], &trees[2], "oci vs docker-archive");
    assert!(trees[0].contains_key("etc/more") && !trees[0].contains_key("lnk"));

    // References: the layout's tag gets the directory's name; the docker tag stays whole.
    let t = Tool { store: s.join("store2"), env: Vec::new() };
    let images = t.json(&["images"]);
    assert_eq!(images[0]["references"][0], "example.com/test:v1");
    t.ok(&["inspect", "example.com/test:v1"]);
    let t0 = Tool { store: s.join("store0"), env: Vec::new() };
    assert_eq!(t0.json(&["images"])[0]["references"][0], "layout:v1");
}

#[test]
fn multi_platform_index_picks_the_host_or_the_requested_platform() {
    require_root();
    let s = Scratch::new("platforms");
    let t = Tool::new(&s);
    let layout = s.join("layout");
    // One image for this host's architecture, one for another.
    let here = strata_rootfs::source::Platform::host().arch;
    let there = if here == "arm64" { "amd64" } else { "arm64" };
    let amd = Image::new().layer(&[file("arch", &here)]).arch(&here);
    let arm = Image::new().layer(&[file("arch", there)]).arch(there);
    let manifests = vec![write_manifest(&layout, &arm), write_manifest(&layout, &amd)];
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    let hex = sha256_hex(&nested);
    fs::write(layout.join("blobs/sha256").join(&hex), &nested).unwrap();
    write_index(
        &layout,
        vec![serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        })],
    );
    let src = format!("oci:{}", layout.display());
    let host = t.json(&["pull", &src]);
    assert_eq!(host["id"], image_id(&amd), "the host's image must be picked");
    let other = t.json(&["--platform", &format!("linux/{there}"), "pull", &src]);
    assert_eq!(other["id"], image_id(&arm));
    let flat = s.join("arm");
    t.ok(&["flatten", &image_id(&arm), flat.to_str().unwrap()]);
    assert_eq!(read(&flat.join("arch")), there);
    let err = t.fails(&["--platform", "linux/s390x", "pull", &src]);
    assert!(err.contains("no image for platform linux/s390x"), "{err}");
    assert!(
        err.contains(&format!("linux/{there}")) && err.contains(&format!("linux/{here}")),
        "the error must list what there is: {err}"
    );
}

fn long_chain(n: usize, s: &Scratch) -> (Image, String) {
    let mut img = Image::new().layer(&[file("bottom", "from layer 0"), dir("layers"), file("counter", "0")]);
    for i in 1..n - 1 {
        img =
            img.layer(&[dir("layers"), file(&format!("layers/{i}"), &i.to_string()), file("counter", &i.to_string())]);
    }
    img = img.layer(&[whiteout("bottom"), file("top", "top")]);
    let src = oci_layout(&s.join("img"), &img, "latest");
    (img, src)
}

#[test]
fn two_hundred_layers_mount_and_flatten() {
    require_root();
    let s = Scratch::new("200");
    let t = Tool::new(&s);
    let (_, src) = long_chain(200, &s);
    let flat = flatten_and_compare(&t, &s, &src);
    assert_eq!(read(&flat.join("counter")), "198");
    assert_eq!(names(&flat.join("layers")).len(), 198);
    assert!(!flat.join("bottom").exists());
}

#[test]
fn chains_longer_than_one_overlay_stack_still_mount() {
    require_root();
    let s = Scratch::new("600");
    let t = Tool::new(&s);
    // 600 layers: more than the kernel's 500 lower layers per overlay. The top layer's whiteout
    // must still hide the bottom layer's file, which sits in the stacked inner overlay.
    let (_, src) = long_chain(600, &s);
    let bundle = s.join("bundle");
    if !kernel_has_lowerdir_plus() {
        // The classic option string holds about 240 layers: a clear error, nothing left behind.
        let err = t.fails(&["bundle", &src, bundle.to_str().unwrap()]);
        assert!(err.contains("use --flatten"), "{err}");
        assert!(!bundle.exists() && names(&t.store.join("bundles")).is_empty());
        return;
    }
    let rec = t.json(&["bundle", &src, bundle.to_str().unwrap()]);
    assert_eq!(rec["inner_mounts"].as_array().unwrap().len(), 1);
    let root = bundle.join("rootfs");
    assert_eq!(read(&root.join("counter")), "598");
    assert_eq!(names(&root.join("layers")).len(), 598);
    assert!(!root.join("bottom").exists(), "a whiteout above the inner overlay must hide what is below");
    assert_eq!(read(&root.join("top")), "top");
    t.ok(&["rm", bundle.to_str().unwrap()]);
    assert!(!bundle.exists());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(s.path.to_str().unwrap()), "rm left a mount behind");
}

#[test]
fn the_classic_mount_shows_the_same_tree() {
    // Kernels before 6.8 refuse lowerdir+; the classic option string, forced here, must mount
    // the very same tree, with short layer names relative to the store.
    require_root();
    let s = Scratch::new("classic");
    let t = Tool::new(&s).with_env("STRATA_ROOTFS_OVERLAY", "classic");
    let mut img = Image::new().layer(&[dir("a"), file("a/gone", "g"), dir("d"), file("d/old", "o"), file("keep", "k")]);
    img = img.layer(&[dir("a"), whiteout("a/gone"), dir("d"), opaque("d"), file("d/new", "n")]);
    for i in 0..60 {
        img = img.layer(&[file(&format!("f{i}"), &i.to_string())]);
    }
    let src = oci_layout(&s.join("img"), &img, "latest");
    let bundle = s.join("bundle");
    t.ok(&["bundle", &src, bundle.to_str().unwrap()]);
    let opts = mount_options(&bundle.join("rootfs")).expect("the bundle is mounted");
    assert!(opts.contains("lowerdir=bundles/"), "init layer relative to the store: {opts}");
    assert!(opts.contains(":l/"), "layers by short link: {opts}");
    assert!(opts.contains("upperdir=bundles/"), "{opts}");
    t.ok(&["rm", bundle.to_str().unwrap()]);
    let flat = flatten_and_compare(&t, &s, &src);
    assert!(!flat.join("a/gone").exists() && !flat.join("d/old").exists());
    assert_eq!(read(&flat.join("f59")), "59");
    // gc drops the links of layers it removes.
    fs::remove_dir_all(t.store.join("images")).unwrap();
    fs::create_dir(t.store.join("images")).unwrap();
    t.ok(&["gc"]);
    assert!(names(&t.store.join("l")).is_empty(), "gc left short links: {:?}", names(&t.store.join("l")));
}

#[test]
fn parents_left_out_of_a_layer_keep_the_lower_metadata() {
    require_root();
    let s = Scratch::new("implicit");
    let t = Tool::new(&s);
    let img = Image::new()
        .layer(&[dir("srv").owner(5, 6).mode(0o750).mtime(1_500_000_000), dir("srv/app").mode(0o711)])
        // No entries for srv/ or srv/app/, nor for new/.
        .layer(&[file("srv/app/bin", "b"), file("new/dir/f", "f")]);
    let src = oci_layout(&s.join("img"), &img, "latest");
    let flat = flatten_and_compare(&t, &s, &src);
    let m = fs::metadata(flat.join("srv")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777, m.mtime()), (5, 6, 0o750, 1_500_000_000));
    assert_eq!(fs::metadata(flat.join("srv/app")).unwrap().mode() & 0o7777, 0o711);
    let m = fs::metadata(flat.join("new/dir")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o755), "a parent no layer has is 0755 root");
}

#[test]
fn a_flatten_from_a_source_writes_the_merged_view_once_and_stores_nothing() {
    require_root();
    let s = Scratch::new("streamed");
    let t = Tool::new(&s);
    let img = Image::new()
        .layer(&[
            dir("cfg").xattr("user.lower", b"1"),
            file("cfg/conf", "c1").owner(1000, 1000),
            dir("keep"),
            file("keep/a", "a"),
            file("keep/b", "b"),
            dir("gone"),
            file("gone/x", "x"),
            dir("gone/sub"),
            file("gone/sub/y", "y"),
            dir("op").owner(5, 5).mode(0o750),
            file("op/old", "old"),
            dir("op/sub"),
            file("op/sub/old2", "o"),
            dir("op2"),
            file("op2/old", "old"),
            symlink("sl", "keep"),
            file("f2d", "file"),
            dir("d2f"),
            file("d2f/x", "x"),
            dir("data").xattr("user.lower", b"d"),
            file("data/orig", "orig"),
            hardlink("data/l1", "data/orig"),
            dir("wd"),
            file("wd/lower", "l"),
            dir("mt").mtime(1_600_000_000).owner(3, 4).mode(0o711),
            file("mt/a", "a"),
        ])
        .layer(&[
            dir("cfg").xattr("user.upper", b"2"),
            whiteout("gone"),
            dir("op"),
            opaque("op"),
            file("op/new", "n"),
            dir("op/sub"),
            file("op/sub/new2", "n2"),
            dir("op2"),
            file("op2/new", "n"),
            opaque("op2"),
            dir("sl").mtime(1_500_000_000),
            file("sl/inside", "i"),
            dir("f2d"),
            file("f2d/c", "c"),
            file("d2f", "now a file"),
            file("data/new", "new").owner(7, 8),
            hardlink("data/l2", "data/new"),
            file("wd/new", "n"),
            whiteout("wd"),
            file("mt/b", "b"),
        ])
        .layer(&[
            whiteout("keep/a"),
            dir("cfg").xattr("user.top", b"3"),
            file("cfg/conf", "c3").mode(0o600),
            dir("gone"),
            file("gone/again", "g"),
        ]);
    let src = oci_layout(&s.join("img"), &img, "latest");

    // Streamed from the source (nothing stored), compared with an overlay bundle of the image.
    let flat = flatten_and_compare(&t, &s, &src);
    let streamed = snapshot(&flat, SNAP);
    // Nothing of this image was in the store before the bundle pulled it.
    let fresh = Tool { store: s.join("untouched-store"), env: Vec::new() };
    let again = s.join("again");
    fresh.ok(&["flatten", &src, again.to_str().unwrap()]);
    assert!(fresh.layer_dirs().is_empty(), "a flatten from a source stored layers: {:?}", fresh.layer_dirs());
    assert!(names(&fresh.store.join("images")).is_empty(), "a flatten from a source recorded the image");
    assert!(names(&fresh.store.join("blobs/sha256")).is_empty(), "a flatten from a source stored blobs");
    // The store's copy (the image is stored now) gives the very same tree.
    let from_store = s.join("from-store");
    t.ok(&["flatten", &image_id(&img), from_store.to_str().unwrap()]);
    assert_same_tree(&streamed, &snapshot(&from_store, SNAP), "streamed flatten vs flatten from the store");

    let tree = &streamed;
    let xattrs: Vec<&String> = tree["cfg"].xattrs.keys().collect();
    assert_eq!(xattrs, vec!["user.top"], "a directory shows its top layer's attributes only");
    assert!(tree["data"].xattrs.is_empty(), "a layer's parent directory left out shows no lower attributes");
    let conf = fs::metadata(flat.join("cfg/conf")).unwrap();
    assert_eq!((read(&flat.join("cfg/conf")), conf.uid(), conf.mode() & 0o7777), ("c3".into(), 0, 0o600));
    assert_eq!(names(&flat.join("keep")), vec!["b"]);
    assert_eq!(names(&flat.join("gone")), vec!["again"], "a whited-out directory came back with content");
    assert_eq!(names(&flat.join("op")), vec!["new", "sub"]);
    assert_eq!(names(&flat.join("op/sub")), vec!["new2"], "opaque directory shows lower content below it");
    assert_eq!(names(&flat.join("op2")), vec!["new"], "opaque marker after the layer's own entries");
    let op = fs::metadata(flat.join("op")).unwrap();
    assert_eq!((op.uid(), op.mode() & 0o7777), (0, 0o755), "the upper directory entry's metadata");
    assert!(flat.join("sl").is_dir() && !fs::symlink_metadata(flat.join("sl")).unwrap().is_symlink());
    assert_eq!(names(&flat.join("sl")), vec!["inside"], "a lower symlink was followed");
    assert_eq!(read(&flat.join("f2d/c")), "c");
    assert_eq!(read(&flat.join("d2f")), "now a file");
    assert_eq!(names(&flat.join("data")), vec!["l1", "l2", "new", "orig"]);
    let ino = |p: &str| fs::metadata(flat.join(p)).unwrap().ino();
    assert_eq!(ino("data/new"), ino("data/l2"), "hardlink of the upper layer lost");
    let new = fs::metadata(flat.join("data/new")).unwrap();
    assert_eq!((new.uid(), new.gid(), new.nlink()), (7, 8, 2));
    assert_eq!(ino("data/orig"), ino("data/l1"), "hardlink of the lower layer lost");
    assert_eq!(names(&flat.join("wd")), vec!["new"], "a whiteout after its layer's own directory content");
    let mt = fs::metadata(flat.join("mt")).unwrap();
    assert_eq!(
        (mt.mtime(), mt.uid(), mt.gid(), mt.mode() & 0o7777),
        (1_600_000_000, 3, 4, 0o711),
        "a directory an upper layer only writes into keeps its metadata"
    );
}
