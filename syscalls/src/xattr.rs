//! Extended attributes on open descriptors (not `O_PATH`): list, read, write.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use crate::check;

/// `fsetxattr(fd, name, value, 0)`.
pub fn fset(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: `name` is NUL-terminated, `value` is a valid slice of the length passed.
    check(unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) } as _)?;
    Ok(())
}

/// `flistxattr` on an open (not O_PATH) descriptor: the attribute names.
pub fn flist(fd: BorrowedFd<'_>) -> nix::Result<Vec<CString>> {
    let mut buf = vec![0u8; 1024];
    let len = loop {
        // SAFETY: `buf` is a writable buffer of the length passed.
        let ret = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match check(ret as _) {
            Ok(n) => break n as usize,
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(Errno::ENOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    };
    Ok(buf[..len].split(|b| *b == 0).filter(|s| !s.is_empty()).filter_map(|s| CString::new(s).ok()).collect())
}

/// `fgetxattr` on an open descriptor; `Ok(None)` when the attribute is absent.
pub fn fget(fd: BorrowedFd<'_>, key: &CStr) -> nix::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` is a writable buffer of the length passed; `key` is NUL-terminated.
        let ret = unsafe { libc::fgetxattr(fd.as_raw_fd(), key.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match check(ret as _) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(Some(buf));
            }
            Err(Errno::ENODATA) => return Ok(None),
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}
