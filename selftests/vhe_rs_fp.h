/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest's FP/SIMD register file as the FP tests load and store it: V0-V31,
 * FPSR and FPCR in one struct, moved by inline asm (no compiler-generated FP
 * code in between). LOAD_FPREGS(base)/STORE_FPREGS(base) take the asm operand
 * of a struct fpregs pointer; STORE_FPREGS's first instruction is an FP/SIMD
 * one (stp q0, q1), the lazy FP trap's trigger after an exit. Both use x9.
 * Their offsets hold for any struct that starts as struct fpregs does (V0-V31,
 * then FPSR at 512 and FPCR at 520).
 */
#ifndef SELFTEST_VHE_RS_FP_H
#define SELFTEST_VHE_RS_FP_H

#include <stdint.h>

struct fpregs {
	__uint128_t v[32];
	uint64_t fpsr, fpcr;
};

/*
 * Values owned by @tag: a byte pattern with the tag in it (V0's upper half is
 * the tag itself); cumulative exception flags (IOC..IXC, IDC) in FPSR, and
 * FPCR's RMode.
 */
static inline void fpregs_fill(struct fpregs *r, uint64_t tag)
{
	for (int i = 0; i < 32; i++)
		r->v[i] = ((__uint128_t)(tag ^ (0x1111111111111111ULL * i)) << 64) |
			  (tag * 0x9e3779b97f4a7c15ULL + i);
	r->fpsr = (tag & 1) ? 0x9f : 0x11;
	r->fpcr = (tag & 2) ? (3ULL << 22) : (1ULL << 22);	/* RMode */
}

#define LOAD_FPREGS(base)						\
	"ldp q0, q1, [" base ", #0]\n ldp q2, q3, [" base ", #32]\n"	\
	"ldp q4, q5, [" base ", #64]\n ldp q6, q7, [" base ", #96]\n"	\
	"ldp q8, q9, [" base ", #128]\n ldp q10, q11, [" base ", #160]\n"	\
	"ldp q12, q13, [" base ", #192]\n ldp q14, q15, [" base ", #224]\n"	\
	"ldp q16, q17, [" base ", #256]\n ldp q18, q19, [" base ", #288]\n"	\
	"ldp q20, q21, [" base ", #320]\n ldp q22, q23, [" base ", #352]\n"	\
	"ldp q24, q25, [" base ", #384]\n ldp q26, q27, [" base ", #416]\n"	\
	"ldp q28, q29, [" base ", #448]\n ldp q30, q31, [" base ", #480]\n"	\
	"ldr x9, [" base ", #512]\n msr fpsr, x9\n"			\
	"ldr x9, [" base ", #520]\n msr fpcr, x9\n"

#define STORE_FPREGS(base)						\
	"stp q0, q1, [" base ", #0]\n stp q2, q3, [" base ", #32]\n"	\
	"stp q4, q5, [" base ", #64]\n stp q6, q7, [" base ", #96]\n"	\
	"stp q8, q9, [" base ", #128]\n stp q10, q11, [" base ", #160]\n"	\
	"stp q12, q13, [" base ", #192]\n stp q14, q15, [" base ", #224]\n"	\
	"stp q16, q17, [" base ", #256]\n stp q18, q19, [" base ", #288]\n"	\
	"stp q20, q21, [" base ", #320]\n stp q22, q23, [" base ", #352]\n"	\
	"stp q24, q25, [" base ", #384]\n stp q26, q27, [" base ", #416]\n"	\
	"stp q28, q29, [" base ", #448]\n stp q30, q31, [" base ", #480]\n"	\
	"mrs x9, fpsr\n str x9, [" base ", #512]\n"			\
	"mrs x9, fpcr\n str x9, [" base ", #520]\n"

/* V0-V31 as asm clobbers. */
#define FP_VREG_CLOBBERS						\
	"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",	\
	"v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20",	\
	"v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30",	\
	"v31"

/* The clobbers of LOAD_FPREGS/STORE_FPREGS (a test adds its own after them). */
#define FP_REG_CLOBBERS	FP_VREG_CLOBBERS, "x9", "memory"

#endif
