//! Which of the two on-disk forms a store holds, recorded in its `format` file when it is made.
//!
//! root's store is what a privileged overlay mounts: files owned by the image's uid/gid,
//! `trusted.overlay.*` attributes. An unprivileged user can neither chown nor set `trusted.*`:
//! its store holds the caller's files with the image's owner in `user.strata.owner`, and
//! `user.overlay.*` attributes (an overlay mounted with `userxattr`). One form read as the other
//! would show wrong owners and ignore opaque directories, so a store is opened only by the kind
//! of user that made it.

use std::fs;
use std::io;
use std::path::Path;

use crate::extract::OverlayXattrs;

/// The marker file, directly under the store's root.
pub const FORMAT_FILE: &str = "format";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Written by root: image owners, `trusted.overlay.*`.
    Root,
    /// Written by an unprivileged user: owners in `user.strata.owner`, `user.overlay.*`.
    Rootless,
}

impl Format {
    /// The form the calling process writes.
    pub fn of_caller() -> Self {
        if nix::unistd::geteuid().is_root() { Format::Root } else { Format::Rootless }
    }

    pub fn overlay(self) -> OverlayXattrs {
        match self {
            Format::Root => OverlayXattrs::Trusted,
            Format::Rootless => OverlayXattrs::User,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Root => "root",
            Format::Rootless => "rootless",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "root" => Some(Format::Root),
            "rootless" => Some(Format::Rootless),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Format::Root => "root (image owners, trusted.overlay attributes)",
            Format::Rootless => "an unprivileged user (owners in user.strata.owner, user.overlay attributes)",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the store's format file {0}")]
    Read(String, #[source] io::Error),
    #[error("writing the store's format file {0}")]
    Write(String, #[source] io::Error),
    #[error("the store's format file {0} says {1:?} (expected \"root\" or \"rootless\")")]
    Unknown(String, String),
    #[error(
        "the store {store} was written by {}; it cannot be used by {} (give --store DIR for a store of your own)",
        found.describe(), wanted.describe()
    )]
    Mismatch { store: String, found: Format, wanted: Format },
}

/// Check that the store at `root` holds `wanted`, recording it in a store that has no format
/// file yet. A store made before the file existed (no file, but layers) is root's.
pub fn check_or_record(root: &Path, wanted: Format) -> Result<(), Error> {
    let path = root.join(FORMAT_FILE);
    let shown = path.display().to_string();
    let found = match fs::read_to_string(&path) {
        Ok(s) => Format::parse(&s).ok_or_else(|| Error::Unknown(shown.clone(), s.trim().to_string()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let has_layers = fs::read_dir(root.join("layers")).is_ok_and(|mut d| d.next().is_some());
            if has_layers {
                Format::Root
            } else {
                // Written whole or not at all: a concurrent first opener writes the same bytes.
                let tmp = root.join(format!("{FORMAT_FILE}.{}", std::process::id()));
                fs::write(&tmp, format!("{}\n", wanted.name()))
                    .and_then(|()| fs::rename(&tmp, &path))
                    .map_err(|e| Error::Write(shown.clone(), e))?;
                wanted
            }
        }
        Err(e) => return Err(Error::Read(shown, e)),
    };
    if found != wanted {
        return Err(Error::Mismatch { store: root.display().to_string(), found, wanted });
    }
    Ok(())
}
