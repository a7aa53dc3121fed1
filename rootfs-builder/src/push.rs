//! `push`: a stored image to a registry, three blobs at a time. Each blob (layers, then the configuration) is checked
//! with `HEAD` first and sent only when the repository lacks it: mounted from the repository it
//! was pulled from when that is on the same registry, else uploaded, in one `PUT` or, above
//! the chunk size, in `PATCH` chunks. The manifest goes last, byte for byte as stored, so the
//! pushed image has the digests the store knows.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ureq::http::Method;

use crate::digest::Digest;
use crate::progress::{Event, Progress};
use crate::registry::client::{self, Access, Body, Client, Request};
use crate::registry::reference::{self, Reference};
use crate::store::{self, ImageRecord, Store};

/// Blobs larger than this are uploaded in chunks of this size
/// (`STRATA_ROOTFS_PUSH_CHUNK` overrides it, in bytes).
pub const DEFAULT_CHUNK: u64 = 32 << 20;
pub const CHUNK_ENV: &str = "STRATA_ROOTFS_PUSH_CHUNK";
/// Blobs sent at the same time.
const JOBS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] client::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Reference(#[from] reference::Error),
    #[error("reading the stored blob {0}")]
    OpenBlob(String, #[source] std::io::Error),
    #[error("{registry}: {what}: the registry gave no upload location")]
    NoLocation { registry: String, what: String },
    #[error("{registry}: the registry stored the manifest as {actual}, not {expected}")]
    ManifestDigest { registry: String, expected: Digest, actual: String },
    #[error("not every blob was pushed, and none reported why")]
    Incomplete,
    #[error("the stored manifest {0} is not valid JSON")]
    Manifest(String, #[source] serde_json::Error),
}

/// How a blob got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobOutcome {
    Exists,
    Mounted,
    Uploaded,
}

/// What a push did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    pub reference: String,
    pub manifest: Digest,
    pub blobs: Vec<(Digest, BlobOutcome)>,
}

/// Push `image` as `dest`.
pub fn push(
    store: &Store,
    image: &ImageRecord,
    access: &Access,
    dest: &Reference,
    progress: &Arc<dyn Progress>,
) -> Result<Pushed, Error> {
    let mut scopes = vec![format!("repository:{}:pull,push", dest.repository)];
    // Pulled from another repository of the same registry: its blobs can be mounted.
    let mount_from = image
        .source
        .split_once('@')
        .and_then(|(name, _)| Reference::parse_qualified(name).ok())
        .filter(|src| src.registry == dest.registry && src.repository != dest.repository);
    if let Some(src) = &mount_from {
        scopes.push(format!("repository:{}:pull", src.repository));
    }
    let client = access.client(&dest.registry, &dest.repository, false)?;
    let target = Target { client: &client, repo: &dest.repository, scopes: &scopes, chunk: chunk_size() };
    let mut blobs: Vec<(Digest, u64, String)> = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.blob.clone(), l.blob_size, format!("layer {}/{}", i + 1, image.layers.len())))
        .collect();
    let config_size = std::fs::metadata(store.blob_path(&image.config))
        .map_err(|e| Error::OpenBlob(image.config.to_string(), e))?
        .len();
    blobs.push((image.config.clone(), config_size, "config".into()));
    // Up to JOBS blobs at once, each worker taking the next one; the first error stops the rest
    // from starting and is reported.
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<BlobOutcome, Error>>>> = blobs.iter().map(|_| Mutex::new(None)).collect();
    let failed = AtomicBool::new(false);
    let work = || {
        while !failed.load(Ordering::SeqCst) {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some((digest, size, what)) = blobs.get(i) else { return };
            let id = digest.short().to_string();
            progress.event(&Event::Start { id: &id, what, total: Some(*size) });
            let r = target.blob(store, digest, *size, mount_from.as_ref(), progress, &id);
            match &r {
                Ok(outcome) => {
                    let status = match outcome {
                        BlobOutcome::Exists => "already in the registry",
                        BlobOutcome::Mounted => "mounted",
                        BlobOutcome::Uploaded => "pushed",
                    };
                    progress.event(&Event::Done { id: &id, what, status });
                }
                Err(_) => failed.store(true, Ordering::SeqCst),
            }
            *results[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..JOBS.min(blobs.len()) {
            s.spawn(work);
        }
    });
    let mut outcomes = Vec::with_capacity(blobs.len());
    for ((digest, _, _), r) in blobs.iter().zip(results) {
        match r.into_inner().unwrap_or_else(PoisonError::into_inner) {
            Some(Ok(o)) => outcomes.push((digest.clone(), o)),
            Some(Err(e)) => return Err(e),
            // Not started because another blob failed: that failure is returned above.
            None => {}
        }
    }
    if outcomes.len() != blobs.len() {
        return Err(Error::Incomplete);
    }
    let manifest = store.read_blob(&image.manifest)?;
    target.manifest(&dest.manifest_ref(), &image.manifest, &manifest)?;
    Ok(Pushed { reference: dest.to_string(), manifest: image.manifest.clone(), blobs: outcomes })
}

fn chunk_size() -> u64 {
    std::env::var(CHUNK_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(DEFAULT_CHUNK)
}

struct Target<'a> {
    client: &'a Client,
    repo: &'a str,
    scopes: &'a [String],
    chunk: u64,
}

impl Target<'_> {
    fn req(&self, method: Method, target: impl Into<String>, what: &str) -> Request<'_> {
        Request::new(method, target, self.scopes, what)
    }

    fn fail(&self, what: &str, resp: client::Response) -> Error {
        let status = resp.status().as_u16();
        self.client.status_error(what, status, resp).into()
    }

    fn location(&self, resp: &client::Response, what: &str) -> Result<String, Error> {
        let loc = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        loc.ok_or_else(|| Error::NoLocation { registry: self.client.registry().into(), what: what.into() })
    }

    fn blob(
        &self,
        store: &Store,
        digest: &Digest,
        size: u64,
        mount_from: Option<&Reference>,
        progress: &Arc<dyn Progress>,
        id: &str,
    ) -> Result<BlobOutcome, Error> {
        let what = format!("checking for the blob {digest}");
        let resp = self.client.send(self.req(Method::HEAD, format!("/v2/{}/blobs/{digest}", self.repo), &what))?;
        match resp.status().as_u16() {
            200 => return Ok(BlobOutcome::Exists),
            404 => {}
            _ => return Err(self.fail(&what, resp)),
        }
        let what = format!("starting the upload of {digest}");
        let start = match mount_from {
            Some(src) => format!("/v2/{}/blobs/uploads/?mount={digest}&from={}", self.repo, src.repository),
            None => format!("/v2/{}/blobs/uploads/", self.repo),
        };
        let resp = self.client.send(self.req(Method::POST, start, &what))?;
        match resp.status().as_u16() {
            201 if mount_from.is_some() => return Ok(BlobOutcome::Mounted),
            202 => {}
            _ => return Err(self.fail(&what, resp)),
        }
        let mut location = self.location(&resp, &what)?;
        let path = store.blob_path(digest);
        let file = File::open(&path).map_err(|e| Error::OpenBlob(digest.to_string(), e))?;
        let what = format!("uploading the blob {digest}");
        let mut offset = 0;
        if size > self.chunk {
            while offset < size {
                let len = self.chunk.min(size - offset);
                let req = self
                    .req(Method::PATCH, location.clone(), &what)
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", format!("{offset}-{}", offset + len - 1))
                    .body(Body::File { file: &file, offset, len });
                let resp = self.client.send(req)?;
                if resp.status().as_u16() != 202 {
                    return Err(self.fail(&what, resp));
                }
                location = self.location(&resp, &what)?;
                offset += len;
                progress.event(&Event::Bytes { id, done: offset });
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let body = if offset < size { Body::File { file: &file, offset, len: size - offset } } else { Body::Empty };
        let req = self.req(Method::PUT, put, &what).header("Content-Type", "application/octet-stream").body(body);
        let resp = self.client.send(req)?;
        if resp.status().as_u16() != 201 {
            return Err(self.fail(&what, resp));
        }
        progress.event(&Event::Bytes { id, done: size });
        Ok(BlobOutcome::Uploaded)
    }

    fn manifest(&self, reference: &str, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::Manifest(digest.to_string(), e))?;
        let media_type = v["mediaType"].as_str().unwrap_or(crate::source::media::OCI_MANIFEST).to_string();
        let what = format!("storing the manifest as {reference}");
        let req = self
            .req(Method::PUT, format!("/v2/{}/manifests/{reference}", self.repo), &what)
            .header("Content-Type", media_type)
            .body(Body::Bytes(bytes));
        let resp = self.client.send(req)?;
        if resp.status().as_u16() != 201 {
            return Err(self.fail(&what, resp));
        }
        if let Some(stated) = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok())
            && stated != digest.to_string()
        {
            return Err(Error::ManifestDigest {
                registry: self.client.registry().into(),
                expected: digest.clone(),
                actual: stated.into(),
            });
        }
        Ok(())
    }
}
