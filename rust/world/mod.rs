// SPDX-License-Identifier: GPL-2.0

//! The world switch's logic, in safe Rust: what `arch/arm64/kvm/hyp/vhe/*.c`,
//! `arch/arm64/kvm/hyp/include/hyp/*.h` and `arch/arm64/kvm/fpsimd.c` (Linux
//! 6.12) decide, written against the register layer ([`crate::arch::RegAccess`])
//! and context traits that the binding layer (`crate::kvm`) implements over the
//! kernel's state and the host tests over models.
//!
//! Layering: imports [`crate::arch`] only; no `unsafe` (forbidden below).

#![forbid(unsafe_code)]

pub mod debug;
pub mod debug_state;
pub mod entry_traps;
pub mod exits;
pub mod fixup;
pub mod fp;
pub mod handlers;
pub mod loadput;
pub mod pstate;
pub mod run;
pub mod stage2;
pub mod sysreg_sr;
pub mod traps;
