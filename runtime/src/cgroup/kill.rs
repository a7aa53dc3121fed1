//! `kill --all`: signal every process of the container, including those in cgroups it made.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};

use super::dir::CgroupDir;
use super::{CgroupError, Manager};

impl Manager {
    /// Send `signal` to every process in the container's cgroup tree.
    ///
    /// SIGKILL goes through `cgroup.kill` where the kernel has it (5.14+; also in the hybrid
    /// layout's cgroup2 hierarchy, which holds the same processes): one write, no race with
    /// forks. Otherwise, as runc: freeze, signal each process, thaw — frozen processes cannot
    /// fork or exit in between, so no pid is missed or reused. Processes that exited meanwhile
    /// are fine.
    pub fn kill_all(&self, signal: Signal) -> Result<(), CgroupError> {
        if signal == Signal::SIGKILL
            && let Some(h) = self.hierarchies().iter().find(|h| h.unified)
        {
            let d = CgroupDir::new(h.dir.clone());
            match d.write_raw("cgroup.kill", "1") {
                Ok(()) => return Ok(()),
                // No cgroup.kill (older kernel), or the cgroup is already gone.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(d.write_error("cgroup.kill", "1", e)),
            }
        }
        let frozen = self.freeze_for_kill();
        let result = self.signal_each(signal);
        if frozen {
            // Always thawed afterwards, as runc: a frozen v1 task does not act on SIGKILL.
            self.thaw()?;
        }
        result
    }

    fn signal_each(&self, signal: Signal) -> Result<(), CgroupError> {
        let mut first_error = None;
        for pid in self.pids()? {
            match kill(pid, signal) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => {
                    first_error.get_or_insert(CgroupError::Signal {
                        pid: pid.as_raw(),
                        signal: signal as i32,
                        source: e,
                    });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Freezing only makes the signalling race-free; without a freezer (or if freezing fails)
    /// the processes are still signalled, as runc does. Returns whether to thaw afterwards.
    fn freeze_for_kill(&self) -> bool {
        match self.freeze() {
            Ok(()) => true,
            Err(CgroupError::NoFreezer) => false,
            Err(e) => {
                eprintln!("warning: signalling the container's processes without freezing them: {e}");
                true
            }
        }
    }
}
