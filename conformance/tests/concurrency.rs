//! Concurrency: many runtime invocations at once on the same container and on different ones never
//! corrupt state, never deadlock (an invocation running for a minute fails the test), keep ids unique,
//! and a pid recycled after a container died is never signalled.

use std::fs;
use std::process::Command;
use std::sync::{Arc, Barrier};

use strata_conformance::container::{process_alive, wait_exit};
use strata_conformance::*;

fn cgroups_path(b: &Bundle) -> String {
    b.spec["linux"]["cgroupsPath"].as_str().or_fail("cgroupsPath").to_string()
}

/// Nothing of the container is left: no state, no cgroup, no process.
#[track_caller]
fn assert_gone(t: &Test, id: &str, cgroups_path: &str) {
    assert!(!t.root().join(id).exists(), "the state directory of {id} is left");
    let dirs = traces::cgroup_dirs(cgroups_path);
    assert!(dirs.is_empty(), "cgroups {dirs:?} of {id} are left");
    let procs = traces::processes_in(cgroups_path);
    assert!(procs.is_empty(), "processes {procs:?} of {id} are left");
}

/// Runs `f(thread index)` on `n` threads released together; returns their results in order.
fn together<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, f) = (barrier.clone(), f.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap_or_else(|_| panic!("a worker thread panicked"))).collect()
}

#[test]
fn parallel_creates_of_one_id_exactly_one_wins() {
    // runtime.md create: "If the ID provided is not unique across all containers within the scope of the
    // runtime ... the runtime MUST generate an error and a new container MUST NOT be created."
    spec_test("parallel_creates_of_one_id_exactly_one_wins", |t| {
        let mut b = t.bundle();
        b.args(&["true"]);
        b.write();
        let id = t.new_id();
        let r = t.runner();
        let (dir, id2) = (b.dir.clone(), id.clone());
        let outcomes =
            together(16, move |_| r.run(&["create".as_ref(), "--bundle".as_ref(), dir.as_os_str(), id2.as_ref()]));
        let winners = outcomes.iter().filter(|o| o.success()).count();
        assert_eq!(winners, 1, "{winners} creates of one id succeeded");
        if matches!(t.runtime().kind, RuntimeKind::Strata) {
            // The wording is runc's (clients match on it); other runtimes only have to fail.
            for o in outcomes.iter().filter(|o| !o.success()) {
                assert!(o.stderr.contains("exists"), "a losing create failed for another reason: {o}");
            }
        }
        // The winner's container is intact: its state is "created" and it starts and runs.
        let state = t.cmd(&["state"]).arg(&id).run();
        assert_eq!(state.json()["status"], "created", "{state}");
        t.cmd(&["start"]).arg(&id).run().ok();
        let pid = state.json()["pid"].as_i64().or_fail("pid") as i32;
        assert_eq!(wait_exit(pid, &id), Exit::Code(0));
        t.cmd(&["delete"]).arg(&id).run().ok();
        assert_gone(t, &id, &cgroups_path(&b));
    });
}

#[test]
fn parallel_lifecycle_commands_on_one_id_keep_state_whole() {
    // Every command at once on one id, over and over (create again after a delete): each either does its
    // job or fails cleanly; `state` and `list` always read a whole state file; nothing hangs.
    spec_test("parallel_lifecycle_commands_on_one_id_keep_state_whole", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        b.write();
        let id = t.new_id();
        let r = t.runner();
        let (dir, id2) = (b.dir.display().to_string(), id.clone());
        let reports = together(12, move |i| {
            let (mut bad, mut created) = (Vec::new(), 0);
            for round in 0..24 {
                let args: Vec<&str> = match (i + round) % 8 {
                    0 => vec!["create", "--bundle", &dir, &id2],
                    1 => vec!["start", &id2],
                    2 => vec!["kill", &id2, "KILL"],
                    3 => vec!["delete", "--force", &id2],
                    4 => vec!["state", &id2],
                    5 => vec!["list", "--format", "json"],
                    6 => vec!["exec", &id2, "true"],
                    _ => vec!["delete", &id2],
                };
                let out = r.run(&args);
                created += usize::from(args[0] == "create" && out.success());
                if out.stderr.contains("corrupt")
                    || out.stderr.contains("panicked")
                    // exec exits with its process's status (128+9 when a kill got it).
                    || (args[0] != "exec" && out.code().is_none_or(|c| c > 1))
                {
                    bad.push(format!("{out}"));
                }
                // A create fails only because the id is taken; a forced delete always succeeds.
                if args[0] == "create" && !out.success() && !out.stderr.contains("exists") {
                    bad.push(format!("{out}"));
                }
                if args[..2] == ["delete", "--force"] && !out.success() {
                    bad.push(format!("{out}"));
                }
                if out.success()
                    && args[0] == "state"
                    && serde_json::from_str::<Value>(&out.stdout).map_or(true, |v| v["id"] != id2.as_str())
                {
                    bad.push(format!("state printed {:?}", out.stdout));
                }
                if out.success() && args[0] == "list" && serde_json::from_str::<Value>(&out.stdout).is_err() {
                    bad.push(format!("list printed {:?}", out.stdout));
                }
            }
            (bad, created)
        });
        let created: usize = reports.iter().map(|r| r.1).sum();
        let bad: Vec<String> = reports.into_iter().flat_map(|r| r.0).collect();
        assert!(bad.is_empty(), "{}", bad.join("\n"));
        assert!(created > 0, "no create ever succeeded: the test did not exercise a lifecycle");
        // Whatever state it ended in, it is readable and can be removed completely.
        let state = t.cmd(&["state"]).arg(&id).run();
        if state.success() {
            assert_eq!(state.json()["id"], id.as_str(), "{state}");
        }
        t.cmd(&["delete", "--force"]).arg(&id).run().ok();
        assert_gone(t, &id, &cgroups_path(&b));
    });
}

#[test]
fn parallel_lifecycles_of_different_ids() {
    spec_test("parallel_lifecycles_of_different_ids", |t| {
        const N: usize = 12;
        let mut bundles = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..N {
            let mut b = t.bundle();
            b.args(&["sleep", "30"]);
            b.write();
            bundles.push(b);
            ids.push(t.new_id());
        }
        let r = t.runner();
        let mut pids: Vec<i32> = Vec::new();
        let dirs: Vec<String> = bundles.iter().map(|b| b.dir.display().to_string()).collect();
        let step = |args: fn(&str, &str) -> Vec<String>| {
            let (r, dirs, ids) = (r.clone(), dirs.clone(), ids.clone());
            together(N, move |i| r.run(&args(&dirs[i], &ids[i])))
        };
        for (name, args) in [
            (
                "create",
                (|d: &str, id: &str| vec!["create".into(), "--bundle".into(), d.into(), id.into()])
                    as fn(&str, &str) -> Vec<String>,
            ),
            ("start", |_, id| vec!["start".into(), id.into()]),
            ("kill", |_, id| vec!["kill".into(), id.into(), "KILL".into()]),
        ] {
            for o in step(args) {
                assert!(o.success(), "parallel {name}: {o}");
            }
            if name == "create" {
                pids = ids
                    .iter()
                    .map(|id| t.cmd(&["state"]).arg(id).run().json()["pid"].as_i64().or_fail("pid") as i32)
                    .collect();
            }
        }
        for (id, pid) in ids.iter().zip(&pids) {
            assert_eq!(wait_exit(*pid, id), Exit::Signal(9), "{id} did not get its SIGKILL");
        }
        for o in step(|_, id| vec!["delete".into(), id.into()]) {
            assert!(o.success(), "parallel delete: {o}");
        }
        for (b, id) in bundles.iter().zip(&ids) {
            assert_gone(t, id, &cgroups_path(b));
        }
    });
}

#[test]
fn create_in_progress_is_not_healthy_and_delete_waits() {
    // While `create` runs (held in a prestart hook), the container is "creating", never shown as
    // created. A concurrent `delete --force` waits for the create and removes what it made.
    spec_test("create_in_progress_is_not_healthy_and_delete_waits", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        let gate = t.path("gate");
        let script = format!("while [ ! -e {} ]; do sleep 0.01; done", gate.display());
        b.push("/hooks/prestart", json!({"path": "/bin/sh", "args": ["sh", "-c", script]}));
        b.write();
        let id = t.new_id();
        let r = t.runner();
        let (dir, id2) = (b.dir.clone(), id.clone());
        let create =
            std::thread::spawn(move || r.run(&["create".as_ref(), "--bundle".as_ref(), dir.as_os_str(), id2.as_ref()]));
        // Whatever happens below, the hook is let go in the end, so the create thread ends.
        let gate_guard = OpenGate(gate.clone());
        // Until the hook runs, the state may not exist yet; then it must say "creating".
        let started = std::time::Instant::now();
        let status = loop {
            let s = t.cmd(&["state"]).arg(&id).run();
            if s.success() && s.json()["status"] != "stopped" {
                break s.json()["status"].as_str().unwrap_or_default().to_string();
            }
            assert!(started.elapsed().as_secs() < 20, "the create never showed up in `state`");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(status, "creating");
        let list = t.cmd(&["list", "--format", "json"]).run();
        let listed = list.json();
        let entry = listed.as_array().and_then(|a| a.iter().find(|c| c["id"] == id.as_str())).cloned();
        assert_eq!(entry.as_ref().map(|e| e["status"].clone()), Some(json!("creating")), "{listed}");
        let r = t.runner();
        let id3 = id.clone();
        let delete = std::thread::spawn(move || r.run(&["delete", "--force", &id3]));
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(gate_guard);
        // Either order is fine (the create may finish first or be undone); both must return.
        create.join().unwrap_or_else(|_| panic!("create thread panicked"));
        delete.join().unwrap_or_else(|_| panic!("delete thread panicked")).ok();
        assert_gone(t, &id, &cgroups_path(&b));
    });
}

/// Creates the file a prestart hook waits for, when dropped.
struct OpenGate(std::path::PathBuf);

impl Drop for OpenGate {
    fn drop(&mut self) {
        if let Err(e) = fs::write(&self.0, "") {
            eprintln!("note: open the gate {}: {e}", self.0.display());
        }
    }
}

/// Makes the next process the test spawns get pid `pid` (through the host's ns_last_pid), or fails.
fn spawn_with_pid(pid: i32) -> std::process::Child {
    for _ in 0..200 {
        fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).or_fail("write ns_last_pid");
        let child = Command::new("sleep").arg("60").spawn().or_fail("spawn sleep");
        if child.id() as i32 == pid {
            return child;
        }
        let mut child = child;
        if let Err(e) = child.kill().and_then(|()| child.wait().map(drop)) {
            eprintln!("note: stop a stray sleep: {e}");
        }
    }
    panic!("could not get pid {pid} back for the recycled-pid test (something else takes pids too fast)");
}

#[test]
fn recycled_pid_is_never_signalled() {
    // The container's init died; its pid now belongs to an unrelated process. kill and delete must not
    // touch that process.
    spec_test("recycled_pid_is_never_signalled", |t| {
        let mut b = t.bundle();
        b.args(&["sleep", "30"]);
        let c = t.start(&b);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.pid), nix::sys::signal::Signal::SIGKILL)
            .or_fail("kill the container's init from outside");
        c.wait();
        let mut victim = spawn_with_pid(c.pid);
        let kill = c.kill("TERM");
        let state = c.state();
        t.cmd(&["delete", "--force"]).arg(&c.id).run().ok();
        let alive = process_alive(c.pid);
        if let Err(e) = victim.kill().and_then(|()| victim.wait().map(drop)) {
            eprintln!("note: stop the victim: {e}");
        }
        assert!(alive, "the process that got the dead container's pid was killed");
        kill.failed();
        assert_eq!(state["status"], "stopped", "{state}");
    });
}
