// SPDX-License-Identifier: GPL-2.0

//! The current task as the steps need it: its FP flag and its mm, read
//! inline as the C's static inlines do (`test_thread_flag()`,
//! `current->mm`), not through a call into the glue on every exit.

use super::glue;
use crate::arch::Cpu;
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::bindings;
use kernel::types::Opaque;

/// A task: `struct task_struct`.
///
/// # Invariants
///
/// Only [`Task::current`] makes one: the task running the step, alive for it.
#[repr(transparent)]
pub(crate) struct Task(Opaque<bindings::task_struct>);

impl Task {
    /// `current`: the task the step runs in. On arm64 the kernel keeps it in
    /// SP_EL0 (`get_current()`).
    #[inline(always)]
    pub(crate) fn current<'a>() -> &'a Task {
        // SAFETY: reading SP_EL0 has no side effect; the steps run in the
        // kernel (at EL2 on VHE), where SP_EL0 holds `current`.
        let p = unsafe { Cpu::current() }.sp_el0() as *mut bindings::task_struct;
        // SAFETY: `current` is alive while it runs, so for the whole step;
        // `Task` is transparent over `task_struct`.
        // INVARIANT: the current task.
        unsafe { &*p.cast::<Task>() }
    }

    /// `test_thread_flag(TIF_FOREIGN_FPSTATE)`: something else used the FP
    /// registers since this task's state was last loaded.
    #[inline(always)]
    pub(crate) fn foreign_fpstate(&self) -> bool {
        const _: () =
            assert!(core::mem::size_of::<core::ffi::c_ulong>() == core::mem::size_of::<u64>());
        // SAFETY: the task is alive (type invariant); `thread_info.flags` is an
        // `unsigned long` that other CPUs may set atomically (e.g. need-resched),
        // so it is read atomically, as `test_bit()` reads it.
        let flags = unsafe {
            AtomicU64::from_ptr(addr_of_mut!((*self.0.get()).thread_info.flags).cast::<u64>())
        };
        flags.load(Ordering::Relaxed) & (1 << bindings::TIF_FOREIGN_FPSTATE) != 0
    }

    /// Whether the task has an mm (`current->mm`): a user task, as a vCPU
    /// thread is. Only the task itself changes it (exec, exit).
    #[inline(always)]
    pub(crate) fn has_mm(&self) -> bool {
        // SAFETY: the task is alive and it is this one (type invariant).
        unsafe { !(*self.0.get()).mm.is_null() }
    }
}

/// `irqs_disabled()`: whether IRQs are masked on this CPU. Without pseudo-NMI
/// that is DAIF.I (`arch_irqs_disabled_flags()`), read inline.
#[cfg(not(CONFIG_ARM64_PSEUDO_NMI))]
#[inline(always)]
pub(crate) fn irqs_disabled() -> bool {
    // SAFETY: reading DAIF has no side effect.
    unsafe { Cpu::current() }.daif() & u64::from(bindings::PSR_I_BIT) != 0
}

/// `irqs_disabled()`: with pseudo-NMI the kernel may mask IRQs through the GIC's
/// priority mask instead, so the kernel's own function answers.
#[cfg(CONFIG_ARM64_PSEUDO_NMI)]
pub(crate) fn irqs_disabled() -> bool {
    // SAFETY: reads this CPU's IRQ mask.
    unsafe { glue::vhe_rs_irqs_disabled() }
}

/// `BUG_ON(!current->mm)`, as `kvm_arch_vcpu_load_fp()` asserts: the call into
/// C happens only when the assertion fails.
#[inline(always)]
pub(crate) fn bug_on_no_mm() {
    if !Task::current().has_mm() {
        // SAFETY: `BUG()`s, in task context.
        unsafe { glue::vhe_rs_bug_no_mm() }
    }
}
