//! Regression and forecasting: error figures, a naive baseline with the model's skill against it,
//! and agreement between two builds' continuous outputs.
//!
//! Definitions: e = predicted − target. RMSE = √mean(e²); MAE = mean|e|; R² = 1 − Σe² / Σ(y − ȳ)²;
//! MAPE = mean|e / y| (skipped, with the reason, when a target is 0); max absolute error = max|e|.
//! **Skill** = 1 − RMSE / RMSE of the baseline on the same windows: above 0 the model beats the
//! baseline, below 0 it is worse than it. Intervals: the Poisson bootstrap over windows
//! ([`crate::poisson`]), model and baseline resampled with the same weights (a paired comparison).

use serde::{Deserialize, Serialize};

use crate::error::{MeasureError, check_finite};
use crate::interval::wilson_interval;
use crate::poisson::{Blocks, BootstrapOptions, Estimate, interval_of, resample};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionScores {
    pub n: usize,
    pub rmse: Estimate,
    pub mae: Estimate,
    pub r2: Estimate,
    pub mape: Option<Estimate>,
    /// Why MAPE is absent.
    pub mape_skipped: Option<String>,
    pub max_abs_error: Estimate,
    /// The same figures of the naive baseline, when one was given.
    pub baseline: Option<BaselineScores>,
    /// 1 − RMSE / baseline RMSE.
    pub skill: Option<Estimate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineScores {
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
    pub max_abs_error: f64,
}

/// Weighted sums of one pass: weight, Σe², Σ|e|, Σ|e/y|, Σyc, Σyc² (yc the target centred on
/// its full-sample mean, for a stable R²), Σ(baseline error)², and max|e|.
#[derive(Clone, Copy)]
struct Sums([f64; 8]);

impl Sums {
    fn weight(&self) -> f64 {
        self.0[0]
    }

    fn rmse(&self) -> f64 {
        (self.0[1] / self.weight()).sqrt()
    }

    fn mae(&self) -> f64 {
        self.0[2] / self.weight()
    }

    fn mape(&self) -> f64 {
        self.0[3] / self.weight()
    }

    fn r2(&self) -> f64 {
        let [w, sq, _, _, yc, yc2, ..] = self.0;
        1.0 - sq / (yc2 - yc * yc / w)
    }

    fn skill(&self) -> f64 {
        1.0 - (self.0[1] / self.0[6]).sqrt()
    }

    fn max(&self) -> f64 {
        self.0[7]
    }
}

fn same_length(what: &'static str, a: usize, b: usize) -> Result<(), MeasureError> {
    if a == b {
        Ok(())
    } else {
        Err(MeasureError::LengthMismatch {
            what,
            left: a,
            right: b,
        })
    }
}

/// Both per-window series (and the optional third, e.g. a baseline) are one value per window,
/// at least one window, all finite.
fn check_paired(
    what: &'static str,
    a: &[f64],
    b: &[f64],
    extra: Option<&[f64]>,
) -> Result<(), MeasureError> {
    same_length(what, a.len(), b.len())?;
    if let Some(extra) = extra {
        same_length(what, extra.len(), b.len())?;
        check_finite(what, extra, 0)?;
    }
    if a.is_empty() {
        return Err(MeasureError::Empty {
            what,
            detail: String::new(),
        });
    }
    check_finite(what, a, 0)?;
    check_finite(what, b, 0)
}

/// Error figures of `predicted` against `target`, and against `baseline`'s predictions when given.
/// Fails on no windows, mismatched lengths or a non-finite value.
pub fn regression_scores(
    predicted: &[f64],
    target: &[f64],
    baseline: Option<&[f64]>,
    options: &BootstrapOptions,
) -> Result<RegressionScores, MeasureError> {
    check_paired("score regression", predicted, target, baseline)?;
    let n = target.len();
    let mean = target.iter().sum::<f64>() / n as f64;
    let zero_target = target.iter().position(|&y| y == 0.0);
    let blocks = Blocks::new(options, n, 7, |i| {
        let e = predicted[i] - target[i];
        let yc = target[i] - mean;
        let pct = if zero_target.is_none() {
            (e / target[i]).abs()
        } else {
            0.0
        };
        let baseline = baseline.map_or(0.0, |b| (b[i] - target[i]).powi(2));
        [1.0, e * e, e.abs(), pct, yc, yc * yc, baseline, e.abs()]
    });
    let point = Sums(blocks.total());
    let stats = resample(options, blocks.len(), |w| Sums(blocks.weighted(w)));
    let estimate = |value: f64, pick: fn(&Sums) -> f64| Estimate {
        value,
        ci: interval_of(stats.iter().map(pick), options),
    };
    Ok(RegressionScores {
        n,
        rmse: estimate(point.rmse(), Sums::rmse),
        mae: estimate(point.mae(), Sums::mae),
        r2: estimate(point.r2(), Sums::r2),
        mape: zero_target
            .is_none()
            .then(|| estimate(point.mape(), Sums::mape)),
        mape_skipped: zero_target.map(|i| {
            format!("the target of window {i} is 0, where a percentage error is undefined")
        }),
        max_abs_error: estimate(point.max(), Sums::max),
        baseline: baseline.map(|b| {
            let errors: Vec<f64> = b.iter().zip(target).map(|(p, y)| p - y).collect();
            let sq: f64 = errors.iter().map(|e| e * e).sum();
            BaselineScores {
                rmse: (sq / n as f64).sqrt(),
                mae: errors.iter().map(|e| e.abs()).sum::<f64>() / n as f64,
                r2: 1.0 - sq / point.0[5],
                max_abs_error: errors.iter().fold(0.0, |m, e| m.max(e.abs())),
            }
        }),
        skill: baseline.map(|_| estimate(point.skill(), Sums::skill)),
    })
}

/// How a build's continuous outputs (anomaly scores, forecasts) agree with the reference build's on
/// the same windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputAgreement {
    pub n: usize,
    pub max_abs_diff: f64,
    pub mean_abs_diff: Estimate,
    /// Spearman rank correlation (average ranks for ties); interval with the ranks held fixed.
    pub spearman: Estimate,
    /// Share of windows where both builds take the same alarm decision (each at its threshold).
    pub same_decisions: Option<Estimate>,
    /// RMSE of this build / RMSE of the reference − 1, against the targets (paired bootstrap).
    pub rmse_change: Option<Estimate>,
}

/// Compares `outputs` with `reference`. `thresholds` = (this build's, the reference's) alarm
/// thresholds; `target` gives the relative RMSE change. Fails on no windows, mismatched lengths or
/// a non-finite value.
pub fn output_agreement(
    outputs: &[f64],
    reference: &[f64],
    thresholds: Option<(f64, f64)>,
    target: Option<&[f64]>,
    options: &BootstrapOptions,
) -> Result<OutputAgreement, MeasureError> {
    check_paired(
        "compare outputs with the reference build",
        outputs,
        reference,
        target,
    )?;
    let n = outputs.len();
    let (ra, rb) = (ranks(outputs), ranks(reference));
    let t = target.unwrap_or(reference);
    // Per window: 1, |Δ|, the two ranks, their squares and product (Spearman with the ranks held
    // fixed), both squared errors against the target.
    let blocks = Blocks::new(options, n, 9, |i| {
        let (a, b) = (ra[i], rb[i]);
        [
            1.0,
            (outputs[i] - reference[i]).abs(),
            a,
            b,
            a * a,
            b * b,
            a * b,
            (outputs[i] - t[i]).powi(2),
            (reference[i] - t[i]).powi(2),
        ]
    });
    let mean_abs_diff = |s: &[f64; 9]| s[1] / s[0];
    let spearman = |s: &[f64; 9]| {
        let [w, _, a, b, aa, bb, ab, ..] = *s;
        (ab - a * b / w) / ((aa - a * a / w) * (bb - b * b / w)).sqrt()
    };
    let rmse_change = |s: &[f64; 9]| (s[7] / s[8]).sqrt() - 1.0;
    let point = blocks.total();
    let stats = resample(options, blocks.len(), |w| blocks.weighted(w));
    let estimate = |f: &dyn Fn(&[f64; 9]) -> f64| Estimate {
        value: f(&point),
        ci: interval_of(stats.iter().map(f), options),
    };
    let same_decisions = thresholds.map(|(mine, theirs)| {
        let same = outputs
            .iter()
            .zip(reference)
            .filter(|(a, b)| (**a > mine) == (**b > theirs))
            .count();
        Estimate {
            value: same as f64 / n as f64,
            ci: wilson_interval(same as u64, n as u64, options.confidence).ok(),
        }
    });
    Ok(OutputAgreement {
        n,
        max_abs_diff: outputs
            .iter()
            .zip(reference)
            .fold(0.0, |m, (a, b)| m.max((a - b).abs())),
        mean_abs_diff: estimate(&mean_abs_diff),
        spearman: estimate(&spearman),
        same_decisions,
        rmse_change: target.map(|_| estimate(&rmse_change)),
    })
}

/// 1-based ranks, ties sharing their average rank.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_unstable_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && xs[order[end]] == xs[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_figures_match_hand_computation() {
        // e = [0.5, -1, 0, 2]; y = [1, 2, 3, 4], ȳ = 2.5, Σ(y − ȳ)² = 5.
        let y = [1.0, 2.0, 3.0, 4.0];
        let p = [1.5, 1.0, 3.0, 6.0];
        let m = regression_scores(
            &p,
            &y,
            Some(&[1.0, 1.0, 2.0, 3.0]),
            &BootstrapOptions::default(),
        )
        .unwrap();
        assert!((m.rmse.value - (5.25f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((m.mae.value - 0.875).abs() < 1e-12);
        assert!((m.r2.value - (1.0 - 5.25 / 5.0)).abs() < 1e-12);
        assert!((m.mape.unwrap().value - (0.5 + 0.5 + 0.0 + 0.5) / 4.0).abs() < 1e-12);
        assert_eq!(m.max_abs_error.value, 2.0);
        // Baseline errors [0, -1, -1, -1]: RMSE √0.75.
        let b = m.baseline.as_ref().unwrap();
        assert!((b.rmse - 0.75f64.sqrt()).abs() < 1e-12);
        assert_eq!((b.mae, b.max_abs_error), (0.75, 1.0));
        let skill = m.skill.unwrap().value;
        assert!((skill - (1.0 - (5.25f64 / 3.0).sqrt())).abs() < 1e-12);
        assert!(skill < 0.0, "worse than the baseline");
    }

    #[test]
    fn mape_is_skipped_at_a_zero_target() {
        let m = regression_scores(&[1.0, 2.0], &[0.0, 2.0], None, &BootstrapOptions::default())
            .unwrap();
        assert!(m.mape.is_none());
        assert_eq!(
            m.mape_skipped.as_deref(),
            Some("the target of window 0 is 0, where a percentage error is undefined")
        );
        assert!(m.baseline.is_none() && m.skill.is_none());
    }

    #[test]
    fn intervals_cover_a_known_noise_level() {
        let mut rng = crate::rng::Rng::new(4);
        let y: Vec<f64> = (0..2000).map(|i| f64::from(i % 100)).collect();
        let p: Vec<f64> = y.iter().map(|v| v + 0.5 * rng.normal()).collect();
        let m = regression_scores(&p, &y, None, &BootstrapOptions::default()).unwrap();
        let ci = m.rmse.ci.unwrap();
        assert!(ci.contains(0.5) && ci.hi - ci.lo < 0.06, "{ci:?}");
        assert!(m.r2.ci.unwrap().contains(m.r2.value));
    }

    #[test]
    fn agreement_of_outputs_ranks_decisions_and_rmse() {
        let reference = [0.1, 0.2, 0.3, 0.4, 0.5];
        let outputs = [0.1, 0.25, 0.2, 0.4, 0.9];
        let target = [0.0, 0.2, 0.3, 0.4, 0.5];
        let a = output_agreement(
            &outputs,
            &reference,
            Some((0.35, 0.35)),
            Some(&target),
            &BootstrapOptions::default(),
        )
        .unwrap();
        assert!((a.max_abs_diff - 0.4).abs() < 1e-12);
        assert!((a.mean_abs_diff.value - 0.55 / 5.0).abs() < 1e-12);
        // Ranks 1 3 2 4 5 vs 1 2 3 4 5: Spearman 1 − 6·2 / (5·24) = 0.9.
        assert!((a.spearman.value - 0.9).abs() < 1e-12);
        assert_eq!(a.same_decisions.unwrap().value, 1.0);
        // Reference errors: 0.1 only, this build's: 0.1, 0.05, 0.1, 0, 0.4.
        let expected = ((0.01 + 0.0025 + 0.01 + 0.16) / 0.01f64).sqrt() - 1.0;
        assert!((a.rmse_change.unwrap().value - expected).abs() < 1e-9);
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), [2.5, 1.0, 2.5]);
    }
}
