// SPDX-License-Identifier: GPL-2.0

//! One run of the guest (`rust/world/run.rs`) and the per-entry register moves
//! (`sysreg_sr::{save,restore}_{host,guest}_state`) on a simulated CPU, with a
//! scripted guest, against the kernel's C:
//!
//! 1. the C's statements: `__kvm_vcpu_run_vhe()` (`hyp/vhe/switch.c`) and the
//!    four `sysreg_*_state_vhe()` (`hyp/vhe/sysreg-sr.c`) are what this file
//!    says they are;
//! 2. each register move makes the accesses and context changes of the C's
//!    text (`common::run_c` carries it out), for every feature combination;
//! 3. a whole run, with re-entries decided by the exit handler, makes every
//!    register access and context call of the C's text in its order, the
//!    C's calls mapped to the Rust steps that stand for them;
//! 4. a run leaves the guest's latest state in the vCPU and gives the host
//!    its state back, whatever the guest did;
//! 5. a PSTATE with an illegal return mode, from the VMM, is entered as
//!    `PSR_MODE_EL2h | PSR_IL_BIT`.
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

mod common;

use common::cpu::{random_regs, Cpu};
use common::exits::kernel_ecs;
use common::kernel::{c_eval, defines};
use common::rng::Rng;
use common::run_c::{self, Consts, Ctxt};
use common::vcpu::{all_features, Answer, GuestExit, Mark, Step, Vcpu};
use std::collections::HashMap;
use vhe_rs_hosttest::arch::{
    Esr, SysReg, Value, CNTPOFF_EL2, CNTP_CVAL_EL02, CPACR_EL1, ELR_EL2, ESR_EL2, FPEXC32_EL2,
    HCR_EL2, SPSR_EL2, VBAR_EL1, VSESR_EL2, ZCR_EL2,
};
use vhe_rs_hosttest::world::entry_traps::{self, EntryTrapCaps, TimerMap};
use vhe_rs_hosttest::world::exits::handler_for;
use vhe_rs_hosttest::world::fixup::{ExitCode, FixupCaps};
use vhe_rs_hosttest::world::fp::FpOwner;
use vhe_rs_hosttest::world::run;
use vhe_rs_hosttest::world::sysreg_sr::{self, CpuReg, Feature, Features, VcpuSlot, VcpuSysReg};
use vhe_rs_hosttest::world::traps::TrapCaps;

// ---------------------------------------------------------------------------
// The kernel's values, and the cases.

/// What the tests need of the kernel, by the kernel's names.
struct K {
    c: Consts,
    /// `ESR_ELx_EC_<name>`.
    ecs: HashMap<String, u64>,
    ec_shift: u64,
    hcr_rw: u64,
    hcr_vse: u64,
    host_vhe_flags: u64,
    /// `PSR_MODE_EL2h | PSR_IL_BIT`.
    el2h_il: u64,
    /// `PSR_AA32_MODE_MASK`: the 5-bit mode field.
    mode_field: u64,
    /// Legal modes to enter a guest in: EL0t, EL1t, EL1h, AArch32 usr and svc.
    legal_modes: [u64; 5],
    /// The classes `hyp_exit_handlers[]` has a handler for, and the others.
    handled: Vec<u64>,
    unhandled: Vec<u64>,
}

impl K {
    fn new() -> K {
        let c = Consts::new();
        let ecs = kernel_ecs();
        let ec_shift = c_eval("ESR_ELx_EC_SHIFT", &defines("arch/arm64/include/asm/esr.h"));
        let (handled, unhandled) = (0..64u64)
            .partition(|ec| handler_for(Esr::new(Value::from_raw(ec << ec_shift))).is_some());
        K {
            hcr_rw: c.get("HCR_RW"),
            hcr_vse: c.get("HCR_VSE"),
            host_vhe_flags: c.get("HCR_HOST_VHE_FLAGS"),
            el2h_il: c.get("PSR_MODE_EL2h") | c.get("PSR_IL_BIT"),
            mode_field: c.get("PSR_AA32_MODE_MASK"),
            legal_modes: [
                c.get("PSR_MODE_EL0t"),
                c.get("PSR_MODE_EL1t"),
                c.get("PSR_MODE_EL1h"),
                c.get("PSR_AA32_MODE_USR"),
                c.get("PSR_AA32_MODE_SVC"),
            ],
            c,
            ecs,
            ec_shift,
            handled,
            unhandled,
        }
    }

    fn ec(&self, name: &str) -> u64 {
        self.ecs[name]
    }

    /// A syndrome of class `ec`, the rest random.
    fn esr(&self, ec: u64, rng: &mut Rng) -> u64 {
        let v = (ec << self.ec_shift) | (rng.next() & ((1 << self.ec_shift) - 1));
        assert_eq!(Esr::new(Value::from_raw(v)).ec_raw(), ec);
        v
    }

    /// A legal PSTATE for the guest: one of [`K::legal_modes`], every other
    /// bit random.
    fn legal_pstate(&self, rng: &mut Rng) -> u64 {
        let m = self.legal_modes[rng.below(self.legal_modes.len() as u64) as usize];
        (rng.next() & !self.mode_field) | m
    }
}

fn enc<R: SysReg>() -> u32 {
    R::ENCODING
}

fn pick(v: &[u64], rng: &mut Rng) -> u64 {
    v[rng.below(v.len() as u64) as usize]
}

/// One case: the host, the vCPU and the guest's script.
#[derive(Clone, Debug)]
struct Case {
    features: Features,
    entry: EntryTrapCaps,
    fixup: FixupCaps,
    singlestep: bool,
    owner: FpOwner,
    sve: bool,
    vse: bool,
    /// What `__kvm_adjust_pc()` adds to the PC.
    adjust_pc: u64,
    /// The PSTATE the vCPU starts the run with.
    pstate: u64,
    script: Vec<GuestExit>,
}

/// What the guest leaves on the CPU at an exit with syndrome class `ec`:
/// every register of the run's moves it owns (POR_EL0 with S1POE, VDISR_EL2
/// with RAS), its PC, PSTATE and syndrome, its FPEXC32_EL2, ZCR_EL1 and timer.
fn guest_leaves(k: &K, f: Features, ec: u64, rng: &mut Rng) -> Vec<(u32, u64)> {
    let mut out = vec![
        (CpuReg::MDSCR_EL1.encoding(), rng.next()),
        (enc::<ELR_EL2::Reg>(), rng.next()),
        (enc::<SPSR_EL2::Reg>(), rng.next()),
        (enc::<ESR_EL2::Reg>(), k.esr(ec, rng)),
        (enc::<FPEXC32_EL2::Reg>(), rng.next()),
        (CpuReg::ZCR_EL12.encoding(), rng.next()),
        (enc::<CNTP_CVAL_EL02::Reg>(), rng.next()),
    ];
    if f.has(Feature::S1poe) {
        out.push((CpuReg::POR_EL0.encoding(), rng.next()));
    }
    if f.has(Feature::Ras) {
        out.push((CpuReg::VDISR_EL2.encoding(), rng.next()));
    }
    out
}

/// A script: up to four exits handled at EL2 (the first FP use among them,
/// if the guest does not own FP yet, as the lazy FP trap), then one that goes
/// to the host: an interrupt, a trap with or without a handler, an SError
/// pending after an HVC, an SError, an illegal return.
fn random_script(k: &K, f: Features, owner: FpOwner, rng: &mut Rng) -> Vec<GuestExit> {
    let mut owner = owner;
    let mut out = Vec::new();
    for _ in 0..rng.below(5) {
        let (ec, answer) = if owner == FpOwner::Free && rng.below(3) == 0 {
            owner = FpOwner::GuestOwned;
            (k.ec("FP_ASIMD"), Answer::FpTrap)
        } else {
            (pick(&k.handled, rng), Answer::Handled)
        };
        out.push(GuestExit {
            regs: guest_leaves(k, f, ec, rng),
            exit_code: ExitCode::TRAP.raw(),
            answer,
        });
    }
    let any = rng.below(64);
    let hvc = if rng.bool() {
        k.ec("HVC64")
    } else {
        k.ec("HVC32")
    };
    let (ec, code) = match rng.below(7) {
        0 => (any, ExitCode::IRQ.raw()),
        1 => (pick(&k.handled, rng), ExitCode::TRAP.raw()),
        2 => (pick(&k.unhandled, rng), ExitCode::TRAP.raw()),
        3 => (hvc, ExitCode::TRAP.with_serror_pending().raw()),
        4 => (any, ExitCode::EL1_SERROR.raw()),
        5 => (any, ExitCode::IL.raw()),
        _ => (any, ExitCode::EL1_SERROR.with_serror_pending().raw()),
    };
    out.push(GuestExit {
        regs: guest_leaves(k, f, ec, rng),
        exit_code: code,
        answer: Answer::Exit,
    });
    out
}

/// A random case; with `anything`, also single-stepped guests (erratum
/// 2077057's rewrite of SPSR_EL2) and PSTATEs of any mode (legal or not).
fn random_case(k: &K, rng: &mut Rng, anything: bool) -> Case {
    let features = Features::from_bits(rng.next() as u8);
    let b = rng.next();
    let entry = EntryTrapCaps {
        cavium_tx2_219_tvm: b & 1 != 0,
        ras: features.has(Feature::Ras),
        cntpoff: b & 4 != 0,
        speculative_at: b & 8 != 0,
        kernel_unmapped_at_el0: b & 16 != 0,
        fpsimd: b & 32 != 0,
        sme: b & 64 != 0,
    };
    let fixup = FixupCaps {
        workaround_2077057: b & 128 != 0,
        workaround_1508412: b & 256 != 0,
    };
    // fp_owner as a run finds it: Free after vcpu_load, guest-owned after an
    // earlier run's FP trap (never host-owned on VHE).
    let owner = if b & 512 != 0 {
        FpOwner::GuestOwned
    } else {
        FpOwner::Free
    };
    Case {
        features,
        entry,
        fixup,
        singlestep: anything && b & 1024 != 0,
        owner,
        sve: b & 2048 != 0,
        vse: b & 4096 != 0,
        adjust_pc: if b & 8192 != 0 { 4 } else { 0 },
        pstate: if anything && b & 16384 != 0 {
            rng.next()
        } else {
            k.legal_pstate(rng)
        },
        script: random_script(k, features, owner, rng),
    }
}

/// The host's state before the run.
#[derive(Debug)]
struct Host {
    mdscr: u64,
    por: u64,
    hcr: u64,
    cpacr: u64,
    vbar: u64,
}

/// A CPU as a VHE host runs just before `__kvm_vcpu_run_vhe()` (HCR_EL2 the
/// host's, its CPACR_EL1 and vectors, the vCPU's deferred registers loaded),
/// and the vCPU on it.
fn setup(k: &K, c: &Case, rng: &mut Rng) -> (Cpu, Vcpu, Host) {
    let mut regs = random_regs(rng);
    let (kernel_vectors, this_cpu_vector) = (rng.next(), rng.next());
    let host = Host {
        mdscr: regs.get_encoded(CpuReg::MDSCR_EL1.encoding()).unwrap(),
        por: regs.get_encoded(CpuReg::POR_EL0.encoding()).unwrap(),
        hcr: k.host_vhe_flags,
        cpacr: entry_traps::host_cpacr(c.entry).raw(),
        vbar: if c.entry.kernel_unmapped_at_el0 {
            kernel_vectors
        } else {
            this_cpu_vector
        },
    };
    regs.set::<HCR_EL2::Reg>(host.hcr);
    regs.set::<CPACR_EL1::Reg>(host.cpacr);
    regs.set::<VBAR_EL1::Reg>(host.vbar);
    regs.set::<CNTP_CVAL_EL02::Reg>(rng.next());
    regs.set::<CNTPOFF_EL2::Reg>(if rng.bool() { rng.next() } else { 0 });
    regs.set::<VSESR_EL2::Reg>(rng.next());
    regs.set::<FPEXC32_EL2::Reg>(rng.next());
    regs.set::<ESR_EL2::Reg>(rng.next());
    regs.set::<ELR_EL2::Reg>(rng.next());
    regs.set::<SPSR_EL2::Reg>(rng.next());
    regs.set::<ZCR_EL2::Reg>(rng.next());
    let cpu = Cpu::new(regs);

    let mut v = Vcpu::random(&cpu, c.features, TrapCaps::default(), rng);
    let mut hcr = rng.next() & !(k.hcr_rw | k.hcr_vse);
    if !c.features.has(Feature::El1Is32Bit) {
        hcr |= k.hcr_rw;
    }
    if c.vse {
        hcr |= k.hcr_vse;
    }
    let e = &mut v.entry;
    e.caps = c.entry;
    e.hcr = hcr;
    e.vsesr = rng.next();
    e.fp_owner = c.owner;
    e.sve = c.sve;
    e.timer_map = TimerMap::NON_NESTED_VHE;
    e.cntp_cval = rng.next();
    e.cnthp_cval = rng.next();
    e.hyp_vector = rng.next();
    e.kernel_vectors = kernel_vectors;
    e.this_cpu_vector = this_cpu_vector;
    v.fixup.caps = c.fixup;
    v.fixup.singlestep = c.singlestep;
    v.fixup.pstate = c.pstate;
    v.run.pc = rng.next();
    v.run.adjust_pc = c.adjust_pc;
    v.run.fpexc32 = rng.next();
    v.run.sve_max_vq = 1 + rng.below(16);
    v.run.zcr_el1 = rng.next();
    v.run.script = c.script.clone().into();
    (cpu, v, host)
}

/// A copy of `v` on a copy of its CPU: what happens to one does not happen to
/// the other.
fn fork(v: &Vcpu) -> (Vcpu, Cpu) {
    let cpu = v.cpu.fork();
    let mut w = v.clone();
    w.cpu = cpu.clone();
    (w, cpu)
}

/// The kernel state the two runs may have changed, side by side.
fn assert_same_state(what: &str, a: &Vcpu, b: &Vcpu) {
    assert_eq!(a.guest, b.guest, "{what}: guest context");
    assert_eq!(a.host, b.host, "{what}: host context");
    assert_eq!(a.run.pc, b.run.pc, "{what}: pc");
    assert_eq!(a.fixup.pstate, b.fixup.pstate, "{what}: pstate");
    assert_eq!(
        a.fixup.fault_esr, b.fixup.fault_esr,
        "{what}: fault.esr_el2"
    );
    assert_eq!(a.entry.hcr, b.entry.hcr, "{what}: hcr_el2");
    assert_eq!(a.entry.cntp_cval, b.entry.cntp_cval, "{what}: cntp_cval");
    assert_eq!(a.entry.fp_owner, b.entry.fp_owner, "{what}: fp_owner");
    assert_eq!(a.run.fpexc32, b.run.fpexc32, "{what}: FPEXC32_EL2");
    assert_eq!(a.run.zcr_el1, b.run.zcr_el1, "{what}: ZCR_EL1");
    assert_eq!(a.run.script.len(), b.run.script.len(), "{what}: entries");
}

// ---------------------------------------------------------------------------
// 1. The C's statements.

/// `__kvm_vcpu_run_vhe()` is, statement for statement, the sequence `run.rs`
/// follows (declarations aside), and the four register-move functions call
/// the groups `sysreg_sr.rs` moves.
#[test]
fn the_c_is_what_run_rs_follows() {
    assert_eq!(
        run_c::run_outline(),
        [
            "sysreg_save_host_state_vhe",
            "fpsimd_lazy_switch_to_guest",
            "__activate_traps",
            "__kvm_adjust_pc",
            "sysreg_restore_guest_state_vhe",
            "__debug_switch_to_guest",
            "do { exit_code = __guest_enter(vcpu); } while (fixup_guest_exit(vcpu, &exit_code))",
            "sysreg_save_guest_state_vhe",
            "__deactivate_traps",
            "fpsimd_lazy_switch_to_host",
            "sysreg_restore_host_state_vhe",
            "if (guest_owns_fp_regs()) __fpsimd_save_fpexc32",
            "__debug_switch_to_host",
            "return exit_code;",
        ]
    );
    for (func, want) in [
        (
            "sysreg_save_host_state_vhe",
            &["__sysreg_save_common_state"][..],
        ),
        (
            "sysreg_save_guest_state_vhe",
            &[
                "__sysreg_save_common_state",
                "__sysreg_save_el2_return_state",
            ],
        ),
        (
            "sysreg_restore_host_state_vhe",
            &["__sysreg_restore_common_state"],
        ),
        (
            "sysreg_restore_guest_state_vhe",
            &[
                "__sysreg_restore_common_state",
                "__sysreg_restore_el2_return_state",
            ],
        ),
    ] {
        assert_eq!(run_c::vhe_sysreg_calls(func), want, "{func}()");
    }
    // The table's groups of the run: what the C's common and el2-return
    // functions move (tests/sysreg_sr.rs checks them against the C's text).
    let names = |it: &mut dyn Iterator<Item = &'static sysreg_sr::Entry>| -> Vec<&str> {
        it.map(|e| e.cpu.name()).collect()
    };
    let every = Features::from_bits(u8::MAX);
    assert_eq!(
        names(&mut sysreg_sr::common_plan(every)),
        ["MDSCR_EL1", "POR_EL0"]
    );
    assert_eq!(names(&mut sysreg_sr::el2_return_plan(every)), ["VDISR_EL2"]);
    assert_eq!(
        names(&mut sysreg_sr::common_plan(Features::NONE)),
        ["MDSCR_EL1"]
    );
    assert!(sysreg_sr::el2_return_plan(Features::NONE).next().is_none());
}

// ---------------------------------------------------------------------------
// 2. The register moves, one by one.

type Move = fn(&mut Vcpu, &mut Cpu);

/// The four Rust steps and the C functions they stand for.
const MOVES: [(&str, Ctxt, Move); 4] = [
    ("sysreg_save_host_state_vhe", Ctxt::Host, |v, c| {
        sysreg_sr::save_host_state(v, c)
    }),
    ("sysreg_restore_guest_state_vhe", Ctxt::Guest, |v, c| {
        sysreg_sr::restore_guest_state(v, c)
    }),
    ("sysreg_save_guest_state_vhe", Ctxt::Guest, |v, c| {
        sysreg_sr::save_guest_state(v, c)
    }),
    ("sysreg_restore_host_state_vhe", Ctxt::Host, |v, c| {
        sysreg_sr::restore_host_state(v, c)
    }),
];

/// Each register move makes exactly the accesses and context changes the C's
/// text makes, in its order, for every feature combination and PSTATE mode
/// (legal or not).
#[test]
fn register_moves_follow_sysreg_sr() {
    let k = K::new();
    let mut rng = Rng(0x7a11_0001);
    let mut accesses = [0usize; 4];
    for f in all_features() {
        for mode in 0..32u64 {
            for (i, (func, ctxt, rust)) in MOVES.iter().enumerate() {
                let what = format!("{func}(), {f:?}, mode {mode:#x}");
                let mut regs = random_regs(&mut rng);
                regs.set::<ELR_EL2::Reg>(rng.next());
                regs.set::<SPSR_EL2::Reg>(rng.next());
                let cpu = Cpu::new(regs);
                let mut v = Vcpu::random(&cpu, f, TrapCaps::default(), &mut rng);
                v.run.pc = rng.next();
                v.fixup.pstate = (rng.next() & !k.mode_field) | mode;
                let (mut c_v, mut c_cpu) = fork(&v);
                let mut r_cpu = cpu.clone();
                rust(&mut v, &mut r_cpu);
                run_c::exec_vhe_sysreg(&k.c, func, *ctxt, &mut c_v, &mut c_cpu);
                assert_eq!(v.timeline(), c_v.timeline(), "{what}");
                assert_same_state(&what, &v, &c_v);
                assert!(cpu.unset_reads().is_empty(), "{what}");
                accesses[i] += cpu.log().len();
            }
        }
    }
    // Every move did something: the gated registers came and went with the
    // features.
    assert!(accesses.iter().all(|n| *n > 64 * 32), "{accesses:?}");
}

// ---------------------------------------------------------------------------
// 3. A whole run against the C's text.

/// A run makes every register access and context call that
/// `__kvm_vcpu_run_vhe()`'s text makes, in its order, each C call carried out
/// by the Rust step that stands for it (`common::run_c::exec_run`), over
/// random capabilities, features, FP owners, PSTATEs (of any mode), single
/// stepping and scripts of up to four re-entries; it returns the same exit
/// code and leaves the same state.
#[test]
fn run_follows_kvm_vcpu_run_vhe() {
    let k = K::new();
    let mut rng = Rng(0x7a11_0002);
    let mut reentries = [0usize; 5];
    let mut fpexc_saved = 0;
    let mut fp_traps = 0;
    for _ in 0..4000 {
        let c = random_case(&k, &mut rng, true);
        let what = format!("{c:?}");
        let (cpu, v, _) = setup(&k, &c, &mut rng);
        let (mut c_v, mut c_cpu) = fork(&v);
        let mut r_v = v;
        let mut r_cpu = cpu.clone();

        let got = run::run(&mut r_v, &mut r_cpu);
        let want = run_c::exec_run(&k.c, &mut c_v, &mut c_cpu);

        assert_eq!(got, want, "{what}: exit code");
        assert_eq!(r_v.timeline(), c_v.timeline(), "{what}");
        assert_same_state(&what, &r_v, &c_v);
        assert!(r_v.run.script.is_empty(), "{what}: not every exit taken");
        assert!(
            cpu.unset_reads().is_empty(),
            "{what}: {:?}",
            cpu.unset_reads()
        );

        let tl = r_v.timeline();
        let entries = tl
            .iter()
            .filter(|s| **s == Step::Ctx(Mark::GuestEnter))
            .count();
        assert_eq!(entries, c.script.len(), "{what}");
        reentries[entries - 1] += 1;
        fpexc_saved += tl
            .iter()
            .filter(|s| matches!(s, Step::Ctx(Mark::SetFpexc32(_))))
            .count();
        fp_traps += c
            .script
            .iter()
            .filter(|x| x.answer == Answer::FpTrap)
            .count();
    }
    assert!(reentries.iter().all(|n| *n > 300), "{reentries:?}");
    assert!(
        fpexc_saved > 300 && fp_traps > 300,
        "{fpexc_saved} {fp_traps}"
    );
}

// ---------------------------------------------------------------------------
// 4. What a run leaves.

/// The value the guest last left in register `enc`, if any exit set it.
fn last_left(script: &[GuestExit], enc: u32) -> Option<u64> {
    script
        .iter()
        .rev()
        .find_map(|x| x.regs.iter().find(|(e, _)| *e == enc).map(|(_, v)| *v))
}

/// The value exit `x` left in register `enc`.
fn left(x: &GuestExit, enc: u32) -> Option<u64> {
    x.regs.iter().find(|(e, _)| *e == enc).map(|(_, v)| *v)
}

/// A guest that changes its registers at every exit: after the run the vCPU
/// holds its latest MDSCR_EL1, POR_EL0 (S1POE), DISR_EL1 (RAS), PC (an HVC's
/// moved back for a pending SError) and PSTATE, and an AArch32 EL1's
/// FPEXC32_EL2 if it owns FP; the host has its MDSCR_EL1 and POR_EL0 back,
/// saved in `host_ctxt`, and its HCR_EL2, CPACR_EL1 and VBAR_EL1; the guest
/// found its own values at the first entry and, at each re-entry, what it had
/// left (nothing is restored in the loop).
#[test]
fn a_run_saves_the_guest_and_restores_the_host() {
    let k = K::new();
    let mut rng = Rng(0x7a11_0003);
    let slot = |r: VcpuSysReg| VcpuSlot::Sys(r);
    let (mdscr, por, disr) = (
        slot(VcpuSysReg::MDSCR_EL1),
        slot(VcpuSysReg::POR_EL0),
        slot(VcpuSysReg::DISR_EL1),
    );
    let hvcs = [k.ec("HVC32"), k.ec("HVC64")];
    let mut hvc_adjusted = 0;
    for _ in 0..4000 {
        let c = random_case(&k, &mut rng, false);
        let what = format!("{c:?}");
        let f = c.features;
        let (mut cpu, mut v, host) = setup(&k, &c, &mut rng);
        let before = v.clone();
        let pc0 = v.run.pc.wrapping_add(c.adjust_pc);

        let got = run::run(&mut v, &mut cpu);
        let last = c.script.last().unwrap();
        assert_eq!(got.raw(), last.exit_code, "{what}: exit code");

        // The guest's latest state, in the vCPU.
        let g = |e: u32| last_left(&c.script, e).unwrap();
        assert_eq!(v.guest[&mdscr], g(CpuReg::MDSCR_EL1.encoding()), "{what}");
        let want_por = if f.has(Feature::S1poe) {
            g(CpuReg::POR_EL0.encoding())
        } else {
            before.guest[&por]
        };
        assert_eq!(v.guest[&por], want_por, "{what}: POR_EL0");
        let want_disr = if f.has(Feature::Ras) {
            g(CpuReg::VDISR_EL2.encoding())
        } else {
            before.guest[&disr]
        };
        assert_eq!(v.guest[&disr], want_disr, "{what}: DISR_EL1");
        let code = ExitCode::from_raw(last.exit_code);
        let esr = Esr::new(Value::from_raw(left(last, enc::<ESR_EL2::Reg>()).unwrap()));
        let hvc_back =
            code.serror_pending() && code.code() != ExitCode::IRQ && hvcs.contains(&esr.ec_raw());
        hvc_adjusted += usize::from(hvc_back);
        let elr = left(last, enc::<ELR_EL2::Reg>()).unwrap();
        assert_eq!(
            v.run.pc,
            if hvc_back { elr.wrapping_sub(4) } else { elr },
            "{what}: pc"
        );
        assert_eq!(
            v.fixup.pstate,
            left(last, enc::<SPSR_EL2::Reg>()).unwrap(),
            "{what}: pstate"
        );
        let aarch32 = f.has(Feature::El1Is32Bit);
        let want_fpexc = if v.entry.fp_owner == FpOwner::GuestOwned && aarch32 {
            left(last, enc::<FPEXC32_EL2::Reg>()).unwrap()
        } else {
            before.run.fpexc32
        };
        assert_eq!(v.run.fpexc32, want_fpexc, "{what}: FPEXC32_EL2");
        // Every other guest register is as it was (the run moves no other).
        for (s, val) in &before.guest {
            if ![mdscr, por, disr].contains(s) {
                assert_eq!(v.guest[s], *val, "{what}: {}", s.name());
            }
        }

        // The host's state, back on the CPU and saved in host_ctxt.
        assert_eq!(
            cpu.get_encoded(CpuReg::MDSCR_EL1.encoding()),
            host.mdscr,
            "{what}"
        );
        assert_eq!(v.host[&mdscr], host.mdscr, "{what}: host_ctxt MDSCR_EL1");
        // Without S1POE neither the guest nor the run touches POR_EL0.
        assert_eq!(
            cpu.get_encoded(CpuReg::POR_EL0.encoding()),
            host.por,
            "{what}"
        );
        if f.has(Feature::S1poe) {
            assert_eq!(v.host[&por], host.por, "{what}: host_ctxt POR_EL0");
        } else {
            assert_eq!(v.host[&por], before.host[&por], "{what}");
        }
        assert_eq!(cpu.get::<HCR_EL2::Reg>(), host.hcr, "{what}: HCR_EL2");
        assert_eq!(cpu.get::<CPACR_EL1::Reg>(), host.cpacr, "{what}: CPACR_EL1");
        assert_eq!(cpu.get::<VBAR_EL1::Reg>(), host.vbar, "{what}: VBAR_EL1");

        // What the guest found at each entry.
        let seen = &v.run.seen;
        assert_eq!(seen.len(), c.script.len(), "{what}");
        let at = |i: usize, e: u32| seen[i].get_encoded(e);
        let first = [
            (CpuReg::MDSCR_EL1.encoding(), before.guest[&mdscr]),
            (enc::<ELR_EL2::Reg>(), pc0),
            (enc::<SPSR_EL2::Reg>(), c.pstate),
            (enc::<VBAR_EL1::Reg>(), before.entry.hyp_vector),
        ];
        for (e, want) in first {
            assert_eq!(at(0, e), want, "{what}: first entry, register {e:#x}");
        }
        if f.has(Feature::S1poe) {
            assert_eq!(at(0, CpuReg::POR_EL0.encoding()), before.guest[&por]);
        }
        if f.has(Feature::Ras) {
            assert_eq!(at(0, CpuReg::VDISR_EL2.encoding()), before.guest[&disr]);
        }
        assert_eq!(
            at(0, enc::<HCR_EL2::Reg>()) & !k.c.get("HCR_TVM"),
            before.entry.hcr & !k.c.get("HCR_TVM"),
            "{what}: HCR_EL2"
        );
        for i in 1..seen.len() {
            for (e, val) in &c.script[i - 1].regs {
                if *e == CpuReg::ZCR_EL12.encoding() {
                    continue; // the lazy FP trap loads the guest's ZCR_EL1
                }
                assert_eq!(at(i, *e), *val, "{what}: re-entry {i}, register {e:#x}");
            }
            assert_eq!(at(i, enc::<VBAR_EL1::Reg>()), before.entry.hyp_vector);
        }

        // The context calls: one adjust before the registers, the debug
        // switches around the loop.
        let tl = v.timeline();
        let ctx: Vec<Mark> = tl
            .iter()
            .filter_map(|s| match s {
                Step::Ctx(m @ (Mark::AdjustPc | Mark::DebugSwitch(_) | Mark::GuestEnter)) => {
                    Some(*m)
                }
                _ => None,
            })
            .collect();
        let mut want = vec![Mark::AdjustPc, Mark::DebugSwitch(true)];
        want.extend(c.script.iter().map(|_| Mark::GuestEnter));
        want.push(Mark::DebugSwitch(false));
        assert_eq!(ctx, want, "{what}");
        assert_eq!(
            tl.last(),
            Some(&Step::Ctx(Mark::DebugSwitch(false))),
            "{what}"
        );
        assert!(cpu.unset_reads().is_empty(), "{what}");
    }
    assert!(hvc_adjusted > 100, "{hvc_adjusted}");
}

// ---------------------------------------------------------------------------
// 5. A PSTATE the guest may not be entered with.

/// Every mode the VMM can put in the PSTATE, with random other bits: an
/// AArch64 mode at EL2 or above that `to_hw_pstate()` does not turn into an
/// EL1 mode (EL2 with M\[1\], EL3) is entered as `PSR_MODE_EL2h | PSR_IL_BIT`
/// (and the guest's illegal-state exit is saved as such); EL2t/EL2h enter as
/// EL1t/EL1h; every other mode as it is.
#[test]
fn an_illegal_mode_from_the_vmm_is_entered_as_el2h_il() {
    let k = K::new();
    let c = &k.c;
    let mut rng = Rng(0x7a11_0004);
    let (el2t, el2h) = (c.get("PSR_MODE_EL2t"), c.get("PSR_MODE_EL2h"));
    let (el1t, el1h) = (c.get("PSR_MODE_EL1t"), c.get("PSR_MODE_EL1h"));
    let mode32 = c.get("PSR_MODE32_BIT");
    let mut illegal = Vec::new();
    for mode in 0..32u64 {
        for _ in 0..16 {
            let mut case = random_case(&k, &mut rng, false);
            case.pstate = (rng.next() & !k.mode_field) | mode;
            // The guest takes the Illegal Execution State exception at once.
            case.script = vec![GuestExit {
                regs: vec![],
                exit_code: ExitCode::IL.raw(),
                answer: Answer::Exit,
            }];
            let (mut cpu, mut v, _) = setup(&k, &case, &mut rng);
            let got = run::run(&mut v, &mut cpu);
            assert_eq!(got, ExitCode::IL);
            let entered = v.run.seen[0].get::<SPSR_EL2::Reg>();
            let aarch64 = mode & mode32 == 0;
            let want = if aarch64 && mode == el2t {
                (case.pstate & !k.mode_field) | el1t
            } else if aarch64 && mode == el2h {
                (case.pstate & !k.mode_field) | el1h
            } else if aarch64 && mode >= el2t {
                k.el2h_il
            } else {
                case.pstate
            };
            assert_eq!(entered, want, "mode {mode:#x}, pstate {:#x}", case.pstate);
            // The fixup saves what the CPU holds at the exit.
            assert_eq!(v.fixup.pstate, entered);
            if entered == k.el2h_il {
                illegal.push(mode);
            }
        }
    }
    illegal.dedup();
    // EL2 with the reserved M[1] (0xa, 0xb), EL3t, EL3h and their reserved
    // neighbours (0xe, 0xf): the kernel's values.
    let el3h = c.get("PSR_MODE_EL3h");
    assert_eq!(illegal, (el2h + 1..=el3h + 2).collect::<Vec<_>>());
}
