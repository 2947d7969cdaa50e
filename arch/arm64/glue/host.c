// SPDX-License-Identifier: GPL-2.0
/*
 * vhe-rs: C glue for facts about the host that only C can ask (static inlines,
 * final capabilities). Called from rust/kvm/host.rs once, at module init.
 */
#include <asm/cpufeature.h>
#include <asm/virt.h>

#include "glue.h"

/* Why the host cannot use the Rust backend, or NULL if it can. */
const char *vhe_rs_host_unsupported(void)
{
	/* The kernel runs at EL2 only with VHE (E2H=1): not on nVHE, hVHE or pKVM. */
	if (!is_kernel_in_hyp_mode())
		return "the kernel does not run at EL2: not a VHE host (nVHE, hVHE, pKVM or no EL2)";
	if (!has_vhe())
		return "ARM64_HAS_VIRT_HOST_EXTN is not set";
	return NULL;
}
