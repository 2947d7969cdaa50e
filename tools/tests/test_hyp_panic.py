# SPDX-License-Identifier: GPL-2.0
"""Tests of the expected-panic support (the plan's EXPECT-PANIC, its verdicts in
tools/vmrun) and of tools/hyp-panic-test's checks, on the recorded console log
of its boot (tools/tests/logs/hyp-panic.*) and edited copies of it.

  python3 -m unittest discover -s tools/tests -v
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)
import scripts  # noqa: E402
from recorded_logs import read  # noqa: E402
from vmrun.initramfs import steps_script  # noqa: E402
from vmrun.plan import PlanError, PlanWriter, filter_steps, parse_plan  # noqa: E402
from vmrun.verdicts import exit_status, parse_log, summary_line  # noqa: E402

hpt = scripts.load("hyp-panic-test", "hyp_panic_test")

PLAN = read("hyp-panic.plan")
LOG = read("hyp-panic.console.log")
HYP_PANIC_AT = "[    0.976162] Kernel panic - not syncing: HYP panic:"


def run(log=LOG, plan=PLAN):
    results, p = parse_log(log, parse_plan(plan, "hyp-panic.plan"))
    return {r.full: r for r in results}, results, p


class ExpectPanicPlan(unittest.TestCase):
    def test_parse(self):
        steps = parse_plan(PLAN)
        self.assertEqual(steps[-1].kind, "EXPECT-PANIC")
        self.assertEqual(steps[-1].arg, "Kernel panic - not syncing: HYP panic:")   # quotes stripped
        self.assertIsNone(steps[-1].timeout)

    def test_errors(self):
        bad = {
            "PASS a\nEXPECT-PANIC x panic": "EXPECT-PANIC must follow an SH or TEST step",
            "PASS a\nREQUIRE-LOG r x\nEXPECT-PANIC x panic": "EXPECT-PANIC must follow an SH or TEST step",
            "PASS a\nTEST t 1 true\nEXPECT-PANIC x panic\nSH y 1 true": "EXPECT-PANIC must be the last step",
            "PASS a\nTEST t 1 true\nEXPECT-PANIC x": "expected 'EXPECT-PANIC NAME REGEX'",
            "PASS a\nTEST t 1 true\nEXPECT-PANIC x (": "bad regex",
        }
        for text, msg in bad.items():
            with self.subTest(text=text):
                with self.assertRaises(PlanError) as cm:
                    parse_plan(text, "p.plan")
                self.assertIn(msg, str(cm.exception))

    def test_never_sent_to_the_vm(self):
        script = steps_script(parse_plan(PLAN))
        self.assertIn("VHERS_NSTEPS=5\n", script)
        self.assertIn("vhers_step 4 hyp-panic/guest run 60", script)
        self.assertNotIn("hyp-panic/hyp-panic", script)

    def test_kept_by_a_filter(self):
        kept = [s.full for s in filter_steps(parse_plan(PLAN), "guest")]
        self.assertEqual(kept[-2:], ["hyp-panic/guest", "hyp-panic/hyp-panic"])

    def test_writer(self):
        w = PlanWriter().pass_("p").test("t", 10, "true").expect_panic("panic", " HYP panic: ")
        self.assertEqual(parse_plan(w.text())[-1].arg, " HYP panic: ")


class ExpectPanicVerdicts(unittest.TestCase):
    def test_the_recorded_hyp_panic_passes(self):
        v, results, p = run()
        self.assertEqual([(r.full, r.status) for r in results],
                         [("hyp-panic/vhe-mode", "pass"), ("hyp-panic/insmod", "pass"),
                          ("hyp-panic/module-loaded", "pass"), ("hyp-panic/modules", "pass"),
                          ("hyp-panic/guest", "pass"), ("hyp-panic/hyp-panic", "pass")])
        self.assertTrue(p.complete)
        self.assertEqual(exit_status(p), 0)
        self.assertEqual(summary_line(results), "6 passed, 0 failed, 0 skipped")
        self.assertIn(HYP_PANIC_AT, v["hyp-panic/guest"].output)

    def test_without_expect_panic_it_is_a_failure(self):
        plan = "\n".join(x for x in PLAN.splitlines() if not x.startswith("EXPECT-PANIC"))
        v, _, p = run(plan=plan)
        self.assertEqual(v["hyp-panic/guest"].status, "fail")
        self.assertIn("kernel: Kernel panic - not syncing: HYP panic:", v["hyp-panic/guest"].reason)
        self.assertEqual(exit_status(p), 1)

    def test_no_panic_fails(self):
        # The guest ends, the VM runs the plan to its end.
        cut = LOG.index(HYP_PANIC_AT)
        log = LOG[:cut] + "@@VHERS END 4 hyp-panic/guest rc=0 secs=0.50\n@@VHERS DONE\n" \
            "@@VHERS-HOST QEMU-EXIT rc=0 after=2.0s\n"
        v, _, p = run(log)
        self.assertEqual(v["hyp-panic/guest"].status, "pass")
        self.assertEqual((v["hyp-panic/hyp-panic"].status, v["hyp-panic/hyp-panic"].reason),
                         ("fail", "no kernel panic: the VM ran the plan to its end"))
        self.assertEqual(p.protocol, [])
        self.assertEqual(exit_status(p), 1)

    def test_a_panic_in_another_step_fails(self):
        # The same panic, during /proc/modules instead of the guest.
        begin = "@@VHERS BEGIN 4 hyp-panic/guest\n"
        i, j = LOG.index("@@VHERS END 3 hyp-panic/modules"), LOG.index(HYP_PANIC_AT)
        log = LOG[:i] + LOG[j:]
        self.assertNotIn(begin, log)
        v, _, p = run(log)
        self.assertEqual(v["hyp-panic/modules"].status, "fail")
        self.assertEqual(v["hyp-panic/guest"].status, "fail")
        self.assertEqual(v["hyp-panic/hyp-panic"].status, "fail")
        self.assertIn("not run (VM died: kernel panic: HYP panic:", v["hyp-panic/hyp-panic"].reason)
        self.assertFalse(p.complete)

    def test_another_splat_before_the_panic_fails_the_trigger(self):
        warn = "[    0.950000] WARNING: CPU: 1 PID: 60 at arch/arm64/kvm/arm.c:1180 kvm_arch_vcpu_ioctl_run+0x4b0/0x768\n"
        log = LOG.replace(HYP_PANIC_AT, warn.rstrip("\n") + "\n" + HYP_PANIC_AT)
        v, _, p = run(log)
        self.assertEqual(v["hyp-panic/guest"].status, "fail")
        self.assertIn("kernel: WARNING: CPU: 1 PID: 60", v["hyp-panic/guest"].reason)
        self.assertIn("(before the expected panic)", v["hyp-panic/guest"].reason)
        self.assertEqual(v["hyp-panic/hyp-panic"].status, "pass")
        self.assertEqual(exit_status(p), 1)

    def test_the_wrong_panic_fails(self):
        # An Oops (oops=panic) instead: a splat before the panic, and the regex misses.
        oops = ("[    0.976000] Unable to handle kernel paging request at virtual address 00dead0000000000\n"
                "[    0.976100] Internal error: Oops: 0000000096000004 [#1] SMP\n"
                "[    0.976162] Kernel panic - not syncing: Oops: Fatal exception\n")
        i = LOG.index(HYP_PANIC_AT)
        j = LOG.index("[    0.978023] CPU: 1")
        v, _, p = run(LOG[:i] + oops + LOG[j:])
        self.assertEqual(v["hyp-panic/guest"].status, "fail")
        self.assertEqual(v["hyp-panic/hyp-panic"].status, "fail")
        self.assertIn("has no match for /Kernel panic - not syncing: HYP panic:/", v["hyp-panic/hyp-panic"].reason)
        self.assertEqual(exit_status(p), 1)

    def test_a_hang_fails(self):
        i = LOG.index(HYP_PANIC_AT)
        log = LOG[:i] + "@@VHERS-HOST TIMEOUT step hyp-panic/guest: no END within 60+5+30s\n" \
            "@@VHERS-HOST QEMU-EXIT rc=-15 after=96.0s\n"
        v, _, p = run(log)
        self.assertEqual(v["hyp-panic/guest"].status, "fail")
        self.assertIn("hang", v["hyp-panic/guest"].reason)
        self.assertEqual(v["hyp-panic/hyp-panic"].status, "fail")
        self.assertEqual(exit_status(p), 1)


class HypPanicReport(unittest.TestCase):
    """tools/hyp-panic-test's reading of the console."""

    def check(self, log):
        return hpt.check_report(hpt.parse_report(log)[0])

    def test_the_recorded_report(self):
        fields, lines = hpt.parse_report(LOG)
        self.assertEqual(fields["far"][0], "00dead0000000000")
        self.assertEqual(lines[:4], [
            "[    0.976162] Kernel panic - not syncing: HYP panic:",
            "[    0.976162] PS:200023c9 PC:ffff8000786b22ac ESR:96000004",
            "[    0.976162] FAR:00dead0000000000 HPFAR:0000000000001800 PAR:1de7ec7edbadc0de",
            "[    0.976162] VCPU:00000000a02efe8b"])
        ok, what = self.check(LOG)
        self.assertTrue(ok, what)

    def test_null_vcpu(self):
        ok, what = self.check(LOG.replace("VCPU:00000000a02efe8b", "VCPU:0000000000000000"))
        self.assertFalse(ok)
        self.assertIn("VCPU is NULL", what)

    def test_other_fields(self):
        for old, new, msg in [
                ("FAR:00dead0000000000", "FAR:0000000000000010", "not the variant's 0x00dead0000000000"),
                ("ESR:96000004", "ESR:f2000800", "not a data abort at EL2"),
                ("PS:200023c9", "PS:200023c5", "not taken from EL2h"),
                ("PC:ffff8000786b22ac", "PC:ffff800080123456", "not in vhe_rs"),
                ("__hyp_call_panic+0x0/0x6c", "something_else+0x0/0x6c", "no __hyp_call_panic"),
                ("[    0.976162] VCPU:00000000a02efe8b\n", "", "no `VCPU:...` line")]:
            with self.subTest(new=new):
                self.assertIn(old, LOG)
                ok, what = self.check(LOG.replace(old, new))
                self.assertFalse(ok)
                self.assertIn(msg, what)

    def test_break_address_in_disassembly(self):
        text = ("    2134:      \tmov\tx26, #0xad0000000000     // =190215511605248\n"
                "    2140:      \tmovk\tx26, #0xde, lsl #48\n"
                "    215c:      \tldr\txzr, [x26]\n"
                "    2160:      \tmov\tx8, #0xde\n")
        regs, lines = hpt.movs_of_break_address(text)
        self.assertEqual(regs, {"x26"})
        self.assertEqual(lines, ["2140:      \tmovk\tx26, #0xde, lsl #48"])
        self.assertEqual(hpt.movs_of_break_address("    0:  \tmov\tx1, #0xdead0000000000\n")[0], {"x1"})

    def test_the_load_follows_the_guest_entry(self):
        text = ("    2160:      \tmovk\tx27, #0xde, lsl #48\n"
                "    217c:      \tbl\t0x217c <vhe_rs_vcpu_run+0x20c>\n"
                "\t\t000000000000217c:  R_AARCH64_CALL26\tvhe_rs_guest_enter\n"
                "    2180:      \tldr\txzr, [x27]\n"
                "    2184:      \tldr\tx8, [x27]\n")
        self.assertEqual(hpt.loads_after_guest_enter(text, {"x27"}),
                         ["217c: bl 0x217c <vhe_rs_vcpu_run+0x20c> (000000000000217c: R_AARCH64_CALL26 "
                          "vhe_rs_guest_enter), then 2180: ldr xzr, [x27]"])
        self.assertEqual(hpt.loads_after_guest_enter(text.replace("vhe_rs_guest_enter", "vhe_rs_adjust_pc"),
                                                     {"x27"}), [])


if __name__ == "__main__":
    unittest.main()
