//! The architectures a filter can cover, and how a syscall name resolves on each of them
//! (libseccomp's rules: a name absent on one architecture is skipped there).

use super::table::{NO, SYSCALLS};

/// `AUDIT_ARCH_*` values the kernel puts in `seccomp_data.arch`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

/// x32 syscalls are x86_64 syscalls with this bit set in the number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// i386 multiplexer syscalls: `socketcall(call, args)` and `ipc(call, ...)`.
pub const X86_SOCKETCALL: u32 = 102;
pub const X86_IPC: u32 = 117;

/// An architecture (ABI) a filter can cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86,
    X86_64,
    X32,
    Aarch64,
}

/// How a name resolves on one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The syscall number (x32 numbers include [`X32_SYSCALL_BIT`]).
    Number(u32),
    /// A real syscall name that this architecture does not have.
    Absent,
    /// Not a syscall name on any architecture known to the table.
    Unknown,
}

impl Arch {
    /// The architecture this runtime was built for; libseccomp always adds it to a filter.
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") { Arch::Aarch64 } else { Arch::X86_64 }
    }

    /// The value of `seccomp_data.arch` for this ABI (x32 shares x86_64's).
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// Whether libseccomp compares full 64-bit arguments (x32 counts as 32-bit there: only the
    /// low word of each argument is compared).
    pub fn has_64bit_args(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    /// Resolve a syscall name on this architecture.
    pub fn resolve(self, name: &str) -> Resolved {
        let Ok(index) = SYSCALLS.binary_search_by(|entry| entry.0.cmp(name)) else {
            return Resolved::Unknown;
        };
        let (_, x86, x86_64, x32, aarch64) = SYSCALLS[index];
        let number = match self {
            Arch::X86 => x86,
            Arch::X86_64 => x86_64,
            Arch::X32 => x32,
            Arch::Aarch64 => aarch64,
        };
        if number == NO {
            return Resolved::Absent;
        }
        let number = number.unsigned_abs();
        Resolved::Number(if self == Arch::X32 { number | X32_SYSCALL_BIT } else { number })
    }

    /// The number as libseccomp's name resolution reports it for the ENOSYS stub's "largest
    /// syscall" scan: i386 socket and SysV IPC names resolve to pseudo numbers there and do not
    /// count.
    pub fn resolve_for_stub(self, name: &str) -> Option<u32> {
        if self == Arch::X86 && x86_multiplexed(name).is_some() {
            return None;
        }
        match self.resolve(name) {
            Resolved::Number(number) => Some(number),
            Resolved::Absent | Resolved::Unknown => None,
        }
    }
}

/// On i386, libseccomp adds every rule for a socket or SysV IPC syscall twice: once on the
/// direct syscall (when it exists) and once on the multiplexer with `arg0 == call`.
/// Returns `(multiplexer syscall, call number)`.
pub fn x86_multiplexed(name: &str) -> Option<(u32, u64)> {
    const SOCKET: &[&str] = &[
        "socket",
        "bind",
        "connect",
        "listen",
        "accept",
        "getsockname",
        "getpeername",
        "socketpair",
        "send",
        "recv",
        "sendto",
        "recvfrom",
        "shutdown",
        "setsockopt",
        "getsockopt",
        "sendmsg",
        "recvmsg",
        "accept4",
        "recvmmsg",
        "sendmmsg",
    ];
    const IPC: &[(&str, u64)] = &[
        ("semop", 1),
        ("semget", 2),
        ("semctl", 3),
        ("semtimedop", 4),
        ("msgsnd", 11),
        ("msgrcv", 12),
        ("msgget", 13),
        ("msgctl", 14),
        ("shmat", 21),
        ("shmdt", 22),
        ("shmget", 23),
        ("shmctl", 24),
    ];
    if let Some(index) = SOCKET.iter().position(|candidate| *candidate == name) {
        // SYS_SOCKET is 1, SYS_BIND 2, ... in the order above.
        return Some((X86_SOCKETCALL, index as u64 + 1));
    }
    IPC.iter().find(|(candidate, _)| *candidate == name).map(|(_, call)| (X86_IPC, *call))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_per_architecture() {
        assert_eq!(Arch::X86_64.resolve("read"), Resolved::Number(0));
        assert_eq!(Arch::X86.resolve("read"), Resolved::Number(3));
        assert_eq!(Arch::X32.resolve("read"), Resolved::Number(X32_SYSCALL_BIT));
        assert_eq!(Arch::X32.resolve("rt_sigaction"), Resolved::Number(X32_SYSCALL_BIT | 512));
        assert_eq!(Arch::Aarch64.resolve("read"), Resolved::Number(63));
        assert_eq!(Arch::X86_64.resolve("_llseek"), Resolved::Absent);
        assert_eq!(Arch::X86.resolve("_llseek"), Resolved::Number(140));
        assert_eq!(Arch::X86_64.resolve("no_such_syscall"), Resolved::Unknown);
        assert_eq!(Arch::Aarch64.resolve("open"), Resolved::Absent);
    }

    #[test]
    fn i386_socket_calls_are_multiplexed() {
        assert_eq!(x86_multiplexed("socket"), Some((X86_SOCKETCALL, 1)));
        assert_eq!(x86_multiplexed("sendmmsg"), Some((X86_SOCKETCALL, 20)));
        assert_eq!(x86_multiplexed("shmctl"), Some((X86_IPC, 24)));
        assert_eq!(x86_multiplexed("read"), None);
        assert_eq!(Arch::X86.resolve_for_stub("socket"), None);
        assert_eq!(Arch::X86_64.resolve_for_stub("socket"), Some(41));
    }
}
