// SPDX-License-Identifier: GPL-2.0

//! The guest's system registers that a VHE `vcpu_load` puts on the CPU and
//! `vcpu_put` takes back, described as data ([`TABLE`]), and the steps that move
//! them ([`restore_deferred`], [`save_deferred`]); and the few that move at
//! every entry and exit of the run loop ([`save_host_state`],
//! [`restore_guest_state`], [`save_guest_state`], [`restore_host_state`]).
//!
//! Today's C (Linux 6.12): `arch/arm64/kvm/hyp/include/hyp/sysreg-sr.h` (the
//! groups: `__sysreg_{save,restore}_{common,user,el1,el2_return}_state`,
//! `__sysreg32_{save,restore}_state`) and `arch/arm64/kvm/hyp/vhe/sysreg-sr.c`
//! (`__vcpu_load_switch_sysregs`, `__vcpu_put_switch_sysregs`: which groups move at
//! load and put on VHE; `sysreg_{save,restore}_{host,guest}_state_vhe`: which move
//! at every entry and exit). On a VHE host the host kernel runs at EL2 and never uses
//! the EL1/EL0 registers of the guest, so they are switched only when the vCPU is
//! loaded on or put off a CPU ("deferred"), not at every entry and exit:
//!
//! * [`Group::El1`], [`Group::User`] and [`Group::Aarch32`] move at load/put;
//! * [`Group::Common`] and [`Group::El2Return`] move at every entry/exit (the run
//!   loop, `crate::world::run`), with the guest's PC and PSTATE
//!   ([`El2ReturnContext`]): [`save_host_state`] and [`restore_guest_state`]
//!   before the guest is first entered, [`save_guest_state`] and
//!   [`restore_host_state`] after it exits for good (not around the re-entries
//!   of the loop); [`restore_deferred`] and [`save_deferred`] leave them alone;
//! * [`Group::Fp`] is ZCR_EL1, which the kernel lists as live on the CPU (see
//!   below) but which the FP lazy switch (`crate::world::fp`) moves, not these groups.
//!
//! While the vCPU's `SYSREGS_ON_CPU` flag is set, `vcpu_read_sys_reg()` and
//! `vcpu_write_sys_reg()` (`arch/arm64/kvm/sys_regs.c`) access the registers that
//! `__vcpu_read_sys_reg_from_cpu()` / `__vcpu_write_sys_reg_to_cpu()`
//! (`asm/kvm_host.h`) list on the CPU instead of in the vCPU. [`Entry::live`]
//! marks exactly those (the host tests compare them with the header, both ways),
//! and [`read_from_cpu`] / [`write_to_cpu`] are the Rust form of the two switches.
//!
//! Nested virtualization is not covered: the C adds a `dsb(nsh)` at load for NV
//! vCPUs and keeps vEL2 registers elsewhere; the backend declines NV VMs.
//!
//! Everything here is above the sysreg layer: registers are reached through
//! [`RegAccess`] with the types generated from the kernel ([`CpuReg`] names them),
//! the vCPU's saved state through [`SysregContext`]. No `unsafe`.

use crate::arch::{cpu_regs, RegAccess, Value, ELR_EL2, SPSR_EL2};
use crate::world::pstate;

/// Declares [`VcpuSysReg`]: the `enum vcpu_sysreg` indices (`asm/kvm_host.h`)
/// this file uses, by their C names.
macro_rules! vcpu_sysregs {
    ($($name:ident),* $(,)?) => {
        /// An index of the kernel's `enum vcpu_sysreg` (`asm/kvm_host.h`): a slot of
        /// `vcpu->arch.ctxt.sys_regs[]`, by its C name.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum VcpuSysReg {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                $name,
            )*
        }

        impl VcpuSysReg {
            /// Every index declared here.
            pub const ALL: &'static [VcpuSysReg] = &[$(VcpuSysReg::$name,)*];

            /// The C name, e.g. `"SCTLR_EL1"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(VcpuSysReg::$name => stringify!($name),)*
                }
            }

        }
    };
}

/// Calls the macro `$m` with every `enum vcpu_sysreg` name vhe-rs uses: the
/// one list, from which this module declares [`VcpuSysReg`] and the binding
/// layer maps each to the kernel's index (`crate::kvm`).
macro_rules! with_vcpu_sysregs {
    ($m:ident) => {
        $m! {
        MPIDR_EL1, SCTLR_EL1, CPACR_EL1, TTBR0_EL1, TTBR1_EL1, TCR_EL1, TCR2_EL1,
        PIR_EL1, PIRE0_EL1, POR_EL1, ESR_EL1, AFSR0_EL1, AFSR1_EL1, FAR_EL1, MAIR_EL1,
        VBAR_EL1, CONTEXTIDR_EL1, AMAIR_EL1, CNTKCTL_EL1, PAR_EL1, TPIDR_EL1, TFSR_EL1,
        TFSRE0_EL1, SP_EL1, ELR_EL1, SPSR_EL1,
        TPIDR_EL0, TPIDRRO_EL0,
        DACR32_EL2, IFSR32_EL2, DBGVCR32_EL2,
        MDSCR_EL1, POR_EL0, DISR_EL1,
        ZCR_EL1,
            }
    };
}
#[allow(unused_imports)]
pub(crate) use with_vcpu_sysregs;

with_vcpu_sysregs!(vcpu_sysregs);

// With HCR_EL2.E2H set, the `_EL1` encodings reach the EL2 registers from EL2: the
// guest's EL1 registers are reached through the `_EL12` aliases. TPIDR_EL1,
// PAR_EL1, SP_EL1, MDSCR_EL1 and the EL0 registers are not redirected.
cpu_regs! {
    /// A CPU register that holds guest state on a VHE host.
    CpuReg {
    VMPIDR_EL2, SCTLR_EL12, CPACR_EL12, TTBR0_EL12, TTBR1_EL12, TCR_EL12,
    TCR2_EL12, PIR_EL12, PIRE0_EL12, POR_EL12, ESR_EL12, AFSR0_EL12, AFSR1_EL12,
    FAR_EL12, MAIR_EL12, VBAR_EL12, CONTEXTIDR_EL12, AMAIR_EL12, CNTKCTL_EL12,
    PAR_EL1, TPIDR_EL1, TFSR_EL12, TFSRE0_EL1, SP_EL1, ELR_EL12, SPSR_EL12,
    TPIDR_EL0, TPIDRRO_EL0,
    SPSR_abt, SPSR_und, SPSR_irq, SPSR_fiq, DACR32_EL2, IFSR32_EL2, DBGVCR32_EL2,
    MDSCR_EL1, POR_EL0, VDISR_EL2,
    ZCR_EL12,
    }
}

/// A banked AArch32 SPSR kept in `struct kvm_cpu_context` (`spsr_abt`, ...),
/// outside `sys_regs[]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Spsr32 {
    /// `spsr_abt`.
    Abt,
    /// `spsr_und`.
    Und,
    /// `spsr_irq`.
    Irq,
    /// `spsr_fiq`.
    Fiq,
}

/// Where the vCPU keeps a register while it is not on the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VcpuSlot {
    /// `ctxt.sys_regs[r]` (`ctxt_sys_reg(ctxt, r)`, `__vcpu_sys_reg(vcpu, r)`).
    Sys(VcpuSysReg),
    /// `ctxt.spsr_abt` and its siblings.
    Spsr32(Spsr32),
}

impl VcpuSlot {
    /// The C name: the `enum vcpu_sysreg` name, or the `kvm_cpu_context` field
    /// (`"spsr_abt"`).
    pub const fn name(self) -> &'static str {
        match self {
            VcpuSlot::Sys(r) => r.name(),
            VcpuSlot::Spsr32(Spsr32::Abt) => "spsr_abt",
            VcpuSlot::Spsr32(Spsr32::Und) => "spsr_und",
            VcpuSlot::Spsr32(Spsr32::Irq) => "spsr_irq",
            VcpuSlot::Spsr32(Spsr32::Fiq) => "spsr_fiq",
        }
    }

    /// A number unique to the slot (for the table's compile-time checks).
    const fn key(self) -> u32 {
        match self {
            VcpuSlot::Sys(r) => r as u32,
            VcpuSlot::Spsr32(b) => 0x1000 + b as u32,
        }
    }
}

/// The save/restore groups of `hyp/include/hyp/sysreg-sr.h`, as a VHE host uses
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// `__sysreg_{save,restore}_el1_state`: the EL1 registers. Load/put.
    El1,
    /// `__sysreg_{save,restore}_user_state`: TPIDR_EL0, TPIDRRO_EL0. Load/put, and
    /// the host's values are saved at load and restored at put.
    User,
    /// `__sysreg32_{save,restore}_state`: the AArch32 banked SPSRs and the
    /// `*32_EL2` registers, for a vCPU whose EL1 is AArch32. Load/put.
    Aarch32,
    /// `__sysreg_{save,restore}_common_state`: MDSCR_EL1, POR_EL0. Every entry/exit,
    /// the host's and the guest's ([`save_host_state`], [`restore_guest_state`],
    /// [`save_guest_state`], [`restore_host_state`]).
    Common,
    /// `__sysreg_{save,restore}_el2_return_state`: the guest's PC and PSTATE (in
    /// ELR_EL2/SPSR_EL2; not `sys_regs[]`, and PSTATE is translated, so not in
    /// [`TABLE`] but reached through [`El2ReturnContext`]) and DISR_EL1
    /// (VDISR_EL2). Every entry/exit, the guest's only ([`restore_guest_state`],
    /// [`save_guest_state`]).
    El2Return,
    /// ZCR_EL1: owned by the FP lazy switch (`crate::world::fp`), in no group of
    /// `sysreg-sr.h`, but listed live on the CPU by `asm/kvm_host.h`.
    Fp,
}

impl Group {
    /// Whether `vcpu_load`/`vcpu_put` move this group ("deferred").
    pub const fn is_deferred(self) -> bool {
        matches!(self, Group::El1 | Group::User | Group::Aarch32)
    }
}

/// The order `__vcpu_load_switch_sysregs` restores the deferred groups in.
///
/// The 32-bit state goes first: Cortex-A57 erratum 852523 and Cortex-A72 erratum
/// 853709 require the AArch32 registers (the banked SPSRs, DACR32_EL2, ...) to be
/// restored before the EL1 system registers.
pub const LOAD_ORDER: [Group; 3] = [Group::Aarch32, Group::User, Group::El1];

/// The order `__vcpu_put_switch_sysregs` saves the deferred groups in.
pub const PUT_ORDER: [Group; 3] = [Group::El1, Group::User, Group::Aarch32];

/// A condition the C checks before touching a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Feature {
    /// `ctxt_has_tcrx()`: the host has FEAT_TCR2 and the VM's ID registers expose it.
    Tcr2,
    /// `ctxt_has_s1pie()`: FEAT_S1PIE, likewise.
    S1pie,
    /// `ctxt_has_s1poe()`: FEAT_S1POE, likewise.
    S1poe,
    /// `ctxt_has_mte()`: the VM has MTE (`kvm_has_mte()`).
    Mte,
    /// `vcpu_el1_is_32bit()`: the vCPU's EL1 is AArch32.
    El1Is32Bit,
    /// `cpus_have_final_cap(ARM64_HAS_RAS_EXTN)`.
    Ras,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 6] = [
        Feature::Tcr2,
        Feature::S1pie,
        Feature::S1poe,
        Feature::Mte,
        Feature::El1Is32Bit,
        Feature::Ras,
    ];

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of [`Feature`]s: what a vCPU has, or what a register needs.
///
/// # Invariants
///
/// Only the bits of [`Feature::ALL`] are set.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Features(u8);

impl core::fmt::Debug for Features {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set()
            .entries(Feature::ALL.iter().filter(|x| self.has(**x)))
            .finish()
    }
}

impl Features {
    /// No feature.
    pub const NONE: Features = Features(0);

    const MASK: u8 = (1 << Feature::ALL.len()) - 1;

    /// The set of `bits` (bit `n` is `Feature::ALL[n]`); unknown bits are dropped.
    pub const fn from_bits(bits: u8) -> Features {
        // INVARIANT: masked to the known features.
        Features(bits & Self::MASK)
    }

    /// Its bits, as [`Features::from_bits`] takes them.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// This set with `f` added.
    #[must_use]
    pub const fn with(self, f: Feature) -> Features {
        // INVARIANT: `f.bit()` is one of the known features.
        Features(self.0 | f.bit())
    }

    /// Whether `f` is in the set.
    pub const fn has(self, f: Feature) -> bool {
        self.0 & f.bit() != 0
    }

    /// Whether every feature of `needed` is in the set (a register gated by
    /// `needed` may be touched).
    pub const fn allows(self, needed: Features) -> bool {
        self.0 & needed.0 == needed.0
    }
}

/// When `vcpu_load` restores a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Load {
    /// Not at load (not a deferred register).
    No,
    /// Ahead of the rest of its group, in table order: MPIDR_EL1 (into VMPIDR_EL2),
    /// SCTLR_EL1 and TCR_EL1, which `__sysreg_restore_el1_state` writes first.
    First,
    /// In table order, after the group's [`Load::First`] registers.
    InOrder,
}

/// One guest register: where the vCPU keeps it, where it lives on the CPU, and
/// when it moves.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Where the vCPU keeps it.
    pub vcpu: VcpuSlot,
    /// The CPU register it lives in while the vCPU is loaded (or running).
    pub cpu: CpuReg,
    /// Its group in `sysreg-sr.h`.
    pub group: Group,
    /// The features it needs: the C touches it only when all are present.
    pub gate: Features,
    /// Whether and when `vcpu_load` restores it.
    pub load: Load,
    /// Whether `vcpu_put` saves it.
    pub put: bool,
    /// Whether `__vcpu_read_sys_reg_from_cpu()` / `__vcpu_write_sys_reg_to_cpu()`
    /// list it: `vcpu_read_sys_reg()` reads it from [`Entry::cpu`] while
    /// `SYSREGS_ON_CPU` is set.
    pub live: bool,
}

impl Entry {
    /// An entry, field by field in declaration order (the table's columns).
    const fn new(
        vcpu: VcpuSlot,
        cpu: CpuReg,
        group: Group,
        gate: Features,
        load: Load,
        put: bool,
        live: bool,
    ) -> Entry {
        Entry {
            vcpu,
            cpu,
            group,
            gate,
            load,
            put,
            live,
        }
    }

    /// Whether `vcpu_load`/`vcpu_put` move it.
    pub const fn is_deferred(&self) -> bool {
        !matches!(self.load, Load::No) || self.put
    }
}

const G0: Features = Features::NONE;
const TCR2: Features = Features::NONE.with(Feature::Tcr2);
const S1PIE: Features = TCR2.with(Feature::S1pie);
const S1POE_EL1: Features = TCR2.with(Feature::S1poe);
const S1POE: Features = Features::NONE.with(Feature::S1poe);
const MTE: Features = Features::NONE.with(Feature::Mte);
const A32: Features = Features::NONE.with(Feature::El1Is32Bit);
const RAS: Features = Features::NONE.with(Feature::Ras);

/// `VcpuSlot::Sys(r)`, for the table.
const fn sys(r: VcpuSysReg) -> VcpuSlot {
    VcpuSlot::Sys(r)
}

/// Every guest register of the groups of `sysreg-sr.h` on a VHE host, and
/// ZCR_EL1.
///
/// Within a group, the order is the order `__sysreg_save_*` saves in (and, with
/// [`Load::First`], the order the restore writes in). How the special cases are
/// represented:
///
/// * MPIDR_EL1: written to VMPIDR_EL2 at load, never saved (the guest cannot
///   change it) and, as the kernel's comment requires, not live.
/// * PAR_EL1: the one PAR_EL1 (not redirected by E2H). The C reads it with
///   `read_sysreg_par()`, which brackets the `mrs` with `dmb sy` on CPUs with
///   erratum 1508412 (`ARM64_WORKAROUND_1508412`); [`save_deferred`] does the
///   same ([`SysregContext::workaround_1508412`]). The kernel's live list reads
///   it the same way; the tests map `read_sysreg_par()` to PAR_EL1.
/// * DACR32_EL2, IFSR32_EL2, DBGVCR32_EL2: the 32-bit group, moved only for a
///   vCPU with AArch32 EL1 (DBGVCR32_EL2 unconditionally then: the C's
///   `has_vhe() || DEBUG_DIRTY` is always true on VHE). The kernel lists them
///   live unconditionally; for an AArch64 vCPU the CPU holds whatever was there.
/// * The banked SPSRs: `kvm_cpu_context` fields, not `sys_regs[]` ([`Spsr32`]).
/// * TCR2_EL1, PIR_EL1, PIRE0_EL1, POR_EL1, TFSR_EL1, TFSRE0_EL1, SP_EL1: moved
///   at load/put when their feature is present, but 6.12 does not list them live
///   (`vcpu_read_sys_reg()` returns the in-memory copy while the vCPU is
///   loaded). `live: false` records the kernel as it is.
/// * ZCR_EL1: live in the kernel's list but FP-owned: [`Group::Fp`], neither
///   restored nor saved here.
/// * The guest's PC and PSTATE (ELR_EL2/SPSR_EL2 at every entry) are
///   `ctxt.regs`, not `sys_regs[]`, and the PSTATE is translated on the way in
///   ([`crate::world::pstate::el2_return_spsr`]): not entries here, but moved
///   with [`Group::El2Return`] by [`restore_guest_state`] / [`save_guest_state`]
///   through [`El2ReturnContext`].
#[rustfmt::skip]
pub const TABLE: &[Entry] = &[
    //         vCPU register                       CPU register (VHE)        group             gate        load           put    live
    // __sysreg_save_el1_state / __sysreg_restore_el1_state.
    Entry::new(sys(VcpuSysReg::MPIDR_EL1),         CpuReg::VMPIDR_EL2,       Group::El1,       G0,         Load::First,   false, false),
    Entry::new(sys(VcpuSysReg::SCTLR_EL1),         CpuReg::SCTLR_EL12,       Group::El1,       G0,         Load::First,   true,  true),
    Entry::new(sys(VcpuSysReg::CPACR_EL1),         CpuReg::CPACR_EL12,       Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::TTBR0_EL1),         CpuReg::TTBR0_EL12,       Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::TTBR1_EL1),         CpuReg::TTBR1_EL12,       Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::TCR_EL1),           CpuReg::TCR_EL12,         Group::El1,       G0,         Load::First,   true,  true),
    Entry::new(sys(VcpuSysReg::TCR2_EL1),          CpuReg::TCR2_EL12,        Group::El1,       TCR2,       Load::InOrder, true,  false),
    Entry::new(sys(VcpuSysReg::PIR_EL1),           CpuReg::PIR_EL12,         Group::El1,       S1PIE,      Load::InOrder, true,  false),
    Entry::new(sys(VcpuSysReg::PIRE0_EL1),         CpuReg::PIRE0_EL12,       Group::El1,       S1PIE,      Load::InOrder, true,  false),
    Entry::new(sys(VcpuSysReg::POR_EL1),           CpuReg::POR_EL12,         Group::El1,       S1POE_EL1,  Load::InOrder, true,  false),
    Entry::new(sys(VcpuSysReg::ESR_EL1),           CpuReg::ESR_EL12,         Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::AFSR0_EL1),         CpuReg::AFSR0_EL12,       Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::AFSR1_EL1),         CpuReg::AFSR1_EL12,       Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::FAR_EL1),           CpuReg::FAR_EL12,         Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::MAIR_EL1),          CpuReg::MAIR_EL12,        Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::VBAR_EL1),          CpuReg::VBAR_EL12,        Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::CONTEXTIDR_EL1),    CpuReg::CONTEXTIDR_EL12,  Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::AMAIR_EL1),         CpuReg::AMAIR_EL12,       Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::CNTKCTL_EL1),       CpuReg::CNTKCTL_EL12,     Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::PAR_EL1),           CpuReg::PAR_EL1,          Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::TPIDR_EL1),         CpuReg::TPIDR_EL1,        Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::TFSR_EL1),          CpuReg::TFSR_EL12,        Group::El1,       MTE,        Load::InOrder, true,  false),
    Entry::new(sys(VcpuSysReg::TFSRE0_EL1),        CpuReg::TFSRE0_EL1,       Group::El1,       MTE,        Load::InOrder, true,  false),
    Entry::new(sys(VcpuSysReg::SP_EL1),            CpuReg::SP_EL1,           Group::El1,       G0,         Load::InOrder, true,  false),
    Entry::new(sys(VcpuSysReg::ELR_EL1),           CpuReg::ELR_EL12,         Group::El1,       G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::SPSR_EL1),          CpuReg::SPSR_EL12,        Group::El1,       G0,         Load::InOrder, true,  true),
    // __sysreg_save_user_state / __sysreg_restore_user_state.
    Entry::new(sys(VcpuSysReg::TPIDR_EL0),         CpuReg::TPIDR_EL0,        Group::User,      G0,         Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::TPIDRRO_EL0),       CpuReg::TPIDRRO_EL0,      Group::User,      G0,         Load::InOrder, true,  true),
    // __sysreg32_save_state / __sysreg32_restore_state.
    Entry::new(VcpuSlot::Spsr32(Spsr32::Abt),      CpuReg::SPSR_abt,         Group::Aarch32,   A32,        Load::InOrder, true,  false),
    Entry::new(VcpuSlot::Spsr32(Spsr32::Und),      CpuReg::SPSR_und,         Group::Aarch32,   A32,        Load::InOrder, true,  false),
    Entry::new(VcpuSlot::Spsr32(Spsr32::Irq),      CpuReg::SPSR_irq,         Group::Aarch32,   A32,        Load::InOrder, true,  false),
    Entry::new(VcpuSlot::Spsr32(Spsr32::Fiq),      CpuReg::SPSR_fiq,         Group::Aarch32,   A32,        Load::InOrder, true,  false),
    Entry::new(sys(VcpuSysReg::DACR32_EL2),        CpuReg::DACR32_EL2,       Group::Aarch32,   A32,        Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::IFSR32_EL2),        CpuReg::IFSR32_EL2,       Group::Aarch32,   A32,        Load::InOrder, true,  true),
    Entry::new(sys(VcpuSysReg::DBGVCR32_EL2),      CpuReg::DBGVCR32_EL2,     Group::Aarch32,   A32,        Load::InOrder, true,  true),
    // __sysreg_{save,restore}_common_state: every entry/exit.
    Entry::new(sys(VcpuSysReg::MDSCR_EL1),         CpuReg::MDSCR_EL1,        Group::Common,    G0,         Load::No,      false, false),
    Entry::new(sys(VcpuSysReg::POR_EL0),           CpuReg::POR_EL0,          Group::Common,    S1POE,      Load::No,      false, false),
    // __sysreg_{save,restore}_el2_return_state: every entry/exit.
    Entry::new(sys(VcpuSysReg::DISR_EL1),          CpuReg::VDISR_EL2,        Group::El2Return, RAS,        Load::No,      false, false),
    // FP-owned (crate::world::fp); live on the CPU per asm/kvm_host.h.
    Entry::new(sys(VcpuSysReg::ZCR_EL1),           CpuReg::ZCR_EL12,         Group::Fp,        G0,         Load::No,      false, true),
];

/// The table's consistency rules, checked at compile time (in the module and in
/// the host build alike): each vCPU slot appears once; only the deferred groups
/// move at load/put; every deferred register except MPIDR_EL1 is both restored
/// and saved; a live register is either moved at load/put or FP-owned.
const fn table_is_consistent(t: &[Entry]) -> bool {
    let mut i = 0;
    while i < t.len() {
        let e = &t[i];
        let deferred = e.is_deferred();
        if deferred != e.group.is_deferred() {
            return false;
        }
        if deferred && !e.put && e.vcpu.key() != VcpuSlot::Sys(VcpuSysReg::MPIDR_EL1).key() {
            return false;
        }
        if deferred && matches!(e.load, Load::No) {
            return false;
        }
        if e.live && !(deferred && e.put) && !matches!(e.group, Group::Fp) {
            return false;
        }
        let mut j = i + 1;
        while j < t.len() {
            if t[j].vcpu.key() == e.vcpu.key() {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const _: () = assert!(
    table_is_consistent(TABLE),
    "rust/world/sysreg_sr.rs: TABLE breaks a rule of table_is_consistent()"
);

/// The vCPU state these steps need, as the kernel keeps it.
pub trait SysregContext {
    /// The guest's saved value of `slot` (`vcpu->arch.ctxt`).
    fn guest(&self, slot: VcpuSlot) -> u64;

    /// Stores `val` as the guest's saved value of `slot`.
    fn set_guest(&mut self, slot: VcpuSlot, val: u64);

    /// The host's saved value of `slot` (`host_data->host_ctxt`); only the
    /// [`Group::User`] (load/put) and [`Group::Common`] (every entry/exit)
    /// registers are asked for.
    fn host(&self, slot: VcpuSlot) -> u64;

    /// Stores `val` as the host's saved value of `slot` ([`Group::User`] and
    /// [`Group::Common`] only).
    fn set_host(&mut self, slot: VcpuSlot, val: u64);

    /// What this vCPU has on this host, as the C's `ctxt_has_*()`,
    /// `vcpu_el1_is_32bit()` and `cpus_have_final_cap()` answer it. Asked once per
    /// step.
    fn features(&self) -> Features;

    /// Sets (`true`) or clears the vCPU's `SYSREGS_ON_CPU` flag.
    fn set_sysregs_on_cpu(&mut self, on: bool);

    /// Whether the host has Cortex-A77 erratum 1508412
    /// (`ARM64_WORKAROUND_1508412`): a read of PAR_EL1 must be bracketed by
    /// `dmb sy` (`read_sysreg_par()`).
    fn workaround_1508412(&self) -> bool;
}

/// Reads the CPU register of `e` for saving, as the C's save functions do:
/// PAR_EL1 through `read_sysreg_par()` (erratum 1508412: a `dmb sy` on each
/// side, so that the read cannot observe a PAR_EL1 from a speculative AT).
#[inline(always)]
fn save_read<A: RegAccess>(e: &Entry, regs: &mut A, workaround_1508412: bool) -> u64 {
    if workaround_1508412 && e.cpu == CpuReg::PAR_EL1 {
        regs.dmb_sy();
        let v = e.cpu.read(regs);
        regs.dmb_sy();
        v
    } else {
        e.cpu.read(regs)
    }
}

/// Whether entry `e` is in `group` and moves at load ([`Load::First`] pass or
/// the [`Load::InOrder`] pass) or at put.
const fn in_plan(e: &Entry, group: Group, pass: Pass) -> bool {
    if e.group as u8 != group as u8 {
        return false;
    }
    match pass {
        Pass::LoadFirst => matches!(e.load, Load::First),
        Pass::LoadRest => matches!(e.load, Load::InOrder),
        Pass::Put => e.put,
        Pass::Any => true,
    }
}

/// The passes a plan makes over the table.
#[derive(Clone, Copy)]
enum Pass {
    LoadFirst,
    LoadRest,
    Put,
    Any,
}

/// The passes of the load plan, per group of [`LOAD_ORDER`]; of the put plan,
/// per group of [`PUT_ORDER`]; and of the host's user registers.
const LOAD_PASSES: [Pass; 2] = [Pass::LoadFirst, Pass::LoadRest];
const PUT_PASSES: [Pass; 1] = [Pass::Put];
const USER_ORDER: [Group; 1] = [Group::User];
const ANY_PASSES: [Pass; 1] = [Pass::Any];

/// Walks a plan: for each group, for each pass, the group's entries of that pass
/// in table order. Writes their table indices to `out` while it has room and
/// returns how many there are (all features).
const fn walk_plan(groups: &[Group], passes: &[Pass], out: &mut [u8]) -> usize {
    let mut n = 0;
    let mut g = 0;
    while g < groups.len() {
        let mut p = 0;
        while p < passes.len() {
            let mut i = 0;
            while i < TABLE.len() {
                if in_plan(&TABLE[i], groups[g], passes[p]) {
                    if n < out.len() {
                        out[n] = i as u8;
                    }
                    n += 1;
                }
                i += 1;
            }
            p += 1;
        }
        g += 1;
    }
    n
}

/// The number of table entries a plan takes.
const fn plan_len(groups: &[Group], passes: &[Pass]) -> usize {
    walk_plan(groups, passes, &mut [])
}

/// The table indices of a plan, in order. Computed at compile time, so the
/// steps walk one short list instead of filtering the table per group.
const fn plan<const N: usize>(groups: &[Group], passes: &[Pass]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = walk_plan(groups, passes, &mut out);
    assert!(n == N && TABLE.len() <= u8::MAX as usize);
    out
}

const LOAD_LEN: usize = plan_len(&LOAD_ORDER, &LOAD_PASSES);
const PUT_LEN: usize = plan_len(&PUT_ORDER, &PUT_PASSES);
const USER_LEN: usize = plan_len(&USER_ORDER, &ANY_PASSES);
/// What `vcpu_load` restores, in order (before feature gates).
const LOAD_PLAN: [u8; LOAD_LEN] = plan(&LOAD_ORDER, &LOAD_PASSES);
/// What `vcpu_put` saves, in order (before feature gates).
const PUT_PLAN: [u8; PUT_LEN] = plan(&PUT_ORDER, &PUT_PASSES);
/// The user registers, whose host values load saves and put restores.
const USER_PLAN: [u8; USER_LEN] = plan(&USER_ORDER, &ANY_PASSES);

const COMMON_ORDER: [Group; 1] = [Group::Common];
const EL2_RETURN_ORDER: [Group; 1] = [Group::El2Return];
const COMMON_LEN: usize = plan_len(&COMMON_ORDER, &ANY_PASSES);
const EL2_RETURN_LEN: usize = plan_len(&EL2_RETURN_ORDER, &ANY_PASSES);
/// What `__sysreg_{save,restore}_common_state` move, in order (before feature
/// gates), for the host and the guest alike.
const COMMON_PLAN: [u8; COMMON_LEN] = plan(&COMMON_ORDER, &ANY_PASSES);
/// The `sys_regs[]` registers `__sysreg_{save,restore}_el2_return_state` move
/// after the PC and PSTATE (before feature gates).
const EL2_RETURN_PLAN: [u8; EL2_RETURN_LEN] = plan(&EL2_RETURN_ORDER, &ANY_PASSES);

/// The entries of `plan` that `features` allows, in order.
fn plan_entries(plan: &'static [u8], features: Features) -> impl Iterator<Item = &'static Entry> {
    plan.iter()
        .filter_map(|&i| TABLE.get(i as usize))
        .filter(move |e| features.allows(e.gate))
}

/// The registers `vcpu_load` restores for a vCPU with `features`, in order:
/// [`LOAD_ORDER`]'s groups, each one's [`Load::First`] registers then the rest.
pub fn load_plan(features: Features) -> impl Iterator<Item = &'static Entry> {
    plan_entries(&LOAD_PLAN, features)
}

/// The registers `vcpu_put` saves for a vCPU with `features`, in order:
/// [`PUT_ORDER`]'s groups, each in table order.
pub fn put_plan(features: Features) -> impl Iterator<Item = &'static Entry> {
    plan_entries(&PUT_PLAN, features)
}

// The load and put steps below walk their plans one entry per call of a function generic over
// the entry's position `I`: with `I` a constant, the compiler reads the entry
// from the constant plan and table at compile time and each call becomes the
// one `ldr`/`msr` (or `mrs`/`str`) pair the C has, with a feature test only for
// gated registers. The behaviour is exactly that of walking `load_plan()` /
// `put_plan()` (the host tests check both).

/// The most entries a plan may have: [`unrolled!`] calls positions `0..MAX_PLAN`.
const MAX_PLAN: usize = 48;

const _: () = assert!(
    LOAD_LEN <= MAX_PLAN
        && PUT_LEN <= MAX_PLAN
        && USER_LEN <= MAX_PLAN
        && COMMON_LEN <= MAX_PLAN
        && EL2_RETURN_LEN <= MAX_PLAN,
    "rust/world/sysreg_sr.rs: a plan is longer than unrolled! covers"
);

/// Calls `$f::<I, _, _>(args)` for every position `I` in `0..MAX_PLAN`.
macro_rules! unrolled {
    ($f:ident $args:tt) => {
        unrolled!(@ $f $args
            0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23
            24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47)
    };
    (@ $f:ident $args:tt $($i:literal)*) => {
        $( $f::<$i, _, _> $args; )*
    };
}

/// Entry `I` of `plan` if `features` allows it.
#[inline(always)]
fn plan_entry<const I: usize>(plan: &'static [u8], features: Features) -> Option<&'static Entry> {
    let e = TABLE.get(*plan.get(I)? as usize)?;
    features.allows(e.gate).then_some(e)
}

#[inline(always)]
fn save_guest<const I: usize, C: SysregContext, A: RegAccess>(
    ctx: &mut C,
    regs: &mut A,
    features: Features,
    par_dmb: bool,
) {
    if let Some(e) = plan_entry::<I>(&PUT_PLAN, features) {
        ctx.set_guest(e.vcpu, save_read(e, regs, par_dmb));
    }
}

/// `__vcpu_load_switch_sysregs` on a VHE host (non-NV vCPU): saves the host's
/// user registers, puts the guest's deferred registers on the CPU and sets
/// `SYSREGS_ON_CPU`.
///
/// The order is the C's: the 32-bit state before the EL1 registers (Cortex-A57
/// erratum 852523, Cortex-A72 erratum 853709), see [`LOAD_ORDER`].
pub fn restore_deferred<C: SysregContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    let features = ctx.features();
    // __sysreg_save_user_state(host_ctxt).
    unrolled!(save_to(&USER_PLAN, ctx, regs, features, Side::Host));
    // __sysreg32_restore_state, __sysreg_restore_user_state,
    // __sysreg_restore_el1_state: 32-bit first (errata 852523/853709).
    unrolled!(restore_from(&LOAD_PLAN, ctx, regs, features, Side::Guest));
    ctx.set_sysregs_on_cpu(true);
}

/// `__vcpu_put_switch_sysregs` on a VHE host: saves the guest's deferred
/// registers into the vCPU, puts the host's user registers back and clears
/// `SYSREGS_ON_CPU`.
pub fn save_deferred<C: SysregContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    let features = ctx.features();
    // __sysreg_save_el1_state, __sysreg_save_user_state, __sysreg32_save_state.
    let par_dmb = ctx.workaround_1508412();
    unrolled!(save_guest(ctx, regs, features, par_dmb));
    // __sysreg_restore_user_state(host_ctxt).
    unrolled!(restore_from(&USER_PLAN, ctx, regs, features, Side::Host));
    ctx.set_sysregs_on_cpu(false);
}

// ---------------------------------------------------------------------------
// Every entry and exit: `hyp/vhe/sysreg-sr.c`'s `sysreg_*_state_vhe()`.

/// The vCPU's PC and PSTATE, `vcpu->arch.ctxt.regs.pc` and `.pstate`: the
/// guest's return state at EL2 (ELR_EL2, SPSR_EL2), which
/// `__sysreg_{save,restore}_el2_return_state` and the exit fixup move. They
/// live in `struct user_pt_regs`, not in `sys_regs[]`, hence apart from
/// [`SysregContext`].
pub trait El2ReturnContext {
    /// The vCPU's saved PC, `*vcpu_pc(vcpu)`, as ELR_EL2 holds it.
    fn pc(&self) -> Value<ELR_EL2::Reg>;

    /// Sets the vCPU's saved PC.
    fn set_pc(&mut self, val: Value<ELR_EL2::Reg>);

    /// The vCPU's saved PSTATE, `*vcpu_cpsr(vcpu)`, in SPSR_EL2's layout.
    fn pstate(&self) -> Value<SPSR_EL2::Reg>;

    /// Sets the vCPU's saved PSTATE.
    fn set_pstate(&mut self, val: Value<SPSR_EL2::Reg>);
}

/// Whose context a move saves into or restores from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `host_data->host_ctxt` ([`SysregContext::host`]).
    Host,
    /// `vcpu->arch.ctxt` ([`SysregContext::guest`]).
    Guest,
}

/// Entry `I` of `plan`, if `features` allows it, from the CPU into `side`'s
/// context.
#[inline(always)]
fn save_to<const I: usize, C: SysregContext, A: RegAccess>(
    plan: &'static [u8],
    ctx: &mut C,
    regs: &mut A,
    features: Features,
    side: Side,
) {
    if let Some(e) = plan_entry::<I>(plan, features) {
        let v = e.cpu.read(regs);
        match side {
            Side::Host => ctx.set_host(e.vcpu, v),
            Side::Guest => ctx.set_guest(e.vcpu, v),
        }
    }
}

/// Entry `I` of `plan`, if `features` allows it, from `side`'s context onto
/// the CPU.
#[inline(always)]
fn restore_from<const I: usize, C: SysregContext, A: RegAccess>(
    plan: &'static [u8],
    ctx: &mut C,
    regs: &mut A,
    features: Features,
    side: Side,
) {
    if let Some(e) = plan_entry::<I>(plan, features) {
        let v = match side {
            Side::Host => ctx.host(e.vcpu),
            Side::Guest => ctx.guest(e.vcpu),
        };
        e.cpu.write(regs, v);
    }
}

/// The registers `__sysreg_{save,restore}_common_state` move for a vCPU with
/// `features`, in order (the host's too: the C's `ctxt_has_s1poe(host_ctxt)`
/// asks the VM of `host_ctxt->__hyp_running_vcpu`, the vCPU loaded here).
pub fn common_plan(features: Features) -> impl Iterator<Item = &'static Entry> {
    plan_entries(&COMMON_PLAN, features)
}

/// The `sys_regs[]` registers `__sysreg_{save,restore}_el2_return_state` move
/// for a vCPU with `features`, after the PC and PSTATE, in order.
pub fn el2_return_plan(features: Features) -> impl Iterator<Item = &'static Entry> {
    plan_entries(&EL2_RETURN_PLAN, features)
}

/// `sysreg_save_host_state_vhe()`: before every run of the guest, the host's
/// [`Group::Common`] registers into `host_ctxt` (MDSCR_EL1; POR_EL0 if the VM
/// has S1POE: the C's `ctxt_has_s1poe(host_ctxt)` finds the VM through
/// `__hyp_running_vcpu`). Every exception masked, HCR_EL2 still the host's.
pub fn save_host_state<C: SysregContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    let features = ctx.features();
    // __sysreg_save_common_state(host_ctxt).
    unrolled!(save_to(&COMMON_PLAN, ctx, regs, features, Side::Host));
}

/// `sysreg_restore_guest_state_vhe()`: after the per-entry traps and
/// `__kvm_adjust_pc()`, before the first entry of a run: the guest's
/// [`Group::Common`] registers, then its return state: ELR_EL2 = the PC,
/// SPSR_EL2 = the PSTATE as [`pstate::el2_return_spsr`] makes it safe (an
/// AArch64 mode at EL2 or above becomes `PSR_MODE_EL2h | PSR_IL_BIT`), and,
/// with RAS, VDISR_EL2 = DISR_EL1 (the guest's deferred SError syndrome).
pub fn restore_guest_state<C: SysregContext + El2ReturnContext, A: RegAccess>(
    ctx: &mut C,
    regs: &mut A,
) {
    let features = ctx.features();
    // __sysreg_restore_common_state(guest_ctxt).
    unrolled!(restore_from(&COMMON_PLAN, ctx, regs, features, Side::Guest));
    // __sysreg_restore_el2_return_state(guest_ctxt): the PC, the PSTATE, then
    // the table's El2Return registers.
    regs.write(ctx.pc());
    regs.write(pstate::el2_return_spsr(ctx.pstate().raw()));
    unrolled!(restore_from(
        &EL2_RETURN_PLAN,
        ctx,
        regs,
        features,
        Side::Guest
    ));
}

/// `sysreg_save_guest_state_vhe()`: once the loop has left the guest for good
/// (the last `fixup_guest_exit()` said exit), before the per-entry traps are
/// undone: the guest's [`Group::Common`] registers, then its return state: the
/// PC from ELR_EL2 (as the exit fixup left it: an HVC's moved back for a
/// pending SError) and, with RAS, DISR_EL1 from VDISR_EL2. Not the PSTATE: on
/// VHE the C's `!has_vhe() && ctxt->__hyp_running_vcpu` is false, the exit
/// fixup has saved it after every exit.
pub fn save_guest_state<C: SysregContext + El2ReturnContext, A: RegAccess>(
    ctx: &mut C,
    regs: &mut A,
) {
    let features = ctx.features();
    // __sysreg_save_common_state(guest_ctxt).
    unrolled!(save_to(&COMMON_PLAN, ctx, regs, features, Side::Guest));
    // __sysreg_save_el2_return_state(guest_ctxt).
    let pc = regs.read::<ELR_EL2::Reg>();
    ctx.set_pc(pc);
    unrolled!(save_to(&EL2_RETURN_PLAN, ctx, regs, features, Side::Guest));
}

/// `sysreg_restore_host_state_vhe()`: after the per-entry traps are undone and
/// the lazy FP switch back, the host's [`Group::Common`] registers from
/// `host_ctxt`, as [`save_host_state`] saved them.
pub fn restore_host_state<C: SysregContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    let features = ctx.features();
    // __sysreg_restore_common_state(host_ctxt).
    unrolled!(restore_from(&COMMON_PLAN, ctx, regs, features, Side::Host));
}

/// The entry of vCPU register `reg`, if it is in the table.
pub fn entry(reg: VcpuSysReg) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.vcpu == VcpuSlot::Sys(reg))
}

/// Whether `vcpu_read_sys_reg()` reads `reg` from the CPU while
/// `SYSREGS_ON_CPU` is set: its entry is [`Entry::live`] (for compile-time
/// facts; [`read_from_cpu`] and [`write_to_cpu`] do the accesses).
pub const fn is_live(reg: VcpuSysReg) -> bool {
    let mut i = 0;
    while i < TABLE.len() {
        if let VcpuSlot::Sys(r) = TABLE[i].vcpu {
            if r as u32 == reg as u32 {
                return TABLE[i].live;
            }
        }
        i += 1;
    }
    false
}

/// `__vcpu_read_sys_reg_from_cpu()`: the CPU's value of `reg` if the kernel keeps
/// it live on the CPU while `SYSREGS_ON_CPU` is set, else `None` (read the
/// vCPU's copy).
pub fn read_from_cpu<A: RegAccess>(regs: &mut A, reg: VcpuSysReg) -> Option<u64> {
    entry(reg).filter(|e| e.live).map(|e| e.cpu.read(regs))
}

/// `__vcpu_write_sys_reg_to_cpu()`: writes `val` to the CPU register of `reg` and
/// returns `true` if the kernel keeps it live on the CPU, else returns `false`
/// (write the vCPU's copy).
pub fn write_to_cpu<A: RegAccess>(regs: &mut A, reg: VcpuSysReg, val: u64) -> bool {
    match entry(reg).filter(|e| e.live) {
        Some(e) => {
            e.cpu.write(regs, val);
            true
        }
        None => false,
    }
}
