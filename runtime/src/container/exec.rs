//! `exec`: start another process in a running container.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};

use super::foreground::Forwarder;
use super::id::ContainerId;
use super::state::{CONFIG_COPY, ContainerDir, process_alive};
use super::status::{Op, Refused};
use super::terminal::ConsoleEndpoint;
use crate::cgroup::Manager;
use crate::error::{Error, ErrorKind};
use crate::plan::load::{load_config, load_process};
use crate::plan::process::ProcessPlan;
use crate::security::seccomp;
use crate::spawn::{ChildProcess, JoinRequest, sealed_exe, spawn_join};

/// Where the process comes from: a process.json, or the container's own process with changes.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub process_file: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--apparmor`, `--process-label`: override the container process's labels.
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

pub fn exec(root: &Path, id: &ContainerId, o: &ExecOptions) -> Result<i32, Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    super::check(&dir, &state, if o.ignore_paused { Op::ExecIgnoringPause } else { Op::Exec })?;
    let spec = load_config(&dir.file(CONFIG_COPY)).map_err(|e| Error::new(ErrorKind::Other, e))?.spec;
    let process = build_process(&spec, o)?;
    let mut plan = ProcessPlan::new(&process).map_err(|e| Error::new(ErrorKind::InvalidSpec, e))?;
    let own_user_namespace = state.namespaces.iter().any(|n| n == "user");
    crate::security::adapt_to_host(&mut plan, own_user_namespace).map_err(|e| Error::new(ErrorKind::InvalidSpec, e))?;
    // Before any side effect (the console socket connection): this may start `exec` over from a
    // sealed copy of the runtime when the container's processes may ptrace.
    let container_process = spec.process().as_ref().and_then(|p| ProcessPlan::new(p).ok());
    if [Some(&plan), container_process.as_ref()]
        .into_iter()
        .flatten()
        .any(|p| sealed_exe::reachable_by_container(p.caps.as_ref(), own_user_namespace))
    {
        sealed_exe::reexec_from_sealed_copy().map_err(|e| Error::new(ErrorKind::Other, e))?;
    }
    if plan.terminal && o.console_socket.is_none() && o.detach {
        return Err(Error::msg(
            ErrorKind::InvalidSpec,
            "cannot allocate tty if runc will detach without setting console socket",
        ));
    }
    let compiled = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(seccomp::compile(profile).map_err(|e| Error::new(ErrorKind::InvalidSpec, e))?),
        None => None,
    };
    let manager = state.cgroup.as_ref().map(Manager::from_state);
    // In the foreground without a console socket the terminal is relayed.
    let mut console = ConsoleEndpoint::new(o.console_socket.as_deref(), plan.terminal, !o.detach)?;
    if console.relays() {
        // The child sizes its pty before it execs: copied once the master reaches us, the size would
        // race with the process's first look at it (`stty size` saw 0 0).
        plan.console_size = super::terminal::our_window_size();
    }
    let forwarder = if o.detach { None } else { Some(Forwarder::new()?) };
    let child = spawn_join(JoinRequest {
        process: &plan,
        container_pid: nix::unistd::Pid::from_raw(state.pid),
        namespaces: &state.namespaces,
        cgroup: manager.as_ref(),
        console_socket: console.socket.take(),
        seccomp: compiled.as_ref(),
        preserve_fds: o.preserve_fds,
    })
    .map_err(|e| e.context("exec failed"))?;
    // The namespaces were opened by pid: make sure they were the container's.
    if !process_alive(state.pid, state.pid_start) {
        child.kill();
        return Err(Refused::ExecStopped.into_error(id));
    }
    let pid = child.pid.as_raw();
    child
        .wait_ready(
            || Ok(String::new()),
            |listener| {
                let oci = state.oci(oci_spec::runtime::ContainerState::Running, pid);
                super::create::send_listener(compiled.as_ref(), &oci, listener)
            },
        )
        .map_err(|e| reaped(&child, e))?;
    // Return (and write the pid file) once the process runs the user's program, as runc does.
    child.wait_exec().map_err(|e| reaped(&child, e))?;
    if let Some(pid_file) = &o.pid_file {
        super::create::write_pid_file(pid_file, child.pid.as_raw())?;
    }
    match forwarder {
        None => Ok(0),
        Some(f) => f.wait(child.pid, child.pidfd.as_fd(), console.master_to_relay()?),
    }
}

/// The child failed before running the user's program: end and reap it before reporting. A zombie
/// left to the caller (a subreaper such as conmon or the shim, which waits only for the processes
/// it knows) would keep a pid namespace's dying init from ever finishing its exit.
fn reaped(child: &ChildProcess, e: Error) -> Error {
    child.kill();
    e.context("exec failed")
}

fn build_process(spec: &Spec, o: &ExecOptions) -> Result<Process, Error> {
    if let Some(path) = &o.process_file {
        return load_process(path).map_err(|e| Error::new(ErrorKind::InvalidSpec, e));
    }
    if o.args.is_empty() {
        return Err(Error::msg(ErrorKind::InvalidSpec, "exec needs a command (or --process)"));
    }
    let mut p =
        spec.process().clone().ok_or_else(|| Error::msg(ErrorKind::InvalidSpec, "the container has no process"))?;
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    p.set_console_size(None);
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if !o.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        env.extend(o.env.iter().cloned());
        p.set_env(Some(env));
    }
    if let Some((uid, gid)) = o.user {
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            p.user_mut().set_gid(g);
        }
    }
    if !o.additional_gids.is_empty() {
        p.user_mut().set_additional_gids(Some(o.additional_gids.clone()));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &o.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &o.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let extra: Vec<oci_spec::runtime::Capability> = o
            .caps
            .iter()
            .map(|c| {
                serde_json::from_value(serde_json::Value::String(c.clone()))
                    .map_err(|_| Error::msg(ErrorKind::InvalidSpec, format!("unknown capability {c:?}")))
            })
            .collect::<Result<_, _>>()?;
        let add = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.extend(extra.iter().copied());
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
        caps.set_ambient(add(caps.ambient()));
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
