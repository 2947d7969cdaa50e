// SPDX-License-Identifier: GPL-2.0

//! The hyp side of the debug register switch: `__debug_switch_to_guest()` and
//! `__debug_switch_to_host()` of `arch/arm64/kvm/hyp/vhe/debug-sr.c`, that is
//! `__debug_switch_to_{guest,host}_common()` with `__debug_save_state()` and
//! `__debug_restore_state()` of `hyp/include/hyp/debug-sr.h` (Linux 6.12.117).
//!
//! Only while the vCPU's `DEBUG_DIRTY` flag is set (the guest touched its debug
//! registers, or the VMM debugs it: `kvm_arm_setup_debug()` decides, still C)
//! are the breakpoint and watchpoint registers switched: at entry the host's
//! are saved into `host_data->host_debug_state.regs` and the guest's loaded
//! from `vcpu->arch.debug_ptr` (its own, or the VMM's external state); at the
//! exit the guest's are saved back there, the host's restored, and the flag
//! cleared. A guest that never touches them pays one flag test per switch.
//!
//! The registers move in the C's order: `DBGBCR<n>`, `DBGBVR<n>`, `DBGWCR<n>`,
//! `DBGWVR<n>` groups, each from the highest implemented number down to 0
//! (the C's `switch (nr)` with `fallthrough`), the numbers from
//! ID_AA64DFR0_EL1.BRPs and WRPs, then MDCCINT_EL1. `tests/debug.rs` checks
//! this against the C's text.
//!
//! Registers through [`RegAccess`], kernel state through [`DebugContext`]. No
//! `unsafe`.

use crate::arch::{RegAccess, Value, ID_AA64DFR0_EL1, MDCCINT_EL1};

/// `KVM_ARM_MAX_DBG_REGS`: the length of each array of `struct
/// kvm_guest_debug_arch`, and the number of registers of each kind the
/// architecture can have (the binding layer checks it against the uapi).
pub const MAX_DBG_REGS: usize = 16;

/// The four arrays of `struct kvm_guest_debug_arch`, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DbgKind {
    /// `dbg_bcr[]`: DBGBCR<n>_EL1, breakpoint control.
    Bcr,
    /// `dbg_bvr[]`: DBGBVR<n>_EL1, breakpoint value.
    Bvr,
    /// `dbg_wcr[]`: DBGWCR<n>_EL1, watchpoint control.
    Wcr,
    /// `dbg_wvr[]`: DBGWVR<n>_EL1, watchpoint value.
    Wvr,
}

impl DbgKind {
    /// Every kind, in the order the C moves them.
    pub const ALL: [DbgKind; 4] = [DbgKind::Bcr, DbgKind::Bvr, DbgKind::Wcr, DbgKind::Wvr];
}

/// Whose debug state: the host's (`host_data->host_debug_state.regs`, and
/// MDCCINT_EL1 in `host_ctxt`) or the vCPU's (`vcpu->arch.debug_ptr`, and
/// MDCCINT_EL1 in `vcpu->arch.ctxt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbgOwner {
    /// The host's.
    Host,
    /// The guest's (or the VMM's, for a vCPU it debugs).
    Guest,
}

/// The kernel state the debug switch reads and writes.
pub trait DebugContext {
    /// `vcpu_get_flag(vcpu, DEBUG_DIRTY)`.
    fn debug_dirty(&self) -> bool;

    /// `vcpu_clear_flag(vcpu, DEBUG_DIRTY)`.
    fn clear_debug_dirty(&mut self);

    /// Register `n` of `kind` in `owner`'s saved state (`n` <
    /// [`MAX_DBG_REGS`]).
    fn dbg(&self, owner: DbgOwner, kind: DbgKind, n: usize) -> u64;

    /// Sets what [`DebugContext::dbg`] reads.
    fn set_dbg(&mut self, owner: DbgOwner, kind: DbgKind, n: usize, val: u64);

    /// `ctxt_sys_reg(ctxt, MDCCINT_EL1)` of `owner`'s context.
    fn mdccint(&self, owner: DbgOwner) -> Value<MDCCINT_EL1::Reg>;

    /// Sets what [`DebugContext::mdccint`] reads.
    fn set_mdccint(&mut self, owner: DbgOwner, val: Value<MDCCINT_EL1::Reg>);
}

/// Declares [`read_dbg`] and [`write_dbg`] over the generated registers,
/// `DBG{B,W}{C,V}R<n>_EL1` by kind and number.
macro_rules! dbg_regs {
    ($($n:literal => $bcr:ident $bvr:ident $wcr:ident $wvr:ident,)*) => {
        const _: () = assert!([$($n),*].len() == MAX_DBG_REGS);

        /// Reads register `n` of `kind` (0 for a number past the table,
        /// which the 4-bit ID fields cannot give).
        #[inline(always)]
        fn read_dbg<A: RegAccess>(regs: &mut A, kind: DbgKind, n: usize) -> u64 {
            use crate::arch::*;
            match (kind, n) {
                $(
                    (DbgKind::Bcr, $n) => regs.read_raw::<$bcr::Reg>(),
                    (DbgKind::Bvr, $n) => regs.read_raw::<$bvr::Reg>(),
                    (DbgKind::Wcr, $n) => regs.read_raw::<$wcr::Reg>(),
                    (DbgKind::Wvr, $n) => regs.read_raw::<$wvr::Reg>(),
                )*
                _ => 0,
            }
        }

        /// Writes register `n` of `kind` (nothing past the table).
        #[inline(always)]
        fn write_dbg<A: RegAccess>(regs: &mut A, kind: DbgKind, n: usize, val: u64) {
            use crate::arch::*;
            match (kind, n) {
                $(
                    (DbgKind::Bcr, $n) => regs.write_raw::<$bcr::Reg>(val),
                    (DbgKind::Bvr, $n) => regs.write_raw::<$bvr::Reg>(val),
                    (DbgKind::Wcr, $n) => regs.write_raw::<$wcr::Reg>(val),
                    (DbgKind::Wvr, $n) => regs.write_raw::<$wvr::Reg>(val),
                )*
                _ => {}
            }
        }

        /// The encodings of register `n` of each kind, in [`DbgKind::ALL`]'s
        /// order (for the host tests).
        pub const DBG_ENCODINGS: [[u32; 4]; MAX_DBG_REGS] = {
            use crate::arch::*;
            [$([
                <$bcr::Reg as SysReg>::ENCODING,
                <$bvr::Reg as SysReg>::ENCODING,
                <$wcr::Reg as SysReg>::ENCODING,
                <$wvr::Reg as SysReg>::ENCODING,
            ],)*]
        };
    };
}

dbg_regs! {
    0 => DBGBCR0_EL1 DBGBVR0_EL1 DBGWCR0_EL1 DBGWVR0_EL1,
    1 => DBGBCR1_EL1 DBGBVR1_EL1 DBGWCR1_EL1 DBGWVR1_EL1,
    2 => DBGBCR2_EL1 DBGBVR2_EL1 DBGWCR2_EL1 DBGWVR2_EL1,
    3 => DBGBCR3_EL1 DBGBVR3_EL1 DBGWCR3_EL1 DBGWVR3_EL1,
    4 => DBGBCR4_EL1 DBGBVR4_EL1 DBGWCR4_EL1 DBGWVR4_EL1,
    5 => DBGBCR5_EL1 DBGBVR5_EL1 DBGWCR5_EL1 DBGWVR5_EL1,
    6 => DBGBCR6_EL1 DBGBVR6_EL1 DBGWCR6_EL1 DBGWVR6_EL1,
    7 => DBGBCR7_EL1 DBGBVR7_EL1 DBGWCR7_EL1 DBGWVR7_EL1,
    8 => DBGBCR8_EL1 DBGBVR8_EL1 DBGWCR8_EL1 DBGWVR8_EL1,
    9 => DBGBCR9_EL1 DBGBVR9_EL1 DBGWCR9_EL1 DBGWVR9_EL1,
    10 => DBGBCR10_EL1 DBGBVR10_EL1 DBGWCR10_EL1 DBGWVR10_EL1,
    11 => DBGBCR11_EL1 DBGBVR11_EL1 DBGWCR11_EL1 DBGWVR11_EL1,
    12 => DBGBCR12_EL1 DBGBVR12_EL1 DBGWCR12_EL1 DBGWVR12_EL1,
    13 => DBGBCR13_EL1 DBGBVR13_EL1 DBGWCR13_EL1 DBGWVR13_EL1,
    14 => DBGBCR14_EL1 DBGBVR14_EL1 DBGWCR14_EL1 DBGWVR14_EL1,
    15 => DBGBCR15_EL1 DBGBVR15_EL1 DBGWCR15_EL1 DBGWVR15_EL1,
}

/// The highest implemented breakpoint and watchpoint numbers: ID_AA64DFR0_EL1
/// BRPs and WRPs (the C's `(aa64dfr0 >> 12) & 0xf` and `>> 20`), each the
/// number of registers minus one.
#[inline(always)]
fn highest<A: RegAccess>(regs: &mut A) -> (usize, usize) {
    let dfr0 = regs.read::<ID_AA64DFR0_EL1::Reg>();
    (
        dfr0.field(ID_AA64DFR0_EL1::BRPs) as usize,
        dfr0.field(ID_AA64DFR0_EL1::WRPs) as usize,
    )
}

/// Runs `f` on the numbers the C's `switch (nr)` with `fallthrough` reaches:
/// `nr` down to 0 (a value past 15, which a 4-bit field cannot hold, is the
/// C's `default:`, register 0 alone). As in the C, one jump into straight-line
/// code: each `break 'rK` leaves the blocks nested inside `'rK`, so that the
/// calls from `f(K)` down to `f(0)` run, with constant numbers.
#[inline(always)]
fn down_from(nr: usize, mut f: impl FnMut(usize)) {
    'r0: {
        'r1: {
            'r2: {
                'r3: {
                    'r4: {
                        'r5: {
                            'r6: {
                                'r7: {
                                    'r8: {
                                        'r9: {
                                            'r10: {
                                                'r11: {
                                                    'r12: {
                                                        'r13: {
                                                            'r14: {
                                                                'r15: {
                                                                    match nr {
                                                                        15 => break 'r15,
                                                                        14 => break 'r14,
                                                                        13 => break 'r13,
                                                                        12 => break 'r12,
                                                                        11 => break 'r11,
                                                                        10 => break 'r10,
                                                                        9 => break 'r9,
                                                                        8 => break 'r8,
                                                                        7 => break 'r7,
                                                                        6 => break 'r6,
                                                                        5 => break 'r5,
                                                                        4 => break 'r4,
                                                                        3 => break 'r3,
                                                                        2 => break 'r2,
                                                                        1 => break 'r1,
                                                                        _ => break 'r0,
                                                                    }
                                                                }
                                                                f(15);
                                                            }
                                                            f(14);
                                                        }
                                                        f(13);
                                                    }
                                                    f(12);
                                                }
                                                f(11);
                                            }
                                            f(10);
                                        }
                                        f(9);
                                    }
                                    f(8);
                                }
                                f(7);
                            }
                            f(6);
                        }
                        f(5);
                    }
                    f(4);
                }
                f(3);
            }
            f(2);
        }
        f(1);
    }
    f(0);
}

/// `save_debug(ptr, reg, nr)`: registers `nr` down to 0 of `kind` into
/// `owner`'s state.
#[inline(always)]
fn save_kind<C: DebugContext, A: RegAccess>(
    ctx: &mut C,
    regs: &mut A,
    owner: DbgOwner,
    kind: DbgKind,
    nr: usize,
) {
    down_from(nr, |n| {
        let v = read_dbg(regs, kind, n);
        ctx.set_dbg(owner, kind, n, v);
    });
}

/// `restore_debug(ptr, reg, nr)`: registers `nr` down to 0 of `kind` from
/// `owner`'s state.
#[inline(always)]
fn restore_kind<C: DebugContext, A: RegAccess>(
    ctx: &mut C,
    regs: &mut A,
    owner: DbgOwner,
    kind: DbgKind,
    nr: usize,
) {
    down_from(nr, |n| write_dbg(regs, kind, n, ctx.dbg(owner, kind, n)));
}

/// `__debug_save_state(dbg, ctxt)`: the CPU's registers into `owner`'s state.
#[inline(always)]
fn save_state<C: DebugContext, A: RegAccess>(ctx: &mut C, regs: &mut A, owner: DbgOwner) {
    let (brps, wrps) = highest(regs);
    save_kind(ctx, regs, owner, DbgKind::Bcr, brps);
    save_kind(ctx, regs, owner, DbgKind::Bvr, brps);
    save_kind(ctx, regs, owner, DbgKind::Wcr, wrps);
    save_kind(ctx, regs, owner, DbgKind::Wvr, wrps);
    let mdccint = regs.read::<MDCCINT_EL1::Reg>();
    ctx.set_mdccint(owner, mdccint);
}

/// `__debug_restore_state(dbg, ctxt)`: `owner`'s state onto the CPU.
#[inline(always)]
fn restore_state<C: DebugContext, A: RegAccess>(ctx: &mut C, regs: &mut A, owner: DbgOwner) {
    let (brps, wrps) = highest(regs);
    restore_kind(ctx, regs, owner, DbgKind::Bcr, brps);
    restore_kind(ctx, regs, owner, DbgKind::Bvr, brps);
    restore_kind(ctx, regs, owner, DbgKind::Wcr, wrps);
    restore_kind(ctx, regs, owner, DbgKind::Wvr, wrps);
    regs.write(ctx.mdccint(owner));
}

/// `__debug_switch_to_guest(vcpu)`: with `DEBUG_DIRTY`, the host's debug
/// registers saved and the guest's loaded. Every exception masked, the
/// guest's traps active. Returns whether it switched (the entry was dirty).
#[inline(always)]
pub fn switch_to_guest<C: DebugContext, A: RegAccess>(ctx: &mut C, regs: &mut A) -> bool {
    if !ctx.debug_dirty() {
        return false;
    }
    save_state(ctx, regs, DbgOwner::Host);
    restore_state(ctx, regs, DbgOwner::Guest);
    true
}

/// `__debug_switch_to_host(vcpu)`: with `DEBUG_DIRTY`, the guest's debug
/// registers saved and the host's restored, then `DEBUG_DIRTY` cleared (the
/// next `kvm_arm_setup_debug()` sets it again if the guest's debug state is
/// still live).
#[inline(always)]
pub fn switch_to_host<C: DebugContext, A: RegAccess>(ctx: &mut C, regs: &mut A) {
    if !ctx.debug_dirty() {
        return;
    }
    save_state(ctx, regs, DbgOwner::Guest);
    restore_state(ctx, regs, DbgOwner::Host);
    ctx.clear_debug_dirty();
}
