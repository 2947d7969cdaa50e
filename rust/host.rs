// SPDX-License-Identifier: GPL-2.0

//! Facts about the host, asked once at module init through the C glue
//! (`arch/arm64/glue/host.c`, `arch/arm64/glue/backend.c`).

use core::ffi::{c_char, CStr};

extern "C" {
    fn vhe_rs_host_unsupported() -> *const c_char;
    fn vhe_rs_hook_lookup() -> *const c_char;
}

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
    unsafe { static_str(vhe_rs_host_unsupported()) }
}

/// Looks up, by name, what the module needs from the kernel's hook series
/// (`arch/arm64/patches`); returns the first symbol this kernel does not
/// export, or `None` if it has them all (and the glue now holds them).
pub(crate) fn missing_hook_symbol() -> Option<&'static CStr> {
    // SAFETY: `vhe_rs_hook_lookup` is called once, from module init, before
    // the backend is registered (nothing reads what it fills in yet); it
    // returns NULL or the symbol's name, a static string literal.
    unsafe { static_str(vhe_rs_hook_lookup()) }
}
