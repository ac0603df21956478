use serde::{Deserialize, Serialize};

use crate::error::MeasureError;
use crate::interval::{ConfidenceInterval, wilson_interval};

/// Accuracy-side metrics of one variant on a labelled dataset slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub n: u64,
    pub accuracy: f64,
    /// 95% Wilson interval of the accuracy.
    pub accuracy_ci: ConfidenceInterval,
    /// Unweighted mean F1 over the classes that occur in the truth or the predictions.
    pub macro_f1: f64,
    /// How many classes entered `macro_f1`.
    pub macro_classes: usize,
    /// One entry per class `0..n_classes`.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[truth][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

/// Per-class scores. A ratio whose denominator is 0 (precision of a never-predicted class, recall of a class
/// absent from the truth) is reported as 0, as scikit-learn does by default; `support` and `predicted`
/// let a report tell such zeros apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: u32,
    /// Rows whose truth is this class.
    pub support: u64,
    /// Rows predicted as this class.
    pub predicted: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Scores predictions against ground truth. Fails on different lengths, no rows, or a label ≥ `n_classes`.
pub fn classification(
    predicted: &[u32],
    truth: &[u32],
    n_classes: usize,
) -> Result<Classification, MeasureError> {
    const WHAT: &str = "score classification";
    if predicted.len() != truth.len() {
        return Err(MeasureError::LengthMismatch {
            what: WHAT,
            left: predicted.len(),
            right: truth.len(),
        });
    }
    if truth.is_empty() {
        return Err(MeasureError::Empty {
            what: WHAT,
            detail: String::new(),
        });
    }
    for (what, labels) in [
        ("score classification predictions", predicted),
        ("score classification truth", truth),
    ] {
        if let Some(index) = labels.iter().position(|&l| l as usize >= n_classes) {
            return Err(MeasureError::LabelOutOfRange {
                what,
                index,
                label: labels[index],
                n_classes,
            });
        }
    }

    let mut confusion = vec![vec![0u64; n_classes]; n_classes];
    for (&p, &t) in predicted.iter().zip(truth) {
        confusion[t as usize][p as usize] += 1;
    }
    let n = truth.len() as u64;
    let correct: u64 = (0..n_classes).map(|c| confusion[c][c]).sum();
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    let per_class: Vec<ClassMetrics> = (0..n_classes)
        .map(|c| {
            let tp = confusion[c][c];
            let support: u64 = confusion[c].iter().sum();
            let predicted: u64 = confusion.iter().map(|row| row[c]).sum();
            ClassMetrics {
                class: c as u32,
                support,
                predicted,
                precision: ratio(tp, predicted),
                recall: ratio(tp, support),
                // 2PR/(P+R) simplifies to 2·tp/(support + predicted).
                f1: ratio(2 * tp, support + predicted),
            }
        })
        .collect();
    let present: Vec<&ClassMetrics> = per_class
        .iter()
        .filter(|m| m.support + m.predicted > 0)
        .collect();
    Ok(Classification {
        n,
        accuracy: correct as f64 / n as f64,
        accuracy_ci: wilson_interval(correct, n, 0.95)?,
        macro_f1: present.iter().map(|m| m.f1).sum::<f64>() / present.len() as f64,
        macro_classes: present.len(),
        per_class,
        confusion,
    })
}

/// Index of the largest score; the first wins ties and NaN never wins. `None` for an empty or all-NaN slice.
pub fn argmax(scores: &[f32]) -> Option<u32> {
    scores
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_nan())
        .fold(None, |best: Option<(usize, f32)>, (i, &s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((i, s)),
        })
        .map(|(i, _)| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_confusion_matrix() {
        // truth:     0 0 0 0 1 1 1 2 2 2
        // predicted: 0 0 0 1 1 1 0 2 2 1
        // class 0: tp 3, support 4, predicted 4 → P 3/4, R 3/4, F1 3/4
        // class 1: tp 2, support 3, predicted 4 → P 1/2, R 2/3, F1 4/7
        // class 2: tp 2, support 3, predicted 2 → P 1,   R 2/3, F1 4/5
        // class 3: absent from both → excluded from the macro average.
        let truth = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
        let pred = [0, 0, 0, 1, 1, 1, 0, 2, 2, 1];
        let c = classification(&pred, &truth, 4).unwrap();
        assert_eq!(c.n, 10);
        assert_eq!(c.accuracy, 0.7);
        assert_eq!(
            c.confusion,
            vec![
                vec![3, 1, 0, 0],
                vec![1, 2, 0, 0],
                vec![0, 1, 2, 0],
                vec![0, 0, 0, 0]
            ]
        );
        let p: Vec<f64> = c.per_class.iter().map(|m| m.precision).collect();
        let r: Vec<f64> = c.per_class.iter().map(|m| m.recall).collect();
        assert_eq!(p, [0.75, 0.5, 1.0, 0.0]);
        assert!((r[1] - 2.0 / 3.0).abs() < 1e-12 && (r[2] - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.per_class[1].f1 - 4.0 / 7.0).abs() < 1e-12);
        assert_eq!(c.macro_classes, 3);
        let want_macro = (0.75 + 4.0 / 7.0 + 0.8) / 3.0;
        assert!((c.macro_f1 - want_macro).abs() < 1e-12, "{}", c.macro_f1);
        assert!(c.accuracy_ci.contains(0.7) && c.accuracy_ci.lo > 0.3);
    }

    #[test]
    fn predicted_but_absent_class_counts_against_macro_f1() {
        let c = classification(&[0, 1], &[0, 0], 2).unwrap();
        assert_eq!(c.macro_classes, 2);
        assert_eq!(c.per_class[1].f1, 0.0);
        assert!((c.macro_f1 - (2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            classification(&[0], &[0, 1], 2),
            Err(MeasureError::LengthMismatch {
                left: 1,
                right: 2,
                ..
            })
        ));
        let err = classification(&[0, 5], &[0, 1], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "score classification predictions: label 5 at row 1 is outside 0..2"
        );
        assert!(matches!(
            classification(&[], &[], 2),
            Err(MeasureError::Empty { .. })
        ));
    }

    #[test]
    fn argmax_first_max_wins_and_nan_never_wins() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), Some(1));
        assert_eq!(argmax(&[f32::NAN, 0.3, f32::NAN, 0.9]), Some(3));
        assert_eq!(argmax(&[f32::NAN, -1.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY]), Some(0));
        assert_eq!(argmax(&[f32::NAN]), None);
        assert_eq!(argmax(&[]), None);
    }
}
