// SPDX-License-Identifier: GPL-2.0

//! The sysreg layer against the kernel's own definitions, and its field algebra.
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

mod common;

use common::kernel::{define, defines, num};
use std::collections::HashMap;
use vhe_rs_hosttest::arch::{self, defs, RegAccess, SysReg, Value, HCR_EL2, ZCR_EL2};
use vhe_rs_hosttest::sim::{Event, SimRegs};

/// `sys_reg(a, b, c, d, e)` packed the way `asm/sysreg.h` packs it.
fn sys_reg_text(v: &str) -> Option<u32> {
    let inner = v.strip_prefix("sys_reg(")?.strip_suffix(')')?;
    let f: Vec<u32> = inner
        .split(',')
        .map(|x| x.trim().parse().ok())
        .collect::<Option<_>>()?;
    use defs::packing::*;
    Some(
        (f[0] << OP0_SHIFT)
            | (f[1] << OP1_SHIFT)
            | (f[2] << CRN_SHIFT)
            | (f[3] << CRM_SHIFT)
            | (f[4] << OP2_SHIFT),
    )
}

#[test]
fn packing_matches_sysreg_h() {
    let d = defines("arch/arm64/include/asm/sysreg.h");
    use defs::packing::*;
    for (name, ours) in [
        ("Op0_shift", OP0_SHIFT),
        ("Op1_shift", OP1_SHIFT),
        ("CRn_shift", CRN_SHIFT),
        ("CRm_shift", CRM_SHIFT),
        ("Op2_shift", OP2_SHIFT),
    ] {
        assert_eq!(num(define(&d, name)), ours as u64, "{name}");
    }
}

#[test]
fn tools_registers_match_generated_sysreg_defs_h() {
    // The kernel's own gen-sysreg.awk output for the same arch/arm64/tools/sysreg.
    let d = defines("arch/arm64/include/generated/asm/sysreg-defs.h");
    let regs = defs::TOOLS_REGISTERS;
    assert!(regs.len() > 100, "only {} registers generated", regs.len());
    let kernel_regs = d.keys().filter(|k| k.starts_with("REG_")).count();
    assert_eq!(
        regs.len(),
        kernel_regs,
        "register count differs from sysreg-defs.h"
    );
    let mut seen = std::collections::HashSet::new();
    for r in regs {
        let enc = sys_reg_text(define(&d, &format!("SYS_{}", r.name))).unwrap();
        assert_eq!(r.encoding, enc, "encoding of {}", r.name);
        for f in r.fields {
            let k = format!("{}_{}", r.field_prefix, f.name);
            assert_eq!(
                num(define(&d, &format!("{k}_SHIFT"))),
                f.shift as u64,
                "{k} shift"
            );
            assert_eq!(
                num(define(&d, &format!("{k}_WIDTH"))),
                f.width as u64,
                "{k} width"
            );
            seen.insert(format!("{k}_SHIFT"));
            for (vn, vv) in f.values {
                let kv = format!("{k}_{vn}");
                let want = define(&d, &kv)
                    .trim_start_matches("UL(")
                    .trim_end_matches(')')
                    .to_string();
                assert_eq!(num(&want), *vv, "{kv}");
            }
        }
    }
    // And the other way round: every field the kernel defines is generated.
    let missing: Vec<_> = d
        .keys()
        .filter(|k| k.ends_with("_SHIFT") && !seen.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "fields the kernel defines and vhe-rs lacks: {missing:?}"
    );
}

#[test]
fn header_registers_match_sysreg_h() {
    let d = defines("arch/arm64/include/asm/sysreg.h");
    // The breakpoint and watchpoint registers come from the function-like
    // SYS_DBG{B,W}{C,V}Rn_EL1(n): tests/debug.rs evaluates those.
    let numbered = |n: &str| {
        ["DBGBCR", "DBGBVR", "DBGWCR", "DBGWVR"].iter().any(|p| {
            n.strip_prefix(p)
                .and_then(|r| r.strip_suffix("_EL1"))
                .is_some_and(|i| i.parse::<u8>().is_ok_and(|i| i < 16))
        })
    };
    let skipped = defs::HDR_REGISTERS
        .iter()
        .filter(|r| numbered(r.name))
        .count();
    assert_eq!(
        skipped, 64,
        "the 4 x 16 debug registers, and nothing else, are left to tests/debug.rs"
    );
    for r in defs::HDR_REGISTERS.iter().filter(|r| !numbered(r.name)) {
        let enc = sys_reg_text(define(&d, &format!("SYS_{}", r.name)))
            .unwrap_or_else(|| panic!("SYS_{} is not a plain sys_reg()", r.name));
        assert_eq!(r.encoding, enc, "encoding of {}", r.name);
    }
}

#[test]
fn hcr_bits_match_kvm_arm_h() {
    // `#define HCR_TGE (UL(1) << 27)`: single bits in kvm_arm.h.
    let d = defines("arch/arm64/include/asm/kvm_arm.h");
    let hcr = defs::HDR_REGISTERS
        .iter()
        .find(|r| r.name == "HCR_EL2")
        .unwrap();
    let mut checked = 0;
    for f in hcr.fields {
        let text = define(&d, &format!("HCR_{}", f.name));
        if let Some(bit) = text
            .strip_prefix("(UL(1) << ")
            .and_then(|t| t.strip_suffix(')'))
        {
            if let Ok(bit) = bit.trim().parse::<u32>() {
                assert_eq!((f.shift, f.width), (bit, 1), "HCR_{}", f.name);
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} HCR bits checked");
    // HCR_HOST_VHE_FLAGS = RW | TGE | E2H.
    let flags = (HCR_EL2::RW::SET | HCR_EL2::TGE::SET | HCR_EL2::E2H::SET).value();
    assert_eq!(HCR_EL2::HOST_VHE_FLAGS, flags);
}

#[test]
fn field_algebra() {
    let f = ZCR_EL2::LEN;
    assert_eq!(f.mask(), (1u64 << f.width()) - 1);
    let v: Value<ZCR_EL2::Reg> = Value::from_raw(u64::MAX).with(f.val(3));
    assert_eq!(v.field(f), 3);
    assert_eq!(v.raw() & !f.mask(), !f.mask());
    // Later fields win where they overlap; others combine.
    let fv = HCR_EL2::TGE::SET | HCR_EL2::TGE::CLEAR | HCR_EL2::E2H::SET;
    assert!(fv.matches(HCR_EL2::E2H.mask()));
    assert!(!fv.matches(HCR_EL2::E2H.mask() | HCR_EL2::TGE.mask()));
    // Values wider than the field are truncated, never spill into neighbours.
    assert_eq!(HCR_EL2::TGE.val(2).value(), 0);
}

#[test]
fn modify_writes_only_changes() {
    let mut regs = SimRegs::new();
    regs.set::<HCR_EL2::Reg>(HCR_EL2::HOST_VHE_FLAGS);
    regs.modify(HCR_EL2::TGE::SET); // already set: read, no write
    assert_eq!(regs.log, vec![Event::Read("HCR_EL2")]);
    regs.modify(HCR_EL2::TGE::CLEAR | HCR_EL2::TWI::SET);
    let want = (HCR_EL2::HOST_VHE_FLAGS & !HCR_EL2::TGE.mask()) | HCR_EL2::TWI.mask();
    assert_eq!(regs.writes::<HCR_EL2::Reg>(), vec![want]);
    assert_eq!(regs.get::<HCR_EL2::Reg>(), Some(want));
    assert!(regs.unset_reads.is_empty());
    assert_eq!(<HCR_EL2::Reg as SysReg>::NAME, "HCR_EL2");
    let _ = arch::consts::CURRENT_EL_EL2;
}

/// `Ec` names exactly the kernel's `ESR_ELx_EC_*` classes with their values,
/// both ways; `Esr` reads EC, IL and ISS where `asm/esr.h` puts them.
#[test]
fn exception_classes_are_the_kernels() {
    let d = defines("arch/arm64/include/asm/esr.h");
    let hex = |v: &str| -> u64 {
        let v = v.split("/*").next().unwrap().trim();
        let v = v.trim_start_matches("UL(").trim_end_matches(')');
        u64::from_str_radix(v.trim_start_matches("0x").trim_start_matches("0X"), 16).unwrap()
    };
    let kernel: HashMap<String, u64> = d
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("ESR_ELx_EC_").map(|n| (n.to_string(), v)))
        .filter(|(n, v)| {
            !["MAX", "SHIFT", "WIDTH", "MASK"].contains(&n.as_str()) && v.starts_with("UL(")
        })
        .map(|(n, v)| (n, hex(v)))
        .collect();
    assert!(kernel.len() > 30, "parsed too few classes: {kernel:?}");
    let ours: HashMap<String, u64> = arch::Ec::ALL
        .iter()
        .map(|e| (e.name().to_string(), *e as u64))
        .collect();
    assert_eq!(ours, kernel, "Ec differs from asm/esr.h");
    for raw in 0..64u64 {
        let named = kernel
            .iter()
            .find(|(_, v)| **v == raw)
            .map(|(n, _)| n.as_str());
        assert_eq!(
            arch::Ec::from_raw(raw).map(|e| e.name()),
            named,
            "EC {raw:#x}"
        );
    }
    let num = |name: &str| -> u32 {
        d[name]
            .trim_matches(|c| c == '(' || c == ')')
            .parse()
            .unwrap()
    };
    let shift = num("ESR_ELx_EC_SHIFT");
    assert_eq!(d["ESR_ELx_IL"], "(UL(1) << ESR_ELx_IL_SHIFT)");
    let il = 1u64 << num("ESR_ELx_IL_SHIFT");
    for ec in arch::Ec::ALL {
        for (il_set, iss) in [(false, 0u64), (true, 0x1ff_ffff), (true, 0x12345)] {
            let raw = ((*ec as u64) << shift) | if il_set { il } else { 0 } | iss;
            let esr = arch::Esr::new(Value::from_raw(raw));
            assert_eq!(
                (esr.ec(), esr.il(), esr.iss()),
                (Some(*ec), il_set, iss),
                "{raw:#x}"
            );
        }
    }
}
