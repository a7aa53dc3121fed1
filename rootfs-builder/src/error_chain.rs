//! An error and its causes on one line: `what failed: because: because`.
//!
//! Every error type names only its own step and leaves its cause to `source()`, so each cause
//! appears exactly once; the printer does not try to hide repetition.

pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer step")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn joins_each_cause_once() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(chain(&e), "outer step: disk on fire");
    }
}
