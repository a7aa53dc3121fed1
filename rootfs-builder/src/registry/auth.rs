//! Credentials for registries, found where podman, skopeo and docker keep them:
//!
//! 1. `--creds USER:PASS` (given by the caller);
//! 2. `--authfile FILE` or `$REGISTRY_AUTH_FILE`, else `${XDG_RUNTIME_DIR}/containers/auth.json`
//!    (`/run/containers/UID/auth.json` without it) and `~/.config/containers/auth.json`;
//! 3. `~/.docker/config.json`.
//!
//! In each file `credHelpers` (per registry) and `credsStore` (for all) name a
//! `docker-credential-NAME` helper asked with `get`; `auths` holds base64 `user:password`
//! under a registry (`host[:port]`), a `registry/namespace` (the most specific wins) or the
//! legacy `https://host/v1/` form. `login` writes the containers file (0600), `logout` removes
//! the entry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::base64;
use super::reference::DOCKER_HUB;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the auth file {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("the auth file {0} is not valid JSON")]
    Parse(PathBuf, #[source] serde_json::Error),
    #[error("the auth file {0} holds a malformed \"auth\" for {1} (expected base64 of user:password)")]
    BadEntry(PathBuf, String),
    #[error("writing the auth file {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("running the credential helper docker-credential-{0}")]
    Helper(String, #[source] std::io::Error),
    #[error("the credential helper docker-credential-{0} failed: {1}")]
    HelperFailed(String, String),
    #[error("not logged in to {0} (no entry in {1})")]
    NotLoggedIn(String, String),
}

/// A user name and password (or token). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

impl Credentials {
    /// `USER:PASS` as `--creds` takes it (the password may hold colons).
    pub fn parse(s: &str) -> Option<Self> {
        let (u, p) = s.split_once(':')?;
        (!u.is_empty()).then(|| Self { username: u.into(), password: p.into() })
    }

    /// The `Authorization: Basic` value.
    pub fn basic(&self) -> String {
        format!("Basic {}", base64::encode(format!("{}:{}", self.username, self.password).as_bytes()))
    }
}

/// Where credentials are looked up and written.
#[derive(Debug, Clone, Default)]
pub struct AuthFiles {
    /// `--authfile`, else `$REGISTRY_AUTH_FILE`.
    pub explicit: Option<PathBuf>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// `host[:port]` of an auth file key (`https://index.docker.io/v1/` -> `docker.io`).
fn normalize_key(key: &str) -> String {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let k = k.strip_suffix("/v1/").or_else(|| k.strip_suffix("/v2/")).unwrap_or(k).trim_end_matches('/');
    match k {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other
            .strip_prefix("index.docker.io/")
            .map_or_else(|| other.to_string(), |rest| format!("{DOCKER_HUB}/{rest}")),
    }
}

impl AuthFiles {
    pub fn new(explicit: Option<PathBuf>) -> Self {
        Self { explicit: explicit.or_else(|| std::env::var_os("REGISTRY_AUTH_FILE").map(PathBuf::from)) }
    }

    /// The containers auth file `login` writes.
    pub fn write_path(&self) -> PathBuf {
        if let Some(p) = &self.explicit {
            return p.clone();
        }
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) => PathBuf::from(d).join("containers/auth.json"),
            None => PathBuf::from(format!("/run/containers/{}/auth.json", nix::unistd::getuid())),
        }
    }

    /// Every file looked in, in order.
    pub fn lookup_paths(&self) -> Vec<PathBuf> {
        let mut v = vec![self.write_path()];
        if self.explicit.is_none()
            && let Some(h) = home()
        {
            let config = std::env::var_os("XDG_CONFIG_HOME").map_or_else(|| h.join(".config"), PathBuf::from);
            v.push(config.join("containers/auth.json"));
        }
        if let Some(h) = home() {
            v.push(h.join(".docker/config.json"));
        }
        v
    }

    /// Credentials for `repository` on `registry`, if any file or helper has them.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credentials>, Error> {
        for path in self.lookup_paths() {
            let Some(doc) = read(&path)? else { continue };
            if let Some(c) = from_document(&path, &doc, registry, repository)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Record `creds` for `registry` in the containers auth file (created 0600).
    pub fn login(&self, registry: &str, creds: &Credentials) -> Result<PathBuf, Error> {
        let path = self.write_path();
        let mut doc = read(&path)?.unwrap_or_else(|| json!({}));
        if !doc["auths"].is_object() {
            doc["auths"] = json!({});
        }
        let auth = base64::encode(format!("{}:{}", creds.username, creds.password).as_bytes());
        doc["auths"][registry] = json!({ "auth": auth });
        write(&path, &doc)?;
        Ok(path)
    }

    /// Remove the entry of `registry` (every form of its key); `all` removes every entry.
    pub fn logout(&self, registry: Option<&str>) -> Result<PathBuf, Error> {
        let path = self.write_path();
        let Some(mut doc) = read(&path)? else {
            return match registry {
                Some(r) => Err(Error::NotLoggedIn(r.to_string(), path.display().to_string())),
                None => Ok(path),
            };
        };
        match registry {
            None => doc["auths"] = json!({}),
            Some(r) => {
                let removed = doc["auths"].as_object_mut().map(|auths| {
                    let before = auths.len();
                    auths.retain(|k, _| normalize_key(k) != r);
                    before != auths.len()
                });
                if removed != Some(true) {
                    return Err(Error::NotLoggedIn(r.to_string(), path.display().to_string()));
                }
            }
        }
        write(&path, &doc)?;
        Ok(path)
    }
}

fn read(path: &Path) -> Result<Option<Value>, Error> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Some(json!({}))),
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::Parse(path.to_path_buf(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Read(path.to_path_buf(), e)),
    }
}

fn write(path: &Path, doc: &Value) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let werr = |e| Error::Write(path.to_path_buf(), e);
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(werr)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        let mut bytes = serde_json::to_vec_pretty(doc).unwrap_or_default();
        bytes.push(b'\n');
        f.write_all(&bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err()
        && let Err(_already_gone) = std::fs::remove_file(&tmp)
    {
        // Nothing was created, or it is gone: the write error is what matters.
    }
    res.map_err(werr)
}

/// Look `registry`/`repository` up in one auth document.
fn from_document(path: &Path, doc: &Value, registry: &str, repository: &str) -> Result<Option<Credentials>, Error> {
    if let Some(helpers) = doc["credHelpers"].as_object() {
        for (k, v) in helpers {
            if normalize_key(k) == registry
                && let Some(h) = v.as_str()
            {
                return helper_get(h, registry);
            }
        }
    }
    if let Some(auths) = doc["auths"].as_object() {
        // The most specific key first: registry/ns/repo, registry/ns, registry.
        let full = format!("{registry}/{repository}");
        let mut best: Option<(usize, &Value, &String)> = None;
        for (k, v) in auths {
            let nk = normalize_key(k);
            let matches = nk == registry || (full.starts_with(&nk) && full.as_bytes().get(nk.len()) == Some(&b'/'));
            if matches && best.is_none_or(|(len, _, _)| nk.len() > len) {
                best = Some((nk.len(), v, k));
            }
        }
        if let Some((_, v, k)) = best
            && let Some(auth) = v["auth"].as_str().filter(|a| !a.is_empty())
        {
            let bad = || Error::BadEntry(path.to_path_buf(), k.clone());
            let decoded = base64::decode(auth).ok_or_else(bad)?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            return Credentials::parse(&text).map(Some).ok_or_else(bad);
        }
    }
    if let Some(store) = doc["credsStore"].as_str().filter(|s| !s.is_empty()) {
        return helper_get(store, registry);
    }
    Ok(None)
}

/// `docker-credential-NAME get`, the server on stdin; "not found" is no credentials.
fn helper_get(name: &str, registry: &str) -> Result<Option<Credentials>, Error> {
    let server = if registry == DOCKER_HUB { "https://index.docker.io/v1/".to_string() } else { registry.to_string() };
    let herr = |e| Error::Helper(name.to_string(), e);
    let mut child = Command::new(format!("docker-credential-{name}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(herr)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(server.as_bytes()).map_err(herr)?;
    }
    let out = child.wait_with_output().map_err(herr)?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let said = if err.is_empty() { text } else { err };
        if said.to_ascii_lowercase().contains("not found") {
            return Ok(None);
        }
        return Err(Error::HelperFailed(name.to_string(), said));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| Error::HelperFailed(name.to_string(), e.to_string()))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some(u), Some(s)) if !s.is_empty() => Ok(Some(Credentials { username: u.into(), password: s.into() })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_and_the_most_specific_wins() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("http://localhost:5000/"), "localhost:5000");
        let doc = json!({"auths": {
            "reg.example:5000": {"auth": base64::encode(b"plain:one")},
            "reg.example:5000/team": {"auth": base64::encode(b"team:two:with:colons")},
            "https://index.docker.io/v1/": {"auth": base64::encode(b"hub:three")},
        }});
        let p = Path::new("x.json");
        let get = |r: &str, repo: &str| from_document(p, &doc, r, repo).unwrap().map(|c| (c.username, c.password));
        assert_eq!(get("reg.example:5000", "other/app"), Some(("plain".into(), "one".into())));
        assert_eq!(get("reg.example:5000", "team/app"), Some(("team".into(), "two:with:colons".into())));
        assert_eq!(get("docker.io", "library/busybox"), Some(("hub".into(), "three".into())));
        assert_eq!(get("reg.example:5001", "x"), None);
        let bad = json!({"auths": {"r.example": {"auth": "%%%"}}});
        assert!(matches!(from_document(p, &bad, "r.example", "x"), Err(Error::BadEntry(..))));
    }

    #[test]
    fn login_writes_0600_and_logout_removes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("strata-auth-unit-{}", std::process::id()));
        let files = AuthFiles { explicit: Some(dir.join("sub/auth.json")) };
        let creds = Credentials { username: "u".into(), password: "p".into() };
        let path = files.login("127.0.0.1:5400", &creds).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(files.lookup("127.0.0.1:5400", "x").unwrap(), Some(creds));
        files.logout(Some("127.0.0.1:5400")).unwrap();
        assert_eq!(files.lookup("127.0.0.1:5400", "x").unwrap(), None);
        assert!(matches!(files.logout(Some("127.0.0.1:5400")), Err(Error::NotLoggedIn(..))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
