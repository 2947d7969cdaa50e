// SPDX-License-Identifier: GPL-2.0

//! `cpu_regs!`: registers as data.

/// Declares an enum of CPU registers, each variant one of the register types
/// generated into `crate::arch` (so its encoding is the kernel's), with its
/// name, encoding, `read` and `write`: registers as data. Used for `crate::world::sysreg_sr::CpuReg` and
/// for `crate::world::traps::FgtReg`.
macro_rules! cpu_regs {
    ($(#[$doc:meta])* $enum:ident { $($name:ident),* $(,)? }) => {
        $(#[$doc])*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $enum {
            $(
                #[doc = concat!("`crate::arch::", stringify!($name), "`.")]
                $name,
            )*
        }

        impl $enum {
            /// Every register declared here.
            pub const ALL: &'static [$enum] = &[$($enum::$name,)*];

            /// The architectural name ([`crate::arch::SysReg::NAME`]).
            pub const fn name(self) -> &'static str {
                match self {
                    $($enum::$name => <$crate::arch::$name::Reg as $crate::arch::SysReg>::NAME,)*
                }
            }

            /// The `sys_reg()` encoding ([`crate::arch::SysReg::ENCODING`]).
            pub const fn encoding(self) -> u32 {
                match self {
                    $($enum::$name => <$crate::arch::$name::Reg as $crate::arch::SysReg>::ENCODING,)*
                }
            }

            /// Reads the register through `regs`.
            #[inline(always)]
            pub fn read<A: $crate::arch::RegAccess>(self, regs: &mut A) -> u64 {
                match self {
                    $($enum::$name => regs.read_raw::<$crate::arch::$name::Reg>(),)*
                }
            }

            /// Writes `val` to the register through `regs`.
            #[inline(always)]
            pub fn write<A: $crate::arch::RegAccess>(self, regs: &mut A, val: u64) {
                match self {
                    $($enum::$name => regs.write_raw::<$crate::arch::$name::Reg>(val),)*
                }
            }
        }
    };
}
pub(crate) use cpu_regs;
