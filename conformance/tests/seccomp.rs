//! config-linux.md seccomp.

use strata_conformance::*;

/// A profile that allows everything except mkdir/mkdirat, which fail with `errno`.
fn deny_mkdir(errno: Option<u32>) -> Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"});
    if let Some(e) = errno {
        rule["errnoRet"] = json!(e);
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [rule]
    })
}

fn mkdir_result(t: &Test, seccomp: Option<Value>) -> Value {
    let mut b = t.bundle();
    if let Some(s) = seccomp {
        b.set("/linux/seccomp", s);
    }
    b.probe(&["access", "mkdir:/tmp/seccomp-test"]);
    b.writable_root();
    t.run_probe(&b)["mkdir:/tmp/seccomp-test"].clone()
}

#[test]
fn seccomp_filter_installed() {
    // config-linux.md: "Seccomp provides application sandboxing mechanism in the Linux kernel." A
    // configured filter puts the process in seccomp mode 2 (filter).
    spec_test("seccomp_filter_installed", |t| {
        let mut b = t.bundle();
        b.set("/linux/seccomp", deny_mkdir(None));
        b.probe(&["seccomp"]);
        assert_eq!(t.run_probe(&b), "2");
    });
}

#[test]
fn seccomp_absent_means_no_filter() {
    // config-linux.md seccomp is OPTIONAL: without it no filter is installed.
    spec_test("seccomp_absent_means_no_filter", |t| {
        let mut b = t.bundle();
        b.remove("/linux/seccomp");
        b.probe(&["seccomp"]);
        assert_eq!(t.run_probe(&b), "0");
    });
}

#[test]
fn seccomp_errno_ret_applied() {
    // config-linux.md seccomp syscalls: "errnoRet (uint, OPTIONAL) - the errno return code to use."
    spec_test("seccomp_errno_ret_applied", |t| {
        let v = mkdir_result(t, Some(deny_mkdir(Some(99))));
        assert_eq!(v["errno"], 99, "{v}");
    });
}

#[test]
fn seccomp_errno_default_is_eperm() {
    // config-linux.md seccomp: "Some actions like SCMP_ACT_ERRNO and SCMP_ACT_TRACE allow to specify the
    // errno code to return. When the action doesn't support an errno, the runtime MUST print and error and
    // fail. If not specified then its default value is EPERM."
    spec_test("seccomp_errno_default_is_eperm", |t| {
        let v = mkdir_result(t, Some(deny_mkdir(None)));
        assert_eq!(v["errno"], 1, "{v}");
    });
}

#[test]
fn seccomp_other_syscalls_allowed() {
    // config-linux.md seccomp: "defaultAction (string, REQUIRED) - the default action for seccomp."
    spec_test("seccomp_other_syscalls_allowed", |t| {
        let mut b = t.bundle();
        b.set("/linux/seccomp", deny_mkdir(Some(99)));
        b.writable_root();
        b.probe(&["access", "create:/tmp", "read:/etc/passwd"]);
        let v = t.run_probe(&b);
        assert_eq!(v["create:/tmp"]["ok"], true, "{v}");
        assert_eq!(v["read:/etc/passwd"]["ok"], true, "{v}");
    });
}

#[test]
fn seccomp_invalid_action_fails() {
    // config.md: "Runtimes MUST generate an error when invalid or unsupported values are encountered."
    spec_test("seccomp_invalid_action_fails", |t| {
        let mut b = t.bundle();
        let mut s = deny_mkdir(None);
        s["syscalls"][0]["action"] = json!("SCMP_ACT_NO_SUCH_ACTION");
        b.set("/linux/seccomp", s);
        t.try_create(&b, &[]).1.failed();
    });
}

#[test]
fn seccomp_notify_listener_reaches_the_agent() {
    // config-linux.md seccomp: "listenerPath (string, OPTIONAL) - specifies the path of UNIX domain
    // socket over which the runtime will send the container process state data structure when the
    // SCMP_ACT_NOTIFY action is used. This socket MUST use AF_UNIX domain and SOCK_STREAM type. The
    // runtime MUST send exactly one container process state per connection." And runtime.md: the
    // state carries "fds" naming the listener ("seccompFd") and the "metadata" (listenerMetadata).
    spec_test("seccomp_notify_listener_reaches_the_agent", |t| {
        let agent_path = t.path("agent.sock");
        let mut agent = ConsoleSocket::listen(&agent_path);
        let mut b = t.bundle();
        b.set(
            "/linux/seccomp",
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "listenerPath": agent_path,
                "listenerMetadata": "conformance-agent",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
            }),
        );
        b.probe(&["access", "mkdir:/tmp/notify-test"]);
        b.writable_root();
        let c = t.create(&b);
        let got = agent.receive();
        let state: Value = serde_json::from_str(&got.payload).or_fail(format!("agent payload {:?}", got.payload));
        assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
        assert_eq!(state["metadata"], "conformance-agent", "{state}");
        assert_eq!(state["pid"], c.pid, "{state}");
        assert_eq!(state["state"]["id"], c.id, "{state}");
        // An agent that goes away: the notified calls fail with ENOSYS, everything else works.
        drop(got.master);
        c.start();
        c.wait_success();
        assert_eq!(c.json()["mkdir:/tmp/notify-test"]["errno"], 38, "{}", c.stdout());
    });
}
