//! The probability-plot estimator of the Weibull shape k, computed from a sketch.
//!
//! For the usable magnitudes sorted ascending, `a(1) <= ... <= a(n)`, with plotting positions
//! `F_i = (i - 0.5) / n`, keep the ranks with `lo <= F_i <= hi` and regress
//! `y_i = ln(-ln(1 - F_i))` on `x_i = ln a(i)` by ordinary least squares: `k` is the slope,
//! `lambda = exp(-intercept / k)`. `R^2` is that regression's; `KS` is the largest
//! `|F_empirical - F_weibull|` over the kept ranks, taking both sides of each step of the
//! empirical CDF.
//!
//! The sketch stores ranks as runs (one per occupied bin), so each sum is a sum over runs:
//! x is constant (exact sketch) or linear in the rank (spread model) within a run, and the
//! sums of y over a run come in constant time from the Euler-Maclaurin formula with a
//! closed-form integral (module `ranks`). The cost is proportional to the number of occupied
//! bins, not to n.

use crate::layout::BIN_COUNT;
use crate::ranks::{sum_y_squared, y_slope_at_rank, PrefixY};
use crate::sketch::{BinModel, Sketch};

/// Fewer usable elements than this give no fit.
pub const MIN_USABLE: u64 = 100;

/// The body of the distribution that a fit uses: the ranks whose plotting position
/// `F = (i - 0.5) / n` lies in `[lo, hi]` (inclusive).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
pub struct Trim {
    /// Lower plotting position kept.
    pub lo: f64,
    /// Upper plotting position kept.
    pub hi: f64,
}

impl Trim {
    /// The central 80%: the papers' protocol and the default.
    pub const MID80: Trim = Trim { lo: 0.10, hi: 0.90 };
    /// The central 90%.
    pub const MID90: Trim = Trim { lo: 0.05, hi: 0.95 };
    /// Every rank.
    pub const FULL: Trim = Trim { lo: 0.0, hi: 1.0 };

    /// A custom body; `0 <= lo < hi <= 1`.
    pub fn new(lo: f64, hi: f64) -> Result<Trim, NoFit> {
        if lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo < hi && hi <= 1.0 {
            Ok(Trim { lo, hi })
        } else {
            Err(NoFit::InvalidTrim)
        }
    }

    /// The kept ranks as a 1-based inclusive range `(first, last)`; empty when `first > last`.
    /// The bounds are checked with the same floating-point comparisons a sort-based estimator
    /// makes, so both keep exactly the same ranks.
    pub fn rank_range(&self, n: u64) -> (u64, u64) {
        let nf = n as f64;
        let position = |i: u64| (i as f64 - 0.5) / nf;
        let mut first = (libm::ceil(self.lo * nf + 0.5).max(1.0) as u64).min(n + 1);
        while first > 1 && position(first - 1) >= self.lo {
            first -= 1;
        }
        while first <= n && position(first) < self.lo {
            first += 1;
        }
        let mut last = (libm::floor(self.hi * nf + 0.5).max(0.0) as u64).min(n);
        while last < n && position(last + 1) <= self.hi {
            last += 1;
        }
        while last >= 1 && position(last) > self.hi {
            last -= 1;
        }
        (first, last)
    }
}

/// A fitted Weibull plot.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "std", derive(serde::Serialize))]
pub struct WeibullFit {
    /// Shape: the slope of the Weibull plot.
    pub k: f64,
    /// Scale, in the units of the weights.
    pub lambda: f64,
    /// Coefficient of determination of the regression.
    pub r2: f64,
    /// Kolmogorov-Smirnov distance over the kept ranks.
    pub ks: f64,
    /// Number of ranks in the regression.
    pub n_used: u64,
}

/// Why there is no fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoFit {
    /// Fewer than [`MIN_USABLE`] finite non-zero elements.
    TooFewElements {
        /// Finite non-zero elements present.
        usable: u64,
    },
    /// Fewer than two distinct values (occupied bins) in the body.
    TooFewDistinct {
        /// Distinct values in the body.
        distinct: u64,
    },
    /// The trim is not `0 <= lo < hi <= 1`.
    InvalidTrim,
}

impl core::fmt::Display for NoFit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NoFit::TooFewElements { usable } => write!(
                f,
                "{usable} finite non-zero elements, fewer than the {MIN_USABLE} a fit needs"
            ),
            NoFit::TooFewDistinct { distinct } => {
                write!(f, "{distinct} distinct values in the body, fewer than 2")
            }
            NoFit::InvalidTrim => f.write_str("the trim must satisfy 0 <= lo < hi <= 1"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for NoFit {}

/// The kept part of one bin: ranks `first..=last` (1-based, global) of the `count` ranks that
/// start at `start`.
#[derive(Clone, Copy)]
struct Run {
    bin: usize,
    start: u64,
    count: u64,
    first: u64,
    last: u64,
}

impl Run {
    fn kept(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// The bins that hold the body's ranks, found by one counting scan.
struct Body {
    /// First and last bin with kept ranks.
    lo_bin: usize,
    hi_bin: usize,
    /// Ranks in bins below `lo_bin`.
    before: u64,
    /// The bin holding the middle kept rank: its x is the origin of the running sums.
    mid_bin: usize,
}

impl Body {
    fn find(sketch: &Sketch, first: u64, last: u64) -> Body {
        const CHUNK: usize = 32;
        let middle = first + (last - first) / 2;
        let mut body = Body { lo_bin: usize::MAX, hi_bin: BIN_COUNT - 1, before: 0, mid_bin: 0 };
        let mut before = 0u64;
        for (c, chunk) in sketch.words()[..BIN_COUNT].chunks(CHUNK).enumerate() {
            // Whole chunks below the body (most of the 65,280 bins) are skipped by their sum.
            let sum: u64 = chunk.iter().sum();
            if before + sum < first.max(1) {
                before += sum;
                continue;
            }
            for (i, &count) in chunk.iter().enumerate() {
                let bin = c * CHUNK + i;
                let after = before + count;
                if count != 0 && after >= first && body.lo_bin == usize::MAX {
                    (body.lo_bin, body.before) = (bin, before);
                }
                if count != 0 && before < middle && middle <= after {
                    body.mid_bin = bin;
                }
                if after >= last {
                    body.hi_bin = bin;
                    return body;
                }
                before = after;
            }
        }
        body
    }

    /// Calls `visit` for each occupied bin that has ranks inside `first..=last`.
    fn for_each_run(&self, sketch: &Sketch, first: u64, last: u64, mut visit: impl FnMut(Run)) {
        let mut before = self.before;
        for bin in self.lo_bin..=self.hi_bin.min(BIN_COUNT - 1) {
            let count = sketch.bin(bin);
            if count == 0 {
                continue;
            }
            let start = before + 1;
            before += count;
            if before < first {
                continue;
            }
            if start > last {
                break;
            }
            visit(Run { bin, start, count, first: start.max(first), last: before.min(last) });
        }
    }
}

/// How x = ln |w| varies over a run: `x_j = center + slope * d_j`, with
/// `d_j = (j + 0.5 - c/2) / c` for the j-th (0-based) of the bin's c elements.
struct RunX {
    center: f64,
    slope: f64,
    /// Sums over the kept j of d_j, d_j^2 and d_j (j - mean j).
    sum_d: f64,
    sum_d2: f64,
    sum_d_dev: f64,
}

impl RunX {
    fn new(model: BinModel, run: &Run) -> RunX {
        let (lo, hi) = model.interval(run.bin);
        let mid = 0.5 * (lo + hi);
        let (center, slope) = (libm::log(mid), (hi - lo) / mid);
        let c = run.count as f64;
        let m = run.kept() as f64;
        let j_mean = 0.5 * ((run.first - run.start) + (run.last - run.start)) as f64;
        let offset = j_mean + 0.5 - 0.5 * c; // mean of (j + 0.5 - c/2) over kept j
        let spread = m * (m * m - 1.0) / 12.0; // sum of (j - j_mean)^2
        RunX {
            center,
            slope,
            sum_d: m * offset / c,
            sum_d2: (spread + m * offset * offset) / (c * c),
            sum_d_dev: spread / c,
        }
    }
}

/// Fits the Weibull plot of a sketch over the body `trim`.
pub fn fit(sketch: &Sketch, trim: Trim) -> Result<WeibullFit, NoFit> {
    let trim = Trim::new(trim.lo, trim.hi)?;
    let n = sketch.counts().usable;
    if n < MIN_USABLE {
        return Err(NoFit::TooFewElements { usable: n });
    }
    let (first, last) = trim.rank_range(n);
    let model = sketch.model();
    if first > last {
        return Err(NoFit::TooFewDistinct { distinct: 0 });
    }
    let body = Body::find(sketch, first, last);

    // One pass for the moments, taken about x0 (the middle rank's x) so that centring them
    // afterwards cancels little. Sums of y over a run come from prefix sums; within a run y is
    // taken as linear in the rank for the (small) spread-model term.
    let x0 =
        RunX::new(model, &Run { bin: body.mid_bin, start: 1, count: 1, first: 1, last: 1 }).center;
    let mut prefix = PrefixY::new(n);
    let (mut m, mut distinct) = (0u64, 0u64);
    let (mut sx, mut sxx, mut sy, mut sxy) = (0.0, 0.0, 0.0, 0.0);
    body.for_each_run(sketch, first, last, |run| {
        let x = RunX::new(model, &run);
        let kept = run.kept() as f64;
        let y_before = prefix.at(run.first - 1);
        let y_run = prefix.at(run.last) - y_before;
        let dx = x.center - x0;
        m += run.kept();
        distinct += 1;
        sx += kept * dx + x.slope * x.sum_d;
        sxx += kept * dx * dx + 2.0 * dx * x.slope * x.sum_d + x.slope * x.slope * x.sum_d2;
        sy += y_run;
        sxy += dx * y_run;
        if x.slope != 0.0 {
            // dy/d(rank) at the run's middle rank; the term is already a small correction
            // (x.slope <= 2^-8), so the tangent in place of the secant costs nothing visible.
            let y_slope = y_slope_at_rank(0.5 * (run.first + run.last) as f64, n);
            sxy += x.slope * (y_run / kept * x.sum_d + y_slope * x.sum_d_dev);
        }
    });
    if distinct < 2 {
        return Err(NoFit::TooFewDistinct { distinct });
    }
    let mf = m as f64;
    let (x_mean, y_mean) = (x0 + sx / mf, sy / mf);
    let sxx = sxx - sx * sx / mf;
    let sxy = sxy - sx * sy / mf;
    if sxx.is_nan() || sxx <= 0.0 {
        return Err(NoFit::TooFewDistinct { distinct });
    }
    let syy = sum_y_squared(first - 1, last, n) - mf * y_mean * y_mean;
    let k = sxy / sxx;
    let lambda = libm::exp(x_mean - y_mean / k);
    let r2 = if syy > 0.0 { (sxy * sxy / (sxx * syy)).min(1.0) } else { 1.0 };

    // Second pass: the KS distance, at both ends of each run's kept ranks. With z = ln(v / lambda),
    // F_weibull(v) = 1 - exp(-exp(k z)).
    let nf = n as f64;
    let ln_lambda = x_mean - y_mean / k;
    let weibull_cdf = |ln_v: f64| -libm::expm1(-libm::exp(k * (ln_v - ln_lambda)));
    let mut ks: f64 = 0.0;
    body.for_each_run(sketch, first, last, |run| {
        let x = RunX::new(model, &run);
        let c = run.count as f64;
        let d = |rank: u64| ((rank - run.start) as f64 + 0.5 - 0.5 * c) / c;
        let (cdf_first, cdf_last) = if x.slope == 0.0 {
            let cdf = weibull_cdf(x.center);
            (cdf, cdf)
        } else {
            (
                weibull_cdf(x.center + x.slope * d(run.first)),
                weibull_cdf(x.center + x.slope * d(run.last)),
            )
        };
        let below = ((run.first - 1) as f64 / nf - cdf_first).abs();
        let above = (run.last as f64 / nf - cdf_last).abs();
        ks = ks.max(below).max(above);
    });

    Ok(WeibullFit { k, lambda, r2, ks, n_used: m })
}
