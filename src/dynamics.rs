//! Training dynamics of k: NPM-dk, NPM-d2k and the phases P0 to P3 (METHOD.md section 4).
//!
//! The time axis is `u = log10(step)`, because checkpoints are saved log-spaced (Pythia: steps
//! 1, 2, 4, ..., 512, then every 1000). Derivatives are per decade of steps.
//!
//! Two readings share the same formulas:
//!
//! - [`analyze`] reads a whole trajectory offline: central differences, the phases with their
//!   boundary steps, the extremum and `t_set`. The trajectory command reports it, and
//!   [`spread`] gives the P3 "bifurcation" spread between several series (classes, matrices).
//! - [`OnlineTracker`] reads one step at a time from past points only, for the per-step monitor
//!   of the C ABI. It allocates once, at construction, and never per push.
//!
//! # Formulas
//!
//! With `h1 = u_i - u_{i-1}`, `h2 = u_{i+1} - u_i` and the segment slopes
//! `s_j = (k_{j+1} - k_j) / (u_{j+1} - u_j)`:
//!
//! ```text
//! dk_i  = -h2/(h1(h1+h2)) k_{i-1} + (h2-h1)/(h1 h2) k_i + h1/(h2(h1+h2)) k_{i+1}
//!       = (h2 s_{i-1} + h1 s_i) / (h1 + h2)
//! d2k_i = 2 [k_{i-1}/(h1(h1+h2)) - k_i/(h1 h2) + k_{i+1}/(h2(h1+h2))]
//!       = 2 (s_i - s_{i-1}) / (h1 + h2)
//! ```
//!
//! The second form of each is algebraically identical to METHOD.md's and is the one computed: it
//! differences k before weighting, so the common level of k (about 1.2) does not cancel in
//! terms of size k/h^2. Gaps in u are computed as `log1p((b - a) / a) / ln 10`, which stays
//! positive and accurate for close, large steps where `log10(b) - log10(a)` would round to 0.
//!
//! # Phases (offline)
//!
//! Phases are closed intervals of checkpoints; adjacent phases share their boundary point.
//! With `a` the start point of the first segment with `|s| >= epsilon` (the last plateau
//! point), `e` the start point of the first later segment whose slope has the opposite sign
//! (the extremum, `t_ext`; a zero slope is no reversal), and `t` the `t_set` point:
//!
//! - P0 = `[first, a]`, absent when the very first segment is steep (`a` is the first point).
//! - P1 = `[a, e]`; without a sign reversal, `[a, max(t, a + 1)]` (the run settled without
//!   overshoot; no extremum and no P2), or `[a, last]` when it never settled.
//! - P2 = `[e, t]`, absent when `t <= e` (t_set at or before t_ext).
//! - P3 = `[max(t, end of P1), last]`, absent when that is the last point.
//! - A flat trajectory (no `|s| >= epsilon`) is all P0: no P1, no extremum, no P2, no P3.
//!
//! `t_set` is the first point of the final run of points within `delta` of the final k (that
//! point itself included). It always exists: `t_set` equal to the last step means the run did
//! not settle before its end.
//!
//! # Limitations
//!
//! - The reading is only as good as the noise allows. The standard deviation of k is about
//!   1.3/sqrt(n) for n elements; a slope threshold below [`noise_slope_floor`] reads noise, and a
//!   `delta` below a few times that deviation makes `t_set` noisy, since it is measured against
//!   the final k, which is itself noisy.
//! - The first sign reversal is taken literally, with no hysteresis: a noisy segment of the
//!   opposite sign inside P1 ends P1 early. Dense, linearly spaced late checkpoints make `du`
//!   small and segment slopes noisy; thin them to roughly log spacing before reading phases.
//! - The `u` field of a point loses resolution above 2^53 steps (u64 to f64); gaps do not.
//! - The online phase is causal and only approximates the offline one; see [`OnlineTracker`].

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Default slope threshold, in k per decade, that separates a plateau from motion.
pub const DEFAULT_EPSILON: f64 = 0.01;

/// Default half-width of the band around the final k that counts as settled.
pub const DEFAULT_DELTA: f64 = 0.0025;

/// Default number of recent points the online tracker requires inside the settled band.
///
/// Four matches the settled tail of the published Pythia-70M trajectory (50000 to 143000).
pub const DEFAULT_SETTLE_WINDOW: usize = 4;

/// Everything that can be wrong with a trajectory or an option; each variant says which rule
/// broke so the message can tell the user what to fix.
#[derive(Debug, Clone, PartialEq)]
pub enum DynamicsError {
    /// Fewer than three points: a central difference needs a neighbour on each side.
    TooFewPoints {
        /// Number of points given.
        found: usize,
    },
    /// Step 0 has no logarithm, so it cannot sit on the log10 time axis.
    ZeroStep,
    /// The same step appears twice; the trajectory would be ambiguous there.
    DuplicateStep {
        /// The repeated step.
        step: u64,
    },
    /// k is NaN or infinite at this step (a failed fit should be left out, not pushed).
    NonFiniteK {
        /// The step carrying the bad value.
        step: u64,
    },
    /// The online tracker got a step not after the previous one; time only moves forward.
    NonIncreasingStep {
        /// The step pushed before.
        previous: u64,
        /// The offending step.
        step: u64,
    },
    /// An option is out of range.
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// What the option must be.
        expected: &'static str,
    },
    /// The spread between series needs at least two series.
    TooFewSeries {
        /// Number of series given.
        found: usize,
    },
    /// No step inside the window carries a value in every series.
    NoCommonSteps {
        /// First step of the window.
        start_step: u64,
        /// Last step of the window.
        end_step: u64,
    },
    /// One of several named series is malformed.
    Series {
        /// The series' name.
        name: String,
        /// What is wrong with it.
        error: Box<DynamicsError>,
    },
}

impl fmt::Display for DynamicsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooFewPoints { found } => write!(
                f,
                "a trajectory needs at least 3 checkpoints (distinct steps) for NPM-dk and \
                 NPM-d2k; got {found}"
            ),
            Self::ZeroStep => {
                write!(f, "step 0 cannot be placed on the log10(step) axis; drop it or start at 1")
            }
            Self::DuplicateStep { step } => write!(f, "step {step} appears more than once"),
            Self::NonFiniteK { step } => write!(f, "k at step {step} is NaN or infinite"),
            Self::NonIncreasingStep { previous, step } => {
                write!(f, "step {step} does not come after the previous step {previous}")
            }
            Self::InvalidOption { name, expected } => write!(f, "option {name} must be {expected}"),
            Self::TooFewSeries { found } => {
                write!(f, "a spread needs at least 2 series; got {found}")
            }
            Self::NoCommonSteps { start_step, end_step } => {
                write!(f, "no step in [{start_step}, {end_step}] has a value in every series")
            }
            Self::Series { name, error } => write!(f, "series {name}: {error}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DynamicsError {}

/// One of the four training phases of METHOD.md section 4.
///
/// The discriminants are stable numeric codes for the C ABI.
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i32)]
pub enum Phase {
    /// Initial plateau: k has not started to move.
    P0 = 0,
    /// Skeleton formation: k moves, up to its first extremum.
    P1 = 1,
    /// Anchor: from the extremum until k settles near its final value.
    P2 = 2,
    /// Bifurcation window: k has settled; classes may now drift apart.
    P3 = 3,
}

impl Phase {
    /// The stable numeric code (0 to 3) used by the C ABI.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The name used in reports, "P0" to "P3".
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::P0 => "P0",
            Self::P1 => "P1",
            Self::P2 => "P2",
            Self::P3 => "P3",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the extremum ending P1 is a maximum (k rose first) or a minimum (k fell first).
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[cfg_attr(feature = "std", serde(rename_all = "lowercase"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtremumKind {
    /// k rose during P1 and then turned down.
    Max,
    /// k fell during P1 and then turned up.
    Min,
}

/// The extremum of k that ends P1 (step t_ext).
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extremum {
    /// Step of the extremum (t_ext).
    pub step: u64,
    /// k at that step.
    pub k: f64,
    /// Maximum or minimum.
    pub kind: ExtremumKind,
}

/// Thresholds of the offline phase reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Slope, in k per decade, from which k counts as moving (`|s| >= epsilon`). Must be > 0.
    pub epsilon: f64,
    /// Half-width of the band around the final k that counts as settled. Must be >= 0.
    pub delta: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { epsilon: DEFAULT_EPSILON, delta: DEFAULT_DELTA }
    }
}

/// Rejects thresholds that would make the phase rules meaningless (NaN, negative, or a zero
/// epsilon, under which a perfectly flat segment would count as motion).
fn check_thresholds(epsilon: f64, delta: f64) -> Result<(), DynamicsError> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(DynamicsError::InvalidOption {
            name: "epsilon",
            expected: "finite and greater than 0",
        });
    }
    if !(delta.is_finite() && delta >= 0.0) {
        return Err(DynamicsError::InvalidOption {
            name: "delta",
            expected: "finite and at least 0",
        });
    }
    Ok(())
}

/// One checkpoint of an analysed trajectory.
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Training step.
    pub step: u64,
    /// log10(step), the time axis of the derivatives.
    pub u: f64,
    /// k at this step.
    pub k: f64,
    /// NPM-dk per decade: the central difference inside, the one-sided segment slope at the two
    /// end points (so every point has a rate).
    pub dk: f64,
    /// NPM-d2k per decade squared; `None` at the two end points, which lack a neighbour.
    pub d2k: Option<f64>,
}

/// The straight piece between two consecutive checkpoints.
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Step at the start of the segment.
    pub start_step: u64,
    /// Step at the end of the segment.
    pub end_step: u64,
    /// Segment slope s_j, k per decade; the phase rules read this.
    pub slope: f64,
    /// Change of k per 1000 steps, the linear-time rate users compare with learning-rate
    /// schedules.
    pub per_1000_steps: f64,
}

/// A phase with its boundary steps (closed interval; neighbours share a boundary).
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseSpan {
    /// Which phase.
    pub name: Phase,
    /// First step of the phase.
    pub start_step: u64,
    /// Last step of the phase.
    pub end_step: u64,
}

/// The offline reading of one trajectory; see the module docs for the rules.
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// The checkpoints in step order, with their derivatives.
    pub points: Vec<Point>,
    /// The segments between consecutive checkpoints (one fewer than points).
    pub segments: Vec<Segment>,
    /// The phases that occur, in order; a phase that does not occur is absent.
    pub phases: Vec<PhaseSpan>,
    /// The extremum ending P1, if k reversed after it started to move.
    pub extremum: Option<Extremum>,
    /// First step from which every k stays within delta of the final k.
    pub t_set: u64,
    /// k at the last checkpoint, the reference of `t_set`.
    pub final_k: f64,
    /// The epsilon used.
    pub epsilon: f64,
    /// The delta used.
    pub delta: f64,
}

impl Trajectory {
    /// The span of `phase`, if it occurs.
    pub fn phase(&self, phase: Phase) -> Option<PhaseSpan> {
        self.phases.iter().copied().find(|p| p.name == phase)
    }

    /// The P3 window `(start_step, end_step)`, to pass to [`spread`].
    pub fn p3_window(&self) -> Option<(u64, u64)> {
        self.phase(Phase::P3).map(|p| (p.start_step, p.end_step))
    }
}

/// Decades between steps `a < b`, i.e. `log10(b) - log10(a)`, accurate and positive even when
/// the two steps are close and large.
fn decades_between(a: u64, b: u64) -> f64 {
    debug_assert!(0 < a && a < b);
    libm::log1p((b - a) as f64 / a as f64) / core::f64::consts::LN_10
}

/// Non-uniform central first difference from the two segment slopes around a point.
fn central_dk(h1: f64, h2: f64, s1: f64, s2: f64) -> f64 {
    (h2 * s1 + h1 * s2) / (h1 + h2)
}

/// Non-uniform second difference from the two segment slopes around a point.
fn second_dk(h1: f64, h2: f64, s1: f64, s2: f64) -> f64 {
    2.0 * (s2 - s1) / (h1 + h2)
}

/// Sorts `(step, k)` pairs by step and checks them: no step 0, no duplicate, finite k.
fn sorted_checked(points: &[(u64, f64)]) -> Result<Vec<(u64, f64)>, DynamicsError> {
    let mut pts = points.to_vec();
    pts.sort_unstable_by_key(|p| p.0);
    if pts.first().is_some_and(|p| p.0 == 0) {
        return Err(DynamicsError::ZeroStep);
    }
    if let Some(w) = pts.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(DynamicsError::DuplicateStep { step: w[0].0 });
    }
    if let Some(p) = pts.iter().find(|p| !p.1.is_finite()) {
        return Err(DynamicsError::NonFiniteK { step: p.0 });
    }
    Ok(pts)
}

/// Reads one trajectory of `(step, k)` points, given in any order.
///
/// Errors: fewer than 3 points, a step 0, a duplicated step (named), a non-finite k, or an
/// invalid option. See the module docs for the phase rules and their edge cases.
pub fn analyze(points: &[(u64, f64)], options: &Options) -> Result<Trajectory, DynamicsError> {
    check_thresholds(options.epsilon, options.delta)?;
    if points.len() < 3 {
        return Err(DynamicsError::TooFewPoints { found: points.len() });
    }
    let pts = sorted_checked(points)?;
    let n = pts.len();
    let last = n - 1;

    // Segments: gaps in decades, slopes per decade and per 1000 steps.
    let h: Vec<f64> = pts.windows(2).map(|w| decades_between(w[0].0, w[1].0)).collect();
    let segments: Vec<Segment> = pts
        .windows(2)
        .zip(&h)
        .map(|(w, &hj)| {
            let dk = w[1].1 - w[0].1;
            Segment {
                start_step: w[0].0,
                end_step: w[1].0,
                slope: dk / hj,
                per_1000_steps: dk * 1000.0 / (w[1].0 - w[0].0) as f64,
            }
        })
        .collect();
    let s: Vec<f64> = segments.iter().map(|seg| seg.slope).collect();

    // Points: central differences inside, one-sided slope and no d2k at the ends.
    let points: Vec<Point> = (0..n)
        .map(|i| {
            let (dk, d2k) = if i == 0 {
                (s[0], None)
            } else if i == last {
                (s[last - 1], None)
            } else {
                let (h1, h2, s1, s2) = (h[i - 1], h[i], s[i - 1], s[i]);
                (central_dk(h1, h2, s1, s2), Some(second_dk(h1, h2, s1, s2)))
            };
            let (step, k) = pts[i];
            Point { step, u: libm::log10(step as f64), k, dk, d2k }
        })
        .collect();

    // Landmarks: onset segment a, reversal segment e (its start point is t_ext), t_set point t.
    let onset = s.iter().position(|x| libm::fabs(*x) >= options.epsilon);
    let reversal = onset.and_then(|a| (a + 1..s.len()).find(|&j| s[j] * s[a] < 0.0));
    let final_k = pts[last].1;
    let mut t = last;
    while t > 0 && libm::fabs(pts[t - 1].1 - final_k) <= options.delta {
        t -= 1;
    }

    // Phases, as a partition of the run into closed intervals of point indices.
    let mut spans: Vec<(Phase, usize, usize)> = Vec::with_capacity(4);
    match onset {
        None => spans.push((Phase::P0, 0, last)),
        Some(a) => {
            if a > 0 {
                spans.push((Phase::P0, 0, a));
            }
            let p1_end = reversal.unwrap_or(t.max(a + 1));
            spans.push((Phase::P1, a, p1_end));
            if let Some(e) = reversal {
                if t > e {
                    spans.push((Phase::P2, e, t));
                }
            }
            let p3_start = t.max(p1_end);
            if p3_start < last {
                spans.push((Phase::P3, p3_start, last));
            }
        }
    }
    let phases = spans
        .into_iter()
        .map(|(name, i, j)| PhaseSpan { name, start_step: pts[i].0, end_step: pts[j].0 })
        .collect();

    let extremum = reversal.zip(onset).map(|(e, a)| Extremum {
        step: pts[e].0,
        k: pts[e].1,
        kind: if s[a] > 0.0 { ExtremumKind::Max } else { ExtremumKind::Min },
    });

    Ok(Trajectory {
        points,
        segments,
        phases,
        extremum,
        t_set: pts[t].0,
        final_k,
        epsilon: options.epsilon,
        delta: options.delta,
    })
}

/// The smallest slope threshold, in k per decade, that does not read sampling noise, for a fit
/// over `n_elements` elements and checkpoints `du` decades apart: `3 sqrt(2) sd(k) / du` with
/// `sd(k) = 1.3 / sqrt(n)` (METHOD.md sections 2 and 4).
///
/// Use it to warn when `epsilon` is below it; it is an order of magnitude, not a test.
pub fn noise_slope_floor(n_elements: u64, du: f64) -> f64 {
    let sd = 1.3 / libm::sqrt(n_elements as f64);
    3.0 * core::f64::consts::SQRT_2 * sd / du
}

/// How one series moved inside the spread window.
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesDrift {
    /// The series' name.
    pub name: String,
    /// Number of its points inside the window.
    pub n_points: usize,
    /// Its k at its first step in the window.
    pub k_first: f64,
    /// Its k at its last step in the window.
    pub k_last: f64,
    /// Its max minus min of k in the window: a series that stays locked has a small range.
    pub range: f64,
}

/// Spread of k between several series over a window (normally P3), the "bifurcation" reading.
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    /// First step of the window.
    pub start_step: u64,
    /// Last step of the window.
    pub end_step: u64,
    /// Steps inside the window where every series has a value; the cross-series figures use
    /// only these.
    pub common_steps: usize,
    /// Mean over common steps of the mean absolute difference over all pairs of series (for
    /// two series, the mean of |k_a - k_b|).
    pub mean_abs_diff: f64,
    /// Largest max-minus-min of k across series at one common step.
    pub max_spread: f64,
    /// The step where `max_spread` occurs (the first, on ties).
    pub max_spread_step: u64,
    /// Per series: how much it moved in the window, in input order.
    pub series: Vec<SeriesDrift>,
}

/// Spread of k between `series` (name, `(step, k)` points in any order) over the steps in
/// `[start_step, end_step]`, e.g. [`Trajectory::p3_window`] of the pooled trajectory.
///
/// Errors: fewer than two series; a series with a step 0, a duplicated step or a non-finite k
/// (named); no step in the window where every series has a value.
pub fn spread(
    window: (u64, u64),
    series: &[(&str, &[(u64, f64)])],
) -> Result<Spread, DynamicsError> {
    let (start_step, end_step) = window;
    if series.len() < 2 {
        return Err(DynamicsError::TooFewSeries { found: series.len() });
    }

    // Each series sorted, checked and cut to the window.
    let mut cut: Vec<Vec<(u64, f64)>> = Vec::with_capacity(series.len());
    for (name, pts) in series {
        let sorted = sorted_checked(pts).map_err(|error| DynamicsError::Series {
            name: String::from(*name),
            error: Box::new(error),
        })?;
        cut.push(sorted.into_iter().filter(|p| (start_step..=end_step).contains(&p.0)).collect());
    }

    // Cross-series figures at the steps every series has. For sorted values x_0 <= ... <= x_m,
    // the sum of |x_i - x_j| over pairs is sum_i x_i (2i - m), which avoids a loop over pairs.
    let m = series.len();
    let pairs = (m * (m - 1) / 2) as f64;
    let mut values = Vec::with_capacity(m);
    let (mut common, mut sum_mad, mut max_spread, mut max_step) = (0usize, 0.0, -1.0, 0u64);
    for &(step, _) in &cut[0] {
        values.clear();
        for c in &cut {
            match c.binary_search_by_key(&step, |p| p.0) {
                Ok(i) => values.push(c[i].1),
                Err(_) => break,
            }
        }
        if values.len() < m {
            continue;
        }
        values.sort_unstable_by(f64::total_cmp);
        let pair_sum: f64 =
            values.iter().enumerate().map(|(i, x)| x * (2.0 * i as f64 - (m - 1) as f64)).sum();
        sum_mad += pair_sum / pairs;
        let range = values[m - 1] - values[0];
        if range > max_spread {
            max_spread = range;
            max_step = step;
        }
        common += 1;
    }
    if common == 0 {
        return Err(DynamicsError::NoCommonSteps { start_step, end_step });
    }

    // Per-series drift; every series has a point in the window since a common step exists.
    let drift = series
        .iter()
        .zip(&cut)
        .map(|((name, _), c)| {
            let ks = c.iter().map(|p| p.1);
            let hi = ks.clone().fold(f64::NEG_INFINITY, f64::max);
            let lo = ks.fold(f64::INFINITY, f64::min);
            SeriesDrift {
                name: String::from(*name),
                n_points: c.len(),
                k_first: c[0].1,
                k_last: c[c.len() - 1].1,
                range: hi - lo,
            }
        })
        .collect();

    Ok(Spread {
        start_step,
        end_step,
        common_steps: common,
        mean_abs_diff: sum_mad / common as f64,
        max_spread,
        max_spread_step: max_step,
        series: drift,
    })
}

/// Thresholds of the online (causal) phase reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineOptions {
    /// As [`Options::epsilon`]. Must be > 0.
    pub epsilon: f64,
    /// As [`Options::delta`], but measured against the current k, not the (unknown) final k.
    pub delta: f64,
    /// Number of most recent points, the current one included, that must all lie within
    /// `delta` of the current k to read P3. At least 2; memory is one f64 per point.
    pub settle_window: usize,
}

impl Default for OnlineOptions {
    fn default() -> Self {
        Self {
            epsilon: DEFAULT_EPSILON,
            delta: DEFAULT_DELTA,
            settle_window: DEFAULT_SETTLE_WINDOW,
        }
    }
}

/// What the online tracker reads at one step.
///
/// `dk` and `d2k` are NaN until there is enough history, to match the C struct; in JSON they
/// are written as `null`, never as NaN.
#[cfg_attr(feature = "std", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnlineReport {
    /// The step pushed.
    pub step: u64,
    /// The k pushed.
    pub k: f64,
    /// Backward segment slope per decade from the previous point; NaN at the first push.
    #[cfg_attr(feature = "std", serde(serialize_with = "nan_as_null"))]
    pub dk: f64,
    /// Non-uniform second difference of the last three points; NaN before the third push.
    #[cfg_attr(feature = "std", serde(serialize_with = "nan_as_null"))]
    pub d2k: f64,
    /// The causal phase at this step.
    pub phase: Phase,
}

/// Writes a non-finite f64 as JSON `null`.
#[cfg(feature = "std")]
fn nan_as_null<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else {
        s.serialize_none()
    }
}

/// Causal NPM-dk, NPM-d2k and phase, one step at a time, from past points only.
///
/// The phase is read as: P0 until a segment slope reaches `epsilon`; then P1 until the first
/// slope of the opposite sign (the previous point is then the extremum); then P2. From P1 or P2
/// the phase reads P3 while the last `settle_window` points all lie within `delta` of the
/// current k, and falls back to P1 or P2 if k leaves that band again.
///
/// This approximates the offline reading of [`analyze`], which cannot be known causally: P1
/// is seen one point late (at the end of the onset segment, offline at its start), and P3 is
/// judged against the current k rather than the final k, with a fixed window instead of "every
/// later point". Per-step pushes late in training give tiny gaps in log10(step), hence noisy
/// slopes; push at roughly log-spaced steps for a stable phase.
///
/// Memory is fixed at construction (`settle_window` values); [`OnlineTracker::push`] never
/// allocates.
#[derive(Debug, Clone)]
pub struct OnlineTracker {
    options: OnlineOptions,
    /// Pushes accepted so far.
    count: u64,
    /// Previous point.
    last_step: u64,
    last_k: f64,
    /// Gap and slope of the previous segment, for the second difference.
    last_h: f64,
    last_s: f64,
    /// Sign of the onset slope (+1 or -1), 0 while in P0.
    onset_sign: f64,
    extremum: Option<Extremum>,
    /// Ring buffer of the most recent k values.
    window: Box<[f64]>,
    window_next: usize,
}

impl OnlineTracker {
    /// A tracker with the given thresholds; allocates the settle window once.
    ///
    /// Errors: epsilon not > 0, delta negative or NaN, or `settle_window` below 2.
    pub fn new(options: OnlineOptions) -> Result<Self, DynamicsError> {
        check_thresholds(options.epsilon, options.delta)?;
        if options.settle_window < 2 {
            return Err(DynamicsError::InvalidOption {
                name: "settle_window",
                expected: "at least 2",
            });
        }
        Ok(Self {
            options,
            count: 0,
            last_step: 0,
            last_k: f64::NAN,
            last_h: f64::NAN,
            last_s: f64::NAN,
            onset_sign: 0.0,
            extremum: None,
            window: alloc::vec![f64::NAN; options.settle_window].into_boxed_slice(),
            window_next: 0,
        })
    }

    /// The options in use.
    pub fn options(&self) -> OnlineOptions {
        self.options
    }

    /// The extremum that ended P1, once seen.
    pub fn extremum(&self) -> Option<Extremum> {
        self.extremum
    }

    /// Records k at `step` and reads dk, d2k and the phase.
    ///
    /// Errors, leaving the tracker unchanged: step 0, a step not after the previous one, or a
    /// non-finite k.
    pub fn push(&mut self, step: u64, k: f64) -> Result<OnlineReport, DynamicsError> {
        if step == 0 {
            return Err(DynamicsError::ZeroStep);
        }
        if self.count > 0 && step <= self.last_step {
            return Err(DynamicsError::NonIncreasingStep { previous: self.last_step, step });
        }
        if !k.is_finite() {
            return Err(DynamicsError::NonFiniteK { step });
        }

        // Backward slope and second difference from the stored history.
        let (mut h, mut s, mut d2k) = (f64::NAN, f64::NAN, f64::NAN);
        if self.count >= 1 {
            h = decades_between(self.last_step, step);
            s = (k - self.last_k) / h;
        }
        if self.count >= 2 {
            d2k = second_dk(self.last_h, h, self.last_s, s);
        }

        // Onset, then the first reversal (the previous point is the extremum).
        if self.onset_sign == 0.0 {
            if libm::fabs(s) >= self.options.epsilon {
                self.onset_sign = if s > 0.0 { 1.0 } else { -1.0 };
            }
        } else if self.extremum.is_none() && s * self.onset_sign < 0.0 {
            let kind = if self.onset_sign > 0.0 { ExtremumKind::Max } else { ExtremumKind::Min };
            self.extremum = Some(Extremum { step: self.last_step, k: self.last_k, kind });
        }

        // Settle window: the last `settle_window` k values, this one included. Slots not yet
        // written hold NaN, which is never within delta, so a short history never settles.
        self.window[self.window_next] = k;
        self.window_next = (self.window_next + 1) % self.window.len();
        self.count += 1;
        let settled = self.window.iter().all(|x| libm::fabs(x - k) <= self.options.delta);

        let phase = if self.onset_sign == 0.0 {
            Phase::P0
        } else if settled {
            Phase::P3
        } else if self.extremum.is_some() {
            Phase::P2
        } else {
            Phase::P1
        };

        self.last_step = step;
        self.last_k = k;
        self.last_h = h;
        self.last_s = s;
        Ok(OnlineReport { step, k, dk: s, d2k, phase })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic normal deviates: splitmix64 for uniforms, Box-Muller for the normal.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in (0, 1], never 0 so the logarithm below is finite.
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (a, b) = (self.uniform(), self.uniform());
            libm::sqrt(-2.0 * libm::log(a)) * libm::cos(2.0 * core::f64::consts::PI * b)
        }
    }

    /// A borrowed series of `(step, k)` points.
    type Pts<'a> = &'a [(u64, f64)];

    fn close(a: f64, b: f64, tol: f64) -> bool {
        libm::fabs(a - b) <= tol
    }

    /// The METHOD.md formulas written out literally, as an oracle for the slope forms.
    fn literal(u: [f64; 3], k: [f64; 3]) -> (f64, f64) {
        let (h1, h2) = (u[1] - u[0], u[2] - u[1]);
        let dk = -h2 / (h1 * (h1 + h2)) * k[0]
            + (h2 - h1) / (h1 * h2) * k[1]
            + h1 / (h2 * (h1 + h2)) * k[2];
        let d2k = 2.0 * (k[0] / (h1 * (h1 + h2)) - k[1] / (h1 * h2) + k[2] / (h2 * (h1 + h2)));
        (dk, d2k)
    }

    fn span(t: &Trajectory, p: Phase) -> Option<(u64, u64)> {
        t.phase(p).map(|s| (s.start_step, s.end_step))
    }

    #[test]
    fn too_few_points_is_a_clear_error() {
        let e = analyze(&[(1, 1.2), (2, 1.2)], &Options::default()).unwrap_err();
        assert_eq!(e, DynamicsError::TooFewPoints { found: 2 });
        let msg = alloc::format!("{e}");
        assert!(msg.contains("at least 3") && msg.contains("got 2"), "{msg}");
        assert_eq!(
            analyze(&[], &Options::default()).unwrap_err(),
            DynamicsError::TooFewPoints { found: 0 }
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let o = Options::default();
        let e = analyze(&[(10, 1.2), (20, 1.2), (10, 1.3)], &o).unwrap_err();
        assert_eq!(e, DynamicsError::DuplicateStep { step: 10 });
        assert!(alloc::format!("{e}").contains("step 10"));
        let e = analyze(&[(0, 1.2), (20, 1.2), (10, 1.3)], &o).unwrap_err();
        assert_eq!(e, DynamicsError::ZeroStep);
        let e = analyze(&[(5, 1.2), (20, f64::NAN), (10, 1.3)], &o).unwrap_err();
        assert_eq!(e, DynamicsError::NonFiniteK { step: 20 });
        let pts = [(1, 1.2), (2, 1.2), (3, 1.2)];
        for bad in [
            Options { epsilon: 0.0, ..o },
            Options { epsilon: f64::NAN, ..o },
            Options { delta: -1e-3, ..o },
        ] {
            assert!(matches!(analyze(&pts, &bad), Err(DynamicsError::InvalidOption { .. })));
        }
    }

    #[test]
    fn unsorted_steps_are_sorted() {
        let sorted = [(1, 1.15), (10, 1.16), (100, 1.2), (1000, 1.18), (10000, 1.17)];
        let shuffled = [sorted[3], sorted[0], sorted[4], sorted[2], sorted[1]];
        let a = analyze(&sorted, &Options::default()).unwrap();
        let b = analyze(&shuffled, &Options::default()).unwrap();
        assert_eq!(a, b);
        let steps: Vec<u64> = b.points.iter().map(|p| p.step).collect();
        assert_eq!(steps, [1, 10, 100, 1000, 10000]);
    }

    #[test]
    fn slope_forms_match_the_literal_formulas() {
        // Uneven gaps and a large common level of k, where the literal form cancels most.
        let steps = [1000u64, 2000, 3000];
        let k = [1.1490770506320493, 1.1745050875515195, 1.1894237457857733];
        let u = steps.map(|s| libm::log10(s as f64));
        let (dk, d2k) = literal(u, k);
        let t = analyze(&[(1000, k[0]), (2000, k[1]), (3000, k[2])], &Options::default()).unwrap();
        assert!(close(t.points[1].dk, dk, 1e-12), "{} vs {dk}", t.points[1].dk);
        assert!(close(t.points[1].d2k.unwrap(), d2k, 1e-10));
        // End points: one-sided segment slope, no second difference.
        assert!(close(t.points[0].dk, (k[1] - k[0]) / (u[1] - u[0]), 1e-12));
        assert!(close(t.points[2].dk, (k[2] - k[1]) / (u[2] - u[1]), 1e-12));
        assert_eq!((t.points[0].d2k, t.points[2].d2k), (None, None));
        // 1000 steps apart: the per-1000 rate is the plain difference.
        assert!(close(t.segments[0].per_1000_steps, k[1] - k[0], 1e-15));
        assert!(close(t.segments[1].per_1000_steps, k[2] - k[1], 1e-15));
    }

    #[test]
    fn close_large_steps_keep_a_positive_gap() {
        // log10 of these steps rounds to the same f64; the log1p gap does not.
        let base = 1u64 << 60;
        let t =
            analyze(&[(base, 1.0), (base + 1, 1.0), (base + 2, 1.0)], &Options::default()).unwrap();
        assert!(t.points.iter().all(|p| p.dk.is_finite()));
        assert_eq!(span(&t, Phase::P0), Some((base, base + 2)));
    }

    #[test]
    fn flat_trajectory_has_no_p1() {
        let pts: Vec<(u64, f64)> = (0..12).map(|i| (1u64 << i, 1.2054)).collect();
        let t = analyze(&pts, &Options::default()).unwrap();
        assert_eq!(t.phases.len(), 1);
        assert_eq!(span(&t, Phase::P0), Some((1, 2048)));
        assert_eq!(t.phase(Phase::P1), None);
        assert_eq!(t.extremum, None);
        assert_eq!(t.t_set, 1);
    }

    #[test]
    fn monotone_rise_settles_without_p2() {
        // Flat, a rise of 0.05 per decade over two decades, then flat: no reversal.
        let ks = [1.15, 1.15, 1.15, 1.175, 1.20, 1.20, 1.20];
        let pts: Vec<(u64, f64)> =
            ks.iter().enumerate().map(|(i, &k)| (10u64.pow(i as u32), k)).collect();
        let t = analyze(&pts, &Options::default()).unwrap();
        assert_eq!(span(&t, Phase::P0), Some((1, 100)));
        assert_eq!(span(&t, Phase::P1), Some((100, 10_000)));
        assert_eq!(t.phase(Phase::P2), None);
        assert_eq!(span(&t, Phase::P3), Some((10_000, 1_000_000)));
        assert_eq!((t.extremum, t.t_set), (None, 10_000));
        // A rise that never settles is P1 to the end.
        let t = analyze(&pts[..5], &Options::default()).unwrap();
        assert_eq!(span(&t, Phase::P1), Some((100, 10_000)));
        assert_eq!((t.phase(Phase::P3), t.t_set), (None, 10_000));
    }

    #[test]
    fn t_set_before_t_ext_drops_p2() {
        // Close steps make a 0.001 change a slope of about 0.026 per decade (>= epsilon) while
        // every k stays within delta of the final 1.1985: t_set is the first step, before both
        // the onset (1100) and the minimum (1300). P2 is absent and P3 starts at t_ext.
        let pts = [(1000, 1.2), (1100, 1.2), (1200, 1.199), (1300, 1.198), (1400, 1.1985)];
        let pts = [&pts[..], &[(1500, 1.1985)]].concat();
        let t = analyze(&pts, &Options::default()).unwrap();
        let ext = t.extremum.unwrap();
        assert_eq!((ext.step, ext.kind), (1300, ExtremumKind::Min));
        assert_eq!(t.t_set, 1000);
        assert_eq!(span(&t, Phase::P0), Some((1000, 1100)));
        assert_eq!(span(&t, Phase::P1), Some((1100, 1300)));
        assert_eq!(t.phase(Phase::P2), None);
        assert_eq!(span(&t, Phase::P3), Some((1300, 1500)));
    }

    #[test]
    fn steep_first_segment_has_no_p0() {
        let t = analyze(&[(1, 1.0), (10, 1.1), (100, 1.05)], &Options::default()).unwrap();
        assert_eq!(t.phase(Phase::P0), None);
        assert_eq!(span(&t, Phase::P1), Some((1, 10)));
        assert_eq!(t.extremum.map(|e| e.kind), Some(ExtremumKind::Max));
    }

    /// Piecewise linear k(u): flat `k0` to `ua`, slope `rise` to `ue`, slope `fall` to `uf`, then
    /// flat. Returns the noise-free k.
    fn synth_k(u: f64, k0: f64, ua: f64, rise: f64, ue: f64, fall: f64, uf: f64) -> f64 {
        let top = k0 + rise * (ue - ua);
        if u <= ua {
            k0
        } else if u <= ue {
            k0 + rise * (u - ua)
        } else if u <= uf {
            top + fall * (u - ue)
        } else {
            top + fall * (uf - ue)
        }
    }

    #[test]
    fn synthetic_boundaries_are_recovered_under_noise() {
        // Checkpoints every 1/5 decade from step 10 to about 158000; noise sd 1.3/sqrt(n) with
        // n = 2^24 (a pooled fit of a 70M-parameter model), i.e. 0.000325. The slope noise is
        // then sqrt(2) 0.000325 / 0.2 = 0.0023 per decade, below epsilon = 0.01 as METHOD.md
        // requires (3 sqrt(2) sd / du = 0.0069).
        let grid: Vec<u64> =
            (0..=21).map(|j| libm::round(libm::pow(10.0, 1.0 + j as f64 / 5.0)) as u64).collect();
        let u_of = |j: usize| 1.0 + j as f64 / 5.0;
        let sd = 1.3 / libm::sqrt((1u64 << 24) as f64);
        let o = Options::default();
        // (k0, onset index, rise, extremum index, fall, end-of-fall index)
        let cases = [(1.15, 8, 0.08, 13, -0.04, 17), (1.20, 4, -0.06, 10, 0.03, 15)];
        for (k0, ia, rise, ie, fall, iff) in cases {
            let kf = |u: f64| synth_k(u, k0, u_of(ia), rise, u_of(ie), fall, u_of(iff));
            // Known t_set: the grid point after the last noise-free k outside delta of the final
            // k (the rise also crosses that band, so "first point within" would be wrong).
            let k_end = kf(u_of(21));
            let outside = (0..=21).rev().find(|&j| libm::fabs(kf(u_of(j)) - k_end) > o.delta);
            let it = outside.unwrap() + 1;
            assert_eq!(it, iff, "the fall ends steeply enough to settle at its end");
            for seed in 0..200u64 {
                let mut rng = Rng(seed);
                let pts: Vec<(u64, f64)> =
                    (0..=21).map(|j| (grid[j], kf(u_of(j)) + sd * rng.normal())).collect();
                let t = analyze(&pts, &o).unwrap();
                let index = |step: u64| grid.iter().position(|&g| g == step).unwrap() as i64;
                let near = |step: u64, want: usize| (index(step) - want as i64).abs() <= 1;
                let p1 = t.phase(Phase::P1).expect("P1");
                let ext = t.extremum.expect("extremum");
                assert!(near(p1.start_step, ia), "seed {seed}: P1 onset {}", p1.start_step);
                assert!(near(ext.step, ie), "seed {seed}: extremum {}", ext.step);
                assert_eq!(
                    ext.kind,
                    if rise > 0.0 { ExtremumKind::Max } else { ExtremumKind::Min }
                );
                assert!(near(t.t_set, it), "seed {seed}: t_set {} want {}", t.t_set, grid[it]);
                assert_eq!(
                    t.phases.iter().map(|p| p.name).collect::<Vec<_>>(),
                    [Phase::P0, Phase::P1, Phase::P2, Phase::P3]
                );
            }
        }
    }

    #[test]
    fn spread_reads_classes_over_a_window() {
        let sel: Pts = &[(100, 1.10), (200, 1.12), (300, 1.15), (400, 1.16)];
        let tra: Pts = &[(300, 1.19), (100, 1.19), (200, 1.19)];
        let s = spread((200, 400), &[("selection", sel), ("transmission", tra)]).unwrap();
        // Common steps in the window: 200 (|1.12 - 1.19| = 0.07) and 300 (0.04).
        assert_eq!(s.common_steps, 2);
        assert!(close(s.mean_abs_diff, 0.055, 1e-12));
        assert!(close(s.max_spread, 0.07, 1e-12));
        assert_eq!(s.max_spread_step, 200);
        assert_eq!((s.series[0].n_points, s.series[1].n_points), (3, 2));
        assert!(close(s.series[0].range, 0.04, 1e-12) && s.series[1].range == 0.0);
        assert_eq!((s.series[0].k_first, s.series[0].k_last), (1.12, 1.16));

        // Three series at one step: pairs |1-2|, |1-4|, |2-4| average 2; range 3.
        let (a, b, c): (Pts, Pts, Pts) = (&[(5, 1.0)], &[(5, 4.0)], &[(5, 2.0)]);
        let s = spread((1, 10), &[("a", a), ("b", b), ("c", c)]).unwrap();
        assert!(close(s.mean_abs_diff, 2.0, 1e-12) && close(s.max_spread, 3.0, 1e-12));

        assert_eq!(
            spread((1, 10), &[("a", a)]).unwrap_err(),
            DynamicsError::TooFewSeries { found: 1 }
        );
        assert_eq!(
            spread((6, 10), &[("a", a), ("b", b)]).unwrap_err(),
            DynamicsError::NoCommonSteps { start_step: 6, end_step: 10 }
        );
        let dup: Pts = &[(5, 1.0), (5, 1.1)];
        let e = spread((1, 10), &[("a", a), ("dup", dup)]).unwrap_err();
        assert!(alloc::format!("{e}").contains("series dup: step 5"), "{e}");
    }

    #[test]
    fn noise_floor_matches_method() {
        // n = 65536, doubling steps: sd = 1.3/256 = 0.005078; 3 sqrt(2) 0.005078 / 0.30103
        // = 0.07157 per decade.
        let du = core::f64::consts::LOG10_2;
        assert!(close(noise_slope_floor(65_536, du), 0.07157, 1e-5));
    }

    #[test]
    fn online_matches_offline_backward_formulas() {
        let mut rng = Rng(7);
        let mut pts = Vec::new();
        let mut step = 1u64;
        let mut tracker = OnlineTracker::new(OnlineOptions::default()).unwrap();
        for i in 0..30 {
            // Gaps of at least a quarter of the step keep the literal oracle well conditioned.
            step += 1 + step / 4 + rng.next_u64() % (step + 1);
            let k = 1.15 + 0.01 * libm::sin(i as f64 / 3.0) + 0.001 * rng.normal();
            pts.push((step, k));
            let r = tracker.push(step, k).unwrap();
            assert_eq!((r.step, r.k), (step, k));
            match pts.len() {
                1 => assert!(r.dk.is_nan() && r.d2k.is_nan()),
                2 => {
                    let want = (pts[1].1 - pts[0].1) / decades_between(pts[0].0, pts[1].0);
                    assert!(close(r.dk, want, 1e-12) && r.d2k.is_nan());
                }
                n => {
                    // Offline on the same prefix: last point's one-sided slope, and the
                    // second difference at the point before it.
                    let t = analyze(&pts, &Options::default()).unwrap();
                    assert!(close(r.dk, t.points[n - 1].dk, 1e-12));
                    assert!(close(r.d2k, t.points[n - 2].d2k.unwrap(), 1e-9));
                    let u: Vec<f64> =
                        pts[n - 3..].iter().map(|p| libm::log10(p.0 as f64)).collect();
                    let (_, d2k) =
                        literal([u[0], u[1], u[2]], [pts[n - 3].1, pts[n - 2].1, pts[n - 1].1]);
                    assert!(close(r.d2k, d2k, 1e-6 * libm::fabs(d2k).max(1.0)));
                }
            }
        }
    }

    #[test]
    fn online_rejects_bad_pushes_and_stays_usable() {
        assert!(
            OnlineTracker::new(OnlineOptions { settle_window: 1, ..Default::default() }).is_err()
        );
        let mut t = OnlineTracker::new(OnlineOptions::default()).unwrap();
        assert_eq!(t.push(0, 1.2).unwrap_err(), DynamicsError::ZeroStep);
        t.push(10, 1.2).unwrap();
        assert_eq!(
            t.push(10, 1.3).unwrap_err(),
            DynamicsError::NonIncreasingStep { previous: 10, step: 10 }
        );
        assert_eq!(
            t.push(9, 1.3).unwrap_err(),
            DynamicsError::NonIncreasingStep { previous: 10, step: 9 }
        );
        assert_eq!(t.push(11, f64::INFINITY).unwrap_err(), DynamicsError::NonFiniteK { step: 11 });
        // The rejected pushes left no trace: the slope is from step 10.
        let r = t.push(100, 1.21).unwrap();
        assert!(close(r.dk, 0.01, 1e-12), "{}", r.dk);
    }

    #[test]
    fn online_settle_needs_a_full_window_and_can_unsettle() {
        // Close steps: +0.001 over 100 -> 110 is 0.024 per decade (onset) yet within delta.
        let mut t = OnlineTracker::new(OnlineOptions::default()).unwrap();
        let mut phase = |step, k| t.push(step, k).unwrap().phase;
        assert_eq!(phase(100, 1.100), Phase::P0);
        assert_eq!(phase(110, 1.101), Phase::P1);
        // Three points all within delta, but the window needs four.
        assert_eq!(phase(120, 1.101), Phase::P1);
        assert_eq!(phase(130, 1.101), Phase::P3);
        // k leaves the band without reversing: back to P1, no extremum.
        assert_eq!(phase(1000, 1.2), Phase::P1);
        assert_eq!(t.extremum(), None);
    }

    #[test]
    fn online_flat_stays_p0() {
        let mut t = OnlineTracker::new(OnlineOptions::default()).unwrap();
        for i in 0..20 {
            assert_eq!(t.push(1 << i, 1.2054).unwrap().phase, Phase::P0);
        }
        assert_eq!(t.extremum(), None);
    }

    #[cfg(feature = "std")]
    mod reference {
        use super::*;
        use std::collections::BTreeMap;

        const PYTHIA: &str = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/reference/pythia70m_pooled_transmission_k_by_step.json"
        ));

        fn pythia() -> Vec<(u64, f64)> {
            let map: BTreeMap<String, f64> = serde_json::from_str(PYTHIA).unwrap();
            // The map orders keys as strings ("10000" before "128"); sort by step.
            let mut pts: Vec<(u64, f64)> =
                map.into_iter().map(|(s, k)| (s.parse().unwrap(), k)).collect();
            pts.sort_by_key(|p| p.0);
            pts
        }

        #[test]
        fn pythia70m_acceptance() {
            // Hand computation from the published numbers (final k 1.1616136):
            // - Slopes s = dk/du: 512->1000 is 0.0010789/0.29073 = 0.0037 < 0.01, and every
            //   earlier one is below 0.001; 1000->2000 is 0.025428/0.30103 = 0.0845 >= 0.01.
            //   So P0 is [1, 1000] and P1 starts at 1000, the start of the first steep segment.
            // - 3000->5000 is +0.0034945/0.22185 = +0.0158, 5000->7000 is -0.0026395/0.14613 =
            //   -0.0181: the first sign reversal, so a maximum at 5000, k = 1.1929183.
            // - |k - final| at 30000 is 0.00672 > 0.0025; at 50000, 70000, 100000 it is
            //   0.00034, 0.00086, 0.00159, all <= 0.0025: t_set = 50000.
            // - dk at 2000 with h1 = log10 2 = 0.30103, h2 = log10 1.5 = 0.176091 is the
            //   h-weighted mean of the neighbouring slopes 0.084470 (left) and 0.084721 (right):
            //   (0.176091 * 0.084470 + 0.30103 * 0.084721) / 0.477121 = 0.08463.
            let t = analyze(&pythia(), &Options::default()).unwrap();
            let p1 = t.phase(Phase::P1).unwrap();
            assert!((1000..=2000).contains(&p1.start_step), "P1 at {}", p1.start_step);
            assert_eq!(p1.start_step, 1000);
            assert_eq!(span(&t, Phase::P0), Some((1, 1000)));
            let ext = t.extremum.unwrap();
            assert_eq!((ext.step, ext.kind), (5000, ExtremumKind::Max));
            assert!(close(ext.k, 1.19292, 1e-5), "{}", ext.k);
            assert_eq!(t.t_set, 50_000);
            assert!(close(t.final_k, 1.16161, 1e-5));
            assert_eq!(span(&t, Phase::P1), Some((1000, 5000)));
            assert_eq!(span(&t, Phase::P2), Some((5000, 50_000)));
            assert_eq!(span(&t, Phase::P3), Some((50_000, 143_000)));
            let p2000 = t.points.iter().find(|p| p.step == 2000).unwrap();
            assert!(close(p2000.dk, 0.0846, 1e-4), "{}", p2000.dk);
        }

        #[test]
        fn pythia70m_online_phases() {
            // Causal reading with a 4-point settle window: P1 is seen at the end of the onset
            // segment (2000), P2 at the first falling segment (7000), P3 only at 143000: at
            // 100000 the window still holds 30000, 0.0051 away from the current k.
            let mut t = OnlineTracker::new(OnlineOptions::default()).unwrap();
            for (step, k) in pythia() {
                let want = match step {
                    ..=1000 => Phase::P0,
                    2000..=5000 => Phase::P1,
                    7000..=100_000 => Phase::P2,
                    _ => Phase::P3,
                };
                assert_eq!(t.push(step, k).unwrap().phase, want, "step {step}");
            }
            let ext = t.extremum().unwrap();
            assert_eq!((ext.step, ext.kind), (5000, ExtremumKind::Max));
        }

        #[test]
        fn json_has_the_required_fields_and_no_nan() {
            let t = analyze(&pythia(), &Options::default()).unwrap();
            let v = serde_json::to_value(&t).unwrap();
            let first = &v["points"][0];
            assert_eq!(first["step"], 1);
            assert!(first["k"].is_f64() && first["dk"].is_f64() && first["d2k"].is_null());
            assert!(v["points"][11]["d2k"].is_f64());
            assert_eq!(v["phases"][0]["name"], "P0");
            assert_eq!(v["phases"][1]["start_step"], 1000);
            assert_eq!(v["phases"][3]["end_step"], 143_000);
            assert_eq!(v["extremum"]["kind"], "max");
            assert_eq!(v["extremum"]["step"], 5000);
            assert_eq!(v["t_set"], 50_000);
            let text = serde_json::to_string(&t).unwrap();
            assert!(!text.contains("NaN"));

            let mut o = OnlineTracker::new(OnlineOptions::default()).unwrap();
            let r = serde_json::to_value(o.push(1, 1.2).unwrap()).unwrap();
            assert!(r["dk"].is_null() && r["d2k"].is_null());
            assert_eq!(r["phase"], "P0");
        }
    }

    #[cfg(feature = "std")]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// 3 to 40 points with distinct positive steps, in random order, k near 1.2.
        fn trajectory() -> impl Strategy<Value = Vec<(u64, f64)>> {
            proptest::collection::btree_map(1u64..1_000_000, 1.0f64..1.4, 3..40)
                .prop_map(|m| m.into_iter().collect::<Vec<_>>())
                .prop_shuffle()
        }

        proptest! {
            #[test]
            fn phases_partition_the_run(
                pts in trajectory(),
                eps in 0.001f64..0.5,
                delta in 0.0f64..0.05,
            ) {
                let t = analyze(&pts, &Options { epsilon: eps, delta }).unwrap();
                let first = t.points[0].step;
                let last = t.points[t.points.len() - 1].step;
                // In order, contiguous, non-empty, covering the run.
                prop_assert_eq!(t.phases[0].start_step, first);
                prop_assert_eq!(t.phases[t.phases.len() - 1].end_step, last);
                for w in t.phases.windows(2) {
                    prop_assert!(w[0].name < w[1].name);
                    prop_assert_eq!(w[0].end_step, w[1].start_step);
                }
                for p in &t.phases {
                    prop_assert!(p.start_step < p.end_step);
                }
                // t_set: every k from it on within delta, the point before it not.
                let i = t.points.iter().position(|p| p.step == t.t_set).unwrap();
                prop_assert!(t.points[i..].iter().all(|p| (p.k - t.final_k).abs() <= delta));
                if i > 0 {
                    prop_assert!((t.points[i - 1].k - t.final_k).abs() > delta);
                }
                // The extremum is a local extremum of k of the announced kind.
                if let Some(e) = t.extremum {
                    let j = t.points.iter().position(|p| p.step == e.step).unwrap();
                    prop_assert!(j > 0 && j + 1 < t.points.len());
                    let (prev, next) = (t.points[j - 1].k, t.points[j + 1].k);
                    match e.kind {
                        ExtremumKind::Max => prop_assert!(e.k >= prev && e.k > next),
                        ExtremumKind::Min => prop_assert!(e.k <= prev && e.k < next),
                    }
                }
            }

            #[test]
            fn exact_on_linear_and_quadratic_in_u(
                pts in trajectory(),
                a in -0.5f64..0.5,
                b in -0.2f64..0.2,
            ) {
                // k = 1.2 + a u + b u^2: dk = a + 2 b u inside (three-point rule is exact on
                // quadratics), d2k = 2 b everywhere it is defined.
                let q: Vec<(u64, f64)> = pts.iter().map(|&(s, _)| {
                    let u = (s as f64).log10();
                    (s, 1.2 + a * u + b * u * u)
                }).collect();
                // Rounding of k (about 1e-16) grows as 1/h in dk and 1/h^2 in d2k, so the
                // tolerance follows the smaller neighbouring gap h.
                let t = analyze(&q, &Options::default()).unwrap();
                for w in t.points.windows(3) {
                    let h = (w[1].u - w[0].u).min(w[2].u - w[1].u);
                    let p = w[1];
                    prop_assert!((p.dk - (a + 2.0 * b * p.u)).abs() < 1e-9 + 1e-13 / h);
                    prop_assert!((p.d2k.unwrap() - 2.0 * b).abs() < 1e-9 + 1e-13 / (h * h));
                }
            }
        }
    }
}
