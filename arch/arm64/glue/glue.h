/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhe-rs: the interface between the C glue (arch/arm64/glue/) and Rust.
 * Kept to plain C types.
 *
 * This file is the one definition of it. Kbuild runs bindgen over it into
 * rust/generated/glue.rs: the Rust side calls the functions declared here,
 * with the types declared here, and reads the enums' members from there. Rust
 * mirrors each enum as a Rust enum (rust/kvm/glue.rs, c_enum!) and checks at
 * build time, member by member, that its value is the one bindgen got from
 * here, and the count against the VHE_RS_NR_* member: reordering, adding or
 * removing a member on one side only fails the build.
 */
#ifndef VHE_RS_GLUE_H
#define VHE_RS_GLUE_H

#ifdef __BINDGEN__
/* bindgen reads this file alone, without the kernel's headers. */
#define bool _Bool
#define u64 unsigned long long
#else
#include <linux/types.h>
#endif

struct kvm;
struct kvm_vcpu;

/* host.c */
const char *vhe_rs_host_unsupported(void);

struct kvm_vhe_backend_ops;

/* What vhe_rs_cap() answers (rust/kvm/glue.rs: Cap). */
enum vhe_rs_cap {
	VHE_RS_CAP_RAS,
	VHE_RS_CAP_FGT,
	VHE_RS_CAP_HCX,
	VHE_RS_CAP_AMPERE_AC03_CPU_38,
	VHE_RS_CAP_SPECULATIVE_AT,
	VHE_RS_CAP_1508412,
	VHE_RS_CAP_PMU_V3,
	VHE_RS_CAP_CAVIUM_TX2_219_TVM,
	VHE_RS_CAP_CNTPOFF,
	VHE_RS_CAP_UNMAP_KERNEL_AT_EL0,
	VHE_RS_CAP_FPSIMD,
	VHE_RS_CAP_SME,
	VHE_RS_CAP_2077057,
	VHE_RS_CAP_ECV,
	VHE_RS_CAP_VGIC_V2_CPUIF_TRAP,
	VHE_RS_CAP_VGIC_V3_CPUIF_TRAP,
	VHE_RS_NR_CAPS
};

/* What vhe_rs_vcpu_features() answers, one bit each (rust/kvm/glue.rs: VcpuFeature). */
enum vhe_rs_vcpu_feature {
	VHE_RS_VCPU_TCR2,
	VHE_RS_VCPU_S1PIE,
	VHE_RS_VCPU_S1POE,
	VHE_RS_VCPU_MTE,
	VHE_RS_VCPU_EL1_32BIT,
	VHE_RS_VCPU_SVE,
	VHE_RS_VCPU_FPMR,
	VHE_RS_NR_VCPU_FEATURES
};

/* Counters in debugfs vhe_rs/stats (rust/kvm/glue.rs: Stat). */
enum vhe_rs_stat {
	VHE_RS_STAT_VM_RUST,
	VHE_RS_STAT_VM_C_DISABLED,
	VHE_RS_STAT_VM_C_UNSUPPORTED,
	VHE_RS_STAT_VM_DESTROYED,
	VHE_RS_STAT_LOAD_FP,
	VHE_RS_STAT_CTXFLUSH_FOREIGN,
	VHE_RS_STAT_CTXSYNC_BIND,
	VHE_RS_STAT_PUT_FP,
	VHE_RS_STAT_PUT_FP_SAVE,
	VHE_RS_STAT_VCPU_LOAD,
	VHE_RS_STAT_VCPU_PUT,
	/* Runs of the Rust run path that ended in an IRQ, SError, illegal
	 * exception return or anything else but a trap (traps: exits_host[]). */
	VHE_RS_STAT_EXIT_IRQ,
	VHE_RS_STAT_EXIT_SERROR,
	VHE_RS_STAT_EXIT_IL,
	VHE_RS_STAT_EXIT_OTHER,
	/* Runs that switched the debug registers (DEBUG_DIRTY at entry). */
	VHE_RS_STAT_DEBUG_SWITCHED,
	/* setup_debug (rust/world/debug_state.rs): entries with the VMM
	 * single-stepping, with the VMM's hardware breakpoints, and with the
	 * guest's OS lock set while the VMM debugs nothing. */
	VHE_RS_STAT_DEBUG_VMM_SS,
	VHE_RS_STAT_DEBUG_VMM_HW,
	VHE_RS_STAT_DEBUG_OS_LOCK,
	/* Found where nothing may print (the run path; vcpu_load/vcpu_put, which
	 * the scheduler calls with its runqueue locked): counted only (see
	 * debugfs). vcpu_load/vcpu_put: this CPU already had a vCPU loaded by the
	 * backend, or had none to put. */
	VHE_RS_STAT_RUN_FP_ILLEGAL,
	VHE_RS_STAT_RUN_NOT_LOADED,
	VHE_RS_STAT_LOAD_LOADED,
	VHE_RS_STAT_PUT_NOT_LOADED,
	/* Reported with a WARN (once each) too: a bug in KVM or in the backend. */
	VHE_RS_STAT_FP_ILLEGAL,
	VHE_RS_STAT_BAD_SLOT,
	VHE_RS_STAT_CTXSYNC_IRQS_ON,
	VHE_RS_STAT_DEBUG_ILLEGAL,
	VHE_RS_NR_STATS
};
#define VHE_RS_STAT_FIRST_BUG	VHE_RS_STAT_FP_ILLEGAL

/* backend.c */
const char *vhe_rs_hook_lookup(void);
bool vhe_rs_enabled(void);
const char *vhe_rs_parts(void);
void vhe_rs_stat_inc(enum vhe_rs_stat stat);
void vhe_rs_report(enum vhe_rs_stat stat);
int vhe_rs_backend_register(const struct kvm_vhe_backend_ops *ops);
void vhe_rs_backend_unregister(const struct kvm_vhe_backend_ops *ops);
unsigned long vhe_rs_percpu_host_data(void);
unsigned long vhe_rs_percpu_stats(void);
void vhe_rs_save_and_flush_cpu_fp(void);
void vhe_rs_bind_guest_fp(struct kvm_vcpu *vcpu);
unsigned long vhe_rs_local_irq_save(void);
void vhe_rs_local_irq_restore(unsigned long flags);
bool vhe_rs_irqs_disabled(void);
void vhe_rs_bug_no_mm(void);
unsigned int vhe_rs_vcpu_features(struct kvm_vcpu *vcpu);
bool vhe_rs_cap(enum vhe_rs_cap cap);
unsigned long vhe_rs_pmu_key(void);
/* What vhe_rs_vcpu_stage2() answers: the vCPU's stage-2 translation. */
struct vhe_rs_stage2 {
	u64 vtcr;
	u64 vttbr;
};

void vhe_rs_vcpu_stage2(struct kvm_vcpu *vcpu, struct vhe_rs_stage2 *s2);

/* ---- the run path (rust/kvm/run.rs) ---- */

/* ESR_ELx.EC values: ESR_ELx_EC_MAX + 1 (checked in backend.c). */
#define VHE_RS_NR_EC 64

/*
 * One CPU's run-path state, a per-CPU variable of backend.c: the features of
 * the vCPU loaded on this CPU (set at vcpu_load: what the per-entry register
 * moves need), and the exits by exception class, dealt with at EL2 or
 * returned to the host (debugfs vhe_rs/exits).
 */
struct vhe_rs_cpu {
	unsigned long loaded_features;
	unsigned long exits_el2[VHE_RS_NR_EC];
	unsigned long exits_host[VHE_RS_NR_EC];
};

unsigned long vhe_rs_percpu_cpu(void);

/* The addresses the run path writes to VBAR (read at registration). */
unsigned long vhe_rs_percpu_hyp_vector(void);
unsigned long vhe_rs_percpu_this_cpu_vector(void);
unsigned long vhe_rs_vectors(void);

/*
 * What the run path calls in the kernel: each the exported function of the
 * series it is named after (looked up at init), called through its pointer.
 */
u64 vhe_rs_guest_enter(struct kvm_vcpu *vcpu);
void vhe_rs_adjust_pc(struct kvm_vcpu *vcpu);
void vhe_rs_fpsimd_restore_guest(struct kvm_vcpu *vcpu);
void vhe_rs_sve_restore_guest(struct kvm_vcpu *vcpu);
int vhe_rs_vgic_v2_cpuif_access(struct kvm_vcpu *vcpu);
int vhe_rs_vgic_v3_cpuif_access(struct kvm_vcpu *vcpu);
bool vhe_rs_populate_fault_info(struct kvm_vcpu *vcpu);
void vhe_rs_skip_instr32(struct kvm_vcpu *vcpu);

#endif
