// SPDX-License-Identifier: GPL-2.0

//! The SPSR_EL2 a guest is entered with (`rust/world/pstate.rs`) against a
//! model written from the C's rule (`to_hw_pstate()` and
//! `__sysreg_restore_el2_return_state()`, `hyp/include/hyp/sysreg-sr.h`), over
//! every mode and every combination of the other SPSR bit classes the kernel
//! names (`asm/ptrace.h`, `uapi/asm/ptrace.h`, `asm/debug-monitors.h`).
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

mod common;

use common::kernel::{c_eval, c_function, defines, read_kernel, strip_comments};
use common::rng::Rng;
use std::collections::{BTreeSet, HashMap};
use vhe_rs_hosttest::arch::consts;
use vhe_rs_hosttest::world::pstate::{el2_return_spsr, sanitise_return_mode, to_hw_pstate};

/// The `#define`s of the headers that name PSTATE/SPSR bits.
fn psr_defines() -> HashMap<String, String> {
    let mut d = defines("arch/arm64/include/uapi/asm/ptrace.h");
    d.extend(defines("arch/arm64/include/asm/ptrace.h"));
    d.extend(defines("arch/arm64/include/asm/debug-monitors.h"));
    d.into_iter()
        .map(|(k, v)| (k, strip_comments(&v).trim().to_string()))
        .collect()
}

/// The values the model needs, read from the headers (not the generated
/// constants the code under test uses).
struct Psr {
    /// `PSR_AA32_MODE_MASK`: M\[4:0\].
    m: u64,
    /// `PSR_MODE32_BIT`: M\[4\], the AArch32 execution state.
    m32: u64,
    el1t: u64,
    el1h: u64,
    el2t: u64,
    el2h: u64,
    il: u64,
}

impl Psr {
    fn new(d: &HashMap<String, String>) -> Psr {
        let v = |n: &str| c_eval(n, d);
        Psr {
            m: v("PSR_AA32_MODE_MASK"),
            m32: v("PSR_MODE32_BIT"),
            el1t: v("PSR_MODE_EL1t"),
            el1h: v("PSR_MODE_EL1h"),
            el2t: v("PSR_MODE_EL2t"),
            el2h: v("PSR_MODE_EL2h"),
            il: v("PSR_IL_BIT"),
        }
    }

    /// The exception level of AArch64 mode `m`: M\[3:2\] (Arm ARM, SPSR_EL2.M).
    fn el(&self, mode: u64) -> u64 {
        (mode & !self.m32) >> 2
    }

    /// What the C writes to SPSR_EL2 for saved PSTATE `p`, written from its rule:
    /// AArch32 is left alone (the CPU makes a return to Hyp or a reserved mode
    /// illegal itself); AArch64 EL2t/EL2h are a nested guest hypervisor's EL1t/EL1h;
    /// any other AArch64 mode at EL2 or EL3 becomes EL2h with IL and nothing else.
    fn model(&self, p: u64) -> u64 {
        let mode = p & self.m;
        if mode & self.m32 != 0 {
            p
        } else if mode == self.el2t {
            (p & !self.m) | self.el1t
        } else if mode == self.el2h {
            (p & !self.m) | self.el1h
        } else if self.el(mode) >= 2 {
            self.el2h | self.il
        } else {
            p
        }
    }
}

/// The SPSR bit classes the kernel names besides the mode, by name and mask,
/// and every other bit as one more class.
fn bit_classes(d: &HashMap<String, String>) -> Vec<(&'static str, u64)> {
    let v = |n: &str| c_eval(n, d);
    let mut classes: Vec<(&'static str, u64)> = vec![
        (
            "NZCV",
            v("PSR_N_BIT") | v("PSR_Z_BIT") | v("PSR_C_BIT") | v("PSR_V_BIT"),
        ),
        (
            "DAIF",
            v("PSR_D_BIT") | v("PSR_A_BIT") | v("PSR_I_BIT") | v("PSR_F_BIT"),
        ),
        ("SS", v("DBG_SPSR_SS")),
        ("IL", v("PSR_IL_BIT")),
        ("PAN", v("PSR_PAN_BIT")),
        ("UAO", v("PSR_UAO_BIT")),
        ("DIT", v("PSR_DIT_BIT")),
        ("TCO", v("PSR_TCO_BIT")),
        ("BTYPE", v("PSR_BTYPE_MASK")),
        ("SSBS", v("PSR_SSBS_BIT")),
        ("AA32 T", v("PSR_AA32_T_BIT")),
        ("AA32 E", v("PSR_AA32_E_BIT")),
        ("AA32 IT", v("PSR_AA32_IT_MASK")),
        ("AA32 GE", v("PSR_AA32_GE_MASK")),
        ("AA32 Q", v("PSR_AA32_Q_BIT")),
        ("AA32 SSBS", v("PSR_AA32_SSBS_BIT")),
    ];
    // Bits later kernels name (FEAT_NMI, FEAT_EBEP, ...), if this one does.
    for (name, define) in [("ALLINT", "PSR_ALLINT_BIT"), ("PM", "PSR_PM_BIT")] {
        if d.contains_key(define) {
            classes.push((name, v(define)));
        }
    }
    let named = classes.iter().fold(v("PSR_AA32_MODE_MASK"), |a, c| a | c.1);
    classes.push(("others", !named));
    for (n, m) in &classes {
        assert_ne!(*m, 0, "{n}");
        assert_eq!(m & v("PSR_AA32_MODE_MASK"), 0, "{n} overlaps the mode");
    }
    classes
}

/// The generated constants are the headers'.
#[test]
fn constants_are_the_kernels() {
    let d = psr_defines();
    for (ours, name) in [
        (consts::PSR_MODE_MASK, "PSR_MODE_MASK"),
        (consts::PSR_MODE32_BIT, "PSR_MODE32_BIT"),
        (consts::PSR_AA32_MODE_MASK, "PSR_AA32_MODE_MASK"),
        (consts::PSR_MODE_EL1T, "PSR_MODE_EL1t"),
        (consts::PSR_MODE_EL1H, "PSR_MODE_EL1h"),
        (consts::PSR_MODE_EL2T, "PSR_MODE_EL2t"),
        (consts::PSR_MODE_EL2H, "PSR_MODE_EL2h"),
        (consts::PSR_IL_BIT, "PSR_IL_BIT"),
    ] {
        assert_eq!(ours, c_eval(name, &d), "{name}");
    }
}

/// The C's two steps are what `pstate.rs` says they are, text for text: the
/// mode translation, then the check with its replacement value.
#[test]
fn c_is_what_the_rust_mirrors() {
    let sr = read_kernel("arch/arm64/kvm/hyp/include/hyp/sysreg-sr.h");
    let squash = |s: &str| {
        strip_comments(s)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let hw = squash(c_function(&sr, "to_hw_pstate"));
    for want in [
        "u64 mode = ctxt->regs.pstate & (PSR_MODE_MASK | PSR_MODE32_BIT);",
        "case PSR_MODE_EL2t: mode = PSR_MODE_EL1t; break;",
        "case PSR_MODE_EL2h: mode = PSR_MODE_EL1h; break;",
        "return (ctxt->regs.pstate & ~(PSR_MODE_MASK | PSR_MODE32_BIT)) | mode;",
    ] {
        assert!(hw.contains(want), "to_hw_pstate(): no `{want}` in `{hw}`");
    }
    assert_eq!(hw.matches("case ").count(), 2, "to_hw_pstate(): `{hw}`");
    let ret = squash(c_function(&sr, "__sysreg_restore_el2_return_state"));
    for want in [
        "u64 pstate = to_hw_pstate(ctxt); u64 mode = pstate & PSR_AA32_MODE_MASK;",
        "if (!(mode & PSR_MODE32_BIT) && mode >= PSR_MODE_EL2t) pstate = PSR_MODE_EL2h | PSR_IL_BIT;",
        "write_sysreg_el2(pstate, SYS_SPSR);",
    ] {
        assert!(ret.contains(want), "no `{want}` in `{ret}`");
    }
    // to_hw_pstate() applies to every vCPU, nested or not.
    for nested in ["vcpu_has_nv", "is_hyp_ctxt", "vcpu_is_el2"] {
        assert!(
            !hw.contains(nested),
            "to_hw_pstate() became conditional: `{hw}`"
        );
    }
}

/// Every mode (the 5-bit field: AArch64 and AArch32, legal and reserved) with
/// every combination of the other bit classes set or clear: the result is the
/// model's; it never has an AArch64 mode at EL2 or above other than EL2h with
/// IL (and then nothing else); a mode below EL2, or AArch32, leaves every bit
/// as it was; EL2t/EL2h become EL1t/EL1h with every other bit kept.
#[test]
fn every_mode_with_every_bit_class() {
    let d = psr_defines();
    let psr = Psr::new(&d);
    let classes = bit_classes(&d);
    assert!(
        classes.len() <= 20,
        "{} classes: too many to combine",
        classes.len()
    );
    let mut checked = 0u64;
    let mut outcomes = BTreeSet::new();
    for mode in 0..=psr.m {
        for set in 0..1u64 << classes.len() {
            let p = classes
                .iter()
                .enumerate()
                .filter(|(i, _)| set & (1 << i) != 0)
                .fold(mode, |a, (_, c)| a | c.1);
            let out = el2_return_spsr(p).raw();
            assert_eq!(out, psr.model(p), "pstate {p:#x}");
            let out_mode = out & psr.m;
            let aarch64 = out_mode & psr.m32 == 0;
            if aarch64 && psr.el(out_mode) >= 2 {
                assert_eq!(out, psr.el2h | psr.il, "pstate {p:#x}: to EL2 or above");
                outcomes.insert("to EL2h with IL");
            } else if mode & psr.m32 != 0 || psr.el(mode) < 2 {
                assert_eq!(out, p, "pstate {p:#x}: legal, yet changed");
                outcomes.insert("unchanged");
            } else {
                assert!(mode == psr.el2t || mode == psr.el2h, "pstate {p:#x}");
                let el1 = if mode == psr.el2t { psr.el1t } else { psr.el1h };
                assert_eq!(out, (p & !psr.m) | el1, "pstate {p:#x}");
                outcomes.insert("EL2 to EL1");
            }
            checked += 1;
        }
    }
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(checked, (psr.m + 1) << classes.len());
}

/// Random values of all 64 bits, against the model; and the function is its
/// two steps.
#[test]
fn random_values() {
    let psr = Psr::new(&psr_defines());
    let mut rng = Rng(0x5eed_95a7);
    for _ in 0..1_000_000 {
        let p = rng.next();
        let out = el2_return_spsr(p).raw();
        assert_eq!(out, psr.model(p), "pstate {p:#x}");
        assert_eq!(out, sanitise_return_mode(to_hw_pstate(p)));
    }
}

/// The PSTATE values a non-nested vCPU can hold are entered unchanged: the
/// modes `set_core_reg()` (`arch/arm64/kvm/guest.c`) accepts without
/// `vcpu_has_nv()`, with any other bits. The modes it accepts only for a
/// nested vCPU are EL2t and EL2h, which become EL1t and EL1h.
#[test]
fn non_nested_states_are_unchanged() {
    let d = psr_defines();
    let psr = Psr::new(&d);
    let guest = read_kernel("arch/arm64/kvm/guest.c");
    let body = strip_comments(c_function(&guest, "set_core_reg"));
    let switch = body
        .split_once("switch (mode) {")
        .expect("set_core_reg(): no switch (mode)")
        .1;
    let switch = &switch[..switch.find("default:").expect("no default:")];
    // Groups of case labels, each with the statements that follow them.
    let mut groups: Vec<(Vec<String>, String)> = Vec::new();
    let mut in_labels = false;
    for l in switch.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(label) = l.strip_prefix("case ").and_then(|l| l.strip_suffix(':')) {
            if !in_labels {
                groups.push((Vec::new(), String::new()));
            }
            groups.last_mut().unwrap().0.push(label.to_string());
            in_labels = true;
        } else {
            groups.last_mut().expect("statement before a case").1 += l;
            in_labels = false;
        }
    }
    let mut plain = Vec::new();
    let mut nested_only = Vec::new();
    for (labels, stmts) in &groups {
        let modes = labels.iter().map(|l| c_eval(l, &d));
        if stmts.contains("vcpu_has_nv(vcpu)") {
            nested_only.extend(modes);
        } else {
            plain.extend(modes);
        }
    }
    nested_only.sort();
    assert_eq!(nested_only, [psr.el2t, psr.el2h], "{groups:?}");
    assert!(plain.len() >= 10, "{groups:?}");
    let classes = bit_classes(&d);
    let mut rng = Rng(0x5eed_4e57);
    for mode in plain {
        for _ in 0..10_000 {
            let p = (rng.next() & !psr.m) | mode;
            assert_eq!(el2_return_spsr(p).raw(), p, "pstate {p:#x}");
        }
        let all = classes.iter().fold(mode, |a, c| a | c.1);
        assert_eq!(el2_return_spsr(all).raw(), all);
    }
    for (mode, el1) in [(psr.el2t, psr.el1t), (psr.el2h, psr.el1h)] {
        let p = (rng.next() & !psr.m) | mode;
        assert_eq!(el2_return_spsr(p).raw(), (p & !psr.m) | el1);
    }
}
