//! The figures of anomaly-detection and regression models in `results.json` (`metrics.task`).

use gauntlet_measure::{AnomalyScores, Bin, Curve, EventScores, OutputAgreement, RegressionScores};
use serde::{Deserialize, Serialize};

use crate::schema::Source;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFigures {
    /// `anomaly` or `regression`.
    pub task: String,
    pub anomaly: Option<AnomalyFigures>,
    pub regression: Option<RegressionFigures>,
    /// Against the reference build's outputs on the same windows (not on the reference itself).
    pub agreement: Option<OutputAgreementFigures>,
    /// Outputs come from the execution: `emulated` on an emulated board.
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyFigures {
    /// `output` (the model's score), `mse` or `mae` (of its reconstruction against the input).
    pub score: String,
    /// The alarm threshold used: an alarm is a score strictly above it.
    pub threshold: f64,
    /// Where it came from: `given`, or how it was calibrated on this build's own scores.
    pub threshold_rule: String,
    /// Normal windows the threshold was calibrated on.
    pub calibration_windows: Option<usize>,
    pub scores: AnomalyScores,
    pub events: EventScores,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionFigures {
    /// Rows between a window's last row and its target.
    pub horizon: usize,
    /// The naive baseline `scores.baseline` and `scores.skill` refer to: `persistence` (the
    /// target column's value at the window's last row).
    pub baseline: String,
    /// Whether the model's RMSE is above the baseline's: "worse than doing nothing".
    pub worse_than_baseline: bool,
    /// Windows dropped because their target lay past the end of their file.
    pub dropped_past_end: usize,
    pub scores: RegressionScores,
    /// Target (x) → prediction (y), at most 400 evenly spaced windows, for a plot.
    pub predicted_vs_actual: Curve,
    /// Prediction − target.
    pub residual_histogram: Vec<Bin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputAgreementFigures {
    pub reference_variant: String,
    #[serde(flatten)]
    pub agreement: OutputAgreement,
}
