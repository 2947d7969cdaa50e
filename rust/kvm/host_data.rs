// SPDX-License-Identifier: GPL-2.0

//! `struct kvm_host_data` (per CPU, from the hook series) as Rust sees it: an
//! `Opaque` wrapper reached for this CPU, whose methods are the only accesses
//! to its fields.

use super::percpu::{CpuOffset, PerCpu};
use super::vcpu::{CpuContext, Vcpu};
use crate::world::fp::FpOwner;
use core::ptr::addr_of_mut;
use kernel::bindings;
use kernel::types::Opaque;

/// This CPU's `struct kvm_host_data` (from the hook series).
///
/// # Invariants
///
/// The instance of the CPU the step runs on, which cannot migrate until the
/// step returns. Another CPU may write parts of it by IPI (the PMU driver's
/// `kvm_set_pmuserenr()`), hence `Opaque` and raw accesses.
#[repr(transparent)]
pub(crate) struct HostData(Opaque<bindings::kvm_host_data>);

/// `kvm_host_data`, a per-CPU variable of KVM.
pub(crate) static HOST_DATA: PerCpu<bindings::kvm_host_data> = PerCpu::new();

impl HostData {
    /// The instance of the CPU `cpu`, which the step runs on.
    #[inline(always)]
    pub(crate) fn on<'a>(cpu: CpuOffset) -> &'a HostData {
        // SAFETY: `kvm_host_data` lives as long as KVM (`PerCpu` invariant),
        // so beyond any step; `HostData` is transparent over it.
        // INVARIANT: `cpu` is the step's CPU (`CpuOffset` invariant).
        unsafe { &*HOST_DATA.on(cpu).cast::<HostData>() }
    }

    #[inline(always)]
    fn as_ptr(&self) -> *mut bindings::kvm_host_data {
        self.0.get()
    }

    /// This CPU's FP owner (`host_data.fp_owner`).
    #[inline(always)]
    pub(crate) fn fp_owner(&self) -> FpOwner {
        // SAFETY: this CPU's instance (type invariant); only this CPU writes it.
        match unsafe { (*self.as_ptr()).fp_owner } {
            bindings::kvm_host_data_FP_STATE_GUEST_OWNED => FpOwner::GuestOwned,
            bindings::kvm_host_data_FP_STATE_HOST_OWNED => FpOwner::HostOwned,
            _ => FpOwner::Free,
        }
    }

    /// Sets this CPU's FP owner.
    #[inline(always)]
    pub(crate) fn set_fp_owner(&self, owner: FpOwner) {
        let v = match owner {
            FpOwner::Free => bindings::kvm_host_data_FP_STATE_FREE,
            FpOwner::HostOwned => bindings::kvm_host_data_FP_STATE_HOST_OWNED,
            FpOwner::GuestOwned => bindings::kvm_host_data_FP_STATE_GUEST_OWNED,
        };
        // SAFETY: as for `fp_owner`.
        unsafe { (*self.as_ptr()).fp_owner = v }
    }

    /// The host's CPU context (`host_data->host_ctxt`).
    #[inline(always)]
    pub(crate) fn host_ctxt(&self) -> &CpuContext {
        // SAFETY: a field of this CPU's instance (type invariant), transparent
        // wrapper; the host context is never a nested vCPU's.
        unsafe { &*addr_of_mut!((*self.as_ptr()).host_ctxt).cast::<CpuContext>() }
    }

    /// The host's MDCR_EL2, saved at load (`host_debug_state.mdcr_el2`).
    pub(crate) fn mdcr_el2(&self) -> u64 {
        // SAFETY: this CPU's instance (type invariant).
        unsafe { (*self.as_ptr()).host_debug_state.mdcr_el2 }
    }

    /// `&host_debug_state.regs`: the host's breakpoints and watchpoints while
    /// a guest's are on the CPU.
    #[inline(always)]
    pub(crate) fn debug_regs(&self) -> *mut bindings::kvm_guest_debug_arch {
        // SAFETY: a field address of this CPU's instance (type invariant); no
        // reference is made.
        unsafe { core::ptr::addr_of_mut!((*self.as_ptr()).host_debug_state.regs) }
    }

    /// Saves the host's MDCR_EL2.
    pub(crate) fn set_mdcr_el2(&self, val: u64) {
        // SAFETY: this CPU's instance (type invariant).
        unsafe { (*self.as_ptr()).host_debug_state.mdcr_el2 = val }
    }

    /// Whether `host_ctxt->__hyp_running_vcpu` is `vcpu` (what `vcpu_load` set).
    #[inline(always)]
    pub(crate) fn running_vcpu_is(&self, vcpu: &Vcpu) -> bool {
        // SAFETY: this CPU's instance (type invariant).
        let running = unsafe { (*self.as_ptr()).host_ctxt.__hyp_running_vcpu };
        core::ptr::eq(running, vcpu.as_ptr())
    }

    /// Sets `host_ctxt->__hyp_running_vcpu` to `vcpu`, or NULL.
    #[inline(always)]
    pub(crate) fn set_running_vcpu(&self, vcpu: Option<&Vcpu>) {
        let p = vcpu.map_or(core::ptr::null_mut(), Vcpu::as_ptr);
        // SAFETY: this CPU's instance (type invariant).
        unsafe { (*self.as_ptr()).host_ctxt.__hyp_running_vcpu = p }
    }
}
