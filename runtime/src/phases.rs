//! Timestamps of the runtime's phases, for `hack/bench`'s breakdown of `run`, `create` and `start`.
//!
//! With `STRATA_PHASES=FILE` in the environment, every [`mark`] appends `<CLOCK_REALTIME ns>
//! <name>` to FILE; the parent and the container's init (until its execve, the file is
//! close-on-exec) write to the same file, so their lines interleave in time. The wall clock, not
//! the monotonic one, so that a script can add its own lines (bash's `$EPOCHREALTIME`) around the
//! command. Without the variable a mark costs one environment lookup for the whole run. A
//! benchmarking aid only: the file is opened at the first mark and may take a descriptor number
//! `--preserve-fds` expected to find empty.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;

static SINK: OnceLock<Option<File>> = OnceLock::new();

fn sink() -> Option<&'static File> {
    SINK.get_or_init(|| {
        let path = std::env::var_os("STRATA_PHASES")?;
        std::fs::OpenOptions::new().append(true).create(true).open(path).ok()
    })
    .as_ref()
}

/// Record that the phase `name` ends now.
pub fn mark(name: &str) {
    let Some(mut file) = sink() else { return };
    let Ok(now) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME) else { return };
    let ns = now.tv_sec() as i128 * 1_000_000_000 + now.tv_nsec() as i128;
    // One write of one line (O_APPEND): lines of the two processes never mix. A lost timestamp
    // must not fail the container, so a failed write is ignored.
    let _ignored = file.write_all(format!("{ns} {name}\n").as_bytes());
}

/// The file's descriptor, which the container's init keeps among its own until execve.
pub fn raw_fd() -> Option<RawFd> {
    sink().map(|f| f.as_raw_fd())
}
