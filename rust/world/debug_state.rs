// SPDX-License-Identifier: GPL-2.0

//! Whose debug state the guest runs with, how its debug accesses trap, and
//! when its debug registers are switched: `kvm_arm_setup_debug()`,
//! `kvm_arm_setup_mdcr_el2()` and `kvm_arm_clear_debug()` of
//! `arch/arm64/kvm/debug.c` (Linux 6.12.117), for a non-nested vCPU on a VHE
//! host. The hyp side that moves the registers is [`crate::world::debug`].
//!
//! Three debug states exist: the host's (perf, ptrace, kgdb breakpoints and
//! watchpoints, on the CPU whenever no guest runs), the guest's own
//! (`vcpu->arch.vcpu_debug_state`) and the VMM's (`external_debug_state`,
//! from `KVM_SET_GUEST_DEBUG` with `KVM_GUESTDBG_USE_HW`). Before each entry,
//! [`setup`] decides, from the vCPU's state ([`DebugInputs`]), what the guest
//! runs with ([`DebugSetup`]):
//!
//! * the trap configuration (MDCR_EL2, [`mdcr_el2`]): the PMU, debug ROM, OS
//!   lock, SPE and trace registers always trap; debug exceptions go to EL2
//!   (TDE) while the VMM debugs; the debug registers trap (TDA) unless the
//!   guest's own state is live (dirty) and not locked;
//! * which state the switch loads ([`DebugSource`]): the VMM's while it uses
//!   hardware breakpoints, else the guest's own;
//! * MDSCR_EL1 and PSTATE.SS as the guest runs with them while the VMM
//!   debugs (single-step, MDE for the VMM's breakpoints, MDE off under the OS
//!   lock), the guest's own values preserved for [`clear`];
//! * whether the registers are switched at this entry (`DEBUG_DIRTY`): set if
//!   the VMM's breakpoints are live or the guest enabled debug (KDE or MDE),
//!   or left as a trapped guest access set it; the hyp side clears it at the
//!   exit, so a guest that stops using debug stops paying for it.
//!
//! After the exit, [`clear`] puts back the guest's own MDSCR_EL1 and PSTATE.SS
//! and marks a software step active-pending if the step did not complete.
//!
//! [`setup`] and [`clear`] are `const fn`s over plain data; [`setup_debug`]
//! and [`clear_debug`] apply them through [`DebugStateContext`] (the vCPU)
//! and the register trait (MDCR_EL2). No `unsafe`.

use crate::arch::{RegAccess, Value, MDCR_EL2, MDSCR_EL1, OSLSR_EL1, SPSR_EL2};
use crate::world::sysreg_sr::{self, VcpuSysReg};

/// `vcpu->guest_debug`: the `KVM_GUESTDBG_*` flags the VMM set with
/// `KVM_SET_GUEST_DEBUG` (0 when it debugs nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestDebug {
    /// The flags.
    pub raw: u64,
    /// `KVM_GUESTDBG_SINGLESTEP` of this kernel.
    pub singlestep: u64,
    /// `KVM_GUESTDBG_USE_HW` of this kernel.
    pub use_hw: u64,
}

impl GuestDebug {
    /// Whether the VMM debugs the guest at all (`vcpu->guest_debug != 0`).
    pub const fn any(self) -> bool {
        self.raw != 0
    }

    /// `KVM_GUESTDBG_SINGLESTEP`: the VMM single-steps the guest.
    pub const fn singlestep(self) -> bool {
        self.raw & self.singlestep != 0
    }

    /// `KVM_GUESTDBG_USE_HW`: the VMM's hardware breakpoints and watchpoints.
    pub const fn use_hw(self) -> bool {
        self.raw & self.use_hw != 0
    }
}

/// The debug register values the switch loads for the guest:
/// `vcpu->arch.debug_ptr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugSource {
    /// `&vcpu->arch.vcpu_debug_state`: the guest's own.
    Own,
    /// `&vcpu->arch.external_debug_state`: the VMM's.
    External,
}

/// `vcpu->arch.guest_debug_preserved`: the guest's own MDSCR_EL1 and
/// PSTATE.SS, kept while the VMM's debugging changes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preserved {
    /// `mdscr_el1`: a `u32` in 6.12, so MDSCR_EL1[63:32] (EMBWE, TTA, EnSPM,
    /// EHBWE) come back 0 from [`clear_debug`], as the C restores them.
    pub mdscr: u32,
    /// `pstate_ss`: PSTATE.SS was set.
    pub pstate_ss: bool,
}

/// What `kvm_arm_setup_debug()` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugInputs {
    /// `vcpu->guest_debug`.
    pub guest_debug: GuestDebug,
    /// `kvm_vcpu_os_lock_enabled()`: the guest's OSLSR_EL1.OSLK.
    pub os_lock: bool,
    /// The vCPU's `DEBUG_DIRTY` flag.
    pub dirty: bool,
    /// The vCPU's `DBG_SS_ACTIVE_PENDING` flag.
    pub ss_active_pending: bool,
    /// The guest's MDSCR_EL1 (`vcpu_read_sys_reg(vcpu, MDSCR_EL1)`).
    pub mdscr: Value<MDSCR_EL1::Reg>,
    /// The guest's PSTATE.SS (`*vcpu_cpsr(vcpu) & DBG_SPSR_SS`).
    pub pstate_ss: bool,
    /// `vcpu->arch.debug_ptr`.
    pub source: DebugSource,
    /// The host's MDCR_EL2, whose HPMN the guest keeps.
    pub host_mdcr: Value<MDCR_EL2::Reg>,
}

/// What `kvm_arm_setup_debug()` decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugSetup {
    /// `vcpu->arch.mdcr_el2`, written to MDCR_EL2 if it changed.
    pub mdcr_el2: Value<MDCR_EL2::Reg>,
    /// `save_guest_debug_regs()`: the guest's MDSCR_EL1 and PSTATE.SS to
    /// keep, if the VMM debugs it or its OS lock is set.
    pub preserve: Option<Preserved>,
    /// The guest's MDSCR_EL1 for this entry.
    pub mdscr: Value<MDSCR_EL1::Reg>,
    /// The guest's PSTATE.SS for this entry.
    pub pstate_ss: bool,
    /// `vcpu->arch.debug_ptr` for this entry.
    pub source: DebugSource,
    /// `DEBUG_DIRTY` for this entry: the switch moves the debug registers.
    pub dirty: bool,
}

/// Whether `kvm_arm_setup_debug()` `BUG_ON`s these inputs: the VMM's
/// breakpoints live (`debug_ptr` on `external_debug_state`) while the VMM
/// debugs nothing, a bug in KVM or in the backend. (The C tests it after its
/// changes, which move `debug_ptr` only for `KVM_GUESTDBG_USE_HW`, so only
/// while the VMM debugs: the inputs decide.)
pub const fn illegal(i: &DebugInputs) -> bool {
    !i.guest_debug.any() && matches!(i.source, DebugSource::External)
}

/// The trap bits `kvm_arm_setup_mdcr_el2()` always sets: the performance
/// monitors (TPM, TPMCR), SPE (TPMS), trace filter controls (TTRF), the debug
/// ROM address (TDRA) and the OS registers (TDOSA). What it leaves clear
/// (E2PB, E2TB) keeps the profiling and trace buffers from the guest.
pub const MDCR_EL2_ALWAYS: u64 = MDCR_EL2::TPM.mask()
    | MDCR_EL2::TPMS.mask()
    | MDCR_EL2::TTRF.mask()
    | MDCR_EL2::TPMCR.mask()
    | MDCR_EL2::TDRA.mask()
    | MDCR_EL2::TDOSA.mask();

/// `kvm_arm_setup_mdcr_el2()`: the host's HPMN, [`MDCR_EL2_ALWAYS`], TDE while
/// the VMM debugs, and TDA when the VMM uses the hardware breakpoints, the
/// guest's debug state is not live (`dirty` clear) or its OS lock is set.
pub const fn mdcr_el2(
    host_mdcr: Value<MDCR_EL2::Reg>,
    guest_debug: GuestDebug,
    dirty: bool,
    os_lock: bool,
) -> Value<MDCR_EL2::Reg> {
    let mut v = (host_mdcr.raw() & MDCR_EL2::HPMN.mask()) | MDCR_EL2_ALWAYS;
    if guest_debug.any() {
        v |= MDCR_EL2::TDE.mask();
    }
    if guest_debug.use_hw() || !dirty || os_lock {
        v |= MDCR_EL2::TDA.mask();
    }
    Value::from_raw(v)
}

/// `kvm_arm_setup_debug()`: what the guest runs with at this entry, for
/// inputs that are not [`illegal`].
pub const fn setup(i: DebugInputs) -> DebugSetup {
    let mdcr = mdcr_el2(i.host_mdcr, i.guest_debug, i.dirty, i.os_lock);
    let mut mdscr = i.mdscr.raw();
    let mut pstate_ss = i.pstate_ss;
    let mut source = i.source;
    let mut dirty = i.dirty;
    let mut preserve = None;
    if i.guest_debug.any() || i.os_lock {
        preserve = Some(Preserved {
            mdscr: i.mdscr.raw() as u32,
            pstate_ss: i.pstate_ss,
        });
        if i.guest_debug.singlestep() {
            // Active-pending: no new step until the pending one is taken.
            pstate_ss = !i.ss_active_pending;
            mdscr |= MDSCR_EL1::SS.mask();
        } else {
            mdscr &= !MDSCR_EL1::SS.mask();
        }
        if i.guest_debug.use_hw() {
            mdscr |= MDSCR_EL1::MDE.mask();
            source = DebugSource::External;
            dirty = true;
        } else if i.os_lock {
            // The OS lock blocks debug exceptions: the guest's only.
            mdscr &= !MDSCR_EL1::MDE.mask();
        }
    }
    if mdscr & (MDSCR_EL1::KDE.mask() | MDSCR_EL1::MDE.mask()) != 0 {
        dirty = true;
    }
    DebugSetup {
        mdcr_el2: mdcr,
        preserve,
        mdscr: Value::from_raw(mdscr),
        pstate_ss,
        source,
        dirty,
    }
}

/// What `kvm_arm_clear_debug()` decides after an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugClear {
    /// Set `DBG_SS_ACTIVE_PENDING`: the VMM single-steps and the step did not
    /// complete (PSTATE.SS is clear: the Software Step exception is pending).
    pub ss_active_pending: bool,
    /// `restore_guest_debug_regs()`: put back the guest's own MDSCR_EL1 and
    /// PSTATE.SS, if [`setup`] preserved them.
    pub restore: bool,
    /// `kvm_arm_reset_debug_ptr()`: back to the guest's own state.
    pub reset_source: bool,
}

/// `kvm_arm_clear_debug()`: from `vcpu->guest_debug`, the OS lock and the
/// guest's PSTATE.SS after the exit.
pub const fn clear(guest_debug: GuestDebug, os_lock: bool, pstate_ss: bool) -> DebugClear {
    let live = guest_debug.any() || os_lock;
    DebugClear {
        ss_active_pending: live && guest_debug.singlestep() && !pstate_ss,
        restore: live,
        reset_source: live && guest_debug.use_hw(),
    }
}

/// A vCPU flag the debug steps read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugFlag {
    /// `DEBUG_DIRTY`.
    Dirty,
    /// `DBG_SS_ACTIVE_PENDING`.
    SsActivePending,
}

/// The vCPU state `kvm_arm_setup_debug()`/`kvm_arm_clear_debug()` read and
/// write.
pub trait DebugStateContext {
    /// `vcpu->guest_debug`.
    fn guest_debug(&self) -> GuestDebug;

    /// `__vcpu_sys_reg(vcpu, OSLSR_EL1)` (emulated: never on the CPU).
    fn oslsr(&self) -> Value<OSLSR_EL1::Reg>;

    /// `vcpu_get_flag(vcpu, flag)`.
    fn flag(&self, flag: DebugFlag) -> bool;

    /// `vcpu_set_flag` (`on`) or `vcpu_clear_flag`.
    fn set_flag(&mut self, flag: DebugFlag, on: bool);

    /// `__vcpu_sys_reg(vcpu, reg)`: the vCPU's in-memory copy.
    fn sys_reg(&self, reg: VcpuSysReg) -> u64;

    /// Writes what [`DebugStateContext::sys_reg`] reads.
    fn set_sys_reg(&mut self, reg: VcpuSysReg, val: u64);

    /// `*vcpu_cpsr(vcpu)`: the guest's PSTATE.
    fn pstate(&self) -> u64;

    /// Sets `*vcpu_cpsr(vcpu)`.
    fn set_pstate(&mut self, val: u64);

    /// `vcpu->arch.guest_debug_preserved`.
    fn preserved(&self) -> Preserved;

    /// Sets `vcpu->arch.guest_debug_preserved`.
    fn set_preserved(&mut self, p: Preserved);

    /// `vcpu->arch.debug_ptr`, as which state it points at.
    fn source(&self) -> DebugSource;

    /// Points `vcpu->arch.debug_ptr` at `source`.
    fn set_source(&mut self, source: DebugSource);

    /// `vcpu->arch.mdcr_el2`.
    fn vcpu_mdcr(&self) -> Value<MDCR_EL2::Reg>;

    /// Sets `vcpu->arch.mdcr_el2`.
    fn set_vcpu_mdcr(&mut self, val: Value<MDCR_EL2::Reg>);

    /// The host's MDCR_EL2 on this CPU (the C's per-CPU `mdcr_el2`, read at
    /// KVM's CPU init; the same register value `vcpu_load` saved).
    fn host_mdcr(&self) -> Value<MDCR_EL2::Reg>;
}

// MDSCR_EL1 is not one of the registers `vcpu_read_sys_reg()` reads from the
// CPU while the vCPU is loaded (`__vcpu_read_sys_reg_from_cpu()`): the steps
// read and write the vCPU's copy, as the C does.
const _: () = assert!(!sysreg_sr::is_live(VcpuSysReg::MDSCR_EL1));

/// The guest's MDSCR_EL1: `vcpu_read_sys_reg(vcpu, MDSCR_EL1)`.
#[inline(always)]
fn mdscr<C: DebugStateContext>(ctx: &C) -> Value<MDSCR_EL1::Reg> {
    Value::from_raw(ctx.sys_reg(VcpuSysReg::MDSCR_EL1))
}

/// The SS bit of a saved PSTATE.
const PSTATE_SS: u64 = SPSR_EL2::SS.mask();

/// `pstate` with its SS bit `ss` (`*vcpu_cpsr(vcpu) |= DBG_SPSR_SS` or
/// `&= ~DBG_SPSR_SS`).
const fn with_ss(pstate: u64, ss: bool) -> u64 {
    if ss {
        pstate | PSTATE_SS
    } else {
        pstate & !PSTATE_SS
    }
}

/// `kvm_vcpu_os_lock_enabled(vcpu)`.
fn os_lock_enabled<C: DebugStateContext>(ctx: &C) -> bool {
    ctx.oslsr().field(OSLSR_EL1::OSLK) != 0
}

/// What [`setup_debug`] did: the decisions, and whether it found the state
/// the C `BUG_ON`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupDone {
    /// What the guest runs with.
    pub setup: DebugSetup,
    /// The VMM's debug state was live while the VMM debugs nothing
    /// ([`illegal`]): `debug_ptr` was put back on the guest's own state
    /// (`kvm_arm_reset_debug_ptr()`) before the setup; the caller reports it.
    pub illegal: bool,
}

/// `kvm_arm_setup_debug()`: applies [`setup`] to the vCPU and writes MDCR_EL2
/// if its value changed since the last setup (or `vcpu_load`).
///
/// Where the C `BUG_ON`s (the VMM's debug state live with no VMM debugging:
/// a bug in KVM or in the backend), the machine does not stop: `debug_ptr` is
/// reset to the guest's own state first, as `kvm_arm_clear_debug()` would have
/// left it, and the setup is the C's for that state
/// ([`SetupDone::illegal`]).
#[inline(always)]
pub fn setup_debug<C: DebugStateContext, A: RegAccess>(ctx: &mut C, regs: &mut A) -> SetupDone {
    let pstate = ctx.pstate();
    let mut i = DebugInputs {
        guest_debug: ctx.guest_debug(),
        os_lock: os_lock_enabled(ctx),
        dirty: ctx.flag(DebugFlag::Dirty),
        ss_active_pending: ctx.flag(DebugFlag::SsActivePending),
        mdscr: mdscr(ctx),
        pstate_ss: pstate & PSTATE_SS != 0,
        source: ctx.source(),
        host_mdcr: ctx.host_mdcr(),
    };
    let illegal = illegal(&i);
    if illegal {
        // kvm_arm_reset_debug_ptr().
        ctx.set_source(DebugSource::Own);
        i.source = DebugSource::Own;
    }
    let s = setup(i);
    let orig = ctx.vcpu_mdcr();
    ctx.set_vcpu_mdcr(s.mdcr_el2);
    if let Some(p) = s.preserve {
        ctx.set_preserved(p);
        ctx.set_sys_reg(VcpuSysReg::MDSCR_EL1, s.mdscr.raw());
        ctx.set_pstate(with_ss(pstate, s.pstate_ss));
        if s.source != i.source {
            ctx.set_source(s.source);
        }
    }
    if s.dirty && !i.dirty {
        ctx.set_flag(DebugFlag::Dirty, true);
    }
    if orig.raw() != s.mdcr_el2.raw() {
        regs.write(s.mdcr_el2);
    }
    SetupDone { setup: s, illegal }
}

/// `kvm_arm_clear_debug()`: applies [`clear`] to the vCPU after an exit.
#[inline(always)]
pub fn clear_debug<C: DebugStateContext>(ctx: &mut C) -> DebugClear {
    let c = clear(
        ctx.guest_debug(),
        os_lock_enabled(ctx),
        ctx.pstate() & PSTATE_SS != 0,
    );
    if c.ss_active_pending {
        ctx.set_flag(DebugFlag::SsActivePending, true);
    }
    if c.restore {
        let p = ctx.preserved();
        ctx.set_sys_reg(VcpuSysReg::MDSCR_EL1, u64::from(p.mdscr));
        ctx.set_pstate(with_ss(ctx.pstate(), p.pstate_ss));
    }
    if c.reset_source {
        ctx.set_source(DebugSource::Own);
    }
    c
}
