//! `events`: OOM notifications and periodic stats, as runc prints them (one JSON object per
//! line: `{"type":"stats"|"oom","id":...,"data":...}`).
//!
//! OOM source: v1 registers an eventfd for memory.oom_control through cgroup.event_control
//! (the eventfd also fires when the cgroup is removed); v2 polls memory.events, whose changes
//! wake poll(POLLPRI), and counts its "oom" entry (as runc), and watches cgroup.events for
//! "populated 0" (the container has exited).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::eventfd::{EfdFlags, EventFd};
use serde::Serialize;

use super::dir::{CgroupDir, keyed_value};
use super::freezer::read_from_start;
use super::stats::{Stats, oom_count};
use super::{CgroupError, Manager};

/// One line of `events` output.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Event {
    pub fn stats(id: &str, stats: Stats) -> Self {
        Self { kind: "stats", id: id.to_owned(), data: Some(stats) }
    }

    pub fn oom(id: &str) -> Self {
        Self { kind: "oom", id: id.to_owned(), data: None }
    }
}

/// What a wait on the watcher saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomWait {
    /// This many OOM events since the last wait.
    Oom(u64),
    Timeout,
    /// The cgroup was removed or has no process left.
    Gone,
}

#[derive(Debug)]
pub struct OomWatcher {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    V1 { efd: EventFd, _oom_control: File, event_control: PathBuf, gone: bool },
    V2 { memory_events: File, cgroup_events: File, last: u64, path: PathBuf },
}

impl OomWatcher {
    /// Watch the container's memory cgroup; `None` when it has no memory controller.
    pub fn new(mgr: &Manager) -> Result<Option<Self>, CgroupError> {
        let hs = mgr.hierarchies();
        if let Some(h) = hs.iter().find(|h| !h.unified && h.has("memory")) {
            let d = CgroupDir::new(h.dir.clone());
            let oom_control = File::open(d.file_path("memory.oom_control"))
                .map_err(|source| CgroupError::Watch { path: d.file_path("memory.oom_control"), source })?;
            let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC)
                .map_err(|e| CgroupError::Watch { path: d.file_path("memory.oom_control"), source: e.into() })?;
            let line = format!("{} {}", efd.as_fd().as_raw_fd(), oom_control.as_raw_fd());
            d.write("cgroup.event_control", &line)?;
            let event_control = d.file_path("cgroup.event_control");
            let inner = Inner::V1 { efd, _oom_control: oom_control, event_control, gone: false };
            return Ok(Some(Self { inner }));
        }
        let Some(h) = hs.iter().find(|h| h.unified).filter(|_| mgr.is_unified()) else { return Ok(None) };
        let open = |name: &str| {
            let path = h.dir.join(name);
            File::open(&path).map_err(|source| CgroupError::Watch { path, source })
        };
        let memory_events = open("memory.events")?;
        let cgroup_events = open("cgroup.events")?;
        let path = h.dir.join("memory.events");
        let last = oom_count(
            &read_from_start(&memory_events).map_err(|source| CgroupError::Watch { path: path.clone(), source })?,
        );
        Ok(Some(Self { inner: Inner::V2 { memory_events, cgroup_events, last, path } }))
    }

    /// Wait up to `timeout` (forever with `None`) for OOM events or the end of the cgroup.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<OomWait, CgroupError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let ms = match left {
                None => PollTimeout::NONE,
                Some(l) => {
                    PollTimeout::try_from(i32::try_from(l.as_millis()).unwrap_or(i32::MAX)).unwrap_or(PollTimeout::MAX)
                }
            };
            match &mut self.inner {
                Inner::V1 { efd, event_control, gone, .. } => {
                    if *gone {
                        return Ok(OomWait::Gone);
                    }
                    let mut fds = [PollFd::new(efd.as_fd(), PollFlags::POLLIN)];
                    match poll(&mut fds, ms) {
                        Ok(0) => return Ok(OomWait::Timeout),
                        Ok(_) => {}
                        Err(Errno::EINTR) => continue,
                        Err(e) => return Err(CgroupError::Watch { path: event_control.clone(), source: e.into() }),
                    }
                    let n =
                        efd.read().map_err(|e| CgroupError::Watch { path: event_control.clone(), source: e.into() })?;
                    // The eventfd is also signalled once when the cgroup goes away; OOMs
                    // counted together with that are still reported, then the end.
                    if !event_control.exists() {
                        *gone = true;
                        if n > 1 {
                            return Ok(OomWait::Oom(n - 1));
                        }
                        return Ok(OomWait::Gone);
                    }
                    return Ok(OomWait::Oom(n));
                }
                Inner::V2 { memory_events, cgroup_events, last, path } => {
                    let watch_err = |source: io::Error| CgroupError::Watch { path: path.clone(), source };
                    // The files of a removed cgroup read as ENODEV.
                    let gone = |e: &io::Error| matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ENOENT));
                    // OOMs first: the kill that empties the cgroup is still reported.
                    let now = match read_from_start(memory_events) {
                        Ok(text) => oom_count(&text),
                        Err(e) if gone(&e) => return Ok(OomWait::Gone),
                        Err(e) => return Err(watch_err(e)),
                    };
                    if now > *last {
                        let n = now - *last;
                        *last = now;
                        return Ok(OomWait::Oom(n));
                    }
                    match read_from_start(cgroup_events) {
                        Ok(text) if keyed_value(&text, "populated") == Some(0) => return Ok(OomWait::Gone),
                        Ok(_) => {}
                        Err(e) if gone(&e) => return Ok(OomWait::Gone),
                        Err(e) => return Err(watch_err(e)),
                    }
                    let mut fds = [
                        PollFd::new(memory_events.as_fd(), PollFlags::POLLPRI),
                        PollFd::new(cgroup_events.as_fd(), PollFlags::POLLPRI),
                    ];
                    match poll(&mut fds, ms) {
                        Ok(0) => return Ok(OomWait::Timeout),
                        Ok(_) | Err(Errno::EINTR) => {}
                        Err(e) => return Err(watch_err(e.into())),
                    }
                }
            }
        }
    }
}

/// Why [`watch_events`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsEnd {
    /// The container's cgroup is gone or empty.
    ContainerGone,
    /// `emit` failed (the reader went away).
    OutputClosed,
}

/// `runc events [--interval D]`: a stats event every `interval` and an "oom" event per OOM,
/// until the container is gone. (`events --stats` is one `Event::stats(id, mgr.stats()?)`.)
pub fn watch_events(
    mgr: &Manager,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&Event) -> io::Result<()>,
) -> Result<EventsEnd, CgroupError> {
    let mut oom = OomWatcher::new(mgr)?;
    let mut next_stats = Instant::now() + interval;
    loop {
        let left = next_stats.saturating_duration_since(Instant::now());
        let seen = match &mut oom {
            Some(w) => w.wait(Some(left))?,
            None => {
                std::thread::sleep(left);
                if mgr.exists() { OomWait::Timeout } else { OomWait::Gone }
            }
        };
        match seen {
            OomWait::Gone => return Ok(EventsEnd::ContainerGone),
            OomWait::Oom(n) => {
                for _ in 0..n {
                    if emit(&Event::oom(id)).is_err() {
                        return Ok(EventsEnd::OutputClosed);
                    }
                }
            }
            OomWait::Timeout => {}
        }
        if Instant::now() >= next_stats {
            next_stats += interval;
            let stats = match mgr.stats() {
                Ok(s) => s,
                Err(_) if !mgr.exists() => return Ok(EventsEnd::ContainerGone),
                Err(e) => return Err(e),
            };
            if emit(&Event::stats(id, stats)).is_err() {
                return Ok(EventsEnd::OutputClosed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_look_like_runcs() {
        assert_eq!(serde_json::to_string(&Event::oom("c1")).unwrap(), r#"{"type":"oom","id":"c1"}"#);
        let s = serde_json::to_string(&Event::stats("c1", Stats::default())).unwrap();
        assert!(s.starts_with(r#"{"type":"stats","id":"c1","data":{"cpu":"#), "{s}");
    }
}
