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

/// Whether a seccomp notification is waiting on `listener` (POLLIN; POLLHUP only says that no task uses
/// the filter any more).
fn notification_pending(listener: &std::fs::File) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::from(10u16)).or_fail("poll the seccomp listener") == 0 {
        return false;
    }
    fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// The container's lifecycle with an agent that never answers: a profile notifying on getcwd, a process
/// (the probe's `pid` report) that never calls it. Any notification is the runtime's own call after it
/// installed the filter; the agent then goes away (the call fails with ENOSYS) and the test fails.
fn runtime_getcwd_never_notified(t: &Test, no_new_privileges: bool) {
    let agent_path = t.socket_path();
    let mut agent = ConsoleSocket::listen(&agent_path);
    let mut b = t.bundle();
    b.set("/process/noNewPrivileges", json!(no_new_privileges));
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "listenerPath": agent_path,
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    b.probe(&["pid"]);
    b.write();
    let id = t.new_id();
    let (out, err) = (t.path("container.out"), t.path("container.err"));
    let (mut cmd, text) = t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(&id).command();
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).or_fail("create container.out"))
        .stderr(std::fs::File::create(&err).or_fail("create container.err"));
    let mut create = cmd.spawn().or_fail(format!("spawn `{text}`"));
    let limit = std::time::Duration::from_secs(30);
    let began = std::time::Instant::now();
    let mut listener = None;
    let mut notified: Option<&str> = None;
    let created = loop {
        if listener.is_none() {
            listener = agent.try_receive().map(|r| r.master);
        }
        if notified.is_none() && listener.as_ref().is_some_and(notification_pending) {
            notified = Some("during create");
            listener = None;
        }
        if let Some(status) = create.try_wait().or_fail(format!("wait for `{text}`")) {
            break status;
        }
        assert!(began.elapsed() < limit, "`{text}` still runs after {limit:?} (notified: {notified:?})");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(created.success() || notified.is_some(), "`{text}` failed: {}", read(&err));
    if created.success() {
        let pid = t.cmd(&["state", &id]).run().json()["pid"].as_i64().or_fail("pid") as i32;
        let started = t.cmd(&["start", &id]).run();
        while strata_conformance::container::process_alive(pid) {
            if notified.is_none() && listener.as_ref().is_some_and(notification_pending) {
                notified = Some("after start, before the process ran");
                listener = None;
            }
            assert!(began.elapsed() < limit, "the container still runs after {limit:?}; start: {started}");
        }
        strata_conformance::container::wait_exit(pid, &id);
        assert!(
            notified.is_some() || read(&out).contains("\"pid\":1"),
            "{started}; stdout: {:?}; stderr: {:?}",
            read(&out),
            read(&err)
        );
    }
    if let Some(when) = notified {
        panic!(
            "the seccomp agent was notified of a getcwd {when}: the runtime called it under the container's filter \
             (stdout: {:?}, stderr: {:?})",
            read(&out),
            read(&err)
        );
    }
}

#[test]
fn seccomp_notify_agent_never_sees_the_runtimes_getcwd() {
    // issue 16 item 14. config-linux.md seccomp SCMP_ACT_NOTIFY: the agent decides the container's calls,
    // not the runtime's. With noNewPrivileges (the filter is installed last, right before execve) the
    // runtime's own working-directory check (CVE-2024-21626) must not reach the agent.
    spec_test("seccomp_notify_agent_never_sees_the_runtimes_getcwd", |t| runtime_getcwd_never_notified(t, true));
}

#[test]
fn seccomp_notify_agent_never_sees_the_runtimes_getcwd_without_no_new_privileges() {
    // issue 16 item 14, without noNewPrivileges (Docker's and podman's default): the filter must still be
    // installed after the runtime's last getcwd.
    spec_test("seccomp_notify_agent_never_sees_the_runtimes_getcwd_without_no_new_privileges", |t| {
        runtime_getcwd_never_notified(t, false)
    });
}
