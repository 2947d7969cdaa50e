// SPDX-License-Identifier: GPL-2.0

//! The exit handlers' kernel state on the model vCPU ([`super::vcpu::Vcpu`]):
//! [`HandlerContext`] over [`HandlerState`] (the guest's general-purpose
//! registers as `struct user_pt_regs` lays them out, the timer offsets, what
//! the C helpers the handlers call answer), each call recorded as a mark.

use vhe_rs_hosttest::arch::{Value, FPEXC32_EL2};
use vhe_rs_hosttest::world::handlers::{CpuifAccess, HandlerCaps, HandlerContext};
use vhe_rs_hosttest::world::sysreg_sr::El2ReturnContext;

use super::vcpu::{Mark, Vcpu};

/// The kernel state of the exit handlers.
#[derive(Clone, Debug)]
pub struct HandlerState {
    pub caps: HandlerCaps,
    /// `vcpu_gp_regs(vcpu)->regs[0..31]`, then `sp` (index 31).
    pub gp: [u64; 32],
    /// `*vcpu_ptimer(vcpu)->offset.vm_offset` and `.vcpu_offset` (0 for a
    /// NULL pointer).
    pub vm_offset: u64,
    pub vcpu_offset: u64,
    /// What `__vgic_v3_perform_cpuif_access()` and
    /// `__vgic_v2_perform_cpuif_access()` answer.
    pub v3: CpuifAccess,
    pub v2: CpuifAccess,
    /// What `__populate_fault_info()` answers.
    pub populate_ok: bool,
    /// What `kvm_skip_instr32()` adds to the PC (the model's stand-in for the
    /// kernel's IT-aware step: 2, so that it differs from the A64 step).
    pub skip32: u64,
    /// [`super::vcpu::Vcpu`]'s exit fixup runs the real handlers
    /// (`world::handlers::handle`) for an exit that has no scripted answer.
    pub real: bool,
}

impl Default for HandlerState {
    fn default() -> Self {
        HandlerState {
            caps: HandlerCaps::default(),
            gp: [0; 32],
            vm_offset: 0,
            vcpu_offset: 0,
            v3: CpuifAccess::NotHandled,
            v2: CpuifAccess::NotHandled,
            populate_ok: true,
            skip32: 2,
            real: false,
        }
    }
}

impl HandlerContext for Vcpu {
    fn handler_caps(&self) -> HandlerCaps {
        self.hs.caps
    }
    fn gpr(&self, n: u64) -> u64 {
        // vcpu_get_reg(): 31 is XZR.
        assert!(n < 32, "register number {n}");
        if n == 31 {
            0
        } else {
            self.hs.gp[n as usize]
        }
    }
    fn set_gpr(&mut self, n: u64, val: u64) {
        assert!(n < 32, "register number {n}");
        self.mark(Mark::SetGpr(n, val));
        // vcpu_set_reg(): a write to XZR is dropped.
        if n != 31 {
            self.hs.gp[n as usize] = val;
        }
    }
    fn pt_reg(&self, n: u64) -> u64 {
        self.hs.gp[usize::try_from(n).unwrap()]
    }
    fn set_pt_reg(&mut self, n: u64, val: u64) {
        self.mark(Mark::SetPtReg(n, val));
        self.hs.gp[usize::try_from(n).unwrap()] = val;
    }
    fn vcpu_fpexc32(&self) -> Value<FPEXC32_EL2::Reg> {
        Value::from_raw(self.run.fpexc32)
    }
    fn ptimer_offsets(&self) -> (u64, u64) {
        (self.hs.vm_offset, self.hs.vcpu_offset)
    }
    fn vgic_v3_cpuif_access(&mut self) -> CpuifAccess {
        self.mark(Mark::VgicV3CpuifAccess);
        self.hs.v3
    }
    fn vgic_v2_cpuif_access(&mut self) -> CpuifAccess {
        self.mark(Mark::VgicV2CpuifAccess);
        self.hs.v2
    }
    fn populate_fault_info(&mut self) -> bool {
        self.mark(Mark::PopulateFaultInfo);
        self.hs.populate_ok
    }
    fn skip_instr32(&mut self) {
        self.mark(Mark::SkipInstr32);
        let pc = self.pc().raw().wrapping_add(self.hs.skip32);
        self.set_pc(Value::from_raw(pc));
    }
}
