//! A build's outputs → its task figures (anomaly detection, regression).

use gauntlet_measure::{
    BootstrapOptions, Curve, Timeline, anomaly_scores, calibrated_threshold, events, histogram,
    output_agreement, regression_scores,
};
use gauntlet_spec::{AnomalyScore, AnomalyTask, AnomalyThreshold, Task};

use gauntlet_results::Source;
use gauntlet_results::*;

use crate::{BuildRecord, Plan};

/// Points kept of the predicted-vs-actual plot, and bins of the residual histogram.
const SCATTER_POINTS: usize = 400;
const RESIDUAL_BINS: usize = 40;

/// The task figures of `build`, for anomaly and regression models with scored windows.
pub(crate) fn task_figures(
    plan: &Plan,
    build: &BuildRecord,
    reference: Option<&BuildRecord>,
    source: Source,
) -> Option<TaskFigures> {
    let model = plan
        .scenario
        .models
        .iter()
        .find(|m| m.name == build.model)?;
    let windows = &plan.windows;
    let rows = windows.rows;
    let stride = plan.scenario.dataset.window.stride.max(1);
    let options = BootstrapOptions {
        seed: plan.scenario.run.seed,
        // Windows overlapping in rows share a weight (see `BootstrapOptions::block`).
        block: rows.div_ceil(stride),
        ..BootstrapOptions::default()
    };
    let reference = reference.filter(|r| !build.reference && r.windows_scored() > 0);
    let n = build
        .windows_scored()
        .min(reference.map_or(usize::MAX, BuildRecord::windows_scored))
        .min(windows.len());
    if n == 0 {
        return None;
    }
    match &model.task {
        Task::Classification => None,
        Task::Anomaly(task) => {
            let scores = scores(plan, build, task, n);
            let (threshold, rule, calibration_windows) = threshold(plan, task, &scores)?;
            let anomalous: Vec<bool> = windows.labels[..n].iter().map(|&l| l == 1).collect();
            let alarms: Vec<bool> = scores.iter().map(|&s| s > threshold).collect();
            let recording: Vec<usize> = windows.origins[..n].iter().map(|o| o.recording).collect();
            let timeline = Timeline {
                anomalous: &anomalous,
                alarms: &alarms,
                recording: &recording,
                timestamps_s: windows.timestamps_s.as_ref().map(|t| &t[..n]),
            };
            let agreement = reference.and_then(|r| {
                let theirs = self::scores(plan, r, task, n);
                let their_threshold = self::threshold(plan, task, &theirs)?.0;
                let thresholds = Some((threshold, their_threshold));
                agreement_with(r, &scores, &theirs, thresholds, None, &options)
            });
            Some(TaskFigures {
                task: "anomaly".into(),
                anomaly: Some(AnomalyFigures {
                    score: match task.score {
                        AnomalyScore::Output => "output",
                        AnomalyScore::ReconstructionMse => "mse",
                        AnomalyScore::ReconstructionMae => "mae",
                    }
                    .into(),
                    threshold,
                    threshold_rule: rule,
                    calibration_windows,
                    scores: anomaly_scores(&scores, &anomalous, threshold, &options).ok()?,
                    events: events(&timeline, &options).ok()?,
                }),
                regression: None,
                agreement,
                source,
            })
        }
        Task::Regression => {
            let predicted = first_outputs(build, n);
            let target = &windows.targets.as_ref()?[..n];
            let persistence = windows.last_values.as_ref().map(|v| &v[..n]);
            let scores = regression_scores(&predicted, target, persistence, &options).ok()?;
            let residuals: Vec<f64> = predicted.iter().zip(target).map(|(p, t)| p - t).collect();
            let step = n.div_ceil(SCATTER_POINTS).max(1);
            let agreement = reference.and_then(|r| {
                let theirs = first_outputs(r, n);
                agreement_with(r, &predicted, &theirs, None, Some(target), &options)
            });
            Some(TaskFigures {
                task: "regression".into(),
                anomaly: None,
                regression: Some(RegressionFigures {
                    horizon: plan
                        .scenario
                        .dataset
                        .target
                        .as_ref()
                        .map_or(0, |t| t.horizon),
                    baseline: "persistence".into(),
                    worse_than_baseline: scores
                        .baseline
                        .as_ref()
                        .is_some_and(|b| scores.rmse.value > b.rmse),
                    dropped_past_end: windows.dropped_past_end,
                    predicted_vs_actual: Curve {
                        x: target.iter().step_by(step).copied().collect(),
                        y: predicted.iter().step_by(step).copied().collect(),
                    },
                    residual_histogram: histogram(&residuals, RESIDUAL_BINS),
                    scores,
                }),
                agreement,
                source,
            })
        }
    }
}

/// The first output value of each of the first `n` windows.
fn first_outputs(build: &BuildRecord, n: usize) -> Vec<f64> {
    build
        .outputs
        .chunks_exact(build.output_len.max(1))
        .take(n)
        .map(|o| f64::from(o[0]))
        .collect()
}

/// Each window's anomaly score: the output itself, or the reconstruction's error against the
/// window (both flat in the model's input layout).
pub fn scores(plan: &Plan, build: &BuildRecord, task: &AnomalyTask, n: usize) -> Vec<f64> {
    let error = |power: fn(f64) -> f64| {
        build
            .outputs
            .chunks_exact(build.output_len.max(1))
            .take(n)
            .enumerate()
            .map(|(i, out)| {
                let input = plan.windows.window(i);
                out.iter()
                    .zip(input)
                    .map(|(o, x)| power(f64::from(*o) - f64::from(*x)))
                    .sum::<f64>()
                    / out.len() as f64
            })
            .collect::<Vec<f64>>()
    };
    match task.score {
        AnomalyScore::Output => first_outputs(build, n),
        AnomalyScore::ReconstructionMse => error(|d| d * d),
        AnomalyScore::ReconstructionMae => error(f64::abs),
    }
}

/// The alarm threshold, how it was set, and on how many normal windows.
fn threshold(
    plan: &Plan,
    task: &AnomalyTask,
    scores: &[f64],
) -> Option<(f64, String, Option<usize>)> {
    match &task.threshold {
        AnomalyThreshold::Given(t) => Some((*t, "given".into(), None)),
        AnomalyThreshold::Calibrated {
            quantile,
            recordings,
            files,
        } => {
            let w = &plan.windows;
            let normal: Vec<f64> = scores
                .iter()
                .enumerate()
                .filter(|&(i, _)| w.labels[i] == 0 && recordings.contains(&w.origins[i].recording))
                .map(|(_, &s)| s)
                .collect();
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            let t = calibrated_threshold(&normal, *quantile).ok()?;
            Some((
                t,
                format!(
                    "calibrated: the {quantile} quantile of this build's scores on the {} normal windows of {}",
                    normal.len(),
                    names.join(", ")
                ),
                Some(normal.len()),
            ))
        }
    }
}

/// This build's outputs against those of `reference`, labelled with the reference's variant.
fn agreement_with(
    reference: &BuildRecord,
    ours: &[f64],
    theirs: &[f64],
    thresholds: Option<(f64, f64)>,
    target: Option<&[f64]>,
    options: &BootstrapOptions,
) -> Option<OutputAgreementFigures> {
    let agreement = output_agreement(ours, theirs, thresholds, target, options).ok()?;
    Some(OutputAgreementFigures {
        reference_variant: reference.variant.clone(),
        agreement,
    })
}
