//! The public error of the runtime: one chain per failure, classified by [`ErrorKind`].
//!
//! Module errors are `thiserror` enums named after the failing operation; they convert into
//! [`Error`] with a kind, and `main` prints the chain once, joined with ": ".

use std::error::Error as StdError;
use std::fmt;

/// What class of failure happened; decides exit codes and the wording clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

    /// The same failure as the cause of `what` ("unable to start container process"): the chain
    /// gains one link in front, the kind stays.
    pub fn context(self, what: &'static str) -> Self {
        Self { kind: self.kind, source: Box::new(Context { what, source: self.source }) }
    }

    /// The links of the chain, outermost first.
    pub fn links(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        let first: &(dyn StdError + 'static) = self.source.as_ref();
        std::iter::successors(Some(first), |e: &&(dyn StdError + 'static)| (*e).source())
    }

    /// The whole chain on one line: "outer: inner: errno text". Every link says only its own
    /// part (see DESIGN: messages never repeat their cause), so each is printed once.
    pub fn chain(&self) -> String {
        self.links().map(describe).collect::<Vec<_>>().join(": ")
    }
}

/// A link put in front of a chain by [`Error::context`].
#[derive(Debug)]
struct Context {
    what: &'static str,
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

impl StdError for Context {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.source.as_ref())
    }
}

/// One link of the chain. System errors are spelled as runc (Go) spells them, lowercase and
/// without the errno name: clients match on "no such file or directory", "permission denied".
fn describe(e: &(dyn StdError + 'static)) -> String {
    match errno_of(e) {
        Some(n) => errno_text(n),
        None => e.to_string(),
    }
}

/// The system error a link is, if it is one (an `Errno`, or an `io::Error` from the OS).
pub fn errno_of(e: &(dyn StdError + 'static)) -> Option<nix::errno::Errno> {
    let errno = e.downcast_ref::<nix::errno::Errno>().copied().or_else(|| {
        e.downcast_ref::<std::io::Error>().and_then(|io| io.raw_os_error()).map(nix::errno::Errno::from_raw)
    });
    errno.filter(|n| *n != nix::errno::Errno::UnknownErrno)
}

/// strerror text, lowercased: "no such file or directory".
pub fn errno_text(n: nix::errno::Errno) -> String {
    let desc = n.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => desc.to_owned(),
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
        assert_eq!(err.chain(), "mount proc on /proc: operation not permitted");
        let nix_err = Error::new(ErrorKind::NotFound, Outer::Mount(std::io::Error::from(nix::errno::Errno::ENOENT)));
        assert_eq!(nix_err.chain(), "mount proc on /proc: no such file or directory");
    }

    #[test]
    fn context_adds_a_link_in_front_and_keeps_the_kind() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let err = Error::new(ErrorKind::NotFound, Outer::Mount(io)).context("unable to start container process");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.chain(), "unable to start container process: mount proc on /proc: no such file or directory");
    }
}
