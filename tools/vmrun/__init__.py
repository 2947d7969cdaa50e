# SPDX-License-Identifier: GPL-2.0
"""vmrun: boot the vhe-rs test VM under QEMU, run a test plan in it, report TAP.

  python3 tools/vmrun --kernel IMAGE --busybox BUSYBOX --plan PLAN [--module vhe_rs.ko]
                      [--files DIR ...] [--out DIR] [--filter REGEX] [--reparse DIR] ...

Python 3.11 standard library only. The host builds a gzip'd newc initramfs
(busybox, tools/initramfs/init, the plan turned into a shell script, the module,
--files trees), boots QEMU on it and reads the console live: the VM's /init
runs the plan's steps between console markers, the host turns the console into
TAP results.

Modules (each one's docstring has the details):
  plan       the plan format, in one place: parse_plan(), read_plan(),
             filter_steps(); the tools that write or read plans (tools/mkplan.py,
             tools/bench, tools/retry-filter.py) use it
  verdicts   console log + plan -> results (pure): the console protocol, kernel
             splats, hangs, stalls; TAP and summary lines
  initramfs  the newc cpio writer and the initramfs build, the steps script
  qemu       the QEMU driver: command line, live console, timeouts, the monitor
             and its `@@VHERS-HOST CPU` dumps, output files
  cli        argument parsing, --reparse, main()
  __main__   `python3 tools/vmrun ARGS...` (or `python3 -m vmrun` from tools/)

Importing the package imports none of them: `from vmrun.plan import ...` loads
the plan format alone.
"""
