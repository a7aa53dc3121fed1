//! containers-registries.conf(5): where a name is pulled from. Read from
//! `$CONTAINERS_REGISTRIES_CONF` (or `--registries-conf`), else `$HOME/.config/containers/
//! registries.conf` when it exists, else `/etc/containers/registries.conf`, plus the drop-ins of
//! the matching `registries.conf.d/` (in name order, later files overriding earlier ones).
//!
//! What is used: `unqualified-search-registries` and `[aliases]` for short names; per
//! `[[registry]]` (the longest matching `prefix`): `location` (rewrites the prefix), `insecure`
//! (plain HTTP or an unverified certificate), `blocked`, and `[[registry.mirror]]`s (tried first,
//! with their own `insecure` and `pull-from-mirror`). Without any configuration file a short
//! name means Docker Hub, as for `docker pull`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::reference::{self, DOCKER_HUB, Parsed, Reference};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("{0} is not a valid registries.conf (version 2 format)")]
    Parse(PathBuf, #[source] toml::de::Error),
    #[error("{0}: the alias {1:?} names {2:?}, which is not a fully qualified reference")]
    BadAlias(PathBuf, String, String),
    #[error(
        "short name {0:?}: no unqualified-search-registries are configured ({1}); give a fully qualified name such as docker.io/library/{0}"
    )]
    NoSearchRegistries(String, String),
    #[error("the registry {0} is blocked in registries.conf")]
    Blocked(String),
    #[error(transparent)]
    Reference(#[from] reference::Error),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    #[serde(default)]
    unqualified_search_registries: Option<Vec<String>>,
    #[serde(default)]
    registry: Option<Vec<RegistryEntry>>,
    #[serde(default)]
    aliases: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RegistryEntry {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror: Vec<MirrorEntry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct MirrorEntry {
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    pull_from_mirror: Option<String>,
}

/// The configuration in force.
#[derive(Debug, Clone, Default)]
pub struct Registries {
    search: Option<Vec<String>>,
    registries: Vec<RegistryEntry>,
    aliases: BTreeMap<String, String>,
    /// The files read, for messages (empty: none exist).
    files: Vec<PathBuf>,
}

/// One place to try for an image: where to connect, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The reference rewritten for this location (registry and repository).
    pub reference: Reference,
    /// Plain HTTP allowed and TLS certificates not verified.
    pub insecure: bool,
    pub mirror: bool,
}

impl Registries {
    /// Load the configuration: `path` when given, else the standard files.
    pub fn load(path: Option<&Path>) -> Result<Self, Error> {
        // A file named by the flag or the environment must be there; the standard ones may not.
        let (main, required) = match path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("CONTAINERS_REGISTRIES_CONF").map(PathBuf::from))
        {
            Some(p) => (p, true),
            None => {
                let user = std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".config/containers/registries.conf"))
                    .filter(|p| p.exists());
                (user.unwrap_or_else(|| PathBuf::from("/etc/containers/registries.conf")), false)
            }
        };
        let mut out = Registries::default();
        if required || main.exists() {
            out.merge(&main)?;
        }
        let dropins = main.with_extension("conf.d");
        if let Ok(rd) = std::fs::read_dir(&dropins) {
            let mut names: Vec<PathBuf> =
                rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "conf")).collect();
            names.sort();
            for p in names {
                out.merge(&p)?;
            }
        }
        Ok(out)
    }

    /// Parse one file's text (for tests and for [`Registries::load`]).
    pub fn from_text(path: &Path, text: &str) -> Result<Self, Error> {
        let mut out = Registries::default();
        out.apply(path, text)?;
        Ok(out)
    }

    fn merge(&mut self, path: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Read(path.to_path_buf(), e))?;
        self.apply(path, &text)
    }

    fn apply(&mut self, path: &Path, text: &str) -> Result<(), Error> {
        let f: File = toml::from_str(text).map_err(|e| Error::Parse(path.to_path_buf(), e))?;
        self.files.push(path.to_path_buf());
        if let Some(s) = f.unqualified_search_registries {
            self.search = Some(s);
        }
        for mut r in f.registry.unwrap_or_default() {
            if r.prefix.is_empty() {
                r.prefix = r.location.clone();
            }
            // A later file's entry for the same prefix replaces the earlier one.
            self.registries.retain(|o| o.prefix != r.prefix);
            self.registries.push(r);
        }
        for (k, v) in f.aliases.unwrap_or_default() {
            if Reference::parse_qualified(&v).is_err() {
                return Err(Error::BadAlias(path.to_path_buf(), k, v));
            }
            self.aliases.insert(k, v);
        }
        Ok(())
    }

    /// The fully qualified candidates for what the user typed, in the order to try them.
    pub fn candidates(&self, typed: &str) -> Result<Vec<Reference>, Error> {
        match reference::parse(typed)? {
            Parsed::Qualified(r) => Ok(vec![r.with_default_tag()]),
            Parsed::Short { name, tag, digest } => {
                let keep = |mut r: Reference| {
                    if tag.is_some() || digest.is_some() {
                        r.tag = tag.clone();
                        r.digest = digest.clone();
                    }
                    r.with_default_tag()
                };
                if let Some(target) = self.aliases.get(&name) {
                    return Ok(vec![keep(Reference::parse_qualified(target)?)]);
                }
                match &self.search {
                    Some(list) if !list.is_empty() => {
                        Ok(list.iter().map(|reg| keep(Reference::new(reg, &name, None, None))).collect())
                    }
                    _ if self.files.is_empty() => Ok(vec![keep(Reference::new(DOCKER_HUB, &name, None, None))]),
                    _ => Err(Error::NoSearchRegistries(name, self.describe_files())),
                }
            }
        }
    }

    fn describe_files(&self) -> String {
        let v: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        v.join(", ")
    }

    /// The entry whose prefix matches `name` (`registry/repository`) the longest.
    fn entry_for(&self, name: &str) -> Option<&RegistryEntry> {
        self.registries.iter().filter(|r| prefix_matches(&r.prefix, name)).max_by_key(|r| r.prefix.len())
    }

    /// Whether the registry `host` is insecure (for push, login and direct access).
    pub fn insecure(&self, host: &str) -> bool {
        self.entry_for(host).is_some_and(|r| r.insecure)
    }

    /// Where to pull `r` from: the mirrors of its entry, then its location. A blocked entry is
    /// an error.
    pub fn endpoints(&self, r: &Reference) -> Result<Vec<Endpoint>, Error> {
        let name = r.name();
        let Some(entry) = self.entry_for(&name) else {
            return Ok(vec![Endpoint { reference: r.clone(), insecure: false, mirror: false }]);
        };
        if entry.blocked {
            return Err(Error::Blocked(r.registry.clone()));
        }
        // The matched prefix replaced by a location (a wildcard prefix keeps the whole name).
        let rewrite = |location: &str| -> Reference {
            let rest = if entry.prefix.starts_with("*.") {
                name.split_once('/').map_or("", |(_, repo)| repo).to_string()
            } else {
                name[entry.prefix.len().min(name.len())..].trim_start_matches('/').to_string()
            };
            let full = if rest.is_empty() { location.to_string() } else { format!("{location}/{rest}") };
            let (registry, repository) = full.split_once('/').unwrap_or((&full, ""));
            Reference {
                registry: registry.into(),
                repository: repository.into(),
                tag: r.tag.clone(),
                digest: r.digest.clone(),
            }
        };
        let mut out = Vec::new();
        for m in &entry.mirror {
            let by_digest = r.digest.is_some();
            let wanted = match m.pull_from_mirror.as_deref() {
                Some("digest-only") => by_digest,
                Some("tag-only") => !by_digest,
                _ => true,
            };
            if wanted {
                out.push(Endpoint { reference: rewrite(&m.location), insecure: m.insecure, mirror: true });
            }
        }
        let primary = if entry.location.is_empty() || entry.prefix.starts_with("*.") {
            r.clone()
        } else {
            rewrite(&entry.location)
        };
        out.push(Endpoint { reference: primary, insecure: entry.insecure, mirror: false });
        Ok(out)
    }
}

/// containers' prefix rule: `prefix` matches `name` exactly or up to a `/`, `:` or `@`; a
/// `*.domain` prefix matches any subdomain's registry.
fn prefix_matches(prefix: &str, name: &str) -> bool {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let host = name.split('/').next().unwrap_or("");
        let host = host.split(':').next().unwrap_or(host);
        return host.ends_with(&format!(".{domain}"));
    }
    name == prefix
        || (name.starts_with(prefix) && matches!(name.as_bytes().get(prefix.len()), Some(b'/' | b':' | b'@')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["first.example", "second.example:5000"]

[aliases]
"tool" = "tools.example/team/tool"

[[registry]]
prefix = "docker.io"
location = "hub.internal:5000"
[[registry.mirror]]
location = "mirror.internal/cache"
insecure = true
[[registry.mirror]]
location = "digests.internal"
pull-from-mirror = "digest-only"

[[registry]]
location = "plain.example:5000"
insecure = true

[[registry]]
prefix = "evil.example"
blocked = true
"#;

    fn conf() -> Registries {
        Registries::from_text(Path::new("test.conf"), CONF).unwrap()
    }

    #[test]
    fn short_names_use_aliases_then_search_registries() {
        let c = conf();
        let names: Vec<String> = c.candidates("app:1").unwrap().iter().map(Reference::to_string).collect();
        assert_eq!(names, ["first.example/app:1", "second.example:5000/app:1"]);
        assert_eq!(c.candidates("tool").unwrap()[0].to_string(), "tools.example/team/tool:latest");
        assert_eq!(c.candidates("x.example/app").unwrap()[0].to_string(), "x.example/app:latest");
        let none = Registries::from_text(Path::new("empty.conf"), "").unwrap();
        assert!(matches!(none.candidates("app"), Err(Error::NoSearchRegistries(..))));
        let default = Registries::default();
        assert_eq!(default.candidates("app").unwrap()[0].to_string(), "docker.io/library/app:latest");
    }

    #[test]
    fn mirrors_locations_insecure_and_blocked() {
        let c = conf();
        let r = Reference::parse_qualified("docker.io/library/busybox:1").unwrap();
        let e = c.endpoints(&r).unwrap();
        let shown: Vec<(String, bool)> = e.iter().map(|e| (e.reference.to_string(), e.insecure)).collect();
        assert_eq!(
            shown,
            [
                ("mirror.internal/cache/library/busybox:1".to_string(), true),
                ("hub.internal:5000/library/busybox:1".to_string(), false)
            ]
        );
        let by_digest =
            Reference::parse_qualified(&format!("docker.io/library/busybox@sha256:{}", "b".repeat(64))).unwrap();
        assert_eq!(c.endpoints(&by_digest).unwrap().len(), 3);
        assert!(c.insecure("plain.example:5000"));
        assert!(!c.insecure("plain.example:50000"), "a prefix matches up to a separator only");
        let e = c.endpoints(&Reference::parse_qualified("plain.example:5000/a:1").unwrap()).unwrap();
        assert_eq!((e.len(), e[0].insecure), (1, true));
        assert!(matches!(c.endpoints(&Reference::parse_qualified("evil.example/x").unwrap()), Err(Error::Blocked(_))));
    }

    #[test]
    fn bad_files_are_named() {
        let err = Registries::from_text(Path::new("/x/bad.conf"), "[[registry]\n").unwrap_err();
        assert!(err.to_string().contains("/x/bad.conf"), "{err}");
    }
}
