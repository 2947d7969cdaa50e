# SPDX-License-Identifier: GPL-2.0
"""The command line: `python3 tools/vmrun ARGS...` (main()).

  python3 tools/vmrun --kernel IMAGE --busybox BUSYBOX --plan PLAN [--module vhe_rs.ko]
                      [--files DIR ...] [--extra-cpio CPIO] [--out DIR] [--timeout-total SECONDS]
                      [--filter REGEX] [--exclude GLOB] [--console] [--reparse DIR]
                      [--extra-qemu-args ARGS...]      (--help lists the rest)

Output
------
stdout: TAP version 13 (results as they complete, failing tests' last output
lines as `#` diagnostics, the plan line `1..N` at the end), then one line
`N passed, N failed, N skipped`. Exit status 0 iff nothing failed and the plan
ran to its end; 1 otherwise; 2 for a usage or plan error; 130 if interrupted.
--out DIR (default build/vm/<plan name>) gets console.log (the whole console
stream, with `@@VHERS-HOST` lines recording what the host did: timeouts, QEMU
exit), results.json ([{pass, name, status: pass|fail|skip, reason, secs}]),
one PASS__NAME.log per step ('/' in names becomes '__'), qemu.stderr,
initramfs.cpio.gz and qemu.cmd. `python3 tools/vmrun --reparse DIR --plan PLAN`
recomputes the verdicts from DIR/console.log, without a VM.
"""

import argparse
import os
import re
import sys

from vmrun.initramfs import DEFAULT_EXCLUDE
from vmrun.plan import PlanError, filter_steps, read_plan
from vmrun.qemu import (DEFAULT_BOOT_TIMEOUT, DEFAULT_CMDLINE, DEFAULT_MARGIN, KILL_GRACE, TOP, Runner,
                        default_qemu)
from vmrun.verdicts import exit_status, parse_log, summary_line, tap_line


def reparse(args, steps):
    with open(os.path.join(args.reparse, "console.log"), errors="replace") as f:
        results, p = parse_log(f.read(), steps)
    print("TAP version 13")
    for i, r in enumerate(results, 1):
        print(tap_line(i, r))
    for x in p.protocol:
        print(f"# protocol: {x}")
    print(f"1..{len(results)}")
    print(summary_line(results))
    return exit_status(p)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="vmrun",
        description="Boot the vhe-rs test VM and run a plan (plan format: tools/vmrun/plan.py).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", help="arm64 Image")
    ap.add_argument("--busybox", help="static arm64 busybox")
    ap.add_argument("--plan", required=True, help="plan file")
    ap.add_argument("--module", help="kernel module, installed as /opt/vhe_rs.ko")
    ap.add_argument("--files", action="extend", nargs="+", default=[], metavar="DIR",
                    help="copy DIR's contents under /opt/ (repeatable)")
    ap.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                    help="leave out of --files what matches GLOB (file or dir name, or path "
                         "relative to DIR; repeatable); always left out: " + " ".join(DEFAULT_EXCLUDE))
    ap.add_argument("--extra-cpio", action="append", default=[], metavar="CPIO",
                    help="append this prebuilt cpio archive (compressed or not) to the "
                         "initramfs as it is (repeatable)")
    ap.add_argument("--out", help="output directory (default build/vm/<plan name>)")
    ap.add_argument("--filter", help="run only TEST/SKIP steps whose PASS/NAME matches (re.search)")
    ap.add_argument("--timeout-total", type=int, help="overall limit in seconds (default: "
                    "boot + sum of step timeouts and margins)")
    ap.add_argument("--timeout-boot", type=int, default=DEFAULT_BOOT_TIMEOUT,
                    help=f"QEMU start to first marker (default {DEFAULT_BOOT_TIMEOUT})")
    ap.add_argument("--margin", type=int, default=DEFAULT_MARGIN,
                    help=f"host slack per step on top of TIMEOUT+{KILL_GRACE}s (default {DEFAULT_MARGIN})")
    ap.add_argument("--append", default="", help=f"extra kernel command line (after '{DEFAULT_CMDLINE}')")
    ap.add_argument("--qemu", default=default_qemu(),
                    help="QEMU binary (default: the project's, build/qemu, that tools/setup "
                    "fetches; else qemu-system-aarch64 on PATH)")
    ap.add_argument("--cpu", default="max", help="QEMU -cpu (default max)")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem", default="4G")
    ap.add_argument("--diag-lines", type=int, default=40, help="output lines shown for a failing step")
    ap.add_argument("--console", action="store_true", help="also echo the console to stderr, live")
    ap.add_argument("--reparse", metavar="DIR", help="no VM: recompute verdicts from DIR/console.log")
    ap.add_argument("--extra-qemu-args", nargs=argparse.REMAINDER, default=[],
                    help="everything after this goes to QEMU (must come last)")
    a = ap.parse_args(argv)

    try:
        plan_text, steps = read_plan(a.plan)
    except (OSError, PlanError) as e:
        print(f"vmrun: {e}", file=sys.stderr)
        return 2
    try:
        steps = filter_steps(steps, a.filter)
    except re.error as e:
        print(f"vmrun: bad --filter: {e}", file=sys.stderr)
        return 2
    if a.filter and not any(s.kind in ("TEST", "SKIP") for s in steps):
        print(f"vmrun: --filter {a.filter!r} matches no TEST or SKIP step", file=sys.stderr)
        return 2
    if a.reparse:
        return reparse(a, steps)

    missing = [f"--{k}" for k in ("kernel", "busybox") if not getattr(a, k)]
    if missing:
        print(f"vmrun: {' and '.join(missing)} required", file=sys.stderr)
        return 2
    for what, p in [("kernel", a.kernel), ("busybox", a.busybox), ("module", a.module)]:
        if p and not os.path.isfile(p):
            print(f"vmrun: --{what} {p}: no such file", file=sys.stderr)
            return 2
    for p in a.extra_cpio:
        if not os.path.isfile(p):
            print(f"vmrun: --extra-cpio {p}: no such file", file=sys.stderr)
            return 2
    for d in a.files:
        if not os.path.isdir(d):
            print(f"vmrun: --files {d}: not a directory", file=sys.stderr)
            return 2
    if not a.out:
        a.out = os.path.join(TOP, "build", "vm",
                             os.path.splitext(os.path.basename(a.plan))[0])
    return Runner(a, steps, plan_text).run()

