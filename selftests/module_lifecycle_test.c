// SPDX-License-Identifier: GPL-2.0
/*
 * module_lifecycle_test: vhe_rs can be unloaded only when no VM uses it, and
 * loading and unloading it again and again, with VMs run in between, is clean.
 *
 *  1. with vhe_rs loaded, a VM that has run (so it is on the Rust backend) holds
 *     the module: delete_module() fails with EBUSY or EWOULDBLOCK/EAGAIN;
 *  2. once the VM is gone, delete_module() succeeds;
 *  3. N times: load the module, run a VM on it (checked to be on Rust), free it,
 *     unload; the VM run while the module is out runs on C;
 *  4. the module is loaded again at the end, as the test found it.
 * The VM runner fails the test on any Oops, WARNING or BUG in the kernel log.
 *
 *   module_lifecycle_test [-k MODULE.ko] [-n CYCLES]      (skips if vhe_rs is not loaded)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/arm-smccc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"

static void guest_code(void)
{
	struct arm_smccc_res res;

	for (int i = 0; i < 16; i++)
		smccc_hvc(ARM_SMCCC_VERSION_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	GUEST_DONE();
}

static struct kvm_vm *run_vm(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_DONE);
	return vm;
}

/* rmmod; the module's bug_ counters (gone with it) must be 0 first. */
static int unload(void)
{
	char bug[64];
	long bugs = vhe_rs_bug_stats(bug);

	TEST_ASSERT(bugs <= 0, "before rmmod: %ld in vhe_rs's bug_ counters (%s first)", bugs, bug);
	return syscall(__NR_delete_module, "vhe_rs", O_NONBLOCK);
}

static void load(const char *ko)
{
	int fd = open(ko, O_RDONLY);

	TEST_ASSERT(fd >= 0, "open %s", ko);
	TEST_ASSERT(!syscall(__NR_finit_module, fd, "", 0), "finit_module(%s)", ko);
	close(fd);
}

int main(int argc, char *argv[])
{
	const char *ko = "/opt/vhe_rs.ko";
	struct vhe_rs_snap before;
	int cycles = 100, opt, ret;
	struct kvm_vm *vm;

	while ((opt = getopt(argc, argv, "k:n:")) != -1) {
		if (opt == 'k')
			ko = optarg;
		else if (opt == 'n')
			cycles = atoi(optarg);
	}
	TEST_REQUIRE(vhe_rs_loaded() && vhe_rs_enabled());

	/* 1, 2: a VM on the module holds it. */
	before = vhe_rs_snap();
	vm = run_vm();
	TEST_ASSERT(vhe_rs_stat("vm_rust") > before.vm_rust, "the VM is not on vhe_rs");
	ret = unload();
	TEST_ASSERT(ret == -1 && (errno == EBUSY || errno == EWOULDBLOCK),
		    "rmmod with a VM on the module: ret %d errno %d, expected EBUSY or EWOULDBLOCK",
		    ret, errno);
	printf("module_lifecycle_test: rmmod while a VM uses vhe_rs: %s (refused)\n",
	       strerror(errno));
	kvm_vm_free(vm);
	TEST_ASSERT(!unload(), "rmmod after the VM is gone: errno %d", errno);
	TEST_ASSERT(!vhe_rs_loaded(), "vhe_rs still loaded");

	/* 3: cycles. */
	for (int i = 0; i < cycles; i++) {
		before = vhe_rs_snap();
		vm = run_vm();	/* module out: C */
		kvm_vm_free(vm);
		TEST_ASSERT(before.vm_rust == -1 && vhe_rs_stat("vm_rust") == -1,
			    "cycle %d: module counters without the module", i);

		load(ko);
		before = vhe_rs_snap();
		vm = run_vm();
		kvm_vm_free(vm);
		vhe_rs_check_backend(before, vhe_rs_snap());
		TEST_ASSERT(!unload(), "cycle %d: rmmod: errno %d", i, errno);
	}

	/* 4. */
	load(ko);
	printf("module_lifecycle_test: %d load/run/unload cycles: ok\n", cycles);
	return 0;
}
