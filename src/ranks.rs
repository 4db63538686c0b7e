//! Sums over ranks of the Weibull plot ordinate, in time independent of n.
//!
//! The fit needs, for runs of consecutive ranks `a < i <= b` (the elements of one bin), the sum
//! of `y_i = g(F_i)` with `g(F) = ln(-ln(1 - F))` and `F_i = (i - 0.5) / n`, and once per fit
//! the sum of `y_i^2`. Summing term by term costs O(n). Instead:
//!
//! * within `EDGE` ranks of either end, where g is steep, terms are summed one by one;
//! * in between, the Euler-Maclaurin formula for the midpoint rule turns the sum into an
//!   integral plus end corrections: `sum g(F_i) = n * integral - g'/(24 n) + 7 g'''/(5760 n^3)`,
//!   whose next term is below `(1/EDGE)^5 * 1e-4`, far under f64 rounding at `EDGE = 128`;
//! * the integral of g has a closed form through the exponential integral E1; the integral of
//!   g^2 (needed twice per fit) is done by Gauss-Legendre quadrature.
//!
//! With `u = -ln(1 - F)`, `dF = e^-u du`, so `integral g dF = integral ln(u) e^-u du`, and
//! `I(u) = -e^-u ln u - E1(u)` is an antiderivative.

/// Ranks summed one by one at each end.
pub(crate) const EDGE: u64 = 128;

/// Euler's constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// `u = -ln(1 - F)` for `F = num / n`, accurate at both ends.
#[inline]
fn u_of(num: f64, n: f64) -> f64 {
    if num < 0.5 * n {
        -libm::log1p(-num / n)
    } else {
        libm::log(n / (n - num))
    }
}

/// `dy/di = g'(F) / n` at a (fractional) 1-based rank `i`, with `g'(F) = 1 / ((1 - F) u)`.
#[inline]
pub(crate) fn y_slope_at_rank(i: f64, n: u64) -> f64 {
    let nf = n as f64;
    let position = i - 0.5;
    let u = u_of(position, nf);
    1.0 / ((nf - position) * u)
}

/// `g(F_i) = ln(-ln(1 - F_i))` at 1-based rank `i`.
#[inline]
pub(crate) fn y_at_rank(i: u64, n: u64) -> f64 {
    libm::log(u_of(i as f64 - 0.5, n as f64))
}

/// The antiderivative `I(u)` of `ln(u) e^-u`, with `I(0+) = EULER_GAMMA` and `I(inf) = 0`,
/// given `u` with `f = 1 - e^-u` and `tail = e^-u` (known exactly from the rank, so no
/// exponential is computed).
fn antiderivative(u: f64, f: f64, tail: f64) -> f64 {
    if u <= 2.0 {
        // -E1(u) = gamma + ln u + sum_{k>=1} (-u)^k / (k k!), so
        // I(u) = gamma + (1 - e^-u) ln u + sum_{k>=1} (-u)^k / (k k!): no cancellation at 0.
        // Horner over the fixed coefficients; the first omitted term is below 1e-21 at u = 2.
        let series = SERIES.iter().rev().fold(0.0, |acc, &c| (acc + c) * -u);
        EULER_GAMMA + f * libm::log(u) + series
    } else {
        // E1(u) = e^-u * h with h from the continued fraction (modified Lentz); for u > 2 it
        // settles to rounding in a few dozen steps.
        let tiny = 1e-300;
        let mut b = u + 1.0;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..200 {
            let a = -((i * i) as f64);
            b += 2.0;
            d = 1.0 / (a * d + b);
            c = b + a / c;
            let delta = c * d;
            h *= delta;
            if (delta - 1.0).abs() < 4.0 * f64::EPSILON {
                break;
            }
        }
        -tail * (libm::log(u) + h)
    }
}

/// `1 / (k k!)` for k = 1..=28: the coefficients of the E1 series.
const SERIES: [f64; 28] = {
    let mut c = [0.0; 28];
    let mut factorial = 1.0;
    let mut k = 1;
    while k <= 28 {
        factorial *= k as f64;
        c[k - 1] = 1.0 / (k as f64 * factorial);
        k += 1;
    }
    c
};

/// `n * A(m/n)` plus the Euler-Maclaurin end corrections at boundary `m`, for `EDGE <= m <=
/// n - EDGE`: differences of this give sums of `g(F_i)` over the ranks in between.
fn em_prefix(m: u64, n: u64) -> f64 {
    let nf = n as f64;
    let mf = m as f64;
    let u = u_of(mf, nf);
    let tail = (nf - mf) / nf; // 1 - F = e^-u
    let e = nf / (nf - mf); // 1 / (1 - F) = e^u
    let g1 = e / u;
    let g3 = e * e * e * (2.0 / u - 3.0 / (u * u) + 2.0 / (u * u * u));
    nf * antiderivative(u, mf / nf, tail) - g1 / (24.0 * nf) + 7.0 * g3 / (5760.0 * nf * nf * nf)
}

/// Prefix sums `P(m) = sum_{i=1..m} y_i`, asked for at non-decreasing `m`.
pub(crate) struct PrefixY {
    n: u64,
    /// When n is small every rank is summed directly.
    direct_only: bool,
    /// Direct-summation cursor: `cursor_sum = P(cursor)`.
    cursor: u64,
    cursor_sum: f64,
    /// `P(EDGE)` and `em_prefix(EDGE)`, the anchor of the middle zone.
    p_edge: f64,
    em_edge: f64,
    /// The last answer: consecutive runs ask for the same boundary twice.
    last: Option<(u64, f64)>,
}

impl PrefixY {
    pub(crate) fn new(n: u64) -> PrefixY {
        let direct_only = n <= 2 * EDGE + 2;
        let mut walker = PrefixY {
            n,
            direct_only,
            cursor: 0,
            cursor_sum: 0.0,
            p_edge: 0.0,
            em_edge: 0.0,
            last: None,
        };
        if !direct_only {
            walker.p_edge = (1..=EDGE).map(|i| y_at_rank(i, n)).sum();
            walker.em_edge = em_prefix(EDGE, n);
        }
        walker
    }

    fn advance_to(&mut self, m: u64) -> f64 {
        debug_assert!(m >= self.cursor, "prefix sums must be asked for in rank order");
        while self.cursor < m {
            self.cursor += 1;
            self.cursor_sum += y_at_rank(self.cursor, self.n);
        }
        self.cursor_sum
    }

    /// `P(m)`, for `m` not below any earlier argument in the direct zones.
    pub(crate) fn at(&mut self, m: u64) -> f64 {
        match self.last {
            Some((cached, value)) if cached == m => value,
            _ => {
                let value = self.compute(m);
                self.last = Some((m, value));
                value
            }
        }
    }

    fn compute(&mut self, m: u64) -> f64 {
        let n = self.n;
        if self.direct_only || m <= EDGE {
            return self.advance_to(m);
        }
        if m <= n - EDGE {
            return self.p_edge + (em_prefix(m, n) - self.em_edge);
        }
        if self.cursor < n - EDGE {
            self.cursor = n - EDGE;
            self.cursor_sum = self.p_edge + (em_prefix(n - EDGE, n) - self.em_edge);
        }
        self.advance_to(m)
    }
}

/// `sum_{i=a+1..b} y_i^2`, for `a <= b <= n`.
pub(crate) fn sum_y_squared(a: u64, b: u64, n: u64) -> f64 {
    let direct = |from: u64, to: u64| -> f64 {
        (from + 1..=to)
            .map(|i| {
                let y = y_at_rank(i, n);
                y * y
            })
            .sum()
    };
    if n <= 2 * EDGE + 2 {
        return direct(a, b);
    }
    let (lo, hi) = (EDGE, n - EDGE);
    let mut total = 0.0;
    // Low edge zone, middle zone, high edge zone, each clipped to (a, b].
    if a < lo {
        total += direct(a, b.min(lo));
    }
    let (ma, mb) = (a.max(lo), b.min(hi));
    if ma < mb {
        total += em_sum_y_squared(ma, mb, n);
    }
    if b > hi {
        total += direct(a.max(hi), b);
    }
    total
}

/// Euler-Maclaurin for `sum_{i=a+1..b} g(F_i)^2` with both ends in the middle zone.
fn em_sum_y_squared(a: u64, b: u64, n: u64) -> f64 {
    let nf = n as f64;
    let (ua, ub) = (u_of(a as f64, nf), u_of(b as f64, nf));
    // Derivatives of g^2: (g^2)' = 2 g g', (g^2)''' = 2 (g g''' + 3 g' g'').
    let corr = |u: f64| -> f64 {
        let e = libm::exp(u);
        let g = libm::log(u);
        let g1 = e / u;
        let g2 = e * e * (1.0 / u - 1.0 / (u * u));
        let g3 = e * e * e * (2.0 / u - 3.0 / (u * u) + 2.0 / (u * u * u));
        let d1 = 2.0 * g * g1;
        let d3 = 2.0 * (g * g3 + 3.0 * g1 * g2);
        -d1 / (24.0 * nf) + 7.0 * d3 / (5760.0 * nf * nf * nf)
    };
    nf * integral_ln2_exp(ua, ub) + corr(ub) - corr(ua)
}

/// Gauss-Legendre nodes and weights on [-1, 1], 8 points.
const GL8: [(f64, f64); 4] = [
    (0.183_434_642_495_649_8, 0.362_683_783_378_362),
    (0.525_532_409_916_329, 0.313_706_645_877_887_3),
    (0.796_666_477_413_626_7, 0.222_381_034_453_374_5),
    (0.960_289_856_497_536_3, 0.101_228_536_290_376_3),
];

/// `integral_{u1}^{u2} ln(u)^2 e^-u du`, by composite 8-point Gauss-Legendre in `s = ln u`,
/// where the integrand `s^2 exp(s - e^s)` is smooth and bounded.
pub(crate) fn integral_ln2_exp(u1: f64, u2: f64) -> f64 {
    gauss_in_log_u(u1, u2, |s| s * s)
}

/// `integral_{u1}^{u2} ln(u) e^-u du` by quadrature; a check on the closed form.
#[cfg(test)]
pub(crate) fn integral_ln_exp_quadrature(u1: f64, u2: f64) -> f64 {
    gauss_in_log_u(u1, u2, |s| s)
}

fn gauss_in_log_u(u1: f64, u2: f64, f: impl Fn(f64) -> f64) -> f64 {
    let (s1, s2) = (libm::log(u1), libm::log(u2));
    let panels = libm::ceil((s2 - s1) / 0.125).max(1.0) as usize;
    let width = (s2 - s1) / panels as f64;
    let mut total = 0.0;
    for p in 0..panels {
        let mid = s1 + (p as f64 + 0.5) * width;
        let half = 0.5 * width;
        for &(x, w) in &GL8 {
            for s in [mid - half * x, mid + half * x] {
                total += w * half * f(s) * libm::exp(s - libm::exp(s));
            }
        }
    }
    total
}

/// `antiderivative` exposed to the tests.
#[cfg(test)]
pub(crate) fn antiderivative_for_tests(u: f64) -> f64 {
    antiderivative(u, -libm::expm1(-u), libm::exp(-u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_sum(a: u64, b: u64, n: u64, square: bool) -> f64 {
        (a + 1..=b)
            .map(|i| {
                let y = (-(-(i as f64 - 0.5) / n as f64).ln_1p()).ln();
                if square {
                    y * y
                } else {
                    y
                }
            })
            .sum()
    }

    #[test]
    fn closed_form_matches_quadrature() {
        for (u1, u2) in [(1e-6, 0.1), (0.05, 0.7), (0.5, 2.0), (1.9, 2.1), (2.0, 9.0), (0.3, 14.0)]
        {
            let closed = antiderivative_for_tests(u2) - antiderivative_for_tests(u1);
            let quad = integral_ln_exp_quadrature(u1, u2);
            assert!((closed - quad).abs() < 1e-14, "[{u1}, {u2}]: {closed} vs {quad}");
        }
        assert!((antiderivative_for_tests(1e-12) - EULER_GAMMA).abs() < 1e-10);
        assert!(antiderivative_for_tests(40.0).abs() < 1e-15);
    }

    #[test]
    fn prefix_sums_match_naive_sums() {
        for n in [100u64, 257, 258, 300, 1_000, 10_007, 200_000] {
            let mut walker = PrefixY::new(n);
            let mut checkpoints: Vec<u64> =
                vec![0, 1, 5, EDGE - 1, EDGE, EDGE + 1, n / 10, n / 3, n / 2, n - 3, n];
            checkpoints.extend(n.checked_sub(EDGE));
            checkpoints.retain(|&m| m <= n);
            checkpoints.sort_unstable();
            checkpoints.dedup();
            for &m in &checkpoints {
                let fast = walker.at(m);
                let slow = naive_sum(0, m, n, false);
                let scale = (m.max(1)) as f64;
                assert!((fast - slow).abs() < 1e-12 * scale, "n={n} m={m}: {fast} vs {slow}");
            }
        }
    }

    #[test]
    fn squared_sums_match_naive_sums() {
        for n in [100u64, 300, 5_000, 100_000] {
            for (a, b) in [(0, n), (n / 10, 9 * n / 10), (n / 20, n - 1), (3, n / 2)] {
                let fast = sum_y_squared(a, b, n);
                let slow = naive_sum(a, b, n, true);
                assert!((fast - slow).abs() < 1e-11 * slow.abs().max(1.0), "n={n} ({a},{b}]");
            }
        }
    }
}
