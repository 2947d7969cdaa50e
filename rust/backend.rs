// SPDX-License-Identifier: GPL-2.0

//! The binding layer: the backend's steps as KVM calls them, and the kernel state
//! they need, wrapped once. Raw pointers and `unsafe` stay in this file (and in
//! the sysreg layer); the decisions are in safe Rust ([`crate::fp`], [`parts`]).
//!
//! KVM (the hook patch, `asm/kvm_vhe_backend.h`) calls the `vhe_rs_*` functions
//! below through the ops table that `arch/arm64/glue/backend.c` registers.

use crate::fp::{self, FpContext, FpOwner};
use crate::sysreg::{Cpu, RegAccess, TPIDR_EL2};
use core::ffi::{c_char, c_uint, c_ulong, CStr};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::bindings;
use kernel::prelude::*;

/// Steps the Rust backend takes, from the `parts` module parameter.
pub(crate) mod parts {
    /// `fp`: FP/SIMD/SVE ownership (load, ctxflush, ctxsync, put).
    pub(crate) const FP: u32 = 1 << 0;

    /// Every part, by name, with what this module implements.
    pub(crate) const ALL: &[(&str, u32, bool)] =
        &[("fp", FP, true), ("sysregs", 0, false), ("debug", 0, false), ("run", 0, false)];

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
}

impl Stat {
    /// Number of counters (`VHE_RS_NR_STATS`).
    const COUNT: usize = Stat::PutFpSave as usize + 1;
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
