//! Privileged tests of the cgroup manager against the real kernel: files read back and
//! behaviour (OOM kill, fork refusal, device denial, freezing, signalling).
//!
//! Run as root on any layout: this machine's hybrid v1, a pure v2 guest
//! (`hack/test-cgroup-v2`), a pure v1 guest. Where a layout lacks a controller the test
//! asserts the error the manager must give instead.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use strata::cgroup::{CgroupError, CgroupRequest, ContainerView, FreezerState, Manager, OomWait, OomWatcher};

fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "these tests need root (cgroups, devices, bpf); run them with sudo");
    assert!(Path::new("/bin/busybox").exists(), "these tests need /bin/busybox (apt-get install busybox-static)");
}

fn unique(name: &str) -> String {
    format!("/strata-test-{}/{name}", std::process::id())
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// A created cgroup that is killed and removed when the test ends, pass or fail.
struct Cg {
    m: Manager,
}

impl Cg {
    fn new(name: &str, json: &str) -> Self {
        require_root();
        let path = unique(name);
        let mut m = Manager::new(&CgroupRequest {
            cgroups_path: Some(&path),
            container_id: name,
            systemd: false,
            rootless: false,
        })
        .unwrap();
        m.create(Some(&res(json))).unwrap();
        Self { m }
    }

    /// The file `file` of `controller` ("" = the cgroup2 directory).
    fn file(&self, controller: &str, file: &str) -> PathBuf {
        self.m.path(controller).unwrap().join(file)
    }

    fn read(&self, controller: &str, file: &str) -> String {
        let p = self.file(controller, file);
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_owned()
    }

    /// Run `script` with busybox sh inside the cgroup: the shell waits until it has been moved in.
    fn spawn(&self, script: &str) -> Child {
        let mut child = Command::new("/bin/busybox")
            .args(["sh", "-c", &format!("read _; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.m.add_process(Pid::from_raw(child.id() as i32), false).unwrap();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        child
    }

    fn run(&self, script: &str) -> Output {
        self.spawn(script).wait_with_output().unwrap()
    }
}

impl Drop for Cg {
    fn drop(&mut self) {
        // Cleanup must not hide the test's own failure: report, do not panic.
        if let Err(e) = self.m.kill_all(Signal::SIGKILL) {
            eprintln!("cleanup: kill: {e}");
        }
        if let Err(e) = self.m.destroy() {
            eprintln!("cleanup: destroy: {e}");
        }
        for h in self.m.state_dirs() {
            if let Some(parent) = h.parent() {
                remove_if_unused(parent);
            }
        }
    }
}

/// The tests' shared parent goes once the last test using it is done.
fn remove_if_unused(dir: &Path) {
    match fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOENT | libc::ENOTEMPTY)) => {}
        Err(e) => eprintln!("cleanup: {}: {e}", dir.display()),
    }
}

/// Test-only view of where the manager put things.
trait StateDirs {
    fn state_dirs(&self) -> Vec<PathBuf>;
}

impl StateDirs for Manager {
    fn state_dirs(&self) -> Vec<PathBuf> {
        let json = serde_json::to_value(self.state()).unwrap();
        json["hierarchies"].as_array().unwrap().iter().map(|h| PathBuf::from(h["dir"].as_str().unwrap())).collect()
    }
}

fn exists_in_some_dir(m: &Manager, file: &str) -> Option<PathBuf> {
    m.state_dirs().into_iter().map(|d| d.join(file)).find(|p| p.exists())
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn directories_in_every_hierarchy_and_nothing_left_after_destroy() {
    let cg = Cg::new("dirs", "{}");
    let dirs = cg.m.state_dirs();
    assert!(!dirs.is_empty());
    for d in &dirs {
        assert!(d.is_dir(), "{} missing", d.display());
    }
    let out = cg.run("cat /proc/self/cgroup");
    let text = String::from_utf8_lossy(&out.stdout);
    let want = unique("dirs");
    // Every hierarchy line names the container's path (named ones are best effort but work here).
    for line in text.lines() {
        assert!(line.ends_with(&want), "process not in the container cgroup: {line}\n{text}");
    }
    assert_eq!(text.lines().count(), dirs.len(), "{text}");
    match cg.m.container_view() {
        ContainerView::Unified => assert!(cg.m.is_unified()),
        ContainerView::V1(mounts) => assert_eq!(mounts.len(), dirs.len()),
    }
    cg.m.destroy().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn relative_path_is_below_the_runtimes_own_cgroup() {
    require_root();
    let name = format!("strata-rel-{}", std::process::id());
    let m = Manager::new(&CgroupRequest { cgroups_path: None, container_id: &name, systemd: false, rootless: false })
        .unwrap();
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    for d in m.state_dirs() {
        assert!(d.ends_with(&name), "{}", d.display());
        // Creating nothing: new() has no side effects.
        assert!(!d.exists(), "{} created by new()", d.display());
    }
    if m.is_unified() {
        let mine = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
        let parent = Path::new(mine).parent().unwrap_or(Path::new("/"));
        let want = Path::new("/sys/fs/cgroup").join(parent.strip_prefix("/").unwrap()).join(&name);
        assert_eq!(m.state_dirs(), [want]);
    }
}

#[test]
fn bad_input_is_refused_before_anything_is_created() {
    require_root();
    for (path, systemd) in [("/../x", false), ("/", false), ("machine.slice:libpod:x", false), ("/a", true)] {
        let err =
            Manager::new(&CgroupRequest { cgroups_path: Some(path), container_id: "x", systemd, rootless: false })
                .unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidPath { .. } | CgroupError::SystemdForm(_) | CgroupError::SystemdPath(_)),
            "{path}: {err}"
        );
    }
    // A top level of its own: the shared test parent may exist because of other tests.
    let path = format!("/strata-refused-{}/x", std::process::id());
    let mut m =
        Manager::new(&CgroupRequest { cgroups_path: Some(&path), container_id: "x", systemd: false, rootless: false })
            .unwrap();
    for json in [
        r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#,
        r#"{"memory":{"swappiness":200}}"#,
        r#"{"devices":[{"allow":true,"type":"c","major":1,"minor":3}]}"#,
        r#"{"unified":{"cgroup.procs":"1"}}"#,
    ] {
        let err = m.create(Some(&res(json))).unwrap_err();
        assert!(matches!(err.kind(), strata::ErrorKind::InvalidSpec), "{json}: {err}");
        for d in m.state_dirs() {
            assert!(!d.exists(), "{json}: {} created", d.display());
            assert!(!d.parent().unwrap().exists(), "{json}: parent of {} created", d.display());
        }
    }
}

#[test]
fn failed_create_removes_what_it_made() {
    require_root();
    let path = unique("failed/deeper/leaf");
    let mut m =
        Manager::new(&CgroupRequest { cgroups_path: Some(&path), container_id: "x", systemd: false, rootless: false })
            .unwrap();
    // Valid syntax, refused by the kernel once the directories exist.
    let err = m.create(Some(&res(r#"{"cpu":{"cpus":"4000-4001"}}"#))).unwrap_err();
    assert!(matches!(err, CgroupError::Write { .. }), "{err}");
    for d in m.state_dirs() {
        for p in [d.as_path(), d.parent().unwrap(), d.parent().unwrap().parent().unwrap()] {
            assert!(!p.exists(), "{} left behind", p.display());
        }
    }
}

#[test]
fn memory_limit_is_written_and_oom_kills() {
    let cg = Cg::new("oom", r#"{"memory":{"limit":33554432,"swap":33554432,"reservation":16777216}}"#);
    if cg.m.is_unified() {
        assert_eq!(cg.read("memory", "memory.max"), "33554432");
        assert_eq!(cg.read("memory", "memory.low"), "16777216");
        if cg.file("memory", "memory.swap.max").exists() {
            assert_eq!(cg.read("memory", "memory.swap.max"), "0");
        }
    } else {
        assert_eq!(cg.read("memory", "memory.limit_in_bytes"), "33554432");
        assert_eq!(cg.read("memory", "memory.soft_limit_in_bytes"), "16777216");
    }
    let mut watcher = OomWatcher::new(&cg.m).unwrap().expect("a memory controller");
    // dd's 64 MiB buffer cannot fit in 32 MiB.
    let out = cg.run("exec /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "not OOM-killed: {out:?}");
    match watcher.wait(Some(Duration::from_secs(10))).unwrap() {
        OomWait::Oom(n) => assert!(n >= 1),
        other => panic!("no OOM event: {other:?}"),
    }
}

#[test]
fn v1_only_memory_fields() {
    let json = r#"{"memory":{"swappiness":7,"disableOOMKiller":false,"kernelTCP":8388608,"useHierarchy":true}}"#;
    let cg = Cg::new("memv1", json);
    if cg.m.path("memory").is_some_and(|p| p.join("memory.swappiness").exists()) {
        assert_eq!(cg.read("memory", "memory.swappiness"), "7");
        assert_eq!(cg.read("memory", "memory.kmem.tcp.limit_in_bytes"), "8388608");
        assert!(cg.read("memory", "memory.oom_control").contains("oom_kill_disable 0"));
    } else {
        assert_eq!(
            cg.m.ignored_resources(&res(json)).unwrap(),
            ["memory.disableOOMKiller", "memory.kernelTCP", "memory.swappiness", "memory.useHierarchy"]
        );
    }
}

#[test]
fn pids_limit_refuses_forks() {
    let cg = Cg::new("pids", r#"{"pids":{"limit":4}}"#);
    assert_eq!(cg.read("pids", "pids.max"), "4");
    let out = cg.run("for i in 1 2 3 4 5 6 7 8; do /bin/busybox sleep 30 >/dev/null 2>&1 & done; echo started");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fork"), "no fork was refused: {out:?}");
    let current: u64 = cg.read("pids", "pids.current").parse().unwrap();
    assert!(current <= 4, "{current} tasks");
}

/// Which of the shell's device opens succeed, as "name:ok" / "name:denied" words.
const DEVICE_PROBES: &str = "for t in 'null:<>/dev/null' 'zero:</dev/zero' 'kmsg-read:</dev/kmsg' 'kmsg-rw:<>/dev/kmsg'; do \
     n=${t%%:*}; r=${t#*:}; if (eval \": $r\") 2>/dev/null; then echo $n:ok; else echo $n:denied; fi; done";

fn probe_devices(cg: &Cg) -> String {
    let out = cg.run(DEVICE_PROBES);
    String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn deny_all_leaves_only_the_default_devices() {
    let cg = Cg::new("devdeny", r#"{"devices":[{"allow":false,"access":"rwm"}]}"#);
    assert_eq!(probe_devices(&cg), "null:ok zero:ok kmsg-read:denied kmsg-rw:denied");
    if let Some(list) = exists_in_some_dir(&cg.m, "devices.list") {
        let list = fs::read_to_string(list).unwrap();
        assert!(list.contains("c 1:3 rwm") && list.contains("c 136:* rwm") && !list.contains("a *:*"), "{list}");
    }
}

#[test]
fn allow_rules_grant_only_the_access_given() {
    let cg = Cg::new(
        "devallow",
        r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]}"#,
    );
    assert_eq!(probe_devices(&cg), "null:ok zero:ok kmsg-read:ok kmsg-rw:denied");
}

#[test]
fn deny_rules_in_an_allow_all_config() {
    let cg = Cg::new(
        "devblack",
        r#"{"devices":[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":11,"access":"w"}]}"#,
    );
    assert_eq!(probe_devices(&cg), "null:ok zero:ok kmsg-read:ok kmsg-rw:denied");
}

#[test]
fn creating_again_replaces_the_device_filter() {
    let first = Cg::new("devagain", r#"{"devices":[{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]}"#);
    let path = unique("devagain");
    let mut second =
        Manager::new(&CgroupRequest { cgroups_path: Some(&path), container_id: "x", systemd: false, rootless: false })
            .unwrap();
    second.create(Some(&res(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#))).unwrap();
    assert_eq!(probe_devices(&first), "null:ok zero:ok kmsg-read:denied kmsg-rw:denied");
    if let Some(fd) = second.clone_into_fd()
        && first.m.is_unified()
    {
        let ids = strata::sys::bpf::prog_query(fd, strata::sys::bpf::ATTACH_CGROUP_DEVICE).unwrap();
        assert_eq!(ids.len(), 1, "old filter still attached: {ids:?}");
    }
}

#[test]
fn cpu_values_are_written() {
    let cg = Cg::new("cpu", r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0","idle":0}}"#);
    if cg.m.is_unified() {
        assert_eq!(cg.read("cpu", "cpu.weight"), "59");
        assert_eq!(cg.read("cpu", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(cg.read("cpu", "cpu.shares"), "512");
        assert_eq!(cg.read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cg.read("cpu", "cpu.cfs_period_us"), "100000");
    }
    assert_eq!(cg.read("cpuset", "cpuset.cpus"), "0");
    let out = cg.run("grep Cpus_allowed_list /proc/self/status");
    assert!(String::from_utf8_lossy(&out.stdout).trim().ends_with("\t0"), "{out:?}");
}

#[test]
fn new_cpuset_parents_are_filled_from_above() {
    // Three fresh levels: v1 cpuset dirs start empty and would refuse the process.
    let cg = Cg::new("cpuset/a/b", r#"{"cpu":{"mems":"0"}}"#);
    let out = cg.run("echo in");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "in", "{out:?}");
    // v2 leaves cpuset.cpus empty (inherit) and shows what applies in cpuset.cpus.effective.
    let cpus = if cg.m.is_unified() { "cpuset.cpus.effective" } else { "cpuset.cpus" };
    assert!(!cg.read("cpuset", cpus).is_empty());
}

#[test]
fn block_io_values_are_written() {
    // A real block device: throttling rules name one.
    let dev = fs::read_dir("/sys/dev/block").unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok()).next();
    let dev = dev.expect("a block device (e.g. modprobe loop)");
    let (major, minor) = dev.split_once(':').unwrap();
    let json = format!(
        r#"{{"blockIO":{{"throttleReadBpsDevice":[{{"major":{major},"minor":{minor},"rate":1048576}}],
                          "throttleWriteIOPSDevice":[{{"major":{major},"minor":{minor},"rate":100}}]}}}}"#
    );
    let cg = Cg::new("blkio", &json);
    if cg.m.is_unified() {
        let max = cg.read("io", "io.max");
        assert!(max.contains(&format!("{dev} rbps=1048576 wbps=max riops=max wiops=100")), "{max}");
    } else {
        assert_eq!(cg.read("blkio", "blkio.throttle.read_bps_device"), format!("{dev} 1048576"));
        assert_eq!(cg.read("blkio", "blkio.throttle.write_iops_device"), format!("{dev} 100"));
    }
}

#[test]
fn block_io_weight_where_the_kernel_has_a_weight_file() {
    require_root();
    let path = unique("weight");
    let mut m =
        Manager::new(&CgroupRequest { cgroups_path: Some(&path), container_id: "x", systemd: false, rootless: false })
            .unwrap();
    match m.create(Some(&res(r#"{"blockIO":{"weight":500}}"#))) {
        Ok(()) => {
            let cg = Cg { m };
            let dir = cg.m.path(if cg.m.is_unified() { "io" } else { "blkio" }).unwrap().to_path_buf();
            let (file, want) = [
                ("blkio.weight", "500"),
                ("blkio.bfq.weight", "500"),
                ("io.bfq.weight", "default 500"),
                ("io.weight", "default 4950"),
            ]
            .into_iter()
            .find(|(f, _)| dir.join(f).exists())
            .expect("a weight file");
            assert_eq!(fs::read_to_string(dir.join(file)).unwrap().trim(), want);
        }
        // No I/O scheduler with weights (no BFQ, no iocost): the error names the file.
        Err(CgroupError::Write { path, source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT), "{}", path.display());
            assert!(path.to_string_lossy().contains("weight"), "{}", path.display());
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn hugetlb_limit_is_written() {
    let sizes = fs::read_dir("/sys/kernel/mm/hugepages").map(|d| d.count()).unwrap_or(0);
    assert!(sizes > 0, "the kernel has no huge page sizes");
    let cg = Cg::new("hugetlb", r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#);
    let f = ["hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.max"]
        .iter()
        .find_map(|f| exists_in_some_dir(&cg.m, f))
        .expect("a hugetlb limit file");
    assert_eq!(fs::read_to_string(&f).unwrap().trim(), "4194304", "{}", f.display());
}

#[test]
fn network_class_and_priorities() {
    require_root();
    let json = r#"{"network":{"classID":1048577,"priorities":[{"name":"lo","priority":5}]}}"#;
    let path = unique("net");
    let mut m =
        Manager::new(&CgroupRequest { cgroups_path: Some(&path), container_id: "x", systemd: false, rootless: false })
            .unwrap();
    match m.create(Some(&res(json))) {
        Ok(()) => {
            let cg = Cg { m };
            if cg.m.is_unified() {
                assert_eq!(cg.m.ignored_resources(&res(json)).unwrap(), ["network.classID", "network.priorities"]);
            } else {
                assert_eq!(cg.read("net_cls", "net_cls.classid"), "1048577");
                assert!(cg.read("net_prio", "net_prio.ifpriomap").contains("lo 5"));
            }
        }
        // v1 without net_cls/net_prio mounted (this machine): refused up front, as runc.
        Err(e) => {
            assert!(matches!(e, CgroupError::ControllerMissing { controller: "net_cls", .. }), "{e}");
            assert!(m.state_dirs().iter().all(|d| !d.exists()));
        }
    }
}

#[test]
fn rdma_limits_need_the_device() {
    require_root();
    let path = unique("rdma");
    let mut m =
        Manager::new(&CgroupRequest { cgroups_path: Some(&path), container_id: "x", systemd: false, rootless: false })
            .unwrap();
    let err = m.create(Some(&res(r#"{"rdma":{"nosuchhca0":{"hcaHandles":2}}}"#))).unwrap_err();
    match err {
        // The controller exists: the kernel refuses the unknown device, and the error says where.
        CgroupError::Write { path, .. } => assert!(path.ends_with("rdma.max"), "{}", path.display()),
        CgroupError::ControllerMissing { controller: "rdma", .. } => {}
        e => panic!("{e}"),
    }
    assert!(m.state_dirs().iter().all(|d| !d.exists()));
}

#[test]
fn unified_keys_go_to_the_cgroup2_directory() {
    require_root();
    let path = unique("unified");
    let mut m =
        Manager::new(&CgroupRequest { cgroups_path: Some(&path), container_id: "x", systemd: false, rootless: false })
            .unwrap();
    match m.create(Some(&res(r#"{"unified":{"cgroup.max.descendants":"7"}}"#))) {
        Ok(()) => {
            let cg = Cg { m };
            assert_eq!(cg.read("", "cgroup.max.descendants"), "7");
            if cg.m.is_unified() {
                cg.m.update(&res(r#"{"unified":{"memory.high":"50000000","pids.max":"9"}}"#)).unwrap();
                assert_eq!(cg.read("", "memory.high"), "49999872"); // rounded down to pages
                assert_eq!(cg.read("", "pids.max"), "9");
            }
        }
        Err(e) => assert!(e.to_string().contains("no cgroup v2"), "{e}"),
    }
}

#[test]
fn freeze_stops_the_processes_and_thaw_resumes_them() {
    let cg = Cg::new("freeze", "{}");
    let counter = std::env::temp_dir().join(format!("strata-freeze-{}", std::process::id()));
    let mut child = cg.spawn(&format!("i=0; while :; do i=$((i+1)); echo $i > {}; done", counter.display()));
    let read = || fs::read_to_string(&counter).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
    wait_until("the loop to start", || read() > 0);
    assert_eq!(cg.m.freezer_state().unwrap(), FreezerState::Thawed);
    cg.m.freeze().unwrap();
    assert_eq!(cg.m.freezer_state().unwrap(), FreezerState::Frozen);
    let frozen_at = read();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read(), frozen_at, "the process ran while frozen");
    cg.m.thaw().unwrap();
    assert_eq!(cg.m.freezer_state().unwrap(), FreezerState::Thawed);
    wait_until("the loop to run again", || read() > frozen_at);
    cg.m.kill_all(Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    if let Err(e) = fs::remove_file(&counter) {
        eprintln!("cleanup: {e}");
    }
}

#[test]
fn kill_all_reaches_processes_in_sub_cgroups() {
    let cg = Cg::new("killall", "{}");
    let mut top = cg.spawn("exec /bin/busybox sleep 100");
    // A cgroup the container made below its own, with a process in it.
    let sub_dirs: Vec<PathBuf> = cg.m.state_dirs().iter().map(|d| d.join("nested")).collect();
    for d in &sub_dirs {
        fs::create_dir(d).unwrap();
        // A new v1 cpuset cgroup takes no process until it has cpus and mems.
        for f in ["cpuset.cpus", "cpuset.mems"].into_iter().filter(|f| d.join(f).exists()) {
            if let Ok(v) = fs::read_to_string(d.parent().unwrap().join(f)) {
                fs::write(d.join(f), v.trim()).unwrap();
            }
        }
    }
    let mut nested = Command::new("/bin/busybox").args(["sleep", "100"]).spawn().unwrap();
    for d in &sub_dirs {
        fs::write(d.join("cgroup.procs"), nested.id().to_string()).unwrap();
    }
    let mut pids: Vec<i32> = cg.m.pids().unwrap().iter().map(|p| p.as_raw()).collect();
    pids.sort_unstable();
    let mut want = vec![top.id() as i32, nested.id() as i32];
    want.sort_unstable();
    assert_eq!(pids, want);

    cg.m.kill_all(Signal::SIGTERM).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(top.wait().unwrap().signal(), Some(libc::SIGTERM));
    assert_eq!(nested.wait().unwrap().signal(), Some(libc::SIGTERM));
    assert_eq!(cg.m.freezer_state().unwrap(), FreezerState::Thawed);
    cg.m.destroy().unwrap();
    for d in &sub_dirs {
        assert!(!d.exists() && !d.parent().unwrap().exists(), "{} left behind", d.display());
    }
}

#[test]
fn kill_all_with_sigkill() {
    let cg = Cg::new("killall9", "{}");
    let mut a = cg.spawn("/bin/busybox sleep 100 & exec /bin/busybox sleep 100");
    wait_until("both sleeps", || cg.m.pids().unwrap().len() == 2);
    cg.m.kill_all(Signal::SIGKILL).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(a.wait().unwrap().signal(), Some(libc::SIGKILL));
    wait_until("the orphan to be reaped", || cg.m.pids().unwrap().is_empty());
}

#[test]
fn stats_show_usage() {
    let cg = Cg::new("stats", r#"{"pids":{"limit":10},"memory":{"limit":67108864}}"#);
    let mut child = cg.spawn("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec /bin/busybox sleep 100");
    // Memory is charged where it is allocated: the exec after the loop charges the container.
    wait_until("cpu time and memory to be used", || {
        let s = cg.m.stats().unwrap();
        s.cpu.usage.total > 10_000_000 && s.memory.usage.usage > 0
    });
    let s = cg.m.stats().unwrap();
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 10);
    assert_eq!(s.memory.usage.limit, 67108864);
    assert!(!s.memory.raw.is_empty());
    let json = serde_json::to_value(strata::cgroup::Event::stats("stats", s)).unwrap();
    assert_eq!(json["type"], "stats");
    assert_eq!(json["data"]["pids"]["limit"], 10);
    assert!(json["data"]["network_interfaces"].is_null());
    cg.m.kill_all(Signal::SIGKILL).unwrap();
    child.wait().unwrap();
}

#[test]
fn update_changes_only_what_it_names() {
    let cg = Cg::new(
        "update",
        r#"{"memory":{"limit":67108864},"pids":{"limit":50},"devices":[{"allow":false,"access":"rwm"}]}"#,
    );
    // podman's partial file, then containerd's stdin form (which carries devices: ignored).
    cg.m.update(&res(r#"{"memory":{"limit":104857600,"swap":209715200}}"#)).unwrap();
    cg.m.update(&res(r#"{"devices":[{"allow":true,"access":"rwm"}],"cpu":{"shares":256}}"#)).unwrap();
    if cg.m.is_unified() {
        assert_eq!(cg.read("memory", "memory.max"), "104857600");
        if cg.file("memory", "memory.swap.max").exists() {
            assert_eq!(cg.read("memory", "memory.swap.max"), "104857600");
        }
        assert_eq!(cg.read("cpu", "cpu.weight"), strata::cgroup::shares_to_weight(256).to_string());
    } else {
        assert_eq!(cg.read("memory", "memory.limit_in_bytes"), "104857600");
        assert_eq!(cg.read("memory", "memory.memsw.limit_in_bytes"), "209715200");
        assert_eq!(cg.read("cpu", "cpu.shares"), "256");
    }
    assert_eq!(cg.read("pids", "pids.max"), "50");
    // The device rules stayed.
    assert_eq!(probe_devices(&cg), "null:ok zero:ok kmsg-read:denied kmsg-rw:denied");
    // checkBeforeUpdate refuses a limit below what is in use.
    let mut child = cg.spawn("exec /bin/busybox sleep 100");
    wait_until("memory to be charged", || cg.m.stats().unwrap().memory.usage.usage > 4096);
    let err = cg.m.update(&res(r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#)).unwrap_err();
    assert!(matches!(err, CgroupError::BelowUsage { .. }), "{err}");
    cg.m.kill_all(Signal::SIGKILL).unwrap();
    child.wait().unwrap();
}

#[test]
fn clone_into_cgroup_starts_the_child_inside() {
    use strata::sys::process::{Forked, clone3_fork};
    let cg = Cg::new("clone", "{}");
    let Some(fd) = cg.m.clone_into_fd() else {
        // Pure v1: nothing to clone into; the caller writes cgroup.procs instead.
        assert!(cg.m.path("").is_none(), "a cgroup2 hierarchy but no directory to clone into");
        return;
    };
    match clone3_fork(0, Some(fd)).unwrap() {
        Forked::Child => loop {
            // Only a system call here: the test process has other threads.
            nix::unistd::pause();
        },
        Forked::Parent { pid, .. } => {
            cg.m.add_process(pid, true).unwrap();
            let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            nix::sys::signal::kill(pid, Signal::SIGKILL).unwrap();
            nix::sys::wait::waitpid(pid, None).unwrap();
            let want = unique("clone");
            assert!(text.lines().all(|l| l.ends_with(&want)), "{text}");
        }
    }
}

#[test]
fn events_report_oom_and_stats_until_the_container_is_gone() {
    use strata::cgroup::{EventsEnd, watch_events};
    let cg = Cg::new("events", r#"{"memory":{"limit":33554432,"swap":33554432}}"#);
    // The hog starts once the watcher is running (after the first stats event).
    let flag = std::env::temp_dir().join(format!("strata-events-{}", std::process::id()));
    let child = cg.spawn(&format!(
        "while [ ! -e {f} ]; do /bin/busybox sleep 0.05; done; exec /bin/busybox dd if=/dev/zero of=/dev/null bs=64M count=1",
        f = flag.display()
    ));
    // v2 ends the stream when the cgroup is empty; v1 when it is removed, as by `delete` after
    // the container died.
    let state = cg.m.state();
    let v1 = !cg.m.is_unified();
    let deleter = std::thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        if v1 {
            Manager::from_state(&state).destroy().unwrap();
        }
        out
    });
    let mut kinds = Vec::new();
    let end = watch_events(&cg.m, "events", Duration::from_millis(50), |e| {
        let line = serde_json::to_string(e).unwrap();
        assert!(line.starts_with(&format!(r#"{{"type":"{}","id":"events""#, e.kind)), "{line}");
        if e.kind == "stats" && !flag.exists() {
            fs::write(&flag, "").unwrap();
        }
        kinds.push(e.kind);
        Ok(())
    })
    .unwrap();
    let out = deleter.join().unwrap();
    if let Err(e) = fs::remove_file(&flag) {
        eprintln!("cleanup: {e}");
    }
    assert_eq!(end, EventsEnd::ContainerGone);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
    assert!(kinds.contains(&"oom"), "{kinds:?}");
    assert!(kinds.contains(&"stats"), "{kinds:?}");
}

#[test]
fn below_a_threaded_cgroup_only_threaded_controllers() {
    require_root();
    let probe =
        Manager::new(&CgroupRequest { cgroups_path: Some("/x"), container_id: "x", systemd: false, rootless: false })
            .unwrap();
    let Some(v2_root) = probe.path("").map(|p| p.parent().unwrap().to_path_buf()) else {
        return; // pure v1: no cgroup types
    };
    // /<top>/t is made threaded by hand, as a threaded application would.
    let top = format!("strata-threaded-{}", std::process::id());
    let t = v2_root.join(&top).join("t");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("cgroup.type"), "threaded").unwrap();
    let manager = |leaf: &str| {
        let path = format!("/{top}/t/{leaf}");
        Manager::new(&CgroupRequest { cgroups_path: Some(&path), container_id: "x", systemd: false, rootless: false })
            .unwrap()
    };

    // Threaded-capable limits: the new cgroup is made threaded too.
    let mut m = manager("ok");
    m.create(Some(&res(r#"{"pids":{"limit":9}}"#))).unwrap();
    let leaf = m.path("").unwrap().to_path_buf();
    assert_eq!(fs::read_to_string(leaf.join("cgroup.type")).unwrap().trim(), "threaded");
    assert_eq!(fs::read_to_string(m.path("pids").unwrap().join("pids.max")).unwrap().trim(), "9");
    m.destroy().unwrap();

    // A memory limit needs a domain cgroup: refused on pure v2, where memory lives in this tree.
    let mut m = manager("mem");
    let result = m.create(Some(&res(r#"{"memory":{"limit":33554432}}"#)));
    if m.is_unified() {
        let err = result.unwrap_err();
        assert!(matches!(err, CgroupError::Threaded { .. }), "{err}");
        assert!(!m.path("").unwrap().exists());
    } else {
        result.unwrap();
        m.destroy().unwrap();
    }
    for d in [t.as_path(), t.parent().unwrap()] {
        fs::remove_dir(d).unwrap();
    }
}
