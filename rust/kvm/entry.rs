// SPDX-License-Identifier: GPL-2.0

//! The backend's entry points: the ops table handed to KVM
//! (`struct kvm_vhe_backend_ops`, `asm/kvm_vhe_backend.h` of the hook series),
//! built here from the chosen [`Parts`], and the callbacks in it: every one is
//! an adapter, [`vcpu_callback`] or [`vm_callback`], instantiated for a safe
//! step declared with `steps!`, in the manner of `rust/kernel/net/phy.rs`.

use super::glue::{self, Cap, Stat};
use super::host::{self, Hook};
use super::host_data::HOST_DATA;
use super::stats::{self, STATS};
use super::step::{self, with_irqs_off, Step as StepCtx};
use super::task;
use super::vcpu::Vcpu;
use crate::arch::Cpu;
use crate::parts::{Parts, Step};
use crate::world::debug_state::{self, DebugStateContext};
use crate::world::{fp, loadput};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

/// A step KVM calls with a vCPU.
trait VcpuStep {
    /// Runs the step on `vcpu`, at EL2 on a VHE host, with preemption (or
    /// IRQs) disabled.
    fn run(vcpu: &Vcpu);
}

/// A VM lifecycle callback (`vm_init`, `vm_supported`, `vm_destroy`).
trait VmStep {
    /// What KVM asked (`bool`), or nothing (`()`).
    type Answer;
    /// Runs the callback. The VM itself is not used.
    fn run() -> Self::Answer;
}

/// The adapter of every vCPU step: the `extern "C"` function KVM calls.
///
/// # Safety
///
/// Called by KVM through the ops table, with the vCPU the step runs on: live,
/// the calling thread's, preemption or IRQs disabled (the contract of
/// `struct kvm_vhe_backend_ops`).
unsafe extern "C" fn vcpu_callback<S: VcpuStep>(vcpu: *mut bindings::kvm_vcpu) {
    // SAFETY: the function's contract: `vcpu` is valid for the call.
    S::run(unsafe { Vcpu::from_raw(vcpu) })
}

/// The adapter of every VM lifecycle callback.
///
/// # Safety
///
/// Called by KVM through the ops table, with the VM (not dereferenced).
unsafe extern "C" fn vm_callback<S: VmStep>(_kvm: *mut bindings::kvm) -> S::Answer {
    S::run()
}

/// The `vcpu_run` step's entry point (`__kvm_vcpu_run_vhe()`'s place): the
/// whole run path is inlined into it, so that it is one function that the
/// glue blacklists for kprobes (`NOKPROBE_SYMBOL`, as the C's run path is) and
/// `tools/noinstr-check` reads from.
///
/// # Safety
///
/// Called by KVM through the ops table from `__kvm_vcpu_run()`, with the vCPU
/// it runs: live, the calling thread's, every exception masked.
#[no_mangle]
unsafe extern "C" fn vhe_rs_vcpu_run(vcpu: *mut bindings::kvm_vcpu) -> core::ffi::c_int {
    // SAFETY: the function's contract: `vcpu` is valid for the call.
    super::run::vcpu_run(unsafe { Vcpu::from_raw(vcpu) })
}

/// Declares the steps: a zero-sized type per step implementing [`VcpuStep`]
/// or [`VmStep`] with the body given.
macro_rules! steps {
    ($($(#[$m:meta])* $kind:ident $name:ident($($arg:ident)?) $(-> $answer:ty)? $body:block)*) => {
        $(
            $(#[$m])*
            struct $name;
            steps!(@impl $kind $name($($arg)?) $(-> $answer)? $body);
        )*
    };
    (@impl vcpu $name:ident($vcpu:ident) $body:block) => {
        impl VcpuStep for $name {
            #[inline(always)]
            fn run($vcpu: &Vcpu) $body
        }
    };
    (@impl vm $name:ident() -> $answer:ty $body:block) => {
        impl VmStep for $name {
            type Answer = $answer;
            fn run() -> $answer $body
        }
    };
}

/// The context of a step on `vcpu` (see [`StepCtx::new`]).
#[inline(always)]
fn ctx(vcpu: &Vcpu) -> StepCtx<'_> {
    // SAFETY: only called from the steps below, which KVM runs on `vcpu` at
    // EL2 on a VHE host (checked at init) with preemption or IRQs disabled.
    unsafe { StepCtx::new(vcpu) }
}

/// The context of `vcpu_load` (see [`StepCtx::for_load`]).
fn load_ctx(vcpu: &Vcpu) -> StepCtx<'_> {
    // SAFETY: as for `ctx`.
    unsafe { StepCtx::for_load(vcpu) }
}

/// The context of `vcpu_put` (see [`StepCtx::for_loaded`]).
fn put_ctx(vcpu: &Vcpu) -> StepCtx<'_> {
    // SAFETY: as for `ctx`.
    unsafe { StepCtx::for_loaded(vcpu) }
}

/// This CPU's registers, for the step whose context is `_step` (which only a
/// step can make).
#[inline(always)]
fn cpu(_step: &StepCtx<'_>) -> Cpu {
    // SAFETY: `_step` exists, so a step is running: at EL2 on a VHE host,
    // owning the registers it moves until it returns.
    unsafe { Cpu::current() }
}

steps! {
    /// `vm_init`: at VM creation; a VM created while `enable` is off stays on C.
    vm VmInit() -> bool {
        let on = host::enabled();
        if !on {
            stats::count_slow(Stat::VmCDisabled);
        }
        on
    }

    /// `vm_supported`: at the VM's first KVM_RUN. Nested-virt VMs never get
    /// here (the hook keeps them on C); every other VM is handled.
    vm VmSupported() -> bool {
        stats::count_slow(Stat::VmRust);
        true
    }

    /// `vm_destroy`: pairs with a successful `vm_init`.
    vm VmDestroy() -> () {
        stats::count_slow(Stat::VmDestroyed);
    }

    /// `load_fp` (`kvm_arch_vcpu_load_fp()`), preemption disabled.
    vcpu LoadFp(vcpu) {
        let mut c = ctx(vcpu);
        if !c.has_cap(Cap::Fpsimd) {
            return;
        }
        // As `kvm_arch_vcpu_load_fp()`: a vCPU thread has an mm.
        task::bug_on_no_mm();
        c.count(Stat::LoadFp);
        fp::load(&mut c)
    }

    /// `ctxflush_fp` (`kvm_arch_vcpu_ctxflush_fp()`), IRQs off.
    vcpu CtxflushFp(vcpu) {
        let mut c = ctx(vcpu);
        if fp::ctxflush(&mut c) {
            c.count(Stat::CtxflushForeign);
        }
    }

    /// `ctxsync_fp` (`kvm_arch_vcpu_ctxsync_fp()`), IRQs off (asserted, as
    /// the C does).
    vcpu CtxsyncFp(vcpu) {
        if !task::irqs_disabled() {
            stats::report(Stat::CtxsyncIrqsOn);
        }
        let mut c = ctx(vcpu);
        if fp::ctxsync(&mut c) {
            c.count(Stat::CtxsyncBind);
        }
    }

    /// `put_fp` (`kvm_arch_vcpu_put_fp()`), preemption disabled; IRQs off
    /// around the save and flush, as the C does, so that no IPI sees the
    /// registers half flushed.
    vcpu PutFp(vcpu) {
        with_irqs_off(|| {
            let mut c = ctx(vcpu);
            c.count(Stat::PutFp);
            if fp::put(&mut c) {
                c.count(Stat::PutFpSave);
            }
        })
    }

    /// `setup_debug` (`kvm_arm_setup_debug()`), IRQs off, before each entry.
    vcpu SetupDebug(vcpu) {
        let mut c = ctx(vcpu);
        let mut regs = cpu(&c);
        let done = debug_state::setup_debug(&mut c, &mut regs);
        let g = c.guest_debug();
        if g.singlestep() {
            c.count(Stat::DebugVmmSs);
        }
        if g.use_hw() {
            c.count(Stat::DebugVmmHw);
        }
        if done.setup.preserve.is_some() && !g.any() {
            c.count(Stat::DebugOsLock);
        }
        if done.illegal {
            // The C BUG()s; the guest runs on its own debug state.
            stats::report(Stat::DebugIllegal);
        }
        #[cfg(vhe_rs_break_trap)]
        break_trap(&mut c, &mut regs);
    }

    /// `clear_debug` (`kvm_arm_clear_debug()`), IRQs off, after each exit.
    vcpu ClearDebug(vcpu) {
        debug_state::clear_debug(&mut ctx(vcpu));
    }

    /// `vcpu_load` (`kvm_vcpu_load_vhe()`), preemption disabled. KVM puts a
    /// vCPU before it loads another on the CPU, and a load and its put reach
    /// the same backend (the hook records it per vCPU): a load over one of
    /// this module's that was never put is a bug, counted (not WARNed: the
    /// scheduler calls this with its runqueue locked, where nothing may print).
    vcpu VcpuLoad(vcpu) {
        let mut c = load_ctx(vcpu);
        c.count(Stat::VcpuLoad);
        if c.loaded_here() {
            c.count(Stat::LoadLoaded);
        }
        let mut regs = cpu(&c);
        #[cfg(vhe_rs_break_restore)]
        let left = crate::arch::RegAccess::read::<crate::arch::TPIDR_EL1::Reg>(&mut regs);
        loadput::load(&mut c, &mut regs);
        #[cfg(vhe_rs_break_restore)]
        crate::arch::RegAccess::write(&mut regs, left);
        c.record_loaded();
    }

    /// `vcpu_put` (`kvm_vcpu_put_vhe()`), preemption disabled. A put with no
    /// vCPU loaded by this module on the CPU (its load was the C's, or was
    /// put already) is a bug, counted as in `VcpuLoad`.
    vcpu VcpuPut(vcpu) {
        let mut c = put_ctx(vcpu);
        c.count(Stat::VcpuPut);
        if !c.loaded_here() {
            c.count(Stat::PutNotLoaded);
        }
        let mut regs = cpu(&c);
        loadput::put(&mut c, &mut regs);
        c.forget_loaded();
    }
}

/// The deliberately broken trap configuration of `tools/stress --broken
/// trap` (built with `KRUSTFLAGS='--cfg vhe_rs_break_trap'` by
/// `tools/module-variant`, never the shipped module): MDCR_EL2.TDA never set,
/// so a guest whose debug state is clean reaches the CPU's debug registers
/// (the host's, or another guest's) untrapped and unswitched. The state
/// fuzzer must catch it. (Its twin, `vhe_rs_break_restore`, in `VcpuLoad`:
/// the guest's TPIDR_EL1 not restored at `vcpu_load`, the CPU keeping what
/// was there.)
#[cfg(vhe_rs_break_trap)]
fn break_trap(c: &mut StepCtx<'_>, regs: &mut Cpu) {
    use crate::arch::{RegAccess, Value, MDCR_EL2};
    let v: Value<MDCR_EL2::Reg> = Value::from_raw(c.vcpu_mdcr().raw() & !MDCR_EL2::TDA.mask());
    c.set_vcpu_mdcr(v);
    regs.write(v);
}

/// The ops table KVM holds while the module is registered.
///
/// # Invariants
///
/// Written only by [`Registration::new`] while [`REGISTERED`] is held and before
/// KVM is given it; read-only from then until the [`Registration`] is dropped.
struct Ops(Opaque<bindings::kvm_vhe_backend_ops>);

// SAFETY: written only before it is shared with KVM, and not while KVM holds it
// (type invariant); read-only meanwhile.
unsafe impl Sync for Ops {}

static OPS: Ops = Ops(Opaque::uninit());

/// Set while a [`Registration`] exists (or is being made): there is one.
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Fills `ops` for the steps of `parts`; the others stay NULL (the built-in C).
fn fill(ops: &mut bindings::kvm_vhe_backend_ops, parts: Parts) {
    ops.vm_init = Some(vm_callback::<VmInit>);
    ops.vm_supported = Some(vm_callback::<VmSupported>);
    ops.vm_destroy = Some(vm_callback::<VmDestroy>);
    // Each step's callback is the adapter for the step type of the same name
    // as its `parts::Step`, in the ops field the kernel names for it.
    macro_rules! vcpu_ops {
        ($step:expr; $($name:ident => $field:ident,)* ; $($todo:ident),*) => {
            match $step {
                $(Step::$name => ops.$field = Some(vcpu_callback::<$name>),)*
                // Not implemented: `Parts::parse` never accepts their parts.
                $(Step::$todo)|* => {}
            }
        };
    }
    for part in parts.iter() {
        for step in part.steps {
            vcpu_ops! { step;
                LoadFp => load_fp,
                CtxflushFp => ctxflush_fp,
                CtxsyncFp => ctxsync_fp,
                PutFp => put_fp,
                VcpuLoad => vcpu_load,
                VcpuPut => vcpu_put,
                SetupDebug => setup_debug,
                ClearDebug => clear_debug,
                ; VcpuRun
            }
            if *step == Step::VcpuRun {
                ops.vcpu_run = Some(vhe_rs_vcpu_run);
            }
        }
    }
}

/// The module registered with KVM as the VHE backend; dropping it unregisters.
///
/// # Invariants
///
/// While it exists, [`OPS`] is registered with KVM and [`REGISTERED`] is set.
pub(crate) struct Registration(());

impl Registration {
    /// Registers the backend with KVM, taking the steps of `parts`. `_hook`
    /// says the hook series' symbols were found. Fails with `EBUSY` if the
    /// module is registered already, or with KVM's error.
    pub(crate) fn new(module: &'static ThisModule, parts: Parts, _hook: &Hook) -> Result<Self> {
        if REGISTERED
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(EBUSY);
        }
        // SAFETY: `_hook` says `vhe_rs_hook_lookup()` found every symbol of the
        // hook series: both are per-CPU addresses of variables that outlive the
        // module; no step runs before registration (`REGISTERED` was clear).
        unsafe {
            HOST_DATA.set(glue::vhe_rs_percpu_host_data() as usize);
            STATS.set(glue::vhe_rs_percpu_stats() as usize);
            stats::CPU_RUN.set(glue::vhe_rs_percpu_cpu() as usize);
        }
        step::read_caps();
        super::run::set_vectors();
        let mut ops = bindings::kvm_vhe_backend_ops {
            abi: bindings::KVM_VHE_BACKEND_ABI,
            owner: module.as_ptr(),
            name: c"vhe_rs".as_ptr(),
            ..Default::default()
        };
        fill(&mut ops, parts);
        // SAFETY: KVM does not hold `OPS` (`REGISTERED` was clear), and nobody
        // else writes it while `REGISTERED` is set (`Ops` invariant).
        unsafe { OPS.0.get().write(ops) };
        // SAFETY: `OPS` is initialised and lives as long as the module; the
        // `Registration` unregisters it before the module goes.
        let ret = unsafe { glue::vhe_rs_backend_register(OPS.0.get()) };
        if ret < 0 {
            REGISTERED.store(false, Ordering::Release);
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: registered, and `REGISTERED` is set.
        Ok(Registration(()))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: `OPS` is registered (type invariant).
        unsafe { glue::vhe_rs_backend_unregister(OPS.0.get()) };
        REGISTERED.store(false, Ordering::Release);
    }
}
