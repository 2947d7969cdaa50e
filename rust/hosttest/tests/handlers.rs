// SPDX-License-Identifier: GPL-2.0

//! The exit handlers (`rust/world/handlers.rs`) and the lazy FP trap, against
//! the kernel's C:
//!
//! 1. what `handlers.rs` hard-codes or mirrors is what the C says
//!    (`hyp/include/hyp/switch.h`, `hyp/vhe/switch.c`,
//!    `hyp/include/hyp/adjust_pc.h`, `asm/traps.h`, `asm/esr.h`,
//!    `asm/kvm_emulate.h`): the TX2 register list, the Ampere mask, the
//!    counter encodings, the MOPS syndrome fields, the PC steps, the fault
//!    status code sets (evaluated from the C for all 64 values), the order of
//!    the system register steps, the conditions of the GICv2 proxy;
//! 2. each handler, on the simulated CPU and the model vCPU, over random and
//!    edge inputs, does what a direct transcription of the C (next to the C
//!    text it transcribes, which is checked to be the kernel's) does: the
//!    same register accesses and kernel calls in the same order, the same
//!    answer and the same state; with explicit checks of the cases that
//!    matter;
//! 3. the lazy FP switch over whole runs (`world::run::run` with the real
//!    handlers and a guest that uses FP/SIMD and SVE, `common::fpmodel`):
//!    every sequence of events up to depth 8, at several vector lengths,
//!    loses and leaks nothing.
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

mod common;

use common::cexpr::Macros;
use common::cpu::{random_regs, Cpu};
use common::exits::{HYP_SWITCH, VHE_SWITCH};
use common::fpmodel::{self, FpConfig};
use common::kernel::{c_function, if_statements, read_kernel, squash, strip_comments};
use common::rng::Rng;
use common::vcpu::{Mark, Step, Vcpu};
use vhe_rs_hosttest::arch::{
    consts, Esr, RegAccess, SysReg, Value, CNTPCTSS_EL0, CNTPCT_EL0, CPACR_EL1, ELR_EL2, ESR_EL2,
    FPEXC32_EL2, HCR_EL2, SPSR_EL2, ZCR_EL12, ZCR_EL2,
};
use vhe_rs_hosttest::sim::Event;
use vhe_rs_hosttest::world::exits::{ExitHandler, SysregStep, SYSREG_STEPS};
use vhe_rs_hosttest::world::fixup::ExitCode;
use vhe_rs_hosttest::world::fp::FpOwner;
use vhe_rs_hosttest::world::handlers::{
    self, CpuifAccess, HandlerCaps, HandlerContext, A64_INSN_SIZE, MOPS_EPILOGUE_TO_PROLOGUE,
    TX2_TVM_EL1_REGS,
};
use vhe_rs_hosttest::world::sysreg_sr::{El2ReturnContext, Features};
use vhe_rs_hosttest::world::traps::TrapCaps;

const ADJUST_PC: &str = "arch/arm64/kvm/hyp/include/hyp/adjust_pc.h";
const TRAPS_H: &str = "arch/arm64/include/asm/traps.h";
const ESR_H: &str = "arch/arm64/include/asm/esr.h";
const KVM_EMULATE: &str = "arch/arm64/include/asm/kvm_emulate.h";
const ARCH_TIMER: &str = "arch/arm64/include/asm/arch_timer.h";
const SYSREGS_IN: &str = "rust/gen/sysregs.in";

// ---------------------------------------------------------------------------
// The kernel's text and values.

/// The kernel's macros the handlers use.
fn macros() -> Macros {
    Macros::from_files(&[
        "arch/arm64/include/uapi/asm/ptrace.h",
        "arch/arm64/include/asm/ptrace.h",
        "arch/arm64/include/generated/asm/sysreg-defs.h",
        "arch/arm64/include/asm/sysreg.h",
        ESR_H,
        "arch/arm64/include/asm/kvm_arm.h",
        "arch/arm64/include/asm/kvm_asm.h",
        "arch/arm64/include/asm/pgtable-hwdef.h",
        "arch/arm64/include/asm/debug-monitors.h",
    ])
}

/// The statements of C function `name` of kernel file `rel` (what follows
/// its first `{`), comments removed, white space squashed.
fn body(rel: &str, name: &str) -> String {
    let text = strip_comments(c_function(&read_kernel(rel), name));
    let (_, b) = text
        .split_once('{')
        .unwrap_or_else(|| panic!("{name}(): no body"));
    squash(b)
}

/// The text of function-like macro `name` of header `rel`, parameters
/// included, white space squashed.
fn fn_macro(rel: &str, name: &str) -> String {
    let text = read_kernel(rel).replace("\\\n", " ");
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("#define"))
        .filter_map(|l| l.trim_start().strip_prefix(name))
        .find(|l| l.starts_with('('))
        .map(squash)
        .unwrap_or_else(|| panic!("{rel}: no #define {name}(...)"))
}

/// The `case` labels of the first `switch` of `text`, with what follows each
/// group of labels up to the next `case`/`default` (squashed text).
fn switch_cases(text: &str) -> Vec<(Vec<String>, String)> {
    let (_, rest) = text.split_once("switch (").expect("no switch");
    let (_, sw) = rest.split_once(") {").expect("switch without a block");
    let mut out: Vec<(Vec<String>, String)> = Vec::new();
    let mut labels = Vec::new();
    let mut rest = sw.trim_start();
    while let Some(r) = rest.strip_prefix("case ") {
        let colon = r.find(": ").expect("case without `:`");
        labels.push(r[..colon].trim().to_string());
        rest = r[colon + 2..].trim_start();
        if !rest.starts_with("case ") {
            let end = [rest.find("case "), rest.find("default:")]
                .into_iter()
                .flatten()
                .min()
                .expect("switch without default");
            out.push((std::mem::take(&mut labels), rest[..end].trim().to_string()));
            rest = &rest[end..];
        }
    }
    assert!(rest.starts_with("default:"), "switch: `{rest}`");
    out
}

/// The expression `esr_fsc_is_translation_fault()` returns, of its
/// `esr` masked with `ESR_ELx_FSC` (its first statement).
fn c_translation_fault_expr() -> String {
    let tf = body(ESR_H, "esr_fsc_is_translation_fault");
    tf.strip_prefix("esr = esr & ESR_ELx_FSC; return ")
        .and_then(|r| r.strip_suffix(';'))
        .unwrap_or_else(|| panic!("esr_fsc_is_translation_fault(): `{tf}`"))
        .to_string()
}

/// What the tests need of the kernel, by the kernel's names.
struct K {
    m: Macros,
    mode32: u64,
    btype: u64,
    ss: u64,
    n_bit: u64,
    hcr_tvm: u64,
    hcr_rw: u64,
    fsc: u64,
    el1_serror: u64,
    /// [`c_tx2_regs`].
    tx2: Vec<String>,
    /// The expression `esr_fsc_is_translation_fault()` returns.
    tf: String,
    /// [`c_sysreg_order`].
    sysreg_order: Vec<SysregStep>,
}

impl K {
    fn new() -> K {
        let m = macros();
        let v = |n: &str| m.eval_u64(n, &[]);
        K {
            mode32: v("PSR_MODE32_BIT"),
            btype: v("PSR_BTYPE_MASK"),
            ss: v("DBG_SPSR_SS"),
            n_bit: v("PSR_N_BIT"),
            hcr_tvm: v("HCR_TVM"),
            hcr_rw: v("HCR_RW"),
            fsc: v("ESR_ELx_FSC"),
            el1_serror: v("ARM_EXCEPTION_EL1_SERROR"),
            tx2: c_tx2_regs(),
            tf: c_translation_fault_expr(),
            sysreg_order: c_sysreg_order(),
            m,
        }
    }

    fn get(&self, name: &str) -> u64 {
        self.m.eval_u64(name, &[])
    }

    /// The kernel's `sys_reg()` encoding of `SYS_<name>`.
    fn sys(&self, name: &str) -> u32 {
        u32::try_from(self.get(&format!("SYS_{name}"))).unwrap()
    }

    /// `ESR_ELx_EC(...)` of class `name` in place.
    fn ec(&self, name: &str) -> u64 {
        self.get(&format!("ESR_ELx_EC_{name}")) << self.get("ESR_ELx_EC_SHIFT")
    }

    /// A SYS64 syndrome of a trapped access to the register encoded `enc`,
    /// through general-purpose register `rt`, the other ISS bits random.
    fn sys64_esr(&self, enc: u32, rt: u64, rng: &mut Rng) -> u64 {
        let f = |mask: &str, shift: &str, v: u64| (v << self.get(shift)) & self.get(mask);
        let e = u64::from(enc);
        let field = |n: &str| -> u64 {
            let (sh, mask) = (format!("{n}_shift"), format!("{n}_mask"));
            (e >> self.get(&sh)) & self.get(&mask)
        };
        let iss = f(
            "ESR_ELx_SYS64_ISS_OP0_MASK",
            "ESR_ELx_SYS64_ISS_OP0_SHIFT",
            field("Op0"),
        ) | f(
            "ESR_ELx_SYS64_ISS_OP1_MASK",
            "ESR_ELx_SYS64_ISS_OP1_SHIFT",
            field("Op1"),
        ) | f(
            "ESR_ELx_SYS64_ISS_CRN_MASK",
            "ESR_ELx_SYS64_ISS_CRN_SHIFT",
            field("CRn"),
        ) | f(
            "ESR_ELx_SYS64_ISS_CRM_MASK",
            "ESR_ELx_SYS64_ISS_CRM_SHIFT",
            field("CRm"),
        ) | f(
            "ESR_ELx_SYS64_ISS_OP2_MASK",
            "ESR_ELx_SYS64_ISS_OP2_SHIFT",
            field("Op2"),
        ) | f(
            "ESR_ELx_SYS64_ISS_RT_MASK",
            "ESR_ELx_SYS64_ISS_RT_SHIFT",
            rt,
        ) | (rng.next() & 1);
        self.ec("SYS64") | self.get("ESR_ELx_IL") | iss
    }
}

fn esr(v: u64) -> Esr {
    Esr::new(Value::from_raw(v))
}

// ---------------------------------------------------------------------------
// 1. What handlers.rs hard-codes, against the C.

/// The `case SYS_<X>_EL1: write_sysreg_el1(val, SYS_<X>); break;` entries of
/// `handle_tx2_tvm()`'s switch: the register names `<X>`, in order.
fn c_tx2_regs() -> Vec<String> {
    let b = body(HYP_SWITCH, "handle_tx2_tvm");
    switch_cases(&b)
        .into_iter()
        .map(|(labels, stmts)| {
            assert_eq!(labels.len(), 1, "handle_tx2_tvm(): {labels:?}");
            let x = labels[0]
                .strip_prefix("SYS_")
                .and_then(|l| l.strip_suffix("_EL1"))
                .unwrap_or_else(|| panic!("handle_tx2_tvm(): case {}", labels[0]));
            assert_eq!(
                stmts,
                format!("write_sysreg_el1(val, SYS_{x}); break;"),
                "handle_tx2_tvm(): case {}",
                labels[0]
            );
            x.to_string()
        })
        .collect()
}

/// `handle_tx2_tvm()` emulates writes to exactly the registers of its switch,
/// in its order ([`TX2_TVM_EL1_REGS`], by the kernel's encodings), each
/// written to its `_EL12` alias (`write_sysreg_el1()` under VHE); the value is
/// read before the TVM test, and the instruction skipped after the write.
#[test]
fn tx2_tvm_registers_are_the_kernels() {
    let k = K::new();
    let names = c_tx2_regs();
    assert_eq!(names.len(), 11, "{names:?}");
    let c: Vec<u32> = names.iter().map(|x| k.sys(&format!("{x}_EL1"))).collect();
    assert_eq!(TX2_TVM_EL1_REGS, c, "{names:?}");
    let b = body(HYP_SWITCH, "handle_tx2_tvm");
    assert!(
        b.starts_with(
            "u32 sysreg = esr_sys64_to_sysreg(kvm_vcpu_get_esr(vcpu)); \
             int rt = kvm_vcpu_sys_get_rt(vcpu); u64 val = vcpu_get_reg(vcpu, rt); \
             if (vcpu->arch.hcr_el2 & HCR_TVM) return false; switch (sysreg) {"
        ),
        "{b}"
    );
    assert!(
        b.ends_with("default: return false; } __kvm_skip_instr(vcpu); return true;"),
        "{b}"
    );
}

/// `handle_ampere1_tcr()`: TCR_EL1 only, written to TCR_EL12 with
/// `TCR_HD | TCR_HA` cleared (the generated constants are the kernel's), the
/// instruction skipped.
#[test]
fn ampere1_tcr_is_the_kernels() {
    let k = K::new();
    assert_eq!(
        body(HYP_SWITCH, "handle_ampere1_tcr"),
        "u32 sysreg = esr_sys64_to_sysreg(kvm_vcpu_get_esr(vcpu)); \
         int rt = kvm_vcpu_sys_get_rt(vcpu); u64 val = vcpu_get_reg(vcpu, rt); \
         if (sysreg != SYS_TCR_EL1) return false; val &= ~(TCR_HD | TCR_HA); \
         write_sysreg_el1(val, SYS_TCR); __kvm_skip_instr(vcpu); return true;"
    );
    assert_eq!(consts::TCR_HD, k.get("TCR_HD"));
    assert_eq!(consts::TCR_HA, k.get("TCR_HA"));
    assert_eq!(
        <vhe_rs_hosttest::arch::TCR_EL1::Reg as SysReg>::ENCODING,
        k.sys("TCR_EL1")
    );
    assert_eq!(
        <vhe_rs_hosttest::arch::TCR_EL12::Reg as SysReg>::ENCODING,
        k.sys("TCR_EL12")
    );
}

/// `kvm_hyp_handle_cntpct()` handles exactly SYS_CNTPCT_EL0 and
/// SYS_CNTPCTSS_EL0 (the Rust types' encodings are the kernel's), subtracts
/// both offsets when set, writes Rt and skips; `arch_timer_read_cntpct_el0()`
/// is `isb; mrs cntpct_el0`, or CNTPCTSS_EL0 with ECV.
#[test]
fn cntpct_is_the_kernels() {
    let k = K::new();
    let b = body(HYP_SWITCH, "kvm_hyp_handle_cntpct");
    let cases = switch_cases(&b);
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0].0, ["SYS_CNTPCT_EL0", "SYS_CNTPCTSS_EL0"]);
    // For a non-nested vCPU: the EL1 physical timer.
    assert!(
        cases[0].1.starts_with("if (vcpu_has_nv(vcpu)) {")
            && cases[0].1.ends_with("} ctxt = vcpu_ptimer(vcpu); break;"),
        "{}",
        cases[0].1
    );
    assert!(
        b.ends_with(
            "val = arch_timer_read_cntpct_el0(); \
             if (ctxt->offset.vm_offset) val -= *kern_hyp_va(ctxt->offset.vm_offset); \
             if (ctxt->offset.vcpu_offset) val -= *kern_hyp_va(ctxt->offset.vcpu_offset); \
             vcpu_set_reg(vcpu, kvm_vcpu_sys_get_rt(vcpu), val); __kvm_skip_instr(vcpu); \
             return true;"
        ),
        "{b}"
    );
    assert_eq!(<CNTPCT_EL0::Reg as SysReg>::ENCODING, k.sys("CNTPCT_EL0"));
    assert_eq!(
        <CNTPCTSS_EL0::Reg as SysReg>::ENCODING,
        k.sys("CNTPCTSS_EL0")
    );
    let t = squash(&read_kernel(ARCH_TIMER));
    assert!(
        t.contains(
            "asm volatile(ALTERNATIVE(\"isb\\n mrs %0, cntpct_el0\", \
             \"nop\\n\" __mrs_s(\"%0\", SYS_CNTPCTSS_EL0), ARM64_HAS_ECV)"
        ),
        "arch_timer_read_cntpct_el0()"
    );
}

/// The MOPS syndrome fields: `ESR_ELx_MOPS_ISS_{DESTREG,SRCREG,SIZEREG}` are
/// the macros `rust/gen/sysregs.in` says, and for random syndromes every
/// field the Rust reads is what the kernel's macro gives.
#[test]
fn mops_fields_are_the_kernels() {
    let k = K::new();
    for (n, shift) in [("DESTREG", 10), ("SRCREG", 5), ("SIZEREG", 0)] {
        assert_eq!(
            fn_macro(ESR_H, &format!("ESR_ELx_MOPS_ISS_{n}")),
            format!("(esr) (((esr) & (UL(0x1f) << {shift})) >> {shift})")
        );
    }
    // What sysregs.in claims the fields are.
    let gen = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../")
            .join(SYSREGS_IN),
    )
    .unwrap();
    for (n, mask) in [
        ("DESTREG", "(UL(0x1f)<<10)"),
        ("SRCREG", "(UL(0x1f)<<5)"),
        ("SIZEREG", "(UL(0x1f)<<0)"),
    ] {
        let line = format!("field MOPS_{n} {mask}");
        assert!(
            gen.lines().any(|l| l.trim() == line),
            "sysregs.in: `{line}`"
        );
    }
    let fields = [
        ("ESR_ELx_MOPS_ISS_DESTREG(esr)", ESR_EL2::MOPS_DESTREG),
        ("ESR_ELx_MOPS_ISS_SRCREG(esr)", ESR_EL2::MOPS_SRCREG),
        ("ESR_ELx_MOPS_ISS_SIZEREG(esr)", ESR_EL2::MOPS_SIZEREG),
        (
            "!!(esr & ESR_ELx_MOPS_ISS_MEM_INST)",
            ESR_EL2::MOPS_MEM_INST,
        ),
        (
            "!!(esr & ESR_ELx_MOPS_ISS_FROM_EPILOGUE)",
            ESR_EL2::MOPS_FROM_EPILOGUE,
        ),
        (
            "!!(esr & ESR_ELx_MOPS_ISS_WRONG_OPTION)",
            ESR_EL2::MOPS_WRONG_OPTION,
        ),
        (
            "!!(esr & ESR_ELx_MOPS_ISS_OPTION_A)",
            ESR_EL2::MOPS_OPTION_A,
        ),
    ];
    let mut rng = Rng(0x4d0b_5001);
    for i in 0..2000u64 {
        let e = match i {
            0 => 0,
            1 => u64::MAX,
            _ => rng.next(),
        };
        for (c, f) in &fields {
            let want = k.m.eval_u64(c, &[("esr", i128::from(e))]);
            assert_eq!(
                Value::<ESR_EL2::Reg>::from_raw(e).field(*f),
                want,
                "{c}, esr {e:#x}"
            );
        }
    }
}

/// `esr_sys64_to_sysreg()` and `ESR_ELx_SYS64_ISS_RT()` (`kvm_vcpu_sys_get_rt()`)
/// evaluated from the C for random syndromes: what `handlers.rs` computes.
#[test]
fn sys64_decoding_is_the_kernels() {
    let k = K::new();
    assert!(body(KVM_EMULATE, "kvm_vcpu_sys_get_rt").contains("return ESR_ELx_SYS64_ISS_RT(esr);"));
    let mut rng = Rng(0x5e5_6401);
    for i in 0..2000u64 {
        let e = if i == 0 { u64::MAX } else { rng.next() };
        let vars = [("e", i128::from(e)), ("esr", i128::from(e))];
        assert_eq!(
            u64::from(handlers::esr_sys64_to_sysreg(esr(e))),
            k.m.eval_u64("esr_sys64_to_sysreg(e)", &vars),
            "{e:#x}"
        );
        assert_eq!(
            handlers::sys64_rt(esr(e)),
            k.m.eval_u64("ESR_ELx_SYS64_ISS_RT(esr)", &vars),
            "{e:#x}"
        );
    }
}

/// The PC steps: `kvm_skip_instr()`'s `+= 4` ([`A64_INSN_SIZE`]),
/// `arm64_mops_reset_regs()`'s `-= 8` and `-= 4`
/// ([`MOPS_EPILOGUE_TO_PROLOGUE`], [`A64_INSN_SIZE`]), in the C texts the
/// transcriptions below follow.
#[test]
fn pc_steps_are_the_kernels() {
    assert_eq!(body(ADJUST_PC, "kvm_skip_instr"), C_KVM_SKIP_INSTR);
    assert_eq!(body(ADJUST_PC, "__kvm_skip_instr"), C___KVM_SKIP_INSTR);
    assert_eq!(body(TRAPS_H, "arm64_mops_reset_regs"), C_MOPS_RESET_REGS);
    assert_eq!(body(HYP_SWITCH, "kvm_hyp_handle_mops"), C_HANDLE_MOPS);
    let num = |text: &str, pat: &str| -> u64 {
        let (_, r) = text.split_once(pat).unwrap_or_else(|| panic!("no `{pat}`"));
        r[..r.find(';').unwrap()].trim().parse().unwrap()
    };
    assert_eq!(num(C_KVM_SKIP_INSTR, "*vcpu_pc(vcpu) += "), A64_INSN_SIZE);
    let (epi, rest) = C_MOPS_RESET_REGS
        .split_once("if (esr & ESR_ELx_MOPS_ISS_FROM_EPILOGUE) ")
        .unwrap();
    assert!(!epi.contains("regs->pc"));
    assert_eq!(num(rest, "regs->pc -= "), MOPS_EPILOGUE_TO_PROLOGUE);
    assert_eq!(num(rest, "else regs->pc -= "), A64_INSN_SIZE);
}

/// `esr_fsc_is_translation_fault()` and `kvm_vcpu_abt_issea()` evaluated from
/// the C for all 64 fault status codes (and random other syndrome bits): what
/// [`handlers::is_translation_fault`] and [`handlers::abt_issea`] answer.
#[test]
fn fault_status_sets_are_the_kernels() {
    let k = K::new();
    let ret = k.tf.as_str();
    assert!(body(KVM_EMULATE, "kvm_vcpu_trap_is_translation_fault")
        .contains("return esr_fsc_is_translation_fault(kvm_vcpu_get_esr(vcpu));"));
    assert_eq!(
        body(KVM_EMULATE, "kvm_vcpu_trap_get_fault"),
        "return kvm_vcpu_get_esr(vcpu) & ESR_ELx_FSC;"
    );
    let issea = body(KVM_EMULATE, "kvm_vcpu_abt_issea");
    assert!(
        issea.starts_with("switch (kvm_vcpu_trap_get_fault(vcpu)) {"),
        "{issea}"
    );
    let cases = switch_cases(&issea);
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0].1, "return true;");
    assert!(issea.ends_with("default: return false; }"), "{issea}");
    let ranges: Vec<(u64, u64)> = cases[0]
        .0
        .iter()
        .map(|l| match l.split_once(" ... ") {
            Some((a, b)) => (k.get(a), k.get(b)),
            None => (k.get(l), k.get(l)),
        })
        .collect();
    assert_eq!(k.fsc, ESR_EL2::FSC.mask());
    let mut rng = Rng(0xf5c0_0001);
    let (mut n_tf, mut n_sea) = (0, 0);
    for fsc in 0..64u64 {
        for i in 0..8 {
            let e = if i == 0 {
                fsc
            } else {
                (rng.next() & !k.fsc) | fsc
            };
            let c_tf = k.m.eval(ret, &[("esr", i128::from(e & k.fsc))]) != 0;
            let c_sea = ranges.iter().any(|(a, b)| (*a..=*b).contains(&(e & k.fsc)));
            assert_eq!(handlers::is_translation_fault(esr(e)), c_tf, "FSC {fsc:#x}");
            assert_eq!(handlers::abt_issea(esr(e)), c_sea, "FSC {fsc:#x}");
            if i == 0 {
                n_tf += usize::from(c_tf);
                n_sea += usize::from(c_sea);
            }
        }
    }
    // Levels -1..3 each: five translation faults; the external aborts, on
    // the access, on a walk at five levels, with and without ECC: twelve.
    assert_eq!((n_tf, n_sea), (5, 12));
}

/// `kvm_hyp_handle_fpsimd()`, the parts a non-nested vCPU on a VHE host
/// takes: what [`handlers::fpsimd`] and `fp::handle_trap` do.
#[test]
fn fpsimd_handler_is_the_kernels() {
    let b = body(HYP_SWITCH, "kvm_hyp_handle_fpsimd");
    for part in [
        "if (!system_supports_fpsimd()) return false; sve_guest = vcpu_has_sve(vcpu); \
         esr_ec = kvm_vcpu_trap_get_class(vcpu); switch (esr_ec) { \
         case ESR_ELx_EC_FP_ASIMD: if (guest_hyp_fpsimd_traps_enabled(vcpu)) return false; break; \
         case ESR_ELx_EC_SYS64: fallthrough; case ESR_ELx_EC_SVE: if (!sve_guest) return false; \
         if (guest_hyp_sve_traps_enabled(vcpu)) return false; break; default: return false; }",
        "if (sve_guest || (is_protected_kvm_enabled() && system_supports_sve())) \
         cpacr_clear_set(0, CPACR_ELx_FPEN | CPACR_ELx_ZEN); \
         else cpacr_clear_set(0, CPACR_ELx_FPEN); isb();",
        "if (sve_guest) __hyp_sve_restore_guest(vcpu); \
         else __fpsimd_restore_state(&vcpu->arch.ctxt.fp_regs);",
        "if (!(read_sysreg(hcr_el2) & HCR_RW)) \
         write_sysreg(__vcpu_sys_reg(vcpu, FPEXC32_EL2), fpexc32_el2); \
         *host_data_ptr(fp_owner) = FP_STATE_GUEST_OWNED; return true;",
    ] {
        assert!(
            b.contains(part),
            "kvm_hyp_handle_fpsimd(): no `{part}` in `{b}`"
        );
    }
    assert_eq!(
        body(HYP_SWITCH, "__hyp_sve_restore_guest"),
        "sve_cond_update_zcr_vq(vcpu_sve_max_vq(vcpu) - 1, SYS_ZCR_EL2); \
         __sve_restore_state(vcpu_sve_pffr(vcpu), &vcpu->arch.ctxt.fp_regs.fpsr, true); \
         if (vcpu_has_nv(vcpu) && !is_hyp_ctxt(vcpu)) \
         sve_cond_update_zcr_vq(__vcpu_sys_reg(vcpu, ZCR_EL2), SYS_ZCR_EL2); \
         write_sysreg_el1(__vcpu_sys_reg(vcpu, vcpu_sve_zcr_elx(vcpu)), SYS_ZCR);"
    );
}

/// The C of the other handlers the transcriptions below follow.
#[test]
fn other_handlers_are_the_kernels() {
    assert_eq!(body(HYP_SWITCH, "kvm_hyp_handle_sysreg"), C_SYSREG);
    assert_eq!(body(HYP_SWITCH, "kvm_hyp_handle_cp15_32"), C_CP15_32);
    assert_eq!(
        body(HYP_SWITCH, "kvm_hyp_handle_memory_fault"),
        C_MEMORY_FAULT
    );
    assert_eq!(body(HYP_SWITCH, "kvm_hyp_handle_dabt_low"), C_DABT_LOW);
    for (f, want) in [
        (
            "kvm_vcpu_dabt_isvalid",
            "return !!(kvm_vcpu_get_esr(vcpu) & ESR_ELx_ISV);",
        ),
        (
            "kvm_vcpu_abt_iss1tw",
            "return !!(kvm_vcpu_get_esr(vcpu) & ESR_ELx_S1PTW);",
        ),
        (
            "vcpu_mode_is_32bit",
            "return !!(*vcpu_cpsr(vcpu) & PSR_MODE32_BIT);",
        ),
    ] {
        assert_eq!(body(KVM_EMULATE, f), want, "{f}()");
    }
    // The ESR fields the Rust reads for them are the kernel's bits.
    let k = K::new();
    assert_eq!(ESR_EL2::ISV.mask(), k.get("ESR_ELx_ISV"));
    assert_eq!(ESR_EL2::S1PTW.mask(), k.get("ESR_ELx_S1PTW"));
    assert_eq!(consts::PSR_MODE32_BIT, k.mode32);
    assert_eq!(consts::PSR_BTYPE_MASK, k.btype);
    // The C's `unsigned int` 0x80000000, zero-extended as C promotes it (the
    // generator once sign-extended it).
    assert_eq!(handlers::PSR_N_BIT, k.n_bit);
    assert_eq!(consts::PSR_N_BIT, k.n_bit);
    assert_eq!(SPSR_EL2::SS.mask(), k.ss);
    assert_eq!(ExitCode::EL1_SERROR.raw(), k.el1_serror);
    // And the step order kvm_hyp_handle_sysreg_vhe() ends with.
    let ours: Vec<&str> = SYSREG_STEPS
        .iter()
        .filter(|s| !s.nested_only())
        .map(|s| s.c_name())
        .collect();
    assert_eq!(
        ours,
        c_sysreg_order()
            .iter()
            .map(|s| s.c_name())
            .collect::<Vec<_>>()
    );
    let vhe = body(VHE_SWITCH, "kvm_hyp_handle_sysreg_vhe");
    assert!(vhe.ends_with("return kvm_hyp_handle_sysreg(vcpu, exit_code);"));
}

// ---------------------------------------------------------------------------
// The C, transcribed (each next to its text, checked above to be the
// kernel's), on the model vCPU and its CPU.

const C_KVM_SKIP_INSTR: &str = "if (vcpu_mode_is_32bit(vcpu)) { kvm_skip_instr32(vcpu); } \
    else { *vcpu_pc(vcpu) += 4; *vcpu_cpsr(vcpu) &= ~PSR_BTYPE_MASK; } \
    *vcpu_cpsr(vcpu) &= ~DBG_SPSR_SS;";

const C___KVM_SKIP_INSTR: &str = "*vcpu_pc(vcpu) = read_sysreg_el2(SYS_ELR); \
    vcpu_gp_regs(vcpu)->pstate = read_sysreg_el2(SYS_SPSR); kvm_skip_instr(vcpu); \
    write_sysreg_el2(vcpu_gp_regs(vcpu)->pstate, SYS_SPSR); \
    write_sysreg_el2(*vcpu_pc(vcpu), SYS_ELR);";

fn c_skip_instr(k: &K, v: &mut Vcpu, cpu: &mut Cpu) {
    let pc = cpu.read_raw::<ELR_EL2::Reg>();
    v.set_pc(Value::from_raw(pc));
    let p = cpu.read_raw::<SPSR_EL2::Reg>();
    v.set_pstate(Value::from_raw(p));
    if v.pstate().raw() & k.mode32 != 0 {
        v.skip_instr32();
    } else {
        let pc = v.pc().raw().wrapping_add(4);
        v.set_pc(Value::from_raw(pc));
        let p = v.pstate().raw() & !k.btype;
        v.set_pstate(Value::from_raw(p));
    }
    let p = v.pstate().raw() & !k.ss;
    v.set_pstate(Value::from_raw(p));
    cpu.write_raw::<SPSR_EL2::Reg>(v.pstate().raw());
    cpu.write_raw::<ELR_EL2::Reg>(v.pc().raw());
}

/// The syndrome the handlers read: `vcpu->arch.fault.esr_el2`.
fn fault_esr(v: &Vcpu) -> u64 {
    v.fixup.fault_esr
}

/// `handle_tx2_tvm()`, the `_EL12` register of each case by the kernel's
/// encoding.
fn c_tx2_tvm(k: &K, v: &mut Vcpu, cpu: &mut Cpu) -> bool {
    let e = fault_esr(v);
    let sysreg =
        k.m.eval_u64("esr_sys64_to_sysreg(e)", &[("e", i128::from(e))]) as u32;
    let rt =
        k.m.eval_u64("ESR_ELx_SYS64_ISS_RT(e)", &[("e", i128::from(e))]);
    let val = v.gpr(rt);
    if v.entry.hcr & k.hcr_tvm != 0 {
        return false;
    }
    let Some(x) = k.tx2.iter().find(|x| k.sys(&format!("{x}_EL1")) == sysreg) else {
        return false;
    };
    write_encoded(cpu, k.sys(&format!("{x}_EL12")), val);
    c_skip_instr(k, v, cpu);
    true
}

/// A logged write to the register encoded `enc` (the registers the handlers
/// write by type, found by encoding).
fn write_encoded(cpu: &mut Cpu, enc: u32, val: u64) {
    macro_rules! by_enc {
        ($($r:ident),*) => {
            $(
                if enc == <vhe_rs_hosttest::arch::$r::Reg as SysReg>::ENCODING {
                    return cpu.write_raw::<vhe_rs_hosttest::arch::$r::Reg>(val);
                }
            )*
        };
    }
    by_enc!(
        SCTLR_EL12,
        TTBR0_EL12,
        TTBR1_EL12,
        TCR_EL12,
        ESR_EL12,
        FAR_EL12,
        AFSR0_EL12,
        AFSR1_EL12,
        MAIR_EL12,
        AMAIR_EL12,
        CONTEXTIDR_EL12
    );
    panic!("no register type encoded {enc:#x}");
}

fn c_ampere1_tcr(k: &K, v: &mut Vcpu, cpu: &mut Cpu) -> bool {
    let e = fault_esr(v);
    let sysreg =
        k.m.eval_u64("esr_sys64_to_sysreg(e)", &[("e", i128::from(e))]) as u32;
    let rt =
        k.m.eval_u64("ESR_ELx_SYS64_ISS_RT(e)", &[("e", i128::from(e))]);
    let mut val = v.gpr(rt);
    if sysreg != k.sys("TCR_EL1") {
        return false;
    }
    val &= !k.get("(TCR_HD | TCR_HA)");
    write_encoded(cpu, k.sys("TCR_EL12"), val);
    c_skip_instr(k, v, cpu);
    true
}

/// `kvm_hyp_handle_cntpct()` for a non-nested vCPU (`vcpu_has_nv()` false).
fn c_cntpct(k: &K, v: &mut Vcpu, cpu: &mut Cpu) -> bool {
    let e = fault_esr(v);
    let sysreg =
        k.m.eval_u64("esr_sys64_to_sysreg(e)", &[("e", i128::from(e))]) as u32;
    if sysreg != k.sys("CNTPCT_EL0") && sysreg != k.sys("CNTPCTSS_EL0") {
        return false;
    }
    let mut val = if v.hs.caps.ecv {
        cpu.read_raw::<CNTPCTSS_EL0::Reg>()
    } else {
        cpu.isb();
        cpu.read_raw::<CNTPCT_EL0::Reg>()
    };
    // NULL pointers are modelled as 0 offsets: the same either way.
    let (vm, vc) = v.ptimer_offsets();
    if vm != 0 {
        val = val.wrapping_sub(vm);
    }
    if vc != 0 {
        val = val.wrapping_sub(vc);
    }
    let rt =
        k.m.eval_u64("ESR_ELx_SYS64_ISS_RT(e)", &[("e", i128::from(e))]);
    v.set_gpr(rt, val);
    c_skip_instr(k, v, cpu);
    true
}

const C_SYSREG: &str = "if (cpus_have_final_cap(ARM64_WORKAROUND_CAVIUM_TX2_219_TVM) && \
    handle_tx2_tvm(vcpu)) return true; \
    if (cpus_have_final_cap(ARM64_WORKAROUND_AMPERE_AC03_CPU_38) && handle_ampere1_tcr(vcpu)) \
    return true; \
    if (static_branch_unlikely(&vgic_v3_cpuif_trap) && __vgic_v3_perform_cpuif_access(vcpu) == 1) \
    return true; if (kvm_hyp_handle_cntpct(vcpu)) return true; return false;";

/// The steps of `kvm_hyp_handle_sysreg()`, in the order of its text.
fn c_sysreg_order() -> Vec<SysregStep> {
    if_statements(&body(HYP_SWITCH, "kvm_hyp_handle_sysreg"))
        .iter()
        .map(|(cond, then)| {
            assert_eq!(then, "return true;");
            let s = [
                SysregStep::Tx2Tvm,
                SysregStep::Ampere1Tcr,
                SysregStep::VgicV3Cpuif,
                SysregStep::Cntpct,
            ];
            *s.iter()
                .find(|s| cond.contains(&format!("{}(vcpu)", s.c_name())))
                .unwrap_or_else(|| panic!("kvm_hyp_handle_sysreg(): `{cond}`"))
        })
        .collect()
}

/// `kvm_hyp_handle_sysreg()`: its steps, in the order of the kernel's text.
fn c_sysreg(k: &K, v: &mut Vcpu, cpu: &mut Cpu) -> bool {
    for &step in &k.sysreg_order {
        let caps = v.hs.caps;
        let done = match step {
            SysregStep::Tx2Tvm => caps.cavium_tx2_219_tvm && c_tx2_tvm(k, v, cpu),
            SysregStep::Ampere1Tcr => caps.ampere_ac03_cpu_38 && c_ampere1_tcr(k, v, cpu),
            SysregStep::VgicV3Cpuif => {
                caps.vgic_v3_cpuif_trap && v.vgic_v3_cpuif_access() == CpuifAccess::Handled
            }
            SysregStep::Cntpct => c_cntpct(k, v, cpu),
            s => panic!("{s:?}"),
        };
        if done {
            return true;
        }
    }
    false
}

const C_CP15_32: &str = "if (static_branch_unlikely(&vgic_v3_cpuif_trap) && \
    __vgic_v3_perform_cpuif_access(vcpu) == 1) return true; return false;";

const C_MEMORY_FAULT: &str = "if (!__populate_fault_info(vcpu)) return true; return false;";

const C_DABT_LOW: &str = "if (kvm_hyp_handle_memory_fault(vcpu, exit_code)) return true; \
    if (static_branch_unlikely(&vgic_v2_cpuif_trap)) { bool valid; \
    valid = kvm_vcpu_trap_is_translation_fault(vcpu) && kvm_vcpu_dabt_isvalid(vcpu) && \
    !kvm_vcpu_abt_issea(vcpu) && !kvm_vcpu_abt_iss1tw(vcpu); \
    if (valid) { int ret = __vgic_v2_perform_cpuif_access(vcpu); if (ret == 1) return true; \
    if (ret == -1) *exit_code = ARM_EXCEPTION_EL1_SERROR; } } return false;";

/// `kvm_hyp_handle_dabt_low()`: the conditions of `valid` each evaluated from
/// the kernel's C (the FSC sets from `esr.h`/`kvm_emulate.h`, the bits from
/// `esr.h`).
fn c_dabt_low(k: &K, v: &mut Vcpu, exit_code: &mut u64) -> bool {
    if !v.populate_fault_info() {
        return true;
    }
    if v.hs.caps.vgic_v2_cpuif_trap {
        let e = fault_esr(v);
        let is_tf = k.m.eval(&k.tf, &[("esr", i128::from(e & k.fsc))]) != 0;
        let isv = e & k.get("ESR_ELx_ISV") != 0;
        let fsc = e & k.fsc;
        let issea = k.get("ESR_ELx_FSC_EXTABT") == fsc
            || (k.get("ESR_ELx_FSC_SEA_TTW(-1)")..=k.get("ESR_ELx_FSC_SEA_TTW(3)")).contains(&fsc)
            || k.get("ESR_ELx_FSC_SECC") == fsc
            || (k.get("ESR_ELx_FSC_SECC_TTW(-1)")..=k.get("ESR_ELx_FSC_SECC_TTW(3)"))
                .contains(&fsc);
        let s1ptw = e & k.get("ESR_ELx_S1PTW") != 0;
        let valid = is_tf && isv && !issea && !s1ptw;
        if valid {
            let ret = match v.vgic_v2_cpuif_access() {
                CpuifAccess::Handled => 1,
                CpuifAccess::Illegal => -1,
                CpuifAccess::NotHandled => 0,
            };
            if ret == 1 {
                return true;
            }
            if ret == -1 {
                *exit_code = k.el1_serror;
            }
        }
    }
    false
}

const C_MOPS_RESET_REGS: &str = "bool wrong_option = esr & ESR_ELx_MOPS_ISS_WRONG_OPTION; \
    bool option_a = esr & ESR_ELx_MOPS_ISS_OPTION_A; int dstreg = ESR_ELx_MOPS_ISS_DESTREG(esr); \
    int srcreg = ESR_ELx_MOPS_ISS_SRCREG(esr); int sizereg = ESR_ELx_MOPS_ISS_SIZEREG(esr); \
    unsigned long dst, size; dst = regs->regs[dstreg]; size = regs->regs[sizereg]; \
    if (esr & ESR_ELx_MOPS_ISS_MEM_INST) { if (option_a ^ wrong_option) { \
    regs->regs[dstreg] = dst + size; regs->regs[sizereg] = -size; } } \
    else { unsigned long src = regs->regs[srcreg]; if (!(option_a ^ wrong_option)) { \
    if (regs->pstate & PSR_N_BIT) { regs->regs[dstreg] = dst - size; \
    regs->regs[srcreg] = src - size; } } else { if (size & BIT(63)) { \
    regs->regs[dstreg] = dst + size; regs->regs[srcreg] = src + size; \
    regs->regs[sizereg] = -size; } } } \
    if (esr & ESR_ELx_MOPS_ISS_FROM_EPILOGUE) regs->pc -= 8; else regs->pc -= 4;";

/// `struct user_pt_regs`: `regs[31]` reaches `sp`, the word after `regs[30]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PtRegs {
    regs: [u64; 32],
    pc: u64,
    pstate: u64,
}

fn c_mops_reset_regs(k: &K, regs: &mut PtRegs, esr: u64) {
    let ev = |e: &str| k.m.eval_u64(e, &[("esr", i128::from(esr))]);
    let wrong_option = ev("esr & ESR_ELx_MOPS_ISS_WRONG_OPTION") != 0;
    let option_a = ev("esr & ESR_ELx_MOPS_ISS_OPTION_A") != 0;
    let dstreg = ev("ESR_ELx_MOPS_ISS_DESTREG(esr)") as usize;
    let srcreg = ev("ESR_ELx_MOPS_ISS_SRCREG(esr)") as usize;
    let sizereg = ev("ESR_ELx_MOPS_ISS_SIZEREG(esr)") as usize;
    let dst = regs.regs[dstreg];
    let size = regs.regs[sizereg];
    if ev("esr & ESR_ELx_MOPS_ISS_MEM_INST") != 0 {
        if option_a ^ wrong_option {
            regs.regs[dstreg] = dst.wrapping_add(size);
            regs.regs[sizereg] = size.wrapping_neg();
        }
    } else {
        let src = regs.regs[srcreg];
        if !(option_a ^ wrong_option) {
            if regs.pstate & k.n_bit != 0 {
                regs.regs[dstreg] = dst.wrapping_sub(size);
                regs.regs[srcreg] = src.wrapping_sub(size);
            }
        } else if size & (1 << 63) != 0 {
            regs.regs[dstreg] = dst.wrapping_add(size);
            regs.regs[srcreg] = src.wrapping_add(size);
            regs.regs[sizereg] = size.wrapping_neg();
        }
    }
    if ev("esr & ESR_ELx_MOPS_ISS_FROM_EPILOGUE") != 0 {
        regs.pc = regs.pc.wrapping_sub(8);
    } else {
        regs.pc = regs.pc.wrapping_sub(4);
    }
}

const C_HANDLE_MOPS: &str = "u64 spsr; *vcpu_pc(vcpu) = read_sysreg_el2(SYS_ELR); \
    arm64_mops_reset_regs(vcpu_gp_regs(vcpu), vcpu->arch.fault.esr_el2); \
    write_sysreg_el2(*vcpu_pc(vcpu), SYS_ELR); spsr = read_sysreg_el2(SYS_SPSR); \
    write_sysreg_el2(spsr & ~DBG_SPSR_SS, SYS_SPSR); return true;";

// ---------------------------------------------------------------------------
// 2. The handlers on the simulated CPU.

/// A vCPU on a CPU whose registers all hold random values (ELR_EL2, SPSR_EL2,
/// the counters, FPEXC32_EL2, the ZCRs too), with random guest registers,
/// PC, PSTATE and timer offsets.
fn setup(rng: &mut Rng) -> (Vcpu, Cpu) {
    let mut regs = random_regs(rng);
    regs.set::<ELR_EL2::Reg>(rng.next());
    regs.set::<SPSR_EL2::Reg>(rng.next());
    regs.set::<CNTPCT_EL0::Reg>(rng.next());
    regs.set::<CNTPCTSS_EL0::Reg>(rng.next());
    regs.set::<FPEXC32_EL2::Reg>(rng.next());
    regs.set::<ZCR_EL2::Reg>(rng.next() & 0xf);
    regs.set::<CPACR_EL1::Reg>(0);
    regs.set::<HCR_EL2::Reg>(rng.next());
    let cpu = Cpu::new(regs);
    let mut v = Vcpu::random(&cpu, Features::NONE, TrapCaps::default(), rng);
    v.run.pc = rng.next();
    v.fixup.pstate = rng.next();
    v.entry.hcr = rng.next();
    v.hs.gp = [0; 32].map(|_| rng.next());
    v.hs.vm_offset = rng.next();
    v.hs.vcpu_offset = rng.next();
    v.run.fpexc32 = rng.next();
    v.run.zcr_el1 = rng.next();
    (v, cpu)
}

/// A copy of `v` on a copy of its CPU.
fn fork(v: &Vcpu) -> (Vcpu, Cpu) {
    let cpu = v.cpu.fork();
    let mut w = v.clone();
    w.cpu = cpu.clone();
    (w, cpu)
}

/// Both sides made the same accesses and calls in the same order and left
/// the same state.
fn assert_same(what: &str, a: &Vcpu, b: &Vcpu) {
    assert_eq!(a.timeline(), b.timeline(), "{what}");
    assert_eq!(a.hs.gp, b.hs.gp, "{what}: registers");
    assert_eq!(a.run.pc, b.run.pc, "{what}: pc");
    assert_eq!(a.fixup.pstate, b.fixup.pstate, "{what}: pstate");
    assert_eq!(a.entry.fp_owner, b.entry.fp_owner, "{what}: owner");
}

/// Sets the syndrome the handlers read (`vcpu->arch.fault.esr_el2`, which the
/// fixup saved from ESR_EL2).
fn set_esr(v: &mut Vcpu, e: u64) {
    v.fixup.fault_esr = e;
    v.cpu.regs_mut().set::<ESR_EL2::Reg>(e);
}

fn run_handler(v: &mut Vcpu, cpu: &mut Cpu, h: ExitHandler, code: &mut ExitCode) -> bool {
    let e = esr(v.fixup.fault_esr);
    handlers::handle(v, cpu, h, e, code)
}

/// A PSTATE with the AArch32 bit as asked and BTYPE, SS, N random.
fn pstate(k: &K, aarch32: bool, rng: &mut Rng) -> u64 {
    let p = rng.next() & !k.mode32;
    if aarch32 {
        p | k.mode32
    } else {
        p
    }
}

/// `__kvm_skip_instr()`: A64: PC + 4, BTYPE and SS cleared; AArch32:
/// `kvm_skip_instr32()`, SS cleared; ELR_EL2 and SPSR_EL2 from and back to
/// the vCPU, SPSR first. Over random PCs (wrapping at 2^64) and PSTATEs.
#[test]
fn skip_instr_a64_and_aarch32() {
    let k = K::new();
    let mut rng = Rng(0x5c1f_0001);
    for i in 0..4000 {
        let (mut v, mut cpu) = setup(&mut rng);
        let aarch32 = i % 2 == 1;
        let p = pstate(&k, aarch32, &mut rng) | if i % 4 < 2 { k.ss | k.btype } else { 0 };
        let pc = if i % 8 == 0 { u64::MAX - 1 } else { rng.next() };
        cpu.regs_mut().set::<SPSR_EL2::Reg>(p);
        cpu.regs_mut().set::<ELR_EL2::Reg>(pc);
        let (mut c, mut c_cpu) = fork(&v);
        handlers::skip_instr(&mut v, &mut cpu);
        c_skip_instr(&k, &mut c, &mut c_cpu);
        let what = format!("pc {pc:#x} pstate {p:#x}");
        assert_same(&what, &v, &c);
        let (want_pc, want_p) = if aarch32 {
            (pc.wrapping_add(v.hs.skip32), p & !k.ss)
        } else {
            (pc.wrapping_add(4), p & !k.ss & !k.btype)
        };
        assert_eq!(cpu.get::<ELR_EL2::Reg>(), want_pc, "{what}");
        assert_eq!(cpu.get::<SPSR_EL2::Reg>(), want_p, "{what}");
        assert_eq!((v.run.pc, v.fixup.pstate), (want_pc, want_p), "{what}");
        let calls32 = v
            .timeline()
            .iter()
            .filter(|s| **s == Step::Ctx(Mark::SkipInstr32))
            .count();
        assert_eq!(calls32, usize::from(aarch32), "{what}");
        let writes: Vec<Event> = cpu
            .log()
            .into_iter()
            .filter(|e| matches!(e, Event::Write(..)))
            .collect();
        assert_eq!(
            writes,
            [
                Event::Write(<SPSR_EL2::Reg as SysReg>::NAME, want_p),
                Event::Write(<ELR_EL2::Reg as SysReg>::NAME, want_pc)
            ],
            "{what}"
        );
    }
}

/// Runs the SYS64 handler on `v` and its transcription on a copy; both
/// must agree. Returns the Rust's answer.
fn sysreg_both(k: &K, what: &str, v: &mut Vcpu, cpu: &mut Cpu) -> bool {
    let (mut c, mut c_cpu) = fork(v);
    let mut code = ExitCode::TRAP;
    let got = run_handler(v, cpu, ExitHandler::SysregVhe, &mut code);
    let want = c_sysreg(k, &mut c, &mut c_cpu);
    assert_eq!(got, want, "{what}");
    assert_eq!(code, ExitCode::TRAP, "{what}");
    assert_same(what, v, &c);
    got
}

/// Reads of CNTPCT_EL0 and CNTPCTSS_EL0, with and without ECV, offsets set
/// or not (wrapping), every Rt (31 dropped): the counter less both offsets in
/// Rt, the instruction skipped; no other register (its neighbours in the
/// encoding space, random ones) is handled.
#[test]
fn cntpct_answers_counter_reads() {
    let k = K::new();
    let mut rng = Rng(0xc7_0001);
    let encs = [k.sys("CNTPCT_EL0"), k.sys("CNTPCTSS_EL0")];
    let others = [
        k.sys("CNTFRQ_EL0"),
        k.sys("CNTPCT_EL0") ^ (1 << 5),
        k.sys("CNTVCTSS_EL0"),
        k.sys("CNTP_CTL_EL0"),
        k.sys("TCR_EL1"),
    ];
    let mut handled = 0;
    for i in 0..6000u64 {
        let (mut v, mut cpu) = setup(&mut rng);
        v.hs.caps.ecv = i % 2 == 0;
        match i % 5 {
            0 => (v.hs.vm_offset, v.hs.vcpu_offset) = (0, 0),
            1 => v.hs.vm_offset = 0,
            2 => v.hs.vcpu_offset = 0,
            _ => {}
        }
        let rt = if i % 7 == 0 { 31 } else { rng.below(32) };
        let enc = if i % 3 == 2 {
            if i % 6 == 5 {
                rng.next() as u32 & 0x1f_ffe0
            } else {
                others[rng.below(others.len() as u64) as usize]
            }
        } else {
            encs[(i % 3) as usize]
        };
        let e = k.sys64_esr(enc, rt, &mut rng);
        set_esr(&mut v, e);
        let aarch32 = i % 11 == 0;
        cpu.regs_mut()
            .set::<SPSR_EL2::Reg>(pstate(&k, aarch32, &mut rng));
        let before = v.clone();
        let elr0 = cpu.get::<ELR_EL2::Reg>();
        let what = format!("sysreg {enc:#x} rt {rt} ecv {}", v.hs.caps.ecv);
        let got = sysreg_both(&k, &what, &mut v, &mut cpu);
        assert_eq!(got, encs.contains(&enc), "{what}");
        if !got {
            assert!(
                cpu.log().iter().all(|e| matches!(e, Event::Read(_))),
                "{what}"
            );
            assert_eq!(v.hs.gp, before.hs.gp, "{what}");
            continue;
        }
        handled += 1;
        let counter = if v.hs.caps.ecv {
            cpu.get::<CNTPCTSS_EL0::Reg>()
        } else {
            cpu.get::<CNTPCT_EL0::Reg>()
        };
        let want = counter
            .wrapping_sub(v.hs.vm_offset)
            .wrapping_sub(v.hs.vcpu_offset);
        let mut gp = before.hs.gp;
        if rt != 31 {
            gp[rt as usize] = want;
        }
        assert_eq!(v.hs.gp, gp, "{what}: x{rt}; sp untouched");
        let log = cpu.log();
        let reads = |r: &'static str| log.contains(&Event::Read(r));
        assert_eq!(
            reads(<CNTPCTSS_EL0::Reg as SysReg>::NAME),
            v.hs.caps.ecv,
            "{what}"
        );
        assert_eq!(
            reads(<CNTPCT_EL0::Reg as SysReg>::NAME),
            !v.hs.caps.ecv,
            "{what}"
        );
        if !v.hs.caps.ecv {
            let at = log
                .iter()
                .position(|e| *e == Event::Read(<CNTPCT_EL0::Reg as SysReg>::NAME))
                .unwrap();
            assert_eq!(log[at - 1], Event::Isb, "{what}: isb before the counter");
        }
        if !aarch32 {
            assert_eq!(cpu.get::<ELR_EL2::Reg>(), elr0.wrapping_add(4), "{what}");
        }
    }
    assert!(handled > 3000, "{handled}");
}

/// `handle_tx2_tvm()`: each register of its switch is written, from Rt (31:
/// zero), to its `_EL12` register (the kernel's encoding), and the
/// instruction skipped; not with HCR_EL2.TVM in the vCPU's HCR_EL2 (nothing
/// written), nor for any other register.
#[test]
fn tx2_tvm_writes_el12_registers() {
    let k = K::new();
    let mut rng = Rng(0x7c2_0001);
    let names = k.tx2.clone();
    let mut written = vec![0; names.len()];
    for i in 0..4000u64 {
        let (mut v, mut cpu) = setup(&mut rng);
        v.hs.caps.cavium_tx2_219_tvm = true;
        let tvm = i % 4 == 3;
        v.entry.hcr = if tvm {
            v.entry.hcr | k.hcr_tvm
        } else {
            v.entry.hcr & !k.hcr_tvm
        };
        let which = (i as usize / 4) % (names.len() + 1);
        let enc = if which == names.len() {
            k.sys("CNTPCT_EL0") ^ 0x20
        } else {
            k.sys(&format!("{}_EL1", names[which]))
        };
        let rt = if i % 9 == 0 { 31 } else { rng.below(32) };
        set_esr(&mut v, k.sys64_esr(enc, rt, &mut rng));
        cpu.regs_mut()
            .set::<SPSR_EL2::Reg>(pstate(&k, false, &mut rng));
        let what = format!("sysreg {enc:#x} rt {rt} tvm {tvm}");
        let before_gp = v.hs.gp;
        let got = sysreg_both(&k, &what, &mut v, &mut cpu);
        let should = !tvm && which < names.len();
        assert_eq!(got, should, "{what}");
        if should {
            let el12 = k.sys(&format!("{}_EL12", names[which]));
            let val = if rt == 31 { 0 } else { before_gp[rt as usize] };
            assert_eq!(cpu.get_encoded(el12), val, "{what}");
            let writes = cpu
                .log()
                .iter()
                .filter(|e| matches!(e, Event::Write(..)))
                .count();
            assert_eq!(writes, 3, "{what}: the register, SPSR_EL2, ELR_EL2");
            written[which] += 1;
        } else {
            assert!(
                cpu.log().iter().all(|e| !matches!(e, Event::Write(..))),
                "{what}"
            );
        }
    }
    assert!(written.iter().all(|n| *n > 100), "{written:?}");
}

/// `handle_ampere1_tcr()`: a TCR_EL1 write goes to TCR_EL12 with HA and HD
/// cleared, every other bit as written; any other register is not handled.
#[test]
fn ampere1_tcr_masks_ha_hd() {
    let k = K::new();
    let mut rng = Rng(0xa3_0001);
    let mask = k.get("TCR_HD") | k.get("TCR_HA");
    for i in 0..3000u64 {
        let (mut v, mut cpu) = setup(&mut rng);
        v.hs.caps.ampere_ac03_cpu_38 = true;
        let tcr = i % 3 != 0;
        let enc = if tcr {
            k.sys("TCR_EL1")
        } else {
            k.sys("SCTLR_EL1")
        };
        let rt = rng.below(31);
        v.hs.gp[rt as usize] = match i % 4 {
            0 => u64::MAX,
            1 => mask,
            _ => rng.next(),
        };
        let val = v.hs.gp[rt as usize];
        set_esr(&mut v, k.sys64_esr(enc, rt, &mut rng));
        let what = format!("sysreg {enc:#x} val {val:#x}");
        let got = sysreg_both(&k, &what, &mut v, &mut cpu);
        assert_eq!(got, tcr, "{what}");
        if tcr {
            assert_eq!(cpu.get_encoded(k.sys("TCR_EL12")), val & !mask, "{what}");
        }
    }
}

/// `kvm_hyp_handle_sysreg()`'s steps in the kernel's order: with every gate
/// open and traps that several steps would take (a TCR_EL1 write for both
/// errata, a counter read with the GICv3 emulation answering), the first in
/// the C's order acts and no later one runs; over every combination of
/// gates and GICv3 answers.
#[test]
fn sysreg_steps_in_the_kernels_order() {
    let k = K::new();
    let mut rng = Rng(0x5750_0001);
    let encs = [
        k.sys("TCR_EL1"),
        k.sys("CNTPCT_EL0"),
        k.sys("SCTLR_EL1"),
        k.sys("CNTPCTSS_EL0"),
        k.sys("CNTFRQ_EL0"),
    ];
    for i in 0..(64 * 3 * 5 * 4) {
        let b = i as u64;
        let (mut v, mut cpu) = setup(&mut rng);
        v.hs.caps = HandlerCaps {
            cavium_tx2_219_tvm: b & 1 != 0,
            ampere_ac03_cpu_38: b & 2 != 0,
            vgic_v3_cpuif_trap: b & 4 != 0,
            ecv: b & 8 != 0,
            ..HandlerCaps::default()
        };
        if b & 16 != 0 {
            v.entry.hcr |= k.hcr_tvm;
        } else {
            v.entry.hcr &= !k.hcr_tvm;
        }
        v.hs.v3 = [
            CpuifAccess::Handled,
            CpuifAccess::NotHandled,
            CpuifAccess::Illegal,
        ][(b / 64 % 3) as usize];
        let enc = encs[(b / 192 % 5) as usize];
        set_esr(&mut v, k.sys64_esr(enc, rng.below(32), &mut rng));
        let what = format!("{:?} v3 {:?} sysreg {enc:#x}", v.hs.caps, v.hs.v3);
        sysreg_both(&k, &what, &mut v, &mut cpu);
    }
}

/// `arm64_mops_reset_regs()` through `kvm_hyp_handle_mops()`: every
/// combination of MEM_INST, OPTION_A, WRONG_OPTION, FROM_EPILOGUE and
/// PSTATE.N, random register numbers (31: the `sp` slot) and values (sizes
/// with bit 63 set or not, sums that wrap), against the transcription of
/// the C on `struct user_pt_regs`; ELR_EL2 holds the rewound PC and
/// SPSR_EL2.SS is cleared; always back to the guest.
#[test]
fn mops_rewinds_as_arm64_mops_reset_regs() {
    let k = K::new();
    let mut rng = Rng(0x3095_0001);
    let bits = [
        "ESR_ELx_MOPS_ISS_MEM_INST",
        "ESR_ELx_MOPS_ISS_OPTION_A",
        "ESR_ELx_MOPS_ISS_WRONG_OPTION",
        "ESR_ELx_MOPS_ISS_FROM_EPILOGUE",
    ];
    let mut changed = [0u32; 2];
    for i in 0..(32 * 200u64) {
        let flags = i % 32;
        let (mut v, mut cpu) = setup(&mut rng);
        let mut e = k.ec("MOPS") | k.get("ESR_ELx_IL");
        for (n, b) in bits.iter().enumerate() {
            if flags & (1 << n) != 0 {
                e |= k.get(b);
            }
        }
        // Register numbers: random, equal, or 31.
        let reg = |rng: &mut Rng| if rng.below(8) == 0 { 31 } else { rng.below(32) };
        let (d, s, z) = if i % 13 == 0 {
            let r = reg(&mut rng);
            (r, r, r)
        } else {
            (reg(&mut rng), reg(&mut rng), reg(&mut rng))
        };
        e |= (d << 10) | (s << 5) | z;
        set_esr(&mut v, e);
        for r in [d, s, z] {
            v.hs.gp[r as usize] = match rng.below(4) {
                0 => u64::MAX - rng.below(16),
                1 => (1 << 63) | rng.below(4096),
                2 => rng.below(4096),
                _ => rng.next(),
            };
        }
        if flags & 16 != 0 {
            v.fixup.pstate |= k.n_bit;
        } else {
            v.fixup.pstate &= !k.n_bit;
        }
        let elr = if i % 17 == 0 {
            rng.below(8)
        } else {
            rng.next()
        };
        cpu.regs_mut().set::<ELR_EL2::Reg>(elr);
        let spsr = rng.next() | k.ss;
        cpu.regs_mut().set::<SPSR_EL2::Reg>(spsr);

        let mut want = PtRegs {
            regs: v.hs.gp,
            pc: elr,
            pstate: v.fixup.pstate,
        };
        c_mops_reset_regs(&k, &mut want, e);
        let mut code = ExitCode::TRAP;
        let what = format!("esr {e:#x} regs {d} {s} {z} N {}", flags & 16 != 0);
        assert!(
            run_handler(&mut v, &mut cpu, ExitHandler::Mops, &mut code),
            "{what}"
        );
        assert_eq!(code, ExitCode::TRAP);
        assert_eq!(v.hs.gp, want.regs, "{what}");
        assert_eq!(v.run.pc, want.pc, "{what}");
        assert_eq!(cpu.get::<ELR_EL2::Reg>(), want.pc, "{what}");
        assert_eq!(cpu.get::<SPSR_EL2::Reg>(), spsr & !k.ss, "{what}");
        changed[usize::from(
            v.timeline()
                .iter()
                .any(|s| matches!(s, Step::Ctx(Mark::SetPtReg(..)))),
        )] += 1;
        // The PSTATE the C reads is the vCPU's, which this does not change.
        assert_eq!(v.fixup.pstate, want.pstate, "{what}");
    }
    assert!(changed.iter().all(|n| *n > 1000), "{changed:?}");
}

/// `kvm_hyp_handle_dabt_low()` against its transcription: the AT of
/// `__populate_fault_info()` failing (back to the guest), the GICv2 trap off
/// and on, valid and invalid faults (every FSC, ISV, S1PTW), every answer of
/// the proxy: handled back to the guest, illegal an SError exit, otherwise
/// to the host with the exit code as it was. IABT_LOW and WATCHPT_LOW
/// (`kvm_hyp_handle_memory_fault()`), CP15_32 and ERET too.
#[test]
fn aborts_cp15_and_eret_follow_the_c() {
    let k = K::new();
    let mut rng = Rng(0xdab7_0001);
    let mut outcomes = [0u32; 4];
    for i in 0..8000u64 {
        let (mut v, mut cpu) = setup(&mut rng);
        v.hs.populate_ok = i % 7 != 0;
        v.hs.caps.vgic_v2_cpuif_trap = i % 3 != 0;
        v.hs.caps.vgic_v3_cpuif_trap = i % 5 < 3;
        let answers = [
            CpuifAccess::Handled,
            CpuifAccess::NotHandled,
            CpuifAccess::Illegal,
        ];
        v.hs.v2 = answers[rng.below(3) as usize];
        v.hs.v3 = answers[rng.below(3) as usize];
        let fsc = if rng.bool() {
            rng.below(64)
        } else {
            4 + rng.below(4)
        };
        let mut e = (rng.next() & !k.fsc & 0x1ff_ffff) | fsc;
        if rng.below(4) != 0 {
            e |= k.get("ESR_ELx_ISV");
        }
        if rng.below(4) == 0 {
            e |= k.get("ESR_ELx_S1PTW");
        } else {
            e &= !k.get("ESR_ELx_S1PTW");
        }
        let h = [
            ExitHandler::DabtLow,
            ExitHandler::DabtLow,
            ExitHandler::IabtLow,
            ExitHandler::WatchptLow,
            ExitHandler::Cp15_32,
            ExitHandler::Eret,
        ][(i % 6) as usize];
        let ec = match h {
            ExitHandler::DabtLow => "DABT_LOW",
            ExitHandler::IabtLow => "IABT_LOW",
            ExitHandler::WatchptLow => "WATCHPT_LOW",
            ExitHandler::Cp15_32 => "CP15_32",
            _ => "ERET",
        };
        e |= k.ec(ec);
        set_esr(&mut v, e);
        let code0 = [ExitCode::TRAP, ExitCode::TRAP.with_serror_pending()][rng.below(2) as usize];
        let (mut c, _c_cpu) = fork(&v);
        let mut code = code0;
        let got = run_handler(&mut v, &mut cpu, h, &mut code);
        let mut c_code = code0.raw();
        let want = match h {
            ExitHandler::DabtLow => c_dabt_low(&k, &mut c, &mut c_code),
            ExitHandler::IabtLow | ExitHandler::WatchptLow => !c.populate_fault_info(),
            ExitHandler::Cp15_32 => {
                c.hs.caps.vgic_v3_cpuif_trap && c.vgic_v3_cpuif_access() == CpuifAccess::Handled
            }
            _ => false,
        };
        let what = format!("{h:?} esr {e:#x} {:?} v2 {:?}", v.hs.caps, v.hs.v2);
        assert_eq!(got, want, "{what}");
        assert_eq!(code.raw(), c_code, "{what}");
        assert_same(&what, &v, &c);
        assert!(cpu.log().is_empty(), "{what}: no register touched");
        if h == ExitHandler::DabtLow {
            let n = if !v.hs.populate_ok {
                0
            } else if got {
                1
            } else if code.raw() == k.el1_serror {
                2
            } else {
                3
            };
            outcomes[n] += 1;
        }
    }
    assert!(outcomes.iter().all(|n| *n > 50), "{outcomes:?}");
}

/// `kvm_hyp_handle_fpsimd()`: without FP/SIMD on the host, not handled; an
/// FP_ASIMD trap loads the FP/SIMD registers (SVE ones at the max VL with
/// the vCPU's ZCR_EL1 for an SVE vCPU, at every VL); an SVE trap of a vCPU
/// without SVE and any other class are not handled; an AArch32 EL1 (HCR_EL2.RW
/// clear on the CPU) gets its FPEXC32_EL2 back, an AArch64 one does not; the
/// guest owns the registers after.
#[test]
fn fpsimd_handler_cases() {
    let k = K::new();
    let mut rng = Rng(0xf9_0001);
    let classes = ["FP_ASIMD", "SVE", "SYS64", "DABT_LOW"];
    for i in 0..4000u64 {
        let (mut v, mut cpu) = setup(&mut rng);
        v.hs.caps.fpsimd = i % 9 != 0;
        let sve = i % 2 == 0;
        let vq = [1, 2, 4, 16][rng.below(4) as usize];
        v.entry.sve = sve;
        v.entry.fp_owner = FpOwner::Free;
        v.run.sve_max_vq = vq;
        let aarch32 = i % 3 == 0;
        let hcr = cpu.get::<HCR_EL2::Reg>();
        cpu.regs_mut().set::<HCR_EL2::Reg>(if aarch32 {
            hcr & !k.hcr_rw
        } else {
            hcr | k.hcr_rw
        });
        let class = classes[(i / 2 % 4) as usize];
        let e = k.ec(class) | (rng.next() & 0x1ff_ffff);
        set_esr(&mut v, e);
        let before = v.clone();
        let (fpexc0, zcr2_0, zcr12_0) = (
            cpu.get::<FPEXC32_EL2::Reg>(),
            cpu.get::<ZCR_EL2::Reg>(),
            cpu.get::<ZCR_EL12::Reg>(),
        );
        let mut code = ExitCode::TRAP;
        let got = run_handler(&mut v, &mut cpu, ExitHandler::Fpsimd, &mut code);
        let want = v.hs.caps.fpsimd && (class == "FP_ASIMD" || (class == "SVE" && sve));
        let what = format!(
            "{class} sve {sve} vq {vq} aarch32 {aarch32} fp {}",
            v.hs.caps.fpsimd
        );
        assert_eq!(got, want, "{what}");
        assert_eq!(code, ExitCode::TRAP, "{what}");
        let marks: Vec<Mark> = v
            .timeline()
            .into_iter()
            .filter_map(|s| match s {
                Step::Ctx(m) => Some(m),
                _ => None,
            })
            .collect();
        if !want {
            assert_eq!(v.entry.fp_owner, FpOwner::Free, "{what}");
            assert!(marks.is_empty(), "{what}: {marks:?}");
            assert!(
                cpu.log().iter().all(|e| matches!(e, Event::Read(_))),
                "{what}"
            );
            continue;
        }
        assert_eq!(v.entry.fp_owner, FpOwner::GuestOwned, "{what}");
        assert_eq!(
            marks,
            [
                Mark::SetFpOwner(FpOwner::GuestOwned),
                Mark::FpEnableGuest(sve),
                Mark::FpLoadGuest(sve)
            ],
            "{what}"
        );
        let fpexc = cpu.get::<FPEXC32_EL2::Reg>();
        if aarch32 {
            assert_eq!(fpexc, before.run.fpexc32, "{what}");
        } else {
            assert_eq!(fpexc, fpexc0, "{what}");
            assert!(!cpu.log().iter().any(
                |e| matches!(e, Event::Write(n, _) if *n == <FPEXC32_EL2::Reg as SysReg>::NAME)
            ));
        }
        if sve {
            assert_eq!(
                ZCR_EL2::LEN.get(cpu.get::<ZCR_EL2::Reg>()),
                vq - 1,
                "{what}"
            );
            assert_eq!(cpu.get::<ZCR_EL12::Reg>(), before.run.zcr_el1, "{what}");
            // The VL is set before the registers are loaded.
            let tl = v.timeline();
            let load = tl
                .iter()
                .position(|s| *s == Step::Ctx(Mark::FpLoadGuest(true)))
                .unwrap();
            let zcr_after = tl[load..].iter().any(|s| {
                matches!(s, Step::Reg(Event::Write(n, _)) if *n == <ZCR_EL2::Reg as SysReg>::NAME)
            });
            assert!(!zcr_after, "{what}: ZCR_EL2 written after the load");
        } else {
            assert_eq!(cpu.get::<ZCR_EL2::Reg>(), zcr2_0, "{what}");
            assert_eq!(cpu.get::<ZCR_EL12::Reg>(), zcr12_0, "{what}");
        }
        // The guest owns the registers now: a second trap is not the lazy
        // switch (left to the slow path, and reported).
        let mut code = ExitCode::TRAP;
        assert!(!run_handler(
            &mut v,
            &mut cpu,
            ExitHandler::Fpsimd,
            &mut code
        ));
    }
}

// ---------------------------------------------------------------------------
// 3. The lazy FP switch over whole runs.

/// The machines of the walk: without SVE (AArch64 and AArch32 EL1, on hosts
/// with and without SVE), and with SVE at VQ 1, 2, 4 and 16 under hosts
/// with larger and smaller VLs.
const FP_CONFIGS: [FpConfig; 8] = [
    FpConfig {
        sve_vq: None,
        host_vq: 0,
        aarch32: false,
    },
    FpConfig {
        sve_vq: None,
        host_vq: 0,
        aarch32: true,
    },
    FpConfig {
        sve_vq: None,
        host_vq: 8,
        aarch32: true,
    },
    FpConfig {
        sve_vq: None,
        host_vq: 8,
        aarch32: false,
    },
    FpConfig {
        sve_vq: Some(1),
        host_vq: 16,
        aarch32: false,
    },
    FpConfig {
        sve_vq: Some(2),
        host_vq: 16,
        aarch32: false,
    },
    FpConfig {
        sve_vq: Some(4),
        host_vq: 1,
        aarch32: false,
    },
    FpConfig {
        sve_vq: Some(16),
        host_vq: 4,
        aarch32: false,
    },
];

/// Every sequence of up to 8 events (the guest's FP use, SVE use, a
/// trapped system register access, an abort, an IRQ, an SError; preemption
/// with put and load, the VMM's own FP use between two KVM_RUNs, kernel-mode
/// NEON between two runs), whole runs through `world::run::run` with the real
/// exit handlers: after every event the guest reads exactly its own latest
/// FP/SVE values at its max VL, with its ZCR_EL1 and FPEXC32_EL2, and the host
/// its own; at the end the vCPU holds the guest's latest. States seen at a
/// smaller depth are not walked again.
#[test]
fn lazy_fp_over_whole_runs_keeps_state_whole() {
    for cfg in FP_CONFIGS {
        let s = fpmodel::walk(cfg, 8);
        eprintln!("{cfg:?}: {s:?}");
        assert!(s.max_traps >= 2 && s.max_uses >= 3, "{cfg:?}: {s:?}");
        assert!(s.states >= 6, "{cfg:?}: {s:?}");
        if cfg.sve_vq.is_some() {
            assert!(s.sve_saves >= 1, "{cfg:?}: {s:?}");
        }
    }
}

/// The walk's pruning does not hide anything: every sequence up to depth 4,
/// unpruned, for an SVE and an AArch32 vCPU.
#[test]
fn lazy_fp_unpruned_to_depth_4() {
    for cfg in [FP_CONFIGS[2], FP_CONFIGS[6]] {
        let mut n = 0;
        let mut seqs: Vec<Vec<fpmodel::Ev>> = vec![Vec::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for s in &seqs {
                for e in fpmodel::EVENTS {
                    let mut t = s.clone();
                    t.push(e);
                    fpmodel::replay(cfg, &t).unwrap_or_else(|err| panic!("{t:?}: {err}"));
                    n += 1;
                    next.push(t);
                }
            }
            seqs = next;
        }
        assert_eq!(n, (1..=4).map(|d| 9u64.pow(d)).sum::<u64>());
    }
}

/// A hand-written run: the first FP use traps once, the CNTPCT_EL0 read and
/// further uses in the same run do not disturb anything, a preemption makes
/// the next use trap again.
#[test]
fn lazy_fp_trap_once_per_load() {
    use fpmodel::{Ev, GuestEv as G};
    let cfg = FP_CONFIGS[6];
    let (_, m) = fpmodel::replay(
        cfg,
        &[
            Ev::Guest(G::Sve),
            Ev::Guest(G::Sysreg),
            Ev::Guest(G::Fp),
            Ev::Guest(G::Irq),
            Ev::Guest(G::Sve),
        ],
    )
    .unwrap();
    assert_eq!((m.traps, m.uses), (1, 3));
    let (_, m) = fpmodel::replay(
        cfg,
        &[
            Ev::Guest(G::Fp),
            Ev::Preempt,
            Ev::Guest(G::Fp),
            Ev::KernelNeon,
            Ev::Guest(G::Sve),
        ],
    )
    .unwrap();
    assert_eq!((m.traps, m.uses), (3, 3));
}
