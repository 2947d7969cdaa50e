// SPDX-License-Identifier: GPL-2.0
/*
 * vmm-check: what the Linux guest of `make run` / `make check` runs to check the
 * world switch from inside (tools/vmm/guest-init), and a clock for the VHE host's
 * side (tools/vmm/vmm-run). Static arm64, no dependency but libc.
 *
 *   vmm-check hold ID STOPFILE MINROUNDS
 *	Holds a pattern in all 32 FP/SIMD registers, a rounding mode in FPCR and
 *	flags in FPSR, round after round, while it spins, yields and moves itself
 *	to the next CPU (sched_setaffinity from inside the same asm block: the
 *	registers live through the migration between vCPUs); checks every
 *	register after each round, TPIDR_EL0 and TPIDRRO_EL0, an FP computation
 *	under that rounding mode against its first result, that CLOCK_MONOTONIC
 *	never goes back and that a 2 ms sleep lasts 2 ms. Runs until STOPFILE
 *	exists and MINROUNDS rounds are done. The first thing it finds wrong is
 *	printed, naming it (register, lane, value, expected), and it exits 1.
 *	A fault (SIGSEGV, SIGBUS, SIGILL) is reported from the handler with raw
 *	system calls only (no libc, whose every call may use the thread pointer),
 *	naming TPIDR_EL0 if it is not what the task set.
 *   vmm-check (as PID 1, e.g. /init a link to it)
 *	The guest's PID 1: runs /bin/sh /vmm/guest-init and waits for it, with raw system
 *	calls only, so that a PID 1 whose state the hypervisor broke does not take
 *	the guest down before it has said what went wrong. If the script is killed
 *	by a signal it prints `vmm-guest: FAIL: ...` and `vmm-guest: FAILED`; then
 *	(or when the script exits, which it does not: it powers off) it powers off.
 *   vmm-check now       CLOCK_MONOTONIC in ns (under -icount shift=0: instructions)
 *   vmm-check counter   CNTVCT_EL0 and CNTFRQ_EL0 (a guest's counter starts at 0
 *			 when KVM creates the VM)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <sys/reboot.h>
#include <linux/reboot.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FPCR_RMODE_RZ	(3UL << 22)	/* round towards zero */
#define FPCR_DN		(1UL << 25)
#define FPSR_FLAGS	0x9fUL		/* IDC, IXC, UFC, OFC, DZC, IOC */

static const char *me = "vmm-check";
static int id;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	return x ^ (x >> 33);
}

#define RD(reg) ({ uint64_t v; asm volatile("mrs %0, " #reg : "=r"(v)); v; })
#define WR(reg, v) asm volatile("msr " #reg ", %0" :: "r"((uint64_t)(v)))

/* ---- raw system calls and formatting: what a fault handler and PID 1 may use ---- */

static long raw6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long x0 asm("x0") = a;
	register long x1 asm("x1") = b;
	register long x2 asm("x2") = c;
	register long x3 asm("x3") = d;
	register long x4 asm("x4") = e;
	register long x5 asm("x5") = f;
	register long x8 asm("x8") = nr;

	asm volatile("svc #0" : "+r"(x0) : "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5), "r"(x8) : "memory");
	return x0;
}

#define raw(nr, a, b, c) raw6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

struct rawbuf {
	char b[400];
	int n;
};

static void put_s(struct rawbuf *o, const char *s)
{
	while (*s && o->n < (int)sizeof(o->b) - 1)
		o->b[o->n++] = *s++;
}

static void put_x(struct rawbuf *o, uint64_t v)
{
	char t[19] = "0x";

	for (int i = 0; i < 16; i++)
		t[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
	t[18] = 0;
	put_s(o, t);
}

static void put_d(struct rawbuf *o, long v)
{
	char t[24];
	int i = sizeof(t) - 1;

	t[i] = 0;
	if (v < 0) {
		put_s(o, "-");
		v = -v;
	}
	do {
		t[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	put_s(o, t + i);
}

static void put_out(struct rawbuf *o)
{
	put_s(o, "\n");
	raw(__NR_write, 1, o->b, o->n);
	o->n = 0;
}

static uint64_t good_tpidr;

static const char *signame(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGKILL: return "SIGKILL";
	case SIGTERM: return "SIGTERM";
	case SIGABRT: return "SIGABRT";
	default: return "a signal";
	}
}

static void on_fault(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	uint64_t tp = RD(tpidr_el0);
	struct rawbuf o = { .n = 0 };

	put_s(&o, "vmm-check: hold ");
	put_d(&o, id);
	put_s(&o, ": FAIL: ");
	put_s(&o, signame(sig));
	put_s(&o, " at pc ");
	put_x(&o, uc->uc_mcontext.pc);
	put_s(&o, ", fault address ");
	put_x(&o, (uint64_t)si->si_addr);
	if (tp != good_tpidr) {
		put_s(&o, ": TPIDR_EL0 is ");
		put_x(&o, tp);
		put_s(&o, ", expected ");
		put_x(&o, good_tpidr);
		put_s(&o, " (the thread pointer changed under the task)");
	} else {
		put_s(&o, " (TPIDR_EL0 is right)");
	}
	put_out(&o);
	raw(__NR_exit_group, 1, 0, 0);
}

/* Sum of 1/k^2, k = 1..n, in whatever rounding mode FPCR has. */
static double __attribute__((noinline)) series(int n)
{
	volatile double s = 0;

	for (int k = 1; k <= n; k++)
		s += 1.0 / ((double)k * (double)k);
	return s;
}

static int fail(uint64_t round, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(uint64_t round, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("%s: hold %d: FAIL in round %" PRIu64 " on cpu %d: %s\n", me, id, round, sched_getcpu(), msg);
	fflush(stdout);
	return 1;
}

/*
 * One round, in one asm block so that the compiler touches no FP/SIMD register
 * in between: load q0-q31 from in[], spin, sched_setaffinity(0, sizeof(mask),
 * &mask) (the kernel moves the task to that CPU before it returns), spin,
 * sched_yield(), spin, store q0-q31 to out[].
 */
static void hold_round(const uint64_t *in, uint64_t *out, const cpu_set_t *mask, uint64_t spin)
{
	asm volatile(
		"ldp q0, q1, [%[in], #0]\n\t"     "ldp q2, q3, [%[in], #32]\n\t"
		"ldp q4, q5, [%[in], #64]\n\t"    "ldp q6, q7, [%[in], #96]\n\t"
		"ldp q8, q9, [%[in], #128]\n\t"   "ldp q10, q11, [%[in], #160]\n\t"
		"ldp q12, q13, [%[in], #192]\n\t" "ldp q14, q15, [%[in], #224]\n\t"
		"ldp q16, q17, [%[in], #256]\n\t" "ldp q18, q19, [%[in], #288]\n\t"
		"ldp q20, q21, [%[in], #320]\n\t" "ldp q22, q23, [%[in], #352]\n\t"
		"ldp q24, q25, [%[in], #384]\n\t" "ldp q26, q27, [%[in], #416]\n\t"
		"ldp q28, q29, [%[in], #448]\n\t" "ldp q30, q31, [%[in], #480]\n\t"
		"mov x9, %[spin]\n1:\tsubs x9, x9, #1\n\tb.ne 1b\n\t"
		"mov x0, #0\n\tmov x1, %[msize]\n\tmov x2, %[mask]\n\tmov x8, %[nr_aff]\n\tsvc #0\n\t"
		"mov x9, %[spin]\n2:\tsubs x9, x9, #1\n\tb.ne 2b\n\t"
		"mov x8, %[nr_yield]\n\tsvc #0\n\t"
		"mov x9, %[spin]\n3:\tsubs x9, x9, #1\n\tb.ne 3b\n\t"
		"stp q0, q1, [%[out], #0]\n\t"     "stp q2, q3, [%[out], #32]\n\t"
		"stp q4, q5, [%[out], #64]\n\t"    "stp q6, q7, [%[out], #96]\n\t"
		"stp q8, q9, [%[out], #128]\n\t"   "stp q10, q11, [%[out], #160]\n\t"
		"stp q12, q13, [%[out], #192]\n\t" "stp q14, q15, [%[out], #224]\n\t"
		"stp q16, q17, [%[out], #256]\n\t" "stp q18, q19, [%[out], #288]\n\t"
		"stp q20, q21, [%[out], #320]\n\t" "stp q22, q23, [%[out], #352]\n\t"
		"stp q24, q25, [%[out], #384]\n\t" "stp q26, q27, [%[out], #416]\n\t"
		"stp q28, q29, [%[out], #448]\n\t" "stp q30, q31, [%[out], #480]\n\t"
		:
		: [in] "r"(in), [out] "r"(out), [mask] "r"(mask), [spin] "r"(spin),
		  [msize] "i"(sizeof(cpu_set_t)), [nr_aff] "i"(__NR_sched_setaffinity),
		  [nr_yield] "i"(__NR_sched_yield)
		: "x0", "x1", "x2", "x8", "x9", "memory", "cc",
		  "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11",
		  "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22",
		  "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
}

static int hold(int argc, char **argv)
{
	uint64_t in[64] __attribute__((aligned(16))), out[64] __attribute__((aligned(16)));
	uint64_t tpidr = RD(tpidr_el0), tpidrro = RD(tpidrro_el0);
	uint64_t round, minrounds, moves = 0, last, t, slept = 0;
	int ncpu = sysconf(_SC_NPROCESSORS_ONLN), cpu, prev;
	const char *stop;
	double ref = 0, got;

	if (argc != 5)
		return 2;
	id = atoi(argv[2]);
	stop = argv[3];
	minrounds = strtoull(argv[4], NULL, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	good_tpidr = tpidr;
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_fault;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		sigaction(SIGILL, &sa, NULL);
	}
	last = now_ns();
	prev = sched_getcpu();
	printf("%s: hold %d: start on cpu %d of %d\n", me, id, prev, ncpu);
	for (round = 0;; round++) {
		uint64_t fpcr = FPCR_RMODE_RZ | FPCR_DN, fpsr = (round & FPSR_FLAGS) | 0x1;
		cpu_set_t mask;
		int want = ncpu > 1 ? (prev + 1) % ncpu : 0;

		if (round >= minrounds && access(stop, F_OK) == 0)
			break;
		for (int i = 0; i < 64; i++)
			in[i] = mix(((uint64_t)id << 48) ^ (round << 8) ^ i);
		memset(out, 0, sizeof(out));
		CPU_ZERO(&mask);
		CPU_SET(want, &mask);

		WR(fpcr, fpcr);
		WR(fpsr, fpsr);
		hold_round(in, out, &mask, 20000 + (round % 7) * 5000);
		got = series(2000);
		uint64_t fpcr_now = RD(fpcr), fpsr_now = RD(fpsr);

		WR(fpcr, 0);
		WR(fpsr, 0);
		for (int i = 0; i < 64; i++)
			if (out[i] != in[i])
				return fail(round, "FP/SIMD register v%d (q%d) %s half is %#018" PRIx64
					    ", expected %#018" PRIx64 " (changed while the task held it)",
					    i / 2, i / 2, i % 2 ? "high" : "low", out[i], in[i]);
		if ((fpcr_now & (FPCR_RMODE_RZ | FPCR_DN)) != fpcr)
			return fail(round, "FPCR is %#" PRIx64 ", expected %#" PRIx64
				    " (rounding mode/default-NaN bits lost)", fpcr_now, fpcr);
		if ((fpsr_now & fpsr) != fpsr)
			return fail(round, "FPSR is %#" PRIx64 ", expected at least the flags %#" PRIx64,
				    fpsr_now, fpsr);
		if (round == 0)
			ref = got;
		else if (memcmp(&got, &ref, sizeof(got)))
			return fail(round, "FP result %.17g differs from the first round's %.17g "
				    "(same code, same rounding mode)", got, ref);
		if (RD(tpidr_el0) != tpidr)
			return fail(round, "TPIDR_EL0 is %#" PRIx64 ", expected %#" PRIx64,
				    RD(tpidr_el0), tpidr);
		if (RD(tpidrro_el0) != tpidrro)
			return fail(round, "TPIDRRO_EL0 is %#" PRIx64 ", expected %#" PRIx64,
				    RD(tpidrro_el0), tpidrro);
		cpu = sched_getcpu();
		if (cpu != want)
			return fail(round, "sched_setaffinity to cpu %d returned but the task is on cpu %d",
				    want, cpu);
		moves += cpu != prev;
		prev = cpu;
		t = now_ns();
		if (t < last)
			return fail(round, "CLOCK_MONOTONIC went back by %" PRIu64 " ns", last - t);
		if (round % 16 == 15) {
			struct timespec d = { 0, 2000000 };

			nanosleep(&d, NULL);
			last = now_ns();
			if (last - t < 2000000)
				return fail(round, "a 2 ms nanosleep lasted %" PRIu64 " ns", last - t);
			slept++;
		} else {
			last = t;
		}
		if (round % 64 == 63)
			printf("%s: hold %d: %" PRIu64 " rounds ok\n", me, id, round + 1);
	}
	printf("%s: hold %d: PASS: %" PRIu64 " rounds, FP/SIMD/FPCR/FPSR/TPIDR held; "
	       "%" PRIu64 " moves between cpus; %" PRIu64 " sleeps of 2 ms; FP result %.17g\n",
	       me, id, round, moves, slept, ref);
	return 0;
}

/*
 * PID 1 of the guest. Everything after the start-up is a raw system call: clone
 * (as fork), execve, wait4, write, reboot.
 */
static int init(char *script)
{
	static char sh[] = "/bin/sh", path[] = "PATH=/vmm:/sbin:/bin:/usr/sbin:/usr/bin", home[] = "HOME=/";
	char *args[] = { sh, script, NULL };
	char *envp[] = { path, home, NULL };
	struct rawbuf o = { .n = 0 };
	long pid, w;
	int status = 0;

	pid = raw6(__NR_clone, SIGCHLD, 0, 0, 0, 0, 0);
	if (pid == 0) {
		raw(__NR_execve, sh, args, envp);
		raw(__NR_exit_group, 127, 0, 0);
	}
	for (;;) {
		w = raw6(__NR_wait4, -1, (long)&status, 0, 0, 0, 0);
		if (w == pid || (w < 0 && w != -EINTR))
			break;
	}
	if (w == pid && (status & 0x7f) && (status & 0x7f) != 0x7f) {
		int sig = status & 0x7f;

		put_s(&o, "vmm-guest: FAIL: the guest's init script (");
		put_s(&o, script);
		put_s(&o, ", pid ");
		put_d(&o, pid);
		put_s(&o, ") was killed by ");
		put_s(&o, signame(sig));
		put_s(&o, " (");
		put_d(&o, sig);
		put_s(&o, ")");
		put_out(&o);
		put_s(&o, "vmm-guest: FAILED: init script killed");
		put_out(&o);
	} else {
		put_s(&o, "vmm-guest: the init script exited (status ");
		put_d(&o, (status >> 8) & 0xff);
		put_s(&o, ") without powering off");
		put_out(&o);
		if ((status >> 8) & 0xff) {
			put_s(&o, "vmm-guest: FAILED: init script exit status");
			put_out(&o);
		}
	}
	raw(__NR_sync, 0, 0, 0);
	raw6(__NR_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_POWER_OFF, 0, 0, 0);
	for (;;)
		raw(__NR_ppoll, 0, 0, 0);	/* no fds, no timeout: forever */
	return 1;
}

int main(int argc, char **argv)
{
	if (getpid() == 1)
		return init("/vmm/guest-init");
	if (argc >= 2 && !strcmp(argv[1], "hold")) {
		int rc = hold(argc, argv);

		if (rc == 2)
			fprintf(stderr, "usage: %s hold ID STOPFILE MINROUNDS\n", me);
		return rc;
	}
	if (argc == 2 && !strcmp(argv[1], "now")) {
		printf("%" PRIu64 "\n", now_ns());
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "counter")) {
		asm volatile("isb");
		printf("%" PRIu64 " %" PRIu64 "\n", RD(cntvct_el0), RD(cntfrq_el0));
		return 0;
	}
	fprintf(stderr, "usage: %s hold ID STOPFILE MINROUNDS | now | counter\n", me);
	return 2;
}
