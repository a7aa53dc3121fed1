//! The child of `exec`: joins the running container's namespaces (non-dumpable first, so the
//! container cannot reach into the runtime), applies the process settings and execs.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::stat::Mode;

use super::init::{InitError, close_all_but, finish_process, setup_terminal, wait_for};
use super::protocol::{Channel, Failure, ToChild, ToParent};
use crate::error::Error;
use crate::rootfs::RootfsError;
use crate::security::seccomp::CompiledSeccomp;
use crate::spec::namespaces::proc_name;
use crate::spec::process::ProcessPlan;

#[derive(Debug)]
pub struct ExecArgs<'a> {
    pub process: &'a ProcessPlan,
    pub channel: Channel,
    /// The container's namespaces, user namespace first and mount namespace last.
    pub join_fds: Vec<(CloneFlags, OwnedFd)>,
    pub console_socket: Option<OwnedFd>,
    pub seccomp: Option<&'a CompiledSeccomp>,
    pub preserve_fds: u32,
}

pub fn run(mut args: ExecArgs<'_>) -> ! {
    let err = match exec_child(&mut args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let kind = err.kind();
    let failure = Failure::from_error(&Error::new(kind, err));
    if args.channel.send(&ToParent::Failed(failure.clone())).is_err() {
        eprintln!("strata: exec failed: {}", failure.message);
    }
    crate::sys::process::exit_now(255)
}

fn exec_child(args: &mut ExecArgs<'_>) -> Result<Infallible, InitError> {
    let own = [Some(args.channel.raw()), args.console_socket.as_ref().map(|f| f.as_raw_fd())]
        .into_iter()
        .flatten()
        .chain(args.join_fds.iter().map(|(_, fd)| fd.as_raw_fd()));
    close_all_but(own, args.preserve_fds);
    let _unblocked = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // Before entering anything of the container: no ptrace, no /proc/<pid>/mem or exe access.
    nix::sys::prctl::set_dumpable(false).map_err(InitError::Setsid)?;
    if wait_for(&args.channel)? != ToChild::Go {
        return Err(InitError::ParentGone);
    }
    for (flag, fd) in &args.join_fds {
        setns(fd.as_fd(), *flag).map_err(|e| InitError::Setns(proc_name(*flag), e))?;
    }
    args.join_fds.clear();
    let p = args.process;
    if p.terminal {
        nix::unistd::setsid().map_err(InitError::Setsid)?;
        let root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|source| RootfsError::OpenRootfs { path: "/".into(), source })?;
        setup_terminal(root.as_fd(), p.console_size, args.console_socket.take(), false)?;
    }
    finish_process(p, &args.channel, args.seccomp, || Ok(()))
}
