// SPDX-License-Identifier: GPL-2.0

//! FP/SIMD/SVE ownership: who owns this CPU's FP register file, and the lazy switch.
//!
//! Today's C: `arch/arm64/kvm/fpsimd.c` (load, ctxflush, ctxsync, put) and the hyp
//! side in `hyp/include/hyp/switch.h` (`kvm_hyp_handle_fpsimd`,
//! `fpsimd_lazy_switch_to_{guest,host}`), for a non-protected VHE host.
//!
//! The owner is per-CPU state (as upstream "KVM: arm64: Exclude FP ownership
//! from kvm_vcpu_arch" made it), kept here as [`FpOwner`]; every
//! change of owner goes through one function, [`FpOwner::next`], over the events of
//! [`FpEvent`], which answers the new owner and the one [`FpAction`] to perform.
//! The steps ([`load`], [`ctxflush`], [`ctxsync`], [`put`], [`handle_trap`],
//! [`switch_to_guest`], [`switch_to_host`]) perform that action through
//! [`FpContext`] (the kernel's FP machinery and the vCPU's saved state) and the
//! register trait, so the same code runs in the module and in the host tests that
//! walk every sequence of events.
//!
//! The guest's FP state is switched lazily: at load the host's state is saved and
//! the owner is [`FpOwner::Free`]; the guest runs with FP trapped; its first FP or
//! SVE instruction traps to EL2, where [`handle_trap`] loads the guest's registers,
//! the owner becomes [`FpOwner::GuestOwned`] and the guest re-enters at once (a
//! shallow exit, as in "KVM: arm64: Convert lazy FPSIMD context switch trap to
//! C", 2018). While the guest owns the registers, they are
//! bound to the CPU after each exit ([`ctxsync`]) so that the host kernel saves
//! them into the vCPU if it needs the FP unit; [`put`] saves and flushes them.

// With HCR_EL2.E2H set, the `_EL1` encodings reach the EL2 registers from EL2:
// the guest's ZCR_EL1 is ZCR_EL12 here.
use crate::arch::{RegAccess, Value, ZCR_EL12, ZCR_EL2};

/// Who owns the CPU's FP/SIMD/SVE registers (`host_data.fp_owner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpOwner {
    /// Nobody: the registers hold nothing anyone will read back. The host's state
    /// is saved in its task, the guest's in the vCPU.
    Free,
    /// The host's state is live in the registers. Only protected KVM leaves the
    /// host's state in the registers while a vCPU is loaded; on a VHE host the
    /// backend never enters this state (see [`FpOwner::next`]).
    HostOwned,
    /// The guest's state is live in the registers (and, after [`ctxsync`], bound
    /// to the CPU so the host saves it into the vCPU before using FP itself).
    GuestOwned,
}

/// What happens to the FP unit, in the order KVM runs a vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpEvent {
    /// `kvm_arch_vcpu_load_fp`: the vCPU is loaded on this CPU.
    Load,
    /// `kvm_arch_vcpu_ctxflush_fp`: about to enter, IRQs off. `foreign` is
    /// `TIF_FOREIGN_FPSTATE`: something used FP since the last exit (kernel-mode
    /// NEON, a softirq), having saved what the registers held.
    CtxFlush {
        /// `TIF_FOREIGN_FPSTATE` of the vCPU thread.
        foreign: bool,
    },
    /// The guest used FP/SIMD or SVE while trapped: the lazy switch.
    Trap,
    /// `kvm_arch_vcpu_ctxsync_fp`: just after the exit, IRQs off.
    CtxSync,
    /// `kvm_arch_vcpu_put_fp`: the vCPU is put.
    Put,
}

/// The one thing to do on an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FpAction {
    /// Nothing.
    None,
    /// Save the state live in the registers where it belongs and invalidate the
    /// registers (`fpsimd_save_and_flush_cpu_state`).
    SaveAndFlush,
    /// Enable FP (and SVE) at EL2/EL1 and load the guest's registers from the vCPU.
    LoadGuest,
    /// Bind the guest's state (in the registers) to the CPU, so the host saves it
    /// into the vCPU before it uses FP (`fpsimd_bind_state_to_cpu`).
    BindGuest,
}

/// An event that cannot happen in this state: a bug in KVM or in the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpIllegal {
    /// The owner at the time.
    pub owner: FpOwner,
    /// The event.
    pub event: FpEvent,
}

impl FpOwner {
    /// The transition function: the new owner and the action for `event`.
    ///
    /// A trap while the guest owns the registers cannot happen (FP is not trapped
    /// then), nor one while the host owns them (never on VHE): both are rejected.
    pub const fn next(self, event: FpEvent) -> Result<(FpOwner, FpAction), FpIllegal> {
        use FpAction as A;
        use FpOwner::*;
        Ok(match (self, event) {
            // Whatever the registers hold is saved where it belongs; nobody owns them.
            (_, FpEvent::Load) => (Free, A::SaveAndFlush),
            // Something used FP while we were preemptible and saved what was there.
            (_, FpEvent::CtxFlush { foreign: true }) => (Free, A::None),
            (o, FpEvent::CtxFlush { foreign: false }) => (o, A::None),
            (Free, FpEvent::Trap) => (GuestOwned, A::LoadGuest),
            (GuestOwned, FpEvent::CtxSync) => (GuestOwned, A::BindGuest),
            (o, FpEvent::CtxSync) => (o, A::None),
            // The guest's state goes back to the vCPU; the registers are nobody's.
            (GuestOwned, FpEvent::Put) => (Free, A::SaveAndFlush),
            (_, FpEvent::Put) => (Free, A::None),
            (owner, event @ FpEvent::Trap) => return Err(FpIllegal { owner, event }),
        })
    }
}

/// What the FP steps need from the kernel and from the vCPU.
///
/// The module implements it over `host_data`, the vCPU and the kernel's FP
/// functions; the host tests over a model of them.
pub trait FpContext {
    /// This CPU's owner (`host_data.fp_owner`).
    fn owner(&self) -> FpOwner;
    /// Sets this CPU's owner.
    fn set_owner(&mut self, owner: FpOwner);
    /// `fpsimd_save_and_flush_cpu_state()`.
    fn save_and_flush_cpu_state(&mut self);
    /// `fpsimd_bind_state_to_cpu()` with the vCPU's FP state, then clears
    /// `TIF_FOREIGN_FPSTATE`.
    fn bind_guest_state(&mut self);
    /// `test_thread_flag(TIF_FOREIGN_FPSTATE)`.
    fn foreign_fpstate(&self) -> bool;
    /// Whether the vCPU has SVE.
    fn vcpu_has_sve(&self) -> bool;
    /// Reports an event that cannot happen in the current state (a bug in
    /// KVM or in the backend); the step then does nothing. The module counts
    /// it and WARNs once.
    fn illegal(&mut self, e: FpIllegal);
}

/// What the EL2 side of the FP switch (the trap and the lazy switch around entry,
/// part of the run path) needs on top of [`FpContext`].
pub trait FpHypContext: FpContext {
    /// Enables FP (and SVE if the vCPU has it) for the guest and EL2 (CPACR_EL1
    /// under E2H), followed by an `isb`.
    fn enable_guest_fp(&mut self, sve: bool);
    /// Loads the guest's FP/SIMD (or SVE, at the guest's max VL, which ZCR_EL2
    /// holds) registers, FPSR and FPCR from the vCPU, and FPMR if the VM has it.
    fn load_guest_regs(&mut self, sve: bool);
    /// The vCPU's maximum vector length in quadwords (`vcpu_sve_max_vq`).
    fn vcpu_sve_max_vq(&self) -> u64;
    /// The guest's saved ZCR_EL1 (`__vcpu_sys_reg(vcpu, ZCR_EL1)`), as the
    /// host reaches it: ZCR_EL12.
    fn vcpu_zcr_el1(&self) -> Value<ZCR_EL12::Reg>;
    /// Saves the guest's ZCR_EL1.
    fn set_vcpu_zcr_el1(&mut self, val: Value<ZCR_EL12::Reg>);
}

/// Moves the owner on `event` and returns the action, or the illegal event.
fn step(ctx: &mut impl FpContext, event: FpEvent) -> Result<FpAction, FpIllegal> {
    let old = ctx.owner();
    let (owner, action) = old.next(event).inspect_err(|e| ctx.illegal(*e))?;
    // Most steps leave the owner as it was (every entry and exit of a guest
    // that does not use FP): no store then.
    if owner != old {
        ctx.set_owner(owner);
    }
    Ok(action)
}

/// `kvm_arch_vcpu_load_fp`: saves and flushes the host's state; the owner is
/// [`FpOwner::Free`] and the guest will trap on its first FP use.
pub fn load(ctx: &mut impl FpContext) {
    // Load is legal in every state.
    if let Ok(FpAction::SaveAndFlush) = step(ctx, FpEvent::Load) {
        ctx.save_and_flush_cpu_state();
    }
}

/// `kvm_arch_vcpu_ctxflush_fp`: if anything used FP while we were preemptible,
/// it saved the registers and nobody owns them any more. Returns whether it had.
pub fn ctxflush(ctx: &mut impl FpContext) -> bool {
    let foreign = ctx.foreign_fpstate();
    // CtxFlush is legal in every state, and its action is always None.
    let _ = step(ctx, FpEvent::CtxFlush { foreign });
    foreign
}

/// `kvm_arch_vcpu_ctxsync_fp`: binds the guest's live registers to the CPU.
/// Returns whether the guest owned them.
pub fn ctxsync(ctx: &mut impl FpContext) -> bool {
    let bind = matches!(step(ctx, FpEvent::CtxSync), Ok(FpAction::BindGuest));
    if bind {
        ctx.bind_guest_state();
    }
    bind
}

/// `kvm_arch_vcpu_put_fp`: saves the guest's live registers into the vCPU and
/// flushes them. The caller runs with IRQs off (as the C does with
/// `local_irq_save`), so no IPI sees a half-done flush. Returns whether the
/// guest's registers were saved.
pub fn put(ctx: &mut impl FpContext) -> bool {
    let save = matches!(step(ctx, FpEvent::Put), Ok(FpAction::SaveAndFlush));
    if save {
        ctx.save_and_flush_cpu_state();
    }
    save
}

/// The guest trapped on FP/SIMD or SVE (`kvm_hyp_handle_fpsimd`, exit handler at
/// EL2): loads its registers and re-enters. `sve_trap` is whether the exception
/// class was SVE (or a trapped SVE system-register access).
///
/// Returns `false` when the trap is not the lazy switch: an SVE trap from a vCPU
/// without SVE (an UNDEF for the slow path to inject), or a trap while the guest
/// already owns the registers (cannot happen: it would be a bug; leave it to the
/// slow path, which reports it).
pub fn handle_trap(ctx: &mut impl FpHypContext, regs: &mut impl RegAccess, sve_trap: bool) -> bool {
    let sve = ctx.vcpu_has_sve();
    if sve_trap && !sve {
        return false;
    }
    if step(ctx, FpEvent::Trap).is_err() {
        return false;
    }
    // First disable the traps so we can load the registers (the `isb` is in
    // `enable_guest_fp`).
    ctx.enable_guest_fp(sve);
    if sve {
        // The vCPU's saved SVE state is laid out for its max VL: load at that VL.
        let vq = ctx.vcpu_sve_max_vq();
        set_zcr_el2_len(regs, vq);
        ctx.load_guest_regs(true);
        regs.write(ctx.vcpu_zcr_el1());
    } else {
        ctx.load_guest_regs(false);
    }
    true
}

/// `fpsimd_lazy_switch_to_guest`: before entry, if the guest owns the registers,
/// give it its vector length back (the host may have run with another).
pub fn switch_to_guest(ctx: &mut impl FpHypContext, regs: &mut impl RegAccess) {
    if ctx.owner() != FpOwner::GuestOwned || !ctx.vcpu_has_sve() {
        return;
    }
    set_zcr_el2_len(regs, ctx.vcpu_sve_max_vq());
    regs.write(ctx.vcpu_zcr_el1());
}

/// `fpsimd_lazy_switch_to_host`: after the exit, if the guest owns the registers,
/// save its ZCR_EL1 and leave the guest's max VL in ZCR_EL2, so that the host can
/// save the guest's state lazily at that VL (`fpsimd_save_and_flush_cpu_state`
/// relies on it). No `isb`: the exit was a context synchronization event.
pub fn switch_to_host(ctx: &mut impl FpHypContext, regs: &mut impl RegAccess) {
    if ctx.owner() != FpOwner::GuestOwned || !ctx.vcpu_has_sve() {
        return;
    }
    let zcr = regs.read::<ZCR_EL12::Reg>();
    ctx.set_vcpu_zcr_el1(zcr);
    set_zcr_el2_len(regs, ctx.vcpu_sve_max_vq());
}

/// Writes ZCR_EL2.LEN = `vq` - 1 (the vector length in quadwords, minus one),
/// skipping the write if it already holds it (`sve_cond_update_zcr_vq`).
fn set_zcr_el2_len(regs: &mut impl RegAccess, vq: u64) {
    regs.modify(ZCR_EL2::LEN.val(vq.saturating_sub(1)));
}
