//! Pulling from a registry: the manifest negotiated (OCI and Docker schema 2, index or list ->
//! the platform's manifest), every document verified against its digest and bounded in size,
//! the configuration fetched, and the layers handed to the layer jobs as streams that resume
//! with `Range` after a broken connection.

use std::io::{self, Read};
use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};
use ureq::http::Method;

use super::client::{self, Access, Client, Request};
use super::conf::{self, Endpoint};
use super::reference::Reference;
use crate::digest::{Digest, DigestReader};
use crate::source::files::Stream;
use crate::source::{self, Blobs, LayerSource, MAX_DOCUMENT, Platform, RemoteBlobs, RemoteError, Resolved, media, oci};

/// The largest manifest or index accepted (what containers/image accepts).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Nested indexes followed at most.
const MAX_DEPTH: usize = 4;
/// Times a broken blob download is resumed.
const MAX_RESUMES: u32 = 5;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] client::Error),
    #[error(transparent)]
    Conf(#[from] conf::Error),
    #[error(transparent)]
    Source(#[from] source::Error),
    #[error("{reference}: no such image in {registry} (manifest unknown)")]
    NotFound { registry: String, reference: String },
    #[error("{reference}: the {what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { reference: String, what: String, expected: Digest, actual: Digest },
    #[error("{reference}: the {what} has {actual} bytes where its descriptor says {expected}")]
    SizeMismatch { reference: String, what: String, expected: u64, actual: u64 },
    #[error("{reference}: the registry names the manifest digest {0:?}, which is malformed", reference = .1)]
    BadDigestHeader(String, String),
    #[error("{reference}: the {what} is not valid JSON of the expected shape")]
    Parse {
        reference: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{reference}: unsupported manifest media type {media_type:?} (OCI and Docker schema 2 are supported)")]
    MediaType { reference: String, media_type: String },
    #[error("{reference}: image indexes nest deeper than {MAX_DEPTH} levels")]
    TooDeep { reference: String },
    #[error(
        "{reference}: layer {index} names external URLs ({urls}); strata-rootfs fetches layers only from the registry"
    )]
    ForeignLayer { reference: String, index: usize, urls: String },
    #[error("{typed}: not found in any of {tried}")]
    NowhereFound {
        typed: String,
        tried: String,
        #[source]
        last: Box<Error>,
    },
}

/// An image resolved on a registry, its layers still to stream.
#[derive(Debug)]
pub struct Fetched {
    pub resolved: Resolved,
    /// The reference as the user means it (before mirrors and locations): the store's name.
    pub reference: Reference,
    /// Where it came from (`registry/repository@digest`).
    pub source: String,
}

/// Resolve `typed` (a qualified or short name) for `platform`: each candidate name, each of its
/// endpoints (mirrors first), until one has the image.
pub fn resolve(access: &Access, typed: &str, platform: &Platform) -> Result<Fetched, Error> {
    let candidates = access.conf.candidates(typed)?;
    let mut tried = Vec::new();
    let mut last = None;
    for cand in &candidates {
        for ep in access.conf.endpoints(cand)? {
            tried.push(ep.reference.name());
            match resolve_at(access, &ep, platform) {
                Ok((resolved, source)) => {
                    let mut resolved = resolved;
                    resolved.reference = Some(cand.store_name());
                    return Ok(Fetched { resolved, reference: cand.clone(), source });
                }
                // Only an image missing here, or a registry not answering, sends us on.
                Err(e) if (candidates.len() > 1 || ep.mirror) && moves_on(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
    }
    match last {
        Some(e) if tried.len() > 1 => {
            Err(Error::NowhereFound { typed: typed.into(), tried: tried.join(", "), last: Box::new(e) })
        }
        Some(e) => Err(e),
        None => Err(Error::NowhereFound {
            typed: typed.into(),
            tried: "no registry".into(),
            last: Box::new(Error::NotFound { registry: String::new(), reference: typed.into() }),
        }),
    }
}

fn moves_on(e: &Error) -> bool {
    matches!(
        e,
        Error::NotFound { .. }
            | Error::Client(client::Error::Connect { .. })
            | Error::Client(client::Error::Status { .. })
    )
}

/// A manifest or index as fetched and verified.
struct Document {
    digest: Digest,
    bytes: Vec<u8>,
    media_type: String,
}

/// The registry and repository an image lives in.
#[derive(Debug, Clone)]
pub struct Repository {
    pub client: Arc<Client>,
    pub name: String,
    pub scopes: Vec<String>,
}

impl Repository {
    pub fn new(client: Arc<Client>, name: &str, scopes: Vec<String>) -> Self {
        Self { client, name: name.to_string(), scopes }
    }

    fn manifest(&self, reference: &str, display: &str) -> Result<Document, Error> {
        let what = format!("fetching the manifest of {display}");
        let req =
            Request::new(Method::GET, format!("/v2/{}/manifests/{reference}", self.name), &self.scopes, what.clone())
                .header("Accept", ACCEPT);
        let resp = self.client.send(req)?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Err(Error::NotFound { registry: self.client.registry().into(), reference: display.into() });
        }
        if status != 200 {
            return Err(self.client.status_error(&what, status, resp).into());
        }
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header("content-type").unwrap_or_default();
        let stated = header("docker-content-digest");
        let bytes = self.client.read_limited(resp, MAX_MANIFEST, &what)?;
        let expected = match Digest::parse(reference) {
            Ok(d) => Some(d),
            Err(_) => match stated {
                Some(s) => Some(Digest::parse(&s).map_err(|_| Error::BadDigestHeader(s.clone(), display.into()))?),
                None => None,
            },
        };
        let digest = match &expected {
            Some(e) => hash(&bytes, e),
            None => Digest::sha256_of(&bytes),
        };
        if let Some(e) = expected
            && e != digest
        {
            return Err(Error::DigestMismatch {
                reference: display.into(),
                what: "manifest".into(),
                expected: e,
                actual: digest,
            });
        }
        // The document's own mediaType wins over a generic Content-Type.
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
            reference: display.into(),
            what: "manifest".into(),
            source,
        })?;
        let media_type = v["mediaType"].as_str().map(str::to_string).unwrap_or_else(|| {
            let ct = content_type.split(';').next().unwrap_or("").trim().to_string();
            if ct.is_empty() && v["manifests"].is_array() {
                media::OCI_INDEX.into()
            } else if ct.is_empty() {
                media::OCI_MANIFEST.into()
            } else {
                ct
            }
        });
        Ok(Document { digest, bytes, media_type })
    }

    /// A whole small blob (the configuration), verified.
    fn small_blob(&self, d: &Descriptor, what: &str, display: &str) -> Result<(Digest, Vec<u8>), Error> {
        let digest =
            Digest::parse(d.digest().as_ref()).map_err(|e| source::Error::Digest { what: what.into(), source: e })?;
        if d.size() > MAX_DOCUMENT {
            return Err(Error::SizeMismatch {
                reference: display.into(),
                what: what.into(),
                expected: MAX_DOCUMENT,
                actual: d.size(),
            });
        }
        let req_what = format!("fetching the {what} of {display}");
        let resp = self.client.send(Request::new(
            Method::GET,
            format!("/v2/{}/blobs/{digest}", self.name),
            &self.scopes,
            req_what.clone(),
        ))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(self.client.status_error(&req_what, status, resp).into());
        }
        let bytes = self.client.read_limited(resp, MAX_DOCUMENT, &req_what)?;
        if bytes.len() as u64 != d.size() {
            return Err(Error::SizeMismatch {
                reference: display.into(),
                what: what.into(),
                expected: d.size(),
                actual: bytes.len() as u64,
            });
        }
        let actual = hash(&bytes, &digest);
        if actual != digest {
            return Err(Error::DigestMismatch {
                reference: display.into(),
                what: what.into(),
                expected: digest,
                actual,
            });
        }
        Ok((digest, bytes))
    }
}

fn hash(bytes: &[u8], like: &Digest) -> Digest {
    let mut r = DigestReader::new(bytes, like.algorithm());
    // Reading from memory cannot fail.
    r.drain().unwrap_or(());
    r.finish().0
}

/// Resolve the image at one endpoint: documents verified, layers described.
fn resolve_at(access: &Access, ep: &Endpoint, platform: &Platform) -> Result<(Resolved, String), Error> {
    let r = &ep.reference;
    let display = r.to_string();
    let client = Arc::new(access.client(&r.registry, &r.repository, ep.insecure)?);
    let repo = Repository::new(client, &r.repository, vec![format!("repository:{}:pull", r.repository)]);
    let mut doc = repo.manifest(&r.manifest_ref(), &display)?;
    let mut depth = 0;
    while doc.media_type == media::OCI_INDEX || doc.media_type == media::DOCKER_LIST {
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep { reference: display });
        }
        let index: ImageIndex = serde_json::from_slice(&doc.bytes).map_err(|source| Error::Parse {
            reference: display.clone(),
            what: "image index".into(),
            source,
        })?;
        let list: Vec<&Descriptor> = index.manifests().iter().collect();
        if list.is_empty() {
            return Err(source::Error::Empty { source_name: display }.into());
        }
        let chosen = oci::pick_platform(&list, platform, &display)?;
        // Fetched by digest: verified against the index's descriptor.
        let next = repo.manifest(chosen.digest().as_ref(), &display)?;
        doc = next;
    }
    if doc.media_type != media::OCI_MANIFEST && doc.media_type != media::DOCKER_MANIFEST {
        return Err(Error::MediaType { reference: display, media_type: doc.media_type });
    }
    let manifest: ImageManifest = serde_json::from_slice(&doc.bytes).map_err(|source| Error::Parse {
        reference: display.clone(),
        what: "manifest".into(),
        source,
    })?;
    let cmt = manifest.config().media_type().to_string();
    if cmt != media::OCI_CONFIG && cmt != media::DOCKER_CONFIG {
        return Err(source::Error::UnsupportedMediaType { what: "image configuration".into(), media_type: cmt }.into());
    }
    for (i, l) in manifest.layers().iter().enumerate() {
        if let Some(urls) = l.urls().as_ref().filter(|u| !u.is_empty()) {
            return Err(Error::ForeignLayer { reference: display, index: i + 1, urls: urls.join(", ") });
        }
    }
    let (config_digest, config_bytes) = repo.small_blob(manifest.config(), "image configuration", &display)?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|source| Error::Parse {
        reference: display.clone(),
        what: "image configuration".into(),
        source,
    })?;
    let layers = oci::layer_sources(&manifest, &config)?;
    let source = format!("{}@{}", r.name(), doc.digest);
    let resolved = Resolved {
        blobs: Blobs::Remote(Box::new(repo)),
        manifest: Some((doc.digest, doc.bytes)),
        config_digest,
        config_bytes,
        config,
        layers,
        reference: None,
    };
    Ok((resolved, source))
}

impl RemoteBlobs for Repository {
    fn open(&self, layer: &LayerSource) -> Result<(Stream<'_>, Option<u64>), RemoteError> {
        let digest = layer.digest.clone().ok_or("a registry layer without a digest")?;
        let mut s = BlobStream { repo: self, digest, size: layer.size, got: 0, body: None, resumes: 0 };
        s.connect()?;
        Ok((Box::new(s), layer.size))
    }
}

/// A blob's bytes, reconnecting with `Range: bytes=N-` when the connection breaks (an error,
/// or an end before the size the manifest states). Reads at most the stated size plus one byte.
struct BlobStream<'r> {
    repo: &'r Repository,
    digest: Digest,
    size: Option<u64>,
    got: u64,
    body: Option<ureq::BodyReader<'static>>,
    resumes: u32,
}

impl BlobStream<'_> {
    fn connect(&mut self) -> Result<(), client::Error> {
        let what = format!("fetching the blob {}", self.digest);
        let mut req = Request::new(
            Method::GET,
            format!("/v2/{}/blobs/{}", self.repo.name, self.digest),
            &self.repo.scopes,
            what.clone(),
        );
        if self.got > 0 {
            req = req.header("Range", format!("bytes={}-", self.got));
        }
        let resp = self.repo.client.send(req)?;
        let status = resp.status().as_u16();
        let resumed_at = match status {
            200 => 0,
            206 => resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(u64::MAX),
            _ => return Err(self.repo.client.status_error(&what, status, resp)),
        };
        let mut body = resp.into_body().into_reader();
        if self.got > 0 && resumed_at != self.got {
            if resumed_at != 0 {
                return Err(client::Error::Read {
                    registry: self.repo.client.registry().into(),
                    what,
                    source: io::Error::other(format!(
                        "asked to resume at byte {}, the registry answered from {resumed_at}",
                        self.got
                    )),
                });
            }
            // No range support: skip what was read already.
            let skipped = io::copy(&mut (&mut body).take(self.got), &mut io::sink()).map_err(|source| {
                client::Error::Read { registry: self.repo.client.registry().into(), what: what.clone(), source }
            })?;
            if skipped != self.got {
                return Err(client::Error::Read {
                    registry: self.repo.client.registry().into(),
                    what,
                    source: io::Error::from(io::ErrorKind::UnexpectedEof),
                });
            }
        }
        self.body = Some(body);
        Ok(())
    }

    fn resume(&mut self, cause: io::Error) -> io::Result<()> {
        self.body = None;
        if self.resumes >= MAX_RESUMES {
            return Err(io::Error::new(cause.kind(), format!("{cause} (after {MAX_RESUMES} resumed attempts)")));
        }
        self.resumes += 1;
        self.connect().map_err(|e| io::Error::other(crate::error_chain::chain(&e)))
    }
}

impl Read for BlobStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // An empty buffer reads nothing: not an end of the blob, no reason to reconnect.
        if buf.is_empty() {
            return Ok(0);
        }
        let limit = self.size.map_or(u64::MAX, |s| s + 1);
        if self.got >= limit {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(limit - self.got).unwrap_or(usize::MAX));
        loop {
            let Some(body) = self.body.as_mut() else {
                self.resume(io::Error::from(io::ErrorKind::NotConnected))?;
                continue;
            };
            match body.read(&mut buf[..want]) {
                Ok(0) if self.size.is_some_and(|s| self.got < s) => {
                    self.resume(io::Error::from(io::ErrorKind::UnexpectedEof))?;
                }
                Ok(n) => {
                    self.got += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e)?,
            }
        }
    }
}
