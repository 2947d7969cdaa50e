# SPDX-License-Identifier: GPL-2.0
"""Console log + plan -> verdicts (pure): LogParser, parse_log(), TAP lines.

Verdicts
--------
A kernel splat on the console (timestamped line starting with `Kernel panic`,
`Internal error:`, `Oops`, `Unable to handle kernel`, `kernel BUG at`,
`WARNING:`, `BUG:`, stall/hung-task reports, or containing `HYP panic`/
`hyp_panic`) fails the step during which it is printed (but not on a line
starting `guest| `: a nested guest's console, see GUEST_PREFIX), or the step just
before it if it comes between two steps; one printed before the first step or
after the last is reported as an extra failed test vm/boot or vm/shutdown.
The same line seen again (e.g. in `dmesg` output) does not count twice.
A step whose END marker does not arrive within TIMEOUT + 5 s + --margin is
reported `not ok ... # hang` and QEMU is killed; steps not reached when the VM
dies (panic, hang, QEMU exit, --timeout-total) are `not ok ... # not run (VM
died: why)`. The kernel runs with oops=panic (an Oops stops the run) but a
WARNING does not panic. If a kernel message lands inside an END marker (the
console interleaves), that step fails "END marker missing" and the run goes on.

An expected panic: a plan ending in EXPECT-PANIC (tools/vmrun/plan.py) wants
the kernel to panic during the step before it (the trigger). A panic there,
the VM dying, is then not a failure: the trigger passes unless a splat came
before the panic's first line (`Kernel panic` or `HYP panic`; what follows is
the panic's), and EXPECT-PANIC passes iff its regex matches the console from
the trigger's BEGIN on; the run is complete. Any other ending (no panic, one
elsewhere) fails EXPECT-PANIC as any step that did not happen.

Results are a pure function of the console log and the plan (parse_log), which
is what tools/tests checks and what `--reparse` recomputes.

Console protocol (written by /init, tools/initramfs/init, one marker a line):
  @@VHERS UNAME <release>        @@VHERS READY steps=<n>
  @@VHERS BEGIN <idx> <pass>/<name>
  @@VHERS END <idx> <pass>/<name> rc=<n> secs=<s.cc>[ timeout]
  @@VHERS DONE                   (then poweroff -f)
<idx> is the step's index among the plan's steps (0-based, PASS lines not
counted); SKIP steps are never sent to the VM. The host adds its own lines,
`@@VHERS-HOST EVENT DETAIL` (START, TIMEOUT, CPU, QEMU-STDERR, QEMU-EXIT, ...),
to the saved console log; the parser reads them too.
"""

import dataclasses
import re
import signal

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
# A line starting with this is a nested guest's console, shown by a step
# (tools/vmm/vmm-run runs a Linux guest under QEMU -accel kvm inside the VM): a
# kernel splat there is the guest kernel's, not this kernel's, and is left to the
# step's own verdict.
GUEST_PREFIX = "guest| "
# Without printk timestamps only the unmistakable ones count, at line start.
SPLATS_NO_TS = re.compile(r"^(Kernel panic - not syncing|Internal error: |Unable to handle kernel )")
# Stalls, lockups and hung tasks: the host then asks QEMU where each vCPU is.
STALL_RE = re.compile(r"detected stalls? on CPU|self-detected stall on CPU|"
                      r"blocked for more than \d+ seconds|soft lockup")


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
        # EXPECT-PANIC: the step, and its trigger (the one before it).
        last = self.steps[-1] if self.steps else None
        self.expect = last if last is not None and last.kind == "EXPECT-PANIC" else None
        self.trigger = self.steps[-2] if self.expect is not None and len(self.steps) > 1 else None
        self.expect_met = False

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
            elif s.kind == "EXPECT-PANIC":      # never sent: reached at DONE
                self._emit(out, Result(s.pass_, s.name, "fail", "no kernel panic: the VM ran the plan to its end",
                                       None, [], s.index))
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
        if line.startswith(GUEST_PREFIX):
            # A nested guest's console (tools/vmm/vmm-run): its kernel's messages are
            # not this kernel's; the step that ran it judges them itself.
            if self.cur:
                self.cur[1].append(line)
            return
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
        if self.cur and self.panic and self.cur[0] is self.trigger:
            self._expected_panic(out)
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

    def _expected_panic(self, out):
        """The trigger of EXPECT-PANIC panicked, as the plan wants: both judged."""
        step, output, splats = self.cur
        self.cur = None
        first = next((i for i, (k, _) in enumerate(splats) if k in ("panic", "hyp")), len(splats))
        res = Result(step.pass_, step.name, "pass", "", None, output, step.index)
        if first:       # something else went wrong before the panic
            res.status, res.reason = "fail", f"kernel: {self._splat_text(splats[:first])} (before the expected panic)"
        self._emit(out, res)
        e = self.expect
        text = "\n".join(self.text[self.text_len:])
        if re.search(e.arg, text, re.M):
            self._emit(out, Result(e.pass_, e.name, "pass", "", None, [], e.index))
        else:
            self._emit(out, Result(e.pass_, e.name, "fail", f"the kernel panicked ({self.panic}), but its console "
                                   f"has no match for /{e.arg}/", None, [], e.index))
        self.pos = len(self.steps)
        self.expect_met = True

    @property
    def complete(self):
        return (self.done or self.expect_met) and self.pos == len(self.steps) and not self.protocol


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


def exit_status(parser):
    """0 iff the plan ran to its end and nothing failed, else 1."""
    return 0 if parser.complete and summarize(parser.results)["fail"] == 0 else 1


def log_name(full):
    return full.replace("/", "__") + ".log"

