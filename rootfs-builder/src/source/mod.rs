//! Image sources: where an image comes from (`oci:`, `oci-archive:`, `docker-archive:`) and how
//! its index, manifest and configuration are found and verified before any layer is read.

pub mod docker;
pub mod files;
pub mod oci;
pub mod platform;

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

use crate::digest::{self, Digest};
pub use files::Files;
pub use platform::Platform;

/// Media types (OCI and their Docker counterparts).
pub mod media {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
}

/// Largest index, manifest or configuration accepted (they are JSON documents, not data).
pub const MAX_DOCUMENT: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Files(#[from] files::Error),
    #[error("{what} in {source_name} is not valid JSON of the expected shape")]
    ParseDocument {
        source_name: String,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}")]
    Digest { what: String, source: digest::Error },
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },
    #[error("{what} has {actual} bytes where its descriptor says {expected}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("{what} has the unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("no image named {reference:?} in {source_name} (it holds: {available})")]
    UnknownReference { source_name: String, reference: String, available: String },
    #[error("{source_name} holds several images; name one with {hint} (it holds: {available})")]
    Ambiguous { source_name: String, hint: String, available: String },
    #[error("{source_name} holds no image")]
    Empty { source_name: String },
    #[error("no image for platform {wanted} in {source_name} (it has: {available})")]
    NoPlatform { source_name: String, wanted: String, available: String },
    #[error("image indexes nest deeper than {0} levels")]
    TooDeep(usize),
    #[error("the configuration lists {diff_ids} diff_ids for {layers} layers")]
    LayerCount { diff_ids: usize, layers: usize },
    #[error("{0} is not an OCI image layout (no oci-layout file with imageLayoutVersion)")]
    NotLayout(String),
    #[error("fetching {what}")]
    Fetch {
        what: String,
        #[source]
        source: RemoteError,
    },
}

/// Where an `IMAGE` argument points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Oci,
    OciArchive,
    DockerArchive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub transport: Transport,
    pub path: PathBuf,
    pub reference: Option<String>,
}

impl SourceSpec {
    /// `oci:PATH[:REF]`, `oci-archive:PATH[:REF]`, `docker-archive:PATH[:REF]`; `None` for
    /// anything else (a reference into the store). PATH ends at the first `:`, so a REF may hold
    /// colons itself (`oci-archive:img.tar:localhost/busybox:latest`).
    pub fn parse(arg: &str) -> Option<Self> {
        let (transport, rest) = if let Some(r) = arg.strip_prefix("oci:") {
            (Transport::Oci, r)
        } else if let Some(r) = arg.strip_prefix("oci-archive:") {
            (Transport::OciArchive, r)
        } else if let Some(r) = arg.strip_prefix("docker-archive:") {
            (Transport::DockerArchive, r)
        } else {
            return None;
        };
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) if !r.is_empty() => (p, Some(r.to_string())),
            Some((p, _)) => (p, None),
            None => (rest, None),
        };
        Some(Self { transport, path: PathBuf::from(path), reference })
    }

    /// The default name for an image of this source whose own name is only a tag.
    fn base_name(&self) -> String {
        let stem = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stem = stem.strip_suffix(".tar").unwrap_or(&stem).to_string();
        let stem: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c.to_ascii_lowercase() } else { '-' })
            .collect();
        if stem.is_empty() { "image".into() } else { stem }
    }
}

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn from_media_type(m: &str) -> Option<Self> {
        match m {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// From the first bytes of a blob (Docker archives do not say).
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => media::OCI_LAYER,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        }
    }
}

/// One layer as the source has it.
#[derive(Debug, Clone)]
pub struct LayerSource {
    /// Its file inside the source.
    pub path: String,
    /// The blob's digest when the source states it (a Docker archive may not).
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    /// `None` when it must be sniffed from the blob.
    pub compression: Option<Compression>,
    pub media_type: String,
    pub diff_id: Digest,
}

/// An error of a remote source (a registry), boxed so that this module needs no knowledge of it.
pub type RemoteError = Box<dyn std::error::Error + Send + Sync>;

/// A source that streams layer blobs from elsewhere (a registry).
pub trait RemoteBlobs: Send + Sync + std::fmt::Debug {
    /// Stream the blob of `layer`, and its size when known.
    fn open(&self, layer: &LayerSource) -> Result<(files::Stream<'_>, Option<u64>), RemoteError>;
}

/// Where the layer blobs of a resolved image are read from.
#[derive(Debug)]
pub enum Blobs {
    Files(Files),
    Remote(Box<dyn RemoteBlobs>),
}

impl Blobs {
    /// Stream the blob of `layer` (reading at most its size plus one byte when that is known).
    pub fn open(&self, layer: &LayerSource) -> Result<(files::Stream<'_>, Option<u64>), Error> {
        match self {
            Blobs::Files(f) => Ok(f.open(&layer.path, layer.size)?),
            Blobs::Remote(r) => r.open(layer).map_err(|source| Error::Fetch { what: layer.path.clone(), source }),
        }
    }
}

/// An image found in a source, its documents verified, its layers not yet read.
#[derive(Debug)]
pub struct Resolved {
    pub blobs: Blobs,
    /// The manifest as the source has it; `None` when there is none (Docker archive) and one is
    /// written once the layer digests are known.
    pub manifest: Option<(Digest, Vec<u8>)>,
    pub config_digest: Digest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfiguration,
    pub layers: Vec<LayerSource>,
    /// The name to record in the store, if the source names the image.
    pub reference: Option<String>,
}

/// Find the image `spec` names for `platform`, verifying every document read on the way.
pub fn resolve(spec: &SourceSpec, platform: &Platform) -> Result<Resolved, Error> {
    match spec.transport {
        Transport::Oci => oci::resolve(Files::dir(&spec.path)?, spec, platform),
        Transport::OciArchive => oci::resolve(Files::tar(&spec.path)?, spec, platform),
        Transport::DockerArchive => docker::resolve(Files::tar(&spec.path)?, spec),
    }
}

fn source_name(spec: &SourceSpec) -> String {
    spec.path.display().to_string()
}

/// The full name to record for an image whose source calls it `name` (a full name, or a tag).
pub fn full_reference(spec: &SourceSpec, name: &str) -> String {
    if name.contains('/') || name.contains(':') { name.to_string() } else { format!("{}:{}", spec.base_name(), name) }
}

/// Parse a verified JSON document.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], spec: &SourceSpec, what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|source| Error::ParseDocument {
        source_name: source_name(spec),
        what: what.to_string(),
        source,
    })
}

/// The number of diff_ids must match the number of layers.
fn check_layer_count(config: &ImageConfiguration, layers: usize) -> Result<(), Error> {
    let diff_ids = config.rootfs().diff_ids().len();
    if diff_ids != layers { Err(Error::LayerCount { diff_ids, layers }) } else { Ok(()) }
}

fn parse_digest(s: &str, what: &str) -> Result<Digest, Error> {
    Digest::parse(s).map_err(|source| Error::Digest { what: what.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        let s = SourceSpec::parse("oci-archive:/x/img.tar:localhost/busybox:latest").unwrap();
        assert_eq!(s.transport, Transport::OciArchive);
        assert_eq!(s.path, PathBuf::from("/x/img.tar"));
        assert_eq!(s.reference.as_deref(), Some("localhost/busybox:latest"));
        let s = SourceSpec::parse("oci:/srv/busybox-oci").unwrap();
        assert_eq!(s.reference, None);
        assert_eq!(s.base_name(), "busybox-oci");
        assert!(SourceSpec::parse("localhost/busybox:latest").is_none());
        assert_eq!(full_reference(&s, "latest"), "busybox-oci:latest");
        assert_eq!(full_reference(&s, "example.com/x:1"), "example.com/x:1");
    }
}
