// SPDX-License-Identifier: GPL-2.0

//! `vcpu_load` and `vcpu_put` on a VHE host: `kvm_vcpu_load_vhe()` and
//! `kvm_vcpu_put_vhe()` (`arch/arm64/kvm/hyp/vhe/switch.c`, Linux 6.12) for a
//! non-nested vCPU, in the C's order:
//!
//! * load: mark the vCPU as running on this CPU (`__hyp_running_vcpu`), put its
//!   deferred system registers on the CPU ([`sysreg_sr::restore_deferred`], which
//!   also sets `SYSREGS_ON_CPU`), set the load-time traps with IRQs off
//!   ([`traps::activate`]) and load its stage-2 translation
//!   ([`stage2::load`]);
//! * put: the reverse, without stage 2 (the next load, or the host's own
//!   translation regime, which does not use it, replaces it).
//!
//! Between the two, the invariants the rest of KVM relies on hold (see
//! `Documentation/design.rst`): the live registers are on the CPU while
//! `SYSREGS_ON_CPU` is set; `host_ctxt->__hyp_running_vcpu` is the vCPU; the
//! host's PMUSERENR_EL0 is saved while `PMUSERENR_ON_CPU` is set; the vCPU's
//! stage 2 is loaded.

use crate::arch::RegAccess;
use crate::world::stage2::{self, Stage2Context};
use crate::world::sysreg_sr::{self, SysregContext};
use crate::world::traps::{self, TrapContext};

/// The kernel state `vcpu_load`/`vcpu_put` work on.
pub trait LoadContext: SysregContext + TrapContext + Stage2Context {
    /// Sets `host_ctxt->__hyp_running_vcpu` to this vCPU (`true`) or NULL.
    fn set_running_vcpu(&mut self, on: bool);

    /// Runs `f` with IRQs disabled on this CPU.
    fn with_irqs_off(&mut self, f: impl FnOnce(&mut Self));
}

/// `kvm_vcpu_load_vhe()`, preemption disabled.
pub fn load<C: LoadContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    // First, as the C does: the hyp vectors and the `ctxt_has_*()` checks on
    // the host context find the vCPU through it.
    ctx.set_running_vcpu(true);
    sysreg_sr::restore_deferred(ctx, regs);
    // PMUSERENR_EL0 and its ON_CPU flag change together with respect to the
    // PMU driver's IPI (`kvm_set_pmuserenr()`).
    ctx.with_irqs_off(|ctx| traps::activate(ctx, regs));
    stage2::load(ctx, regs);
}

/// `kvm_vcpu_put_vhe()`, preemption disabled.
pub fn put<C: LoadContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    ctx.with_irqs_off(|ctx| traps::deactivate(ctx, regs));
    sysreg_sr::save_deferred(ctx, regs);
    ctx.set_running_vcpu(false);
}
