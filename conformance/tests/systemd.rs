//! The systemd cgroup driver (`--systemd-cgroup`, cgroupsPath "slice:prefix:name"): the container is a
//! transient scope that systemd owns, with its limits both in the unit and in the cgroup files.
//!
//! These tests need systemd as the machine's init: `hack/test-systemd` runs them (`--ignored`) in
//! guests booted with systemd, on cgroup v2 and v1, against strata and runc. Only the last test,
//! an unreachable systemd, runs everywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_conformance::cgroupfs;

use strata_conformance::*;

/// The slice every test's unit goes into (a nested one: its parent is made by systemd too).
const SLICE: &str = "stratatest-conformance.slice";
const SLICE_PATH: &str = "stratatest.slice/stratatest-conformance.slice";

/// A container under the systemd driver: its unit, and its cgroup relative to the hierarchy's root.
struct Unit {
    name: String,
    cgroup: String,
}

/// A bundle whose cgroupsPath is in the systemd form, with a unit name unique to this run.
fn systemd_bundle(t: &Test) -> (Bundle, Unit) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let mut b = t.bundle();
    b.set("/linux/cgroupsPath", json!(format!("{SLICE}:sdtest:{name}")));
    let unit = format!("sdtest-{name}.scope");
    let cgroup = format!("/{SLICE_PATH}/{unit}");
    (b, Unit { name: unit, cgroup })
}

fn create<'t>(t: &'t Test, b: &Bundle) -> Container<'t> {
    t.create_via(b, |c| c.global(["--systemd-cgroup"]))
}

/// `systemctl show UNIT -p ...` as a map.
fn show(unit: &str, props: &[&str]) -> BTreeMap<String, String> {
    let mut cmd = Command::new("systemctl");
    cmd.args(["show", "--no-pager", unit]);
    for p in props {
        cmd.arg(format!("--property={p}"));
    }
    let out = cmd.output().or_fail("run systemctl show");
    assert!(out.status.success(), "systemctl show {unit}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn prop(unit: &str, name: &str) -> String {
    show(unit, &[name]).remove(name).unwrap_or_default()
}

fn read_trim(p: &PathBuf) -> String {
    std::fs::read_to_string(p).or_fail(format!("read {}", p.display())).trim().to_string()
}

/// The container's cgroup file, in the hierarchy of `controller` on v1.
fn file(u: &Unit, controller: &str, v1: &str, v2: &str) -> PathBuf {
    cgroupfs::file(controller, &u.cgroup, v1, v2)
}

#[test]
#[ignore = "needs systemd as init: run by hack/test-systemd in a guest"]
fn systemd_init_is_placed_in_a_transient_scope() {
    spec_test("systemd_init_is_placed_in_a_transient_scope", |t| {
        let (mut b, u) = systemd_bundle(t);
        b.args(&["sleep", "60"]);
        let c = create(t, &b);
        let p = show(&u.name, &["Slice", "Delegate", "ControlGroup", "ActiveState", "LoadState"]);
        assert_eq!(p["LoadState"], "loaded", "{p:?}");
        assert_eq!(p["ActiveState"], "active", "{p:?}");
        assert_eq!(p["Slice"], SLICE, "{p:?}");
        assert_eq!(p["Delegate"], "yes", "{p:?}");
        assert_eq!(p["ControlGroup"], u.cgroup, "{p:?}");
        // The init is in the unit's cgroup in every hierarchy systemd manages.
        let own = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid)).or_fail("read the init's cgroup");
        let wanted = if cgroupfs::unified() { "0::" } else { ":memory:" };
        let line = own.lines().find(|l| l.contains(wanted)).or_fail(format!("{wanted} line in {own}"));
        assert!(line.ends_with(&u.cgroup), "init's {line:?}, unit's {}", u.cgroup);
        c.start();
        c.kill("KILL").ok();
    });
}

#[test]
#[ignore = "needs systemd as init: run by hack/test-systemd in a guest"]
fn systemd_container_sees_its_scope_in_proc_self_cgroup() {
    spec_test("systemd_container_sees_its_scope_in_proc_self_cgroup", |t| {
        let (mut b, u) = systemd_bundle(t);
        b.without_namespace("cgroup");
        b.probe(&["cgroup"]);
        b.write();
        let c = create(t, &b);
        c.start();
        c.wait_success();
        let v = c.json();
        let lines = v.as_array().or_fail(format!("cgroup report {v}"));
        let line = lines
            .iter()
            .find(|l| {
                let controllers = l["controllers"].as_array();
                if cgroupfs::unified() {
                    controllers.is_some_and(|c| c.is_empty())
                } else {
                    controllers.is_some_and(|c| c.iter().any(|x| x == "pids"))
                }
            })
            .or_fail(format!("the line of the pids or unified hierarchy in {v}"));
        assert_eq!(line["path"], json!(u.cgroup), "{v}");
    });
}

#[test]
#[ignore = "needs systemd as init: run by hack/test-systemd in a guest"]
fn systemd_resources_are_unit_properties_and_cgroup_files() {
    spec_test("systemd_resources_are_unit_properties_and_cgroup_files", |t| {
        let (mut b, u) = systemd_bundle(t);
        b.set(
            "/linux/resources",
            json!({
                "memory": {"limit": 134217728},
                "pids": {"limit": 42},
                "cpu": {"shares": 512, "quota": 25000, "period": 100000}
            }),
        );
        b.args(&["sleep", "60"]);
        let c = create(t, &b);
        let v2 = cgroupfs::unified();
        // Memory: the same limit in systemd and in the kernel.
        let mem_prop = if v2 { "MemoryMax" } else { "MemoryLimit" };
        assert_eq!(prop(&u.name, mem_prop), "134217728");
        assert_eq!(read_trim(&file(&u, "memory", "memory.limit_in_bytes", "memory.max")), "134217728");
        // Tasks.
        assert_eq!(prop(&u.name, "TasksMax"), "42");
        assert_eq!(read_trim(&file(&u, "pids", "pids.max", "pids.max")), "42");
        // CPU quota: 25 ms per 100 ms.
        assert_eq!(prop(&u.name, "CPUQuotaPerSecUSec"), "250ms");
        let quota = read_trim(&file(&u, "cpu", "cpu.cfs_quota_us", "cpu.max"));
        assert_eq!(quota, if v2 { "25000 100000" } else { "25000" });
        // CPU weight: whatever conversion the runtime uses, systemd and the kernel agree.
        if v2 {
            let weight = prop(&u.name, "CPUWeight");
            assert_eq!(read_trim(&file(&u, "cpu", "", "cpu.weight")), weight);
        } else {
            assert_eq!(prop(&u.name, "CPUShares"), "512");
            assert_eq!(read_trim(&file(&u, "cpu", "cpu.shares", "")), "512");
        }
        c.kill("KILL").ok();
    });
}

#[test]
#[ignore = "needs systemd as init: run by hack/test-systemd in a guest"]
fn systemd_block_io_weight_is_a_unit_property() {
    spec_test("systemd_block_io_weight_is_a_unit_property", |t| {
        let (mut b, u) = systemd_bundle(t);
        b.set("/linux/resources/blockIO", json!({"weight": 500}));
        b.args(&["sleep", "60"]);
        let v1_file = ["blkio.weight", "blkio.bfq.weight"]
            .into_iter()
            .find(|f| std::path::Path::new("/sys/fs/cgroup/blkio").join(f).exists());
        if !cgroupfs::unified() && v1_file.is_none() {
            // A v1 kernel without CFQ or BFQ has no weight file: the weight cannot be applied.
            b.write();
            let out = t.cmd(&["create", "--bundle"]).global(["--systemd-cgroup"]).arg(&b.dir).arg(t.new_id()).run();
            out.failed();
            assert!(out.stderr.contains("blkio"), "the error should name the blkio file: {}", out.stderr);
            return;
        }
        let c = create(t, &b);
        // v2: io.weight's scale (1..10000), as the cgroup file conversion gives it.
        let (name, want) = if cgroupfs::unified() { ("IOWeight", "4950") } else { ("BlockIOWeight", "500") };
        if t.runtime().kind == RuntimeKind::Runc {
            // runc 1.1.5 writes the weight to the files only (conformance/README.md).
            eprintln!("runc: {name} of {} is {:?}", u.name, prop(&u.name, name));
        } else {
            assert_eq!(prop(&u.name, name), want, "{name} of {}", u.name);
        }
        c.kill("KILL").ok();
    });
}

#[test]
#[ignore = "needs systemd as init: run by hack/test-systemd in a guest"]
fn systemd_update_changes_the_unit_and_the_files() {
    spec_test("systemd_update_changes_the_unit_and_the_files", |t| {
        let (mut b, u) = systemd_bundle(t);
        b.set("/linux/resources", json!({"memory": {"limit": 134217728}, "pids": {"limit": 42}}));
        b.args(&["sleep", "60"]);
        let c = create(t, &b);
        c.start();
        c.cmd(&["update", "--memory", "268435456", "--pids-limit", "50"]).global(["--systemd-cgroup"]).run().ok();
        let mem_prop = if cgroupfs::unified() { "MemoryMax" } else { "MemoryLimit" };
        assert_eq!(prop(&u.name, mem_prop), "268435456");
        assert_eq!(read_trim(&file(&u, "memory", "memory.limit_in_bytes", "memory.max")), "268435456");
        assert_eq!(prop(&u.name, "TasksMax"), "50");
        assert_eq!(read_trim(&file(&u, "pids", "pids.max", "pids.max")), "50");
        c.kill("KILL").ok();
    });
}

#[test]
#[ignore = "needs systemd as init: run by hack/test-systemd in a guest"]
fn systemd_pause_and_resume_freeze_the_scope() {
    spec_test("systemd_pause_and_resume_freeze_the_scope", |t| {
        let (mut b, u) = systemd_bundle(t);
        b.args(&["sleep", "60"]);
        let c = create(t, &b);
        c.start();
        let frozen = || read_trim(&file(&u, "freezer", "freezer.state", "cgroup.freeze"));
        c.cmd(&["pause"]).global(["--systemd-cgroup"]).run().ok();
        assert_eq!(c.status(), "paused");
        assert_eq!(frozen(), if cgroupfs::unified() { "1" } else { "FROZEN" });
        c.cmd(&["resume"]).global(["--systemd-cgroup"]).run().ok();
        assert_eq!(c.status(), "running");
        assert_eq!(frozen(), if cgroupfs::unified() { "0" } else { "THAWED" });
        let ps = c.cmd(&["ps", "--format", "json"]).run();
        ps.ok();
        assert!(ps.json().as_array().is_some_and(|p| p.contains(&json!(c.pid))), "ps: {}", ps.stdout);
        c.kill("KILL").ok();
    });
}

#[test]
#[ignore = "needs systemd as init: run by hack/test-systemd in a guest"]
fn systemd_delete_stops_the_unit_and_removes_the_cgroup() {
    spec_test("systemd_delete_stops_the_unit_and_removes_the_cgroup", |t| {
        let (mut b, u) = systemd_bundle(t);
        b.args(&["sleep", "60"]);
        let c = create(t, &b);
        c.start();
        t.cmd(&["kill", "--all"]).global(["--systemd-cgroup"]).arg(&c.id).arg("KILL").run().ok();
        c.wait();
        c.cmd(&["delete"]).global(["--systemd-cgroup"]).run().ok();
        assert_eq!(prop(&u.name, "LoadState"), "not-found", "{} after delete", u.name);
        let dir = cgroupfs::dir("memory", &u.cgroup);
        assert!(!dir.exists(), "{} is left after delete", dir.display());
    });
}

#[test]
#[ignore = "needs systemd as init: run by hack/test-systemd in a guest"]
fn systemd_create_killed_mid_way_then_delete_force_leaves_nothing() {
    spec_test("systemd_create_killed_mid_way_then_delete_force_leaves_nothing", |t| {
        // Two units: one for a traced create, one for the crashed create.
        let (mut first, _) = systemd_bundle(t);
        let (mut b, u) = systemd_bundle(t);
        for bundle in [&mut first, &mut b] {
            bundle.args(&["sleep", "60"]);
            bundle.write();
        }
        // The runtime is killed (by strace) when it commits the state file: the init is ready and
        // waits in its unit, and no state says so. Which rename that is, a traced create tells.
        let trace = t.path("trace");
        let traced = t.new_id();
        let renames = "trace=rename,renameat,renameat2";
        t.cmd(&["create", "--bundle"])
            .global(["--systemd-cgroup"])
            .arg(&first.dir)
            .arg(&traced)
            // -D: the traced init outlives the runtime; create returns when the runtime does.
            .via(&["strace", "-D", "-f", "-qq", "-e", renames, "-o", trace.to_str().or_fail("trace path")])
            .run()
            .ok();
        t.cmd(&["delete", "--force"]).arg(&traced).run().ok();
        let text = std::fs::read_to_string(&trace).or_fail("read the trace");
        let calls: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, c)| c.trim_start()))
            .filter(|c| c.starts_with("rename"))
            .collect();
        let commit =
            calls.iter().rposition(|c| c.contains("state.json\"")).or_fail(format!("state.json rename in {text}"));
        let name = calls[commit].split('(').next().or_fail("call name");
        let nth = calls[..=commit].iter().filter(|c| c.starts_with(&format!("{name}("))).count();
        let id = t.new_id();
        let inject = format!("inject={name}:signal=SIGKILL:when={nth}");
        let out = t
            .cmd(&["create", "--bundle"])
            .global(["--systemd-cgroup"])
            .arg(&b.dir)
            .arg(&id)
            .via(&["strace", "-o", "/dev/null", "-qq", "-D", "-f", "-e", &inject])
            .run();
        out.failed();
        let mid = show(&u.name, &["ActiveState"]);
        if t.runtime().kind == RuntimeKind::Strata {
            // strata's init is ready and waits on the exec fifo: the unit holds it.
            assert_eq!(mid["ActiveState"], "active", "the unit should hold the waiting init: {mid:?}");
        } else {
            // runc 1.1.5's init does not outlive a runc killed at this point.
            eprintln!("{}: the unit mid-create: {mid:?}", t.runtime().kind);
        }
        t.cmd(&["delete", "--force"]).global(["--systemd-cgroup"]).arg(&id).run().ok();
        assert_eq!(prop(&u.name, "LoadState"), "not-found", "{} after delete --force", u.name);
        let dir = cgroupfs::dir("memory", &u.cgroup);
        assert!(!dir.exists(), "{} is left after delete --force", dir.display());
        t.cmd(&["state"]).arg(&id).run().failed();
    });
}

#[test]
fn systemd_unreachable_is_a_clear_error_and_leaves_nothing() {
    spec_test("systemd_unreachable_is_a_clear_error_and_leaves_nothing", |t| {
        // A mount namespace with an empty /run: neither systemd's socket nor the system bus exists.
        let (b, _u) = systemd_bundle(t);
        b.write();
        let id = t.new_id();
        let out = t
            .cmd(&["create", "--bundle"])
            .global(["--systemd-cgroup"])
            .arg(&b.dir)
            .arg(&id)
            .via(&["unshare", "-m", "sh", "-c", "mount -t tmpfs none /run && exec \"$0\" \"$@\""])
            .run();
        out.failed();
        if t.runtime().kind == RuntimeKind::Strata {
            for needle in ["unix:path=/run/systemd/private", "unix:path=/run/dbus/system_bus_socket"] {
                assert!(out.stderr.contains(needle), "the error should name {needle}: {}", out.stderr);
            }
        }
        let state = t.cmd(&["state"]).arg(&id).run();
        assert!(!state.success(), "a failed create left container {id}: {}", state.stdout);
    });
}
