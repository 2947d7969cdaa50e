// SPDX-License-Identifier: GPL-2.0

//! The debug state machine (`rust/world/debug_state.rs`) against the C it
//! follows, `arch/arm64/kvm/debug.c` of the kernel being built, and, with the
//! hyp-side switch (`rust/world/debug.rs`), on simulated CPUs:
//!
//! 1. the C's text: the MDCR_EL2 trap bits `kvm_arm_setup_mdcr_el2()` ORs in,
//!    evaluated from `asm/kvm_arm.h`, the conditions of TDE and TDA, every
//!    statement of `kvm_arm_setup_debug()` and `kvm_arm_clear_debug()` that
//!    the model below transcribes, the `u32` of `guest_debug_preserved`, and
//!    every field the Rust uses against the C macro it stands for;
//! 2. `setup_debug()` and `clear_debug()` against a transcription of the C
//!    ([`c_setup_debug`], [`c_clear_debug`]) for every combination of their
//!    inputs: the `KVM_GUESTDBG_*` flags, the OS lock, both flags, MDSCR_EL1's
//!    debug bits (and high bits), PSTATE.SS, the debug pointer, the vCPU's
//!    MDCR_EL2 before, the host's HPMN: the whole vCPU and every register
//!    write must be the same;
//! 3. every sequence of up to 8 events (the guest runs and writes a debug
//!    register, enables or disables debug, sets or clears its OS lock, leaves a
//!    step pending or takes it; the VMM turns single-step or its hardware
//!    breakpoints on, or guest debug off; the vCPU is put and loaded on the
//!    other CPU; the host installs a hardware breakpoint), run through
//!    `setup_debug`, the hyp switch and `clear_debug` on two simulated CPUs,
//!    must keep each debug state where it belongs: the host's on each CPU
//!    outside the guest, the guest's own in the vCPU, the VMM's unchanged,
//!    the guest's or the VMM's on the CPU while the guest runs with debug
//!    live, TDA set whenever the CPU holds the host's, and each call equal
//!    to the C's.

mod common;

use common::cexpr::Macros;
use common::cpu::Cpu;
use common::kernel::{c_function, kdir, read_kernel, squash, strip_comments};
use common::rng::Rng;
use std::collections::HashSet;
use vhe_rs_hosttest::arch::{
    RegAccess, SysReg, Value, ID_AA64DFR0_EL1, MDCCINT_EL1, MDCR_EL2, MDSCR_EL1, OSLSR_EL1,
    SPSR_EL2,
};
use vhe_rs_hosttest::sim::{Event, SimRegs};
use vhe_rs_hosttest::world::debug::{self, DbgKind, DbgOwner, DebugContext, DBG_ENCODINGS};
use vhe_rs_hosttest::world::debug_state::{
    self, DebugFlag, DebugSource, DebugStateContext, GuestDebug, Preserved, MDCR_EL2_ALWAYS,
};
use vhe_rs_hosttest::world::sysreg_sr::VcpuSysReg;

const DEBUG_C: &str = "arch/arm64/kvm/debug.c";

/// The kernel's macros the tests evaluate.
fn macros() -> Macros {
    Macros::from_files(&[
        "arch/arm64/include/asm/kvm_arm.h",
        "arch/arm64/include/asm/debug-monitors.h",
        "arch/arm64/include/asm/sysreg.h",
        "include/uapi/linux/kvm.h",
        "arch/arm64/include/uapi/asm/kvm.h",
        "arch/arm64/include/uapi/asm/ptrace.h",
    ])
}

/// `KVM_GUESTDBG_*` of the kernel's uapi.
#[derive(Clone, Copy, Debug)]
struct Dbg {
    enable: u64,
    singlestep: u64,
    use_sw_bp: u64,
    use_hw: u64,
}

fn guestdbg() -> Dbg {
    let m = macros();
    Dbg {
        enable: m.eval_u64("KVM_GUESTDBG_ENABLE", &[]),
        singlestep: m.eval_u64("KVM_GUESTDBG_SINGLESTEP", &[]),
        use_sw_bp: m.eval_u64("KVM_GUESTDBG_USE_SW_BP", &[]),
        use_hw: m.eval_u64("KVM_GUESTDBG_USE_HW", &[]),
    }
}

impl Dbg {
    fn of(self, raw: u64) -> GuestDebug {
        GuestDebug {
            raw,
            singlestep: self.singlestep,
            use_hw: self.use_hw,
        }
    }
}

// ---------------------------------------------------------------------------
// 1. The C's text.

#[test]
fn the_c_is_what_debug_state_follows() {
    let m = macros();
    let raw = strip_comments(&read_kernel(DEBUG_C));
    // kvm_arm_setup_mdcr_el2(): the HPMN of the per-CPU value, the trap bits
    // always set, TDE and TDA under their conditions.
    let mdcr = squash(c_function(&raw, "kvm_arm_setup_mdcr_el2"));
    assert!(mdcr.contains(
        "{ vcpu->arch.mdcr_el2 = __this_cpu_read(mdcr_el2) & MDCR_EL2_HPMN_MASK; \
         vcpu->arch.mdcr_el2 |= ("
    ));
    let ors = mdcr
        .split_once("vcpu->arch.mdcr_el2 |= (")
        .unwrap()
        .1
        .split_once(");")
        .unwrap()
        .0;
    let names: Vec<&str> = ors.split('|').map(str::trim).collect();
    assert_eq!(names.len(), 6, "{ors}");
    let always = names.iter().fold(0, |a, n| a | m.eval_u64(n, &[]));
    assert_eq!(always, MDCR_EL2_ALWAYS, "the trap bits always set: {ors}");
    assert!(mdcr.contains("if (vcpu->guest_debug) vcpu->arch.mdcr_el2 |= MDCR_EL2_TDE;"));
    assert!(mdcr.contains(
        "if ((vcpu->guest_debug & KVM_GUESTDBG_USE_HW) || !vcpu_get_flag(vcpu, DEBUG_DIRTY) || \
         kvm_vcpu_os_lock_enabled(vcpu)) vcpu->arch.mdcr_el2 |= MDCR_EL2_TDA;"
    ));
    // The fields the Rust names, against the C's macros.
    for (field, c) in [
        (MDCR_EL2::TPM.mask(), "MDCR_EL2_TPM"),
        (MDCR_EL2::TPMCR.mask(), "MDCR_EL2_TPMCR"),
        (MDCR_EL2::TDE.mask(), "MDCR_EL2_TDE"),
        (MDCR_EL2::TDA.mask(), "MDCR_EL2_TDA"),
        (MDCR_EL2::TDOSA.mask(), "MDCR_EL2_TDOSA"),
        (MDCR_EL2::TDRA.mask(), "MDCR_EL2_TDRA"),
        (MDCR_EL2::TPMS.mask(), "MDCR_EL2_TPMS"),
        (MDCR_EL2::TTRF.mask(), "MDCR_EL2_TTRF"),
        (MDCR_EL2::HPMN.mask(), "MDCR_EL2_HPMN_MASK"),
        (MDSCR_EL1::SS.mask(), "DBG_MDSCR_SS"),
        (MDSCR_EL1::KDE.mask(), "DBG_MDSCR_KDE"),
        (MDSCR_EL1::MDE.mask(), "DBG_MDSCR_MDE"),
        (SPSR_EL2::SS.mask(), "DBG_SPSR_SS"),
        (OSLSR_EL1::OSLK.mask(), "OSLSR_EL1_OSLK"),
    ] {
        assert_eq!(field, m.eval_u64(c, &[]), "{c}");
    }
    // kvm_vcpu_os_lock_enabled() is OSLSR_EL1.OSLK of the vCPU's copy.
    let host_raw = strip_comments(&read_kernel("arch/arm64/include/asm/kvm_host.h"));
    let host_h = squash(&host_raw.replace("\\\n", " "));
    assert!(host_h.contains(
        "#define kvm_vcpu_os_lock_enabled(vcpu) (!!(__vcpu_sys_reg(vcpu, OSLSR_EL1) & OSLSR_EL1_OSLK))"
    ));
    // guest_debug_preserved keeps MDSCR_EL1 in a u32.
    assert!(host_h.contains("struct { u32 mdscr_el1; bool pstate_ss; } guest_debug_preserved;"));

    // Every function the transcription follows, whole (traces aside): a
    // statement added to, removed from or changed in the C fails here.
    for (f, want) in C_BODIES {
        assert_eq!(c_whole(&raw, f), squash(want), "{f}: the C changed");
    }
    // What the event walk assumes of the rest of KVM.
    model_assumptions();
    // MDSCR_EL1 is not read from the CPU by vcpu_read_sys_reg() (checked at
    // compile time in debug_state.rs, and here against the kernel's list).
    let from_cpu = c_function(&host_raw, "__vcpu_read_sys_reg_from_cpu");
    assert!(!from_cpu.contains("MDSCR_EL1"));
}

/// The functions of `debug.c` the transcription below follows, as the
/// kernel being built has them (comments and `trace_*()` calls left out).
const C_BODIES: [(&str, &str); 6] = [
    (
        "kvm_arm_setup_mdcr_el2",
        "static void kvm_arm_setup_mdcr_el2(struct kvm_vcpu *vcpu) {
         vcpu->arch.mdcr_el2 = __this_cpu_read(mdcr_el2) & MDCR_EL2_HPMN_MASK;
         vcpu->arch.mdcr_el2 |= (MDCR_EL2_TPM | MDCR_EL2_TPMS | MDCR_EL2_TTRF | MDCR_EL2_TPMCR |
         MDCR_EL2_TDRA | MDCR_EL2_TDOSA);
         if (vcpu->guest_debug) vcpu->arch.mdcr_el2 |= MDCR_EL2_TDE;
         if ((vcpu->guest_debug & KVM_GUESTDBG_USE_HW) || !vcpu_get_flag(vcpu, DEBUG_DIRTY) ||
         kvm_vcpu_os_lock_enabled(vcpu)) vcpu->arch.mdcr_el2 |= MDCR_EL2_TDA; }",
    ),
    (
        "kvm_arm_setup_debug",
        "void kvm_arm_setup_debug(struct kvm_vcpu *vcpu) {
         unsigned long mdscr, orig_mdcr_el2 = vcpu->arch.mdcr_el2;
         kvm_arm_setup_mdcr_el2(vcpu);
         if (vcpu->guest_debug || kvm_vcpu_os_lock_enabled(vcpu)) {
         save_guest_debug_regs(vcpu);
         if (vcpu->guest_debug & KVM_GUESTDBG_SINGLESTEP) {
         if (!vcpu_get_flag(vcpu, DBG_SS_ACTIVE_PENDING)) *vcpu_cpsr(vcpu) |= DBG_SPSR_SS;
         else *vcpu_cpsr(vcpu) &= ~DBG_SPSR_SS;
         mdscr = vcpu_read_sys_reg(vcpu, MDSCR_EL1); mdscr |= DBG_MDSCR_SS;
         vcpu_write_sys_reg(vcpu, mdscr, MDSCR_EL1);
         } else { mdscr = vcpu_read_sys_reg(vcpu, MDSCR_EL1); mdscr &= ~DBG_MDSCR_SS;
         vcpu_write_sys_reg(vcpu, mdscr, MDSCR_EL1); }
         if (vcpu->guest_debug & KVM_GUESTDBG_USE_HW) {
         mdscr = vcpu_read_sys_reg(vcpu, MDSCR_EL1); mdscr |= DBG_MDSCR_MDE;
         vcpu_write_sys_reg(vcpu, mdscr, MDSCR_EL1);
         vcpu->arch.debug_ptr = &vcpu->arch.external_debug_state;
         vcpu_set_flag(vcpu, DEBUG_DIRTY);
         } else if (kvm_vcpu_os_lock_enabled(vcpu)) {
         mdscr = vcpu_read_sys_reg(vcpu, MDSCR_EL1); mdscr &= ~DBG_MDSCR_MDE;
         vcpu_write_sys_reg(vcpu, mdscr, MDSCR_EL1); } }
         BUG_ON(!vcpu->guest_debug && vcpu->arch.debug_ptr != &vcpu->arch.vcpu_debug_state);
         if (vcpu_read_sys_reg(vcpu, MDSCR_EL1) & (DBG_MDSCR_KDE | DBG_MDSCR_MDE))
         vcpu_set_flag(vcpu, DEBUG_DIRTY);
         if (has_vhe() && orig_mdcr_el2 != vcpu->arch.mdcr_el2)
         write_sysreg(vcpu->arch.mdcr_el2, mdcr_el2); }",
    ),
    (
        "kvm_arm_clear_debug",
        "void kvm_arm_clear_debug(struct kvm_vcpu *vcpu) {
         if (vcpu->guest_debug || kvm_vcpu_os_lock_enabled(vcpu)) {
         if (vcpu->guest_debug & KVM_GUESTDBG_SINGLESTEP) {
         if (!(*vcpu_cpsr(vcpu) & DBG_SPSR_SS)) vcpu_set_flag(vcpu, DBG_SS_ACTIVE_PENDING); }
         restore_guest_debug_regs(vcpu);
         if (vcpu->guest_debug & KVM_GUESTDBG_USE_HW) { kvm_arm_reset_debug_ptr(vcpu); } } }",
    ),
    (
        "save_guest_debug_regs",
        "static void save_guest_debug_regs(struct kvm_vcpu *vcpu) {
         u64 val = vcpu_read_sys_reg(vcpu, MDSCR_EL1);
         vcpu->arch.guest_debug_preserved.mdscr_el1 = val;
         vcpu->arch.guest_debug_preserved.pstate_ss = (*vcpu_cpsr(vcpu) & DBG_SPSR_SS); }",
    ),
    (
        "restore_guest_debug_regs",
        "static void restore_guest_debug_regs(struct kvm_vcpu *vcpu) {
         u64 val = vcpu->arch.guest_debug_preserved.mdscr_el1;
         vcpu_write_sys_reg(vcpu, val, MDSCR_EL1);
         if (vcpu->arch.guest_debug_preserved.pstate_ss) *vcpu_cpsr(vcpu) |= DBG_SPSR_SS;
         else *vcpu_cpsr(vcpu) &= ~DBG_SPSR_SS; }",
    ),
    (
        "kvm_arm_reset_debug_ptr",
        "void kvm_arm_reset_debug_ptr(struct kvm_vcpu *vcpu) {
         vcpu->arch.debug_ptr = &vcpu->arch.vcpu_debug_state; }",
    ),
];

/// What the event walk ([`World`]) and the host HPMN choice assume of the
/// rest of KVM, checked on its text.
fn model_assumptions() {
    // kvm_arch_vcpu_ioctl_run(): IRQs off, setup_debug, the run, clear_debug,
    // then (IRQs on) handle_exit(): trapped accesses are emulated after
    // clear_debug.
    let arm = strip_comments(&read_kernel("arch/arm64/kvm/arm.c"));
    let run = squash(c_function(&arm, "kvm_arch_vcpu_ioctl_run"));
    in_order(
        &run,
        &[
            "local_irq_disable();",
            "if (!kvm_vhe_backend_op(vcpu, setup_debug)) kvm_arm_setup_debug(vcpu);",
            "ret = kvm_arm_vcpu_enter_exit(vcpu);",
            "if (!kvm_vhe_backend_op(vcpu, clear_debug)) kvm_arm_clear_debug(vcpu);",
            "local_irq_enable();",
            "ret = handle_exit(vcpu, ret);",
        ],
        "kvm_arch_vcpu_ioctl_run",
    );
    // KVM_SET_GUEST_DEBUG: the control kept if enabled (USE_HW copies the
    // VMM's registers), else 0 and DBG_SS_ACTIVE_PENDING cleared.
    let guest = strip_comments(&read_kernel("arch/arm64/kvm/guest.c"));
    assert_eq!(
        c_whole(&guest, "kvm_arch_vcpu_ioctl_set_guest_debug"),
        squash(
            "int kvm_arch_vcpu_ioctl_set_guest_debug(struct kvm_vcpu *vcpu,
             struct kvm_guest_debug *dbg) { int ret = 0;
             if (dbg->control & ~KVM_GUESTDBG_VALID_MASK) { ret = -EINVAL; goto out; }
             if (dbg->control & KVM_GUESTDBG_ENABLE) { vcpu->guest_debug = dbg->control;
             if (vcpu->guest_debug & KVM_GUESTDBG_USE_HW) {
             vcpu->arch.external_debug_state = dbg->arch; }
             } else { vcpu->guest_debug = 0; vcpu_clear_flag(vcpu, DBG_SS_ACTIVE_PENDING); }
             out: return ret; }"
        )
    );
    // A Software Step exit clears DBG_SS_ACTIVE_PENDING.
    let he = squash(&strip_comments(&read_kernel(
        "arch/arm64/kvm/handle_exit.c",
    )));
    assert!(he.contains(
        "case ESR_ELx_EC_SOFTSTP_LOW: vcpu_clear_flag(vcpu, DBG_SS_ACTIVE_PENDING); break;"
    ));
    // A trapped write of a debug register (or MDSCR_EL1) goes to the vCPU's
    // own state and sets DEBUG_DIRTY; OSLAR_EL1 sets OSLSR_EL1.OSLK.
    let sr = strip_comments(&read_kernel("arch/arm64/kvm/sys_regs.c"));
    assert_eq!(
        c_whole(&sr, "trap_debug_regs"),
        squash(
            "static bool trap_debug_regs(struct kvm_vcpu *vcpu, struct sys_reg_params *p,
             const struct sys_reg_desc *r) { access_rw(vcpu, p, r);
             if (p->is_write) vcpu_set_flag(vcpu, DEBUG_DIRTY); return true; }"
        )
    );
    let bvr = squash(c_function(&sr, "trap_bvr"));
    assert!(bvr.contains("u64 *dbg_reg = &vcpu->arch.vcpu_debug_state.dbg_bvr[rd->CRm];"));
    assert!(squash(c_function(&sr, "reg_to_dbg")).contains("vcpu_set_flag(vcpu, DEBUG_DIRTY);"));
    assert!(squash(c_function(&sr, "trap_oslar_el1")).contains(
        "oslsr = __vcpu_sys_reg(vcpu, OSLSR_EL1) & ~OSLSR_EL1_OSLK; \
         if (p->regval & OSLAR_EL1_OSLK) oslsr |= OSLSR_EL1_OSLK; \
         __vcpu_sys_reg(vcpu, OSLSR_EL1) = oslsr;"
    ));
    // The host's HPMN: Rust reads the host's MDCR_EL2 that vcpu_load saved
    // (host_debug_state.mdcr_el2), the C its per-CPU copy read at KVM's CPU
    // init. Equal as long as the host's MDCR_EL2 is written only at boot and
    // by the vCPU traps' activate/deactivate: every writer outside nVHE's hyp
    // code, by file.
    let mut writers = Vec::new();
    let root = kdir();
    let mut todo = vec![root.join("arch/arm64"), root.join("drivers/perf")];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let p = e.path();
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                // nVHE's hyp code runs at EL2 on nVHE hosts only.
                if !rel.ends_with("kvm/hyp/nvhe") {
                    todo.push(p);
                }
                continue;
            }
            if !(rel.ends_with(".c") || rel.ends_with(".h") || rel.ends_with(".S")) {
                continue;
            }
            let t = strip_comments(&std::fs::read_to_string(&p).unwrap_or_default());
            let n = t
                .lines()
                .map(|l| l.replace([' ', '\t'], ""))
                .filter(|l| {
                    l.contains("msrmdcr_el2,")
                        || (l.contains("write_sysreg") && l.contains(",mdcr_el2)"))
                        || l.contains("sysreg_clear_set(mdcr_el2")
                })
                .count();
            if n > 0 {
                writers.push((rel, n));
            }
        }
    }
    writers.sort();
    let writers: Vec<(&str, usize)> = writers.iter().map(|(f, n)| (f.as_str(), *n)).collect();
    assert_eq!(
        writers,
        [
            ("arch/arm64/include/asm/el2_setup.h", 1),
            ("arch/arm64/kernel/hyp-stub.S", 1),
            ("arch/arm64/kvm/debug.c", 1),
            ("arch/arm64/kvm/hyp/include/hyp/switch.h", 2),
        ],
        "the host's MDCR_EL2 has another writer"
    );
}

/// The whole function `name` of `text` (comments stripped), squashed,
/// without its `trace_*(...);` statements.
fn c_whole(text: &str, name: &str) -> String {
    // c_function() stops before the closing brace.
    no_traces(&format!("{} }}", c_function(text, name)))
}

/// `body` squashed, without the `trace_*(...);` statements.
fn no_traces(body: &str) -> String {
    let mut s = squash(body);
    while let Some(i) = s.find("trace_") {
        let j = i + s[i..].find(");").unwrap() + 2;
        s.replace_range(i..j, "");
    }
    squash(&s)
}

/// Asserts that each of `want` (squashed) is in `text`, in this order.
fn in_order(text: &str, want: &[&str], what: &str) {
    let mut at = 0;
    for w in want {
        let w = squash(w);
        match text[at..].find(&w) {
            Some(i) => at += i + w.len(),
            None => panic!("{what}: not found in order: {w}\nin: {text}"),
        }
    }
}

// ---------------------------------------------------------------------------
// The vCPU as both the C transcription and the Rust see it.

/// The registers of one kind, by number.
type Regs16 = [u64; 16];
/// The four kinds, in `DbgKind::ALL`'s order.
type DbgArch = [Regs16; 4];

fn kind_index(k: DbgKind) -> usize {
    DbgKind::ALL.iter().position(|x| *x == k).unwrap()
}

/// The part of `struct kvm_vcpu` the debug steps read and write.
#[derive(Clone, Debug, PartialEq, Eq)]
struct VcpuDbg {
    guest_debug: u64,
    dirty: bool,
    ss_active_pending: bool,
    mdscr: u64,
    oslsr: u64,
    pstate: u64,
    preserved: Preserved,
    source: DebugSource,
    mdcr_el2: u64,
    own: DbgArch,
    external: DbgArch,
    mdccint: u64,
}

impl VcpuDbg {
    /// Every field 0 (false, the guest's own state).
    fn zero() -> VcpuDbg {
        VcpuDbg {
            guest_debug: 0,
            dirty: false,
            ss_active_pending: false,
            mdscr: 0,
            oslsr: 0,
            pstate: 0,
            preserved: Preserved {
                mdscr: 0,
                pstate_ss: false,
            },
            source: DebugSource::Own,
            mdcr_el2: 0,
            own: [[0; 16]; 4],
            external: [[0; 16]; 4],
            mdccint: 0,
        }
    }
}

/// The vCPU and the host's MDCR_EL2 on its CPU.
#[derive(Clone, Debug)]
struct Ctx {
    dbg: Dbg,
    v: VcpuDbg,
    host_mdcr: u64,
}

impl DebugStateContext for Ctx {
    fn guest_debug(&self) -> GuestDebug {
        self.dbg.of(self.v.guest_debug)
    }
    fn oslsr(&self) -> Value<OSLSR_EL1::Reg> {
        Value::from_raw(self.v.oslsr)
    }
    fn flag(&self, flag: DebugFlag) -> bool {
        match flag {
            DebugFlag::Dirty => self.v.dirty,
            DebugFlag::SsActivePending => self.v.ss_active_pending,
        }
    }
    fn set_flag(&mut self, flag: DebugFlag, on: bool) {
        match flag {
            DebugFlag::Dirty => self.v.dirty = on,
            DebugFlag::SsActivePending => self.v.ss_active_pending = on,
        }
    }
    fn sys_reg(&self, reg: VcpuSysReg) -> u64 {
        assert_eq!(
            reg,
            VcpuSysReg::MDSCR_EL1,
            "the debug steps read MDSCR_EL1 only"
        );
        self.v.mdscr
    }
    fn set_sys_reg(&mut self, reg: VcpuSysReg, val: u64) {
        assert_eq!(
            reg,
            VcpuSysReg::MDSCR_EL1,
            "the debug steps write MDSCR_EL1 only"
        );
        self.v.mdscr = val;
    }
    fn pstate(&self) -> u64 {
        self.v.pstate
    }
    fn set_pstate(&mut self, val: u64) {
        self.v.pstate = val;
    }
    fn preserved(&self) -> Preserved {
        self.v.preserved
    }
    fn set_preserved(&mut self, p: Preserved) {
        self.v.preserved = p;
    }
    fn source(&self) -> DebugSource {
        self.v.source
    }
    fn set_source(&mut self, source: DebugSource) {
        self.v.source = source;
    }
    fn vcpu_mdcr(&self) -> Value<MDCR_EL2::Reg> {
        Value::from_raw(self.v.mdcr_el2)
    }
    fn set_vcpu_mdcr(&mut self, val: Value<MDCR_EL2::Reg>) {
        self.v.mdcr_el2 = val.raw();
    }
    fn host_mdcr(&self) -> Value<MDCR_EL2::Reg> {
        Value::from_raw(self.host_mdcr)
    }
}

// ---------------------------------------------------------------------------
// The C, transcribed (debug.c of 6.12.117; the text is checked above).

/// Where the C's `BUG_ON` stops the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DebugIllegal;

const fn bit_mdscr(f: vhe_rs_hosttest::arch::Field<MDSCR_EL1::Reg>) -> u64 {
    f.mask()
}

/// `kvm_arm_setup_mdcr_el2()`.
fn c_setup_mdcr_el2(c: &mut Ctx, m: &Macros) {
    let e = |n: &str| m.eval_u64(n, &[]);
    c.v.mdcr_el2 = c.host_mdcr & e("MDCR_EL2_HPMN_MASK");
    c.v.mdcr_el2 |= e("MDCR_EL2_TPM")
        | e("MDCR_EL2_TPMS")
        | e("MDCR_EL2_TTRF")
        | e("MDCR_EL2_TPMCR")
        | e("MDCR_EL2_TDRA")
        | e("MDCR_EL2_TDOSA");
    if c.v.guest_debug != 0 {
        c.v.mdcr_el2 |= e("MDCR_EL2_TDE");
    }
    if (c.v.guest_debug & c.dbg.use_hw) != 0 || !c.v.dirty || os_lock(c, m) {
        c.v.mdcr_el2 |= e("MDCR_EL2_TDA");
    }
}

/// `kvm_vcpu_os_lock_enabled()`.
fn os_lock(c: &Ctx, m: &Macros) -> bool {
    c.v.oslsr & m.eval_u64("OSLSR_EL1_OSLK", &[]) != 0
}

/// `kvm_arm_setup_debug()`: the MDCR_EL2 write it makes, or `Err` where it
/// `BUG_ON`s.
fn c_setup_debug(c: &mut Ctx, m: &Macros) -> Result<Option<u64>, DebugIllegal> {
    let e = |n: &str| m.eval_u64(n, &[]);
    let orig_mdcr_el2 = c.v.mdcr_el2;
    c_setup_mdcr_el2(c, m);
    if c.v.guest_debug != 0 || os_lock(c, m) {
        // save_guest_debug_regs(): mdscr_el1 is a u32.
        c.v.preserved.mdscr = c.v.mdscr as u32;
        c.v.preserved.pstate_ss = c.v.pstate & e("DBG_SPSR_SS") != 0;
        if c.v.guest_debug & c.dbg.singlestep != 0 {
            if !c.v.ss_active_pending {
                c.v.pstate |= e("DBG_SPSR_SS");
            } else {
                c.v.pstate &= !e("DBG_SPSR_SS");
            }
            c.v.mdscr |= e("DBG_MDSCR_SS");
        } else {
            c.v.mdscr &= !e("DBG_MDSCR_SS");
        }
        if c.v.guest_debug & c.dbg.use_hw != 0 {
            c.v.mdscr |= e("DBG_MDSCR_MDE");
            c.v.source = DebugSource::External;
            c.v.dirty = true;
        } else if os_lock(c, m) {
            c.v.mdscr &= !e("DBG_MDSCR_MDE");
        }
    }
    if c.v.guest_debug == 0 && c.v.source != DebugSource::Own {
        return Err(DebugIllegal);
    }
    if c.v.mdscr & (e("DBG_MDSCR_KDE") | e("DBG_MDSCR_MDE")) != 0 {
        c.v.dirty = true;
    }
    Ok((orig_mdcr_el2 != c.v.mdcr_el2).then_some(c.v.mdcr_el2))
}

/// `kvm_arm_clear_debug()`.
fn c_clear_debug(c: &mut Ctx, m: &Macros) {
    let e = |n: &str| m.eval_u64(n, &[]);
    if c.v.guest_debug != 0 || os_lock(c, m) {
        if c.v.guest_debug & c.dbg.singlestep != 0 && c.v.pstate & e("DBG_SPSR_SS") == 0 {
            c.v.ss_active_pending = true;
        }
        // restore_guest_debug_regs().
        c.v.mdscr = u64::from(c.v.preserved.mdscr);
        if c.v.preserved.pstate_ss {
            c.v.pstate |= e("DBG_SPSR_SS");
        } else {
            c.v.pstate &= !e("DBG_SPSR_SS");
        }
        if c.v.guest_debug & c.dbg.use_hw != 0 {
            c.v.source = DebugSource::Own;
        }
    }
}

/// `setup_debug()` in Rust on `c`: the MDCR_EL2 write it made and whether it
/// found the C's `BUG_ON`.
fn rust_setup(c: &mut Ctx) -> (Option<u64>, bool) {
    let mut regs = SimRegs::new();
    let done = debug_state::setup_debug(c, &mut regs);
    let writes = regs.writes::<MDCR_EL2::Reg>();
    assert!(
        regs.log
            .iter()
            .all(|e| matches!(e, Event::Write(n, _) if *n == MDCR_EL2::Reg::NAME)),
        "setup_debug touched {:?}",
        regs.log
    );
    assert!(writes.len() <= 1);
    (writes.first().copied(), done.illegal)
}

/// The C on `c`, and where it `BUG_ON`s, the C after `kvm_arm_reset_debug_ptr()`
/// (what the Rust does instead of stopping): the MDCR_EL2 write and whether
/// the C stopped.
fn c_setup_or_recover(c: &mut Ctx, m: &Macros) -> (Option<u64>, bool) {
    let before = c.clone();
    match c_setup_debug(c, m) {
        Ok(w) => (w, false),
        Err(DebugIllegal) => {
            *c = before;
            c.v.source = DebugSource::Own;
            (c_setup_debug(c, m).expect("the guest's own state"), true)
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Every input combination, against the C.

#[test]
fn setup_and_clear_are_the_c_for_every_input() {
    let m = macros();
    let d = guestdbg();
    let mut rng = Rng(0xdeb5_7a7e);
    let flags = [d.enable, d.singlestep, d.use_sw_bp, d.use_hw];
    let mdscr_bits = [
        bit_mdscr(MDSCR_EL1::SS),
        bit_mdscr(MDSCR_EL1::KDE),
        bit_mdscr(MDSCR_EL1::MDE),
        bit_mdscr(MDSCR_EL1::EHBWE),
        bit_mdscr(MDSCR_EL1::TDCC),
    ];
    let hpmn = MDCR_EL2::HPMN.mask();
    let mut cases = 0u64;
    let mut illegal = 0u64;
    for gd_bits in 0..16u32 {
        let guest_debug = (0..4)
            .filter(|i| gd_bits & (1 << i) != 0)
            .fold(0, |a, i| a | flags[i]);
        for (dirty, pending, oslk, pstate_ss, external) in bools5() {
            for mdscr_set in 0..32u32 {
                for host in [0, hpmn, rng.next()] {
                    for stale_mdcr in [false, true] {
                        let mdscr = (0..5).filter(|i| mdscr_set & (1 << i) != 0).fold(
                            rng.next() & !mdscr_bits.iter().fold(0, |a, b| a | b),
                            |a, i| a | mdscr_bits[i],
                        );
                        let pstate = (rng.next() & !SPSR_EL2::SS.mask())
                            | if pstate_ss { SPSR_EL2::SS.mask() } else { 0 };
                        let oslsr = (rng.next() & !OSLSR_EL1::OSLK.mask())
                            | if oslk { OSLSR_EL1::OSLK.mask() } else { 0 };
                        let v = VcpuDbg {
                            guest_debug,
                            dirty,
                            ss_active_pending: pending,
                            mdscr,
                            oslsr,
                            pstate,
                            preserved: Preserved {
                                mdscr: rng.next() as u32,
                                pstate_ss: rng.bool(),
                            },
                            source: if external {
                                DebugSource::External
                            } else {
                                DebugSource::Own
                            },
                            mdcr_el2: rng.next(),
                            own: [[0; 16]; 4],
                            external: [[0; 16]; 4],
                            mdccint: 0,
                        };
                        let mut c = Ctx {
                            dbg: d,
                            v,
                            host_mdcr: host,
                        };
                        if !stale_mdcr {
                            // The vCPU's MDCR_EL2 already what this setup computes.
                            let mut probe = c.clone();
                            c_setup_mdcr_el2(&mut probe, &m);
                            c.v.mdcr_el2 = probe.v.mdcr_el2;
                        }
                        let mut want = c.clone();
                        let mut got = c.clone();
                        let w = c_setup_or_recover(&mut want, &m);
                        let g = rust_setup(&mut got);
                        cases += 1;
                        let what = format!("setup {:?} host {host:#x}", c.v);
                        assert_eq!(g, w, "{what}");
                        if w.1 {
                            illegal += 1;
                            assert_eq!(got.v.source, DebugSource::Own, "{what}");
                        }
                        assert_eq!(got.v, want.v, "{what}");
                        // The guest runs; PSTATE.SS after the exit either way.
                        for ss_after in [false, true] {
                            let mut want = want.clone();
                            let mut got = got.clone();
                            for x in [&mut want, &mut got] {
                                x.v.pstate = (x.v.pstate & !SPSR_EL2::SS.mask())
                                    | if ss_after { SPSR_EL2::SS.mask() } else { 0 };
                            }
                            c_clear_debug(&mut want, &m);
                            let r = debug_state::clear_debug(&mut got);
                            assert_eq!(got.v, want.v, "clear after {what}, SS {ss_after}");
                            assert_eq!(r.restore, c.v.guest_debug != 0 || oslk);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 16 * 32 * 32 * 3 * 2);
    // Every illegal input was one: a VMM state with no VMM debugging.
    assert_eq!(illegal, 32 * 16 * 3 * 2, "illegal cases");
}

/// Every combination of five booleans.
fn bools5() -> impl Iterator<Item = (bool, bool, bool, bool, bool)> {
    (0..32u32).map(|b| (b & 1 != 0, b & 2 != 0, b & 4 != 0, b & 8 != 0, b & 16 != 0))
}

#[test]
fn mdcr_el2_is_the_c_for_every_input() {
    let m = macros();
    let d = guestdbg();
    let mut rng = Rng(0x3dc4);
    for gd_bits in 0..16u32 {
        let flags = [d.enable, d.singlestep, d.use_sw_bp, d.use_hw];
        let gd = (0..4)
            .filter(|i| gd_bits & (1 << i) != 0)
            .fold(0, |a, i| a | flags[i]);
        for (dirty, oslk, _, _, _) in bools5().take(4) {
            for _ in 0..64 {
                let host = rng.next();
                let mut c = Ctx {
                    dbg: d,
                    v: VcpuDbg {
                        guest_debug: gd,
                        dirty,
                        oslsr: if oslk { OSLSR_EL1::OSLK.mask() } else { 0 },
                        ..VcpuDbg::zero()
                    },
                    host_mdcr: host,
                };
                c_setup_mdcr_el2(&mut c, &m);
                let got = debug_state::mdcr_el2(Value::from_raw(host), d.of(gd), dirty, oslk);
                assert_eq!(
                    got.raw(),
                    c.v.mdcr_el2,
                    "gd {gd:#x} dirty {dirty} oslk {oslk}"
                );
                // Never a profiling or trace buffer for the guest (E2PB, E2TB
                // 0), never the host's other bits.
                assert_eq!(
                    got.raw()
                        & !(MDCR_EL2_ALWAYS
                            | MDCR_EL2::HPMN.mask()
                            | MDCR_EL2::TDE.mask()
                            | MDCR_EL2::TDA.mask()),
                    0
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Every sequence of events, on two simulated CPUs.

/// QEMU `-cpu max` and Cortex-A57: 6 breakpoints, 4 watchpoints.
const BRPS: usize = 5;
const WRPS: usize = 3;

fn implemented(k: usize, n: usize) -> bool {
    n <= if k < 2 { BRPS } else { WRPS }
}

/// A register of the model, by kind index and number.
fn enc(k: usize, n: usize) -> u32 {
    DBG_ENCODINGS[n][k]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Ev {
    /// The guest runs, exits, and does nothing else of note.
    Run,
    /// The guest writes a new value to one of its debug registers.
    RunWriteDbg,
    /// The guest sets MDSCR_EL1.MDE and KDE.
    RunEnableDebug,
    /// The guest clears MDSCR_EL1.MDE and KDE.
    RunDisableDebug,
    /// The guest sets (OSLAR_EL1.OSLK = 1) or clears its OS lock.
    RunOsLock(bool),
    /// A step completed but its exception is pending at the exit (PSTATE.SS
    /// clear, the exit for something else).
    RunStepPending,
    /// The step's exception taken: a Software Step exit (PSTATE.SS clear);
    /// the host's handler clears DBG_SS_ACTIVE_PENDING.
    RunStepTaken,
    /// KVM_SET_GUEST_DEBUG: single-step on (hardware breakpoints kept).
    VmmSingleStep,
    /// KVM_SET_GUEST_DEBUG: the VMM's hardware breakpoints, new values
    /// (single-step kept).
    VmmHw,
    /// KVM_SET_GUEST_DEBUG: single-step off, the rest kept (gdb stepping
    /// over a breakpoint, then continuing).
    VmmSingleStepOff,
    /// KVM_SET_GUEST_DEBUG: ENABLE alone (a VMM attached, debugging nothing
    /// yet), or with USE_SW_BP: whatever else was on is dropped.
    VmmEnableOnly(bool),
    /// KVM_SET_GUEST_DEBUG with control 0.
    VmmOff,
    /// vcpu_put, then vcpu_load on the other CPU.
    Migrate,
    /// The host installs a hardware breakpoint on the vCPU's CPU.
    HostBp,
}

const EVENTS: [Ev; 16] = [
    Ev::Run,
    Ev::RunWriteDbg,
    Ev::RunEnableDebug,
    Ev::RunDisableDebug,
    Ev::RunOsLock(true),
    Ev::RunOsLock(false),
    Ev::RunStepPending,
    Ev::RunStepTaken,
    Ev::VmmSingleStep,
    Ev::VmmHw,
    Ev::VmmSingleStepOff,
    Ev::VmmEnableOnly(false),
    Ev::VmmEnableOnly(true),
    Ev::VmmOff,
    Ev::Migrate,
    Ev::HostBp,
];

/// Two CPUs, the host's state on each, the vCPU loaded on one, and what each
/// owner last put in its debug registers.
struct World {
    cpus: [Cpu; 2],
    /// The host's MDCR_EL2 on each CPU (set at boot).
    host_mdcr: [u64; 2],
    /// `host_data->host_debug_state` of each CPU: the switch's save area.
    host_save: [DbgArch; 2],
    host_mdccint_save: [u64; 2],
    /// `host_data->host_debug_state.mdcr_el2`, saved by vcpu_load.
    host_saved_mdcr: [u64; 2],
    c: Ctx,
    /// The CPU the vCPU is loaded on.
    on: usize,
    /// What the host installed on each CPU.
    host_truth: [DbgArch; 2],
    /// What the guest wrote to its own registers.
    guest_truth: DbgArch,
    /// What the VMM set with KVM_GUESTDBG_USE_HW.
    vmm_truth: DbgArch,
    /// Fresh values.
    next: u64,
    /// The register the guest or host writes next.
    cursor: usize,
    m: &'static Macros,
}

impl Clone for World {
    fn clone(&self) -> Self {
        World {
            cpus: [self.cpus[0].fork(), self.cpus[1].fork()],
            host_mdcr: self.host_mdcr,
            host_save: self.host_save,
            host_mdccint_save: self.host_mdccint_save,
            host_saved_mdcr: self.host_saved_mdcr,
            c: self.c.clone(),
            on: self.on,
            host_truth: self.host_truth,
            guest_truth: self.guest_truth,
            vmm_truth: self.vmm_truth,
            next: self.next,
            cursor: self.cursor,
            m: self.m,
        }
    }
}

/// The hyp switch's view of the world on the vCPU's CPU.
struct Hyp<'a>(&'a mut World);

impl DebugContext for Hyp<'_> {
    fn debug_dirty(&self) -> bool {
        self.0.c.v.dirty
    }
    fn clear_debug_dirty(&mut self) {
        self.0.c.v.dirty = false;
    }
    fn dbg(&self, owner: DbgOwner, kind: DbgKind, n: usize) -> u64 {
        let k = kind_index(kind);
        match owner {
            DbgOwner::Host => self.0.host_save[self.0.on][k][n],
            DbgOwner::Guest => match self.0.c.v.source {
                DebugSource::Own => self.0.c.v.own[k][n],
                DebugSource::External => self.0.c.v.external[k][n],
            },
        }
    }
    fn set_dbg(&mut self, owner: DbgOwner, kind: DbgKind, n: usize, val: u64) {
        let k = kind_index(kind);
        let on = self.0.on;
        match owner {
            DbgOwner::Host => self.0.host_save[on][k][n] = val,
            DbgOwner::Guest => match self.0.c.v.source {
                DebugSource::Own => self.0.c.v.own[k][n] = val,
                DebugSource::External => self.0.c.v.external[k][n] = val,
            },
        }
    }
    fn mdccint(&self, owner: DbgOwner) -> Value<MDCCINT_EL1::Reg> {
        Value::from_raw(match owner {
            DbgOwner::Host => self.0.host_mdccint_save[self.0.on],
            DbgOwner::Guest => self.0.c.v.mdccint,
        })
    }
    fn set_mdccint(&mut self, owner: DbgOwner, val: Value<MDCCINT_EL1::Reg>) {
        let on = self.0.on;
        match owner {
            DbgOwner::Host => self.0.host_mdccint_save[on] = val.raw(),
            DbgOwner::Guest => self.0.c.v.mdccint = val.raw(),
        }
    }
}

impl World {
    fn new(m: &'static Macros) -> World {
        let mut rng = Rng(0x5eed_deb6);
        let mut cpus = Vec::new();
        let mut host_truth = [[[0; 16]; 4]; 2];
        let mut host_mdcr = [0; 2];
        for (i, truth) in host_truth.iter_mut().enumerate() {
            let mut regs = SimRegs::new();
            let dfr0 = ID_AA64DFR0_EL1::BRPs.val(BRPS as u64).value()
                | ID_AA64DFR0_EL1::WRPs.val(WRPS as u64).value();
            regs.set::<ID_AA64DFR0_EL1::Reg>(dfr0);
            for (k, regs_k) in truth.iter_mut().enumerate() {
                for (n, r) in regs_k.iter_mut().enumerate() {
                    *r = rng.next();
                    regs.set_encoded(enc(k, n), *r);
                }
            }
            regs.set::<MDCCINT_EL1::Reg>(rng.next());
            // Whatever the boot left: only its HPMN may reach the guest.
            host_mdcr[i] = rng.next();
            regs.set::<MDCR_EL2::Reg>(host_mdcr[i]);
            cpus.push(Cpu::new(regs));
        }
        let d = guestdbg();
        let mut w = World {
            cpus: [cpus[0].clone(), cpus[1].clone()],
            host_mdcr,
            host_save: [[[0; 16]; 4]; 2],
            host_mdccint_save: [0; 2],
            host_saved_mdcr: [0; 2],
            c: Ctx {
                dbg: d,
                v: VcpuDbg {
                    // OSLM implemented, the lock off (as kvm resets it).
                    oslsr: m.eval_u64("OSLSR_EL1_OSLM_IMPLEMENTED", &[]),
                    pstate: m.eval_u64("PSR_MODE_EL1h", &[]),
                    ..VcpuDbg::zero()
                },
                host_mdcr: 0,
            },
            on: 0,
            host_truth,
            guest_truth: [[0; 16]; 4],
            vmm_truth: [[0; 16]; 4],
            next: 1,
            cursor: 0,
            m,
        };
        // kvm_arm_vcpu_init_debug() at the first run, then vcpu_load.
        w.c.host_mdcr = w.host_mdcr[0];
        c_setup_mdcr_el2(&mut w.c, m);
        w.load(0);
        w
    }

    fn cpu(&self) -> Cpu {
        self.cpus[self.on].clone()
    }

    fn fresh(&mut self) -> u64 {
        self.next += 1;
        self.next.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// The next implemented register, round-robin.
    fn next_reg(&mut self) -> (usize, usize) {
        loop {
            self.cursor = (self.cursor + 1) % 64;
            let (k, n) = (self.cursor % 4, self.cursor / 4);
            if implemented(k, n) {
                return (k, n);
            }
        }
    }

    /// `__activate_traps_common()`'s MDCR_EL2 part (vcpu_load).
    fn load(&mut self, cpu: usize) {
        self.on = cpu;
        let mut regs = self.cpu();
        self.host_saved_mdcr[cpu] = regs.read::<MDCR_EL2::Reg>().raw();
        regs.write(Value::<MDCR_EL2::Reg>::from_raw(self.c.v.mdcr_el2));
        self.c.host_mdcr = self.host_saved_mdcr[cpu];
    }

    /// `__deactivate_traps_common()`'s MDCR_EL2 part (vcpu_put).
    fn put(&mut self) {
        let mut regs = self.cpu();
        regs.write(Value::<MDCR_EL2::Reg>::from_raw(
            self.host_saved_mdcr[self.on],
        ));
    }

    fn dbg_on_cpu(&self, cpu: usize) -> DbgArch {
        let mut a = [[0; 16]; 4];
        for (k, ak) in a.iter_mut().enumerate() {
            for (n, r) in ak.iter_mut().enumerate() {
                *r = self.cpus[cpu].get_encoded(enc(k, n));
            }
        }
        a
    }

    /// Applies `ev`, checking what must hold while the guest runs.
    fn step(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::VmmSingleStep | Ev::VmmHw => {
                let d = self.c.dbg;
                let mut control = self.c.v.guest_debug | d.enable;
                control |= if ev == Ev::VmmSingleStep {
                    d.singlestep
                } else {
                    d.use_hw
                };
                // kvm_arch_vcpu_ioctl_set_guest_debug(), ENABLE set.
                self.c.v.guest_debug = control;
                if control & d.use_hw != 0 && ev == Ev::VmmHw {
                    for k in 0..4 {
                        for n in 0..16 {
                            let v = self.fresh();
                            self.vmm_truth[k][n] = v;
                        }
                    }
                    self.c.v.external = self.vmm_truth;
                }
                if control & d.use_hw != 0 && ev != Ev::VmmHw {
                    self.c.v.external = self.vmm_truth;
                }
            }
            Ev::VmmSingleStepOff => {
                // ENABLE kept if anything else was on; if nothing else was,
                // the VMM turns debugging off.
                let d = self.c.dbg;
                let control = self.c.v.guest_debug & !d.singlestep;
                if control & !d.enable != 0 {
                    self.c.v.guest_debug = control;
                    if control & d.use_hw != 0 {
                        self.c.v.external = self.vmm_truth;
                    }
                } else {
                    self.c.v.guest_debug = 0;
                    self.c.v.ss_active_pending = false;
                }
            }
            Ev::VmmEnableOnly(sw_bp) => {
                let d = self.c.dbg;
                self.c.v.guest_debug = d.enable | if sw_bp { d.use_sw_bp } else { 0 };
            }
            Ev::VmmOff => {
                self.c.v.guest_debug = 0;
                self.c.v.ss_active_pending = false;
            }
            Ev::Migrate => {
                self.put();
                if self.cpu().read::<MDCR_EL2::Reg>().raw() != self.host_mdcr[self.on] {
                    return Err("vcpu_put left the guest's MDCR_EL2".into());
                }
                self.load(1 - self.on);
            }
            Ev::HostBp => {
                let (k, n) = self.next_reg();
                let v = self.fresh();
                self.host_truth[self.on][k][n] = v;
                self.cpu().set_encoded(enc(k, n), v);
            }
            _ => self.run(ev)?,
        }
        Ok(())
    }

    /// A run: setup_debug, the hyp switch in, the guest, the switch out,
    /// clear_debug, then the host's handling of what trapped.
    fn run(&mut self, ev: Ev) -> Result<(), String> {
        let m = self.m;
        let ss = SPSR_EL2::SS.mask();
        let mde_kde = MDSCR_EL1::MDE.mask() | MDSCR_EL1::KDE.mask();
        // kvm_arm_setup_debug(), the C and the Rust side by side.
        let mut want = self.c.clone();
        let w = c_setup_debug(&mut want, m);
        let mut regs = self.cpu();
        let before = regs.read::<MDCR_EL2::Reg>().raw();
        let done = debug_state::setup_debug(&mut self.c, &mut regs);
        let Ok(w) = w else {
            return Err("the C's BUG_ON: a state no sequence of events may reach".into());
        };
        if done.illegal || self.c.v != want.v {
            return Err(format!(
                "setup_debug is not the C's: {:?} vs {:?}",
                self.c.v, want.v
            ));
        }
        if let Some(x) = w {
            if regs.read::<MDCR_EL2::Reg>().raw() != x {
                return Err("MDCR_EL2 not written".into());
            }
        } else if regs.read::<MDCR_EL2::Reg>().raw() != before {
            return Err("MDCR_EL2 written for nothing".into());
        }
        let mdcr = regs.read::<MDCR_EL2::Reg>().raw();
        if mdcr != self.c.v.mdcr_el2 {
            return Err(format!(
                "MDCR_EL2 {mdcr:#x}, the vCPU's {:#x}",
                self.c.v.mdcr_el2
            ));
        }
        let gd = self.c.guest_debug();
        let oslk = self.c.v.oslsr & OSLSR_EL1::OSLK.mask() != 0;

        // The hyp switch in.
        let dirty = self.c.v.dirty;
        let mut cpu = self.cpu();
        debug::switch_to_guest(&mut Hyp(self), &mut cpu);

        // What the guest runs with.
        let tda = mdcr & MDCR_EL2::TDA.mask() != 0;
        let on_cpu = self.dbg_on_cpu(self.on);
        let imp = |a: &DbgArch, b: &DbgArch| {
            (0..4).all(|k| (0..16).all(|n| !implemented(k, n) || a[k][n] == b[k][n]))
        };
        if dirty {
            let want = if gd.use_hw() {
                &self.vmm_truth
            } else {
                &self.guest_truth
            };
            if !imp(&on_cpu, want) {
                return Err("the guest runs without its (or the VMM's) debug registers".into());
            }
        } else {
            if !imp(&on_cpu, &self.host_truth[self.on]) {
                return Err("a clean entry changed the CPU's debug registers".into());
            }
            if !tda {
                return Err("the guest runs on the host's debug registers untrapped".into());
            }
        }
        if gd.use_hw() && !(dirty && tda) {
            return Err("the VMM's breakpoints not live, or the guest not trapped".into());
        }
        if gd.any() != (mdcr & MDCR_EL2::TDE.mask() != 0) {
            return Err("TDE is not 'the VMM debugs'".into());
        }
        let guest_mdscr = self.c.v.mdscr;
        if !gd.any() && !oslk && guest_mdscr & mde_kde != 0 && !dirty {
            return Err("the guest enabled debug but runs without its registers".into());
        }
        if gd.singlestep()
            && (guest_mdscr & MDSCR_EL1::SS.mask() == 0
                || (self.c.v.pstate & ss != 0) == self.c.v.ss_active_pending)
        {
            return Err("single-step not armed as the C arms it".into());
        }

        // The guest.
        let mut trapped_write: Option<(usize, usize, u64)> = None;
        let mut trapped_mdscr: Option<u64> = None;
        let mut oslar: Option<bool> = None;
        match ev {
            Ev::RunWriteDbg => {
                let (k, n) = self.next_reg();
                let v = self.fresh();
                self.guest_truth[k][n] = v;
                if tda {
                    trapped_write = Some((k, n, v));
                } else {
                    self.cpu().set_encoded(enc(k, n), v);
                }
            }
            Ev::RunEnableDebug | Ev::RunDisableDebug => {
                let v = if ev == Ev::RunEnableDebug {
                    guest_mdscr | mde_kde
                } else {
                    guest_mdscr & !mde_kde
                };
                if tda {
                    trapped_mdscr = Some(v);
                } else {
                    // Untrapped: the run path saves it into the vCPU at the exit.
                    self.c.v.mdscr = v;
                }
            }
            // OSLAR_EL1 always traps (TDOSA).
            Ev::RunOsLock(on) => oslar = Some(on),
            Ev::RunStepPending | Ev::RunStepTaken if gd.singlestep() => {
                self.c.v.pstate &= !ss;
            }
            _ => {}
        }

        // The hyp switch out.
        let mut cpu = self.cpu();
        debug::switch_to_host(&mut Hyp(self), &mut cpu);
        if self.c.v.dirty {
            return Err("DEBUG_DIRTY still set after the switch back".into());
        }
        if !imp(&self.dbg_on_cpu(self.on), &self.host_truth[self.on]) {
            return Err("the host's debug registers not back".into());
        }

        // kvm_arm_clear_debug(), the C and the Rust.
        let mut want = self.c.clone();
        c_clear_debug(&mut want, m);
        debug_state::clear_debug(&mut self.c);
        if self.c.v != want.v {
            return Err(format!(
                "clear_debug is not the C's: {:?} vs {:?}",
                self.c.v, want.v
            ));
        }
        if self.c.v.source != DebugSource::Own {
            return Err("debug_ptr left on the VMM's state".into());
        }

        // The host's handling of the exit.
        if let Some((k, n, v)) = trapped_write {
            // trap_bvr() and siblings: the guest's own state, DEBUG_DIRTY.
            self.c.v.own[k][n] = v;
            self.c.v.dirty = true;
        }
        if let Some(v) = trapped_mdscr {
            // trap_debug_regs(): vcpu_write_sys_reg(), DEBUG_DIRTY.
            self.c.v.mdscr = v;
            self.c.v.dirty = true;
        }
        if let Some(on) = oslar {
            // trap_oslar_el1().
            let k = OSLSR_EL1::OSLK.mask();
            self.c.v.oslsr = (self.c.v.oslsr & !k) | if on { k } else { 0 };
        }
        if ev == Ev::RunStepTaken && gd.singlestep() {
            // kvm_handle_guest_debug() for a Software Step exit.
            self.c.v.ss_active_pending = false;
        }
        Ok(())
    }

    /// What must hold between runs.
    // Register numbers index the CPU, the truths and the vCPU alike.
    #[allow(clippy::needless_range_loop)]
    fn check(&self) -> Result<(), String> {
        for cpu in 0..2 {
            let on = self.dbg_on_cpu(cpu);
            for k in 0..4 {
                for n in 0..16 {
                    if on[k][n] != self.host_truth[cpu][k][n] {
                        return Err(format!("CPU {cpu}: the host's register {k}/{n} lost"));
                    }
                }
            }
        }
        for k in 0..4 {
            for n in 0..16 {
                if implemented(k, n) && self.c.v.own[k][n] != self.guest_truth[k][n] {
                    return Err(format!("the guest's register {k}/{n} lost"));
                }
                if self.c.guest_debug().use_hw() && self.c.v.external[k][n] != self.vmm_truth[k][n]
                {
                    return Err(format!("the VMM's register {k}/{n} changed"));
                }
            }
        }
        if self.c.v.source != DebugSource::Own {
            return Err("debug_ptr on the VMM's state between runs".into());
        }
        if self.cpu().read::<MDCR_EL2::Reg>().raw() != self.c.v.mdcr_el2 {
            return Err("the loaded vCPU's MDCR_EL2 not on its CPU".into());
        }
        let other = 1 - self.on;
        if self.cpus[other].get::<MDCR_EL2::Reg>() != self.host_mdcr[other] {
            return Err("the other CPU's MDCR_EL2 is not the host's".into());
        }
        Ok(())
    }

    /// What the future depends on, values of debug registers aside (the
    /// checks compare them with what each owner wrote, whatever they are).
    fn key(&self) -> (VcpuDbgKey, usize) {
        let v = &self.c.v;
        (
            VcpuDbgKey {
                guest_debug: v.guest_debug,
                dirty: v.dirty,
                pending: v.ss_active_pending,
                mdscr: v.mdscr,
                oslsr: v.oslsr,
                pstate: v.pstate,
                preserved: (v.preserved.mdscr, v.preserved.pstate_ss),
                mdcr: v.mdcr_el2,
                cursor: self.cursor,
            },
            self.on,
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct VcpuDbgKey {
    guest_debug: u64,
    dirty: bool,
    pending: bool,
    mdscr: u64,
    oslsr: u64,
    pstate: u64,
    preserved: (u32, bool),
    mdcr: u64,
    cursor: usize,
}

/// Walks every sequence of `EVENTS` up to `depth` from `w`, skipping a state
/// already walked with as many events left (its future is the same).
fn walk(
    w: &World,
    depth: usize,
    path: &mut Vec<Ev>,
    seen: &mut HashSet<((VcpuDbgKey, usize), usize)>,
    visited: &mut u64,
) {
    if depth == 0 || !seen.insert((w.key(), depth)) {
        return;
    }
    for ev in EVENTS {
        let mut next = w.clone();
        path.push(ev);
        *visited += 1;
        if let Err(e) = next.step(ev).and_then(|_| next.check()) {
            panic!("after {path:?}: {e}");
        }
        walk(&next, depth - 1, path, seen, visited);
        path.pop();
    }
}

#[test]
fn every_sequence_keeps_each_debug_state_where_it_belongs() {
    let m: &'static Macros = Box::leak(Box::new(macros()));
    let w = World::new(m);
    w.check().unwrap();
    let mut seen = HashSet::new();
    let mut visited = 0;
    walk(&w, 8, &mut Vec::new(), &mut seen, &mut visited);
    eprintln!(
        "debug state: {visited} events walked, {} distinct states by depth",
        seen.len()
    );
    assert!(
        visited > 10_000,
        "the walk is too small to mean much: {visited}"
    );
}

/// The same walk with no pruning, to depth 4 (so that the pruning's
/// assumption, that a state's future depends on its key only, is not what
/// makes the deeper walk pass).
#[test]
fn every_sequence_to_depth_4_unpruned() {
    fn all(w: &World, depth: usize, path: &mut Vec<Ev>, n: &mut u64) {
        if depth == 0 {
            return;
        }
        for ev in EVENTS {
            let mut next = w.clone();
            path.push(ev);
            *n += 1;
            if let Err(e) = next.step(ev).and_then(|_| next.check()) {
                panic!("after {path:?}: {e}");
            }
            all(&next, depth - 1, path, n);
            path.pop();
        }
    }
    let m: &'static Macros = Box::leak(Box::new(macros()));
    let mut n = 0;
    all(&World::new(m), 4, &mut Vec::new(), &mut n);
    let e = EVENTS.len() as u64;
    assert_eq!(n, e + e.pow(2) + e.pow(3) + e.pow(4));
}
