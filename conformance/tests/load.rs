//! Load: 200 containers created, started, run to completion and deleted, 8 at a time; afterwards no
//! state, cgroup, mount, process or descriptor of theirs is left.

use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use strata_conformance::container::wait_exit;
use strata_conformance::*;

const CONTAINERS: usize = 200;
const PARALLEL: usize = 8;

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn many_containers_in_parallel_leave_nothing_behind() {
    spec_test("many_containers_in_parallel_leave_nothing_behind", |t| {
        let prefix = format!("/strata-conformance/{}-load", std::process::id());
        let mut jobs = Vec::new();
        for n in 0..CONTAINERS {
            jobs.push((t.new_id(), format!("{prefix}-{n}")));
        }
        let bundles: Vec<Bundle> = (0..PARALLEL)
            .map(|_| {
                let mut b = t.bundle();
                b.args(&["true"]);
                b
            })
            .collect();
        let fds_before = open_fds();
        let jobs = Arc::new(Mutex::new(jobs));
        let done = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = bundles
            .into_iter()
            .map(|mut b| {
                let (r, jobs, done) = (t.runner(), jobs.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut failures = Vec::new();
                    loop {
                        let Some((id, cgroup)) = jobs.lock().unwrap_or_else(|e| e.into_inner()).pop() else { break };
                        b.set("/linux/cgroupsPath", json!(cgroup));
                        b.write();
                        let dir = b.dir.display().to_string();
                        let created = r.run(&["create", "--bundle", &dir, &id]);
                        if !created.success() {
                            failures.push(created.to_string());
                            continue;
                        }
                        let state = r.run(&["state", &id]);
                        let pid = serde_json::from_str::<Value>(&state.stdout)
                            .ok()
                            .and_then(|v| v["pid"].as_i64())
                            .unwrap_or(0) as i32;
                        let started = r.run(&["start", &id]);
                        if !started.success() {
                            failures.push(started.to_string());
                        }
                        if pid > 0 {
                            let exit = wait_exit(pid, &id);
                            if exit != Exit::Code(0) && exit != Exit::Unknown {
                                failures.push(format!("{id} ended with {exit:?}"));
                            }
                        }
                        let deleted = r.run(&["delete", &id]);
                        if !deleted.success() {
                            failures.push(deleted.to_string());
                        }
                        let leftover = traces::cgroup_dirs(&cgroup);
                        if !leftover.is_empty() {
                            failures.push(format!("{id}: cgroups {leftover:?} left after delete"));
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    failures
                })
            })
            .collect();
        let failures: Vec<String> =
            workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|_| panic!("a worker panicked"))).collect();
        assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
        assert_eq!(done.load(Ordering::SeqCst), CONTAINERS);

        let states: Vec<_> =
            fs::read_dir(t.root()).or_fail("list the state root").flatten().map(|e| e.path()).collect();
        assert!(states.is_empty(), "state left: {states:?}");
        let list = t.cmd(&["list", "-q"]).run();
        assert_eq!(list.stdout.trim(), "", "{list}");
        let parent = prefix.rsplit_once('/').map(|(p, _)| p).unwrap_or("/");
        let name = prefix.rsplit_once('/').map(|(_, n)| n).unwrap_or_default();
        for mount in traces::cgroup_mounts() {
            let dir = mount.join(parent.trim_start_matches('/'));
            let left: Vec<String> = fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.starts_with(name))
                        .collect()
                })
                .unwrap_or_default();
            assert!(left.is_empty(), "cgroups left in {}: {left:?}", dir.display());
        }
        let procs = traces::processes_with_cgroup_prefix(&prefix);
        assert!(procs.is_empty(), "processes left: {procs:?}");
        let mounts = traces::mounts_below(t.dir());
        assert!(mounts.is_empty(), "mounts left on the host: {mounts:?}");
        assert_eq!(open_fds(), fds_before, "descriptors leaked into the test process");
    });
}
