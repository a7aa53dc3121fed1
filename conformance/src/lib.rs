//! Support library of the black-box OCI runtime-spec conformance suite.
//!
//! The tests in `tests/*.rs` drive a runtime binary only through its command line (runc's CLI) and check
//! what a container sees through `strata-probe`, a static helper placed in every test rootfs. The runtime
//! is chosen with `CONFORMANCE_RUNTIME` (see [`Runtime::from_env`]); every test runs through
//! [`spec_test`], which knows the documented per-runtime deviations ([`expectations`]).
//!
//! Everything here panics with a message naming what failed: this is test support code, and a panic is
//! how a test reports.

pub mod bundle;
pub mod cgroupfs;
pub mod console;
pub mod container;
pub mod expectations;
pub mod fail;
pub mod hostmount;
pub mod probe;
pub mod rootfs;
pub mod runner;
pub mod runtime;
mod sys;
pub mod terminal;
pub mod test;
pub mod traces;

pub use bundle::Bundle;
pub use console::ConsoleSocket;
pub use container::{Container, Exit};
pub use fail::OrFail;
pub use runner::Runner;
pub use runtime::{Cmd, Outcome, Runtime, RuntimeKind};
pub use serde_json::{Value, json};
pub use test::{Test, spec_test};
