// SPDX-License-Identifier: GPL-2.0

//! The exception classes of `asm/esr.h` and the exit-handler table
//! `hyp_exit_handlers[]` of `hyp/vhe/switch.c`, as the kernel's C has them
//! (read from its text, not from the generated code under test).

use std::collections::HashMap;

use super::kernel::{c_initializer, defines, num, read_kernel, strip_comments};

/// The VHE world switch: `hyp_exit_handlers[]`, `fixup_guest_exit()`.
pub const VHE_SWITCH: &str = "arch/arm64/kvm/hyp/vhe/switch.c";
/// What the VHE and nVHE world switches share: the handlers,
/// `__fixup_guest_exit()`.
pub const HYP_SWITCH: &str = "arch/arm64/kvm/hyp/include/hyp/switch.h";

/// `ESR_ELx_EC_<name>` of `asm/esr.h`, by name: the classes with a value
/// (`UL(0x..)`), read from the header, not from the generated `Ec`.
pub fn kernel_ecs() -> HashMap<String, u64> {
    let d = defines("arch/arm64/include/asm/esr.h");
    d.iter()
        .filter_map(|(k, v)| {
            let v = strip_comments(v);
            let v = v.trim().strip_prefix("UL(")?.strip_suffix(')')?;
            Some((k.strip_prefix("ESR_ELx_EC_")?.to_string(), num(v)))
        })
        .collect()
}

/// `hyp_exit_handlers[]` as the C compiler builds it: the initializer's
/// designators applied in order, a later one overriding an earlier one. Also
/// the designated (non-NULL) entries as written, in order.
pub fn c_table() -> (Vec<Option<String>>, Vec<(String, String)>) {
    let ecs = kernel_ecs();
    let max = ecs["MAX"];
    let ec = |designator: &str| -> u64 {
        if designator.chars().all(|c| c.is_ascii_digit()) {
            return num(designator);
        }
        let name = designator
            .strip_prefix("ESR_ELx_EC_")
            .unwrap_or_else(|| panic!("designator `{designator}`"));
        *ecs.get(name)
            .unwrap_or_else(|| panic!("asm/esr.h has no ESR_ELx_EC_{name}"))
    };
    let mut table: Vec<Option<String>> = vec![None; max as usize + 1];
    let mut written = Vec::new();
    let entries = c_initializer(&read_kernel(VHE_SWITCH), "hyp_exit_handlers");
    assert!(entries.len() > 5, "parsed too few entries: {entries:?}");
    for e in &entries {
        let (designator, value) = e
            .strip_prefix('[')
            .and_then(|e| e.split_once("] = "))
            .unwrap_or_else(|| panic!("not a designated initializer: `{e}`"));
        let value = (value != "NULL").then(|| value.to_string());
        let (lo, hi) = match designator.split_once(" ... ") {
            Some((lo, hi)) => (ec(lo), ec(hi)),
            None => (ec(designator), ec(designator)),
        };
        for slot in &mut table[lo as usize..=hi as usize] {
            slot.clone_from(&value);
        }
        if let Some(v) = &value {
            assert_eq!(lo, hi, "a range of handlers: `{e}`");
            written.push((designator.to_string(), v.clone()));
        }
    }
    (table, written)
}
