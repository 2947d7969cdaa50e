#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The arm64 QEMU that runs inside the VHE host, as a cpio to append to its initramfs.

  tools/vmm/payload.py ROOT OUT.cpio        (tools/setup runs it once)

ROOT is where tools/setup unpacked Debian's arm64 qemu-system-arm and every package
apt resolved for it. What goes in, under /vmm/ of the VM's root:
  /vmm/bin/qemu-system-aarch64
  /vmm/lib/ld-linux-aarch64.so.1          its dynamic loader (PT_INTERP)
  /vmm/lib/<soname>                        each library the loader will map: the
                                           DT_NEEDED closure, nothing else
  /vmm/qemu                                wrapper: runs the loader on QEMU with
                                           --library-path /vmm/lib
The closure is computed here from the ELF files themselves (elf_deps, closure), the
way the loader searches: DT_NEEDED names looked up in the multiarch library dirs.
QEMU's optional modules (dlopen'ed for display, audio, USB) are left out: the VMM
runs with -display none and no such devices. The archive is an uncompressed newc
cpio: the kernel appends it to the rootfs without decompressing (fast under TCG).
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from vmrun.initramfs import Cpio  # noqa: E402

LIBDIRS = ["lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib"]
QEMU = "usr/bin/qemu-system-aarch64"
PREFIX = "vmm"
EM_AARCH64 = 183
PT_INTERP, PT_DYNAMIC = 3, 2
DT_NEEDED, DT_STRTAB, DT_SONAME = 1, 5, 14

WRAPPER = """#!/bin/sh
# Runs the arm64 QEMU with its own loader and libraries (tools/vmm/payload.py).
exec /vmm/lib/{interp} --library-path /vmm/lib /vmm/bin/qemu-system-aarch64 "$@"
"""


class ElfError(Exception):
    pass


def elf_deps(data):
    """(interp, [DT_NEEDED...], soname) of a 64-bit little-endian ELF image."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ElfError("not a 64-bit little-endian ELF file")
    (e_type, e_machine, _v, _entry, e_phoff, _shoff, _flags, _ehsize, e_phentsize,
     e_phnum) = struct.unpack_from("<HHIQQQIHHH", data, 16)
    if e_machine != EM_AARCH64:
        raise ElfError(f"machine {e_machine}, not aarch64 ({EM_AARCH64})")
    loads, interp, dyn = [], None, None
    for i in range(e_phnum):
        p_type, _fl, off, vaddr, _pa, filesz, _memsz, _al = struct.unpack_from(
            "<IIQQQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == 1:
            loads.append((vaddr, off, filesz))
        elif p_type == PT_INTERP:
            interp = data[off:off + filesz].rstrip(b"\0").decode()
        elif p_type == PT_DYNAMIC:
            dyn = (off, filesz)
    if dyn is None:
        return interp, [], None

    def file_off(addr):
        for vaddr, off, filesz in loads:
            if vaddr <= addr < vaddr + filesz:
                return addr - vaddr + off
        raise ElfError(f"address {addr:#x} in no PT_LOAD segment")

    entries, strtab = [], None
    for i in range(dyn[1] // 16):
        tag, val = struct.unpack_from("<qQ", data, dyn[0] + i * 16)
        if tag == 0:
            break
        if tag == DT_STRTAB:
            strtab = file_off(val)
        entries.append((tag, val))
    if strtab is None:
        raise ElfError("PT_DYNAMIC without DT_STRTAB")

    def string(off):
        end = data.index(b"\0", strtab + off)
        return data[strtab + off:end].decode()

    needed = [string(v) for t, v in entries if t == DT_NEEDED]
    soname = next((string(v) for t, v in entries if t == DT_SONAME), None)
    return interp, needed, soname


def find_lib(root, name):
    for d in LIBDIRS:
        p = os.path.join(root, d, name)
        if os.path.exists(p):
            return p
    return None


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def closure(root, exe, read=read_file):
    """(interp path in root, {soname: path in root}) that the loader maps for exe.
    Raises ElfError naming a library it cannot find."""
    interp, needed, _ = elf_deps(read(exe))
    if not interp:
        raise ElfError(f"{exe}: no PT_INTERP (static?)")
    interp_path = os.path.join(root, interp.lstrip("/"))
    if not os.path.exists(interp_path):
        raise ElfError(f"loader {interp} not in {root}")
    libs, todo = {}, [(exe, n) for n in needed]
    loader_name = os.path.basename(interp)
    while todo:
        who, name = todo.pop(0)
        if name in libs or name == loader_name:
            continue
        p = find_lib(root, name)
        if p is None:
            raise ElfError(f"{os.path.relpath(who, root)} needs {name}: not found under {root}")
        libs[name] = p
        todo += [(p, n) for n in elf_deps(read(p))[1]]
    return interp_path, libs


def write_payload(root, out):
    exe = os.path.join(root, QEMU)
    interp, libs = closure(root, exe)
    total = 0
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        c = Cpio(f)
        c.dir(PREFIX)

        def add(name, path, perm):
            nonlocal total
            with open(path, "rb") as g:     # follows the .so symlinks: one real file each
                data = g.read()
            total += len(data)
            c.file(f"{PREFIX}/{name}", data, perm)

        add("bin/qemu-system-aarch64", exe, 0o755)
        add(f"lib/{os.path.basename(interp)}", interp, 0o755)
        for name, p in sorted(libs.items()):
            add(f"lib/{name}", p, 0o644)
        c.file(f"{PREFIX}/qemu", WRAPPER.format(interp=os.path.basename(interp)).encode(), 0o755)
        c.close()
    os.replace(tmp, out)
    return len(libs), total


def main(argv):
    if len(argv) != 3:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    try:
        n, size = write_payload(argv[1], argv[2])
    except (OSError, ElfError) as e:
        print(f"payload: {e}", file=sys.stderr)
        return 1
    print(f"payload: {argv[2]}: qemu-system-aarch64, its loader and {n} libraries, "
          f"{size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
