// SPDX-License-Identifier: GPL-2.0

//! The hyp side of the debug switch (`rust/world/debug.rs`) against the
//! kernel's `hyp/include/hyp/debug-sr.h` and on a simulated CPU:
//!
//! 1. the C's text: the four groups in their order, the ID_AA64DFR0_EL1 fields
//!    the C extracts by shift, the `switch (nr)` from 15 down with
//!    `fallthrough` to `default:` 0, MDCCINT_EL1, the `DEBUG_DIRTY` test and
//!    its clearing at the switch back only; the register encodings are
//!    `asm/sysreg.h`'s;
//! 2. for every number of breakpoints and watchpoints the CPU can have, a
//!    dirty entry then exit moves exactly the implemented registers, highest
//!    first, gives the guest its own values and the host its own back, saves
//!    what the guest left, and clears the flag; a clean vCPU touches nothing.

mod common;

use common::cexpr::Macros;
use common::kernel::{c_function, read_kernel, squash, strip_comments};
use common::rng::Rng;
use std::collections::HashMap;
use vhe_rs_hosttest::arch::{SysReg, Value, ID_AA64DFR0_EL1, MDCCINT_EL1};
use vhe_rs_hosttest::sim::{Event, SimRegs};
use vhe_rs_hosttest::world::debug::{
    self, DbgKind, DbgOwner, DebugContext, DBG_ENCODINGS, MAX_DBG_REGS,
};

const DEBUG_SR_H: &str = "arch/arm64/kvm/hyp/include/hyp/debug-sr.h";

#[test]
fn the_c_is_what_debug_rs_follows() {
    let raw = strip_comments(&read_kernel(DEBUG_SR_H)).replace("\\\n", " ");
    let text = squash(&raw);
    // The groups, in their order, with the numbers from ID_AA64DFR0_EL1.
    for f in ["__debug_save_state", "__debug_restore_state"] {
        let body = c_function(&raw, f);
        let verb = if f.contains("save") {
            "save"
        } else {
            "restore"
        };
        let want = format!(
            "brps = (aa64dfr0 >> 12) & 0xf; wrps = (aa64dfr0 >> 20) & 0xf; \
             {verb}_debug(dbg->dbg_bcr, dbgbcr, brps); {verb}_debug(dbg->dbg_bvr, dbgbvr, brps); \
             {verb}_debug(dbg->dbg_wcr, dbgwcr, wrps); {verb}_debug(dbg->dbg_wvr, dbgwvr, wrps);"
        );
        assert!(squash(body).contains(&want), "{f}: {body}");
        assert!(body.contains("mdccint_el1"), "{f}");
    }
    assert_eq!(ID_AA64DFR0_EL1::BRPs.shift(), 12);
    assert_eq!(ID_AA64DFR0_EL1::BRPs.mask() >> 12, 0xf);
    assert_eq!(ID_AA64DFR0_EL1::WRPs.shift(), 20);
    assert_eq!(ID_AA64DFR0_EL1::WRPs.mask() >> 20, 0xf);
    // The switch: 15 down to 1 with fallthrough, default 0.
    let mut want = String::from("switch (nr) {");
    for n in (1..=15).rev() {
        want += &format!(" case {n}: ptr[{n}] = read_debug(reg, {n}); fallthrough;");
    }
    want += " default: ptr[0] = read_debug(reg, 0); }";
    assert!(
        text.contains(&squash(&want)),
        "save_debug is not the 15-down switch"
    );
    // Save then restore at entry, the other way at exit, the flag cleared
    // only at exit.
    let to_guest = squash(c_function(&raw, "__debug_switch_to_guest_common"));
    let flag = "if (!vcpu_get_flag(vcpu, DEBUG_DIRTY)) return;";
    assert!(to_guest.find(flag) < to_guest.find("__debug_save_state") && to_guest.contains(flag));
    assert!(to_guest.contains(
        "__debug_save_state(host_dbg, host_ctxt); __debug_restore_state(guest_dbg, guest_ctxt);"
    ));
    assert!(!to_guest.contains("vcpu_clear_flag"));
    let to_host = squash(c_function(&raw, "__debug_switch_to_host_common"));
    assert!(to_host.find(flag) < to_host.find("__debug_save_state") && to_host.contains(flag));
    assert!(to_host.ends_with(
        "__debug_save_state(guest_dbg, guest_ctxt); __debug_restore_state(host_dbg, host_ctxt); \
         vcpu_clear_flag(vcpu, DEBUG_DIRTY);"
    ));
    // The registers are asm/sysreg.h's SYS_DBG{B,W}{C,V}Rn_EL1(n).
    let m = Macros::from_files(&["arch/arm64/include/asm/sysreg.h"]);
    for (n, regs) in DBG_ENCODINGS.iter().enumerate() {
        for (k, name) in [
            "SYS_DBGBCRn_EL1",
            "SYS_DBGBVRn_EL1",
            "SYS_DBGWCRn_EL1",
            "SYS_DBGWVRn_EL1",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(
                u64::from(regs[k]),
                m.eval_u64(&format!("{name}({n})"), &[]),
                "{name}({n})"
            );
        }
    }
    assert_eq!(MAX_DBG_REGS, 16);
}

/// The kernel state: both owners' saved registers and MDCCINT_EL1, the flag.
struct Ctx {
    dirty: bool,
    state: HashMap<(bool, usize, usize), u64>,
    mdccint: [u64; 2],
}

fn idx(kind: DbgKind) -> usize {
    DbgKind::ALL.iter().position(|k| *k == kind).unwrap()
}

impl DebugContext for Ctx {
    fn debug_dirty(&self) -> bool {
        self.dirty
    }
    fn clear_debug_dirty(&mut self) {
        self.dirty = false;
    }
    fn dbg(&self, owner: DbgOwner, kind: DbgKind, n: usize) -> u64 {
        assert!(n < MAX_DBG_REGS);
        self.state[&(owner == DbgOwner::Host, idx(kind), n)]
    }
    fn set_dbg(&mut self, owner: DbgOwner, kind: DbgKind, n: usize, val: u64) {
        assert!(n < MAX_DBG_REGS);
        self.state
            .insert((owner == DbgOwner::Host, idx(kind), n), val);
    }
    fn mdccint(&self, owner: DbgOwner) -> Value<MDCCINT_EL1::Reg> {
        Value::from_raw(self.mdccint[usize::from(owner == DbgOwner::Host)])
    }
    fn set_mdccint(&mut self, owner: DbgOwner, val: Value<MDCCINT_EL1::Reg>) {
        self.mdccint[usize::from(owner == DbgOwner::Host)] = val.raw();
    }
}

const KINDS: [&str; 4] = ["BCR", "BVR", "WCR", "WVR"];

/// The names of the implemented registers in the order the C moves them.
fn order(brps: usize, wrps: usize) -> Vec<String> {
    let mut v = Vec::new();
    for (k, kind) in KINDS.iter().enumerate() {
        let nr = if k < 2 { brps } else { wrps };
        for n in (0..=nr).rev() {
            v.push(format!("DBG{kind}{n}_EL1"));
        }
    }
    v
}

/// The breakpoint or watchpoint register an access is to, if it is one.
fn dbg_name(e: &Event) -> Option<String> {
    let name = match e {
        Event::Read(n) | Event::Write(n, _) => *n,
        _ => return None,
    };
    KINDS
        .iter()
        .any(|k| name.starts_with(&format!("DBG{k}")))
        .then(|| name.to_string())
}

#[test]
// Register numbers index the CPU, the state and the tables alike.
#[allow(clippy::needless_range_loop)]
fn a_dirty_run_switches_exactly_the_implemented_registers() {
    let mut rng = Rng(0xdeb6);
    for brps in 0..MAX_DBG_REGS {
        for wrps in 0..MAX_DBG_REGS {
            let mut regs = SimRegs::new();
            let dfr0 = ID_AA64DFR0_EL1::BRPs.val(brps as u64).apply(rng.next())
                & !ID_AA64DFR0_EL1::WRPs.mask()
                | ID_AA64DFR0_EL1::WRPs.val(wrps as u64).value();
            regs.set::<ID_AA64DFR0_EL1::Reg>(dfr0);
            let mut ctx = Ctx {
                dirty: true,
                state: HashMap::new(),
                mdccint: [rng.next(), 0],
            };
            let mut host = HashMap::new();
            for n in 0..MAX_DBG_REGS {
                for k in 0..4 {
                    let h = rng.next();
                    regs.set_encoded(DBG_ENCODINGS[n][k], h);
                    host.insert((k, n), h);
                    ctx.state.insert((false, k, n), rng.next());
                    ctx.state.insert((true, k, n), 0);
                }
            }
            let host_mdccint = rng.next();
            regs.set::<MDCCINT_EL1::Reg>(host_mdccint);
            let guest = ctx.state.clone();
            let guest_mdccint = ctx.mdccint[0];

            assert!(
                debug::switch_to_guest(&mut ctx, &mut regs),
                "a dirty entry switches"
            );
            assert!(ctx.dirty, "the flag stays set while the guest runs");
            let implemented = |k: usize, n: usize| n <= if k < 2 { brps } else { wrps };
            for n in 0..MAX_DBG_REGS {
                for k in 0..4 {
                    let on_cpu = regs.get_encoded(DBG_ENCODINGS[n][k]).unwrap();
                    if implemented(k, n) {
                        assert_eq!(on_cpu, guest[&(false, k, n)], "guest's {k}/{n} on the CPU");
                        assert_eq!(
                            ctx.state[&(true, k, n)],
                            host[&(k, n)],
                            "host's {k}/{n} saved"
                        );
                    } else {
                        assert_eq!(on_cpu, host[&(k, n)], "unimplemented {k}/{n} touched");
                    }
                }
            }
            assert_eq!(regs.get::<MDCCINT_EL1::Reg>(), Some(guest_mdccint));
            assert_eq!(ctx.mdccint[1], host_mdccint);
            let moved: Vec<String> = regs.log.iter().filter_map(dbg_name).collect();
            let mut want = order(brps, wrps);
            want.extend(order(brps, wrps));
            assert_eq!(
                moved, want,
                "brps {brps} wrps {wrps}: save then restore, highest first"
            );

            // The guest changes its registers, then exits.
            let mut left = HashMap::new();
            for n in 0..=brps.max(wrps) {
                for k in 0..4 {
                    if implemented(k, n) {
                        let v = rng.next();
                        regs.set_encoded(DBG_ENCODINGS[n][k], v);
                        left.insert((k, n), v);
                    }
                }
            }
            regs.log.clear();
            debug::switch_to_host(&mut ctx, &mut regs);
            assert!(!ctx.dirty, "the switch back clears DEBUG_DIRTY");
            for n in 0..MAX_DBG_REGS {
                for k in 0..4 {
                    assert_eq!(
                        regs.get_encoded(DBG_ENCODINGS[n][k]).unwrap(),
                        host[&(k, n)],
                        "host's {k}/{n} back"
                    );
                    if implemented(k, n) {
                        assert_eq!(
                            ctx.state[&(false, k, n)],
                            left[&(k, n)],
                            "guest's {k}/{n} saved"
                        );
                    }
                }
            }
            assert_eq!(regs.get::<MDCCINT_EL1::Reg>(), Some(host_mdccint));

            // Clean: nothing moves.
            regs.log.clear();
            assert!(
                !debug::switch_to_guest(&mut ctx, &mut regs),
                "a clean entry does not"
            );
            debug::switch_to_host(&mut ctx, &mut regs);
            assert!(regs.log.is_empty(), "a clean vCPU touched {:?}", regs.log);
        }
    }
    let _ = <MDCCINT_EL1::Reg as SysReg>::ENCODING;
}
