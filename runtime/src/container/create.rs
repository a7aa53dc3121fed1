//! `create`: validate everything, then state dir, cgroup, exec fifo, clone, wait until the
//! container's init is ready, write the pid file and the state. A guard undoes it all on failure.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::id::ContainerId;
use super::state::{CONFIG_COPY, ContainerDir, EXEC_FIFO, Phase, State, StoredHooks, io_error, read_stat};
use super::terminal::ConsoleEndpoint;
use crate::cgroup::{CgroupRequest, Manager};
use crate::error::{Error, ErrorKind, kind_of_errno};
use crate::hooks::run_hooks;
use crate::plan::{Ns, Plan, load_config};
use crate::security::seccomp;
use crate::spawn::{ChildProcess, InitRequest, sealed_exe, spawn_init};
use crate::timefmt::rfc3339_nanos;

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub root: PathBuf,
    pub id: ContainerId,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `run` in the foreground: no exec fifo, the caller starts the process itself.
    pub foreground: bool,
    /// `--systemd-cgroup`: the cgroup is a transient systemd unit.
    pub systemd_cgroup: bool,
    /// Rootless mode (`--rootless`, see cli::rootless): a cgroup only where the caller may write one.
    pub rootless: bool,
}

/// A created container: its init waits for `start` (or, for `run`, for the caller).
#[derive(Debug)]
pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    pub init: ChildProcess,
    /// The pty master of a foreground `run` with a terminal and no console socket, to relay.
    pub console: Option<OwnedFd>,
}

pub fn create(opts: &CreateOptions) -> Result<Created, Error> {
    let bundle = std::path::absolute(&opts.bundle)
        .map_err(|e| io_error(ErrorKind::InvalidSpec, format!("bundle {}", opts.bundle.display()), e))?;
    let loaded = load_config(&bundle.join("config.json")).map_err(|e| {
        let kind = match &e {
            crate::plan::LoadError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            _ => ErrorKind::InvalidSpec,
        };
        Error::new(kind, e)
    })?;
    crate::phases::mark("config.json read and parsed");
    let mut plan = Plan::new(&loaded.spec, &bundle).map_err(|e| Error::new(ErrorKind::InvalidSpec, e))?;
    let in_user_namespace = plan.namespaces.user != Ns::Host;
    if let Some(p) = plan.process.as_mut() {
        crate::security::adapt_to_host(p, in_user_namespace).map_err(|e| Error::new(ErrorKind::InvalidSpec, e))?;
    }
    // Before anything is said or done: this may start the runtime over from a sealed copy.
    if let Some(p) = &plan.process {
        if sealed_exe::reachable_by_container(p.caps.as_ref(), plan.namespaces.user != Ns::Host) {
            sealed_exe::reexec_from_sealed_copy().map_err(|e| Error::new(ErrorKind::Other, e))?;
        }
    }
    for w in &loaded.warnings {
        crate::logging::warn(w);
    }
    check_rootfs(&plan.rootfs)?;
    let terminal = plan.process.as_ref().is_some_and(|p| p.terminal);
    if plan.process.is_none() && opts.foreground {
        return Err(Error::msg(ErrorKind::InvalidSpec, "process is required to run a container"));
    }
    if terminal && opts.console_socket.is_none() && !opts.foreground {
        return Err(Error::msg(
            ErrorKind::InvalidSpec,
            "cannot allocate tty if runc will detach without setting console socket",
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::msg(
            ErrorKind::InvalidSpec,
            "cannot use console socket if runc will not detach or allocate tty",
        ));
    }
    let seccomp = match &plan.seccomp {
        Some(profile) => {
            let compiled = seccomp::compile(profile).map_err(|e| Error::new(ErrorKind::InvalidSpec, e))?;
            for w in compiled.warnings() {
                crate::logging::warn(w);
            }
            Some(compiled)
        }
        None => None,
    };
    crate::phases::mark("plan validated, seccomp compiled");
    let cgroup = Manager::new(&CgroupRequest {
        cgroups_path: plan.cgroups_path.as_deref(),
        container_id: opts.id.as_str(),
        systemd: opts.systemd_cgroup,
        rootless: opts.rootless,
    })
    .map_err(Error::from)?;
    let mut cgroup = match (opts.rootless, cgroup.delegated()) {
        (false, _) => Some(cgroup),
        (true, true) => Some(cgroup.without_device_rules()),
        (true, false) => {
            warn_without_cgroup(plan.resources.as_ref());
            None
        }
    };

    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    let mut undo = Undo { dir: dir.path.clone(), cgroup: None, child: None, poststop: None, armed: true };
    let mut state = State {
        id: opts.id.to_string(),
        phase: Phase::Creating,
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: plan.rootfs.clone(),
        created: rfc3339_nanos(SystemTime::now()),
        annotations: plan.annotations.clone(),
        owner: owner_name(),
        oci_version: plan.oci_version.clone(),
        cgroup: cgroup.as_ref().map(Manager::state),
        hooks: StoredHooks {
            poststart: plan.hooks.poststart().clone().unwrap_or_default(),
            poststop: plan.hooks.poststop().clone().unwrap_or_default(),
        },
        namespaces: namespace_names(&plan),
        has_process: plan.process.is_some(),
    };
    // Written before any other side effect so that `delete --force` can always clean up (the
    // cgroup is known from here; once the child exists it is in that cgroup).
    dir.save_creating(&state)?;
    // `exec` takes the container's process defaults and seccomp profile from this copy.
    std::fs::write(dir.file(CONFIG_COPY), &loaded.bytes)
        .map_err(|e| io_error(ErrorKind::Other, format!("write {}", dir.file(CONFIG_COPY).display()), e))?;
    crate::phases::mark("state dir, creating.json, config copy");
    let cgroup_view = match cgroup.as_mut() {
        Some(cgroup) => {
            undo.cgroup = Some(cgroup.state());
            cgroup.create(plan.resources.as_ref()).map_err(Error::from)?;
            // An init cloned into a frozen cgroup would never report ready.
            cgroup.check_not_frozen().map_err(Error::from)?;
            cgroup.container_view()
        }
        None => Manager::caller_view().map_err(Error::from)?,
    };
    crate::phases::mark("cgroups created, resources written");
    let exec_fifo = if opts.foreground { None } else { Some(make_exec_fifo(&dir, &plan)?) };
    // A foreground `run` without a console socket relays the terminal itself.
    let mut console = ConsoleEndpoint::new(opts.console_socket.as_deref(), terminal, opts.foreground)?;
    if console.relays()
        && let Some(p) = plan.process.as_mut()
    {
        // Sized by the child before it execs: the relay's copy comes after the process already runs.
        p.console_size = super::terminal::our_window_size().or(p.console_size);
    }

    let init = spawn_init(InitRequest {
        plan: &plan,
        cgroup: cgroup.as_ref(),
        cgroup_view: &cgroup_view,
        exec_fifo,
        console_socket: console.socket.take(),
        seccomp: seccomp.as_ref(),
        no_pivot: opts.no_pivot,
        preserve_fds: opts.preserve_fds,
        no_new_keyring: opts.no_new_keyring,
    })
    .map_err(|e| e.context("unable to start container process"))?;
    undo.child = Some(init.pid);
    // From here a failure goes on to the delete step of the lifecycle: poststop hooks run.
    if let Some(hooks) = plan.hooks.poststop().as_ref().filter(|h| !h.is_empty()) {
        undo.poststop = Some((hooks.clone(), state.hook_json("stopped", 0)));
    }
    state.pid = init.pid.as_raw();
    state.pid_start = read_stat(state.pid).map_or(0, |(_, start)| start);

    init.wait_ready(
        || {
            // The container is fully set up when these run; runtime-tools and crun say "created".
            let hook_state = state.hook_json("created", state.pid);
            run_hooks("prestart", plan.hooks.prestart().as_deref().unwrap_or_default(), hook_state.as_bytes())
                .map_err(|e| Error::new(ErrorKind::Other, e))?;
            run_hooks(
                "createRuntime",
                plan.hooks.create_runtime().as_deref().unwrap_or_default(),
                hook_state.as_bytes(),
            )
            .map_err(|e| Error::new(ErrorKind::Other, e))?;
            Ok(hook_state)
        },
        |listener| {
            send_listener(
                seccomp.as_ref(),
                &state.oci(oci_spec::runtime::ContainerState::Creating, state.pid),
                listener,
            )
        },
    )
    .map_err(|e| e.context("unable to start container process"))?;
    crate::phases::mark("init ready");
    let console = console.master_to_relay()?;

    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, state.pid)?;
    }
    state.phase = Phase::Created;
    dir.save(&state)?;
    crate::phases::mark("pid file, state.json");
    undo.armed = false;
    Ok(Created { dir, state, init, console })
}

/// Rootless without a cgroup the caller may write: what the config asks of cgroups cannot be
/// done, and runc and crun go on with a warning.
fn warn_without_cgroup(resources: Option<&oci_spec::runtime::LinuxResources>) {
    let mut asked = serde_json::to_value(resources).unwrap_or_default();
    if let Some(fields) = asked.as_object_mut() {
        // Device rules are enforced by the user namespace anyway (no mknod, only bound nodes).
        fields.remove("devices");
        fields.retain(|_, v| !v.is_null());
    }
    let limits = asked.as_object().is_some_and(|f| !f.is_empty());
    crate::logging::debug(
        "rootless: no cgroup the caller may write (cgroup v1, or v2 without a delegated subtree): the container stays in the caller's cgroup; pause, resume, update, events and ps need one",
    );
    if limits {
        crate::logging::warn(
            "rootless: linux.resources ignored: no cgroup the caller may write (cgroup v1, or v2 without a delegated subtree)",
        );
    }
}

fn check_rootfs(rootfs: &Path) -> Result<(), Error> {
    match std::fs::metadata(rootfs) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::msg(ErrorKind::InvalidSpec, format!("root.path {} is not a directory", rootfs.display()))),
        Err(e) => Err(io_error(
            kind_of_errno(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))),
            format!("root.path {}", rootfs.display()),
            e,
        )),
    }
}

fn namespace_names(plan: &Plan) -> Vec<String> {
    let ns = &plan.namespaces;
    [
        ("user", &ns.user),
        ("ipc", &ns.ipc),
        ("uts", &ns.uts),
        ("net", &ns.net),
        ("pid", &ns.pid),
        ("cgroup", &ns.cgroup),
        ("time", &ns.time),
        ("mnt", &ns.mount),
    ]
    .into_iter()
    .filter(|(_, n)| **n != Ns::Host)
    .map(|(name, _)| name.to_owned())
    .collect()
}

/// The fifo `start` opens; owned by the container's root so that its init, whatever user
/// namespace it is in, may open it for writing.
fn make_exec_fifo(dir: &ContainerDir, plan: &Plan) -> Result<OwnedFd, Error> {
    let path = dir.file(EXEC_FIFO);
    let err =
        |e: nix::errno::Errno| io_error(ErrorKind::Other, format!("create exec fifo {}", path.display()), e.into());
    nix::unistd::mkfifoat(dir.fd(), EXEC_FIFO, Mode::from_bits_truncate(0o622)).map_err(err)?;
    let fd = nix::fcntl::openat(dir.fd(), EXEC_FIFO, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(err)?;
    // Writable by any user the process may run as (mkfifo's mode went through the umask).
    nix::sys::stat::fchmodat(
        dir.fd(),
        EXEC_FIFO,
        Mode::from_bits_truncate(0o622),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(err)?;
    if let (Some(uid), Some(gid)) = (host_id_of_root(&plan.uid_map), host_id_of_root(&plan.gid_map)) {
        nix::unistd::fchownat(
            dir.fd(),
            EXEC_FIFO,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(err)?;
    }
    Ok(fd)
}

/// The host id that id 0 of the container maps to ("0 100000 65536" → 100000).
fn host_id_of_root(map: &str) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut f = line.split_whitespace().map(str::parse::<u64>);
        let (inside, outside, size) = (f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?);
        (inside == 0 && size > 0).then(|| u32::try_from(outside).ok()).flatten()
    })
}

/// The host pid, digits only, no newline (containerd parses it with Atoi), written atomically.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let tmp = path.with_file_name(format!(
        ".{}.strata-tmp",
        path.file_name().map_or_else(|| "pid".into(), |n| n.to_string_lossy())
    ));
    let write = || -> std::io::Result<()> {
        std::fs::write(&tmp, pid.to_string())?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| io_error(ErrorKind::Other, format!("write pid file {}", path.display()), e))
}

/// Undoes a create that did not complete: kills the child, removes the cgroup and the state
/// directory. Holds plain data, so it works whatever step failed.
struct Undo {
    dir: PathBuf,
    cgroup: Option<crate::cgroup::CgroupState>,
    child: Option<nix::unistd::Pid>,
    /// Poststop hooks and their state, once the container process existed.
    poststop: Option<(Vec<oci_spec::runtime::Hook>, String)>,
    armed: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.child {
            // Our own unreaped child: the pid cannot have been recycled.
            if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
                let _reaped = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::__WALL));
            }
        }
        if let Some(cg) = &self.cgroup {
            super::delete::remove_cgroup(cg);
        }
        if let Some((hooks, state)) = &self.poststop {
            crate::hooks::run_hooks_warn("poststop", hooks, state.as_bytes());
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                crate::logging::warn(&format!("cleanup after failed create: remove {}: {e}", self.dir.display()));
            }
        }
    }
}

/// Who created the container, as `list` shows it.
fn owner_name() -> String {
    let uid = nix::unistd::geteuid();
    if uid.is_root() { "root".to_owned() } else { uid.to_string() }
}

/// Pass a seccomp notify listener to the agent at the profile's `listenerPath`.
pub fn send_listener(
    filter: Option<&seccomp::CompiledSeccomp>,
    state: &oci_spec::runtime::State,
    listener: OwnedFd,
) -> Result<(), Error> {
    use std::os::fd::AsFd;
    let Some(filter) = filter else { return Ok(()) };
    let Some(path) = filter.listener_path() else { return Ok(()) };
    let pid = state.pid().unwrap_or(0);
    let record = seccomp::listener_state(state, pid, filter.listener_metadata());
    seccomp::send_to_listener(Path::new(path), &record, listener.as_fd()).map_err(Error::from)
}
