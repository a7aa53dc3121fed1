//! Hostile layers: every entry that tries to write outside the layer directory, to smuggle
//! overlay metadata, or to confuse whiteout handling is rejected with a clear error (leaving
//! nothing in the store) or neutralised; a victim directory outside is never touched.

#![allow(clippy::unwrap_used, clippy::let_underscore_must_use)]

mod common;

use std::fs;
use std::os::fd::AsFd;
use std::path::Path;

use common::*;

struct Case {
    scratch: Scratch,
    tool: Tool,
    victim: std::path::PathBuf,
}

impl Case {
    fn new(name: &str) -> Self {
        require_root();
        let scratch = Scratch::new(name);
        let victim = scratch.join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("secret"), "untouched").unwrap();
        let tool = Tool::new(&scratch);
        Self { scratch, tool, victim }
    }

    fn victim(&self) -> &str {
        self.victim.to_str().unwrap()
    }

    fn image(&self, layers: &[Vec<Entry>]) -> String {
        let mut img = Image::new();
        for l in layers {
            img = img.layer(l);
        }
        oci_layout(&self.scratch.join("img"), &img, "latest")
    }

    fn assert_victim_intact(&self) {
        assert_eq!(names(&self.victim), vec!["secret"], "something was written into the victim directory");
        assert_eq!(fs::read_to_string(self.victim.join("secret")).unwrap(), "untouched");
        let dir = fs::File::open(&self.victim).unwrap();
        let attrs = strata_rootfs::sys::xattr::list_at(dir.as_fd(), c".").unwrap();
        assert!(attrs.is_empty(), "xattrs were set on the victim: {attrs:?}");
    }

    /// The pull must fail naming `expect`, and leave no layer and no temporary file behind.
    fn rejected(&self, layers: &[Vec<Entry>], expect: &str) {
        self.rejected_after(layers, expect, 0);
    }

    /// Like [`Case::rejected`] where the first `good` layers are fine (and stay stored).
    fn rejected_after(&self, layers: &[Vec<Entry>], expect: &str, good: usize) {
        let src = self.image(layers);
        // A flatten streams the layers into its destination: the same refusal, nothing left.
        let out = self.scratch.join("refused-flat");
        let err = self.tool.fails(&["flatten", &src, out.to_str().unwrap()]);
        assert!(err.contains(expect), "flatten: expected an error containing {expect:?}, got: {err}");
        assert!(!out.exists(), "a refused flatten left its destination behind");
        assert!(self.tool.layer_dirs().is_empty(), "a flatten from a source stored layers");
        self.assert_victim_intact();
        let err = self.tool.fails(&["pull", &src]);
        assert!(err.contains(expect), "expected an error containing {expect:?}, got: {err}");
        assert_eq!(self.tool.layer_dirs().len(), good, "a rejected layer was stored: {:?}", self.tool.layer_dirs());
        assert!(self.tool.tmp_entries().is_empty(), "leftovers in tmp/: {:?}", self.tool.tmp_entries());
        self.assert_victim_intact();
    }

    /// The pull must succeed; returns the flattened tree's directory.
    fn accepted(&self, layers: &[Vec<Entry>]) -> std::path::PathBuf {
        let src = self.image(layers);
        let out = self.scratch.join("flat");
        self.tool.ok(&["flatten", &src, out.to_str().unwrap()]);
        self.assert_victim_intact();
        out
    }
}

fn up(n: usize) -> String {
    "../".repeat(n)
}

#[test]
fn dotdot_names_are_rejected() {
    let c = Case::new("dotdot");
    c.rejected(&[vec![file("../escape", "x")]], "'..'");
    c.rejected(&[vec![dir("a"), file("a/../../escape", "x")]], "'..'");
    c.rejected(&[vec![file(&format!("./{}{}/pwned", up(12), c.victim().trim_start_matches('/')), "x")]], "'..'");
}

#[test]
fn writes_through_symlinks_are_rejected() {
    let c = Case::new("symlinks");
    c.rejected(&[vec![symlink("s", c.victim()), file("s/pwned", "x")]], "symlink");
    let rel = format!("{}{}", up(16), c.victim().trim_start_matches('/'));
    c.rejected(&[vec![symlink("s", &rel), file("s/pwned", "x")]], "symlink");
    c.rejected(&[vec![symlink("s", c.victim()), dir("s/sub")]], "symlink");
    // A whiteout or an opaque marker under a symlink would delete or hide outside content.
    c.rejected(&[vec![symlink("w", c.victim()), whiteout("w/secret")]], "symlink");
    c.rejected(&[vec![symlink("o", c.victim()), opaque("o")]], "symlink");
    // A symlinked parent in a lower layer does not matter: each layer is unpacked on its own.
    c.rejected_after(
        &[vec![symlink("s", c.victim())], vec![symlink("s2", c.victim()), file("s2/x", "x")]],
        "symlink",
        1,
    );
}

#[test]
fn hardlinks_leaving_the_layer_are_rejected() {
    let c = Case::new("hardlinks");
    c.rejected(&[vec![hardlink("h", "/etc/passwd")]], "not a file of this layer");
    c.rejected(&[vec![hardlink("h", &format!("{}etc/passwd", up(8)))]], "'..'");
    c.rejected(&[vec![symlink("s", c.victim()), hardlink("h", "s/secret")]], "symlink");
    c.rejected(&[vec![dir("d"), hardlink("h", "d")]], "hardlink to a directory");
    c.rejected(&[vec![whiteout("gone"), hardlink("h", "gone")]], "not a file of this layer");
    // A flatten applies every layer onto one tree: a lower layer's file is there, and still
    // not this layer's to link.
    c.rejected_after(&[vec![file("lower", "l")], vec![hardlink("h", "lower")]], "not a file of this layer", 1);
}

#[test]
fn lower_symlinks_are_hidden_never_followed() {
    let c = Case::new("lower-symlinks");
    // Each layer applied onto the tree of the layers below (a flatten from a source): a path of
    // this layer replaces a lower symlink in its way with a directory, as the overlay shows it.
    let lower = || vec![symlink("s", c.victim())];
    let flat = c.accepted(&[lower(), vec![file("s/pwned", "x")]]);
    assert_eq!(names(&flat.join("s")), vec!["pwned"]);
    fs::remove_dir_all(&flat).unwrap();
    let flat = c.accepted(&[lower(), vec![whiteout("s/secret")]]);
    assert!(flat.join("s").is_dir() && names(&flat.join("s")).is_empty());
    fs::remove_dir_all(&flat).unwrap();
    let flat = c.accepted(&[lower(), vec![opaque("s"), file("s/new", "n")]]);
    assert_eq!(names(&flat.join("s")), vec!["new"]);
}

#[test]
fn overlay_metadata_smuggled_in_a_layer_is_rejected() {
    let c = Case::new("smuggle");
    c.rejected(&[vec![dir("d").xattr("trusted.overlay.opaque", b"y")]], "overlay attribute");
    c.rejected(&[vec![file("f", "x").xattr("trusted.overlay.redirect", b"/etc")]], "overlay attribute");
    c.rejected(&[vec![file("f", "x").xattr("user.overlay.metacopy", b"")]], "overlay attribute");
    c.rejected(&[vec![chardev("fake-whiteout", 0, 0)]], "whiteout");
    c.rejected(&[vec![file(".wh..", "")]], "whiteout of an invalid name");
}

#[test]
fn replacing_a_symlink_never_writes_through_it() {
    let c = Case::new("replace");
    let secret = format!("{}/secret", c.victim());
    let flat = c.accepted(&[vec![
        symlink("f", &secret),
        file("f", "overwritten"),
        symlink("d", c.victim()),
        dir("d"),
        file("d/x", "inside"),
        file("orig", "original"),
        hardlink("h", "orig"),
        file("h", "replaced"),
    ]]);
    assert_eq!(fs::read_to_string(flat.join("f")).unwrap(), "overwritten");
    assert!(fs::symlink_metadata(flat.join("d")).unwrap().is_dir());
    assert_eq!(fs::read_to_string(flat.join("d/x")).unwrap(), "inside");
    assert_eq!(
        fs::read_to_string(flat.join("orig")).unwrap(),
        "original",
        "a write to a hardlink's name changed its twin"
    );
}

#[test]
fn absolute_names_stay_inside() {
    let c = Case::new("absolute");
    let flat = c.accepted(&[vec![file(&format!("{}/planted", c.victim()), "inside the layer"), file("/abs", "a")]]);
    assert_eq!(
        fs::read_to_string(flat.join(c.victim().trim_start_matches('/')).join("planted")).unwrap(),
        "inside the layer"
    );
    assert_eq!(fs::read_to_string(flat.join("abs")).unwrap(), "a");
}

#[test]
fn absurd_names_fail_cleanly() {
    let c = Case::new("absurd");
    let deep = format!("{}/f", vec!["d"; 3000].join("/"));
    c.rejected(&[vec![file(&deep, "x")]], "layer entry");
    c.rejected(&[vec![file("x", "x").raw_name(&[b'a'; 300])]], "layer entry");
}

#[test]
fn extraction_is_a_function_of_a_stream_and_a_directory() {
    // The entry point a fuzzer drives: no store, no files but the destination.
    require_root();
    let s = Scratch::new("pure");
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let tar = layer_tar(&[dir("a"), file("a/b", "b"), whiteout("a/c"), symlink("s", "/"), file("s/x", "x")]);
    let d = fs::File::open(&dest).unwrap();
    let err = strata_rootfs::extract::apply_layer(&tar[..], d.as_fd(), &Default::default()).unwrap_err();
    assert!(matches!(err, strata_rootfs::extract::Error::Rejected { .. }), "{err}");
    let tar = layer_tar(&[dir("a"), file("a/b", "b"), whiteout("a/c")]);
    let dest2 = s.join("dest2");
    fs::create_dir(&dest2).unwrap();
    let d = fs::File::open(&dest2).unwrap();
    let stats = strata_rootfs::extract::apply_layer(&tar[..], d.as_fd(), &Default::default()).unwrap();
    assert_eq!((stats.files, stats.whiteouts), (1, 1));
    let wh = fs::symlink_metadata(Path::new(&dest2).join("a/c")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::rdev(&wh), 0);
}

/// Random layers built from a small alphabet of troublesome names, kinds and link targets:
/// whatever `apply_layer` does with them (accept or reject), nothing outside its directory
/// changes and it never panics.
#[test]
fn random_layers_never_escape() {
    require_root();
    let s = Scratch::new("random");
    let victim = s.join("victim");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("secret"), "untouched").unwrap();
    let alphabet = ["a", "b", "..", ".", "s", ".wh.a", ".wh.s", ".wh..wh..opq", "", "victim", "ü ü"];
    let targets = [victim.to_str().unwrap(), "..", "../..", "../victim", "a", "/", "s/a", "/etc/passwd", "b/../.."];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut ok, mut rejected) = (0, 0);
    for round in 0..400 {
        let mut entries = Vec::new();
        for _ in 0..1 + next(12) {
            let depth = 1 + next(3);
            let path: Vec<&str> = (0..depth).map(|_| alphabet[next(alphabet.len())]).collect();
            let path = path.join("/");
            let target = targets[next(targets.len())];
            let e = match next(7) {
                0 => dir(&path),
                1 | 2 => file(&path, "data"),
                3 => symlink(&path, target),
                4 => hardlink(&path, if next(2) == 0 { target } else { "a" }),
                5 => fifo(&path),
                _ => dir(&path).xattr("user.x", b"1"),
            };
            entries.push(e.raw_name(path.as_bytes()));
        }
        let dest = s.join(&format!("dest-{round}"));
        fs::create_dir(&dest).unwrap();
        let d = fs::File::open(&dest).unwrap();
        match strata_rootfs::extract::apply_layer(&layer_tar(&entries)[..], d.as_fd(), &Default::default()) {
            Ok(_) => ok += 1,
            Err(_) => rejected += 1,
        }
        assert_eq!(names(&victim), vec!["secret"], "round {round} wrote into the victim: {entries:?}");
        assert_eq!(fs::read_to_string(victim.join("secret")).unwrap(), "untouched", "round {round}");
        let outside: Vec<String> =
            names(&s.path).into_iter().filter(|n| n != "victim" && !n.starts_with("dest-")).collect();
        assert!(outside.is_empty(), "round {round} created {outside:?} next to its directory: {entries:?}");
        fs::remove_dir_all(&dest).unwrap();
    }
    // The alphabet must exercise both outcomes, or the test proves little.
    assert!(ok > 20 && rejected > 20, "accepted {ok}, rejected {rejected}");
}
