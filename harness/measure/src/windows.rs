use serde::{Deserialize, Serialize};

use crate::error::MeasureError;
use crate::quantile::quantile_sorted;

/// Median of per-window results (MLPerf Tiny reports the median of 5 windows). `None` when there are no
/// values or any is not finite. An even count averages the two middle values.
pub fn median_of_windows(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    Some(quantile_sorted(&sorted, 0.5))
}

/// The repeated-windows rule: `windows` timed windows of at least `min_window_s` seconds each.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowRule {
    pub windows: usize,
    pub min_window_s: f64,
    /// Factor on the planned window length, so a calibration estimate that runs slightly fast rarely
    /// leaves a window short.
    pub margin: f64,
}

impl Default for WindowRule {
    /// MLPerf Tiny: 5 windows of ≥ 10 s, planned 10% long.
    fn default() -> Self {
        Self {
            windows: 5,
            min_window_s: 10.0,
            margin: 1.1,
        }
    }
}

/// One timed window: `inferences` run back to back in `duration_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimedWindow {
    pub duration_s: f64,
    pub inferences: u64,
}

/// What a set of windows amounts to under a [`WindowRule`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowsOutcome {
    /// Windows seen.
    pub windows: usize,
    /// Indices of windows shorter than the rule's minimum.
    pub short: Vec<usize>,
    /// Enough windows, none short.
    pub satisfied: bool,
    /// Median of per-window inferences per second.
    pub median_throughput: Option<f64>,
    /// Median of per-window mean seconds per inference.
    pub median_latency_s: Option<f64>,
}

impl WindowRule {
    /// How many inferences to request per window (e.g. MLPerf Tiny's `infer N`) so a window lasts at
    /// least `min_window_s × margin`, given a calibration estimate of seconds per inference.
    pub fn inferences_per_window(&self, per_inference_s: f64) -> Result<u64, MeasureError> {
        if !(per_inference_s.is_finite() && per_inference_s > 0.0) {
            return Err(MeasureError::InvalidOption {
                what: "plan timed windows",
                field: "per_inference_s",
                reason: format!("is {per_inference_s}, must be a positive number of seconds"),
            });
        }
        Ok(((self.min_window_s * self.margin / per_inference_s).ceil() as u64).max(1))
    }

    /// Checks the windows against the rule and takes the medians. Windows are used even when short so a
    /// report can still show the figure, flagged as not satisfying the rule.
    pub fn evaluate(&self, windows: &[TimedWindow]) -> WindowsOutcome {
        let short: Vec<usize> = windows
            .iter()
            .enumerate()
            .filter(|(_, w)| w.duration_s < self.min_window_s)
            .map(|(i, _)| i)
            .collect();
        let per_window = |f: fn(&TimedWindow) -> f64| {
            median_of_windows(&windows.iter().map(f).collect::<Vec<_>>())
        };
        WindowsOutcome {
            windows: windows.len(),
            satisfied: windows.len() >= self.windows && short.is_empty(),
            short,
            median_throughput: per_window(|w| w.inferences as f64 / w.duration_s),
            median_latency_s: per_window(|w| w.duration_s / w.inferences as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median_of_windows(&[5.0, 1.0, 3.0, 9.0, 2.0]), Some(3.0));
        assert_eq!(median_of_windows(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median_of_windows(&[]), None);
        assert_eq!(median_of_windows(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn plans_windows_long_enough() {
        let rule = WindowRule::default();
        // 11 s planned at 3 ms each → 3,667 inferences (3,666.67 rounded up).
        assert_eq!(rule.inferences_per_window(0.003).unwrap(), 3_667);
        assert_eq!(rule.inferences_per_window(60.0).unwrap(), 1);
        assert!(rule.inferences_per_window(0.0).is_err());
        assert!(rule.inferences_per_window(f64::NAN).is_err());
    }

    #[test]
    fn evaluates_five_windows() {
        let rule = WindowRule::default();
        let w = |duration_s, inferences| TimedWindow {
            duration_s,
            inferences,
        };
        let ok = [
            w(10.0, 1000),
            w(10.5, 1000),
            w(11.0, 1000),
            w(12.0, 1000),
            w(10.2, 1000),
        ];
        let out = rule.evaluate(&ok);
        assert!(out.satisfied && out.short.is_empty());
        // Throughputs 100, 95.2, 90.9, 83.3, 98.0 → median 95.24; latencies' median is 10.5 ms.
        assert!((out.median_throughput.unwrap() - 1000.0 / 10.5).abs() < 1e-9);
        assert!((out.median_latency_s.unwrap() - 0.0105).abs() < 1e-12);

        let out = rule.evaluate(&[w(10.0, 1000), w(9.0, 1000), w(10.0, 1000), w(10.0, 1000)]);
        assert!(!out.satisfied);
        assert_eq!(out.short, [1]);
        assert_eq!(out.windows, 4);
    }
}
