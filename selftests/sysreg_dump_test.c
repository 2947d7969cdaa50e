// SPDX-License-Identifier: GPL-2.0
/*
 * sysreg_dump_test: the C and the Rust backends must leave bit-identical guest
 * contexts after the same guest run.
 *
 * A VM takes its backend when it is created, so the test creates two VMs of one
 * vCPU, the first with vhe_rs's enable parameter at N (the built-in C), the
 * second at Y (Rust), and puts the parameter back as it found it right after
 * each creation. Both run the same deterministic guest: it writes values of its
 * own into the EL1/EL0 registers of vhe_rs_sysregs.h and into V0-V31, FPSR and
 * FPCR, then exits: hypercalls KVM answers in the kernel, MMIO writes that go to
 * userspace, an ID register read KVM emulates, an UNDEF KVM injects (caught by
 * the guest's handler, which changes ESR/ELR/SPSR_EL1), a last MMIO write and
 * GUEST_DONE. At each of these four exits to userspace the test reads every
 * register of KVM_GET_REG_LIST with KVM_GET_ONE_REG (what vcpu_put saved); at
 * the first it also writes new values into some registers (KVM_SET_ONE_REG, the
 * same in both VMs: what vcpu_load must give the guest). Then it compares the
 * two VMs' dumps bit for bit, less what legitimately differs between two runs
 * (the counters, see timer_excl[]; and the host address the library's ucall
 * leaves in an X register, compared as the GPA it maps). Any other difference
 * fails, naming the register and both values. It also checks that the dumps hold
 * the values the guest had, so that two dumps cannot agree by both missing them.
 *
 * Without the module it compares two VMs on C (which checks the exclusions and
 * that the guest is deterministic) and exits with KSFT_SKIP: there is no Rust to
 * compare with.
 *
 *   sysreg_dump_test
 */
#include <linux/arm-smccc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kselftest.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "vhe_rs.h"
#include "vhe_rs_sysregs.h"

#define MMIO_GPA	(1ULL << 36)	/* not in any memslot: exits to userspace */
#define OWNER		0x42
#define ESR_IL		BIT(25)
#define FPSR_VAL	0x9fU			/* cumulative flags IOC..IXC, IDC */
#define FPCR_VAL	(3U << 22 | 1U << 24)	/* RMode towards zero, FZ */

struct gstate {
	uint64_t val[NR_SYSREGS];	/* host: values to write */
	uint64_t wrote[NR_SYSREGS];
	uint64_t want[NR_SYSREGS];	/* guest: what it read back */
	uint64_t fault_pc, undefs;
};

static struct gstate gstate;

/* V0-V31: values of their own. */
static __uint128_t fpvals[32];

static void guest_undef_handler(struct ex_regs *regs)
{
	uint64_t esr = read_sysreg(esr_el1);

	__GUEST_ASSERT(esr == ESR_IL, "injected UNDEF: ESR_EL1 %#lx, expected %#lx", esr, ESR_IL);
	__GUEST_ASSERT(regs->pc == gstate.fault_pc, "injected UNDEF: ELR_EL1 %#lx, expected %#lx",
		       regs->pc, gstate.fault_pc);
	gstate.undefs++;
	regs->pc += 4;
}

static void guest_code(void)
{
	struct arm_smccc_res res;

	guest_write_sysregs(gstate.val, gstate.wrote);
	asm volatile("ldp q0, q1, [%0, #0]\n ldp q2, q3, [%0, #32]\n"
		     "ldp q4, q5, [%0, #64]\n ldp q6, q7, [%0, #96]\n"
		     "ldp q8, q9, [%0, #128]\n ldp q10, q11, [%0, #160]\n"
		     "ldp q12, q13, [%0, #192]\n ldp q14, q15, [%0, #224]\n"
		     "ldp q16, q17, [%0, #256]\n ldp q18, q19, [%0, #288]\n"
		     "ldp q20, q21, [%0, #320]\n ldp q22, q23, [%0, #352]\n"
		     "ldp q24, q25, [%0, #384]\n ldp q26, q27, [%0, #416]\n"
		     "ldp q28, q29, [%0, #448]\n ldp q30, q31, [%0, #480]\n"
		     "msr fpsr, %1\n msr fpcr, %2\n"
		     : : "r"(fpvals), "r"((uint64_t)FPSR_VAL), "r"((uint64_t)FPCR_VAL) : "memory");

	/* The exits: up to the 2nd MMIO one, only asm and smccc_hvc() (no FP/SIMD). */
	for (int i = 0; i < 3; i++)
		smccc_hvc(ARM_SMCCC_VERSION_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	asm volatile("str xzr, [%0]" : : "r"(MMIO_GPA) : "memory");
	read_sysreg_s(SYS_ID_AA64MMFR0_EL1);
	asm volatile("adr x9, 1f\n str x9, [%0]\n 1: mrs x9, pmselr_el0"
		     : : "r"(&gstate.fault_pc) : "x9", "memory");
	GUEST_ASSERT_EQ(gstate.undefs, 1);
	asm volatile("str xzr, [%0]" : : "r"(MMIO_GPA) : "memory");
	for (int i = 0; i < 2; i++)
		smccc_hvc(ARM_SMCCC_VERSION_FUNC_ID, 0, 0, 0, 0, 0, 0, 0, &res);
	guest_read_sysregs(gstate.want);
	asm volatile("str xzr, [%0]" : : "r"(MMIO_GPA) : "memory");
	GUEST_DONE();
}

/*
 * What may differ between two runs of the same guest: all comes from time.
 * @mask: the bits compared (0: none).
 */
static const struct {
	uint64_t id, mask;
	const char *why;
} timer_excl[] = {
	{ KVM_REG_ARM_TIMER_CNT, 0,
	  "CNTVCT_EL0: the virtual counter, read when KVM_GET_ONE_REG runs" },
	{ KVM_REG_ARM_PTIMER_CNT, 0,
	  "CNTPCT_EL0: the physical counter, same" },
	{ KVM_REG_ARM_TIMER_CTL, ~4ULL,
	  "CNTV_CTL_EL0.ISTATUS: KVM computes it at read time from the counter and CVAL" },
	{ KVM_REG_ARM_PTIMER_CTL, ~4ULL,
	  "CNTP_CTL_EL0.ISTATUS: same" },
};
/* No PMU counter is in the list: the vCPUs have no PMU (its registers are hidden). */

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpu, int enable)
{
	struct kvm_vm *vm;
	bool was = vhe_rs_enabled();

	if (enable >= 0)
		TEST_ASSERT(vhe_rs_set_enable(enable), "cannot write vhe_rs's enable parameter");
	vm = vm_create_with_one_vcpu(vcpu, guest_code);
	if (enable >= 0)
		TEST_ASSERT(vhe_rs_set_enable(was), "cannot put vhe_rs's enable parameter back");
	virt_map(vm, MMIO_GPA, MMIO_GPA, 1);
	vm_init_descriptor_tables(vm);
	vcpu_init_descriptor_tables(*vcpu);
	vm_install_sync_handler(vm, VECTOR_SYNC_CURRENT, ESR_EC_UNKNOWN, guest_undef_handler);
	/* With KVM's ESR_EL1 write lost, the handler would see the guest's own ESR. */
	vm_install_sync_handler(vm, VECTOR_SYNC_CURRENT, ESR_EC_VALS, guest_undef_handler);
	for (int i = 0; i < NR_SYSREGS; i++)
		gstate.val[i] = sysreg_value(i, VAL_GUEST, OWNER, 0);
	for (int i = 0; i < 32; i++)
		fpvals[i] = ((__uint128_t)(0xf00d000000000000ULL | (uint64_t)i << 40 | OWNER) << 64) |
			    (0x5eed000000000000ULL | (uint64_t)i << 32 | 0xc0de);
	sync_global_to_guest(vm, gstate);
	sync_global_to_guest(vm, fpvals);
	return vm;
}

#define NR_POINTS	4	/* dumps: at the 3 MMIO exits and at GUEST_DONE */
#define VAL_MAX		256	/* bytes: the largest register (a 2048-bit SVE Z) */

struct dump {
	struct kvm_reg_list *list;
	uint8_t (*val)[VAL_MAX];
};

static struct dump take_dump(struct kvm_vcpu *vcpu)
{
	struct dump d = { .list = vcpu_get_reg_list(vcpu) };

	d.val = calloc(d.list->n, VAL_MAX);
	TEST_ASSERT(d.val, "calloc");
	for (uint64_t i = 0; i < d.list->n; i++) {
		uint64_t id = d.list->reg[i];

		TEST_ASSERT((1UL << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)) <= VAL_MAX,
			    "register %#lx is too large", id);
		vcpu_get_reg(vcpu, id, d.val[i]);
	}
	return d;
}

static const uint8_t *dump_val(const struct dump *d, uint64_t id)
{
	for (uint64_t i = 0; i < d->list->n; i++)
		if (d->list->reg[i] == id)
			return d->val[i];
	TEST_FAIL("register %#lx not in the dump", id);
	return NULL;
}

/*
 * Runs the guest to its end; dumps its registers at every exit to userspace. At
 * the first one, writes new values into the F_SET registers (the same in both
 * VMs): the next dumps show whether vcpu_load gave them to the guest.
 */
static void run_vm(struct kvm_vcpu *vcpu, struct dump *dumps)
{
	struct vhe_rs_user_regs own, before, after;
	struct ucall uc;
	int mmio = 0;
	long ret;

	vhe_rs_own_user_regs(&own);
	for (;;) {
		ret = vhe_rs_kvm_run(vcpu->fd, own.tpidr, &before, &after);
		TEST_ASSERT(after.tpidr == own.tpidr && after.tpidrro == own.tpidrro,
			    "KVM_RUN came back with TPIDR_EL0 %#lx TPIDRRO_EL0 %#lx, the thread's are "
			    "%#lx %#lx", after.tpidr, after.tpidrro, own.tpidr, own.tpidrro);
		TEST_ASSERT(!ret, "KVM_RUN: %ld", ret);
		if (vcpu->run->exit_reason == KVM_EXIT_MMIO && vcpu->run->mmio.phys_addr == MMIO_GPA) {
			TEST_ASSERT(mmio < NR_POINTS - 1, "more MMIO exits than the guest makes");
			dumps[mmio] = take_dump(vcpu);
			if (!mmio++) {
				for (int i = 0; i < NR_SYSREGS; i++)
					if (sysreg_flags[i] & F_SET)
						vcpu_set_reg(vcpu, sysreg_id[i],
							     sysreg_value(i, VAL_HOST, OWNER, 1));
			}
			continue;
		}
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_DONE:
			TEST_ASSERT_EQ(mmio, NR_POINTS - 1);
			dumps[mmio] = take_dump(vcpu);
			return;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		case UCALL_UNHANDLED:
			assert_on_unhandled_exception(vcpu);
		default:
			TEST_FAIL("unexpected exit %s", exit_reason_str(vcpu->run->exit_reason));
		}
	}
}

static bool is_xreg(uint64_t id)
{
	return (id & KVM_REG_ARM_COPROC_MASK) == KVM_REG_ARM_CORE &&
	       (id & 0xffff) * 4 < offsetof(struct kvm_regs, regs.sp);
}

/* A register's name for the messages: ours, a core one, or op0..op2 for any sysreg. */
static const char *reg_name(uint64_t id, char *buf, size_t len)
{
	uint64_t coproc = id & KVM_REG_ARM_COPROC_MASK;

	for (int i = 0; i < NR_SYSREGS; i++)
		if (sysreg_id[i] == id) {
			snprintf(buf, len, "%s", sysreg_name[i]);
			return buf;
		}
	if (coproc == KVM_REG_ARM64_SYSREG) {
		snprintf(buf, len, "sysreg op0=%lu op1=%lu CRn=%lu CRm=%lu op2=%lu",
			 (id & KVM_REG_ARM64_SYSREG_OP0_MASK) >> KVM_REG_ARM64_SYSREG_OP0_SHIFT,
			 (id & KVM_REG_ARM64_SYSREG_OP1_MASK) >> KVM_REG_ARM64_SYSREG_OP1_SHIFT,
			 (id & KVM_REG_ARM64_SYSREG_CRN_MASK) >> KVM_REG_ARM64_SYSREG_CRN_SHIFT,
			 (id & KVM_REG_ARM64_SYSREG_CRM_MASK) >> KVM_REG_ARM64_SYSREG_CRM_SHIFT,
			 (id & KVM_REG_ARM64_SYSREG_OP2_MASK) >> KVM_REG_ARM64_SYSREG_OP2_SHIFT);
	} else if (coproc == KVM_REG_ARM_CORE) {
		uint64_t off = (id & 0xffff) * 4;

		if (off < offsetof(struct kvm_regs, regs.sp))
			snprintf(buf, len, "core X%lu", off / 8);
		else if (off >= offsetof(struct kvm_regs, fp_regs.vregs) &&
			 off < offsetof(struct kvm_regs, fp_regs.fpsr))
			snprintf(buf, len, "core V%lu", (off - offsetof(struct kvm_regs, fp_regs.vregs)) / 16);
		else
			snprintf(buf, len, "core register at offset %lu (%s)", off,
				 off == offsetof(struct kvm_regs, regs.pc) ? "PC" :
				 off == offsetof(struct kvm_regs, regs.pstate) ? "PSTATE" :
				 off == offsetof(struct kvm_regs, fp_regs.fpsr) ? "FPSR" :
				 off == offsetof(struct kvm_regs, fp_regs.fpcr) ? "FPCR" : "see struct kvm_regs");
	} else {
		snprintf(buf, len, "register %#lx (coproc %#lx)", id, coproc >> KVM_REG_ARM_COPROC_SHIFT);
	}
	return buf;
}

static void hex(const uint8_t *v, size_t size, char *buf)
{
	buf += sprintf(buf, "0x");
	for (size_t i = size; i-- > 0;)
		buf += sprintf(buf, "%02x", v[i]);
}

/* The GPA that @hva maps in @vm's memslots, or -1. */
static uint64_t hva_to_gpa(struct kvm_vm *vm, uint64_t hva)
{
	for (int t = 0; t < NR_MEM_REGIONS; t++) {
		struct userspace_mem_region *r = vm_get_mem_region(vm, t);
		uint64_t base = (uint64_t)r->host_mem;

		if (hva >= base && hva - base < r->region.memory_size)
			return r->region.guest_phys_addr + (hva - base);
	}
	return -1;
}

/*
 * Every register of two dumps; returns how many were compared. One thing may
 * differ besides time: at GUEST_DONE the library's ucall leaves the host's
 * address (HVA) of its struct ucall in an X register, and each VM's memory is
 * mapped at its own HVA; such a pair is equal if both map the same GPA.
 */
static int compare(struct kvm_vm *a, struct kvm_vm *b, const struct dump *da,
		   const struct dump *db, const char *an, const char *bn, const char *where)
{
	const struct kvm_reg_list *la = da->list, *lb = db->list;
	char name[96], ha[2 * VAL_MAX + 3], hb[2 * VAL_MAX + 3];
	int compared = 0;

	TEST_ASSERT(la->n == lb->n, "register lists: %llu registers on %s, %llu on %s",
		    la->n, an, lb->n, bn);
	for (uint64_t i = 0; i < la->n; i++) {
		uint64_t id = la->reg[i], mask = ~0ULL;
		size_t size = 1UL << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
		const uint8_t *va = da->val[i], *vb = db->val[i];
		bool same;

		TEST_ASSERT(lb->reg[i] == id, "register lists differ at %lu: %#lx on %s, %#llx on %s",
			    i, id, an, lb->reg[i], bn);
		for (size_t e = 0; e < ARRAY_SIZE(timer_excl); e++)
			if (timer_excl[e].id == id)
				mask = timer_excl[e].mask;
		if (!mask)
			continue;
		if (size == 8)
			same = (*(uint64_t *)va & mask) == (*(uint64_t *)vb & mask);
		else
			same = !memcmp(va, vb, size);
		if (!same && is_xreg(id)) {
			uint64_t ga = hva_to_gpa(a, *(uint64_t *)va), gb = hva_to_gpa(b, *(uint64_t *)vb);

			if (ga != -1ULL && ga == gb) {
				printf("sysreg_dump_test: %s: %s holds the host address of GPA %#lx "
				       "(%#lx, %#lx): same\n", where, reg_name(id, name, sizeof(name)),
				       ga, *(uint64_t *)va, *(uint64_t *)vb);
				same = true;
			}
		}
		if (!same) {
			hex(va, size, ha);
			hex(vb, size, hb);
			TEST_FAIL("%s: %s (id %#lx) differs: %s on %s, %s on %s", where,
				  reg_name(id, name, sizeof(name)), id, ha, an, hb, bn);
		}
		compared++;
	}
	return compared;
}

/*
 * The dumps hold the guest's values: its FP/SIMD registers at its second MMIO
 * exit (only the loads and the exits' asm ran since it loaded them) and, at its
 * end, what it read back from its system registers.
 */
static void check_guest_values(struct kvm_vm *vm, const struct dump *d, const char *vmn)
{
	struct gstate *gs = addr_gva2hva(vm, (vm_vaddr_t)&gstate);
	const struct dump *end = &d[NR_POINTS - 1];
	char held[256] = "";
	uint64_t fpsr, fpcr;

	for (int i = 0; i < 32; i++)
		TEST_ASSERT(!memcmp(dump_val(&d[1], KVM_REG_ARM64 | KVM_REG_SIZE_U128 | KVM_REG_ARM_CORE |
					     KVM_REG_ARM_CORE_REG(fp_regs.vregs[i])), &fpvals[i], 16),
			    "%s: V%d at the 2nd MMIO exit is not the guest's", vmn, i);
	memcpy(&fpsr, dump_val(&d[1], KVM_REG_ARM64 | KVM_REG_SIZE_U32 | KVM_REG_ARM_CORE |
			       KVM_REG_ARM_CORE_REG(fp_regs.fpsr)), 4);
	memcpy(&fpcr, dump_val(&d[1], KVM_REG_ARM64 | KVM_REG_SIZE_U32 | KVM_REG_ARM_CORE |
			       KVM_REG_ARM_CORE_REG(fp_regs.fpcr)), 4);
	TEST_ASSERT((uint32_t)fpsr == FPSR_VAL && (uint32_t)fpcr == FPCR_VAL,
		    "%s: FPSR %#x FPCR %#x at the 2nd MMIO exit, the guest's are %#x %#x", vmn,
		    (uint32_t)fpsr, (uint32_t)fpcr, FPSR_VAL, FPCR_VAL);
	for (int i = 0; i < NR_SYSREGS; i++) {
		uint64_t r;

		memcpy(&r, dump_val(end, sysreg_id[i]), 8);
		TEST_ASSERT(r == gs->want[i], "%s: %s = %#lx in the dump, the guest had %#lx",
			    vmn, sysreg_name[i], r, gs->want[i]);
		/* The host wrote the F_SET ones since; ESR/ELR/SPSR_EL1 are the UNDEF's. */
		if ((sysreg_flags[i] & F_W) && !(sysreg_flags[i] & F_SET) &&
		    gs->wrote[i] != gs->want[i] && i != R_ESR_EL1 && i != R_SPSR_EL1)
			snprintf(held + strlen(held), sizeof(held) - strlen(held), " %s",
				 sysreg_name[i]);
	}
	if (held[0])
		printf("sysreg_dump_test: %s: not all bits written held (RES0/RAZ/WI here):%s\n",
		       vmn, held);
}

static int orig_enable = -1;

static void restore_enable(void)
{
	if (orig_enable >= 0)
		vhe_rs_set_enable(orig_enable);
}

int main(int argc, char *argv[])
{
	bool module = vhe_rs_loaded();
	struct dump da[NR_POINTS], db[NR_POINTS];
	static const char *const where[NR_POINTS] = {
		"at the 1st MMIO exit", "at the 2nd MMIO exit", "at the 3rd MMIO exit",
		"at GUEST_DONE" };
	struct vhe_rs_snap s[3];
	long c0, c1, c2, load[3], put[3];
	struct kvm_vcpu *va, *vb;
	struct kvm_vm *a, *b;
	const char *an, *bn;
	int n = 0;

	if (module) {
		orig_enable = vhe_rs_enabled();
		atexit(restore_enable);
	}

	/* vm_c_disabled counts at VM creation, vm_rust at the VM's first KVM_RUN. */
	c0 = vhe_rs_stat("vm_c_disabled");
	a = create_vm(&va, module ? 0 : -1);
	c1 = vhe_rs_stat("vm_c_disabled");
	b = create_vm(&vb, module ? 1 : -1);
	c2 = vhe_rs_stat("vm_c_disabled");
	if (module) {
		TEST_ASSERT(c1 == c0 + 1 && c2 == c1, "vm_c_disabled %ld -> %ld -> %ld: VM A, created "
			    "with enable=N, must be on C, VM B, created with Y, on Rust", c0, c1, c2);
		TEST_ASSERT(vhe_rs_enabled() == orig_enable, "enable parameter not put back");
	}
	an = "VM A (C)";
	bn = module ? "VM B (Rust)" : "VM B (C)";

	s[0] = vhe_rs_snap();
	load[0] = vhe_rs_stat("vcpu_load");
	put[0] = vhe_rs_stat("vcpu_put");
	run_vm(va, da);
	s[1] = vhe_rs_snap();
	load[1] = vhe_rs_stat("vcpu_load");
	put[1] = vhe_rs_stat("vcpu_put");
	run_vm(vb, db);
	s[2] = vhe_rs_snap();
	load[2] = vhe_rs_stat("vcpu_load");
	put[2] = vhe_rs_stat("vcpu_put");
	TEST_ASSERT(s[1].vm_rust == s[0].vm_rust && s[1].load_fp == s[0].load_fp,
		    "VM A ran on Rust (vm_rust %ld -> %ld, load_fp %ld -> %ld)",
		    s[0].vm_rust, s[1].vm_rust, s[0].load_fp, s[1].load_fp);
	if (module)
		TEST_ASSERT(s[2].vm_rust == s[1].vm_rust + 1 && s[2].load_fp > s[1].load_fp,
			    "VM B did not run on Rust (vm_rust %ld -> %ld, load_fp %ld -> %ld)",
			    s[1].vm_rust, s[2].vm_rust, s[1].load_fp, s[2].load_fp);

	check_guest_values(a, da, an);
	check_guest_values(b, db, bn);
	for (int p = 0; p < NR_POINTS; p++)
		n = compare(a, b, &da[p], &db[p], an, bn, where[p]);
	printf("sysreg_dump_test: %s and %s: %d registers of KVM_GET_REG_LIST identical at each of "
	       "%d exits to userspace (%lld in the list; time-based: %zu left out or masked)\n",
	       an, bn, n, NR_POINTS, da[0].list->n, ARRAY_SIZE(timer_excl));
	for (size_t e = 0; e < ARRAY_SIZE(timer_excl); e++)
		printf("sysreg_dump_test: %s %s\n", timer_excl[e].mask ? "masked:" : "not compared:",
		       timer_excl[e].why);
	printf("sysreg_dump_test: vhe_rs vcpu_load +%ld/+%ld, vcpu_put +%ld/+%ld during VM A/VM B "
	       "(no such counters: +0)\n", load[1] - load[0], load[2] - load[1], put[1] - put[0],
	       put[2] - put[1]);
	kvm_vm_free(a);
	kvm_vm_free(b);
	if (!module) {
		printf("sysreg_dump_test: vhe_rs not loaded: two VMs on C compared; "
		       "C vs Rust needs the module: skip\n");
		return KSFT_SKIP;
	}
	return 0;
}
