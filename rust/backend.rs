// SPDX-License-Identifier: GPL-2.0

//! The binding layer: the backend's steps as KVM calls them, and the kernel state
//! they need, wrapped once. Raw pointers and `unsafe` stay in this file (and in
//! the sysreg layer); the decisions are in safe Rust ([`crate::fp`], [`parts`]).
//!
//! KVM (the hook patch, `asm/kvm_vhe_backend.h`) calls the `vhe_rs_*` functions
//! below through the ops table that `arch/arm64/glue/backend.c` registers.

use crate::fp::{self, FpContext, FpOwner};
use crate::loadput::{self, LoadContext};
use crate::sysreg::{Cpu, RegAccess, TPIDR_EL2};
use crate::sysregs::{Feature, Features, Spsr32, SysregContext, VcpuSlot};
use crate::traps::{FgtGroup, FgtReg, HostSaved, Stage2, TrapCaps, TrapContext};
use core::ptr::{addr_of_mut, null_mut};
use core::ffi::{c_char, c_uint, c_ulong, CStr};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::bindings;
use kernel::prelude::*;

/// Steps the Rust backend takes, from the `parts` module parameter.
pub(crate) mod parts {
    /// `fp`: FP/SIMD/SVE ownership (load, ctxflush, ctxsync, put).
    pub(crate) const FP: u32 = 1 << 0;

    /// `sysregs`: `vcpu_load`/`vcpu_put` (deferred sysregs, load-time traps,
    /// stage 2).
    pub(crate) const SYSREGS: u32 = 1 << 1;

    /// Every part, by name, with what this module implements.
    pub(crate) const ALL: &[(&str, u32, bool)] =
        &[("fp", FP, true), ("sysregs", SYSREGS, true), ("debug", 0, false), ("run", 0, false)];

    /// The implemented parts, for messages.
    pub(crate) const IMPLEMENTED: &str = "fp, sysregs";

    /// Parses `parts` ("fp,sysregs"): the mask, or the first name that is
    /// unknown or not implemented yet.
    pub(crate) fn parse(s: &str) -> Result<u32, &str> {
        let mut mask = 0;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match ALL.iter().find(|(n, _, _)| *n == name) {
                Some((_, bit, true)) => mask |= bit,
                _ => return Err(name),
            }
        }
        Ok(mask)
    }
}


/// Counters, as `enum vhe_rs_stat` in `arch/arm64/glue/glue.h`.
#[derive(Clone, Copy)]
#[repr(u32)]
#[allow(dead_code)]
pub(crate) enum Stat {
    VmRust = 0,
    VmCDisabled,
    VmCUnsupported,
    VmDestroyed,
    LoadFp,
    CtxflushFp,
    CtxflushForeign,
    CtxsyncFp,
    CtxsyncBind,
    PutFp,
    PutFpSave,
    VcpuLoad,
    VcpuPut,
}

impl Stat {
    /// Number of counters (`VHE_RS_NR_STATS`).
    const COUNT: usize = Stat::VcpuPut as usize + 1;
}

/// The bits `vhe_rs_vcpu_features()` answers, in the order of
/// `enum vhe_rs_vcpu_feature` in `arch/arm64/glue/glue.h` (the count is checked
/// at [`register`]).
const VCPU_FEATURES: [Feature; 5] =
    [Feature::Tcr2, Feature::S1pie, Feature::S1poe, Feature::Mte, Feature::El1Is32Bit];

/// What `vhe_rs_cap()` answers, as `enum vhe_rs_cap` in `arch/arm64/glue/glue.h`.
#[derive(Clone, Copy)]
#[repr(u32)]
enum Cap {
    Ras = 0,
    Fgt,
    Hcx,
    AmpereAc03Cpu38,
    SpeculativeAt,
    Erratum1508412,
    PmuV3,
}

// `struct kvm_vcpu` holds zero-sized members (lockdep maps without lockdep) that
// the FFI lint flags; the glue only receives the pointer KVM gave us, unchanged.
#[allow(improper_ctypes)]
extern "C" {
    fn vhe_rs_enabled() -> bool;
    fn vhe_rs_parts() -> *const c_char;
    fn vhe_rs_stat_inc(stat: c_uint);
    fn vhe_rs_backend_register(part_mask: c_uint) -> core::ffi::c_int;
    fn vhe_rs_backend_unregister();
    fn vhe_rs_percpu_host_data() -> c_ulong;
    fn vhe_rs_percpu_stats() -> c_ulong;
    fn vhe_rs_nr_stats() -> c_uint;
    fn vhe_rs_system_supports_fpsimd() -> bool;
    fn vhe_rs_foreign_fpstate() -> bool;
    fn vhe_rs_save_and_flush_cpu_fp();
    fn vhe_rs_bind_guest_fp(vcpu: *mut bindings::kvm_vcpu);
    fn vhe_rs_vcpu_has_sve(vcpu: *const bindings::kvm_vcpu) -> bool;
    fn vhe_rs_local_irq_save() -> c_ulong;
    fn vhe_rs_local_irq_restore(flags: c_ulong);
    fn vhe_rs_vcpu_features(vcpu: *mut bindings::kvm_vcpu) -> c_uint;
    fn vhe_rs_nr_vcpu_features() -> c_uint;
    fn vhe_rs_cap(cap: c_uint) -> bool;
    fn vhe_rs_vcpu_set_sysregs_on_cpu(vcpu: *mut bindings::kvm_vcpu, on: bool);
    fn vhe_rs_vcpu_set_pmuserenr_on_cpu(vcpu: *mut bindings::kvm_vcpu, on: bool);
    fn vhe_rs_vcpu_stage2(vcpu: *mut bindings::kvm_vcpu, vtcr: *mut u64, vttbr: *mut u64);
}

/// Whether the host has `cap`, asked of the kernel.
fn cap(cap: Cap) -> bool {
    // SAFETY: `vhe_rs_cap` reads a final capability or a static key; every
    // `Cap` value is a member of `enum vhe_rs_cap`.
    unsafe { vhe_rs_cap(cap as c_uint) }
}

/// The final capabilities, read once at [`register`] (before any step runs),
/// one bit per [`Cap`]; bit 31 says they were read.
static FINAL_CAPS: AtomicUsize = AtomicUsize::new(0);

/// Bit 31 of [`FINAL_CAPS`].
const FINAL_CAPS_READ: usize = 1 << 31;

/// Whether the host has the final capability `c` (not [`Cap::PmuV3`], a static
/// key that [`cap`] asks each time).
fn final_cap(c: Cap) -> bool {
    let caps = FINAL_CAPS.load(Ordering::Relaxed);
    if caps & FINAL_CAPS_READ == 0 {
        return cap(c);
    }
    caps & (1 << c as u32) != 0
}

/// Reads the final capabilities into [`FINAL_CAPS`].
fn read_final_caps() {
    let mut caps = FINAL_CAPS_READ;
    for c in [Cap::Ras, Cap::Fgt, Cap::Hcx, Cap::AmpereAc03Cpu38, Cap::SpeculativeAt, Cap::Erratum1508412] {
        if cap(c) {
            caps |= 1 << c as u32;
        }
    }
    FINAL_CAPS.store(caps, Ordering::Relaxed);
}

/// Counts `stat` on this CPU.
pub(crate) fn count(stat: Stat) {
    // SAFETY: `vhe_rs_stat_inc` only increments a per-CPU counter (bounds-checked).
    unsafe { vhe_rs_stat_inc(stat as c_uint) }
}

/// The `parts` module parameter.
pub(crate) fn parts_param() -> &'static CStr {
    // SAFETY: `parts` is a read-only (0444) charp parameter: its string lives as
    // long as the module and is NUL-terminated.
    unsafe { CStr::from_ptr(vhe_rs_parts()) }
}

/// A per-CPU variable of the kernel, reached from Rust without a call into C.
///
/// # Invariants
///
/// Once set (at module init, before the backend is registered), `base` holds the
/// per-CPU address of a `T` (what `&var` is in C for a `DEFINE_PER_CPU` variable)
/// that outlives the module; until then it is 0 and nothing reads it.
struct PerCpu<T> {
    base: AtomicUsize,
    _t: PhantomData<T>,
}

impl<T> PerCpu<T> {
    const fn new() -> Self {
        Self { base: AtomicUsize::new(0), _t: PhantomData }
    }

    /// The instance of the CPU whose per-CPU offset is `offset` (see
    /// [`CpuOffset`]), as `per_cpu_ptr()` computes it.
    #[inline(always)]
    fn on(&self, cpu: CpuOffset) -> *mut T {
        self.base.load(Ordering::Relaxed).wrapping_add(cpu.0) as *mut T
    }
}

/// This CPU's per-CPU offset, read once per step.
///
/// # Invariants
///
/// Holds the offset of the CPU the step runs on; a step cannot migrate
/// (preemption or IRQs are disabled), so it stays this CPU's for the step.
#[derive(Clone, Copy)]
struct CpuOffset(usize);

impl CpuOffset {
    /// Reads this CPU's offset: on a VHE host the kernel keeps it in TPIDR_EL2,
    /// where `__my_cpu_offset` reads it once ARM64_HAS_VIRT_HOST_EXTN is set.
    ///
    /// # Safety
    ///
    /// Called from a step, which runs at EL2 on a VHE host (checked at module
    /// init) and cannot migrate until it returns.
    #[inline(always)]
    unsafe fn this_cpu() -> Self {
        // SAFETY: at EL2 on a VHE host (the caller's contract); reading
        // TPIDR_EL2 has no side effect.
        let mut cpu = unsafe { Cpu::current() };
        // INVARIANT: the caller cannot migrate until the step returns.
        Self(cpu.read_raw::<TPIDR_EL2::Reg>() as usize)
    }
}

// SAFETY: `PerCpu` holds an address only; each CPU reaches its own instance.
unsafe impl<T> Sync for PerCpu<T> {}

/// `kvm_host_data` (from the hook series; `fp_owner` lives there).
static HOST_DATA: PerCpu<bindings::kvm_host_data> = PerCpu::new();

/// The module's counters, `struct vhe_rs_stats` in `arch/arm64/glue/backend.c`.
static STATS: PerCpu<[c_ulong; Stat::COUNT]> = PerCpu::new();

/// Registers the backend with KVM, taking the steps in `mask`.
pub(crate) fn register(mask: u32) -> Result {
    let (host_data, stats, nr) =
        // SAFETY: called once from module init, after `host::missing_hook_symbol()`
        // found every symbol of the hook series: both return per-CPU addresses of
        // variables that outlive the module.
        unsafe { (vhe_rs_percpu_host_data(), vhe_rs_percpu_stats(), vhe_rs_nr_stats()) };
    if nr as usize != Stat::COUNT {
        pr_err!("the C glue has {} counters, Rust {}: rebuild the module\n", nr, Stat::COUNT);
        return Err(EINVAL);
    }
    // SAFETY: returns a constant.
    let nf = unsafe { vhe_rs_nr_vcpu_features() };
    if nf as usize != VCPU_FEATURES.len() {
        pr_err!("the C glue has {} vCPU features, Rust {}: rebuild the module\n", nf, VCPU_FEATURES.len());
        return Err(EINVAL);
    }
    read_final_caps();
    // INVARIANT: set before the backend is registered, so before any step runs.
    HOST_DATA.base.store(host_data as usize, Ordering::Relaxed);
    STATS.base.store(stats as usize, Ordering::Relaxed);
    // SAFETY: called once, from module init, before any step can run.
    let ret = unsafe { vhe_rs_backend_register(mask) };
    if ret < 0 {
        return Err(Error::from_errno(ret));
    }
    Ok(())
}

/// Unregisters the backend (module exit: no VM holds the module any more).
pub(crate) fn unregister() {
    // SAFETY: called once, from module exit, after a successful `register`.
    unsafe { vhe_rs_backend_unregister() }
}

/// A vCPU handed to one of the backend's steps.
///
/// # Invariants
///
/// `ptr` points to a live `struct kvm_vcpu` that KVM has given to the current step
/// (vcpu->mutex held or the vCPU loaded on this CPU); it is not kept beyond it.
pub(crate) struct Vcpu {
    ptr: *mut bindings::kvm_vcpu,
}

impl Vcpu {
    /// Wraps the vCPU KVM passed to a step.
    ///
    /// # Safety
    ///
    /// `ptr` is the vCPU KVM passed to the step being run, valid for its duration.
    unsafe fn from_step(ptr: *mut bindings::kvm_vcpu) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self { ptr }
    }

    /// Whether the vCPU has SVE (`vcpu_has_sve`).
    fn has_sve(&self) -> bool {
        // SAFETY: `self.ptr` is a live vCPU (type invariant).
        unsafe { vhe_rs_vcpu_has_sve(self.ptr) }
    }
}

/// The FP state of this CPU and of the vCPU being run: what [`fp`] decides over.
struct KernelFp {
    vcpu: Vcpu,
    cpu: CpuOffset,
}

impl KernelFp {
    /// Counts `stat` on this CPU with a plain increment, as `__this_cpu_inc()`
    /// does: a step cannot migrate, and no interrupt handler touches the counters.
    #[inline(always)]
    fn count(&self, stat: Stat) {
        // SAFETY: the steps run with preemption (or IRQs) disabled, so this
        // CPU's counters stay ours; they outlive the module (`PerCpu` invariant).
        let counters = unsafe { &mut *STATS.on(self.cpu) };
        if let Some(c) = counters.get_mut(stat as usize) {
            *c = c.wrapping_add(1);
        }
    }
}

impl FpContext for KernelFp {
    fn owner(&self) -> FpOwner {
        // SAFETY: the steps run with preemption (or IRQs) disabled, so this CPU's
        // `kvm_host_data` stays ours; it lives as long as KVM (`PerCpu` invariant).
        match unsafe { (*HOST_DATA.on(self.cpu)).fp_owner } {
            bindings::kvm_host_data_FP_STATE_GUEST_OWNED => FpOwner::GuestOwned,
            bindings::kvm_host_data_FP_STATE_HOST_OWNED => FpOwner::HostOwned,
            _ => FpOwner::Free,
        }
    }

    fn set_owner(&mut self, owner: FpOwner) {
        let v = match owner {
            FpOwner::Free => bindings::kvm_host_data_FP_STATE_FREE,
            FpOwner::HostOwned => bindings::kvm_host_data_FP_STATE_HOST_OWNED,
            FpOwner::GuestOwned => bindings::kvm_host_data_FP_STATE_GUEST_OWNED,
        };
        // SAFETY: as for `owner`.
        unsafe { (*HOST_DATA.on(self.cpu)).fp_owner = v }
    }

    fn save_and_flush_cpu_state(&mut self) {
        // SAFETY: the kernel's own save-and-invalidate of this CPU's FP state,
        // callable from task context with preemption or IRQs disabled.
        unsafe { vhe_rs_save_and_flush_cpu_fp() }
    }

    fn bind_guest_state(&mut self) {
        // SAFETY: `self.vcpu` is live (invariant); called from ctxsync, IRQs off,
        // as `kvm_arch_vcpu_ctxsync_fp` does.
        unsafe { vhe_rs_bind_guest_fp(self.vcpu.ptr) }
    }

    fn foreign_fpstate(&self) -> bool {
        // SAFETY: reads the current thread's TIF_FOREIGN_FPSTATE.
        unsafe { vhe_rs_foreign_fpstate() }
    }

    fn vcpu_has_sve(&self) -> bool {
        self.vcpu.has_sve()
    }
}
// The EL2 side (`FpHypContext`: the FP trap, the lazy switch around entry)
// comes with the `run` part; until then the built-in C run path does it, over
// the same `fp_owner`.

/// Runs `f` on the FP state of the vCPU KVM passed to the current step.
///
/// # Safety
///
/// `vcpu` is the vCPU KVM passed to the step being run.
unsafe fn with_fp(vcpu: *mut bindings::kvm_vcpu, f: impl FnOnce(&mut KernelFp)) {
    let mut ctx = KernelFp {
        // SAFETY: guaranteed by the caller.
        vcpu: unsafe { Vcpu::from_step(vcpu) },
        // SAFETY: a step runs at EL2 on a VHE host and cannot migrate.
        cpu: unsafe { CpuOffset::this_cpu() },
    };
    f(&mut ctx)
}

/// `vm_init`: at VM creation; a VM created while the module is disabled stays on C.
#[no_mangle]
extern "C" fn vhe_rs_vm_init(_kvm: *mut bindings::kvm) -> bool {
    // SAFETY: reads the `enable` module parameter.
    let on = unsafe { vhe_rs_enabled() };
    if !on {
        count(Stat::VmCDisabled);
    }
    on
}

/// `vm_supported`: at the VM's first KVM_RUN. Nested-virt VMs never get here
/// (the hook keeps them on C); every other VM is handled by the parts implemented.
#[no_mangle]
extern "C" fn vhe_rs_vm_supported(_kvm: *mut bindings::kvm) -> bool {
    count(Stat::VmRust);
    true
}

/// `vm_destroy`: pairs with a successful `vm_init`.
#[no_mangle]
extern "C" fn vhe_rs_vm_destroy(_kvm: *mut bindings::kvm) {
    count(Stat::VmDestroyed);
}

/// `load_fp` (`kvm_arch_vcpu_load_fp`), preemption disabled.
#[no_mangle]
extern "C" fn vhe_rs_load_fp(vcpu: *mut bindings::kvm_vcpu) {
    // SAFETY: reads a final capability.
    if !unsafe { vhe_rs_system_supports_fpsimd() } {
        return;
    }
    // SAFETY: KVM passes the vCPU being loaded.
    unsafe {
        with_fp(vcpu, |ctx| {
            ctx.count(Stat::LoadFp);
            fp::load(ctx)
        })
    }
}

/// `ctxflush_fp` (`kvm_arch_vcpu_ctxflush_fp`), IRQs off.
#[no_mangle]
extern "C" fn vhe_rs_ctxflush_fp(vcpu: *mut bindings::kvm_vcpu) {
    // SAFETY: KVM passes the vCPU about to run.
    unsafe {
        with_fp(vcpu, |ctx| {
            ctx.count(Stat::CtxflushFp);
            if fp::ctxflush(ctx) {
                ctx.count(Stat::CtxflushForeign);
            }
        })
    }
}

/// `ctxsync_fp` (`kvm_arch_vcpu_ctxsync_fp`), IRQs off.
#[no_mangle]
extern "C" fn vhe_rs_ctxsync_fp(vcpu: *mut bindings::kvm_vcpu) {
    // SAFETY: KVM passes the vCPU that just exited.
    unsafe {
        with_fp(vcpu, |ctx| {
            ctx.count(Stat::CtxsyncFp);
            if fp::ctxsync(ctx) {
                ctx.count(Stat::CtxsyncBind);
            }
        })
    }
}

/// `put_fp` (`kvm_arch_vcpu_put_fp`), preemption disabled.
#[no_mangle]
extern "C" fn vhe_rs_put_fp(vcpu: *mut bindings::kvm_vcpu) {
    // SAFETY: IRQs off around the save and flush, as the C does, so that no IPI
    // (e.g. a PMU or SVE-related one) sees the registers half flushed.
    let flags = unsafe { vhe_rs_local_irq_save() };
    // SAFETY: KVM passes the vCPU being put.
    unsafe {
        with_fp(vcpu, |ctx| {
            ctx.count(Stat::PutFp);
            if fp::put(ctx) {
                ctx.count(Stat::PutFpSave);
            }
        })
    }
    // SAFETY: restores what `vhe_rs_local_irq_save` returned, on the same CPU.
    unsafe { vhe_rs_local_irq_restore(flags) }
}

/// The address of `slot` in the CPU context `ctxt` (`ctxt_sys_reg()` or a
/// banked SPSR), or `None` for an index beyond `sys_regs[]` (none is: the
/// indices are the kernel's own, so this only keeps the step free of panics).
///
/// # Safety
///
/// `ctxt` points to a live `struct kvm_cpu_context` whose `vncr_array` is NULL
/// (not a nested vCPU's), so that `sys_regs[]` holds every register.
#[inline(always)]
unsafe fn ctxt_slot(ctxt: *mut bindings::kvm_cpu_context, slot: VcpuSlot) -> Option<*mut u64> {
    // SAFETY: `ctxt` is live (the caller's contract); only field addresses are
    // taken, no reference is made.
    unsafe {
        Some(match slot {
            VcpuSlot::Sys(r) => return ctxt_sys_reg(ctxt, r.index()),
            VcpuSlot::Spsr32(Spsr32::Abt) => addr_of_mut!((*ctxt).spsr_abt),
            VcpuSlot::Spsr32(Spsr32::Und) => addr_of_mut!((*ctxt).spsr_und),
            VcpuSlot::Spsr32(Spsr32::Irq) => addr_of_mut!((*ctxt).spsr_irq),
            VcpuSlot::Spsr32(Spsr32::Fiq) => addr_of_mut!((*ctxt).spsr_fiq),
        })
    }
}

/// The address of `ctxt_sys_reg(ctxt, r)`, or `None` for an index beyond
/// `sys_regs[]`.
///
/// # Safety
///
/// As for [`ctxt_slot`].
#[inline(always)]
unsafe fn ctxt_sys_reg(ctxt: *mut bindings::kvm_cpu_context, r: bindings::vcpu_sysreg) -> Option<*mut u64> {
    // SAFETY: `ctxt` is live (the caller's contract); the index is checked
    // against the array's length before the address is formed.
    unsafe {
        let regs = addr_of_mut!((*ctxt).sys_regs);
        let i = r as usize;
        if i >= array_len(regs) {
            return None;
        }
        Some(regs.cast::<u64>().add(i))
    }
}

/// The length of the array `_a` points to, from its type (no reference made).
const fn array_len<T, const N: usize>(_a: *mut [T; N]) -> usize {
    N
}

/// The `enum vcpu_sysreg` slot where the host context keeps `slot`'s value.
fn host_saved_index(slot: HostSaved) -> Option<bindings::vcpu_sysreg> {
    Some(match slot {
        HostSaved::Pmuserenr => bindings::vcpu_sysreg_PMUSERENR_EL0,
        HostSaved::MdcrEl2 => return None,
        HostSaved::Fgt(FgtReg::HFGRTR_EL2) => bindings::vcpu_sysreg_HFGRTR_EL2,
        HostSaved::Fgt(FgtReg::HFGWTR_EL2) => bindings::vcpu_sysreg_HFGWTR_EL2,
        HostSaved::Fgt(FgtReg::HFGITR_EL2) => bindings::vcpu_sysreg_HFGITR_EL2,
        HostSaved::Fgt(FgtReg::HDFGRTR_EL2) => bindings::vcpu_sysreg_HDFGRTR_EL2,
        HostSaved::Fgt(FgtReg::HDFGWTR_EL2) => bindings::vcpu_sysreg_HDFGWTR_EL2,
        HostSaved::Fgt(FgtReg::HAFGRTR_EL2) => bindings::vcpu_sysreg_HAFGRTR_EL2,
    })
}

/// `vcpu_load`/`vcpu_put` over the kernel's state: the vCPU's context and this
/// CPU's `kvm_host_data`.
///
/// # Invariants
///
/// `vcpu` is the live, non-nested vCPU KVM passed to the step (nested-virt VMs
/// never reach the backend, so its `vncr_array` is NULL), owned by this thread;
/// the step runs with preemption disabled, and `host` is this CPU's
/// `kvm_host_data`. `features` and `caps` are what the vCPU and host have.
struct KernelLoad {
    vcpu: *mut bindings::kvm_vcpu,
    host: *mut bindings::kvm_host_data,
    cpu: CpuOffset,
    features: Features,
    caps: TrapCaps,
    workaround_1508412: bool,
}

impl KernelLoad {
    /// The load/put state of the vCPU KVM passed to the current step.
    ///
    /// # Safety
    ///
    /// `vcpu` is the vCPU KVM passed to `vcpu_load` or `vcpu_put`, which run with
    /// preemption disabled, at EL2 on a VHE host.
    unsafe fn new(vcpu: *mut bindings::kvm_vcpu) -> Self {
        // SAFETY: a step runs at EL2 on a VHE host and cannot migrate.
        let cpu = unsafe { CpuOffset::this_cpu() };
        // SAFETY: `vcpu` is live (the caller's contract); the glue asks
        // `kvm_has_feat()`-style questions of it and of final capabilities.
        let bits = unsafe { vhe_rs_vcpu_features(vcpu) };
        let mut features = Features::NONE;
        for (i, f) in VCPU_FEATURES.iter().enumerate() {
            if bits & (1 << i) != 0 {
                features = features.with(*f);
            }
        }
        if final_cap(Cap::Ras) {
            features = features.with(Feature::Ras);
        }
        // INVARIANT: `vcpu` as the caller guarantees; `host` is this CPU's
        // instance (`PerCpu` invariant, offset read on this CPU).
        Self {
            vcpu,
            host: HOST_DATA.on(cpu),
            cpu,
            features,
            caps: TrapCaps {
                pmu_v3: cap(Cap::PmuV3),
                fgt: final_cap(Cap::Fgt),
                hcx: final_cap(Cap::Hcx),
                ampere_ac03_cpu_38: final_cap(Cap::AmpereAc03Cpu38),
                speculative_at: final_cap(Cap::SpeculativeAt),
            },
            workaround_1508412: final_cap(Cap::Erratum1508412),
        }
    }

    /// Counts `stat` on this CPU (as [`KernelFp::count`]).
    fn count(&self, stat: Stat) {
        // SAFETY: preemption is disabled, so this CPU's counters stay ours; they
        // outlive the module (`PerCpu` invariant).
        let counters = unsafe { &mut *STATS.on(self.cpu) };
        if let Some(c) = counters.get_mut(stat as usize) {
            *c = c.wrapping_add(1);
        }
    }

    fn guest_ctxt(&self) -> *mut bindings::kvm_cpu_context {
        // SAFETY: `self.vcpu` is live (type invariant); only an address is taken.
        unsafe { addr_of_mut!((*self.vcpu).arch.ctxt) }
    }

    fn host_ctxt(&self) -> *mut bindings::kvm_cpu_context {
        // SAFETY: `self.host` is this CPU's `kvm_host_data` (type invariant).
        unsafe { addr_of_mut!((*self.host).host_ctxt) }
    }

    #[inline(always)]
    fn read(ctxt: *mut bindings::kvm_cpu_context, slot: VcpuSlot) -> u64 {
        // SAFETY: `ctxt` is the vCPU's or this CPU's host context, both live and
        // not nested (type invariant); the slot is in bounds (`ctxt_slot`).
        unsafe { ctxt_slot(ctxt, slot).map_or(0, |p| p.read()) }
    }

    #[inline(always)]
    fn write(ctxt: *mut bindings::kvm_cpu_context, slot: VcpuSlot, val: u64) {
        // SAFETY: as for `read`; the vCPU is this thread's and the host context
        // this CPU's, preemption disabled.
        if let Some(p) = unsafe { ctxt_slot(ctxt, slot) } {
            // SAFETY: as above.
            unsafe { p.write(val) }
        }
    }
}

impl SysregContext for KernelLoad {
    fn guest(&self, slot: VcpuSlot) -> u64 {
        Self::read(self.guest_ctxt(), slot)
    }

    fn set_guest(&mut self, slot: VcpuSlot, val: u64) {
        Self::write(self.guest_ctxt(), slot, val)
    }

    fn host(&self, slot: VcpuSlot) -> u64 {
        Self::read(self.host_ctxt(), slot)
    }

    fn set_host(&mut self, slot: VcpuSlot, val: u64) {
        Self::write(self.host_ctxt(), slot, val)
    }

    fn features(&self) -> Features {
        self.features
    }

    fn set_sysregs_on_cpu(&mut self, on: bool) {
        // SAFETY: `self.vcpu` is live and this thread's (type invariant).
        unsafe { vhe_rs_vcpu_set_sysregs_on_cpu(self.vcpu, on) }
    }

    fn workaround_1508412(&self) -> bool {
        self.workaround_1508412
    }
}

impl TrapContext for KernelLoad {
    fn trap_caps(&self) -> TrapCaps {
        self.caps
    }

    fn vcpu_mdcr_el2(&self) -> u64 {
        // SAFETY: `self.vcpu` is live (type invariant).
        unsafe { (*self.vcpu).arch.mdcr_el2 }
    }

    fn vcpu_hcrx_el2(&self) -> u64 {
        // SAFETY: `self.vcpu` is live (type invariant).
        unsafe { (*self.vcpu).arch.hcrx_el2 }
    }

    fn fgu(&self, group: FgtGroup) -> u64 {
        let id = match group {
            FgtGroup::Hfgxtr => bindings::fgt_group_id_HFGxTR_GROUP,
            FgtGroup::Hfgitr => bindings::fgt_group_id_HFGITR_GROUP,
            FgtGroup::Hdfgrtr => bindings::fgt_group_id_HDFGRTR_GROUP,
            FgtGroup::Hafgrtr => bindings::fgt_group_id_HAFGRTR_GROUP,
        };
        // SAFETY: a live vCPU's `kvm` is its live VM (type invariant); `fgu` is
        // final once the VM has run (set at its first KVM_RUN, before any load
        // reaches the backend).
        unsafe { (*(*self.vcpu).kvm).arch.fgu.get(id as usize).copied().unwrap_or(0) }
    }

    fn host_saved(&self, slot: HostSaved) -> u64 {
        match host_saved_index(slot) {
            // SAFETY: `self.host` is this CPU's `kvm_host_data` (type invariant).
            None => unsafe { (*self.host).host_debug_state.mdcr_el2 },
            // SAFETY: the host context is this CPU's and not nested (invariant).
            Some(i) => unsafe { ctxt_sys_reg(self.host_ctxt(), i).map_or(0, |p| p.read()) },
        }
    }

    fn set_host_saved(&mut self, slot: HostSaved, val: u64) {
        match host_saved_index(slot) {
            // SAFETY: as for `host_saved`.
            None => unsafe { (*self.host).host_debug_state.mdcr_el2 = val },
            Some(i) => {
                // SAFETY: as for `host_saved`.
                if let Some(p) = unsafe { ctxt_sys_reg(self.host_ctxt(), i) } {
                    // SAFETY: as above.
                    unsafe { p.write(val) }
                }
            }
        }
    }

    fn set_pmuserenr_on_cpu(&mut self, on: bool) {
        // SAFETY: `self.vcpu` is live and this thread's (type invariant).
        unsafe { vhe_rs_vcpu_set_pmuserenr_on_cpu(self.vcpu, on) }
    }

    fn stage2(&self) -> Stage2 {
        let mut s2 = Stage2::default();
        // SAFETY: `self.vcpu` is live (type invariant): its `hw_mmu` is its VM's
        // stage-2 MMU; the two pointers are to locals.
        unsafe { vhe_rs_vcpu_stage2(self.vcpu, &mut s2.vtcr, &mut s2.vttbr) };
        s2
    }
}

impl LoadContext for KernelLoad {
    fn set_running_vcpu(&mut self, on: bool) {
        let vcpu = if on { self.vcpu } else { null_mut() };
        // SAFETY: `self.host` is this CPU's `kvm_host_data` (type invariant).
        unsafe { (*self.host).host_ctxt.__hyp_running_vcpu = vcpu }
    }

    fn with_irqs_off(&mut self, f: impl FnOnce(&mut Self)) {
        // SAFETY: disables IRQs on this CPU; restored below, on the same CPU
        // (preemption is disabled).
        let flags = unsafe { vhe_rs_local_irq_save() };
        f(self);
        // SAFETY: restores what `vhe_rs_local_irq_save` returned.
        unsafe { vhe_rs_local_irq_restore(flags) }
    }
}

/// `vcpu_load` (`kvm_vcpu_load_vhe`), preemption disabled.
#[no_mangle]
extern "C" fn vhe_rs_vcpu_load(vcpu: *mut bindings::kvm_vcpu) {
    // SAFETY: KVM passes the vCPU being loaded, preemption disabled, at EL2 on a
    // VHE host (checked at module init); the step owns the registers it moves.
    let (mut ctx, mut cpu) = unsafe { (KernelLoad::new(vcpu), Cpu::current()) };
    ctx.count(Stat::VcpuLoad);
    loadput::load(&mut ctx, &mut cpu);
}

/// `vcpu_put` (`kvm_vcpu_put_vhe`), preemption disabled.
#[no_mangle]
extern "C" fn vhe_rs_vcpu_put(vcpu: *mut bindings::kvm_vcpu) {
    // SAFETY: as for `vhe_rs_vcpu_load`, for the vCPU being put.
    let (mut ctx, mut cpu) = unsafe { (KernelLoad::new(vcpu), Cpu::current()) };
    ctx.count(Stat::VcpuPut);
    loadput::put(&mut ctx, &mut cpu);
}
