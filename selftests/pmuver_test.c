// SPDX-License-Identifier: GPL-2.0
/*
 * pmuver_test: KVM_SET_ONE_REG of ID_AA64DFR0_EL1.PMUVer, every value, on a
 * vCPU with a PMU and on one without, each followed by a reset
 * (KVM_ARM_VCPU_INIT again): no value may make the kernel warn.
 *
 * The regression test of arch/arm64/patches/0002-KVM-arm64-Refuse-reserved-
 * ID_AA64DFR0_EL1.PMUVer-valu.patch ("KVM: arm64: Refuse reserved
 * ID_AA64DFR0_EL1.PMUVer values"), a WARN that the 30-minute stress run found
 * (ioctl_fuzz's load, Rust pass; Documentation/stress.rst, "Found"). In
 * upstream KVM 6.12.117, set_id_aa64dfr0_el1() accepted the reserved PMUVer
 * values 2 and 3 (and NI on a vCPU with a PMU); the vCPU's next reset then
 * asked kvm_pmu_evtyper_mask() for the event mask of a version it does not
 * know: "Unknown PMU version 2", WARNING at pmu-emul.c:50.
 *
 * For each PMUVer value 0-15, on a new VM each time (the field is the VM's):
 *  - a vCPU with KVM_ARM_VCPU_PMU_V3 (skipped without KVM_CAP_ARM_PMU_V3): 1
 *    (IMP) and V3P1 up to the value KVM gave the vCPU are accepted and read
 *    back; 0 (NI), 2 and 3 are refused with EINVAL; others refused;
 *  - a vCPU without one: 0 accepted, 15 (IMP_DEF) accepted as 0, 2 and 3
 *    refused with EINVAL, others refused;
 * then KVM_ARM_VCPU_INIT again must return 0, and bit 9 (W) of
 * /proc/sys/kernel/tainted must not have appeared (the VM runner fails the
 * test on the WARN anyway; the taint check names the value).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <linux/bitfield.h>
#include <sys/ioctl.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"

#define DFR0		KVM_ARM64_SYS_REG(SYS_ID_AA64DFR0_EL1)

static void guest_code(void)
{
	GUEST_DONE();
}

/* Sets PMUVer to @v on a new VM; returns 0 or the errno; the value read back in @got. */
static int try_pmuver(bool pmu, uint64_t v, uint64_t *dflt, uint64_t *got)
{
	struct kvm_vcpu_init init;
	struct kvm_one_reg reg;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	unsigned long taint0 = vhe_rs_tainted();
	uint64_t val;
	int ret, err;

	vm = vm_create(1);
	vm_ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init);
	if (pmu)
		init.features[0] |= 1 << KVM_ARM_VCPU_PMU_V3;
	vcpu = aarch64_vcpu_add(vm, 0, &init, guest_code);
	vcpu_get_reg(vcpu, DFR0, &val);
	*dflt = FIELD_GET(ID_AA64DFR0_EL1_PMUVer_MASK, val);
	val &= ~ID_AA64DFR0_EL1_PMUVer_MASK;
	val |= FIELD_PREP(ID_AA64DFR0_EL1_PMUVer_MASK, v);
	reg.id = DFR0;
	reg.addr = (uint64_t)&val;
	ret = ioctl(vcpu->fd, KVM_SET_ONE_REG, &reg);
	err = ret ? errno : 0;
	vcpu_get_reg(vcpu, DFR0, &val);
	*got = FIELD_GET(ID_AA64DFR0_EL1_PMUVer_MASK, val);

	/* The reset that warned: reset_pmevtyper() asks for the event mask. */
	ret = ioctl(vcpu->fd, KVM_ARM_VCPU_INIT, &init);
	TEST_ASSERT(!ret, "%s vCPU, PMUVer %lu: KVM_ARM_VCPU_INIT again: errno %d (%s)",
		    pmu ? "PMU" : "no-PMU", v, errno, strerror(errno));
	TEST_ASSERT(!(vhe_rs_warned_since(taint0)),
		    "%s vCPU, PMUVer %lu: the kernel warned (tainted W)", pmu ? "PMU" : "no-PMU", v);
	kvm_vm_free(vm);
	return err;
}

static void check(bool pmu)
{
	int accepted = 0, refused = 0;

	for (uint64_t v = 0; v < 16; v++) {
		uint64_t dflt, got;
		int err = try_pmuver(pmu, v, &dflt, &got);
		bool reserved = v == 2 || v == 3 || (pmu && (v == 0 || v == 15));
		bool valid = pmu ? (v == ID_AA64DFR0_EL1_PMUVer_IMP ||
				    (v >= ID_AA64DFR0_EL1_PMUVer_V3P1 && v <= dflt))
				 : (v == 0 || v == 15);
		uint64_t want = v == 15 ? 0 : v;

		if (reserved)
			TEST_ASSERT(err == EINVAL, "%s vCPU: PMUVer %lu (not a PMUv3%s): errno %d, "
				    "expected EINVAL", pmu ? "PMU" : "no-PMU", v,
				    pmu && !v ? " for a vCPU with a PMU" : "", err);
		else if (valid)
			TEST_ASSERT(!err && got == want, "%s vCPU: PMUVer %lu: errno %d, read back "
				    "%lu; expected accepted, %lu", pmu ? "PMU" : "no-PMU", v, err,
				    got, want);
		else
			TEST_ASSERT(err, "%s vCPU: PMUVer %lu above the vCPU's %lu: accepted",
				    pmu ? "PMU" : "no-PMU", v, dflt);
		if (err)
			TEST_ASSERT(got == dflt, "%s vCPU: PMUVer %lu refused, yet it reads %lu, was %lu",
				    pmu ? "PMU" : "no-PMU", v, got, dflt);
		accepted += !err;
		refused += !!err;
	}
	printf("pmuver_test: %s vCPU: %d values accepted, %d refused, no warning\n",
	       pmu ? "PMU" : "no-PMU", accepted, refused);
}

int main(void)
{
	check(false);
	if (!kvm_check_cap(KVM_CAP_ARM_PMU_V3)) {
		print_skip("KVM_CAP_ARM_PMU_V3 not supported: the PMU vCPU not tried");
		return KSFT_SKIP;
	}
	check(true);
	return 0;
}
