//! The runc-compatible command line that podman/conmon and containerd depend on (docs/clients.md): pid
//! files, `--log` JSON, error wording and exit codes, list/ps/spec/features/version, kill signal
//! spellings, run, exec, pause/resume, update.

use strata_conformance::*;

fn sleeper(t: &Test) -> Bundle {
    let mut b = t.bundle();
    b.args(&["sleep", "60"]);
    b
}

fn stopped(t: &Test) -> Container<'_> {
    let mut b = t.bundle();
    b.args(&["true"]);
    let c = t.start(&b);
    c.wait_success();
    assert_eq!(c.status(), "stopped");
    c
}

#[test]
fn pid_file_holds_digits_only() {
    // docs/clients.md §3: the pid file holds the host pid of init (or of the exec process), written
    // before the runtime exits, digits only (containerd: strconv.Atoi of the whole file).
    spec_test("pid_file_holds_digits_only", |t| {
        let b = t.bundle();
        let pid_file = t.path("init.pid");
        let c = t.create_with(&b, &["--pid-file", pid_file.to_str().or_fail("path")]);
        let text = std::fs::read_to_string(&pid_file).or_fail("read pid file");
        assert!(!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()), "pid file holds {text:?}");
        assert_eq!(text.parse::<i32>().or_fail("parse pid file"), c.pid);
    });
}

#[test]
fn exec_pid_file_holds_digits_only() {
    // docs/clients.md §2: exec's --pid-file is read as strictly as create's.
    spec_test("exec_pid_file_holds_digits_only", |t| {
        let c = t.start(&sleeper(t));
        let pid_file = t.path("exec.pid");
        let out = t.cmd(&["exec", "--detach", "--pid-file"]).arg(&pid_file).arg(&c.id).args(&["sleep", "30"]).run();
        out.ok();
        let text = std::fs::read_to_string(&pid_file).or_fail("read exec pid file");
        assert!(!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()), "exec pid file holds {text:?}");
        let pid: i32 = text.parse().or_fail("parse exec pid");
        assert_ne!(pid, c.pid);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).or_fail("read comm of exec pid");
        assert_eq!(comm.trim(), "sleep");
        c.kill("KILL").ok();
    });
}

#[test]
fn log_file_created_on_success() {
    // docs/clients.md §4: runc creates the --log file as soon as it starts (empty on success);
    // containerd fails to read errors when the file is missing.
    spec_test("log_file_created_on_success", |t| {
        let b = t.bundle();
        b.write();
        let log = t.path("log.json");
        let id = t.new_id();
        t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(&id).json_log(&log).run().ok();
        assert!(log.exists(), "--log file not created");
        let text = std::fs::read_to_string(&log).or_fail("read log");
        assert!(!text.contains("\"level\":\"error\""), "error logged on success: {text}");
    });
}

#[test]
fn log_error_is_one_json_line() {
    // docs/clients.md §4: a failure leaves exactly one {"level":"error","msg":"...","time":"<RFC3339>"}
    // line in the --log file (podman parses the whole file as one object; containerd needs an RFC3339 time).
    spec_test("log_error_is_one_json_line", |t| {
        let mut b = t.bundle();
        b.args(&["/no-such-program"]);
        b.write();
        let log = t.path("log.json");
        let id = t.new_id();
        let out = t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(&id).json_log(&log).run();
        out.failed();
        let text = std::fs::read_to_string(&log).or_fail("read log");
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "log holds {} lines: {text}", lines.len());
        let v: Value = serde_json::from_str(lines[0]).or_fail(format!("log line is not JSON: {}", lines[0]));
        assert_eq!(v["level"], "error", "{v}");
        let msg = v["msg"].as_str().or_fail("msg");
        assert!(msg.contains("no-such-program"), "msg does not name the missing program: {msg}");
        let time = v["time"].as_str().or_fail("time");
        assert!(is_rfc3339(time), "time {time:?} is not RFC3339");
    });
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20 || !digits(0..4) || b[4] != b'-' || !digits(5..7) || b[7] != b'-' || !digits(8..10) {
        return false;
    }
    if !(b[10] == b'T' || b[10] == b't') || !digits(11..13) || b[13] != b':' || !digits(14..16) || b[16] != b':' {
        return false;
    }
    if !digits(17..19) {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}

#[test]
fn log_error_message_also_on_stderr() {
    // docs/clients.md §4: with --log, the JSON line goes to the file and the bare message to stderr
    // (podman falls back to stderr).
    spec_test("log_error_message_also_on_stderr", |t| {
        let log = t.path("log.json");
        let out = t.cmd(&["state", "no-such-container"]).json_log(&log).run();
        out.failed();
        assert!(out.stderr.contains("does not exist"), "stderr: {:?}", out.stderr);
    });
}

#[test]
fn log_format_flags_with_equals_sign() {
    // docs/clients.md §1: podman writes --log-format=json and --root=/x, containerd --log-format json;
    // both spellings must work.
    spec_test("log_format_flags_with_equals_sign", |t| {
        let b = t.bundle();
        b.write();
        let log = t.path("log.json");
        let id = t.new_id();
        t.cmd(&["create", "--bundle"])
            .without_root()
            .global([
                format!("--root={}", t.root().display()),
                "--log-format=json".into(),
                format!("--log={}", log.display()),
            ])
            .arg(&b.dir)
            .arg(&id)
            .run()
            .ok();
        assert!(log.exists());
        let s = t.cmd(&["state", &id]).run();
        assert_eq!(s.ok().json()["status"], "created");
    });
}

#[test]
fn state_of_unknown_container_exit_code_and_wording() {
    // docs/clients.md §5: state or delete of an unknown id exits 1 with "container does not exist"
    // (containerd maps "does not exist" to NotFound).
    spec_test("state_of_unknown_container_exit_code_and_wording", |t| {
        let out = t.cmd(&["state", "no-such-container"]).run();
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr.contains("does not exist"), "{out}");
        let out = t.cmd(&["delete", "no-such-container"]).run();
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr.contains("does not exist"), "{out}");
    });
}

#[test]
fn kill_stopped_container_exit_code_and_wording() {
    // docs/clients.md §5: kill of a stopped container exits 1 with "container not running" (containerd
    // treats it as "process already finished").
    spec_test("kill_stopped_container_exit_code_and_wording", |t| {
        let c = stopped(t);
        let out = c.kill("KILL");
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr.contains("container not running"), "{out}");
    });
}

#[test]
fn kill_all_stopped_container_succeeds() {
    // docs/clients.md §5: kill --all of a stopped container exits 0.
    spec_test("kill_all_stopped_container_succeeds", |t| {
        let c = stopped(t);
        c.cmd(&["kill", "--all"]).arg("KILL").run().ok();
    });
}

#[test]
fn kill_all_signals_every_process() {
    // runc `kill --all`: podman uses it for containers sharing the host pid namespace.
    spec_test("kill_all_signals_every_process", |t| {
        let mut b = t.bundle();
        b.sh("sleep 60 & sleep 61 & wait");
        let c = t.start(&b);
        let ps = c.cmd(&["ps", "--format", "json"]).run();
        let before = ps.ok().json();
        t.cmd(&["kill", "--all", &c.id, "KILL"]).run().ok();
        assert_eq!(c.wait(), Exit::Signal(9));
        for pid in before.as_array().or_fail("ps list") {
            let pid = pid.as_i64().or_fail("pid") as i32;
            assert!(!strata_conformance::container::process_alive(pid), "process {pid} survived kill --all");
        }
    });
}

#[test]
fn commands_work_with_a_bare_environment() {
    // docs/clients.md §6: podman runs kill/delete/pause/resume/state with an environment of only
    // XDG_RUNTIME_DIR= (empty): no PATH, no HOME.
    spec_test("commands_work_with_a_bare_environment", |t| {
        let c = t.start(&sleeper(t));
        let state = c.cmd(&["state"]).bare_env().run();
        assert_eq!(state.ok().json()["status"], "running");
        c.cmd(&["pause"]).bare_env().run().ok();
        c.cmd(&["resume"]).bare_env().run().ok();
        c.cmd(&["kill"]).arg("9").bare_env().run().ok();
        assert_eq!(c.wait(), Exit::Signal(9));
        c.cmd(&["delete", "--force"]).bare_env().run().ok();
        t.cmd(&["state", &c.id]).run().failed();
    });
}

#[test]
fn delete_force_unknown_id_succeeds() {
    // docs/clients.md §5: delete --force of an unknown id exits 0 (podman and containerd always clean up
    // with it after a failed create).
    spec_test("delete_force_unknown_id_succeeds", |t| {
        t.cmd(&["delete", "--force", "no-such-container"]).run().ok();
    });
}

#[test]
fn delete_force_running_container() {
    // runc delete --force: "Forcibly deletes the container if it is still running (uses SIGKILL)".
    spec_test("delete_force_running_container", |t| {
        let c = t.start(&sleeper(t));
        c.cmd(&["delete", "--force"]).run().ok();
        assert_eq!(c.wait(), Exit::Signal(9));
        t.cmd(&["state", &c.id]).run().failed();
    });
}

#[test]
fn delete_force_created_container() {
    // podman: "create failed → delete --force <id>"; a created container must go away with its process.
    spec_test("delete_force_created_container", |t| {
        let c = t.create(&t.bundle());
        c.cmd(&["delete", "--force"]).run().ok();
        assert_eq!(c.wait(), Exit::Signal(9));
        t.cmd(&["state", &c.id]).run().failed();
    });
}

#[test]
fn delete_stopped_container_exit_code() {
    // docs/clients.md §5: delete of a stopped container exits 0.
    spec_test("delete_stopped_container_exit_code", |t| {
        let c = stopped(t);
        assert_eq!(c.delete().code(), Some(0));
    });
}

#[test]
fn exec_in_stopped_container_fails_with_255() {
    // docs/clients.md §5: exec in a stopped container exits 255 with "exec failed: cannot exec in a
    // stopped container".
    spec_test("exec_in_stopped_container_fails_with_255", |t| {
        let c = stopped(t);
        let out = t.cmd(&["exec", &c.id, "true"]).run();
        assert_eq!(out.code(), Some(255), "{out}");
        assert!(out.stderr.contains("stopped"), "{out}");
    });
}

#[test]
fn pause_stopped_container_fails() {
    // docs/clients.md §5: pause of a stopped container exits 1 with "container not running".
    spec_test("pause_stopped_container_fails", |t| {
        let c = stopped(t);
        let out = c.cmd(&["pause"]).run();
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr.contains("not running"), "{out}");
    });
}

#[test]
fn pause_and_resume() {
    // docs/clients.md §2: podman pause/unpause call `pause <id>` / `resume <id>`; state reports "paused".
    spec_test("pause_and_resume", |t| {
        let b = sleeper(t);
        let c = t.start(&b);
        c.cmd(&["pause"]).run().ok();
        assert_eq!(c.status(), "paused");
        let cg = b.spec["linux"]["cgroupsPath"].as_str().or_fail("cgroupsPath").trim_start_matches('/').to_string();
        let frozen = strata_conformance::cgroupfs::file("freezer", &cg, "freezer.state", "cgroup.freeze");
        let state = std::fs::read_to_string(&frozen).or_fail("read the freezer state");
        let want = if strata_conformance::cgroupfs::unified() { "1" } else { "FROZEN" };
        assert_eq!(state.trim(), want);
        c.cmd(&["resume"]).run().ok();
        assert_eq!(c.status(), "running");
        c.kill("KILL").ok();
    });
}

#[test]
fn ps_json_lists_container_pids() {
    // docs/clients.md §2: `ps --format json` prints a JSON array of host pids.
    spec_test("ps_json_lists_container_pids", |t| {
        let c = t.start(&sleeper(t));
        let out = c.cmd(&["ps", "--format", "json"]).run();
        let pids = out.ok().json();
        assert_eq!(pids, json!([c.pid]), "{out}");
        c.kill("KILL").ok();
    });
}

#[test]
fn ps_json_of_stopped_container_is_empty() {
    // docs/clients.md §5: `ps --format json` of a stopped container prints null and exits 0.
    spec_test("ps_json_of_stopped_container_is_empty", |t| {
        let c = stopped(t);
        let out = c.cmd(&["ps", "--format", "json"]).run();
        let v = out.ok().json();
        assert!(v.is_null() || v == json!([]), "{out}");
    });
}

#[test]
fn list_table_format() {
    // runc list: a table with the columns ID, PID, STATUS, BUNDLE, CREATED, OWNER.
    spec_test("list_table_format", |t| {
        let b = t.bundle();
        let c = t.create(&b);
        let out = t.cmd(&["list"]).run();
        out.ok();
        let mut lines = out.stdout.lines();
        let header: Vec<&str> = lines.next().or_fail("header line").split_whitespace().collect();
        assert_eq!(header, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]);
        let row: Vec<&str> = lines.next().or_fail("container row").split_whitespace().collect();
        assert_eq!(row[0], c.id);
        assert_eq!(row[1], c.pid.to_string());
        assert_eq!(row[2], "created");
        assert_eq!(row[3], b.dir.to_string_lossy());
    });
}

#[test]
fn list_json_format() {
    // runc list --format json: an array of container states.
    spec_test("list_json_format", |t| {
        let b = t.bundle();
        let c = t.create(&b);
        let out = t.cmd(&["list", "--format", "json"]).run();
        let v = out.ok().json();
        let list = v.as_array().or_fail("list JSON is not an array");
        assert_eq!(list.len(), 1, "{v}");
        assert_eq!(list[0]["id"], json!(c.id));
        assert_eq!(list[0]["pid"], json!(c.pid));
        assert_eq!(list[0]["status"], "created");
        assert_eq!(list[0]["bundle"], json!(b.dir));
        assert!(list[0]["created"].as_str().is_some_and(is_rfc3339), "{v}");
    });
}

#[test]
fn list_quiet_prints_ids() {
    // runc list -q: "display only container IDs".
    spec_test("list_quiet_prints_ids", |t| {
        let a = t.create(&t.bundle());
        let b = t.create(&t.bundle());
        let out = t.cmd(&["list", "-q"]).run();
        let mut ids: Vec<&str> = out.ok().stdout.lines().collect();
        ids.sort();
        let mut want = vec![a.id.as_str(), b.id.as_str()];
        want.sort();
        assert_eq!(ids, want);
    });
}

#[test]
fn list_of_empty_root() {
    // runc list with no containers: exit 0; JSON format prints null (or an empty array).
    spec_test("list_of_empty_root", |t| {
        t.cmd(&["list"]).run().ok();
        let v = t.cmd(&["list", "--format", "json"]).run().json();
        assert!(v.is_null() || v == json!([]), "{v}");
    });
}

fn signal_test(t: &Test, spelling: &str, want: i64) {
    let mut b = t.bundle();
    b.probe(&["wait-signal"]);
    let c = t.start(&b);
    c.wait_for_output("ready");
    let out = match spelling {
        "" => c.cmd(&["kill"]).run(),
        s => c.kill(s),
    };
    out.ok();
    c.wait_success();
    assert_eq!(c.json()["signal"], want, "{}", c.stdout());
}

#[test]
fn kill_signal_by_number() {
    // docs/clients.md §2: podman sends `kill <id> 10` (a signal number, after the id).
    spec_test("kill_signal_by_number", |t| signal_test(t, "10", 10));
}

#[test]
fn kill_signal_by_name_with_sig_prefix() {
    // runc kill accepts signal names: "SIGHUP".
    spec_test("kill_signal_by_name_with_sig_prefix", |t| signal_test(t, "SIGHUP", 1));
}

#[test]
fn kill_signal_by_name_without_prefix() {
    // runc kill accepts signal names without the SIG prefix: "USR2".
    spec_test("kill_signal_by_name_without_prefix", |t| signal_test(t, "USR2", 12));
}

#[test]
fn kill_default_signal_is_term() {
    // runc kill: "signal ... defaults to SIGTERM".
    spec_test("kill_default_signal_is_term", |t| signal_test(t, "", 15));
}

#[test]
fn kill_sigkill_by_number() {
    // containerd: "kill <id> 9".
    spec_test("kill_sigkill_by_number", |t| {
        let c = t.start(&sleeper(t));
        c.kill("9").ok();
        assert_eq!(c.wait(), Exit::Signal(9));
    });
}

#[test]
fn kill_invalid_signal_fails() {
    // runc kill with an unknown signal name fails and leaves the container alone.
    spec_test("kill_invalid_signal_fails", |t| {
        let c = t.start(&sleeper(t));
        c.kill("SIGNOTREAL").failed();
        assert_eq!(c.status(), "running");
        c.kill("KILL").ok();
    });
}

#[test]
fn spec_writes_valid_config() {
    // runc spec: writes a template config.json for a bundle.
    spec_test("spec_writes_valid_config", |t| {
        let dir = t.path("spec-bundle");
        std::fs::create_dir_all(&dir).or_fail("create dir");
        t.cmd(&["spec", "--bundle"]).arg(&dir).run().ok();
        let text = std::fs::read_to_string(dir.join("config.json")).or_fail("read written config.json");
        let v: Value = serde_json::from_str(&text).or_fail("config.json is not JSON");
        let version = v["ociVersion"].as_str().or_fail("ociVersion");
        assert!(version.split(['.', '-']).take(3).all(|p| p.parse::<u32>().is_ok()), "ociVersion {version}");
        assert_eq!(v["root"]["path"], "rootfs");
        assert!(v["process"]["args"].as_array().is_some_and(|a| !a.is_empty()), "{v}");
        assert!(v["process"]["cwd"].as_str().is_some_and(|c| c.starts_with('/')), "{v}");
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .or_fail("namespaces")
            .iter()
            .filter_map(|n| n["type"].as_str())
            .collect();
        for want in ["pid", "mount", "ipc", "uts", "network"] {
            assert!(ns.contains(&want), "namespace {want} missing: {ns:?}");
        }
    });
}

#[test]
fn spec_refuses_to_overwrite() {
    // runc spec: "File config.json exists. Remove it first".
    spec_test("spec_refuses_to_overwrite", |t| {
        let dir = t.path("spec-bundle");
        std::fs::create_dir_all(&dir).or_fail("create dir");
        std::fs::write(dir.join("config.json"), "keep me").or_fail("write config.json");
        t.cmd(&["spec", "--bundle"]).arg(&dir).run().failed();
        assert_eq!(std::fs::read_to_string(dir.join("config.json")).or_fail("read"), "keep me");
    });
}

#[test]
fn spec_rootless_has_user_namespace() {
    // runc spec --rootless: "generate a configuration for a rootless container" (user namespace +
    // mappings).
    spec_test("spec_rootless_has_user_namespace", |t| {
        let dir = t.path("spec-bundle");
        std::fs::create_dir_all(&dir).or_fail("create dir");
        t.cmd(&["spec", "--rootless", "--bundle"]).arg(&dir).run().ok();
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).or_fail("read")).or_fail("parse");
        let ns = v["linux"]["namespaces"].as_array().or_fail("namespaces");
        assert!(ns.iter().any(|n| n["type"] == "user"), "{v}");
        assert!(v["linux"]["uidMappings"].as_array().is_some_and(|a| !a.is_empty()), "{v}");
        assert!(v["linux"]["gidMappings"].as_array().is_some_and(|a| !a.is_empty()), "{v}");
    });
}

#[test]
fn features_reports_json() {
    // features.md: "ociVersionMin (string, REQUIRED)", "ociVersionMax (string, REQUIRED)", "hooks",
    // "mountOptions", and linux.namespaces / linux.capabilities.
    spec_test("features_reports_json", |t| {
        let out = t.cmd(&["features"]).run();
        let v = out.ok().json();
        assert!(v["ociVersionMin"].as_str().is_some_and(|s| s.starts_with("1.")), "{v}");
        assert!(v["ociVersionMax"].as_str().is_some_and(|s| s.starts_with("1.")), "{v}");
        let hooks: Vec<&str> = v["hooks"].as_array().or_fail("hooks").iter().filter_map(Value::as_str).collect();
        for h in ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] {
            assert!(hooks.contains(&h), "hook {h} missing from {hooks:?}");
        }
        let opts: Vec<&str> =
            v["mountOptions"].as_array().or_fail("mountOptions").iter().filter_map(Value::as_str).collect();
        for o in ["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "rprivate", "rslave", "rshared"] {
            assert!(opts.contains(&o), "mount option {o} missing from {opts:?}");
        }
        let ns: Vec<&str> =
            v["linux"]["namespaces"].as_array().or_fail("linux.namespaces").iter().filter_map(Value::as_str).collect();
        for n in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
            assert!(ns.contains(&n), "namespace {n} missing from {ns:?}");
        }
        let caps = v["linux"]["capabilities"].as_array().or_fail("linux.capabilities");
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"), "{v}");
    });
}

#[test]
fn version_flag() {
    // docs/clients.md §2: podman info shows `--version` as is; runc prints a "spec: " line.
    spec_test("version_flag", |t| {
        let out = t.cmd(&["--version"]).without_root().run();
        out.ok();
        assert!(out.stdout.lines().any(|l| l.starts_with("spec: 1.")), "{out}");
    });
}

#[test]
fn run_returns_process_exit_code() {
    // runc run: "the exit status of the container process" is run's exit status.
    spec_test("run_returns_process_exit_code", |t| {
        let mut b = t.bundle();
        b.sh("exit 7");
        b.write();
        let id = t.new_id();
        let out = t.cmd(&["run", "--bundle"]).arg(&b.dir).arg(&id).run();
        assert_eq!(out.code(), Some(7), "{out}");
    });
}

#[test]
fn run_prints_container_output() {
    // runc run: the container's stdio are run's (no terminal).
    spec_test("run_prints_container_output", |t| {
        let mut b = t.bundle();
        b.args(&["echo", "from run"]);
        b.write();
        let id = t.new_id();
        let out = t.cmd(&["run", "--bundle"]).arg(&b.dir).arg(&id).run();
        assert_eq!(out.ok().stdout.trim(), "from run");
    });
}

#[test]
fn run_signal_exit_is_128_plus_signal() {
    // DESIGN §3.5: "run ... returns the exit status (128+signal for a signal)" (as runc does).
    spec_test("run_signal_exit_is_128_plus_signal", |t| {
        let mut b = t.bundle();
        // Without a pid namespace the shell is not an init and can be killed by its own signal.
        b.without_namespace("pid");
        b.sh("kill -TERM $$");
        b.write();
        let id = t.new_id();
        let out = t.cmd(&["run", "--bundle"]).arg(&b.dir).arg(&id).run();
        assert_eq!(out.code(), Some(128 + 15), "{out}");
    });
}

#[test]
fn container_exit_status_reaches_the_reaper() {
    // docs/clients.md §3: conmon and the shim are child subreapers; init and exec processes are
    // reparented to them when the runtime exits, and they reap them for the exit status.
    spec_test("container_exit_status_reaches_the_reaper", |t| {
        let mut b = t.bundle();
        b.sh("exit 42");
        let c = t.start(&b);
        assert_eq!(c.wait(), Exit::Code(42));
    });
}

#[test]
fn exec_runs_in_container_namespaces() {
    // runc exec: "Execute new process inside the container" -- in its namespaces.
    spec_test("exec_runs_in_container_namespaces", |t| {
        let c = t.start(&sleeper(t));
        let out = t.cmd(&["exec", &c.id, "/bin/strata-probe", "ns"]).run();
        let ns = out.ok().json();
        for n in ["mnt", "pid", "net", "ipc", "uts", "cgroup", "user"] {
            let link = std::fs::read_link(format!("/proc/{}/ns/{n}", c.pid)).or_fail("read ns");
            assert_eq!(link.to_string_lossy(), format!("{}:[{}]", n, ns[n]), "exec'd process not in the {n} namespace");
        }
        c.kill("KILL").ok();
    });
}

#[test]
fn exec_process_json_is_applied() {
    // docs/clients.md §2: exec's --process file is a plain OCI process object (user, args, env, cwd).
    spec_test("exec_process_json_is_applied", |t| {
        let c = t.start(&sleeper(t));
        let process = json!({
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
            "args": ["/bin/strata-probe", "all"],
            "env": ["PATH=/bin", "EXEC_VAR=1"],
            "cwd": "/tmp",
            "noNewPrivileges": true
        });
        let file = t.path("process.json");
        std::fs::write(&file, process.to_string()).or_fail("write process.json");
        let out = t.cmd(&["exec", "--process"]).arg(&file).arg(&c.id).run();
        let v = out.ok().json();
        assert_eq!(v["ids"]["uid"], 1000);
        assert_eq!(v["ids"]["gid"], 1000);
        assert_eq!(v["ids"]["groups"], json!([5]));
        assert_eq!(v["cwd"], "/tmp");
        let env = v["env"].as_array().or_fail("env");
        for want in ["PATH=/bin", "EXEC_VAR=1"] {
            assert!(env.iter().any(|e| e == want), "{want} missing from {env:?}");
        }
        assert_eq!(v["nnp"], true);
        c.kill("KILL").ok();
    });
}

#[test]
fn exec_exit_code_propagates() {
    // `podman exec c1 sh -c 'exit 7'` exits 7 (a non-detached exec returns the process's status).
    spec_test("exec_exit_code_propagates", |t| {
        let c = t.start(&sleeper(t));
        let out = t.cmd(&["exec", &c.id, "sh", "-c", "exit 3"]).run();
        assert_eq!(out.code(), Some(3), "{out}");
        c.kill("KILL").ok();
    });
}

#[test]
fn exec_apparmor_profile_that_cannot_be_applied_fails() {
    // issue 16 item 31. runc exec --apparmor with a profile that cannot be applied (not loaded, or no
    // AppArmor on the host: this VM) fails instead of running the process unconfined; the container
    // itself is not affected.
    spec_test("exec_apparmor_profile_that_cannot_be_applied_fails", |t| {
        let c = t.start(&sleeper(t));
        let out = t.cmd(&["exec", "--apparmor", "strata-exec-profile", &c.id, "sh", "-c", "echo RAN-UNCONFINED"]).run();
        assert!(!out.success() && !out.stdout.contains("RAN-UNCONFINED"), "the process ran unconfined: {out}");
        assert!(out.stderr.to_lowercase().contains("apparmor"), "the error does not say AppArmor: {out}");
        assert_eq!(c.status(), "running");
        c.kill("KILL").ok();
    });
}

#[test]
fn exec_detach_returns_immediately() {
    // docs/clients.md §3: exec --detach writes the pid file and returns; the caller reaps.
    spec_test("exec_detach_returns_immediately", |t| {
        let c = t.start(&sleeper(t));
        let pid_file = t.path("exec.pid");
        t.cmd(&["exec", "--detach", "--pid-file"]).arg(&pid_file).arg(&c.id).args(&["sh", "-c", "exit 5"]).run().ok();
        let pid: i32 = std::fs::read_to_string(&pid_file).or_fail("read exec pid").parse().or_fail("parse pid");
        assert_eq!(strata_conformance::container::wait_exit(pid, "exec"), Exit::Code(5));
        c.kill("KILL").ok();
    });
}

#[test]
fn update_memory_limit() {
    // docs/clients.md §2: podman calls `update --resources=<file> <id>`, containerd
    // `update --resources - <id>` with the JSON on stdin.
    spec_test("update_memory_limit", |t| {
        let b = sleeper(t);
        let c = t.start(&b);
        c.cmd(&["update", "--resources", "-"])
            .stdin(r#"{"memory":{"limit":134217728},"pids":{"limit":77}}"#)
            .run()
            .ok();
        let cg = b.spec["linux"]["cgroupsPath"].as_str().or_fail("cgroupsPath").trim_start_matches('/').to_string();
        let mem = strata_conformance::cgroupfs::file("memory", &cg, "memory.limit_in_bytes", "memory.max");
        let mem = std::fs::read_to_string(mem).or_fail("read memory limit");
        assert_eq!(mem.trim(), "134217728");
        let pids = strata_conformance::cgroupfs::file("pids", &cg, "pids.max", "pids.max");
        let pids = std::fs::read_to_string(pids).or_fail("read pids.max");
        assert_eq!(pids.trim(), "77");
        c.kill("KILL").ok();
    });
}

#[test]
fn version_and_help_after_global_options() {
    // issue 16 item 9. runc (urfave/cli) takes --version/-v and --help/-h anywhere among the global
    // options: `runc --root X --version` prints the version, `runc --root X --help` the usage.
    spec_test("version_and_help_after_global_options", |t| {
        for flag in ["--version", "-v"] {
            let out = t.cmd(&[flag]).global(["--log-format", "text"]).run();
            assert!(out.success() && out.stdout.lines().any(|l| l.starts_with("spec: 1.")), "{out}");
        }
        for flag in ["--help", "-h"] {
            let out = t.cmd(&[flag]).global(["--log-format", "text"]).run();
            assert!(out.success() && out.stdout.contains("create") && out.stdout.contains("exec"), "{out}");
        }
    });
}

#[test]
fn rootless_flag_value_as_separate_argument() {
    // issue 16 item 9. runc's --rootless takes a value ("true", "false" or "auto") like every other
    // value flag: `--rootless true` (space form) as well as `--rootless=true`.
    spec_test("rootless_flag_value_as_separate_argument", |t| {
        for value in ["false", "auto", "true"] {
            let out = t.cmd(&["list", "-q"]).global(["--rootless", value]).run();
            assert!(out.success(), "--rootless {value}: {out}");
        }
    });
}

#[test]
fn kill_signal_0_checks_that_the_container_runs() {
    // issue 16 item 10. `kill ID 0` is "is it alive?" (kill(2) with signal 0): runc accepts the number 0;
    // it succeeds on a running container and leaves it running, and fails on a stopped one.
    spec_test("kill_signal_0_checks_that_the_container_runs", |t| {
        let c = t.start(&sleeper(t));
        c.kill("0").ok();
        assert_eq!(c.status(), "running");
        c.kill("KILL").ok();
        assert_eq!(c.wait(), Exit::Signal(9));
        let out = c.kill("0");
        assert!(!out.success() && out.stderr.contains("not running"), "{out}");
    });
}

#[test]
fn run_no_subreaper_accepted() {
    // issue 16 item 10. runc run --no-subreaper ("disable the use of the subreaper used to reap
    // reparented processes"): accepted, the container runs and its status is run's.
    spec_test("run_no_subreaper_accepted", |t| {
        let mut b = t.bundle();
        b.sh("exit 6");
        b.write();
        let id = t.new_id();
        let out = t.cmd(&["run", "--no-subreaper", "--bundle"]).arg(&b.dir).arg(&id).run();
        assert_eq!(out.code(), Some(6), "{out}");
    });
}

/// One invocation of the flag test: a command with one runc flag and, when the flag is understood,
/// what it must say (or succeed).
struct FlagCase {
    command: &'static str,
    flag: &'static str,
    value: Option<String>,
}

#[test]
fn every_runc_flag_accepted() {
    // issue 16 item 10. Every flag of every runc 1.1.5 command (`runc --help`, `runc CMD --help`) is
    // accepted (an ignored one is documented by the runtime). Each command runs against a container
    // or bundle that does not exist: a flag the parser understands leads to that error (or success, or
    // an error saying that this flag's feature is not supported), an unknown one to a usage error
    // instead. checkpoint and restore (CRIU) are not covered.
    spec_test("every_runc_flag_accepted", |t| {
        let dir = t.path("flags");
        std::fs::create_dir_all(&dir).or_fail("create flags dir");
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).or_fail(format!("write {name}"));
            p.display().to_string()
        };
        let process = file("process.json", r#"{"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}}"#);
        let resources = file("resources.json", r#"{"pids": {"limit": 10}}"#);
        file("config.json", "{}");
        let spec_dir = dir.display().to_string();
        let socket = dir.join("console.sock").display().to_string();
        let pid_file = dir.join("pid").display().to_string();
        let missing_bundle = t.path("no-such-bundle").display().to_string();
        let v = |s: &str| Some(s.to_string());
        let mut cases: Vec<FlagCase> = Vec::new();
        let mut add = |command: &'static str, list: &[(&'static str, Option<String>)]| {
            for (flag, value) in list {
                cases.push(FlagCase { command, flag, value: value.clone() });
            }
        };
        let create_flags = [
            ("--console-socket", v(&socket)),
            ("--pid-file", v(&pid_file)),
            ("--no-pivot", None),
            ("--no-new-keyring", None),
            ("--preserve-fds", v("0")),
        ];
        add("create", &create_flags);
        add("create", &[("-b", v(&missing_bundle))]);
        add("run", &create_flags);
        add("run", &[("-b", v(&missing_bundle))]);
        add("run", &[("--detach", None), ("-d", None), ("--keep", None), ("--no-subreaper", None)]);
        add(
            "exec",
            &[
                ("--console-socket", v(&socket)),
                ("--cwd", v("/")),
                ("--env", v("A=B")),
                ("-e", v("A=B")),
                ("--tty", None),
                ("-t", None),
                ("--user", v("0:0")),
                ("-u", v("0:0")),
                ("--additional-gids", v("5")),
                ("-g", v("5")),
                ("--process", v(&process)),
                ("-p", v(&process)),
                ("--detach", None),
                ("-d", None),
                ("--pid-file", v(&pid_file)),
                ("--process-label", v("system_u:system_r:container_t:s0")),
                ("--apparmor", v("unconfined")),
                ("--no-new-privs", None),
                ("--cap", v("CAP_KILL")),
                ("-c", v("CAP_KILL")),
                ("--preserve-fds", v("0")),
                ("--cgroup", v("sub")),
                ("--ignore-paused", None),
            ],
        );
        add("kill", &[("--all", None), ("-a", None)]);
        add("delete", &[("--force", None), ("-f", None)]);
        add("list", &[("--format", v("json")), ("-f", v("json")), ("--quiet", None), ("-q", None)]);
        add("ps", &[("--format", v("json")), ("-f", v("json"))]);
        add("events", &[("--interval", v("1s")), ("--stats", None)]);
        add("spec", &[("--rootless", None), ("-b", v(&spec_dir))]);
        add(
            "update",
            &[
                ("--resources", v(&resources)),
                ("-r", v(&resources)),
                ("--blkio-weight", v("500")),
                ("--cpu-period", v("100000")),
                ("--cpu-quota", v("50000")),
                ("--cpu-share", v("512")),
                ("--cpu-rt-period", v("1000000")),
                ("--cpu-rt-runtime", v("950000")),
                ("--cpuset-cpus", v("0")),
                ("--cpuset-mems", v("0")),
                ("--memory", v("134217728")),
                ("--memory-reservation", v("67108864")),
                ("--memory-swap", v("268435456")),
                ("--pids-limit", v("10")),
                ("--l3-cache-schema", v("L3:0=f")),
                ("--mem-bw-schema", v("MB:0=100")),
            ],
        );
        for global in ["--debug", "--systemd-cgroup"] {
            cases.push(FlagCase { command: "(global)", flag: global, value: None });
        }
        for (global, value) in [
            ("--log", dir.join("log").display().to_string()),
            ("--log-format", "json".into()),
            ("--criu", "criu".into()),
            ("--rootless", "auto".into()),
        ] {
            cases.push(FlagCase { command: "(global)", flag: global, value: Some(value) });
        }
        // The rest of each command line, and what an understood command line leads to.
        let tail = |case: &FlagCase| -> (Vec<String>, &'static str) {
            let s = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            match case.command {
                "create" | "run" if case.flag == "-b" => (s(&["flag-test-id"]), "no-such-bundle"),
                "spec" if case.flag == "-b" => (s(&[]), "exists"),
                "create" | "run" => (s(&["--bundle", &missing_bundle, "flag-test-id"]), "no-such-bundle"),
                "exec" => (s(&["no-such-container", "true"]), "does not exist"),
                "kill" => (s(&["no-such-container", "KILL"]), "does not exist"),
                "delete" | "ps" | "events" | "update" => (s(&["no-such-container"]), "does not exist"),
                "spec" => (s(&["--bundle", &spec_dir]), "exists"),
                "(global)" => (s(&["state", "no-such-container"]), "does not exist"),
                _ => (s(&[]), "\u{0}never"),
            }
        };
        let run = |case: &FlagCase| {
            let mut argv: Vec<String> = Vec::new();
            let (rest, understood) = tail(case);
            let mut cmd = if case.command == "(global)" {
                let mut g = vec![case.flag.to_string()];
                g.extend(case.value.clone());
                t.cmd(&[]).global(g)
            } else {
                argv.push(case.command.to_string());
                argv.push(case.flag.to_string());
                argv.extend(case.value.clone());
                t.cmd(&[])
            };
            argv.extend(rest);
            for a in &argv {
                cmd = cmd.arg(a);
            }
            let out = cmd.run();
            // A feature the runtime understands but cannot provide may be refused by name.
            let usage = out.stderr.to_lowercase().contains("usage");
            let unsupported =
                !usage && out.stderr.lines().any(|l| l.contains("not supported") && l.contains(case.flag));
            (out.success() || out.stderr.contains(understood) || unsupported, out)
        };
        // The check can fail: an unknown flag is not mistaken for an understood one.
        for command in ["create", "exec", "delete", "spec", "update", "list"] {
            let (understood, out) = run(&FlagCase { command, flag: "--strata-no-such-flag", value: None });
            assert!(!understood, "an unknown flag looked understood: {out}");
        }
        let refused: Vec<String> = cases
            .iter()
            .filter_map(|case| {
                let (understood, out) = run(case);
                (!understood).then(|| format!("{} {}: {out}", case.command, case.flag))
            })
            .collect();
        assert!(refused.is_empty(), "{} runc flags refused:\n{}", refused.len(), refused.join("\n"));
    });
}

#[test]
fn exec_process_is_a_session_leader() {
    // issue 16 item 13. runc's init (nsexec) calls setsid() for every process it starts, exec'd ones
    // included: without a terminal the process leads its own session and process group.
    spec_test("exec_process_is_a_session_leader", |t| {
        let c = t.start(&sleeper(t));
        let out = t.cmd(&["exec", &c.id, "/bin/strata-probe", "pid"]).run();
        let v = out.ok().json();
        let pid = v["pid"].as_i64().or_fail(format!("pid in {v}"));
        assert_eq!((v["sid"].as_i64(), v["pgid"].as_i64()), (Some(pid), Some(pid)), "{v}");
        c.kill("KILL").ok();
    });
}

#[test]
fn exec_process_json_without_user_runs_as_root() {
    // issue 16 item 25. runc and crun read process.json into the spec's Process, whose user defaults
    // to uid 0, gid 0 (not the container process's user) when "user" is absent.
    spec_test("exec_process_json_without_user_runs_as_root", |t| {
        let mut b = sleeper(t);
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        let c = t.start(&b);
        let file = t.path("process.json");
        let process = json!({"args": ["/bin/strata-probe", "ids"], "cwd": "/", "env": ["PATH=/bin"]});
        std::fs::write(&file, process.to_string()).or_fail("write process.json");
        let out = t.cmd(&["exec", "--process"]).arg(&file).arg(&c.id).run();
        let v = out.ok().json();
        assert_eq!((v["uid"].as_u64(), v["gid"].as_u64()), (Some(0), Some(0)), "{v}");
        c.kill("KILL").ok();
    });
}
