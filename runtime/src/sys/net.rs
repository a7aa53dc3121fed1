//! Network interface flags: the one thing the runtime does to a network namespace it creates is
//! bring its loopback interface up (runc's and crun's "loopback" setup), with the classic
//! `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls on a datagram socket rather than a netlink conversation.

use std::ffi::CStr;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use super::check;

/// Set `IFF_UP` on the interface `name` of the calling thread's network namespace (nothing when
/// it is up already).
pub fn set_link_up(name: &CStr) -> nix::Result<()> {
    let bytes = name.to_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
        return Err(Errno::EINVAL);
    }
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // SAFETY: `ifreq` is plain old data (a name array and a union of integers and addresses), for
    // which all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name (the array was zeroed, the name is shorter
    // than IFNAMSIZ) and writes `ifru_flags` into `req`, which outlives the call.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req as *mut libc::ifreq) } as _)?;
    // SAFETY: the successful SIOCGIFFLAGS above initialised `ifru_flags`.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    let up = libc::IFF_UP as libc::c_short;
    if flags & up != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | up;
    // SAFETY: SIOCSIFFLAGS reads the name and `ifru_flags` from `req`, which outlives the call.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req as *const libc::ifreq) } as _)?;
    Ok(())
}
