// SPDX-License-Identifier: GPL-2.0

//! What the host tests share, each piece defined once: every test file says
//! `mod common;` and uses what it needs.
//!
//! * [`kernel`]: the kernel tree (`$KDIR`) and what the tests parse out of its C;
//! * [`rng`]: a deterministic generator;
//! * [`exits`]: the exception classes and `hyp_exit_handlers[]` as the C has
//!   them;
//! * [`cpu`]: the simulated CPU, one register file behind handles that the code
//!   under test and the models share;
//! * [`vcpu`]: the model vCPU, implementing the context traits of `world` and
//!   recording the kernel state it is asked to change;
//! * [`host`]: the host side of load and put: the fine-grained trap registers as
//!   the C defines them, the capability combinations, a host CPU to load on;
//! * [`run_c`]: the C of one run of the guest (`__kvm_vcpu_run_vhe()` and the
//!   per-entry register moves), read from the kernel and carried out on the
//!   model vCPU;
//! * [`cexpr`]: C integer expressions evaluated with the kernel's macros;
//! * [`handlers`]: the exit handlers' kernel state on the model vCPU;
//! * [`fpmodel`]: the FP register file's contents, the kernel's FP machinery
//!   and a guest using FP/SVE, over whole runs.

// Each test file is its own crate and uses only part of this.
#![allow(dead_code)]

pub mod cexpr;
pub mod cpu;
pub mod exits;
pub mod fpmodel;
pub mod handlers;
pub mod host;
pub mod kernel;
pub mod rng;
pub mod run_c;
pub mod vcpu;
