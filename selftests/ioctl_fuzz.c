// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl_fuzz: a seeded fuzzer of the KVM/arm64 ioctl interface, to compare the
 * built-in C world switch with vhe_rs (Documentation/selftests.rst, "ioctl_fuzz").
 *
 *   ioctl_fuzz -s SEED -n COUNT [-l]         deterministic: COUNT steps from SEED, then
 *                                            DIGEST seed=S n=COUNT digest=HEX
 *   ioctl_fuzz -s SEED -d SECONDS -t THREADS load: threads on shared VMs, for splats/hangs
 *   ioctl_fuzz                               make check: a few seeds, then a short load
 *   (and -T MS, -k, -a, -u: see help())
 *
 * A step is one ioctl (or a close()/mprotect()/sched_setaffinity() that changes what
 * KVM sees or where it runs), printed
 * with -l as `<index> <op> <args> -> <result> [<outputs>]`. The digest is FNV-1a over
 * those lines, so two logs of one seed have the same digest iff they are the same
 * text; outputs that depend on time or on addresses are printed as `~<why>` instead
 * of their value (the list is in Documentation/selftests.rst). The sequence is a
 * prefix by construction: step i never depends on COUNT, so `-n i+1` reproduces the
 * first i+1 steps of a longer run.
 *
 * Raw ioctl() throughout (the library's wrappers assert on failure; here the errno is
 * the result). Guest code: random words, or small programs assembled below, in a page
 * whose first half holds exception vectors that report ESR and ELR by MMIO writes, so
 * that nearly every run ends in a deterministic exit. KVM_RUN is bounded by a
 * per-thread timer whose signal sets immediate_exit: a guest that loops returns
 * -EINTR, and what it did is then left out of the digest ("tainted").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/arm-smccc.h>
#include <linux/psci.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"

/* ------------------------------------------------------------------------- */
/* Limits and the guest's memory map (all below 4 GiB: fits the smallest IPA) */

#define MAX_VMS		3
#define MAX_VCPUS	4
#define MAX_SLOTS	6
#define MAX_BACKINGS	48
#define MAX_SLOT_PAGES	16
#define PAGE		4096UL

#define SLOT_GPA(i)	(0x40000000ULL + (uint64_t)(i) * 0x01000000ULL)
#define MMIO_BASE	0x3f000000ULL		/* never in a memslot the fuzzer makes valid */
#define MMIO_VEC	0x000			/* + vector * 0x10: ESR at +0, ELR at +8 */
#define MMIO_IN		0x100			/* the programs' MMIO reads */
#define MMIO_OUT	0x400			/* the programs' results */
#define MMIO_HALT	0xff8			/* a program's end: written again and again */
#define GIC_DIST	0x08000000ULL		/* QEMU virt's layout */
#define GIC_REDIST	0x080a0000ULL
#define GIC_ITS		0x08080000ULL
#define CODE_OFF	0x800			/* the code half of the code page */
#define CODE_WORDS	((PAGE - CODE_OFF) / 4 - 4)	/* 4 words of halt at the end */

/* KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION: the count field (arm-vgic-v3.rst; not in the uapi) */
#define RDIST_COUNT_SHIFT	52
/* arch/arm64/include/asm/ptrace.h: PSR_AA32_MODE_SVC (not in the uapi) */
#define AA32_MODE_SVC		(PSR_MODE32_BIT | 0x3)
#define DAIF_MASK		(PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT)
#define PSR_IL			(1ULL << 20)

#define CORE_REG(x)	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(x))
#define REG_PC		CORE_REG(regs.pc)
#define REG_PSTATE	CORE_REG(regs.pstate)
#define REG_X(n)	CORE_REG(regs.regs[n])
#define REG_V(n)	(KVM_REG_ARM64 | KVM_REG_SIZE_U128 | KVM_REG_ARM_CORE | \
			 KVM_REG_ARM_CORE_REG(fp_regs.vregs[n]))
#define REG_SYS(r)	KVM_ARM64_SYS_REG(r)

/* ------------------------------------------------------------------------- */
/* Guest code, assembled here and copied into guest memory (position independent). */

/*
 * The vectors: 16 entries of 0x80 bytes at VBAR_EL1. Entry n writes ELR_EL1 to
 * MMIO_BASE + MMIO_VEC + n * 0x10 + 8, then ESR_EL1 to + 0 again and again: each
 * KVM_RUN after an exception returns one of those MMIO exits. They use x27-x29 only:
 * no other register is trusted (random code sets any).
 */
#define STR_(x) #x
#define STR(x) STR_(x)
asm(".pushsection .rodata.guest, \"a\"\n"
    ".arch armv8.7-a+sve+mops\n"
    ".macro VEC n\n"
    "	.balign 0x80\n"
    "	movz	x29, #" STR(MMIO_BASE >> 16) ", lsl #16\n"
    "	movk	x29, #(" STR(MMIO_VEC) " + \\n * 0x10)\n"
    "	mrs	x27, elr_el1\n"
    "	str	x27, [x29, #8]\n"
    "	mrs	x28, esr_el1\n"
    "1:	str	x28, [x29]\n"
    "	b	1b\n"
    ".endm\n"
    ".macro HALT\n"
    "9:	str	xzr, [x20, #" STR(MMIO_HALT) "]\n"
    "	b	9b\n"
    ".endm\n"
    ".balign 0x80\n"
    ".global fz_vectors, fz_vectors_end\n"
    "fz_vectors:\n"
    "	VEC 0\n VEC 1\n VEC 2\n VEC 3\n VEC 4\n VEC 5\n VEC 6\n VEC 7\n"
    "	VEC 8\n VEC 9\n VEC 10\n VEC 11\n VEC 12\n VEC 13\n VEC 14\n VEC 15\n"
    "	.balign 0x80\n"
    "fz_vectors_end:\n"
    /* The end of every random code page: x29 rebuilt, the halt written forever. */
    ".global fz_tail, fz_tail_end\n"
    "fz_tail:\n"
    "	movz	x29, #" STR(MMIO_BASE >> 16) ", lsl #16\n"
    "1:	str	xzr, [x29, #" STR(MMIO_HALT) "]\n"
    "	b	1b\n"
    "	nop\n"
    "fz_tail_end:\n"
    /*
     * Programs: x20 = MMIO_BASE, x21 = scratch memory, x0-x7 the fuzzer's
     * parameters. Each ends in HALT.
     */
    /* MMIO reads of every size (sign extension too), their sum written back */
    ".global gp_mmio, gp_mmio_end\n"
    "gp_mmio:\n"
    "	ldr	x1, [x20, #" STR(MMIO_IN) "]\n"
    "	ldr	w2, [x20, #" STR(MMIO_IN) " + 8]\n"
    "	ldrh	w3, [x20, #" STR(MMIO_IN) " + 16]\n"
    "	ldrsb	x4, [x20, #" STR(MMIO_IN) " + 24]\n"
    "	ldrsw	x5, [x20, #" STR(MMIO_IN) " + 32]\n"
    "	add	x6, x1, x2\n"
    "	add	x6, x6, x3\n"
    "	add	x6, x6, x4\n"
    "	add	x6, x6, x5\n"
    "	add	x6, x6, x0\n"
    "	str	x6, [x20, #" STR(MMIO_OUT) "]\n"
    "	strb	w6, [x20, #" STR(MMIO_OUT) " + 8]\n"
    "	strh	w6, [x20, #" STR(MMIO_OUT) " + 16]\n"
    "	str	w6, [x20, #" STR(MMIO_OUT) " + 24]\n"
    "	HALT\n"
    "gp_mmio_end:\n"
    /* A load pair from MMIO: no syndrome (ENOSYS, or KVM_EXIT_ARM_NISV) */
    ".global gp_nisv, gp_nisv_end\n"
    "gp_nisv:\n"
    "	ldp	x1, x2, [x20, #" STR(MMIO_IN) "]\n"
    "	str	x1, [x20, #" STR(MMIO_OUT) "]\n"
    "	HALT\n"
    "gp_nisv_end:\n"
    /* An SMCCC call by HVC (x0-x3 from the fuzzer), its results written out */
    ".global gp_hvc, gp_hvc_end\n"
    "gp_hvc:\n"
    "	hvc	#0\n"
    "	str	x0, [x20, #" STR(MMIO_OUT) "]\n"
    "	str	x1, [x20, #" STR(MMIO_OUT) " + 8]\n"
    "	str	x2, [x20, #" STR(MMIO_OUT) " + 16]\n"
    "	str	x3, [x20, #" STR(MMIO_OUT) " + 24]\n"
    "	HALT\n"
    "gp_hvc_end:\n"
    ".global gp_smc, gp_smc_end\n"
    "gp_smc:\n"
    "	smc	#0\n"
    "	str	x0, [x20, #" STR(MMIO_OUT) "]\n"
    "	str	x1, [x20, #" STR(MMIO_OUT) " + 8]\n"
    "	HALT\n"
    "gp_smc_end:\n"
    /* FP/SIMD: registers written, an exit, read back (lazy FP switch) */
    ".global gp_fp, gp_fp_end\n"
    "gp_fp:\n"
    "	fmov	d1, x0\n"
    "	fadd	d2, d1, d0\n"
    "	mov	v3.d[1], x1\n"
    "	msr	fpcr, x2\n"
    "	str	xzr, [x20, #" STR(MMIO_OUT) "]\n"
    "	fmov	x4, d2\n"
    "	str	x4, [x20, #" STR(MMIO_OUT) " + 8]\n"
    "	mov	x5, v3.d[1]\n"
    "	str	x5, [x20, #" STR(MMIO_OUT) " + 16]\n"
    "	mov	x6, v31.d[1]\n"
    "	str	x6, [x20, #" STR(MMIO_OUT) " + 24]\n"
    "	mrs	x7, fpsr\n"
    "	str	x7, [x20, #" STR(MMIO_OUT) " + 32]\n"
    "	mrs	x7, fpcr\n"
    "	str	x7, [x20, #" STR(MMIO_OUT) " + 40]\n"
    "	HALT\n"
    "gp_fp_end:\n"
    /* SVE: the vector length, a Z register summed before and after an exit */
    ".global gp_sve, gp_sve_end\n"
    "gp_sve:\n"
    "	rdvl	x1, #1\n"
    "	str	x1, [x20, #" STR(MMIO_OUT) "]\n"
    "	ptrue	p0.b\n"
    "	dup	z0.b, w0\n"
    "	str	xzr, [x20, #" STR(MMIO_OUT) " + 8]\n"
    "	uaddv	d1, p0, z0.b\n"
    "	fmov	x2, d1\n"
    "	str	x2, [x20, #" STR(MMIO_OUT) " + 16]\n"
    "	uaddv	d3, p0, z31.b\n"
    "	fmov	x3, d3\n"
    "	str	x3, [x20, #" STR(MMIO_OUT) " + 24]\n"
    "	HALT\n"
    "gp_sve_end:\n"
    /* EL1 and EL0 system registers written, an exit, read back one by one */
    ".global gp_sysregs, gp_sysregs_end\n"
    "gp_sysregs:\n"
    "	msr	tpidr_el1, x0\n"
    "	msr	tpidr_el0, x1\n"
    "	msr	tpidrro_el0, x2\n"
    "	msr	contextidr_el1, x3\n"
    "	msr	far_el1, x4\n"
    "	msr	par_el1, x5\n"
    "	msr	sp_el0, x6\n"
    "	msr	afsr0_el1, x7\n"
    "	msr	mair_el1, x0\n"
    "	msr	amair_el1, x1\n"
    "	msr	cntkctl_el1, x2\n"
    "	msr	afsr1_el1, x3\n"
    "	str	xzr, [x20, #" STR(MMIO_OUT) "]\n"
    "	mrs	x8, tpidr_el1\n	str x8, [x20, #" STR(MMIO_OUT) " + 8]\n"
    "	mrs	x8, tpidr_el0\n	str x8, [x20, #" STR(MMIO_OUT) " + 16]\n"
    "	mrs	x8, tpidrro_el0\n	str x8, [x20, #" STR(MMIO_OUT) " + 24]\n"
    "	mrs	x8, contextidr_el1\n	str x8, [x20, #" STR(MMIO_OUT) " + 32]\n"
    "	mrs	x8, far_el1\n	str x8, [x20, #" STR(MMIO_OUT) " + 40]\n"
    "	mrs	x8, par_el1\n	str x8, [x20, #" STR(MMIO_OUT) " + 48]\n"
    "	mrs	x8, sp_el0\n	str x8, [x20, #" STR(MMIO_OUT) " + 56]\n"
    "	mrs	x8, afsr0_el1\n	str x8, [x20, #" STR(MMIO_OUT) " + 64]\n"
    "	mrs	x8, mair_el1\n	str x8, [x20, #" STR(MMIO_OUT) " + 72]\n"
    "	mrs	x8, amair_el1\n	str x8, [x20, #" STR(MMIO_OUT) " + 80]\n"
    "	mrs	x8, cntkctl_el1\n	str x8, [x20, #" STR(MMIO_OUT) " + 88]\n"
    "	mrs	x8, afsr1_el1\n	str x8, [x20, #" STR(MMIO_OUT) " + 96]\n"
    "	HALT\n"
    "gp_sysregs_end:\n"
    /* ID and cache registers (trapped to KVM), written out */
    ".global gp_idregs, gp_idregs_end\n"
    "gp_idregs:\n"
    "	mrs	x1, midr_el1\n	str x1, [x20, #" STR(MMIO_OUT) "]\n"
    "	mrs	x1, mpidr_el1\n	str x1, [x20, #" STR(MMIO_OUT) " + 8]\n"
    "	mrs	x1, id_aa64pfr0_el1\n	str x1, [x20, #" STR(MMIO_OUT) " + 16]\n"
    "	mrs	x1, id_aa64isar0_el1\n	str x1, [x20, #" STR(MMIO_OUT) " + 24]\n"
    "	mrs	x1, id_aa64mmfr0_el1\n	str x1, [x20, #" STR(MMIO_OUT) " + 32]\n"
    "	mrs	x1, id_aa64dfr0_el1\n	str x1, [x20, #" STR(MMIO_OUT) " + 40]\n"
    "	mrs	x1, ctr_el0\n	str x1, [x20, #" STR(MMIO_OUT) " + 48]\n"
    "	mrs	x1, clidr_el1\n	str x1, [x20, #" STR(MMIO_OUT) " + 56]\n"
    "	msr	csselr_el1, x0\n	isb\n"
    "	mrs	x1, ccsidr_el1\n	str x1, [x20, #" STR(MMIO_OUT) " + 64]\n"
    "	mrs	x1, dczid_el0\n	str x1, [x20, #" STR(MMIO_OUT) " + 72]\n"
    "	mrs	x1, id_aa64zfr0_el1\n	str x1, [x20, #" STR(MMIO_OUT) " + 80]\n"
    "	HALT\n"
    "gp_idregs_end:\n"
    /* The guest's own hardware breakpoint on a later instruction */
    ".global gp_bkpt, gp_bkpt_end\n"
    "gp_bkpt:\n"
    "	adr	x1, 1f\n"
    "	msr	dbgbvr0_el1, x1\n"
    "	mov	x2, #((0xf << 5) | (1 << 1) | 1)\n"	/* BAS, PMC=EL1, E */
    "	msr	dbgbcr0_el1, x2\n"
    "	mrs	x3, mdscr_el1\n"
    "	orr	x3, x3, #(1 << 13)\n"			/* KDE */
    "	orr	x3, x3, #(1 << 15)\n"			/* MDE */
    "	msr	mdscr_el1, x3\n"
    "	msr	oslar_el1, xzr\n"
    "	msr	daifclr, #8\n"
    "	isb\n"
    "1:	nop\n"
    "	str	x1, [x20, #" STR(MMIO_OUT) "]\n"
    "	HALT\n"
    "gp_bkpt_end:\n"
    /* The guest's own watchpoint on x21 */
    ".global gp_wpt, gp_wpt_end\n"
    "gp_wpt:\n"
    "	msr	dbgwvr0_el1, x21\n"
    "	mov	x2, #((0xff << 5) | (3 << 3) | (1 << 1) | 1)\n"	/* BAS, LSC=ld/st, PAC=EL1, E */
    "	msr	dbgwcr0_el1, x2\n"
    "	mrs	x3, mdscr_el1\n"
    "	orr	x3, x3, #(1 << 13)\n"
    "	orr	x3, x3, #(1 << 15)\n"
    "	msr	mdscr_el1, x3\n"
    "	msr	oslar_el1, xzr\n"
    "	msr	daifclr, #8\n"
    "	isb\n"
    "	str	x0, [x21]\n"
    "	str	x0, [x20, #" STR(MMIO_OUT) "]\n"
    "	HALT\n"
    "gp_wpt_end:\n"
    /* An exception return to SPSR x0 at x1 (or the label after it if x2 == 0) */
    ".global gp_eret, gp_eret_end\n"
    "gp_eret:\n"
    "	cbnz	x2, 2f\n"
    "	adr	x1, 1f\n"
    "2:	msr	elr_el1, x1\n"
    "	msr	spsr_el1, x0\n"
    "	eret\n"
    "1:	svc	#0\n"
    "	brk	#0\n"
    "	HALT\n"
    "gp_eret_end:\n"
    /* WFI, then an exit */
    ".global gp_wfi, gp_wfi_end\n"
    "gp_wfi:\n"
    "	wfi\n"
    "	str	xzr, [x20, #" STR(MMIO_OUT) "]\n"
    "	HALT\n"
    "gp_wfi_end:\n"
    /* GICv3 CPU interface registers */
    ".global gp_gic, gp_gic_end\n"
    "gp_gic:\n"
    "	mrs	x1, S3_0_C12_C12_5\n	str x1, [x20, #" STR(MMIO_OUT) "]\n"	/* ICC_SRE_EL1 */
    "	msr	S3_0_C4_C6_0, x0\n"					/* ICC_PMR_EL1 */
    "	mrs	x2, S3_0_C4_C6_0\n	str x2, [x20, #" STR(MMIO_OUT) " + 8]\n"
    "	mrs	x3, S3_0_C12_C11_3\n	str x3, [x20, #" STR(MMIO_OUT) " + 16]\n"	/* RPR */
    "	msr	S3_0_C12_C12_7, x1\n"					/* IGRPEN1 */
    "	mrs	x4, S3_0_C12_C12_4\n	str x4, [x20, #" STR(MMIO_OUT) " + 24]\n"	/* CTLR */
    "	mrs	x5, S3_0_C12_C12_0\n	str x5, [x20, #" STR(MMIO_OUT) " + 32]\n"	/* IAR1 */
    "	HALT\n"
    "gp_gic_end:\n"
    /* Address translation and cache maintenance */
    ".global gp_at, gp_at_end\n"
    "gp_at:\n"
    "	at	s1e1r, x0\n"
    "	isb\n"
    "	mrs	x1, par_el1\n"
    "	str	x1, [x20, #" STR(MMIO_OUT) "]\n"
    "	dc	zva, x21\n"
    "	dc	civac, x21\n"
    "	ic	iallu\n"
    "	tlbi	vmalle1\n"
    "	dsb	sy\n"
    "	ldr	x2, [x21]\n"
    "	str	x2, [x20, #" STR(MMIO_OUT) " + 8]\n"
    "	HALT\n"
    "gp_at_end:\n"
    /* FEAT_MOPS copy and set over the scratch memory */
    ".global gp_mops, gp_mops_end\n"
    "gp_mops:\n"
    "	mov	x3, x21\n"
    "	add	x4, x21, #256\n"
    "	mov	x5, #192\n"
    "	cpyp	[x3]!, [x4]!, x5!\n"
    "	cpym	[x3]!, [x4]!, x5!\n"
    "	cpye	[x3]!, [x4]!, x5!\n"
    "	mov	x3, x21\n"
    "	mov	x5, #64\n"
    "	setp	[x3]!, x5!, x0\n"
    "	setm	[x3]!, x5!, x0\n"
    "	sete	[x3]!, x5!, x0\n"
    "	ldr	x6, [x21, #8]\n"
    "	str	x6, [x20, #" STR(MMIO_OUT) "]\n"
    "	HALT\n"
    "gp_mops_end:\n"
    /* Pointer authentication (not given to guests here: UNDEF) */
    ".global gp_pauth, gp_pauth_end\n"
    "gp_pauth:\n"
    "	mrs	x2, sctlr_el1\n"
    "	orr	x2, x2, #(1 << 31)\n"	/* EnIA: else PACIA does nothing */
    "	msr	sctlr_el1, x2\n"
    "	isb\n"
    "	pacia	x0, x1\n"
    "	str	x0, [x20, #" STR(MMIO_OUT) "]\n"
    "	HALT\n"
    "gp_pauth_end:\n"
    /* A loop that never exits: the run bound's own test */
    ".global gp_loop, gp_loop_end\n"
    "gp_loop:\n"
    "1:	add	x0, x0, #1\n"
    "	b	1b\n"
    "gp_loop_end:\n"
    ".popsection\n");

#define GUEST_SYM(n) extern const uint32_t n[], n##_end[]
GUEST_SYM(fz_vectors);
GUEST_SYM(fz_tail);
GUEST_SYM(gp_mmio);
GUEST_SYM(gp_nisv);
GUEST_SYM(gp_hvc);
GUEST_SYM(gp_smc);
GUEST_SYM(gp_fp);
GUEST_SYM(gp_sve);
GUEST_SYM(gp_sysregs);
GUEST_SYM(gp_idregs);
GUEST_SYM(gp_bkpt);
GUEST_SYM(gp_wpt);
GUEST_SYM(gp_eret);
GUEST_SYM(gp_wfi);
GUEST_SYM(gp_gic);
GUEST_SYM(gp_at);
GUEST_SYM(gp_mops);
GUEST_SYM(gp_pauth);
GUEST_SYM(gp_loop);

enum prog {
	P_RANDOM, P_MMIO, P_NISV, P_HVC, P_SMC, P_FP, P_SVE, P_SYSREGS, P_IDREGS, P_BKPT,
	P_WPT, P_ERET, P_WFI, P_GIC, P_AT, P_MOPS, P_PAUTH, P_LOOP, P_A32, NR_PROGS
};

static const struct {
	const char *name;
	const uint32_t *start, *end;
	int weight;
} progs[NR_PROGS] = {
	[P_RANDOM]  = { "random", NULL, NULL, 30 },
	[P_MMIO]    = { "mmio", gp_mmio, gp_mmio_end, 8 },
	[P_NISV]    = { "nisv", gp_nisv, gp_nisv_end, 2 },
	[P_HVC]     = { "hvc", gp_hvc, gp_hvc_end, 12 },
	[P_SMC]     = { "smc", gp_smc, gp_smc_end, 3 },
	[P_FP]      = { "fp", gp_fp, gp_fp_end, 8 },
	[P_SVE]     = { "sve", gp_sve, gp_sve_end, 6 },
	[P_SYSREGS] = { "sysregs", gp_sysregs, gp_sysregs_end, 8 },
	[P_IDREGS]  = { "idregs", gp_idregs, gp_idregs_end, 3 },
	[P_BKPT]    = { "bkpt", gp_bkpt, gp_bkpt_end, 4 },
	[P_WPT]     = { "wpt", gp_wpt, gp_wpt_end, 4 },
	[P_ERET]    = { "eret", gp_eret, gp_eret_end, 5 },
	[P_WFI]     = { "wfi", gp_wfi, gp_wfi_end, 2 },
	[P_GIC]     = { "gic", gp_gic, gp_gic_end, 4 },
	[P_AT]      = { "at", gp_at, gp_at_end, 3 },
	[P_MOPS]    = { "mops", gp_mops, gp_mops_end, 3 },
	[P_PAUTH]   = { "pauth", gp_pauth, gp_pauth_end, 1 },
	[P_LOOP]    = { "loop", gp_loop, gp_loop_end, 1 },
	[P_A32]     = { "a32", NULL, NULL, 0 },	/* 32-bit vCPUs only */
};

/* ------------------------------------------------------------------------- */
/* State */

struct slot {
	bool used;
	uint32_t flags;
	uint64_t gpa, size;
	uint8_t *host;			/* its backing (MAX_SLOT_PAGES pages) */
	int prot;			/* of the backing: PROT_READ|PROT_WRITE unless revoked */
};

struct vcpu {
	bool exists, closed;
	int fd;
	uint32_t id;
	struct kvm_run *run;
	bool inited, finalized;
	uint32_t feat;
	bool taint;			/* registers changed at times the digest cannot know */
	bool ran;
	uint64_t *regs;			/* KVM_GET_REG_LIST, once known */
	uint64_t nregs;
};

struct vm {
	int refs;			/* the table's, and one per action using it */
	int fd, index;
	unsigned int ipa;
	pthread_mutex_t lock;		/* the tables below, in load mode */
	struct vcpu vcpu[MAX_VCPUS];
	struct slot slot[MAX_SLOTS];
	uint8_t *backing[MAX_BACKINGS];	/* all of them, unmapped when the VM goes */
	int nbacking;
	int vgic_fd, its_fd;
	uint32_t target, feat;		/* the preferred target; the first vCPU's features */
	bool target_known, feat_known;
	bool taint;			/* guest memory changed at unknown times */
	bool nisv;
	bool run_failed;		/* -k: see run_step() */
	bool run_ok;
};

struct world {
	pthread_mutex_t lock;
	struct vm *vm[MAX_VMS];
	bool load;
	int devnull;
	uint64_t vms, steps, runs, bounded;	/* totals (load mode: all threads) */
};

struct fz {
	uint64_t s[4];			/* xoshiro256** */
	uint64_t seed, step, limit, digest;
	bool list, load;
	int tid;
	jmp_buf out;
	struct world *w;
	timer_t timer;
	uint64_t bound_ns;
	uint64_t deadline;		/* load mode, CLOCK_MONOTONIC ns */
	uint64_t vms, runs, bounded, tainted_runs;
	char line[1024];
	int len;
	uint8_t *buf;			/* ONE_REG and other values */
};

static int kvm_fd;
static size_t run_size;
static int pmu_type = -1;		/* the host PMU's perf type, for SET_PMU */
static uint64_t bound_default_ms = 100;

/* What make check runs (no -n, no -d): about 25 s under QEMU TCG */
#define CHECK_SEEDS	3
#define CHECK_STEPS	10000
#define CHECK_SECONDS	8
#define CHECK_THREADS	4

/*
 * -k: keep clear of KVM bugs found by this fuzzer that are not the world switch's
 * (Documentation/selftests.rst, "ioctl_fuzz"), to look for others on a kernel
 * where they are not fixed. Off by default: the default sequences still reach them.
 *  1. A vGIC created after a vCPU's first KVM_RUN failed past kvm_timer_enable()
 *     (e.g. PMU_V3 without KVM_ARM_VCPU_PMU_V3_INIT), then KVM_ARM_VCPU_INIT:
 *     WARN at arch_timer.c:459, NULL dereference in kvm_vgic_reset_mapped_irq().
 *     Fixed by arch/arm64/patches/0001 (the PMU is checked before the timer is
 *     enabled), regression test selftests/first_run_fail_test.c.
 * It is the only one: with the series applied, -k is not needed; it is kept for
 * kernels without the series (upstream 6.12.117 crashes on seed 7: -u -a -s 7).
 */
static bool avoid_known;
static uint64_t avoided;		/* how often -k stepped aside (all threads) */

/*
 * -a: run AArch32 vCPUs in deterministic mode too. Off by default: under QEMU TCG
 * an AArch32 EL1 guest leaves state in the emulated CPU that later guests, of any
 * process, can see (its banked SPSRs read back differently from run to run on the
 * built-in C; an AArch64 guest later found in AArch32 SVC mode): such runs make a
 * digest depend on what ran before. They are made in load mode, and their vCPUs are
 * created, initialised and their registers read and written in both modes.
 */
static bool run_aarch32;

/*
 * -u: unpinned, no MIGRATE steps: the deterministic mode's thread runs where the
 * scheduler puts it (the first version of this fuzzer, whose sequences -u -a
 * reproduces). Where a vCPU thread runs is then not part of the sequence.
 */
static bool unpinned;

/* The CPUs the process may run on, at its start: MIGRATE moves among them. */
static cpu_set_t cpus_start;
static int cpus[CPU_SETSIZE], ncpus;

/* ------------------------------------------------------------------------- */
/* Randomness */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void seed_rng(struct fz *f, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);

	for (int i = 0; i < 4; i++)
		f->s[i] = splitmix(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(struct fz *f)
{
	uint64_t *s = f->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

static uint64_t below(struct fz *f, uint64_t n)
{
	return n ? rnd(f) % n : 0;
}

static bool chance(struct fz *f, unsigned int percent)
{
	return below(f, 100) < percent;
}

#define PICK(f, arr) ((arr)[below(f, ARRAY_SIZE(arr))])

/* A deterministic function of an address: what an MMIO read returns. */
static uint64_t mmio_value(uint64_t seed, uint64_t addr)
{
	uint64_t x = seed ^ addr;

	return splitmix(&x);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* ------------------------------------------------------------------------- */
/* Steps: one line each, hashed into the digest, printed with -l */

static void add(struct fz *f, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (f->len >= (int)sizeof(f->line) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(f->line + f->len, sizeof(f->line) - f->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		f->len += n;
	if (f->len > (int)sizeof(f->line) - 1)
		f->len = sizeof(f->line) - 1;
}

/*
 * Start step f->step: in deterministic mode, the end when the limit is reached
 * (never while a lock is held: no caller holds one).
 */
static void begin(struct fz *f, const char *fmt, ...)
{
	va_list ap;

	if (f->step >= f->limit)
		longjmp(f->out, 1);
	f->len = 0;
	add(f, "%" PRIu64 " ", f->step);
	va_start(ap, fmt);
	f->len += vsnprintf(f->line + f->len, sizeof(f->line) - f->len, fmt, ap);
	va_end(ap);
}

static void errname(struct fz *f, long r)
{
	const char *n = strerrorname_np(-r);

	if (n)
		add(f, "-%s", n);
	else
		add(f, "-%ld", -r);
}

/* " -> RESULT": 0 and positive as numbers, fds as "fd", errors by name. */
static void result(struct fz *f, long r, bool is_fd)
{
	add(f, " -> ");
	if (r < 0)
		errname(f, r);
	else if (is_fd)
		add(f, "fd");
	else
		add(f, "%ld", r);
}

static void end(struct fz *f)
{
	if (f->len > (int)sizeof(f->line) - 2)
		f->len = sizeof(f->line) - 2;
	f->line[f->len++] = '\n';
	f->line[f->len] = 0;
	f->digest = fnv(f->digest, f->line, f->len);
	if (f->list)
		fputs(f->line, stdout);
	f->step++;
}

static long xioctl(int fd, unsigned long req, void *arg)
{
	long r = ioctl(fd, req, arg);

	return r < 0 ? -errno : r;
}

/* ------------------------------------------------------------------------- */
/* VMs: a table shared by the threads of load mode, one reference per user. */

static struct vm *vm_new(int fd, unsigned int ipa)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	TEST_ASSERT(vm, "calloc");
	vm->fd = fd;
	vm->ipa = ipa;
	vm->refs = 1;
	vm->vgic_fd = vm->its_fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	return vm;
}

static void vm_free(struct vm *vm)
{
	for (int i = 0; i < MAX_VCPUS; i++) {
		struct vcpu *c = &vm->vcpu[i];

		if (!c->exists)
			continue;
		if (c->run)
			munmap(c->run, run_size);
		if (c->fd >= 0)
			close(c->fd);
		free(c->regs);
	}
	if (vm->vgic_fd >= 0)
		close(vm->vgic_fd);
	if (vm->its_fd >= 0)
		close(vm->its_fd);
	if (vm->fd >= 0)
		close(vm->fd);
	for (int i = 0; i < vm->nbacking; i++)
		munmap(vm->backing[i], MAX_SLOT_PAGES * PAGE);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

static void vm_put(struct vm *vm)
{
	if (vm && __atomic_sub_fetch(&vm->refs, 1, __ATOMIC_ACQ_REL) == 0)
		vm_free(vm);
}

/* A random live VM, referenced, or NULL. */
static struct vm *vm_get(struct fz *f)
{
	struct world *w = f->w;
	struct vm *live[MAX_VMS], *vm = NULL;
	int n = 0;

	pthread_mutex_lock(&w->lock);
	for (int i = 0; i < MAX_VMS; i++)
		if (w->vm[i])
			live[n++] = w->vm[i];
	if (n) {
		vm = live[below(f, n)];
		__atomic_add_fetch(&vm->refs, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&w->lock);
	return vm;
}

/*
 * The fds of a VM given up: closed in deterministic mode (the caller's reference
 * goes last, so the VM is freed at once); in load mode replaced by /dev/null, so
 * that threads still using the VM never reach a reused fd number: its kernel
 * objects go when the last mapping and reference go.
 */
static void fd_drop(struct fz *f, int *fd)
{
	if (*fd < 0)
		return;
	if (f->load)
		dup2(f->w->devnull, *fd);
	else {
		close(*fd);
		*fd = -1;
	}
}

static int vcpu_pick(struct fz *f, struct vm *vm, bool open_only)
{
	int ids[MAX_VCPUS], n = 0;

	/* exists is set last, once (act_create_vcpu()): the rest is there then */
	for (int i = 0; i < MAX_VCPUS; i++)
		if (__atomic_load_n(&vm->vcpu[i].exists, __ATOMIC_ACQUIRE) &&
		    (!open_only || !vm->vcpu[i].closed))
			ids[n++] = i;
	return n ? ids[below(f, n)] : -1;
}

/* ------------------------------------------------------------------------- */
/* Values */

static bool is_timer_cval(uint64_t id)
{
	return id == KVM_REG_ARM_TIMER_CVAL || id == KVM_REG_ARM_PTIMER_CVAL;
}

static bool is_timer_cnt(uint64_t id)
{
	return id == KVM_REG_ARM_TIMER_CNT || id == KVM_REG_ARM_PTIMER_CNT;
}

static bool is_pmu_count(uint64_t id)
{
	if (id == REG_SYS(SYS_PMCCNTR_EL0) || id == REG_SYS(SYS_PMOVSSET_EL0) ||
	    id == REG_SYS(SYS_PMOVSCLR_EL0))
		return true;
	for (int n = 0; n < 31; n++)
		if (id == REG_SYS(SYS_PMEVCNTRn_EL0(n)))
			return true;
	return false;
}

/*
 * Why a register's value is left out of the digest, or NULL. Timer counters count
 * time; the PMU's counters and overflow flags count cycles and events of a guest
 * whose speed is the host's (Documentation/selftests.rst lists these).
 */
static const char *value_excluded(uint64_t id)
{
	if (is_timer_cnt(id))
		return "time";
	if (is_pmu_count(id))
		return "pmu";
	return NULL;
}

static size_t reg_size(uint64_t id)
{
	return 1UL << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

/*
 * Timer values are kept away from "now": a compare value is 0 (always fired) or at
 * least 2^63 (never, as the counter below is kept under 2^62), so that whether a
 * timer fires never depends on when a step runs.
 */
static uint64_t timer_cval(struct fz *f)
{
	switch (below(f, 4)) {
	case 0:
		return 0;
	case 1:
		return ~0ULL;
	case 2:
		return 1ULL << 63;
	default:
		return rnd(f) | (1ULL << 63);
	}
}

static uint64_t timer_cnt(struct fz *f)
{
	return chance(f, 30) ? 0 : rnd(f) >> 3;	/* under 2^61 */
}

static const uint64_t pstate_extra[] = {
	0, PSR_IL, PSR_D_BIT, PSR_BTYPE_MASK, PSR_SSBS_BIT, PSR_PAN_BIT, PSR_UAO_BIT,
	PSR_DIT_BIT, PSR_TCO_BIT, PSR_N_BIT | PSR_Z_BIT | PSR_C_BIT | PSR_V_BIT,
	1ULL << 21 /* SS */, 1ULL << 32, ~0ULL << 32,
};

static uint64_t pstate_value(struct fz *f)
{
	uint64_t v = below(f, 32);	/* every M[4:0]: EL0t..EL3h, reserved, AArch32 modes */

	if (chance(f, 60))
		v |= DAIF_MASK;
	if (chance(f, 30))
		v |= PICK(f, pstate_extra);
	if (chance(f, 5))
		v = rnd(f);
	return v;
}

static uint64_t pc_value(struct fz *f, uint64_t code)
{
	static const uint64_t wild[] = {
		0, ~0ULL, 1, 2, 3, 1ULL << 48, 0xffff000000000000ULL, 0x0000ffffffffffffULL,
		1ULL << 63, MMIO_BASE, GIC_DIST, 0xfffffffcULL, 1ULL << 52,
	};

	switch (below(f, 4)) {
	case 0:
		return code + 4 * below(f, CODE_WORDS);
	case 1:
		return code + 1 + below(f, 3);
	case 2:
		return rnd(f);
	default:
		return PICK(f, wild);
	}
}

static uint64_t val64(struct fz *f, uint64_t cur, bool cur_known)
{
	uint64_t c = cur_known ? cur : rnd(f);

	switch (below(f, 12)) {
	case 0:
		return 0;
	case 1:
		return ~0ULL;
	case 2:
		return 1ULL << below(f, 64);
	case 3:
	case 4:
		return c ^ (1ULL << below(f, 64));
	case 5:
		return c;
	case 6:
		return rnd(f);
	case 7:
		return below(f, 16);
	case 8:
		return 1ULL << 63;
	case 9:
		return c & rnd(f);
	case 10:
		return c | rnd(f);
	default:
		return c ^ (0xfULL << (4 * below(f, 16)));	/* an ID register field */
	}
}

/* SVE vector lengths (KVM_REG_ARM64_SVE_VLS): good and bad bitmaps. */
static void vls_value(struct fz *f, uint64_t *vqs, const uint64_t *cur)
{
	int top = -1;

	for (int i = 0; i < KVM_ARM64_SVE_VLS_WORDS * 64; i++)
		if (cur[i / 64] & (1ULL << (i % 64)))
			top = i;
	memcpy(vqs, cur, KVM_ARM64_SVE_VLS_WORDS * 8);
	switch (below(f, 7)) {
	case 0:		/* as is */
		break;
	case 1:		/* one supported length only */
		memset(vqs, 0, KVM_ARM64_SVE_VLS_WORDS * 8);
		if (top >= 0) {
			int i = below(f, top + 1);

			while (!(cur[i / 64] & (1ULL << (i % 64))))
				i--;
			vqs[i / 64] = 1ULL << (i % 64);
		}
		break;
	case 2:		/* none */
		memset(vqs, 0, KVM_ARM64_SVE_VLS_WORDS * 8);
		break;
	case 3:		/* all, beyond the host */
		memset(vqs, 0xff, KVM_ARM64_SVE_VLS_WORDS * 8);
		break;
	case 4:		/* one more than the host */
		if (top + 1 < KVM_ARM64_SVE_VLS_WORDS * 64)
			vqs[(top + 1) / 64] |= 1ULL << ((top + 1) % 64);
		break;
	case 5:		/* a gap below the top */
		if (top > 0)
			vqs[(top - 1) / 64] &= ~(1ULL << ((top - 1) % 64));
		break;
	default:
		for (int i = 0; i < KVM_ARM64_SVE_VLS_WORDS; i++)
			vqs[i] = rnd(f) & cur[i];
		break;
	}
}

/* A value of KVM_REG_SIZE(id) bytes for register @id, given its current one. */
static void reg_value(struct fz *f, uint64_t id, const uint8_t *cur, bool cur_known,
		      uint64_t code, uint8_t *out)
{
	size_t size = reg_size(id);
	uint64_t v, c = 0;

	if (size > 8 && id == KVM_REG_ARM64_SVE_VLS && cur_known) {
		vls_value(f, (uint64_t *)out, (const uint64_t *)cur);
		return;
	}
	if (size > 8) {
		switch (below(f, 4)) {
		case 0:
			memset(out, 0, size);
			break;
		case 1:
			memset(out, 0xff, size);
			break;
		case 2:
			if (cur_known) {
				memcpy(out, cur, size);
				out[below(f, size)] ^= 1 << below(f, 8);
				break;
			}
			/* fall through */
		default:
			for (size_t i = 0; i < size; i += 8) {
				v = rnd(f);
				memcpy(out + i, &v, 8);
			}
		}
		return;
	}
	if (cur_known)
		memcpy(&c, cur, size);
	if (id == REG_PSTATE)
		v = pstate_value(f);
	else if (id == REG_PC)
		v = pc_value(f, code);
	else if (is_timer_cval(id))
		v = timer_cval(f);
	else if (is_timer_cnt(id))
		v = timer_cnt(f);
	else
		v = val64(f, c, cur_known);
	memcpy(out, &v, size);
}

/* Appends " val=..." for @size bytes at @p (a hash beyond 8 bytes). */
static void add_value(struct fz *f, const char *key, const uint8_t *p, size_t size)
{
	uint64_t v = 0;

	if (size <= 8) {
		memcpy(&v, p, size);
		add(f, " %s=0x%" PRIx64, key, v);
	} else {
		add(f, " %s=h:%016" PRIx64, key, fnv(FNV_INIT, p, size));
	}
}

/* ------------------------------------------------------------------------- */
/* Actions. Each issues one or more steps; none holds a lock across a step. */

static void act_create_vm(struct fz *f)
{
	struct world *w = f->w;
	unsigned int ipa = 40;	/* KVM's default IPA size for type 0 */
	uint64_t type;
	int slot = -1;
	long r;

	pthread_mutex_lock(&w->lock);
	for (int i = 0; i < MAX_VMS; i++)
		if (!w->vm[i])
			slot = i;
	pthread_mutex_unlock(&w->lock);
	if (slot < 0)
		return;
	switch (below(f, 10)) {
	case 0:
	case 1: {
		static const unsigned int ipas[] = { 32, 36, 40, 44, 48, 52 };

		ipa = PICK(f, ipas);
		type = KVM_VM_TYPE_ARM_IPA_SIZE(ipa);
		break;
	}
	case 2: {
		static const uint64_t bad[] = {
			KVM_VM_TYPE_ARM_IPA_SIZE(31), KVM_VM_TYPE_ARM_IPA_SIZE(53),
			KVM_VM_TYPE_ARM_IPA_SIZE(255), KVM_VM_TYPE_ARM_IPA_SIZE(1),
			1ULL << 8, 1ULL << 31, ~0ULL, 1ULL << 63,
		};

		type = PICK(f, bad);
		break;
	}
	default:
		type = 0;
	}
	begin(f, "CREATE_VM type=0x%" PRIx64, type);
	r = xioctl(kvm_fd, KVM_CREATE_VM, (void *)type);
	result(f, r, true);
	if (r >= 0) {
		struct vm *vm = vm_new(r, ipa);
		bool placed = false;

		pthread_mutex_lock(&w->lock);
		for (int i = 0; i < MAX_VMS && !placed; i++) {
			if (!w->vm[i]) {
				w->vm[i] = vm;
				vm->index = i;
				placed = true;
			}
		}
		w->vms++;
		pthread_mutex_unlock(&w->lock);
		f->vms++;
		if (!placed) {		/* load mode: another thread filled the table */
			vm->index = -1;
			vm_put(vm);
		}
		add(f, " vm=%d", vm->index);
	}
	end(f);
}

static void act_close_vm(struct fz *f, struct vm *vm)
{
	struct world *w = f->w;
	bool mine = false;

	/* begin() first: past it, the step runs to its end (the limit cuts at begin()) */
	begin(f, "CLOSE_VM vm=%d", vm->index);
	pthread_mutex_lock(&w->lock);
	if (vm->index >= 0 && w->vm[vm->index] == vm) {
		w->vm[vm->index] = NULL;
		mine = true;
	}
	pthread_mutex_unlock(&w->lock);
	if (!mine) {		/* load mode: another thread closed it */
		result(f, -EBADF, false);
		end(f);
		return;
	}
	pthread_mutex_lock(&vm->lock);
	/* vCPU fds and mappings go with the last reference (vm_free) */
	fd_drop(f, &vm->fd);
	for (int i = 0; i < MAX_VCPUS; i++)
		if (vm->vcpu[i].exists)
			fd_drop(f, &vm->vcpu[i].fd);
	fd_drop(f, &vm->vgic_fd);
	fd_drop(f, &vm->its_fd);
	pthread_mutex_unlock(&vm->lock);
	result(f, 0, false);
	end(f);
	vm_put(vm);	/* the table's reference */
}

static const uint32_t caps[] = {
	KVM_CAP_ARM_PSCI, KVM_CAP_ARM_PSCI_0_2, KVM_CAP_ARM_SET_DEVICE_ADDR, KVM_CAP_ARM_EL1_32BIT,
	KVM_CAP_ARM_PMU_V3, KVM_CAP_ARM_USER_IRQ, KVM_CAP_ARM_INJECT_SERROR_ESR,
	KVM_CAP_ARM_VM_IPA_SIZE, KVM_CAP_ARM_SVE, KVM_CAP_ARM_PTRAUTH_ADDRESS,
	KVM_CAP_ARM_PTRAUTH_GENERIC, KVM_CAP_ARM_IRQ_LINE_LAYOUT_2, KVM_CAP_ARM_NISV_TO_USER,
	KVM_CAP_ARM_INJECT_EXT_DABT, KVM_CAP_ARM_MTE, KVM_CAP_ARM_SYSTEM_SUSPEND,
	KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE, KVM_CAP_ARM_SUPPORTED_BLOCK_SIZES,
	KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES, KVM_CAP_NR_VCPUS, KVM_CAP_MAX_VCPUS,
	KVM_CAP_MAX_VCPU_ID, KVM_CAP_NR_MEMSLOTS, KVM_CAP_ONE_REG, KVM_CAP_DEVICE_CTRL,
	KVM_CAP_IRQCHIP, KVM_CAP_GUEST_DEBUG_HW_BPS, KVM_CAP_GUEST_DEBUG_HW_WPS,
	KVM_CAP_SET_GUEST_DEBUG, KVM_CAP_VCPU_EVENTS, KVM_CAP_MP_STATE, KVM_CAP_COUNTER_OFFSET,
	KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_READONLY_MEM, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
	KVM_CAP_ARM_SYSTEM_SUSPEND, KVM_CAP_BINARY_STATS_FD, KVM_CAP_USER_MEMORY2,
};

static void act_check_ext(struct fz *f, struct vm *vm)
{
	uint64_t cap = chance(f, 80) ? PICK(f, caps) : below(f, 300);
	int fd = vm && chance(f, 60) ? vm->fd : kvm_fd;
	long r;

	begin(f, "CHECK_EXTENSION on=%s cap=%" PRIu64, fd == kvm_fd ? "kvm" : "vm", cap);
	r = xioctl(fd, KVM_CHECK_EXTENSION, (void *)cap);
	result(f, r, false);
	end(f);
}

static long preferred_target(struct fz *f, struct vm *vm)
{
	struct kvm_vcpu_init init;
	long r;

	memset(&init, 0xa5, sizeof(init));
	begin(f, "ARM_PREFERRED_TARGET vm=%d", vm->index);
	r = xioctl(vm->fd, KVM_ARM_PREFERRED_TARGET, &init);
	result(f, r, false);
	if (!r) {
		add(f, " target=%u features=0x%x", init.target, init.features[0]);
		vm->target = init.target;
		vm->target_known = true;
	}
	end(f);
	return r;
}

static void act_create_vcpu(struct fz *f, struct vm *vm)
{
	static const uint32_t wild[] = { 4, 7, 255, 511, 512, 1024, 4096, 0x7fffffff, ~0U };
	uint32_t id = chance(f, 85) ? below(f, MAX_VCPUS) : PICK(f, wild);
	struct kvm_run *run;
	long r;

	begin(f, "CREATE_VCPU vm=%d id=%u", vm->index, id);
	r = xioctl(vm->fd, KVM_CREATE_VCPU, (void *)(uintptr_t)id);
	result(f, r, true);
	end(f);
	if (r < 0)
		return;
	if (id >= MAX_VCPUS) {		/* not tracked: it stays in the VM, its fd closed */
		close(r);
		return;
	}
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, r, 0);
	TEST_ASSERT(run != MAP_FAILED, "mmap of a vCPU's kvm_run: %s", strerror(errno));
	pthread_mutex_lock(&vm->lock);
	if (!vm->vcpu[id].exists && vm->fd >= 0) {
		struct vcpu *c = &vm->vcpu[id];

		memset(c, 0, sizeof(*c));
		c->id = id;
		c->fd = r;
		c->run = run;
		__atomic_store_n(&c->exists, true, __ATOMIC_RELEASE);
		run = NULL;
	}
	pthread_mutex_unlock(&vm->lock);
	if (run) {			/* load mode: raced with a close of the VM */
		munmap(run, run_size);
		close(r);
	}
}

static void act_close_vcpu(struct fz *f, struct vm *vm)
{
	int i = vcpu_pick(f, vm, true);
	struct vcpu *c;

	if (i < 0)
		return;
	c = &vm->vcpu[i];
	begin(f, "CLOSE_VCPU vm=%d vcpu=%d", vm->index, i);
	pthread_mutex_lock(&vm->lock);
	c->closed = true;
	if (!f->load) {
		munmap(c->run, run_size);
		c->run = NULL;
	}
	fd_drop(f, &c->fd);
	pthread_mutex_unlock(&vm->lock);
	result(f, 0, false);
	end(f);
}

/*
 * KVM_ARM_VCPU_INIT with random features: PSCI 0.2 mostly, SVE, the PMU, 32-bit
 * EL1, pointer authentication (not built into this kernel: refused), EL2 (nested
 * virtualisation: not enabled on this host, refused; such a VM would stay on C
 * anyway), POWER_OFF, and unknown bits and words.
 */
static long vcpu_init(struct fz *f, struct vm *vm, int i, bool sane)
{
	struct vcpu *c = &vm->vcpu[i];
	struct kvm_vcpu_init init = {};
	const char *tname;
	long r;

	if (!vm->target_known && preferred_target(f, vm))
		vm->target = KVM_ARM_TARGET_GENERIC_V8;
	if (sane || chance(f, 85)) {
		init.target = vm->target;
		tname = "preferred";
	} else if (chance(f, 60)) {
		init.target = KVM_ARM_TARGET_GENERIC_V8;
		tname = "generic";
	} else {
		init.target = chance(f, 50) ? below(f, 8) : rnd(f);
		tname = "random";
	}
	/* a VM's vCPUs must all have the same features: sane inits reuse the first's */
	if (sane && vm->feat_known && chance(f, 90)) {
		init.features[0] = vm->feat;
	} else {
		if (chance(f, 75))
			init.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2;
		if (chance(f, 25))
			init.features[0] |= 1 << KVM_ARM_VCPU_SVE;
		if (chance(f, 20))
			init.features[0] |= 1 << KVM_ARM_VCPU_PMU_V3;
		if (chance(f, sane ? 0 : 8))
			init.features[0] |= 1 << KVM_ARM_VCPU_EL1_32BIT;
		if (chance(f, sane ? 0 : 5))
			init.features[0] |= 1 << KVM_ARM_VCPU_POWER_OFF;
	}
	if (!sane) {
		if (chance(f, 6))
			init.features[0] |= 1 << KVM_ARM_VCPU_PTRAUTH_ADDRESS;
		if (chance(f, 6))
			init.features[0] |= 1 << KVM_ARM_VCPU_PTRAUTH_GENERIC;
		if (chance(f, 5))
			init.features[0] |= 1 << KVM_ARM_VCPU_HAS_EL2;
		if (chance(f, 4))
			init.features[0] |= 1U << (8 + below(f, 24));
		if (chance(f, 3))
			init.features[1 + below(f, 6)] = 1U << below(f, 32);
	}
	begin(f, "VCPU_INIT vm=%d vcpu=%d target=%s:%u feat=0x%x", vm->index, i, tname,
	      init.target, init.features[0]);
	for (int k = 1; k < 7; k++)
		if (init.features[k])
			add(f, " f%d=0x%x", k, init.features[k]);
	r = xioctl(c->fd, KVM_ARM_VCPU_INIT, &init);
	result(f, r, false);
	end(f);
	if (!r) {
		/* a reset: KVM sets every register, so what the guest did is gone */
		c->inited = true;
		c->feat = init.features[0];
		c->taint = false;
		if (!vm->feat_known) {
			vm->feat = c->feat;
			vm->feat_known = true;
		}
	}
	return r;
}

static int vcpu_get_open(struct fz *f, struct vm *vm)
{
	return vcpu_pick(f, vm, true);
}

static void act_vcpu_init(struct fz *f, struct vm *vm)
{
	int i = vcpu_get_open(f, vm);

	if (i >= 0)
		vcpu_init(f, vm, i, false);
}

static long one_reg(struct fz *f, struct vm *vm, int i, bool set, uint64_t id, uint8_t *val,
		    const char *why)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uintptr_t)val };
	struct vcpu *c = &vm->vcpu[i];
	size_t size = reg_size(id);
	long r;

	begin(f, "%s_ONE_REG vm=%d vcpu=%d reg=0x%" PRIx64, set ? "SET" : "GET", vm->index, i, id);
	if (why)
		add(f, " (%s)", why);
	if (set && size <= 4096)
		add_value(f, "val", val, size);
	r = xioctl(c->fd, set ? KVM_SET_ONE_REG : KVM_GET_ONE_REG, &reg);
	result(f, r, false);
	if (!set && !r && size <= 4096) {
		const char *ex = value_excluded(id);

		if (ex)
			add(f, " val=~%s", ex);
		else if (c->taint)
			add(f, " val=~tainted");
		else
			add_value(f, "val", val, size);
	}
	end(f);
	return r;
}

static long set_reg64(struct fz *f, struct vm *vm, int i, uint64_t id, uint64_t v, const char *why)
{
	uint64_t buf = v;

	return one_reg(f, vm, i, true, id, (uint8_t *)&buf, why);
}

/* KVM_ARM_VCPU_FINALIZE, SVE's vector lengths set first (or not). */
static void act_finalize(struct fz *f, struct vm *vm, int i)
{
	struct vcpu *c = &vm->vcpu[i];
	int what = chance(f, 85) ? KVM_ARM_VCPU_SVE : (chance(f, 50) ? (int)below(f, 8) : (int)rnd(f));
	long r;

	if (chance(f, 50)) {
		uint64_t cur[KVM_ARM64_SVE_VLS_WORDS], vqs[KVM_ARM64_SVE_VLS_WORDS];

		r = one_reg(f, vm, i, false, KVM_REG_ARM64_SVE_VLS, (uint8_t *)cur, NULL);
		if (!r) {
			vls_value(f, vqs, cur);
			one_reg(f, vm, i, true, KVM_REG_ARM64_SVE_VLS, (uint8_t *)vqs, "vls");
		}
	}
	begin(f, "VCPU_FINALIZE vm=%d vcpu=%d what=%d", vm->index, i, what);
	r = xioctl(c->fd, KVM_ARM_VCPU_FINALIZE, &what);
	result(f, r, false);
	end(f);
	if (!r)
		c->finalized = true;
}

/* KVM_GET_REG_LIST: too small first (E2BIG and the count), then the list. */
static long reg_list(struct fz *f, struct vm *vm, int i)
{
	struct vcpu *c = &vm->vcpu[i];
	struct kvm_reg_list probe = { .n = chance(f, 70) ? 0 : below(f, 4) }, *list;
	uint64_t n;
	long r;

	begin(f, "GET_REG_LIST vm=%d vcpu=%d n=%" PRIu64, vm->index, i, (uint64_t)probe.n);
	r = xioctl(c->fd, KVM_GET_REG_LIST, &probe);
	result(f, r, false);
	add(f, " n=%" PRIu64, (uint64_t)probe.n);
	end(f);
	if (r != -E2BIG)
		return r;
	n = probe.n;
	list = calloc(1, sizeof(*list) + (n + 8) * sizeof(uint64_t));
	TEST_ASSERT(list, "calloc");
	list->n = chance(f, 80) ? n : n + 8;	/* more room than needed is fine */
	begin(f, "GET_REG_LIST vm=%d vcpu=%d n=%" PRIu64, vm->index, i, (uint64_t)list->n);
	r = xioctl(c->fd, KVM_GET_REG_LIST, list);
	result(f, r, false);
	add(f, " n=%" PRIu64 " ids=h:%016" PRIx64, (uint64_t)list->n,
	    fnv(FNV_INIT, list->reg, (r ? 0 : list->n) * sizeof(uint64_t)));
	end(f);
	pthread_mutex_lock(&vm->lock);
	if (!r && !c->regs && list->n <= n + 8) {
		c->nregs = list->n;
		c->regs = malloc(list->n * sizeof(uint64_t));
		TEST_ASSERT(c->regs, "malloc");
		memcpy(c->regs, list->reg, list->n * sizeof(uint64_t));
	}
	pthread_mutex_unlock(&vm->lock);
	free(list);
	return r;
}

static uint64_t code_gpa_guess(struct vm *vm)
{
	for (int s = 0; s < MAX_SLOTS; s++)
		if (vm->slot[s].used)
			return vm->slot[s].gpa + CODE_OFF;
	return SLOT_GPA(0) + CODE_OFF;
}

/*
 * ONE_REG over the register list, or a window of it: each register read, often
 * written with a random or boundary value, read back; now and then an id that is
 * not in the list (another size, a neighbour, a random one).
 */
static void act_sweep(struct fz *f, struct vm *vm, int i)
{
	struct vcpu *c = &vm->vcpu[i];
	uint64_t start, count, code = code_gpa_guess(vm);
	uint8_t *cur = f->buf, *val = f->buf + 4096;

	if (!c->regs && reg_list(f, vm, i))
		return;
	if (!__atomic_load_n(&c->regs, __ATOMIC_ACQUIRE))
		return;
	if (chance(f, 20)) {
		start = 0;
		count = c->nregs;
	} else {
		start = below(f, c->nregs);
		count = 8 + below(f, 40);
		if (start + count > c->nregs)
			count = c->nregs - start;
	}
	for (uint64_t k = start; k < start + count; k++) {
		uint64_t id = c->regs[k];
		size_t size = reg_size(id);
		bool known;
		long r;

		if (chance(f, 3)) {
			static const uint64_t sizes[] = {
				KVM_REG_SIZE_U8, KVM_REG_SIZE_U16, KVM_REG_SIZE_U32, KVM_REG_SIZE_U64,
				KVM_REG_SIZE_U128, KVM_REG_SIZE_U256, KVM_REG_SIZE_U2048,
			};
			uint64_t bad;

			switch (below(f, 3)) {
			case 0:
				bad = (id & ~KVM_REG_SIZE_MASK) | PICK(f, sizes);
				break;
			case 1:
				bad = id + 1 + below(f, 4);
				break;
			default:
				bad = rnd(f);
				break;
			}
			if (reg_size(bad) <= 256) {
				reg_value(f, bad, NULL, false, code, val);
				one_reg(f, vm, i, chance(f, 50), bad, val, "bad id");
			}
		}
		if (size > 2048)
			continue;
		memset(cur, 0, size);
		r = one_reg(f, vm, i, false, id, cur, NULL);
		known = !r && !c->taint && !value_excluded(id);
		if (!chance(f, 35))
			continue;
		reg_value(f, id, cur, known, code, val);
		r = one_reg(f, vm, i, true, id, val, NULL);
		if (!r || chance(f, 30))
			one_reg(f, vm, i, false, id, cur, NULL);
	}
}

/* ONE_REG aimed at what KVM must refuse, or accept only in a narrow form. */
static void act_reg_special(struct fz *f, struct vm *vm, int i)
{
	uint8_t *val = f->buf + 4096;
	uint64_t id, code = code_gpa_guess(vm);

	switch (below(f, 9)) {
	case 0:
	case 1:		/* every mode of PSTATE, IL, other bits */
		set_reg64(f, vm, i, REG_PSTATE, pstate_value(f), "pstate");
		break;
	case 2:		/* a wild PC */
		set_reg64(f, vm, i, REG_PC, pc_value(f, code), "pc");
		break;
	case 3:		/* SVE vector lengths, before or after finalization */
		memset(val, 0, 64);
		if (!one_reg(f, vm, i, false, KVM_REG_ARM64_SVE_VLS, f->buf, NULL))
			vls_value(f, (uint64_t *)val, (uint64_t *)f->buf);
		else
			vls_value(f, (uint64_t *)val, (uint64_t *)val);
		one_reg(f, vm, i, true, KVM_REG_ARM64_SVE_VLS, val, "vls");
		break;
	case 4: {	/* a Z/P/FFR slice that may not exist */
		static const uint64_t sve[] = {
			KVM_REG_ARM64_SVE_ZREG(0, 0), KVM_REG_ARM64_SVE_ZREG(31, 0),
			KVM_REG_ARM64_SVE_ZREG(5, 1), KVM_REG_ARM64_SVE_PREG(0, 0),
			KVM_REG_ARM64_SVE_PREG(15, 0), KVM_REG_ARM64_SVE_FFR(0),
			KVM_REG_ARM64_SVE_FFR(31),
		};

		id = PICK(f, sve);
		reg_value(f, id, NULL, false, code, val);
		one_reg(f, vm, i, chance(f, 50), id, val, "sve");
		break;
	}
	case 5: {	/* firmware pseudo-registers: PSCI version, feature bitmaps */
		static const uint64_t fw[] = {
			KVM_REG_ARM_PSCI_VERSION, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1,
			KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3,
			KVM_REG_ARM_STD_BMAP, KVM_REG_ARM_STD_HYP_BMAP, KVM_REG_ARM_VENDOR_HYP_BMAP,
		};
		static const uint64_t psci[] = { 0, 1, 2, 0x10000, 0x10001, 0x10002, 0x20000, ~0ULL };

		id = PICK(f, fw);
		set_reg64(f, vm, i, id, id == KVM_REG_ARM_PSCI_VERSION && chance(f, 70) ?
			  PICK(f, psci) : val64(f, 0, false), "fw");
		break;
	}
	case 6: {	/* core registers: misaligned, out of the structure, wrong size */
		uint64_t off = below(f, sizeof(struct kvm_regs) / 4 + 8);
		static const uint64_t sizes[] = {
			KVM_REG_SIZE_U8, KVM_REG_SIZE_U32, KVM_REG_SIZE_U64, KVM_REG_SIZE_U128,
		};

		id = KVM_REG_ARM64 | KVM_REG_ARM_CORE | PICK(f, sizes) | off;
		reg_value(f, id, NULL, false, code, val);
		one_reg(f, vm, i, chance(f, 50), id, val, "core");
		break;
	}
	case 7: {	/* timer registers, kept away from now */
		static const uint64_t t[] = {
			KVM_REG_ARM_TIMER_CTL, KVM_REG_ARM_TIMER_CVAL, KVM_REG_ARM_TIMER_CNT,
			KVM_REG_ARM_PTIMER_CTL, KVM_REG_ARM_PTIMER_CVAL, KVM_REG_ARM_PTIMER_CNT,
		};

		id = PICK(f, t);
		set_reg64(f, vm, i, id, is_timer_cval(id) ? timer_cval(f) : is_timer_cnt(id) ?
			  timer_cnt(f) : below(f, 8), "timer");
		break;
	}
	default:	/* a random system register encoding, or a demux register */
		if (chance(f, 70))
			id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG |
			     (rnd(f) & 0xffff);
		else
			id = KVM_REG_ARM64 | KVM_REG_SIZE_U32 | KVM_REG_ARM_DEMUX |
			     KVM_REG_ARM_DEMUX_ID_CCSIDR | below(f, 32);
		reg_value(f, id, NULL, false, code, val);
		one_reg(f, vm, i, chance(f, 50), id, val, "sysreg");
		break;
	}
}

/* ------------------------------------------------------------------------- */
/* Memory */

static uint8_t *backing_new(struct vm *vm)
{
	uint8_t *p;

	pthread_mutex_lock(&vm->lock);
	if (vm->nbacking >= MAX_BACKINGS) {
		/* reuse one: in load mode a thread may still write code to it: harmless */
		p = vm->backing[vm->nbacking - 1];
		pthread_mutex_unlock(&vm->lock);
		return p;
	}
	p = mmap(NULL, MAX_SLOT_PAGES * PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	TEST_ASSERT(p != MAP_FAILED, "mmap: %s", strerror(errno));
	vm->backing[vm->nbacking++] = p;
	pthread_mutex_unlock(&vm->lock);
	return p;
}

static long set_region(struct fz *f, struct vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		       uint64_t size, uint64_t uaddr, const char *uclass)
{
	struct kvm_userspace_memory_region m = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = uaddr,
	};
	long r;

	begin(f, "SET_USER_MEMORY_REGION vm=%d slot=0x%x flags=0x%x gpa=0x%" PRIx64 " size=0x%"
	      PRIx64 " uaddr=%s", vm->index, slot, flags, gpa, size, uclass);
	r = xioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &m);
	result(f, r, false);
	end(f);
	return r;
}

/* A valid new memslot @s (at SLOT_GPA(s)), of @pages pages; 0 or -errno. */
static long slot_create(struct fz *f, struct vm *vm, int s, uint64_t pages, uint32_t flags)
{
	uint8_t *host = backing_new(vm);
	long r = set_region(f, vm, s, flags, SLOT_GPA(s), pages * PAGE, (uintptr_t)host, "ok");

	if (!r) {
		pthread_mutex_lock(&vm->lock);
		vm->slot[s] = (struct slot){ .used = true, .flags = flags, .gpa = SLOT_GPA(s),
					     .size = pages * PAGE, .host = host,
					     .prot = PROT_READ | PROT_WRITE };
		pthread_mutex_unlock(&vm->lock);
	}
	return r;
}

static void act_memslot(struct fz *f, struct vm *vm)
{
	int s = below(f, MAX_SLOTS);
	struct slot cur = vm->slot[s];
	uint32_t flags = 0;

	if (chance(f, 25))
		flags |= KVM_MEM_LOG_DIRTY_PAGES;
	if (chance(f, 15))
		flags |= KVM_MEM_READONLY;
	switch (below(f, 12)) {
	case 0:
	case 1:
	case 2:
	case 3:		/* create (EEXIST-like errors if it is there) */
		slot_create(f, vm, s, 1 + below(f, MAX_SLOT_PAGES), flags);
		break;
	case 4:		/* delete */
		if (!set_region(f, vm, s, cur.flags, cur.gpa, 0, (uintptr_t)cur.host, "ok")) {
			pthread_mutex_lock(&vm->lock);
			vm->slot[s].used = false;
			pthread_mutex_unlock(&vm->lock);
		}
		break;
	case 5:		/* move (to the next free stride, or onto another slot) */
		if (cur.used) {
			uint64_t gpa = SLOT_GPA(below(f, MAX_SLOTS)) + PAGE * MAX_SLOT_PAGES * below(f, 2);

			if (!set_region(f, vm, s, cur.flags, gpa, cur.size, (uintptr_t)cur.host, "ok")) {
				pthread_mutex_lock(&vm->lock);
				vm->slot[s].gpa = gpa;
				pthread_mutex_unlock(&vm->lock);
			}
		}
		break;
	case 6:		/* flags changed (dirty logging on/off; READONLY may not change) */
		if (cur.used && !set_region(f, vm, s, flags, cur.gpa, cur.size, (uintptr_t)cur.host,
					    "ok")) {
			pthread_mutex_lock(&vm->lock);
			vm->slot[s].flags = flags;
			pthread_mutex_unlock(&vm->lock);
		}
		break;
	case 7:		/* resized */
		if (cur.used)
			set_region(f, vm, s, cur.flags, cur.gpa, PAGE * (1 + below(f, MAX_SLOT_PAGES)),
				   (uintptr_t)cur.host, "ok");
		break;
	default: {	/* invalid forms */
		uint8_t *host = backing_new(vm);
		uint64_t gpa = SLOT_GPA(s), size = PAGE * (1 + below(f, 4)), uaddr = (uintptr_t)host;
		uint32_t slot = s;
		const char *uclass = "ok";

		switch (below(f, 11)) {
		case 0:
			gpa += PAGE / 2;
			break;
		case 1:
			size += 8;
			break;
		case 2:
			uaddr += 8;
			uclass = "misaligned";
			break;
		case 3:
			slot |= 1U << 16;	/* address space 1: none on arm64 */
			break;
		case 4:
			slot = 0x7fff;
			break;
		case 5:
			flags |= chance(f, 50) ? KVM_MEM_GUEST_MEMFD : 1U << (3 + below(f, 29));
			break;
		case 6:
			gpa = 1ULL << (vm->ipa + below(f, 3));	/* beyond the IPA space */
			break;
		case 7:
			uaddr = 0;
			uclass = "null";
			break;
		case 8:
			uaddr = 0xffff800000000000ULL;
			uclass = "kernel";
			break;
		case 9:
			size = 1ULL << 40;	/* far more than the mapping */
			break;
		default:
			gpa = SLOT_GPA((s + 1) % MAX_SLOTS) + PAGE;	/* overlaps another slot */
			break;
		}
		set_region(f, vm, slot, flags, gpa, size, uaddr, uclass);
		break;
	}
	}
}

static void act_dirty_log(struct fz *f, struct vm *vm)
{
	uint64_t bitmap[MAX_SLOT_PAGES / 64 + 1] = {};
	int s = below(f, MAX_SLOTS + 1);
	struct kvm_dirty_log log = { .slot = s, .dirty_bitmap = bitmap };
	long r;

	if (s == MAX_SLOTS)
		log.slot = chance(f, 50) ? 0x7fff : 1U << 16;
	if (chance(f, 5))
		log.dirty_bitmap = NULL;
	begin(f, "GET_DIRTY_LOG vm=%d slot=0x%x%s", vm->index, log.slot,
	      log.dirty_bitmap ? "" : " bitmap=null");
	r = xioctl(vm->fd, KVM_GET_DIRTY_LOG, &log);
	result(f, r, false);
	if (!r) {
		if (vm->taint)
			add(f, " dirty=~tainted");
		else
			add(f, " dirty=0x%" PRIx64, bitmap[0]);
	}
	end(f);
}

/* Guest memory's backing made unreachable, read-only, or back (deterministic mode). */
static void act_mprotect(struct fz *f, struct vm *vm)
{
	int s = below(f, MAX_SLOTS), prot;
	struct slot *sl = &vm->slot[s];
	static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE };

	if (f->load || !sl->used)
		return;
	prot = PICK(f, prots);
	begin(f, "MPROTECT vm=%d slot=%d prot=%d", vm->index, s, prot);
	result(f, mprotect(sl->host, MAX_SLOT_PAGES * PAGE, prot) ? -errno : 0, false);
	end(f);
	sl->prot = prot;
}

/* ------------------------------------------------------------------------- */
/* Devices and attributes */

static long dev_attr(struct fz *f, int fd, const char *on, int op, uint32_t group, uint64_t attr,
		     void *val, size_t size, bool show)
{
	static const unsigned long ops[] = {
		KVM_SET_DEVICE_ATTR, KVM_GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR
	};
	static const char *const names[] = { "SET", "GET", "HAS" };
	struct kvm_device_attr a = {
		.group = group, .attr = attr, .addr = (uintptr_t)val,
	};
	long r;

	begin(f, "%s_DEVICE_ATTR on=%s group=%u attr=0x%" PRIx64, names[op], on, group, attr);
	if (op == 0 && val && size)
		add_value(f, "val", val, size);
	r = xioctl(fd, ops[op], &a);
	result(f, r, false);
	if (op == 1 && !r && val && size) {
		if (show)
			add_value(f, "val", val, size);
		else
			add(f, " val=~irq");
	}
	end(f);
	return r;
}

static void act_create_device(struct fz *f, struct vm *vm)
{
	static const uint32_t types[] = {
		KVM_DEV_TYPE_ARM_VGIC_V3, KVM_DEV_TYPE_ARM_VGIC_V3, KVM_DEV_TYPE_ARM_VGIC_V3,
		KVM_DEV_TYPE_ARM_VGIC_V2, KVM_DEV_TYPE_ARM_VGIC_ITS, KVM_DEV_TYPE_ARM_VGIC_ITS,
		KVM_DEV_TYPE_VFIO, 0, 1000, ~0U,
	};
	struct kvm_create_device d = { .type = PICK(f, types) };
	long r;

	if (avoid_known && vm->run_failed && !vm->run_ok &&
	    (d.type == KVM_DEV_TYPE_ARM_VGIC_V3 || d.type == KVM_DEV_TYPE_ARM_VGIC_V2)) {
		__atomic_add_fetch(&avoided, 1, __ATOMIC_RELAXED);
		return;		/* -k, bug 1 */
	}

	if (chance(f, 15))
		d.flags = KVM_CREATE_DEVICE_TEST;
	else if (chance(f, 3))
		d.flags = 1U << (1 + below(f, 31));
	begin(f, "CREATE_DEVICE vm=%d type=%u flags=0x%x", vm->index, d.type, d.flags);
	r = xioctl(vm->fd, KVM_CREATE_DEVICE, &d);
	result(f, r, false);
	end(f);
	/* KVM ignores unknown flags: any fd that came back is kept or closed */
	if (r || d.flags & KVM_CREATE_DEVICE_TEST)
		return;
	pthread_mutex_lock(&vm->lock);
	if (d.type == KVM_DEV_TYPE_ARM_VGIC_ITS && vm->its_fd < 0) {
		vm->its_fd = d.fd;
		d.fd = -1;
	} else if (d.type != KVM_DEV_TYPE_ARM_VGIC_ITS && vm->vgic_fd < 0) {
		vm->vgic_fd = d.fd;
		d.fd = -1;
	}
	pthread_mutex_unlock(&vm->lock);
	if ((int)d.fd >= 0)
		close(d.fd);
}

static uint64_t gic_addr(struct fz *f, struct vm *vm, uint64_t good)
{
	switch (below(f, 8)) {
	case 0:
		return good + 0x1000;		/* not 64K aligned */
	case 1:
		return 1ULL << vm->ipa;		/* beyond the IPA space */
	case 2:
		return SLOT_GPA(below(f, MAX_SLOTS));	/* over a memslot */
	case 3:
		return rnd(f) & ~0xffffULL;
	default:
		return good;
	}
}

/* Distributor/redistributor register offsets whose value is no pending state */
static const struct {
	uint32_t off;
	bool show;
} gicd_regs[] = {
	{ 0x0, true }, { 0x4, true }, { 0x8, true }, { 0x80, true }, { 0x100, true },
	{ 0x180, true }, { 0x200, false }, { 0x280, false }, { 0x300, false }, { 0x380, false },
	{ 0x400, true }, { 0x800, true }, { 0xc00, true }, { 0xd00, true }, { 0x6100, true },
	{ 0xffe8, true }, { 0x10000, false }, { 0x3, true },
}, gicr_regs[] = {
	{ 0x0, true }, { 0x4, true }, { 0x8, true }, { 0x14, true }, { 0x70, true },
	{ 0x78, true }, { 0x10080, true }, { 0x10100, true }, { 0x10180, true },
	{ 0x10200, false }, { 0x10280, false }, { 0x10300, false }, { 0x10380, false },
	{ 0x10400, true }, { 0x10c04, true }, { 0xffe8, true }, { 0x20000, false }, { 0x2, true },
};

/* ICC_* encodings for KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS (op0, op1, CRn, CRm, op2) */
#define ICC(op1, crn, crm, op2) ((3 << 14) | ((op1) << 11) | ((crn) << 7) | ((crm) << 3) | (op2))
static const uint64_t icc_regs[] = {
	ICC(0, 4, 6, 0) /* PMR */, ICC(0, 12, 8, 3) /* BPR0 */, ICC(0, 12, 12, 3) /* BPR1 */,
	ICC(0, 12, 12, 4) /* CTLR */, ICC(0, 12, 12, 5) /* SRE */, ICC(0, 12, 12, 6) /* IGRPEN0 */,
	ICC(0, 12, 12, 7) /* IGRPEN1 */, ICC(0, 12, 8, 4) /* AP0R0 */, ICC(0, 12, 9, 0) /* AP1R0 */,
	ICC(0, 12, 11, 3) /* RPR */, 0x1234,
};

static void act_vgic_attr(struct fz *f, struct vm *vm)
{
	int fd = vm->vgic_fd, op = below(f, 10) < 6 ? 0 : (chance(f, 70) ? 1 : 2);
	uint64_t v64 = 0, mpidr;
	uint32_t v32 = 0;

	if (fd < 0)
		return;
	/* MPIDR of vCPU n as the GIC knows it: Aff0 = n (KVM's reset value) */
	mpidr = chance(f, 85) ? below(f, MAX_VCPUS) : below(f, 256) << 8;
	switch (below(f, 10)) {
	case 0:
	case 1: {	/* addresses */
		static const uint64_t types[] = {
			KVM_VGIC_V3_ADDR_TYPE_DIST, KVM_VGIC_V3_ADDR_TYPE_REDIST,
			KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, KVM_VGIC_V2_ADDR_TYPE_DIST,
			KVM_VGIC_V2_ADDR_TYPE_CPU, 7,
		};
		uint64_t type = PICK(f, types);

		if (type == KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION) {
			uint64_t count = chance(f, 80) ? 1 + below(f, MAX_VCPUS) : below(f, 1 << 12);

			v64 = (count << RDIST_COUNT_SHIFT) | gic_addr(f, vm, GIC_REDIST) |
			      below(f, 3);	/* index */
		} else {
			v64 = gic_addr(f, vm, type == KVM_VGIC_V3_ADDR_TYPE_REDIST ? GIC_REDIST : GIC_DIST);
		}
		dev_attr(f, fd, "vgic", op, KVM_DEV_ARM_VGIC_GRP_ADDR, type, &v64, 8, true);
		break;
	}
	case 2: {	/* number of IRQs */
		static const uint32_t n[] = { 64, 96, 128, 256, 1024, 0, 32, 63, 100, 1056, ~0U };

		v32 = PICK(f, n);
		dev_attr(f, fd, "vgic", op, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &v32, 4, true);
		break;
	}
	case 3: {	/* control: init, save pending tables, unknown */
		static const uint64_t ctl[] = {
			KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_VGIC_CTRL_INIT,
			KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES, 1, 9,
		};

		dev_attr(f, fd, "vgic", op, KVM_DEV_ARM_VGIC_GRP_CTRL, PICK(f, ctl), NULL, 0, true);
		break;
	}
	case 4: {	/* distributor registers */
		int k = below(f, ARRAY_SIZE(gicd_regs));

		v32 = op == 0 ? val64(f, 0, false) : 0;
		dev_attr(f, fd, "vgic", op, KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
			 (mpidr << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | gicd_regs[k].off, &v32, 4,
			 gicd_regs[k].show && !vm->taint);
		break;
	}
	case 5: {	/* redistributor registers */
		int k = below(f, ARRAY_SIZE(gicr_regs));

		v32 = op == 0 ? val64(f, 0, false) : 0;
		dev_attr(f, fd, "vgic", op, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
			 (mpidr << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | gicr_regs[k].off, &v32, 4,
			 gicr_regs[k].show && !vm->taint);
		break;
	}
	case 6:		/* CPU interface registers */
		v64 = op == 0 ? val64(f, 0, false) : 0;
		dev_attr(f, fd, "vgic", op, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
			 (mpidr << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) | PICK(f, icc_regs), &v64, 8,
			 !vm->taint);
		break;
	case 7:		/* line levels */
		v32 = op == 0 ? val64(f, 0, false) : 0;
		dev_attr(f, fd, "vgic", op, KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
			 (mpidr << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT) |
			 ((uint64_t)below(f, 32) << KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT), &v32, 4,
			 false);
		break;
	default:	/* any group and attribute */
		v64 = rnd(f);
		dev_attr(f, fd, "vgic", op, below(f, 12), rnd(f) >> below(f, 64), &v64, 8, false);
		break;
	}
}

static void act_its_attr(struct fz *f, struct vm *vm)
{
	int fd = vm->its_fd, op = below(f, 10) < 6 ? 0 : (chance(f, 70) ? 1 : 2);
	uint64_t v64;

	if (fd < 0)
		return;
	switch (below(f, 4)) {
	case 0:
		v64 = gic_addr(f, vm, GIC_ITS);
		dev_attr(f, fd, "its", op, KVM_DEV_ARM_VGIC_GRP_ADDR,
			 chance(f, 85) ? KVM_VGIC_ITS_ADDR_TYPE : below(f, 8), &v64, 8, true);
		break;
	case 1: {
		static const uint64_t ctl[] = {
			KVM_DEV_ARM_VGIC_CTRL_INIT, KVM_DEV_ARM_ITS_SAVE_TABLES,
			KVM_DEV_ARM_ITS_RESTORE_TABLES, KVM_DEV_ARM_ITS_CTRL_RESET, 7,
		};

		dev_attr(f, fd, "its", op, KVM_DEV_ARM_VGIC_GRP_CTRL, PICK(f, ctl), NULL, 0, true);
		break;
	}
	case 2: {	/* GITS_CTLR, IIDR, TYPER, CBASER, CWRITER, CREADR, BASER0/1, bad */
		static const uint64_t off[] = { 0x0, 0x4, 0x8, 0x80, 0x88, 0x90, 0x100, 0x108, 0x3 };

		v64 = op == 0 ? val64(f, 0, false) : 0;
		dev_attr(f, fd, "its", op, KVM_DEV_ARM_VGIC_GRP_ITS_REGS, PICK(f, off), &v64, 8,
			 !vm->taint);
		break;
	}
	default:
		v64 = rnd(f);
		dev_attr(f, fd, "its", op, below(f, 10), rnd(f) >> below(f, 64), &v64, 8, false);
		break;
	}
}

/* vCPU attributes: timer PPIs, the PMU (IRQ, init, event filter, which PMU), PV time. */
static void act_vcpu_attr(struct fz *f, struct vm *vm, int i)
{
	struct vcpu *c = &vm->vcpu[i];
	int op = below(f, 10) < 6 ? 0 : (chance(f, 60) ? 1 : 2);
	char on[16];
	int v;

	snprintf(on, sizeof(on), "vcpu%d", i);
	switch (below(f, 6)) {
	case 0: {
		static const int ppi[] = { 16, 20, 26, 27, 30, 31, 15, 32, 1020, -1 };

		v = PICK(f, ppi);
		dev_attr(f, c->fd, on, op, KVM_ARM_VCPU_TIMER_CTRL, below(f, 5), &v, 4, true);
		break;
	}
	case 1: {
		static const int irq[] = { 23, 23, 16, 31, 32, 100, 1019, 1020, 0, -1 };

		v = PICK(f, irq);
		dev_attr(f, c->fd, on, op, KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_IRQ, &v, 4,
			 true);
		break;
	}
	case 2:
		dev_attr(f, c->fd, on, op, KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_INIT, NULL, 0,
			 true);
		break;
	case 3: {
		struct kvm_pmu_event_filter flt = {
			.base_event = chance(f, 70) ? below(f, 0x40) : rnd(f),
			.nevents = chance(f, 80) ? 1 + below(f, 32) : rnd(f),
			.action = chance(f, 90) ? below(f, 2) : rnd(f),
		};

		if (chance(f, 5))
			flt.pad[below(f, 3)] = 1;
		begin(f, "PMU_FILTER vm=%d vcpu=%d base=%u n=%u action=%u pad=%d", vm->index, i,
		      flt.base_event, flt.nevents, flt.action, flt.pad[0] | flt.pad[1] | flt.pad[2]);
		{
			struct kvm_device_attr a = {
				.group = KVM_ARM_VCPU_PMU_V3_CTRL, .attr = KVM_ARM_VCPU_PMU_V3_FILTER,
				.addr = (uintptr_t)&flt,
			};

			result(f, xioctl(c->fd, KVM_SET_DEVICE_ATTR, &a), false);
		}
		end(f);
		break;
	}
	case 4: {
		/* the host PMU's perf type is whatever the boot gave it: shown as "host" */
		bool host = pmu_type >= 0 && chance(f, 60);

		v = host ? pmu_type : (int)below(f, 16);
		begin(f, "PMU_SET_PMU vm=%d vcpu=%d pmu=%s", vm->index, i, host ? "host" : "other");
		if (!host)
			add(f, ":%d", v);
		{
			struct kvm_device_attr a = {
				.group = KVM_ARM_VCPU_PMU_V3_CTRL, .attr = KVM_ARM_VCPU_PMU_V3_SET_PMU,
				.addr = (uintptr_t)&v,
			};

			result(f, xioctl(c->fd, op == 2 ? KVM_HAS_DEVICE_ATTR : KVM_SET_DEVICE_ATTR, &a),
			       false);
		}
		end(f);
		break;
	}
	default: {
		uint64_t ipa = chance(f, 70) ? SLOT_GPA(below(f, MAX_SLOTS)) + 64 * below(f, 64) :
			       rnd(f);

		dev_attr(f, c->fd, on, op, chance(f, 85) ? KVM_ARM_VCPU_PVTIME_CTRL : below(f, 8),
			 KVM_ARM_VCPU_PVTIME_IPA, &ipa, 8, true);
		break;
	}
	}
}

/* The SMCCC filter (KVM_ARM_VM_SMCCC_CTRL): ranges, actions, overlaps, bad forms. */
static void act_smccc_filter(struct fz *f, struct vm *vm)
{
	static const uint32_t bases[] = {
		PSCI_0_2_FN_BASE, PSCI_0_2_FN64_BASE, ARM_SMCCC_VERSION_FUNC_ID,
		ARM_SMCCC_ARCH_WORKAROUND_1, ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID,
		ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID, ARM_SMCCC_TRNG_VERSION,
		0xc6000000, 0x86000000, 0, 0xffffffff, 0x80000000,
	};
	struct kvm_smccc_filter flt = {
		.base = PICK(f, bases) + (chance(f, 30) ? below(f, 0x20) : 0),
		.nr_functions = chance(f, 80) ? 1 + below(f, 0x20) : (chance(f, 50) ? 0 : rnd(f)),
		.action = chance(f, 90) ? below(f, 3) : 3 + below(f, 253),
	};
	int op = chance(f, 80) ? 0 : (chance(f, 50) ? 1 : 2);
	bool bad_ptr = chance(f, 3);

	if (chance(f, 4))
		flt.pad[below(f, sizeof(flt.pad))] = 1;
	if (op == 0) {
		struct kvm_device_attr a = {
			.group = KVM_ARM_VM_SMCCC_CTRL, .attr = KVM_ARM_VM_SMCCC_FILTER,
			.addr = bad_ptr ? 8 : (uintptr_t)&flt,
		};
		bool pad = false;

		for (size_t k = 0; k < sizeof(flt.pad); k++)
			pad |= flt.pad[k];
		begin(f, "SMCCC_FILTER vm=%d base=0x%x n=0x%x action=%u pad=%d%s", vm->index,
		      flt.base, flt.nr_functions, flt.action, pad, bad_ptr ? " addr=bad" : "");
		result(f, xioctl(vm->fd, KVM_SET_DEVICE_ATTR, &a), false);
		end(f);
	} else {
		dev_attr(f, vm->fd, "vm", op, chance(f, 80) ? KVM_ARM_VM_SMCCC_CTRL : below(f, 4),
			 chance(f, 80) ? KVM_ARM_VM_SMCCC_FILTER : below(f, 4), &flt, 0, false);
	}
}

static void act_set_device_addr(struct fz *f, struct vm *vm)
{
	static const uint64_t types[] = {
		KVM_VGIC_V2_ADDR_TYPE_DIST, KVM_VGIC_V2_ADDR_TYPE_CPU, KVM_VGIC_V3_ADDR_TYPE_DIST, 9,
	};
	struct kvm_arm_device_addr a = {
		.id = ((chance(f, 80) ? (uint64_t)KVM_ARM_DEVICE_VGIC_V2 : below(f, 4)) <<
		       KVM_ARM_DEVICE_ID_SHIFT) | PICK(f, types),
		.addr = gic_addr(f, vm, GIC_DIST),
	};

	if (chance(f, 3))
		a.id |= 1ULL << (32 + below(f, 32));
	begin(f, "ARM_SET_DEVICE_ADDR vm=%d id=0x%" PRIx64 " addr=0x%" PRIx64, vm->index,
	      (uint64_t)a.id, (uint64_t)a.addr);
	result(f, xioctl(vm->fd, KVM_ARM_SET_DEVICE_ADDR, &a), false);
	end(f);
}

static void act_irq_line(struct fz *f, struct vm *vm)
{
	static const uint32_t types[] = {
		KVM_ARM_IRQ_TYPE_CPU, KVM_ARM_IRQ_TYPE_CPU, KVM_ARM_IRQ_TYPE_SPI, KVM_ARM_IRQ_TYPE_PPI, 3, 15,
	};
	uint32_t type = PICK(f, types), num;
	struct kvm_irq_level l;

	switch (type) {
	case KVM_ARM_IRQ_TYPE_CPU:
		num = chance(f, 90) ? below(f, 2) : below(f, 8);	/* IRQ, FIQ */
		break;
	case KVM_ARM_IRQ_TYPE_PPI:
		num = chance(f, 90) ? 16 + below(f, 16) : below(f, 64);
		break;
	default:
		num = chance(f, 80) ? 32 + below(f, 96) : below(f, 0x10000);
		break;
	}
	l.irq = (type << KVM_ARM_IRQ_TYPE_SHIFT) |
		((chance(f, 90) ? below(f, MAX_VCPUS) : below(f, 256)) << KVM_ARM_IRQ_VCPU_SHIFT) | num;
	if (chance(f, 5))
		l.irq |= below(f, 16) << KVM_ARM_IRQ_VCPU2_SHIFT;
	l.level = chance(f, 90) ? below(f, 2) : rnd(f);
	begin(f, "IRQ_LINE vm=%d irq=0x%x level=%u", vm->index, l.irq, l.level);
	result(f, xioctl(vm->fd, KVM_IRQ_LINE, &l), false);
	end(f);
}

static uint64_t host_counter(void)
{
	uint64_t v;

	asm volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
	return v;
}

/*
 * KVM_ARM_SET_COUNTER_OFFSET: the offset keeps the VM's counter between 0 and the
 * host's (under 2^62, see timer_cval()); its value depends on the host's counter,
 * so it is printed as a class.
 */
static void act_counter_offset(struct fz *f, struct vm *vm)
{
	struct kvm_arm_counter_offset o = {};
	const char *what;

	switch (below(f, 4)) {
	case 0:
		what = "zero";
		break;
	case 1:
		what = "past";
		o.counter_offset = below(f, host_counter() / 2 + 1);
		break;
	case 2:
		what = "reserved";
		o.reserved = 1ULL << below(f, 64);
		break;
	default:
		what = "half";
		o.counter_offset = host_counter() / 2;
		break;
	}
	begin(f, "ARM_SET_COUNTER_OFFSET vm=%d offset=%s", vm->index, what);
	result(f, xioctl(vm->fd, KVM_ARM_SET_COUNTER_OFFSET, &o), false);
	end(f);
}

static void act_vcpu_events(struct fz *f, struct vm *vm, int i)
{
	struct vcpu *c = &vm->vcpu[i];
	struct kvm_vcpu_events ev;
	int bad;
	long r;

	memset(&ev, 0, sizeof(ev));
	if (chance(f, 50)) {
		begin(f, "GET_VCPU_EVENTS vm=%d vcpu=%d", vm->index, i);
		r = xioctl(c->fd, KVM_GET_VCPU_EVENTS, &ev);
		result(f, r, false);
		if (!r) {
			if (c->taint)
				add(f, " events=~tainted");
			else
				add(f, " serror=%u has_esr=%u esr=0x%" PRIx64 " dabt=%u",
				    ev.exception.serror_pending, ev.exception.serror_has_esr,
				    (uint64_t)ev.exception.serror_esr, ev.exception.ext_dabt_pending);
		}
		end(f);
		return;
	}
	ev.exception.serror_pending = chance(f, 50);
	ev.exception.serror_has_esr = chance(f, 40);
	ev.exception.serror_esr = chance(f, 80) ? below(f, 1 << 24) : rnd(f);
	ev.exception.ext_dabt_pending = chance(f, 30);
	bad = chance(f, 4) ? 1 : chance(f, 4) ? 2 : 0;
	if (bad == 1)
		ev.exception.pad[below(f, 5)] = 1;
	else if (bad == 2)
		ev.reserved[below(f, 12)] = 1;
	begin(f, "SET_VCPU_EVENTS vm=%d vcpu=%d serror=%u has_esr=%u esr=0x%" PRIx64
	      " dabt=%u%s", vm->index, i, ev.exception.serror_pending,
	      ev.exception.serror_has_esr, (uint64_t)ev.exception.serror_esr,
	      ev.exception.ext_dabt_pending, bad == 1 ? " pad=1" : bad == 2 ? " reserved=1" : "");
	result(f, xioctl(c->fd, KVM_SET_VCPU_EVENTS, &ev), false);
	end(f);
}

static void act_enable_cap(struct fz *f, struct vm *vm)
{
	static const uint32_t vcaps[] = {
		KVM_CAP_ARM_NISV_TO_USER, KVM_CAP_ARM_NISV_TO_USER, KVM_CAP_ARM_SYSTEM_SUSPEND,
		KVM_CAP_ARM_SYSTEM_SUSPEND, KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE, KVM_CAP_ARM_MTE,
		KVM_CAP_HALT_POLL, KVM_CAP_ARM_USER_IRQ, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
	};
	static const uint64_t chunk[] = { 0, PAGE, 1ULL << 21, 1ULL << 30, 12345, 1ULL << 16 };
	struct kvm_enable_cap cap = { .cap = chance(f, 90) ? PICK(f, vcaps) : below(f, 300) };
	long r;

	if (cap.cap == KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE)
		cap.args[0] = PICK(f, chunk);
	else if (cap.cap == KVM_CAP_HALT_POLL)
		cap.args[0] = below(f, 200000);	/* ns: how long a halted vCPU polls */
	else if (cap.cap == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
		cap.args[0] = below(f, 4);
	else if (chance(f, 10))
		cap.args[0] = rnd(f);
	if (chance(f, 4))
		cap.flags = 1U << below(f, 32);
	begin(f, "ENABLE_CAP vm=%d cap=%u flags=0x%x arg0=0x%" PRIx64, vm->index, cap.cap,
	      cap.flags, (uint64_t)cap.args[0]);
	r = xioctl(vm->fd, KVM_ENABLE_CAP, &cap);
	result(f, r, false);
	end(f);
	if (!r && cap.cap == KVM_CAP_ARM_NISV_TO_USER)
		vm->nisv = true;
}

static void act_writable_masks(struct fz *f, struct vm *vm)
{
	uint64_t *masks = (uint64_t *)f->buf;
	struct reg_mask_range range = {
		.addr = (uintptr_t)masks,
		.range = chance(f, 85) ? KVM_ARM_FEATURE_ID_RANGE : 1 + below(f, 4),
	};
	size_t size = KVM_ARM_FEATURE_ID_RANGE_SIZE * sizeof(uint64_t);
	static const uint32_t no_reserved[13];
	long r;

	if (chance(f, 5))
		range.reserved[below(f, 13)] = 1;
	if (chance(f, 3))
		range.addr = 0;
	memset(masks, 0, size);
	begin(f, "ARM_GET_REG_WRITABLE_MASKS vm=%d range=%u reserved=%d addr=%s", vm->index,
	      range.range, !!memcmp(range.reserved, no_reserved, sizeof(range.reserved)),
	      range.addr ? "ok" : "null");
	r = xioctl(vm->fd, KVM_ARM_GET_REG_WRITABLE_MASKS, &range);
	result(f, r, false);
	if (!r)
		add(f, " masks=h:%016" PRIx64, fnv(FNV_INIT, masks, size));
	end(f);
}

static void act_mp_state(struct fz *f, struct vm *vm, int i)
{
	static const uint32_t states[] = {
		KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_RUNNABLE,
		KVM_MP_STATE_STOPPED, KVM_MP_STATE_SUSPENDED, KVM_MP_STATE_HALTED,
		KVM_MP_STATE_UNINITIALIZED, 11, 0x12345678,
	};
	struct vcpu *c = &vm->vcpu[i];
	struct kvm_mp_state mp = { .mp_state = 0xdead };
	long r;

	if (chance(f, 50)) {
		begin(f, "GET_MP_STATE vm=%d vcpu=%d", vm->index, i);
		r = xioctl(c->fd, KVM_GET_MP_STATE, &mp);
		result(f, r, false);
		if (!r) {
			if (c->taint)
				add(f, " state=~tainted");
			else
				add(f, " state=%u", mp.mp_state);
		}
	} else {
		mp.mp_state = PICK(f, states);
		begin(f, "SET_MP_STATE vm=%d vcpu=%d state=%u", vm->index, i, mp.mp_state);
		r = xioctl(c->fd, KVM_SET_MP_STATE, &mp);
		result(f, r, false);
	}
	end(f);
}

/* Breakpoint and watchpoint control values (DBGBCR/DBGWCR) that enable at EL1. */
#define BCR_EL1_ALL	((0xfULL << 5) | (1ULL << 1) | 1)	/* BAS, PMC=EL1, E */
#define WCR_EL1_ALL	((0xffULL << 5) | (3ULL << 3) | (1ULL << 1) | 1)	/* BAS, LSC, PAC, E */

static void act_guest_debug(struct fz *f, struct vm *vm, int i)
{
	struct vcpu *c = &vm->vcpu[i];
	struct kvm_guest_debug d;
	uint64_t code = code_gpa_guess(vm);

	memset(&d, 0, sizeof(d));
	switch (below(f, 6)) {
	case 0:
		break;	/* off */
	case 1:
	case 2:
	case 3:
		d.control = KVM_GUESTDBG_ENABLE;
		if (chance(f, 40))
			d.control |= KVM_GUESTDBG_SINGLESTEP;
		if (chance(f, 40))
			d.control |= KVM_GUESTDBG_USE_SW_BP;
		if (chance(f, 50))
			d.control |= KVM_GUESTDBG_USE_HW;
		break;
	case 4:
		d.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW;
		for (int k = 0; k < KVM_ARM_MAX_DBG_REGS; k++) {
			d.arch.dbg_bcr[k] = rnd(f);
			d.arch.dbg_bvr[k] = rnd(f);
			d.arch.dbg_wcr[k] = rnd(f);
			d.arch.dbg_wvr[k] = rnd(f);
		}
		break;
	default:
		d.control = rnd(f) >> below(f, 64);
		break;
	}
	if (d.control & KVM_GUESTDBG_USE_HW && chance(f, 70)) {
		for (unsigned int k = below(f, 3); k; k--) {
			int n = below(f, 2);

			d.arch.dbg_bcr[n] = BCR_EL1_ALL;
			d.arch.dbg_bvr[n] = code + 4 * below(f, 24);
		}
		for (unsigned int k = below(f, 3); k; k--) {
			int n = below(f, 2);

			d.arch.dbg_wcr[n] = WCR_EL1_ALL;
			d.arch.dbg_wvr[n] = chance(f, 50) ? MMIO_BASE + MMIO_OUT : code - CODE_OFF + PAGE;
		}
	}
	begin(f, "SET_GUEST_DEBUG vm=%d vcpu=%d control=0x%x arch=h:%016" PRIx64, vm->index, i,
	      d.control, fnv(FNV_INIT, &d.arch, sizeof(d.arch)));
	result(f, xioctl(c->fd, KVM_SET_GUEST_DEBUG, &d), false);
	end(f);
}

/* ------------------------------------------------------------------------- */
/* Guest code */

#define A64_NOP		0xd503201fU
#define A32_NOP		0xe320f000U

/*
 * Instructions whose result depends on time or on the host, never put in random
 * code: WFET/WFIT (a deadline on the counter); MRS/MSR of the generic timer and the
 * PMU event counters (CRn 14), the EL0 PMU registers (op1 3, CRn 9: cycle counter,
 * overflow flags), RNDR/RNDRRS, the activity monitors, ISR_EL1 and the GIC CPU
 * interface (op1 0, CRn 12, CRm != 0: pending interrupts).
 */
static bool a64_time_dependent(uint32_t w)
{
	uint32_t op0, op1, crn, crm;

	if ((w & 0xffc00000) != 0xd5000000)	/* not a system instruction */
		return false;
	if ((w & 0xffffff00) == 0xd5031000)	/* WFET, WFIT */
		return true;
	if (!(w & (1U << 20)))			/* op0 0/1: hints, barriers, PSTATE, SYS */
		return false;
	op0 = 2 + ((w >> 19) & 1);
	op1 = (w >> 16) & 7;
	crn = (w >> 12) & 15;
	crm = (w >> 8) & 15;
	return crn == 14 || (op1 == 3 && crn == 9) || (op1 == 3 && crn == 2 && crm == 4) ||
	       (op1 == 3 && crn == 13 && crm >= 2) || (op0 == 3 && op1 == 0 && crn == 12 && crm);
}

/* The same for A32: MRC/MCR and MRRC/MCRR of CP15 c14 (timers) and c9 (PMU). */
static bool a32_time_dependent(uint32_t w)
{
	if ((w & 0x0f000f10) == 0x0e000f10)	/* MRC/MCR p15 */
		return ((w >> 16) & 15) == 14 || ((w >> 16) & 15) == 9;
	if ((w & 0x0fe00f00) == 0x0c400f00)	/* MRRC/MCRR p15 */
		return (w & 15) == 14 || (w & 15) == 9;
	return false;
}

static uint32_t a64_sysreg(bool read, int op0, int op1, int crn, int crm, int op2, int rt)
{
	return 0xd5000000U | (read ? 1U << 21 : 0) | (1U << 20) | ((op0 - 2) << 19) | (op1 << 16) |
	       (crn << 12) | (crm << 8) | (op2 << 5) | rt;
}

static uint32_t random_a64(struct fz *f)
{
	static const uint8_t el1regs[][4] = {	/* op1, CRn, CRm, op2 (op0 3) */
		{ 0, 1, 0, 0 } /* SCTLR */, { 0, 1, 0, 2 } /* CPACR */, { 0, 2, 0, 0 } /* TTBR0 */,
		{ 0, 2, 0, 2 } /* TCR */, { 0, 5, 2, 0 } /* ESR */, { 0, 6, 0, 0 } /* FAR */,
		{ 0, 7, 4, 0 } /* PAR */, { 0, 10, 2, 0 } /* MAIR */, { 0, 12, 0, 0 } /* VBAR */,
		{ 0, 13, 0, 1 } /* CONTEXTIDR */, { 0, 13, 0, 4 } /* TPIDR_EL1 */,
		{ 3, 13, 0, 2 } /* TPIDR_EL0 */, { 0, 4, 0, 0 } /* SPSR */, { 0, 4, 0, 1 } /* ELR */,
		{ 0, 4, 1, 0 } /* SP_EL0 */, { 3, 4, 4, 0 } /* FPCR */, { 3, 4, 4, 1 } /* FPSR */,
		{ 0, 0, 0, 0 } /* MIDR */, { 0, 0, 0, 5 } /* MPIDR */, { 0, 0, 4, 0 } /* PFR0 */,
		{ 0, 1, 2, 0 } /* ZCR */, { 0, 0, 1, 0 } /* ID_PFR0 */, { 0, 4, 6, 0 } /* ICC_PMR */,
		{ 0, 10, 4, 4 } /* MPAMIDR */, { 0, 5, 3, 0 } /* ERRIDR */, { 0, 1, 0, 1 } /* ACTLR */,
	};
	static const uint32_t fixed[] = {
		0xd69f03e0 /* eret */, 0xd65f03c0 /* ret */, 0xd5033fdf /* isb */,
		0xd5033f9f /* dsb sy */, A64_NOP, 0xd503205f /* wfe */, 0xd503203f /* yield */,
		0xd503209f /* sev */, 0xd503207f /* wfi */, 0xd500401f /* cfinv */,
		0x04bf5020 /* rdvl x0, #1 */, 0x2518e3e0 /* ptrue p0.b */, 0xd503233f /* paciasp */,
		0xd50b7420 /* dc zva, x0 */, 0xd5087800 /* at s1e1r, x0 */, 0xd508871f /* tlbi vmalle1 */,
	};
	uint32_t w, rt = below(f, 31);

	switch (below(f, 20)) {
	case 10:
		w = 0xd4000002U | ((uint32_t)below(f, 1 << 16) << 5);	/* hvc */
		break;
	case 11: {
		static const uint32_t exc[] = { 0xd4000003, 0xd4000001, 0xd4200000, 0xd4400000 };
		/* smc, svc, brk, hlt */
		w = PICK(f, exc) | ((uint32_t)below(f, 1 << 16) << 5);
		break;
	}
	case 12:
		w = PICK(f, fixed);
		break;
	case 13:	/* msr daifclr/daifset, #imm */
		w = (chance(f, 50) ? 0xd50340ffU : 0xd50340dfU) | ((uint32_t)below(f, 16) << 8);
		break;
	case 14:	/* ldr/str x, [x20, #off]: the MMIO window */
		w = (chance(f, 50) ? 0xf9000000U : 0xf9400000U) | ((uint32_t)below(f, 0x400) << 10) |
		    (20 << 5) | rt;
		break;
	case 15:	/* ldr/str w/x, [x21, #off]: memory */
		w = (chance(f, 50) ? 0xb9000000U : 0xf9400000U) | ((uint32_t)below(f, 0x80) << 10) |
		    (21 << 5) | rt;
		break;
	case 16: {	/* mrs/msr of an EL1/EL0 register */
		int k = below(f, sizeof(el1regs) / 4);

		w = a64_sysreg(chance(f, 60), 3, el1regs[k][0], el1regs[k][1], el1regs[k][2],
			       el1regs[k][3], rt);
		break;
	}
	case 17:	/* fmov d, x / fadd d, d, d */
		w = chance(f, 50) ? 0x9e670000U | (rt << 5) | below(f, 32) :
		    0x1e602800U | ((uint32_t)below(f, 32) << 16) | ((uint32_t)below(f, 32) << 5) | rt;
		break;
	case 18:	/* b forward */
		w = 0x14000000U | (1 + below(f, 8));
		break;
	default:
		w = rnd(f);
		break;
	}
	return a64_time_dependent(w) ? A64_NOP : w;
}

static uint32_t random_a32(struct fz *f)
{
	static const uint32_t fixed[] = {
		0xe1400070 /* hvc #0 */, 0xef000000 /* svc #0 */, 0xe1200070 /* bkpt #0 */,
		0xe1600070 /* smc #0 */, 0xe320f003 /* wfi */, 0xf1080080 /* cpsie i */,
		0xe7f000f0 /* udf #0 */, 0xee1f0f10 /* mrc p15, 0, r0, c15, c0, 0 */,
		0xee100f10 /* mrc p15, 0, r0, c0, c0, 0 (MIDR) */, 0xeef10a10 /* vmrs r0, fpscr */,
		0xe58c0000 /* str r0, [r12] */,
	};
	uint32_t w = chance(f, 75) ? (uint32_t)rnd(f) : PICK(f, fixed);

	return a32_time_dependent(w) ? A32_NOP : w;
}

/* A32 vectors: 8 branches to handlers that write LR to MMIO_VEC + n * 0x10 forever */
static void write_a32(struct fz *f, uint8_t *page, bool program)
{
	uint32_t *p = (uint32_t *)page, *code = (uint32_t *)(page + CODE_OFF);
	static const uint32_t prog[] = {
		0xe1400070,	/* hvc #0 */
		0xe59fc010,	/* ldr r12, [pc, #16]: the literal below */
		0xe58c0000,	/* str r0, [r12] */
		0xe58c1004,	/* str r1, [r12, #4] */
		0xe58c2008,	/* str r2, [r12, #8] */
		0xe58c300c,	/* 1: str r3, [r12, #12] */
		0xeafffffd,	/* b 1b */
		MMIO_BASE + MMIO_OUT,
	};

	for (int n = 0; n < 8; n++) {
		uint32_t *h = p + 0x40 / 4 + 4 * n;

		p[n] = 0xea000000U | (14 + 3 * n);	/* b handler n */
		h[0] = 0xe59fc004;			/* ldr r12, [pc, #4] */
		h[1] = 0xe58ce000;			/* 1: str lr, [r12] */
		h[2] = 0xeafffffd;			/* b 1b */
		h[3] = MMIO_BASE + MMIO_VEC + n * 0x10;
	}
	if (program) {
		memcpy(code, prog, sizeof(prog));
		return;
	}
	for (unsigned int k = 0; k < CODE_WORDS; k++)
		code[k] = random_a32(f);
	code[CODE_WORDS] = 0xe59fc004;		/* ldr r12, [pc, #4] */
	code[CODE_WORDS + 1] = 0xe58c0000;	/* 1: str r0, [r12] */
	code[CODE_WORDS + 2] = 0xeafffffd;	/* b 1b */
	code[CODE_WORDS + 3] = MMIO_BASE + MMIO_HALT;
}

static void write_code(struct fz *f, uint8_t *page, enum prog p, bool a32)
{
	uint32_t *code = (uint32_t *)(page + CODE_OFF);

	if (a32) {
		write_a32(f, page, p == P_A32);
		return;
	}
	memcpy(page, fz_vectors, CODE_OFF);
	if (p == P_RANDOM) {
		for (unsigned int k = 0; k < CODE_WORDS; k++)
			code[k] = random_a64(f);
		memcpy(code + CODE_WORDS, fz_tail, 16);
	} else {
		memcpy(code, progs[p].start, (progs[p].end - progs[p].start) * 4);
	}
}

static enum prog pick_prog(struct fz *f, bool a32)
{
	int total = 0, x;

	if (a32)
		return chance(f, 50) ? P_A32 : P_RANDOM;
	for (int p = 0; p < NR_PROGS; p++)
		total += progs[p].weight;
	x = below(f, total);
	for (int p = 0; p < NR_PROGS; p++) {
		if (x < progs[p].weight)
			return p;
		x -= progs[p].weight;
	}
	return P_RANDOM;
}

/* SMCCC function IDs for the HVC/SMC programs (not TRNG_RND and PTP: time, entropy) */
static const uint32_t smccc_ids[] = {
	PSCI_0_2_FN_PSCI_VERSION, PSCI_0_2_FN_CPU_OFF, PSCI_0_2_FN64_CPU_ON, PSCI_0_2_FN_CPU_ON,
	PSCI_0_2_FN64_AFFINITY_INFO, PSCI_0_2_FN_MIGRATE_INFO_TYPE, PSCI_0_2_FN_SYSTEM_OFF,
	PSCI_0_2_FN_SYSTEM_RESET, PSCI_1_0_FN_PSCI_FEATURES, PSCI_1_0_FN64_SYSTEM_SUSPEND,
	PSCI_1_1_FN64_SYSTEM_RESET2, PSCI_0_2_FN64_CPU_SUSPEND, PSCI_0_2_FN_MIGRATE,
	ARM_SMCCC_VERSION_FUNC_ID, ARM_SMCCC_ARCH_FEATURES_FUNC_ID, ARM_SMCCC_ARCH_WORKAROUND_1,
	ARM_SMCCC_ARCH_WORKAROUND_2, ARM_SMCCC_ARCH_WORKAROUND_3, ARM_SMCCC_ARCH_SOC_ID,
	ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID, ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID,
	ARM_SMCCC_TRNG_VERSION, ARM_SMCCC_TRNG_FEATURES, ARM_SMCCC_TRNG_GET_UUID,
	ARM_SMCCC_HV_PV_TIME_FEATURES, ARM_SMCCC_HV_PV_TIME_ST, 0xc6000000, 0x86000002,
};

/* ------------------------------------------------------------------------- */
/* KVM_RUN */

static __thread struct kvm_run *volatile cur_run;
static __thread volatile sig_atomic_t alarm_hits;

static void on_alarm(int sig)
{
	struct kvm_run *r = cur_run;

	alarm_hits++;
	if (r)
		r->immediate_exit = 1;
}

/* KVM_RUN under the bound: *bounded if the timer ended it. */
static long run_bounded(struct fz *f, struct vcpu *c, bool *bounded)
{
	struct itimerspec on = {
		.it_value = { .tv_sec = f->bound_ns / 1000000000, .tv_nsec = f->bound_ns % 1000000000 },
		.it_interval = { .tv_nsec = 20 * 1000 * 1000 },
	}, off = {};
	sig_atomic_t hits = alarm_hits;
	long r;

	c->run->immediate_exit = 0;
	cur_run = c->run;
	timer_settime(f->timer, 0, &on, NULL);
	r = xioctl(c->fd, KVM_RUN, NULL);
	timer_settime(f->timer, 0, &off, NULL);
	cur_run = NULL;
	c->run->immediate_exit = 0;
	*bounded = r == -EINTR && alarm_hits != hits;
	return r;
}

/* The exit's fields that do not depend on time, host CPU or addresses. */
static void add_exit(struct fz *f, struct kvm_run *run)
{
	uint64_t data = 0;
	uint32_t len;

	/* the timers' output levels (userspace irqchip); the PMU's counts cycles */
	add(f, " irq=%x", (unsigned int)(run->s.regs.device_irq_level &
					 (KVM_ARM_DEV_EL1_VTIMER | KVM_ARM_DEV_EL1_PTIMER)));
	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		len = run->mmio.len;
		add(f, " exit=MMIO pa=0x%" PRIx64 " len=%u w=%u", (uint64_t)run->mmio.phys_addr, len,
		    run->mmio.is_write);
		if (run->mmio.is_write) {
			memcpy(&data, run->mmio.data, len <= 8 ? len : 8);
			add(f, " data=0x%" PRIx64, data);
		}
		break;
	case KVM_EXIT_HYPERCALL:
		add(f, " exit=HYPERCALL nr=0x%" PRIx64 " flags=0x%" PRIx64, (uint64_t)run->hypercall.nr,
		    (uint64_t)run->hypercall.flags);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		add(f, " exit=SYSTEM_EVENT type=%u ndata=%u", run->system_event.type,
		    run->system_event.ndata);
		for (uint32_t k = 0; k < run->system_event.ndata && k < 16; k++)
			add(f, " d%u=0x%" PRIx64, k, (uint64_t)run->system_event.data[k]);
		break;
	case KVM_EXIT_DEBUG:
		add(f, " exit=DEBUG hsr=0x%x hsr_high=0x%x", run->debug.arch.hsr,
		    run->debug.arch.hsr_high);
		if (run->debug.arch.hsr >> 26 == 0x34)	/* ESR_ELx_EC_WATCHPT_LOW: FAR is valid */
			add(f, " far=0x%" PRIx64, (uint64_t)run->debug.arch.far);
		break;
	case KVM_EXIT_FAIL_ENTRY:	/* .cpu: which host CPU, left out */
		add(f, " exit=FAIL_ENTRY reason=0x%" PRIx64,
		    (uint64_t)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_ARM_NISV:
		add(f, " exit=ARM_NISV iss=0x%" PRIx64 " ipa=0x%" PRIx64,
		    (uint64_t)run->arm_nisv.esr_iss, (uint64_t)run->arm_nisv.fault_ipa);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		add(f, " exit=INTERNAL_ERROR suberror=%u", run->internal.suberror);
		break;
	case KVM_EXIT_INTR:
		add(f, " exit=INTR");
		break;
	default:
		add(f, " exit=%u", run->exit_reason);
		break;
	}
}

enum run_end { RUN_ON, RUN_STOP };

/*
 * One KVM_RUN step. In a tainted VM (memory changed by a bounded run) the result
 * is left out and the caller never stops early, so that the number of steps does
 * not depend on it.
 */
static enum run_end run_step(struct fz *f, struct vm *vm, int i, bool tainted)
{
	struct vcpu *c = &vm->vcpu[i];
	struct kvm_run *run = c->run;
	bool bounded;
	long r;

	begin(f, "KVM_RUN vm=%d vcpu=%d", vm->index, i);
	r = run_bounded(f, c, &bounded);
	f->runs++;
	c->ran = true;
	/*
	 * -k, bug 1: the first KVM_RUN of a vCPU with the PMU, no vGIC yet, failed
	 * after kvm_timer_enable() (kvm_arm_pmu_v3_enable() is the only later step
	 * that fails: the vCPU has not "run" for kvm_vgic_create()); without patch
	 * 0001 only, which checks the PMU first
	 */
	if (!r)
		vm->run_ok = true;
	else if (r != -EINTR && r != -ENOEXEC && r != -EPERM && vm->vgic_fd < 0 &&
		 c->feat & (1 << KVM_ARM_VCPU_PMU_V3))
		vm->run_failed = true;
	if (bounded) {
		f->bounded++;
		vm->taint = true;
		c->taint = true;
	}
	if (tainted) {
		f->tainted_runs++;
		c->taint = true;
		add(f, " -> ~tainted");
		end(f);
		if (run->exit_reason == KVM_EXIT_MMIO && !run->mmio.is_write)
			memset(run->mmio.data, 0, sizeof(run->mmio.data));
		return RUN_ON;
	}
	if (bounded) {
		add(f, " -> bounded");
		end(f);
		return RUN_STOP;
	}
	result(f, r, false);
	if (!r || r == -EINTR)
		add_exit(f, run);
	end(f);
	if (r == -EINTR)
		return RUN_ON;		/* a timer level for userspace: runs on */
	if (r)
		return RUN_STOP;
	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		if (!run->mmio.is_write) {
			uint64_t v = mmio_value(f->seed, run->mmio.phys_addr);

			memcpy(run->mmio.data, &v, sizeof(run->mmio.data));
			return RUN_ON;
		}
		if (run->mmio.phys_addr == MMIO_BASE + MMIO_HALT)
			return RUN_STOP;
		/* a vector's ESR report (it repeats): the end */
		if (run->mmio.phys_addr >= MMIO_BASE + MMIO_VEC &&
		    run->mmio.phys_addr < MMIO_BASE + MMIO_VEC + 16 * 0x10 &&
		    !(run->mmio.phys_addr & 8))
			return RUN_STOP;
		return RUN_ON;
	case KVM_EXIT_HYPERCALL:
	case KVM_EXIT_DEBUG:
	case KVM_EXIT_INTR:
	case KVM_EXIT_ARM_NISV:
		return RUN_ON;
	default:
		return RUN_STOP;
	}
}

static int code_slot(struct vm *vm, bool load)
{
	for (int s = 0; s < MAX_SLOTS; s++)
		if (vm->slot[s].used && vm->slot[s].size >= PAGE &&
		    (load || vm->slot[s].prot == (PROT_READ | PROT_WRITE)))
			return s;
	return -1;
}

static void act_run(struct fz *f, struct vm *vm)
{
	int i = vcpu_get_open(f, vm), s;
	uint64_t gpa, data, k, nruns;
	uint8_t *host;
	struct vcpu *c;
	enum prog p;
	bool a32, tainted;

	if (i < 0) {
		act_create_vcpu(f, vm);
		i = vcpu_get_open(f, vm);
		if (i < 0)
			return;
	}
	c = &vm->vcpu[i];
	if (!c->inited && chance(f, 85)) {
		if (!vcpu_init(f, vm, i, true) && c->feat & (1 << KVM_ARM_VCPU_SVE) && chance(f, 90))
			act_finalize(f, vm, i);
	}
	a32 = c->feat & (1 << KVM_ARM_VCPU_EL1_32BIT);
	if (a32 && !f->load && !run_aarch32)
		return;		/* see run_aarch32 */
	s = code_slot(vm, f->load);
	if (s < 0 && chance(f, 90)) {
		for (int t = 0; t < MAX_SLOTS && s < 0; t++)
			if (!vm->slot[t].used && !slot_create(f, vm, t, 2 + below(f, 4),
							      chance(f, 10) ? KVM_MEM_READONLY : 0))
				s = t;
	}
	p = pick_prog(f, a32);
	/* load mode: another thread may be changing the slot; any backing will do */
	host = s >= 0 ? vm->slot[s].host : NULL;
	if (host) {
		gpa = vm->slot[s].gpa;
		data = vm->slot[s].size >= 2 * PAGE ? gpa + PAGE : MMIO_BASE + 0x3000;
		write_code(f, host, p, a32);
	} else {
		gpa = SLOT_GPA(0);
		data = MMIO_BASE + 0x3000;
	}
	set_reg64(f, vm, i, REG_PC, chance(f, 95) ? gpa + CODE_OFF : pc_value(f, gpa + CODE_OFF),
		  progs[p].name);
	if (chance(f, 90))
		set_reg64(f, vm, i, REG_SYS(SYS_VBAR_EL1), gpa, NULL);
	if (chance(f, 85))
		set_reg64(f, vm, i, REG_PSTATE, a32 ? AA32_MODE_SVC | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT :
			  PSR_MODE_EL1h | DAIF_MASK, NULL);
	else
		set_reg64(f, vm, i, REG_PSTATE, pstate_value(f), NULL);
	if (!c->taint && chance(f, 75)) {	/* MMU and big-endian off */
		uint64_t sctlr;

		if (!one_reg(f, vm, i, false, REG_SYS(SYS_SCTLR_EL1), (uint8_t *)&sctlr, NULL))
			set_reg64(f, vm, i, REG_SYS(SYS_SCTLR_EL1),
				  sctlr & ~(SCTLR_ELx_M | SCTLR_ELx_EE | SCTLR_EL1_E0E), NULL);
	}
	if (chance(f, 70))
		set_reg64(f, vm, i, REG_SYS(SYS_CPACR_EL1), CPACR_ELx_FPEN | CPACR_ELx_ZEN, NULL);
	if (!a32) {
		set_reg64(f, vm, i, REG_X(20), MMIO_BASE, NULL);
		set_reg64(f, vm, i, REG_X(21), data, NULL);
	}
	switch (p) {
	case P_HVC:
	case P_SMC:
	case P_A32:
		set_reg64(f, vm, i, REG_X(0), chance(f, 90) ? PICK(f, smccc_ids) : rnd(f), NULL);
		/* CPU_ON's target, AFFINITY_INFO's, FEATURES' function */
		set_reg64(f, vm, i, REG_X(1), chance(f, 50) ? below(f, MAX_VCPUS + 1) : PICK(f, smccc_ids),
			  NULL);
		set_reg64(f, vm, i, REG_X(2), chance(f, 50) ? gpa + CODE_OFF : rnd(f), NULL);
		break;
	case P_FP:
		if (!(c->feat & (1 << KVM_ARM_VCPU_SVE))) {
			uint8_t v[16];

			for (int n = 0; n < 2; n++) {
				uint64_t a = rnd(f), b = rnd(f);

				memcpy(v, &a, 8);
				memcpy(v + 8, &b, 8);
				one_reg(f, vm, i, true, REG_V(n ? 31 : 0), v, NULL);
			}
		}
		/* fall through */
	default:
		for (int n = 0; n < 4; n++)
			if (chance(f, 50))
				set_reg64(f, vm, i, REG_X(n), val64(f, 0, false), NULL);
		break;
	}
	if (p == P_ERET)
		set_reg64(f, vm, i, REG_X(0), pstate_value(f), "spsr");
	tainted = vm->taint;
	nruns = tainted ? 1 + below(f, 2) : 1 + below(f, 8);
	for (k = 0; k < nruns; k++) {
		enum run_end e = run_step(f, vm, i, tainted);

		if (!tainted && e == RUN_STOP)
			break;
		/* answer a forwarded hypercall now and then */
		if (!tainted && c->run->exit_reason == KVM_EXIT_HYPERCALL && chance(f, 50))
			set_reg64(f, vm, i, REG_X(0), chance(f, 50) ? 0 : ~0ULL, "hypercall ret");
	}
}

/*
 * The calling thread moved to CPU @cpus[k]; in load mode now and then allowed
 * every CPU again. Deterministic mode runs pinned, and moves only here: where a
 * vCPU thread runs is then part of the sequence (QEMU TCG keeps per-CPU state that
 * a guest can see: Documentation/selftests.rst, "ioctl_fuzz").
 */
static void act_migrate(struct fz *f)
{
	int k = below(f, ncpus);
	cpu_set_t set;

	if (f->load && chance(f, 30)) {
		begin(f, "MIGRATE cpu=any");
		set = cpus_start;
	} else {
		begin(f, "MIGRATE cpu=%d", k);
		CPU_ZERO(&set);
		CPU_SET(cpus[k], &set);
	}
	result(f, sched_setaffinity(0, sizeof(set), &set) ? -errno : 0, false);
	end(f);
}

/* ------------------------------------------------------------------------- */
/* The choice of action */

enum act {
	A_CREATE_VM, A_CLOSE_VM, A_CHECK_EXT, A_PREFERRED, A_CREATE_VCPU, A_CLOSE_VCPU,
	A_VCPU_INIT, A_FINALIZE, A_REG_LIST, A_SWEEP, A_REG_SPECIAL, A_GUEST_DEBUG, A_MEMSLOT,
	A_DIRTY_LOG, A_MPROTECT, A_CREATE_DEVICE, A_VGIC_ATTR, A_ITS_ATTR, A_VCPU_ATTR, A_SMCCC,
	A_RUN, A_MP_STATE, A_SET_DEV_ADDR, A_IRQ_LINE, A_COUNTER_OFFSET, A_VCPU_EVENTS,
	A_ENABLE_CAP, A_MASKS, A_MIGRATE, NR_ACTS
};

static const uint8_t act_weight[NR_ACTS] = {
	[A_CREATE_VM] = 3, [A_CLOSE_VM] = 2, [A_CHECK_EXT] = 2, [A_PREFERRED] = 1,
	[A_CREATE_VCPU] = 6, [A_CLOSE_VCPU] = 1, [A_VCPU_INIT] = 6, [A_FINALIZE] = 3,
	[A_REG_LIST] = 2, [A_SWEEP] = 6, [A_REG_SPECIAL] = 6, [A_GUEST_DEBUG] = 4,
	[A_MEMSLOT] = 8, [A_DIRTY_LOG] = 2, [A_MPROTECT] = 1, [A_CREATE_DEVICE] = 3,
	[A_VGIC_ATTR] = 6, [A_ITS_ATTR] = 2, [A_VCPU_ATTR] = 4, [A_SMCCC] = 3, [A_RUN] = 24,
	[A_MP_STATE] = 3, [A_SET_DEV_ADDR] = 1, [A_IRQ_LINE] = 3, [A_COUNTER_OFFSET] = 1,
	[A_VCPU_EVENTS] = 3, [A_ENABLE_CAP] = 2, [A_MASKS] = 1, [A_MIGRATE] = 3,
};

static void one_action(struct fz *f)
{
	struct vm *vm = vm_get(f);
	int total = 0, x, a, i;

	if (!vm) {
		if (chance(f, 90))
			act_create_vm(f);
		else
			act_check_ext(f, NULL);
		return;
	}
	for (a = 0; a < NR_ACTS; a++)
		total += act_weight[a];
	if (unpinned)
		total -= act_weight[A_MIGRATE];
	/* a VM whose runs no longer count goes sooner */
	x = below(f, total + (vm->taint ? 12 : 0));
	for (a = 0; a < NR_ACTS && x >= act_weight[a]; a++)
		x -= act_weight[a];
	/* A_MIGRATE is last: with -u, the x it would take close the VM as before */
	if (unpinned && a == A_MIGRATE)
		a = NR_ACTS;
	if (a == NR_ACTS)
		a = A_CLOSE_VM;
	i = vcpu_get_open(f, vm);
	switch (a) {
	case A_VCPU_INIT:
	case A_FINALIZE:
	case A_REG_LIST:
	case A_SWEEP:
	case A_REG_SPECIAL:
	case A_GUEST_DEBUG:
	case A_VCPU_ATTR:
	case A_MP_STATE:
	case A_VCPU_EVENTS:
	case A_CLOSE_VCPU:
		if (i < 0)
			a = A_CREATE_VCPU;
		break;
	}
	switch (a) {
	case A_CREATE_VM:
		act_create_vm(f);
		break;
	case A_CLOSE_VM:
		act_close_vm(f, vm);
		break;
	case A_CHECK_EXT:
		act_check_ext(f, vm);
		break;
	case A_PREFERRED:
		preferred_target(f, vm);
		break;
	case A_CREATE_VCPU:
		act_create_vcpu(f, vm);
		break;
	case A_CLOSE_VCPU:
		act_close_vcpu(f, vm);
		break;
	case A_VCPU_INIT:
		act_vcpu_init(f, vm);
		break;
	case A_FINALIZE:
		act_finalize(f, vm, i);
		break;
	case A_REG_LIST:
		reg_list(f, vm, i);
		break;
	case A_SWEEP:
		act_sweep(f, vm, i);
		break;
	case A_REG_SPECIAL:
		act_reg_special(f, vm, i);
		break;
	case A_GUEST_DEBUG:
		act_guest_debug(f, vm, i);
		break;
	case A_MEMSLOT:
		act_memslot(f, vm);
		break;
	case A_DIRTY_LOG:
		act_dirty_log(f, vm);
		break;
	case A_MPROTECT:
		act_mprotect(f, vm);
		break;
	case A_CREATE_DEVICE:
		act_create_device(f, vm);
		break;
	case A_VGIC_ATTR:
		act_vgic_attr(f, vm);
		break;
	case A_ITS_ATTR:
		act_its_attr(f, vm);
		break;
	case A_VCPU_ATTR:
		act_vcpu_attr(f, vm, i);
		break;
	case A_SMCCC:
		act_smccc_filter(f, vm);
		break;
	case A_RUN:
		act_run(f, vm);
		break;
	case A_MP_STATE:
		act_mp_state(f, vm, i);
		break;
	case A_SET_DEV_ADDR:
		act_set_device_addr(f, vm);
		break;
	case A_IRQ_LINE:
		act_irq_line(f, vm);
		break;
	case A_COUNTER_OFFSET:
		act_counter_offset(f, vm);
		break;
	case A_VCPU_EVENTS:
		act_vcpu_events(f, vm, i);
		break;
	case A_ENABLE_CAP:
		act_enable_cap(f, vm);
		break;
	case A_MASKS:
		act_writable_masks(f, vm);
		break;
	case A_MIGRATE:
		act_migrate(f);
		break;
	}
	vm_put(vm);
}

/* ------------------------------------------------------------------------- */
/* Modes */

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static void fz_init(struct fz *f, struct world *w, uint64_t seed, uint64_t stream)
{
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGALRM };

	memset(f, 0, sizeof(*f));
	f->w = w;
	f->seed = seed;
	f->load = w->load;
	f->limit = UINT64_MAX;
	f->digest = FNV_INIT;
	f->bound_ns = bound_default_ms * 1000000ULL;
	seed_rng(f, seed, stream);
	f->buf = calloc(1, 64 * 1024);
	TEST_ASSERT(f->buf, "calloc");
	sev.sigev_notify_thread_id = syscall(SYS_gettid);
	TEST_ASSERT(!timer_create(CLOCK_MONOTONIC, &sev, &f->timer), "timer_create: %s",
		    strerror(errno));
}

static void fz_fini(struct fz *f)
{
	timer_delete(f->timer);
	free(f->buf);
}

/*
 * Every VM of a world freed, whatever references an action cut short by the limit
 * left (a VM leaves the table only within a step, see act_close_vm()).
 */
static void world_free(struct world *w)
{
	for (int i = 0; i < MAX_VMS; i++) {
		if (w->vm[i])
			vm_free(w->vm[i]);
		w->vm[i] = NULL;
	}
}

struct det_result {
	uint64_t digest, vms, runs, bounded, tainted_runs;
};

/* Deterministic mode: @count steps from @seed, single-threaded. */
static struct det_result run_det(uint64_t seed, uint64_t count, bool list)
{
	struct world w = { .lock = PTHREAD_MUTEX_INITIALIZER, .devnull = -1 };
	struct det_result res;
	struct fz *f = malloc(sizeof(*f));

	TEST_ASSERT(f, "malloc");
	fz_init(f, &w, seed, 0);
	f->limit = count;
	f->list = list;
	/* pinned: the thread moves between CPUs at MIGRATE steps only */
	if (!unpinned) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpus[0], &set);
		TEST_ASSERT(!sched_setaffinity(0, sizeof(set), &set), "sched_setaffinity");
	}
	if (!setjmp(f->out)) {
		for (;;)
			one_action(f);
	}
	world_free(&w);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(cpus_start), &cpus_start), "sched_setaffinity");
	res = (struct det_result){ f->digest, f->vms, f->runs, f->bounded, f->tainted_runs };
	fz_fini(f);
	free(f);
	return res;
}

struct load_arg {
	struct world *w;
	uint64_t seed, deadline;
	int tid;
	uint64_t steps, vms, runs, bounded;
};

static void *load_thread(void *p)
{
	struct load_arg *a = p;
	struct fz *f = malloc(sizeof(*f));

	TEST_ASSERT(f, "malloc");
	fz_init(f, a->w, a->seed, a->tid + 1);
	while (now_ns() < a->deadline)
		one_action(f);
	a->steps = f->step;
	a->vms = f->vms;
	a->runs = f->runs;
	a->bounded = f->bounded;
	fz_fini(f);
	free(f);
	return NULL;
}

static void print_avoided(void)
{
	if (avoid_known)
		printf("# -k: %" PRIu64 " vGIC creations after a failed first KVM_RUN left out\n",
		       __atomic_exchange_n(&avoided, 0, __ATOMIC_RELAXED));
}

static const char *backend(void)
{
	return vhe_rs_loaded() && vhe_rs_enabled() ? "Rust" : "C";
}

static void run_load(uint64_t seed, uint64_t seconds, int threads)
{
	struct world w = { .lock = PTHREAD_MUTEX_INITIALIZER, .load = true };
	struct load_arg *args = calloc(threads, sizeof(*args));
	pthread_t *tids = calloc(threads, sizeof(*tids));
	uint64_t steps = 0, vms = 0, runs = 0, bounded = 0, t0 = now_ns();

	TEST_ASSERT(args && tids, "calloc");
	w.devnull = open("/dev/null", O_RDWR);
	TEST_ASSERT(w.devnull >= 0, "/dev/null");
	for (int t = 0; t < threads; t++) {
		args[t] = (struct load_arg){ .w = &w, .seed = seed, .tid = t,
					     .deadline = t0 + seconds * 1000000000ULL };
		TEST_ASSERT(!pthread_create(&tids[t], NULL, load_thread, &args[t]), "pthread_create");
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(tids[t], NULL);
		steps += args[t].steps;
		vms += args[t].vms;
		runs += args[t].runs;
		bounded += args[t].bounded;
	}
	world_free(&w);
	close(w.devnull);
	print_avoided();
	printf("# load: %.1f s, %" PRIu64 " ioctls (%.0f/s), %" PRIu64 " runs of which %" PRIu64
	       " bounded\n", (now_ns() - t0) / 1e9, steps, steps / ((now_ns() - t0) / 1e9), runs,
	       bounded);
	printf("STRESS ioctl_fuzz backend=%s seed=%" PRIu64 " seconds=%" PRIu64 " threads=%d ioctls=%"
	       PRIu64 " vms=%" PRIu64 " runs=%" PRIu64 " digest=-\n", backend(), seed, seconds,
	       threads, steps, vms, runs);
	free(args);
	free(tids);
}

static void print_det(uint64_t seed, uint64_t count, struct det_result r, double secs)
{
	print_avoided();
	printf("# seed %" PRIu64 ": %" PRIu64 " steps in %.1f s, %" PRIu64 " VMs, %" PRIu64
	       " runs (%" PRIu64 " bounded, %" PRIu64 " in tainted VMs)\n", seed, count, secs, r.vms,
	       r.runs, r.bounded, r.tainted_runs);
	printf("DIGEST seed=%" PRIu64 " n=%" PRIu64 " digest=%016" PRIx64 "\n", seed, count, r.digest);
	fflush(stdout);
}

static void help(const char *name)
{
	printf("usage: %s [-s SEED] [-n COUNT [-l]] [-d SECONDS [-t THREADS]] [-T MS] [-k] [-a] [-u]\n"
	       "  -s SEED     the sequence's seed (default 1)\n"
	       "  -n COUNT    deterministic mode: COUNT steps, then the DIGEST line\n"
	       "  -l          with -n: one line per step\n"
	       "  -d SECONDS  load mode: THREADS threads on shared VMs for SECONDS\n"
	       "  -t THREADS  (default 4)\n"
	       "  -T MS       the bound of one KVM_RUN (default %" PRIu64 ")\n"
	       "  -k          keep clear of the KVM bugs listed in the source (not the world\n"
	       "              switch's), to look for others; only for kernels without the\n"
	       "              series (arch/arm64/patches/0001 fixes the one listed)\n"
	       "  -a          with -n: run AArch32 vCPUs too (QEMU TCG makes them nondeterministic)\n"
	       "  -u          with -n: unpinned, no MIGRATE steps (the first version's sequences)\n"
	       "  no -n/-d:   what make check runs: seeds 1-%d (or from -s) of %" PRIu64 " steps, each\n"
	       "              twice (the same digest required), then %d s of load, %d threads\n",
	       name, bound_default_ms, CHECK_SEEDS, (uint64_t)CHECK_STEPS, CHECK_SECONDS, CHECK_THREADS);
}

/* The host PMU's perf type (KVM_ARM_VCPU_PMU_V3_SET_PMU), or -1. */
static int host_pmu_type(void)
{
	static const char *const names[] = { "armv8_pmuv3_0", "armv8_pmuv3", "armv8_cortex_a57" };
	char path[128];
	int t = -1;

	for (size_t k = 0; k < ARRAY_SIZE(names) && t < 0; k++) {
		FILE *fp;

		snprintf(path, sizeof(path), "/sys/bus/event_source/devices/%s/type", names[k]);
		fp = fopen(path, "r");
		if (fp) {
			if (fscanf(fp, "%d", &t) != 1)
				t = -1;
			fclose(fp);
		}
	}
	return t;
}

int main(int argc, char *argv[])
{
	uint64_t seed = 1, count = 0, seconds = 0;
	int threads = 4, opt;
	bool list = false, seed_given = false;
	struct vhe_rs_snap before;
	struct sigaction sa = { .sa_handler = on_alarm };

	while ((opt = getopt(argc, argv, "s:n:ld:t:T:kauh")) != -1) {
		switch (opt) {
		case 'u':
			unpinned = true;
			break;
		case 'a':
			run_aarch32 = true;
			break;
		case 'k':
			avoid_known = true;
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			seed_given = true;
			break;
		case 'n':
			count = strtoull(optarg, NULL, 0);
			break;
		case 'l':
			list = true;
			break;
		case 'd':
			seconds = strtoull(optarg, NULL, 0);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'T':
			bound_default_ms = strtoull(optarg, NULL, 0);
			break;
		default:
			help(argv[0]);
			return opt == 'h' ? 0 : 1;
		}
	}
	if ((count && seconds) || threads < 1 || !bound_default_ms) {
		help(argv[0]);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	kvm_fd = open_kvm_dev_path_or_exit();
	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	TEST_ASSERT((long)run_size >= (long)sizeof(struct kvm_run), "KVM_GET_VCPU_MMAP_SIZE");
	pmu_type = host_pmu_type();
	TEST_ASSERT(!sched_getaffinity(0, sizeof(cpus_start), &cpus_start), "sched_getaffinity");
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &cpus_start))
			cpus[ncpus++] = c;
	sigemptyset(&sa.sa_mask);
	TEST_ASSERT(!sigaction(SIGALRM, &sa, NULL), "sigaction");
	TEST_ASSERT((fz_vectors_end - fz_vectors) * 4 == CODE_OFF, "vectors: %ld bytes",
		    (long)(fz_vectors_end - fz_vectors) * 4);

	if (count) {
		uint64_t t0 = now_ns();
		struct det_result r = run_det(seed, count, list);
		double secs = (now_ns() - t0) / 1e9;

		print_det(seed, count, r, secs);
		printf("STRESS ioctl_fuzz backend=%s seed=%" PRIu64 " seconds=%.0f threads=1 ioctls=%"
		       PRIu64 " vms=%" PRIu64 " runs=%" PRIu64 " digest=%016" PRIx64 "\n", backend(),
		       seed, secs, count, r.vms, r.runs, r.digest);
		return 0;
	}
	if (seconds) {
		run_load(seed, seconds, threads);
		return 0;
	}
	/*
	 * make check: a few seeds, each twice: the same seed must give the same digest
	 * on one backend (the sequence depends on nothing else); then a short load.
	 */
	printf("ioctl_fuzz on %s: %d seeds of %d steps, each twice, then %d s of %d threads\n",
	       backend(), CHECK_SEEDS, CHECK_STEPS, CHECK_SECONDS, CHECK_THREADS);
	before = vhe_rs_snap();
	for (uint64_t s = seed_given ? seed : 1, end = s + CHECK_SEEDS; s < end; s++) {
		uint64_t t0 = now_ns();
		struct det_result a = run_det(s, CHECK_STEPS, false), b;

		print_det(s, CHECK_STEPS, a, (now_ns() - t0) / 1e9);
		b = run_det(s, CHECK_STEPS, false);
		TEST_ASSERT(a.digest == b.digest, "seed %" PRIu64 ": digest %016" PRIx64 ", then %016"
			    PRIx64 " on the same backend: the sequence is not deterministic (compare "
			    "two -l runs with tools/ioctl-fuzz-shrink)", s, a.digest, b.digest);
	}
	/* the VMs ran on the backend the module's state says (vhe_rs.h) */
	printf("# the deterministic runs' VMs ran on %s\n", vhe_rs_check_backend(before, vhe_rs_snap()));
	run_load(seed, CHECK_SECONDS, CHECK_THREADS);
	return 0;
}
