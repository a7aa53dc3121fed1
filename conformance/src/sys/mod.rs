//! The suite's only unsafe code: taking ownership of a descriptor received over SCM_RIGHTS,
//! resizing a terminal, and setting an extended attribute.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Owns a descriptor that `recvmsg` just installed in this process.
pub fn own_received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in our table when delivering SCM_RIGHTS; nothing else in
    // this process knows about it, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Set the window size of the terminal behind `fd` (TIOCSWINSZ), as a terminal emulator does.
pub fn set_window_size(fd: std::os::fd::BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a `struct winsize` through the pointer, valid for the whole call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size as *const libc::winsize) };
    nix::errno::Errno::result(ret).map(drop)
}

/// `lsetxattr(path, name, value, 0)`: sets an extended attribute without following a symlink.
pub fn set_xattr(path: &std::path::Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let invalid = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(invalid)?;
    let c_name = std::ffi::CString::new(name).map_err(invalid)?;
    // SAFETY: both strings are NUL-terminated and `value` is readable for the length passed; the
    // kernel copies what it needs and keeps no pointer.
    let ret = unsafe { libc::lsetxattr(c_path.as_ptr(), c_name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if ret == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
