//! What clients see of a container (runtime-spec `status`) and the one table of which operation
//! is allowed in which status, with the words runc uses to refuse it (clients match on them:
//! containerd takes "container not running" for a process already gone, podman's exec reads
//! "stopped"). runc keeps the same table in its state machine (libcontainer/container_linux.go).

use super::id::ContainerId;
use crate::error::{Error, ErrorKind};

/// What clients see (runtime-spec `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// An operation on an existing container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Exec,
    /// `exec --ignore-paused`.
    ExecIgnoringPause,
    Kill,
    /// `kill --all`.
    KillAll,
    Pause,
    Resume,
    Update,
    Events,
    Ps,
    Delete,
    /// `delete --force`.
    ForceDelete,
}

/// What an allowed operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Go on.
    Proceed,
    /// Succeed without doing anything: `kill --all` and `ps` of a container whose processes are
    /// gone (runc: exit 0, no output).
    NothingToDo,
}

/// Why an operation is refused, in runc's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("container not running")]
    NotRunning,
    #[error("container already paused")]
    AlreadyPaused,
    #[error("container not paused")]
    NotPaused,
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start a container that is still being created")]
    StartCreating,
    #[error("cannot start an already running container")]
    StartRunning,
    #[error("cannot exec in a stopped container")]
    ExecStopped,
    #[error("cannot exec in a paused container (use --ignore-paused to override)")]
    ExecPaused,
    #[error("container is not stopped: {} (use --force)", .0.as_str())]
    DeleteNotStopped(Status),
}

impl Status {
    /// May `op` run in this status? The one table of the lifecycle.
    pub fn check(self, op: Op) -> Result<Allowed, Refused> {
        use Allowed::{NothingToDo, Proceed};
        use Status::{Created, Creating, Paused, Running, Stopped};
        match (op, self) {
            (Op::Start, Created) => Ok(Proceed),
            (Op::Start, Creating) => Err(Refused::StartCreating),
            (Op::Start, Running | Paused) => Err(Refused::StartRunning),
            (Op::Start, Stopped) => Err(Refused::StartStopped),

            (Op::Exec | Op::ExecIgnoringPause, Created | Running) | (Op::ExecIgnoringPause, Paused) => Ok(Proceed),
            (Op::Exec, Paused) => Err(Refused::ExecPaused),
            (Op::Exec | Op::ExecIgnoringPause, Creating | Stopped) => Err(Refused::ExecStopped),

            (Op::Kill | Op::KillAll, Created | Running | Paused) => Ok(Proceed),
            (Op::Kill, Creating | Stopped) => Err(Refused::NotRunning),
            (Op::KillAll, Creating | Stopped) => Ok(NothingToDo),

            (Op::Pause, Created | Running) => Ok(Proceed),
            (Op::Pause, Paused) => Err(Refused::AlreadyPaused),
            (Op::Resume, Paused) => Ok(Proceed),
            (Op::Resume, Created | Running) => Err(Refused::NotPaused),
            (Op::Pause | Op::Resume, Creating | Stopped) => Err(Refused::NotRunning),

            // The cgroup exists from the start of create, so these work while it runs.
            (Op::Update | Op::Events, Creating | Created | Running | Paused) => Ok(Proceed),
            (Op::Update | Op::Events, Stopped) => Err(Refused::NotRunning),
            (Op::Ps, Creating | Created | Running | Paused) => Ok(Proceed),
            (Op::Ps, Stopped) => Ok(NothingToDo),

            // Processes may be left even when stopped (see delete.rs): delete stops them. A
            // created container's init is killed, as runc and crun do (runc delete.go:
            // `case libcontainer.Created: return killContainer(container)`), although the
            // runtime-spec asks for an error: engines rely on it.
            (Op::Delete, Created | Stopped) | (Op::ForceDelete, _) => Ok(Proceed),
            (Op::Delete, status @ (Creating | Running | Paused)) => Err(Refused::DeleteNotStopped(status)),
        }
    }
}

impl Refused {
    /// The error a client sees for container `id`.
    pub fn into_error(self, id: &ContainerId) -> Error {
        match self {
            Refused::DeleteNotStopped(status) => Error::msg(
                ErrorKind::InvalidState,
                format!("cannot delete container {id} that is not stopped: {} (use --force)", status.as_str()),
            ),
            _ => Error::new(ErrorKind::InvalidState, self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Status; 5] = [Status::Creating, Status::Created, Status::Running, Status::Paused, Status::Stopped];

    #[test]
    fn refusals_say_what_runc_says() {
        let id = ContainerId::parse("c1").unwrap();
        let said = |status: Status, op: Op| status.check(op).unwrap_err().into_error(&id).chain();
        assert_eq!(said(Status::Stopped, Op::Kill), "container not running");
        assert_eq!(said(Status::Stopped, Op::Exec), "cannot exec in a stopped container");
        assert_eq!(said(Status::Running, Op::Start), "cannot start an already running container");
        assert_eq!(
            said(Status::Running, Op::Delete),
            "cannot delete container c1 that is not stopped: running (use --force)"
        );
        assert_eq!(status_kind(Status::Paused, Op::Pause), ErrorKind::InvalidState);
    }

    fn status_kind(status: Status, op: Op) -> ErrorKind {
        status.check(op).unwrap_err().into_error(&ContainerId::parse("c").unwrap()).kind()
    }

    #[test]
    fn only_a_created_container_starts_and_a_forced_delete_always_proceeds() {
        for status in ALL {
            assert_eq!(status.check(Op::Start).is_ok(), status == Status::Created, "{status:?}");
            assert_eq!(status.check(Op::ForceDelete), Ok(Allowed::Proceed), "{status:?}");
            let deletes = matches!(status, Status::Created | Status::Stopped);
            assert_eq!(status.check(Op::Delete).is_ok(), deletes, "{status:?}");
        }
        assert_eq!(Status::Stopped.check(Op::KillAll), Ok(Allowed::NothingToDo));
        assert_eq!(Status::Stopped.check(Op::Ps), Ok(Allowed::NothingToDo));
        assert_eq!(Status::Paused.check(Op::ExecIgnoringPause), Ok(Allowed::Proceed));
    }
}
