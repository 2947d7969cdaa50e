// SPDX-License-Identifier: GPL-2.0
/*
 * lifecycle_stress: vhe_rs loaded and unloaded again and again while VMs run on
 * both backends, with the FP and system register checkers running throughout
 * (issue 13, item 3: "lifecycle under load").
 *
 * Each cycle, with the module (see "Passes" below for the baseline):
 *  1. insmod (finit_module, with the parts the module had when the test began);
 *     the C VMs carried over from the previous cycle are stopped and freed;
 *  2. a VM created while enable=Y and never run holds the module: rmmod
 *     (delete_module, O_NONBLOCK) is refused (EBUSY/EAGAIN); it is freed;
 *  3. "key flips": two Rust VMs, one after the other, and a C VM (enable=N), in
 *     random order; while each Rust VM runs no other Rust VM exists, so its first
 *     KVM_RUN raises the hook's static key (kvm_vhe_backend_key) from 0 and its
 *     destruction drops it to 0, under the running vCPUs of the C VMs; rmmod is
 *     refused while it runs;
 *  4. the cycle's long-lived Rust VM (2 vCPUs) starts, then churn VMs of one
 *     vCPU each, their backend chosen at random (enable written before each is
 *     created), at most 3 running at once; enable is flipped at random between a
 *     VM's creation and its first KVM_RUN (it must keep the backend it was
 *     created with) and while VMs run; every VM freed while a Rust VM remains is
 *     followed by a refused rmmod;
 *  5. a C VM (enable=N) that runs until the next cycle, across the rmmod and
 *     the next insmod ("straddler");
 *  6. the Rust VMs are destroyed (refused rmmods while others remain), the
 *     long-lived Rust VM last; then, with no VM on Rust, the module's counters
 *     of this lifetime (vhe_rs/stats) are checked: vcpu_load == vcpu_put,
 *     vm_rust = the VMs run on Rust, vm_c_disabled = the VMs created while
 *     enable=N, vm_destroyed = every VM created while enable=Y, and vcpu_load at
 *     least the KVM_RUNs of Rust vCPUs (when the module does vcpu_load: parts
 *     has sysregs); the difference is the loads done by the scheduler
 *     (kvm_sched_in);
 *  7. rmmod succeeds (C VMs still run); a VM created with the module out runs
 *     on C and is carried into the next cycle with the straddler.
 * Each VM's backend is checked from the counters' deltas around its creation
 * (vm_c_disabled moves for a VM created while enable=N) and its first KVM_RUN
 * (vm_rust moves for a Rust VM), and at its destruction (vm_destroyed moves
 * for a Rust VM): only this thread creates, first-runs and frees VMs.
 *
 * Throughout:
 *  - a long-lived C VM (2 vCPUs), created at the start (with enable=N if the
 *    module is loaded then, and the module then unloaded under it), runs across
 *    every module cycle until the end; a Rust VM holds the module, so the
 *    long-lived Rust VM can only live within one module lifetime: one per cycle
 *    (step 4). Their vCPU threads are pinned one per CPU, so they share the CPUs
 *    with the churn, the polluters and this thread; they yield at every exit to
 *    userspace and their guests block in WFI every round (halt polling off:
 *    KVM_CAP_HALT_POLL 0), so kvm_sched_out/kvm_sched_in put and load them
 *    while other VMs flip the hook's static key and (every VM's creation and
 *    destruction) KVM's preempt-notifier key count; the preempt notifier key
 *    itself never drops to 0 while the long-lived C VM exists;
 *  - every guest (long-lived and churn) loads V0-V31, FPSR and FPCR with values
 *    of its own before each exit and stores them as the first FP use after it
 *    (hvc answered by KVM, a busy loop in which the host's interrupts exit, WFI
 *    blocked until the virtual timer, an MMIO write to userspace), then checks
 *    them, the EL1/EL0 registers of vhe_rs_sysregs.h it wrote at its start, and
 *    SP; at every exit to userspace its vCPU thread checks with KVM_GET_ONE_REG
 *    what vcpu_put saved (the same registers, SP_EL1);
 *  - each vCPU thread issues KVM_RUN from assembly with values of its own in
 *    V0-V31/FPSR/FPCR and checks them, and its TPIDR_EL0/TPIDRRO_EL0, when the
 *    ioctl returns; churn vCPU threads migrate at random at exits to userspace;
 *  - a polluter thread per CPU loads its own FP values, yields, and checks
 *    them and its TPIDR_EL0/TPIDRRO_EL0.
 * Every mismatch is counted, the first ones printed; the test fails on any.
 *
 * Passes: with vhe_rs loaded at the start (make check's module pass), the
 * module is unloaded and loaded each cycle, and loaded again at the end as it
 * was found (its parts and enable). Without it (the baseline pass) the same
 * cycles run with every VM on C and no insmod/rmmod, unless -l is given (load
 * it each cycle from -k, leave it unloaded at the end).
 *
 * Last line: STRESS lifecycle cycles=N vms_rust=A vms_c=B refused_rmmods=R
 * long_lived_checks=X mismatches=K (vms_rust: VMs run on Rust, not those of
 * step 2; long_lived_checks: the long-lived VMs' guest checks, one per exit,
 * their threads' checks after each KVM_RUN and their KVM_GET_ONE_REG checks).
 *
 *   lifecycle_stress [-k MODULE.ko] [-c CYCLES] [-d SECONDS] [-s SEED] [-l]
 *
 * -c: module cycles (default 60, 23 to 30 s under QEMU TCG, with a 60 s bound);
 * -d: start no new cycle after SECONDS (0: none; default 0 when -c is given);
 * -s: the seed of the random choices (backends, flips, rounds, migrations);
 *     default from the counter, the time and the pid, printed first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/arm-smccc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"
#include "vhe_rs_fp.h"
#include "vhe_rs_sysregs.h"

#define DEFAULT_KO	"/opt/vhe_rs.ko"	/* as module_lifecycle_test */
#define DEFAULT_CYCLES	60	/* 23 to 30 s under QEMU TCG (0.38-0.51 s a cycle) */
#define DEFAULT_BOUND	60	/* s: make check's timeout for a test is 120 s */
#define MAX_VCPUS	2
#define MAX_CPUS	8
#define MAX_CHURN	3	/* churn VMs running at once */
#define CHURN_PER_CYCLE	4	/* step 4 */
#define MMIO_GPA	(1ULL << 36)	/* not in any memslot: exits to userspace */
#define WAIT_SECS	60	/* for a VM's first run or its end */
#define PRINT_MAX	20	/* mismatches printed */

#define TAG_GUEST	0x6e57000000000000ULL
#define TAG_VCPU_THREAD	0x4057000000000000ULL
#define TAG_POLLUTER	0xbad0000000000000ULL

/* ---- guest ---- */

/* The exits of a round, in order; each is followed by a check. */
enum { X_HVC, X_SPIN, X_WFI, X_MMIO, NR_X };
static const int round_exits[] = { X_HVC, X_SPIN, X_HVC, X_WFI, X_MMIO };
#define EXITS_PER_ROUND	(sizeof(round_exits) / sizeof(round_exits[0]))
static const char *const exit_name[NR_X] = {
	"hvc (answered by KVM)", "a busy loop (host interrupts)",
	"WFI (blocked until the virtual timer)", "an MMIO write (exit to userspace)",
};

/* What a guest found wrong: kinds of its first mismatch. */
enum { BAD_V, BAD_FPSR, BAD_FPCR, BAD_SYSREG, BAD_SP };

/* One per vCPU, in guest memory; the host sets it up and reads it. */
struct gstate {
	struct fpregs fp_want;		/* host: the guest's FP values */
	struct fpregs fp_got;
	uint64_t val[NR_SYSREGS];	/* host: values for the guest to write */
	uint64_t wrote[NR_SYSREGS];
	uint64_t want[NR_SYSREGS];	/* guest: read back after writing them */
	uint64_t got[NR_SYSREGS];
	uint64_t rounds;		/* host: rounds to run, 0: until stop */
	uint64_t stop;			/* host: end after this round */
	uint64_t spin;			/* host: busy-loop iterations */
	uint64_t wfi_ticks;		/* host: WFI length, counter ticks */
	uint64_t ready;			/* guest: registers written, want[] valid */
	uint64_t round, checks, mismatches;
	uint64_t sp;			/* guest: SP at its last MMIO exit */
	/* the first mismatch */
	uint64_t bad_kind, bad_reg, bad_got, bad_want, bad_exit, bad_round;
} __attribute__((aligned(16)));

static struct gstate gstate[MAX_VCPUS];

static struct gstate *guest_self(void)
{
	return &gstate[read_sysreg(mpidr_el1) & 0xff];
}

/*
 * Load the FP registers, take exit @x, store them: the store is the first FP
 * use after the exit. Returns false if SP changed across it.
 */
static bool guest_exit(struct gstate *s, int x, uint64_t round)
{
	uint64_t sp0, sp1;

	switch (x) {
	case X_HVC:
		asm volatile(LOAD_FPREGS("%[w]")
			     "mov %[a], sp\n"
			     "mov x0, %[fid]\n hvc #0\n"
			     "mov %[b], sp\n"
			     STORE_FPREGS("%[g]")
			     : [a] "=&r"(sp0), [b] "=&r"(sp1)
			     : [w] "r"(&s->fp_want), [g] "r"(&s->fp_got),
			       [fid] "i"(ARM_SMCCC_VERSION_FUNC_ID)
			     : FP_REG_CLOBBERS, "x0", "x1", "x2", "x3");
		break;
	case X_SPIN:
		asm volatile(LOAD_FPREGS("%[w]")
			     "mov %[a], sp\n"
			     "mov x10, %[n]\n"
			     "1: subs x10, x10, #1\n b.ne 1b\n"
			     "mov %[b], sp\n"
			     STORE_FPREGS("%[g]")
			     : [a] "=&r"(sp0), [b] "=&r"(sp1)
			     : [w] "r"(&s->fp_want), [g] "r"(&s->fp_got), [n] "r"(s->spin | 1)
			     : FP_REG_CLOBBERS, "x10", "cc");
		break;
	case X_WFI:
		/* The timer's ISTATUS ends the loop; PSTATE.I is set: no interrupt is taken. */
		asm volatile(LOAD_FPREGS("%[w]")
			     "mov %[a], sp\n"
			     "mrs x10, cntvct_el0\n add x10, x10, %[t]\n msr cntv_cval_el0, x10\n"
			     "mov x10, #1\n msr cntv_ctl_el0, x10\n isb\n"
			     "1: mrs x10, cntv_ctl_el0\n tbnz x10, #2, 2f\n wfi\n b 1b\n"
			     "2: msr cntv_ctl_el0, xzr\n isb\n"
			     "mov %[b], sp\n"
			     STORE_FPREGS("%[g]")
			     : [a] "=&r"(sp0), [b] "=&r"(sp1)
			     : [w] "r"(&s->fp_want), [g] "r"(&s->fp_got), [t] "r"(s->wfi_ticks)
			     : FP_REG_CLOBBERS, "x10", "cc");
		break;
	default:
		asm volatile(LOAD_FPREGS("%[w]")
			     "mov %[a], sp\n"
			     "str %[a], [%[slot]]\n"
			     "str %[c], [%[mmio]]\n"
			     "mov %[b], sp\n"
			     STORE_FPREGS("%[g]")
			     : [a] "=&r"(sp0), [b] "=&r"(sp1)
			     : [w] "r"(&s->fp_want), [g] "r"(&s->fp_got), [slot] "r"(&s->sp),
			       [c] "r"(round), [mmio] "r"(MMIO_GPA)
			     : FP_REG_CLOBBERS);
		break;
	}
	return sp0 == sp1;
}

static void guest_bad(struct gstate *s, uint64_t kind, uint64_t reg, uint64_t got,
		      uint64_t want, int x)
{
	if (!s->mismatches) {
		s->bad_kind = kind;
		s->bad_reg = reg;
		s->bad_got = got;
		s->bad_want = want;
		s->bad_exit = x;
		s->bad_round = s->round;
	}
	s->mismatches++;
}

/* Write want[] back into the registers the guest owns, after a mismatch. */
static void guest_restore_sysregs(const uint64_t *want)
{
#define LC_R_RESTORE(n, enc, id, f)					\
	do {								\
		if ((f) & F_W) {					\
			write_sysreg_s(want[R_##n], enc);		\
			isb();						\
		}							\
	} while (0);
	VHE_RS_SYSREGS(LC_R_RESTORE)
}

static void guest_check(struct gstate *s, int x, bool sp_ok)
{
	bool sys_bad = false;

	for (int i = 0; i < 32; i++) {
		if (s->fp_got.v[i] == s->fp_want.v[i])
			continue;
		if ((uint64_t)s->fp_got.v[i] != (uint64_t)s->fp_want.v[i])
			guest_bad(s, BAD_V, i, s->fp_got.v[i], s->fp_want.v[i], x);
		else
			guest_bad(s, BAD_V, i + 32, s->fp_got.v[i] >> 64, s->fp_want.v[i] >> 64, x);
	}
	if (s->fp_got.fpsr != s->fp_want.fpsr)
		guest_bad(s, BAD_FPSR, 0, s->fp_got.fpsr, s->fp_want.fpsr, x);
	if (s->fp_got.fpcr != s->fp_want.fpcr)
		guest_bad(s, BAD_FPCR, 0, s->fp_got.fpcr, s->fp_want.fpcr, x);
	guest_read_sysregs(s->got);
	for (int i = 0; i < NR_SYSREGS; i++) {
		if (s->got[i] != s->want[i]) {
			guest_bad(s, BAD_SYSREG, i, s->got[i], s->want[i], x);
			sys_bad = true;
		}
	}
	if (!sp_ok)
		guest_bad(s, BAD_SP, 0, 0, 0, x);
	if (sys_bad)
		guest_restore_sysregs(s->want);
	s->checks++;
}

static void guest_code(void)
{
	struct gstate *s = guest_self();

	guest_write_sysregs(s->val, s->wrote);
	guest_read_sysregs(s->want);
	WRITE_ONCE(s->ready, 1);
	for (uint64_t r = 0; !READ_ONCE(s->stop) && (!s->rounds || r < s->rounds); r++) {
		s->round = r;
		for (unsigned int i = 0; i < EXITS_PER_ROUND; i++) {
			bool sp_ok = guest_exit(s, round_exits[i], r);

			guest_check(s, round_exits[i], sp_ok);
		}
	}
	GUEST_DONE();
}

/* ---- host: mismatches and the random choices ---- */

static atomic_ulong mismatches;

static void __attribute__((format(printf, 1, 2))) mismatch(const char *fmt, ...)
{
	unsigned long n = atomic_fetch_add(&mismatches, 1);
	char buf[512];
	va_list ap;

	if (n >= PRINT_MAX) {
		if (n == PRINT_MAX)
			fprintf(stderr, "lifecycle_stress: MISMATCH: more, not printed\n");
		return;
	}
	/* One write: the kernel's console messages interleave with the test's output. */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "lifecycle_stress: MISMATCH: %s\n", buf);
}

static const char *whose_tag(uint64_t tag)
{
	switch (tag & 0xffff000000000000ULL) {
	case TAG_GUEST:
		return "a guest's";
	case TAG_VCPU_THREAD:
		return "a vCPU thread's";
	case TAG_POLLUTER:
		return "a polluter's";
	}
	return "nobody's";
}

static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static uint64_t rng;	/* the main thread's */

static uint64_t rnd(uint64_t n)
{
	return rnd_next(&rng) % n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int ncpus;
static uint64_t seed;

/* Host state: V0-V31, FPSR and FPCR are the thread's own (switched per task). */
static void check_fp(const char *who, const struct fpregs *got, const struct fpregs *want)
{
	for (int r = 0; r < 32; r++) {
		if (got->v[r] != want->v[r]) {
			uint64_t tag = got->v[0] >> 64;

			mismatch("%s: V%d %#lx%016lx, expected %#lx%016lx (V0 holds %s values, tag %#lx)",
				 who, r, (uint64_t)(got->v[r] >> 64), (uint64_t)got->v[r],
				 (uint64_t)(want->v[r] >> 64), (uint64_t)want->v[r],
				 whose_tag(tag), tag);
			return;
		}
	}
	if (got->fpsr != want->fpsr || got->fpcr != want->fpcr)
		mismatch("%s: FPSR/FPCR %#lx/%#lx, expected %#lx/%#lx", who, got->fpsr, got->fpcr,
			 want->fpsr, want->fpcr);
}

/* ---- host: VMs and their vCPU threads ---- */

struct vm_ctx;

struct vcpu_ctx {
	struct vm_ctx *v;
	struct kvm_vcpu *vcpu;
	struct gstate *gs;		/* the guest's, through its HVA */
	pthread_t thread;
	int cpu;			/* pinned there, or -1: migrates */
	uint64_t rng;
	bool irq_line;
	uint64_t runs, user_exits, intr, host_checks, seen_bad;
	atomic_bool first_run, done;
};

struct vm_ctx {
	struct kvm_vm *vm;
	int serial, nvcpus;
	bool rust, long_lived, started;
	const char *role;
	struct vcpu_ctx c[MAX_VCPUS];
};

static int vm_serial;
static uint64_t wfi_ticks, spin_iters;

/* The module's state, as this test drives it. */
static bool mod_mode;		/* cycles load and unload the module */
static bool mod_loaded;		/* it is loaded now (the test's view, checked) */
static bool enable_now;		/* its enable parameter */
static bool has_sysregs;	/* its parts include sysregs: it counts vcpu_load */
static char parts[128];
static const char *ko = DEFAULT_KO;

/* Counts of one module lifetime: what vhe_rs/stats must say at its end. */
struct lifetime {
	long vm_rust, vm_c_disabled, vm_destroyed, rust_runs, refused;
	int rust_vms, c_vms;
};
static struct lifetime lt;

/* Totals. */
static long vms_rust, vms_c, vms_pending, refused_rmmods, rmmods, insmods;
static long long_lived_checks, long_lived_guest_checks, long_lived_blocks, sched_loads;
static long churn_checks, key_flips;
static atomic_ulong polluter_rounds;
static atomic_bool polluters_stop;

/* KVM_RUN with the thread's own FP values loaded and TPIDR_EL0/TPIDRRO_EL0 read around it. */
static long run_checked(int fd, const struct fpregs *want, struct fpregs *got, uint64_t own_tp,
			struct vhe_rs_user_regs *before, struct vhe_rs_user_regs *after)
{
	register long x0 asm("x0") = fd;
	register long x1 asm("x1") = KVM_RUN;
	register long x2 asm("x2") = 0;
	register long x8 asm("x8") = __NR_ioctl;
	uint64_t t0, r0, t1, r1;

	asm volatile(LOAD_FPREGS("%[w]")
		     "mrs %[t0], tpidr_el0\n mrs %[r0], tpidrro_el0\n"
		     "svc #0\n"
		     "mrs %[t1], tpidr_el0\n mrs %[r1], tpidrro_el0\n"
		     "cmp %[t1], %[own]\n b.eq 1f\n msr tpidr_el0, %[own]\n1:\n"
		     STORE_FPREGS("%[g]")
		     : "+r"(x0), [t0] "=&r"(t0), [r0] "=&r"(r0), [t1] "=&r"(t1), [r1] "=&r"(r1)
		     : "r"(x1), "r"(x2), "r"(x8), [w] "r"(want), [g] "r"(got), [own] "r"(own_tp)
		     : FP_REG_CLOBBERS, "cc");
	before->tpidr = t0;
	before->tpidrro = r0;
	after->tpidr = t1;
	after->tpidrro = r1;
	return x0;
}

static const char *bad_kind_name(uint64_t k)
{
	static const char *const n[] = { "V", "FPSR", "FPCR", "sysreg", "SP" };

	return k < 5 ? n[k] : "?";
}

/* New mismatches the guest counted: report them. */
static void guest_mismatches(struct vcpu_ctx *c)
{
	struct gstate *s = c->gs;
	uint64_t n = READ_ONCE(s->mismatches);

	if (n == c->seen_bad)
		return;
	for (uint64_t i = c->seen_bad; i < n; i++) {
		if (i == 0)
			mismatch("VM %d (%s, %s) vCPU %u guest: %s%s%s after %s (round %lu): %#lx, "
				 "expected %#lx (%lu mismatches so far)", c->v->serial, c->v->role,
				 c->v->rust ? "Rust" : "C", c->vcpu->id, bad_kind_name(s->bad_kind),
				 s->bad_kind == BAD_SYSREG ? " " : "",
				 s->bad_kind == BAD_SYSREG ? sysreg_name[s->bad_reg % NR_SYSREGS] : "",
				 exit_name[s->bad_exit % NR_X], s->bad_round, s->bad_got, s->bad_want, n);
		else
			mismatch("VM %d vCPU %u guest: another mismatch (%lu in all)", c->v->serial,
				 c->vcpu->id, n);
	}
	c->seen_bad = n;
}

/* At an exit to userspace: what vcpu_put saved must be the guest's. */
static void host_check_saved(struct vcpu_ctx *c)
{
	uint64_t v;

	if (!READ_ONCE(c->gs->ready))
		return;
	for (int i = 0; i < NR_SYSREGS; i++) {
		vcpu_get_reg(c->vcpu, sysreg_id[i], &v);
		if (v != c->gs->want[i])
			mismatch("VM %d (%s) vCPU %u: KVM_GET_ONE_REG %s = %#lx at exit to userspace "
				 "%lu, the guest's is %#lx", c->v->serial, c->v->role, c->vcpu->id,
				 sysreg_name[i], v, c->user_exits, c->gs->want[i]);
	}
	vcpu_get_reg(c->vcpu, ARM64_CORE_REG(sp_el1), &v);
	if (v != c->gs->sp)
		mismatch("VM %d vCPU %u: KVM_GET_ONE_REG SP_EL1 = %#lx, the guest's is %#lx",
			 c->v->serial, c->vcpu->id, v, c->gs->sp);
	c->host_checks++;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu_ctx *c = arg;
	struct kvm_run *run = c->vcpu->run;
	struct vhe_rs_user_regs own, before, after;
	struct fpregs want, got;
	char who[96];
	struct ucall uc;
	long ret;

	if (c->cpu >= 0)
		vhe_rs_migrate(c->cpu, ncpus);
	fpregs_fill(&want, TAG_VCPU_THREAD | (uint64_t)c->v->serial << 8 | c->vcpu->id);
	vhe_rs_own_user_regs(&own);
	snprintf(who, sizeof(who), "VM %d (%s) vCPU %u thread across KVM_RUN", c->v->serial,
		 c->v->role, c->vcpu->id);
	for (;;) {
		ret = run_checked(c->vcpu->fd, &want, &got, own.tpidr, &before, &after);
		c->runs++;
		atomic_store(&c->first_run, true);
		/* Host state: the thread's own, switched per task. */
		check_fp(who, &got, &want);
		if (before.tpidr != own.tpidr || after.tpidr != own.tpidr ||
		    before.tpidrro != own.tpidrro || after.tpidrro != own.tpidrro)
			mismatch("%s (#%lu): TPIDR_EL0 %#lx/%#lx TPIDRRO_EL0 %#lx/%#lx before/after, "
				 "its own %#lx %#lx", who, c->runs, before.tpidr, after.tpidr,
				 before.tpidrro, after.tpidrro, own.tpidr, own.tpidrro);
		/* No in-kernel irqchip: the host wires the virtual timer to the vCPU's IRQ line. */
		vhe_rs_sync_vtimer_line(c->v->vm, c->vcpu, &c->irq_line);
		if (ret == -EINTR) {	/* the timer's level changed, no irqchip: run on */
			TEST_ASSERT(run->exit_reason == KVM_EXIT_INTR, "EINTR, exit %s",
				    exit_reason_str(run->exit_reason));
			c->intr++;
			continue;
		}
		TEST_ASSERT(ret == 0, "VM %d vCPU %u: KVM_RUN: %ld", c->v->serial, c->vcpu->id, ret);
		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == MMIO_GPA) {
			c->user_exits++;
			host_check_saved(c);
			guest_mismatches(c);
			if (c->cpu < 0 && rnd_next(&c->rng) % 2)
				vhe_rs_migrate(rnd_next(&c->rng) % ncpus, ncpus);
			sched_yield();
			continue;
		}
		switch (get_ucall(c->vcpu, &uc)) {
		case UCALL_DONE:
			guest_mismatches(c);
			atomic_store(&c->done, true);
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			TEST_FAIL("VM %d vCPU %u: unexpected exit %s", c->v->serial, c->vcpu->id,
				  exit_reason_str(run->exit_reason));
		}
	}
}

/* Host state: its own FP values and TPIDR_EL0/TPIDRRO_EL0 across preemption. */
static void *polluter(void *arg)
{
	long cpu = (long)arg;
	struct fpregs want, got;
	uint64_t tp, tpro, t, r;
	char who[32];

	vhe_rs_migrate(cpu, ncpus);
	snprintf(who, sizeof(who), "polluter on CPU %ld", cpu);
	fpregs_fill(&want, TAG_POLLUTER | cpu);
	asm volatile("mrs %0, tpidr_el0\n mrs %1, tpidrro_el0" : "=r"(tp), "=r"(tpro));
	for (uint64_t n = 1; !atomic_load(&polluters_stop); n++) {
		asm volatile(LOAD_FPREGS("%[w]") : : [w] "r"(&want) : FP_REG_CLOBBERS);
		sched_yield();
		asm volatile(STORE_FPREGS("%[g]") : : [g] "r"(&got) : FP_REG_CLOBBERS);
		asm volatile("mrs %0, tpidr_el0\n mrs %1, tpidrro_el0" : "=r"(t), "=r"(r));
		if (t != tp)
			asm volatile("msr tpidr_el0, %0" : : "r"(tp));
		check_fp(who, &got, &want);
		if (t != tp || r != tpro)
			mismatch("%s: TPIDR_EL0 %#lx TPIDRRO_EL0 %#lx, its own %#lx %#lx", who, t, r,
				 tp, tpro);
		atomic_fetch_add(&polluter_rounds, 1);
		if (n % 32 == 0)	/* a share of the CPU for the rest */
			usleep(200);
	}
	return NULL;
}

/* ---- host: the module ---- */

static void read_param(const char *name, char *buf, size_t len);

static long stat_of(const char *name)
{
	return vhe_rs_stat(name);
}

static void set_enable(bool on)
{
	if (!mod_loaded)
		return;
	TEST_ASSERT(vhe_rs_set_enable(on), "writing enable=%c", on ? 'Y' : 'N');
	enable_now = on;
}

static void flip_enable(void)
{
	set_enable(!enable_now);
}

static void load_module(const char *params)
{
	int fd = open(ko, O_RDONLY);

	TEST_ASSERT(fd >= 0, "open %s", ko);
	TEST_ASSERT(!syscall(__NR_finit_module, fd, params, 0), "finit_module(%s, \"%s\")", ko,
		    params);
	close(fd);
	TEST_ASSERT(vhe_rs_loaded(), "vhe_rs not loaded after finit_module");
	mod_loaded = true;
	enable_now = vhe_rs_enabled();
	insmods++;
	if (!parts[0]) {	/* -l: the module's default parts, kept for the next loads */
		read_param("parts", parts, sizeof(parts));
		has_sysregs = strstr(parts, "sysregs");
	}
}

/* rmmod while a VM holds the module: refused, and the module stays. */
static void rmmod_refused(const char *why)
{
	int ret;

	if (!mod_loaded)
		return;
	errno = 0;
	ret = syscall(__NR_delete_module, "vhe_rs", O_NONBLOCK);
	if (!ret)
		mod_loaded = false;
	TEST_ASSERT(ret == -1 && (errno == EBUSY || errno == EAGAIN),
		    "rmmod while %s: ret %d errno %d (%s), expected EBUSY or EAGAIN/EWOULDBLOCK",
		    why, ret, errno, strerror(errno));
	TEST_ASSERT(vhe_rs_loaded(), "vhe_rs gone after a refused rmmod");
	refused_rmmods++;
	lt.refused++;
}

static void rmmod_ok(const char *why)
{
	char bug[64];
	long bugs = vhe_rs_bug_stats(bug);

	/* The counters go with the module: whatever ran since its load is checked here. */
	if (bugs > 0)
		mismatch("rmmod %s: %ld in the bug_ counters (%s first)", why, bugs, bug);
	errno = 0;
	TEST_ASSERT(!syscall(__NR_delete_module, "vhe_rs", O_NONBLOCK),
		    "rmmod %s: errno %d (%s)", why, errno, strerror(errno));
	TEST_ASSERT(!vhe_rs_loaded(), "vhe_rs still loaded after rmmod");
	mod_loaded = false;
	rmmods++;
}

/* ---- host: a VM's life, its backend checked at each step ---- */

static struct vm_ctx *vm_new(const char *role, int nvcpus, bool long_lived, uint64_t rounds)
{
	struct vm_ctx *v = calloc(1, sizeof(*v));
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	long cd0 = stat_of("vm_c_disabled"), cd1;

	TEST_ASSERT(v, "calloc");
	v->serial = ++vm_serial;
	v->nvcpus = nvcpus;
	v->long_lived = long_lived;
	v->role = role;
	v->rust = mod_loaded && enable_now;	/* decided at creation: vm_init */
	v->vm = vm_create_with_vcpus(nvcpus, guest_code, vcpus);
	cd1 = stat_of("vm_c_disabled");
	if (mod_loaded && !v->rust && cd1 != cd0 + 1)
		mismatch("VM %d (%s) created while enable=N: vm_c_disabled %ld -> %ld, expected +1",
			 v->serial, role, cd0, cd1);
	else if ((v->rust || !mod_loaded) && cd1 != cd0)
		mismatch("VM %d (%s) created %s: vm_c_disabled %ld -> %ld, expected no change",
			 v->serial, role, mod_loaded ? "while enable=Y" : "with the module out", cd0,
			 cd1);
	if (mod_loaded) {
		if (v->rust) {
			lt.vm_destroyed++;	/* vm_destroy pairs with vm_init */
		} else {
			lt.vm_c_disabled++;
		}
	}
	virt_map(v->vm, MMIO_GPA, MMIO_GPA, 1);
	/* Every WFI blocks (no halt polling): the vCPU is put and loaded by the scheduler. */
	vm_enable_cap(v->vm, KVM_CAP_HALT_POLL, 0);
	for (int i = 0; i < nvcpus; i++) {
		struct vcpu_ctx *c = &v->c[i];
		struct gstate *gs = addr_gva2hva(v->vm, (vm_vaddr_t)&gstate[vcpus[i]->id]);
		uint64_t owner = (v->serial * MAX_VCPUS + i) % 255 + 1;

		c->v = v;
		c->vcpu = vcpus[i];
		c->gs = gs;
		c->cpu = long_lived ? i : -1;
		c->rng = (seed ^ (0x9e3779b97f4a7c15ULL * (v->serial * MAX_VCPUS + i))) | 1;
		memset(gs, 0, sizeof(*gs));
		fpregs_fill(&gs->fp_want, TAG_GUEST | (uint64_t)v->serial << 8 | i);
		for (int r = 0; r < NR_SYSREGS; r++)
			gs->val[r] = sysreg_value(r, VAL_GUEST, owner, v->serial);
		gs->rounds = rounds;
		gs->spin = spin_iters;
		gs->wfi_ticks = wfi_ticks;
	}
	return v;
}

/* Start the vCPU threads; once each has been through KVM_RUN, the VM's backend is decided. */
static void vm_start(struct vm_ctx *v)
{
	long r0 = stat_of("vm_rust"), r1;
	double t0 = now();

	for (int i = 0; i < v->nvcpus; i++)
		pthread_create(&v->c[i].thread, NULL, vcpu_thread, &v->c[i]);
	for (int i = 0; i < v->nvcpus; i++) {
		while (!atomic_load(&v->c[i].first_run)) {
			TEST_ASSERT(now() - t0 < WAIT_SECS, "VM %d (%s) vCPU %d: no KVM_RUN returned in "
				    "%d s", v->serial, v->role, i, WAIT_SECS);
			usleep(1000);
		}
	}
	v->started = true;
	r1 = stat_of("vm_rust");
	if (r1 != r0 + (v->rust ? 1 : 0))
		mismatch("VM %d (%s): vm_rust %ld -> %ld at its first KVM_RUN: expected %s",
			 v->serial, v->role, r0, r1, v->rust ? "+1 (created while enable=Y: Rust)" :
			 "no change (created while enable=N or with the module out: C)");
	if (v->rust) {
		lt.vm_rust++;
		lt.rust_vms++;
		vms_rust++;
	} else {
		lt.c_vms++;
		vms_c++;
	}
}

static bool vm_done(struct vm_ctx *v)
{
	for (int i = 0; i < v->nvcpus; i++)
		if (!atomic_load(&v->c[i].done))
			return false;
	return true;
}

static void vm_stop(struct vm_ctx *v)
{
	for (int i = 0; i < v->nvcpus; i++)
		WRITE_ONCE(v->c[i].gs->stop, 1);
}

/* Wait for the guest to be done (stopping a long-lived one), free the VM, check vm_destroyed. */
static void vm_free(struct vm_ctx *v)
{
	double t0 = now();
	long d0, d1;

	if (v->started) {
		vm_stop(v);	/* a churn VM that is done already has stopped */
		while (!vm_done(v)) {
			TEST_ASSERT(now() - t0 < WAIT_SECS, "VM %d (%s): not done in %d s", v->serial,
				    v->role, WAIT_SECS);
			usleep(1000);
		}
		for (int i = 0; i < v->nvcpus; i++) {
			struct vcpu_ctx *c = &v->c[i];

			pthread_join(c->thread, NULL);
			if (v->rust)
				lt.rust_runs += c->runs;
			if (v->long_lived) {
				uint64_t blocks = vhe_rs_vcpu_stat(c->vcpu, "halt_wakeup");

				long_lived_blocks += blocks;
				long_lived_guest_checks += c->gs->checks;
				long_lived_checks += c->gs->checks + c->host_checks + c->runs;
			} else {
				churn_checks += c->gs->checks;
			}
			TEST_ASSERT(c->gs->checks > 0, "VM %d (%s) vCPU %d: the guest checked nothing",
				    v->serial, v->role, i);
		}
	}
	d0 = stat_of("vm_destroyed");
	kvm_vm_free(v->vm);
	d1 = stat_of("vm_destroyed");
	if (d1 != d0 + (v->rust ? 1 : 0))
		mismatch("VM %d (%s, %s) freed: vm_destroyed %ld -> %ld, expected %s", v->serial,
			 v->role, v->rust ? "Rust" : "C", d0, d1, v->rust ? "+1" : "no change");
	free(v);
}

/* ---- host: the VMs of a cycle ---- */

#define MAX_LIVE	16
static struct vm_ctx *churn[MAX_LIVE];
static int nchurn;
static struct vm_ctx *carry[MAX_LIVE];	/* C VMs run across rmmod and insmod */
static int ncarry;
static struct vm_ctx *lr;		/* the cycle's long-lived Rust VM */

static bool rust_alive(void)
{
	if (lr)
		return true;
	for (int i = 0; i < nchurn; i++)
		if (churn[i]->rust)
			return true;
	return false;
}

static void churn_remove(int i)
{
	struct vm_ctx *v = churn[i];

	churn[i] = churn[--nchurn];
	vm_free(v);
	if (rust_alive())
		rmmod_refused("a Rust VM runs (after another VM was freed)");
}

/* Free the churn VMs that are done; with @wait_rust, wait for every Rust one. */
static void churn_reap(bool wait_rust)
{
	double t0 = now();

	for (;;) {
		bool waiting = false;

		for (int i = 0; i < nchurn; i++) {
			if (vm_done(churn[i])) {
				churn_remove(i);
				i = -1;	/* start over: the array moved */
				continue;
			}
			if (wait_rust && churn[i]->rust)
				waiting = true;
		}
		if (!waiting)
			return;
		TEST_ASSERT(now() - t0 < WAIT_SECS, "churn VMs not done in %d s", WAIT_SECS);
		usleep(1000);
	}
}

static uint64_t churn_rounds(void)
{
	return 6 + rnd(18);
}

static void churn_add(bool rust, const char *role)
{
	struct vm_ctx *v;
	bool flip;

	double t0 = now();

	while (nchurn >= MAX_CHURN) {
		TEST_ASSERT(now() - t0 < WAIT_SECS, "churn VMs not done in %d s", WAIT_SECS);
		usleep(1000);
		churn_reap(false);
	}
	set_enable(rust);
	v = vm_new(role, 1, false, churn_rounds());
	/* Flipped between creation and first KVM_RUN: the VM keeps what it was created with. */
	flip = mod_loaded && !rnd(3);
	if (flip)
		flip_enable();
	vm_start(v);
	churn[nchurn++] = v;
	if (mod_loaded && !rnd(2))
		flip_enable();	/* while VMs run */
}

static void cycle(int n, bool last)
{
	double t0 = now();
	long load, put, vr, vcd, vd, sched, bugs;
	unsigned long m0;
	char bug[64];
	uint64_t order;

	memset(&lt, 0, sizeof(lt));
	if (mod_mode) {
		char params[160];

		snprintf(params, sizeof(params), parts[0] ? "parts=%s" : "", parts);
		load_module(params);
		TEST_ASSERT(stat_of("vm_rust") == 0 && stat_of("vcpu_load") == 0,
			    "cycle %d: a fresh module's counters are not 0", n);
		set_enable(true);
	}
	/* 1: the C VMs carried across the last rmmod and this insmod end here. */
	while (ncarry)
		vm_free(carry[--ncarry]);

	/* 2: a VM created while enable=Y holds the module before it ever runs. */
	if (mod_loaded) {
		struct vm_ctx *v = vm_new("never run", 1, false, 1);

		rmmod_refused("a VM created while enable=Y exists (never run)");
		vm_free(v);
		vms_pending++;
	}

	/* 3: Rust VMs one at a time: each raises the hook's key from 0 and drops it. */
	order = rnd(3);	/* where the C VM goes among the three */
	for (uint64_t k = 0; k < 3; k++) {
		if (k == order) {
			churn_add(false, "churn, key flips");
			continue;
		}
		set_enable(true);
		struct vm_ctx *v = vm_new("key flip", 1, false, churn_rounds());

		vm_start(v);
		if (v->rust) {
			key_flips++;
			rmmod_refused("a Rust VM runs");
		}
		while (!vm_done(v)) {
			TEST_ASSERT(now() - t0 < 2 * WAIT_SECS, "VM %d (%s): not done", v->serial,
				    v->role);
			usleep(1000);
		}
		vm_free(v);
	}

	/* 4: the cycle's long-lived Rust VM, and churn on both backends. */
	set_enable(true);
	lr = vm_new("long-lived, this cycle", 2, true, 0);
	vm_start(lr);
	for (int k = 0; k < CHURN_PER_CYCLE; k++) {
		churn_reap(false);
		churn_add(rnd(2), "churn");
	}

	/* 5: a C VM that runs across the rmmod and the next insmod. */
	set_enable(false);
	carry[ncarry] = vm_new("straddler", 1, false, 0);
	vm_start(carry[ncarry++]);

	/* 6: the Rust VMs go, the long-lived one last; rmmod refused while any remains. */
	churn_reap(true);
	vm_free(lr);
	lr = NULL;
	if (mod_loaded) {
		/* No VM on Rust now: every Rust vCPU loaded has been put. */
		m0 = atomic_load(&mismatches);
		load = stat_of("vcpu_load");
		put = stat_of("vcpu_put");
		vr = stat_of("vm_rust");
		vcd = stat_of("vm_c_disabled");
		vd = stat_of("vm_destroyed");
		if (load != put)
			mismatch("cycle %d: vcpu_load %ld, vcpu_put %ld with no VM on Rust", n, load, put);
		bugs = vhe_rs_bug_stats(bug);
		if (bugs < 0)
			mismatch("cycle %d: no vhe_rs/stats with the module loaded", n);
		else if (bugs)
			mismatch("cycle %d: %ld in the bug_ counters (%s first)", n, bugs, bug);
		if (vr != lt.vm_rust || vcd != lt.vm_c_disabled || vd != lt.vm_destroyed)
			mismatch("cycle %d: vm_rust %ld vm_c_disabled %ld vm_destroyed %ld, expected "
				 "%ld %ld %ld", n, vr, vcd, vd, lt.vm_rust, lt.vm_c_disabled,
				 lt.vm_destroyed);
		if (has_sysregs && load < lt.rust_runs)
			mismatch("cycle %d: vcpu_load %ld, fewer than the %ld KVM_RUNs of Rust vCPUs",
				 n, load, lt.rust_runs);
		if (!has_sysregs && (load || put))
			mismatch("cycle %d: vcpu_load %ld vcpu_put %ld without the sysregs part",
				 n, load, put);
		if (atomic_load(&mismatches) != m0)	/* every counter, for the diagnosis */
			vhe_rs_dump_stats(stderr, "lifecycle_stress:   ");
		sched = has_sysregs ? load - lt.rust_runs : 0;
		sched_loads += sched;
		/* 7: C VMs still run (the long-lived one, the straddler, churn). */
		rmmod_ok("with no VM on Rust, C VMs running");
	} else {
		load = put = sched = -1;
	}
	/* 7: a VM created with the module out runs on C. */
	carry[ncarry] = vm_new("module out", 1, false, 0);
	vm_start(carry[ncarry++]);
	churn_reap(false);

	if (n < 3 || (n + 1) % 100 == 0 || last)
		printf("lifecycle_stress: cycle %d: %d VMs on Rust, %d on C, %ld rmmods refused; "
		       "vcpu_load %ld vcpu_put %ld (%ld KVM_RUNs of Rust vCPUs, %ld loads by the "
		       "scheduler); %.2f s\n", n, lt.rust_vms, lt.c_vms, lt.refused, load, put,
		       lt.rust_runs, sched, now() - t0);
}

static void read_param(const char *name, char *buf, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/vhe_rs/parameters/%s", name);
	f = fopen(path, "r");
	TEST_ASSERT(f && fgets(buf, len, f), "reading %s", path);
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

static bool was_loaded, was_enabled, restore_done;

/* Whatever happens, leave the module loaded if it was. */
static void restore_module(void)
{
	int fd;
	char params[160];

	if (restore_done || !was_loaded || vhe_rs_loaded())
		return;
	restore_done = true;
	fd = open(ko, O_RDONLY);
	snprintf(params, sizeof(params), parts[0] ? "parts=%s" : "", parts);
	if (fd >= 0 && !syscall(__NR_finit_module, fd, params, 0))
		vhe_rs_set_enable(was_enabled);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char *argv[])
{
	int cycles = DEFAULT_CYCLES, bound = -1, opt, done = 0, load_flag = 0;
	pthread_t pt[MAX_CPUS];
	struct vm_ctx *lc;
	uint64_t freq;
	double t0;

	asm volatile("mrs %0, cntvct_el0" : "=r"(seed));
	seed ^= (uint64_t)time(NULL) << 32 ^ (uint64_t)getpid() << 48;
	while ((opt = getopt(argc, argv, "k:c:d:s:l")) != -1) {
		switch (opt) {
		case 'k':
			ko = optarg;
			break;
		case 'c':
			cycles = atoi(optarg);
			if (bound < 0)
				bound = 0;
			break;
		case 'd':
			bound = atoi(optarg);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'l':
			load_flag = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-k MODULE.ko] [-c CYCLES] [-d SECONDS] [-s SEED] [-l]\n",
				argv[0]);
			return 2;
		}
	}
	if (bound < 0)
		bound = DEFAULT_BOUND;
	if (bound)
		printf("lifecycle_stress: no new cycle after %d s\n", bound);
	TEST_REQUIRE(cycles >= 1);
	rng = seed | 1;
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus > MAX_CPUS)
		ncpus = MAX_CPUS;
	asm volatile("mrs %0, cntfrq_el0" : "=r"(freq));
	wfi_ticks = freq / 1000;	/* 1 ms: longer than a scheduler round trip */
	spin_iters = 20000;

	was_loaded = vhe_rs_loaded();
	mod_mode = was_loaded || load_flag;
	if (mod_mode)
		__TEST_REQUIRE(!access(ko, R_OK), "%s not readable: cannot load vhe_rs again", ko);
	if (was_loaded) {
		char en[8];

		read_param("parts", parts, sizeof(parts));
		read_param("enable", en, sizeof(en));
		was_enabled = en[0] == 'Y';
		enable_now = was_enabled;
		mod_loaded = true;
		has_sysregs = strstr(parts, "sysregs");
		atexit(restore_module);
	}
	printf("lifecycle_stress: seed %#lx; %d cycles%s; %s; %d CPUs\n", seed, cycles,
	       bound ? ", no new one after the bound (-d)" : "",
	       mod_mode ? (was_loaded ? "vhe_rs loaded: unloaded and loaded each cycle, loaded "
				       "again at the end" : "vhe_rs not loaded: loaded (-l) and "
				       "unloaded each cycle") :
	       "vhe_rs not loaded: every VM on C, no insmod/rmmod (baseline)", ncpus);
	fflush(stdout);

	for (long c = 0; c < ncpus; c++)
		pthread_create(&pt[c], NULL, polluter, (void *)c);

	/* The long-lived C VM: created on C, it runs until the end. */
	set_enable(false);
	lc = vm_new("long-lived C", 2, true, 0);
	vm_start(lc);
	if (mod_loaded)
		rmmod_ok("at the start, the long-lived C VM running");

	t0 = now();
	while (done < cycles && (!bound || done == 0 || now() - t0 < bound)) {
		cycle(done, done + 1 == cycles);
		done++;
	}
	t0 = now() - t0;

	while (nchurn)
		churn_remove(nchurn - 1);
	while (ncarry)
		vm_free(carry[--ncarry]);
	vm_free(lc);

	if (was_loaded) {
		char params[160];

		snprintf(params, sizeof(params), parts[0] ? "parts=%s" : "", parts);
		load_module(params);
		set_enable(was_enabled);
		restore_done = true;
	}
	atomic_store(&polluters_stop, true);
	for (long c = 0; c < ncpus; c++)
		pthread_join(pt[c], NULL);

	printf("lifecycle_stress: %d cycles in %.1f s (%.2f s a cycle%s); %ld insmods, %ld rmmods, "
	       "%ld refused; %ld Rust VMs raised the hook's key from 0 alone; %ld VMs held the "
	       "module without running\n", done, t0, t0 / done,
	       done < cycles ? ", stopped by the bound" : "", insmods, rmmods, refused_rmmods,
	       key_flips, vms_pending);
	printf("lifecycle_stress: long-lived VMs: %ld guest checks (FP, %d EL1/EL0 registers, SP "
	       "after each exit), %ld checks in all (with their threads' and KVM_GET_ONE_REG's); "
	       "their vCPUs blocked in WFI %ld times; churn guests: %ld checks; %ld loads of Rust "
	       "vCPUs by the scheduler; %lu polluter rounds on %d CPUs\n", long_lived_guest_checks,
	       NR_SYSREGS, long_lived_checks, long_lived_blocks, churn_checks, sched_loads,
	       atomic_load(&polluter_rounds), ncpus);
	printf("STRESS lifecycle cycles=%d vms_rust=%ld vms_c=%ld refused_rmmods=%ld "
	       "long_lived_checks=%ld mismatches=%lu\n", done, vms_rust, vms_c, refused_rmmods,
	       long_lived_checks, atomic_load(&mismatches));
	fflush(stdout);
	TEST_ASSERT(!atomic_load(&mismatches), "%lu mismatches", atomic_load(&mismatches));
	TEST_ASSERT(long_lived_blocks > 0, "the long-lived vCPUs never blocked in WFI");
	TEST_ASSERT(!mod_mode || !has_sysregs || sched_loads > 0,
		    "no Rust vCPU was loaded by the scheduler (kvm_sched_in)");
	TEST_ASSERT(atomic_load(&polluter_rounds) > 0, "the polluters never ran");
	TEST_ASSERT(!was_loaded || (vhe_rs_loaded() && vhe_rs_enabled() == was_enabled),
		    "vhe_rs not left as found");
	return 0;
}
