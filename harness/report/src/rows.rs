//! Table rows shared by the text formats and the HTML view: each figure formatted once, with its
//! interval and, when it was not measured on real hardware, its source.

use gauntlet_results::{Entry, GateResult, Latency, Results, Source};
use serde::Serialize;

use crate::fmt;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cell {
    pub text: String,
    pub ci: Option<String>,
    /// `emulated` or `simulated`; `None` for measured figures and for absent ones.
    pub source: Option<&'static str>,
    /// Why the figure should be read with care (e.g. too few samples for the percentile).
    pub note: Option<String>,
}

impl Cell {
    fn new(text: String, source: Option<Source>) -> Self {
        Cell {
            text,
            ci: None,
            source: source.filter(|s| *s != Source::Measured).map(fmt::source),
            note: None,
        }
    }

    /// A figure with no interval, source or note.
    pub fn bare(text: String) -> Self {
        Cell::new(text, None)
    }

    fn absent() -> Self {
        Cell::new("—".to_string(), None)
    }

    fn with_ci(mut self, ci: Option<String>) -> Self {
        self.ci = ci;
        self
    }

    /// The figure and its source, without the interval, for narrow tables.
    pub fn short(&self) -> String {
        match self.source {
            Some(src) => format!("{} ({src})", self.text),
            None => self.text.clone(),
        }
    }

    /// The figure, its interval and its source, on one line.
    pub fn plain(&self) -> String {
        let mut s = self.text.clone();
        if let Some(ci) = &self.ci {
            s.push_str(&format!(" {ci}"));
        }
        if let Some(src) = self.source {
            s.push_str(&format!(" ({src})"));
        }
        if let Some(note) = &self.note {
            s.push_str(&format!(" [{note}]"));
        }
        s
    }
}

/// One row of the quantization comparison: a model build on a board.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VariantRow {
    pub board: String,
    pub board_class: String,
    pub model: String,
    pub variant: String,
    pub reference: bool,
    pub status: &'static str,
    pub accuracy: Cell,
    pub agreement: Cell,
    pub p50: Cell,
    pub p99: Cell,
    pub energy: Cell,
    pub throughput: Cell,
    pub peak_ram: Cell,
    pub size: Cell,
}

pub(crate) fn variant_rows(results: &Results) -> Vec<VariantRow> {
    results
        .entries
        .iter()
        .map(|e| variant_row(results, e))
        .collect()
}

fn variant_row(results: &Results, e: &Entry) -> VariantRow {
    let m = e.metrics.as_ref();
    let source = |key: &str| m.and_then(|m| m.sources.get(key).copied());
    let accuracy = m.and_then(|m| m.accuracy).map_or_else(Cell::absent, |a| {
        Cell::new(fmt::percent(a), source("accuracy")).with_ci(
            m.and_then(|m| m.accuracy_ci.as_ref())
                .map(|ci| fmt::interval(fmt::Quantity::Fraction, a, ci)),
        )
    });
    let agreement = match m.and_then(|m| m.agreement.as_ref()) {
        Some(a) => Cell::new(
            format!("{} vs {}", fmt::percent(a.label), a.reference_variant),
            Some(a.source),
        ),
        None if e.reference => Cell::new("reference".to_string(), None),
        None => Cell::absent(),
    };
    let latency = m.and_then(|m| m.latency_device_us.as_ref());
    let energy = m
        .and_then(|m| m.energy.as_ref())
        .map_or_else(Cell::absent, |en| {
            Cell::new(
                fmt::plus_minus(
                    fmt::Quantity::Joules,
                    en.per_inference_j,
                    en.per_inference_error_j,
                ),
                Some(en.source),
            )
        });
    let throughput = m
        .and_then(|m| m.throughput.as_ref())
        .map_or_else(Cell::absent, |t| {
            let mut cell = Cell::new(format!("{:.1} /s", t.per_second), Some(t.source));
            cell.ci = Some(format!(
                "{:.1}–{:.1} over {} windows",
                t.min_per_second, t.max_per_second, t.windows
            ));
            if !t.meets_mlperf_tiny_rule {
                cell.note = Some(format!(
                    "{} windows of {:.1} s: MLPerf Tiny asks for 5 of at least 10 s",
                    t.windows, t.window_s
                ));
            }
            cell
        });
    let peak_ram = match m {
        Some(m) if m.peak_rss_kib.is_some() => Cell::new(
            format!(
                "{} RSS",
                fmt::bytes(m.peak_rss_kib.unwrap_or(0) as f64 * 1024.0)
            ),
            m.sources.get("peak_rss_kib").copied(),
        ),
        Some(m) if m.static_ram_bytes.is_some() => {
            let total = m.static_ram_bytes.unwrap_or(0)
                + m.heap_after_load_bytes.unwrap_or(0)
                + m.stack_high_water_bytes.unwrap_or(0);
            Cell::new(
                format!("{} static+heap+stack", fmt::bytes(total as f64)),
                m.sources.get("static_ram_bytes").copied(),
            )
        }
        _ => Cell::absent(),
    };
    let size = m.map_or_else(Cell::absent, |m| {
        Cell::new(
            fmt::bytes(m.model_size_bytes as f64),
            source("model_size_bytes"),
        )
    });
    VariantRow {
        board: e.board.clone(),
        board_class: fmt::board_class(results, &e.board).to_string(),
        model: e.model.clone(),
        variant: e.variant.clone(),
        reference: e.reference,
        status: fmt::entry_status(e.status),
        accuracy,
        agreement,
        p50: latency.map_or_else(Cell::absent, |l| percentile_cell(l, "p50")),
        p99: latency.map_or_else(Cell::absent, |l| percentile_cell(l, "p99")),
        energy,
        throughput,
        peak_ram,
        size,
    }
}

/// A device-latency percentile with its interval over interleaved blocks (the one gates judge
/// by), flagged when LoadGen's minimum sample count for it was not met or the run had too few
/// blocks for an interval.
fn percentile_cell(l: &Latency, which: &str) -> Cell {
    let (intervals, no_interval) = l.honest_intervals();
    let (v, ci) = match which {
        "p50" => (l.p50, intervals.map(|c| c.p50)),
        _ => (l.p99, intervals.map(|c| c.p99)),
    };
    let mut cell = Cell::new(fmt::micros(v), Some(l.source))
        .with_ci(ci.map(|ci| fmt::interval(fmt::Quantity::Micros, v, &ci)));
    if l.insufficient.iter().any(|p| p == which) {
        cell.note = Some(format!("indicative: only {} samples", l.n));
    } else if no_interval.is_some() {
        cell.note = no_interval;
    }
    cell
}

/// One gate outcome, formatted.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GateRow {
    pub verdict: &'static str,
    pub gate: String,
    pub board: String,
    pub board_class: String,
    pub model: String,
    pub variant: String,
    pub threshold: String,
    pub measured: Cell,
    pub baseline: Option<String>,
    pub evidence: String,
}

pub(crate) fn gate_rows(results: &Results) -> Vec<GateRow> {
    results.gates.iter().map(|g| gate_row(results, g)).collect()
}

fn gate_row(results: &Results, g: &GateResult) -> GateRow {
    let unit = g.quantity();
    let source = results
        .entries
        .iter()
        .find(|e| e.board == g.board && e.model == g.model && e.variant == g.variant)
        .and_then(|e| e.metrics.as_ref())
        .and_then(|m| fmt::metric_source(m, g.metric));
    let cmp = g.comparison.passing_sign();
    GateRow {
        verdict: fmt::verdict(Some(g.verdict)),
        gate: g.gate.clone(),
        board: g.board.clone(),
        board_class: g.board_class.clone(),
        model: g.model.clone(),
        variant: g.variant.clone(),
        threshold: g.threshold.map_or_else(
            || "—".to_string(),
            |t| format!("{cmp} {}", fmt::value(unit, t)),
        ),
        measured: g
            .measured
            .map_or_else(Cell::absent, |v| Cell::new(fmt::value(unit, v), source))
            .with_ci(
                g.measured
                    .zip(g.measured_ci.as_ref())
                    .map(|(v, ci)| fmt::interval(unit, v, ci)),
            ),
        baseline: g.baseline.as_ref().map(|b| {
            let run = b
                .run_id
                .as_deref()
                .map(|r| format!(" of run {r}"))
                .unwrap_or_default();
            format!(
                "{} {}{run}: {}",
                b.kind.name(),
                b.variant,
                fmt::value(fmt::Quantity::of(g.metric), b.value)
            )
        }),
        evidence: g.evidence.clone(),
    }
}

/// The sources other than `measured` that appear anywhere in the results, for the legend.
pub(crate) fn sources_used(results: &Results) -> Vec<Source> {
    let mut used = Vec::new();
    let mut add = |s: Source| {
        if s != Source::Measured && !used.contains(&s) {
            used.push(s);
        }
    };
    for b in &results.boards {
        b.timing_source.into_iter().for_each(&mut add);
        b.power_trace.iter().for_each(|t| add(t.source));
    }
    for m in results.entries.iter().filter_map(|e| e.metrics.as_ref()) {
        m.sources.values().copied().for_each(&mut add);
        m.latency_device_us.iter().for_each(|l| add(l.source));
        m.latency_roundtrip_us.iter().for_each(|l| add(l.source));
        m.energy.iter().for_each(|e| add(e.source));
        m.agreement.iter().for_each(|a| add(a.source));
    }
    used.sort_by_key(|s| fmt::source(*s));
    used
}

/// Columns padded to their widest cell, for plain-text tables.
pub(crate) fn aligned(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn rows_carry_sources_intervals_and_absences() {
        let (results, _) = fixture::run(50, 100);
        let rows = variant_rows(&results);
        assert_eq!(rows.len(), results.entries.len());
        let mcu = rows
            .iter()
            .find(|r| r.board == "qemu-stm32" && r.variant == "int8")
            .unwrap();
        assert_eq!(mcu.p50.source, Some("emulated"));
        assert_eq!(mcu.energy.source, Some("simulated"));
        assert!(mcu.p50.ci.as_deref().unwrap().contains("95% CI"));
        // 50 samples are fewer than LoadGen's 662 for p99, enough for p50.
        assert!(mcu.p99.note.is_some() && mcu.p50.note.is_none());
        assert!(mcu.peak_ram.text.contains("static+heap+stack"));
        let pi = rows.iter().find(|r| r.board == "pi5-01").unwrap();
        assert_eq!(
            (pi.p50.source, pi.agreement.text.as_str()),
            (None, "reference")
        );
        let jetson = rows.iter().find(|r| r.board == "jetson-01").unwrap();
        assert_eq!(
            (jetson.status, jetson.accuracy.text.as_str()),
            ("not run", "—")
        );
        assert_eq!(jetson.board_class, "jetson");
        assert_eq!(
            sources_used(&results),
            [Source::Emulated, Source::Simulated]
        );
    }

    #[test]
    fn gate_rows_format_in_the_metric_unit() {
        let (results, _) = fixture::run(20, 0);
        let rows = gate_rows(&results);
        assert_eq!(rows.len(), results.gates.len());
        let energy = rows.iter().find(|r| r.gate.starts_with("energy")).unwrap();
        assert_eq!(energy.threshold, "≤ 1 mJ");
        assert_eq!(energy.measured.text, "370 µJ");
        assert_eq!(energy.measured.source, Some("simulated"));
        // A head to head judged a ratio: its figures are not microseconds, its champion's p50 is.
        let ratio = rows.iter().find(|r| r.gate.contains("champion")).unwrap();
        assert_eq!(ratio.threshold, "≤ 1.1×");
        assert_eq!(ratio.measured.text, "0.98×");
        assert_eq!(ratio.measured.ci.as_deref(), Some("[0.9506, 1.009] 95% CI"));
        assert_eq!(
            ratio.baseline.as_deref(),
            Some("champion int8 of run 20260101T000000-0001: 455 µs")
        );
    }
}
