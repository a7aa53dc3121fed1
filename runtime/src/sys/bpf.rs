//! bpf(2) for cgroup programs: load a program, attach it to a cgroup, find and detach the
//! programs already attached. Only what the v2 device filter needs.
//!
//! Each command takes a prefix of `union bpf_attr` (linux/bpf.h); the kernel accepts a shorter
//! attr than its own and treats the missing tail as zero.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::check;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `enum bpf_attach_type`: BPF_CGROUP_DEVICE.
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// Several programs on one cgroup, all of which must allow.
pub const F_ALLOW_MULTI: u32 = 1 << 1;
/// Atomically replace the program given as `replace` (kernel 5.6+).
pub const F_REPLACE: u32 = 1 << 2;

#[cfg(not(target_endian = "little"))]
compile_error!("eBPF instructions are encoded for little-endian machines");

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> nix::Result<libc::c_long> {
    // SAFETY: `attr` is a fully initialised #[repr(C)] prefix of `union bpf_attr` for `cmd`
    // (the callers pair them), valid for reads and writes of its size for the whole call; any
    // pointers inside it point to buffers the callers keep alive across the call.
    check(unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), std::mem::size_of::<T>()) })
}

/// Load a BPF_PROG_TYPE_CGROUP_DEVICE program made of `insns` (`struct bpf_insn` as
/// little-endian u64 words). With `log`, the verifier writes its report there.
pub fn prog_load_cgroup_device(insns: &[u64], license: &CStr, log: Option<&mut [u8]>) -> nix::Result<OwnedFd> {
    let mut name = [0u8; 16];
    name[..10].copy_from_slice(b"strata_dev");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| Errno::E2BIG)?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).map_err(|_| Errno::E2BIG)?;
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    let fd = bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: BPF_PROG_LOAD returned a new descriptor (close-on-exec) that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Attach `prog` to the cgroup `target`.
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
    replace: Option<BorrowedFd<'_>>,
) -> nix::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(target),
        attach_bpf_fd: fd_u32(prog),
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: replace.map_or(0, fd_u32),
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detach `prog` from the cgroup `target`.
pub fn prog_detach(target: BorrowedFd<'_>, prog: BorrowedFd<'_>, attach_type: u32) -> nix::Result<()> {
    let mut attr =
        AttachAttr { target_fd: fd_u32(target), attach_bpf_fd: fd_u32(prog), attach_type, ..Default::default() };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the programs attached directly to the cgroup `target`.
pub fn prog_query(target: BorrowedFd<'_>, attach_type: u32) -> nix::Result<Vec<u32>> {
    let mut ids = vec![0u32; 16];
    loop {
        let mut attr = QueryAttr {
            target_fd: fd_u32(target),
            attach_type,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: u32::try_from(ids.len()).map_err(|_| Errno::E2BIG)?,
            ..Default::default()
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // More programs than room: the kernel said how many there are.
            Err(Errno::ENOSPC) if attr.prog_cnt as usize > ids.len() => ids.resize(attr.prog_cnt as usize, 0),
            Err(e) => return Err(e),
        }
    }
}

/// A descriptor for the loaded program with this id.
pub fn prog_get_fd_by_id(id: u32) -> nix::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr { prog_id: id, ..Default::default() };
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?;
    // SAFETY: BPF_PROG_GET_FD_BY_ID returned a new descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // A borrowed descriptor is never negative.
    fd.as_raw_fd() as u32
}
