//! `run`: create + start in one process. In the foreground it forwards signals to the
//! container, waits for it and returns its exit status (128+n for a signal); `--detach` returns
//! once it runs. A terminal without a console socket is relayed to ours.

use std::os::fd::AsFd;

use super::create::{CreateOptions, create};
use super::delete::{destroy, stop_processes};
use super::foreground::Forwarder;
use super::start::{run_poststart, start};
use crate::error::Error;

pub fn run(opts: &CreateOptions, detach: bool, keep: bool) -> Result<i32, Error> {
    if detach {
        let o = CreateOptions { foreground: false, ..opts.clone() };
        create(&o)?;
        start(&o.root, &o.id)?;
        return Ok(0);
    }
    let forwarder = Forwarder::new()?;
    let created = create(&CreateOptions { foreground: true, ..opts.clone() })?;
    // Between ready and execve the init runs the startContainer hooks and execs the process; a
    // failure there comes over the channel (as it reaches `start` through the exec fifo), and is
    // run's error rather than a bare exit status.
    if let Err(e) = created.init.wait_exec() {
        let cleaned = stop_processes(&created.state).and_then(|()| match keep {
            true => Ok(()),
            false => destroy(&created.dir, &created.state),
        });
        if let Err(c) = cleaned {
            // The start's failure is what the caller needs to see; this one only follows from it.
            crate::logging::warn(&format!("clean up after the failed start: {}", c.chain()));
        }
        return Err(e);
    }
    crate::phases::mark("run: init exec'd");
    run_poststart(&created.state);
    let code = forwarder.wait(created.init.pid, created.init.pidfd.as_fd(), created.console)?;
    crate::phases::mark("run: container exited");
    if !keep {
        // Other processes of the container (without its own pid namespace) die with it.
        stop_processes(&created.state)?;
        destroy(&created.dir, &created.state)?;
        crate::phases::mark("run: cgroups and state removed");
    }
    Ok(code)
}
