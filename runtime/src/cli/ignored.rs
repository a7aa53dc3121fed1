//! runc flags strata accepts but does not act on, and why.
//!
//! | flag | why it is accepted |
//! |------|--------------------|
//! | `--criu PATH` | containerd may pass it; checkpoint/restore is not implemented, so it is unused |
//! | `--rootless false` / `auto` as root | strata runs with full privileges as root either way |
//! | `run --no-subreaper` | runc's foreground `run` makes itself a child subreaper unless told not to; strata never does (the container's init reaps its own descendants, and the init is strata's child), so there is nothing to turn off |

use crate::error::{Error, ErrorKind};

/// `--rootless true` needs a user-namespaced setup strata does not do yet; as root, `auto` and
/// `false` mean the same as no flag.
pub fn check_rootless(value: Option<&str>) -> Result<(), Error> {
    match value {
        None | Some("false") | Some("auto") => Ok(()),
        Some("true") if nix::unistd::geteuid().is_root() => Ok(()),
        Some("true") => Err(Error::msg(ErrorKind::Unsupported, "rootless mode is not supported yet")),
        Some(other) => {
            Err(Error::msg(ErrorKind::InvalidSpec, format!("invalid --rootless value {other:?} (true, false or auto)")))
        }
    }
}
