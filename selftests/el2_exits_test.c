// SPDX-License-Identifier: GPL-2.0
/*
 * el2_exits_test: every exit class the world switch deals with at EL2, driven
 * from a guest, its results checked on either backend; with vhe_rs loaded and
 * enabled, also the module's counters (debugfs vhe_rs/exits, vhe_rs/stats):
 * the classes each part must move, by how much, at EL2 or in the host.
 *
 *  fp:     FP/SIMD first use after each kind of exit (hvc, MMIO to userspace,
 *          a sysreg trap to the host, WFI woken by the guest's timer): V0-V31,
 *          FPSR, FPCR loaded before the exit, stored after it, compared;
 *  sve:    the same with Z0-Z31 on a vCPU with KVM_ARM_VCPU_SVE, when the host
 *          has SVE: the first use after the exit is an SVE instruction;
 *  cntpct: CNTVCT_EL0 and CNTPCT_EL0 read by the guest with a VM counter
 *          offset set (KVM_ARM_SET_COUNTER_OFFSET): monotonic, between the
 *          VMM's KVM_REG_ARM_TIMER_CNT/PTIMER_CNT reads around them, and the
 *          host's counter less the offset; without FEAT_ECV's CNTPOFF the
 *          offset makes KVM trap CNTPCT_EL0, which EL2 answers (SYS64 at EL2);
 *  aborts: a write and a read to unmapped memory (MMIO to userspace), a read
 *          and a write to a read-only memslot (the write: KVM_EXIT_MMIO,
 *          the memory unchanged);
 *  wp:     a watchpoint of the guest's own (DBGWVR0/DBGWCR0): the guest takes
 *          its debug exception (EC 0x35) with the address in FAR_EL1, KVM is
 *          not involved; then a watchpoint of the VMM's (KVM_SET_GUEST_DEBUG):
 *          a WATCHPT_LOW exit (EC 0x34) with the address KVM_EXIT_DEBUG reports,
 *          FAR_EL2 as EL2 recorded it;
 *  mops:   if the vCPU has FEAT_MOPS: CPYP/CPYM/CPYE (forward, and an
 *          overlapping backward copy) and SETP/SETM/SETE; then each with a
 *          MOPS exception mid-sequence: a breakpoint of the guest's on the
 *          main instruction turns the registers and flags into the other
 *          option's form (as after a move between CPUs), so the main
 *          instruction takes a "wrong option" MOPS exception, which KVM
 *          routes to EL2 (HCRX_EL2.MCE2) and rewinds to the prologue;
 *  gic:    GICv3 CPU interface accesses (PMR, IGRPEN1, IAR1, RPR, CTLR):
 *          when the host traps them (kvm-arm.vgic_v3_*_trap=1 on its command
 *          line), each is emulated at EL2 (SYS64 at EL2, counted exactly).
 *
 *   el2_exits_test [-n ROUNDS] [-p PART,...]
 */
#define _GNU_SOURCE
#include <linux/arm-smccc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "gic.h"
#include "vgic.h"
#include "vhe_rs_exits.h"
#include "vhe_rs_fp.h"

#define MMIO_GPA	(1ULL << 36)	/* in no memslot: exits to userspace */
#define RO_GPA		(1ULL << 32)	/* a read-only memslot */
#define RO_SLOT		10

static uint64_t rounds = 10;

/* ---- guest: the exits ---- */

enum exit_kind { EXIT_HVC, EXIT_MMIO, EXIT_SYSREG, EXIT_WFI, NR_KINDS };
static const char *const kind_name[NR_KINDS] = { "hvc", "mmio", "sysreg", "wfi" };

/*
 * The exit of each kind, as asm text using x0-x3 and x10, %[mmio], %[tag],
 * %[res] (where an answer is stored) and %[tval] (timer ticks to wait).
 * EXIT_WFI arms the virtual timer and waits for its condition (ISTATUS) in WFI,
 * then masks it: the guest's IRQs stay masked, WFI wakes on the pending one.
 */
#define EXIT_HVC_ASM	"mov x0, %[fid]\n hvc #0\n str x0, [%[res]]\n"
#define EXIT_MMIO_ASM	"str %[tag], [%[mmio]]\n"
#define EXIT_SYSREG_ASM	"mrs x10, id_aa64pfr0_el1\n str x10, [%[res]]\n"
#define EXIT_WFI_ASM							\
	"msr cntv_ctl_el0, xzr\n msr cntv_tval_el0, %[tval]\n"		\
	"mov x10, #1\n msr cntv_ctl_el0, x10\n isb\n"			\
	"9: wfi\n mrs x10, cntv_ctl_el0\n tbz x10, #2, 9b\n"		\
	"mov x10, #2\n msr cntv_ctl_el0, x10\n isb\n"			\
	"str x10, [%[res]]\n"

#define EXIT_IN	[fid] "i"(ARM_SMCCC_VERSION_FUNC_ID), [mmio] "r"(MMIO_GPA),	\
		[tag] "r"(tag), [res] "r"(res), [tval] "r"(tval)

/* ROUND (FP_ROUND, SVE_ROUND) with the exit of kind @k: one asm statement each. */
#define ROUND_OF_KIND(ROUND, k)						\
	do {								\
		switch (k) {						\
		case EXIT_HVC: ROUND(EXIT_HVC_ASM); break;		\
		case EXIT_MMIO: ROUND(EXIT_MMIO_ASM); break;		\
		case EXIT_SYSREG: ROUND(EXIT_SYSREG_ASM); break;	\
		case EXIT_WFI: ROUND(EXIT_WFI_ASM); break;		\
		}							\
	} while (0)

/* ---- fp ---- */

#define FP_CLOBBERS	FP_REG_CLOBBERS, "x0", "x1", "x2", "x3", "x10", "cc"

#define FP_ROUND(EXIT)							\
	asm volatile(LOAD_FPREGS("%[w]") EXIT STORE_FPREGS("%[g]")	\
		     : : [w] "r"(want), [g] "r"(got), EXIT_IN : FP_CLOBBERS)

static struct fpregs fp_want, fp_got;
static uint64_t exit_res;

#define VTIMER_IRQ	27

/*
 * The GIC as the guest's WFI needs it: the virtual timer's PPI enabled, every
 * priority let through; PSTATE.I stays set (no handler: WFI wakes on the
 * pending interrupt). Then a sync, for the host to take its counts after this.
 */
static void guest_gic_for_wfi(void)
{
	gic_init(GIC_V3, 1);
	gic_irq_enable(VTIMER_IRQ);
	gic_set_priority_mask(0xff);
	GUEST_SYNC(0);
}

static uint64_t guest_tval(void)
{
	return read_sysreg(cntfrq_el0) / 2000;	/* 0.5 ms */
}

/* Checks what an exit of @kind answered in exit_res. */
static void guest_check_res(enum exit_kind kind)
{
	if (kind == EXIT_HVC)
		GUEST_ASSERT(exit_res >= ARM_SMCCC_VERSION_1_1 && exit_res < (1ULL << 31));
	else if (kind == EXIT_SYSREG)	/* EL0 and EL1 implemented */
		GUEST_ASSERT((exit_res & 0xf) && (exit_res & 0xf0));
	else if (kind == EXIT_WFI)
		GUEST_ASSERT_EQ(exit_res, 2);
}

static void guest_fp(uint64_t n)
{
	struct fpregs *want = &fp_want, *got = &fp_got;
	uint64_t *res = &exit_res, tval = guest_tval();

	guest_gic_for_wfi();
	for (uint64_t r = 0; r < n; r++) {
		for (int k = 0; k < NR_KINDS; k++) {
			uint64_t tag = (r << 8) | k;

			fpregs_fill(want, 0xf900000000000000ULL | tag);
			ROUND_OF_KIND(FP_ROUND, k);
			guest_check_res(k);
			for (int i = 0; i < 32; i++)
				__GUEST_ASSERT(got->v[i] == want->v[i],
					       "fp after %s, round %lu: V%d changed",
					       kind_name[k], r, i);
			__GUEST_ASSERT(got->fpsr == want->fpsr && got->fpcr == want->fpcr,
				       "fp after %s, round %lu: FPSR/FPCR %lx/%lx, expected %lx/%lx",
				       kind_name[k], r, got->fpsr, got->fpcr, want->fpsr, want->fpcr);
		}
	}
	GUEST_DONE();
}

/* ---- sve ---- */

#define VL_MAX_BYTES	256
struct zregs {
	uint8_t b[32 * VL_MAX_BYTES];
} __aligned(16);

#define LDZ(n, base)	"ldr z" #n ", [" base ", #" #n ", mul vl]\n"
#define STZ(n, base)	"str z" #n ", [" base ", #" #n ", mul vl]\n"
#define EACH10(M, a, base) M(a##0, base) M(a##1, base) M(a##2, base) M(a##3, base) \
			   M(a##4, base) M(a##5, base) M(a##6, base) M(a##7, base) \
			   M(a##8, base) M(a##9, base)
#define EACH_Z(M, base)	EACH10(M, , base) EACH10(M, 1, base) EACH10(M, 2, base) \
			M(30, base) M(31, base)

/* The first instruction after the exit is an SVE one: str z0. */
#define SVE_ROUND(EXIT)							\
	asm volatile(".arch_extension sve\n" EACH_Z(LDZ, "%[w]") EXIT	\
		     EACH_Z(STZ, "%[g]")					\
		     : : [w] "r"(want), [g] "r"(got), EXIT_IN : FP_CLOBBERS)

static struct zregs z_want, z_got;

static void guest_sve(uint64_t n)
{
	struct zregs *want = &z_want, *got = &z_got;
	uint64_t *res = &exit_res, tval = guest_tval(), vl;

	asm volatile(".arch_extension sve\n rdvl %0, #1" : "=r"(vl));
	GUEST_SYNC(vl);
	guest_gic_for_wfi();
	for (uint64_t r = 0; r < n; r++) {
		for (int k = 0; k < NR_KINDS; k++) {
			uint64_t tag = (r << 8) | k, x = tag + 1;

			for (uint64_t i = 0; i < 32 * vl; i++) {
				x = x * 6364136223846793005ULL + 1442695040888963407ULL;
				want->b[i] = x >> 56;
			}
			ROUND_OF_KIND(SVE_ROUND, k);
			guest_check_res(k);
			for (uint64_t i = 0; i < 32 * vl; i++)
				__GUEST_ASSERT(got->b[i] == want->b[i],
					       "sve after %s, round %lu: Z%lu byte %lu is 0x%x, expected 0x%x",
					       kind_name[k], r, i / vl, i % vl, got->b[i], want->b[i]);
		}
	}
	GUEST_DONE();
}

/* ---- cntpct ---- */

static void guest_counters(uint64_t n)
{
	uint64_t v0 = 0, p0 = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t v, p;

		isb();
		v = read_sysreg(cntvct_el0);
		isb();
		p = read_sysreg(cntpct_el0);
		__GUEST_ASSERT(v >= v0 && p >= p0, "counters went back: CNTVCT %lx -> %lx, "
			       "CNTPCT %lx -> %lx", v0, v, p0, p);
		GUEST_SYNC_ARGS(i, v, p, 0, 0);
		v0 = v;
		p0 = p;
	}
	GUEST_DONE();
}

/* ---- aborts ---- */

static void guest_aborts(uint64_t ro_gva)
{
	volatile uint64_t *mmio = (volatile uint64_t *)MMIO_GPA;
	volatile uint64_t *ro = (volatile uint64_t *)ro_gva;
	uint64_t v;

	*mmio = 0x5a5a0001;			/* write: KVM_EXIT_MMIO, 8 bytes */
	v = *(volatile uint32_t *)(MMIO_GPA + 8);	/* read: the VMM's answer */
	GUEST_ASSERT_EQ(v, 0xfeed1234);
	GUEST_ASSERT_EQ(ro[1], 0x0123456789abcdefULL);	/* read-only memory reads */
	ro[1] = 0x5a5a0002;			/* and a write exits as MMIO */
	GUEST_ASSERT_EQ(ro[1], 0x0123456789abcdefULL);	/* unchanged */
	GUEST_DONE();
}

/* ---- wp ---- */

#define MDSCR_KDE	(1 << 13)
#define MDSCR_MDE	(1 << 15)
#define DBGWCR_LEN8	(0xff << 5)
#define DBGWCR_RD	(0x1 << 3)
#define DBGWCR_WR	(0x2 << 3)
#define DBGWCR_EL1	(0x1 << 1)
#define DBGWCR_E	(0x1 << 0)
#define DBGBCR_LEN8	(0xf << 5)
#define DBGBCR_EL1	(0x1 << 1)
#define DBGBCR_E	(0x1 << 0)
#define ESR_EC_HW_BP_CUR	0x31
#define ESR_EC_WP_CUR		0x35

static volatile uint64_t wp_var, wp_var2;
static volatile uint64_t wp_hits, wp_far, wp_esr;

static void guest_wp_handler(struct ex_regs *regs)
{
	wp_hits++;
	wp_far = read_sysreg(far_el1);
	wp_esr = read_sysreg(esr_el1);
	write_sysreg(0, dbgwcr0_el1);		/* the access goes through on return */
	isb();
}

static void guest_debug_on(void)
{
	write_sysreg(0, osdlr_el1);
	write_sysreg(0, oslar_el1);
	isb();
	write_sysreg(MDSCR_KDE | MDSCR_MDE, mdscr_el1);
	isb();
	asm volatile("msr daifclr, #8");
}

static void guest_debug_off(void)
{
	asm volatile("msr daifset, #8");
	write_sysreg(0, mdscr_el1);
	write_sysreg(0, dbgwcr0_el1);
	write_sysreg(0, dbgbcr0_el1);
	isb();
}

static void guest_wp(void)
{
	/* The guest's own watchpoint. */
	write_sysreg(0, dbgwcr0_el1);
	write_sysreg((uint64_t)&wp_var, dbgwvr0_el1);
	write_sysreg(DBGWCR_LEN8 | DBGWCR_RD | DBGWCR_WR | DBGWCR_EL1 | DBGWCR_E, dbgwcr0_el1);
	isb();
	guest_debug_on();
	wp_var = 0x77;
	guest_debug_off();
	GUEST_ASSERT_EQ(wp_hits, 1);
	GUEST_ASSERT_EQ(wp_far, (uint64_t)&wp_var);
	GUEST_ASSERT_EQ(wp_esr >> 26, ESR_EC_WP_CUR);
	GUEST_ASSERT_EQ(wp_var, 0x77);
	/* The VMM's watchpoint on wp_var2: KVM_EXIT_DEBUG, then the write again. */
	GUEST_SYNC((uint64_t)&wp_var2);
	wp_var2 = 0x88;
	GUEST_ASSERT_EQ(wp_var2, 0x88);
	GUEST_ASSERT_EQ(wp_hits, 1);
	GUEST_DONE();
}

/* ---- mops ---- */

/* Over two page boundaries: QEMU's prologue stops at one, the main instruction has work. */
#define MOPS_LEN	(2 * 4096 + 300)
static uint8_t mops_src[2 * MOPS_LEN] __aligned(4096), mops_dst[2 * MOPS_LEN] __aligned(4096);
static volatile uint64_t bp_hits;
static volatile bool mops_is_set;

#define PSR_N	(1ULL << 31)
#define PSR_C	(1ULL << 29)

/*
 * A breakpoint on the main instruction, right after the prologue (x0 the
 * destination, x1 the source, x2 the size): the registers and flags are
 * turned from the form an Option A CPU's prologue leaves (this one: QEMU
 * implements Option A) into the form an Option B CPU's would, as if the
 * vCPU had moved from such a CPU between the two instructions. The main
 * instruction then takes a "wrong option" MOPS exception, which KVM routes to
 * EL2 (HCRX_EL2.MCE2), where the sequence is put back in its prologue form
 * and the prologue runs again (arm64_mops_reset_regs()).
 *
 * Option A: forward, x0/x1 the ends and x2 minus what is left; backward (a
 * copy only), x0/x1 the starts and x2 what is left; NZCV 0000.
 * Option B: x2 what is left; forward, x0/x1 where the rest starts; backward,
 * where it ends; C set, N set for a backward copy.
 */
static void guest_bp_handler(struct ex_regs *regs)
{
	int64_t n = regs->regs[2];

	bp_hits++;
	regs->pstate &= ~(0xfULL << 28);
	regs->pstate |= PSR_C;
	if (n < 0) {		/* forward */
		regs->regs[0] += n;
		if (!mops_is_set)
			regs->regs[1] += n;
		regs->regs[2] = -n;
	} else {		/* backward copy */
		regs->regs[0] += n;
		regs->regs[1] += n;
		regs->pstate |= PSR_N;
	}
	write_sysreg(0, dbgbcr0_el1);
	isb();
}

/* Breakpoint 0 on the instruction at label 1 (the main one), x9 its address; off with bcr 0. */
#define MOPS_BP_AT_1F	"adr x9, 1f\n msr dbgbvr0_el1, x9\n msr dbgbcr0_el1, %[bcr]\n isb\n"

/* DBGBCR0_EL1 for the breakpoint: enabled at EL1 if @provoke, else off. */
static uint64_t mops_bcr(bool provoke)
{
	return provoke ? (DBGBCR_LEN8 | DBGBCR_EL1 | DBGBCR_E) : 0;
}

static void mops_cpy(void *dst, const void *src, uint64_t n, bool provoke)
{
	uint64_t bcr = mops_bcr(provoke);	/* before the register variables: a call */
	register uint64_t x0 asm("x0") = (uint64_t)dst;
	register uint64_t x1 asm("x1") = (uint64_t)src;
	register uint64_t x2 asm("x2") = n;

	mops_is_set = false;
	asm volatile(".arch_extension mops\n"
		     MOPS_BP_AT_1F
		     "cpyp [x0]!, [x1]!, x2!\n"
		     "1: cpym [x0]!, [x1]!, x2!\n"
		     "cpye [x0]!, [x1]!, x2!\n"
		     : "+r"(x0), "+r"(x1), "+r"(x2)
		     : [bcr] "r"(bcr) : "x9", "cc", "memory");
	GUEST_ASSERT_EQ(x2, 0);
}

static void mops_set(void *dst, uint64_t n, uint64_t val, bool provoke)
{
	uint64_t bcr = mops_bcr(provoke);	/* before the register variables: a call */
	register uint64_t x0 asm("x0") = (uint64_t)dst;
	register uint64_t x2 asm("x2") = n;
	register uint64_t x3 asm("x3") = val;

	mops_is_set = true;
	asm volatile(".arch_extension mops\n"
		     MOPS_BP_AT_1F
		     "setp [x0]!, x2!, x3\n"
		     "1: setm [x0]!, x2!, x3\n"
		     "sete [x0]!, x2!, x3\n"
		     : "+r"(x0), "+r"(x2)
		     : "r"(x3), [bcr] "r"(bcr) : "x9", "cc", "memory");
	GUEST_ASSERT_EQ(x2, 0);
}

/* mops_dst[i] after the overlapping copy: i, then moved up by 5 over MOPS_LEN bytes. */
static uint8_t after_overlap(int i)
{
	return i >= 5 && i < MOPS_LEN + 5 ? i - 5 : i;
}

static void guest_mops_once(bool provoke)
{
	uint64_t hits = bp_hits;

	for (int i = 0; i < 2 * MOPS_LEN; i++) {
		mops_src[i] = i * 7 + 3;
		mops_dst[i] = 0;
	}
	/* Forward copy. */
	mops_cpy(mops_dst + 1, mops_src + 2, MOPS_LEN, provoke);
	for (int i = 0; i < 2 * MOPS_LEN; i++)
		__GUEST_ASSERT(mops_dst[i] == (i >= 1 && i < MOPS_LEN + 1 ? mops_src[i + 1] : 0),
			       "cpy%s: byte %d is %u", provoke ? " (provoked)" : "", i, mops_dst[i]);
	GUEST_ASSERT_EQ(bp_hits, hits + provoke);
	/* Overlapping, destination above the source: a backward copy. */
	for (int i = 0; i < 2 * MOPS_LEN; i++)
		mops_dst[i] = i;
	mops_cpy(mops_dst + 5, mops_dst, MOPS_LEN, provoke);
	for (int i = 0; i < 2 * MOPS_LEN; i++)
		__GUEST_ASSERT(mops_dst[i] == after_overlap(i),
			       "overlapping cpy%s: byte %d is %u", provoke ? " (provoked)" : "",
			       i, mops_dst[i]);
	GUEST_ASSERT_EQ(bp_hits, hits + 2 * provoke);
	/* Set. */
	mops_set(mops_dst + 3, MOPS_LEN, 0xa5, provoke);
	for (int i = 0; i < 2 * MOPS_LEN; i++)
		__GUEST_ASSERT(mops_dst[i] == (i >= 3 && i < MOPS_LEN + 3 ? 0xa5 : after_overlap(i)),
			       "set%s: byte %d is %u", provoke ? " (provoked)" : "", i, mops_dst[i]);
	GUEST_ASSERT_EQ(bp_hits, hits + 3 * provoke);
}

static void guest_mops(void)
{
	uint64_t isar2 = read_sysreg_s(SYS_ID_AA64ISAR2_EL1);

	if (!((isar2 >> 16) & 0xf)) {
		GUEST_SYNC(0);		/* no FEAT_MOPS */
		GUEST_DONE();
	}
	guest_mops_once(false);
	GUEST_SYNC(1);
	guest_debug_on();
	guest_mops_once(true);
	guest_debug_off();
	GUEST_DONE();
}

/* ---- gic ---- */

/* Per round: 4 accesses to common registers, 3 to group-1 ones. */
#define GIC_COMMON	4
#define GIC_G1		3

static void guest_gic(uint64_t n)
{
	for (uint64_t r = 0; r < n; r++) {
		uint64_t pmr = 0xf0 - 8 * (r % 4);

		write_sysreg_s(pmr, SYS_ICC_PMR_EL1);			/* C */
		isb();
		GUEST_ASSERT_EQ(read_sysreg_s(SYS_ICC_PMR_EL1), pmr);	/* C */
		write_sysreg_s(1, SYS_ICC_IGRPEN1_EL1);			/* G1 */
		isb();
		GUEST_ASSERT_EQ(read_sysreg_s(SYS_ICC_IGRPEN1_EL1), 1);	/* G1 */
		/* Nothing pending: the spurious INTID. */
		GUEST_ASSERT_EQ(read_sysreg_s(SYS_ICC_IAR1_EL1) & 0xffffff, 1023);	/* G1 */
		/* Nothing active: the idle priority. */
		GUEST_ASSERT_EQ(read_sysreg_s(SYS_ICC_RPR_EL1) & 0xff, 0xff);	/* C */
		/* ICC_CTLR_EL1.PRIbits: 5 bits or more (KVM's vGICv3). */
		GUEST_ASSERT(((read_sysreg_s(SYS_ICC_CTLR_EL1) >> 8) & 7) >= 4);	/* C */
	}
	GUEST_DONE();
}

/* ---- host ---- */

static uint64_t mmio_writes, mmio_reads;

/*
 * Runs @vcpu until a ucall: MMIO at MMIO_GPA is answered (writes counted and,
 * if @tags, checked to carry the next tag), UCALL_SYNC returns its uc, DONE
 * returns it, ABORT fails.
 */
static uint64_t run_to_ucall(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	struct kvm_run *run = vcpu->run;

	for (;;) {
		vcpu_run(vcpu);
		if (run->exit_reason == KVM_EXIT_MMIO &&
		    run->mmio.phys_addr >= MMIO_GPA && run->mmio.phys_addr < MMIO_GPA + 16) {
			if (run->mmio.is_write) {
				TEST_ASSERT_EQ(run->mmio.len, 8);
				mmio_writes++;
			} else {
				uint32_t v = 0xfeed1234;

				TEST_ASSERT_EQ(run->mmio.len, 4);
				memcpy(run->mmio.data, &v, 4);
				mmio_reads++;
			}
			continue;
		}
		switch (get_ucall(vcpu, uc)) {
		case UCALL_SYNC:
		case UCALL_DONE:
			return uc->cmd;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(*uc);
		default:
			TEST_FAIL("unexpected exit %s", exit_reason_str(run->exit_reason));
		}
	}
}

static void run_to_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	TEST_ASSERT_EQ(run_to_ucall(vcpu, &uc), UCALL_DONE);
}

/* Asserts a counter delta, with what it is, in the module pass only. */
#define EXPECT(cond, fmt, ...) TEST_ASSERT(cond, "module counters: " fmt, ##__VA_ARGS__)

static struct kvm_vm *vm_with_gic(void *guest_code, struct kvm_vcpu **vcpu,
				  struct kvm_vcpu_init *init)
{
	struct kvm_vm *vm;

	if (init) {
		vm = vm_create(1);
		*vcpu = aarch64_vcpu_add(vm, 0, init, guest_code);
	} else {
		vm = vm_create_with_one_vcpu(vcpu, guest_code);
	}
	virt_map(vm, MMIO_GPA, MMIO_GPA, 1);
	return vm;
}

/*
 * The FP/SVE guests' rounds, once the guest's GIC is up (its sync): the
 * module's exit counts before and after in @a and @b, an MMIO exit a round.
 */
static void run_rounds(struct kvm_vcpu *vcpu, struct vhe_rs_exits *a, struct vhe_rs_exits *b)
{
	struct ucall uc;

	TEST_ASSERT_EQ(run_to_ucall(vcpu, &uc), UCALL_SYNC);	/* the guest's GIC is up */
	mmio_writes = 0;
	*a = vhe_rs_exits();
	run_to_done(vcpu);
	*b = vhe_rs_exits();
	TEST_ASSERT_EQ(mmio_writes, rounds);
}

static void part_fp(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_with_gic(guest_fp, &vcpu, NULL);
	int gic = vgic_v3_setup(vm, 1, 64);
	struct vhe_rs_exits a, b;

	TEST_REQUIRE(gic >= 0);
	vcpu_args_set(vcpu, 1, rounds);
	run_rounds(vcpu, &a, &b);
	printf("fp: %lu rounds of FP/SIMD used across hvc, mmio, sysreg, wfi exits: V0-V31, "
	       "FPSR, FPCR intact\n", rounds);
	vhe_rs_exits_print("fp", a, b);
	if (b.valid) {
		/* Every exit to userspace puts the vCPU: the next FP use traps, at EL2. */
		EXPECT(EL2_D(a, b, EC_FP_ASIMD) >= (long)rounds,
		       "FP_ASIMD at EL2 +%ld, expected >= %lu (one per MMIO exit)",
		       EL2_D(a, b, EC_FP_ASIMD), rounds);
		EXPECT(HOST_D(a, b, EC_FP_ASIMD) == 0 && HOST_D(a, b, EC_SVE) == 0 &&
		       EL2_D(a, b, EC_SVE) == 0, "FP_ASIMD/SVE to the host +%ld/+%ld, SVE at EL2 +%ld",
		       HOST_D(a, b, EC_FP_ASIMD), HOST_D(a, b, EC_SVE), EL2_D(a, b, EC_SVE));
		EXPECT(b.fp_trap_shallow - a.fp_trap_shallow == EL2_D(a, b, EC_FP_ASIMD),
		       "fp_trap_shallow +%ld, FP_ASIMD at EL2 +%ld",
		       b.fp_trap_shallow - a.fp_trap_shallow, EL2_D(a, b, EC_FP_ASIMD));
		EXPECT(HOST_D(a, b, EC_HVC64) == (long)rounds && EL2_D(a, b, EC_HVC64) == 0,
		       "HVC64 to the host +%ld, at EL2 +%ld, expected %lu and 0",
		       HOST_D(a, b, EC_HVC64), EL2_D(a, b, EC_HVC64), rounds);
		EXPECT(HOST_D(a, b, EC_SYS64) == (long)rounds && EL2_D(a, b, EC_SYS64) == 0,
		       "SYS64 to the host +%ld, at EL2 +%ld, expected %lu (ID register reads) and 0",
		       HOST_D(a, b, EC_SYS64), EL2_D(a, b, EC_SYS64), rounds);
		EXPECT(HOST_D(a, b, EC_DABT_LOW) >= (long)rounds + 1,
		       "DABT_LOW to the host +%ld, expected >= %lu (MMIO exits and GUEST_DONE)",
		       HOST_D(a, b, EC_DABT_LOW), rounds + 1);
		EXPECT(HOST_D(a, b, EC_IABT_LOW) >= 1, "IABT_LOW to the host +%ld: the guest's "
		       "code was never faulted in?", HOST_D(a, b, EC_IABT_LOW));
	}
	close(gic);
	kvm_vm_free(vm);
}

static void part_sve(void)
{
	struct kvm_vcpu_init init = { .target = -1 };
	int feature = KVM_ARM_VCPU_SVE;
	struct vhe_rs_exits a, b;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	uint64_t vl;
	int gic;

	if (!kvm_check_cap(KVM_CAP_ARM_SVE)) {
		printf("sve: the host has no SVE: not run\n");
		return;
	}
	init.features[0] = 1U << KVM_ARM_VCPU_SVE;
	vm = vm_with_gic(guest_sve, &vcpu, &init);
	vcpu_ioctl(vcpu, KVM_ARM_VCPU_FINALIZE, &feature);
	vcpu_set_reg(vcpu, KVM_ARM64_SYS_REG(SYS_CPACR_EL1), CPACR_ELx_FPEN | CPACR_ELx_ZEN);
	vcpu_set_reg(vcpu, KVM_ARM64_SYS_REG(SYS_ZCR_EL1), 3);	/* 512 bits, or the most below */
	gic = vgic_v3_setup(vm, 1, 64);
	TEST_REQUIRE(gic >= 0);
	vcpu_args_set(vcpu, 1, rounds);
	TEST_ASSERT_EQ(run_to_ucall(vcpu, &uc), UCALL_SYNC);
	vl = uc.args[1];
	TEST_ASSERT(vl >= 16 && vl <= 64 && !(vl % 16), "guest VL %lu bytes", vl);
	run_rounds(vcpu, &a, &b);
	printf("sve: VL %lu bits, %lu rounds of SVE used across hvc, mmio, sysreg, wfi exits: "
	       "Z0-Z31 intact\n", vl * 8, rounds);
	vhe_rs_exits_print("sve", a, b);
	if (b.valid) {
		EXPECT(EL2_D(a, b, EC_SVE) >= (long)rounds,
		       "SVE at EL2 +%ld, expected >= %lu (one per MMIO exit)", EL2_D(a, b, EC_SVE),
		       rounds);
		EXPECT(HOST_D(a, b, EC_FP_ASIMD) == 0 && HOST_D(a, b, EC_SVE) == 0,
		       "FP_ASIMD/SVE to the host +%ld/+%ld", HOST_D(a, b, EC_FP_ASIMD),
		       HOST_D(a, b, EC_SVE));
		EXPECT(b.fp_trap_shallow - a.fp_trap_shallow ==
		       EL2_D(a, b, EC_SVE) + EL2_D(a, b, EC_FP_ASIMD),
		       "fp_trap_shallow +%ld", b.fp_trap_shallow - a.fp_trap_shallow);
		EXPECT(HOST_D(a, b, EC_HVC64) == (long)rounds && HOST_D(a, b, EC_SYS64) == (long)rounds,
		       "HVC64/SYS64 to the host +%ld/+%ld, expected %lu each",
		       HOST_D(a, b, EC_HVC64), HOST_D(a, b, EC_SYS64), rounds);
	}
	close(gic);
	kvm_vm_free(vm);
}

static uint64_t host_cntvct(void)
{
	uint64_t v;

	asm volatile("isb\n mrs %0, cntvct_el0\n isb" : "=r"(v) : : "memory");
	return v;
}

static void part_cntpct(void)
{
	struct kvm_arm_counter_offset off = { 0 };
	uint64_t mmfr0, n = 4 * rounds, unoffset = 0;
	bool cntpoff, trapped;
	struct vhe_rs_exits a, b;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_COUNTER_OFFSET));
	/* The host's ID register, as the kernel shows it to userspace. */
	asm volatile("mrs %0, id_aa64mmfr0_el1" : "=r"(mmfr0));
	cntpoff = ((mmfr0 >> ID_AA64MMFR0_EL1_ECV_SHIFT) & 0xf) >= 2;

	vm = vm_create(1);
	off.counter_offset = host_cntvct() / 2;
	vm_ioctl(vm, KVM_ARM_SET_COUNTER_OFFSET, &off);
	vcpu = vm_vcpu_add(vm, 0, guest_counters);
	vcpu_args_set(vcpu, 1, n);
	a = vhe_rs_exits();
	for (uint64_t i = 0;; i++) {
		uint64_t vb, pb, va, pa, hb, ha, v, p;

		vcpu_get_reg(vcpu, KVM_REG_ARM_TIMER_CNT, &vb);
		vcpu_get_reg(vcpu, KVM_REG_ARM_PTIMER_CNT, &pb);
		hb = host_cntvct();
		if (run_to_ucall(vcpu, &uc) == UCALL_DONE)
			break;
		ha = host_cntvct();
		vcpu_get_reg(vcpu, KVM_REG_ARM_TIMER_CNT, &va);
		vcpu_get_reg(vcpu, KVM_REG_ARM_PTIMER_CNT, &pa);
		TEST_ASSERT_EQ(uc.args[1], i);
		v = uc.args[2];
		p = uc.args[3];
		TEST_ASSERT(vb <= v && v <= va, "round %lu: guest CNTVCT %lx not between the "
			    "VMM's TIMER_CNT %lx and %lx", i, v, vb, va);
		/*
		 * QEMU (10.0.2 TCG) applies CNTPOFF_EL2 to EL1's CNTPCT_EL0 only if
		 * SCR_EL3.ECVEn is set, even with no EL3 (-M virt without secure=on),
		 * where the architecture has it act as 1: the guest then reads the
		 * host's counter, not offset. Accepted only in that exact form, only
		 * with CNTPOFF, and only if every read is so.
		 */
		if (cntpoff && !(pb <= p && p <= pa) && hb <= p && p <= ha) {
			unoffset++;
			p -= off.counter_offset;
		} else {
			TEST_ASSERT(pb <= p && p <= pa, "round %lu: guest CNTPCT %lx not between "
				    "the VMM's PTIMER_CNT %lx and %lx", i, p, pb, pa);
		}
		TEST_ASSERT(hb - off.counter_offset <= v && v <= ha - off.counter_offset &&
			    hb - off.counter_offset <= p && p <= ha - off.counter_offset,
			    "round %lu: guest CNTVCT %lx, CNTPCT %lx not within the host's %lx..%lx "
			    "less the offset %llx", i, v, p, hb, ha, off.counter_offset);
	}
	TEST_ASSERT(unoffset == 0 || unoffset == n, "%lu of %lu CNTPCT_EL0 reads without the "
		    "offset", unoffset, n);
	if (unoffset)
		printf("cntpct: NOTE: the guest's CNTPCT_EL0 is the host's counter, without the "
		       "offset KVM put in CNTPOFF_EL2 (on both backends): QEMU TCG ignores "
		       "CNTPOFF_EL2 without EL3 (SCR_EL3.ECVEn)\n");
	b = vhe_rs_exits();
	trapped = !cntpoff;
	printf("cntpct: %lu reads of CNTVCT_EL0 and CNTPCT_EL0 with a counter offset of %llx: "
	       "monotonic, within the VMM's and the host's counters%s; host %s FEAT_ECV CNTPOFF: "
	       "CNTPCT_EL0 %s\n", n, off.counter_offset, unoffset ? " (CNTPCT: see the note)" : "",
	       cntpoff ? "has" : "lacks",
	       trapped ? "trapped, answered at EL2" : "not trapped");
	vhe_rs_exits_print("cntpct", a, b);
	if (b.valid)
		EXPECT(EL2_D(a, b, EC_SYS64) == (trapped ? (long)n : 0) &&
		       HOST_D(a, b, EC_SYS64) == 0,
		       "SYS64 at EL2 +%ld, to the host +%ld; expected %lu and 0 (CNTPCT %s)",
		       EL2_D(a, b, EC_SYS64), HOST_D(a, b, EC_SYS64), trapped ? n : 0,
		       trapped ? "trapped" : "not trapped");
	kvm_vm_free(vm);
}

static void part_aborts(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_aborts);
	struct kvm_run *run = vcpu->run;
	struct vhe_rs_exits a, b;
	uint64_t *ro, gva = RO_GPA;
	struct ucall uc;
	int ro_exits = 0;

	virt_map(vm, MMIO_GPA, MMIO_GPA, 1);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, RO_GPA, RO_SLOT, 1, KVM_MEM_READONLY);
	virt_map(vm, gva, RO_GPA, 1);
	ro = addr_gpa2hva(vm, RO_GPA);
	ro[1] = 0x0123456789abcdefULL;
	vcpu_args_set(vcpu, 1, gva);
	mmio_writes = mmio_reads = 0;
	a = vhe_rs_exits();
	for (;;) {
		vcpu_run(vcpu);
		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == RO_GPA + 8) {
			TEST_ASSERT(run->mmio.is_write && run->mmio.len == 8 &&
				    *(uint64_t *)run->mmio.data == 0x5a5a0002,
				    "read-only memslot: MMIO exit %s, %u bytes, %lx",
				    run->mmio.is_write ? "write" : "read", run->mmio.len,
				    *(uint64_t *)run->mmio.data);
			ro_exits++;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == MMIO_GPA) {
			TEST_ASSERT(run->mmio.is_write && *(uint64_t *)run->mmio.data == 0x5a5a0001,
				    "unmapped: MMIO write of %lx", *(uint64_t *)run->mmio.data);
			mmio_writes++;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == MMIO_GPA + 8) {
			uint32_t v = 0xfeed1234;

			TEST_ASSERT(!run->mmio.is_write && run->mmio.len == 4, "unmapped: MMIO read");
			memcpy(run->mmio.data, &v, 4);
			mmio_reads++;
			continue;
		}
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_DONE:
			break;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			TEST_FAIL("unexpected exit %s", exit_reason_str(run->exit_reason));
		}
		break;
	}
	b = vhe_rs_exits();
	TEST_ASSERT(mmio_writes == 1 && mmio_reads == 1 && ro_exits == 1,
		    "MMIO exits: %lu writes, %lu reads, %d read-only writes; expected 1 each",
		    mmio_writes, mmio_reads, ro_exits);
	TEST_ASSERT_EQ(ro[1], 0x0123456789abcdefULL);
	printf("aborts: unmapped write and read, read-only memslot write: KVM_EXIT_MMIO each, "
	       "the read answered, read-only memory unchanged\n");
	vhe_rs_exits_print("aborts", a, b);
	if (b.valid)
		EXPECT(HOST_D(a, b, EC_DABT_LOW) >= 4 && EL2_D(a, b, EC_DABT_LOW) == 0,
		       "DABT_LOW to the host +%ld, at EL2 +%ld; expected >= 4 (3 MMIO, 1 ucall) "
		       "and 0", HOST_D(a, b, EC_DABT_LOW), EL2_D(a, b, EC_DABT_LOW));
	kvm_vm_free(vm);
}

static void part_wp(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_wp);
	struct kvm_run *run = vcpu->run;
	struct kvm_guest_debug dbg = { 0 };
	struct vhe_rs_exits a, b, c;
	uint64_t addr, esr;
	struct ucall uc;

	vm_init_descriptor_tables(vm);
	vcpu_init_descriptor_tables(vcpu);
	vm_install_sync_handler(vm, VECTOR_SYNC_CURRENT, ESR_EC_WP_CUR, guest_wp_handler);
	a = vhe_rs_exits();
	TEST_ASSERT_EQ(run_to_ucall(vcpu, &uc), UCALL_SYNC);
	b = vhe_rs_exits();
	vhe_rs_exits_print("wp, the guest's own", a, b);
	if (b.valid)
		EXPECT(HOST_D(a, b, EC_WATCHPT_LOW) == 0 && EL2_D(a, b, EC_WATCHPT_LOW) == 0,
		       "WATCHPT_LOW +%ld/+%ld for a watchpoint of the guest's",
		       EL2_D(a, b, EC_WATCHPT_LOW), HOST_D(a, b, EC_WATCHPT_LOW));

	addr = uc.args[1];
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW;
	dbg.arch.dbg_wvr[0] = addr;
	dbg.arch.dbg_wcr[0] = DBGWCR_LEN8 | DBGWCR_RD | DBGWCR_WR | DBGWCR_EL1 | DBGWCR_E;
	vcpu_guest_debug_set(vcpu, &dbg);
	vcpu_run(vcpu);
	TEST_ASSERT(run->exit_reason == KVM_EXIT_DEBUG, "the VMM's watchpoint: exit %s",
		    exit_reason_str(run->exit_reason));
	esr = run->debug.arch.hsr;
	TEST_ASSERT((esr >> 26) == EC_WATCHPT_LOW, "the VMM's watchpoint: ESR %lx", esr);
	TEST_ASSERT(run->debug.arch.far == addr, "the VMM's watchpoint: FAR %llx, expected %lx",
		    run->debug.arch.far, addr);
	dbg.control = 0;
	vcpu_guest_debug_set(vcpu, &dbg);
	run_to_done(vcpu);
	c = vhe_rs_exits();
	printf("wp: the guest's own watchpoint hit once in the guest (EC 0x35, FAR right); "
	       "the VMM's: KVM_EXIT_DEBUG, EC 0x%lx, FAR %llx right\n", esr >> 26,
	       (unsigned long long)run->debug.arch.far);
	vhe_rs_exits_print("wp, the VMM's", b, c);
	if (c.valid)
		EXPECT(HOST_D(b, c, EC_WATCHPT_LOW) == 1 && EL2_D(b, c, EC_WATCHPT_LOW) == 0,
		       "WATCHPT_LOW to the host +%ld, at EL2 +%ld, expected 1 and 0",
		       HOST_D(b, c, EC_WATCHPT_LOW), EL2_D(b, c, EC_WATCHPT_LOW));
	kvm_vm_free(vm);
}

static void part_mops(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_mops);
	struct vhe_rs_exits a, b, c;
	struct ucall uc;
	uint64_t isar2;

	vcpu_get_reg(vcpu, KVM_ARM64_SYS_REG(SYS_ID_AA64ISAR2_EL1), &isar2);
	vm_init_descriptor_tables(vm);
	vcpu_init_descriptor_tables(vcpu);
	vm_install_sync_handler(vm, VECTOR_SYNC_CURRENT, ESR_EC_HW_BP_CUR, guest_bp_handler);
	a = vhe_rs_exits();
	TEST_ASSERT_EQ(run_to_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], !!((isar2 >> 16) & 0xf));
	if (!uc.args[1]) {
		printf("mops: the vCPU has no FEAT_MOPS: not run\n");
		kvm_vm_free(vm);
		return;
	}
	b = vhe_rs_exits();
	vhe_rs_exits_print("mops", a, b);
	if (b.valid)
		EXPECT(EL2_D(a, b, EC_MOPS) == 0 && HOST_D(a, b, EC_MOPS) == 0,
		       "MOPS +%ld/+%ld for sequences run straight", EL2_D(a, b, EC_MOPS),
		       HOST_D(a, b, EC_MOPS));
	run_to_done(vcpu);
	c = vhe_rs_exits();
	printf("mops: CPYP/CPYM/CPYE forward and overlapping backward, SETP/SETM/SETE: right; "
	       "again each with a wrong-option MOPS exception mid-sequence: right\n");
	vhe_rs_exits_print("mops, provoked", b, c);
	if (c.valid)
		EXPECT(EL2_D(b, c, EC_MOPS) == 3 && HOST_D(b, c, EC_MOPS) == 0,
		       "MOPS at EL2 +%ld, to the host +%ld; expected 3 and 0",
		       EL2_D(b, c, EC_MOPS), HOST_D(b, c, EC_MOPS));
	kvm_vm_free(vm);
}

/* kvm-arm.vgic_v3_<what>_trap=1 on the host's command line. */
static bool cmdline_has(const char *what)
{
	char buf[4096] = "", key[64];
	FILE *f = fopen("/proc/cmdline", "r");

	TEST_ASSERT(f, "/proc/cmdline");
	TEST_ASSERT(fgets(buf, sizeof(buf), f), "/proc/cmdline");
	fclose(f);
	snprintf(key, sizeof(key), "kvm-arm.vgic_v3_%s_trap=1", what);
	return strstr(buf, key) != NULL;
}

static void part_gic(void)
{
	bool g1 = cmdline_has("group1"), c = cmdline_has("common");
	long want = (g1 ? GIC_G1 : 0) * rounds + (c ? GIC_COMMON : 0) * rounds;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_gic);
	int gic = vgic_v3_setup(vm, 1, 64);
	struct vhe_rs_exits a, b;

	TEST_REQUIRE(gic >= 0);
	vcpu_args_set(vcpu, 1, rounds);
	a = vhe_rs_exits();
	run_to_done(vcpu);
	b = vhe_rs_exits();
	printf("gic: %lu rounds of GICv3 CPU interface accesses (PMR, IGRPEN1, IAR1, RPR, CTLR): "
	       "right; group-1 trap %s, common trap %s: %ld accesses trapped\n", rounds,
	       g1 ? "on" : "off", c ? "on" : "off", want);
	vhe_rs_exits_print("gic", a, b);
	if (b.valid)
		EXPECT(EL2_D(a, b, EC_SYS64) == want && HOST_D(a, b, EC_SYS64) == 0,
		       "SYS64 at EL2 +%ld, to the host +%ld; expected %ld (the trapped CPU "
		       "interface accesses, emulated at EL2) and 0", EL2_D(a, b, EC_SYS64),
		       HOST_D(a, b, EC_SYS64), want);
	close(gic);
	kvm_vm_free(vm);
}

static const struct {
	const char *name;
	void (*fn)(void);
} parts[] = {
	{ "fp", part_fp }, { "sve", part_sve }, { "cntpct", part_cntpct },
	{ "aborts", part_aborts }, { "wp", part_wp }, { "mops", part_mops }, { "gic", part_gic },
};

int main(int argc, char *argv[])
{
	const char *only = NULL;
	struct vhe_rs_snap before = vhe_rs_snap();
	int opt;

	while ((opt = getopt(argc, argv, "n:p:")) != -1) {
		if (opt == 'n')
			rounds = strtoull(optarg, NULL, 0);
		else if (opt == 'p')
			only = optarg;
	}
	TEST_REQUIRE(rounds >= 1);
	printf("el2_exits_test: module counters %s\n", vhe_rs_loaded() && vhe_rs_enabled() ?
	       "checked (vhe_rs loaded and enabled)" : "not checked (C backend)");
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		if (only && !strstr(only, parts[i].name))
			continue;
		parts[i].fn();
		fflush(stdout);
	}
	printf("el2_exits_test: backend: %s\n", vhe_rs_check_backend(before, vhe_rs_snap()));
	return 0;
}
