//! config.md mounts: idmapped bind mounts (`uidMappings`/`gidMappings`, options `idmap` and `ridmap`).
//! A file owned on disk by a mapping's `containerID` appears owned by its `hostID`, the way
//! `mount_setattr(MOUNT_ATTR_IDMAP)` with a user namespace of that mapping shows it.

use std::os::unix::fs::MetadataExt;

use strata_conformance::*;

/// A host directory `data` holding `file`, owned by `uid:gid` on disk, bind-mounted at /data with
/// `options` and, when given, `mappings` (used for both uid and gid).
fn bundle_with_owned_file(t: &Test, uid: u32, mappings: Option<Value>, options: &[&str]) -> Bundle {
    let mut b = t.bundle();
    let data = b.host_dir("data");
    let file = data.join("file");
    std::fs::write(&file, "x").or_fail("write data/file");
    std::os::unix::fs::chown(&file, Some(uid), Some(uid)).or_fail("chown data/file");
    std::fs::create_dir_all(b.rootfs().join("data")).or_fail("create rootfs/data");
    let mut m = json!({"destination": "/data", "type": "bind", "source": data, "options": options});
    if let Some(maps) = mappings {
        m["uidMappings"] = maps.clone();
        m["gidMappings"] = maps;
    }
    b.mount(m);
    b.args(&["stat", "-c", "%u:%g", "/data/file"]);
    b
}

fn owner_seen(t: &Test, b: &Bundle) -> String {
    let c = t.start(b);
    let exit = c.wait();
    assert_eq!(exit, Exit::Code(0), "stat in the container failed; stderr: {:?}", c.stderr());
    c.stdout().trim().to_owned()
}

#[test]
fn idmapped_bind_mount_shows_the_callers_file_as_roots() {
    spec_test("idmapped_bind_mount_shows_the_callers_file_as_roots", |t| {
        let maps = json!([{"containerID": 1000, "hostID": 0, "size": 1}]);
        let b = bundle_with_owned_file(t, 1000, Some(maps), &["rbind"]);
        assert_eq!(owner_seen(t, &b), "0:0");
        // the mount's view only: the file on disk keeps its owner
        let meta = std::fs::metadata(b.host_dir("data").join("file")).or_fail("stat data/file");
        assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    });
}

#[test]
fn idmapped_bind_mount_shows_roots_file_as_the_users() {
    spec_test("idmapped_bind_mount_shows_roots_file_as_the_users", |t| {
        let maps = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let b = bundle_with_owned_file(t, 0, Some(maps), &["bind"]);
        assert_eq!(owner_seen(t, &b), "1000:1000");
    });
}

#[test]
fn idmap_option_takes_the_containers_user_namespace_mapping() {
    // A volume owned by host root appears owned by the container's root in a user-namespaced
    // container (podman's `:idmap` volumes).
    spec_test("idmap_option_takes_the_containers_user_namespace_mapping", |t| {
        let mut b = bundle_with_owned_file(t, 0, None, &["rbind", "idmap"]);
        b.push("/linux/namespaces", json!({"type": "user"}));
        b.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
        b.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
        b.without_mount("/sys/fs/cgroup");
        assert_eq!(owner_seen(t, &b), "0:0");
    });
}

#[test]
fn idmap_of_a_non_bind_mount_is_refused() {
    spec_test("idmap_of_a_non_bind_mount_is_refused", |t| {
        let mut b = t.bundle();
        b.mount(json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                       "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                       "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}));
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        assert!(out.stderr.contains("idmapped mounts are bind mounts only"), "{out}");
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn idmap_without_mappings_or_user_namespace_is_refused() {
    spec_test("idmap_without_mappings_or_user_namespace_is_refused", |t| {
        let b = bundle_with_owned_file(t, 0, None, &["bind", "idmap"]);
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        assert!(out.stderr.contains("takes the container's user namespace mappings, and there is none"), "{out}");
        t.cmd(&["state", &id]).run().failed();
    });
}

#[test]
fn idmap_on_a_filesystem_without_support_says_so() {
    // sysfs does not support idmapped mounts: the error names the source and why.
    spec_test("idmap_on_a_filesystem_without_support_says_so", |t| {
        let mut b = t.bundle();
        std::fs::create_dir_all(b.rootfs().join("hostsys")).or_fail("create rootfs/hostsys");
        b.mount(json!({"destination": "/hostsys", "type": "bind", "source": "/sys/kernel", "options": ["bind"],
                       "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                       "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}));
        let (id, out) = t.try_create(&b, &[]);
        out.failed();
        assert!(out.stderr.contains("/sys/kernel") && out.stderr.contains("does not support idmapped mounts"), "{out}");
        t.cmd(&["state", &id]).run().failed();
    });
}
