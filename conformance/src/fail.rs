//! `or_fail`: turn a `Result`/`Option` into its value or a test failure that says what was being done.

use std::fmt::Display;

pub trait OrFail<T> {
    /// The value, or a panic `"<what>: <cause>"`.
    fn or_fail(self, what: impl Display) -> T;
}

impl<T, E: Display> OrFail<T> for Result<T, E> {
    #[track_caller]
    fn or_fail(self, what: impl Display) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

impl<T> OrFail<T> for Option<T> {
    #[track_caller]
    fn or_fail(self, what: impl Display) -> T {
        match self {
            Some(v) => v,
            None => panic!("{what}: missing"),
        }
    }
}
