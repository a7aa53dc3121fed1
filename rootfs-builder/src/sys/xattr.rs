//! Extended attributes on descriptors and on names relative to a directory descriptor.
//!
//! Linux has no `*xattrat` call before 6.13, so a name under a directory descriptor is reached
//! through `/proc/self/fd/N/NAME` with the `l*` variants: the directory is pinned by the
//! descriptor and the final component is never followed.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::check;

// The descriptor variants are shared with the runtime (its tmpfs copy-up).
pub use strata_syscalls::xattr::{fget, flist, fset};

fn proc_path(dir: BorrowedFd<'_>, name: &CStr) -> CString {
    let mut bytes = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    bytes.extend_from_slice(name.to_bytes());
    // A CStr holds no interior NUL, so neither does the concatenation.
    CString::new(bytes).unwrap_or_default()
}

/// `lsetxattr` on `name` inside the directory `dir`, without following a final symlink.
pub fn set_at(dir: BorrowedFd<'_>, name: &CStr, key: &CStr, value: &[u8]) -> nix::Result<()> {
    let path = proc_path(dir, name);
    // SAFETY: `path` and `key` are NUL-terminated, `value` is a valid slice of the length passed.
    check(unsafe { libc::lsetxattr(path.as_ptr(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0) } as _)?;
    Ok(())
}

/// `lgetxattr` on `name` inside `dir`; `Ok(None)` when the attribute is absent.
pub fn get_at(dir: BorrowedFd<'_>, name: &CStr, key: &CStr) -> nix::Result<Option<Vec<u8>>> {
    let path = proc_path(dir, name);
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` is a writable buffer of the length passed; strings are NUL-terminated.
        let ret = unsafe { libc::lgetxattr(path.as_ptr(), key.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match check(ret as _) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(Some(buf));
            }
            Err(nix::errno::Errno::ENODATA) => return Ok(None),
            Err(nix::errno::Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// `llistxattr` on `name` inside `dir`: the attribute names.
pub fn list_at(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<Vec<CString>> {
    let path = proc_path(dir, name);
    let mut buf = vec![0u8; 1024];
    let len = loop {
        // SAFETY: `buf` is a writable buffer of the length passed; `path` is NUL-terminated.
        let ret = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match check(ret as _) {
            Ok(n) => break n as usize,
            Err(nix::errno::Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(nix::errno::Errno::ENOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    };
    Ok(buf[..len].split(|b| *b == 0).filter(|s| !s.is_empty()).filter_map(|s| CString::new(s).ok()).collect())
}

/// `lremovexattr` on `name` inside `dir`; an attribute already gone is not an error.
pub fn remove_at(dir: BorrowedFd<'_>, name: &CStr, key: &CStr) -> nix::Result<()> {
    let path = proc_path(dir, name);
    // SAFETY: `path` and `key` are NUL-terminated strings that outlive the call.
    match check(unsafe { libc::lremovexattr(path.as_ptr(), key.as_ptr()) } as _) {
        Ok(_) | Err(nix::errno::Errno::ENODATA) => Ok(()),
        Err(e) => Err(e),
    }
}
