//! The probe's only unsafe code: two ioctl/syscall wrappers that nix does not provide.
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
