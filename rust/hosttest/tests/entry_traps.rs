// SPDX-License-Identifier: GPL-2.0

//! The per-entry traps (`rust/world/entry_traps.rs`) on a simulated CPU,
//! against the C they reproduce: `__activate_traps()` / `__deactivate_traps()`
//! of `arch/arm64/kvm/hyp/vhe/switch.c`, the helpers of
//! `hyp/include/hyp/switch.h` and `asm/kvm_emulate.h` they inline, for a
//! non-nested vCPU.
//!
//! The model here is written from the C with the kernel's own constants,
//! evaluated from its headers (not the generated ones the code under test
//! uses); the C text itself is checked for the facts the Rust relies on and
//! for the order of its register accesses.
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

mod common;

use common::cpu::{r, random_regs, w, Cpu};
use common::kernel::{
    balanced, c_calls, c_eval, c_function, defines, read_kernel, squash, strip_comments,
};
use common::rng::Rng;
use common::vcpu::{Mark, Step, Vcpu};
use std::collections::{BTreeSet, HashMap};
use vhe_rs_hosttest::arch::{
    consts, SysReg, CNTPOFF_EL2, CNTP_CVAL_EL02, CPACR_EL1, CPTR_EL2, FPEXC32_EL2, HCR_EL2,
    VBAR_EL1, VSESR_EL2,
};
use vhe_rs_hosttest::sim::{touched, Event};
use vhe_rs_hosttest::world::entry_traps::{self, EntryTrapCaps, PhysTimer, TimerMap};
use vhe_rs_hosttest::world::fp::FpOwner;
use vhe_rs_hosttest::world::sysreg_sr::Features;
use vhe_rs_hosttest::world::traps::TrapCaps;

const VHE_SWITCH: &str = "arch/arm64/kvm/hyp/vhe/switch.c";
const HYP_SWITCH: &str = "arch/arm64/kvm/hyp/include/hyp/switch.h";
const EMULATE: &str = "arch/arm64/include/asm/kvm_emulate.h";

// ---------------------------------------------------------------------------
// The kernel's constants, from its headers and its C.

/// The `#define`s of the headers the per-entry traps take their bits from,
/// comments removed.
fn kernel_defines() -> HashMap<String, String> {
    let mut d = defines("arch/arm64/include/generated/asm/sysreg-defs.h");
    d.extend(defines("arch/arm64/include/asm/sysreg.h"));
    d.extend(defines("arch/arm64/include/asm/kvm_arm.h"));
    d.into_iter()
        .map(|(k, v)| (k, strip_comments(&v).trim().to_string()))
        .collect()
}

/// `X` of the call `name(X)` in `text` (the first one).
fn call_args<'a>(text: &'a str, name: &str) -> &'a str {
    balanced(text, &format!("{name}("))
        .unwrap_or_else(|| panic!("no call of {name}() in `{text}`"))
        .0
}

/// The value `__activate_traps_fpsimd32()` writes to FPEXC32_EL2, from its text.
fn c_fpexc32_value(d: &HashMap<String, String>) -> u64 {
    let body = squash(&strip_comments(c_function(
        &read_kernel(HYP_SWITCH),
        "__activate_traps_fpsimd32",
    )));
    let args = call_args(&body, "write_sysreg");
    let (val, reg) = args.rsplit_once(',').expect("write_sysreg(val, reg)");
    assert_eq!(
        reg.trim(),
        "fpexc32_el2",
        "__activate_traps_fpsimd32(): `{body}`"
    );
    c_eval(val, d)
}

/// What the model needs of the kernel, by the kernel's names.
struct K {
    hcr_tvm: u64,
    hcr_vse: u64,
    hcr_rw: u64,
    host_vhe_flags: u64,
    cpacr_tta: u64,
    cptr_tam: u64,
    cpacr_fpen: u64,
    cpacr_zen: u64,
    zen_el1en: u64,
    smen_el1en: u64,
    /// The literal of `__activate_traps_fpsimd32()`.
    fpexc_en: u64,
}

impl K {
    fn new() -> K {
        let d = kernel_defines();
        let v = |n: &str| c_eval(n, &d);
        K {
            hcr_tvm: v("HCR_TVM"),
            hcr_vse: v("HCR_VSE"),
            hcr_rw: v("HCR_RW"),
            host_vhe_flags: v("HCR_HOST_VHE_FLAGS"),
            cpacr_tta: v("CPACR_ELx_TTA"),
            cptr_tam: v("CPTR_EL2_TAM"),
            cpacr_fpen: v("CPACR_ELx_FPEN"),
            cpacr_zen: v("CPACR_ELx_ZEN"),
            zen_el1en: v("CPACR_EL1_ZEN_EL1EN"),
            smen_el1en: v("CPACR_EL1_SMEN_EL1EN"),
            fpexc_en: c_fpexc32_value(&d),
        }
    }
}

// ---------------------------------------------------------------------------
// The cases.

/// Every combination of the seven capabilities.
fn all_entry_caps() -> impl Iterator<Item = EntryTrapCaps> {
    (0..128u32).map(|b| EntryTrapCaps {
        cavium_tx2_219_tvm: b & 1 != 0,
        ras: b & 2 != 0,
        cntpoff: b & 4 != 0,
        speculative_at: b & 8 != 0,
        kernel_unmapped_at_el0: b & 16 != 0,
        fpsimd: b & 32 != 0,
        sme: b & 64 != 0,
    })
}

const OWNERS: [FpOwner; 3] = [FpOwner::Free, FpOwner::HostOwned, FpOwner::GuestOwned];

/// The timer maps: a non-nested vCPU's ([`TimerMap::NON_NESTED_VHE`]), and
/// the others `get_timer_map()` can give (nested, nVHE), which the code
/// takes as data.
const MAPS: [TimerMap; 3] = [
    TimerMap::NON_NESTED_VHE,
    TimerMap {
        direct_ptimer: Some(PhysTimer::Hptimer),
    },
    TimerMap {
        direct_ptimer: None,
    },
];

/// What the guest does to the trap registers while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Guest {
    /// Nothing (an exit before the guest ran an instruction).
    Nothing,
    /// It took the pending virtual SError (the CPU clears HCR_EL2.VSE) and
    /// wrote its timer's compare value.
    TookSerror,
    /// Every register this code touches changed, HCR_EL2.VSE set: what the
    /// exit must cope with whatever happened.
    Scramble,
}

const GUESTS: [Guest; 3] = [Guest::Nothing, Guest::TookSerror, Guest::Scramble];

/// One case: the host, the vCPU, what the guest does.
#[derive(Clone, Debug)]
struct Case {
    caps: EntryTrapCaps,
    owner: FpOwner,
    sve: bool,
    aarch32: bool,
    vse: bool,
    map: TimerMap,
    /// CNTPOFF_EL2 (zero or not).
    offset: u64,
    guest: Guest,
    /// `vcpu->arch.hcr_el2`: random, with RW and VSE as the case says.
    hcr: u64,
    vsesr: u64,
    cntp_cval: u64,
    cnthp_cval: u64,
    hyp_vector: u64,
    kernel_vectors: u64,
    this_cpu_vector: u64,
    /// Random values for what a scrambling guest leaves.
    scramble: [u64; 5],
}

impl Case {
    /// The physical timer's compare value as the host sees it before entry
    /// (what `timer_restore_state()` left: the vCPU's value plus the offset,
    /// with CNTPOFF; else anything).
    fn host_cval(&self, rng_value: u64) -> u64 {
        match (self.caps.cntpoff, self.map.direct_ptimer) {
            (true, Some(PhysTimer::Ptimer)) => self.cntp_cval.wrapping_add(self.offset),
            (true, Some(PhysTimer::Hptimer)) => self.cnthp_cval.wrapping_add(self.offset),
            _ => rng_value,
        }
    }

    /// The host's vectors (what `__deactivate_traps()` picks).
    fn host_vectors(&self) -> u64 {
        if self.caps.kernel_unmapped_at_el0 {
            self.kernel_vectors
        } else {
            self.this_cpu_vector
        }
    }
}

/// Every combination of capabilities, FP owner, vCPU SVE, 32-bit EL1,
/// pending VSE, timer map and zero or non-zero CNTPOFF_EL2, each with a
/// random guest behaviour.
fn cases(k: &K, seed: u64) -> Vec<Case> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for caps in all_entry_caps() {
        for owner in OWNERS {
            for sve in [false, true] {
                for aarch32 in [false, true] {
                    for vse in [false, true] {
                        for map in MAPS {
                            for offset_kind in 0..2 {
                                let offset = if offset_kind == 0 { 0 } else { rng.next() | 1 };
                                let mut hcr = rng.next() & !(k.hcr_rw | k.hcr_vse);
                                if !aarch32 {
                                    hcr |= k.hcr_rw;
                                }
                                if vse {
                                    hcr |= k.hcr_vse;
                                }
                                out.push(Case {
                                    caps,
                                    owner,
                                    sve,
                                    aarch32,
                                    vse,
                                    map,
                                    offset,
                                    guest: GUESTS[rng.below(3) as usize],
                                    hcr,
                                    vsesr: rng.next(),
                                    cntp_cval: rng.next(),
                                    cnthp_cval: rng.next(),
                                    hyp_vector: rng.next(),
                                    kernel_vectors: rng.next(),
                                    this_cpu_vector: rng.next(),
                                    scramble: [0; 5].map(|_| rng.next()),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// The host's values of the registers the per-entry traps touch.
#[derive(Clone, Debug)]
struct Host {
    hcr: u64,
    cpacr: u64,
    vbar: u64,
    cval: u64,
    vsesr: u64,
    fpexc32: u64,
}

/// A CPU as a VHE host runs just before entry (HCR_EL2 = HCR_HOST_VHE_FLAGS,
/// CPACR_EL1 the reset value, VBAR_EL1 the host's vectors, the timer as
/// `timer_restore_state()` left it), and the vCPU on it.
fn setup(k: &K, c: &Case, rng: &mut Rng) -> (Cpu, Vcpu, Host) {
    let mut regs = random_regs(rng);
    let cpacr = k.cpacr_fpen | k.zen_el1en | if c.caps.sme { k.smen_el1en } else { 0 };
    let h = Host {
        hcr: k.host_vhe_flags,
        cpacr,
        vbar: c.host_vectors(),
        cval: c.host_cval(rng.next()),
        vsesr: rng.next(),
        fpexc32: rng.next(),
    };
    regs.set::<HCR_EL2::Reg>(h.hcr);
    regs.set::<CPACR_EL1::Reg>(h.cpacr);
    regs.set::<VBAR_EL1::Reg>(h.vbar);
    regs.set::<CNTP_CVAL_EL02::Reg>(h.cval);
    regs.set::<CNTPOFF_EL2::Reg>(c.offset);
    regs.set::<VSESR_EL2::Reg>(h.vsesr);
    regs.set::<FPEXC32_EL2::Reg>(h.fpexc32);
    let cpu = Cpu::new(regs);
    let mut v = Vcpu::random(&cpu, Features::NONE, TrapCaps::default(), rng);
    let e = &mut v.entry;
    e.caps = c.caps;
    e.hcr = c.hcr;
    e.vsesr = c.vsesr;
    e.fp_owner = c.owner;
    e.sve = c.sve;
    e.timer_map = c.map;
    e.cntp_cval = c.cntp_cval;
    e.cnthp_cval = c.cnthp_cval;
    e.hyp_vector = c.hyp_vector;
    e.kernel_vectors = c.kernel_vectors;
    e.this_cpu_vector = c.this_cpu_vector;
    (cpu, v, h)
}

/// The guest runs: changes the registers (without logging) as `c.guest` says.
fn run_guest(k: &K, c: &Case, cpu: &Cpu) {
    let mut regs = cpu.regs_mut();
    match c.guest {
        Guest::Nothing => {}
        Guest::TookSerror => {
            let hcr = regs.get::<HCR_EL2::Reg>().unwrap();
            regs.set::<HCR_EL2::Reg>(hcr & !k.hcr_vse);
            regs.set::<CNTP_CVAL_EL02::Reg>(c.scramble[0]);
        }
        Guest::Scramble => {
            regs.set::<HCR_EL2::Reg>(c.scramble[0] | k.hcr_vse);
            regs.set::<CNTP_CVAL_EL02::Reg>(c.scramble[1]);
            regs.set::<CPACR_EL1::Reg>(c.scramble[2]);
            regs.set::<VBAR_EL1::Reg>(c.scramble[3]);
            regs.set::<FPEXC32_EL2::Reg>(c.scramble[4]);
        }
    }
}

fn describe(c: &Case) -> String {
    format!(
        "{:?}, owner {:?}, sve {}, aarch32 {}, vse {}, {:?}, offset {:#x}, guest {:?}",
        c.caps, c.owner, c.sve, c.aarch32, c.vse, c.map, c.offset, c.guest
    )
}

// ---------------------------------------------------------------------------
// The model: what the C does, written from it.

/// `__activate_traps()` for case `c`: its register accesses and changes of
/// kernel state, in order.
fn model_activate(k: &K, c: &Case) -> Vec<Step> {
    let mut out = Vec::new();
    let reg = |e: Event| Step::Reg(e);

    // ___activate_traps(vcpu, __compute_hcr(vcpu)); not nested: hcr_el2 as it is.
    let mut hcr = c.hcr;
    if c.caps.cavium_tx2_219_tvm {
        hcr |= k.hcr_tvm;
    }
    out.push(reg(w::<HCR_EL2::Reg>(hcr)));
    if c.caps.ras && hcr & k.hcr_vse != 0 {
        out.push(reg(w::<VSESR_EL2::Reg>(c.vsesr)));
    }

    // if (has_cntpoff()) { get_timer_map(); ... }
    if c.caps.cntpoff {
        let val = match c.map.direct_ptimer {
            Some(PhysTimer::Ptimer) => Some(c.cntp_cval),
            Some(PhysTimer::Hptimer) => Some(c.cnthp_cval),
            None => None,
        };
        if let Some(val) = val {
            out.push(reg(w::<CNTP_CVAL_EL02::Reg>(val)));
            out.push(reg(Event::Isb));
        }
    }

    // __activate_cptr_traps(), not nested.
    let mut val = k.cpacr_tta | k.cptr_tam;
    if c.owner == FpOwner::GuestOwned {
        val |= k.cpacr_fpen;
        if c.sve {
            val |= k.cpacr_zen;
        }
    } else if c.hcr & k.hcr_rw == 0 && c.caps.fpsimd {
        // __activate_traps_fpsimd32(): vcpu_el1_is_32bit() at hyp is !(hcr_el2 & HCR_RW).
        out.push(reg(w::<FPEXC32_EL2::Reg>(k.fpexc_en)));
        out.push(reg(Event::Isb));
    }
    out.push(reg(w::<CPACR_EL1::Reg>(val)));

    out.push(reg(w::<VBAR_EL1::Reg>(c.hyp_vector)));
    out
}

/// `__deactivate_traps()` for case `c`, the CPU holding `hw_hcr` and `hw_cval`
/// at the exit: its accesses and changes of kernel state, in order.
fn model_deactivate(k: &K, c: &Case, hw_hcr: u64, hw_cval: u64) -> Vec<Step> {
    let mut out = Vec::new();
    let reg = |e: Event| Step::Reg(e);

    // ___deactivate_traps().
    if c.hcr & k.hcr_vse != 0 {
        out.push(reg(r::<HCR_EL2::Reg>()));
        let mut hcr = c.hcr;
        hcr &= !k.hcr_vse;
        hcr |= hw_hcr & k.hcr_vse;
        out.push(Step::Ctx(Mark::SetHcrEl2(hcr)));
    }

    out.push(reg(w::<HCR_EL2::Reg>(k.host_vhe_flags)));

    if c.caps.cntpoff {
        out.push(reg(r::<CNTP_CVAL_EL02::Reg>()));
        if let Some(t) = c.map.direct_ptimer {
            out.push(Step::Ctx(Mark::SetPtimerCval(t, hw_cval)));
        }
        out.push(reg(r::<CNTPOFF_EL2::Reg>()));
        if c.map.direct_ptimer.is_some() && c.offset != 0 {
            out.push(reg(w::<CNTP_CVAL_EL02::Reg>(
                hw_cval.wrapping_add(c.offset),
            )));
            out.push(reg(Event::Isb));
        }
    }

    // asm(ALTERNATIVE("nop", "isb", ARM64_WORKAROUND_SPECULATIVE_AT)).
    if c.caps.speculative_at {
        out.push(reg(Event::Isb));
    }

    // kvm_reset_cptr_el2(): kvm_get_reset_cptr_el2()'s has_vhe() branch.
    let mut val = k.cpacr_fpen | k.zen_el1en;
    if c.caps.sme {
        val |= k.smen_el1en;
    }
    out.push(reg(w::<CPACR_EL1::Reg>(val)));

    out.push(reg(w::<VBAR_EL1::Reg>(c.host_vectors())));
    out
}

// ---------------------------------------------------------------------------
// 1. The exact sequences.

/// Activate and deactivate make exactly the model's accesses and changes of
/// kernel state, in its order, over every combination.
#[test]
fn activate_and_deactivate_follow_the_c_sequence() {
    let k = K::new();
    let mut rng = Rng(0xe7e7_0001);
    let all = cases(&k, 0xe7e7_0002);
    let mut seen = BTreeSet::new();
    for c in &all {
        let what = describe(c);
        let (mut cpu, mut v, _) = setup(&k, c, &mut rng);

        entry_traps::activate(&mut v, &mut cpu);
        assert_eq!(v.timeline(), model_activate(&k, c), "{what}: activate");

        v.clear_history();
        run_guest(&k, c, &cpu);
        let hw_hcr = cpu.get::<HCR_EL2::Reg>();
        let hw_cval = cpu.get::<CNTP_CVAL_EL02::Reg>();
        entry_traps::deactivate(&mut v, &mut cpu);
        assert_eq!(
            v.timeline(),
            model_deactivate(&k, c, hw_hcr, hw_cval),
            "{what}: deactivate"
        );
        assert!(cpu.unset_reads().is_empty(), "{what}");
        seen.insert((c.guest as u8, c.vse, c.offset != 0, c.map.direct_ptimer));
    }
    assert_eq!(all.len(), 128 * 3 * 2 * 2 * 2 * 3 * 2);
    assert_eq!(
        seen.len(),
        3 * 2 * 2 * 3,
        "combinations of guest, VSE, offset, map"
    );
}

// ---------------------------------------------------------------------------
// 2. Entry then exit gives the host its registers back.

/// Whatever the guest did, after activate and deactivate HCR_EL2, CPACR_EL1
/// and VBAR_EL1 hold the host's values (`HCR_HOST_VHE_FLAGS`, the reset
/// CPTR, the host's vectors), which they held before; a still pending virtual
/// SError stays pending in the vCPU and a taken one does not; the guest's
/// timer compare value is saved and the host's view of it is back; nothing
/// outside the per-entry registers is written.
#[test]
fn entry_then_exit_restores_the_host() {
    let k = K::new();
    let mut rng = Rng(0xe7e7_0003);
    let allowed: BTreeSet<&str> = [
        <HCR_EL2::Reg as SysReg>::NAME,
        <VSESR_EL2::Reg as SysReg>::NAME,
        <CNTP_CVAL_EL02::Reg as SysReg>::NAME,
        <CNTPOFF_EL2::Reg as SysReg>::NAME,
        <FPEXC32_EL2::Reg as SysReg>::NAME,
        <CPACR_EL1::Reg as SysReg>::NAME,
        <VBAR_EL1::Reg as SysReg>::NAME,
    ]
    .into_iter()
    .collect();
    let mut pending_kept = 0;
    let mut taken = 0;
    for c in cases(&k, 0xe7e7_0004) {
        let what = describe(&c);
        let (mut cpu, mut v, h) = setup(&k, &c, &mut rng);
        entry_traps::activate(&mut v, &mut cpu);

        // While the guest runs: its HCR_EL2, its CPACR_EL1 traps, KVM's vectors.
        let guest_hcr = cpu.get::<HCR_EL2::Reg>();
        assert_eq!(guest_hcr & !k.hcr_tvm, c.hcr & !k.hcr_tvm, "{what}");
        assert_eq!(
            guest_hcr & k.hcr_tvm != 0,
            c.hcr & k.hcr_tvm != 0 || c.caps.cavium_tx2_219_tvm,
            "{what}: TVM"
        );
        assert_eq!(cpu.get::<VBAR_EL1::Reg>(), c.hyp_vector, "{what}");
        let cpacr = cpu.get::<CPACR_EL1::Reg>();
        let owns = c.owner == FpOwner::GuestOwned;
        assert_eq!(cpacr & k.cpacr_fpen != 0, owns, "{what}: FPEN");
        assert_eq!(cpacr & k.cpacr_zen != 0, owns && c.sve, "{what}: ZEN");
        assert_ne!(cpacr & k.cpacr_tta, 0, "{what}: TTA");
        assert_ne!(cpacr & k.cptr_tam, 0, "{what}: TAM");
        let fpexc = cpu.get::<FPEXC32_EL2::Reg>();
        if !owns && c.aarch32 && c.caps.fpsimd {
            assert_eq!(fpexc, k.fpexc_en, "{what}: FPEXC32_EL2");
        } else {
            assert_eq!(fpexc, h.fpexc32, "{what}: FPEXC32_EL2 touched");
        }
        let guest_cval = match (c.caps.cntpoff, c.map.direct_ptimer) {
            (true, Some(PhysTimer::Ptimer)) => c.cntp_cval,
            (true, Some(PhysTimer::Hptimer)) => c.cnthp_cval,
            _ => h.cval,
        };
        assert_eq!(cpu.get::<CNTP_CVAL_EL02::Reg>(), guest_cval, "{what}");

        run_guest(&k, &c, &cpu);
        let hw_hcr = cpu.get::<HCR_EL2::Reg>();
        let hw_cval = cpu.get::<CNTP_CVAL_EL02::Reg>();
        entry_traps::deactivate(&mut v, &mut cpu);

        // The host's registers, as they were and as the kernel names them.
        assert_eq!(cpu.get::<HCR_EL2::Reg>(), h.hcr, "{what}: HCR_EL2");
        assert_eq!(h.hcr, k.host_vhe_flags);
        assert_eq!(cpu.get::<CPACR_EL1::Reg>(), h.cpacr, "{what}: CPACR_EL1");
        assert_eq!(cpu.get::<VBAR_EL1::Reg>(), h.vbar, "{what}: VBAR_EL1");
        assert_eq!(
            cpu.get::<VSESR_EL2::Reg>(),
            if c.caps.ras && c.vse {
                c.vsesr
            } else {
                h.vsesr
            },
            "{what}"
        );

        // The vCPU's HCR_EL2: VSE as the CPU left it if it was pending, every
        // other bit unchanged.
        let want_vse = if c.vse { hw_hcr & k.hcr_vse } else { 0 };
        assert_eq!(
            v.entry.hcr,
            (c.hcr & !k.hcr_vse) | want_vse,
            "{what}: vcpu hcr_el2"
        );
        if c.vse && want_vse != 0 {
            pending_kept += 1;
        }
        if c.vse && want_vse == 0 {
            taken += 1;
        }

        // The timer: the guest's compare value saved, the host's view back.
        if c.caps.cntpoff {
            let saved = match c.map.direct_ptimer {
                Some(PhysTimer::Ptimer) => (hw_cval, c.cnthp_cval),
                Some(PhysTimer::Hptimer) => (c.cntp_cval, hw_cval),
                None => (c.cntp_cval, c.cnthp_cval),
            };
            assert_eq!((v.entry.cntp_cval, v.entry.cnthp_cval), saved, "{what}");
            let host_view = if c.map.direct_ptimer.is_some() {
                hw_cval.wrapping_add(c.offset)
            } else {
                hw_cval
            };
            assert_eq!(cpu.get::<CNTP_CVAL_EL02::Reg>(), host_view, "{what}");
            if c.guest == Guest::Nothing {
                assert_eq!(cpu.get::<CNTP_CVAL_EL02::Reg>(), h.cval, "{what}");
            }
        } else {
            assert_eq!(
                (v.entry.cntp_cval, v.entry.cnthp_cval),
                (c.cntp_cval, c.cnthp_cval)
            );
            assert_eq!(cpu.get::<CNTP_CVAL_EL02::Reg>(), hw_cval, "{what}");
        }

        let t = touched(&cpu.log());
        assert!(
            t.is_subset(&allowed),
            "{what}: touched {:?}",
            t.difference(&allowed)
        );
        assert!(cpu.unset_reads().is_empty(), "{what}");
    }
    assert!(
        pending_kept > 1000 && taken > 1000,
        "{pending_kept} kept, {taken} taken"
    );
}

// ---------------------------------------------------------------------------
// 3. The C: the order of its accesses, and the facts the Rust relies on.

/// The register accesses and barriers in C statement text, in order, with the
/// helpers of the non-nested VHE path inlined (`inline` gives their text).
fn c_accesses(text: &str, inline: &dyn Fn(&str) -> Option<String>) -> Vec<Event> {
    let text = strip_comments(text);
    // A function's text: its body only (the signature names the function).
    let text = text.split_once('{').map_or(text.as_str(), |(_, b)| b);
    let reg = |arg: &str, el0: bool| -> String {
        let a = arg.trim();
        let name = a.strip_prefix("SYS_").unwrap_or(a).to_uppercase();
        // read/write_sysreg_el0() at VHE hyp: r##_EL02 (asm/kvm_hyp.h).
        if el0 {
            format!("{name}_EL02")
        } else {
            name
        }
    };
    let name_of = |n: String| -> &'static str { Box::leak(n.into_boxed_str()) };
    let mut out = Vec::new();
    for (name, call) in c_calls(text) {
        let args = &call[name.len() + 1..call.len() - 1];
        let last = args.rsplit_once(',').map_or(args, |x| x.1);
        match name.as_str() {
            "read_sysreg" | "read_sysreg_s" => out.push(Event::Read(name_of(reg(args, false)))),
            "read_sysreg_el0" => out.push(Event::Read(name_of(reg(args, true)))),
            "write_sysreg" | "write_sysreg_s" => {
                out.push(Event::Write(name_of(reg(last, false)), 0))
            }
            "write_sysreg_el0" => out.push(Event::Write(name_of(reg(last, true)), 0)),
            "isb" => out.push(Event::Isb),
            "ALTERNATIVE" if args.contains("\"isb\"") => out.push(Event::Isb),
            n => {
                if let Some(body) = inline(n) {
                    out.extend(c_accesses(&body, inline));
                }
            }
        }
    }
    out
}

/// The text of the helpers `__activate_traps()` and `__deactivate_traps()`
/// call that touch registers on the non-nested VHE path.
fn inline_helper(name: &str) -> Option<String> {
    let body = |file: &str| c_function(&read_kernel(file), name).to_string();
    match name {
        "___activate_traps" | "___deactivate_traps" | "__activate_traps_fpsimd32" => {
            Some(body(HYP_SWITCH))
        }
        "__activate_cptr_traps" => {
            // Without what only a nested vCPU runs: from `goto write;` to `write:`.
            let b = strip_comments(&body(VHE_SWITCH));
            let (head, rest) = b.split_once("goto write;").expect("no goto write");
            let (_, tail) = rest.split_once("write:").expect("no write:");
            Some(format!("{head}{tail}"))
        }
        "kvm_reset_cptr_el2" => Some(body(EMULATE)),
        "kvm_write_cptr_el2" => {
            // The has_vhe() branch.
            let b = squash(&strip_comments(&body(EMULATE)));
            let (vhe, _) = b
                .split_once("if (has_vhe() || has_hvhe())")
                .map(|(_, t)| t.split_once("else").expect("no else"))
                .expect("kvm_write_cptr_el2(): no has_vhe() branch");
            Some(vhe.to_string())
        }
        _ => None,
    }
}

/// The accesses of `log` without the values written.
fn shape(log: &[Event]) -> Vec<Event> {
    log.iter()
        .map(|e| match e {
            Event::Write(n, _) => Event::Write(n, 0),
            e => *e,
        })
        .collect()
}

/// On the path that makes every access (RAS with a pending SError, CNTPOFF
/// with the non-nested timer map and an offset, a 32-bit guest that does not
/// own FP, the speculative-AT erratum), activate and deactivate make the
/// register accesses of the C's text, in its order.
#[test]
fn c_text_accesses_are_the_longest_path() {
    let k = K::new();
    let switch = read_kernel(VHE_SWITCH);
    let c_act = c_accesses(c_function(&switch, "__activate_traps"), &inline_helper);
    let c_deact = c_accesses(c_function(&switch, "__deactivate_traps"), &inline_helper);
    // Sanity: what the text holds is what was meant to be found.
    assert!(
        c_act.len() >= 8 && c_deact.len() >= 9,
        "{c_act:?} {c_deact:?}"
    );

    let c = cases(&k, 0xe7e7_0005)
        .into_iter()
        .find(|c| {
            c.caps
                == EntryTrapCaps {
                    cavium_tx2_219_tvm: true,
                    ras: true,
                    cntpoff: true,
                    speculative_at: true,
                    kernel_unmapped_at_el0: false,
                    fpsimd: true,
                    sme: true,
                }
                && c.owner == FpOwner::Free
                && c.aarch32
                && c.vse
                && c.map == TimerMap::NON_NESTED_VHE
                && c.offset != 0
        })
        .unwrap();
    let mut rng = Rng(0xe7e7_0006);
    let (mut cpu, mut v, _) = setup(&k, &c, &mut rng);
    entry_traps::activate(&mut v, &mut cpu);
    assert_eq!(shape(&cpu.log()), c_act, "activate vs __activate_traps()");
    cpu.clear_log();
    entry_traps::deactivate(&mut v, &mut cpu);
    assert_eq!(
        shape(&cpu.log()),
        c_deact,
        "deactivate vs __deactivate_traps()"
    );
}

/// `__compute_hcr()` is the vCPU's `hcr_el2` for a non-nested vCPU, and
/// `___activate_traps()` adds TVM for the Cavium erratum and writes VSESR_EL2
/// with RAS and a pending SError; `___deactivate_traps()` keeps VSE pending.
/// The bits are the generated ones.
#[test]
fn hcr_handling_is_the_kernels() {
    let d = kernel_defines();
    let switch = read_kernel(VHE_SWITCH);
    let compute = squash(&strip_comments(c_function(&switch, "__compute_hcr")));
    assert!(
        compute.contains("{ u64 hcr = vcpu->arch.hcr_el2; if (!vcpu_has_nv(vcpu)) return hcr;"),
        "__compute_hcr(): `{compute}`"
    );
    let act = squash(&strip_comments(c_function(&switch, "__activate_traps")));
    assert!(
        act.contains("___activate_traps(vcpu, __compute_hcr(vcpu));"),
        "{act}"
    );

    let hyp = read_kernel(HYP_SWITCH);
    // The whole of ___activate_traps(): the TVM bit before the write, VSESR_EL2
    // after it.
    let body = squash(&strip_comments(c_function(&hyp, "___activate_traps")));
    assert_eq!(
        body,
        "static inline void ___activate_traps(struct kvm_vcpu *vcpu, u64 hcr) { \
         if (cpus_have_final_cap(ARM64_WORKAROUND_CAVIUM_TX2_219_TVM)) hcr |= HCR_TVM; \
         write_sysreg(hcr, hcr_el2); \
         if (cpus_have_final_cap(ARM64_HAS_RAS_EXTN) && (hcr & HCR_VSE)) \
         write_sysreg_s(vcpu->arch.vsesr_el2, SYS_VSESR_EL2);"
    );
    let deact = squash(&strip_comments(c_function(&hyp, "___deactivate_traps")));
    assert_eq!(
        deact,
        "static inline void ___deactivate_traps(struct kvm_vcpu *vcpu) { \
         if (vcpu->arch.hcr_el2 & HCR_VSE) { vcpu->arch.hcr_el2 &= ~HCR_VSE; \
         vcpu->arch.hcr_el2 |= read_sysreg(hcr_el2) & HCR_VSE; }"
    );

    assert_eq!(HCR_EL2::TVM.mask(), c_eval("HCR_TVM", &d));
    assert_eq!(HCR_EL2::VSE.mask(), c_eval("HCR_VSE", &d));
    assert_eq!(HCR_EL2::RW.mask(), c_eval("HCR_RW", &d));
    let caps = EntryTrapCaps::default();
    let tvm = EntryTrapCaps {
        cavium_tx2_219_tvm: true,
        ..caps
    };
    let mut rng = Rng(0xe7e7_0007);
    for _ in 0..10_000 {
        let hcr = vhe_rs_hosttest::arch::Value::<HCR_EL2::Reg>::from_raw(rng.next());
        assert_eq!(entry_traps::guest_hcr(caps, hcr), hcr);
        assert_eq!(
            entry_traps::guest_hcr(tvm, hcr).raw(),
            hcr.raw() | c_eval("HCR_TVM", &d)
        );
    }
}

/// `HCR_HOST_VHE_FLAGS` is what `__deactivate_traps()` writes, and the
/// generated value is the header's.
#[test]
fn host_hcr_is_the_kernels() {
    let d = kernel_defines();
    assert_eq!(HCR_EL2::HOST_VHE_FLAGS, c_eval("HCR_HOST_VHE_FLAGS", &d));
    let deact = squash(&strip_comments(c_function(
        &read_kernel(VHE_SWITCH),
        "__deactivate_traps",
    )));
    assert!(
        deact.contains("___deactivate_traps(vcpu); write_sysreg(HCR_HOST_VHE_FLAGS, hcr_el2);"),
        "{deact}"
    );
}

/// The bits `__activate_cptr_traps()` sets for a non-nested vCPU, taken from
/// its text and evaluated, are [`entry_traps::guest_cpacr`]'s; the nested
/// part is skipped for a non-nested vCPU.
#[test]
fn guest_cpacr_is_the_kernels() {
    let d = kernel_defines();
    let body = squash(&strip_comments(c_function(
        &read_kernel(VHE_SWITCH),
        "__activate_cptr_traps",
    )));
    // Everything a non-nested vCPU runs, up to the jump to `write:`.
    let non_nested = "static void __activate_cptr_traps(struct kvm_vcpu *vcpu) { u64 cptr; \
                      u64 val = CPACR_ELx_TTA | CPTR_EL2_TAM; if (guest_owns_fp_regs()) { \
                      val |= CPACR_ELx_FPEN; if (vcpu_has_sve(vcpu)) val |= CPACR_ELx_ZEN; \
                      } else { __activate_traps_fpsimd32(vcpu); } \
                      if (!vcpu_has_nv(vcpu)) goto write;";
    assert!(
        body.starts_with(non_nested),
        "__activate_cptr_traps(): `{body}`"
    );
    assert!(
        body.ends_with("write: write_sysreg(val, cpacr_el1);"),
        "{body}"
    );
    let init = body
        .split_once("u64 val = ")
        .and_then(|(_, t)| t.split_once(';'))
        .expect("no `u64 val = `")
        .0;
    let init = c_eval(init, &d);
    let fpen = c_eval("CPACR_ELx_FPEN", &d);
    let zen = c_eval("CPACR_ELx_ZEN", &d);
    assert_eq!(entry_traps::guest_cpacr(false, false).raw(), init);
    assert_eq!(entry_traps::guest_cpacr(false, true).raw(), init);
    assert_eq!(entry_traps::guest_cpacr(true, false).raw(), init | fpen);
    assert_eq!(
        entry_traps::guest_cpacr(true, true).raw(),
        init | fpen | zen
    );
    // The generated fields are the kernel's.
    assert_eq!(CPACR_EL1::TTA.mask(), c_eval("CPACR_ELx_TTA", &d));
    assert_eq!(CPTR_EL2::TAM.mask(), c_eval("CPTR_EL2_TAM", &d));
    assert_eq!(CPACR_EL1::FPEN.mask(), fpen);
    assert_eq!(CPACR_EL1::ZEN.mask(), zen);
}

/// `kvm_get_reset_cptr_el2()`'s VHE branch, from its text: FPEN, ZEN at EL1,
/// SMEN at EL1 with SME; nothing about the vCPU or SVE. It is what
/// `kvm_reset_cptr_el2()` writes to CPACR_EL1 on VHE.
#[test]
fn host_cpacr_is_the_kernels() {
    let d = kernel_defines();
    let emulate = read_kernel(EMULATE);
    let get = squash(&strip_comments(c_function(
        &emulate,
        "kvm_get_reset_cptr_el2",
    )));
    let (vhe, _) = balanced(&get, "if (has_vhe()) {").expect("no has_vhe() branch");
    let vhe = vhe.trim();
    let (base, rest) = vhe
        .strip_prefix("val = ")
        .and_then(|t| t.split_once(';'))
        .unwrap_or_else(|| panic!("has_vhe() branch: `{vhe}`"));
    let sme = rest
        .trim()
        .strip_prefix("if (cpus_have_final_cap(ARM64_SME)) val |= ")
        .and_then(|t| t.strip_suffix(';'))
        .unwrap_or_else(|| panic!("has_vhe() branch: `{vhe}`"));
    let (base, sme) = (c_eval(base, &d), c_eval(sme, &d));
    // Only SME matters.
    for caps in all_entry_caps() {
        let want = if caps.sme { base | sme } else { base };
        assert_eq!(entry_traps::host_cpacr(caps).raw(), want, "{caps:?}");
    }
    assert_eq!(
        consts::CPACR_EL1_ZEN_EL1EN,
        c_eval("CPACR_EL1_ZEN_EL1EN", &d)
    );
    assert_eq!(
        consts::CPACR_EL1_SMEN_EL1EN,
        c_eval("CPACR_EL1_SMEN_EL1EN", &d)
    );
    let reset = squash(&strip_comments(c_function(&emulate, "kvm_reset_cptr_el2")));
    assert!(
        reset.contains("u64 val = kvm_get_reset_cptr_el2(vcpu); kvm_write_cptr_el2(val);"),
        "{reset}"
    );
    let write = squash(&strip_comments(c_function(&emulate, "kvm_write_cptr_el2")));
    assert!(
        write.contains("if (has_vhe() || has_hvhe()) write_sysreg(val, cpacr_el1);"),
        "{write}"
    );
    let deact = squash(&strip_comments(c_function(
        &read_kernel(VHE_SWITCH),
        "__deactivate_traps",
    )));
    assert!(
        deact.contains(
            "asm(ALTERNATIVE(\"nop\", \"isb\", ARM64_WORKAROUND_SPECULATIVE_AT)); \
             kvm_reset_cptr_el2(vcpu);"
        ),
        "{deact}"
    );
}

/// `__activate_traps_fpsimd32()`: FPEXC32_EL2 = `1 << 30` (arm64 has no name
/// for it; arch/arm's is FPEXC_EN) then an `isb`, for a 32-bit EL1 on a
/// system with FP; `vcpu_el1_is_32bit()` at hyp is HCR_EL2.RW clear in the
/// vCPU's `hcr_el2`.
#[test]
fn fpsimd32_is_the_kernels() {
    let d = kernel_defines();
    let lit = c_fpexc32_value(&d);
    assert_eq!(FPEXC32_EL2::EN.mask(), lit);
    assert_eq!(FPEXC32_EL2::EN.width(), 1);
    let vfp = defines("arch/arm/include/asm/vfp.h");
    assert_eq!(lit, c_eval("FPEXC_EN", &vfp), "arch/arm's FPEXC_EN");

    let body = squash(&strip_comments(c_function(
        &read_kernel(HYP_SWITCH),
        "__activate_traps_fpsimd32",
    )));
    assert_eq!(
        body,
        "static inline void __activate_traps_fpsimd32(struct kvm_vcpu *vcpu) { \
         if (vcpu_el1_is_32bit(vcpu) && system_supports_fpsimd()) { \
         write_sysreg(1 << 30, fpexc32_el2); isb(); }"
    );

    let emulate = squash(&strip_comments(&read_kernel(EMULATE)));
    assert!(
        emulate.contains(
            "#if defined(__KVM_VHE_HYPERVISOR__) || defined(__KVM_NVHE_HYPERVISOR__) \
             static __always_inline bool vcpu_el1_is_32bit(struct kvm_vcpu *vcpu) \
             { return !(vcpu->arch.hcr_el2 & HCR_RW); }"
        ),
        "vcpu_el1_is_32bit() at hyp"
    );
    let rw = c_eval("HCR_RW", &d);
    let mut rng = Rng(0xe7e7_0008);
    for _ in 0..10_000 {
        let hcr = rng.next();
        assert_eq!(
            entry_traps::el1_is_32bit(vhe_rs_hosttest::arch::Value::from_raw(hcr)),
            hcr & rw == 0
        );
    }
}

/// The CNTPOFF blocks: `has_cntpoff()` is the ECV_CNTPOFF capability on VHE;
/// `get_timer_map()` gives a non-nested vCPU on VHE the EL1 physical timer
/// as the direct one ([`TimerMap::NON_NESTED_VHE`]); entry and exit move
/// its compare value as `entry_traps.rs` does.
#[test]
fn timer_handling_is_the_kernels() {
    let timer_h = squash(&strip_comments(&read_kernel(
        "include/kvm/arm_arch_timer.h",
    )));
    assert!(
        timer_h.contains(
            "static inline bool has_cntpoff(void) { return (has_vhe() && \
             cpus_have_final_cap(ARM64_HAS_ECV_CNTPOFF)); }"
        ),
        "has_cntpoff()"
    );
    let map = squash(&strip_comments(c_function(
        &read_kernel("arch/arm64/kvm/arch_timer.c"),
        "get_timer_map",
    )));
    assert!(
        map.contains(
            "{ if (vcpu_has_nv(vcpu)) { if (is_hyp_ctxt(vcpu)) { map->direct_vtimer = \
             vcpu_hvtimer(vcpu); map->direct_ptimer = vcpu_hptimer(vcpu);"
        ) && map.contains(
            "} else if (has_vhe()) { map->direct_vtimer = vcpu_vtimer(vcpu); \
             map->direct_ptimer = vcpu_ptimer(vcpu);"
        ),
        "get_timer_map(): `{map}`"
    );
    assert_eq!(
        TimerMap::NON_NESTED_VHE.direct_ptimer,
        Some(PhysTimer::Ptimer)
    );

    let switch = read_kernel(VHE_SWITCH);
    let act = squash(&strip_comments(c_function(&switch, "__activate_traps")));
    assert!(
        act.contains(
            "if (has_cntpoff()) { struct timer_map map; get_timer_map(vcpu, &map); \
             if (map.direct_ptimer == vcpu_ptimer(vcpu)) val = __vcpu_sys_reg(vcpu, CNTP_CVAL_EL0); \
             if (map.direct_ptimer == vcpu_hptimer(vcpu)) val = __vcpu_sys_reg(vcpu, CNTHP_CVAL_EL2); \
             if (map.direct_ptimer) { write_sysreg_el0(val, SYS_CNTP_CVAL); isb(); } }"
        ),
        "__activate_traps(): `{act}`"
    );
    let deact = squash(&strip_comments(c_function(&switch, "__deactivate_traps")));
    assert!(
        deact.contains(
            "if (has_cntpoff()) { struct timer_map map; u64 val, offset; get_timer_map(vcpu, &map); \
             val = read_sysreg_el0(SYS_CNTP_CVAL); \
             if (map.direct_ptimer == vcpu_ptimer(vcpu)) __vcpu_sys_reg(vcpu, CNTP_CVAL_EL0) = val; \
             if (map.direct_ptimer == vcpu_hptimer(vcpu)) __vcpu_sys_reg(vcpu, CNTHP_CVAL_EL2) = val; \
             offset = read_sysreg_s(SYS_CNTPOFF_EL2); \
             if (map.direct_ptimer && offset) { write_sysreg_el0(val + offset, SYS_CNTP_CVAL); isb(); } }"
        ),
        "__deactivate_traps(): `{deact}`"
    );
    // At VHE hyp, read/write_sysreg_el0(r) is r##_EL02.
    let hyp_h = squash(&strip_comments(&read_kernel(
        "arch/arm64/include/asm/kvm_hyp.h",
    )));
    assert!(
        hyp_h.contains(
            "#if defined(__KVM_VHE_HYPERVISOR__) #define read_sysreg_el0(r) read_sysreg_s(r##_EL02) \
             #define write_sysreg_el0(v,r) write_sysreg_s(v, r##_EL02)"
        ),
        "asm/kvm_hyp.h"
    );
}

/// The vectors: KVM's for the guest, the host's after (`vectors` with KPTI,
/// else this CPU's `this_cpu_vector`).
#[test]
fn vectors_are_the_kernels() {
    let switch = read_kernel(VHE_SWITCH);
    let act = squash(&strip_comments(c_function(&switch, "__activate_traps")));
    assert!(
        act.ends_with(
            "__activate_cptr_traps(vcpu); write_sysreg(__this_cpu_read(kvm_hyp_vector), vbar_el1);"
        ),
        "{act}"
    );
    let deact = squash(&strip_comments(c_function(&switch, "__deactivate_traps")));
    assert!(
        deact.starts_with("static void __deactivate_traps(struct kvm_vcpu *vcpu) { const char *host_vectors = vectors;"),
        "{deact}"
    );
    assert!(
        deact.ends_with(
            "if (!arm64_kernel_unmapped_at_el0()) host_vectors = __this_cpu_read(this_cpu_vector); \
             write_sysreg(host_vectors, vbar_el1);"
        ),
        "{deact}"
    );
}
