// SPDX-License-Identifier: GPL-2.0

//! The FP ownership state machine, walked exhaustively against a model of the host
//! kernel's FP machinery (`fpsimd_last_state`, `TIF_FOREIGN_FPSTATE`, kernel-mode
//! NEON, context switches, the return to userspace).
//!
//! Every sequence of events up to `DEPTH` long, from a host thread about to issue
//! KVM_RUN, with and without SVE: after each event neither the host's nor the
//! guest's latest FP values are lost, and neither side ever reads the other's.

mod common;

use common::cpu::Cpu;
use vhe_rs_hosttest::arch::{RegAccess, Value, ZCR_EL12, ZCR_EL2};
use vhe_rs_hosttest::sim::SimRegs;
use vhe_rs_hosttest::world::fp::{
    self, FpAction, FpContext, FpEvent, FpHypContext, FpIllegal, FpOwner,
};

const DEPTH: usize = 10;
const HOST_VQ: u64 = 8;
const OTHER_VQ: u64 = 2;
const GUEST_VQ: u64 = 4;

/// What the physical FP registers hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    /// The host thread's n-th value.
    Host(u32),
    /// The guest's n-th value.
    Guest(u32),
    /// Something else's (the kernel's, another task's).
    Junk,
}

/// Which saved state the kernel has bound the registers to (`fpsimd_last_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    Nothing,
    Host,
    Guest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The vCPU thread is in host userspace (or in the kernel, before KVM_RUN).
    HostUser,
    /// The vCPU is loaded, the thread preemptible, between runs.
    Loaded,
    /// The guest runs.
    InGuest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    HostUseFp,
    Load,
    KernelNeon,
    Preempt,
    Enter,
    GuestUseFp,
    Exit,
    Put,
}

/// The model. `clone` shares the CPU; [`World::branch`] copies it too.
#[derive(Clone)]
struct World {
    sve: bool,
    regs: Tag,
    bound: Bound,
    foreign: bool,
    host_mem: Tag,
    guest_mem: Tag,
    host_latest: u32,
    guest_latest: u32,
    owner: FpOwner,
    guest_fp_enabled: bool,
    vcpu_zcr_el1: Value<ZCR_EL12::Reg>,
    phase: Phase,
    cpu: Cpu,
    traps: u32,
    /// Events the FP logic reported as impossible ([`FpContext::illegal`]).
    illegal: Vec<FpIllegal>,
}

/// The CPU's SVE registers, as the model's kernel side sees them (it checks the
/// VL the FP logic set before it loads SVE state); the FP logic reaches the
/// same registers through a handle (`Cpu::clone`).
impl Cpu {
    fn with_zcr(zcr_el2: u64, zcr_el12: u64) -> Self {
        let mut s = SimRegs::new();
        s.set::<ZCR_EL2::Reg>(zcr_el2);
        s.set::<ZCR_EL12::Reg>(zcr_el12);
        Cpu::new(s)
    }
    fn vl(&self) -> u64 {
        ZCR_EL2::LEN.get(self.get::<ZCR_EL2::Reg>()) + 1
    }
    fn set_vl(&self, vq: u64) {
        self.regs_mut()
            .set::<ZCR_EL2::Reg>(ZCR_EL2::LEN.val(vq - 1).value());
    }
    fn zcr_el12(&self) -> u64 {
        self.get::<ZCR_EL12::Reg>()
    }
    fn set_zcr_el12(&self, v: u64) {
        self.regs_mut().set::<ZCR_EL12::Reg>(v);
    }
}

impl World {
    /// A copy of the world with its own registers, for one branch of the walk.
    fn branch(&self) -> World {
        World {
            cpu: self.cpu.fork(),
            ..self.clone()
        }
    }

    fn new(sve: bool) -> Self {
        World {
            sve,
            regs: Tag::Host(0),
            bound: Bound::Host,
            foreign: false,
            host_mem: Tag::Junk,
            guest_mem: Tag::Guest(0),
            host_latest: 0,
            guest_latest: 0,
            owner: FpOwner::Free,
            guest_fp_enabled: false,
            vcpu_zcr_el1: Value::from_raw(0x5),
            phase: Phase::HostUser,
            cpu: Cpu::with_zcr(ZCR_EL2::LEN.val(HOST_VQ - 1).value(), 0x1),
            traps: 0,
            illegal: Vec::new(),
        }
    }

    /// The kernel's `fpsimd_save()`: what the registers hold goes to where they
    /// are bound, if they still hold it. SVE state is saved at the current VL.
    fn kernel_save(&mut self) -> Result<(), String> {
        if self.foreign {
            return Ok(());
        }
        match self.bound {
            Bound::Host => self.host_mem = self.regs,
            Bound::Guest => {
                if self.sve && self.cpu.vl() != GUEST_VQ {
                    return Err(format!(
                        "guest SVE state saved at VL {} (max {GUEST_VQ})",
                        self.cpu.vl()
                    ));
                }
                self.guest_mem = self.regs
            }
            Bound::Nothing => {}
        }
        Ok(())
    }

    fn kernel_flush(&mut self) {
        self.bound = Bound::Nothing;
        self.foreign = true;
    }

    /// Another user of FP on this CPU (kernel-mode NEON, another task).
    fn clobber(&mut self, vq: u64) -> Result<(), String> {
        self.kernel_save()?;
        self.kernel_flush();
        self.regs = Tag::Junk;
        self.cpu.set_vl(vq);
        Ok(())
    }

    fn events(&self) -> &'static [Ev] {
        match self.phase {
            Phase::HostUser => &[Ev::HostUseFp, Ev::Load],
            Phase::Loaded => &[Ev::KernelNeon, Ev::Preempt, Ev::Enter, Ev::Put],
            Phase::InGuest => &[Ev::GuestUseFp, Ev::Exit],
        }
    }

    fn apply(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::HostUseFp => {
                // Return to userspace restores the thread's state if it is not live.
                if self.foreign {
                    self.regs = self.host_mem;
                    self.bound = Bound::Host;
                    self.foreign = false;
                    self.cpu.set_vl(HOST_VQ);
                }
                if self.regs != Tag::Host(self.host_latest) {
                    return Err(format!(
                        "host reads {:?}, its latest is {}",
                        self.regs, self.host_latest
                    ));
                }
                self.host_latest += 1;
                self.regs = Tag::Host(self.host_latest);
            }
            Ev::Load => {
                fp::load(self);
                self.phase = Phase::Loaded;
            }
            Ev::KernelNeon => self.clobber(HOST_VQ)?,
            Ev::Preempt => {
                let _ = fp::put(self);
                self.clobber(OTHER_VQ)?;
                fp::load(self);
            }
            Ev::Enter => {
                let _ = fp::ctxflush(self);
                let mut cpu = self.cpu.clone();
                fp::switch_to_guest(self, &mut cpu);
                // __activate_cptr_traps: FP open to the guest iff it owns the registers.
                self.guest_fp_enabled = self.owner == FpOwner::GuestOwned;
                if self.guest_fp_enabled && self.sve && self.cpu.vl() != GUEST_VQ {
                    return Err(format!("guest entered with VL {}", self.cpu.vl()));
                }
                self.phase = Phase::InGuest;
            }
            Ev::GuestUseFp => {
                if !self.guest_fp_enabled {
                    let mut cpu = self.cpu.clone();
                    let sve = self.sve;
                    let handled = fp::handle_trap(self, &mut cpu, sve);
                    if !handled {
                        return Err("FP trap not handled".into());
                    }
                    self.traps += 1;
                }
                if self.regs != Tag::Guest(self.guest_latest) {
                    return Err(format!(
                        "guest reads {:?}, its latest is {}",
                        self.regs, self.guest_latest
                    ));
                }
                self.guest_latest += 1;
                self.regs = Tag::Guest(self.guest_latest);
            }
            Ev::Exit => {
                let mut cpu = self.cpu.clone();
                fp::switch_to_host(self, &mut cpu);
                let _ = fp::ctxsync(self);
                self.phase = Phase::Loaded;
            }
            Ev::Put => {
                let _ = fp::put(self);
                self.phase = Phase::HostUser;
            }
        }
        self.check()
    }

    /// Nothing lost, nothing mixed up.
    fn check(&self) -> Result<(), String> {
        let live =
            |tag: Tag, bound: Bound| self.regs == tag && self.bound == bound && !self.foreign;
        let g = Tag::Guest(self.guest_latest);
        let guest_safe = self.guest_mem == g
            || live(g, Bound::Guest)
            || (self.regs == g
                && self.phase == Phase::InGuest
                && self.owner == FpOwner::GuestOwned);
        if !guest_safe {
            return Err(format!("guest value {} lost", self.guest_latest));
        }
        let h = Tag::Host(self.host_latest);
        if !(self.host_mem == h || live(h, Bound::Host)) {
            return Err(format!("host value {} lost", self.host_latest));
        }
        if matches!(self.host_mem, Tag::Guest(_)) || matches!(self.guest_mem, Tag::Host(_)) {
            return Err("a saved state holds the other side's values".into());
        }
        if self.owner == FpOwner::HostOwned {
            return Err("HostOwned reached on VHE".into());
        }
        if let Some(e) = self.illegal.first() {
            return Err(format!("impossible event reported: {e:?}"));
        }
        if self.owner == FpOwner::GuestOwned
            && !self.foreign
            && self.phase != Phase::HostUser
            && self.regs != g
        {
            return Err("owner says guest, registers are not the guest's".into());
        }
        Ok(())
    }
}

impl FpContext for World {
    fn owner(&self) -> FpOwner {
        self.owner
    }
    fn set_owner(&mut self, owner: FpOwner) {
        self.owner = owner;
    }
    fn save_and_flush_cpu_state(&mut self) {
        if let Err(e) = self.kernel_save() {
            // Recorded as a lost value by `check`.
            self.guest_mem = Tag::Junk;
            eprintln!("{e}");
        }
        self.kernel_flush();
    }
    fn bind_guest_state(&mut self) {
        self.bound = Bound::Guest;
        self.foreign = false;
    }
    fn foreign_fpstate(&self) -> bool {
        self.foreign
    }
    fn vcpu_has_sve(&self) -> bool {
        self.sve
    }
    fn illegal(&mut self, e: FpIllegal) {
        self.illegal.push(e);
    }
}

impl FpHypContext for World {
    fn enable_guest_fp(&mut self, _sve: bool) {
        self.guest_fp_enabled = true;
    }
    fn load_guest_regs(&mut self, sve: bool) {
        assert_eq!(sve, self.sve);
        if sve {
            assert_eq!(
                self.cpu.vl(),
                GUEST_VQ,
                "guest SVE state loaded at the wrong VL"
            );
        }
        self.regs = self.guest_mem;
    }
    fn vcpu_sve_max_vq(&self) -> u64 {
        GUEST_VQ
    }
    fn vcpu_zcr_el1(&self) -> Value<ZCR_EL12::Reg> {
        self.vcpu_zcr_el1
    }
    fn set_vcpu_zcr_el1(&mut self, val: Value<ZCR_EL12::Reg>) {
        self.vcpu_zcr_el1 = val;
    }
}

/// (sequences walked, most traps in one sequence, events seen)
type Stats = (u64, u32, Vec<Ev>);

fn walk(w: &World, path: &mut Vec<Ev>, depth: usize, stats: &mut Stats) {
    stats.0 += 1;
    stats.1 = stats.1.max(w.traps);
    if depth == 0 {
        return;
    }
    for &ev in w.events() {
        let mut next = w.branch();
        path.push(ev);
        if !stats.2.contains(&ev) {
            stats.2.push(ev);
        }
        if let Err(e) = next.apply(ev) {
            panic!("sve={}: after {:?}: {e}", w.sve, path);
        }
        walk(&next, path, depth - 1, stats);
        path.pop();
    }
}

#[test]
fn every_sequence_to_depth_10_keeps_fp_state_whole() {
    for sve in [false, true] {
        let mut stats = (0, 0, Vec::new());
        walk(&World::new(sve), &mut Vec::new(), DEPTH, &mut stats);
        // The walk saw every event and the lazy trap more than once in a sequence.
        assert_eq!(stats.2.len(), 8, "events seen: {:?}", stats.2);
        assert!(stats.1 >= 2, "at most {} traps in one sequence", stats.1);
        eprintln!("sve={sve}: {} sequences of up to {DEPTH} events", stats.0);
    }
}

#[test]
fn trap_once_then_run_untrapped() {
    let mut w = World::new(false);
    for ev in [
        Ev::Load,
        Ev::Enter,
        Ev::GuestUseFp,
        Ev::GuestUseFp,
        Ev::Exit,
        Ev::Enter,
        Ev::GuestUseFp,
    ] {
        w.apply(ev).unwrap();
    }
    assert_eq!(w.traps, 1, "the second entry must not trap again");
    assert_eq!(w.owner, FpOwner::GuestOwned);
    // Kernel-mode NEON between runs takes the registers: the next use traps again.
    for ev in [
        Ev::Exit,
        Ev::KernelNeon,
        Ev::Enter,
        Ev::GuestUseFp,
        Ev::Exit,
        Ev::Put,
        Ev::HostUseFp,
    ] {
        w.apply(ev).unwrap();
    }
    assert_eq!(w.traps, 2);
    assert_eq!(w.guest_mem, Tag::Guest(4));
}

#[test]
fn sve_guest_runs_at_its_max_vl_and_keeps_its_zcr() {
    let mut w = World::new(true);
    for ev in [Ev::Load, Ev::Enter, Ev::GuestUseFp] {
        w.apply(ev).unwrap();
    }
    assert_eq!(w.cpu.vl(), GUEST_VQ);
    assert_eq!(w.cpu.zcr_el12(), 0x5, "the guest's ZCR_EL1 is loaded");
    w.cpu.set_zcr_el12(0x2); // the guest writes its ZCR_EL1
    w.apply(Ev::Exit).unwrap();
    assert_eq!(w.vcpu_zcr_el1.raw(), 0x2, "ZCR_EL1 saved at exit");
    assert_eq!(
        w.cpu.vl(),
        GUEST_VQ,
        "ZCR_EL2 left at the guest's max VL for the lazy save"
    );
}

#[test]
fn illegal_transitions_are_rejected() {
    for owner in [FpOwner::GuestOwned, FpOwner::HostOwned] {
        assert_eq!(
            owner.next(FpEvent::Trap),
            Err(FpIllegal {
                owner,
                event: FpEvent::Trap
            })
        );
    }
    assert_eq!(
        FpOwner::Free.next(FpEvent::Trap),
        Ok((FpOwner::GuestOwned, FpAction::LoadGuest))
    );
    // Load and put always leave the registers to nobody.
    for owner in [FpOwner::Free, FpOwner::HostOwned, FpOwner::GuestOwned] {
        assert_eq!(owner.next(FpEvent::Load).unwrap().0, FpOwner::Free);
        assert_eq!(owner.next(FpEvent::Put).unwrap().0, FpOwner::Free);
    }
}

/// A guest without SVE that has just entered for the first time, and a handle
/// on its CPU.
fn entered() -> (World, Cpu) {
    let mut w = World::new(false);
    w.apply(Ev::Load).unwrap();
    w.apply(Ev::Enter).unwrap();
    let cpu = w.cpu.clone();
    (w, cpu)
}

#[test]
fn impossible_trap_is_reported_once_and_changes_nothing() {
    let (mut w, mut cpu) = entered();
    assert!(fp::handle_trap(&mut w, &mut cpu, false));
    assert!(w.illegal.is_empty());
    // FP is not trapped while the guest owns it: a second trap is a bug.
    let regs = w.regs;
    assert!(!fp::handle_trap(&mut w, &mut cpu, false));
    assert_eq!(
        w.illegal,
        vec![FpIllegal {
            owner: FpOwner::GuestOwned,
            event: FpEvent::Trap
        }]
    );
    assert_eq!(
        (w.owner, w.regs),
        (FpOwner::GuestOwned, regs),
        "nothing moved"
    );
}

#[test]
fn sve_trap_without_sve_is_left_to_the_slow_path() {
    let (mut w, mut cpu) = entered();
    assert!(!fp::handle_trap(&mut w, &mut cpu, true));
    assert_eq!(w.owner, FpOwner::Free);
    // And a handled trap writes no SVE register.
    let mut s = SimRegs::new();
    assert!(fp::handle_trap(&mut w, &mut s, false));
    assert!(s.log.is_empty(), "{:?}", s.log);
    let _ = s.read_raw::<ZCR_EL2::Reg>();
}
