//! runc flags strata accepts but does not act on, and why.
//!
//! | flag | why it is accepted |
//! |------|--------------------|
//! | `--criu PATH` | containerd may pass it; checkpoint/restore is not implemented, so it is unused |
//! | `run --no-subreaper` | runc's foreground `run` makes itself a child subreaper unless told not to; strata never does (the container's init reaps its own descendants, and the init is strata's child), so there is nothing to turn off |
