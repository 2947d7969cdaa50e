# SPDX-License-Identifier: GPL-2.0
"""Tests of the Linux-guest tools: tools/vmm/payload.py (which libraries the loader
maps, from the ELF files), tools/linux-guest (the guest's expected checksums, the
figures of the macro benchmark) and vmrun's --extra-cpio (archives appended to
the initramfs).

  python3 -m unittest discover -s tools/tests -v
"""
import gzip
import hashlib
import importlib.util
import io
import os
import struct
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
sys.path.insert(0, TOOLS)
sys.path.insert(0, HERE)
import scripts  # noqa: E402
from vmrun.initramfs import Cpio, append_archives  # noqa: E402

spec = importlib.util.spec_from_file_location("vmm_payload", os.path.join(TOOLS, "vmm", "payload.py"))
payload = importlib.util.module_from_spec(spec)
spec.loader.exec_module(payload)
lg = scripts.load("linux-guest", "linux_guest")
bench = scripts.load("bench", "bench_tool")


def make_elf(interp=None, needed=(), soname=None, machine=183):
    """A minimal 64-bit little-endian ELF: one PT_LOAD covering the file (vaddr
    0x400000), PT_INTERP, PT_DYNAMIC with DT_STRTAB, DT_NEEDED..., DT_SONAME."""
    strtab = b"\0"
    offs = {}
    for s in list(needed) + ([soname] if soname else []):
        offs[s] = len(strtab)
        strtab += s.encode() + b"\0"
    phnum = 3 if interp else 2
    ehsize, phsz = 64, 56
    interp_b = (interp.encode() + b"\0") if interp else b""
    dyn_entries = [(5, 0)] + [(1, offs[n]) for n in needed] + ([(14, offs[soname])] if soname else []) + [(0, 0)]
    hdr_end = ehsize + phnum * phsz
    interp_off = hdr_end
    str_off = interp_off + len(interp_b)
    dyn_off = (str_off + len(strtab) + 7) & ~7
    size = dyn_off + 16 * len(dyn_entries)
    base = 0x400000
    dyn_entries[0] = (5, base + str_off)
    out = bytearray(size)
    out[:16] = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    struct.pack_into("<HHIQQQIHHHHHH", out, 16, 3, machine, 1, 0, ehsize, 0, 0, ehsize, phsz, phnum, 64, 0, 0)
    ph = [(1, 5, 0, base, base, size, size, 0x1000)]
    if interp:
        ph.append((3, 4, interp_off, base + interp_off, base + interp_off, len(interp_b), len(interp_b), 1))
    ph.append((2, 6, dyn_off, base + dyn_off, base + dyn_off, 16 * len(dyn_entries), 16 * len(dyn_entries), 8))
    for i, p in enumerate(ph):
        struct.pack_into("<IIQQQQQQ", out, ehsize + i * phsz, *p)
    out[interp_off:interp_off + len(interp_b)] = interp_b
    out[str_off:str_off + len(strtab)] = strtab
    for i, (t, v) in enumerate(dyn_entries):
        struct.pack_into("<qQ", out, dyn_off + 16 * i, t, v)
    return bytes(out)


class ElfTest(unittest.TestCase):
    def test_deps(self):
        data = make_elf("/lib/ld-linux-aarch64.so.1", ["libglib-2.0.so.0", "libc.so.6"], "libx.so.1")
        self.assertEqual(payload.elf_deps(data),
                         ("/lib/ld-linux-aarch64.so.1", ["libglib-2.0.so.0", "libc.so.6"], "libx.so.1"))

    def test_static(self):
        self.assertEqual(payload.elf_deps(make_elf()), (None, [], None))

    def test_not_aarch64(self):
        with self.assertRaisesRegex(payload.ElfError, "not aarch64"):
            payload.elf_deps(make_elf(machine=62))
        with self.assertRaisesRegex(payload.ElfError, "not a 64-bit"):
            payload.elf_deps(b"#!/bin/sh\n" + b"\0" * 64)

    def tree(self, d, files):
        for path, data in files.items():
            p = os.path.join(d, path)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)

    def test_closure(self):
        ld = "/lib/ld-linux-aarch64.so.1"
        with tempfile.TemporaryDirectory() as d:
            self.tree(d, {
                "usr/bin/qemu-system-aarch64": make_elf(ld, ["liba.so.1", "libc.so.6"]),
                "lib/ld-linux-aarch64.so.1": make_elf(),
                "usr/lib/aarch64-linux-gnu/liba.so.1": make_elf(None, ["libb.so.2", "libc.so.6"]),
                "lib/aarch64-linux-gnu/libb.so.2": make_elf(None, ["libc.so.6", "ld-linux-aarch64.so.1"]),
                "lib/aarch64-linux-gnu/libc.so.6": make_elf(None, ["ld-linux-aarch64.so.1"]),
                "lib/aarch64-linux-gnu/libunused.so.9": make_elf(),
            })
            interp, libs = payload.closure(d, os.path.join(d, "usr/bin/qemu-system-aarch64"))
            self.assertEqual(interp, os.path.join(d, "lib/ld-linux-aarch64.so.1"))
            self.assertEqual(sorted(libs), ["liba.so.1", "libb.so.2", "libc.so.6"])
            self.assertEqual(libs["liba.so.1"], os.path.join(d, "usr/lib/aarch64-linux-gnu/liba.so.1"))

            out = os.path.join(d, "p.cpio")
            n, _ = payload.write_payload(d, out)
            self.assertEqual(n, 3)
            with open(out, "rb") as f:
                names = read_names(f.read())
            self.assertEqual(sorted(names), ["vmm", "vmm/bin", "vmm/bin/qemu-system-aarch64", "vmm/lib",
                                             "vmm/lib/ld-linux-aarch64.so.1", "vmm/lib/liba.so.1",
                                             "vmm/lib/libb.so.2", "vmm/lib/libc.so.6", "vmm/qemu"])

    def test_missing_library_named(self):
        with tempfile.TemporaryDirectory() as d:
            self.tree(d, {
                "usr/bin/qemu-system-aarch64": make_elf("/lib/ld-linux-aarch64.so.1", ["liba.so.1"]),
                "lib/ld-linux-aarch64.so.1": make_elf(),
                "lib/aarch64-linux-gnu/liba.so.1": make_elf(None, ["libgone.so.3"]),
            })
            with self.assertRaisesRegex(payload.ElfError, r"liba.so.1 needs libgone.so.3: not found"):
                payload.closure(d, os.path.join(d, "usr/bin/qemu-system-aarch64"))


def read_names(data):
    names, off = [], 0
    while True:
        assert data[off:off + 6] == b"070701", off
        fields = [int(data[off + 6 + 8 * i:off + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off = (off + 110 + namesize + 3) & ~3
        off = (off + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return names
        names.append(name)


class ExtraCpioTest(unittest.TestCase):
    def test_appended_on_a_boundary(self):
        with tempfile.TemporaryDirectory() as d:
            main = os.path.join(d, "i.cpio.gz")
            with open(main, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                c = Cpio(gz)
                c.file("a", b"x" * 1000)
                c.close()
            size = os.path.getsize(main)
            buf = io.BytesIO()
            c = Cpio(buf)
            c.file("vmm/b", b"payload")
            c.close()
            extra = os.path.join(d, "p.cpio")
            with open(extra, "wb") as f:
                f.write(buf.getvalue())
            n = append_archives(main, [extra])
            with open(main, "rb") as f:
                data = f.read()
            start = (size + 511) // 512 * 512
            self.assertEqual(n, start - size + len(buf.getvalue()))
            self.assertEqual(data[size:start], b"\0" * (start - size))
            self.assertEqual(read_names(data[start:]), ["vmm", "vmm/b"])
            # The first archive still reads back whole.
            self.assertEqual(read_names(gzip.decompress(data[:size])), ["a"])


class GuestTest(unittest.TestCase):
    def test_lehmer(self):
        # Park and Miller's check: from seed 1, the 10000th value is 1043618065.
        self.assertEqual(lg.lehmer_file(1, 10000).split()[-1], b"1043618065")
        self.assertEqual(lg.lehmer_file(1000, 2), b"16807000\n%d\n" % (16807000 * 16807 % 2147483647))

    def test_expected_sums(self):
        lines = lg.expected_sums(2).splitlines()
        self.assertEqual([x.split()[0] for x in lines],
                         ["1000", "1001", "1002", "1003", "2000", "2001", "2002", "2003"])
        seed, sha, md5 = lines[5].split()
        data = lg.lehmer_file(2001)
        self.assertEqual(len(data.splitlines()), lg.N_NUMBERS)
        self.assertEqual((sha, md5), (hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()))

    def test_figures(self):
        log = ("vmm-run: figure marker_host_ns=123\r\n"
               "guest| vmm-guest: marker: up in 0.51 s\n"
               "vmm-run: figure marker_uptime_s=0.51\n"
               "vmm-run: figure cntfrq=1000000000\n"
               "vmm-run: figure marker_uptime_s=?\n"
               "vmm-run: figure total_host_ns=4567\n")
        self.assertEqual(lg.parse_figures(log), {"marker_host_ns": 123, "marker_uptime_s": "?",
                                                 "cntfrq": 1000000000, "total_host_ns": 4567})
        self.assertEqual(lg.parse_figures("nothing here"), {})


class MacroBenchTest(unittest.TestCase):
    def test_insns(self):
        # 1 GHz counter: a tick is a ns, an instruction at shift=0.
        rec = {"cntfrq": 1000000000, "marker_counter": 1500, "end_counter": 4000, "qemu_ns": 9000}
        self.assertEqual(bench.macro_insns(rec), {"boot": 1500, "workload": 2500, "qemu": 9000})
        # 62.5 MHz: a tick is 16 ns.
        rec = {"cntfrq": 62500000, "marker_counter": 100, "end_counter": 300, "qemu_ns": 0}
        self.assertEqual(bench.macro_insns(rec), {"boot": 1600, "workload": 3200})
        # A run without a marker (failed guest) gives no guest figure.
        self.assertEqual(bench.macro_insns({"cntfrq": 0, "marker_counter": 0, "end_counter": 0,
                                            "qemu_ns": 5}), {"qemu": 5})

    def test_summary_and_table(self):
        recs = [{"backend": b, "round": r, "cntfrq": 1000000000, "marker_counter": m, "end_counter": m + w,
                 "qemu_ns": q}
                for b, r, m, w, q in [("C", 0, 100, 1000, 5000), ("C", 1, 110, 1000, 5100),
                                      ("C", 2, 90, 1000, 4900), ("Rust", 0, 120, 1100, 5500),
                                      ("Rust", 1, 120, 1100, 5500)]]
        s = bench.macro_summary(recs)
        self.assertEqual(s[("C", "boot")]["instructions"], 100)
        self.assertAlmostEqual(s[("C", "boot")]["spread"], 0.2)
        self.assertEqual(s[("Rust", "workload")]["instructions"], 1100)
        self.assertEqual(s[("Rust", "qemu")]["rounds"], 2)
        text = bench.macro_table(s)
        row = next(x for x in text.splitlines() if x.startswith("| guest boot"))
        self.assertEqual([c.strip() for c in row.strip("|").split("|")][1:], ["100", "120", "1.200", "20.00%", "0.00%"])


if __name__ == "__main__":
    unittest.main()
