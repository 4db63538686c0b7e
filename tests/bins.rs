//! Where values land, pinned at the boundaries the layout documents (see `npmk::layout`).

use npmk::layout::{bin_lower, bin_upper, BIN_COUNT};
use npmk::{Counts, Dtype, Path, Sketch};

/// The one bin that a single pushed element occupies, or None if it went to a special count.
fn landing(dtype: Dtype, bits: u32) -> (Option<usize>, Counts) {
    let bytes = match dtype {
        Dtype::F32 => bits.to_le_bytes().to_vec(),
        _ => (bits as u16).to_le_bytes().to_vec(),
    };
    let mut results = Vec::new();
    for path in [Path::Simd, Path::Scalar] {
        let mut s = Sketch::new_boxed();
        // Pad with the value itself so that the SIMD path sees whole vectors too.
        let padded: Vec<u8> = bytes.iter().copied().cycle().take(bytes.len() * 64).collect();
        s.push_le_bytes_on(dtype, &padded, path).unwrap();
        let occupied: Vec<usize> = (0..BIN_COUNT).filter(|&j| s.words()[j] != 0).collect();
        assert!(occupied.len() <= 1, "{bits:#x} landed in several bins");
        if let Some(&j) = occupied.first() {
            assert_eq!(s.words()[j], 64);
        }
        results.push((occupied.first().copied(), s.counts()));
    }
    assert_eq!(results[0], results[1], "SIMD and scalar disagree on {bits:#x}");
    results.pop().unwrap()
}

/// Bin index of a positive finite f64 value per the documented rule (f32 bits >> 15).
fn documented_bin(v: f32) -> usize {
    (v.abs().to_bits() >> 15) as usize
}

#[test]
fn bf16_table() {
    // (bits, expected bin, expected special) for bf16 codes.
    let cases: &[(u16, Option<usize>, &str)] = &[
        (0x3F80, Some(0x7F00), "1.0"),
        (0xBF80, Some(0x7F00), "-1.0 has the bin of 1.0"),
        (0x4000, Some(0x8000), "2.0"),
        (0x3F81, Some(0x7F02), "next bf16 above 1.0 skips one (f32-only) bin"),
        (0x7F7F, Some(0xFEFE), "largest finite bf16"),
        (0x0080, Some(0x0100), "smallest normal bf16"),
        (0x0001, Some(0x0002), "smallest subnormal bf16"),
        (0x007F, Some(0x00FE), "largest subnormal bf16"),
        (0x0000, None, "zero"),
        (0x8000, None, "-0.0"),
        (0x7F80, None, "+Inf"),
        (0xFF80, None, "-Inf"),
        (0x7FC0, None, "quiet NaN"),
        (0xFF81, None, "negative NaN with payload"),
    ];
    for &(code, bin, what) in cases {
        let (landed, counts) = landing(Dtype::BF16, code as u32);
        assert_eq!(landed, bin, "{what} ({code:#06x})");
        if let Some(j) = bin {
            // The bin's lower edge is the value itself: the sketch is exact for bf16.
            assert_eq!(bin_lower(j), f32::from_bits((code as u32 & 0x7FFF) << 16) as f64, "{what}");
        }
        let expect = |name: &str| if what.contains(name) { 64 } else { 0 };
        assert_eq!(counts.zero, expect("zero") + expect("-0.0"), "{what}");
        assert_eq!(counts.pos_inf, expect("+Inf"), "{what}");
        assert_eq!(counts.neg_inf, expect("-Inf"), "{what}");
        assert_eq!(counts.nan, expect("NaN"), "{what}");
        assert_eq!(counts.subnormal, expect("subnormal"), "{what}");
        assert_eq!(counts.total, 64);
    }
}

#[test]
fn f16_table() {
    let cases: &[(u16, Option<usize>, &str)] = &[
        (0x3C00, Some(documented_bin(1.0)), "1.0"),
        (0x3C03, Some(documented_bin(1.0)), "1 + 3/1024 shares the bin of 1.0"),
        (0x3C04, Some(documented_bin(1.0) + 1), "1 + 4/1024 is the next bin"),
        (0x7BFF, Some(documented_bin(65504.0)), "largest finite f16"),
        (0x0400, Some(documented_bin(6.103_515_6e-5)), "smallest normal f16"),
        (0x0001, Some(documented_bin(5.960_464_5e-8)), "smallest subnormal f16"),
        (0x83FF, Some(documented_bin(6.097_555e-5)), "largest subnormal f16, negative"),
        (0x0000, None, "zero"),
        (0x8000, None, "-0.0"),
        (0x7C00, None, "+Inf"),
        (0xFC00, None, "-Inf"),
        (0x7E00, None, "NaN"),
        (0xFC01, None, "signalling NaN"),
    ];
    for &(code, bin, what) in cases {
        let (landed, counts) = landing(Dtype::F16, code as u32);
        assert_eq!(landed, bin, "{what} ({code:#06x})");
        let value = half::f16::from_bits(code).to_f64().abs();
        if let Some(j) = bin {
            assert!(bin_lower(j) <= value && value < bin_upper(j), "{what}");
        }
        let subnormal = if what.contains("subnormal") { 64 } else { 0 };
        assert_eq!(counts.subnormal, subnormal, "{what}");
        assert_eq!(counts.nan, if what.contains("NaN") { 64 } else { 0 }, "{what}");
    }
}

#[test]
fn f32_table() {
    let cases: &[(u32, Option<usize>, &str)] = &[
        (0x3F80_0000, Some(0x7F00), "1.0"),
        (0x3F80_7FFF, Some(0x7F00), "just below the next bin"),
        (0x3F80_8000, Some(0x7F01), "first value of the next bin"),
        (0x3FFF_FFFF, Some(0x7FFF), "just below 2.0"),
        (0x7F7F_FFFF, Some(BIN_COUNT - 1), "largest finite f32"),
        (0x0080_0000, Some(0x0100), "smallest normal"),
        (0x0000_0001, Some(0x0000), "smallest subnormal"),
        (0x807F_FFFF, Some(0x00FF), "largest subnormal, negative"),
        (0x0000_0000, None, "zero"),
        (0x8000_0000, None, "-0.0"),
        (0x7F80_0000, None, "+Inf"),
        (0xFF80_0000, None, "-Inf"),
        (0x7FC0_0000, None, "NaN"),
        (0x7F80_0001, None, "signalling NaN, smallest payload"),
        (0xFFFF_FFFF, None, "NaN, all bits"),
    ];
    for &(bits, bin, what) in cases {
        let (landed, counts) = landing(Dtype::F32, bits);
        assert_eq!(landed, bin, "{what} ({bits:#010x})");
        if let Some(j) = bin {
            let v = f32::from_bits(bits).abs() as f64;
            assert!(bin_lower(j) <= v && v < bin_upper(j), "{what}");
        }
        assert_eq!(counts.nan, if what.contains("NaN") { 64 } else { 0 }, "{what}");
        assert_eq!(counts.pos_inf, if what == "+Inf" { 64 } else { 0 }, "{what}");
        assert_eq!(counts.neg_inf, if what == "-Inf" { 64 } else { 0 }, "{what}");
        assert_eq!(counts.usable, if bin.is_some() { 64 } else { 0 }, "{what}");
    }
}

#[test]
fn relative_bin_width_is_at_most_2_pow_minus_8() {
    for j in (0x0100..BIN_COUNT).step_by(37) {
        let width = (bin_upper(j) - bin_lower(j)) / bin_lower(j);
        assert!(width <= 1.0 / 256.0 && width > 1.0 / 513.0, "bin {j:#x}: {width}");
    }
}

#[test]
fn queries_on_an_exact_sketch() {
    let mut s = Sketch::new_boxed();
    // 1.0 (x3), 2.0 (x1), 0.5 (x4), plus a zero and a NaN that queries ignore.
    s.push_bf16(&[0x3F80, 0xBF80, 0x3F80, 0x4000, 0x3F00, 0x3F00, 0xBF00, 0x3F00, 0x0000, 0x7FC0]);
    assert_eq!(s.counts().usable, 8);
    assert_eq!(s.min_magnitude(), Some(0.5));
    assert_eq!(s.max_magnitude(), Some(2.0));
    assert_eq!(s.quantile(0.0), Some(0.5));
    assert_eq!(s.quantile(0.5), Some(0.5));
    assert_eq!(s.quantile(0.51), Some(1.0));
    assert_eq!(s.quantile(0.875), Some(1.0));
    assert_eq!(s.quantile(1.0), Some(2.0));
    assert_eq!(s.quantile(1.5), None);
    assert_eq!(s.cdf(0.49), Some(0.0));
    assert_eq!(s.cdf(0.5), Some(0.5));
    assert_eq!(s.cdf(1.5), Some(0.875));
    assert_eq!(s.cdf(f64::INFINITY), Some(1.0));
    assert!(Sketch::new_boxed().quantile(0.5).is_none());
}

#[test]
fn queries_on_an_f32_sketch_follow_the_data() {
    let values: Vec<f32> = (1..=100_000).map(|i| i as f32 / 100_000.0).collect();
    let mut s = Sketch::new_boxed();
    s.push_f32(&values);
    for q in [0.01, 0.1, 0.25, 0.5, 0.9, 0.999] {
        let v = s.quantile(q).unwrap();
        assert!((v - q).abs() < q * 2.0 / 256.0, "q={q}: {v}");
        let back = s.cdf(v).unwrap();
        assert!((back - q).abs() < 1e-4, "cdf(quantile({q})) = {back}");
    }
    assert!(s.min_magnitude().unwrap() <= 1e-5 && s.max_magnitude().unwrap() >= 1.0);
}
