// SPDX-License-Identifier: GPL-2.0

//! The register layer: every system register as a zero-sized type generated
//! from the kernel being built, [`RegAccess`] (the one interface the logic above
//! uses), [`Cpu`] (the only `mrs`/`msr` in vhe-rs, aarch64 only) and
//! [`cpu_regs!`] (registers as data).
//!
//! Layering: this module uses `core` only and imports nothing else of the
//! crate, so the same files build into the module and into the host test
//! crate (`rust/hosttest`). Apart from `crate::kvm`, it is the only place with
//! `unsafe` (the `asm!` of the register accesses).

mod cpu_regs;
mod esr;
mod reg;

pub(crate) use cpu_regs::cpu_regs;
pub use esr::{Ec, Esr};
pub use reg::*;
