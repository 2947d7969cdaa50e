// SPDX-License-Identifier: GPL-2.0

//! The load-time traps (`rust/traps.rs`) and `vcpu_load`/`vcpu_put`
//! (`rust/loadput.rs`) on a simulated CPU, against the C they reproduce:
//! `__activate_traps_common()` / `__deactivate_traps_common()` and the
//! fine-grained trap macros of `arch/arm64/kvm/hyp/include/hyp/switch.h`,
//! `__load_stage2()` (`asm/kvm_mmu.h`), `kvm_vcpu_load_vhe()` /
//! `kvm_vcpu_put_vhe()` (`hyp/vhe/switch.c`) and `read_sysreg_par()`.
//!
//! The vCPU is a test double that records every change of kernel state it is
//! asked for ("marks"), interleaved with the register accesses of the simulated
//! CPU, so that the order of both can be checked.
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use vhe_rs_hosttest::world::loadput::{self, LoadContext};
use vhe_rs_hosttest::sim::{Event, SimRegs};
use vhe_rs_hosttest::arch::{
    consts, RegAccess, SysReg, Value, HAFGRTR_EL2, HCRX_EL2, HDFGRTR_EL2, HDFGWTR_EL2, HFGITR_EL2,
    HFGRTR_EL2, HFGWTR_EL2, HSTR_EL2, ID_AA64PFR0_EL1, MDCR_EL2, PMSELR_EL0, PMUSERENR_EL0,
    VTCR_EL2, VTTBR_EL2,
};
use vhe_rs_hosttest::world::sysreg_sr::{
    self, CpuReg, Feature, Features, Group, SysregContext, VcpuSlot, TABLE,
};
use vhe_rs_hosttest::world::stage2::{Stage2, Stage2Context};
use vhe_rs_hosttest::world::traps::{self, FgtGroup, FgtReg, HostSaved, TrapCaps, TrapContext, FGT};

// ---------------------------------------------------------------------------
// A deterministic generator.

/// xorshift64*: reproducible values without a dependency (seed must be non-zero).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bool(&mut self) -> bool {
        self.next() & 1 != 0
    }
}

// ---------------------------------------------------------------------------
// The fine-grained trap registers as the test sees them, written from the C
// (`reg_to_fgt_group_id()`, `__activate_traps_hfgxtr()`'s order, `__<reg>_MASK`
// and `__<reg>_nMASK` of `asm/kvm_arm.h`), independently of `traps::FGT`.

struct ModelFgt {
    reg: FgtReg,
    name: &'static str,
    encoding: u32,
    group: FgtGroup,
    mask: u64,
    nmask: u64,
}

macro_rules! model_fgt {
    ($reg:ident, $group:ident, $mask:ident, $nmask:ident) => {
        ModelFgt {
            reg: FgtReg::$reg,
            name: <$reg::Reg as SysReg>::NAME,
            encoding: <$reg::Reg as SysReg>::ENCODING,
            group: FgtGroup::$group,
            mask: consts::$mask,
            nmask: consts::$nmask,
        }
    };
}

/// In the order `__activate_traps_hfgxtr()` updates them.
const MODEL_FGT: [ModelFgt; 6] = [
    model_fgt!(HFGRTR_EL2, Hfgxtr, HFGRTR_EL2_MASK, HFGRTR_EL2_NMASK),
    model_fgt!(HFGWTR_EL2, Hfgxtr, HFGWTR_EL2_MASK, HFGWTR_EL2_NMASK),
    model_fgt!(HFGITR_EL2, Hfgitr, HFGITR_EL2_MASK, HFGITR_EL2_NMASK),
    model_fgt!(HDFGRTR_EL2, Hdfgrtr, HDFGRTR_EL2_MASK, HDFGRTR_EL2_NMASK),
    model_fgt!(HDFGWTR_EL2, Hdfgrtr, HDFGWTR_EL2_MASK, HDFGWTR_EL2_NMASK),
    model_fgt!(HAFGRTR_EL2, Hafgrtr, HAFGRTR_EL2_MASK, HAFGRTR_EL2_NMASK),
];

const GROUPS: [FgtGroup; 4] = [
    FgtGroup::Hfgxtr,
    FgtGroup::Hfgitr,
    FgtGroup::Hdfgrtr,
    FgtGroup::Hafgrtr,
];

fn group_index(g: FgtGroup) -> usize {
    GROUPS.iter().position(|x| *x == g).unwrap()
}

/// `HFGxTR_EL2_TCR_EL1_MASK`, the bit Ampere AC03_CPU_38 adds to HFGWTR_EL2.
fn ampere_bit() -> u64 {
    HFGWTR_EL2::TCR_EL1.mask()
}

/// `update_fgt_traps_cs()` for a non-nested vCPU: what activate writes to `m`,
/// or `None` if it does not write it.
fn model_activate_value(m: &ModelFgt, fgu: u64, ampere: bool) -> Option<u64> {
    // compute_undef_clr_set(): set |= hfg & MASK; clr |= hfg & nMASK.
    let mut c = 0u64;
    let mut s = 0u64;
    s |= fgu & m.mask;
    c |= fgu & m.nmask;
    // s |= set; c |= clr; (set is the Ampere bit for HFGWTR_EL2 only).
    if ampere && m.reg == FgtReg::HFGWTR_EL2 {
        s |= ampere_bit();
    }
    if c != 0 || s != 0 {
        let mut val = m.nmask;
        val |= s;
        val &= !c;
        Some(val)
    } else {
        None
    }
}

/// `__deactivate_traps_hfgxtr()` for a non-nested vCPU: whether deactivate
/// writes the host's value back to `m`.
fn model_deactivate_writes(m: &ModelFgt, fgu: u64, ampere: bool) -> bool {
    if m.reg == FgtReg::HFGWTR_EL2 && ampere {
        return true;
    }
    fgu != 0
}

/// The union of the trap bits of a group's registers.
fn group_bits(g: FgtGroup) -> u64 {
    MODEL_FGT
        .iter()
        .filter(|m| m.group == g)
        .fold(0, |a, m| a | m.mask | m.nmask)
}

/// A `kvm->arch.fgu[]` value of one of several kinds: zero, anything, only
/// positive trap bits, only negative trap bits, only bits no register of the
/// group traps with (so non-zero but nothing to write), one bit.
fn fgu_of_kind(kind: u64, g: FgtGroup, rng: &mut Rng) -> u64 {
    let pos = MODEL_FGT
        .iter()
        .filter(|m| m.group == g)
        .fold(0, |a, m| a | m.mask);
    let neg = MODEL_FGT
        .iter()
        .filter(|m| m.group == g)
        .fold(0, |a, m| a | m.nmask);
    let outside = !group_bits(g);
    let nonzero_in = |set: u64, rng: &mut Rng| -> u64 {
        if set == 0 {
            return 0;
        }
        let v = rng.next() & set;
        if v != 0 {
            v
        } else {
            1 << set.trailing_zeros()
        }
    };
    match kind % 6 {
        0 => 0,
        1 => rng.next() | 1 << rng.below(64),
        2 => nonzero_in(pos, rng),
        3 => nonzero_in(neg, rng),
        4 => nonzero_in(outside, rng),
        _ => 1 << rng.below(64),
    }
}

// ---------------------------------------------------------------------------
// The CPU and the vCPU test double.

/// The simulated CPU, shared by the register side and the vCPU's marks.
#[derive(Clone)]
struct Cpu(Rc<RefCell<SimRegs>>);

impl RegAccess for Cpu {
    fn read_raw<R: SysReg>(&mut self) -> u64 {
        self.0.borrow_mut().read_raw::<R>()
    }
    fn write_raw<R: SysReg>(&mut self, val: u64) {
        self.0.borrow_mut().write_raw::<R>(val)
    }
    fn isb(&mut self) {
        self.0.borrow_mut().isb()
    }
    fn dmb_sy(&mut self) {
        self.0.borrow_mut().dmb_sy()
    }
}

impl Cpu {
    fn new(regs: SimRegs) -> Self {
        Cpu(Rc::new(RefCell::new(regs)))
    }
    fn get<R: SysReg>(&self) -> u64 {
        self.0
            .borrow()
            .get::<R>()
            .unwrap_or_else(|| panic!("{} never set", R::NAME))
    }
    fn get_encoded(&self, enc: u32) -> u64 {
        self.0.borrow().get_encoded(enc).unwrap()
    }
    fn log(&self) -> Vec<Event> {
        self.0.borrow().log.clone()
    }
    fn clear_log(&self) {
        self.0.borrow_mut().log.clear();
    }
    fn unset_reads(&self) -> Vec<&'static str> {
        self.0.borrow().unset_reads.clone()
    }
}

/// A change of kernel state the code under test asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    Running(bool),
    SysregsOnCpu(bool),
    PmuserenrOnCpu(bool),
    /// IRQs disabled (`true`) or enabled again.
    IrqsOff(bool),
    SetHost(VcpuSlot),
    SetHostSaved(HostSaved),
}

/// One step of the merged history: a register access or a mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Reg(Event),
    Ctx(Mark),
}

#[derive(Clone)]
struct Vcpu {
    cpu: Cpu,
    /// (length of the CPU's log when the mark was made, mark).
    marks: Vec<(usize, Mark)>,
    // SysregContext.
    guest: BTreeMap<VcpuSlot, u64>,
    host: BTreeMap<VcpuSlot, u64>,
    features: Features,
    sysregs_on_cpu: bool,
    workaround_1508412: bool,
    // TrapContext.
    caps: TrapCaps,
    mdcr: Value<MDCR_EL2::Reg>,
    hcrx: Value<HCRX_EL2::Reg>,
    fgu: [u64; 4],
    host_saved: BTreeMap<HostSaved, u64>,
    pmuserenr_on_cpu: bool,
    stage2: Stage2,
    // LoadContext.
    running: bool,
    irqs_off: bool,
}

impl Vcpu {
    fn random(cpu: &Cpu, features: Features, caps: TrapCaps, rng: &mut Rng) -> Self {
        let guest = TABLE.iter().map(|e| (e.vcpu, rng.next())).collect();
        // The host's user registers get a sentinel that is not what the CPU holds,
        // so that a missing save at load shows.
        let host = TABLE
            .iter()
            .filter(|e| e.group == Group::User)
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
        }
    }

    fn mark(&mut self, m: Mark) {
        let at = self.cpu.0.borrow().log.len();
        self.marks.push((at, m));
    }

    fn clear_history(&mut self) {
        self.cpu.clear_log();
        self.marks.clear();
    }

    /// The CPU's log with this vCPU's marks in their places.
    fn timeline(&self) -> Vec<Step> {
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

impl SysregContext for Vcpu {
    fn guest(&self, slot: VcpuSlot) -> u64 {
        *self
            .guest
            .get(&slot)
            .unwrap_or_else(|| panic!("guest slot {} not modelled", slot.name()))
    }
    fn set_guest(&mut self, slot: VcpuSlot, val: u64) {
        assert!(
            self.guest.insert(slot, val).is_some(),
            "guest slot {} not modelled",
            slot.name()
        );
    }
    fn host(&self, slot: VcpuSlot) -> u64 {
        *self
            .host
            .get(&slot)
            .unwrap_or_else(|| panic!("host slot {} asked for", slot.name()))
    }
    fn set_host(&mut self, slot: VcpuSlot, val: u64) {
        assert!(
            self.host.insert(slot, val).is_some(),
            "host slot {} written",
            slot.name()
        );
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

// ---------------------------------------------------------------------------
// Set-up helpers.

/// `ID_AA64PFR0_EL1.AMU` values: absent, and two ways of being present.
fn amu_values() -> [(bool, vhe_rs_hosttest::arch::FieldValue<ID_AA64PFR0_EL1::Reg>); 3] {
    [
        (false, ID_AA64PFR0_EL1::AMU::NI),
        (true, ID_AA64PFR0_EL1::AMU::IMP),
        (true, ID_AA64PFR0_EL1::AMU::V1P1),
    ]
}

/// Every combination of the five capability booleans.
fn all_caps() -> impl Iterator<Item = TrapCaps> {
    (0..32u32).map(|b| TrapCaps {
        pmu_v3: b & 1 != 0,
        fgt: b & 2 != 0,
        hcx: b & 4 != 0,
        ampere_ac03_cpu_38: b & 8 != 0,
        speculative_at: b & 16 != 0,
    })
}

fn random_caps(rng: &mut Rng) -> TrapCaps {
    TrapCaps {
        pmu_v3: rng.bool(),
        fgt: rng.bool(),
        hcx: rng.bool(),
        ampere_ac03_cpu_38: rng.bool(),
        speculative_at: rng.bool(),
    }
}

fn all_features() -> impl Iterator<Item = Features> {
    (0..1u8 << Feature::ALL.len()).map(Features::from_bits)
}

/// The trap registers `activate`/`deactivate` may touch, by name.
fn trap_reg_names() -> BTreeSet<&'static str> {
    let mut s: BTreeSet<&'static str> = [
        <HSTR_EL2::Reg as SysReg>::NAME,
        <PMSELR_EL0::Reg as SysReg>::NAME,
        <PMUSERENR_EL0::Reg as SysReg>::NAME,
        <MDCR_EL2::Reg as SysReg>::NAME,
        <HCRX_EL2::Reg as SysReg>::NAME,
        <ID_AA64PFR0_EL1::Reg as SysReg>::NAME,
    ]
    .into_iter()
    .collect();
    s.extend(MODEL_FGT.iter().map(|m| m.name));
    s
}

/// The host's trap registers before a load, as a VHE host has them.
#[derive(Clone, Debug)]
struct HostTraps {
    hstr: u64,
    pmuserenr: u64,
    pmselr: u64,
    mdcr: u64,
    hcrx: u64,
    fgt: [u64; 6],
    pfr0: u64,
}

/// A CPU where every register the code under test may touch holds a value
/// (random, except HSTR_EL2 = 0 and HCRX_EL2 = HCRX_HOST_FLAGS, the values a
/// VHE host runs with, and the given AMU field).
fn host_cpu(
    rng: &mut Rng,
    amu: vhe_rs_hosttest::arch::FieldValue<ID_AA64PFR0_EL1::Reg>,
) -> (SimRegs, HostTraps) {
    let mut regs = SimRegs::new();
    for r in CpuReg::ALL {
        regs.set_encoded(r.encoding(), rng.next());
    }
    let h = HostTraps {
        hstr: 0,
        pmuserenr: rng.next(),
        pmselr: rng.next(),
        mdcr: rng.next(),
        hcrx: consts::HCRX_HOST_FLAGS,
        fgt: [0; 6].map(|_| rng.next()),
        pfr0: amu.apply(rng.next()),
    };
    regs.set::<HSTR_EL2::Reg>(h.hstr);
    regs.set::<PMUSERENR_EL0::Reg>(h.pmuserenr);
    regs.set::<PMSELR_EL0::Reg>(h.pmselr);
    regs.set::<MDCR_EL2::Reg>(h.mdcr);
    regs.set::<HCRX_EL2::Reg>(h.hcrx);
    for (m, v) in MODEL_FGT.iter().zip(h.fgt) {
        regs.set_encoded(m.encoding, v);
    }
    regs.set::<ID_AA64PFR0_EL1::Reg>(h.pfr0);
    regs.set::<VTCR_EL2::Reg>(rng.next());
    regs.set::<VTTBR_EL2::Reg>(rng.next());
    (regs, h)
}

/// The registers written in `log`, by name, with their values in order.
fn writes_by_name(log: &[Event]) -> BTreeMap<&'static str, Vec<u64>> {
    let mut out: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    for e in log {
        if let Event::Write(n, v) = e {
            out.entry(n).or_default().push(*v);
        }
    }
    out
}

fn touched(log: &[Event]) -> BTreeSet<&'static str> {
    log.iter()
        .filter_map(|e| match e {
            Event::Read(n) | Event::Write(n, _) => Some(*n),
            _ => None,
        })
        .collect()
}

fn reads_of(log: &[Event], name: &str) -> usize {
    log.iter()
        .filter(|e| matches!(e, Event::Read(n) if *n == name))
        .count()
}

/// A labelled case of the trap tests: every caps combination, AMU absent or
/// present, and several `fgu[]` kinds per group.
struct TrapCase {
    caps: TrapCaps,
    amu: bool,
    vcpu: Vcpu,
    host: HostTraps,
}

fn trap_cases(seed: u64, per_combo: u64) -> impl Iterator<Item = TrapCase> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for caps in all_caps() {
        for (amu, amu_field) in amu_values() {
            for n in 0..per_combo {
                let (regs, host) = host_cpu(&mut rng, amu_field);
                let cpu = Cpu::new(regs);
                let mut vcpu = Vcpu::random(&cpu, Features::NONE, caps, &mut rng);
                for (i, g) in GROUPS.iter().enumerate() {
                    // Each group cycles through every kind, out of step with the others.
                    vcpu.fgu[i] = fgu_of_kind(n + 2 * i as u64, *g, &mut rng);
                }
                out.push(TrapCase {
                    caps,
                    amu,
                    vcpu,
                    host,
                });
            }
        }
    }
    out.into_iter()
}

fn describe(c: &TrapCase) -> String {
    format!("caps {:?}, amu {}, fgu {:x?}", c.caps, c.amu, c.vcpu.fgu)
}

// ---------------------------------------------------------------------------
// 1. activate + deactivate restores the host's trap registers.

#[test]
fn activate_then_deactivate_restores_host_traps() {
    let mut cases = 0;
    let mut fgu_kinds_seen = BTreeSet::new();
    for mut c in trap_cases(0x7a95_0001, 12) {
        let what = describe(&c);
        let mut cpu = c.vcpu.cpu.clone();
        traps::activate(&mut c.vcpu, &mut cpu);
        traps::deactivate(&mut c.vcpu, &mut cpu);
        let log = cpu.log();
        let h = &c.host;

        assert_eq!(cpu.get::<HSTR_EL2::Reg>(), h.hstr, "{what}: HSTR_EL2");
        assert_eq!(
            cpu.get::<HSTR_EL2::Reg>(),
            0,
            "{what}: HSTR_EL2 not 0 after put"
        );
        assert_eq!(
            cpu.get::<PMUSERENR_EL0::Reg>(),
            h.pmuserenr,
            "{what}: PMUSERENR_EL0"
        );
        assert_eq!(cpu.get::<MDCR_EL2::Reg>(), h.mdcr, "{what}: MDCR_EL2");
        assert_eq!(cpu.get::<HCRX_EL2::Reg>(), h.hcrx, "{what}: HCRX_EL2");
        for (m, v) in MODEL_FGT.iter().zip(h.fgt) {
            assert_eq!(cpu.get_encoded(m.encoding), v, "{what}: {}", m.name);
        }
        // PMSELR_EL0 is zeroed at load and not restored, as in the C.
        let pmselr = if c.caps.pmu_v3 { 0 } else { h.pmselr };
        assert_eq!(cpu.get::<PMSELR_EL0::Reg>(), pmselr, "{what}: PMSELR_EL0");
        assert!(
            !c.vcpu.pmuserenr_on_cpu,
            "{what}: PMUSERENR_ON_CPU left set"
        );
        // Nothing else was written (everything not written is unchanged).
        let written: BTreeSet<&str> = writes_by_name(&log).into_keys().collect();
        let allowed = trap_reg_names();
        assert!(
            written.is_subset(&allowed),
            "{what}: wrote {:?}",
            written.difference(&allowed).collect::<Vec<_>>()
        );
        assert!(
            !written.contains(<ID_AA64PFR0_EL1::Reg as SysReg>::NAME),
            "{what}: wrote ID_AA64PFR0_EL1"
        );
        assert!(
            cpu.unset_reads().is_empty(),
            "{what}: {:?}",
            cpu.unset_reads()
        );
        for (i, f) in c.vcpu.fgu.iter().enumerate() {
            fgu_kinds_seen.insert((i, *f == 0));
        }
        cases += 1;
    }
    assert_eq!(cases, 32 * 3 * 12);
    assert_eq!(
        fgu_kinds_seen.len(),
        8,
        "each group must be both zero and non-zero"
    );
}

/// `__deactivate_traps_common()` writes 0 to HSTR_EL2, whatever the host had.
#[test]
fn deactivate_writes_zero_to_hstr() {
    let mut rng = Rng(0x7a95_0002);
    for caps in all_caps() {
        let (mut regs, _) = host_cpu(&mut rng, ID_AA64PFR0_EL1::AMU::IMP);
        regs.set::<HSTR_EL2::Reg>(rng.next() | 1);
        let mut cpu = Cpu::new(regs);
        let mut vcpu = Vcpu::random(&cpu, Features::NONE, caps, &mut rng);
        traps::activate(&mut vcpu, &mut cpu);
        traps::deactivate(&mut vcpu, &mut cpu);
        assert_eq!(cpu.get::<HSTR_EL2::Reg>(), 0, "{caps:?}");
        assert_eq!(
            writes_by_name(&cpu.log())[<HSTR_EL2::Reg as SysReg>::NAME],
            [HSTR_EL2::T15, 0],
            "{caps:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. The state after activate.

#[test]
fn activate_sets_the_vcpu_traps_and_saves_the_host() {
    for mut c in trap_cases(0x7a95_0003, 6) {
        let what = describe(&c);
        let mut cpu = c.vcpu.cpu.clone();
        traps::activate(&mut c.vcpu, &mut cpu);
        let log = cpu.log();
        let t = touched(&log);
        let h = &c.host;

        assert_eq!(
            cpu.get::<HSTR_EL2::Reg>(),
            HSTR_EL2::T15,
            "{what}: HSTR_EL2"
        );
        assert_eq!(HSTR_EL2::T15, 1 << 15, "HSTR_EL2_T(15)");
        assert_eq!(cpu.get::<MDCR_EL2::Reg>(), c.vcpu.mdcr.raw(), "{what}: MDCR_EL2");
        if c.caps.hcx {
            assert_eq!(cpu.get::<HCRX_EL2::Reg>(), c.vcpu.hcrx.raw(), "{what}: HCRX_EL2");
        } else {
            assert!(
                !t.contains(<HCRX_EL2::Reg as SysReg>::NAME),
                "{what}: HCRX_EL2 touched"
            );
        }
        if c.caps.pmu_v3 {
            assert_eq!(
                cpu.get::<PMUSERENR_EL0::Reg>(),
                PMUSERENR_EL0::USERENR_MASK,
                "{what}: PMUSERENR_EL0"
            );
            assert_eq!(cpu.get::<PMSELR_EL0::Reg>(), 0, "{what}: PMSELR_EL0");
            assert!(c.vcpu.pmuserenr_on_cpu, "{what}: PMUSERENR_ON_CPU not set");
        } else {
            assert!(!t.contains(<PMUSERENR_EL0::Reg as SysReg>::NAME), "{what}");
            assert!(!t.contains(<PMSELR_EL0::Reg as SysReg>::NAME), "{what}");
            assert!(!c.vcpu.pmuserenr_on_cpu, "{what}: PMUSERENR_ON_CPU set");
        }

        // The host's values, each in its slot, and nothing else saved.
        let mut want = BTreeMap::new();
        if c.caps.pmu_v3 {
            want.insert(HostSaved::Pmuserenr, h.pmuserenr);
        }
        want.insert(HostSaved::MdcrEl2, h.mdcr);
        if c.caps.fgt {
            for (m, v) in MODEL_FGT.iter().zip(h.fgt) {
                if c.amu || m.reg != FgtReg::HAFGRTR_EL2 {
                    want.insert(HostSaved::Fgt(m.reg), v);
                }
            }
        }
        assert_eq!(c.vcpu.host_saved, want, "{what}: host slots");
        assert!(cpu.unset_reads().is_empty(), "{what}");
    }
}

// ---------------------------------------------------------------------------
// 3. Fine-grained traps.

#[test]
fn fgt_table_is_the_c_table() {
    assert_eq!(FGT.len(), MODEL_FGT.len());
    for (f, m) in FGT.iter().zip(MODEL_FGT.iter()) {
        assert_eq!(f.reg, m.reg, "order of FGT");
        assert_eq!(f.reg.name(), m.name, "{:?}", m.reg);
        assert_eq!(f.group, m.group, "{}: group (reg_to_fgt_group_id)", m.name);
        assert_eq!(f.mask, m.mask, "{}: MASK", m.name);
        assert_eq!(f.nmask, m.nmask, "{}: nMASK", m.name);
    }
    // The Ampere bit is a positive trap bit of HFGWTR_EL2 (setting it traps).
    assert_eq!(ampere_bit().count_ones(), 1);
    assert_ne!(ampere_bit() & consts::HFGWTR_EL2_MASK, 0);
}

#[test]
fn fgt_value_is_compute_undef_clr_set() {
    let mut rng = Rng(0x7a95_0004);
    for m in &MODEL_FGT {
        let f = FGT.iter().find(|f| f.reg == m.reg).unwrap();
        for n in 0..600u64 {
            let fgu = fgu_of_kind(n, m.group, &mut rng);
            let ampere = n % 7 == 0;
            let extra = if ampere && m.reg == FgtReg::HFGWTR_EL2 {
                ampere_bit()
            } else {
                0
            };
            assert_eq!(
                traps::fgt_value(f, fgu, extra),
                model_activate_value(m, fgu, ampere),
                "{}: fgu {fgu:#x}, ampere {ampere}",
                m.name
            );
        }
        // Nothing to trap: no write.
        assert_eq!(traps::fgt_value(f, 0, 0), None, "{}", m.name);
        assert_eq!(
            traps::fgt_value(f, !(m.mask | m.nmask), 0),
            None,
            "{}: only non-trap bits",
            m.name
        );
    }
}

#[test]
fn activate_and_deactivate_write_the_c_fgt_values() {
    let mut written = 0;
    let mut skipped_nonzero = 0;
    for mut c in trap_cases(0x7a95_0005, 12) {
        let what = describe(&c);
        let mut cpu = c.vcpu.cpu.clone();
        traps::activate(&mut c.vcpu, &mut cpu);
        let act = cpu.log();
        cpu.clear_log();
        traps::deactivate(&mut c.vcpu, &mut cpu);
        let deact = cpu.log();
        let (aw, dw) = (writes_by_name(&act), writes_by_name(&deact));
        let (at, dt) = (touched(&act), touched(&deact));

        for (m, host) in MODEL_FGT.iter().zip(c.host.fgt) {
            let fgu = c.vcpu.fgu[group_index(m.group)];
            let ampere = c.caps.ampere_ac03_cpu_38;
            let present = c.caps.fgt && (c.amu || m.reg != FgtReg::HAFGRTR_EL2);
            if !present {
                assert!(!at.contains(m.name), "{what}: activate touched {}", m.name);
                assert!(
                    !dt.contains(m.name),
                    "{what}: deactivate touched {}",
                    m.name
                );
                continue;
            }
            // Activate: one read (the host's value), then the C's value if any.
            assert_eq!(reads_of(&act, m.name), 1, "{what}: reads of {}", m.name);
            let want = model_activate_value(m, fgu, ampere);
            assert_eq!(
                aw.get(m.name).cloned().unwrap_or_default(),
                want.into_iter().collect::<Vec<_>>(),
                "{what}: activate's writes to {}",
                m.name
            );
            match want {
                Some(_) => written += 1,
                None if fgu != 0 => skipped_nonzero += 1,
                None => {}
            }
            // Deactivate: no read, the host's value back iff the C writes it.
            assert_eq!(
                reads_of(&deact, m.name),
                0,
                "{what}: deactivate read {}",
                m.name
            );
            let want_back = model_deactivate_writes(m, fgu, ampere);
            assert_eq!(
                dw.get(m.name).cloned().unwrap_or_default(),
                if want_back { vec![host] } else { vec![] },
                "{what}: deactivate's writes to {}",
                m.name
            );
        }
        if !c.caps.fgt {
            assert!(
                !at.contains(<ID_AA64PFR0_EL1::Reg as SysReg>::NAME)
                    && !dt.contains(<ID_AA64PFR0_EL1::Reg as SysReg>::NAME),
                "{what}: AMU looked up without FGT"
            );
        }
    }
    assert!(written > 500, "only {written} FGT writes exercised");
    assert!(
        skipped_nonzero > 50,
        "only {skipped_nonzero} cases of non-zero fgu with nothing to write"
    );
}

/// The Ampere workaround alone (fgu all zero): HFGWTR_EL2 gets exactly the
/// TCR_EL1 trap and is restored; no other FGT register is written.
#[test]
fn ampere_erratum_traps_tcr_el1_writes_only() {
    let mut rng = Rng(0x7a95_0006);
    for ampere in [false, true] {
        let caps = TrapCaps {
            fgt: true,
            ampere_ac03_cpu_38: ampere,
            ..TrapCaps::default()
        };
        let (regs, h) = host_cpu(&mut rng, ID_AA64PFR0_EL1::AMU::IMP);
        let mut cpu = Cpu::new(regs);
        let mut vcpu = Vcpu::random(&cpu, Features::NONE, caps, &mut rng);
        traps::activate(&mut vcpu, &mut cpu);
        let aw = writes_by_name(&cpu.log());
        let fgt_written: Vec<&str> = MODEL_FGT
            .iter()
            .map(|m| m.name)
            .filter(|n| aw.contains_key(n))
            .collect();
        if ampere {
            assert_eq!(fgt_written, [<HFGWTR_EL2::Reg as SysReg>::NAME]);
            assert_eq!(
                cpu.get::<HFGWTR_EL2::Reg>(),
                consts::HFGWTR_EL2_NMASK | ampere_bit()
            );
        } else {
            assert!(fgt_written.is_empty(), "{fgt_written:?}");
        }
        cpu.clear_log();
        traps::deactivate(&mut vcpu, &mut cpu);
        let dw = writes_by_name(&cpu.log());
        let back: Vec<&str> = MODEL_FGT
            .iter()
            .map(|m| m.name)
            .filter(|n| dw.contains_key(n))
            .collect();
        if ampere {
            assert_eq!(back, [<HFGWTR_EL2::Reg as SysReg>::NAME]);
            assert_eq!(cpu.get::<HFGWTR_EL2::Reg>(), h.fgt[1]);
        } else {
            assert!(back.is_empty(), "{back:?}");
        }
    }
}

// CHECK_FGT_MASKS: the kernel's own RES0 and mask definitions, evaluated from
// `asm/kvm_arm.h` and the generated `asm/sysreg-defs.h`.

fn kdir() -> PathBuf {
    std::env::var_os("KDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../build/linux"))
}

fn read_kernel(rel: &str) -> String {
    let path = kdir().join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set KDIR to the kernel tree)", path.display()))
}

/// The object-like `#define`s of a header, continuation lines joined.
fn c_defines(text: &str) -> HashMap<String, String> {
    let joined = text.replace("\\\n", " ");
    let mut out = HashMap::new();
    for l in joined.lines() {
        let Some(rest) = l.trim_start().strip_prefix("#define") else {
            continue;
        };
        let rest = rest.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (name, body) = rest.split_at(end);
        if body.starts_with('(') {
            continue; // function-like
        }
        out.insert(name.to_string(), body.trim().to_string());
    }
    out
}

/// `e` split on `op` outside parentheses.
fn split_top(e: &str, op: char) -> Vec<&str> {
    let mut depth = 0;
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, ch) in e.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == op && depth == 0 => {
                parts.push(&e[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&e[start..]);
    parts
}

/// Evaluates the mask expressions of these headers: `|`, `&`, `~`,
/// parentheses, `BIT(n)`, `GENMASK(h, l)`, `GENMASK_ULL(h, l)`, `UL(n)`,
/// numbers and macro names. Anything else fails the test.
fn c_eval(expr: &str, d: &HashMap<String, String>) -> u64 {
    let e = expr.trim();
    let parts = split_top(e, '|');
    if parts.len() > 1 {
        return parts.iter().fold(0, |a, p| a | c_eval(p, d));
    }
    let parts = split_top(e, '&');
    if parts.len() > 1 {
        return parts.iter().fold(u64::MAX, |a, p| a & c_eval(p, d));
    }
    if let Some(r) = e.strip_prefix('~') {
        return !c_eval(r, d);
    }
    if e.starts_with('(') && e.ends_with(')') {
        return c_eval(&e[1..e.len() - 1], d);
    }
    let num = |s: &str| -> u64 {
        let s = s.trim().trim_end_matches(['U', 'L', 'u', 'l']);
        match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).unwrap(),
            None => s.parse().unwrap_or_else(|_| panic!("not a number: `{s}`")),
        }
    };
    let call = |name: &str| -> Option<Vec<&str>> {
        let r = e.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')?;
        Some(r.split(',').collect())
    };
    if let Some(a) = call("GENMASK_ULL").or_else(|| call("GENMASK")) {
        let (h, l) = (num(a[0]), num(a[1]));
        return (u64::MAX >> (63 - h)) & (u64::MAX << l);
    }
    if let Some(a) = call("BIT") {
        return 1 << num(a[0]);
    }
    if let Some(a) = call("UL") {
        return num(a[0]);
    }
    if e.starts_with(|c: char| c.is_ascii_digit()) {
        return num(e);
    }
    match d.get(e) {
        Some(v) => c_eval(v, d),
        None => panic!("cannot evaluate `{e}`"),
    }
}

/// `CHECK_FGT_MASKS(reg)` for every register of `FGT`: MASK and nMASK do not
/// overlap, and every bit is exactly one of RES0, MASK, nMASK. Also the
/// generated MASK/nMASK are the header's.
#[test]
fn fgt_masks_pass_check_fgt_masks() {
    let mut d = c_defines(&read_kernel(
        "arch/arm64/include/generated/asm/sysreg-defs.h",
    ));
    d.extend(c_defines(&read_kernel("arch/arm64/include/asm/kvm_arm.h")));
    for f in FGT.iter() {
        let name = f.reg.name();
        assert_eq!(f.mask & f.nmask, 0, "{name}: MASK & nMASK");
        let res0 = c_eval(&format!("__{name}_RES0"), &d);
        assert_eq!(
            !(res0 ^ f.mask ^ f.nmask),
            0,
            "{name}: bits in none or several of RES0 {res0:#x}, MASK {:#x}, nMASK {:#x}",
            f.mask,
            f.nmask
        );
        assert_eq!(
            f.mask,
            c_eval(&format!("__{name}_MASK"), &d),
            "{name}: MASK"
        );
        assert_eq!(
            f.nmask,
            c_eval(&format!("__{name}_nMASK"), &d),
            "{name}: nMASK"
        );
    }
    // And the Ampere bit is the header's HFGxTR_EL2_TCR_EL1_MASK.
    assert_eq!(ampere_bit(), c_eval("HFGxTR_EL2_TCR_EL1_MASK", &d));
}

// ---------------------------------------------------------------------------
// The exact sequence of activate and deactivate, from the C text.

fn w<R: SysReg>(v: u64) -> Event {
    Event::Write(R::NAME, v)
}
fn r<R: SysReg>() -> Event {
    Event::Read(R::NAME)
}

#[test]
fn activate_and_deactivate_follow_the_c_sequence() {
    for mut c in trap_cases(0x7a95_0007, 2) {
        let what = describe(&c);
        let caps = c.caps;
        let mut cpu = c.vcpu.cpu.clone();
        let v = c.vcpu.clone();
        let pfr0 = <ID_AA64PFR0_EL1::Reg as SysReg>::NAME;

        traps::activate(&mut c.vcpu, &mut cpu);
        let mut want = vec![Step::Reg(w::<HSTR_EL2::Reg>(HSTR_EL2::T15))];
        if caps.pmu_v3 {
            want.extend([
                Step::Reg(w::<PMSELR_EL0::Reg>(0)),
                Step::Reg(r::<PMUSERENR_EL0::Reg>()),
                Step::Ctx(Mark::SetHostSaved(HostSaved::Pmuserenr)),
                Step::Reg(w::<PMUSERENR_EL0::Reg>(PMUSERENR_EL0::USERENR_MASK)),
                Step::Ctx(Mark::PmuserenrOnCpu(true)),
            ]);
        }
        want.extend([
            Step::Reg(r::<MDCR_EL2::Reg>()),
            Step::Ctx(Mark::SetHostSaved(HostSaved::MdcrEl2)),
            Step::Reg(w::<MDCR_EL2::Reg>(v.mdcr.raw())),
        ]);
        if caps.hcx {
            want.push(Step::Reg(w::<HCRX_EL2::Reg>(v.hcrx.raw())));
        }
        if caps.fgt {
            for m in MODEL_FGT
                .iter()
                .filter(|m| c.amu || m.reg != FgtReg::HAFGRTR_EL2)
            {
                want.push(Step::Reg(Event::Read(m.name)));
                want.push(Step::Ctx(Mark::SetHostSaved(HostSaved::Fgt(m.reg))));
                let fgu = v.fgu[group_index(m.group)];
                if let Some(x) = model_activate_value(m, fgu, caps.ampere_ac03_cpu_38) {
                    want.push(Step::Reg(Event::Write(m.name, x)));
                }
            }
        }
        // How often the ID register is read is not the point.
        let got: Vec<Step> = c
            .vcpu
            .timeline()
            .into_iter()
            .filter(|s| *s != Step::Reg(Event::Read(pfr0)))
            .collect();
        assert_eq!(got, want, "{what}: activate");

        c.vcpu.clear_history();
        traps::deactivate(&mut c.vcpu, &mut cpu);
        let h = &c.host;
        let mut want = vec![
            Step::Reg(w::<MDCR_EL2::Reg>(h.mdcr)),
            Step::Reg(w::<HSTR_EL2::Reg>(0)),
        ];
        if caps.pmu_v3 {
            want.extend([
                Step::Reg(w::<PMUSERENR_EL0::Reg>(h.pmuserenr)),
                Step::Ctx(Mark::PmuserenrOnCpu(false)),
            ]);
        }
        if caps.hcx {
            want.push(Step::Reg(w::<HCRX_EL2::Reg>(consts::HCRX_HOST_FLAGS)));
        }
        if caps.fgt {
            for (m, hv) in MODEL_FGT.iter().zip(h.fgt) {
                if !c.amu && m.reg == FgtReg::HAFGRTR_EL2 {
                    continue;
                }
                let fgu = v.fgu[group_index(m.group)];
                if model_deactivate_writes(m, fgu, caps.ampere_ac03_cpu_38) {
                    want.push(Step::Reg(Event::Write(m.name, hv)));
                }
            }
        }
        let got: Vec<Step> = c
            .vcpu
            .timeline()
            .into_iter()
            .filter(|s| *s != Step::Reg(Event::Read(pfr0)))
            .collect();
        assert_eq!(got, want, "{what}: deactivate");
    }
}

// ---------------------------------------------------------------------------
// 4. The order of load and put.

fn table_reg_names() -> BTreeSet<&'static str> {
    TABLE.iter().map(|e| e.cpu.name()).collect()
}

fn group_of_cpu(name: &str) -> Group {
    TABLE.iter().find(|e| e.cpu.name() == name).unwrap().group
}

/// Every PMUSERENR_EL0 write and every PMUSERENR_ON_CPU change happens with
/// IRQs off (the PMU driver's IPI must see both or neither).
fn assert_pmuserenr_under_irqs_off(what: &str, tl: &[Step]) {
    let mut off = false;
    let pmu = <PMUSERENR_EL0::Reg as SysReg>::NAME;
    for (i, s) in tl.iter().enumerate() {
        match s {
            Step::Ctx(Mark::IrqsOff(x)) => off = *x,
            Step::Reg(Event::Write(n, _)) if *n == pmu => {
                assert!(
                    off,
                    "{what}: PMUSERENR_EL0 written with IRQs on at step {i}: {tl:?}"
                )
            }
            Step::Ctx(Mark::PmuserenrOnCpu(_)) => {
                assert!(
                    off,
                    "{what}: PMUSERENR_ON_CPU changed with IRQs on at step {i}: {tl:?}"
                )
            }
            _ => {}
        }
    }
    assert!(!off, "{what}: IRQs left off");
}

/// The one IRQs-off window of `tl`: (index of the off mark, index of the on mark).
fn irq_window(what: &str, tl: &[Step]) -> (usize, usize) {
    let offs: Vec<usize> = (0..tl.len())
        .filter(|i| tl[*i] == Step::Ctx(Mark::IrqsOff(true)))
        .collect();
    let ons: Vec<usize> = (0..tl.len())
        .filter(|i| tl[*i] == Step::Ctx(Mark::IrqsOff(false)))
        .collect();
    assert_eq!(
        (offs.len(), ons.len()),
        (1, 1),
        "{what}: IRQ windows: {tl:?}"
    );
    assert!(offs[0] < ons[0]);
    (offs[0], ons[0])
}

fn reg_name(s: &Step) -> Option<&'static str> {
    match s {
        Step::Reg(Event::Read(n)) | Step::Reg(Event::Write(n, _)) => Some(n),
        _ => None,
    }
}

/// Every trap-register access and every trap mark of `tl` is inside the IRQs-off
/// window, and nothing of the sysreg table is.
fn assert_traps_inside_window(what: &str, tl: &[Step], (off, on): (usize, usize)) {
    let traps = trap_reg_names();
    let table = table_reg_names();
    for (i, s) in tl.iter().enumerate() {
        let inside = off < i && i < on;
        let is_trap = reg_name(s).is_some_and(|n| traps.contains(n))
            || matches!(
                s,
                Step::Ctx(Mark::PmuserenrOnCpu(_)) | Step::Ctx(Mark::SetHostSaved(_))
            );
        let is_sysreg = reg_name(s).is_some_and(|n| table.contains(n))
            || matches!(
                s,
                Step::Ctx(Mark::SetHost(_)) | Step::Ctx(Mark::SysregsOnCpu(_))
            );
        assert!(
            !is_trap || inside,
            "{what}: {s:?} at {i} outside IRQs-off [{off}, {on}]"
        );
        assert!(
            !is_sysreg || !inside,
            "{what}: {s:?} at {i} inside IRQs-off [{off}, {on}]"
        );
    }
}

#[test]
fn load_and_put_follow_kvm_vcpu_load_put_vhe() {
    let mut rng = Rng(0x7a95_0008);
    let tpidr = <vhe_rs_hosttest::arch::TPIDR_EL0::Reg as SysReg>::NAME;
    let tpidrro = <vhe_rs_hosttest::arch::TPIDRRO_EL0::Reg as SysReg>::NAME;
    for caps in all_caps() {
        for f in all_features() {
            let (_, amu_field) = amu_values()[rng.below(3) as usize];
            let (regs, _) = host_cpu(&mut rng, amu_field);
            let cpu = Cpu::new(regs);
            let mut vcpu = Vcpu::random(&cpu, f, caps, &mut rng);
            vcpu.fgu = GROUPS.map(|g| {
                let kind = rng.next();
                fgu_of_kind(kind, g, &mut rng)
            });
            vcpu.workaround_1508412 = rng.bool();
            let what = format!("{caps:?} {f:?}");
            let mut regs = cpu.clone();

            // ---- load
            loadput::load(&mut vcpu, &mut regs);
            let tl = vcpu.timeline();
            assert_eq!(
                tl[0],
                Step::Ctx(Mark::Running(true)),
                "{what}: load must start with __hyp_running_vcpu"
            );
            assert_eq!(
                tl.iter()
                    .filter(|s| matches!(s, Step::Ctx(Mark::Running(_))))
                    .count(),
                1,
                "{what}"
            );
            // The sysreg part: host user state saved, then the load plan written.
            let table = table_reg_names();
            let first_guest_write = tl
                .iter()
                .position(|s| matches!(s, Step::Reg(Event::Write(n, _)) if table.contains(n)))
                .unwrap();
            let before = &tl[..first_guest_write];
            for (reg, slot) in [(tpidr, "TPIDR_EL0"), (tpidrro, "TPIDRRO_EL0")] {
                assert!(
                    before.contains(&Step::Reg(Event::Read(reg))),
                    "{what}: host {reg} not read before the first guest write"
                );
                assert!(
                    before
                        .iter()
                        .any(|s| matches!(s, Step::Ctx(Mark::SetHost(v)) if v.name() == slot)),
                    "{what}: host {slot} not saved before the first guest write"
                );
            }
            let guest_writes: Vec<&str> = tl
                .iter()
                .filter_map(|s| match s {
                    Step::Reg(Event::Write(n, _)) if table.contains(n) => Some(*n),
                    _ => None,
                })
                .collect();
            let plan: Vec<&str> = sysreg_sr::load_plan(f).map(|e| e.cpu.name()).collect();
            assert_eq!(guest_writes, plan, "{what}: load's sysreg writes");
            if f.has(Feature::El1Is32Bit) {
                let last32 = guest_writes
                    .iter()
                    .rposition(|n| group_of_cpu(n) == Group::Aarch32)
                    .unwrap();
                let first_el1 = guest_writes
                    .iter()
                    .position(|n| group_of_cpu(n) == Group::El1)
                    .unwrap();
                assert!(last32 < first_el1, "{what}: errata 852523/853709");
            }
            let last_guest_write = tl
                .iter()
                .rposition(|s| matches!(s, Step::Reg(Event::Write(n, _)) if table.contains(n)))
                .unwrap();
            let on_cpu = tl
                .iter()
                .position(|s| *s == Step::Ctx(Mark::SysregsOnCpu(true)))
                .unwrap();
            let (off, on) = irq_window(&what, &tl);
            assert!(
                last_guest_write < on_cpu && on_cpu < off,
                "{what}: SYSREGS_ON_CPU at {on_cpu}, last sysreg write {last_guest_write}, IRQs off {off}"
            );
            assert_traps_inside_window(&what, &tl, (off, on));
            assert_pmuserenr_under_irqs_off(&what, &tl);
            // Then stage 2, and nothing else.
            let mut tail = vec![
                Step::Reg(w::<VTCR_EL2::Reg>(vcpu.stage2.vtcr.raw())),
                Step::Reg(w::<VTTBR_EL2::Reg>(vcpu.stage2.vttbr.raw())),
            ];
            if caps.speculative_at {
                tail.push(Step::Reg(Event::Isb));
            }
            assert_eq!(tl[on + 1..], tail[..], "{what}: after the traps");
            assert_eq!(
                tl.iter().filter(|s| **s == Step::Reg(Event::Isb)).count(),
                usize::from(caps.speculative_at),
                "{what}: isb count at load"
            );
            assert!(vcpu.running && vcpu.sysregs_on_cpu, "{what}");
            assert_eq!(vcpu.pmuserenr_on_cpu, caps.pmu_v3, "{what}");
            assert_eq!(cpu.get::<VTCR_EL2::Reg>(), vcpu.stage2.vtcr.raw(), "{what}");
            assert_eq!(cpu.get::<VTTBR_EL2::Reg>(), vcpu.stage2.vttbr.raw(), "{what}");

            // ---- put
            vcpu.clear_history();
            loadput::put(&mut vcpu, &mut regs);
            let tl = vcpu.timeline();
            let (off, on) = irq_window(&what, &tl);
            assert_eq!(
                off, 0,
                "{what}: put must start with the traps, IRQs off: {tl:?}"
            );
            assert_traps_inside_window(&what, &tl, (off, on));
            assert_pmuserenr_under_irqs_off(&what, &tl);
            let rest: Vec<Step> = tl[on + 1..]
                .iter()
                .copied()
                .filter(|s| *s != Step::Reg(Event::DmbSy))
                .collect();
            let mut want: Vec<Step> = sysreg_sr::put_plan(f)
                .map(|e| Step::Reg(Event::Read(e.cpu.name())))
                .collect();
            want.push(Step::Reg(w::<vhe_rs_hosttest::arch::TPIDR_EL0::Reg>(
                vcpu.host[&VcpuSlot::Sys(sysreg_sr::VcpuSysReg::TPIDR_EL0)],
            )));
            want.push(Step::Reg(w::<vhe_rs_hosttest::arch::TPIDRRO_EL0::Reg>(
                vcpu.host[&VcpuSlot::Sys(sysreg_sr::VcpuSysReg::TPIDRRO_EL0)],
            )));
            want.push(Step::Ctx(Mark::SysregsOnCpu(false)));
            want.push(Step::Ctx(Mark::Running(false)));
            assert_eq!(rest, want, "{what}: put after the traps");
            assert!(
                !touched(&cpu.log()).iter().any(|n| [
                    <VTCR_EL2::Reg as SysReg>::NAME,
                    <VTTBR_EL2::Reg as SysReg>::NAME
                ]
                .contains(n)),
                "{what}: put touched stage 2"
            );
            assert!(
                !vcpu.running && !vcpu.sysregs_on_cpu && !vcpu.pmuserenr_on_cpu,
                "{what}"
            );
            assert!(
                cpu.unset_reads().is_empty(),
                "{what}: {:?}",
                cpu.unset_reads()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 5. load + put is the identity on the guest and on the host's user registers.

fn user_regs() -> Vec<CpuReg> {
    TABLE
        .iter()
        .filter(|e| e.group == Group::User)
        .map(|e| e.cpu)
        .collect()
}

/// The entries that must hold the guest's value on the CPU after load: the live
/// ones the C loads for these features.
fn live_loaded(f: Features) -> Vec<&'static sysreg_sr::Entry> {
    TABLE
        .iter()
        .filter(|e| e.live && e.is_deferred() && f.allows(e.gate))
        .collect()
}

#[test]
fn load_then_put_is_identity() {
    let mut rng = Rng(0x7a95_0009);
    // What the filter of live_loaded() leaves out: ZCR_EL1 (FP-owned) always,
    // the 32-bit registers without AArch32 EL1, nothing else.
    for f in all_features() {
        let left: BTreeSet<&str> = TABLE
            .iter()
            .filter(|e| e.live && !live_loaded(f).iter().any(|x| x.vcpu == e.vcpu))
            .map(|e| e.vcpu.name())
            .collect();
        let mut want: BTreeSet<&str> = ["ZCR_EL1"].into();
        if !f.has(Feature::El1Is32Bit) {
            want.extend(["DACR32_EL2", "IFSR32_EL2", "DBGVCR32_EL2"]);
        }
        assert_eq!(left, want, "{f:?}");
    }
    for f in all_features() {
        for _ in 0..6 {
            let (_, amu_field) = amu_values()[rng.below(3) as usize];
            let (regs, _) = host_cpu(&mut rng, amu_field);
            let cpu = Cpu::new(regs);
            let caps = random_caps(&mut rng);
            let mut vcpu = Vcpu::random(&cpu, f, caps, &mut rng);
            vcpu.workaround_1508412 = rng.bool();
            let guest0 = vcpu.guest.clone();
            let host_user: Vec<(CpuReg, u64)> = user_regs()
                .into_iter()
                .map(|r| (r, cpu.get_encoded(r.encoding())))
                .collect();
            let mut regs = cpu.clone();

            loadput::load(&mut vcpu, &mut regs);
            for e in live_loaded(f) {
                assert_eq!(
                    cpu.get_encoded(e.cpu.encoding()),
                    guest0[&e.vcpu],
                    "{f:?}: {} not in {} after load",
                    e.vcpu.name(),
                    e.cpu.name()
                );
            }
            // And through the accessor the kernel's vcpu_read_sys_reg() uses.
            for e in live_loaded(f) {
                if let VcpuSlot::Sys(r) = e.vcpu {
                    let mut probe = cpu.0.borrow().clone();
                    assert_eq!(sysreg_sr::read_from_cpu(&mut probe, r), Some(guest0[&e.vcpu]));
                }
            }

            loadput::put(&mut vcpu, &mut regs);
            assert_eq!(vcpu.guest, guest0, "{f:?} {caps:?}: guest context changed");
            for (r, v) in &host_user {
                assert_eq!(
                    cpu.get_encoded(r.encoding()),
                    *v,
                    "{f:?}: host {} not back after put",
                    r.name()
                );
            }
            assert!(cpu.unset_reads().is_empty(), "{f:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// 6. Erratum 1508412: PAR_EL1 read between two `dmb sy`.

#[test]
fn erratum_1508412_brackets_the_par_read() {
    let mut rng = Rng(0x7a95_000a);
    let par = CpuReg::PAR_EL1.name();
    for f in all_features() {
        for wa in [false, true] {
            let (regs, _) = host_cpu(&mut rng, ID_AA64PFR0_EL1::AMU::NI);
            let cpu = Cpu::new(regs);
            let caps = random_caps(&mut rng);
            let mut vcpu = Vcpu::random(&cpu, f, caps, &mut rng);
            vcpu.workaround_1508412 = wa;
            let mut regs = cpu.clone();
            loadput::load(&mut vcpu, &mut regs);
            let load_log = cpu.log();
            assert!(!load_log.contains(&Event::DmbSy), "{f:?}: dmb sy at load");
            cpu.clear_log();
            loadput::put(&mut vcpu, &mut regs);
            let log = cpu.log();
            let dmbs = log.iter().filter(|e| **e == Event::DmbSy).count();
            let reads: Vec<usize> = (0..log.len())
                .filter(|i| log[*i] == Event::Read(par))
                .collect();
            assert_eq!(reads.len(), 1, "{f:?}: PAR_EL1 reads at put");
            let i = reads[0];
            if wa {
                assert_eq!(dmbs, 2, "{f:?}: dmb sy count with the erratum: {log:?}");
                assert!(
                    i > 0 && log[i - 1] == Event::DmbSy && log.get(i + 1) == Some(&Event::DmbSy),
                    "{f:?}: PAR_EL1 read not bracketed: {:?}",
                    &log[i.saturating_sub(2)..(i + 3).min(log.len())]
                );
            } else {
                assert_eq!(dmbs, 0, "{f:?}: dmb sy without the erratum");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 7. Two vCPUs taking turns on one CPU.

#[test]
fn two_vcpus_alternating_never_see_each_other() {
    let mut rng = Rng(0x7a95_000b);
    for round in 0..40 {
        let (regs, host) = host_cpu(&mut rng, amu_values()[round % 3].1);
        let cpu = Cpu::new(regs);
        let host_user: Vec<(CpuReg, u64)> = user_regs()
            .into_iter()
            .map(|r| (r, cpu.get_encoded(r.encoding())))
            .collect();
        let caps = random_caps(&mut rng);
        let fa = Features::from_bits(rng.next() as u8);
        let fb = Features::from_bits(rng.next() as u8);
        let mut vcpus = [
            Vcpu::random(&cpu, fa, caps, &mut rng),
            Vcpu::random(&cpu, fb, caps, &mut rng),
        ];
        for v in vcpus.iter_mut() {
            v.fgu = GROUPS.map(|g| {
                let kind = rng.next();
                fgu_of_kind(kind, g, &mut rng)
            });
        }
        let mut regs = cpu.clone();
        for turn in 0..6 {
            let who = turn % 2;
            let what = format!("round {round}, turn {turn}, vCPU {who}");
            let (me, other) = if who == 0 {
                let (a, b) = vcpus.split_at_mut(1);
                (&mut a[0], &b[0])
            } else {
                let (a, b) = vcpus.split_at_mut(1);
                (&mut b[0], &a[0])
            };
            let other_before = other.guest.clone();
            loadput::load(me, &mut regs);
            let f = me.features;
            // Every register this vCPU has holds its own value.
            for e in TABLE.iter().filter(|e| e.is_deferred() && f.allows(e.gate)) {
                assert_eq!(
                    cpu.get_encoded(e.cpu.encoding()),
                    me.guest[&e.vcpu],
                    "{what}: {} after load",
                    e.cpu.name()
                );
            }
            assert_eq!(
                cpu.get::<VTTBR_EL2::Reg>(),
                me.stage2.vttbr.raw(),
                "{what}: VTTBR_EL2"
            );
            assert_eq!(cpu.get::<MDCR_EL2::Reg>(), me.mdcr.raw(), "{what}: MDCR_EL2");
            // The guest runs and changes its registers.
            let mut want = me.guest.clone();
            for e in TABLE.iter().filter(|e| e.put && f.allows(e.gate)) {
                let v = rng.next();
                cpu.0.borrow_mut().set_encoded(e.cpu.encoding(), v);
                want.insert(e.vcpu, v);
            }
            loadput::put(me, &mut regs);
            assert_eq!(me.guest, want, "{what}: own context after put");
            assert_eq!(other.guest, other_before, "{what}: other vCPU changed");
            for (r, v) in &host_user {
                assert_eq!(
                    cpu.get_encoded(r.encoding()),
                    *v,
                    "{what}: host {} not back after put",
                    r.name()
                );
            }
            assert_eq!(
                cpu.get::<MDCR_EL2::Reg>(),
                host.mdcr,
                "{what}: host MDCR_EL2"
            );
            assert_eq!(cpu.get::<PMUSERENR_EL0::Reg>(), host.pmuserenr, "{what}");
            for (m, v) in MODEL_FGT.iter().zip(host.fgt) {
                assert_eq!(cpu.get_encoded(m.encoding), v, "{what}: host {}", m.name);
            }
        }
        // The two vCPUs ended with different values everywhere (no copying).
        for e in TABLE
            .iter()
            .filter(|e| e.put && fa.allows(e.gate) && fb.allows(e.gate))
        {
            assert_ne!(
                vcpus[0].guest[&e.vcpu],
                vcpus[1].guest[&e.vcpu],
                "{}",
                e.vcpu.name()
            );
        }
        assert!(cpu.unset_reads().is_empty());
    }
}
