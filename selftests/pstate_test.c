// SPDX-License-Identifier: GPL-2.0
/*
 * pstate_test: the PSTATE a VMM gives an AArch64 vCPU through KVM_SET_ONE_REG
 * (core register pstate), every mode M[4:0], and PSTATE.IL.
 *
 * KVM (arch/arm64/kvm/guest.c, set_core_reg) accepts EL0t, EL1t, EL1h and,
 * when the host has AArch32 EL0, AArch32 User; it refuses with EINVAL EL2t and
 * EL2h (no nested virtualization here), EL3t, EL3h, the reserved encodings and
 * every other AArch32 mode (an AArch64 EL1); a refused write leaves pstate as
 * it was. Both backends must answer the same: the answers are checked against
 * that rule, in both passes.
 *
 * What KVM accepts, the guest must run in, never at EL2:
 *  - EL1h, EL1t, EL0t with PSTATE.IL set: the first instruction takes an
 *    Illegal Execution State exception (EC 0x0e) to the guest's EL1 (EL1h: the
 *    current-EL vector, EL0t: the lower-EL AArch64 one, handled here: the
 *    handler reports ESR and ELR and resumes at EL1h with IL clear; EL1t: the
 *    SP_EL0 vector, which the selftest library reports as an unexpected
 *    exception of vector 0);
 *  - EL1h without IL: the guest runs normally;
 *  - AArch32 User: the guest takes its exception on the lower-EL AArch32
 *    vector (an A32 "svc #0" at its PC): the library reports vector 12.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"

#define PSR_IL		(1ULL << 20)
#define PSR_DAIF	(0xfULL << 6)
#define MODE_EL0t	0x0
#define MODE_EL1t	0x4
#define MODE_EL1h	0x5
#define MODE_EL2t	0x8
#define MODE_EL2h	0x9
#define MODE_USR32	0x10
#define EC_ILL		0x0e
#define PSTATE_ID	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			 KVM_REG_ARM_CORE_REG(regs.pstate))
#define PC_ID		(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
			 KVM_REG_ARM_CORE_REG(regs.pc))

static const char *mode_name(unsigned int m)
{
	static const char *const a64[16] = {
		"EL0t", "res1", "res2", "res3", "EL1t", "EL1h", "res6", "res7",
		"EL2t", "EL2h", "res10", "res11", "EL3t", "EL3h", "res14", "res15" };
	static const char *const a32[16] = {
		"USR", "FIQ", "IRQ", "SVC", "res32_4", "res32_5", "MON", "ABT",
		"res32_8", "res32_9", "HYP", "UND", "res32_12", "res32_13", "res32_14", "SYS" };

	return m & 0x10 ? a32[m & 0xf] : a64[m];
}

/* What KVM_SET_ONE_REG must answer for mode @m on an AArch64 EL1 without NV. */
static int expected_errno(unsigned int m, bool el0_32)
{
	switch (m) {
	case MODE_EL0t: case MODE_EL1t: case MODE_EL1h:
		return 0;
	case MODE_USR32:
		return el0_32 ? 0 : EINVAL;
	default:
		return EINVAL;
	}
}

static void guest_code(void)
{
	GUEST_DONE();
}

/* EL0t with IL: the exception comes from EL0: report, resume at EL1h. */
static void guest_ill_handler(struct ex_regs *regs)
{
	GUEST_SYNC_ARGS(read_sysreg(esr_el1), regs->pc, regs->pstate, 0, 0);
	regs->pstate = (regs->pstate & ~(PSR_IL | 0x1fULL)) | MODE_EL1h;
}

static void guest_ill_handler_el1(struct ex_regs *regs)
{
	GUEST_SYNC_ARGS(read_sysreg(esr_el1), regs->pc, regs->pstate, 1, 0);
	regs->pstate &= ~PSR_IL;
}

static struct kvm_vm *new_vm(struct kvm_vcpu **vcpu)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, guest_code);

	vm_init_descriptor_tables(vm);
	vcpu_init_descriptor_tables(*vcpu);
	vm_install_sync_handler(vm, VECTOR_SYNC_LOWER_64, EC_ILL, guest_ill_handler);
	vm_install_sync_handler(vm, VECTOR_SYNC_CURRENT, EC_ILL, guest_ill_handler_el1);
	return vm;
}

/*
 * Runs the vCPU, which starts in @pstate: what it did first. Returns the
 * ucall; for UCALL_SYNC the guest's ESR, ELR, SPSR in @out.
 */
static uint64_t run_once(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	/* Not vcpu_run(): it fails the test on the library's "unexpected exception". */
	TEST_ASSERT(!__vcpu_run(vcpu), "KVM_RUN: %s", strerror(errno));
	TEST_ASSERT(vcpu->run->exit_reason == KVM_EXIT_MMIO, "exit %s",
		    exit_reason_str(vcpu->run->exit_reason));
	return get_ucall(vcpu, uc);
}

static void run_il(unsigned int mode)
{
	uint64_t pstate = PSR_DAIF | PSR_IL | mode, entry, got;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = new_vm(&vcpu);
	struct ucall uc;
	uint64_t cmd, esr;

	vcpu_get_reg(vcpu, PC_ID, &entry);
	vcpu_set_reg(vcpu, PSTATE_ID, pstate);
	vcpu_get_reg(vcpu, PSTATE_ID, &got);
	TEST_ASSERT_EQ(got, pstate);
	cmd = run_once(vcpu, &uc);
	if (mode == MODE_EL1t) {
		/* The SP_EL0 vectors are the library's "invalid" ones. */
		TEST_ASSERT(cmd == UCALL_UNHANDLED && uc.args[0] == VECTOR_SYNC_CURRENT_SP0,
			    "%s with IL: ucall %lu (vector %lu), expected an exception on the "
			    "EL1t vector", mode_name(mode), cmd, uc.args[0]);
		printf("  %s|IL: exception on the guest's EL1t synchronous vector\n",
		       mode_name(mode));
		kvm_vm_free(vm);
		return;
	}
	if (cmd == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT(cmd == UCALL_SYNC, "%s with IL: ucall %lu (arg0 %lu), expected the guest's "
		    "illegal-state handler", mode_name(mode), cmd, uc.args[0]);
	TEST_ASSERT((uc.args[1] >> 26) == EC_ILL, "%s with IL: guest ESR %lx, expected EC 0x0e",
		    mode_name(mode), uc.args[1]);
	TEST_ASSERT(uc.args[2] == entry, "%s with IL: exception at %lx, expected the first "
		    "instruction %lx", mode_name(mode), uc.args[2], entry);
	TEST_ASSERT((uc.args[3] & 0x1f) == mode && (uc.args[3] & PSR_IL),
		    "%s with IL: SPSR_EL1 %lx, expected that mode with IL", mode_name(mode),
		    uc.args[3]);
	TEST_ASSERT_EQ(uc.args[4], mode != MODE_EL0t);	/* which handler */
	esr = uc.args[1];
	/* Then the guest runs on at EL1h. */
	cmd = run_once(vcpu, &uc);
	if (cmd == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT_EQ(cmd, UCALL_DONE);
	vcpu_get_reg(vcpu, PSTATE_ID, &got);
	TEST_ASSERT((got & 0x1f) == MODE_EL1h && !(got & PSR_IL), "pstate after: %lx", got);
	printf("  %s|IL: Illegal Execution State exception at the first instruction, taken "
	       "to the guest's EL1 (ESR %lx); guest done\n", mode_name(mode), esr);
	kvm_vm_free(vm);
}

static void run_usr32(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = new_vm(&vcpu);
	vm_vaddr_t code = vm_vaddr_alloc_page(vm);
	uint32_t *w = addr_gva2hva(vm, code);
	struct ucall uc;
	uint64_t cmd;

	w[0] = 0xef000000;	/* A32: svc #0 */
	w[1] = 0xeafffffe;	/* A32: b . */
	vcpu_set_reg(vcpu, PC_ID, code);
	vcpu_set_reg(vcpu, PSTATE_ID, MODE_USR32 | (0x7 << 6));	/* A, I, F masked */
	cmd = run_once(vcpu, &uc);
	TEST_ASSERT(cmd == UCALL_UNHANDLED && uc.args[0] == VECTOR_SYNC_LOWER_32,
		    "AArch32 User: ucall %lu (vector %lu), expected an exception from AArch32 "
		    "EL0 (vector %d)", cmd, uc.args[0], VECTOR_SYNC_LOWER_32);
	printf("  USR (AArch32 EL0): the guest's exception from AArch32 EL0 (vector %lu)\n",
	       uc.args[0]);
	kvm_vm_free(vm);
}

int main(int argc, char *argv[])
{
	struct vhe_rs_snap before = vhe_rs_snap();
	long il_before = vhe_rs_stat("exit_il"), il_after;
	unsigned int accepted = 0, refused = 0;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint64_t pfr0, orig, got;
	bool el0_32;

	vm = new_vm(&vcpu);
	vcpu_get_reg(vcpu, KVM_ARM64_SYS_REG(SYS_ID_AA64PFR0_EL1), &pfr0);
	el0_32 = (pfr0 & 0xf) == 2;
	vcpu_get_reg(vcpu, PSTATE_ID, &orig);
	printf("pstate_test: KVM_SET_ONE_REG(pstate) for every M[4:0] (AArch32 EL0 %s):\n",
	       el0_32 ? "supported" : "not supported");
	for (unsigned int m = 0; m < 32; m++) {
		for (int il = 0; il < 2; il++) {
			uint64_t val = PSR_DAIF | m | (il ? PSR_IL : 0);
			struct kvm_one_reg reg = { .id = PSTATE_ID, .addr = (uint64_t)&val };
			int ret = __vcpu_ioctl(vcpu, KVM_SET_ONE_REG, &reg);
			int err = ret ? errno : 0, want = expected_errno(m, el0_32);

			TEST_ASSERT(ret == 0 || ret == -1, "ret %d", ret);
			TEST_ASSERT(err == want, "pstate %lx (%s%s): KVM_SET_ONE_REG errno %d (%s), "
				    "expected %d", val, mode_name(m), il ? "|IL" : "", err,
				    strerror(err), want);
			vcpu_get_reg(vcpu, PSTATE_ID, &got);
			TEST_ASSERT(got == (err ? orig : val), "pstate %lx (%s): reads back %lx",
				    val, mode_name(m), got);
			if (!err) {
				vcpu_set_reg(vcpu, PSTATE_ID, orig);
				accepted++;
			} else {
				refused++;
			}
			if (!il)
				printf("  %-8s %s\n", mode_name(m), err ? strerror(err) : "accepted");
		}
	}
	kvm_vm_free(vm);
	TEST_ASSERT_EQ(accepted, 2 * (3 + el0_32));

	printf("pstate_test: what KVM accepts, run:\n");
	run_il(MODE_EL1h);
	run_il(MODE_EL0t);
	run_il(MODE_EL1t);
	if (el0_32)
		run_usr32();
	/* EL1h without IL: the guest just runs. */
	vm = new_vm(&vcpu);
	vcpu_set_reg(vcpu, PSTATE_ID, PSR_DAIF | MODE_EL1h);
	{
		struct ucall uc;

		TEST_ASSERT_EQ(run_once(vcpu, &uc), UCALL_DONE);
	}
	kvm_vm_free(vm);
	/*
	 * With the module: no entry was an illegal exception return at EL2
	 * (ARM_EXCEPTION_IL, counted as exit_il).
	 */
	il_after = vhe_rs_stat("exit_il");
	if (vhe_rs_loaded() && vhe_rs_enabled())
		TEST_ASSERT(il_before >= 0 && il_after == il_before,
			    "module counters: exit_il %ld -> %ld", il_before, il_after);
	printf("pstate_test: %u values accepted, %u refused with EINVAL; %s; backend: %s\n",
	       accepted, refused, il_after >= 0 ? "no illegal exception return at EL2 (exit_il)" :
	       "the guest ran at EL1/EL0 only", vhe_rs_check_backend(before, vhe_rs_snap()));
	return 0;
}
