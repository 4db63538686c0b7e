//! Shared test helpers: an independent sort-based estimator and deterministic inputs.
#![allow(dead_code)]

/// The estimator of METHOD.md section 1, done the slow, obvious way: sort, rank, regress.
#[derive(Debug, Clone, Copy)]
pub struct OracleFit {
    pub k: f64,
    pub lambda: f64,
    pub r2: f64,
    pub ks: f64,
    pub n_used: u64,
}

/// `values` are magnitudes or signed weights; zeros and non-finite values are dropped first.
pub fn oracle_fit(values: &[f64], lo: f64, hi: f64) -> Option<OracleFit> {
    let mut a: Vec<f64> =
        values.iter().map(|v| v.abs()).filter(|v| v.is_finite() && *v > 0.0).collect();
    if a.len() < 100 {
        return None;
    }
    a.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let n = a.len() as f64;
    let mut pts = Vec::new();
    for (idx, &v) in a.iter().enumerate() {
        let i = (idx + 1) as f64;
        let f = (i - 0.5) / n;
        if f >= lo && f <= hi {
            pts.push((v.ln(), (-(-f).ln_1p()).ln(), i, v));
        }
    }
    let distinct = {
        let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        xs.dedup();
        xs.len()
    };
    if distinct < 2 {
        return None;
    }
    let m = pts.len() as f64;
    let xm = pts.iter().map(|p| p.0).sum::<f64>() / m;
    let ym = pts.iter().map(|p| p.1).sum::<f64>() / m;
    let sxx: f64 = pts.iter().map(|p| (p.0 - xm) * (p.0 - xm)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - xm) * (p.1 - ym)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - ym) * (p.1 - ym)).sum();
    let k = sxy / sxx;
    let lambda = (xm - ym / k).exp();
    let r2 = sxy * sxy / (sxx * syy);
    let cdf = |v: f64| 1.0 - (-(v / lambda).powf(k)).exp();
    let ks = pts
        .iter()
        .map(|p| ((p.2 / n - cdf(p.3)).abs()).max(((p.2 - 1.0) / n - cdf(p.3)).abs()))
        .fold(0.0, f64::max);
    Some(OracleFit { k, lambda, r2, ks, n_used: pts.len() as u64 })
}

/// Inverse of the standard normal CDF, to about 1e-15: a rational first guess refined by
/// Halley steps on erfc.
pub fn normal_quantile(p: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0);
    // Initial guess (Abramowitz-Stegun 26.2.23 on the nearer tail).
    let t = |q: f64| (-2.0 * q.ln()).sqrt();
    let guess = |q: f64| {
        let s = t(q);
        s - (2.515517 + 0.802853 * s + 0.010328 * s * s)
            / (1.0 + 1.432788 * s + 0.189269 * s * s + 0.001308 * s * s * s)
    };
    let mut x = if p < 0.5 { -guess(p) } else { guess(1.0 - p) };
    for _ in 0..4 {
        // Phi(x) = erfc(-x / sqrt 2) / 2, computed without cancellation on either side.
        let cdf = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let e = cdf - p;
        let u = e / pdf;
        x -= u / (1.0 + 0.5 * x * u);
    }
    x
}

/// The half-normal reference input of METHOD.md section 2.
pub fn half_normal_reference(n: usize, sigma: f64) -> Vec<f64> {
    (1..=n)
        .map(|i| {
            let f = (i as f64 - 0.5) / n as f64;
            sigma * normal_quantile(0.5 * (1.0 + f))
        })
        .collect()
}

/// The Weibull(k, lambda) reference input of METHOD.md section 2.
pub fn weibull_reference(n: usize, k: f64, lambda: f64) -> Vec<f64> {
    (1..=n)
        .map(|i| {
            let f = (i as f64 - 0.5) / n as f64;
            lambda * (-(1.0 - f).ln()).powf(1.0 / k)
        })
        .collect()
}

/// bf16 bits of an f32, rounding to nearest even (NaN kept quiet).
pub fn bf16_bits(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// f32 value of bf16 bits.
pub fn bf16_value(code: u16) -> f32 {
    f32::from_bits((code as u32) << 16)
}

/// A small deterministic generator (splitmix64) for tests that want many numbers.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}
