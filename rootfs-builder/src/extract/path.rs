//! Normalisation of the names found in a layer tar.

/// Why a name in a layer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    DotDot,
    Nul,
}

impl BadPath {
    pub fn reason(self) -> &'static str {
        match self {
            BadPath::DotDot => "path has a '..' component",
            BadPath::Nul => "path holds a NUL byte",
        }
    }
}

/// Split a tar name into its components relative to the layer root.
///
/// A leading `/` and `.` components are dropped (absolute names are relative to the layer root,
/// as `tar -P` archives expect); `..` is refused outright rather than resolved, so no name can
/// climb above the root however it is spelt. An empty result names the root itself.
pub fn components(name: &[u8]) -> Result<Vec<&[u8]>, BadPath> {
    if name.contains(&0) {
        return Err(BadPath::Nul);
    }
    let mut out = Vec::new();
    for part in name.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(BadPath::DotDot),
            _ => out.push(part),
        }
    }
    Ok(out)
}

pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_root_and_dots() {
        assert_eq!(components(b"./a/./b/").unwrap(), vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(components(b"/etc//passwd").unwrap(), vec![&b"etc"[..], &b"passwd"[..]]);
        assert!(components(b"./").unwrap().is_empty());
    }

    #[test]
    fn refuses_dotdot_anywhere() {
        assert_eq!(components(b"../x"), Err(BadPath::DotDot));
        assert_eq!(components(b"a/../../x"), Err(BadPath::DotDot));
        assert_eq!(components(b"a/.."), Err(BadPath::DotDot));
        assert_eq!(components(b"a\0b"), Err(BadPath::Nul));
        assert_eq!(components(b"..a/b..").unwrap(), vec![&b"..a"[..], &b"b.."[..]]);
    }
}
