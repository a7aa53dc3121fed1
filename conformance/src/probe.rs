//! Reading the probe's reports: mounts, namespaces, capabilities.

use serde_json::Value;

/// Namespace inode numbers of the test process itself (the runtime namespaces).
pub fn host_namespaces() -> Value {
    let mut m = serde_json::Map::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        let v = std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .ok()
            .and_then(|t| {
                let t = t.to_string_lossy().into_owned();
                t.split_once(":[").and_then(|(_, r)| r.trim_end_matches(']').parse::<u64>().ok())
            })
            .map_or(Value::Null, Value::from);
        m.insert(ns.to_string(), v);
    }
    Value::Object(m)
}

/// The topmost mount at `mount_point` in a `mounts` report (the last one in mount order).
pub fn mount_at<'a>(mounts: &'a Value, mount_point: &str) -> Option<&'a Value> {
    mounts.as_array()?.iter().rev().find(|m| m["mount_point"] == mount_point)
}

/// Every mount at `mount_point`, in mount order.
pub fn mounts_at<'a>(mounts: &'a Value, mount_point: &str) -> Vec<&'a Value> {
    mounts.as_array().map(|a| a.iter().filter(|m| m["mount_point"] == mount_point).collect()).unwrap_or_default()
}

/// Whether the mount shows `opt` among its per-mount or superblock options.
pub fn has_option(mount: &Value, opt: &str) -> bool {
    let any = |key: &str| mount[key].as_array().is_some_and(|a| a.iter().any(|o| o == opt));
    any("options") || any("super_options")
}

/// Whether the mount shows `opt` among its per-mount options.
pub fn has_mount_option(mount: &Value, opt: &str) -> bool {
    mount["options"].as_array().is_some_and(|a| a.iter().any(|o| o == opt))
}

/// Sorted capability names of one set (`"effective"`, ...) of a `caps` report.
pub fn cap_names(caps: &Value, set: &str) -> Vec<String> {
    let mut v: Vec<String> = caps[set]["names"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Sorted copy of a list of names.
pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_string()).collect();
    v.sort();
    v
}
