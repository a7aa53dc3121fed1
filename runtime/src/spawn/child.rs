//! What the two children share, between `clone3` and `execve`: the error type, the failure
//! report, the protocol waits, closing inherited descriptors, the terminal, and the process
//! sequence after the container is set up (labels, rlimits, seccomp, capabilities, user, cwd,
//! executable lookup, ready, exec). [`super::init`] and [`super::join`] are the two sequences
//! that use it.

use std::convert::Infallible;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use super::process::{self as proc_setup, ProcessError};
use super::protocol::{Channel, ChannelError, Failure, Step, ToChild, ToParent};
use crate::error::{Error, ErrorKind, kind_of_errno};
use crate::hooks::HookError;
use crate::plan::process::ProcessPlan;
use crate::rootfs::RootfsError;
use crate::security::seccomp::{CompiledSeccomp, SeccompError};
use crate::sys::procfs;

#[derive(Debug, thiserror::Error)]
pub(super) enum ChildError {
    #[error("wait for the parent")]
    Sync(#[source] ChannelError),
    #[error("the parent went away")]
    ParentGone,
    #[error("make the process non-dumpable")]
    NonDumpable(#[source] Errno),
    #[error("become root in the new user namespace")]
    BecomeRoot(#[source] Errno),
    #[error("join {0} namespace")]
    Setns(&'static str, #[source] Errno),
    #[error("create namespaces")]
    Unshare(#[source] Errno),
    #[error("bring up the loopback interface lo")]
    Loopback(#[source] Errno),
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
    Execve(String, #[source] Errno),
}

impl ChildError {
    pub(super) fn kind(&self) -> ErrorKind {
        match self {
            ChildError::Process(p) => p.kind(),
            ChildError::Rootfs(RootfsError::InsideProc { .. } | RootfsError::NotADirectory { .. }) => {
                ErrorKind::InvalidSpec
            }
            ChildError::Setns(_, e)
            | ChildError::Unshare(e)
            | ChildError::Hostname(e)
            | ChildError::Sysctl(_, e)
            | ChildError::Execve(_, e) => kind_of_errno(*e),
            _ => ErrorKind::Other,
        }
    }

    fn step(&self) -> Step {
        match self {
            ChildError::Sync(_) | ChildError::ParentGone => Step::Sync,
            ChildError::NonDumpable(_) => Step::Prepare,
            ChildError::BecomeRoot(_) | ChildError::Setns(..) | ChildError::Unshare(_) | ChildError::Loopback(_) => {
                Step::Namespaces
            }
            ChildError::Cgroup(_) => Step::Cgroup,
            ChildError::Procfs(_) => Step::Procfs,
            ChildError::Rootfs(_) => Step::Rootfs,
            ChildError::Hook(_) => Step::Hooks,
            ChildError::Setsid(_) | ChildError::ConsoleSocket(_) | ChildError::Terminal(_) => Step::Terminal,
            ChildError::Hostname(_) | ChildError::Domainname(_) | ChildError::Sysctl(..) | ChildError::Keyring(_) => {
                Step::Settings
            }
            ChildError::Lsm(_) => Step::Lsm,
            ChildError::Process(_) | ChildError::ResetSignals(_) => Step::Process,
            ChildError::Seccomp(_) => Step::Seccomp,
            ChildError::ExecFifo(_) => Step::Start,
            ChildError::Execve(..) => Step::Execve,
        }
    }

    /// The record that crosses the fork.
    fn failure(&self) -> Failure {
        Failure::new(self.step(), self.kind(), self)
    }
}

/// A child's sequence failed: tell the parent (or, when the parent is gone, the container's
/// stderr, prefixed with `what`) and exit with `exit_code`.
pub(super) fn report_and_exit(channel: &Channel, what: &str, exit_code: i32, err: ChildError) -> ! {
    let failure = err.failure();
    if channel.send(&ToParent::Failed(failure)).is_err() {
        // The parent is gone (after `create` returned): the container's stderr is all we have.
        eprintln!("strata: {what}: {}", Error::new(err.kind(), err).chain());
    }
    crate::sys::process::exit_now(exit_code)
}

pub(super) fn wait_for(channel: &Channel) -> Result<ToChild, ChildError> {
    channel.recv::<ToChild>().map_err(ChildError::Sync)?.ok_or(ChildError::ParentGone)
}

/// Close descriptors from 3 + `preserve_fds` up, except `keep`: nothing of the runtime (the state
/// dir and its lock, the cgroup dir, a client's leaked socket) stays reachable. In the preserved
/// range, the close-on-exec placeholders of [`super::reserve_preserved_fds`] go too: the
/// container gets what the caller passed, nothing else. Best effort: close_range only fails on
/// bad arguments, and a descriptor left open is still close-on-exec.
pub(super) fn close_all_but(keep: impl Iterator<Item = RawFd>, preserve_fds: u32) {
    let first = 3u32.saturating_add(preserve_fds);
    let keep: Vec<u32> = keep.filter_map(|fd| u32::try_from(fd).ok()).collect();
    for fd in 3..first {
        let placeholder = i32::try_from(fd).is_ok_and(|n| crate::sys::process::fd_is_cloexec(n).unwrap_or(false));
        if placeholder && !keep.contains(&fd) {
            let _closed = crate::sys::process::close_range(fd, fd);
        }
    }
    let mut keep: Vec<u32> = keep.into_iter().filter(|fd| *fd >= first).collect();
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

/// Apply the process settings, report ready, run `after_ready` (wait for start), exec.
pub(super) fn finish_process(
    p: &ProcessPlan,
    channel: &Channel,
    seccomp: Option<&CompiledSeccomp>,
    after_ready: impl FnOnce() -> Result<Option<OwnedFd>, ChildError>,
) -> Result<Infallible, ChildError> {
    // Read before any seccomp filter: what runs after it must be what runc runs after it.
    let env = proc_setup::env_with_home(p);
    if !p.exec_labels.is_empty() {
        // Before any seccomp filter (it may forbid the write), as runc does.
        let procfs = procfs::private().map_err(ChildError::Procfs)?;
        crate::security::lsm::set_exec_labels_in(procfs.as_fd(), &p.exec_labels).map_err(ChildError::Lsm)?;
    }
    proc_setup::apply_rlimits(&p.rlimits)?;
    proc_setup::apply_scheduling(p)?;
    crate::phases::mark("init: labels, rlimits, scheduling");
    if p.no_new_privileges {
        proc_setup::set_no_new_privs()?;
    }
    // The program starts with every signal at SIG_DFL and none blocked, whatever our caller or
    // our own runtime ignored (Rust ignores SIGPIPE) or blocked (`run` blocks them to forward
    // them). Before any seccomp filter, which may forbid rt_sigaction; nothing after this needs
    // a handler or an ignored SIGPIPE (a write to a parent that is gone may end this child: it
    // would exit anyway).
    crate::sys::signals::reset_signal_state().map_err(ChildError::ResetSignals)?;
    // Still privileged and before any filter (what a notify agent sees must be the container's
    // calls, not the runtime's fchown, chdir, getcwd): stdio to the process user, the cwd.
    proc_setup::give_stdio_to(p.uid)?;
    let cwd = proc_setup::enter_cwd_privileged(&p.cwd)?;
    // Without no_new_privs the filter must go in while we still hold CAP_SYS_ADMIN.
    if let Some(filter) = seccomp.filter(|_| !p.no_new_privileges) {
        install_filter(filter, channel)?;
    }
    if let Some(caps) = &p.caps {
        proc_setup::drop_bounding(caps)?;
    }
    proc_setup::switch_user(p, true)?;
    if cwd == proc_setup::Cwd::AsTheUser {
        // Only a cwd the runtime could not enter: its check runs under a filter installed above.
        proc_setup::enter_cwd(&p.cwd)?;
    }
    if let Some(caps) = &p.caps {
        proc_setup::apply_caps(caps)?;
    }
    proc_setup::set_umask(p.umask);
    let path = proc_setup::resolve_executable(p)?;
    crate::phases::mark("init: signals, stdio, cwd, seccomp, caps, user, PATH lookup");
    // With no_new_privs the filter goes in as late as possible; one with a notify listener
    // before Ready still: the parent must hand the listener to the agent while it is there.
    let notify = seccomp.is_some_and(|f| f.listener_path().is_some());
    if let Some(filter) = seccomp.filter(|_| p.no_new_privileges && notify) {
        install_filter(filter, channel)?;
    }

    channel.send(&ToParent::Ready).map_err(ChildError::Sync)?;
    // Held open until execve closes it (close-on-exec): `start` reads the fifo to its end, so it
    // returns only once the user's program runs, and poststart hooks come after that.
    crate::phases::mark("init: ready sent");
    let held_until_exec = after_ready()?;
    crate::phases::mark("init: waited for start (start hooks)");
    // As close to execve as possible: nothing after this needs a filtered syscall.
    if let Some(filter) = seccomp.filter(|_| p.no_new_privileges && !notify) {
        if let Err(e) = filter.install() {
            let e = ChildError::Seccomp(e);
            report_to_start(held_until_exec.as_ref(), &e);
            return Err(e);
        }
    }
    crate::phases::mark("init: execve");
    let errno = proc_setup::execve(&path, &p.args, &env);
    let e = ChildError::Execve(path.to_string_lossy().into_owned(), errno);
    report_to_start(held_until_exec.as_ref(), &e);
    Err(e)
}

/// Install the filter; a notify listener goes to the parent (which passes it to the agent), and
/// is closed here once it has.
fn install_filter(filter: &CompiledSeccomp, channel: &Channel) -> Result<(), ChildError> {
    let Some(listener) = filter.install()? else { return Ok(()) };
    let answer: Option<ToChild> =
        channel.exchange_plain(&ToParent::SeccompListener { fd: listener.as_raw_fd() }).map_err(ChildError::Sync)?;
    match answer {
        Some(ToChild::ListenerSent) => Ok(()),
        _ => Err(ChildError::ParentGone),
    }
}

/// After `start` released us, a failure can only reach it through the fifo it reads to the end.
pub(super) fn report_to_start(fifo: Option<&OwnedFd>, e: &ChildError) {
    if let Some(w) = fifo {
        // start reads this; if it is gone too, the report has nowhere else to go.
        let _reported = nix::unistd::write(w, &e.failure().to_report());
    }
}

/// A new pty (master, peer), from the container's devpts ([`crate::rootfs::open_pty_master`])
/// or the host's ([`crate::rootfs::open_host_pty_master`]): master sent over the console
/// socket, peer made our stdio and controlling terminal, and (for the container's init,
/// `console` is its root) bound on /dev/console.
pub(super) fn setup_terminal(
    (master, peer): (OwnedFd, OwnedFd),
    console_size: Option<(u16, u16)>,
    socket: Option<OwnedFd>,
    console: Option<BorrowedFd<'_>>,
) -> Result<(), ChildError> {
    if let Some((rows, cols)) = console_size {
        crate::sys::tty::set_window_size(master.as_fd(), rows, cols).map_err(ChildError::Terminal)?;
    }
    if let Some(root) = console {
        bind_console(root, peer.as_fd())?;
    }
    if let Some(sock) = socket {
        let fds = [master.as_raw_fd()];
        let payload = b"/dev/ptmx";
        let iov = [IoSlice::new(payload)];
        sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
            .map_err(ChildError::ConsoleSocket)?;
    }
    drop(master);
    nix::unistd::dup2_stdin(peer.as_fd()).map_err(ChildError::Terminal)?;
    nix::unistd::dup2_stdout(peer.as_fd()).map_err(ChildError::Terminal)?;
    nix::unistd::dup2_stderr(peer.as_fd()).map_err(ChildError::Terminal)?;
    crate::sys::tty::set_controlling_terminal(peer.as_fd()).map_err(ChildError::Terminal)?;
    Ok(())
}

/// Bind the pty peer onto /dev/console (created as an empty file when missing).
fn bind_console(root: BorrowedFd<'_>, peer: BorrowedFd<'_>) -> Result<(), ChildError> {
    use crate::rootfs::resolve::{Leaf, ensure_in_root};
    use crate::sys::mount::{OPEN_TREE_CLONE, move_mount_fd, open_tree};
    let err = |source| RootfsError::Attach { dest: "/dev/console".into(), source };
    let target = ensure_in_root(root, Path::new("dev/console"), Leaf::File, true).map_err(err)?;
    let tree = open_tree(peer, c"", OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32).map_err(err)?;
    move_mount_fd(tree.as_fd(), target.as_fd()).map_err(err)?;
    Ok(())
}
