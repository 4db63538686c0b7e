//! Where every value lands in a [`Sketch`](crate::Sketch): the bin layout, in one place.
//!
//! The sketch is an array of [`STATE_WORDS`] `u64` counts (512 KiB). A finite non-zero
//! magnitude `|w|`, seen as the bit pattern of an IEEE binary32, is binned by its exponent and
//! the top 8 bits of its mantissa:
//!
//! ```text
//!  |w| as f32 bits:  0 | eeeeeeee | mmmmmmmm | 000000000000000     (sign dropped)
//!                        exponent   kept       ignored (15 bits)
//!                    \____ bin index = bits >> 15, 0 ..= 0xFEFF ____/
//!
//!  words[0x0000 ..= 0x00FF]  exponent 0: f32 subnormals, [0, 2^-126)
//!  words[0x0100 ..= 0xFEFF]  exponents 1..=254: 256 bins per octave, [2^-126, 2^128)
//!  words[0xFF00 ..= 0xFFFF]  exponent 255 is Inf/NaN, so these words hold the special
//!                            counts instead (zero, NaN, +Inf, -Inf, subnormal, per-dtype
//!                            element counts); the rest are reserved and stay zero
//! ```
//!
//! Bin `j` holds the magnitudes whose f32 bits lie in `[j << 15, (j + 1) << 15)`: an interval of
//! relative width between 2^-9 and 2^-8. Two facts follow:
//!
//! * every bf16 magnitude is the lower edge of its own bin (bf16 keeps 7 mantissa bits, the bins
//!   8), so a sketch of bf16 data loses nothing: the fit over it is exact;
//! * an f16 or f32 magnitude is known to within its bin; the fit models the elements of a bin as
//!   spread evenly across it, which keeps the error in k near 1e-6 on smooth data.
//!
//! Because every word is a count, adding two states word by word merges the sketches. That is
//! the whole contract that lets trainers all-reduce sketches across threads and ranks.

/// Number of `u64` words in a sketch's state (65,536 words, 512 KiB).
pub const STATE_WORDS: usize = 1 << 16;

/// Number of bins of finite non-zero magnitudes (f32 exponents 0 to 254, 256 bins each).
pub const BIN_COUNT: usize = 0xFF00;

/// Bits of the f32 magnitude below the bin index.
pub(crate) const BIN_SHIFT: u32 = 15;

/// Words after the bins that hold the special counts, in this order.
pub(crate) mod word {
    /// Zeros, +0.0 and -0.0 alike.
    pub const ZERO: usize = super::BIN_COUNT;
    /// NaN with any payload and sign.
    pub const NAN: usize = ZERO + 1;
    /// +Inf.
    pub const POS_INF: usize = ZERO + 2;
    /// -Inf.
    pub const NEG_INF: usize = ZERO + 3;
    /// Non-zero values that are subnormal in the dtype they were pushed as (also binned).
    pub const SUBNORMAL: usize = ZERO + 4;
    /// Elements pushed as bf16, f16 and f32; their sum is the total.
    pub const PUSHED_BF16: usize = ZERO + 5;
    pub const PUSHED_F16: usize = ZERO + 6;
    pub const PUSHED_F32: usize = ZERO + 7;
    /// First reserved word; reserved words must stay zero.
    pub const RESERVED: usize = ZERO + 8;
}

// The special words must fit in the exponent-255 region, and the state in 512 KiB.
const _: () = assert!(BIN_COUNT == 255 * 256 && word::RESERVED < STATE_WORDS);
const _: () = assert!(STATE_WORDS * 8 == 512 * 1024);

/// The bin of a finite non-zero f32 magnitude given by its bits (sign already cleared).
#[inline(always)]
pub(crate) const fn bin_of_f32_bits(abs_bits: u32) -> usize {
    (abs_bits >> BIN_SHIFT) as usize
}

/// The bin of a bf16 magnitude code (sign cleared), normal or subnormal: bf16 is the upper half
/// of an f32, so the bin is the code shifted by one.
#[inline(always)]
pub(crate) const fn bin_of_bf16_code(abs_code: u16) -> usize {
    (abs_code as usize) << 1
}

/// The bin of a normal f16 magnitude code (sign cleared). Rebiasing the exponent from 15 to 127
/// adds 112 to it, and the top 8 of the 10 mantissa bits are kept; f16 subnormals are normal in
/// f32 and go through [`bin_of_f32_bits`] instead.
#[inline(always)]
pub(crate) const fn bin_of_f16_normal_code(abs_code: u16) -> usize {
    ((abs_code as usize) >> 2) + (112 << 8)
}

/// Lower edge of bin `j` as an f64 (exact).
#[inline]
pub fn bin_lower(j: usize) -> f64 {
    bin_edge(j)
}

/// Upper edge of bin `j` as an f64 (exact; the top bin ends at 2^128, not at infinity).
#[inline]
pub fn bin_upper(j: usize) -> f64 {
    bin_edge(j + 1)
}

/// The magnitude whose f32 bits are `j << 15`, as an f64, so that `j = BIN_COUNT` gives
/// 2^128 rather than infinity.
#[inline]
fn bin_edge(j: usize) -> f64 {
    if j < BIN_COUNT {
        f32::from_bits((j as u32) << BIN_SHIFT) as f64
    } else {
        libm::ldexp(1.0, 128)
    }
}

/// The bin that holds magnitude `x` (a finite positive f64), or `None` outside the binned range.
/// Used by queries; values are rounded to f32 first, as they would be when pushed.
pub(crate) fn bin_of_magnitude(x: f64) -> Option<usize> {
    let x32 = x as f32;
    if x32.is_nan() || x32 <= 0.0 || !x32.is_finite() {
        return None;
    }
    Some(bin_of_f32_bits(x32.to_bits()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_exact_and_monotone() {
        assert_eq!(bin_lower(bin_of_f32_bits(1.0f32.to_bits())), 1.0);
        assert_eq!(bin_upper(bin_of_f32_bits(1.0f32.to_bits())), 1.0 + 1.0 / 256.0);
        assert_eq!(bin_upper(BIN_COUNT - 1), libm::ldexp(1.0, 128));
        assert_eq!(bin_lower(0), 0.0);
        for j in [0usize, 1, 255, 256, 257, 0x7F00, BIN_COUNT - 2] {
            assert!(bin_lower(j) < bin_upper(j));
            assert_eq!(bin_upper(j), bin_lower(j + 1));
        }
        // Every f32 bit pattern below the bin's upper edge maps into that bin.
        for bits in [0x3F80_0000u32, 0x3F80_7FFF, 0x3F80_8000, 0x0000_0001, 0x7F7F_FFFF] {
            let j = bin_of_f32_bits(bits);
            let v = f32::from_bits(bits) as f64;
            assert!(bin_lower(j) <= v && v < bin_upper(j), "{bits:#x}");
        }
    }

    #[test]
    fn bf16_and_f16_bins_agree_with_the_f32_route() {
        for code in 1u16..0x7F80 {
            let via_f32 = bin_of_f32_bits((code as u32) << 16);
            assert_eq!(bin_of_bf16_code(code), via_f32);
            assert_eq!(bin_lower(via_f32), f32::from_bits((code as u32) << 16) as f64);
        }
        for code in 0x0400u16..0x7C00 {
            let via_f32 = bin_of_f32_bits(half::f16::from_bits(code).to_f32().to_bits());
            assert_eq!(bin_of_f16_normal_code(code), via_f32, "{code:#x}");
        }
    }
}
