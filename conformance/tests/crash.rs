//! Crash safety: the runtime is killed (SIGKILL, injected by strace) at every system call it makes
//! during `create`, in the runtime process and in the container's init before it is ready. After each
//! crash, `list` must not show the half-made container as healthy, and `delete --force` must remove
//! every trace of it: state directory (with the exec fifo), cgroups, processes and mounts.

use std::collections::HashMap;
use std::fs;

use strata_conformance::*;

/// A point to crash at: the `nth` call (1-based) of system call `name`.
#[derive(Debug, Clone)]
struct Point {
    name: String,
    nth: usize,
    /// After the state file was written for the last time: `create` had completed, only its exit
    /// was left, and the container may be shown as created.
    complete: bool,
}

/// Every system call of a successful `create` (as `strace -o trace` writes it), as crash points: of
/// the traced processes selected by `keep(pid column)` when strace ran with `-f`.
fn crash_points(trace: &str, with_pids: bool, keep: impl Fn(&str) -> bool) -> Vec<Point> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut points = Vec::new();
    let lines: Vec<&str> = trace.lines().collect();
    let commit = lines.iter().rposition(|l| l.contains("rename(") && l.contains("state.json\")"));
    for (index, &line) in lines.iter().enumerate() {
        let (pid, call) = if with_pids {
            match line.split_once(' ') {
                Some((p, rest)) => (p, rest.trim_start()),
                None => continue,
            }
        } else {
            ("", line)
        };
        if call.starts_with("---") || call.starts_with("+++") || call.starts_with('<') || !keep(pid) {
            continue;
        }
        let Some(name) = call.split('(').next().filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        else {
            continue;
        };
        let nth = seen.entry(name.to_string()).or_default();
        *nth += 1;
        // The runtime's own execve (strace starting it) is not a step of create.
        if name != "execve" || *nth > 1 {
            let complete = commit.is_some_and(|c| index > c);
            points.push(Point { name: name.to_string(), nth: *nth, complete });
        }
    }
    thin(points)
}

/// At most this many crash points per test (runc, multi-threaded Go, makes thousands of calls): an
/// even spread over all of them.
const MAX_POINTS: usize = 400;

fn thin(points: Vec<Point>) -> Vec<Point> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    let step = points.len().div_ceil(MAX_POINTS);
    points.into_iter().step_by(step).collect()
}

/// After a crash at `point`: the container is not shown healthy, `delete --force` succeeds and leaves
/// nothing behind.
#[track_caller]
fn assert_cleaned_up(t: &Test, b: &Bundle, id: &str, point: &str, complete: bool) {
    let list = t.cmd(&["list", "--format", "json"]).run();
    assert!(list.success(), "crash at {point}: {list}; the state it read: {}", state_files(t));
    let listed = serde_json::from_str::<Value>(&list.stdout).unwrap_or(Value::Null);
    if let Some(entry) = listed.as_array().and_then(|a| a.iter().find(|c| c["id"] == id)) {
        let status = entry["status"].as_str().unwrap_or_default();
        let healthy = ["created", "running", "paused"].contains(&status);
        assert!(!healthy || complete, "crash at {point}: a half-made container is listed as {status}");
    }
    t.cmd(&["delete", "--force"]).arg(id).run().ok();
    let state_dir = t.root().join(id);
    assert!(!state_dir.exists(), "crash at {point}: {} is left", state_dir.display());
    t.cmd(&["state"]).arg(id).run().failed();
    let cgroups_path = b.spec["linux"]["cgroupsPath"].as_str().or_fail("cgroupsPath").to_string();
    let dirs = traces::cgroup_dirs(&cgroups_path);
    assert!(dirs.is_empty(), "crash at {point}: cgroups {dirs:?} are left");
    let left = traces::processes_in(&cgroups_path);
    assert!(left.is_empty(), "crash at {point}: processes {left:?} are left in the container's cgroup");
    let info = fs::read_to_string("/proc/self/mountinfo").or_fail("read mountinfo");
    let bundle = b.dir.display().to_string();
    assert!(!info.contains(&bundle), "crash at {point}: a mount under the bundle is left on the host");
}

/// The bundle's parent cgroup made beforehand: otherwise whether `create` has to make it depends on
/// what tests running alongside did, and the n-th call of a traced run is not the n-th of the next.
fn make_parent_cgroup(b: &Bundle) {
    traces::make_cgroup_parent(b.spec["linux"]["cgroupsPath"].as_str().or_fail("cgroupsPath"));
}

/// The runtime was killed where the point says. A `create` that succeeded made fewer such calls than
/// the traced run: the crash was never tested, and the calls it made say why.
#[track_caller]
fn assert_injected(out: &Outcome, point: &str, trace: &std::path::Path) {
    if out.success() {
        let calls = fs::read_to_string(trace).unwrap_or_default();
        let name = point.split('#').next().unwrap_or(point);
        let made: Vec<&str> = calls.lines().filter(|l| l.contains(&format!("{name}("))).collect();
        panic!(
            "crash at {point}: create was not killed (it made fewer calls than the traced run); its {name} calls:\n{}",
            made.join("\n")
        );
    }
}

/// Every file under the state root with its first bytes, for a failure message.
fn state_files(t: &Test) -> String {
    let mut out = String::new();
    for dir in fs::read_dir(t.root()).into_iter().flatten().flatten() {
        // Regular files only: reading the exec fifo would block.
        let files = fs::read_dir(dir.path()).into_iter().flatten().flatten();
        for file in files.filter(|f| f.file_type().is_ok_and(|t| t.is_file())) {
            let text = fs::read(file.path()).map(|b| String::from_utf8_lossy(&b[..b.len().min(600)]).into_owned());
            out.push_str(&format!("\n{}: {:?}", file.path().display(), text.unwrap_or_else(|e| e.to_string())));
        }
    }
    out
}

fn strace_inject(point: &Point, follow: bool, trace: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = vec!["strace".into(), "-o".into(), trace.display().to_string(), "-qq".into()];
    if follow {
        // -D: strace is not the runtime's parent, so `create` returns when the runtime does even if a
        // traced init lives on.
        v.extend(["-D", "-f"].map(String::from));
    }
    v.push("-e".into());
    v.push(format!("inject={}:signal=SIGKILL:when={}", point.name, point.nth));
    v
}

#[test]
fn create_killed_at_every_runtime_step_is_cleaned_up() {
    spec_test("create_killed_at_every_runtime_step_is_cleaned_up", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        b.write();
        make_parent_cgroup(&b);
        let trace = t.path("trace");
        let id = t.new_id();
        t.cmd(&["create", "--bundle"])
            .arg(&b.dir)
            .arg(&id)
            .via(&["strace", "-qq", "-o", trace.to_str().or_fail("trace path")])
            .run()
            .ok();
        t.cmd(&["delete", "--force"]).arg(&id).run().ok();
        let points = crash_points(&fs::read_to_string(&trace).or_fail("read the trace"), false, |_| true);
        assert!(points.len() > 50, "too few system calls traced: {points:?}");
        let injected = t.path("injected-trace");
        for point in &points {
            let id = t.new_id();
            let wrapper = strace_inject(point, false, &injected);
            let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
            let out = t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(&id).via(&wrapper).run();
            let label = format!("{}#{}", point.name, point.nth);
            assert_injected(&out, &label, &injected);
            assert_cleaned_up(t, &b, &id, &label, point.complete);
        }
    });
}

#[test]
fn create_with_init_killed_at_every_setup_step_is_cleaned_up() {
    // The container's init dies at each of its mount, pivot_root and namespace steps: `create` fails,
    // and must clean up by itself; `delete --force` then finds nothing to do.
    spec_test("create_with_init_killed_at_every_setup_step_is_cleaned_up", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        b.write();
        make_parent_cgroup(&b);
        let trace = t.path("trace");
        let id = t.new_id();
        // System calls only the init makes (the runtime process never does, so an injection cannot hit it).
        let calls = "fsopen,fsconfig,fsmount,move_mount,open_tree,mount_setattr,mount,umount2,pivot_root,\
                     setns,unshare,sethostname,setsid,capset,setresuid,setresgid,setgroups";
        t.cmd(&["create", "--bundle"])
            .arg(&b.dir)
            .arg(&id)
            .via(&["strace", "-qq", "-D", "-f", "-e", &format!("trace={calls}"), "-o", trace.to_str().or_fail("trace")])
            .run()
            .ok();
        t.cmd(&["delete", "--force"]).arg(&id).run().ok();
        let text = fs::read_to_string(&trace).or_fail("read the trace");
        let points = crash_points(&text, true, |_| true);
        assert!(points.len() > 20, "too few init steps traced: {text}");
        let injected = t.path("injected-trace");
        for point in &points {
            let id = t.new_id();
            let wrapper = strace_inject(point, true, &injected);
            let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
            let out = t.cmd(&["create", "--bundle"]).arg(&b.dir).arg(&id).via(&wrapper).run();
            let label = format!("init {}#{}", point.name, point.nth);
            assert_injected(&out, &label, &injected);
            if !out.success() {
                assert!(!t.root().join(&id).exists(), "{label}: the failed create left its state directory");
            }
            assert_cleaned_up(t, &b, &id, &label, false);
        }
    });
}
