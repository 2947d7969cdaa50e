// SPDX-License-Identifier: GPL-2.0

//! Loading the vCPU's stage-2 translation at `vcpu_load`: `__load_stage2()`
//! (`arch/arm64/kvm/hyp/include/hyp/switch.h`, `asm/kvm_mmu.h`, Linux 6.12) as
//! `kvm_vcpu_load_vhe()` calls it.

use crate::arch::{RegAccess, Value, VTCR_EL2, VTTBR_EL2};
use crate::world::traps::TrapContext;

/// The kernel state stage 2 is loaded from.
pub trait Stage2Context {
    /// The stage-2 translation of the vCPU's current MMU (`vcpu->arch.hw_mmu`):
    /// its VTCR_EL2 and VTTBR_EL2 (`kvm_get_vttbr()`: table base, VMID, CnP).
    fn stage2(&self) -> Stage2;
}

/// A stage-2 translation as the CPU takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2 {
    /// VTCR_EL2.
    pub vtcr: Value<VTCR_EL2::Reg>,
    /// VTTBR_EL2.
    pub vttbr: Value<VTTBR_EL2::Reg>,
}

/// `__load_stage2()`: the vCPU's stage-2 translation on the CPU, kept there
/// until put (the TLB maintenance of `vhe/tlb.c` relies on it).
pub fn load<C: Stage2Context + TrapContext, A: RegAccess>(ctx: &C, regs: &mut A) {
    let s2 = ctx.stage2();
    regs.write(s2.vtcr);
    regs.write(s2.vttbr);
    // Errata 1165522, 1319367 and 1530923: the stage-2 writes must have taken
    // effect before the guest's EL1&0 translation regime can be used (a
    // speculative AT could otherwise allocate TLB entries for the wrong VMID).
    if ctx.trap_caps().speculative_at {
        regs.isb();
    }
}
