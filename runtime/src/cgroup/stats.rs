//! Usage statistics in the shape of `runc events --stats` (runc 1.1's `types.Stats` JSON:
//! the same keys, the same omitted zero values, `intel_rdt: {}` and `network_interfaces: null`).
//!
//! v1 reads cpuacct/cpu/cpuset/memory/pids/blkio/hugetlb; v2 reads cpu.stat, memory.*, pids.*,
//! io.stat and hugetlb.* and converts as runc does (µs → ns; swap = memory + swap).
//! A controller the container does not have leaves its part empty.

use std::collections::BTreeMap;
use std::io;

use serde::Serialize;

use super::dir::{CgroupDir, keyed_value, parse_keyed};
use super::manager::Hierarchy;
use super::resources::page_sizes;
use super::{CgroupError, Manager};

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    /// 0 when there is no limit.
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Blkio {
    #[serde(rename = "ioServiceBytesRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServiceTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Intel RDT is not managed: always `{}`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IntelRdt {}

/// A file that may be missing (a controller or feature the kernel or the cgroup lacks).
fn optional<T>(r: Result<T, CgroupError>) -> Result<Option<T>, CgroupError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Manager {
    /// The container's usage, for `events --stats` and `events`.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        let hs = self.hierarchies();
        let v1 = |c: &str| hs.iter().find(|h| !h.unified && h.has(c)).map(|h| CgroupDir::new(h.dir.clone()));
        let v2 = hs.iter().find(|h| h.unified).map(|h: &Hierarchy| CgroupDir::new(h.dir.clone()));
        let v2_pure = self.is_unified();

        match (v1("cpuacct"), &v2) {
            (Some(d), _) => cpuacct_v1(&d, &mut s.cpu)?,
            (None, Some(d)) if v2_pure => cpu_v2(d, &mut s.cpu)?,
            _ => {}
        }
        if let Some(d) = v1("cpu") {
            throttling_v1(&d, &mut s.cpu.throttling)?;
        }
        if let Some(d) = v1("cpuset") {
            cpuset_v1(&d, &mut s.cpuset)?;
        }
        match (v1("memory"), &v2) {
            (Some(d), _) => memory_v1(&d, &mut s.memory)?,
            (None, Some(d)) if v2_pure => memory_v2(d, &mut s.memory)?,
            _ => {}
        }
        match (v1("pids"), &v2) {
            (Some(d), _) => pids(&d, &mut s.pids)?,
            (None, Some(d)) if v2_pure => pids(d, &mut s.pids)?,
            _ => {}
        }
        match (v1("blkio"), &v2) {
            (Some(d), _) => s.blkio = blkio_v1(&d)?,
            (None, Some(d)) if v2_pure => s.blkio = io_v2(d)?,
            _ => {}
        }
        match (v1("hugetlb"), &v2) {
            (Some(d), _) => s.hugetlb = hugetlb(&d, false)?,
            // On the v2 side (pure, or hybrid with hugetlb there) when enabled for the cgroup.
            (None, Some(d)) => s.hugetlb = hugetlb(d, true)?,
            _ => {}
        }
        Ok(s)
    }
}

fn cpuacct_v1(d: &CgroupDir, cpu: &mut Cpu) -> Result<(), CgroupError> {
    const NS_PER_TICK: u64 = 1_000_000_000 / 100; // cpuacct.stat counts USER_HZ ticks
    let u = &mut cpu.usage;
    u.total = d.read_u64("cpuacct.usage")?;
    let stat = d.read("cpuacct.stat")?;
    u.user = keyed_value(&stat, "user").unwrap_or(0) * NS_PER_TICK;
    u.kernel = keyed_value(&stat, "system").unwrap_or(0) * NS_PER_TICK;
    u.percpu = d.read("cpuacct.usage_percpu")?.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    if let Some(all) = optional(d.read("cpuacct.usage_all"))? {
        // "cpu user system" then one line per cpu.
        for line in all.lines().skip(1) {
            let f: Vec<u64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            if let [_, user, system] = f[..] {
                u.percpu_user.push(user);
                u.percpu_kernel.push(system);
            }
        }
    }
    Ok(())
}

fn throttling_v1(d: &CgroupDir, t: &mut Throttling) -> Result<(), CgroupError> {
    if let Some(stat) = optional(d.read("cpu.stat"))? {
        t.periods = keyed_value(&stat, "nr_periods").unwrap_or(0);
        t.throttled_periods = keyed_value(&stat, "nr_throttled").unwrap_or(0);
        t.throttled_time = keyed_value(&stat, "throttled_time").unwrap_or(0);
    }
    Ok(())
}

fn cpu_v2(d: &CgroupDir, cpu: &mut Cpu) -> Result<(), CgroupError> {
    let stat = d.read("cpu.stat")?;
    let us = |k: &str| keyed_value(&stat, k).unwrap_or(0);
    cpu.usage.total = us("usage_usec") * 1000;
    cpu.usage.user = us("user_usec") * 1000;
    cpu.usage.kernel = us("system_usec") * 1000;
    cpu.throttling.periods = us("nr_periods");
    cpu.throttling.throttled_periods = us("nr_throttled");
    cpu.throttling.throttled_time = us("throttled_usec") * 1000;
    Ok(())
}

fn cpu_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
            out.extend(a..=b);
        }
    }
    out
}

fn cpuset_v1(d: &CgroupDir, c: &mut CpuSet) -> Result<(), CgroupError> {
    c.cpus = cpu_list(&d.read("cpuset.cpus")?);
    c.mems = cpu_list(&d.read("cpuset.mems")?);
    let num = |f: &str| optional(d.read_u64(f)).map(Option::unwrap_or_default);
    c.cpu_exclusive = num("cpuset.cpu_exclusive")?;
    c.mem_hardwall = num("cpuset.mem_hardwall")?;
    c.mem_exclusive = num("cpuset.mem_exclusive")?;
    c.memory_migrate = num("cpuset.memory_migrate")?;
    c.memory_spread_page = num("cpuset.memory_spread_page")?;
    c.memory_spread_slab = num("cpuset.memory_spread_slab")?;
    c.memory_pressure = num("cpuset.memory_pressure")?;
    c.sched_load_balance = num("cpuset.sched_load_balance")?;
    c.sched_relax_domain_level =
        optional(d.read("cpuset.sched_relax_domain_level"))?.and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    Ok(())
}

fn memory_v1(d: &CgroupDir, m: &mut Memory) -> Result<(), CgroupError> {
    m.raw = d.read_keyed("memory.stat")?.into_iter().collect();
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    let entry = |prefix: &str| -> Result<Option<MemoryEntry>, CgroupError> {
        let Some(usage) = optional(d.read_u64(&format!("{prefix}.usage_in_bytes")))? else { return Ok(None) };
        Ok(Some(MemoryEntry {
            usage,
            max: d.read_u64(&format!("{prefix}.max_usage_in_bytes"))?,
            failcnt: d.read_u64(&format!("{prefix}.failcnt"))?,
            limit: optional(d.read_u64(&format!("{prefix}.limit_in_bytes")))?.unwrap_or(0),
        }))
    };
    m.usage = entry("memory")?.unwrap_or_default();
    m.swap = entry("memory.memsw")?.unwrap_or_default();
    m.kernel = entry("memory.kmem")?.unwrap_or_default();
    m.kernel_tcp = entry("memory.kmem.tcp")?.unwrap_or_default();
    Ok(())
}

fn memory_v2(d: &CgroupDir, m: &mut Memory) -> Result<(), CgroupError> {
    m.raw = d.read_keyed("memory.stat")?.into_iter().collect();
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    let events = optional(d.read("memory.events"))?.unwrap_or_default();
    m.usage = MemoryEntry {
        usage: d.read_u64("memory.current")?,
        limit: d.read_u64("memory.max")?,
        max: optional(d.read_u64("memory.peak"))?.unwrap_or(0),
        failcnt: keyed_value(&events, "max").unwrap_or(0),
    };
    // runc reports swap as memory + swap, like v1's memsw.
    if let Some(usage) = optional(d.read_u64("memory.swap.current"))? {
        let limit = d.read_u64("memory.swap.max")?;
        m.swap = MemoryEntry {
            usage: usage + m.usage.usage,
            limit: if limit == u64::MAX || m.usage.limit == u64::MAX { u64::MAX } else { limit + m.usage.limit },
            max: 0,
            failcnt: 0,
        };
    }
    Ok(())
}

fn pids(d: &CgroupDir, p: &mut Pids) -> Result<(), CgroupError> {
    p.current = d.read_u64("pids.current")?;
    p.limit = match d.read_u64("pids.max")? {
        u64::MAX => 0,
        l => l,
    };
    Ok(())
}

/// v1 blkio: BFQ's counters where the scheduler provides them, else the throttling layer's.
fn blkio_v1(d: &CgroupDir) -> Result<Blkio, CgroupError> {
    let mut b = Blkio::default();
    let prefix = if d.exists("blkio.bfq.io_service_bytes_recursive") { "blkio.bfq" } else { "blkio.throttle" };
    if let Some(t) = optional(d.read(&format!("{prefix}.io_service_bytes_recursive")))? {
        b.io_service_bytes_recursive = blkio_entries(&t);
    }
    if let Some(t) = optional(d.read(&format!("{prefix}.io_serviced_recursive")))? {
        b.io_serviced_recursive = blkio_entries(&t);
    }
    Ok(b)
}

/// Lines "8:0 Read 1282048" (and a final "Total N", skipped).
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dev, op, value) = match f[..] {
                [dev, op, value] => (dev, op, value),
                [dev, value] if dev.contains(':') => (dev, "", value),
                _ => return None,
            };
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
fn io_v2(d: &CgroupDir) -> Result<Blkio, CgroupError> {
    let mut b = Blkio::default();
    let Some(text) = optional(d.read("io.stat"))? else { return Ok(b) };
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|dev| dev.split_once(':')) else { continue };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else { continue };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry { major, minor, op: op.into(), value });
        }
    }
    Ok(b)
}

fn hugetlb(d: &CgroupDir, v2: bool) -> Result<BTreeMap<String, Hugetlb>, CgroupError> {
    let mut out = BTreeMap::new();
    for size in page_sizes() {
        let p = format!("hugetlb.{size}");
        let h = if v2 {
            let Some(usage) = optional(d.read_u64(&format!("{p}.current")))? else { continue };
            let events = optional(d.read(&format!("{p}.events")))?.unwrap_or_default();
            Hugetlb { usage, max: 0, failcnt: keyed_value(&events, "max").unwrap_or(0) }
        } else {
            let Some(usage) = optional(d.read_u64(&format!("{p}.usage_in_bytes")))? else { continue };
            Hugetlb {
                usage,
                max: d.read_u64(&format!("{p}.max_usage_in_bytes"))?,
                failcnt: d.read_u64(&format!("{p}.failcnt"))?,
            }
        };
        out.insert(size, h);
    }
    Ok(out)
}

/// Number of "oom" events in a memory.events text (for the OOM watcher).
pub(super) fn oom_count(memory_events: &str) -> u64 {
    parse_keyed(memory_events).into_iter().find(|(k, _)| k == "oom").map_or(0, |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::dir::testing::TempTree;

    #[test]
    fn empty_stats_serialize_like_runc() {
        let json = serde_json::to_string(&Stats::default()).unwrap();
        assert_eq!(
            json,
            r#"{"cpu":{"usage":{"kernel":0,"user":0},"throttling":{}},"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"sched_relax_domain_level":0},"memory":{"usage":{"limit":0,"failcnt":0},"swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0}},"pids":{},"blkio":{},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}"#
        );
    }

    #[test]
    fn v2_files_are_converted() {
        let t = TempTree::new(&[]);
        t.put(
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
        );
        t.put("memory.stat", "anon 4096\nfile 8192\n");
        t.put("memory.current", "12288\n");
        t.put("memory.max", "max\n");
        t.put("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
        t.put("memory.swap.current", "0\n");
        t.put("memory.swap.max", "max\n");
        t.put("pids.current", "2\n");
        t.put("pids.max", "50\n");
        t.put("io.stat", "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n");
        let d = CgroupDir::new(t.path().into());
        let mut s = Stats::default();
        cpu_v2(&d, &mut s.cpu).unwrap();
        memory_v2(&d, &mut s.memory).unwrap();
        pids(&d, &mut s.pids).unwrap();
        s.blkio = io_v2(&d).unwrap();
        assert_eq!((s.cpu.usage.total, s.cpu.usage.user, s.cpu.usage.kernel), (1_500_000, 1_000_000, 500_000));
        assert_eq!(s.cpu.throttling.throttled_time, 7000);
        assert_eq!(s.memory.cache, 8192);
        assert_eq!(s.memory.usage, MemoryEntry { limit: u64::MAX, usage: 12288, max: 0, failcnt: 3 });
        assert_eq!(s.memory.swap.usage, 12288);
        assert_eq!((s.pids.current, s.pids.limit), (2, 50));
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.blkio.io_serviced_recursive[1].op, "Write");
        assert_eq!(oom_count("oom 2\noom_kill 1\n"), 2);
    }

    #[test]
    fn v1_blkio_lines_and_cpu_lists() {
        let e = blkio_entries("8:0 Read 10\n8:0 Write 20\nTotal 30\n");
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].major, e[1].op.as_str(), e[1].value), (8, "Write", 20));
        assert_eq!(cpu_list("0-2,5\n"), [0, 1, 2, 5]);
        assert!(cpu_list("\n").is_empty());
    }
}
