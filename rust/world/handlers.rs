// SPDX-License-Identifier: GPL-2.0

//! The bodies of the exit handlers that `hyp_exit_handlers[]` names
//! ([`crate::world::exits`]) for a non-nested vCPU: what EL2 does with a
//! guest exit before deciding between entering the guest again (true) and
//! going back to the host (false). [`handle`] dispatches on the
//! [`ExitHandler`] the exception class selected.
//!
//! Today's C (Linux 6.12.117), all in `arch/arm64/kvm/hyp/include/hyp/switch.h`
//! unless said otherwise:
//!
//! * `kvm_hyp_handle_fpsimd()`: the lazy FP switch ([`fpsimd`]): the guest's
//!   first FP/SIMD (or SVE) use since `vcpu_load` traps, its registers are
//!   loaded here and the guest is entered again at once: a shallow exit;
//! * `kvm_hyp_handle_sysreg_vhe()` (`hyp/vhe/switch.c`), whose non-nested part
//!   is `kvm_hyp_handle_sysreg()`: the Cavium TX2 #219 TVM and Ampere
//!   AC03_CPU_38 errata, the GICv3 CPU interface traps, and the emulation of
//!   CNTPCT_EL0/CNTPCTSS_EL0 reads ([`sysreg`]);
//! * `kvm_hyp_handle_cp15_32()`: the GICv3 CPU interface of an AArch32 guest;
//! * `kvm_hyp_handle_memory_fault()` for IABT_LOW and WATCHPT_LOW, and
//!   `kvm_hyp_handle_dabt_low()` (the same, then the GICv2 CPU interface
//!   proxy): the fault's addresses are recorded for the host
//!   ([`HandlerContext::populate_fault_info`]);
//! * `kvm_hyp_handle_mops()`: a memory copy/set sequence moved between CPUs
//!   is rewound to its prologue ([`mops`], with `arm64_mops_reset_regs()` of
//!   `asm/traps.h`);
//! * `kvm_hyp_handle_eret()`: nested only ([`ExitHandler::nested_only`]):
//!   the exit goes to the host (see [`handle`]).
//!
//! What stays C, called through [`HandlerContext`]: the GIC CPU interface
//! emulation (`hyp/vgic-v3-sr.c`, `hyp/vgic-v2-cpuif-proxy.c`, shared with
//! nVHE), `__populate_fault_info()` (its `AT` needs the kernel's exception
//! table, reached through the series' `kvm_vhe_populate_fault_info()`), and
//! `kvm_skip_instr32()` (`hyp/aarch32.c`: the IT state machine).
//!
//! Every exception masked, the guest's registers on the CPU, nothing may
//! panic: the arithmetic on guest values wraps as the C's does.

use crate::arch::defs::packing;
use crate::arch::{
    consts, Ec, Esr, RegAccess, Value, CNTPCTSS_EL0, CNTPCT_EL0, ELR_EL2, ESR_EL2, FPEXC32_EL2,
    HCR_EL2, SPSR_EL2,
};
use crate::world::entry_traps::EntryTrapContext;
use crate::world::exits::ExitHandler;
use crate::world::fixup::ExitCode;
use crate::world::fp::{self, FpHypContext};
use crate::world::sysreg_sr::El2ReturnContext;

/// What the host has, as far as the exit handlers care: final capabilities
/// and static keys, fixed once KVM is up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandlerCaps {
    /// `system_supports_fpsimd()`.
    pub fpsimd: bool,
    /// `ARM64_HAS_ECV`: `arch_timer_read_cntpct_el0()` reads CNTPCTSS_EL0
    /// (self-synchronised) instead of `isb; mrs cntpct_el0`.
    pub ecv: bool,
    /// `static_branch_unlikely(&vgic_v2_cpuif_trap)`.
    pub vgic_v2_cpuif_trap: bool,
    /// `static_branch_unlikely(&vgic_v3_cpuif_trap)`.
    pub vgic_v3_cpuif_trap: bool,
    /// `ARM64_WORKAROUND_CAVIUM_TX2_219_TVM`.
    pub cavium_tx2_219_tvm: bool,
    /// `ARM64_WORKAROUND_AMPERE_AC03_CPU_38`.
    pub ampere_ac03_cpu_38: bool,
}

/// What `__vgic_v{2,3}_perform_cpuif_access()` answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuifAccess {
    /// 1: emulated; the guest goes on past the instruction.
    Handled,
    /// 0: not a CPU interface access it emulates.
    NotHandled,
    /// -1 (GICv2 only): an illegal access, to become an SError.
    Illegal,
}

impl CpuifAccess {
    /// The C's `int` answer: 1, -1, anything else.
    pub const fn from_c(ret: i32) -> Self {
        match ret {
            1 => CpuifAccess::Handled,
            -1 => CpuifAccess::Illegal,
            _ => CpuifAccess::NotHandled,
        }
    }
}

/// The kernel state the exit handlers read and write, on top of the FP
/// switch's, the per-entry traps' and the vCPU's return state.
pub trait HandlerContext: FpHypContext + EntryTrapContext + El2ReturnContext {
    /// The host's capabilities.
    fn handler_caps(&self) -> HandlerCaps;

    /// `vcpu_get_reg(vcpu, n)`: general-purpose register `n` (0..=30); 31
    /// is XZR and reads 0.
    fn gpr(&self, n: u64) -> u64;

    /// `vcpu_set_reg(vcpu, n, val)`; a write to 31 (XZR) is dropped.
    fn set_gpr(&mut self, n: u64, val: u64);

    /// `vcpu_gp_regs(vcpu)->regs[n]` for `n` in 0..=31 as `struct
    /// user_pt_regs` lays it out: `regs[31]` is the word after `regs[30]`, the
    /// guest's SP_EL0 (what `arm64_mops_reset_regs()` reaches for register
    /// number 31, a CONSTRAINED UNPREDICTABLE encoding).
    fn pt_reg(&self, n: u64) -> u64;

    /// Writes what [`HandlerContext::pt_reg`] reads.
    fn set_pt_reg(&mut self, n: u64, val: u64);

    /// `__vcpu_sys_reg(vcpu, FPEXC32_EL2)`.
    fn vcpu_fpexc32(&self) -> Value<FPEXC32_EL2::Reg>;

    /// The offsets of the vCPU's EL1 physical timer (`vcpu_ptimer(vcpu)->offset`):
    /// `*vm_offset` if it is set, and `*vcpu_offset` if it is set, each 0
    /// otherwise.
    fn ptimer_offsets(&self) -> (u64, u64);

    /// `__vgic_v3_perform_cpuif_access(vcpu)` (`hyp/vgic-v3-sr.c`).
    fn vgic_v3_cpuif_access(&mut self) -> CpuifAccess;

    /// `__vgic_v2_perform_cpuif_access(vcpu)` (`hyp/vgic-v2-cpuif-proxy.c`).
    fn vgic_v2_cpuif_access(&mut self) -> CpuifAccess;

    /// `__populate_fault_info(vcpu)` (through `kvm_vhe_populate_fault_info()`):
    /// FAR_EL2 and HPFAR_EL2 into `vcpu->arch.fault`; false if the `AT` that
    /// stands in for an invalid HPFAR_EL2 failed (the guest is to take the
    /// fault again).
    fn populate_fault_info(&mut self) -> bool;

    /// `kvm_skip_instr32(vcpu)` (`hyp/aarch32.c`) on the vCPU's saved PC and
    /// PSTATE ([`El2ReturnContext`]).
    fn skip_instr32(&mut self);
}

/// How far an A64 instruction moves the PC: `kvm_skip_instr()`'s
/// `*vcpu_pc(vcpu) += 4` and `arm64_mops_reset_regs()`'s `regs->pc -= 4`
/// (hyp/include/hyp/adjust_pc.h, asm/traps.h: literals there;
/// `tests/handlers.rs` checks the C still says so).
pub const A64_INSN_SIZE: u64 = 4;

/// How far back the prologue of a MOPS sequence is from its epilogue:
/// `arm64_mops_reset_regs()`'s `regs->pc -= 8` (two instructions).
pub const MOPS_EPILOGUE_TO_PROLOGUE: u64 = 2 * A64_INSN_SIZE;

/// `PSR_N_BIT` (`uapi/asm/ptrace.h`): `0x80000000`, an `unsigned int`, so
/// bit 31 alone once promoted to the `u64` of `regs->pstate`. (The generator
/// once read it back sign-extended, which made a PSTATE with any of bits 63:32
/// set read as N set; `tests/handlers.rs` checks it against the C.)
pub const PSR_N_BIT: u64 = consts::PSR_N_BIT;

/// `esr_sys64_to_sysreg()` (`asm/esr.h`): the `sys_reg()` encoding of the
/// register a trapped MSR/MRS/SYS names.
pub const fn esr_sys64_to_sysreg(esr: Esr) -> u32 {
    let v = esr.value();
    ((v.field(ESR_EL2::SYS64_OP0) as u32) << packing::OP0_SHIFT)
        | ((v.field(ESR_EL2::SYS64_OP1) as u32) << packing::OP1_SHIFT)
        | ((v.field(ESR_EL2::SYS64_CRN) as u32) << packing::CRN_SHIFT)
        | ((v.field(ESR_EL2::SYS64_CRM) as u32) << packing::CRM_SHIFT)
        | ((v.field(ESR_EL2::SYS64_OP2) as u32) << packing::OP2_SHIFT)
}

/// `kvm_vcpu_sys_get_rt()`: the general-purpose register of a trapped
/// MSR/MRS.
pub const fn sys64_rt(esr: Esr) -> u64 {
    esr.value().field(ESR_EL2::SYS64_RT)
}

/// `esr_fsc_is_translation_fault()`: a translation fault at any level.
pub const fn is_translation_fault(esr: Esr) -> bool {
    let fsc = esr.value().field(ESR_EL2::FSC);
    fsc == consts::FSC_FAULT_L3
        || fsc == consts::FSC_FAULT_L2
        || fsc == consts::FSC_FAULT_L1
        || fsc == consts::FSC_FAULT_L0
        || fsc == consts::FSC_FAULT_LM1
}

/// `kvm_vcpu_abt_issea()`: a synchronous external abort, on the access or on
/// a table walk, with or without ECC.
pub const fn abt_issea(esr: Esr) -> bool {
    let fsc = esr.value().field(ESR_EL2::FSC);
    fsc == consts::FSC_EXTABT
        || (fsc >= consts::FSC_SEA_TTW_LM1 && fsc <= consts::FSC_SEA_TTW_L3)
        || fsc == consts::FSC_SECC
        || (fsc >= consts::FSC_SECC_TTW_LM1 && fsc <= consts::FSC_SECC_TTW_L3)
}

/// `__kvm_skip_instr()` (`hyp/adjust_pc.h`): steps the guest past the
/// instruction emulated here, through the vCPU's PC and PSTATE, from and
/// back to ELR_EL2 and SPSR_EL2 (`kvm_skip_instr()` in between: A64 +4 with
/// PSTATE.BTYPE cleared, AArch32 through `kvm_skip_instr32()`; then
/// PSTATE.SS cleared, which advances a software step).
pub fn skip_instr<C: HandlerContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    let pc = regs.read::<ELR_EL2::Reg>();
    ctx.set_pc(pc);
    let pstate = regs.read::<SPSR_EL2::Reg>();
    ctx.set_pstate(pstate);

    // vcpu_mode_is_32bit()
    if pstate.raw() & consts::PSR_MODE32_BIT != 0 {
        ctx.skip_instr32();
    } else {
        let pc = ctx.pc().raw().wrapping_add(A64_INSN_SIZE);
        ctx.set_pc(Value::from_raw(pc));
        let p = ctx.pstate().raw() & !consts::PSR_BTYPE_MASK;
        ctx.set_pstate(Value::from_raw(p));
    }
    let p = ctx.pstate().with(SPSR_EL2::SS.clear());
    ctx.set_pstate(p);

    regs.write(ctx.pstate());
    regs.write(ctx.pc());
}

/// `kvm_hyp_handle_fpsimd()` for a non-nested vCPU on a VHE host: the lazy
/// switch of [`fp::handle_trap`], then FPEXC32_EL2 for an AArch32 EL1 (the
/// C reads the live HCR_EL2.RW). An SVE trap of a vCPU without SVE, and any
/// class but FP_ASIMD and SVE, exit (the host injects an UNDEF).
pub fn fpsimd<C: HandlerContext, A: RegAccess>(ctx: &mut C, regs: &mut A, esr: Esr) -> bool {
    if !ctx.handler_caps().fpsimd {
        return false;
    }
    let ec = esr.ec_raw();
    let sve_trap = if ec == Ec::FP_ASIMD as u64 {
        false
    } else if ec == Ec::SVE as u64 {
        true
    } else {
        return false;
    };
    if !fp::handle_trap(ctx, regs, sve_trap) {
        return false;
    }
    // Skip restoring fpexc32 for AArch64 guests.
    if regs.read::<HCR_EL2::Reg>().field(HCR_EL2::RW) == 0 {
        regs.write(ctx.vcpu_fpexc32());
    }
    true
}

/// Runs `$body` with `$el1`/`$el12` bound to each pair of `handle_tx2_tvm()`'s
/// table: the EL1 register a trapped MSR names, and the `_EL12` alias
/// `write_sysreg_el1()` writes under VHE.
macro_rules! tx2_tvm_regs {
    ($m:ident) => {
        $m! {
            SCTLR_EL1 => SCTLR_EL12,
            TTBR0_EL1 => TTBR0_EL12,
            TTBR1_EL1 => TTBR1_EL12,
            TCR_EL1 => TCR_EL12,
            ESR_EL1 => ESR_EL12,
            FAR_EL1 => FAR_EL12,
            AFSR0_EL1 => AFSR0_EL12,
            AFSR1_EL1 => AFSR1_EL12,
            MAIR_EL1 => MAIR_EL12,
            AMAIR_EL1 => AMAIR_EL12,
            CONTEXTIDR_EL1 => CONTEXTIDR_EL12,
        }
    };
}

/// `handle_tx2_tvm()`: with HCR_EL2.TVM set only for the erratum (not by the
/// host's own sysreg handling), a guest write to an EL1 translation register
/// is done here.
fn tx2_tvm<C: HandlerContext, A: RegAccess>(ctx: &mut C, regs: &mut A, esr: Esr) -> bool {
    let sysreg = esr_sys64_to_sysreg(esr);
    let val = ctx.gpr(sys64_rt(esr));
    if ctx.vcpu_hcr_el2().field(HCR_EL2::TVM) != 0 {
        return false;
    }
    macro_rules! write_el12 {
        ($($el1:ident => $el12:ident,)*) => {
            $(
                if sysreg == <crate::arch::$el1::Reg as crate::arch::SysReg>::ENCODING {
                    regs.write_raw::<crate::arch::$el12::Reg>(val);
                } else
            )* {
                return false;
            }
        };
    }
    tx2_tvm_regs!(write_el12);
    skip_instr(ctx, regs);
    true
}

/// The EL1 registers `handle_tx2_tvm()` emulates writes to, by encoding (for
/// the host tests).
pub const TX2_TVM_EL1_REGS: &[u32] = {
    macro_rules! encodings {
        ($($el1:ident => $el12:ident,)*) => {
            &[$(<crate::arch::$el1::Reg as crate::arch::SysReg>::ENCODING,)*]
        };
    }
    tx2_tvm_regs!(encodings)
};

/// `handle_ampere1_tcr()`: a guest write to TCR_EL1 with TCR_EL1.{HA,HD}
/// masked (the affected parts do not advertise FEAT_HAFDBS but obey them).
fn ampere1_tcr<C: HandlerContext, A: RegAccess>(ctx: &mut C, regs: &mut A, esr: Esr) -> bool {
    let sysreg = esr_sys64_to_sysreg(esr);
    let val = ctx.gpr(sys64_rt(esr));
    if sysreg != <crate::arch::TCR_EL1::Reg as crate::arch::SysReg>::ENCODING {
        return false;
    }
    let val = val & !(consts::TCR_HD | consts::TCR_HA);
    regs.write_raw::<crate::arch::TCR_EL12::Reg>(val);
    skip_instr(ctx, regs);
    true
}

/// `kvm_hyp_handle_cntpct()` for a non-nested vCPU: a read of CNTPCT_EL0 or
/// CNTPCTSS_EL0 (trapped when the VM's physical counter is offset) answered
/// here: the counter less the EL1 physical timer's offsets, into Rt.
fn cntpct<C: HandlerContext, A: RegAccess>(ctx: &mut C, regs: &mut A, esr: Esr) -> bool {
    let sysreg = esr_sys64_to_sysreg(esr);
    if sysreg != <CNTPCT_EL0::Reg as crate::arch::SysReg>::ENCODING
        && sysreg != <CNTPCTSS_EL0::Reg as crate::arch::SysReg>::ENCODING
    {
        return false;
    }
    // arch_timer_read_cntpct_el0()
    let mut val = if ctx.handler_caps().ecv {
        regs.read_raw::<CNTPCTSS_EL0::Reg>()
    } else {
        regs.isb();
        regs.read_raw::<CNTPCT_EL0::Reg>()
    };
    let (vm_offset, vcpu_offset) = ctx.ptimer_offsets();
    val = val.wrapping_sub(vm_offset).wrapping_sub(vcpu_offset);
    ctx.set_gpr(sys64_rt(esr), val);
    skip_instr(ctx, regs);
    true
}

/// `kvm_hyp_handle_sysreg()` (all of `kvm_hyp_handle_sysreg_vhe()` that acts
/// for a non-nested vCPU: its TLBI, CPACR_EL1 and ZCR_EL2 steps are nested
/// only), in the C's order ([`crate::world::exits::SYSREG_STEPS`]).
pub fn sysreg<C: HandlerContext, A: RegAccess>(ctx: &mut C, regs: &mut A, esr: Esr) -> bool {
    let caps = ctx.handler_caps();
    if caps.cavium_tx2_219_tvm && tx2_tvm(ctx, regs, esr) {
        return true;
    }
    if caps.ampere_ac03_cpu_38 && ampere1_tcr(ctx, regs, esr) {
        return true;
    }
    if caps.vgic_v3_cpuif_trap && ctx.vgic_v3_cpuif_access() == CpuifAccess::Handled {
        return true;
    }
    cntpct(ctx, regs, esr)
}

/// `kvm_hyp_handle_dabt_low()`: the fault recorded as for every abort; then,
/// with the GICv2 CPU interface trapped, a valid translation fault (ISV set,
/// no external abort, not on a stage-1 walk) is offered to its proxy:
/// emulated, back to the guest; illegal, the exit becomes an SError.
fn dabt_low<C: HandlerContext>(ctx: &mut C, esr: Esr, exit_code: &mut ExitCode) -> bool {
    if !ctx.populate_fault_info() {
        return true;
    }
    if ctx.handler_caps().vgic_v2_cpuif_trap {
        let v = esr.value();
        let valid = is_translation_fault(esr)
            && v.field(ESR_EL2::ISV) != 0
            && !abt_issea(esr)
            && v.field(ESR_EL2::S1PTW) == 0;
        if valid {
            match ctx.vgic_v2_cpuif_access() {
                CpuifAccess::Handled => return true,
                // Promote an illegal access to an SError.
                CpuifAccess::Illegal => *exit_code = ExitCode::EL1_SERROR,
                CpuifAccess::NotHandled => {}
            }
        }
    }
    false
}

/// `arm64_mops_reset_regs()` (`asm/traps.h`) on the vCPU's registers: puts a
/// memory copy/set sequence back in the form its prologue takes (Arm ARM
/// DDI 0487I.a, rules CNTMJ and MWFQH) and its PC on the prologue.
pub fn mops_reset_regs<C: HandlerContext>(ctx: &mut C, esr: Esr) {
    let v = esr.value();
    let wrong_option = v.field(ESR_EL2::MOPS_WRONG_OPTION) != 0;
    let option_a = v.field(ESR_EL2::MOPS_OPTION_A) != 0;
    let dstreg = v.field(ESR_EL2::MOPS_DESTREG);
    let srcreg = v.field(ESR_EL2::MOPS_SRCREG);
    let sizereg = v.field(ESR_EL2::MOPS_SIZEREG);

    let dst = ctx.pt_reg(dstreg);
    let size = ctx.pt_reg(sizereg);

    if v.field(ESR_EL2::MOPS_MEM_INST) != 0 {
        // SET* instruction
        if option_a ^ wrong_option {
            // Format is from Option A; forward set
            ctx.set_pt_reg(dstreg, dst.wrapping_add(size));
            ctx.set_pt_reg(sizereg, size.wrapping_neg());
        }
    } else {
        // CPY* instruction
        let src = ctx.pt_reg(srcreg);
        if !(option_a ^ wrong_option) {
            // Format is from Option B
            if ctx.pstate().raw() & PSR_N_BIT != 0 {
                // Backward copy
                ctx.set_pt_reg(dstreg, dst.wrapping_sub(size));
                ctx.set_pt_reg(srcreg, src.wrapping_sub(size));
            }
        } else {
            // Format is from Option A
            if size & (1 << 63) != 0 {
                // Forward copy
                ctx.set_pt_reg(dstreg, dst.wrapping_add(size));
                ctx.set_pt_reg(srcreg, src.wrapping_add(size));
                ctx.set_pt_reg(sizereg, size.wrapping_neg());
            }
        }
    }

    let back = if v.field(ESR_EL2::MOPS_FROM_EPILOGUE) != 0 {
        MOPS_EPILOGUE_TO_PROLOGUE
    } else {
        A64_INSN_SIZE
    };
    let pc = ctx.pc().raw().wrapping_sub(back);
    ctx.set_pc(Value::from_raw(pc));
}

/// `kvm_hyp_handle_mops()`: the sequence rewound ([`mops_reset_regs`]), the
/// guest's PC back in ELR_EL2, SPSR_EL2.SS cleared (a pending software step
/// completes before the prologue runs); always back to the guest.
pub fn mops<C: HandlerContext, A: RegAccess>(ctx: &mut C, regs: &mut A, esr: Esr) -> bool {
    let pc = regs.read::<ELR_EL2::Reg>();
    ctx.set_pc(pc);
    mops_reset_regs(ctx, esr);
    regs.write(ctx.pc());

    let spsr = regs.read::<SPSR_EL2::Reg>();
    regs.write(spsr.with(SPSR_EL2::SS.clear()));
    true
}

/// Runs `handler` for an exit whose syndrome is `esr` (saved in
/// `vcpu->arch.fault.esr_el2`): true if it was dealt with at EL2 (the guest
/// is entered again), false to exit to the host with `exit_code`, which
/// [`ExitHandler::DabtLow`] may have changed to [`ExitCode::EL1_SERROR`].
///
/// [`ExitHandler::Eret`]'s class is trapped only for a nested vCPU (HCR_EL2.NV
/// or the ERET fine-grained trap, which KVM sets for nested vCPUs only): it
/// exits here, where the host's `kvm_handle_eret()` deals with it.
pub fn handle<C: HandlerContext, A: RegAccess>(
    ctx: &mut C,
    regs: &mut A,
    handler: ExitHandler,
    esr: Esr,
    exit_code: &mut ExitCode,
) -> bool {
    match handler {
        ExitHandler::Cp15_32 => {
            ctx.handler_caps().vgic_v3_cpuif_trap
                && ctx.vgic_v3_cpuif_access() == CpuifAccess::Handled
        }
        ExitHandler::SysregVhe => sysreg(ctx, regs, esr),
        ExitHandler::Fpsimd => fpsimd(ctx, regs, esr),
        // kvm_hyp_handle_memory_fault(): back into the guest only if the AT
        // failed.
        ExitHandler::IabtLow | ExitHandler::WatchptLow => !ctx.populate_fault_info(),
        ExitHandler::DabtLow => dabt_low(ctx, esr, exit_code),
        ExitHandler::Eret => false,
        ExitHandler::Mops => mops(ctx, regs, esr),
    }
}
