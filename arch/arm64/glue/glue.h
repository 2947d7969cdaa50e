/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhe-rs: the interface between the C glue (arch/arm64/glue/) and Rust
 * (rust/backend.rs declares the same functions). Kept to plain C types.
 */
#ifndef VHE_RS_GLUE_H
#define VHE_RS_GLUE_H

#include <linux/types.h>

struct kvm;
struct kvm_vcpu;

/* host.c */
const char *vhe_rs_host_unsupported(void);

/* Steps the backend can take (module parameter "parts"). */
#define VHE_RS_PART_FP		(1U << 0)
#define VHE_RS_PART_SYSREGS	(1U << 1)

/* What vhe_rs_cap() answers: rust/backend.rs has the same list (Cap). */
enum vhe_rs_cap {
	VHE_RS_CAP_RAS,
	VHE_RS_CAP_FGT,
	VHE_RS_CAP_HCX,
	VHE_RS_CAP_AMPERE_AC03_CPU_38,
	VHE_RS_CAP_SPECULATIVE_AT,
	VHE_RS_CAP_1508412,
	VHE_RS_CAP_PMU_V3,
};

/* What vhe_rs_vcpu_features() answers, one bit each: rust/backend.rs has the same list. */
enum vhe_rs_vcpu_feature {
	VHE_RS_VCPU_TCR2,
	VHE_RS_VCPU_S1PIE,
	VHE_RS_VCPU_S1POE,
	VHE_RS_VCPU_MTE,
	VHE_RS_VCPU_EL1_32BIT,
	VHE_RS_NR_VCPU_FEATURES
};

/* Counters in debugfs vhe_rs/stats. */
enum vhe_rs_stat {
	VHE_RS_STAT_VM_RUST,
	VHE_RS_STAT_VM_C_DISABLED,
	VHE_RS_STAT_VM_C_UNSUPPORTED,
	VHE_RS_STAT_VM_DESTROYED,
	VHE_RS_STAT_LOAD_FP,
	VHE_RS_STAT_CTXFLUSH_FP,
	VHE_RS_STAT_CTXFLUSH_FOREIGN,
	VHE_RS_STAT_CTXSYNC_FP,
	VHE_RS_STAT_CTXSYNC_BIND,
	VHE_RS_STAT_PUT_FP,
	VHE_RS_STAT_PUT_FP_SAVE,
	VHE_RS_STAT_VCPU_LOAD,
	VHE_RS_STAT_VCPU_PUT,
	VHE_RS_NR_STATS
};

/* backend.c */
const char *vhe_rs_hook_lookup(void);
bool vhe_rs_enabled(void);
const char *vhe_rs_parts(void);
void vhe_rs_stat_inc(unsigned int stat);
int vhe_rs_backend_register(unsigned int part_mask);
void vhe_rs_backend_unregister(void);
unsigned long vhe_rs_percpu_host_data(void);
unsigned long vhe_rs_percpu_stats(void);
unsigned int vhe_rs_nr_stats(void);
bool vhe_rs_system_supports_fpsimd(void);
bool vhe_rs_foreign_fpstate(void);
void vhe_rs_save_and_flush_cpu_fp(void);
void vhe_rs_bind_guest_fp(struct kvm_vcpu *vcpu);
bool vhe_rs_vcpu_has_sve(const struct kvm_vcpu *vcpu);
unsigned long vhe_rs_local_irq_save(void);
void vhe_rs_local_irq_restore(unsigned long flags);
unsigned int vhe_rs_vcpu_features(struct kvm_vcpu *vcpu);
unsigned int vhe_rs_nr_vcpu_features(void);
bool vhe_rs_cap(enum vhe_rs_cap cap);
void vhe_rs_vcpu_set_sysregs_on_cpu(struct kvm_vcpu *vcpu, bool on);
void vhe_rs_vcpu_set_pmuserenr_on_cpu(struct kvm_vcpu *vcpu, bool on);
void vhe_rs_vcpu_stage2(struct kvm_vcpu *vcpu, u64 *vtcr, u64 *vttbr);

/* Rust (rust/backend.rs): the backend's steps. */
bool vhe_rs_vm_init(struct kvm *kvm);
bool vhe_rs_vm_supported(struct kvm *kvm);
void vhe_rs_vm_destroy(struct kvm *kvm);
void vhe_rs_load_fp(struct kvm_vcpu *vcpu);
void vhe_rs_ctxflush_fp(struct kvm_vcpu *vcpu);
void vhe_rs_ctxsync_fp(struct kvm_vcpu *vcpu);
void vhe_rs_put_fp(struct kvm_vcpu *vcpu);
void vhe_rs_vcpu_load(struct kvm_vcpu *vcpu);
void vhe_rs_vcpu_put(struct kvm_vcpu *vcpu);

#endif
