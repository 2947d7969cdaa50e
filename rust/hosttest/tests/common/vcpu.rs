// SPDX-License-Identifier: GPL-2.0

//! The model vCPU: the kernel state the steps of `vcpu_load`/`vcpu_put` read
//! and write ([`SysregContext`], [`TrapContext`], [`Stage2Context`],
//! [`LoadContext`]), the per-entry traps ([`EntryTrapContext`]) and the exit
//! fixup ([`FixupContext`], with exit handlers that answer as told), the
//! guest's PC and PSTATE ([`El2ReturnContext`]), the EL2 side of the FP
//! switch ([`FpHypContext`]), one run of the guest ([`RunContext`]: a
//! scripted guest, [`GuestExit`]) and the exit handlers (`HandlerContext`,
//! in [`super::handlers`]; with [`super::fpmodel`], a guest that uses FP and
//! the real handlers), which records every change of kernel state
//! it is asked for ("marks"), placed among the register accesses of its
//! simulated CPU so that the order of both can be checked
//! ([`Vcpu::timeline`]).

use std::collections::{BTreeMap, VecDeque};
use vhe_rs_hosttest::arch::{
    Esr, RegAccess, Value, CNTP_CVAL_EL02, ELR_EL2, FPEXC32_EL2, HCRX_EL2, HCR_EL2, MDCR_EL2,
    SPSR_EL2, VBAR_EL1, VSESR_EL2, ZCR_EL12,
};
use vhe_rs_hosttest::sim::Event;
use vhe_rs_hosttest::world::entry_traps::{EntryTrapCaps, EntryTrapContext, PhysTimer, TimerMap};
use vhe_rs_hosttest::world::exits::ExitHandler;
use vhe_rs_hosttest::world::fixup::{ExitCode, FixupCaps, FixupContext};
use vhe_rs_hosttest::world::fp::{self, FpContext, FpHypContext, FpIllegal, FpOwner};
use vhe_rs_hosttest::world::handlers;
use vhe_rs_hosttest::world::loadput::LoadContext;
use vhe_rs_hosttest::world::run::RunContext;
use vhe_rs_hosttest::world::stage2::{Stage2, Stage2Context};
use vhe_rs_hosttest::world::sysreg_sr::{
    El2ReturnContext, Feature, Features, Group, SysregContext, VcpuSlot, TABLE,
};
use vhe_rs_hosttest::world::traps::{FgtGroup, HostSaved, TrapCaps, TrapContext};

use super::cpu::Cpu;
use super::fpmodel::{self, FpModel};
use super::handlers::HandlerState;
use super::rng::Rng;

/// The groups of `kvm->arch.fgu[]`, in [`Vcpu::fgu`]'s order.
pub const GROUPS: [FgtGroup; 4] = [
    FgtGroup::Hfgxtr,
    FgtGroup::Hfgitr,
    FgtGroup::Hdfgrtr,
    FgtGroup::Hafgrtr,
];

/// The index of `g` in [`GROUPS`].
pub fn group_index(g: FgtGroup) -> usize {
    GROUPS.iter().position(|x| *x == g).unwrap()
}

/// Every combination of the vCPU features.
pub fn all_features() -> impl Iterator<Item = Features> {
    (0..1u8 << Feature::ALL.len()).map(Features::from_bits)
}

/// A change of kernel state the code under test asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Running(bool),
    SysregsOnCpu(bool),
    PmuserenrOnCpu(bool),
    /// IRQs disabled (`true`) or enabled again.
    IrqsOff(bool),
    SetHost(VcpuSlot),
    SetHostSaved(HostSaved),
    /// `vcpu->arch.hcr_el2` set to this value.
    SetHcrEl2(u64),
    /// The vCPU's saved compare value of a physical timer set to this value.
    SetPtimerCval(PhysTimer, u64),
    /// The vCPU's saved PSTATE set to this value.
    SetPstate(u64),
    /// `vcpu->arch.fault.esr_el2` set to this value.
    SetFaultEsr(u64),
    /// An exit handler run, with this syndrome and exit code.
    HandleExit(ExitHandler, u64, u64),
    /// The vCPU's saved PC set to this value.
    SetPc(u64),
    /// `__kvm_adjust_pc()`.
    AdjustPc,
    /// `__debug_switch_to_guest()` (`true`) or `__debug_switch_to_host()`.
    DebugSwitch(bool),
    /// `__guest_enter()`.
    GuestEnter,
    /// `__vcpu_sys_reg(vcpu, FPEXC32_EL2)` set to this value.
    SetFpexc32(u64),
    /// This CPU's FP owner set.
    SetFpOwner(FpOwner),
    /// `fpsimd_save_and_flush_cpu_state()`.
    FpSaveAndFlush,
    /// `fpsimd_bind_state_to_cpu()` with the guest's state.
    FpBindGuest,
    /// An FP event the owner cannot have.
    FpIllegal(FpIllegal),
    /// FP (and SVE: `true`) enabled for the guest and EL2.
    FpEnableGuest(bool),
    /// The guest's FP (SVE: `true`) registers loaded.
    FpLoadGuest(bool),
    /// The vCPU's ZCR_EL1 set to this value.
    SetZcrEl1(u64),
    /// `vcpu_set_reg(vcpu, n, val)`.
    SetGpr(u64, u64),
    /// `vcpu_gp_regs(vcpu)->regs[n] = val` (31: `sp`).
    SetPtReg(u64, u64),
    /// `__vgic_v3_perform_cpuif_access()`.
    VgicV3CpuifAccess,
    /// `__vgic_v2_perform_cpuif_access()`.
    VgicV2CpuifAccess,
    /// `__populate_fault_info()`.
    PopulateFaultInfo,
    /// `kvm_skip_instr32()`.
    SkipInstr32,
}

/// One step of the merged history: a register access or a mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Reg(Event),
    Ctx(Mark),
}

#[derive(Clone)]
pub struct Vcpu {
    /// The CPU it is loaded on.
    pub cpu: Cpu,
    /// (length of the CPU's log when the mark was made, mark).
    pub marks: Vec<(usize, Mark)>,
    // SysregContext.
    /// Every slot of the table.
    pub guest: BTreeMap<VcpuSlot, u64>,
    /// The host's copies of the user registers.
    pub host: BTreeMap<VcpuSlot, u64>,
    pub features: Features,
    pub sysregs_on_cpu: bool,
    pub workaround_1508412: bool,
    // TrapContext.
    pub caps: TrapCaps,
    pub mdcr: Value<MDCR_EL2::Reg>,
    pub hcrx: Value<HCRX_EL2::Reg>,
    /// `kvm->arch.fgu[]`, in [`GROUPS`]' order.
    pub fgu: [u64; 4],
    pub host_saved: BTreeMap<HostSaved, u64>,
    pub pmuserenr_on_cpu: bool,
    // Stage2Context.
    pub stage2: Stage2,
    // LoadContext.
    pub running: bool,
    pub irqs_off: bool,
    // EntryTrapContext.
    pub entry: EntryState,
    // FixupContext.
    pub fixup: FixupState,
    // El2ReturnContext (the PSTATE is `fixup.pstate`), FpHypContext,
    // RunContext.
    pub run: RunState,
    // HandlerContext.
    pub hs: HandlerState,
    /// The FP register file's contents and the guest that uses them
    /// ([`super::fpmodel`]): when set, the FP steps' kernel side and
    /// `__guest_enter()` are that model's.
    pub fpm: Option<Box<FpModel>>,
}

/// How the exit handler answers one exit of a scripted guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Handled at EL2: the guest is entered again.
    Handled,
    /// Not handled: the run goes back to the host.
    Exit,
    /// The lazy FP trap: the handler is `fp::handle_trap()` (not an SVE trap).
    FpTrap,
}

/// What a scripted guest does on one entry: leaves these registers on the CPU
/// (by encoding, set without logging) and exits with this code; the exit
/// handler, if the fixup calls one, answers `answer`.
#[derive(Clone, Debug)]
pub struct GuestExit {
    pub regs: Vec<(u32, u64)>,
    pub exit_code: u64,
    pub answer: Answer,
}

/// The kernel state of one run of the guest ([`RunContext`], [`El2ReturnContext`]'s
/// PC, [`FpHypContext`]) and the scripted guest.
#[derive(Clone, Debug, Default)]
pub struct RunState {
    /// `vcpu->arch.ctxt.regs.pc`.
    pub pc: u64,
    /// What `__kvm_adjust_pc()` adds to the PC (a pending `INCREMENT_PC`: 4),
    /// once.
    pub adjust_pc: u64,
    /// `__vcpu_sys_reg(vcpu, FPEXC32_EL2)`.
    pub fpexc32: u64,
    /// `vcpu_sve_max_vq()`.
    pub sve_max_vq: u64,
    /// `__vcpu_sys_reg(vcpu, ZCR_EL1)`.
    pub zcr_el1: u64,
    /// What the guest does on each entry, in order.
    pub script: VecDeque<GuestExit>,
    /// The exit being handled (the last one the guest made).
    pub current: Option<GuestExit>,
    /// The CPU as the guest found it at each entry (a copy).
    pub seen: Vec<Cpu>,
}

/// The kernel state of the exit fixup ([`FixupContext`]), and how its exit
/// handlers answer.
#[derive(Clone, Debug, Default)]
pub struct FixupState {
    pub caps: FixupCaps,
    /// `vcpu->guest_debug & KVM_GUESTDBG_SINGLESTEP`.
    pub singlestep: bool,
    /// `vcpu->arch.ctxt.regs.pstate`.
    pub pstate: u64,
    /// `vcpu->arch.fault.esr_el2`.
    pub fault_esr: u64,
    /// What every exit handler returns.
    pub handled: bool,
    /// The exit code every exit handler writes, if any.
    pub new_exit_code: Option<u64>,
}

/// The kernel state of the per-entry traps ([`EntryTrapContext`]).
#[derive(Clone, Debug)]
pub struct EntryState {
    pub caps: EntryTrapCaps,
    /// `vcpu->arch.hcr_el2`.
    pub hcr: u64,
    /// `vcpu->arch.vsesr_el2`.
    pub vsesr: u64,
    /// `host_data.fp_owner`.
    pub fp_owner: FpOwner,
    /// `vcpu_has_sve()`.
    pub sve: bool,
    pub timer_map: TimerMap,
    /// The vCPU's `CNTP_CVAL_EL0` and `CNTHP_CVAL_EL2`.
    pub cntp_cval: u64,
    pub cnthp_cval: u64,
    /// This CPU's `kvm_hyp_vector`, the kernel's `vectors`, this CPU's
    /// `this_cpu_vector`.
    pub hyp_vector: u64,
    pub kernel_vectors: u64,
    pub this_cpu_vector: u64,
}

impl Default for EntryState {
    fn default() -> Self {
        EntryState {
            caps: EntryTrapCaps::default(),
            hcr: 0,
            vsesr: 0,
            fp_owner: FpOwner::Free,
            sve: false,
            timer_map: TimerMap::NON_NESTED_VHE,
            cntp_cval: 0,
            cnthp_cval: 0,
            hyp_vector: 0,
            kernel_vectors: 0,
            this_cpu_vector: 0,
        }
    }
}

impl Vcpu {
    /// A vCPU on `cpu` with random guest registers, traps and stage 2, and
    /// nothing in `fgu[]`.
    pub fn random(cpu: &Cpu, features: Features, caps: TrapCaps, rng: &mut Rng) -> Self {
        let guest = TABLE.iter().map(|e| (e.vcpu, rng.next())).collect();
        // The host's user registers get a sentinel that is not what the CPU holds,
        // so that a missing save at load shows.
        let host = TABLE
            .iter()
            .filter(|e| matches!(e.group, Group::User | Group::Common))
            .map(|e| (e.vcpu, rng.next()))
            .collect();
        Vcpu {
            cpu: cpu.clone(),
            marks: Vec::new(),
            guest,
            host,
            features,
            sysregs_on_cpu: false,
            workaround_1508412: false,
            caps,
            mdcr: Value::from_raw(rng.next()),
            hcrx: Value::from_raw(rng.next()),
            fgu: [0; 4],
            host_saved: BTreeMap::new(),
            pmuserenr_on_cpu: false,
            stage2: Stage2 {
                vtcr: Value::from_raw(rng.next()),
                vttbr: Value::from_raw(rng.next()),
            },
            running: false,
            irqs_off: false,
            entry: EntryState::default(),
            fixup: FixupState::default(),
            run: RunState::default(),
            hs: HandlerState::default(),
            fpm: None,
        }
    }

    /// Records `m` at the current point of the CPU's log.
    pub fn mark(&mut self, m: Mark) {
        let at = self.cpu.regs().log.len();
        self.marks.push((at, m));
    }

    /// The guest runs and changes every register it owns on the CPU (without
    /// logging): returns the context `vcpu_put` must save.
    pub fn run_guest(&self, rng: &mut Rng) -> BTreeMap<VcpuSlot, u64> {
        let mut want = self.guest.clone();
        for e in TABLE
            .iter()
            .filter(|e| e.put && self.features.allows(e.gate))
        {
            let v = rng.next();
            self.cpu.set_encoded(e.cpu.encoding(), v);
            want.insert(e.vcpu, v);
        }
        want
    }

    /// Forgets the CPU's log and the marks.
    pub fn clear_history(&mut self) {
        self.cpu.clear_log();
        self.marks.clear();
    }

    /// The CPU's log with this vCPU's marks in their places.
    pub fn timeline(&self) -> Vec<Step> {
        let log = self.cpu.log();
        let mut out = Vec::new();
        let mut marks = self.marks.iter().peekable();
        for (i, e) in log.iter().enumerate() {
            while let Some((_, m)) = marks.next_if(|(at, _)| *at <= i) {
                out.push(Step::Ctx(*m));
            }
            out.push(Step::Reg(*e));
        }
        out.extend(marks.map(|(_, m)| Step::Ctx(*m)));
        out
    }
}

/// `slots[slot]`, or the test fails with `what`.
fn get_slot(slots: &BTreeMap<VcpuSlot, u64>, slot: VcpuSlot, what: &str) -> u64 {
    *slots
        .get(&slot)
        .unwrap_or_else(|| panic!("{what} slot {} not modelled", slot.name()))
}

/// Sets `slots[slot]`, which must be modelled, or the test fails with `what`.
fn set_slot(slots: &mut BTreeMap<VcpuSlot, u64>, slot: VcpuSlot, val: u64, what: &str) {
    assert!(
        slots.insert(slot, val).is_some(),
        "{what} slot {} not modelled",
        slot.name()
    );
}

impl SysregContext for Vcpu {
    fn guest(&self, slot: VcpuSlot) -> u64 {
        get_slot(&self.guest, slot, "guest")
    }
    fn set_guest(&mut self, slot: VcpuSlot, val: u64) {
        set_slot(&mut self.guest, slot, val, "guest");
    }
    fn host(&self, slot: VcpuSlot) -> u64 {
        // Only the user and common registers' are modelled.
        get_slot(&self.host, slot, "host")
    }
    fn set_host(&mut self, slot: VcpuSlot, val: u64) {
        // Only the user and common registers' are modelled.
        set_slot(&mut self.host, slot, val, "host");
        self.mark(Mark::SetHost(slot));
    }
    fn features(&self) -> Features {
        self.features
    }
    fn set_sysregs_on_cpu(&mut self, on: bool) {
        self.sysregs_on_cpu = on;
        self.mark(Mark::SysregsOnCpu(on));
    }
    fn workaround_1508412(&self) -> bool {
        self.workaround_1508412
    }
}

impl TrapContext for Vcpu {
    fn trap_caps(&self) -> TrapCaps {
        self.caps
    }
    fn vcpu_mdcr_el2(&self) -> Value<MDCR_EL2::Reg> {
        self.mdcr
    }
    fn vcpu_hcrx_el2(&self) -> Value<HCRX_EL2::Reg> {
        self.hcrx
    }
    fn fgu(&self, group: FgtGroup) -> u64 {
        self.fgu[group_index(group)]
    }
    fn host_saved(&self, slot: HostSaved) -> u64 {
        // Restoring a slot that was never saved is a bug: no default value.
        *self
            .host_saved
            .get(&slot)
            .unwrap_or_else(|| panic!("host slot {slot:?} restored but never saved"))
    }
    fn set_host_saved(&mut self, slot: HostSaved, val: u64) {
        self.host_saved.insert(slot, val);
        self.mark(Mark::SetHostSaved(slot));
    }
    fn set_pmuserenr_on_cpu(&mut self, on: bool) {
        self.pmuserenr_on_cpu = on;
        self.mark(Mark::PmuserenrOnCpu(on));
    }
}

impl Stage2Context for Vcpu {
    fn stage2(&self) -> Stage2 {
        self.stage2
    }
}

impl LoadContext for Vcpu {
    fn set_running_vcpu(&mut self, on: bool) {
        self.running = on;
        self.mark(Mark::Running(on));
    }
    fn with_irqs_off(&mut self, f: impl FnOnce(&mut Self)) {
        assert!(!self.irqs_off, "with_irqs_off nested");
        self.irqs_off = true;
        self.mark(Mark::IrqsOff(true));
        f(self);
        self.mark(Mark::IrqsOff(false));
        self.irqs_off = false;
    }
}

impl EntryTrapContext for Vcpu {
    fn entry_trap_caps(&self) -> EntryTrapCaps {
        self.entry.caps
    }
    fn vcpu_hcr_el2(&self) -> Value<HCR_EL2::Reg> {
        Value::from_raw(self.entry.hcr)
    }
    fn set_vcpu_hcr_el2(&mut self, val: Value<HCR_EL2::Reg>) {
        self.entry.hcr = val.raw();
        self.mark(Mark::SetHcrEl2(val.raw()));
    }
    fn vcpu_vsesr_el2(&self) -> Value<VSESR_EL2::Reg> {
        Value::from_raw(self.entry.vsesr)
    }
    fn fp_owner(&self) -> FpOwner {
        self.entry.fp_owner
    }
    fn guest_has_sve(&self) -> bool {
        self.entry.sve
    }
    fn timer_map(&self) -> TimerMap {
        self.entry.timer_map
    }
    fn ptimer_cval(&self, timer: PhysTimer) -> Value<CNTP_CVAL_EL02::Reg> {
        Value::from_raw(match timer {
            PhysTimer::Ptimer => self.entry.cntp_cval,
            PhysTimer::Hptimer => self.entry.cnthp_cval,
        })
    }
    fn set_ptimer_cval(&mut self, timer: PhysTimer, val: Value<CNTP_CVAL_EL02::Reg>) {
        match timer {
            PhysTimer::Ptimer => self.entry.cntp_cval = val.raw(),
            PhysTimer::Hptimer => self.entry.cnthp_cval = val.raw(),
        }
        self.mark(Mark::SetPtimerCval(timer, val.raw()));
    }
    fn hyp_vector(&self) -> Value<VBAR_EL1::Reg> {
        Value::from_raw(self.entry.hyp_vector)
    }
    fn kernel_vectors(&self) -> Value<VBAR_EL1::Reg> {
        Value::from_raw(self.entry.kernel_vectors)
    }
    fn this_cpu_vector(&self) -> Value<VBAR_EL1::Reg> {
        Value::from_raw(self.entry.this_cpu_vector)
    }
}

impl FixupContext for Vcpu {
    fn fixup_caps(&self) -> FixupCaps {
        self.fixup.caps
    }
    fn singlestep(&self) -> bool {
        self.fixup.singlestep
    }
    fn set_fault_esr(&mut self, esr: Esr) {
        self.fixup.fault_esr = esr.value().raw();
        self.mark(Mark::SetFaultEsr(esr.value().raw()));
    }
    fn handle_exit<A: RegAccess>(
        &mut self,
        regs: &mut A,
        handler: ExitHandler,
        esr: Esr,
        exit_code: &mut ExitCode,
    ) -> bool {
        self.mark(Mark::HandleExit(
            handler,
            esr.value().raw(),
            exit_code.raw(),
        ));
        if let Some(code) = self.fixup.new_exit_code {
            *exit_code = ExitCode::from_raw(code);
        }
        // A scripted guest's exit answers as scripted; otherwise as told, or
        // by the real handlers.
        match self.run.current.as_ref().map(|x| x.answer) {
            None if self.hs.real => handlers::handle(self, regs, handler, esr, exit_code),
            None => self.fixup.handled,
            Some(Answer::Handled) => true,
            Some(Answer::Exit) => false,
            Some(Answer::FpTrap) => fp::handle_trap(self, regs, false),
        }
    }
}

impl El2ReturnContext for Vcpu {
    fn pc(&self) -> Value<ELR_EL2::Reg> {
        Value::from_raw(self.run.pc)
    }
    fn set_pc(&mut self, val: Value<ELR_EL2::Reg>) {
        self.run.pc = val.raw();
        self.mark(Mark::SetPc(val.raw()));
    }
    fn pstate(&self) -> Value<SPSR_EL2::Reg> {
        Value::from_raw(self.fixup.pstate)
    }
    fn set_pstate(&mut self, val: Value<SPSR_EL2::Reg>) {
        self.fixup.pstate = val.raw();
        self.mark(Mark::SetPstate(val.raw()));
    }
}

/// The owner is the one of [`EntryTrapContext::fp_owner`] (`host_data.fp_owner`).
impl FpContext for Vcpu {
    fn owner(&self) -> FpOwner {
        self.entry.fp_owner
    }
    fn set_owner(&mut self, owner: FpOwner) {
        self.entry.fp_owner = owner;
        self.mark(Mark::SetFpOwner(owner));
    }
    fn save_and_flush_cpu_state(&mut self) {
        self.mark(Mark::FpSaveAndFlush);
        if let Some(m) = self.fpm.as_deref_mut() {
            m.save_and_flush(&self.cpu);
        }
    }
    fn bind_guest_state(&mut self) {
        self.mark(Mark::FpBindGuest);
        if let Some(m) = self.fpm.as_deref_mut() {
            m.bind_guest();
        }
    }
    fn foreign_fpstate(&self) -> bool {
        self.fpm.as_ref().is_some_and(|m| m.foreign)
    }
    fn vcpu_has_sve(&self) -> bool {
        self.entry.sve
    }
    fn illegal(&mut self, e: FpIllegal) {
        self.mark(Mark::FpIllegal(e));
        if let Some(m) = self.fpm.as_deref_mut() {
            m.errors
                .push(format!("impossible FP event reported: {e:?}"));
        }
    }
}

impl FpHypContext for Vcpu {
    fn enable_guest_fp(&mut self, sve: bool) {
        self.mark(Mark::FpEnableGuest(sve));
        if self.fpm.is_some() {
            fpmodel::enable_guest_fp(&mut self.cpu, sve);
        }
    }
    fn load_guest_regs(&mut self, sve: bool) {
        self.mark(Mark::FpLoadGuest(sve));
        let max_vq = self.run.sve_max_vq;
        if let Some(m) = self.fpm.as_deref_mut() {
            m.load_guest(&self.cpu, sve, max_vq);
        }
    }
    fn vcpu_sve_max_vq(&self) -> u64 {
        self.run.sve_max_vq
    }
    fn vcpu_zcr_el1(&self) -> Value<ZCR_EL12::Reg> {
        Value::from_raw(self.run.zcr_el1)
    }
    fn set_vcpu_zcr_el1(&mut self, val: Value<ZCR_EL12::Reg>) {
        self.run.zcr_el1 = val.raw();
        self.mark(Mark::SetZcrEl1(val.raw()));
    }
}

/// The guest is the script of [`RunState::script`]: each entry takes its next
/// exit (an entry past its end fails the test).
impl RunContext for Vcpu {
    fn adjust_pc(&mut self) {
        self.run.pc = self.run.pc.wrapping_add(self.run.adjust_pc);
        self.run.adjust_pc = 0;
        self.mark(Mark::AdjustPc);
    }
    fn debug_switch_to_guest(&mut self) {
        self.mark(Mark::DebugSwitch(true));
    }
    fn debug_switch_to_host(&mut self) {
        self.mark(Mark::DebugSwitch(false));
    }
    fn guest_enter(&mut self) -> u64 {
        self.mark(Mark::GuestEnter);
        if self.fpm.is_some() {
            return fpmodel::guest_enter(self);
        }
        self.run.seen.push(self.cpu.fork());
        let exit = self
            .run
            .script
            .pop_front()
            .expect("the guest entered more often than scripted");
        for (enc, v) in &exit.regs {
            self.cpu.set_encoded(*enc, *v);
        }
        let code = exit.exit_code;
        self.run.current = Some(exit);
        code
    }
    fn set_vcpu_fpexc32(&mut self, val: Value<FPEXC32_EL2::Reg>) {
        self.run.fpexc32 = val.raw();
        self.mark(Mark::SetFpexc32(val.raw()));
    }
}
