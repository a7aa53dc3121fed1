//! Which runtime binary is under test, and running it with captured output and exit status.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::fail::OrFail;
use crate::test::Test;

/// A runtime invocation that has not exited after this long is killed and the test fails. A safety net
/// against hangs, not a timing assertion.
const INVOCATION_LIMIT: Duration = Duration::from_secs(120);

/// The runtimes the suite knows deviations for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Strata,
    Runc,
    Crun,
    /// Any other runc-compatible binary: held to the spec with no known deviations.
    Other,
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Strata => "strata",
            Self::Runc => "runc",
            Self::Crun => "crun",
            Self::Other => "other",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Runtime {
    pub kind: RuntimeKind,
    pub path: PathBuf,
}

impl Runtime {
    /// `CONFORMANCE_RUNTIME`: `runc` (/usr/sbin/runc), `crun` (/usr/bin/crun), `strata` or unset (the
    /// workspace's `strata`: `STRATA_BIN`, else `target/<profile>/strata` next to the test binary), or a
    /// path (kind taken from its file name: `runc*`, `crun*`, `strata*`, else "other").
    pub fn from_env() -> Self {
        let choice = std::env::var("CONFORMANCE_RUNTIME").unwrap_or_default();
        let rt = match choice.as_str() {
            "" | "strata" => Runtime { kind: RuntimeKind::Strata, path: strata_bin() },
            "runc" => Runtime { kind: RuntimeKind::Runc, path: PathBuf::from("/usr/sbin/runc") },
            "crun" => Runtime { kind: RuntimeKind::Crun, path: PathBuf::from("/usr/bin/crun") },
            path => {
                let name = Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let kind = if name.starts_with("runc") {
                    RuntimeKind::Runc
                } else if name.starts_with("crun") {
                    RuntimeKind::Crun
                } else if name.starts_with("strata") {
                    RuntimeKind::Strata
                } else {
                    RuntimeKind::Other
                };
                Runtime { kind, path: PathBuf::from(path) }
            }
        };
        if !rt.path.is_file() {
            panic!(
                "runtime under test not found at {} (CONFORMANCE_RUNTIME={choice:?}); build it (`cargo build -p strata`), \
                 set STRATA_BIN, or set CONFORMANCE_RUNTIME=runc",
                rt.path.display()
            );
        }
        rt
    }
}

/// `STRATA_BIN`, else `strata` in the cargo profile directory holding this test binary.
fn strata_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_BIN") {
        return PathBuf::from(p);
    }
    profile_dir().join("strata")
}

/// `target/<profile>` (or `target/<triple>/<profile>`): the test binary lives in its `deps/`.
pub(crate) fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().or_fail("locate the test binary");
    exe.parent().and_then(Path::parent).map(Path::to_path_buf).or_fail("profile directory of the test binary")
}

/// What a finished runtime invocation left: exit status and captured output.
#[derive(Debug)]
pub struct Outcome {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Files that held stdout and stderr: after `create` they are also the container's stdout/stderr.
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Outcome {
    /// The outcome of `command`, whose stdout and stderr went to these files.
    pub(crate) fn from_files(command: String, status: ExitStatus, stdout_path: PathBuf, stderr_path: PathBuf) -> Self {
        let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        Outcome { command, status, stdout: read(&stdout_path), stderr: read(&stderr_path), stdout_path, stderr_path }
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Fails the test unless the invocation exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        if !self.success() {
            panic!("expected success: {self}");
        }
        self
    }

    /// Fails the test if the invocation exited 0 (the spec's "MUST generate an error").
    #[track_caller]
    pub fn failed(&self) -> &Self {
        if self.success() {
            panic!("expected an error, but it succeeded: {self}");
        }
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout of {} is not JSON ({e}): {:?}", self.command, self.stdout))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}; stdout: {:?}; stderr: {:?}",
            self.command, self.status, self.stdout, self.stderr
        )?;
        // A crash leaves nothing on stderr: the kernel's line says where it was.
        let faults = [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGILL].map(|s| s as i32);
        if self.status.signal().is_some_and(|s| faults.contains(&s)) {
            write!(f, "; kernel: {:?}", kernel_fault_lines())?;
        }
        Ok(())
    }
}

/// A runtime command line being built: `<runtime> --root <test root> [global flags] <args...>`.
#[derive(Debug)]
pub struct Cmd<'t> {
    t: &'t Test,
    global: Vec<OsString>,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    sh_prefix: Option<String>,
    via: Vec<OsString>,
    with_root: bool,
    bare_env: bool,
    env: Vec<(OsString, OsString)>,
    binary: Option<PathBuf>,
}

impl<'t> Cmd<'t> {
    pub(crate) fn new(t: &'t Test, args: &[&str]) -> Self {
        Cmd {
            t,
            global: Vec::new(),
            args: args.iter().map(OsString::from).collect(),
            stdin: None,
            sh_prefix: None,
            via: Vec::new(),
            with_root: true,
            bare_env: false,
            env: Vec::new(),
            binary: None,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub fn args(mut self, list: &[&str]) -> Self {
        self.args.extend(list.iter().map(OsString::from));
        self
    }

    /// A global flag (placed before the subcommand), e.g. `.global(["--log", path])`.
    pub fn global<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, flags: I) -> Self {
        self.global.extend(flags.into_iter().map(|s| s.as_ref().to_os_string()));
        self
    }

    /// `--log <path> --log-format json`.
    pub fn json_log(self, path: &Path) -> Self {
        self.global([OsStr::new("--log"), path.as_os_str(), OsStr::new("--log-format"), OsStr::new("json")])
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Run the runtime from `/bin/sh -c '<prefix>; exec runtime ...'`, to give it a umask, an
    /// oom_score_adj or extra open descriptors that the container may or may not inherit.
    pub fn sh_prefix(mut self, prefix: &str) -> Self {
        self.sh_prefix = Some(prefix.to_string());
        self
    }

    /// Run the runtime through a wrapper program, e.g. `["setpriv", "--bounding-set", "-sys_time"]`.
    pub fn via(mut self, wrapper: &[&str]) -> Self {
        self.via = wrapper.iter().map(OsString::from).collect();
        self
    }

    /// Run with an environment of only `XDG_RUNTIME_DIR=` (how podman runs kill/delete/pause/resume/state).
    pub fn bare_env(mut self) -> Self {
        self.bare_env = true;
        self
    }

    /// Adds a variable to the runtime's environment (e.g. to see what its hooks inherit).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run this copy of the runtime binary instead of the one under test (e.g. a private copy an
    /// attack may try to overwrite).
    pub fn binary(mut self, path: &Path) -> Self {
        self.binary = Some(path.to_path_buf());
        self
    }

    /// Leave out `--root` (to test the runtime's default root; use with care).
    pub fn without_root(mut self) -> Self {
        self.with_root = false;
        self
    }

    /// Runs the command; `None` if it exited 0, else what went wrong. Never fails the test (for cleanup).
    pub fn run_quiet(self) -> Option<String> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run())) {
            Ok(out) if out.success() => None,
            Ok(out) => Some(out.to_string()),
            Err(_) => Some("the invocation itself failed (see the panic above)".into()),
        }
    }

    /// The command line as a `Command` (stdio not set) and as text, to spawn it some other way
    /// than `run` does (e.g. on a terminal).
    pub fn command(&self) -> (Command, String) {
        let rt = match &self.binary {
            Some(path) => Runtime { kind: self.t.runtime().kind, path: path.clone() },
            None => self.t.runtime().clone(),
        };
        let rt = &rt;
        let mut argv: Vec<OsString> = Vec::new();
        if self.with_root {
            argv.push("--root".into());
            argv.push(self.t.root().into());
        }
        argv.extend(self.global.iter().cloned());
        argv.extend(self.args.iter().cloned());
        let command = std::iter::once(rt.path.as_os_str().to_string_lossy().into_owned())
            .chain(argv.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = match &self.sh_prefix {
            _ if !self.via.is_empty() => {
                let mut c = Command::new(&self.via[0]);
                c.args(&self.via[1..]).arg(&rt.path).args(&argv);
                c
            }
            Some(prefix) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(format!("{prefix}; exec \"$0\" \"$@\"")).arg(&rt.path).args(&argv);
                c
            }
            None => {
                let mut c = Command::new(&rt.path);
                c.args(&argv);
                c
            }
        };
        if self.bare_env {
            cmd.env_clear().env("XDG_RUNTIME_DIR", "");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        (cmd, command)
    }

    /// Runs the command to completion. Its stdio are files, never pipes: a container started by
    /// `create` inherits them and would otherwise keep a pipe open after the runtime exits.
    #[track_caller]
    pub fn run(self) -> Outcome {
        let (mut cmd, command) = self.command();
        let (out_path, err_path) = self.t.output_paths();
        let stdin = match self.stdin {
            Some(data) => {
                let p = out_path.with_extension("in");
                std::fs::write(&p, data).or_fail(format!("write {}", p.display()));
                File::open(&p).or_fail(format!("open {}", p.display()))
            }
            None => File::open("/dev/null").or_fail("open /dev/null"),
        };
        let out = File::create(&out_path).or_fail(format!("create {}", out_path.display()));
        let err = File::create(&err_path).or_fail(format!("create {}", err_path.display()));
        cmd.stdin(Stdio::from(stdin)).stdout(Stdio::from(out)).stderr(Stdio::from(err));
        let mut child = cmd.spawn().or_fail(format!("spawn `{command}`"));
        let status = crate::container::wait_child(&mut child, &command, INVOCATION_LIMIT, "killed it");
        Outcome::from_files(command, status, out_path, err_path)
    }
}

/// The kernel's last lines about a process killed by a fault ("strata[123]: segfault at 0 ip ...
/// in strata[...]"), to map to the code with addr2line.
fn kernel_fault_lines() -> Vec<String> {
    let out = std::process::Command::new("dmesg").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let text = out.unwrap_or_default();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.contains("segfault") || l.contains("general protection") || l.contains("trap "))
        .map(str::to_owned)
        .collect();
    lines[lines.len().saturating_sub(3)..].to_vec()
}
