use serde::{Deserialize, Serialize};

use crate::error::{MeasureError, check_confidence};
use crate::quantile::{normal_quantile, quantile_sorted};

/// A two-sided interval `[lo, hi]` claimed to cover the true value with probability `confidence`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    pub lo: f64,
    pub hi: f64,
    pub confidence: f64,
}

impl ConfidenceInterval {
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// Percentile-bootstrap interval: the type-7 α/2 and 1 − α/2 quantiles of the bootstrap statistics.
/// Sorts `stats` in place.
pub(crate) fn percentile_interval(stats: &mut [f64], confidence: f64) -> ConfidenceInterval {
    stats.sort_unstable_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    ConfidenceInterval {
        lo: quantile_sorted(stats, alpha / 2.0),
        hi: quantile_sorted(stats, 1.0 - alpha / 2.0),
        confidence,
    }
}

/// Wilson score interval for a binomial proportion `successes / n` (no continuity correction). It stays
/// inside [0, 1] and behaves at 0 and n successes, unlike the Wald interval. With `n == 0` nothing is
/// known and the interval is [0, 1].
pub fn wilson_interval(
    successes: u64,
    n: u64,
    confidence: f64,
) -> Result<ConfidenceInterval, MeasureError> {
    const WHAT: &str = "compute a wilson interval";
    check_confidence(WHAT, confidence)?;
    if successes > n {
        return Err(MeasureError::InvalidOption {
            what: WHAT,
            field: "successes",
            reason: format!("is {successes}, more than the {n} trials"),
        });
    }
    if n == 0 {
        return Ok(ConfidenceInterval {
            lo: 0.0,
            hi: 1.0,
            confidence,
        });
    }
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Ok(ConfidenceInterval {
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
        confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(ci: ConfidenceInterval, lo: f64, hi: f64) -> bool {
        (ci.lo - lo).abs() < 5e-5 && (ci.hi - hi).abs() < 5e-5
    }

    #[test]
    fn wilson_matches_newcombe_1998_table() {
        // Newcombe, Statistics in Medicine 17:857–872 (1998), Table I, method 3 (score, no correction).
        assert!(close(
            wilson_interval(81, 263, 0.95).unwrap(),
            0.2553,
            0.3662
        ));
        assert!(close(
            wilson_interval(15, 148, 0.95).unwrap(),
            0.0624,
            0.1605
        ));
        assert!(close(wilson_interval(0, 20, 0.95).unwrap(), 0.0, 0.1611));
        assert!(close(wilson_interval(1, 29, 0.95).unwrap(), 0.0061, 0.1718));
    }

    #[test]
    fn wilson_rejects_nonsense_and_is_vacuous_without_trials() {
        assert!(wilson_interval(3, 2, 0.95).is_err());
        assert!(wilson_interval(1, 2, 1.0).is_err());
        let ci = wilson_interval(0, 0, 0.9).unwrap();
        assert_eq!((ci.lo, ci.hi, ci.confidence), (0.0, 1.0, 0.9));
    }

    #[test]
    fn wider_confidence_gives_wider_interval() {
        let narrow = wilson_interval(40, 100, 0.80).unwrap();
        let wide = wilson_interval(40, 100, 0.99).unwrap();
        assert!(wide.lo < narrow.lo && wide.hi > narrow.hi);
    }
}
