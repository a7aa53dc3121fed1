//! config-linux.md: namespaces (new, inherited, joined by path, invalid).

use strata_conformance::probe::host_namespaces;
use strata_conformance::*;

/// Runs the probe's `ns` report with exactly these namespace types requested.
fn ns_with(t: &Test, types: &[&str]) -> Value {
    let mut b = t.bundle();
    b.namespaces(types);
    if !types.contains(&"network") {
        // sysfs can only be mounted by the owner of the network namespace.
        b.without_mount("/sys/fs/cgroup").without_mount("/sys");
    }
    b.probe(&["ns"]);
    t.run_probe(&b)
}

fn assert_new(t: &Test, ns: &str, kernel_name: &str) {
    let host = host_namespaces();
    let seen = ns_with(
        t,
        &["pid", "network", "ipc", "uts", "mount", "cgroup"]
            .iter()
            .copied()
            .chain(if ns == "time" { Some("time") } else { None })
            .collect::<Vec<_>>(),
    );
    assert!(seen[kernel_name].as_u64().is_some(), "no {kernel_name} namespace reported: {seen}");
    assert_ne!(seen[kernel_name], host[kernel_name], "container shares the runtime's {kernel_name} namespace");
}

fn assert_inherited(t: &Test, missing: &str, kernel_name: &str) {
    let all = ["pid", "network", "ipc", "uts", "mount", "cgroup"];
    let types: Vec<&str> = all.iter().copied().filter(|n| *n != missing).collect();
    let seen = ns_with(t, &types);
    assert_eq!(
        seen[kernel_name],
        host_namespaces()[kernel_name],
        "{kernel_name} namespace not inherited from the runtime"
    );
}

// config-linux.md namespaces: "If path is not specified, the runtime MUST create a new container
// namespace of type type."

#[test]
fn new_pid_namespace() {
    spec_test("new_pid_namespace", |t| assert_new(t, "pid", "pid"));
}

#[test]
fn new_network_namespace() {
    spec_test("new_network_namespace", |t| assert_new(t, "network", "net"));
}

#[test]
fn new_mount_namespace() {
    spec_test("new_mount_namespace", |t| assert_new(t, "mount", "mnt"));
}

#[test]
fn new_ipc_namespace() {
    spec_test("new_ipc_namespace", |t| assert_new(t, "ipc", "ipc"));
}

#[test]
fn new_uts_namespace() {
    spec_test("new_uts_namespace", |t| assert_new(t, "uts", "uts"));
}

#[test]
fn new_cgroup_namespace() {
    spec_test("new_cgroup_namespace", |t| assert_new(t, "cgroup", "cgroup"));
}

#[test]
fn new_time_namespace() {
    // config-linux.md: "time the container will be able to have its own clocks." (a type that "SHOULD be
    // supported")
    spec_test("new_time_namespace", |t| {
        assert!(host_namespaces()["time"].is_u64(), "this kernel has no time namespaces");
        assert_new(t, "time", "time");
    });
}

#[test]
fn pid_namespace_makes_process_pid_1() {
    // config-linux.md: "pid processes inside the container will only be able to see other processes
    // inside the same container or inside the same pid namespace."
    spec_test("pid_namespace_makes_process_pid_1", |t| {
        let mut b = t.bundle();
        b.probe(&["pid"]);
        let pid = t.run_probe(&b);
        assert_eq!(pid["pid"], 1, "{pid}");
        assert_eq!(pid["ppid"], 0, "{pid}");
        let mut b = t.bundle();
        // The test process (and the runtime) live outside the container's pid namespace.
        b.sh(&format!("test ! -e /proc/{}/status && echo invisible", std::process::id()));
        let c = t.start(&b);
        c.wait_success();
        assert_eq!(c.stdout().trim(), "invisible", "a host process is visible in the container");
    });
}

// config-linux.md: "If a namespace type is not specified in the namespaces array, the container MUST
// inherit the runtime namespace of that type."

#[test]
fn missing_pid_namespace_is_inherited() {
    spec_test("missing_pid_namespace_is_inherited", |t| assert_inherited(t, "pid", "pid"));
}

#[test]
fn missing_network_namespace_is_inherited() {
    spec_test("missing_network_namespace_is_inherited", |t| assert_inherited(t, "network", "net"));
}

#[test]
fn missing_ipc_namespace_is_inherited() {
    spec_test("missing_ipc_namespace_is_inherited", |t| assert_inherited(t, "ipc", "ipc"));
}

#[test]
fn missing_uts_namespace_is_inherited() {
    spec_test("missing_uts_namespace_is_inherited", |t| {
        let mut b = t.bundle();
        b.remove("/hostname");
        b.without_namespace("uts");
        b.probe(&["ns"]);
        assert_eq!(t.run_probe(&b)["uts"], host_namespaces()["uts"]);
    });
}

#[test]
fn missing_cgroup_namespace_is_inherited() {
    spec_test("missing_cgroup_namespace_is_inherited", |t| assert_inherited(t, "cgroup", "cgroup"));
}

#[test]
fn missing_user_namespace_is_inherited() {
    spec_test("missing_user_namespace_is_inherited", |t| {
        let seen = ns_with(t, &["pid", "network", "ipc", "uts", "mount"]);
        assert_eq!(seen["user"], host_namespaces()["user"]);
    });
}

/// Starts a long-running container whose namespaces another container can join.
fn holder(t: &Test) -> Container<'_> {
    let mut b = t.bundle();
    b.namespaces(&["pid", "network", "ipc", "uts", "mount"]);
    b.args(&["sleep", "60"]);
    t.start(&b)
}

fn joins(t: &Test, ty: &str, kernel_name: &str) {
    // config-linux.md namespaces path: "The runtime MUST place the container process in the namespace
    // associated with that path."
    let h = holder(t);
    let path = format!("/proc/{}/ns/{kernel_name}", h.pid);
    let mut b = t.bundle();
    let mut list = vec![json!({"type": ty, "path": path})];
    for other in ["pid", "network", "ipc", "uts", "mount"] {
        if other != ty {
            list.push(json!({"type": other}));
        }
    }
    b.set("/linux/namespaces", Value::Array(list));
    if ty == "uts" {
        b.remove("/hostname");
    }
    b.probe(&["ns"]);
    let seen = t.run_probe(&b);
    let want = std::fs::read_link(&path).or_fail("read holder ns");
    assert_eq!(format!("{kernel_name}:[{}]", seen[kernel_name]), want.to_string_lossy());
    h.kill("KILL").ok();
}

#[test]
fn namespace_path_joins_network_namespace() {
    spec_test("namespace_path_joins_network_namespace", |t| joins(t, "network", "net"));
}

#[test]
fn namespace_path_joins_ipc_namespace() {
    spec_test("namespace_path_joins_ipc_namespace", |t| joins(t, "ipc", "ipc"));
}

#[test]
fn namespace_path_joins_uts_namespace() {
    spec_test("namespace_path_joins_uts_namespace", |t| joins(t, "uts", "uts"));
}

#[test]
fn namespace_path_joins_pid_namespace() {
    spec_test("namespace_path_joins_pid_namespace", |t| joins(t, "pid", "pid"));
}

#[test]
fn namespace_path_of_wrong_type_fails() {
    // config-linux.md: "The runtime MUST generate an error if path is not associated with a namespace of
    // type type."
    spec_test("namespace_path_of_wrong_type_fails", |t| {
        let h = holder(t);
        let mut b = t.bundle();
        b.set(
            "/linux/namespaces",
            json!([{"type": "network", "path": format!("/proc/{}/ns/ipc", h.pid)}, {"type": "pid"}, {"type": "mount"}]),
        );
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
        h.kill("KILL").ok();
    });
}

#[test]
fn namespace_path_not_a_namespace_fails() {
    // config-linux.md: "The runtime MUST generate an error if path is not associated with a namespace of
    // type type."
    spec_test("namespace_path_not_a_namespace_fails", |t| {
        let mut b = t.bundle();
        let not_ns = b.rootfs_file("/not-a-namespace", "plain file");
        b.set("/linux/namespaces", json!([{"type": "network", "path": not_ns}, {"type": "pid"}, {"type": "mount"}]));
        t.try_create(&b, &[]).1.failed();
    });
}

#[test]
fn namespace_path_missing_fails() {
    // config-linux.md: "The runtime MUST place the container process in the namespace associated with
    // that path." -- impossible for a path that does not exist.
    spec_test("namespace_path_missing_fails", |t| {
        let mut b = t.bundle();
        b.set("/linux/namespaces", json!([{"type": "network", "path": "/proc/no-such/ns/net"}, {"type": "mount"}]));
        t.try_create(&b, &[]).1.failed();
    });
}

#[test]
fn duplicate_namespace_fails() {
    // config-linux.md: "If a namespaces field contains duplicated namespaces with same type, the runtime
    // MUST generate an error."
    spec_test("duplicate_namespace_fails", |t| {
        let mut b = t.bundle();
        b.set(
            "/linux/namespaces",
            json!([{"type": "pid"}, {"type": "mount"}, {"type": "network"}, {"type": "network"}]),
        );
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn unknown_namespace_type_fails() {
    // config.md: "Runtimes MUST generate an error when invalid or unsupported values are encountered."
    spec_test("unknown_namespace_type_fails", |t| {
        let mut b = t.bundle();
        b.push("/linux/namespaces", json!({"type": "no-such-namespace"}));
        t.try_create(&b, &[]).1.failed();
    });
}

#[test]
fn new_network_namespace_has_loopback_up() {
    // issue 16 item 1. runc and crun bring `lo` up in a network namespace they create (runc: the
    // "loopback" network strategy of libcontainer/network_linux.go), so a server listening on 127.0.0.1
    // is reachable (podman --network none, ctr run without --net-host, strata-rootfs bundles).
    spec_test("new_network_namespace_has_loopback_up", |t| {
        let mut b = t.bundle();
        b.probe(&["loopback"]);
        let v = t.run_probe(&b);
        assert_eq!(v["up"], true, "lo is not up: {v}");
        assert_eq!(v["tcp_roundtrip"]["ok"], true, "TCP over 127.0.0.1 failed: {v}");
    });
}
