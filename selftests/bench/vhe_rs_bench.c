// SPDX-License-Identifier: GPL-2.0
/*
 * vhe_rs_bench: cost of KVM/arm64 world-switch paths, measured by the guest,
 * kvm-unit-tests micro-bench style, on the built-in C backend and on vhe_rs.
 *
 * Each benchmark is one VM (one vCPU, two for vcpu_switch; always with an in-kernel
 * vGICv3, as a real VMM has). Its guest runs a warm-up batch, then BATCHES batches
 * of OPS operations, reading CNTVCT_EL0 (with an isb before and after each read)
 * around each batch, or around each operation when only part of an iteration is the
 * operation (fp_lazy, wfi); it reports each batch's ticks with a ucall, outside the
 * timed part. A measurement is the median batch, as ticks per operation.
 *
 *   hvc          SMCCC_VERSION by hvc: KVM answers it in the kernel
 *   mmio_user    read of an address outside every memslot: KVM_EXIT_MMIO to this
 *                program, which re-enters (KVM_RUN return, vcpu_put, vcpu_load)
 *   mmio_vgic    read of GICD_IIDR: the in-kernel vGIC distributor answers
 *   sysreg_trap  mrs ID_AA64ISAR0_EL1: trapped by HCR_EL2.TID3, emulated in the kernel
 *   fp_lazy      the guest's first FP instruction after an exit to this program,
 *                which used FP itself: only the trapping instruction is timed
 *   debug_dirty  hvc with MDSCR_EL1.MDE set by the guest: KVM sets DEBUG_DIRTY at
 *                every entry and switches the debug registers both ways
 *   debug_clean  the same loop after the guest wrote MDSCR_EL1 with MDE clear
 *   vcpu_switch  two vCPUs of one VM handing the host CPU to each other: vCPU 0 exits
 *                to this program, whose thread wakes vCPU 1's thread and sleeps;
 *                vCPU 1 exits at once and hands back. One operation is one switch
 *                (exit of one vCPU, entry of the other): a batch's ticks / (2 OPS)
 *   wfi          the guest arms its virtual timer 1 ms ahead (from CNTFRQ_EL0) and
 *                waits in wfi; timed: from the timer's deadline (CVAL) to the
 *                guest's return from wfi, its IRQ handler (ack, EOI) included
 *
 * Backends: with vhe_rs loaded, each benchmark runs on a VM created with
 * /sys/module/vhe_rs/parameters/enable = N (C) and one with Y (Rust), the order
 * alternating from round to round; which backend ran a VM is checked against the
 * module's counters (vm_rust), not assumed. Without the module: C only.
 *
 * Output, one line per measurement (parsed by tools/bench):
 *   BENCHINFO cntfrq=HZ module=loaded|none parts=P kernel=RELEASE
 *   BENCH name=N backend=C|Rust parts=P round=R ops=OPS batches=B ticks=T
 *         ticks_per_op=X min_per_op=X max_per_op=X
 * ticks is the median batch's ticks; OPS is per batch. One VM per backend runs
 * first, unreported (warm-up).
 *
 *   vhe_rs_bench [-r ROUNDS] [-b BATCHES] [-s SCALE] [-l NAME,...] [-B C|Rust|both]
 *   SCALE multiplies each benchmark's default OPS (a fraction is allowed: -s 0.25).
 */
#define _GNU_SOURCE
#include <linux/arm-smccc.h>
#include <linux/sizes.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "arch_timer.h"
#include "gic.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"
#include "vgic.h"
#include "vhe_rs.h"

#define MMIO_GPA	(1ULL << 36)	/* in no memslot: exits to userspace */
#define GICD_IIDR	0x0008
#define NR_IRQS		64
#define MAX_BATCHES	64
#define MDSCR_MDE	(1UL << 15)

enum bench {
	B_HVC, B_MMIO_USER, B_MMIO_VGIC, B_SYSREG, B_FP_LAZY, B_DEBUG_DIRTY,
	B_DEBUG_CLEAN, B_VCPU_SWITCH, B_WFI, NR_BENCH
};

static const struct {
	const char *name;
	unsigned int ops;	/* default operations per batch */
	unsigned int div;	/* operations per guest iteration */
} benches[NR_BENCH] = {
	[B_HVC]		= { "hvc",		512, 1 },
	[B_MMIO_USER]	= { "mmio_user",	128, 1 },
	[B_MMIO_VGIC]	= { "mmio_vgic",	512, 1 },
	[B_SYSREG]	= { "sysreg_trap",	512, 1 },
	[B_FP_LAZY]	= { "fp_lazy",		128, 1 },
	[B_DEBUG_DIRTY]	= { "debug_dirty",	512, 1 },
	[B_DEBUG_CLEAN]	= { "debug_clean",	512, 1 },
	[B_VCPU_SWITCH]	= { "vcpu_switch",	64, 2 },
	[B_WFI]		= { "wfi",		32, 1 },
};

/* ------------------------------------------------------------------------ */
/* Guest */

static int vtimer_irq;
static volatile int timer_fired;

static inline uint64_t guest_cntvct(void)
{
	uint64_t v;

	asm volatile("isb\n mrs %0, cntvct_el0\n isb" : "=r"(v) : : "memory");
	return v;
}

static inline void op_hvc(void)
{
	register uint64_t x0 asm("x0") = ARM_SMCCC_VERSION_FUNC_ID;

	asm volatile("hvc #0" : "+r"(x0) : : "x1", "x2", "x3", "memory");
}

static inline void op_mmio_read(uint64_t addr)
{
	uint32_t v;

	asm volatile("ldr %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
}

static inline void op_mmio_write(void)
{
	asm volatile("str xzr, [%0]" : : "r"(MMIO_GPA) : "memory");
}

static inline void op_sysreg(void)
{
	uint64_t v;

	asm volatile("mrs %0, id_aa64isar0_el1" : "=r"(v) : : "memory");
}

/* The guest's FP use: exit (the VMM uses FP), then time the first FP instruction. */
static uint64_t fp_lazy_batch(unsigned int ops)
{
	uint64_t sum = 0, t0, t1;

	for (unsigned int i = 0; i < ops; i++) {
		op_mmio_write();
		t0 = guest_cntvct();
		asm volatile("fmov d0, xzr" : : : "v0", "memory");
		t1 = guest_cntvct();
		sum += t1 - t0;
	}
	return sum;
}

static void guest_irq_handler(struct ex_regs *regs)
{
	unsigned int intid = gic_get_and_ack_irq();

	if (intid == vtimer_irq) {
		timer_set_ctl(VIRTUAL, CTL_IMASK);
		timer_fired = 1;
	}
	gic_set_eoi(intid);
}

/* From the timer's deadline to the guest's return from wfi, summed over ops. */
static uint64_t wfi_batch(unsigned int ops, uint64_t delta)
{
	uint64_t sum = 0, cval, t;

	for (unsigned int i = 0; i < ops; i++) {
		timer_fired = 0;
		cval = guest_cntvct() + delta;
		timer_set_cval(VIRTUAL, cval);
		timer_set_ctl(VIRTUAL, CTL_ENABLE);
		while (!timer_fired) {
			wfi();
			local_irq_enable();
			isb();
			local_irq_disable();
		}
		t = guest_cntvct();
		sum += t - cval;
	}
	return sum;
}

static uint64_t guest_batch(uint64_t bench, unsigned int ops)
{
	uint64_t t0, t1;
	unsigned int i;

	switch (bench) {
	case B_FP_LAZY:
		return fp_lazy_batch(ops);
	case B_WFI:
		return wfi_batch(ops, timer_get_cntfrq() / 1000);
	default:
		break;
	}
	t0 = guest_cntvct();
	switch (bench) {
	case B_HVC:
	case B_DEBUG_DIRTY:
	case B_DEBUG_CLEAN:
		for (i = 0; i < ops; i++)
			op_hvc();
		break;
	case B_MMIO_USER:
		for (i = 0; i < ops; i++)
			op_mmio_read(MMIO_GPA);
		break;
	case B_MMIO_VGIC:
		for (i = 0; i < ops; i++)
			op_mmio_read(GICD_BASE_GPA + GICD_IIDR);
		break;
	case B_SYSREG:
		for (i = 0; i < ops; i++)
			op_sysreg();
		break;
	case B_VCPU_SWITCH:
		for (i = 0; i < ops; i++)
			op_mmio_write();
		break;
	}
	t1 = guest_cntvct();
	return t1 - t0;
}

static void guest_code(uint64_t bench, uint64_t ops, uint64_t batches)
{
	if (guest_get_vcpuid() != 0) {	/* vcpu_switch's partner: exit forever */
		for (;;)
			op_mmio_write();
	}
	switch (bench) {
	case B_DEBUG_DIRTY:	/* the first write traps (MDCR_EL2.TDA) */
		write_sysreg(read_sysreg(mdscr_el1) | MDSCR_MDE, mdscr_el1);
		isb();
		break;
	case B_DEBUG_CLEAN:
		write_sysreg(read_sysreg(mdscr_el1) & ~MDSCR_MDE, mdscr_el1);
		isb();
		break;
	case B_WFI:
		gic_init(GIC_V3, 1);
		gic_irq_enable(vtimer_irq);
		timer_set_ctl(VIRTUAL, CTL_IMASK);
		local_irq_disable();
		break;
	}
	/* Batch 0 warms up (stage-2 faults, first traps) and is not counted. */
	for (uint64_t b = 0; b <= batches; b++) {
		uint64_t ticks = guest_batch(bench, ops);

		GUEST_SYNC3(b, ticks, timer_get_cntfrq());
	}
	GUEST_DONE();
}

/* ------------------------------------------------------------------------ */
/* Host */

struct result {
	uint64_t ticks[MAX_BATCHES + 1];
	unsigned int n;
	uint64_t cntfrq;
};

static void record(struct result *r, struct ucall *uc)
{
	uint64_t b = uc->args[0];

	TEST_ASSERT(b <= MAX_BATCHES, "batch %lu out of range", b);
	if (b > 0)
		r->ticks[r->n++] = uc->args[1];
	r->cntfrq = uc->args[2];
}

/* The VMM's own FP use between two runs of the guest. */
static void vmm_uses_fp(void)
{
	static double acc = 1.0;

	asm volatile("fmov d1, #1.5\n fmul %d0, %d0, d1" : "+w"(acc) : : "v1");
}

static bool is_own_mmio(struct kvm_vcpu *vcpu)
{
	return vcpu->run->exit_reason == KVM_EXIT_MMIO && vcpu->run->mmio.phys_addr == MMIO_GPA;
}

/* Runs @vcpu until GUEST_DONE; returns on DONE. */
static void run_one(struct kvm_vcpu *vcpu, enum bench b, struct result *r)
{
	struct ucall uc;

	for (;;) {
		vcpu_run(vcpu);
		if (is_own_mmio(vcpu)) {
			if (b == B_FP_LAZY)
				vmm_uses_fp();
			continue;
		}
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			record(r, &uc);
			break;
		case UCALL_DONE:
			return;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			TEST_FAIL("%s: unexpected exit %s", benches[b].name,
				  exit_reason_str(vcpu->run->exit_reason));
		}
	}
}

/* vcpu_switch: each vCPU thread runs only while it holds the token. */
struct switch_ctx {
	struct kvm_vcpu *vcpu[2];
	sem_t token[2];
	atomic_bool done;
	struct result *r;
};

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(set), &set), "sched_setaffinity");
}

static int bench_cpu;

struct switch_arg {
	struct switch_ctx *c;
	int id;
};

static void *switch_vcpu_thread(void *p)
{
	struct switch_arg *a = p;
	struct switch_ctx *c = a->c;
	struct kvm_vcpu *vcpu = c->vcpu[a->id];
	struct ucall uc;

	pin_to(bench_cpu);
	for (;;) {
		sem_wait(&c->token[a->id]);
		if (atomic_load(&c->done))
			return NULL;
		vcpu_run(vcpu);
		if (is_own_mmio(vcpu)) {
			sem_post(&c->token[!a->id]);	/* hand the CPU to the other vCPU */
			continue;
		}
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			record(c->r, &uc);
			sem_post(&c->token[a->id]);	/* keep the token */
			break;
		case UCALL_DONE:
			atomic_store(&c->done, true);
			sem_post(&c->token[!a->id]);
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			TEST_FAIL("vcpu_switch: vCPU %d: unexpected exit %s", a->id,
				  exit_reason_str(vcpu->run->exit_reason));
		}
	}
}

static void run_switch(struct kvm_vcpu **vcpus, struct result *r)
{
	struct switch_ctx c = { .vcpu = { vcpus[0], vcpus[1] }, .r = r };
	struct switch_arg a[2] = { { &c, 0 }, { &c, 1 } };
	pthread_t t[2];

	sem_init(&c.token[0], 0, 1);
	sem_init(&c.token[1], 0, 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, switch_vcpu_thread, &a[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void write_param(const char *name, const char *val)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/vhe_rs/parameters/%s", name);
	f = fopen(path, "w");
	TEST_ASSERT(f, "open %s", path);
	TEST_ASSERT(fputs(val, f) >= 0 && fclose(f) == 0, "write %s to %s", val, path);
}

static void read_parts(char *buf, size_t len)
{
	FILE *f = fopen("/sys/module/vhe_rs/parameters/parts", "r");

	snprintf(buf, len, "-");
	if (f) {
		if (fgets(buf, len, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
		if (!buf[0])
			snprintf(buf, len, "-");
	}
}

static void measure(enum bench b, bool rust, unsigned int round, unsigned int ops,
		    unsigned int batches, const char *parts, bool report)
{
	unsigned int nvcpus = b == B_VCPU_SWITCH ? 2 : 1;
	struct kvm_vcpu *vcpus[2];
	struct result r = { 0 };
	long rust_before, rust_after;
	uint64_t sorted[MAX_BATCHES], med;
	struct kvm_vm *vm;
	bool ran_rust;
	int gic_fd;

	if (vhe_rs_loaded())
		write_param("enable", rust ? "Y" : "N");
	rust_before = vhe_rs_stat("vm_rust");

	vm = vm_create_with_vcpus(nvcpus, guest_code, vcpus);
	virt_map(vm, MMIO_GPA, MMIO_GPA, 1);
	if (b == B_WFI) {
		vm_init_descriptor_tables(vm);
		vcpu_init_descriptor_tables(vcpus[0]);
		vm_install_exception_handler(vm, VECTOR_IRQ_CURRENT, guest_irq_handler);
	}
	gic_fd = vgic_v3_setup(vm, nvcpus, NR_IRQS);
	__TEST_REQUIRE(gic_fd >= 0, "no vGICv3");
	if (b == B_WFI) {
		vcpu_device_attr_get(vcpus[0], KVM_ARM_VCPU_TIMER_CTRL,
				     KVM_ARM_VCPU_TIMER_IRQ_VTIMER, &vtimer_irq);
		sync_global_to_guest(vm, vtimer_irq);
	}
	for (unsigned int i = 0; i < nvcpus; i++)
		vcpu_args_set(vcpus[i], 3, (uint64_t)b, (uint64_t)ops, (uint64_t)batches);

	if (b == B_VCPU_SWITCH)
		run_switch(vcpus, &r);
	else
		run_one(vcpus[0], b, &r);
	/*
	 * The vGIC's device fd holds a reference to the VM: left open, the VM
	 * would outlive kvm_vm_free() until the program exits, and a VM on Rust
	 * still alive keeps the hook's static key on while later C VMs are
	 * measured (they would pay the hook's slow branch, ~10 instructions per
	 * exit).
	 */
	close(gic_fd);
	kvm_vm_free(vm);

	rust_after = vhe_rs_stat("vm_rust");
	ran_rust = rust_before >= 0 && rust_after > rust_before;
	TEST_ASSERT(ran_rust == rust, "%s: the VM ran on %s, %s was asked (vm_rust %ld -> %ld)",
		    benches[b].name, ran_rust ? "Rust" : "C", rust ? "Rust" : "C",
		    rust_before, rust_after);
	TEST_ASSERT(r.n == batches, "%s: %u batches reported, %u expected", benches[b].name,
		    r.n, batches);

	memcpy(sorted, r.ticks, r.n * sizeof(sorted[0]));
	qsort(sorted, r.n, sizeof(sorted[0]), cmp_u64);
	med = sorted[r.n / 2];
	if (report) {
		double per = (double)ops * benches[b].div;

		printf("BENCH name=%s backend=%s parts=%s round=%u ops=%u batches=%u ticks=%lu "
		       "ticks_per_op=%.3f min_per_op=%.3f max_per_op=%.3f cntfrq=%lu\n",
		       benches[b].name, rust ? "Rust" : "C", rust ? parts : "-", round,
		       ops * benches[b].div, batches, med, med / per, sorted[0] / per,
		       sorted[r.n - 1] / per, r.cntfrq);
		fflush(stdout);
	}
}

static int bench_by_name(const char *name)
{
	for (int i = 0; i < NR_BENCH; i++)
		if (!strcmp(benches[i].name, name))
			return i;
	return -1;
}

int main(int argc, char *argv[])
{
	unsigned int rounds = 3, batches = 7;
	double scale = 1.0;
	bool want[NR_BENCH], do_c = true, do_rust = true;
	char parts[64], orig_enable[8] = "";
	struct utsname u;
	int opt;

	for (int i = 0; i < NR_BENCH; i++)
		want[i] = true;
	while ((opt = getopt(argc, argv, "r:b:s:l:B:h")) != -1) {
		switch (opt) {
		case 'r':
			rounds = strtoul(optarg, NULL, 0);
			break;
		case 'b':
			batches = strtoul(optarg, NULL, 0);
			break;
		case 's':
			scale = strtod(optarg, NULL);
			break;
		case 'l':
			for (int i = 0; i < NR_BENCH; i++)
				want[i] = false;
			for (char *s = strtok(optarg, ","); s; s = strtok(NULL, ",")) {
				int b = bench_by_name(s);

				TEST_ASSERT(b >= 0, "unknown benchmark %s", s);
				want[b] = true;
			}
			break;
		case 'B':
			do_c = strcasecmp(optarg, "rust") != 0;
			do_rust = strcasecmp(optarg, "c") != 0;
			break;
		default:
			printf("usage: %s [-r ROUNDS] [-b BATCHES] [-s SCALE] [-l NAME,...] "
			       "[-B C|Rust|both]\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	TEST_ASSERT(rounds >= 1 && batches >= 1 && batches <= MAX_BATCHES && scale > 0,
		    "bad -r/-b/-s");

	/* Everything (and vcpu_switch's two threads) on the CPU we start on. */
	bench_cpu = sched_getcpu();
	pin_to(bench_cpu);

	if (!vhe_rs_loaded())
		do_rust = false;
	else {
		FILE *f = fopen("/sys/module/vhe_rs/parameters/enable", "r");

		if (f) {
			if (!fgets(orig_enable, sizeof(orig_enable), f))
				orig_enable[0] = 0;
			fclose(f);
		}
	}
	read_parts(parts, sizeof(parts));
	uname(&u);
	printf("BENCHINFO module=%s parts=%s kernel=%s cpu=%d rounds=%u batches=%u scale=%g\n",
	       vhe_rs_loaded() ? "loaded" : "none", parts, u.release, bench_cpu, rounds,
	       batches, scale);
	fflush(stdout);

	/*
	 * Warm-up, not reported: the first VM of the process runs a path slightly
	 * different from all later ones (first use of KVM by the process).
	 */
	if (do_c)
		measure(B_HVC, false, 0, benches[B_HVC].ops, 1, parts, false);
	if (do_rust)
		measure(B_HVC, true, 0, benches[B_HVC].ops, 1, parts, false);

	for (unsigned int round = 1; round <= rounds; round++) {
		for (int b = 0; b < NR_BENCH; b++) {
			unsigned int ops = benches[b].ops * scale;

			if (!want[b])
				continue;
			if (ops < 1)
				ops = 1;
			/* Alternate which backend goes first from round to round. */
			for (int k = 0; k < 2; k++) {
				bool rust = (k == 0) == (round % 2 == 0);

				if (rust ? !do_rust : !do_c)
					continue;
				measure(b, rust, round, ops, batches, parts, true);
			}
		}
	}
	if (orig_enable[0])
		write_param("enable", orig_enable[0] == 'Y' ? "Y" : "N");
	printf("BENCHDONE\n");
	return 0;
}
