//! Where the store is when `--store` is not given: `/var/lib/strata` for root; for anyone else
//! `$XDG_DATA_HOME/strata`, else `$HOME/.local/share/strata` (the XDG base directory rule, as
//! podman's rootless storage uses), made 0700: the layers hold the image's files as they are.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// root's store.
pub const ROOT_STORE: &str = "/var/lib/strata";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no store for a non-root user: neither $XDG_DATA_HOME nor $HOME is an absolute path (give --store DIR)")]
    NoHome,
    #[error("creating the store directory {0} (give --store DIR to use another)")]
    Create(PathBuf, #[source] io::Error),
}

/// The default store of the calling user, created (0700) when it is not root's.
pub fn default_store() -> Result<PathBuf, Error> {
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from(ROOT_STORE));
    }
    let var = |name| std::env::var_os(name).map(PathBuf::from).filter(|p| p.is_absolute());
    let dir = match (var("XDG_DATA_HOME"), var("HOME")) {
        (Some(data), _) => data.join("strata"),
        (None, Some(home)) => home.join(".local/share/strata"),
        (None, None) => return Err(Error::NoHome),
    };
    create_private(&dir)?;
    Ok(dir)
}

fn create_private(dir: &Path) -> Result<(), Error> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| Error::Create(dir.to_path_buf(), e))
}
