#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write the derived console logs in tools/tests/logs/ from the recorded ones.

Recorded for real with tools/vmrun (6.12.117, QEMU 7.2 TCG; each *.plan
says how): clean, skip, hang, qemu-died, panic. Derived here by editing them,
with arm64 splat text in the kernel's own format (function names and sizes
from this kernel's vmlinux, WARN_ON sites from its source):

  warning         clean, with the uname test renamed arch_timer: a WARNING
                  during it, and a `BUG: sleeping function called from invalid
                  context` between module/debugfs and module/dmesg-tail
  oops            panic's boot, then an Oops in vhe_rs during a test with
                  oops=panic: Kernel panic - not syncing: Oops: Fatal exception
  hang-truncated  hang without the host's notes: the log just stops after BEGIN
  qemu-killed     clean, cut after step 3, QEMU killed by SIGKILL (rc=-9)
  boot-warning    clean with a WARNING during boot, which module/dmesg-tail's
                  dmesg output then prints again (must count only once)

Run from anywhere: python3 tools/tests/derive_logs.py
"""
import os
import re

from recorded_logs import LOGS, read


def write(name, text):
    with open(os.path.join(LOGS, name), "w") as f:
        f.write(text)


def stamp(t0, lines, step=0.000137):
    """Prefix lines with printk timestamps starting at t0."""
    return "".join(f"[{t0 + i * step:12.6f}] {line}\n" for i, line in enumerate(lines))


REGS = [
    "x29: ffff800080b3bb90 x28: ffff0000c1a4c040 x27: 0000000000000000",
    "x26: ffff0000c1a4c0e8 x25: ffff0000c1b80000 x24: ffff0000c1a4d5d0",
    "x23: 0000000000000001 x22: ffff0000c1a4d5d0 x21: ffff0000c1a4d460",
    "x20: ffff0000c1a4c040 x19: ffff0000c1a4d528 x18: 0000000000000000",
    "x17: 0000000000000000 x16: 0000000000000000 x15: 0000ffffd7a1e5a8",
    "x14: 0000000000000000 x13: 0000000000000000 x12: 0000000000000000",
    "x11: 0000000000000000 x10: 0000000000000000 x9 : ffff80008004b4f8",
    "x8 : 0000000000000001 x7 : 0000000000000000 x6 : 0000000000000000",
    "x5 : 0000000000000000 x4 : 0000000000000000 x3 : 0000000000000000",
    "x2 : 0000000000000000 x1 : ffff0000c1a4d528 x0 : 0000000000000001",
]

# The bottom of a call trace from a KVM ioctl: the syscall path from EL0.
IOCTL_FROM_EL0 = [
    " __arm64_sys_ioctl+0x1b4/0xd64",
    " invoke_syscall+0x50/0xb4",
    " do_el0_svc+0x78/0xa0",
    " el0_svc+0x28/0x70",
    " el0t_64_sync_handler+0x7c/0x114",
    " el0t_64_sync+0x14c/0x150",
]

WARNING = [
    "------------[ cut here ]------------",
    "WARNING: CPU: 1 PID: 71 at arch/arm64/kvm/arch_timer.c:280 timer_emulate+0x3c/0x15c",
    "Modules linked in:",
    "CPU: 1 UID: 0 PID: 71 Comm: arch_timer Not tainted 6.12.117 #1",
    "Hardware name: linux,dummy-virt (DT)",
    "pstate: 234020c9 (nzCv daIF +PAN -UAO +TCO +DIT -SSBS BTYPE=--)",
    "pc : timer_emulate+0x3c/0x15c",
    "lr : kvm_timer_vcpu_load+0x2a4/0x494",
    "sp : ffff800080b3bb90",
] + REGS + [
    "Call trace:",
    " timer_emulate+0x3c/0x15c",
    " kvm_timer_vcpu_load+0x2a4/0x494",
    " kvm_arch_vcpu_load+0x13c/0x1c8",
    " vcpu_load+0x34/0x48",
    " kvm_vcpu_ioctl+0x108/0x5e4",
] + IOCTL_FROM_EL0 + [
    "---[ end trace 0000000000000000 ]---",
]

SLEEPING_BUG = [
    "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585",
    "in_atomic(): 1, irqs_disabled(): 128, non_block: 0, pid: 38, name: kworker/1:1",
    "preempt_count: 1, expected: 0",
    "RCU nest depth: 0, expected: 0",
    "CPU: 1 UID: 0 PID: 38 Comm: kworker/1:1 Not tainted 6.12.117 #1",
    "Hardware name: linux,dummy-virt (DT)",
    "Workqueue: events kvm_vcpu_release_work",
    "Call trace:",
    " dump_backtrace+0xd4/0x10c",
    " show_stack+0x14/0x1c",
    " dump_stack_lvl+0x3c/0x7c",
    " dump_stack+0x14/0x1c",
    " __might_resched+0x13c/0x170",
    " __might_sleep+0x44/0x7c",
    " mutex_lock+0x20/0x68",
    " process_one_work+0x164/0x2a0",
    " worker_thread+0x274/0x38c",
    " kthread+0xe4/0xf4",
    " ret_from_fork+0x10/0x20",
]

OOPS = [
    "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
    "Mem abort info:",
    "  ESR = 0x0000000096000006",
    "  EC = 0x25: DABT (current EL), IL = 32 bits",
    "  SET = 0, FnV = 0",
    "  EA = 0, S1PTW = 0",
    "  FSC = 0x06: level 2 translation fault",
    "Data abort info:",
    "  ISV = 0, ISS = 0x00000006, ISS2 = 0x00000000",
    "  CM = 0, WnR = 0, TnD = 0, TagAccess = 0",
    "  GCS = 0, Overlay = 0, DirtyBit = 0, Xs = 0",
    "user pgtable: 4k pages, 48-bit VAs, pgdp=0000000101b2e000",
    "[0000000000000008] pgd=0800000101b2f003, p4d=0800000101b2f003, pud=0800000101b30003, pmd=0000000000000000",
    "Internal error: Oops: 0000000096000006 [#1] SMP",
    "Modules linked in: vhe_rs(O)",
    "CPU: 0 UID: 0 PID: 83 Comm: vcpu_width_conf Tainted: G           O       6.12.117 #1",
    "Tainted: [O]=OOT_MODULE",
    "Hardware name: linux,dummy-virt (DT)",
    "pstate: 634020c9 (nZCv daIF +PAN -UAO +TCO +DIT -SSBS BTYPE=--)",
    "pc : vhe_rs_vcpu_run+0x34/0x2c0 [vhe_rs]",
    "lr : kvm_arch_vcpu_ioctl_run+0x2b8/0x70c",
    "sp : ffff800080c13c30",
] + REGS + [
    "Call trace:",
    " vhe_rs_vcpu_run+0x34/0x2c0 [vhe_rs]",
    " kvm_arch_vcpu_ioctl_run+0x2b8/0x70c",
    " kvm_vcpu_ioctl+0x3a0/0x5e4",
] + IOCTL_FROM_EL0 + [
    "Code: f9400a60 b4000a40 f9400014 aa1303e0 (f9400680) ",
    "---[ end trace 0000000000000000 ]---",
    "Kernel panic - not syncing: Oops: Fatal exception",
    "SMP: stopping secondary CPUs",
    "Kernel Offset: disabled",
    "CPU features: 0x00,0000000f,000e701c,4202541b",
    "Memory Limit: none",
]


def warning():
    t = read("clean.console.log")
    plan = read("clean.plan").replace("TEST uname 10 uname -a", "TEST arch_timer 600 /opt/kvm/arch_timer")
    plan = plan.replace("# A clean run: every step passes (one static SKIP).",
                        "# Derived from clean (tools/tests/derive_logs.py): a WARNING during\n"
                        "# baseline/arch_timer, a BUG between module/debugfs and module/dmesg-tail.")
    t = t.replace("baseline/uname", "baseline/arch_timer")
    t = re.sub(r"(@@VHERS BEGIN 2 baseline/arch_timer\n)Linux .*\n",
               lambda m: m.group(1) + "Random seed: 0x6b8b4567\n" + stamp(0.612301, WARNING) +
               "==== Test Assertion Failure ====\n"
               "  arch_timer.c:190: config_iter < test_args.max_iters\n"
               "  pid=71 tid=71 errno=4 - Interrupted system call\n"
               "     1\t0x0000000000402a6b: test_vcpu_run at arch_timer.c:190\n"
               "  Failed guest assert: timer interrupt not seen within 1000 ms\n", t)
    t = t.replace(" rc=0 secs=0.01\n@@VHERS BEGIN 3", " rc=254 secs=1.62\n@@VHERS BEGIN 3")
    t = t.replace("@@VHERS END 5 module/debugfs rc=0 secs=0.02\n",
                  "@@VHERS END 5 module/debugfs rc=0 secs=0.02\n" + stamp(0.701022, SLEEPING_BUG))
    write("warning.plan", plan)
    write("warning.console.log", t)


def oops():
    t = read("panic.console.log")
    plan = ("# Derived from panic (tools/tests/derive_logs.py): the module pass, and an\n"
            "# Oops in vhe_rs during a test; oops=panic stops the VM there.\n"
            "PASS baseline\n"
            "REQUIRE-LOG vhe-mode VHE mode initialized successfully\n"
            "TEST aarch64/vcpu_width_config 600 /opt/kvm/aarch64/vcpu_width_config\n"
            "PASS module\n"
            "SH insmod 60 insmod /opt/vhe_rs.ko\n"
            "REQUIRE-LOG module-loaded vhe_rs: loaded\n"
            "TEST aarch64/vcpu_width_config 600 /opt/kvm/aarch64/vcpu_width_config\n"
            "TEST arch_timer 600 /opt/kvm/arch_timer\n"
            "SKIP aarch64/vgic_lpi_stress too slow under TCG\n"
            "SH rmmod 60 rmmod vhe_rs\n"
            "REQUIRE-LOG module-unloaded vhe_rs: unloaded\n")
    head = t[:t.index("@@VHERS READY")]
    head = head.replace("-m 512M", "-m 4G").replace("build/vm/panic/", "build/vm/oops/")
    body = ("@@VHERS READY steps=8\n"
            "@@VHERS BEGIN 0 baseline/vhe-mode\n"
            "@@VHERS END 0 baseline/vhe-mode rc=0 secs=0.00\n"
            "@@VHERS BEGIN 1 baseline/aarch64/vcpu_width_config\n"
            "Random seed: 0x6b8b4567\n"
            "@@VHERS END 1 baseline/aarch64/vcpu_width_config rc=0 secs=0.41\n"
            "@@VHERS BEGIN 2 module/insmod\n"
            + stamp(1.203312, ["vhe_rs: loading out-of-tree module taints kernel.",
                               "vhe_rs: loaded: taking over the VHE world switch"]) +
            "@@VHERS END 2 module/insmod rc=0 secs=0.05\n"
            "@@VHERS BEGIN 3 module/module-loaded\n"
            "@@VHERS END 3 module/module-loaded rc=0 secs=0.00\n"
            "@@VHERS BEGIN 4 module/aarch64/vcpu_width_config\n"
            "Random seed: 0x6b8b4567\n"
            + stamp(1.318874, OOPS) +
            "@@VHERS-HOST QEMU-EXIT rc=0 after=2.9s\n")
    write("oops.plan", plan)
    write("oops.console.log", head + body)


def hang_truncated():
    t = read("hang.console.log")
    t = "".join(line for line in t.splitlines(True)
                if not re.match(r"@@VHERS-HOST (TIMEOUT|QEMU-EXIT)", line))
    write("hang-truncated.console.log", t)


def qemu_killed():
    t = read("clean.console.log")
    cut = t.index("@@VHERS BEGIN 5 ")
    write("qemu-killed.console.log", t[:cut] + "@@VHERS-HOST QEMU-EXIT rc=-9 after=1.1s\n")


def boot_warning():
    t = read("clean.console.log")
    m = re.search(r"\[\s*(\d+\.\d+)\] kvm \[1\]: VHE mode initialized successfully\n", t)
    t0 = float(m.group(1)) + 0.000211
    lines = [x.replace("PID: 71", "PID: 1").replace("Comm: arch_timer", "Comm: swapper/0")
             for x in WARNING[:5]] + [
        "pstate: 60400009 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)",
        "pc : kvm_timer_hyp_init+0x1c0/0x2a8",
        "lr : kvm_timer_hyp_init+0x1a4/0x2a8",
        "Call trace:",
        " kvm_timer_hyp_init+0x1c0/0x2a8",
        " kvm_arm_init+0x4f8/0x8d0",
        " do_one_initcall+0x60/0x1d0",
        " kernel_init_freeable+0x1f8/0x260",
        " kernel_init+0x20/0x1d8",
        " ret_from_fork+0x10/0x20",
        "---[ end trace 0000000000000000 ]---"]
    lines[1] = "WARNING: CPU: 0 PID: 1 at arch/arm64/kvm/arch_timer.c:1486 kvm_timer_hyp_init+0x1c0/0x2a8"
    splat = stamp(t0, lines)
    t = t[:m.end()] + splat + t[m.end():]
    # dmesg-tail prints the WARNING again (same records, same timestamps).
    again = "".join(splat.splitlines(True)[1:4])
    t = re.sub(r"(@@VHERS BEGIN 6 module/dmesg-tail\n)(?:\[.*\n)+", lambda mm: mm.group(1) + again, t)
    write("boot-warning.console.log", t)


if __name__ == "__main__":
    warning()
    oops()
    hang_truncated()
    qemu_killed()
    boot_warning()
    print("derived: warning oops hang-truncated qemu-killed boot-warning")
