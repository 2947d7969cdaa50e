# SPDX-License-Identifier: GPL-2.0
"""Tests of tools/layer-check on small fake rust/ trees, and on the real one.

  python3 -m unittest discover -s tools/tests -v
"""
import io
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

import scripts

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
TOP = os.path.dirname(TOOLS)
TOOL = os.path.join(TOOLS, "layer-check")


lc = scripts.load("layer-check", "layer_check")

# A clean tree in the shape of the real one: every layer, each using what it may.
CLEAN = {
    "vhe.rs": """
//! The root: calls `kvm` only; its doc may name crate::world and kernel::bindings.
use kernel::prelude::*;

pub mod arch;
mod kvm;
pub mod parts;
pub mod world;

impl kernel::Module for VheRs {
    fn init() -> Result<Self> {
        let p = parts::Parts::parse("x");
        kvm::register(p)
    }
}
""",
    "parts.rs": """
//! The parts table (core only).
#![forbid(unsafe_code)]
use core::fmt;
pub struct Parts;
""",
    "arch/mod.rs": """
//! Registers: crate::arch.
mod reg;
pub use reg::*;
pub(crate) use self::reg::Cpu;
""",
    "arch/reg.rs": """
use core::marker::PhantomData;
use super::Cpu as _;
#[allow(clippy::all)]
pub mod defs {
    include!("../generated/sysregs.rs");
    use super::super::Cpu;
}
macro_rules! sysreg_impl {
    ($ty:ident) => { impl $crate::arch::SysReg for $ty {} };
}
pub struct Cpu;
impl Cpu {
    pub fn daif(&self) -> u64 {
        let v: u64;
        // SAFETY: crate::kvm said so; "kernel::bindings" is only a string here.
        unsafe { core::arch::asm!("mrs {0}, daif", out(reg) v) };
        let _c = '"';
        let _s = r#"use crate::world; bindings"#;
        /* use crate::kvm; /* nested: kernel::bindings */ still a comment */
        v
    }
}
""",
    "world/mod.rs": """
//! The switch logic, safe.
#![forbid(unsafe_code)]
pub mod fp;
pub mod traps;
""",
    "world/fp.rs": """
use crate::arch::{Cpu, RegAccess};
use crate::world::traps::{self, TrapContext};
use super::traps::Trap;
pub fn f<'a>(x: &'a u8) -> &'a u8 { crate::arch::cpu_regs!(); x }
""",
    "world/traps.rs": """
pub struct Trap;
""",
    "kvm/mod.rs": """
mod entry;
pub(crate) use entry::register;
""",
    "kvm/entry.rs": """
use super::super::world::fp;
use crate::{arch::Cpu, parts::Parts, world::{fp as f2, traps}};
use kernel::bindings;
extern "C" { fn vhe_rs_cap(x: *mut bindings::kvm_vcpu) -> bool; }
pub(crate) fn register(p: Parts) -> Result { unsafe { vhe_rs_cap(core::ptr::null_mut()) }; Ok(()) }
""",
}


class FakeTree:
    """A temporary rust/ from CLEAN, with some files replaced or added."""

    def __init__(self, **changes):
        self.files = dict(CLEAN)
        for k, v in changes.items():
            path = k.replace("__", "/") + ".rs"
            if v is None:
                self.files.pop(path, None)
            else:
                self.files[path] = v

    def __enter__(self):
        self.tmp = tempfile.TemporaryDirectory()
        rust = pathlib.Path(self.tmp.name) / "rust"
        for rel, text in self.files.items():
            p = rust / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        # Neither is checked: generated code and the host test crate.
        (rust / "generated").mkdir()
        (rust / "generated" / "sysregs.rs").write_text("use crate::kvm::X; unsafe fn f() {}\n")
        (rust / "hosttest").mkdir()
        (rust / "hosttest" / "lib.rs").write_text('#[path = "../arch/mod.rs"]\nmod arch; use kernel::bindings;\n')
        return rust

    def __exit__(self, *exc):
        self.tmp.cleanup()


def check(**changes):
    """{rule number: [violations]} of the fake tree with these changes."""
    with FakeTree(**changes) as rust:
        return {i: v for i, (_, v) in enumerate(lc.check_tree(rust), 1)}


def broken(**changes):
    """The violations, all rules together, as one text."""
    return "\n".join(x for v in check(**changes).values() for x in v)


def with_line(path, line):
    """CLEAN's file with one more line after its first."""
    head, _, rest = CLEAN[path].lstrip("\n").partition("\n")
    return f"{head}\n{line}\n{rest}"


class Clean(unittest.TestCase):
    def test_the_fake_tree_passes(self):
        self.assertEqual(broken(), "")

    def test_the_real_tree_passes(self):
        p = subprocess.run([sys.executable, TOOL], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.count("\nok ") + p.stdout.startswith("ok "), 4, p.stdout)
        self.assertNotIn("not ok", p.stdout)

    def test_cli_on_a_fake_tree(self):
        with FakeTree(world__fp=with_line("world/fp.rs", "use crate::kvm::x;")) as rust:
            p = subprocess.run([sys.executable, TOOL, str(rust)], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("not ok 1 - layers: each layer imports only what it may", p.stdout)
        self.assertIn("#   rust/world/fp.rs:2: world uses crate::kvm::x", p.stdout)
        self.assertIn("ok 2 - ", p.stdout)

    def test_not_a_rust_dir(self):
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run([sys.executable, TOOL, d], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)


class Imports(unittest.TestCase):
    def test_plain_crate_path(self):
        self.assertIn("rust/world/fp.rs:2: world uses crate::kvm::entry",
                      broken(world__fp=with_line("world/fp.rs", "use crate::kvm::entry::X;")))

    def test_L1_group_import(self):
        out = broken(world__fp=with_line("world/fp.rs", "use crate::{parts::Parts};"))
        self.assertIn("rust/world/fp.rs:2: world uses crate::parts::Parts", out)
        out = broken(world__fp=with_line("world/fp.rs", "use crate::{arch, kvm};"))
        self.assertIn("world uses crate::kvm", out)
        self.assertNotIn("crate::arch", out)
        out = broken(world__fp=with_line("world/fp.rs", "use crate::{arch::{Cpu, x::{y, z}}, world::{a, parts::b}};"))
        self.assertEqual(out, "")  # crate::world::parts is world's own
        out = broken(world__fp=with_line("world/fp.rs", "use crate::{arch::Cpu,\n    b::{c, d as e}};"))
        self.assertIn("rust/world/fp.rs:3: world uses crate::b::c", out)  # b: an item of the root
        self.assertIn("crate::b::d", out)

    def test_L2_super_chain(self):
        out = broken(arch__reg=with_line("arch/reg.rs", "use super::super::world::fp::X;"))
        self.assertIn("rust/arch/reg.rs:2: arch uses crate::world::fp (as super::super::world::fp::X)", out)
        # From arch/mod.rs (crate::arch) one super is the root.
        out = broken(arch__mod=with_line("arch/mod.rs", "use super::world;"))
        self.assertIn("rust/arch/mod.rs:2: arch uses crate::world (as super::world)", out)
        # Within the layer: fine.
        self.assertEqual(broken(arch__reg=with_line("arch/reg.rs", "use super::reg::Cpu; use self::defs::x;")), "")

    def test_super_chain_in_an_expression(self):
        out = broken(arch__reg=with_line("arch/reg.rs", "fn f() { super::super::kvm::entry::g(); }"))
        self.assertIn("arch uses crate::kvm::entry (as super::super::kvm::entry::g)", out)

    def test_self_and_super_mixed(self):
        out = broken(arch__reg=with_line("arch/reg.rs", "use self::super::super::parts::Parts;"))
        self.assertIn("arch uses crate::parts::Parts", out)

    def test_super_from_a_top_level_file(self):
        out = broken(parts=with_line("parts.rs", "fn f() { super::kvm::register(); }"))
        self.assertIn("rust/parts.rs:2: parts uses crate::kvm::register (as super::kvm::register)", out)
        out = broken(parts=with_line("parts.rs", "use super::{arch::Cpu};"))
        self.assertIn("parts uses crate::arch::Cpu (as super::arch::Cpu)", out)

    def test_super_in_a_group(self):
        out = broken(arch__reg=with_line("arch/reg.rs", "use super::{Cpu, super::world::fp};"))
        self.assertIn("arch uses crate::world::fp", out)

    def test_inline_modules_count(self):
        # In arch/reg.rs `mod m { }`, super::super is crate::arch: fine; one more is the root.
        src = with_line("arch/reg.rs", "mod m {\n    use super::super::Cpu;\n    fn f() { super::super::super::world::g(); }\n}")
        out = broken(arch__reg=src)
        self.assertIn("rust/arch/reg.rs:4: arch uses crate::world::g", out)
        self.assertNotIn(":3:", out)

    def test_super_above_the_root(self):
        out = broken(world__fp=with_line("world/fp.rs", "use super::super::super::x;"))
        self.assertIn("super:: above the crate root", out)

    def test_the_crate_root_as_a_whole(self):
        out = broken(arch__reg=with_line("arch/reg.rs", "use super::super as root;"))
        self.assertIn("arch imports the crate root itself (super::super)", out)
        out = broken(parts=with_line("parts.rs", "use super::*;"))
        self.assertIn("parts imports the crate root itself (super::*)", out)
        out = broken(world__fp=with_line("world/fp.rs", "use crate::{self as c};"))
        self.assertIn("world imports the crate root itself", out)
        self.assertEqual(broken(kvm__entry=with_line("kvm/entry.rs", "use crate::*;")), "")

    def test_dollar_crate(self):
        out = broken(arch__reg=with_line("arch/reg.rs", "macro_rules! m { () => { $crate::kvm::f() } }"))
        self.assertIn("arch uses crate::kvm::f (as $crate::kvm::f)", out)

    def test_root_file_bare_paths(self):
        vhe = CLEAN["vhe.rs"].replace("kvm::register(p)", "world::fp::f(); kvm::register(p)")
        self.assertIn("rust/vhe.rs:13: vhe uses crate::world::fp (as world::fp::f)", broken(vhe=vhe))
        vhe = CLEAN["vhe.rs"].replace("use kernel::prelude::*;", "use kernel::prelude::*;\nuse arch::Cpu;")
        self.assertIn("vhe uses crate::arch::Cpu (as arch::Cpu)", broken(vhe=vhe))

    def test_root_items(self):
        out = broken(parts=with_line("parts.rs", "use crate::VheRs;"))
        self.assertIn("parts uses crate::VheRs", out)

    def test_comments_and_strings_are_not_code(self):
        src = with_line("world/fp.rs", '// use crate::kvm::x;\n/* crate::kvm::y /* kernel::bindings */ */\n'
                        'const S: &str = "crate::kvm::z bindings"; const R: &str = r##"kernel::bindings "#"##;\n'
                        "const C: char = '\\''; const B: &[u8] = b\"unsafe\";\n"
                        "/// [`crate::kvm`] and `kernel::bindings` in a doc\nfn g<'a>() {}")
        self.assertEqual(broken(world__fp=src), "")


class Identifiers(unittest.TestCase):
    def test_L3_bindings_alias_in_the_root(self):
        vhe = CLEAN["vhe.rs"].replace("use kernel::prelude::*;",
                                      "use kernel::prelude::*;\nuse kernel::bindings as kb;")
        vhe = vhe.replace("kvm::register(p)", "unsafe { kb::f() }; kvm::register(p)")
        out = check(vhe=vhe)
        self.assertIn("rust/vhe.rs:4: the identifier `bindings` outside rust/kvm", "\n".join(out[2]))
        self.assertIn("rust/vhe.rs:14: unsafe outside rust/arch and rust/kvm", "\n".join(out[2]))

    def test_bindings_anywhere_outside_kvm(self):
        for f in ("arch/reg.rs", "world/fp.rs", "parts.rs"):
            out = broken(**{f[:-3].replace("/", "__"): with_line(f, "type T = ::kernel::r#bindings::x;")})
            self.assertIn(f"rust/{f}:2: the identifier `bindings` outside rust/kvm", out)
        self.assertEqual(broken(kvm__entry=with_line("kvm/entry.rs", "type T = bindings::kvm;")), "")

    def test_kernel_not_in_arch_world_parts(self):
        for f, lay in (("arch/reg.rs", "arch"), ("world/fp.rs", "world"), ("parts.rs", "parts")):
            out = broken(**{f[:-3].replace("/", "__"): with_line(f, "use kernel::prelude::*;")})
            self.assertIn(f"rust/{f}:2: {lay} names the kernel crate (`kernel`)", out)
            out = broken(**{f[:-3].replace("/", "__"): with_line(f, "use kernel as k;")})
            self.assertIn(f"{lay} names the kernel crate", out)
        self.assertEqual(broken(vhe=CLEAN["vhe.rs"] + "fn f() { kernel::print(); }\n"), "")


class Unsafe(unittest.TestCase):
    def test_unsafe_extern_asm(self):
        out = check(world__fp=with_line("world/fp.rs", 'unsafe fn f() {}\nextern "C" { fn g(); }\n'
                                        'fn h() { core::arch::asm!("nop"); }\nextern crate self as vhe;'))
        text = "\n".join(out[2])
        self.assertIn("rust/world/fp.rs:2: unsafe outside rust/arch and rust/kvm", text)
        self.assertIn("rust/world/fp.rs:3: extern outside rust/kvm", text)
        self.assertIn("rust/world/fp.rs:4: asm! outside rust/arch", text)
        self.assertIn("rust/world/fp.rs:5: extern outside rust/kvm", text)
        self.assertIn("global_asm! outside rust/arch",
                      broken(kvm__entry=with_line("kvm/entry.rs", 'core::arch::global_asm!("");')))

    def test_a_raw_identifier_is_not_the_keyword(self):
        self.assertEqual(broken(world__fp=with_line("world/fp.rs", "fn r#unsafe() {}")), "")

    def test_forbid_must_be_code(self):
        out = check(world__mod=CLEAN["world/mod.rs"].replace("#![forbid(unsafe_code)]", "// #![forbid(unsafe_code)]"))
        self.assertEqual(out[3], ["rust/world/mod.rs: no #![forbid(unsafe_code)]"])
        out = check(parts=CLEAN["parts.rs"].replace("#![forbid(unsafe_code)]", "#![forbid(missing_docs, unsafe_code)]"))
        self.assertEqual(out[3], [])
        out = check(parts=None)
        self.assertEqual(out[3], ["rust/parts.rs: no #![forbid(unsafe_code)]"])


class Files(unittest.TestCase):
    def test_path_attribute(self):
        out = check(world__mod=with_line("world/mod.rs", '#[path = "../kvm/entry.rs"]\nmod entry;'))
        self.assertIn("rust/world/mod.rs:2: #[path]", "\n".join(out[4]))

    def test_include_only_generated(self):
        out = check(world__fp=with_line("world/fp.rs", 'include!("../kvm/entry.rs");'))
        self.assertIn("rust/world/fp.rs:2: include! of rust/kvm/entry.rs: only rust/generated/ may be included",
                      "\n".join(out[4]))
        out = check(world__fp=with_line("world/fp.rs", 'include!(concat!("../kvm/", "entry.rs"));'))
        self.assertIn("include! of a computed path", "\n".join(out[4]))


class Lexer(unittest.TestCase):
    def test_tokens(self):
        toks = lc.lex("a::b /* c */ 'x' 'a \"s\\\"t\" r#\"q\"# $crate r#type // d\n e")
        self.assertEqual([(t.kind, t.text) for t in toks],
                         [("ident", "a"), ("punct", "::"), ("ident", "b"), ("str", "x"), ("life", "a"),
                          ("str", 's\\"t'), ("str", "q"), ("ident", "$crate"), ("raw", "type"), ("ident", "e")])
        self.assertEqual(toks[-1].line, 2)

    def test_module_paths(self):
        self.assertEqual(lc.module_of_file(pathlib.PurePosixPath("arch/reg.rs")), ["arch", "reg"])
        self.assertEqual(lc.module_of_file(pathlib.PurePosixPath("arch/mod.rs")), ["arch"])
        self.assertEqual(lc.module_of_file(pathlib.PurePosixPath("vhe.rs")), [])
        self.assertEqual(lc.module_of_file(pathlib.PurePosixPath("parts.rs")), ["parts"])

    def test_use_trees(self):
        toks = lc.lex("crate::{a, b::{c, self}, d as e, f::*}")
        leaves, _ = lc.parse_use_tree(toks, 0)
        self.assertEqual([s for s, _ in leaves],
                         [["crate", "a"], ["crate", "b", "c"], ["crate", "b"], ["crate", "d"], ["crate", "f", "*"]])

    def test_report(self):
        out = io.StringIO()
        self.assertEqual(lc.report([("a", []), ("b", ["x"])], out), 1)
        self.assertEqual(out.getvalue(), "ok 1 - layers: a\nnot ok 2 - layers: b\n#   x\n")


if __name__ == "__main__":
    unittest.main()
