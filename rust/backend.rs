// SPDX-License-Identifier: GPL-2.0

//! The binding layer: the backend's steps as KVM calls them, and the kernel state
//! they need, wrapped once. Raw pointers and `unsafe` stay in this file (and in
//! the sysreg layer); the decisions are in safe Rust ([`crate::fp`], [`parts`]).
//!
//! KVM (the hook patch, `asm/kvm_vhe_backend.h`) calls the `vhe_rs_*` functions
//! below through the ops table that `arch/arm64/glue/backend.c` registers.

use crate::fp::{self, FpContext, FpOwner};
use core::ffi::{c_char, c_uint, c_ulong, CStr};
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

// Must match arch/arm64/glue/glue.h.
const FP_FREE: c_uint = 0;
const FP_HOST_OWNED: c_uint = 1;
const FP_GUEST_OWNED: c_uint = 2;

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

// `struct kvm_vcpu` holds zero-sized members (lockdep maps without lockdep) that
// the FFI lint flags; the glue only receives the pointer KVM gave us, unchanged.
#[allow(improper_ctypes)]
extern "C" {
    fn vhe_rs_enabled() -> bool;
    fn vhe_rs_parts() -> *const c_char;
    fn vhe_rs_stat_inc(stat: c_uint);
    fn vhe_rs_backend_register(part_mask: c_uint) -> core::ffi::c_int;
    fn vhe_rs_backend_unregister();
    fn vhe_rs_fp_owner() -> c_uint;
    fn vhe_rs_set_fp_owner(owner: c_uint);
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

/// Registers the backend with KVM, taking the steps in `mask`.
pub(crate) fn register(mask: u32) -> Result {
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
}

impl FpContext for KernelFp {
    fn owner(&self) -> FpOwner {
        // SAFETY: reads this CPU's `kvm_host_data.fp_owner`; the steps run with
        // preemption disabled (or IRQs off), so "this CPU" stays the same.
        match unsafe { vhe_rs_fp_owner() } {
            FP_GUEST_OWNED => FpOwner::GuestOwned,
            FP_HOST_OWNED => FpOwner::HostOwned,
            _ => FpOwner::Free,
        }
    }

    fn set_owner(&mut self, owner: FpOwner) {
        let v = match owner {
            FpOwner::Free => FP_FREE,
            FpOwner::HostOwned => FP_HOST_OWNED,
            FpOwner::GuestOwned => FP_GUEST_OWNED,
        };
        // SAFETY: as for `owner`.
        unsafe { vhe_rs_set_fp_owner(v) }
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
    // SAFETY: guaranteed by the caller.
    let mut ctx = KernelFp { vcpu: unsafe { Vcpu::from_step(vcpu) } };
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

/// `load_fp` (`kvm_arch_vcpu_load_fp`).
#[no_mangle]
extern "C" fn vhe_rs_load_fp(vcpu: *mut bindings::kvm_vcpu) {
    count(Stat::LoadFp);
    // SAFETY: reads a final capability.
    if !unsafe { vhe_rs_system_supports_fpsimd() } {
        return;
    }
    // SAFETY: KVM passes the vCPU being loaded.
    unsafe { with_fp(vcpu, |ctx| fp::load(ctx)) }
}

/// `ctxflush_fp` (`kvm_arch_vcpu_ctxflush_fp`), IRQs off.
#[no_mangle]
extern "C" fn vhe_rs_ctxflush_fp(vcpu: *mut bindings::kvm_vcpu) {
    count(Stat::CtxflushFp);
    // SAFETY: KVM passes the vCPU about to run.
    unsafe {
        with_fp(vcpu, |ctx| {
            if fp::ctxflush(ctx) {
                count(Stat::CtxflushForeign);
            }
        })
    }
}

/// `ctxsync_fp` (`kvm_arch_vcpu_ctxsync_fp`), IRQs off.
#[no_mangle]
extern "C" fn vhe_rs_ctxsync_fp(vcpu: *mut bindings::kvm_vcpu) {
    count(Stat::CtxsyncFp);
    // SAFETY: KVM passes the vCPU that just exited.
    unsafe {
        with_fp(vcpu, |ctx| {
            if fp::ctxsync(ctx) {
                count(Stat::CtxsyncBind);
            }
        })
    }
}

/// `put_fp` (`kvm_arch_vcpu_put_fp`).
#[no_mangle]
extern "C" fn vhe_rs_put_fp(vcpu: *mut bindings::kvm_vcpu) {
    count(Stat::PutFp);
    // SAFETY: IRQs off around the save and flush, as the C does, so that no IPI
    // (e.g. a PMU or SVE-related one) sees the registers half flushed.
    let flags = unsafe { vhe_rs_local_irq_save() };
    // SAFETY: KVM passes the vCPU being put.
    unsafe {
        with_fp(vcpu, |ctx| {
            if fp::put(ctx) {
                count(Stat::PutFpSave);
            }
        })
    }
    // SAFETY: restores what `vhe_rs_local_irq_save` returned, on the same CPU.
    unsafe { vhe_rs_local_irq_restore(flags) }
}
