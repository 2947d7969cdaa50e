/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The module's exit counters, for the tests of the exits dealt with at EL2:
 * debugfs vhe_rs/exits (per exception class: dealt with at EL2, returned to
 * the host, of Rust-run vCPUs) and the run lines of vhe_rs/stats.
 *
 * Host state they assume: these counters are the machine's, not the test's.
 * The tests assert deltas around what they do, "exactly N" or "at least N":
 * "at least" holds beside other VMs on Rust; "exactly" and "none" assume that
 * no other process runs a VM on vhe_rs while the test does (true in make
 * check's plans, which run one test at a time; beside-perf-user runs no VM).
 */
#ifndef SELFTEST_VHE_RS_EXITS_H
#define SELFTEST_VHE_RS_EXITS_H

#include "vhe_rs.h"

#define VHE_RS_EXITS	"/sys/kernel/debug/vhe_rs/exits"

/* Exception classes (asm/esr.h) the tests look at. */
#define EC_WFX		0x01
#define EC_CP15_32	0x03
#define EC_FP_ASIMD	0x07
#define EC_ILL		0x0e
#define EC_HVC64	0x16
#define EC_SYS64	0x18
#define EC_SVE		0x19
#define EC_IABT_LOW	0x20
#define EC_DABT_LOW	0x24
#define EC_MOPS		0x27
#define EC_BREAKPT_LOW	0x30
#define EC_SOFTSTP_LOW	0x32
#define EC_WATCHPT_LOW	0x34

struct vhe_rs_exits {
	bool valid;		/* the module is loaded and enabled: counts mean something */
	long el2[64], host[64];
	long fp_trap_shallow, exit_irq, vcpu_run, guest_enter;
};

static inline struct vhe_rs_exits vhe_rs_exits(void)
{
	struct vhe_rs_exits e = { .valid = vhe_rs_loaded() && vhe_rs_enabled() };
	unsigned int ec;
	long el2, host;
	char line[128];
	FILE *f;

	if (!e.valid)
		return e;
	f = fopen(VHE_RS_EXITS, "r");
	TEST_ASSERT(f, "vhe_rs is loaded but " VHE_RS_EXITS " cannot be opened");
	TEST_ASSERT(fgets(line, sizeof(line), f) && !strncmp(line, "ec el2 host", 11),
		    VHE_RS_EXITS ": unexpected header");
	while (fscanf(f, "%x %ld %ld", &ec, &el2, &host) == 3) {
		TEST_ASSERT(ec < 64, VHE_RS_EXITS ": EC 0x%x", ec);
		e.el2[ec] = el2;
		e.host[ec] = host;
	}
	fclose(f);
	e.fp_trap_shallow = vhe_rs_stat("fp_trap_shallow");
	e.exit_irq = vhe_rs_stat("exit_irq");
	e.vcpu_run = vhe_rs_stat("vcpu_run");
	e.guest_enter = vhe_rs_stat("guest_enter");
	TEST_ASSERT(e.fp_trap_shallow >= 0 && e.vcpu_run >= 0 && e.guest_enter >= 0,
		    VHE_RS_STATS ": no run lines (fp_trap_shallow, vcpu_run, guest_enter)");
	return e;
}

/* Deltas between two snapshots. */
#define EL2_D(a, b, ec)		((b).el2[ec] - (a).el2[ec])
#define HOST_D(a, b, ec)	((b).host[ec] - (a).host[ec])

/* Prints every class that moved between @a and @b. */
static inline void vhe_rs_exits_print(const char *what, struct vhe_rs_exits a,
				      struct vhe_rs_exits b)
{
	if (!a.valid || !b.valid)
		return;
	printf("  %s: exits (EC el2 host):", what);
	for (int ec = 0; ec < 64; ec++)
		if (EL2_D(a, b, ec) || HOST_D(a, b, ec))
			printf(" 0x%02x:%ld/%ld", ec, EL2_D(a, b, ec), HOST_D(a, b, ec));
	printf("; fp_trap_shallow +%ld, exit_irq +%ld, vcpu_run +%ld, guest_enter +%ld\n",
	       b.fp_trap_shallow - a.fp_trap_shallow, b.exit_irq - a.exit_irq,
	       b.vcpu_run - a.vcpu_run, b.guest_enter - a.guest_enter);
}

#endif
