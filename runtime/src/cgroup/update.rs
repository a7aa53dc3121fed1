//! Input of `update`: `--resources <file|->` JSON, or runc's individual flags.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::CgroupError;

/// A partial `linux.resources` as podman (`--resources=<file>`) and containerd
/// (`--resources -`, on stdin) send it: only the fields to change.
pub fn parse_resources(json: &[u8]) -> Result<LinuxResources, CgroupError> {
    serde_json::from_slice(json).map_err(CgroupError::ParseResources)
}

/// runc's `update` flags, as given on the command line (unset = `None`).
#[derive(Debug, Clone, Default)]
pub struct UpdateFlags {
    pub blkio_weight: Option<String>,
    pub cpu_period: Option<String>,
    pub cpu_quota: Option<String>,
    pub cpu_burst: Option<String>,
    pub cpu_share: Option<String>,
    pub cpu_rt_period: Option<String>,
    pub cpu_rt_runtime: Option<String>,
    pub cpu_idle: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub pids_limit: Option<String>,
}

impl UpdateFlags {
    /// The resources these flags change. Memory sizes take runc's forms ("100m", "1.5g",
    /// "-1"); like runc, a memory limit of -1 without a swap value also lifts swap.
    pub fn to_resources(&self) -> Result<LinuxResources, CgroupError> {
        let mut r = LinuxResources::default();

        if let Some(w) = &self.blkio_weight {
            let w: u16 = num("blkio-weight", w)?;
            if w != 0 {
                let mut b = LinuxBlockIo::default();
                b.set_weight(Some(w));
                r.set_block_io(Some(b));
            }
        }

        let mut cpu = LinuxCpu::default();
        let mut cpu_set = false;
        if let Some(v) = &self.cpu_period {
            cpu.set_period(Some(num("cpu-period", v)?));
            cpu_set = true;
        }
        if let Some(v) = &self.cpu_quota {
            cpu.set_quota(Some(num("cpu-quota", v)?));
            cpu_set = true;
        }
        if let Some(v) = &self.cpu_burst {
            cpu.set_burst(Some(num("cpu-burst", v)?));
            cpu_set = true;
        }
        if let Some(v) = &self.cpu_share {
            cpu.set_shares(Some(num("cpu-share", v)?));
            cpu_set = true;
        }
        if let Some(v) = &self.cpu_rt_period {
            cpu.set_realtime_period(Some(num("cpu-rt-period", v)?));
            cpu_set = true;
        }
        if let Some(v) = &self.cpu_rt_runtime {
            cpu.set_realtime_runtime(Some(num("cpu-rt-runtime", v)?));
            cpu_set = true;
        }
        if let Some(v) = &self.cpu_idle {
            cpu.set_idle(Some(num("cpu-idle", v)?));
            cpu_set = true;
        }
        if let Some(v) = self.cpuset_cpus.as_ref().filter(|v| !v.is_empty()) {
            cpu.set_cpus(Some(v.clone()));
            cpu_set = true;
        }
        if let Some(v) = self.cpuset_mems.as_ref().filter(|v| !v.is_empty()) {
            cpu.set_mems(Some(v.clone()));
            cpu_set = true;
        }
        if cpu_set {
            r.set_cpu(Some(cpu));
        }

        let mut mem = LinuxMemory::default();
        let mut mem_set = false;
        let size = |flag: &'static str, v: &Option<String>| {
            v.as_deref()
                .map(|v| parse_size(v).map_err(|reason| CgroupError::InvalidFlag { flag, value: v.to_owned(), reason }))
                .transpose()
        };
        if let Some(v) = size("memory", &self.memory)? {
            mem.set_limit(Some(v));
            mem_set = true;
        }
        if let Some(v) = size("memory-swap", &self.memory_swap)? {
            mem.set_swap(Some(v));
            mem_set = true;
        }
        if let Some(v) = size("memory-reservation", &self.memory_reservation)? {
            mem.set_reservation(Some(v));
            mem_set = true;
        }
        if let Some(v) = size("kernel-memory", &self.kernel_memory)? {
            mem.set_kernel(Some(v));
            mem_set = true;
        }
        if let Some(v) = size("kernel-memory-tcp", &self.kernel_memory_tcp)? {
            mem.set_kernel_tcp(Some(v));
            mem_set = true;
        }
        if mem_set {
            r.set_memory(Some(mem));
        }

        if let Some(v) = &self.pids_limit {
            let mut p = LinuxPids::default();
            p.set_limit(num("pids-limit", v)?);
            r.set_pids(Some(p));
        }
        Ok(r)
    }
}

fn num<T: std::str::FromStr>(flag: &'static str, v: &str) -> Result<T, CgroupError> {
    v.trim().parse().map_err(|_| CgroupError::InvalidFlag {
        flag,
        value: v.to_owned(),
        reason: "not a number in range",
    })
}

/// A byte size as runc (go-units RAMInBytes) reads it: a number with an optional fraction and
/// an optional binary unit (b, k, m, g, t, p; "kb", "KiB" alike, case-insensitive); "-1" is
/// unlimited.
pub fn parse_size(s: &str) -> Result<i64, &'static str> {
    let s = s.trim();
    if s == "-1" {
        return Ok(-1);
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err("expected a size such as 1024, 512k, 100m or 2g");
    }
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err("unknown size unit (use b, k, m, g, t or p)"),
    };
    let value: f64 = number.parse().map_err(|_| "expected a size such as 1024, 512k, 100m or 2g")?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err("size too large");
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("100m"), Ok(100 << 20));
        assert_eq!(parse_size("100MB"), Ok(100 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert_eq!(parse_size("10 k"), Ok(10240));
        assert_eq!(parse_size("-1"), Ok(-1));
        for bad in ["", "m", "1x", "-2", "1.", ".5m", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn podman_and_containerd_json() {
        let r = parse_resources(br#"{"memory":{"limit":104857600,"swap":209715200}}"#).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(104_857_600));
        assert!(r.cpu().is_none() && r.devices().is_none());
        let r = parse_resources(br#"{"memory":{"limit":134217728},"cpu":{"shares":512},"pids":{"limit":77}}"#).unwrap();
        assert_eq!(r.pids().as_ref().unwrap().limit(), 77);
        assert!(parse_resources(b"{\"memory\":{\"limit\":\"x\"}}").is_err());
    }

    #[test]
    fn flags_become_resources() {
        let f = UpdateFlags {
            memory: Some("128m".into()),
            cpu_share: Some("512".into()),
            cpu_quota: Some("50000".into()),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some("20".into()),
            ..Default::default()
        };
        let r = f.to_resources().unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(128 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50000));
        assert_eq!(r.cpu().as_ref().unwrap().cpus().as_deref(), Some("0"));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
        assert!(r.block_io().is_none());
        let err = UpdateFlags { cpu_period: Some("x".into()), ..Default::default() }.to_resources().unwrap_err();
        assert!(err.to_string().contains("--cpu-period"), "{err}");
    }
}
