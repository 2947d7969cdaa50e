// SPDX-License-Identifier: GPL-2.0

//! The exit-handler table (`rust/world/exits.rs`) against the kernel's own C:
//! `hyp_exit_handlers[]` and `kvm_hyp_handle_sysreg_vhe()` of
//! `arch/arm64/kvm/hyp/vhe/switch.c`, the handlers of
//! `arch/arm64/kvm/hyp/include/hyp/switch.h`, and what makes some of them
//! nested-only.
//!
//! The kernel tree is `$KDIR` (default: the project's `build/linux`).

mod common;

use common::exits::{c_table, kernel_ecs, HYP_SWITCH, VHE_SWITCH};
use common::kernel::{
    c_calls, c_function, defines, if_statements, read_kernel, squash, strip_comments,
};
use common::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};
use vhe_rs_hosttest::arch::{consts, Ec, Esr, Value, ESR_EL2, HCR_EL2};
use vhe_rs_hosttest::world::exits::{
    self, ExitHandler, Gate, SysregStep, ENTRIES, HANDLERS, SYSREG_STEPS, TABLE_LEN,
};

/// For every EC value, the Rust table routes exactly as the C's, both ways:
/// the same handler (by its C name) for each value the C has one for, and
/// none where the C has `NULL`; looked up by class ([`exits::handler`]), by
/// raw value ([`HANDLERS`]) and from a syndrome ([`exits::handler_for`]).
#[test]
fn handler_table_is_the_kernels() {
    let (c, written) = c_table();
    assert_eq!(c.len(), TABLE_LEN, "ESR_ELx_EC_MAX + 1");
    assert_eq!(kernel_ecs()["MAX"], consts::ESR_ELX_EC_MAX);
    let mut rng = Rng(0x5eed_e417);
    for raw in 0..=consts::ESR_ELX_EC_MAX {
        let want = c[raw as usize].as_deref();
        let by_class = exits::handler(Ec::from_raw(raw)).map(|h| h.c_name());
        assert_eq!(by_class, want, "EC {raw:#x}: handler()");
        assert_eq!(
            HANDLERS[raw as usize].map(|h| h.c_name()),
            want,
            "EC {raw:#x}: HANDLERS[]"
        );
        for _ in 0..16 {
            // Whatever IL, ISS and the RES0 bits above hold.
            let esr = ESR_EL2::EC.val(raw).apply(rng.next());
            let esr = Esr::new(Value::from_raw(esr));
            assert_eq!(esr.ec_raw(), raw);
            assert_eq!(
                exits::handler_for(esr).map(|h| h.c_name()),
                want,
                "ESR {:#x}",
                esr.value().raw()
            );
        }
        // A class the kernel does not name has no handler in C either.
        if Ec::from_raw(raw).is_none() {
            assert_eq!(want, None, "EC {raw:#x} is unnamed but has a C handler");
        }
    }
    // Both ways, as written: every designated entry of the C is in ENTRIES, in
    // the C's order, and ENTRIES has no other.
    let ours: Vec<(String, String)> = ENTRIES
        .iter()
        .map(|(ec, h)| (format!("ESR_ELx_EC_{}", ec.name()), h.c_name().to_string()))
        .collect();
    assert_eq!(ours, written, "ENTRIES differs from hyp_exit_handlers[]");
}

/// Every handler is used, once in [`ExitHandler::ALL`], and runs the C function
/// it names: defined in `hyp/switch.h` or `vhe/switch.c` with the
/// `exit_handler_fn` signature, or `#define`d there to the function
/// [`ExitHandler::c_function`] gives.
#[test]
fn handlers_are_the_kernels_functions() {
    let all: BTreeSet<ExitHandler> = ExitHandler::ALL.iter().copied().collect();
    assert_eq!(all.len(), ExitHandler::ALL.len(), "ALL repeats a handler");
    let used: BTreeSet<ExitHandler> = ENTRIES.iter().map(|(_, h)| *h).collect();
    assert_eq!(used, all, "a handler in no entry, or one missing from ALL");

    let text = strip_comments(&(read_kernel(HYP_SWITCH) + "\n" + &read_kernel(VHE_SWITCH)));
    let d = defines(HYP_SWITCH);
    for h in ExitHandler::ALL {
        let f = h.c_function();
        if f == h.c_name() {
            assert!(
                !d.contains_key(f),
                "{f} is a #define, but c_function() says it is the function"
            );
        } else {
            assert_eq!(
                d.get(h.c_name()).map(|s| s.trim()),
                Some(f),
                "#define {} {f}",
                h.c_name()
            );
        }
        let def = squash(
            c_function(&text, f)
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
                .as_str(),
        );
        assert!(
            def.contains(&format!("bool {f}(struct kvm_vcpu *vcpu, u64 *exit_code)")),
            "{f}: not an exit_handler_fn: `{def}`"
        );
    }
}

/// The C's checks of a trapped system register access, flattened: each as
/// (function, caller, gate), in order. A gate is the caller's condition next
/// to the call (`cpus_have_final_cap(...) && step(vcpu)`), or else an
/// `if (!gate ...) return false;` that the step's body starts with.
fn c_sysreg_steps() -> Vec<(String, String, String)> {
    let text = read_kernel(HYP_SWITCH) + "\n" + &read_kernel(VHE_SWITCH);
    let gates = ["cpus_have_final_cap", "static_branch_unlikely"];
    let mut out = Vec::new();
    let mut callers = vec!["kvm_hyp_handle_sysreg_vhe".to_string()];
    while let Some(caller) = callers.pop() {
        let body = c_function(&text, &caller);
        let ifs = if_statements(body);
        for (cond, then) in &ifs {
            assert_eq!(
                then, "return true;",
                "{caller}: `if ({cond})` then `{then}`"
            );
            let calls = c_calls(cond);
            let gate: Vec<&String> = calls
                .iter()
                .filter(|(n, _)| gates.contains(&n.as_str()))
                .map(|(_, t)| t)
                .collect();
            let step: Vec<&String> = calls
                .iter()
                .filter(|(n, _)| !gates.contains(&n.as_str()))
                .map(|(n, _)| n)
                .collect();
            assert!(
                step.len() == 1 && gate.len() <= 1,
                "{caller}: `if ({cond})`"
            );
            if let Some(g) = gate.first() {
                assert!(
                    cond.starts_with(&format!("{g} && ")),
                    "{caller}: `{cond}` is not `gate && step`"
                );
            }
            let gate = match gate.first() {
                Some(g) => g.to_string(),
                None => body_gate(&text, step[0]),
            };
            out.push((step[0].clone(), caller.clone(), gate));
        }
        // What the caller does when no step handled the trap: the last line.
        let last = squash(strip_comments(body).trim_end().lines().last().unwrap());
        match last
            .strip_prefix("return ")
            .and_then(|r| r.strip_suffix(';'))
        {
            Some("false") => {}
            Some(call) => {
                let calls = c_calls(call);
                assert_eq!(calls.len(), 1, "{caller}: `{last}`");
                assert_eq!(calls[0].1, format!("{}(vcpu, exit_code)", calls[0].0));
                callers.push(calls[0].0.clone());
            }
            None => panic!("{caller}: ends with `{last}`"),
        }
    }
    out
}

/// The gate a step's body starts with: `if (!gate || ...) return false;` (or
/// `if (!(gate))`), as the call text; "" if the body starts otherwise.
fn body_gate(text: &str, step: &str) -> String {
    let body = c_function(text, step);
    let Some((cond, then)) = if_statements(body).into_iter().next() else {
        return String::new();
    };
    if then != "return false;" {
        return String::new();
    }
    let first = cond.split(" || ").next().unwrap();
    let Some(neg) = first.strip_prefix('!') else {
        return String::new();
    };
    let neg = neg
        .strip_prefix('(')
        .and_then(|n| n.strip_suffix(')'))
        .filter(|n| c_calls(n).len() == 1 && c_calls(n)[0].1 == *n)
        .unwrap_or(neg);
    match c_calls(neg).first() {
        Some((_, t)) if t == neg => t.clone(),
        _ => String::new(),
    }
}

/// [`SYSREG_STEPS`] is `kvm_hyp_handle_sysreg_vhe()`'s order, with the C's
/// callers and gates, both ways.
#[test]
fn sysreg_steps_are_the_kernels() {
    let c = c_sysreg_steps();
    let ours: Vec<(String, String, String)> = SYSREG_STEPS
        .iter()
        .map(|s| {
            (
                s.c_name().to_string(),
                s.caller().to_string(),
                s.gate().c_text().to_string(),
            )
        })
        .collect();
    assert_eq!(ours, c, "SYSREG_STEPS differs from the C");
    assert_eq!(SysregStep::ALL, SYSREG_STEPS);
    let distinct: BTreeSet<SysregStep> = SYSREG_STEPS.iter().copied().collect();
    assert_eq!(distinct.len(), SYSREG_STEPS.len());
}

/// The gates called nested-only are false for every non-nested vCPU:
/// `is_hyp_ctxt()` is `vcpu_has_nv(vcpu) && ...`, `vcpu_has_nv()` is the test
/// itself. No other gate is nested-only.
#[test]
fn nested_gates_need_nested_virt() {
    let emulate = read_kernel("arch/arm64/include/asm/kvm_emulate.h");
    let body = squash(&strip_comments(c_function(&emulate, "is_hyp_ctxt")));
    assert!(
        body.contains("{ return vcpu_has_nv(vcpu) && "),
        "is_hyp_ctxt(): `{body}`"
    );
    let nested: BTreeSet<&str> = ["is_hyp_ctxt(vcpu)", "vcpu_has_nv(vcpu)"].into();
    for g in [
        Gate::Always,
        Gate::HypCtxt,
        Gate::Nested,
        Gate::CaviumTx2_219Tvm,
        Gate::AmpereAc03Cpu38,
        Gate::VgicV3CpuifTrap,
    ] {
        assert_eq!(g.nested_only(), nested.contains(g.c_text()), "{g:?}");
    }
    // What a non-nested vCPU runs of kvm_hyp_handle_sysreg_vhe().
    let non_nested: Vec<SysregStep> = SYSREG_STEPS
        .iter()
        .copied()
        .filter(|s| !s.nested_only())
        .collect();
    assert_eq!(
        non_nested,
        [
            SysregStep::Tx2Tvm,
            SysregStep::Ampere1Tcr,
            SysregStep::VgicV3Cpuif,
            SysregStep::Cntpct
        ]
    );
}

/// [`ExitHandler::Eret`] is nested-only, and no other handler is, because an
/// ERET only traps with HCR_EL2.NV or HFGITR_EL2.ERET, which a non-nested
/// vCPU never runs with: `__compute_hcr()` gives such a vCPU its
/// `vcpu->arch.hcr_el2` unchanged, and that starts from `HCR_GUEST_FLAGS`
/// (no NV, as no other code of KVM adds NV to it); the VM's `fgu[]`
/// (`kvm_calculate_traps()`) never holds HFGITR_EL2.ERET, and the host boots
/// with HFGITR_EL2 = 0 (`el2_setup.h`).
#[test]
fn eret_traps_only_for_nested_vcpus() {
    let nested: Vec<ExitHandler> = ExitHandler::ALL
        .iter()
        .copied()
        .filter(|h| h.nested_only())
        .collect();
    assert_eq!(nested, [ExitHandler::Eret]);
    let eret: Vec<Ec> = ENTRIES
        .iter()
        .filter(|(_, h)| h.nested_only())
        .map(|(ec, _)| *ec)
        .collect();
    assert_eq!(eret, [Ec::ERET]);

    let switch = read_kernel(VHE_SWITCH);
    let hcr = squash(&strip_comments(c_function(&switch, "__compute_hcr")));
    assert!(
        hcr.contains("{ u64 hcr = vcpu->arch.hcr_el2; if (!vcpu_has_nv(vcpu)) return hcr;"),
        "__compute_hcr(): `{hcr}`"
    );
    assert_eq!(HCR_EL2::GUEST_FLAGS & HCR_EL2::NV.mask(), 0);
    // No code outside the nested paths sets HCR_NV in vcpu->arch.hcr_el2.
    for f in [
        "arch/arm64/include/asm/kvm_emulate.h",
        "arch/arm64/kvm/arm.c",
        "arch/arm64/kvm/reset.c",
        "arch/arm64/kvm/sys_regs.c",
    ] {
        let t = strip_comments(&read_kernel(f));
        assert!(
            !t.lines()
                .any(|l| l.contains("hcr_el2") && l.contains("HCR_NV")),
            "{f} changes HCR_EL2.NV"
        );
    }

    let sys_regs = read_kernel("arch/arm64/kvm/sys_regs.c");
    let fgu = c_function(&sys_regs, "kvm_calculate_traps");
    assert!(
        fgu.contains("fgu[HFGITR_GROUP]"),
        "kvm_calculate_traps() moved"
    );
    assert!(
        !fgu.contains("HFGITR_EL2_ERET"),
        "the VM's fgu[] may trap ERET"
    );
    let setup = squash(&read_kernel("arch/arm64/include/asm/el2_setup.h"));
    assert!(setup.contains("msr_s SYS_HFGITR_EL2, xzr"), "el2_setup.h");

    // The handler's own first test reads the guest hypervisor's HCR_EL2.NV
    // and HFGITR_EL2.ERET: what made the ERET trap.
    let body = squash(&strip_comments(c_function(&switch, "kvm_hyp_handle_eret")));
    assert!(
        body.contains(
            "if ((__vcpu_sys_reg(vcpu, HCR_EL2) & HCR_NV) || \
             (__vcpu_sys_reg(vcpu, HFGITR_EL2) & HFGITR_EL2_ERET)) return false;"
        ),
        "kvm_hyp_handle_eret(): `{body}`"
    );
}

/// The table has the length the kernel's ESR_ELx.EC field gives, and a
/// handler is where [`ENTRIES`] puts it, each class at most once.
#[test]
fn table_shape() {
    assert_eq!(TABLE_LEN as u64, 1 << ESR_EL2::EC.width());
    let mut seen = BTreeMap::new();
    for (ec, h) in ENTRIES {
        assert!(seen.insert(ec, h).is_none(), "{ec:?} twice");
        assert_eq!(HANDLERS[ec as usize], Some(h));
    }
    assert_eq!(HANDLERS.iter().flatten().count(), ENTRIES.len());
}
