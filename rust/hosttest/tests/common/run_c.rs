// SPDX-License-Identifier: GPL-2.0

//! The C of one run of the guest, read from the kernel's text and carried out
//! statement by statement on the model vCPU ([`super::vcpu::Vcpu`]) and its
//! simulated CPU: `__kvm_vcpu_run_vhe()` (`hyp/vhe/switch.c`), the per-entry
//! register moves it calls (`sysreg_*_state_vhe()` of `hyp/vhe/sysreg-sr.c`,
//! the `__sysreg_*_state()` they call in `hyp/include/hyp/sysreg-sr.h`) and
//! `__fpsimd_save_fpexc32()` (`hyp/include/hyp/switch.h`).
//!
//! The register moves are interpreted from their text (each statement is a
//! read into a context slot, a write from one, or one of the PSTATE checks,
//! with the kernel's constants); every other call of the run is mapped by
//! name to the Rust step that stands for it ([`exec_run`]), so that the
//! composition follows the C's statements, not the Rust's. A statement or a
//! call the interpreter does not know fails the test: a kernel that changes
//! the run is noticed.

use std::collections::HashMap;

use super::cpu::Cpu;
use super::kernel::{balanced, c_eval, c_function, defines, read_kernel, squash, strip_comments};
use super::vcpu::Vcpu;
use vhe_rs_hosttest::arch::{RegAccess, ELR_EL2, FPEXC32_EL2, SPSR_EL2};
use vhe_rs_hosttest::world::entry_traps::{self, EntryTrapContext};
use vhe_rs_hosttest::world::fixup::{self, ExitCode, Fixup};
use vhe_rs_hosttest::world::fp::{self, FpOwner};
use vhe_rs_hosttest::world::run::RunContext;
use vhe_rs_hosttest::world::sysreg_sr::{
    CpuReg, El2ReturnContext, Feature, SysregContext, VcpuSlot, VcpuSysReg,
};

pub const VHE_SWITCH: &str = "arch/arm64/kvm/hyp/vhe/switch.c";
pub const VHE_SYSREG_SR: &str = "arch/arm64/kvm/hyp/vhe/sysreg-sr.c";
pub const SYSREG_SR_H: &str = "arch/arm64/kvm/hyp/include/hyp/sysreg-sr.h";
pub const HYP_SWITCH: &str = "arch/arm64/kvm/hyp/include/hyp/switch.h";

/// A statement of a C function body, comments removed and white space
/// squashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    /// `s;`
    Simple(String),
    /// `if (cond) s;` (a statement without braces).
    If(String, String),
    /// `do { body } while (cond);`
    DoWhile(Vec<Stmt>, String),
}

/// The statements of `text`, in order.
fn parse(text: &str) -> Vec<Stmt> {
    let mut out = Vec::new();
    let mut s = text.trim_start();
    while !s.is_empty() {
        if s.starts_with("do {") {
            let (body, rest) = balanced(s, "do {").expect("unbalanced do");
            let rest = rest.trim_start();
            assert!(rest.starts_with("while ("), "do without while: `{rest}`");
            let (cond, rest) = balanced(rest, "while (").expect("unbalanced while");
            let rest = rest.trim_start();
            let rest = rest
                .strip_prefix(';')
                .expect("do { } while (); without `;`");
            out.push(Stmt::DoWhile(parse(body), squash(cond)));
            s = rest.trim_start();
        } else if s.starts_with("if (") {
            let (cond, rest) = balanced(s, "if (").expect("unbalanced if");
            let rest = rest.trim_start();
            assert!(
                !rest.starts_with('{'),
                "an if with a block, which this reading does not know: `{s}`"
            );
            let end = rest.find(';').expect("if without `;`");
            out.push(Stmt::If(squash(cond), squash(&rest[..=end])));
            s = rest[end + 1..].trim_start();
        } else {
            let end = s.find(';').unwrap_or_else(|| panic!("no `;` in `{s}`"));
            assert!(
                !s[..end].contains(['{', '}']),
                "a block this reading does not know: `{s}`"
            );
            out.push(Stmt::Simple(squash(&s[..=end])));
            s = s[end + 1..].trim_start();
        }
    }
    out
}

/// The statements of the body of C function `name` in kernel file `rel`.
pub fn statements(rel: &str, name: &str) -> Vec<Stmt> {
    let text = strip_comments(c_function(&read_kernel(rel), name));
    let (_, body) = text
        .split_once('{')
        .unwrap_or_else(|| panic!("{name}(): no body"));
    parse(body)
}

/// `(name, argument)` of the call statement `name(arg);`, or `None`.
pub fn call(stmt: &str) -> Option<(&str, &str)> {
    let (name, rest) = stmt.split_once('(')?;
    let arg = rest.strip_suffix(");")?;
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then_some((name, arg))
}

/// Whose `struct kvm_cpu_context` a register move of `sysreg-sr.h` works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctxt {
    /// `host_ctxt` (`host_data_ptr(host_ctxt)`).
    Host,
    /// `guest_ctxt` (`&vcpu->arch.ctxt`).
    Guest,
}

/// The kernel's constants the interpreter evaluates with, from its headers.
pub struct Consts {
    mode_mask: u64,
    mode32: u64,
    aa32_mode_mask: u64,
    el1t: u64,
    el1h: u64,
    el2t: u64,
    el2h: u64,
    il: u64,
    hcr_rw: u64,
    defs: HashMap<String, String>,
}

impl Consts {
    pub fn new() -> Consts {
        let mut d = defines("arch/arm64/include/uapi/asm/ptrace.h");
        d.extend(defines("arch/arm64/include/asm/ptrace.h"));
        d.extend(defines("arch/arm64/include/generated/asm/sysreg-defs.h"));
        d.extend(defines("arch/arm64/include/asm/sysreg.h"));
        d.extend(defines("arch/arm64/include/asm/kvm_arm.h"));
        let defs: HashMap<String, String> = d
            .into_iter()
            .map(|(k, v)| (k, strip_comments(&v).trim().to_string()))
            .collect();
        let v = |n: &str| c_eval(n, &defs);
        Consts {
            mode_mask: v("PSR_MODE_MASK"),
            mode32: v("PSR_MODE32_BIT"),
            aa32_mode_mask: v("PSR_AA32_MODE_MASK"),
            el1t: v("PSR_MODE_EL1t"),
            el1h: v("PSR_MODE_EL1h"),
            el2t: v("PSR_MODE_EL2t"),
            el2h: v("PSR_MODE_EL2h"),
            il: v("PSR_IL_BIT"),
            hcr_rw: v("HCR_RW"),
            defs,
        }
    }

    /// The value of the kernel's `name`.
    pub fn get(&self, name: &str) -> u64 {
        c_eval(name, &self.defs)
    }

    /// `to_hw_pstate()` of a PSTATE (its text is checked by `tests/pstate.rs`).
    fn to_hw_pstate(&self, p: u64) -> u64 {
        let m = self.mode_mask | self.mode32;
        let mode = match p & m {
            x if x == self.el2t => self.el1t,
            x if x == self.el2h => self.el1h,
            x => x,
        };
        (p & !m) | mode
    }
}

impl Default for Consts {
    fn default() -> Self {
        Self::new()
    }
}

/// The CPU register an accessor reaches at VHE's EL2: `read_sysreg(mdscr_el1)`
/// is MDSCR_EL1, `read_sysreg_s(SYS_POR_EL0)` POR_EL0,
/// `read_sysreg_el2(SYS_ELR)` ELR_EL2 (`_EL1` encodings under E2H, the EL2
/// register by name).
fn c_register(accessor: &str, arg: &str) -> String {
    let arg = arg.trim();
    match accessor {
        "" => arg.to_uppercase(),
        "_s" => arg
            .strip_prefix("SYS_")
            .unwrap_or_else(|| panic!("`{arg}`"))
            .to_string(),
        "_el2" => format!("{}_EL2", arg.strip_prefix("SYS_").unwrap()),
        a => panic!("accessor read/write_sysreg{a} not known here"),
    }
}

fn cpu_reg(name: &str) -> CpuReg {
    *CpuReg::ALL
        .iter()
        .find(|r| r.name() == name)
        .unwrap_or_else(|| panic!("{name} is not a CpuReg"))
}

/// Reads register `name` on `cpu` (logged).
fn read_named(cpu: &mut Cpu, name: &str) -> u64 {
    match name {
        "ELR_EL2" => cpu.read_raw::<ELR_EL2::Reg>(),
        "SPSR_EL2" => cpu.read_raw::<SPSR_EL2::Reg>(),
        "FPEXC32_EL2" => cpu.read_raw::<FPEXC32_EL2::Reg>(),
        n => cpu_reg(n).read(cpu),
    }
}

/// Writes register `name` on `cpu` (logged).
fn write_named(cpu: &mut Cpu, name: &str, v: u64) {
    match name {
        "ELR_EL2" => cpu.write_raw::<ELR_EL2::Reg>(v),
        "SPSR_EL2" => cpu.write_raw::<SPSR_EL2::Reg>(v),
        n => cpu_reg(n).write(cpu, v),
    }
}

fn slot(name: &str) -> VcpuSlot {
    VcpuSlot::Sys(
        *VcpuSysReg::ALL
            .iter()
            .find(|r| r.name() == name)
            .unwrap_or_else(|| panic!("{name} is not a VcpuSysReg")),
    )
}

/// The local variables of `__sysreg_restore_el2_return_state()`.
#[derive(Default)]
struct Locals {
    pstate: Option<u64>,
    mode: Option<u64>,
}

/// Carries out `__sysreg_*_state()` of `sysreg-sr.h`, `func`, on `ctxt`.
pub fn exec_sysreg_h(k: &Consts, func: &str, ctxt: Ctxt, v: &mut Vcpu, cpu: &mut Cpu) {
    let mut locals = Locals::default();
    for s in statements(SYSREG_SR_H, func) {
        match s {
            Stmt::Simple(s) => exec_move(k, func, &s, ctxt, v, cpu, &mut locals),
            Stmt::If(cond, s) => {
                if condition(k, func, &cond, v, &locals) {
                    exec_move(k, func, &s, ctxt, v, cpu, &mut locals);
                }
            }
            Stmt::DoWhile(..) => panic!("{func}(): a loop"),
        }
    }
}

/// A condition of the register moves, on a VHE host.
fn condition(k: &Consts, func: &str, cond: &str, v: &Vcpu, l: &Locals) -> bool {
    match cond {
        // For host_ctxt too: __hyp_running_vcpu is the vCPU (ctxt_to_vcpu()).
        "ctxt_has_s1poe(ctxt)" => v.features.has(Feature::S1poe),
        "cpus_have_final_cap(ARM64_HAS_RAS_EXTN)" => v.features.has(Feature::Ras),
        "!has_vhe() && ctxt->__hyp_running_vcpu" => false,
        "!(mode & PSR_MODE32_BIT) && mode >= PSR_MODE_EL2t" => {
            let mode = l.mode.expect("mode before its assignment");
            mode & k.mode32 == 0 && mode >= k.el2t
        }
        c => panic!("{func}(): unknown condition `{c}`"),
    }
}

/// One statement of a register move function.
fn exec_move(
    k: &Consts,
    func: &str,
    s: &str,
    ctxt: Ctxt,
    v: &mut Vcpu,
    cpu: &mut Cpu,
    l: &mut Locals,
) {
    match s {
        "u64 pstate = to_hw_pstate(ctxt);" => {
            assert_eq!(ctxt, Ctxt::Guest, "{func}(): the host's PSTATE");
            l.pstate = Some(k.to_hw_pstate(El2ReturnContext::pstate(v).raw()));
            return;
        }
        "u64 mode = pstate & PSR_AA32_MODE_MASK;" => {
            l.mode = Some(l.pstate.unwrap() & k.aa32_mode_mask);
            return;
        }
        "pstate = PSR_MODE_EL2h | PSR_IL_BIT;" => {
            l.pstate = Some(k.el2h | k.il);
            return;
        }
        _ => {}
    }
    if let Some(args) = s.strip_prefix("write_sysreg") {
        // write_sysreg{,_s,_el2}(VALUE, REG);
        let (acc, args) = args.split_once('(').unwrap();
        let args = args.strip_suffix(");").unwrap();
        let (val, reg) = args.rsplit_once(',').unwrap();
        let val = match val.trim() {
            "ctxt->regs.pc" => {
                assert_eq!(ctxt, Ctxt::Guest);
                El2ReturnContext::pc(v).raw()
            }
            "pstate" => l.pstate.expect("pstate before its assignment"),
            x => {
                let name = x
                    .strip_prefix("ctxt_sys_reg(ctxt, ")
                    .and_then(|x| x.strip_suffix(')'))
                    .unwrap_or_else(|| panic!("{func}(): value `{x}`"));
                match ctxt {
                    Ctxt::Host => SysregContext::host(v, slot(name)),
                    Ctxt::Guest => SysregContext::guest(v, slot(name)),
                }
            }
        };
        write_named(cpu, &c_register(acc, reg), val);
        return;
    }
    // LHS = read_sysreg{,_s,_el2}(REG);
    let (lhs, rhs) = s
        .split_once(" = ")
        .unwrap_or_else(|| panic!("{func}(): unknown statement `{s}`"));
    let (acc, arg) = rhs
        .strip_prefix("read_sysreg")
        .and_then(|r| r.strip_suffix(");"))
        .and_then(|r| r.split_once('('))
        .unwrap_or_else(|| panic!("{func}(): unknown statement `{s}`"));
    let val = read_named(cpu, &c_register(acc, arg));
    if lhs == "ctxt->regs.pc" {
        assert_eq!(ctxt, Ctxt::Guest);
        El2ReturnContext::set_pc(v, vhe_rs_hosttest::arch::Value::from_raw(val));
        return;
    }
    let name = lhs
        .strip_prefix("ctxt_sys_reg(ctxt, ")
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{func}(): unknown statement `{s}`"));
    match ctxt {
        Ctxt::Host => SysregContext::set_host(v, slot(name), val),
        Ctxt::Guest => SysregContext::set_guest(v, slot(name), val),
    }
}

/// The `__sysreg_*()` calls of `func` of `vhe/sysreg-sr.c`, in order (each
/// `name(ctxt);`, and nothing else).
pub fn vhe_sysreg_calls(func: &str) -> Vec<String> {
    statements(VHE_SYSREG_SR, func)
        .into_iter()
        .map(|s| match s {
            Stmt::Simple(s) => match call(&s) {
                Some((name, "ctxt")) => name.to_string(),
                _ => panic!("{func}(): `{s}`"),
            },
            s => panic!("{func}(): `{s:?}`"),
        })
        .collect()
}

/// Carries out `func` of `vhe/sysreg-sr.c` on `ctxt`.
pub fn exec_vhe_sysreg(k: &Consts, func: &str, ctxt: Ctxt, v: &mut Vcpu, cpu: &mut Cpu) {
    for f in vhe_sysreg_calls(func) {
        exec_sysreg_h(k, &f, ctxt, v, cpu);
    }
}

/// Carries out `__fpsimd_save_fpexc32()` of `hyp/switch.h`.
fn exec_save_fpexc32(k: &Consts, v: &mut Vcpu, cpu: &mut Cpu) {
    for s in statements(HYP_SWITCH, "__fpsimd_save_fpexc32") {
        match s {
            // vcpu_el1_is_32bit() at hyp: !(vcpu->arch.hcr_el2 & HCR_RW).
            Stmt::If(c, r) if c == "!vcpu_el1_is_32bit(vcpu)" && r == "return;" => {
                if v.vcpu_hcr_el2().raw() & k.hcr_rw != 0 {
                    return;
                }
            }
            Stmt::Simple(s)
                if s == "__vcpu_sys_reg(vcpu, FPEXC32_EL2) = read_sysreg(fpexc32_el2);" =>
            {
                let val = read_named(cpu, "FPEXC32_EL2");
                v.set_vcpu_fpexc32(vhe_rs_hosttest::arch::Value::from_raw(val));
            }
            s => panic!("__fpsimd_save_fpexc32(): `{s:?}`"),
        }
    }
}

/// The statements of `__kvm_vcpu_run_vhe()` that do nothing the model sees:
/// its declarations and the two context pointers.
const RUN_SETUP: [&str; 5] = [
    "struct kvm_cpu_context *host_ctxt;",
    "struct kvm_cpu_context *guest_ctxt;",
    "u64 exit_code;",
    "host_ctxt = host_data_ptr(host_ctxt);",
    "guest_ctxt = &vcpu->arch.ctxt;",
];

/// The statements of `__kvm_vcpu_run_vhe()`.
pub fn run_statements() -> Vec<Stmt> {
    statements(VHE_SWITCH, "__kvm_vcpu_run_vhe")
}

/// The steps of `__kvm_vcpu_run_vhe()` as names, in order: each call's name,
/// the loop as `do { ... } while (...)` with its statements, the conditional
/// call as `if (...) call`, the return; without [`RUN_SETUP`].
pub fn run_outline() -> Vec<String> {
    fn one(s: &Stmt) -> String {
        match s {
            Stmt::Simple(s) => call(s).map_or(s.clone(), |(n, _)| n.to_string()),
            Stmt::If(c, s) => format!("if ({c}) {}", one(&Stmt::Simple(s.clone()))),
            Stmt::DoWhile(b, c) => format!(
                "do {{ {} }} while ({c})",
                b.iter().map(one).collect::<Vec<_>>().join(" ")
            ),
        }
    }
    run_statements()
        .iter()
        .filter(|s| !matches!(s, Stmt::Simple(x) if RUN_SETUP.contains(&x.as_str())))
        .map(one)
        .collect()
}

/// One call statement of the run, carried out by the Rust step that stands
/// for it (or, for the register moves and the FPEXC32 save, by their C).
fn exec_run_call(k: &Consts, s: &str, v: &mut Vcpu, cpu: &mut Cpu) {
    let (name, arg) = call(s).unwrap_or_else(|| panic!("__kvm_vcpu_run_vhe(): `{s}`"));
    let ctxt = match arg {
        "host_ctxt" => Some(Ctxt::Host),
        "guest_ctxt" => Some(Ctxt::Guest),
        "vcpu" => None,
        a => panic!("__kvm_vcpu_run_vhe(): `{name}({a})`"),
    };
    match (name, ctxt) {
        (
            "sysreg_save_host_state_vhe"
            | "sysreg_restore_host_state_vhe"
            | "sysreg_save_guest_state_vhe"
            | "sysreg_restore_guest_state_vhe",
            Some(c),
        ) => {
            let side = if name.contains("_host_") {
                Ctxt::Host
            } else {
                Ctxt::Guest
            };
            assert_eq!(side, c, "{name}() on the other context");
            exec_vhe_sysreg(k, name, c, v, cpu);
        }
        ("fpsimd_lazy_switch_to_guest", None) => fp::switch_to_guest(v, cpu),
        ("fpsimd_lazy_switch_to_host", None) => fp::switch_to_host(v, cpu),
        ("__activate_traps", None) => entry_traps::activate(v, cpu),
        ("__deactivate_traps", None) => entry_traps::deactivate(v, cpu),
        ("__kvm_adjust_pc", None) => v.adjust_pc(),
        ("__debug_switch_to_guest", None) => v.debug_switch_to_guest(),
        ("__debug_switch_to_host", None) => v.debug_switch_to_host(),
        ("__fpsimd_save_fpexc32", None) => exec_save_fpexc32(k, v, cpu),
        _ => panic!("__kvm_vcpu_run_vhe(): no Rust step for `{s}`"),
    }
}

/// Carries out `__kvm_vcpu_run_vhe()` on `v` and `cpu`, statement by
/// statement of the kernel's text, and returns its exit code.
pub fn exec_run(k: &Consts, v: &mut Vcpu, cpu: &mut Cpu) -> ExitCode {
    let mut exit_code = None;
    for s in run_statements() {
        match s {
            Stmt::Simple(s) if RUN_SETUP.contains(&s.as_str()) => {}
            Stmt::Simple(s) if s == "return exit_code;" => {
                return exit_code.expect("return before the loop");
            }
            Stmt::Simple(s) => exec_run_call(k, &s, v, cpu),
            Stmt::DoWhile(body, cond) => {
                assert_eq!(
                    body,
                    [Stmt::Simple("exit_code = __guest_enter(vcpu);".into())],
                    "the loop's body"
                );
                assert_eq!(
                    cond, "fixup_guest_exit(vcpu, &exit_code)",
                    "the loop's test"
                );
                loop {
                    let code = ExitCode::from_raw(v.guest_enter());
                    match fixup::fixup_guest_exit(v, cpu, code) {
                        Fixup::ReEnter => {}
                        Fixup::Exit(c) => {
                            exit_code = Some(c);
                            break;
                        }
                    }
                }
            }
            Stmt::If(cond, s) => {
                assert_eq!(
                    cond, "guest_owns_fp_regs()",
                    "__kvm_vcpu_run_vhe(): `if ({cond})`"
                );
                if v.fp_owner() == FpOwner::GuestOwned {
                    exec_run_call(k, &s, v, cpu);
                }
            }
        }
    }
    panic!("__kvm_vcpu_run_vhe(): no return")
}
