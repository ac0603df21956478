use serde::{Deserialize, Serialize};

use crate::error::{MeasureError, check_confidence, check_finite};
use crate::interval::{ConfidenceInterval, percentile_interval};
use crate::quantile::{Resampler, quantile_sorted};
use crate::rng::{DEFAULT_SEED, Rng};

/// Settings of [`paired_ratio`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatioOptions {
    /// Bootstrap resamples; must be positive.
    pub bootstrap_resamples: usize,
    pub confidence: f64,
    pub seed: u64,
    /// Relative change below which a difference is treated as noise (criterion's default is 1%).
    pub noise: f64,
}

impl RatioOptions {
    /// Rejects a confidence outside (0, 1) and a noise band outside [0, 1).
    pub(crate) fn check(&self, what: &'static str) -> Result<(), MeasureError> {
        check_confidence(what, self.confidence)?;
        if !(0.0..1.0).contains(&self.noise) {
            return Err(MeasureError::InvalidOption {
                what,
                field: "noise",
                reason: format!("is {}, must lie in [0, 1)", self.noise),
            });
        }
        Ok(())
    }
}

impl Default for RatioOptions {
    fn default() -> Self {
        Self {
            bootstrap_resamples: 2_000,
            confidence: 0.95,
            seed: DEFAULT_SEED,
            noise: 0.01,
        }
    }
}

/// Ratio of medians `median(b) / median(a)`: above 1 means b's values are larger (slower, for latencies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatioEstimate {
    pub ratio: f64,
    pub ci: ConfidenceInterval,
    /// True when the whole interval lies outside [1 − noise, 1 + noise].
    pub significant: bool,
    pub noise: f64,
    pub median_a: f64,
    pub median_b: f64,
    pub n_a: usize,
    pub n_b: usize,
    pub resamples: usize,
    pub seed: u64,
}

/// Compares variant b against baseline a by the ratio of their medians with a percentile-bootstrap interval.
///
/// Each resample redraws a's samples and b's samples independently, with replacement, within their own
/// variant. That treats samples as exchangeable within a variant, which holds when the runner interleaves
/// a and b in blocks on the same board, so drift and thermal state hit both alike; it does not model
/// correlation between neighbouring blocks, so intervals can be optimistic under strong drift.
/// Fails on empty or non-finite input, a non-positive baseline sample (a resampled median of 0 would make
/// the ratio infinite), or bad options.
pub fn paired_ratio(
    a: &[f64],
    b: &[f64],
    opts: &RatioOptions,
) -> Result<RatioEstimate, MeasureError> {
    const WHAT: &str = "compare variants by median ratio";
    opts.check(WHAT)?;
    if opts.bootstrap_resamples == 0 {
        return Err(MeasureError::InvalidOption {
            what: WHAT,
            field: "bootstrap_resamples",
            reason: "is 0, but significance needs an interval".to_owned(),
        });
    }
    for (what, xs) in [
        ("compare variants: baseline a", a),
        ("compare variants: candidate b", b),
    ] {
        if xs.is_empty() {
            return Err(MeasureError::Empty {
                what,
                detail: String::new(),
            });
        }
        check_finite(what, xs, 0)?;
    }
    if let Some(index) = a.iter().position(|&x| x <= 0.0) {
        return Err(MeasureError::NotPositive {
            what: "compare variants: baseline a",
            index,
            value: a[index],
        });
    }

    let sort = |xs: &[f64]| {
        let mut v = xs.to_vec();
        v.sort_unstable_by(f64::total_cmp);
        v
    };
    let (sa, sb) = (sort(a), sort(b));
    let (median_a, median_b) = (quantile_sorted(&sa, 0.5), quantile_sorted(&sb, 0.5));
    let mut rng = Rng::new(opts.seed);
    let (mut ra, mut rb) = (Resampler::new(&sa), Resampler::new(&sb));
    let (mut ma, mut mb) = ([0.0], [0.0]);
    let mut ratios: Vec<f64> = (0..opts.bootstrap_resamples)
        .map(|_| {
            ra.draw(&mut rng);
            rb.draw(&mut rng);
            ra.mean_and_quantiles(&[0.5], &mut ma);
            rb.mean_and_quantiles(&[0.5], &mut mb);
            mb[0] / ma[0]
        })
        .collect();
    let ci = percentile_interval(&mut ratios, opts.confidence);
    Ok(RatioEstimate {
        ratio: median_b / median_a,
        significant: ci.hi < 1.0 - opts.noise || ci.lo > 1.0 + opts.noise,
        ci,
        noise: opts.noise,
        median_a,
        median_b,
        n_a: a.len(),
        n_b: b.len(),
        resamples: opts.bootstrap_resamples,
        seed: opts.seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::normal_sample;

    fn opts() -> RatioOptions {
        RatioOptions {
            bootstrap_resamples: 500,
            ..RatioOptions::default()
        }
    }

    #[test]
    fn detects_a_five_percent_slowdown() {
        let a = normal_sample(1, 2_000, 100.0, 5.0);
        let b = normal_sample(2, 2_000, 105.0, 5.0);
        let r = paired_ratio(&a, &b, &opts()).unwrap();
        assert!((r.ratio - 1.05).abs() < 0.005, "{}", r.ratio);
        assert!(r.ci.contains(r.ratio) && r.ci.lo > 1.01, "{:?}", r.ci);
        assert!(r.significant);
        // Swapping the roles inverts the ratio.
        let back = paired_ratio(&b, &a, &opts()).unwrap();
        assert!((back.ratio * r.ratio - 1.0).abs() < 1e-12);
        assert!(back.significant && back.ci.hi < 0.99);
    }

    #[test]
    fn same_distribution_is_not_significant() {
        let a = normal_sample(3, 2_000, 100.0, 5.0);
        let b = normal_sample(4, 2_000, 100.0, 5.0);
        let r = paired_ratio(&a, &b, &opts()).unwrap();
        assert!(r.ci.contains(1.0), "{:?}", r.ci);
        assert!(!r.significant);
    }

    #[test]
    fn change_inside_the_noise_band_is_not_significant() {
        // A real 0.5% shift, resolved by a tight interval, still sits inside the 1% noise band.
        let a = normal_sample(5, 2_000, 100.0, 1.0);
        let b = normal_sample(6, 2_000, 100.5, 1.0);
        let r = paired_ratio(&a, &b, &opts()).unwrap();
        assert!(!r.ci.contains(1.0));
        assert!(!r.significant);
        let strict = paired_ratio(
            &a,
            &b,
            &RatioOptions {
                noise: 0.0,
                ..opts()
            },
        )
        .unwrap();
        assert!(strict.significant);
    }

    #[test]
    fn deterministic_per_seed() {
        let a = normal_sample(7, 300, 10.0, 1.0);
        let b = normal_sample(8, 300, 10.0, 1.0);
        let one = paired_ratio(&a, &b, &opts()).unwrap();
        assert_eq!(one, paired_ratio(&a, &b, &opts()).unwrap());
        let other = paired_ratio(&a, &b, &RatioOptions { seed: 99, ..opts() }).unwrap();
        assert_ne!(one.ci, other.ci);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            paired_ratio(&[], &[1.0], &opts()),
            Err(MeasureError::Empty { .. })
        ));
        assert!(matches!(
            paired_ratio(&[1.0, 0.0], &[1.0], &opts()),
            Err(MeasureError::NotPositive { index: 1, .. })
        ));
        assert!(matches!(
            paired_ratio(&[1.0], &[f64::INFINITY], &opts()),
            Err(MeasureError::NonFinite { index: 0, .. })
        ));
        let zero = RatioOptions {
            bootstrap_resamples: 0,
            ..opts()
        };
        assert!(paired_ratio(&[1.0], &[1.0], &zero).is_err());
    }
}
