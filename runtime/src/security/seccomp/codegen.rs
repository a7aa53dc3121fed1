//! Rule database → classic BPF.
//!
//! Layout: load `arch`, one `jeq` per audit architecture, the bad-arch return; then one section
//! per audit architecture. A section loads the syscall number and walks a balanced binary tree
//! of `jge` over the number line, partitioned into intervals that each end in one action
//! (unconditional rules, default, bad ABI, ENOSYS stub) or in the argument checks of a single
//! syscall. Lookups cost O(log n) instead of libseccomp's linear scan.

use std::collections::BTreeMap;

use seccompiler::sock_filter;

use super::SeccompError;
use super::arch::{AUDIT_ARCH_X86_64, Arch, X32_SYSCALL_BIT};
use super::asm::{AsmError, Assembler, Cond as Jmp, Label};
use super::rules::{ArchRules, BAD_ARCH_ACTION, CmpOp, Cond, Database, ENOSYS_ACTION, SyscallRules};

const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Action(u32),
    /// Index into the section's arch list, syscall number.
    Rules(usize, u32),
}

pub fn generate(db: &Database) -> Result<Vec<sock_filter>, SeccompError> {
    let mut sections: BTreeMap<u32, Vec<&ArchRules>> = BTreeMap::new();
    for arch_rules in &db.arches {
        sections.entry(arch_rules.arch.audit()).or_default().push(arch_rules);
    }

    let mut asm = Assembler::default();
    asm.load(OFFSET_ARCH);
    let mut entries = Vec::with_capacity(sections.len());
    for &audit in sections.keys() {
        let entry = asm.label();
        let next = asm.label();
        asm.jump(Jmp::Eq, audit, entry, next);
        asm.bind(next);
        entries.push(entry);
    }
    asm.ret(BAD_ARCH_ACTION);
    for ((&audit, group), entry) in sections.iter().zip(entries) {
        asm.bind(entry);
        Section { asm: &mut asm, returns: BTreeMap::new(), default_action: db.default_action }.emit(audit, group);
    }
    asm.finish().map_err(|error| match error {
        AsmError::TooLarge(len) => SeccompError::ProgramTooLarge { len },
        AsmError::UnboundLabel | AsmError::BackwardJump => SeccompError::Internal { what: "jump layout" },
    })
}

struct Section<'a> {
    asm: &'a mut Assembler,
    /// One shared `ret` per action, emitted at the end of the section.
    returns: BTreeMap<u32, Label>,
    default_action: u32,
}

impl Section<'_> {
    fn action(&mut self, action: u32) -> Label {
        if let Some(label) = self.returns.get(&action) {
            return *label;
        }
        let label = self.asm.label();
        self.returns.insert(action, label);
        label
    }

    fn emit(mut self, audit: u32, group: &[&ArchRules]) {
        let intervals = partition(audit, group, self.default_action);
        let mut blocks = Vec::new();
        let leaves: Vec<(u32, Label)> = intervals
            .iter()
            .map(|&(start, target)| {
                let label = match target {
                    Target::Action(action) => self.action(action),
                    Target::Rules(index, number) => {
                        let label = self.asm.label();
                        blocks.push((label, index, number));
                        label
                    }
                };
                (start, label)
            })
            .collect();

        self.asm.load(OFFSET_NR);
        if let [(_, only)] = leaves.as_slice() {
            self.asm.always(*only);
        } else {
            let root = self.asm.label();
            self.tree(&leaves, root);
        }
        for (label, index, number) in blocks {
            self.asm.bind(label);
            let arch_rules = group[index];
            if let Some(rules) = arch_rules.syscalls.get(&number) {
                self.rules(arch_rules.arch, rules);
            }
        }
        let returns = std::mem::take(&mut self.returns);
        for (action, label) in returns {
            self.asm.bind(label);
            self.asm.ret(action);
        }
    }

    /// A balanced `jge` tree; `leaves` holds each interval's start and its target.
    fn tree(&mut self, leaves: &[(u32, Label)], entry: Label) {
        self.asm.bind(entry);
        let (left, right) = leaves.split_at(leaves.len() / 2);
        let left_label = if left.len() == 1 { left[0].1 } else { self.asm.label() };
        let right_label = if right.len() == 1 { right[0].1 } else { self.asm.label() };
        self.asm.jump(Jmp::Ge, right[0].0, right_label, left_label);
        if left.len() > 1 {
            self.tree(left, left_label);
        }
        if right.len() > 1 {
            self.tree(right, right_label);
        }
    }

    /// Conditional rules of one syscall: the first rule whose conditions all hold decides,
    /// else the default action (rules with different actions never overlap, see rules.rs).
    fn rules(&mut self, arch: Arch, rules: &SyscallRules) {
        if let Some(action) = rules.unconditional {
            let label = self.action(action);
            self.asm.always(label);
            return;
        }
        for rule in &rules.conditional {
            let pass = self.action(rule.action);
            let next_rule = self.asm.label();
            let count = rule.conds.len();
            for (index, cond) in rule.conds.iter().enumerate() {
                let ok = if index + 1 == count { pass } else { self.asm.label() };
                self.condition(arch, cond, ok, next_rule);
                if index + 1 != count {
                    self.asm.bind(ok);
                }
            }
            self.asm.bind(next_rule);
        }
        let default = self.action(self.default_action);
        self.asm.always(default);
    }

    /// One comparison; 64-bit ABIs compare the high word first, then the low word.
    fn condition(&mut self, arch: Arch, cond: &Cond, ok: Label, fail: Label) {
        let low_offset = OFFSET_ARGS + 8 * u32::from(cond.arg);
        let high_offset = low_offset + 4;
        let (low, high) = (cond.datum as u32, (cond.datum >> 32) as u32);
        let (low_mask, high_mask) = (cond.mask as u32, (cond.mask >> 32) as u32);
        let asm = &mut *self.asm;

        if !arch.has_64bit_args() {
            asm.load(low_offset);
            match cond.op {
                CmpOp::Eq => asm.jump(Jmp::Eq, low, ok, fail),
                CmpOp::MaskedEq => {
                    if low_mask != u32::MAX {
                        asm.and(low_mask);
                    }
                    asm.jump(Jmp::Eq, low, ok, fail);
                }
                CmpOp::Ne => asm.jump(Jmp::Eq, low, fail, ok),
                CmpOp::Gt => asm.jump(Jmp::Gt, low, ok, fail),
                CmpOp::Ge => asm.jump(Jmp::Ge, low, ok, fail),
                CmpOp::Lt => asm.jump(Jmp::Ge, low, fail, ok),
                CmpOp::Le => asm.jump(Jmp::Gt, low, fail, ok),
            }
            return;
        }

        match cond.op {
            CmpOp::Eq | CmpOp::MaskedEq => {
                if high_mask != 0 {
                    asm.load(high_offset);
                    if high_mask != u32::MAX {
                        asm.and(high_mask);
                    }
                    let next = asm.label();
                    asm.jump(Jmp::Eq, high, next, fail);
                    asm.bind(next);
                }
                if low_mask != 0 {
                    asm.load(low_offset);
                    if low_mask != u32::MAX {
                        asm.and(low_mask);
                    }
                    asm.jump(Jmp::Eq, low, ok, fail);
                } else {
                    asm.always(ok);
                }
            }
            CmpOp::Ne => {
                asm.load(high_offset);
                let next = asm.label();
                asm.jump(Jmp::Eq, high, next, ok);
                asm.bind(next);
                asm.load(low_offset);
                asm.jump(Jmp::Eq, low, fail, ok);
            }
            CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => {
                let greater = matches!(cond.op, CmpOp::Gt | CmpOp::Ge);
                // High word above the value: greater; below: smaller; equal: low word decides.
                let (above, below) = if greater { (ok, fail) } else { (fail, ok) };
                asm.load(high_offset);
                let not_above = asm.label();
                asm.jump(Jmp::Gt, high, above, not_above);
                asm.bind(not_above);
                let equal = asm.label();
                asm.jump(Jmp::Eq, high, equal, below);
                asm.bind(equal);
                asm.load(low_offset);
                match cond.op {
                    CmpOp::Gt => asm.jump(Jmp::Gt, low, ok, fail),
                    CmpOp::Ge => asm.jump(Jmp::Ge, low, ok, fail),
                    CmpOp::Lt => asm.jump(Jmp::Ge, low, fail, ok),
                    _ => asm.jump(Jmp::Gt, low, fail, ok),
                }
            }
        }
    }
}

/// The number line of one audit architecture, cut into intervals `(start, target)`.
fn partition(audit: u32, group: &[&ArchRules], default_action: u32) -> Vec<(u32, Target)> {
    let mut line: BTreeMap<u32, Target> = BTreeMap::from([(0, Target::Action(default_action))]);
    let has = |arch: Arch| group.iter().any(|rules| rules.arch == arch);

    // libseccomp's ABI split on x86_64: without x32 in the filter, x32 numbers hit the bad-arch
    // action (except -1, which tracers use to skip a syscall); with x32 alone, x86_64 ones do.
    if audit == AUDIT_ARCH_X86_64 {
        if has(Arch::X86_64) && !has(Arch::X32) {
            paint(&mut line, X32_SYSCALL_BIT, u32::MAX - 1, Target::Action(BAD_ARCH_ACTION));
        } else if has(Arch::X32) && !has(Arch::X86_64) {
            paint(&mut line, 0, X32_SYSCALL_BIT - 1, Target::Action(BAD_ARCH_ACTION));
        }
    }
    for (index, arch_rules) in group.iter().enumerate() {
        for (&number, rules) in &arch_rules.syscalls {
            let target = match rules.unconditional {
                Some(action) => Target::Action(action),
                None => Target::Rules(index, number),
            };
            paint(&mut line, number, number, target);
        }
    }
    // runc's stub runs before the filter: numbers above the profile's largest syscall get
    // ENOSYS so that programs fall back from syscalls the profile's author never saw.
    for arch_rules in group {
        if let Some(largest) = arch_rules.enosys_above {
            let end = if arch_rules.arch == Arch::X86_64 { X32_SYSCALL_BIT - 1 } else { u32::MAX };
            if largest < end {
                paint(&mut line, largest + 1, end, Target::Action(ENOSYS_ACTION));
            }
        }
    }

    let mut intervals: Vec<(u32, Target)> = Vec::with_capacity(line.len());
    for (start, target) in line {
        match (intervals.last(), target) {
            (Some(&(_, Target::Action(previous))), Target::Action(action)) if previous == action => {}
            _ => intervals.push((start, target)),
        }
    }
    intervals
}

/// Set `[first, last]` of the number line to `target`.
fn paint(line: &mut BTreeMap<u32, Target>, first: u32, last: u32, target: Target) {
    if let Some(after) = last.checked_add(1) {
        let resumed = *line.range(..=after).next_back().map(|(_, target)| target).unwrap_or(&target);
        line.entry(after).or_insert(resumed);
    }
    let inside: Vec<u32> = line.range(first..=last).map(|(&start, _)| start).collect();
    for start in inside {
        line.remove(&start);
    }
    line.insert(first, target);
}
