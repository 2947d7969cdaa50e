// SPDX-License-Identifier: GPL-2.0
/*
 * state_fuzz: a seeded, reproducible fuzzer of the state the world switch
 * moves (issue 13, items 1 and 2).
 *
 * M VMs of N vCPUs each run on the host's CPUs, the vCPU threads moved between
 * CPUs at random. Each guest loops in rounds; in each round a PRNG seeded from
 * (seed, VM, vCPU) chooses what to set and how to leave the guest:
 *
 *  - state: V0-V31 (Z0-Z31, P0-P15 and FFR on the SVE VMs, at a vector length
 *    the guest picks through ZCR_EL1, changed inside the round right after the
 *    exit), FPSR, FPCR, and any of the EL1/EL0 system registers of FZ_REGS
 *    (TPIDR*, CONTEXTIDR, MAIR/TCR/SCTLR fields that change nothing the guest
 *    uses, TTBR0's ASID, TTBR1, ESR/FAR/PAR/AFSR*, CNTKCTL, ELR/SPSR, MDSCR
 *    bits that enable nothing by themselves, SP_EL0, VBAR (one of two copies of
 *    the guest's vector table), CPACR.TTA, TCR2/PIR/PIRE0/POR_EL0/POR_EL1 when
 *    the vCPU has them, ZCR_EL1, the virtual and physical timers' CTL and CVAL
 *    (never enabled and unmasked), ICC_PMR_EL1 and ICC_BPR1_EL1, every
 *    implemented DBGBVR/DBGBCR/DBGWVR/DBGWCR with E clear, MDCCINT_EL1, FPMR);
 *  - the exit (enum fz_kind): hvc (SMCCC_VERSION), an MMIO write or read to
 *    userspace, a read of the vGIC distributor (GICD_TYPER), WFI until the
 *    virtual timer fires, WFI with a pending SGI the guest sent itself (then
 *    acknowledged), an ID register read (HCR_EL2.TID3), a debug register access
 *    (trapped while the debug state is clean), a stage-2 fault (the VMM drops
 *    the page at exits to userspace), a read of a page that the VMM maps and
 *    unmaps as a memslot (MMIO exit, or a fault on the new slot), BRK and a
 *    hardware breakpoint taken in the guest's own vector, an UNDEF KVM injects
 *    (PMSELR_EL0 without a PMU), or a long spin (host interrupts, preemption).
 *    The first FP/SIMD or SVE instruction after the exit is the store of the
 *    registers (the lazy FP trap). The exits the kernel or EL2 deals with
 *    itself (hvc, the vGIC read, the ID register read) are taken 1 to
 *    MAX_REPEAT times in a row before the check.
 *
 * After every exit the guest reads everything back and compares it with what it
 * set (and what the VMM set meanwhile); a mismatch goes to the VMM as a ucall
 * (register, expected, actual), which prints it with the seed. At exits to
 * userspace the VMM, at random, reads the same state with KVM_GET_ONE_REG (what
 * vcpu_put saved) and compares it, writes some of it with KVM_SET_ONE_REG and
 * tells the guest (which must see it: what vcpu_load restored), migrates the
 * thread, drops the stage-2 page, unmaps the memslot.
 *
 * Isolation: every value carries its owner (VM and vCPU, and who wrote it: the
 * guest, the VMM or a host thread) where it has room, so a value of another VM
 * or of the host found in a register is named. Host threads keep their own
 * state under check meanwhile: a polluter per CPU holds Z/P/FFR (or V0-V31)
 * and TPIDR_EL0 markers across preemption; each vCPU thread issues KVM_RUN with
 * its own V0-V31, FPSR, FPCR and TPIDR_EL0 markers and checks them (and
 * TPIDRRO_EL0) when the ioctl returns.
 *
 *   state_fuzz [-s SEED] [-d SECONDS] [-m VMS] [-v VCPUS_PER_VM] [-q]
 *
 * The last line is machine-read (the stress harness):
 *   STRESS state_fuzz backend=<C|Rust> seed=<S> seconds=<D> vms=<M> vcpus=<N>
 *     exits_checked=<X> vmm_checks=<Y> migrations=<Z> mismatches=<K>
 * Documentation/selftests.rst, "state_fuzz", has the details.
 */
#define _GNU_SOURCE
#include <linux/arm-smccc.h>
#include <linux/sizes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "arch_timer.h"
#include "gic.h"
#include "gic_v3.h"
#include "vgic.h"
#include "vhe_rs.h"
#include "vhe_rs_fp.h"

#define MAX_VMS		8
#define MAX_VCPUS	8		/* per VM */
#define MAX_CPUS	8
#define MMIO_W_GPA	(1ULL << 36)	/* in no memslot: exits to userspace */
#define MMIO_R_GPA	(MMIO_W_GPA + 8)
#define MMIO_R_XOR	0x00ff00ff00ff00ffULL	/* the VMM answers a read with tag ^ this */
#define LATE_GPA	(MMIO_W_GPA + (1ULL << 20))	/* a page per vCPU, a memslot at times */
#define LATE_SLOT	16		/* + the vCPU's index */
#define EXTRA_PAGES	1024		/* the guest image's state buffers */
#define VL_MAX		256		/* bytes: the architecture's largest vector */
#define PL_MAX		(VL_MAX / 8)	/* bytes of a predicate at VL_MAX */
#define SGI_ID		5		/* the SGI a guest sends itself */
#define FZ_IRQ_PRIO	0x80		/* its and the timer's priority; PMR values are above */
#define BRK_IMM		0x5f		/* brk #BRK_IMM, handled in the guest */
#define SPIN_LOOPS	20000
#define MAX_REPEAT	16		/* times a round takes a repeatable exit */
#define FORCE_USER_EXIT	8		/* a round exits to userspace at least this often */
#define MAX_REPORTS	64		/* mismatches a guest reports (it counts them all) */
#define DIGEST_ROUNDS	64		/* rounds whose choices make the digest */
#define POLLUTER_SPIN	20000
#define STOP_GRACE	5		/* s: then a vCPU thread still in KVM_RUN is kicked out */

/* Who wrote a value: the top byte of values with room for it. */
#define TAG_GUEST	0x5eULL
#define TAG_VMM		0x4bULL
#define TAG_POLL	0x40ULL		/* a host polluter thread */
#define TAG_THREAD	0x74ULL		/* a host vCPU thread, across KVM_RUN */
#define KVM_UNSET_REG	0x1de7ec7edbadc0deULL

#define OWNER(vm, idx)	((uint64_t)(vm) * 16 + (idx) + 1)

/* Fields the value generators touch that the selftest headers do not name. */
#ifndef SYS_SP_EL0
#define SYS_SP_EL0		sys_reg(3, 0, 4, 1, 0)
#endif
#define ESR_IL			BIT_ULL(25)
#define TCR_T1SZ_MASK		GENMASK_ULL(21, 16)
#define TCR_EPD1		BIT_ULL(23)	/* no TTBR1 walks: the library maps TTBR0 only */
#define TCR_TBI1		BIT_ULL(38)
#define TTBR_CNP		BIT_ULL(0)
#define TTBR_ASID8		GENMASK_ULL(55, 48)	/* 8-bit ASIDs (TCR_EL1.AS clear) */
#define MAIR_LIB_ATTRS		GENMASK_ULL(47, 0)	/* indexes 0-5: the library's MT_* */
#define PAR_RES1		BIT_ULL(11)
#define CNTKCTL_EL0PCTEN	BIT_ULL(0)
#define CNTKCTL_EVNTI_SHIFT	4
#define CNTKCTL_EL0VTEN_SHIFT	8
#define DBGBCR_PMC_SHIFT	1
#define DBGBCR_BAS_ALL		(0xfULL << 5)
#define DBGBCR_E		BIT_ULL(0)
#define DBGBCR_LBN_SHIFT	16
#define DBGWCR_PAC_SHIFT	1
#define DBGWCR_LSC_SHIFT	3
#define DBGWCR_BAS_ALL		(0xffULL << 5)
#define DBGWCR_LBN_SHIFT	16
#define FPSR_FLAGS		(0x9fULL | BIT_ULL(27))	/* IOC..IXC, IDC, QC */
#define FPCR_RMODE_SHIFT	22
#define FPCR_CTRL		(BIT_ULL(26) | BIT_ULL(25) | BIT_ULL(24))	/* AHP, DN, FZ */
#define SCTLR_EL0_BITS		(SCTLR_EL1_UCI | SCTLR_EL1_nTWE | SCTLR_EL1_nTWI | \
				 SCTLR_EL1_UCT | SCTLR_EL1_DZE)
#define DAIF_MASK		(PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT)
#define SPSR_M_MASK		0x1fULL
#define TIMER_CTL_MASK		(CTL_ENABLE | CTL_IMASK)	/* ISTATUS is the timer's */

/* ---- the PRNG (splitmix64), the same in guest and host ---- */

static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

static inline uint64_t rnd(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}

static inline uint64_t rnd_below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static inline bool one_in(struct rng *r, uint64_t n)
{
	return rnd_below(r, n) == 0;
}

enum { SALT_GUEST = 1, SALT_VMM, SALT_SETUP };

static inline uint64_t rng_seed(uint64_t seed, uint64_t vm, uint64_t idx, uint64_t salt)
{
	return mix64(seed ^ mix64(salt << 48 | vm << 24 | idx));
}

/* ---- the registers ---- */

/* How values of a register are made (fz_gen()) and compared (fz_mask()). */
enum fz_class {
	C_FULL,		/* any 64-bit value: tag, owner, register, serial */
	C_TTBR1,	/* the same, CnP clear (TCR_EL1.EPD1 keeps it unused) */
	C_CTXID,	/* 32 bits */
	C_MAIR,		/* attribute indexes 6 and 7 only */
	C_TCR,		/* EPD1, T1SZ, TBI1 */
	C_TTBR0,	/* the ASID only */
	C_SCTLR,	/* the bits that act at EL0 only */
	C_ESR,
	C_PAR,
	C_CNTKCTL,	/* EL0 access bits and EVNTI, never EVNTEN */
	C_SPSR,		/* NZCV, DAIF set, EL1h */
	C_MDSCR,	/* TDCC, KDE, MDE: no debug event while PSTATE.D and every E are clear */
	C_MDCCINT,	/* RX, TX: DCC interrupts, which nothing raises */
	C_FPMR,		/* the FP8 formats and scales: nothing here uses them */
	C_VBAR,		/* one of the two copies of the guest's vector table */
	C_CPACR,	/* TTA */
	C_TCR2,		/* DisCH0, DisCH1 */
	C_TCTL,		/* 0, IMASK or ENABLE|IMASK: the timer never fires */
	C_PMR,		/* above the priority of the guest's interrupts */
	C_BPR,
	C_BVR, C_BCR, C_WVR, C_WCR,	/* E clear */
	C_ZCR,		/* LEN, up to the vCPU's maximum */
	C_RO,		/* read only: checked, never written */
};

/* What a register needs to exist for the vCPU. */
enum fz_need { N_ALL, N_SVE, N_TCRX, N_S1PIE, N_S1POE, N_FPMR, N_BRP, N_WRP };

#define KVM_SYS(r)	KVM_ARM64_SYS_REG(SYS_##r)
#define VGIC_REG	0	/* the VMM reads it through the vGIC device */

/* name, encoding, KVM_{GET,SET}_ONE_REG id, class, need, index (debug registers) */
#define FZ_BASE_REGS(X)									\
	X(TPIDR_EL0,	SYS_TPIDR_EL0,	KVM_SYS(TPIDR_EL0),	C_FULL,	N_ALL, 0)		\
	X(TPIDRRO_EL0,	SYS_TPIDRRO_EL0, KVM_SYS(TPIDRRO_EL0),	C_FULL,	N_ALL, 0)		\
	X(TPIDR_EL1,	SYS_TPIDR_EL1,	KVM_SYS(TPIDR_EL1),	C_FULL,	N_ALL, 0)		\
	X(CONTEXTIDR_EL1, SYS_CONTEXTIDR_EL1, KVM_SYS(CONTEXTIDR_EL1), C_CTXID, N_ALL, 0)	\
	X(MAIR_EL1,	SYS_MAIR_EL1,	KVM_SYS(MAIR_EL1),	C_MAIR,	N_ALL, 0)		\
	X(AMAIR_EL1,	SYS_AMAIR_EL1,	KVM_SYS(AMAIR_EL1),	C_FULL,	N_ALL, 0)		\
	X(TCR_EL1,	SYS_TCR_EL1,	KVM_SYS(TCR_EL1),	C_TCR,	N_ALL, 0)		\
	X(TTBR1_EL1,	SYS_TTBR1_EL1,	KVM_SYS(TTBR1_EL1),	C_TTBR1, N_ALL, 0)		\
	X(TTBR0_EL1,	SYS_TTBR0_EL1,	KVM_SYS(TTBR0_EL1),	C_TTBR0, N_ALL, 0)		\
	X(ESR_EL1,	SYS_ESR_EL1,	KVM_SYS(ESR_EL1),	C_ESR,	N_ALL, 0)		\
	X(FAR_EL1,	SYS_FAR_EL1,	KVM_SYS(FAR_EL1),	C_FULL,	N_ALL, 0)		\
	X(PAR_EL1,	SYS_PAR_EL1,	KVM_SYS(PAR_EL1),	C_PAR,	N_ALL, 0)		\
	X(AFSR0_EL1,	SYS_AFSR0_EL1,	KVM_SYS(AFSR0_EL1),	C_FULL,	N_ALL, 0)		\
	X(AFSR1_EL1,	SYS_AFSR1_EL1,	KVM_SYS(AFSR1_EL1),	C_FULL,	N_ALL, 0)		\
	X(CNTKCTL_EL1,	SYS_CNTKCTL_EL1, KVM_SYS(CNTKCTL_EL1),	C_CNTKCTL, N_ALL, 0)		\
	X(ELR_EL1,	SYS_ELR_EL1,	ARM64_CORE_REG(elr_el1), C_FULL, N_ALL, 0)		\
	X(SPSR_EL1,	SYS_SPSR_EL1,	ARM64_CORE_REG(spsr[KVM_SPSR_EL1]), C_SPSR, N_ALL, 0)	\
	X(MDSCR_EL1,	SYS_MDSCR_EL1,	KVM_SYS(MDSCR_EL1),	C_MDSCR, N_ALL, 0)		\
	X(MDCCINT_EL1,	SYS_MDCCINT_EL1, KVM_SYS(MDCCINT_EL1),	C_MDCCINT, N_ALL, 0)		\
	X(SCTLR_EL1,	SYS_SCTLR_EL1,	KVM_SYS(SCTLR_EL1),	C_SCTLR, N_ALL, 0)		\
	X(SP_EL0,	SYS_SP_EL0,	ARM64_CORE_REG(regs.sp), C_FULL, N_ALL, 0)		\
	X(VBAR_EL1,	SYS_VBAR_EL1,	KVM_SYS(VBAR_EL1),	C_VBAR,	N_ALL, 0)		\
	X(CPACR_EL1,	SYS_CPACR_EL1,	KVM_SYS(CPACR_EL1),	C_CPACR, N_ALL, 0)		\
	X(MPIDR_EL1,	SYS_MPIDR_EL1,	KVM_SYS(MPIDR_EL1),	C_RO,	N_ALL, 0)		\
	X(MIDR_EL1,	SYS_MIDR_EL1,	KVM_SYS(MIDR_EL1),	C_RO,	N_ALL, 0)		\
	X(TCR2_EL1,	SYS_TCR2_EL1,	KVM_SYS(TCR2_EL1),	C_TCR2,	N_TCRX, 0)		\
	X(PIR_EL1,	SYS_PIR_EL1,	KVM_SYS(PIR_EL1),	C_FULL,	N_S1PIE, 0)		\
	X(PIRE0_EL1,	SYS_PIRE0_EL1,	KVM_SYS(PIRE0_EL1),	C_FULL,	N_S1PIE, 0)		\
	X(POR_EL0,	SYS_POR_EL0,	KVM_SYS(POR_EL0),	C_FULL,	N_S1POE, 0)		\
	X(POR_EL1,	SYS_POR_EL1,	KVM_SYS(POR_EL1),	C_FULL,	N_S1POE, 0)		\
	X(ZCR_EL1,	SYS_ZCR_EL1,	KVM_SYS(ZCR_EL1),	C_ZCR,	N_SVE, 0)		\
	X(FPMR,		SYS_FPMR,	KVM_SYS(FPMR),		C_FPMR,	N_FPMR, 0)		\
	X(CNTV_CTL_EL0,	SYS_CNTV_CTL_EL0, KVM_REG_ARM_TIMER_CTL, C_TCTL, N_ALL, 0)		\
	X(CNTV_CVAL_EL0, SYS_CNTV_CVAL_EL0, KVM_REG_ARM_TIMER_CVAL, C_FULL, N_ALL, 0)		\
	X(CNTP_CTL_EL0,	SYS_CNTP_CTL_EL0, KVM_REG_ARM_PTIMER_CTL, C_TCTL, N_ALL, 0)		\
	X(CNTP_CVAL_EL0, SYS_CNTP_CVAL_EL0, KVM_REG_ARM_PTIMER_CVAL, C_FULL, N_ALL, 0)		\
	X(ICC_PMR_EL1,	SYS_ICC_PMR_EL1, VGIC_REG,		C_PMR,	N_ALL, 0)		\
	X(ICC_BPR1_EL1,	SYS_ICC_BPR1_EL1, VGIC_REG,		C_BPR,	N_ALL, 0)

#define FZ_DBG(X, n)									\
	X(DBGBVR##n##_EL1, SYS_DBGBVRn_EL1(n), KVM_ARM64_SYS_REG(SYS_DBGBVRn_EL1(n)), C_BVR, N_BRP, n) \
	X(DBGBCR##n##_EL1, SYS_DBGBCRn_EL1(n), KVM_ARM64_SYS_REG(SYS_DBGBCRn_EL1(n)), C_BCR, N_BRP, n) \
	X(DBGWVR##n##_EL1, SYS_DBGWVRn_EL1(n), KVM_ARM64_SYS_REG(SYS_DBGWVRn_EL1(n)), C_WVR, N_WRP, n) \
	X(DBGWCR##n##_EL1, SYS_DBGWCRn_EL1(n), KVM_ARM64_SYS_REG(SYS_DBGWCRn_EL1(n)), C_WCR, N_WRP, n)

#define FZ_REGS(X)									\
	FZ_BASE_REGS(X)									\
	FZ_DBG(X, 0) FZ_DBG(X, 1) FZ_DBG(X, 2) FZ_DBG(X, 3) FZ_DBG(X, 4) FZ_DBG(X, 5)	\
	FZ_DBG(X, 6) FZ_DBG(X, 7) FZ_DBG(X, 8) FZ_DBG(X, 9) FZ_DBG(X, 10) FZ_DBG(X, 11)	\
	FZ_DBG(X, 12) FZ_DBG(X, 13) FZ_DBG(X, 14) FZ_DBG(X, 15)

#define FZ_ENUM(name, enc, id, cls, need, n)	FZ_##name,
enum { FZ_REGS(FZ_ENUM) NR_FZ };
#define FZ_NAME(name, enc, id, cls, need, n)	#name,
static const char *const fz_name[NR_FZ] = { FZ_REGS(FZ_NAME) };
#define FZ_ID(name, enc, id, cls, need, n)	id,
static const uint64_t fz_id[NR_FZ] = { FZ_REGS(FZ_ID) };
#define FZ_CLASS(name, enc, id, cls, need, n)	cls,
static const uint8_t fz_class[NR_FZ] = { FZ_REGS(FZ_CLASS) };
#define FZ_NEED(name, enc, id, cls, need, n)	need,
static const uint8_t fz_need[NR_FZ] = { FZ_REGS(FZ_NEED) };
#define FZ_N(name, enc, id, cls, need, n)	n,
static const uint8_t fz_n[NR_FZ] = { FZ_REGS(FZ_N) };

_Static_assert(NR_FZ <= 128, "the held/present bitmaps are two words");

static inline bool bit_test(const uint64_t *map, int i)
{
	return map[i / 64] & (1ULL << (i % 64));
}

static inline void bit_set(uint64_t *map, int i)
{
	map[i / 64] |= 1ULL << (i % 64);
}

/* Guest: the register's value. */
static uint64_t fz_read(int r)
{
	switch (r) {
#define FZ_READ(name, enc, id, cls, need, n)	case FZ_##name: return read_sysreg_s(enc);
	FZ_REGS(FZ_READ)
	}
	return 0;
}

/* Guest: write it (never called for C_RO registers). */
static void fz_write(int r, uint64_t v)
{
	switch (r) {
#define FZ_WRITE(name, enc, id, cls, need, n)	case FZ_##name: write_sysreg_s(v, enc); break;
	FZ_REGS(FZ_WRITE)
	}
	isb();
}

/* What the guest's check compares: the timers' ISTATUS is theirs, not the guest's. */
static inline uint64_t fz_mask(int r)
{
	return fz_class[r] == C_TCTL ? TIMER_CTL_MASK : ~0ULL;
}

/* Values the generators keep from the registers as the library set them up. */
struct fz_base {
	uint64_t mair, tcr, sctlr, cpacr, ttbr0, vbar[2];
};

/*
 * A value for register @r: written by @tag (TAG_GUEST or TAG_VMM) for @owner,
 * @serial to tell successive values apart, @x random bits. Values with room
 * carry all of it (fz_describe() decodes them); narrow ones what fits.
 */
static uint64_t fz_gen(int r, uint64_t tag, uint64_t owner, uint64_t serial, uint64_t x,
		       const struct fz_base *b)
{
	static const uint8_t attrs[8] = { 0x00, 0x04, 0x08, 0x0c, 0x44, 0xaa, 0xbb, 0xff };
	uint64_t full = tag << 56 | (owner & 0xff) << 48 | (uint64_t)(r & 0xff) << 40 |
			(serial & GENMASK_ULL(39, 0));
	uint64_t ident = (owner & 0xff) << 36 | (uint64_t)(r & 0xff) << 28 |
			 (serial & GENMASK_ULL(27, 0));

	switch (fz_class[r]) {
	case C_FULL:
		return full;
	case C_TTBR1:
		return full & ~TTBR_CNP;
	case C_CTXID:
		return (tag << 24 | (owner & 0xff) << 16 | (serial & 0xffff)) & 0xffffffff;
	case C_MAIR:
		return (b->mair & MAIR_LIB_ATTRS) | (uint64_t)attrs[x % 8] << 48 |
		       (uint64_t)attrs[(x >> 3) % 8] << 56;
	case C_TCR:
		return (b->tcr & ~(TCR_T1SZ_MASK | TCR_TBI1)) | TCR_EPD1 |
		       (16 + (x >> 1) % 24) << 16 | ((x & 1) ? TCR_TBI1 : 0);
	case C_TTBR0:
		return (b->ttbr0 & ~TTBR_ASID8) | (x & 0xff) << 48;
	case C_SCTLR:
		return (b->sctlr & ~SCTLR_EL0_BITS) | (x & SCTLR_EL0_BITS);
	case C_ESR:
		return (uint64_t)ESR_EC_DABT << ESR_EC_SHIFT | ESR_IL | (owner & 0xff) << 16 |
		       (serial & 0xffff);
	case C_PAR:	/* F = 0: ATTR, PA[47:12] carrying owner and serial */
		return 0x44ULL << 56 | (owner & 0xff) << 40 | (serial & 0xfffffff) << 12 | PAR_RES1;
	case C_CNTKCTL:
		return (x & 0xf) << CNTKCTL_EVNTI_SHIFT | ((x >> 4) & 3) * CNTKCTL_EL0PCTEN |
		       ((x >> 6) & 3) << CNTKCTL_EL0VTEN_SHIFT;
	case C_SPSR:
		return (x & 0xf) << 28 | DAIF_MASK | PSR_MODE_EL1h;
	case C_MDSCR:
		return ((x & 1) ? MDSCR_EL1_TDCC : 0) | ((x & 2) ? MDSCR_EL1_KDE : 0) |
		       ((x & 4) ? MDSCR_EL1_MDE : 0);
	case C_MDCCINT:
		return ((x & 1) ? MDCCINT_EL1_RX : 0) | ((x & 2) ? MDCCINT_EL1_TX : 0);
	case C_FPMR:
		return ((owner & 0xff) << 24 & FPMR_NSCALE) | ((serial & 0x7f) << 16 & FPMR_LSCALE) |
		       (x & (FPMR_LSCALE2 | FPMR_OSC | FPMR_OSM | FPMR_F8D | FPMR_F8S2 | FPMR_F8S1));
	case C_VBAR:
		return b->vbar[x & 1];
	case C_CPACR:
		return (b->cpacr & ~CPACR_ELx_TTA) | ((x & 1) ? CPACR_ELx_TTA : 0);
	case C_TCR2:
		return ((x & 1) ? TCR2_EL1x_DisCH0 : 0) | ((x & 2) ? TCR2_EL1x_DisCH1 : 0);
	case C_TCTL: {
		static const uint64_t ctl[3] = { 0, CTL_IMASK, CTL_ENABLE | CTL_IMASK };

		return ctl[x % 3];
	}
	case C_PMR:
		return FZ_IRQ_PRIO + 8 + 8 * (x % 15);
	case C_BPR:
		return 3 + x % 5;
	case C_BVR:
		return (ident << 2) & GENMASK_ULL(47, 2);
	case C_WVR:
		return (ident << 3) & GENMASK_ULL(47, 3);
	case C_BCR:
		return (1 + x % 3) << DBGBCR_PMC_SHIFT | DBGBCR_BAS_ALL |
		       (owner & 0xf) << DBGBCR_LBN_SHIFT;
	case C_WCR:
		return (1 + x % 3) << DBGWCR_PAC_SHIFT | (1 + (x >> 2) % 3) << DBGWCR_LSC_SHIFT |
		       DBGWCR_BAS_ALL | (owner & 0xf) << DBGWCR_LBN_SHIFT;
	default:
		return 0;
	}
}

/* The VMM may write registers of these classes with KVM_SET_ONE_REG. */
static inline bool fz_vmm_settable(int r)
{
	switch (fz_class[r]) {
	case C_ZCR: case C_RO: case C_PMR: case C_BPR: case C_CPACR:
		return false;
	default:
		return fz_id[r] != VGIC_REG;
	}
}

/* ---- FP/SIMD and SVE values ---- */

/*
 * One register file at the largest vector length: Z0-Z31 256 bytes apart (the
 * V registers are their low 16 bytes), P0-P15 32 bytes apart, FFR, FPSR, FPCR.
 * What lies beyond the vector length in use is what the owner last left there.
 */
struct fpbuf {
	uint8_t z[32][VL_MAX];
	uint8_t p[16][PL_MAX];
	uint8_t ffr[PL_MAX];
	uint64_t fpsr, fpcr;
} __aligned(16);

#define FB_P	8192
#define FB_FPSR	(FB_P + 16 * PL_MAX + PL_MAX)
_Static_assert(offsetof(struct fpbuf, p) == FB_P, "fpbuf layout");
_Static_assert(offsetof(struct fpbuf, fpsr) == FB_FPSR, "fpbuf layout");

/* A 64-bit lane of a Z (or V) register: tag, owner, register, lane, serial. */
static inline uint64_t lane_val(uint64_t tag, uint64_t owner, int reg, int lane, uint64_t serial)
{
	return tag << 56 | (owner & 0xff) << 48 | (uint64_t)(reg & 0x3f) << 42 |
	       (uint64_t)(lane & 0x3f) << 36 | (serial & GENMASK_ULL(35, 0));
}

static inline uint8_t pred_byte(uint64_t tag, uint64_t owner, int reg, int byte, uint64_t serial)
{
	return mix64(tag << 56 ^ owner << 48 ^ (uint64_t)reg << 40 ^ (uint64_t)byte << 32 ^ serial);
}

static inline void set_lane(uint8_t *z, int lane, uint64_t v)
{
	memcpy(z + 8 * lane, &v, 8);
}

static inline uint64_t get_lane(const uint8_t *z, int lane)
{
	uint64_t v;

	memcpy(&v, z + 8 * lane, 8);
	return v;
}

/* Z register @n, bytes [0, @vl), of @owner's. */
static void fill_z(struct fpbuf *f, int n, size_t vl, uint64_t tag, uint64_t owner, uint64_t serial)
{
	for (size_t l = 0; l < vl / 8; l++)
		set_lane(f->z[n], l, lane_val(tag, owner, n, l, serial));
}

static void fill_p(struct fpbuf *f, int n, size_t vl, uint64_t tag, uint64_t owner, uint64_t serial)
{
	for (size_t b = 0; b < vl / 8; b++)
		f->p[n][b] = pred_byte(tag, owner, n, b, serial);
}

/* FFR: the first @k predicate bits set, the rest of @vl/8 bytes clear (monotonic). */
static void fill_ffr(struct fpbuf *f, size_t vl, size_t k)
{
	for (size_t b = 0; b < vl / 8; b++)
		f->ffr[b] = k >= 8 * (b + 1) ? 0xff : k > 8 * b ? (1 << (k - 8 * b)) - 1 : 0;
}

static uint64_t gen_fpsr(uint64_t x)
{
	return x & FPSR_FLAGS;
}

static uint64_t gen_fpcr(uint64_t x)
{
	return (x & FPCR_CTRL) | ((x >> 8) & 3) << FPCR_RMODE_SHIFT;
}

/* ---- the exits ---- */

enum fz_kind {
	K_HVC, K_MMIO_W, K_MMIO_R, K_GICD, K_WFI_TIMER, K_WFI_SGI, K_IDREG, K_DBGREG,
	K_S2FAULT, K_LATE, K_BRK, K_HWBP, K_UNDEF, K_SPIN, NR_KINDS
};

static const char *const kind_name[NR_KINDS] = {
	"hvc", "mmio-write", "mmio-read", "gicd-read", "wfi-timer", "wfi-sgi", "id-reg",
	"debug-reg", "stage2-fault", "late-memslot", "brk", "hw-breakpoint", "undef", "spin",
};

/* How often each is picked (out of their sum). */
static const uint8_t kind_weight[NR_KINDS] = {
	[K_HVC] = 3, [K_MMIO_W] = 4, [K_MMIO_R] = 2, [K_GICD] = 2, [K_WFI_TIMER] = 2,
	[K_WFI_SGI] = 2, [K_IDREG] = 2, [K_DBGREG] = 2, [K_S2FAULT] = 2, [K_LATE] = 2,
	[K_BRK] = 1, [K_HWBP] = 1, [K_UNDEF] = 1, [K_SPIN] = 1,
};

/*
 * How the round loads and stores the FP/SIMD state: V0-V31 (LDR/STR Q) on an
 * FP/SIMD-only vCPU; on an SVE one Z/P/FFR loaded and stored with SVE
 * instructions (the first use after the exit an SVE one), or stored with
 * STR Q first (an FP/SIMD first use), or V0-V31 loaded with LDR Q (which zeroes
 * Z[VL-1:128]; P and FFR kept from earlier rounds) and stored with SVE.
 */
enum fz_variant { VAR_FP, VAR_SVE, VAR_SVE_QFIRST, VAR_QLOAD, NR_VARIANTS };
static const char *const variant_name[NR_VARIANTS] = { "fp", "sve", "sve+q-first", "q-load" };

/* What a stub reads and writes (offsets used by the assembly below). */
struct stub_args {
	uint64_t fid, mmio_w, mmio_r, tag, gicd, ticks, sgi1r, scratch;
	uint64_t late, dbgval, mdscr_on, bcr_on, spin, new_zcr_on, new_zcr, sp0;
	uint64_t sp1, res, repeat;
};

#define SA_FID		0
#define SA_MMIO_W	8
#define SA_MMIO_R	16
#define SA_TAG		24
#define SA_GICD		32
#define SA_TICKS	40
#define SA_SGI1R	48
#define SA_SCRATCH	56
#define SA_LATE		64
#define SA_DBGVAL	72
#define SA_MDSCR_ON	80
#define SA_BCR_ON	88
#define SA_SPIN		96
#define SA_NEW_ZCR_ON	104
#define SA_NEW_ZCR	112
#define SA_SP0		120
#define SA_SP1		128
#define SA_RES		136
#define SA_REPEAT	144
_Static_assert(offsetof(struct stub_args, spin) == SA_SPIN, "stub_args layout");
_Static_assert(offsetof(struct stub_args, new_zcr) == SA_NEW_ZCR, "stub_args layout");
_Static_assert(offsetof(struct stub_args, res) == SA_RES, "stub_args layout");
_Static_assert(offsetof(struct stub_args, repeat) == SA_REPEAT, "stub_args layout");

/*
 * One per vCPU, in the guest's memory (fz[] below); the VMM reaches it through
 * its HVA at exits to userspace.
 */
struct fz_vcpu {
	/* The VMM's, before the guest starts. */
	uint64_t seed, vm, idx, owner, nvcpus, sve, max_vl, vtimer_irq;
	uint64_t scratch_gva, late_gva, late_tag;
	/* The VMM sets it to end the run; the guest looks at every round. */
	uint64_t stop;
	/* The guest's. */
	uint64_t started, round, kind, variant, in_round, cur_vl, brps, wrps;
	uint64_t present[2], held[2];	/* registers the vCPU has; those that hold values */
	uint64_t rounds_checked, exits_checked, mismatches, digest;
	uint64_t kinds[NR_KINDS], variants[NR_VARIANTS], vl_changes;
	struct fz_base base;
	uint64_t gicd_typer, pfr0;
	uint64_t want_sys[NR_FZ];	/* what each register holds; the VMM updates it too */
	struct stub_args args;
	struct fpbuf want;		/* what the FP registers hold; the VMM updates it too */
	struct fpbuf got, got2;		/* stored after the exit; after the VL change */
	__uint128_t got_q[32];		/* STR Q first (VAR_SVE_QFIRST) */
} __aligned(4096);

static struct fz_vcpu fz[MAX_VCPUS];

/* ---- guest: the stubs, reached with BLR from the round; x0 = &args, clobber x0-x17 ---- */

#define STR_(x)	__stringify(x)

asm(
"	.pushsection .text\n"
"	.balign 4\n"
"fz_stub_hvc:\n"
"	mov	x9, x0\n"
"	ldr	x0, [x9, #" STR_(SA_FID) "]\n"
"	hvc	#0\n"
"	str	x0, [x9, #" STR_(SA_RES) "]\n"
"	ret\n"
"fz_stub_mmio_w:\n"
"	ldr	x1, [x0, #" STR_(SA_MMIO_W) "]\n"
"	ldr	x2, [x0, #" STR_(SA_TAG) "]\n"
"	str	x2, [x1]\n"
"	ret\n"
"fz_stub_mmio_r:\n"
"	ldr	x1, [x0, #" STR_(SA_MMIO_R) "]\n"
"	ldr	x2, [x1]\n"
"	str	x2, [x0, #" STR_(SA_RES) "]\n"
"	ret\n"
"fz_stub_gicd:\n"
"	ldr	x1, [x0, #" STR_(SA_GICD) "]\n"
"	ldr	w2, [x1]\n"
"	str	x2, [x0, #" STR_(SA_RES) "]\n"
"	ret\n"
/* The virtual timer armed, WFI until its condition holds, then masked. */
"fz_stub_wfi_timer:\n"
"	msr	cntv_ctl_el0, xzr\n"
"	isb\n"
"	mrs	x1, cntvct_el0\n"
"	ldr	x2, [x0, #" STR_(SA_TICKS) "]\n"
"	add	x1, x1, x2\n"
"	msr	cntv_cval_el0, x1\n"
"	str	x1, [x0, #" STR_(SA_RES) "]\n"
"	mov	x3, #" STR_(CTL_ENABLE) "\n"
"	msr	cntv_ctl_el0, x3\n"
"	isb\n"
"1:	wfi\n"
"	mrs	x3, cntv_ctl_el0\n"
"	tst	x3, #" STR_(CTL_ISTATUS) "\n"
"	b.eq	1b\n"
"	mov	x3, #" STR_(CTL_IMASK) "\n"
"	msr	cntv_ctl_el0, x3\n"
"	isb\n"
"	ret\n"
/* An SGI to itself (trapped), WFI, then every pending interrupt acknowledged. */
"fz_stub_wfi_sgi:\n"
"	ldr	x1, [x0, #" STR_(SA_SGI1R) "]\n"
	__msr_s(SYS_ICC_SGI1R_EL1, "x1")
"	isb\n"
"	wfi\n"
"	mov	x4, #0\n"
"	mov	x5, #8\n"
"2:\n"
	__mrs_s("x2", SYS_ICC_IAR1_EL1)
"	and	x3, x2, #0xffffff\n"
"	cmp	x3, #" STR_(IAR_SPURIOUS) "\n"
"	b.eq	3f\n"
	__msr_s(SYS_ICC_EOIR1_EL1, "x2")
"	mov	x6, #1\n"
"	lsl	x6, x6, x3\n"
"	orr	x4, x4, x6\n"
"	subs	x5, x5, #1\n"
"	b.ne	2b\n"
"3:	isb\n"
"	str	x4, [x0, #" STR_(SA_RES) "]\n"
"	ret\n"
"fz_stub_idreg:\n"
	__mrs_s("x1", SYS_ID_AA64PFR0_EL1)
"	str	x1, [x0, #" STR_(SA_RES) "]\n"
"	ret\n"
/* A debug register written and another read: trapped while the debug state is clean. */
"fz_stub_dbgreg:\n"
"	ldr	x1, [x0, #" STR_(SA_DBGVAL) "]\n"
	__msr_s(SYS_DBGBVRn_EL1(1), "x1")
	__mrs_s("x2", SYS_DBGWVRn_EL1(0))
"	str	x2, [x0, #" STR_(SA_RES) "]\n"
"	ret\n"
"fz_stub_s2fault:\n"
"	ldr	x1, [x0, #" STR_(SA_SCRATCH) "]\n"
"	ldr	x2, [x0, #" STR_(SA_TAG) "]\n"
"	str	x2, [x1]\n"
"	ldr	x3, [x1]\n"
"	str	x3, [x0, #" STR_(SA_RES) "]\n"
"	ret\n"
"fz_stub_late:\n"
"	ldr	x1, [x0, #" STR_(SA_LATE) "]\n"
"	ldr	x2, [x1]\n"
"	str	x2, [x0, #" STR_(SA_RES) "]\n"
"	ret\n"
"fz_stub_brk:\n"
"	.global	fz_brk_insn\n"
"fz_brk_insn:\n"
"	brk	#" STR_(BRK_IMM) "\n"
"	ret\n"
/*
 * Breakpoint 0 on fz_hwbp_insn, MDSCR_EL1.KDE|MDE and PSTATE.D clear for that
 * one instruction: the guest's vector disables the breakpoint and returns to it.
 */
"fz_stub_hwbp:\n"
	__mrs_s("x3", SYS_MDSCR_EL1)
"	ldr	x4, [x0, #" STR_(SA_MDSCR_ON) "]\n"
"	orr	x4, x3, x4\n"
	__msr_s(SYS_MDSCR_EL1, "x4")
"	adr	x1, fz_hwbp_insn\n"
	__msr_s(SYS_DBGBVRn_EL1(0), "x1")
"	ldr	x2, [x0, #" STR_(SA_BCR_ON) "]\n"
	__msr_s(SYS_DBGBCRn_EL1(0), "x2")
"	isb\n"
"	msr	daifclr, #8\n"		/* D */
"	isb\n"
"	.global	fz_hwbp_insn\n"
"fz_hwbp_insn:\n"
"	nop\n"
"	msr	daifset, #8\n"
	__msr_s(SYS_MDSCR_EL1, "x3")
"	isb\n"
"	ret\n"
/* PMSELR_EL0 with no vPMU: KVM injects an UNDEF. */
"fz_stub_undef:\n"
"	.global	fz_undef_insn\n"
"fz_undef_insn:\n"
	__mrs_s("x1", SYS_PMSELR_EL0)
"	ret\n"
"fz_stub_spin:\n"
"	ldr	x1, [x0, #" STR_(SA_SPIN) "]\n"
"4:	subs	x1, x1, #1\n"
"	b.ne	4b\n"
"	ret\n"
/*
 * The synchronous exception vector of the guest's tables: the BRK and the
 * UNDEF return past their instruction, the breakpoint is disabled and its
 * instruction run again; anything else goes on to the library's vector (which
 * reports it to the VMM as unhandled). x16/x17 are saved on the stack.
 */
"fz_sync_el1h:\n"
"	stp	x16, x17, [sp, #-16]!\n"
"	mrs	x16, elr_el1\n"
"	adr	x17, fz_brk_insn\n"
"	cmp	x16, x17\n"
"	b.eq	5f\n"
"	adr	x17, fz_undef_insn\n"
"	cmp	x16, x17\n"
"	b.eq	5f\n"
"	adr	x17, fz_hwbp_insn\n"
"	cmp	x16, x17\n"
"	b.eq	6f\n"
"	ldp	x16, x17, [sp], #16\n"
"	b	vectors + 0x200\n"
"5:	add	x16, x16, #4\n"
"	msr	elr_el1, x16\n"
"	ldp	x16, x17, [sp], #16\n"
"	eret\n"
"6:\n"
	__msr_s(SYS_DBGBCRn_EL1(0), "xzr")
"	ldp	x16, x17, [sp], #16\n"
"	eret\n"
/* Two copies, for VBAR_EL1 to have two values. */
"	.macro	fz_vectors name\n"
"	.balign	0x800\n"
"	.global	\\name\n"
"\\name:\n"
"	.irp	off, 0x000, 0x080, 0x100, 0x180\n"
"	.balign	0x80\n"
"	b	vectors + \\off\n"
"	.endr\n"
"	.balign	0x80\n"
"	b	fz_sync_el1h\n"
"	.irp	off, 0x280, 0x300, 0x380, 0x400, 0x480, 0x500, 0x580, 0x600, 0x680, 0x700, 0x780\n"
"	.balign	0x80\n"
"	b	vectors + \\off\n"
"	.endr\n"
"	.endm\n"
"	fz_vectors fz_vectors_a\n"
"	fz_vectors fz_vectors_b\n"
"	.popsection\n");

extern char fz_stub_hvc[], fz_stub_mmio_w[], fz_stub_mmio_r[], fz_stub_gicd[];
extern char fz_stub_wfi_timer[], fz_stub_wfi_sgi[], fz_stub_idreg[], fz_stub_dbgreg[];
extern char fz_stub_s2fault[], fz_stub_late[], fz_stub_brk[], fz_stub_hwbp[];
extern char fz_stub_undef[], fz_stub_spin[];
extern char fz_brk_insn[], fz_hwbp_insn[], fz_undef_insn[], fz_vectors_a[], fz_vectors_b[];

static void *const kind_stub[NR_KINDS] = {
	[K_HVC] = fz_stub_hvc, [K_MMIO_W] = fz_stub_mmio_w, [K_MMIO_R] = fz_stub_mmio_r,
	[K_GICD] = fz_stub_gicd, [K_WFI_TIMER] = fz_stub_wfi_timer,
	[K_WFI_SGI] = fz_stub_wfi_sgi, [K_IDREG] = fz_stub_idreg, [K_DBGREG] = fz_stub_dbgreg,
	[K_S2FAULT] = fz_stub_s2fault, [K_LATE] = fz_stub_late, [K_BRK] = fz_stub_brk,
	[K_HWBP] = fz_stub_hwbp, [K_UNDEF] = fz_stub_undef, [K_SPIN] = fz_stub_spin,
};

/* ---- the rounds: load, exit, store (and change VL, store again), one asm statement ---- */

#define Q_AT(op, n, base)	op " q" #n ", [" base ", #(" #n " * 256)]\n"
#define EACH_Q(op, base)							\
	Q_AT(op, 0, base) Q_AT(op, 1, base) Q_AT(op, 2, base) Q_AT(op, 3, base)	\
	Q_AT(op, 4, base) Q_AT(op, 5, base) Q_AT(op, 6, base) Q_AT(op, 7, base)	\
	Q_AT(op, 8, base) Q_AT(op, 9, base) Q_AT(op, 10, base) Q_AT(op, 11, base)	\
	Q_AT(op, 12, base) Q_AT(op, 13, base) Q_AT(op, 14, base) Q_AT(op, 15, base)	\
	Q_AT(op, 16, base) Q_AT(op, 17, base) Q_AT(op, 18, base) Q_AT(op, 19, base)	\
	Q_AT(op, 20, base) Q_AT(op, 21, base) Q_AT(op, 22, base) Q_AT(op, 23, base)	\
	Q_AT(op, 24, base) Q_AT(op, 25, base) Q_AT(op, 26, base) Q_AT(op, 27, base)	\
	Q_AT(op, 28, base) Q_AT(op, 29, base) Q_AT(op, 30, base) Q_AT(op, 31, base)

/* V0-V31 16 bytes apart (got_q), for the STR Q first store. */
#define Q16_AT(n, base)		"str q" #n ", [" base ", #(" #n " * 16)]\n"
#define STORE_Q16(base)								\
	Q16_AT(0, base) Q16_AT(1, base) Q16_AT(2, base) Q16_AT(3, base)		\
	Q16_AT(4, base) Q16_AT(5, base) Q16_AT(6, base) Q16_AT(7, base)		\
	Q16_AT(8, base) Q16_AT(9, base) Q16_AT(10, base) Q16_AT(11, base)	\
	Q16_AT(12, base) Q16_AT(13, base) Q16_AT(14, base) Q16_AT(15, base)	\
	Q16_AT(16, base) Q16_AT(17, base) Q16_AT(18, base) Q16_AT(19, base)	\
	Q16_AT(20, base) Q16_AT(21, base) Q16_AT(22, base) Q16_AT(23, base)	\
	Q16_AT(24, base) Q16_AT(25, base) Q16_AT(26, base) Q16_AT(27, base)	\
	Q16_AT(28, base) Q16_AT(29, base) Q16_AT(30, base) Q16_AT(31, base)

#define FPSR_FPCR(op, base)							\
	"add x10, " base ", #" STR_(FB_P) "\n"					\
	"add x10, x10, #(" STR_(FB_FPSR) " - " STR_(FB_P) ")\n"			\
	op

#define LOAD_FPSR_FPCR(base)							\
	FPSR_FPCR("ldr x9, [x10]\n msr fpsr, x9\n ldr x9, [x10, #8]\n msr fpcr, x9\n", base)
#define STORE_FPSR_FPCR(base)							\
	FPSR_FPCR("mrs x9, fpsr\n str x9, [x10]\n mrs x9, fpcr\n str x9, [x10, #8]\n", base)

#define Z_STEP(op, n)	op " z" #n ", [x10]\n add x10, x10, #" STR_(VL_MAX) "\n"
#define P_STEP(op, n)	op " p" #n ", [x10]\n add x10, x10, #" STR_(PL_MAX) "\n"
#define EACH_Z(op)								\
	Z_STEP(op, 0) Z_STEP(op, 1) Z_STEP(op, 2) Z_STEP(op, 3) Z_STEP(op, 4)	\
	Z_STEP(op, 5) Z_STEP(op, 6) Z_STEP(op, 7) Z_STEP(op, 8) Z_STEP(op, 9)	\
	Z_STEP(op, 10) Z_STEP(op, 11) Z_STEP(op, 12) Z_STEP(op, 13)		\
	Z_STEP(op, 14) Z_STEP(op, 15) Z_STEP(op, 16) Z_STEP(op, 17)		\
	Z_STEP(op, 18) Z_STEP(op, 19) Z_STEP(op, 20) Z_STEP(op, 21)		\
	Z_STEP(op, 22) Z_STEP(op, 23) Z_STEP(op, 24) Z_STEP(op, 25)		\
	Z_STEP(op, 26) Z_STEP(op, 27) Z_STEP(op, 28) Z_STEP(op, 29)		\
	Z_STEP(op, 30) Z_STEP(op, 31)
#define EACH_P(op)								\
	P_STEP(op, 0) P_STEP(op, 1) P_STEP(op, 2) P_STEP(op, 3) P_STEP(op, 4)	\
	P_STEP(op, 5) P_STEP(op, 6) P_STEP(op, 7) P_STEP(op, 8) P_STEP(op, 9)	\
	P_STEP(op, 10) P_STEP(op, 11) P_STEP(op, 12) P_STEP(op, 13)		\
	P_STEP(op, 14) P_STEP(op, 15)

/* Z0-Z31, FFR (through P0), P0-P15, FPSR, FPCR at the current VL. */
#define LOAD_SVE(base)								\
	".arch_extension sve\n"							\
	"mov x10, " base "\n" EACH_Z("ldr")					\
	"add x11, x10, #(16 * " STR_(PL_MAX) ")\n ldr p0, [x11]\n wrffr p0.b\n"	\
	EACH_P("ldr") LOAD_FPSR_FPCR(base)
/* P0 is read back after RDFFR used it, so that it still holds its value. */
#define STORE_SVE(base)								\
	".arch_extension sve\n"							\
	"mov x10, " base "\n" EACH_Z("str") EACH_P("str")			\
	"rdffr p0.b\n str p0, [x10]\n"						\
	"add x11, " base ", #" STR_(FB_P) "\n ldr p0, [x11]\n"			\
	STORE_FPSR_FPCR(base)

#define LOAD_Q(base)	EACH_Q("ldr", base) LOAD_FPSR_FPCR(base)
#define STORE_Q(base)	EACH_Q("str", base) STORE_FPSR_FPCR(base)

/* The exit: SP around it, x0 = the stub's arguments. */
#define CALL_STUB								\
	"mov x9, sp\n str x9, [x22, #" STR_(SA_SP0) "]\n"			\
	"ldr x25, [x22, #" STR_(SA_REPEAT) "]\n"				\
	"7: mov x0, x22\n blr x23\n subs x25, x25, #1\n b.hi 7b\n"		\
	"mov x9, sp\n str x9, [x22, #" STR_(SA_SP1) "]\n"

/* After the store: ZCR_EL1 written if asked, then everything stored again (got2). */
#define VL_CHANGE								\
	"ldr x9, [x22, #" STR_(SA_NEW_ZCR_ON) "]\n cbz x9, 8f\n"		\
	"ldr x9, [x22, #" STR_(SA_NEW_ZCR) "]\n"					\
	__msr_s(SYS_ZCR_EL1, "x9") "isb\n" STORE_SVE("x21") "8:\n"

#define ROUND_CLOBBERS								\
	"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10",	\
	"x11", "x12", "x13", "x14", "x15", "x16", "x17", "x25", "x30",		\
	"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",	\
	"v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20",	\
	"v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30",	\
	"v31", "cc", "memory"

static void guest_round(struct fz_vcpu *s, int variant, void *stub)
{
	register struct fpbuf *want asm("x19") = &s->want;
	register struct fpbuf *got asm("x20") = &s->got;
	register struct fpbuf *got2 asm("x21") = &s->got2;
	register struct stub_args *args asm("x22") = &s->args;
	register void *fn asm("x23") = stub;
	register __uint128_t *gq asm("x24") = s->got_q;

#define ROUND(text)								\
	asm volatile(text : : "r"(want), "r"(got), "r"(got2), "r"(args), "r"(fn), "r"(gq) \
		     : ROUND_CLOBBERS)
	switch (variant) {
	case VAR_FP:
		ROUND(LOAD_Q("x19") CALL_STUB STORE_Q("x20"));
		break;
	case VAR_SVE:
		ROUND(LOAD_SVE("x19") CALL_STUB STORE_SVE("x20") VL_CHANGE);
		break;
	case VAR_SVE_QFIRST:
		ROUND(LOAD_SVE("x19") CALL_STUB STORE_Q16("x24") STORE_SVE("x20") VL_CHANGE);
		break;
	case VAR_QLOAD:
		ROUND(LOAD_Q("x19") CALL_STUB STORE_SVE("x20") VL_CHANGE);
		break;
	}
#undef ROUND
}

/* ---- mismatches: what the guest reports (ucall) and the VMM prints ---- */

#define FZ_MISMATCH	0xf0220000ULL	/* args[0] of the guest's reports */

/* What a mismatch is in: the register class, its number, the 8-byte chunk. */
enum { RC_SYS, RC_Z, RC_V, RC_P, RC_FFR, RC_FPSR, RC_FPCR, RC_Q, RC_SP, RC_EXIT, RC_SPSR_MODE,
       RC_ESR_EC, RC_HOST_V, RC_HOST_FPSR, RC_HOST_FPCR, RC_HOST_TPIDR, RC_HOST_TPIDRRO,
       RC_HOST_Z, RC_HOST_P, RC_HOST_FFR };
#define CODE(rc, n, chunk)	((uint64_t)(rc) << 32 | (uint64_t)(n) << 16 | (chunk))

/* When: after the exit, after the VL change, by the VMM, at the start (probe). */
enum { PH_EXIT, PH_VL, PH_VMM, PH_INIT, PH_HOST };
static const char *const phase_name[] = { "after the exit", "after the VL change",
	"KVM_GET_ONE_REG at the exit", "at the start", "host thread" };

#define FL_OR_ZERO	1	/* 0 was accepted too (bytes beyond an earlier VL) */

/*
 * The next 8-byte chunk, from @from on, of @len bytes whose bytes break the
 * rule: below @exact equal to @want; below @orzero 0 or @want (what lies beyond
 * the VL the owner used: the architecture zeroes or keeps it); from @orzero on
 * 0. Its expected and actual bytes in @w and @g. -1 if none.
 */
static int bad_chunk(const uint8_t *want, const uint8_t *got, size_t len, size_t exact,
		     size_t orzero, size_t from, uint64_t *w, uint64_t *g, uint64_t *flags)
{
	for (size_t c = from; 8 * c < len; c++) {
		bool bad = false;

		*w = *g = 0;
		*flags = 0;
		for (size_t i = 8 * c; i < 8 * c + 8 && i < len; i++) {
			uint8_t wb = i < orzero ? want[i] : 0, gb = got[i];

			if (i < exact)
				bad |= gb != wb;
			else if (i < orzero)
				bad |= gb && gb != wb, *flags = FL_OR_ZERO;
			else
				bad |= gb != 0;
			*w |= (uint64_t)wb << (8 * (i % 8));
			*g |= (uint64_t)gb << (8 * (i % 8));
		}
		if (bad)
			return c;
	}
	return -1;
}

static void guest_report(struct fz_vcpu *s, uint64_t code, uint64_t want, uint64_t got,
			 uint64_t phase, uint64_t flags)
{
	if (s->mismatches++ >= MAX_REPORTS)
		return;
	ucall(UCALL_SYNC, 7, FZ_MISMATCH, code, want, got, s->round,
	      s->kind | s->variant << 8 | phase << 16, flags);
}

static void guest_cmp(struct fz_vcpu *s, int rc, int n, const uint8_t *want, const uint8_t *got,
		      size_t len, size_t exact, size_t orzero, int phase)
{
	uint64_t w, g, fl;

	for (int c = 0; (c = bad_chunk(want, got, len, exact, orzero, c, &w, &g, &fl)) >= 0; c++)
		guest_report(s, CODE(rc, n, c), w, g, phase, fl);
}

/* ---- guest ---- */

static inline uint64_t guest_rdvl(void)
{
	uint64_t vl;

	asm volatile(".arch_extension sve\n rdvl %0, #1" : "=r"(vl));
	return vl;
}

static bool is_user_kind(int kind)
{
	return kind == K_MMIO_W || kind == K_MMIO_R;
}

/*
 * Whether the exit always leaves the guest: the others may not (BRK and the
 * breakpoint never do; the debug register access traps only while the debug
 * state is clean; the stage-2 and memslot accesses fault only after the VMM
 * dropped the page; the spin only if the host interrupts it).
 */
static bool always_exits(int kind)
{
	switch (kind) {
	case K_HVC: case K_MMIO_W: case K_MMIO_R: case K_GICD: case K_WFI_TIMER:
	case K_WFI_SGI: case K_IDREG: case K_UNDEF:
		return true;
	default:
		return false;
	}
}

/* Kinds the round may take several times before its check. */
static bool repeatable(int kind)
{
	return kind == K_HVC || kind == K_GICD || kind == K_IDREG;
}

static bool held(struct fz_vcpu *s, int r)
{
	return bit_test(s->held, r);
}

static bool kind_ok(struct fz_vcpu *s, int kind)
{
	switch (kind) {
	case K_BRK: case K_UNDEF:
		return held(s, FZ_ESR_EL1) && held(s, FZ_ELR_EL1) && held(s, FZ_SPSR_EL1);
	case K_HWBP:
		return held(s, FZ_ESR_EL1) && held(s, FZ_ELR_EL1) && held(s, FZ_SPSR_EL1) &&
		       held(s, FZ_DBGBVR0_EL1) && held(s, FZ_DBGBCR0_EL1);
	case K_DBGREG:
		return held(s, FZ_DBGBVR1_EL1) && bit_test(s->present, FZ_DBGWVR0_EL1);
	default:
		return true;
	}
}

static int pick_kind(struct fz_vcpu *s, struct rng *rng, bool force_user)
{
	unsigned int total = 0, x;

	if (force_user)
		return one_in(rng, 2) ? K_MMIO_W : K_MMIO_R;
	for (int k = 0; k < NR_KINDS; k++)
		total += kind_ok(s, k) ? kind_weight[k] : 0;
	x = rnd_below(rng, total);
	for (int k = 0; k < NR_KINDS; k++) {
		if (!kind_ok(s, k))
			continue;
		if (x < kind_weight[k])
			return k;
		x -= kind_weight[k];
	}
	return K_HVC;
}

/*
 * New FP/SIMD (or SVE) values of the guest's, each register at random; P and
 * FFR only if @preds (the round loads them).
 */
static void guest_new_fp(struct fz_vcpu *s, struct rng *rng, uint64_t serial, bool all, bool preds)
{
	size_t vl = s->sve ? s->cur_vl : 16;

	for (int n = 0; n < 32; n++)
		if (all || one_in(rng, 2))
			fill_z(&s->want, n, vl, TAG_GUEST, s->owner, serial);
	if (s->sve && preds) {
		for (int n = 0; n < 16; n++)
			if (all || one_in(rng, 3))
				fill_p(&s->want, n, vl, TAG_GUEST, s->owner, serial);
		if (all || one_in(rng, 4))
			fill_ffr(&s->want, vl, rnd_below(rng, vl + 1));
	}
	if (all || one_in(rng, 3))
		s->want.fpsr = gen_fpsr(rnd(rng));
	if (all || one_in(rng, 3))
		s->want.fpcr = gen_fpcr(rnd(rng));
}

/*
 * At the start: which registers the vCPU has, and which hold what is written
 * (two values each, read back at once); the others are checked to keep the
 * value they had (read only here, or RAZ/WI like AMAIR_EL1 under QEMU).
 */
static void guest_setup_regs(struct fz_vcpu *s, struct rng *rng)
{
	uint64_t dfr0 = read_sysreg_s(SYS_ID_AA64DFR0_EL1);
	uint64_t mmfr3 = read_sysreg_s(SYS_ID_AA64MMFR3_EL1);
	uint64_t pfr2 = read_sysreg_s(SYS_ID_AA64PFR2_EL1);

	s->brps = ((dfr0 >> ID_AA64DFR0_EL1_BRPs_SHIFT) & 0xf) + 1;
	s->wrps = ((dfr0 >> ID_AA64DFR0_EL1_WRPs_SHIFT) & 0xf) + 1;
	for (int r = 0; r < NR_FZ; r++) {
		bool has;

		switch (fz_need[r]) {
		case N_SVE: has = s->sve; break;
		case N_TCRX: has = (mmfr3 >> ID_AA64MMFR3_EL1_TCRX_SHIFT) & 0xf; break;
		case N_S1PIE: has = (mmfr3 >> ID_AA64MMFR3_EL1_S1PIE_SHIFT) & 0xf; break;
		case N_S1POE: has = (mmfr3 >> ID_AA64MMFR3_EL1_S1POE_SHIFT) & 0xf; break;
		case N_FPMR: has = (pfr2 >> ID_AA64PFR2_EL1_FPMR_SHIFT) & 0xf; break;
		case N_BRP: has = fz_n[r] < s->brps; break;
		case N_WRP: has = fz_n[r] < s->wrps; break;
		default: has = true;
		}
		if (has)
			bit_set(s->present, r);
	}
	s->base.mair = read_sysreg_s(SYS_MAIR_EL1);
	s->base.tcr = read_sysreg_s(SYS_TCR_EL1);
	s->base.sctlr = read_sysreg_s(SYS_SCTLR_EL1);
	s->base.cpacr = read_sysreg_s(SYS_CPACR_EL1);
	s->base.ttbr0 = read_sysreg_s(SYS_TTBR0_EL1);
	s->base.vbar[0] = (uint64_t)fz_vectors_a;
	s->base.vbar[1] = (uint64_t)fz_vectors_b;

	/* In table order: TCR_EL1 (EPD1) before TTBR1_EL1. */
	for (int r = 0; r < NR_FZ; r++) {
		uint64_t v, got;
		bool ok = true;

		if (!bit_test(s->present, r))
			continue;
		if (fz_class[r] == C_RO) {
			s->want_sys[r] = fz_read(r);
			continue;
		}
		if (fz_class[r] == C_ZCR) {
			v = rnd_below(rng, s->max_vl / 16);
			fz_write(r, v);
			s->want_sys[r] = v;
			bit_set(s->held, r);
			s->cur_vl = guest_rdvl();
			continue;
		}
		for (int i = 0; i < 2; i++) {
			v = fz_gen(r, TAG_GUEST, s->owner, i, rnd(rng), &s->base);
			fz_write(r, v);
			got = fz_read(r);
			ok &= !((got ^ v) & fz_mask(r));
		}
		if (ok)
			bit_set(s->held, r);
		s->want_sys[r] = ok ? v : got;
	}
}

static void guest_check_sys(struct fz_vcpu *s, int skip)
{
	uint64_t got[NR_FZ];

	/* Everything read first: a report is an exit of its own. */
	for (int r = 0; r < NR_FZ; r++)
		if (bit_test(s->present, r))
			got[r] = fz_read(r);
	for (int r = 0; r < NR_FZ; r++) {
		if (!bit_test(s->present, r) || r == skip)
			continue;
		if ((got[r] ^ s->want_sys[r]) & fz_mask(r))
			guest_report(s, CODE(RC_SYS, r, 0), s->want_sys[r] & fz_mask(r),
				     got[r] & fz_mask(r), PH_EXIT, 0);
	}
}

/* The FP/SIMD or SVE state stored after the exit, at the VL it was loaded at. */
static void guest_check_fp(struct fz_vcpu *s, int variant)
{
	size_t vl = s->sve ? s->cur_vl : 16;

	for (int n = 0; n < 32; n++)
		guest_cmp(s, s->sve ? RC_Z : RC_V, n, s->want.z[n], s->got.z[n], vl, vl, vl, PH_EXIT);
	if (s->sve) {
		for (int n = 0; n < 16; n++)
			guest_cmp(s, RC_P, n, s->want.p[n], s->got.p[n], vl / 8, vl / 8, vl / 8,
				  PH_EXIT);
		guest_cmp(s, RC_FFR, 0, s->want.ffr, s->got.ffr, vl / 8, vl / 8, vl / 8, PH_EXIT);
	}
	if (variant == VAR_SVE_QFIRST)
		for (int n = 0; n < 32; n++)
			guest_cmp(s, RC_Q, n, s->want.z[n], (uint8_t *)&s->got_q[n], 16, 16, 16,
				  PH_EXIT);
	if (s->got.fpsr != s->want.fpsr)
		guest_report(s, CODE(RC_FPSR, 0, 0), s->want.fpsr, s->got.fpsr, PH_EXIT, 0);
	if (s->got.fpcr != s->want.fpcr)
		guest_report(s, CODE(RC_FPCR, 0, 0), s->want.fpcr, s->got.fpcr, PH_EXIT, 0);
}

/*
 * After ZCR_EL1 changed the VL from @old to @new (got2): what both lengths
 * share is kept; what the new one adds is 0 or what the guest itself last left
 * there, never anybody else's (another VM's, the host's).
 */
static void guest_check_vl_change(struct fz_vcpu *s, size_t old, size_t new)
{
	size_t keep = old < new ? old : new;

	for (int n = 0; n < 32; n++)
		guest_cmp(s, RC_Z, n, s->want.z[n], s->got2.z[n], new, keep, new, PH_VL);
	for (int n = 0; n < 16; n++)
		guest_cmp(s, RC_P, n, s->want.p[n], s->got2.p[n], new / 8, keep / 8, new / 8, PH_VL);
	guest_cmp(s, RC_FFR, 0, s->want.ffr, s->got2.ffr, new / 8, keep / 8, new / 8, PH_VL);
	if (s->got2.fpsr != s->want.fpsr)
		guest_report(s, CODE(RC_FPSR, 0, 0), s->want.fpsr, s->got2.fpsr, PH_VL, 0);
	if (s->got2.fpcr != s->want.fpcr)
		guest_report(s, CODE(RC_FPCR, 0, 0), s->want.fpcr, s->got2.fpcr, PH_VL, 0);
	/*
	 * What the longer VL added is what the registers hold from now on (P and
	 * FFR are not reloaded by every round).
	 */
	if (new <= keep)
		return;
	for (int n = 0; n < 32; n++)
		memcpy(s->want.z[n] + keep, s->got2.z[n] + keep, new - keep);
	for (int n = 0; n < 16; n++)
		memcpy(s->want.p[n] + keep / 8, s->got2.p[n] + keep / 8, (new - keep) / 8);
	memcpy(s->want.ffr + keep / 8, s->got2.ffr + keep / 8, (new - keep) / 8);
}

static void guest_check_exit(struct fz_vcpu *s, int kind)
{
	uint64_t res = s->args.res, want = res;

	switch (kind) {
	case K_HVC:
		if (res < ARM_SMCCC_VERSION_1_1 || res >= (1ULL << 31))
			want = ARM_SMCCC_VERSION_1_1;
		break;
	case K_MMIO_R: want = s->args.tag ^ MMIO_R_XOR; break;
	case K_GICD: want = s->gicd_typer; break;
	case K_WFI_SGI: want = res | BIT(SGI_ID); break;
	case K_IDREG: want = s->pfr0; break;
	case K_DBGREG: want = s->want_sys[FZ_DBGWVR0_EL1]; break;
	case K_S2FAULT: want = s->args.tag; break;
	case K_LATE: want = s->late_tag; break;
	}
	if (res != want)
		guest_report(s, CODE(RC_EXIT, kind, 0), want, res, PH_EXIT, 0);
	if (s->args.sp0 != s->args.sp1)
		guest_report(s, CODE(RC_SP, 0, 0), s->args.sp0, s->args.sp1, PH_EXIT, 0);
}

/*
 * After an exception the guest took itself (BRK, its hardware breakpoint, an
 * UNDEF KVM injected): ESR_EL1, ELR_EL1 and SPSR_EL1 are the exception's, and
 * FAR_EL1 is UNKNOWN (returned: the caller skips it and writes a new one).
 */
static int guest_after_exception(struct fz_vcpu *s, int kind, uint64_t daif)
{
	uint64_t esr = read_sysreg(esr_el1), spsr = read_sysreg(spsr_el1);
	uint64_t spsr_want = PSR_MODE_EL1h | daif;

	switch (kind) {
	case K_BRK:
		s->want_sys[FZ_ESR_EL1] = (uint64_t)ESR_EC_BRK_INS << ESR_EC_SHIFT | ESR_IL | BRK_IMM;
		s->want_sys[FZ_ELR_EL1] = (uint64_t)fz_brk_insn + 4;
		break;
	case K_UNDEF:
		s->want_sys[FZ_ESR_EL1] = (uint64_t)ESR_EC_UNKNOWN << ESR_EC_SHIFT | ESR_IL;
		s->want_sys[FZ_ELR_EL1] = (uint64_t)fz_undef_insn + 4;
		break;
	case K_HWBP:
		/* EC and IL checked; the ISS is the implementation's. */
		if ((esr >> ESR_EC_SHIFT & ESR_EC_MASK) != ESR_EC_HW_BP_CURRENT || !(esr & ESR_IL))
			guest_report(s, CODE(RC_ESR_EC, kind, 0),
				     (uint64_t)ESR_EC_HW_BP_CURRENT << ESR_EC_SHIFT | ESR_IL,
				     esr & (ESR_EC_MASK << ESR_EC_SHIFT | ESR_IL), PH_EXIT, 0);
		s->want_sys[FZ_ESR_EL1] = esr;
		s->want_sys[FZ_ELR_EL1] = (uint64_t)fz_hwbp_insn;
		s->want_sys[FZ_DBGBVR0_EL1] = (uint64_t)fz_hwbp_insn;
		s->want_sys[FZ_DBGBCR0_EL1] = 0;
		spsr_want &= ~PSR_D_BIT;
		break;
	default:
		return -1;
	}
	/* PSTATE as it was (EL1h, DAIF); NZCV and the rest are the guest's own. */
	if ((spsr & (SPSR_M_MASK | DAIF_MASK)) != spsr_want)
		guest_report(s, CODE(RC_SPSR_MODE, kind, 0), spsr_want,
			     spsr & (SPSR_M_MASK | DAIF_MASK), PH_EXIT, 0);
	s->want_sys[FZ_SPSR_EL1] = spsr;
	return FZ_FAR_EL1;
}

static void guest_prepare_exit(struct fz_vcpu *s, struct rng *rng, int kind, uint64_t serial)
{
	struct stub_args *a = &s->args;

	a->tag = lane_val(TAG_GUEST, s->owner, 63, 63, serial);
	a->res = 0;
	a->ticks = read_sysreg(cntfrq_el0) / (1000 + rnd_below(rng, 9000));	/* 0.1-1 ms */
	/* Exits handled in the kernel or at EL2, taken again and again (the last
	 * one's result checked): the state set before them is checked after. */
	a->repeat = repeatable(kind) ? 1 + rnd_below(rng, MAX_REPEAT) : 1;
	if (kind == K_DBGREG) {
		a->dbgval = fz_gen(FZ_DBGBVR1_EL1, TAG_GUEST, s->owner, serial, rnd(rng), &s->base);
		s->want_sys[FZ_DBGBVR1_EL1] = a->dbgval;
	}
}

static void guest_code(uint64_t idx)
{
	struct fz_vcpu *s = &fz[idx];
	struct rng rng = { rng_seed(s->seed, s->vm, s->idx, SALT_GUEST) };
	uint64_t mpidr = read_sysreg(mpidr_el1), since_user = 0;

	/* The GIC first: its library code uses TPIDR_EL1 (the vCPU id), fuzzed below. */
	gic_init(GIC_V3, s->nvcpus);
	gic_set_priority(s->vtimer_irq, FZ_IRQ_PRIO);
	gic_set_priority(SGI_ID, FZ_IRQ_PRIO);
	gic_irq_enable(s->vtimer_irq);
	gic_irq_enable(SGI_ID);
	write_sysreg_s(0, SYS_OSLAR_EL1);	/* OS lock off: breakpoints can fire */
	isb();
	s->gicd_typer = readl(GICD_BASE_GVA + GICD_TYPER);
	s->pfr0 = read_sysreg_s(SYS_ID_AA64PFR0_EL1);

	s->args = (struct stub_args){
		.fid = ARM_SMCCC_VERSION_FUNC_ID,
		.mmio_w = MMIO_W_GPA,
		.mmio_r = MMIO_R_GPA,
		.gicd = (uint64_t)GICD_BASE_GVA + GICD_TYPER,
		.sgi1r = (uint64_t)SGI_ID << ICC_SGI1R_SGI_ID_SHIFT |
			 1ULL << (mpidr & 0xf) << ICC_SGI1R_TARGET_LIST_SHIFT |
			 ((mpidr >> 4) & 0xf) << ICC_SGI1R_RS_SHIFT |
			 ((mpidr >> 8) & 0xff) << ICC_SGI1R_AFFINITY_1_SHIFT |
			 ((mpidr >> 16) & 0xff) << ICC_SGI1R_AFFINITY_2_SHIFT,
		.scratch = s->scratch_gva,
		.late = s->late_gva,
		.mdscr_on = MDSCR_EL1_KDE | MDSCR_EL1_MDE,
		.bcr_on = 1ULL << DBGBCR_PMC_SHIFT | DBGBCR_BAS_ALL | DBGBCR_E,	/* EL1 */
		.spin = SPIN_LOOPS,
	};
	guest_setup_regs(s, &rng);
	guest_new_fp(s, &rng, 0, true, true);
	WRITE_ONCE(s->started, 1);

	while (!READ_ONCE(s->stop)) {
		uint64_t serial = ++s->round, daif, old_vl = s->cur_vl;
		int kind, variant, skip = -1;

		for (int r = 0; r < NR_FZ; r++) {
			if (!held(s, r) || fz_class[r] == C_ZCR || !one_in(&rng, 4))
				continue;
			s->want_sys[r] = fz_gen(r, TAG_GUEST, s->owner, serial, rnd(&rng), &s->base);
			fz_write(r, s->want_sys[r]);
		}
		/* The first round loads everything: P and FFR start as the reset left them. */
		variant = !s->sve ? VAR_FP : serial == 1 ? VAR_SVE : VAR_SVE + rnd_below(&rng, 3);
		guest_new_fp(s, &rng, serial, false, variant != VAR_QLOAD);
		if (variant == VAR_QLOAD)	/* LDR Q zeroes the rest of Z, up to the VL */
			for (int n = 0; n < 32; n++)
				memset(s->want.z[n] + 16, 0, s->cur_vl - 16);
		s->args.new_zcr_on = variant != VAR_FP && one_in(&rng, 4);
		s->args.new_zcr = rnd_below(&rng, s->max_vl / 16);
		kind = pick_kind(s, &rng, since_user >= FORCE_USER_EXIT);
		guest_prepare_exit(s, &rng, kind, serial);
		s->kind = kind;
		s->variant = variant;
		daif = read_sysreg(daif);
		WRITE_ONCE(s->in_round, 1);
		guest_round(s, variant, kind_stub[kind]);
		WRITE_ONCE(s->in_round, 0);
		since_user = is_user_kind(kind) ? 0 : since_user + 1;

		if (kind == K_BRK || kind == K_UNDEF || kind == K_HWBP)
			skip = guest_after_exception(s, kind, daif);
		if (kind == K_WFI_TIMER) {
			s->want_sys[FZ_CNTV_CTL_EL0] = CTL_IMASK;
			s->want_sys[FZ_CNTV_CVAL_EL0] = s->args.res;
		}
		guest_check_fp(s, variant);
		if (s->args.new_zcr_on) {
			s->cur_vl = guest_rdvl();
			s->want_sys[FZ_ZCR_EL1] = s->args.new_zcr;
			guest_check_vl_change(s, old_vl, s->cur_vl);
			s->vl_changes++;
		}
		guest_check_sys(s, skip);
		guest_check_exit(s, kind);
		if (skip == FZ_FAR_EL1 && held(s, FZ_FAR_EL1)) {
			s->want_sys[FZ_FAR_EL1] = fz_gen(FZ_FAR_EL1, TAG_GUEST, s->owner, serial,
							 0, &s->base);
			fz_write(FZ_FAR_EL1, s->want_sys[FZ_FAR_EL1]);
		}
		s->rounds_checked++;
		s->exits_checked += always_exits(kind) ? s->args.repeat : 0;
		if (serial <= DIGEST_ROUNDS)
			s->digest = mix64(s->digest ^ (kind | variant << 8 | s->args.new_zcr_on << 16 |
					  s->args.new_zcr << 24 | serial << 32));
		s->kinds[kind]++;
		s->variants[variant]++;
	}
	GUEST_DONE();
}

/* ---- host ---- */

struct vcpu_ctx {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct fz_vcpu *gs;		/* the guest's, through its HVA */
	int vm_nr, idx, gic_fd;
	struct rng rng;			/* the VMM's choices for this vCPU */
	uint64_t owner, mpidr, late_gpa, vmm_serial;
	void *scratch_hva, *late_hva;
	bool late_mapped;
	/* counts */
	uint64_t runs, user_exits, vmm_checks, vmm_sets, migrations, zaps, late_maps;
	uint64_t late_unmaps, host_checks, vgic_checks, vgic_busy;
	pthread_t thread;
	atomic_bool done, kicked;	/* the thread returned; the watchdog kicked it */
};

struct vm_ctx {
	struct kvm_vm *vm;
	int gic_fd;
	bool sve;
};

static struct vcpu_ctx ctxs[MAX_VMS * MAX_VCPUS];
static struct vm_ctx vms[MAX_VMS];
static int nvms = 2, nvcpus = 2, nctxs, ncpus;
static uint64_t seed = 1, seconds = 20;
static bool quiet;
static struct timespec t_start;
static atomic_bool stop;
static double stop_at;
static atomic_ulong mismatches, polluter_checks;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static bool host_sve;
static size_t host_vl;

static double elapsed(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t_start.tv_sec) + (t.tv_nsec - t_start.tv_nsec) / 1e9;
}

/* Ends the run: every guest sees stop at its next round. */
static void stop_all(void)
{
	if (!atomic_exchange(&stop, true))
		stop_at = elapsed();
	for (int i = 0; i < nctxs; i++)
		WRITE_ONCE(ctxs[i].gs->stop, 1);
}

/* Whose value @v can be, for the messages. */
static const char *describe(uint64_t v, char *buf, size_t len)
{
	uint64_t tag = v >> 56, owner = (v >> 48) & 0xff;

	if (v == 0)
		return "zero";
	if (v == KVM_UNSET_REG)
		return "KVM's reset value of an unset register";
	if ((tag == TAG_GUEST || tag == TAG_VMM || tag == TAG_THREAD) && owner) {
		snprintf(buf, len, "%s of VM %lu vCPU %lu", tag == TAG_GUEST ? "written by the guest" :
			 tag == TAG_VMM ? "written by the VMM" : "a host vCPU thread's",
			 (owner - 1) / 16, (owner - 1) % 16);
		return buf;
	}
	if (tag == TAG_POLL) {
		snprintf(buf, len, "a host polluter's (CPU %lu)", owner);
		return buf;
	}
	return "nobody's marker";
}

static void code_name(uint64_t code, char *buf, size_t len)
{
	int rc = code >> 32, n = (code >> 16) & 0xffff, c = code & 0xffff;

	switch (rc) {
	case RC_SYS: snprintf(buf, len, "%s", n < NR_FZ ? fz_name[n] : "?"); break;
	case RC_Z:
	case RC_HOST_Z: snprintf(buf, len, "Z%d[bytes %d-%d]", n, 8 * c, 8 * c + 7); break;
	case RC_V:
	case RC_HOST_V: snprintf(buf, len, "V%d[bytes %d-%d]", n, 8 * c, 8 * c + 7); break;
	case RC_Q: snprintf(buf, len, "V%d (STR Q first)[bytes %d-%d]", n, 8 * c, 8 * c + 7); break;
	case RC_P:
	case RC_HOST_P: snprintf(buf, len, "P%d[bytes %d-%d]", n, 8 * c, 8 * c + 7); break;
	case RC_FFR:
	case RC_HOST_FFR: snprintf(buf, len, "FFR[bytes %d-%d]", 8 * c, 8 * c + 7); break;
	case RC_FPSR:
	case RC_HOST_FPSR: snprintf(buf, len, "FPSR"); break;
	case RC_FPCR:
	case RC_HOST_FPCR: snprintf(buf, len, "FPCR"); break;
	case RC_SP: snprintf(buf, len, "SP (SP_EL1)"); break;
	case RC_EXIT: snprintf(buf, len, "the %s exit's result", kind_name[n % NR_KINDS]); break;
	case RC_SPSR_MODE: snprintf(buf, len, "SPSR_EL1 (M, DAIF) after the %s",
				    kind_name[n % NR_KINDS]); break;
	case RC_ESR_EC: snprintf(buf, len, "ESR_EL1 (EC, IL) after the %s",
				 kind_name[n % NR_KINDS]); break;
	case RC_HOST_TPIDR: snprintf(buf, len, "TPIDR_EL0"); break;
	case RC_HOST_TPIDRRO: snprintf(buf, len, "TPIDRRO_EL0"); break;
	default: snprintf(buf, len, "code %#lx", code);
	}
}

/*
 * Every mismatch: the seed, who saw it (VM/vCPU, or a host thread), when, the
 * register, expected and actual, and whose the actual value looks like. The
 * run stops (the others finish their round).
 */
static void mismatch(const char *who, struct vcpu_ctx *c, uint64_t code, uint64_t want,
		     uint64_t got, uint64_t round, uint64_t detail, uint64_t flags)
{
	int kind = detail & 0xff, variant = (detail >> 8) & 0xff, phase = (detail >> 16) & 0xff;
	char reg[64], d[96], where[64];

	atomic_fetch_add(&mismatches, 1);
	code_name(code, reg, sizeof(reg));
	if (c)
		snprintf(where, sizeof(where), "vm=%d vcpu=%d", c->vm_nr, c->idx);
	else
		snprintf(where, sizeof(where), "vm=- vcpu=-");
	pthread_mutex_lock(&print_lock);
	printf("state_fuzz: MISMATCH seed=%lu %s %s round=%lu exit=%s variant=%s %s: %s expected "
	       "%#lx%s actual %#lx (%s)\n", seed, where, who, round,
	       phase == PH_HOST ? "-" : kind_name[kind % NR_KINDS],
	       phase == PH_HOST ? "-" : variant_name[variant % NR_VARIANTS],
	       phase_name[phase % 5], reg, want, flags & FL_OR_ZERO ? " (or 0)" : "", got,
	       describe(got, d, sizeof(d)));
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
	stop_all();
}

static void vmm_mismatch(struct vcpu_ctx *c, uint64_t code, uint64_t want, uint64_t got,
			 uint64_t flags)
{
	struct fz_vcpu *s = c->gs;

	mismatch("(VMM)", c, code, want, got, s->round, s->kind | s->variant << 8 | PH_VMM << 16,
		 flags);
}

static void vmm_cmp(struct vcpu_ctx *c, int rc, int n, const uint8_t *want, const uint8_t *got,
		    size_t len, size_t exact, size_t orzero)
{
	uint64_t w, g, fl;

	for (int k = 0; (k = bad_chunk(want, got, len, exact, orzero, k, &w, &g, &fl)) >= 0; k++)
		vmm_mismatch(c, CODE(rc, n, k), w, g, fl);
}

#define KVM_CORE_V(n)	(KVM_REG_ARM64 | KVM_REG_SIZE_U128 | KVM_REG_ARM_CORE | \
			 KVM_REG_ARM_CORE_REG(fp_regs.vregs[n]))
#define KVM_CORE_FPSR	(KVM_REG_ARM64 | KVM_REG_SIZE_U32 | KVM_REG_ARM_CORE | \
			 KVM_REG_ARM_CORE_REG(fp_regs.fpsr))
#define KVM_CORE_FPCR	(KVM_REG_ARM64 | KVM_REG_SIZE_U32 | KVM_REG_ARM_CORE | \
			 KVM_REG_ARM_CORE_REG(fp_regs.fpcr))

/*
 * A GICv3 CPU interface register of the vCPU, through the vGIC device: false
 * if KVM cannot tell now (EBUSY: it wants every vCPU of the VM out of KVM_RUN).
 */
static bool vgic_reg(struct vcpu_ctx *c, uint64_t enc, uint64_t *v)
{
	uint64_t attr = (c->mpidr & 0xffffff) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT |
			(KVM_ARM64_SYS_REG(enc) & KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK);
	int ret = __kvm_device_attr_get(c->gic_fd, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, attr, v);

	TEST_ASSERT(!ret || errno == EBUSY, "KVM_GET_DEVICE_ATTR (vGIC CPU sysregs): %d", errno);
	if (ret)
		c->vgic_busy++;
	else
		c->vgic_checks++;
	return !ret;
}

static uint64_t vgic_enc(int r)
{
	return r == FZ_ICC_PMR_EL1 ? SYS_ICC_PMR_EL1 : SYS_ICC_BPR1_EL1;
}

/*
 * At an exit to userspace in the middle of a round: what vcpu_put saved must be
 * what the guest (and the VMM) put in the registers.
 */
static void vmm_check(struct vcpu_ctx *c)
{
	struct fz_vcpu *s = c->gs;
	size_t vl = s->cur_vl, max = s->max_vl;
	uint8_t buf[VL_MAX];
	uint64_t v;

	c->vmm_checks++;
	for (int r = 0; r < NR_FZ; r++) {
		if (!bit_test(s->present, r))
			continue;
		if (fz_id[r] == VGIC_REG) {
			if (!vgic_reg(c, vgic_enc(r), &v))
				continue;
		} else {
			vcpu_get_reg(c->vcpu, fz_id[r], &v);
		}
		if ((v ^ s->want_sys[r]) & fz_mask(r))
			vmm_mismatch(c, CODE(RC_SYS, r, 0), s->want_sys[r] & fz_mask(r),
				     v & fz_mask(r), 0);
	}
	vcpu_get_reg(c->vcpu, ARM64_CORE_REG(sp_el1), &v);
	if (v != s->args.sp0)
		vmm_mismatch(c, CODE(RC_SP, 0, 0), s->args.sp0, v, 0);
	if (s->sve) {
		/* At the vCPU's largest VL: beyond the guest's, 0 or its own; beyond that, 0. */
		for (int n = 0; n < 32; n++) {
			vcpu_get_reg(c->vcpu, KVM_REG_ARM64_SVE_ZREG(n, 0), buf);
			vmm_cmp(c, RC_Z, n, s->want.z[n], buf, VL_MAX, vl, max);
		}
		for (int n = 0; n < 16; n++) {
			vcpu_get_reg(c->vcpu, KVM_REG_ARM64_SVE_PREG(n, 0), buf);
			vmm_cmp(c, RC_P, n, s->want.p[n], buf, PL_MAX, vl / 8, max / 8);
		}
		vcpu_get_reg(c->vcpu, KVM_REG_ARM64_SVE_FFR(0), buf);
		vmm_cmp(c, RC_FFR, 0, s->want.ffr, buf, PL_MAX, vl / 8, max / 8);
	} else {
		for (int n = 0; n < 32; n++) {
			vcpu_get_reg(c->vcpu, KVM_CORE_V(n), buf);
			vmm_cmp(c, RC_V, n, s->want.z[n], buf, 16, 16, 16);
		}
	}
	v = 0;
	vcpu_get_reg(c->vcpu, KVM_CORE_FPSR, &v);
	if (v != s->want.fpsr)
		vmm_mismatch(c, CODE(RC_FPSR, 0, 0), s->want.fpsr, v, 0);
	v = 0;
	vcpu_get_reg(c->vcpu, KVM_CORE_FPCR, &v);
	if (v != s->want.fpcr)
		vmm_mismatch(c, CODE(RC_FPCR, 0, 0), s->want.fpcr, v, 0);
}

static void set_reg_buf(struct kvm_vcpu *vcpu, uint64_t id, void *buf)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uint64_t)buf };

	vcpu_ioctl(vcpu, KVM_SET_ONE_REG, &reg);
}

/*
 * At an exit to userspace in the middle of a round: new values of the VMM's
 * (TAG_VMM) in some registers, and in the guest's expectations; the guest
 * must find them after the exit (what vcpu_load restored).
 */
static void vmm_set(struct vcpu_ctx *c)
{
	struct fz_vcpu *s = c->gs;
	uint64_t serial = ++c->vmm_serial;
	size_t max = s->max_vl;

	c->vmm_sets++;
	for (int r = 0; r < NR_FZ; r++) {
		uint64_t v;

		if (!bit_test(s->held, r) || !fz_vmm_settable(r) || !one_in(&c->rng, 6))
			continue;
		v = fz_gen(r, TAG_VMM, c->owner, serial, rnd(&c->rng), &s->base);
		vcpu_set_reg(c->vcpu, fz_id[r], v);
		s->want_sys[r] = v;
	}
	for (int n = 0; n < 32; n++) {
		if (!one_in(&c->rng, 6))
			continue;
		if (s->sve) {
			fill_z(&s->want, n, max, TAG_VMM, c->owner, serial);
			memset(s->want.z[n] + max, 0, VL_MAX - max);
			set_reg_buf(c->vcpu, KVM_REG_ARM64_SVE_ZREG(n, 0), s->want.z[n]);
		} else {
			fill_z(&s->want, n, 16, TAG_VMM, c->owner, serial);
			set_reg_buf(c->vcpu, KVM_CORE_V(n), s->want.z[n]);
		}
	}
	if (s->sve) {
		for (int n = 0; n < 16; n++) {
			if (!one_in(&c->rng, 8))
				continue;
			fill_p(&s->want, n, max, TAG_VMM, c->owner, serial);
			set_reg_buf(c->vcpu, KVM_REG_ARM64_SVE_PREG(n, 0), s->want.p[n]);
		}
		if (one_in(&c->rng, 8)) {
			fill_ffr(&s->want, max, rnd_below(&c->rng, max + 1));
			set_reg_buf(c->vcpu, KVM_REG_ARM64_SVE_FFR(0), s->want.ffr);
		}
	}
	if (one_in(&c->rng, 6)) {
		uint32_t v32 = s->want.fpsr = gen_fpsr(rnd(&c->rng));

		set_reg_buf(c->vcpu, KVM_CORE_FPSR, &v32);
	}
	if (one_in(&c->rng, 6)) {
		uint32_t v32 = s->want.fpcr = gen_fpcr(rnd(&c->rng));

		set_reg_buf(c->vcpu, KVM_CORE_FPCR, &v32);
	}
}

static void migrate(struct vcpu_ctx *c)
{
	int cpu = rnd_below(&c->rng, ncpus);
	cpu_set_t set;

	if (sched_getcpu() != cpu)
		c->migrations++;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(set), &set), "sched_setaffinity");
}

static void late_map(struct vcpu_ctx *c, bool on)
{
	vm_set_user_memory_region(c->vm, LATE_SLOT + c->idx, 0, c->late_gpa,
				  on ? c->vm->page_size : 0, c->late_hva);
	c->late_mapped = on;
	if (on)
		c->late_maps++;
	else
		c->late_unmaps++;
}

/* An exit to userspace: the VMM's part of the fuzzing. */
static void user_exit(struct vcpu_ctx *c)
{
	struct fz_vcpu *s = c->gs;

	c->user_exits++;
	if (elapsed() >= seconds)
		stop_all();
	if (READ_ONCE(s->in_round)) {
		if (one_in(&c->rng, 2))
			vmm_check(c);
		if (one_in(&c->rng, 3))
			vmm_set(c);
	}
	if (one_in(&c->rng, 2)) {	/* the next stage-2 access faults */
		TEST_ASSERT(!madvise(c->scratch_hva, c->vm->page_size, MADV_DONTNEED), "madvise");
		c->zaps++;
	}
	if (c->late_mapped && one_in(&c->rng, 4))
		late_map(c, false);
	if (one_in(&c->rng, 3))
		migrate(c);
}

/*
 * The vCPU thread's own FP/SIMD registers, FPSR, FPCR (put back after) and
 * TPIDR_EL0 (a marker for the duration: no C runs in between) across KVM_RUN.
 */
struct host_fp {
	__uint128_t v[32];
	uint64_t fpsr, fpcr, tpidr, tpidrro;
};

/* V0-V31, FPSR, FPCR as vhe_rs_fp.h's struct fpregs has them, then TPIDR_EL0/TPIDRRO_EL0. */
#define HOST_STORE(base)							\
	STORE_FPREGS(base)							\
	"mrs x9, tpidr_el0\n str x9, [" base ", #528]\n"			\
	"mrs x9, tpidrro_el0\n str x9, [" base ", #536]\n"
_Static_assert(offsetof(struct host_fp, fpsr) == offsetof(struct fpregs, fpsr) &&
	       offsetof(struct host_fp, fpcr) == offsetof(struct fpregs, fpcr), "host_fp layout");
_Static_assert(offsetof(struct host_fp, tpidr) == 528, "host_fp layout");

#define HOST_CLOBBERS	FP_REG_CLOBBERS, "x13", "x14", "x15"

static long run_checked(int fd, struct host_fp *want, struct host_fp *got)
{
	register long x0 asm("x0") = fd;
	register long x1 asm("x1") = KVM_RUN;
	register long x2 asm("x2") = 0;
	register long x8 asm("x8") = __NR_ioctl;

	asm volatile("mrs x15, tpidr_el0\n mrs x14, fpsr\n mrs x13, fpcr\n"
		     "ldr x9, [%[w], #528]\n msr tpidr_el0, x9\n"
		     LOAD_FPREGS("%[w]") "svc #0\n" HOST_STORE("%[g]")
		     "msr tpidr_el0, x15\n msr fpsr, x14\n msr fpcr, x13\n"
		     : "+r"(x0) : "r"(x1), "r"(x2), "r"(x8), [w] "r"(want), [g] "r"(got)
		     : HOST_CLOBBERS);
	return x0;
}

/* Host state: the thread's own, switched per task by the kernel: holds whatever else runs. */
static void check_host_fp(struct vcpu_ctx *c, const struct host_fp *want, const struct host_fp *got)
{
	uint64_t d = c->gs->kind | c->gs->variant << 8 | PH_HOST << 16;
	uint64_t w, g, fl;

	c->host_checks++;
	for (int n = 0; n < 32; n++)
		for (int k = 0; (k = bad_chunk((uint8_t *)&want->v[n], (uint8_t *)&got->v[n], 16, 16,
					       16, k, &w, &g, &fl)) >= 0; k++)
			mismatch("host vCPU thread across KVM_RUN", c, CODE(RC_HOST_V, n, k), w, g,
				 c->runs, d, 0);
	if (got->fpsr != want->fpsr)
		mismatch("host vCPU thread across KVM_RUN", c, CODE(RC_HOST_FPSR, 0, 0), want->fpsr,
			 got->fpsr, c->runs, d, 0);
	if (got->fpcr != want->fpcr)
		mismatch("host vCPU thread across KVM_RUN", c, CODE(RC_HOST_FPCR, 0, 0), want->fpcr,
			 got->fpcr, c->runs, d, 0);
	if (got->tpidr != want->tpidr)
		mismatch("host vCPU thread across KVM_RUN", c, CODE(RC_HOST_TPIDR, 0, 0),
			 want->tpidr, got->tpidr, c->runs, d, 0);
	if (got->tpidrro != want->tpidrro)
		mismatch("host vCPU thread across KVM_RUN", c, CODE(RC_HOST_TPIDRRO, 0, 0),
			 want->tpidrro, got->tpidrro, c->runs, d, 0);
}

/*
 * The guest cannot go on (an exception it does not handle, a failed assertion
 * of the library's, an exit nobody expects): counted as a mismatch, printed
 * with the seed, and the run stops, so that the summary line still comes.
 */
static void guest_failure(struct vcpu_ctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&mismatches, 1);
	pthread_mutex_lock(&print_lock);
	printf("state_fuzz: FAILURE seed=%lu vm=%d vcpu=%d round=%lu exit=%s variant=%s: %s\n",
	       seed, c->vm_nr, c->idx, c->gs->round, kind_name[c->gs->kind % NR_KINDS],
	       variant_name[c->gs->variant % NR_VARIANTS], msg);
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
	stop_all();
}

/*
 * get_ucall() without its KVM_RUN (vcpu_run_complete_io(), through the C
 * library): every KVM_RUN here is run_checked()'s, whose host state is checked
 * and whose TPIDR_EL0 is put back before any C runs (a lost TPIDR_EL0 would
 * otherwise crash the C library). The next run_checked() completes the MMIO.
 */
static uint64_t fz_get_ucall(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	void *addr = ucall_arch_get_ucall(vcpu);

	memset(uc, 0, sizeof(*uc));
	if (addr) {
		/* lib/ucall_common.c: GUEST_UCALL_FAILED, private there */
		TEST_ASSERT(addr != (void *)-1, "the guest found no free ucall");
		memcpy(uc, addr, sizeof(*uc));
	}
	return uc->cmd;
}

static void *vcpu_loop(struct vcpu_ctx *c);

static void *vcpu_thread(void *arg)
{
	struct vcpu_ctx *c = arg;

	vcpu_loop(c);
	atomic_store(&c->done, true);
	return NULL;
}

static void *vcpu_loop(struct vcpu_ctx *c)
{
	struct kvm_run *run = c->vcpu->run;
	struct host_fp want, got;
	cpu_set_t set;
	struct ucall uc;

	for (int n = 0; n < 32; n++)
		want.v[n] = (__uint128_t)lane_val(TAG_THREAD, c->owner, n, 1, c->idx) << 64 |
			    lane_val(TAG_THREAD, c->owner, n, 0, c->idx);
	want.fpsr = gen_fpsr(mix64(c->owner));
	want.fpcr = gen_fpcr(mix64(c->owner + 1));
	want.tpidr = lane_val(TAG_THREAD, c->owner, 0, 0, 0x7470);
	asm volatile("mrs %0, tpidrro_el0" : "=r"(want.tpidrro));
	CPU_ZERO(&set);
	CPU_SET((c->vm_nr * nvcpus + c->idx) % ncpus, &set);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(set), &set), "sched_setaffinity");

	for (;;) {
		long ret = run_checked(c->vcpu->fd, &want, &got);

		c->runs++;
		check_host_fp(c, &want, &got);
		if (ret == -EINTR && atomic_load(&c->kicked)) {
			guest_failure(c, "the guest did not stop within %d s of the end of the run "
				      "(kicked out of KVM_RUN)", STOP_GRACE);
			return NULL;
		}
		if (ret == -EINTR)
			continue;
		if (ret) {
			guest_failure(c, "KVM_RUN: %ld", ret);
			return NULL;
		}
		if (run->exit_reason == KVM_EXIT_MMIO) {
			uint64_t gpa = run->mmio.phys_addr, v;

			if (gpa == MMIO_W_GPA && run->mmio.is_write) {
				user_exit(c);
				continue;
			}
			if (gpa == MMIO_R_GPA && !run->mmio.is_write) {
				v = c->gs->args.tag ^ MMIO_R_XOR;
				memcpy(run->mmio.data, &v, sizeof(v));
				user_exit(c);
				continue;
			}
			if (gpa == c->late_gpa && !run->mmio.is_write) {
				/* Answered, and (at random) mapped for the next access. */
				v = c->gs->late_tag;
				memcpy(run->mmio.data, &v, sizeof(v));
				if (one_in(&c->rng, 2))
					late_map(c, true);
				user_exit(c);
				continue;
			}
		}
		switch (fz_get_ucall(c->vcpu, &uc)) {
		case UCALL_SYNC:
			TEST_ASSERT(uc.args[0] == FZ_MISMATCH, "unexpected GUEST_SYNC %lx", uc.args[0]);
			mismatch("(guest)", c, uc.args[1], uc.args[2], uc.args[3], uc.args[4],
				 uc.args[5], uc.args[6]);
			break;
		case UCALL_DONE:
			return NULL;
		case UCALL_ABORT:
			guest_failure(c, "guest assertion %s:%ld: %s", (const char *)uc.args[GUEST_FILE],
				      uc.args[GUEST_LINE], uc.buffer);
			return NULL;
		case UCALL_UNHANDLED:
			guest_failure(c, "unexpected exception in the guest: vector %#lx, EC %#lx%s",
				      uc.args[0], uc.args[1], uc.args[2] ? "" : " (not valid)");
			return NULL;
		default:
			guest_failure(c, "unexpected exit %s", exit_reason_str(run->exit_reason));
			return NULL;
		}
	}
}

/*
 * The polluter's round: TPIDR_EL0 set to its marker, its registers loaded with
 * LOAD (LOAD_SVE or LOAD_Q) from the buffer at x19, a spin, then stored with
 * STORE to the one at x20 and the marker read back; TPIDR_EL0 put back.
 */
#define POLLUTER_ROUND(LOAD, STORE)						\
	asm volatile("mrs x15, tpidr_el0\n msr tpidr_el0, %[tw]\n"			\
		     LOAD("x19")							\
		     "mov x9, #" STR_(POLLUTER_SPIN) "\n 1: subs x9, x9, #1\n b.ne 1b\n"	\
		     STORE("x20")							\
		     "mrs x9, tpidr_el0\n str x9, %[tg]\n msr tpidr_el0, x15\n"		\
		     "msr fpcr, xzr\n"							\
		     : [tg] "=m"(tp_got) : "r"(w), "r"(g), [tw] "r"(tp_want)		\
		     : "x9", "x10", "x11", "x15", FP_VREG_CLOBBERS, "memory")

/*
 * A host thread per CPU with state of its own: Z0-Z31, P0-P15, FFR at the
 * host's largest VL (V0-V31 without SVE), FPSR, FPCR and TPIDR_EL0 markers,
 * held across a spin without system calls (preemption, the vCPU threads on the
 * same CPU), then checked.
 */
static void *polluter(void *arg)
{
	long cpu = (long)arg;
	static __thread struct fpbuf want, got;
	uint64_t tp_want = lane_val(TAG_POLL, cpu, 0, 0, 0x7470), tp_got, serial = 0;
	size_t vl = host_sve ? host_vl : 16;
	cpu_set_t set;
	char who[32];

	snprintf(who, sizeof(who), "host polluter on CPU %ld", cpu);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	TEST_ASSERT(!pthread_setaffinity_np(pthread_self(), sizeof(set), &set), "affinity");
	if (host_sve)
		TEST_ASSERT(prctl(PR_SVE_SET_VL, host_vl) >= 0, "PR_SVE_SET_VL %zu", host_vl);
	while (!atomic_load(&stop)) {
		register struct fpbuf *w asm("x19") = &want;
		register struct fpbuf *g asm("x20") = &got;
		uint64_t w8, g8, fl;

		serial++;
		for (int n = 0; n < 32; n++)
			fill_z(&want, n, vl, TAG_POLL, cpu, serial);
		if (host_sve) {
			for (int n = 0; n < 16; n++)
				fill_p(&want, n, vl, TAG_POLL, cpu, serial);
			fill_ffr(&want, vl, serial % (vl + 1));
		}
		want.fpsr = gen_fpsr(mix64(serial));
		want.fpcr = gen_fpcr(mix64(serial + cpu));
		if (host_sve)
			POLLUTER_ROUND(LOAD_SVE, STORE_SVE);
		else
			POLLUTER_ROUND(LOAD_Q, STORE_Q);
		/* Host state: the thread's own, per task: holds whatever else runs. */
		for (int n = 0; n < 32; n++)
			for (int k = 0; (k = bad_chunk(want.z[n], got.z[n], vl, vl, vl, k, &w8, &g8,
						       &fl)) >= 0; k++)
				mismatch(who, NULL, CODE(host_sve ? RC_HOST_Z : RC_HOST_V,
					 n, k), w8, g8, serial, PH_HOST << 16, 0);
		for (int n = 0; n < 16 && host_sve; n++)
			for (int k = 0; (k = bad_chunk(want.p[n], got.p[n], vl / 8, vl / 8, vl / 8, k,
						       &w8, &g8, &fl)) >= 0; k++)
				mismatch(who, NULL, CODE(RC_HOST_P, n, k), w8, g8, serial,
					 PH_HOST << 16, 0);
		for (int k = 0; host_sve && (k = bad_chunk(want.ffr, got.ffr, vl / 8, vl / 8, vl / 8,
							 k, &w8, &g8, &fl)) >= 0; k++)
			mismatch(who, NULL, CODE(RC_HOST_FFR, 0, k), w8, g8, serial,
				 PH_HOST << 16, 0);
		if (got.fpsr != want.fpsr)
			mismatch(who, NULL, CODE(RC_HOST_FPSR, 0, 0), want.fpsr, got.fpsr,
				 serial, PH_HOST << 16, 0);
		if (got.fpcr != want.fpcr)
			mismatch(who, NULL, CODE(RC_HOST_FPCR, 0, 0), want.fpcr, got.fpcr,
				 serial, PH_HOST << 16, 0);
		if (tp_got != tp_want)
			mismatch(who, NULL, CODE(RC_HOST_TPIDR, 0, 0), tp_want, tp_got,
				 serial, PH_HOST << 16, 0);
		atomic_fetch_add(&polluter_checks, 1);
		sched_yield();
	}
	return NULL;
}

/* The vector lengths (in quadwords) KVM offers an SVE vCPU here. */
static unsigned int host_vqs(unsigned int *vqs, uint64_t *vls)
{
	struct kvm_vcpu_init init = { .target = -1 };
	struct kvm_one_reg reg = { .id = KVM_REG_ARM64_SVE_VLS, .addr = (uint64_t)vls };
	struct kvm_vm *vm = vm_create(1);
	struct kvm_vcpu *vcpu;
	unsigned int n = 0;

	init.features[0] = 1U << KVM_ARM_VCPU_SVE;
	vcpu = aarch64_vcpu_add(vm, 0, &init, guest_code);
	vcpu_ioctl(vcpu, KVM_GET_ONE_REG, &reg);
	kvm_vm_free(vm);
	for (unsigned int q = 1; q <= VL_MAX / 16; q++)
		if (vls[(q - 1) / 64] & (1ULL << ((q - 1) % 64)))
			vqs[n++] = q;
	return n;
}

static void setup_vm(int v, const unsigned int *vqs, unsigned int nvq, const uint64_t *vls)
{
	struct vm_ctx *m = &vms[v];
	struct rng rng = { rng_seed(seed, v, 0, SALT_SETUP) };
	struct kvm_vcpu_init init = { .target = -1 };
	uint32_t vtimer_irq;

	m->sve = host_sve && (v + seed) % 2 == 0;
	if (m->sve)
		init.features[0] = 1U << KVM_ARM_VCPU_SVE;
	m->vm = __vm_create(VM_SHAPE_DEFAULT, nvcpus, EXTRA_PAGES);
	for (int i = 0; i < nvcpus; i++) {
		struct vcpu_ctx *c = &ctxs[nctxs++];
		struct kvm_vcpu *vcpu = aarch64_vcpu_add(m->vm, i, &init, guest_code);
		unsigned int vq = 0;

		if (m->sve) {
			/* A largest VL of its own: every length offered up to it (no holes). */
			uint64_t mine[KVM_ARM64_SVE_VLS_WORDS] = {};
			struct kvm_one_reg reg = { .id = KVM_REG_ARM64_SVE_VLS, .addr = (uint64_t)mine };
			int feature = KVM_ARM_VCPU_SVE;

			vq = vqs[rnd_below(&rng, nvq)];
			for (unsigned int q = 1; q <= vq; q++)
				if (vls[(q - 1) / 64] & (1ULL << ((q - 1) % 64)))
					mine[(q - 1) / 64] |= 1ULL << ((q - 1) % 64);
			vcpu_ioctl(vcpu, KVM_SET_ONE_REG, &reg);
			vcpu_ioctl(vcpu, KVM_ARM_VCPU_FINALIZE, &feature);
			vcpu_set_reg(vcpu, KVM_ARM64_SYS_REG(SYS_CPACR_EL1),
				     CPACR_ELx_FPEN | CPACR_ELx_ZEN);
			vcpu_set_reg(vcpu, KVM_ARM64_SYS_REG(SYS_ZCR_EL1), vq - 1);
		}
		*c = (struct vcpu_ctx){ .vm = m->vm, .vcpu = vcpu, .vm_nr = v, .idx = i,
					.owner = OWNER(v, i),
					.rng = { rng_seed(seed, v, i, SALT_VMM) } };
		c->late_gpa = LATE_GPA + i * m->vm->page_size;
		c->gs = addr_gva2hva(m->vm, (vm_vaddr_t)&fz[i]);
		c->gs->seed = seed;
		c->gs->vm = v;
		c->gs->idx = i;
		c->gs->owner = c->owner;
		c->gs->nvcpus = nvcpus;
		c->gs->sve = m->sve;
		c->gs->max_vl = vq * 16;
		c->gs->late_tag = lane_val(TAG_VMM, c->owner, 62, 0, 0x1a7e);
		c->gs->scratch_gva = vm_vaddr_alloc_page(m->vm);
		c->scratch_hva = addr_gva2hva(m->vm, c->gs->scratch_gva);
		c->gs->late_gva = c->late_gpa;
		c->late_hva = mmap(NULL, m->vm->page_size, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		TEST_ASSERT(c->late_hva != MAP_FAILED, "mmap");
		for (size_t o = 0; o < m->vm->page_size; o += 8)
			memcpy((char *)c->late_hva + o, &c->gs->late_tag, 8);
		vcpu_get_reg(vcpu, KVM_ARM64_SYS_REG(SYS_MPIDR_EL1), &c->mpidr);
		vcpu_args_set(vcpu, 1, i);
	}
	vm_init_descriptor_tables(m->vm);
	for (int i = 0; i < nvcpus; i++)
		vcpu_init_descriptor_tables(ctxs[nctxs - nvcpus + i].vcpu);
	virt_map(m->vm, MMIO_W_GPA, MMIO_W_GPA, 1);
	virt_map(m->vm, LATE_GPA, LATE_GPA, nvcpus);
	m->gic_fd = vgic_v3_setup(m->vm, nvcpus, 64);
	TEST_REQUIRE(m->gic_fd >= 0);
	vcpu_device_attr_get(ctxs[nctxs - 1].vcpu, KVM_ARM_VCPU_TIMER_CTRL,
			     KVM_ARM_VCPU_TIMER_IRQ_VTIMER, &vtimer_irq);
	for (int i = 0; i < nvcpus; i++) {
		ctxs[nctxs - nvcpus + i].gic_fd = m->gic_fd;
		ctxs[nctxs - nvcpus + i].gs->vtimer_irq = vtimer_irq;
	}
}

static void report_vcpu(struct vcpu_ctx *c)
{
	struct fz_vcpu *s = c->gs;
	char fixed[512] = "", kinds[512] = "", opt[256] = "";
	int nheld = 0, npresent = 0;

	for (int r = 0; r < NR_FZ; r++) {
		if (!bit_test(s->present, r))
			continue;
		npresent++;
		nheld += bit_test(s->held, r);
		if (!bit_test(s->held, r) && fz_class[r] != C_RO)
			snprintf(fixed + strlen(fixed), sizeof(fixed) - strlen(fixed), " %s",
				 fz_name[r]);
		if (fz_need[r] == N_TCRX || fz_need[r] == N_S1PIE || fz_need[r] == N_S1POE ||
		    fz_need[r] == N_FPMR)
			snprintf(opt + strlen(opt), sizeof(opt) - strlen(opt), " %s", fz_name[r]);
	}
	for (int k = 0; k < NR_KINDS; k++)
		snprintf(kinds + strlen(kinds), sizeof(kinds) - strlen(kinds), " %s %lu",
			 kind_name[k], s->kinds[k]);
	printf("state_fuzz: VM %d vCPU %d (%s): %lu rounds checked, %lu exits checked (exits that "
	       "always leave the guest, repeats counted), %lu KVM_RUNs, %lu exits to "
	       "userspace, %lu VMM checks, %lu VMM writes, %lu migrations, %lu stage-2 drops, "
	       "%lu/%lu memslot maps/unmaps, %lu VL changes; exits:%s\n", c->vm_nr, c->idx,
	       s->sve ? "SVE" : "FP/SIMD", s->rounds_checked, s->exits_checked, c->runs, c->user_exits, c->vmm_checks,
	       c->vmm_sets, c->migrations, c->zaps, c->late_maps, c->late_unmaps, s->vl_changes,
	       kinds);
	if (s->sve)
		printf("state_fuzz: VM %d vCPU %d: largest VL %lu bits; rounds by variant: sve %lu, "
		       "sve+q-first %lu, q-load %lu\n", c->vm_nr, c->idx, s->max_vl * 8,
		       s->variants[VAR_SVE], s->variants[VAR_SVE_QFIRST], s->variants[VAR_QLOAD]);
	printf("state_fuzz: VM %d vCPU %d: ICC_PMR_EL1/ICC_BPR1_EL1 read by the VMM %lu times "
	       "(%lu times KVM_GET_DEVICE_ATTR said EBUSY: another vCPU of the VM was running)\n",
	       c->vm_nr, c->idx, c->vgic_checks, c->vgic_busy);
	printf("state_fuzz: VM %d vCPU %d: digest of the first %d rounds' choices %016lx\n",
	       c->vm_nr, c->idx, DIGEST_ROUNDS, s->digest);
	printf("state_fuzz: VM %d vCPU %d: %d system registers checked, %d of them written; "
	       "%lu breakpoints, %lu watchpoints; TCR2/PIR/POR/FPMR:%s; registers that keep their "
	       "value (RAZ/WI here: checked, not written):%s\n", c->vm_nr, c->idx, npresent, nheld,
	       s->brps, s->wrps, opt[0] ? opt : " none", fixed[0] ? fixed : " none");
}

static void kick_handler(int sig)
{
}

int main(int argc, char *argv[])
{
	unsigned int vqs[VL_MAX / 16] = {}, nvq = 0;
	uint64_t vls[KVM_ARM64_SVE_VLS_WORDS] = {};
	long rust0 = vhe_rs_stat("vm_rust"), load0 = vhe_rs_stat("vcpu_load");
	long put0 = vhe_rs_stat("vcpu_put");
	struct vhe_rs_snap before = vhe_rs_snap();
	uint64_t checked = 0, vmm_checks = 0, migrations = 0;
	struct sigaction kick = { .sa_handler = kick_handler };	/* no SA_RESTART */
	pthread_t pt[MAX_CPUS];
	bool rust, module_on = vhe_rs_loaded() && vhe_rs_enabled();
	int opt;

	while ((opt = getopt(argc, argv, "s:d:m:v:q")) != -1) {
		switch (opt) {
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'd': seconds = strtoull(optarg, NULL, 0); break;
		case 'm': nvms = atoi(optarg); break;
		case 'v': nvcpus = atoi(optarg); break;
		case 'q': quiet = true; break;
		default:
			printf("usage: %s [-s SEED] [-d SECONDS] [-m VMS] [-v VCPUS_PER_VM] [-q]\n",
			       argv[0]);
			return 1;
		}
	}
	TEST_REQUIRE(nvms >= 1 && nvms <= MAX_VMS && nvcpus >= 1 && nvcpus <= MAX_VCPUS);
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus > MAX_CPUS)
		ncpus = MAX_CPUS;
	TEST_ASSERT(!sigaction(SIGUSR1, &kick, NULL), "sigaction");
	host_sve = kvm_has_cap(KVM_CAP_ARM_SVE);
	if (host_sve) {
		nvq = host_vqs(vqs, vls);
		TEST_ASSERT(nvq, "KVM offers SVE but no vector length");
		host_vl = prctl(PR_SVE_SET_VL, VL_MAX) & PR_SVE_VL_LEN_MASK;
		TEST_ASSERT(host_vl >= 16 && host_vl <= VL_MAX, "host VL %zu", host_vl);
	}
	if (!quiet)
		printf("state_fuzz: seed %lu, %lu s, %d VMs x %d vCPUs on %d CPUs; host SVE: %s; "
		       "reproduce with: state_fuzz -s %lu -d %lu -m %d -v %d\n", seed, seconds, nvms,
		       nvcpus, ncpus, host_sve ? "yes" : "no", seed, seconds, nvms, nvcpus);
	for (int v = 0; v < nvms; v++)
		setup_vm(v, vqs, nvq, vls);

	clock_gettime(CLOCK_MONOTONIC, &t_start);
	for (long cpu = 0; cpu < ncpus; cpu++)
		pthread_create(&pt[cpu], NULL, polluter, (void *)cpu);
	for (int i = 0; i < nctxs; i++)
		pthread_create(&ctxs[i].thread, NULL, vcpu_thread, &ctxs[i]);
	/*
	 * The watchdog: the run ends at -d (the vCPU threads also look at each exit
	 * to userspace); a vCPU thread still in KVM_RUN STOP_GRACE seconds after the
	 * end (a guest that can no longer see stop) is kicked out with a signal.
	 */
	for (;;) {
		int left = 0;

		for (int i = 0; i < nctxs; i++)
			left += !atomic_load(&ctxs[i].done);
		if (!left)
			break;
		if (elapsed() >= seconds)
			stop_all();
		for (int i = 0; i < nctxs && atomic_load(&stop) && elapsed() > stop_at + STOP_GRACE; i++) {
			if (atomic_load(&ctxs[i].done))
				continue;
			atomic_store(&ctxs[i].kicked, true);
			pthread_kill(ctxs[i].thread, SIGUSR1);
		}
		usleep(100000);
	}
	for (int i = 0; i < nctxs; i++)
		pthread_join(ctxs[i].thread, NULL);
	atomic_store(&stop, true);
	for (long cpu = 0; cpu < ncpus; cpu++)
		pthread_join(pt[cpu], NULL);

	for (int i = 0; i < nctxs; i++) {
		uint64_t more = ctxs[i].gs->mismatches > MAX_REPORTS ?
				ctxs[i].gs->mismatches - MAX_REPORTS : 0;

		if (more)
			printf("state_fuzz: VM %d vCPU %d: %lu more mismatches found, not printed\n",
			       ctxs[i].vm_nr, ctxs[i].idx, more);
		atomic_fetch_add(&mismatches, more);
		checked += ctxs[i].gs->exits_checked;
		vmm_checks += ctxs[i].vmm_checks;
		migrations += ctxs[i].migrations;
		if (!quiet)
			report_vcpu(&ctxs[i]);
	}
	/* Which backend ran the VMs: the module's count of VMs it took, if it is there. */
	rust = rust0 >= 0 && vhe_rs_stat("vm_rust") - rust0 >= nvms;
	if (!quiet) {
		printf("state_fuzz: %lu host polluter checks on %d CPUs (%s)\n",
		       atomic_load(&polluter_checks), ncpus,
		       host_sve ? "Z/P/FFR at the host's largest VL" : "V0-V31");
		if (load0 >= 0)
			printf("state_fuzz: vhe_rs vcpu_load +%ld, vcpu_put +%ld\n",
			       vhe_rs_stat("vcpu_load") - load0, vhe_rs_stat("vcpu_put") - put0);
		printf("state_fuzz: %.1f s\n", elapsed());
	}
	printf("STRESS state_fuzz backend=%s seed=%lu seconds=%lu vms=%d vcpus=%d exits_checked=%lu "
	       "vmm_checks=%lu migrations=%lu mismatches=%lu\n", rust ? "Rust" : "C", seed, seconds,
	       nvms, nvcpus, checked, vmm_checks, migrations, atomic_load(&mismatches));
	fflush(stdout);

	TEST_ASSERT(!atomic_load(&mismatches), "%lu mismatches (seed %lu)",
		    atomic_load(&mismatches), seed);
	TEST_ASSERT(rust == module_on, "vhe_rs is %s but the VMs ran on %s",
		    module_on ? "loaded and enabled" : "not loaded or disabled", rust ? "Rust" : "C");
	vhe_rs_check_backend(before, vhe_rs_snap());
	/* It did something: every vCPU checked rounds, the VMM and the polluters checked. */
	for (int i = 0; i < nctxs; i++)
		TEST_ASSERT(ctxs[i].gs->exits_checked > 0 && ctxs[i].host_checks > 0,
			    "VM %d vCPU %d: %lu exits checked", ctxs[i].vm_nr, ctxs[i].idx,
			    ctxs[i].gs->exits_checked);
	TEST_ASSERT(vmm_checks > 0 && atomic_load(&polluter_checks) > 0,
		    "%lu VMM checks, %lu polluter checks", vmm_checks, atomic_load(&polluter_checks));
	for (int v = 0; v < nvms; v++)
		kvm_vm_free(vms[v].vm);
	return 0;
}
