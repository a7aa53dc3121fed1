//! Process creation and signalling: clone3, pidfds, close_range.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::check;

/// What `clone3` returned in each of the two processes.
#[derive(Debug)]
pub enum Forked {
    /// In the parent: the child's pid (in the parent's pid namespace) and its pidfd.
    Parent { pid: Pid, pidfd: OwnedFd },
    /// In the child.
    Child,
}

/// Fork-like `clone3`: no `CLONE_VM`, so the child gets a copy of the address space and runs on
/// its copy of the caller's stack, returning from this function a second time.
///
/// `flags` are `CLONE_NEW*` flags; `CLONE_PIDFD` is always added. With `cgroup`, the child starts
/// in that cgroup v2 directory (`CLONE_INTO_CGROUP`).
///
/// The caller must be single-threaded: the child only has a copy of the calling thread, and any
/// lock another thread held (the allocator's, stdio's) would stay locked forever in the child.
pub fn clone3_fork(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> nix::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid, fully initialised clone_args of the size we pass; `pidfd` lives
    // until the call returns. Without CLONE_VM and with a zero stack the kernel duplicates the
    // address space and the child resumes here like after fork(2); the caller guarantees it is
    // single-threaded, so no lock is held by a thread that does not exist in the child.
    let ret = check(unsafe {
        libc::syscall(libc::SYS_clone3, std::ptr::addr_of_mut!(args), std::mem::size_of::<CloneArgs>())
    })?;
    if ret == 0 {
        return Ok(Forked::Child);
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new, owned file descriptor in `pidfd`.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Forked::Parent { pid: Pid::from_raw(ret as libc::pid_t), pidfd })
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` (linux/sched.h), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Mark every descriptor from `first` upwards close-on-exec (one syscall, no /proc walk).
pub fn close_range_cloexec(first: u32) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes flags of this process's descriptors; no memory is passed.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}

/// Whether descriptor number `fd` is open and marked close-on-exec (`Ok(false)`: open without the
/// flag; `Err(EBADF)`: not open).
pub fn fd_is_cloexec(fd: RawFd) -> nix::Result<bool> {
    // SAFETY: F_GETFD only reads the flags of descriptor number `fd` (EBADF when it is not open);
    // it touches no memory and no descriptor is used or closed.
    let flags = Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    Ok(flags & libc::FD_CLOEXEC != 0)
}

/// A pidfd for an existing process; fails with ESRCH once it is gone.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor we take ownership of.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) })?;
    // SAFETY: the kernel returned a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Signal the process behind `pidfd`: never a recycled pid.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> nix::Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills it as for kill(2)); the fd is borrowed.
    check(unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<libc::siginfo_t>(), 0)
    })?;
    Ok(())
}

/// `setdomainname(2)`: nix only wraps sethostname.
pub fn setdomainname(name: &[u8]) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`, which outlives the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// Set the capability sets of the calling thread in one `capset` call.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> nix::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: VERSION_3, pid: 0 };
    let data = [
        Data { effective: effective as u32, permitted: permitted as u32, inheritable: inheritable as u32 },
        Data {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: version 3 takes a header and an array of two data structs, both valid for the call.
    check(unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) })?;
    Ok(())
}

/// `personality(2)` with a raw persona value (PER_LINUX, PER_LINUX32).
pub fn personality(persona: u64) -> nix::Result<()> {
    // SAFETY: personality takes an integer and touches no memory of ours.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    Errno::result(ret).map(drop)
}

/// `_exit(2)`: leave at once, without running the parent's exit handlers or destructors
/// (the forked child shares nothing it should flush or clean up).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and needs no invariant from us.
    unsafe { libc::_exit(code) }
}

/// Close every descriptor in `first..=last`.
pub fn close_range(first: u32, last: u32) -> nix::Result<()> {
    // SAFETY: close_range closes descriptors of this process only; callers pass ranges that
    // hold no descriptor any live Rust object will use again.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) })?;
    Ok(())
}

/// Join a new anonymous session keyring, so the container does not share the caller's.
pub fn join_new_session_keyring() -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks for a new anonymous keyring; no memory of ours is touched.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, std::ptr::null::<libc::c_char>()) })?;
    Ok(())
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)` for the calling process.
pub fn set_io_priority(class: u32, level: u32) -> nix::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = (class << 13) | (level & 0x1fff);
    // SAFETY: ioprio_set takes integers only.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) })?;
    Ok(())
}

/// `struct sched_attr` (linux/sched/types.h), version 1 without the util clamps.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `sched_setattr(0, attr, 0)` for the calling thread.
pub fn sched_setattr(attr: &SchedAttr) -> nix::Result<()> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: the pointer is to a fully initialised sched_attr whose size field is correct.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) })?;
    Ok(())
}
