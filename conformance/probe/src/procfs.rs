//! Reports read from /proc/self: status fields, capabilities, mountinfo, namespaces, cgroups, scheduling.

use serde_json::{Map, Value, json};

use crate::io_err;

/// Capability names by bit number (capabilities(7)); bits beyond the table are reported as `CAP_<n>`.
const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn read(path: &str) -> Result<String, Value> {
    std::fs::read_to_string(path).map_err(|e| io_err(&e))
}

/// One `Name:\tvalue` line of /proc/self/status, as a string (or an error object).
pub fn status_field(name: &str) -> Value {
    match read("/proc/self/status") {
        Ok(s) => s
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map_or(Value::Null, |v| Value::String(v.trim().to_string())),
        Err(e) => e,
    }
}

/// The five capability sets: hex mask as the kernel shows it plus the decoded names.
pub fn capabilities() -> Value {
    let mut m = Map::new();
    for (key, field) in [
        ("inheritable", "CapInh"),
        ("permitted", "CapPrm"),
        ("effective", "CapEff"),
        ("bounding", "CapBnd"),
        ("ambient", "CapAmb"),
    ] {
        let v = status_field(field);
        let Some(hex) = v.as_str() else {
            return v;
        };
        let mask = u64::from_str_radix(hex, 16).unwrap_or(0);
        let names: Vec<String> = (0..64)
            .filter(|bit| mask & (1u64 << bit) != 0)
            .map(|bit| CAP_NAMES.get(bit).map_or_else(|| format!("CAP_{bit}"), |n| (*n).to_string()))
            .collect();
        m.insert(key.to_string(), json!({"hex": hex, "names": names}));
    }
    Value::Object(m)
}

/// /proc/self/mountinfo, one object per line, in kernel order (which is mount order).
pub fn mounts() -> Value {
    let text = match read("/proc/self/mountinfo") {
        Ok(t) => t,
        Err(e) => return e,
    };
    let mut list = Vec::new();
    for line in text.lines() {
        let (left, right) = line.split_once(" - ").unwrap_or((line, ""));
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        let optional: Vec<&str> = l.get(6..).unwrap_or_default().to_vec();
        let propagation = if optional.iter().any(|o| o.starts_with("shared:")) {
            "shared"
        } else if optional.iter().any(|o| o.starts_with("master:")) {
            "slave"
        } else if optional.contains(&"unbindable") {
            "unbindable"
        } else {
            "private"
        };
        list.push(json!({
            "id": l.first().and_then(|s| s.parse::<u64>().ok()),
            "parent": l.get(1).and_then(|s| s.parse::<u64>().ok()),
            "dev": l.get(2),
            "root": l.get(3).map(|s| unescape(s)),
            "mount_point": l.get(4).map(|s| unescape(s)),
            "options": l.get(5).map(|s| s.split(',').collect::<Vec<_>>()),
            "optional": optional,
            "propagation": propagation,
            "fstype": r.first(),
            "source": r.get(1).map(|s| unescape(s)),
            "super_options": r.get(2).map(|s| s.split(',').collect::<Vec<_>>()),
        }));
    }
    Value::Array(list)
}

/// Undo the octal escapes (`\040` for space) that mountinfo uses in paths.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Namespace inode numbers of `/proc/<pid>/ns/*` (`null` for a type the kernel lacks).
pub fn namespaces(pid: &str) -> Value {
    let mut m = Map::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"] {
        let v = std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
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

pub fn oom_score_adj() -> Value {
    match read("/proc/self/oom_score_adj") {
        Ok(s) => s.trim().parse::<i64>().map_or(Value::Null, Value::from),
        Err(e) => e,
    }
}

/// /proc/self/cgroup as `[{hierarchy, controllers, path}]`.
pub fn cgroup() -> Value {
    match read("/proc/self/cgroup") {
        Ok(s) => Value::Array(
            s.lines()
                .filter_map(|l| {
                    let mut it = l.splitn(3, ':');
                    let (h, c, p) = (it.next()?, it.next()?, it.next()?);
                    Some(json!({
                        "hierarchy": h.parse::<u64>().ok(),
                        "controllers": if c.is_empty() { vec![] } else { c.split(',').collect::<Vec<_>>() },
                        "path": p,
                    }))
                })
                .collect(),
        ),
        Err(e) => e,
    }
}

/// Scheduling policy, nice and rt priority from /proc/self/stat (fields 19, 40, 41).
pub fn sched() -> Value {
    let stat = match read("/proc/self/stat") {
        Ok(s) => s,
        Err(e) => return e,
    };
    // Fields after the parenthesised comm start at field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|s| s.parse::<i64>().ok());
    let policy = field(41);
    let name = match policy {
        Some(0) => "SCHED_OTHER",
        Some(1) => "SCHED_FIFO",
        Some(2) => "SCHED_RR",
        Some(3) => "SCHED_BATCH",
        Some(5) => "SCHED_IDLE",
        Some(6) => "SCHED_DEADLINE",
        _ => "unknown",
    };
    json!({"policy": name, "policy_number": policy, "nice": field(19), "rt_priority": field(40)})
}
