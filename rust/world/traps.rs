// SPDX-License-Identifier: GPL-2.0

//! The traps a VHE host sets when a vCPU is loaded and undoes when it is put,
//! and the stage-2 translation it loads: the non-nested part of
//! `__activate_traps_common()` / `__deactivate_traps_common()`
//! (`arch/arm64/kvm/hyp/include/hyp/switch.h`, Linux 6.12) and `__load_stage2()`
//! (`asm/kvm_mmu.h`), as `kvm_vcpu_load_vhe()` / `kvm_vcpu_put_vhe()` call them.
//!
//! These registers only affect EL1 and EL0, so on a VHE host, where the host
//! kernel runs at EL2, they can stay set from load to put; the run loop does not
//! touch them. What the host had before is kept in the host context, where other
//! C expects it: PMUSERENR_EL0 in `host_ctxt` (the PMU driver's IPI rewrites it
//! while `PMUSERENR_ON_CPU` is set, `arch/arm64/kvm/pmu.c`), MDCR_EL2 in
//! `host_debug_state.mdcr_el2`, the fine-grained trap registers in `host_ctxt`.
//!
//! Everything here is above the sysreg layer and safe: registers through
//! [`RegAccess`], kernel state through [`TrapContext`]; every constant comes from
//! the kernel being built (`rust/gen/sysregs.in`, `arch/arm64/tools/sysreg`).
//! The vCPU's values come typed (`Value<MDCR_EL2::Reg>`, ...) and are written
//! as they are; the host's, kept in slots shared by several registers
//! ([`HostSaved`]), and the kernel's whole-register constants are raw bits.

use crate::arch::{
    consts, RegAccess, Value, HCRX_EL2, HFGWTR_EL2, HSTR_EL2, ID_AA64PFR0_EL1, MDCR_EL2,
    PMSELR_EL0, PMUSERENR_EL0,
};

/// What the host CPUs have, as far as the load-time traps care: final
/// capabilities and static keys, fixed once KVM is up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapCaps {
    /// `kvm_arm_support_pmu_v3()`: KVM exposes a PMUv3 to guests.
    pub pmu_v3: bool,
    /// `ARM64_HAS_FGT`: fine-grained traps.
    pub fgt: bool,
    /// `ARM64_HAS_HCX`: HCRX_EL2.
    pub hcx: bool,
    /// `ARM64_WORKAROUND_AMPERE_AC03_CPU_38`: guest writes to TCR_EL1 must trap.
    pub ampere_ac03_cpu_38: bool,
    /// `ARM64_WORKAROUND_SPECULATIVE_AT` (errata 1165522, 1319367, 1530923):
    /// the stage-2 registers must be written before the guest's EL1&0 regime
    /// can be used.
    pub speculative_at: bool,
}

/// A group of fine-grained trap bits that a VM may have to UNDEF
/// (`enum fgt_group_id`: `kvm->arch.fgu[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FgtGroup {
    /// `HFGxTR_GROUP`: HFGRTR_EL2 and HFGWTR_EL2.
    Hfgxtr,
    /// `HFGITR_GROUP`.
    Hfgitr,
    /// `HDFGRTR_GROUP`: HDFGRTR_EL2 and HDFGWTR_EL2.
    Hdfgrtr,
    /// `HAFGRTR_GROUP`.
    Hafgrtr,
}

crate::arch::cpu_regs! {
    /// A fine-grained trap register (HAFGRTR_EL2 only on CPUs with AMU).
    FgtReg {
        HFGRTR_EL2, HFGWTR_EL2, HFGITR_EL2, HDFGRTR_EL2, HDFGWTR_EL2, HAFGRTR_EL2,
    }
}

/// One fine-grained trap register: its group, and which of its bits trap when
/// set (`__<reg>_MASK`) and which trap when clear (`__<reg>_nMASK`).
#[derive(Clone, Copy, Debug)]
pub struct Fgt {
    /// The register.
    pub reg: FgtReg,
    /// Its group in `kvm->arch.fgu[]`.
    pub group: FgtGroup,
    /// Positive trap bits.
    pub mask: u64,
    /// Negative trap bits (the register's "no trap" value has them set).
    pub nmask: u64,
}

/// The fine-grained trap registers, in the order the C writes them.
pub const FGT: [Fgt; 6] = [
    Fgt {
        reg: FgtReg::HFGRTR_EL2,
        group: FgtGroup::Hfgxtr,
        mask: consts::HFGRTR_EL2_MASK,
        nmask: consts::HFGRTR_EL2_NMASK,
    },
    Fgt {
        reg: FgtReg::HFGWTR_EL2,
        group: FgtGroup::Hfgxtr,
        mask: consts::HFGWTR_EL2_MASK,
        nmask: consts::HFGWTR_EL2_NMASK,
    },
    Fgt {
        reg: FgtReg::HFGITR_EL2,
        group: FgtGroup::Hfgitr,
        mask: consts::HFGITR_EL2_MASK,
        nmask: consts::HFGITR_EL2_NMASK,
    },
    Fgt {
        reg: FgtReg::HDFGRTR_EL2,
        group: FgtGroup::Hdfgrtr,
        mask: consts::HDFGRTR_EL2_MASK,
        nmask: consts::HDFGRTR_EL2_NMASK,
    },
    Fgt {
        reg: FgtReg::HDFGWTR_EL2,
        group: FgtGroup::Hdfgrtr,
        mask: consts::HDFGWTR_EL2_MASK,
        nmask: consts::HDFGWTR_EL2_NMASK,
    },
    Fgt {
        reg: FgtReg::HAFGRTR_EL2,
        group: FgtGroup::Hafgrtr,
        mask: consts::HAFGRTR_EL2_MASK,
        nmask: consts::HAFGRTR_EL2_NMASK,
    },
];

/// Where the host's value of a trap register is kept between load and put.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostSaved {
    /// `host_ctxt` PMUSERENR_EL0.
    Pmuserenr,
    /// `host_debug_state.mdcr_el2`.
    MdcrEl2,
    /// `host_ctxt` slot of a fine-grained trap register.
    Fgt(FgtReg),
}

/// The kernel state the load-time traps read and write.
pub trait TrapContext {
    /// The host's capabilities.
    fn trap_caps(&self) -> TrapCaps;

    /// `vcpu->arch.mdcr_el2`: the guest's MDCR_EL2, as `kvm_arm_setup_mdcr_el2()`
    /// computed it.
    fn vcpu_mdcr_el2(&self) -> Value<MDCR_EL2::Reg>;

    /// `vcpu->arch.hcrx_el2`.
    fn vcpu_hcrx_el2(&self) -> Value<HCRX_EL2::Reg>;

    /// `kvm->arch.fgu[group]`: the bits of `group` this VM must UNDEF.
    fn fgu(&self, group: FgtGroup) -> u64;

    /// The host's saved value in `slot`.
    fn host_saved(&self, slot: HostSaved) -> u64;

    /// Saves the host's value `val` in `slot`.
    fn set_host_saved(&mut self, slot: HostSaved, val: u64);

    /// Sets or clears the vCPU's `PMUSERENR_ON_CPU` flag.
    fn set_pmuserenr_on_cpu(&mut self, on: bool);
}

/// Whether this CPU implements the Activity Monitors (`cpu_has_amu()`: the C
/// asks each CPU, AMU may be on some CPUs only).
#[inline(always)]
fn cpu_has_amu<A: RegAccess>(regs: &mut A) -> bool {
    regs.read::<ID_AA64PFR0_EL1::Reg>()
        .field(ID_AA64PFR0_EL1::AMU)
        != 0
}

/// Whether `f` is one of the registers `__activate_fgt()`/`__deactivate_fgt()`
/// move on a CPU with (`amu`) or without AMU: HAFGRTR_EL2 only with AMU.
#[inline(always)]
fn fgt_applies(f: &Fgt, amu: bool) -> bool {
    amu || f.reg != FgtReg::HAFGRTR_EL2
}

/// Runs the closure-like `$body` for each entry of [`FGT`] in order, unrolled
/// as the C's `__activate_fgt()` lines are: each entry is a constant, so its
/// register, group and masks fold into the code (a loop over the table costs
/// a table walk and a dispatch per register at every load and put).
macro_rules! unrolled_fgt {
    (|$f:ident| $body:expr) => {
        unrolled_fgt!(@[0 1 2 3 4 5] |$f| $body)
    };
    (@[$($i:literal)*] |$f:ident| $body:expr) => {{
        const _: () = assert!(FGT.len() == [$($i),*].len(), "unrolled_fgt! lists FGT's entries");
        $({
            let $f: &Fgt = &FGT[$i];
            $body
        })*
    }};
}

/// Extra trap bits the host's errata require in `reg`: Ampere AC03_CPU_38
/// needs guest writes to TCR_EL1 trapped (HFGWTR_EL2.TCR_EL1).
#[inline(always)]
fn errata_set(caps: TrapCaps, reg: FgtReg) -> u64 {
    if caps.ampere_ac03_cpu_38 && reg == FgtReg::HFGWTR_EL2 {
        HFGWTR_EL2::TCR_EL1::SET.value()
    } else {
        0
    }
}

/// What `fgt` must hold for the VM: the register's "no trap" value with the
/// VM's UNDEF bits (`compute_undef_clr_set()`) and the errata bits applied, or
/// `None` if nothing is to be trapped and the host's value can stay.
#[inline(always)]
pub fn fgt_value(fgt: &Fgt, fgu: u64, extra_set: u64) -> Option<u64> {
    let set = (fgu & fgt.mask) | extra_set;
    let clr = fgu & fgt.nmask;
    if set == 0 && clr == 0 {
        return None;
    }
    Some((fgt.nmask | set) & !clr)
}

/// `__activate_traps_common()` for a non-nested vCPU. The caller has IRQs
/// disabled: a PMU interrupt's IPI (`kvm_set_pmuserenr()`) must see the host's
/// PMUSERENR_EL0 saved and `PMUSERENR_ON_CPU` set together, or neither.
pub fn activate<C: TrapContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    let caps = ctx.trap_caps();

    // Trap AArch32 accesses to the IMPLEMENTATION DEFINED cp15 c15 registers.
    regs.write_raw::<HSTR_EL2::Reg>(HSTR_EL2::T15);

    if caps.pmu_v3 {
        // Make EL0 PMU accesses trap to EL2. PMSELR_EL0 is cleared so that it
        // never selects the cycle counter, which would make a PMXEVCNTR_EL0
        // access UNDEF at EL1 instead of trapping.
        regs.write_raw::<PMSELR_EL0::Reg>(0);
        let host = regs.read_raw::<PMUSERENR_EL0::Reg>();
        ctx.set_host_saved(HostSaved::Pmuserenr, host);
        regs.write_raw::<PMUSERENR_EL0::Reg>(PMUSERENR_EL0::USERENR_MASK);
        ctx.set_pmuserenr_on_cpu(true);
    }

    let host = regs.read_raw::<MDCR_EL2::Reg>();
    ctx.set_host_saved(HostSaved::MdcrEl2, host);
    regs.write(ctx.vcpu_mdcr_el2());

    if caps.hcx {
        regs.write(ctx.vcpu_hcrx_el2());
    }

    if caps.fgt {
        let amu = cpu_has_amu(regs);
        unrolled_fgt!(|f| if fgt_applies(f, amu) {
            let host = f.reg.read(regs);
            ctx.set_host_saved(HostSaved::Fgt(f.reg), host);
            if let Some(v) = fgt_value(f, ctx.fgu(f.group), errata_set(caps, f.reg)) {
                f.reg.write(regs, v);
            }
        });
    }
}

/// `__deactivate_traps_common()` for a non-nested vCPU; IRQs disabled, as for
/// [`activate`].
pub fn deactivate<C: TrapContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    let caps = ctx.trap_caps();

    regs.write_raw::<MDCR_EL2::Reg>(ctx.host_saved(HostSaved::MdcrEl2));
    regs.write_raw::<HSTR_EL2::Reg>(0);

    if caps.pmu_v3 {
        regs.write_raw::<PMUSERENR_EL0::Reg>(ctx.host_saved(HostSaved::Pmuserenr));
        ctx.set_pmuserenr_on_cpu(false);
    }

    if caps.hcx {
        regs.write_raw::<HCRX_EL2::Reg>(consts::HCRX_HOST_FLAGS);
    }

    if caps.fgt {
        let amu = cpu_has_amu(regs);
        unrolled_fgt!(|f| if fgt_applies(f, amu) {
            // Only what activate() changed goes back (`__deactivate_fgt()`).
            if ctx.fgu(f.group) != 0 || errata_set(caps, f.reg) != 0 {
                f.reg.write(regs, ctx.host_saved(HostSaved::Fgt(f.reg)));
            }
        });
    }
}
