/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the vhe-rs selftests ask of the module: is it loaded and enabled, and its
 * counters (debugfs vhe_rs/stats), to tell which backend ran a VM.
 */
#ifndef SELFTEST_VHE_RS_H
#define SELFTEST_VHE_RS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define VHE_RS_STATS "/sys/kernel/debug/vhe_rs/stats"
#define VHE_RS_TAINT_WARN	(1UL << 9)	/* 'W' in /proc/sys/kernel/tainted: a WARN */

/* /proc/sys/kernel/tainted, or 0 if it cannot be read. */
static inline unsigned long vhe_rs_tainted(void)
{
	unsigned long t = 0;
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");

	if (f) {
		if (fscanf(f, "%lu", &t) != 1)
			t = 0;
		fclose(f);
	}
	return t;
}

/* Whether the kernel warned (taint W) since @before, a vhe_rs_tainted() value. */
static inline bool vhe_rs_warned_since(unsigned long before)
{
	return vhe_rs_tainted() & ~before & VHE_RS_TAINT_WARN;
}

static inline bool vhe_rs_loaded(void)
{
	return access("/sys/module/vhe_rs", F_OK) == 0;
}

/* New VMs go to the Rust backend: the module is loaded with enable=Y. */
static inline bool vhe_rs_enabled(void)
{
	FILE *f = fopen("/sys/module/vhe_rs/parameters/enable", "r");
	int c = f ? fgetc(f) : 'N';

	if (f)
		fclose(f);
	return c == 'Y';
}

/*
 * Write the module's enable parameter: VMs created from now on go to Rust (Y) or
 * C (N). Returns false without the module.
 */
static inline bool vhe_rs_set_enable(bool on)
{
	FILE *f = fopen("/sys/module/vhe_rs/parameters/enable", "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs(on ? "Y\n" : "N\n", f) >= 0;
	return !fclose(f) && ok;
}

/* Counter @name of debugfs vhe_rs/stats, or -1 without the module. */
static inline long vhe_rs_stat(const char *name)
{
	char key[64];
	long val, ret = -1;
	FILE *f = fopen(VHE_RS_STATS, "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", key, &val) == 2) {
		if (!strcmp(key, name)) {
			ret = val;
			break;
		}
	}
	fclose(f);
	return ret;
}

/*
 * The sum of the bug_* counters of debugfs vhe_rs/stats (what the module found
 * wrong in KVM or in itself; those of the run path and of vcpu_load/vcpu_put are
 * counted only), the
 * first of them above 0 in @first (at most 64 bytes), or -1 without the module.
 */
static inline long vhe_rs_bug_stats(char *first)
{
	char key[64];
	long val, sum = 0;
	FILE *f = fopen(VHE_RS_STATS, "r");

	if (!f)
		return -1;
	if (first)
		first[0] = 0;
	while (fscanf(f, "%63s %ld", key, &val) == 2) {
		if (strncmp(key, "bug_", 4) || !val)
			continue;
		if (first && !sum)
			strcpy(first, key);
		sum += val;
	}
	fclose(f);
	return sum;
}

/* Copies debugfs vhe_rs/stats to @out, each line prefixed with @prefix (a diagnosis). */
static inline void vhe_rs_dump_stats(FILE *out, const char *prefix)
{
	char line[128];
	FILE *f = fopen(VHE_RS_STATS, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fprintf(out, "%s%s", prefix, line);
	fclose(f);
}

/* Counts between two points of a test. */
struct vhe_rs_snap {
	long vm_rust, load_fp, put_fp;
};

static inline struct vhe_rs_snap vhe_rs_snap(void)
{
	return (struct vhe_rs_snap){
		.vm_rust = vhe_rs_stat("vm_rust"),
		.load_fp = vhe_rs_stat("load_fp"),
		.put_fp = vhe_rs_stat("put_fp"),
	};
}

/*
 * Which backend ran the VM(s) created between @a and @b, checked against what it
 * must be: Rust if the module was loaded and enabled, C otherwise. Returns a name
 * to print.
 */
/*
 * Host state it assumes: vhe_rs/stats counts every VM of the machine, so
 * "vm_rust grew" holds beside other VMs (they only add to it); "it did not
 * grow" in a C pass assumes no other process runs a VM on Rust meanwhile, and
 * both assume nobody loads, unloads or flips the module during the test.
 */
static inline const char *vhe_rs_check_backend(struct vhe_rs_snap a, struct vhe_rs_snap b)
{
	bool rust = a.vm_rust >= 0 && b.vm_rust > a.vm_rust;

	if (vhe_rs_loaded() && vhe_rs_enabled()) {
		TEST_ASSERT(rust, "vhe_rs is loaded and enabled but the VM did not run on it "
			    "(vm_rust %ld -> %ld)", a.vm_rust, b.vm_rust);
		TEST_ASSERT(b.load_fp > a.load_fp && b.put_fp > a.put_fp,
			    "VM on Rust but its FP steps were not (load_fp %ld -> %ld, put_fp %ld -> %ld)",
			    a.load_fp, b.load_fp, a.put_fp, b.put_fp);
		return "Rust (vhe_rs)";
	}
	TEST_ASSERT(!rust, "vhe_rs not loaded or disabled, yet a VM ran on it");
	return "C (built-in)";
}

#ifdef _GNU_SOURCE	/* CPU_SET, sched_setaffinity */
/*
 * The vCPU threads of the FP/SVE tests: pin the calling thread to CPU
 * @n % @ncpus (they move at every exit to userspace).
 */
static inline void vhe_rs_migrate(uint64_t n, int ncpus)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(n % ncpus, &set);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(set), &set), "sched_setaffinity");
}
#endif

/* A host thread's user-visible registers that vcpu_load/vcpu_put switch. */
struct vhe_rs_user_regs {
	uint64_t tpidr, tpidrro;
};

/*
 * KVM_RUN on vCPU @fd issued from assembly, with the calling thread's TPIDR_EL0
 * and TPIDRRO_EL0 read right before and right after the svc, in @before and
 * @after. If TPIDR_EL0 came back other than @own_tp (the thread's, read when it
 * started), @own_tp is put back before any C runs, since C may use TLS (errno,
 * malloc, stdio): the caller can still report it. Returns what the ioctl
 * returns (-errno on failure: errno is not touched).
 */
static inline long vhe_rs_kvm_run(int fd, uint64_t own_tp, struct vhe_rs_user_regs *before,
				  struct vhe_rs_user_regs *after)
{
	register long x0 asm("x0") = fd;
	register long x1 asm("x1") = KVM_RUN;
	register long x2 asm("x2") = 0;
	register long x8 asm("x8") = __NR_ioctl;
	uint64_t t0, r0, t1, r1;

	asm volatile("mrs %[t0], tpidr_el0\n"
		     "mrs %[r0], tpidrro_el0\n"
		     "svc #0\n"
		     "mrs %[t1], tpidr_el0\n"
		     "mrs %[r1], tpidrro_el0\n"
		     "cmp %[t1], %[own]\n"
		     "b.eq 1f\n"
		     "msr tpidr_el0, %[own]\n"
		     "1:\n"
		     : "+r"(x0), [t0] "=&r"(t0), [r0] "=&r"(r0), [t1] "=&r"(t1), [r1] "=&r"(r1)
		     : "r"(x1), "r"(x2), "r"(x8), [own] "r"(own_tp) : "cc", "memory");
	before->tpidr = t0;
	before->tpidrro = r0;
	after->tpidr = t1;
	after->tpidrro = r1;
	return x0;
}

static inline void vhe_rs_own_user_regs(struct vhe_rs_user_regs *r)
{
	asm volatile("mrs %0, tpidr_el0\n mrs %1, tpidrro_el0" : "=r"(r->tpidr), "=r"(r->tpidrro));
}

/*
 * After KVM_RUN returned: true if the guest exits to @mmio_gpa and runs on,
 * false once it is done; a guest assert or any other exit fails the test.
 */
static inline bool vhe_rs_guest_runs_on(struct kvm_vcpu *vcpu, uint64_t mmio_gpa)
{
	struct ucall uc;

	if (vcpu->run->exit_reason == KVM_EXIT_MMIO && vcpu->run->mmio.phys_addr == mmio_gpa)
		return true;
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_DONE:
		return false;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
	default:
		TEST_FAIL("vCPU %u: unexpected exit %s", vcpu->id,
			  exit_reason_str(vcpu->run->exit_reason));
	}
	return false;
}

/* KVM's counter @name of @vcpu (its binary stats): the test fails without it. */
static inline uint64_t vhe_rs_vcpu_stat(struct kvm_vcpu *vcpu, const char *name)
{
	struct kvm_stats_header h;
	struct kvm_stats_desc *descs, *d;
	int fd = vcpu_get_stats_fd(vcpu);
	uint64_t v = 0;
	bool found = false;

	read_stats_header(fd, &h);
	descs = read_stats_descriptors(fd, &h);
	for (uint32_t i = 0; i < h.num_desc && !found; i++) {
		d = get_stats_descriptor(descs, i, &h);
		if (!strcmp(d->name, name)) {
			read_stat_data(fd, &h, d, &v, 1);
			found = true;
		}
	}
	free(descs);
	close(fd);
	TEST_ASSERT(found, "no vCPU stat %s", name);
	return v;
}

/*
 * For VMs without an in-kernel irqchip: KVM reports the guest's timer output in
 * run->s.regs.device_irq_level and userspace is the interrupt controller. Wire
 * the virtual timer to @vcpu's IRQ line, as a VMM would: a vCPU in WFI with its
 * timer fired (level already reported) is only runnable with its line up.
 * @line: the level last set (false at first).
 */
static inline void vhe_rs_sync_vtimer_line(struct kvm_vm *vm, struct kvm_vcpu *vcpu, bool *line)
{
	bool level = vcpu->run->s.regs.device_irq_level & KVM_ARM_DEV_EL1_VTIMER;
	struct kvm_irq_level irq = {
		.irq = KVM_ARM_IRQ_TYPE_CPU << KVM_ARM_IRQ_TYPE_SHIFT |
		       vcpu->id << KVM_ARM_IRQ_VCPU_SHIFT | KVM_ARM_IRQ_CPU_IRQ,
		.level = level,
	};

	if (level == *line)
		return;
	vm_ioctl(vm, KVM_IRQ_LINE, &irq);
	*line = level;
}

#endif
