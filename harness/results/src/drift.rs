//! `drift.json` (schema `gauntlet.drift`, version 1): what `gauntlet drift` found when it replayed
//! fresh recordings through the champion build on a board of its class.

use gauntlet_measure::ConfidenceInterval;
use gauntlet_measure::drift::{ChiSquare, Comparison, PairedBin};
use serde::{Deserialize, Serialize};

use crate::Metric;

use crate::{FileRef, GateResult, Harness, Source, Verdict};

pub const DRIFT_SCHEMA: &str = "gauntlet.drift";
pub const DRIFT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftResults {
    pub schema: String,
    pub version: u32,
    pub drift_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub harness: Harness,
    pub scenario: FileRef,
    pub model: String,
    pub board: DriftBoard,
    /// `measured` on a real board (this machine included), `emulated` on an emulated one: every
    /// output-derived figure here (scores, class mix, performance) comes from that board.
    pub source: Source,
    pub champion: DriftChampion,
    pub reference: DriftData,
    pub new: DriftData,
    /// One row per input feature (the window's newest reading of each column), in dataset order.
    pub input: Vec<FeatureRow>,
    pub output: OutputDrift,
    /// The task's metrics on the new recordings beside the champion's recorded figures; empty
    /// when the recordings carry no labels.
    pub performance: Vec<PerformanceRow>,
    pub gates: Vec<DriftGateResult>,
    pub verdict: DriftVerdict,
    /// Significance level of the tests, after Holm's correction across features.
    pub alpha: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftBoard {
    pub id: String,
    pub class: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftChampion {
    /// The promotion ledger's row for this champion, which the verdict requalifies.
    pub promotion_id: i64,
    pub run_id: String,
    pub variant: String,
    pub model_sha256: String,
    pub promoted_at: Option<String>,
    pub promoted_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftData {
    /// `held-out` (the scenario's own windows), `files` (a named reference set) or `recordings`.
    pub kind: String,
    pub windows: usize,
    pub recordings: Vec<RecordingRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingRef {
    pub path: String,
    pub sha256: String,
    pub windows: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRow {
    pub feature: String,
    #[serde(flatten)]
    pub comparison: Comparison,
    /// The KS p-value after Holm's correction across all features.
    pub p_adjusted: f64,
    pub histogram: Vec<PairedBin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputDrift {
    /// What the score is: `top-class probability`, `anomaly score` or `prediction`.
    pub score: String,
    pub comparison: Comparison,
    pub histogram: Vec<PairedBin>,
    pub class_mix: Option<ClassMix>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMix {
    pub classes: Vec<String>,
    pub reference: Vec<u64>,
    pub new: Vec<u64>,
    pub test: ChiSquare,
    /// The largest |share_new − share_ref| over classes.
    pub largest_share_change: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceRow {
    pub metric: Metric,
    pub new: f64,
    pub new_ci: Option<ConfidenceInterval>,
    pub champion: f64,
    pub champion_ci: Option<ConfidenceInterval>,
    /// new − champion.
    pub difference: f64,
    /// MOVER interval of the difference (Zou & Donner 2008) from both intervals; the new
    /// figure's interval shifted by the champion's value when the champion has none.
    pub difference_ci: Option<ConfidenceInterval>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftGateResult {
    /// As written, e.g. `psi at_most 0.2`.
    pub gate: String,
    /// The feature it judged, `score`, `class mix`, or the task metric.
    pub subject: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub verdict: Verdict,
    pub evidence: String,
    /// Task gates: the run gate's own result.
    pub task: Option<GateResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftVerdict {
    /// Every drift gate passed: the champion still qualifies on the new recordings.
    Requalified,
    /// A drift gate failed.
    Drifted,
    /// No gate failed, but at least one could not decide.
    Inconclusive,
}

impl DriftVerdict {
    pub fn name(self) -> &'static str {
        match self {
            Self::Requalified => "requalified",
            Self::Drifted => "drifted",
            Self::Inconclusive => "inconclusive",
        }
    }

    /// FAIL anywhere is drift; otherwise INCONCLUSIVE anywhere cannot requalify.
    pub fn of(gates: &[DriftGateResult]) -> Self {
        if gates.iter().any(|g| g.verdict == Verdict::Fail) {
            Self::Drifted
        } else if gates.iter().any(|g| g.verdict == Verdict::Inconclusive) {
            Self::Inconclusive
        } else {
            Self::Requalified
        }
    }
}
