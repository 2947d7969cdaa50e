# SPDX-License-Identifier: GPL-2.0
"""Tests of tools/stress: its plan (read back by the plan parser), the digest
step's shell loop (run with sh on fake programs), and the table it makes from
the step logs and results of a boot (written here as vmrun writes them).

  python3 -m unittest discover -s tools/tests -v
"""
import json
import os
import subprocess
import sys
import tempfile
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)
import scripts  # noqa: E402
from vmrun.plan import parse_plan  # noqa: E402

stress = scripts.load("stress", "stress")


def args(**kw):
    a = types.SimpleNamespace(duration=60, seed=7, out="/nonexistent", kdir="/k")
    a.__dict__.update(kw)
    return a


class Plan(unittest.TestCase):
    def test_durations(self):
        self.assertEqual(stress.duration("30m"), 1800)
        self.assertEqual(stress.duration("90"), 90)
        self.assertEqual(stress.duration("2h"), 7200)
        with self.assertRaises(Exception):
            stress.duration("1.5m")

    def test_main_plan_two_passes(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "s.plan")
            stress.main_plan(args(duration=1800)).write(p)
            with open(p) as f:
                steps = parse_plan(f.read(), p)
        names = [(s.pass_, s.name) for s in steps if s.kind == "TEST"]
        self.assertEqual(names, [("c", "state_fuzz"), ("c", "ioctl_fuzz"), ("c", "found-1"),
                                 ("c", "ioctl-digest"),
                                 ("rust", "state_fuzz"), ("rust", "ioctl_fuzz"), ("rust", "found-1"),
                                 ("rust", "ioctl-digest"), ("rust", "lifecycle")])
        cmds = {(s.pass_, s.name): s.arg for s in steps if s.kind == "TEST"}
        # The sequence that found the KVM bug of patch 0001, in both passes.
        self.assertEqual(cmds[("c", "found-1")], "/opt/vhe-rs/ioctl_fuzz -u -a -s 7 -n 2000")
        self.assertEqual(cmds[("c", "found-1")], cmds[("rust", "found-1")])
        # The duration is shared out, the seed passed on, the same for both.
        self.assertIn("-s 7 -d 720", cmds[("c", "state_fuzz")])
        self.assertEqual(cmds[("c", "state_fuzz")], cmds[("rust", "state_fuzz")])
        self.assertIn("-c 1000 -d 630", cmds[("rust", "lifecycle")])
        # 30 minutes compare 240 seeds (8 a minute) from the seed on; 1 minute, 8.
        self.assertIn("for s in 7 8 9 ", cmds[("rust", "ioctl-digest")])
        self.assertIn(" 246; do", cmds[("rust", "ioctl-digest")])
        self.assertEqual(stress.digest_seeds(60), stress.DIGEST_SEEDS)
        # The Rust pass is the module's: insmod before its tests, rmmod after.
        kinds = [(s.kind, s.name) for s in steps if s.pass_ == "rust"]
        self.assertLess(kinds.index(("SH", "insmod")), kinds.index(("TEST", "state_fuzz")))
        self.assertIn(("SH", "rmmod"), kinds)
        self.assertFalse(any(s.name == "insmod" for s in steps if s.pass_ == "c"))


FAKE_FUZZ = """#!/bin/sh
# ioctl_fuzz -s SEED -n N -l: one line per ioctl, then the digest; FAKE_DIFF=S
# makes seed S differ at line 3 on the rust pass.
while [ $# -gt 0 ]; do case $1 in -s) s=$2; shift;; -n) n=$2; shift;; esac; shift; done
i=0; while [ $i -lt 4 ]; do
  r=0; [ "$i" = 3 ] && [ "$s" = "${FAKE_DIFF:-x}" ] && [ -n "$RUSTPASS" ] && r=-22
  echo "$i KVM_X -> $r"; i=$((i + 1)); done
echo "# seed $s: 4 steps in 0.$$ s"
echo "DIGEST seed=$s n=$n digest=0x$s"
echo "STRESS ioctl_fuzz backend=${RUSTPASS:-c}"
"""


class Digest(unittest.TestCase):
    def run_passes(self, diff):
        with tempfile.TemporaryDirectory() as d:
            opt = os.path.join(d, "opt", "vhe-rs")
            os.makedirs(opt)
            with open(os.path.join(opt, "ioctl_fuzz"), "w") as f:
                f.write(FAKE_FUZZ)
            os.chmod(os.path.join(opt, "ioctl_fuzz"), 0o755)
            out = []
            for p in ("c", "rust"):
                cmd = stress.digest_cmd(p, 7).replace("/tmp/", d + "/")
                cmd = cmd.replace("/opt/", os.path.join(d, "opt") + "/")
                env = dict(os.environ, FAKE_DIFF=str(diff), RUSTPASS="1" if p == "rust" else "")
                r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, env=env)
                out.append((r.returncode, r.stdout))
            # Compared logs are removed; a differing seed's stay.
            out.append(sorted(os.listdir(d)))
            return out

    def test_equal(self):
        (rc_c, _), (rc_r, out), files = self.run_passes(diff="none")
        self.assertEqual((rc_c, rc_r), (0, 0))
        self.assertEqual([f for f in files if not f.endswith(".steps")], ["opt"])
        self.assertEqual(out.count("DIGEST-EQUAL"), stress.DIGEST_SEEDS)

    def test_difference_fails_and_shows_the_step(self):
        (rc_c, _), (rc_r, out), files = self.run_passes(diff=9)
        self.assertEqual([f for f in files if not f.endswith(".steps")],
                         ["ioctl-c-9.log", "ioctl-rust-9.log", "opt"])
        self.assertEqual(rc_c, 0)
        self.assertNotEqual(rc_r, 0)
        self.assertIn("DIGEST-DIFF seed=9", out)
        self.assertIn("3 KVM_X -> -22", out)
        self.assertEqual(out.count("DIGEST-EQUAL"), stress.DIGEST_SEEDS - 1)


class Table(unittest.TestCase):
    def write(self, d, name, text):
        with open(os.path.join(d, "vm", name), "w") as f:
            f.write(text)

    def test_table_per_backend(self):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "vm"))
            for p, x in (("c", 100), ("rust", 200)):
                self.write(d, f"{p}__state_fuzz.log",
                           f"state_fuzz: VM 0 vCPU 0 (FP/SIMD): {x // 10} rounds checked, 9 exits\n"
                           f"state_fuzz: VM 1 vCPU 1 (SVE): {x // 20} rounds checked, 9 exits\n"
                           f"STRESS state_fuzz backend=X seed=7 seconds=9 vms=2 vcpus=2 "
                           f"exits_checked={x} vmm_checks=5 migrations=3 mismatches=0\n")
                self.write(d, f"{p}__ioctl_fuzz.log",
                           f"STRESS ioctl_fuzz backend=X seed=7 seconds=9 threads=2 ioctls={x * 10} "
                           f"vms=4 runs=1 digest=-\n")
            self.write(d, "c__ioctl-digest.log", "DIGEST seed=7 n=2000 digest=0x1\n")
            self.write(d, "rust__ioctl-digest.log",
                       "DIGEST seed=7 n=2000 digest=0x1\nDIGEST-EQUAL seed=7\n")
            self.write(d, "rust__lifecycle.log",
                       "STRESS lifecycle cycles=12 vms_rust=30 vms_c=10 refused_rmmods=12 "
                       "long_lived_checks=99 mismatches=1\n")
            results = [{"pass": "rust", "name": "lifecycle", "status": "fail",
                        "reason": "kernel: WARNING at x"}]
            per, md = stress.table(d, results)
        self.assertEqual(per["c"]["exits_checked"], 100)
        self.assertEqual(per["rust"]["exits_checked"], 200)
        self.assertEqual((per["c"]["rounds_checked"], per["rust"]["rounds_checked"]), (15, 30))
        self.assertEqual(per["rust"]["ioctls"], 2000 + stress.DIGEST_IOCTLS)
        self.assertEqual(per["rust"]["module_cycles"], 12)
        self.assertEqual(per["rust"]["vms"], 2 + 4 + 30 + 10)
        self.assertEqual(per["rust"]["mismatches"], 1)
        self.assertEqual(per["rust"]["splats"], 1)
        self.assertEqual(per["rust"]["digests_equal"], 1)
        self.assertEqual(per["rust"]["ioctls_compared"], stress.DIGEST_IOCTLS)
        self.assertIn(f"| ioctls compared with C's, step by step | - | {stress.DIGEST_IOCTLS} |", md)
        self.assertEqual(per["c"]["splats"], 0)
        self.assertIn("| exits checked (state fuzzer) | 100 | 200 |", md)
        self.assertIn("| module cycles | - | 12 |", md)
        json.dumps(per)


if __name__ == "__main__":
    unittest.main()
