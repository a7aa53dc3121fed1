//! The signal state a container's processes and hooks start with: every signal at SIG_DFL and an
//! empty mask, whatever the runtime's caller ignored or blocked (nohup, a service manager's
//! `IgnoreSIGPIPE=yes`, a Python parent) and whatever the runtime itself set. Ignored signals and
//! the mask survive execve, and a POSIX shell cannot trap a signal that was ignored at its start.

use strata_conformance::*;

/// A caller as a service manager or nohup leaves it: HUP, INT, PIPE and XFSZ ignored, TERM and
/// USR1 blocked (coreutils' env sets that state, then execs the runtime).
const NOISY_CALLER: &[&str] = &[
    "env",
    "--ignore-signal=HUP",
    "--ignore-signal=INT",
    "--ignore-signal=PIPE",
    "--ignore-signal=XFSZ",
    "--block-signal=TERM",
    "--block-signal=USR1",
];

/// What busybox grep, exec'd directly as the process (no shell in between), finds in its own
/// /proc/self/status.
const SHOW_SIGNALS: &[&str] = &["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"];

/// The SigIgn and SigBlk masks in `status` (lines of /proc/PID/status).
fn signal_masks(status: &str) -> (String, String) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} line in {status:?}"))
    };
    (field("SigIgn:"), field("SigBlk:"))
}

#[track_caller]
fn assert_clean(what: &str, status: &str) {
    let (ignored, blocked) = signal_masks(status);
    assert_eq!(
        (ignored.as_str(), blocked.as_str()),
        ("0000000000000000", "0000000000000000"),
        "{what}: SigIgn {ignored}, SigBlk {blocked} (caller ignored HUP INT PIPE XFSZ, blocked TERM USR1); status: {status:?}"
    );
}

#[test]
fn signals_clean_for_run() {
    spec_test("signals_clean_for_run", |t| {
        let mut b = t.bundle();
        b.args(SHOW_SIGNALS);
        b.write();
        let id = t.new_id();
        let out = t.cmd(&["run", "--bundle"]).arg(&b.dir).arg(&id).via(NOISY_CALLER).run();
        out.ok();
        assert_clean("run", &out.stdout);
    });
}

#[test]
fn signals_clean_for_create_and_start() {
    spec_test("signals_clean_for_create_and_start", |t| {
        let mut b = t.bundle();
        b.args(SHOW_SIGNALS);
        let c = t.create_via(&b, |cmd| cmd.via(NOISY_CALLER));
        c.cmd(&["start"]).via(NOISY_CALLER).run().ok();
        c.wait_success();
        assert_clean("create + start", &c.stdout());
    });
}

#[test]
fn signals_clean_for_exec() {
    spec_test("signals_clean_for_exec", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "60"]);
        let c = t.start(&b);
        let out = c.cmd(&["exec"]).args(SHOW_SIGNALS).via(NOISY_CALLER).run();
        out.ok();
        assert_clean("exec", &out.stdout);
        c.kill("KILL").ok();
    });
}

#[test]
fn signals_pipeline_producer_dies_quietly() {
    // `yes` writes into a pipe whose reader (`head -n1`) has gone: with SIGPIPE at SIG_DFL it dies
    // of it silently; with SIGPIPE ignored it gets EPIPE and prints "Broken pipe".
    spec_test("signals_pipeline_producer_dies_quietly", |t| {
        let mut b = t.bundle();
        b.sh("yes | head -n1");
        let c = t.create_via(&b, |cmd| cmd.via(NOISY_CALLER));
        c.start();
        c.wait_success();
        assert_eq!(c.stdout(), "y\n", "stderr: {:?}", c.stderr());
        assert_eq!(c.stderr(), "", "the producer complained instead of dying of SIGPIPE");
    });
}

#[test]
fn signals_trap_works_for_signal_the_caller_ignored() {
    // A shell started with HUP ignored could not trap it (POSIX): a reload-on-HUP entrypoint would
    // never reload when the engine above the runtime ignores HUP.
    spec_test("signals_trap_works_for_signal_the_caller_ignored", |t| {
        let mut b = t.bundle();
        b.sh("trap 'echo got-hup; exit 0' HUP; echo ready; while :; do sleep 0.05; done");
        let c = t.create_via(&b, |cmd| cmd.via(NOISY_CALLER));
        c.cmd(&["start"]).via(NOISY_CALLER).run().ok();
        c.wait_for_output("ready");
        c.kill("HUP").ok();
        c.wait_success();
        assert_eq!(c.stdout(), "ready\ngot-hup\n", "stderr: {:?}", c.stderr());
    });
}

#[test]
fn signals_clean_for_hooks() {
    // Hooks are user programs too: they start as the container's processes do.
    spec_test("signals_clean_for_hooks", |t| {
        let mut b = t.bundle();
        b.args(&["true"]);
        let mut hooks = serde_json::Map::new();
        for kind in ["createRuntime", "poststart", "poststop"] {
            let out = t.path(&format!("{kind}.status"));
            let script = format!("grep -E '^Sig(Ign|Blk):' /proc/self/status > {}", out.display());
            hooks.insert(kind.to_string(), json!([{ "path": "/bin/sh", "args": ["sh", "-c", script] }]));
        }
        b.set("/hooks", Value::Object(hooks));
        let c = t.create_via(&b, |cmd| cmd.via(NOISY_CALLER));
        c.cmd(&["start"]).via(NOISY_CALLER).run().ok();
        c.wait_success();
        c.cmd(&["delete"]).via(NOISY_CALLER).run().ok();
        for kind in ["createRuntime", "poststart", "poststop"] {
            let status = std::fs::read_to_string(t.path(&format!("{kind}.status")))
                .unwrap_or_else(|e| panic!("the {kind} hook left no report: {e}"));
            assert_clean(&format!("{kind} hook"), &status);
        }
    });
}
