//! memory: limit, reservation, swap, kernel, kernelTCP, swappiness, disableOOMKiller,
//! useHierarchy, checkBeforeUpdate.

use oci_spec::runtime::LinuxMemory;

use super::{Mode, write_if_supported};
use crate::cgroup::CgroupError;
use crate::cgroup::convert::swap_to_v2;
use crate::cgroup::dir::CgroupDir;

pub(super) fn is_set_v1(m: &LinuxMemory) -> bool {
    is_set_v2(m)
        || m.kernel().is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
        || m.use_hierarchy().is_some()
}

pub(super) fn is_set_v2(m: &LinuxMemory) -> bool {
    m.limit().is_some() || m.reservation().is_some() || m.swap().is_some()
}

pub(super) fn ignored_v2(m: &LinuxMemory) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (set, name) in [
        (m.kernel().is_some(), "memory.kernel"),
        (m.kernel_tcp().is_some(), "memory.kernelTCP"),
        (m.swappiness().is_some(), "memory.swappiness"),
        (m.disable_oom_killer().is_some(), "memory.disableOOMKiller"),
        (m.use_hierarchy().is_some(), "memory.useHierarchy"),
    ] {
        if set {
            out.push(name);
        }
    }
    out
}

pub(super) fn validate(m: &LinuxMemory) -> Result<(), CgroupError> {
    let bad = |field: &str, reason: String| CgroupError::InvalidResource { field: format!("memory.{field}"), reason };
    for (name, v) in [
        ("limit", m.limit()),
        ("reservation", m.reservation()),
        ("swap", m.swap()),
        ("kernel", m.kernel()),
        ("kernelTCP", m.kernel_tcp()),
    ] {
        if let Some(v) = v.filter(|v| *v < -1) {
            return Err(bad(name, format!("{v} is neither a byte count nor -1 (unlimited)")));
        }
    }
    if let Some(s) = m.swappiness().filter(|s| *s > 100) {
        return Err(bad("swappiness", format!("{s} is out of range 0-100")));
    }
    if let (Some(limit), Some(swap)) = (m.limit(), m.swap())
        && limit > 0
        && swap > 0
        && swap < limit
    {
        return Err(bad("swap", format!("memory+swap {swap} is below the memory limit {limit}")));
    }
    Ok(())
}

pub(super) fn apply(dir: &CgroupDir, m: &LinuxMemory, v2: bool, mode: Mode) -> Result<(), CgroupError> {
    if mode.update && m.check_before_update() == Some(true) {
        check_usage(dir, m, if v2 { "memory.current" } else { "memory.usage_in_bytes" })?;
    }
    if v2 { apply_v2(dir, m, mode) } else { apply_v1(dir, m, mode) }
}

/// checkBeforeUpdate: refuse a new limit at or below what the cgroup uses now.
fn check_usage(dir: &CgroupDir, m: &LinuxMemory, usage_file: &str) -> Result<(), CgroupError> {
    if m.limit().is_none_or(|l| l <= 0) && m.swap().is_none_or(|s| s <= 0) {
        return Ok(());
    }
    let usage = dir.read_u64(usage_file)?;
    for (what, limit) in [("the memory+swap limit", m.swap()), ("the memory limit", m.limit())] {
        if let Some(limit) = limit.filter(|l| *l > 0 && *l as u64 <= usage) {
            return Err(CgroupError::BelowUsage { what, limit, usage });
        }
    }
    Ok(())
}

fn apply_v1(dir: &CgroupDir, m: &LinuxMemory, mode: Mode) -> Result<(), CgroupError> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let limit = m.limit();
    let mut swap = m.swap().filter(|s| *s != 0);
    // An unlimited memory limit cannot exceed a lower memory+swap limit: lift both.
    if limit == Some(-1) && swap.is_none() && mode.update && dir.exists(MEMSW) {
        swap = Some(-1);
    }
    // memory.limit ≤ memory.memsw.limit must hold after each write: raise before lowering.
    let swap_first = match (limit, swap) {
        (Some(_), Some(-1)) => true,
        (Some(_), Some(s)) if mode.update => dir.read_u64(LIMIT)? < s as u64,
        _ => false,
    };
    let write_swap = |s: i64| match dir.write_raw(MEMSW, &s.to_string()) {
        Ok(()) => Ok(()),
        // Without swap accounting, "no swap limit" and "no swap" need no file.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && (s == -1 || Some(s) == limit) => Ok(()),
        Err(e) => Err(dir.write_error(MEMSW, &s.to_string(), e)),
    };
    let write_limit = |l: i64| match dir.write_raw(LIMIT, &l.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let usage = dir.read_u64("memory.usage_in_bytes")?;
            Err(CgroupError::BelowUsage { what: "the memory limit", limit: l, usage })
        }
        Err(e) => Err(dir.write_error(LIMIT, &l.to_string(), e)),
    };
    if swap_first {
        swap.map_or(Ok(()), write_swap)?;
        limit.map_or(Ok(()), write_limit)?;
    } else {
        limit.map_or(Ok(()), write_limit)?;
        swap.map_or(Ok(()), write_swap)?;
    }
    if let Some(r) = m.reservation() {
        dir.write("memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(k) = m.kernel() {
        write_if_supported(dir, "memory.kmem.limit_in_bytes", &k.to_string())?;
    }
    if let Some(k) = m.kernel_tcp() {
        dir.write("memory.kmem.tcp.limit_in_bytes", &k.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        dir.write("memory.swappiness", &s.to_string())?;
    }
    if let Some(d) = m.disable_oom_killer().filter(|d| *d || mode.update) {
        dir.write("memory.oom_control", if d { "1" } else { "0" })?;
    }
    if let Some(h) = m.use_hierarchy() {
        let value = if h { "1" } else { "0" };
        match dir.write_raw("memory.use_hierarchy", value) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !h => {
                return Err(CgroupError::InvalidResource {
                    field: "memory.useHierarchy".into(),
                    reason: "this kernel always accounts memory hierarchically".into(),
                });
            }
            Err(e) => return Err(dir.write_error("memory.use_hierarchy", value, e)),
        }
    }
    Ok(())
}

fn apply_v2(dir: &CgroupDir, m: &LinuxMemory, mode: Mode) -> Result<(), CgroupError> {
    let swap = m.swap();
    if swap.is_some_and(|s| s != 0) || m.limit() == Some(-1) {
        // The limit in force: the new one, else (update) the current one, else unknown.
        let limit = match m.limit() {
            Some(l) => l,
            None if mode.update => match dir.read_u64("memory.max")? {
                u64::MAX => -1,
                l => l as i64,
            },
            None => 0,
        };
        let v2 = swap_to_v2(swap, limit)
            .map_err(|reason| CgroupError::InvalidResource { field: "memory.swap".into(), reason: reason.into() })?;
        if let Some(v) = v2 {
            let value = max_or(v);
            match dir.write_raw("memory.swap.max", &value) {
                Ok(()) => {}
                // No swap accounting: nothing to lift, and "no swap" holds anyway.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && (v == -1 || v == 0) => {}
                Err(e) => return Err(dir.write_error("memory.swap.max", &value, e)),
            }
        }
    }
    if let Some(l) = m.limit() {
        dir.write("memory.max", &max_or(l))?;
    }
    if let Some(r) = m.reservation() {
        dir.write("memory.low", &max_or(r))?;
    }
    Ok(())
}

fn max_or(v: i64) -> String {
    if v == -1 { "max".to_owned() } else { v.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::dir::testing::TempTree;

    fn mem(json: &str) -> LinuxMemory {
        serde_json::from_str(json).unwrap()
    }

    const CREATE: Mode = Mode { update: false };
    const UPDATE: Mode = Mode { update: true };

    const V1_FILES: &[&str] = &[
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.kmem.tcp.limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
        "memory.use_hierarchy",
        "memory.usage_in_bytes",
    ];

    #[test]
    fn v1_writes_every_set_field_and_nothing_else() {
        let t = TempTree::new(V1_FILES);
        let m = mem(r#"{"limit":67108864,"swap":134217728,"reservation":1048576,"kernel":1,"kernelTCP":2097152,
                "swappiness":10,"disableOOMKiller":true,"useHierarchy":true}"#);
        apply(&CgroupDir::new(t.path().into()), &m, false, CREATE).unwrap();
        assert_eq!(t.get("memory.limit_in_bytes"), "67108864\n");
        assert_eq!(t.get("memory.memsw.limit_in_bytes"), "134217728\n");
        assert_eq!(t.get("memory.soft_limit_in_bytes"), "1048576\n");
        assert_eq!(t.get("memory.kmem.tcp.limit_in_bytes"), "2097152\n");
        assert_eq!(t.get("memory.swappiness"), "10\n");
        assert_eq!(t.get("memory.oom_control"), "1\n");
        assert_eq!(t.get("memory.use_hierarchy"), "1\n");
        // memory.kmem.limit_in_bytes does not exist (as on kernels that dropped it): skipped.

        let t = TempTree::new(V1_FILES);
        apply(&CgroupDir::new(t.path().into()), &mem(r#"{"limit":100}"#), false, CREATE).unwrap();
        assert_eq!(t.get("memory.limit_in_bytes"), "100\n");
        for f in &V1_FILES[1..] {
            assert_eq!(t.get(f), "", "{f} written");
        }
    }

    #[test]
    fn v1_update_raises_swap_before_memory_when_growing() {
        let t = TempTree::new(V1_FILES);
        t.put("memory.limit_in_bytes", "100\n");
        let d = CgroupDir::new(t.path().into());
        apply(&d, &mem(r#"{"limit":1000,"swap":2000}"#), false, UPDATE).unwrap();
        // The order shows in the memsw file being written while the limit file still held 100.
        assert_eq!(t.get("memory.memsw.limit_in_bytes"), "2000\n");
        assert_eq!(t.get("memory.limit_in_bytes"), "100\n1000\n");
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        let t = TempTree::new(V1_FILES);
        t.put("memory.usage_in_bytes", "5000\n");
        let d = CgroupDir::new(t.path().into());
        let err = apply(&d, &mem(r#"{"limit":4096,"checkBeforeUpdate":true}"#), false, UPDATE).unwrap_err();
        assert!(matches!(err, CgroupError::BelowUsage { limit: 4096, usage: 5000, .. }), "{err}");
        assert_eq!(t.get("memory.limit_in_bytes"), "");
        apply(&d, &mem(r#"{"limit":8192,"checkBeforeUpdate":true}"#), false, UPDATE).unwrap();
        assert_eq!(t.get("memory.limit_in_bytes"), "8192\n");
    }

    #[test]
    fn v2_converts_swap_and_unlimited() {
        let files = ["memory.max", "memory.swap.max", "memory.low"];
        let t = TempTree::new(&files);
        apply(
            &CgroupDir::new(t.path().into()),
            &mem(r#"{"limit":104857600,"swap":209715200,"reservation":-1}"#),
            true,
            CREATE,
        )
        .unwrap();
        assert_eq!(t.get("memory.max"), "104857600\n");
        assert_eq!(t.get("memory.swap.max"), "104857600\n");
        assert_eq!(t.get("memory.low"), "max\n");

        let t = TempTree::new(&files);
        apply(&CgroupDir::new(t.path().into()), &mem(r#"{"limit":-1}"#), true, CREATE).unwrap();
        assert_eq!(t.get("memory.max"), "max\n");
        assert_eq!(t.get("memory.swap.max"), "max\n");
    }

    #[test]
    fn v2_update_of_swap_alone_uses_the_current_limit() {
        let t = TempTree::new(&["memory.max", "memory.swap.max"]);
        t.put("memory.max", "1000\n");
        apply(&CgroupDir::new(t.path().into()), &mem(r#"{"swap":3000}"#), true, UPDATE).unwrap();
        assert_eq!(t.get("memory.swap.max"), "2000\n");
        // At create there is no limit to subtract from.
        let t = TempTree::new(&["memory.max", "memory.swap.max"]);
        assert!(apply(&CgroupDir::new(t.path().into()), &mem(r#"{"swap":3000}"#), true, CREATE).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        for json in [r#"{"swappiness":101}"#, r#"{"limit":-2}"#, r#"{"limit":200,"swap":100}"#] {
            assert!(validate(&mem(json)).is_err(), "{json}");
        }
        assert!(validate(&mem(r#"{"limit":-1,"swap":-1,"swappiness":100}"#)).is_ok());
    }
}
