# SPDX-License-Identifier: GPL-2.0
"""Tests of tools/noinstr-check on small synthetic `llvm-objdump -dr` texts.

  python3 -m unittest discover -s tools/tests -v
"""
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import unittest

import scripts

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
TOOL = os.path.join(TOOLS, "noinstr-check")


nc = scripts.load("noinstr-check", "noinstr_check")


def disasm(*funcs, section=".text"):
    """An `llvm-objdump -dr --no-show-raw-insn` text of functions laid one after
    another from 0: each (name, [insn, ...]); an insn is "mnem ops", or
    ("mnem ops", "R_AARCH64_TYPE sym") for one with a relocation. A branch
    to "@name" or "@name+0x8" is shown at that address, as objdump does."""
    starts, at = {}, 0
    for name, insns in funcs:
        starts[name] = at
        at += 4 * len(insns)
    out = ["", "m.ko:\tfile format elf64-littleaarch64", "", f"Disassembly of section {section}:", ""]
    for name, insns in funcs:
        a = starts[name]
        out.append(f"{a:016x} <{name}>:")
        for i in insns:
            text, reloc = (i, None) if isinstance(i, str) else i
            if "@" in text:
                head, tgt = text.split("@")
                sym, _, off = tgt.partition("+")
                t = starts[sym] + (int(off, 16) if off else 0)
                text = f"{head}{t:#x} <{sym}{'+' + off if off else ''}>"
            mnem, _, ops = text.partition(" ")
            out.append(f"{a:8x}:      \t{mnem}\t{ops}".rstrip())
            if reloc:
                out.append(f"\t\t{a:016x}:  {reloc.split()[0]}\t{reloc.split()[1]}")
            a += 4
        out.append("")
    return "\n".join(out) + "\n"


def call(sym):
    return ("bl 0x0", f"R_AARCH64_CALL26 {sym}")


def tail(sym):
    return ("b 0x0", f"R_AARCH64_JUMP26 {sym}")


def run_tool(text, *args):
    """The script on a saved text: the CompletedProcess."""
    with tempfile.NamedTemporaryFile("w", suffix=".dis") as f:
        f.write(text)
        f.flush()
        return subprocess.run([sys.executable, TOOL, "--objdump-text", f.name, *args],
                              capture_output=True, text=True)


PROLOGUE = ["stp x29, x30, [sp, #-0x10]!", "mov x29, sp"]
EPILOGUE = ["ldp x29, x30, [sp], #0x10", "ret"]


def run_check(text, roots, allow=(), allow_indirect=(), leave=(), **kw):
    mod = nc.Module(text, **kw)
    rs = nc.RootSet("t", roots, allow, allow_indirect, leave)
    res = nc.check(mod, rs)
    out = io.StringIO()
    ok = nc.report(mod, rs, res, 1, True, out)
    return ok, res, out.getvalue()


class Deep(unittest.TestCase):
    """root -> a -> b -> c, and c calls _printk."""

    TEXT = disasm(
        ("root", PROLOGUE + [call("a"), "mov w0, wzr"] + EPILOGUE),
        ("a", PROLOGUE + ["cbz x0, @a+0x10", call("b")] + EPILOGUE),
        ("b", ["add x0, x0, #1", tail("c")]),
        ("c", PROLOGUE + ["adrp x0, 0x0", call("_printk")] + EPILOGUE),
        ("unrelated", [call("kmalloc"), "ret"]),
    )

    def test_found_with_its_path(self):
        ok, res, out = run_check(self.TEXT, ["^root$"])
        self.assertFalse(ok)
        self.assertEqual([(o[0], o[2]) for o in res.offences], [("print", "calls _printk, forbidden (print)")])
        self.assertIn("not ok 1 - t: 1 offence", out)
        self.assertIn("#   print: root -> a -> b -> c: calls _printk, forbidden (print) [.text+0x", out)
        self.assertNotIn("kmalloc", out)  # not reachable from root

    def test_listing(self):
        _, _, out = run_check(self.TEXT, ["^root$"])
        self.assertIn("reach module   c  (tail-called by b, .text+0x", out)
        self.assertIn("reach external _printk  (called by c, .text+0x", out)

    def test_from_a_middle_root(self):
        ok, res, _ = run_check(self.TEXT, ["^b$"])
        self.assertFalse(ok)
        self.assertEqual(nc.path(res, res.offences[0][1]), "b -> c")

    def test_a_root_that_matches_nothing_fails(self):
        ok, res, out = run_check(self.TEXT, ["^root$", "^nothing$"])
        self.assertFalse(ok)
        self.assertIn("#   no function matches root ^nothing$", out)


class Allow(unittest.TestCase):
    TEXT = disasm(
        ("root", PROLOGUE + ["tbnz w0, #0x7, @root+0x10", call("sink"), call("helper")] + EPILOGUE),
        ("sink", PROLOGUE + [call("__warn_printk"), call("deeper"), "brk #0x800"] + EPILOGUE),
        ("deeper", [call("mutex_lock"), "ret"]),
        ("helper", ["ret"]),
    )

    def test_allowed_sink_is_not_descended(self):
        ok, res, out = run_check(self.TEXT, ["^root$"], allow=[("^sink$", "a deliberate WARN")])
        self.assertTrue(ok, out)
        self.assertIn("ok 1 - t: 1 root, 2 functions reachable in the module, 0 outside it", out)
        self.assertIn("#   allowed: root -> sink [.text+0x", out)
        self.assertIn("]: a deliberate WARN", out)
        reached = set(res.nodes.values())
        self.assertNotIn("deeper", reached)
        self.assertNotIn("__warn_printk", reached)
        self.assertNotIn("mutex_lock", reached)

    def test_without_the_allow_all_of_it_fails(self):
        ok, res, out = run_check(self.TEXT, ["^root$"])
        self.assertFalse(ok)
        cats = sorted(o[0] for o in res.offences)
        self.assertEqual(cats, ["lock", "print", "trap"])
        self.assertIn("#   lock: root -> sink -> deeper: calls mutex_lock, forbidden (lock)", out)

    def test_an_allowed_external_sink(self):
        text = disasm(("root", PROLOGUE + [call("vhe_rs_report")] + EPILOGUE),
                      ("vhe_rs_report", [call("__warn_printk"), "ret"]))
        ok, _, out = run_check(text, ["^root$"], allow=[("^vhe_rs_report$", "why")])
        self.assertTrue(ok, out)
        ok, _, _ = run_check(text, ["^root$"], allow=[("^other$", "why")])
        self.assertFalse(ok)


class Indirect(unittest.TestCase):
    TEXT = disasm(
        ("root", PROLOGUE + [call("glue")] + EPILOGUE),
        ("glue", PROLOGUE + ["adrp x8, 0x0", "ldr x8, [x8]", "blr x8"] + EPILOGUE),
    )

    def test_indirect_call_is_reported(self):
        ok, res, out = run_check(self.TEXT, ["^root$"])
        self.assertFalse(ok)
        self.assertIn("#   indirect: root -> glue: an indirect call (blr x8): unknown callee [.text+0x24]", out)

    def test_allowed_for_its_function(self):
        ok, _, out = run_check(self.TEXT, ["^root$"], allow_indirect=[("^glue$", "the kernel's, by pointer")])
        self.assertTrue(ok, out)
        self.assertIn("#   allowed: root -> glue: an indirect call (blr x8) [.text+0x24]: the kernel's, by pointer",
                      out)

    def test_indirect_branch_takes_all_of_the_function(self):
        text = disasm(("root", ["adr x9, @root+0xc", "br x9", "ret", call("_printk"), "ret"]))
        ok, res, _ = run_check(text, ["^root$"], allow_indirect=[("^root$", "a jump table")])
        self.assertFalse(ok)
        self.assertEqual([o[0] for o in res.offences], ["print"])

    def test_jump_table_is_no_offence(self):
        """A compiler's switch (adrp/add of a table in data, adr of the function,
        a load from the table, add, br) branches inside the function only:
        no offence, and the whole function is still read."""
        table = [("adrp x10, 0x0", "R_AARCH64_ADR_PREL_PG_HI21 .rodata"),
                 ("add x10, x10, #0x0", "R_AARCH64_ADD_ABS_LO12_NC .rodata"),
                 "adr x11, @root+0x8", "ldrsw x12, [x10, x9, lsl #2]", "add x11, x11, x12", "br x11"]
        text = disasm(("root", table + ["ret", "ret"]))
        ok, res, out = run_check(text, ["^root$"])
        self.assertTrue(ok, out)
        text = disasm(("root", table + ["ret", call("_printk"), "ret"]))
        ok, res, _ = run_check(text, ["^root$"])
        self.assertEqual([o[0] for o in res.offences], ["print"])

    def test_not_a_jump_table(self):
        """A br whose base is not the function's own address, or with no table
        in data, stays an unknown callee."""
        for body in (
            # the base comes from a register, not adr
            [("adrp x10, 0x0", "R_AARCH64_ADR_PREL_PG_HI21 .rodata"),
             "ldrsw x12, [x10, x9, lsl #2]", "add x11, x8, x12", "br x11"],
            # adr outside the function
            [("adrp x10, 0x0", "R_AARCH64_ADR_PREL_PG_HI21 .rodata"),
             "adr x11, 0x100000", "ldrsw x12, [x10, x9, lsl #2]", "add x11, x11, x12", "br x11"],
            # no table in data
            ["adr x11, @root+0x8", "ldrsw x12, [x10, x9, lsl #2]", "add x11, x11, x12", "br x11"],
        ):
            ok, res, out = run_check(disasm(("root", body + ["ret"])), ["^root$"])
            self.assertFalse(ok, body)
            self.assertEqual([o[0] for o in res.offences], ["indirect"], out)

    def test_address_taken_is_a_call(self):
        text = disasm(("root", PROLOGUE + [("adrp x1, 0x0", "R_AARCH64_ADR_PREL_PG_HI21 cb"),
                                           ("add x1, x1, #0x0", "R_AARCH64_ADD_ABS_LO12_NC cb"),
                                           call("register_it")] + EPILOGUE),
                      ("cb", [call("schedule"), "ret"]))
        ok, res, out = run_check(text, ["^root$"])
        self.assertFalse(ok)
        self.assertIn("#   lock: root -> cb: calls schedule, forbidden (lock)", out)
        self.assertIn("address taken by root", out)


class Leave(unittest.TestCase):
    """Calls out of the module: an offence unless the set allows them."""

    # vcpu_load -> cap -> static_key_count; ctxsync -> glue -> debugfs_lookup, dput
    # (a sleeping call added in the C glue: not a forbidden name, and not read).
    TEXT = disasm(
        ("vcpu_load", PROLOGUE + [call("cap")] + EPILOGUE),
        ("cap", [tail("static_key_count")]),
        ("ctxsync", PROLOGUE + [call("glue")] + EPILOGUE),
        ("glue", PROLOGUE + [call("debugfs_lookup"), call("dput"), call("cap")] + EPILOGUE),
    )
    WHY = "an atomic read of the key"

    def test_a_leave_not_allowed_fails(self):
        ok, res, out = run_check(self.TEXT, ["^ctxsync$"], leave=[("^static_key_count$", self.WHY)])
        self.assertFalse(ok)
        self.assertEqual([(o[0], o[2]) for o in res.offences],
                         [("leave", "calls debugfs_lookup, outside the module: no leave rule allows it"),
                          ("leave", "calls dput, outside the module: no leave rule allows it")])
        self.assertIn("not ok 1 - t: 2 offences", out)
        self.assertIn("#   leave: ctxsync -> glue: calls dput, outside the module: no leave rule allows it "
                      "[.text+0x", out)
        # The allowed one is still listed, with its reason.
        self.assertIn(f"#   leaves the module: ctxsync -> glue -> cap -> static_key_count [.text+0x14]: {self.WHY}",
                      out)

    def test_an_allowed_leave_passes(self):
        ok, res, out = run_check(self.TEXT, ["^vcpu_load$"], leave=[("^static_key_count$", self.WHY)])
        self.assertTrue(ok, out)
        self.assertIn("ok 1 - t: 1 root, 2 functions reachable in the module, 1 outside it", out)
        self.assertIn(f"#   leaves the module: vcpu_load -> cap -> static_key_count [.text+0x14]: {self.WHY}", out)
        self.assertEqual(res.offences, [])

    def test_without_a_leave_rule_any_call_out_fails(self):
        ok, res, out = run_check(self.TEXT, ["^vcpu_load$"])
        self.assertFalse(ok)
        self.assertIn("#   leave: vcpu_load -> cap: tail-calls static_key_count, outside the module", out)

    def test_a_leave_rule_is_per_set(self):
        with tempfile.NamedTemporaryFile("w", suffix=".roots") as c:
            c.write(f"[vcpu_load]\nroot ^vcpu_load$\nleave ^static_key_count$ {self.WHY}\n"
                    "[ctxsync]\nroot ^ctxsync$\nleave ^debugfs_lookup$ a test\n")
            c.flush()
            p = run_tool(self.TEXT, "--config", c.name)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("ok 1 - vcpu_load:", p.stdout)
        self.assertIn("not ok 2 - ctxsync: 2 offences", p.stdout)
        self.assertIn("calls dput, outside the module", p.stdout)
        self.assertIn("tail-calls static_key_count, outside the module", p.stdout)  # allowed in the other set

    def test_forbidden_stays_forbidden(self):
        text = disasm(("root", PROLOGUE + [call("_printk")] + EPILOGUE))
        ok, res, _ = run_check(text, ["^root$"], leave=[(".", "anything")])
        self.assertFalse(ok)
        self.assertEqual([o[0] for o in res.offences], ["print"])

    def test_cli_option(self):
        p = run_tool(self.TEXT, "--root", "^vcpu_load$", "--leave", "^static_key_count$", self.WHY)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class Traps(unittest.TestCase):
    def test_brk_is_reported(self):
        text = disasm(("root", PROLOGUE + ["cbnz x0, @root+0x10", "brk #0x1"] + EPILOGUE))
        ok, res, out = run_check(text, ["^root$"])
        self.assertFalse(ok)
        self.assertIn("#   trap: root: brk #0x1 [.text+0xc]", out)

    def test_udf_is_reported(self):
        ok, res, _ = run_check(disasm(("root", ["udf #0x0"])), ["^root$"])
        self.assertEqual([o[0] for o in res.offences], ["trap"])

    def test_unreachable_brk_is_not(self):
        # After a ret and after a BUG (no __bug_table: a trap that does not return).
        text = disasm(("root", ["ret", "brk #0x800", call("_printk")]))
        ok, _, out = run_check(text, ["^root$"])
        self.assertTrue(ok, out)

    BUG_RELOCS = """
RELOCATION RECORDS FOR [__bug_table]:
OFFSET           TYPE                     VALUE
0000000000000000 R_AARCH64_PREL32         .text+0x4
0000000000000004 R_AARCH64_PREL32         .rodata.str
000000000000000c R_AARCH64_PREL32         .text+0x10
0000000000000010 R_AARCH64_PREL32         .rodata.str
"""
    # Entry 0: line 0x1f4, flags 0 (BUG); entry 1: line 0x82, flags 0x0909 (WARN).
    BUG_CONTENTS = """
Contents of section __bug_table:
 0000 00000000 00000000 f4010000 00000000  ................
 0010 00000000 82000909                    ........
Contents of section .rodata.str:
 0000 612e6300                             a.c.
"""

    def test_bug_table_tells_bug_from_warn(self):
        text = disasm(("root", ["cbz x0, @root+0xc", "brk #0x800", "ret", "nop", "brk #0x800", call("_printk"),
                                "ret"]))
        ok, res, out = run_check(text, ["^root$"], relocs=self.BUG_RELOCS, contents=self.BUG_CONTENTS)
        self.assertFalse(ok)
        self.assertIn("#   trap: root: brk #0x800 (BUG at a.c:500) [.text+0x4]", out)
        self.assertIn("#   trap: root: brk #0x800 (WARN at a.c:130) [.text+0x10]", out)
        # A WARN goes on: the call after it is reached; a BUG does not.
        self.assertIn("#   print: root: calls _printk", out)
        self.assertEqual(len(res.offences), 3)


class Alternatives(unittest.TestCase):
    # cpus_have_final_cap(): `b BUG` patched to a nop by alt_cb_patch_nops for
    # ARM64_ALWAYS_SYSTEM (cap 1); then `nop`, which cap 0x33 patches into
    # `b yes` (the replacement at 0x1c).
    TEXT = disasm(("root", ["b @root+0x18", "nop", "mov w0, wzr", "ret", "mov w0, #1", "ret",
                            "brk #0x800", "b @root+0x10"]))
    RELOCS = """
RELOCATION RECORDS FOR [.altinstructions]:
OFFSET           TYPE                     VALUE
0000000000000000 R_AARCH64_PREL32         .text
0000000000000004 R_AARCH64_PREL32         alt_cb_patch_nops
000000000000000c R_AARCH64_PREL32         .text+0x4
0000000000000010 R_AARCH64_PREL32         .text+0x1c
"""
    CONTENTS = """
Contents of section .altinstructions:
 0000 00000000 00000000 01800400 00000000  ................
 0010 00000000 33000404                    ....3...
"""

    def test_always_patched_site(self):
        ok, _, out = run_check(self.TEXT, ["^root$"], relocs=self.RELOCS, contents=self.CONTENTS)
        self.assertTrue(ok, out)

    def test_replacement_is_followed(self):
        text = self.TEXT.replace("mov\tw0, #1", "bl\t0x0 <root>\n\t\t0000000000000010:  R_AARCH64_CALL26\t_printk")
        ok, res, out = run_check(text, ["^root$"], relocs=self.RELOCS, contents=self.CONTENTS)
        self.assertFalse(ok)
        self.assertEqual([o[2] for o in res.offences], ["calls _printk, forbidden (print)"])

    def test_unpatched_the_bug_is_reachable(self):
        ok, res, out = run_check(self.TEXT, ["^root$"], relocs=self.RELOCS, contents=self.CONTENTS,
                                 always_caps=set())
        self.assertFalse(ok)
        self.assertEqual([o[0] for o in res.offences], ["trap"])


class Names(unittest.TestCase):
    def test_forbidden_list(self):
        for name, cat in [("core::panicking::panic_const::panic_const_add_overflow", "panic"),
                          ("core::option::unwrap_failed", "panic"),
                          ("core::result::unwrap_failed", "panic"),
                          ("core::panicking::panic_bounds_check", "panic"),
                          ("core::slice::index::slice_end_index_len_fail", "panic"),
                          ("rust_begin_unwind", "panic"),
                          ("_printk", "print"), ("__warn_printk", "print"), ("dump_stack", "print"),
                          ("kernel::print::call_printk", "print"),
                          ("__kmalloc_noprof", "alloc"), ("kfree", "alloc"), ("vmalloc_noprof", "alloc"),
                          ("kernel::alloc::kvec::KVec::push", "alloc"),
                          ("_raw_spin_lock_irqsave", "lock"), ("mutex_lock", "lock"),
                          ("rcu_read_unlock_strict", "lock"), ("schedule", "lock"), ("__might_sleep", "lock"),
                          ("__sanitizer_cov_trace_pc", "instrumentation"), ("__asan_load8", "instrumentation"),
                          ("__sanitizer_cov_trace_cmp8", "instrumentation"),
                          ("__sanitizer_ptr_cmp", "instrumentation"),
                          ("__hwasan_tag_mismatch", "instrumentation"), ("__kasan_check_read", "instrumentation"),
                          ("kasan_check_range", "instrumentation"), ("__ubsan_handle_shift_out_of_bounds",
                                                                     "instrumentation"),
                          ("__tsan_read8", "instrumentation"), ("__kcsan_check_access", "instrumentation"),
                          ("__msan_metadata_ptr_for_load_8", "instrumentation"),
                          ("__stack_chk_fail", "instrumentation"), ("__stack_chk_guard", "instrumentation"),
                          ("_mcount", "instrumentation"), ("__fentry__", "instrumentation"),
                          ("__cyg_profile_func_enter", "instrumentation"),
                          ("__cyg_profile_func_exit", "instrumentation"),
                          ("__llvm_gcov_ctr.12", "instrumentation"), ("__llvm_gcov_ctr_section", "instrumentation"),
                          ("__gcov_merge_add", "instrumentation"), ("llvm_gcda_emit_arcs", "instrumentation"),
                          ("__profc_vhe_rs_guest_enter", "instrumentation"),
                          ("__llvm_profile_instrument_target", "instrumentation"),
                          ("trace_kvm_exit", "instrumentation"), ("__cfi_check", "instrumentation")]:
            self.assertEqual(nc.forbidden([name]), cat, name)
        for name in ["vhe_rs_cap", "static_key_count", "memcpy", "fpsimd_bind_state_to_cpu", ".bss", ".rodata",
                     "vhe_rs_stats", "__stack_chk_guard_offset_not", "kvm_host_data",
                     "vhe::kvm::entry::vcpu_callback::<vhe::kvm::entry::CtxsyncFp>"]:
            self.assertIsNone(nc.forbidden([name]), name)

    def test_rust_v0_names_are_demangled(self):
        if not nc.shutil.which(nc.CXXFILT):
            self.skipTest(f"{nc.CXXFILT} not installed")
        root = "_RINvNtNtCsdO40NySvFJx_3vhe3kvm5entry13vcpu_callbackNtB2_10CtxflushFpEB6_"
        panic = "_RNvNtNtCs1peUGmbrgHn_4core9panicking11panic_const24panic_const_add_overflow"
        text = disasm((root, PROLOGUE + ["cbz x0, @" + root + "+0x10", call(panic)] + EPILOGUE))
        ok, res, out = run_check(text, [r"vcpu_callback::<vhe::kvm::entry::CtxflushFp>$"])
        self.assertFalse(ok)
        self.assertIn("#   panic: vhe::kvm::entry::vcpu_callback::<vhe::kvm::entry::CtxflushFp>: calls "
                      "core::panicking::panic_const::panic_const_add_overflow, forbidden (panic)", out)


def ref(insn, reloc, sym):
    return (insn, f"{reloc} {sym}")


class Instrumentation(unittest.TestCase):
    """Hooks called, instrumentation data referenced, ftrace records."""

    HOOKS = ["__sanitizer_cov_trace_pc", "__asan_store8", "__hwasan_load4_noabort", "__kasan_check_write",
             "__ubsan_handle_shift_out_of_bounds", "__kcsan_check_access", "__tsan_func_entry", "__stack_chk_fail",
             "_mcount", "__fentry__", "__cyg_profile_func_enter"]

    def test_each_hook_call_fails(self):
        for hook in self.HOOKS:
            text = disasm(("root", PROLOGUE + [call("helper")] + EPILOGUE),
                          ("helper", ["cbz x0, @helper+0x8", call(hook), "ret"]))
            ok, res, out = run_check(text, ["^root$"], leave=[(".", "anything outside")])
            self.assertFalse(ok, hook)
            self.assertEqual([o[0] for o in res.offences], ["instrumentation"], hook)
            self.assertIn(f"calls {hook}, forbidden (instrumentation)", out)
            self.assertIn("#   instrumentation: root -> helper: calls", out)

    def test_stack_guard_reference(self):
        # -fstack-protector with a global guard: __stack_chk_guard is loaded,
        # never branched to.
        text = disasm(("root", PROLOGUE + [ref("adrp x8, 0x0", "R_AARCH64_ADR_PREL_PG_HI21", "__stack_chk_guard"),
                                           ref("ldr x8, [x8]", "R_AARCH64_LDST64_ABS_LO12_NC", "__stack_chk_guard"),
                                           "str x8, [sp, #0x8]"] + EPILOGUE))
        ok, res, out = run_check(text, ["^root$"])
        self.assertFalse(ok)
        self.assertEqual([(o[0], o[2], o[4]) for o in res.offences],
                         [("instrumentation", "references __stack_chk_guard, forbidden (instrumentation)", 1)])
        self.assertIn("#   instrumentation: root: references __stack_chk_guard, forbidden (instrumentation) "
                      "[.text+0x8 and 1 more]", out)

    def test_coverage_counter_reference(self):
        # Clang's gcov/PGO counters: local data of the module, incremented in place.
        text = disasm(("root", [ref("adrp x9, 0x0", "R_AARCH64_ADR_PREL_PG_HI21", "__llvm_gcov_ctr.3"),
                                "ldr x10, [x9]", "add x10, x10, #1", "str x10, [x9]", "ret"]))
        ok, res, _ = run_check(text, ["^root$"])
        self.assertFalse(ok)
        self.assertEqual([o[2] for o in res.offences], ["references __llvm_gcov_ctr.3, forbidden (instrumentation)"])

    def test_counter_through_a_section_symbol(self):
        # As the linked .ko has them: `.bss+0x208`, named by the symbol table.
        text = disasm(("root", [ref("adrp x8, 0x0", "R_AARCH64_ADR_PREL_PG_HI21", ".bss+0x208"),
                                ref("ldr x9, [x8]", "R_AARCH64_LDST64_ABS_LO12_NC", ".bss+0x208"),
                                ref("adrp x10, 0x0", "R_AARCH64_ADR_PREL_PG_HI21", ".bss+0x4c0"), "ret"]))
        symtab = """
0000000000000000 l    d  .bss	0000000000000000 .bss
0000000000000200 l     O .bss	0000000000000010 __llvm_gcov_ctr.2
00000000000004c0 l     O .bss	0000000000000020 run_hooks
"""
        ok, res, _ = run_check(text, ["^root$"], symtab=symtab)
        self.assertFalse(ok)
        self.assertEqual([(o[2], o[4]) for o in res.offences],
                         [("references __llvm_gcov_ctr.2, forbidden (instrumentation)", 1)])

    def test_forbidden_function_address(self):
        text = disasm(("root", PROLOGUE + [ref("adrp x1, 0x0", "R_AARCH64_ADR_PREL_PG_HI21", "_printk"),
                                           ref("add x1, x1, #0x0", "R_AARCH64_ADD_ABS_LO12_NC", "_printk")]
                       + EPILOGUE))
        ok, res, _ = run_check(text, ["^root$"])
        self.assertFalse(ok)
        self.assertEqual([o[0] for o in res.offences], ["print"])

    def test_harmless_references_pass(self):
        text = disasm(("root", [ref("adrp x8, 0x0", "R_AARCH64_ADR_PREL_PG_HI21", "vhe_rs_stats"),
                                ref("ldr x8, [x8]", "R_AARCH64_LDST64_ABS_LO12_NC", ".bss+0x10"),
                                ref("adrp x9, 0x0", "R_AARCH64_ADR_PREL_PG_HI21", "run_hooks"), "ret"]))
        ok, res, out = run_check(text, ["^root$"])
        self.assertTrue(ok, out)

    # root (reachable) and other (not), each with -fpatchable-function-entry's
    # nops; the records point at them.
    # The two nops at root+0x10 are leaf's, =4,2's before its entry.
    FTRACE_TEXT = disasm(("root", ["nop", "nop", call("leaf"), "ret", "nop", "nop"]),
                         ("leaf", ["nop", "nop", "ret"]),
                         ("other", ["nop", "nop", "ret"]))
    # The symbol table: root's size leaves the two nops out.
    SYMTAB = """
0000000000000000 g     F .text	0000000000000010 root
0000000000000018 g     F .text	000000000000000c leaf
0000000000000024 g     F .text	000000000000000c other
"""

    @staticmethod
    def relocs(table, *targets):
        rows = "".join(f"{8 * n:016x} R_AARCH64_ABS64          {t}\n" for n, t in enumerate(targets))
        return f"\nRELOCATION RECORDS FOR [{table}]:\nOFFSET           TYPE                     VALUE\n{rows}"

    def test_patchable_entry_of_a_reachable_function(self):
        ok, res, out = run_check(self.FTRACE_TEXT, ["^root$"],
                                 relocs=self.relocs("__patchable_function_entries", ".text", ".text+0x24"))
        self.assertFalse(ok)
        self.assertEqual([(o[0], nc.path(res, o[1]), o[2]) for o in res.offences],
                         [("instrumentation", "root",
                           "has an ftrace record (__patchable_function_entries entry for .text+0x0)")])
        self.assertIn("#   instrumentation: root: has an ftrace record", out)

    def test_patchable_entry_before_the_entry(self):
        # -fpatchable-function-entry=4,2: the record points 2 instructions
        # before leaf's symbol (in the range of no function, or of the one before).
        for symtab in ("", self.SYMTAB):
            for sym in (".text+0x10", "leaf-0x8"):
                ok, res, _ = run_check(self.FTRACE_TEXT, ["^root$"], symtab=symtab,
                                       relocs=self.relocs("__patchable_function_entries", sym))
                self.assertFalse(ok, sym)
                self.assertEqual([nc.path(res, o[1]) for o in res.offences], ["root -> leaf"], sym)

    def test_record_of_an_unreachable_function_passes(self):
        ok, _, out = run_check(self.FTRACE_TEXT, ["^root$"],
                               relocs=self.relocs("__patchable_function_entries", "other"))
        self.assertTrue(ok, out)

    def test_mcount_loc(self):
        # recordmcount: the address of the `bl _mcount` (here the call is not
        # reached through a relocation, only the record tells).
        ok, res, _ = run_check(self.FTRACE_TEXT, ["^root$"], relocs=self.relocs("__mcount_loc", ".text+0x1c"))
        self.assertFalse(ok)
        self.assertEqual([(nc.path(res, o[1]), o[2]) for o in res.offences],
                         [("root -> leaf", "has an ftrace record (__mcount_loc entry for .text+0x1c)")])


class NoKprobe(unittest.TestCase):
    """nokprobe: every function of the module a set reaches is NOKPROBE_SYMBOL'd."""

    TEXT = disasm(("vhe_rs_vcpu_run", PROLOGUE + [call("vhe_rs_guest_enter"), call("helper")] + EPILOGUE),
                  ("vhe_rs_guest_enter", ["ret"]),
                  ("helper", ["ret"]),
                  ("unreached", ["ret"]))
    GLUE = """\
int vhe_rs_vcpu_run(struct kvm_vcpu *vcpu);
NOKPROBE_SYMBOL(vhe_rs_vcpu_run);
u64 vhe_rs_guest_enter(struct kvm_vcpu *vcpu) { return 0; }
NOKPROBE_SYMBOL( vhe_rs_guest_enter );
"""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        os.makedirs(os.path.join(self.dir.name, "glue"))

    def write(self, text, name="glue/backend.c"):
        with open(os.path.join(self.dir.name, name), "w") as f:
            f.write(text)

    def check(self, text=None, globs=("glue/*.c",), **kw):
        text = text or self.TEXT
        mod = nc.Module(text, **kw)
        rs = nc.RootSet("t", ["^vhe_rs_vcpu_run$"], nokprobe=list(globs))
        res = nc.check(mod, rs, self.dir.name)
        out = io.StringIO()
        ok = nc.report(mod, rs, res, 1, False, out)
        return ok, res, out.getvalue()

    def test_all_named_passes(self):
        self.write(self.GLUE + "void helper(void) {}\nNOKPROBE_SYMBOL(helper);\n")
        ok, res, out = self.check()
        self.assertTrue(ok, out)
        self.assertIn("#   nokprobe: 3 functions of the module reached, each to be named in a NOKPROBE_SYMBOL() of "
                      "glue/*.c; the object has no _kprobe_blacklist section (CONFIG_KPROBES off: "
                      "NOKPROBE_SYMBOL() is empty), so checked on the source only", out)

    def test_a_reachable_function_without_nokprobe_fails(self):
        # One in a comment does not count; the unreached one need not be.
        self.write(self.GLUE + "/* NOKPROBE_SYMBOL(helper); */\n// NOKPROBE_SYMBOL(helper);\n")
        ok, res, out = self.check()
        self.assertFalse(ok)
        self.assertEqual([(o[0], nc.path(res, o[1]), o[2]) for o in res.offences],
                         [("kprobe", "vhe_rs_vcpu_run -> helper",
                           "not kprobe-blacklisted: no NOKPROBE_SYMBOL(helper) in glue/*.c")])
        self.assertIn("not ok 1 - t: 1 offence", out)

    def test_sources_across_files(self):
        self.write(self.GLUE)
        self.write("NOKPROBE_SYMBOL(helper);\n", "glue/other.c")
        ok, _, out = self.check()
        self.assertTrue(ok, out)
        ok, _, _ = self.check(globs=("glue/backend.c",))
        self.assertFalse(ok)

    def test_no_source_fails(self):
        ok, res, out = self.check(globs=("nowhere/*.c",))
        self.assertFalse(ok)
        self.assertIn("nokprobe: no source file matches nowhere/*.c", out)

    def test_a_rust_function_gets_a_hint(self):
        rust = "_RNvNtNtCsdO40NySvFJx_3vhe3kvm3run9not_inlined"
        text = disasm(("vhe_rs_vcpu_run", PROLOGUE + [call(rust)] + EPILOGUE), (rust, ["ret"]))
        self.write(self.GLUE)
        ok, res, out = self.check(text)
        self.assertFalse(ok)
        self.assertIn("make it #[inline(always)] into the root", res.offences[0][2])

    BLACKLIST = """
RELOCATION RECORDS FOR [_kprobe_blacklist]:
OFFSET           TYPE                     VALUE
0000000000000000 R_AARCH64_ABS64          vhe_rs_vcpu_run
0000000000000008 R_AARCH64_ABS64          .text+0x18
"""

    def test_the_blacklist_section_must_cover_them(self):
        # All three named in the source; the object's table has the first two.
        self.write(self.GLUE + "NOKPROBE_SYMBOL(helper);\n")
        ok, res, out = self.check(relocs=self.BLACKLIST)
        self.assertFalse(ok)
        self.assertEqual([(nc.path(res, o[1]), o[2]) for o in res.offences],
                         [("vhe_rs_vcpu_run -> helper",
                           "not kprobe-blacklisted: no _kprobe_blacklist entry for it in the object")])
        self.assertIn("covered by the object's _kprobe_blacklist (2 entries)", out)
        ok, _, out = self.check(relocs=self.BLACKLIST + "0000000000000010 R_AARCH64_ABS64          helper\n")
        self.assertTrue(ok, out)

    def test_an_empty_blacklist_section_is_a_blacklist(self):
        # The section is there (CONFIG_KPROBES) but names none of them.
        self.write(self.GLUE + "NOKPROBE_SYMBOL(helper);\n")
        ok, res, _ = self.check(sections=["_kprobe_blacklist"])
        self.assertFalse(ok)
        self.assertEqual(len(res.offences), 3)

    def test_config_and_cli(self):
        self.write(self.GLUE)
        with tempfile.NamedTemporaryFile("w", suffix=".roots") as c:
            c.write("[run]\nroot ^vhe_rs_vcpu_run$\nnokprobe glue/*.c other/*.c\n")
            c.flush()
            p = run_tool(self.TEXT, "--config", c.name, "--src", self.dir.name)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("#   kprobe: vhe_rs_vcpu_run -> helper: not kprobe-blacklisted: no NOKPROBE_SYMBOL(helper) "
                          "in glue/*.c other/*.c", p.stdout)
            self.write("NOKPROBE_SYMBOL(helper);\n", "glue/more.c")
            p = run_tool(self.TEXT, "--config", c.name, "--src", self.dir.name)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class Config(unittest.TestCase):
    def test_parse(self):
        sets = nc.parse_config("# c\n[one]\nroot ^a$\nallow ^b$ because\n\n[two/x]\nroot c\nroot d\n"
                               "allow-indirect ^e$ the kernel's\nleave ^f$ an atomic read\n")
        self.assertEqual([(s.name, s.roots, s.allow, s.allow_indirect, s.leave) for s in sets],
                         [("one", ["^a$"], [("^b$", "because")], [], []),
                          ("two/x", ["c", "d"], [], [("^e$", "the kernel's")], [("^f$", "an atomic read")])])

    def test_a_reason_is_required(self):
        with self.assertRaisesRegex(nc.ToolError, "a reason is required"):
            nc.parse_config("[one]\nroot a\nallow ^b$\n")
        with self.assertRaisesRegex(nc.ToolError, "a reason is required"):
            nc.parse_config("[one]\nroot a\nleave ^b$\n")

    def test_an_unknown_rule(self):
        with self.assertRaisesRegex(nc.ToolError, "or nokprobe GLOB"):
            nc.parse_config("[one]\nroot a\nexit ^b$ why\n")

    def test_nokprobe_rule(self):
        sets = nc.parse_config("[one]\nroot a\nnokprobe glue/*.c x.c\nnokprobe y.c\n")
        self.assertEqual(sets[0].nokprobe, ["glue/*.c", "x.c", "y.c"])

    def test_a_set_needs_a_root(self):
        with self.assertRaisesRegex(nc.ToolError, "has no root"):
            nc.parse_config("[one]\nallow ^b$ why\n")

    def test_the_project_config_parses(self):
        with open(os.path.join(TOOLS, "noinstr.roots")) as f:
            sets = nc.parse_config(f.read())
        self.assertIn("ctxsync_fp", [s.name for s in sets])
        # Only vcpu_load/put leaves the module (static_key_count, through
        # vhe_rs_cap); the FP sets reach the kernel's fpsimd_* only through
        # their allowed indirect calls.
        leaves = {s.name: [rx for rx, _ in s.leave] for s in sets}
        self.assertEqual(leaves["vcpu_load/put"], ["^static_key_count$"])
        for name in ("ctxflush_fp", "ctxsync_fp", "load_fp/put_fp"):
            self.assertEqual(leaves[name], [], name)
        # The run path, and only it, must be kprobe-blacklisted, as the C's is.
        self.assertEqual({s.name: s.nokprobe for s in sets if s.nokprobe}, {"vcpu_run": ["arch/arm64/glue/*.c"]})


class Cli(unittest.TestCase):
    """The script itself, on saved texts: TAP lines, summary, exit status."""

    def run_tool(self, text, *args):
        return run_tool(text, *args)

    def test_clean_graph_passes(self):
        text = disasm(("root", PROLOGUE + [call("leaf"), tail("memcpy")]), ("leaf", ["ret"]))
        p = self.run_tool(text, "--root", "^root$", "--leave", "^memcpy$", "a copy", "--list")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("ok 1 - roots: 1 root, 2 functions reachable in the module, 1 outside it", p.stdout)
        self.assertIn("#   leaves the module: root -> memcpy [.text+0xc]: a copy", p.stdout)
        self.assertTrue(p.stdout.endswith("noinstr-check: 1 passed, 0 failed\n"), p.stdout)

    def test_offence_fails(self):
        p = self.run_tool(Deep.TEXT, "--root", "^root$", "--root", "^helper$")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not ok 1 - roots:", p.stdout)

    def test_config_sets_are_tests(self):
        with tempfile.NamedTemporaryFile("w", suffix=".roots") as c:
            c.write("[clean]\nroot ^b$\nallow ^c$ c prints, on purpose\n[dirty]\nroot ^root$\n")
            c.flush()
            p = self.run_tool(Deep.TEXT, "--config", c.name)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ok 1 - clean:", p.stdout)
        self.assertIn("not ok 2 - dirty:", p.stdout)
        self.assertIn("noinstr-check: 1 passed, 1 failed", p.stdout)

    def test_usage_errors(self):
        p = self.run_tool(Deep.TEXT)
        self.assertEqual(p.returncode, 2)
        p = self.run_tool("nothing here\n", "--root", "x")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no code", p.stderr)


if __name__ == "__main__":
    unittest.main()
