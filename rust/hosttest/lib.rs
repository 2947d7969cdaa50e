// SPDX-License-Identifier: GPL-2.0

//! The host build of vhe-rs's logic: the register layer (`rust/arch`), the
//! switch logic (`rust/world`) and the `parts` table (`rust/parts.rs`), from
//! the same source files the module is built from, compiled for the machine
//! running `cargo test`, with a simulated register file ([`sim`]) in place of
//! the CPU. The binding layer (`rust/kvm`) is the module's only.
//!
//! `rust/generated/` must exist: `make module` (Kbuild) generates it from the
//! kernel being built; `make host-test` does that first.

#[path = "../arch/mod.rs"]
pub mod arch;

#[path = "../world/mod.rs"]
pub mod world;

#[path = "../parts.rs"]
pub mod parts;

pub mod sim;
