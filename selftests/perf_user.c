// SPDX-License-Identifier: GPL-2.0
/*
 * perf_user: another process on the machine that holds a perf counter readable
 * from user space, as a profiler or a JIT would. Not a test by itself (tools/
 * mkplan.py leaves it out of the passes): the plan's "beside-perf-user" step
 * runs the project's state tests beside it.
 *
 * It opens a CPU_CYCLES event of its own task with user access (config1 bit 1,
 * "rdpmc"; the arm64 PMU driver also needs /proc/sys/kernel/perf_user_access=1),
 * mmaps the event's first page, reads the counter from EL0 (PMCCNTR_EL0 or
 * PMXEVCNTR_EL0, as the page's index says) in a loop and moves itself to the
 * next CPU every MIGRATE_EVERY reads. While its event is scheduled in, the
 * driver sets PMUSERENR_EL0.{ER,CR} on the CPU it runs on
 * (armv8pmu_start() -> armv8pmu_enable_user_access()), and leaves the CPU so
 * when it goes: a task without PMU events of its own scheduled there next sees
 * ER|CR (0xc), or 0 where the driver last ran for a task without user events.
 *
 *   perf_user [-t SECONDS]     run SECONDS (default: until SIGTERM/SIGINT)
 *
 * Prints "perf_user: ready" once the counter was read from EL0, and at the end
 * how many reads and migrations it made. Exits 1 if it cannot read its counter
 * from EL0 (no PMU, the sysctl off, the page says no user read).
 */
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MIGRATE_EVERY	2000
#define RDPMC_BIT	(1ULL << 1)	/* drivers/perf/arm_pmuv3.c: rdpmc, config1:1 */
#define LONG_BIT	(1ULL << 0)	/* long (64-bit) counter, config1:0 */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static uint64_t read_evcntr(uint32_t idx)
{
	uint64_t v;

	if (idx == 31) {	/* ARMV8_PMU_CYCLE_IDX */
		asm volatile("mrs %0, pmccntr_el0" : "=r"(v));
		return v;
	}
	asm volatile("msr pmselr_el0, %1\n isb\n mrs %0, pmxevcntr_el0" : "=r"(v) : "r"((uint64_t)idx));
	return v;
}

/* The seqlock read of include/uapi/linux/perf_event.h; false if no user read. */
static bool read_counter(volatile struct perf_event_mmap_page *pc, uint64_t *count)
{
	uint32_t seq, idx, width;
	uint64_t v;
	int64_t off;

	do {
		seq = pc->lock;
		asm volatile("" ::: "memory");
		idx = pc->index;
		off = pc->offset;
		if (!pc->cap_user_rdpmc || !idx)
			return false;
		width = pc->pmc_width;
		v = read_evcntr(idx - 1);
		if (width < 64) {
			v <<= 64 - width;
			v = (int64_t)v >> (64 - width);
		}
		asm volatile("" ::: "memory");
	} while (pc->lock != seq);
	*count = off + v;
	return true;
}

int main(int argc, char *argv[])
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_HARDWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_HW_CPU_CYCLES,
		.config1 = RDPMC_BIT | LONG_BIT,
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN), cpu = 0, seconds = -1;
	uint64_t reads = 0, misses = 0, migrations = 0, c = 0;
	struct perf_event_mmap_page *pc;
	bool ready = false;
	time_t end;
	int fd, opt;

	while ((opt = getopt(argc, argv, "t:")) != -1)
		if (opt == 't')
			seconds = strtol(optarg, NULL, 0);
	end = seconds >= 0 ? time(NULL) + seconds : 0;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	fd = syscall(__NR_perf_event_open, &attr, 0, -1, -1, 0);
	if (fd < 0) {
		perror("perf_user: perf_event_open(CPU_CYCLES, rdpmc)");
		return 1;
	}
	pc = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ, MAP_SHARED, fd, 0);
	if (pc == MAP_FAILED) {
		perror("perf_user: mmap");
		return 1;
	}
	while (!stop && (!end || time(NULL) < end)) {
		for (int i = 0; i < MIGRATE_EVERY; i++) {
			if (read_counter(pc, &c))
				reads++;
			else
				misses++;
		}
		if (!ready && reads) {
			printf("perf_user: ready (counter %#lx, pmc_width %u, %ld CPUs)\n", c,
			       pc->pmc_width, ncpus);
			fflush(stdout);
			ready = true;
		}
		if (!ready && misses > 100 * MIGRATE_EVERY) {
			fprintf(stderr, "perf_user: the counter cannot be read from EL0 (cap_user_rdpmc "
				"%u, index %u): is /proc/sys/kernel/perf_user_access 1?\n",
				pc->cap_user_rdpmc, pc->index);
			return 1;
		}
		if (ncpus > 1) {
			cpu_set_t set;

			cpu = (cpu + 1) % ncpus;
			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			if (!sched_setaffinity(0, sizeof(set), &set))
				migrations++;
		}
	}
	printf("perf_user: %lu counter reads from EL0 (%lu not scheduled in), %lu migrations\n",
	       reads, misses, migrations);
	return reads ? 0 : 1;
}
