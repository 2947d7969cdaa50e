// SPDX-License-Identifier: GPL-2.0

//! `vcpu_load`/`vcpu_put` (`rust/world/loadput.rs`) on a simulated CPU: the
//! order of `kvm_vcpu_load_vhe()` / `kvm_vcpu_put_vhe()` (`hyp/vhe/switch.c`)
//! with its sysreg, trap and stage-2 (`__load_stage2()`, `asm/kvm_mmu.h`)
//! parts, load + put as the identity, erratum 1508412's `read_sysreg_par()`,
//! and two vCPUs taking turns.
//!
//! The vCPU is the model of `common::vcpu`, whose marks (the changes of kernel
//! state it is asked for) are interleaved with the register accesses of the
//! simulated CPU, so that the order of both can be checked.

mod common;

use common::cpu::{w, Cpu};
use common::host::{
    all_caps, amu_values, host_cpu, random_caps, random_fgu, trap_reg_names, MODEL_FGT,
};
use common::rng::Rng;
use common::vcpu::{all_features, Mark, Step, Vcpu};
use std::collections::BTreeSet;
use vhe_rs_hosttest::arch::{
    SysReg, ID_AA64PFR0_EL1, MDCR_EL2, PMUSERENR_EL0, TPIDRRO_EL0, TPIDR_EL0, VTCR_EL2, VTTBR_EL2,
};
use vhe_rs_hosttest::sim::{touched, Event};
use vhe_rs_hosttest::world::loadput;
use vhe_rs_hosttest::world::sysreg_sr::{self, CpuReg, Feature, Features, Group, VcpuSlot, TABLE};

// ---------------------------------------------------------------------------
// 1. The order of load and put.

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
    let tpidr = <TPIDR_EL0::Reg as SysReg>::NAME;
    let tpidrro = <TPIDRRO_EL0::Reg as SysReg>::NAME;
    for caps in all_caps() {
        for f in all_features() {
            let (_, amu_field) = amu_values()[rng.below(3) as usize];
            let (cpu, _) = host_cpu(&mut rng, amu_field);
            let mut vcpu = Vcpu::random(&cpu, f, caps, &mut rng);
            vcpu.fgu = random_fgu(&mut rng);
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
            assert_eq!(
                cpu.get::<VTTBR_EL2::Reg>(),
                vcpu.stage2.vttbr.raw(),
                "{what}"
            );

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
            want.push(Step::Reg(w::<TPIDR_EL0::Reg>(
                vcpu.host[&VcpuSlot::Sys(sysreg_sr::VcpuSysReg::TPIDR_EL0)],
            )));
            want.push(Step::Reg(w::<TPIDRRO_EL0::Reg>(
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
// 2. load + put is the identity on the guest and on the host's user registers.

/// The host's user registers (TPIDR_EL0, TPIDRRO_EL0) as `cpu` holds them.
fn host_user(cpu: &Cpu) -> Vec<(CpuReg, u64)> {
    TABLE
        .iter()
        .filter(|e| e.group == Group::User)
        .map(|e| (e.cpu, cpu.get_encoded(e.cpu.encoding())))
        .collect()
}

/// `cpu` holds the host's user registers of `before` again.
fn assert_host_user_back(what: &str, cpu: &Cpu, before: &[(CpuReg, u64)]) {
    for (r, v) in before {
        assert_eq!(
            cpu.get_encoded(r.encoding()),
            *v,
            "{what}: host {} not back after put",
            r.name()
        );
    }
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
            let (cpu, _) = host_cpu(&mut rng, amu_field);
            let caps = random_caps(&mut rng);
            let mut vcpu = Vcpu::random(&cpu, f, caps, &mut rng);
            vcpu.workaround_1508412 = rng.bool();
            let guest0 = vcpu.guest.clone();
            let host_user = host_user(&cpu);
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
                    let mut probe = cpu.fork();
                    assert_eq!(
                        sysreg_sr::read_from_cpu(&mut probe, r),
                        Some(guest0[&e.vcpu])
                    );
                }
            }

            loadput::put(&mut vcpu, &mut regs);
            assert_eq!(vcpu.guest, guest0, "{f:?} {caps:?}: guest context changed");
            assert_host_user_back(&format!("{f:?}"), &cpu, &host_user);
            assert!(cpu.unset_reads().is_empty(), "{f:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Erratum 1508412: PAR_EL1 read between two `dmb sy`.

#[test]
fn erratum_1508412_brackets_the_par_read() {
    let mut rng = Rng(0x7a95_000a);
    let par = CpuReg::PAR_EL1.name();
    for f in all_features() {
        for wa in [false, true] {
            let (cpu, _) = host_cpu(&mut rng, ID_AA64PFR0_EL1::AMU::NI);
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
// 4. Two vCPUs taking turns on one CPU.

#[test]
fn two_vcpus_alternating_never_see_each_other() {
    let mut rng = Rng(0x7a95_000b);
    for round in 0..40 {
        let (cpu, host) = host_cpu(&mut rng, amu_values()[round % 3].1);
        let host_user = host_user(&cpu);
        let caps = random_caps(&mut rng);
        let fa = Features::from_bits(rng.next() as u8);
        let fb = Features::from_bits(rng.next() as u8);
        let mut vcpus = [
            Vcpu::random(&cpu, fa, caps, &mut rng),
            Vcpu::random(&cpu, fb, caps, &mut rng),
        ];
        for v in vcpus.iter_mut() {
            v.fgu = random_fgu(&mut rng);
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
            assert_eq!(
                cpu.get::<MDCR_EL2::Reg>(),
                me.mdcr.raw(),
                "{what}: MDCR_EL2"
            );
            let want = me.run_guest(&mut rng);
            loadput::put(me, &mut regs);
            assert_eq!(me.guest, want, "{what}: own context after put");
            assert_eq!(other.guest, other_before, "{what}: other vCPU changed");
            assert_host_user_back(&what, &cpu, &host_user);
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
