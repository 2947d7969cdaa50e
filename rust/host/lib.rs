// SPDX-License-Identifier: GPL-2.0

//! The host build of vhe-rs's logic: the same source files the module is built
//! from (`rust/*.rs`), compiled for the machine running `cargo test`, with a
//! simulated register file in place of the CPU.
//!
//! `rust/generated/` must exist: `make module` (Kbuild) generates it from the
//! kernel being built; `make host-test` does that first.

#[path = "../sysreg.rs"]
pub mod sysreg;

#[path = "../fp.rs"]
pub mod fp;

#[path = "../sysregs.rs"]
pub mod sysregs;

#[path = "../traps.rs"]
pub mod traps;

#[path = "../loadput.rs"]
pub mod loadput;

#[path = "../sim.rs"]
pub mod sim;
