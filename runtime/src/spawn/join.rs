//! The child of `exec`, which joins a running container: its namespaces (non-dumpable first, so
//! the container cannot reach into the runtime), then the process settings and execve.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::stat::Mode;

use super::child::{self, ChildError, close_all_but, finish_process, setup_terminal, wait_for};
use super::protocol::{Channel, ToChild};
use crate::plan::namespaces::proc_name;
use crate::plan::process::ProcessPlan;
use crate::rootfs::RootfsError;
use crate::security::seccomp::CompiledSeccomp;

#[derive(Debug)]
pub struct JoinArgs<'a> {
    pub process: &'a ProcessPlan,
    pub channel: Channel,
    /// The container's namespaces, user namespace first and mount namespace last.
    pub join_fds: Vec<(CloneFlags, OwnedFd)>,
    pub console_socket: Option<OwnedFd>,
    pub seccomp: Option<&'a CompiledSeccomp>,
    pub preserve_fds: u32,
}

/// The child's entry point after `clone3`. Never returns.
pub fn run(mut args: JoinArgs<'_>) -> ! {
    let Err(e) = join(&mut args);
    child::report_and_exit(&args.channel, "exec failed", 255, e)
}

fn join(args: &mut JoinArgs<'_>) -> Result<Infallible, ChildError> {
    let own = [Some(args.channel.raw()), args.console_socket.as_ref().map(|f| f.as_raw_fd())]
        .into_iter()
        .flatten()
        .chain(args.join_fds.iter().map(|(_, fd)| fd.as_raw_fd()));
    close_all_but(own, args.preserve_fds);
    let _unblocked = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Before entering anything of the container: no ptrace, no /proc/<pid>/mem or exe access.
    nix::sys::prctl::set_dumpable(false).map_err(ChildError::NonDumpable)?;
    if wait_for(&args.channel)? != ToChild::Go {
        return Err(ChildError::ParentGone);
    }
    for (flag, fd) in &args.join_fds {
        setns(fd.as_fd(), *flag).map_err(|e| ChildError::Setns(proc_name(*flag), e))?;
    }
    args.join_fds.clear();
    let p = args.process;
    // Its own session and process group, as runc's exec'd processes (and the container's init);
    // with a terminal, that becomes the session's controlling terminal.
    nix::unistd::setsid().map_err(ChildError::Setsid)?;
    if p.terminal {
        let root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|source| RootfsError::OpenRootfs { path: "/".into(), source })?;
        let pty = crate::rootfs::open_pty_master(root.as_fd())?;
        setup_terminal(pty, p.console_size, args.console_socket.take(), None)?;
    }
    finish_process(p, &args.channel, args.seccomp, || Ok(None))
}
