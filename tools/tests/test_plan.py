# SPDX-License-Identifier: GPL-2.0
"""Tests of the plan format's one home, tools/vmrun/plan.py, and of the tools that
write or read plans through it: tools/mkplan.py, tools/bench, tools/retry-filter.py.

  python3 -m unittest discover -s tools/tests -v
"""
import argparse
import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
sys.path.insert(0, TOOLS)
import mkplan  # noqa: E402
from vmrun.plan import MODULE, PlanError, PlanWriter, parse_plan, read_plan  # noqa: E402


def load_bench():
    """tools/bench as a module (a script without .py)."""
    loader = importlib.machinery.SourceFileLoader("bench", os.path.join(TOOLS, "bench"))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader("bench", loader))
    loader.exec_module(mod)
    return mod


class WriterTest(unittest.TestCase):
    def test_round_trip(self):
        w = (PlanWriter("a comment").pass_("p").vhe_mode()
             .require_log("quoted", "'VHE mode'")            # parse_plan would strip these quotes
             .require_log("spaces", " leading and trailing ")
             .require_log("plain", r"vhe_rs: loaded \(x\)")
             .sh("sh", 5, "echo 'a  b' | cat; exit 0   ")     # trailing blanks are not kept
             .test("dir/name", 7, "/opt/x -n 2 # not a comment")
             .skip("skipped", "why   not"))
        steps = parse_plan(w.text())
        self.assertEqual([(s.kind, s.full, s.timeout, s.arg) for s in steps], [
            ("REQUIRE-LOG", "p/vhe-mode", None, "VHE mode initialized successfully"),
            ("REQUIRE-LOG", "p/quoted", None, "'VHE mode'"),
            ("REQUIRE-LOG", "p/spaces", None, " leading and trailing "),
            ("REQUIRE-LOG", "p/plain", None, r"vhe_rs: loaded \(x\)"),
            ("SH", "p/sh", 5, "echo 'a  b' | cat; exit 0"),
            ("TEST", "p/dir/name", 7, "/opt/x -n 2 # not a comment"),
            ("SKIP", "p/skipped", None, "why   not")])
        self.assertTrue(w.text().startswith("# a comment\nPASS p\n"))

    def test_refuses_what_would_not_read_back(self):
        bad = [lambda w: w.sh("x", 5, "true"),                       # no PASS
               lambda w: w.pass_("a/b"),
               lambda w: w.pass_("p").sh("x y", 5, "true"),
               lambda w: w.pass_("p").sh("x", 0, "true"),
               lambda w: w.pass_("p").sh("x", "5", "true"),
               lambda w: w.pass_("p").test("x", 5, "echo a\necho b"),
               lambda w: w.pass_("p").skip("x", ""),
               lambda w: w.pass_("p").require_log("x", "(unclosed"),
               lambda w: w.pass_("p").sh("x", 5, "true").sh("x", 5, "true")]
        for i, add in enumerate(bad):
            with self.subTest(i=i), self.assertRaises(PlanError):
                add(PlanWriter()).text()

    def test_shared_steps(self):
        steps = parse_plan(PlanWriter().pass_("p").load_module().unload_module().text())
        self.assertEqual([s.name for s in steps], ["insmod", "module-loaded", "stats", "rmmod", "module-unloaded"])
        self.assertEqual(steps[0].arg, f"insmod {MODULE}")

    def test_stats_step_fails_on_a_bug_counter(self):
        """The stats step, run with sh on fake debugfs files: any bug_ line above 0 fails it."""
        steps = parse_plan(PlanWriter().pass_("p").unload_module().text())
        cmd = next(s.arg for s in steps if s.name == "stats")
        cases = {"vcpu_load 5\nbug_x 0\nbug_run_y 0\n": 0, "vcpu_load 5\nbug_x 3\n": 1,
                 "bug_run_vcpu_not_loaded 10\n": 1, "bug_x 0\nvcpu_put 7\n": 0}
        for stats, want in cases.items():
            with self.subTest(stats=stats), tempfile.TemporaryDirectory() as d:
                for name, text in (("stats", stats), ("exits", "0x16 1 0\n")):
                    with open(os.path.join(d, name), "w") as f:
                        f.write(text)
                r = subprocess.run(["sh", "-c", cmd.replace("/sys/kernel/debug/vhe_rs/", d + "/")],
                                   capture_output=True, text=True)
                self.assertEqual(r.returncode != 0, bool(want), r.stdout + r.stderr)


class MkplanTest(unittest.TestCase):
    """What tools/mkplan.py writes parses back as make check's plan."""

    def test_mkplan(self):
        with tempfile.TemporaryDirectory() as d:
            progs, lst, own, out = (os.path.join(d, x) for x in ("PROGS", "list", "own", "check.plan"))
            with open(progs, "w") as f:
                f.write("aarch64/arch_timer\naarch64/slow\nrseq_test\n")
            with open(lst, "w") as f:
                f.write("# comment\naarch64/arch_timer 600 -n 2   # args\naarch64/slow skip too slow under TCG\n"
                        "rseq_test module-only 300 | takes long on C\n")
            os.mkdir(own)
            for name in ("vhe_rs_smoke", "vhe_rs_other", "helper.o"):
                with open(os.path.join(own, name), "w") as f:
                    f.write("")
                os.chmod(os.path.join(own, name), 0o755)
            with contextlib.redirect_stdout(io.StringIO()) as said:
                mkplan.main(["--progs", progs, "--list", lst, "--own", own, "--out", out])
            self.assertIn("3 upstream programs: 2 run, 1 skipped with a reason; 2 vhe-rs programs", said.getvalue())
            _, steps = read_plan(out)
        got = [(s.kind, s.full, s.timeout, s.arg) for s in steps]
        self.assertEqual(got[:7], [
            ("REQUIRE-LOG", "baseline/vhe-mode", None, "VHE mode initialized successfully"),
            ("TEST", "baseline/aarch64/arch_timer", 600, "/opt/kvm/aarch64/arch_timer -n 2"),
            ("SKIP", "baseline/aarch64/slow", None, "too slow under TCG"),
            ("SKIP", "baseline/rseq_test", None, "runs in the module pass only: takes long on C"),
            ("TEST", "baseline/vhe-rs/vhe_rs_other", 120, "/opt/vhe-rs/vhe_rs_other"),
            ("TEST", "baseline/vhe-rs/vhe_rs_smoke", 120, "/opt/vhe-rs/vhe_rs_smoke"),
            ("SH", "module/insmod", 60, "insmod /opt/vhe_rs.ko")])
        self.assertIn(("TEST", "module/rseq_test", 300, "/opt/kvm/rseq_test"), got)
        self.assertEqual([s.name for s in steps[-6:]], ["disable", "vhe-rs/vhe_rs_smoke-disabled", "enable",
                                                        "stats", "rmmod", "module-unloaded"])

    def test_mkplan_beside_perf_user(self):
        """With perf_user and the state tests built: perf_user is no test of its own,
        and each pass of the first boot ends its tests with beside-perf-user."""
        with tempfile.TemporaryDirectory() as d:
            progs, lst, own, out = (os.path.join(d, x) for x in ("PROGS", "list", "own", "check.plan"))
            with open(progs, "w") as f:
                f.write("rseq_test\n")
            with open(lst, "w") as f:
                f.write("rseq_test 300\n")
            os.mkdir(own)
            for name in ("perf_user", "fp_state_test", "sve_state_test", "sysreg_state_test"):
                with open(os.path.join(own, name), "w") as f:
                    f.write("")
                os.chmod(os.path.join(own, name), 0o755)
            with contextlib.redirect_stdout(io.StringIO()):
                mkplan.main(["--progs", progs, "--list", lst, "--own", own, "--out", out])
            _, steps = read_plan(out)
        tests = [s.full for s in steps if s.kind == "TEST"]
        self.assertNotIn("baseline/vhe-rs/perf_user", tests)
        for p in ("baseline", "module"):
            self.assertEqual(tests[tests.index(f"{p}/vhe-rs/sysreg_state_test") + 1], f"{p}/vhe-rs/beside-perf-user")
        step = next(s for s in steps if s.full == "module/vhe-rs/beside-perf-user")
        for t in mkplan.BESIDE_PERF_USER:
            self.assertIn(t, step.arg)
        self.assertIn("/opt/vhe-rs/perf_user", step.arg)


    def test_mkplan_gic_trap(self):
        with tempfile.TemporaryDirectory() as d:
            progs, lst, own, out = (os.path.join(d, x) for x in ("PROGS", "list", "own", "gic.plan"))
            with open(progs, "w") as f:
                f.write("\n".join(mkplan.GIC_TRAP_UPSTREAM + ["rseq_test"]) + "\n")
            with open(lst, "w") as f:
                f.write("aarch64/vgic_irq 180\naarch64/vgic_lpi_stress skip broken\n"
                        "aarch64/no-vgic-v3 60\narch_timer 120 -n 2\nrseq_test 300\n")
            os.mkdir(own)
            with open(os.path.join(own, "el2_exits_test"), "w") as f:
                f.write("")
            os.chmod(os.path.join(own, "el2_exits_test"), 0o755)
            with contextlib.redirect_stdout(io.StringIO()):
                mkplan.main(["--progs", progs, "--list", lst, "--own", own, "--out", out, "--gic-trap"])
            _, steps = read_plan(out)
        got = [(s.kind, s.full, s.arg) for s in steps]
        self.assertEqual(got[:10], [
            ("REQUIRE-LOG", "gictrap-baseline/vhe-mode", "VHE mode initialized successfully"),
            ("REQUIRE-LOG", "gictrap-baseline/gic-trapping", r"GICv3 sysreg trapping enabled \(\[G0G1C\]"),
            ("TEST", "gictrap-baseline/aarch64/vgic_irq", "/opt/kvm/aarch64/vgic_irq"),
            ("SKIP", "gictrap-baseline/aarch64/vgic_lpi_stress", "broken"),
            ("TEST", "gictrap-baseline/aarch64/no-vgic-v3", "/opt/kvm/aarch64/no-vgic-v3"),
            ("TEST", "gictrap-baseline/arch_timer", "/opt/kvm/arch_timer -n 2"),
            ("TEST", "gictrap-baseline/vhe-rs/el2_exits_test", "/opt/vhe-rs/el2_exits_test"),
            ("SKIP", "gictrap-baseline/vhe-rs/aarch32_guest_test", f"not built (no aarch32_guest_test in {own})"),
            ("SKIP", "gictrap-baseline/vhe-rs/vhe_rs_smoke", f"not built (no vhe_rs_smoke in {own})"),
            ("SH", "gictrap-module/insmod", "insmod /opt/vhe_rs.ko")])
        self.assertNotIn("rseq_test", {s.name for s in steps})
        self.assertEqual([s.name for s in steps[-4:]], ["sys64-at-el2", "stats", "rmmod", "module-unloaded"])
        # The GIC regex matches what KVM prints when it takes the parameters.
        self.assertRegex("kvm [1]: GICv3 sysreg trapping enabled ([G0G1C], reduced performance)",
                         steps[1].arg)
        with contextlib.redirect_stdout(io.StringIO()) as said:
            mkplan.main(["--print-gic-trap-cmdline"])
        self.assertEqual(said.getvalue().split(), ["kvm-arm.vgic_v3_group0_trap=1",
                                                   "kvm-arm.vgic_v3_group1_trap=1",
                                                   "kvm-arm.vgic_v3_common_trap=1"])


class BenchPlanTest(unittest.TestCase):
    def test_bench_plans_parse(self):
        bench = load_bench()
        a = argparse.Namespace(quick=False, list="hvc,wfi", batches=5, scale=0.5, parts=None)
        with tempfile.TemporaryDirectory() as d:
            for tree in ("patched", "stock"):
                bench.write_plan(os.path.join(d, tree), a, tree, 2, 900)
            _, patched = read_plan(os.path.join(d, "patched"))
            _, stock = read_plan(os.path.join(d, "stock"))
        self.assertEqual([s.name for s in patched], ["vhe-mode", "nomodule", "insmod", "module-loaded", "module",
                                                     "stats", "rmmod", "module-unloaded"])
        self.assertEqual(patched[1].arg, "/opt/vhe_rs_bench -r 2 -b 5 -s 0.5 -l hvc,wfi")
        self.assertEqual([s.name for s in stock], ["vhe-mode", "nomodule", "unpatched-insmod-refused",
                                                   "unpatched-insmod-message"])
        self.assertEqual(patched[2].arg, "insmod /opt/vhe_rs.ko")

    def test_bench_parts(self):
        """--parts P loads the module with parts=P (to compare a part with C alone)."""
        bench = load_bench()
        a = argparse.Namespace(quick=True, list=None, batches=5, scale=0.5, parts="fp,run")
        with tempfile.TemporaryDirectory() as d:
            bench.write_plan(os.path.join(d, "patched"), a, "patched", 2, 900)
            _, patched = read_plan(os.path.join(d, "patched"))
        self.assertEqual([s.arg for s in patched if s.name == "insmod"], ["insmod /opt/vhe_rs.ko parts=fp,run"])


class RetryFilterTest(unittest.TestCase):
    PLAN = "PASS p\nSH setup 5 true\nTEST a 5 true\nTEST b.c 5 true\nPASS q\nTEST a 5 true\n"

    def retry(self, results, plan=PLAN):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "plan"), "w") as f:
                f.write(plan)
            with open(os.path.join(d, "results.json"), "w") as f:
                json.dump([{"pass": p, "name": n, "status": st, "reason": r} for p, n, st, r in results], f)
            r = subprocess.run([sys.executable, os.path.join(TOOLS, "retry-filter.py"), os.path.join(d, "plan"),
                                os.path.join(d, "results.json")], capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout.strip()

    def test_retry(self):
        self.assertEqual(self.retry([("p", "setup", "pass", ""), ("p", "b.c", "fail", "exit 1"),
                                     ("q", "a", "fail", "not run (VM died: x)")]), (0, r"^(p/b\.c|q/a)$"))
        self.assertEqual(self.retry([("p", "a", "pass", "")]), (1, ""))
        self.assertEqual(self.retry([("p", "setup", "fail", "exit 1"), ("p", "a", "fail", "exit 1")]), (1, ""))
        self.assertEqual(self.retry([("vm", "boot", "fail", "kernel: x"), ("p", "a", "fail", "exit 1")]), (1, ""))
        self.assertEqual(self.retry([], plan="TEST a 5 true\n"), (2, ""))


if __name__ == "__main__":
    unittest.main()
