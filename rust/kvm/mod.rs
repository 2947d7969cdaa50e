// SPDX-License-Identifier: GPL-2.0

//! The binding layer: the only place with `kernel::bindings`, raw pointers,
//! `extern "C"` and, besides the register layer, `unsafe`.
//!
//! * [`glue`]: the C glue's functions and the enums it shares with Rust,
//!   checked at build time against the C;
//! * `vcpu`, `host_data`: `Vcpu`, `CpuContext` and `HostData`, `Opaque`
//!   wrappers of the kernel's objects;
//! * `percpu`, `stats`: per-CPU variables and the module's counters;
//! * `step`: the one context type (`Step`) implementing every context trait
//!   of `crate::world`;
//! * `entry`: the ops table handed to KVM, built from the chosen parts, and
//!   its callbacks, all produced by one adapter;
//! * `task`: the current task (`current`'s flags and mm) and `irqs_disabled()`,
//!   read inline;
//! * `host`: facts about the host asked at init.
//!
//! It may import `crate::arch`, `crate::world`, `crate::parts` and `kernel`.

mod entry;
mod glue;
mod host;
mod host_data;
mod percpu;
mod run;
mod stats;
mod step;
mod task;
mod vcpu;

pub(crate) use entry::Registration;
pub(crate) use host::{parts_param, unsupported_reason, Hook};
