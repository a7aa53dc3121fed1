//! OCI profile → per-architecture rule database, with the semantics runc gets from libseccomp:
//!
//! - one rule per (name, rule) pair; a rule whose action equals the default action is skipped
//!   (runc skips it; libseccomp would refuse it);
//! - conditions are ANDed, except that runc turns a rule with two conditions on the same argument
//!   into one rule per condition (ORed);
//! - per syscall, the first unconditional rule wins: it replaces earlier conditional rules and
//!   later rules for that syscall are ignored;
//! - 32-bit ABIs (i386, x32) compare only the low 32 bits of arguments and values;
//! - a masked-equality condition with an empty mask always matches and is dropped;
//! - on i386, socket and SysV IPC rules are added to the direct syscall and to the multiplexer
//!   (`socketcall`/`ipc`) with `arg0 == call` replacing any condition on arg 0;
//! - a name absent on one architecture is skipped there; a name unknown everywhere is ignored
//!   with a warning (runc logs and ignores it).
//!
//! Conditional rules with different actions that can match the same arguments are refused:
//! libseccomp resolves such overlaps through the shape of its internal decision tree, and a
//! profile whose meaning depends on that is better rejected than guessed.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

use super::SeccompError;
use super::arch::{Arch, Resolved, x86_multiplexed};

pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

const ENOSYS: u32 = 38;
const EPERM: u32 = 1;
const MAX_ARGS: usize = 6;

/// The action a filter returns for an architecture it does not cover (libseccomp's default
/// "bad arch" action, which runc keeps).
pub const BAD_ARCH_ACTION: u32 = RET_KILL_THREAD;
/// What runc's ENOSYS stub returns for syscalls newer than the profile.
pub const ENOSYS_ACTION: u32 = RET_ERRNO | ENOSYS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq,
}

/// One argument comparison, already narrowed to the ABI's argument width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    pub arg: u8,
    pub op: CmpOp,
    /// All ones (of the width) except for masked equality.
    pub mask: u64,
    /// Already masked.
    pub datum: u64,
}

/// A conjunction of conditions and the action it selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondRule {
    pub conds: Vec<Cond>,
    pub action: u32,
    /// Index of the rule in `linux.seccomp.syscalls`, for error messages.
    pub origin: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyscallRules {
    pub unconditional: Option<u32>,
    pub conditional: Vec<CondRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchRules {
    pub arch: Arch,
    pub syscalls: BTreeMap<u32, SyscallRules>,
    /// runc's ENOSYS stub: syscall numbers above this return ENOSYS before the filter runs.
    pub enosys_above: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub default_action: u32,
    pub arches: Vec<ArchRules>,
    pub uses_notify: bool,
    pub warnings: Vec<String>,
}

/// The kernel return value of an OCI action.
pub fn action_value(action: LinuxSeccompAction, errno_ret: Option<u32>, what: &str) -> Result<u32, SeccompError> {
    let errno = |default: u32| -> Result<u32, SeccompError> {
        let value = errno_ret.unwrap_or(default);
        if value > 0xffff {
            return Err(SeccompError::ErrnoOutOfRange { what: what.to_owned(), value });
        }
        Ok(value)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | errno(EPERM)?,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | errno(EPERM)?,
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
    })
}

fn takes_errno(action: LinuxSeccompAction) -> bool {
    matches!(action, LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace)
}

fn oci_arch(arch: oci_spec::runtime::Arch) -> Result<Arch, SeccompError> {
    use oci_spec::runtime::Arch as Oci;
    match arch {
        Oci::ScmpArchNative => Ok(Arch::native()),
        Oci::ScmpArchX86 => Ok(Arch::X86),
        Oci::ScmpArchX86_64 => Ok(Arch::X86_64),
        Oci::ScmpArchX32 => Ok(Arch::X32),
        Oci::ScmpArchAarch64 => Ok(Arch::Aarch64),
        other => Err(SeccompError::UnsupportedArchitecture { arch: other.to_string() }),
    }
}

/// Build the rule database of a profile.
pub fn build(profile: &LinuxSeccomp) -> Result<Database, SeccompError> {
    let mut warnings = Vec::new();
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefaultAction);
    }
    if profile.default_errno_ret().is_some() && !takes_errno(profile.default_action()) {
        warnings.push(format!("defaultErrnoRet is ignored with default action {}", profile.default_action()));
    }
    let default_action = action_value(profile.default_action(), profile.default_errno_ret(), "defaultErrnoRet")?;

    let mut arch_list = vec![Arch::native()];
    for arch in profile.architectures().iter().flatten() {
        let arch = oci_arch(*arch)?;
        if !arch_list.contains(&arch) {
            arch_list.push(arch);
        }
    }
    let mut arches: Vec<ArchRules> =
        arch_list.iter().map(|&arch| ArchRules { arch, syscalls: BTreeMap::new(), enosys_above: None }).collect();

    let mut uses_notify = false;
    let rules = profile.syscalls().as_deref().unwrap_or_default();
    for (origin, rule) in rules.iter().enumerate() {
        if rule.names().is_empty() {
            return Err(SeccompError::NoSyscallNames { rule: origin });
        }
        let what = format!("rule {origin} ({})", rule.names().join(", "));
        if rule.errno_ret().is_some() && !takes_errno(rule.action()) {
            warnings.push(format!("errnoRet of {what} is ignored with action {}", rule.action()));
        }
        let action = action_value(rule.action(), rule.errno_ret(), &format!("errnoRet of {what}"))?;
        let args = rule.args().as_deref().unwrap_or_default();
        for arg in args {
            if arg.index() >= MAX_ARGS {
                return Err(SeccompError::ArgumentIndex { rule: origin, index: arg.index() });
            }
        }
        let groups = condition_groups(args);
        for name in rule.names() {
            if name.is_empty() {
                return Err(SeccompError::EmptySyscallName { rule: origin });
            }
            if action == RET_USER_NOTIF {
                // The child reports the listener fd with write(2) after installing the filter; a
                // notified write would wait for an agent that has not been told about it yet.
                if name == "write" {
                    return Err(SeccompError::NotifyOnWrite);
                }
                uses_notify = true;
            }
            if action == default_action {
                continue;
            }
            if arches.iter().all(|arch| arch.arch.resolve(name) == Resolved::Unknown) {
                warnings.push(format!("unknown syscall {name:?} in {what} is ignored"));
                continue;
            }
            for arch_rules in &mut arches {
                add_named_rule(arch_rules, name, &groups, action, origin);
            }
        }
    }
    if uses_notify && profile.listener_path().is_none() {
        return Err(SeccompError::NotifyWithoutListener);
    }

    if !default_allows(profile.default_action()) {
        for arch_rules in &mut arches {
            let largest = rules
                .iter()
                .flat_map(|rule| rule.names())
                .filter_map(|name| arch_rules.arch.resolve_for_stub(name))
                .max();
            arch_rules.enosys_above = largest.filter(|&largest| largest != 0);
        }
    }

    for arch_rules in &arches {
        check_conflicts(arch_rules, rules)?;
    }
    Ok(Database { default_action, arches, uses_notify, warnings })
}

/// runc's stub is not generated when the default action lets syscalls through.
fn default_allows(action: LinuxSeccompAction) -> bool {
    matches!(
        action,
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog | LinuxSeccompAction::ScmpActTrace
    )
}

/// The argument lists that become separate libseccomp rules (runc's same-argument split).
fn condition_groups(args: &[LinuxSeccompArg]) -> Vec<Vec<LinuxSeccompArg>> {
    let mut counts = [0usize; MAX_ARGS];
    for arg in args {
        counts[arg.index()] += 1;
    }
    if counts.iter().any(|&count| count > 1) {
        args.iter().map(|arg| vec![*arg]).collect()
    } else {
        vec![args.to_vec()]
    }
}

fn add_named_rule(arch_rules: &mut ArchRules, name: &str, groups: &[Vec<LinuxSeccompArg>], action: u32, origin: usize) {
    let arch = arch_rules.arch;
    let mut targets: Vec<(u32, Option<u64>)> = Vec::with_capacity(2);
    if arch == Arch::X86 {
        if let Some((multiplexer, call)) = x86_multiplexed(name) {
            targets.push((multiplexer, Some(call)));
        }
    }
    if let Resolved::Number(number) = arch.resolve(name) {
        targets.push((number, None));
    }
    for (number, arg0) in targets {
        for group in groups {
            let conds = narrow_conditions(arch, group, arg0);
            let entry = arch_rules.syscalls.entry(number).or_default();
            if entry.unconditional.is_some() {
                continue;
            }
            if conds.is_empty() {
                entry.unconditional = Some(action);
                entry.conditional.clear();
            } else {
                entry.conditional.push(CondRule { conds, action, origin });
            }
        }
    }
}

fn width_mask(arch: Arch) -> u64 {
    if arch.has_64bit_args() { u64::MAX } else { u64::from(u32::MAX) }
}

/// Conditions in argument order, narrowed to the ABI, tautologies dropped.
fn narrow_conditions(arch: Arch, args: &[LinuxSeccompArg], arg0: Option<u64>) -> Vec<Cond> {
    let width = width_mask(arch);
    let mut slots: [Option<Cond>; MAX_ARGS] = [None; MAX_ARGS];
    for arg in args {
        let (op, mask, datum) = match arg.op() {
            LinuxSeccompOperator::ScmpCmpEq => (CmpOp::Eq, width, arg.value()),
            LinuxSeccompOperator::ScmpCmpNe => (CmpOp::Ne, width, arg.value()),
            LinuxSeccompOperator::ScmpCmpLt => (CmpOp::Lt, width, arg.value()),
            LinuxSeccompOperator::ScmpCmpLe => (CmpOp::Le, width, arg.value()),
            LinuxSeccompOperator::ScmpCmpGt => (CmpOp::Gt, width, arg.value()),
            LinuxSeccompOperator::ScmpCmpGe => (CmpOp::Ge, width, arg.value()),
            // OCI's `value` is the mask and `valueTwo` the expected value.
            LinuxSeccompOperator::ScmpCmpMaskedEq => {
                (CmpOp::MaskedEq, arg.value() & width, arg.value_two().unwrap_or(0))
            }
        };
        slots[arg.index()] = Some(Cond { arg: arg.index() as u8, op, mask, datum: datum & mask & width });
    }
    if let Some(call) = arg0 {
        slots[0] = Some(Cond { arg: 0, op: CmpOp::Eq, mask: width, datum: call });
    }
    slots.into_iter().flatten().filter(|cond| !(cond.op == CmpOp::MaskedEq && cond.mask == 0)).collect()
}

/// The set of argument values one condition accepts.
#[derive(Debug, Clone, Copy)]
enum ValueSet {
    Empty,
    Range(u64, u64),
    AllBut(u64),
    Masked { mask: u64, datum: u64 },
}

fn value_set(cond: &Cond, max: u64) -> ValueSet {
    let d = cond.datum;
    match cond.op {
        CmpOp::Eq => ValueSet::Range(d, d),
        CmpOp::Ne => ValueSet::AllBut(d),
        CmpOp::Lt if d == 0 => ValueSet::Empty,
        CmpOp::Lt => ValueSet::Range(0, d - 1),
        CmpOp::Le => ValueSet::Range(0, d),
        CmpOp::Gt if d >= max => ValueSet::Empty,
        CmpOp::Gt => ValueSet::Range(d + 1, max),
        CmpOp::Ge => ValueSet::Range(d, max),
        CmpOp::MaskedEq if cond.mask == max => ValueSet::Range(d, d),
        CmpOp::MaskedEq => ValueSet::Masked { mask: cond.mask, datum: d },
    }
}

/// The smallest `x >= low` (within `bits`) with `x & mask == datum`.
fn smallest_masked_at_least(low: u64, mask: u64, datum: u64, bits: u32) -> Option<u64> {
    if low & mask == datum {
        return Some(low);
    }
    for bit in 0..bits {
        let b = 1u64 << bit;
        if low & b != 0 || (mask & b != 0 && datum & b == 0) {
            continue;
        }
        let above = if bit + 1 >= 64 { 0 } else { u64::MAX << (bit + 1) };
        let prefix = low & above;
        if prefix & mask != datum & above {
            continue;
        }
        return Some(prefix | b | (datum & (b - 1)));
    }
    None
}

fn sets_disjoint(a: ValueSet, b: ValueSet, bits: u32) -> bool {
    use ValueSet::*;
    match (a, b) {
        (Empty, _) | (_, Empty) => true,
        (Range(a_low, a_high), Range(b_low, b_high)) => a_high < b_low || b_high < a_low,
        (AllBut(v), Range(low, high)) | (Range(low, high), AllBut(v)) => low == v && high == v,
        (AllBut(_), AllBut(_)) | (AllBut(_), Masked { .. }) | (Masked { .. }, AllBut(_)) => false,
        (Masked { mask, datum }, Range(low, high)) | (Range(low, high), Masked { mask, datum }) => {
            smallest_masked_at_least(low, mask, datum, bits).is_none_or(|x| x > high)
        }
        (Masked { mask: m1, datum: d1 }, Masked { mask: m2, datum: d2 }) => (d1 ^ d2) & m1 & m2 != 0,
    }
}

/// Whether no argument tuple can satisfy both rules.
fn rules_disjoint(a: &CondRule, b: &CondRule, arch: Arch) -> bool {
    let (max, bits) = if arch.has_64bit_args() { (u64::MAX, 64) } else { (u64::from(u32::MAX), 32) };
    let rule_never_matches = |rule: &CondRule| rule.conds.iter().any(|c| matches!(value_set(c, max), ValueSet::Empty));
    if rule_never_matches(a) || rule_never_matches(b) {
        return true;
    }
    a.conds.iter().any(|ca| {
        b.conds
            .iter()
            .filter(|cb| cb.arg == ca.arg)
            .any(|cb| sets_disjoint(value_set(ca, max), value_set(cb, max), bits))
    })
}

fn check_conflicts(arch_rules: &ArchRules, rules: &[oci_spec::runtime::LinuxSyscall]) -> Result<(), SeccompError> {
    for (&number, syscall) in &arch_rules.syscalls {
        if syscall.unconditional.is_some() {
            continue;
        }
        for (i, first) in syscall.conditional.iter().enumerate() {
            for second in &syscall.conditional[i + 1..] {
                if first.action != second.action && !rules_disjoint(first, second, arch_rules.arch) {
                    let name = |origin: usize| rules.get(origin).map(|r| r.names().join(",")).unwrap_or_default();
                    return Err(SeccompError::ConflictingRules {
                        arch: arch_rules.arch.name(),
                        syscall: number,
                        first: first.origin,
                        first_names: name(first.origin),
                        second: second.origin,
                        second_names: name(second.origin),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_min(low: u64, mask: u64, datum: u64) -> Option<u64> {
        (low..256).find(|x| x & mask == datum)
    }

    #[test]
    fn smallest_masked_value_matches_brute_force() {
        for low in 0..256u64 {
            for mask in [0u64, 1, 2, 6, 0x10, 0x81, 0xf0, 0x5a, 0xff] {
                for datum in 0..256u64 {
                    if datum & !mask != 0 {
                        continue;
                    }
                    let expected = brute_min(low, mask | !0xff, datum);
                    let got = smallest_masked_at_least(low, mask | !0xff, datum, 64).filter(|x| *x < 256);
                    assert_eq!(got, expected, "low {low} mask {mask:#x} datum {datum:#x}");
                }
            }
        }
    }
}
