//! Container ids: the only names that become directories under the state root.

use std::fmt;

/// A validated container id: `[A-Za-z0-9_+.-]+`, not `.` or `..`, at most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidId {
    #[error("container id cannot be empty")]
    Empty,
    #[error("invalid container id {0:?}: only letters, digits and _ + . - are allowed")]
    BadCharacter(String),
    #[error("invalid container id {0:?}")]
    Dots(String),
    #[error("invalid container id: longer than 1024 bytes")]
    TooLong,
}

impl ContainerId {
    pub fn parse(id: &str) -> Result<Self, InvalidId> {
        if id.is_empty() {
            return Err(InvalidId::Empty);
        }
        if id.len() > 1024 {
            return Err(InvalidId::TooLong);
        }
        if id == "." || id == ".." {
            return Err(InvalidId::Dots(id.to_owned()));
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'.' | b'-')) {
            return Err(InvalidId::BadCharacter(id.to_owned()));
        }
        Ok(Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "my-container_1.2+x", "0123456789abcdef", "..a", "a.."] {
            assert!(ContainerId::parse(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_escapes_and_odd_bytes() {
        assert_eq!(ContainerId::parse(""), Err(InvalidId::Empty));
        assert_eq!(ContainerId::parse(".."), Err(InvalidId::Dots("..".into())));
        assert_eq!(ContainerId::parse("."), Err(InvalidId::Dots(".".into())));
        for id in ["a/b", "../x", "a b", "a\0b", "ü", "a:b", "/abs"] {
            assert!(matches!(ContainerId::parse(id), Err(InvalidId::BadCharacter(_))), "{id:?}");
        }
        assert_eq!(ContainerId::parse(&"a".repeat(1025)), Err(InvalidId::TooLong));
    }
}
