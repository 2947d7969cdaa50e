#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boot the vhe-rs test VM under QEMU, run a test plan in it, report TAP.

  tools/vmrun.py --kernel IMAGE --busybox BUSYBOX --plan PLAN [--module vhe_rs.ko]
                 [--files DIR ...] [--out DIR] [--timeout-total SECONDS]
                 [--filter REGEX] [--exclude GLOB] [--console] [--reparse DIR]
                 [--extra-qemu-args ARGS...]      (--help lists the rest)

Python 3.11 standard library only. The host builds a gzip'd newc initramfs
(busybox, tools/initramfs/init, the plan turned into a shell script, --module
as /opt/vhe_rs.ko, each --files DIR's contents under /opt/ less *.o *.d *.a
*.cmd and --exclude GLOBs), boots QEMU (virt,virtualization=on,gic-version=3,
-cpu max, -smp 2, -m 4G, -nic none; kernel command line "console=ttyAMA0
earlycon panic=-1 oops=panic printk.time=1" + --append) and reads the console
(ttyAMA0: kernel messages and test output in one stream) live. The VM's /init
sets console_loglevel 8, so every kernel message reaches the stream.

Plan file
---------
Text, one step a line. Blank lines and lines whose first non-blank character
is '#' are ignored (a '#' later in a line is part of it). Fields are separated
by blanks; the last field of a verb is the rest of the line, verbatim.

  PASS         NAME                 start a pass: later steps are reported as NAME/step
  SH           NAME TIMEOUT COMMAND setup step, `/bin/sh -c COMMAND` in the VM;
                                    pass iff exit 0
  TEST         NAME TIMEOUT COMMAND a test, `/bin/sh -c COMMAND`; pass iff exit 0,
                                    exit 4 (KSFT_SKIP) = skip, anything else = fail
  SKIP         NAME REASON          reported as `ok N - PASS/NAME # SKIP REASON`, not run
  REQUIRE-LOG  NAME REGEX           pass iff REGEX (Python re) matches the console
                                    log up to this point (kernel messages and output
                                    of earlier steps); one pair of enclosing quotes
                                    around REGEX is stripped

A step needs a PASS before it. NAME may contain '/' (e.g. vhe-rs/smoke, not in
a PASS name) but no blanks; PASS/NAME must be unique. TIMEOUT is in seconds.
Steps run in order with cwd /tmp and stdin /dev/null, each in its own session;
at TIMEOUT its process group gets SIGTERM, 5 s later SIGKILL (if that kills
it: a failure "timeout"). --filter REGEX keeps only the TEST and SKIP steps whose
PASS/NAME matches (re.search); SH and REQUIRE-LOG steps always run.

Verdicts
--------
A kernel splat on the console (timestamped line starting with `Kernel panic`,
`Internal error:`, `Oops`, `Unable to handle kernel`, `kernel BUG at`,
`WARNING:`, `BUG:`, stall/hung-task reports, or containing `HYP panic`/
`hyp_panic`) fails the step during which it is printed, or the step just
before it if it comes between two steps; one printed before the first step or
after the last is reported as an extra failed test vm/boot or vm/shutdown.
The same line seen again (e.g. in `dmesg` output) does not count twice.
A step whose END marker does not arrive within TIMEOUT + 5 s + --margin is
reported `not ok ... # hang` and QEMU is killed; steps not reached when the VM
dies (panic, hang, QEMU exit, --timeout-total) are `not ok ... # not run (VM
died: why)`. The kernel runs with oops=panic (an Oops stops the run) but a
WARNING does not panic. If a kernel message lands inside an END marker (the
console interleaves), that step fails "END marker missing" and the run goes on.

Hangs and stalls
----------------
QEMU's monitor listens on OUT/monitor.sock. At the first RCU stall, soft
lockup or hung-task report, and again when a hang is declared (before QEMU is
killed), the runner asks it for every vCPU's registers (`info registers -a`),
saves the answer as OUT/cpus-N.txt and writes one `@@VHERS-HOST CPU` line per
vCPU into the console log: its PC, the vmlinux symbol for it (from the
System.map next to --kernel's tree) and its PSTATE (exception level). Those
lines end up in the failing step's diagnostics.

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
initramfs.cpio.gz and qemu.cmd. `tools/vmrun.py --reparse DIR --plan PLAN`
recomputes the verdicts from DIR/console.log: results are a pure function of
the console log and the plan (parse_log), which is what tools/tests checks.

Console protocol (written by /init, one marker a line):
  @@VHERS UNAME <release>        @@VHERS READY steps=<n>
  @@VHERS BEGIN <idx> <pass>/<name>
  @@VHERS END <idx> <pass>/<name> rc=<n> secs=<s.cc>[ timeout]
  @@VHERS DONE                   (then poweroff -f)
<idx> is the step's index among the plan's steps (0-based, PASS lines not
counted); SKIP steps are never sent to the VM.
"""

import argparse
import bisect
import ctypes
import dataclasses
import fnmatch
import gzip
import json
import os
import re
import select
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
INIT_SCRIPT = os.path.join(TOOLS, "initramfs", "init")

KILL_GRACE = 5          # in-VM SIGTERM -> SIGKILL delay (also in the generated steps)
DEFAULT_MARGIN = 30     # host-side slack on top of TIMEOUT + KILL_GRACE
DEFAULT_BOOT_TIMEOUT = 180
GAP_TIMEOUT = 30        # END of one step -> BEGIN of the next (or DONE)
SHUTDOWN_TIMEOUT = 30   # DONE -> QEMU exit
DEFAULT_EXCLUDE = ["*.o", "*.d", "*.a", "*.cmd"]   # never wanted from --files dirs
DEFAULT_CMDLINE = "console=ttyAMA0 earlycon panic=-1 oops=panic printk.time=1"

# ---------------------------------------------------------------------------
# Plan


class PlanError(Exception):
    pass


@dataclasses.dataclass
class Step:
    index: int          # position among the plan's steps (PASS lines not counted)
    kind: str           # SH, TEST, SKIP, REQUIRE-LOG
    pass_: str
    name: str
    timeout: int | None
    arg: str            # command, skip reason or regex
    lineno: int = 0

    @property
    def full(self):
        return f"{self.pass_}/{self.name}"


PASS_NAME_RE = re.compile(r"^[A-Za-z0-9_.+:@=,-]+$")
STEP_NAME_RE = re.compile(r"^[A-Za-z0-9_.+:@=,-]+(/[A-Za-z0-9_.+:@=,-]+)*$")


def default_qemu():
    """The project's QEMU (build/qemu, fetched by tools/setup: bookworm's 7.2 runs
    stale kernel text after static-key flips), else qemu-system-aarch64 on PATH."""
    build = os.environ.get("BUILD") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")
    own = os.path.join(build, "qemu", "usr", "bin", "qemu-system-aarch64")
    return own if os.access(own, os.X_OK) else "qemu-system-aarch64"


def qemu_prefix_dir(qemu, *rel):
    """For a QEMU unpacked from .debs (bin under PREFIX/usr/bin), PREFIX/usr/REL if it
    exists; None for a system QEMU, which finds its own files."""
    if os.path.dirname(qemu) in ("", "/usr/bin", "/bin"):
        return None
    d = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(qemu))), *rel)
    return d if os.path.isdir(d) else None


def _split(line, n):
    """The first n blank-separated fields of line, then the rest (stripped, maybe '')."""
    fields = []
    rest = line.strip()
    for _ in range(n):
        if not rest:
            break
        parts = rest.split(None, 1)
        fields.append(parts[0])
        rest = parts[1].strip() if len(parts) > 1 else ""
    return fields, rest


def _unquote(s):
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        try:
            parts = shlex.split(s)
        except ValueError:
            return s
        if len(parts) == 1:
            return parts[0]
    return s


def parse_plan(text, source="<plan>"):
    """Plan text -> list of Step. Raises PlanError naming source:line."""
    steps = []
    cur_pass = None
    seen = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{lineno}"
        verb = line.split(None, 1)[0]

        def need(cond, msg):
            if not cond:
                raise PlanError(f"{where}: {msg}: {raw.strip()}")

        if verb == "PASS":
            fields, rest = _split(line, 2)
            need(len(fields) == 2 and not rest, "expected 'PASS NAME'")
            name = fields[1]
            need(PASS_NAME_RE.match(name), "bad pass name (letters, digits, _.+:@=,- only)")
            cur_pass = name
            continue
        need(verb in ("SH", "TEST", "SKIP", "REQUIRE-LOG"), "unknown verb")
        need(cur_pass is not None, f"{verb} before the first PASS")
        if verb in ("SH", "TEST"):
            fields, rest = _split(line, 3)
            need(len(fields) == 3 and rest, f"expected '{verb} NAME TIMEOUT COMMAND'")
            need(fields[2].isdigit() and int(fields[2]) > 0, "TIMEOUT must be a positive integer (seconds)")
            timeout, arg = int(fields[2]), rest
        else:
            fields, rest = _split(line, 2)
            what = "REASON" if verb == "SKIP" else "REGEX"
            need(len(fields) == 2 and rest, f"expected '{verb} NAME {what}'")
            timeout, arg = None, rest
            if verb == "REQUIRE-LOG":
                arg = _unquote(rest)
                try:
                    re.compile(arg)
                except re.error as e:
                    raise PlanError(f"{where}: bad regex ({e}): {arg}") from None
        name = fields[1]
        need(STEP_NAME_RE.match(name), "bad step name (letters, digits, _.+:@=,- and '/' only)")
        step = Step(len(steps), verb, cur_pass, name, timeout, arg, lineno)
        need(step.full not in seen, f"duplicate step {step.full}")
        seen.add(step.full)
        steps.append(step)
    return steps


def filter_steps(steps, regex):
    """Keep SH/REQUIRE-LOG steps, and TEST/SKIP steps whose PASS/NAME matches."""
    if not regex:
        return list(steps)
    r = re.compile(regex)
    return [s for s in steps if s.kind in ("SH", "REQUIRE-LOG") or r.search(s.full)]


def steps_script(steps):
    """The /vhers/steps.sh that /init sources: one vhers_step call per VM step."""
    out = ["# Generated by tools/vmrun.py from the plan; sourced by /init.",
           f"VHERS_NSTEPS={sum(1 for s in steps if s.kind != 'SKIP')}",
           "vhers_ready"]
    for s in steps:
        if s.kind == "SKIP":
            continue
        if s.kind == "REQUIRE-LOG":
            out.append(f"vhers_step {s.index} {shlex.quote(s.full)} mark 0 ''")
        else:
            out.append(f"vhers_step {s.index} {shlex.quote(s.full)} run {s.timeout} {shlex.quote(s.arg)}")
    out.append("vhers_done")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Console log -> results (pure)

MARKER_RE = re.compile(r"@@VHERS (UNAME|READY|BEGIN|END|DONE)\b ?(.*)$")
BEGIN_RE = re.compile(r"^(\d+) (\S+)")
END_RE = re.compile(r"^(\d+) (\S+) rc=(\d+) secs=([0-9.]+)( timeout)?")
HOST_RE = re.compile(r"^@@VHERS-HOST (\S+) ?(.*)$")
TS_RE = re.compile(r"\[\s*(\d+\.\d+)\](?:\[\s*[TC]\d+\])? ?")

SPLATS = [  # (kind, regex on the message part of a timestamped kernel line)
    ("panic", re.compile(r"^Kernel panic - not syncing")),
    ("oops", re.compile(r"^Internal error: |^Oops\b|^Unable to handle kernel |^kernel BUG at |"
                        r"^Unexpected kernel BRK exception|^SError Interrupt on CPU|^Bad mode in ")),
    ("hyp", re.compile(r"HYP panic|hyp panic|^\s*hyp_panic\b|Invalid host exception to nVHE hyp")),
    ("warning", re.compile(r"^WARNING: |(^|: )BUG: |^UBSAN: |^KASAN: |^KFENCE: |"
                           r"detected stalls? on CPU|self-detected stall on CPU|"
                           r"^INFO: task .* blocked for more than")),
]
# Without printk timestamps only the unmistakable ones count, at line start.
SPLATS_NO_TS = re.compile(r"^(Kernel panic - not syncing|Internal error: |Unable to handle kernel )")


def find_splat(line, any_ts_seen):
    """(kind, key, message) if line reports a kernel problem, else None."""
    ts = list(TS_RE.finditer(line))
    for i, m in enumerate(ts):
        end = ts[i + 1].start() if i + 1 < len(ts) else len(line)
        msg = line[m.end():end].rstrip()
        for kind, rx in SPLATS:
            if rx.search(msg):
                return kind, f"{m.group(1)} {msg}", msg
    if not ts and not any_ts_seen and SPLATS_NO_TS.match(line):
        return "panic" if line.startswith("Kernel panic") else "oops", None, line.strip()
    return None


@dataclasses.dataclass
class Result:
    pass_: str
    name: str
    status: str            # pass | fail | skip
    reason: str = ""
    secs: float | None = None
    output: list = dataclasses.field(default_factory=list)
    index: int | None = None   # plan step index; None for vm/boot, vm/shutdown

    @property
    def full(self):
        return f"{self.pass_}/{self.name}"

    def json(self):
        return {"pass": self.pass_, "name": self.name, "status": self.status,
                "reason": self.reason, "secs": self.secs}


SIGNALS = {int(s): s.name for s in signal.Signals}


def _exit_reason(rc):
    if rc > 128 and rc - 128 in SIGNALS:
        return f"exit {rc} (killed by {SIGNALS[rc - 128]})"
    return f"exit {rc}"


def _skip_reason(output):
    for line in reversed(output):
        m = re.search(r"#\s*SKIP\b[\s:-]*(.*)$", line, re.I) or re.search(r"\bSKIP(?:PED)?\b[\s:-]+(.*)$", line, re.I)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return "exit 4 (KSFT_SKIP)"


def _assert_detail(output):
    for i, line in enumerate(output):
        if "==== Test Assertion Failure ====" in line:
            for nxt in output[i + 1:i + 3]:
                if nxt.strip():
                    return nxt.strip()
    return ""


class LogParser:
    """Incremental console-log parser. feed() each line, then finish().

    Both return the results completed by that call, in order. A step's result
    is held back until the next step begins (or the log ends) so that kernel
    splats printed between two steps can still fail the step before.
    Deterministic: the same lines give the same results.
    """

    def __init__(self, steps):
        self.steps = list(steps)
        self.by_index = {s.index: i for i, s in enumerate(self.steps)}
        self.pos = 0            # position in self.steps of the next step to report
        self.cur = None         # [step, output, splats] of the running step
        self.held = None        # (Result, step) ended, waiting for the next BEGIN
        self.text = []          # console lines without markers, for REQUIRE-LOG
        self.ready = False
        self.done = False
        self.uname = None
        self.boot_splats = []
        self.shutdown_splats = []
        self.stray_splats = []
        self.text_len = 0       # len(self.text) at the running step's BEGIN
        self.seen_splats = set()
        self.any_ts = False
        self.panic = None
        self.host = []          # (event, detail) from @@VHERS-HOST lines
        self.qemu_rc = None
        self.protocol = []      # protocol problems (diagnostics)
        self.results = []
        self.finished = False

    # -- helpers
    def _emit(self, out, res):
        self.results.append(res)
        out.append(res)

    def _flush_held(self, out):
        if self.held:
            res, step, splats = self.held
            self.held = None
            if splats:
                res.status = "fail"
                res.reason = f"kernel: {self._splat_text(splats)} (after the step ended)" + \
                    (f"; {res.reason}" if res.reason else "")
            self._emit(out, res)

    def _emit_skips_until(self, out, stop_pos):
        """Report SKIP steps from self.pos up to stop_pos (exclusive)."""
        while self.pos < stop_pos:
            s = self.steps[self.pos]
            if s.kind == "SKIP":
                self._emit(out, Result(s.pass_, s.name, "skip", s.arg, None, [], s.index))
            else:
                self._emit(out, Result(s.pass_, s.name, "fail", "not run (no BEGIN marker: steps out of sync)",
                                       None, [], s.index))
                self.protocol.append(f"{s.full}: no BEGIN marker")
            self.pos += 1

    def _flush_boot(self, out):
        if self.boot_splats is not None:
            if self.boot_splats:
                self._emit(out, Result("vm", "boot", "fail", f"kernel: {self._splat_text(self.boot_splats)}"
                                       " (before the first step)", None, [], None))
            self.boot_splats = None

    @staticmethod
    def _splat_text(splats):
        """'<first splat line>[; then <panic line>]': the first is usually the cause."""
        first = splats[0][1]
        text = first if len(first) <= 200 else first[:197] + "..."
        panic = next((m for k, m in splats if k == "panic"), None)
        if panic and panic != first:
            text += f"; then {panic}"
        return text

    def _judge(self, step, output, splats, rc, secs, timed_out):
        res = Result(step.pass_, step.name, "pass", "", secs, output, step.index)
        if step.kind == "REQUIRE-LOG":
            if not re.search(step.arg, "\n".join(self.text[:self.text_len]), re.M):
                res.status, res.reason = "fail", f"console log has no match for /{step.arg}/"
        elif timed_out and rc > 128:      # else it exited by itself as the watchdog fired
            res.status, res.reason = "fail", f"timeout after {step.timeout}s ({_exit_reason(rc)})"
        elif rc == 0:
            pass
        elif rc == 4 and step.kind == "TEST":
            res.status, res.reason = "skip", _skip_reason(output)
        else:
            detail = _assert_detail(output) if step.kind == "TEST" else ""
            res.status, res.reason = "fail", _exit_reason(rc) + (f": {detail}" if detail else "")
        if splats:
            res.reason = f"kernel: {self._splat_text(splats)}" + (f"; {res.reason}" if res.status == "fail" else "")
            res.status = "fail"
        return res

    # -- input
    def feed(self, line):
        out = []
        line = line.rstrip("\r\n").replace("\r", "")
        h = HOST_RE.match(line)
        if h:
            self.host.append((h.group(1), h.group(2)))
            if h.group(1) == "QEMU-EXIT":
                m = re.match(r"rc=(-?\d+)", h.group(2))
                self.qemu_rc = int(m.group(1)) if m else None
            return out
        m = MARKER_RE.search(line)
        if m:
            prefix = line[:m.start()]
            if prefix.strip():
                self._feed_text(prefix)
            self._marker(m.group(1), m.group(2).strip(), out)
        else:
            self._feed_text(line)
        return out

    def _feed_text(self, line):
        self.text.append(line)
        if TS_RE.search(line):
            self.any_ts = True
        sp = find_splat(line, self.any_ts)
        if sp:
            kind, key, msg = sp
            if key is not None and key in self.seen_splats:
                sp = None           # a repeat (dmesg output), already counted
            else:
                if key is not None:
                    self.seen_splats.add(key)
                if kind == "panic" and self.panic is None:
                    self.panic = msg
        if self.cur:
            self.cur[1].append(line)
            if sp:
                self.cur[2].append((sp[0], sp[2]))
        elif sp:
            if self.held:
                self.held[2].append((sp[0], sp[2]))
            elif self.done:
                self.shutdown_splats.append((sp[0], sp[2]))
            elif self.boot_splats is not None:
                self.boot_splats.append((sp[0], sp[2]))
            else:   # between steps with nothing held (after an out-of-sync marker)
                self.stray_splats.append((sp[0], sp[2]))

    def _marker(self, what, arg, out):
        if what == "UNAME":
            self.uname = arg
        elif what == "READY":
            self.ready = True
        elif what == "BEGIN":
            m = BEGIN_RE.match(arg)
            if not m:
                self.protocol.append(f"bad BEGIN marker: {arg}")
                return
            idx, name = int(m.group(1)), m.group(2)
            self.ready = True
            if self.cur:            # END marker lost (garbled console line?)
                step, output, splats = self.cur
                self.cur = None
                res = self._judge(step, output, splats, 1, None, False)
                res.status = "fail"
                res.reason = "END marker missing (console garbled?)" + (f"; {res.reason}" if splats else "")
                self.held = (res, step, [])
                self.pos = self.by_index[step.index] + 1
            self._flush_held(out)
            self._flush_boot(out)
            pos = self.by_index.get(idx)
            if pos is None or self.steps[pos].full != name or pos < self.pos:
                self.protocol.append(f"unexpected BEGIN {idx} {name} (plan and VM out of sync)")
                return
            self._emit_skips_until(out, pos)
            self.text_len = len(self.text)
            self.cur = [self.steps[pos], [], []]
        elif what == "END":
            m = END_RE.match(arg)
            if not m or not self.cur or int(m.group(1)) != self.cur[0].index:
                self.protocol.append(f"unexpected END {arg}")
                return
            step, output, splats = self.cur
            self.cur = None
            res = self._judge(step, output, splats, int(m.group(3)), float(m.group(4)), bool(m.group(5)))
            self.held = (res, step, [])
            self.pos = self.by_index[step.index] + 1
        elif what == "DONE":
            self._flush_held(out)
            self._flush_boot(out)
            if self.cur:
                self.protocol.append("DONE while a step was running")
            self._emit_skips_until(out, len(self.steps))
            self.done = True

    def _death_reason(self):
        """Why the VM stopped early, from the host's notes and the log."""
        timeouts = [d for e, d in self.host if e == "TIMEOUT"]
        if self.panic:
            return "kernel panic: " + re.sub(r"^Kernel panic - not syncing: ", "", self.panic)
        if timeouts:
            m = re.match(r"step (\S+): ", timeouts[0])
            return f"hang in {m.group(1)}" if m else f"host timeout: {timeouts[0]}"
        if any(e == "INTERRUPTED" for e, _ in self.host):
            return "interrupted"
        if self.qemu_rc is not None:
            extra = next((d for e, d in self.host if e == "QEMU-STDERR"), "")
            return f"QEMU exited rc={self.qemu_rc}" + (f": {extra}" if extra else "")
        return "console log ended"

    def finish(self):
        out = []
        if self.finished:
            return out
        self.finished = True
        why = self._death_reason()
        if self.cur:
            step, output, splats = self.cur
            self.cur = None
            step_timeout = next((d for e, d in self.host if e == "TIMEOUT" and d.startswith("step ")), None)
            if self.panic or any(k in ("panic", "oops", "hyp") for k, _ in splats):
                reason = f"kernel: {self._splat_text(splats)}" if splats else f"VM died: {why}"
            elif step_timeout:
                reason = f"hang: no END marker ({step_timeout})"
            elif self.qemu_rc is not None and not any(e == "TIMEOUT" for e, _ in self.host):
                reason = f"VM died during the step: {why}" + \
                    (f"; kernel: {self._splat_text(splats)}" if splats else "")
            else:
                reason = "hang: console log ends inside the step" + \
                    (f" ({why})" if why != "console log ended" else "")
                if splats:
                    reason += f"; kernel: {self._splat_text(splats)}"
            self.held = (Result(step.pass_, step.name, "fail", reason, None, output, step.index), step, [])
            self.pos = self.by_index[step.index] + 1
        self._flush_held(out)
        if not self.done:
            if self.boot_splats and not self.ready:
                if self.boot_splats[0][1] != self.panic:    # the cause, if not the panic itself
                    why += f"; kernel: {self._splat_text(self.boot_splats)}"
                self.boot_splats = []
            self._flush_boot(out)
            where = "" if self.ready else " during boot"
            while self.pos < len(self.steps):
                s = self.steps[self.pos]
                if s.kind == "SKIP":
                    self._emit(out, Result(s.pass_, s.name, "skip", s.arg, None, [], s.index))
                else:
                    self._emit(out, Result(s.pass_, s.name, "fail", f"not run (VM died{where}: {why})",
                                           None, [], s.index))
                self.pos += 1
        else:
            problems = []
            if self.shutdown_splats:
                problems.append(f"kernel: {self._splat_text(self.shutdown_splats)} (after the last step)")
            if any(e == "TIMEOUT" and d.startswith("shutdown") for e, d in self.host):
                problems.append("VM did not power off")
            if problems:
                self._emit(out, Result("vm", "shutdown", "fail", "; ".join(problems), None, [], None))
        if self.stray_splats:
            self._emit(out, Result("vm", "kernel", "fail", f"kernel: {self._splat_text(self.stray_splats)}"
                                   " (outside any step)", None, [], None))
        return out

    @property
    def complete(self):
        return self.done and self.pos == len(self.steps) and not self.protocol


def parse_log(text, steps):
    """Console log text + plan steps -> (results, parser). The verdict logic, pure."""
    p = LogParser(steps)
    for line in text.splitlines():
        p.feed(line)
    p.finish()
    return p.results, p


def summarize(results):
    n = {"pass": 0, "fail": 0, "skip": 0}
    for r in results:
        n[r.status] += 1
    return n


def tap_line(num, r):
    if r.status == "pass":
        return f"ok {num} - {r.full}"
    if r.status == "skip":
        return f"ok {num} - {r.full} # SKIP {r.reason}"
    return f"not ok {num} - {r.full} # {r.reason}"


def summary_line(results):
    n = summarize(results)
    return f"{n['pass']} passed, {n['fail']} failed, {n['skip']} skipped"


def log_name(full):
    return full.replace("/", "__") + ".log"


# ---------------------------------------------------------------------------
# Initramfs (newc cpio, gzip)

class Cpio:
    """Minimal newc ("070701") cpio archive writer."""

    def __init__(self, fileobj):
        self.f = fileobj
        self.ino = 1
        self.names = set()

    def _entry(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        name = name.lstrip("/")
        assert name not in self.names, name
        self.names.add(name)
        nb = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0]
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
        self.f.write(hdr + nb + b"\0" * (-(len(hdr) + len(nb)) % 4))
        self.f.write(data + b"\0" * (-len(data) % 4))

    def dir(self, name, perm=0o755):
        if name.lstrip("/") not in self.names:
            self._entry(name, stat.S_IFDIR | perm, nlink=2)

    def dirs_for(self, path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def file(self, name, data, perm=0o644):
        self.dirs_for(name)
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name, target):
        self.dirs_for(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor, perm=0o600):
        self.dirs_for(name)
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def tree(self, src, dest, exclude=()):
        """Copy directory src's contents under dest (regular files, dirs, symlinks),
        leaving out what matches an exclude glob (on the name or the path in src)."""
        def excluded(rel):
            return any(fnmatch.fnmatch(os.path.basename(rel), g) or fnmatch.fnmatch(rel, g) for g in exclude)

        for root, dirs, files in os.walk(src):
            rel = os.path.relpath(root, src)
            base = dest if rel == "." else f"{dest}/{rel}"
            self.dir(base)
            dirs[:] = sorted(d for d in dirs if not excluded(os.path.normpath(os.path.join(rel, d))))
            files = [f for f in files if not excluded(os.path.normpath(os.path.join(rel, f)))]
            for d in list(dirs):
                p = os.path.join(root, d)
                if os.path.islink(p):
                    self.symlink(f"{base}/{d}", os.readlink(p))
                    dirs.remove(d)
            for fn in sorted(files):
                p = os.path.join(root, fn)
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    self.symlink(f"{base}/{fn}", os.readlink(p))
                elif stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        self.file(f"{base}/{fn}", f.read(), stat.S_IMODE(st.st_mode))

    def close(self):
        self._entry("TRAILER!!!", 0, nlink=1)


def build_initramfs(path, busybox, init, steps_sh, plan_text, module=None, files=(), exclude=(), level=1):
    """Write the gzip'd newc initramfs; returns the number of entries."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0) as gz:
        c = Cpio(gz)
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run",
                  "root", "etc", "opt", "vhers"):
            c.dir(d)
        c.chardev("dev/console", 5, 1)
        c.chardev("dev/null", 1, 3, 0o666)
        with open(busybox, "rb") as f:
            c.file("bin/busybox", f.read(), 0o755)
        c.symlink("bin/sh", "busybox")
        with open(init, "rb") as f:
            c.file("init", f.read(), 0o755)
        c.file("vhers/plan", plan_text.encode())
        c.file("vhers/steps.sh", steps_sh.encode())
        if module:
            with open(module, "rb") as f:
                c.file("opt/vhe_rs.ko", f.read())
        for d in files:
            c.tree(d, "opt", exclude)
        c.close()
        return c.ino - 1


# ---------------------------------------------------------------------------
# Live run

STALL_RE = re.compile(r"detected stalls? on CPU|self-detected stall on CPU|"
                      r"blocked for more than \d+ seconds|soft lockup")
CPU_RE = re.compile(r"CPU#(\d+)")
PC_RE = re.compile(r"\bPC=([0-9a-fA-F]+)")
PSTATE_RE = re.compile(r"PSTATE=\S+\s+(\S+\s+(?:N?S\s+)?EL\d[ht])")


def parse_cpu_dump(text):
    """[(cpu, pc, pstate flags)] from QEMU's `info registers -a` (aarch64)."""
    out, cpu, pc = [], None, None
    for line in text.splitlines():
        m = CPU_RE.search(line)
        if m:
            cpu, pc = int(m.group(1)), None
        m = PC_RE.search(line)
        if m and cpu is not None:
            pc = int(m.group(1), 16)
        m = PSTATE_RE.search(line)
        if m and cpu is not None and pc is not None:
            out.append((cpu, pc, m.group(1).strip()))
            cpu = pc = None
    return out


def load_system_map(kernel):
    """Sorted [(addr, name)] of text symbols from the System.map of the tree that
    built `kernel` (KDIR/arch/arm64/boot/Image), or [] if there is none."""
    if not kernel:
        return []
    path = os.path.join(os.path.dirname(os.path.abspath(kernel)), "..", "..", "..", "System.map")
    syms = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[1] in "tTwW":
                    syms.append((int(parts[0], 16), parts[2]))
    except OSError:
        return []
    syms.sort()
    return syms


def symbolize(syms, pc):
    i = bisect.bisect_right(syms, (pc, "\uffff")) - 1
    if i < 0 or i + 1 >= len(syms) or pc - syms[i][0] > 0x100000:
        return "(not in vmlinux: a module, the guest or user space)"
    return f"({syms[i][1]}+{pc - syms[i][0]:#x})"


def _pdeathsig():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Runner:
    def __init__(self, args, steps, plan_text):
        self.dumps, self.symbols = 0, None
        self.a = args
        self.steps = steps
        self.plan_text = plan_text
        self.out = args.out
        self.num = 0
        self.t0 = None
        self.log = None

    def say(self, s=""):
        print(s, flush=True)

    def report(self, results):
        for r in results:
            self.num += 1
            self.say(tap_line(self.num, r))
            if r.status == "fail" and r.output:
                tail = r.output[-self.a.diag_lines:]
                if len(r.output) > len(tail):
                    self.say(f"# ... ({len(r.output) - len(tail)} lines before; see {log_name(r.full)})")
                for line in tail:
                    self.say(f"#   {line}")
            if r.index is not None and (r.output or r.secs is not None):
                with open(os.path.join(self.out, log_name(r.full)), "w") as f:
                    f.write("\n".join(r.output) + ("\n" if r.output else ""))

    def host_note(self, event, detail=""):
        line = f"@@VHERS-HOST {event} {detail}".rstrip()
        self.log.write(line + "\n")
        self.log.flush()
        return line

    def qemu_cmd(self, initrd):
        cmdline = DEFAULT_CMDLINE + (" " + self.a.append if self.a.append else "")
        cmd = [self.a.qemu, "-M", "virt,virtualization=on,gic-version=3", "-cpu", self.a.cpu,
               "-smp", str(self.a.smp), "-m", self.a.mem, "-nographic", "-no-reboot", "-nic", "none",
               "-kernel", self.a.kernel, "-initrd", initrd, "-append", cmdline]
        data = qemu_prefix_dir(self.a.qemu, "share", "qemu")
        if data:
            cmd += ["-L", data]
        if not any("-monitor" in x for x in self.a.extra_qemu_args or []):
            cmd += ["-monitor", f"unix:{self.monitor_path()},server=on,wait=off"]
        for x in self.a.extra_qemu_args or []:
            cmd += shlex.split(x)
        return cmd

    def monitor_path(self):
        # sun_path holds 108 bytes: fall back to /tmp for a deep output directory.
        path = os.path.join(self.out, "monitor.sock")
        return path if len(path) < 100 else f"/tmp/vhers-monitor-{os.getpid()}.sock"

    def dump_cpus(self, why):
        """Where each vCPU is (QEMU monitor `info registers -a`), saved to
        cpus-N.txt and summarized in the console log as @@VHERS-HOST CPU lines
        with System.map symbols: what a hang or stall leaves to go on."""
        if self.dumps >= 3 or not os.path.exists(self.monitor_path()):
            return
        self.dumps += 1
        text = ""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sk:
                sk.settimeout(5)
                sk.connect(self.monitor_path())
                sk.sendall(b"info registers -a\n")
                end = time.monotonic() + 5
                while time.monotonic() < end:
                    try:
                        chunk = sk.recv(65536)
                    except socket.timeout:
                        break
                    if not chunk:
                        break
                    text += chunk.decode("utf-8", "replace")
                    if text.count("PSTATE=") >= self.a.smp:
                        break
        except OSError as e:
            self.host_note("CPU-DUMP", f"{why}: monitor: {e}")
            return
        with open(os.path.join(self.out, f"cpus-{self.dumps}.txt"), "w") as f:
            f.write(text)
        for cpu, pc, pstate in parse_cpu_dump(text):
            self.host_note("CPU", f"{why}: CPU#{cpu} PC={pc:016x} {self.symbol(pc)} {pstate}")

    def symbol(self, pc):
        if self.symbols is None:
            self.symbols = load_system_map(self.a.kernel)
        return symbolize(self.symbols, pc)

    def clean_out(self):
        os.makedirs(self.out, exist_ok=True)
        for fn in os.listdir(self.out):
            if fn.endswith(".log") or fn in ("results.json", "qemu.stderr", "qemu.cmd") or \
               re.fullmatch(r"cpus-\d+\.txt", fn):
                os.unlink(os.path.join(self.out, fn))

    def run(self):
        a = self.a
        self.clean_out()
        initrd = os.path.join(self.out, "initramfs.cpio.gz")
        t = time.monotonic()
        n = build_initramfs(initrd, a.busybox, INIT_SCRIPT, steps_script(self.steps), self.plan_text,
                            a.module, a.files, DEFAULT_EXCLUDE + a.exclude)
        cmd = self.qemu_cmd(initrd)
        with open(os.path.join(self.out, "qemu.cmd"), "w") as f:
            f.write(shlex.join(cmd) + "\n")
        vm_steps = [s for s in self.steps if s.kind != "SKIP"]
        total = a.timeout_total or (a.timeout_boot + SHUTDOWN_TIMEOUT +
                                    sum(s.timeout + KILL_GRACE + a.margin for s in vm_steps if s.timeout) +
                                    GAP_TIMEOUT * 2)
        self.say("TAP version 13")
        self.say(f"# vmrun: {len(self.steps)} steps from {a.plan}; initramfs {n} entries, "
                 f"{os.path.getsize(initrd) / 1e6:.1f} MB ({time.monotonic() - t:.1f} s); "
                 f"timeout-total {total} s; output in {self.out}")

        parser = LogParser(self.steps)
        self.log = open(os.path.join(self.out, "console.log"), "w", encoding="utf-8")
        self.host_note("START", shlex.join(cmd))
        stderr = open(os.path.join(self.out, "qemu.stderr"), "wb")
        self.t0 = time.monotonic()
        env = dict(os.environ)
        mods = qemu_prefix_dir(a.qemu, "lib", "x86_64-linux-gnu", "qemu")
        if mods:
            # Its own modules, not the system QEMU's (which it would refuse, noisily).
            env["QEMU_MODULE_DIR"] = mods
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                start_new_session=True, preexec_fn=_pdeathsig, env=env)
        fd = proc.stdout.fileno()
        buf = b""
        deadline_total = self.t0 + total
        phase, deadline = "boot", self.t0 + a.timeout_boot
        ready_at = None
        killed = None
        eof = False

        def feed(line):
            nonlocal phase, deadline, ready_at
            self.log.write(line + "\n")
            if STALL_RE.search(line):
                self.dump_cpus("stall")
            if a.console:
                print(line, file=sys.stderr, flush=True)
            self.report(parser.feed(line))
            now = time.monotonic()
            m = MARKER_RE.search(line)
            if not m:
                return
            if m.group(1) == "READY" and ready_at is None:
                ready_at = now - self.t0
                self.say(f"# boot: READY after {ready_at:.1f} s (kernel {parser.uname or '?'})")
                phase, deadline = "gap", now + GAP_TIMEOUT
            elif m.group(1) == "BEGIN" and parser.cur:
                s = parser.cur[0]
                phase, deadline = f"step {s.full}", now + (s.timeout or 0) + KILL_GRACE + a.margin
                if ready_at is None:
                    ready_at = now - self.t0
            elif m.group(1) == "END":
                phase, deadline = "gap", now + GAP_TIMEOUT
            elif m.group(1) == "DONE":
                phase, deadline = "shutdown", now + SHUTDOWN_TIMEOUT

        try:
            while not eof:
                now = time.monotonic()
                limit = min(deadline, deadline_total)
                if now >= limit:
                    if deadline_total <= deadline:
                        killed = ("TIMEOUT", f"total: --timeout-total {total}s reached during {phase}")
                    elif phase.startswith("step "):
                        s = parser.cur[0]
                        killed = ("TIMEOUT", f"step {s.full}: no END within "
                                             f"{s.timeout}+{KILL_GRACE}+{a.margin}s")
                    else:
                        killed = ("TIMEOUT", f"{phase}: nothing within "
                                  f"{a.timeout_boot if phase == 'boot' else GAP_TIMEOUT}s")
                    self.dump_cpus("hang")
                    break
                r, _, _ = select.select([fd], [], [], min(limit - now, 1.0))
                if not r:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    eof = True
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    feed(raw.decode("utf-8", "replace").replace("\r", ""))
        except KeyboardInterrupt:
            killed = ("INTERRUPTED", "by the user")
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
            rc = proc.wait()
            rest = proc.stdout.read() or b""
            proc.stdout.close()
            buf += rest
            for raw in buf.split(b"\n"):
                if raw.strip():
                    feed(raw.decode("utf-8", "replace").replace("\r", ""))
            stderr.close()
        if killed:
            self.report(parser.feed(self.host_note(*killed)))
        err = ""
        try:
            with open(os.path.join(self.out, "qemu.stderr"), errors="replace") as f:
                err = next((x.strip() for x in f if x.strip()), "")
        except OSError:
            pass
        if err and rc != 0:
            self.report(parser.feed(self.host_note("QEMU-STDERR", err)))
        self.report(parser.feed(self.host_note("QEMU-EXIT", f"rc={rc} after={time.monotonic() - self.t0:.1f}s")))
        self.report(parser.finish())
        self.log.close()

        results = parser.results
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump([r.json() for r in results], f, indent=1)
            f.write("\n")
        for p in parser.protocol:
            self.say(f"# protocol: {p}")
        wall = time.monotonic() - self.t0
        self.say(f"# vm: {'complete' if parser.complete else 'INCOMPLETE'}; QEMU rc={rc}; "
                 f"boot {ready_at:.1f} s; total {wall:.1f} s" if ready_at is not None else
                 f"# vm: INCOMPLETE (never became ready); QEMU rc={rc}; total {wall:.1f} s")
        self.say(f"1..{self.num}")
        self.say(summary_line(results))
        if killed and killed[0] == "INTERRUPTED":
            return 130
        return 0 if parser.complete and summarize(results)["fail"] == 0 else 1


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
    return 0 if p.complete and summarize(results)["fail"] == 0 else 1


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Boot the vhe-rs test VM and run a plan (format: see the top of this file).",
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
        with open(a.plan) as f:
            plan_text = f.read()
        steps = parse_plan(plan_text, a.plan)
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
    for d in a.files:
        if not os.path.isdir(d):
            print(f"vmrun: --files {d}: not a directory", file=sys.stderr)
            return 2
    if not a.out:
        a.out = os.path.join(os.path.dirname(TOOLS), "build", "vm",
                             os.path.splitext(os.path.basename(a.plan))[0])
    return Runner(a, steps, plan_text).run()


if __name__ == "__main__":
    sys.exit(main())
