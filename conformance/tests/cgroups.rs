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

/// The freezer file of `cgroups_path` and the value meaning "frozen" (v1 freezer.state or v2
/// cgroup.freeze).
fn freezer(cgroups_path: &str) -> (PathBuf, &'static str, &'static str) {
    let file = cgroupfs::file("freezer", cgroups_path, "freezer.state", "cgroup.freeze");
    if cgroupfs::unified() { (file, "1", "0") } else { (file, "FROZEN", "THAWED") }
}

/// Waits until the processes of `cgroups_path` are frozen (v1 freezer.state FROZEN, v2 cgroup.events
/// "frozen 1"): freezing is asynchronous (FREEZING until every task stopped).
fn wait_frozen(cgroups_path: &str) {
    let (file, want) = if cgroupfs::unified() {
        (cgroupfs::file("freezer", cgroups_path, "", "cgroup.events"), "frozen 1")
    } else {
        (cgroupfs::file("freezer", cgroups_path, "freezer.state", ""), "FROZEN")
    };
    let began = std::time::Instant::now();
    loop {
        let now = std::fs::read_to_string(&file).unwrap_or_default();
        if now.lines().any(|l| l.trim() == want) {
            return;
        }
        assert!(
            began.elapsed() < std::time::Duration::from_secs(60),
            "{} never showed {want:?}: {now:?}",
            file.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Runs `cmd` (a runtime invocation) for at most 20 s; past that calls `unstick` (to let the runtime
/// go on), waits for it and fails. Returns its status, stdout and stderr.
fn bounded(t: &Test, cmd: Cmd<'_>, unstick: impl FnOnce()) -> (std::process::ExitStatus, String) {
    let (mut command, text) = cmd.command();
    let err = t.path("bounded.err");
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).or_fail("create bounded.err"));
    let mut child = command.spawn().or_fail(format!("spawn `{text}`"));
    let began = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().or_fail(format!("wait for `{text}`")) {
            return (status, std::fs::read_to_string(&err).unwrap_or_default());
        }
        if began.elapsed() > std::time::Duration::from_secs(20) {
            unstick();
            let status = child.wait().or_fail(format!("wait for `{text}`"));
            panic!(
                "`{text}` had not returned after 20 s (then, unstuck, it exited with {status}; stderr: {:?})",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn delete_force_thaws_a_cgroup_frozen_outside_the_runtime() {
    // issue 16 item 18 (a guard: main passes it already).
    // A container whose cgroup something else froze (cgroup v1: SIGKILL is only
    // delivered once thawed): `delete --force` thaws and kills it, and removes everything (runc: kill
    // with SIGKILL thaws a paused container's cgroup, libcontainer/container_linux.go Signal). A process
    // that cannot die at all (D state) is not reproducible here.
    spec_test("delete_force_thaws_a_cgroup_frozen_outside_the_runtime", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "60"]);
        let path = cgroups_path(&b);
        let c = t.start(&b);
        let (file, frozen, thawed) = freezer(&path);
        std::fs::write(&file, frozen).or_fail(format!("freeze {}", file.display()));
        wait_frozen(&path);
        let thaw = || {
            if let Err(e) = std::fs::write(&file, thawed) {
                eprintln!("note: thaw {}: {e}", file.display());
            }
        };
        let (status, stderr) = bounded(t, c.cmd(&["delete", "--force"]), thaw);
        assert!(status.success(), "delete --force failed: {status}; stderr: {stderr:?}");
        assert_eq!(c.wait(), Exit::Signal(9));
        t.cmd(&["state", &c.id]).run().failed();
        let left = strata_conformance::traces::cgroup_dirs(&path);
        assert!(left.is_empty(), "delete --force left {left:?}");
    });
}

#[test]
fn run_in_a_frozen_cgroup_fails_at_once() {
    // issue 16 item 30. runc refuses a cgroup that is already frozen (libcontainer/factory_linux.go:
    // "container's cgroup unexpectedly frozen") instead of starting a container that can never run;
    // nothing is left behind.
    spec_test("run_in_a_frozen_cgroup_fails_at_once", |t| {
        let mut b = t.bundle();
        b.args(&["true"]);
        b.write();
        let path = cgroups_path(&b);
        let (file, frozen, thawed) = freezer(&path);
        let dir = file.parent().or_fail("freezer dir").to_path_buf();
        std::fs::create_dir_all(&dir).or_fail(format!("create {}", dir.display()));
        let owned = dir.clone();
        t.on_cleanup(move || {
            let _gone_already = std::fs::remove_dir(&owned);
        });
        std::fs::write(&file, frozen).or_fail(format!("freeze {}", file.display()));
        let thaw = || {
            if let Err(e) = std::fs::write(&file, thawed) {
                eprintln!("note: thaw {}: {e}", file.display());
            }
        };
        let id = t.new_id();
        let (status, stderr) = bounded(t, t.cmd(&["run", "-d", "--bundle"]).arg(&b.dir).arg(&id), thaw);
        assert!(!status.success(), "run -d in a frozen cgroup succeeded; stderr: {stderr:?}");
        assert!(stderr.contains("frozen"), "the error does not say the cgroup is frozen: {stderr:?}");
        t.cmd(&["state", &id]).run().failed();
        let procs = strata_conformance::traces::processes_in(&path);
        assert!(procs.is_empty(), "processes left in {path}: {procs:?}");
        let left: Vec<PathBuf> =
            strata_conformance::traces::cgroup_dirs(&path).into_iter().filter(|d| *d != dir).collect();
        assert!(left.is_empty(), "the runtime left cgroup directories {left:?}");
    });
}

#[test]
fn delete_force_gives_up_when_the_processes_cannot_die() {
    // issue 16 item 18. Processes that cannot die -- here the parent of the container's cgroup is frozen
    // by someone else, so thawing the container's own cgroup does not deliver SIGKILL: `delete --force`
    // gives up with an error saying what is still running instead of retrying for minutes (runc
    // delete.go killContainer: 100 x 100 ms, then "container init still running"). The container stays
    // listed, and goes once the parent is thawed.
    spec_test("delete_force_gives_up_when_the_processes_cannot_die", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "60"]);
        let parent = format!("{}-parent", cgroups_path(&b));
        let path = format!("{parent}/ctr");
        b.set("/linux/cgroupsPath", json!(path));
        let c = t.start(&b);
        let (file, frozen, thawed) = freezer(&parent);
        let thaw = {
            let file = file.clone();
            move || {
                if let Err(e) = std::fs::write(&file, thawed) {
                    eprintln!("note: thaw {}: {e}", file.display());
                }
            }
        };
        // Thaw the parent and remove it at the end, whatever happened (after the container's delete; a
        // runtime that failed to delete leaves `ctr`, removed here too, and said so).
        let (file_at_end, parent_at_end, path_at_end) = (file.clone(), parent.clone(), path.clone());
        t.on_cleanup(move || {
            let _thawed_already = std::fs::write(&file_at_end, thawed);
            let dirs = [path_at_end, parent_at_end];
            for dir in dirs.iter().flat_map(|d| strata_conformance::traces::cgroup_dirs(d)) {
                if let Err(e) = std::fs::remove_dir(&dir) {
                    eprintln!("note: remove {}: {e}", dir.display());
                }
            }
        });
        std::fs::write(&file, frozen).or_fail(format!("freeze {}", file.display()));
        wait_frozen(&path);
        let (status, stderr) = bounded(t, c.cmd(&["delete", "--force"]), thaw.clone());
        thaw();
        if cgroupfs::unified() {
            // The cgroup v2 freezer lets a fatal signal through ("processes in the frozen cgroup can
            // be killed by a fatal signal", cgroup-v2.rst): there SIGKILL ends the init, and delete
            // --force succeeds and leaves nothing, as with runc.
            assert!(status.success(), "delete --force of a container in a frozen v2 cgroup failed: {stderr:?}");
            assert_eq!(c.wait(), Exit::Signal(9), "the init killed through the frozen v2 cgroup");
            t.cmd(&["state", &c.id]).run().failed();
            return;
        }
        assert!(!status.success(), "delete --force succeeded although the init could not die; stderr: {stderr:?}");
        assert!(stderr.contains("running"), "the error does not say what is still running: {stderr:?}");
        assert_eq!(c.wait(), Exit::Signal(9), "the init once its parent cgroup was thawed");
        c.cmd(&["delete", "--force"]).run().ok();
        t.cmd(&["state", &c.id]).run().failed();
    });
}
