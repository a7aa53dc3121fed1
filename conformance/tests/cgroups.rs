//! config-linux.md control groups: cgroupsPath placement, cgroup namespace view, resources.
//! Host-side paths follow the layout: v1 (one hierarchy per controller) or pure v2.

use std::path::PathBuf;

use strata_conformance::cgroupfs;

use strata_conformance::*;

fn cgroups_path(b: &Bundle) -> String {
    b.spec["linux"]["cgroupsPath"].as_str().or_fail("cgroupsPath").to_string()
}

/// The line of /proc/self/cgroup (as the probe reports it) for `controller`, or the unified line.
fn line_for<'a>(report: &'a Value, controller: &str) -> Option<&'a Value> {
    report.as_array()?.iter().find(|l| {
        if cgroupfs::unified() {
            l["hierarchy"] == 0 || l["controllers"].as_array().is_some_and(|c| c.is_empty())
        } else {
            l["controllers"].as_array().is_some_and(|c| c.iter().any(|x| x == controller))
        }
    })
}

fn read_trim(p: &PathBuf) -> String {
    std::fs::read_to_string(p).or_fail(format!("read {}", p.display())).trim().to_string()
}

#[test]
fn cgroups_path_places_the_process() {
    // config-linux.md cgroupsPath: "In the case of an absolute path (starting with /), the runtime MUST
    // take the path to be relative to the cgroups mount point."
    spec_test("cgroups_path_places_the_process", |t| {
        let mut b = t.bundle();
        b.without_namespace("cgroup");
        b.probe(&["cgroup"]);
        let v = t.run_probe(&b);
        let want = cgroups_path(&b);
        for controller in ["memory", "pids", "cpu", "devices"] {
            let line = line_for(&v, controller).or_fail(format!("{controller} line in {v}"));
            assert_eq!(line["path"], json!(want), "{line}");
        }
    });
}

#[test]
fn cgroups_path_created_on_the_host() {
    // config-linux.md cgroupsPath: "The cgroups will be created if they don't exist."
    spec_test("cgroups_path_created_on_the_host", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "60"]);
        let c = t.start(&b);
        let procs = read_trim(&cgroupfs::file("pids", &cgroups_path(&b), "cgroup.procs", "cgroup.procs"));
        assert!(procs.lines().any(|p| p == c.pid.to_string()), "pid {} not in {procs:?}", c.pid);
        c.kill("KILL").ok();
    });
}

#[test]
fn cgroup_namespace_hides_the_path() {
    // config-linux.md: "cgroup the container will have an isolated view of the cgroup hierarchy."
    spec_test("cgroup_namespace_hides_the_path", |t| {
        let mut b = t.bundle();
        b.push("/linux/namespaces", json!({"type": "cgroup"}));
        b.probe(&["cgroup"]);
        let v = t.run_probe(&b);
        assert_eq!(line_for(&v, "memory").or_fail(format!("memory line in {v}"))["path"], "/", "{v}");
    });
}

#[test]
fn resources_memory_limit_applied() {
    // config-linux.md memory: "limit (int64, OPTIONAL) - sets limit of memory usage in bytes".
    spec_test("resources_memory_limit_applied", |t| {
        let mut b = t.bundle();
        b.set("/linux/resources/memory", json!({"limit": 67108864}));
        b.args(&["sleep", "60"]);
        let c = t.start(&b);
        assert_eq!(
            read_trim(&cgroupfs::file("memory", &cgroups_path(&b), "memory.limit_in_bytes", "memory.max")),
            "67108864"
        );
        c.kill("KILL").ok();
    });
}

#[test]
fn resources_pids_limit_applied() {
    // config-linux.md pids: "limit (int64, REQUIRED) - specifies the maximum number of tasks in the cgroup".
    spec_test("resources_pids_limit_applied", |t| {
        let mut b = t.bundle();
        b.set("/linux/resources/pids", json!({"limit": 42}));
        b.args(&["sleep", "60"]);
        let c = t.start(&b);
        assert_eq!(read_trim(&cgroupfs::file("pids", &cgroups_path(&b), "pids.max", "pids.max")), "42");
        c.kill("KILL").ok();
    });
}

#[test]
fn resources_pids_limit_enforced() {
    // config-linux.md pids limit, as the container sees it: forks beyond the limit fail.
    spec_test("resources_pids_limit_enforced", |t| {
        let mut b = t.bundle();
        // The shell is the only task allowed: running the probe needs a fork, which must fail.
        b.set("/linux/resources/pids", json!({"limit": 1}));
        b.sh("/bin/strata-probe pid; echo end");
        let c = t.start(&b);
        let exit = c.wait();
        assert!(!c.stdout().contains("\"pid\""), "a second task ran under a pids limit of 1: {:?}", c.stdout());
        assert_ne!(exit, Exit::Code(0), "stderr: {:?}", c.stderr());
    });
}

#[test]
fn resources_cpu_shares_applied() {
    // config-linux.md cpu: "shares (uint64, OPTIONAL) - specifies a relative share of CPU time available to
    // the tasks in a cgroup".
    spec_test("resources_cpu_shares_applied", |t| {
        let mut b = t.bundle();
        b.set("/linux/resources/cpu", json!({"shares": 512}));
        b.args(&["sleep", "60"]);
        let c = t.start(&b);
        let want = if cgroupfs::unified() { cgroupfs::shares_to_weight(512).to_string() } else { "512".into() };
        assert_eq!(read_trim(&cgroupfs::file("cpu", &cgroups_path(&b), "cpu.shares", "cpu.weight")), want);
        c.kill("KILL").ok();
    });
}

#[test]
fn cgroups_path_reused_after_delete() {
    // config-linux.md cgroupsPath: "If the value is specified, the runtime MUST consistently attach to the
    // same place in the cgroups hierarchy given the same value of cgroupsPath."
    spec_test("cgroups_path_reused_after_delete", |t| {
        let mut b = t.bundle();
        b.without_namespace("cgroup");
        b.probe(&["cgroup"]);
        let first = t.run_probe(&b);
        let mut b2 = t.bundle();
        b2.set("/linux/cgroupsPath", b.spec["linux"]["cgroupsPath"].clone());
        b2.without_namespace("cgroup");
        b2.probe(&["cgroup"]);
        assert_eq!(t.run_probe(&b2), first);
    });
}
