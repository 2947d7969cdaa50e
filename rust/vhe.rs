// SPDX-License-Identifier: GPL-2.0

//! vhe-rs: the KVM/arm64 VHE world switch in Rust.
//!
//! This is the crate root of the `vhe_rs` module. At this stage the module checks
//! that the host is one it can serve (VHE, KVM on, not protected) and refuses to
//! load otherwise, with a dmesg line saying why. The backend hook and the parts of
//! the world switch it takes over are added on top of this.

use kernel::prelude::*;

mod host;
pub mod sysreg;

module! {
    type: VheRs,
    name: "vhe_rs",
    author: "vhe-rs developers",
    description: "KVM/arm64 VHE world switch in Rust",
    license: "GPL",
}

/// The loaded module.
struct VheRs;

impl kernel::Module for VheRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if let Some(why) = host::unsupported_reason() {
            pr_err!("unsupported host: {}; not loading\n", why.to_str().unwrap_or("?"));
            return Err(ENODEV);
        }
        pr_info!("loaded on a VHE host (backend hook: not present in this kernel, guests run on the built-in C)\n");
        Ok(VheRs)
    }
}

impl Drop for VheRs {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
