use serde::{Deserialize, Serialize};

use crate::error::{MeasureError, check_confidence, check_finite};
use crate::interval::{ConfidenceInterval, percentile_interval};
use crate::quantile::{Resampler, quantile_sorted};
use crate::rng::{DEFAULT_SEED, Rng};

/// How [`summarize`] treats a latency sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SummaryOptions {
    /// Samples at the start of the slice to skip (cold caches, lazy allocation, clock ramp-up).
    pub warmup: usize,
    /// Bootstrap resamples for the confidence intervals; 0 skips the bootstrap.
    pub bootstrap_resamples: usize,
    /// Two-sided coverage of every interval, strictly between 0 and 1.
    pub confidence: f64,
    /// Bootstrap seed: the same samples, options and seed give bit-identical intervals.
    pub seed: u64,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        Self {
            warmup: 0,
            bootstrap_resamples: 2_000,
            confidence: 0.95,
            seed: DEFAULT_SEED,
        }
    }
}

/// Descriptive statistics of one latency sample; units are whatever the samples were in (µs by convention).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples summarised, after warm-up exclusion.
    pub n: usize,
    /// Samples skipped as warm-up.
    pub warmup_excluded: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1 denominator; 0 for a single sample).
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    /// Percentile-bootstrap intervals; `None` when `bootstrap_resamples` was 0.
    pub ci: Option<LatencyIntervals>,
    pub outliers: TukeyOutliers,
    /// Percentiles computed from fewer samples than LoadGen's minimum (see [`loadgen_min_samples`]),
    /// e.g. `["p99", "p999"]`: reports should mark them as indicative only.
    pub insufficient: Vec<String>,
}

/// Bootstrap confidence intervals of a [`LatencySummary`], with what is needed to reproduce them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyIntervals {
    pub mean: ConfidenceInterval,
    pub p50: ConfidenceInterval,
    pub p90: ConfidenceInterval,
    pub p95: ConfidenceInterval,
    pub p99: ConfidenceInterval,
    pub resamples: usize,
    pub seed: u64,
}

/// Tukey-fence outlier counts. Outliers are reported, never removed. Fences sit at Q1 − k·IQR and
/// Q3 + k·IQR (type-7 quartiles); a sample strictly beyond the 3×IQR fence is `extreme`, one strictly
/// beyond the 1.5×IQR fence but not the 3×IQR one is `mild`, so the four counts are disjoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TukeyOutliers {
    pub q1: f64,
    pub q3: f64,
    pub iqr: f64,
    pub low_mild: usize,
    pub low_extreme: usize,
    pub high_mild: usize,
    pub high_extreme: usize,
}

impl TukeyOutliers {
    /// Counts outliers of an ascending, non-empty slice.
    pub fn of_sorted(sorted: &[f64]) -> Self {
        let q1 = quantile_sorted(sorted, 0.25);
        let q3 = quantile_sorted(sorted, 0.75);
        let iqr = q3 - q1;
        let below = |fence: f64| sorted.partition_point(|&x| x < fence);
        let above = |fence: f64| sorted.len() - sorted.partition_point(|&x| x <= fence);
        let (low_extreme, low_any) = (below(q1 - 3.0 * iqr), below(q1 - 1.5 * iqr));
        let (high_extreme, high_any) = (above(q3 + 3.0 * iqr), above(q3 + 1.5 * iqr));
        Self {
            q1,
            q3,
            iqr,
            low_mild: low_any - low_extreme,
            low_extreme,
            high_mild: high_any - high_extreme,
            high_extreme,
        }
    }

    pub fn total(&self) -> usize {
        self.low_mild + self.low_extreme + self.high_mild + self.high_extreme
    }
}

/// The reported percentiles, by name as used in `insufficient`.
const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p999", 0.999),
];

/// MLPerf LoadGen's minimum sample count for reporting percentile `p` (0 < p < 1): the smallest n for which
/// a run of n queries with at most one over the reported latency still bounds the p-th percentile at 99%
/// confidence, i.e. P[Binomial(n, 1 − p) ≤ 1] < 0.01 (LoadGen's early-stopping rule with zero tolerance,
/// `early_stopping.cc`). This gives 11 for p50, 64 for p90, 130 for p95, 662 for p99 and 6,636 for p99.9.
pub fn loadgen_min_samples(p: f64) -> u64 {
    debug_assert!(p > 0.0 && p < 1.0);
    let (ln_p, q) = (p.ln(), 1.0 - p);
    let mut n: u64 = 2;
    loop {
        let nf = n as f64;
        let at_most_one = (nf * ln_p).exp() + nf * q * ((nf - 1.0) * ln_p).exp();
        if at_most_one < 0.01 {
            return n;
        }
        n += 1;
    }
}

/// Summarises a latency sample: moments, type-7 percentiles, Tukey outliers, LoadGen sufficiency and
/// percentile-bootstrap intervals. Fails when no sample remains after warm-up, a sample is not finite, or
/// the confidence is outside (0, 1).
pub fn summarize(
    samples_us: &[f64],
    opts: &SummaryOptions,
) -> Result<LatencySummary, MeasureError> {
    const WHAT: &str = "summarize latency samples";
    check_confidence(WHAT, opts.confidence)?;
    let kept = samples_us.get(opts.warmup..).unwrap_or_default();
    if kept.is_empty() {
        return Err(MeasureError::Empty {
            what: WHAT,
            detail: format!(
                " left after skipping {} warm-up samples of {}",
                opts.warmup,
                samples_us.len()
            ),
        });
    }
    check_finite(WHAT, kept, opts.warmup)?;

    let mut sorted = kept.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let stddev = if n > 1 {
        (sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let [p50, p90, p95, p99, p999] = PERCENTILES.map(|(_, p)| quantile_sorted(&sorted, p));
    let insufficient = PERCENTILES
        .iter()
        .filter(|(_, p)| (n as u64) < loadgen_min_samples(*p))
        .map(|(name, _)| (*name).to_owned())
        .collect();

    Ok(LatencySummary {
        n,
        warmup_excluded: opts.warmup,
        mean,
        stddev,
        min: sorted[0],
        max: sorted[n - 1],
        p50,
        p90,
        p95,
        p99,
        p999,
        ci: (opts.bootstrap_resamples > 0).then(|| bootstrap_intervals(&sorted, opts)),
        outliers: TukeyOutliers::of_sorted(&sorted),
        insufficient,
    })
}

fn bootstrap_intervals(sorted: &[f64], opts: &SummaryOptions) -> LatencyIntervals {
    const PS: [f64; 4] = [0.50, 0.90, 0.95, 0.99];
    let b = opts.bootstrap_resamples;
    let mut rng = Rng::new(opts.seed);
    let mut resampler = Resampler::new(sorted);
    let mut means = Vec::with_capacity(b);
    let mut quantiles: [Vec<f64>; 4] = std::array::from_fn(|_| Vec::with_capacity(b));
    let mut out = [0.0; 4];
    for _ in 0..b {
        resampler.draw(&mut rng);
        means.push(resampler.mean_and_quantiles(&PS, &mut out));
        for (stats, &q) in quantiles.iter_mut().zip(&out) {
            stats.push(q);
        }
    }
    let [p50, p90, p95, p99] = quantiles.map(|mut s| percentile_interval(&mut s, opts.confidence));
    LatencyIntervals {
        mean: percentile_interval(&mut means, opts.confidence),
        p50,
        p90,
        p95,
        p99,
        resamples: b,
        seed: opts.seed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::normal_sample;

    fn no_bootstrap() -> SummaryOptions {
        SummaryOptions {
            bootstrap_resamples: 0,
            ..SummaryOptions::default()
        }
    }

    #[test]
    fn loadgen_minima_match_the_published_figures() {
        assert_eq!(loadgen_min_samples(0.90), 64);
        assert_eq!(loadgen_min_samples(0.99), 662);
        assert_eq!(loadgen_min_samples(0.999), 6_636);
    }

    #[test]
    fn normal_sample_recovers_its_parameters() {
        let s = summarize(&normal_sample(42, 100_000, 100.0, 10.0), &no_bootstrap()).unwrap();
        // Standard errors at n = 10^5: mean 0.032, median 0.040, p90 0.054, p99 ≈ 0.12, sd 0.022.
        assert!((s.mean - 100.0).abs() < 0.15, "{}", s.mean);
        assert!((s.p50 - 100.0).abs() < 0.2, "{}", s.p50);
        assert!((s.p90 - 112.815_5).abs() < 0.3, "{}", s.p90);
        assert!((s.p99 - 123.263_5).abs() < 0.6, "{}", s.p99);
        assert!((s.stddev - 10.0).abs() < 0.1, "{}", s.stddev);
        assert!(s.min < s.p50 && s.p999 < s.max);
        assert!(s.insufficient.is_empty());
        assert!(s.ci.is_none());
        // A normal sample puts 0.70% beyond the 1.5×IQR fences and 2·10⁻⁶ % beyond 3×IQR.
        let mild = s.outliers.low_mild + s.outliers.high_mild;
        assert!((500..900).contains(&mild), "{mild}");
        assert_eq!(s.outliers.low_extreme + s.outliers.high_extreme, 0);
    }

    #[test]
    fn log_normal_sample_recovers_median_and_mean() {
        let (mu, sigma) = (4.0_f64, 0.5_f64);
        let xs: Vec<f64> = normal_sample(9, 100_000, mu, sigma)
            .into_iter()
            .map(f64::exp)
            .collect();
        let s = summarize(&xs, &no_bootstrap()).unwrap();
        let median = mu.exp(); // 54.60
        let mean = (mu + sigma * sigma / 2.0).exp(); // 61.87
        assert!((s.p50 / median - 1.0).abs() < 0.01, "{} vs {median}", s.p50);
        assert!((s.mean / mean - 1.0).abs() < 0.01, "{} vs {mean}", s.mean);
        // Right skew: the upper fences catch far more than the lower ones.
        assert!(s.outliers.high_mild + s.outliers.high_extreme > 10 * s.outliers.low_mild.max(1));
    }

    #[test]
    fn bootstrap_is_deterministic_per_seed() {
        let xs = normal_sample(1, 5_000, 100.0, 10.0);
        let opts = SummaryOptions {
            bootstrap_resamples: 300,
            ..SummaryOptions::default()
        };
        let a = summarize(&xs, &opts).unwrap();
        let b = summarize(&xs, &opts).unwrap();
        let c = summarize(&xs, &SummaryOptions { seed: 2, ..opts }).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.ci, c.ci);
        let ci = a.ci.unwrap();
        assert_eq!((ci.resamples, ci.seed), (300, opts.seed));
        for iv in [ci.mean, ci.p50, ci.p90, ci.p95, ci.p99] {
            assert!(iv.lo < iv.hi);
        }
        assert!(ci.p50.contains(a.p50) && ci.p99.contains(a.p99) && ci.mean.contains(a.mean));
    }

    #[test]
    fn mean_interval_covers_about_95_percent() {
        let experiments = 300;
        let mut covered = 0;
        for seed in 0..experiments {
            let xs = normal_sample(1_000 + seed, 200, 50.0, 5.0);
            let opts = SummaryOptions {
                bootstrap_resamples: 500,
                seed,
                ..SummaryOptions::default()
            };
            let ci = summarize(&xs, &opts).unwrap().ci.unwrap();
            covered += usize::from(ci.mean.contains(50.0));
        }
        let coverage = covered as f64 / experiments as f64;
        // Binomial sd at 300 trials is 1.3 points; the percentile bootstrap runs slightly narrow at n = 200.
        assert!((0.91..=0.98).contains(&coverage), "{coverage}");
    }

    #[test]
    fn tukey_counts_on_a_constructed_sample() {
        // Q1 = 10, Q3 = 20 (IQR 10): mild fences -5/35, extreme fences -20/50.
        let mut xs: Vec<f64> = vec![10.0; 25];
        xs.extend([20.0; 25]);
        xs.extend([15.0; 46]);
        xs.extend([-6.0, -21.0, 36.0, 51.0]);
        xs.sort_by(f64::total_cmp);
        let t = TukeyOutliers::of_sorted(&xs);
        assert_eq!((t.q1, t.q3, t.iqr), (10.0, 20.0, 10.0));
        assert_eq!(
            (t.low_mild, t.low_extreme, t.high_mild, t.high_extreme),
            (1, 1, 1, 1)
        );
        assert_eq!(t.total(), 4);
        // Samples exactly on a fence are not beyond it.
        let on_fence = TukeyOutliers::of_sorted(&[-5.0, 10.0, 10.0, 15.0, 20.0, 20.0, 35.0]);
        assert_eq!(on_fence.total(), 0);
    }

    #[test]
    fn warmup_is_skipped_and_small_samples_are_flagged() {
        let mut xs = vec![1_000.0; 10];
        xs.extend((0..100).map(f64::from));
        let s = summarize(
            &xs,
            &SummaryOptions {
                warmup: 10,
                ..no_bootstrap()
            },
        )
        .unwrap();
        assert_eq!((s.n, s.warmup_excluded, s.max), (100, 10, 99.0));
        assert_eq!(s.insufficient, ["p95", "p99", "p999"]);
        assert_eq!(s.p50, 49.5);

        let err = summarize(
            &xs,
            &SummaryOptions {
                warmup: 110,
                ..no_bootstrap()
            },
        )
        .unwrap_err();
        assert!(matches!(err, MeasureError::Empty { .. }), "{err}");
    }

    #[test]
    fn rejects_non_finite_samples_and_bad_confidence() {
        let err = summarize(
            &[1.0, 2.0, f64::NAN, 3.0],
            &SummaryOptions {
                warmup: 1,
                ..no_bootstrap()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "summarize latency samples: sample 2 is NaN, not a finite number"
        );
        let bad = SummaryOptions {
            confidence: 95.0,
            ..no_bootstrap()
        };
        assert!(matches!(
            summarize(&[1.0], &bad),
            Err(MeasureError::InvalidOption {
                field: "confidence",
                ..
            })
        ));
    }

    #[test]
    fn summary_round_trips_through_json() {
        let s = summarize(
            &normal_sample(5, 500, 10.0, 1.0),
            &SummaryOptions {
                bootstrap_resamples: 50,
                ..SummaryOptions::default()
            },
        )
        .unwrap();
        let back: LatencySummary =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
