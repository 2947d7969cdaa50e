// SPDX-License-Identifier: GPL-2.0

//! The deferred system registers of `vcpu_load`/`vcpu_put` (`rust/world/sysreg_sr.rs`):
//! the steps on a simulated register file, for every feature combination, and the
//! table against the kernel's own C (`asm/kvm_host.h`, `hyp/include/hyp/sysreg-sr.h`).
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

mod common;

use common::cpu::{random_regs, Cpu};
use common::kernel::{c_function, inside, read_kernel};
use common::rng::Rng;
use common::vcpu::{all_features, Vcpu};
use std::collections::{BTreeSet, HashMap};
use vhe_rs_hosttest::sim::Event;
use vhe_rs_hosttest::world::sysreg_sr::{
    self, CpuReg, Entry, Feature, Features, Group, Load, VcpuSlot, VcpuSysReg, TABLE,
};
use vhe_rs_hosttest::world::traps::TrapCaps;

// ---------------------------------------------------------------------------
// Set-up.

/// A vCPU with random values on a CPU whose table registers hold random
/// values, and a handle on that CPU.
fn random_vcpu(features: Features, rng: &mut Rng) -> (Vcpu, Cpu) {
    let cpu = Cpu::new(random_regs(rng));
    (Vcpu::random(&cpu, features, TrapCaps::default(), rng), cpu)
}

/// [`random_vcpu`], its deferred registers restored on the CPU.
fn loaded_vcpu(features: Features, rng: &mut Rng) -> (Vcpu, Cpu) {
    let (mut vcpu, mut regs) = random_vcpu(features, rng);
    sysreg_sr::restore_deferred(&mut vcpu, &mut regs);
    (vcpu, regs)
}

fn cpu_value(cpu: &Cpu, r: CpuReg) -> u64 {
    cpu.get_encoded(r.encoding())
}

const EVERYTHING: Features = Features::from_bits(u8::MAX);

fn cpu_by_name(name: &str) -> Option<CpuReg> {
    CpuReg::ALL
        .iter()
        .copied()
        .find(|r| r.name().eq_ignore_ascii_case(name))
}

// ---------------------------------------------------------------------------
// The steps on the simulated register file.

#[test]
fn restore_then_save_is_identity() {
    let mut rng = Rng(0x5eed_0001);
    for f in all_features() {
        for _ in 0..8 {
            let (vcpu0, mut regs) = random_vcpu(f, &mut rng);
            let host_user: Vec<(VcpuSlot, u64)> = TABLE
                .iter()
                .filter(|e| e.group == Group::User)
                .map(|e| (e.vcpu, cpu_value(&regs, e.cpu)))
                .collect();
            let mut vcpu = vcpu0.clone();
            sysreg_sr::restore_deferred(&mut vcpu, &mut regs);
            assert!(vcpu.sysregs_on_cpu, "{f:?}: SYSREGS_ON_CPU not set by load");
            sysreg_sr::save_deferred(&mut vcpu, &mut regs);
            assert!(
                !vcpu.sysregs_on_cpu,
                "{f:?}: SYSREGS_ON_CPU still set after put"
            );
            assert_eq!(
                vcpu.guest, vcpu0.guest,
                "{f:?}: guest context changed by load+put"
            );
            for (slot, v) in host_user {
                assert_eq!(
                    vcpu.host[&slot],
                    v,
                    "{f:?}: host {} not saved at load",
                    slot.name()
                );
                let e = TABLE.iter().find(|e| e.vcpu == slot).unwrap();
                assert_eq!(
                    cpu_value(&regs, e.cpu),
                    v,
                    "{f:?}: host {} not back after put",
                    slot.name()
                );
            }
            assert!(regs.unset_reads().is_empty());
        }
    }
}

#[test]
fn put_saves_what_the_guest_left() {
    let mut rng = Rng(0x5eed_0002);
    for f in all_features() {
        let (mut vcpu, mut regs) = loaded_vcpu(f, &mut rng);
        let want = vcpu.run_guest(&mut rng);
        sysreg_sr::save_deferred(&mut vcpu, &mut regs);
        assert_eq!(vcpu.guest, want, "{f:?}");
    }
}

#[test]
fn gated_registers_untouched_without_their_feature() {
    let mut rng = Rng(0x5eed_0003);
    for f in all_features() {
        let (mut vcpu, mut regs) = loaded_vcpu(f, &mut rng);
        sysreg_sr::save_deferred(&mut vcpu, &mut regs);
        let touched = regs.regs().touched();
        // Exactly the deferred registers the features allow, nothing else.
        let want: BTreeSet<&str> = TABLE
            .iter()
            .filter(|e| e.is_deferred() && f.allows(e.gate))
            .map(|e| e.cpu.name())
            .collect();
        assert_eq!(touched, want, "{f:?}");
        for e in TABLE.iter().filter(|e| !f.allows(e.gate)) {
            assert!(
                !touched.contains(e.cpu.name()),
                "{f:?}: {} touched without {:?}",
                e.cpu.name(),
                e.gate
            );
        }
    }
    // Each gate is exercised: something is untouched without features that is
    // touched with all of them.
    let gated = TABLE
        .iter()
        .filter(|e| e.is_deferred() && e.gate != Features::NONE)
        .count();
    assert!(gated >= 10, "only {gated} gated deferred registers");
}

#[test]
fn load_restores_32bit_state_before_el1() {
    let mut rng = Rng(0x5eed_0004);
    let (_, regs) = loaded_vcpu(EVERYTHING, &mut rng);
    let log = regs.log();
    let group_of = |name: &str| TABLE.iter().find(|e| e.cpu.name() == name).map(|e| e.group);
    let writes: Vec<(&str, Group)> = log
        .iter()
        .filter_map(|e| match e {
            Event::Write(n, _) => Some((*n, group_of(n).unwrap())),
            _ => None,
        })
        .collect();
    let last_32 = writes
        .iter()
        .rposition(|(_, g)| *g == Group::Aarch32)
        .unwrap();
    let first_el1 = writes.iter().position(|(_, g)| *g == Group::El1).unwrap();
    assert!(
        last_32 < first_el1,
        "errata 852523/853709: 32-bit state after EL1 registers: {writes:?}"
    );
    // The host's user registers are read before anything is written.
    let first_write = log
        .iter()
        .position(|e| matches!(e, Event::Write(..)))
        .unwrap();
    assert_eq!(
        log[..first_write],
        [Event::Read("TPIDR_EL0"), Event::Read("TPIDRRO_EL0")]
    );
    // And the writes are the load plan, in order.
    let plan: Vec<&str> = sysreg_sr::load_plan(EVERYTHING)
        .map(|e| e.cpu.name())
        .collect();
    let names: Vec<&str> = writes.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, plan);
}

#[test]
fn live_accessors_follow_the_table() {
    let mut rng = Rng(0x5eed_0005);
    let mut regs = Cpu::new(random_regs(&mut rng));
    for r in VcpuSysReg::ALL {
        let e = sysreg_sr::entry(*r).unwrap_or_else(|| panic!("{} not in the table", r.name()));
        let before = cpu_value(&regs, e.cpu);
        assert_eq!(
            sysreg_sr::read_from_cpu(&mut regs, *r),
            e.live.then_some(before),
            "{}",
            r.name()
        );
        assert_eq!(
            sysreg_sr::write_to_cpu(&mut regs, *r, !before),
            e.live,
            "{}",
            r.name()
        );
        assert_eq!(
            cpu_value(&regs, e.cpu),
            if e.live { !before } else { before },
            "{}",
            r.name()
        );
    }
}

#[test]
fn cpu_registers_are_the_generated_ones() {
    for r in CpuReg::ALL {
        assert_eq!(format!("{r:?}"), r.name());
    }
    let encodings: BTreeSet<u32> = CpuReg::ALL.iter().map(|r| r.encoding()).collect();
    assert_eq!(
        encodings.len(),
        CpuReg::ALL.len(),
        "two CpuRegs share an encoding"
    );
    // Every declared name is used by the table, once.
    for r in CpuReg::ALL {
        assert_eq!(
            TABLE.iter().filter(|e| e.cpu == *r).count(),
            1,
            "{}",
            r.name()
        );
    }
    for r in VcpuSysReg::ALL {
        assert!(sysreg_sr::entry(*r).is_some(), "{}", r.name());
    }
}

// ---------------------------------------------------------------------------
// The table against the kernel's C.

/// The `case X: ... SYS_Y ...` lines of one of the two switches of `asm/kvm_host.h`,
/// as (X, Y); every `case` line must parse.
fn kvm_host_switch(text: &str, func: &str, write: bool) -> BTreeSet<(String, String)> {
    let body = c_function(text, func);
    let mut out = BTreeSet::new();
    let mut cases = 0;
    for l in body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("case "))
    {
        cases += 1;
        let (label, stmt) = l.strip_prefix("case ").unwrap().split_once(':').unwrap();
        let stmt = stmt.trim();
        let cpu = if write {
            inside(stmt, "write_sysreg_s(val, SYS_").map(str::to_string)
        } else if stmt.starts_with("*val = read_sysreg_par()") {
            Some("PAR_EL1".to_string())
        } else {
            inside(stmt, "*val = read_sysreg_s(SYS_").map(str::to_string)
        };
        let cpu = cpu.unwrap_or_else(|| panic!("{func}: cannot parse `{l}`"));
        assert!(
            out.insert((label.trim().to_string(), cpu)),
            "{func}: `{l}` twice"
        );
    }
    assert!(
        cases >= 20 && out.len() == cases,
        "{func}: only {cases} case lines, {} parsed",
        out.len()
    );
    out
}

fn diff_message(
    what: &str,
    kernel: &BTreeSet<(String, String)>,
    ours: &BTreeSet<(String, String)>,
) -> String {
    let fmt = |s: Vec<&(String, String)>| {
        s.iter()
            .map(|(a, b)| format!("{a} -> {b}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{what}:\n  in the kernel, not in rust/world/sysreg_sr.rs: [{}]\n  in rust/world/sysreg_sr.rs, not in the kernel: [{}]",
        fmt(kernel.difference(ours).collect()),
        fmt(ours.difference(kernel).collect())
    )
}

/// THE KEY CHECK: the registers the kernel keeps live on the CPU while
/// `SYSREGS_ON_CPU` is set (`vcpu_read_sys_reg()` relies on exactly this list) are
/// exactly the table's live entries, each in the same CPU register.
#[test]
fn live_list_matches_kvm_host_h() {
    let text = read_kernel("arch/arm64/include/asm/kvm_host.h");
    let read = kvm_host_switch(&text, "__vcpu_read_sys_reg_from_cpu", false);
    let write = kvm_host_switch(&text, "__vcpu_write_sys_reg_to_cpu", true);
    let ours: BTreeSet<(String, String)> = TABLE
        .iter()
        .filter(|e| e.live)
        .map(|e| (e.vcpu.name().to_string(), e.cpu.name().to_string()))
        .collect();
    assert!(
        read == ours,
        "{}",
        diff_message(
            "__vcpu_read_sys_reg_from_cpu() vs the table's live entries",
            &read,
            &ours
        )
    );
    assert!(
        write == ours,
        "{}",
        diff_message(
            "__vcpu_write_sys_reg_to_cpu() vs the table's live entries",
            &write,
            &ours
        )
    );

    // What the live list and the deferred groups do not share, named: the kernel
    // lists ZCR_EL1 (FP-owned) and 6.12 does not list the feature-gated EL1
    // registers, SP_EL1, MPIDR_EL1 (by design) or the banked SPSRs (not sys_regs[]).
    let deferred: BTreeSet<&str> = TABLE
        .iter()
        .filter(|e| e.is_deferred())
        .map(|e| e.vcpu.name())
        .collect();
    let live: BTreeSet<&str> = TABLE
        .iter()
        .filter(|e| e.live)
        .map(|e| e.vcpu.name())
        .collect();
    let live_not_deferred: Vec<&str> = live.difference(&deferred).copied().collect();
    let deferred_not_live: Vec<&str> = deferred.difference(&live).copied().collect();
    assert_eq!(live_not_deferred, ["ZCR_EL1"]);
    let mut want = vec![
        "MPIDR_EL1",
        "PIRE0_EL1",
        "PIR_EL1",
        "POR_EL1",
        "SP_EL1",
        "TCR2_EL1",
        "TFSRE0_EL1",
        "TFSR_EL1",
        "spsr_abt",
        "spsr_fiq",
        "spsr_irq",
        "spsr_und",
    ];
    want.sort();
    assert_eq!(deferred_not_live, want);
}

/// After load, each register of the kernel's live list holds the guest's value
/// where `vcpu_read_sys_reg()` will look for it (ZCR_EL1, FP-owned, aside; the
/// 32-bit registers only for a vCPU with AArch32 EL1, the only case the C loads
/// them in).
#[test]
fn live_registers_hold_the_guest_values_after_load() {
    let text = read_kernel("arch/arm64/include/asm/kvm_host.h");
    let live = kvm_host_switch(&text, "__vcpu_read_sys_reg_from_cpu", false);
    let mut rng = Rng(0x5eed_0006);
    for f in all_features() {
        let (vcpu, regs) = loaded_vcpu(f, &mut rng);
        let mut checked = 0;
        for (x, y) in &live {
            let reg = *VcpuSysReg::ALL
                .iter()
                .find(|r| r.name() == x)
                .unwrap_or_else(|| panic!("{x} unknown"));
            let e = sysreg_sr::entry(reg).unwrap();
            if e.group == Group::Fp || (e.group == Group::Aarch32 && !f.has(Feature::El1Is32Bit)) {
                continue;
            }
            let cpu = cpu_by_name(y).unwrap_or_else(|| panic!("{y} is not a CpuReg"));
            let want = vcpu.guest[&VcpuSlot::Sys(reg)];
            assert_eq!(
                cpu_value(&regs, cpu),
                want,
                "{f:?}: {x} not in {y} after load"
            );
            let mut probe = regs.fork();
            assert_eq!(
                sysreg_sr::read_from_cpu(&mut probe, reg),
                Some(want),
                "{f:?}: {x}"
            );
            checked += 1;
        }
        assert!(checked >= 20, "{f:?}: only {checked} checked");
    }
}

/// One register move of `sysreg-sr.h`: (vCPU slot, CPU register), CPU names upper-case.
type Move = (String, String);

/// The vCPU side of a C expression: `ctxt_sys_reg(ctxt, X)`, `__vcpu_sys_reg(vcpu, X)`,
/// `vcpu->arch.ctxt.spsr_abt`; `None` for `ctxt->regs.*` and `pstate` (PC and
/// PSTATE, not in the table).
fn c_slot(expr: &str) -> Result<Option<String>, ()> {
    let expr = expr.trim();
    if let Some(x) =
        inside(expr, "ctxt_sys_reg(ctxt, ").or_else(|| inside(expr, "__vcpu_sys_reg(vcpu, "))
    {
        return Ok(Some(x.trim().to_string()));
    }
    if let Some(f) = expr.strip_prefix("vcpu->arch.ctxt.") {
        return Ok(Some(f.to_string()));
    }
    if expr.starts_with("ctxt->regs.") || expr == "pstate" {
        return Ok(None);
    }
    Err(())
}

/// The CPU register of an accessor: `read_sysreg_el1` + `SYS_SCTLR` is SCTLR_EL12
/// on VHE, `read_sysreg` + `tpidr_el0` is TPIDR_EL0, ...
fn c_cpu(accessor: &str, reg: &str) -> Result<String, ()> {
    let reg = reg.trim();
    match accessor {
        "el1" => Ok(format!("{}_EL12", reg.strip_prefix("SYS_").ok_or(())?)),
        "el2" => Ok(format!("{}_EL2", reg.strip_prefix("SYS_").ok_or(())?)),
        "s" => Ok(reg.strip_prefix("SYS_").ok_or(())?.to_string()),
        "" => Ok(reg.to_string()),
        _ => Err(()),
    }
    .map(|r| r.to_uppercase())
}

/// The moves of a save function: `LHS = read_sysreg*(...)` lines, in order. Every
/// line that calls a `read_sysreg` accessor must parse.
fn c_saves(text: &str, func: &str) -> Vec<Move> {
    let mut out = Vec::new();
    for l in c_function(text, func)
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("read_sysreg"))
    {
        let parse = || -> Result<Option<Move>, ()> {
            let (lhs, rhs) = l.split_once('=').ok_or(())?;
            let rhs = rhs.trim().strip_suffix(';').ok_or(())?;
            let cpu = if rhs == "read_sysreg_par()" {
                "PAR_EL1".to_string()
            } else {
                let (acc, arg) = rhs
                    .strip_prefix("read_sysreg")
                    .ok_or(())?
                    .split_once('(')
                    .ok_or(())?;
                c_cpu(
                    acc.trim_start_matches('_'),
                    arg.strip_suffix(')').ok_or(())?,
                )?
            };
            Ok(c_slot(lhs)?.map(|s| (s, cpu)))
        };
        match parse() {
            Ok(Some(m)) => out.push(m),
            Ok(None) => {}
            Err(()) => panic!("{func}: cannot parse `{l}`"),
        }
    }
    out
}

/// The moves of a restore function: `write_sysreg*(VALUE, REG);` lines, in order.
/// Lines that do not close on the same line (the non-VHE SPECULATIVE_AT
/// sequence) are returned apart, by the slot they name.
fn c_restores(text: &str, func: &str) -> (Vec<Move>, Vec<String>) {
    let mut out = Vec::new();
    let mut open = Vec::new();
    for l in c_function(text, func)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("write_sysreg"))
    {
        if !l.ends_with(");") {
            let x = l
                .split_once("ctxt_sys_reg(ctxt, ")
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(x, _)| x);
            open.push(
                x.unwrap_or_else(|| panic!("{func}: cannot parse `{l}`"))
                    .to_string(),
            );
            continue;
        }
        let parse = || -> Result<Option<Move>, ()> {
            let (acc, args) = l
                .strip_prefix("write_sysreg")
                .ok_or(())?
                .split_once('(')
                .ok_or(())?;
            let args = args.strip_suffix(");").ok_or(())?;
            let (val, reg) = args.rsplit_once(',').ok_or(())?;
            let cpu = c_cpu(acc.trim_start_matches('_'), reg)?;
            Ok(c_slot(val)?.map(|s| (s, cpu)))
        };
        match parse() {
            Ok(Some(m)) => out.push(m),
            Ok(None) => {}
            Err(()) => panic!("{func}: cannot parse `{l}`"),
        }
    }
    (out, open)
}

/// The features a C condition of the save functions tests, on a VHE host:
/// `Some(NONE)` for conditions that always hold there, `None` for those that
/// never do. Unknown conditions fail the test.
fn c_condition(func: &str, cond: &str) -> Option<Features> {
    let known: [(&str, Option<Feature>); 5] = [
        ("ctxt_has_tcrx(ctxt)", Some(Feature::Tcr2)),
        ("ctxt_has_s1pie(ctxt)", Some(Feature::S1pie)),
        ("ctxt_has_s1poe(ctxt)", Some(Feature::S1poe)),
        ("ctxt_has_mte(ctxt)", Some(Feature::Mte)),
        (
            "cpus_have_final_cap(ARM64_HAS_RAS_EXTN)",
            Some(Feature::Ras),
        ),
    ];
    if let Some((_, f)) = known.iter().find(|(c, _)| *c == cond) {
        return Some(f.map_or(Features::NONE, |f| Features::NONE.with(f)));
    }
    match cond {
        // DEBUG_DIRTY matters only without VHE.
        "has_vhe() || vcpu_get_flag(vcpu, DEBUG_DIRTY)" => Some(Features::NONE),
        "!has_vhe() && ctxt->__hyp_running_vcpu" => None,
        _ => panic!("{func}: unknown condition `{cond}`"),
    }
}

/// The gate of each register a save function saves, from the `if`s around it:
/// (vCPU slot, features needed). `if (!vcpu_el1_is_32bit(vcpu)) return;` gates
/// the rest of the function.
fn c_save_gates(text: &str, func: &str) -> Vec<(String, Features)> {
    let mut out = Vec::new();
    let mut whole = Features::NONE;
    // (brace depth the condition closes at, its features or None if never on VHE)
    let mut stack: Vec<(usize, Option<Features>)> = Vec::new();
    let mut pending: Option<Option<Features>> = None;
    let mut depth = 0usize;
    let mut lines = c_function(text, func)
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "{")
        .skip(1);
    while let Some(l) = lines.next() {
        if l.is_empty() || l.starts_with("/*") || l.starts_with('*') || l.starts_with("//") {
            continue;
        }
        if let Some(c) = l.strip_prefix("if (") {
            let (cond, open) = match c.strip_suffix(") {") {
                Some(cond) => (cond, true),
                None => (
                    c.strip_suffix(')')
                        .unwrap_or_else(|| panic!("{func}: `{l}`")),
                    false,
                ),
            };
            if cond == "!vcpu_el1_is_32bit(vcpu)" {
                assert_eq!(lines.next(), Some("return;"), "{func}: `{l}`");
                whole = whole.with(Feature::El1Is32Bit);
                continue;
            }
            let gate = c_condition(func, cond);
            if open {
                depth += 1;
                stack.push((depth, gate));
            } else {
                pending = Some(gate);
            }
            continue;
        }
        if l == "}" {
            stack.retain(|(d, _)| *d != depth);
            depth -= 1;
            continue;
        }
        if l.contains("read_sysreg") {
            let (lhs, _) = l.split_once('=').unwrap_or_else(|| panic!("{func}: `{l}`"));
            let mut gate = Some(whole);
            for g in stack.iter().map(|(_, g)| *g).chain(pending.take()) {
                gate = gate
                    .zip(g)
                    .map(|(a, b)| Features::from_bits(a.bits() | b.bits()));
            }
            if let (Some(slot), Some(gate)) = (c_slot(lhs).unwrap(), gate) {
                out.push((slot, gate));
            }
            continue;
        }
        panic!("{func}: unexpected line `{l}`");
    }
    out
}

/// The gate of every register the C saves is the table's.
#[test]
fn gates_match_sysreg_sr_h() {
    let text = read_kernel("arch/arm64/kvm/hyp/include/hyp/sysreg-sr.h");
    let mut gated = 0;
    for (_, func, _) in C_GROUPS {
        for (slot, gate) in c_save_gates(&text, func) {
            let e = TABLE
                .iter()
                .find(|e| e.vcpu.name() == slot)
                .unwrap_or_else(|| panic!("{slot} not in the table"));
            assert_eq!(e.gate, gate, "{func}: gate of {slot}");
            gated += usize::from(gate != Features::NONE);
        }
    }
    assert!(
        gated >= 15,
        "only {gated} gated registers found in sysreg-sr.h"
    );
}

fn table_moves<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<Move> {
    entries
        .map(|e| (e.vcpu.name().to_string(), e.cpu.name().to_uppercase()))
        .collect()
}

/// Each group of `sysreg-sr.h` with the functions that save and restore it.
const C_GROUPS: [(Group, &str, &str); 5] = [
    (
        Group::El1,
        "__sysreg_save_el1_state",
        "__sysreg_restore_el1_state",
    ),
    (
        Group::User,
        "__sysreg_save_user_state",
        "__sysreg_restore_user_state",
    ),
    (
        Group::Aarch32,
        "__sysreg32_save_state",
        "__sysreg32_restore_state",
    ),
    (
        Group::Common,
        "__sysreg_save_common_state",
        "__sysreg_restore_common_state",
    ),
    (
        Group::El2Return,
        "__sysreg_save_el2_return_state",
        "__sysreg_restore_el2_return_state",
    ),
];

/// Asserts that C function `func` moves `c`, exactly the registers of `group`
/// in the table (for a deferred group: in `plan`'s order), in the same order.
fn assert_group_is_c(func: &str, group: Group, c: &[Move], plan: &[&'static Entry]) {
    let ours = if group.is_deferred() {
        table_moves(plan.iter().copied().filter(|e| e.group == group))
    } else {
        table_moves(TABLE.iter().filter(|e| e.group == group))
    };
    let (cs, os): (BTreeSet<Move>, BTreeSet<Move>) =
        (c.iter().cloned().collect(), ours.iter().cloned().collect());
    assert!(
        cs == os,
        "{}",
        diff_message(&format!("{func}() vs {group:?}"), &cs, &os)
    );
    assert_eq!(c, &ours[..], "{func}(): same registers, different order");
}

/// [`assert_group_is_c`] for each function of `funcs` in `sysreg-sr.h`, whose
/// moves `moves` parses; returns how many moves it parsed.
fn assert_groups_are_c(
    funcs: [(&str, Group); 5],
    moves: impl Fn(&str, &str) -> Vec<Move>,
    plan: impl Iterator<Item = &'static Entry>,
) -> usize {
    let text = read_kernel("arch/arm64/kvm/hyp/include/hyp/sysreg-sr.h");
    let plan: Vec<_> = plan.collect();
    let mut total = 0;
    for (func, group) in funcs {
        let c = moves(&text, func);
        total += c.len();
        assert_group_is_c(func, group, &c, &plan);
    }
    total
}

/// Every register each group of `sysreg-sr.h` saves is in the table, in that
/// group and CPU register, and the other way round; the put plan saves them in
/// the C's order.
#[test]
fn groups_match_sysreg_sr_h_saves() {
    let saves = C_GROUPS.map(|(group, save, _)| (save, group));
    let total = assert_groups_are_c(saves, c_saves, sysreg_sr::put_plan(EVERYTHING));
    assert!(total >= 36, "only {total} saves parsed from sysreg-sr.h");
}

/// The same for the restores, and the load plan restores in the C's order.
#[test]
fn groups_match_sysreg_sr_h_restores() {
    let moves = |text: &str, func: &str| {
        let (all, open) = c_restores(text, func);
        // SCTLR_EL1 and TCR_EL1 are written again (and TCR_EL1 once more, with
        // EPDx set) only on the non-VHE SPECULATIVE_AT paths: keep the first write.
        let mut seen = HashMap::new();
        let mut c = Vec::new();
        for m in all {
            match seen.get(&m.0) {
                None => {
                    seen.insert(m.0.clone(), m.1.clone());
                    c.push(m);
                }
                Some(cpu) => {
                    assert!(
                        ["SCTLR_EL1", "TCR_EL1"].contains(&m.0.as_str()) && *cpu == m.1,
                        "{func}: {m:?} twice"
                    );
                }
            }
        }
        for x in &open {
            assert_eq!(x, "TCR_EL1", "{func}: multi-line write of {x}");
        }
        c
    };
    let restores = C_GROUPS.map(|(group, _, restore)| (restore, group));
    let total = assert_groups_are_c(restores, moves, sysreg_sr::load_plan(EVERYTHING));
    assert!(total >= 37, "only {total} restores parsed from sysreg-sr.h");
}

/// The group order of `__vcpu_load_switch_sysregs` / `__vcpu_put_switch_sysregs`
/// (`hyp/vhe/sysreg-sr.c`).
#[test]
fn group_order_matches_vhe_sysreg_sr_c() {
    let text = read_kernel("arch/arm64/kvm/hyp/vhe/sysreg-sr.c");
    let calls = |func: &str, prefix: &str| -> Vec<String> {
        c_function(&text, func)
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.split('(').next().unwrap().to_string())
            .collect()
    };
    let load = calls("__vcpu_load_switch_sysregs", "__sysreg");
    assert_eq!(
        load,
        [
            "__sysreg_save_user_state",
            "__sysreg32_restore_state",
            "__sysreg_restore_user_state",
            "__sysreg_restore_el1_state"
        ]
    );
    let put = calls("__vcpu_put_switch_sysregs", "__sysreg");
    assert_eq!(
        put,
        [
            "__sysreg_save_el1_state",
            "__sysreg_save_user_state",
            "__sysreg32_save_state",
            "__sysreg_restore_user_state"
        ]
    );
    assert_eq!(
        sysreg_sr::LOAD_ORDER,
        [Group::Aarch32, Group::User, Group::El1]
    );
    assert_eq!(
        sysreg_sr::PUT_ORDER,
        [Group::El1, Group::User, Group::Aarch32]
    );
    // And the table's Load::First registers are what __sysreg_restore_el1_state
    // writes before CPACR_EL1.
    let first: Vec<&str> = TABLE
        .iter()
        .filter(|e| e.load == Load::First)
        .map(|e| e.vcpu.name())
        .collect();
    assert_eq!(first, ["MPIDR_EL1", "SCTLR_EL1", "TCR_EL1"]);
}
