//! `spec`: write a default config.json, as `runc spec` does.

use std::io::Write;

use serde::Serialize;
use serde_json::{Value, json};

use super::SpecArgs;
use crate::error::{Error, ErrorKind};

const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

pub fn default_config(rootless: bool) -> Value {
    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS, "ambient": CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "strata",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        spec["linux"]["resources"] = Value::Null;
        spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        // runc's rootless default: no network namespace (nothing to connect it to without
        // privilege), no cgroup namespace, the cgroup mount kept.
        spec["linux"]["namespaces"] =
            json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        let mounts = spec["mounts"].as_array_mut().map(std::mem::take).unwrap_or_default();
        let mounts: Vec<Value> = mounts
            .into_iter()
            .map(|mut m| {
                if m["destination"] == "/sys" {
                    m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                } else if m["destination"] == "/dev/pts" {
                    if let Some(opts) = m["options"].as_array_mut() {
                        opts.retain(|o| o != "gid=5");
                    }
                }
                m
            })
            .collect();
        spec["mounts"] = Value::Array(mounts);
        if let Some(linux) = spec["linux"].as_object_mut() {
            linux.remove("resources");
        }
    }
    spec
}

pub fn write_default_config(a: &SpecArgs) -> Result<(), Error> {
    let path = a.bundle.join("config.json");
    let mut bytes = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    default_config(a.rootless).serialize(&mut ser).map_err(|e| Error::new(ErrorKind::Other, e))?;
    bytes.push(b'\n');
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::msg(
                ErrorKind::AlreadyExists,
                format!("File {} exists. Remove it first", path.display()),
            ));
        }
        Err(e) => {
            return Err(crate::container::state::io_error(ErrorKind::Other, format!("create {}", path.display()), e));
        }
    };
    file.write_all(&bytes)
        .map_err(|e| crate::container::state::io_error(ErrorKind::Other, format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;

    #[test]
    fn default_specs_are_valid_plans() {
        for rootless in [false, true] {
            let spec: oci_spec::runtime::Spec = serde_json::from_value(default_config(rootless)).unwrap();
            let plan = Plan::new(&spec, std::path::Path::new("/b")).unwrap();
            assert_eq!(plan.namespaces.new_user(), rootless);
        }
    }
}
