//! `linux.resources` as systemd unit properties, so that systemd knows the limits it must keep
//! (it writes them again on every daemon-reload). The cgroup files are still written by the
//! cgroupfs code afterwards, as runc does: properties cover what systemd understands, files
//! everything. v2 and v1 names differ (`CPUWeight` / `CPUShares`, `MemoryMax` / `MemoryLimit`,
//! `IOWeight` / `BlockIOWeight`).

use std::fs;

use oci_spec::runtime::LinuxResources;

use super::wire::Value;
use crate::cgroup::CgroupError;
use crate::cgroup::convert::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2};
use crate::cgroup::devices::{self, DevType, DeviceState};

/// systemd's "infinity".
const INFINITY: u64 = u64::MAX;

pub(crate) type Property = (String, Value);

fn prop(name: &str, v: Value) -> Property {
    (name.to_owned(), v)
}

/// The accounting every container unit gets, so that its controllers are enabled.
pub(crate) fn accounting(v2: bool) -> Vec<Property> {
    let io = if v2 { "IOAccounting" } else { "BlockIOAccounting" };
    ["MemoryAccounting", "CPUAccounting", io, "TasksAccounting"].iter().map(|n| prop(n, Value::Bool(true))).collect()
}

/// Properties for the fields set in `r` (a whole config at create, a partial one at update).
pub(crate) fn for_resources(r: &LinuxResources, v2: bool, with_devices: bool) -> Result<Vec<Property>, CgroupError> {
    let mut out = Vec::new();
    let limit = |n: i64| if n < 0 { INFINITY } else { n as u64 };
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            out.push(prop(if v2 { "MemoryMax" } else { "MemoryLimit" }, Value::U64(limit(l))));
        }
        if v2 {
            if let Some(l) = m.reservation().filter(|l| *l != 0) {
                out.push(prop("MemoryLow", Value::U64(limit(l))));
            }
            if let (Some(swap), Some(l)) = (m.swap(), m.limit()) {
                let v = swap_to_v2(Some(swap), l).map_err(|reason| CgroupError::InvalidResource {
                    field: "memory.swap".into(),
                    reason: reason.into(),
                })?;
                if let Some(v) = v {
                    out.push(prop("MemorySwapMax", Value::U64(limit(v))));
                }
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            let (name, v) = if v2 { ("CPUWeight", shares_to_weight(s)) } else { ("CPUShares", s) };
            out.push(prop(name, Value::U64(v)));
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            out.push(prop("CPUQuotaPerSecUSec", Value::U64(quota_per_sec(quota, period))));
        }
        if period != 0 {
            out.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
        }
        if v2 {
            if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                out.push(prop("AllowedCPUs", bitmask("cpu.cpus", cpus)?));
            }
            if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                out.push(prop("AllowedMemoryNodes", bitmask("cpu.mems", mems)?));
            }
        }
    }
    if let Some(p) = r.pids() {
        match p.limit() {
            0 => {}
            n => out.push(prop("TasksMax", Value::U64(limit(n)))),
        }
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()).filter(|w| *w != 0) {
        let (name, v) = if v2 { ("IOWeight", blkio_weight_to_io_weight(w)) } else { ("BlockIOWeight", u64::from(w)) };
        out.push(prop(name, Value::U64(v)));
    }
    if with_devices {
        let rules = devices::parse_rules(r.devices().as_deref().unwrap_or_default())?;
        out.extend(device_properties(&devices::fold(&rules)?));
    }
    Ok(out)
}

/// runc's conversion: microseconds per second of CPU time, rounded up to whole percents
/// (systemd keeps a percentage) so that the cgroup's own cpu.max is never below the config's.
fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = if period == 0 { 100_000 } else { period };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// "0-2,4" → the bytes systemd takes for a CPU or NUMA node set (CPU 8·i+j is bit j of byte i).
fn bitmask(field: &str, list: &str) -> Result<Value, CgroupError> {
    let bad = || CgroupError::InvalidResource { field: field.into(), reason: format!("invalid list {list:?}") };
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (usize, usize) = (lo.parse().map_err(|_| bad())?, hi.parse().map_err(|_| bad())?);
        if lo > hi || hi >= 1 << 16 {
            return Err(bad());
        }
        for n in lo..=hi {
            if bytes.len() <= n / 8 {
                bytes.resize(n / 8 + 1, 0);
            }
            bytes[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(Value::Array("y".into(), bytes.into_iter().map(Value::Byte).collect()))
}

/// DevicePolicy and DeviceAllow for the folded rules. Only a deny-by-default list can be said to
/// systemd; an allow-by-default one (with denied exceptions) is left to the cgroup files (the
/// unit keeps DevicePolicy=auto, which allows everything).
fn device_properties(state: &DeviceState) -> Vec<Property> {
    if state.default_allow {
        return Vec::new();
    }
    let names = fs::read_to_string("/proc/devices").unwrap_or_default();
    let allow = state
        .exceptions
        .iter()
        .filter_map(|(key, access)| {
            let group = match key.typ {
                DevType::Char => "char",
                DevType::Block => "block",
            };
            let path = match (key.major, key.minor) {
                (Some(major), Some(minor)) => format!("/dev/{group}/{major}:{minor}"),
                (Some(major), None) => format!("{group}-{}", driver_name(&names, key.typ, major)?),
                (None, _) => format!("{group}-*"),
            };
            Some(Value::Struct(vec![Value::Str(path), Value::Str(access.to_string())]))
        })
        .collect();
    vec![prop("DevicePolicy", Value::str("strict")), prop("DeviceAllow", Value::Array("(ss)".into(), allow))]
}

/// The driver of a major number in /proc/devices ("136 pts" → "pts"), which is how systemd names
/// every device of one major.
fn driver_name(proc_devices: &str, typ: DevType, major: u32) -> Option<String> {
    let section = match typ {
        DevType::Char => "Character devices:",
        DevType::Block => "Block devices:",
    };
    proc_devices.split("\n\n").find(|s| s.trim_start().starts_with(section))?.lines().skip(1).find_map(|l| {
        let (num, name) = l.trim().split_once(' ')?;
        (num.parse() == Ok(major)).then(|| name.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn names(props: &[Property]) -> Vec<&str> {
        props.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn get<'a>(props: &'a [Property], name: &str) -> &'a Value {
        &props.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} missing in {props:?}")).1
    }

    const ALL: &str = r#"{"memory": {"limit": 134217728, "reservation": 67108864, "swap": 268435456},
        "cpu": {"shares": 512, "quota": 25000, "period": 100000, "cpus": "0-1,3", "mems": "0"},
        "pids": {"limit": 42}, "blockIO": {"weight": 500}}"#;

    #[test]
    fn v2_names_and_values() {
        let p = for_resources(&resources(ALL), true, false).unwrap();
        assert_eq!(
            names(&p),
            [
                "MemoryMax",
                "MemoryLow",
                "MemorySwapMax",
                "CPUWeight",
                "CPUQuotaPerSecUSec",
                "CPUQuotaPeriodUSec",
                "AllowedCPUs",
                "AllowedMemoryNodes",
                "TasksMax",
                "IOWeight"
            ]
        );
        assert_eq!(get(&p, "MemoryMax"), &Value::U64(134217728));
        assert_eq!(get(&p, "MemorySwapMax"), &Value::U64(134217728));
        assert_eq!(get(&p, "CPUWeight"), &Value::U64(shares_to_weight(512)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), &Value::U64(250_000));
        assert_eq!(get(&p, "AllowedCPUs"), &Value::Array("y".into(), vec![Value::Byte(0b1011)]));
        assert_eq!(get(&p, "TasksMax"), &Value::U64(42));
        assert_eq!(get(&p, "IOWeight"), &Value::U64(blkio_weight_to_io_weight(500)));
    }

    #[test]
    fn v1_names_and_values() {
        let p = for_resources(&resources(ALL), false, false).unwrap();
        assert_eq!(
            names(&p),
            ["MemoryLimit", "CPUShares", "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "TasksMax", "BlockIOWeight"]
        );
        assert_eq!(get(&p, "CPUShares"), &Value::U64(512));
        assert_eq!(get(&p, "BlockIOWeight"), &Value::U64(500));
    }

    #[test]
    fn unlimited_values_and_rounding() {
        let p = for_resources(
            &resources(r#"{"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}"#),
            true,
            false,
        )
        .unwrap();
        assert_eq!(get(&p, "MemoryMax"), &Value::U64(INFINITY));
        assert_eq!(get(&p, "TasksMax"), &Value::U64(INFINITY));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), &Value::U64(INFINITY));
        // 1234 µs per 100 ms is 1.234 %: rounded up to 2 %.
        assert_eq!(quota_per_sec(1234, 100_000), 20_000);
        assert_eq!(quota_per_sec(50_000, 0), 500_000);
        assert!(for_resources(&resources(r#"{"cpu": {"cpus": "3-1"}}"#), true, false).is_err());
    }

    #[test]
    fn devices_deny_by_default_become_a_strict_policy() {
        let r = resources(
            r#"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]}"#,
        );
        let p = for_resources(&r, true, true).unwrap();
        assert_eq!(get(&p, "DevicePolicy"), &Value::str("strict"));
        let Value::Array(_, allowed) = get(&p, "DeviceAllow") else { panic!() };
        let fuse = Value::Struct(vec![Value::str("/dev/char/10:229"), Value::str("rw")]);
        assert!(allowed.contains(&fuse), "{allowed:?}");
        let null = Value::Struct(vec![Value::str("/dev/char/1:3"), Value::str("rwm")]);
        assert!(allowed.contains(&null), "{allowed:?}");
        assert!(allowed.contains(&Value::Struct(vec![Value::str("char-*"), Value::str("m")])), "{allowed:?}");
        // Allow-all leaves the policy to the files.
        let open = resources(r#"{"devices": [{"allow": true, "access": "rwm"}]}"#);
        assert!(for_resources(&open, true, true).unwrap().is_empty());
    }

    #[test]
    fn driver_names_from_proc_devices() {
        let text = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n";
        assert_eq!(driver_name(text, DevType::Char, 136).as_deref(), Some("pts"));
        assert_eq!(driver_name(text, DevType::Block, 8).as_deref(), Some("sd"));
        assert_eq!(driver_name(text, DevType::Block, 136), None);
    }
}
