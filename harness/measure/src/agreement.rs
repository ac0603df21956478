use serde::{Deserialize, Serialize};

use crate::classify::argmax;
use crate::error::MeasureError;

/// How closely two variants' raw outputs agree on the same input windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Windows compared.
    pub n: usize,
    /// Fraction of windows whose argmax labels agree. A window where either side has no argmax (all NaN)
    /// counts as a disagreement.
    pub label: f64,
    /// Largest |a − b| over score positions where both are finite.
    pub max_abs_diff: f64,
    /// Mean |a − b| over the same positions (0 when there are none).
    pub mean_abs_diff: f64,
    /// Score positions left out of the differences because either side was NaN or infinite.
    pub non_finite: usize,
}

/// Compares two flat score buffers laid out window after window, `scores_per_window` scores each. Fails on
/// different lengths, a zero window width, a length that is not a whole number of windows, or no windows.
pub fn agreement(
    a_scores: &[f32],
    b_scores: &[f32],
    scores_per_window: usize,
) -> Result<Agreement, MeasureError> {
    const WHAT: &str = "compare variant outputs";
    if a_scores.len() != b_scores.len() {
        return Err(MeasureError::LengthMismatch {
            what: WHAT,
            left: a_scores.len(),
            right: b_scores.len(),
        });
    }
    if scores_per_window == 0 || !a_scores.len().is_multiple_of(scores_per_window) {
        return Err(MeasureError::InvalidOption {
            what: WHAT,
            field: "scores_per_window",
            reason: format!(
                "is {scores_per_window}, which does not divide the {} scores into whole windows",
                a_scores.len()
            ),
        });
    }
    if a_scores.is_empty() {
        return Err(MeasureError::Empty {
            what: WHAT,
            detail: String::new(),
        });
    }

    let windows = a_scores
        .chunks_exact(scores_per_window)
        .zip(b_scores.chunks_exact(scores_per_window));
    let n = a_scores.len() / scores_per_window;
    let agreeing = windows
        .filter(|(a, b)| matches!((argmax(a), argmax(b)), (Some(x), Some(y)) if x == y))
        .count();
    let (mut max_abs_diff, mut sum, mut finite) = (0.0f64, 0.0f64, 0usize);
    for (&a, &b) in a_scores.iter().zip(b_scores) {
        if a.is_finite() && b.is_finite() {
            let d = f64::from((a - b).abs());
            max_abs_diff = max_abs_diff.max(d);
            sum += d;
            finite += 1;
        }
    }
    Ok(Agreement {
        n,
        label: agreeing as f64 / n as f64,
        max_abs_diff,
        mean_abs_diff: if finite == 0 {
            0.0
        } else {
            sum / finite as f64
        },
        non_finite: a_scores.len() - finite,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructed_scores() {
        // Window 0 agrees (label 1), window 1 flips (0 vs 2), window 2 agrees (label 2), window 3 has a NaN
        // on b that still leaves label 0 on both sides.
        let a = [0.1, 0.8, 0.1, 0.5, 0.3, 0.2, 0.0, 0.0, 1.0, 0.9, 0.05, 0.05];
        let b = [
            0.2,
            0.7,
            0.1,
            0.3,
            0.3,
            0.4,
            0.0,
            0.0,
            1.0,
            0.6,
            f32::NAN,
            0.1,
        ];
        let r = agreement(&a, &b, 3).unwrap();
        assert_eq!(r.n, 4);
        assert_eq!(r.label, 0.75);
        assert_eq!(r.non_finite, 1);
        assert!((r.max_abs_diff - 0.3).abs() < 1e-6, "{}", r.max_abs_diff);
        let want_mean = (0.1 + 0.1 + 0.0 + 0.2 + 0.0 + 0.2 + 0.0 + 0.0 + 0.0 + 0.3 + 0.05) / 11.0;
        assert!(
            (r.mean_abs_diff - want_mean).abs() < 1e-6,
            "{}",
            r.mean_abs_diff
        );
    }

    #[test]
    fn identical_outputs_agree_fully_and_all_nan_windows_do_not() {
        let a = [0.2, 0.8, 0.6, 0.4];
        let r = agreement(&a, &a, 2).unwrap();
        assert_eq!((r.label, r.max_abs_diff, r.mean_abs_diff), (1.0, 0.0, 0.0));
        let nan = [f32::NAN, f32::NAN];
        assert_eq!(agreement(&nan, &nan, 2).unwrap().label, 0.0);
    }

    #[test]
    fn mismatched_or_ragged_input_is_an_error() {
        assert!(matches!(
            agreement(&[0.0; 6], &[0.0; 4], 2),
            Err(MeasureError::LengthMismatch {
                left: 6,
                right: 4,
                ..
            })
        ));
        assert!(matches!(
            agreement(&[0.0; 6], &[0.0; 6], 4),
            Err(MeasureError::InvalidOption {
                field: "scores_per_window",
                ..
            })
        ));
        assert!(agreement(&[0.0; 6], &[0.0; 6], 0).is_err());
        assert!(matches!(
            agreement(&[], &[], 3),
            Err(MeasureError::Empty { .. })
        ));
    }
}
