//! The ingestion kernel: one pass over bf16, f16 or f32 weights into the sketch's counts.
//!
//! Each element costs one increment of one bin. The increments are scalar by nature (a
//! histogram is a scatter); SIMD earns its place by classifying a whole vector of lanes at once,
//! so that the common case, a vector of normal finite non-zero values, goes straight to the
//! scatter with no per-element test. A vector holding a zero, subnormal, NaN or Inf drops to
//! the per-element path, which counts each special value in its own word.
//!
//! The instruction set is chosen once per process ([`Path::current`]) and the kernel is written
//! once, generically over pulp's `Simd`. The scalar twin ([`Path::Scalar`]) runs the same
//! per-element code on every element; it can be forced with the `force-scalar` cargo feature or,
//! with `std`, the environment variable `NPMK_FORCE_SCALAR=1`, so the test suite covers both.
//! Both paths produce the same counts: counts do not depend on the order of increments.

use crate::layout::{bin_of_bf16_code, bin_of_f16_normal_code, bin_of_f32_bits, word, STATE_WORDS};
use pulp::{Simd, WithSimd};

/// The sketch's state, as the kernel sees it.
pub(crate) type Words = [u64; STATE_WORDS];

/// Which code path ingests data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Vector classification with pulp, on the best instruction set found at start-up.
    Simd,
    /// One element at a time; the reference for the SIMD path.
    Scalar,
}

impl Path {
    /// The path this process uses: SIMD unless the `force-scalar` feature is on or (with `std`)
    /// `NPMK_FORCE_SCALAR` is set to `1`. Decided on first use and cached.
    pub fn current() -> Path {
        #[cfg(feature = "force-scalar")]
        {
            Path::Scalar
        }
        #[cfg(all(not(feature = "force-scalar"), feature = "std"))]
        {
            static CHOSEN: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
            *CHOSEN.get_or_init(|| match std::env::var_os("NPMK_FORCE_SCALAR") {
                Some(v) if v == "1" => Path::Scalar,
                _ => Path::Simd,
            })
        }
        #[cfg(all(not(feature = "force-scalar"), not(feature = "std")))]
        {
            Path::Simd
        }
    }
}

/// The instruction set pulp found, cached so that detection runs once per process.
fn arch() -> pulp::Arch {
    #[cfg(feature = "std")]
    {
        static ARCH: std::sync::OnceLock<pulp::Arch> = std::sync::OnceLock::new();
        *ARCH.get_or_init(pulp::Arch::new)
    }
    #[cfg(not(feature = "std"))]
    {
        pulp::Arch::new()
    }
}

/// The name of the instruction set the SIMD path runs on, for logs and benchmark reports.
pub fn simd_level() -> &'static str {
    match arch() {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        pulp::Arch::V3(_) => "x86-64-v3 (AVX2)",
        pulp::Arch::Scalar => "portable (no SIMD found)",
        #[allow(unreachable_patterns)]
        _ => "SIMD",
    }
}

// ---------------------------------------------------------------------------------------------
// Per-element paths: the scalar twin, and the fallback for vectors holding special values.

#[inline(always)]
fn bf16_one(words: &mut Words, code: u16) {
    let abs = code & 0x7FFF;
    if abs.wrapping_sub(0x0080) < 0x7F00 {
        words[bin_of_bf16_code(abs)] += 1;
    } else {
        bf16_special(words, code);
    }
}

#[cold]
fn bf16_special(words: &mut Words, code: u16) {
    let abs = code & 0x7FFF;
    match abs {
        0 => words[word::ZERO] += 1,
        1..=0x7F => {
            words[word::SUBNORMAL] += 1;
            words[bin_of_bf16_code(abs)] += 1;
        }
        0x7F80 if code & 0x8000 != 0 => words[word::NEG_INF] += 1,
        0x7F80 => words[word::POS_INF] += 1,
        _ => words[word::NAN] += 1,
    }
}

#[inline(always)]
fn f16_one(words: &mut Words, code: u16) {
    let abs = code & 0x7FFF;
    if abs.wrapping_sub(0x0400) < 0x7800 {
        words[bin_of_f16_normal_code(abs)] += 1;
    } else {
        f16_special(words, code);
    }
}

#[cold]
fn f16_special(words: &mut Words, code: u16) {
    let abs = code & 0x7FFF;
    match abs {
        0 => words[word::ZERO] += 1,
        1..=0x03FF => {
            // An f16 subnormal is a normal f32; bin it through its exact f32 value.
            words[word::SUBNORMAL] += 1;
            let bits = half::f16::from_bits(abs).to_f32().to_bits();
            words[bin_of_f32_bits(bits)] += 1;
        }
        0x7C00 if code & 0x8000 != 0 => words[word::NEG_INF] += 1,
        0x7C00 => words[word::POS_INF] += 1,
        _ => words[word::NAN] += 1,
    }
}

#[inline(always)]
fn f32_one(words: &mut Words, bits: u32) {
    let abs = bits & 0x7FFF_FFFF;
    if abs.wrapping_sub(0x0080_0000) < 0x7F00_0000 {
        words[bin_of_f32_bits(abs)] += 1;
    } else {
        f32_special(words, bits);
    }
}

#[cold]
fn f32_special(words: &mut Words, bits: u32) {
    let abs = bits & 0x7FFF_FFFF;
    match abs {
        0 => words[word::ZERO] += 1,
        1..=0x007F_FFFF => {
            words[word::SUBNORMAL] += 1;
            words[bin_of_f32_bits(abs)] += 1;
        }
        0x7F80_0000 if bits & 0x8000_0000 != 0 => words[word::NEG_INF] += 1,
        0x7F80_0000 => words[word::POS_INF] += 1,
        _ => words[word::NAN] += 1,
    }
}

// ---------------------------------------------------------------------------------------------
// SIMD kernels: classify a vector, then scatter.

/// How far ahead of the scatter the SIMD kernels ask for data, in bytes. The scatter keeps the
/// out-of-order window full of increments, so the hardware prefetcher alone leaves a large
/// buffer streamed from memory well below the cache-resident rate; 2 KiB ahead closes the gap.
const PREFETCH_BYTES: usize = 2048;

/// Hints that the cache line holding `p` will be read soon.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        #[cfg(target_arch = "x86")]
        use core::arch::x86::{_mm_prefetch, _MM_HINT_T0};
        #[cfg(target_arch = "x86_64")]
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint: it never faults and never changes memory, whatever
        // the address, so a pointer past the end of the slice is fine (it is never read).
        #[allow(unused_unsafe)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast())
        }
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    let _ = p;
}

/// A 16-bit float format, as the SIMD kernel needs to know it.
trait Format16 {
    /// Normal finite magnitudes are the codes `[LOW, LOW + SPAN)` once the sign is cleared.
    const LOW: u16;
    const SPAN: u16;
    /// The bin of an ordinary magnitude code.
    fn bin(abs_code: u16) -> usize;
    /// The per-element path, special values included.
    fn one(words: &mut Words, code: u16);
}

struct Bf16;
struct F16;

impl Format16 for Bf16 {
    const LOW: u16 = 0x0080;
    const SPAN: u16 = 0x7F00;
    #[inline(always)]
    fn bin(abs_code: u16) -> usize {
        bin_of_bf16_code(abs_code)
    }
    #[inline(always)]
    fn one(words: &mut Words, code: u16) {
        bf16_one(words, code)
    }
}

impl Format16 for F16 {
    const LOW: u16 = 0x0400;
    const SPAN: u16 = 0x7800;
    #[inline(always)]
    fn bin(abs_code: u16) -> usize {
        bin_of_f16_normal_code(abs_code)
    }
    #[inline(always)]
    fn one(words: &mut Words, code: u16) {
        f16_one(words, code)
    }
}

struct Half16<'a, F> {
    words: &'a mut Words,
    codes: &'a [u16],
    format: core::marker::PhantomData<F>,
}

impl<F: Format16> WithSimd for Half16<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Half16 { words, codes, .. } = self;
        let (vectors, tail) = S::as_simd_u16s(codes);
        let magnitude = simd.splat_u16s(0x7FFF);
        let low = simd.splat_u16s(F::LOW);
        let span = simd.splat_u16s(F::SPAN);
        let ahead = PREFETCH_BYTES / 2;
        for (v, lanes) in vectors.iter().zip(codes.chunks_exact(S::U16_LANES)) {
            prefetch(lanes.as_ptr().wrapping_add(ahead));
            let abs = simd.and_u16s(*v, magnitude);
            let ordinary = simd.less_than_u16s(simd.sub_u16s(abs, low), span);
            if simd.first_true_m16s(simd.not_m16s(ordinary)) == S::U16_LANES {
                for &code in lanes {
                    words[F::bin(code & 0x7FFF)] += 1;
                }
            } else {
                for &code in lanes {
                    F::one(words, code);
                }
            }
        }
        for &code in tail {
            F::one(words, code);
        }
    }
}

struct Single32<'a> {
    words: &'a mut Words,
    bits: &'a [u32],
}

impl WithSimd for Single32<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Single32 { words, bits } = self;
        let (vectors, tail) = S::as_simd_u32s(bits);
        let magnitude = simd.splat_u32s(0x7FFF_FFFF);
        let low = simd.splat_u32s(0x0080_0000);
        let span = simd.splat_u32s(0x7F00_0000);
        let ahead = PREFETCH_BYTES / 4;
        for (v, lanes) in vectors.iter().zip(bits.chunks_exact(S::U32_LANES)) {
            prefetch(lanes.as_ptr().wrapping_add(ahead));
            let abs = simd.and_u32s(*v, magnitude);
            let ordinary = simd.less_than_u32s(simd.sub_u32s(abs, low), span);
            if simd.first_true_m32s(simd.not_m32s(ordinary)) == S::U32_LANES {
                for &b in lanes {
                    words[bin_of_f32_bits(b & 0x7FFF_FFFF)] += 1;
                }
            } else {
                for &b in lanes {
                    f32_one(words, b);
                }
            }
        }
        for &b in tail {
            f32_one(words, b);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points over typed slices. They update the bins and special words; the caller adds the
// per-dtype element count once per call.

pub(crate) fn ingest_bf16(words: &mut Words, codes: &[u16], path: Path) {
    match path {
        Path::Scalar => codes.iter().for_each(|&c| bf16_one(words, c)),
        Path::Simd => {
            arch().dispatch(Half16::<Bf16> { words, codes, format: core::marker::PhantomData })
        }
    }
}

pub(crate) fn ingest_f16(words: &mut Words, codes: &[u16], path: Path) {
    match path {
        Path::Scalar => codes.iter().for_each(|&c| f16_one(words, c)),
        Path::Simd => {
            arch().dispatch(Half16::<F16> { words, codes, format: core::marker::PhantomData })
        }
    }
}

pub(crate) fn ingest_f32(words: &mut Words, bits: &[u32], path: Path) {
    match path {
        Path::Scalar => bits.iter().for_each(|&b| f32_one(words, b)),
        Path::Simd => arch().dispatch(Single32 { words, bits }),
    }
}

/// Elements per stack chunk when bytes must be realigned or byte-swapped (4 KiB of u32).
const CHUNK: usize = 1024;

/// Feeds little-endian 16-bit codes stored at any alignment. Aligned input on a little-endian
/// target is read in place; anything else is copied through a small stack buffer, never whole.
pub(crate) fn ingest_le_u16(words: &mut Words, bytes: &[u8], ingest: impl Fn(&mut Words, &[u16])) {
    debug_assert_eq!(bytes.len() % 2, 0);
    if cfg!(target_endian = "little") {
        // SAFETY: u16 has no invalid bit patterns and align_to only yields a middle part that is
        // correctly aligned for u16; on a little-endian target those are the stored values.
        let (head, middle, _) = unsafe { bytes.align_to::<u16>() };
        if head.is_empty() {
            ingest(words, middle);
            return;
        }
    }
    let mut buffer = [0u16; CHUNK];
    for chunk in bytes.chunks(2 * CHUNK) {
        let n = chunk.len() / 2;
        for (dst, src) in buffer[..n].iter_mut().zip(chunk.chunks_exact(2)) {
            *dst = u16::from_le_bytes([src[0], src[1]]);
        }
        ingest(words, &buffer[..n]);
    }
}

/// The 32-bit twin of [`ingest_le_u16`].
pub(crate) fn ingest_le_u32(words: &mut Words, bytes: &[u8], ingest: impl Fn(&mut Words, &[u32])) {
    debug_assert_eq!(bytes.len() % 4, 0);
    if cfg!(target_endian = "little") {
        // SAFETY: as in ingest_le_u16: u32 has no invalid bit patterns and the middle part is
        // aligned for u32.
        let (head, middle, _) = unsafe { bytes.align_to::<u32>() };
        if head.is_empty() {
            ingest(words, middle);
            return;
        }
    }
    let mut buffer = [0u32; CHUNK];
    for chunk in bytes.chunks(4 * CHUNK) {
        let n = chunk.len() / 4;
        for (dst, src) in buffer[..n].iter_mut().zip(chunk.chunks_exact(4)) {
            *dst = u32::from_le_bytes([src[0], src[1], src[2], src[3]]);
        }
        ingest(words, &buffer[..n]);
    }
}
