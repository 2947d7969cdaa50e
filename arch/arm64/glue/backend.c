// SPDX-License-Identifier: GPL-2.0
/*
 * vhe-rs: C glue of the backend. What is here is mechanism only, each
 * function a few lines over a kernel static inline or macro that Rust cannot
 * call: registering the ops table that Rust builds, the module parameters, per-CPU counters and their debugfs file,
 * and accessors for per-CPU and per-vCPU FP state. The decisions are in
 * rust/ (rust/world/, and rust/kvm/ for the binding layer, which also builds
 * the ops table handed to KVM).
 */
#include <linux/debugfs.h>
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>
#include <asm/fpsimd.h>
#include <asm/kvm_emulate.h>
#include <asm/kvm_host.h>
#include <asm/kvm_mmu.h>
#include <asm/kvm_vhe_backend.h>
#include <kvm/arm_arch_timer.h>
#include <kvm/arm_pmu.h>
#include <kvm/arm_vgic.h>
#include <linux/kprobes.h>
#include <asm/kvm_hyp.h>
#include <asm/vectors.h>

#include "glue.h"

/* ---- what the hook series exports, looked up by name at init ---- */

/*
 * Everything the module needs from arch/arm64/patches and not from a stock
 * kernel is taken by name here instead of being linked: on a kernel built
 * without the series the loader would otherwise refuse the module with a bare
 * "Unknown symbol"; this way init runs, names the missing symbol and says what
 * to do. All are vmlinux symbols, for which __symbol_get() takes no reference.
 * typeof() only names the types: it emits no reference to the symbols.
 */
static struct {
	typeof(&kvm_vhe_backend_register) backend_register;
	typeof(&kvm_vhe_backend_unregister) backend_unregister;
	typeof(&fpsimd_bind_state_to_cpu) bind_state_to_cpu;
	typeof(&fpsimd_save_and_flush_cpu_state) save_and_flush_cpu_state;
	typeof(&kvm_host_data) host_data;
	typeof(&kvm_arm_pmu_available) pmu_available;
	typeof(&kvm_arm_vmid_bits) vmid_bits;
	typeof(&vgic_v2_cpuif_trap) vgic_v2_cpuif_trap;
	typeof(&vgic_v3_cpuif_trap) vgic_v3_cpuif_trap;
	typeof(&kvm_hyp_vector) hyp_vector;
	typeof(&this_cpu_vector) this_cpu_vector;
} hook;

/* What the run path calls in the kernel (the vhe_rs_* wrappers below). */
static struct {
	typeof(&__guest_enter) guest_enter;
	typeof(&__kvm_adjust_pc) adjust_pc;
	typeof(&__fpsimd_restore_state) fpsimd_restore_state;
	typeof(&__sve_restore_state) sve_restore_state;
	typeof(&__vgic_v2_perform_cpuif_access) vgic_v2_perform_cpuif_access;
	typeof(&__vgic_v3_perform_cpuif_access) vgic_v3_perform_cpuif_access;
	typeof(&kvm_vhe_populate_fault_info) populate_fault_info;
	typeof(&kvm_skip_instr32) skip_instr32;
	typeof(&vectors) vectors;
} run_hooks;

#define RUN_HOOK_LOOKUP(field, sym)					\
	do {								\
		run_hooks.field = (typeof(run_hooks.field))__symbol_get(#sym); \
		if (!run_hooks.field)					\
			return #sym;					\
	} while (0)

#define HOOK_LOOKUP(field, sym)						\
	do {								\
		hook.field = (typeof(hook.field))__symbol_get(#sym);	\
		if (!hook.field)					\
			return #sym;					\
	} while (0)

const char *vhe_rs_hook_lookup(void)
{
	HOOK_LOOKUP(backend_register, kvm_vhe_backend_register);
	HOOK_LOOKUP(backend_unregister, kvm_vhe_backend_unregister);
	HOOK_LOOKUP(bind_state_to_cpu, fpsimd_bind_state_to_cpu);
	HOOK_LOOKUP(save_and_flush_cpu_state, fpsimd_save_and_flush_cpu_state);
	HOOK_LOOKUP(host_data, kvm_host_data);
	HOOK_LOOKUP(pmu_available, kvm_arm_pmu_available);
	HOOK_LOOKUP(vmid_bits, kvm_arm_vmid_bits);
	HOOK_LOOKUP(vgic_v2_cpuif_trap, vgic_v2_cpuif_trap);
	HOOK_LOOKUP(vgic_v3_cpuif_trap, vgic_v3_cpuif_trap);
	HOOK_LOOKUP(hyp_vector, kvm_hyp_vector);
	HOOK_LOOKUP(this_cpu_vector, this_cpu_vector);
	RUN_HOOK_LOOKUP(guest_enter, __guest_enter);
	RUN_HOOK_LOOKUP(adjust_pc, __kvm_adjust_pc);
	RUN_HOOK_LOOKUP(fpsimd_restore_state, __fpsimd_restore_state);
	RUN_HOOK_LOOKUP(sve_restore_state, __sve_restore_state);
	RUN_HOOK_LOOKUP(vgic_v2_perform_cpuif_access, __vgic_v2_perform_cpuif_access);
	RUN_HOOK_LOOKUP(vgic_v3_perform_cpuif_access, __vgic_v3_perform_cpuif_access);
	RUN_HOOK_LOOKUP(populate_fault_info, kvm_vhe_populate_fault_info);
	RUN_HOOK_LOOKUP(skip_instr32, kvm_skip_instr32);
	RUN_HOOK_LOOKUP(vectors, vectors);
	return NULL;
}

/* ---- parameters ---- */

static bool enable = true;
module_param(enable, bool, 0644);
MODULE_PARM_DESC(enable, "new VMs use the Rust backend (default: yes); VMs keep what they started with");

static char *parts = "fp,sysregs,run,debug";
module_param(parts, charp, 0444);
MODULE_PARM_DESC(parts, "comma-separated parts Rust takes: fp, sysregs, run, debug (default: every one)");

bool vhe_rs_enabled(void)
{
	return READ_ONCE(enable);
}

const char *vhe_rs_parts(void)
{
	return parts;
}

/* ---- counters ---- */

static const char * const stat_names[VHE_RS_NR_STATS] = {
	[VHE_RS_STAT_VM_RUST]		= "vm_rust",
	[VHE_RS_STAT_VM_C_DISABLED]	= "vm_c_disabled",
	[VHE_RS_STAT_VM_C_UNSUPPORTED]	= "vm_c_unsupported",
	[VHE_RS_STAT_VM_DESTROYED]	= "vm_destroyed",
	[VHE_RS_STAT_LOAD_FP]		= "load_fp",
	[VHE_RS_STAT_CTXFLUSH_FOREIGN]	= "ctxflush_fp_foreign",
	[VHE_RS_STAT_CTXSYNC_BIND]	= "ctxsync_fp_bind_guest",
	[VHE_RS_STAT_PUT_FP]		= "put_fp",
	[VHE_RS_STAT_PUT_FP_SAVE]	= "put_fp_save_guest",
	[VHE_RS_STAT_VCPU_LOAD]		= "vcpu_load",
	[VHE_RS_STAT_VCPU_PUT]		= "vcpu_put",
	[VHE_RS_STAT_EXIT_IRQ]		= "exit_irq",
	[VHE_RS_STAT_EXIT_SERROR]	= "exit_serror",
	[VHE_RS_STAT_EXIT_IL]		= "exit_il",
	[VHE_RS_STAT_EXIT_OTHER]	= "exit_other",
	[VHE_RS_STAT_DEBUG_SWITCHED]	= "debug_switched",
	[VHE_RS_STAT_DEBUG_VMM_SS]	= "debug_vmm_ss",
	[VHE_RS_STAT_DEBUG_VMM_HW]	= "debug_vmm_hw",
	[VHE_RS_STAT_DEBUG_OS_LOCK]	= "debug_os_lock",
	[VHE_RS_STAT_RUN_FP_ILLEGAL]	= "bug_run_fp_illegal_transition",
	[VHE_RS_STAT_RUN_NOT_LOADED]	= "bug_run_vcpu_not_loaded",
	[VHE_RS_STAT_LOAD_LOADED]	= "bug_vcpu_load_while_loaded",
	[VHE_RS_STAT_PUT_NOT_LOADED]	= "bug_vcpu_put_not_loaded",
	[VHE_RS_STAT_FP_ILLEGAL]	= "bug_fp_illegal_transition",
	[VHE_RS_STAT_BAD_SLOT]		= "bug_context_slot_out_of_bounds",
	[VHE_RS_STAT_CTXSYNC_IRQS_ON]	= "bug_ctxsync_fp_irqs_on",
	[VHE_RS_STAT_DEBUG_ILLEGAL]	= "bug_debug_vmm_state_without_guest_debug",
};

struct vhe_rs_stats {
	unsigned long n[VHE_RS_NR_STATS];
};

static DEFINE_PER_CPU(struct vhe_rs_stats, vhe_rs_stats);
static DEFINE_PER_CPU(struct vhe_rs_cpu, vhe_rs_cpu);

static_assert(VHE_RS_NR_EC == ESR_ELx_EC_MAX + 1);

void vhe_rs_stat_inc(enum vhe_rs_stat stat)
{
	if (stat < VHE_RS_NR_STATS)
		this_cpu_inc(vhe_rs_stats.n[stat]);
}

/*
 * Something that cannot happen did (rust/kvm/stats.rs: report): counted, and
 * reported once per kind with a WARN. Never called from the no-instrumentation
 * window of the run path.
 */
void vhe_rs_report(enum vhe_rs_stat stat)
{
	static unsigned long warned;

	if (stat < VHE_RS_STAT_FIRST_BUG || stat >= VHE_RS_NR_STATS)
		return;
	this_cpu_inc(vhe_rs_stats.n[stat]);
	/* Once per kind: the bitmap, not WARN_ONCE's one flag for this site. */
	WARN(!test_and_set_bit(stat - VHE_RS_STAT_FIRST_BUG, &warned),
	     "vhe_rs: %s\n", stat_names[stat]);
}

static unsigned long stat_sum(enum vhe_rs_stat stat)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(per_cpu(vhe_rs_stats, cpu).n[stat]);
	return sum;
}

/*
 * The run path's totals, added up from what it counts (one counter per run,
 * one per exit dealt with at EL2, no more, to keep the exit cheap):
 *  - vcpu_run: runs, each ended once: a trap for the host (exits_host[]), an
 *    IRQ, an SError, an illegal exception return, anything else;
 *  - guest_enter: entries into the guest, the runs and every exit dealt with
 *    at EL2 (exits_el2[]);
 *  - fp_trap_shallow: the lazy FP traps served at EL2 (FP_ASIMD and SVE);
 *  - debug_clean_runs: the runs that moved no debug register (the others,
 *    counted, are debug_switched).
 */
static void stats_show_run(struct seq_file *m)
{
	unsigned long runs = 0, el2 = 0, fp = 0;
	unsigned int ec;
	int cpu;

	for_each_possible_cpu(cpu) {
		struct vhe_rs_cpu *c = per_cpu_ptr(&vhe_rs_cpu, cpu);

		for (ec = 0; ec < VHE_RS_NR_EC; ec++) {
			runs += READ_ONCE(c->exits_host[ec]);
			el2 += READ_ONCE(c->exits_el2[ec]);
		}
		fp += READ_ONCE(c->exits_el2[ESR_ELx_EC_FP_ASIMD]) +
		      READ_ONCE(c->exits_el2[ESR_ELx_EC_SVE]);
	}
	runs += stat_sum(VHE_RS_STAT_EXIT_IRQ) + stat_sum(VHE_RS_STAT_EXIT_SERROR) +
		stat_sum(VHE_RS_STAT_EXIT_IL) + stat_sum(VHE_RS_STAT_EXIT_OTHER);
	seq_printf(m, "vcpu_run %lu\n", runs);
	seq_printf(m, "guest_enter %lu\n", runs + el2);
	seq_printf(m, "fp_trap_shallow %lu\n", fp);
	/* The runs whose debug state was clean: no debug register moved. */
	seq_printf(m, "debug_clean_runs %lu\n", runs - stat_sum(VHE_RS_STAT_DEBUG_SWITCHED));
}

static int stats_show(struct seq_file *m, void *v)
{
	unsigned int i;
	int cpu;

	for (i = 0; i < VHE_RS_NR_STATS; i++) {
		unsigned long sum = 0;

		for_each_possible_cpu(cpu)
			sum += READ_ONCE(per_cpu(vhe_rs_stats, cpu).n[i]);
		seq_printf(m, "%s %lu\n", stat_names[i], sum);
	}
	stats_show_run(m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(stats);

/* Exits of Rust-run vCPUs by exception class: dealt with at EL2, returned to the host. */
static int exits_show(struct seq_file *m, void *v)
{
	unsigned int ec;
	int cpu;

	seq_puts(m, "ec el2 host\n");
	for (ec = 0; ec < VHE_RS_NR_EC; ec++) {
		unsigned long el2 = 0, host = 0;

		for_each_possible_cpu(cpu) {
			el2 += READ_ONCE(per_cpu(vhe_rs_cpu, cpu).exits_el2[ec]);
			host += READ_ONCE(per_cpu(vhe_rs_cpu, cpu).exits_host[ec]);
		}
		if (el2 || host)
			seq_printf(m, "0x%02x %lu %lu\n", ec, el2, host);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(exits);

static int backend_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s\n", READ_ONCE(enable) ? "Rust (vhe_rs)" : "C (vhe_rs disabled)");
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(backend);

static struct dentry *vhe_rs_debugfs;

/* Registers the ops table Rust built (rust/kvm/entry.rs); steps left NULL are the built-in C's. */
int vhe_rs_backend_register(const struct kvm_vhe_backend_ops *ops)
{
	int ret;

	ret = hook.backend_register(ops);
	if (ret)
		return ret;
	vhe_rs_debugfs = debugfs_create_dir("vhe_rs", NULL);
	debugfs_create_file("stats", 0444, vhe_rs_debugfs, NULL, &stats_fops);
	debugfs_create_file("backend", 0444, vhe_rs_debugfs, NULL, &backend_fops);
	debugfs_create_file("exits", 0444, vhe_rs_debugfs, NULL, &exits_fops);
	return 0;
}

void vhe_rs_backend_unregister(const struct kvm_vhe_backend_ops *ops)
{
	debugfs_remove_recursive(vhe_rs_debugfs);
	hook.backend_unregister(ops);
}

/* ---- per-CPU and per-vCPU FP state (fpsimd.c's, for a VHE host) ---- */

/*
 * Per-CPU addresses for Rust, which adds this CPU's offset itself (TPIDR_EL2 on
 * a VHE host) instead of calling here on every entry and exit. A VHE host is
 * never protected, so host_data_ptr()'s pKVM arm does not apply.
 */
unsigned long vhe_rs_percpu_host_data(void)
{
	return (unsigned long)hook.host_data;
}

unsigned long vhe_rs_percpu_stats(void)
{
	return (unsigned long)&vhe_rs_stats;
}

unsigned long vhe_rs_percpu_cpu(void)
{
	return (unsigned long)&vhe_rs_cpu;
}

/*
 * The FP steps' calls of the kernel's fpsimd_*() through the pointers looked
 * up at init, which the C makes directly: __nocfi, as the run path's below.
 */
void __nocfi vhe_rs_save_and_flush_cpu_fp(void)
{
	hook.save_and_flush_cpu_state();
}

/* What kvm_arch_vcpu_ctxsync_fp() binds when the guest owns the registers. */
void __nocfi vhe_rs_bind_guest_fp(struct kvm_vcpu *vcpu)
{
	struct cpu_fp_state fp_state = {
		.st		= &vcpu->arch.ctxt.fp_regs,
		.sve_state	= vcpu->arch.sve_state,
		.sve_vl		= vcpu->arch.sve_max_vl,
		.sme_state	= NULL,
		/* No SME guests: SVCR is always 0, it just needs a home. */
		.svcr		= &__vcpu_sys_reg(vcpu, SVCR),
		.fpmr		= &__vcpu_sys_reg(vcpu, FPMR),
		.fp_type	= &vcpu->arch.fp_type,
		.to_save	= vcpu_has_sve(vcpu) ? FP_STATE_SVE : FP_STATE_FPSIMD,
	};

	hook.bind_state_to_cpu(&fp_state);
	clear_thread_flag(TIF_FOREIGN_FPSTATE);
}


unsigned long vhe_rs_local_irq_save(void)
{
	unsigned long flags;

	local_irq_save(flags);
	return flags;
}

void vhe_rs_local_irq_restore(unsigned long flags)
{
	local_irq_restore(flags);
}

/*
 * kvm_arch_vcpu_ctxsync_fp() asserts this (WARN_ON_ONCE). Rust reads DAIF
 * itself, unless pseudo-NMI may mask IRQs through the GIC's PMR instead.
 */
bool vhe_rs_irqs_disabled(void)
{
	return irqs_disabled();
}

/* kvm_arch_vcpu_load_fp()'s BUG_ON(!current->mm), which Rust found false. */
void vhe_rs_bug_no_mm(void)
{
	BUG();
}

/* ---- vcpu_load / vcpu_put: what rust/world/loadput.rs asks of the kernel ---- */

/*
 * The ctxt_has_*() conditions of hyp/include/hyp/sysreg-sr.h for a guest
 * context, and vcpu_el1_is_32bit(), asked of the vCPU directly (that header is
 * hyp-internal): one bit per enum vhe_rs_vcpu_feature, one call per step.
 */
unsigned int vhe_rs_vcpu_features(struct kvm_vcpu *vcpu)
{
	struct kvm *kvm = vcpu->kvm;
	unsigned int f = 0;

	if (cpus_have_final_cap(ARM64_HAS_TCR2) &&
	    kvm_has_feat(kvm, ID_AA64MMFR3_EL1, TCRX, IMP))
		f |= BIT(VHE_RS_VCPU_TCR2);
	if (cpus_have_final_cap(ARM64_HAS_S1PIE) &&
	    kvm_has_feat(kvm, ID_AA64MMFR3_EL1, S1PIE, IMP))
		f |= BIT(VHE_RS_VCPU_S1PIE);
	if (system_supports_poe() &&
	    kvm_has_feat(kvm, ID_AA64MMFR3_EL1, S1POE, IMP))
		f |= BIT(VHE_RS_VCPU_S1POE);
	if (kvm_has_mte(kvm))
		f |= BIT(VHE_RS_VCPU_MTE);
	if (vcpu_el1_is_32bit(vcpu))
		f |= BIT(VHE_RS_VCPU_EL1_32BIT);
	if (vcpu_has_sve(vcpu))
		f |= BIT(VHE_RS_VCPU_SVE);
	if (kvm_has_fpmr(kvm))
		f |= BIT(VHE_RS_VCPU_FPMR);
	return f;
}
/* Reached from the run path when the vCPU was loaded by the C. */
NOKPROBE_SYMBOL(vhe_rs_vcpu_features);

/* Final capabilities, and the PMU key (only ever enabled, at PMU probe). */
bool vhe_rs_cap(enum vhe_rs_cap cap)
{
	switch (cap) {
	case VHE_RS_CAP_RAS:
		return cpus_have_final_cap(ARM64_HAS_RAS_EXTN);
	case VHE_RS_CAP_FGT:
		return cpus_have_final_cap(ARM64_HAS_FGT);
	case VHE_RS_CAP_HCX:
		return cpus_have_final_cap(ARM64_HAS_HCX);
	case VHE_RS_CAP_AMPERE_AC03_CPU_38:
		return cpus_have_final_cap(ARM64_WORKAROUND_AMPERE_AC03_CPU_38);
	case VHE_RS_CAP_SPECULATIVE_AT:
		return cpus_have_final_cap(ARM64_WORKAROUND_SPECULATIVE_AT);
	case VHE_RS_CAP_1508412:
		return cpus_have_final_cap(ARM64_WORKAROUND_1508412);
	case VHE_RS_CAP_PMU_V3:
		/* kvm_arm_support_pmu_v3(), through the looked-up key */
		return static_key_enabled(hook.pmu_available);
	case VHE_RS_CAP_CAVIUM_TX2_219_TVM:
		return cpus_have_final_cap(ARM64_WORKAROUND_CAVIUM_TX2_219_TVM);
	case VHE_RS_CAP_CNTPOFF:
		return has_cntpoff();
	case VHE_RS_CAP_UNMAP_KERNEL_AT_EL0:
		return arm64_kernel_unmapped_at_el0();
	case VHE_RS_CAP_FPSIMD:
		return system_supports_fpsimd();
	case VHE_RS_CAP_SME:
		return system_supports_sme();
	case VHE_RS_CAP_2077057:
		return cpus_have_final_cap(ARM64_WORKAROUND_2077057);
	case VHE_RS_CAP_ECV:
		return cpus_have_final_cap(ARM64_HAS_ECV);
	/* Enabled at vgic probe, when KVM initialises, before the module loads. */
	case VHE_RS_CAP_VGIC_V2_CPUIF_TRAP:
		return static_key_enabled(hook.vgic_v2_cpuif_trap);
	case VHE_RS_CAP_VGIC_V3_CPUIF_TRAP:
		return static_key_enabled(hook.vgic_v3_cpuif_trap);
	case VHE_RS_NR_CAPS:
		break;
	}
	return false;
}

/*
 * The address of kvm_arm_pmu_available, the key of kvm_arm_support_pmu_v3(),
 * which may come on after init: Rust reads its count itself.
 */
unsigned long vhe_rs_pmu_key(void)
{
	return (unsigned long)hook.pmu_available;
}

/*
 * The stage-2 registers of the vCPU's current MMU: kvm_get_vttbr() of
 * asm/kvm_mmu.h, with kvm_arm_vmid_bits reached through the looked-up symbol.
 */
void vhe_rs_vcpu_stage2(struct kvm_vcpu *vcpu, struct vhe_rs_stage2 *s2)
{
	struct kvm_s2_mmu *mmu = vcpu->arch.hw_mmu;
	u64 cnp = system_supports_cnp() ? VTTBR_CNP_BIT : 0;
	u64 vmid_field;

	vmid_field = atomic64_read(&mmu->vmid.id) << VTTBR_VMID_SHIFT;
	vmid_field &= VTTBR_VMID_MASK(*hook.vmid_bits);
	s2->vtcr = mmu->vtcr;
	s2->vttbr = kvm_phys_to_vttbr(mmu->pgd_phys) | vmid_field | cnp;
}

/* ---- the run path (rust/kvm/run.rs) ---- */

unsigned long vhe_rs_percpu_hyp_vector(void)
{
	return (unsigned long)hook.hyp_vector;
}

unsigned long vhe_rs_percpu_this_cpu_vector(void)
{
	return (unsigned long)hook.this_cpu_vector;
}

unsigned long vhe_rs_vectors(void)
{
	return (unsigned long)run_hooks.vectors;
}

/*
 * The Rust run path is one function (rust/kvm/entry.rs), everything it does
 * inlined but these calls into the kernel, each through the pointer looked up
 * at init, to the function the C run path calls at the same point. Like the
 * C's run path, none of it may be kprobed; nothing here may be instrumented,
 * print or fault (tools/noinstr-check reads the disassembly; Kbuild builds the
 * module without instrumentation). __nocfi: the C calls these directly, and
 * most are asm without a kCFI type hash (__guest_enter, __fpsimd_restore_state):
 * a kCFI-checked call through the pointer would fail on them, with a brk in
 * the no-instrumentation window.
 */
int vhe_rs_vcpu_run(struct kvm_vcpu *vcpu);
NOKPROBE_SYMBOL(vhe_rs_vcpu_run);

u64 __nocfi vhe_rs_guest_enter(struct kvm_vcpu *vcpu)
{
	return run_hooks.guest_enter(vcpu);
}
NOKPROBE_SYMBOL(vhe_rs_guest_enter);

void __nocfi vhe_rs_adjust_pc(struct kvm_vcpu *vcpu)
{
	run_hooks.adjust_pc(vcpu);
}
NOKPROBE_SYMBOL(vhe_rs_adjust_pc);



/* kvm_hyp_handle_fpsimd()'s __fpsimd_restore_state(&vcpu->arch.ctxt.fp_regs) */
void __nocfi vhe_rs_fpsimd_restore_guest(struct kvm_vcpu *vcpu)
{
	run_hooks.fpsimd_restore_state(&vcpu->arch.ctxt.fp_regs);
}
NOKPROBE_SYMBOL(vhe_rs_fpsimd_restore_guest);

/*
 * __hyp_sve_restore_guest()'s __sve_restore_state(), at the VL Rust put in
 * ZCR_EL2: vcpu_sve_pffr() without its kern_hyp_va(), the identity on VHE.
 */
void __nocfi vhe_rs_sve_restore_guest(struct kvm_vcpu *vcpu)
{
	run_hooks.sve_restore_state((char *)vcpu->arch.sve_state +
				    sve_ffr_offset(vcpu->arch.sve_max_vl),
				    &vcpu->arch.ctxt.fp_regs.fpsr, true);
}
NOKPROBE_SYMBOL(vhe_rs_sve_restore_guest);


int __nocfi vhe_rs_vgic_v2_cpuif_access(struct kvm_vcpu *vcpu)
{
	return run_hooks.vgic_v2_perform_cpuif_access(vcpu);
}
NOKPROBE_SYMBOL(vhe_rs_vgic_v2_cpuif_access);

int __nocfi vhe_rs_vgic_v3_cpuif_access(struct kvm_vcpu *vcpu)
{
	return run_hooks.vgic_v3_perform_cpuif_access(vcpu);
}
NOKPROBE_SYMBOL(vhe_rs_vgic_v3_cpuif_access);

bool __nocfi vhe_rs_populate_fault_info(struct kvm_vcpu *vcpu)
{
	return run_hooks.populate_fault_info(vcpu);
}
NOKPROBE_SYMBOL(vhe_rs_populate_fault_info);

void __nocfi vhe_rs_skip_instr32(struct kvm_vcpu *vcpu)
{
	run_hooks.skip_instr32(vcpu);
}
NOKPROBE_SYMBOL(vhe_rs_skip_instr32);

