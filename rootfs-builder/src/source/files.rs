//! Random access to the files of an image source: a directory (OCI layout) or an uncompressed
//! tar archive (OCI archive, `docker save`), indexed once and then read in place with `pread`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::extract::path::components;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening {0}")]
    Open(PathBuf, #[source] io::Error),
    #[error("indexing the archive {0}")]
    Index(PathBuf, #[source] io::Error),
    #[error("{path} is missing from {source_name}")]
    Missing { source_name: String, path: String },
    #[error("{path} in {source_name} is larger than the {limit} bytes allowed")]
    TooLarge { source_name: String, path: String, limit: u64 },
    #[error("reading {path} from {source_name}")]
    Read {
        source_name: String,
        path: String,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone)]
pub enum Node {
    File { offset: u64, size: u64 },
    Link(String),
}

/// A file inside the source, ready to stream.
pub type Stream<'a> = Box<dyn Read + Send + 'a>;

#[derive(Debug)]
pub enum Files {
    Dir(PathBuf),
    Tar { path: PathBuf, file: File, index: HashMap<String, Node> },
}

/// A name in the archive in canonical form (no `./`, no leading or doubled `/`); `None` for `..`.
fn canonical(name: &[u8]) -> Option<String> {
    let parts = components(name).ok()?;
    let joined = parts.join(&b'/');
    String::from_utf8(joined).ok()
}

#[derive(Debug)]
struct PositionedReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive truncated"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Files {
    pub fn dir(path: &Path) -> Result<Self, Error> {
        let meta = std::fs::metadata(path).map_err(|e| Error::Open(path.to_path_buf(), e))?;
        if !meta.is_dir() {
            return Err(Error::Open(path.to_path_buf(), io::Error::from(io::ErrorKind::NotADirectory)));
        }
        Ok(Files::Dir(path.to_path_buf()))
    }

    pub fn tar(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| Error::Open(path.to_path_buf(), e))?;
        let mut index = HashMap::new();
        let mut archive = tar::Archive::new(&file);
        let entries = archive.entries_with_seek().map_err(|e| Error::Index(path.to_path_buf(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::Index(path.to_path_buf(), e))?;
            let Some(name) = canonical(&entry.path_bytes()) else { continue };
            let kind = entry.header().entry_type();
            let node = if kind.is_file() {
                Node::File { offset: entry.raw_file_position(), size: entry.size() }
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Some(target) = entry.link_name_bytes() else { continue };
                let target = if kind.is_symlink() && !target.starts_with(b"/") {
                    // Relative to the link's directory.
                    let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    let mut joined = dir.as_bytes().to_vec();
                    joined.push(b'/');
                    joined.extend_from_slice(&target);
                    resolve_dots(&joined)
                } else {
                    canonical(&target)
                };
                let Some(target) = target else { continue };
                Node::Link(target)
            } else {
                continue;
            };
            index.insert(name, node);
        }
        Ok(Files::Tar { path: path.to_path_buf(), file, index })
    }

    fn source_name(&self) -> String {
        match self {
            Files::Dir(p) | Files::Tar { path: p, .. } => p.display().to_string(),
        }
    }

    /// Stream the file `rel` (a trusted relative name: built from a validated digest, or
    /// canonicalised from an archive index), reading at most `limit` bytes plus one, so a
    /// caller comparing sizes sees an overlong file.
    pub fn open(&self, rel: &str, limit: Option<u64>) -> Result<(Stream<'_>, Option<u64>), Error> {
        let missing = || Error::Missing { source_name: self.source_name(), path: rel.to_string() };
        match self {
            Files::Dir(root) => {
                let p = root.join(rel);
                let f = File::open(&p).map_err(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        missing()
                    } else {
                        Error::Read { source_name: self.source_name(), path: rel.to_string(), source: e }
                    }
                })?;
                let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                match limit {
                    Some(l) => Ok((Box::new(f.take(l.saturating_add(1))), size)),
                    None => Ok((Box::new(f), size)),
                }
            }
            Files::Tar { file, index, .. } => {
                let mut name = canonical(rel.as_bytes()).ok_or_else(missing)?;
                for _ in 0..16 {
                    match index.get(&name) {
                        Some(Node::File { offset, size }) => {
                            let end = offset + limit.map_or(*size, |l| (*size).min(l.saturating_add(1)));
                            return Ok((Box::new(PositionedReader { file, pos: *offset, end }), Some(*size)));
                        }
                        Some(Node::Link(target)) => name = target.clone(),
                        None => return Err(missing()),
                    }
                }
                Err(missing())
            }
        }
    }

    /// Read a whole small file (an index, manifest, configuration), refusing more than `max` bytes.
    pub fn read_small(&self, rel: &str, max: u64) -> Result<Vec<u8>, Error> {
        let (mut r, _) = self.open(rel, Some(max))?;
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).map_err(|source| Error::Read {
            source_name: self.source_name(),
            path: rel.to_string(),
            source,
        })?;
        if buf.len() as u64 > max {
            return Err(Error::TooLarge { source_name: self.source_name(), path: rel.to_string(), limit: max });
        }
        Ok(buf)
    }
}

/// Canonicalise a path, resolving `..` lexically; `None` if it climbs above the archive root.
fn resolve_dots(name: &[u8]) -> Option<String> {
    let mut out: Vec<&[u8]> = Vec::new();
    for part in name.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            p => out.push(p),
        }
    }
    String::from_utf8(out.join(&b'/')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_resolve_inside_the_archive_only() {
        assert_eq!(resolve_dots(b"a/../b/layer.tar").as_deref(), Some("b/layer.tar"));
        assert_eq!(resolve_dots(b"../etc/passwd"), None);
    }
}
