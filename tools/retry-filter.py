#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Which failed tests of a VM run `tools/check` may run once more, in a new boot.

  tools/retry-filter.py PLAN RESULTS_JSON

Prints a --filter regex for tools/vmrun matching exactly the TEST steps that
failed (including those not run because the VM died), and exits 0; exits 1
printing nothing when there is nothing to retry or when a failure is not a
test's own (a setup step, a REQUIRE-LOG check, a kernel splat at boot or
shutdown): those are never retried. Exits 2 if PLAN cannot be read or parsed
(tools/vmrun/plan.py).
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmrun.plan import PlanError, read_plan  # noqa: E402


def main(plan_path, results_path):
    try:
        _, steps = read_plan(plan_path)
    except (OSError, PlanError) as e:
        print(f"retry-filter: {e}", file=sys.stderr)
        return 2
    tests = {s.full for s in steps if s.kind == "TEST"}
    retry = []
    for r in json.load(open(results_path)):
        if r["status"] != "fail":
            continue
        full = f"{r['pass']}/{r['name']}"
        if full in tests:
            retry.append(full)
        elif not r.get("reason", "").startswith("not run"):
            return 1            # not a test's own failure: no retry
    if not retry:
        return 1
    print("^(" + "|".join(re.escape(t) for t in retry) + ")$")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
