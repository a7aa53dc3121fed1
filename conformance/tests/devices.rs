//! config-linux.md devices, default devices and the device allowlist; runtime-linux.md /dev symlinks.

use strata_conformance::*;

const EPERM: i64 = 1;

/// `strata-probe devices <paths>` in the bundle.
fn devices(t: &Test, b: &mut Bundle, paths: &[&str]) -> Value {
    let mut args = vec!["devices"];
    args.extend_from_slice(paths);
    b.probe(&args);
    t.run_probe(b)
}

fn default_device(t: &Test, path: &str, major: u64, minor: u64) {
    // config-linux.md default devices: "In addition to any devices configured with this setting, the
    // runtime MUST also supply: /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty".
    let mut b = t.bundle();
    let v = devices(t, &mut b, &[path]);
    let d = &v[path];
    assert_eq!(d["type"], "c", "{path}: {d}");
    assert_eq!((d["major"].as_u64(), d["minor"].as_u64()), (Some(major), Some(minor)), "{path}: {d}");
}

#[test]
fn default_device_null() {
    spec_test("default_device_null", |t| default_device(t, "/dev/null", 1, 3));
}

#[test]
fn default_device_zero() {
    spec_test("default_device_zero", |t| default_device(t, "/dev/zero", 1, 5));
}

#[test]
fn default_device_full() {
    spec_test("default_device_full", |t| default_device(t, "/dev/full", 1, 7));
}

#[test]
fn default_device_random() {
    spec_test("default_device_random", |t| default_device(t, "/dev/random", 1, 8));
}

#[test]
fn default_device_urandom() {
    spec_test("default_device_urandom", |t| default_device(t, "/dev/urandom", 1, 9));
}

#[test]
fn default_device_tty() {
    spec_test("default_device_tty", |t| default_device(t, "/dev/tty", 5, 0));
}

#[test]
fn default_device_ptmx() {
    // config-linux.md default devices: "/dev/ptmx. A bind-mount or symlink of the container's
    // /dev/pts/ptmx."
    spec_test("default_device_ptmx", |t| {
        let mut b = t.bundle();
        let v = devices(t, &mut b, &["/dev/ptmx", "/dev/pts/ptmx"]);
        let ptmx = &v["/dev/ptmx"];
        let ok = match ptmx["type"].as_str() {
            Some("symlink") => ptmx["target"] == "pts/ptmx" || ptmx["target"] == "/dev/pts/ptmx",
            Some("c") => ptmx["major"] == v["/dev/pts/ptmx"]["major"] && ptmx["minor"] == v["/dev/pts/ptmx"]["minor"],
            _ => false,
        };
        assert!(ok, "/dev/ptmx is neither a symlink to nor a bind of /dev/pts/ptmx: {v}");
    });
}

#[test]
fn default_devices_are_usable() {
    // config-linux.md default devices: the runtime "MUST also supply" them -- usable, not only present
    // (the device cgroup must allow them).
    spec_test("default_devices_are_usable", |t| {
        let mut b = t.bundle();
        let checks = [
            "read:/dev/null",
            "write:/dev/null",
            "read:/dev/zero",
            "read:/dev/full",
            "write:/dev/full",
            "read:/dev/random",
            "read:/dev/urandom",
        ];
        let mut args = vec!["access"];
        args.extend_from_slice(&checks);
        b.probe(&args);
        let v = t.run_probe(&b);
        for c in checks {
            assert_eq!(v[c]["ok"], true, "{c}: {}", v[c]);
        }
    });
}

fn dev_link(t: &Test, link: &str, target: &str) {
    // runtime-linux.md: "While creating the container (step 2 in the lifecycle), runtimes MUST create the
    // following symlinks if the source file exists after processing mounts: /proc/self/fd -> /dev/fd,
    // /proc/self/fd/0 -> /dev/stdin, /proc/self/fd/1 -> /dev/stdout, /proc/self/fd/2 -> /dev/stderr"
    let mut b = t.bundle();
    let v = devices(t, &mut b, &[link]);
    assert_eq!(v[link]["type"], "symlink", "{link}: {}", v[link]);
    assert_eq!(v[link]["target"], target, "{link}: {}", v[link]);
}

#[test]
fn dev_fd_symlink() {
    spec_test("dev_fd_symlink", |t| dev_link(t, "/dev/fd", "/proc/self/fd"));
}

#[test]
fn dev_stdin_symlink() {
    spec_test("dev_stdin_symlink", |t| dev_link(t, "/dev/stdin", "/proc/self/fd/0"));
}

#[test]
fn dev_stdout_symlink() {
    spec_test("dev_stdout_symlink", |t| dev_link(t, "/dev/stdout", "/proc/self/fd/1"));
}

#[test]
fn dev_stderr_symlink() {
    spec_test("dev_stderr_symlink", |t| dev_link(t, "/dev/stderr", "/proc/self/fd/2"));
}

/// Adds a device entry and returns what the container sees at its path.
fn with_device(t: &Test, dev: Value) -> Value {
    let path = dev["path"].as_str().or_fail("device path").to_string();
    let mut b = t.bundle();
    b.push("/linux/devices", dev);
    let v = devices(t, &mut b, &[&path]);
    v[&path].clone()
}

#[test]
fn device_char_created() {
    // config-linux.md devices: "devices (array of objects, OPTIONAL) lists devices that MUST be available
    // in the container"; "type (string, REQUIRED) - type of device: c, b, u or p"; "major, minor".
    spec_test("device_char_created", |t| {
        let d = with_device(t, json!({"path": "/dev/conf-char", "type": "c", "major": 1, "minor": 11}));
        assert_eq!(d["type"], "c", "{d}");
        assert_eq!((d["major"].as_u64(), d["minor"].as_u64()), (Some(1), Some(11)), "{d}");
    });
}

#[test]
fn device_block_created() {
    spec_test("device_block_created", |t| {
        let d = with_device(t, json!({"path": "/dev/conf-block", "type": "b", "major": 7, "minor": 200}));
        assert_eq!(d["type"], "b", "{d}");
        assert_eq!((d["major"].as_u64(), d["minor"].as_u64()), (Some(7), Some(200)), "{d}");
    });
}

#[test]
fn device_unbuffered_char_created() {
    // mknod(1): "u" creates a character (unbuffered) special file.
    spec_test("device_unbuffered_char_created", |t| {
        let d = with_device(t, json!({"path": "/dev/conf-u", "type": "u", "major": 1, "minor": 3}));
        assert_eq!(d["type"], "c", "{d}");
        assert_eq!((d["major"].as_u64(), d["minor"].as_u64()), (Some(1), Some(3)), "{d}");
    });
}

#[test]
fn device_fifo_created() {
    // config-linux.md devices: "major, minor (int64, REQUIRED unless type is p)".
    spec_test("device_fifo_created", |t| {
        let d = with_device(t, json!({"path": "/dev/conf-fifo", "type": "p"}));
        assert_eq!(d["type"], "p", "{d}");
    });
}

#[test]
fn device_file_mode_applied() {
    // config-linux.md devices: "fileMode (uint32, OPTIONAL) - file mode for the device. Note it is a
    // decimal (not an octal) number."
    spec_test("device_file_mode_applied", |t| {
        let d =
            with_device(t, json!({"path": "/dev/conf-mode", "type": "c", "major": 1, "minor": 3, "fileMode": 0o604}));
        assert_eq!(d["mode"], 0o604, "{d}");
    });
}

#[test]
fn device_owner_applied() {
    // config-linux.md devices: "uid (uint32, OPTIONAL) - id of device owner in the container namespace",
    // "gid (uint32, OPTIONAL) - id of device group in the container namespace."
    spec_test("device_owner_applied", |t| {
        let d = with_device(
            t,
            json!({"path": "/dev/conf-owner", "type": "c", "major": 1, "minor": 3, "uid": 1000, "gid": 5}),
        );
        assert_eq!((d["uid"].as_u64(), d["gid"].as_u64()), (Some(1000), Some(5)), "{d}");
    });
}

#[test]
fn device_outside_dev() {
    // config-linux.md devices path: "The path MAY be anywhere in the container filesystem, notably
    // outside of /dev."
    spec_test("device_outside_dev", |t| {
        let d = with_device(t, json!({"path": "/opt/conf-dev", "type": "c", "major": 1, "minor": 5}));
        assert_eq!(d["type"], "c", "{d}");
        assert_eq!((d["major"].as_u64(), d["minor"].as_u64()), (Some(1), Some(5)), "{d}");
    });
}

#[test]
fn device_path_conflict_fails() {
    // config-linux.md devices path: "If a file already exists at path that does not match the requested
    // device, the runtime MUST generate an error."
    spec_test("device_path_conflict_fails", |t| {
        let mut b = t.bundle();
        b.rootfs_file("/opt/occupied", "a regular file");
        b.push("/linux/devices", json!({"path": "/opt/occupied", "type": "c", "major": 1, "minor": 3}));
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn device_cgroup_denies_unlisted_access() {
    // config-linux.md allowed device list: "The runtime MUST apply entries in the listed order." With only
    // "deny all" (the default configuration), a device node that is not a default device cannot be
    // opened.
    spec_test("device_cgroup_denies_unlisted_access", |t| {
        let mut b = t.bundle();
        b.push("/linux/devices", json!({"path": "/dev/conf-kmsg", "type": "c", "major": 1, "minor": 11}));
        b.probe(&["access", "read:/dev/conf-kmsg"]);
        let v = t.run_probe(&b);
        assert_eq!(v["read:/dev/conf-kmsg"]["errno"], EPERM, "{v}");
    });
}

#[test]
fn device_cgroup_allow_rule_applies() {
    // config-linux.md allowed device list: "allow (boolean, REQUIRED) - whether the entry is allowed or
    // denied"; entries applied in the listed order (deny all, then allow c 1:9 r).
    spec_test("device_cgroup_allow_rule_applies", |t| {
        let mut b = t.bundle();
        b.push("/linux/devices", json!({"path": "/dev/conf-urandom", "type": "c", "major": 1, "minor": 9}));
        b.push("/linux/resources/devices", json!({"allow": true, "type": "c", "major": 1, "minor": 9, "access": "r"}));
        b.probe(&["access", "read:/dev/conf-urandom"]);
        let v = t.run_probe(&b);
        assert_eq!(v["read:/dev/conf-urandom"]["ok"], true, "{v}");
    });
}

#[test]
fn device_cgroup_later_deny_wins() {
    // config-linux.md allowed device list: "The runtime MUST apply entries in the listed order." A deny
    // after an allow for the same device takes it away again.
    spec_test("device_cgroup_later_deny_wins", |t| {
        let mut b = t.bundle();
        b.push("/linux/devices", json!({"path": "/dev/conf-kmsg", "type": "c", "major": 1, "minor": 11}));
        b.push(
            "/linux/resources/devices",
            json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"}),
        );
        b.push(
            "/linux/resources/devices",
            json!({"allow": false, "type": "c", "major": 1, "minor": 11, "access": "r"}),
        );
        b.probe(&["access", "read:/dev/conf-kmsg"]);
        let v = t.run_probe(&b);
        assert_eq!(v["read:/dev/conf-kmsg"]["errno"], EPERM, "{v}");
    });
}
