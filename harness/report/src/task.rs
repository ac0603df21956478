//! The anomaly-detection and regression sections: task figures per build, the per-segment detection
//! table, and (HTML) ROC and PR curves, predicted against actual, and the residual histogram.

use gauntlet_measure::Estimate;
use gauntlet_results::{Entry, Metric, Results, TaskFigures, format};

use crate::fmt;
use crate::svg;

/// `0.553 [0.541, 0.566]`, `92.5% [90.1, 94.2]`: in the unit the gate on `metric` writes it.
fn est(metric: Metric, e: &Estimate) -> String {
    format::metric_with_ci(metric, e.value, e.ci.as_ref())
}

fn opt(metric: Metric, e: Option<&Estimate>) -> String {
    e.map_or_else(|| "—".into(), |e| est(metric, e))
}

fn marked(text: String, t: &TaskFigures) -> String {
    match t.source {
        gauntlet_results::Source::Measured => text,
        s => format!("{text} ({})", fmt::source(s)),
    }
}

fn tasks<'r>(r: &'r Results, task: &str) -> Vec<(&'r Entry, &'r TaskFigures)> {
    r.entries
        .iter()
        .filter_map(|e| Some((e, e.metrics.as_ref()?.task.as_ref()?)))
        .filter(|(_, t)| t.task == task)
        .collect()
}

/// One sentence per forecaster that does worse than its naive baseline.
pub(crate) fn findings(r: &Results) -> Vec<String> {
    tasks(r, "regression")
        .into_iter()
        .filter_map(|(e, t)| {
            let g = t.regression.as_ref()?;
            let b = g.scores.baseline.as_ref()?;
            g.worse_than_baseline.then(|| {
                format!(
                    "{} {} on {} is worse than {} (doing nothing): RMSE {} vs {}, skill {}",
                    e.model,
                    e.variant,
                    e.board,
                    g.baseline,
                    format::metric(Metric::Rmse, g.scores.rmse.value),
                    format::metric(Metric::Rmse, b.rmse),
                    opt(Metric::Skill, g.scores.skill.as_ref())
                )
            })
        })
        .collect()
}

/// A table row: the build, then its `cells` (already escaped).
fn row(e: &Entry, cells: &[String], esc: fn(&str) -> String) -> String {
    format!(
        "| {} | {} | {} | {} |\n",
        esc(&e.board),
        esc(&e.model),
        esc(&e.variant),
        cells.join(" | ")
    )
}

/// Markdown tables of the task figures (empty when the run has no such model).
pub(crate) fn markdown(r: &Results, esc: fn(&str) -> String) -> String {
    let mut out = String::new();
    let anomaly = tasks(r, "anomaly");
    if !anomaly.is_empty() {
        out.push_str("\n### Anomaly detection\n\n| board | model | variant | ROC-AUC | PR-AUC | F1 at threshold | precision | recall | threshold | segments detected | mean delay (s) | false alarms / h | Spearman vs reference | same decisions |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (e, t) in &anomaly {
            let Some(a) = &t.anomaly else { continue };
            let g = t.agreement.as_ref().map(|g| &g.agreement);
            let cells = [
                est(Metric::RocAuc, &a.scores.roc_auc),
                est(Metric::PrAuc, &a.scores.pr_auc),
                est(Metric::F1AtThreshold, &a.scores.f1),
                est(Metric::PrecisionAtThreshold, &a.scores.precision),
                est(Metric::RecallAtThreshold, &a.scores.recall),
                // The raw score a deployment would configure, so in full rather than rounded.
                format!("{:.6} ({})", a.threshold, a.threshold_rule),
                opt(Metric::EventsDetected, a.events.detected_share.as_ref()),
                opt(Metric::DetectionDelay, a.events.mean_delay_s.as_ref()),
                opt(
                    Metric::FalseAlarmsPerHour,
                    a.events.false_alarms_per_hour.as_ref(),
                ),
                opt(Metric::AgreementSpearman, g.map(|g| &g.spearman)),
                opt(
                    Metric::AgreementDecisions,
                    g.and_then(|g| g.same_decisions.as_ref()),
                ),
            ]
            .map(|c| esc(&marked(c, t)));
            out.push_str(&row(e, &cells, esc));
        }
        for (e, t) in anomaly.iter().filter(|(e, _)| e.reference) {
            let Some(a) = &t.anomaly else { continue };
            out.push_str(&format!(
                "\n#### Anomaly segments: {} {} on {}\n\n| recording | first window | windows | start (s) | detected | delay (s) |\n|---|---|---|---|---|---|\n",
                esc(&e.model),
                esc(&e.variant),
                esc(&e.board)
            ));
            for s in &a.events.segments {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    s.recording,
                    s.first_window,
                    s.windows,
                    s.start_s.map_or("—".into(), |t| format!("{t:.0}")),
                    if s.detected { "yes" } else { "no" },
                    s.delay_s.map_or("—".into(), |d| format!("{d:.0}"))
                ));
            }
        }
    }
    let regression = tasks(r, "regression");
    if !regression.is_empty() {
        out.push_str("\n### Regression\n\n| board | model | variant | RMSE | MAE | R² | MAPE | max abs error | baseline RMSE | skill vs baseline | RMSE change vs reference |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (e, t) in &regression {
            let Some(g) = &t.regression else { continue };
            let s = &g.scores;
            let cells = [
                est(Metric::Rmse, &s.rmse),
                est(Metric::Mae, &s.mae),
                est(Metric::R2, &s.r2),
                s.mape.as_ref().map_or_else(
                    || s.mape_skipped.clone().unwrap_or_default(),
                    |m| est(Metric::Mape, m),
                ),
                est(Metric::MaxAbsError, &s.max_abs_error),
                s.baseline.as_ref().map_or("—".into(), |b| {
                    format!("{} ({})", format::metric(Metric::Rmse, b.rmse), g.baseline)
                }),
                opt(Metric::Skill, s.skill.as_ref()),
                opt(
                    Metric::AgreementRmseChange,
                    t.agreement
                        .as_ref()
                        .and_then(|a| a.agreement.rmse_change.as_ref()),
                ),
            ]
            .map(|c| esc(&marked(c, t)));
            out.push_str(&row(e, &cells, esc));
        }
    }
    for f in findings(r) {
        out.push_str(&format!("\n> **Finding**: {}.\n", esc(&f)));
    }
    out
}

/// The task section of the HTML report: the Markdown tables' figures as charts per build.
pub(crate) fn charts(r: &Results) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (e, t) in tasks(r, "anomaly")
        .into_iter()
        .chain(tasks(r, "regression"))
    {
        let name = format!("{} {} on {}", e.model, e.variant, e.board);
        let mut svgs = Vec::new();
        if let Some(a) = &t.anomaly {
            let roc: Vec<(f64, f64)> = a
                .scores
                .roc_curve
                .x
                .iter()
                .copied()
                .zip(a.scores.roc_curve.y.iter().copied())
                .collect();
            let pr: Vec<(f64, f64)> = a
                .scores
                .pr_curve
                .x
                .iter()
                .copied()
                .zip(a.scores.pr_curve.y.iter().copied())
                .collect();
            svgs.push(svg::line(
                &format!(
                    "ROC, AUC {}",
                    format::metric(Metric::RocAuc, a.scores.roc_auc.value)
                ),
                ("false-positive rate", "true-positive rate"),
                &roc,
                ((0.0, 1.0), (0.0, 1.0)),
                &[],
            ));
            svgs.push(svg::line(
                &format!(
                    "precision–recall, AP {}",
                    format::metric(Metric::PrAuc, a.scores.pr_auc.value)
                ),
                ("recall", "precision"),
                &pr,
                ((0.0, 1.0), (0.0, 1.0)),
                &[],
            ));
        }
        if let Some(g) = &t.regression {
            let points: Vec<(f64, f64)> = g
                .predicted_vs_actual
                .x
                .iter()
                .copied()
                .zip(g.predicted_vs_actual.y.iter().copied())
                .collect();
            svgs.push(svg::scatter_vs_diagonal(
                &format!(
                    "predicted vs actual, RMSE {}",
                    format::metric(Metric::Rmse, g.scores.rmse.value)
                ),
                ("actual", "predicted"),
                &points,
            ));
            svgs.push(svg::histogram(
                "residuals (predicted − actual)",
                "residual",
                &g.residual_histogram,
                &[],
            ));
        }
        out.push((marked(name, t), svgs));
    }
    out
}
