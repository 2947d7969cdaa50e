// SPDX-License-Identifier: GPL-2.0

//! The syndrome of an exception taken to EL2 (ESR_EL2) as a type, with its
//! exception class as the kernel names them ([`Ec`], generated from the
//! `ESR_ELx_EC_*` values of `asm/esr.h` named in `rust/gen/sysregs.in`; the host
//! tests check the list is the kernel's, both ways). The run path's exit
//! handlers are indexed by it, as `hyp_exit_handlers[]` is in
//! `arch/arm64/kvm/hyp/vhe/switch.c`.

use super::{Value, ESR_EL2};

pub use super::defs::Ec;

/// An ESR_EL2 value: Arm ARM D24.2.43 (ESR_EL2), `asm/esr.h`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Esr(Value<ESR_EL2::Reg>);

impl Esr {
    /// The syndrome read from ESR_EL2.
    pub const fn new(v: Value<ESR_EL2::Reg>) -> Self {
        Self(v)
    }

    /// The value.
    pub const fn value(self) -> Value<ESR_EL2::Reg> {
        self.0
    }

    /// ESR_ELx.EC, raw (6 bits).
    pub const fn ec_raw(self) -> u64 {
        self.0.field(ESR_EL2::EC)
    }

    /// The exception class, or `None` for a value the kernel does not name
    /// (reserved encodings: the C's handler table has no entry for them
    /// either, and they exit to the host).
    pub const fn ec(self) -> Option<Ec> {
        Ec::from_raw(self.ec_raw())
    }

    /// ESR_ELx.IL: the trapped instruction was 32 bits wide.
    pub const fn il(self) -> bool {
        self.0.field(ESR_EL2::IL) != 0
    }

    /// ESR_ELx.ISS: the class-specific syndrome.
    pub const fn iss(self) -> u64 {
        self.0.field(ESR_EL2::ISS)
    }
}
