//! The public error of the runtime: one chain per failure, classified by [`ErrorKind`].
//!
//! Module errors are `thiserror` enums named after the failing operation; they convert into
//! [`Error`] with a kind, and `main` prints the chain once, joined with ": ".

use std::error::Error as StdError;
use std::fmt;

/// What class of failure happened; decides exit codes and the wording clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The container (or a file the user named) does not exist.
    NotFound,
    /// A container with this id already exists.
    AlreadyExists,
    /// The bundle's config.json or a command-line value is invalid.
    InvalidSpec,
    /// The operation is not allowed in the container's current status.
    InvalidState,
    /// The kernel or the machine refused for lack of privilege.
    PermissionDenied,
    /// A feature that is recognised but not implemented.
    Unsupported,
    /// Anything else: a system call failed, a child died, ...
    Other,
}

/// A runtime failure: a kind plus the chain of causes.
pub struct Error {
    kind: ErrorKind,
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl Error {
    pub fn new<E>(kind: ErrorKind, source: E) -> Self
    where
        E: Into<Box<dyn StdError + Send + Sync + 'static>>,
    {
        Self { kind, source: source.into() }
    }

    /// An error that is only a message (no underlying cause).
    pub fn msg(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, Message(message.into()))
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The whole chain on one line: "outer: inner: errno text".
    pub fn chain(&self) -> String {
        let mut out = self.source.to_string();
        let mut next = self.source.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            // A wrapper may already have spelled out its cause; do not say it twice.
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = cause.source();
        }
        out
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.chain())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.chain())
    }
}

/// A plain message used as the root of a chain.
#[derive(Debug)]
pub struct Message(pub String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// Classify an errno the way clients expect (podman maps "permission denied" to exit 126).
pub fn kind_of_errno(errno: nix::errno::Errno) -> ErrorKind {
    use nix::errno::Errno;
    match errno {
        Errno::EPERM | Errno::EACCES => ErrorKind::PermissionDenied,
        Errno::ENOENT => ErrorKind::NotFound,
        Errno::EEXIST => ErrorKind::AlreadyExists,
        Errno::EINVAL => ErrorKind::InvalidSpec,
        Errno::ENOSYS | Errno::EOPNOTSUPP => ErrorKind::Unsupported,
        _ => ErrorKind::Other,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("mount proc on /proc")]
        Mount(#[source] std::io::Error),
    }

    #[test]
    fn chain_joins_every_cause_once() {
        let io = std::io::Error::from_raw_os_error(libc::EPERM);
        let err = Error::new(ErrorKind::PermissionDenied, Outer::Mount(io));
        assert_eq!(err.chain(), "mount proc on /proc: Operation not permitted (os error 1)");
    }
}
