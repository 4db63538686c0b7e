//! Cross-check with the published estimator, npm-weibull-py 0.4.0 (`weibull_fit`).
//!
//! Each case writes raw weights to a file, has `scripts/npm_weibull_crosscheck.py` run the
//! package on them, and compares: our compatibility estimator to 1e-6 on bf16 data and 1e-4 on
//! f32 data (the package takes log10 in f32, so values on a bin edge may fall either way), and
//! our exact estimator to 2e-3. The package must be installed (`.ci/run` and
//! `scripts/install-deps.sh` do it); without it these tests fail, they do not skip.

mod common;
use common::*;
use npmk::{Dtype, Sketch, Trim};
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the package on `bytes` and returns its (k, lambda, n_bins).
fn package_fit(name: &str, dtype: Dtype, bytes: &[u8], trim: Trim) -> (f64, f64, u64) {
    let dir = std::env::temp_dir().join(format!("npmk-crosscheck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.{}", dtype.name()));
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("python3")
        .arg(repo().join("scripts/npm_weibull_crosscheck.py"))
        .arg(&file)
        .args(["--dtype", &dtype.name().to_lowercase()])
        .args(["--lo", &trim.lo.to_string(), "--hi", &trim.hi.to_string()])
        .output()
        .expect("python3 must be installed to cross-check with npm-weibull-py");
    assert!(
        out.status.success(),
        "npm-weibull-py cross-check failed (install it: bash scripts/install-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(v["ok"], true, "package found no fit for {name}: {v}");
    (v["k"].as_f64().unwrap(), v["lambda"].as_f64().unwrap(), v["n_bins"].as_u64().unwrap())
}

/// Named test distributions, as f64 weights.
fn weights(name: &str, n: usize) -> Vec<f64> {
    let mut rng =
        SplitMix(name.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    (0..n)
        .map(|i| match name {
            "gauss" => 0.02 * rng.gaussian(),
            "gauss-mix" => (if i % 2 == 0 { 0.01 } else { 0.03 }) * rng.gaussian(),
            "laplace" => {
                0.01 * rng.uniform().ln() * if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 }
            }
            "student-t" => {
                let chi: f64 = (0..4).map(|_| rng.gaussian().powi(2)).sum();
                0.02 * rng.gaussian() / (chi / 4.0).sqrt()
            }
            "weibull-0.8" => 0.05 * (-rng.uniform().ln()).powf(1.0 / 0.8),
            _ => unreachable!(),
        })
        .collect()
}

fn encode(dtype: Dtype, w: &[f64]) -> Vec<u8> {
    match dtype {
        Dtype::BF16 => w.iter().flat_map(|&v| bf16_bits(v as f32).to_le_bytes()).collect(),
        Dtype::F32 => w.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect(),
        Dtype::F16 => unreachable!(),
    }
}

#[test]
fn compat_and_exact_estimators_agree_with_the_published_package() {
    let mut worst_compat = [0.0f64; 2];
    let mut worst_exact: f64 = 0.0;
    for name in ["gauss", "gauss-mix", "laplace", "student-t", "weibull-0.8"] {
        let w = weights(name, 200_000);
        for (d, dtype) in [Dtype::BF16, Dtype::F32].into_iter().enumerate() {
            let bytes = encode(dtype, &w);
            let mut sketch = Sketch::new_boxed();
            sketch.push_le_bytes(dtype, &bytes).unwrap();
            for trim in [Trim::MID80, Trim::MID90, Trim::FULL] {
                let (k_pkg, lambda_pkg, bins_pkg) = package_fit(name, dtype, &bytes, trim);
                let ours = npmk::compat::fit(&sketch, trim).unwrap();
                let exact = sketch.fit(trim).unwrap();
                let tolerance = if dtype == Dtype::BF16 { 1e-6 } else { 1e-4 };
                let what = format!("{name} {} {trim:?}", dtype.name());
                assert!(
                    (ours.k - k_pkg).abs() < tolerance,
                    "{what}: compat k {} vs package {k_pkg}",
                    ours.k
                );
                assert!(
                    (ours.lambda / lambda_pkg - 1.0).abs() < 10.0 * tolerance,
                    "{what}: lambda"
                );
                if dtype == Dtype::BF16 {
                    assert_eq!(ours.n_bins as u64, bins_pkg, "{what}: kept bins");
                }
                assert!(
                    (exact.k - k_pkg).abs() < 2e-3,
                    "{what}: exact k {} vs package {k_pkg}",
                    exact.k
                );
                worst_compat[d] = worst_compat[d].max((ours.k - k_pkg).abs());
                worst_exact = worst_exact.max((exact.k - k_pkg).abs());
            }
        }
    }
    eprintln!(
        "largest |k - package k|: compat bf16 {:.1e}, compat f32 {:.1e}, exact {:.1e}",
        worst_compat[0], worst_compat[1], worst_exact
    );
}
