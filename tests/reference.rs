//! The acceptance values of METHOD.md section 2, through the sketch, in every dtype.

mod common;
use common::*;
use npmk::{Sketch, Trim};

const N: usize = 1_000_000;

fn fit_k(sketch: &Sketch, trim: Trim) -> (f64, f64) {
    let f = sketch.fit(trim).expect("reference input must fit");
    (f.k, f.lambda)
}

#[test]
fn half_normal_from_f32() {
    let w = half_normal_reference(N, 0.02);
    let values: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let mut s = Sketch::new_boxed();
    s.push_f32(&values);
    for (trim, k_ref, lambda_ref) in [
        (Trim::MID80, 1.205434, 0.887487),
        (Trim::MID90, 1.190923, 0.880888),
        (Trim::FULL, 1.151068, 0.874835),
    ] {
        let (k, lambda) = fit_k(&s, trim);
        assert!((k - k_ref).abs() < 2e-6, "{trim:?}: k = {k:.7}, want {k_ref}");
        assert!((lambda / 0.02 - lambda_ref).abs() < 2e-6, "{trim:?}: lambda = {lambda}");
    }
}

#[test]
fn half_normal_from_f16() {
    let w = half_normal_reference(N, 0.02);
    let values: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f64(v)).collect();
    let mut s = Sketch::new_boxed();
    s.push_f16(&values);
    let (k, _) = fit_k(&s, Trim::MID80);
    assert!((k - 1.205434).abs() < 1e-4, "f16 mid-80 k = {k:.7}");
}

#[test]
fn half_normal_rounded_to_bf16() {
    let w = half_normal_reference(N, 0.02);
    let codes: Vec<u16> = w.iter().map(|&v| bf16_bits(v as f32)).collect();
    let mut s = Sketch::new_boxed();
    s.push_bf16(&codes);
    assert!(s.is_exact());
    let (k, _) = fit_k(&s, Trim::MID80);
    assert!((k - 1.205427).abs() < 2e-6, "bf16 mid-80 k = {k:.7}");
}

#[test]
fn weibull_input_recovers_its_parameters() {
    let w = weibull_reference(N, 1.19, 0.02);
    let values: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let mut s = Sketch::new_boxed();
    s.push_f32(&values);
    for trim in [Trim::MID80, Trim::MID90, Trim::FULL] {
        let (k, lambda) = fit_k(&s, trim);
        assert!((k - 1.19).abs() < 1e-5, "{trim:?}: k = {k:.7}");
        assert!((lambda - 0.02).abs() < 1e-5 * 0.02 * 100.0, "{trim:?}: lambda = {lambda}");
    }
}

#[test]
fn oracle_agrees_with_the_reference_table() {
    // The test's own oracle must reproduce METHOD.md before it can judge the sketch.
    let w = half_normal_reference(N, 0.02);
    let f = oracle_fit(&w, 0.1, 0.9).unwrap();
    assert!((f.k - 1.205434).abs() < 1e-6, "oracle k = {}", f.k);
}
