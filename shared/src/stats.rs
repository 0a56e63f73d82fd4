//! The statistics behind gate decisions: running moments, confidence intervals and a
//! bounded-memory quantile sketch. Plain functions over numbers, no dependencies.
//!
//! * Means of judge scores: the **Student-t** interval `mean ± t(1-α/2, n-1)·s/√n`. Judge
//!   scores are bounded and coarse (0, 0.25, … 1), so the t-interval's normality assumption
//!   rests on the central limit theorem; for the sample sizes a gate should require (tens of
//!   prompts or more) its coverage is close to nominal, and it uses the observed spread,
//!   unlike bounds such as Hoeffding's that ignore it and are far wider. One case it gets
//!   badly wrong: when every score is the same, `s = 0` and the interval has zero width,
//!   claiming certainty from any `n`. For scores in [0, 1] we then fall back to the Wilson
//!   interval of the mean, which assumes the largest variance a [0, 1] variable with that
//!   mean can have (`μ(1-μ)`): 30 perfect scores give [0.886, 1], not [1, 1].
//! * Pass rates (proportions): the **Wilson score** interval. Unlike the textbook Wald
//!   interval it never leaves [0, 1], is not degenerate at 0 or n successes, and its coverage
//!   is close to nominal even for small n (Brown, Cai & DasGupta 2001; Newcombe 1998).
//! * A change of mean against a baseline: **Welch**'s interval for a difference of means with
//!   unequal variances (Welch–Satterthwaite degrees of freedom).
//!
//! Quantiles of the t and normal distributions are computed from the regularised
//! incomplete beta and gamma functions (continued fractions, Numerical Recipes §6.2–6.4)
//! inverted by bisection: accurate to ~1e-12, checked against textbook tables in the tests.

use serde::{Deserialize, Serialize};

/// How an interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMethod {
    /// Student-t interval of a mean.
    StudentT,
    /// Wilson score interval of a proportion.
    Wilson,
    /// Wilson interval of a mean of [0, 1] scores with zero observed variance.
    WilsonBounded,
    /// Welch's interval of a difference of means.
    Welch,
}

impl IntervalMethod {
    pub fn label(self) -> &'static str {
        match self {
            IntervalMethod::StudentT => "Student-t",
            IntervalMethod::Wilson => "Wilson",
            IntervalMethod::WilsonBounded => "Wilson (zero variance)",
            IntervalMethod::Welch => "Welch",
        }
    }
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
    pub method: IntervalMethod,
}

/// Running count, mean and variance in one pass: Welford's algorithm for the variance
/// (numerically stable), and a compensated (Neumaier) sum for the mean, so that the mean of
/// scores on Bedrock's quarter steps is exact (0.75, not 0.7499999999999999).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
    sum: f64,
    compensation: f64,
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| (self.sum + self.compensation) / self.n as f64)
    }

    /// Sample standard deviation (n-1 denominator); `None` below two values.
    pub fn std_dev(&self) -> Option<f64> {
        (self.n > 1).then(|| (self.m2 / (self.n - 1) as f64).max(0.0).sqrt())
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos approximation, g = 7, n = 9; relative error < 1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = COEF[0];
    let t = x + G + 0.5;
    for (i, c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

const EPS: f64 = 1e-15;
const TINY: f64 = 1e-300;
const MAX_ITER: usize = 500;

/// Continued fraction for the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// The regularised incomplete beta function `I_x(a, b)`.
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// The regularised lower incomplete gamma function `P(a, x)`.
pub fn incomplete_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        // Series.
        let mut ap = a;
        let mut sum = 1.0 / a;
        let mut del = sum;
        for _ in 0..MAX_ITER {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * EPS {
                break;
            }
        }
        sum * front
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..=MAX_ITER {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < EPS {
                break;
            }
        }
        1.0 - front * h
    }
}

/// The standard normal CDF `Φ(x)`.
pub fn normal_cdf(x: f64) -> f64 {
    // Φ(x) = ½(1 + erf(x/√2)) and erf(y) = P(½, y²).
    let p = incomplete_gamma(0.5, x * x / 2.0);
    if x >= 0.0 {
        0.5 * (1.0 + p)
    } else {
        0.5 * (1.0 - p)
    }
}

/// The CDF of Student's t distribution with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// Finds `x` in `[lo, hi]` with `cdf(x) = p` for an increasing `cdf`.
fn invert(cdf: impl Fn(f64) -> f64, p: f64, mut lo: f64, mut hi: f64) -> f64 {
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-13 * mid.abs().max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The `p`-quantile of the standard normal distribution, `0 < p < 1`.
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < 0.5 {
        return -normal_quantile(1.0 - p);
    }
    invert(normal_cdf, p, 0.0, 40.0)
}

/// The `p`-quantile of Student's t distribution with `df > 0` degrees of freedom.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let mut hi = 2.0;
    while student_t_cdf(hi, df) < p && hi < 1e12 {
        hi *= 2.0;
    }
    invert(|t| student_t_cdf(t, df), p, 0.0, hi)
}

/// The Student-t interval of a mean from `n` values with sample standard deviation `sd`.
///
/// When `bounded01` (every value lies in [0, 1]) and the values show no spread, the
/// t-interval would have zero width; the Wilson interval of the mean is used instead (see
/// the module docs). `None` below two values.
pub fn mean_interval(n: u64, mean: f64, sd: f64, level: f64, bounded01: bool) -> Option<Interval> {
    if n < 2 || !(0.0..1.0).contains(&level) || !mean.is_finite() || !sd.is_finite() {
        return None;
    }
    if sd <= 1e-12 && bounded01 {
        let mut interval = wilson_from_rate(mean.clamp(0.0, 1.0), n, level)?;
        interval.method = IntervalMethod::WilsonBounded;
        return Some(interval);
    }
    let t = student_t_quantile(1.0 - (1.0 - level) / 2.0, (n - 1) as f64);
    let half = t * sd / (n as f64).sqrt();
    Some(Interval {
        low: mean - half,
        high: mean + half,
        level,
        method: IntervalMethod::StudentT,
    })
}

/// The Wilson score interval of a proportion `successes / n`. `None` when `n = 0`.
pub fn wilson_interval(successes: u64, n: u64, level: f64) -> Option<Interval> {
    if n == 0 || successes > n {
        return None;
    }
    wilson_from_rate(successes as f64 / n as f64, n, level)
}

fn wilson_from_rate(p: f64, n: u64, level: f64) -> Option<Interval> {
    if n == 0 || !(0.0..1.0).contains(&level) {
        return None;
    }
    let z = normal_quantile(1.0 - (1.0 - level) / 2.0);
    let n = n as f64;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).max(0.0).sqrt() / denom;
    Some(Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
        level,
        method: IntervalMethod::Wilson,
    })
}

/// One sample's summary for [`welch_interval`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSummary {
    pub n: u64,
    pub mean: f64,
    pub sd: f64,
}

/// Welch's interval for `a.mean - b.mean`. `None` unless both samples have two values.
/// When both standard deviations are zero the interval is the point difference.
pub fn welch_interval(a: SampleSummary, b: SampleSummary, level: f64) -> Option<Interval> {
    if a.n < 2 || b.n < 2 || !(0.0..1.0).contains(&level) {
        return None;
    }
    let va = a.sd * a.sd / a.n as f64;
    let vb = b.sd * b.sd / b.n as f64;
    let diff = a.mean - b.mean;
    let se = (va + vb).sqrt();
    if !se.is_finite() || !diff.is_finite() {
        return None;
    }
    let half = if se <= 1e-15 {
        0.0
    } else {
        let df = (va + vb).powi(2)
            / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64).max(f64::MIN_POSITIVE);
        student_t_quantile(1.0 - (1.0 - level) / 2.0, df) * se
    };
    Some(Interval {
        low: diff - half,
        high: diff + half,
        level,
        method: IntervalMethod::Welch,
    })
}

/// A streaming quantile sketch with bounded memory and relative accuracy (DDSketch,
/// Masson, Rim & Lee 2019): values fall into logarithmic buckets `γ^(i-1) < x ≤ γ^i` with
/// `γ = (1+α)/(1-α)`, so any reported quantile is within a relative error `α` of the true
/// value at that rank. With `α = 1%`, positive values between 1e-9 and 1e12 need at most
/// ~2,400 buckets whatever the number of values; zero and negative values are counted apart
/// (costs and latencies are never negative, so negatives are clamped to zero).
#[derive(Debug, Clone)]
pub struct QuantileSketch {
    gamma_ln: f64,
    buckets: std::collections::BTreeMap<i32, u64>,
    zeros: u64,
    count: u64,
    min: f64,
    max: f64,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        Self::new(0.01)
    }
}

impl QuantileSketch {
    /// The relative accuracy `QuantileSketch::default()` guarantees.
    pub const DEFAULT_ACCURACY: f64 = 0.01;

    pub fn new(relative_accuracy: f64) -> Self {
        let alpha = relative_accuracy.clamp(1e-4, 0.5);
        QuantileSketch {
            gamma_ln: ((1.0 + alpha) / (1.0 - alpha)).ln(),
            buckets: Default::default(),
            zeros: 0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        let x = x.max(0.0);
        self.count += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        // Below 1e-9 counts as zero: keeps the bucket range bounded.
        if x < 1e-9 {
            self.zeros += 1;
            return;
        }
        let index = (x.ln() / self.gamma_ln).ceil() as i32;
        *self.buckets.entry(index).or_insert(0) += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Number of buckets in use (memory is proportional to this).
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The nearest-rank `q`-quantile — the smallest value with at least a share `q` of the
    /// values at or below it (0-based rank `⌈q·n⌉ - 1`) — within the sketch's relative
    /// accuracy; `None` when empty. Nearest-rank never interpolates below an observed tail:
    /// the p95 of 200, 300 and 4000 ms is 4000 ms.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).saturating_sub(1);
        if rank < self.zeros {
            return Some(self.min.max(0.0).min(self.max));
        }
        let mut seen = self.zeros;
        for (index, count) in &self.buckets {
            seen += count;
            if seen > rank {
                let gamma = self.gamma_ln.exp();
                // The bucket's midpoint in relative terms: 2γ^i / (γ + 1).
                let value = 2.0 * (*index as f64 * self.gamma_ln).exp() / (gamma + 1.0);
                return Some(value.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        for (x, factorial) in [(1.0, 1.0), (2.0, 1.0), (5.0, 24.0), (11.0, 3_628_800.0)] {
            assert!(close(ln_gamma(x), f64::ln(factorial), 1e-12), "{x}");
        }
        // Γ(½) = √π
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn normal_quantiles_match_known_values() {
        // Values from standard tables (and Python's statistics.NormalDist().inv_cdf).
        for (p, z) in [
            (0.5, 0.0),
            (0.8, 0.841_621_233_572_914_3),
            (0.9, 1.281_551_565_544_600_5),
            (0.95, 1.644_853_626_951_472_2),
            (0.975, 1.959_963_984_540_054),
            (0.995, 2.575_829_303_548_900_6),
            (0.999, 3.090_232_306_167_813_5),
            (0.025, -1.959_963_984_540_054),
        ] {
            let got = normal_quantile(p);
            assert!(close(got, z, 1e-9), "p={p}: {got} vs {z}");
        }
        assert!(close(normal_cdf(1.0), 0.841_344_746_068_542_9, 1e-12));
    }

    #[test]
    fn student_t_quantiles_match_textbook_tables() {
        // (p, df, t): two-sided 90/95/99% critical values from standard t tables.
        for (p, df, t) in [
            (0.975, 1.0, 12.706_204_736),
            (0.975, 2.0, 4.302_652_730),
            (0.975, 5.0, 2.570_581_836),
            (0.975, 10.0, 2.228_138_852),
            (0.975, 29.0, 2.045_229_642),
            (0.975, 30.0, 2.042_272_456),
            (0.975, 120.0, 1.979_930_405),
            (0.95, 10.0, 1.812_461_123),
            (0.95, 2.0, 2.919_985_580),
            (0.995, 5.0, 4.032_142_984),
            (0.995, 20.0, 2.845_339_710),
        ] {
            let got = student_t_quantile(p, df);
            assert!(close(got, t, 1e-6), "p={p} df={df}: {got} vs {t}");
        }
        // Converges to the normal as df grows.
        assert!(close(student_t_quantile(0.975, 1e7), 1.959_964, 1e-5));
    }

    #[test]
    fn wilson_intervals_match_newcombe_1998() {
        // Newcombe (1998), "Two-sided confidence intervals for the single proportion",
        // Table I, method 3 (score interval without continuity correction), 95%.
        for (x, n, low, high) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let i = wilson_interval(x, n, 0.95).unwrap();
            assert!(close(i.low, low, 5e-5), "{x}/{n}: low {}", i.low);
            assert!(close(i.high, high, 5e-5), "{x}/{n}: high {}", i.high);
            assert_eq!(i.method, IntervalMethod::Wilson);
        }
        assert!(wilson_interval(0, 0, 0.95).is_none());
        assert!(wilson_interval(3, 2, 0.95).is_none());
    }

    #[test]
    fn student_t_mean_interval_matches_a_hand_computation() {
        // Scores 0.5, 0.75, 1, 0.75, 0.5: mean 0.7, s = √0.04375 = 0.209165;
        // half-width = t(0.975, 4) · s / √5 = 2.776445 · 0.0935414 = 0.259707.
        let mut m = Moments::default();
        for x in [0.5, 0.75, 1.0, 0.75, 0.5] {
            m.push(x);
        }
        assert!(close(m.mean().unwrap(), 0.7, 1e-12));
        assert!(close(m.std_dev().unwrap(), 0.043_75f64.sqrt(), 1e-12));
        let i = mean_interval(5, 0.7, m.std_dev().unwrap(), 0.95, true).unwrap();
        assert!(close(i.low, 0.7 - 0.259_707, 1e-5), "{i:?}");
        assert!(close(i.high, 0.7 + 0.259_707, 1e-5), "{i:?}");
        assert_eq!(i.method, IntervalMethod::StudentT);
        assert!(mean_interval(1, 0.7, 0.0, 0.95, true).is_none());
    }

    #[test]
    fn identical_scores_do_not_claim_certainty() {
        // 30 perfect scores: Wilson's 30/30 interval, [0.8865, 1].
        let i = mean_interval(30, 1.0, 0.0, 0.95, true).unwrap();
        assert_eq!(i.method, IntervalMethod::WilsonBounded);
        assert!(close(i.low, 0.8865, 1e-4), "{i:?}");
        assert!(close(i.high, 1.0, 1e-12), "{i:?}");
        // Unbounded values with no spread: the t-interval is the point.
        let i = mean_interval(30, 3.0, 0.0, 0.95, false).unwrap();
        assert_eq!((i.low, i.high), (3.0, 3.0));
    }

    #[test]
    fn welch_interval_matches_a_hand_computation() {
        // a: n=10, mean 0.8, s 0.2; b: n=20, mean 0.7, s 0.3.
        // va = 0.004, vb = 0.0045, se = √0.0085 = 0.0921954;
        // df = 0.0085² / (0.004²/9 + 0.0045²/19) = 7.225e-5 / (1.77778e-6 + 1.06579e-6) = 25.4097;
        // t(0.975, 25.41) = 2.0578 (between 2.0595 at 25 and 2.0555 at 26).
        let a = SampleSummary {
            n: 10,
            mean: 0.8,
            sd: 0.2,
        };
        let b = SampleSummary {
            n: 20,
            mean: 0.7,
            sd: 0.3,
        };
        let i = welch_interval(a, b, 0.95).unwrap();
        let half = (i.high - i.low) / 2.0;
        assert!(close((i.high + i.low) / 2.0, 0.1, 1e-12));
        assert!(close(half, 2.0578 * 0.092_195_4, 2e-4), "half {half}");
        let same = welch_interval(
            SampleSummary { sd: 0.0, ..a },
            SampleSummary { sd: 0.0, ..b },
            0.95,
        )
        .unwrap();
        assert!(close(same.low, 0.1, 1e-12) && close(same.high, 0.1, 1e-12));
    }

    #[test]
    fn means_of_quarter_scores_are_exact() {
        let mut m = Moments::default();
        for x in [
            1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.75, 0.75, 0.75, 0.75, 0.5, 0.5, 0.5, 0.5, 0.5,
        ] {
            m.push(x);
        }
        assert_eq!(m.mean(), Some(0.75));
    }

    #[test]
    fn moments_are_stable_for_many_values() {
        let mut m = Moments::default();
        for i in 0..1_000_000u64 {
            m.push(1e6 + (i % 4) as f64 * 0.25);
        }
        // Values 0, .25, .5, .75 around 1e6, equally often: mean +0.375, population var 0.078125.
        assert!(close(m.mean().unwrap(), 1e6 + 0.375, 1e-6));
        assert!(close(m.std_dev().unwrap(), 0.078_125f64.sqrt(), 1e-6));
    }

    #[test]
    fn sketch_quantiles_are_within_the_relative_accuracy() {
        let mut sketch = QuantileSketch::default();
        let mut values: Vec<f64> = (1..=100_000).map(|i| (i as f64).powf(1.3) / 7.0).collect();
        for v in &values {
            sketch.push(*v);
        }
        values.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let rank = ((q * values.len() as f64).ceil() as usize).saturating_sub(1);
            let exact = values[rank];
            let got = sketch.quantile(q).unwrap();
            assert!(
                (got - exact).abs() <= 0.01 * exact + 1e-12,
                "q={q}: {got} vs {exact}"
            );
        }
        assert!(sketch.buckets() < 2_000, "{}", sketch.buckets());
        let mut zeros = QuantileSketch::default();
        for v in [0.0, 0.0, 0.0, 10.0] {
            zeros.push(v);
        }
        assert_eq!(zeros.quantile(0.5), Some(0.0));
        assert!(close(zeros.quantile(1.0).unwrap(), 10.0, 0.1));
        // Nearest rank: the p95 of three values is the largest.
        let mut three = QuantileSketch::default();
        for v in [200.0, 300.0, 4000.0] {
            three.push(v);
        }
        assert!(close(three.quantile(0.95).unwrap(), 4000.0, 40.0));
        assert!(close(three.quantile(0.5).unwrap(), 300.0, 3.0));
        assert_eq!(QuantileSketch::default().quantile(0.5), None);
    }
}
