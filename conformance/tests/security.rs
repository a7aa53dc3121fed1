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
        let mounts = traces::mounts_below(&self.dir);
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

/// Starts created container `id` and waits for its process to end. The pid is taken before `start`:
/// read after the process ended, it could name a recycled pid (another test's process).
fn start_and_wait(t: &Test, id: &str) -> bool {
    let pid = t.cmd(&["state"]).arg(id).run().json()["pid"].as_i64().unwrap_or(0) as i32;
    if !t.cmd(&["start"]).arg(id).run().success() {
        return false;
    }
    if pid > 0 {
        wait_exit(pid, id);
    }
    true
}

/// The create either failed, or `check` holds for the container it made (then run to completion).
#[track_caller]
fn refused_or(t: &Test, b: &Bundle, check: impl FnOnce(&Value)) {
    let (id, out) = t.try_create(b, &[]);
    if !out.success() {
        return;
    }
    assert!(start_and_wait(t, &id), "start {id} failed");
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

/// Without CAP_SYS_PTRACE, nothing else of a runtime process is reachable either: its descriptors (the
/// state directory, the exec fifo, its private procfs), cwd and root. (A container allowed to ptrace
/// may look at those of its own init, as it could ptrace it.)
#[track_caller]
fn assert_runtime_process_unreachable(report: &Value) {
    let reached = report["reached"].as_array().map_or(0, Vec::len);
    assert_eq!(reached, 0, "the container reached descriptors, cwd or root of a runtime process: {report}");
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
        assert_runtime_process_unreachable(&report);
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
        // Scans until told to stop (at most 120 s): four execs held 300 ms each by strace take
        // seconds in an emulated guest, and the container must outlive them.
        b.probe(&["grab-exe", "120"]);
        let c = t.start(&b);
        c.wait_for_output("scanning");
        for _ in 0..4 {
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
            // strace 6.1 sometimes trips over its own delay bookkeeping ("delayed wait data set
            // already") and kills its tracees: that exec says nothing about the runtime.
            if !out.success() && out.stderr.contains("strace: ") {
                eprintln!("note: strace failed, not the runtime: {out}");
                continue;
            }
            out.ok();
        }
        t.cmd(&["exec"]).arg(&c.id).args(&["touch", "/dev/grab-exe.stop"]).run().ok();
        c.wait_success();
        let report = c.json();
        let saw_runtime = report["denied"].as_array().is_some_and(|a| !a.is_empty())
            || report["opened"].as_array().is_some_and(|a| !a.is_empty());
        assert!(saw_runtime, "the attacker never saw an exec in flight: {report}");
        assert_attack_failed(&report, &copy, &original);
        assert_runtime_process_unreachable(&report);
    });
}

// ---------------------------------------------------------------------------------------------------
// Races: a thread of the test swaps two names atomically (RENAME_EXCHANGE) for as long as it runs, as a
// process in another container sharing the volume would.

struct Swapper {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl Swapper {
    /// Keeps exchanging `dir/a` and `dir/b`.
    fn start(dir: &Path, a: &str, b: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, a, b, flag) = (dir.to_path_buf(), a.to_string(), b.to_string(), stop.clone());
        let handle = std::thread::spawn(move || {
            let fd = fs::File::open(&dir).or_fail(format!("open {}", dir.display()));
            let mut swaps = 0u64;
            while !flag.load(Ordering::Relaxed) {
                nix::fcntl::renameat2(&fd, a.as_str(), &fd, b.as_str(), nix::fcntl::RenameFlags::RENAME_EXCHANGE)
                    .or_fail("exchange the racing names");
                swaps += 1;
            }
            swaps
        });
        Swapper { stop, handle: Some(handle) }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).or_fail("the swapping thread panicked")
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Creates, starts, waits for and deletes a container from `b` `rounds` times while something races;
/// calls `check` with the output of each container that could be created.
fn create_repeatedly(t: &Test, b: &Bundle, rounds: usize, mut check: impl FnMut(&str)) -> usize {
    let mut created = 0;
    for _ in 0..rounds {
        let (id, out) = t.try_create(b, &[]);
        if !out.success() {
            continue;
        }
        created += 1;
        assert!(start_and_wait(t, &id), "start {id} failed");
        check(&fs::read_to_string(&out.stdout_path).unwrap_or_default());
        t.cmd(&["delete", "--force"]).arg(&id).run().ok();
    }
    created
}

// ---------------------------------------------------------------------------------------------------
// 1. Mount destinations resolved inside the rootfs (CVE-2021-30465, CVE-2024-45310)

#[test]
fn mount_destination_absolute_symlink_stays_in_rootfs() {
    // An image symlink to a host path on the way to a mount destination: the mount and the directories
    // made for it stay inside the rootfs (or the create fails); nothing appears on the host.
    spec_test("mount_destination_absolute_symlink_stays_in_rootfs", |t| {
        let target = HostTarget::new(t, "host-target");
        let mut b = t.bundle();
        plant_symlink(&b, "/mnt/link", target.dir.to_str().or_fail("path"));
        b.mount(json!({"destination": "/mnt/link/made", "type": "tmpfs", "source": "attack"}));
        b.probe(&["mounts"]);
        let inside = format!("{}/made", target.dir.display());
        refused_or(t, &b, |v| assert!(mount_at(v, &inside).is_some(), "the tmpfs is not at {inside} inside: {v}"));
        target.assert_untouched();
    });
}

#[test]
fn mount_destination_dangling_relative_symlink_stays_in_rootfs() {
    // A relative symlink climbing far above the root, to a host path that does not exist: a file bind
    // mount under it creates nothing on the host (CVE-2024-45310 created empty files and directories).
    spec_test("mount_destination_dangling_relative_symlink_stays_in_rootfs", |t| {
        let target = HostTarget::new(t, "host-target");
        let mut b = t.bundle();
        let climb = format!("{}{}/missing", "../".repeat(20), target.dir.display().to_string().trim_start_matches('/'));
        plant_symlink(&b, "/mnt/rel", &climb);
        let src = b.dir.join("bind-source");
        fs::write(&src, "bound").or_fail("write bind source");
        b.mount(json!({"destination": "/mnt/rel/sub/file", "type": "bind", "source": src, "options": ["bind"]}));
        b.probe(&["mounts"]);
        refused_or(t, &b, |_| {});
        target.assert_untouched();
    });
}

#[test]
fn mount_destination_symlink_race_reaches_nothing_on_host() {
    // CVE-2021-30465 and CVE-2024-45310 were races: a container sharing a volume swaps a directory on the
    // way to another container's mount destination with a symlink to the host between check and use.
    spec_test("mount_destination_symlink_race_reaches_nothing_on_host", |t| {
        let target = HostTarget::new(t, "host-target");
        let vol = t.path("volume");
        fs::create_dir_all(vol.join("race")).or_fail("create the racing directory");
        symlink(&target.dir, vol.join("race.alt")).or_fail("create the racing symlink");
        let mut b = t.bundle();
        b.mount(json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["bind"]}));
        b.mount(json!({"destination": "/vol/race/made/deeper", "type": "tmpfs", "source": "race"}));
        b.probe(&["mounts"]);
        let inside_target = target.dir.display().to_string();
        let swapper = Swapper::start(&vol, "race", "race.alt");
        create_repeatedly(t, &b, 20, |out| {
            // The directory may have been renamed to race.alt since: the mount stays on it, in the volume.
            let v: Value = serde_json::from_str(out.trim()).or_fail(format!("mounts report: {out}"));
            let raced: Vec<&Value> = v.as_array().or_fail("mounts").iter().filter(|m| m["source"] == "race").collect();
            assert_eq!(raced.len(), 1, "{v}");
            // Or inside the rootfs where the symlink points (resolved in the root, as if chrooted).
            let at = raced[0]["mount_point"].as_str().unwrap_or_default();
            let allowed = ["/vol/race", "/vol/race.alt", inside_target.as_str()].map(|d| format!("{d}/made/deeper"));
            assert!(allowed.iter().any(|a| a == at), "the tmpfs landed at {at}");
        });
        assert!(swapper.finish() > 0, "the race never ran");
        target.assert_untouched();
    });
}

// ---------------------------------------------------------------------------------------------------
// 2. /proc and /sys only onto real directories, no mounts over /proc subpaths
//    (CVE-2019-19921, CVE-2019-16884, CVE-2023-27561)

#[test]
fn proc_mount_onto_symlink_refused() {
    spec_test("proc_mount_onto_symlink_refused", |t| {
        let b = t.bundle();
        plant_symlink(&b, "/proc", "/tmp");
        t.try_create(&b, &[]).1.failed();
    });
}

#[test]
fn sysfs_mount_onto_symlink_refused() {
    spec_test("sysfs_mount_onto_symlink_refused", |t| {
        let b = t.bundle();
        plant_symlink(&b, "/sys", "/tmp");
        t.try_create(&b, &[]).1.failed();
    });
}

#[test]
fn proc_mount_onto_file_refused() {
    spec_test("proc_mount_onto_file_refused", |t| {
        let b = t.bundle();
        fs::remove_dir(b.rootfs().join("proc")).or_fail("remove /proc");
        fs::write(b.rootfs().join("proc"), "not a directory").or_fail("write /proc as a file");
        t.try_create(&b, &[]).1.failed();
    });
}

#[test]
fn bind_mount_over_proc_self_attr_refused() {
    // CVE-2019-16884: a volume mounted over /proc/self/attr/* made the LSM label write a no-op.
    spec_test("bind_mount_over_proc_self_attr_refused", |t| {
        let mut b = t.bundle();
        let src = b.dir.join("fake-attr");
        fs::write(&src, "unconfined").or_fail("write the fake attr");
        b.mount(json!({"destination": "/proc/self/attr/exec", "type": "bind", "source": src, "options": ["bind"]}));
        t.try_create(&b, &[]).1.failed();
    });
}

#[test]
fn tmpfs_over_proc_sys_refused() {
    spec_test("tmpfs_over_proc_sys_refused", |t| {
        let mut b = t.bundle();
        b.mount(json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}));
        t.try_create(&b, &[]).1.failed();
    });
}

#[test]
fn proc_overmount_on_allow_list_works() {
    // What lxcfs does: a file bound over /proc/cpuinfo (on the allow-list) is accepted.
    spec_test("proc_overmount_on_allow_list_works", |t| {
        let mut b = t.bundle();
        let src = b.dir.join("cpuinfo");
        fs::write(&src, "virtual cpuinfo\n").or_fail("write cpuinfo");
        b.mount(json!({"destination": "/proc/cpuinfo", "type": "bind", "source": src, "options": ["bind", "ro"]}));
        b.sh("cat /proc/cpuinfo");
        let c = t.start(&b);
        c.wait_success();
        assert_eq!(c.stdout(), "virtual cpuinfo\n");
    });
}

#[test]
fn proc_mount_symlink_race_never_redirected() {
    // CVE-2019-19921: /proc swapped with a symlink between the check and the mount.
    spec_test("proc_mount_symlink_race_never_redirected", |t| {
        let mut b = t.bundle();
        symlink("/tmp", b.rootfs().join("proc.alt")).or_fail("create the racing symlink");
        b.args(&["sleep", "30"]);
        let swapper = Swapper::start(&b.rootfs(), "proc", "proc.alt");
        for _ in 0..20 {
            let (id, out) = t.try_create(&b, &[]);
            if !out.success() {
                continue;
            }
            // The mount table seen from the host (the race goes on inside the container): the directory
            // mounted on may be called proc or proc.alt by now, but /tmp must never have the procfs.
            let pid = t.cmd(&["state"]).arg(&id).run().json()["pid"].as_i64().unwrap_or(0);
            let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).or_fail("read the container's mountinfo");
            let procs: Vec<&str> =
                info.lines().filter(|l| l.contains(" - proc ")).filter_map(|l| l.split(' ').nth(4)).collect();
            assert!(!procs.is_empty(), "no procfs in the container: {info}");
            let in_proc_dir =
                |m: &&str| ["/proc", "/proc.alt"].iter().any(|d| *m == *d || m.starts_with(&format!("{d}/")));
            assert!(procs.iter().all(in_proc_dir), "procfs mounted at {procs:?}");
            t.cmd(&["delete", "--force"]).arg(&id).run().ok();
        }
        assert!(swapper.finish() > 0, "the race never ran");
    });
}

// ---------------------------------------------------------------------------------------------------
// 3. Writes to /proc through a procfs handle no mount can cover (CVE-2025-52881)

/// A createContainer hook (run in the container's mount namespace, before pivot_root) that binds `file`
/// over `path` inside the rootfs: the overmount an attacker sharing a volume arranged in the CVE.
fn overmount_hook(b: &mut Bundle, file: &Path, path: &str) {
    let script = format!("mount --bind {} {}/{}", file.display(), b.rootfs().display(), path.trim_start_matches('/'));
    b.push("/hooks/createContainer", json!({"path": "/bin/sh", "args": ["sh", "-c", script]}));
}

#[test]
fn sysctl_not_written_through_overmount() {
    spec_test("sysctl_not_written_through_overmount", |t| {
        let mut b = t.bundle();
        let decoy = t.path("decoy-ip_forward");
        fs::write(&decoy, "0\n").or_fail("write the decoy");
        overmount_hook(&mut b, &decoy, "/proc/sys/net/ipv4/ip_forward");
        b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1"}));
        b.args(&["sleep", "30"]);
        let c = t.create(&b);
        let real = std::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", c.pid))
            .args(["cat", "/proc/sys/net/ipv4/ip_forward"])
            .output()
            .or_fail("nsenter (util-linux)");
        assert_eq!(fs::read_to_string(&decoy).or_fail("read the decoy"), "0\n", "the sysctl went into the overmount");
        assert_eq!(String::from_utf8_lossy(&real.stdout).trim(), "1", "the sysctl was not applied");
    });
}

#[test]
fn oom_score_adj_not_written_through_overmount() {
    spec_test("oom_score_adj_not_written_through_overmount", |t| {
        let mut b = t.bundle();
        let decoy = t.path("decoy-oom_score_adj");
        fs::write(&decoy, "0\n").or_fail("write the decoy");
        overmount_hook(&mut b, &decoy, "/proc/1/oom_score_adj");
        b.set("/process/oomScoreAdj", json!(321));
        b.args(&["sleep", "30"]);
        let c = t.create(&b);
        let real = fs::read_to_string(format!("/proc/{}/oom_score_adj", c.pid)).or_fail("read oom_score_adj");
        assert_eq!(fs::read_to_string(&decoy).or_fail("read the decoy"), "0\n", "written into the overmount");
        assert_eq!(real.trim(), "321");
    });
}

// ---------------------------------------------------------------------------------------------------
// 4. Masked paths: a verified /dev/null, read-only tmpfs for directories (CVE-2025-31133)

/// A bundle whose /dev is a bind mount of a host directory the test controls (so the runtime does not
/// populate it), holding `null` as made by `make_null`.
fn bundle_with_host_dev(t: &Test, make_null: impl FnOnce(&Path)) -> (Bundle, PathBuf) {
    let mut b = t.bundle();
    let dev = b.host_dir("hostdev");
    make_null(&dev.join("null"));
    b.without_mount("/dev");
    let mounts = b.spec["mounts"].as_array().cloned().unwrap_or_default();
    let mut with_dev = vec![json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]})];
    with_dev.extend(mounts.into_iter().filter(|m| m["destination"] != "/proc").collect::<Vec<_>>());
    with_dev.insert(0, json!({"destination": "/proc", "type": "proc", "source": "proc"}));
    b.set("/mounts", Value::Array(with_dev));
    (b, dev)
}

fn mknod_char(path: &Path, major: u64, minor: u64) {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    mknod(path, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(major, minor))
        .or_fail(format!("mknod {}", path.display()));
}

/// A secret file in the rootfs, masked, and the probe reading it.
fn mask_secret(b: &mut Bundle) {
    b.rootfs_file("/secret", "top secret");
    b.set("/linux/maskedPaths", json!(["/secret"]));
    b.probe(&["access", "read:/secret"]);
}

/// Whether an access result shows that nothing could be read.
fn unreadable(v: &Value) -> bool {
    v["ok"] == false || v["result"] == 0
}

#[test]
fn masked_path_refuses_symlinked_dev_null() {
    // CVE-2025-31133: /dev/null replaced by a symlink to /proc/sys/kernel/core_pattern; masking /proc/kcore
    // with it bound the (writable) core_pattern over the masked path instead.
    spec_test("masked_path_refuses_symlinked_dev_null", |t| {
        let (mut b, _) = bundle_with_host_dev(t, |null| {
            symlink("/proc/sys/kernel/core_pattern", null).or_fail("plant the /dev/null symlink")
        });
        mask_secret(&mut b);
        refused_or(t, &b, |v| assert!(unreadable(&v["read:/secret"]), "the masked path is readable: {v}"));
    });
}

#[test]
fn masked_path_refuses_other_device_as_dev_null() {
    spec_test("masked_path_refuses_other_device_as_dev_null", |t| {
        let (mut b, _) = bundle_with_host_dev(t, |null| mknod_char(null, 1, 5));
        mask_secret(&mut b);
        refused_or(t, &b, |v| assert!(unreadable(&v["read:/secret"]), "the masked path is readable: {v}"));
    });
}

#[test]
fn masked_path_dev_null_race_never_redirected() {
    // The race of CVE-2025-31133: /dev/null swapped with a symlink while the container is set up.
    spec_test("masked_path_dev_null_race_never_redirected", |t| {
        let (mut b, dev) = bundle_with_host_dev(t, |null| mknod_char(null, 1, 3));
        symlink("/proc/sys/kernel/core_pattern", dev.join("null.alt")).or_fail("create the racing symlink");
        mask_secret(&mut b);
        let swapper = Swapper::start(&dev, "null", "null.alt");
        create_repeatedly(t, &b, 20, |out| {
            let v: Value = serde_json::from_str(out.trim()).or_fail(format!("access report: {out}"));
            assert!(unreadable(&v["read:/secret"]), "the masked path is readable: {v}");
        });
        assert!(swapper.finish() > 0, "the race never ran");
    });
}

#[test]
fn masked_file_is_the_null_device() {
    spec_test("masked_file_is_the_null_device", |t| {
        let mut b = t.bundle();
        b.rootfs_file("/secret", "top secret");
        b.set("/linux/maskedPaths", json!(["/secret", "/proc/timer_list"]));
        b.probe(&["devices", "/secret", "/proc/timer_list"]);
        let v = t.run_probe(&b);
        for p in ["/secret", "/proc/timer_list"] {
            let d = &v[p];
            let got = (d["type"].as_str(), d["major"].as_u64(), d["minor"].as_u64());
            assert_eq!(got, (Some("c"), Some(1), Some(3)), "{v}");
        }
    });
}

#[test]
fn masked_directory_is_an_empty_readonly_tmpfs() {
    spec_test("masked_directory_is_an_empty_readonly_tmpfs", |t| {
        let mut b = t.bundle();
        b.writable_root();
        b.rootfs_file("/secret/inside", "secret");
        b.set("/linux/maskedPaths", json!(["/secret"]));
        b.sh("/bin/strata-probe mounts; /bin/strata-probe access list:/secret create:/secret");
        let c = t.start(&b);
        c.wait_success();
        let out = c.stdout();
        let mut lines = out.lines();
        let mounts: Value = serde_json::from_str(lines.next().unwrap_or("")).or_fail("mounts report");
        let access: Value = serde_json::from_str(lines.next().unwrap_or("")).or_fail("access report");
        let m = mount_at(&mounts, "/secret").or_fail(format!("nothing mounted on /secret: {mounts}"));
        assert_eq!(m["fstype"], "tmpfs", "{m}");
        assert!(strata_conformance::probe::has_mount_option(m, "ro"), "{m}");
        assert_eq!(access["list:/secret"]["result"], json!([]), "{access}");
        assert_eq!(access["create:/secret"]["errno"], EROFS, "{access}");
    });
}

// ---------------------------------------------------------------------------------------------------
// 5. /dev/console, the pty and /dev (CVE-2025-52565)

#[test]
fn console_symlink_in_image_cannot_redirect_the_pty() {
    // CVE-2025-52565: the image's /dev/console is a symlink to a /proc file; binding the pty "onto
    // /dev/console" overmounted that file instead.
    spec_test("console_symlink_in_image_cannot_redirect_the_pty", |t| {
        let mut b = t.bundle();
        b.without_mount("/dev");
        plant_symlink(&b, "/dev/console", "/proc/sys/kernel/core_pattern");
        b.set("/process/terminal", json!(true));
        b.probe(&["devices", "/proc/sys/kernel/core_pattern", "/dev/console"]);
        let core_pattern = fs::read("/proc/sys/kernel/core_pattern").or_fail("read core_pattern");
        let mut sock = ConsoleSocket::listen(&t.socket_path());
        let path = sock.path.to_str().or_fail("socket path").to_string();
        let (id, out) = t.try_create(&b, &["--console-socket", &path]);
        if out.success() {
            let mut reader = console::TerminalReader::start(sock.receive().master);
            assert!(start_and_wait(t, &id), "start {id} failed");
            let text = reader.output();
            let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
            let v: Value = serde_json::from_str(line).or_fail(format!("terminal output: {text:?}"));
            assert_ne!(v["/proc/sys/kernel/core_pattern"]["type"], "c", "the pty was mounted over a /proc file: {v}");
        }
        assert_eq!(fs::read("/proc/sys/kernel/core_pattern").or_fail("read core_pattern"), core_pattern);
    });
}

#[test]
fn ptmx_symlink_in_image_refused() {
    // Without a devpts mount the image's /dev/pts/ptmx is used: a symlink there is not followed.
    spec_test("ptmx_symlink_in_image_refused", |t| {
        let mut b = t.bundle();
        b.without_mount("/dev");
        b.without_mount("/dev/pts");
        plant_symlink(&b, "/dev/pts/ptmx", "/dev/null");
        b.set("/process/terminal", json!(true));
        let sock = ConsoleSocket::listen(&t.socket_path());
        let path = sock.path.to_str().or_fail("socket path").to_string();
        t.try_create(&b, &["--console-socket", &path]).1.failed();
    });
}

#[test]
fn dev_symlink_in_image_cannot_reach_host() {
    // The image's /dev is a symlink to a host directory: devices, links and mounts go into the rootfs.
    spec_test("dev_symlink_in_image_cannot_reach_host", |t| {
        let target = HostTarget::new(t, "host-dev");
        for tmpfs_dev in [true, false] {
            let mut b = t.bundle();
            if !tmpfs_dev {
                b.without_mount("/dev");
            }
            plant_symlink(&b, "/dev", target.dir.to_str().or_fail("path"));
            b.args(&["true"]);
            refused_or_ran(t, &b);
            target.assert_untouched();
        }
    });
}

/// Like [`refused_or`] for a process that prints nothing.
fn refused_or_ran(t: &Test, b: &Bundle) {
    let (id, out) = t.try_create(b, &[]);
    if out.success() {
        assert!(start_and_wait(t, &id), "start {id} failed");
        t.cmd(&["delete", "--force"]).arg(&id).run().ok();
    }
}

// ---------------------------------------------------------------------------------------------------
// 7. No host descriptor or cwd reachable (CVE-2024-21626)

#[test]
fn cwd_through_leaked_fd_fails() {
    // CVE-2024-21626: process.cwd /proc/self/fd/N, N a descriptor of the runtime (its own, or one it
    // inherited) pointing at a host directory, put the process outside its root.
    spec_test("cwd_through_leaked_fd_fails", |t| {
        let host = HostTarget::new(t, "host-dir");
        fs::write(host.dir.join("host-marker"), "host").or_fail("write the host marker");
        let prefix = (5..=9).map(|n| format!("{n}<{}", host.dir.display())).collect::<Vec<_>>().join(" ");
        for n in 3..=15 {
            let mut b = t.bundle();
            b.set("/process/cwd", json!(format!("/proc/self/fd/{n}")));
            b.probe(&["access", "read:host-marker", "list:."]);
            b.write();
            let id = t.new_id();
            let out = t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(&id).sh_prefix(&format!("exec {prefix}")).run();
            if !out.success() {
                continue;
            }
            if !start_and_wait(t, &id) {
                continue;
            }
            let text = fs::read_to_string(&out.stdout_path).unwrap_or_default();
            assert!(!text.contains("host-marker\":{\"ok\":true"), "cwd /proc/self/fd/{n} reached the host: {text}");
        }
    });
}

#[test]
fn exec_cwd_through_leaked_fd_fails() {
    spec_test("exec_cwd_through_leaked_fd_fails", |t| {
        let host = HostTarget::new(t, "host-dir");
        fs::write(host.dir.join("host-marker"), "host").or_fail("write the host marker");
        let prefix = (5..=9).map(|n| format!("{n}<{}", host.dir.display())).collect::<Vec<_>>().join(" ");
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        let c = t.start(&b);
        for n in 3..=15 {
            let out = t
                .cmd(&["exec", "--cwd"])
                .arg(format!("/proc/self/fd/{n}"))
                .arg(&c.id)
                .args(&[PROBE_IN_CONTAINER, "access", "read:host-marker"])
                .sh_prefix(&format!("exec {prefix}"))
                .run();
            assert!(
                !out.stdout.contains("host-marker\":{\"ok\":true"),
                "exec --cwd /proc/self/fd/{n} reached the host: {out}"
            );
        }
    });
}

#[test]
fn exec_only_stdio_fds_open() {
    // runtime-linux.md: only stdio is kept open for the application, for `exec` as for `create`.
    spec_test("exec_only_stdio_fds_open", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        let c = t.start(&b);
        let out = t
            .cmd(&["exec"])
            .arg(&c.id)
            .args(&[PROBE_IN_CONTAINER, "fds"])
            .sh_prefix("exec 5</etc/hostname 6</ 7</proc")
            .run();
        out.ok();
        let fds = out.json();
        let mut open: Vec<&String> = fds.as_object().or_fail("fds").keys().collect();
        open.sort();
        assert_eq!(open, ["0", "1", "2"], "{fds}");
    });
}

// ---------------------------------------------------------------------------------------------------
// 8. Capabilities and the device cgroup (CVE-2022-29162)

#[test]
fn exec_inheritable_capabilities_stay_empty() {
    // CVE-2022-29162: `runc exec --cap` gave the process inheritable capabilities, which a setuid or
    // file-capability program could then use.
    spec_test("exec_inheritable_capabilities_stay_empty", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        let c = t.start(&b);
        for extra in [&[][..], &["--cap", "CAP_NET_ADMIN"][..], &["--user", "1000:1000"][..]] {
            let out = t.cmd(&["exec"]).args(extra).arg(&c.id).args(&[PROBE_IN_CONTAINER, "caps"]).run();
            out.ok();
            let v = out.json();
            assert_eq!(probe::cap_names(&v, "inheritable"), Vec::<String>::new(), "exec {extra:?}: {v}");
        }
    });
}

#[test]
fn device_cgroup_denies_by_default() {
    // Without any linux.resources.devices rule, a device node in the image (here the host's root disk)
    // cannot be opened, nor one the container makes itself.
    spec_test("device_cgroup_denies_by_default", |t| {
        let mut b = t.bundle();
        b.remove("/linux/resources");
        let disk = fs::metadata("/").or_fail("stat /").dev();
        let (major, minor) = (nix::sys::stat::major(disk), nix::sys::stat::minor(disk));
        nix::sys::stat::mknod(
            &b.rootfs().join("hostdisk"),
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            disk,
        )
        .or_fail("mknod the host disk in the rootfs");
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_MKNOD"]);
        b.set("/process/capabilities", json!({"bounding": caps, "effective": caps, "permitted": caps}));
        // mknod itself is allowed (runc's default rules allow it for every device); opening is not.
        b.sh(&format!(
            "mknod /dev/disk2 b {major} {minor}; /bin/strata-probe access read:/hostdisk read:/dev/disk2 read:/dev/null"
        ));
        let c = t.start(&b);
        c.wait_success();
        let v = c.json();
        // The device cgroup answers EPERM before the driver is asked (which could say ENXIO); the
        // image's node may also sit on a nodev filesystem (EACCES): either way it cannot be read.
        assert_eq!(v["read:/dev/disk2"]["errno"], EPERM, "{v}");
        assert_eq!(v["read:/hostdisk"]["ok"], false, "{v}");
        assert_eq!(v["read:/dev/null"]["ok"], true, "the default devices stay usable: {v}");
    });
}

// ---------------------------------------------------------------------------------------------------
// 9. Ids and cgroupsPath stay in their roots; no mount propagates to the host

#[test]
fn container_id_cannot_escape_state_root() {
    spec_test("container_id_cannot_escape_state_root", |t| {
        let b = t.bundle();
        b.write();
        let decoy = t.dir().join("decoy");
        fs::create_dir_all(&decoy).or_fail("create the decoy");
        fs::write(decoy.join("state.json"), "{}").or_fail("write the decoy state");
        let absolute = format!("{}/absolute-id", t.dir().display());
        let bad = ["../decoy", "..", ".", "a/b", "../escape", "a/../../escape", absolute.as_str()];
        for id in bad {
            t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(id).run().failed();
            for cmd in [&["state"][..], &["start"], &["kill"], &["delete"], &["delete", "--force"], &["pause"]] {
                t.cmd(cmd).arg(id).run().failed();
            }
        }
        assert!(decoy.join("state.json").exists(), "the decoy outside the state root was removed");
        assert!(!t.dir().join("escape").exists() && !Path::new(&absolute).exists(), "created outside the root");
    });
}

/// Every cgroup directory named `name` in any hierarchy, as (hierarchy mount, path inside it).
fn cgroup_dirs_named(name: &str) -> Vec<(PathBuf, String)> {
    fn walk(mount: &Path, dir: &Path, name: &str, depth: usize, out: &mut Vec<(PathBuf, String)>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name() == name {
                let inner = p.strip_prefix(mount).map(|r| format!("/{}", r.display())).unwrap_or_default();
                out.push((mount.to_path_buf(), inner));
            }
            if depth < 8 {
                walk(mount, &p, name, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for mp in info.lines().filter(|l| l.contains(" - cgroup")).filter_map(|l| l.split(' ').nth(4)) {
        walk(Path::new(mp), Path::new(mp), name, 0, &mut out);
    }
    out
}

#[test]
fn cgroups_path_cannot_escape_its_root() {
    // An absolute cgroupsPath is inside each hierarchy's root, a relative one inside the runtime's own
    // cgroup: `..` can climb out of neither.
    spec_test("cgroups_path_cannot_escape_its_root", |t| {
        let marker = format!("strata-escape-{}", std::process::id());
        let own = fs::read_to_string("/proc/self/cgroup").or_fail("read /proc/self/cgroup");
        let own_paths: Vec<String> = own.lines().filter_map(|l| l.splitn(3, ':').nth(2)).map(str::to_string).collect();
        let attempts = [
            (format!("/../../{marker}"), true),
            (format!("/a/../../{marker}"), true),
            (format!("../{marker}"), false),
            (format!("../../../{marker}"), false),
            (format!("x/../../{marker}"), false),
        ];
        for (path, absolute) in attempts {
            let mut b = t.bundle();
            b.set("/linux/cgroupsPath", json!(path));
            b.without_namespace("cgroup");
            b.args(&["true"]);
            refused_or_ran(t, &b);
            for (mount, inner) in cgroup_dirs_named(&marker) {
                let allowed = if absolute {
                    inner == format!("/{marker}")
                } else {
                    own_paths.iter().any(|o| inner.starts_with(&format!("{}/", o.trim_end_matches('/'))))
                };
                let dir = mount.join(inner.trim_start_matches('/'));
                if let Err(e) = fs::remove_dir(&dir) {
                    eprintln!("note: remove {}: {e}", dir.display());
                }
                assert!(allowed, "cgroupsPath {path:?} made {} (outside its root)", dir.display());
            }
        }
    });
}

#[test]
fn runtime_mounts_do_not_propagate_to_host() {
    // The container's mounts (proc, dev, the rootfs bind, a bind mount) never appear in the host's mount
    // table, even when the rootfs sits on a shared mount and rootfsPropagation asks for sharing.
    spec_test("runtime_mounts_do_not_propagate_to_host", |t| {
        let shared = t.path("shared");
        hostmount::tmpfs(t, &shared);
        hostmount::propagation(&shared, nix::mount::MsFlags::MS_SHARED);
        for (i, propagation) in [None, Some("shared"), Some("rshared"), Some("private")].into_iter().enumerate() {
            let mut b = t.bundle();
            let rootfs = shared.join(format!("rootfs{i}"));
            t.rootfs_at(&rootfs);
            b.set("/root/path", json!(rootfs));
            let src = b.host_dir("bind-source");
            b.mount(json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind"]}));
            if let Some(p) = propagation {
                b.set("/linux/rootfsPropagation", json!(p));
            }
            b.args(&["sleep", "30"]);
            let c = t.create(&b);
            let leaked: Vec<String> =
                traces::mounts_below(&shared).into_iter().filter(|m| Path::new(m) != shared).collect();
            assert!(leaked.is_empty(), "rootfsPropagation {propagation:?}: container mounts on the host: {leaked:?}");
            c.kill("KILL");
            c.wait();
            c.delete().ok();
        }
    });
}

// ---------------------------------------------------------------------------------------------------
// 10. Read-only root, readonlyPaths and /sys/fs/cgroup stay read-only

#[test]
fn readonly_mounts_cannot_be_made_writable() {
    spec_test("readonly_mounts_cannot_be_made_writable", |t| {
        let mut b = t.bundle();
        b.sh("for m in / /proc/sys /sys/fs/cgroup /sys; do mount -o remount,rw $m 2>/dev/null && echo remounted $m; \
             mount -o remount,bind,rw $m 2>/dev/null && echo remounted $m; done; \
             for d in /sys/fs/cgroup /sys/fs/cgroup/*; do mkdir $d/escape 2>/dev/null && echo made $d; done; \
             /bin/strata-probe access create:/ create:/etc write:/proc/sys/kernel/hostname write:/proc/sys/vm/overcommit_memory");
        let c = t.start(&b);
        c.wait_success();
        let out = c.stdout();
        assert!(!out.contains("remounted") && !out.contains("made "), "{out}");
        let v = c.json();
        for check in
            ["create:/", "create:/etc", "write:/proc/sys/kernel/hostname", "write:/proc/sys/vm/overcommit_memory"]
        {
            assert_eq!(v[check]["errno"], EROFS, "{check}: {v}");
        }
    });
}

#[test]
fn no_pivot_container_cannot_mount_a_fresh_proc() {
    // issue 16 item 20. The kernel refuses a new procfs in a user namespace unless the mount namespace
    // holds a fully visible procfs (mnt_already_visible); a container's /proc has masked paths mounted
    // over it, so `unshare -mrpf mount -t proc none /proc` fails -- unless the runtime leaves the host's
    // own /proc reachable in the container's mount namespace, as a chroot without pivot_root does. runc
    // --no-pivot first unmounts (or covers) every full procfs and sysfs outside the rootfs
    // (libcontainer/rootfs_linux.go msMoveRoot); with it, as with pivot_root, the masked paths hold.
    spec_test("no_pivot_container_cannot_mount_a_fresh_proc", |t| {
        for flags in [&[][..], &["--no-pivot"][..]] {
            let mut b = t.bundle();
            // As uid 1000: mapping root in a new user namespace needs nothing more (mapping host uid 0
            // would need CAP_SETFCAP).
            b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
            b.sh("unshare -mrpf mount -t proc none /proc && echo MOUNTED-A-FRESH-PROC");
            let c = t.create_with(&b, flags);
            c.start();
            c.wait();
            let (out, err) = (c.stdout(), c.stderr());
            assert!(
                !out.contains("MOUNTED-A-FRESH-PROC"),
                "with {flags:?} the container mounted a fresh /proc (its masked paths bypassed); stderr: {err:?}"
            );
            // The attempt got as far as the mount (unshare worked): the refusal is the kernel's.
            assert!(err.starts_with("mount:"), "with {flags:?}: not refused by mount(2): {err:?}");
        }
    });
}
