//! Warnings: something went wrong on the side (a cleanup after the error being reported, a
//! working directory not restored) that changes nothing about the result. The library collects
//! them; only the command line prints them.

use std::sync::Mutex;

/// One warning: what could not be done, and why.
#[derive(Debug)]
pub struct Warning {
    pub what: String,
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Warning {
    pub fn new(what: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { what: what.into(), cause: Some(Box::new(cause)) }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Warning {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Warnings collected while an operation runs (on any of its threads).
#[derive(Debug, Default)]
pub struct Warnings(Mutex<Vec<Warning>>);

impl Warnings {
    pub fn push(&self, w: Warning) {
        // A poisoned list means a thread panicked while pushing: keep collecting anyway.
        let mut list = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        list.push(w);
    }

    /// Everything collected so far, oldest first.
    pub fn take(&self) -> Vec<Warning> {
        let mut list = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *list)
    }
}
