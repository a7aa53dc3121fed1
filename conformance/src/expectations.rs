//! Per-runtime expectations: tests of spec requirements that a runtime is known not to meet.
//!
//! A test listed here for the runtime under test is expected to fail on it ([`crate::spec_test`] then
//! reports the failure as expected, and fails if the test unexpectedly passes). Every entry is also
//! documented in `conformance/README.md`. Strata has no entries: it is held to every test.

use crate::runtime::RuntimeKind;

#[derive(Debug)]
pub struct Deviation {
    pub runtime: RuntimeKind,
    /// The test function's name.
    pub test: &'static str,
    /// What the runtime does instead of what the spec says.
    pub reason: &'static str,
}

pub const DEVIATIONS: &[Deviation] = &[];

/// Why `test` is expected to fail on `kind`, if it is.
pub fn deviation(kind: RuntimeKind, test: &str) -> Option<&'static str> {
    DEVIATIONS.iter().find(|d| d.runtime == kind && d.test == test).map(|d| d.reason)
}
