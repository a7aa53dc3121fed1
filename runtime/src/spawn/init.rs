//! The container's init, between `clone3` and `execve`: joins/creates the remaining namespaces,
//! builds the rootfs, applies the process settings, reports ready and waits for `start`.
//!
//! It runs in a copy of the single-threaded parent, so it holds the Plan already: no re-exec, no
//! re-serialisation. Any failure is sent to the parent as a [`Failure`] and the child exits.

use std::convert::Infallible;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::process::{self as proc_setup, ProcessError};
use super::protocol::{Channel, Failure, ToChild, ToParent};
use crate::cgroup::{ContainerView, Manager};
use crate::error::{Error, ErrorKind, Message, kind_of_errno};
use crate::hooks::{HookError, run_hooks};
use crate::rootfs::{self, RootfsError};
use crate::security::seccomp::{CompiledSeccomp, SeccompError};
use crate::spec::namespaces::proc_name;
use crate::spec::process::ProcessPlan;
use crate::spec::{Ns, Plan};
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
    /// The cgroup to move itself into (and whether clone3 already placed it in the v2 one);
    /// `None`: the parent places it and says "Placed".
    pub cgroup: Option<(&'a Manager, bool)>,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum InitError {
    #[error("wait for the parent")]
    Sync(#[source] super::protocol::ChannelError),
    #[error("the parent went away")]
    ParentGone,
    #[error("become root in the new user namespace")]
    BecomeRoot(#[source] Errno),
    #[error("join {0} namespace")]
    Setns(&'static str, #[source] Errno),
    #[error("create namespaces")]
    Unshare(#[source] Errno),
    #[error(transparent)]
    Cgroup(crate::cgroup::CgroupError),
    #[error("open a private procfs")]
    Procfs(#[source] Errno),
    #[error(transparent)]
    Lsm(crate::security::lsm::LsmError),
    #[error("start a new session")]
    Setsid(#[source] Errno),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("set hostname")]
    Hostname(#[source] Errno),
    #[error("set domainname")]
    Domainname(#[source] Errno),
    #[error("write sysctl {0}")]
    Sysctl(String, #[source] Errno),
    #[error("write oom_score_adj {0}")]
    OomScoreAdj(i32, #[source] Errno),
    #[error("send the pty master to the console socket")]
    ConsoleSocket(#[source] Errno),
    #[error("set up the terminal")]
    Terminal(#[source] Errno),
    #[error("wait for start on the exec fifo")]
    ExecFifo(#[source] Errno),
    #[error("join a new session keyring")]
    Keyring(#[source] Errno),
    #[error("reset signal dispositions and mask")]
    ResetSignals(#[source] Errno),
    #[error("exec {0}")]
    Exec(String, #[source] Errno),
}

impl InitError {
    pub(super) fn kind(&self) -> ErrorKind {
        match self {
            InitError::Process(p) => p.kind(),
            InitError::Rootfs(RootfsError::InsideProc { .. } | RootfsError::NotADirectory { .. }) => {
                ErrorKind::InvalidSpec
            }
            InitError::Setns(_, e)
            | InitError::Unshare(e)
            | InitError::Hostname(e)
            | InitError::Sysctl(_, e)
            | InitError::OomScoreAdj(_, e)
            | InitError::Exec(_, e) => kind_of_errno(*e),
            _ => ErrorKind::Other,
        }
    }
}

/// The child's entry point after `clone3`. Never returns.
pub fn run(mut args: InitArgs<'_>) -> ! {
    let err = match init(&mut args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let kind = err.kind();
    let failure = Failure::from_error(&Error::new(kind, err));
    if args.channel.send(&ToParent::Failed(failure.clone())).is_err() {
        // The parent is gone (after `create` returned): the container's stderr is all we have.
        eprintln!("strata: container init failed: {}", failure.message);
    }
    crate::sys::process::exit_now(1)
}

pub(super) fn wait_for(channel: &Channel) -> Result<ToChild, InitError> {
    channel.recv::<ToChild>().map_err(InitError::Sync)?.ok_or(InitError::ParentGone)
}

fn init(args: &mut InitArgs<'_>) -> Result<Infallible, InitError> {
    let plan = args.plan;
    close_inherited(args);
    // `run` blocks signals in the parent to forward them; the container starts with none
    // blocked. Unblocking an empty set cannot fail in a way that matters.
    let _unblocked = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);

    if wait_for(&args.channel)? != ToChild::Go {
        return Err(InitError::ParentGone);
    }
    // Still with the caller's credentials and namespaces: move into the cgroup.
    if let Some((manager, cloned_into)) = args.cgroup {
        manager.enter_self(cloned_into).map_err(InitError::Cgroup)?;
    }
    if plan.namespaces.new_user() {
        become_root()?;
    }
    for (flag, fd) in &args.join_fds {
        setns(fd.as_fd(), *flag).map_err(|e| InitError::Setns(proc_name(*flag), e))?;
        if *flag == CloneFlags::CLONE_NEWUSER {
            become_root()?;
        }
    }
    args.join_fds.clear();
    let new_cgroupns = plan.namespaces.child_unshare.contains(CloneFlags::CLONE_NEWCGROUP);
    let early = plan.namespaces.child_unshare - CloneFlags::CLONE_NEWCGROUP;
    if !early.is_empty() {
        unshare(early).map_err(InitError::Unshare)?;
    }
    // Wait for the cgroup placement before a cgroup2 mount (it shows the cgroup namespace, whose
    // root must be the container's cgroup); otherwise build the rootfs while the parent waits.
    let cgroup2_mount = matches!(args.cgroups, ContainerView::Unified)
        && plan.mounts.iter().any(|m| matches!(m.kind, crate::spec::MountKind::Cgroup));
    let mut placed = args.cgroup.is_some();
    if placed && new_cgroupns {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(InitError::Unshare)?;
    }
    let wait_placed = |placed: &mut bool| -> Result<(), InitError> {
        if !*placed {
            if wait_for(&args.channel)? != ToChild::Placed {
                return Err(InitError::ParentGone);
            }
            if new_cgroupns {
                unshare(CloneFlags::CLONE_NEWCGROUP).map_err(InitError::Unshare)?;
            }
            *placed = true;
        }
        Ok(())
    };
    if cgroup2_mount {
        wait_placed(&mut placed)?;
    }
    let procfs = procfs::private().map_err(InitError::Procfs)?;
    nix::unistd::setsid().map_err(InitError::Setsid)?;

    // Root filesystem, before pivot_root. Without a mount namespace of its own the container
    // runs in the caller's filesystem, as with runc: nothing is mounted.
    let prepared = if plan.namespaces.mount == Ns::Host {
        None
    } else {
        rootfs::set_root_propagation(plan.rootfs_propagation, &plan.rootfs)?;
        let root = rootfs::bind_rootfs(&plan.rootfs)?;
        let deferred_dev = rootfs::mount_all(&root, &plan.mounts, args.cgroups)?;
        rootfs::create_devices(root.fd.as_fd(), plan, plan.namespaces.user != Ns::Host)?;
        Some((root, deferred_dev))
    };
    wait_placed(&mut placed)?;

    let hooks = &plan.hooks;
    let needs_hooks = [hooks.prestart(), hooks.create_runtime(), hooks.create_container(), hooks.start_container()]
        .iter()
        .any(|h| h.as_ref().is_some_and(|v| !v.is_empty()));
    let mut hook_state = String::new();
    if needs_hooks {
        args.channel.send(&ToParent::RunHooks).map_err(InitError::Sync)?;
        match wait_for(&args.channel)? {
            ToChild::HooksDone { state } => hook_state = state,
            ToChild::Go | ToChild::Placed | ToChild::ListenerSent => return Err(InitError::ParentGone),
        }
        let state = with_own_pid(&hook_state);
        run_hooks("createContainer", hooks.create_container().as_deref().unwrap_or_default(), state.as_bytes())?;
    }

    let deferred_dev = match prepared {
        Some((root, deferred_dev)) => {
            rootfs::enter_root(&root, args.no_pivot)?;
            rootfs::finish_root_propagation(plan.rootfs_propagation)?;
            deferred_dev
        }
        None => {
            // runc mounts into the caller's namespace here and leaves the mounts behind; we only
            // change root, and say what was not done.
            if !plan.mounts.is_empty() {
                crate::logging::debug("no mount namespace: mounts are not set up, only the root is changed");
            }
            rootfs::chroot_into(&plan.rootfs)?;
            None
        }
    };
    let new_root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|source| RootfsError::OpenRootfs { path: "/".into(), source })?;

    if let Some(p) = plan.process.as_ref().filter(|p| p.terminal) {
        setup_terminal(new_root.as_fd(), p.console_size, args.console_socket.take(), true)?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(InitError::Hostname)?;
    }
    if let Some(d) = &plan.domainname {
        crate::sys::process::setdomainname(d.as_bytes()).map_err(InitError::Domainname)?;
    }
    for (key, value) in &plan.sysctl {
        procfs::write(procfs.as_fd(), &format!("sys/{key}"), value.as_bytes())
            .map_err(|e| InitError::Sysctl(key.replace('/', "."), e))?;
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
    if let Some(adj) = plan.process.as_ref().and_then(|p| p.oom_score_adj) {
        procfs::write(procfs.as_fd(), "self/oom_score_adj", adj.to_string().as_bytes())
            .map_err(|e| InitError::OomScoreAdj(adj, e))?;
    }
    if !args.no_new_keyring {
        match crate::sys::process::join_new_session_keyring() {
            // Kernels without keys (or seccomp profiles that hide keyctl) are fine, as in runc.
            Ok(()) | Err(Errno::ENOSYS | Errno::EPERM | Errno::EACCES) => {}
            Err(e) => return Err(InitError::Keyring(e)),
        }
    }
    let Some(process) = &plan.process else {
        // No process: the container can be created and inspected, and `start` refuses it.
        args.channel.send(&ToParent::Ready).map_err(InitError::Sync)?;
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
            if let Err(e) = run_hooks("startContainer", start_hooks, state.as_bytes()) {
                let e = InitError::Hook(e);
                report_to_start(started.as_ref(), &e);
                return Err(e);
            }
        }
        Ok(started)
    })
}

/// Apply the process settings, report ready, run `after_ready` (wait for start), exec.
pub(super) fn finish_process(
    p: &ProcessPlan,
    channel: &Channel,
    seccomp: Option<&CompiledSeccomp>,
    after_ready: impl FnOnce() -> Result<Option<OwnedFd>, InitError>,
) -> Result<Infallible, InitError> {
    // Read before any seccomp filter: what runs after it must be what runc runs after it.
    let env = proc_setup::env_with_home(p);
    if !p.exec_labels.is_empty() {
        // Before any seccomp filter (it may forbid the write), as runc does.
        let procfs = procfs::private().map_err(InitError::Procfs)?;
        crate::security::lsm::set_exec_labels_in(procfs.as_fd(), &p.exec_labels).map_err(InitError::Lsm)?;
    }
    proc_setup::apply_rlimits(&p.rlimits)?;
    proc_setup::apply_scheduling(p)?;
    if p.no_new_privileges {
        proc_setup::set_no_new_privs()?;
    }
    // The program starts with every signal at SIG_DFL and none blocked, whatever our caller or
    // our own runtime ignored (Rust ignores SIGPIPE) or blocked (`run` blocks them to forward
    // them). Before any seccomp filter, which may forbid rt_sigaction; nothing after this needs
    // a handler or an ignored SIGPIPE (a write to a parent that is gone may end this child: it
    // would exit anyway).
    crate::sys::signals::reset_signal_state().map_err(InitError::ResetSignals)?;
    // Without no_new_privs the filter must go in while we still hold CAP_SYS_ADMIN. A filter
    // with a notify listener goes in before Ready in any case: the parent must hand the listener
    // to the agent while it is still there.
    let notify = seccomp.is_some_and(|f| f.listener_path().is_some());
    if let Some(filter) = seccomp.filter(|_| !p.no_new_privileges || notify) {
        install_filter(filter, channel)?;
    }
    if let Some(caps) = &p.caps {
        proc_setup::drop_bounding(caps)?;
    }
    proc_setup::switch_user(p, true)?;
    if let Some(caps) = &p.caps {
        proc_setup::apply_caps(caps)?;
    }
    proc_setup::set_umask(p.umask);
    proc_setup::enter_cwd(&p.cwd)?;
    let path = proc_setup::resolve_executable(p)?;

    channel.send(&ToParent::Ready).map_err(InitError::Sync)?;
    // Held open until execve closes it (close-on-exec): `start` reads the fifo to its end, so it
    // returns only once the user's program runs, and poststart hooks come after that.
    let held_until_exec = after_ready()?;
    // As close to execve as possible: nothing after this needs a filtered syscall.
    if let Some(filter) = seccomp.filter(|_| p.no_new_privileges && !notify) {
        if let Err(e) = filter.install() {
            let e = InitError::Seccomp(e);
            report_to_start(held_until_exec.as_ref(), &e);
            return Err(e);
        }
    }
    let errno = proc_setup::exec(&path, &p.args, &env);
    let e = InitError::Exec(path.to_string_lossy().into_owned(), errno);
    report_to_start(held_until_exec.as_ref(), &e);
    Err(e)
}

/// Install the filter; a notify listener goes to the parent (which passes it to the agent), and
/// is closed here once it has.
fn install_filter(filter: &CompiledSeccomp, channel: &Channel) -> Result<(), InitError> {
    let Some(listener) = filter.install()? else { return Ok(()) };
    let answer: Option<ToChild> =
        channel.exchange_plain(&ToParent::SeccompListener { fd: listener.as_raw_fd() }).map_err(InitError::Sync)?;
    match answer {
        Some(ToChild::ListenerSent) => Ok(()),
        _ => Err(InitError::ParentGone),
    }
}

/// After `start` released us, a failure can only reach it through the fifo it reads to the end.
fn report_to_start(fifo: Option<&OwnedFd>, e: &InitError) {
    if let Some(w) = fifo {
        let message = format!("E{}", Error::new(e.kind(), Message(e.to_string())).chain());
        // start reads this; if it is gone too, the message has nowhere else to go.
        let _reported = nix::unistd::write(w, message.as_bytes());
    }
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

/// Close every descriptor the child copied from the parent except its own and the preserved
/// ones: nothing of the runtime (the state dir and its lock, the cgroup dir) stays reachable.
fn close_inherited(args: &InitArgs<'_>) {
    let own = [
        Some(args.channel.raw()),
        args.exec_fifo.as_ref().map(|f| f.as_raw_fd()),
        args.console_socket.as_ref().map(|f| f.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    .chain(args.join_fds.iter().map(|(_, fd)| fd.as_raw_fd()));
    close_all_but(own, args.preserve_fds);
}

/// Close descriptors from 3 + `preserve_fds` up, except `keep`. Best effort: close_range only
/// fails on bad arguments, and a descriptor left open is still close-on-exec.
pub(super) fn close_all_but(keep: impl Iterator<Item = std::os::fd::RawFd>, preserve_fds: u32) {
    let first = 3 + preserve_fds;
    let mut keep: Vec<u32> = keep.filter_map(|fd| u32::try_from(fd).ok()).filter(|fd| *fd >= first).collect();
    keep.sort_unstable();
    let mut low = first;
    for fd in keep {
        if fd > low {
            let _closed = crate::sys::process::close_range(low, fd - 1);
        }
        low = fd + 1;
    }
    let _closed = crate::sys::process::close_range(low, u32::MAX);
}

/// After the parent wrote our id maps: become uid/gid 0 of the new user namespace.
fn become_root() -> Result<(), InitError> {
    let root_u = Uid::from_raw(0);
    let root_g = Gid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g).map_err(InitError::BecomeRoot)?;
    nix::unistd::setresuid(root_u, root_u, root_u).map_err(InitError::BecomeRoot)?;
    Ok(())
}

/// Block until `start` opens the fifo for reading, then tell it we are going. Returns the
/// write end, to be closed by execve.
fn wait_for_start(procfs: BorrowedFd<'_>, fifo: OwnedFd) -> Result<OwnedFd, InitError> {
    // Plain openat: a seccomp filter may already be installed, and every profile allows it.
    let path = format!("self/fd/{}", fifo.as_raw_fd());
    let writer = loop {
        match nix::fcntl::openat(procfs, path.as_str(), OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => break fd,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(InitError::ExecFifo(e)),
        }
    };
    drop(fifo);
    nix::unistd::write(&writer, b"0").map_err(InitError::ExecFifo)?;
    Ok(writer)
}

/// A pty from the container's devpts: master sent over the console socket, peer bound on
/// /dev/console and made our stdio and controlling terminal.
pub(super) fn setup_terminal(
    root: BorrowedFd<'_>,
    console_size: Option<(u16, u16)>,
    socket: Option<OwnedFd>,
    console: bool,
) -> Result<(), InitError> {
    let (master, peer) = rootfs::open_pty_master(root)?;
    if let Some((rows, cols)) = console_size {
        crate::sys::tty::set_window_size(master.as_fd(), rows, cols).map_err(InitError::Terminal)?;
    }
    if console {
        bind_console(root, peer.as_fd())?;
    }
    if let Some(sock) = socket {
        let fds = [master.as_raw_fd()];
        let payload = b"/dev/ptmx";
        let iov = [IoSlice::new(payload)];
        sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
            .map_err(InitError::ConsoleSocket)?;
    }
    drop(master);
    nix::unistd::dup2_stdin(peer.as_fd()).map_err(InitError::Terminal)?;
    nix::unistd::dup2_stdout(peer.as_fd()).map_err(InitError::Terminal)?;
    nix::unistd::dup2_stderr(peer.as_fd()).map_err(InitError::Terminal)?;
    crate::sys::tty::set_controlling_terminal(peer.as_fd()).map_err(InitError::Terminal)?;
    Ok(())
}

/// Bind the pty peer onto /dev/console (created as an empty file when missing).
fn bind_console(root: BorrowedFd<'_>, peer: BorrowedFd<'_>) -> Result<(), InitError> {
    use crate::rootfs::resolve::{Leaf, ensure_in_root};
    use crate::sys::mount::{OPEN_TREE_CLONE, move_mount_fd, open_tree};
    let err = |source| RootfsError::Attach { dest: "/dev/console".into(), source };
    let target = ensure_in_root(root, Path::new("dev/console"), Leaf::File, true).map_err(err)?;
    let tree = open_tree(peer, c"", OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32).map_err(err)?;
    move_mount_fd(tree.as_fd(), target.as_fd()).map_err(err)?;
    Ok(())
}
