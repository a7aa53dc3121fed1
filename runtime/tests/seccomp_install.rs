//! Privileged: install compiled filters in real processes and watch real syscalls.
//!
//! Each scenario runs in a fresh copy of this test binary (`--exact scenario_child`, selected by
//! `STRATA_SECCOMP_SCENARIO`), because a seccomp filter cannot be removed once installed. The
//! child prints `@result <name> <errno or ok>` lines; the parent checks them and the exit status.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use oci_spec::runtime::{LinuxSeccomp, State};
use strata::security::seccomp::{SeccompError, compile, listener_state, receive_from_runtime, send_to_listener};

const SCENARIO: &str = "STRATA_SECCOMP_SCENARIO";
const LISTENER: &str = "STRATA_SECCOMP_LISTENER";

fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "privileged seccomp tests must run as root (CI runs them as root)");
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("test profile parses")
}

fn spawn(scenario: &str, extra_env: &[(&str, &str)]) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command
        .args(["--exact", "scenario_child", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    command.spawn().expect("spawn scenario child")
}

fn run(scenario: &str) -> Output {
    spawn(scenario, &[]).wait_with_output().expect("scenario child runs")
}

fn results(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        // The harness prints "test scenario_child ... " without a newline before the first line.
        .filter_map(|line| line.split_once("@result ").map(|(_, rest)| rest.to_owned()))
        .collect()
}

fn errno_of(result: std::io::Result<impl Sized>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.raw_os_error().map_or_else(|| error.to_string(), |errno| errno.to_string()),
    }
}

fn report(name: &str, value: impl std::fmt::Display) {
    println!("@result {name} {value}");
}

/// Entry point of the child copies; does nothing in a normal test run.
#[test]
fn scenario_child() {
    let Ok(scenario) = std::env::var(SCENARIO) else { return };
    let tmp = std::env::temp_dir().join(format!("strata-seccomp-{}", std::process::id()));
    match scenario.as_str() {
        "errno" => {
            let filter = compile(&profile(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":42},
                {"names":["kill"],"action":"SCMP_ACT_ERRNO","errnoRet":43,"args":[{"index":0,"value":999999,"op":"SCMP_CMP_EQ"}]},
                {"names":["lseek"],"action":"SCMP_ACT_ERRNO","args":[{"index":2,"value":255,"valueTwo":2,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
            ))
            .expect("compiles");
            assert!(filter.install().expect("installs").is_none());
            report("mkdir", errno_of(std::fs::create_dir(&tmp)));
            let kill = |pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGCONT);
            report("kill-999999", errno_of(kill(999_999).map_err(std::io::Error::from)));
            report("kill-999998", errno_of(kill(999_998).map_err(std::io::Error::from)));
            use std::io::Seek;
            let mut file = std::fs::File::open("/proc/self/status").expect("open a file");
            report("lseek-end", errno_of(file.seek(std::io::SeekFrom::End(0))));
            report("lseek-start", errno_of(file.seek(std::io::SeekFrom::Start(0))));
            report("read-works", errno_of(std::fs::read("/proc/self/status")));
        }
        "kill-process" => {
            let filter = compile(&profile(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
            ))
            .expect("compiles");
            filter.install().expect("installs");
            report("before", "ok");
            let _ = nix::unistd::getppid();
            report("after", "still alive");
        }
        "trap" => {
            let filter = compile(&profile(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_TRAP"}]}"#,
            ))
            .expect("compiles");
            filter.install().expect("installs");
            let _ = nix::unistd::getppid();
            report("after", "still alive");
        }
        "needs-privilege" => {
            let filter = compile(&profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#)).expect("compiles");
            caps::drop(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).expect("drop CAP_SYS_ADMIN");
            let refused = filter.install();
            report("without-nnp", matches!(refused, Err(SeccompError::InstallPermission(_))));
            nix::sys::prctl::set_no_new_privs().expect("set no_new_privs");
            report("with-nnp", filter.install().is_ok());
        }
        "notify" => {
            let path = std::env::var(LISTENER).expect("listener path");
            let filter = compile(&profile(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"{path}","listenerMetadata":"probe-meta",
                "syscalls":[{{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"}}]}}"#
            )))
            .expect("compiles");
            let listener = filter.install().expect("installs").expect("a listener fd");
            let mut state = State::default();
            state.set_version("1.2.0".to_owned());
            state.set_id("probe".to_owned());
            state.set_pid(Some(std::process::id() as i32));
            let process_state = listener_state(&state, std::process::id() as i32, filter.listener_metadata());
            let path = filter.listener_path().expect("listener path");
            send_to_listener(std::path::Path::new(path), &process_state, std::os::fd::AsFd::as_fd(&listener))
                .expect("send to the agent");
            drop(listener);
            // Blocks until the agent sees the notification and closes its copy: then ENOSYS.
            report("mkdir", errno_of(std::fs::create_dir(&tmp)));
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn errno_rules_and_argument_conditions_act_on_real_syscalls() {
    require_root();
    let output = run("errno");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        results(&output),
        [
            "mkdir 42",
            "kill-999999 43",
            "kill-999998 3", // ESRCH from the kernel: the filter let it through
            "lseek-end 1",
            "lseek-start ok",
            "read-works ok"
        ]
    );
}

#[test]
fn kill_process_and_trap_end_the_process_with_sigsys() {
    require_root();
    for scenario in ["kill-process", "trap"] {
        let output = run(scenario);
        assert_eq!(output.status.signal(), Some(libc_sigsys()), "{scenario}: {output:?}");
        assert!(!results(&output).iter().any(|line| line.starts_with("after")), "{scenario}: {output:?}");
    }
}

#[test]
fn install_without_no_new_privs_needs_cap_sys_admin() {
    require_root();
    let output = run("needs-privilege");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(results(&output), ["without-nnp true", "with-nnp true"]);
}

#[test]
fn notify_listener_reaches_the_agent_with_the_process_state() {
    require_root();
    let dir = std::env::temp_dir().join(format!("strata-seccomp-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("agent dir");
    let socket = dir.join("agent.sock");
    let agent = UnixListener::bind(&socket).expect("agent socket");
    let child = spawn("notify", &[(LISTENER, socket.to_str().expect("utf-8 path"))]);

    let (mut connection, _) = agent.accept().expect("the runtime connects");
    let (state, mut fds) = receive_from_runtime(&mut connection).expect("receive the state and the listener");
    assert_eq!(state.fds(), &["seccompFd".to_owned()]);
    assert_eq!(state.metadata().as_deref(), Some("probe-meta"));
    assert_eq!(state.state().id(), "probe");
    assert_eq!(fds.len(), 1, "exactly one fd in SCM_RIGHTS");
    let seccomp_fd = fds.remove(0);

    // The child's mkdir is now pending in the kernel: the listener becomes readable.
    let mut poll = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&seccomp_fd), nix::poll::PollFlags::POLLIN)];
    let ready = nix::poll::poll(&mut poll, 10_000u16).expect("poll the listener");
    assert_eq!(ready, 1, "no notification arrived within 10 s");
    assert!(poll[0].revents().is_some_and(|events| events.contains(nix::poll::PollFlags::POLLIN)));
    // An agent that goes away makes the pending syscall fail with ENOSYS.
    drop(seccomp_fd);
    let output = child.wait_with_output().expect("child finishes");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(results(&output), ["mkdir 38"]);
    std::fs::remove_dir_all(&dir).expect("clean agent dir");
}

fn libc_sigsys() -> i32 {
    nix::sys::signal::Signal::SIGSYS as i32
}
