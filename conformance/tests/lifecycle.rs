//! runtime.md: lifecycle, state and the create/start/kill/delete operations.

use std::path::Path;

use strata_conformance::probe::host_namespaces;
use strata_conformance::*;

/// A bundle whose process marks that it ran by creating `ran` in a host directory bind-mounted at /out.
fn marker_bundle(t: &Test) -> (Bundle, std::path::PathBuf) {
    let mut b = t.bundle();
    let out = b.host_dir("out");
    b.mount(json!({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]}));
    b.sh("touch /out/ran");
    (b, out.join("ran"))
}

#[test]
fn create_does_not_run_user_program() {
    // runtime.md lifecycle step 2: "While the resources requested in the config.json MUST be created,
    // the user-specified program (from process) MUST NOT be run at this time."
    spec_test("create_does_not_run_user_program", |t| {
        let (b, ran) = marker_bundle(t);
        let c = t.create(&b);
        assert!(!ran.exists(), "the user program ran during create");
        assert_eq!(c.status(), "created");
        c.start();
        c.wait_success();
        assert!(ran.exists(), "the user program did not run after start");
    });
}

#[test]
fn create_applies_namespaces_and_mounts_before_start() {
    // runtime.md create: "All of the properties configured in config.json except for process MUST be
    // applied."
    spec_test("create_applies_namespaces_and_mounts_before_start", |t| {
        let b = t.bundle();
        let c = t.create(&b);
        let host = host_namespaces();
        for ns in ["mnt", "pid", "net", "ipc", "uts"] {
            let link = std::fs::read_link(format!("/proc/{}/ns/{ns}", c.pid)).or_fail("read container ns");
            assert_ne!(link.to_string_lossy(), format!("{ns}:[{}]", host[ns]), "{ns} namespace not created by create");
        }
        let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", c.pid)).or_fail("read mountinfo");
        assert!(
            mountinfo.lines().any(|l| l.split(' ').nth(4) == Some("/proc") && l.contains(" - proc ")),
            "{mountinfo}"
        );
        assert!(mountinfo.lines().any(|l| l.split(' ').nth(4) == Some("/dev/pts")), "{mountinfo}");
    });
}

#[test]
fn config_changes_after_create_have_no_effect() {
    // runtime.md: "Any changes made to the config.json file after this operation will not have an effect
    // on the container." (lifecycle step 2: "Any updates to config.json after this step MUST NOT affect
    // the container.")
    spec_test("config_changes_after_create_have_no_effect", |t| {
        let mut b = t.bundle();
        b.sh("echo original");
        let c = t.create(&b);
        b.sh("echo changed");
        b.set("/hostname", json!("changed"));
        b.write();
        c.start();
        c.wait_success();
        assert_eq!(c.stdout().trim(), "original");
    });
}

#[test]
fn create_with_duplicate_id_fails() {
    // runtime.md create: "If the ID provided is not unique across all containers within the scope of the
    // runtime, or is not valid in any other way, the implementation MUST generate an error and a new
    // container MUST NOT be created."
    spec_test("create_with_duplicate_id_fails", |t| {
        let b1 = t.bundle();
        let c = t.create(&b1);
        let b2 = t.bundle();
        b2.write();
        t.cmd(&["create", "--bundle"]).arg(&b2.dir).arg(&c.id).run().failed();
        let state = c.state();
        assert_eq!(state["bundle"], json!(b1.dir), "the first container was replaced");
        assert_eq!(state["pid"], json!(c.pid));
    });
}

#[test]
fn create_with_invalid_id_fails() {
    // runtime.md create: "If the ID provided is not unique ... or is not valid in any other way, the
    // implementation MUST generate an error and a new container MUST NOT be created."
    spec_test("create_with_invalid_id_fails", |t| {
        let b = t.bundle();
        b.write();
        for bad in ["../escape", "a/b", ".."] {
            t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(bad).run().failed();
            t.cmd(&["state", bad]).run().failed();
        }
        assert!(!t.root().join("..").join("escape").exists(), "an invalid id created state outside the root");
    });
}

#[test]
fn create_without_config_fails() {
    // runtime.md create: "This operation MUST generate an error if it is not provided a path to the
    // bundle and the container ID to associate with the container."
    spec_test("create_without_config_fails", |t| {
        let b = t.bundle();
        let id = t.new_id();
        // No config.json written.
        t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(&id).run().failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn create_without_id_fails() {
    // runtime.md create: "This operation MUST generate an error if it is not provided a path to the
    // bundle and the container ID to associate with the container."
    spec_test("create_without_id_fails", |t| {
        let b = t.bundle();
        b.write();
        t.cmd(&["create", "--bundle"]).arg(&b.dir).run().failed();
        let list = t.cmd(&["list", "-q"]).run();
        assert_eq!(list.stdout.trim(), "", "a container was created without an id");
    });
}

#[test]
fn create_with_missing_root_path_fails() {
    // config.md root.path: "A directory MUST exist at the path declared by the field." (runtime.md: "If
    // the runtime cannot apply a property ... it MUST generate an error and a new container MUST NOT be
    // created.")
    spec_test("create_with_missing_root_path_fails", |t| {
        let mut b = t.bundle();
        b.set("/root/path", json!("no-such-rootfs"));
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn create_error_leaves_no_container() {
    // runtime.md errors: "Unless otherwise stated, generating an error MUST leave the state of the
    // environment as if the operation were never attempted."
    spec_test("create_error_leaves_no_container", |t| {
        let mut b = t.bundle();
        b.mount(json!({"destination": "/bad", "type": "no-such-filesystem", "source": "none"}));
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
        let list = t.cmd(&["list", "-q"]).run();
        assert!(!list.stdout.contains(&id), "failed container still listed: {}", list.stdout);
        let cg = b.spec["linux"]["cgroupsPath"].as_str().or_fail("cgroupsPath").to_string();
        let pids = strata_conformance::cgroupfs::dir("pids", &cg);
        assert!(!pids.exists(), "failed create left its cgroup {}", pids.display());
    });
}

#[test]
fn state_of_created_container() {
    // runtime.md state: ociVersion, id, status ("created": "the runtime has finished the create
    // operation"), pid ("REQUIRED when status is created or running on Linux"), bundle ("the absolute
    // path to the container's bundle directory").
    spec_test("state_of_created_container", |t| {
        let b = t.bundle();
        let c = t.create(&b);
        let s = c.state();
        assert!(s["ociVersion"].as_str().is_some_and(|v| !v.is_empty()), "{s}");
        assert_eq!(s["id"], json!(c.id));
        assert_eq!(s["status"], "created");
        assert!(s["pid"].as_i64().is_some_and(|p| p > 0), "{s}");
        assert_eq!(s["bundle"], json!(b.dir));
        assert!(Path::new(s["bundle"].as_str().unwrap_or("")).is_absolute());
    });
}

#[test]
fn state_pid_is_the_container_process() {
    // runtime.md state: "pid ... is the ID of the container process." (as seen by the runtime)
    spec_test("state_pid_is_the_container_process", |t| {
        let mut b = t.bundle();
        b.probe(&["wait-signal"]);
        let c = t.start(&b);
        c.wait_for_output("ready");
        let exe = std::fs::read_link(format!("/proc/{}/exe", c.pid)).or_fail("read exe of state pid");
        assert!(exe.to_string_lossy().ends_with("/bin/strata-probe"), "state pid runs {}", exe.display());
        c.kill("KILL").ok();
    });
}

#[test]
fn state_running_after_start() {
    // runtime.md state: "running: the container process has executed the user-specified program but has
    // not exited".
    spec_test("state_running_after_start", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "60"]);
        let c = t.start(&b);
        let s = c.state();
        assert_eq!(s["status"], "running");
        assert_eq!(s["pid"], json!(c.pid));
        c.kill("KILL").ok();
    });
}

#[test]
fn state_stopped_after_exit() {
    // runtime.md state: "stopped: the container process has exited".
    spec_test("state_stopped_after_exit", |t| {
        let mut b = t.bundle();
        b.args(&["true"]);
        let c = t.start(&b);
        c.wait_success();
        assert_eq!(c.status(), "stopped");
    });
}

#[test]
fn state_of_unknown_container_fails() {
    // runtime.md query state: "Attempting to query a container that does not exist MUST generate an
    // error."
    spec_test("state_of_unknown_container_fails", |t| {
        t.cmd(&["state", "no-such-container"]).run().failed();
    });
}

#[test]
fn state_without_id_fails() {
    // runtime.md query state: "This operation MUST generate an error if it is not provided the ID of a
    // container."
    spec_test("state_without_id_fails", |t| {
        t.cmd(&["state"]).run().failed();
    });
}

#[test]
fn state_includes_annotations() {
    // runtime.md state: "annotations (map, OPTIONAL) contains the list of annotations associated with
    // the container."
    spec_test("state_includes_annotations", |t| {
        let mut b = t.bundle();
        b.set("/annotations", json!({"org.example.key": "value", "com.example.other": "x y"}));
        let c = t.create(&b);
        let s = c.state();
        assert_eq!(s["annotations"], json!({"org.example.key": "value", "com.example.other": "x y"}), "{s}");
    });
}

#[test]
fn start_runs_user_program() {
    // runtime.md start: "This operation MUST run the user-specified program as specified by process."
    spec_test("start_runs_user_program", |t| {
        let mut b = t.bundle();
        b.args(&["echo", "hello from the container"]);
        let c = t.start(&b);
        c.wait_success();
        assert_eq!(c.stdout().trim(), "hello from the container");
    });
}

#[test]
fn start_on_running_container_fails() {
    // runtime.md start: "Attempting to start a container that is not created MUST have no effect on the
    // container and MUST generate an error."
    spec_test("start_on_running_container_fails", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "60"]);
        let c = t.start(&b);
        c.try_start().failed();
        let s = c.state();
        assert_eq!(s["status"], "running");
        assert_eq!(s["pid"], json!(c.pid));
        c.kill("KILL").ok();
    });
}

#[test]
fn start_on_stopped_container_fails() {
    // runtime.md start: "Attempting to start a container that is not created MUST have no effect on the
    // container and MUST generate an error."
    spec_test("start_on_stopped_container_fails", |t| {
        let (b, ran) = marker_bundle(t);
        let c = t.start(&b);
        c.wait_success();
        std::fs::remove_file(&ran).or_fail("remove marker");
        c.try_start().failed();
        assert_eq!(c.status(), "stopped");
        assert!(!ran.exists(), "the program ran again");
    });
}

#[test]
fn start_of_unknown_container_fails() {
    // runtime.md start: "This operation MUST generate an error if it is not provided the container ID."
    // (and a container that does not exist is not `created`)
    spec_test("start_of_unknown_container_fails", |t| {
        t.cmd(&["start", "no-such-container"]).run().failed();
        t.cmd(&["start"]).run().failed();
    });
}

#[test]
fn start_without_process_fails() {
    // runtime.md start: "This operation MUST generate an error if process was not set."
    spec_test("start_without_process_fails", |t| {
        let mut b = t.bundle();
        b.remove("/process");
        let (id, created) = t.try_create(&b, &[]);
        if created.success() {
            t.cmd(&["start", &id]).run().failed();
        }
    });
}

#[test]
fn kill_sends_signal_to_container_process() {
    // runtime.md kill: "This operation MUST send the specified signal to the container process."
    spec_test("kill_sends_signal_to_container_process", |t| {
        let mut b = t.bundle();
        b.probe(&["wait-signal"]);
        let c = t.start(&b);
        c.wait_for_output("ready");
        c.kill("SIGUSR1").ok();
        c.wait_success();
        assert_eq!(c.json()["signal"], 10, "{}", c.stdout());
    });
}

#[test]
fn kill_created_container() {
    // runtime.md kill: "Attempting to send a signal to a container that is neither created nor running
    // MUST have no effect on the container and MUST generate an error." -- so a created container can be
    // signalled.
    spec_test("kill_created_container", |t| {
        let b = t.bundle();
        let c = t.create(&b);
        c.kill("KILL").ok();
        assert_eq!(c.wait(), Exit::Signal(9));
        assert_eq!(c.status(), "stopped");
    });
}

#[test]
fn kill_stopped_container_fails() {
    // runtime.md kill: "Attempting to send a signal to a container that is neither created nor running
    // MUST have no effect on the container and MUST generate an error."
    spec_test("kill_stopped_container_fails", |t| {
        let mut b = t.bundle();
        b.args(&["true"]);
        let c = t.start(&b);
        c.wait_success();
        c.kill("KILL").failed();
        assert_eq!(c.status(), "stopped");
    });
}

#[test]
fn kill_unknown_container_fails() {
    // runtime.md kill: "This operation MUST generate an error if it is not provided the container ID."
    spec_test("kill_unknown_container_fails", |t| {
        t.cmd(&["kill", "no-such-container", "KILL"]).run().failed();
        t.cmd(&["kill"]).run().failed();
    });
}

#[test]
fn delete_stopped_container() {
    // runtime.md delete: "Deleting a container MUST delete the resources that were created during the
    // create step."
    spec_test("delete_stopped_container", |t| {
        let mut b = t.bundle();
        b.args(&["true"]);
        let c = t.start(&b);
        c.wait_success();
        let cg = b.spec["linux"]["cgroupsPath"].as_str().or_fail("cgroupsPath").to_string();
        let pids = strata_conformance::cgroupfs::dir("pids", &cg);
        assert!(pids.exists(), "no cgroup at {} while the container exists", pids.display());
        c.delete().ok();
        t.cmd(&["state", &c.id]).run().failed();
        assert!(!pids.exists(), "delete left the cgroup {}", pids.display());
    });
}

#[test]
fn delete_keeps_what_create_did_not_make() {
    // runtime.md delete: "Note that resources associated with the container, but not created by this
    // container, MUST NOT be deleted."
    spec_test("delete_keeps_what_create_did_not_make", |t| {
        let (b, ran) = marker_bundle(t);
        let c = t.start(&b);
        c.wait_success();
        c.delete().ok();
        assert!(ran.exists(), "a file in a bind-mounted host directory was removed");
        assert!(b.config_path().exists(), "config.json was removed");
        assert!(b.rootfs().join("bin/busybox").exists(), "the rootfs was removed");
    });
}

#[test]
fn delete_running_container_fails() {
    // runtime.md delete: "Attempting to delete a container that is not stopped MUST have no effect on
    // the container and MUST generate an error."
    spec_test("delete_running_container_fails", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "60"]);
        let c = t.start(&b);
        c.delete().failed();
        assert_eq!(c.status(), "running");
        c.kill("KILL").ok();
    });
}

#[test]
fn delete_created_container_kills_and_removes_it() {
    // issue 16 item 8. runtime.md delete says deleting a container that is not stopped "MUST generate an
    // error", but runc and crun (and the engines relying on them) kill the init of a created container
    // and delete it (runc delete.go: `case libcontainer.Created: return killContainer(container)`).
    spec_test("delete_created_container_kills_and_removes_it", |t| {
        let b = t.bundle();
        let c = t.create(&b);
        c.delete().ok();
        assert_eq!(c.wait(), Exit::Signal(9), "the init of the deleted container");
        t.cmd(&["state", &c.id]).run().failed();
        let cgroups_path = b.spec["linux"]["cgroupsPath"].as_str().or_fail("cgroupsPath");
        let left = strata_conformance::traces::cgroup_dirs(cgroups_path);
        assert!(left.is_empty(), "delete left the cgroup directories {left:?}");
    });
}

#[test]
fn delete_unknown_container_fails() {
    // runtime.md delete: "This operation MUST generate an error if it is not provided the container ID."
    spec_test("delete_unknown_container_fails", |t| {
        t.cmd(&["delete", "no-such-container"]).run().failed();
        t.cmd(&["delete"]).run().failed();
    });
}

#[test]
fn deleted_id_can_be_reused() {
    // runtime.md delete: "Once a container is deleted its ID MAY be used by a subsequent container."
    // (podman's restart relies on it)
    spec_test("deleted_id_can_be_reused", |t| {
        let mut b = t.bundle();
        b.args(&["echo", "first"]);
        let c = t.start(&b);
        c.wait_success();
        c.delete().ok();
        b.args(&["echo", "second"]);
        let c2 = t.create_as(&b, &c.id, &[]);
        c2.start();
        c2.wait_success();
        assert_eq!(c2.stdout().trim(), "second");
    });
}
