//! strata-rootfs run by an unprivileged user (issue 14): made here (as root) with `useradd`,
//! removed again. As that user: the default store under $XDG_DATA_HOME or $HOME, an image with a
//! whiteout, an opaque directory, a device node, a setuid file and files of other owners imported
//! into it (checked on disk: the user's files, 0/0 whiteout devices, `user.overlay.opaque`, the
//! image's owners in `user.strata.owner`), the unpacked layers mounted by the user as an overlay
//! with `userxattr` in its own user namespace, `flatten`, an overlay bundle refused, a flat
//! bundle run by `strata run` as the user, and stores of root and of a user kept apart.
//!
//! Needs root (useradd, runuser), unshare (util-linux), /bin/busybox (busybox-static) and the
//! `strata` binary next to `strata-rootfs` (`cargo build -p strata`; `cargo test --workspace`
//! builds it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::CString;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::{Value, json};

/// An unprivileged user for one test, removed when dropped.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create() -> Self {
        let name = format!("strata-rfs{}", std::process::id());
        let out = Command::new("useradd")
            .args(["--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
            .args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", &name])
            .output()
            .expect("useradd (this test runs as root)");
        assert!(out.status.success(), "useradd {name}: {}", String::from_utf8_lossy(&out.stderr));
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Self { name, uid, gid }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // What the user left running would keep userdel from removing it: nothing is expected.
        match Command::new("userdel").arg(&self.name).status() {
            Ok(st) if st.success() => {}
            other => eprintln!("userdel {} failed ({other:?}): remove the user by hand", self.name),
        }
    }
}

/// Running programs as the test user with only the environment given.
struct AsUser<'a> {
    user: &'a TestUser,
    env: Vec<(String, String)>,
}

impl AsUser<'_> {
    fn run(&self, program: &Path, args: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", &self.user.name, "--", "env", "-i", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"])
            .args(self.env.iter().map(|(k, v)| format!("{k}={v}")))
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// With no standard streams (a container started by it may outlive it).
    fn detached(&self, program: &Path, args: &[&str]) {
        let st = Command::new("runuser")
            .args(["-u", &self.user.name, "--", "env", "-i", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"])
            .args(self.env.iter().map(|(k, v)| format!("{k}={v}")))
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{} {args:?} as {}: {st}", program.display(), self.user.name);
    }

    fn ok(&self, program: &Path, args: &[&str]) -> Output {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{} {args:?} as {} failed: {}\n{}",
            program.display(),
            self.user.name,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    fn fails(&self, program: &Path, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            !out.status.success(),
            "{} {args:?} as {} succeeded: {}",
            program.display(),
            self.user.name,
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let parent = fs::File::open(path.parent().unwrap()).unwrap();
    let name = CString::new(path.file_name().unwrap().as_encoded_bytes()).unwrap();
    let key = CString::new(key).unwrap();
    strata_rootfs::sys::xattr::get_at(parent.as_fd(), &name, &key).unwrap()
}

const APPLETS: [&str; 8] = ["sh", "cat", "ls", "id", "stat", "test", "echo", "mkdir"];

/// Busybox, a file and a directory of other owners, a setuid file, a device node, a file the
/// second layer whites out and a directory it makes opaque.
fn image() -> Image {
    let mut first = busybox_root(&APPLETS);
    first.extend([
        dir("data").owner(123, 456),
        file("data/owned", "owned by 123:456\n").owner(123, 456),
        file("data/setuid", "s").mode(0o4755),
        file("data/gone", "whited out by layer 2\n"),
        dir("data/opq"),
        dir("data/ro").mode(0o555),
        file("data/ro/file", "in a directory its owner may not write\n"),
        file("data/opq/old", "hidden by the opaque directory\n"),
        dir("dev"),
        chardev("dev/null", 1, 3),
    ]);
    Image::new()
        .layer(&first)
        .layer(&[dir("data").owner(123, 456), whiteout("data/gone"), opaque("data/opq"), file("data/opq/new", "new\n")])
        .config(json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}))
}

/// The `strata` runtime binary, built next to this one.
fn strata_bin() -> PathBuf {
    let p = Path::new(bin()).with_file_name("strata");
    assert!(p.exists(), "{} is missing: cargo build -p strata", p.display());
    p
}

fn stat(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn an_unprivileged_user_imports_flattens_and_runs_an_image() {
    let s = Scratch::new("rootless");
    let user = TestUser::create();
    // The scratch directory is root's 0755: the user gets a home and a runtime directory in it,
    // and its own copies of the binaries.
    let home = s.join("home");
    let xdg = s.join("xdg");
    for d in [&home, &xdg] {
        fs::create_dir(d).unwrap();
        std::os::unix::fs::chown(d, Some(user.uid), Some(user.gid)).unwrap();
    }
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
    let rootfs_bin = s.join("strata-rootfs");
    let strata = s.join("strata");
    fs::copy(bin(), &rootfs_bin).unwrap();
    fs::copy(strata_bin(), &strata).unwrap();
    let layout = s.join("layout");
    let img = image();
    oci_layout(&layout, &img, "latest");
    let archive = s.join("image.tar");
    tar_dir(&layout, &archive);
    fs::set_permissions(&archive, fs::Permissions::from_mode(0o644)).unwrap();
    let src = format!("oci-archive:{}", archive.display());

    let plain = AsUser { user: &user, env: vec![("HOME".into(), home.display().to_string())] };

    // No HOME, no XDG_DATA_HOME: nowhere to keep a store.
    let bare = AsUser { user: &user, env: vec![] };
    let err = bare.fails(&rootfs_bin, &["images"]);
    assert!(err.contains("XDG_DATA_HOME") && err.contains("--store"), "{err}");

    // $XDG_DATA_HOME first.
    let data_home = home.join("data");
    let with_xdg = AsUser {
        user: &user,
        env: vec![
            ("HOME".into(), home.display().to_string()),
            ("XDG_DATA_HOME".into(), data_home.display().to_string()),
        ],
    };
    with_xdg.ok(&rootfs_bin, &["images"]);
    assert_eq!(fs::read_to_string(data_home.join("strata/format")).unwrap(), "rootless\n");

    // flatten of a source that store does not hold: streamed, the same rules.
    let streamed = home.join("streamed");
    let out = with_xdg.ok(&rootfs_bin, &["flatten", &src, streamed.to_str().unwrap()]);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.contains("1 device node(s) left out"), "flatten said: {warnings}");
    assert!(names(&data_home.join("strata/layers")).is_empty(), "a streamed flatten left layers");
    assert!(!streamed.join("data/gone").exists() && !streamed.join("data/opq/old").exists());
    assert!(!streamed.join("dev/null").exists());
    assert_eq!(names(&streamed.join("data/opq")), ["new"]);
    assert_eq!(xattr(&streamed.join("data/owned"), "user.strata.owner").as_deref(), Some(&b"123:456"[..]));
    assert_eq!(xattr(&streamed.join("data"), "user.strata.owner").as_deref(), Some(&b"123:456"[..]));
    assert_eq!(stat(&streamed.join("data/setuid")).mode() & 0o7777, 0o4755);

    // Else $HOME/.local/share/strata, private to the user.
    let out = plain.ok(&rootfs_bin, &["pull", &src]);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.contains("1 device node(s) left out"), "pull said: {warnings}");
    let store = home.join(".local/share/strata");
    let st = stat(&store);
    assert_eq!((st.uid(), st.mode() & 0o7777), (user.uid, 0o700), "the store directory");
    assert_eq!(fs::read_to_string(store.join("format")).unwrap(), "rootless\n");

    // The layers on disk: the user's files, owners in user.strata.owner, overlay's user.* form.
    let layers: Vec<PathBuf> = {
        let mut by_parent: Vec<(Option<String>, PathBuf)> = names(&store.join("layers"))
            .into_iter()
            .map(|n| {
                let rec: Value =
                    serde_json::from_slice(&fs::read(store.join("layers").join(&n).join("layer.json")).unwrap())
                        .unwrap();
                assert_eq!(rec["overlay"], "user", "{n}: {rec}");
                (rec["parent"].as_str().map(str::to_string), store.join("layers").join(&n).join("diff"))
            })
            .collect();
        by_parent.sort_by_key(|(p, _)| p.is_some());
        by_parent.into_iter().map(|(_, d)| d).collect()
    };
    assert_eq!(layers.len(), 2, "{layers:?}");
    let (lower, upper) = (&layers[0], &layers[1]);
    for p in [lower.join("data/owned"), lower.join("bin/busybox"), upper.join("data")] {
        assert_eq!(stat(&p).uid(), user.uid, "{} is the user's", p.display());
    }
    assert_eq!(xattr(&lower.join("data/owned"), "user.strata.owner").as_deref(), Some(&b"123:456"[..]));
    assert_eq!(xattr(&upper.join("data"), "user.strata.owner").as_deref(), Some(&b"123:456"[..]));
    assert_eq!(xattr(&lower.join("bin/busybox"), "user.strata.owner"), None, "0:0 is not recorded");
    assert_eq!(stat(&lower.join("data/setuid")).mode() & 0o7777, 0o4755, "setuid kept");
    assert!(!lower.join("dev/null").exists(), "the device node is left out");
    let gone = stat(&upper.join("data/gone"));
    assert!(gone.file_type().is_char_device() && gone.rdev() == 0, "the whiteout is a 0/0 char device");
    assert_eq!(xattr(&upper.join("data/opq"), "user.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert_eq!(xattr(&upper.join("data/opq"), "trusted.overlay.opaque"), None);

    // The user mounts the layers itself: an overlay with userxattr in its own namespaces.
    let mnt = home.join("mnt");
    let script = format!(
        "mkdir {m} && mount -t overlay -o userxattr,lowerdir={u}:{l} none {m} && \
         ls {m}/data; echo --; ls {m}/data/opq",
        m = mnt.display(),
        u = upper.display(),
        l = lower.display()
    );
    let out = plain.ok(Path::new("/usr/bin/unshare"), &["-Urm", "sh", "-c", &script]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listing, "opq\nowned\nro\nsetuid\n--\nnew\n", "the unprivileged overlay shows");

    // flatten: whiteouts applied, owners kept in the attribute.
    let flat = home.join("flat");
    plain.ok(&rootfs_bin, &["flatten", &src, flat.to_str().unwrap()]);
    assert!(!flat.join("data/gone").exists() && !flat.join("data/opq/old").exists());
    assert_eq!(fs::read_to_string(flat.join("data/opq/new")).unwrap(), "new\n");
    assert_eq!(xattr(&flat.join("data/owned"), "user.strata.owner").as_deref(), Some(&b"123:456"[..]));
    assert_eq!(xattr(&flat.join("data"), "user.strata.owner").as_deref(), Some(&b"123:456"[..]));
    assert_eq!(names(&flat.join("data/opq")), ["new"]);
    assert_eq!(stat(&flat.join("data/setuid")).mode() & 0o7777, 0o4755);

    // An overlay bundle: refused, naming --flatten, nothing left.
    let ob = home.join("overlay-bundle");
    let err = plain.fails(&rootfs_bin, &["bundle", &src, ob.to_str().unwrap()]);
    assert!(err.contains("--flatten"), "{err}");
    assert!(!ob.exists(), "the refused bundle left {}", ob.display());
    assert!(names(&store.join("bundles")).is_empty(), "{:?}", names(&store.join("bundles")));

    // A flat bundle that `strata run` starts as the same user.
    let b = home.join("bundle");
    plain.ok(&rootfs_bin, &["bundle", "--flatten", &src, b.to_str().unwrap()]);
    let config: Value = serde_json::from_slice(&fs::read(b.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["linux"]["uidMappings"], json!([{"containerID": 0, "hostID": user.uid, "size": 1}]));
    let run_env = AsUser {
        user: &user,
        env: vec![("HOME".into(), home.display().to_string()), ("XDG_RUNTIME_DIR".into(), xdg.display().to_string())],
    };
    let cmd = "id -u; ls /data; ls /data/opq; cat /data/owned; stat -c '%a %u' /data/setuid; echo done";
    let id = format!("rootless-rootfs-{}", std::process::id());
    let mut config = config.clone();
    config["process"]["args"] = json!(["sh", "-c", cmd]);
    fs::write(b.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    let out = run_env.ok(&strata, &["run", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0\nopq\nowned\nro\nsetuid\nnew\nowned by 123:456\n4755 0\ndone\n",
        "the container saw (stderr: {})",
        String::from_utf8_lossy(&out.stderr)
    );

    // rm names a container of the user's strata (state in $XDG_RUNTIME_DIR/strata) and refuses.
    let created = format!("{id}-created");
    run_env.detached(&strata, &["create", "--bundle", b.to_str().unwrap(), &created]);
    let err = run_env.fails(&rootfs_bin, &["rm", b.to_str().unwrap()]);
    run_env.ok(&strata, &["delete", "--force", &created]);
    assert!(err.contains(&created), "rm of a bundle in use said: {err}");

    run_env.ok(&rootfs_bin, &["rm", b.to_str().unwrap()]);
    assert!(!b.exists(), "rm left {}", b.display());

    // The user's store empties again, 0555 directories and all.
    plain.ok(&rootfs_bin, &["rmi", &image_id(&img)]);
    plain.ok(&rootfs_bin, &["gc"]);
    assert!(names(&store.join("layers")).is_empty(), "gc left {:?}", names(&store.join("layers")));

    // root and the user keep separate stores.
    let out = Command::new(bin()).arg("--store").arg(&store).arg("images").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("unprivileged user"), "root opening the user's store: {err}");
    let root_store = s.join("root-store");
    let out = Command::new(bin()).arg("--store").arg(&root_store).arg("images").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    fs::set_permissions(&s.path, fs::Permissions::from_mode(0o755)).unwrap();
    let err = plain.fails(&rootfs_bin, &["--store", root_store.to_str().unwrap(), "images"]);
    assert!(err.contains("written by root"), "the user opening root's store: {err}");
}
