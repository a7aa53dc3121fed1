//! Comparison with other tools (Debian packages umoci, skopeo, podman, runc; run as root):
//! `flatten` must produce what `umoci unpack` produces, an overlay bundle must show what
//! `podman image mount` shows, and a bundle must run under runc as it is.

#![allow(clippy::unwrap_used, clippy::let_underscore_must_use)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

/// An image exercising whiteouts, opaque directories, replacements and metadata.
/// `implicit_parents` adds a layer leaving out its parent directories: strata-rootfs and umoci
/// give them the lower layers' metadata, containers/storage (podman) makes them 0755 root.
fn rich_image(implicit_parents: bool) -> Image {
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
            dir("bin"),
            file("bin/su", "suid").mode(0o4755),
            dir("tmp").mode(0o1777),
            dir("home"),
            dir("home/user").owner(1000, 1000).mode(0o700),
            file("home/user/file", "mine").owner(1000, 1001).mtime(1_234_567_890),
            dir("data"),
            file("data/orig", "shared"),
            hardlink("data/link1", "data/orig"),
            dir("other"),
            hardlink("other/link2", "data/orig"),
            dir("names"),
            file("names/with space", "s"),
            file("names/ünïcødé ☃", "u"),
            dir("x"),
            file("x/attr", "a").xattr("user.test", b"hello"),
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
        ])
        .layer(&[dir("o"), file("o/more", "m"), dir("b"), file("b/y", "y")])
        .layer(&[]);
    if implicit_parents { img.layer(&[file("home/user/added", "no parent entries")]) } else { img }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Directory mtimes are left out: tools differ in whether they restore them after writing.
const SNAP: SnapOpts = SnapOpts { dir_mtimes: false, xattrs: true };

#[test]
fn flatten_matches_umoci_unpack() {
    require_root();
    require_tool("umoci");
    let s = Scratch::new("umoci");
    let t = Tool::new(&s);
    let layout = s.join("layout");
    let src = oci_layout(&layout, &rich_image(true), "latest");
    let ours = s.join("ours");
    t.ok(&["flatten", &src, ours.to_str().unwrap()]);
    let theirs = s.join("umoci");
    run(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:latest", layout.display())).arg(&theirs));
    let a = snapshot(&ours, SNAP);
    let b = snapshot(&theirs.join("rootfs"), SNAP);
    assert_same_tree(&a, &b, "strata-rootfs flatten vs umoci unpack");
}

struct Podman {
    root: std::path::PathBuf,
    runroot: std::path::PathBuf,
}

impl Podman {
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root").arg(&self.root).arg("--runroot").arg(&self.runroot).arg("--storage-driver").arg("overlay");
        c
    }
    fn storage(&self, name: &str) -> String {
        format!("containers-storage:[overlay@{}+{}]{name}", self.root.display(), self.runroot.display())
    }
}

/// The merged view podman shows for `name` (already in its storage), snapshotted.
fn podman_view(p: &Podman, name: &str) -> BTreeMap<String, Node> {
    let mnt = run(p.cmd().args(["image", "mount", name])).trim().to_string();
    let tree = snapshot(Path::new(&mnt), SNAP);
    run(p.cmd().args(["image", "unmount", name]));
    tree
}

#[test]
fn overlay_bundle_matches_podman() {
    require_root();
    require_tool("podman");
    require_tool("skopeo");
    let s = Scratch::new("podman");
    let t = Tool::new(&s);
    let p = Podman { root: s.join("podman-root"), runroot: s.join("podman-run") };

    // 1. Our test image, copied into podman's storage by skopeo.
    let layout = s.join("layout");
    let src = oci_layout(&layout, &rich_image(false), "latest");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("-q")
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(p.storage("localhost/strata-compat:latest")));
    let bundle = s.join("bundle");
    t.ok(&["bundle", &src, bundle.to_str().unwrap()]);
    let theirs = podman_view(&p, "localhost/strata-compat:latest");
    let ours = without_init(snapshot(&bundle.join("rootfs"), SNAP), &theirs);
    assert_same_tree(&theirs, &ours, "podman image mount vs strata-rootfs bundle");
    t.ok(&["rm", bundle.to_str().unwrap()]);

    // 2. An image made by podman itself (import of a busybox tree), exported by skopeo in all
    //    three formats.
    let tree = s.join("tree");
    make_busybox_tree(&tree);
    let tarball = s.join("tree.tar");
    run(Command::new("tar").arg("-C").arg(&tree).args(["--numeric-owner", "-cf"]).arg(&tarball).arg("."));
    run(p.cmd().args(["import", "--change", "CMD [\"/bin/sh\"]"]).arg(&tarball).arg("localhost/strata-busybox:latest"));
    let mut ids = Vec::new();
    for (i, dest) in [
        format!("oci:{}:latest", s.join("bb-oci").display()),
        format!("oci-archive:{}:localhost/strata-busybox:latest", s.join("bb.oci.tar").display()),
        format!("docker-archive:{}:localhost/strata-busybox:latest", s.join("bb.docker.tar").display()),
    ]
    .iter()
    .enumerate()
    {
        run(Command::new("skopeo").args(["copy", "-q"]).arg(p.storage("localhost/strata-busybox:latest")).arg(dest));
        let v = t.json(&["pull", dest]);
        ids.push(v["id"].as_str().unwrap().to_string());
        let b = s.join(&format!("bb{i}"));
        t.ok(&["bundle", dest, b.to_str().unwrap()]);
        let theirs = podman_view(&p, "localhost/strata-busybox:latest");
        let ours = without_init(snapshot(&b.join("rootfs"), SNAP), &theirs);
        assert_same_tree(&theirs, &ours, &format!("podman vs strata-rootfs for {dest}"));
        t.ok(&["rm", b.to_str().unwrap()]);
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "the three formats gave different image ids: {ids:?}");
}

fn make_busybox_tree(root: &Path) {
    for d in ["bin", "etc", "tmp", "root"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "cat", "id", "ls", "hostname"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/tmp:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nalice:x:1000:\nwheel:x:10:alice\n").unwrap();
}

#[test]
fn a_bundle_runs_under_runc_as_it_is() {
    require_root();
    require_tool("runc");
    assert!(Path::new("/bin/busybox").is_file(), "/bin/busybox missing (apt-get install busybox-static)");
    let s = Scratch::new("runc");
    let t = Tool::new(&s);
    let tree = s.join("tree");
    make_busybox_tree(&tree);
    let mut entries = vec![dir("bin"), dir("etc"), dir("tmp").mode(0o1777), dir("root").mode(0o700)];
    entries.push(bin_file("bin/busybox", fs::read("/bin/busybox").unwrap()));
    for applet in ["sh", "echo", "cat", "id", "ls", "hostname"] {
        entries.push(symlink(&format!("bin/{applet}"), "busybox"));
    }
    entries.push(file("etc/passwd", &fs::read_to_string(tree.join("etc/passwd")).unwrap()));
    entries.push(file("etc/group", &fs::read_to_string(tree.join("etc/group")).unwrap()));
    let img = Image::new().layer(&entries).config(serde_json::json!({"Cmd": ["/bin/sh"], "User": "alice"}));
    let src = oci_layout(&s.join("img"), &img, "latest");
    let b = s.join("bundle");
    t.ok(&[
        "bundle",
        &src,
        b.to_str().unwrap(),
        "--hostname",
        "inside",
        "--",
        "/bin/sh",
        "-c",
        "id; hostname; cat /etc/hostname; echo written > /tmp/out; cat /tmp/out",
    ]);
    let id = format!("strata-rootfs-test-{}", std::process::id());
    let out = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(&b)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let _ = Command::new("runc").args(["delete", "-f", &id]).output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "runc run failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("uid=1000(alice) gid=1000(alice) groups=10(wheel)"), "{stdout}");
    assert!(stdout.contains("inside\ninside\nwritten"), "{stdout}");
    let rec: serde_json::Value = serde_json::from_slice(&fs::read(b.join("strata-bundle.json")).unwrap()).unwrap();
    let upper = Path::new(rec["upper"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(upper.join("tmp/out")).unwrap(),
        "written\n",
        "the container's write is in the upper dir"
    );
    t.ok(&["rm", b.to_str().unwrap()]);
}
