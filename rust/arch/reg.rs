// SPDX-License-Identifier: GPL-2.0

//! Typed system registers and the only `mrs`/`msr` in vhe-rs (the register layer,
//! [`crate::arch`]).
//!
//! Every register is a zero-sized type generated from the kernel being built
//! (`tools/gen-sysregs.py`: the kernel's `arch/arm64/tools/sysreg` and, for the
//! registers it only defines in C headers, `rust/gen/sysregs.in` evaluated by the
//! compiler), with named fields in the manner of the `aarch64-cpu` crate:
//!
//! ```ignore
//! regs.modify(HCR_EL2::TGE::CLEAR | HCR_EL2::TWI::SET);
//! let vl = regs.read::<ZCR_EL2::Reg>().field(ZCR_EL2::LEN);
//! ```
//!
//! Code above this layer is written against [`RegAccess`]: the module passes the
//! real CPU ([`Cpu`], aarch64 only), host tests pass a simulated register file.
//! This file uses `core` only, so the same source builds into the module and into
//! the host test crate (`rust/hosttest`).

use core::marker::PhantomData;
use core::ops::BitOr;

/// The definitions generated from the kernel: `packing` (the kernel's `sys_reg()`
/// layout), `tools` (every register of `arch/arm64/tools/sysreg`), `hdr` (registers
/// of the C headers) and `consts`.
#[allow(clippy::all, rustdoc::all, unreachable_pub)]
pub mod defs {
    include!("../generated/sysregs.rs");
}

pub use defs::consts;
pub use defs::hdr::*;
pub use defs::tools::*;

/// A system register: a zero-sized type generated for each register.
pub trait SysReg: Copy {
    /// The architectural name, e.g. `"HCR_EL2"`.
    const NAME: &'static str;
    /// The encoding as the kernel's `sys_reg(op0, op1, CRn, CRm, op2)` packs it.
    const ENCODING: u32;

    /// Reads the register on this CPU.
    ///
    /// # Safety
    ///
    /// The register must be implemented by this CPU and readable at EL2.
    #[cfg(target_arch = "aarch64")]
    unsafe fn hw_read() -> u64;

    /// Writes the register on this CPU.
    ///
    /// # Safety
    ///
    /// The register must be implemented by this CPU and writable at EL2, and the
    /// write must not break the host kernel's own execution (the callers are the
    /// world-switch steps that own this state while they run).
    #[cfg(target_arch = "aarch64")]
    unsafe fn hw_write(val: u64);
}

/// Implements [`SysReg`] for a generated register type; used by the generated code.
#[doc(hidden)]
#[macro_export]
macro_rules! sysreg_impl {
    ($ty:ident, $name:literal, $enc:literal, $asm:literal) => {
        impl $crate::arch::SysReg for $ty {
            const NAME: &'static str = $name;
            const ENCODING: u32 = $enc;

            #[cfg(target_arch = "aarch64")]
            #[inline(always)]
            unsafe fn hw_read() -> u64 {
                let val: u64;
                // SAFETY: the caller guarantees the register exists and is readable
                // at EL2 (see `SysReg::hw_read`); `mrs` touches no memory or stack.
                unsafe {
                    core::arch::asm!(concat!("mrs {0}, ", $asm), out(reg) val,
                                     options(nostack, preserves_flags));
                }
                val
            }

            #[cfg(target_arch = "aarch64")]
            #[inline(always)]
            unsafe fn hw_write(val: u64) {
                // SAFETY: the caller guarantees the register exists, is writable at
                // EL2 and that the write is theirs to make (see `SysReg::hw_write`).
                // No `nomem`: the write is ordered against memory accesses around it.
                unsafe {
                    core::arch::asm!(concat!("msr ", $asm, ", {0}"), in(reg) val,
                                     options(nostack, preserves_flags));
                }
            }
        }
    };
}

/// Implements `Clone` and `Copy` for types that hold their register `R` only as
/// `PhantomData` (`derive` would ask `R: Copy`).
macro_rules! copy_for_every_reg {
    ($($ty:ident),*) => {
        $(
            impl<R> Clone for $ty<R> {
                fn clone(&self) -> Self {
                    *self
                }
            }
            impl<R> Copy for $ty<R> {}
        )*
    };
}

copy_for_every_reg!(Field, FieldValue, Value);

/// A field of register `R`: `width` bits from bit `shift`.
///
/// # Invariants
///
/// `1 <= width` and `shift + width <= 64` (checked at construction, which for the
/// generated fields happens at compile time).
pub struct Field<R> {
    shift: u32,
    width: u32,
    _reg: PhantomData<R>,
}

impl<R> Field<R> {
    /// A field of `width` bits at bit `shift`.
    pub const fn new(shift: u32, width: u32) -> Self {
        assert!(width >= 1 && shift + width <= 64);
        // INVARIANT: checked just above.
        Self {
            shift,
            width,
            _reg: PhantomData,
        }
    }

    /// The field's first bit.
    pub const fn shift(self) -> u32 {
        self.shift
    }

    /// The field's width in bits.
    pub const fn width(self) -> u32 {
        self.width
    }

    /// The field's bits in place, e.g. `GENMASK(msb, lsb)`.
    pub const fn mask(self) -> u64 {
        (u64::MAX >> (64 - self.width)) << self.shift
    }

    /// The field holding `v` (truncated to the field's width).
    pub const fn val(self, v: u64) -> FieldValue<R> {
        FieldValue {
            mask: self.mask(),
            value: (v << self.shift) & self.mask(),
            _reg: PhantomData,
        }
    }

    /// Every bit of the field set.
    pub const fn set(self) -> FieldValue<R> {
        self.val(u64::MAX)
    }

    /// Every bit of the field clear.
    pub const fn clear(self) -> FieldValue<R> {
        self.val(0)
    }

    /// The field's value in a raw register value.
    pub const fn get(self, raw: u64) -> u64 {
        (raw & self.mask()) >> self.shift
    }
}

/// Values for some fields of register `R`, combined with `|`: what to set them to.
pub struct FieldValue<R> {
    mask: u64,
    value: u64,
    _reg: PhantomData<R>,
}

impl<R> FieldValue<R> {
    /// The bits this value sets or clears.
    pub const fn mask(self) -> u64 {
        self.mask
    }

    /// The bits it sets.
    pub const fn value(self) -> u64 {
        self.value
    }

    /// `raw` with these fields replaced.
    pub const fn apply(self, raw: u64) -> u64 {
        (raw & !self.mask) | self.value
    }

    /// Whether `raw` holds these field values.
    pub const fn matches(self, raw: u64) -> bool {
        raw & self.mask == self.value
    }
}

impl<R> BitOr for FieldValue<R> {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self {
            mask: self.mask | rhs.mask,
            value: (self.value & !rhs.mask) | rhs.value,
            _reg: PhantomData,
        }
    }
}

/// A value of register `R`.
pub struct Value<R> {
    raw: u64,
    _reg: PhantomData<R>,
}

impl<R> PartialEq for Value<R> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<R> Eq for Value<R> {}

impl<R: SysReg> core::fmt::Debug for Value<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}={:#x}", R::NAME, self.raw)
    }
}

impl<R> Value<R> {
    /// A value from its raw bits.
    pub const fn from_raw(raw: u64) -> Self {
        Self {
            raw,
            _reg: PhantomData,
        }
    }

    /// The value's raw bits.
    pub const fn raw(self) -> u64 {
        self.raw
    }

    /// The value of field `f`.
    pub const fn field(self, f: Field<R>) -> u64 {
        f.get(self.raw)
    }

    /// Whether the fields of `fv` hold its values.
    pub const fn matches(self, fv: FieldValue<R>) -> bool {
        fv.matches(self.raw)
    }

    /// This value with the fields of `fv` replaced.
    #[must_use]
    pub const fn with(self, fv: FieldValue<R>) -> Self {
        Self::from_raw(fv.apply(self.raw))
    }
}

/// Access to system registers: the real CPU ([`Cpu`]) or a simulated register file.
///
/// Everything that decides which register moves where is written against this trait,
/// so the same code runs in the module and in `cargo test` on the host.
pub trait RegAccess {
    /// Reads register `R`.
    fn read_raw<R: SysReg>(&mut self) -> u64;

    /// Writes register `R`.
    fn write_raw<R: SysReg>(&mut self, val: u64);

    /// Instruction synchronization barrier: makes earlier register writes take
    /// effect for what follows.
    fn isb(&mut self);

    /// Full-system data memory barrier (`dmb sy`).
    fn dmb_sy(&mut self);

    /// Reads register `R` as a typed value.
    fn read<R: SysReg>(&mut self) -> Value<R> {
        Value::from_raw(self.read_raw::<R>())
    }

    /// Writes a typed value to register `R`.
    fn write<R: SysReg>(&mut self, val: Value<R>) {
        self.write_raw::<R>(val.raw());
    }

    /// Read-modify-write of the fields in `fv`; skips the write when nothing changes.
    fn modify<R: SysReg>(&mut self, fv: FieldValue<R>) {
        let old = self.read_raw::<R>();
        let new = fv.apply(old);
        if new != old {
            self.write_raw::<R>(new);
        }
    }
}

/// The CPU this code runs on.
///
/// # Invariants
///
/// Exists only on an arm64 host whose kernel runs at EL2 (VHE), in code that owns
/// the registers it touches through it: the world-switch steps, between the points
/// where KVM hands them the vCPU and where they hand it back.
#[cfg(target_arch = "aarch64")]
pub struct Cpu(());

#[cfg(target_arch = "aarch64")]
impl Cpu {
    /// The current CPU.
    ///
    /// # Safety
    ///
    /// The caller runs at EL2 on a VHE host and owns the registers it will access
    /// (see the type's invariants); feature-gated registers are accessed only when
    /// the CPU has the feature.
    #[inline(always)]
    pub unsafe fn current() -> Self {
        // INVARIANT: guaranteed by the caller.
        Cpu(())
    }
}

/// Declares reads of registers the kernel gives no `sys_reg()` encoding and
/// reads by their name (`read_sysreg(name)`), so they are not generated types.
macro_rules! named_reads {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        #[cfg(target_arch = "aarch64")]
        impl Cpu {
            $(
                $(#[$doc])*
                #[inline(always)]
                pub fn $name(&mut self) -> u64 {
                    let val: u64;
                    // SAFETY: reading this register has no side effect, and
                    // `mrs` touches no memory.
                    unsafe {
                        core::arch::asm!(concat!("mrs {0}, ", stringify!($name)), out(reg) val,
                                         options(nomem, nostack, preserves_flags));
                    }
                    val
                }
            )*
        }
    };
}

named_reads! {
    /// DAIF, the exception mask bits (`read_sysreg(daif)`, `asm/irqflags.h`).
    daif,
    /// SP_EL0, where the arm64 kernel keeps `current` (`get_current()`,
    /// `asm/current.h`).
    sp_el0,
}

#[cfg(target_arch = "aarch64")]
impl Cpu {
    /// `arch_local_irq_save()` without pseudo-NMI (`asm/irqflags.h`): DAIF,
    /// then IRQs and FIQs masked (`msr daifset, #3`) unless IRQs already
    /// were. Returns the DAIF to give [`Cpu::local_irq_restore`].
    ///
    /// # Safety
    ///
    /// The kernel masks interrupts through DAIF (no `CONFIG_ARM64_PSEUDO_NMI`,
    /// no IRQ-flag tracing wanted); the caller restores the flags on this CPU.
    #[inline(always)]
    pub unsafe fn local_irq_save(&mut self, irq_bit: u64) -> u64 {
        let flags = self.daif();
        if flags & irq_bit == 0 {
            // SAFETY: masks IRQs and FIQs on this CPU (the caller's contract);
            // a compiler barrier, as the C's `barrier()`s around it.
            unsafe { core::arch::asm!("msr daifset, #3", options(nostack, preserves_flags)) }
        }
        flags
    }

    /// `arch_local_irq_restore(flags)` without pseudo-NMI: DAIF = `flags`.
    ///
    /// # Safety
    ///
    /// `flags` is what [`Cpu::local_irq_save`] returned on this CPU.
    #[inline(always)]
    pub unsafe fn local_irq_restore(&mut self, flags: u64) {
        // SAFETY: restores the caller's saved mask (the caller's contract); a
        // compiler barrier, as the C's `barrier()`s around it.
        unsafe {
            core::arch::asm!("msr daif, {0}", in(reg) flags, options(nostack, preserves_flags))
        }
    }
}

#[cfg(target_arch = "aarch64")]
impl RegAccess for Cpu {
    #[inline(always)]
    fn read_raw<R: SysReg>(&mut self) -> u64 {
        // SAFETY: by the type invariant we run at EL2 and own the register, and
        // callers only name registers the CPU implements.
        unsafe { R::hw_read() }
    }

    #[inline(always)]
    fn write_raw<R: SysReg>(&mut self, val: u64) {
        // SAFETY: as for `read_raw`; the write is the owner's to make.
        unsafe { R::hw_write(val) }
    }

    #[inline(always)]
    fn isb(&mut self) {
        // SAFETY: `isb` only synchronizes the instruction stream.
        unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) }
    }

    #[inline(always)]
    fn dmb_sy(&mut self) {
        // SAFETY: `dmb sy` only orders memory accesses; it is not `nomem`, so the
        // compiler keeps memory accesses on their side of it.
        unsafe { core::arch::asm!("dmb sy", options(nostack, preserves_flags)) }
    }
}

/// Description of a generated register, for checks against the kernel's own
/// definitions (host tests) and for diagnostics.
#[derive(Debug)]
pub struct RegInfo {
    /// The architectural name.
    pub name: &'static str,
    /// The prefix of its fields' names in the kernel's definitions: its own name, or
    /// that of the `SysregFields` block it shares (`CPACR_ELx` for `CPACR_EL1`).
    pub field_prefix: &'static str,
    /// The `sys_reg()` encoding.
    pub encoding: u32,
    /// Its named fields.
    pub fields: &'static [FieldInfo],
}

/// Description of a generated field.
#[derive(Debug)]
pub struct FieldInfo {
    /// The field's name.
    pub name: &'static str,
    /// Its first bit.
    pub shift: u32,
    /// Its width in bits.
    pub width: u32,
    /// Its named values (enums of `arch/arm64/tools/sysreg`).
    pub values: &'static [(&'static str, u64)],
}
