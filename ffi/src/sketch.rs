//! `npmk_sketch_*`: the mergeable sketch of |w| behind an opaque handle.

use std::ffi::c_void;

use npmk::layout::STATE_WORDS;
use npmk::{Dtype, NoFit, Sketch, Trim};

use crate::codec;
use crate::error::{
    guard, guard_value, Error, Result, NPMK_ERR_BAD_FORMAT, NPMK_ERR_BUFFER_TOO_SMALL,
    NPMK_ERR_INSUFFICIENT_DATA, NPMK_ERR_UNSUPPORTED_DTYPE,
};

/// Element type code: IEEE binary32.
pub const NPMK_DTYPE_F32: i32 = 1;
/// Element type code: IEEE binary16.
pub const NPMK_DTYPE_F16: i32 = 2;
/// Element type code: bfloat16.
pub const NPMK_DTYPE_BF16: i32 = 3;

/// The result of a fit (`npmk_fit` in C). The first five fields are fixed by the ABI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NpmkFit {
    /// Weibull shape: the slope of the Weibull plot.
    pub k: f64,
    /// Weibull scale, in the units of the weights.
    pub lambda: f64,
    /// Coefficient of determination of the regression.
    pub r2: f64,
    /// Kolmogorov-Smirnov distance over the kept ranks.
    pub ks: f64,
    /// Ranks in the regression.
    pub n_used: u64,
    /// Finite non-zero elements in the sketch (the n of the plotting positions).
    pub n_usable: u64,
}

/// Element counts by sort (`npmk_counts` in C).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NpmkCounts {
    /// Every element pushed.
    pub total: u64,
    /// Finite non-zero elements: the ones a fit uses.
    pub usable: u64,
    /// +0.0 and -0.0.
    pub zero: u64,
    /// NaN, any payload.
    pub nan: u64,
    /// +Inf.
    pub pos_inf: u64,
    /// -Inf.
    pub neg_inf: u64,
    /// Non-zero values subnormal in their own dtype (also counted in `usable`).
    pub subnormal: u64,
}

// The C header states these offsets; the C tests assert the same numbers from the C side.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<NpmkFit>() == 48 && offset_of!(NpmkFit, n_used) == 32);
    assert!(offset_of!(NpmkFit, n_usable) == 40);
    assert!(size_of::<NpmkCounts>() == 56 && offset_of!(NpmkCounts, subnormal) == 48);
};

/// The dtype of a C dtype code.
pub(crate) fn dtype_of(code: i32) -> Result<Dtype> {
    match code {
        NPMK_DTYPE_F32 => Ok(Dtype::F32),
        NPMK_DTYPE_F16 => Ok(Dtype::F16),
        NPMK_DTYPE_BF16 => Ok(Dtype::BF16),
        _ => Err(Error::new(
            NPMK_ERR_UNSUPPORTED_DTYPE,
            format!(
                "dtype code {code} is not NPMK_DTYPE_F32 ({NPMK_DTYPE_F32}), NPMK_DTYPE_F16 \
                 ({NPMK_DTYPE_F16}) or NPMK_DTYPE_BF16 ({NPMK_DTYPE_BF16})"
            ),
        )),
    }
}

/// The bytes of `n` elements of `dtype` at `data`, at any alignment.
///
/// # Safety
/// Unless `n` is 0, `data` must point to `n * dtype.size()` readable bytes that stay unchanged
/// for `'a`.
pub(crate) unsafe fn element_bytes<'a>(
    data: *const c_void,
    n: usize,
    dtype: Dtype,
) -> Result<&'a [u8]> {
    if n == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Error::null("data"));
    }
    let len =
        n.checked_mul(dtype.size()).filter(|&len| len <= isize::MAX as usize).ok_or_else(|| {
            Error::invalid(format!("n_elements {n} is too large for the address space"))
        })?;
    // SAFETY: data is non-null and, by the caller's contract, points to `len` readable bytes
    // that are not written during 'a; u8 has no alignment requirement; len <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// `&Sketch` from a handle.
///
/// # Safety
/// `s` is NULL or a live handle from this library, not being written concurrently.
pub(crate) unsafe fn sketch_ref<'a>(s: *const Sketch, arg: &str) -> Result<&'a Sketch> {
    // SAFETY: non-null handles are live sketches (caller's contract).
    unsafe { s.as_ref() }.ok_or_else(|| Error::null(arg))
}

/// `&mut Sketch` from a handle.
///
/// # Safety
/// `s` is NULL or a live handle from this library, not accessed by anyone else meanwhile.
pub(crate) unsafe fn sketch_mut<'a>(s: *mut Sketch, arg: &str) -> Result<&'a mut Sketch> {
    // SAFETY: non-null handles are live sketches used by one thread at a time (caller's
    // contract), so this exclusive borrow aliases nothing.
    unsafe { s.as_mut() }.ok_or_else(|| Error::null(arg))
}

/// Checks that a state is one pushes and merges produce (states written through
/// `npmk_sketch_state` may not be).
fn checked(s: &Sketch) -> Result<&Sketch> {
    s.check().map(|()| s).map_err(|e| {
        Error::new(NPMK_ERR_BAD_FORMAT, format!("the sketch state is inconsistent: {e}"))
    })
}

/// Maps a missing fit to its status.
pub(crate) fn no_fit_error(e: NoFit) -> Error {
    match e {
        NoFit::InvalidTrim => Error::invalid(e.to_string()),
        _ => Error::new(NPMK_ERR_INSUFFICIENT_DATA, e.to_string()),
    }
}

/// Writes a new handle to `out`.
///
/// # Safety
/// `out` is NULL or valid for a pointer write.
unsafe fn hand_out(out: *mut *mut Sketch, sketch: Box<Sketch>) {
    // SAFETY: out was checked non-null by the caller and is writable (caller's contract).
    unsafe { out.write(Box::into_raw(sketch)) };
}

/// Creates an empty sketch (512 KiB, zeroed) and writes its handle to `*out`.
///
/// Returns `NPMK_OK` or `NPMK_ERR_NULL_ARGUMENT`.
///
/// # Safety
/// `out` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_new(out: *mut *mut Sketch) -> i32 {
    guard("npmk_sketch_new", || {
        if out.is_null() {
            return Err(Error::null("out"));
        }
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { hand_out(out, Sketch::new_boxed()) };
        Ok(())
    })
}

/// Frees a sketch; NULL does nothing.
///
/// # Safety
/// `s` must be NULL or a handle from this library not yet freed; it is invalid afterwards
/// (including the state array `npmk_sketch_state` handed out).
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_free(s: *mut Sketch) {
    guard_value("npmk_sketch_free", (), || {
        if !s.is_null() {
            // SAFETY: non-null handles come from Box::into_raw in this library and are freed
            // once (caller's contract).
            drop(unsafe { Box::from_raw(s) });
        }
    })
}

/// Empties a sketch, keeping its memory.
///
/// # Safety
/// `s` must be NULL or a live handle used by no other thread during the call.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_clear(s: *mut Sketch) -> i32 {
    guard("npmk_sketch_clear", || {
        // SAFETY: forwarded caller's contract.
        unsafe { sketch_mut(s, "s") }?.clear();
        Ok(())
    })
}

/// Adds `n_elements` values of type `dtype` (native byte order) at `data`, at any alignment.
///
/// `data` may be NULL only when `n_elements` is 0. Errors: `NPMK_ERR_NULL_ARGUMENT`,
/// `NPMK_ERR_UNSUPPORTED_DTYPE`, `NPMK_ERR_INVALID_ARGUMENT` (a byte length beyond the address
/// space). Nothing is pushed on error.
///
/// # Safety
/// `s` must be NULL or a live handle used by no other thread during the call; `data` must point
/// to `n_elements` readable elements of `dtype`.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_push(
    s: *mut Sketch,
    dtype: i32,
    data: *const c_void,
    n_elements: usize,
) -> i32 {
    guard("npmk_sketch_push", || {
        // SAFETY: forwarded caller's contract.
        let sketch = unsafe { sketch_mut(s, "s") }?;
        let dtype = dtype_of(dtype)?;
        // SAFETY: forwarded caller's contract on data and n_elements.
        let bytes = unsafe { element_bytes(data, n_elements, dtype) }?;
        sketch.push_le_bytes(dtype, bytes).map_err(|e| Error::invalid(e.to_string()))
    })
}

/// Adds `src`'s counts to `dst`: `dst` becomes the sketch of both inputs. `src` is unchanged.
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`, `NPMK_ERR_INVALID_ARGUMENT` when `dst == src`.
///
/// # Safety
/// Both must be NULL or live handles; no other thread may use `dst` during the call or write
/// `src`.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_merge(dst: *mut Sketch, src: *const Sketch) -> i32 {
    guard("npmk_sketch_merge", || {
        if std::ptr::eq(dst, src) && !dst.is_null() {
            return Err(Error::invalid("dst and src are the same sketch"));
        }
        // SAFETY: forwarded caller's contract; dst != src, so the borrows do not alias.
        let (d, s) = unsafe { (sketch_mut(dst, "dst")?, sketch_ref(src, "src")?) };
        d.merge(s);
        Ok(())
    })
}

/// Fits the Weibull plot over the plotting positions `[lo, hi]` (mid-80 is 0.10, 0.90; see the
/// `NPMK_TRIM_*` macros) and writes the result to `*out`.
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`; `NPMK_ERR_INVALID_ARGUMENT` unless `0 <= lo < hi <= 1`;
/// `NPMK_ERR_INSUFFICIENT_DATA` with fewer than 100 usable elements or 2 distinct values in the
/// body; `NPMK_ERR_BAD_FORMAT` for a state that no pushes and merges produce.
///
/// # Safety
/// `s` must be NULL or a live handle not written during the call; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_fit(
    s: *const Sketch,
    lo: f64,
    hi: f64,
    out: *mut NpmkFit,
) -> i32 {
    guard("npmk_sketch_fit", || {
        // SAFETY: forwarded caller's contract.
        let sketch = unsafe { sketch_ref(s, "s") }?;
        if out.is_null() {
            return Err(Error::null("out"));
        }
        let trim = Trim::new(lo, hi).map_err(|_| {
            Error::invalid(format!("trim [{lo}, {hi}] must satisfy 0 <= lo < hi <= 1"))
        })?;
        let f = checked(sketch)?.fit(trim).map_err(no_fit_error)?;
        let n_usable = sketch.counts().usable;
        let fit =
            NpmkFit { k: f.k, lambda: f.lambda, r2: f.r2, ks: f.ks, n_used: f.n_used, n_usable };
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { out.write(fit) };
        Ok(())
    })
}

/// Writes the q-quantile (0 <= q <= 1) of the usable magnitudes |w| to `*out`: the value at
/// rank max(1, ceil(q n)), exact for bf16 data, else modelled within its bin.
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`, `NPMK_ERR_INVALID_ARGUMENT` (q outside [0, 1] or NaN),
/// `NPMK_ERR_INSUFFICIENT_DATA` (no usable element), `NPMK_ERR_BAD_FORMAT`.
///
/// # Safety
/// `s` must be NULL or a live handle not written during the call; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_quantile(s: *const Sketch, q: f64, out: *mut f64) -> i32 {
    guard("npmk_sketch_quantile", || {
        // SAFETY: forwarded caller's contract.
        let sketch = unsafe { sketch_ref(s, "s") }?;
        if out.is_null() {
            return Err(Error::null("out"));
        }
        if !(0.0..=1.0).contains(&q) {
            return Err(Error::invalid(format!("q = {q} is outside [0, 1]")));
        }
        let value = checked(sketch)?.quantile(q).ok_or_else(|| {
            Error::new(NPMK_ERR_INSUFFICIENT_DATA, "the sketch holds no finite non-zero element")
        })?;
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Writes the element counts (total, usable, zero, NaN, +Inf, -Inf, subnormal) to `*out`.
///
/// # Safety
/// `s` must be NULL or a live handle not written during the call; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_counts(s: *const Sketch, out: *mut NpmkCounts) -> i32 {
    guard("npmk_sketch_counts", || {
        // SAFETY: forwarded caller's contract.
        let sketch = unsafe { sketch_ref(s, "s") }?;
        if out.is_null() {
            return Err(Error::null("out"));
        }
        let c = sketch.counts();
        let counts = NpmkCounts {
            total: c.total,
            usable: c.usable,
            zero: c.zero,
            nan: c.nan,
            pos_inf: c.pos_inf,
            neg_inf: c.neg_inf,
            subnormal: c.subnormal,
        };
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { out.write(counts) };
        Ok(())
    })
}

/// Hands out the sketch's whole state: `*words_out` points to its `NPMK_STATE_WORDS` (65,536)
/// `uint64_t` counts, owned by the sketch and valid until it is freed; `*n_words_out` is 65,536.
///
/// Summing these arrays element-wise across sketches merges them exactly, so the array can be
/// all-reduced in place (`MPI_Allreduce(MPI_IN_PLACE, words, n, MPI_UINT64_T, MPI_SUM, comm)`).
/// Write nothing else into it: a state that is not a sum of sketch states is rejected with
/// `NPMK_ERR_BAD_FORMAT` by fit, quantile and encode.
///
/// # Safety
/// `s` must be NULL or a live handle; the pointers NULL or writable. While the caller writes the
/// array, no other call may use the sketch.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_state(
    s: *mut Sketch,
    words_out: *mut *mut u64,
    n_words_out: *mut usize,
) -> i32 {
    guard("npmk_sketch_state", || {
        // SAFETY: forwarded caller's contract.
        let sketch = unsafe { sketch_mut(s, "s") }?;
        if words_out.is_null() {
            return Err(Error::null("words_out"));
        }
        if n_words_out.is_null() {
            return Err(Error::null("n_words_out"));
        }
        let words = sketch.words_mut().as_mut_ptr();
        // SAFETY: both out-pointers are non-null and writable (caller's contract).
        unsafe {
            words_out.write(words);
            n_words_out.write(STATE_WORDS);
        }
        Ok(())
    })
}

/// Creates a sketch from a state array (for example one received from an all-reduce),
/// copying `n_words` words from `words` (any alignment).
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`; `NPMK_ERR_INVALID_ARGUMENT` unless `n_words` is
/// `NPMK_STATE_WORDS`; `NPMK_ERR_BAD_FORMAT` for counts no sketch produces.
///
/// # Safety
/// `words` must be NULL or point to `n_words` readable `uint64_t`; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_from_state(
    words: *const u64,
    n_words: usize,
    out: *mut *mut Sketch,
) -> i32 {
    guard("npmk_sketch_from_state", || {
        if words.is_null() {
            return Err(Error::null("words"));
        }
        if out.is_null() {
            return Err(Error::null("out"));
        }
        if n_words != STATE_WORDS {
            return Err(Error::invalid(format!(
                "n_words is {n_words}; a state has NPMK_STATE_WORDS = {STATE_WORDS} words"
            )));
        }
        let mut sketch = Sketch::new_boxed();
        let dst = sketch.words_mut().as_mut_ptr().cast::<u8>();
        // SAFETY: words points to STATE_WORDS readable u64 (caller's contract), read as bytes
        // so any alignment works; dst is a fresh, distinct allocation of the same size.
        unsafe { std::ptr::copy_nonoverlapping(words.cast::<u8>(), dst, STATE_WORDS * 8) };
        checked(&sketch)?;
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { hand_out(out, sketch) };
        Ok(())
    })
}

/// Creates a copy of `s` and writes its handle to `*out`.
///
/// # Safety
/// `s` must be NULL or a live handle not written during the call; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_clone(s: *const Sketch, out: *mut *mut Sketch) -> i32 {
    guard("npmk_sketch_clone", || {
        // SAFETY: forwarded caller's contract.
        let sketch = unsafe { sketch_ref(s, "s") }?;
        if out.is_null() {
            return Err(Error::null("out"));
        }
        let mut copy = Sketch::new_boxed();
        copy.merge(sketch);
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { hand_out(out, copy) };
        Ok(())
    })
}

/// Writes to `*out` the number of bytes `npmk_sketch_encode` needs for `s` (24 bytes plus 10
/// per non-zero word of the state).
///
/// # Safety
/// `s` must be NULL or a live handle not written during the call; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_encoded_len(s: *const Sketch, out: *mut usize) -> i32 {
    guard("npmk_sketch_encoded_len", || {
        // SAFETY: forwarded caller's contract.
        let sketch = unsafe { sketch_ref(s, "s") }?;
        if out.is_null() {
            return Err(Error::null("out"));
        }
        let len = codec::encoded_len(sketch);
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { out.write(len) };
        Ok(())
    })
}

/// Serializes `s` into `buf` (capacity `cap` bytes) in a compact, checksummed, portable
/// little-endian format, writing the length used to `*len_out`.
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`; `NPMK_ERR_BUFFER_TOO_SMALL` when `cap` is below
/// `npmk_sketch_encoded_len` (nothing is written); `NPMK_ERR_BAD_FORMAT` for an inconsistent
/// state.
///
/// # Safety
/// `s` must be NULL or a live handle not written during the call; `buf` NULL or writable for
/// `cap` bytes; `len_out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_encode(
    s: *const Sketch,
    buf: *mut u8,
    cap: usize,
    len_out: *mut usize,
) -> i32 {
    guard("npmk_sketch_encode", || {
        // SAFETY: forwarded caller's contract.
        let sketch = checked(unsafe { sketch_ref(s, "s") }?)?;
        if buf.is_null() {
            return Err(Error::null("buf"));
        }
        if len_out.is_null() {
            return Err(Error::null("len_out"));
        }
        let len = codec::encoded_len(sketch);
        if cap < len {
            return Err(Error::new(
                NPMK_ERR_BUFFER_TOO_SMALL,
                format!("the encoding takes {len} bytes; the buffer holds {cap}"),
            ));
        }
        // SAFETY: buf is non-null and writable for cap >= len bytes (caller's contract), and
        // no other reference to those bytes exists during the call.
        let out = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        codec::encode_into(sketch, out);
        // SAFETY: len_out is non-null and writable (caller's contract).
        unsafe { len_out.write(len) };
        Ok(())
    })
}

/// Creates a sketch from bytes written by `npmk_sketch_encode`.
///
/// Errors: `NPMK_ERR_NULL_ARGUMENT`, `NPMK_ERR_BAD_FORMAT` (wrong magic, length, checksum, or
/// inconsistent counts).
///
/// # Safety
/// `buf` must be NULL or readable for `len` bytes; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn npmk_sketch_decode(
    buf: *const u8,
    len: usize,
    out: *mut *mut Sketch,
) -> i32 {
    guard("npmk_sketch_decode", || {
        if buf.is_null() {
            return Err(Error::null("buf"));
        }
        if out.is_null() {
            return Err(Error::null("out"));
        }
        // SAFETY: buf is non-null and readable for len bytes (caller's contract); u8 has no
        // alignment requirement.
        let bytes = unsafe { std::slice::from_raw_parts(buf, len.min(isize::MAX as usize)) };
        let mut sketch = Sketch::new_boxed();
        codec::decode_into(bytes, &mut sketch)?;
        // SAFETY: out is non-null and writable (caller's contract).
        unsafe { hand_out(out, sketch) };
        Ok(())
    })
}
