// SPDX-License-Identifier: GPL-2.0

//! [`Step`]: the one context every step of the backend runs in, implementing
//! each context trait of `crate::world` over the kernel's state.

use super::glue::{self, Cap, Stat};
use super::host_data::HostData;
use super::percpu::CpuOffset;
use super::stats::{self, PerCpuRun};
use super::task::Task;
use super::vcpu::{
    Vcpu, VcpuFacts, VcpuFlag, DBG_SS_ACTIVE_PENDING, DEBUG_DIRTY, PMUSERENR_ON_CPU,
    SYSREGS_ON_CPU, SYS_REGS_LEN,
};
use crate::arch::{Cpu, Value, HCRX_EL2, MDCR_EL2, OSLSR_EL1};
use crate::world::debug_state::{DebugFlag, DebugSource, DebugStateContext, GuestDebug, Preserved};
use crate::world::fp::{FpContext, FpIllegal, FpOwner};
use crate::world::loadput::LoadContext;
use crate::world::stage2::{Stage2, Stage2Context};
use crate::world::sysreg_sr::{Features, SysregContext, VcpuSlot, VcpuSysReg};
use crate::world::traps::{FgtGroup, FgtReg, HostSaved, TrapCaps, TrapContext};
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};
use kernel::bindings;

/// Whether the host has the capability `cap`, asked of the kernel.
fn cap(cap: Cap) -> bool {
    // SAFETY: `vhe_rs_cap` reads a final capability or a static key.
    unsafe { glue::vhe_rs_cap(cap as glue::vhe_rs_cap) }
}

/// The host's capabilities, read once at registration (before any step
/// runs), one bit per [`Cap`].
static CAPS: AtomicU32 = AtomicU32::new(0);

/// A step's capabilities not snapshotted (the steps that ask few read
/// [`CAPS`] when they ask; [`Step::read_caps`] snapshots them).
const CAPS_UNREAD: u32 = 1 << 31;
const _: () = assert!(Cap::COUNT < 31);

/// Reads the host's capabilities into [`CAPS`]. The PMU key
/// (`kvm_arm_pmu_available`) is only ever enabled (at PMU probe): if it is
/// not yet, [`Step::has_cap`] reads it again until it is.
pub(crate) fn read_caps() {
    // SAFETY: answers an address the glue's init looked up.
    PMU_KEY.store(
        unsafe { glue::vhe_rs_pmu_key() } as usize,
        Ordering::Relaxed,
    );
    let mut caps = 0;
    for c in Cap::ALL {
        if cap(*c) {
            caps |= 1 << *c as u32;
        }
    }
    CAPS.store(caps, Ordering::Relaxed);
}

/// The address of `kvm_arm_pmu_available` (a `struct static_key_false`),
/// from the glue at registration.
static PMU_KEY: AtomicUsize = AtomicUsize::new(0);

// `static_key_enabled()` is `atomic_read(&key->enabled) > 0`; `enabled` is the
// first member of `struct static_key`, itself the first of `static_key_false`.
const _: () = {
    assert!(core::mem::offset_of!(bindings::static_key_false, key) == 0);
    assert!(core::mem::offset_of!(bindings::static_key, enabled) == 0);
    assert!(core::mem::size_of::<bindings::atomic_t>() == core::mem::size_of::<AtomicI32>());
};

/// `kvm_arm_support_pmu_v3()`: `static_key_enabled(&kvm_arm_pmu_available)`,
/// read inline.
#[inline(always)]
fn pmu_key_enabled() -> bool {
    let key = PMU_KEY.load(Ordering::Relaxed) as *mut i32;
    if key.is_null() {
        return false;
    }
    // SAFETY: the kernel's key, which outlives the module (set at
    // registration, before any step); its count is an `atomic_t`, which the
    // kernel only changes atomically.
    unsafe { AtomicI32::from_ptr(key) }.load(Ordering::Relaxed) > 0
}

/// A step of the backend: the vCPU KVM passed, this CPU and its
/// `kvm_host_data`, and what the vCPU and host have.
///
/// # Invariants
///
/// `vcpu` is the vCPU of the step being run and `host` is the `kvm_host_data`
/// of the CPU it runs on (`cpu`), which it cannot leave until it returns.
/// `facts`, when set, are what the vCPU has ([`Step::for_load`] asks the
/// kernel, [`Step::for_loaded`] reads what `vcpu_load` recorded; otherwise
/// they are asked when needed). `run`, when set, is this CPU's run-path state.
/// `caps` is a snapshot of the capabilities, or `CAPS_UNREAD`. `in_run` is set
/// for the run path, which may not WARN.
pub(crate) struct Step<'a> {
    vcpu: &'a Vcpu,
    host: &'a HostData,
    cpu: CpuOffset,
    facts: Option<VcpuFacts>,
    run: Option<&'a PerCpuRun>,
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
            facts: None,
            run: None,
            in_run: false,
            caps: CAPS_UNREAD,
        }
    }

    /// Whether the host has `c`, from the capabilities the step read once
    /// when it began (a register test, where the C has a static branch); the
    /// PMU key, which may come on after registration, is read again while it
    /// is off.
    #[inline(always)]
    pub(crate) fn has_cap(&self, c: Cap) -> bool {
        let caps = if self.caps & CAPS_UNREAD != 0 {
            CAPS.load(Ordering::Relaxed)
        } else {
            self.caps
        };
        if caps & (1 << c as u32) != 0 {
            return true;
        }
        c == Cap::PmuV3 && pmu_key_enabled()
    }

    /// The context of `vcpu_load`, with what the vCPU has, asked of the
    /// kernel ([`Vcpu::facts`]).
    ///
    /// # Safety
    ///
    /// As for [`Step::new`].
    pub(crate) unsafe fn for_load(vcpu: &'a Vcpu) -> Self {
        // SAFETY: the caller's contract.
        let mut s = unsafe { Self::new(vcpu) };
        s.read_caps();
        s.facts = Some(vcpu.facts(s.has_cap(Cap::Ras)));
        s
    }

    /// Snapshots the capabilities: one load for a step that tests many.
    #[inline(always)]
    fn read_caps(&mut self) {
        // Masked: the compiler then knows every later test uses the snapshot.
        self.caps = CAPS.load(Ordering::Relaxed) & !CAPS_UNREAD;
    }

    /// The context of `vcpu_put` and of the run path (`vcpu_run`): what the
    /// vCPU has as its `vcpu_load` on this CPU recorded it
    /// ([`Step::record_loaded`]), or asked of the kernel if the load was the
    /// C's (`parts` with `run` but not `sysregs`).
    ///
    /// # Safety
    ///
    /// As for [`Step::new`].
    #[inline(always)]
    pub(crate) unsafe fn for_loaded(vcpu: &'a Vcpu) -> Self {
        // SAFETY: the caller's contract.
        let mut s = unsafe { Self::new(vcpu) };
        s.read_caps();
        let run = stats::cpu_run(s.cpu);
        s.run = Some(run);
        s.facts = Some(match run.loaded() {
            Some(facts) => facts,
            None => vcpu.facts(s.has_cap(Cap::Ras)),
        });
        s
    }

    /// [`Step::for_loaded`] for the run path, which may not WARN.
    ///
    /// # Safety
    ///
    /// As for [`Step::new`].
    #[inline(always)]
    pub(crate) unsafe fn for_run(vcpu: &'a Vcpu) -> Self {
        // SAFETY: the caller's contract.
        let mut s = unsafe { Self::for_loaded(vcpu) };
        s.in_run = true;
        s
    }

    /// What the step knows the vCPU has, or asks the kernel.
    #[inline(always)]
    fn facts(&self) -> VcpuFacts {
        match self.facts {
            Some(f) => f,
            None => self.vcpu.facts(self.has_cap(Cap::Ras)),
        }
    }

    /// Records, at `vcpu_load`, what [`Step::for_loaded`] reads until the
    /// `vcpu_put` ([`Step::forget_loaded`]): a VM's features are final once
    /// it has run, and the vCPU cannot leave this CPU in between.
    pub(crate) fn record_loaded(&self) {
        self.run_state().set_loaded(self.facts)
    }

    /// This CPU's run-path state.
    #[inline(always)]
    fn run_state(&self) -> &'a PerCpuRun {
        match self.run {
            Some(r) => r,
            None => stats::cpu_run(self.cpu),
        }
    }

    /// Counts an exit of class `ec`, dealt with at EL2 (`el2`) or returned
    /// to the host.
    #[inline(always)]
    pub(crate) fn count_exit(&self, ec: u64, el2: bool) {
        self.run_state().count_exit(ec, el2)
    }

    /// `kvm_has_fpmr()` of the vCPU's VM.
    #[inline(always)]
    pub(crate) fn has_fpmr(&self) -> bool {
        self.facts().fpmr
    }

    /// Whether this CPU has a vCPU loaded by this module: what
    /// [`Step::record_loaded`] set and [`Step::forget_loaded`] has not cleared.
    #[inline(always)]
    pub(crate) fn loaded_here(&self) -> bool {
        self.run_state().loaded().is_some()
    }

    /// At `vcpu_put`: nothing is loaded on this CPU any more.
    pub(crate) fn forget_loaded(&self) {
        self.run_state().set_loaded(None)
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
        self.facts().sve
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

    #[inline(always)]
    fn features(&self) -> Features {
        match self.facts {
            Some(f) => f.features,
            None => Features::NONE,
        }
    }

    fn set_sysregs_on_cpu(&mut self, on: bool) {
        self.vcpu.set_flag(SYSREGS_ON_CPU, on)
    }

    fn workaround_1508412(&self) -> bool {
        self.has_cap(Cap::Erratum1508412)
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
            pmu_v3: self.has_cap(Cap::PmuV3),
            fgt: self.has_cap(Cap::Fgt),
            hcx: self.has_cap(Cap::Hcx),
            ampere_ac03_cpu_38: self.has_cap(Cap::AmpereAc03Cpu38),
            speculative_at: self.has_cap(Cap::SpeculativeAt),
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
        self.vcpu.set_flag(PMUSERENR_ON_CPU, on)
    }
}

impl DebugStateContext for Step<'_> {
    #[inline(always)]
    fn guest_debug(&self) -> GuestDebug {
        GuestDebug {
            raw: self.vcpu.guest_debug() as u64,
            singlestep: u64::from(bindings::KVM_GUESTDBG_SINGLESTEP),
            use_hw: u64::from(bindings::KVM_GUESTDBG_USE_HW),
        }
    }

    #[inline(always)]
    fn oslsr(&self) -> Value<OSLSR_EL1::Reg> {
        Value::from_raw(
            self.vcpu
                .ctxt()
                .read_sys_reg(bindings::vcpu_sysreg_OSLSR_EL1 as usize),
        )
    }

    #[inline(always)]
    fn flag(&self, flag: DebugFlag) -> bool {
        self.vcpu.flag(debug_flag(flag))
    }

    #[inline(always)]
    fn set_flag(&mut self, flag: DebugFlag, on: bool) {
        self.vcpu.set_flag(debug_flag(flag), on)
    }

    #[inline(always)]
    fn sys_reg(&self, reg: VcpuSysReg) -> u64 {
        self.vcpu.ctxt().read(VcpuSlot::Sys(reg))
    }

    #[inline(always)]
    fn set_sys_reg(&mut self, reg: VcpuSysReg, val: u64) {
        self.vcpu.ctxt().write(VcpuSlot::Sys(reg), val)
    }

    #[inline(always)]
    fn pstate(&self) -> u64 {
        self.vcpu.pstate()
    }

    #[inline(always)]
    fn set_pstate(&mut self, val: u64) {
        self.vcpu.set_pstate(val)
    }

    fn preserved(&self) -> Preserved {
        self.vcpu.guest_debug_preserved()
    }

    fn set_preserved(&mut self, p: Preserved) {
        self.vcpu.set_guest_debug_preserved(p)
    }

    #[inline(always)]
    fn source(&self) -> DebugSource {
        self.vcpu.debug_source()
    }

    fn set_source(&mut self, source: DebugSource) {
        self.vcpu.set_debug_source(source)
    }

    #[inline(always)]
    fn vcpu_mdcr(&self) -> Value<MDCR_EL2::Reg> {
        self.vcpu.mdcr_el2()
    }

    #[inline(always)]
    fn set_vcpu_mdcr(&mut self, val: Value<MDCR_EL2::Reg>) {
        self.vcpu.set_mdcr_el2(val)
    }

    /// The host's MDCR_EL2 as `vcpu_load` saved it
    /// (`host_data->host_debug_state.mdcr_el2`): the C's per-CPU `mdcr_el2`
    /// of `debug.c` is static, and holds the same value (the host's MDCR_EL2
    /// is set at boot, `el2_setup.h`, and never written again on a VHE host;
    /// `kvm_arm_init_debug()` reads it at KVM's CPU init).
    #[inline(always)]
    fn host_mdcr(&self) -> Value<MDCR_EL2::Reg> {
        Value::from_raw(self.host.mdcr_el2())
    }
}

/// The vCPU flag of a [`DebugFlag`].
#[inline(always)]
const fn debug_flag(f: DebugFlag) -> VcpuFlag {
    match f {
        DebugFlag::Dirty => DEBUG_DIRTY,
        DebugFlag::SsActivePending => DBG_SS_ACTIVE_PENDING,
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

/// Runs `f` with IRQs disabled on this CPU (`local_irq_save`/`restore`),
/// inline where the kernel masks them through DAIF and traces nothing.
#[cfg(not(any(CONFIG_ARM64_PSEUDO_NMI, CONFIG_TRACE_IRQFLAGS)))]
#[inline(always)]
pub(crate) fn with_irqs_off<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the steps run in the kernel at EL2 (VHE), on a CPU they cannot
    // leave; DAIF is how this kernel masks IRQs (no pseudo-NMI), with no
    // IRQ-flag tracing to do; restored below, on the same CPU.
    let mut cpu = unsafe { Cpu::current() };
    // SAFETY: as above.
    let flags = unsafe { cpu.local_irq_save(u64::from(bindings::PSR_I_BIT)) };
    let r = f();
    // SAFETY: what `local_irq_save` returned, on this CPU.
    unsafe { cpu.local_irq_restore(flags) };
    r
}

/// Runs `f` with IRQs disabled on this CPU (`local_irq_save`/`restore`),
/// through the kernel's own functions (pseudo-NMI masks through the GIC's
/// PMR; IRQ-flag tracing has hooks to call).
#[cfg(any(CONFIG_ARM64_PSEUDO_NMI, CONFIG_TRACE_IRQFLAGS))]
pub(crate) fn with_irqs_off<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: disables IRQs on this CPU; restored below, on the same CPU (the
    // callers cannot migrate).
    let flags = unsafe { glue::vhe_rs_local_irq_save() };
    let r = f();
    // SAFETY: restores what `vhe_rs_local_irq_save` returned.
    unsafe { glue::vhe_rs_local_irq_restore(flags) };
    r
}
