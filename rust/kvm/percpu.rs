// SPDX-License-Identifier: GPL-2.0

//! Per-CPU variables of the kernel reached from Rust without a call into C:
//! the address the glue gives once at init, plus this CPU's offset, which a
//! VHE host keeps in TPIDR_EL2.

use crate::arch::{Cpu, RegAccess, TPIDR_EL2};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A per-CPU variable of the kernel.
///
/// # Invariants
///
/// Once set (at module init, before the backend is registered), `base` holds the
/// per-CPU address of a `T` (what `&var` is in C for a `DEFINE_PER_CPU` variable)
/// that outlives the module; until then it is 0 and nothing reads it.
pub(crate) struct PerCpu<T> {
    base: AtomicUsize,
    _t: PhantomData<T>,
}

// SAFETY: `PerCpu` holds an address only; each CPU reaches its own instance,
// and what is reached through it says its own rules (`HostData`, `Stats`).
unsafe impl<T> Sync for PerCpu<T> {}

impl<T> PerCpu<T> {
    /// Not set yet.
    pub(crate) const fn new() -> Self {
        Self {
            base: AtomicUsize::new(0),
            _t: PhantomData,
        }
    }

    /// Sets the per-CPU address.
    ///
    /// # Safety
    ///
    /// `base` is the per-CPU address of a `T` that outlives the module, and no
    /// step runs yet (module init, before the backend is registered).
    pub(crate) unsafe fn set(&self, base: usize) {
        // INVARIANT: guaranteed by the caller.
        self.base.store(base, Ordering::Relaxed);
    }

    /// The instance of the CPU `cpu`, as `per_cpu_ptr()` computes it.
    #[inline(always)]
    pub(crate) fn on(&self, cpu: CpuOffset) -> *mut T {
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
pub(crate) struct CpuOffset(usize);

impl CpuOffset {
    /// Reads this CPU's offset: on a VHE host the kernel keeps it in TPIDR_EL2,
    /// where `__my_cpu_offset` reads it once ARM64_HAS_VIRT_HOST_EXTN is set.
    ///
    /// # Safety
    ///
    /// Called from a step, which runs at EL2 on a VHE host (checked at module
    /// init) and cannot migrate until it returns.
    #[inline(always)]
    pub(crate) unsafe fn this_cpu() -> Self {
        // SAFETY: at EL2 on a VHE host (the caller's contract); reading
        // TPIDR_EL2 has no side effect.
        let mut cpu = unsafe { Cpu::current() };
        // INVARIANT: the caller cannot migrate until the step returns.
        Self(cpu.read_raw::<TPIDR_EL2::Reg>() as usize)
    }
}
