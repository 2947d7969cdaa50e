// SPDX-License-Identifier: GPL-2.0

//! The exit fixup (`rust/world/fixup.rs`) on a simulated CPU, against the C it
//! reproduces: `fixup_guest_exit()` of `arch/arm64/kvm/hyp/vhe/switch.c`, with
//! `synchronize_vcpu_pstate()` and `__fixup_guest_exit()` of
//! `hyp/include/hyp/switch.h`, for a non-nested vCPU.
//!
//! The model here is written from the C with the kernel's own constants, read
//! from its headers and its text (the exit codes and their macros of
//! `asm/kvm_asm.h`, the classes of `asm/esr.h`, `DBG_SPSR_SS`, the HVC classes
//! and the literal of `__fixup_guest_exit()`, `hyp_exit_handlers[]`), not from
//! the generated ones the code under test uses; the C text itself is checked
//! for the facts the Rust relies on.
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

mod common;

use common::cpu::{r, w, Cpu};
use common::exits::{c_table, kernel_ecs, HYP_SWITCH, VHE_SWITCH};
use common::kernel::{
    balanced, c_calls, c_eval, c_function, defines, if_statements, num, read_kernel, squash,
    strip_comments,
};
use common::rng::Rng;
use common::vcpu::{FixupState, Mark, Step, Vcpu};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use vhe_rs_hosttest::arch::{consts, Ec, Esr, Value, ELR_EL2, ESR_EL2, SPSR_EL2};
use vhe_rs_hosttest::sim::{Event, SimRegs};
use vhe_rs_hosttest::world::exits::ExitHandler;
use vhe_rs_hosttest::world::fixup::{
    self, ExitCode, Fixup, FixupCaps, HVC_ADJUSTED_PC, HVC_CLASSES,
};
use vhe_rs_hosttest::world::sysreg_sr::Features;
use vhe_rs_hosttest::world::traps::TrapCaps;

const KVM_ASM: &str = "arch/arm64/include/asm/kvm_asm.h";

// ---------------------------------------------------------------------------
// The kernel's facts, from its headers and its C.

/// The text of function-like macro `name` of header `rel`, parameters
/// included (`(x) ((x) & ...)`), white space squashed.
fn fn_macro(rel: &str, name: &str) -> String {
    let text = read_kernel(rel).replace("\\\n", " ");
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("#define"))
        .filter_map(|l| l.trim_start().strip_prefix(name))
        .find(|l| l.starts_with('('))
        .map(squash)
        .unwrap_or_else(|| panic!("{rel}: no #define {name}(...)"))
}

/// `__fixup_guest_exit()`, comments removed, white space squashed.
fn c_fixup() -> String {
    squash(&strip_comments(c_function(
        &read_kernel(HYP_SWITCH),
        "__fixup_guest_exit",
    )))
}

/// The `if`s of `__fixup_guest_exit()`: (condition, statement).
fn c_fixup_ifs() -> Vec<(String, String)> {
    if_statements(c_function(&read_kernel(HYP_SWITCH), "__fixup_guest_exit"))
}

/// The names of the classes `__fixup_guest_exit()` moves ELR_EL2 back for:
/// the `ESR_ELx_EC_*` of its `esr_ec == ... || ...` condition.
fn c_hvc_classes() -> Vec<String> {
    let ifs = c_fixup_ifs();
    let (cond, _) = ifs
        .iter()
        .find(|(c, _)| c.starts_with("esr_ec == "))
        .expect("__fixup_guest_exit(): no `esr_ec == ` condition");
    cond.split(" || ")
        .map(|t| {
            t.strip_prefix("esr_ec == ESR_ELx_EC_")
                .unwrap_or_else(|| panic!("`{cond}`"))
                .to_string()
        })
        .collect()
}

/// The ELR_EL2 statement of `__fixup_guest_exit()` and the number it subtracts.
fn c_elr_adjustment() -> (String, u64) {
    let ifs = c_fixup_ifs();
    let (_, stmt) = ifs
        .iter()
        .find(|(c, _)| c.starts_with("esr_ec == "))
        .expect("__fixup_guest_exit(): no `esr_ec == ` condition");
    let n = stmt
        .strip_prefix("write_sysreg_el2(read_sysreg_el2(SYS_ELR) - ")
        .and_then(|t| t.strip_suffix(", SYS_ELR);"))
        .unwrap_or_else(|| panic!("__fixup_guest_exit(): `{stmt}`"));
    (stmt.clone(), num(n))
}

/// What the model needs of the kernel, by the kernel's names.
struct K {
    /// `ARM_EXIT_WITH_SERROR_BIT`.
    serror_bit: u32,
    irq: u64,
    el1_serror: u64,
    trap: u64,
    il: u64,
    hyp_gone: u64,
    /// `ESR_ELx_EC_MASK`, `ESR_ELx_EC_SHIFT`.
    ec_mask: u64,
    ec_shift: u64,
    ec_pac: u64,
    /// The classes of `__fixup_guest_exit()`'s HVC test, and what it subtracts.
    hvc: Vec<u64>,
    hvc_adjust: u64,
    /// `DBG_SPSR_SS`.
    spsr_ss: u64,
    /// `hyp_exit_handlers[]`, by raw EC.
    table: Vec<Option<ExitHandler>>,
}

impl K {
    fn new() -> K {
        // The macros the model evaluates as their text says.
        assert_eq!(
            fn_macro(KVM_ASM, "ARM_EXCEPTION_CODE"),
            "(x) ((x) & ~(1U << ARM_EXIT_WITH_SERROR_BIT))"
        );
        assert_eq!(
            fn_macro(KVM_ASM, "ARM_SERROR_PENDING"),
            "(x) !!((x) & (1U << ARM_EXIT_WITH_SERROR_BIT))"
        );
        let mut d = defines(KVM_ASM);
        d.extend(defines("arch/arm64/include/asm/virt.h"));
        let d: HashMap<String, String> = d
            .into_iter()
            .map(|(k, v)| (k, strip_comments(&v).trim().to_string()))
            .collect();
        let v = |n: &str| c_eval(n, &d);
        let esr = defines("arch/arm64/include/asm/esr.h");
        let ecs = kernel_ecs();
        let dbg = defines("arch/arm64/include/asm/debug-monitors.h");
        let by_name: HashMap<&str, ExitHandler> =
            ExitHandler::ALL.iter().map(|h| (h.c_name(), *h)).collect();
        let table = c_table()
            .0
            .into_iter()
            .map(|e| {
                e.map(|n| {
                    *by_name
                        .get(n.as_str())
                        .unwrap_or_else(|| panic!("{n}: no such ExitHandler"))
                })
            })
            .collect();
        K {
            serror_bit: v("ARM_EXIT_WITH_SERROR_BIT") as u32,
            irq: v("ARM_EXCEPTION_IRQ"),
            el1_serror: v("ARM_EXCEPTION_EL1_SERROR"),
            trap: v("ARM_EXCEPTION_TRAP"),
            il: v("ARM_EXCEPTION_IL"),
            hyp_gone: v("ARM_EXCEPTION_HYP_GONE"),
            ec_mask: c_eval("ESR_ELx_EC_MASK", &esr),
            ec_shift: c_eval("ESR_ELx_EC_SHIFT", &esr),
            ec_pac: ecs["PAC"],
            hvc: c_hvc_classes().iter().map(|n| ecs[n.as_str()]).collect(),
            hvc_adjust: c_elr_adjustment().1,
            spsr_ss: c_eval("DBG_SPSR_SS", &dbg),
            table,
        }
    }

    /// `ARM_EXCEPTION_CODE(x)`: `1U` is an `unsigned int`, so `~(1U << 31)`
    /// is too, and `&` with the `u64` widens it with zeros.
    fn code(&self, x: u64) -> u64 {
        x & u64::from(!(1u32 << self.serror_bit))
    }

    /// `ARM_SERROR_PENDING(x)`.
    fn serror_pending(&self, x: u64) -> bool {
        x & u64::from(1u32 << self.serror_bit) != 0
    }

    /// `ESR_ELx_EC(esr)`.
    fn ec(&self, esr: u64) -> u64 {
        (esr & self.ec_mask) >> self.ec_shift
    }

    /// The exit codes to try: every code the kernel names, one it does not,
    /// each with and without the SError bit, and with and without a bit above
    /// 31 (which `ARM_EXCEPTION_CODE()` drops, but the raw comparison with
    /// `ARM_EXCEPTION_TRAP` sees).
    fn exit_codes(&self) -> Vec<u64> {
        let named = [self.irq, self.el1_serror, self.trap, self.il, self.hyp_gone];
        let unnamed = (0..).find(|c| !named.contains(c)).unwrap();
        let mut out = Vec::new();
        for base in named.into_iter().chain([unnamed]) {
            for serror in [0, u64::from(1u32 << self.serror_bit)] {
                for high in [0, 1 << 32] {
                    out.push(base | serror | high);
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// The cases.

/// Every combination of the two capabilities.
fn all_caps() -> [FixupCaps; 4] {
    [0, 1, 2, 3].map(|b| FixupCaps {
        workaround_2077057: b & 1 != 0,
        workaround_1508412: b & 2 != 0,
    })
}

/// One exit.
#[derive(Clone, Debug)]
struct Case {
    exit: u64,
    caps: FixupCaps,
    /// The VMM single-steps the guest.
    singlestep: bool,
    /// What the exit handler answers, and the exit code it writes, if any.
    handled: bool,
    new_exit_code: Option<u64>,
    /// The vCPU's saved PSTATE (the one the guest was entered with) and
    /// `fault.esr_el2` before the exit.
    pstate: u64,
    old_fault_esr: u64,
    /// What the exit left in ESR_EL2, SPSR_EL2, ELR_EL2.
    esr: u64,
    spsr: u64,
    elr: u64,
}

/// Every exit code × every raw EC × both capabilities × single-stepping or
/// not × PSTATE.SS set or not × the handler's answer × a handler that writes
/// the exit code or not; the other bits random.
fn cases(k: &K, seed: u64) -> Vec<Case> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for exit in k.exit_codes() {
        for ec in 0..=k.ec_mask >> k.ec_shift {
            for caps in all_caps() {
                for singlestep in [false, true] {
                    for ss in [false, true] {
                        for handled in [false, true] {
                            for rewrite in [false, true] {
                                let mut pstate = rng.next() & !k.spsr_ss;
                                if ss {
                                    pstate |= k.spsr_ss;
                                }
                                out.push(Case {
                                    exit,
                                    caps,
                                    singlestep,
                                    handled,
                                    new_exit_code: rewrite.then_some(k.el1_serror),
                                    pstate,
                                    old_fault_esr: rng.next(),
                                    esr: (rng.next() & !k.ec_mask) | (ec << k.ec_shift),
                                    spsr: rng.next(),
                                    elr: rng.next(),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn describe(c: &Case) -> String {
    format!(
        "exit {:#x}, {:?}, singlestep {}, handled {}, new exit code {:?}, pstate {:#x}, \
         ESR {:#x}, SPSR {:#x}, ELR {:#x}",
        c.exit, c.caps, c.singlestep, c.handled, c.new_exit_code, c.pstate, c.esr, c.spsr, c.elr
    )
}

/// A CPU as the exit leaves it, and the vCPU on it.
fn setup(c: &Case, rng: &mut Rng) -> (Cpu, Vcpu) {
    let mut regs = SimRegs::new();
    regs.set::<ESR_EL2::Reg>(c.esr);
    regs.set::<SPSR_EL2::Reg>(c.spsr);
    regs.set::<ELR_EL2::Reg>(c.elr);
    let cpu = Cpu::new(regs);
    let mut v = Vcpu::random(&cpu, Features::NONE, TrapCaps::default(), rng);
    v.fixup = FixupState {
        caps: c.caps,
        singlestep: c.singlestep,
        pstate: c.pstate,
        fault_esr: c.old_fault_esr,
        handled: c.handled,
        new_exit_code: c.new_exit_code,
    };
    (cpu, v)
}

// ---------------------------------------------------------------------------
// The model: what the C does, written from it.

/// The model's answer: `fixup_guest_exit()`'s return value and `*exit_code`
/// after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outcome {
    reenter: bool,
    exit_code: u64,
}

/// What the model expects of an exit: accesses and marks, the answer, and
/// the vCPU's PSTATE, `fault.esr_el2`, SPSR_EL2 and ELR_EL2 after it.
struct Want {
    steps: Vec<Step>,
    out: Outcome,
    pstate: u64,
    fault_esr: u64,
    spsr: u64,
    elr: u64,
}

/// `fixup_guest_exit()` for case `c`, a non-nested vCPU.
fn model(k: &K, c: &Case) -> Want {
    let mut steps = Vec::new();
    let reg = |e: Event| Step::Reg(e);
    let mut spsr = c.spsr;
    let mut elr = c.elr;
    let mut fault_esr = c.old_fault_esr;

    // synchronize_vcpu_pstate(): `&&` evaluates left to right and stops at
    // the first false; only its last operand reads a register.
    if c.caps.workaround_2077057 && c.singlestep && c.pstate & k.spsr_ss != 0 {
        steps.push(reg(r::<ESR_EL2::Reg>()));
        if k.ec(c.esr) == k.ec_pac {
            steps.push(reg(w::<SPSR_EL2::Reg>(c.pstate)));
            spsr = c.pstate;
        }
    }
    steps.push(reg(r::<SPSR_EL2::Reg>()));
    steps.push(Step::Ctx(Mark::SetPstate(spsr)));
    let pstate = spsr;

    // if (vcpu_has_nv(vcpu) && ...): false, and nothing read.

    // __fixup_guest_exit().
    let mut exit_code = c.exit;
    if k.code(exit_code) != k.irq {
        steps.push(reg(r::<ESR_EL2::Reg>()));
        fault_esr = c.esr;
        steps.push(Step::Ctx(Mark::SetFaultEsr(fault_esr)));
    }
    if k.serror_pending(exit_code) && k.code(exit_code) != k.irq {
        // kvm_vcpu_trap_get_class(vcpu): from vcpu->arch.fault.esr_el2.
        let esr_ec = k.ec(fault_esr);
        if k.hvc.contains(&esr_ec) {
            steps.push(reg(r::<ELR_EL2::Reg>()));
            elr = elr.wrapping_sub(k.hvc_adjust);
            steps.push(reg(w::<ELR_EL2::Reg>(elr)));
        }
    }
    let mut reenter = false;
    if exit_code == k.trap {
        // kvm_hyp_handle_exit(): handlers[kvm_vcpu_trap_get_class(vcpu)].
        if let Some(h) = k.table[k.ec(fault_esr) as usize] {
            steps.push(Step::Ctx(Mark::HandleExit(h, fault_esr, exit_code)));
            if let Some(n) = c.new_exit_code {
                exit_code = n;
            }
            if c.handled {
                if c.caps.workaround_1508412 {
                    steps.push(reg(Event::DmbSy));
                }
                reenter = true;
            }
        }
    }
    Want {
        steps,
        out: Outcome { reenter, exit_code },
        pstate,
        fault_esr,
        spsr,
        elr,
    }
}

// ---------------------------------------------------------------------------
// 1. The exact sequences.

/// Over every case, the fixup makes exactly the model's register accesses
/// and changes of vCPU state, in its order, answers as the C does, and
/// leaves the vCPU and the registers as the C does. The cases reach every
/// branch.
#[test]
fn fixup_follows_the_c_sequence() {
    let k = K::new();
    let mut rng = Rng(0xf1f1_0001);
    let all = cases(&k, 0xf1f1_0002);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut handlers = BTreeSet::new();
    for c in &all {
        let what = describe(c);
        let (mut cpu, mut v) = setup(c, &mut rng);
        let got = fixup::fixup_guest_exit(&mut v, &mut cpu, ExitCode::from_raw(c.exit));
        let want = model(&k, c);

        assert_eq!(v.timeline(), want.steps, "{what}");
        let got = match got {
            Fixup::ReEnter => None,
            Fixup::Exit(code) => Some(code.raw()),
        };
        // On re-entry the exit code is not returned: the next __guest_enter()
        // sets it before anything reads it.
        let want_out = (!want.out.reenter).then_some(want.out.exit_code);
        assert_eq!(got, want_out, "{what}");
        assert_eq!(v.fixup.pstate, want.pstate, "{what}: pstate");
        assert_eq!(v.fixup.fault_esr, want.fault_esr, "{what}: fault.esr_el2");
        assert_eq!(cpu.get::<SPSR_EL2::Reg>(), want.spsr, "{what}: SPSR_EL2");
        assert_eq!(cpu.get::<ELR_EL2::Reg>(), want.elr, "{what}: ELR_EL2");
        assert_eq!(cpu.get::<ESR_EL2::Reg>(), c.esr, "{what}: ESR_EL2");
        assert!(cpu.unset_reads().is_empty(), "{what}");

        let log = cpu.log();
        let mut count = |what: &'static str, yes: bool| {
            if yes {
                *seen.entry(what).or_default() += 1;
            }
        };
        count(
            "2077057 rewrite",
            log.contains(&w::<SPSR_EL2::Reg>(c.pstate)),
        );
        count(
            "2077057 ESR read only",
            v.timeline().first() == Some(&Step::Reg(r::<ESR_EL2::Reg>()))
                && !log.iter().any(|e| matches!(e, Event::Write("SPSR_EL2", _))),
        );
        count(
            "ELR moved back",
            log.iter().any(|e| matches!(e, Event::Write("ELR_EL2", _))),
        );
        count(
            "no syndrome",
            !v.marks
                .iter()
                .any(|(_, m)| matches!(m, Mark::SetFaultEsr(_))),
        );
        count("re-entry", got.is_none());
        count("dmb sy", log.contains(&Event::DmbSy));
        count("exit code rewritten", got.is_some_and(|g| g != c.exit));
        for (_, m) in &v.marks {
            if let Mark::HandleExit(h, _, _) = m {
                handlers.insert(*h);
                count("handler", true);
            }
        }
    }
    assert_eq!(all.len(), 24 * 64 * 4 * 2 * 2 * 2 * 2);
    assert_eq!(seen.len(), 8, "branches reached: {seen:?}");
    let all_handlers: BTreeSet<ExitHandler> = ExitHandler::ALL.into_iter().collect();
    assert_eq!(handlers, all_handlers, "every handler called");
}

/// The handler gets the syndrome the fixup saved and the exit code as
/// `__guest_enter()` returned it; a fixup never writes a register but
/// SPSR_EL2 (erratum 2077057) and ELR_EL2 (an HVC with an SError pending).
#[test]
fn handler_sees_the_saved_syndrome() {
    let k = K::new();
    let mut rng = Rng(0xf1f1_0003);
    for c in cases(&k, 0xf1f1_0004).iter().step_by(7) {
        let what = describe(c);
        let (mut cpu, mut v) = setup(c, &mut rng);
        fixup::fixup_guest_exit(&mut v, &mut cpu, ExitCode::from_raw(c.exit));
        for (_, m) in &v.marks {
            if let Mark::HandleExit(_, esr, code) = m {
                assert_eq!(*esr, c.esr, "{what}");
                assert_eq!(*esr, v.fixup.fault_esr, "{what}");
                assert_eq!(*code, c.exit, "{what}");
            }
        }
        for e in cpu.log() {
            if let Event::Write(n, _) = e {
                assert!(["SPSR_EL2", "ELR_EL2"].contains(&n), "{what}: writes {n}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 2. The constants are the kernel's.

/// The exit codes and the macros that take them apart, from `asm/kvm_asm.h`:
/// the generated constants are the header's, [`ExitCode::code`] keeps what
/// `ARM_EXCEPTION_CODE()` keeps (bits 30:0: the `1U` makes its mask 32 bits
/// wide) and [`ExitCode::serror_pending`] is `ARM_SERROR_PENDING()`, for any
/// 64-bit value.
#[test]
fn exit_codes_are_the_kernels() {
    let k = K::new();
    assert_eq!(consts::ARM_EXIT_WITH_SERROR_BIT, u64::from(k.serror_bit));
    assert_eq!(ExitCode::IRQ.raw(), k.irq);
    assert_eq!(ExitCode::EL1_SERROR.raw(), k.el1_serror);
    assert_eq!(ExitCode::TRAP.raw(), k.trap);
    assert_eq!(ExitCode::IL.raw(), k.il);
    assert_eq!(ExitCode::HYP_GONE.raw(), k.hyp_gone);
    assert_eq!(
        defines(KVM_ASM)["ARM_EXCEPTION_HYP_GONE"].trim(),
        "HVC_STUB_ERR"
    );
    assert_eq!(consts::ARM_EXCEPTION_CODE_MASK, k.code(u64::MAX));
    assert_eq!(k.code(u64::MAX), 0x7fff_ffff, "ARM_EXCEPTION_CODE(~0ULL)");
    assert_eq!(ExitCode::SERROR_PENDING, 1 << k.serror_bit);

    let mut rng = Rng(0xf1f1_0005);
    let mut values: Vec<u64> = (0..100_000).map(|_| rng.next()).collect();
    values.extend(k.exit_codes());
    values.extend([0, u64::MAX, 1 << 31, 1 << 32, (1 << 32) | 2]);
    for x in values {
        let e = ExitCode::from_raw(x);
        assert_eq!(e.raw(), x);
        assert_eq!(e.code().raw(), k.code(x), "{x:#x}");
        assert_eq!(e.serror_pending(), k.serror_pending(x), "{x:#x}");
        assert_eq!(
            e.with_serror_pending().raw(),
            x | u64::from(1u32 << k.serror_bit)
        );
    }

    // __guest_enter() reports a pending SError by ORing the bit in (with RAS;
    // without, the code of the abort window is ORed into the bit).
    let entry = squash(&read_kernel("arch/arm64/kvm/hyp/entry.S"));
    assert!(
        entry.contains("orr x0, x0, #(1<<ARM_EXIT_WITH_SERROR_BIT)"),
        "entry.S"
    );
    assert!(
        entry.contains("mov x0, #(1 << ARM_EXIT_WITH_SERROR_BIT)"),
        "entry.S"
    );
}

/// The SS bit the erratum 2077057 check reads is `DBG_SPSR_SS`, and `PAC`
/// is the kernel's class.
#[test]
fn erratum_2077057_bits_are_the_kernels() {
    let k = K::new();
    assert_eq!(SPSR_EL2::SS.mask(), k.spsr_ss);
    assert_eq!(SPSR_EL2::SS.width(), 1);
    assert_eq!(Ec::PAC as u64, k.ec_pac);
}

/// The HVC classes are the C's, both ways, and the C still subtracts 4
/// ([`HVC_ADJUSTED_PC`]) from ELR_EL2, modulo 2^64.
#[test]
fn hvc_adjustment_is_the_kernels() {
    let k = K::new();
    let ours: BTreeSet<String> = HVC_CLASSES.iter().map(|e| e.name().to_string()).collect();
    let c: BTreeSet<String> = c_hvc_classes().into_iter().collect();
    assert_eq!(ours, c, "HVC_CLASSES vs __fixup_guest_exit()");
    assert_eq!(c.len(), c_hvc_classes().len(), "a class twice");
    let (stmt, n) = c_elr_adjustment();
    assert_eq!(
        stmt,
        "write_sysreg_el2(read_sysreg_el2(SYS_ELR) - 4, SYS_ELR);"
    );
    assert_eq!(HVC_ADJUSTED_PC, n);
    let mut rng = Rng(0xf1f1_0006);
    for raw in 0..=k.ec_mask >> k.ec_shift {
        let esr = Esr::new(Value::from_raw(
            (rng.next() & !k.ec_mask) | (raw << k.ec_shift),
        ));
        assert_eq!(fixup::is_hvc(esr), k.hvc.contains(&raw), "EC {raw:#x}");
    }
}

// ---------------------------------------------------------------------------
// 3. The C's text: what the Rust relies on.

/// `__fixup_guest_exit()`, whole: the syndrome saved unless the exit is an
/// interrupt; the HVC adjustment with an SError pending; the handler table
/// only for a raw `ARM_EXCEPTION_TRAP` (`*exit_code` compared whole, not
/// `ARM_EXCEPTION_CODE()`); `dmb sy` under erratum 1508412 on the way back
/// into the guest only.
#[test]
fn fixup_is_the_kernels() {
    assert_eq!(
        c_fixup(),
        "static inline bool __fixup_guest_exit(struct kvm_vcpu *vcpu, u64 *exit_code, \
         const exit_handler_fn *handlers) { \
         if (ARM_EXCEPTION_CODE(*exit_code) != ARM_EXCEPTION_IRQ) \
         vcpu->arch.fault.esr_el2 = read_sysreg_el2(SYS_ESR); \
         if (ARM_SERROR_PENDING(*exit_code) && ARM_EXCEPTION_CODE(*exit_code) != ARM_EXCEPTION_IRQ) { \
         u8 esr_ec = kvm_vcpu_trap_get_class(vcpu); \
         if (esr_ec == ESR_ELx_EC_HVC32 || esr_ec == ESR_ELx_EC_HVC64) \
         write_sysreg_el2(read_sysreg_el2(SYS_ELR) - 4, SYS_ELR); } \
         if (*exit_code != ARM_EXCEPTION_TRAP) goto exit; \
         if (kvm_hyp_handle_exit(vcpu, exit_code, handlers)) goto guest; \
         exit: return false; \
         guest: asm(ALTERNATIVE(\"nop\", \"dmb sy\", ARM64_WORKAROUND_1508412)); return true;"
    );
}

/// The steps in the C's order, as `if`s: syndrome, SError, HVC, the raw trap
/// test, the handler; the handler is reached only past `*exit_code !=
/// ARM_EXCEPTION_TRAP`, which jumps to `exit:` (false).
#[test]
fn only_a_plain_trap_is_dispatched() {
    let ifs: Vec<String> = c_fixup_ifs().into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        ifs,
        [
            "ARM_EXCEPTION_CODE(*exit_code) != ARM_EXCEPTION_IRQ",
            "ARM_SERROR_PENDING(*exit_code) && ARM_EXCEPTION_CODE(*exit_code) != ARM_EXCEPTION_IRQ",
            "esr_ec == ESR_ELx_EC_HVC32 || esr_ec == ESR_ELx_EC_HVC64",
            "*exit_code != ARM_EXCEPTION_TRAP",
            "kvm_hyp_handle_exit(vcpu, exit_code, handlers)",
        ]
    );
    let body = c_fixup();
    let trap = body.find("if (*exit_code != ARM_EXCEPTION_TRAP) goto exit;");
    let handle = body.find("if (kvm_hyp_handle_exit(");
    assert!(
        trap.is_some() && handle.is_some() && trap < handle,
        "{body}"
    );
    assert!(body.contains("exit: return false;"), "{body}");

    // The handler is the table's entry for the class of the syndrome saved
    // just before, which is what the Rust passes it.
    let handle = squash(&strip_comments(c_function(
        &read_kernel(HYP_SWITCH),
        "kvm_hyp_handle_exit",
    )));
    assert!(
        handle.ends_with(
            "{ exit_handler_fn fn = handlers[kvm_vcpu_trap_get_class(vcpu)]; \
             if (fn) return fn(vcpu, exit_code); return false;"
        ),
        "kvm_hyp_handle_exit(): `{handle}`"
    );
    let emulate = squash(&strip_comments(&read_kernel(
        "arch/arm64/include/asm/kvm_emulate.h",
    )));
    assert!(
        emulate.contains(
            "static __always_inline u64 kvm_vcpu_get_esr(const struct kvm_vcpu *vcpu) \
             { return vcpu->arch.fault.esr_el2; }"
        ) && emulate.contains(
            "static __always_inline u8 kvm_vcpu_trap_get_class(const struct kvm_vcpu *vcpu) \
             { return ESR_ELx_EC(kvm_vcpu_get_esr(vcpu)); }"
        ),
        "kvm_vcpu_trap_get_class()"
    );
}

/// `synchronize_vcpu_pstate()`, whole: the erratum's four conditions in
/// order (the ESR read last), SPSR_EL2 rewritten from the vCPU's PSTATE,
/// then PSTATE saved from SPSR_EL2; `vcpu_cpsr()` is that PSTATE.
#[test]
fn synchronize_vcpu_pstate_is_the_kernels() {
    let body = squash(&strip_comments(c_function(
        &read_kernel(HYP_SWITCH),
        "synchronize_vcpu_pstate",
    )));
    assert_eq!(
        body,
        "static inline void synchronize_vcpu_pstate(struct kvm_vcpu *vcpu, u64 *exit_code) { \
         if (cpus_have_final_cap(ARM64_WORKAROUND_2077057) && \
         vcpu->guest_debug & KVM_GUESTDBG_SINGLESTEP && \
         *vcpu_cpsr(vcpu) & DBG_SPSR_SS && \
         ESR_ELx_EC(read_sysreg_el2(SYS_ESR)) == ESR_ELx_EC_PAC) \
         write_sysreg_el2(*vcpu_cpsr(vcpu), SYS_SPSR); \
         vcpu->arch.ctxt.regs.pstate = read_sysreg_el2(SYS_SPSR);"
    );
    let emulate = squash(&strip_comments(&read_kernel(
        "arch/arm64/include/asm/kvm_emulate.h",
    )));
    assert!(
        emulate.contains(
            "static __always_inline unsigned long *vcpu_cpsr(const struct kvm_vcpu *vcpu) \
             { return (unsigned long *)&vcpu_gp_regs(vcpu)->pstate; }"
        ),
        "vcpu_cpsr()"
    );
    let host = defines("arch/arm64/include/asm/kvm_host.h");
    assert!(
        !host.contains_key("vcpu_gp_regs")
            && squash(&read_kernel("arch/arm64/include/asm/kvm_host.h"))
                .contains("#define vcpu_gp_regs(v) (&(v)->arch.ctxt.regs)"),
        "vcpu_gp_regs()"
    );
}

/// `fixup_guest_exit()` of the VHE switch: `synchronize_vcpu_pstate()` first,
/// then the nested PSTATE rewrite, gated by `vcpu_has_nv(vcpu)` first (so a
/// non-nested vCPU reads no register there), then `__fixup_guest_exit()` with
/// the VHE table, whose answer is the loop's; the run loop enters the guest
/// again while it is true, and returns the exit code otherwise.
#[test]
fn fixup_guest_exit_steps_in_the_c_order() {
    let switch = read_kernel(VHE_SWITCH);
    let body = squash(&strip_comments(c_function(&switch, "fixup_guest_exit")));
    let start = "static inline bool fixup_guest_exit(struct kvm_vcpu *vcpu, u64 *exit_code) { \
                 synchronize_vcpu_pstate(vcpu, exit_code); \
                 if (vcpu_has_nv(vcpu) && (read_sysreg(hcr_el2) & HCR_NV)) {";
    assert!(body.starts_with(start), "fixup_guest_exit(): `{body}`");
    assert!(
        body.ends_with("return __fixup_guest_exit(vcpu, exit_code, hyp_exit_handlers);"),
        "fixup_guest_exit(): `{body}`"
    );
    // The nested block touches only the vCPU's PSTATE, and is all there is
    // between the two calls.
    let ifs = if_statements(c_function(&switch, "fixup_guest_exit"));
    assert_eq!(ifs.len(), 1, "{ifs:?}");
    let (nested, after) = balanced(&body, "& HCR_NV)) {").expect("the nested block");
    assert!(
        !nested.contains("sysreg") && !nested.contains("exit_code"),
        "the nested block: `{nested}`"
    );
    assert_eq!(
        after.trim(),
        "return __fixup_guest_exit(vcpu, exit_code, hyp_exit_handlers);"
    );

    let run = squash(&strip_comments(c_function(&switch, "__kvm_vcpu_run_vhe")));
    assert!(
        run.contains(
            "do { exit_code = __guest_enter(vcpu); } while (fixup_guest_exit(vcpu, &exit_code));"
        ),
        "__kvm_vcpu_run_vhe(): `{run}`"
    );
    assert!(run.ends_with("return exit_code;"), "{run}");
}

/// Of the exit handlers (all in `hyp/switch.h` and `vhe/switch.c`), only
/// `kvm_hyp_handle_dabt_low()` writes `*exit_code`: `ARM_EXCEPTION_EL1_SERROR`,
/// and it then returns false. Every function that gets `exit_code` is
/// defined in those two files, so no write hides elsewhere.
#[test]
fn only_dabt_low_writes_the_exit_code() {
    let text = strip_comments(&(read_kernel(HYP_SWITCH) + "\n" + &read_kernel(VHE_SWITCH)));
    let mut writes = Vec::new();
    for (at, _) in text.match_indices("*exit_code") {
        let after = text[at + "*exit_code".len()..].trim_start();
        let is_write = (after.starts_with('=') && !after.starts_with("=="))
            || ["|=", "&=", "+=", "-=", "^=", "<<=", ">>="]
                .iter()
                .any(|op| after.starts_with(op));
        if !is_write {
            continue;
        }
        // The function: the last line at column 0 before, with a `(`.
        let func = text[..at]
            .lines()
            .rev()
            .find(|l| !l.starts_with(char::is_whitespace) && l.contains('('))
            .unwrap();
        let stmt = &after[..after.find(';').unwrap()];
        writes.push((func.to_string(), squash(stmt)));
    }
    assert_eq!(
        writes,
        [(
            "static inline bool kvm_hyp_handle_dabt_low(struct kvm_vcpu *vcpu, u64 *exit_code)"
                .to_string(),
            "= ARM_EXCEPTION_EL1_SERROR".to_string()
        )],
        "writes of *exit_code"
    );
    let dabt = squash(c_function(&text, "kvm_hyp_handle_dabt_low"));
    assert!(
        dabt.ends_with("*exit_code = ARM_EXCEPTION_EL1_SERROR; } } return false;"),
        "kvm_hyp_handle_dabt_low(): `{dabt}`"
    );

    // Where exit_code goes: to functions of these files, or through the
    // table (`fn`, whose entries tests/exits.rs finds defined here).
    let mut callees = BTreeSet::new();
    for (name, call) in c_calls(&text) {
        let args = &call[name.len() + 1..call.len() - 1];
        if args.split(',').any(|a| {
            let a = a.trim();
            a == "exit_code" || a == "&exit_code"
        }) {
            callees.insert(name);
        }
    }
    assert!(callees.len() > 5, "{callees:?}");
    for f in callees {
        if f == "fn" {
            continue;
        }
        let defined = text.lines().any(|l| {
            !l.starts_with(char::is_whitespace)
                && l.contains(&format!(" {f}("))
                && !l.ends_with(';')
        }) || defines(HYP_SWITCH).contains_key(&f);
        assert!(defined, "{f}() gets exit_code but is not defined here");
    }
}

/// At VHE hyp, `read_sysreg_el2(r)`/`write_sysreg_el2(v, r)` name the `_EL1`
/// encodings, which HCR_EL2.E2H redirects to the EL2 registers the Rust
/// names (ESR_EL2, SPSR_EL2, ELR_EL2).
#[test]
fn el2_registers_at_vhe() {
    let hyp_h = squash(&strip_comments(&read_kernel(
        "arch/arm64/include/asm/kvm_hyp.h",
    )));
    assert!(
        hyp_h.contains(
            "#if defined(__KVM_VHE_HYPERVISOR__) \
             #define read_sysreg_el0(r) read_sysreg_s(r##_EL02) \
             #define write_sysreg_el0(v,r) write_sysreg_s(v, r##_EL02) \
             #define read_sysreg_el1(r) read_sysreg_s(r##_EL12) \
             #define write_sysreg_el1(v,r) write_sysreg_s(v, r##_EL12) \
             #define read_sysreg_el2(r) read_sysreg_s(r##_EL1) \
             #define write_sysreg_el2(v,r) write_sysreg_s(v, r##_EL1) #else"
        ),
        "asm/kvm_hyp.h"
    );
}
