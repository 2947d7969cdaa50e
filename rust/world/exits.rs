// SPDX-License-Identifier: GPL-2.0

//! The exit handlers of the VHE run loop, as data: which handler
//! `fixup_guest_exit()` tries for a guest exit, by the exception class of
//! ESR_EL2 ([`HANDLERS`], [`handler`]), and the order in which the handler of
//! trapped system register accesses tries its checks ([`SYSREG_STEPS`]).
//!
//! Today's C (Linux 6.12): `hyp_exit_handlers[]` and `kvm_hyp_handle_sysreg_vhe()`
//! in `arch/arm64/kvm/hyp/vhe/switch.c`; the handlers themselves and
//! `__fixup_guest_exit()` in `arch/arm64/kvm/hyp/include/hyp/switch.h`.
//!
//! After every exit, `__kvm_vcpu_run_vhe()` asks `fixup_guest_exit()` whether it
//! can go straight back into the guest. For an exit that is a plain trap
//! (`ARM_EXCEPTION_TRAP`, no SError pending), `kvm_hyp_handle_exit()` looks up
//! `hyp_exit_handlers[ESR_ELx_EC(esr)]`: no entry, or a handler that returns
//! false, and the exit goes to the host (`handle_exit()`, with IRQs back on);
//! a handler that returns true has dealt with the exit at EL2 and the guest is
//! entered again at once. The table here is the C's, entry for entry (the host
//! tests parse the C and compare, both ways).
//!
//! Nested virtualization: the backend runs non-nested vCPUs only (it declines
//! VMs with `KVM_ARM_VCPU_HAS_EL2`). What of the C only ever acts for a nested
//! vCPU is marked so ([`ExitHandler::nested_only`], [`SysregStep::nested_only`])
//! with the reason, so that the run path can leave it out. Also nested-only, and
//! not in these tables: `fixup_guest_exit()`'s rewrite of the saved PSTATE from
//! EL1 to (virtual) EL2 modes when the guest hypervisor ran (`vcpu_has_nv() &&
//! HCR_EL2.NV`).
//!
//! Data and `const fn`s only: nothing here touches a register. No `unsafe`.

use crate::arch::{consts, Ec, Esr, ESR_EL2};

/// A handler of `hyp_exit_handlers[]`, by the name the table gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitHandler {
    /// `kvm_hyp_handle_cp15_32` (EC `CP15_32`: an AArch32 guest's `MRC`/`MCR` to
    /// CP15). With [`Gate::VgicV3CpuifTrap`], emulates an ICC register access
    /// (`__vgic_v3_perform_cpuif_access()`) and returns to the guest if that
    /// handled it; otherwise, and always without the key, exits.
    Cp15_32,
    /// `kvm_hyp_handle_sysreg_vhe` (EC `SYS64`: an AArch64 `MSR`/`MRS`/`SYS`
    /// trap). Tries [`SYSREG_STEPS`] in order; the first that handles the trap
    /// returns to the guest, and if none does the exit goes to the host.
    SysregVhe,
    /// `kvm_hyp_handle_fpsimd` (ECs `FP_ASIMD` and `SVE`: the guest's first FP,
    /// SIMD or SVE use since its registers were last taken back). Without FP/SIMD
    /// on the system, exits (the host injects an UNDEF). An SVE trap of a vCPU
    /// without SVE exits (UNDEF too). Otherwise the lazy FP switch: lifts the
    /// CPACR_EL1 (CPTR_EL2) FP/SVE traps, `isb`, loads the guest's FP/SVE
    /// registers (SVE at the vCPU's maximum VL, then its ZCR_EL1), FPMR when the
    /// VM has it, FPEXC32_EL2 for an AArch32 EL1, marks the guest the FP owner
    /// (`FP_STATE_GUEST_OWNED`) and returns to the guest. The host's FP state was
    /// saved and unbound at `vcpu_load` (`kvm_arch_vcpu_load_fp()`); only
    /// protected KVM saves it here. Its forwarding checks (`guest_hyp_fpsimd_traps_enabled()`,
    /// `guest_hyp_sve_traps_enabled()`) are false for a non-nested vCPU, and its
    /// `SYS64` case is only reached from [`SysregStep::ZcrEl2`] (nested).
    Fpsimd,
    /// `kvm_hyp_handle_iabt_low` (EC `IABT_LOW`: an instruction abort from the
    /// guest, a stage-2 fault), a `#define` of `kvm_hyp_handle_memory_fault`:
    /// records the fault (`__populate_fault_info()`: FAR_EL2 and HPFAR_EL2, the
    /// latter translated from FAR with `AT S1E1R` when HPFAR_EL2 is not valid: a
    /// permission fault, or erratum 834220) and exits; if that `AT` failed (the
    /// guest changed its page tables meanwhile), returns to the guest to take
    /// the fault again.
    IabtLow,
    /// `kvm_hyp_handle_dabt_low` (EC `DABT_LOW`: a data abort from the guest): as
    /// [`ExitHandler::IabtLow`], then, with the `vgic_v2_cpuif_trap` static key
    /// (a GICv2 host whose GICV region is not page aligned, so the guest's GIC
    /// CPU interface is trapped), a valid translation fault on it is emulated
    /// (`__vgic_v2_perform_cpuif_access()`): handled, back to the guest; an
    /// illegal access is turned into an SError exit (`ARM_EXCEPTION_EL1_SERROR`).
    DabtLow,
    /// `kvm_hyp_handle_watchpt_low` (EC `WATCHPT_LOW`: a watchpoint hit in the
    /// guest), a `#define` of `kvm_hyp_handle_memory_fault`: as
    /// [`ExitHandler::IabtLow`].
    WatchptLow,
    /// `kvm_hyp_handle_eret` (EC `ERET`: a trapped `ERET`/`ERETAA`/`ERETAB`).
    /// Performs a guest hypervisor's exception return to its own EL2 or (InHost)
    /// EL0 in place, from its SPSR_EL1/ELR_EL1 (ERETAx authenticated with the
    /// vCPU's keys), instead of a full put/load. Nested only: see
    /// [`ExitHandler::nested_only`].
    Eret,
    /// `kvm_hyp_handle_mops` (EC `MOPS`: a memory copy/set instruction sequence
    /// interrupted and migrated between CPUs with different MOPS options):
    /// rewinds the guest's PC (ELR_EL2) and registers to the start of the
    /// sequence (`arm64_mops_reset_regs()`), clears SPSR_EL2.SS (finishes a
    /// pending single step) and returns to the guest.
    Mops,
}

impl ExitHandler {
    /// Every handler.
    pub const ALL: [ExitHandler; 8] = [
        ExitHandler::Cp15_32,
        ExitHandler::SysregVhe,
        ExitHandler::Fpsimd,
        ExitHandler::IabtLow,
        ExitHandler::DabtLow,
        ExitHandler::WatchptLow,
        ExitHandler::Eret,
        ExitHandler::Mops,
    ];

    /// The name `hyp_exit_handlers[]` gives it.
    pub const fn c_name(self) -> &'static str {
        match self {
            ExitHandler::Cp15_32 => "kvm_hyp_handle_cp15_32",
            ExitHandler::SysregVhe => "kvm_hyp_handle_sysreg_vhe",
            ExitHandler::Fpsimd => "kvm_hyp_handle_fpsimd",
            ExitHandler::IabtLow => "kvm_hyp_handle_iabt_low",
            ExitHandler::DabtLow => "kvm_hyp_handle_dabt_low",
            ExitHandler::WatchptLow => "kvm_hyp_handle_watchpt_low",
            ExitHandler::Eret => "kvm_hyp_handle_eret",
            ExitHandler::Mops => "kvm_hyp_handle_mops",
        }
    }

    /// The C function that runs: [`ExitHandler::c_name`], except for the names
    /// `hyp/switch.h` `#define`s to another handler.
    pub const fn c_function(self) -> &'static str {
        match self {
            ExitHandler::IabtLow | ExitHandler::WatchptLow => "kvm_hyp_handle_memory_fault",
            h => h.c_name(),
        }
    }

    /// Whether the handler only ever acts for a nested vCPU (one with
    /// `KVM_ARM_VCPU_HAS_EL2`), so that a run path for non-nested vCPUs may
    /// leave it out.
    ///
    /// Only [`ExitHandler::Eret`]. An `ERET` traps to EL2 only with HCR_EL2.NV
    /// or HFGITR_EL2.ERET set, and neither is ever set for a non-nested vCPU:
    /// `__compute_hcr()` returns `vcpu->arch.hcr_el2` unchanged for it (no NV
    /// in `HCR_GUEST_FLAGS`; NV is added only for a guest hypervisor's own
    /// context), and HFGITR_EL2.ERET comes only from a guest hypervisor's
    /// HFGITR_EL2 (`compute_clr_set()`), never from `kvm->arch.fgu[]`; the host
    /// boots with HFGITR_EL2 = 0. The exception class cannot occur.
    ///
    /// Every other handler applies to non-nested vCPUs; the nested-only parts of
    /// [`ExitHandler::SysregVhe`] are its steps' ([`SysregStep::nested_only`]).
    pub const fn nested_only(self) -> bool {
        matches!(self, ExitHandler::Eret)
    }
}

/// `hyp_exit_handlers[]`'s designated entries, in the C's order: the exception
/// class and its handler. Every other class has none (`[0 ... ESR_ELx_EC_MAX] =
/// NULL`).
pub const ENTRIES: [(Ec, ExitHandler); 9] = [
    (Ec::CP15_32, ExitHandler::Cp15_32),
    (Ec::SYS64, ExitHandler::SysregVhe),
    (Ec::SVE, ExitHandler::Fpsimd),
    (Ec::FP_ASIMD, ExitHandler::Fpsimd),
    (Ec::IABT_LOW, ExitHandler::IabtLow),
    (Ec::DABT_LOW, ExitHandler::DabtLow),
    (Ec::WATCHPT_LOW, ExitHandler::WatchptLow),
    (Ec::ERET, ExitHandler::Eret),
    (Ec::MOPS, ExitHandler::Mops),
];

/// The table's length: one entry for every EC value, `ESR_ELx_EC_MAX + 1`.
pub const TABLE_LEN: usize = consts::ESR_ELX_EC_MAX as usize + 1;

// ESR_ELx.EC cannot hold a value past the table: indexing by a raw EC is in
// bounds (as `kvm_vcpu_trap_get_class()` indexes the C's table).
const _: () = assert!(ESR_EL2::EC.mask() >> ESR_EL2::EC.shift() == consts::ESR_ELX_EC_MAX);

/// `hyp_exit_handlers[]`: the handler of each raw EC value, `None` where the C
/// has `NULL` (including the values the kernel does not name).
pub const HANDLERS: [Option<ExitHandler>; TABLE_LEN] = table();

const fn table() -> [Option<ExitHandler>; TABLE_LEN] {
    let mut t = [None; TABLE_LEN];
    let mut i = 0;
    while i < ENTRIES.len() {
        let (ec, h) = ENTRIES[i];
        // Each class at most once: a designated initializer given twice is
        // legal C (the last wins) but never meant.
        assert!(t[ec as usize].is_none());
        t[ec as usize] = Some(h);
        i += 1;
    }
    t
}

/// The handler for an exception class ([`Esr::ec`]): `None` for a class without
/// one and for an EC value the kernel does not name.
pub const fn handler(ec: Option<Ec>) -> Option<ExitHandler> {
    match ec {
        Some(ec) => HANDLERS[ec as usize],
        None => None,
    }
}

/// The handler for an exit with syndrome `esr`, looked up as the C does (by the
/// raw EC value).
pub const fn handler_for(esr: Esr) -> Option<ExitHandler> {
    HANDLERS[esr.ec_raw() as usize]
}

/// A condition under which a [`SysregStep`] acts at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gate {
    /// None: the step always looks at the trap.
    Always,
    /// `is_hyp_ctxt(vcpu)`: a nested vCPU running its guest hypervisor (vEL2,
    /// or InHost vEL0). False for every non-nested vCPU (`vcpu_has_nv() && ...`).
    /// Tested first in the step's own body, which returns false without it.
    HypCtxt,
    /// `vcpu_has_nv(vcpu)`: a nested vCPU. Tested first in the step's body.
    Nested,
    /// `cpus_have_final_cap(ARM64_WORKAROUND_CAVIUM_TX2_219_TVM)`: Cavium
    /// ThunderX2 erratum 219, where KVM traps the guest's writes to the
    /// virtual-memory control registers (HCR_EL2.TVM). Tested by the caller.
    CaviumTx2_219Tvm,
    /// `cpus_have_final_cap(ARM64_WORKAROUND_AMPERE_AC03_CPU_38)`: Ampere
    /// erratum AC03_CPU_38, where KVM traps the guest's writes to TCR_EL1
    /// (HFGWTR_EL2, `crate::world::traps`). Tested by the caller.
    AmpereAc03Cpu38,
    /// `static_branch_unlikely(&vgic_v3_cpuif_trap)`: KVM traps the guest's GICv3
    /// CPU interface (`vgic_v3_probe()`: Cavium erratum 30115, a GIC with broken
    /// locally generated SEIs, or the `kvm-arm.vgic_v3_*_trap` parameters).
    /// Tested by the caller.
    VgicV3CpuifTrap,
}

impl Gate {
    /// The C expression.
    pub const fn c_text(self) -> &'static str {
        match self {
            Gate::Always => "",
            Gate::HypCtxt => "is_hyp_ctxt(vcpu)",
            Gate::Nested => "vcpu_has_nv(vcpu)",
            Gate::CaviumTx2_219Tvm => "cpus_have_final_cap(ARM64_WORKAROUND_CAVIUM_TX2_219_TVM)",
            Gate::AmpereAc03Cpu38 => "cpus_have_final_cap(ARM64_WORKAROUND_AMPERE_AC03_CPU_38)",
            Gate::VgicV3CpuifTrap => "static_branch_unlikely(&vgic_v3_cpuif_trap)",
        }
    }

    /// Whether the gate is closed for every non-nested vCPU.
    pub const fn nested_only(self) -> bool {
        matches!(self, Gate::HypCtxt | Gate::Nested)
    }
}

/// A check of `kvm_hyp_handle_sysreg_vhe()` (EC `SYS64`), flattened: its own
/// three checks, then the four of `kvm_hyp_handle_sysreg()`, which it calls
/// last. Each returns true when it has handled the trap (back to the guest;
/// the steps after it do not run) and false to pass it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SysregStep {
    /// `kvm_hyp_handle_tlbi_el2`: a guest hypervisor's EL2 stage-1 TLB
    /// invalidation (`TLBI *E2*`, or `TLBI *E1*` while InHost), which FEAT_NV2
    /// forces KVM to trap (HCR_EL2.TTLB stays set), done at once
    /// (`__kvm_tlbi_s1e2()`) and the instruction skipped. Nested only: returns
    /// false unless `is_hyp_ctxt()`.
    TlbiEl2,
    /// `kvm_hyp_handle_cpacr_el1`: a guest hypervisor's access to CPACR_EL1
    /// (its CPTR_EL2 with E2H): read from or written to the vCPU's CPTR_EL2,
    /// the real traps updated (`__activate_cptr_traps()`), the instruction
    /// skipped. Nested only: returns false unless `is_hyp_ctxt()`.
    CpacrEl1,
    /// `kvm_hyp_handle_zcr_el2`: a nested vCPU's ZCR_EL2 access while the host
    /// owns the FP registers: loads the guest's FP state
    /// ([`ExitHandler::Fpsimd`]) so that the slow path finds it on the CPU, and
    /// always returns false. Nested only: returns false unless `vcpu_has_nv()`.
    ZcrEl2,
    /// `handle_tx2_tvm`: with [`Gate::CaviumTx2_219Tvm`], and unless the VM
    /// itself wants TVM traps (`vcpu->arch.hcr_el2 & HCR_TVM`), writes the
    /// trapped write to SCTLR/TTBR0/TTBR1/TCR/ESR/FAR/AFSR0/AFSR1/MAIR/AMAIR/
    /// CONTEXTIDR_EL1 to the `_EL12` register and skips the instruction.
    Tx2Tvm,
    /// `handle_ampere1_tcr`: with [`Gate::AmpereAc03Cpu38`], a trapped write to
    /// TCR_EL1 is written with HA and HD cleared (the CPU does not advertise
    /// FEAT_HAFDBS, but the bits would work), and the instruction skipped.
    Ampere1Tcr,
    /// `__vgic_v3_perform_cpuif_access`: with [`Gate::VgicV3CpuifTrap`], an ICC
    /// register access emulated on the list registers; handled when it returns 1.
    VgicV3Cpuif,
    /// `kvm_hyp_handle_cntpct`: a read of CNTPCT_EL0/CNTPCTSS_EL0 (trapped when
    /// the VM's physical counter is offset and the CPU has no FEAT_ECV CNTPOFF,
    /// `timer_set_traps()`) answered with the counter minus the
    /// VM's and the vCPU's offsets, and the instruction skipped. For a nested
    /// vCPU it also picks the EL2 timer or defers to the guest hypervisor's
    /// traps; for a non-nested one it always uses the EL1 physical timer.
    Cntpct,
}

impl SysregStep {
    /// Every step, in the order the C tries them.
    pub const ALL: [SysregStep; 7] = SYSREG_STEPS;

    /// The C function (or, for [`SysregStep::VgicV3Cpuif`], the call) the step is.
    pub const fn c_name(self) -> &'static str {
        match self {
            SysregStep::TlbiEl2 => "kvm_hyp_handle_tlbi_el2",
            SysregStep::CpacrEl1 => "kvm_hyp_handle_cpacr_el1",
            SysregStep::ZcrEl2 => "kvm_hyp_handle_zcr_el2",
            SysregStep::Tx2Tvm => "handle_tx2_tvm",
            SysregStep::Ampere1Tcr => "handle_ampere1_tcr",
            SysregStep::VgicV3Cpuif => "__vgic_v3_perform_cpuif_access",
            SysregStep::Cntpct => "kvm_hyp_handle_cntpct",
        }
    }

    /// The C function that calls the step.
    pub const fn caller(self) -> &'static str {
        match self {
            SysregStep::TlbiEl2 | SysregStep::CpacrEl1 | SysregStep::ZcrEl2 => {
                "kvm_hyp_handle_sysreg_vhe"
            }
            _ => "kvm_hyp_handle_sysreg",
        }
    }

    /// When the step acts at all.
    pub const fn gate(self) -> Gate {
        match self {
            SysregStep::TlbiEl2 | SysregStep::CpacrEl1 => Gate::HypCtxt,
            SysregStep::ZcrEl2 => Gate::Nested,
            SysregStep::Tx2Tvm => Gate::CaviumTx2_219Tvm,
            SysregStep::Ampere1Tcr => Gate::AmpereAc03Cpu38,
            SysregStep::VgicV3Cpuif => Gate::VgicV3CpuifTrap,
            SysregStep::Cntpct => Gate::Always,
        }
    }

    /// Whether the step returns false, having done nothing, for every
    /// non-nested vCPU: [`SysregStep::TlbiEl2`], [`SysregStep::CpacrEl1`] and
    /// [`SysregStep::ZcrEl2`].
    pub const fn nested_only(self) -> bool {
        self.gate().nested_only()
    }
}

/// The checks of `kvm_hyp_handle_sysreg_vhe()`, in the C's order.
pub const SYSREG_STEPS: [SysregStep; 7] = [
    SysregStep::TlbiEl2,
    SysregStep::CpacrEl1,
    SysregStep::ZcrEl2,
    SysregStep::Tx2Tvm,
    SysregStep::Ampere1Tcr,
    SysregStep::VgicV3Cpuif,
    SysregStep::Cntpct,
];
