// SPDX-License-Identifier: GPL-2.0

//! The module's per-CPU counters (`struct vhe_rs_stats` of
//! `arch/arm64/glue/backend.c`, summed by its debugfs file `vhe_rs/stats`).

use super::glue::{self, Stat};
use super::percpu::{CpuOffset, PerCpu};
use super::vcpu::VcpuFacts;
use crate::world::sysreg_sr::Features;
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

/// One CPU's run-path state, `struct vhe_rs_cpu` of `glue.h`: the vCPU
/// loaded here (its features and SVE, recorded at `vcpu_load`), and the exits
/// by exception class. Written by its own CPU only, read by debugfs: relaxed
/// atomics, as [`Counters`].
#[repr(C)]
pub(crate) struct PerCpuRun {
    loaded: AtomicU64,
    exits_el2: [AtomicU64; glue::VHE_RS_NR_EC as usize],
    exits_host: [AtomicU64; glue::VHE_RS_NR_EC as usize],
}

// The C struct and this one have the same layout, field by field.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<PerCpuRun>() == size_of::<glue::vhe_rs_cpu>());
    assert!(offset_of!(PerCpuRun, loaded) == offset_of!(glue::vhe_rs_cpu, loaded_features));
    assert!(offset_of!(PerCpuRun, exits_el2) == offset_of!(glue::vhe_rs_cpu, exits_el2));
    assert!(offset_of!(PerCpuRun, exits_host) == offset_of!(glue::vhe_rs_cpu, exits_host));
};

/// The run-path state (`vhe_rs_cpu`, a per-CPU variable of the glue).
pub(crate) static CPU_RUN: PerCpu<PerCpuRun> = PerCpu::new();

/// The bit of [`PerCpuRun::loaded`] saying a vCPU is loaded (by this module).
const LOADED: u64 = 1 << 63;
/// The bit of [`PerCpuRun::loaded`] holding `vcpu_has_sve()`.
const LOADED_SVE: u64 = 1 << 62;
/// The bit of [`PerCpuRun::loaded`] holding `kvm_has_fpmr()`.
const LOADED_FPMR: u64 = 1 << 61;

/// This CPU's instance.
#[inline(always)]
pub(crate) fn cpu_run<'a>(cpu: CpuOffset) -> &'a PerCpuRun {
    // SAFETY: the glue's per-CPU variable outlives the module (`PerCpu`
    // invariant) and is only accessed atomically; `cpu` is this CPU's.
    unsafe { &*CPU_RUN.on(cpu) }
}

impl PerCpuRun {
    /// What `vcpu_load` recorded on this CPU (whose instance this is): the
    /// loaded vCPU's facts, or `None` if this module did not load it.
    #[inline(always)]
    pub(crate) fn loaded(&self) -> Option<VcpuFacts> {
        let v = self.loaded.load(Ordering::Relaxed);
        if v & LOADED == 0 {
            return None;
        }
        Some(VcpuFacts {
            features: Features::from_bits(v as u8),
            sve: v & LOADED_SVE != 0,
            fpmr: v & LOADED_FPMR != 0,
        })
    }

    /// Records what [`PerCpuRun::loaded`] answers.
    pub(crate) fn set_loaded(&self, l: Option<VcpuFacts>) {
        let v = match l {
            None => 0,
            Some(l) => {
                LOADED
                    | if l.sve { LOADED_SVE } else { 0 }
                    | if l.fpmr { LOADED_FPMR } else { 0 }
                    | u64::from(l.features.bits())
            }
        };
        self.loaded.store(v, Ordering::Relaxed)
    }

    /// Counts an exit of class `ec`: dealt with at EL2 (`el2`) or returned
    /// to the host.
    #[inline(always)]
    pub(crate) fn count_exit(&self, ec: u64, el2: bool) {
        let a = if el2 {
            &self.exits_el2
        } else {
            &self.exits_host
        };
        if let Some(n) = a.get(ec as usize) {
            n.store(n.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        }
    }
}
