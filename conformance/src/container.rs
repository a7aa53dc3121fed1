//! A container created by the runtime under test, and how the suite waits for its process.
//!
//! The test process is a child subreaper (see [`crate::test`]): when the runtime's `create` exits, the
//! container process is re-parented to the test process, exactly as conmon and the containerd shim see
//! it, so its exit status is observed with `waitpid`.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde_json::Value;

use crate::fail::OrFail;
use crate::runtime::{Cmd, Outcome};
use crate::test::Test;

/// A container process that has not exited after this long is killed and the test fails (a safety net).
const EXIT_LIMIT: Duration = Duration::from_secs(60);

/// How a container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// It exited, but it was not a child of the test process, so its status is unknown.
    Unknown,
}

#[derive(Debug)]
pub struct Container<'t> {
    t: &'t Test,
    pub id: String,
    pub bundle: PathBuf,
    /// The container's stdout and stderr (they were the runtime's during `create`).
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// Host pid of the container process, from `state` right after `create`.
    pub pid: i32,
    exit: Cell<Option<Exit>>,
}

impl<'t> Container<'t> {
    pub(crate) fn new(t: &'t Test, id: String, bundle: PathBuf, created: &Outcome) -> Self {
        let mut c = Container {
            t,
            id,
            bundle,
            stdout_path: created.stdout_path.clone(),
            stderr_path: created.stderr_path.clone(),
            pid: 0,
            exit: Cell::new(None),
        };
        c.pid = c.state()["pid"].as_i64().or_fail(format!("pid in the state of created container {}", c.id)) as i32;
        c
    }

    /// A runtime command with this container's id appended.
    pub fn cmd(&self, args: &[&str]) -> Cmd<'t> {
        self.t.cmd(args).arg(&self.id)
    }

    #[track_caller]
    pub fn start(&self) -> &Self {
        self.cmd(&["start"]).run().ok();
        self
    }

    pub fn try_start(&self) -> Outcome {
        self.cmd(&["start"]).run()
    }

    /// The `state` JSON (the command must succeed).
    #[track_caller]
    pub fn state(&self) -> Value {
        let out = self.cmd(&["state"]).run();
        out.ok();
        out.json()
    }

    /// The `status` field of `state`.
    #[track_caller]
    pub fn status(&self) -> String {
        self.state()["status"].as_str().or_fail(format!("status in the state of {}", self.id)).to_string()
    }

    pub fn kill(&self, signal: &str) -> Outcome {
        self.cmd(&["kill"]).arg(signal).run()
    }

    pub fn delete(&self) -> Outcome {
        self.cmd(&["delete"]).run()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stdout_path).unwrap_or_default()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// The last non-empty line of the container's stdout, parsed as JSON (the probe's report).
    #[track_caller]
    pub fn json(&self) -> Value {
        let out = self.stdout();
        let line = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("container {} printed no JSON ({e}); stdout: {out:?}; stderr: {:?}", self.id, self.stderr())
        })
    }

    /// Waits until the container's stdout holds a line containing `needle` (e.g. the probe's
    /// `{"ready":true}`), failing if the process exits first.
    #[track_caller]
    pub fn wait_for_output(&self, needle: &str) {
        let started = Instant::now();
        while !self.stdout().contains(needle) {
            if !process_alive(self.pid) {
                panic!(
                    "container {} exited before printing {needle:?}; stdout: {:?}; stderr: {:?}",
                    self.id,
                    self.stdout(),
                    self.stderr()
                );
            }
            if started.elapsed() > EXIT_LIMIT {
                panic!("container {} did not print {needle:?} within {EXIT_LIMIT:?}", self.id);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the container process to exit and returns how it ended.
    #[track_caller]
    pub fn wait(&self) -> Exit {
        if let Some(e) = self.exit.get() {
            return e;
        }
        let e = wait_exit(self.pid, &self.id);
        self.exit.set(Some(e));
        e
    }

    /// Waits for exit and fails the test unless the process exited with status 0.
    #[track_caller]
    pub fn wait_success(&self) {
        let e = self.wait();
        if e != Exit::Code(0) && e != Exit::Unknown {
            panic!("container {} ended with {e:?}; stdout: {:?}; stderr: {:?}", self.id, self.stdout(), self.stderr());
        }
    }
}

/// Whether `pid` still runs (a zombie counts as exited).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()), Some('Z' | 'X')),
        Err(_) => false,
    }
}

#[track_caller]
/// Waits for process `pid` (a child of the test process, or not: then the status is unknown) to exit.
pub fn wait_exit(pid: i32, what: &str) -> Exit {
    let started = Instant::now();
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Exit::Code(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Exit::Signal(sig as i32),
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => {
                if !process_alive(pid) {
                    return Exit::Unknown;
                }
            }
            Err(e) => panic!("waitpid({pid}) for {what}: {e}"),
        }
        if started.elapsed() > EXIT_LIMIT {
            best_effort_sigkill(pid);
            panic!("process {pid} of {what} did not exit within {EXIT_LIMIT:?}; sent SIGKILL");
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// Best effort: the process may be gone already, which is fine.
pub(crate) fn best_effort_sigkill(pid: i32) {
    if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGKILL) {
        eprintln!("note: SIGKILL to {pid}: {e}");
    }
}

/// Waits for a runtime invocation (`command` is its text) to exit; past `limit` kills it and fails
/// the test, saying what an overrun means (`overrun`).
#[track_caller]
pub fn wait_child(
    child: &mut std::process::Child,
    command: &str,
    limit: std::time::Duration,
    overrun: &str,
) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().or_fail(format!("wait for `{command}`")) {
            return status;
        }
        if started.elapsed() > limit {
            best_effort_kill(child);
            panic!("`{command}` did not exit within {limit:?}: {overrun}");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Best effort: used only on a runtime invocation that already overran its limit.
pub(crate) fn best_effort_kill(child: &mut std::process::Child) {
    if let Err(e) = child.kill() {
        eprintln!("note: kill runtime process {}: {e}", child.id());
    }
    if let Err(e) = child.wait() {
        eprintln!("note: reap runtime process {}: {e}", child.id());
    }
}
