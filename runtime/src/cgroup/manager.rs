//! [`Manager`]: the container's cgroup in every hierarchy, from creation to removal.

use std::cell::{OnceCell, RefCell};
use std::fs;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::stat::Mode as FileMode;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::CgroupError;
use super::dir::CgroupDir;
use super::layout::{self, Layout, Mount, ProcCgroup};
use super::path::{self, CgroupPath};
use super::resources::{self, Hierarchies, Mode, Place};
use super::systemd::{self, SystemdUnit};

/// What the container asked for.
#[derive(Debug, Clone, Copy)]
pub struct CgroupRequest<'a> {
    /// `linux.cgroupsPath`.
    pub cgroups_path: Option<&'a str>,
    pub container_id: &'a str,
    /// `--systemd-cgroup`.
    pub systemd: bool,
    /// Rootless: under the systemd driver, the caller's user manager owns the unit.
    pub rootless: bool,
}

/// What is saved in the container's state to find the cgroup again. Opaque to callers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CgroupState {
    hierarchies: Vec<Hierarchy>,
    /// The systemd driver's unit, which owns the cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    systemd: Option<SystemdUnit>,
}

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// v1 controllers ("cpu", "cpuacct", "name=systemd"); empty for cgroup2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<String>,
    pub mount: PathBuf,
    pub dir: PathBuf,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unified: bool,
}

impl Hierarchy {
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// Only named hierarchies ("name=systemd"): no controller, nothing enforced.
    fn is_named(&self) -> bool {
        !self.controllers.is_empty() && self.controllers.iter().all(|c| c.starts_with("name="))
    }
}

/// How the container sees a `cgroup` mount at `/sys/fs/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerView {
    /// Pure v2: mount a cgroup2 file system (in the container's cgroup namespace).
    Unified,
    /// v1 or hybrid: a tmpfs with one bind mount per hierarchy of the container's directory.
    V1(Vec<V1Mount>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    /// Directory name under /sys/fs/cgroup: "memory", "cpu,cpuacct", "systemd", "unified".
    pub name: String,
    /// The container's directory in that hierarchy on the host.
    pub host_dir: PathBuf,
    /// Symlinks to make next to it for co-mounted controllers ("cpu" and "cpuacct" → "cpu,cpuacct").
    pub links: Vec<String>,
}

#[derive(Debug)]
pub struct Manager {
    hierarchies: Vec<Hierarchy>,
    /// The v2 directory, opened by `create` (kept for CLONE_INTO_CGROUP and the device filter).
    v2: Option<CgroupDir>,
    /// Directories `create` made, outermost first; removed if the container never comes to be.
    created: Vec<PathBuf>,
    /// Controllers the cgroup2 root offers (its cgroup.controllers), read when first needed.
    v2_available: OnceCell<Vec<String>>,
    /// The systemd driver's unit.
    systemd: Option<SystemdUnit>,
    /// The connection to systemd, opened when first needed (by `new` for a create, so that an
    /// unreachable systemd is reported before anything is made).
    bus: RefCell<Option<systemd::Connection>>,
    /// Set by `create` under the systemd driver: the unit is started with the init's pid.
    pending_unit: Option<PendingUnit>,
    /// The unit's Description, until `create` takes it.
    unit_description: String,
    /// Apply `linux.resources.devices` (false for a rootless container, see `without_device_rules`).
    device_rules: bool,
}

/// What `create` prepared for a unit that can only be started once the init exists.
#[derive(Debug)]
struct PendingUnit {
    description: String,
    resources: Option<LinuxResources>,
    properties: Vec<systemd::properties::Property>,
}

impl Manager {
    /// Work out the layout and the container's directory in every hierarchy. Reads a few
    /// /proc files; creates nothing.
    /// Under the systemd driver, also connects to systemd.
    pub fn new(req: &CgroupRequest<'_>) -> Result<Self, CgroupError> {
        if req.systemd {
            let user = req.rootless;
            let u = systemd::unit::parse(
                req.cgroups_path,
                req.container_id,
                if user { "user.slice" } else { "system.slice" },
            )?;
            let layout = layout::detect()?;
            if user && !layout.is_pure_v2() {
                return Err(CgroupError::RootlessSystemdV1);
            }
            let mut conn = systemd::connect(user)?;
            // A user manager's units live below its own cgroup.
            let cgroup = match systemd::manager_cgroup(&mut conn)? {
                base if user && !base.is_empty() => format!("{base}/{}", u.cgroup),
                _ => u.cgroup.clone(),
            };
            let mut m = Self::with_layout(&CgroupPath::Absolute(cgroup), layout)?;
            m.systemd = Some(SystemdUnit { unit: u.unit, slice: u.slice, user });
            m.unit_description = format!("strata container {}", req.container_id);
            m.bus = RefCell::new(Some(conn));
            return Ok(m);
        }
        let path = path::parse(req.cgroups_path, req.container_id)?;
        let layout = layout::detect()?;
        Self::with_layout(&path, layout)
    }

    fn with_layout(path: &CgroupPath, layout: Layout) -> Result<Self, CgroupError> {
        let pure_v2 = layout.is_pure_v2();
        let own = match (&layout.own, path) {
            (_, CgroupPath::Absolute(_)) => Vec::new(),
            (Some(own), _) => own.clone(),
            (None, _) => layout::read_own_cgroups()?,
        };
        let hierarchies = layout
            .mounts
            .iter()
            .map(|m| Hierarchy {
                controllers: m.controllers.clone(),
                mount: m.mountpoint.clone(),
                dir: container_dir(m, path, &own, pure_v2),
                unified: m.unified,
            })
            .collect();
        Ok(Self::from_parts(hierarchies, None))
    }

    fn from_parts(hierarchies: Vec<Hierarchy>, systemd: Option<SystemdUnit>) -> Self {
        Self {
            hierarchies,
            v2: None,
            created: Vec::new(),
            v2_available: OnceCell::new(),
            systemd,
            bus: RefCell::new(None),
            pending_unit: None,
            unit_description: String::new(),
            device_rules: true,
        }
    }

    pub fn from_state(state: &CgroupState) -> Self {
        Self::from_parts(state.hierarchies.clone(), state.systemd.clone())
    }

    /// A rootless container's cgroup gets no device rules, as with runc and crun: its caller may
    /// not load the v2 device filter (BPF needs privilege in the initial user namespace), nor
    /// write a v1 devices cgroup, and in its user namespace the container has no node but the
    /// host's, bound and guarded by their own permissions.
    pub fn without_device_rules(mut self) -> Self {
        self.device_rules = false;
        self
    }

    pub fn state(&self) -> CgroupState {
        CgroupState { hierarchies: self.hierarchies.clone(), systemd: self.systemd.clone() }
    }

    /// The systemd unit that owns the container's cgroup, under the systemd driver.
    pub fn systemd_unit(&self) -> Option<&str> {
        self.systemd.as_ref().map(|u| u.unit.as_str())
    }

    /// Whether the init is put into its cgroup by the parent after the clone (the systemd
    /// driver: systemd starts the unit with the init's pid), not by `CLONE_INTO_CGROUP` or itself.
    pub fn placed_by_parent(&self) -> bool {
        self.pending_unit.is_some()
    }

    /// The systemd connection, opened on first use.
    fn with_bus<T>(
        &self,
        f: impl FnOnce(&mut systemd::Connection) -> Result<T, CgroupError>,
    ) -> Result<T, CgroupError> {
        let mut bus = self.bus.borrow_mut();
        if bus.is_none() {
            *bus = Some(systemd::connect(self.systemd.as_ref().is_some_and(|u| u.user))?);
        }
        match bus.as_mut() {
            Some(conn) => f(conn),
            None => Err(CgroupError::NoCgroupMount),
        }
    }

    /// Create the directories, enable the v2 controllers, apply every resource and the device
    /// rules, and keep the v2 directory open. Everything is checked before the first mkdir; on
    /// failure the directories made here are removed again.
    ///
    /// Under the systemd driver nothing is made yet: the resources are checked and turned into
    /// unit properties, and [`Manager::add_process`] starts the unit with the init's pid, then
    /// writes the files.
    pub fn create(&mut self, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        let plan = resources::plan(resources, self, self.device_rules)?;
        if self.systemd.is_some() {
            let v2 = self.pure_v2();
            let mut properties = systemd::properties::accounting(v2);
            if let Some(r) = resources {
                properties.extend(systemd::properties::for_resources(r, v2, self.device_rules)?);
            }
            self.pending_unit = Some(PendingUnit {
                description: std::mem::take(&mut self.unit_description),
                resources: resources.cloned(),
                properties,
            });
            return Ok(());
        }
        let mut created = Vec::new();
        let result = self.create_planned(&plan, resources, &mut created);
        self.created = created;
        match result {
            Ok(v2) => {
                self.v2 = v2;
                Ok(())
            }
            Err(e) => {
                self.remove_created();
                Err(e)
            }
        }
    }

    /// Make the directories (those missing: under the systemd driver, systemd made the unit's),
    /// enable the v2 controllers and write the resources; returns the opened v2 directory.
    fn create_planned(
        &self,
        plan: &resources::Plan<'_>,
        r: Option<&LinuxResources>,
        created: &mut Vec<PathBuf>,
    ) -> Result<Option<CgroupDir>, CgroupError> {
        let cpu = r.and_then(|r| r.cpu().as_ref());
        let spec_cpus = cpu.is_some_and(|c| c.cpus().as_deref().is_some_and(|s| !s.is_empty()));
        let spec_mems = cpu.is_some_and(|c| c.mems().as_deref().is_some_and(|s| !s.is_empty()));
        let mut fresh = true;
        let mut enabled = Vec::new();
        let mut v2_dir = None;
        for h in &self.hierarchies {
            let made = mkdir_all(&h.dir, &h.mount, created)?;
            fresh &= made.last() == Some(&h.dir);
            if h.has("cpuset") {
                fill_cpusets(h, &made, spec_cpus, spec_mems)?;
            }
            if h.unified {
                let dir = CgroupDir::open(h.dir.clone())?;
                check_type(h, &dir, &made, plan.needs_domain())?;
                let wanted =
                    if self.pure_v2() { self.v2_root_controllers()?.clone() } else { owned(&plan.v2_controllers()) };
                enabled = enable_controllers(h, &dir, &wanted, &plan.v2_controllers())?;
                v2_dir = Some(dir);
            }
        }
        let v1_dirs: Vec<CgroupDir> = self.hierarchies.iter().map(|h| CgroupDir::new(h.dir.clone())).collect();
        let v2 = v2_dir.as_ref();
        resources::apply(
            plan,
            |place| match place {
                Place::V2 => v2,
                Place::V1(i) => v1_dirs.get(i),
            },
            &enabled,
            Mode { update: !fresh },
        )?;
        Ok(v2_dir)
    }

    /// The systemd driver's placement of the init: the unit is started with its pid (a slice
    /// is started empty and the pid written to it), then the cgroup files are written as the
    /// cgroupfs driver writes them, and the pid joins the v1 hierarchies systemd does not manage.
    fn start_unit(&self, pending: &PendingUnit, unit: &SystemdUnit, pid: Pid) -> Result<(), CgroupError> {
        let pid_u32 = u32::try_from(pid.as_raw()).unwrap_or_default();
        self.with_bus(|conn| systemd::start(conn, unit, pid_u32, &pending.description, pending.properties.clone()))?;
        let plan = resources::plan(pending.resources.as_ref(), self, self.device_rules)?;
        let mut created = Vec::new();
        self.create_planned(&plan, pending.resources.as_ref(), &mut created)?;
        self.join(pid, false, "cgroup.procs", &pid.as_raw().to_string())
    }

    /// The v2 directory to clone the container into (`CLONE_INTO_CGROUP`), once created.
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.v2.as_ref().and_then(CgroupDir::fd)
    }

    /// Move `pid` into every hierarchy; `cloned_into`: it already is in the v2 one.
    /// Named v1 hierarchies (name=systemd) are joined on a best-effort basis, as runc does.
    /// Under the systemd driver, the first process (the init) starts the unit.
    pub fn add_process(&self, pid: Pid, cloned_into: bool) -> Result<(), CgroupError> {
        if let (Some(pending), Some(unit)) = (&self.pending_unit, &self.systemd) {
            return self.start_unit(pending, unit, pid);
        }
        self.join(pid, cloned_into, "cgroup.procs", &pid.as_raw().to_string())
    }

    /// Move the calling process, which must be single-threaded, into every hierarchy. In each v1
    /// hierarchy it writes "0" to `tasks`: the kernel migrates its own thread without the global
    /// threadgroup lock, whose RCU wait (~10 ms) a pid written to cgroup.procs pays.
    pub fn enter_self(&self, cloned_into: bool) -> Result<(), CgroupError> {
        self.join(nix::unistd::getpid(), cloned_into, "tasks", "0")
    }

    fn join(&self, pid: Pid, cloned_into: bool, v1_file: &str, value: &str) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            if h.unified && cloned_into {
                continue;
            }
            let result = match (&self.v2, h.unified) {
                (Some(d), true) => d.write_raw("cgroup.procs", value),
                (_, true) => CgroupDir::new(h.dir.clone()).write_raw("cgroup.procs", value),
                _ => CgroupDir::new(h.dir.clone()).write_raw(v1_file, value),
            };
            match result {
                Ok(()) => {}
                Err(_) if h.is_named() => {}
                Err(source) => {
                    let file = if h.unified { "cgroup.procs" } else { v1_file };
                    return Err(CgroupError::AddProcess { pid: pid.as_raw(), path: h.dir.join(file), source });
                }
            }
        }
        Ok(())
    }

    /// Every process in the container's cgroup and the cgroups below it (host pids).
    pub fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        let Some(h) = self.primary() else { return Ok(Vec::new()) };
        let mut pids = Vec::new();
        match collect_pids(&h.dir, &mut pids) {
            Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound && pids.is_empty() => {
                Ok(Vec::new())
            }
            r => r.map(|()| pids),
        }
    }

    /// Whether the container's cgroup still exists.
    pub fn exists(&self) -> bool {
        self.primary().is_some_and(|h| h.dir.exists())
    }

    /// Remove the container's directories, with any cgroups made below them, in every
    /// hierarchy (missing ones are fine), and the parents a failed `create` made. Waits a
    /// little for exiting processes to leave; fails if processes remain.
    /// Under the systemd driver the unit is stopped first.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        if let Some(unit) = &self.systemd
            && let Err(e) = self.with_bus(|conn| systemd::stop(conn, unit))
        {
            first_error = Some(e);
        }
        for h in &self.hierarchies {
            if let Err(e) = remove_tree(&h.dir) {
                first_error.get_or_insert(e);
            }
        }
        self.remove_created();
        first_error.map_or(Ok(()), Err)
    }

    /// How a `cgroup` mount inside the container is built.
    pub fn container_view(&self) -> ContainerView {
        if self.pure_v2() {
            return ContainerView::Unified;
        }
        let mounts = self
            .hierarchies
            .iter()
            .map(|h| {
                let name = h.mount.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let links = if h.controllers.len() > 1 {
                    h.controllers.iter().filter(|c| !c.starts_with("name=") && **c != name).cloned().collect()
                } else {
                    Vec::new()
                };
                V1Mount { name, host_dir: h.dir.clone(), links }
            })
            .collect();
        ContainerView::V1(mounts)
    }

    /// The container's directory for `controller` ("" for the cgroup2 one): where its files are.
    pub fn path(&self, controller: &str) -> Option<&Path> {
        let h = if controller.is_empty() {
            self.hierarchies.iter().find(|h| h.unified)
        } else {
            self.hierarchies.iter().find(|h| h.has(controller)).or_else(|| self.hierarchies.iter().find(|h| h.unified))
        };
        h.map(|h| h.dir.as_path())
    }

    /// Whether the only hierarchy is cgroup2.
    pub fn is_unified(&self) -> bool {
        self.pure_v2()
    }

    /// Fields of `resources` that this layout has no file for and that create/update skip
    /// (as runc does), for a warning. Fails where create would fail on them.
    pub fn ignored_resources(&self, resources: &LinuxResources) -> Result<Vec<&'static str>, CgroupError> {
        Ok(resources::plan(Some(resources), self, false)?.ignored)
    }

    /// `update`: write the fields set in `resources` (a partial `linux.resources`, as podman
    /// and containerd send) and leave the others. Device rules are not changed (as in runc).
    /// Under the systemd driver the unit's properties change first, for the running unit only.
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        let plan = resources::plan(Some(resources), self, false)?;
        if let Some(unit) = &self.systemd {
            let v2 = self.pure_v2();
            let props = systemd::properties::for_resources(resources, v2, false)?;
            self.with_bus(|conn| systemd::set_properties(conn, unit, props))?;
        }
        let v1_dirs: Vec<CgroupDir> = self.hierarchies.iter().map(|h| CgroupDir::new(h.dir.clone())).collect();
        let (v2, enabled) = match self.hierarchies.iter().find(|h| h.unified) {
            Some(h) if plan.unified || !plan.v2_controllers().is_empty() => {
                let dir = CgroupDir::open(h.dir.clone())?;
                let needed = plan.v2_controllers();
                let enabled = enable_controllers(h, &dir, &owned(&needed), &needed)?;
                (Some(dir), enabled)
            }
            _ => (None, Vec::new()),
        };
        resources::apply(
            &plan,
            |place| match place {
                Place::V2 => v2.as_ref(),
                Place::V1(i) => v1_dirs.get(i),
            },
            &enabled,
            Mode { update: true },
        )
    }

    pub(crate) fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    fn pure_v2(&self) -> bool {
        !self.hierarchies.is_empty() && self.hierarchies.iter().all(|h| h.unified)
    }

    /// The hierarchy that lists the container's processes: the v2 one on pure v2, else the
    /// devices hierarchy (as runc), else any.
    fn primary(&self) -> Option<&Hierarchy> {
        if self.pure_v2() {
            return self.hierarchies.first();
        }
        ["devices", "freezer", "pids", "memory"]
            .iter()
            .find_map(|c| self.hierarchies.iter().find(|h| h.has(c)))
            .or_else(|| self.hierarchies.iter().find(|h| !h.is_named() && !h.unified))
            .or_else(|| self.hierarchies.first())
    }

    fn v2_root_controllers(&self) -> Result<&Vec<String>, CgroupError> {
        if let Some(v) = self.v2_available.get() {
            return Ok(v);
        }
        let Some(h) = self.hierarchies.iter().find(|h| h.unified) else {
            return Ok(self.v2_available.get_or_init(Vec::new));
        };
        let text = CgroupDir::new(h.mount.clone()).read("cgroup.controllers")?;
        Ok(self.v2_available.get_or_init(|| text.split_whitespace().map(str::to_owned).collect()))
    }

    fn remove_created(&self) {
        // Deepest first; a directory another container started using in the meantime stays.
        for dir in self.created.iter().rev() {
            remove_best_effort(dir);
        }
    }
}

impl Hierarchies for Manager {
    fn v1(&self, controller: &str) -> Option<usize> {
        self.hierarchies.iter().position(|h| !h.unified && h.has(controller))
    }

    fn has_v2(&self) -> bool {
        self.hierarchies.iter().any(|h| h.unified)
    }

    fn pure_v2(&self) -> bool {
        Manager::pure_v2(self)
    }

    fn v2_has(&self, controller: &str) -> Result<bool, CgroupError> {
        Ok(self.v2_root_controllers()?.iter().any(|c| c == controller))
    }
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The container's directory in hierarchy `m` (see the `path` module for the rules).
fn container_dir(m: &Mount, path: &CgroupPath, own: &[ProcCgroup], pure_v2: bool) -> PathBuf {
    let base = match path {
        CgroupPath::Absolute(_) => None,
        // runc: in the hybrid layout, relative paths start at the cgroup2 root.
        CgroupPath::Relative(_) if m.unified && !pure_v2 => None,
        CgroupPath::Relative(_) => {
            let mine = own.iter().find(|p| {
                if m.unified {
                    p.controllers.is_empty()
                } else {
                    p.controllers.iter().any(|c| m.controllers.contains(c))
                }
            });
            mine.map(|p| {
                // On v2 the runtime's own cgroup holds processes; its parent can hold more cgroups.
                let p = if m.unified { parent_of(&p.path) } else { p.path.as_str() };
                // Nested: /proc shows paths from the host's root, the mount shows `root` down.
                let root = m.root.trim_end_matches('/');
                p.strip_prefix(root).filter(|rest| rest.is_empty() || rest.starts_with('/')).unwrap_or(p).to_owned()
            })
        }
    };
    let mut dir = m.mountpoint.clone();
    if let Some(base) = base {
        dir.push(base.trim_start_matches('/'));
    }
    dir.push(path.inner());
    dir
}

fn parent_of(p: &str) -> &str {
    match p.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// mkdir -p below `mount`; returns the directories made (outermost first) and records them.
fn mkdir_all(dir: &Path, mount: &Path, created: &mut Vec<PathBuf>) -> Result<Vec<PathBuf>, CgroupError> {
    let mut made = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    // Bounded: a parent that another process keeps removing makes us give up, not spin.
    let mut budget = 2 * dir.components().count() + 8;
    while let Some(p) = todo.last() {
        budget = budget.saturating_sub(1);
        match nix::unistd::mkdir(p.as_path(), FileMode::from_bits_truncate(0o755)) {
            Ok(()) => {
                created.push(p.clone());
                made.push(p.clone());
                todo.pop();
            }
            Err(Errno::EEXIST) => {
                todo.pop();
            }
            Err(Errno::ENOENT) if budget > 0 && p.as_path() != mount && p.starts_with(mount) => {
                let parent = p.parent().unwrap_or(mount).to_path_buf();
                todo.push(parent);
            }
            Err(e) => return Err(CgroupError::Create { path: p.clone(), source: e.into() }),
        }
    }
    Ok(made)
}

/// A new v1 cpuset cgroup has no cpus and no mems, and no process can join it until it has:
/// fill each directory made here from its parent (the leaf only where the config does not set
/// the value), fixing empty pre-existing parents on the way up.
fn fill_cpusets(h: &Hierarchy, made: &[PathBuf], spec_cpus: bool, spec_mems: bool) -> Result<(), CgroupError> {
    let leaf_existed = made.last() != Some(&h.dir);
    let mut targets: Vec<&Path> = made.iter().map(PathBuf::as_path).collect();
    if leaf_existed {
        targets.push(&h.dir);
    }
    // What was just written one level up: the next level copies it without reading it back.
    let mut written: Option<(&Path, String, String)> = None;
    for dir in targets {
        let is_leaf = dir == h.dir;
        let (want_cpus, want_mems) = (!(is_leaf && spec_cpus), !(is_leaf && spec_mems));
        if !want_cpus && !want_mems {
            continue;
        }
        let d = CgroupDir::new(dir.to_path_buf());
        if is_leaf && leaf_existed {
            let filled = |f: &str| d.read(f).map(|v| !v.trim().is_empty());
            if (!want_cpus || filled("cpuset.cpus")?) && (!want_mems || filled("cpuset.mems")?) {
                continue;
            }
        }
        let parent = dir.parent().unwrap_or(&h.mount);
        let (cpus, mems) = match written.take() {
            Some((p, cpus, mems)) if p == parent => (cpus, mems),
            _ => cpuset_values(parent, &h.mount)?,
        };
        if want_cpus {
            d.write("cpuset.cpus", &cpus)?;
        }
        if want_mems {
            d.write("cpuset.mems", &mems)?;
        }
        if want_cpus && want_mems {
            written = Some((dir, cpus, mems));
        }
    }
    Ok(())
}

/// A cgroup's cpus and mems, filling it (and its ancestors) from above first if empty.
fn cpuset_values(dir: &Path, mount: &Path) -> Result<(String, String), CgroupError> {
    let d = CgroupDir::new(dir.to_path_buf());
    let (cpus, mems) = (d.read("cpuset.cpus")?.trim().to_owned(), d.read("cpuset.mems")?.trim().to_owned());
    if (!cpus.is_empty() && !mems.is_empty()) || dir == mount || !dir.starts_with(mount) {
        return Ok((cpus, mems));
    }
    let (pc, pm) = cpuset_values(dir.parent().unwrap_or(mount), mount)?;
    if cpus.is_empty() {
        d.write("cpuset.cpus", &pc)?;
    }
    if mems.is_empty() {
        d.write("cpuset.mems", &pm)?;
    }
    Ok((if cpus.is_empty() { pc } else { cpus }, if mems.is_empty() { pm } else { mems }))
}

/// v2 domain/threaded rules (as runc): a cgroup made below a threaded one starts "domain
/// invalid"; it becomes threaded unless the config needs a domain-only controller (memory, io,
/// hugetlb, rdma), which a threaded cgroup cannot have.
fn check_type(h: &Hierarchy, leaf: &CgroupDir, made: &[PathBuf], needs_domain: bool) -> Result<(), CgroupError> {
    // Below a domain everything made here is a domain too: reading the outermost one suffices.
    let outermost = made.first().filter(|top| **top != h.dir).map(|top| CgroupDir::new(top.clone()));
    let probe = outermost.as_ref().unwrap_or(leaf);
    let cgroup_type = probe.read("cgroup.type")?.trim().to_owned();
    match cgroup_type.as_str() {
        "domain" => Ok(()),
        "domain invalid" if !needs_domain => {
            let targets: Vec<PathBuf> = if made.is_empty() { vec![h.dir.clone()] } else { made.to_vec() };
            for t in targets {
                CgroupDir::new(t).write("cgroup.type", "threaded")?;
            }
            Ok(())
        }
        "threaded" | "domain threaded" if !needs_domain => Ok(()),
        _ => Err(CgroupError::Threaded { path: probe.path().to_path_buf(), cgroup_type }),
    }
}

/// Make `wanted` controllers available in the container's v2 cgroup by enabling them in every
/// ancestor's cgroup.subtree_control. Controllers that cannot be enabled are left out (as
/// runc), unless the config needs them (`needed`). Returns the controllers the cgroup has.
fn enable_controllers(
    h: &Hierarchy,
    leaf: &CgroupDir,
    wanted: &[String],
    needed: &[&str],
) -> Result<Vec<String>, CgroupError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let read = || leaf.read("cgroup.controllers").map(|t| t.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    let mut present = read()?;
    let missing: Vec<&String> = wanted.iter().filter(|c| !present.contains(c)).collect();
    if missing.is_empty() {
        return Ok(present);
    }
    let rel = h.dir.strip_prefix(&h.mount).unwrap_or(Path::new(""));
    let mut ancestor = h.mount.clone();
    for part in rel.components() {
        let d = CgroupDir::new(ancestor.clone());
        ancestor.push(part);
        // Only what this level does not enable yet: a delegated subtree's owner may write its
        // own levels, not those above it, where the controllers are on already.
        let enabled = d.read("cgroup.subtree_control").unwrap_or_default();
        let missing_here: Vec<&&String> =
            missing.iter().filter(|c| !enabled.split_whitespace().any(|e| e == c.as_str())).collect();
        if missing_here.is_empty() {
            continue;
        }
        let all = missing_here.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
        if d.write_raw("cgroup.subtree_control", &all).is_err() {
            for c in &missing_here {
                // One at a time, so one controller that cannot be enabled here does not keep
                // the others out; which ones the container needs is checked below.
                if let Err(e) = d.write_raw("cgroup.subtree_control", &format!("+{c}"))
                    && needed.contains(&c.as_str())
                {
                    return Err(d.write_error("cgroup.subtree_control", &format!("+{c}"), e));
                }
            }
        }
    }
    present = read()?;
    if let Some(c) = needed.iter().find(|c| !present.iter().any(|p| p == *c)) {
        return Err(CgroupError::ControllerNotEnabled { controller: (*c).to_owned(), path: h.dir.clone() });
    }
    Ok(present)
}

fn collect_pids(dir: &Path, out: &mut Vec<Pid>) -> Result<(), CgroupError> {
    let d = CgroupDir::new(dir.to_path_buf());
    let text = d.read("cgroup.procs")?;
    out.extend(text.lines().filter_map(|l| l.trim().parse().ok()).map(Pid::from_raw));
    for sub in subdirs(dir)? {
        match collect_pids(&sub, out) {
            // A sub-cgroup removed while we walk: nothing in it any more.
            Err(CgroupError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            r => r?,
        }
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CgroupError::Read { path: dir.to_path_buf(), source }),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|source| CgroupError::Read { path: dir.to_path_buf(), source })?;
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// rmdir a cgroup and every cgroup below it. A cgroup whose last processes are still exiting
/// is busy for a moment: retried with a short, growing pause (about 0.6 s in all).
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    let mut pause = Duration::from_millis(1);
    for attempt in 0.. {
        match fs::remove_dir(dir).map_err(errno_of) {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) => {
                for sub in subdirs(dir)? {
                    remove_tree(&sub)?;
                }
                if attempt > 0 {
                    if attempt > 10 {
                        return Err(CgroupError::Remove { path: dir.to_path_buf(), source: Errno::EBUSY.into() });
                    }
                    std::thread::sleep(pause);
                    pause *= 2;
                }
            }
            Err(e) => return Err(CgroupError::Remove { path: dir.to_path_buf(), source: e.into() }),
        }
    }
    Ok(())
}

fn errno_of(e: io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// rmdir that tolerates a directory now in use or gone: for cleaning up after a failure.
fn remove_best_effort(dir: &Path) {
    match fs::remove_dir(dir).map_err(errno_of) {
        Ok(()) | Err(Errno::ENOENT | Errno::EBUSY | Errno::ENOTEMPTY) => {}
        Err(e) => eprintln!("warning: cannot remove cgroup {}: {e}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::layout::{mounts_from_mountinfo, parse_proc_cgroup};

    const MOUNTINFO: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
    const OWN: &str = "9:name=systemd:/user/1\n4:memory:/process_api/bf2d\n2:cpu,cpuacct:/\n0::/\n";

    fn manager(path: &str, mountinfo: &str, own: &str) -> Manager {
        let own = parse_proc_cgroup(own);
        let layout = Layout { mounts: mounts_from_mountinfo(mountinfo, &own), own: Some(own) };
        Manager::with_layout(&path::parse(Some(path), "id").unwrap(), layout).unwrap()
    }

    fn dirs(m: &Manager) -> Vec<&str> {
        m.hierarchies.iter().map(|h| h.dir.to_str().unwrap()).collect()
    }

    #[test]
    fn absolute_path_in_every_hierarchy() {
        let m = manager("/libpod_parent/libpod-1", MOUNTINFO, OWN);
        assert_eq!(
            dirs(&m),
            [
                "/sys/fs/cgroup/cpu,cpuacct/libpod_parent/libpod-1",
                "/sys/fs/cgroup/memory/libpod_parent/libpod-1",
                "/sys/fs/cgroup/systemd/libpod_parent/libpod-1",
                "/sys/fs/cgroup/unified/libpod_parent/libpod-1",
            ]
        );
    }

    #[test]
    fn relative_path_below_the_runtimes_own_cgroup() {
        let m = manager("sub/c", MOUNTINFO, OWN);
        assert_eq!(
            dirs(&m),
            [
                "/sys/fs/cgroup/cpu,cpuacct/sub/c",
                "/sys/fs/cgroup/memory/process_api/bf2d/sub/c",
                "/sys/fs/cgroup/systemd/user/1/sub/c",
                // Hybrid cgroup2: from its root, as runc.
                "/sys/fs/cgroup/unified/sub/c",
            ]
        );
        // Pure v2: below the parent of the runtime's own cgroup.
        let v2 = "41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let m = manager("c", v2, "0::/user.slice/session-1.scope\n");
        assert_eq!(dirs(&m), ["/sys/fs/cgroup/user.slice/c"]);
        let m = manager("c", v2, "0::/\n");
        assert_eq!(dirs(&m), ["/sys/fs/cgroup/c"]);
    }

    #[test]
    fn nested_mount_roots_are_stripped() {
        let mi = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let m = manager("c", mi, "4:memory:/docker/abc/x\n");
        assert_eq!(dirs(&m), ["/sys/fs/cgroup/memory/x/c"]);
    }

    #[test]
    fn container_view_links_co_mounted_controllers() {
        let m = manager("/a", MOUNTINFO, OWN);
        let ContainerView::V1(mounts) = m.container_view() else { panic!("v1 expected") };
        assert_eq!(mounts[0].name, "cpu,cpuacct");
        assert_eq!(mounts[0].links, ["cpu", "cpuacct"]);
        assert_eq!(mounts[2].name, "systemd");
        assert!(mounts[2].links.is_empty());
        assert_eq!(mounts[3].name, "unified");
        assert_eq!(mounts[3].host_dir, Path::new("/sys/fs/cgroup/unified/a"));
    }

    #[test]
    fn state_round_trips_through_json() {
        let m = manager("/a/b", MOUNTINFO, OWN);
        let json = serde_json::to_string(&m.state()).unwrap();
        let back: CgroupState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m.state());
        let again = Manager::from_state(&back);
        assert_eq!(again.path("memory"), Some(Path::new("/sys/fs/cgroup/memory/a/b")));
        assert_eq!(again.path("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/a/b")));
        assert_eq!(again.path(""), Some(Path::new("/sys/fs/cgroup/unified/a/b")));
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/"), "/");
    }
}
