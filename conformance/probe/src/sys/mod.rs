//! The probe's only unsafe code: the ioctl/syscall wrappers that nix does not provide.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

/// `TIOCGWINSZ` on `fd`: (rows, cols).
pub fn window_size(fd: BorrowedFd<'_>) -> std::io::Result<(u16, u16)> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: `fd` is a valid borrowed descriptor and `ws` is a properly sized, writable winsize
    // that TIOCGWINSZ fills in; the kernel does not keep the pointer.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if rc == 0 { Ok((ws.ws_row, ws.ws_col)) } else { Err(std::io::Error::last_os_error()) }
}

/// `ioprio_get(IOPRIO_WHO_PROCESS, 0)`: the raw I/O priority of the calling process.
pub fn ioprio_get_self() -> std::io::Result<i64> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: ioprio_get takes two integers and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0 as libc::c_long) };
    if rc >= 0 { Ok(rc) } else { Err(std::io::Error::last_os_error()) }
}

/// `llistxattr` + `lgetxattr`: every extended attribute of `path` (not following a symlink), as
/// (name, value) pairs.
pub fn xattrs(path: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let c_path = std::ffi::CString::new(path).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut names = vec![0u8; 4096];
    // SAFETY: `c_path` is a NUL-terminated string and `names` a writable buffer of the length passed;
    // the kernel writes at most that many bytes and keeps no pointer.
    let len = unsafe { libc::llistxattr(c_path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if len < 0 {
        return Err(std::io::Error::last_os_error());
    }
    names.truncate(len as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let c_name = std::ffi::CString::new(name).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        let mut value = vec![0u8; 4096];
        // SAFETY: both strings are NUL-terminated and `value` is a writable buffer of the length
        // passed; the kernel keeps no pointer.
        let n = unsafe { libc::lgetxattr(c_path.as_ptr(), c_name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        value.truncate(n as usize);
        out.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    Ok(out)
}
