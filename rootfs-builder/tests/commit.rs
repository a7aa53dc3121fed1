//! `commit`: a bundle's changes become a layer whose image flattens to exactly the bundle's
//! merged view (init layer aside), the same changes give the same bytes, the result matches
//! what `podman commit` makes of the same changes, runs again, and works on a running
//! container; `rm` refuses a bundle in use; `gc` keeps what is used.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::let_underscore_must_use)]

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const SNAP: SnapOpts = SnapOpts { dir_mtimes: true, xattrs: true };
const APPLETS: [&str; 9] = ["sh", "echo", "cat", "ls", "id", "sleep", "touch", "rm", "mkdir"];

/// A busybox image whose lower layers give every kind of change something to act on.
fn base_image() -> Image {
    let mut first = busybox_root(&APPLETS);
    first.extend([
        dir("data"),
        file("data/modify.txt", "original\n"),
        file("data/chmod-only", "c").mode(0o644),
        file("data/chown-only", "o").owner(1, 1),
        file("data/delete-me", "d"),
        file("data/lower-file", "hardlink me"),
        file("data/xattr-target", "x"),
        file("data/pair-a", "pair"),
        hardlink("data/pair-b", "data/pair-a"),
        dir("tree"),
        file("tree/old-1", "1"),
        dir("tree/sub"),
        file("tree/sub/old-2", "2"),
        dir("gone-dir"),
        file("gone-dir/f", "f"),
        file("was-file", "f"),
        dir("was-dir"),
        file("was-dir/f", "f"),
        dir("links"),
        symlink("links/old", "../data/modify.txt"),
    ]);
    Image::new()
        .layer(&first)
        .layer(&[dir("data"), file("data/second-layer", "2nd"), whiteout("tree/sub/old-2")])
        .config(json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "Labels": {"base": "yes"}}))
}

fn set_xattr(path: &Path, key: &str, value: &[u8]) {
    let parent = fs::File::open(path.parent().unwrap()).unwrap();
    let name = CString::new(path.file_name().unwrap().as_encoded_bytes()).unwrap();
    let key = CString::new(key).unwrap();
    strata_rootfs::sys::xattr::set_at(parent.as_fd(), &name, &key, value).unwrap();
}

/// The change set of the issue, applied from the host to a mounted root.
fn make_changes(root: &Path, touch_init_file: bool) {
    let p = |rel: &str| root.join(rel);
    fs::write(p("added"), "a new file\n").unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(p("data/modify.txt")).unwrap();
    std::io::Write::write_all(&mut f, b"modified\n").unwrap();
    fs::set_permissions(p("data/chmod-only"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(p("data/chown-only"), Some(1234), Some(5678)).unwrap();
    fs::remove_file(p("data/delete-me")).unwrap();
    fs::remove_dir_all(p("tree")).unwrap();
    fs::create_dir(p("tree")).unwrap();
    fs::write(p("tree/fresh"), "recreated\n").unwrap();
    fs::remove_dir_all(p("gone-dir")).unwrap();
    fs::hard_link(p("data/lower-file"), p("data/hardlink-to-lower")).unwrap();
    fs::write(p("new-a"), "linked twice\n").unwrap();
    fs::hard_link(p("new-a"), p("new-b")).unwrap();
    std::os::unix::fs::symlink("../added", p("links/new-symlink")).unwrap();
    nix::unistd::mkfifo(&p("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    nix::sys::stat::mknod(
        &p("null-copy"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    set_xattr(&p("data/xattr-target"), "user.commit", b"yes");
    set_xattr(&p("added"), "user.new", b"on a new file");
    let cap = [1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    set_xattr(&p("added"), "security.capability", &cap);
    fs::remove_file(p("was-file")).unwrap();
    fs::create_dir(p("was-file")).unwrap();
    fs::write(p("was-file/inside"), "i").unwrap();
    fs::remove_dir_all(p("was-dir")).unwrap();
    fs::write(p("was-dir"), "now a file").unwrap();
    fs::write(p("setuid"), "s").unwrap();
    fs::set_permissions(p("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    if touch_init_file {
        let mut h = fs::OpenOptions::new().append(true).open(p("etc/hosts")).unwrap();
        std::io::Write::write_all(&mut h, b"10.0.0.1 written-by-the-container\n").unwrap();
        fs::write(p("etc/resolv.conf"), "nameserver 10.9.9.9\n").unwrap();
    }
}

/// One entry of a layer tar.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TarEntry {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    content: Option<String>,
    link: Option<String>,
    dev: (u32, u32),
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// The entries of a layer tar: in order (names without a trailing '/') and by name.
fn tar_entries(tar: &[u8]) -> (Vec<String>, BTreeMap<String, TarEntry>) {
    let mut order = Vec::new();
    let mut map = BTreeMap::new();
    let mut a = tar::Archive::new(tar);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).trim_end_matches('/').trim_start_matches("./").to_string();
        let h = e.header().clone();
        let mut xattrs = BTreeMap::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for x in pax {
                let x = x.unwrap();
                if let Some(k) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(k.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let kind = h.entry_type().as_byte() as char;
        let kind = if kind == '\0' { '0' } else { kind };
        map.insert(
            name.clone(),
            TarEntry {
                kind,
                mode: h.mode().unwrap() & 0o7777,
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                content: (kind == '0').then(|| sha256_hex(&data)),
                link: e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()),
                dev: (h.device_major().ok().flatten().unwrap_or(0), h.device_minor().ok().flatten().unwrap_or(0)),
                xattrs,
            },
        );
        order.push(name);
    }
    (order, map)
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b).read_to_end(&mut out).unwrap();
    out
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

/// Manifest of `ref_name` in the OCI layout at `layout`.
fn layout_manifest(layout: &Path, ref_name: &str) -> Value {
    let index = read_json(&layout.join("index.json"));
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == ref_name)
        .unwrap_or_else(|| panic!("no {ref_name} in {index}"))
        .clone();
    read_json(&blob(layout, desc["digest"].as_str().unwrap()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())
}

/// The uncompressed top layer of `ref_name` in a layout.
fn top_layer(layout: &Path, ref_name: &str) -> Vec<u8> {
    let m = layout_manifest(layout, ref_name);
    let top = m["layers"].as_array().unwrap().last().unwrap().clone();
    let raw = fs::read(blob(layout, top["digest"].as_str().unwrap())).unwrap();
    match top["mediaType"].as_str().unwrap() {
        t if t.ends_with("+gzip") || t.ends_with(".gzip") => gunzip(&raw),
        t if t.ends_with("+zstd") => zstd::decode_all(raw.as_slice()).unwrap(),
        _ => raw,
    }
}

fn upper_of(bundle: &Path) -> PathBuf {
    PathBuf::from(read_json(&bundle.join("strata-bundle.json"))["upper"].as_str().unwrap())
}

#[test]
fn a_commit_flattens_to_the_bundles_merged_view() {
    require_root();
    let s = Scratch::new("roundtrip");
    let t = Tool::new(&s);
    let src = oci_layout(&s.join("img"), &base_image(), "latest");
    let b = s.join("bundle");
    t.ok(&["bundle", &src, b.to_str().unwrap()]);
    make_changes(&b.join("rootfs"), true);
    let out = s.join("out");
    let target = format!("oci:{}:v2", out.display());
    let v = t.json(&["commit", b.to_str().unwrap(), &target, "-m", "the change set", "-a", "tester"]);
    assert_eq!(v["reference"], "out:v2");
    assert_eq!(v["layers"], 3);

    // The new image's filesystem is the bundle's merged view, init layer aside.
    let flat = s.join("flat");
    t.ok(&["flatten", "out:v2", flat.to_str().unwrap()]);
    let flat_tree = snapshot(&flat, SNAP);
    let merged = without_init(snapshot(&b.join("rootfs"), SNAP), &flat_tree);
    assert_same_tree(&flat_tree, &merged, "flattened commit vs the bundle's merged view");
    assert!(!flat.join("etc/hosts").exists() && !flat.join("etc/resolv.conf").exists(), "init files were committed");
    assert_eq!(fs::read_to_string(flat.join("data/modify.txt")).unwrap(), "original\nmodified\n");
    assert!(!flat.join("tree/old-1").exists() && flat.join("tree/fresh").exists());

    // The layer itself: overlay marks in image-spec form, in order, init files left out.
    let (order, entries) = tar_entries(&top_layer(&out, "v2"));
    let pos = |n: &str| order.iter().position(|o| o == n).unwrap_or_else(|| panic!("{n} missing from {order:?}"));
    assert_eq!(pos("tree/.wh..wh..opq"), pos("tree") + 1, "the opaque marker must follow its directory");
    for wh in ["data/.wh.delete-me", ".wh.gone-dir"] {
        assert_eq!(entries[wh].kind, '0', "{wh} must be an empty regular file");
    }
    assert!(!order.iter().any(|n| n.starts_with("etc/hosts") || n.starts_with("etc/resolv.conf")), "{order:?}");
    assert!(!order.iter().any(|n| n.contains("tree/old")), "a recreated directory lists only its new content");
    let hard = [&entries["data/hardlink-to-lower"], &entries["data/lower-file"]];
    assert_eq!(hard.iter().filter(|e| e.kind == '1').count(), 1, "one name of a hardlinked pair is a link entry");
    assert_eq!(entries["new-b"].kind, '1');
    assert_eq!(entries["new-b"].link.as_deref(), Some("new-a"));
    assert_eq!(entries["fifo"].kind, '6');
    assert_eq!((entries["null-copy"].kind, entries["null-copy"].dev), ('3', (1, 3)));
    assert_eq!((entries["data/chown-only"].uid, entries["data/chown-only"].gid), (1234, 5678));
    assert_eq!(entries["data/chmod-only"].mode, 0o600);
    assert_eq!(entries["setuid"].mode, 0o4755);
    assert_eq!(entries["data/xattr-target"].xattrs.get("user.commit").map(Vec::as_slice), Some(&b"yes"[..]));
    assert!(entries["added"].xattrs.contains_key("security.capability"));
    assert!(
        entries.values().all(|e| e.xattrs.keys().all(|k| !k.starts_with("trusted.overlay."))),
        "overlay's own attributes must not be committed"
    );
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    let opq_fixed: Vec<&String> = order.iter().filter(|n| !n.ends_with(".wh..wh..opq")).collect();
    let sorted_fixed: Vec<&String> = sorted.iter().filter(|n| !n.ends_with(".wh..wh..opq")).collect();
    assert_eq!(opq_fixed, sorted_fixed, "entries must come sorted, component by component");

    // Configuration: history, author, diff_ids, the base's config kept.
    let m = layout_manifest(&out, "v2");
    let config = read_json(&blob(&out, m["config"]["digest"].as_str().unwrap()));
    assert_eq!(config["author"], "tester");
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[2]["comment"], "the change set");
    assert_eq!(history[2]["author"], "tester");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    assert_eq!(config["rootfs"]["diff_ids"][2], v["layer"]["diff_id"]);
    assert_eq!(config["config"]["Labels"]["base"], "yes");
    assert_eq!(m["layers"].as_array().unwrap().len(), 3);
}

#[test]
fn the_same_change_gives_the_same_digest() {
    require_root();
    let s = Scratch::new("determinism");
    let t = Tool::new(&s).with_env("SOURCE_DATE_EPOCH", "1700000000");
    let src = oci_layout(&s.join("img"), &base_image(), "latest");
    let mut diff_ids = Vec::new();
    for name in ["b1", "b2"] {
        let b = s.join(name);
        t.ok(&["bundle", &src, b.to_str().unwrap()]);
        make_changes(&b.join("rootfs"), false);
        // Pin every time the change set left behind (the changes were made at different
        // moments): then the two upper dirs hold the same tree, with other inode numbers.
        let upper = upper_of(&b);
        let out = Command::new("find")
            .arg(&upper)
            .args(["-exec", "touch", "-h", "-d", "@1600000000", "{}", "+"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let v = t.json(&["commit", b.to_str().unwrap(), &format!("same-{name}")]);
        diff_ids.push((v["layer"]["diff_id"].clone(), v["layer"]["digest"].clone(), v["id"].clone()));
    }
    assert_eq!(diff_ids[0].0, diff_ids[1].0, "the same change gave different layer tars");
    assert_eq!(diff_ids[0].1, diff_ids[1].1, "the same change gave different compressed blobs");
    assert_eq!(diff_ids[0].2, diff_ids[1].2, "the same change (and SOURCE_DATE_EPOCH) gave different images");
    // Compression changes the blob, not the tar.
    let b1 = s.join("b1");
    let z = t.json(&["commit", b1.to_str().unwrap(), "same-zstd", "--compress", "zstd"]);
    let n = t.json(&["commit", b1.to_str().unwrap(), "same-none", "--compress", "none"]);
    assert_eq!(z["layer"]["diff_id"], diff_ids[0].0);
    assert_eq!(n["layer"]["diff_id"], diff_ids[0].0);
    assert_eq!(n["layer"]["digest"], diff_ids[0].0, "an uncompressed blob is its diff_id");
    assert_eq!(z["layer"]["media_type"], "application/vnd.oci.image.layer.v1.tar+zstd");
}

/// The podman command line on a private storage.
struct Podman {
    root: PathBuf,
    runroot: PathBuf,
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

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn commit_matches_podman_commit() {
    require_root();
    require_tool("podman");
    require_tool("skopeo");
    let s = Scratch::new("podman-commit");
    let t = Tool::new(&s);
    // podman refuses a runroot longer than 50 characters.
    let runroot = Scratch { path: PathBuf::from(format!("/tmp/strc-{}", std::process::id())) };
    let p = Podman { root: s.join("podman-root"), runroot: runroot.path.clone() };
    let layout = s.join("img");
    let src = oci_layout(&layout, &base_image(), "latest");
    run(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(p.storage("localhost/base:latest")));

    // podman: a container of the image, the change set through its mount, podman commit.
    let cid = run(p.cmd().args(["create", "localhost/base:latest"])).trim().to_string();
    let mnt = PathBuf::from(run(p.cmd().args(["mount", &cid])).trim());
    make_changes(&mnt, false);
    run(p.cmd().args(["commit", "-q", &cid, "localhost/base:podman"]));
    run(p.cmd().args(["unmount", &cid]));
    let theirs_layout = s.join("theirs");
    run(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(p.storage("localhost/base:podman"))
        .arg(format!("oci:{}:podman", theirs_layout.display())));
    let (_, theirs) = tar_entries(&top_layer(&theirs_layout, "podman"));

    // strata-rootfs: a bundle of the same image, the same change set, commit.
    let b = s.join("bundle");
    t.ok(&["bundle", &src, b.to_str().unwrap()]);
    make_changes(&b.join("rootfs"), false);
    let ours_layout = s.join("ours");
    t.ok(&["commit", b.to_str().unwrap(), &format!("oci:{}:ours", ours_layout.display())]);
    let (_, ours) = tar_entries(&top_layer(&ours_layout, "ours"));
    run(p.cmd().args(["rm", "-f", &cid]));

    // The same entries with the same content and metadata. Times differ (the changes were made
    // at different moments) and are not compared; so do the whiteout markers' own mode, which
    // carries no meaning (podman copies the device's, strata-rootfs writes 0644), and their link
    // name: the kernel makes whiteouts as hardlinks of one inode, and podman 4.3 then writes the
    // second whiteout as a regular file that names the first as its link target.
    let normalize = |m: BTreeMap<String, TarEntry>| -> BTreeMap<String, TarEntry> {
        m.into_iter()
            .map(|(k, mut e)| {
                if k.rsplit('/').next().unwrap().starts_with(".wh.") {
                    e.mode = 0;
                    e.link = None;
                }
                (k, e)
            })
            .collect()
    };
    let (ours, theirs) = (normalize(ours), normalize(theirs));
    let mut diffs = Vec::new();
    for (k, v) in &theirs {
        match ours.get(k) {
            None => diffs.push(format!("only in podman's layer: {k} {v:?}")),
            Some(o) if o != v => diffs.push(format!("differs: {k}\n  podman: {v:?}\n  ours:   {o:?}")),
            _ => {}
        }
    }
    for (k, v) in &ours {
        if !theirs.contains_key(k) {
            diffs.push(format!("only in ours: {k} {v:?}"));
        }
    }
    assert!(diffs.is_empty(), "strata-rootfs commit vs podman commit:\n{}", diffs.join("\n"));
}

/// A bundle's container run by runc in the background; killed and deleted when dropped.
struct Runc {
    id: String,
}

impl Runc {
    fn start(bundle: &Path, id: &str) -> Self {
        let status = Command::new("runc")
            .args(["run", "-d", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "runc run -d failed");
        Self { id: id.to_string() }
    }

    fn pid(&self) -> i32 {
        let state: Value = serde_json::from_str(&run(Command::new("runc").args(["state", &self.id]))).unwrap();
        state["pid"].as_i64().unwrap() as i32
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        let _ = Command::new("runc").args(["delete", "-f", &self.id]).output();
    }
}

fn wait_for(p: &Path) {
    let start = Instant::now();
    while !p.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn gone_or_zombie(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'),
        Err(_) => true,
    }
}

fn start_time(pid: i32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 1..].split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn a_running_container_commits_and_its_bundle_is_not_removed_under_it() {
    require_root();
    require_tool("runc");
    let s = Scratch::new("running");
    let t = Tool::new(&s);
    let src = oci_layout(&s.join("img"), &base_image(), "latest");
    let b = s.join("bundle");
    t.ok(&[
        "bundle",
        &src,
        b.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "echo from-inside > /made-inside; rm /data/delete-me; touch /ready; exec sleep 1000",
    ]);
    let id = format!("strata-rootfs-commit-{}", std::process::id());
    let c = Runc::start(&b, &id);
    wait_for(&b.join("rootfs/ready"));

    // rm refuses, naming what runs there; the bundle is untouched.
    let err = t.fails(&["rm", b.to_str().unwrap()]);
    assert!(err.contains("is in use") && err.contains("sleep") && err.contains("--force"), "{err}");
    assert!(b.join("rootfs/made-inside").exists());
    // With strata's record of the container, rm names it.
    let states = s.join("states");
    fs::create_dir_all(states.join("recorded-c1")).unwrap();
    let pid = c.pid();
    fs::write(
        states.join("recorded-c1/state.json"),
        serde_json::to_vec(&json!({"id": "recorded-c1", "bundle": b, "pid": pid, "pid_start": start_time(pid)}))
            .unwrap(),
    )
    .unwrap();
    let err = t.fails(&["rm", b.to_str().unwrap(), "--state-root", states.to_str().unwrap()]);
    assert!(err.contains(&format!("container recorded-c1 (pid {pid} sleep)")), "{err}");

    // A commit of the running container.
    let out = s.join("out");
    t.ok(&["commit", b.to_str().unwrap(), &format!("oci:{}:live", out.display())]);
    let (order, _) = tar_entries(&top_layer(&out, "live"));
    for want in ["made-inside", "ready", "data/.wh.delete-me"] {
        assert!(order.contains(&want.to_string()), "{want} missing from the running container's commit: {order:?}");
    }

    // --force kills it, then removes; the runtime's record is reported as stopped.
    let o = t.run(&["rm", "--force", b.to_str().unwrap(), "--state-root", states.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("killed") && stderr.contains("recorded-c1"), "{stderr}");
    assert!(!b.exists(), "rm --force left the bundle");
    assert!(gone_or_zombie(pid), "the container still runs");
    drop(c);
}

fn busybox_bundle_runs(t: &Tool, image: &str, b: &Path, id: &str) -> String {
    t.ok(&["bundle", image, b.to_str().unwrap()]);
    let out = Command::new("runc").args(["run", "--bundle"]).arg(b).arg(id).stdin(Stdio::null()).output().unwrap();
    let _ = Command::new("runc").args(["delete", "-f", id]).output();
    assert!(out.status.success(), "runc run failed: {}", String::from_utf8_lossy(&out.stderr));
    t.ok(&["rm", b.to_str().unwrap()]);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_committed_image_pulls_and_runs_again_from_every_format() {
    require_root();
    require_tool("runc");
    let s = Scratch::new("rerun");
    let t = Tool::new(&s);
    let src = oci_layout(&s.join("img"), &base_image(), "latest");
    let b = s.join("bundle");
    t.ok(&["bundle", &src, b.to_str().unwrap()]);
    fs::write(b.join("rootfs/greeting"), "committed and running\n").unwrap();
    let targets = [
        format!("oci:{}:v2", s.join("oci").display()),
        format!("oci-archive:{}:v2", s.join("img.oci.tar").display()),
        format!("docker-archive:{}:localhost/rerun:v2", s.join("img.docker.tar").display()),
    ];
    let changes = ["-c", r#"CMD ["/bin/cat", "/greeting"]"#, "-c", "ENV GREETING=yes", "-c", "LABEL stage=two"];
    // A fixed creation time: the three commits of the same change are then the same image.
    let pinned = Tool { store: t.store.clone(), env: vec![("SOURCE_DATE_EPOCH".into(), "1700000000".into())] };
    let mut ids = Vec::new();
    for target in &targets {
        let mut args = vec!["commit", b.to_str().unwrap(), target.as_str()];
        args.extend_from_slice(&changes);
        let v = pinned.json(&args);
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "the same commit gave different images: {ids:?}");
    t.ok(&["rm", b.to_str().unwrap()]);
    // Each written image, pulled into a fresh store, is that image and runs the new command.
    for (i, target) in targets.iter().enumerate() {
        let fresh = Tool { store: s.join(&format!("store-{i}")), env: Vec::new() };
        let v = fresh.json(&["pull", target]);
        assert_eq!(v["id"].as_str().unwrap(), ids[0], "{target} pulled as another image");
        let id = format!("strata-rootfs-rerun-{}-{i}", std::process::id());
        let out = busybox_bundle_runs(&fresh, &ids[0], &s.join(&format!("run-{i}")), &id);
        assert_eq!(out, "committed and running\n", "{target}");
        let inspect = fresh.json(&["inspect", &ids[0]]);
        assert_eq!(inspect["config"]["config"]["Env"], json!(["PATH=/bin", "GREETING=yes"]));
        assert_eq!(inspect["config"]["config"]["Labels"], json!({"base": "yes", "stage": "two"}));
        assert_eq!(inspect["history"][2]["created"], "2023-11-14T22:13:20Z");
        assert_eq!(inspect["layers"].as_array().unwrap().len(), 3);
    }
    // The store has the committed image under the names a pull of the targets gives.
    let inspect = t.json(&["inspect", &ids[0]]);
    let mut refs: Vec<String> =
        inspect["references"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    refs.sort();
    assert_eq!(refs, ["img.oci:v2", "localhost/rerun:v2", "oci:v2"]);
}

#[test]
fn images_and_inspect_show_shared_and_unique_sizes() {
    require_root();
    let s = Scratch::new("sizes");
    let t = Tool::new(&s);
    let src = oci_layout(&s.join("img"), &base_image(), "latest");
    let b = s.join("bundle");
    t.ok(&["bundle", &src, b.to_str().unwrap()]);
    fs::write(b.join("rootfs/big"), vec![7u8; 100_000]).unwrap();
    t.ok(&["commit", b.to_str().unwrap(), "localhost/sizes:v2"]);
    let images = t.json(&["images"]);
    let by_ref = |r: &str| -> Value {
        images
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["references"].as_array().unwrap().iter().any(|x| x == r))
            .unwrap()
            .clone()
    };
    let base = by_ref("img:latest");
    let v2 = by_ref("localhost/sizes:v2");
    assert_eq!(base["unique_size"], 0, "every layer of the base is in v2 too");
    assert_eq!(base["shared_size"], base["size"]);
    assert_eq!(v2["shared_size"], base["size"]);
    assert_eq!(v2["unique_size"], 100_000, "v2's own layer holds the new file");
    assert_eq!(base["bundles"], 1);
    let inspect = t.json(&["inspect", "localhost/sizes:v2"]);
    assert_eq!(inspect["unique_size"], 100_000);
    let layers = inspect["layers"].as_array().unwrap();
    assert_eq!(layers[0]["shared_with"], json!(["img:latest"]));
    assert_eq!(layers[2]["shared_with"], json!([]));
    let inspect = t.json(&["inspect", "img:latest"]);
    assert_eq!(inspect["bundles"][0]["writable_layer"]["size"], 100_000);
    let bundles = t.json(&["bundles"]);
    assert_eq!(bundles[0]["writable_layer"]["size"], 100_000);
    t.ok(&["rm", b.to_str().unwrap()]);
}

#[test]
fn gc_never_removes_what_a_bundle_or_image_uses() {
    require_root();
    let s = Scratch::new("gc-commit");
    let t = Tool::new(&s);
    let src = oci_layout(&s.join("img"), &base_image(), "latest");
    let b = s.join("bundle");
    t.ok(&["bundle", &src, b.to_str().unwrap()]);
    fs::write(b.join("rootfs/new"), "n").unwrap();
    let v2 = t.ok(&["--quiet", "commit", b.to_str().unwrap(), "gc:v2"]).trim().to_string();
    t.ok(&["rm", b.to_str().unwrap()]);
    let b2 = s.join("bundle2");
    t.ok(&["bundle", "gc:v2", b2.to_str().unwrap()]);
    let before = t.layer_dirs();
    assert_eq!(before.len(), 3);
    assert_eq!(t.json(&["gc"])["layers"], 0, "gc removed a layer in use");

    // Without any image record, the bundle alone keeps its chain.
    fs::remove_dir_all(t.store.join("images")).unwrap();
    fs::create_dir(t.store.join("images")).unwrap();
    let report = t.json(&["gc"]);
    assert_eq!(report["layers"], 0, "gc removed a layer the bundle of a commit uses");
    assert_eq!(t.layer_dirs(), before);
    assert_eq!(fs::read_to_string(b2.join("rootfs/new")).unwrap(), "n");
    assert_eq!(fs::read_to_string(b2.join("rootfs/data/second-layer")).unwrap(), "2nd");
    // A commit of that bundle still works from the layers alone? Its image is gone: clear error.
    let err = t.fails(&["commit", b2.to_str().unwrap(), "gc:v3"]);
    assert!(err.contains("no longer in the store"), "{err}");
    t.ok(&["rm", b2.to_str().unwrap()]);
    let report = t.json(&["gc"]);
    assert_eq!(report["layers"], 3);
    assert!(t.layer_dirs().is_empty());
    assert!(!v2.is_empty());
}

#[test]
fn bad_commits_say_why_and_leave_nothing() {
    require_root();
    let s = Scratch::new("bad-commit");
    let t = Tool::new(&s);
    let src = oci_layout(&s.join("img"), &base_image(), "latest");
    let b = s.join("bundle");
    t.ok(&["bundle", &src, b.to_str().unwrap()]);
    let images_before = names(&t.store.join("images"));
    let blobs_before = names(&t.store.join("blobs/sha256"));
    let check_nothing_left = |what: &str| {
        assert_eq!(names(&t.store.join("images")), images_before, "{what}: an image was recorded");
        assert_eq!(names(&t.store.join("blobs/sha256")), blobs_before, "{what}: a blob was stored");
        assert!(t.tmp_entries().is_empty(), "{what}: tmp/ not empty");
    };
    let bd = b.to_str().unwrap();
    for (args, expect) in [
        (vec!["commit", bd, "x", "-c", "RUN rm -rf /"], "RUN is not supported"),
        (vec!["commit", bd, "x", "-c", "EXPOSE 70000"], "is not a port"),
        (vec!["commit", bd, "bad name"], "invalid image name"),
        (vec!["commit", bd, "x", "--compress", "lz4"], "unknown compression"),
        (vec!["commit", s.join("nothing").to_str().unwrap(), "x"], "not a bundle made by strata-rootfs"),
    ] {
        let err = t.fails(&args);
        assert!(err.contains(expect), "{args:?}: {err}");
        check_nothing_left(&format!("{args:?}"));
    }
    // A name a layer cannot hold.
    fs::write(b.join("rootfs/.wh.sneaky"), "").unwrap();
    let err = t.fails(&["commit", bd, "x"]);
    assert!(err.contains(".wh.sneaky") && err.contains("rename it"), "{err}");
    check_nothing_left("a .wh. name");
    fs::remove_file(b.join("rootfs/.wh.sneaky")).unwrap();
    // Flattened and read-only bundles have no writable layer.
    let flat = s.join("flat");
    t.ok(&["bundle", &src, flat.to_str().unwrap(), "--flatten"]);
    assert!(t.fails(&["commit", flat.to_str().unwrap(), "x"]).contains("flattened bundle"));
    let ro = s.join("ro");
    t.ok(&["bundle", &src, ro.to_str().unwrap(), "--readonly"]);
    assert!(t.fails(&["commit", ro.to_str().unwrap(), "x"]).contains("read-only bundle"));
    // An existing directory that is not a layout is not overwritten.
    let not_layout = s.join("not-layout");
    fs::create_dir_all(&not_layout).unwrap();
    fs::write(not_layout.join("precious"), "keep").unwrap();
    let err = t.fails(&["commit", bd, &format!("oci:{}", not_layout.display())]);
    assert!(err.contains("not an OCI image layout"), "{err}");
    assert_eq!(names(&not_layout), vec!["precious"]);
    check_nothing_left("a directory that is not a layout");
    let err = t.fails(&["commit", bd, &format!("oci-archive:{}", s.join("no/such/dir/x.tar").display())]);
    assert!(err.contains("no/such/dir"), "{err}");
    check_nothing_left("an archive in a missing directory");
    for d in [&b, &flat, &ro] {
        t.ok(&["rm", d.to_str().unwrap()]);
    }
}
