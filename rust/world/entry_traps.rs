// SPDX-License-Identifier: GPL-2.0

//! The traps a VHE host sets on every guest entry and undoes on every exit:
//! `__activate_traps()` / `__deactivate_traps()` of
//! `arch/arm64/kvm/hyp/vhe/switch.c` (Linux 6.12), with the helpers they inline
//! (`___activate_traps()`, `___deactivate_traps()`,
//! `__activate_traps_fpsimd32()` of `hyp/include/hyp/switch.h`,
//! `kvm_reset_cptr_el2()` of `asm/kvm_emulate.h`), for a non-nested vCPU.
//!
//! Unlike the load-time traps (`traps.rs`), these registers control EL2 and
//! the host itself, so they cannot stay set from load to put: the host kernel
//! runs at EL2 with `HCR_EL2 = HCR_HOST_VHE_FLAGS` (E2H, TGE: EL0 is the host's
//! user space, exceptions come to EL2), its own exception vectors and FP
//! enabled. Around each run of the guest, [`activate`] gives the CPU the
//! guest's configuration and [`deactivate`] gives the host back its own:
//!
//! * HCR_EL2: the vCPU's `vcpu->arch.hcr_el2` (`__compute_hcr()` is the
//!   identity for a non-nested vCPU), plus TVM on Cavium ThunderX2 (erratum
//!   219: guest writes to the EL1 translation registers trapped). A pending
//!   virtual SError (HCR_EL2.VSE) comes with its syndrome, VSESR_EL2, on CPUs
//!   with RAS. On the way out VSE is read back: the CPU clears it when the
//!   guest takes the SError, and `vcpu->arch.hcr_el2` must say whether it is
//!   still pending.
//! * The physical timer with ECV's CNTPOFF_EL2 (`has_cntpoff()`): CNTPOFF_EL2
//!   is applied to the guest's EL1&0 regime only (HCR_EL2.TGE clear), so
//!   CNTP_CVAL holds the guest's compare value while the guest runs and that
//!   value plus the offset while the host runs (the host's hrtimer emulation
//!   and the timer interrupt use the host's view). Which of the vCPU's timers
//!   the guest reaches directly is the timer map (`get_timer_map()`,
//!   [`TimerMap`]); for a non-nested vCPU on VHE it is always the EL1
//!   physical timer ([`TimerMap::NON_NESTED_VHE`]), whose compare value the
//!   vCPU keeps in `CNTP_CVAL_EL0`.
//! * CPACR_EL1, which is CPTR_EL2 (in CPACR_EL1's layout) at EL2 under E2H:
//!   the guest gets trace and AMU traps, and FP/SVE enabled only if its state
//!   is in the registers (`guest_owns_fp_regs()`); otherwise FP traps to EL2
//!   for the lazy switch (`fp.rs`), and a 32-bit guest gets FPEXC.EN set first
//!   so that the trap is not taken to its own EL1 instead. The host gets back
//!   FP, SVE (and SME) enabled for EL1&0 (`kvm_get_reset_cptr_el2()`: on VHE
//!   neither the vCPU nor whether the host has SVE changes it; the ZEN bit
//!   is written even on CPUs without SVE, as the C does).
//! * VBAR_EL1, which is VBAR_EL2 at EL2 under E2H: this CPU's KVM hyp vectors
//!   for the guest's run, the host's vectors after it (`vectors`, or this CPU's
//!   Spectre-hardened `this_cpu_vector` unless the kernel is unmapped at EL0).
//!
//! Registers through [`RegAccess`], kernel state through [`EntryTrapContext`];
//! every register, field and constant comes from the kernel being built
//! (`rust/gen/sysregs.in`, `arch/arm64/tools/sysreg`).
//!
//! Composed by the run path's script, `crate::world::run` (`__kvm_vcpu_run_vhe()`),
//! which the module does not call yet.

use crate::arch::{
    consts, RegAccess, Value, CNTPOFF_EL2, CNTP_CVAL_EL02, CPACR_EL1, CPTR_EL2, FPEXC32_EL2,
    HCR_EL2, VBAR_EL1, VSESR_EL2,
};
use crate::world::fp::FpOwner;

/// What the host CPUs have, as far as the per-entry traps care: final
/// capabilities, fixed once KVM is up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryTrapCaps {
    /// `ARM64_WORKAROUND_CAVIUM_TX2_219_TVM`: the guest's EL1 translation
    /// register writes must trap (HCR_EL2.TVM).
    pub cavium_tx2_219_tvm: bool,
    /// `ARM64_HAS_RAS_EXTN`: VSESR_EL2 gives a virtual SError its syndrome.
    pub ras: bool,
    /// `has_cntpoff()`: `ARM64_HAS_ECV_CNTPOFF` (and VHE, which is given here).
    pub cntpoff: bool,
    /// `ARM64_WORKAROUND_SPECULATIVE_AT` (errata 1165522, 1319367, 1530923):
    /// the register writes of the exit must complete before the host's EL2&0
    /// translation regime is used.
    pub speculative_at: bool,
    /// `arm64_kernel_unmapped_at_el0()`: `ARM64_UNMAP_KERNEL_AT_EL0` (KPTI).
    pub kernel_unmapped_at_el0: bool,
    /// `system_supports_fpsimd()`: `ARM64_HAS_FPSIMD`.
    pub fpsimd: bool,
    /// `ARM64_SME`.
    pub sme: bool,
}

/// One of the vCPU's physical timers, as the timer map names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhysTimer {
    /// `vcpu_ptimer()`: the EL1 physical timer; its compare value is the vCPU's
    /// `CNTP_CVAL_EL0`.
    Ptimer,
    /// `vcpu_hptimer()`: the (virtual) EL2 physical timer of a nested vCPU;
    /// its compare value is the vCPU's `CNTHP_CVAL_EL2`.
    Hptimer,
}

/// What the CNTPOFF blocks use of `struct timer_map` (`get_timer_map()`,
/// `arch/arm64/kvm/arch_timer.c`): the physical timer the guest accesses
/// directly, if any (`map.direct_ptimer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerMap {
    /// `map.direct_ptimer`, `None` for NULL.
    pub direct_ptimer: Option<PhysTimer>,
}

impl TimerMap {
    /// `get_timer_map()` for a non-nested vCPU on a VHE host: its
    /// `else if (has_vhe())` branch, `direct_ptimer = vcpu_ptimer(vcpu)`
    /// (the nested branches give `vcpu_hptimer()` or `vcpu_ptimer()`, the
    /// nVHE branch NULL).
    pub const NON_NESTED_VHE: TimerMap = TimerMap {
        direct_ptimer: Some(PhysTimer::Ptimer),
    };
}

/// The kernel state the per-entry traps read and write.
pub trait EntryTrapContext {
    /// The host's capabilities.
    fn entry_trap_caps(&self) -> EntryTrapCaps;

    /// `vcpu->arch.hcr_el2`.
    fn vcpu_hcr_el2(&self) -> Value<HCR_EL2::Reg>;

    /// Sets `vcpu->arch.hcr_el2` (the exit preserves a still pending VSE).
    fn set_vcpu_hcr_el2(&mut self, val: Value<HCR_EL2::Reg>);

    /// `vcpu->arch.vsesr_el2`: the syndrome of the pending virtual SError.
    fn vcpu_vsesr_el2(&self) -> Value<VSESR_EL2::Reg>;

    /// This CPU's FP owner (`*host_data_ptr(fp_owner)`).
    fn fp_owner(&self) -> FpOwner;

    /// `vcpu_has_sve()`: the host supports SVE and the vCPU has it.
    fn guest_has_sve(&self) -> bool;

    /// `get_timer_map()`: [`TimerMap::NON_NESTED_VHE`] for a non-nested vCPU.
    fn timer_map(&self) -> TimerMap;

    /// The vCPU's saved compare value of `timer` (`__vcpu_sys_reg(vcpu,
    /// CNTP_CVAL_EL0)` or `CNTHP_CVAL_EL2`), as the host reaches the guest's
    /// CNTP_CVAL_EL0: CNTP_CVAL_EL02.
    fn ptimer_cval(&self, timer: PhysTimer) -> Value<CNTP_CVAL_EL02::Reg>;

    /// Saves the compare value of `timer` in the vCPU.
    fn set_ptimer_cval(&mut self, timer: PhysTimer, val: Value<CNTP_CVAL_EL02::Reg>);

    /// This CPU's `kvm_hyp_vector`: the exception vectors the guest runs with.
    fn hyp_vector(&self) -> Value<VBAR_EL1::Reg>;

    /// The kernel's `vectors` (the host's vectors when the kernel is unmapped
    /// at EL0: the trampoline switches to them).
    fn kernel_vectors(&self) -> Value<VBAR_EL1::Reg>;

    /// This CPU's `this_cpu_vector` (`vectors`, or a Spectre-BHB mitigating
    /// copy of them).
    fn this_cpu_vector(&self) -> Value<VBAR_EL1::Reg>;
}

/// The HCR_EL2 a non-nested vCPU runs with: `__compute_hcr()` (the vCPU's
/// `hcr_el2` when `!vcpu_has_nv()`), with TVM added on Cavium ThunderX2
/// (`___activate_traps()`).
pub const fn guest_hcr(caps: EntryTrapCaps, vcpu_hcr: Value<HCR_EL2::Reg>) -> Value<HCR_EL2::Reg> {
    if caps.cavium_tx2_219_tvm {
        vcpu_hcr.with(HCR_EL2::TVM::SET)
    } else {
        vcpu_hcr
    }
}

/// `vcpu_el1_is_32bit()` as the hyp code has it: HCR_EL2.RW clear in the
/// vCPU's `hcr_el2` (EL1 is AArch32).
pub const fn el1_is_32bit(vcpu_hcr: Value<HCR_EL2::Reg>) -> bool {
    vcpu_hcr.field(HCR_EL2::RW) == 0
}

/// What `__activate_cptr_traps()` writes to CPACR_EL1 for a non-nested vCPU:
/// trace (TTA) and AMU (CPTR_EL2.TAM) accesses trapped; FP/SIMD enabled if the
/// guest owns the FP registers, and SVE too if it has SVE; otherwise every FP,
/// SVE (and SME) access traps to EL2.
pub const fn guest_cpacr(guest_owns_fp: bool, sve: bool) -> Value<CPACR_EL1::Reg> {
    let v = Value::from_raw(CPTR_EL2::TAM.mask()).with(CPACR_EL1::TTA::SET);
    if !guest_owns_fp {
        v
    } else if sve {
        v.with(CPACR_EL1::FPEN::SET).with(CPACR_EL1::ZEN::SET)
    } else {
        v.with(CPACR_EL1::FPEN::SET)
    }
}

/// `kvm_get_reset_cptr_el2()` on VHE: FP/SIMD enabled; SVE (and SME on CPUs
/// with SME) `_EL1EN`, which under E2H and TGE means enabled for the host
/// kernel at EL2 and trapped for host user space at EL0, as the kernel's lazy
/// SVE/SME handling of tasks expects. Neither the vCPU nor the host's SVE
/// changes it.
pub const fn host_cpacr(caps: EntryTrapCaps) -> Value<CPACR_EL1::Reg> {
    let mut raw = CPACR_EL1::FPEN.mask() | consts::CPACR_EL1_ZEN_EL1EN;
    if caps.sme {
        raw |= consts::CPACR_EL1_SMEN_EL1EN;
    }
    Value::from_raw(raw)
}

/// The host's VBAR_EL1 (VBAR_EL2): `vectors` if the kernel is unmapped at EL0,
/// else this CPU's `this_cpu_vector`.
pub fn host_vbar<C: EntryTrapContext>(ctx: &C, caps: EntryTrapCaps) -> Value<VBAR_EL1::Reg> {
    if caps.kernel_unmapped_at_el0 {
        ctx.kernel_vectors()
    } else {
        ctx.this_cpu_vector()
    }
}

/// `__activate_traps_fpsimd32()`: FP will trap to EL2, but an AArch32 EL1
/// with FPEXC.EN clear would take the trap at its own EL1 first; so set
/// FPEXC.EN (only where FP exists: FPEXC32_EL2 is UNDEFINED otherwise).
fn activate_fpsimd32<A: RegAccess>(
    caps: EntryTrapCaps,
    vcpu_hcr: Value<HCR_EL2::Reg>,
    regs: &mut A,
) {
    if el1_is_32bit(vcpu_hcr) && caps.fpsimd {
        regs.write(Value::<FPEXC32_EL2::Reg>::from_raw(0).with(FPEXC32_EL2::EN::SET));
        regs.isb();
    }
}

/// `__activate_traps()` for a non-nested vCPU: before every entry, with every
/// exception masked (`local_daif_mask()` in `__kvm_vcpu_run()`), after the
/// host's state is saved and the lazy FP switch to the guest, before the
/// guest's return state and debug registers. The guest's stage 1 and stage 2
/// are already on the CPU (vcpu_load): erratum 1165522 needs both in place
/// before HCR_EL2.TGE is cleared, which is what the HCR_EL2 write does.
pub fn activate<C: EntryTrapContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    let caps = ctx.entry_trap_caps();
    let vcpu_hcr = ctx.vcpu_hcr_el2();

    // ___activate_traps(vcpu, __compute_hcr(vcpu)).
    let hcr = guest_hcr(caps, vcpu_hcr);
    regs.write(hcr);
    if caps.ras && hcr.field(HCR_EL2::VSE) != 0 {
        regs.write(ctx.vcpu_vsesr_el2());
    }

    if caps.cntpoff {
        // TGE is clear now: CNTPOFF_EL2 applies, so the guest's own compare
        // value goes back in, from memory.
        if let Some(timer) = ctx.timer_map().direct_ptimer {
            regs.write(ctx.ptimer_cval(timer));
            regs.isb();
        }
    }

    // __activate_cptr_traps(): the non-nested part, up to `write:`.
    let guest_owns_fp = ctx.fp_owner() == FpOwner::GuestOwned;
    // vcpu_has_sve() is only asked when the guest owns the registers.
    let sve = guest_owns_fp && ctx.guest_has_sve();
    if !guest_owns_fp {
        activate_fpsimd32(caps, vcpu_hcr, regs);
    }
    regs.write(guest_cpacr(guest_owns_fp, sve));

    regs.write(ctx.hyp_vector());
}

/// `__deactivate_traps()` for a non-nested vCPU: after every exit, exceptions
/// still masked, once the guest's state is saved and before the lazy FP switch
/// back and the host's state (and on a hyp panic, `__hyp_call_panic()`).
pub fn deactivate<C: EntryTrapContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    let caps = ctx.entry_trap_caps();

    // ___deactivate_traps(): a virtual SError the guest has not taken yet
    // (HCR_EL2.VSE still set; the CPU clears it when the guest takes it) stays
    // pending in vcpu->arch.hcr_el2.
    let vcpu_hcr = ctx.vcpu_hcr_el2();
    if vcpu_hcr.field(HCR_EL2::VSE) != 0 {
        let still = regs.read::<HCR_EL2::Reg>().field(HCR_EL2::VSE);
        ctx.set_vcpu_hcr_el2(vcpu_hcr.with(HCR_EL2::VSE.val(still)));
    }

    regs.write_raw::<HCR_EL2::Reg>(HCR_EL2::HOST_VHE_FLAGS);

    if caps.cntpoff {
        // TGE is set now: CNTPOFF_EL2 no longer applies. Save the guest's
        // compare value and give the host the offset one.
        let map = ctx.timer_map();
        let cval = regs.read::<CNTP_CVAL_EL02::Reg>();
        if let Some(timer) = map.direct_ptimer {
            ctx.set_ptimer_cval(timer, cval);
        }
        let offset = regs.read::<CNTPOFF_EL2::Reg>().raw();
        if map.direct_ptimer.is_some() && offset != 0 {
            // C's u64 arithmetic: modulo 2^64.
            regs.write(Value::<CNTP_CVAL_EL02::Reg>::from_raw(
                cval.raw().wrapping_add(offset),
            ));
            regs.isb();
        }
    }

    // Errata 1165522 and 1530923: the writes above must have taken effect
    // before the host's EL2&0 translation regime is used.
    if caps.speculative_at {
        regs.isb();
    }

    // kvm_reset_cptr_el2().
    regs.write(host_cpacr(caps));

    regs.write(host_vbar(ctx, caps));
}
