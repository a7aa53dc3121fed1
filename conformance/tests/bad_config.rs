//! Hostile and malformed `config.json` files (conformance/corpus/bad-config, plus one too large to keep
//! in the repository): each must be refused with an error that names what is wrong, and leave nothing
//! behind (no state, no cgroup, no mount).

use std::fs;
use std::path::{Path, PathBuf};

use strata_conformance::*;

/// The corpus's fixed cgroupsPath (every case is refused before a cgroup could be made).
const CORPUS_CGROUP: &str = "strata-conformance/bad-config-corpus";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/bad-config")
}

/// (file name, contents, text the error must contain) for every case.
fn cases() -> Vec<(String, Vec<u8>, String)> {
    let dir = corpus_dir();
    let expected = fs::read_to_string(dir.join("EXPECTED")).or_fail("read corpus/bad-config/EXPECTED");
    let mut out: Vec<(String, Vec<u8>, String)> = expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (file, needle) = l.split_once('\t').or_fail(format!("EXPECTED line {l:?}"));
            let bytes = fs::read(dir.join(file)).or_fail(format!("read corpus file {file}"));
            (file.to_string(), bytes, needle.to_string())
        })
        .collect();
    let listed = out.len();
    let files = fs::read_dir(&dir)
        .or_fail("list the corpus")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(listed, files, "every corpus file must be listed in EXPECTED");
    // 17 MiB: a valid document padded past any sane size.
    let mut huge = br#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "annotations": {"pad": ""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 17 << 20));
    huge.extend_from_slice(b"\"}}");
    out.push(("huge (generated)".into(), huge, "larger than".into()));
    out
}

/// What a refused create may not leave: a state directory, a cgroup, a mount under the bundle.
fn leftovers(t: &Test, b: &Bundle) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir(t.root()).or_fail("list the state root").flatten() {
        found.push(format!("state entry {}", e.path().display()));
    }
    let info = fs::read_to_string("/proc/self/mountinfo").or_fail("read mountinfo");
    for l in info.lines() {
        let Some(mp) = l.split(' ').nth(4) else { continue };
        if l.contains(" - cgroup") && Path::new(mp).join(CORPUS_CGROUP).exists() {
            found.push(format!("cgroup {mp}/{CORPUS_CGROUP}"));
        }
        if mp.starts_with(&b.dir.display().to_string()) {
            found.push(format!("mount {mp}"));
        }
    }
    found
}

#[test]
fn bad_configs_refused_leaving_nothing_behind() {
    spec_test("bad_configs_refused_leaving_nothing_behind", |t| {
        let b = t.bundle();
        let mut problems = Vec::new();
        for (name, bytes, _) in cases() {
            fs::write(b.config_path(), &bytes).or_fail("write config.json");
            let id = t.new_id();
            let out = t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(&id).run();
            if out.success() {
                problems.push(format!("{name}: accepted"));
                t.cmd(&["delete", "--force"]).arg(&id).run();
                continue;
            }
            let left = leftovers(t, &b);
            if !left.is_empty() {
                problems.push(format!("{name}: left {left:?}"));
            }
        }
        assert!(problems.is_empty(), "{} bad configs misbehaved:\n{}", problems.len(), problems.join("\n"));
    });
}

#[test]
fn bad_config_errors_name_the_field() {
    spec_test("bad_config_errors_name_the_field", |t| {
        let b = t.bundle();
        let mut problems = Vec::new();
        for (name, bytes, needle) in cases() {
            fs::write(b.config_path(), &bytes).or_fail("write config.json");
            let id = t.new_id();
            let out = t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(&id).run();
            if out.success() {
                t.cmd(&["delete", "--force"]).arg(&id).run();
            }
            if !out.stderr.contains(&needle) {
                problems.push(format!("{name}: the error does not say {needle:?}: {:?}", out.stderr.trim()));
            }
        }
        assert!(problems.is_empty(), "{} errors do not name the field:\n{}", problems.len(), problems.join("\n"));
    });
}
