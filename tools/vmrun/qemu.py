# SPDX-License-Identifier: GPL-2.0
"""The QEMU driver: Runner boots the VM, reads its console live, reports TAP.

QEMU runs as virt,virtualization=on,gic-version=3, -cpu max, -smp 2, -m 4G,
-nic none; kernel command line DEFAULT_CMDLINE + --append. The console
(ttyAMA0: kernel messages and test output in one stream) is read live, fed to
verdicts.LogParser and saved as OUT/console.log with `@@VHERS-HOST` lines for
what the host did. The VM's /init sets console_loglevel 8, so every kernel
message reaches the stream. A step's deadline is TIMEOUT + KILL_GRACE +
--margin from its BEGIN marker; boot, the gaps between steps and the shutdown
have their own (DEFAULT_BOOT_TIMEOUT, GAP_TIMEOUT, SHUTDOWN_TIMEOUT).

Hangs and stalls
----------------
QEMU's monitor listens on OUT/monitor.sock. At the first RCU stall, soft
lockup or hung-task report, and again when a hang is declared (before QEMU is
killed), the runner asks it for every vCPU's registers (`info registers -a`),
saves the answer as OUT/cpus-N.txt and writes one `@@VHERS-HOST CPU` line per
vCPU into the console log: its PC, the vmlinux symbol for it (from the
System.map next to --kernel's tree) and its PSTATE (exception level). Those
lines end up in the failing step's diagnostics.
"""

import bisect
import ctypes
import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import time

from vmrun.initramfs import DEFAULT_EXCLUDE, INIT_SCRIPT, append_archives, build_initramfs, steps_script
from vmrun.verdicts import (MARKER_RE, STALL_RE, LogParser, exit_status, log_name, summary_line,
                            tap_line)

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KILL_GRACE = 5          # in-VM SIGTERM -> SIGKILL delay (also in the generated steps)
DEFAULT_MARGIN = 30     # host-side slack on top of TIMEOUT + KILL_GRACE
DEFAULT_BOOT_TIMEOUT = 180
GAP_TIMEOUT = 30        # END of one step -> BEGIN of the next (or DONE)
SHUTDOWN_TIMEOUT = 30   # DONE -> QEMU exit
DEFAULT_CMDLINE = "console=ttyAMA0 earlycon panic=-1 oops=panic printk.time=1"


def default_qemu():
    """The project's QEMU (build/qemu, fetched by tools/setup: bookworm's 7.2 runs
    stale kernel text after static-key flips), else qemu-system-aarch64 on PATH."""
    build = os.environ.get("BUILD") or os.path.join(TOP, "build")
    own = os.path.join(build, "qemu", "usr", "bin", "qemu-system-aarch64")
    return own if os.access(own, os.X_OK) else "qemu-system-aarch64"


def qemu_prefix_dir(qemu, *rel):
    """For a QEMU unpacked from .debs (bin under PREFIX/usr/bin), PREFIX/usr/REL if it
    exists; None for a system QEMU, which finds its own files."""
    if os.path.dirname(qemu) in ("", "/usr/bin", "/bin"):
        return None
    d = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(qemu))), *rel)
    return d if os.path.isdir(d) else None



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
        append_archives(initrd, getattr(a, "extra_cpio", None) or [])
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

        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump([r.json() for r in parser.results], f, indent=1)
            f.write("\n")
        for p in parser.protocol:
            self.say(f"# protocol: {p}")
        wall = time.monotonic() - self.t0
        self.say(f"# vm: {'complete' if parser.complete else 'INCOMPLETE'}; QEMU rc={rc}; "
                 f"boot {ready_at:.1f} s; total {wall:.1f} s" if ready_at is not None else
                 f"# vm: INCOMPLETE (never became ready); QEMU rc={rc}; total {wall:.1f} s")
        self.say(f"1..{self.num}")
        self.say(summary_line(parser.results))
        if killed and killed[0] == "INTERRUPTED":
            return 130
        return exit_status(parser)

