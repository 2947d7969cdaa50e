// SPDX-License-Identifier: GPL-2.0

//! One run of the guest on a VHE host: `__kvm_vcpu_run_vhe()` of
//! `arch/arm64/kvm/hyp/vhe/switch.c` (Linux 6.12.117) for a non-nested vCPU,
//! as a script over the pieces that do the work ([`run`]).
//!
//! `__kvm_vcpu_run()` calls it with every exception masked (`local_daif_mask()`,
//! then `pmr_sync()`), the vCPU loaded (its deferred registers, load-time traps
//! and stage 2 on the CPU) and the FP state flushed for entry
//! (`kvm_arch_vcpu_ctxflush_fp()`). In the C's order:
//!
//! 1. `sysreg_save_host_state_vhe()`: the host's MDSCR_EL1 (and POR_EL0) into
//!    `host_ctxt` ([`sysreg_sr::save_host_state`]);
//! 2. `fpsimd_lazy_switch_to_guest()`: if the guest owns the FP registers, its
//!    SVE vector length and ZCR_EL1 back ([`fp::switch_to_guest`]). Not in
//!    6.12.0: this step and step 10 came to the 6.12 stable series with the
//!    backport of mainline's "KVM: arm64: Eagerly switch ZCR_EL{1,2}";
//! 3. `__activate_traps()`: HCR_EL2, the CNTPOFF timer, CPACR_EL1, VBAR_EL1
//!    ([`entry_traps::activate`]); erratum 1165522 needs the guest's stage 1
//!    and 2 in place before HCR_EL2.TGE is cleared, which `vcpu_load` did;
//! 4. `__kvm_adjust_pc()`: an exception the host injected, or a PC increment
//!    it asked for (`PENDING_EXCEPTION`, `INCREMENT_PC`), applied to the vCPU's
//!    PC and PSTATE and, for an exception, its live EL1 registers
//!    ([`RunContext::adjust_pc`]: still C);
//! 5. `sysreg_restore_guest_state_vhe()`: the guest's MDSCR_EL1 (and POR_EL0),
//!    then its return state, ELR_EL2 and SPSR_EL2 from the vCPU's PC and
//!    PSTATE (the PSTATE made safe by [`crate::world::pstate::el2_return_spsr`]),
//!    and VDISR_EL2 with RAS ([`sysreg_sr::restore_guest_state`]);
//! 6. `__debug_switch_to_guest()` ([`RunContext::debug_switch_to_guest`]:
//!    the module's is `crate::world::debug::switch_to_guest`);
//! 7. the loop: `do { exit_code = __guest_enter(vcpu); } while
//!    (fixup_guest_exit(vcpu, &exit_code));` ([`RunContext::guest_enter`],
//!    [`fixup::fixup_guest_exit`]): an exit handled at EL2 enters the guest
//!    again at once, with nothing saved or restored in between;
//! 8. `sysreg_save_guest_state_vhe()` ([`sysreg_sr::save_guest_state`]: its
//!    MDSCR_EL1, POR_EL0, PC and DISR_EL1; the PSTATE was saved by the fixup);
//! 9. `__deactivate_traps()` ([`entry_traps::deactivate`]);
//! 10. `fpsimd_lazy_switch_to_host()` ([`fp::switch_to_host`]);
//! 11. `sysreg_restore_host_state_vhe()` ([`sysreg_sr::restore_host_state`]);
//! 12. `if (guest_owns_fp_regs()) __fpsimd_save_fpexc32(vcpu);`: an AArch32
//!     EL1's FPEXC32_EL2 into the vCPU, if the guest used FP during the run or
//!     an earlier one of this load;
//! 13. `__debug_switch_to_host()` ([`RunContext::debug_switch_to_host`]);
//! 14. `return exit_code;`.
//!
//! There is no `vcpu_clear_flag(vcpu, VCPU_HCR_E2H)` step in 6.12.117: the
//! flag, and the `is_hyp_ctxt()` test around it, came with later kernels'
//! nested support.
//!
//! The C returns `exit_code`, a `u64`, from a function returning `int`: the
//! caller sees its low 32 bits (the compiler's conversion). [`run`] returns the
//! [`ExitCode`] whole; that conversion is the binding layer's, where the
//! `int` is.
//!
//! Registers through [`RegAccess`], kernel state through [`RunContext`]: the
//! union of the pieces' context traits and what only the C does yet (the
//! debug registers, `__guest_enter()`, `__kvm_adjust_pc()`). No `unsafe`, no
//! register of its own but FPEXC32_EL2.
//!
//! Not called by the module yet: the run path will call it from the hook of
//! `__kvm_vcpu_run()` once `__guest_enter()` and the exit handlers are
//! reachable from Rust.

use crate::arch::{RegAccess, Value, FPEXC32_EL2};
use crate::world::entry_traps::{self, EntryTrapContext};
use crate::world::fixup::{self, ExitCode, Fixup, FixupContext};
use crate::world::fp::{self, FpHypContext, FpOwner};
use crate::world::sysreg_sr::{self, El2ReturnContext, SysregContext};

/// The kernel state one run of the guest reads and writes: every piece's
/// context, and what is left to the C.
pub trait RunContext:
    SysregContext + El2ReturnContext + FpHypContext + EntryTrapContext + FixupContext
{
    /// `__kvm_adjust_pc(vcpu)` (`hyp/exception.c`): injects a pending
    /// exception (`PENDING_EXCEPTION`) or steps the PC past the instruction
    /// the host emulated (`INCREMENT_PC`), then clears the flag.
    fn adjust_pc(&mut self);

    /// `__debug_switch_to_guest(vcpu)` (`hyp/vhe/debug-sr.c`).
    fn debug_switch_to_guest(&mut self);

    /// `__debug_switch_to_host(vcpu)` (`hyp/vhe/debug-sr.c`).
    fn debug_switch_to_host(&mut self);

    /// `__guest_enter(vcpu)` (`hyp/entry.S`): runs the guest until it exits
    /// to EL2 and returns the raw exit code (`ARM_EXCEPTION_*`, with
    /// `ARM_EXIT_WITH_SERROR_BIT` if an SError was pending). The guest's
    /// general-purpose registers, SP_EL0 and pointer-authentication keys go in
    /// and out there; ELR_EL2, SPSR_EL2 and ESR_EL2 hold its exit.
    fn guest_enter(&mut self) -> u64;

    /// Sets `__vcpu_sys_reg(vcpu, FPEXC32_EL2)`.
    fn set_vcpu_fpexc32(&mut self, val: Value<FPEXC32_EL2::Reg>);
}

/// `__fpsimd_save_fpexc32()` (`hyp/include/hyp/switch.h`): an AArch32 EL1's
/// FPEXC32_EL2 saved into the vCPU (`vcpu_el1_is_32bit()` at hyp: HCR_EL2.RW
/// clear in `vcpu->arch.hcr_el2`).
fn save_fpexc32<C: RunContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    if !entry_traps::el1_is_32bit(ctx.vcpu_hcr_el2()) {
        return;
    }
    let fpexc = regs.read::<FPEXC32_EL2::Reg>();
    ctx.set_vcpu_fpexc32(fpexc);
}

/// `__kvm_vcpu_run_vhe()` for a non-nested vCPU, every exception masked: runs
/// the guest until an exit that EL2 does not handle, and returns its exit code
/// (what `handle_exit()` is to deal with). The order is the C's (the module
/// documentation lists it); the host tests check it against the C's text.
pub fn run<C: RunContext, A: RegAccess>(ctx: &mut C, regs: &mut A) -> ExitCode {
    sysreg_sr::save_host_state(ctx, regs);

    fp::switch_to_guest(ctx, regs);

    // Erratum 1165522: the guest's stage 1 and stage 2 are on the CPU since
    // vcpu_load, before HCR_EL2.TGE is cleared here.
    entry_traps::activate(ctx, regs);

    // Before the PC and PSTATE go to ELR_EL2 and SPSR_EL2.
    ctx.adjust_pc();

    sysreg_sr::restore_guest_state(ctx, regs);
    ctx.debug_switch_to_guest();

    let exit_code = loop {
        let exit_code = ExitCode::from_raw(ctx.guest_enter());
        match fixup::fixup_guest_exit(ctx, regs, exit_code) {
            Fixup::ReEnter => {}
            Fixup::Exit(exit_code) => break exit_code,
        }
    };

    sysreg_sr::save_guest_state(ctx, regs);

    entry_traps::deactivate(ctx, regs);

    fp::switch_to_host(ctx, regs);

    sysreg_sr::restore_host_state(ctx, regs);

    // guest_owns_fp_regs(): the owner as the run leaves it (the lazy FP trap
    // may have made the guest the owner in the loop).
    if ctx.owner() == FpOwner::GuestOwned {
        save_fpexc32(ctx, regs);
    }

    ctx.debug_switch_to_host();

    exit_code
}
