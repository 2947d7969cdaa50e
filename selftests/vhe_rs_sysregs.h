/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest EL1/EL0 system registers the vhe-rs sysreg tests set and check: what
 * KVM/arm64 VHE keeps in the vCPU context and switches at vcpu_load/vcpu_put
 * (__sysreg_{save,restore}_{user,el1}_state) or at every exit (MDSCR_EL1, SP_EL0),
 * with the values a guest can write into them without breaking itself, and how
 * the guest writes and reads them.
 *
 * Values carry their owner: a 64-bit value is 0xPPOORR...... with PP = 0x5e
 * (written by the guest) or 0x4b (written by the host with KVM_SET_ONE_REG),
 * OO = the owner (VM and vCPU) and RR = the register, so a value found in the
 * wrong place says whose it is. Registers narrower than 64 bits carry as much
 * of that as fits.
 *
 * Under QEMU 7.2, AMAIR_EL1, AFSR0_EL1 and AFSR1_EL1 are RAZ/WI: they are
 * checked, but hold 0 whatever is written, so a lost save or restore of them
 * cannot show there (the tests print which registers did not hold their value).
 *
 * Not covered: registers of features QEMU 7.2 -cpu max does not give a guest
 * (TCR2_EL1, PIR_EL1, PIRE0_EL1, POR_EL0/EL1: FEAT_TCR2/S1PIE/S1POE; TFSR*_EL1:
 * MTE needs -M virt,mte=on), the AArch32 ones (DACR32_EL2, IFSR32_EL2) and SP_EL1,
 * which EL1 cannot name while it uses it as its stack pointer: the tests check it
 * as SP around every exit instead.
 */
#ifndef SELFTEST_VHE_RS_SYSREGS_H
#define SELFTEST_VHE_RS_SYSREGS_H

#include <linux/bits.h>
#include <stdint.h>

#include "kvm_util.h"
#include "processor.h"

#define SYS_SP_EL0		sys_reg(3, 0, 4, 1, 0)

#define F_W	1	/* the guest writes it (value of its own) */
#define F_SET	2	/* the host may write it with KVM_SET_ONE_REG */
#define F_RO	4	/* the guest leaves it as the library set it: checked only */

#define KVM_SYS(r)	KVM_ARM64_SYS_REG(SYS_##r)

/*
 * name, encoding, KVM_{GET,SET}_ONE_REG id, flags. Guest writes go in this order:
 * TCR_EL1 (which sets EPD1: no TTBR1 walks) before TTBR1_EL1.
 */
#define VHE_RS_SYSREGS(X)								\
	X(TPIDR_EL0,		SYS_TPIDR_EL0,		KVM_SYS(TPIDR_EL0),	F_W | F_SET)	\
	X(TPIDRRO_EL0,		SYS_TPIDRRO_EL0,	KVM_SYS(TPIDRRO_EL0),	F_W | F_SET)	\
	X(TPIDR_EL1,		SYS_TPIDR_EL1,		KVM_SYS(TPIDR_EL1),	F_W | F_SET)	\
	X(CONTEXTIDR_EL1,	SYS_CONTEXTIDR_EL1,	KVM_SYS(CONTEXTIDR_EL1), F_W | F_SET)	\
	X(MAIR_EL1,		SYS_MAIR_EL1,		KVM_SYS(MAIR_EL1),	F_W)		\
	X(AMAIR_EL1,		SYS_AMAIR_EL1,		KVM_SYS(AMAIR_EL1),	F_W)		\
	X(TCR_EL1,		SYS_TCR_EL1,		KVM_SYS(TCR_EL1),	F_W)		\
	X(TTBR1_EL1,		SYS_TTBR1_EL1,		KVM_SYS(TTBR1_EL1),	F_W | F_SET)	\
	X(ESR_EL1,		SYS_ESR_EL1,		KVM_SYS(ESR_EL1),	F_W)		\
	X(FAR_EL1,		SYS_FAR_EL1,		KVM_SYS(FAR_EL1),	F_W | F_SET)	\
	X(PAR_EL1,		SYS_PAR_EL1,		KVM_SYS(PAR_EL1),	F_W)		\
	X(AFSR0_EL1,		SYS_AFSR0_EL1,		KVM_SYS(AFSR0_EL1),	F_W)		\
	X(AFSR1_EL1,		SYS_AFSR1_EL1,		KVM_SYS(AFSR1_EL1),	F_W)		\
	X(CNTKCTL_EL1,		SYS_CNTKCTL_EL1,	KVM_SYS(CNTKCTL_EL1),	F_W)		\
	X(ELR_EL1,		SYS_ELR_EL1,		ARM64_CORE_REG(elr_el1), F_W | F_SET)	\
	X(SPSR_EL1,		SYS_SPSR_EL1,	ARM64_CORE_REG(spsr[KVM_SPSR_EL1]), F_W)	\
	X(MDSCR_EL1,		SYS_MDSCR_EL1,		KVM_SYS(MDSCR_EL1),	F_W)		\
	X(SCTLR_EL1,		SYS_SCTLR_EL1,		KVM_SYS(SCTLR_EL1),	F_W)		\
	X(SP_EL0,		SYS_SP_EL0,		ARM64_CORE_REG(regs.sp), F_W | F_SET)	\
	X(VBAR_EL1,		SYS_VBAR_EL1,		KVM_SYS(VBAR_EL1),	F_RO)		\
	X(TTBR0_EL1,		SYS_TTBR0_EL1,		KVM_SYS(TTBR0_EL1),	F_RO)		\
	X(CPACR_EL1,		SYS_CPACR_EL1,		KVM_SYS(CPACR_EL1),	F_RO)		\
	X(MPIDR_EL1,		SYS_MPIDR_EL1,		KVM_SYS(MPIDR_EL1),	F_RO)		\
	X(MIDR_EL1,		SYS_MIDR_EL1,		KVM_SYS(MIDR_EL1),	F_RO)

#define VHE_RS_R_ENUM(n, enc, id, f)	R_##n,
enum { VHE_RS_SYSREGS(VHE_RS_R_ENUM) NR_SYSREGS };

#define VHE_RS_R_NAME(n, enc, id, f)	#n,
static const char *const sysreg_name[NR_SYSREGS] = { VHE_RS_SYSREGS(VHE_RS_R_NAME) };
#define VHE_RS_R_ID(n, enc, id, f)	id,
static const uint64_t sysreg_id[NR_SYSREGS] = { VHE_RS_SYSREGS(VHE_RS_R_ID) };
#define VHE_RS_R_FLAGS(n, enc, id, f)	f,
static const int sysreg_flags[NR_SYSREGS] = { VHE_RS_SYSREGS(VHE_RS_R_FLAGS) };

/* Fields and bits the values below touch. */
#define TCR_T1SZ		GENMASK_ULL(21, 16)
#define TCR_EPD1		BIT_ULL(23)
#define TCR_TBI1		BIT_ULL(38)
#define SCTLR_EL0_BITS		(BIT_ULL(26) | BIT_ULL(18) | BIT_ULL(16) | BIT_ULL(15) | BIT_ULL(14))
#define MDSCR_TDCC		BIT_ULL(12)
#define MAIR_LIB_ATTRS		GENMASK_ULL(47, 0)	/* indexes 0-5: the library's (MT_*) */
#define ESR_EC_VALS		0x24	/* EC of the ESR_EL1 values: data abort, lower EL */
#define VAL_GUEST		0x5eULL
#define VAL_HOST		0x4bULL

/*
 * The value of register @r owned by @owner (1-255), @prefix VAL_GUEST or VAL_HOST,
 * @serial to make successive host values differ. Most are written as they are;
 * for three the guest keeps what its page tables and its code need:
 *  - MAIR_EL1: only attribute indexes 6 and 7 (bits 63:48), which the library's
 *    page tables do not use; their attributes are valid encodings;
 *  - TCR_EL1: EPD1 (no TTBR1 walks: the library maps only TTBR0), T1SZ, TBI1;
 *    the guest ORs them into the library's TTBR0 settings;
 *  - SCTLR_EL1: bits that only matter at EL0 (UCI, nTWE, nTWI, UCT, DZE), which
 *    the guest XORs in; the guest never runs at EL0.
 * MDSCR_EL1 gets TDCC at most (traps EL0 DCC accesses): nothing that enables a
 * debug event. CNTKCTL_EL1: EL0 access bits and EVNTI, never EVNTEN.
 */
static inline uint64_t sysreg_value(int r, uint64_t prefix, uint64_t owner, uint64_t serial)
{
	static const uint8_t attrs[8] = { 0x00, 0x04, 0x08, 0x0c, 0x44, 0xaa, 0xbb, 0xff };
	uint64_t v = prefix << 56 | (owner & 0xff) << 48 | (uint64_t)(r + 1) << 40 |
		     (serial & 0xffff) << 16 | 0xc0de;

	switch (r) {
	case R_CONTEXTIDR_EL1:
		return (prefix << 24 | (owner & 0xff) << 16 | (serial & 0xffff)) & 0xffffffff;
	case R_MAIR_EL1:
		return (uint64_t)attrs[owner % 8] << 48 | (uint64_t)attrs[(owner / 8 + 3) % 8] << 56;
	case R_TCR_EL1:
		return TCR_EPD1 | (16 + owner % 24) << 16 | ((owner & 1) ? TCR_TBI1 : 0);
	case R_TTBR1_EL1:
		return v & ~1ULL;	/* CnP */
	case R_ESR_EL1:		/* EC, IL, an ISS of its own */
		return (uint64_t)ESR_EC_VALS << 26 | BIT(25) | (owner & 0xff) << 16 | (serial & 0xffff);
	case R_PAR_EL1:		/* F = 0: ATTR, PA[47:12] carrying owner and serial, RES1 bit 11 */
		return 0x44ULL << 56 | (owner & 0xff) << 40 | (serial & 0xfffffff) << 12 | BIT(11);
	case R_CNTKCTL_EL1:
		return (owner & 0xf) << 4 | ((owner >> 4) & 3) | ((owner >> 6) & 3) << 8;
	case R_SPSR_EL1:	/* NZCV from the owner, DAIF masked, EL1h */
		return (owner & 0xf) << 28 | 0x3c5;
	case R_MDSCR_EL1:
		return (owner & 1) ? MDSCR_TDCC : 0;
	case R_SCTLR_EL1:
		return ((owner & 1) ? BIT_ULL(26) : 0) | ((owner & 2) ? BIT_ULL(18) : 0) |
		       ((owner & 4) ? BIT_ULL(16) : 0) | ((owner & 8) ? BIT_ULL(15) : 0) |
		       ((owner & 16) ? 0 : BIT_ULL(14));
	default:
		return v;
	}
}

/* Guest: read every register of the table into @v. */
static inline void guest_read_sysregs(uint64_t *v)
{
#define VHE_RS_R_READ(n, enc, id, f)	v[R_##n] = read_sysreg_s(enc);
	VHE_RS_SYSREGS(VHE_RS_R_READ)
}

/*
 * Guest: write @val (from sysreg_value()) into the F_W registers, merged as it
 * says for MAIR_EL1, TCR_EL1 and SCTLR_EL1; what was written goes to @wrote.
 */
static inline void guest_write_sysregs(const uint64_t *val, uint64_t *wrote)
{
	uint64_t w[NR_SYSREGS];

	for (int i = 0; i < NR_SYSREGS; i++)
		w[i] = val[i];
	w[R_MAIR_EL1] = (read_sysreg_s(SYS_MAIR_EL1) & MAIR_LIB_ATTRS) |
			(val[R_MAIR_EL1] & ~MAIR_LIB_ATTRS);
	w[R_TCR_EL1] = (read_sysreg_s(SYS_TCR_EL1) & ~(TCR_T1SZ | TCR_TBI1)) | val[R_TCR_EL1];
	w[R_SCTLR_EL1] = read_sysreg_s(SYS_SCTLR_EL1) ^ (val[R_SCTLR_EL1] & SCTLR_EL0_BITS);
#define VHE_RS_R_WRITE(n, enc, id, f)					\
	do {								\
		if ((f) & F_W) {					\
			write_sysreg_s(w[R_##n], enc);			\
			isb();						\
		}							\
	} while (0);
	VHE_RS_SYSREGS(VHE_RS_R_WRITE)
	for (int i = 0; i < NR_SYSREGS; i++)
		wrote[i] = w[i];
}

#endif
