// SPDX-License-Identifier: GPL-2.0
/*
 * first_run_fail_test: a vCPU whose first KVM_RUN failed can be reset after a
 * vGIC was created, and then runs with its timer wired to that vGIC.
 *
 * The regression test of arch/arm64/patches/0001-KVM-arm64-Check-the-PMU-
 * before-a-vcpu-s-first-run-chang.patch ("KVM: arm64: Check the PMU before a
 * vcpu's first run changes anything"), a host crash that ioctl_fuzz found
 * (seed 7; Documentation/stress.rst, "Found"). In upstream KVM 6.12.117, the
 * first KVM_RUN of a vCPU with KVM_ARM_VCPU_PMU_V3 whose PMU was never
 * initialised fails with EINVAL in kvm_arch_vcpu_run_pid_change()
 * (kvm_arm_pmu_v3_enable()), after kvm_timer_enable() set timer->enabled but
 * before vcpu->pid is set: the vCPU has not "run once", so a vGICv3 can still
 * be created, and the next KVM_ARM_VCPU_INIT resets an enabled timer on an
 * in-kernel irqchip that is not initialised: WARN at arch_timer.c:459, then a
 * NULL dereference in kvm_vgic_reset_mapped_irq(). The failed run also
 * finalised the VM's ID registers without an irqchip (ID_AA64PFR0_EL1.GIC
 * cleared, which a vGIC created later does not bring back: the guest's GICv3
 * system registers UNDEF). The patch checks the PMU before either.
 *
 * Steps (each asserted, naming the step):
 *  a. a VM without an irqchip, one vCPU with KVM_ARM_VCPU_PMU_V3 (skipped
 *     without KVM_CAP_ARM_PMU_V3), its PMU never initialised;
 *  b. KVM_RUN fails with EINVAL, and ID_AA64PFR0_EL1 is what it was at a.;
 *  c. KVM_CREATE_DEVICE of a vGICv3 succeeds (the vCPU has not run once), its
 *     distributor and redistributor addresses are set;
 *  d. KVM_ARM_VCPU_INIT again with the same features returns 0 (where the
 *     unfixed kernel crashed), and the kernel is not newly tainted with W;
 *  e. the PMU's interrupt set (PPI 23) and the PMU initialised, the vGIC
 *     initialised; the guest enables its GIC, arms its virtual timer a few
 *     milliseconds ahead and waits in WFI for the timer's interrupt, which its
 *     IRQ handler counts: the timer was wired to the vGIC on this first
 *     successful run.
 *
 * The VM test runner fails a test that makes a kernel splat; the W taint check
 * says which step made it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/bitfield.h>
#include <linux/sizes.h>
#include <sys/ioctl.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "arch_timer.h"
#include "gic.h"
#include "vgic.h"
#include "vhe_rs.h"

#define PMU_IRQ		23	/* a PPI */
#define NR_IRQS		64
#define TIMER_MS	2	/* how far ahead the guest arms its timer */

/* Guest and host share these (sync_global_{to,from}_guest). */
static uint32_t vtimer_irq;
static uint64_t timer_irqs;
static uint64_t last_intid;

static void guest_irq_handler(struct ex_regs *regs)
{
	unsigned int intid = gic_get_and_ack_irq();

	WRITE_ONCE(last_intid, intid);
	if (intid == IAR_SPURIOUS)
		return;
	/* A level interrupt: lower the timer's output before the EOI. */
	if (intid == vtimer_irq)
		timer_set_ctl(VIRTUAL, CTL_IMASK);
	gic_set_eoi(intid);
	if (intid == vtimer_irq)
		WRITE_ONCE(timer_irqs, READ_ONCE(timer_irqs) + 1);
}

static void guest_code(void)
{
	local_irq_disable();
	gic_init(GIC_V3, 1);
	gic_irq_enable(vtimer_irq);
	timer_set_ctl(VIRTUAL, CTL_IMASK);
	timer_set_next_cval_ms(VIRTUAL, TIMER_MS);
	timer_set_ctl(VIRTUAL, CTL_ENABLE);
	/*
	 * IRQs masked around the check: WFI wakes on a pending interrupt even
	 * when it is masked, and the handler runs once they are unmasked.
	 */
	while (!READ_ONCE(timer_irqs)) {
		wfi();
		local_irq_enable();
		isb();
		local_irq_disable();
	}
	GUEST_ASSERT_EQ(READ_ONCE(last_intid), vtimer_irq);
	GUEST_DONE();
}

#define say(fmt, ...) printf("first_run_fail_test: " fmt "\n", ##__VA_ARGS__)

static void check_taint(const char *step, unsigned long before)
{
	TEST_ASSERT(!vhe_rs_warned_since(before),
		    "%s: tainted with W (a WARN) since %lu, expected no new bit 9", step, before);
}

/* The vCPU's register setup of the library, again after a reset. */
static void vcpu_setup_again(struct kvm_vcpu *vcpu, struct kvm_vcpu_init *init,
			     uint64_t sp)
{
	aarch64_vcpu_setup(vcpu, init);
	vcpu_set_reg(vcpu, ARM64_CORE_REG(sp_el1), sp);
	vcpu_set_reg(vcpu, ARM64_CORE_REG(regs.pc), (uint64_t)guest_code);
	vcpu_init_descriptor_tables(vcpu);
}

int main(int argc, char *argv[])
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	struct vhe_rs_snap before = vhe_rs_snap();
	unsigned long taint0 = vhe_rs_tainted();
	uint64_t attr, irq = PMU_IRQ, sp, pfr0_a, pfr0;
	struct kvm_vcpu_init init;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	int ret, err, gic;

	__TEST_REQUIRE(kvm_has_cap(KVM_CAP_ARM_PMU_V3),
		       "KVM_CAP_ARM_PMU_V3 absent: no vCPU with a PMU on this host");
	if (taint0 & VHE_RS_TAINT_WARN)
		say("tainted with W before the test (%lu): a new WARN cannot be told apart",
		    taint0);

	/* a. No irqchip; a vCPU with PMU_V3, its PMU never initialised. */
	vm = vm_create(1);
	vm_ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init);
	init.features[0] |= 1 << KVM_ARM_VCPU_PMU_V3;
	vcpu = aarch64_vcpu_add(vm, 0, &init, guest_code);
	vm_init_descriptor_tables(vm);
	vcpu_init_descriptor_tables(vcpu);
	vm_install_exception_handler(vm, VECTOR_IRQ_CURRENT, guest_irq_handler);
	vcpu_device_attr_get(vcpu, KVM_ARM_VCPU_TIMER_CTRL, KVM_ARM_VCPU_TIMER_IRQ_VTIMER,
			     &vtimer_irq);
	sync_global_to_guest(vm, vtimer_irq);
	vcpu_get_reg(vcpu, ARM64_CORE_REG(sp_el1), &sp);
	vcpu_get_reg(vcpu, KVM_ARM64_SYS_REG(SYS_ID_AA64PFR0_EL1), &pfr0_a);
	say("a. VM without irqchip, vCPU with PMU_V3 (PMU not initialised)");

	/* b. The first KVM_RUN fails: the PMU was never initialised. */
	ret = ioctl(vcpu->fd, KVM_RUN, NULL);
	err = ret ? errno : 0;
	TEST_ASSERT(ret == -1 && err == EINVAL,
		    "b. first KVM_RUN, PMU not initialised: returned %d, errno %d (%s); "
		    "expected -1, errno EINVAL", ret, err, strerror(err));
	vcpu_get_reg(vcpu, KVM_ARM64_SYS_REG(SYS_ID_AA64PFR0_EL1), &pfr0);
	TEST_ASSERT(pfr0 == pfr0_a,
		    "b. ID_AA64PFR0_EL1 after the failed first run: %#lx, %#lx before "
		    "(GIC field %lu, was %lu): the failed run changed the VM", pfr0, pfr0_a,
		    FIELD_GET(ID_AA64PFR0_EL1_GIC_MASK, pfr0),
		    FIELD_GET(ID_AA64PFR0_EL1_GIC_MASK, pfr0_a));
	say("b. first KVM_RUN: EINVAL; ID_AA64PFR0_EL1 unchanged");

	/* c. A vGICv3 can still be created: the vCPU has not run once. */
	ret = ioctl(vm->fd, KVM_CREATE_DEVICE, &cd);
	err = ret ? errno : 0;
	TEST_ASSERT(ret == 0,
		    "%s: returned %d, errno %d (%s); expected 0 (the vCPU has not run once)",
		    "c. KVM_CREATE_DEVICE(VGIC_V3) after the failed first run", ret, err,
		    strerror(err));
	gic = cd.fd;
	kvm_device_attr_set(gic, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &(uint32_t){ NR_IRQS });
	attr = GICD_BASE_GPA;
	kvm_device_attr_set(gic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &attr);
	virt_map(vm, GICD_BASE_GPA, GICD_BASE_GPA,
		 vm_calc_num_guest_pages(vm->mode, KVM_VGIC_V3_DIST_SIZE));
	attr = REDIST_REGION_ATTR_ADDR(1, GICR_BASE_GPA, 0, 0);
	kvm_device_attr_set(gic, KVM_DEV_ARM_VGIC_GRP_ADDR,
			    KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, &attr);
	virt_map(vm, GICR_BASE_GPA, GICR_BASE_GPA,
		 vm_calc_num_guest_pages(vm->mode, KVM_VGIC_V3_REDIST_SIZE));
	say("c. vGICv3 created, addresses set (not initialised)");

	/* d. The reset where the unfixed kernel crashed. */
	ret = ioctl(vcpu->fd, KVM_ARM_VCPU_INIT, &init);
	err = ret ? errno : 0;
	TEST_ASSERT(ret == 0,
		    "%s: returned %d, errno %d (%s); expected 0",
		    "d. KVM_ARM_VCPU_INIT again (same features, vGIC not initialised)", ret, err,
		    strerror(err));
	check_taint("d. KVM_ARM_VCPU_INIT again", taint0);
	say("d. KVM_ARM_VCPU_INIT again: 0, no new W taint");
	vcpu_setup_again(vcpu, &init, sp);

	/* e. Runnable: vGIC initialised, PMU interrupt and PMU initialised. */
	kvm_device_attr_set(gic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL);
	vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_IRQ, &irq);
	vcpu_device_attr_set(vcpu, KVM_ARM_VCPU_PMU_V3_CTRL, KVM_ARM_VCPU_PMU_V3_INIT, NULL);
	vcpu_run(vcpu);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_DONE:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("%s: exit %s (ucall %lu), expected the guest's GUEST_DONE",
			  "e. run after the reset", exit_reason_str(vcpu->run->exit_reason),
			  uc.cmd);
	}
	sync_global_from_guest(vm, timer_irqs);
	sync_global_from_guest(vm, last_intid);
	TEST_ASSERT(timer_irqs == 1 && last_intid == vtimer_irq,
		    "%s: the guest took %lu timer interrupts, last INTID %lu; expected 1, INTID %u",
		    "e. run after the reset", timer_irqs, last_intid, vtimer_irq);
	check_taint("e. run after the reset", taint0);
	say("e. vGIC and PMU initialised; the guest took its virtual timer's interrupt (INTID %u)",
	    vtimer_irq);

	close(gic);
	kvm_vm_free(vm);
	say("passed; backend: %s", vhe_rs_check_backend(before, vhe_rs_snap()));
	return 0;
}
