// SPDX-License-Identifier: GPL-2.0
/*
 * sve_state_test: SVE state (Z0-Z31, P0-P15, FFR) must never cross between
 * guest and host, at every vector length the vCPU may have.
 *
 * For each of several vector lengths the host supports (the smallest, the
 * largest, and some in between) a VM is created whose vCPUs have SVE with that
 * maximum vector length (KVM_REG_ARM64_SVE_VLS, then KVM_ARM_VCPU_FINALIZE) and
 * ZCR_EL1.LEN set to it. Each guest checks its vector length with RDVL, fills
 * Z/P/FFR with values of its own, exits again and again (hypercalls KVM answers
 * in the kernel, MMIO writes that go to userspace) and reads them all back after
 * every round. Meanwhile on the host:
 *  - the vCPU threads migrate between the host CPUs at every exit to userspace,
 *    and issue KVM_RUN with values of their own in V0-V31, checked on return;
 *  - a "polluter" thread per CPU runs at the host's largest vector length (a
 *    different one from the guest's, so a wrong ZCR on save or restore shows),
 *    loads Z/P/FFR with its own values, spins without system calls (where the
 *    kernel must keep its whole SVE state across preemption) and checks them.
 * Any mismatch fails the test, naming the register and whose values it held.
 *
 *   sve_state_test [-i ITERATIONS] [-v VCPUS]
 */
#define _GNU_SOURCE
#include <linux/arm-smccc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"

#define MAX_VCPUS	4
#define MAX_VLS		4
#define MMIO_GPA	(1ULL << 36)	/* not in any memslot: exits to userspace */
#define HVC_PER_ROUND	4
#define VL_MAX_BYTES	256		/* the architecture's largest: 2048 bits */
#define Z_BYTES(vl)	(32 * (vl))
#define P_BYTES(vl)	((vl) / 8)
/* Z0-Z31, then P0-P15, then FFR, each at the given vector length. */
#define STATE_BYTES	(Z_BYTES(VL_MAX_BYTES) + 17 * P_BYTES(VL_MAX_BYTES))

struct sve_state {
	uint8_t b[STATE_BYTES];
} __aligned(16);

/* Offsets are in multiples of the register size ("mul vl"). */
#define LDZ(n, base)	"ldr z" #n ", [" base ", #" #n ", mul vl]\n"
#define STZ(n, base)	"str z" #n ", [" base ", #" #n ", mul vl]\n"
#define LDP(n, base)	"ldr p" #n ", [" base ", #" #n ", mul vl]\n"
#define STP(n, base)	"str p" #n ", [" base ", #" #n ", mul vl]\n"
#define EACH10(M, a, base) M(a##0, base) M(a##1, base) M(a##2, base) M(a##3, base) \
			   M(a##4, base) M(a##5, base) M(a##6, base) M(a##7, base) \
			   M(a##8, base) M(a##9, base)
#define EACH_Z(M, base)	EACH10(M, , base) EACH10(M, 1, base) EACH10(M, 2, base) \
			M(30, base) M(31, base)
#define EACH_P(M, base)	EACH10(M, , base) M(10, base) M(11, base) M(12, base) \
			M(13, base) M(14, base) M(15, base)

/*
 * Load everything from the buffer at x12 (an operand of the asm statement):
 * FFR first (through P0), then P0-P15, then Z0-Z31.
 * FFR must be written with a "monotonic" predicate (ones, then zeros); fill()
 * makes it one.
 */
#define LOAD_SVE							\
	".arch_extension sve\n"						\
	"rdvl x11, #1\n add x11, x12, x11, lsl #5\n"				\
	"ldr p0, [x11, #16, mul vl]\n wrffr p0.b\n"			\
	EACH_P(LDP, "x11") EACH_Z(LDZ, "x12")
#define STORE_SVE							\
	".arch_extension sve\n"						\
	EACH_Z(STZ, "x12")						\
	"rdvl x11, #1\n add x11, x12, x11, lsl #5\n"				\
	EACH_P(STP, "x11")						\
	"rdffr p0.b\n str p0, [x11, #16, mul vl]\n"

#define SVE_CLOBBERS							\
	"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",	\
	"v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20",	\
	"v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30",	\
	"v31", "x11", "memory"

/* Values owned by each side, at vector length vl: the owner's tag in every byte run. */
static void fill(struct sve_state *s, uint64_t tag, size_t vl)
{
	size_t zb = Z_BYTES(vl), pb = P_BYTES(vl), ffr_bits;
	uint64_t x = tag;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < zb + 16 * pb; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		s->b[i] = x >> 56;
	}
	/* FFR: the first ffr_bits bits set, the rest clear. */
	ffr_bits = 1 + tag % (8 * pb);
	for (size_t bit = 0; bit < ffr_bits; bit++)
		s->b[zb + 16 * pb + bit / 8] |= 1 << (bit % 8);
}

/* Which register a byte offset falls in, for messages. */
static void name_reg(char *buf, size_t n, size_t off, size_t vl)
{
	if (off < Z_BYTES(vl))
		snprintf(buf, n, "Z%zu", off / vl);
	else if (off < Z_BYTES(vl) + 16 * P_BYTES(vl))
		snprintf(buf, n, "P%zu", (off - Z_BYTES(vl)) / P_BYTES(vl));
	else
		snprintf(buf, n, "FFR");
}

static size_t state_len(size_t vl)
{
	return Z_BYTES(vl) + 17 * P_BYTES(vl);
}

/* ---- guest ---- */

static struct sve_state guest_want[MAX_VCPUS], guest_got[MAX_VCPUS];
static uint64_t guest_vl;

/* One asm statement, so that no compiled code runs between the load and the store. */
static void guest_round(struct sve_state *want, struct sve_state *got)
{
	register uint64_t x12 asm("x12") = (uint64_t)want;

	asm volatile(LOAD_SVE
		     "mov x10, %[n]\n"
		     "1: mov x0, %[fid]\n hvc #0\n"
		     "subs x10, x10, #1\n b.ne 1b\n"
		     "str x10, [%[mmio]]\n"
		     "mov x12, %[g]\n"
		     STORE_SVE
		     : "+r"(x12)
		     : [g] "r"(got), [n] "i"(HVC_PER_ROUND),
		       [fid] "i"(ARM_SMCCC_VERSION_FUNC_ID), [mmio] "r"(MMIO_GPA)
		     : SVE_CLOBBERS, "x0", "x1", "x2", "x3", "x10", "cc");
}

static void guest_code(uint64_t id, uint64_t iterations)
{
	uint64_t vl;

	asm volatile(".arch_extension sve\n rdvl %0, #1" : "=r"(vl));
	GUEST_ASSERT_EQ(vl, guest_vl);
	for (uint64_t i = 0; i < iterations; i++) {
		guest_round(&guest_want[id], &guest_got[id]);
		for (size_t b = 0; b < state_len(vl); b++)
			__GUEST_ASSERT(guest_got[id].b[b] == guest_want[id].b[b],
				       "vCPU %lu, VL %lu: byte %lu of the SVE state is 0x%x, expected 0x%x",
				       id, vl, b, guest_got[id].b[b], guest_want[id].b[b]);
	}
	GUEST_DONE();
}

/* ---- host ---- */

static atomic_bool stop;
static atomic_ulong polluter_rounds, polluter_preempted;
static int ncpus;
static size_t host_vl;

static const char *whose(const struct sve_state *got, size_t off)
{
	for (int i = 0; i < MAX_VCPUS; i++)
		if (got->b[off] == guest_want[i].b[off] && guest_want[i].b[off])
			return "possibly a guest's";
	return "not a guest's";
}

static void *polluter(void *arg)
{
	long cpu = (long)arg;
	static __thread struct sve_state want, got;
	struct rusage ru;
	cpu_set_t set;
	char reg[8];

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	TEST_ASSERT(prctl(PR_SVE_SET_VL, host_vl) >= 0, "PR_SVE_SET_VL %zu", host_vl);
	TEST_ASSERT((prctl(PR_SVE_GET_VL) & PR_SVE_VL_LEN_MASK) == (int)host_vl,
		    "polluter VL is not %zu", host_vl);
	fill(&want, 0xbad0000000000000ULL | cpu, host_vl);
	while (!atomic_load(&stop)) {
		register uint64_t x12 asm("x12") = (uint64_t)&want;

		/* No system call in here: preemption must keep the whole SVE state. */
		asm volatile(LOAD_SVE
			     "mov x10, #20000\n"
			     "1: subs x10, x10, #1\n b.ne 1b\n"
			     "mov x12, %[g]\n"
			     STORE_SVE
			     : "+r"(x12) : [g] "r"(&got) : SVE_CLOBBERS, "x10", "cc");
		/*
		 * Host state: the thread's own Z/P/FFR at its own VL (prctl), kept per
		 * task by the kernel across preemption: holds whatever else runs.
		 */
		for (size_t b = 0; b < state_len(host_vl); b++) {
			name_reg(reg, sizeof(reg), b, host_vl);
			TEST_ASSERT(got.b[b] == want.b[b],
				    "polluter on CPU %ld: %s changed (byte %zu: 0x%x, expected 0x%x, %s)",
				    cpu, reg, b, got.b[b], want.b[b], whose(&got, b));
		}
		atomic_fetch_add(&polluter_rounds, 1);
		sched_yield();
	}
	getrusage(RUSAGE_THREAD, &ru);
	atomic_fetch_add(&polluter_preempted, ru.ru_nivcsw);
	return NULL;
}

/*
 * The vCPU threads issue KVM_RUN themselves with values of their own in V0-V31
 * (the low 128 bits of Z0-Z31, which a system call preserves) and check them
 * when the ioctl returns: guest values there would otherwise surface later as
 * a corrupted pointer that the compiled code kept in a callee-saved D register.
 */
struct vregs {
	__uint128_t v[32];
};

#define LDQ(n, base)	"ldr q" #n ", [" base ", #(" #n " * 16)]\n"
#define STQ(n, base)	"str q" #n ", [" base ", #(" #n " * 16)]\n"

static long run_with_vregs(int fd, struct vregs *want, struct vregs *got)
{
	register long x0 asm("x0") = fd;
	register long x1 asm("x1") = KVM_RUN;
	register long x2 asm("x2") = 0;
	register long x8 asm("x8") = __NR_ioctl;
	register uint64_t x12 asm("x12") = (uint64_t)want;

	asm volatile(EACH_Z(LDQ, "x12") "svc #0\n mov x12, %[g]\n" EACH_Z(STQ, "x12")
		     : "+r"(x0), "+r"(x12) : "r"(x1), "r"(x2), "r"(x8), [g] "r"(got)
		     : SVE_CLOBBERS);
	return x0;
}

/* Whether a V register holds the low 128 bits of some guest's Z register. */
static const char *whose_v(const struct vregs *got, int r)
{
	for (int i = 0; i < MAX_VCPUS; i++)
		if (!memcmp(&got->v[r], &guest_want[i].b[r * guest_vl], 16))
			return "a guest's";
	return "not a guest's";
}

struct vcpu_arg {
	struct kvm_vcpu *vcpu;
	uint64_t id, exits;
};

static void *vcpu_thread(void *p)
{
	struct vcpu_arg *a = p;
	struct vregs want, got;

	for (int r = 0; r < 32; r++)
		want.v[r] = ((__uint128_t)(0x4057000000000000ULL | a->id << 8 | r) << 64) | ~r;
	do {
		vhe_rs_migrate(a->exits + a->id, ncpus);
		TEST_ASSERT(run_with_vregs(a->vcpu->fd, &want, &got) == 0, "KVM_RUN failed");
		/* Host state: the thread's own V registers, switched per task by the kernel. */
		for (int r = 0; r < 32; r++)
			TEST_ASSERT(got.v[r] == want.v[r],
				    "vCPU thread %lu: V%d changed across KVM_RUN: %016lx%016lx (%s)",
				    a->id, r, (uint64_t)(got.v[r] >> 64), (uint64_t)got.v[r],
				    whose_v(&got, r));
		a->exits++;
	} while (vhe_rs_guest_runs_on(a->vcpu, MMIO_GPA));
	return NULL;
}

static struct kvm_vcpu *add_sve_vcpu(struct kvm_vm *vm, uint32_t id, const uint64_t *vls,
				     unsigned int vq)
{
	struct kvm_vcpu_init init = { .target = -1 };
	struct kvm_one_reg reg = { .id = KVM_REG_ARM64_SVE_VLS };
	uint64_t mine[KVM_ARM64_SVE_VLS_WORDS] = {};
	int feature = KVM_ARM_VCPU_SVE;
	struct kvm_vcpu *vcpu;

	init.features[0] = 1U << KVM_ARM_VCPU_SVE;
	vcpu = aarch64_vcpu_add(vm, id, &init, guest_code);
	if (vls) {
		/* Every length the host offers up to vq: KVM wants no holes below the max. */
		for (unsigned int q = 1; q <= vq; q++)
			if (vls[(q - 1) / 64] & (1ULL << ((q - 1) % 64)))
				mine[(q - 1) / 64] |= 1ULL << ((q - 1) % 64);
		reg.addr = (uint64_t)mine;
		vcpu_ioctl(vcpu, KVM_SET_ONE_REG, &reg);
		vcpu_ioctl(vcpu, KVM_ARM_VCPU_FINALIZE, &feature);
		vcpu_set_reg(vcpu, KVM_ARM64_SYS_REG(SYS_CPACR_EL1), CPACR_ELx_FPEN | CPACR_ELx_ZEN);
		vcpu_set_reg(vcpu, KVM_ARM64_SYS_REG(SYS_ZCR_EL1), vq - 1);
	}
	return vcpu;
}

/* The vector lengths (in quadwords) a vCPU may have on this host. */
static unsigned int host_vqs(unsigned int *vqs, uint64_t *vls)
{
	struct kvm_vm *vm = vm_create(1);
	struct kvm_one_reg reg = { .id = KVM_REG_ARM64_SVE_VLS, .addr = (uint64_t)vls };
	struct kvm_vcpu *vcpu = add_sve_vcpu(vm, 0, NULL, 0);
	unsigned int n = 0;

	vcpu_ioctl(vcpu, KVM_GET_ONE_REG, &reg);
	kvm_vm_free(vm);
	for (unsigned int q = 1; q <= VL_MAX_BYTES / 16; q++)
		if (vls[(q - 1) / 64] & (1ULL << ((q - 1) % 64)))
			vqs[n++] = q;
	return n;
}

static void run_at_vl(const uint64_t *vls, unsigned int vq, uint64_t nvcpus, uint64_t iterations)
{
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	struct vcpu_arg args[MAX_VCPUS];
	pthread_t vt[MAX_VCPUS];
	struct kvm_vm *vm;

	vm = vm_create(nvcpus);
	for (uint64_t i = 0; i < nvcpus; i++)
		vcpus[i] = add_sve_vcpu(vm, i, vls, vq);
	virt_map(vm, MMIO_GPA, MMIO_GPA, 1);
	guest_vl = vq * 16;
	for (uint64_t i = 0; i < nvcpus; i++) {
		fill(&guest_want[i], 0x6e57000000000000ULL | (vq << 8) | i, guest_vl);
		vcpu_args_set(vcpus[i], 2, i, iterations);
	}
	sync_global_to_guest(vm, guest_want);
	sync_global_to_guest(vm, guest_vl);

	for (uint64_t i = 0; i < nvcpus; i++) {
		args[i] = (struct vcpu_arg){ .vcpu = vcpus[i], .id = i };
		pthread_create(&vt[i], NULL, vcpu_thread, &args[i]);
	}
	for (uint64_t i = 0; i < nvcpus; i++) {
		pthread_join(vt[i], NULL);
		TEST_ASSERT(args[i].exits >= iterations, "vCPU %lu: %lu exits", i, args[i].exits);
	}
	kvm_vm_free(vm);
	printf("sve_state_test: VL %u bits: %lu vCPUs x %lu rounds (%d hvc + 1 MMIO exit each): "
	       "Z/P/FFR intact\n", vq * 128, nvcpus, iterations, HVC_PER_ROUND);
}

int main(int argc, char *argv[])
{
	uint64_t iterations = 300, nvcpus = 2;
	uint64_t vls[KVM_ARM64_SVE_VLS_WORDS] = {};
	unsigned int vqs[VL_MAX_BYTES / 16], nvq, pick[MAX_VLS], npick = 0;
	struct vhe_rs_snap before = vhe_rs_snap();
	pthread_t pt[8];
	int opt;

	while ((opt = getopt(argc, argv, "i:v:")) != -1) {
		if (opt == 'i')
			iterations = strtoull(optarg, NULL, 0);
		else if (opt == 'v')
			nvcpus = strtoull(optarg, NULL, 0);
	}
	TEST_REQUIRE(nvcpus >= 1 && nvcpus <= MAX_VCPUS);
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_ARM_SVE));
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus > 8)
		ncpus = 8;

	nvq = host_vqs(vqs, vls);
	TEST_ASSERT(nvq > 0, "KVM offers SVE but no vector length");
	/* The smallest, the largest, and two in between. */
	pick[npick++] = vqs[0];
	if (nvq > 2)
		pick[npick++] = vqs[nvq / 3];
	if (nvq > 3)
		pick[npick++] = vqs[(2 * nvq) / 3];
	if (nvq > 1)
		pick[npick++] = vqs[nvq - 1];

	host_vl = prctl(PR_SVE_SET_VL, VL_MAX_BYTES) & PR_SVE_VL_LEN_MASK;
	TEST_ASSERT(host_vl >= 16 && host_vl <= VL_MAX_BYTES, "host VL %zu", host_vl);
	for (long c = 0; c < ncpus; c++)
		pthread_create(&pt[c], NULL, polluter, (void *)c);

	for (unsigned int i = 0; i < npick; i++)
		run_at_vl(vls, pick[i], nvcpus, iterations);

	atomic_store(&stop, true);
	for (long c = 0; c < ncpus; c++)
		pthread_join(pt[c], NULL);
	TEST_ASSERT(atomic_load(&polluter_rounds) > 0, "the polluters never ran");
	printf("sve_state_test: %u vector lengths (of %u offered), host at %zu bits: "
	       "%lu polluter rounds, %lu involuntary preemptions: SVE state intact; backend: %s\n",
	       npick, nvq, host_vl * 8, atomic_load(&polluter_rounds),
	       atomic_load(&polluter_preempted), vhe_rs_check_backend(before, vhe_rs_snap()));
	return 0;
}
