// SPDX-License-Identifier: GPL-2.0

//! `struct kvm_vcpu` and `struct kvm_cpu_context` as Rust sees them: `Opaque`
//! wrappers reached with `from_raw`, whose methods are the only accesses to
//! their fields.

use super::glue::{self, Stat, VcpuFeature};
use super::stats;
use crate::arch::{consts, Value, HCRX_EL2, MDCR_EL2};
use crate::world::debug_state::{DebugSource, Preserved};
use crate::world::stage2::Stage2;
use crate::world::sysreg_sr::{Feature, Features, Spsr32, VcpuSlot, VcpuSysReg};
use crate::world::traps::FgtGroup;
use core::ptr::addr_of_mut;
use kernel::bindings;
use kernel::types::Opaque;

/// The length of the array a field accessor returns, from its type.
const fn array_len<T, const N: usize>(_field: fn(&bindings::kvm_cpu_context) -> &[T; N]) -> usize {
    N
}

/// The length of `kvm_cpu_context::sys_regs[]` (`NR_SYS_REGS`).
pub(crate) const SYS_REGS_LEN: usize = array_len(|c| &c.sys_regs);

/// Declares [`vcpu_sysreg_index`] from the one list of `enum vcpu_sysreg`
/// names (`crate::world::sysreg_sr::with_vcpu_sysregs!`), each checked at
/// compile time to index `sys_regs[]`.
macro_rules! vcpu_sysreg_index {
    ($($name:ident),* $(,)?) => {
        /// The index of `r` in `sys_regs[]` as the kernel being built numbers it
        /// (`vcpu_sysreg_*` of the bindings): what `__vcpu_sys_reg(vcpu, r)` takes.
        const fn vcpu_sysreg_index(r: VcpuSysReg) -> usize {
            kernel::macros::paste! {
                match r {
                    $(VcpuSysReg::$name => bindings::[<vcpu_sysreg_ $name>] as usize,)*
                }
            }
        }

        $(
            kernel::macros::paste! {
                const _: () = assert!(
                    (bindings::[<vcpu_sysreg_ $name>] as usize) < SYS_REGS_LEN,
                    concat!(stringify!($name), " is not a slot of sys_regs[]")
                );
            }
        )*
    };
}
crate::world::sysreg_sr::with_vcpu_sysregs!(vcpu_sysreg_index);

/// A vCPU flag of `asm/kvm_host.h` (`DEBUG_DIRTY`, ...), as the compiler
/// evaluated the kernel's triplet (`set, value, mask`) for the kernel being
/// built (`rust/gen/sysregs.in`, `flag` lines).
///
/// # Invariants
///
/// `offset` is the offset in `struct kvm_vcpu` of one of its `u8` flag sets
/// (`arch.cflags`, `arch.iflags`, `arch.sflags`); `mask` is one bit and
/// `value` is `mask` (a flag of `__vcpu_single_flag()`).
#[derive(Clone, Copy)]
pub(crate) struct VcpuFlag {
    offset: usize,
    value: u8,
    mask: u8,
}

impl VcpuFlag {
    /// The flag of the generated constants; fails the build if the kernel's
    /// triplet is not a flag of a `u8` set of `struct kvm_vcpu_arch`.
    const fn new(offset: u64, size: u64, value: u64, mask: u64) -> VcpuFlag {
        const fn set(off: usize) -> usize {
            core::mem::offset_of!(bindings::kvm_vcpu, arch) + off
        }
        let offset = offset as usize;
        assert!(
            offset == set(core::mem::offset_of!(bindings::kvm_vcpu_arch, cflags))
                || offset == set(core::mem::offset_of!(bindings::kvm_vcpu_arch, iflags))
                || offset == set(core::mem::offset_of!(bindings::kvm_vcpu_arch, sflags)),
            "a vCPU flag's set is not cflags, iflags or sflags"
        );
        assert!(size == 1 && mask <= 0xff && value & !mask == 0);
        // One bit: `flag()` answers whether it is set, which is what
        // `vcpu_get_flag()` answers only for a flag of one bit (not for a
        // field such as `EXCEPT_MASK`).
        assert!(mask.count_ones() == 1 && value == mask);
        // INVARIANT: checked above.
        VcpuFlag {
            offset,
            value: value as u8,
            mask: mask as u8,
        }
    }

    /// The address of the flag's set in `vcpu` (not dereferenced here).
    #[inline(always)]
    fn set_ptr(self, vcpu: *mut bindings::kvm_vcpu) -> *mut u8 {
        vcpu.cast::<u8>().wrapping_add(self.offset)
    }
}

/// Declares the [`VcpuFlag`]s of `rust/gen/sysregs.in`.
macro_rules! vcpu_flags {
    ($($(#[$m:meta])* $name:ident,)*) => {
        $(
            kernel::macros::paste! {
                $(#[$m])*
                pub(crate) const $name: VcpuFlag = VcpuFlag::new(
                    consts::[<$name _FLAG_OFFSET>],
                    consts::[<$name _FLAG_SIZE>],
                    consts::[<$name _FLAG_VALUE>],
                    consts::[<$name _FLAG_MASK>],
                );
            }
        )*
    };
}

vcpu_flags! {
    /// The guest's debug registers are switched at the next entry.
    DEBUG_DIRTY,
    /// A software step is active-pending (the VMM single-steps).
    DBG_SS_ACTIVE_PENDING,
    /// The guest's EL1 system registers are loaded on the CPU.
    SYSREGS_ON_CPU,
    /// The guest's PMUSERENR_EL0 is on the CPU.
    PMUSERENR_ON_CPU,
}

/// A CPU context: the guest's (`vcpu->arch.ctxt`) or the host's
/// (`host_data->host_ctxt`).
///
/// # Invariants
///
/// Not a nested vCPU's: `vncr_array` is NULL, so `sys_regs[]` holds every
/// register (nested-virt VMs never reach the backend).
#[repr(transparent)]
pub(crate) struct CpuContext(Opaque<bindings::kvm_cpu_context>);

impl CpuContext {
    /// The address of `sys_regs[i]`, or `None` past its end.
    #[inline(always)]
    fn sys_reg_ptr(&self, i: usize) -> Option<*mut u64> {
        if i >= SYS_REGS_LEN {
            return None;
        }
        let regs = self.0.get();
        // SAFETY: `regs` points to a live context (the wrapper's validity); `i` is
        // in bounds; only addresses are formed, no reference is made.
        Some(unsafe { addr_of_mut!((*regs).sys_regs).cast::<u64>().add(i) })
    }

    /// The address of `slot`.
    #[inline(always)]
    fn slot_ptr(&self, slot: VcpuSlot) -> Option<*mut u64> {
        let c = self.0.get();
        // SAFETY: `c` is live (the wrapper's validity); only field addresses are
        // taken, no reference is made.
        unsafe {
            Some(match slot {
                VcpuSlot::Sys(r) => return self.sys_reg_ptr(vcpu_sysreg_index(r)),
                VcpuSlot::Spsr32(Spsr32::Abt) => addr_of_mut!((*c).spsr_abt),
                VcpuSlot::Spsr32(Spsr32::Und) => addr_of_mut!((*c).spsr_und),
                VcpuSlot::Spsr32(Spsr32::Irq) => addr_of_mut!((*c).spsr_irq),
                VcpuSlot::Spsr32(Spsr32::Fiq) => addr_of_mut!((*c).spsr_fiq),
            })
        }
    }

    /// Reads `slot`. An index past `sys_regs[]` cannot happen (the indices are
    /// checked at compile time); it would read 0 and be reported.
    #[inline(always)]
    pub(crate) fn read(&self, slot: VcpuSlot) -> u64 {
        Self::load(self.slot_ptr(slot))
    }

    /// Writes `slot` (reported, as for [`CpuContext::read`], if out of bounds).
    #[inline(always)]
    pub(crate) fn write(&self, slot: VcpuSlot, val: u64) {
        Self::store(self.slot_ptr(slot), val)
    }

    /// Reads `sys_regs[i]` (`ctxt_sys_reg()`), as [`CpuContext::read`].
    #[inline(always)]
    pub(crate) fn read_sys_reg(&self, i: usize) -> u64 {
        Self::load(self.sys_reg_ptr(i))
    }

    /// Writes `sys_regs[i]`, as [`CpuContext::write`].
    #[inline(always)]
    pub(crate) fn write_sys_reg(&self, i: usize, val: u64) {
        Self::store(self.sys_reg_ptr(i), val)
    }

    /// Reads what a `*_ptr` method found, or reports that it found nothing.
    #[inline(always)]
    fn load(p: Option<*mut u64>) -> u64 {
        match p {
            // SAFETY: a field of a live context (the wrapper's validity); the
            // vCPU is this thread's and the host context this CPU's (the
            // step's, see `Step`).
            Some(p) => unsafe { p.read() },
            None => {
                stats::report(Stat::BadSlot);
                0
            }
        }
    }

    /// Writes what a `*_ptr` method found, or reports that it found nothing.
    #[inline(always)]
    fn store(p: Option<*mut u64>, val: u64) {
        match p {
            // SAFETY: as for `load`.
            Some(p) => unsafe { p.write(val) },
            None => stats::report(Stat::BadSlot),
        }
    }
}

/// A vCPU handed to one of the backend's steps.
///
/// # Invariants
///
/// Wraps a live `struct kvm_vcpu` that KVM passed to the current step (the
/// vCPU's thread runs it, with `vcpu->mutex` held, preemption or IRQs
/// disabled); references do not outlive the step.
#[repr(transparent)]
pub(crate) struct Vcpu(Opaque<bindings::kvm_vcpu>);

impl Vcpu {
    /// Wraps the vCPU KVM passed to a step.
    ///
    /// # Safety
    ///
    /// `ptr` is the vCPU KVM passed to the step being run, valid and this
    /// thread's for `'a`, which does not outlive the step.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::kvm_vcpu) -> &'a Self {
        // SAFETY: `Vcpu` is `repr(transparent)` over `Opaque<kvm_vcpu>`, itself
        // transparent over `kvm_vcpu`; validity is the caller's contract.
        // INVARIANT: as the caller guarantees.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The raw pointer, for the glue.
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *mut bindings::kvm_vcpu {
        self.0.get()
    }

    /// The guest's CPU context (`vcpu->arch.ctxt`).
    #[inline(always)]
    pub(crate) fn ctxt(&self) -> &CpuContext {
        // SAFETY: a field of the live vCPU (type invariant), transparent wrapper.
        unsafe { &*addr_of_mut!((*self.as_ptr()).arch.ctxt).cast::<CpuContext>() }
    }

    /// What the vCPU and its VM have, as far as the steps care: the
    /// deferred registers' features (`ctxt_has_*()`, `vcpu_el1_is_32bit()`;
    /// RAS is the host's), SVE and FPMR; one call into the glue.
    pub(crate) fn facts(&self, ras: bool) -> VcpuFacts {
        // SAFETY: the vCPU is live (type invariant); the glue asks
        // `kvm_has_feat()`-style questions of it and of final capabilities.
        let bits: u32 = unsafe { glue::vhe_rs_vcpu_features(self.as_ptr()) };
        let mut features = if ras {
            Features::NONE.with(Feature::Ras)
        } else {
            Features::NONE
        };
        for f in VcpuFeature::ALL {
            if bits & (1 << *f as u32) != 0 {
                if let Some(f) = feature(*f) {
                    features = features.with(f);
                }
            }
        }
        VcpuFacts {
            features,
            sve: bits & (1 << VcpuFeature::Sve as u32) != 0,
            fpmr: bits & (1 << VcpuFeature::Fpmr as u32) != 0,
        }
    }

    /// `vcpu->arch.mdcr_el2`.
    pub(crate) fn mdcr_el2(&self) -> Value<MDCR_EL2::Reg> {
        // SAFETY: the vCPU is live (type invariant).
        Value::from_raw(unsafe { (*self.as_ptr()).arch.mdcr_el2 })
    }

    /// Sets `vcpu->arch.mdcr_el2`.
    pub(crate) fn set_mdcr_el2(&self, val: Value<MDCR_EL2::Reg>) {
        // SAFETY: the live vCPU's field (type invariant), this thread's.
        unsafe { (*self.as_ptr()).arch.mdcr_el2 = val.raw() }
    }

    /// `vcpu->arch.guest_debug_preserved`.
    pub(crate) fn guest_debug_preserved(&self) -> Preserved {
        // SAFETY: the live vCPU's field (type invariant).
        let p = unsafe { &(*self.as_ptr()).arch.guest_debug_preserved };
        Preserved {
            mdscr: p.mdscr_el1,
            pstate_ss: p.pstate_ss,
        }
    }

    /// Sets `vcpu->arch.guest_debug_preserved`.
    pub(crate) fn set_guest_debug_preserved(&self, p: Preserved) {
        // SAFETY: the live vCPU's field (type invariant), this thread's.
        let f = unsafe { &mut (*self.as_ptr()).arch.guest_debug_preserved };
        f.mdscr_el1 = p.mdscr;
        f.pstate_ss = p.pstate_ss;
    }

    /// Which debug state `vcpu->arch.debug_ptr` points at: the guest's own
    /// (`vcpu_debug_state`) or the VMM's (`external_debug_state`). KVM points
    /// it at nothing else.
    pub(crate) fn debug_source(&self) -> DebugSource {
        let p = self.as_ptr();
        // SAFETY: the live vCPU's fields (type invariant); the address of a
        // field is taken, not read.
        let external = unsafe { addr_of_mut!((*p).arch.external_debug_state) };
        if self.debug_ptr() == external {
            DebugSource::External
        } else {
            DebugSource::Own
        }
    }

    /// Points `vcpu->arch.debug_ptr` at `source`
    /// (`kvm_arm_reset_debug_ptr()` for the guest's own).
    pub(crate) fn set_debug_source(&self, source: DebugSource) {
        let p = self.as_ptr();
        // SAFETY: the live vCPU's fields (type invariant), this thread's: the
        // pointer is set to one of its own fields, as the C sets it.
        unsafe {
            (*p).arch.debug_ptr = match source {
                DebugSource::Own => addr_of_mut!((*p).arch.vcpu_debug_state),
                DebugSource::External => addr_of_mut!((*p).arch.external_debug_state),
            }
        }
    }

    /// `vcpu->arch.hcrx_el2`.
    pub(crate) fn hcrx_el2(&self) -> Value<HCRX_EL2::Reg> {
        // SAFETY: the vCPU is live (type invariant).
        Value::from_raw(unsafe { (*self.as_ptr()).arch.hcrx_el2 })
    }

    /// `kvm->arch.fgu[group]` of the vCPU's VM: final once the VM has run (set
    /// at its first KVM_RUN, before any load reaches the backend).
    pub(crate) fn fgu(&self, group: FgtGroup) -> u64 {
        let id = match group {
            FgtGroup::Hfgxtr => bindings::fgt_group_id_HFGxTR_GROUP,
            FgtGroup::Hfgitr => bindings::fgt_group_id_HFGITR_GROUP,
            FgtGroup::Hdfgrtr => bindings::fgt_group_id_HDFGRTR_GROUP,
            FgtGroup::Hafgrtr => bindings::fgt_group_id_HAFGRTR_GROUP,
        };
        // SAFETY: a live vCPU's `kvm` is its live VM (type invariant).
        unsafe {
            (*(*self.as_ptr()).kvm)
                .arch
                .fgu
                .get(id as usize)
                .copied()
                .unwrap_or(0)
        }
    }

    /// The stage-2 translation of the vCPU's current MMU (`kvm_get_vttbr()`).
    pub(crate) fn stage2(&self) -> Stage2 {
        let mut s2 = glue::vhe_rs_stage2 { vtcr: 0, vttbr: 0 };
        // SAFETY: the vCPU is live (type invariant): its `hw_mmu` is its VM's
        // stage-2 MMU; `s2` is a local.
        unsafe { glue::vhe_rs_vcpu_stage2(self.as_ptr(), &mut s2) };
        Stage2 {
            vtcr: Value::from_raw(s2.vtcr),
            vttbr: Value::from_raw(s2.vttbr),
        }
    }

    /// `vcpu_get_flag(vcpu, flag)`: `READ_ONCE(vcpu->arch.<set>) & mask`.
    #[inline(always)]
    pub(crate) fn flag(&self, flag: VcpuFlag) -> bool {
        // SAFETY: `flag.offset` is the offset of a `u8` flag set inside
        // `struct kvm_vcpu` (`VcpuFlag` invariant) of the live vCPU (type
        // invariant); a volatile load, as the C's `READ_ONCE`.
        let set = unsafe { flag.set_ptr(self.as_ptr()).read_volatile() };
        set & flag.mask != 0
    }

    /// `vcpu_set_flag(vcpu, flag)` (`on`) or `vcpu_clear_flag(vcpu, flag)`.
    #[inline(always)]
    pub(crate) fn set_flag(&self, flag: VcpuFlag, on: bool) {
        let p = flag.set_ptr(self.as_ptr());
        // SAFETY: as for `flag`. No other thread writes the vCPU's flags
        // meanwhile: their writers (KVM_RUN's steps, KVM_SET_GUEST_DEBUG,
        // KVM_ARM_VCPU_INIT, ...) hold `vcpu->mutex`, which the step's thread
        // holds (type invariant); nothing writes them from interrupt context,
        // and the step runs with preemption or IRQs off, as the C's accessors
        // make sure of.
        unsafe {
            let old = p.read();
            let new = if on {
                old | flag.value
            } else {
                old & !flag.mask
            };
            p.write(new)
        }
    }

    /// `fpsimd_bind_state_to_cpu()` with the vCPU's FP state, as
    /// `kvm_arch_vcpu_ctxsync_fp()` does; IRQs are off.
    pub(crate) fn bind_guest_fp(&self) {
        // SAFETY: the vCPU is live and this thread's (type invariant).
        unsafe { glue::vhe_rs_bind_guest_fp(self.as_ptr()) }
    }
}

/// The run path's accesses to the vCPU (`crate::kvm::run`): plain loads and
/// stores of its fields, each `#[inline(always)]` (the run path is one
/// function, instrumentation free).
impl Vcpu {
    /// `vcpu->arch.ctxt.regs`, the guest's `struct user_pt_regs`.
    #[inline(always)]
    fn regs(&self) -> *mut bindings::user_pt_regs {
        // SAFETY: a field address of the live vCPU (type invariant); no
        // reference is made.
        unsafe { addr_of_mut!((*self.as_ptr()).arch.ctxt.regs) }
    }

    /// `*vcpu_pc(vcpu)`.
    #[inline(always)]
    pub(crate) fn pc(&self) -> u64 {
        // SAFETY: the live vCPU's field (type invariant), this thread's.
        unsafe { (*self.regs()).pc }
    }

    /// Sets `*vcpu_pc(vcpu)`.
    #[inline(always)]
    pub(crate) fn set_pc(&self, val: u64) {
        // SAFETY: as for `pc`.
        unsafe { (*self.regs()).pc = val }
    }

    /// `*vcpu_cpsr(vcpu)`: the guest's PSTATE.
    #[inline(always)]
    pub(crate) fn pstate(&self) -> u64 {
        // SAFETY: as for `pc`.
        unsafe { (*self.regs()).pstate }
    }

    /// Sets `*vcpu_cpsr(vcpu)`.
    #[inline(always)]
    pub(crate) fn set_pstate(&self, val: u64) {
        // SAFETY: as for `pc`.
        unsafe { (*self.regs()).pstate = val }
    }

    /// `vcpu_gp_regs(vcpu)->regs[n]` for `n` < 31, and the word after them
    /// (`sp`) for 31, as C indexing past `regs[30]` reaches it; `n` > 31 is
    /// not a register number (5-bit fields cannot hold one) and reads 0.
    #[inline(always)]
    pub(crate) fn pt_reg(&self, n: u64) -> u64 {
        // SAFETY: as for `pc`; the index is checked.
        unsafe {
            let r = &*self.regs();
            match r.regs.get(n as usize) {
                Some(v) => *v,
                None if n as usize == r.regs.len() => r.sp,
                None => 0,
            }
        }
    }

    /// Writes what [`Vcpu::pt_reg`] reads (a write past `sp` is dropped).
    #[inline(always)]
    pub(crate) fn set_pt_reg(&self, n: u64, val: u64) {
        // SAFETY: as for `pc`; the index is checked.
        unsafe {
            let r = &mut *self.regs();
            let len = r.regs.len();
            match r.regs.get_mut(n as usize) {
                Some(v) => *v = val,
                None if n as usize == len => r.sp = val,
                None => {}
            }
        }
    }

    /// `vcpu->arch.hcr_el2`.
    #[inline(always)]
    pub(crate) fn hcr_el2(&self) -> u64 {
        // SAFETY: the live vCPU's field (type invariant).
        unsafe { (*self.as_ptr()).arch.hcr_el2 }
    }

    /// Sets `vcpu->arch.hcr_el2`.
    #[inline(always)]
    pub(crate) fn set_hcr_el2(&self, val: u64) {
        // SAFETY: the live vCPU's field (type invariant), this thread's.
        unsafe { (*self.as_ptr()).arch.hcr_el2 = val }
    }

    /// `vcpu->arch.vsesr_el2`.
    #[inline(always)]
    pub(crate) fn vsesr_el2(&self) -> u64 {
        // SAFETY: the live vCPU's field (type invariant).
        unsafe { (*self.as_ptr()).arch.vsesr_el2 }
    }

    /// Sets `vcpu->arch.fault.esr_el2`.
    #[inline(always)]
    pub(crate) fn set_fault_esr(&self, val: u64) {
        // SAFETY: the live vCPU's field (type invariant), this thread's.
        unsafe { (*self.as_ptr()).arch.fault.esr_el2 = val }
    }

    /// `vcpu->arch.fault.esr_el2`.
    #[inline(always)]
    pub(crate) fn fault_esr(&self) -> u64 {
        // SAFETY: the live vCPU's field (type invariant).
        unsafe { (*self.as_ptr()).arch.fault.esr_el2 }
    }

    /// `vcpu->guest_debug`.
    #[inline(always)]
    pub(crate) fn guest_debug(&self) -> usize {
        // SAFETY: the live vCPU's field (type invariant).
        unsafe { (*self.as_ptr()).guest_debug }
    }

    /// `vcpu_sve_max_vq(vcpu)`: `sve_vq_from_vl(vcpu->arch.sve_max_vl)`.
    #[inline(always)]
    pub(crate) fn sve_max_vq(&self) -> u64 {
        // SAFETY: the live vCPU's field (type invariant).
        let vl = unsafe { (*self.as_ptr()).arch.sve_max_vl };
        u64::from(vl) / u64::from(bindings::__SVE_VQ_BYTES)
    }

    /// `vcpu->arch.debug_ptr`: the debug state the guest runs with (its own,
    /// or the VMM's `external_debug_state`), set by `kvm_arm_setup_debug()`.
    #[inline(always)]
    pub(crate) fn debug_ptr(&self) -> *mut bindings::kvm_guest_debug_arch {
        // SAFETY: the live vCPU's field (type invariant).
        unsafe { (*self.as_ptr()).arch.debug_ptr }
    }

    /// The offsets of `vcpu_ptimer(vcpu)`: `*offset.vm_offset` and
    /// `*offset.vcpu_offset`, each 0 where the pointer is NULL.
    #[inline(always)]
    pub(crate) fn ptimer_offsets(&self) -> (u64, u64) {
        // SAFETY: the live vCPU's timer context (type invariant); the offset
        // pointers are NULL or point into its VM, which outlives the vCPU.
        unsafe {
            let timers = &(*self.as_ptr()).arch.timer_cpu.timers;
            let Some(t) = timers.get(bindings::kvm_arch_timers_TIMER_PTIMER as usize) else {
                return (0, 0);
            };
            let vm = t.offset.vm_offset;
            let vcpu = t.offset.vcpu_offset;
            (
                if vm.is_null() { 0 } else { *vm },
                if vcpu.is_null() { 0 } else { *vcpu },
            )
        }
    }
}

/// The deferred-register feature a bit of `vhe_rs_vcpu_features()` stands
/// for, if it is one ([`VcpuFacts`] has the others).
const fn feature(f: VcpuFeature) -> Option<Feature> {
    Some(match f {
        VcpuFeature::Tcr2 => Feature::Tcr2,
        VcpuFeature::S1pie => Feature::S1pie,
        VcpuFeature::S1poe => Feature::S1poe,
        VcpuFeature::Mte => Feature::Mte,
        VcpuFeature::El1Is32Bit => Feature::El1Is32Bit,
        VcpuFeature::Sve | VcpuFeature::Fpmr => return None,
    })
}

/// What a vCPU and its VM have, as the steps ask it: final once the VM has
/// run (its ID registers no longer change), so `vcpu_load` asks once and its
/// runs and `vcpu_put` reuse the answer.
#[derive(Clone, Copy)]
pub(crate) struct VcpuFacts {
    /// The deferred registers' features.
    pub(crate) features: Features,
    /// `vcpu_has_sve()`.
    pub(crate) sve: bool,
    /// `kvm_has_fpmr()` of its VM.
    pub(crate) fpmr: bool,
}
