//! config.md POSIX-platform hooks and runtime.md lifecycle steps 3-13: when each hook type runs, in
//! which namespace, what it gets on stdin, and what its failure or timeout does.
//!
//! Every hook is `strata-probe hook LABEL FILE`, which appends what it saw to a log: hooks in the runtime
//! namespace write the host path of the log directly, hooks in the container namespace write it through a
//! bind mount at /hooklog. The container process itself can log the same way ("process").

use std::path::PathBuf;

use strata_conformance::probe::host_namespaces;
use strata_conformance::*;

const IN_CONTAINER_LOG: &str = "/hooklog/log.jsonl";

struct HookBundle {
    b: Bundle,
    log: PathBuf,
    host_probe: PathBuf,
}

impl HookBundle {
    fn new(t: &Test) -> Self {
        let mut b = t.bundle();
        let dir = b.host_dir("hooklog");
        b.mount(json!({"destination": "/hooklog", "type": "bind", "source": dir, "options": ["rbind", "rw"]}));
        // By default the process logs itself and exits.
        b.probe(&["hook", "process", IN_CONTAINER_LOG]);
        HookBundle { b, log: dir.join("log.jsonl"), host_probe: t.host_probe() }
    }

    /// A hook in the runtime namespace (host paths).
    fn host_hook(&self, label: &str) -> Value {
        json!({"path": self.host_probe, "args": ["strata-probe", "hook", label, self.log]})
    }

    /// A hook whose path resolves in the container (startContainer).
    fn container_hook(&self, label: &str) -> Value {
        json!({"path": "/bin/strata-probe", "args": ["strata-probe", "hook", label, IN_CONTAINER_LOG]})
    }

    fn add(&mut self, kind: &str, hook: Value) -> &mut Self {
        self.b.push(&format!("/hooks/{kind}"), hook);
        self
    }

    fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).or_fail(format!("hook log line: {l}")))
            .collect()
    }

    fn labels(&self) -> Vec<String> {
        self.entries().iter().map(|e| e["label"].as_str().unwrap_or("?").to_string()).collect()
    }

    fn entry(&self, label: &str) -> Value {
        self.entries()
            .into_iter()
            .find(|e| e["label"] == label)
            .or_fail(format!("no {label} hook ran; log: {:?}", self.labels()))
    }
}

/// Namespace inodes of a live process, as the probe reports them.
fn ns_of(pid: i32) -> Value {
    let mut m = serde_json::Map::new();
    for ns in ["mnt", "net", "ipc", "uts", "pid"] {
        let link = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).or_fail(format!("read ns of {pid}"));
        let ino =
            link.to_string_lossy().split_once(":[").and_then(|(_, r)| r.trim_end_matches(']').parse::<u64>().ok());
        m.insert(ns.to_string(), json!(ino));
    }
    Value::Object(m)
}

fn assert_ns(entry: &Value, want: &Value, what: &str) {
    for ns in ["mnt", "net", "ipc", "uts", "pid"] {
        assert_eq!(entry["ns"][ns], want[ns], "{what}: {ns} namespace differs; hook saw {}", entry["ns"]);
    }
}

#[test]
fn hooks_prestart_called_during_create() {
    // config.md prestart: "The prestart hooks MUST be called as part of the create operation after the
    // runtime environment has been created ... but before the pivot_root or any equivalent operation".
    spec_test("hooks_prestart_called_during_create", |t| {
        let mut h = HookBundle::new(t);
        let hook = h.host_hook("prestart");
        h.add("prestart", hook);
        let c = t.create(&h.b);
        assert_eq!(h.labels(), ["prestart"]);
        c.start();
        c.wait_success();
        assert_eq!(h.labels(), ["prestart", "process"]);
    });
}

#[test]
fn hooks_prestart_runs_in_runtime_namespace() {
    // config.md prestart: "The prestart hooks MUST be executed in the runtime namespace."
    spec_test("hooks_prestart_runs_in_runtime_namespace", |t| {
        let mut h = HookBundle::new(t);
        let hook = h.host_hook("prestart");
        h.add("prestart", hook);
        let _c = t.create(&h.b);
        assert_ns(&h.entry("prestart"), &host_namespaces(), "prestart");
    });
}

#[test]
fn hooks_prestart_before_create_runtime() {
    // config.md prestart: "The prestart hooks MUST be called before the createRuntime hooks."
    spec_test("hooks_prestart_before_create_runtime", |t| {
        let mut h = HookBundle::new(t);
        let (cr, ps) = (h.host_hook("createRuntime"), h.host_hook("prestart"));
        h.add("createRuntime", cr).add("prestart", ps);
        let _c = t.create(&h.b);
        assert_eq!(h.labels(), ["prestart", "createRuntime"]);
    });
}

#[test]
fn hooks_create_runtime_called_during_create_in_runtime_namespace() {
    // config.md createRuntime: "MUST be called as part of the create operation"; "The createRuntime hooks
    // MUST be executed in the runtime namespace."
    spec_test("hooks_create_runtime_called_during_create_in_runtime_namespace", |t| {
        let mut h = HookBundle::new(t);
        let hook = h.host_hook("createRuntime");
        h.add("createRuntime", hook);
        let _c = t.create(&h.b);
        assert_ns(&h.entry("createRuntime"), &host_namespaces(), "createRuntime");
    });
}

#[test]
fn hooks_create_container_after_create_runtime() {
    // config.md createContainer: "The createContainer hooks MUST be called after the createRuntime hooks."
    spec_test("hooks_create_container_after_create_runtime", |t| {
        let mut h = HookBundle::new(t);
        let (cc, cr) = (h.host_hook("createContainer"), h.host_hook("createRuntime"));
        h.add("createContainer", cc).add("createRuntime", cr);
        let _c = t.create(&h.b);
        assert_eq!(h.labels(), ["createRuntime", "createContainer"]);
    });
}

#[test]
fn hooks_create_container_runs_in_container_namespace() {
    // config.md createContainer: "The createContainer hooks' path MUST resolve in the runtime namespace.
    // The createContainer hooks MUST be executed in the container namespace."
    spec_test("hooks_create_container_runs_in_container_namespace", |t| {
        let mut h = HookBundle::new(t);
        let hook = h.host_hook("createContainer");
        h.add("createContainer", hook);
        let c = t.create(&h.b);
        assert_ns(&h.entry("createContainer"), &ns_of(c.pid), "createContainer");
    });
}

#[test]
fn hooks_start_container_runs_in_container_on_start() {
    // config.md startContainer: "The startContainer hooks MUST be called before the user-specified process
    // is executed as part of the start operation"; "The startContainer hooks' path MUST resolve in the
    // container namespace. The startContainer hooks MUST be executed in the container namespace."
    spec_test("hooks_start_container_runs_in_container_on_start", |t| {
        assert!(!std::path::Path::new("/bin/strata-probe").exists(), "the hook path must exist only in the container");
        let mut h = HookBundle::new(t);
        let hook = h.container_hook("startContainer");
        h.add("startContainer", hook);
        h.b.probe(&["wait-signal"]);
        let c = t.create(&h.b);
        assert!(h.labels().is_empty(), "startContainer ran during create: {:?}", h.labels());
        c.start();
        c.wait_for_output("ready");
        assert_eq!(h.labels(), ["startContainer"]);
        assert_ns(&h.entry("startContainer"), &ns_of(c.pid), "startContainer");
        c.kill("KILL").ok();
    });
}

#[test]
fn hooks_start_container_before_user_process() {
    // config.md startContainer: "MUST be called before the user-specified process is executed".
    spec_test("hooks_start_container_before_user_process", |t| {
        let mut h = HookBundle::new(t);
        let hook = h.container_hook("startContainer");
        h.add("startContainer", hook);
        let c = t.start(&h.b);
        c.wait_success();
        assert_eq!(h.labels(), ["startContainer", "process"]);
    });
}

#[test]
fn hooks_poststart_after_user_process_executed() {
    // config.md poststart: "The poststart hooks MUST be called after the user-specified process is executed
    // but before the start operation returns."
    spec_test("hooks_poststart_after_user_process_executed", |t| {
        let mut h = HookBundle::new(t);
        let hook = h.host_hook("poststart");
        h.add("poststart", hook);
        h.b.probe(&["wait-signal"]);
        let c = t.create(&h.b);
        assert!(h.labels().is_empty(), "poststart ran during create");
        c.start();
        // start has returned: the hook has run, and by then the process was the user's program.
        let e = h.entry("poststart");
        assert_eq!(e["state_pid_cmdline"], json!(["/bin/strata-probe", "wait-signal"]), "{e}");
        c.kill("KILL").ok();
    });
}

#[test]
fn hooks_poststart_runs_in_runtime_namespace() {
    // config.md poststart: "The poststart hooks MUST be executed in the runtime namespace."
    spec_test("hooks_poststart_runs_in_runtime_namespace", |t| {
        let mut h = HookBundle::new(t);
        let hook = h.host_hook("poststart");
        h.add("poststart", hook);
        let c = t.start(&h.b);
        c.wait_success();
        assert_ns(&h.entry("poststart"), &host_namespaces(), "poststart");
    });
}

#[test]
fn hooks_poststop_called_by_delete() {
    // config.md poststop: "The poststop hooks MUST be called after the container is deleted but before the
    // delete operation returns."
    spec_test("hooks_poststop_called_by_delete", |t| {
        let mut h = HookBundle::new(t);
        let hook = h.host_hook("poststop");
        h.add("poststop", hook);
        let c = t.start(&h.b);
        c.wait_success();
        assert_eq!(h.labels(), ["process"], "poststop ran before delete");
        c.delete().ok();
        assert_eq!(h.labels(), ["process", "poststop"]);
    });
}

#[test]
fn hooks_poststop_runs_in_runtime_namespace() {
    // config.md poststop: "The poststop hooks MUST be executed in the runtime namespace."
    spec_test("hooks_poststop_runs_in_runtime_namespace", |t| {
        let mut h = HookBundle::new(t);
        let hook = h.host_hook("poststop");
        h.add("poststop", hook);
        let c = t.start(&h.b);
        c.wait_success();
        c.delete().ok();
        assert_ns(&h.entry("poststop"), &host_namespaces(), "poststop");
    });
}

#[test]
fn hooks_called_in_listed_order() {
    // config.md hooks: "Hooks MUST be called in the listed order."
    spec_test("hooks_called_in_listed_order", |t| {
        let mut h = HookBundle::new(t);
        for label in ["first", "second", "third"] {
            let hook = h.host_hook(label);
            h.add("createRuntime", hook);
        }
        let _c = t.create(&h.b);
        assert_eq!(h.labels(), ["first", "second", "third"]);
    });
}

#[test]
fn hooks_full_lifecycle_order() {
    // runtime.md lifecycle: prestart (3), createRuntime (4), createContainer (5), startContainer (7), the
    // user program (8), poststart (9), poststop (13).
    spec_test("hooks_full_lifecycle_order", |t| {
        let mut h = HookBundle::new(t);
        for kind in ["prestart", "createRuntime", "createContainer", "poststart", "poststop"] {
            let hook = h.host_hook(kind);
            h.add(kind, hook);
        }
        let sc = h.container_hook("startContainer");
        h.add("startContainer", sc);
        let c = t.start(&h.b);
        c.wait_success();
        c.delete().ok();
        let labels = h.labels();
        let pos = |l: &str| labels.iter().position(|x| x == l).or_fail(format!("{l} missing from {labels:?}"));
        let order = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
        for pair in order.windows(2) {
            assert!(pos(pair[0]) < pos(pair[1]), "{} ran after {}: {labels:?}", pair[0], pair[1]);
        }
        assert!(pos("startContainer") < pos("process"), "{labels:?}");
        assert!(pos("process") < pos("poststop"), "{labels:?}");
    });
}

/// The state a hook of `kind` got on stdin.
fn hook_state(t: &Test, kind: &str) -> (Value, String, i32, PathBuf) {
    let mut h = HookBundle::new(t);
    let hook = if kind == "startContainer" { h.container_hook(kind) } else { h.host_hook(kind) };
    h.add(kind, hook);
    h.b.set("/annotations", json!({"org.example.hooks": "yes"}));
    h.b.probe(&["wait-signal"]);
    let c = t.create(&h.b);
    c.start();
    c.wait_for_output("ready");
    c.kill("KILL").ok();
    c.wait();
    c.delete().ok();
    (h.entry(kind)["state"].clone(), c.id.clone(), c.pid, h.b.dir.clone())
}

fn assert_state(kind: &str, state: &Value, id: &str, bundle: &PathBuf) {
    assert_eq!(state["id"], json!(id), "{kind} state: {state}");
    assert_eq!(state["bundle"], json!(bundle), "{kind} state: {state}");
    assert!(state["ociVersion"].as_str().is_some_and(|v| !v.is_empty()), "{kind} state: {state}");
    assert!(state["status"].is_string(), "{kind} state: {state}");
    assert_eq!(state["annotations"]["org.example.hooks"], "yes", "{kind} state: {state}");
}

// config.md hooks: "The state of the container MUST be passed to hooks over stdin so that they may do
// work appropriate to the current state of the container." runtime.md state pid: "For hooks executed in
// the runtime namespace, it is the pid as seen by the runtime. For hooks executed in the container
// namespace, it is the pid as seen by the container."

#[test]
fn hooks_state_on_stdin_prestart() {
    spec_test("hooks_state_on_stdin_prestart", |t| {
        let (state, id, pid, bundle) = hook_state(t, "prestart");
        assert_state("prestart", &state, &id, &bundle);
        assert_eq!(state["pid"], pid, "{state}");
    });
}

#[test]
fn hooks_state_on_stdin_create_runtime() {
    spec_test("hooks_state_on_stdin_create_runtime", |t| {
        let (state, id, pid, bundle) = hook_state(t, "createRuntime");
        assert_state("createRuntime", &state, &id, &bundle);
        assert_eq!(state["pid"], pid, "{state}");
    });
}

#[test]
fn hooks_state_on_stdin_create_container() {
    spec_test("hooks_state_on_stdin_create_container", |t| {
        let (state, id, _pid, bundle) = hook_state(t, "createContainer");
        assert_state("createContainer", &state, &id, &bundle);
        assert_eq!(state["pid"], 1, "pid as seen by the container: {state}");
    });
}

#[test]
fn hooks_state_on_stdin_start_container() {
    spec_test("hooks_state_on_stdin_start_container", |t| {
        let (state, id, _pid, bundle) = hook_state(t, "startContainer");
        assert_state("startContainer", &state, &id, &bundle);
        assert_eq!(state["pid"], 1, "pid as seen by the container: {state}");
    });
}

#[test]
fn hooks_state_on_stdin_poststart() {
    spec_test("hooks_state_on_stdin_poststart", |t| {
        let (state, id, pid, bundle) = hook_state(t, "poststart");
        assert_state("poststart", &state, &id, &bundle);
        assert_eq!(state["pid"], pid, "{state}");
        assert_eq!(state["status"], "running", "{state}");
    });
}

#[test]
fn hooks_state_on_stdin_poststop() {
    spec_test("hooks_state_on_stdin_poststop", |t| {
        let (state, id, _pid, bundle) = hook_state(t, "poststop");
        assert_state("poststop", &state, &id, &bundle);
        assert_eq!(state["status"], "stopped", "{state}");
    });
}

#[test]
fn hooks_args_and_env_passed() {
    // config.md hooks: "args (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008
    // execv's argv"; "env (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008's
    // environ".
    spec_test("hooks_args_and_env_passed", |t| {
        let mut h = HookBundle::new(t);
        let hook = json!({
            "path": h.host_probe,
            "args": ["custom-argv0", "hook", "withenv", h.log],
            "env": ["HOOK_VAR=value", "OTHER=x y"]
        });
        h.add("createRuntime", hook);
        let _c = t.create(&h.b);
        let e = h.entry("withenv");
        assert_eq!(e["argv"], json!(["custom-argv0", "hook", "withenv", h.log]), "{e}");
        assert_eq!(e["env"], json!(["HOOK_VAR=value", "OTHER=x y"]), "{e}");
    });
}

/// A hook that exits 1 (busybox `false` from the host's busybox-static).
fn failing_hook() -> Value {
    json!({"path": "/bin/busybox", "args": ["false"]})
}

fn create_fails_with_failing_hook(t: &Test, kind: &str) {
    // runtime.md lifecycle: "If any <kind> hook fails, the runtime MUST generate an error, stop the
    // container, and continue the lifecycle at step 12."
    let mut h = HookBundle::new(t);
    h.add(kind, failing_hook());
    let (id, out) = t.try_create(&h.b, &[]);
    out.failed();
    let state = t.cmd(&["state", &id]).run();
    assert!(!state.success() || state.json()["status"] == "stopped", "container left {}: {state}", id);
    assert!(!h.labels().contains(&"process".to_string()), "the user program ran");
}

#[test]
fn hooks_prestart_failure_fails_create() {
    spec_test("hooks_prestart_failure_fails_create", |t| create_fails_with_failing_hook(t, "prestart"));
}

#[test]
fn hooks_create_runtime_failure_fails_create() {
    spec_test("hooks_create_runtime_failure_fails_create", |t| create_fails_with_failing_hook(t, "createRuntime"));
}

#[test]
fn hooks_create_container_failure_fails_create() {
    spec_test("hooks_create_container_failure_fails_create", |t| create_fails_with_failing_hook(t, "createContainer"));
}

#[test]
fn hooks_start_container_failure_fails_start() {
    // runtime.md lifecycle step 7: "If any startContainer hook fails, the runtime MUST generate an error,
    // stop the container, and continue the lifecycle at step 12."
    spec_test("hooks_start_container_failure_fails_start", |t| {
        let mut h = HookBundle::new(t);
        h.add("startContainer", json!({"path": "/bin/false"}));
        let c = t.create(&h.b);
        c.try_start().failed();
        assert!(!strata_conformance::container::process_alive(c.pid), "the container was not stopped");
        assert!(!h.labels().contains(&"process".to_string()), "the user program ran");
    });
}

#[test]
fn hooks_poststart_failure_is_only_a_warning() {
    // runtime.md lifecycle step 9: "If any poststart hook fails, the runtime MUST log a warning, but the
    // remaining hooks and lifecycle continue as if the hook had succeeded."
    spec_test("hooks_poststart_failure_is_only_a_warning", |t| {
        let mut h = HookBundle::new(t);
        h.add("poststart", failing_hook());
        let after = h.host_hook("after-failed-poststart");
        h.add("poststart", after);
        h.b.args(&["sleep", "60"]);
        let c = t.create(&h.b);
        c.try_start().ok();
        assert!(strata_conformance::container::process_alive(c.pid), "the container was stopped");
        assert!(h.labels().contains(&"after-failed-poststart".to_string()), "{:?}", h.labels());
    });
}

#[test]
fn hooks_prestart_failure_runs_poststop() {
    // runtime.md lifecycle step 3: on a prestart failure, "continue the lifecycle at step 12" -- step 13:
    // "The poststop hooks MUST be invoked by the runtime."
    spec_test("hooks_prestart_failure_runs_poststop", |t| {
        let mut h = HookBundle::new(t);
        h.add("prestart", failing_hook());
        let ps = h.host_hook("poststop");
        h.add("poststop", ps);
        t.try_create(&h.b, &[]).1.failed();
        assert_eq!(h.labels(), ["poststop"]);
    });
}

#[test]
fn hooks_poststop_failure_is_only_a_warning() {
    // runtime.md lifecycle step 13: "If any poststop hook fails, the runtime MUST log a warning, but the
    // remaining hooks and lifecycle continue as if the hook had succeeded."
    spec_test("hooks_poststop_failure_is_only_a_warning", |t| {
        let mut h = HookBundle::new(t);
        h.add("poststop", failing_hook());
        let after = h.host_hook("after-failed-poststop");
        h.add("poststop", after);
        let c = t.start(&h.b);
        c.wait_success();
        c.delete().ok();
        t.cmd(&["state", &c.id]).run().failed();
        assert!(h.labels().contains(&"after-failed-poststop".to_string()), "{:?}", h.labels());
    });
}

#[test]
fn hooks_timeout_fails_create() {
    // config.md hooks: "timeout (int, OPTIONAL) is the number of seconds before aborting the hook."
    spec_test("hooks_timeout_fails_create", |t| {
        let mut h = HookBundle::new(t);
        h.add("createRuntime", json!({"path": "/bin/busybox", "args": ["sleep", "30"], "timeout": 1}));
        let (id, out) = t.try_create(&h.b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn hooks_timeout_must_be_positive() {
    // config.md hooks: "If set, timeout MUST be greater than zero." (config.md: "Runtimes MUST generate an
    // error when invalid or unsupported values are encountered.")
    spec_test("hooks_timeout_must_be_positive", |t| {
        let mut h = HookBundle::new(t);
        let mut hook = h.host_hook("zero-timeout");
        hook["timeout"] = json!(0);
        h.add("createRuntime", hook);
        t.try_create(&h.b, &[]).1.failed();
    });
}

#[test]
fn hooks_path_must_be_absolute() {
    // config.md hooks: "This specification extends the IEEE standard in that path MUST be absolute."
    spec_test("hooks_path_must_be_absolute", |t| {
        let mut h = HookBundle::new(t);
        h.add("createRuntime", json!({"path": "bin/true"}));
        t.try_create(&h.b, &[]).1.failed();
    });
}

/// A host hook that writes `marker` to stderr and exits 3.
fn host_hook_failing_with(marker: &str) -> Value {
    json!({"path": "/bin/busybox", "args": ["sh", "-c", format!("echo {marker} >&2; exit 3")]})
}

/// Whether `text` names hook index `i` (runc: "error running hook #1: ...").
fn names_index(text: &str, i: usize) -> bool {
    [format!("#{i}"), format!("[{i}]"), format!("hook {i}"), format!("index {i}")]
        .iter()
        .any(|s| text.contains(s.as_str()))
}

/// Whether `text` gives exit status 3 (runc: "exit status 3").
fn names_status_3(text: &str) -> bool {
    ["exit status 3", "exit status: 3", "exit code 3", "exit code: 3"].iter().any(|s| text.contains(s))
}

#[track_caller]
fn assert_names_failed_hook(what: &str, text: &str, index: usize, marker: &str) {
    assert!(
        names_index(text, index) && names_status_3(text) && text.contains(marker),
        "{what}: the error does not name hook #{index}, its exit status 3 and its stderr {marker:?}: {text:?}"
    );
}

#[test]
fn hooks_prestart_failure_error_names_index_status_and_stderr() {
    // issue 16 item 15 (a guard: main passes it already).
    // runc: "error running hook #1: error running hook: exit status 3, stdout: ,
    // stderr: ..." -- the failing hook's index, how it ended and what it wrote to stderr.
    spec_test("hooks_prestart_failure_error_names_index_status_and_stderr", |t| {
        let mut h = HookBundle::new(t);
        let ok = h.host_hook("first");
        h.add("prestart", ok).add("prestart", host_hook_failing_with("prestart-hook-said-this"));
        let (id, out) = t.try_create(&h.b, &[]);
        out.failed();
        assert_names_failed_hook("create", &out.stderr, 1, "prestart-hook-said-this");
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn hooks_failure_under_run_is_reported() {
    // issue 16 item 15. `run` with a failing startContainer hook: run fails and says why (strata printed
    // nothing and exited 1). runc's init reports it on the container's stderr, which is run's.
    spec_test("hooks_failure_under_run_is_reported", |t| {
        let mut h = HookBundle::new(t);
        h.add(
            "startContainer",
            json!({"path": "/bin/sh", "args": ["sh", "-c", "echo run-hook-said-this >&2; exit 3"]}),
        );
        h.b.write();
        let id = t.new_id();
        let out = t.cmd(&["run", "--bundle"]).arg(&h.b.dir).arg(&id).run();
        out.failed();
        assert_names_failed_hook("run", &out.stderr, 0, "run-hook-said-this");
        assert!(!h.labels().contains(&"process".to_string()), "the user program ran");
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn hooks_create_runtime_failure_under_run_is_reported() {
    // issue 16 item 15 (a guard: main passes it already).
    // The same for a hook that fails during run's create phase.
    spec_test("hooks_create_runtime_failure_under_run_is_reported", |t| {
        let mut h = HookBundle::new(t);
        h.add("createRuntime", host_hook_failing_with("run-hook-said-this"));
        h.b.write();
        let id = t.new_id();
        let out = t.cmd(&["run", "--bundle"]).arg(&h.b.dir).arg(&id).run();
        out.failed();
        assert_names_failed_hook("run", &out.stderr, 0, "run-hook-said-this");
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn hooks_killed_by_a_signal_error_names_it() {
    // issue 16 item 15 (a guard: main passes it already).
    // A hook killed by a signal: runc (Go's exec) says "signal: terminated".
    spec_test("hooks_killed_by_a_signal_error_names_it", |t| {
        let mut h = HookBundle::new(t);
        h.add("createRuntime", json!({"path": "/bin/busybox", "args": ["sh", "-c", "kill -TERM $$"]}));
        let (id, out) = t.try_create(&h.b, &[]);
        out.failed();
        let said = out.stderr.to_lowercase();
        assert!(
            names_index(&said, 0)
                && said.contains("signal")
                && (said.contains("terminated") || said.contains("sigterm")),
            "the error does not say hook #0 was killed by SIGTERM: {out}"
        );
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn hooks_start_container_failure_error_names_index_status_and_stderr() {
    // issue 16 item 15 (a guard: main passes it already).
    // A failing startContainer hook: strata's start said "...: start" without the
    // cause. Whatever reports it (runc: the container's init, on its stderr, after start returned) says
    // which hook, how it ended and its stderr.
    spec_test("hooks_start_container_failure_error_names_index_status_and_stderr", |t| {
        let mut h = HookBundle::new(t);
        let ok = h.container_hook("first");
        h.add("startContainer", ok);
        h.add(
            "startContainer",
            json!({"path": "/bin/sh", "args": ["sh", "-c", "echo start-hook-said-this >&2; exit 3"]}),
        );
        let c = t.create(&h.b);
        let started = c.try_start();
        let exit = c.wait();
        assert!(!h.labels().contains(&"process".to_string()), "the user program ran");
        assert_ne!(exit, Exit::Code(0), "the container's init succeeded");
        let said = format!("{}{}", started.stderr, c.stderr());
        assert_names_failed_hook("start (runtime and container stderr)", &said, 1, "start-hook-said-this");
    });
}

#[test]
fn hooks_failure_error_names_the_hook_kind() {
    // issue 16 item 15 (a guard: main passes it already).
    // Beyond runc (which names only the index): the error names the kind of the
    // failing hook, for every kind that fails create.
    spec_test("hooks_failure_error_names_the_hook_kind", |t| {
        for kind in ["prestart", "createRuntime", "createContainer"] {
            let mut h = HookBundle::new(t);
            let hook = if kind == "createContainer" {
                json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]})
            } else {
                host_hook_failing_with("x")
            };
            h.add(kind, hook);
            let (_, out) = t.try_create(&h.b, &[]);
            out.failed();
            assert!(out.stderr.contains(kind), "the error does not name the {kind} hook: {out}");
        }
    });
}

#[test]
fn hooks_in_the_runtime_namespace_without_env_inherit_the_runtimes_environment() {
    // issue 16 item 27. config.md hooks env is OPTIONAL; runc runs a hook without "env" with Go's
    // exec.Cmd{Env: nil}, i.e. with the environment of the runc process that runs it (create for
    // prestart, createRuntime and -- in runc -- poststart, start for poststart, delete for poststop).
    spec_test("hooks_in_the_runtime_namespace_without_env_inherit_the_runtimes_environment", |t| {
        let mut h = HookBundle::new(t);
        for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
            let hook = h.host_hook(kind);
            h.add(kind, hook);
        }
        h.b.args(&["true"]);
        let c = t.create_via(&h.b, |cmd| cmd.env("STRATA_HOOK_MARK", "from-create"));
        c.cmd(&["start"]).env("STRATA_HOOK_MARK", "from-start").run().ok();
        c.wait_success();
        c.cmd(&["delete"]).env("STRATA_HOOK_MARK", "from-delete").run().ok();
        for kind in ["prestart", "createRuntime", "poststart", "poststop"] {
            let e = h.entry(kind);
            let env = e["env"].as_array().or_fail(format!("env of {kind}"));
            let marked = env.iter().any(|v| v.as_str().is_some_and(|s| s.starts_with("STRATA_HOOK_MARK=from-")));
            let path = env.iter().any(|v| v.as_str().is_some_and(|s| s.starts_with("PATH=")));
            assert!(marked && path, "the {kind} hook did not get the runtime's environment: {env:?}");
        }
        let poststop = h.entry("poststop");
        assert!(
            poststop["env"].as_array().is_some_and(|a| a.iter().any(|v| v == "STRATA_HOOK_MARK=from-delete")),
            "poststop did not get delete's environment: {}",
            poststop["env"]
        );
    });
}

#[test]
fn hooks_in_the_container_without_env_get_the_process_environment() {
    // issue 16 item 27. runc runs createContainer and startContainer hooks from its init, whose
    // environment is process.env (libcontainer's init clears its own and loads process.env before
    // anything else): a hook without "env" gets exactly that, not the runtime's.
    spec_test("hooks_in_the_container_without_env_get_the_process_environment", |t| {
        let mut h = HookBundle::new(t);
        let env = json!(["PATH=/usr/bin:/bin", "HOME=/root", "FROM_PROCESS_ENV=yes"]);
        h.b.set("/process/env", env.clone());
        // createContainer's path resolves in the runtime namespace, startContainer's in the container.
        let (cc, sc) = (h.host_hook("createContainer"), h.container_hook("startContainer"));
        h.add("createContainer", cc).add("startContainer", sc);
        let c = t.create_via(&h.b, |cmd| cmd.env("STRATA_HOOK_MARK", "from-create"));
        c.cmd(&["start"]).env("STRATA_HOOK_MARK", "from-start").run().ok();
        c.wait_success();
        for kind in ["createContainer", "startContainer"] {
            let e = h.entry(kind);
            let mut got: Vec<&str> = e["env"].as_array().or_fail("env").iter().filter_map(Value::as_str).collect();
            got.sort();
            assert_eq!(got, ["FROM_PROCESS_ENV=yes", "HOME=/root", "PATH=/usr/bin:/bin"], "{kind} hook env");
        }
    });
}
