//! config.md root and mounts, config-linux.md default filesystems and rootfsPropagation: what the
//! container's mount table (/proc/self/mountinfo) and file accesses show.

use std::path::Path;

use nix::mount::MsFlags;
use strata_conformance::hostmount;
use strata_conformance::probe::{has_mount_option, has_option, mount_at, mounts_at};
use strata_conformance::*;

const EROFS: i64 = 30;

/// Runs `strata-probe mounts` in the bundle and returns the report.
fn mounts(t: &Test, b: &mut Bundle) -> Value {
    b.probe(&["mounts"]);
    t.run_probe(b)
}

/// The mount at `/m` after adding a tmpfs there with these options.
fn tmpfs_with(t: &Test, options: &[&str]) -> Value {
    let mut b = t.bundle();
    b.mount(json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": options}));
    let m = mounts(t, &mut b);
    mount_at(&m, "/m").cloned().or_fail("no mount at /m")
}

fn access(t: &Test, b: &mut Bundle, checks: &[&str]) -> Value {
    let mut args = vec!["access"];
    args.extend_from_slice(checks);
    b.probe(&args);
    t.run_probe(b)
}

#[test]
fn mounts_applied_in_listed_order() {
    // config.md mounts: "The runtime MUST mount entries in the listed order."
    spec_test("mounts_applied_in_listed_order", |t| {
        let mut b = t.bundle();
        b.mount(json!({"destination": "/m", "type": "tmpfs", "source": "first", "options": ["size=1m"]}));
        b.mount(json!({"destination": "/m", "type": "tmpfs", "source": "second", "options": ["size=2m"]}));
        b.mount(json!({"destination": "/m/inner", "type": "tmpfs", "source": "third", "options": ["size=3m"]}));
        let m = mounts(t, &mut b);
        let at_m: Vec<&Value> = mounts_at(&m, "/m");
        assert_eq!(at_m.len(), 2, "{at_m:?}");
        assert_eq!(at_m[0]["source"], "first");
        assert_eq!(at_m[1]["source"], "second", "the later entry must be on top");
        let inner = mount_at(&m, "/m/inner").or_fail("/m/inner");
        assert_eq!(inner["source"], "third");
        assert_eq!(inner["parent"], at_m[1]["id"], "/m/inner must be mounted on the second /m");
    });
}

#[test]
fn mount_relative_destination_is_relative_to_root() {
    // config.md mounts destination: "it MAY be a relative path, in which case it MUST be interpreted as
    // relative to "/"."
    spec_test("mount_relative_destination_is_relative_to_root", |t| {
        let mut b = t.bundle();
        b.mount(json!({"destination": "relative/dest", "type": "tmpfs", "source": "reltmp"}));
        let m = mounts(t, &mut b);
        assert_eq!(mount_at(&m, "/relative/dest").or_fail("/relative/dest")["source"], "reltmp");
    });
}

#[test]
fn bind_mount_shows_host_directory() {
    // config.md mounts source: "a file or directory name for bind mounts"; "A mount is a bind mount if it
    // has either bind or rbind in the options."
    spec_test("bind_mount_shows_host_directory", |t| {
        let mut b = t.bundle();
        let host = b.host_dir("shared");
        std::fs::write(host.join("from-host"), "hello").or_fail("write host file");
        b.mount(json!({"destination": "/data", "type": "none", "source": host, "options": ["bind"]}));
        let v = access(t, &mut b, &["list:/data"]);
        assert_eq!(v["list:/data"]["result"], json!(["from-host"]), "{v}");
    });
}

#[test]
fn bind_mount_source_relative_to_bundle() {
    // config.md mounts source: "Path values for bind mounts are either absolute or relative to the
    // bundle."
    spec_test("bind_mount_source_relative_to_bundle", |t| {
        let mut b = t.bundle();
        let host = b.host_dir("relsource");
        std::fs::write(host.join("marker"), "x").or_fail("write marker");
        b.mount(json!({"destination": "/data", "type": "bind", "source": "relsource", "options": ["rbind"]}));
        let v = access(t, &mut b, &["list:/data"]);
        assert_eq!(v["list:/data"]["result"], json!(["marker"]), "{v}");
    });
}

#[test]
fn bind_mount_of_a_file() {
    // config.md mounts source: "can also be a file or directory name for bind mounts".
    spec_test("bind_mount_of_a_file", |t| {
        let mut b = t.bundle();
        let file = b.dir.join("hostname-file");
        std::fs::write(&file, "from-the-host\n").or_fail("write file");
        b.mount(json!({"destination": "/etc/hostname", "type": "bind", "source": file, "options": ["bind", "ro"]}));
        b.args(&["cat", "/etc/hostname"]);
        let c = t.start(&b);
        c.wait_success();
        assert_eq!(c.stdout(), "from-the-host\n");
    });
}

/// A host directory with a tmpfs mounted on `sub/` inside it.
fn dir_with_submount(t: &Test, b: &Bundle) -> std::path::PathBuf {
    let host = b.host_dir("tree");
    hostmount::tmpfs(t, &host.join("sub"));
    std::fs::write(host.join("sub/in-submount"), "x").or_fail("write into submount");
    host
}

#[test]
fn rbind_mount_includes_submounts() {
    // config.md Linux mount options: "rbind | MUST | Recursive bind mount".
    spec_test("rbind_mount_includes_submounts", |t| {
        let mut b = t.bundle();
        let host = dir_with_submount(t, &b);
        b.mount(json!({"destination": "/tree", "type": "bind", "source": host, "options": ["rbind"]}));
        let v = access(t, &mut b, &["list:/tree/sub"]);
        assert_eq!(v["list:/tree/sub"]["result"], json!(["in-submount"]), "{v}");
    });
}

#[test]
fn bind_mount_is_not_recursive() {
    // config.md Linux mount options: "bind | MUST | Bind mount" (as mount(8) --bind: submounts are not
    // included).
    spec_test("bind_mount_is_not_recursive", |t| {
        let mut b = t.bundle();
        let host = dir_with_submount(t, &b);
        b.mount(json!({"destination": "/tree", "type": "bind", "source": host, "options": ["bind"]}));
        let v = access(t, &mut b, &["list:/tree/sub"]);
        assert_eq!(v["list:/tree/sub"]["result"], json!([]), "{v}");
    });
}

#[test]
fn mount_option_ro() {
    // config.md Linux mount options: "ro | MUST".
    spec_test("mount_option_ro", |t| {
        let mut b = t.bundle();
        b.mount(json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}));
        b.sh("/bin/strata-probe mounts; /bin/strata-probe access create:/m");
        let c = t.start(&b);
        c.wait_success();
        let out = c.stdout();
        let mut lines = out.lines();
        let m: Value = serde_json::from_str(lines.next().unwrap_or("")).or_fail("mounts");
        assert!(has_mount_option(mount_at(&m, "/m").or_fail("/m"), "ro"));
        let a: Value = serde_json::from_str(lines.next().unwrap_or("")).or_fail("access");
        assert_eq!(a["create:/m"]["errno"], EROFS, "{a}");
    });
}

#[test]
fn mount_option_rw() {
    // config.md Linux mount options: "rw | MUST".
    spec_test("mount_option_rw", |t| {
        let mut b = t.bundle();
        b.mount(json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["rw"]}));
        let v = access(t, &mut b, &["create:/m"]);
        assert_eq!(v["create:/m"]["ok"], true, "{v}");
    });
}

fn flag_test(t: &Test, option: &str, shown: &str) {
    let m = tmpfs_with(t, &[option]);
    assert!(has_option(&m, shown), "option {option}: mount shows {m}");
}

// config.md Linux mount options: "Runtimes MUST/SHOULD/MAY implement the following option strings".

#[test]
fn mount_option_nosuid() {
    spec_test("mount_option_nosuid", |t| flag_test(t, "nosuid", "nosuid"));
}

#[test]
fn mount_option_nodev() {
    spec_test("mount_option_nodev", |t| flag_test(t, "nodev", "nodev"));
}

#[test]
fn mount_option_noexec() {
    spec_test("mount_option_noexec", |t| flag_test(t, "noexec", "noexec"));
}

#[test]
fn mount_option_noatime() {
    spec_test("mount_option_noatime", |t| flag_test(t, "noatime", "noatime"));
}

#[test]
fn mount_option_nodiratime() {
    spec_test("mount_option_nodiratime", |t| flag_test(t, "nodiratime", "nodiratime"));
}

#[test]
fn mount_option_relatime() {
    spec_test("mount_option_relatime", |t| flag_test(t, "relatime", "relatime"));
}

#[test]
fn mount_option_sync() {
    spec_test("mount_option_sync", |t| flag_test(t, "sync", "sync"));
}

#[test]
fn mount_option_dirsync() {
    spec_test("mount_option_dirsync", |t| flag_test(t, "dirsync", "dirsync"));
}

#[test]
fn mount_option_lazytime() {
    spec_test("mount_option_lazytime", |t| flag_test(t, "lazytime", "lazytime"));
}

#[test]
fn mount_option_nosymfollow() {
    // "nosymfollow | SHOULD | (Introduced in kernel 5.10, util-linux 2.38)"
    spec_test("mount_option_nosymfollow", |t| flag_test(t, "nosymfollow", "nosymfollow"));
}

#[test]
fn mount_option_strictatime() {
    // "strictatime | MUST": neither relatime nor noatime.
    spec_test("mount_option_strictatime", |t| {
        let m = tmpfs_with(t, &["strictatime"]);
        assert!(!has_option(&m, "relatime") && !has_option(&m, "noatime"), "{m}");
    });
}

#[test]
fn mount_option_defaults() {
    // "defaults | MUST": rw, suid, dev, exec, auto, nouser, async.
    spec_test("mount_option_defaults", |t| {
        let m = tmpfs_with(t, &["defaults"]);
        for flag in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(!has_mount_option(&m, flag), "defaults gave {flag}: {m}");
        }
    });
}

#[test]
fn mount_option_later_clears_earlier() {
    // "exec | MUST", "suid | MUST", "dev | MUST" with mount(8) semantics: a later option overrides an
    // earlier one ("If a custom option string is already recognized by mount(8), the runtime SHOULD
    // follow the behavior of mount(8).")
    spec_test("mount_option_later_clears_earlier", |t| {
        let m = tmpfs_with(t, &["noexec", "nosuid", "nodev", "exec", "suid", "dev"]);
        for flag in ["nosuid", "nodev", "noexec"] {
            assert!(!has_mount_option(&m, flag), "{flag} not cleared: {m}");
        }
    });
}

#[test]
fn mount_noexec_prevents_execution() {
    // config.md: "noexec | MUST" -- as observed by access(X_OK) on a bind-mounted executable.
    spec_test("mount_noexec_prevents_execution", |t| {
        let mut b = t.bundle();
        let host = b.host_dir("bin");
        std::fs::copy("/bin/true", host.join("prog")).or_fail("copy an executable");
        b.mount(json!({"destination": "/hostbin", "type": "bind", "source": host, "options": ["bind", "noexec"]}));
        let v = access(t, &mut b, &["exec:/hostbin/prog", "exec:/bin/busybox"]);
        assert_eq!(v["exec:/hostbin/prog"]["ok"], false, "{v}");
        assert_eq!(v["exec:/bin/busybox"]["ok"], true, "{v}");
    });
}

#[test]
fn mount_data_options_passed_to_filesystem() {
    // config.md: "Runtimes SHOULD treat unknown options as filesystem-specific ones" (passed as data).
    spec_test("mount_data_options_passed_to_filesystem", |t| {
        let m = tmpfs_with(t, &["mode=700", "size=2m"]);
        assert!(has_option(&m, "mode=700"), "{m}");
        assert!(has_option(&m, "size=2048k"), "{m}");
    });
}

#[test]
fn mount_of_unknown_filesystem_fails() {
    // runtime.md create: "If the runtime cannot apply a property as specified in the configuration, it
    // MUST generate an error and a new container MUST NOT be created."
    spec_test("mount_of_unknown_filesystem_fails", |t| {
        let mut b = t.bundle();
        b.mount(json!({"destination": "/m", "type": "no-such-fs", "source": "x"}));
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn mount_option_rro_is_recursive() {
    // config.md: "rro | SHOULD | Recursive ro".
    spec_test("mount_option_rro_is_recursive", |t| {
        let mut b = t.bundle();
        let host = dir_with_submount(t, &b);
        b.mount(json!({"destination": "/tree", "type": "bind", "source": host, "options": ["rbind", "rro"]}));
        let m = mounts(t, &mut b);
        assert!(has_mount_option(mount_at(&m, "/tree").or_fail("/tree"), "ro"), "{m}");
        assert!(has_mount_option(mount_at(&m, "/tree/sub").or_fail("/tree/sub"), "ro"), "submount not read-only");
    });
}

#[test]
fn mount_option_rnoexec_is_recursive() {
    // config.md: "rnoexec | SHOULD | Recursive noexec".
    spec_test("mount_option_rnoexec_is_recursive", |t| {
        let mut b = t.bundle();
        let host = dir_with_submount(t, &b);
        b.mount(json!({"destination": "/tree", "type": "bind", "source": host, "options": ["rbind", "rnoexec"]}));
        let m = mounts(t, &mut b);
        assert!(has_mount_option(mount_at(&m, "/tree/sub").or_fail("/tree/sub"), "noexec"), "submount not noexec");
    });
}

/// Propagation of a bind mount with `option` whose source is a host tmpfs with shared propagation (so
/// that "slave" has a master to follow).
fn bind_propagation(t: &Test, option: &str) -> Value {
    let mut b = t.bundle();
    let host = b.dir.join("prop");
    hostmount::tmpfs(t, &host);
    hostmount::propagation(&host, MsFlags::MS_SHARED);
    b.mount(json!({"destination": "/prop", "type": "bind", "source": host, "options": ["rbind", option]}));
    let m = mounts(t, &mut b);
    mount_at(&m, "/prop").cloned().or_fail("/prop")
}

fn optional_has(m: &Value, prefix: &str) -> bool {
    m["optional"].as_array().is_some_and(|a| a.iter().any(|o| o.as_str().is_some_and(|s| s.starts_with(prefix))))
}

// config.md Linux mount options: "private | MUST | Bind mount propagation", "shared", "slave",
// "unbindable" and their recursive forms.

#[test]
fn mount_propagation_shared() {
    spec_test("mount_propagation_shared", |t| {
        let m = bind_propagation(t, "shared");
        assert!(optional_has(&m, "shared:"), "{m}");
    });
}

#[test]
fn mount_propagation_rshared() {
    spec_test("mount_propagation_rshared", |t| {
        let m = bind_propagation(t, "rshared");
        assert!(optional_has(&m, "shared:"), "{m}");
    });
}

#[test]
fn mount_propagation_private() {
    spec_test("mount_propagation_private", |t| {
        let m = bind_propagation(t, "private");
        assert!(!optional_has(&m, "shared:") && !optional_has(&m, "master:"), "{m}");
    });
}

#[test]
fn mount_propagation_rprivate() {
    spec_test("mount_propagation_rprivate", |t| {
        let m = bind_propagation(t, "rprivate");
        assert!(!optional_has(&m, "shared:") && !optional_has(&m, "master:"), "{m}");
    });
}

#[test]
fn mount_propagation_slave() {
    spec_test("mount_propagation_slave", |t| {
        let m = bind_propagation(t, "slave");
        assert!(optional_has(&m, "master:") && !optional_has(&m, "shared:"), "{m}");
    });
}

#[test]
fn mount_propagation_rslave() {
    spec_test("mount_propagation_rslave", |t| {
        let m = bind_propagation(t, "rslave");
        assert!(optional_has(&m, "master:") && !optional_has(&m, "shared:"), "{m}");
    });
}

#[test]
fn mount_propagation_unbindable() {
    spec_test("mount_propagation_unbindable", |t| {
        let m = bind_propagation(t, "unbindable");
        assert!(optional_has(&m, "unbindable"), "{m}");
    });
}

#[test]
fn mount_propagation_runbindable() {
    spec_test("mount_propagation_runbindable", |t| {
        let m = bind_propagation(t, "runbindable");
        assert!(optional_has(&m, "unbindable"), "{m}");
    });
}

// config-linux.md default filesystems: "The following filesystems SHOULD be made available in each
// container's filesystem: /proc proc, /sys sysfs, /dev/pts devpts, /dev/shm tmpfs" (the default
// configuration lists them as mounts).

fn fstype_at(t: &Test, mount_point: &str, fstype: &str) {
    let mut b = t.bundle();
    let m = mounts(t, &mut b);
    assert_eq!(mount_at(&m, mount_point).or_fail(mount_point)["fstype"], fstype, "{m}");
}

#[test]
fn proc_is_mounted() {
    spec_test("proc_is_mounted", |t| fstype_at(t, "/proc", "proc"));
}

#[test]
fn sysfs_is_mounted() {
    spec_test("sysfs_is_mounted", |t| fstype_at(t, "/sys", "sysfs"));
}

#[test]
fn devpts_is_mounted() {
    spec_test("devpts_is_mounted", |t| fstype_at(t, "/dev/pts", "devpts"));
}

#[test]
fn dev_shm_is_tmpfs() {
    spec_test("dev_shm_is_tmpfs", |t| fstype_at(t, "/dev/shm", "tmpfs"));
}

#[test]
fn root_readonly_true() {
    // config.md root.readonly: "If true then the root filesystem MUST be read-only inside the container".
    spec_test("root_readonly_true", |t| {
        let mut b = t.bundle();
        b.set("/root/readonly", json!(true));
        b.sh("/bin/strata-probe mounts; /bin/strata-probe access create:/ create:/etc");
        let c = t.start(&b);
        c.wait_success();
        let out = c.stdout();
        let mut lines = out.lines();
        let m: Value = serde_json::from_str(lines.next().unwrap_or("")).or_fail("mounts");
        assert!(has_mount_option(mount_at(&m, "/").or_fail("/"), "ro"), "{m}");
        let a: Value = serde_json::from_str(lines.next().unwrap_or("")).or_fail("access");
        assert_eq!(a["create:/"]["errno"], EROFS, "{a}");
        assert_eq!(a["create:/etc"]["errno"], EROFS, "{a}");
    });
}

#[test]
fn root_readonly_false_is_writable() {
    // config.md root.readonly: "defaults to false".
    spec_test("root_readonly_false_is_writable", |t| {
        let mut b = t.bundle();
        b.remove("/root/readonly");
        let v = access(t, &mut b, &["create:/", "create:/etc"]);
        assert_eq!(v["create:/"]["ok"], true, "{v}");
        assert_eq!(v["create:/etc"]["ok"], true, "{v}");
    });
}

#[test]
fn root_readonly_keeps_mounts_writable() {
    // config.md root.readonly applies to the root filesystem only: a tmpfs mounted rw stays writable.
    spec_test("root_readonly_keeps_mounts_writable", |t| {
        let mut b = t.bundle();
        b.set("/root/readonly", json!(true));
        b.mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}));
        let v = access(t, &mut b, &["create:/scratch", "create:/dev/shm"]);
        assert_eq!(v["create:/scratch"]["ok"], true, "{v}");
        assert_eq!(v["create:/dev/shm"]["ok"], true, "{v}");
    });
}

#[test]
fn root_path_absolute() {
    // config.md root.path: "either an absolute path or a relative path to the bundle".
    spec_test("root_path_absolute", |t| {
        let mut b = t.bundle();
        let elsewhere = t.path("elsewhere-rootfs");
        t.rootfs_at(&elsewhere);
        std::fs::write(elsewhere.join("which-rootfs"), "elsewhere").or_fail("write marker");
        b.set("/root/path", json!(elsewhere));
        b.args(&["cat", "/which-rootfs"]);
        let c = t.start(&b);
        c.wait_success();
        assert_eq!(c.stdout(), "elsewhere");
    });
}

#[test]
fn root_path_relative_to_bundle() {
    // config.md root.path: "with a bundle at /to/bundle and a root filesystem at /to/bundle/rootfs, the
    // path value can be either /to/bundle/rootfs or rootfs."
    spec_test("root_path_relative_to_bundle", |t| {
        let mut b = t.bundle();
        let other = b.dir.join("other-root");
        t.rootfs_at(&other);
        std::fs::write(other.join("which-rootfs"), "other-root").or_fail("write marker");
        b.set("/root/path", json!("other-root"));
        b.args(&["cat", "/which-rootfs"]);
        let c = t.start(&b);
        c.wait_success();
        assert_eq!(c.stdout(), "other-root");
    });
}

/// A bundle whose rootfs lives on a host tmpfs with shared propagation.
fn rootfs_on_shared_mount(t: &Test) -> (Bundle, std::path::PathBuf) {
    let mut b = t.bundle();
    let mnt = t.path("shared-root");
    hostmount::tmpfs(t, &mnt);
    hostmount::propagation(&mnt, MsFlags::MS_SHARED);
    let root = mnt.join("rootfs");
    t.rootfs_at(&root);
    b.set("/root/path", json!(root));
    (b, root)
}

fn root_propagation(t: &Test, value: &str) -> Value {
    let (mut b, _) = rootfs_on_shared_mount(t);
    b.set("/linux/rootfsPropagation", json!(value));
    let m = mounts(t, &mut b);
    mount_at(&m, "/").cloned().or_fail("/")
}

#[test]
fn rootfs_propagation_shared() {
    // config-linux.md rootfsPropagation: "shared: the rootfs mount belongs to a new peer group."
    spec_test("rootfs_propagation_shared", |t| {
        let m = root_propagation(t, "shared");
        assert!(optional_has(&m, "shared:"), "{m}");
    });
}

#[test]
fn rootfs_propagation_slave() {
    // config-linux.md rootfsPropagation: "slave: the rootfs mount receives propagation events from the
    // host ... but not the other way around."
    spec_test("rootfs_propagation_slave", |t| {
        let m = root_propagation(t, "slave");
        assert!(optional_has(&m, "master:") && !optional_has(&m, "shared:"), "{m}");
    });
}

#[test]
fn rootfs_propagation_private() {
    // config-linux.md rootfsPropagation: "private: the rootfs mount doesn't receive mount propagation
    // events from the host".
    spec_test("rootfs_propagation_private", |t| {
        let m = root_propagation(t, "private");
        assert!(!optional_has(&m, "master:") && !optional_has(&m, "shared:"), "{m}");
    });
}

#[test]
fn rootfs_propagation_unbindable() {
    // config-linux.md rootfsPropagation: "unbindable: the rootfs mount is a private mount that cannot be
    // bind-mounted."
    spec_test("rootfs_propagation_unbindable", |t| {
        let m = root_propagation(t, "unbindable");
        assert!(optional_has(&m, "unbindable"), "{m}");
    });
}

#[test]
fn rootfs_propagation_slave_receives_host_mounts() {
    // config-linux.md rootfsPropagation: "slave: the rootfs mount receives propagation events from the
    // host (e.g. if something is mounted on the host it will also appear in the container)".
    spec_test("rootfs_propagation_slave_receives_host_mounts", |t| {
        let (mut b, root) = rootfs_on_shared_mount(t);
        b.set("/linux/rootfsPropagation", json!("slave"));
        // Waits (bounded: 150 x 0.1 s) for the host's mount to appear, then reports what it sees.
        b.sh("echo ready; i=0; while [ ! -e /mnt/marker ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; /bin/strata-probe access read:/mnt/marker");
        let c = t.start(&b);
        c.wait_for_output("ready");
        hostmount::tmpfs(t, &root.join("mnt"));
        std::fs::write(root.join("mnt/marker"), "propagated").or_fail("write marker on the host mount");
        c.wait_success();
        assert_eq!(c.json()["read:/mnt/marker"]["ok"], true, "{}", c.stdout());
    });
}

#[test]
fn container_mounts_do_not_reach_the_host() {
    // config-linux.md rootfsPropagation "slave": events propagate from the host "but not the other way
    // around".
    spec_test("container_mounts_do_not_reach_the_host", |t| {
        let (mut b, root) = rootfs_on_shared_mount(t);
        b.set("/linux/rootfsPropagation", json!("slave"));
        b.mount(json!({"destination": "/mnt", "type": "tmpfs", "source": "container-tmpfs"}));
        let c = t.start(&b);
        c.wait_success();
        let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").or_fail("read host mountinfo");
        let leaked = host_mounts
            .lines()
            .any(|l| l.contains(&format!("{}/mnt ", root.display())) || l.contains("container-tmpfs"));
        assert!(!leaked, "a container mount appeared on the host");
    });
}

/// Every JSON line the container printed, in order.
fn json_lines(c: &Container<'_>) -> Vec<Value> {
    c.stdout()
        .lines()
        .filter(|l| l.trim_start().starts_with(['{', '[']))
        .map(|l| serde_json::from_str(l).or_fail(format!("container output line {l:?}")))
        .collect()
}

/// Puts a directory `/data` into the bundle's rootfs holding what a copy-up must keep: a file with an
/// owner, a mode and a `user.` extended attribute, a private subdirectory with a file, a symlink.
fn copyup_tree(b: &Bundle) {
    use std::os::unix::fs::PermissionsExt;
    let data = b.rootfs().join("data");
    let file = b.rootfs_file("/data/file", "copied");
    let inner = b.rootfs_file("/data/sub/inner", "deep");
    std::os::unix::fs::symlink("file", data.join("link")).or_fail("create data/link");
    let own = |p: &std::path::Path, uid: u32, gid: u32, mode: u32| {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid)).or_fail(format!("chown {}", p.display()));
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).or_fail(format!("chmod {}", p.display()));
    };
    own(&file, 1000, 1001, 0o640);
    own(&inner, 1000, 1000, 0o600);
    own(&data.join("sub"), 1000, 1000, 0o700);
    own(&data, 1000, 1000, 0o751);
    std::os::unix::fs::lchown(data.join("link"), Some(1000), Some(1000)).or_fail("chown data/link");
    // Where the test directory's filesystem has no user xattrs, the xattr test says so itself.
    let _supported = strata_conformance::rootfs::try_set_xattr(&file, "user.strata", "kept");
}

/// Runs a bundle with a `tmpcopyup` tmpfs over `/data` and returns (mounts, lstat report, xattrs,
/// contents of the two files, result of writing a new file).
fn copyup_run(t: &Test, b: &mut Bundle) -> (Value, Value, Value, String) {
    copyup_tree(b);
    // Root in the container reads files owned by others only with these.
    b.with_capabilities(&["CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH"]);
    b.mount(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                   "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]}));
    b.sh("/bin/strata-probe mounts; /bin/strata-probe devices /data /data/file /data/sub /data/sub/inner /data/link; \
          /bin/strata-probe xattrs /data/file; /bin/strata-probe access create:/data; \
          echo \"contents:$(cat /data/file)+$(cat /data/sub/inner)+$(cat /data/link)\"");
    let c = t.start(b);
    c.wait_success();
    let lines = json_lines(&c);
    let [mounts, stat, xattrs, create] = <[Value; 4]>::try_from(lines.clone())
        .unwrap_or_else(|_| panic!("expected 4 reports, got {lines:?}; stderr: {}", c.stderr()));
    let write = create["create:/data"].clone();
    assert_eq!(write["ok"], true, "writing into the copied-up tmpfs failed: {write}");
    let out = c.stdout();
    let contents = out.lines().find_map(|l| l.strip_prefix("contents:")).unwrap_or_default().to_string();
    (mounts, stat, xattrs, contents)
}

#[track_caller]
fn assert_copied_up(mounts: &Value, stat: &Value, contents: &str) {
    let m = mount_at(mounts, "/data").or_fail(format!("no mount at /data: {mounts}"));
    assert_eq!(m["fstype"], "tmpfs", "{m}");
    assert_eq!(contents, "copied+deep+copied", "file contents in the tmpfs; lstat: {stat}");
    let want = [
        ("/data/file", "file", 0o640, 1000, 1001),
        ("/data/sub", "dir", 0o700, 1000, 1000),
        ("/data/sub/inner", "file", 0o600, 1000, 1000),
        ("/data/link", "symlink", 0o777, 1000, 1000),
    ];
    for (path, kind, mode, uid, gid) in want {
        let s = &stat[path];
        assert_eq!(
            (s["type"].as_str(), s["mode"].as_u64(), s["uid"].as_u64(), s["gid"].as_u64()),
            (Some(kind), Some(mode), Some(uid), Some(gid)),
            "{path} in the tmpfs (want {kind} {mode:o} {uid}:{gid}); all: {stat}"
        );
    }
    assert_eq!(stat["/data/link"]["target"], "file", "{stat}");
    assert_eq!(stat["/data"]["mode"], 0o751, "the tmpfs root keeps the directory's mode: {stat}");
}

#[test]
fn tmpfs_tmpcopyup_copies_the_rootfs_contents() {
    // issue 16 item 2. runc's "tmpcopyup" extension (podman --read-only, --tmpfs, --mount type=tmpfs,
    // --systemd=always): the tmpfs starts with a copy of what the rootfs has at the destination --
    // contents, owners, modes, symlinks.
    spec_test("tmpfs_tmpcopyup_copies_the_rootfs_contents", |t| {
        let mut b = t.bundle();
        b.writable_root();
        let (mounts, stat, _, contents) = copyup_run(t, &mut b);
        assert_copied_up(&mounts, &stat, &contents);
    });
}

#[test]
fn tmpfs_tmpcopyup_on_a_readonly_root() {
    // issue 16 item 2: `podman run --read-only` puts tmpcopyup tmpfs mounts on a read-only root.
    spec_test("tmpfs_tmpcopyup_on_a_readonly_root", |t| {
        let mut b = t.bundle();
        b.set("/root/readonly", json!(true));
        let (mounts, stat, _, contents) = copyup_run(t, &mut b);
        assert_copied_up(&mounts, &stat, &contents);
        let root = mount_at(&mounts, "/").or_fail("/");
        assert!(has_mount_option(root, "ro"), "the root is not read-only: {root}");
    });
}

#[test]
fn tmpfs_tmpcopyup_keeps_extended_attributes() {
    // issue 16 item 2: the copy keeps extended attributes (crun copies them; runc 1.1.5 does not).
    spec_test("tmpfs_tmpcopyup_keeps_extended_attributes", |t| {
        let mut b = t.bundle();
        let probe = b.rootfs().join(".xattr-probe");
        std::fs::write(&probe, "").or_fail("write the xattr probe");
        let supported = strata_conformance::rootfs::try_set_xattr(&probe, "user.strata", "probe");
        std::fs::remove_file(&probe).or_fail("remove the xattr probe");
        if !supported {
            eprintln!("note: the test directory's filesystem has no user xattrs (tmpfs before Linux 6.6): not checked");
            return;
        }
        let (_, _, xattrs, _) = copyup_run(t, &mut b);
        assert_eq!(xattrs["/data/file"]["user.strata"], "kept", "{xattrs}");
    });
}

#[test]
fn rshared_bind_propagates_container_mounts_to_the_host() {
    // issue 16 item 4. config-linux.md rootfsPropagation "shared" with a bind mount whose propagation is
    // "rshared" (podman and Docker for an rshared volume): a mount made in the container under that
    // bind mount appears on the host, as with runc and crun.
    spec_test("rshared_bind_propagates_container_mounts_to_the_host", |t| {
        let mut b = t.bundle();
        let host = b.dir.join("vol");
        hostmount::tmpfs(t, &host);
        hostmount::propagation(&host, MsFlags::MS_SHARED);
        std::fs::create_dir(host.join("sub")).or_fail("create vol/sub");
        b.set("/linux/rootfsPropagation", json!("shared"));
        b.mount(json!({"destination": "/vol", "type": "bind", "source": host, "options": ["rbind", "rshared"]}));
        b.with_capabilities(&["CAP_SYS_ADMIN"]);
        b.sh("mount -t tmpfs -o size=1m from-container /vol/sub && echo mounted");
        let c = t.start(&b);
        c.wait_success();
        assert_eq!(c.stdout().trim(), "mounted", "stderr: {}", c.stderr());
        let sub = host.join("sub").display().to_string();
        let info = std::fs::read_to_string("/proc/self/mountinfo").or_fail("read the host's mountinfo");
        let seen = info.lines().any(|l| l.split(' ').nth(4) == Some(sub.as_str()) && l.contains(" from-container "));
        assert!(
            seen,
            "the container's mount on /vol/sub did not reach the host at {sub}; host mounts below: {:?}",
            strata_conformance::traces::mounts_below(&host)
        );
    });
}

#[test]
fn mount_data_longer_than_255_bytes() {
    // issue 16 item 5. config.md mounts options: data options go to the filesystem; mount(2) takes a
    // whole page of them. An overlay with a long `lowerdir=` list (podman --mount type=image, many image
    // layers) must mount.
    spec_test("mount_data_longer_than_255_bytes", |t| {
        let mut b = t.bundle();
        let mut lowers = Vec::new();
        for i in 0..24 {
            let d = b.host_dir(&format!("layers/lower-layer-with-a-long-name-{i:02}"));
            std::fs::write(d.join(format!("from-{i:02}")), format!("{i}")).or_fail("write a layer file");
            lowers.push(d.display().to_string());
        }
        let lowerdir = format!("lowerdir={}", lowers.join(":"));
        assert!(lowerdir.len() > 1024 && lowerdir.len() < 4000, "lowerdir is {} bytes", lowerdir.len());
        b.mount(json!({"destination": "/image", "type": "overlay", "source": "overlay",
                       "options": ["ro", &lowerdir]}));
        b.probe(&["access", "list:/image"]);
        let v = t.run_probe(&b);
        let names = &v["list:/image"]["result"];
        let want: Vec<String> = (0..24).map(|i| format!("from-{i:02}")).collect();
        assert_eq!(names, &json!(want), "{v}");
    });
}

#[test]
fn bind_mount_onto_dangling_symlink_creates_its_target_in_the_rootfs() {
    // issue 16 item 21. Images link /etc/resolv.conf or /etc/hosts to a file that does not exist yet;
    // runc and crun resolve the destination inside the rootfs, create the missing target there and bind
    // onto it. Nothing is created on the host.
    spec_test("bind_mount_onto_dangling_symlink_creates_its_target_in_the_rootfs", |t| {
        let mut b = t.bundle();
        let unique =
            format!("strata-issue16-{}-{}", std::process::id(), b.dir.file_name().or_fail("bundle").to_string_lossy());
        let file_target = format!("/tmp/{unique}-hosts");
        let deep_dir = format!("/run/{unique}");
        let deep_target = format!("{deep_dir}/resolve/stub-resolv.conf");
        // The template has no /etc/hosts; a leftover would make the symlink fail.
        let _absent_already = std::fs::remove_file(b.rootfs().join("etc/hosts"));
        std::os::unix::fs::symlink(&file_target, b.rootfs().join("etc/hosts")).or_fail("link etc/hosts");
        std::os::unix::fs::symlink(&deep_target, b.rootfs().join("etc/resolv.conf")).or_fail("link etc/resolv.conf");
        let hosts = b.path("hosts");
        std::fs::write(&hosts, "127.0.0.1 bound-hosts\n").or_fail("write hosts");
        let resolv = b.path("resolv.conf");
        std::fs::write(&resolv, "nameserver 192.0.2.1\n").or_fail("write resolv.conf");
        b.mount(json!({"destination": "/etc/hosts", "type": "bind", "source": hosts, "options": ["rbind", "ro"]}));
        b.mount(
            json!({"destination": "/etc/resolv.conf", "type": "bind", "source": resolv, "options": ["rbind", "ro"]}),
        );
        b.sh(&format!("cat /etc/hosts /etc/resolv.conf {file_target} {deep_target}"));
        let c = t.start(&b);
        let exit = c.wait();
        let out = c.stdout();
        assert!(!Path::new(&file_target).exists(), "{file_target} was created on the host");
        assert!(!Path::new(&deep_dir).exists(), "{deep_dir} was created on the host");
        assert_eq!(exit, Exit::Code(0), "stdout: {out:?}; stderr: {:?}", c.stderr());
        assert_eq!(
            out,
            "127.0.0.1 bound-hosts\nnameserver 192.0.2.1\n127.0.0.1 bound-hosts\nnameserver 192.0.2.1\n",
            "stderr: {:?}",
            c.stderr()
        );
        assert!(b.rootfs().join(file_target.trim_start_matches('/')).exists(), "target not created in the rootfs");
    });
}

/// A host tmpfs at `<bundle>/src` with these per-mount flags (set by a bind remount), holding a file.
fn source_mount_with(t: &Test, b: &Bundle, flags: MsFlags) -> std::path::PathBuf {
    let src = b.dir.join("src");
    hostmount::tmpfs(t, &src);
    std::fs::write(src.join("file"), "x").or_fail("write src/file");
    nix::mount::mount(None::<&str>, &src, None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags, None::<&str>)
        .or_fail(format!("remount {} with {flags:?}", src.display()));
    src
}

#[test]
fn bind_mount_options_without_ro_make_a_readonly_source_writable() {
    // issue 16 item 29. runc remounts a bind mount with exactly the flags its options ask for whenever
    // they name any flag beyond bind/rbind (MS_REMOUNT|MS_BIND|flags): a read-only source mount bound with
    // ["bind", "nosuid"] is read-write (and nosuid) in the container.
    spec_test("bind_mount_options_without_ro_make_a_readonly_source_writable", |t| {
        let mut b = t.bundle();
        let src = source_mount_with(t, &b, MsFlags::MS_RDONLY);
        b.mount(json!({"destination": "/bound", "type": "bind", "source": src, "options": ["bind", "nosuid"]}));
        b.sh("/bin/strata-probe mounts; /bin/strata-probe access write:/bound/file");
        let c = t.start(&b);
        c.wait_success();
        let lines = json_lines(&c);
        let m = lines.first().and_then(|m| mount_at(m, "/bound")).or_fail(format!("no /bound in {lines:?}"));
        assert!(has_mount_option(m, "rw") && has_mount_option(m, "nosuid"), "/bound: {m}");
        assert_eq!(lines[1]["write:/bound/file"]["ok"], true, "{}", lines[1]);
    });
}

#[test]
fn bind_mount_norelatime_keeps_the_source_atime_mode() {
    // issue 16 item 29. "norelatime" only clears MS_RELATIME: with no other flag runc does not remount,
    // so the bind mount keeps the source mount's atime mode (here noatime) instead of the kernel's
    // relatime default.
    spec_test("bind_mount_norelatime_keeps_the_source_atime_mode", |t| {
        let mut b = t.bundle();
        let src = source_mount_with(t, &b, MsFlags::MS_NOATIME);
        b.mount(json!({"destination": "/bound", "type": "bind", "source": src, "options": ["bind", "norelatime"]}));
        let m = mounts(t, &mut b);
        let bound = mount_at(&m, "/bound").or_fail("/bound");
        assert!(has_mount_option(bound, "noatime") && !has_mount_option(bound, "relatime"), "/bound: {bound}");
    });
}
