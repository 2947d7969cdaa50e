// SPDX-License-Identifier: GPL-2.0

//! The C glue (`arch/arm64/glue/`): its functions and types as bindgen reads
//! them from `glue.h` (the one definition of the interface, so a prototype
//! that changes on the C side changes here too), and Rust mirrors of its
//! enums, each member checked at build time against the value bindgen gives
//! the C member of the same name.

/// `glue.h` through bindgen (Kbuild: `rust/generated/glue.rs`).
#[allow(
    dead_code,
    non_camel_case_types,
    unreachable_pub,
    clippy::all,
    // `struct kvm_vcpu` holds zero-sized members (lockdep maps without
    // lockdep) that the FFI lint flags; the glue only receives the pointer
    // KVM gave us, unchanged.
    improper_ctypes
)]
mod c {
    include!("../generated/glue.rs");
}

pub(crate) use c::*;

/// Declares the Rust mirror of an enum of `glue.h`: discriminants in
/// declaration order, each asserted at compile time to equal the C member it
/// names, and the number of members to equal the C enum's `NR` member.
/// Reordering, adding or removing a member on one side only fails the build.
macro_rules! c_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $c_nr:ident {
            $($(#[$vmeta:meta])* $variant:ident = $c_name:ident,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        #[allow(dead_code)]
        $vis enum $name {
            $($(#[$vmeta])* #[doc = concat!("`", stringify!($c_name), "`.")] $variant,)*
        }

        impl $name {
            /// Every member, in order.
            #[allow(dead_code)]
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// The number of members (the C enum's `NR` member).
            pub(crate) const COUNT: usize = Self::ALL.len();
        }

        $(
            const _: () = assert!(
                $name::$variant as u32 == c::$c_name,
                concat!("rust/kvm/glue.rs: ", stringify!($name), "::", stringify!($variant),
                        " is not ", stringify!($c_name), " of arch/arm64/glue/glue.h")
            );
        )*
        const _: () = assert!(
            $name::COUNT as u32 == c::$c_nr,
            concat!("rust/kvm/glue.rs: ", stringify!($name), " and arch/arm64/glue/glue.h ",
                    "have different numbers of members")
        );
    };
}

c_enum! {
    /// The module's counters (`enum vhe_rs_stat`), shown in debugfs
    /// `vhe_rs/stats`.
    pub(crate) enum Stat: VHE_RS_NR_STATS {
        VmRust = VHE_RS_STAT_VM_RUST,
        VmCDisabled = VHE_RS_STAT_VM_C_DISABLED,
        VmCUnsupported = VHE_RS_STAT_VM_C_UNSUPPORTED,
        VmDestroyed = VHE_RS_STAT_VM_DESTROYED,
        LoadFp = VHE_RS_STAT_LOAD_FP,
        CtxflushForeign = VHE_RS_STAT_CTXFLUSH_FOREIGN,
        CtxsyncBind = VHE_RS_STAT_CTXSYNC_BIND,
        PutFp = VHE_RS_STAT_PUT_FP,
        PutFpSave = VHE_RS_STAT_PUT_FP_SAVE,
        VcpuLoad = VHE_RS_STAT_VCPU_LOAD,
        VcpuPut = VHE_RS_STAT_VCPU_PUT,
        ExitIrq = VHE_RS_STAT_EXIT_IRQ,
        ExitSerror = VHE_RS_STAT_EXIT_SERROR,
        ExitIl = VHE_RS_STAT_EXIT_IL,
        ExitOther = VHE_RS_STAT_EXIT_OTHER,
        DebugSwitched = VHE_RS_STAT_DEBUG_SWITCHED,
        DebugVmmSs = VHE_RS_STAT_DEBUG_VMM_SS,
        DebugVmmHw = VHE_RS_STAT_DEBUG_VMM_HW,
        DebugOsLock = VHE_RS_STAT_DEBUG_OS_LOCK,
        RunFpIllegal = VHE_RS_STAT_RUN_FP_ILLEGAL,
        RunNotLoaded = VHE_RS_STAT_RUN_NOT_LOADED,
        LoadLoaded = VHE_RS_STAT_LOAD_LOADED,
        PutNotLoaded = VHE_RS_STAT_PUT_NOT_LOADED,
        FpIllegal = VHE_RS_STAT_FP_ILLEGAL,
        BadSlot = VHE_RS_STAT_BAD_SLOT,
        CtxsyncIrqsOn = VHE_RS_STAT_CTXSYNC_IRQS_ON,
        DebugIllegal = VHE_RS_STAT_DEBUG_ILLEGAL,
    }
}

c_enum! {
    /// What `vhe_rs_cap()` answers (`enum vhe_rs_cap`).
    pub(crate) enum Cap: VHE_RS_NR_CAPS {
        Ras = VHE_RS_CAP_RAS,
        Fgt = VHE_RS_CAP_FGT,
        Hcx = VHE_RS_CAP_HCX,
        AmpereAc03Cpu38 = VHE_RS_CAP_AMPERE_AC03_CPU_38,
        SpeculativeAt = VHE_RS_CAP_SPECULATIVE_AT,
        Erratum1508412 = VHE_RS_CAP_1508412,
        PmuV3 = VHE_RS_CAP_PMU_V3,
        CaviumTx2_219Tvm = VHE_RS_CAP_CAVIUM_TX2_219_TVM,
        Cntpoff = VHE_RS_CAP_CNTPOFF,
        UnmapKernelAtEl0 = VHE_RS_CAP_UNMAP_KERNEL_AT_EL0,
        Fpsimd = VHE_RS_CAP_FPSIMD,
        Sme = VHE_RS_CAP_SME,
        Erratum2077057 = VHE_RS_CAP_2077057,
        Ecv = VHE_RS_CAP_ECV,
        VgicV2CpuifTrap = VHE_RS_CAP_VGIC_V2_CPUIF_TRAP,
        VgicV3CpuifTrap = VHE_RS_CAP_VGIC_V3_CPUIF_TRAP,
    }
}

c_enum! {
    /// The bits `vhe_rs_vcpu_features()` answers (`enum vhe_rs_vcpu_feature`).
    pub(crate) enum VcpuFeature: VHE_RS_NR_VCPU_FEATURES {
        Tcr2 = VHE_RS_VCPU_TCR2,
        S1pie = VHE_RS_VCPU_S1PIE,
        S1poe = VHE_RS_VCPU_S1POE,
        Mte = VHE_RS_VCPU_MTE,
        El1Is32Bit = VHE_RS_VCPU_EL1_32BIT,
        Sve = VHE_RS_VCPU_SVE,
        Fpmr = VHE_RS_VCPU_FPMR,
    }
}
