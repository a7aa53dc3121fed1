//! Bundles: config.json per image-spec conversion.md, the init layer, read-only and flattened
//! bundles, and what `rm` and bad input leave behind.

#![allow(clippy::unwrap_used, clippy::let_underscore_must_use)]

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::{Value, json};

fn image() -> Image {
    Image::new()
        .layer(&[
            dir("etc"),
            file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"),
            file("etc/group", "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:alice\n"),
            dir("work"),
            dir("data").owner(1000, 1000),
        ])
        .config(json!({
            "Entrypoint": ["/bin/ep"],
            "Cmd": ["a"],
            "Env": ["PATH=/custom", "A=1"],
            "WorkingDir": "/work",
            "User": "alice",
            "Volumes": {"/data": {}, "/var/cache": {}},
            "Labels": {"l": "v", "org.opencontainers.image.os": "label-wins"},
            "StopSignal": "SIGQUIT",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        }))
}

fn config(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap()
}

#[test]
fn config_json_follows_the_conversion_rules() {
    require_root();
    let s = Scratch::new("config");
    let t = Tool::new(&s);
    let img = image();
    let src = oci_layout(&s.join("img"), &img, "latest");
    let b = s.join("b");
    t.ok(&["bundle", &src, b.to_str().unwrap(), "--name", "conv"]);
    let c = config(&b);
    let p = &c["process"];
    assert_eq!(p["args"], json!(["/bin/ep", "a"]));
    assert_eq!(
        p["env"],
        json!(["PATH=/custom", "A=1", "HOME=/home/alice"]),
        "no default may change or add to the image's PATH; HOME comes from the user's passwd entry"
    );
    assert_eq!(p["cwd"], "/work");
    assert_eq!(p["user"], json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 29]}));
    assert_eq!(p["terminal"], false);
    assert_eq!(c["root"], json!({"path": "rootfs", "readonly": false}));
    assert_eq!(c["hostname"], "conv");
    let a = &c["annotations"];
    assert_eq!(a["l"], "v");
    assert_eq!(a["org.opencontainers.image.os"], "label-wins", "labels take precedence");
    assert_eq!(a["org.opencontainers.image.architecture"], "amd64");
    assert_eq!(a["org.opencontainers.image.created"], "2024-01-02T03:04:05Z");
    assert_eq!(a["org.opencontainers.image.stopSignal"], "SIGQUIT");
    let ports: Vec<&str> = a["org.opencontainers.image.exposedPorts"].as_str().unwrap().split(',').collect();
    assert!(ports.contains(&"80/tcp") && ports.contains(&"53/udp"));
    let mounts = c["mounts"].as_array().unwrap();
    for dest in ["/proc", "/dev", "/dev/pts", "/sys"] {
        assert!(mounts.iter().any(|m| m["destination"] == dest), "default mount {dest} missing");
    }
    for dest in ["/data", "/var/cache"] {
        let m = mounts.iter().find(|m| m["destination"] == dest).unwrap_or_else(|| panic!("volume {dest} missing"));
        assert_eq!(m["type"], "bind");
        assert!(Path::new(m["source"].as_str().unwrap()).is_dir(), "volume source missing");
    }
    let linux = &c["linux"];
    let ns: Vec<&str> = linux["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&want), "namespace {want} missing");
    }
    assert!(!linux["maskedPaths"].as_array().unwrap().is_empty());
    assert!(!p["capabilities"]["bounding"].as_array().unwrap().is_empty());

    // The init layer.
    let root = b.join("rootfs");
    assert_eq!(fs::read_to_string(root.join("etc/hostname")).unwrap(), "conv\n");
    assert!(fs::read_to_string(root.join("etc/hosts")).unwrap().contains("conv"));
    assert!(root.join("etc/resolv.conf").is_file());
    for d in ["proc", "sys", "dev", "dev/pts", "dev/shm"] {
        assert!(root.join(d).is_dir(), "mount point {d} missing");
    }
    assert!(
        fs::read_to_string(root.join("etc/passwd")).unwrap().contains("alice"),
        "image files hidden by the init layer"
    );

    // The record, in the store and in the bundle directory.
    let rec: Value = serde_json::from_slice(&fs::read(b.join("strata-bundle.json")).unwrap()).unwrap();
    let stored: Value = serde_json::from_slice(&fs::read(t.store.join("bundles/conv.json")).unwrap()).unwrap();
    assert_eq!(rec, stored);
    assert_eq!(rec["image"], image_id(&img));
    assert_eq!(rec["chain"].as_array().unwrap().len(), 1);
    for k in ["upper", "work", "init"] {
        assert!(Path::new(rec[k].as_str().unwrap()).is_dir(), "{k} dir missing");
    }
    assert_ne!(rec["upper"], rec["init"]);
    t.ok(&["rm", b.to_str().unwrap()]);
    assert!(!b.exists() && !t.store.join("bundles/conv.json").exists() && !t.store.join("bundles/conv").exists());
}

#[test]
fn overrides_replace_cmd_env_user_workdir_and_hostname() {
    require_root();
    let s = Scratch::new("overrides");
    let t = Tool::new(&s);
    let src = oci_layout(&s.join("img"), &image(), "latest");
    let b = s.join("b");
    let args = [
        "bundle",
        &src,
        b.to_str().unwrap(),
        "--env",
        "A=2",
        "--env",
        "B=3",
        "--user",
        "1234:5678",
        "--workdir",
        "/tmp",
        "--hostname",
        "h1",
        "--",
        "x",
        "y",
    ];
    t.ok(&args);
    let c = config(&b);
    assert_eq!(c["process"]["args"], json!(["/bin/ep", "x", "y"]));
    // User 1234 has no passwd entry: HOME is `/`, as podman sets it.
    assert_eq!(c["process"]["env"], json!(["PATH=/custom", "A=2", "B=3", "HOME=/"]));
    assert_eq!(c["process"]["user"], json!({"uid": 1234, "gid": 5678}));
    assert_eq!(c["process"]["cwd"], "/tmp");
    assert_eq!(c["hostname"], "h1");
    assert_eq!(fs::read_to_string(b.join("rootfs/etc/hostname")).unwrap(), "h1\n");
    let b2 = s.join("b2");
    t.ok(&["bundle", &image_id(&image()), b2.to_str().unwrap(), "--user", "alice:wheel"]);
    assert_eq!(
        config(&b2)["process"]["user"],
        json!({"uid": 1000, "gid": 10}),
        "a group given means no additional gids"
    );
}

#[test]
fn bad_bundles_leave_nothing_behind() {
    require_root();
    let s = Scratch::new("badbundle");
    let t = Tool::new(&s);
    let src = oci_layout(&s.join("img"), &image(), "latest");
    let b = s.join("b");
    let err = t.fails(&["bundle", &src, b.to_str().unwrap(), "--user", "mallory"]);
    assert!(err.contains("\"mallory\" is not in the image's /etc/passwd"), "{err}");
    assert!(!b.exists(), "a failed bundle left its directory");
    assert!(names(&t.store.join("bundles")).is_empty(), "a failed bundle left a record");
    assert!(!fs::read_to_string("/proc/self/mountinfo").unwrap().contains(s.path.to_str().unwrap()));

    let no_cmd = Image::new().layer(&[file("f", "f")]).config(json!({}));
    let err = t.fails(&["bundle", &oci_layout(&s.join("nocmd"), &no_cmd, "latest"), b.to_str().unwrap()]);
    assert!(err.contains("neither Entrypoint nor Cmd"), "{err}");
    assert!(!b.exists());

    let full = s.join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("precious"), "keep").unwrap();
    let err = t.fails(&["bundle", &src, full.to_str().unwrap()]);
    assert!(err.contains("not an empty directory"), "{err}");
    assert_eq!(fs::read_to_string(full.join("precious")).unwrap(), "keep");

    t.ok(&["bundle", &src, b.to_str().unwrap(), "--name", "taken"]);
    let err = t.fails(&["bundle", &src, s.join("c").to_str().unwrap(), "--name", "taken"]);
    assert!(err.contains("exists already"), "{err}");
    let err = t.fails(&["bundle", &src, s.join("c").to_str().unwrap(), "--name", "../evil"]);
    assert!(err.contains("invalid bundle name"), "{err}");
    let err = t.fails(&["rm", full.to_str().unwrap()]);
    assert!(err.contains("not a bundle"), "{err}");
    assert_eq!(fs::read_to_string(full.join("precious")).unwrap(), "keep");
    let err = t.fails(&["bundle", &src, s.join("c").to_str().unwrap(), "--env", "NOEQUALS"]);
    assert!(err.contains("--env"), "{err}");
    let err = t.fails(&["bundle", &src, s.join("c").to_str().unwrap(), "--hostname", "h\n1.2.3.4 evil"]);
    assert!(err.contains("invalid hostname"), "{err}");
    let bad_volume =
        Image::new().layer(&[file("f", "f")]).config(json!({"Cmd": ["x"], "Volumes": {"../../escape": {}}}));
    let err =
        t.fails(&["bundle", &oci_layout(&s.join("badvol"), &bad_volume, "latest"), s.join("c").to_str().unwrap()]);
    assert!(err.contains("volume \"../../escape\""), "{err}");
    assert!(!s.join("c").exists());
}

#[test]
fn readonly_and_flattened_bundles() {
    require_root();
    let s = Scratch::new("rofl");
    let t = Tool::new(&s);
    let src = oci_layout(&s.join("img"), &image(), "latest");
    let ro = s.join("ro");
    t.ok(&["bundle", &src, ro.to_str().unwrap(), "--readonly"]);
    assert_eq!(config(&ro)["root"]["readonly"], true);
    let err = fs::write(ro.join("rootfs/new"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::errno::Errno::EROFS as i32), "a read-only bundle accepted a write: {err}");
    t.ok(&["rm", ro.to_str().unwrap()]);

    let fl = s.join("fl");
    let rec = t.json(&["bundle", &src, fl.to_str().unwrap(), "--flatten"]);
    assert_eq!(rec["kind"], "flatten");
    let root = fl.join("rootfs");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(&root).unwrap().dev(),
        fs::metadata(&fl).unwrap().dev(),
        "a flattened rootfs is not a mount"
    );
    assert!(fs::read_to_string(root.join("etc/passwd")).unwrap().contains("alice"));
    assert!(root.join("etc/hosts").is_file() && root.join("proc").is_dir());
    t.ok(&["rm", fl.to_str().unwrap()]);
    assert!(!fl.exists());
}

#[test]
fn images_and_inspect_describe_the_store() {
    require_root();
    let s = Scratch::new("inspect");
    let t = Tool::new(&s);
    let img = image();
    let src = oci_layout(&s.join("img"), &img, "v3");
    t.ok(&["--quiet", "pull", &src]);
    let list = t.json(&["images"]);
    assert_eq!(list[0]["id"], image_id(&img));
    assert_eq!(list[0]["references"], json!(["img:v3"]));
    assert_eq!(list[0]["layers"], 1);
    let plain = t.ok(&["images"]);
    assert!(plain.contains("img:v3") && plain.contains(&image_id(&img)[7..19]), "{plain}");
    let id = image_id(&img);
    for name in ["img:v3", &id, &id[7..19]] {
        let v = t.json(&["inspect", name]);
        assert_eq!(v["id"], id, "{name}");
        assert_eq!(v["config"]["config"]["User"], "alice");
        assert_eq!(v["manifest"]["schemaVersion"], 2);
        assert_eq!(v["layers"][0]["diff_id"], digest(&img.layers[0].0));
        assert_eq!(v["history"][0]["created_by"], "layer 0");
    }
    assert_eq!(t.ok(&["--quiet", "pull", "img:v3"]).trim(), id);
}

#[test]
fn init_layer_directories_keep_the_images_owner_and_mode_and_default_to_root() {
    // The image's /etc and /dev with their own owner and mode (/dev setgid: a directory made in it
    // takes its group unless chowned); /proc, /sys and /dev/* missing: root's, with the defaults.
    require_root();
    let s = Scratch::new("init-owners");
    let t = Tool::new(&s);
    let img = Image::new().layer(&[
        dir("etc").owner(1000, 1001).mode(0o711),
        file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        dir("dev").owner(1000, 1001).mode(0o2750),
    ]);
    let src = oci_layout(&s.join("img"), &img, "latest");
    let b = s.join("b");
    t.ok(&["bundle", &src, b.to_str().unwrap(), "--name", "owners"]);
    let root = b.join("rootfs");
    let seen = |p: &str| {
        let m = fs::symlink_metadata(root.join(p)).unwrap();
        use std::os::unix::fs::MetadataExt;
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(seen("etc"), (1000, 1001, 0o711), "/etc as the image has it");
    assert_eq!(seen("dev"), (1000, 1001, 0o2750), "/dev as the image has it, setgid kept");
    assert_eq!(seen("dev/pts"), (0, 0, 0o755), "/dev/pts: root's, not the setgid parent's group");
    assert_eq!(seen("dev/shm"), (0, 0, 0o1777));
    assert_eq!(seen("dev/mqueue"), (0, 0, 0o1777));
    assert_eq!(seen("proc"), (0, 0, 0o555));
    assert_eq!(seen("sys"), (0, 0, 0o555));
    assert_eq!(seen("etc/hosts"), (0, 0, 0o644));
    assert_eq!(seen("etc/resolv.conf"), (0, 0, 0o644));
    t.ok(&["rm", b.to_str().unwrap()]);
}
