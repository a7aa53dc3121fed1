//! config-linux.md maskedPaths and readonlyPaths.

use strata_conformance::probe::{has_mount_option, mount_at};
use strata_conformance::*;

const EROFS: i64 = 30;

fn access(t: &Test, b: &mut Bundle, checks: &[&str]) -> Value {
    let mut args = vec!["access"];
    args.extend_from_slice(checks);
    b.probe(&args);
    t.run_probe(b)
}

/// Whether an access result shows that nothing could be read: an error, or zero bytes.
fn unreadable(v: &Value) -> bool {
    v["ok"] == false || v["result"] == 0 || v["result"] == json!([])
}

// config-linux.md maskedPaths: "maskedPaths (array of strings, OPTIONAL) will mask over the provided paths
// inside the container so that they cannot be read."

#[test]
fn masked_file_cannot_be_read() {
    spec_test("masked_file_cannot_be_read", |t| {
        let mut b = t.bundle();
        b.rootfs_file("/secret/file", "top secret");
        b.set("/linux/maskedPaths", json!(["/secret/file"]));
        let v = access(t, &mut b, &["read:/secret/file"]);
        assert!(unreadable(&v["read:/secret/file"]), "{v}");
    });
}

#[test]
fn masked_directory_cannot_be_listed() {
    spec_test("masked_directory_cannot_be_listed", |t| {
        let mut b = t.bundle();
        b.rootfs_file("/secret-dir/inside", "top secret");
        b.set("/linux/maskedPaths", json!(["/secret-dir"]));
        let v = access(t, &mut b, &["list:/secret-dir", "read:/secret-dir/inside"]);
        assert!(unreadable(&v["list:/secret-dir"]), "{v}");
        assert!(unreadable(&v["read:/secret-dir/inside"]), "{v}");
    });
}

#[test]
fn masked_proc_file_cannot_be_read() {
    spec_test("masked_proc_file_cannot_be_read", |t| {
        let mut b = t.bundle();
        b.set("/linux/maskedPaths", json!(["/proc/kallsyms"]));
        let v = access(t, &mut b, &["read:/proc/kallsyms"]);
        assert!(unreadable(&v["read:/proc/kallsyms"]), "{v}");
    });
}

#[test]
fn unmasked_file_stays_readable() {
    // The mask applies to the listed paths only.
    spec_test("unmasked_file_stays_readable", |t| {
        let mut b = t.bundle();
        b.rootfs_file("/secret/file", "top secret");
        b.rootfs_file("/secret/other", "public");
        b.set("/linux/maskedPaths", json!(["/secret/file"]));
        let v = access(t, &mut b, &["read:/secret/other"]);
        assert_eq!(v["read:/secret/other"]["result"], 6, "{v}");
    });
}

// config-linux.md readonlyPaths: "readonlyPaths (array of strings, OPTIONAL) will set the provided paths as
// readonly inside the container."

#[test]
fn readonly_path_cannot_be_written() {
    spec_test("readonly_path_cannot_be_written", |t| {
        let mut b = t.bundle();
        b.writable_root();
        b.rootfs_file("/ro-dir/file", "data");
        b.set("/linux/readonlyPaths", json!(["/ro-dir"]));
        let v = access(t, &mut b, &["create:/ro-dir", "write:/ro-dir/file", "read:/ro-dir/file", "create:/tmp"]);
        assert_eq!(v["create:/ro-dir"]["errno"], EROFS, "{v}");
        assert_eq!(v["write:/ro-dir/file"]["errno"], EROFS, "{v}");
        assert_eq!(v["read:/ro-dir/file"]["ok"], true, "readonly must stay readable: {v}");
        assert_eq!(v["create:/tmp"]["ok"], true, "only the listed path is read-only: {v}");
    });
}

#[test]
fn readonly_proc_sys_is_a_readonly_mount() {
    spec_test("readonly_proc_sys_is_a_readonly_mount", |t| {
        let mut b = t.bundle();
        b.set("/linux/readonlyPaths", json!(["/proc/sys"]));
        b.sh("/bin/strata-probe mounts; /bin/strata-probe access write:/proc/sys/kernel/hostname");
        let c = t.start(&b);
        c.wait_success();
        let out = c.stdout();
        let mut lines = out.lines();
        let m: Value = serde_json::from_str(lines.next().unwrap_or("")).or_fail("mounts");
        assert!(has_mount_option(mount_at(&m, "/proc/sys").or_fail("/proc/sys"), "ro"), "{m}");
        let a: Value = serde_json::from_str(lines.next().unwrap_or("")).or_fail("access");
        assert_eq!(a["write:/proc/sys/kernel/hostname"]["errno"], EROFS, "{a}");
    });
}

#[test]
fn masked_and_readonly_paths_must_be_absolute() {
    // config-linux.md: "The values MUST be absolute paths in the container namespace." (config.md:
    // "Runtimes MUST generate an error when invalid or unsupported values are encountered.")
    spec_test("masked_and_readonly_paths_must_be_absolute", |t| {
        let mut b = t.bundle();
        b.set("/linux/maskedPaths", json!(["proc/kcore"]));
        t.try_create(&b, &[]).1.failed();
        let mut b = t.bundle();
        b.set("/linux/readonlyPaths", json!(["proc/sys"]));
        t.try_create(&b, &[]).1.failed();
    });
}
