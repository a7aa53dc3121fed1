//! The cgroup v2 device filter: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) compiled from
//! the folded rules and attached to the container's cgroup with BPF_F_ALLOW_MULTI.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (access in the upper 16 bits of access_type, device type in the lower), tests each
//! exception in turn, returns the exception's verdict on the first match and the default
//! verdict otherwise (1 allows, 0 denies). Matching follows the v1 controller: an allow
//! exception must grant *every* requested access; a deny exception matches when it covers
//! *any* requested access.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use super::{DevType, DeviceState, Key};
use crate::cgroup::CgroupError;
use crate::sys::bpf as sys;

const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP32_JEQ_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
const JMP32_JNE_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
const JMP32_JNE_X: u8 = 0x5e; // BPF_JMP32 | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: r1 = context; r2 = device type; r3 = requested access; r4 = major; r5 = minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// `struct bpf_insn` as a little-endian u64: code, dst/src registers, offset, immediate.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | (u64::from((dst & 0xf) | ((src & 0xf) << 4)) << 8)
        | (u64::from(off as u16) << 16)
        | (u64::from(imm as u32) << 32)
}

/// Compile `state` into instructions.
pub(crate) fn program(state: &DeviceState) -> Vec<u64> {
    let mut insns = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    let verdict = i32::from(!state.default_allow);
    for (key, access) in &state.exceptions {
        insns.extend(block(key, access.bits(), state.default_allow, verdict));
    }
    insns.push(insn(ALU32_MOV_K, R0, 0, 0, i32::from(state.default_allow)));
    insns.push(insn(EXIT, 0, 0, 0, 0));
    insns
}

/// One exception: a run of "skip to the next block unless …" tests, then return `verdict`.
fn block(key: &Key, access: u8, deny_exception: bool, verdict: i32) -> Vec<u64> {
    // Tests as (opcode, dst, src, imm); their jump offsets are filled in once the length is known.
    let mut tests: Vec<(u8, u8, u8, i32)> = Vec::new();
    let typ = match key.typ {
        DevType::Char => BPF_DEVCG_DEV_CHAR,
        DevType::Block => BPF_DEVCG_DEV_BLOCK,
    };
    tests.push((JMP32_JNE_K, R2, 0, typ));
    let mut pre = Vec::new();
    if access != super::Access::ALL.bits() {
        // r1 = requested & rule (the context pointer is not needed any more).
        pre.push((tests.len(), insn(ALU32_MOV_X, R1, R3, 0, 0)));
        pre.push((tests.len(), insn(ALU32_AND_K, R1, 0, 0, i32::from(access))));
        if deny_exception {
            tests.push((JMP32_JEQ_K, R1, 0, 0)); // no requested access is denied
        } else {
            tests.push((JMP32_JNE_X, R1, R3, 0)); // some requested access is not allowed
        }
    }
    if let Some(major) = key.major {
        tests.push((JMP32_JNE_K, R4, 0, major as i32));
    }
    if let Some(minor) = key.minor {
        tests.push((JMP32_JNE_K, R5, 0, minor as i32));
    }
    let len = tests.len() + pre.len() + 2;
    let mut out = Vec::with_capacity(len);
    for (i, (code, dst, src, imm)) in tests.into_iter().enumerate() {
        out.extend(pre.iter().filter(|(at, _)| *at == i).map(|(_, ins)| *ins));
        let off = (len - out.len() - 1) as i16;
        out.push(insn(code, dst, src, off, imm));
    }
    out.push(insn(ALU32_MOV_K, R0, 0, 0, verdict));
    out.push(insn(EXIT, 0, 0, 0, 0));
    out
}

/// Load the filter for `state` and attach it to the cgroup `dir`, replacing any device filter
/// attached there before (none on a cgroup created just now: `fresh` skips the query).
pub(crate) fn install(dir: BorrowedFd<'_>, state: &DeviceState, fresh: bool) -> Result<(), CgroupError> {
    let insns = program(state);
    let prog = load(&insns)?;
    let old: Vec<OwnedFd> = if fresh { Vec::new() } else { attached(dir)? };
    let multi = sys::F_ALLOW_MULTI;
    if let [only] = old.as_slice() {
        match sys::prog_attach(dir, prog.as_fd(), sys::ATTACH_CGROUP_DEVICE, multi | sys::F_REPLACE, Some(only.as_fd()))
        {
            Ok(()) => return Ok(()),
            // Kernels before 5.6 know no BPF_F_REPLACE: attach, then detach the old one.
            Err(Errno::EINVAL) => {}
            Err(e) => return Err(CgroupError::DeviceFilter { op: "replace", source: e }),
        }
    }
    sys::prog_attach(dir, prog.as_fd(), sys::ATTACH_CGROUP_DEVICE, multi, None)
        .map_err(|e| CgroupError::DeviceFilter { op: "attach", source: e })?;
    for p in &old {
        sys::prog_detach(dir, p.as_fd(), sys::ATTACH_CGROUP_DEVICE)
            .map_err(|e| CgroupError::DeviceFilter { op: "detach the previous", source: e })?;
    }
    Ok(())
}

fn load(insns: &[u64]) -> Result<OwnedFd, CgroupError> {
    match sys::prog_load_cgroup_device(insns, c"Apache", None) {
        Ok(fd) => Ok(fd),
        // Load again with the verifier's log, to say why.
        Err(Errno::EACCES | Errno::EINVAL) => {
            let mut log = vec![0u8; 64 * 1024];
            let e = sys::prog_load_cgroup_device(insns, c"Apache", Some(&mut log)).err().unwrap_or(Errno::EINVAL);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let log = String::from_utf8_lossy(&log[..end]).trim().to_owned();
            Err(CgroupError::DeviceFilterRejected { log, source: e })
        }
        Err(e) => Err(CgroupError::DeviceFilter { op: "load", source: e }),
    }
}

/// The device programs attached to `dir` (ones this process may not open are left alone).
fn attached(dir: BorrowedFd<'_>) -> Result<Vec<OwnedFd>, CgroupError> {
    let ids = sys::prog_query(dir, sys::ATTACH_CGROUP_DEVICE)
        .map_err(|e| CgroupError::DeviceFilter { op: "query the attached", source: e })?;
    let mut fds = Vec::with_capacity(ids.len());
    for id in ids {
        match sys::prog_get_fd_by_id(id) {
            Ok(fd) => fds.push(fd),
            Err(Errno::EPERM | Errno::EACCES | Errno::ENOENT) => {}
            Err(e) => return Err(CgroupError::DeviceFilter { op: "open the attached", source: e }),
        }
    }
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::devices::{fold, parse_rules};

    /// Run the program the way the kernel would, for the few opcodes it uses.
    fn run(insns: &[u64], typ: i32, access: u8, major: u32, minor: u32) -> u32 {
        let mut ctx = [0u32; 3];
        ctx[0] = (u32::from(access) << 16) | typ as u32;
        ctx[1] = major;
        ctx[2] = minor;
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let w = insns[pc];
            let (code, dst, src) = ((w & 0xff) as u8, ((w >> 8) & 0xf) as usize, ((w >> 12) & 0xf) as usize);
            let (off, imm) = ((w >> 16) as u16 as i16, (w >> 32) as u32);
            pc += 1;
            let jump = |cond: bool, pc: &mut usize| {
                if cond {
                    *pc = (*pc as isize + off as isize) as usize;
                }
            };
            match code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[off as usize / 4]);
                }
                ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & imm),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> imm),
                ALU32_MOV_K => r[dst] = u64::from(imm),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                JMP32_JNE_K => jump(r[dst] as u32 != imm, &mut pc),
                JMP32_JEQ_K => jump(r[dst] as u32 == imm, &mut pc),
                JMP32_JNE_X => jump(r[dst] as u32 != r[src] as u32, &mut pc),
                EXIT => return r[0] as u32,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn filter(json: &str) -> Vec<u64> {
        let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        program(&fold(&parse_rules(&rules).unwrap()).unwrap())
    }

    const C: i32 = BPF_DEVCG_DEV_CHAR;
    const B: i32 = BPF_DEVCG_DEV_BLOCK;
    const R: u8 = 2;
    const W: u8 = 4;
    const M: u8 = 1;

    #[test]
    fn deny_all_allows_only_the_default_devices() {
        let p = filter(r#"[{"allow":false,"access":"rwm"}]"#);
        assert_eq!(run(&p, C, R | W, 1, 3), 1, "/dev/null");
        assert_eq!(run(&p, C, R, 136, 7), 1, "a pts");
        assert_eq!(run(&p, C, R | W, 10, 200), 1, "tun");
        assert_eq!(run(&p, C, R, 1, 11), 0, "/dev/kmsg");
        assert_eq!(run(&p, B, R, 7, 0), 0, "loop0");
        assert_eq!(run(&p, B, M, 7, 0), 1, "mknod of any block device");
        assert_eq!(run(&p, B, M | R, 7, 0), 0, "mknod and read together");
        assert_eq!(run(&p, C, R, 3, 1), 0, "same minor as /dev/null, other major");
    }

    #[test]
    fn allow_exceptions_need_every_requested_access() {
        let p =
            filter(r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":11,"access":"r"}]"#);
        assert_eq!(run(&p, C, R, 1, 11), 1);
        assert_eq!(run(&p, C, R | W, 1, 11), 0);
        assert_eq!(run(&p, C, W, 1, 11), 0);
    }

    #[test]
    fn deny_exceptions_match_any_requested_access() {
        let p =
            filter(r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":1,"minor":11,"access":"w"}]"#);
        assert_eq!(run(&p, C, R, 1, 11), 1);
        assert_eq!(run(&p, C, W, 1, 11), 0);
        assert_eq!(run(&p, C, R | W, 1, 11), 0, "open O_RDWR asks for both");
        assert_eq!(run(&p, B, R | W, 8, 0), 1);
    }

    #[test]
    fn wildcards_match_any_number() {
        let p = filter(r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":8,"access":"rw"}]"#);
        assert_eq!(run(&p, B, R | W, 8, 0), 1);
        assert_eq!(run(&p, B, R, 8, 17), 1);
        assert_eq!(run(&p, C, R, 8, 0), 0, "type must match");
        assert_eq!(run(&p, B, R, 9, 0), 0);
    }

    #[test]
    fn instructions_are_encoded_like_the_kernel_expects() {
        // r2 = *(u32 *)(r1 + 0): code 0x61, dst 2, src 1.
        assert_eq!(insn(LDX_MEM_W, R2, R1, 0, 0).to_le_bytes(), [0x61, 0x12, 0, 0, 0, 0, 0, 0]);
        // if w4 != 136 goto +3
        assert_eq!(insn(JMP32_JNE_K, R4, 0, 3, 136).to_le_bytes(), [0x56, 0x04, 3, 0, 136, 0, 0, 0]);
    }
}
