// SPDX-License-Identifier: GPL-2.0
/*
 * sysreg_state_test: the guest's EL1/EL0 system registers must survive whatever
 * the host does, and the host's must too.
 *
 * KVM/arm64 on a VHE host keeps the guest's EL1/EL0 registers on the CPU from
 * vcpu_load to vcpu_put, not only while the guest runs: they are saved and the
 * host's user registers (TPIDR_EL0, TPIDRRO_EL0) restored only at vcpu_put (end
 * of KVM_RUN, preemption, WFI blocking), and KVM reads and writes the live
 * registers in between (SYSREGS_ON_CPU), e.g. to inject an exception. This test
 * checks all of that for the registers of vhe_rs_sysregs.h:
 *
 *  - each vCPU's guest writes values of its own into them (its owner in each
 *    value) and reads them all back after every exit: hypercalls KVM answers
 *    in the kernel (hvc SMCCC_VERSION), a sysreg read KVM emulates (TID3),
 *    WFI blocking until the guest's virtual timer fires (no in-kernel irqchip:
 *    the host raises the vCPU's IRQ line as the timer says), MMIO writes to an
 *    unmapped GPA (exits to userspace), and an UNDEF that KVM injects (a PMU
 *    register read with no vPMU: KVM writes ESR/ELR/SPSR_EL1 on the CPU); the
 *    guest's handler checks ESR_EL1.EC == 0 (unknown), ELR_EL1 == the faulting
 *    instruction and SPSR_EL1, then the guest puts back its own ESR/ELR/SPSR;
 *    SP (SP_EL1) is compared before and after every exit;
 *  - at every exit to userspace the host reads each register with
 *    KVM_GET_ONE_REG (what vcpu_put saved) and compares it with the guest's; at
 *    every third one it writes new values into some of them with KVM_SET_ONE_REG
 *    and tells the guest, which checks it sees them (what vcpu_load restored);
 *  - each vCPU thread issues KVM_RUN itself (svc) and compares its TPIDR_EL0 and
 *    TPIDRRO_EL0 before and after, before it touches anything using TLS; a host
 *    thread once came back from KVM_RUN with the guest's TPIDR_EL0
 *    (0x1de7ec7edbadc0de is KVM's reset value of an unset guest register);
 *  - and PMUSERENR_EL0, which vcpu_load/put also switch, if EL0 can read it: not
 *    compared with an earlier value of its own, since it is not the thread's (see
 *    check_pmuserenr()), but checked to be what the host's PMU driver would have
 *    left, and with a user-readable counter of the thread's own (when
 *    perf_user_access allows it) to be exactly the driver's ER|CR;
 *  - the vCPU threads migrate between CPUs at exits to userspace, and a
 *    "polluter" thread per CPU preempts them (sched_yield) and checks its own
 *    TPIDR_EL0/TPIDRRO_EL0 every time;
 *  - phase 2: two VMs with one vCPU each, both threads on the same CPU, each
 *    with its own values: neither may ever see the other's.
 * Before the rounds each vCPU checks that the UNDEF and the TID3 read really go
 * through KVM (the vCPU's "exits" counter moves by one per instruction), so the
 * test cannot pass because the CPU stopped trapping.
 *
 *   sysreg_state_test [-i ROUNDS] [-v VCPUS] [-w WFI_EVERY] [-P]
 *
 * -P: the vCPU threads open no counter of their own (PMUSERENR_EL0 is then only
 * checked to be a value of the host's driver, 0 or ER|CR).
 */
#define _GNU_SOURCE
#include <linux/arm-smccc.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"
#include "vhe_rs_sysregs.h"

#define MAX_VCPUS	4
#define MMIO_GPA	(1ULL << 36)	/* not in any memslot: exits to userspace */
#define HVC_PER_ROUND	4
#define PROBE_N		16	/* trapping instructions per probe */
#define SET_EVERY	3	/* host writes registers at every 3rd exit to userspace */
#define KVM_UNSET_REG	0x1de7ec7edbadc0deULL
#define ESR_IL		BIT(25)		/* EC 0 (unknown), IL: a 32-bit instruction, ISS 0 */

/* What the guest's MMIO writes say. */
enum { EXIT_ROUND, EXIT_PROBE0, EXIT_PROBE1, EXIT_PROBE2 };

/* One per vCPU, in guest memory: the host reads and writes it at exits to userspace. */
struct gstate {
	uint64_t val[NR_SYSREGS];	/* host: values for the guest to write */
	uint64_t wrote[NR_SYSREGS];	/* guest: what it wrote */
	uint64_t want[NR_SYSREGS];	/* what it must read back; the host updates it */
	uint64_t sp;			/* guest: SP at its last exit to userspace */
	uint64_t fault_pc;		/* guest: the instruction that must UNDEF */
	uint64_t daif;			/* guest: its DAIF there */
	uint64_t undefs;		/* guest: UNDEFs its handler took */
	uint64_t round;
};

static struct gstate gstate[MAX_VCPUS];

static struct gstate *guest_self(void)
{
	/* Not TPIDR_EL1 (the test writes it): MPIDR_EL1.Aff0 is the vCPU id. */
	return &gstate[read_sysreg(mpidr_el1) & 0xff];
}

static void guest_check(struct gstate *s, const char *after)
{
	uint64_t got[NR_SYSREGS];

	guest_read_sysregs(got);
	for (int i = 0; i < NR_SYSREGS; i++)
		__GUEST_ASSERT(got[i] == READ_ONCE(s->want[i]),
			       "guest %s after %s (round %lu): %#lx, expected %#lx",
			       sysreg_name[i], after, s->round, got[i], READ_ONCE(s->want[i]));
}

/* hvc SMCCC_VERSION, answered in the kernel; SP compared around it. */
static void guest_hvc(void)
{
	uint64_t sp0, sp1;

	asm volatile("mov %[a], sp\n"
		     "mov x0, %[fid]\n"
		     "hvc #0\n"
		     "mov %[b], sp\n"
		     : [a] "=&r"(sp0), [b] "=&r"(sp1) : [fid] "i"(ARM_SMCCC_VERSION_FUNC_ID)
		     : "x0", "x1", "x2", "x3", "memory");
	__GUEST_ASSERT(sp0 == sp1, "guest SP_EL1 after hvc: %#lx, expected %#lx", sp1, sp0);
}

/* A write to an unmapped GPA: exit to userspace, which sees @code. */
static void guest_mmio(struct gstate *s, uint64_t code)
{
	uint64_t sp0, sp1;

	asm volatile("mov %[a], sp\n"
		     "str %[a], [%[slot]]\n"
		     "str %[c], [%[mmio]]\n"
		     "mov %[b], sp\n"
		     : [a] "=&r"(sp0), [b] "=&r"(sp1)
		     : [slot] "r"(&s->sp), [c] "r"(code), [mmio] "r"(MMIO_GPA) : "memory");
	__GUEST_ASSERT(sp0 == sp1, "guest SP_EL1 after MMIO: %#lx, expected %#lx", sp1, sp0);
}

/* An ID register read: trapped by HCR_EL2.TID3, emulated by KVM. */
static void guest_idreg(void)
{
	static uint64_t first;
	uint64_t v = read_sysreg_s(SYS_ID_AA64MMFR0_EL1);

	if (!first)
		first = v;
	__GUEST_ASSERT(v == first, "ID_AA64MMFR0_EL1 %#lx, was %#lx", v, first);
}

/*
 * A PMU register read with no vPMU: MDCR_EL2.TPM traps it to KVM, which
 * injects an UNDEF, writing ESR/ELR/SPSR_EL1 while the vCPU is loaded.
 */
static void guest_undef(struct gstate *s)
{
	uint64_t before = READ_ONCE(s->undefs);

	s->daif = read_sysreg(daif);
	asm volatile("adr x9, 1f\n"
		     "str x9, [%[pc]]\n"
		     "1: mrs x9, pmselr_el0\n"
		     : : [pc] "r"(&s->fault_pc) : "x9", "memory");
	__GUEST_ASSERT(READ_ONCE(s->undefs) == before + 1,
		       "PMSELR_EL0 read at %#lx did not UNDEF (%lu handled, expected %lu)",
		       s->fault_pc, READ_ONCE(s->undefs), before + 1);
	/* Ours again, so that the checks after every exit still mean something. */
	write_sysreg_s(s->want[R_ESR_EL1], SYS_ESR_EL1);
	write_sysreg_s(s->want[R_ELR_EL1], SYS_ELR_EL1);
	write_sysreg_s(s->want[R_SPSR_EL1], SYS_SPSR_EL1);
	isb();
}

static void guest_undef_handler(struct ex_regs *regs)
{
	struct gstate *s = guest_self();
	uint64_t esr = read_sysreg(esr_el1), elr = read_sysreg(elr_el1);

	__GUEST_ASSERT(esr == ESR_IL,
		       "injected UNDEF: ESR_EL1 %#lx, expected EC 0 (unknown), IL, ISS 0", esr);
	__GUEST_ASSERT(elr == s->fault_pc && regs->pc == s->fault_pc,
		       "injected UNDEF: ELR_EL1 %#lx, the instruction is at %#lx", elr, s->fault_pc);
	__GUEST_ASSERT((regs->pstate & 0xf) == 5 && (regs->pstate & 0x3c0) == s->daif,
		       "injected UNDEF: SPSR_EL1 %#lx, expected EL1h and DAIF %#lx",
		       regs->pstate, s->daif);
	s->undefs++;
	regs->pc += 4;
}

/*
 * WFI until the virtual timer, armed @ticks ahead, fires: KVM blocks the vCPU
 * until then (the host raises the vCPU's IRQ line, see vhe_rs_sync_vtimer_line()).
 */
static void guest_wfi(uint64_t ticks)
{
	write_sysreg(read_sysreg(cntvct_el0) + ticks, cntv_cval_el0);
	write_sysreg(1, cntv_ctl_el0);	/* ENABLE, not masked; PSTATE.I is */
	isb();
	while (!(read_sysreg(cntv_ctl_el0) & 4))	/* ISTATUS */
		wfi();
	write_sysreg(0, cntv_ctl_el0);
	isb();
}

static void guest_code(uint64_t rounds, uint64_t wfi_every)
{
	struct gstate *s = guest_self();
	uint64_t ticks = read_sysreg(cntfrq_el0) / 2000;	/* 0.5 ms */

	guest_write_sysregs(s->val, s->wrote);
	guest_read_sysregs(s->want);
	guest_check(s, "writing them");

	/* The probes: the host counts this vCPU's exits in between. */
	guest_mmio(s, EXIT_PROBE0);
	for (int i = 0; i < PROBE_N; i++)
		guest_undef(s);
	guest_mmio(s, EXIT_PROBE1);
	for (int i = 0; i < PROBE_N; i++)
		guest_idreg();
	guest_mmio(s, EXIT_PROBE2);
	guest_check(s, "the probes");

	for (uint64_t r = 0; r < rounds; r++) {
		s->round = r;
		for (int i = 0; i < HVC_PER_ROUND; i++) {
			guest_hvc();
			guest_check(s, "hvc");
		}
		guest_idreg();
		guest_check(s, "an emulated ID register read");
		guest_undef(s);
		guest_check(s, "an injected UNDEF");
		if (wfi_every && r % wfi_every == 0) {
			guest_wfi(ticks);
			guest_check(s, "wfi");
		}
		guest_mmio(s, EXIT_ROUND);
		guest_check(s, "MMIO (the host may have written some)");
	}
	GUEST_DONE();
}

/* ---- host ---- */

struct vcpu_ctx {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct gstate *gs;		/* the guest's, through its HVA */
	int vm_nr, cpu;			/* cpu: pinned there, or -1 to migrate */
	bool irq_line;			/* the vCPU's IRQ line, as the host set it */
	uint64_t owner;
	/* counts */
	uint64_t runs, user_exits, intr, sets, probe_base, probe_exits[2];
	/* PMUSERENR_EL0 seen by the thread: its own user-readable counter, or -1 */
	int perf_fd;
	uint64_t pmu_er_cr, pmu_zero, pmu_sysctl_off;
};

static struct vcpu_ctx ctxs[MAX_VCPUS + 2];
static int nctxs, ncpus;
static bool pmuserenr_readable, own_counters = true;
static atomic_bool stop;
static atomic_ulong polluter_rounds;

/* Whose value is @v? For the messages. */
static const char *whose(uint64_t v, struct vcpu_ctx *self, char *buf, size_t len)
{
	if (v == KVM_UNSET_REG)
		return "KVM's reset value of an unset guest register";
	for (int c = 0; c < nctxs; c++) {
		struct vcpu_ctx *o = &ctxs[c];

		for (int i = 0; i < NR_SYSREGS && o->gs; i++) {
			if (o->gs->want[i] != v || !v || (sysreg_flags[i] & F_RO))
				continue;
			snprintf(buf, len, "the guest %s of VM %d vCPU %u (%s)", sysreg_name[i],
				 o->vm_nr, o->vcpu->id, o == self ? "this vCPU" : "another vCPU");
			return buf;
		}
	}
	return "nobody's";
}

static sigjmp_buf probe_jmp;

static void probe_sigill(int sig)
{
	siglongjmp(probe_jmp, 1);
}

/* PMUSERENR_EL0 is readable at EL0 unless EL2 traps it (MDCR_EL2.TPM). */
static bool el0_can_read_pmuserenr(void)
{
	struct sigaction sa = { .sa_handler = probe_sigill }, old;
	volatile bool ok = false;
	uint64_t v;

	sigaction(SIGILL, &sa, &old);
	if (!sigsetjmp(probe_jmp, 1)) {
		asm volatile("mrs %0, pmuserenr_el0" : "=r"(v));
		ok = true;
	}
	sigaction(SIGILL, &old, NULL);
	return ok;
}

struct user_regs {
	struct vhe_rs_user_regs r;
	uint64_t pmuserenr;
};

/*
 * PMUSERENR_EL0 as the host's tasks see it. It is a per-CPU register that
 * Linux does not switch per task: only the arm64 PMU driver writes it for the
 * host (drivers/perf/arm_pmuv3.c, update_pmuserenr()), 0 or ER|CR, when it
 * (re)starts the PMU on a CPU (armv8pmu_start(): ER|CR if the task context on
 * that CPU holds an event with user access and /proc/sys/kernel/perf_user_access
 * is 1, else 0; and 0 on every CPU when the sysctl is written 0). It does not
 * run for a task without PMU events of its own, nor when a CPU's last event
 * goes (armpmu_enable() starts nothing with no counter in use): such a task
 * sees whatever the driver last wrote on the CPU it is on, e.g. ER|CR left by
 * another process's user-readable counter there, or 0, and the value changes
 * when it migrates. KVM loads ARMV8_PMU_USERENR_MASK (EN|SW|CR|ER) at vcpu_load
 * for the guest and puts the host's back at vcpu_put, the value saved at load
 * as updated by kvm_set_pmuserenr() when the driver writes it in between
 * (arch/arm64/kvm/hyp/include/hyp/switch.h, __activate/__deactivate_traps_common,
 * arch/arm64/kvm/pmu.c). So what the switch must give a host task back is the
 * driver's value for that CPU, and what the test may assume of it:
 *  - always, whatever runs on the machine: a value the driver writes, 0 or
 *    ER|CR; never EN or SW (nor any other bit), which only the vCPU's value
 *    has: that is the guest's PMUSERENR_EL0 leaking to the host;
 *  - when the vCPU thread holds a user-readable counter of its own (opened in
 *    vcpu_thread() if perf_user_access is 1 and the driver allows it): exactly
 *    ER|CR, before and after every KVM_RUN, since the driver sets it whenever
 *    this task's context is scheduled in (perf's sched-in runs before KVM's
 *    preempt notifier loads the vCPU) and KVM must not lose it. The one
 *    exception is the sysctl written 0 meanwhile (root changing policy: the
 *    driver then writes 0 everywhere): 0 is accepted only if the sysctl reads
 *    0 when the test looks.
 * It is not compared with the thread's earlier value: another process's
 * counter may change it at any time (issue 13, item 6).
 */
#define PMUSERENR_EN	(1UL << 0)
#define PMUSERENR_SW	(1UL << 1)
#define PMUSERENR_CR	(1UL << 2)
#define PMUSERENR_ER	(1UL << 3)
#define PMUSERENR_HOST	(PMUSERENR_ER | PMUSERENR_CR)	/* the driver's "user access" value */
#define PERF_USER_ACCESS "/proc/sys/kernel/perf_user_access"

static int perf_user_access(void)
{
	FILE *f = fopen(PERF_USER_ACCESS, "r");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* A CPU_CYCLES counter of this thread's, readable from EL0 (rdpmc: config1 bit 1). */
static int open_own_user_counter(void)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_HARDWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_HW_CPU_CYCLES,
		.config1 = 1UL << 1 | 1UL << 0,	/* rdpmc, long */
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};

	if (!pmuserenr_readable || perf_user_access() != 1)
		return -1;
	return syscall(__NR_perf_event_open, &attr, 0, -1, -1, 0);
}

static uint64_t read_pmuserenr(void)
{
	uint64_t v = 0;

	if (pmuserenr_readable)
		asm volatile("mrs %0, pmuserenr_el0" : "=r"(v));
	return v;
}

static long run_vcpu(int fd, uint64_t own_tp, struct user_regs *before, struct user_regs *after)
{
	long ret;

	before->pmuserenr = read_pmuserenr();
	ret = vhe_rs_kvm_run(fd, own_tp, &before->r, &after->r);
	after->pmuserenr = read_pmuserenr();
	return ret;
}

/* What the host task may assume of its PMUSERENR_EL0: see above struct user_regs. */
static void check_pmuserenr(struct vcpu_ctx *c, uint64_t v, const char *when)
{
	if (!pmuserenr_readable)
		return;
	/* Whatever else runs: 0 or ER|CR, the only values the host's driver writes. */
	TEST_ASSERT(v == 0 || v == PMUSERENR_HOST,
		    "VM %d vCPU %u thread %s (KVM_RUN #%lu): PMUSERENR_EL0 %#lx: not a value the "
		    "host's PMU driver writes (0 or ER|CR %#lx)%s", c->vm_nr, c->vcpu->id, when,
		    c->runs, v, PMUSERENR_HOST,
		    v & (PMUSERENR_EN | PMUSERENR_SW) ? ": the vCPU's value (EN/SW) leaked to the host" : "");
	if (v == PMUSERENR_HOST)
		c->pmu_er_cr++;
	else
		c->pmu_zero++;
	/* With a user-readable counter of its own: the driver's ER|CR, restored by vcpu_put. */
	if (c->perf_fd < 0 || v == PMUSERENR_HOST)
		return;
	TEST_ASSERT(perf_user_access() == 0,
		    "VM %d vCPU %u thread %s (KVM_RUN #%lu): PMUSERENR_EL0 %#lx, expected ER|CR %#lx: "
		    "the thread holds a user-readable counter and %s is 1, the host's value was lost",
		    c->vm_nr, c->vcpu->id, when, c->runs, v, PMUSERENR_HOST, PERF_USER_ACCESS);
	c->pmu_sysctl_off++;
}

static void check_user_regs(struct vcpu_ctx *c, const struct user_regs *own,
			    const struct user_regs *got, const char *when)
{
	char buf[128];

	/*
	 * Host state: TPIDR_EL0 and TPIDRRO_EL0 are the thread's own (the kernel
	 * switches them per task), so they hold whatever else runs; PMUSERENR_EL0
	 * is not (check_pmuserenr()).
	 */
	if (got->r.tpidr != own->r.tpidr)
		TEST_FAIL("VM %d vCPU %u thread %s (KVM_RUN #%lu): TPIDR_EL0 %#lx, its own is %#lx: %s",
			  c->vm_nr, c->vcpu->id, when, c->runs, got->r.tpidr, own->r.tpidr,
			  whose(got->r.tpidr, c, buf, sizeof(buf)));
	if (got->r.tpidrro != own->r.tpidrro)
		TEST_FAIL("VM %d vCPU %u thread %s (KVM_RUN #%lu): TPIDRRO_EL0 %#lx, its own is %#lx: %s",
			  c->vm_nr, c->vcpu->id, when, c->runs, got->r.tpidrro, own->r.tpidrro,
			  whose(got->r.tpidrro, c, buf, sizeof(buf)));
	check_pmuserenr(c, got->pmuserenr, when);
}

/* At an exit to userspace: what vcpu_put saved must be the guest's values. */
static void host_check(struct vcpu_ctx *c)
{
	char buf[128];
	uint64_t v;

	for (int i = 0; i < NR_SYSREGS; i++) {
		vcpu_get_reg(c->vcpu, sysreg_id[i], &v);
		if (v != c->gs->want[i])
			TEST_FAIL("VM %d vCPU %u, exit to userspace %lu (round %lu): KVM_GET_ONE_REG "
				  "%s = %#lx, the guest's is %#lx: %s", c->vm_nr, c->vcpu->id,
				  c->user_exits, c->gs->round, sysreg_name[i], v, c->gs->want[i],
				  whose(v, c, buf, sizeof(buf)));
	}
	vcpu_get_reg(c->vcpu, ARM64_CORE_REG(sp_el1), &v);
	TEST_ASSERT(v == c->gs->sp, "VM %d vCPU %u: KVM_GET_ONE_REG SP_EL1 = %#lx, the guest's is %#lx",
		    c->vm_nr, c->vcpu->id, v, c->gs->sp);
}

/* New values for the F_SET registers: vcpu_load must give them to the guest. */
static void host_set(struct vcpu_ctx *c)
{
	for (int i = 0; i < NR_SYSREGS; i++) {
		uint64_t v;

		if (!(sysreg_flags[i] & F_SET))
			continue;
		v = sysreg_value(i, VAL_HOST, c->owner, ++c->sets);
		vcpu_set_reg(c->vcpu, sysreg_id[i], v);
		c->gs->want[i] = v;
	}
}

static void host_probe(struct vcpu_ctx *c, uint64_t code)
{
	static const char *const what[] = {
		"PMSELR_EL0 reads (UNDEF injected by KVM)", "ID_AA64MMFR0_EL1 reads (TID3)" };
	uint64_t exits = vhe_rs_vcpu_stat(c->vcpu, "exits");

	if (code != EXIT_PROBE0) {
		uint64_t n = exits - c->probe_base - 1;	/* less the MMIO exit */

		TEST_ASSERT(n >= PROBE_N, "VM %d vCPU %u: %d %s made %lu exits: they do not trap to KVM",
			    c->vm_nr, c->vcpu->id, PROBE_N, what[code - EXIT_PROBE1], n);
		c->probe_exits[code - EXIT_PROBE1] = n;
	}
	c->probe_base = exits;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu_ctx *c = arg;
	struct user_regs own, before, after;
	struct kvm_run *run = c->vcpu->run;
	struct ucall uc;
	uint64_t code;
	long ret;

	if (c->cpu >= 0)
		vhe_rs_migrate(c->cpu, ncpus);
	c->perf_fd = own_counters ? open_own_user_counter() : -1;
	vhe_rs_own_user_regs(&own.r);
	check_pmuserenr(c, read_pmuserenr(), "at its start");

	for (;;) {
		ret = run_vcpu(c->vcpu->fd, own.r.tpidr, &before, &after);
		c->runs++;
		check_user_regs(c, &own, &before, "before KVM_RUN");
		check_user_regs(c, &own, &after, "after KVM_RUN");
		/* No in-kernel irqchip; the guest keeps IRQs masked: the line only ends WFI. */
		vhe_rs_sync_vtimer_line(c->vm, c->vcpu, &c->irq_line);
		if (ret == -EINTR) {	/* the timer's level changed, no irqchip: run on */
			TEST_ASSERT(run->exit_reason == KVM_EXIT_INTR, "EINTR, exit %s",
				    exit_reason_str(run->exit_reason));
			c->intr++;
			continue;
		}
		TEST_ASSERT(ret == 0, "KVM_RUN: %ld", ret);
		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == MMIO_GPA) {
			c->user_exits++;
			memcpy(&code, run->mmio.data, sizeof(code));
			host_check(c);
			if (code != EXIT_ROUND)
				host_probe(c, code);
			else if (c->user_exits % SET_EVERY == 0)
				host_set(c);
			if (c->cpu < 0)
				vhe_rs_migrate(c->user_exits + c->vcpu->id, ncpus);
			continue;
		}
		switch (get_ucall(c->vcpu, &uc)) {
		case UCALL_DONE:
			if (c->perf_fd >= 0)
				close(c->perf_fd);
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		case UCALL_UNHANDLED:
			assert_on_unhandled_exception(c->vcpu);
		default:
			TEST_FAIL("VM %d vCPU %u: unexpected exit %s", c->vm_nr, c->vcpu->id,
				  exit_reason_str(run->exit_reason));
		}
	}
}

/* Runs and yields on its CPU so that it preempts the vCPU threads. */
static void *polluter(void *arg)
{
	long cpu = (long)arg;
	uint64_t tp, tpro, t, r;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	asm volatile("mrs %0, tpidr_el0\n mrs %1, tpidrro_el0" : "=r"(tp), "=r"(tpro));
	while (!atomic_load(&stop)) {
		sched_yield();
		asm volatile("mrs %0, tpidr_el0\n mrs %1, tpidrro_el0" : "=r"(t), "=r"(r));
		/* Its own, switched per task: holds whatever else runs. */
		if (t != tp)
			asm volatile("msr tpidr_el0, %0" : : "r"(tp));
		TEST_ASSERT(t == tp && r == tpro,
			    "polluter on CPU %ld: TPIDR_EL0 %#lx TPIDRRO_EL0 %#lx, its own %#lx %#lx",
			    cpu, t, r, tp, tpro);
		atomic_fetch_add(&polluter_rounds, 1);
	}
	return NULL;
}

static void setup_vcpu(struct vcpu_ctx *c, struct kvm_vm *vm, struct kvm_vcpu *vcpu, int vm_nr,
		       int cpu, uint64_t rounds, uint64_t wfi_every)
{
	struct gstate *gs = addr_gva2hva(vm, (vm_vaddr_t)&gstate[vcpu->id]);

	*c = (struct vcpu_ctx){ .vm = vm, .vcpu = vcpu, .gs = gs, .vm_nr = vm_nr, .cpu = cpu,
				.owner = vm_nr * 16 + vcpu->id + 1 };
	vcpu_init_descriptor_tables(vcpu);
	vcpu_args_set(vcpu, 2, rounds, wfi_every);
	memset(gs, 0, sizeof(*gs));
	for (int i = 0; i < NR_SYSREGS; i++)
		gs->val[i] = sysreg_value(i, VAL_GUEST, c->owner, 0);
}

static struct kvm_vm *create_vm(int nvcpus, struct kvm_vcpu **vcpus)
{
	struct kvm_vm *vm = vm_create_with_vcpus(nvcpus, guest_code, vcpus);

	virt_map(vm, MMIO_GPA, MMIO_GPA, 1);
	vm_init_descriptor_tables(vm);
	vm_install_sync_handler(vm, VECTOR_SYNC_CURRENT, ESR_EC_UNKNOWN, guest_undef_handler);
	/* With KVM's ESR_EL1 write lost, the handler would see the guest's own ESR. */
	vm_install_sync_handler(vm, VECTOR_SYNC_CURRENT, ESR_EC_VALS, guest_undef_handler);
	return vm;
}

static void run_threads(int first, int n)
{
	pthread_t t[MAX_VCPUS + 2];

	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, vcpu_thread, &ctxs[first + i]);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

static void report(int first, int n, uint64_t rounds)
{
	for (int i = first; i < first + n; i++) {
		struct vcpu_ctx *c = &ctxs[i];
		char held[256] = "";

		TEST_ASSERT(c->gs->round + 1 == rounds && c->gs->undefs == rounds + PROBE_N,
			    "VM %d vCPU %u: %lu rounds, %lu UNDEFs", c->vm_nr, c->vcpu->id,
			    c->gs->round + 1, c->gs->undefs);
		for (int r = 0; r < NR_SYSREGS; r++) {
			if ((sysreg_flags[r] & F_W) && c->gs->wrote[r] != c->gs->want[r] &&
			    !(sysreg_flags[r] & F_SET))
				snprintf(held + strlen(held), sizeof(held) - strlen(held), " %s",
					 sysreg_name[r]);
		}
		printf("sysreg_state_test: VM %d vCPU %u%s: %lu KVM_RUNs, %lu exits (%lu wfi), "
		       "%lu to userspace, %lu EINTR, %lu registers set by the host; probes: "
		       "%lu exits for %d UNDEFs, %lu for %d ID reads%s%s\n", c->vm_nr, c->vcpu->id,
		       c->cpu >= 0 ? " (pinned)" : "", c->runs, vhe_rs_vcpu_stat(c->vcpu, "exits"),
		       vhe_rs_vcpu_stat(c->vcpu, "wfi_exit_stat"), c->user_exits, c->intr, c->sets,
		       c->probe_exits[0], PROBE_N, c->probe_exits[1], PROBE_N,
		       held[0] ? "; not all bits held (RES0/RAZ/WI here):" : "", held);
		if (pmuserenr_readable)
			printf("sysreg_state_test: VM %d vCPU %u: host PMUSERENR_EL0 ER|CR %lu times, "
			       "0 %lu times (%s)%s\n", c->vm_nr, c->vcpu->id, c->pmu_er_cr,
			       c->pmu_zero, c->perf_fd >= 0 ? "with a user-readable counter of its own: "
			       "ER|CR expected" : "no counter of its own: 0 or ER|CR",
			       c->pmu_sysctl_off ? "; 0 with perf_user_access turned off" : "");
	}
}

int main(int argc, char *argv[])
{
	uint64_t rounds = 1000, nvcpus = 2, wfi_every = 8;
	struct kvm_vcpu *vcpus[MAX_VCPUS], *v2[1];
	struct vhe_rs_snap before = vhe_rs_snap();
	long load0 = vhe_rs_stat("vcpu_load"), put0 = vhe_rs_stat("vcpu_put");
	struct kvm_vm *vm, *vm2[2];
	pthread_t pt[8];
	int opt, cpu;

	while ((opt = getopt(argc, argv, "i:v:w:P")) != -1) {
		if (opt == 'i')
			rounds = strtoull(optarg, NULL, 0);
		else if (opt == 'v')
			nvcpus = strtoull(optarg, NULL, 0);
		else if (opt == 'w')
			wfi_every = strtoull(optarg, NULL, 0);
		else if (opt == 'P')
			own_counters = false;
	}
	TEST_REQUIRE(nvcpus >= 1 && nvcpus <= MAX_VCPUS && rounds >= 1);
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpus > 8)
		ncpus = 8;
	pmuserenr_readable = el0_can_read_pmuserenr();

	for (long c = 0; c < ncpus; c++)
		pthread_create(&pt[c], NULL, polluter, (void *)c);

	/* Phase 1: one VM, its vCPU threads migrating. */
	vm = create_vm(nvcpus, vcpus);
	for (uint64_t i = 0; i < nvcpus; i++)
		setup_vcpu(&ctxs[nctxs++], vm, vcpus[i], 0, -1, rounds, wfi_every);
	run_threads(0, nvcpus);
	report(0, nvcpus, rounds);

	/* Phase 2: two VMs of one vCPU each, their threads on the same CPU. */
	cpu = ncpus - 1;
	for (int i = 0; i < 2; i++) {
		vm2[i] = create_vm(1, v2);
		setup_vcpu(&ctxs[nctxs++], vm2[i], v2[0], i + 1, cpu, rounds, wfi_every);
	}
	run_threads(nvcpus, 2);
	report(nvcpus, 2, rounds);

	atomic_store(&stop, true);
	for (long c = 0; c < ncpus; c++)
		pthread_join(pt[c], NULL);
	TEST_ASSERT(atomic_load(&polluter_rounds) > 0, "the polluters never ran");
	printf("sysreg_state_test: %d registers checked after every exit; %lu polluter rounds on "
	       "%d CPUs; host PMUSERENR_EL0 %s; guest and host registers intact\n", NR_SYSREGS,
	       atomic_load(&polluter_rounds), ncpus, pmuserenr_readable ? "checked (a value of the host's PMU driver)" : "not readable");
	kvm_vm_free(vm);
	kvm_vm_free(vm2[0]);
	kvm_vm_free(vm2[1]);
	printf("sysreg_state_test: backend: %s; vhe_rs vcpu_load %ld -> %ld, vcpu_put %ld -> %ld "
	       "(-1: no such counter)\n", vhe_rs_check_backend(before, vhe_rs_snap()), load0,
	       vhe_rs_stat("vcpu_load"), put0, vhe_rs_stat("vcpu_put"));
	return 0;
}
