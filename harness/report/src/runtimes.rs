//! Runtimes side by side: each model file that ran on more than one runtime on a board, with the
//! device-latency ratio between them over interleaved blocks (a paired A/B), and whether their
//! scores agree, so "which runtime makes this variant worth shipping" is one table.

use gauntlet_results::{Entry, Results, RuntimeUsed};
use serde::Serialize;

use crate::fmt;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuntimeRow {
    pub board: String,
    pub model: String,
    pub baseline: String,
    pub baseline_runtime: String,
    pub baseline_p50: String,
    pub candidate: String,
    pub candidate_runtime: String,
    pub candidate_p50: String,
    /// Candidate over baseline, e.g. `0.010× [0.009, 0.011] 95% CI over 6 block pairs`.
    pub ratio: String,
    /// `98.8× faster`, `1.21× slower`, `no significant difference`, or why no verdict.
    pub reading: String,
    pub accuracy: String,
}

/// `onnxruntime 1.32.0 (cpu, 1 thread)`.
fn describe(runtime: Option<&RuntimeUsed>, fallback: &str) -> String {
    let Some(r) = runtime else {
        return fallback.to_string();
    };
    let threads = match r.threads {
        0 => "default threads".to_string(),
        1 => "1 thread".to_string(),
        n => format!("{n} threads"),
    };
    let providers = if r.providers.is_empty() {
        String::new()
    } else {
        format!("{}, ", r.providers.join(" → "))
    };
    format!(
        "{} {} ({providers}{threads})",
        r.name,
        r.version.as_deref().unwrap_or("version unknown")
    )
}

fn p50(e: &Entry) -> Option<f64> {
    e.metrics
        .as_ref()?
        .latency_device_us
        .as_ref()
        .map(|l| l.p50)
}

fn accuracy(e: &Entry) -> String {
    e.metrics
        .as_ref()
        .and_then(|m| m.accuracy)
        .map_or_else(|| "—".into(), fmt::percent)
}

pub(crate) fn runtime_rows(results: &Results) -> Vec<RuntimeRow> {
    results
        .entries
        .iter()
        .filter_map(|e| {
            let vs = e.metrics.as_ref()?.latency_ratio_vs_runtime.as_ref()?;
            let baseline = results.entries.iter().find(|b| {
                b.board == e.board && b.model == e.model && b.variant == vs.baseline_variant
            });
            let r = &vs.ratio;
            let (ratio, reading) = match &r.ci {
                Some(ci) => {
                    let reading = if !r.significant {
                        format!(
                            "no difference beyond the ±{} noise band",
                            fmt::percent(r.noise)
                        )
                    } else if r.ratio < 1.0 {
                        format!("{:.2}× faster", 1.0 / r.ratio)
                    } else {
                        format!("{:.2}× slower", r.ratio)
                    };
                    (
                        format!(
                            "{}× [{}, {}] {:.0}% CI over {} block pairs",
                            gauntlet_results::format::ratio(r.ratio),
                            gauntlet_results::format::ratio(ci.lo),
                            gauntlet_results::format::ratio(ci.hi),
                            ci.confidence * 100.0,
                            r.pairs
                        ),
                        reading,
                    )
                }
                None => (
                    format!("{}×", gauntlet_results::format::ratio(r.ratio)),
                    format!(
                        "no interval: {} block pairs, {} needed",
                        r.pairs, r.min_pairs
                    ),
                ),
            };
            Some(RuntimeRow {
                board: e.board.clone(),
                model: e.model.clone(),
                baseline: vs.baseline_variant.clone(),
                baseline_runtime: describe(
                    baseline.and_then(|b| b.runtime.as_ref()),
                    &vs.baseline_runtime,
                ),
                baseline_p50: fmt::micros(vs.baseline_p50_us),
                candidate: e.variant.clone(),
                candidate_runtime: describe(e.runtime.as_ref(), "unknown runtime"),
                candidate_p50: p50(e).map_or_else(|| "—".into(), fmt::micros),
                ratio,
                reading,
                accuracy: format!(
                    "{} vs {}",
                    accuracy(e),
                    baseline.map_or_else(|| "—".into(), accuracy)
                ),
            })
        })
        .collect()
}

/// Plain-text lines for terminals (empty when no file ran on two runtimes).
pub(crate) fn text(r: &Results) -> String {
    let rows: Vec<Vec<String>> = runtime_rows(r)
        .into_iter()
        .map(|x| {
            vec![
                format!("  {}", x.board),
                format!("{}:{}", x.model, x.candidate),
                format!("{} vs {} {}", x.candidate_p50, x.baseline, x.baseline_p50),
                x.ratio,
                x.reading,
            ]
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "\nruntimes side by side (device latency ratio over interleaved blocks)\n{}",
        crate::rows::aligned(&rows)
    )
}

/// The Markdown table (empty when no file ran on two runtimes).
pub(crate) fn markdown(r: &Results, esc: fn(&str) -> String) -> String {
    let rows = runtime_rows(r);
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n### Runtimes side by side\n\nThe same model file on two runtimes, on the same board, their blocks interleaved: the ratio is the candidate's device latency over the baseline's.\n\n| board | model | candidate | runtime | p50 | baseline | runtime | p50 | latency ratio | reading | accuracy (candidate vs baseline) |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let cells = [
            &row.board,
            &row.model,
            &row.candidate,
            &row.candidate_runtime,
            &row.candidate_p50,
            &row.baseline,
            &row.baseline_runtime,
            &row.baseline_p50,
            &row.ratio,
            &row.reading,
            &row.accuracy,
        ]
        .map(|c| esc(c));
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}
