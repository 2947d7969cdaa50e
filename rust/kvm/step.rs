// SPDX-License-Identifier: GPL-2.0

//! [`Step`]: the one context every step of the backend runs in, implementing
//! each context trait of `crate::world` over the kernel's state.

use super::glue::{self, Cap, Stat};
use super::host_data::HostData;
use super::percpu::CpuOffset;
use super::stats;
use super::task::Task;
use super::vcpu::{Vcpu, SYS_REGS_LEN};
use crate::arch::{Cpu, Value, HCRX_EL2, MDCR_EL2};
use crate::world::fp::{FpContext, FpIllegal, FpOwner};
use crate::world::loadput::LoadContext;
use crate::world::stage2::{Stage2, Stage2Context};
use crate::world::sysreg_sr::{Features, SysregContext, VcpuSlot};
use crate::world::traps::{FgtGroup, FgtReg, HostSaved, TrapCaps, TrapContext};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::bindings;

/// Whether the host has the capability `cap`, asked of the kernel.
fn cap(cap: Cap) -> bool {
    // SAFETY: `vhe_rs_cap` reads a final capability or a static key.
    unsafe { glue::vhe_rs_cap(cap as glue::vhe_rs_cap) }
}

/// The host's capabilities, read once at registration (before any step
/// runs), one bit per [`Cap`].
static CAPS: AtomicU32 = AtomicU32::new(0);
const _: () = assert!(Cap::COUNT <= 32);

/// Reads the host's capabilities into [`CAPS`]. The PMU key
/// (`kvm_arm_pmu_available`) is only ever enabled (at PMU probe): if it is
/// not yet, [`host_cap`] asks again until it is.
pub(crate) fn read_caps() {
    let mut caps = 0;
    for c in Cap::ALL {
        if cap(*c) {
            caps |= 1 << *c as u32;
        }
    }
    CAPS.store(caps, Ordering::Relaxed);
}

/// Whether the host has `c`: the capabilities read at registration, which
/// come before any step. The PMU key may come on later (at PMU probe): that
/// one is asked again while it is off.
#[inline(always)]
pub(crate) fn host_cap(c: Cap) -> bool {
    let caps = CAPS.load(Ordering::Relaxed);
    if caps & (1 << c as u32) != 0 {
        return true;
    }
    // SAFETY: `vhe_rs_pmu_v3` reads the static key looked up at init.
    c == Cap::PmuV3 && unsafe { glue::vhe_rs_pmu_v3() }
}

/// A step of the backend: the vCPU KVM passed, this CPU and its
/// `kvm_host_data`, and what the vCPU and host have.
///
/// # Invariants
///
/// `vcpu` is the vCPU of the step being run and `host` is the `kvm_host_data`
/// of the CPU it runs on (`cpu`), which it cannot leave until it returns.
/// `features` are the vCPU's when made by [`Step::for_load`] or
/// [`Step::for_run`], none otherwise (only those steps read them); `sve`,
/// when known, is `vcpu_has_sve()`. `in_run` is set for the run path, which
/// may not WARN.
pub(crate) struct Step<'a> {
    vcpu: &'a Vcpu,
    host: &'a HostData,
    cpu: CpuOffset,
    features: Features,
    sve: Option<bool>,
    fpmr: Option<bool>,
    in_run: bool,
    caps: u32,
}

impl<'a> Step<'a> {
    /// The context of a step on `vcpu` that reads no vCPU features.
    ///
    /// # Safety
    ///
    /// Called from a step KVM runs on `vcpu`, at EL2 on a VHE host, with
    /// preemption or IRQs disabled until `'a` ends.
    #[inline(always)]
    pub(crate) unsafe fn new(vcpu: &'a Vcpu) -> Self {
        // SAFETY: the caller's contract.
        let cpu = unsafe { CpuOffset::this_cpu() };
        // INVARIANT: `host` is the instance of `cpu`, the step's CPU.
        Self {
            vcpu,
            host: HostData::on(cpu),
            cpu,
            features: Features::NONE,
            sve: None,
            fpmr: None,
            in_run: false,
            caps: CAPS.load(Ordering::Relaxed),
        }
    }

    /// Whether the host has `c` ([`host_cap`], from the capabilities the step
    /// read once when it began: a register test, where the C has a static
    /// branch).
    #[inline(always)]
    pub(crate) fn has_cap(&self, c: Cap) -> bool {
        if self.caps & (1 << c as u32) != 0 {
            return true;
        }
        // SAFETY: `vhe_rs_pmu_v3` reads the static key looked up at init.
        c == Cap::PmuV3 && unsafe { glue::vhe_rs_pmu_v3() }
    }

    /// The context of `vcpu_load`/`vcpu_put`, with the vCPU's features.
    ///
    /// # Safety
    ///
    /// As for [`Step::new`].
    pub(crate) unsafe fn for_load(vcpu: &'a Vcpu) -> Self {
        // SAFETY: the caller's contract.
        let mut s = unsafe { Self::new(vcpu) };
        s.features = vcpu.features(host_cap(Cap::Ras));
        s
    }

    /// The context of the run path (`vcpu_run`): the features and SVE of
    /// the vCPU as its `vcpu_load` on this CPU recorded them
    /// ([`Step::record_loaded`]), or asked of the kernel if the load was the
    /// C's (`parts` without `sysregs`).
    ///
    /// # Safety
    ///
    /// As for [`Step::new`].
    #[inline(always)]
    pub(crate) unsafe fn for_run(vcpu: &'a Vcpu) -> Self {
        // SAFETY: the caller's contract.
        let mut s = unsafe { Self::new(vcpu) };
        s.in_run = true;
        match stats::loaded(s.cpu) {
            Some(l) => {
                s.features = l.features;
                s.sve = Some(l.sve);
                s.fpmr = Some(l.fpmr);
            }
            None => {
                s.features = vcpu.features(host_cap(Cap::Ras));
                s.sve = Some(vcpu.has_sve());
            }
        }
        s
    }

    /// Records, at `vcpu_load`, what [`Step::for_run`] reads until the
    /// `vcpu_put` ([`Step::forget_loaded`]): a VM's features are final once
    /// it has run, and the vCPU cannot leave this CPU in between.
    pub(crate) fn record_loaded(&self) {
        stats::set_loaded(
            self.cpu,
            Some(stats::Loaded {
                features: self.features,
                sve: self.vcpu.has_sve(),
                fpmr: self.vcpu.has_fpmr(),
            }),
        )
    }

    /// `kvm_has_fpmr()` of the vCPU's VM, from what the step knows or asked
    /// of the kernel.
    #[inline(always)]
    pub(crate) fn has_fpmr(&self) -> bool {
        match self.fpmr {
            Some(f) => f,
            None => self.vcpu.has_fpmr(),
        }
    }

    /// At `vcpu_put`: nothing is loaded on this CPU any more.
    pub(crate) fn forget_loaded(&self) {
        stats::set_loaded(self.cpu, None)
    }

    /// The vCPU.
    #[inline(always)]
    pub(crate) fn vcpu(&self) -> &'a Vcpu {
        self.vcpu
    }

    /// This CPU's `kvm_host_data`.
    #[inline(always)]
    pub(crate) fn host(&self) -> &'a HostData {
        self.host
    }

    /// This CPU.
    #[inline(always)]
    pub(crate) fn cpu(&self) -> CpuOffset {
        self.cpu
    }

    /// This CPU's registers.
    #[inline(always)]
    pub(crate) fn regs(&self) -> Cpu {
        // SAFETY: a step exists, so it runs at EL2 on a VHE host and owns the
        // registers it moves until it returns (`Step` invariant).
        unsafe { Cpu::current() }
    }

    /// `vcpu_has_sve()`, from what the step knows or asked of the kernel.
    #[inline(always)]
    pub(crate) fn has_sve(&self) -> bool {
        match self.sve {
            Some(sve) => sve,
            None => self.vcpu.has_sve(),
        }
    }

    /// Counts `stat` on this CPU.
    #[inline(always)]
    pub(crate) fn count(&self, stat: Stat) {
        stats::count(self.cpu, stat)
    }
}

impl FpContext for Step<'_> {
    #[inline(always)]
    fn owner(&self) -> FpOwner {
        self.host.fp_owner()
    }

    #[inline(always)]
    fn set_owner(&mut self, owner: FpOwner) {
        self.host.set_fp_owner(owner)
    }

    fn save_and_flush_cpu_state(&mut self) {
        // SAFETY: the kernel's own save-and-invalidate of this CPU's FP state,
        // callable from task context with preemption or IRQs disabled.
        unsafe { glue::vhe_rs_save_and_flush_cpu_fp() }
    }

    fn bind_guest_state(&mut self) {
        self.vcpu.bind_guest_fp()
    }

    #[inline(always)]
    fn foreign_fpstate(&self) -> bool {
        Task::current().foreign_fpstate()
    }

    #[inline(always)]
    fn vcpu_has_sve(&self) -> bool {
        self.has_sve()
    }

    #[inline(always)]
    fn illegal(&mut self, _e: FpIllegal) {
        if self.in_run {
            // No WARN in the run path's no-instrumentation window.
            self.count(Stat::RunFpIllegal)
        } else {
            stats::report(Stat::FpIllegal)
        }
    }
}

impl SysregContext for Step<'_> {
    #[inline(always)]
    fn guest(&self, slot: VcpuSlot) -> u64 {
        self.vcpu.ctxt().read(slot)
    }

    #[inline(always)]
    fn set_guest(&mut self, slot: VcpuSlot, val: u64) {
        self.vcpu.ctxt().write(slot, val)
    }

    #[inline(always)]
    fn host(&self, slot: VcpuSlot) -> u64 {
        self.host.host_ctxt().read(slot)
    }

    #[inline(always)]
    fn set_host(&mut self, slot: VcpuSlot, val: u64) {
        self.host.host_ctxt().write(slot, val)
    }

    fn features(&self) -> Features {
        self.features
    }

    fn set_sysregs_on_cpu(&mut self, on: bool) {
        self.vcpu.set_sysregs_on_cpu(on)
    }

    fn workaround_1508412(&self) -> bool {
        host_cap(Cap::Erratum1508412)
    }
}

/// The `enum vcpu_sysreg` slot where the host context keeps `slot`'s value,
/// or `None` for MDCR_EL2 (kept in `host_debug_state`). Every slot is checked
/// at compile time to be inside `sys_regs[]` (below).
const fn host_saved_index(slot: HostSaved) -> Option<usize> {
    Some(match slot {
        HostSaved::Pmuserenr => bindings::vcpu_sysreg_PMUSERENR_EL0,
        HostSaved::MdcrEl2 => return None,
        HostSaved::Fgt(FgtReg::HFGRTR_EL2) => bindings::vcpu_sysreg_HFGRTR_EL2,
        HostSaved::Fgt(FgtReg::HFGWTR_EL2) => bindings::vcpu_sysreg_HFGWTR_EL2,
        HostSaved::Fgt(FgtReg::HFGITR_EL2) => bindings::vcpu_sysreg_HFGITR_EL2,
        HostSaved::Fgt(FgtReg::HDFGRTR_EL2) => bindings::vcpu_sysreg_HDFGRTR_EL2,
        HostSaved::Fgt(FgtReg::HDFGWTR_EL2) => bindings::vcpu_sysreg_HDFGWTR_EL2,
        HostSaved::Fgt(FgtReg::HAFGRTR_EL2) => bindings::vcpu_sysreg_HAFGRTR_EL2,
    } as usize)
}

const _: () = {
    let mut slots = [HostSaved::Pmuserenr; 1 + FgtReg::ALL.len()];
    let mut i = 0;
    while i < FgtReg::ALL.len() {
        slots[i + 1] = HostSaved::Fgt(FgtReg::ALL[i]);
        i += 1;
    }
    let mut i = 0;
    while i < slots.len() {
        if let Some(x) = host_saved_index(slots[i]) {
            assert!(
                x < SYS_REGS_LEN,
                "a host-saved slot is not inside sys_regs[]"
            );
        }
        i += 1;
    }
};

impl TrapContext for Step<'_> {
    fn trap_caps(&self) -> TrapCaps {
        TrapCaps {
            pmu_v3: host_cap(Cap::PmuV3),
            fgt: host_cap(Cap::Fgt),
            hcx: host_cap(Cap::Hcx),
            ampere_ac03_cpu_38: host_cap(Cap::AmpereAc03Cpu38),
            speculative_at: host_cap(Cap::SpeculativeAt),
        }
    }

    fn vcpu_mdcr_el2(&self) -> Value<MDCR_EL2::Reg> {
        self.vcpu.mdcr_el2()
    }

    fn vcpu_hcrx_el2(&self) -> Value<HCRX_EL2::Reg> {
        self.vcpu.hcrx_el2()
    }

    fn fgu(&self, group: FgtGroup) -> u64 {
        self.vcpu.fgu(group)
    }

    fn host_saved(&self, slot: HostSaved) -> u64 {
        match host_saved_index(slot) {
            None => self.host.mdcr_el2(),
            Some(i) => self.host.host_ctxt().read_sys_reg(i),
        }
    }

    fn set_host_saved(&mut self, slot: HostSaved, val: u64) {
        match host_saved_index(slot) {
            None => self.host.set_mdcr_el2(val),
            Some(i) => self.host.host_ctxt().write_sys_reg(i, val),
        }
    }

    fn set_pmuserenr_on_cpu(&mut self, on: bool) {
        self.vcpu.set_pmuserenr_on_cpu(on)
    }
}

impl Stage2Context for Step<'_> {
    fn stage2(&self) -> Stage2 {
        self.vcpu.stage2()
    }
}

impl LoadContext for Step<'_> {
    fn set_running_vcpu(&mut self, on: bool) {
        self.host.set_running_vcpu(on.then_some(self.vcpu))
    }

    fn with_irqs_off(&mut self, f: impl FnOnce(&mut Self)) {
        with_irqs_off(|| f(self))
    }
}

/// Runs `f` with IRQs disabled on this CPU (`local_irq_save`/`restore`).
pub(crate) fn with_irqs_off<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: disables IRQs on this CPU; restored below, on the same CPU (the
    // callers cannot migrate).
    let flags = unsafe { glue::vhe_rs_local_irq_save() };
    let r = f();
    // SAFETY: restores what `vhe_rs_local_irq_save` returned.
    unsafe { glue::vhe_rs_local_irq_restore(flags) };
    r
}
