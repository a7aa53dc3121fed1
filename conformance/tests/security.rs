//! Container escapes and isolation: the classes of runc, crun and youki advisories, each as a test that
//! performs the attack (or its observable first step) and checks that it fails. SECURITY.md maps every
//! line of the hardening checklist to these tests.
//!
//! Runc 1.1.5 (Debian's, with the CVE-2024-21626 fix) predates several of these fixes; the tests it
//! fails are listed in `conformance/src/expectations.rs`, which proves that they can fail.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use strata_conformance::container::wait_exit;
use strata_conformance::probe::mount_at;
use strata_conformance::rootfs::PROBE_IN_CONTAINER;
use strata_conformance::*;

const EPERM: i64 = 1;
const EROFS: i64 = 30;

// ---------------------------------------------------------------------------------------------------
// Helpers

/// Mount points of the test process's (host) mount namespace at or below `dir`.
fn host_mounts_below(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").or_fail("read host mountinfo");
    let prefix = dir.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| *mp == prefix || mp.starts_with(&format!("{prefix}/")))
        .map(str::to_string)
        .collect()
}

/// A directory on the host that an attack tries to reach; asserts later that it stayed empty.
struct HostTarget {
    dir: PathBuf,
}

impl HostTarget {
    fn new(t: &Test, name: &str) -> Self {
        let dir = t.path(name);
        fs::create_dir_all(&dir).or_fail(format!("create {}", dir.display()));
        HostTarget { dir }
    }

    #[track_caller]
    fn assert_untouched(&self) {
        let entries: Vec<String> = fs::read_dir(&self.dir)
            .or_fail(format!("list {}", self.dir.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(entries.is_empty(), "the runtime created {entries:?} in the host directory {}", self.dir.display());
        let mounts = host_mounts_below(&self.dir);
        assert!(mounts.is_empty(), "the runtime mounted {mounts:?} on the host");
    }
}

/// Replaces `path` in the rootfs (a directory or file of the template) with a symlink to `target`.
fn plant_symlink(b: &Bundle, path: &str, target: &str) {
    let p = b.rootfs().join(path.trim_start_matches('/'));
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).or_fail(format!("create {}", parent.display()));
    }
    match fs::symlink_metadata(&p) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(&p).or_fail(format!("remove {}", p.display())),
        Ok(_) => fs::remove_file(&p).or_fail(format!("remove {}", p.display())),
        Err(_) => {}
    }
    symlink(target, &p).or_fail(format!("symlink {} -> {target}", p.display()));
}

/// The create either failed, or `check` holds for the container it made (then run to completion).
#[track_caller]
fn refused_or(t: &Test, b: &Bundle, check: impl FnOnce(&Value)) {
    let (id, out) = t.try_create(b, &[]);
    if !out.success() {
        return;
    }
    let c = t.cmd(&["start"]).arg(&id).run();
    c.ok();
    let state = t.cmd(&["state"]).arg(&id).run();
    let pid = state.json()["pid"].as_i64().unwrap_or(0) as i32;
    if pid > 0 {
        wait_exit(pid, &id);
    }
    let text = fs::read_to_string(&out.stdout_path).unwrap_or_default();
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("container {id} printed no JSON ({e}): {text:?}"));
    check(&v);
}

/// A private copy of the runtime binary (an attack may try to overwrite it) and its contents.
fn private_runtime(t: &Test) -> (PathBuf, Vec<u8>) {
    let src = t.runtime().path.clone();
    let dir = t.path("bin");
    fs::create_dir_all(&dir).or_fail("create bin dir");
    let copy = dir.join(src.file_name().or_fail("runtime file name"));
    fs::copy(&src, &copy).or_fail(format!("copy {} to {}", src.display(), copy.display()));
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).or_fail("chmod the runtime copy");
    let bytes = fs::read(&copy).or_fail("read the runtime copy");
    (copy, bytes)
}

/// Waits until `path` holds a line containing `needle`, or `pid` exits.
fn wait_for_line(path: &Path, needle: &str, pid: i32) {
    let started = Instant::now();
    loop {
        if fs::read_to_string(path).unwrap_or_default().contains(needle) {
            return;
        }
        if !container::process_alive(pid) || started.elapsed() > Duration::from_secs(60) {
            panic!("process {pid} never printed {needle:?}: {:?}", fs::read_to_string(path).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn last_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_default();
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("no JSON report in {} ({e}): {text:?}", path.display()))
}

/// Starts `strata-probe grab-exe SECONDS` in the container with `exec -d`, waits until it scans, and
/// returns (its pid, its stdout file).
fn start_attacker(t: &Test, c: &Container<'_>, seconds: &str) -> (i32, PathBuf) {
    let pid_file = t.path(&format!("attacker-{}.pid", c.id));
    let out = t
        .cmd(&["exec", "-d", "--pid-file"])
        .arg(&pid_file)
        .arg(&c.id)
        .args(&[PROBE_IN_CONTAINER, "grab-exe", seconds])
        .run();
    out.ok();
    let pid: i32 = fs::read_to_string(&pid_file).or_fail("attacker pid file").trim().parse().or_fail("attacker pid");
    wait_for_line(&out.stdout_path, "scanning", pid);
    (pid, out.stdout_path.clone())
}

/// The attacker's report, once it exited; fails if it wrote into `binary` or opened it.
#[track_caller]
fn assert_attack_failed(report: &Value, binary: &Path, original: &[u8]) {
    let now = fs::read(binary).or_fail("read the runtime copy");
    assert!(
        now == original,
        "the runtime binary {} was modified from inside the container: {report}",
        binary.display()
    );
    assert_eq!(report["written"], Value::Null, "{report}");
    let md = fs::metadata(binary).or_fail("stat the runtime copy");
    let reopened = report["opened"]
        .as_array()
        .or_fail("opened list")
        .iter()
        .any(|o| o["dev"] == json!(md.dev()) && o["ino"] == json!(md.ino()));
    assert!(!reopened, "the container opened the runtime binary through /proc/PID/exe: {report}");
}

/// Whether the report shows the attacker saw process `pid` (refused or opened).
fn attacker_saw(report: &Value, pid: i64) -> bool {
    ["denied", "opened"].iter().any(|k| report[*k].as_array().is_some_and(|a| a.iter().any(|o| o["pid"] == json!(pid))))
}

// ---------------------------------------------------------------------------------------------------
// 6. The runtime binary (CVE-2019-5736)

#[test]
fn runtime_binary_unreachable_from_created_container() {
    // CVE-2019-5736: a process in the container opens /proc/PID/exe of a runtime process it can see (here
    // the init of a created container, still the runtime's binary until `start`), keeps the descriptor,
    // and reopens it for writing once no process runs the binary any more.
    spec_test("runtime_binary_unreachable_from_created_container", |t| {
        let (copy, original) = private_runtime(t);
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        let c = t.create_via(&b, |cmd| cmd.binary(&copy));
        let (attacker, report_path) = start_attacker(t, &c, "3");
        c.start();
        wait_exit(attacker, "the attacker");
        let report = last_json(&report_path);
        assert!(attacker_saw(&report, 1), "the attacker never saw the container's init: {report}");
        assert_attack_failed(&report, &copy, &original);
    });
}

#[test]
fn runtime_binary_unreachable_with_cap_sys_ptrace() {
    // The same attack from a container granted CAP_SYS_PTRACE (common for debugging): being non-dumpable
    // is no protection against it, the binary itself must not be reachable.
    spec_test("runtime_binary_unreachable_with_cap_sys_ptrace", |t| {
        let (copy, original) = private_runtime(t);
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_PTRACE"]);
        b.set("/process/capabilities", json!({"bounding": caps, "effective": caps, "permitted": caps}));
        let c = t.create_via(&b, |cmd| cmd.binary(&copy));
        let (attacker, report_path) = start_attacker(t, &c, "3");
        c.start();
        wait_exit(attacker, "the attacker");
        let report = last_json(&report_path);
        assert!(attacker_saw(&report, 1), "the attacker never saw the container's init: {report}");
        assert_attack_failed(&report, &copy, &original);
    });
}

#[test]
fn runtime_binary_unreachable_during_exec() {
    // The `exec` child is the runtime's binary inside the container's pid namespace until it calls
    // execve. strace holds it there (a delay injected before its execve) while the attacker scans.
    spec_test("runtime_binary_unreachable_during_exec", |t| {
        let (copy, original) = private_runtime(t);
        let mut b = t.bundle();
        b.probe(&["grab-exe", "8"]);
        let c = t.start(&b);
        c.wait_for_output("scanning");
        for _ in 0..3 {
            let out = t
                .cmd(&["exec"])
                .arg(&c.id)
                .args(&["/bin/true"])
                .via(&[
                    "strace",
                    "-f",
                    "-qq",
                    "-o",
                    "/dev/null",
                    "-e",
                    "trace=execve",
                    "-e",
                    "inject=execve:delay_enter=300000",
                ])
                .binary(&copy)
                .run();
            out.ok();
        }
        c.wait_success();
        let report = c.json();
        let saw_runtime = report["denied"].as_array().is_some_and(|a| !a.is_empty())
            || report["opened"].as_array().is_some_and(|a| !a.is_empty());
        assert!(saw_runtime, "the attacker never saw an exec in flight: {report}");
        assert_attack_failed(&report, &copy, &original);
    });
}
