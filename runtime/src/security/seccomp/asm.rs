//! A tiny classic-BPF assembler with symbolic labels. Conditional jumps only reach 255
//! instructions ahead, so a jump to a farther label is relaxed into a jump to an unconditional
//! `ja` trampoline placed right after it.

use seccompiler::sock_filter;

const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_K: u16 = 0x00;

/// The largest program the kernel accepts (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Why a program could not be assembled (the last two are compiler bugs, reported not panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsmError {
    TooLarge(usize),
    UnboundLabel,
    BackwardJump,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20,
    Ge = 0x30,
}

#[derive(Debug, Clone, Copy)]
enum Insn {
    Load(u32),
    And(u32),
    Jump { cond: Cond, k: u32, jt: Label, jf: Label },
    Always(Label),
    Ret(u32),
}

#[derive(Debug, Default)]
pub struct Assembler {
    insns: Vec<Insn>,
    /// Instruction index each label points at (`usize::MAX` until placed).
    labels: Vec<usize>,
}

impl Assembler {
    pub fn label(&mut self) -> Label {
        self.labels.push(usize::MAX);
        Label(self.labels.len() - 1)
    }

    /// Place a label at the next instruction.
    pub fn bind(&mut self, label: Label) {
        self.labels[label.0] = self.insns.len();
    }

    pub fn load(&mut self, offset: u32) {
        self.insns.push(Insn::Load(offset));
    }

    pub fn and(&mut self, mask: u32) {
        self.insns.push(Insn::And(mask));
    }

    pub fn jump(&mut self, cond: Cond, k: u32, jt: Label, jf: Label) {
        self.insns.push(Insn::Jump { cond, k, jt, jf });
    }

    pub fn always(&mut self, target: Label) {
        self.insns.push(Insn::Always(target));
    }

    pub fn ret(&mut self, value: u32) {
        self.insns.push(Insn::Ret(value));
    }

    /// Resolve labels into a program. Every jump must go forward to a bound label.
    pub fn finish(self) -> Result<Vec<sock_filter>, AsmError> {
        for insn in &self.insns {
            let targets = match *insn {
                Insn::Jump { jt, jf, .. } => [Some(jt), Some(jf)],
                Insn::Always(target) => [Some(target), None],
                _ => [None, None],
            };
            for target in targets.into_iter().flatten() {
                if self.labels[target.0] == usize::MAX {
                    return Err(AsmError::UnboundLabel);
                }
            }
        }
        for (index, insn) in self.insns.iter().enumerate() {
            let backward = |label: Label| self.labels[label.0] <= index;
            let bad = match *insn {
                Insn::Jump { jt, jf, .. } => backward(jt) || backward(jf),
                Insn::Always(target) => backward(target),
                _ => false,
            };
            if bad {
                return Err(AsmError::BackwardJump);
            }
        }
        // (trampoline for jt, trampoline for jf) per instruction; only ever switched on.
        let mut far = vec![(false, false); self.insns.len()];
        loop {
            let start = self.layout(&far);
            let position = |label: Label| start[self.labels[label.0]];
            let mut changed = false;
            for (index, insn) in self.insns.iter().enumerate() {
                if let Insn::Jump { jt, jf, .. } = insn {
                    let next = start[index] + 1;
                    if !far[index].0 && position(*jt) - next > 255 {
                        far[index].0 = true;
                        changed = true;
                    }
                    if !far[index].1 && position(*jf) - next > 255 {
                        far[index].1 = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let start = self.layout(&far);
        let total = start[self.insns.len()];
        if total > MAX_INSTRUCTIONS {
            return Err(AsmError::TooLarge(total));
        }
        let position = |label: Label| start[self.labels[label.0]];
        let mut program = Vec::with_capacity(total);
        for (index, insn) in self.insns.iter().enumerate() {
            let next = start[index] + 1;
            match *insn {
                Insn::Load(offset) => program.push(stmt(BPF_LD | BPF_W | BPF_ABS, offset)),
                Insn::And(mask) => program.push(stmt(BPF_ALU | BPF_AND | BPF_K, mask)),
                Insn::Ret(value) => program.push(stmt(BPF_RET | BPF_K, value)),
                Insn::Always(target) => program.push(stmt(BPF_JMP | BPF_JA, (position(target) - next) as u32)),
                Insn::Jump { cond, k, jt, jf } => {
                    let (far_t, far_f) = far[index];
                    let jt_offset = if far_t { 0 } else { position(jt) - next };
                    let jf_offset = if far_f { usize::from(far_t) } else { position(jf) - next };
                    program.push(sock_filter {
                        code: BPF_JMP | cond as u16 | BPF_K,
                        jt: jt_offset as u8,
                        jf: jf_offset as u8,
                        k,
                    });
                    let mut here = next;
                    if far_t {
                        program.push(stmt(BPF_JMP | BPF_JA, (position(jt) - (here + 1)) as u32));
                        here += 1;
                    }
                    if far_f {
                        program.push(stmt(BPF_JMP | BPF_JA, (position(jf) - (here + 1)) as u32));
                    }
                }
            }
        }
        Ok(program)
    }

    /// Start offset of each instruction (and the total length at the end).
    fn layout(&self, far: &[(bool, bool)]) -> Vec<usize> {
        let mut start = Vec::with_capacity(self.insns.len() + 1);
        let mut offset = 0;
        for (index, _) in self.insns.iter().enumerate() {
            start.push(offset);
            offset += 1 + usize::from(far[index].0) + usize::from(far[index].1);
        }
        start.push(offset);
        start
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}
