//! Compiler tests: a classic-BPF interpreter runs the compiled program on (arch, nr, args) and the
//! returned action is compared with what runc + libseccomp decide for the same profile.

use oci_spec::runtime::LinuxSeccomp;
use seccompiler::sock_filter;

use super::arch::{AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::rules::{CmpOp, ENOSYS_ACTION};
use super::*;

const X86_64: u32 = AUDIT_ARCH_X86_64;
const I386: u32 = AUDIT_ARCH_I386;
const EPERM: u32 = RET_ERRNO | 1;
const ENOSYS: u32 = RET_ERRNO | 38;
const EINVAL: u32 = RET_ERRNO | 22;

/// Evaluate a classic-BPF seccomp program the way the kernel does.
pub(crate) fn run(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (index, arg) in args.iter().enumerate() {
        data[16 + 8 * index..24 + 8 * index].copy_from_slice(&arg.to_le_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    loop {
        let insn = &program[pc];
        let k = insn.k;
        let branch = |taken: bool| 1 + usize::from(if taken { insn.jt } else { insn.jf });
        pc += match insn.code {
            0x20 => {
                let at = k as usize;
                assert!(at % 4 == 0 && at + 4 <= data.len(), "load outside seccomp_data: {at}");
                acc = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
                1
            }
            0x54 => {
                acc &= k;
                1
            }
            0x05 => 1 + k as usize,
            0x15 => branch(acc == k),
            0x25 => branch(acc > k),
            0x35 => branch(acc >= k),
            0x45 => branch(acc & k != 0),
            0x06 => return k,
            code => panic!("unexpected BPF opcode {code:#x} at {pc}"),
        };
        assert!(pc < program.len(), "program runs off its end");
    }
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

fn compiled(json: &str) -> CompiledSeccomp {
    compile(&profile(json)).unwrap()
}

fn nr(arch: arch::Arch, name: &str) -> u32 {
    match arch.resolve(name) {
        arch::Resolved::Number(number) => number,
        other => panic!("{name} on {arch:?}: {other:?}"),
    }
}

fn eval(filter: &CompiledSeccomp, audit: u32, number: u32, args: [u64; 6]) -> u32 {
    run(filter.program(), audit, number, args)
}

pub(crate) fn podman_profile() -> LinuxSeccomp {
    let path = client_sample("podman-config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(config["linux"]["seccomp"].clone()).unwrap()
}

/// A client sample kept with the tests (`runtime/tests/data/<name>`; podman-config.json is the
/// config.json podman 4.3 generated on this project's machines, default seccomp profile included).
pub(crate) fn client_sample(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

#[test]
fn podman_profile_decides_like_runc() {
    use arch::Arch::{X32, X86, X86_64 as A64};
    let filter = compile(&podman_profile()).unwrap();
    assert!(filter.warnings().is_empty(), "{:?}", filter.warnings());
    assert_eq!(filter.flags(), 0);
    let zero = [0u64; 6];
    // Plain allowed calls on all three ABIs.
    assert_eq!(eval(&filter, X86_64, nr(A64, "read"), zero), RET_ALLOW);
    assert_eq!(eval(&filter, I386, nr(X86, "read"), zero), RET_ALLOW);
    assert_eq!(eval(&filter, X86_64, nr(X32, "read"), zero), RET_ALLOW);
    assert_eq!(eval(&filter, X86_64, nr(X32, "rt_sigaction"), zero), RET_ALLOW);
    assert_eq!(eval(&filter, I386, nr(X86, "_llseek"), zero), RET_ALLOW);
    // Explicit EPERM rules; default ENOSYS for the rest.
    assert_eq!(eval(&filter, X86_64, nr(A64, "kexec_load"), zero), EPERM);
    assert_eq!(eval(&filter, I386, nr(X86, "bdflush"), zero), EPERM);
    assert_eq!(eval(&filter, X86_64, nr(A64, "open_by_handle_at"), zero), EPERM);
    assert_eq!(eval(&filter, X86_64, nr(A64, "lookup_dcookie"), zero), EPERM);
    assert_eq!(eval(&filter, X86_64, nr(A64, "create_module"), zero), ENOSYS);
    assert_eq!(eval(&filter, X86_64, 1000, zero), ENOSYS);
    assert_eq!(eval(&filter, X86_64, 512, zero), ENOSYS, "x32-only number without the x32 bit");
    // setns is listed as ALLOW then as ERRNO: libseccomp keeps the first unconditional rule.
    assert_eq!(eval(&filter, X86_64, nr(A64, "setns"), zero), RET_ALLOW);
    // personality: five allowed values, compared on 64 bits on x86_64 and 32 bits on i386.
    for (value, expected) in
        [(0, RET_ALLOW), (8, RET_ALLOW), (0x20000, RET_ALLOW), (0xffff_ffff, RET_ALLOW), (1, ENOSYS)]
    {
        assert_eq!(eval(&filter, X86_64, nr(A64, "personality"), [value, 0, 0, 0, 0, 0]), expected);
        assert_eq!(eval(&filter, I386, nr(X86, "personality"), [value, 0, 0, 0, 0, 0]), expected);
    }
    assert_eq!(eval(&filter, X86_64, nr(A64, "personality"), [0x1_0000_0000, 0, 0, 0, 0, 0]), ENOSYS);
    assert_eq!(eval(&filter, I386, nr(X86, "personality"), [0x1_0000_0000, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&filter, X86_64, nr(X32, "personality"), [0x1_0000_0008, 0, 0, 0, 0, 0]), RET_ALLOW);
    // socket: NETLINK_AUDIT on AF_NETLINK is EINVAL, every other combination allowed.
    let socket = |audit, number, family, protocol| eval(&filter, audit, number, [family, 3, protocol, 0, 0, 0]);
    assert_eq!(socket(X86_64, nr(A64, "socket"), 16, 9), EINVAL);
    assert_eq!(socket(X86_64, nr(A64, "socket"), 16, 0), RET_ALLOW);
    assert_eq!(socket(X86_64, nr(A64, "socket"), 2, 9), RET_ALLOW);
    assert_eq!(socket(I386, nr(X86, "socket"), 16, 9), EINVAL);
    assert_eq!(socket(X86_64, nr(X32, "socket"), 16, 9), EINVAL);
    // i386 socketcall is allowed outright, so the multiplexed copies of the socket rules are moot.
    assert_eq!(socket(I386, arch::X86_SOCKETCALL, 1, 9), RET_ALLOW);
    // Architectures outside the profile are killed.
    assert_eq!(eval(&filter, AUDIT_ARCH_AARCH64, 63, zero), RET_KILL_THREAD);
}

#[test]
fn every_operator_compares_like_libseccomp() {
    let interesting: [u64; 12] = [
        0,
        1,
        5,
        6,
        0x7fff_ffff,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0005,
        0x2_0000_0000,
        0x8000_0000_0000_0000,
        u64::MAX - 1,
        u64::MAX,
    ];
    for (op, name) in [
        (CmpOp::Eq, "SCMP_CMP_EQ"),
        (CmpOp::Ne, "SCMP_CMP_NE"),
        (CmpOp::Lt, "SCMP_CMP_LT"),
        (CmpOp::Le, "SCMP_CMP_LE"),
        (CmpOp::Gt, "SCMP_CMP_GT"),
        (CmpOp::Ge, "SCMP_CMP_GE"),
    ] {
        for datum in interesting {
            let filter = compiled(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{{"names":["lseek"],"action":"SCMP_ACT_ALLOW","args":[{{"index":1,"value":{datum},"op":"{name}"}}]}}]}}"#
            ));
            for arg in interesting.iter().flat_map(|v| [*v, v.wrapping_add(1), v.wrapping_sub(1)]) {
                let holds = |a: u64, d: u64| match op {
                    CmpOp::Eq => a == d,
                    CmpOp::Ne => a != d,
                    CmpOp::Lt => a < d,
                    CmpOp::Le => a <= d,
                    CmpOp::Gt => a > d,
                    CmpOp::Ge => a >= d,
                    CmpOp::MaskedEq => unreachable!(),
                };
                let expect = |ok: bool| if ok { RET_ALLOW } else { EPERM };
                let args = [0, arg, 0, 0, 0, 0];
                // x86_64 compares all 64 bits; i386 and x32 only the low words.
                assert_eq!(
                    eval(&filter, X86_64, 8, args),
                    expect(holds(arg, datum)),
                    "x86_64 {name} {arg:#x} {datum:#x}"
                );
                let low = |v: u64| v & 0xffff_ffff;
                assert_eq!(
                    eval(&filter, I386, 19, args),
                    expect(holds(low(arg), low(datum))),
                    "i386 {name} {arg:#x} {datum:#x}"
                );
                assert_eq!(
                    eval(&filter, X86_64, X32_SYSCALL_BIT | 8, args),
                    expect(holds(low(arg), low(datum))),
                    "x32 {name} {arg:#x} {datum:#x}"
                );
            }
        }
    }
}

#[test]
fn masked_equality_tests_only_the_mask() {
    // Docker's clone rule: no namespace flag may be set.
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW",
        "args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
    );
    let clone = |flags: u64| eval(&filter, X86_64, 56, [flags, 0, 0, 0, 0, 0]);
    assert_eq!(clone(0x11 | 0x0100_0000 | 0x0020_0000), RET_ALLOW, "SIGCHLD|CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID");
    assert_eq!(clone(0x1_0000_0011), RET_ALLOW, "high bits are outside the mask");
    assert_eq!(clone(0x1000_0000), EPERM, "CLONE_NEWUSER");
    assert_eq!(clone(0x0002_0000), EPERM, "CLONE_NEWNS");

    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ALLOW",
        "args":[{"index":1,"value":18446744069414584575,"valueTwo":4294967298,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
    );
    // mask 0xffffffff_000000ff, value 0x1_00000002 → high word 1, low byte 2.
    let ioctl = |request: u64| eval(&filter, X86_64, 16, [0, request, 0, 0, 0, 0]);
    assert_eq!(ioctl(0x1_0000_0002), RET_ALLOW);
    assert_eq!(ioctl(0x1_1234_5602), RET_ALLOW);
    assert_eq!(ioctl(0x2_0000_0002), EPERM);
    assert_eq!(ioctl(0x1_0000_0003), EPERM);

    // A mask of zero always matches: the rule becomes unconditional.
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ALLOW",
        "args":[{"index":1,"value":0,"valueTwo":5,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
    );
    assert_eq!(eval(&filter, X86_64, 16, [0, 77, 0, 0, 0, 0]), RET_ALLOW);
}

#[test]
fn conditions_on_several_arguments_are_anded_and_on_one_argument_ored() {
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["mmap"],"action":"SCMP_ACT_ALLOW","args":[
            {"index":2,"value":3,"op":"SCMP_CMP_LE"},{"index":5,"value":0,"op":"SCMP_CMP_EQ"}]},
        {"names":["mprotect"],"action":"SCMP_ACT_ALLOW","args":[
            {"index":2,"value":1,"op":"SCMP_CMP_EQ"},{"index":2,"value":3,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let mmap = |prot: u64, offset: u64| eval(&filter, X86_64, 9, [0, 0, prot, 0, 0, offset]);
    assert_eq!(mmap(3, 0), RET_ALLOW);
    assert_eq!(mmap(4, 0), EPERM);
    assert_eq!(mmap(3, 4096), EPERM);
    // runc turns two conditions on one argument into two rules: 1 or 3.
    let mprotect = |prot: u64| eval(&filter, X86_64, 10, [0, 0, prot, 0, 0, 0]);
    assert_eq!(mprotect(1), RET_ALLOW);
    assert_eq!(mprotect(3), RET_ALLOW);
    assert_eq!(mprotect(2), EPERM);
}

#[test]
fn every_action_has_its_kernel_value() {
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","syscalls":[
        {"names":["getpid"],"action":"SCMP_ACT_KILL"},
        {"names":["getppid"],"action":"SCMP_ACT_KILL_THREAD"},
        {"names":["gettid"],"action":"SCMP_ACT_KILL_PROCESS"},
        {"names":["getuid"],"action":"SCMP_ACT_TRAP"},
        {"names":["getgid"],"action":"SCMP_ACT_TRACE","errnoRet":7},
        {"names":["geteuid"],"action":"SCMP_ACT_TRACE"},
        {"names":["getegid"],"action":"SCMP_ACT_LOG"},
        {"names":["getpgrp"],"action":"SCMP_ACT_NOTIFY"},
        {"names":["getsid"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
        {"names":["getcwd"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let check = |name: &str, expected: u32| {
        let number = nr(arch::Arch::X86_64, name);
        assert_eq!(eval(&filter, X86_64, number, [0; 6]), expected, "{name}");
    };
    check("getpid", RET_KILL_THREAD);
    check("getppid", RET_KILL_THREAD);
    check("gettid", RET_KILL_PROCESS);
    check("getuid", RET_TRAP);
    check("getgid", RET_TRACE | 7);
    check("geteuid", RET_TRACE | 1);
    check("getegid", RET_LOG);
    check("getpgrp", RET_USER_NOTIF);
    check("getsid", RET_ERRNO | 13);
    check("getcwd", EPERM);
    check("read", RET_ALLOW);
    assert_eq!(filter.listener_path(), Some("/run/agent.sock"));
    assert_eq!(filter.flags(), crate::sys::seccomp::SECCOMP_FILTER_FLAG_NEW_LISTENER);
}

#[test]
fn default_errno_ret_and_enosys_stub_follow_runc() {
    // Default ERRNO without defaultErrnoRet is EPERM; runc's stub answers ENOSYS above the
    // largest syscall the profile names, per ABI.
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
        "syscalls":[{"names":["read","openat","socket"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let openat = 257;
    assert_eq!(eval(&filter, X86_64, openat, [0; 6]), RET_ALLOW);
    assert_eq!(eval(&filter, X86_64, 100, [0; 6]), EPERM);
    assert_eq!(eval(&filter, X86_64, openat + 1, [0; 6]), ENOSYS);
    assert_eq!(eval(&filter, X86_64, 0x3fff_ffff, [0; 6]), ENOSYS);
    assert_eq!(eval(&filter, X86_64, X32_SYSCALL_BIT | 100, [0; 6]), EPERM);
    assert_eq!(eval(&filter, X86_64, X32_SYSCALL_BIT | (openat + 1), [0; 6]), ENOSYS);
    assert_eq!(eval(&filter, X86_64, u32::MAX, [0; 6]), ENOSYS);
    // i386: openat is 295, the largest name; the direct socket syscall (359) is above it, and
    // socket names do not count there (libseccomp resolves them to pseudo numbers), so runc's
    // stub shadows the socket rule. socketcall(SYS_SOCKET) stays allowed.
    assert_eq!(eval(&filter, I386, 295, [0; 6]), RET_ALLOW);
    assert_eq!(eval(&filter, I386, 359, [0; 6]), ENOSYS);
    assert_eq!(eval(&filter, I386, 102, [1, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&filter, I386, 102, [2, 0, 0, 0, 0, 0]), EPERM);

    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":95,"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(eval(&filter, X86_64, 1, [0; 6]), RET_ERRNO | 95);
    assert_eq!(eval(&filter, X86_64, 0, [0; 6]), RET_ALLOW);
    // read is syscall 0: "largest" is 0, for which runc adds no stub.
    assert_eq!(eval(&filter, X86_64, 500, [0; 6]), RET_ERRNO | 95);

    // No stub when the default lets calls through.
    let filter =
        compiled(r#"{"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL"}]}"#);
    assert_eq!(eval(&filter, X86_64, 1000, [0; 6]), RET_LOG);
    assert_eq!(ENOSYS_ACTION, ENOSYS);
}

#[test]
fn architectures_and_abis_are_split_like_libseccomp() {
    // Only x86_64: x32 numbers are a bad ABI (killed), except -1 which tracers use.
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(eval(&filter, X86_64, 0, [0; 6]), EPERM);
    assert_eq!(eval(&filter, X86_64, 1, [0; 6]), RET_ALLOW);
    assert_eq!(eval(&filter, X86_64, X32_SYSCALL_BIT, [0; 6]), RET_KILL_THREAD);
    assert_eq!(eval(&filter, X86_64, u32::MAX, [0; 6]), RET_ALLOW);
    assert_eq!(eval(&filter, I386, 3, [0; 6]), RET_KILL_THREAD);
    // No architectures: the native one only.
    let filter =
        compiled(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO"}]}"#);
    assert_eq!(eval(&filter, X86_64, 0, [0; 6]), EPERM);
    assert_eq!(eval(&filter, I386, 3, [0; 6]), RET_KILL_THREAD);
    // aarch64 listed: its own numbers.
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_AARCH64"],
        "syscalls":[{"names":["read","open"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(eval(&filter, AUDIT_ARCH_AARCH64, 63, [0; 6]), EPERM);
    assert_eq!(eval(&filter, AUDIT_ARCH_AARCH64, 56, [0; 6]), RET_ALLOW, "aarch64 has no open; 56 is openat");
    assert_eq!(eval(&filter, X86_64, 2, [0; 6]), EPERM);
}

#[test]
fn i386_socket_rules_also_cover_socketcall() {
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86"],
        "syscalls":[{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
                    {"names":["recv","shmat"],"action":"SCMP_ACT_ALLOW"},
                    {"names":["exit_group","clone3"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    // clone3 (435) lifts runc's ENOSYS stub above the direct socket syscalls (359..).
    // Direct socket(AF_UNIX) allowed; on socketcall the arg0 condition became `call == SYS_SOCKET`.
    assert_eq!(eval(&filter, I386, 359, [1, 1, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&filter, I386, 359, [2, 1, 0, 0, 0, 0]), ENOSYS);
    assert_eq!(eval(&filter, I386, 102, [1, 0x1000, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&filter, I386, 102, [10, 0x1000, 0, 0, 0, 0]), RET_ALLOW, "SYS_RECV");
    assert_eq!(eval(&filter, I386, 102, [3, 0x1000, 0, 0, 0, 0]), ENOSYS, "SYS_CONNECT");
    assert_eq!(eval(&filter, I386, 117, [21, 0, 0, 0, 0, 0]), RET_ALLOW, "ipc(SHMAT)");
    assert_eq!(eval(&filter, I386, 397, [0; 6]), RET_ALLOW, "direct shmat");
}

#[test]
fn rule_precedence_follows_libseccomp() {
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["dup"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
        {"names":["dup"],"action":"SCMP_ACT_KILL"},
        {"names":["dup"],"action":"SCMP_ACT_ALLOW"},
        {"names":["dup2"],"action":"SCMP_ACT_TRAP"},
        {"names":["dup2"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
        {"names":["socket"],"action":"SCMP_ACT_ERRNO"},
        {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":16,"op":"SCMP_CMP_NE"}]}]}"#,
    );
    // An unconditional rule replaces earlier conditional ones and wins over later rules.
    assert_eq!(eval(&filter, X86_64, 32, [1, 0, 0, 0, 0, 0]), RET_KILL_THREAD);
    assert_eq!(eval(&filter, X86_64, 33, [1, 0, 0, 0, 0, 0]), RET_TRAP);
    // A rule equal to the default action is skipped (runc), leaving the conditional one.
    assert_eq!(eval(&filter, X86_64, 41, [2, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(eval(&filter, X86_64, 41, [16, 0, 0, 0, 0, 0]), EPERM);
}

#[test]
fn unknown_and_foreign_names() {
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[{"names":["no_such_call","arm_fadvise64_64","_llseek","read"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(filter.warnings().len(), 1, "{:?}", filter.warnings());
    assert!(filter.warnings()[0].contains("no_such_call"));
    assert_eq!(eval(&filter, X86_64, 0, [0; 6]), EPERM);
    assert_eq!(eval(&filter, X86_64, 1, [0; 6]), RET_ALLOW);
}

#[test]
fn flags_map_to_seccomp_filter_flags() {
    use crate::sys::seccomp::*;
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
    );
    assert_eq!(filter.flags(), SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","listenerMetadata":"m",
        "flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert_eq!(
        filter.flags(),
        SECCOMP_FILTER_FLAG_TSYNC
            | SECCOMP_FILTER_FLAG_TSYNC_ESRCH
            | SECCOMP_FILTER_FLAG_NEW_LISTENER
            | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    );
    assert_eq!(filter.listener_metadata(), Some("m"));
}

#[test]
fn bad_profiles_are_refused_with_the_reason() {
    let error = |json: &str| compile(&profile(json)).unwrap_err();
    assert!(matches!(
        error(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_PPC64LE"]}"#),
        SeccompError::UnsupportedArchitecture { .. }
    ));
    assert!(matches!(
        error(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#
        ),
        SeccompError::ArgumentIndex { rule: 0, index: 6 }
    ));
    assert!(matches!(
        error(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#
        ),
        SeccompError::ErrnoOutOfRange { value: 70000, .. }
    ));
    assert!(matches!(
        error(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/a"}"#),
        SeccompError::NotifyDefaultAction
    ));
    assert!(matches!(
        error(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}"#
        ),
        SeccompError::NotifyOnWrite
    ));
    assert!(matches!(
        error(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#),
        SeccompError::NotifyWithoutListener
    ));
    assert!(matches!(
        error(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#),
        SeccompError::WaitKillableWithoutNotify
    ));
    assert!(matches!(
        error(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}"#),
        SeccompError::NoSyscallNames { rule: 0 }
    ));
    assert!(matches!(
        error(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[""],"action":"SCMP_ACT_ERRNO"}]}"#),
        SeccompError::EmptySyscallName { rule: 0 }
    ));
    // Overlapping conditions with different actions: libseccomp's answer depends on its tree.
    let conflict = error(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":16,"op":"SCMP_CMP_EQ"}]},
        {"names":["socket"],"action":"SCMP_ACT_KILL","args":[{"index":2,"value":9,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(matches!(conflict, SeccompError::ConflictingRules { first: 0, second: 1, .. }), "{conflict}");
    assert_eq!(conflict.kind(), ErrorKind::InvalidSpec);
    // Unknown action strings never reach us: oci-spec refuses them while parsing config.json.
    assert!(serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#).is_err());
}

#[test]
fn disjoint_rules_with_different_actions_are_accepted() {
    let filter = compiled(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["ioctl"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":255,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"}]},
        {"names":["ioctl"],"action":"SCMP_ACT_KILL","args":[{"index":1,"value":255,"valueTwo":2,"op":"SCMP_CMP_MASKED_EQ"}]},
        {"names":["ioctl"],"action":"SCMP_ACT_TRAP","args":[{"index":1,"value":768,"op":"SCMP_CMP_EQ"}]},
        {"names":["ioctl"],"action":"SCMP_ACT_LOG","args":[{"index":1,"value":1,"op":"SCMP_CMP_LT"},{"index":0,"value":3,"op":"SCMP_CMP_GE"}]}]}"#,
    );
    let ioctl = |fd: u64, request: u64| eval(&filter, X86_64, 16, [fd, request, 0, 0, 0, 0]);
    assert_eq!(ioctl(0, 0x101), EPERM);
    assert_eq!(ioctl(0, 0x1_0000_0002), RET_KILL_THREAD);
    assert_eq!(ioctl(0, 0x300), RET_TRAP);
    assert_eq!(ioctl(3, 0), RET_LOG);
    assert_eq!(ioctl(2, 0), RET_ALLOW);
    assert_eq!(ioctl(0, 0x303), RET_ALLOW);
}

/// A deterministic xorshift generator, enough to vary profiles.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn random_profiles_evaluate_like_their_rules() {
    const VALUES: [u64; 8] = [0, 1, 7, 0xff, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_00ff, u64::MAX];
    const OPS: [&str; 7] = [
        "SCMP_CMP_EQ",
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_GT",
        "SCMP_CMP_GE",
        "SCMP_CMP_MASKED_EQ",
    ];
    const ACTIONS: [&str; 4] = ["SCMP_ACT_ALLOW", "SCMP_ACT_TRAP", "SCMP_ACT_LOG", "SCMP_ACT_KILL_PROCESS"];
    let names = ["read", "write", "openat", "close", "mmap", "ioctl", "clone", "socket", "kill", "prctl"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..60 {
        let mut rules = Vec::new();
        for name in names {
            // One action per syscall so that overlapping rules are legal.
            let action = rng.pick(&ACTIONS);
            for _ in 0..(rng.next() % 4) {
                let conds: Vec<String> = (0..(rng.next() % 3))
                    .map(|_| {
                        format!(
                            r#"{{"index":{},"value":{},"valueTwo":{},"op":"{}"}}"#,
                            rng.next() % 3,
                            rng.pick(&VALUES),
                            rng.pick(&VALUES),
                            rng.pick(&OPS)
                        )
                    })
                    .collect();
                rules.push(format!(r#"{{"names":["{name}"],"action":"{action}","args":[{}]}}"#, conds.join(",")));
            }
        }
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{}]}}"#,
            rules.join(",")
        );
        let profile = profile(&json);
        let filter = compile(&profile).unwrap();
        let db = rules::build(&profile).unwrap();
        for arch_rules in &db.arches {
            let wide = arch_rules.arch.has_64bit_args();
            for (&number, syscall) in &arch_rules.syscalls {
                if arch_rules.enosys_above.is_some_and(|largest| number > largest) {
                    continue; // runc's ENOSYS stub shadows it (i386 direct socket calls)
                }
                for _ in 0..40 {
                    let args = [rng.pick(&VALUES), rng.pick(&VALUES), rng.pick(&VALUES), 0, 0, 0];
                    let expected = syscall.unconditional.unwrap_or_else(|| {
                        syscall
                            .conditional
                            .iter()
                            .find(|rule| rule.conds.iter().all(|cond| holds(cond, args, wide)))
                            .map_or(db.default_action, |rule| rule.action)
                    });
                    let got = eval(&filter, arch_rules.arch.audit(), number, args);
                    assert_eq!(got, expected, "round {round} {:?} nr {number} args {args:x?}\n{json}", arch_rules.arch);
                }
            }
        }
    }
}

/// The meaning of one narrowed condition.
fn holds(cond: &rules::Cond, args: [u64; 6], wide: bool) -> bool {
    let width = if wide { u64::MAX } else { 0xffff_ffff };
    let value = args[cond.arg as usize] & width;
    match cond.op {
        CmpOp::Eq => value == cond.datum,
        CmpOp::Ne => value != cond.datum,
        CmpOp::Lt => value < cond.datum,
        CmpOp::Le => value <= cond.datum,
        CmpOp::Gt => value > cond.datum,
        CmpOp::Ge => value >= cond.datum,
        CmpOp::MaskedEq => value & cond.mask == cond.datum,
    }
}

/// Not an assertion (no timed tests): prints the compile time for the report; run with
/// `cargo test -p strata --release compile_time -- --nocapture`.
#[test]
fn compile_time_of_the_podman_profile() {
    let profile = podman_profile();
    let runs = 50;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        let filter = compile(&profile).unwrap();
        assert!(!filter.program().is_empty());
    }
    let per_compile = start.elapsed() / runs;
    let filter = compile(&profile).unwrap();
    println!("podman profile: {} instructions, {per_compile:?} per compile", filter.program().len());
}
