// SPDX-License-Identifier: GPL-2.0

//! The load-time traps (`rust/world/traps.rs`) on a simulated CPU, against the
//! C they reproduce: `__activate_traps_common()` /
//! `__deactivate_traps_common()` and the fine-grained trap macros of
//! `arch/arm64/kvm/hyp/include/hyp/switch.h`, and `CHECK_FGT_MASKS` of
//! `asm/kvm_arm.h`. Their place in `vcpu_load`/`vcpu_put` is `tests/loadput.rs`'s.
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

mod common;

use common::cpu::{r, w, Cpu};
use common::host::{
    all_caps, amu_values, fgu_of_kind, host_cpu, trap_reg_names, HostTraps, ModelFgt, MODEL_FGT,
};
use common::kernel::{c_eval, defines};
use common::rng::Rng;
use common::vcpu::{group_index, Mark, Step, Vcpu, GROUPS};
use std::collections::{BTreeMap, BTreeSet};
use vhe_rs_hosttest::arch::{
    consts, SysReg, HCRX_EL2, HFGWTR_EL2, HSTR_EL2, ID_AA64PFR0_EL1, MDCR_EL2, PMSELR_EL0,
    PMUSERENR_EL0,
};
use vhe_rs_hosttest::sim::{touched, Event};
use vhe_rs_hosttest::world::sysreg_sr::Features;
use vhe_rs_hosttest::world::traps::{self, FgtReg, HostSaved, TrapCaps, FGT};

// ---------------------------------------------------------------------------
// What the C writes to the fine-grained trap registers.

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

// ---------------------------------------------------------------------------
// The cases.

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
                let (cpu, host) = host_cpu(&mut rng, amu_field);
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

impl TrapCase {
    /// The fine-grained trap registers of the case's CPU (none without FGT,
    /// HAFGRTR_EL2 only with AMU), each with the host's value and the VM's
    /// `fgu[]` for its group.
    fn fgt(&self) -> impl Iterator<Item = (&'static ModelFgt, u64, u64)> + '_ {
        MODEL_FGT
            .iter()
            .zip(self.host.fgt)
            .filter(|(m, _)| self.caps.fgt && (self.amu || m.reg != FgtReg::HAFGRTR_EL2))
            .map(|(m, h)| (m, h, self.vcpu.fgu[group_index(m.group)]))
    }
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
        let (mut cpu, _) = host_cpu(&mut rng, ID_AA64PFR0_EL1::AMU::IMP);
        cpu.regs_mut().set::<HSTR_EL2::Reg>(rng.next() | 1);
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
        assert_eq!(
            cpu.get::<MDCR_EL2::Reg>(),
            c.vcpu.mdcr.raw(),
            "{what}: MDCR_EL2"
        );
        if c.caps.hcx {
            assert_eq!(
                cpu.get::<HCRX_EL2::Reg>(),
                c.vcpu.hcrx.raw(),
                "{what}: HCRX_EL2"
            );
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
        for (m, v, _) in c.fgt() {
            want.insert(HostSaved::Fgt(m.reg), v);
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
        let (mut cpu, h) = host_cpu(&mut rng, ID_AA64PFR0_EL1::AMU::IMP);
        let mut vcpu = Vcpu::random(&cpu, Features::NONE, caps, &mut rng);
        // The FGT registers written since the log was cleared.
        let fgt_written = |cpu: &Cpu| -> Vec<&str> {
            let written = writes_by_name(&cpu.log());
            MODEL_FGT
                .iter()
                .map(|m| m.name)
                .filter(|n| written.contains_key(n))
                .collect()
        };
        traps::activate(&mut vcpu, &mut cpu);
        let fgt_written_at_load = fgt_written(&cpu);
        if ampere {
            assert_eq!(fgt_written_at_load, [<HFGWTR_EL2::Reg as SysReg>::NAME]);
            assert_eq!(
                cpu.get::<HFGWTR_EL2::Reg>(),
                consts::HFGWTR_EL2_NMASK | ampere_bit()
            );
        } else {
            assert!(fgt_written_at_load.is_empty(), "{fgt_written_at_load:?}");
        }
        cpu.clear_log();
        traps::deactivate(&mut vcpu, &mut cpu);
        let back = fgt_written(&cpu);
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

/// `CHECK_FGT_MASKS(reg)` for every register of `FGT`: MASK and nMASK do not
/// overlap, and every bit is exactly one of RES0, MASK, nMASK. Also the
/// generated MASK/nMASK are the header's.
#[test]
fn fgt_masks_pass_check_fgt_masks() {
    let mut d = defines("arch/arm64/include/generated/asm/sysreg-defs.h");
    d.extend(defines("arch/arm64/include/asm/kvm_arm.h"));
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

#[test]
fn activate_and_deactivate_follow_the_c_sequence() {
    for mut c in trap_cases(0x7a95_0007, 2) {
        let what = describe(&c);
        let caps = c.caps;
        let mut cpu = c.vcpu.cpu.clone();
        let v = c.vcpu.clone();
        // How often the ID register is read is not the point.
        let pfr0 = <ID_AA64PFR0_EL1::Reg as SysReg>::NAME;
        let timeline = |v: &Vcpu| -> Vec<Step> {
            let mut tl = v.timeline();
            tl.retain(|s| *s != Step::Reg(Event::Read(pfr0)));
            tl
        };

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
        for (m, _, fgu) in c.fgt() {
            want.push(Step::Reg(Event::Read(m.name)));
            want.push(Step::Ctx(Mark::SetHostSaved(HostSaved::Fgt(m.reg))));
            if let Some(x) = model_activate_value(m, fgu, caps.ampere_ac03_cpu_38) {
                want.push(Step::Reg(Event::Write(m.name, x)));
            }
        }
        assert_eq!(timeline(&c.vcpu), want, "{what}: activate");

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
        for (m, hv, fgu) in c.fgt() {
            if model_deactivate_writes(m, fgu, caps.ampere_ac03_cpu_38) {
                want.push(Step::Reg(Event::Write(m.name, hv)));
            }
        }
        assert_eq!(timeline(&c.vcpu), want, "{what}: deactivate");
    }
}
