#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write the VM test plan of `make check` (format: tools/vmrun/plan.py, which writes it).

Two passes over the same tests in one boot: `baseline` (the built-in C backend,
no module) and `module` (vhe_rs.ko loaded). Upstream tests come from
selftests/upstream.list; every program the upstream Makefile builds (--progs)
must be there, run or skipped with a reason, or the plan is refused. The
project's own selftests (every program in --own) run in both passes.

--gic-trap writes the plan of a second boot instead, the one tools/check boots
with GIC_TRAP_CMDLINE (every GICv3 CPU interface register of a guest trapped
to EL2, where the world switch emulates it): the GIC tests (GIC_TRAP_UPSTREAM,
as selftests/upstream.list runs them, and GIC_TRAP_OWN) in the same two passes,
named gictrap-baseline and gictrap-module, and at the end of the module pass
a check that the module dealt with SYS64 exits at EL2.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmrun.plan import PlanError, PlanWriter  # noqa: E402


# The second boot of make check's VM phase: its extra kernel command line (the
# plan checks the kernel took it) and what it runs.
GIC_TRAP_CMDLINE = ("kvm-arm.vgic_v3_group0_trap=1 kvm-arm.vgic_v3_group1_trap=1 "
                    "kvm-arm.vgic_v3_common_trap=1")
GIC_TRAP_UPSTREAM = ["aarch64/vgic_irq", "aarch64/vgic_lpi_stress", "aarch64/no-vgic-v3", "arch_timer"]
GIC_TRAP_OWN = ["el2_exits_test", "aarch32_guest_test", "vhe_rs_smoke"]
EXITS = "/sys/kernel/debug/vhe_rs/exits"

# Programs of selftests/ that are helpers, not tests: not run as tests of their own.
HELPERS = {"perf_user"}
# The reliability suite's programs: not run here but by tools/stress (make
# check's stress phase, a minute per backend; make stress, 30 minutes), which
# gives them their seeds and durations and compares the backends.
STRESS = {"state_fuzz", "ioctl_fuzz", "lifecycle_stress"}
# The project's state tests, run again beside another process that holds a
# user-readable perf counter (selftests/perf_user.c) in each pass of the first
# boot: every check of host state in them must hold whatever else runs on the
# machine (Documentation/selftests.rst, "Beside a perf user"; issue 13, item 6).
BESIDE_PERF_USER = ["sysreg_state_test -P -i 300", "fp_state_test", "sve_state_test",
                    "sysreg_state_test"]
PERF_USER_ACCESS = "/proc/sys/kernel/perf_user_access"


def beside_perf_user_command():
    """One shell command: perf_user_access on (written 0 first: the driver then
    clears PMUSERENR_EL0 on every CPU), the first test started, perf_user
    started 0.3 s later (so that a vCPU thread sees the register change under
    it, as in the issue), then the others with it still running; perf_user
    stopped, its counts printed, the sysctl put back. Fails if any test does,
    or if perf_user could not read its counter from EL0."""
    first, rest = BESIDE_PERF_USER[0], BESIDE_PERF_USER[1:]
    s = PERF_USER_ACCESS
    return (f"o=$(cat {s}); echo 0 > {s} && echo 1 > {s} || exit 1; rc=0; "
            f"/opt/vhe-rs/{first} > /tmp/bpu-first.log 2>&1 & t=$!; sleep 0.3; "
            f"/opt/vhe-rs/perf_user > /tmp/bpu-perf.log 2>&1 & p=$!; "
            f"wait $t || {{ rc=1; echo 'beside-perf-user: {first} FAILED'; }}; "
            f"cat /tmp/bpu-first.log; "
            f"i=0; until grep -q ready /tmp/bpu-perf.log; do i=$((i + 1)); "
            f"[ $i -lt 50 ] && kill -0 $p 2>/dev/null || {{ cat /tmp/bpu-perf.log; "
            f"echo 'beside-perf-user: perf_user did not start'; echo $o > {s}; exit 1; }}; "
            f"sleep 0.1; done; "
            f"for t in {' '.join(repr(t) for t in rest)}; do echo \"beside-perf-user: $t\"; "
            f"/opt/vhe-rs/$t || {{ rc=1; echo \"beside-perf-user: $t FAILED\"; }}; done; "
            f"kill $p; wait $p || rc=1; cat /tmp/bpu-perf.log; echo $o > {s}; exit $rc")


def parse_list(path):
    """NAME TIMEOUT [ARGS...]  |  NAME skip REASON...  |
    NAME module-only TIMEOUT [ARGS...] | REASON      ('#' starts a comment).

    Returns (name, timeout or "skip", args or reason, baseline-skip reason or None)."""
    tests = []
    with open(path) as f:
        lines = f.readlines()
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        w = line.split()
        if len(w) >= 3 and w[1] == "skip":
            tests.append((w[0], "skip", " ".join(w[2:]), None))
        elif len(w) >= 3 and w[1] == "module-only" and w[2].isdigit() and " | " in line:
            args, reason = line.split(" | ", 1)
            tests.append((w[0], int(w[2]), " ".join(args.split()[3:]), reason.strip()))
        elif len(w) >= 2 and w[1].isdigit():
            tests.append((w[0], int(w[1]), " ".join(w[2:]), None))
        else:
            sys.exit(f"{path}:{n}: expected 'NAME TIMEOUT [ARGS]', 'NAME skip REASON' or "
                     f"'NAME module-only TIMEOUT [ARGS] | REASON': {raw.rstrip()}")
    return tests


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--progs", help="upstream programs, one a line")
    ap.add_argument("--list", help="selftests/upstream.list")
    ap.add_argument("--own", help="directory of the project's selftests")
    ap.add_argument("--out")
    ap.add_argument("--own-timeout", type=int, default=120)
    ap.add_argument("--gic-trap", action="store_true",
                    help="the plan of the GIC-trap boot (booted with GIC_TRAP_CMDLINE)")
    ap.add_argument("--print-gic-trap-cmdline", action="store_true",
                    help="print GIC_TRAP_CMDLINE and exit")
    a = ap.parse_args(argv)
    if a.print_gic_trap_cmdline:
        print(GIC_TRAP_CMDLINE)
        return
    if not (a.progs and a.list and a.own and a.out):
        ap.error("--progs, --list, --own and --out are required")

    with open(a.progs) as f:
        progs = [p.strip() for p in f if p.strip()]
    tests = parse_list(a.list)
    listed = {t[0] for t in tests}
    missing = [p for p in progs if p not in listed]
    unknown = [t[0] for t in tests if t[0] not in progs]
    if missing or unknown:
        for p in missing:
            print(f"mkplan: upstream test {p} is not accounted for in {a.list}", file=sys.stderr)
        for p in unknown:
            print(f"mkplan: {p} in {a.list} is not an upstream program", file=sys.stderr)
        sys.exit(1)
    own = sorted(f for f in os.listdir(a.own)
                 if os.access(os.path.join(a.own, f), os.X_OK) and not re.search(r"\.[od]$", f)
                 and f not in HELPERS and f not in STRESS)
    beside = (os.access(os.path.join(a.own, "perf_user"), os.X_OK)
              and all(t.split()[0] in own for t in BESIDE_PERF_USER))

    if a.gic_trap:
        return write_gic_trap(a, tests, own)

    w = PlanWriter("Generated by tools/mkplan.py: baseline (C) pass, then module pass.")

    def body(pass_name):
        for name, timeout, rest, module_only in tests:
            if module_only and pass_name == "baseline":
                w.skip(name, f"runs in the module pass only: {module_only}")
            elif timeout == "skip":
                w.skip(name, rest)
            else:
                w.test(name, timeout, f"/opt/kvm/{name} {rest}")
        for name in own:
            w.test(f"vhe-rs/{name}", a.own_timeout, f"/opt/vhe-rs/{name}")
        if beside:
            w.test("vhe-rs/beside-perf-user", 2 * a.own_timeout, beside_perf_user_command())

    w.pass_("baseline").vhe_mode()
    body("baseline")
    w.pass_("module").load_module()
    body("module")
    # A VM created while the module is disabled runs on C (the smoke test checks
    # which backend ran it against the module's state), then back to Rust.
    if "vhe_rs_smoke" in own:
        w.sh("disable", 10, "echo N > /sys/module/vhe_rs/parameters/enable")
        w.test("vhe-rs/vhe_rs_smoke-disabled", a.own_timeout, "/opt/vhe-rs/vhe_rs_smoke")
        w.sh("enable", 10, "echo Y > /sys/module/vhe_rs/parameters/enable")
    w.unload_module()
    try:
        w.write(a.out)
    except PlanError as e:
        sys.exit(f"mkplan: {e}")
    run = sum(1 for t in tests if t[1] != "skip")
    print(f"mkplan: {len(progs)} upstream programs: {run} run, {len(tests) - run} skipped with a reason;"
          f" {len(own)} vhe-rs programs; 2 passes -> {a.out}")


def write_gic_trap(a, tests, own):
    """The GIC-trap boot's plan (see the module's docstring)."""
    by_name = {t[0]: t for t in tests}
    for name in GIC_TRAP_UPSTREAM:
        if name not in by_name:
            sys.exit(f"mkplan: GIC_TRAP_UPSTREAM names {name}, which {a.list} does not list")
    w = PlanWriter("Generated by tools/mkplan.py --gic-trap: booted with " + GIC_TRAP_CMDLINE)

    def body(pass_name):
        for name in GIC_TRAP_UPSTREAM:
            _, timeout, rest, module_only = by_name[name]
            if module_only and pass_name.endswith("baseline"):
                w.skip(name, f"runs in the module pass only: {module_only}")
            elif timeout == "skip":
                w.skip(name, rest)
            else:
                w.test(name, timeout, f"/opt/kvm/{name} {rest}")
        for name in GIC_TRAP_OWN:
            if name in own:
                w.test(f"vhe-rs/{name}", a.own_timeout, f"/opt/vhe-rs/{name}")
            else:
                w.skip(f"vhe-rs/{name}", f"not built (no {name} in {a.own})")

    w.pass_("gictrap-baseline").vhe_mode()
    # The kernel took the parameters: KVM says so when it probes the GIC.
    w.require_log("gic-trapping", r"GICv3 sysreg trapping enabled \(\[G0G1C\]")
    body("gictrap-baseline")
    w.pass_("gictrap-module").load_module()
    body("gictrap-module")
    # The CPU interface accesses of the tests above were dealt with at EL2.
    w.test("sys64-at-el2", 10, f"cat {EXITS}; awk '$1 == \"0x18\" && $2 > 0 {{ ok = 1 }} "
           f"END {{ exit !ok }}' {EXITS}")
    w.unload_module()
    try:
        w.write(a.out)
    except PlanError as e:
        sys.exit(f"mkplan: {e}")
    print(f"mkplan: GIC-trap boot: {len(GIC_TRAP_UPSTREAM)} upstream and {len(GIC_TRAP_OWN)} vhe-rs "
          f"programs; 2 passes -> {a.out}")


if __name__ == "__main__":
    main()
