#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Which failed tests of a VM run `tools/check` may run once more, in a new boot.

  tools/retry-filter.py PLAN RESULTS_JSON

Prints a --filter regex for tools/vmrun.py matching exactly the TEST steps that
failed (including those not run because the VM died), and exits 0; exits 1
printing nothing when there is nothing to retry or when a failure is not a
test's own (a setup step, a REQUIRE-LOG check, a kernel splat at boot or
shutdown): those are never retried.
"""
import json
import re
import sys


def main(plan_path, results_path):
    tests, pass_ = set(), None
    for line in open(plan_path):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if f[0] == "PASS":
            pass_ = f[1]
        elif f[0] == "TEST" and pass_:
            tests.add(f"{pass_}/{f[1]}")
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
