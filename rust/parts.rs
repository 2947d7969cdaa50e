// SPDX-License-Identifier: GPL-2.0

//! The parts of the world switch the module can take over, and the `parts`
//! module parameter that chooses them.
//!
//! A part is a set of [`Step`]s: the callbacks of the kernel's
//! `struct kvm_vhe_backend_ops` (`asm/kvm_vhe_backend.h`, from the hook series).
//! The binding layer fills in the ops of the steps of the chosen parts and
//! leaves the others NULL, so that the built-in C does them. Adding a part is
//! one entry in [`PARTS`] (and the steps' code).
//!
//! Safe Rust, `core` only: built into the module and into the host tests.

#![forbid(unsafe_code)]

use core::fmt;

/// A step of the world switch, as `struct kvm_vhe_backend_ops` names its
/// callbacks (the VM lifecycle callbacks `vm_init`, `vm_supported` and
/// `vm_destroy` are always the module's, and are not steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `vcpu_load`: `kvm_vcpu_load_vhe()`.
    VcpuLoad,
    /// `vcpu_put`: `kvm_vcpu_put_vhe()`.
    VcpuPut,
    /// `vcpu_run`: `__kvm_vcpu_run_vhe()`.
    VcpuRun,
    /// `load_fp`: `kvm_arch_vcpu_load_fp()`.
    LoadFp,
    /// `ctxflush_fp`: `kvm_arch_vcpu_ctxflush_fp()`.
    CtxflushFp,
    /// `ctxsync_fp`: `kvm_arch_vcpu_ctxsync_fp()`.
    CtxsyncFp,
    /// `put_fp`: `kvm_arch_vcpu_put_fp()`.
    PutFp,
    /// `setup_debug`: `kvm_arm_setup_debug()`.
    SetupDebug,
    /// `clear_debug`: `kvm_arm_clear_debug()`.
    ClearDebug,
}

/// A part: a name for the `parts` parameter and the steps it takes.
#[derive(Debug)]
pub struct Part {
    /// Its name in the `parts` parameter.
    pub name: &'static str,
    /// The steps it takes over.
    pub steps: &'static [Step],
    /// Whether this module implements it (a part that is not implemented yet
    /// is named so that asking for it gets a clear answer).
    pub implemented: bool,
}

/// Every part, in the order of the bits of [`Parts`].
pub const PARTS: &[Part] = &[
    Part {
        name: "fp",
        steps: &[Step::LoadFp, Step::CtxflushFp, Step::CtxsyncFp, Step::PutFp],
        implemented: true,
    },
    Part {
        name: "sysregs",
        steps: &[Step::VcpuLoad, Step::VcpuPut],
        implemented: true,
    },
    Part {
        name: "run",
        steps: &[Step::VcpuRun],
        implemented: true,
    },
    Part {
        name: "debug",
        steps: &[Step::SetupDebug, Step::ClearDebug],
        implemented: true,
    },
];

const _: () = assert!(
    PARTS.len() <= u32::BITS as usize,
    "Parts is one bit per part"
);

/// A set of parts, one bit per entry of [`PARTS`].
///
/// # Invariants
///
/// Only bits of implemented parts are set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parts(u32);

impl Parts {
    /// No part: every step stays in the built-in C.
    pub const NONE: Parts = Parts(0);

    /// Parses the `parts` parameter: comma-separated part names, spaces and
    /// empty names ignored. Returns the set, or the first name that is not a
    /// part or not implemented yet.
    pub fn parse(s: &str) -> Result<Parts, &str> {
        let mut mask = 0;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match PARTS.iter().position(|p| p.name == name) {
                Some(i) if PARTS.get(i).is_some_and(|p| p.implemented) => mask |= 1 << i,
                _ => return Err(name),
            }
        }
        // INVARIANT: only implemented parts were added.
        Ok(Parts(mask))
    }

    /// The parts in the set.
    pub fn iter(self) -> impl Iterator<Item = &'static Part> {
        PARTS
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, p)| p)
    }

    /// Whether a part in the set takes `step`.
    pub fn takes(self, step: Step) -> bool {
        self.iter().any(|p| p.steps.contains(&step))
    }
}

/// The names of the implemented parts, comma-separated (for messages).
pub struct Implemented;

impl fmt::Display for Implemented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for p in PARTS.iter().filter(|p| p.implemented) {
            write!(f, "{sep}{}", p.name)?;
            sep = ", ";
        }
        Ok(())
    }
}
