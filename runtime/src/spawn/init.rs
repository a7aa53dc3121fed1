//! The container's init, between `clone3` and `execve`: joins/creates the remaining namespaces,
//! builds the rootfs, applies the process settings, reports ready and waits for `start`.
//!
//! It runs in a copy of the single-threaded parent, so it holds the Plan already: no re-exec, no
//! re-serialisation. Any failure is sent to the parent (see [`child::report_and_exit`]) and the
//! child exits.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::child::{self, ChildError, close_all_but, finish_process, report_to_start, setup_terminal, wait_for};
use super::process::ProcessError;
use super::protocol::{Channel, ToChild, ToParent};
use crate::cgroup::{ContainerView, Manager};
use crate::hooks::run_container_hooks;
use crate::plan::namespaces::proc_name;
use crate::plan::{Ns, Plan};
use crate::rootfs::{self, RootfsError};
use crate::security::seccomp::CompiledSeccomp;
use crate::sys::procfs;

/// Everything the child needs, prepared by the parent before the clone.
#[derive(Debug)]
pub struct InitArgs<'a> {
    pub plan: &'a Plan,
    pub channel: Channel,
    /// `O_PATH` descriptor of the exec fifo (`create`); the child opens it for writing after it
    /// is ready, which blocks until `start` opens it for reading.
    pub exec_fifo: Option<OwnedFd>,
    /// Connected `--console-socket`, when `process.terminal`.
    pub console_socket: Option<OwnedFd>,
    pub cgroups: &'a ContainerView,
    pub seccomp: Option<&'a CompiledSeccomp>,
    pub no_pivot: bool,
    /// Descriptors opened by the parent for namespaces to join, in order.
    pub join_fds: Vec<(CloneFlags, OwnedFd)>,
    /// `--preserve-fds`: descriptors 3..3+N pass to the container.
    pub preserve_fds: u32,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// Bind sources the parent opened before the user namespace existed.
    pub bind_trees: rootfs::BindTrees,
    /// How the child gets into its cgroup.
    pub placement: CgroupPlacement<'a>,
    /// The cgroup directories are made only once the parent placed the child (the systemd
    /// driver: systemd makes the unit's with the child in it): a v1 cgroup mount must wait too.
    pub cgroup_made_late: bool,
}

/// Who puts the container's init into its cgroup.
#[derive(Debug, Clone, Copy)]
pub enum CgroupPlacement<'a> {
    /// The child moves itself (and whether clone3 already placed it in the v2 one).
    Itself(&'a Manager, bool),
    /// The parent places it and says "Placed".
    ByParent,
    /// Rootless without a cgroup it may write: the container stays in the caller's cgroup.
    NoCgroup,
}

/// The child's entry point after `clone3`. Never returns.
pub fn run(mut args: InitArgs<'_>) -> ! {
    let Err(e) = init(&mut args);
    child::report_and_exit(&args.channel, "container init failed", 1, e)
}

fn init(args: &mut InitArgs<'_>) -> Result<Infallible, ChildError> {
    let plan = args.plan;
    crate::phases::mark("init: cloned");
    close_inherited(args);
    // `run` blocks signals in the parent to forward them; the container starts with none
    // blocked. Unblocking an empty set cannot fail in a way that matters.
    let _unblocked = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);

    if wait_for(&args.channel)? != ToChild::Go {
        return Err(ChildError::ParentGone);
    }
    crate::phases::mark("init: go received");
    // A rootless parent cloned this child dumpable, so that it (or newuidmap) could write the id
    // maps; from here on nothing may open this process's memory or executable (see clone_child).
    nix::sys::prctl::set_dumpable(false).map_err(ChildError::NonDumpable)?;
    let mut placement = enter_namespaces(args)?;
    // Like runc and crun: a network namespace the runtime creates gets its loopback up (one
    // joined by path is the caller's to configure).
    if plan.namespaces.net == Ns::New {
        crate::sys::net::set_link_up(c"lo").map_err(ChildError::Loopback)?;
    }
    // Wait for the cgroup placement before a cgroup2 mount (it shows the cgroup namespace, whose
    // root must be the container's cgroup) or a v1 one of directories not made yet; otherwise
    // build the rootfs while the parent waits.
    let cgroup_mount = plan.mounts.iter().any(|m| matches!(m.kind, crate::plan::MountKind::Cgroup));
    if cgroup_mount && (matches!(args.cgroups, ContainerView::Unified) || args.cgroup_made_late) {
        placement.wait(&args.channel)?;
    }
    crate::phases::mark("init: namespaces, lo up");
    let procfs = procfs::private().map_err(ChildError::Procfs)?;
    nix::unistd::setsid().map_err(ChildError::Setsid)?;
    crate::phases::mark("init: private procfs, setsid");
    let prepared = build_rootfs(plan, args.cgroups, std::mem::take(&mut args.bind_trees))?;
    crate::phases::mark("init: rootfs, mounts, devices");
    placement.wait(&args.channel)?;
    crate::phases::mark("init: placed in cgroups");
    let hook_state = run_create_hooks(plan, &args.channel)?;
    crate::phases::mark("init: create hooks");
    let terminal = plan.process.as_ref().is_some_and(|p| p.terminal);
    let host_pty =
        if terminal && plan.namespaces.mount == Ns::Host { Some(rootfs::open_host_pty_master()?) } else { None };
    let deferred_dev = enter_root(plan, prepared, args.no_pivot)?;
    crate::phases::mark("init: pivot_root");
    configure_container(args, procfs.as_fd(), deferred_dev, host_pty)?;
    crate::phases::mark("init: hostname, sysctl, masked and readonly paths");

    let Some(process) = &plan.process else {
        // No process: the container can be created and inspected, and `start` refuses it.
        args.channel.send(&ToParent::Ready).map_err(ChildError::Sync)?;
        loop {
            nix::unistd::pause();
        }
    };
    let exec_fifo = args.exec_fifo.take();
    finish_process(process, &args.channel, args.seccomp, move || {
        let started = match exec_fifo {
            Some(fifo) => Some(wait_for_start(procfs.as_fd(), fifo)?),
            None => None,
        };
        drop(procfs);
        if let Some(start_hooks) = plan.hooks.start_container().as_deref() {
            let state = with_own_pid(&hook_state);
            // The environment runc's init has by now: process.env, plus HOME.
            let env = super::process::env_with_home(process);
            if let Err(e) = run_container_hooks("startContainer", start_hooks, state.as_bytes(), &env) {
                let e = ChildError::Hook(e);
                report_to_start(started.as_ref(), &e);
                return Err(e);
            }
        }
        Ok(started)
    })
}

/// Whether the child is in its cgroup yet, and the cgroup namespace to unshare once it is.
struct Placement {
    placed: bool,
    new_cgroupns: bool,
}

impl Placement {
    /// Wait for the parent's "Placed" (once), then unshare the cgroup namespace.
    fn wait(&mut self, channel: &Channel) -> Result<(), ChildError> {
        if self.placed {
            return Ok(());
        }
        if wait_for(channel)? != ToChild::Placed {
            return Err(ChildError::ParentGone);
        }
        if self.new_cgroupns {
            unshare(CloneFlags::CLONE_NEWCGROUP).map_err(ChildError::Unshare)?;
        }
        self.placed = true;
        Ok(())
    }
}

/// Still with the caller's credentials and namespaces: move into the cgroup, then join and create
/// the namespaces the clone did not (the cgroup namespace once the child is in its cgroup).
fn enter_namespaces(args: &mut InitArgs<'_>) -> Result<Placement, ChildError> {
    let plan = args.plan;
    if let CgroupPlacement::Itself(manager, cloned_into) = args.placement {
        manager.enter_self(cloned_into).map_err(ChildError::Cgroup)?;
    }
    if plan.namespaces.new_user() {
        become_root()?;
    }
    for (flag, fd) in &args.join_fds {
        setns(fd.as_fd(), *flag).map_err(|e| ChildError::Setns(proc_name(*flag), e))?;
        if *flag == CloneFlags::CLONE_NEWUSER {
            become_root()?;
        }
    }
    args.join_fds.clear();
    let new_cgroupns = plan.namespaces.child_unshare.contains(CloneFlags::CLONE_NEWCGROUP);
    let early = plan.namespaces.child_unshare - CloneFlags::CLONE_NEWCGROUP;
    if !early.is_empty() {
        unshare(early).map_err(ChildError::Unshare)?;
    }
    let placed = !matches!(args.placement, CgroupPlacement::ByParent);
    if placed && new_cgroupns {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(ChildError::Unshare)?;
    }
    Ok(Placement { placed, new_cgroupns })
}

/// The root filesystem, before pivot_root: the rootfs bound onto itself, every mount, /dev.
/// Without a mount namespace of its own the container runs in the caller's filesystem, as with
/// runc: nothing is mounted.
fn build_rootfs(
    plan: &Plan,
    cgroups: &ContainerView,
    bind_trees: rootfs::BindTrees,
) -> Result<Option<(rootfs::Rootfs, Option<OwnedFd>)>, ChildError> {
    if plan.namespaces.mount == Ns::Host {
        return Ok(None);
    }
    rootfs::set_root_propagation(plan.rootfs_propagation, &plan.rootfs)?;
    let root = rootfs::bind_rootfs(&plan.rootfs)?;
    // In a user namespace, the container's own or the one the runtime runs in (rootless podman),
    // the kernel refuses mknod and some filesystems: devices are bound, those filesystems too.
    let in_user_namespace = plan.namespaces.user != Ns::Host || crate::sys::userns::running_in_user_namespace();
    let deferred_dev = rootfs::mount_all(&root, &plan.mounts, cgroups, bind_trees, in_user_namespace)?;
    rootfs::create_devices(root.fd.as_fd(), plan, in_user_namespace)?;
    Ok(Some((root, deferred_dev)))
}

/// Mounts are in place: the parent runs prestart and createRuntime hooks, this process the
/// createContainer hooks. Returns the state JSON for the startContainer hooks.
fn run_create_hooks(plan: &Plan, channel: &Channel) -> Result<String, ChildError> {
    let hooks = &plan.hooks;
    let needs_hooks = [hooks.prestart(), hooks.create_runtime(), hooks.create_container(), hooks.start_container()]
        .iter()
        .any(|h| h.as_ref().is_some_and(|v| !v.is_empty()));
    if !needs_hooks {
        return Ok(String::new());
    }
    channel.send(&ToParent::RunHooks).map_err(ChildError::Sync)?;
    let hook_state = match wait_for(channel)? {
        ToChild::HooksDone { state } => state,
        ToChild::Go | ToChild::Placed | ToChild::ListenerSent => return Err(ChildError::ParentGone),
    };
    let state = with_own_pid(&hook_state);
    let process_env = plan.process.as_ref().map_or(&[][..], |p| &p.env[..]);
    run_container_hooks(
        "createContainer",
        hooks.create_container().as_deref().unwrap_or_default(),
        state.as_bytes(),
        process_env,
    )?;
    Ok(hook_state)
}

/// pivot_root (or chroot without a mount namespace); returns /dev when it is to be made read-only.
fn enter_root(
    plan: &Plan,
    prepared: Option<(rootfs::Rootfs, Option<OwnedFd>)>,
    no_pivot: bool,
) -> Result<Option<OwnedFd>, ChildError> {
    match prepared {
        Some((root, deferred_dev)) => {
            rootfs::enter_root(&root, no_pivot)?;
            rootfs::finish_root_propagation(plan.rootfs_propagation)?;
            Ok(deferred_dev)
        }
        None => {
            // runc mounts into the caller's namespace here and leaves the mounts behind; we only
            // change root, and say what was not done.
            if !plan.mounts.is_empty() {
                crate::logging::debug("no mount namespace: mounts are not set up, only the root is changed");
            }
            rootfs::chroot_into(&plan.rootfs)?;
            Ok(None)
        }
    }
}

/// Inside the new root: terminal, hostname, sysctl, read-only and masked paths, personality,
/// session keyring (oom_score_adj is the parent's: see `spawn_init`). `host_pty`: the terminal without a mount namespace, opened
/// before the root changed (nothing is mounted then: no /dev/console either).
fn configure_container(
    args: &mut InitArgs<'_>,
    procfs: BorrowedFd<'_>,
    deferred_dev: Option<OwnedFd>,
    host_pty: Option<(OwnedFd, OwnedFd)>,
) -> Result<(), ChildError> {
    let plan = args.plan;
    let new_root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|source| RootfsError::OpenRootfs { path: "/".into(), source })?;
    if let Some(p) = plan.process.as_ref().filter(|p| p.terminal) {
        let (pty, console) = match host_pty {
            Some(pty) => (pty, None),
            None => (rootfs::open_pty_master(new_root.as_fd())?, Some(new_root.as_fd())),
        };
        setup_terminal(pty, p.console_size, args.console_socket.take(), console)?;
    }
    if let Some(p) = &plan.process {
        create_cwd(new_root.as_fd(), &p.cwd)?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(ChildError::Hostname)?;
    }
    if let Some(d) = &plan.domainname {
        crate::sys::process::setdomainname(d.as_bytes()).map_err(ChildError::Domainname)?;
    }
    for (key, value) in &plan.sysctl {
        procfs::write(procfs, &format!("sys/{key}"), value.as_bytes())
            .map_err(|e| ChildError::Sysctl(key.replace('/', "."), e))?;
    }
    if plan.namespaces.mount != Ns::Host {
        rootfs::readonly_paths(new_root.as_fd(), &plan.readonly_paths)?;
        rootfs::mask_paths(new_root.as_fd(), &plan.masked_paths)?;
        if let Some(dev) = deferred_dev {
            rootfs::remount_readonly(dev.as_fd(), "/dev")?;
        }
        if plan.root_readonly {
            rootfs::remount_readonly(new_root.as_fd(), "/")?;
        }
    }
    drop(new_root);

    if let Some(p) = plan.personality {
        crate::sys::process::personality(p).map_err(ProcessError::Personality)?;
    }
    if !args.no_new_keyring {
        match crate::sys::process::join_new_session_keyring() {
            // Kernels without keys (or seccomp profiles that hide keyctl) are fine, as in runc.
            Ok(()) | Err(Errno::ENOSYS | Errno::EPERM | Errno::EACCES) => {}
            Err(e) => return Err(ChildError::Keyring(e)),
        }
    }
    Ok(())
}

/// A missing process.cwd is created (0755, by the runtime: owned by the container's root), as
/// runc and crun do, inside the new root and before it may become read-only.
fn create_cwd(root: BorrowedFd<'_>, cwd: &std::path::Path) -> Result<(), ChildError> {
    let rel = cwd.strip_prefix("/").unwrap_or(cwd);
    rootfs::resolve::ensure_in_root(root, rel, rootfs::resolve::Leaf::Dir, false)
        .map(drop)
        .map_err(|source| ChildError::Process(ProcessError::CreateCwd { cwd: cwd.to_owned(), source }))
}

/// The hook state with `pid` as this process sees itself: hooks run in the container's
/// namespaces get the pid as seen by the container (config.md, "State").
fn with_own_pid(state: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(state).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("pid".into(), nix::unistd::getpid().as_raw().into());
    }
    value.to_string()
}

/// Close every descriptor the child copied from the parent except its own and the preserved ones.
fn close_inherited(args: &InitArgs<'_>) {
    let own = [
        Some(args.channel.raw()),
        args.exec_fifo.as_ref().map(|f| f.as_raw_fd()),
        args.console_socket.as_ref().map(|f| f.as_raw_fd()),
        crate::phases::raw_fd(),
    ]
    .into_iter()
    .flatten()
    .chain(args.join_fds.iter().map(|(_, fd)| fd.as_raw_fd()))
    .chain(args.bind_trees.raw_fds());
    close_all_but(own, args.preserve_fds);
}

/// After the parent wrote our id maps: become uid/gid 0 of the new user namespace.
fn become_root() -> Result<(), ChildError> {
    let root_u = Uid::from_raw(0);
    let root_g = Gid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g).map_err(ChildError::BecomeRoot)?;
    nix::unistd::setresuid(root_u, root_u, root_u).map_err(ChildError::BecomeRoot)?;
    Ok(())
}

/// Block until `start` opens the fifo for reading, then tell it we are going. Returns the
/// write end, to be closed by execve.
fn wait_for_start(procfs: BorrowedFd<'_>, fifo: OwnedFd) -> Result<OwnedFd, ChildError> {
    // Plain openat: a seccomp filter may already be installed, and every profile allows it.
    let path = format!("self/fd/{}", fifo.as_raw_fd());
    let writer = loop {
        match nix::fcntl::openat(procfs, path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => break fd,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(ChildError::ExecFifo(e)),
        }
    };
    drop(fifo);
    nix::unistd::write(&writer, b"0").map_err(ChildError::ExecFifo)?;
    Ok(writer)
}
