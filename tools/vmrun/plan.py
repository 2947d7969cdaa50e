# SPDX-License-Identifier: GPL-2.0
"""The test plan format, in one place: parse_plan() reads it, PlanWriter writes
it (tools/mkplan.py, tools/bench), filter_steps() narrows it.

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
  EXPECT-PANIC NAME REGEX           the plan's last step, after an SH or TEST (its
                                    trigger): the kernel must panic during the
                                    trigger, the VM dying there; pass iff it did and
                                    REGEX (Python re, multi-line) matches the console
                                    from the trigger's start on. The trigger then
                                    passes unless it printed another splat before
                                    the panic (a panic anywhere else, or none, fails
                                    both). Never sent to the VM; quotes as REQUIRE-LOG

A step needs a PASS before it. NAME may contain '/' (e.g. vhe-rs/smoke, not in
a PASS name) but no blanks; PASS/NAME must be unique. TIMEOUT is in seconds.
Steps run in order with cwd /tmp and stdin /dev/null, each in its own session;
at TIMEOUT its process group gets SIGTERM, 5 s later SIGKILL (if that kills
it: a failure "timeout"). --filter REGEX keeps only the TEST and SKIP steps whose
PASS/NAME matches (re.search); SH, REQUIRE-LOG and EXPECT-PANIC steps always run.

A PlanWriter checks what it writes: parse_plan() must read it back as the very
steps it was given (a REQUIRE-LOG regex that parsing would change is quoted).
"""

import dataclasses
import re
import shlex


class PlanError(Exception):
    pass


# Steps the host judges alone: never sent to the VM.
HOST_STEPS = ("SKIP", "EXPECT-PANIC")


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
        need(verb in ("SH", "TEST", "SKIP", "REQUIRE-LOG", "EXPECT-PANIC"), "unknown verb")
        need(not steps or steps[-1].kind != "EXPECT-PANIC", "EXPECT-PANIC must be the last step")
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
            if verb == "EXPECT-PANIC":
                need(steps and steps[-1].kind in ("SH", "TEST"), "EXPECT-PANIC must follow an SH or TEST step")
            if verb in ("REQUIRE-LOG", "EXPECT-PANIC"):
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


def read_plan(path):
    """(text, steps) of the plan file at path. Raises OSError or PlanError."""
    with open(path) as f:
        text = f.read()
    return text, parse_plan(text, path)


def filter_steps(steps, regex):
    """Keep SH/REQUIRE-LOG/EXPECT-PANIC steps, and TEST/SKIP steps whose PASS/NAME matches."""
    if not regex:
        return list(steps)
    r = re.compile(regex)
    return [s for s in steps if s.kind in ("SH", "REQUIRE-LOG", "EXPECT-PANIC") or r.search(s.full)]


MODULE = "/opt/vhe_rs.ko"   # where the initramfs puts --module


class PlanWriter:
    """Builds a plan's text step by step; each method returns self.

    text() and write() raise PlanError unless parse_plan() reads the text back
    as exactly the steps given (names, timeouts, commands, reasons, regexes).
    """

    def __init__(self, comment=None):
        self.lines = [f"# {comment}"] if comment else []
        self.want = []          # (kind, pass, name, timeout, arg) per step
        self.pass_name = None

    def _add(self, verb, name, timeout, arg, written=None):
        fields = [verb, name] + ([str(timeout)] if timeout is not None else []) + [written or arg]
        line = " ".join(fields)
        if len(line.splitlines()) != 1:
            raise PlanError(f"a plan step is one line: {line!r}")
        self.lines.append(line)
        self.want.append((verb, self.pass_name, name, timeout, arg))
        return self

    def pass_(self, name):
        self.lines.append(f"PASS {name}")
        self.pass_name = name
        return self

    def sh(self, name, timeout, command):
        return self._add("SH", name, timeout, command.strip())

    def test(self, name, timeout, command):
        return self._add("TEST", name, timeout, command.strip())

    def skip(self, name, reason):
        return self._add("SKIP", name, None, reason.strip())

    def require_log(self, name, regex, verb="REQUIRE-LOG"):
        quote = regex != regex.strip() or _unquote(regex) != regex
        return self._add(verb, name, None, regex, shlex.quote(regex) if quote else None)

    def expect_panic(self, name, regex):
        return self.require_log(name, regex, "EXPECT-PANIC")

    # Steps the generated plans share (make check's and tools/bench's).
    def vhe_mode(self):
        """The host kernel booted in VHE mode (every pass needs it)."""
        return self.require_log("vhe-mode", "VHE mode initialized successfully")

    def load_module(self, params=""):
        cmd = f"insmod {MODULE}" + (f" {params}" if params else "")
        return self.sh("insmod", 60, cmd).require_log("module-loaded", "vhe_rs: loaded")

    def unload_module(self):
        """Its statistics (no `bug_` counter above 0: what the module found
        wrong in KVM or in itself, counted where it cannot WARN), then rmmod,
        which must log its line."""
        return (self.sh("stats", 10, "cat /sys/kernel/debug/vhe_rs/stats /sys/kernel/debug/vhe_rs/exits; "
                        "! grep -E '^bug_[a-z0-9_]+ [1-9]' /sys/kernel/debug/vhe_rs/stats")
                .sh("rmmod", 60, "rmmod vhe_rs")
                .require_log("module-unloaded", "vhe_rs: unloaded"))

    def text(self):
        text = "\n".join(self.lines) + "\n"
        got = [(s.kind, s.pass_, s.name, s.timeout, s.arg) for s in parse_plan(text, "<written plan>")]
        for g, w in zip(got + [None] * len(self.want), self.want):
            if g != w:
                raise PlanError(f"written plan does not read back: {w} became {g}")
        return text

    def write(self, path):
        text = self.text()
        with open(path, "w") as f:
            f.write(text)
