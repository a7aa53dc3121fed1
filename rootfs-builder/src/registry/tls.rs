//! TLS settings for one registry: the system's root certificates plus the registry's own CAs
//! and client certificate from `certs.d`, as containers-certs.d(5) describes: in
//! `/etc/containers/certs.d/HOST[:PORT]/` (also `~/.config/containers/certs.d/` and
//! `/etc/docker/certs.d/`), `*.crt` files are CAs, a `NAME.cert` with its `NAME.key` is the
//! client certificate. `--cert-dir DIR` replaces that lookup.

use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("{0} holds no usable PEM certificate or key")]
    Pem(PathBuf),
    #[error("the client certificate {0} has no key {1}")]
    MissingKey(PathBuf, PathBuf),
}

/// Where the system's CA bundle is, first found wins (`$SSL_CERT_FILE` first).
const SYSTEM_BUNDLES: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// The certs.d directories that may hold `host`'s files.
fn cert_dirs(host: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(h) = std::env::var_os("HOME") {
        v.push(PathBuf::from(h).join(".config/containers/certs.d").join(host));
    }
    v.push(PathBuf::from("/etc/containers/certs.d").join(host));
    v.push(PathBuf::from("/etc/docker/certs.d").join(host));
    v
}

fn pem_items(path: &Path) -> Result<Vec<PemItem<'static>>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Read(path.to_path_buf(), e))?;
    let items: Vec<PemItem<'static>> = ureq::tls::parse_pem(&bytes).filter_map(Result::ok).collect();
    if items.is_empty() { Err(Error::Pem(path.to_path_buf())) } else { Ok(items) }
}

fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    let certs: Vec<Certificate<'static>> = pem_items(path)?
        .into_iter()
        .filter_map(|i| if let PemItem::Certificate(c) = i { Some(c) } else { None })
        .collect();
    if certs.is_empty() { Err(Error::Pem(path.to_path_buf())) } else { Ok(certs) }
}

fn private_key(path: &Path) -> Result<PrivateKey<'static>, Error> {
    pem_items(path)?
        .into_iter()
        .find_map(|i| if let PemItem::PrivateKey(k) = i { Some(k) } else { None })
        .ok_or_else(|| Error::Pem(path.to_path_buf()))
}

/// The TLS configuration for `host` (`host[:port]`); `verify` false accepts any certificate.
pub fn config(host: &str, cert_dir: Option<&Path>, verify: bool) -> Result<TlsConfig, Error> {
    let dirs = match cert_dir {
        Some(d) => vec![d.to_path_buf()],
        None => cert_dirs(host),
    };
    let mut roots = Vec::new();
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file());
    if let Some(b) = bundle {
        roots.extend(certificates(&b)?);
    }
    let mut client = None;
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            match f.extension().and_then(|e| e.to_str()) {
                Some("crt") => roots.extend(certificates(&f)?),
                Some("cert") if client.is_none() => {
                    let key = f.with_extension("key");
                    if !key.is_file() {
                        return Err(Error::MissingKey(f, key));
                    }
                    client = Some(ClientCert::new_with_certs(&certificates(&f)?, private_key(&key)?));
                }
                _ => {}
            }
        }
    }
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&roots))
        .client_cert(client)
        .disable_verification(!verify)
        .build())
}
