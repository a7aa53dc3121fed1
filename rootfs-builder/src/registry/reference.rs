//! Image references: `[registry/]name[:tag][@digest]`, with Docker's grammar and normalisation
//! (`docker.io` for a name without a registry, `library/` for a one-component Docker Hub name).
//!
//! The first component is a registry when it has a `.` or a `:`, or is `localhost`; otherwise
//! the name is *short* and [`crate::registry::conf`] decides where it lives.

use std::fmt;

use crate::digest::Digest;

pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's API is served.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
const MAX_NAME: usize = 255;
const MAX_TAG: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid image reference {0:?}: {1}")]
    Invalid(String, &'static str),
    #[error("invalid image reference {0:?}")]
    Digest(String, #[source] crate::digest::Error),
}

/// A fully qualified reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]`, `docker.io` for Docker Hub.
    pub registry: String,
    /// `library/busybox`, `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// A reference as written: qualified, or a short name awaiting registries.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Qualified(Reference),
    /// A name without a registry (`busybox`, `team/app`), with its tag and digest.
    Short {
        name: String,
        tag: Option<String>,
        digest: Option<Digest>,
    },
}

fn is_registry(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or a run of '-'.
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        // An empty run is a character outside the grammar (an uppercase letter, '/').
        let ok = sep == "." || sep == "_" || sep == "__" || (!sep.is_empty() && sep.bytes().all(|x| x == b'-'));
        if !ok || i == b.len() {
            return false;
        }
    }
    true
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    let host_ok = if host.starts_with('[') && host.ends_with(']') {
        host[1..host.len() - 1].bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
    } else {
        !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Parse `s` (no transport prefix).
pub fn parse(s: &str) -> Result<Parsed, Error> {
    let bad = |why| Error::Invalid(s.to_string(), why);
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(Digest::parse(d).map_err(|e| Error::Digest(s.to_string(), e))?)),
        None => (s, None),
    };
    // A ':' after the last '/' starts the tag (before it, it is a registry's port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag
        && !valid_tag(t)
    {
        return Err(bad("the tag must be 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"));
    }
    let tag = tag.map(str::to_string);
    let (registry, path) = match name.split_once('/') {
        Some((first, path)) if is_registry(first) => (Some(first), path),
        _ => (None, name),
    };
    if let Some(r) = registry
        && !valid_registry(r)
    {
        return Err(bad("the registry must be a host name or address, with an optional port"));
    }
    if path.is_empty() || path.len() > MAX_NAME || !path.split('/').all(valid_component) {
        return Err(bad(
            "a repository name is lowercase letters and digits in components separated by '/' (and '.', '_', '__' or '-' inside a component)",
        ));
    }
    Ok(match registry {
        Some(r) => Parsed::Qualified(Reference::new(r, path, tag, digest)),
        None => Parsed::Short { name: path.to_string(), tag, digest },
    })
}

impl Reference {
    /// A reference on `registry`, normalised (Docker Hub's names and `library/`).
    pub fn new(registry: &str, repository: &str, tag: Option<String>, digest: Option<Digest>) -> Self {
        let registry = match registry {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
            r => r,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        Self { registry: registry.to_string(), repository, tag, digest }
    }

    /// Parse a reference that must name its registry (a short name is an error).
    pub fn parse_qualified(s: &str) -> Result<Self, Error> {
        match parse(s)? {
            Parsed::Qualified(r) => Ok(r),
            Parsed::Short { .. } => Err(Error::Invalid(s.to_string(), "name the registry (host[:port]/name)")),
        }
    }

    /// `:latest` when neither a tag nor a digest is given.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag or digest to ask the registry's manifest endpoint for.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// The name the store records: `registry/repository:tag`, or `…@digest` when pulled by
    /// digest alone.
    pub fn store_name(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{}:{t}", self.name()),
            (None, Some(d)) => format!("{}@{d}", self.name()),
            (None, None) => format!("{}:latest", self.name()),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Reference {
        match parse(s).unwrap() {
            Parsed::Qualified(r) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn qualified_names_and_docker_hub_rules() {
        let r = q("localhost:5000/app:1.0");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "app", Some("1.0"))
        );
        assert_eq!(r.store_name(), "localhost:5000/app:1.0");
        let r = q("docker.io/busybox");
        assert_eq!(r.repository, "library/busybox");
        assert_eq!(r.with_default_tag().store_name(), "docker.io/library/busybox:latest");
        assert_eq!(q("index.docker.io/team/x:1").to_string(), "docker.io/team/x:1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = q(&format!("127.0.0.1:5400/a/b@{d}"));
        assert_eq!(r.manifest_ref(), d);
        assert_eq!(r.store_name(), format!("127.0.0.1:5400/a/b@{d}"));
        assert_eq!(q("[::1]:5000/x").registry, "[::1]:5000");
    }

    #[test]
    fn short_names() {
        assert_eq!(
            parse("busybox:1").unwrap(),
            Parsed::Short { name: "busybox".into(), tag: Some("1".into()), digest: None }
        );
        assert!(matches!(parse("team/app").unwrap(), Parsed::Short { .. }));
        assert!(Reference::parse_qualified("busybox").is_err());
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in ["", "UPPER/x", "a//b", "x:", "x:-t", "host:5000/", "a/b@sha256:12", "-x", "x_", "h:99999x/y"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
