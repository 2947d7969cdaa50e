// SPDX-License-Identifier: GPL-2.0

//! The module's per-CPU counters (`struct vhe_rs_stats` of
//! `arch/arm64/glue/backend.c`, summed by its debugfs file `vhe_rs/stats`).

use super::glue::{self, Stat};
use super::percpu::{CpuOffset, PerCpu};
use core::sync::atomic::{AtomicU64, Ordering};

/// One CPU's counters, `unsigned long n[VHE_RS_NR_STATS]` in C.
///
/// Each is written by its own CPU only (a step cannot migrate, and no
/// interrupt handler counts), and read by debugfs from any CPU: relaxed
/// atomic loads and stores, no read-modify-write, as `__this_cpu_inc()`.
pub(crate) type Counters = [AtomicU64; Stat::COUNT];

/// The counters (`vhe_rs_stats`, a per-CPU variable of the glue).
pub(crate) static STATS: PerCpu<Counters> = PerCpu::new();

// `unsigned long` is 64 bits on arm64: the C array and `Counters` have the same layout.
const _: () =
    assert!(core::mem::size_of::<core::ffi::c_ulong>() == core::mem::size_of::<AtomicU64>());

/// Counts `stat` on the CPU `cpu`, which the caller runs on.
#[inline(always)]
pub(crate) fn count(cpu: CpuOffset, stat: Stat) {
    // SAFETY: the counters outlive the module (`PerCpu` invariant), and are
    // only ever accessed atomically; `cpu` is this CPU's.
    let counters = unsafe { &*STATS.on(cpu) };
    if let Some(c) = counters.get(stat as usize) {
        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
}

/// Counts `stat` on this CPU with a call into C (for the VM lifecycle, which
/// may be preemptible).
pub(crate) fn count_slow(stat: Stat) {
    // SAFETY: `vhe_rs_stat_inc` increments this CPU's counter with
    // `this_cpu_inc()`, safe in any context.
    unsafe { glue::vhe_rs_stat_inc(stat as glue::vhe_rs_stat) }
}

/// Reports `stat`, a thing that cannot happen: counted and WARNed once per
/// kind. Never from the no-instrumentation window of the run path.
pub(crate) fn report(stat: Stat) {
    // SAFETY: `vhe_rs_report` counts with `this_cpu_inc()` and WARNs once
    // per kind, for the counters from `VHE_RS_STAT_FIRST_BUG` on.
    unsafe { glue::vhe_rs_report(stat as glue::vhe_rs_stat) }
}
