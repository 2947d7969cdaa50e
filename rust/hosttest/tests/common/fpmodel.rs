// SPDX-License-Identifier: GPL-2.0

//! The lazy FP switch over whole runs: a model of what the FP/SIMD/SVE
//! register file, the host thread's saved state and the vCPU's saved state
//! hold (whose values, laid out at which vector length), of the kernel's FP
//! machinery around KVM (`fpsimd_save_and_flush_cpu_state()`,
//! `fpsimd_bind_state_to_cpu()`, `TIF_FOREIGN_FPSTATE`, the return to user
//! space, kernel-mode NEON, other tasks), and a guest that uses FP/SIMD and
//! SVE, reads CNTPCT_EL0, takes aborts, interrupts and SErrors.
//!
//! Plugged into the model vCPU ([`Vcpu::fpm`]), it makes
//! `world::run::run` run the guest for real: the guest's FP use traps as the
//! CPU's CPACR_EL1 says (what `__activate_traps()` and the lazy FP trap of
//! `world::handlers` wrote), the exits go through `world::fixup` and
//! `world::handlers`, and the guest checks, every time it uses FP, that it
//! reads exactly its own latest values at its own vector length, with its own
//! ZCR_EL1 and FPEXC32_EL2; the host checks the same when it uses FP. The
//! [`walk`] replays every sequence of events up to a depth, the states
//! already seen pruned.

use std::collections::{HashSet, VecDeque};
use vhe_rs_hosttest::arch::{
    Ec, FieldValue, RegAccess, SysReg, CNTPCTSS_EL0, CNTPCT_EL0, CNTPOFF_EL2, CNTP_CVAL_EL02,
    CPACR_EL1, ELR_EL2, ESR_EL2, FPEXC32_EL2, HCR_EL2, SPSR_EL2, VBAR_EL1, VSESR_EL2, ZCR_EL12,
    ZCR_EL2,
};
use vhe_rs_hosttest::world::entry_traps::{self, EntryTrapCaps, TimerMap};
use vhe_rs_hosttest::world::fixup::ExitCode;
use vhe_rs_hosttest::world::fp::{self, FpOwner};
use vhe_rs_hosttest::world::handlers::HandlerCaps;
use vhe_rs_hosttest::world::run;
use vhe_rs_hosttest::world::sysreg_sr::{Feature, Features};
use vhe_rs_hosttest::world::traps::TrapCaps;

use super::cpu::{random_regs, Cpu};
use super::rng::Rng;
use super::vcpu::Vcpu;

/// Another task's vector length (quadwords).
pub const OTHER_VQ: u64 = 2;

/// Whose values a copy of the FP registers holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// The host thread's n-th.
    Host(u32),
    /// The guest's n-th.
    Guest(u32),
    /// Someone else's (another task, kernel-mode NEON), or garbage.
    Other,
}

/// A copy of the FP register file: whose values, laid out for which vector
/// length in quadwords (0: FP/SIMD only, no SVE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Content {
    pub tag: Tag,
    pub vq: u64,
}

/// The saved state the kernel has bound the registers to (`fpsimd_last_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bound {
    Nothing,
    Host,
    Guest,
}

/// What the guest does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuestEv {
    /// Uses FP/SIMD: reads its registers, writes new values (and an AArch32
    /// EL1 its FPEXC).
    Fp,
    /// Uses SVE: reads its Z registers at its VL and its ZCR_EL1, writes
    /// new ones (without SVE: UNDEF).
    Sve,
    /// A trapped system register access: a CNTPCT_EL0 read (AArch64,
    /// answered at EL2), a CP15 access (AArch32, to the host).
    Sysreg,
    /// A stage-2 data abort (to the host).
    Abort,
    /// An interrupt (to the host).
    Irq,
    /// An SError (to the host).
    SError,
}

/// An event of the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ev {
    Guest(GuestEv),
    /// The vCPU thread is preempted: put, another task (with another VL,
    /// FPEXC32_EL2 and ZCR_EL1, say another VM's vCPU) uses FP, load.
    Preempt,
    /// The vCPU goes back to the VMM: put, the host thread uses FP, KVM_RUN
    /// again: load.
    HostFp,
    /// Kernel-mode NEON (a softirq) between two runs.
    KernelNeon,
}

/// Every event.
pub const EVENTS: [Ev; 9] = [
    Ev::Guest(GuestEv::Fp),
    Ev::Guest(GuestEv::Sve),
    Ev::Guest(GuestEv::Sysreg),
    Ev::Guest(GuestEv::Abort),
    Ev::Guest(GuestEv::Irq),
    Ev::Guest(GuestEv::SError),
    Ev::Preempt,
    Ev::HostFp,
    Ev::KernelNeon,
];

/// The machine: the vCPU's SVE, the host's, the vCPU's EL1 width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpConfig {
    /// The vCPU's maximum VL in quadwords, `None` without SVE.
    pub sve_vq: Option<u64>,
    /// The host thread's VL in quadwords, 0 on a system without SVE.
    pub host_vq: u64,
    /// The vCPU's EL1 is AArch32.
    pub aarch32: bool,
}

/// What the guest expects when it is entered next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    Nothing,
    /// The exit goes to the host (this exit, by name).
    Exit(&'static str),
    /// The trapped instruction is retried (the lazy FP trap).
    Retry,
    /// The trapped instruction was emulated: the PC moved on to `pc`, and
    /// register `rt` holds `val`.
    Skip {
        pc: u64,
        rt: u64,
        val: u64,
    },
}

/// A value as far as the future is concerned: the latest, or another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Canon {
    Latest,
    Stale,
}

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The vCPU is loaded, between two runs.
    Loaded,
    /// The guest runs.
    InRun,
}

/// What decides everything that can happen next: [`FpModel::fingerprint`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    phase: Phase,
    /// `FpOwner` as its `Debug` text.
    owner: String,
    bound: Bound,
    foreign: bool,
    live: (Canon, u8, u64),
    host_mem: (Canon, u8, u64),
    guest_mem: (Canon, u8, u64),
    cpacr: u64,
    zcr_el2: u64,
    zcr_el12: Canon,
    vcpu_zcr: Canon,
    fpexc: Canon,
    vcpu_fpexc: Canon,
}

/// The FP model.
#[derive(Clone, Debug)]
pub struct FpModel {
    pub cfg: FpConfig,
    /// The FP registers.
    pub live: Content,
    pub bound: Bound,
    /// `TIF_FOREIGN_FPSTATE` of the vCPU thread.
    pub foreign: bool,
    /// The host thread's saved state, and the vCPU's.
    pub host_mem: Content,
    pub guest_mem: Content,
    pub host_latest: u32,
    pub guest_latest: u32,
    /// The guest's latest ZCR_EL1 and FPEXC32_EL2.
    pub guest_zcr: u64,
    pub guest_fpexc: u64,
    /// The guest's next actions in this run.
    pub queue: VecDeque<GuestEv>,
    /// The queue holds the sequence's last events: when it is empty, the
    /// state is recorded in [`FpModel::node`].
    pub last: bool,
    pub node: Option<Fingerprint>,
    pub expect: Expect,
    /// The FP/SVE use that trapped and is to be retried.
    pub trapped: Option<GuestEv>,
    /// Lazy FP traps served, guest FP uses, SVE state saves by the kernel.
    pub traps: u32,
    pub uses: u32,
    pub sve_saves: u32,
    /// What went wrong.
    pub errors: Vec<String>,
}

/// The guest's n-th FPEXC32_EL2 (EN set, never the value `__activate_traps()`
/// writes).
fn fpexc_value(n: u32) -> u64 {
    (1 << 30) | 0x100 | u64::from(n)
}

/// The guest's n-th ZCR_EL1 (any LEN: the effective VL is capped by ZCR_EL2).
fn zcr_value(n: u32) -> u64 {
    u64::from(n * 5 + 3) % 16
}

fn field<R: SysReg>(cpu: &Cpu, f: vhe_rs_hosttest::arch::Field<R>) -> u64 {
    f.get(cpu.get::<R>())
}

/// The vector length ZCR_EL2 gives, in quadwords.
fn cpu_vq(cpu: &Cpu) -> u64 {
    field(cpu, ZCR_EL2::LEN) + 1
}

fn set_cpu_vq(cpu: &Cpu, vq: u64) {
    cpu.regs_mut()
        .set::<ZCR_EL2::Reg>(ZCR_EL2::LEN.val(vq - 1).value());
}

/// `cpacr_clear_set(0, CPACR_ELx_FPEN [| CPACR_ELx_ZEN]); isb();` of
/// `kvm_hyp_handle_fpsimd()`.
pub fn enable_guest_fp(cpu: &mut Cpu, sve: bool) {
    let mut set: FieldValue<CPACR_EL1::Reg> = CPACR_EL1::FPEN::SET;
    if sve {
        set = set | CPACR_EL1::ZEN::SET;
    }
    let v = cpu.read::<CPACR_EL1::Reg>();
    cpu.write(v.with(set));
    cpu.isb();
}

impl FpModel {
    pub fn new(cfg: FpConfig, fpexc: u64) -> FpModel {
        FpModel {
            cfg,
            live: Content {
                tag: Tag::Host(0),
                vq: cfg.host_vq,
            },
            bound: Bound::Host,
            foreign: false,
            host_mem: Content {
                tag: Tag::Other,
                vq: 0,
            },
            guest_mem: Content {
                tag: Tag::Guest(0),
                vq: cfg.sve_vq.unwrap_or(0),
            },
            host_latest: 0,
            guest_latest: 0,
            guest_zcr: zcr_value(0),
            guest_fpexc: fpexc,
            queue: VecDeque::new(),
            last: false,
            node: None,
            expect: Expect::Nothing,
            trapped: None,
            traps: 0,
            uses: 0,
            sve_saves: 0,
            errors: Vec::new(),
        }
    }

    fn guest_want(&self) -> Content {
        Content {
            tag: Tag::Guest(self.guest_latest),
            vq: self.cfg.sve_vq.unwrap_or(0),
        }
    }

    fn host_want(&self) -> Content {
        Content {
            tag: Tag::Host(self.host_latest),
            vq: self.cfg.host_vq,
        }
    }

    /// The kernel's `fpsimd_save()`: what the registers hold goes to the
    /// state they are bound to, if they still hold it; SVE state is saved at
    /// the CPU's VL, which must be the state's (the kernel WARNs and saves
    /// nothing otherwise).
    fn kernel_save(&mut self, cpu: &Cpu) {
        if self.foreign {
            return;
        }
        match self.bound {
            Bound::Host => {
                if self.cfg.host_vq != 0 && cpu_vq(cpu) != self.cfg.host_vq {
                    self.errors.push(format!(
                        "host SVE state saved at VL {} (its VL is {})",
                        cpu_vq(cpu),
                        self.cfg.host_vq
                    ));
                    self.host_mem.tag = Tag::Other;
                } else {
                    self.host_mem = self.live;
                }
            }
            Bound::Guest => match self.cfg.sve_vq {
                Some(vq) if cpu_vq(cpu) != vq => {
                    self.errors.push(format!(
                        "guest SVE state saved at VL {} (max {vq})",
                        cpu_vq(cpu)
                    ));
                    self.guest_mem.tag = Tag::Other;
                }
                Some(_) => {
                    self.sve_saves += 1;
                    self.guest_mem = self.live;
                }
                None => self.guest_mem = self.live,
            },
            Bound::Nothing => {}
        }
    }

    /// `fpsimd_save_and_flush_cpu_state()`.
    pub fn save_and_flush(&mut self, cpu: &Cpu) {
        self.kernel_save(cpu);
        self.bound = Bound::Nothing;
        self.foreign = true;
    }

    /// `fpsimd_bind_state_to_cpu()` with the vCPU's state, and
    /// `TIF_FOREIGN_FPSTATE` cleared.
    pub fn bind_guest(&mut self) {
        self.bound = Bound::Guest;
        self.foreign = false;
    }

    /// The guest's registers loaded from the vCPU (`__hyp_sve_restore_guest()`
    /// at the CPU's VL, or `__fpsimd_restore_state()`).
    pub fn load_guest(&mut self, cpu: &Cpu, sve: bool, max_vq: u64) {
        if sve != self.cfg.sve_vq.is_some() {
            self.errors
                .push(format!("guest registers loaded with sve={sve}"));
        }
        if sve && (cpu_vq(cpu) != max_vq || Some(max_vq) != self.cfg.sve_vq) {
            self.errors.push(format!(
                "guest SVE state loaded at VL {} (max {max_vq})",
                cpu_vq(cpu)
            ));
            self.live.tag = Tag::Other;
            return;
        }
        self.live = self.guest_mem;
    }

    /// Another user of the FP unit: saves what is live, takes the registers.
    fn clobber(&mut self, cpu: &Cpu, vq: Option<u64>) {
        self.save_and_flush(cpu);
        self.live = Content {
            tag: Tag::Other,
            vq: 0,
        };
        if let Some(vq) = vq {
            if self.cfg.host_vq != 0 {
                set_cpu_vq(cpu, vq);
            }
        }
    }

    /// The host thread uses FP in user space: the return to user space
    /// restores its state first if the registers do not hold it.
    fn host_use(&mut self, cpu: &Cpu) {
        if self.foreign {
            self.live = self.host_mem;
            self.bound = Bound::Host;
            self.foreign = false;
            if self.cfg.host_vq != 0 {
                set_cpu_vq(cpu, self.cfg.host_vq);
            }
        }
        if self.live != self.host_want() {
            self.errors.push(format!(
                "host reads {:?}, its latest is {:?}",
                self.live,
                self.host_want()
            ));
        }
        self.host_latest += 1;
        self.live = self.host_want();
    }

    /// The guest uses FP/SIMD (`sve` false) or SVE, not trapped.
    fn guest_use(&mut self, cpu: &Cpu, sve: bool) {
        self.uses += 1;
        if self.live != self.guest_want() {
            self.errors.push(format!(
                "guest reads {:?}, its latest is {:?}",
                self.live,
                self.guest_want()
            ));
        }
        if let Some(max) = self.cfg.sve_vq {
            if cpu_vq(cpu) != max {
                self.errors.push(format!(
                    "guest runs with ZCR_EL2 VL {}, its max is {max}",
                    cpu_vq(cpu)
                ));
            }
            let zcr = cpu.get::<ZCR_EL12::Reg>();
            if sve && zcr != self.guest_zcr {
                self.errors.push(format!(
                    "guest reads ZCR_EL1 {zcr:#x}, its latest is {:#x}",
                    self.guest_zcr
                ));
            }
        }
        if self.cfg.aarch32 {
            let fpexc = cpu.get::<FPEXC32_EL2::Reg>();
            if fpexc != self.guest_fpexc {
                self.errors.push(format!(
                    "guest reads FPEXC {fpexc:#x}, its latest is {:#x}",
                    self.guest_fpexc
                ));
            }
        }
        self.guest_latest += 1;
        self.live = Content {
            tag: Tag::Guest(self.guest_latest),
            vq: if self.cfg.sve_vq.is_some() {
                cpu_vq(cpu)
            } else {
                0
            },
        };
        if sve {
            self.guest_zcr = zcr_value(self.guest_latest);
            cpu.regs_mut().set::<ZCR_EL12::Reg>(self.guest_zcr);
        }
        if self.cfg.aarch32 {
            self.guest_fpexc = fpexc_value(self.guest_latest);
            cpu.regs_mut().set::<FPEXC32_EL2::Reg>(self.guest_fpexc);
        }
    }

    /// Nothing lost, nothing mixed up.
    fn check(&mut self, v_owner: FpOwner, phase: Phase, cpu: &Cpu, vcpu_zcr: u64, vcpu_fpexc: u64) {
        let g = self.guest_want();
        let guest_live_ok = self.live == g
            && ((self.bound == Bound::Guest && !self.foreign)
                || (phase == Phase::InRun && v_owner == FpOwner::GuestOwned));
        if self.guest_mem != g && !guest_live_ok {
            self.errors
                .push(format!("guest value {:?} lost", self.guest_latest));
        }
        let h = self.host_want();
        if self.host_mem != h && !(self.live == h && self.bound == Bound::Host && !self.foreign) {
            self.errors
                .push(format!("host value {:?} lost", self.host_latest));
        }
        if matches!(self.host_mem.tag, Tag::Guest(_)) || matches!(self.guest_mem.tag, Tag::Host(_))
        {
            self.errors
                .push("a saved state holds the other side's values".into());
        }
        if v_owner == FpOwner::HostOwned {
            self.errors.push("HostOwned reached on VHE".into());
        }
        if v_owner == FpOwner::GuestOwned && !self.foreign && self.live != g {
            self.errors
                .push("owner says guest, registers are not the guest's".into());
        }
        let owned = v_owner == FpOwner::GuestOwned;
        if self.cfg.sve_vq.is_some()
            && vcpu_zcr != self.guest_zcr
            && !(owned && cpu.get::<ZCR_EL12::Reg>() == self.guest_zcr)
        {
            self.errors.push("the guest's ZCR_EL1 lost".into());
        }
        if self.cfg.aarch32
            && vcpu_fpexc != self.guest_fpexc
            && !(owned && cpu.get::<FPEXC32_EL2::Reg>() == self.guest_fpexc)
        {
            self.errors.push("the guest's FPEXC32_EL2 lost".into());
        }
    }

    fn canon(&self, c: Content) -> (Canon, u8, u64) {
        let (canon, who) = match c.tag {
            Tag::Host(n) if n == self.host_latest => (Canon::Latest, 0),
            Tag::Host(_) => (Canon::Stale, 0),
            Tag::Guest(n) if n == self.guest_latest => (Canon::Latest, 1),
            Tag::Guest(_) => (Canon::Stale, 1),
            Tag::Other => (Canon::Stale, 2),
        };
        (canon, who, c.vq)
    }

    /// The state, as far as what can happen next goes.
    fn fingerprint(&self, v: &Vcpu, phase: Phase) -> Fingerprint {
        let c = |x: u64, latest: u64| {
            if x == latest {
                Canon::Latest
            } else {
                Canon::Stale
            }
        };
        Fingerprint {
            phase,
            owner: format!("{:?}", v.entry.fp_owner),
            bound: self.bound,
            foreign: self.foreign,
            live: self.canon(self.live),
            host_mem: self.canon(self.host_mem),
            guest_mem: self.canon(self.guest_mem),
            cpacr: v.cpu.get::<CPACR_EL1::Reg>(),
            zcr_el2: v.cpu.get::<ZCR_EL2::Reg>(),
            zcr_el12: c(v.cpu.get::<ZCR_EL12::Reg>(), self.guest_zcr),
            vcpu_zcr: c(v.run.zcr_el1, self.guest_zcr),
            fpexc: c(v.cpu.get::<FPEXC32_EL2::Reg>(), self.guest_fpexc),
            vcpu_fpexc: c(v.run.fpexc32, self.guest_fpexc),
        }
    }
}

/// A syndrome of class `ec`, 32-bit instruction, with ISS `iss`.
fn esr(ec: Ec, iss: u64) -> u64 {
    ESR_EL2::EC.val(ec as u64).value() | ESR_EL2::IL.val(1).value() | ESR_EL2::ISS.val(iss).value()
}

/// A trapped `MRS Xrt, CNTPCT_EL0`.
pub fn cntpct_read_esr(rt: u64) -> u64 {
    let enc = |f: vhe_rs_hosttest::arch::Field<ESR_EL2::Reg>, v: u64| f.val(v).value();
    esr(Ec::SYS64, 1)
        | enc(ESR_EL2::SYS64_OP0, 3)
        | enc(ESR_EL2::SYS64_OP1, 3)
        | enc(ESR_EL2::SYS64_CRN, 14)
        | enc(ESR_EL2::SYS64_CRM, 0)
        | enc(ESR_EL2::SYS64_OP2, 1)
        | enc(ESR_EL2::SYS64_RT, rt)
}

/// `__guest_enter()` for the model's guest: it takes its next actions until
/// one exits, and returns the exit code.
pub fn guest_enter(v: &mut Vcpu) -> u64 {
    let mut m = v.fpm.take().expect("no FP model");
    let code = guest_run(&mut m, v);
    v.fpm = Some(m);
    code
}

fn guest_run(m: &mut FpModel, v: &mut Vcpu) -> u64 {
    let cpu = v.cpu.clone();
    let mut pc = cpu.get::<ELR_EL2::Reg>();
    match std::mem::replace(&mut m.expect, Expect::Nothing) {
        Expect::Nothing | Expect::Retry => {}
        Expect::Exit(what) => m
            .errors
            .push(format!("{what}: handled at EL2, the guest entered again")),
        Expect::Skip { pc: want, rt, val } => {
            if pc != want {
                m.errors.push(format!(
                    "PC {pc:#x} after an emulated instruction, not {want:#x}"
                ));
            }
            if rt != 31 && v.hs.gp[rt as usize] != val {
                m.errors.push(format!(
                    "x{rt} = {:#x} after an emulated CNTPCT_EL0 read, not {val:#x}",
                    v.hs.gp[rt as usize]
                ));
            }
        }
    }
    let (zcr, fpexc) = (v.run.zcr_el1, v.run.fpexc32);
    m.check(v.entry.fp_owner, Phase::InRun, &cpu, zcr, fpexc);
    let exit = |cpu: &Cpu, esr_val: u64, pc: u64, code: ExitCode| {
        cpu.regs_mut().set::<ESR_EL2::Reg>(esr_val);
        cpu.regs_mut().set::<ELR_EL2::Reg>(pc);
        code.raw()
    };
    loop {
        let Some(ev) = m.queue.front().copied() else {
            if m.last {
                m.node = Some(m.fingerprint(v, Phase::InRun));
            }
            // The sequence goes on on the host (or ends): an interrupt.
            return exit(&cpu, 0, pc, ExitCode::IRQ);
        };
        match ev {
            GuestEv::Fp | GuestEv::Sve => {
                let sve_op = ev == GuestEv::Sve;
                let fp_trapped = field(&cpu, CPACR_EL1::FPEN) != 3;
                let z_trapped = field(&cpu, CPACR_EL1::ZEN) != 3;
                if fp_trapped || (sve_op && z_trapped) {
                    let ec = if sve_op && z_trapped {
                        Ec::SVE
                    } else {
                        Ec::FP_ASIMD
                    };
                    if sve_op && m.cfg.sve_vq.is_none() {
                        // UNDEF, injected by the host.
                        m.queue.pop_front();
                        m.expect = Expect::Exit("an SVE trap of a vCPU without SVE");
                        return exit(&cpu, esr(ec, 0), pc, ExitCode::TRAP);
                    }
                    if m.trapped == Some(ev) {
                        m.errors
                            .push(format!("{ev:?} trapped again after its trap was served"));
                        m.queue.clear();
                        return exit(&cpu, 0, pc, ExitCode::IRQ);
                    }
                    m.trapped = Some(ev);
                    m.expect = Expect::Retry;
                    m.traps += 1;
                    return exit(&cpu, esr(ec, 0), pc, ExitCode::TRAP);
                }
                m.trapped = None;
                m.guest_use(&cpu, sve_op);
                m.queue.pop_front();
                pc = pc.wrapping_add(4);
            }
            GuestEv::Sysreg => {
                m.queue.pop_front();
                if m.cfg.aarch32 {
                    m.expect = Expect::Exit("a CP15 access without the GICv3 trap");
                    return exit(&cpu, esr(Ec::CP15_32, 0x1), pc, ExitCode::TRAP);
                }
                let rt = u64::from(m.guest_latest % 32);
                let counter = cpu.get::<CNTPCT_EL0::Reg>();
                let val = counter
                    .wrapping_sub(v.hs.vm_offset)
                    .wrapping_sub(v.hs.vcpu_offset);
                m.expect = Expect::Skip {
                    pc: pc.wrapping_add(4),
                    rt,
                    val,
                };
                return exit(&cpu, cntpct_read_esr(rt), pc, ExitCode::TRAP);
            }
            GuestEv::Abort => {
                m.queue.pop_front();
                m.expect = Expect::Exit("a stage-2 data abort");
                // A valid translation fault at level 3, ISV set.
                let iss = ESR_EL2::ISV.val(1).value() | 0x7;
                return exit(&cpu, esr(Ec::DABT_LOW, iss), pc, ExitCode::TRAP);
            }
            GuestEv::Irq => {
                m.queue.pop_front();
                return exit(&cpu, 0, pc, ExitCode::IRQ);
            }
            GuestEv::SError => {
                m.queue.pop_front();
                return exit(&cpu, 0, pc, ExitCode::EL1_SERROR);
            }
        }
    }
}

/// A vCPU loaded on a CPU with the FP model, as a VHE host has them right
/// after KVM_RUN's `vcpu_load` would: the host thread's FP state live.
pub fn world(cfg: FpConfig, seed: u64) -> (Vcpu, Cpu) {
    let mut rng = Rng(seed);
    let mut regs = random_regs(&mut rng);
    let caps = EntryTrapCaps {
        fpsimd: true,
        ..EntryTrapCaps::default()
    };
    regs.set::<HCR_EL2::Reg>(HCR_EL2::HOST_VHE_FLAGS);
    regs.set::<CPACR_EL1::Reg>(entry_traps::host_cpacr(caps).raw());
    regs.set::<VBAR_EL1::Reg>(rng.next());
    regs.set::<CNTP_CVAL_EL02::Reg>(rng.next());
    regs.set::<CNTPOFF_EL2::Reg>(0);
    regs.set::<VSESR_EL2::Reg>(rng.next());
    regs.set::<FPEXC32_EL2::Reg>(rng.next());
    regs.set::<ESR_EL2::Reg>(rng.next());
    regs.set::<ELR_EL2::Reg>(rng.next());
    regs.set::<SPSR_EL2::Reg>(rng.next());
    regs.set::<ZCR_EL2::Reg>(ZCR_EL2::LEN.val(cfg.host_vq.max(1) - 1).value());
    regs.set::<ZCR_EL12::Reg>(0xf);
    let counter = rng.next();
    regs.set::<CNTPCT_EL0::Reg>(counter);
    regs.set::<CNTPCTSS_EL0::Reg>(counter);
    let cpu = Cpu::new(regs);

    let features = if cfg.aarch32 {
        Features::NONE.with(Feature::El1Is32Bit)
    } else {
        Features::NONE
    };
    let mut v = Vcpu::random(&cpu, features, TrapCaps::default(), &mut rng);
    let rw = HCR_EL2::RW.mask();
    let mut hcr = rng.next() & !(rw | HCR_EL2::VSE.mask() | HCR_EL2::TVM.mask());
    if !cfg.aarch32 {
        hcr |= rw;
    }
    v.entry.caps = caps;
    v.entry.hcr = hcr;
    v.entry.fp_owner = FpOwner::Free;
    v.entry.sve = cfg.sve_vq.is_some();
    v.entry.timer_map = TimerMap::NON_NESTED_VHE;
    v.entry.hyp_vector = rng.next();
    v.entry.kernel_vectors = rng.next();
    v.entry.this_cpu_vector = rng.next();
    // EL1h, or AArch32 SVC.
    v.fixup.pstate = if cfg.aarch32 { 0x13 } else { 0x5 };
    v.run.pc = rng.next() & !3;
    v.run.sve_max_vq = cfg.sve_vq.unwrap_or(1);
    v.run.zcr_el1 = zcr_value(0);
    let fpexc = fpexc_value(0);
    v.run.fpexc32 = fpexc;
    v.hs.real = true;
    v.hs.caps = HandlerCaps {
        fpsimd: true,
        ..HandlerCaps::default()
    };
    v.hs.vm_offset = rng.next();
    v.hs.vcpu_offset = rng.next();
    v.hs.gp = [0; 32].map(|_| rng.next());
    v.fpm = Some(Box::new(FpModel::new(cfg, fpexc)));
    (v, cpu)
}

fn model(v: &mut Vcpu) -> &mut FpModel {
    v.fpm.as_deref_mut().unwrap()
}

/// Checks the model after a step taken on the host's side.
fn check_loaded(v: &mut Vcpu) {
    let (owner, zcr, fpexc) = (v.entry.fp_owner, v.run.zcr_el1, v.run.fpexc32);
    let cpu = v.cpu.clone();
    model(v).check(owner, Phase::Loaded, &cpu, zcr, fpexc);
}

/// Runs the guest until its queue is empty: KVM_RUN's loop of
/// `kvm_arch_vcpu_ctxflush_fp()`, the run, `kvm_arch_vcpu_ctxsync_fp()`.
fn run_queue(v: &mut Vcpu, cpu: &mut Cpu) {
    while !model(v).queue.is_empty() {
        fp::ctxflush(v);
        let _ = run::run(v, cpu);
        fp::ctxsync(v);
        let m = model(v);
        match std::mem::replace(&mut m.expect, Expect::Nothing) {
            Expect::Retry => m.errors.push(format!(
                "the lazy FP trap of {:?} went to the host",
                m.trapped
            )),
            Expect::Skip { .. } => m
                .errors
                .push("an emulated CNTPCT_EL0 read went to the host".into()),
            Expect::Exit(_) | Expect::Nothing => {}
        }
        m.trapped = None;
        if !m.errors.is_empty() {
            return;
        }
        check_loaded(v);
    }
}

/// Replays `seq` from a freshly loaded vCPU, checking after every event, then
/// puts the vCPU and has the host use FP: the host's values and the guest's
/// (in the vCPU) must be their latest. Returns the state after `seq` (for
/// the walk's pruning) and the model, or what went wrong.
pub fn replay(cfg: FpConfig, seq: &[Ev]) -> Result<(Fingerprint, FpModel), String> {
    let (mut v, mut cpu) = world(cfg, 0x5eed_f9f9);
    // KVM_RUN: vcpu_load.
    fp::load(&mut v);
    let mut node = None;
    let mut i = 0;
    while i < seq.len() {
        let end = seq[i..]
            .iter()
            .position(|e| !matches!(e, Ev::Guest(_)))
            .map_or(seq.len(), |n| i + n);
        if end > i {
            let m = model(&mut v);
            m.queue = seq[i..end]
                .iter()
                .map(|e| match e {
                    Ev::Guest(g) => *g,
                    _ => unreachable!(),
                })
                .collect();
            m.last = end == seq.len();
            run_queue(&mut v, &mut cpu);
            i = end;
            let m = model(&mut v);
            if m.last {
                node = m.node.take();
            }
            if !m.errors.is_empty() {
                return Err(m.errors.join("; "));
            }
            continue;
        }
        match seq[i] {
            Ev::Preempt => {
                fp::put(&mut v);
                let c = v.cpu.clone();
                let m = model(&mut v);
                m.clobber(&c, Some(OTHER_VQ));
                // Another VM's vCPU: its ZCR_EL1 and FPEXC32_EL2.
                c.regs_mut().set::<ZCR_EL12::Reg>(0xe);
                c.regs_mut().set::<FPEXC32_EL2::Reg>(0x4000_0bad);
                fp::load(&mut v);
            }
            Ev::HostFp => {
                fp::put(&mut v);
                let c = v.cpu.clone();
                model(&mut v).host_use(&c);
                fp::load(&mut v);
            }
            Ev::KernelNeon => {
                let c = v.cpu.clone();
                model(&mut v).clobber(&c, None);
            }
            Ev::Guest(_) => unreachable!(),
        }
        check_loaded(&mut v);
        if !model(&mut v).errors.is_empty() {
            return Err(model(&mut v).errors.join("; "));
        }
        i += 1;
    }
    let node = match node {
        Some(n) => n,
        None => v.fpm.as_ref().unwrap().fingerprint(&v, Phase::Loaded),
    };
    // The end: put, the host uses FP; the vCPU holds the guest's latest.
    fp::put(&mut v);
    let c = v.cpu.clone();
    let (zcr, fpexc) = (v.run.zcr_el1, v.run.fpexc32);
    let m = model(&mut v);
    m.host_use(&c);
    if m.guest_mem != m.guest_want() {
        m.errors.push(format!(
            "after put the vCPU holds {:?}, the guest's latest is {:?}",
            m.guest_mem,
            m.guest_want()
        ));
    }
    if cfg.sve_vq.is_some() && zcr != m.guest_zcr {
        m.errors.push(format!(
            "after put the vCPU's ZCR_EL1 is {zcr:#x}, not {:#x}",
            m.guest_zcr
        ));
    }
    if cfg.aarch32 && fpexc != m.guest_fpexc {
        m.errors.push(format!(
            "after put the vCPU's FPEXC32_EL2 is {fpexc:#x}, not {:#x}",
            m.guest_fpexc
        ));
    }
    if !m.errors.is_empty() {
        return Err(m.errors.join("; "));
    }
    Ok((node, m.clone()))
}

/// What a walk saw.
#[derive(Debug, Default)]
pub struct WalkStats {
    pub replays: u64,
    pub states: usize,
    pub max_traps: u32,
    pub max_uses: u32,
    pub sve_saves: u32,
}

/// Every sequence of [`EVENTS`] up to `depth` long, breadth first, a state
/// seen before (at a smaller or equal depth, so with at least as many events
/// left) not walked again: each replayed, checked after every event and at
/// its end. Panics with the first sequence that loses or leaks state.
pub fn walk(cfg: FpConfig, depth: usize) -> WalkStats {
    let mut stats = WalkStats::default();
    let mut seen: HashSet<Fingerprint> = HashSet::new();
    let mut frontier: Vec<Vec<Ev>> = vec![Vec::new()];
    for level in 0..=depth {
        let mut next = Vec::new();
        for seq in frontier {
            stats.replays += 1;
            let (node, m) =
                replay(cfg, &seq).unwrap_or_else(|e| panic!("{cfg:?}: after {seq:?}: {e}"));
            stats.max_traps = stats.max_traps.max(m.traps);
            stats.max_uses = stats.max_uses.max(m.uses);
            stats.sve_saves = stats.sve_saves.max(m.sve_saves);
            if !seen.insert(node) || level == depth {
                continue;
            }
            for e in EVENTS {
                let mut s = seq.clone();
                s.push(e);
                next.push(s);
            }
        }
        frontier = next;
    }
    stats.states = seen.len();
    stats
}
