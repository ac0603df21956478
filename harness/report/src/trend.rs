//! This build against the last runs of its scenario on its board class: a small table and an
//! inline SVG sparkline per build, for the HTML report. The history comes from the store (the
//! caller reads it); this run's own figure comes from its results, so the trend shows even when
//! the store has not recorded the run yet.

use gauntlet_results::{Metric, Results, format};
use serde::Serialize;

use crate::fmt::xml;

/// The metric a trend follows: the device latency p90, as `gauntlet trend` shows by default.
pub const TREND_METRIC: Metric = Metric::LatencyP90;

/// Earlier runs of one build on one board, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub model: String,
    pub variant: String,
    pub board: String,
    pub board_class: String,
    pub history: Vec<TrendRun>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrendRun {
    pub run_id: String,
    pub started_at: String,
    /// [`TREND_METRIC`] in that run.
    pub value: f64,
}

#[derive(Serialize)]
pub(crate) struct TrendView {
    title: String,
    sparkline: String,
    rows: Vec<TrendRow>,
}

#[derive(Serialize)]
struct TrendRow {
    run_id: String,
    started_at: String,
    value: String,
    current: bool,
}

/// One view per trend with history whose build this run measured, in the order given.
pub(crate) fn views(results: &Results, trends: &[Trend]) -> Vec<TrendView> {
    trends
        .iter()
        .filter(|t| !t.history.is_empty())
        .filter_map(|t| {
            let entry = results
                .entries
                .iter()
                .find(|e| e.board == t.board && e.model == t.model && e.variant == t.variant)?;
            let now = entry.metrics.as_ref()?.latency_device_us.as_ref()?.p90;
            let mut rows: Vec<TrendRow> = t
                .history
                .iter()
                .map(|h| TrendRow {
                    run_id: h.run_id.clone(),
                    started_at: h.started_at.clone(),
                    value: format::metric(TREND_METRIC, h.value),
                    current: false,
                })
                .collect();
            rows.push(TrendRow {
                run_id: results.run_id.clone(),
                started_at: results.started_at.clone(),
                value: format::metric(TREND_METRIC, now),
                current: true,
            });
            let values: Vec<f64> = t.history.iter().map(|h| h.value).chain([now]).collect();
            Some(TrendView {
                title: format!(
                    "{}:{} on `{}` ({}), {}",
                    t.model,
                    t.variant,
                    t.board,
                    t.board_class,
                    TREND_METRIC.name()
                ),
                sparkline: sparkline(
                    &values,
                    &format!("{} of the last runs", TREND_METRIC.name()),
                ),
                rows,
            })
        })
        .collect()
}

const WIDTH: f64 = 160.0;
const HEIGHT: f64 = 32.0;
const PAD: f64 = 3.0;

/// A small line through `values`, oldest at the left; the last (this run) is a dot. A flat series
/// is drawn across the middle.
fn sparkline(values: &[f64], title: &str) -> String {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = hi - lo;
    let step = (WIDTH - 2.0 * PAD) / (values.len().max(2) - 1) as f64;
    let point = |i: usize, v: f64| {
        let y = if span > 0.0 {
            HEIGHT - PAD - (v - lo) / span * (HEIGHT - 2.0 * PAD)
        } else {
            HEIGHT / 2.0
        };
        (PAD + i as f64 * step, y)
    };
    let path: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (x, y) = point(i, v);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let (cx, cy) = point(values.len() - 1, values[values.len() - 1]);
    format!(
        r#"<svg class="sparkline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"><title>{}</title><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/><circle class="current" cx="{cx:.1}" cy="{cy:.1}" r="2.5"/></svg>"#,
        xml(title),
        path.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sparkline_runs_oldest_to_newest_with_this_run_as_the_dot() {
        let svg = sparkline(&[10.0, 20.0, 15.0], "t");
        assert!(
            svg.contains(r#"points="3.0,29.0 80.0,3.0 157.0,16.0""#),
            "{svg}"
        );
        assert!(svg.contains(r#"cx="157.0" cy="16.0""#), "{svg}");
        // Flat: across the middle, not a division by zero.
        let flat = sparkline(&[5.0, 5.0], "t");
        assert!(flat.contains(r#"points="3.0,16.0 157.0,16.0""#), "{flat}");
    }
}
