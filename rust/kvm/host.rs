// SPDX-License-Identifier: GPL-2.0

//! Facts about the host, asked once at module init through the C glue
//! (`arch/arm64/glue/host.c`, `arch/arm64/glue/backend.c`).

use super::glue;
use core::ffi::{c_char, CStr};
use core::sync::atomic::{AtomicBool, Ordering};

/// `None` for NULL, else the static string the glue returned.
///
/// # Safety
///
/// `p` is NULL or points to a static NUL-terminated string literal of the glue.
unsafe fn static_str(p: *const c_char) -> Option<&'static CStr> {
    // SAFETY: non-null `p` is a static NUL-terminated literal (the caller's contract).
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) })
}

/// Returns why this host cannot run the Rust backend, or `None` if it can
/// (a VHE host with KVM enabled and not protected).
pub(crate) fn unsupported_reason() -> Option<&'static CStr> {
    // SAFETY: `vhe_rs_host_unsupported` takes no arguments, reads only final
    // (boot-time) capabilities and returns NULL or a static string literal.
    unsafe { static_str(glue::vhe_rs_host_unsupported()) }
}

/// Proof that the hook series' symbols were found (see [`Hook::look_up`]).
pub(crate) struct Hook(());

/// Set once the glue holds the hook series' symbols.
static LOOKED_UP: AtomicBool = AtomicBool::new(false);

impl Hook {
    /// Looks up, by name, what the module needs from the kernel's hook series
    /// (`arch/arm64/patches`); fails with the first symbol this kernel does
    /// not export. Looks up only once: the glue's pointers are not rewritten
    /// while steps may read them.
    pub(crate) fn look_up() -> core::result::Result<Hook, &'static CStr> {
        if LOOKED_UP.load(Ordering::Acquire) {
            return Ok(Hook(()));
        }
        // Nothing reads what the lookup fills in before it succeeded
        // (`LOOKED_UP` is clear, so no backend is registered), and module init,
        // the only caller, does not run twice at once.
        // SAFETY: as just said; it returns NULL or a static string literal.
        match unsafe { static_str(glue::vhe_rs_hook_lookup()) } {
            Some(missing) => Err(missing),
            None => {
                LOOKED_UP.store(true, Ordering::Release);
                Ok(Hook(()))
            }
        }
    }
}

/// The `parts` module parameter.
pub(crate) fn parts_param() -> &'static CStr {
    // SAFETY: `parts` is a read-only (0444) charp parameter: its string lives as
    // long as the module and is NUL-terminated.
    unsafe { CStr::from_ptr(glue::vhe_rs_parts()) }
}

/// Whether new VMs take the backend (the `enable` module parameter).
pub(crate) fn enabled() -> bool {
    // SAFETY: reads the `enable` module parameter.
    unsafe { glue::vhe_rs_enabled() }
}
