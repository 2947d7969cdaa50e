// SPDX-License-Identifier: GPL-2.0
/*
 * aarch32_guest_test: a tiny AArch32 EL1 guest (KVM_ARM_VCPU_EL1_32BIT, SVC
 * mode, MMU off, A32 instruction words placed in guest memory by the VMM):
 *  - reads MIDR (not trapped: VPIDR_EL2) and ID_PFR0 (trapped by HCR_EL2.TID3:
 *    a CP15_32 exit, emulated by the host), through CP15;
 *  - enables VFP (CPACR, FPEXC.EN: the first FP access, a lazy FP trap that
 *    EL2 serves, restoring FPEXC32_EL2 for an AArch32 EL1), writes D0 and D7;
 *  - HVC #0 with SMCCC_VERSION in r0 (HVC32, answered by the host);
 *  - writes and reads back ICC_PMR through CP15 (with the GICv3 CPU
 *    interface trapped: a CP15_32 exit EL2 emulates);
 *  - stores to unmapped memory (an MMIO exit to userspace: the vCPU is put),
 *    then reads D0 and D7 (the first FP use after it: traps again) and FPEXC;
 *  - stores once more: the VMM reads r0-r12 through KVM_GET_ONE_REG and
 *    checks every value.
 * With vhe_rs loaded and enabled, the module's exit counters too.
 *
 *   aarch32_guest_test [-n ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vgic.h"
#include "vhe_rs_exits.h"

#define MMIO_GPA	0x80000000ULL
#define EC_HVC32	0x12

/* Assembled with clang-19 --target=armv7a-none-eabi (the source is in the comments). */
static const uint32_t a32_code[] = {
	0xee104f10,	/* mrc	p15, 0, r4, c0, c0, 0	MIDR */
	0xee105f11,	/* mrc	p15, 0, r5, c0, c1, 0	ID_PFR0: trapped (TID3) */
	0xe3a0160f,	/* mov	r1, #(0xf << 20) */
	0xee011f50,	/* mcr	p15, 0, r1, c1, c0, 2	CPACR: CP10, CP11 full access */
	0xf57ff06f,	/* isb */
	0xe3a01101,	/* mov	r1, #(1 << 30) */
	0xeee81a10,	/* vmsr	fpexc, r1		FPEXC.EN: first FP access */
	0xe3016234,	/* movw	r6, #0x1234 */
	0xe3456678,	/* movt	r6, #0x5678 */
	0xe3097abc,	/* movw	r7, #0x9abc */
	0xe34d7ef0,	/* movt	r7, #0xdef0 */
	0xec476b10,	/* vmov	d0, r6, r7 */
	0xec467b17,	/* vmov	d7, r7, r6 */
	0xe3a00102,	/* mov	r0, #0x80000000		SMCCC_VERSION */
	0xe1400070,	/* hvc	#0 */
	0xe1a08000,	/* mov	r8, r0 */
	0xe3a010f0,	/* mov	r1, #0xf0 */
	0xee041f16,	/* mcr	p15, 0, r1, c4, c6, 0	ICC_PMR */
	0xf57ff06f,	/* isb */
	0xee141f16,	/* mrc	p15, 0, r1, c4, c6, 0	ICC_PMR */
	0xe3a09102,	/* mov	r9, #0x80000000		no memslot there */
	0xe5898000,	/* str	r8, [r9]		MMIO exit: the vCPU is put */
	0xec5bab10,	/* vmov	r10, r11, d0		first FP use after it */
	0xec53cb17,	/* vmov	r12, r3, d7 */
	0xeef82a10,	/* vmrs	r2, fpexc */
	0xe589a004,	/* str	r10, [r9, #4]		done */
	0xeafffffe,	/* b	. */
};

#define CORE_REG(x)	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			 KVM_REG_ARM_CORE_REG(x))
#define PSR_AA32_MODE_SVC	0x13
#define PSR_AA32_T		(1 << 5)

static uint64_t reg(struct kvm_vcpu *vcpu, int n)
{
	uint64_t v;

	vcpu_get_reg(vcpu, CORE_REG(regs.regs[n]), &v);
	return v;
}

/* Runs to the next exit, which must be an MMIO write to @gpa; returns its data. */
static uint32_t run_to_mmio(struct kvm_vcpu *vcpu, uint64_t gpa)
{
	struct kvm_run *run = vcpu->run;
	uint64_t pc, pstate;

	vcpu_run(vcpu);
	vcpu_get_reg(vcpu, CORE_REG(regs.pc), &pc);
	vcpu_get_reg(vcpu, CORE_REG(regs.pstate), &pstate);
	TEST_ASSERT(run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == gpa &&
		    run->mmio.is_write && run->mmio.len == 4,
		    "exit %s at %llx (%s, %u bytes), expected a write to %lx; guest PC %lx, "
		    "PSTATE %lx", exit_reason_str(run->exit_reason),
		    (unsigned long long)run->mmio.phys_addr, run->mmio.is_write ? "write" : "read",
		    run->mmio.len, gpa, pc, pstate);
	return *(uint32_t *)run->mmio.data;
}

static void one_guest(bool print)
{
	struct kvm_vcpu_init init;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint64_t gpa, pstate, midr, pfr0, r[13];
	uint32_t first;
	int gic;

	vm = vm_create(1);
	vcpu = __vm_vcpu_add(vm, 0);
	vm_ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init);
	init.features[0] |= 1U << KVM_ARM_VCPU_EL1_32BIT;
	vcpu_ioctl(vcpu, KVM_ARM_VCPU_INIT, &init);
	gic = vgic_v3_setup(vm, 1, 64);
	TEST_REQUIRE(gic >= 0);

	gpa = vm_phy_page_alloc(vm, 0x100000, 0);
	TEST_ASSERT(gpa + sizeof(a32_code) < MMIO_GPA, "code at %lx", gpa);
	memcpy(addr_gpa2hva(vm, gpa), a32_code, sizeof(a32_code));
	vcpu_set_reg(vcpu, CORE_REG(regs.pc), gpa);
	vcpu_get_reg(vcpu, CORE_REG(regs.pstate), &pstate);
	TEST_ASSERT((pstate & 0x1f) == PSR_AA32_MODE_SVC && !(pstate & PSR_AA32_T),
		    "reset PSTATE %lx: expected AArch32 SVC, A32", pstate);
	vcpu_get_reg(vcpu, KVM_ARM64_SYS_REG(SYS_MIDR_EL1), &midr);
	vcpu_get_reg(vcpu, KVM_ARM64_SYS_REG(SYS_ID_PFR0_EL1), &pfr0);

	first = run_to_mmio(vcpu, MMIO_GPA);
	TEST_ASSERT(first >= 0x10001 && first < 0x80000000, "r8 (SMCCC_VERSION) %x", first);
	run_to_mmio(vcpu, MMIO_GPA + 4);
	for (int i = 0; i < 13; i++)
		r[i] = reg(vcpu, i);
	TEST_ASSERT(r[4] == (uint32_t)midr, "MIDR read %lx, the VMM's %lx", r[4], midr);
	TEST_ASSERT(r[5] == (uint32_t)pfr0, "ID_PFR0 read %lx, the VMM's %lx", r[5], pfr0);
	TEST_ASSERT(r[8] == first && r[0] == first, "r0 %lx, r8 %lx: the HVC's answer %x",
		    r[0], r[8], first);
	TEST_ASSERT(r[1] == 0xf0, "ICC_PMR read back %lx, expected 0xf0", r[1]);
	TEST_ASSERT(r[10] == 0x56781234 && r[11] == 0xdef09abc && r[12] == 0xdef09abc &&
		    r[3] == 0x56781234, "D0, D7 across the exits: r10 %lx r11 %lx r12 %lx r3 %lx",
		    r[10], r[11], r[12], r[3]);
	TEST_ASSERT(r[2] & (1 << 30), "FPEXC %lx: EN lost across the exits", r[2]);
	if (print)
		printf("aarch32_guest_test: AArch32 EL1 guest: MIDR %lx and ID_PFR0 %lx read through "
		       "CP15, SMCCC version %x by HVC, ICC_PMR written and read back, D0/D7 and "
		       "FPEXC (%lx) intact across the MMIO exit\n", r[4], r[5], first, r[2]);
	close(gic);
	kvm_vm_free(vm);
}

static bool cmdline_has(const char *key)
{
	char buf[4096] = "";
	FILE *f = fopen("/proc/cmdline", "r");

	TEST_ASSERT(f && fgets(buf, sizeof(buf), f), "/proc/cmdline");
	fclose(f);
	return strstr(buf, key) != NULL;
}

int main(int argc, char *argv[])
{
	struct vhe_rs_snap before = vhe_rs_snap();
	bool ctrap = cmdline_has("kvm-arm.vgic_v3_common_trap=1");
	struct vhe_rs_exits a, b;
	uint64_t n = 4;
	int opt;

	while ((opt = getopt(argc, argv, "n:")) != -1)
		if (opt == 'n')
			n = strtoull(optarg, NULL, 0);
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_ARM_EL1_32BIT));

	a = vhe_rs_exits();
	for (uint64_t i = 0; i < n; i++)
		one_guest(i == 0);
	b = vhe_rs_exits();
	vhe_rs_exits_print("aarch32", a, b);
	if (b.valid) {
		long pmr = ctrap ? 2 * n : 0;

		/* ID_PFR0 to the host; ICC_PMR at EL2 when trapped. */
		TEST_ASSERT(HOST_D(a, b, EC_CP15_32) == (long)n && EL2_D(a, b, EC_CP15_32) == pmr,
			    "module counters: CP15_32 to the host +%ld, at EL2 +%ld; expected %lu "
			    "and %ld", HOST_D(a, b, EC_CP15_32), EL2_D(a, b, EC_CP15_32), n, pmr);
		TEST_ASSERT(HOST_D(a, b, EC_HVC32) == (long)n,
			    "module counters: HVC32 to the host +%ld, expected %lu",
			    HOST_D(a, b, EC_HVC32), n);
		/* FPEXC's write and the first FP use after the MMIO exit trap, at EL2. */
		TEST_ASSERT(EL2_D(a, b, EC_FP_ASIMD) >= 2 * (long)n &&
			    HOST_D(a, b, EC_FP_ASIMD) == 0,
			    "module counters: FP_ASIMD at EL2 +%ld, to the host +%ld; expected >= %lu "
			    "and 0", EL2_D(a, b, EC_FP_ASIMD), HOST_D(a, b, EC_FP_ASIMD), 2 * n);
	}
	printf("aarch32_guest_test: %lu guests; backend: %s\n", n,
	       vhe_rs_check_backend(before, vhe_rs_snap()));
	return 0;
}
