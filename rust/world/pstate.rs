// SPDX-License-Identifier: GPL-2.0

//! The PSTATE a guest is entered with: the vCPU's saved PSTATE as
//! `__sysreg_restore_el2_return_state()` (`arch/arm64/kvm/hyp/include/hyp/sysreg-sr.h`,
//! Linux 6.12) puts it in SPSR_EL2 before every entry, [`el2_return_spsr`].
//!
//! The saved PSTATE (`vcpu->arch.ctxt.regs.pstate`, in SPSR_EL2's layout) is
//! partly the guest's and the VMM's to choose, and the `eret` that enters the
//! guest runs at EL2: the C makes sure it can only lower the exception level.
//! Two steps, both pure functions of the saved value:
//!
//! 1. [`to_hw_pstate`] (`to_hw_pstate()`): the (virtual) EL2 modes of a nested
//!    guest hypervisor become the EL1 modes it really runs in, EL2t to EL1t and
//!    EL2h to EL1h, every other bit kept. The C does this for every vCPU,
//!    nested or not. For a non-nested vCPU it changes nothing in practice: its
//!    PSTATE never holds an EL2 mode (KVM_SET_ONE_REG refuses EL2t/EL2h without
//!    `vcpu_has_nv()`, `set_core_reg()` in `arch/arm64/kvm/guest.c`; the guest
//!    cannot raise its own exception level, so the PSTATE saved at an exit is
//!    at EL1 or EL0; the exceptions KVM injects enter EL1), so on the values it can
//!    hold this step is the identity. As a function it is not, and it is kept
//!    here so that the result is the C's for every input.
//! 2. [`sanitise_return_mode`]: an AArch64 mode at EL2 or above that is left
//!    (EL2 with the reserved M\[1\] set, EL3) is replaced by the whole value
//!    `PSR_MODE_EL2h | PSR_IL_BIT`: the `eret` then goes to EL2h with
//!    PSTATE.IL set, which takes an Illegal Execution State exception at once;
//!    the hyp vectors see SPSR_EL2.IL and turn it into an `ARM_EXCEPTION_IL`
//!    exit (`el2_sync` in `arch/arm64/kvm/hyp/hyp-entry.S`). AArch32 modes are
//!    left alone: an exception return to AArch32 Hyp, or to any reserved mode,
//!    is an illegal exception return, which the CPU itself turns into the same
//!    immediate Illegal Execution State exception.
//!
//! Every constant is the kernel's (`asm/ptrace.h` through `rust/gen/sysregs.in`).
//! No `unsafe`, no register access: the run path writes the result to SPSR_EL2.

use crate::arch::{consts, Value, SPSR_EL2};

/// The bits of PSTATE.M the C's mode checks look at (`PSR_MODE_MASK |
/// PSR_MODE32_BIT`).
const MODE_BITS: u64 = consts::PSR_MODE_MASK | consts::PSR_MODE32_BIT;

/// `to_hw_pstate()`: `pstate` with an EL2t or EL2h mode (AArch64) turned into
/// EL1t or EL1h; every other value unchanged.
pub const fn to_hw_pstate(pstate: u64) -> u64 {
    let mode = pstate & MODE_BITS;
    let mode = if mode == consts::PSR_MODE_EL2T {
        consts::PSR_MODE_EL1T
    } else if mode == consts::PSR_MODE_EL2H {
        consts::PSR_MODE_EL1H
    } else {
        mode
    };
    (pstate & !MODE_BITS) | mode
}

/// The safety check of `__sysreg_restore_el2_return_state()`: `pstate`, unless
/// its mode is AArch64 at EL2 or above, which becomes `PSR_MODE_EL2h |
/// PSR_IL_BIT` (every other bit dropped).
pub const fn sanitise_return_mode(pstate: u64) -> u64 {
    let mode = pstate & consts::PSR_AA32_MODE_MASK;
    if mode & consts::PSR_MODE32_BIT == 0 && mode >= consts::PSR_MODE_EL2T {
        consts::PSR_MODE_EL2H | consts::PSR_IL_BIT
    } else {
        pstate
    }
}

/// What `__sysreg_restore_el2_return_state()` writes to SPSR_EL2 for the saved
/// PSTATE `pstate`: [`to_hw_pstate`], then [`sanitise_return_mode`].
pub const fn el2_return_spsr(pstate: u64) -> Value<SPSR_EL2::Reg> {
    Value::from_raw(sanitise_return_mode(to_hw_pstate(pstate)))
}
