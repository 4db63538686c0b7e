//! # npmk-ffi: the C ABI of npmk
//!
//! Builds `libnpmk.so` and `libnpmk.a` for C and C++ callers; the interface is declared in
//! `include/npmk.h`, which is written by hand and checked against the exported symbols and the
//! struct layouts asserted here. Conventions, shared by every export:
//!
//! * opaque handles (`npmk_sketch`, `npmk_monitor`) with `_new` / `_free` pairs; free of NULL
//!   does nothing;
//! * an `int32_t` status (`NPMK_OK` = 0, else an `NPMK_ERR_*` code) and a per-thread message,
//!   [`npmk_last_error_message`];
//! * out-parameters come last and are written only on success;
//! * every export runs behind a panic boundary: a Rust panic becomes `NPMK_ERR_PANIC`;
//! * data pointers need no particular alignment.
//!
//! Element data is read in native byte order, which must be little-endian (x86-64, AArch64,
//! RISC-V and POWER little-endian; big-endian hosts are not supported).
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!(
    "npmk's C ABI reads element data as little-endian; big-endian hosts are unsupported"
);

mod codec;
mod error;
mod monitor;
mod sketch;

use std::ffi::c_char;

pub use error::{
    NPMK_ERR_BAD_FORMAT, NPMK_ERR_BUFFER_TOO_SMALL, NPMK_ERR_CALL_ORDER,
    NPMK_ERR_INSUFFICIENT_DATA, NPMK_ERR_INVALID_ARGUMENT, NPMK_ERR_IO, NPMK_ERR_NULL_ARGUMENT,
    NPMK_ERR_PANIC, NPMK_ERR_UNSUPPORTED_DTYPE, NPMK_OK,
};
pub use monitor::*;
pub use sketch::*;

/// Words in a sketch's state (`NPMK_STATE_WORDS` in C).
pub const NPMK_STATE_WORDS: usize = npmk::layout::STATE_WORDS;

const VERSION: &std::ffi::CStr = {
    match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the package version contains a NUL byte"),
    }
};

/// The library version, "MAJOR.MINOR.PATCH", as a static string. Compare it with the header's
/// `NPMK_VERSION_*` macros to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn npmk_version() -> *const c_char {
    error::guard_value("npmk_version", VERSION.as_ptr(), || VERSION.as_ptr())
}

/// The message of the most recent failed call on the calling thread ("" if none has failed).
/// The string belongs to the library and stays valid until the next failing call on the same
/// thread. Successful calls leave it unchanged.
#[no_mangle]
pub extern "C" fn npmk_last_error_message() -> *const c_char {
    error::guard_value("npmk_last_error_message", c"".as_ptr(), error::last_error_ptr)
}

/// The symbolic name of a status code ("NPMK_OK", "NPMK_ERR_IO", ...), as a static string;
/// "NPMK_ERR_UNKNOWN" for a code the library never returns.
#[no_mangle]
pub extern "C" fn npmk_status_name(code: i32) -> *const c_char {
    error::guard_value("npmk_status_name", c"NPMK_ERR_UNKNOWN".as_ptr(), || {
        error::status_name(code).as_ptr()
    })
}
