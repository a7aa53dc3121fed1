//! pause/resume: the v1 freezer hierarchy when mounted (the clients read its state), else
//! the cgroup v2 `cgroup.freeze`. Freezing waits until every task is frozen.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;

use super::dir::{CgroupDir, keyed_value};
use super::{CgroupError, Manager};

/// The freezer's state, as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    /// No freezer, or the cgroup is gone.
    Undefined,
    Thawed,
    Frozen,
}

/// How long a freeze may take before it is given up (runc: about 10 s as well).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who froze a cgroup that is found frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrozenBy {
    /// The cgroup itself (`pause`, or someone else writing its freezer file).
    Itself,
    /// One of its ancestors: thawing the cgroup itself does not let its processes run.
    Parent,
}

enum Freezer {
    V1(CgroupDir),
    V2(CgroupDir),
}

impl Manager {
    fn freezer(&self) -> Option<Freezer> {
        let hs = self.hierarchies();
        if let Some(h) = hs.iter().find(|h| h.has("freezer")) {
            return Some(Freezer::V1(CgroupDir::new(h.dir.clone())));
        }
        hs.iter().find(|h| h.unified).map(|h| Freezer::V2(CgroupDir::new(h.dir.clone())))
    }

    /// Freeze every process of the container and return once they all are frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.freezer().ok_or(CgroupError::NoFreezer)? {
            Freezer::V1(d) => freeze_v1(&d),
            Freezer::V2(d) => freeze_v2(&d),
        }
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer().ok_or(CgroupError::NoFreezer)? {
            Freezer::V1(d) => d.write("freezer.state", "THAWED"),
            Freezer::V2(d) => d.write("cgroup.freeze", "0"),
        }
    }

    /// Whether the container's cgroup is frozen (or freezing) right now, and by whom; `None` when
    /// it is not, or when there is no freezer or no cgroup.
    pub fn frozen_by(&self) -> Result<Option<FrozenBy>, CgroupError> {
        let Some(f) = self.freezer() else { return Ok(None) };
        let read = |d: &CgroupDir, file: &str| match d.read_raw(file) {
            Ok(s) => Ok(Some(s)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENODEV)) => Ok(None),
            Err(source) => Err(CgroupError::Read { path: d.file_path(file), source }),
        };
        Ok(match f {
            Freezer::V1(d) => match read(&d, "freezer.state")?.as_deref().map(str::trim) {
                None | Some("THAWED") => None,
                Some(_) => match read(&d, "freezer.self_freezing")?.as_deref().map(str::trim) {
                    Some("0") => Some(FrozenBy::Parent),
                    _ => Some(FrozenBy::Itself),
                },
            },
            Freezer::V2(d) => {
                if read(&d, "cgroup.freeze")?.as_deref().map(str::trim) == Some("1") {
                    Some(FrozenBy::Itself)
                } else if read(&d, "cgroup.events")?.is_some_and(|t| keyed_value(&t, "frozen") == Some(1)) {
                    Some(FrozenBy::Parent)
                } else {
                    None
                }
            }
        })
    }

    /// A new container's cgroup must not be frozen: its init would stop at once and `create`
    /// would wait for it for ever (runc: "container's cgroup unexpectedly frozen").
    pub fn check_not_frozen(&self) -> Result<(), CgroupError> {
        let path = match self.freezer() {
            Some(Freezer::V1(d) | Freezer::V2(d)) => d.path().to_path_buf(),
            None => return Ok(()),
        };
        match self.frozen_by()? {
            None => Ok(()),
            Some(by) => Err(CgroupError::Frozen { path, by }),
        }
    }

    /// Whether the container is paused; a cgroup that cannot be read counts as not paused.
    pub fn is_frozen(&self) -> bool {
        matches!(self.freezer_state(), Ok(FreezerState::Frozen))
    }

    /// Whether the container is paused (for `state`/`list`: "paused").
    pub fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        let Some(f) = self.freezer() else { return Ok(FreezerState::Undefined) };
        let read = |d: &CgroupDir, file: &str| match d.read_raw(file) {
            Ok(s) => Ok(Some(s)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENODEV)) => Ok(None),
            Err(source) => Err(CgroupError::Read { path: d.file_path(file), source }),
        };
        match f {
            Freezer::V1(d) => {
                for _ in 0..1000 {
                    let Some(state) = read(&d, "freezer.state")? else { return Ok(FreezerState::Undefined) };
                    match state.trim() {
                        "THAWED" => return Ok(FreezerState::Thawed),
                        // Frozen because a parent is, not the container itself: not paused.
                        "FROZEN" => {
                            let own = read(&d, "freezer.self_freezing")?;
                            let parent_only = own.is_some_and(|s| s.trim() == "0");
                            return Ok(if parent_only { FreezerState::Thawed } else { FreezerState::Frozen });
                        }
                        _ => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
                // Still on its way: it was asked to freeze.
                Ok(FreezerState::Frozen)
            }
            Freezer::V2(d) => Ok(match read(&d, "cgroup.freeze")?.as_deref().map(str::trim) {
                None => FreezerState::Undefined,
                Some("1") => FreezerState::Frozen,
                Some(_) => FreezerState::Thawed,
            }),
        }
    }
}

/// v1: a task in an uninterruptible sleep can keep the cgroup FREEZING; asking again (and,
/// now and then, thawing and starting over) gets it through, as runc found.
fn freeze_v1(d: &CgroupDir) -> Result<(), CgroupError> {
    let start = Instant::now();
    for i in 0u32.. {
        if i % 50 == 49 {
            d.write("freezer.state", "THAWED")?;
            std::thread::sleep(Duration::from_millis(10));
        }
        d.write("freezer.state", "FROZEN")?;
        let state = d.read("freezer.state")?;
        match state.trim() {
            "FROZEN" => return Ok(()),
            "FREEZING" if start.elapsed() < FREEZE_TIMEOUT => std::thread::sleep(Duration::from_micros(100)),
            other => {
                let state = other.to_owned();
                thaw_after_failure(|| d.write("freezer.state", "THAWED"));
                return Err(CgroupError::FreezeTimeout { path: d.file_path("freezer.state"), state });
            }
        }
    }
    Ok(())
}

/// v2: set cgroup.freeze, then wait for "frozen 1" in cgroup.events (its changes wake poll).
fn freeze_v2(d: &CgroupDir) -> Result<(), CgroupError> {
    d.write("cgroup.freeze", "1")?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let events = std::fs::File::open(d.file_path("cgroup.events"))
        .map_err(|source| CgroupError::Read { path: d.file_path("cgroup.events"), source })?;
    loop {
        let text = read_from_start(&events)
            .map_err(|source| CgroupError::Read { path: d.file_path("cgroup.events"), source })?;
        if keyed_value(&text, "frozen") == Some(1) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            thaw_after_failure(|| d.write("cgroup.freeze", "0"));
            return Err(CgroupError::FreezeTimeout { path: d.path().to_path_buf(), state: "freezing".into() });
        }
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
        let ms =
            PollTimeout::try_from(left.min(Duration::from_millis(100)).as_millis() as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(CgroupError::Watch { path: d.file_path("cgroup.events"), source: e.into() }),
        }
    }
}

/// Re-read a cgroup file from its start through an open descriptor (re-arms poll).
pub(super) fn read_from_start(f: &std::fs::File) -> std::io::Result<String> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 4096];
    let n = f.read_at(&mut buf, 0)?;
    buf.truncate(n);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// After a failed freeze, try to leave the container running; the freeze error is what the
/// caller needs to see, so a failure here is only printed.
fn thaw_after_failure(thaw: impl FnOnce() -> Result<(), CgroupError>) {
    if let Err(e) = thaw() {
        eprintln!("warning: cannot thaw after a failed freeze: {e}");
    }
}
