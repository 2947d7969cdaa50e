// SPDX-License-Identifier: GPL-2.0

//! The C glue (`arch/arm64/glue/`): its functions, and Rust mirrors of the
//! enums of `glue.h`, each member checked at build time against the value the
//! compiler gives the C member of the same name.

use core::ffi::{c_char, c_int, c_ulong};
use kernel::bindings;

/// The members of `glue.h`'s enums, as the compiler evaluates them
/// (`tools/gen-sysregs.py glue-rs`).
mod c {
    include!("../generated/glue.rs");
}

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
        CtxflushFp = VHE_RS_STAT_CTXFLUSH_FP,
        CtxflushForeign = VHE_RS_STAT_CTXFLUSH_FOREIGN,
        CtxsyncFp = VHE_RS_STAT_CTXSYNC_FP,
        CtxsyncBind = VHE_RS_STAT_CTXSYNC_BIND,
        PutFp = VHE_RS_STAT_PUT_FP,
        PutFpSave = VHE_RS_STAT_PUT_FP_SAVE,
        VcpuLoad = VHE_RS_STAT_VCPU_LOAD,
        VcpuPut = VHE_RS_STAT_VCPU_PUT,
        FpIllegal = VHE_RS_STAT_FP_ILLEGAL,
        BadSlot = VHE_RS_STAT_BAD_SLOT,
        CtxsyncIrqsOn = VHE_RS_STAT_CTXSYNC_IRQS_ON,
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
    }
}

// `struct kvm_vcpu` holds zero-sized members (lockdep maps without lockdep) that
// the FFI lint flags; the glue only receives the pointer KVM gave us, unchanged.
#[allow(improper_ctypes)]
extern "C" {
    // host.c
    pub(crate) fn vhe_rs_host_unsupported() -> *const c_char;
    // backend.c
    pub(crate) fn vhe_rs_hook_lookup() -> *const c_char;
    pub(crate) fn vhe_rs_enabled() -> bool;
    pub(crate) fn vhe_rs_parts() -> *const c_char;
    pub(crate) fn vhe_rs_stat_inc(stat: Stat);
    pub(crate) fn vhe_rs_report(stat: Stat);
    pub(crate) fn vhe_rs_backend_register(ops: *const bindings::kvm_vhe_backend_ops) -> c_int;
    pub(crate) fn vhe_rs_backend_unregister(ops: *const bindings::kvm_vhe_backend_ops);
    pub(crate) fn vhe_rs_percpu_host_data() -> c_ulong;
    pub(crate) fn vhe_rs_percpu_stats() -> c_ulong;
    pub(crate) fn vhe_rs_system_supports_fpsimd() -> bool;
    pub(crate) fn vhe_rs_save_and_flush_cpu_fp();
    pub(crate) fn vhe_rs_bind_guest_fp(vcpu: *mut bindings::kvm_vcpu);
    pub(crate) fn vhe_rs_vcpu_has_sve(vcpu: *const bindings::kvm_vcpu) -> bool;
    pub(crate) fn vhe_rs_local_irq_save() -> c_ulong;
    pub(crate) fn vhe_rs_local_irq_restore(flags: c_ulong);
    #[cfg_attr(not(CONFIG_ARM64_PSEUDO_NMI), allow(dead_code))]
    pub(crate) fn vhe_rs_irqs_disabled() -> bool;
    pub(crate) fn vhe_rs_bug_no_mm();
    pub(crate) fn vhe_rs_vcpu_features(vcpu: *mut bindings::kvm_vcpu) -> u32;
    pub(crate) fn vhe_rs_cap(cap: Cap) -> bool;
    pub(crate) fn vhe_rs_vcpu_set_sysregs_on_cpu(vcpu: *mut bindings::kvm_vcpu, on: bool);
    pub(crate) fn vhe_rs_vcpu_set_pmuserenr_on_cpu(vcpu: *mut bindings::kvm_vcpu, on: bool);
    pub(crate) fn vhe_rs_vcpu_stage2(
        vcpu: *mut bindings::kvm_vcpu,
        vtcr: *mut u64,
        vttbr: *mut u64,
    );
}
