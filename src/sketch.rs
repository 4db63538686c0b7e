//! The sketch: a fixed-size, mergeable histogram of weight magnitudes |w|.

use crate::fit::{self, NoFit, Trim, WeibullFit};
use crate::kernel::{self, Path, Words};
use crate::layout::{bin_lower, bin_of_magnitude, bin_upper, word, BIN_COUNT, STATE_WORDS};

/// The element types a sketch ingests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "UPPERCASE"))]
pub enum Dtype {
    /// bfloat16: 1 sign, 8 exponent, 7 mantissa bits. Sketched exactly.
    BF16,
    /// IEEE binary16.
    F16,
    /// IEEE binary32.
    F32,
}

impl Dtype {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Dtype::BF16 | Dtype::F16 => 2,
            Dtype::F32 => 4,
        }
    }

    /// The name safetensors uses for this dtype.
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::BF16 => "BF16",
            Dtype::F16 => "F16",
            Dtype::F32 => "F32",
        }
    }
}

/// A byte slice whose length is not a whole number of elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthError {
    /// The dtype the bytes were pushed as.
    pub dtype: Dtype,
    /// The length of the byte slice.
    pub len: usize,
}

impl core::fmt::Display for LengthError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} bytes is not a whole number of {} elements ({} bytes each)",
            self.len,
            self.dtype.name(),
            self.dtype.size()
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LengthError {}

/// How many elements of each sort a sketch has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
pub struct Counts {
    /// Every element pushed.
    pub total: u64,
    /// Finite non-zero elements: the ones a fit uses.
    pub usable: u64,
    /// Zeros, +0.0 and -0.0.
    pub zero: u64,
    /// NaN, any payload.
    pub nan: u64,
    /// +Inf.
    pub pos_inf: u64,
    /// -Inf.
    pub neg_inf: u64,
    /// Non-zero values subnormal in their own dtype (also counted in `usable`).
    pub subnormal: u64,
    /// Elements pushed as bf16.
    pub bf16: u64,
    /// Elements pushed as f16.
    pub f16: u64,
    /// Elements pushed as f32.
    pub f32: u64,
}

impl Counts {
    /// NaN and Inf together.
    pub fn nonfinite(&self) -> u64 {
        self.nan + self.pos_inf + self.neg_inf
    }
}

/// A mergeable sketch of |w|: 65,536 `u64` counts, 512 KiB, no heap.
///
/// The bin layout is described in [`layout`](crate::layout). Every word of the state is a count,
/// so [`merge`](Sketch::merge) is an element-wise sum, and summing [`words`](Sketch::words)
/// across processes (MPI_Allreduce with MPI_SUM, say) merges sketches exactly.
///
/// A sketch that has only seen bf16 data is *exact*: each bin then holds a single value, and
/// [`fit`](Sketch::fit) equals the sort-based estimator to rounding. Otherwise the elements of a
/// bin are modelled as spread evenly over it (relative width 2^-8 or less).
///
/// At 512 KiB a sketch is too large for most stacks: use [`Sketch::new_boxed`] (with the
/// `alloc` feature), or place one in a `static` or in memory you own ([`Sketch::from_words_mut`]).
#[repr(C, align(64))]
pub struct Sketch {
    words: Words,
}

impl Sketch {
    /// An empty sketch, by value. Mind the size (512 KiB) before putting one on the stack.
    pub const fn new() -> Sketch {
        Sketch { words: [0; STATE_WORDS] }
    }

    /// An empty sketch on the heap, zeroed in place (no 512 KiB stack temporary).
    #[cfg(feature = "alloc")]
    pub fn new_boxed() -> alloc::boxed::Box<Sketch> {
        let layout = core::alloc::Layout::new::<Sketch>();
        // SAFETY: the layout has non-zero size; all-zero bytes are a valid Sketch (an array of
        // u64 zeros); the pointer comes from the global allocator with Sketch's layout, so
        // Box::from_raw may own and later free it.
        unsafe {
            let ptr = alloc::alloc::alloc_zeroed(layout) as *mut Sketch;
            if ptr.is_null() {
                alloc::alloc::handle_alloc_error(layout);
            }
            alloc::boxed::Box::from_raw(ptr)
        }
    }

    /// Views a state array as a sketch, without copying.
    pub fn from_words(words: &[u64; STATE_WORDS]) -> &Sketch {
        // SAFETY: Sketch is repr(C) around exactly this array; its only extra requirement is
        // 64-byte alignment, which is checked here.
        assert_eq!(words.as_ptr() as usize % 64, 0, "sketch state must be 64-byte aligned");
        unsafe { &*(words as *const Words as *const Sketch) }
    }

    /// Views a mutable state array as a sketch (for sketches living in caller-owned memory).
    /// Panics unless the array is 64-byte aligned.
    pub fn from_words_mut(words: &mut [u64; STATE_WORDS]) -> &mut Sketch {
        assert_eq!(words.as_ptr() as usize % 64, 0, "sketch state must be 64-byte aligned");
        // SAFETY: as in from_words; the exclusive borrow is carried over.
        unsafe { &mut *(words as *mut Words as *mut Sketch) }
    }

    /// The whole state: bins, then the special counts. Same length for every sketch.
    pub fn words(&self) -> &[u64; STATE_WORDS] {
        &self.words
    }

    /// The state, writable: for filling a sketch from an all-reduced array. Writing anything but
    /// sums of other sketches' states gives a sketch that [`Sketch::check`] rejects.
    pub fn words_mut(&mut self) -> &mut [u64; STATE_WORDS] {
        &mut self.words
    }

    /// Pushes bf16 values given as their bit patterns.
    pub fn push_bf16(&mut self, codes: &[u16]) {
        self.push_bf16_on(codes, Path::current());
    }

    /// Pushes f16 values.
    pub fn push_f16(&mut self, values: &[half::f16]) {
        self.push_f16_on(values, Path::current());
    }

    /// Pushes f32 values.
    pub fn push_f32(&mut self, values: &[f32]) {
        self.push_f32_on(values, Path::current());
    }

    /// Pushes bf16 values given as `half::bf16`.
    pub fn push_bf16_values(&mut self, values: &[half::bf16]) {
        // SAFETY: half::bf16 is a repr(transparent) wrapper of u16.
        let codes = unsafe { core::slice::from_raw_parts(values.as_ptr().cast(), values.len()) };
        self.push_bf16(codes);
    }

    /// Pushes little-endian elements of `dtype` stored at any alignment, as in a safetensors
    /// file. Nothing is pushed if the length is not a whole number of elements.
    pub fn push_le_bytes(&mut self, dtype: Dtype, bytes: &[u8]) -> Result<(), LengthError> {
        self.push_le_bytes_on(dtype, bytes, Path::current())
    }

    /// [`push_le_bytes`](Sketch::push_le_bytes) on a chosen code path (tests and benchmarks).
    #[doc(hidden)]
    pub fn push_le_bytes_on(
        &mut self,
        dtype: Dtype,
        bytes: &[u8],
        path: Path,
    ) -> Result<(), LengthError> {
        if bytes.len() % dtype.size() != 0 {
            return Err(LengthError { dtype, len: bytes.len() });
        }
        let n = (bytes.len() / dtype.size()) as u64;
        let words = &mut self.words;
        match dtype {
            Dtype::BF16 => {
                kernel::ingest_le_u16(words, bytes, |w, c| kernel::ingest_bf16(w, c, path));
                words[word::PUSHED_BF16] += n;
            }
            Dtype::F16 => {
                kernel::ingest_le_u16(words, bytes, |w, c| kernel::ingest_f16(w, c, path));
                words[word::PUSHED_F16] += n;
            }
            Dtype::F32 => {
                kernel::ingest_le_u32(words, bytes, |w, b| kernel::ingest_f32(w, b, path));
                words[word::PUSHED_F32] += n;
            }
        }
        Ok(())
    }

    /// [`push_bf16`](Sketch::push_bf16) on a chosen code path (tests and benchmarks).
    #[doc(hidden)]
    pub fn push_bf16_on(&mut self, codes: &[u16], path: Path) {
        kernel::ingest_bf16(&mut self.words, codes, path);
        self.words[word::PUSHED_BF16] += codes.len() as u64;
    }

    /// [`push_f16`](Sketch::push_f16) on a chosen code path (tests and benchmarks).
    #[doc(hidden)]
    pub fn push_f16_on(&mut self, values: &[half::f16], path: Path) {
        // SAFETY: half::f16 is a repr(transparent) wrapper of u16.
        let codes: &[u16] =
            unsafe { core::slice::from_raw_parts(values.as_ptr().cast(), values.len()) };
        kernel::ingest_f16(&mut self.words, codes, path);
        self.words[word::PUSHED_F16] += codes.len() as u64;
    }

    /// [`push_f32`](Sketch::push_f32) on a chosen code path (tests and benchmarks).
    #[doc(hidden)]
    pub fn push_f32_on(&mut self, values: &[f32], path: Path) {
        // SAFETY: f32 and u32 have the same size and alignment, and every bit pattern is valid
        // for both.
        let bits: &[u32] =
            unsafe { core::slice::from_raw_parts(values.as_ptr().cast(), values.len()) };
        kernel::ingest_f32(&mut self.words, bits, path);
        self.words[word::PUSHED_F32] += bits.len() as u64;
    }

    /// Adds `other`'s counts to this sketch: the result is the sketch of both inputs.
    pub fn merge(&mut self, other: &Sketch) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a += *b;
        }
    }

    /// Empties the sketch.
    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// The element counts, by sort.
    pub fn counts(&self) -> Counts {
        let w = &self.words;
        let total = w[word::PUSHED_BF16] + w[word::PUSHED_F16] + w[word::PUSHED_F32];
        let (zero, nan, pos_inf, neg_inf) =
            (w[word::ZERO], w[word::NAN], w[word::POS_INF], w[word::NEG_INF]);
        Counts {
            total,
            usable: total.saturating_sub(zero + nan + pos_inf + neg_inf),
            zero,
            nan,
            pos_inf,
            neg_inf,
            subnormal: w[word::SUBNORMAL],
            bf16: w[word::PUSHED_BF16],
            f16: w[word::PUSHED_F16],
            f32: w[word::PUSHED_F32],
        }
    }

    /// Whether every element came in as bf16, so that each bin holds a single value and the fit
    /// is exact.
    pub fn is_exact(&self) -> bool {
        self.words[word::PUSHED_F16] == 0 && self.words[word::PUSHED_F32] == 0
    }

    /// Checks that the state is one a sequence of pushes and merges can produce: reserved words
    /// are zero and the bins add up to the usable count. Decoders and the C ABI call this.
    pub fn check(&self) -> Result<(), InconsistentState> {
        if self.words[word::RESERVED..].iter().any(|&w| w != 0) {
            return Err(InconsistentState::ReservedWordSet);
        }
        let w = &self.words;
        let total = w[word::PUSHED_BF16]
            .checked_add(w[word::PUSHED_F16])
            .and_then(|t| t.checked_add(w[word::PUSHED_F32]));
        let specials = w[word::ZERO]
            .checked_add(w[word::NAN])
            .and_then(|t| t.checked_add(w[word::POS_INF]))
            .and_then(|t| t.checked_add(w[word::NEG_INF]));
        let mut binned: u64 = 0;
        for &c in &w[..BIN_COUNT] {
            binned = binned.checked_add(c).ok_or(InconsistentState::CountsDisagree)?;
        }
        match (total, specials) {
            (Some(t), Some(s))
                if s.checked_add(binned) == Some(t) && w[word::SUBNORMAL] <= binned =>
            {
                Ok(())
            }
            _ => Err(InconsistentState::CountsDisagree),
        }
    }

    /// The index range of occupied bins, or `None` for a sketch with no usable element.
    pub(crate) fn occupied(&self) -> Option<(usize, usize)> {
        // Chunks of 32 words are tested whole (a vectorised OR); most of the bins are empty.
        const CHUNK: usize = 32;
        let bins = &self.words[..BIN_COUNT];
        let nonzero = |chunk: &[u64]| chunk.iter().fold(0, |a, &c| a | c) != 0;
        let first_chunk = bins.chunks(CHUNK).position(nonzero)?;
        let last_chunk = bins.chunks(CHUNK).rposition(nonzero)?;
        let first =
            first_chunk * CHUNK + bins[first_chunk * CHUNK..].iter().position(|&c| c != 0)?;
        let last_end = ((last_chunk + 1) * CHUNK).min(BIN_COUNT);
        let last = bins[..last_end].iter().rposition(|&c| c != 0)?;
        Some((first, last))
    }

    /// Count in bin `j`.
    #[inline]
    pub(crate) fn bin(&self, j: usize) -> u64 {
        self.words[j]
    }

    /// The model of where a bin's elements lie, used by the fit and the queries.
    pub(crate) fn model(&self) -> BinModel {
        let w = &self.words;
        if self.is_exact() {
            BinModel::Exact
        } else if w[word::PUSHED_F32] == 0 && w[word::PUSHED_BF16] == 0 {
            // f16 keeps 10 mantissa bits against the bins' 8: its values sit at 0, 1/4, 2/4 and
            // 3/4 of a bin, whose even spread is the bin shifted down by 1/8.
            BinModel::Spread { shift: 0.125 }
        } else {
            BinModel::Spread { shift: 0.0 }
        }
    }

    /// The magnitude at 1-based rank `r` (ascending) among the usable elements: exact for an
    /// exact sketch, else the even-spread model's value. Returns None if `r` is out of range.
    fn value_at_rank(&self, r: u64) -> Option<f64> {
        let (first, last) = self.occupied()?;
        let model = self.model();
        let mut before = 0u64;
        for j in first..=last {
            let c = self.bin(j);
            if c != 0 && r <= before + c {
                return Some(model.value(j, r - before - 1, c));
            }
            before += c;
        }
        None
    }

    /// The q-quantile (0 <= q <= 1) of the usable magnitudes: the value at rank
    /// `max(1, ceil(q * n))`. None for an empty sketch or a q outside [0, 1].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let n = self.counts().usable;
        let r = libm::ceil(q * n as f64) as u64;
        self.value_at_rank(r.clamp(1, n.max(1)))
    }

    /// The fraction of usable magnitudes that are `<= x`, in [0, 1]; None for an empty sketch.
    pub fn cdf(&self, x: f64) -> Option<f64> {
        let n = self.counts().usable;
        if n == 0 || x.is_nan() {
            return None;
        }
        if x <= 0.0 {
            return Some(0.0);
        }
        let Some(target) = bin_of_magnitude(x) else {
            return Some(1.0);
        };
        let below: u64 = self.words[..target].iter().sum();
        let c = self.bin(target);
        let inside = if c == 0 { 0 } else { self.model().count_at_or_below(target, c, x) };
        Some((below + inside) as f64 / n as f64)
    }

    /// The smallest usable magnitude: exact for an exact sketch, else its bin's lower edge.
    pub fn min_magnitude(&self) -> Option<f64> {
        self.occupied().map(|(first, _)| bin_lower(first))
    }

    /// The largest usable magnitude: exact for an exact sketch, else its bin's upper edge.
    pub fn max_magnitude(&self) -> Option<f64> {
        let (_, last) = self.occupied()?;
        Some(if self.is_exact() { bin_lower(last) } else { bin_upper(last) })
    }

    /// The probability-plot fit of the Weibull shape over the body `trim` (see [`fit`]).
    pub fn fit(&self, trim: Trim) -> Result<WeibullFit, NoFit> {
        fit::fit(self, trim)
    }
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::new()
    }
}

impl Clone for Sketch {
    fn clone(&self) -> Self {
        Sketch { words: self.words }
    }
}

impl core::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sketch").field("counts", &self.counts()).finish_non_exhaustive()
    }
}

impl PartialEq for Sketch {
    fn eq(&self, other: &Self) -> bool {
        self.words[..] == other.words[..]
    }
}

impl Eq for Sketch {}

/// A state that no sequence of pushes and merges produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InconsistentState {
    /// A reserved word is non-zero.
    ReservedWordSet,
    /// Bins and special counts do not add up to the per-dtype totals (or overflow).
    CountsDisagree,
}

impl core::fmt::Display for InconsistentState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            InconsistentState::ReservedWordSet => "a reserved word of the sketch state is set",
            InconsistentState::CountsDisagree => {
                "the sketch's bin counts do not add up to its element totals"
            }
        })
    }
}

/// Where the elements of one bin are taken to lie.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum BinModel {
    /// All at the bin's lower edge (bf16 data: the edge is the value).
    Exact,
    /// Evenly over the bin shifted down by `shift` bin widths.
    Spread { shift: f64 },
}

impl BinModel {
    /// The interval a bin's elements are spread over, `[low, high)`. Exponent-0 bins of an f32
    /// sketch start at the smallest subnormal rather than at zero, so that logs stay finite.
    pub(crate) fn interval(self, j: usize) -> (f64, f64) {
        let (lo, hi) = (bin_lower(j), bin_upper(j));
        let lo = if lo == 0.0 { libm::ldexp(1.0, -149) } else { lo };
        match self {
            BinModel::Exact => (lo, lo),
            BinModel::Spread { shift } => {
                let s = shift * (hi - lo);
                (lo - s, hi - s)
            }
        }
    }

    /// The value of the `i`-th (0-based) of `c` elements in bin `j`.
    pub(crate) fn value(self, j: usize, i: u64, c: u64) -> f64 {
        let (lo, hi) = self.interval(j);
        lo + (hi - lo) * ((i as f64 + 0.5) / c as f64)
    }

    /// How many of the `c` elements in bin `j` are `<= x`.
    fn count_at_or_below(self, j: usize, c: u64, x: f64) -> u64 {
        let (lo, hi) = self.interval(j);
        if x < lo {
            return 0;
        }
        if hi <= lo || x >= hi {
            return c;
        }
        // Element i sits at lo + (hi - lo)(i + 0.5)/c.
        let t = (x - lo) / (hi - lo) * c as f64 + 0.5;
        (libm::floor(t) as u64).min(c)
    }
}
