//! A test bundle: its own directory and rootfs, and a `config.json` edited as JSON before `create`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::fail::OrFail;
use crate::rootfs::PROBE_IN_CONTAINER;

#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    /// The configuration written to `config.json` by [`Bundle::write`] (and by `Test::create`).
    pub spec: Value,
}

impl Bundle {
    pub(crate) fn new(dir: PathBuf, cgroups_path: &str) -> Self {
        Bundle { dir, spec: default_spec(cgroups_path) }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.spec).or_fail("serialise config.json");
        std::fs::write(self.config_path(), text).or_fail(format!("write {}", self.config_path().display()));
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.spec["process"]["args"] = json!(args);
        self
    }

    /// `process.args` = the probe with these arguments.
    pub fn probe(&mut self, args: &[&str]) -> &mut Self {
        let mut v = vec![PROBE_IN_CONTAINER];
        v.extend_from_slice(args);
        self.args(&v)
    }

    /// `process.args` = `/bin/sh -c <script>`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["/bin/sh", "-c", script])
    }

    /// Sets the value at a JSON pointer (`/linux/sysctl`), creating missing objects on the way.
    pub fn set(&mut self, pointer: &str, value: Value) -> &mut Self {
        let mut cur = &mut self.spec;
        for key in pointer.split('/').skip(1) {
            if !cur.is_object() {
                *cur = json!({});
            }
            cur = cur.as_object_mut().or_fail("object").entry(key.to_string()).or_insert(Value::Null);
        }
        *cur = value;
        self
    }

    /// Appends to the array at a JSON pointer, creating it if missing.
    pub fn push(&mut self, pointer: &str, value: Value) -> &mut Self {
        let cur = self.spec.pointer(pointer).cloned().unwrap_or(json!([]));
        let mut arr = cur.as_array().cloned().unwrap_or_default();
        arr.push(value);
        self.set(pointer, Value::Array(arr))
    }

    /// Removes the member at a JSON pointer (no-op if absent).
    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let (parent, key) = pointer.rsplit_once('/').or_fail(format!("pointer {pointer}"));
        if let Some(obj) = self.spec.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.remove(key);
        }
        self
    }

    /// Replaces `linux.namespaces` with new namespaces of these types.
    pub fn namespaces(&mut self, types: &[&str]) -> &mut Self {
        let list: Vec<Value> = types.iter().map(|t| json!({"type": t})).collect();
        self.set("/linux/namespaces", Value::Array(list))
    }

    /// Removes the namespace of this type from `linux.namespaces`.
    pub fn without_namespace(&mut self, ns: &str) -> &mut Self {
        if let Some(list) = self.spec.pointer_mut("/linux/namespaces").and_then(Value::as_array_mut) {
            list.retain(|n| n["type"] != ns);
        }
        self
    }

    /// Appends a mount entry.
    pub fn mount(&mut self, m: Value) -> &mut Self {
        self.push("/mounts", m)
    }

    /// Removes the mount at this destination.
    pub fn without_mount(&mut self, destination: &str) -> &mut Self {
        if let Some(list) = self.spec.pointer_mut("/mounts").and_then(Value::as_array_mut) {
            list.retain(|m| m["destination"] != destination);
        }
        self
    }

    /// Adds capabilities to the bounding, effective and permitted sets of the process.
    pub fn with_capabilities(&mut self, extra: &[&str]) -> &mut Self {
        for set in ["bounding", "effective", "permitted"] {
            for cap in extra {
                let pointer = format!("/process/capabilities/{set}");
                let has =
                    self.spec.pointer(&pointer).and_then(Value::as_array).is_some_and(|a| a.iter().any(|c| c == cap));
                if !has {
                    self.push(&pointer, json!(cap));
                }
            }
        }
        self
    }

    /// Makes the root filesystem writable (`root.readonly = false`).
    pub fn writable_root(&mut self) -> &mut Self {
        self.set("/root/readonly", json!(false))
    }

    /// A host directory inside the bundle (created), e.g. as the source of a bind mount.
    pub fn host_dir(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::create_dir_all(&p).or_fail(format!("create {}", p.display()));
        p
    }

    /// Writes a file into the rootfs (`path` is the container path).
    pub fn rootfs_file(&self, path: &str, contents: &str) -> PathBuf {
        let p = self.rootfs().join(path.trim_start_matches('/'));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).or_fail(format!("create {}", parent.display()));
        }
        std::fs::write(&p, contents).or_fail(format!("write {}", p.display()));
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        Path::new(&self.dir).join(rel)
    }
}

/// The default configuration: `runc spec`'s (runtime-spec 1.0.2), with the probe as the process, no
/// terminal, HOME set, and a cgroups path under `/strata-conformance`.
pub fn default_spec(cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": [PROBE_IN_CONTAINER],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "strata-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}
