/* SPDX-License-Identifier: GPL-2.0 */
/* vhe-rs: the C glue's functions, as the Rust binding layer declares them. */
#ifndef VHE_RS_GLUE_H
#define VHE_RS_GLUE_H

const char *vhe_rs_host_unsupported(void);

#endif
