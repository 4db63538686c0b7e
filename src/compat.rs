//! The estimator of the published npm-weibull-py package (0.4.0, `weibull_fit`), from a sketch.
//!
//! That package histograms `log10 |w|` into 1024 equal bins over [-12, 2], places each bin at
//! its mid-rank `F` (count before it plus half its count, over the total), keeps the whole
//! bins whose `F` lies in the trim, and regresses `ln(-ln(1 - F + 1e-12))` on the bin centres
//! by count-weighted least squares. It agrees with the exact estimator to about 1e-3 on real
//! matrices; this module reproduces it so results can be compared with published numbers.
//!
//! Sketch bins are finer than the package's. For an exact (bf16) sketch every sketch bin is a
//! single value and lands in one package bin, so the histogram is the package's own. Otherwise
//! a sketch bin that straddles a package edge is split in proportion to its even-spread model.
//! The package drops zeros, NaN, Inf and magnitudes outside [1e-12, 100); so does this.

use crate::fit::{NoFit, Trim};
use crate::layout::BIN_COUNT;
use crate::sketch::{BinModel, Sketch};

/// Package bins over log10 |w|.
const BINS: usize = 1024;
/// The package's range of log10 |w|.
const LOG_LO: f64 = -12.0;
const LOG_HI: f64 = 2.0;
/// The package needs at least this many counted elements and kept bins.
const MIN_TOTAL: f64 = 100.0;
const MIN_BINS: usize = 5;

/// What the package's `weibull_fit` reports.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
pub struct CompatFit {
    /// Shape.
    pub k: f64,
    /// Scale.
    pub lambda: f64,
    /// Count-weighted R^2.
    pub r2: f64,
    /// Largest |CDF at a bin's upper edge - Weibull CDF at its centre| over all 1024 bins.
    pub ks: f64,
    /// Bins kept by the trim (the package's `n_used`).
    pub n_bins: usize,
    /// Elements counted in the histogram (fractional when sketch bins were split).
    pub n: f64,
}

/// The package's log10 histogram of the sketch's magnitudes.
fn histogram(sketch: &Sketch) -> [f64; BINS] {
    let mut hist = [0.0; BINS];
    let Some((first, last)) = sketch.occupied() else { return hist };
    let model = sketch.model();
    let width = (LOG_HI - LOG_LO) / BINS as f64;
    let package_bin = |log: f64| libm::floor((log - LOG_LO) / width) as i64;
    for j in first..=last.min(BIN_COUNT - 1) {
        let count = sketch.bin(j) as f64;
        if count == 0.0 {
            continue;
        }
        let (lo, hi) = model.interval(j);
        if model == BinModel::Exact || hi <= lo {
            let v = lo;
            if (1e-12..100.0).contains(&v) {
                hist[package_bin(libm::log10(v)) as usize] += count;
            }
            continue;
        }
        // Spread model: split the bin's count over the package bins it overlaps, in proportion
        // to length (the model is uniform in value).
        let (a, b) = (lo.max(1e-12), hi.min(100.0));
        if a >= b {
            continue;
        }
        let mut start = a;
        let mut p = package_bin(libm::log10(a)).clamp(0, BINS as i64 - 1);
        while start < b {
            let edge = libm::pow(10.0, LOG_LO + (p + 1) as f64 * width);
            let end = if edge > start { edge.min(b) } else { b };
            hist[p as usize] += count * (end - start) / (hi - lo);
            start = end;
            p += 1;
            if p >= BINS as i64 {
                break;
            }
        }
    }
    hist
}

/// The package's bounds on the mid-rank F for a trim: symmetric trims become
/// `margin = (1 - width) / 2` as the package computes them, the full range is open.
fn bounds(trim: Trim) -> (f64, f64, bool) {
    let width = trim.hi - trim.lo;
    if width == 1.0 {
        return (0.0, 1.0, true);
    }
    if (trim.lo + trim.hi - 1.0).abs() < 1e-12 {
        let margin = (1.0 - width) / 2.0;
        return (margin, 1.0 - margin, false);
    }
    (trim.lo, trim.hi, false)
}

/// npm-weibull-py's `weibull_fit` on the sketch's data.
pub fn fit(sketch: &Sketch, trim: Trim) -> Result<CompatFit, NoFit> {
    let trim = Trim::new(trim.lo, trim.hi)?;
    let hist = histogram(sketch);
    let total: f64 = hist.iter().sum();
    if total < MIN_TOTAL {
        return Err(NoFit::TooFewElements { usable: total as u64 });
    }
    let (f_lo, f_hi, open) = bounds(trim);
    let width = (LOG_HI - LOG_LO) / BINS as f64;
    let centre = |j: usize| LOG_LO + (j as f64 + 0.5) * width;

    // Each kept bin as (x, y, weight): mid-rank F inside the bounds, non-empty.
    let for_each_kept = |visit: &mut dyn FnMut(f64, f64, f64)| {
        let mut cumulative = 0.0;
        for (j, &h) in hist.iter().enumerate() {
            let before = cumulative;
            cumulative += h;
            let f_mid = (cumulative / total + before / total) / 2.0;
            let inside =
                if open { f_mid > f_lo && f_mid < f_hi } else { f_mid >= f_lo && f_mid <= f_hi };
            if h > 0.0 && inside {
                let x = centre(j) * core::f64::consts::LN_10;
                visit(x, libm::log(-libm::log(1.0 - f_mid + 1e-12)), h);
            }
        }
    };
    let (mut sw, mut sx, mut sy, mut kept) = (0.0, 0.0, 0.0, 0usize);
    for_each_kept(&mut |x, y, w| {
        sw += w;
        sx += w * x;
        sy += w * y;
        kept += 1;
    });
    if kept < MIN_BINS {
        return Err(NoFit::TooFewDistinct { distinct: kept as u64 });
    }
    let (xm, ym) = (sx / sw, sy / sw);
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for_each_kept(&mut |x, y, w| {
        sxx += w * (x - xm) * (x - xm);
        sxy += w * (x - xm) * (y - ym);
        syy += w * (y - ym) * (y - ym);
    });
    let k = sxy / sxx;
    let lambda = libm::exp(xm - ym / k);
    if !(k.is_finite() && k > 0.0 && lambda.is_finite() && lambda > 0.0) {
        return Err(NoFit::TooFewDistinct { distinct: kept as u64 });
    }
    let residual = syy - k * sxy;
    let r2 = 1.0 - residual / syy.max(1e-12);

    let mut ks: f64 = 0.0;
    let mut cumulative = 0.0;
    for (j, &h) in hist.iter().enumerate() {
        cumulative += h;
        let v = libm::pow(10.0, centre(j));
        let weibull = -libm::expm1(-libm::pow(v / lambda, k));
        ks = ks.max((cumulative / total - weibull).abs());
    }
    Ok(CompatFit { k, lambda, r2, ks, n_bins: kept, n: total })
}
