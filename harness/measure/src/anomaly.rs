//! Anomaly detection: ranking metrics of scores against 0/1 labels, point metrics at a threshold,
//! and the threshold calibrated on normal windows.
//!
//! Definitions (those of scikit-learn, so figures match a Python reference):
//! - **ROC-AUC** is the Mann–Whitney probability that a random anomalous window scores above a
//!   random normal one, ties counting one half (`roc_auc_score`).
//! - **PR-AUC** is average precision: Σₖ (Rₖ − Rₖ₋₁) Pₖ over the distinct scores in descending order
//!   (`average_precision_score`), not the trapezoid under the PR curve.
//! - **Alarm**: a window whose score is strictly above the threshold. Precision, recall and F1 of
//!   the alarms; a zero denominator gives 0.
//! - **Intervals**: the Poisson bootstrap ([`crate::poisson`]) over windows. Scores are sorted once;
//!   every resample is one pass over the sorted order with fresh weights, O(n) each.

use serde::{Deserialize, Serialize};

use crate::error::{MeasureError, check_finite};
use crate::poisson::{BootstrapOptions, Estimate, interval_of, resample};
use crate::quantile::quantile_sorted;

/// Points kept of a curve: enough to draw it, small enough for a results file.
const CURVE_POINTS: usize = 200;

/// A curve as parallel coordinate lists, e.g. false-positive rate → true-positive rate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Curve {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyScores {
    pub n: usize,
    /// Windows labelled anomalous.
    pub positives: usize,
    pub threshold: f64,
    pub roc_auc: Estimate,
    pub pr_auc: Estimate,
    pub precision: Estimate,
    pub recall: Estimate,
    pub f1: Estimate,
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
    /// False-positive rate → true-positive rate, from (0, 0) to (1, 1).
    pub roc_curve: Curve,
    /// Recall → precision, by descending threshold.
    pub pr_curve: Curve,
}

/// Metrics of one weighting (all ones for the point estimate).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    roc_auc: f64,
    pr_auc: f64,
    precision: f64,
    recall: f64,
    f1: f64,
}

/// Labels in descending score order, tie groups marked: what every resample reads.
struct Ranked {
    /// 1 for anomalous, 0 for normal.
    positive: Vec<f64>,
    /// The bootstrap block of each window.
    block_of: Vec<u32>,
    /// Whether the window ends its group of equal scores.
    closes: Vec<bool>,
    /// Windows above the threshold: a prefix of the order.
    alarms: usize,
    /// Whether any two scores are equal.
    ties: bool,
}

impl Ranked {
    fn new(
        scores: &[f64],
        anomalous: &[bool],
        threshold: f64,
        options: &BootstrapOptions,
    ) -> Ranked {
        let mut order: Vec<u32> = (0..scores.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
        let sorted: Vec<f64> = order.iter().map(|&i| scores[i as usize]).collect();
        Ranked {
            positive: order
                .iter()
                .map(|&i| f64::from(u8::from(anomalous[i as usize])))
                .collect(),
            block_of: order
                .iter()
                .map(|&i| options.block_of(i as usize))
                .collect(),
            closes: (0..sorted.len())
                .map(|i| i + 1 == sorted.len() || sorted[i + 1] != sorted[i])
                .collect(),
            ties: sorted.windows(2).any(|p| p[0] == p[1]),
            alarms: sorted.partition_point(|&s| s > threshold),
        }
    }

    /// One pass with `weights` per block; `curve` collects the ROC and PR points at each group end.
    fn pass(&self, weights: &[u8], mut curve: Option<&mut Vec<(f64, f64)>>) -> Point {
        if curve.is_none() && !self.ties {
            return self.untied_pass(weights);
        }
        let (mut tp, mut fp, mut group_tp, mut group_fp) = (0.0, 0.0, 0.0, 0.0);
        let (mut auc, mut ap, mut at) = (0.0, 0.0, (0.0, 0.0));
        for i in 0..self.positive.len() {
            let w = f64::from(weights[self.block_of[i] as usize]);
            let p = w * self.positive[i];
            group_tp += p;
            group_fp += w - p;
            if self.closes[i] {
                auc += group_fp * (tp + 0.5 * group_tp);
                tp += group_tp;
                fp += group_fp;
                // Branch-free: a zero-weight group adds 0 (the max keeps 0 / 0 away).
                ap += group_tp * tp / (tp + fp).max(f64::MIN_POSITIVE);
                if let Some(c) = curve.as_deref_mut() {
                    c.push((tp, fp));
                }
                (group_tp, group_fp) = (0.0, 0.0);
                if i + 1 == self.alarms {
                    at = (tp, fp);
                }
            }
        }
        Point::new(tp, fp, auc, ap, at)
    }

    /// [`Ranked::pass`] when no two scores are equal (the usual case for float scores): every
    /// group is one window, and integer counts carry the running sums.
    fn untied_pass(&self, weights: &[u8]) -> Point {
        let (mut tp, mut fp, mut auc) = (0u64, 0u64, 0u64);
        let (mut ap, mut at) = (0.0, (0, 0));
        for i in 0..self.positive.len() {
            let w = u64::from(weights[self.block_of[i] as usize]);
            let p = w * self.positive[i] as u64;
            auc += (w - p) * tp;
            tp += p;
            fp += w - p;
            ap += (p * tp) as f64 / ((tp + fp) as f64).max(f64::MIN_POSITIVE);
            if i + 1 == self.alarms {
                at = (tp, fp);
            }
        }
        Point::new(
            tp as f64,
            fp as f64,
            auc as f64,
            ap,
            (at.0 as f64, at.1 as f64),
        )
    }
}

impl Point {
    /// From the totals of a pass: positive and negative weight, the AUC and AP sums, and the
    /// counts above the threshold.
    fn new(positives: f64, negatives: f64, auc: f64, ap: f64, at: (f64, f64)) -> Point {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let precision = ratio(at.0, at.0 + at.1);
        let recall = ratio(at.0, positives);
        Point {
            roc_auc: auc / (positives * negatives),
            pr_auc: ap / positives,
            precision,
            recall,
            f1: ratio(2.0 * precision * recall, precision + recall),
        }
    }
}

fn check(what: &'static str, scores: &[f64], labels: usize) -> Result<(), MeasureError> {
    if scores.len() != labels {
        return Err(MeasureError::LengthMismatch {
            what,
            left: scores.len(),
            right: labels,
        });
    }
    if scores.is_empty() {
        return Err(MeasureError::Empty {
            what,
            detail: String::new(),
        });
    }
    check_finite(what, scores, 0)
}

/// Ranking and threshold metrics of `scores` (higher = more anomalous) against `anomalous`. Fails
/// on no windows, mismatched lengths, a non-finite score, or labels of one kind only (no AUC).
pub fn anomaly_scores(
    scores: &[f64],
    anomalous: &[bool],
    threshold: f64,
    options: &BootstrapOptions,
) -> Result<AnomalyScores, MeasureError> {
    const WHAT: &str = "score anomaly detection";
    check(WHAT, scores, anomalous.len())?;
    let positives = anomalous.iter().filter(|&&a| a).count();
    if positives == 0 || positives == anomalous.len() {
        return Err(MeasureError::InvalidOption {
            what: WHAT,
            field: "labels",
            reason: format!(
                "are all {} ({} windows): ROC-AUC needs both normal and anomalous windows",
                if positives == 0 {
                    "normal"
                } else {
                    "anomalous"
                },
                anomalous.len()
            ),
        });
    }
    let ranked = Ranked::new(scores, anomalous, threshold, options);
    let mut points = Vec::new();
    let blocks = options.blocks(scores.len());
    let point = ranked.pass(&vec![1; blocks], Some(&mut points));
    let stats = resample(options, blocks, |w| ranked.pass(w, None));
    let estimate = |value: f64, pick: fn(&Point) -> f64| Estimate {
        value,
        ci: interval_of(stats.iter().map(pick), options),
    };
    let tp = ranked.positive[..ranked.alarms].iter().sum::<f64>() as u64;
    let fp = ranked.alarms as u64 - tp;
    let (p, n) = (positives as f64, (anomalous.len() - positives) as f64);
    let step = points.len().div_ceil(CURVE_POINTS).max(1);
    let kept: Vec<(f64, f64)> = std::iter::once((0.0, 0.0))
        .chain(points.iter().copied().skip(step - 1).step_by(step))
        .chain(points.last().copied())
        .collect();
    Ok(AnomalyScores {
        n: anomalous.len(),
        positives,
        threshold,
        roc_auc: estimate(point.roc_auc, |s| s.roc_auc),
        pr_auc: estimate(point.pr_auc, |s| s.pr_auc),
        precision: estimate(point.precision, |s| s.precision),
        recall: estimate(point.recall, |s| s.recall),
        f1: estimate(point.f1, |s| s.f1),
        true_positives: tp,
        false_positives: fp,
        true_negatives: n as u64 - fp,
        false_negatives: p as u64 - tp,
        roc_curve: Curve {
            x: kept.iter().map(|&(_, f)| f / n).collect(),
            y: kept.iter().map(|&(t, _)| t / p).collect(),
        },
        pr_curve: Curve {
            x: kept[1..].iter().map(|&(t, _)| t / p).collect(),
            y: kept[1..].iter().map(|&(t, f)| t / (t + f)).collect(),
        },
    })
}

/// The type-7 `quantile` of `scores`: a threshold that a share `1 − quantile` of these (normal)
/// windows exceed. Fails on no scores, a non-finite score or a quantile outside [0, 1].
pub fn calibrated_threshold(scores: &[f64], quantile: f64) -> Result<f64, MeasureError> {
    const WHAT: &str = "calibrate an anomaly threshold";
    if !(0.0..=1.0).contains(&quantile) {
        return Err(MeasureError::InvalidOption {
            what: WHAT,
            field: "quantile",
            reason: format!("is {quantile}, must lie in [0, 1]"),
        });
    }
    if scores.is_empty() {
        return Err(MeasureError::Empty {
            what: WHAT,
            detail: " among the calibration windows".into(),
        });
    }
    check_finite(WHAT, scores, 0)?;
    let mut sorted = scores.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    Ok(quantile_sorted(&sorted, quantile))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact AUC by comparing every pair, ties one half.
    fn pairwise_auc(scores: &[f64], labels: &[bool]) -> f64 {
        let (mut sum, mut pairs) = (0.0, 0.0);
        for (i, &a) in scores.iter().enumerate() {
            for (j, &b) in scores.iter().enumerate() {
                if labels[i] && !labels[j] {
                    pairs += 1.0;
                    sum += if a > b {
                        1.0
                    } else if a == b {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        sum / pairs
    }

    #[test]
    fn auc_and_average_precision_match_scikit_learn() {
        // sklearn 1.5: roc_auc_score(y, s) = 0.75, average_precision_score(y, s) = 0.8333…
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        let m = anomaly_scores(&s, &y, 0.3, &BootstrapOptions::default()).unwrap();
        assert!((m.roc_auc.value - 0.75).abs() < 1e-12);
        assert!((m.pr_auc.value - 5.0 / 6.0).abs() < 1e-12);
        // Alarms above 0.3: 0.4 (normal), 0.35 and 0.8 (anomalous).
        assert_eq!((m.true_positives, m.false_positives), (2, 1));
        assert_eq!((m.true_negatives, m.false_negatives), (1, 0));
        assert!((m.precision.value - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.recall.value, 1.0);
        assert!((m.f1.value - 0.8).abs() < 1e-12);
        assert_eq!(m.roc_curve.x.first(), Some(&0.0));
        assert_eq!(m.roc_curve.y.last(), Some(&1.0));
    }

    #[test]
    fn ties_count_one_half_and_group_in_average_precision() {
        // sklearn: roc_auc_score([0,1,0,1], [0.5,0.5,0.2,0.9]) = 0.875;
        // average_precision_score(...) = 0.5 * 1 + 0.5 * (2/3) = 0.8333…
        let s = [0.5, 0.5, 0.2, 0.9];
        let y = [false, true, false, true];
        let m = anomaly_scores(&s, &y, 1.0, &BootstrapOptions::default()).unwrap();
        assert!((m.roc_auc.value - 0.875).abs() < 1e-12);
        assert!((m.pr_auc.value - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
        assert_eq!(
            (m.precision.value, m.recall.value, m.f1.value),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn one_pass_auc_equals_the_pairwise_count_on_tied_data() {
        let mut rng = crate::rng::Rng::new(11);
        let s: Vec<f64> = (0..300).map(|_| rng.below(20) as f64).collect();
        let y: Vec<bool> = s.iter().map(|&x| rng.below(20) < x as usize + 3).collect();
        let m = anomaly_scores(&s, &y, 10.0, &BootstrapOptions::default()).unwrap();
        assert!((m.roc_auc.value - pairwise_auc(&s, &y)).abs() < 1e-12);
        let ci = m.roc_auc.ci.unwrap();
        assert!(ci.lo < m.roc_auc.value && m.roc_auc.value < ci.hi, "{ci:?}");
    }

    #[test]
    fn a_separable_detector_has_auc_one_and_a_random_one_about_half() {
        let s: Vec<f64> = (0..1000).map(f64::from).collect();
        let y: Vec<bool> = (0..1000).map(|i| i >= 900).collect();
        let m = anomaly_scores(&s, &y, 899.5, &BootstrapOptions::default()).unwrap();
        assert_eq!(
            (m.roc_auc.value, m.pr_auc.value, m.f1.value),
            (1.0, 1.0, 1.0)
        );
        let mut rng = crate::rng::Rng::new(2);
        let noise: Vec<f64> = (0..2000).map(|_| rng.unit()).collect();
        let y: Vec<bool> = (0..2000).map(|i| i % 4 == 0).collect();
        let m = anomaly_scores(&noise, &y, 0.5, &BootstrapOptions::default()).unwrap();
        let ci = m.roc_auc.ci.unwrap();
        assert!(ci.contains(0.5) && ci.hi - ci.lo < 0.09, "{ci:?}");
    }

    #[test]
    fn one_kind_of_label_and_bad_input_are_errors() {
        let o = BootstrapOptions::default();
        assert!(anomaly_scores(&[1.0, 2.0], &[false, false], 0.0, &o).is_err());
        assert!(anomaly_scores(&[1.0], &[false, true], 0.0, &o).is_err());
        assert!(anomaly_scores(&[f64::NAN, 1.0], &[false, true], 0.0, &o).is_err());
        assert!(anomaly_scores(&[], &[], 0.0, &o).is_err());
    }

    #[test]
    fn the_calibrated_threshold_is_the_type_7_quantile() {
        let s: Vec<f64> = (0..=100).rev().map(f64::from).collect();
        assert_eq!(calibrated_threshold(&s, 0.99).unwrap(), 99.0);
        assert_eq!(calibrated_threshold(&[1.0, 2.0], 0.5).unwrap(), 1.5);
        assert!(calibrated_threshold(&[], 0.99).is_err());
        assert!(calibrated_threshold(&[1.0], 1.5).is_err());
    }
}
