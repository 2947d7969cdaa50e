// SPDX-License-Identifier: GPL-2.0

//! The run path over the kernel: [`vcpu_run`], the `vcpu_run` step that
//! replaces `__kvm_vcpu_run_vhe()`, and [`Step`]'s implementation of every
//! context trait `crate::world::run::run` and the exit handlers need.
//!
//! Hostile ground: `__kvm_vcpu_run()` calls the step in the no-instrumentation
//! window of `kvm_arm_vcpu_enter_exit()` (`guest_state_enter_irqoff()` to
//! `guest_state_exit_irqoff()`), every exception masked (DAIF), RCU not
//! watching; from the first `__guest_enter()` on, this CPU's hyp vectors are
//! in VBAR_EL2. Nothing reachable from here may print, allocate, lock, trace,
//! be instrumented or panic: `tools/noinstr-check` reads the module's
//! disassembly from [`vcpu_run`]'s adapter and fails the build's checks if it
//! finds any of that. A bug found here is counted, never WARNed
//! ([`Stat::RunFpIllegal`]).
//!
//! What stays C is called through `backend.c`'s wrappers of the symbols it
//! looked up at init: `__guest_enter()` (asm), `__kvm_adjust_pc()`, the FP/SVE
//! loads (`hyp/fpsimd.S`), the GIC
//! CPU interface emulation, `kvm_vhe_populate_fault_info()`,
//! `kvm_skip_instr32()`.

use super::glue::{self, Cap, Stat};
use super::percpu::{CpuOffset, PerCpu};
use super::step::Step;
use super::vcpu::{Vcpu, DEBUG_DIRTY};
use crate::arch::{
    Cpu, Esr, RegAccess, Value, CNTP_CVAL_EL02, CPACR_EL1, ELR_EL2, FPEXC32_EL2, FPMR, HCR_EL2,
    MDCCINT_EL1, SPSR_EL2, VBAR_EL1, VSESR_EL2, ZCR_EL12,
};
use crate::world::debug::{self, DbgKind, DbgOwner, DebugContext, MAX_DBG_REGS};
use crate::world::entry_traps::{EntryTrapCaps, EntryTrapContext, PhysTimer, TimerMap};
use crate::world::exits::ExitHandler;
use crate::world::fixup::{ExitCode, FixupCaps, FixupContext};
use crate::world::fp::{FpHypContext, FpOwner};
use crate::world::handlers::{self, CpuifAccess, HandlerCaps, HandlerContext};
use crate::world::run::{self, RunContext};
use crate::world::sysreg_sr::El2ReturnContext;
use core::ffi::c_int;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::bindings;

/// `kvm_hyp_vector`: this CPU's hyp vectors (per CPU, the kernel's).
static HYP_VECTOR: PerCpu<u64> = PerCpu::new();

/// `this_cpu_vector`: this CPU's host vectors (per CPU, the kernel's).
static THIS_CPU_VECTOR: PerCpu<u64> = PerCpu::new();

/// The address of `vectors`, the host's vectors with KPTI.
static VECTORS: AtomicU64 = AtomicU64::new(0);

/// Takes the vector addresses `backend.c` looked up. Called at registration,
/// before KVM can call any step.
pub(crate) fn set_vectors() {
    // SAFETY: the glue answers addresses its init looked up; no side effect.
    let (hyp, host, vectors) = unsafe {
        (
            glue::vhe_rs_percpu_hyp_vector(),
            glue::vhe_rs_percpu_this_cpu_vector(),
            glue::vhe_rs_vectors(),
        )
    };
    // SAFETY: the kernel's per-CPU `kvm_hyp_vector` (`unsigned long`), which
    // outlives the module; no step runs yet.
    unsafe { HYP_VECTOR.set(hyp as usize) };
    // SAFETY: the kernel's per-CPU `this_cpu_vector` (`const char *`, 64 bits),
    // which outlives the module; no step runs yet.
    unsafe { THIS_CPU_VECTOR.set(host as usize) };
    VECTORS.store(vectors, Ordering::Relaxed);
}

/// This CPU's instance of a per-CPU vector address.
#[inline(always)]
fn percpu_read(var: &PerCpu<u64>, cpu: CpuOffset) -> u64 {
    // SAFETY: the kernel's per-CPU variable, set up for every possible CPU
    // and outliving the module (`PerCpu` invariant); `cpu` is this CPU's, the
    // value written once at boot (hyp vectors) or at CPU bring-up.
    unsafe { var.on(cpu).read() }
}

impl El2ReturnContext for Step<'_> {
    #[inline(always)]
    fn pc(&self) -> Value<ELR_EL2::Reg> {
        Value::from_raw(self.vcpu().pc())
    }

    #[inline(always)]
    fn set_pc(&mut self, val: Value<ELR_EL2::Reg>) {
        self.vcpu().set_pc(val.raw())
    }

    #[inline(always)]
    fn pstate(&self) -> Value<SPSR_EL2::Reg> {
        Value::from_raw(self.vcpu().pstate())
    }

    #[inline(always)]
    fn set_pstate(&mut self, val: Value<SPSR_EL2::Reg>) {
        self.vcpu().set_pstate(val.raw())
    }
}

impl FpHypContext for Step<'_> {
    #[inline(always)]
    fn enable_guest_fp(&mut self, sve: bool) {
        // cpacr_clear_set(0, CPACR_ELx_FPEN | CPACR_ELx_ZEN (with SVE)); isb().
        let mut regs = self.regs();
        let v = regs.read::<CPACR_EL1::Reg>().with(CPACR_EL1::FPEN::SET);
        let v = if sve { v.with(CPACR_EL1::ZEN::SET) } else { v };
        regs.write(v);
        regs.isb();
    }

    #[inline(always)]
    fn load_guest_regs(&mut self, sve: bool) {
        let vcpu = self.vcpu().as_ptr();
        // SAFETY: the hyp/fpsimd.S loads of the live vCPU's own FP or SVE
        // state (at the VL ZCR_EL2 holds: the vCPU's maximum, which the
        // caller set), into this CPU's registers, whose traps the caller lifted.
        unsafe {
            if sve {
                glue::vhe_rs_sve_restore_guest(vcpu)
            } else {
                glue::vhe_rs_fpsimd_restore_guest(vcpu)
            }
        }
        if self.has_fpmr() {
            let fpmr = self
                .vcpu()
                .ctxt()
                .read_sys_reg(bindings::vcpu_sysreg_FPMR as usize);
            self.regs().write_raw::<FPMR::Reg>(fpmr);
        }
    }

    #[inline(always)]
    fn vcpu_sve_max_vq(&self) -> u64 {
        self.vcpu().sve_max_vq()
    }

    #[inline(always)]
    fn vcpu_zcr_el1(&self) -> Value<ZCR_EL12::Reg> {
        Value::from_raw(
            self.vcpu()
                .ctxt()
                .read_sys_reg(bindings::vcpu_sysreg_ZCR_EL1 as usize),
        )
    }

    #[inline(always)]
    fn set_vcpu_zcr_el1(&mut self, val: Value<ZCR_EL12::Reg>) {
        self.vcpu()
            .ctxt()
            .write_sys_reg(bindings::vcpu_sysreg_ZCR_EL1 as usize, val.raw())
    }
}

impl EntryTrapContext for Step<'_> {
    #[inline(always)]
    fn entry_trap_caps(&self) -> EntryTrapCaps {
        EntryTrapCaps {
            cavium_tx2_219_tvm: self.has_cap(Cap::CaviumTx2_219Tvm),
            ras: self.has_cap(Cap::Ras),
            cntpoff: self.has_cap(Cap::Cntpoff),
            speculative_at: self.has_cap(Cap::SpeculativeAt),
            kernel_unmapped_at_el0: self.has_cap(Cap::UnmapKernelAtEl0),
            fpsimd: self.has_cap(Cap::Fpsimd),
            sme: self.has_cap(Cap::Sme),
        }
    }

    #[inline(always)]
    fn vcpu_hcr_el2(&self) -> Value<HCR_EL2::Reg> {
        Value::from_raw(self.vcpu().hcr_el2())
    }

    #[inline(always)]
    fn set_vcpu_hcr_el2(&mut self, val: Value<HCR_EL2::Reg>) {
        self.vcpu().set_hcr_el2(val.raw())
    }

    #[inline(always)]
    fn vcpu_vsesr_el2(&self) -> Value<VSESR_EL2::Reg> {
        Value::from_raw(self.vcpu().vsesr_el2())
    }

    #[inline(always)]
    fn fp_owner(&self) -> FpOwner {
        self.host().fp_owner()
    }

    #[inline(always)]
    fn guest_has_sve(&self) -> bool {
        self.has_sve()
    }

    /// Nested VMs never reach the backend: `get_timer_map()`'s non-nested
    /// VHE branch.
    #[inline(always)]
    fn timer_map(&self) -> TimerMap {
        TimerMap::NON_NESTED_VHE
    }

    #[inline(always)]
    fn ptimer_cval(&self, timer: PhysTimer) -> Value<CNTP_CVAL_EL02::Reg> {
        Value::from_raw(self.vcpu().ctxt().read_sys_reg(cval_slot(timer)))
    }

    #[inline(always)]
    fn set_ptimer_cval(&mut self, timer: PhysTimer, val: Value<CNTP_CVAL_EL02::Reg>) {
        self.vcpu()
            .ctxt()
            .write_sys_reg(cval_slot(timer), val.raw())
    }

    #[inline(always)]
    fn hyp_vector(&self) -> Value<VBAR_EL1::Reg> {
        Value::from_raw(percpu_read(&HYP_VECTOR, self.cpu()))
    }

    #[inline(always)]
    fn kernel_vectors(&self) -> Value<VBAR_EL1::Reg> {
        Value::from_raw(VECTORS.load(Ordering::Relaxed))
    }

    #[inline(always)]
    fn this_cpu_vector(&self) -> Value<VBAR_EL1::Reg> {
        Value::from_raw(percpu_read(&THIS_CPU_VECTOR, self.cpu()))
    }
}

/// The `sys_regs[]` slot of `timer`'s compare value.
#[inline(always)]
const fn cval_slot(timer: PhysTimer) -> usize {
    (match timer {
        PhysTimer::Ptimer => bindings::vcpu_sysreg_CNTP_CVAL_EL0,
        PhysTimer::Hptimer => bindings::vcpu_sysreg_CNTHP_CVAL_EL2,
    }) as usize
}

impl FixupContext for Step<'_> {
    #[inline(always)]
    fn fixup_caps(&self) -> FixupCaps {
        FixupCaps {
            workaround_2077057: self.has_cap(Cap::Erratum2077057),
            workaround_1508412: self.has_cap(Cap::Erratum1508412),
        }
    }

    #[inline(always)]
    fn singlestep(&self) -> bool {
        self.vcpu().guest_debug() & bindings::KVM_GUESTDBG_SINGLESTEP as usize != 0
    }

    #[inline(always)]
    fn set_fault_esr(&mut self, esr: Esr) {
        self.vcpu().set_fault_esr(esr.value().raw())
    }

    #[inline(always)]
    fn handle_exit<A: RegAccess>(
        &mut self,
        regs: &mut A,
        handler: ExitHandler,
        esr: Esr,
        exit_code: &mut ExitCode,
    ) -> bool {
        let handled = handlers::handle(self, regs, handler, esr, exit_code);
        if handled {
            self.count_exit(esr.ec_raw(), true);
        }
        handled
    }
}

impl HandlerContext for Step<'_> {
    #[inline(always)]
    fn handler_caps(&self) -> HandlerCaps {
        HandlerCaps {
            fpsimd: self.has_cap(Cap::Fpsimd),
            ecv: self.has_cap(Cap::Ecv),
            vgic_v2_cpuif_trap: self.has_cap(Cap::VgicV2CpuifTrap),
            vgic_v3_cpuif_trap: self.has_cap(Cap::VgicV3CpuifTrap),
            cavium_tx2_219_tvm: self.has_cap(Cap::CaviumTx2_219Tvm),
            ampere_ac03_cpu_38: self.has_cap(Cap::AmpereAc03Cpu38),
        }
    }

    #[inline(always)]
    fn gpr(&self, n: u64) -> u64 {
        // vcpu_get_reg(): register 31 is XZR.
        if n >= 31 {
            0
        } else {
            self.vcpu().pt_reg(n)
        }
    }

    #[inline(always)]
    fn set_gpr(&mut self, n: u64, val: u64) {
        // vcpu_set_reg(): a write to XZR is dropped.
        if n < 31 {
            self.vcpu().set_pt_reg(n, val)
        }
    }

    #[inline(always)]
    fn pt_reg(&self, n: u64) -> u64 {
        self.vcpu().pt_reg(n)
    }

    #[inline(always)]
    fn set_pt_reg(&mut self, n: u64, val: u64) {
        self.vcpu().set_pt_reg(n, val)
    }

    #[inline(always)]
    fn vcpu_fpexc32(&self) -> Value<FPEXC32_EL2::Reg> {
        Value::from_raw(
            self.vcpu()
                .ctxt()
                .read_sys_reg(bindings::vcpu_sysreg_FPEXC32_EL2 as usize),
        )
    }

    #[inline(always)]
    fn ptimer_offsets(&self) -> (u64, u64) {
        self.vcpu().ptimer_offsets()
    }

    #[inline(always)]
    fn vgic_v3_cpuif_access(&mut self) -> CpuifAccess {
        // SAFETY: the kernel's hyp-side GICv3 CPU interface emulation, on the
        // live vCPU this run is for, from the exit handlers as the C calls it.
        CpuifAccess::from_c(unsafe { glue::vhe_rs_vgic_v3_cpuif_access(self.vcpu().as_ptr()) })
    }

    #[inline(always)]
    fn vgic_v2_cpuif_access(&mut self) -> CpuifAccess {
        // SAFETY: as for the GICv3 one.
        CpuifAccess::from_c(unsafe { glue::vhe_rs_vgic_v2_cpuif_access(self.vcpu().as_ptr()) })
    }

    #[inline(always)]
    fn populate_fault_info(&mut self) -> bool {
        // SAFETY: `__populate_fault_info()` through the series' wrapper: reads
        // FAR_EL2/HPFAR_EL2 (an `AT` whose fault the kernel's exception table
        // fixes up) into the live vCPU's `fault`.
        unsafe { glue::vhe_rs_populate_fault_info(self.vcpu().as_ptr()) }
    }

    #[inline(always)]
    fn skip_instr32(&mut self) {
        // SAFETY: `kvm_skip_instr32()` steps the live vCPU's saved PC and
        // PSTATE over an AArch32 instruction (IT state included).
        unsafe { glue::vhe_rs_skip_instr32(self.vcpu().as_ptr()) }
    }
}

const _: () = assert!(MAX_DBG_REGS == bindings::KVM_ARM_MAX_DBG_REGS as usize);

impl DebugContext for Step<'_> {
    #[inline(always)]
    fn debug_dirty(&self) -> bool {
        self.vcpu().flag(DEBUG_DIRTY)
    }

    #[inline(always)]
    fn clear_debug_dirty(&mut self) {
        self.vcpu().set_flag(DEBUG_DIRTY, false)
    }

    #[inline(always)]
    fn dbg(&self, owner: DbgOwner, kind: DbgKind, n: usize) -> u64 {
        let p = self.debug_arch(owner);
        // SAFETY: the host's per-CPU debug state, or the vCPU's `debug_ptr`
        // (its own or the VMM's state, which KVM keeps valid while the vCPU
        // runs); the index is checked.
        unsafe { debug_array(p, kind).get(n).copied().unwrap_or(0) }
    }

    #[inline(always)]
    fn set_dbg(&mut self, owner: DbgOwner, kind: DbgKind, n: usize, val: u64) {
        let p = self.debug_arch(owner);
        // SAFETY: as for `dbg`; this CPU's or this thread's vCPU's state.
        if let Some(r) = unsafe { debug_array(p, kind).get_mut(n) } {
            *r = val;
        }
    }

    #[inline(always)]
    fn mdccint(&self, owner: DbgOwner) -> Value<MDCCINT_EL1::Reg> {
        let i = bindings::vcpu_sysreg_MDCCINT_EL1 as usize;
        Value::from_raw(match owner {
            DbgOwner::Host => self.host().host_ctxt().read_sys_reg(i),
            DbgOwner::Guest => self.vcpu().ctxt().read_sys_reg(i),
        })
    }

    #[inline(always)]
    fn set_mdccint(&mut self, owner: DbgOwner, val: Value<MDCCINT_EL1::Reg>) {
        let i = bindings::vcpu_sysreg_MDCCINT_EL1 as usize;
        match owner {
            DbgOwner::Host => self.host().host_ctxt().write_sys_reg(i, val.raw()),
            DbgOwner::Guest => self.vcpu().ctxt().write_sys_reg(i, val.raw()),
        }
    }
}

impl Step<'_> {
    /// `owner`'s `struct kvm_guest_debug_arch`.
    #[inline(always)]
    fn debug_arch(&self, owner: DbgOwner) -> *mut bindings::kvm_guest_debug_arch {
        match owner {
            DbgOwner::Host => self.host().debug_regs(),
            DbgOwner::Guest => self.vcpu().debug_ptr(),
        }
    }
}

/// The array of `kind` in the debug state at `p`.
///
/// # Safety
///
/// `p` points to a live `struct kvm_guest_debug_arch` that nothing else
/// accesses for `'a`.
#[inline(always)]
unsafe fn debug_array<'a>(
    p: *mut bindings::kvm_guest_debug_arch,
    kind: DbgKind,
) -> &'a mut [u64; MAX_DBG_REGS] {
    // SAFETY: the caller's contract.
    let d = unsafe { &mut *p };
    match kind {
        DbgKind::Bcr => &mut d.dbg_bcr,
        DbgKind::Bvr => &mut d.dbg_bvr,
        DbgKind::Wcr => &mut d.dbg_wcr,
        DbgKind::Wvr => &mut d.dbg_wvr,
    }
}

impl RunContext for Step<'_> {
    #[inline(always)]
    fn adjust_pc(&mut self) {
        // SAFETY: `__kvm_adjust_pc()` on the live vCPU being run, before its
        // PC and PSTATE go to ELR_EL2 and SPSR_EL2, as the C calls it.
        unsafe { glue::vhe_rs_adjust_pc(self.vcpu().as_ptr()) }
    }

    #[inline(always)]
    fn debug_switch_to_guest(&mut self) {
        let mut regs = self.regs();
        if debug::switch_to_guest(self, &mut regs) {
            self.count(Stat::DebugSwitched);
        }
    }

    #[inline(always)]
    fn debug_switch_to_host(&mut self) {
        let mut regs = self.regs();
        debug::switch_to_host(self, &mut regs)
    }

    #[inline(always)]
    fn guest_enter(&mut self) -> u64 {
        let vcpu = self.vcpu().as_ptr();
        // SAFETY: `__guest_enter()` (hyp/entry.S) on the live vCPU: the guest's
        // state is on the CPU (the run script's steps before the loop),
        // HCR_EL2 and VBAR_EL2 are the guest's and every exception is masked;
        // it saves the host's callee-saved registers in this CPU's host
        // context and returns through the hyp vectors' `__guest_exit`.
        let exit = unsafe { glue::vhe_rs_guest_enter(vcpu) };
        // The deliberately broken build's fault, after the guest's first exit
        // (through the hyp vectors): `tools/hyp-panic-test`.
        #[cfg(vhe_rs_break_hyp)]
        break_hyp();
        exit
    }

    #[inline(always)]
    fn set_vcpu_fpexc32(&mut self, val: Value<FPEXC32_EL2::Reg>) {
        self.vcpu()
            .ctxt()
            .write_sys_reg(bindings::vcpu_sysreg_FPEXC32_EL2 as usize, val.raw())
    }
}

/// The `vcpu_run` step: `__kvm_vcpu_run_vhe(vcpu)` for a vCPU of a VM the
/// backend runs. Returns the exit code as the C's `int` (its low 32 bits).
#[inline(always)]
pub(crate) fn vcpu_run(vcpu: &Vcpu) -> c_int {
    // SAFETY: KVM runs this step on `vcpu`, at EL2 on a VHE host, with every
    // exception masked until it returns (`__kvm_vcpu_run()`).
    let mut c = unsafe { Step::for_run(vcpu) };
    // SAFETY: a step is running, which owns the registers it moves.
    let mut regs = unsafe { Cpu::current() };
    // `__guest_exit` finds the vCPU through `host_ctxt->__hyp_running_vcpu`,
    // which `vcpu_load` set (`kvm_vcpu_load_vhe()` in the C, since 6.8). If it
    // is not this vCPU, this CPU was not loaded with it: its EL1 registers,
    // stage 2 and load-time traps may be another VM's or the host's, and an
    // exit would save the guest's registers through another vCPU's pointer, or
    // fault at EL2 on NULL and loop there (`__guest_exit_panic` falls through
    // into `__guest_exit` while `kvm_hyp_ctxt` has a running vCPU). Do not
    // enter: answer as for an illegal exception return, which `handle_exit()`
    // turns into `KVM_EXIT_FAIL_ENTRY` and -EINVAL for the VMM, and count it,
    // a bug (the run path cannot WARN).
    if !c.host().running_vcpu_is(vcpu) {
        c.count(Stat::RunNotLoaded);
        return ExitCode::IL.raw() as c_int;
    }
    let exit = run::run(&mut c, &mut regs);

    // Every run counted once, by how it ended (debugfs adds them up into
    // `vcpu_run`; with the exits dealt with at EL2, into `guest_enter`).
    let code = exit.code();
    if exit == ExitCode::TRAP {
        let ec = Esr::new(Value::from_raw(vcpu.fault_esr())).ec_raw();
        c.count_exit(ec, false);
    } else if code == ExitCode::IRQ {
        c.count(Stat::ExitIrq);
    } else if code == ExitCode::EL1_SERROR || exit.serror_pending() {
        c.count(Stat::ExitSerror);
    } else if code == ExitCode::IL {
        c.count(Stat::ExitIl);
    } else {
        c.count(Stat::ExitOther);
    }
    // The C returns its u64 from a function returning int.
    exit.raw() as c_int
}

/// Where [`break_hyp`] loads from: bits \[55:48\] set, outside the input
/// range of every translation regime (a 48- or 52-bit VA), so that nothing can
/// map it and the load always faults (a translation fault, FAR this address).
#[cfg(vhe_rs_break_hyp)]
const BREAK_HYP_ADDRESS: usize = 0x00de_ad00_0000_0000;

/// The deliberately broken run path, only in the variant that
/// `tools/hyp-panic-test` builds with `KRUSTFLAGS='--cfg vhe_rs_break_hyp'`
/// into a directory of its own (never the shipped module, whose build does
/// not set the cfg): a data abort at EL2 in the run loop, with the guest's
/// traps on (`entry_traps::activate`) and the hyp vectors in VBAR_EL2, which
/// the guest's first exit came through. It must end as one in the C run path
/// does: `kvm_unexpected_el2_exception()`, `hyp_panic()` with
/// the vCPU from `host_ctxt->__hyp_running_vcpu` (which `vcpu_load` set), the
/// host's state restored, `panic("HYP panic: ...")` with ESR, FAR, PAR, the
/// vCPU.
#[cfg(vhe_rs_break_hyp)]
#[inline(always)]
fn break_hyp() {
    // SAFETY: not safe, on purpose: the load faults at EL2 and the kernel
    // panics. Only in the throw-away test build.
    unsafe { core::ptr::read_volatile(BREAK_HYP_ADDRESS as *const u64) };
}
