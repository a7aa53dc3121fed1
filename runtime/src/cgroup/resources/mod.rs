//! `linux.resources` → cgroup files. [`plan`] checks every value and decides which hierarchy
//! each controller's files go to, before anything is created; [`apply`] writes them.

mod blkio;
mod cpu;
mod cpuset;
mod hugetlb;
mod memory;
mod network;
mod pids;
mod rdma;
mod unified;

use oci_spec::runtime::LinuxResources;

pub(crate) use hugetlb::page_sizes;

use super::CgroupError;
use super::devices::{self, DeviceState};
use super::dir::CgroupDir;

/// Where a controller's files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The v1 hierarchy with this index in the manager's list.
    V1(usize),
    /// The cgroup2 directory.
    V2,
}

/// What the writers may assume.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mode {
    /// `update` of a running container (values may depend on what is set now), as opposed to
    /// a cgroup created just now (every file holds its default).
    pub update: bool,
}

/// The controllers the hierarchies offer, as the plan needs them.
pub(crate) trait Hierarchies {
    /// Index of the v1 hierarchy with `controller`.
    fn v1(&self, controller: &str) -> Option<usize>;
    fn has_v2(&self) -> bool;
    /// Only the cgroup2 hierarchy (no v1 hierarchy at all).
    fn pure_v2(&self) -> bool;
    /// Whether `controller` can be enabled on the cgroup2 side (may read cgroup.controllers).
    fn v2_has(&self, controller: &str) -> Result<bool, CgroupError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctl {
    Cpuset,
    Memory,
    Cpu,
    Pids,
    Blkio,
    Hugetlb,
    NetCls,
    NetPrio,
    Rdma,
}

impl Ctl {
    fn v1_name(self) -> &'static str {
        match self {
            Self::Cpuset => "cpuset",
            Self::Memory => "memory",
            Self::Cpu => "cpu",
            Self::Pids => "pids",
            Self::Blkio => "blkio",
            Self::Hugetlb => "hugetlb",
            Self::NetCls => "net_cls",
            Self::NetPrio => "net_prio",
            Self::Rdma => "rdma",
        }
    }

    /// The v2 controller, if the controller exists in v2 at all.
    fn v2_name(self) -> Option<&'static str> {
        match self {
            Self::Blkio => Some("io"),
            Self::NetCls | Self::NetPrio => None,
            c => Some(c.v1_name()),
        }
    }

    fn field(self) -> &'static str {
        match self {
            Self::Cpuset => "cpu.cpus/mems",
            Self::Memory => "memory",
            Self::Cpu => "cpu",
            Self::Pids => "pids",
            Self::Blkio => "blockIO",
            Self::Hugetlb => "hugepageLimits",
            Self::NetCls => "network.classID",
            Self::NetPrio => "network.priorities",
            Self::Rdma => "rdma",
        }
    }

    /// Controllers a threaded cgroup cannot have.
    pub(crate) fn is_domain_only(self) -> bool {
        matches!(self, Self::Memory | Self::Blkio | Self::Hugetlb | Self::Rdma)
    }
}

#[derive(Debug)]
pub(crate) struct Plan<'a> {
    resources: Option<&'a LinuxResources>,
    pub controllers: Vec<(Ctl, Place)>,
    pub devices: Option<(DeviceState, Place)>,
    pub unified: bool,
    /// Fields that this layout has no file for.
    pub ignored: Vec<&'static str>,
}

impl Plan<'_> {
    /// The cgroup2 controllers the writes need.
    pub(crate) fn v2_controllers(&self) -> Vec<&'static str> {
        self.controllers.iter().filter(|(_, p)| *p == Place::V2).filter_map(|(c, _)| c.v2_name()).collect()
    }

    pub(crate) fn needs_domain(&self) -> bool {
        self.controllers.iter().any(|(c, p)| *p == Place::V2 && c.is_domain_only())
    }
}

/// Check `resources` and place each controller. `with_devices` is false for `update`.
pub(crate) fn plan<'a>(
    resources: Option<&'a LinuxResources>,
    hierarchies: &impl Hierarchies,
    with_devices: bool,
) -> Result<Plan<'a>, CgroupError> {
    let mut plan = Plan { resources, controllers: Vec::new(), devices: None, unified: false, ignored: Vec::new() };
    if with_devices {
        let rules = devices::parse_rules(resources.and_then(|r| r.devices().as_deref()).unwrap_or(&[]))?;
        let state = devices::fold(&rules)?;
        let place = match hierarchies.v1("devices") {
            Some(i) => Place::V1(i),
            None if hierarchies.has_v2() => Place::V2,
            None => return Err(CgroupError::ControllerMissing { field: "devices", controller: "devices" }),
        };
        plan.devices = Some((state, place));
    }
    let Some(r) = resources else { return Ok(plan) };

    // Place `ctl` when the config sets something for it. `set_v1`/`set_v2`: whether it sets a
    // field that has a file in v1/v2; `no_v2_file`: the set fields v2 has no file for.
    let want = |ctl: Ctl, set_v1: bool, set_v2: bool, no_v2_file: Vec<&'static str>, plan: &mut Plan<'_>| {
        if !set_v1 && !set_v2 && no_v2_file.is_empty() {
            return Ok(());
        }
        let place = match (hierarchies.v1(ctl.v1_name()), ctl.v2_name()) {
            (Some(i), _) => Place::V1(i),
            (None, Some(name)) if hierarchies.has_v2() && hierarchies.v2_has(name)? => Place::V2,
            // net_cls/net_prio do not exist in v2: runc skips them on pure v2.
            (None, None) if hierarchies.pure_v2() => {
                plan.ignored.push(ctl.field());
                return Ok(());
            }
            _ => {
                let controller = ctl.v2_name().filter(|_| hierarchies.has_v2()).unwrap_or(ctl.v1_name());
                return Err(CgroupError::ControllerMissing { field: ctl.field(), controller });
            }
        };
        if place == Place::V2 {
            plan.ignored.extend(no_v2_file);
            if !set_v2 {
                return Ok(());
            }
        } else if !set_v1 {
            return Ok(());
        }
        plan.controllers.push((ctl, place));
        Ok::<(), CgroupError>(())
    };

    if let Some(cpu) = r.cpu() {
        cpuset::validate(cpu)?;
        let set = cpuset::is_set(cpu);
        want(Ctl::Cpuset, set, set, Vec::new(), &mut plan)?;
    }
    if let Some(m) = r.memory() {
        memory::validate(m)?;
        want(Ctl::Memory, memory::is_set_v1(m), memory::is_set_v2(m), memory::ignored_v2(m), &mut plan)?;
    }
    if let Some(cpu) = r.cpu() {
        want(Ctl::Cpu, cpu::is_set_v1(cpu), cpu::is_set_v2(cpu), cpu::ignored_v2(cpu), &mut plan)?;
        if plan.controllers.iter().any(|(c, p)| *c == Ctl::Cpu && matches!(p, Place::V1(_))) {
            cpu::validate_v1(cpu)?;
        }
    }
    if let Some(p) = r.pids() {
        let set = pids::is_set(p);
        want(Ctl::Pids, set, set, Vec::new(), &mut plan)?;
    }
    if let Some(b) = r.block_io() {
        blkio::validate(b)?;
        want(Ctl::Blkio, blkio::is_set_v1(b), blkio::is_set_v2(b), blkio::ignored_v2(b), &mut plan)?;
    }
    if let Some(h) = r.hugepage_limits().as_deref().filter(|h| !h.is_empty()) {
        hugetlb::validate(h)?;
        want(Ctl::Hugetlb, true, true, Vec::new(), &mut plan)?;
    }
    if let Some(n) = r.network() {
        network::validate(n)?;
        want(Ctl::NetCls, n.class_id().is_some(), false, Vec::new(), &mut plan)?;
        let prio = n.priorities().as_ref().is_some_and(|p| !p.is_empty());
        want(Ctl::NetPrio, prio, false, Vec::new(), &mut plan)?;
    }
    if let Some(rd) = r.rdma().as_ref().filter(|rd| !rd.is_empty()) {
        rdma::validate(rd)?;
        want(Ctl::Rdma, true, true, Vec::new(), &mut plan)?;
    }
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        unified::validate(u)?;
        if !hierarchies.has_v2() {
            return Err(CgroupError::InvalidResource {
                field: "unified".into(),
                reason: "this machine has no cgroup v2 hierarchy".into(),
            });
        }
        plan.unified = true;
    }
    plan.ignored.sort_unstable();
    plan.ignored.dedup();
    Ok(plan)
}

/// Write everything `plan` placed. `dir_of` gives the directory of a place (the v2 one opened).
pub(crate) fn apply<'d>(
    plan: &Plan<'_>,
    dir_of: impl Fn(Place) -> Option<&'d CgroupDir>,
    v2_enabled: &[String],
    mode: Mode,
) -> Result<(), CgroupError> {
    if let Some(r) = plan.resources {
        for &(ctl, place) in &plan.controllers {
            let dir = dir_of(place).ok_or(CgroupError::NoCgroupMount)?;
            let v2 = place == Place::V2;
            match ctl {
                Ctl::Cpuset => r.cpu().as_ref().map_or(Ok(()), |c| cpuset::apply(dir, c))?,
                Ctl::Memory => r.memory().as_ref().map_or(Ok(()), |m| memory::apply(dir, m, v2, mode))?,
                Ctl::Cpu => r.cpu().as_ref().map_or(Ok(()), |c| cpu::apply(dir, c, v2, mode))?,
                Ctl::Pids => r.pids().as_ref().map_or(Ok(()), |p| pids::apply(dir, p))?,
                Ctl::Blkio => r.block_io().as_ref().map_or(Ok(()), |b| blkio::apply(dir, b, v2))?,
                Ctl::Hugetlb => r.hugepage_limits().as_deref().map_or(Ok(()), |h| hugetlb::apply(dir, h, v2))?,
                Ctl::NetCls => r.network().as_ref().map_or(Ok(()), |n| network::apply_classid(dir, n))?,
                Ctl::NetPrio => r.network().as_ref().map_or(Ok(()), |n| network::apply_priorities(dir, n))?,
                Ctl::Rdma => r.rdma().as_ref().map_or(Ok(()), |rd| rdma::apply(dir, rd))?,
            }
        }
    }
    if let Some((state, place)) = &plan.devices {
        let dir = dir_of(*place).ok_or(CgroupError::NoCgroupMount)?;
        match place {
            Place::V1(_) => devices::apply_v1(dir, state)?,
            Place::V2 => {
                let fd =
                    dir.fd().ok_or(CgroupError::DeviceFilter { op: "attach", source: nix::errno::Errno::EBADF })?;
                devices::ebpf::install(fd, state, !mode.update)?;
            }
        }
    }
    if plan.unified
        && let Some(u) = plan.resources.and_then(|r| r.unified().as_ref())
    {
        unified::apply(dir_of(Place::V2).ok_or(CgroupError::NoCgroupMount)?, u, v2_enabled)?;
    }
    Ok(())
}

/// A write whose failure with ENOENT means the kernel no longer has the knob (deprecated
/// fields such as kernel memory and leaf weights): skipped, as runc ignores them entirely.
pub(super) fn write_if_supported(dir: &CgroupDir, file: &str, value: &str) -> Result<(), CgroupError> {
    match dir.write_raw(file, value) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EOPNOTSUPP)) => Ok(()),
        Err(e) => Err(dir.write_error(file, value, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        v1: Vec<&'static str>,
        v2: Option<Vec<&'static str>>,
    }

    impl Hierarchies for Fake {
        fn v1(&self, controller: &str) -> Option<usize> {
            self.v1.iter().position(|c| *c == controller)
        }
        fn has_v2(&self) -> bool {
            self.v2.is_some()
        }
        fn pure_v2(&self) -> bool {
            self.v1.is_empty() && self.v2.is_some()
        }
        fn v2_has(&self, controller: &str) -> Result<bool, CgroupError> {
            Ok(self.v2.as_ref().is_some_and(|v| v.contains(&controller)))
        }
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    const V1_HOST: &[&str] = &["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"];
    const V2_ALL: &[&str] = &["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"];

    #[test]
    fn hybrid_puts_what_v1_lacks_on_the_v2_side() {
        let host = Fake { v1: V1_HOST.to_vec(), v2: Some(vec!["hugetlb"]) };
        let r = res(r#"{"memory":{"limit":1},"hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#);
        let plan = plan(Some(&r), &host, true).unwrap();
        assert_eq!(plan.controllers, [(Ctl::Memory, Place::V1(3)), (Ctl::Hugetlb, Place::V2)]);
        assert_eq!(plan.devices.as_ref().unwrap().1, Place::V1(4));
        assert_eq!(plan.v2_controllers(), ["hugetlb"]);
    }

    #[test]
    fn missing_controllers_are_named_before_anything_happens() {
        let host = Fake { v1: V1_HOST.to_vec(), v2: Some(vec![]) };
        let err = plan(Some(&res(r#"{"network":{"classID":3}}"#)), &host, true).unwrap_err();
        assert!(matches!(err, CgroupError::ControllerMissing { controller: "net_cls", .. }), "{err}");
        let err = plan(Some(&res(r#"{"rdma":{"mlx4_0":{"hcaHandles":2}}}"#)), &host, true).unwrap_err();
        assert!(matches!(err, CgroupError::ControllerMissing { controller: "rdma", .. }), "{err}");
        let no_devices = Fake { v1: vec!["memory"], v2: None };
        assert!(matches!(plan(None, &no_devices, true), Err(CgroupError::ControllerMissing { field: "devices", .. })));
    }

    #[test]
    fn pure_v2_ignores_what_has_no_v2_file() {
        let v2 = Fake { v1: vec![], v2: Some(V2_ALL.to_vec()) };
        let r = res(r#"{"memory":{"limit":100,"swappiness":10,"disableOOMKiller":true},
                "cpu":{"shares":512,"realtimeRuntime":5},"network":{"classID":1}}"#);
        let plan = plan(Some(&r), &v2, true).unwrap();
        assert_eq!(plan.controllers, [(Ctl::Memory, Place::V2), (Ctl::Cpu, Place::V2)]);
        assert_eq!(
            plan.ignored,
            ["cpu.realtimeRuntime", "memory.disableOOMKiller", "memory.swappiness", "network.classID"]
        );
        // Only fields without a v2 file: no memory controller needed at all.
        let only_swappiness = res(r#"{"memory":{"swappiness":10}}"#);
        let plan2 = super::plan(Some(&only_swappiness), &v2, false).unwrap();
        assert!(plan2.controllers.is_empty());
        assert_eq!(plan2.ignored, ["memory.swappiness"]);
    }

    #[test]
    fn unified_needs_a_v2_hierarchy() {
        let v1 = Fake { v1: V1_HOST.to_vec(), v2: None };
        let err = plan(Some(&res(r#"{"unified":{"memory.high":"1"}}"#)), &v1, false).unwrap_err();
        assert!(err.to_string().contains("no cgroup v2"), "{err}");
    }
}
