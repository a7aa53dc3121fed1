//! One cgroup directory and the files in it.
//!
//! Control files are written with one `write(2)` per value (the kernel parses each write as
//! one command) and read whole. When the directory was opened once (the v2 directory, kept for
//! `CLONE_INTO_CGROUP`), files are opened relative to that descriptor, which skips the path
//! walk through `/sys/fs/cgroup/...` on every write.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use super::CgroupError;

#[derive(Debug)]
pub(crate) struct CgroupDir {
    path: PathBuf,
    fd: Option<OwnedFd>,
}

// Unit tests run the writers against ordinary files: appending there (one line per write)
// keeps every value written, so a test sees the whole sequence a cgroup file would receive.
#[cfg(not(test))]
const WRITE_FLAGS: OFlag = OFlag::O_WRONLY;
#[cfg(test)]
const WRITE_FLAGS: OFlag = OFlag::O_WRONLY.union(OFlag::O_APPEND);

impl CgroupDir {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, fd: None }
    }

    /// Open the directory itself; later file accesses go through the descriptor.
    pub(crate) fn open(path: PathBuf) -> Result<Self, CgroupError> {
        let fd = nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| CgroupError::Open { path: path.clone(), source: e.into() })?;
        Ok(Self { path, fd: Some(fd) })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd())
    }

    pub(crate) fn file_path(&self, file: &str) -> PathBuf {
        self.path.join(file)
    }

    fn open_file(&self, file: &str, flags: OFlag) -> io::Result<File> {
        let flags = flags | OFlag::O_CLOEXEC;
        let fd = match &self.fd {
            Some(dir) => openat(dir.as_fd(), file, flags, Mode::empty())?,
            None => nix::fcntl::open(&self.path.join(file), flags, Mode::empty())?,
        };
        Ok(File::from(fd))
    }

    /// Write one value; the raw I/O error is returned for callers that react to an errno.
    pub(crate) fn write_raw(&self, file: &str, value: &str) -> io::Result<()> {
        let mut f = self.open_file(file, WRITE_FLAGS)?;
        if cfg!(test) {
            f.write_all(format!("{value}\n").as_bytes())
        } else {
            // cgroupfs takes a value in one write; a short write would be a kernel bug.
            f.write(value.as_bytes()).map(drop)
        }
    }

    pub(crate) fn write(&self, file: &str, value: &str) -> Result<(), CgroupError> {
        self.write_raw(file, value).map_err(|source| self.write_error(file, value, source))
    }

    pub(crate) fn write_error(&self, file: &str, value: &str, source: io::Error) -> CgroupError {
        CgroupError::Write { path: self.file_path(file), value: value.to_owned(), source }
    }

    pub(crate) fn read_raw(&self, file: &str) -> io::Result<String> {
        let mut f = self.open_file(file, OFlag::O_RDONLY)?;
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        Ok(s)
    }

    pub(crate) fn read(&self, file: &str) -> Result<String, CgroupError> {
        self.read_raw(file).map_err(|source| CgroupError::Read { path: self.file_path(file), source })
    }

    /// A file holding one number (or "max", returned as `u64::MAX`).
    pub(crate) fn read_u64(&self, file: &str) -> Result<u64, CgroupError> {
        let text = self.read(file)?;
        parse_u64(text.trim()).ok_or_else(|| CgroupError::Parse {
            path: self.file_path(file),
            reason: format!("expected a number, found {:?}", text.trim()),
        })
    }

    /// A flat-keyed file ("key value" per line), such as memory.stat or memory.events.
    pub(crate) fn read_keyed(&self, file: &str) -> Result<Vec<(String, u64)>, CgroupError> {
        let text = self.read(file)?;
        Ok(parse_keyed(&text))
    }

    pub(crate) fn exists(&self, file: &str) -> bool {
        match &self.fd {
            Some(dir) => {
                nix::unistd::faccessat(dir.as_fd(), file, nix::unistd::AccessFlags::F_OK, nix::fcntl::AtFlags::empty())
                    .is_ok()
            }
            None => self.path.join(file).exists(),
        }
    }
}

pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" { Some(u64::MAX) } else { s.parse().ok() }
}

pub(crate) fn parse_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let (k, v) = line.split_once(' ')?;
            Some((k.to_owned(), parse_u64(v.trim())?))
        })
        .collect()
}

/// The value of `key` in a flat-keyed file's text.
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key { parse_u64(v.trim()) } else { None }
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! A throwaway directory tree standing in for a cgroup directory.
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    pub(crate) struct TempTree(pub PathBuf);

    impl TempTree {
        /// A new directory holding empty `files` (the control files the test expects to exist).
        pub(crate) fn new(files: &[&str]) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "strata-cgtest-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&path).unwrap();
            let tree = Self(path);
            for f in files {
                tree.put(f, "");
            }
            tree
        }

        pub(crate) fn put(&self, file: &str, content: &str) {
            fs::write(self.0.join(file), content).unwrap();
        }

        /// Everything written to `file`, one line per write.
        pub(crate) fn get(&self, file: &str) -> String {
            fs::read_to_string(self.0.join(file)).unwrap()
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            // Best effort: a leftover temp dir must not fail a test.
            if let Err(e) = fs::remove_dir_all(&self.0) {
                eprintln!("cannot remove {}: {e}", self.0.display());
            }
        }
    }
}
