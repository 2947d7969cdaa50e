# SPDX-License-Identifier: GPL-2.0
"""Tests of tools/ioctl-fuzz-shrink on small logs in ioctl_fuzz -l's format.

  python3 -m unittest discover -s tools/tests -v
"""
import io
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scripts  # noqa: E402

shrink = scripts.load("ioctl-fuzz-shrink", "ioctl_fuzz_shrink")

STEPS = [
    "CREATE_VM type=0x0 -> fd vm=0",
    "CREATE_VCPU vm=0 id=0 -> fd",
    "CREATE_VM type=0x0 -> fd vm=1",
    "VCPU_INIT vm=0 vcpu=0 target=preferred:5 feat=0x4 -> 0",
    "CREATE_VCPU vm=1 id=0 -> fd",
    "SET_ONE_REG vm=0 vcpu=0 reg=0x6030000000100042 val=0x3c5 -> 0",
    "KVM_RUN vm=0 vcpu=0 -> 0 irq=0 exit=MMIO pa=0x3f000ff8 len=8 w=1 data=0x0",
    "CLOSE_VM vm=1 -> 0",
]


def log(steps, seed=7, digest="00000000deadbeef", backend="C", noise=True):
    lines = []
    for i, s in enumerate(steps):
        lines.append(f"{i} {s}")
        if noise and i == 2:
            lines.append("[    1.234567] KVM: debugfs: duplicate directory 51-4")
    lines.append(f"# seed {seed}: {len(steps)} steps in 0.1 s")
    lines.append(f"DIGEST seed={seed} n={len(steps)} digest={digest}")
    lines.append(f"STRESS ioctl_fuzz backend={backend} seed={seed} seconds=0 threads=1 "
                 f"ioctls={len(steps)} vms=2 runs=1 digest={digest}")
    return "\n".join(lines) + "\n"


def compare(a, b, **kw):
    out = io.StringIO()
    la, lb = shrink.Log("C", a), shrink.Log("Rust", b)
    rc = shrink.compare(la, lb, out=out, **kw)
    return rc, out.getvalue()


class Shrink(unittest.TestCase):
    def test_same(self):
        rc, out = compare(log(STEPS), log(STEPS, backend="Rust"))
        self.assertEqual(rc, 0)
        self.assertIn("agree on all 8 steps (digest 00000000deadbeef)", out)

    def test_first_difference_and_prefix(self):
        other = list(STEPS)
        other[6] = "KVM_RUN vm=0 vcpu=0 -> -EINVAL"
        other[7] = "CLOSE_VM vm=1 -> -EBADF"
        rc, out = compare(log(STEPS), log(other, digest="0000000000000001"))
        self.assertEqual(rc, 1)
        self.assertIn("first differ at step 6", out)
        self.assertIn("ioctl_fuzz -s 7 -n 7 -l", out)
        self.assertIn("C   : 6 KVM_RUN vm=0 vcpu=0 -> 0 irq=0", out)
        self.assertIn("Rust: 6 KVM_RUN vm=0 vcpu=0 -> -EINVAL", out)
        # the history: vm=0's steps from its CREATE_VM, not vm=1's
        hist = out.split("same in both logs):\n")[1].split("  C   :")[0]
        self.assertIn("0 CREATE_VM type=0x0 -> fd vm=0", hist)
        self.assertIn("5 SET_ONE_REG", hist)
        self.assertNotIn("vm=1", hist)

    def test_history_stops_at_the_vm_creation(self):
        steps = ["CREATE_VM type=0x0 -> fd vm=0", "CLOSE_VM vm=0 -> 0",
                 "CREATE_VM type=0x0 -> fd vm=0", "CREATE_VCPU vm=0 id=1 -> fd",
                 "KVM_RUN vm=0 vcpu=1 -> -ENOEXEC"]
        other = steps[:4] + ["KVM_RUN vm=0 vcpu=1 -> -EINVAL"]
        rc, out = compare(log(steps), log(other))
        self.assertEqual(rc, 1)
        hist = out.split("same in both logs):\n")[1].split("  C   :")[0]
        self.assertEqual([l.split()[0] for l in hist.splitlines()], ["2", "3"])

    def test_one_log_shorter(self):
        rc, out = compare(log(STEPS), log(STEPS[:5]))
        self.assertEqual(rc, 1)
        self.assertIn("first differ at step 5", out)
        self.assertIn("Rust: (no such step: the log ends here)", out)

    def test_different_seeds_refused(self):
        with self.assertRaises(shrink.LogError):
            compare(log(STEPS, seed=1), log(STEPS, seed=2))

    def test_gap_refused(self):
        text = log(STEPS).replace("4 CREATE_VCPU vm=1 id=0 -> fd\n", "")
        with self.assertRaises(shrink.LogError):
            shrink.Log("C", text)

    def test_main(self):
        other = list(STEPS)
        other[3] = "VCPU_INIT vm=0 vcpu=0 target=preferred:5 feat=0x4 -> -EINVAL"
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "c.log"), os.path.join(d, "rust.log")
            with open(a, "w") as fh:
                fh.write(log(STEPS))
            with open(b, "w") as fh:
                fh.write(log(other, backend="Rust"))
            saved = sys.stdout
            sys.stdout = io.StringIO()
            try:
                rc = shrink.main([a, b])
                out = sys.stdout.getvalue()
            finally:
                sys.stdout = saved
            self.assertEqual(rc, 1)
            self.assertIn("C and Rust first differ at step 3", out)   # names from STRESS lines
            self.assertEqual(shrink.main([a, a]), 0)
            with open(b, "w") as fh:
                fh.write("DIGEST seed=7 n=0 digest=0\n")
            self.assertEqual(shrink.main([a, b]), 2)


if __name__ == "__main__":
    unittest.main()
