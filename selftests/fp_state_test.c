// SPDX-License-Identifier: GPL-2.0
/*
 * fp_state_test: FP/SIMD state must never cross between guest and host.
 *
 * Each vCPU's guest loads V0-V31, FPSR and FPCR with values of its own, then
 * exits again and again (hypercalls KVM answers in the kernel, MMIO writes that go
 * to userspace), and after every exit reads its registers back and checks them.
 * Meanwhile, on the host:
 *  - the vCPU threads migrate between the host CPUs (sched_setaffinity) at every
 *    exit to userspace;
 *  - a "polluter" thread per CPU keeps the FP unit busy with values of its own,
 *    yielding so that it preempts the vCPU threads, and checks its values each time;
 *  - each vCPU thread issues KVM_RUN itself from assembly with its own values in
 *    V0-V31, and checks them when the ioctl returns (the kernel preserves a task's
 *    FP/SIMD registers across system calls).
 * Any mismatch fails the test, naming whose values were found where.
 *
 *   fp_state_test [-i ITERATIONS] [-v VCPUS]
 */
#define _GNU_SOURCE
#include <linux/arm-smccc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"
#include "vhe_rs_fp.h"

#define MAX_VCPUS	4
#define MMIO_GPA	(1ULL << 36)	/* not in any memslot: exits to userspace */
#define HVC_PER_ROUND	8

#define FP_CLOBBERS	FP_REG_CLOBBERS

/* Guest: load, exit HVC_PER_ROUND times by hvc and once by MMIO, store. */
static void guest_round(struct fpregs *want, struct fpregs *got)
{
	asm volatile(
		LOAD_FPREGS("%[w]")
		"mov x10, %[n]\n"
		"1: mov x0, %[fid]\n hvc #0\n"
		"subs x10, x10, #1\n b.ne 1b\n"
		"str x10, [%[mmio]]\n"
		STORE_FPREGS("%[g]")
		: : [w] "r"(want), [g] "r"(got), [n] "i"(HVC_PER_ROUND),
		    [fid] "i"(ARM_SMCCC_VERSION_FUNC_ID), [mmio] "r"(MMIO_GPA)
		: FP_CLOBBERS, "x0", "x1", "x2", "x3", "x10", "cc");
}

static struct fpregs guest_want[MAX_VCPUS], guest_got[MAX_VCPUS];

static void guest_code(uint64_t id, uint64_t iterations)
{
	for (uint64_t i = 0; i < iterations; i++) {
		guest_round(&guest_want[id], &guest_got[id]);
		for (int r = 0; r < 32; r++)
			GUEST_ASSERT_EQ(guest_got[id].v[r] == guest_want[id].v[r], 1);
		GUEST_ASSERT_EQ(guest_got[id].fpsr, guest_want[id].fpsr);
		GUEST_ASSERT_EQ(guest_got[id].fpcr, guest_want[id].fpcr);
	}
	GUEST_DONE();
}

static atomic_bool stop;
static atomic_ulong polluter_rounds;
static int ncpus;

/* Host: KVM_RUN issued with our own values in the FP registers; read them back. */
static long run_with_fpregs(int fd, struct fpregs *want, struct fpregs *got)
{
	register long x0 asm("x0") = fd;
	register long x1 asm("x1") = KVM_RUN;
	register long x2 asm("x2") = 0;
	register long x8 asm("x8") = __NR_ioctl;

	asm volatile(LOAD_FPREGS("%[w]") "svc #0\n" STORE_FPREGS("%[g]")
		     : "+r"(x0) : "r"(x1), "r"(x2), "r"(x8), [w] "r"(want), [g] "r"(got)
		     : FP_CLOBBERS);
	return x0;
}

static const char *whose(const struct fpregs *got, const struct fpregs *want)
{
	for (int i = 0; i < MAX_VCPUS; i++)
		if (got->v[0] == guest_want[i].v[0])
			return "a guest's";
	return got->v[0] == want->v[0] ? "its own (another register differs)" : "unknown";
}

/*
 * Host state: V0-V31, FPSR and FPCR are the calling thread's own; the kernel
 * switches them per task, so they hold whatever else runs on the machine.
 */
static void check(const char *who, const struct fpregs *got, const struct fpregs *want)
{
	for (int r = 0; r < 32; r++)
		TEST_ASSERT(got->v[r] == want->v[r],
			    "%s: V%d changed: found %s values", who, r, whose(got, want));
	TEST_ASSERT(got->fpsr == want->fpsr && got->fpcr == want->fpcr,
		    "%s: FPSR/FPCR %lx/%lx, expected %lx/%lx", who, got->fpsr, got->fpcr,
		    want->fpsr, want->fpcr);
}

static void *polluter(void *arg)
{
	long cpu = (long)arg;
	struct fpregs want, got;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	fpregs_fill(&want, 0xbad0000000000000ULL | cpu);
	while (!atomic_load(&stop)) {
		asm volatile(LOAD_FPREGS("%[w]") : : [w] "r"(&want) : FP_CLOBBERS);
		sched_yield();
		asm volatile(STORE_FPREGS("%[g]") : : [g] "r"(&got) : FP_CLOBBERS);
		check("polluter thread", &got, &want);
		atomic_fetch_add(&polluter_rounds, 1);
	}
	return NULL;
}

struct vcpu_arg {
	struct kvm_vcpu *vcpu;
	uint64_t id, exits;
};

static void *vcpu_thread(void *p)
{
	struct vcpu_arg *a = p;
	struct fpregs want, got;

	fpregs_fill(&want, 0x4057000000000000ULL | a->id);
	do {
		/* Migrate at every exit to userspace. */
		vhe_rs_migrate(a->exits + a->id, ncpus);
		TEST_ASSERT(run_with_fpregs(a->vcpu->fd, &want, &got) == 0, "KVM_RUN failed");
		check("vCPU thread across KVM_RUN", &got, &want);
		a->exits++;
	} while (vhe_rs_guest_runs_on(a->vcpu, MMIO_GPA));
	return NULL;
}

int main(int argc, char *argv[])
{
	uint64_t iterations = 2000, nvcpus = 2;
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	struct vcpu_arg args[MAX_VCPUS];
	pthread_t vt[MAX_VCPUS], pt[8];
	struct vhe_rs_snap before = vhe_rs_snap();
	struct kvm_vm *vm;
	int opt;

	while ((opt = getopt(argc, argv, "i:v:")) != -1) {
		if (opt == 'i')
			iterations = strtoull(optarg, NULL, 0);
		else if (opt == 'v')
			nvcpus = strtoull(optarg, NULL, 0);
	}
	TEST_REQUIRE(nvcpus >= 1 && nvcpus <= MAX_VCPUS);
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus > 8)
		ncpus = 8;

	vm = vm_create_with_vcpus(nvcpus, guest_code, vcpus);
	virt_map(vm, MMIO_GPA, MMIO_GPA, 1);
	for (uint64_t i = 0; i < nvcpus; i++) {
		fpregs_fill(&guest_want[i], 0x6e57000000000000ULL | i);
		vcpu_args_set(vcpus[i], 2, i, iterations);
	}
	sync_global_to_guest(vm, guest_want);

	for (long c = 0; c < ncpus; c++)
		pthread_create(&pt[c], NULL, polluter, (void *)c);
	for (uint64_t i = 0; i < nvcpus; i++) {
		args[i] = (struct vcpu_arg){ .vcpu = vcpus[i], .id = i };
		pthread_create(&vt[i], NULL, vcpu_thread, &args[i]);
	}
	for (uint64_t i = 0; i < nvcpus; i++)
		pthread_join(vt[i], NULL);
	atomic_store(&stop, true);
	for (long c = 0; c < ncpus; c++)
		pthread_join(pt[c], NULL);

	for (uint64_t i = 0; i < nvcpus; i++)
		TEST_ASSERT(args[i].exits >= iterations, "vCPU %lu: %lu exits", i, args[i].exits);
	TEST_ASSERT(atomic_load(&polluter_rounds) > 0, "the polluters never ran");
	kvm_vm_free(vm);
	printf("fp_state_test: %lu vCPUs x %lu rounds (%d hvc + 1 MMIO exit each), "
	       "%lu polluter rounds on %d CPUs: FP state intact; backend: %s\n", nvcpus,
	       iterations, HVC_PER_ROUND, atomic_load(&polluter_rounds), ncpus,
	       vhe_rs_check_backend(before, vhe_rs_snap()));
	return 0;
}
