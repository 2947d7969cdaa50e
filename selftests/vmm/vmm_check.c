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
 *   vmm-check now       CLOCK_MONOTONIC in ns (under -icount shift=0: instructions)
 *   vmm-check counter   CNTVCT_EL0 and CNTFRQ_EL0 (a guest's counter starts at 0
 *			 when KVM creates the VM)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
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

int main(int argc, char **argv)
{
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
