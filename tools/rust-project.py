#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Completes the rust-project.json that the kernel wrote for this module.

`make rust-analyzer` runs the kernel's own generator first
(`make -C $KDIR M=$TOP rust-analyzer`, i.e. scripts/generate_rust_analyzer.py
with this directory as its external tree). That gives the sysroot and the
kernel's crates (core, kernel, macros, ...), but it takes an external .rs file
for a crate root only when a Kbuild or Makefile in the *same* directory names
its .o, and vhe-rs's root is rust/vhe.rs, named by the top-level Kbuild as
rust/vhe.o. This adds that crate the way the generator adds one it finds
(deps core and kernel, the kernel's cfgs), plus what Kbuild gives the module
crate besides: `--cfg MODULE` and RUST_MODFILE.

Usage: tools/rust-project.py TOP   (edits TOP/rust-project.json in place)
"""

import json
import pathlib
import sys

CRATE = "vhe"  # Kbuild: --crate-name from rust/vhe.o
ROOT = "rust/vhe.rs"
MODFILE = "vhe_rs"  # Kbuild: obj-m := vhe_rs.o


def main():
    top = pathlib.Path(sys.argv[1]).resolve()
    path = top / "rust-project.json"
    project = json.loads(path.read_text())
    crates = project["crates"]
    index = {c["display_name"]: i for i, c in enumerate(crates)}
    for need in ("core", "kernel"):
        if need not in index:
            sys.exit(f"rust-project: {path} has no '{need}' crate: not the kernel's generator output?")

    root = top / ROOT
    if not root.is_file():
        sys.exit(f"rust-project: {root} missing")
    if any(pathlib.Path(c["root_module"]).resolve() == root for c in crates):
        print(f"rust-project: {ROOT} already a crate root in {path}")
        return

    crates.append({
        "display_name": CRATE,
        "root_module": str(root),
        "is_workspace_member": True,
        "is_proc_macro": False,
        "deps": [{"crate": index[d], "name": d} for d in ("core", "kernel")],
        "cfg": list(crates[index["kernel"]]["cfg"]) + ["MODULE"],
        "edition": "2021",
        "env": {"RUST_MODFILE": str(top / MODFILE)},
    })
    path.write_text(json.dumps(project, sort_keys=True, indent=4) + "\n")
    print(f"rust-project: {path}: crate '{CRATE}' at {ROOT} (deps core, kernel)")


if __name__ == "__main__":
    main()
