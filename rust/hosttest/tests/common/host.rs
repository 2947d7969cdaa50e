// SPDX-License-Identifier: GPL-2.0

//! The host side of load and put: the fine-grained trap registers as the test
//! sees them, written from the C (`reg_to_fgt_group_id()`,
//! `__activate_traps_hfgxtr()`'s order, `__<reg>_MASK` and `__<reg>_nMASK` of
//! `asm/kvm_arm.h`) independently of `traps::FGT`; the `kvm->arch.fgu[]`
//! values and capability combinations the tests walk; and a host CPU to load
//! a vCPU on.

use std::collections::BTreeSet;
use vhe_rs_hosttest::arch::{
    consts, FieldValue, SysReg, HAFGRTR_EL2, HCRX_EL2, HDFGRTR_EL2, HDFGWTR_EL2, HFGITR_EL2,
    HFGRTR_EL2, HFGWTR_EL2, HSTR_EL2, ID_AA64PFR0_EL1, MDCR_EL2, PMSELR_EL0, PMUSERENR_EL0,
    VTCR_EL2, VTTBR_EL2,
};
use vhe_rs_hosttest::world::traps::{FgtGroup, FgtReg, TrapCaps};

use super::cpu::{random_regs, Cpu};
use super::rng::Rng;
use super::vcpu::GROUPS;

/// A fine-grained trap register.
pub struct ModelFgt {
    pub reg: FgtReg,
    pub name: &'static str,
    pub encoding: u32,
    pub group: FgtGroup,
    /// `__<reg>_MASK`: the bits that trap when set.
    pub mask: u64,
    /// `__<reg>_nMASK`: the bits that trap when clear.
    pub nmask: u64,
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
pub const MODEL_FGT: [ModelFgt; 6] = [
    model_fgt!(HFGRTR_EL2, Hfgxtr, HFGRTR_EL2_MASK, HFGRTR_EL2_NMASK),
    model_fgt!(HFGWTR_EL2, Hfgxtr, HFGWTR_EL2_MASK, HFGWTR_EL2_NMASK),
    model_fgt!(HFGITR_EL2, Hfgitr, HFGITR_EL2_MASK, HFGITR_EL2_NMASK),
    model_fgt!(HDFGRTR_EL2, Hdfgrtr, HDFGRTR_EL2_MASK, HDFGRTR_EL2_NMASK),
    model_fgt!(HDFGWTR_EL2, Hdfgrtr, HDFGWTR_EL2_MASK, HDFGWTR_EL2_NMASK),
    model_fgt!(HAFGRTR_EL2, Hafgrtr, HAFGRTR_EL2_MASK, HAFGRTR_EL2_NMASK),
];

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
pub fn fgu_of_kind(kind: u64, g: FgtGroup, rng: &mut Rng) -> u64 {
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

/// A whole `kvm->arch.fgu[]` of random kinds.
pub fn random_fgu(rng: &mut Rng) -> [u64; 4] {
    GROUPS.map(|g| {
        let kind = rng.next();
        fgu_of_kind(kind, g, rng)
    })
}

/// `ID_AA64PFR0_EL1.AMU` values: absent, and two ways of being present.
pub fn amu_values() -> [(bool, FieldValue<ID_AA64PFR0_EL1::Reg>); 3] {
    [
        (false, ID_AA64PFR0_EL1::AMU::NI),
        (true, ID_AA64PFR0_EL1::AMU::IMP),
        (true, ID_AA64PFR0_EL1::AMU::V1P1),
    ]
}

/// Every combination of the five capability booleans.
pub fn all_caps() -> impl Iterator<Item = TrapCaps> {
    (0..32u32).map(|b| TrapCaps {
        pmu_v3: b & 1 != 0,
        fgt: b & 2 != 0,
        hcx: b & 4 != 0,
        ampere_ac03_cpu_38: b & 8 != 0,
        speculative_at: b & 16 != 0,
    })
}

pub fn random_caps(rng: &mut Rng) -> TrapCaps {
    TrapCaps {
        pmu_v3: rng.bool(),
        fgt: rng.bool(),
        hcx: rng.bool(),
        ampere_ac03_cpu_38: rng.bool(),
        speculative_at: rng.bool(),
    }
}

/// The trap registers `activate`/`deactivate` may touch, by name.
pub fn trap_reg_names() -> BTreeSet<&'static str> {
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
pub struct HostTraps {
    pub hstr: u64,
    pub pmuserenr: u64,
    pub pmselr: u64,
    pub mdcr: u64,
    pub hcrx: u64,
    /// In [`MODEL_FGT`]'s order.
    pub fgt: [u64; 6],
    pub pfr0: u64,
}

/// A CPU where every register the code under test may touch holds a value
/// (random, except HSTR_EL2 = 0 and HCRX_EL2 = HCRX_HOST_FLAGS, the values a
/// VHE host runs with, and the given AMU field), and its trap registers.
pub fn host_cpu(rng: &mut Rng, amu: FieldValue<ID_AA64PFR0_EL1::Reg>) -> (Cpu, HostTraps) {
    let mut regs = random_regs(rng);
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
    (Cpu::new(regs), h)
}
