// SPDX-License-Identifier: GPL-2.0
/*
 * vhe_rs_smoke: the guest workload `make run` shows. One vCPU makes hypercalls
 * that KVM answers in the kernel (hvc, SMCCC_VERSION) and, every few of them,
 * an exit to userspace (ucall, an MMIO write); the host checks both, and the
 * program prints which backend ran the guest and whether the vhe_rs module is loaded.
 *
 *   vhe_rs_smoke [-n ITERATIONS]
 */
#include <linux/arm-smccc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"

#define SYNC_EVERY 16

static void guest_code(uint64_t iterations)
{
	struct arm_smccc_res res;
	uint64_t i;

	for (i = 1; i <= iterations; i++) {
		smccc_hvc(ARM_SMCCC_VERSION_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
		GUEST_ASSERT_EQ(res.a0 >= ARM_SMCCC_VERSION_1_1, 1);
		if (i % SYNC_EVERY == 0)
			GUEST_SYNC(i);
	}
	GUEST_DONE();
}

int main(int argc, char *argv[])
{
	uint64_t iterations = 1024, syncs = 0, expect;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct vhe_rs_snap before = vhe_rs_snap();
	struct ucall uc;
	int opt;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n')
			iterations = strtoull(optarg, NULL, 0);
	}

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vcpu_args_set(vcpu, 1, iterations);

	for (;;) {
		vcpu_run(vcpu);
		TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_MMIO);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			expect = (syncs + 1) * SYNC_EVERY;
			TEST_ASSERT(uc.args[1] == expect, "sync %lu, expected %lu",
				    uc.args[1], expect);
			syncs++;
			continue;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		case UCALL_DONE:
			break;
		default:
			TEST_FAIL("unexpected ucall %lu", uc.cmd);
		}
		break;
	}
	TEST_ASSERT(syncs == iterations / SYNC_EVERY, "%lu syncs, expected %lu",
		    syncs, iterations / SYNC_EVERY);
	printf("vhe_rs_smoke: guest made %lu hypercalls and %lu exits to userspace: ok\n",
	       iterations, syncs);
	kvm_vm_free(vm);
	printf("vhe_rs_smoke: backend that ran the guest: %s\n",
	       vhe_rs_check_backend(before, vhe_rs_snap()));
	return 0;
}
