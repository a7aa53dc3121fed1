//! Reading `config.json`: size-bounded, with errors that name the offending field.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::de::DeserializeOwned;

/// A config larger than this is refused rather than parsed (no real config comes near it).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("parse {path}: {field}")]
    Parse {
        path: PathBuf,
        field: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Load and parse a runtime spec (`config.json`); also returns the bytes read.
pub fn load_spec(path: &Path) -> Result<(Spec, Vec<u8>), LoadError> {
    let bytes = read_bounded(path)?;
    let spec =
        parse_json(&bytes).map_err(|(field, source)| LoadError::Parse { path: path.to_owned(), field, source })?;
    Ok((spec, bytes))
}

/// Load any JSON document (config.json, process.json) with a field path in parse errors.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let bytes = read_bounded(path)?;
    parse_json(&bytes).map_err(|(field, source)| LoadError::Parse { path: path.to_owned(), field, source })
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, LoadError> {
    let file = std::fs::File::open(path).map_err(|source| LoadError::Open { path: path.to_owned(), source })?;
    let mut bytes = Vec::with_capacity(16 * 1024);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(LoadError::TooLarge { path: path.to_owned(), max: MAX_CONFIG_BYTES });
    }
    Ok(bytes)
}

/// Parse JSON, returning the path of the field that failed (`process.user.uid`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, (String, serde_json::Error)> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = match e.path().to_string() {
            p if p == "." => "document".to_owned(),
            p => p,
        };
        (field, e.into_inner())
    })?;
    de.end().map_err(|e| ("document".to_owned(), e))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_the_field() {
        let doc = br#"{"ociVersion":"1.0.2","process":{"user":{"uid":"zero","gid":0},"cwd":"/"},"root":{"path":"r"}}"#;
        let (field, err) = parse_json::<Spec>(doc).unwrap_err();
        assert_eq!(field, "process.user.uid");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        assert!(parse_json::<Spec>(br#"{"ociVersion":"1.0.2"} x"#).is_err());
    }
}
