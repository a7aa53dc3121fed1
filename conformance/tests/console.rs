//! config.md process.terminal and consoleSize, config-linux.md /dev/console, and the --console-socket
//! contract (docs/clients.md §3).

use std::os::fd::AsFd;

use strata_conformance::console::TerminalReader;
use strata_conformance::container::wait_child;
use strata_conformance::terminal::{LIMIT, UserTerminal};
use strata_conformance::*;

/// Runs the probe with these arguments on a terminal and returns what it printed there, plus the
/// payload of the console-socket message.
fn on_terminal(t: &Test, b: &mut Bundle, args: &[&str]) -> (Value, String) {
    b.set("/process/terminal", json!(true));
    b.probe(args);
    let mut sock = ConsoleSocket::listen(&t.socket_path());
    let path = sock.path.to_str().or_fail("socket path").to_string();
    let c = t.create_with(b, &["--console-socket", &path]);
    let received = sock.receive();
    let mut reader = TerminalReader::start(received.master);
    c.start();
    c.wait_success();
    let out = reader.output();
    let line = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    (serde_json::from_str(line).or_fail(format!("terminal output is not JSON: {out:?}")), received.payload)
}

#[test]
fn terminal_master_sent_over_console_socket() {
    // docs/clients.md §3: the runtime connects to --console-socket (SOCK_STREAM unix) and sends one
    // message, payload /dev/ptmx, with the pty master as SCM_RIGHTS.
    spec_test("terminal_master_sent_over_console_socket", |t| {
        let mut b = t.bundle();
        b.set("/process/terminal", json!(true));
        b.args(&["true"]);
        let mut sock = ConsoleSocket::listen(&t.socket_path());
        let path = sock.path.to_str().or_fail("socket path").to_string();
        let c = t.create_with(&b, &["--console-socket", &path]);
        let received = sock.receive();
        assert!(nix::unistd::isatty(received.master.as_fd()).or_fail("isatty"), "the descriptor is not a terminal");
        assert!(received.payload.contains("ptmx"), "payload {:?}", received.payload);
        let _reader = TerminalReader::start(received.master);
        c.start();
        c.wait_success();
    });
}

#[test]
fn terminal_is_the_process_stdio() {
    // config.md process.terminal: "if set to true on Linux a pseudoterminal pair is allocated for the
    // process and the pseudoterminal pty is duplicated on the process's standard streams."
    spec_test("terminal_is_the_process_stdio", |t| {
        let mut b = t.bundle();
        let (v, _) = on_terminal(t, &mut b, &["tty"]);
        assert_eq!(
            (v["stdin"].as_bool(), v["stdout"].as_bool(), v["stderr"].as_bool()),
            (Some(true), Some(true), Some(true)),
            "{v}"
        );
        assert!(v["ttyname"].as_str().is_some_and(|n| n.starts_with("/dev/pts/")), "{v}");
    });
}

#[test]
fn terminal_is_the_controlling_terminal() {
    // A terminal "attached to the process" is its controlling terminal (job control works: the process
    // leads the terminal's foreground process group).
    spec_test("terminal_is_the_controlling_terminal", |t| {
        let mut b = t.bundle();
        let (v, _) = on_terminal(t, &mut b, &["tty"]);
        assert_eq!(v["ctty_pgrp"], 1, "{v}");
    });
}

#[test]
fn terminal_console_size_applied() {
    // config.md: "consoleSize (object, OPTIONAL) specifies the console size in characters of the
    // terminal."
    spec_test("terminal_console_size_applied", |t| {
        let mut b = t.bundle();
        b.set("/process/consoleSize", json!({"height": 30, "width": 100}));
        let (v, _) = on_terminal(t, &mut b, &["tty"]);
        assert_eq!(v["winsize"], json!({"rows": 30, "cols": 100}), "{v}");
    });
}

#[test]
fn terminal_console_size_ignored_without_terminal() {
    // config.md: "Runtimes MUST ignore consoleSize if terminal is false or unset."
    spec_test("terminal_console_size_ignored_without_terminal", |t| {
        let mut b = t.bundle();
        b.set("/process/terminal", json!(false));
        b.set("/process/consoleSize", json!({"height": 30, "width": 100}));
        b.probe(&["tty"]);
        let v = t.run_probe(&b);
        assert_eq!(v["stdout"], false, "{v}");
    });
}

#[test]
fn terminal_dev_console_is_the_pty() {
    // config-linux.md default devices: "/dev/console is set up if terminal is enabled in the config by
    // bind mounting the pseudoterminal pty to /dev/console."
    spec_test("terminal_dev_console_is_the_pty", |t| {
        let mut b = t.bundle();
        b.set("/process/terminal", json!(true));
        b.sh("/bin/strata-probe devices /dev/console $(tty)");
        let mut sock = ConsoleSocket::listen(&t.socket_path());
        let path = sock.path.to_str().or_fail("socket path").to_string();
        let c = t.create_with(&b, &["--console-socket", &path]);
        let mut reader = TerminalReader::start(sock.receive().master);
        c.start();
        c.wait_success();
        let out = reader.output();
        let v: Value = serde_json::from_str(out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(""))
            .or_fail(format!("output: {out:?}"));
        let obj = v.as_object().or_fail("devices report");
        let console = &v["/dev/console"];
        let pts =
            obj.iter().find(|(k, _)| k.starts_with("/dev/pts/")).map(|(_, v)| v).or_fail(format!("tty report: {v}"));
        assert_eq!(console["type"], "c", "{v}");
        assert_eq!((&console["major"], &console["minor"]), (&pts["major"], &pts["minor"]), "{v}");
    });
}

#[test]
fn terminal_without_console_socket_fails() {
    // runc create: "--console-socket ... required when terminal is true" (the pty master has nowhere else
    // to go in detached mode).
    spec_test("terminal_without_console_socket_fails", |t| {
        let mut b = t.bundle();
        b.set("/process/terminal", json!(true));
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

/// `strata run` (or `exec -t`) in the foreground on `term`, with a terminal and no console socket.
fn spawn_on(t: &Test, term: &UserTerminal, args: &[&str]) -> (std::process::Child, String) {
    let (mut cmd, command) = t.cmd(args).command();
    term.attach(&mut cmd);
    (cmd.spawn().or_fail(format!("spawn `{command}`")), command)
}

/// `run` of bundle `b` (with a terminal) in the foreground on `term`; returns the runtime process,
/// its command line and the container id.
fn run_on(t: &Test, term: &UserTerminal, b: &mut Bundle) -> (std::process::Child, String, String) {
    b.set("/process/terminal", json!(true));
    b.write();
    let id = t.new_id();
    let bundle = b.dir.to_str().or_fail("bundle path").to_string();
    let (child, command) = spawn_on(t, term, &["run", "--bundle", &bundle, &id]);
    (child, command, id)
}

#[test]
fn terminal_relayed_in_foreground_run() {
    // runc run without --console-socket and without --detach: the container's pty is relayed to the
    // runtime's own terminal (as under `script -qc "runc run ..."`), with its window size; the
    // process's exit code is the runtime's.
    spec_test("terminal_relayed_in_foreground_run", |t| {
        let mut b = t.bundle();
        b.args(&["sh", "-c", "tty; stty size; read line; echo got-$line; exit 3"]);
        let mut term = UserTerminal::new(30, 100);
        let (mut child, command, id) = run_on(t, &term, &mut b);
        term.read_until("30 100");
        term.type_in("abc\n");
        let status = wait_child(&mut child, &command, LIMIT, "killed it");
        assert!(term.is_cooked(), "the runtime left our terminal in raw mode");
        let out = term.finish();
        assert_eq!(status.code(), Some(3), "{command}: {out}");
        assert!(out.contains("/dev/pts/"), "the process's stdin is not a terminal: {out:?}");
        assert!(out.contains("got-abc"), "what was typed did not reach the process: {out:?}");
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn terminal_relay_follows_window_resizes() {
    // SIGWINCH to the runtime resizes the container's terminal to ours (runc does the same).
    spec_test("terminal_relay_follows_window_resizes", |t| {
        let mut b = t.bundle();
        b.args(&["sh", "-c", "trap 'exit 7' TERM; while :; do stty size; sleep 0.1; done"]);
        let mut term = UserTerminal::new(30, 100);
        let (mut child, command, _id) = run_on(t, &term, &mut b);
        term.read_until("30 100");
        term.resize(20, 80);
        let runtime = nix::unistd::Pid::from_raw(i32::try_from(child.id()).or_fail("pid"));
        nix::sys::signal::kill(runtime, nix::sys::signal::Signal::SIGWINCH).or_fail("SIGWINCH the runtime");
        term.read_until("20 80");
        // Other signals still go to the process (pid 1 of its namespace: it exits by its trap).
        nix::sys::signal::kill(runtime, nix::sys::signal::Signal::SIGTERM).or_fail("SIGTERM the runtime");
        let status = wait_child(&mut child, &command, LIMIT, "killed it");
        assert_eq!(status.code(), Some(7), "{command}: {}", term.finish());
    });
}

#[test]
fn terminal_relayed_for_exec_tty() {
    // runc exec -t without --console-socket: the new process's pty is relayed to our terminal.
    spec_test("terminal_relayed_for_exec_tty", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "1000"]);
        let c = t.start(&b);
        let mut term = UserTerminal::new(25, 90);
        let (mut child, command) =
            spawn_on(t, &term, &["exec", "-t", &c.id, "sh", "-c", "tty; stty size; read line; echo got-$line; exit 4"]);
        term.read_until("25 90");
        term.type_in("xyz\n");
        let status = wait_child(&mut child, &command, LIMIT, "killed it");
        assert!(term.is_cooked(), "the runtime left our terminal in raw mode");
        let out = term.finish();
        assert_eq!(status.code(), Some(4), "{command}: {out}");
        assert!(out.contains("/dev/pts/"), "the process's stdin is not a terminal: {out:?}");
        assert!(out.contains("got-xyz"), "what was typed did not reach the process: {out:?}");
    });
}

#[test]
fn terminal_run_detached_without_console_socket_fails() {
    // runc run -d with a terminal and no --console-socket: "cannot allocate tty if runc will detach
    // without setting console socket"; nothing is left behind.
    spec_test("terminal_run_detached_without_console_socket_fails", |t| {
        let mut b = t.bundle();
        b.set("/process/terminal", json!(true));
        b.args(&["true"]);
        b.write();
        let id = t.new_id();
        let out = t.cmd(&["run", "-d", "--bundle"]).arg(&b.dir).arg(&id).run();
        out.failed();
        assert!(out.stderr.contains("console socket"), "{out}");
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn terminal_owned_by_the_process_user() {
    // issue 16 item 26. runc and crun give the pty to the process user (runc: fixStdioPermissions chowns
    // stdio that is not /dev/null to the user's uid, keeping the gid -- here the devpts gid=5 tty group).
    spec_test("terminal_owned_by_the_process_user", |t| {
        let mut b = t.bundle();
        b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
        b.set("/process/terminal", json!(true));
        b.sh("/bin/strata-probe devices $(tty)");
        let mut sock = ConsoleSocket::listen(&t.socket_path());
        let path = sock.path.to_str().or_fail("socket path").to_string();
        let c = t.create_with(&b, &["--console-socket", &path]);
        let mut reader = TerminalReader::start(sock.receive().master);
        c.start();
        c.wait_success();
        let out = reader.output();
        let v: Value = serde_json::from_str(out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(""))
            .or_fail(format!("output: {out:?}"));
        let (name, pts) = v.as_object().and_then(|o| o.iter().next()).or_fail(format!("tty report: {v}"));
        assert!(name.starts_with("/dev/pts/"), "{v}");
        assert_eq!((pts["uid"].as_u64(), pts["gid"].as_u64()), (Some(1000), Some(5)), "owner of {name}: {v}");
    });
}

#[test]
fn terminal_without_a_mount_namespace() {
    // issue 16 item 28. Without a mount namespace there is no new devpts instance: runc and crun take the
    // pty from /dev/ptmx as the container sees it -- here the host's /dev, bound in by the config (the
    // mounts are made in the runtime's own namespace, a throwaway one: the runtime runs under `unshare
    // -m`). runc needs /proc to close inherited descriptors and opens the host's /dev/console to bind the
    // pty over it, hence the proc mount and the open device cgroup.
    spec_test("terminal_without_a_mount_namespace", |t| {
        let mut b = t.bundle();
        b.without_namespace("mount");
        b.set(
            "/mounts",
            json!([
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}
            ]),
        );
        b.set("/linux/resources/devices", json!([{"allow": true, "access": "rwm"}]));
        b.remove("/linux/maskedPaths").remove("/linux/readonlyPaths");
        b.set("/process/terminal", json!(true));
        b.probe(&["tty"]);
        let mut sock = ConsoleSocket::listen(&t.socket_path());
        let path = sock.path.to_str().or_fail("socket path").to_string();
        let c = t.create_via(&b, |cmd| {
            cmd.args(&["--console-socket", &path]).via(&["unshare", "--mount", "--propagation", "private"])
        });
        let mut reader = TerminalReader::start(sock.receive().master);
        c.start();
        c.wait_success();
        let out = reader.output();
        let v: Value = serde_json::from_str(out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(""))
            .or_fail(format!("terminal output is not JSON: {out:?}"));
        assert_eq!((v["stdin"].as_bool(), v["stdout"].as_bool()), (Some(true), Some(true)), "{v}");
    });
}

#[test]
fn exec_tty_is_the_controlling_terminal_of_a_session_leader() {
    // issue 16 item 13 (a guard: main passes it already).
    // runc exec -t: the process leads a new session (setsid) whose controlling terminal
    // is the new pty, and its process group is the terminal's foreground group.
    spec_test("exec_tty_is_the_controlling_terminal_of_a_session_leader", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "1000"]);
        let c = t.start(&b);
        let term = UserTerminal::new(25, 90);
        let (mut child, command) = spawn_on(t, &term, &["exec", "-t", &c.id, "/bin/strata-probe", "all"]);
        let status = wait_child(&mut child, &command, LIMIT, "killed it");
        let mut term = term;
        let out = term.finish();
        assert_eq!(status.code(), Some(0), "{command}: {out}");
        let line = out.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default();
        let v: Value = serde_json::from_str(line).or_fail(format!("exec output: {out:?}"));
        let pid = v["pid"]["pid"].as_i64().or_fail(format!("pid report: {}", v["pid"]));
        assert_eq!((v["pid"]["sid"].as_i64(), v["pid"]["pgid"].as_i64()), (Some(pid), Some(pid)), "{}", v["pid"]);
        assert_eq!(v["tty"]["ctty_pgrp"].as_i64(), Some(pid), "the pty is not its controlling terminal: {}", v["tty"]);
        c.kill("KILL").ok();
    });
}
