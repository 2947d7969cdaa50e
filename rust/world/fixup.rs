// SPDX-License-Identifier: GPL-2.0

//! What the VHE run loop does after every return from the guest, before it
//! decides between entering the guest again and going back to the host:
//! `fixup_guest_exit()` of `arch/arm64/kvm/hyp/vhe/switch.c` (Linux 6.12),
//! with the `synchronize_vcpu_pstate()` and `__fixup_guest_exit()` it inlines
//! from `hyp/include/hyp/switch.h`, for a non-nested vCPU: [`fixup_guest_exit`].
//!
//! `__kvm_vcpu_run_vhe()` runs the guest in a loop, every exception masked:
//!
//! ```text
//! do {
//!         exit_code = __guest_enter(vcpu);
//! } while (fixup_guest_exit(vcpu, &exit_code));
//! ```
//!
//! When `__guest_enter()` returns, the guest's PC is in ELR_EL2, its PSTATE in
//! SPSR_EL2 and the syndrome of the exception in ESR_EL2. In the C's order:
//!
//! 1. `synchronize_vcpu_pstate()`: the guest's PSTATE is saved from SPSR_EL2
//!    into the vCPU (`vcpu->arch.ctxt.regs.pstate`). Before that, Cortex-A510
//!    erratum 2077057 (`ARM64_WORKAROUND_2077057`): a CPU that expects a
//!    software step exception but takes a pointer authentication trap instead
//!    may copy SPSR_EL1 into SPSR_EL2, which would let the guest's EL1 choose
//!    the PSTATE (and through it the ELR_EL2) that EL2 returns with. That only
//!    happens when the host single-steps the guest (`vcpu->guest_debug &
//!    KVM_GUESTDBG_SINGLESTEP`), the saved PSTATE has SS set (the step was
//!    active-not-pending) and the exception class is `PAC`: then SPSR_EL2 is
//!    rewritten from the vCPU's PSTATE, which is what it held at entry, before
//!    it is saved. The syndrome is read for this only when the three other
//!    conditions hold (the C's `&&`).
//! 2. Nested only, not modelled: if the vCPU has nested virtualization and the
//!    guest hypervisor ran (`vcpu_has_nv(vcpu) && HCR_EL2.NV`), the saved
//!    PSTATE's EL1t/EL1h mode becomes (virtual) EL2t/EL2h. `vcpu_has_nv()` is
//!    false for every vCPU this backend runs and is tested first, so the C
//!    reads no register there either.
//! 3. `__fixup_guest_exit()`, on the exit code ([`ExitCode`]):
//!    * unless the exit is an interrupt (`ARM_EXCEPTION_CODE(*exit_code) !=
//!      ARM_EXCEPTION_IRQ`), ESR_EL2 is saved in `vcpu->arch.fault.esr_el2`
//!      for the handlers and the host (an interrupt has no syndrome; the
//!      register holds a stale one);
//!    * if an SError is pending as well (`ARM_SERROR_PENDING()`, the exit
//!      code's bit `ARM_EXIT_WITH_SERROR_BIT`) and the exit is no interrupt,
//!      the host will inject the SError and the guest is to resume at the
//!      instruction it trapped on. An HVC's preferred return address is past
//!      the instruction ("HVC already have an adjusted PC"), so ELR_EL2 is
//!      moved back by the C's literal 4 ([`HVC_ADJUSTED_PC`]); an SMC traps,
//!      its return address is the SMC itself, and nothing is done;
//!    * only a plain trap, `*exit_code == ARM_EXCEPTION_TRAP` compared whole
//!      (no SError pending), is offered to the handler table
//!      (`hyp_exit_handlers[]`, [`crate::world::exits`]), by the syndrome's
//!      class: with a pending SError the host injects it first and the guest
//!      replays the trapping instruction. A class without a handler, or a
//!      handler that returns false, exits to the host; a handler that returns
//!      true has dealt with the exit at EL2, and the guest is entered again,
//!      after a `dmb sy` on CPUs with Cortex-A77 erratum 1508412
//!      (`ARM64_WORKAROUND_1508412`: the CPU can deadlock on a store-exclusive
//!      or a PAR_EL1 read followed by a device or non-cacheable load; the
//!      kernel brackets its PAR_EL1 reads with `dmb sy`, and KVM puts one
//!      before every re-entry from here).
//!
//! The exit code can change on the way: a handler gets `exit_code` by
//! pointer. In 6.12 one handler writes it: `kvm_hyp_handle_dabt_low()` turns
//! an illegal access to the trapped GICv2 CPU interface into
//! `ARM_EXCEPTION_EL1_SERROR` (and returns false), so that the host injects an
//! SError. [`Fixup::Exit`] carries the exit code the host is to handle, as
//! `__kvm_vcpu_run_vhe()` returns it. When the guest is entered again the
//! exit code is not read before the next `__guest_enter()` sets it, so
//! [`Fixup::ReEnter`] has none.
//!
//! The registers are named as the architecture names them at EL2: the C, built
//! for VHE (`__KVM_VHE_HYPERVISOR__`), reaches them with `read_sysreg_el2(r)`,
//! which is `r##_EL1`: the `_EL1` encodings that HCR_EL2.E2H redirects to these
//! same EL2 registers.
//!
//! Registers through [`RegAccess`], kernel state and the handlers through
//! [`FixupContext`] (the PSTATE through its [`El2ReturnContext`]); every constant comes from the kernel being built
//! (`asm/kvm_asm.h`, `asm/debug-monitors.h`, `asm/esr.h` through
//! `rust/gen/sysregs.in`), except the C's literal [`HVC_ADJUSTED_PC`].
//!
//! Composed by the run path's script, `crate::world::run` (`__kvm_vcpu_run_vhe()`),
//! which the module does not call yet.

use crate::arch::{consts, Ec, Esr, RegAccess, Value, ELR_EL2, ESR_EL2, SPSR_EL2};
use crate::world::exits::{handler_for, ExitHandler};
use crate::world::sysreg_sr::El2ReturnContext;

/// An exit code of `__guest_enter()` (`asm/kvm_asm.h`): why the guest stopped
/// running ([`ExitCode::code`]), with a bit that says whether an SError was
/// pending as well ([`ExitCode::serror_pending`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitCode(u64);

impl ExitCode {
    /// `ARM_EXCEPTION_IRQ`: an IRQ or FIQ taken from the guest, or an
    /// exception found pending before entry (ISR_EL1 not zero:
    /// `__guest_enter()` then returns without running the guest).
    pub const IRQ: ExitCode = ExitCode(consts::ARM_EXCEPTION_IRQ);
    /// `ARM_EXCEPTION_EL1_SERROR`: an SError taken from the guest.
    pub const EL1_SERROR: ExitCode = ExitCode(consts::ARM_EXCEPTION_EL1_SERROR);
    /// `ARM_EXCEPTION_TRAP`: a synchronous exception from the guest (a trap,
    /// an abort, an HVC or SMC, ...).
    pub const TRAP: ExitCode = ExitCode(consts::ARM_EXCEPTION_TRAP);
    /// `ARM_EXCEPTION_IL`: an illegal exception return into the guest
    /// (SPSR_EL2.IL at EL2, `el2_sync` in `hyp/hyp-entry.S`).
    pub const IL: ExitCode = ExitCode(consts::ARM_EXCEPTION_IL);
    /// `ARM_EXCEPTION_HYP_GONE` (`HVC_STUB_ERR`): what the hyp stub answers a
    /// `kvm_call_hyp()` with; `__guest_enter()` never returns it.
    pub const HYP_GONE: ExitCode = ExitCode(consts::ARM_EXCEPTION_HYP_GONE);

    /// `1U << ARM_EXIT_WITH_SERROR_BIT`: the bit `__guest_enter()` ORs into the
    /// code when an SError was pending at the exit.
    pub const SERROR_PENDING: u64 = 1 << consts::ARM_EXIT_WITH_SERROR_BIT;

    /// The exit code `raw`.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The exit code's bits.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// `ARM_EXCEPTION_CODE()`: the code without the SError bit. The C's mask is
    /// `~(1U << ARM_EXIT_WITH_SERROR_BIT)`, an `unsigned int`: bits 63:32 go as
    /// well ([`consts::ARM_EXCEPTION_CODE_MASK`], evaluated by the compiler).
    pub const fn code(self) -> ExitCode {
        ExitCode(self.0 & consts::ARM_EXCEPTION_CODE_MASK)
    }

    /// `ARM_SERROR_PENDING()`: an SError was pending at the exit.
    pub const fn serror_pending(self) -> bool {
        self.0 & Self::SERROR_PENDING != 0
    }

    /// The code with the SError bit set, as `__guest_enter()` reports an exit
    /// with an SError pending.
    pub const fn with_serror_pending(self) -> ExitCode {
        ExitCode(self.0 | Self::SERROR_PENDING)
    }
}

// The SError bit is outside the code, and the codes are inside it: every code
// is its own ARM_EXCEPTION_CODE(), and a trap's is not an interrupt's (so a
// plain trap always has its syndrome saved).
const _: () = {
    assert!(consts::ARM_EXCEPTION_CODE_MASK & ExitCode::SERROR_PENDING == 0);
    let codes = [
        ExitCode::IRQ,
        ExitCode::EL1_SERROR,
        ExitCode::TRAP,
        ExitCode::IL,
        ExitCode::HYP_GONE,
    ];
    let mut i = 0;
    while i < codes.len() {
        assert!(codes[i].code().raw() == codes[i].raw());
        i += 1;
    }
    assert!(ExitCode::TRAP.code().raw() != ExitCode::IRQ.raw());
};

/// What [`fixup_guest_exit`] decided: `fixup_guest_exit()`'s return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixup {
    /// True: the exit was dealt with at EL2; enter the guest again
    /// (`__guest_enter()`), with nothing of the host restored.
    ReEnter,
    /// False: leave the loop, save the guest and restore the host; the run
    /// returns this exit code to the host (`handle_exit()`).
    Exit(ExitCode),
}

/// What the host CPUs have, as far as the exit fixup cares: final
/// capabilities, fixed once KVM is up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FixupCaps {
    /// `ARM64_WORKAROUND_2077057` (Cortex-A510): SPSR_EL2 may be corrupted
    /// when a PAC trap is taken instead of an expected software step.
    pub workaround_2077057: bool,
    /// `ARM64_WORKAROUND_1508412` (Cortex-A77): a `dmb sy` before re-entering
    /// the guest.
    pub workaround_1508412: bool,
}

/// The exception classes whose preferred return address is past the
/// instruction: `ESR_ELx_EC_HVC32` and `ESR_ELx_EC_HVC64`, which
/// `__fixup_guest_exit()` moves ELR_EL2 back for when an SError is pending.
pub const HVC_CLASSES: [Ec; 2] = [Ec::HVC32, Ec::HVC64];

/// How far an HVC's PC is ahead of the instruction: "HVC already have an
/// adjusted PC, which we need to correct in order to return to after having
/// injected the SError" (`__fixup_guest_exit()`); the C's literal
/// `read_sysreg_el2(SYS_ELR) - 4`, the size of an HVC in A64, A32 and T32
/// alike. `tests/fixup.rs` checks that the C still says `- 4`.
pub const HVC_ADJUSTED_PC: u64 = 4;

/// Whether the syndrome's class is one of [`HVC_CLASSES`], compared raw as the
/// C compares `kvm_vcpu_trap_get_class()`.
pub const fn is_hvc(esr: Esr) -> bool {
    let ec = esr.ec_raw();
    let mut i = 0;
    while i < HVC_CLASSES.len() {
        if HVC_CLASSES[i] as u64 == ec {
            return true;
        }
        i += 1;
    }
    false
}

/// The kernel state the exit fixup reads and writes, and the exit handlers.
/// The guest's PSTATE (`*vcpu_cpsr(vcpu)`) is the vCPU's return state,
/// [`El2ReturnContext::pstate`], shared with the run loop's register moves.
pub trait FixupContext: El2ReturnContext {
    /// The host's capabilities.
    fn fixup_caps(&self) -> FixupCaps;

    /// `vcpu->guest_debug & KVM_GUESTDBG_SINGLESTEP`: the VMM single-steps the
    /// guest.
    fn singlestep(&self) -> bool;

    /// Sets `vcpu->arch.fault.esr_el2`, the syndrome the handlers and the host
    /// read (`kvm_vcpu_get_esr()`).
    fn set_fault_esr(&mut self, esr: Esr);

    /// Runs `handler`, the entry of `hyp_exit_handlers[]` for the exit's class
    /// (an `exit_handler_fn`, `handler(vcpu, exit_code)`), on the same CPU
    /// (`regs`). `esr` is the syndrome just saved in `vcpu->arch.fault.esr_el2`
    /// (what the C's handlers read back). Returns true if the handler dealt
    /// with the exit (the guest is entered again), false to exit to the host.
    ///
    /// The handler may change `exit_code`: in 6.12 only
    /// [`ExitHandler::DabtLow`] does, to [`ExitCode::EL1_SERROR`], and then
    /// returns false. [`ExitHandler::Eret`] is called like the others; for a
    /// non-nested vCPU its class cannot occur ([`ExitHandler::nested_only`]).
    fn handle_exit<A: RegAccess>(
        &mut self,
        regs: &mut A,
        handler: ExitHandler,
        esr: Esr,
        exit_code: &mut ExitCode,
    ) -> bool;
}

/// `synchronize_vcpu_pstate()`: the erratum 2077057 rewrite of SPSR_EL2, then
/// the guest's PSTATE saved from SPSR_EL2.
fn synchronize_vcpu_pstate<C: FixupContext, A: RegAccess>(
    ctx: &mut C,
    regs: &mut A,
    caps: FixupCaps,
) {
    // The C's `&&` in its order: ESR_EL2 is read only when the rest holds.
    if caps.workaround_2077057
        && ctx.singlestep()
        && ctx.pstate().field(SPSR_EL2::SS) != 0
        && Esr::new(regs.read::<ESR_EL2::Reg>()).ec_raw() == Ec::PAC as u64
    {
        // SPSR_EL2 cannot be trusted, but is the value of the last entry.
        regs.write(ctx.pstate());
    }

    let spsr = regs.read::<SPSR_EL2::Reg>();
    ctx.set_pstate(spsr);
}

/// `__fixup_guest_exit()` with `hyp_exit_handlers[]`.
fn fixup_exit_code<C: FixupContext, A: RegAccess>(
    ctx: &mut C,
    regs: &mut A,
    caps: FixupCaps,
    mut exit_code: ExitCode,
) -> Fixup {
    // The syndrome, unless the exit is an interrupt: `Some` exactly when
    // vcpu->arch.fault.esr_el2 was set here.
    let esr = if exit_code.code() != ExitCode::IRQ {
        let esr = Esr::new(regs.read::<ESR_EL2::Reg>());
        ctx.set_fault_esr(esr);
        Some(esr)
    } else {
        None
    };

    // An SError to inject, after an HVC: resume at the HVC itself.
    if exit_code.serror_pending() {
        if let Some(esr) = esr {
            if is_hvc(esr) {
                let elr = regs.read::<ELR_EL2::Reg>().raw();
                // C's u64 arithmetic: modulo 2^64.
                regs.write(Value::<ELR_EL2::Reg>::from_raw(
                    elr.wrapping_sub(HVC_ADJUSTED_PC),
                ));
            }
        }
    }

    // The raw exit code: only a trap without a pending SError is handled here.
    if exit_code != ExitCode::TRAP {
        return Fixup::Exit(exit_code);
    }
    // A trap is no interrupt: its syndrome was read above.
    let Some(esr) = esr else {
        return Fixup::Exit(exit_code);
    };
    let Some(handler) = handler_for(esr) else {
        return Fixup::Exit(exit_code);
    };
    if !ctx.handle_exit(regs, handler, esr, &mut exit_code) {
        return Fixup::Exit(exit_code);
    }

    // asm(ALTERNATIVE("nop", "dmb sy", ARM64_WORKAROUND_1508412)).
    if caps.workaround_1508412 {
        regs.dmb_sy();
    }
    Fixup::ReEnter
}

/// `fixup_guest_exit()` for a non-nested vCPU, after `__guest_enter()`
/// returned `exit_code`: the guest's PSTATE saved, the syndrome saved, the PC
/// of an HVC moved back if an SError is to be injected, a plain trap offered
/// to its exit handler. Every exception masked, the guest's registers still
/// on the CPU.
pub fn fixup_guest_exit<C: FixupContext, A: RegAccess>(
    ctx: &mut C,
    regs: &mut A,
    exit_code: ExitCode,
) -> Fixup {
    let caps = ctx.fixup_caps();
    synchronize_vcpu_pstate(ctx, regs, caps);
    // The nested PSTATE rewrite (vcpu_has_nv(vcpu) && HCR_EL2.NV) has nothing
    // to do for a non-nested vCPU.
    fixup_exit_code(ctx, regs, caps, exit_code)
}
