//! cpu: shares/weight, quota, period, burst, realtime, idle. (cpus/mems: cpuset.rs.)
//!
//! 0 means "unset" for shares, quota and period, as in runc.

use oci_spec::runtime::LinuxCpu;

use super::Mode;
use crate::cgroup::CgroupError;
use crate::cgroup::convert::shares_to_weight;
use crate::cgroup::dir::CgroupDir;

const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;

fn shares(c: &LinuxCpu) -> Option<u64> {
    c.shares().filter(|s| *s != 0)
}
fn quota(c: &LinuxCpu) -> Option<i64> {
    c.quota().filter(|q| *q != 0)
}
fn period(c: &LinuxCpu) -> Option<u64> {
    c.period().filter(|p| *p != 0)
}

pub(super) fn is_set_v2(c: &LinuxCpu) -> bool {
    shares(c).is_some() || quota(c).is_some() || period(c).is_some() || c.burst().is_some() || c.idle().is_some()
}

pub(super) fn is_set_v1(c: &LinuxCpu) -> bool {
    is_set_v2(c) || c.realtime_runtime().is_some_and(|r| r != 0) || c.realtime_period().is_some_and(|p| p != 0)
}

pub(super) fn ignored_v2(c: &LinuxCpu) -> Vec<&'static str> {
    let mut out = Vec::new();
    if c.realtime_runtime().is_some_and(|r| r != 0) {
        out.push("cpu.realtimeRuntime");
    }
    if c.realtime_period().is_some_and(|p| p != 0) {
        out.push("cpu.realtimePeriod");
    }
    out
}

/// v1 clamps shares silently; say so instead (runc's wording). v2 converts any value.
pub(super) fn validate_v1(c: &LinuxCpu) -> Result<(), CgroupError> {
    match shares(c) {
        Some(s) if s < MIN_SHARES => Err(bad(format!("the minimum allowed cpu-shares is {MIN_SHARES}"))),
        Some(s) if s > MAX_SHARES => Err(bad(format!("the maximum allowed cpu-shares is {MAX_SHARES}"))),
        _ => Ok(()),
    }
}

fn bad(reason: String) -> CgroupError {
    CgroupError::InvalidResource { field: "cpu.shares".into(), reason }
}

pub(super) fn apply(dir: &CgroupDir, c: &LinuxCpu, v2: bool, mode: Mode) -> Result<(), CgroupError> {
    if v2 { apply_v2(dir, c, mode) } else { apply_v1(dir, c) }
}

/// Write `first`; if the kernel refuses it with EINVAL while `then` is also to be written,
/// write `then` and retry `first` (a new period can be invalid with the old quota and the
/// other way round).
fn write_pair(dir: &CgroupDir, first: Option<(&str, String)>, then: Option<(&str, String)>) -> Result<(), CgroupError> {
    let retry = match &first {
        Some((file, value)) => match dir.write_raw(file, value) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && then.is_some() => true,
            Err(e) => return Err(dir.write_error(file, value, e)),
        },
        None => false,
    };
    if let Some((file, value)) = &then {
        dir.write(file, value)?;
    }
    if retry && let Some((file, value)) = &first {
        dir.write(file, value)?;
    }
    Ok(())
}

fn apply_v1(dir: &CgroupDir, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(s) = shares(c) {
        dir.write("cpu.shares", &s.to_string())?;
    }
    write_pair(
        dir,
        period(c).map(|p| ("cpu.cfs_period_us", p.to_string())),
        quota(c).map(|q| ("cpu.cfs_quota_us", q.to_string())),
    )?;
    if let Some(b) = c.burst() {
        // A burst above the current quota is EINVAL: the quota was written just before.
        dir.write("cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        dir.write("cpu.idle", &i.to_string())?;
    }
    write_pair(
        dir,
        c.realtime_period().filter(|p| *p != 0).map(|p| ("cpu.rt_period_us", p.to_string())),
        c.realtime_runtime().filter(|r| *r != 0).map(|r| ("cpu.rt_runtime_us", r.to_string())),
    )
}

fn apply_v2(dir: &CgroupDir, c: &LinuxCpu, mode: Mode) -> Result<(), CgroupError> {
    if let Some(i) = c.idle() {
        dir.write("cpu.idle", &i.to_string())?;
    }
    if let Some(s) = shares(c) {
        dir.write("cpu.weight", &shares_to_weight(s).to_string())?;
    }
    let max = match (quota(c), period(c)) {
        (None, None) => None,
        // Without a period the kernel keeps the current one.
        (Some(q), None) => Some(quota_str(q)),
        (q, Some(p)) => {
            let q = match q {
                Some(q) => quota_str(q),
                // The period alone: keep the quota in force.
                None if mode.update => {
                    let cur = dir.read("cpu.max")?;
                    cur.split_whitespace().next().unwrap_or("max").to_owned()
                }
                None => "max".to_owned(),
            };
            Some(format!("{q} {p}"))
        }
    };
    write_pair(dir, c.burst().map(|b| ("cpu.max.burst", b.to_string())), max.map(|m| ("cpu.max", m)))
}

fn quota_str(q: i64) -> String {
    if q > 0 { q.to_string() } else { "max".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::dir::testing::TempTree;

    fn cpu(json: &str) -> LinuxCpu {
        serde_json::from_str(json).unwrap()
    }

    const CREATE: Mode = Mode { update: false };

    #[test]
    fn v1_files() {
        let t = TempTree::new(&[
            "cpu.shares",
            "cpu.cfs_period_us",
            "cpu.cfs_quota_us",
            "cpu.cfs_burst_us",
            "cpu.idle",
            "cpu.rt_period_us",
            "cpu.rt_runtime_us",
        ]);
        let c = cpu(r#"{"shares":512,"quota":50000,"period":100000,"burst":1000,"idle":1,
                       "realtimeRuntime":950,"realtimePeriod":1000}"#);
        apply(&CgroupDir::new(t.path().into()), &c, false, CREATE).unwrap();
        for (f, v) in [
            ("cpu.shares", "512\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.cfs_quota_us", "50000\n"),
            ("cpu.cfs_burst_us", "1000\n"),
            ("cpu.idle", "1\n"),
            ("cpu.rt_period_us", "1000\n"),
            ("cpu.rt_runtime_us", "950\n"),
        ] {
            assert_eq!(t.get(f), v, "{f}");
        }
    }

    #[test]
    fn v2_weight_and_max() {
        let t = TempTree::new(&["cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle"]);
        apply(&CgroupDir::new(t.path().into()), &cpu(r#"{"shares":1024,"quota":50000,"period":100000}"#), true, CREATE)
            .unwrap();
        assert_eq!(t.get("cpu.weight"), "100\n");
        assert_eq!(t.get("cpu.max"), "50000 100000\n");
        assert_eq!(t.get("cpu.max.burst"), "");

        let t = TempTree::new(&["cpu.weight", "cpu.max"]);
        apply(&CgroupDir::new(t.path().into()), &cpu(r#"{"quota":-1,"period":20000}"#), true, CREATE).unwrap();
        assert_eq!(t.get("cpu.max"), "max 20000\n");
        assert_eq!(t.get("cpu.weight"), "");
    }

    #[test]
    fn v2_update_of_one_half_keeps_the_other() {
        let t = TempTree::new(&["cpu.max"]);
        t.put("cpu.max", "30000 50000\n");
        let d = CgroupDir::new(t.path().into());
        apply(&d, &cpu(r#"{"period":200000}"#), true, Mode { update: true }).unwrap();
        assert_eq!(t.get("cpu.max"), "30000 50000\n30000 200000\n");
        apply(&d, &cpu(r#"{"quota":10000}"#), true, Mode { update: true }).unwrap();
        assert!(t.get("cpu.max").ends_with("\n10000\n"));
    }

    #[test]
    fn v1_share_bounds() {
        assert!(
            validate_v1(&cpu(r#"{"shares":1}"#)).unwrap_err().to_string().contains("minimum allowed cpu-shares is 2")
        );
        assert!(validate_v1(&cpu(r#"{"shares":262145}"#)).is_err());
        assert!(validate_v1(&cpu(r#"{"shares":2}"#)).is_ok());
        assert!(validate_v1(&cpu(r#"{"shares":0}"#)).is_ok());
    }
}
