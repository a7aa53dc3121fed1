//! One registry over HTTP (the OCI distribution API): scheme choice, authentication, retries,
//! redirects and the limits that keep a hostile registry from doing harm.
//!
//! * `https`, or plain `http` only for a registry that is insecure (registries.conf or
//!   `--tls-verify=false`), tried after `https` fails to connect;
//! * `401` answers with their `WWW-Authenticate` challenge: `Bearer` (a token fetched from the
//!   realm for the request's scopes, with the credentials if there are any) or `Basic`;
//! * `429` and `5xx` answers, and connections that fail, are retried with backoff (four times);
//! * redirects are followed by hand (GET and HEAD only, at most five, never twice to the same
//!   place); credentials go only to the registry's own host;
//! * every document read is bounded (the caller says how much it accepts).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http;

use super::auth::{self, AuthFiles, Credentials};
use super::conf::Registries;
use super::reference::{DOCKER_HUB, DOCKER_HUB_API};
use super::tls;

const MAX_REDIRECTS: usize = 5;
const MAX_RETRIES: u32 = 4;
/// The largest error body or token answer read.
const MAX_SMALL_BODY: u64 = 1 << 20;
const USER_AGENT: &str = concat!("strata-rootfs/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{registry}: {what}: connecting with HTTPS failed (a registry serving plain HTTP needs --tls-verify=false or insecure = true in registries.conf)"
    )]
    Https {
        registry: String,
        what: String,
        #[source]
        source: ureq::Error,
    },
    #[error("{registry}: {what}")]
    Connect {
        registry: String,
        what: String,
        #[source]
        source: ureq::Error,
    },
    #[error(
        "{registry}: {what}: authentication required{detail} (log in with `strata-rootfs login {registry}`, or give --creds)"
    )]
    NoCredentials { registry: String, what: String, detail: String },
    #[error("{registry}: {what}: the registry refused the credentials{detail}")]
    BadCredentials { registry: String, what: String, detail: String },
    #[error("{registry}: {what}: access denied{detail}")]
    Denied { registry: String, what: String, detail: String },
    #[error("{registry}: the token server {realm} answered {status}{detail}")]
    Token { registry: String, realm: String, status: u16, detail: String },
    #[error("{registry}: the token server {realm} gave no token")]
    NoToken { registry: String, realm: String },
    #[error("{registry}: {what}: unsupported authentication challenge {challenge:?}")]
    Challenge { registry: String, what: String, challenge: String },
    #[error("{registry}: {what}: redirected in a loop or more than {MAX_REDIRECTS} times ({chain})")]
    RedirectLoop { registry: String, what: String, chain: String },
    #[error("{registry}: {what}: a redirect without a usable Location")]
    BadRedirect { registry: String, what: String },
    #[error("{registry}: {what}: answered {status}{detail}")]
    Status { registry: String, what: String, status: u16, detail: String },
    #[error("{registry}: {what}: reading the answer")]
    Read {
        registry: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{registry}: {what}: the answer is larger than the {limit} bytes accepted")]
    TooLarge { registry: String, what: String, limit: u64 },
    #[error("{registry}: TLS settings")]
    Tls {
        registry: String,
        #[source]
        source: tls::Error,
    },
    #[error("{registry}: reading the file being uploaded")]
    Upload {
        registry: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] auth::Error),
}

/// How to reach registries: what the command line and the configuration files say.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub conf: Registries,
    pub auth: AuthFiles,
    /// `--creds USER:PASS`: used for every registry of the command.
    pub creds: Option<Credentials>,
    /// `--tls-verify`: `Some(false)` makes every registry insecure, `Some(true)` none.
    pub tls_verify: Option<bool>,
    /// `--cert-dir`: the registry's CAs and client certificate, instead of certs.d.
    pub cert_dir: Option<PathBuf>,
}

impl Access {
    /// A client for `registry` (`host[:port]`), insecure when the configuration says so for this
    /// location (`conf_insecure`) unless `--tls-verify` decides.
    pub fn client(&self, registry: &str, repository: &str, conf_insecure: bool) -> Result<Client, Error> {
        let insecure = match self.tls_verify {
            Some(v) => !v,
            None => conf_insecure || self.conf.insecure(registry),
        };
        let creds = match &self.creds {
            Some(c) => Some(c.clone()),
            None => self.auth.lookup(registry, repository)?,
        };
        Client::new(registry, insecure, creds, self.cert_dir.as_deref())
    }
}

/// A request body that can be sent again (for retries).
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset`.
    File {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

/// One request: `target` is a path on the registry (`/v2/...`) or an absolute URL (an upload
/// location); `scopes` are the token scopes it needs (`repository:NAME:pull`).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: http::Method,
    pub target: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    pub scopes: &'a [String],
    /// For messages: what this request does ("fetching the manifest of x:1").
    pub what: String,
}

impl<'a> Request<'a> {
    pub fn new(method: http::Method, target: impl Into<String>, scopes: &'a [String], what: impl Into<String>) -> Self {
        Self { method, target: target.into(), headers: Vec::new(), body: Body::Empty, scopes, what: what.into() }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

#[derive(Debug, Default)]
struct AuthState {
    challenge: Option<Challenge>,
    /// Scopes (joined) -> token.
    tokens: HashMap<String, String>,
}

pub type Response = http::Response<ureq::Body>;

/// A connection to one registry.
#[derive(Debug)]
pub struct Client {
    /// As the user names it (messages, credentials).
    registry: String,
    /// Where to connect (`docker.io` is served by `registry-1.docker.io`).
    host: String,
    insecure: bool,
    creds: Option<Credentials>,
    agent: ureq::Agent,
    /// `https://host` or, insecure and after https failed, `http://host`; chosen by the ping.
    base: Mutex<Option<String>>,
    state: Mutex<AuthState>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Client {
    pub fn new(
        registry: &str,
        insecure: bool,
        creds: Option<Credentials>,
        cert_dir: Option<&std::path::Path>,
    ) -> Result<Self, Error> {
        let host = if registry == DOCKER_HUB { DOCKER_HUB_API.to_string() } else { registry.to_string() };
        let tls = tls::config(&host, cert_dir, !insecure)
            .map_err(|source| Error::Tls { registry: registry.into(), source })?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(USER_AGENT)
            .tls_config(tls)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            // A stalled body is a broken connection: the blob reader resumes it.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build();
        Ok(Self {
            registry: registry.to_string(),
            host,
            insecure,
            creds,
            agent: config.new_agent(),
            base: Mutex::new(None),
            state: Mutex::new(AuthState::default()),
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn has_credentials(&self) -> bool {
        self.creds.is_some()
    }

    /// Check that the registry answers the API (`GET /v2/`), choosing the scheme and, when it
    /// asks for authentication, authenticating with the credentials (for `login`).
    pub fn ping(&self) -> Result<(), Error> {
        let scopes: [String; 0] = [];
        let what = "checking the registry API";
        let resp = self.send(Request::new(http::Method::GET, "/v2/", &scopes, what))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(self.status_error(what, status, resp)),
        }
    }

    fn base(&self, what: &str) -> Result<String, Error> {
        if let Some(b) = lock(&self.base).clone() {
            return Ok(b);
        }
        let https = format!("https://{}", self.host);
        let probe = |base: &str| {
            self.agent.run(Self::build(http::Method::GET, &format!("{base}/v2/"), &[], None, Body::Empty)?)
        };
        let chosen = match probe(&https) {
            Ok(_) => https,
            Err(e) if self.insecure => {
                let plain = format!("http://{}", self.host);
                match probe(&plain) {
                    Ok(_) => plain,
                    Err(_) => {
                        return Err(Error::Connect { registry: self.registry.clone(), what: what.into(), source: e });
                    }
                }
            }
            Err(e @ (ureq::Error::Io(_) | ureq::Error::Protocol(_) | ureq::Error::Tls(_))) => {
                return Err(Error::Https { registry: self.registry.clone(), what: what.into(), source: e });
            }
            Err(e) => return Err(Error::Connect { registry: self.registry.clone(), what: what.into(), source: e }),
        };
        *lock(&self.base) = Some(chosen.clone());
        Ok(chosen)
    }

    fn build(
        method: http::Method,
        url: &str,
        headers: &[(&'static str, String)],
        authorization: Option<&str>,
        body: Body<'_>,
    ) -> Result<http::Request<ureq::SendBody<'static>>, ureq::Error> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        if let Some(a) = authorization {
            b = b.header("Authorization", a);
        }
        let body = match body {
            Body::Empty => {
                b = b.header("Content-Length", "0");
                ureq::SendBody::from_owned_reader(std::io::empty())
            }
            Body::Bytes(bytes) => {
                b = b.header("Content-Length", bytes.len().to_string());
                ureq::SendBody::from_owned_reader(std::io::Cursor::new(bytes.to_vec()))
            }
            Body::File { file, offset, len } => {
                b = b.header("Content-Length", len.to_string());
                let mut f = file.try_clone()?;
                f.seek(SeekFrom::Start(offset))?;
                ureq::SendBody::from_owned_reader(f.take(len))
            }
        };
        Ok(b.body(body)?)
    }

    /// Send `req`, authenticating, retrying and following redirects as needed. The answer may
    /// be any status but 401, 429 and 5xx (after the retries) and 3xx for GET/HEAD.
    pub fn send(&self, req: Request<'_>) -> Result<Response, Error> {
        let base = self.base(&req.what)?;
        let mut url = if req.target.starts_with("http://") || req.target.starts_with("https://") {
            req.target.clone()
        } else {
            format!("{base}{}", req.target)
        };
        let mut visited: Vec<String> = Vec::new();
        let mut authenticated = false;
        let mut retries = 0;
        loop {
            let ours = same_origin(&url, &base);
            let authorization = if ours { self.authorization(req.scopes) } else { None };
            let conn = |e| Error::Connect { registry: self.registry.clone(), what: req.what.clone(), source: e };
            let built = Self::build(req.method.clone(), &url, &req.headers, authorization.as_deref(), req.body)
                .map_err(conn)?;
            let resp = match self.agent.run(built) {
                Ok(r) => r,
                Err(e) if retries < MAX_RETRIES && transient(&e) => {
                    backoff(retries, None);
                    retries += 1;
                    continue;
                }
                Err(e) => return Err(conn(e)),
            };
            let status = resp.status().as_u16();
            match status {
                401 if ours && !authenticated => {
                    authenticated = true;
                    let header =
                        resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    self.authenticate(&header, req.scopes, &req.what)?;
                }
                401 => {
                    let detail = error_detail(resp);
                    let (registry, what) = (self.registry.clone(), req.what.clone());
                    return Err(if self.creds.is_some() {
                        Error::BadCredentials { registry, what, detail }
                    } else {
                        Error::NoCredentials { registry, what, detail }
                    });
                }
                429 | 500 | 502 | 503 | 504 if retries < MAX_RETRIES => {
                    let after =
                        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
                    backoff(retries, after);
                    retries += 1;
                }
                301 | 302 | 303 | 307 | 308 if matches!(req.method, http::Method::GET | http::Method::HEAD) => {
                    let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let Some(next) = location.map(|l| resolve_location(&url, &l)) else {
                        return Err(Error::BadRedirect { registry: self.registry.clone(), what: req.what.clone() });
                    };
                    visited.push(url.clone());
                    if visited.contains(&next) || visited.len() > MAX_REDIRECTS {
                        visited.push(next);
                        return Err(Error::RedirectLoop {
                            registry: self.registry.clone(),
                            what: req.what.clone(),
                            chain: visited.join(" -> "),
                        });
                    }
                    url = next;
                }
                _ => return Ok(resp),
            }
        }
    }

    fn authorization(&self, scopes: &[String]) -> Option<String> {
        let st = lock(&self.state);
        match &st.challenge {
            Some(Challenge::Basic) => self.creds.as_ref().map(Credentials::basic),
            Some(Challenge::Bearer { .. }) => st.tokens.get(&scopes.join(" ")).map(|t| format!("Bearer {t}")),
            None => None,
        }
    }

    /// Answer a `401`: remember the challenge; for Bearer, fetch a token for `scopes`.
    fn authenticate(&self, header: &str, scopes: &[String], what: &str) -> Result<(), Error> {
        let challenge = parse_challenge(header).ok_or_else(|| Error::Challenge {
            registry: self.registry.clone(),
            what: what.into(),
            challenge: header.into(),
        })?;
        lock(&self.state).challenge = Some(challenge.clone());
        match challenge {
            Challenge::Basic if self.creds.is_none() => {
                Err(Error::NoCredentials { registry: self.registry.clone(), what: what.into(), detail: String::new() })
            }
            Challenge::Basic => Ok(()),
            Challenge::Bearer { realm, service } => {
                let token = self.fetch_token(&realm, service.as_deref(), scopes)?;
                lock(&self.state).tokens.insert(scopes.join(" "), token);
                Ok(())
            }
        }
    }

    fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String, Error> {
        let mut url = realm.to_string();
        let mut sep = if realm.contains('?') { '&' } else { '?' };
        if let Some(s) = service {
            url.push_str(&format!("{sep}service={}", query_escape(s)));
            sep = '&';
        }
        for s in scopes {
            url.push_str(&format!("{sep}scope={}", query_escape(s)));
            sep = '&';
        }
        let authorization = self.creds.as_ref().map(Credentials::basic);
        let terr = |e| Error::Connect {
            registry: self.registry.clone(),
            what: format!("asking {realm} for a token"),
            source: e,
        };
        let req = Self::build(http::Method::GET, &url, &[], authorization.as_deref(), Body::Empty).map_err(terr)?;
        let resp = self.agent.run(req).map_err(terr)?;
        let status = resp.status().as_u16();
        if status == 401 {
            let detail = error_detail(resp);
            return Err(if self.creds.is_some() {
                Error::BadCredentials {
                    registry: self.registry.clone(),
                    what: format!("asking {realm} for a token"),
                    detail,
                }
            } else {
                Error::NoCredentials {
                    registry: self.registry.clone(),
                    what: format!("asking {realm} for a token"),
                    detail,
                }
            });
        }
        if status != 200 {
            return Err(Error::Token {
                registry: self.registry.clone(),
                realm: realm.into(),
                status,
                detail: error_detail(resp),
            });
        }
        let bytes = self.read_limited(resp, MAX_SMALL_BODY, &format!("reading the token from {realm}"))?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        v["token"]
            .as_str()
            .or_else(|| v["access_token"].as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Error::NoToken { registry: self.registry.clone(), realm: realm.into() })
    }

    /// Read a whole answer of at most `limit` bytes.
    pub fn read_limited(&self, resp: Response, limit: u64, what: &str) -> Result<Vec<u8>, Error> {
        if resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > limit)
        {
            return Err(Error::TooLarge { registry: self.registry.clone(), what: what.into(), limit });
        }
        let mut buf = Vec::new();
        resp.into_body().into_reader().take(limit + 1).read_to_end(&mut buf).map_err(|source| Error::Read {
            registry: self.registry.clone(),
            what: what.into(),
            source,
        })?;
        if buf.len() as u64 > limit {
            return Err(Error::TooLarge { registry: self.registry.clone(), what: what.into(), limit });
        }
        Ok(buf)
    }

    /// The error for an unexpected status, with what the registry said.
    pub fn status_error(&self, what: &str, status: u16, resp: Response) -> Error {
        let detail = error_detail(resp);
        let (registry, what) = (self.registry.clone(), what.to_string());
        match status {
            403 => Error::Denied { registry, what, detail },
            _ => Error::Status { registry, what, status, detail },
        }
    }
}

/// Whether `url` is on the registry itself (credentials may go there).
fn same_origin(url: &str, base: &str) -> bool {
    url == base || url.starts_with(&format!("{base}/"))
}

/// A `Location` made absolute against the URL that answered it.
fn resolve_location(current: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let origin_end = current.find("://").map_or(0, |i| i + 3);
    let origin = match current[origin_end..].find('/') {
        Some(i) => &current[..origin_end + i],
        None => current,
    };
    if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let dir = current.rsplit_once('/').map_or(current, |(d, _)| d);
        format!("{dir}/{location}")
    }
}

fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound
    )
}

/// 250 ms, 500 ms, 1 s, 2 s; or the registry's `Retry-After` (at most 10 s).
fn backoff(attempt: u32, retry_after: Option<u64>) {
    let wait = match retry_after {
        Some(s) => Duration::from_secs(s.min(10)),
        None => Duration::from_millis(250 << attempt.min(4)),
    };
    std::thread::sleep(wait);
}

/// `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut realm = None;
    let mut service = None;
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], q[end + 1..].trim_start().trim_start_matches(',').trim_start())
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), after[end..].trim_start_matches(',').trim_start())
        };
        match key.as_str() {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            _ => {}
        }
        rest = next;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer { realm: realm?, service }),
        _ => None,
    }
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `: CODE: message` from a registry's error document (or a short excerpt of the body).
fn error_detail(resp: Response) -> String {
    let mut buf = Vec::new();
    if resp.into_body().into_reader().take(64 << 10).read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap_or_default();
    if let Some(errors) = v["errors"].as_array() {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| {
                format!("{} {}", e["code"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or(""))
                    .trim()
                    .to_string()
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return format!(": {}", parts.join("; "));
        }
    }
    let text: String = String::from_utf8_lossy(&buf).chars().filter(|c| !c.is_control()).take(200).collect();
    if text.trim().is_empty() { String::new() } else { format!(": {}", text.trim()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Bearer service=x"), None, "a Bearer challenge needs a realm");
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn locations() {
        assert_eq!(resolve_location("http://h:1/v2/a/blobs/x", "/v2/b"), "http://h:1/v2/b");
        assert_eq!(resolve_location("http://h:1/v2/a/blobs/x", "https://o/y"), "https://o/y");
        assert_eq!(resolve_location("http://h:1/v2/a/blobs/x", "y"), "http://h:1/v2/a/blobs/y");
        assert!(same_origin("http://h:1/v2/", "http://h:1"));
        assert!(!same_origin("http://h:10/v2/", "http://h:1"));
        assert_eq!(query_escape("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
