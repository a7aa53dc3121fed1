//! Registries for the tests, on 127.0.0.1 ports 5400-5499 only: Debian's `docker-registry`
//! (the CNCF distribution registry) started per test (plain HTTP, or TLS with a CA made here
//! and htpasswd Basic auth, or behind the token server of tests/token-server.py), and a fake
//! registry of canned answers for what a real one never does (cut connections, hostile
//! answers). Everything is stopped and removed when dropped.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A free port in 5400-5499 (the range these tests may use).
pub fn free_port() -> u16 {
    let start = (std::process::id() % 50) as u16;
    for _ in 0..100 {
        let n = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        let port = 5400 + (start + n) % 100;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 127.0.0.1:5400-5499");
}

pub fn require_registry_tools() {
    for (tool, package) in [
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("openssl", "openssl"),
        ("htpasswd", "apache2-utils"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(found, "{tool} is missing: apt-get install {package} (hack/install-deps)");
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How a registry is protected.
#[derive(Debug, Clone)]
pub enum Guard {
    Plain,
    /// TLS with a test CA, htpasswd Basic auth for `user`/`password`.
    TlsBasic {
        user: String,
        password: String,
    },
    /// Plain HTTP, tokens from the test's own token server for `user`/`password`.
    Token {
        user: String,
        password: String,
    },
}

/// A `docker-registry` process on 127.0.0.1.
#[derive(Debug)]
pub struct Registry {
    pub port: u16,
    pub dir: PathBuf,
    pub guard: Guard,
    /// The CA's directory (ca.crt) when TLS is on: a `--cert-dir`.
    pub certs: Option<PathBuf>,
    log: PathBuf,
    child: Child,
    token: Option<Child>,
}

impl Registry {
    pub fn start(dir: &Path, guard: Guard) -> Self {
        require_registry_tools();
        fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let mut extra = String::new();
        let mut certs = None;
        let mut token = None;
        match &guard {
            Guard::Plain => {}
            Guard::TlsBasic { user, password } => {
                let c = dir.join("certs");
                make_certs(&c);
                let hash = run(Command::new("htpasswd").args(["-Bbn", user, password]));
                fs::write(dir.join("htpasswd"), hash).unwrap();
                extra = format!(
                    "  tls:\n    certificate: {c}/server.crt\n    key: {c}/server.key\nauth:\n  htpasswd:\n    realm: strata-test\n    path: {h}\n",
                    c = c.display(),
                    h = dir.join("htpasswd").display()
                );
                certs = Some(c.join("ca"));
            }
            Guard::Token { user, password } => {
                let (child, realm, bundle) = start_token_server(dir, user, password);
                token = Some(child);
                extra = format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: strata-test\n    issuer: strata-test-issuer\n    rootcertbundle: {}\n",
                    bundle.display()
                );
            }
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
            dir.join("data").display()
        );
        let config_path = dir.join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = dir.join("registry.log");
        let out = fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let r = Registry { port, dir: dir.to_path_buf(), guard, certs, log, child, token };
        r.wait_listening();
        r
    }

    fn wait_listening(&self) {
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "docker-registry did not listen on {} in 15 s:\n{}",
                self.port,
                fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// skopeo's flags to reach this registry as a destination or source.
    fn skopeo_flags(&self, side: &str) -> Vec<String> {
        let mut v = Vec::new();
        match &self.guard {
            Guard::Plain => v.push(format!("--{side}-tls-verify=false")),
            Guard::TlsBasic { user, password } => {
                v.push(format!("--{side}-cert-dir={}", self.certs.as_ref().unwrap().display()));
                v.push(format!("--{side}-creds={user}:{password}"));
            }
            Guard::Token { user, password } => {
                v.push(format!("--{side}-tls-verify=false"));
                v.push(format!("--{side}-creds={user}:{password}"));
            }
        }
        v
    }

    /// `skopeo copy SRC docker://ADDR/name` (with `--all` for an index).
    pub fn seed(&self, src: &str, name: &str, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q"])
            .args(self.skopeo_flags("dest"))
            .args(extra)
            .arg(src)
            .arg(format!("docker://{}/{name}", self.addr()));
        run(&mut cmd);
    }

    /// `skopeo inspect --raw` of an image here.
    pub fn skopeo_raw(&self, name: &str) -> serde_json::Value {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--raw"])
            .args(self.skopeo_flags("src").iter().map(|f| f.replace("--src-", "--")))
            .arg(format!("docker://{}/{name}", self.addr()));
        serde_json::from_str(&run(&mut cmd)).unwrap()
    }

    /// The access log lines (`"METHOD /path HTTP/1.1" status`) so far.
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split('"').nth(1).map(|req| format!("{req} {}", l.split('"').nth(2).unwrap_or("").trim()))
            })
            .collect()
    }

    /// How many successful GETs of `path` the registry answered.
    pub fn gets(&self, path: &str) -> usize {
        let want = format!("GET {path} HTTP/1.1");
        self.requests().iter().filter(|r| r.starts_with(&want) && r.contains("HTTP/1.1 200")).count()
    }

    /// The file the registry keeps blob `digest` in (to corrupt it).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = &mut self.token {
            let _ = t.kill();
            let _ = t.wait();
        }
        if std::thread::panicking() {
            let reqs = self.requests();
            let tail = &reqs[reqs.len().saturating_sub(20)..];
            eprintln!("last requests to the registry {}:\n{}", self.addr(), tail.join("\n"));
        }
    }
}

/// A CA (`ca/ca.crt`) and a server certificate for 127.0.0.1 signed by it, EC P-256.
fn make_certs(dir: &Path) {
    fs::create_dir_all(dir.join("ca")).unwrap();
    let d = |f: &str| dir.join(f).display().to_string();
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=strata-test-ca", "-keyout", &d("ca.key"), "-out", &d("ca/ca.crt")]));
    run(Command::new("openssl")
        .args(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-subj", "/CN=127.0.0.1", "-keyout", &d("server.key"), "-out", &d("server.csr")]));
    fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-in", &d("server.csr"), "-CA", &d("ca/ca.crt"), "-CAkey", &d("ca.key")])
        .args(["-CAcreateserial", "-extfile", &d("san.ext"), "-out", &d("server.crt")]));
}

/// The token server of tests/token-server.py: (process, realm URL, certificate bundle).
fn start_token_server(dir: &Path, user: &str, password: &str) -> (Child, String, PathBuf) {
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/token-server.py");
    let bundle = dir.join("token.crt");
    let child = Command::new("/usr/bin/python3")
        .arg(&script)
        .args(["--port", &port.to_string(), "--user", user, "--password", password, "--cert-out"])
        .arg(&bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("token.log")).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() || !bundle.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the token server did not start:\n{}",
            fs::read_to_string(dir.join("token.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("http://127.0.0.1:{port}/token"), bundle)
}

// ---------------------------------------------------------------- a fake registry

/// One request as the fake registry saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the fake registry answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Status, headers, body.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Headers promising the whole body, then only its first `cut` bytes, then the connection closes.
    Cut(u16, Vec<(String, String)>, Vec<u8>, usize),
}

impl Answer {
    pub fn ok(body: &[u8], content_type: &str) -> Self {
        Answer::Full(200, vec![("Content-Type".into(), content_type.into())], body.to_vec())
    }
    pub fn status(code: u16) -> Self {
        Answer::Full(code, Vec::new(), Vec::new())
    }
}

/// A thread accepting connections on a free port of 127.0.0.1, each served on a thread of its
/// own by `on_conn`; stopped when dropped.
pub struct Acceptor {
    pub port: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor").field("port", &self.port).finish()
    }
}

impl Acceptor {
    pub fn start(on_conn: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
        let port = free_port();
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let stop2 = stop.clone();
        let on_conn = Arc::new(on_conn);
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        let f = on_conn.clone();
                        std::thread::spawn(move || f(conn));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, stop, thread: Some(thread) }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP/1.1 server on 127.0.0.1 answering each request (one per connection) with
/// `handler(request, how many requests for this path came before)`.
#[derive(Debug)]
pub struct FakeRegistry {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _acceptor: Acceptor,
}

impl FakeRegistry {
    pub fn start(handler: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let seen2 = seen.clone();
        let acceptor = Acceptor::start(move |conn| serve(conn, &handler, &seen2));
        Self { port: acceptor.port, seen, _acceptor: acceptor }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, handler: &dyn Fn(&Seen, usize) -> Answer, seen: &Mutex<Vec<Seen>>) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let req = Seen { method, path, headers };
    let before = {
        let mut s = seen.lock().unwrap();
        let n = s.iter().filter(|r| r.path == req.path && r.method == req.method).count();
        s.push(req.clone());
        n
    };
    let answer = handler(&req, before);
    let mut conn = conn;
    let (status, hs, body, cut) = match answer {
        Answer::Full(s, h, b) => (s, h, b.clone(), b.len()),
        Answer::Cut(s, h, b, c) => (s, h, b, c),
    };
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in hs {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    if req.method != "HEAD" {
        let _ = conn.write_all(&body[..cut.min(body.len())]);
    }
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

// ---------------------------------------------------------------- a CONNECT proxy

/// An HTTP proxy on 127.0.0.1 that tunnels `CONNECT host:port` (what clients use for any
/// target through an `http://` proxy) and records each target.
#[derive(Debug)]
pub struct ConnectProxy {
    pub port: u16,
    pub targets: Arc<Mutex<Vec<String>>>,
    _acceptor: Acceptor,
}

impl ConnectProxy {
    pub fn start() -> Self {
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let t2 = targets.clone();
        let acceptor = Acceptor::start(move |conn| tunnel(conn, &t2));
        Self { port: acceptor.port, targets, _acceptor: acceptor }
    }
}

fn tunnel(conn: TcpStream, targets: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        let _ = (&conn).write_all(b"HTTP/1.1 405 Only CONNECT\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    targets.lock().unwrap().push(target.to_string());
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = (&conn).write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let _ = (&conn).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let (mut up_r, mut up_w) = (upstream.try_clone().unwrap(), upstream);
    let mut down_w = conn;
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut down_w);
        let _ = down_w.shutdown(std::net::Shutdown::Both);
    });
    // What the client sent after the CONNECT request is in the reader's buffer.
    let _ = std::io::copy(&mut reader, &mut up_w);
    let _ = up_w.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
}
