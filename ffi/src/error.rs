//! Status codes, the per-thread error message and the panic boundary every export sits behind.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Success.
pub const NPMK_OK: i32 = 0;
/// A pointer argument that must not be NULL was NULL.
pub const NPMK_ERR_NULL_ARGUMENT: i32 = 1;
/// An argument is out of its documented range (a trim, a quantile, a length, an option).
pub const NPMK_ERR_INVALID_ARGUMENT: i32 = 2;
/// The dtype code is not one of the `NPMK_DTYPE_*` values.
pub const NPMK_ERR_UNSUPPORTED_DTYPE: i32 = 3;
/// Opening or writing a file failed.
pub const NPMK_ERR_IO: i32 = 4;
/// Bytes or a state array that no sketch produces (bad magic, checksum, or counts that do not
/// add up).
pub const NPMK_ERR_BAD_FORMAT: i32 = 5;
/// Too little data for the answer asked for (a fit needs 100 usable elements and 2 distinct
/// values; a quantile needs one element).
pub const NPMK_ERR_INSUFFICIENT_DATA: i32 = 6;
/// A Rust panic was caught at the boundary: a bug in npmk. The handle involved should be freed
/// and not used otherwise.
pub const NPMK_ERR_PANIC: i32 = 7;
/// The caller's buffer is smaller than the result (see `npmk_sketch_encoded_len`).
pub const NPMK_ERR_BUFFER_TOO_SMALL: i32 = 8;
/// Monitor calls out of order (a push outside `begin_step` .. `end_step`, say).
pub const NPMK_ERR_CALL_ORDER: i32 = 9;

/// A failed call: its status code and what went wrong.
#[derive(Debug)]
pub(crate) struct Error {
    pub code: i32,
    pub message: String,
}

impl Error {
    pub fn new(code: i32, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }

    /// A NULL pointer where `arg` must point somewhere.
    pub fn null(arg: &str) -> Error {
        Error::new(NPMK_ERR_NULL_ARGUMENT, format!("argument `{arg}` is NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(NPMK_ERR_INVALID_ARGUMENT, message)
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

thread_local! {
    /// The message of this thread's most recent failed call.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error. Interior NUL bytes (from a tensor name, say)
/// are replaced so the C string is never cut short silently.
fn set_last_error(message: String) {
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // During thread teardown the slot may be gone; the status code still tells the story.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = message);
}

/// The message of this thread's most recent failed call; "" if none.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.try_with(|slot| slot.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Runs the body of export `func`, turning its error or panic into a status code and the
/// per-thread message. No panic crosses into C.
pub(crate) fn guard(func: &'static str, body: impl FnOnce() -> Result<()>) -> i32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => NPMK_OK,
        Ok(Err(e)) => {
            set_last_error(format!("{func}: {}", e.message));
            e.code
        }
        Err(payload) => {
            set_last_error(format!("{func}: internal panic: {}", panic_text(&*payload)));
            NPMK_ERR_PANIC
        }
    }
}

/// For exports that return no status (`_free`, version strings): a panic is caught and the
/// fallback value returned instead.
pub(crate) fn guard_value<T>(func: &'static str, fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            set_last_error(format!("{func}: internal panic: {}", panic_text(&*payload)));
            fallback
        }
    }
}

/// The symbolic name of a status code, "NPMK_ERR_UNKNOWN" for a code npmk never returns.
pub(crate) fn status_name(code: i32) -> &'static std::ffi::CStr {
    match code {
        NPMK_OK => c"NPMK_OK",
        NPMK_ERR_NULL_ARGUMENT => c"NPMK_ERR_NULL_ARGUMENT",
        NPMK_ERR_INVALID_ARGUMENT => c"NPMK_ERR_INVALID_ARGUMENT",
        NPMK_ERR_UNSUPPORTED_DTYPE => c"NPMK_ERR_UNSUPPORTED_DTYPE",
        NPMK_ERR_IO => c"NPMK_ERR_IO",
        NPMK_ERR_BAD_FORMAT => c"NPMK_ERR_BAD_FORMAT",
        NPMK_ERR_INSUFFICIENT_DATA => c"NPMK_ERR_INSUFFICIENT_DATA",
        NPMK_ERR_PANIC => c"NPMK_ERR_PANIC",
        NPMK_ERR_BUFFER_TOO_SMALL => c"NPMK_ERR_BUFFER_TOO_SMALL",
        NPMK_ERR_CALL_ORDER => c"NPMK_ERR_CALL_ORDER",
        _ => c"NPMK_ERR_UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: the pointer is this thread's live message, read before any other call.
        unsafe { CStr::from_ptr(last_error_ptr()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let code = guard("npmk_test", || panic!("boom {}", 7));
        assert_eq!(code, NPMK_ERR_PANIC);
        assert_eq!(last(), "npmk_test: internal panic: boom 7");
        let v = guard_value("npmk_test", 5, || -> i32 { panic!("static text") });
        assert_eq!(v, 5);
        assert!(last().ends_with("static text"));
    }

    #[test]
    fn errors_carry_code_function_and_message() {
        let code = guard("npmk_f", || Err(Error::null("out")));
        assert_eq!(code, NPMK_ERR_NULL_ARGUMENT);
        assert_eq!(last(), "npmk_f: argument `out` is NULL");
        // Success leaves the previous message in place (errno-like).
        assert_eq!(guard("npmk_g", || Ok(())), NPMK_OK);
        assert_eq!(last(), "npmk_f: argument `out` is NULL");
        // Interior NULs are escaped rather than truncating the message.
        guard("npmk_h", || Err(Error::invalid("name a\0b")));
        assert_eq!(last(), "npmk_h: name a\\0b");
    }

    #[test]
    fn messages_are_per_thread() {
        guard("npmk_main", || Err(Error::invalid("main thread")));
        std::thread::spawn(|| {
            assert_eq!(last(), "");
            guard("npmk_other", || Err(Error::invalid("other thread")));
            assert_eq!(last(), "npmk_other: other thread");
        })
        .join()
        .unwrap();
        assert_eq!(last(), "npmk_main: main thread");
    }

    #[test]
    fn every_code_has_a_distinct_name() {
        let names: Vec<_> = (0..=9).map(status_name).collect();
        for (i, a) in names.iter().enumerate() {
            assert_ne!(a.to_bytes(), b"NPMK_ERR_UNKNOWN", "code {i}");
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(status_name(10), c"NPMK_ERR_UNKNOWN");
    }
}
