//! Running OCI hooks: the state JSON on stdin, `timeout` honoured, output captured for the error.
//!
//! A hook without `env` gets the environment runc gives it: hooks of the runtime namespace
//! (prestart, createRuntime, poststart, poststop) inherit the runtime's own (Go's `exec.Cmd`
//! with a nil `Env`); createContainer and startContainer run from the container's init, whose
//! environment runc replaced with `process.env`. A hook with `env` gets exactly that.

use std::ffi::{CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use oci_spec::runtime::Hook;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook #{index} ({path}): start")]
    Start {
        kind: &'static str,
        index: usize,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} hook #{index} ({path}): wait")]
    Wait {
        kind: &'static str,
        index: usize,
        path: String,
        #[source]
        source: Errno,
    },
    #[error("{kind} hook #{index} ({path}) timed out after {secs}s")]
    Timeout { kind: &'static str, index: usize, path: String, secs: i64 },
    #[error("{kind} hook #{index} ({path}) failed: {status}{output}")]
    Failed { kind: &'static str, index: usize, path: String, status: String, output: String },
}

/// The state passed to hooks on stdin (runtime-spec "State").
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: &'a str,
    pub pid: i32,
    pub bundle: &'a std::path::Path,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: &'a std::collections::HashMap<String, String>,
}

impl HookState<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The environment of a hook whose config has no `env`.
#[derive(Debug, Clone, Copy)]
enum DefaultEnv<'a> {
    /// The runtime's own: a hook run in the runtime namespace.
    Runtime,
    /// The container process's: a hook run from the container's init.
    Process(&'a [CString]),
}

/// Run `hooks` of the runtime namespace one after another; the first failure stops the list.
pub fn run_hooks(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    run_each(kind, hooks, state, DefaultEnv::Runtime)
}

/// Run `hooks` from the container's init (createContainer, startContainer): one without `env`
/// gets `process_env`, the environment the container's process will have.
pub fn run_container_hooks(
    kind: &'static str,
    hooks: &[Hook],
    state: &[u8],
    process_env: &[CString],
) -> Result<(), HookError> {
    run_each(kind, hooks, state, DefaultEnv::Process(process_env))
}

fn run_each(kind: &'static str, hooks: &[Hook], state: &[u8], env: DefaultEnv<'_>) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_hook(kind, index, hook, state, env)?;
    }
    Ok(())
}

/// Run every hook even when some fail (poststart, poststop): each failure is logged as a
/// warning, as the runtime-spec asks.
pub fn run_hooks_warn(kind: &'static str, hooks: &[Hook], state: &[u8]) {
    for (index, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_hook(kind, index, hook, state, DefaultEnv::Runtime) {
            crate::logging::warn(&e.to_string());
        }
    }
}

fn run_hook(kind: &'static str, index: usize, hook: &Hook, state: &[u8], env: DefaultEnv<'_>) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let mut cmd = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or_default();
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    match (hook.env(), env) {
        (Some(list), _) => {
            cmd.env_clear();
            for e in list {
                if let Some((k, v)) = e.split_once('=') {
                    cmd.env(k, v);
                }
            }
        }
        (None, DefaultEnv::Process(list)) => {
            cmd.env_clear();
            for e in list {
                let bytes = e.as_bytes();
                if let Some(eq) = bytes.iter().position(|b| *b == b'=') {
                    cmd.env(OsStr::from_bytes(&bytes[..eq]), OsStr::from_bytes(&bytes[eq + 1..]));
                }
            }
        }
        // Inherited, as Command does by default.
        (None, DefaultEnv::Runtime) => {}
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A hook is a user program: it starts with every signal at SIG_DFL and none blocked, as the
    // container's processes do (runc's hooks too; crun's inherit what crun's caller ignored, which
    // we cannot know for SIGPIPE: Rust's runtime replaced it before main).
    crate::sys::signals::exec_with_clean_signals(&mut cmd);
    let mut child = cmd.spawn().map_err(|source| HookError::Start { kind, index, path: path.clone(), source })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin is fine (EPIPE ignored).
        let _hook_may_not_read = stdin.write_all(state);
    }
    let deadline = hook.timeout().map(|t| Instant::now() + Duration::from_secs(t.max(0) as u64));
    let wait_err = |source| HookError::Wait { kind, index, path: path.clone(), source };
    let pidfd = crate::sys::process::pidfd_open(nix::unistd::Pid::from_raw(child.id() as i32)).map_err(wait_err)?;
    let mut output = Vec::new();
    let mut stdout = child.stdout.take().map(|p| std::fs::File::from(std::os::fd::OwnedFd::from(p)));
    let mut stderr = child.stderr.take().map(|p| std::fs::File::from(std::os::fd::OwnedFd::from(p)));
    loop {
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let pipes: Vec<_> =
            [stdout.as_ref().map(|p| p.as_fd()), stderr.as_ref().map(|p| p.as_fd())].into_iter().flatten().collect();
        for p in &pipes {
            fds.push(PollFd::new(*p, PollFlags::POLLIN));
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _already_dead = child.kill();
                    let _reaped = child.wait();
                    return Err(HookError::Timeout { kind, index, path, secs: hook.timeout().unwrap_or(0) });
                }
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(wait_err(e)),
        }
        let exited = fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
        let readable: Vec<i32> = fds[1..]
            .iter()
            .filter(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|f| f.as_fd().as_raw_fd())
            .collect();
        drop(fds);
        for slot in [&mut stdout, &mut stderr] {
            let is_ready = slot.as_ref().is_some_and(|p| readable.contains(&p.as_raw_fd()));
            if is_ready {
                let mut buf = [0u8; 4096];
                let n = slot.as_mut().map_or(Ok(0), |p| p.read(&mut buf)).unwrap_or(0);
                if n == 0 {
                    *slot = None;
                } else if output.len() < 8192 {
                    output.extend_from_slice(&buf[..n]);
                }
            }
        }
        if exited && stdout.is_none() && stderr.is_none() {
            break;
        }
        if exited && readable.is_empty() {
            // Exited, but a grandchild holds the pipes open: do not wait for it.
            break;
        }
    }
    let status = child.wait().map_err(|source| HookError::Start { kind, index, path: path.clone(), source })?;
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output).trim().to_owned();
    let output = if text.is_empty() { String::new() } else { format!(", output: {text}") };
    Err(HookError::Failed { kind, index, path, status: status.to_string(), output })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn hook_gets_state_on_stdin_and_env() {
        let out = std::env::temp_dir().join(format!("strata-hook-{}", std::process::id()));
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {} && test \"$X\" = y"],"env":["X=y"]}}"#,
            out.display()
        ));
        run_hooks("prestart", &[h], b"{\"id\":\"c\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"c\"}");
        std::fs::remove_file(out).unwrap();
    }

    #[test]
    fn hook_without_env_gets_the_default_environment() {
        let out = std::env::temp_dir().join(format!("strata-hook-env-{}", std::process::id()));
        let dump =
            |env: &str| hook(&format!(r#"{{"path":"/bin/sh","args":["sh","-c","env > {}"]{env}}}"#, out.display()));
        let env_of = |result: Result<(), HookError>| {
            result.unwrap();
            let text = std::fs::read_to_string(&out).unwrap();
            std::fs::remove_file(&out).unwrap();
            text
        };
        // cargo sets CARGO for the test process: the runtime's environment.
        let process_env = [CString::new("FROM_PROCESS=1").unwrap(), CString::new("PATH=/bin").unwrap()];
        let got = env_of(run_container_hooks("createContainer", &[dump("")], b"{}", &process_env));
        assert!(got.contains("FROM_PROCESS=1") && !got.contains("CARGO"), "the process environment: {got}");
        let got = env_of(run_hooks("prestart", &[dump("")], b"{}"));
        assert!(got.contains("CARGO") && !got.contains("FROM_PROCESS"), "the runtime's environment: {got}");
        let got = env_of(run_container_hooks("startContainer", &[dump(r#","env":["ONLY=1"]"#)], b"{}", &process_env));
        assert!(got.contains("ONLY=1") && !got.contains("FROM_PROCESS") && !got.contains("CARGO"), "its own: {got}");
    }

    #[test]
    fn failing_hook_reports_status_and_output() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo broken >&2; exit 3"]}"#);
        let err = run_hooks("createRuntime", &[h], b"{}").unwrap_err().to_string();
        assert!(err.contains("createRuntime hook #0 (/bin/sh) failed: exit status: 3, output: broken"), "{err}");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","sleep 30"],"timeout":1}"#);
        let start = Instant::now();
        let err = run_hooks("poststop", &[h], b"{}").unwrap_err();
        assert!(matches!(err, HookError::Timeout { secs: 1, .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(20));
    }
}
