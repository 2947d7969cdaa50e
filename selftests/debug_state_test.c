// SPDX-License-Identifier: GPL-2.0
/*
 * debug_state_test: the debug registers are switched only while dirty
 * (issue 11). The guest's breakpoint and watchpoint registers, the host's own
 * hardware breakpoints and watchpoints (perf), and the VMM's (KVM_SET_GUEST_DEBUG)
 * must each be where they belong across thousands of exits, on either backend.
 *
 * Guest (EL1): reads ID_AA64DFR0_EL1.BRPs/WRPs and programs every implemented
 * DBGBCR/DBGBVR/DBGWCR/DBGWVR with a distinct value: the enabled ones (every
 * even number, and the highest) on a function or variable of its own, the
 * others (E=0) with marker values. It hits each enabled one and checks that its
 * own EL1 took the debug exception (EC 0x31/0x35, PC or FAR, WnR). Then it
 * exits thousands of times (hvc through SMCCC, MMIO writes to userspace, WFI
 * woken by its virtual timer), hitting its breakpoints and watchpoints again
 * each round; every 16 rounds it reads every register back (GUEST_ASSERT with
 * the register, what it wrote and what it read) and writes new values (other
 * targets, other markers), so that a save missed at an exit shows too.
 *
 * VMM, midway: KVM_GUESTDBG_SINGLESTEP (KVM_EXIT_DEBUG, EC SOFTSTP_LOW, the PC
 * 4 further each step through a known straight-line sequence), then
 * KVM_GUESTDBG_USE_HW with a breakpoint and a watchpoint of its own (EC
 * BREAKPT_LOW at the function, WATCHPT_LOW with FAR the variable), then guest
 * debug off: the guest finds its own registers, MDSCR_EL1 included, unchanged,
 * and its breakpoints and watchpoints still fire in the guest. KVM_GET_ONE_REG
 * of every register must also give the guest's values.
 *
 * Host: the vCPU thread moves between the CPUs at every exit to userspace and
 * holds perf hardware breakpoints and watchpoints of its own (PERF_TYPE_BREAKPOINT,
 * HW_BREAKPOINT_X, _W and _RW, exclude_kernel) that it hits after every
 * KVM_RUN; another thread of the process does the same on its own code and
 * variables all along, moving between the CPUs too. Every perf count must be
 * exactly the number of hits: the host's registers survived every entry and
 * exit (on the vCPU thread's CPU they are what the switch saves and restores).
 *
 * Module pass (vhe_rs loaded and enabled): per window of the run, from
 * vhe_rs/stats, debug_switched grows by every run while the guest's debug
 * state is live (MDSCR_EL1.KDE/MDE, or the VMM debugging it) and by none while
 * it is clean, debug_clean_runs the other way round; debug_vmm_ss and
 * debug_vmm_hw, when the stats have them, by exactly the runs made with
 * KVM_GUESTDBG_SINGLESTEP and KVM_GUESTDBG_USE_HW; vhe_rs/exits: the guest's
 * own debug exceptions never leave it, each single step and each hit of the
 * VMM's is one exit to the host.
 *
 * Host state it assumes: the perf events are the threads' own (per task,
 * user space only), so their counts hold beside any other process, as long as
 * nothing ptraces this one or takes every breakpoint slot (perf_event_open
 * then fails: ENOSPC). The module's counters are the machine's: the exact
 * deltas assume no other process runs a VM on vhe_rs meanwhile (true in make
 * check's plans; vhe_rs_exits.h).
 *
 *   debug_state_test [-n ROUNDS]
 */
#define _GNU_SOURCE
#include <linux/arm-smccc.h>
#include <linux/bitfield.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "gic.h"
#include "vgic.h"
#include "vhe_rs_exits.h"

#define MMIO_GPA	(1ULL << 36)	/* in no memslot: exits to userspace */

/*
 * Breakpoint and watchpoint control fields, named as upstream's
 * aarch64/debug-exceptions.c names them (the PMC and LSC shifts added, which
 * it does not use). DBGBCR's BAS is 4 bits (8:5), all set
 * for an A64 instruction: upstream's DBGBCR_LEN8 (0xff << 5) also sets bits
 * 12:9, which are RES0 (QEMU keeps them, hardware need not: a value read back
 * could differ), so it is not used here.
 */
#define DBGBCR_BAS_A64	(0xf << 5)
#define DBGBCR_EXEC	(0x0 << 3)
#define DBGBCR_EL1	(0x1 << 1)
#define DBGBCR_E	(0x1 << 0)
#define DBGBCR_PMC_SHIFT	1
#define DBGBCR_LBN_SHIFT	16
#define DBGBCR_BT_SHIFT		20
#define DBGBCR_BT_ADDR_LINK_CTX	(0x1 << DBGBCR_BT_SHIFT)

#define DBGWCR_LEN8	(0xff << 5)
#define DBGWCR_RD	(0x1 << 3)
#define DBGWCR_WR	(0x2 << 3)
#define DBGWCR_EL1	(0x1 << 1)
#define DBGWCR_E	(0x1 << 0)
#define DBGWCR_LSC_SHIFT	3
#define DBGWCR_LBN_SHIFT	16
#define DBGWCR_WT_SHIFT		20
#define DBGWCR_WT_LINK		(0x1 << DBGWCR_WT_SHIFT)

/* ISS.WnR of a watchpoint exception (asm/esr.h: ESR_ELx_WNR). */
#define ESR_WP_WNR	(1UL << 6)
#define ESR_EC(esr)	(((esr) >> ESR_EC_SHIFT) & ESR_EC_MASK)

#define MAX_DBG		KVM_ARM_MAX_DBG_REGS	/* 16 of each kind */

static uint64_t rounds = 4000;

/* ---- what the guest writes: one table, computed the same in guest and VMM ---- */

struct dbg_regs {
	uint64_t bcr[MAX_DBG], bvr[MAX_DBG], wcr[MAX_DBG], wvr[MAX_DBG];
	int nbrp, nwrp, nctx;	/* BRPs + 1, WRPs + 1, CTX_CMPs + 1 */
};

/*
 * The guest's breakpoint targets, 16 bytes apart (nop; ret), and the VMM's.
 * Guest and host see the same addresses (the test is a static executable,
 * loaded into the guest at its link addresses).
 */
asm(".pushsection .text\n"
    ".balign 64\n"
    ".globl dst_bp_targets\n"
    "dst_bp_targets:\n"
    ".rept 16\n nop\n ret\n .balign 16\n .endr\n"
    ".globl dst_vmm_bp_fn\n"
    "dst_vmm_bp_fn:\n nop\n ret\n"
    ".popsection\n");
extern char dst_bp_targets[], dst_vmm_bp_fn[];
extern char dst_ss_start[], dst_ss_end[], dst_vmm_wp_store[];

#define BP_TARGET(n)	((uint64_t)dst_bp_targets + 16 * (n))
/* The guest's watchpoint targets: 8 bytes each, 64 apart. */
static volatile uint64_t wp_targets[MAX_DBG][8] __aligned(64);
#define WP_TARGET(n)	((uint64_t)&wp_targets[n][0])
/* The VMM's watchpoint target, away from the guest's. */
static volatile uint64_t vmm_wp_var[8] __aligned(64);
#define VMM_WP_MAGIC	0x5eed0fdb9ull

/*
 * Every even-numbered one and the highest are enabled; the others hold
 * markers. The values change every READBACK_EVERY rounds (the epoch), written
 * while the registers are the guest's own, untrapped: a save that missed them
 * at an exit would bring the old ones back.
 */
static bool dbg_enabled(int n, int count)
{
	return n % 2 == 0 || n == count - 1;
}

static int dbg_nr_enabled(int count)
{
	int e = 0;

	for (int n = 0; n < count; n++)
		e += dbg_enabled(n, count);
	return e;
}

/*
 * The values of @epoch: enabled breakpoints at BP_TARGET(n + epoch), EL1, A64;
 * enabled watchpoints on WP_TARGET(n + epoch), 8 bytes, loads and stores,
 * EL1 (numbers modulo 16: distinct targets). The disabled ones: E=0, linked
 * (so that LBN, which the architecture ignores and reads as UNKNOWN for
 * unlinked ones, is defined) to one of the context-aware breakpoints (the
 * highest numbers), PMC or LSC and LBN varying with the number and epoch;
 * value registers aligned as the architecture requires (DBGBVR bits 1:0,
 * DBGWVR bits 2:0 for 8 bytes), below bit 48, distinct per number and epoch.
 */
static void dbg_fill(struct dbg_regs *d, uint64_t dfr0, uint64_t epoch)
{
	d->nbrp = FIELD_GET(ARM64_FEATURE_MASK(ID_AA64DFR0_EL1_BRPs), dfr0) + 1;
	d->nwrp = FIELD_GET(ARM64_FEATURE_MASK(ID_AA64DFR0_EL1_WRPs), dfr0) + 1;
	d->nctx = FIELD_GET(ARM64_FEATURE_MASK(ID_AA64DFR0_EL1_CTX_CMPs), dfr0) + 1;
	for (int n = 0; n < d->nbrp; n++) {
		uint64_t m = (n + epoch) % MAX_DBG, ctx = d->nbrp - d->nctx + (n + epoch) % d->nctx;

		if (dbg_enabled(n, d->nbrp)) {
			d->bvr[n] = BP_TARGET(m);
			d->bcr[n] = DBGBCR_BAS_A64 | DBGBCR_EXEC | DBGBCR_EL1 | DBGBCR_E;
		} else {
			d->bvr[n] = 0x0000b0b000000000ull | ((uint64_t)n << 32) |
				    ((epoch & 0xfffff) << 12) | 0xde0;
			d->bcr[n] = DBGBCR_BAS_A64 | DBGBCR_BT_ADDR_LINK_CTX |
				    (ctx << DBGBCR_LBN_SHIFT) |
				    (((n + epoch) % 3 + 1) << DBGBCR_PMC_SHIFT);
		}
	}
	for (int n = 0; n < d->nwrp; n++) {
		uint64_t m = (n + epoch) % MAX_DBG, ctx = d->nbrp - d->nctx + (n + epoch) % d->nctx;

		if (dbg_enabled(n, d->nwrp)) {
			d->wvr[n] = WP_TARGET(m);
			d->wcr[n] = DBGWCR_LEN8 | DBGWCR_RD | DBGWCR_WR | DBGWCR_EL1 | DBGWCR_E;
		} else {
			d->wvr[n] = 0x0000c0c000000000ull | ((uint64_t)n << 32) |
				    ((epoch & 0xfffff) << 12) | 0xfe8;
			d->wcr[n] = DBGWCR_LEN8 | DBGWCR_WT_LINK | (ctx << DBGWCR_LBN_SHIFT) |
				    (((n + epoch) % 3 + 1) << DBGWCR_LSC_SHIFT) | DBGWCR_EL1;
		}
	}
}

/* ---- guest ---- */

#define EACH_DBG(M, reg) M(reg, 0) M(reg, 1) M(reg, 2) M(reg, 3) M(reg, 4) M(reg, 5)	\
	M(reg, 6) M(reg, 7) M(reg, 8) M(reg, 9) M(reg, 10) M(reg, 11) M(reg, 12)	\
	M(reg, 13) M(reg, 14) M(reg, 15)
#define RD_CASE(reg, n)	case n: return read_sysreg(reg##n##_el1);
#define WR_CASE(reg, n)	case n: write_sysreg(val, reg##n##_el1); return;
#define GEN_DBG_ACCESS(reg)						\
static uint64_t read_##reg(int n)					\
{									\
	switch (n) { EACH_DBG(RD_CASE, reg) }				\
	GUEST_FAIL("no " #reg "%d", n);					\
	return 0;							\
}									\
static void write_##reg(int n, uint64_t val)				\
{									\
	switch (n) { EACH_DBG(WR_CASE, reg) }				\
	GUEST_FAIL("no " #reg "%d", n);					\
}
GEN_DBG_ACCESS(dbgbcr)
GEN_DBG_ACCESS(dbgbvr)
GEN_DBG_ACCESS(dbgwcr)
GEN_DBG_ACCESS(dbgwvr)

enum phase {
	PH_GIC = 1,	/* GIC up, nothing of debug touched yet */
	PH_CLEAN,	/* exits with the debug state clean */
	PH_ARMED,	/* every register written, the enabled ones fired */
	PH_LIVE,	/* exits with the guest's debug state live */
	PH_VMM,		/* the VMM's single-step and breakpoints are over */
	PH_AFTER,	/* exits again, live */
	PH_OFF,		/* monitor debug off (MDSCR_EL1 0) */
	PH_DONE,	/* exits with the state clean again, registers read back */
};

/* (For messages.) */
static const char *const phase_name[] = {
	[PH_GIC] = "gic", [PH_CLEAN] = "clean", [PH_ARMED] = "armed", [PH_LIVE] = "live",
	[PH_VMM] = "vmm", [PH_AFTER] = "after", [PH_OFF] = "off", [PH_DONE] = "done",
};

static struct dbg_regs want;
static uint64_t guest_dfr0, epoch;

/* What the guest's EL1 handlers saw. */
static volatile uint64_t bp_hits, bp_pc, bp_esr, bp_spsr;
static volatile uint64_t wp_hits, wp_far, wp_esr, wp_spsr;

/*
 * Both return with PSTATE.D set (as upstream's handlers do), so that the
 * instruction runs without taking the exception again; the caller unmasks
 * debug exceptions right after it.
 */
static void guest_bp_handler(struct ex_regs *regs)
{
	bp_hits++;
	bp_pc = regs->pc;
	bp_esr = read_sysreg(esr_el1);
	bp_spsr = regs->pstate;
	regs->pstate |= PSR_D_BIT;
}

static void guest_wp_handler(struct ex_regs *regs)
{
	wp_hits++;
	wp_far = read_sysreg(far_el1);
	wp_esr = read_sysreg(esr_el1);
	wp_spsr = regs->pstate;
	regs->pstate |= PSR_D_BIT;
}

#define UNMASK_DEBUG	"msr daifclr, #8\n isb\n"

/* Calls enabled breakpoint @n's target: the guest's EL1 takes EC 0x31 there, once. */
static void guest_fire_bp(int n, int phase)
{
	uint64_t hits = bp_hits, pc = want.bvr[n];

	((void (*)(void))pc)();
	asm volatile(UNMASK_DEBUG ::: "memory");
	__GUEST_ASSERT(bp_hits == hits + 1, "%s: breakpoint %d at 0x%lx: %lu hits, expected 1",
		       phase_name[phase], n, pc, bp_hits - hits);
	__GUEST_ASSERT(bp_pc == pc && ESR_EC(bp_esr) == ESR_EC_HW_BP_CURRENT &&
		       (bp_spsr & PSR_MODE_MASK) == PSR_MODE_EL1h,
		       "%s: breakpoint %d: taken at 0x%lx (expected 0x%lx), ESR 0x%lx "
		       "(expected EC 0x%x), from SPSR 0x%lx (expected EL1h)", phase_name[phase], n,
		       bp_pc, pc, bp_esr, ESR_EC_HW_BP_CURRENT, bp_spsr);
}

/*
 * Stores @val to watchpoint @n's variable, then loads it: the guest's EL1
 * takes EC 0x35 before each, FAR the variable, WnR set for the store only;
 * the store then goes through.
 */
static void guest_fire_wp(int n, uint64_t val, int phase)
{
	uint64_t hits = wp_hits, addr = want.wvr[n], got;

	asm volatile("str %1, [%0]\n" UNMASK_DEBUG : : "r"(addr), "r"(val) : "memory");
	__GUEST_ASSERT(wp_hits == hits + 1, "%s: watchpoint %d at 0x%lx, store: %lu hits, "
		       "expected 1", phase_name[phase], n, addr, wp_hits - hits);
	__GUEST_ASSERT(wp_far == addr && ESR_EC(wp_esr) == ESR_EC_WP_CURRENT &&
		       (wp_esr & ESR_WP_WNR) && (wp_spsr & PSR_MODE_MASK) == PSR_MODE_EL1h,
		       "%s: watchpoint %d, store: FAR 0x%lx (expected 0x%lx), ESR 0x%lx "
		       "(expected EC 0x%x, WnR), SPSR 0x%lx", phase_name[phase], n, wp_far, addr,
		       wp_esr, ESR_EC_WP_CURRENT, wp_spsr);
	asm volatile("ldr %0, [%1]\n" UNMASK_DEBUG : "=r"(got) : "r"(addr) : "memory");
	__GUEST_ASSERT(wp_hits == hits + 2, "%s: watchpoint %d at 0x%lx, load: %lu hits, "
		       "expected 1", phase_name[phase], n, addr, wp_hits - hits - 1);
	__GUEST_ASSERT(wp_far == addr && ESR_EC(wp_esr) == ESR_EC_WP_CURRENT &&
		       !(wp_esr & ESR_WP_WNR), "%s: watchpoint %d, load: FAR 0x%lx (expected "
		       "0x%lx), ESR 0x%lx (expected EC 0x%x, not WnR)", phase_name[phase], n,
		       wp_far, addr, wp_esr, ESR_EC_WP_CURRENT);
	__GUEST_ASSERT(got == val, "%s: watchpoint %d's variable holds 0x%lx, stored 0x%lx",
		       phase_name[phase], n, got, val);
}

static void guest_fire_all(uint64_t tag, int phase)
{
	for (int n = 0; n < want.nbrp; n++)
		if (dbg_enabled(n, want.nbrp))
			guest_fire_bp(n, phase);
	for (int n = 0; n < want.nwrp; n++)
		if (dbg_enabled(n, want.nwrp))
			guest_fire_wp(n, tag ^ ((uint64_t)n << 56), phase);
}

/* Breakpoint (@bw 'B') or watchpoint ('W') @n: control @cr and value @vr as read. */
static void guest_check_pair(int phase, char bw, int n, uint64_t cr, uint64_t vr, uint64_t want_cr,
			     uint64_t want_vr)
{
	__GUEST_ASSERT(cr == want_cr, "%s: DBG%cCR%d_EL1 is 0x%lx, wrote 0x%lx", phase_name[phase],
		       bw, n, cr, want_cr);
	__GUEST_ASSERT(vr == want_vr, "%s: DBG%cVR%d_EL1 is 0x%lx, wrote 0x%lx", phase_name[phase],
		       bw, n, vr, want_vr);
}

/*
 * Every register read back and compared. With @untrap, one of them is
 * written first (its own value): with the registers trapped (MDCR_EL2.TDA,
 * set at every entry that finds DEBUG_DIRTY clear), that write traps and sets
 * DEBUG_DIRTY, so KVM enters the guest again with its registers loaded and
 * untrapped: the reads then see the registers themselves, unless an exit
 * comes between (then KVM's copy, saved from them at that exit).
 */
static void guest_readback(bool untrap, int phase)
{
	if (untrap) {
		write_dbgbvr(0, want.bvr[0]);
		isb();
	}
	for (int n = 0; n < want.nbrp; n++) {
		uint64_t bcr = read_dbgbcr(n), bvr = read_dbgbvr(n);

		guest_check_pair(phase, 'B', n, bcr, bvr, want.bcr[n], want.bvr[n]);
	}
	for (int n = 0; n < want.nwrp; n++) {
		uint64_t wcr = read_dbgwcr(n), wvr = read_dbgwvr(n);

		guest_check_pair(phase, 'W', n, wcr, wvr, want.wcr[n], want.wvr[n]);
	}
}

static void guest_check_mdscr(uint64_t expect, int phase)
{
	uint64_t mdscr = read_sysreg(mdscr_el1);

	__GUEST_ASSERT(mdscr == expect, "%s: MDSCR_EL1 is 0x%lx, wrote 0x%lx", phase_name[phase],
		       mdscr, expect);
}

/* Every register written with the values of epoch @e. */
static void guest_program(uint64_t e)
{
	epoch = e;
	dbg_fill(&want, guest_dfr0, epoch);
	/* (n < MAX_DBG: BRPs and WRPs are 4 bits, the compiler does not know.) */
	for (int n = 0; n < want.nbrp && n < MAX_DBG; n++) {
		write_dbgbcr(n, want.bcr[n]);
		write_dbgbvr(n, want.bvr[n]);
	}
	for (int n = 0; n < want.nwrp && n < MAX_DBG; n++) {
		write_dbgwcr(n, want.wcr[n]);
		write_dbgwvr(n, want.wvr[n]);
	}
	isb();
}

/* The OS lock released, every register written, monitor debug on at EL1. */
static void guest_arm(void)
{
	guest_dfr0 = read_sysreg(id_aa64dfr0_el1);
	write_sysreg(0, osdlr_el1);
	write_sysreg(0, oslar_el1);
	isb();
	guest_program(0);
	write_sysreg(MDSCR_EL1_KDE | MDSCR_EL1_MDE, mdscr_el1);
	isb();
	asm volatile(UNMASK_DEBUG ::: "memory");
}

#define VTIMER_IRQ	27

/* As el2_exits_test: the virtual timer's PPI enabled, PSTATE.I stays set. */
static void guest_gic_for_wfi(void)
{
	gic_init(GIC_V3, 1);
	gic_irq_enable(VTIMER_IRQ);
	gic_set_priority_mask(0xff);
}


#define SS_INSNS	8	/* the single-stepped sequence */
#define READBACK_EVERY	16	/* rounds between read-backs */

/*
 * @n rounds of one exit each: hvc (SMCCC_VERSION, answered by the host), an
 * MMIO write to userspace (a tag the VMM checks), WFI woken by the virtual
 * timer (armed 0.5 ms ahead, waited for in WFI, then masked). With @live, the
 * guest hits all its enabled breakpoints and watchpoints each round, and every
 * READBACK_EVERY rounds reads every register back and writes the next epoch's
 * values (untrapped, right after the read-back's trapped write).
 */
static void guest_exits(uint64_t n, bool live, int phase)
{
	uint64_t tval = read_sysreg(cntfrq_el0) / 2000, x;
	struct arm_smccc_res res;

	for (uint64_t r = 0; r < n; r++) {
		smccc_hvc(ARM_SMCCC_VERSION_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
		__GUEST_ASSERT(res.a0 >= ARM_SMCCC_VERSION_1_1 && res.a0 < (1ULL << 31),
			       "SMCCC_VERSION answered 0x%lx", res.a0);
		WRITE_ONCE(*(volatile uint64_t *)MMIO_GPA, ((uint64_t)phase << 32) | r);
		asm volatile("msr cntv_ctl_el0, xzr\n msr cntv_tval_el0, %[tval]\n"
			     "mov %[x], #1\n msr cntv_ctl_el0, %[x]\n isb\n"
			     "9: wfi\n mrs %[x], cntv_ctl_el0\n tbz %[x], #2, 9b\n"
			     "mov %[x], #2\n msr cntv_ctl_el0, %[x]\n isb\n"
			     : [x] "=&r"(x) : [tval] "r"(tval) : "memory");
		if (live) {
			guest_fire_all((r << 8) | phase, phase);
			if (r % READBACK_EVERY == READBACK_EVERY - 1) {
				guest_readback(true, phase);
				guest_program(epoch + 1);
			}
		}
	}
}

/*
 * The VMM's part: a bare ucall (no atomics: upstream's single-step test says
 * why), after which it single-steps SS_INSNS adds (x counts them); then its
 * breakpoint on dst_vmm_bp_fn and its watchpoint on vmm_wp_var.
 */
static noinline void guest_vmm_part(void)
{
	uint64_t x = 0, addr = (uint64_t)&vmm_wp_var[0], magic = VMM_WP_MAGIC;

	GUEST_UCALL_NONE();
	asm volatile(".globl dst_ss_start\n dst_ss_start:\n"
		     ".rept " __stringify(SS_INSNS) "\n add %0, %0, #1\n .endr\n"
		     ".globl dst_ss_end\n dst_ss_end:\n" : "+r"(x));
	GUEST_ASSERT_EQ(x, SS_INSNS);
	((void (*)(void))dst_vmm_bp_fn)();
	asm volatile(".globl dst_vmm_wp_store\n dst_vmm_wp_store: str %1, [%0]\n"
		     : : "r"(addr), "r"(magic) : "memory");
	GUEST_ASSERT_EQ(vmm_wp_var[0], VMM_WP_MAGIC);
}

/* A sync with the epoch, for the VMM's own reading of the registers. */
#define SYNC(phase)	GUEST_SYNC_ARGS(phase, epoch, 0, 0, 0)

static void guest_code(uint64_t n)
{
	guest_gic_for_wfi();
	SYNC(PH_GIC);
	guest_exits(n / 4, false, PH_CLEAN);
	SYNC(PH_CLEAN);

	guest_arm();
	guest_fire_all(0xa11, PH_ARMED);
	guest_readback(true, PH_ARMED);
	guest_check_mdscr(MDSCR_EL1_KDE | MDSCR_EL1_MDE, PH_ARMED);
	SYNC(PH_ARMED);

	guest_exits(n, true, PH_LIVE);
	guest_readback(true, PH_LIVE);
	SYNC(PH_LIVE);

	guest_vmm_part();
	SYNC(PH_VMM);

	/* After the VMM's debugging: everything of the guest's as it was. */
	guest_check_mdscr(MDSCR_EL1_KDE | MDSCR_EL1_MDE, PH_AFTER);
	guest_readback(false, PH_AFTER);
	guest_fire_all(0xaf7e2, PH_AFTER);
	guest_exits(n / 4, true, PH_AFTER);
	guest_readback(true, PH_AFTER);
	SYNC(PH_AFTER);

	/* Monitor debug off: the registers keep their values, the state is clean. */
	asm volatile("msr daifset, #8" ::: "memory");
	write_sysreg(0, mdscr_el1);
	isb();
	SYNC(PH_OFF);
	guest_exits(n / 4, false, PH_DONE);
	guest_check_mdscr(0, PH_DONE);
	guest_readback(false, PH_DONE);
	GUEST_DONE();
}

/* ---- host: perf breakpoints of the threads' own ---- */

/* Each thread's breakpoint target (nop; ret) and watched variables. */
asm(".pushsection .text\n"
    ".balign 64\n .globl dst_host_x_vcpu\n dst_host_x_vcpu:\n nop\n ret\n"
    ".balign 64\n .globl dst_host_x_side\n dst_host_x_side:\n nop\n ret\n"
    ".popsection\n");
extern char dst_host_x_vcpu[], dst_host_x_side[];

struct host_bps {
	const char *who;
	void (*x)(void);
	volatile uint64_t *w, *rw;
	int fd_x, fd_w, fd_rw;
	uint64_t hits;		/* rounds of host_hit() */
};

static volatile uint64_t host_w_vcpu __aligned(64), host_rw_vcpu __aligned(64);
static volatile uint64_t host_w_side __aligned(64), host_rw_side __aligned(64);

static int perf_bp_open(const char *who, uint32_t type, uint64_t addr, uint64_t len)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_BREAKPOINT,
		.size = sizeof(attr),
		.bp_type = type,
		.bp_addr = addr,
		.bp_len = len,
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};
	int fd = syscall(__NR_perf_event_open, &attr, 0, -1, -1, 0);

	TEST_ASSERT(fd >= 0, "%s: perf_event_open(PERF_TYPE_BREAKPOINT, bp_type %u at 0x%lx)",
		    who, type, addr);
	return fd;
}

/* Hardware breakpoint and watchpoints of the calling thread (pid 0, any CPU). */
static void host_bps_open(struct host_bps *b)
{
	b->fd_x = perf_bp_open(b->who, HW_BREAKPOINT_X, (uint64_t)b->x, HW_BREAKPOINT_LEN_4);
	b->fd_w = perf_bp_open(b->who, HW_BREAKPOINT_W, (uint64_t)b->w, HW_BREAKPOINT_LEN_8);
	b->fd_rw = perf_bp_open(b->who, HW_BREAKPOINT_RW, (uint64_t)b->rw, HW_BREAKPOINT_LEN_8);
}

/* One hit of the breakpoint, one store to w, one load and one store to rw. */
static void host_hit(struct host_bps *b)
{
	uint64_t v;

	b->x();
	asm volatile("str %1, [%0]" : : "r"(b->w), "r"(b->hits) : "memory");
	asm volatile("ldr %0, [%1]\n add %0, %0, #1\n str %0, [%1]"
		     : "=&r"(v) : "r"(b->rw) : "memory");
	b->hits++;
}

static uint64_t perf_count(int fd)
{
	uint64_t c;

	TEST_ASSERT(read(fd, &c, sizeof(c)) == sizeof(c), "read(perf fd)");
	return c;
}

/* Every perf count is exactly the hits: the host's registers were never lost. */
static void host_bps_check(struct host_bps *b, const char *when)
{
	uint64_t x = perf_count(b->fd_x), w = perf_count(b->fd_w), rw = perf_count(b->fd_rw);

	TEST_ASSERT(x == b->hits && w == b->hits && rw == 2 * b->hits,
		    "%s, %s: perf counted %lu breakpoint, %lu write-watchpoint, %lu "
		    "read/write-watchpoint hits; the thread made %lu, %lu and %lu",
		    b->who, when, x, w, rw, b->hits, b->hits, 2 * b->hits);
}

static int ncpus;

/* ---- the other host thread ---- */

#define SIDE_BATCH	64

static struct host_bps side = {
	.who = "side thread", .x = (void (*)(void))dst_host_x_side,
	.w = &host_w_side, .rw = &host_rw_side,
};
static volatile bool side_ready, side_stop;
static volatile uint64_t side_batches;

static void *side_thread(void *arg)
{
	host_bps_open(&side);
	__atomic_store_n(&side_ready, true, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&side_stop, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < SIDE_BATCH; i++)
			host_hit(&side);
		vhe_rs_migrate(side_batches, ncpus);
		__atomic_store_n(&side_batches, side_batches + 1, __ATOMIC_RELEASE);
		sched_yield();
	}
	return NULL;
}

/* ---- host: the VMM ---- */

static struct host_bps vcpu_bps = {
	.who = "vCPU thread", .x = (void (*)(void))dst_host_x_vcpu,
	.w = &host_w_vcpu, .rw = &host_rw_vcpu,
};
static uint64_t user_exits, mmio_writes;

/* KVM_RUN once, then the vCPU thread hits its own breakpoints and moves. */
static void run_once(struct kvm_vcpu *vcpu)
{
	vcpu_run(vcpu);
	host_hit(&vcpu_bps);
	vhe_rs_migrate(++user_exits, ncpus);
}

/* Runs to the next ucall, answering the MMIO writes (the tag: phase, round). */
static uint64_t run_to_ucall(struct kvm_vcpu *vcpu, struct ucall *uc, int phase)
{
	struct kvm_run *run = vcpu->run;
	uint64_t r = 0;

	for (;;) {
		run_once(vcpu);
		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == MMIO_GPA) {
			uint64_t tag;

			TEST_ASSERT(run->mmio.is_write && run->mmio.len == 8,
				    "MMIO: not an 8-byte write");
			memcpy(&tag, run->mmio.data, 8);
			TEST_ASSERT(tag == (((uint64_t)phase << 32) | r), "%s: MMIO write 0x%lx, "
				    "expected 0x%lx", phase_name[phase], tag,
				    ((uint64_t)phase << 32) | r);
			r++;
			mmio_writes++;
			continue;
		}
		switch (get_ucall(vcpu, uc)) {
		case UCALL_SYNC:
		case UCALL_DONE:
		case UCALL_NONE:
			return uc->cmd;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(*uc);
		default:
			TEST_FAIL("%s: unexpected exit %s", phase_name[phase],
				  exit_reason_str(run->exit_reason));
		}
	}
}

/* Runs to the guest's sync of @phase, whose epoch must be @epoch. */
static void expect_sync(struct kvm_vcpu *vcpu, int phase, int run_phase, uint64_t epoch)
{
	struct ucall uc;

	TEST_ASSERT_EQ(run_to_ucall(vcpu, &uc, run_phase), UCALL_SYNC);
	TEST_ASSERT(uc.args[1] == (uint64_t)phase && uc.args[2] == epoch, "guest at phase %lu, "
		    "epoch %lu; expected %d, %lu", uc.args[1], uc.args[2], phase, epoch);
	host_bps_check(&vcpu_bps, "at a guest sync");
}

/* Breakpoint (@bw 'B') or watchpoint ('W') @n: its control and value registers as KVM has them. */
static void vmm_check_pair(struct kvm_vcpu *vcpu, const char *when, char bw, int n, uint64_t cr_id,
			   uint64_t vr_id, uint64_t want_cr, uint64_t want_vr)
{
	uint64_t cr, vr;

	vcpu_get_reg(vcpu, cr_id, &cr);
	vcpu_get_reg(vcpu, vr_id, &vr);
	TEST_ASSERT(cr == want_cr && vr == want_vr, "%s: KVM_GET_ONE_REG DBG%cCR%d/DBG%cVR%d "
		    "0x%lx/0x%lx, the guest wrote 0x%lx/0x%lx", when, bw, n, bw, n, cr, vr, want_cr,
		    want_vr);
}

/*
 * The guest's registers as KVM holds them (KVM_GET_ONE_REG), the guest in
 * userspace: the values of @epoch, or with @reset those of a new vCPU (0).
 */
static void vmm_check_regs(struct kvm_vcpu *vcpu, uint64_t dfr0, uint64_t epoch, bool reset,
			   const char *when)
{
	struct dbg_regs dd, *d = &dd;

	dbg_fill(d, dfr0, epoch);
	if (reset) {
		memset(d->bcr, 0, sizeof(d->bcr));
		memset(d->bvr, 0, sizeof(d->bvr));
		memset(d->wcr, 0, sizeof(d->wcr));
		memset(d->wvr, 0, sizeof(d->wvr));
	}
	for (int n = 0; n < d->nbrp; n++)
		vmm_check_pair(vcpu, when, 'B', n, KVM_ARM64_SYS_REG(SYS_DBGBCRn_EL1(n)),
			       KVM_ARM64_SYS_REG(SYS_DBGBVRn_EL1(n)), d->bcr[n], d->bvr[n]);
	for (int n = 0; n < d->nwrp; n++)
		vmm_check_pair(vcpu, when, 'W', n, KVM_ARM64_SYS_REG(SYS_DBGWCRn_EL1(n)),
			       KVM_ARM64_SYS_REG(SYS_DBGWVRn_EL1(n)), d->wcr[n], d->wvr[n]);
}

static uint64_t vcpu_pc(struct kvm_vcpu *vcpu)
{
	uint64_t pc;

	vcpu_get_reg(vcpu, ARM64_CORE_REG(regs.pc), &pc);
	return pc;
}

/* One KVM_RUN that must end in KVM_EXIT_DEBUG of class @ec; returns the PC. */
static uint64_t run_expect_debug(struct kvm_vcpu *vcpu, unsigned int ec, const char *what)
{
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	run_once(vcpu);
	if (run->exit_reason != KVM_EXIT_DEBUG && get_ucall(vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT(run->exit_reason == KVM_EXIT_DEBUG, "%s: exit %s, expected KVM_EXIT_DEBUG",
		    what, exit_reason_str(run->exit_reason));
	TEST_ASSERT(ESR_EC(run->debug.arch.hsr) == ec, "%s: KVM_EXIT_DEBUG with ESR 0x%x, "
		    "expected EC 0x%x", what, run->debug.arch.hsr, ec);
	return vcpu_pc(vcpu);
}

/* ---- the module's counters, per window ---- */

struct dsnap {
	struct vhe_rs_exits e;	/* e.valid: the module is loaded and enabled */
	long switched, clean, ss, hw;
};

static struct dsnap dsnap(void)
{
	struct dsnap s = { .e = vhe_rs_exits() };

	if (!s.e.valid)
		return s;
	s.switched = vhe_rs_stat("debug_switched");
	s.clean = vhe_rs_stat("debug_clean_runs");
	s.ss = vhe_rs_stat("debug_vmm_ss");	/* -1: the stats have no such line */
	s.hw = vhe_rs_stat("debug_vmm_hw");
	TEST_ASSERT(s.switched >= 0 && s.clean >= 0,
		    VHE_RS_STATS ": no debug_switched or debug_clean_runs line");
	return s;
}

/*
 * debug_vmm_ss and debug_vmm_hw (counted by the Rust setup_debug, parts
 * "debug") are asserted, exactly, whenever the stats have both lines.
 */
static bool vmm_lines;
static char module_parts[128];

static void read_module_parts(void)
{
	FILE *f = fopen("/sys/module/vhe_rs/parameters/parts", "r");

	if (f && fgets(module_parts, sizeof(module_parts), f))
		module_parts[strcspn(module_parts, "\n")] = 0;
	if (f)
		fclose(f);
}

#define RUNS(a, b)	((b).e.vcpu_run - (a).e.vcpu_run)
#define SW(a, b)	((b).switched - (a).switched)
#define CL(a, b)	((b).clean - (a).clean)
#define SS(a, b)	((b).ss - (a).ss)
#define HW(a, b)	((b).hw - (a).hw)
#define DBG_EXITS(a, b)	(EL2_D(a.e, b.e, EC_BREAKPT_LOW) + HOST_D(a.e, b.e, EC_BREAKPT_LOW) + \
			 EL2_D(a.e, b.e, EC_WATCHPT_LOW) + HOST_D(a.e, b.e, EC_WATCHPT_LOW) + \
			 EL2_D(a.e, b.e, EC_SOFTSTP_LOW) + HOST_D(a.e, b.e, EC_SOFTSTP_LOW))

/* Asserts a counter delta, with what it is, in the module pass only. */
#define EXPECT(cond, fmt, ...) TEST_ASSERT(cond, "module counters: " fmt, ##__VA_ARGS__)

/*
 * A window of runs with the guest's debug state @live (every entry switches
 * the registers) or clean (none does); @min_runs: the runs the guest's exits
 * take at least, 2 a round (hvc and MMIO always exit; WFI need not: with the
 * timer's interrupt already pending it completes without trapping, which
 * QEMU does when TCG was slow to reach it). No VMM debugging in it: no
 * single-step or USE_HW run, and the guest's own debug exceptions stay in
 * the guest.
 */
static void expect_window(const char *name, struct dsnap a, struct dsnap b, bool live,
			  long min_runs)
{
	if (!b.e.valid)
		return;
	EXPECT(RUNS(a, b) >= min_runs, "%s: vcpu_run +%ld, expected >= %ld", name, RUNS(a, b),
	       min_runs);
	EXPECT(SW(a, b) == (live ? RUNS(a, b) : 0) && CL(a, b) == (live ? 0 : RUNS(a, b)),
	       "%s: debug_switched +%ld, debug_clean_runs +%ld for %ld runs with the debug state "
	       "%s", name, SW(a, b), CL(a, b), RUNS(a, b), live ? "live" : "clean");
	EXPECT(DBG_EXITS(a, b) == 0, "%s: %ld debug exits (BREAKPT/WATCHPT/SOFTSTP_LOW): the "
	       "guest's own debug exceptions left it", name, DBG_EXITS(a, b));
	if (vmm_lines)
		EXPECT(SS(a, b) == 0 && HW(a, b) == 0, "%s: debug_vmm_ss +%ld, debug_vmm_hw +%ld "
		       "without KVM_SET_GUEST_DEBUG", name, SS(a, b), HW(a, b));
}

static void test_debug_state(void)
{
	struct dsnap s_gic, s_clean, s_armed, s_live, s_ss0, s_hw0, s_hw1, s_vmm, s_after,
		     s_off, s_done;
	struct kvm_guest_debug dbg = { 0 };
	struct kvm_vcpu *vcpu;
	struct dbg_regs d;
	struct kvm_vm *vm;
	struct ucall uc;
	uint64_t dfr0, pc, ss_runs = 0, ss_pre = 0, ss_seq = 0, side0, side1;
	/* The guest's epochs: one per READBACK_EVERY live rounds. */
	uint64_t e_live = rounds / READBACK_EVERY;
	uint64_t e_after = e_live + rounds / 4 / READBACK_EVERY;
	pthread_t side_tid;
	char vmm[160];
	int gic;

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	virt_map(vm, MMIO_GPA, MMIO_GPA, 1);
	vm_init_descriptor_tables(vm);
	vcpu_init_descriptor_tables(vcpu);
	vm_install_sync_handler(vm, VECTOR_SYNC_CURRENT, ESR_EC_HW_BP_CURRENT, guest_bp_handler);
	vm_install_sync_handler(vm, VECTOR_SYNC_CURRENT, ESR_EC_WP_CURRENT, guest_wp_handler);
	gic = vgic_v3_setup(vm, 1, 64);
	TEST_REQUIRE(gic >= 0);
	vcpu_args_set(vcpu, 1, rounds);

	/* What the guest will write, from the ID register as KVM shows it. */
	vcpu_get_reg(vcpu, KVM_ARM64_SYS_REG(SYS_ID_AA64DFR0_EL1), &dfr0);
	dbg_fill(&d, dfr0, 0);
	printf("debug_state_test: ID_AA64DFR0_EL1 0x%lx: %d breakpoints (BRPs %d), %d watchpoints "
	       "(WRPs %d), %d context-aware; %d CPUs; %lu rounds\n", dfr0, d.nbrp, d.nbrp - 1,
	       d.nwrp, d.nwrp - 1, d.nctx, ncpus, rounds);

	/* The host's own: this thread's, and the other thread's, armed before the guest runs. */
	host_bps_open(&vcpu_bps);
	TEST_ASSERT(!pthread_create(&side_tid, NULL, side_thread, NULL), "pthread_create");
	while (!__atomic_load_n(&side_ready, __ATOMIC_ACQUIRE))
		usleep(1000);

	expect_sync(vcpu, PH_GIC, PH_CLEAN, 0);
	s_gic = dsnap();
	expect_sync(vcpu, PH_CLEAN, PH_CLEAN, 0);
	s_clean = dsnap();
	expect_window("clean, before the guest touches debug", s_gic, s_clean, false,
		      2 * (rounds / 4));
	vmm_check_regs(vcpu, dfr0, 0, true, "before the guest writes them (reset values)");

	expect_sync(vcpu, PH_ARMED, PH_ARMED, 0);
	vmm_check_regs(vcpu, dfr0, 0, false, "armed, the guest in userspace");
	s_armed = dsnap();
	side0 = __atomic_load_n(&side_batches, __ATOMIC_ACQUIRE);
	expect_sync(vcpu, PH_LIVE, PH_LIVE, e_live);
	s_live = dsnap();
	side1 = __atomic_load_n(&side_batches, __ATOMIC_ACQUIRE);
	TEST_ASSERT(side1 > side0, "the side thread hit nothing while the guest's debug state "
		    "was live (%lu batches before, %lu after)", side0, side1);
	vhe_rs_exits_print("live", s_armed.e, s_live.e);
	expect_window("live", s_armed, s_live, true, 2 * rounds);
	vmm_check_regs(vcpu, dfr0, e_live, false, "live, the guest in userspace");

	/* The VMM single-steps: from the bare ucall to dst_ss_end. */
	TEST_ASSERT_EQ(run_to_ucall(vcpu, &uc, PH_VMM), UCALL_NONE);
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
	vcpu_guest_debug_set(vcpu, &dbg);
	s_ss0 = dsnap();
	for (pc = 0; pc != (uint64_t)dst_ss_start; ss_pre++) {
		TEST_ASSERT(ss_pre < 64, "single-step: dst_ss_start (0x%lx) not reached in 64 "
			    "steps (at 0x%lx)", (uint64_t)dst_ss_start, pc);
		pc = run_expect_debug(vcpu, EC_SOFTSTP_LOW, "single-step");
		ss_runs++;
	}
	while (pc != (uint64_t)dst_ss_end) {
		uint64_t next = run_expect_debug(vcpu, EC_SOFTSTP_LOW, "single-step");

		ss_runs++;
		ss_seq++;
		TEST_ASSERT(next == pc + 4 && ss_seq <= SS_INSNS, "single-step %lu: PC 0x%lx, "
			    "expected 0x%lx (dst_ss_start 0x%lx, end 0x%lx)", ss_seq, next, pc + 4,
			    (uint64_t)dst_ss_start, (uint64_t)dst_ss_end);
		pc = next;
	}
	TEST_ASSERT_EQ(ss_seq, SS_INSNS);

	/* The VMM's breakpoint, then its watchpoint (the breakpoint cleared to get past it). */
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW;
	dbg.arch.dbg_bvr[0] = (uint64_t)dst_vmm_bp_fn;
	dbg.arch.dbg_bcr[0] = DBGBCR_BAS_A64 | DBGBCR_EXEC | DBGBCR_EL1 | DBGBCR_E;
	dbg.arch.dbg_wvr[0] = (uint64_t)&vmm_wp_var[0];
	dbg.arch.dbg_wcr[0] = DBGWCR_LEN8 | DBGWCR_RD | DBGWCR_WR | DBGWCR_EL1 | DBGWCR_E;
	vcpu_guest_debug_set(vcpu, &dbg);
	s_hw0 = dsnap();
	pc = run_expect_debug(vcpu, EC_BREAKPT_LOW, "the VMM's breakpoint");
	TEST_ASSERT(pc == (uint64_t)dst_vmm_bp_fn, "the VMM's breakpoint: PC 0x%lx, expected 0x%lx",
		    pc, (uint64_t)dst_vmm_bp_fn);
	dbg.arch.dbg_bcr[0] = 0;
	vcpu_guest_debug_set(vcpu, &dbg);
	pc = run_expect_debug(vcpu, EC_WATCHPT_LOW, "the VMM's watchpoint");
	TEST_ASSERT(pc == (uint64_t)dst_vmm_wp_store &&
		    vcpu->run->debug.arch.far == (uint64_t)&vmm_wp_var[0],
		    "the VMM's watchpoint: PC 0x%lx, FAR 0x%llx; expected 0x%lx, 0x%lx", pc,
		    vcpu->run->debug.arch.far, (uint64_t)dst_vmm_wp_store,
		    (uint64_t)&vmm_wp_var[0]);
	/* Meanwhile KVM kept the guest's own. */
	vmm_check_regs(vcpu, dfr0, e_live, false, "with the VMM's hardware breakpoints on");
	s_hw1 = dsnap();
	dbg.control = 0;
	vcpu_guest_debug_set(vcpu, &dbg);
	expect_sync(vcpu, PH_VMM, PH_VMM, e_live);
	s_vmm = dsnap();
	vhe_rs_exits_print("the VMM's single-step and USE_HW", s_ss0.e, s_hw1.e);
	printf("debug_state_test: VMM: %lu single-steps to dst_ss_start, then %lu through it, "
	       "PC +4 each (KVM_EXIT_DEBUG, EC 0x%x); its breakpoint (EC 0x%x, PC right) and "
	       "watchpoint (EC 0x%x, FAR right) hit; guest debug off\n", ss_pre, ss_seq,
	       EC_SOFTSTP_LOW, EC_BREAKPT_LOW, EC_WATCHPT_LOW);

	expect_sync(vcpu, PH_AFTER, PH_AFTER, e_after);
	s_after = dsnap();
	expect_window("live, after the VMM's debugging", s_vmm, s_after, true, 2 * (rounds / 4));

	expect_sync(vcpu, PH_OFF, PH_OFF, e_after);
	s_off = dsnap();
	TEST_ASSERT_EQ(run_to_ucall(vcpu, &uc, PH_DONE), UCALL_DONE);
	s_done = dsnap();
	expect_window("clean, monitor debug off", s_off, s_done, false, 2 * (rounds / 4));
	host_bps_check(&vcpu_bps, "at the end");
	vmm_check_regs(vcpu, dfr0, e_after, false, "at the end");
	TEST_ASSERT_EQ(mmio_writes, 3 * (rounds / 4) + rounds);

	__atomic_store_n(&side_stop, true, __ATOMIC_RELEASE);
	TEST_ASSERT(!pthread_join(side_tid, NULL), "pthread_join");
	host_bps_check(&side, "at the end");

	printf("debug_state_test: guest: %d breakpoints and %d watchpoints written (%d and %d "
	       "enabled), %lu times new values; each enabled one hit at EL1 every round (%lu + %lu "
	       "rounds), all read back right, also after the VMM's debugging; %lu exits to "
	       "userspace, %lu MMIO\n", d.nbrp, d.nwrp, dbg_nr_enabled(d.nbrp),
	       dbg_nr_enabled(d.nwrp), e_after, rounds, rounds / 4, user_exits, mmio_writes);
	printf("debug_state_test: host perf: vCPU thread %lu hits of each (breakpoint, write, "
	       "read/write x2), side thread %lu (%lu migrations): counts exact\n", vcpu_bps.hits,
	       side.hits, side_batches);

	if (s_done.e.valid) {
		/* The VMM's windows: every run switched; its lines count exactly those runs. */
		EXPECT(SW(s_ss0, s_hw0) == RUNS(s_ss0, s_hw0) &&
		       RUNS(s_ss0, s_hw0) >= (long)ss_runs,
		       "single-step: debug_switched +%ld for %ld runs (%lu KVM_RUNs)",
		       SW(s_ss0, s_hw0), RUNS(s_ss0, s_hw0), ss_runs);
		EXPECT(HOST_D(s_ss0.e, s_hw0.e, EC_SOFTSTP_LOW) == (long)ss_runs,
		       "single-step: SOFTSTP_LOW to the host +%ld, expected %lu",
		       HOST_D(s_ss0.e, s_hw0.e, EC_SOFTSTP_LOW), ss_runs);
		EXPECT(SW(s_hw0, s_hw1) == RUNS(s_hw0, s_hw1) && RUNS(s_hw0, s_hw1) >= 2,
		       "USE_HW: debug_switched +%ld for %ld runs", SW(s_hw0, s_hw1),
		       RUNS(s_hw0, s_hw1));
		EXPECT(HOST_D(s_hw0.e, s_hw1.e, EC_BREAKPT_LOW) == 1 &&
		       HOST_D(s_hw0.e, s_hw1.e, EC_WATCHPT_LOW) == 1,
		       "USE_HW: BREAKPT_LOW +%ld, WATCHPT_LOW +%ld to the host, expected 1 each",
		       HOST_D(s_hw0.e, s_hw1.e, EC_BREAKPT_LOW),
		       HOST_D(s_hw0.e, s_hw1.e, EC_WATCHPT_LOW));
		if (vmm_lines) {
			EXPECT(SS(s_ss0, s_hw0) == RUNS(s_ss0, s_hw0) &&
			       HW(s_ss0, s_hw0) == 0,
			       "single-step: debug_vmm_ss +%ld, debug_vmm_hw +%ld for %ld runs "
			       "with KVM_GUESTDBG_SINGLESTEP (module parts: %s)", SS(s_ss0, s_hw0),
			       HW(s_ss0, s_hw0), RUNS(s_ss0, s_hw0), module_parts);
			EXPECT(HW(s_hw0, s_hw1) == RUNS(s_hw0, s_hw1) &&
			       SS(s_hw0, s_hw1) == 0,
			       "USE_HW: debug_vmm_hw +%ld, debug_vmm_ss +%ld for %ld runs with "
			       "KVM_GUESTDBG_USE_HW (module parts: %s)", HW(s_hw0, s_hw1),
			       SS(s_hw0, s_hw1), RUNS(s_hw0, s_hw1), module_parts);
			EXPECT(SS(s_gic, s_done) == SS(s_ss0, s_hw0) &&
			       HW(s_gic, s_done) == HW(s_hw0, s_hw1),
			       "debug_vmm_ss +%ld, debug_vmm_hw +%ld over the whole run, the VMM's "
			       "windows +%ld, +%ld", SS(s_gic, s_done), HW(s_gic, s_done),
			       SS(s_ss0, s_hw0), HW(s_hw0, s_hw1));
		}
		if (vmm_lines)
			snprintf(vmm, sizeof(vmm), "debug_vmm_ss +%ld (single-step window +%ld), "
				 "debug_vmm_hw +%ld (USE_HW window +%ld)", SS(s_gic, s_done),
				 SS(s_ss0, s_hw0), HW(s_gic, s_done), HW(s_hw0, s_hw1));
		else
			snprintf(vmm, sizeof(vmm), "no debug_vmm_ss/debug_vmm_hw lines: not "
				 "asserted");
		printf("debug_state_test: module: runs (debug_switched/debug_clean_runs): clean "
		       "%ld (%+ld/%+ld), live %ld (%+ld/%+ld), single-step %ld (%+ld/%+ld) of %lu "
		       "KVM_RUNs, USE_HW %ld (%+ld/%+ld), live after %ld (%+ld/%+ld), clean after "
		       "%ld (%+ld/%+ld); %s\n",
		       RUNS(s_gic, s_clean), SW(s_gic, s_clean), CL(s_gic, s_clean),
		       RUNS(s_armed, s_live), SW(s_armed, s_live), CL(s_armed, s_live),
		       RUNS(s_ss0, s_hw0), SW(s_ss0, s_hw0), CL(s_ss0, s_hw0), ss_runs,
		       RUNS(s_hw0, s_hw1), SW(s_hw0, s_hw1), CL(s_hw0, s_hw1),
		       RUNS(s_vmm, s_after), SW(s_vmm, s_after), CL(s_vmm, s_after),
		       RUNS(s_off, s_done), SW(s_off, s_done), CL(s_off, s_done), vmm);
	}
	close(gic);
	kvm_vm_free(vm);
}

int main(int argc, char *argv[])
{
	struct vhe_rs_snap before = vhe_rs_snap();
	int opt;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n') {
			rounds = strtoull(optarg, NULL, 0);
		} else {
			printf("usage: %s [-n ROUNDS]\n", argv[0]);
			return 1;
		}
	}
	TEST_REQUIRE(rounds >= 4);
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	TEST_ASSERT(ncpus >= 1, "no CPU online?");
	printf("debug_state_test: module counters %s\n", vhe_rs_loaded() && vhe_rs_enabled() ?
	       "checked (vhe_rs loaded and enabled)" : "not checked (C backend)");
	read_module_parts();
	vmm_lines = vhe_rs_loaded() && vhe_rs_enabled() && vhe_rs_stat("debug_vmm_ss") >= 0 &&
		    vhe_rs_stat("debug_vmm_hw") >= 0;
	test_debug_state();
	printf("debug_state_test: backend: %s\n", vhe_rs_check_backend(before, vhe_rs_snap()));
	return 0;
}
