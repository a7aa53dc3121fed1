//! `kill`: signal the container's init (through a pidfd, so never a recycled pid), or with
//! `--all` every process in its cgroup.

use std::os::fd::AsFd;
use std::path::Path;
use std::str::FromStr;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::id::ContainerId;
use super::state::{ContainerDir, process_alive};
use super::status::{Allowed, Op, Refused};
use crate::cgroup::Manager;
use crate::error::{Error, ErrorKind};
use crate::sys::process::{pidfd_open, pidfd_send_signal};

/// A signal as runc accepts it: `9`, `KILL`, `SIGKILL` (any case); `0` sends nothing and only
/// checks that the container's init is alive, as kill(2) does.
pub fn parse_signal(s: &str) -> Result<i32, Error> {
    let bad = || Error::msg(ErrorKind::InvalidSpec, format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (0..=64).contains(&n) { Ok(n) } else { Err(bad()) };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let offset: i32 =
            if rt.is_empty() { 0 } else { rt.strip_prefix('+').and_then(|n| n.parse().ok()).ok_or_else(bad)? };
        let n = libc::SIGRTMIN() + offset;
        return if n <= libc::SIGRTMAX() { Ok(n) } else { Err(bad()) };
    }
    Signal::from_str(&name).map(|s| s as i32).map_err(|_| bad())
}

pub fn kill(root: &Path, id: &ContainerId, signal: i32, all: bool) -> Result<(), Error> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    if super::check(&dir, &state, if all { Op::KillAll } else { Op::Kill })? == Allowed::NothingToDo {
        return Ok(());
    }
    if all {
        let Some(cg) = &state.cgroup else {
            // Rootless without a cgroup: with a pid namespace of its own, the container's
            // processes are its init's namespace, which SIGKILL to the init ends (other signals
            // reach the init only, as a plain kill). Without one they cannot be found.
            if !state.namespaces.iter().any(|n| n == "pid") {
                return Err(Error::msg(ErrorKind::Unsupported, super::NO_CGROUP));
            }
            return kill(root, id, signal, false);
        };
        if signal == 0 {
            // The liveness check: the status table said the container's processes may run.
            return Ok(());
        }
        let signal = Signal::try_from(signal).map_err(|e| Error::new(ErrorKind::InvalidSpec, e))?;
        return Manager::from_state(cg).kill_all(signal).map_err(Error::from);
    }
    // Gone since its status was read: as if it had been stopped then.
    let gone = || Refused::NotRunning.into_error(id);
    let pidfd = pidfd_open(Pid::from_raw(state.pid)).map_err(|_| gone())?;
    // The pidfd pins the process; re-check that it is still the container's init.
    if !process_alive(state.pid, state.pid_start) {
        return Err(gone());
    }
    pidfd_send_signal(pidfd.as_fd(), signal).map_err(|e| match e {
        nix::errno::Errno::ESRCH => gone(),
        e => Error::new(crate::error::kind_of_errno(e), e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_and_name() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), 10);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        for bad in ["65", "NOPE", "SIG", "-1", "", "SIG0"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
