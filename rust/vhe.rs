// SPDX-License-Identifier: GPL-2.0

//! vhe-rs: the KVM/arm64 VHE world switch in Rust.
//!
//! This is the crate root of the `vhe_rs` module. At init it checks that the host
//! is one it can serve (VHE, not protected), parses the `parts` parameter and
//! registers with KVM as the VHE backend (the hook of `arch/arm64/patches`). Each
//! VM then chooses its backend once: created while `enable` is set and confirmed
//! at its first KVM_RUN, it runs the parts in `parts` in Rust and the rest in the
//! built-in C.
//!
//! The layers (`Documentation/design.rst`): [`arch`], the register layer;
//! [`world`], the switch's logic in safe Rust; `kvm`, the binding layer; and
//! [`parts`]. This file calls `kvm` only and has no `unsafe` (the crate root
//! cannot forbid it: `module!` expands to `unsafe` here).

use kernel::prelude::*;

pub mod arch;
mod kvm;
pub mod parts;
pub mod world;

module! {
    type: VheRs,
    name: "vhe_rs",
    author: "vhe-rs developers",
    description: "KVM/arm64 VHE world switch in Rust",
    license: "GPL",
}

/// The loaded module: registered with KVM as the VHE backend until dropped.
struct VheRs {
    backend: Option<kvm::Registration>,
}

impl kernel::Module for VheRs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        if let Some(why) = kvm::unsupported_reason() {
            pr_err!(
                "unsupported host: {}; not loading\n",
                why.to_str().unwrap_or("?")
            );
            return Err(ENODEV);
        }
        let hook = kvm::Hook::look_up().map_err(|sym| {
            pr_err!(
                "this kernel has no VHE backend hook: it does not export {}; \
                 build it with the series in vhe-rs's arch/arm64/patches (make kernel)\n",
                sym.to_str().unwrap_or("?")
            );
            ENOENT
        })?;
        let param = kvm::parts_param().to_str().map_err(|_| EINVAL)?;
        let parts = parts::Parts::parse(param).map_err(|name| {
            pr_err!(
                "parts: '{}' is not a part this module implements (implemented: {})\n",
                name,
                parts::Implemented
            );
            EINVAL
        })?;
        let backend = kvm::Registration::new(module, parts, &hook).inspect_err(|e| {
            pr_err!(
                "KVM refused the backend (error {}): see the kvm message above\n",
                e.to_errno()
            );
        })?;
        pr_info!(
            "loaded on a VHE host: new VMs run these parts in Rust: {}\n",
            param
        );
        Ok(VheRs {
            backend: Some(backend),
        })
    }
}

impl Drop for VheRs {
    fn drop(&mut self) {
        drop(self.backend.take());
        pr_info!("unloaded\n");
    }
}
