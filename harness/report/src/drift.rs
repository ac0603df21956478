//! The drift report (`gauntlet drift`): terminal summary, Markdown and self-contained HTML of a
//! [`DriftResults`]. Figures are only formatted here; `gauntlet drift` computed them.

use std::fmt::Write as _;

use gauntlet_results::format::{self, Quantity};
use gauntlet_results::{DriftGateResult, DriftResults, FeatureRow, PerformanceRow, Verdict};

use crate::fmt::{self, xml};
use crate::svg;

/// Features drawn as histograms in the HTML report: the worst by PSI.
const WORST_FEATURES: usize = 3;

const STYLE: &str = include_str!("../../../reports/templates/style.css");
const DRIFT_STYLE: &str = "svg .bar-new { fill: none; stroke: #b91c1c; stroke-width: 1.2; } \
                           svg .bar-over { fill: #f87171; }";

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
    }
}

fn worst_first(r: &DriftResults) -> Vec<&FeatureRow> {
    let mut rows: Vec<&FeatureRow> = r.input.iter().collect();
    rows.sort_by(|a, b| b.comparison.psi.value.total_cmp(&a.comparison.psi.value));
    rows
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:+.2}"))
}

/// The features a FAILed input gate names, in gate order, each once.
pub fn moved_features(r: &DriftResults) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for g in r.gates.iter().filter(|g| g.verdict == Verdict::Fail) {
        if r.input.iter().any(|f| f.feature == g.subject) && !out.contains(&g.subject.as_str()) {
            out.push(&g.subject);
        }
    }
    out
}

fn gate_line(g: &DriftGateResult) -> String {
    format!(
        "{:<12} {} on {}: {}",
        fmt::verdict(Some(g.verdict)),
        g.gate,
        g.subject,
        g.evidence
    )
}

/// The new figure, the champion's and their difference, each with its interval when it has one.
fn performance_cells(p: &PerformanceRow) -> [String; 3] {
    [
        format::metric_with_ci(p.metric, p.new, p.new_ci.as_ref()),
        format::metric_with_ci(p.metric, p.champion, p.champion_ci.as_ref()),
        format::difference(
            Quantity::of(p.metric),
            p.difference,
            p.difference_ci.as_ref(),
        ),
    ]
}

/// A feature's PSI, KS D, KS p, Holm-adjusted p, mean shift and σ change, as both tables show them.
fn feature_cells(f: &FeatureRow) -> [String; 6] {
    let c = &f.comparison;
    [
        format!("{:.3}", c.psi.value),
        format!("{:.3}", c.ks.statistic),
        format!("{:.2e}", c.ks.p_value),
        format!("{:.2e}", f.p_adjusted),
        opt(c.shift.mean_sd),
        opt(c.shift.sd_change),
    ]
}

fn performance_line(p: &PerformanceRow) -> String {
    let [new, champion, difference] = performance_cells(p);
    format!(
        "{}: new {new} vs champion {champion}, difference {difference}",
        p.metric
    )
}

/// Text for the terminal after the header `gauntlet drift` prints.
pub fn drift_terminal(r: &DriftResults) -> String {
    let mut s = String::new();
    let moved = moved_features(r);
    let _ = writeln!(
        s,
        "verdict: {}{}",
        r.verdict.name(),
        if moved.is_empty() {
            String::new()
        } else {
            format!(" (moved: {})", moved.join(", "))
        }
    );
    let passed = r
        .gates
        .iter()
        .filter(|g| g.verdict == Verdict::Pass)
        .count();
    let _ = writeln!(s, "gates: {passed} of {} passed", r.gates.len());
    for g in r.gates.iter().filter(|g| g.verdict != Verdict::Pass) {
        let _ = writeln!(s, "  {}", crate::printable(&gate_line(g)));
    }
    let _ = writeln!(
        s,
        "input drift, worst first (PSI, KS D, Holm p, mean shift σ):"
    );
    for f in worst_first(r).iter().take(WORST_FEATURES.max(5)) {
        let c = &f.comparison;
        let _ = writeln!(
            s,
            "  {:<24} {:>7.3} {:>6.3} {:>9.2e} {:>7}",
            crate::printable(&f.feature),
            c.psi.value,
            c.ks.statistic,
            f.p_adjusted,
            opt(c.shift.mean_sd)
        );
    }
    let o = &r.output.comparison;
    let _ = writeln!(
        s,
        "output drift ({}): PSI {:.3}, KS D {:.3} (p {:.2e})",
        r.output.score, o.psi.value, o.ks.statistic, o.ks.p_value
    );
    for p in &r.performance {
        let _ = writeln!(s, "  {}", performance_line(p));
    }
    s
}

/// The drift section as Markdown.
pub fn drift_markdown(r: &DriftResults) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Drift: {} on {} — {}\n",
        r.model,
        r.board.class,
        r.verdict.name().to_uppercase()
    );
    let _ = writeln!(
        s,
        "Champion `{}` (run `{}`, model SHA-256 `{}`) replayed on board `{}` ({}, figures {}). \
         Reference: {} windows ({}); new: {} windows from {} recordings. α = {} after Holm's correction.\n",
        r.champion.variant,
        r.champion.run_id,
        r.champion.model_sha256,
        r.board.id,
        r.board.kind,
        fmt::source(r.source),
        r.reference.windows,
        r.reference.kind,
        r.new.windows,
        r.new.recordings.len(),
        r.alpha
    );
    let moved = moved_features(r);
    if !moved.is_empty() {
        let _ = writeln!(s, "Features that moved: {}.\n", moved.join(", "));
    }
    let _ = writeln!(
        s,
        "## Gates\n\n| verdict | gate | subject | evidence |\n| --- | --- | --- | --- |"
    );
    for g in &r.gates {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} |",
            fmt::verdict(Some(g.verdict)),
            g.gate,
            g.subject,
            g.evidence.replace('|', "\\|")
        );
    }
    let _ = writeln!(
        s,
        "\n## Input drift per feature\n\n| feature | PSI | KS D | KS p | Holm p | mean shift (σ) | σ change (σ) |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for f in &r.input {
        let _ = writeln!(s, "| {} | {} |", f.feature, feature_cells(f).join(" | "));
    }
    let o = &r.output.comparison;
    let _ = writeln!(
        s,
        "\n## Output drift\n\n{}: PSI {:.3}, KS D {:.3}, p {:.2e}; mean {:.4} → {:.4}.",
        r.output.score,
        o.psi.value,
        o.ks.statistic,
        o.ks.p_value,
        o.shift.reference_mean,
        o.shift.new_mean
    );
    if let Some(m) = &r.output.class_mix {
        let _ = writeln!(
            s,
            "\nPredicted class mix: reference {:?}, new {:?} ({}); χ² = {:.2}, df {}, p = {:.2e}; largest share change {:.3}.",
            m.reference,
            m.new,
            m.classes.join(", "),
            m.test.statistic,
            m.test.df,
            m.test.p_value,
            m.largest_share_change
        );
    }
    if !r.performance.is_empty() {
        let _ = writeln!(
            s,
            "\n## Performance vs the champion's recorded figures\n\n| metric | new | champion | difference (95 % CI) |\n| --- | ---: | ---: | ---: |"
        );
        for p in &r.performance {
            let _ = writeln!(s, "| {} | {} |", p.metric, performance_cells(p).join(" | "));
        }
    }
    s
}

/// The drift report as one self-contained HTML page (no JavaScript, styles inline).
pub fn drift_html(r: &DriftResults) -> String {
    let mut s = String::new();
    let cls = match r.verdict {
        gauntlet_results::DriftVerdict::Requalified => "pass",
        gauntlet_results::DriftVerdict::Drifted => "fail",
        gauntlet_results::DriftVerdict::Inconclusive => "inconclusive",
    };
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Drift: {m}</title><style>{STYLE}\n{DRIFT_STYLE}</style></head><body>\
         <h1>Drift: {m} on {c}</h1><p class=\"meta\">champion {v} from run {run}, board {b} ({k}), figures {src}; reference {rw} windows ({rk}), new {nw} windows</p>\
         <div class=\"banner {cls}\"><span class=\"verdict {cls}\">{verdict}</span>{moved}</div>",
        m = xml(&r.model),
        c = xml(&r.board.class),
        v = xml(&r.champion.variant),
        run = xml(&r.champion.run_id),
        b = xml(&r.board.id),
        k = xml(&r.board.kind),
        src = fmt::source(r.source),
        rw = r.reference.windows,
        rk = xml(&r.reference.kind),
        nw = r.new.windows,
        verdict = r.verdict.name().to_uppercase(),
        moved = {
            let moved = moved_features(r);
            if moved.is_empty() {
                String::new()
            } else {
                format!(" — moved: {}", xml(&moved.join(", ")))
            }
        }
    );
    s.push_str("<h2>Gates</h2><table><tr><th>verdict</th><th>gate</th><th>subject</th><th>evidence</th></tr>");
    for g in &r.gates {
        let _ = write!(
            s,
            "<tr><td class=\"verdict {}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            verdict_class(g.verdict),
            fmt::verdict(Some(g.verdict)),
            xml(&g.gate),
            xml(&g.subject),
            xml(&g.evidence)
        );
    }
    s.push_str("</table><h2>Input drift per feature</h2>");
    // One bar chart per input statistic a gate bounds, PSI always.
    let mut charts: Vec<(&str, Option<f64>)> = vec![("psi", None)];
    for g in &r.gates {
        let name = g.gate.split(' ').next().unwrap_or("");
        if ["psi", "ks", "mean_shift", "sd_change"].contains(&name) {
            match charts.iter_mut().find(|c| c.0 == name) {
                Some(c) => c.1 = c.1.or(g.threshold),
                None => charts.push((name, g.threshold)),
            }
        }
    }
    for (name, threshold) in charts {
        let bars: Vec<(String, f64)> = r
            .input
            .iter()
            .filter_map(|f| {
                let c = &f.comparison;
                let v = match name {
                    "psi" => Some(c.psi.value),
                    "ks" => Some(c.ks.statistic),
                    "mean_shift" => c.shift.mean_sd.map(f64::abs),
                    _ => c.shift.sd_change.map(f64::abs),
                }?;
                Some((f.feature.clone(), v))
            })
            .collect();
        let _ = write!(
            s,
            "<figure>{}</figure>",
            svg::drift_bars(&format!("{name} per feature"), &bars, threshold)
        );
    }
    s.push_str("<table><tr><th>feature</th><th>PSI</th><th>KS D</th><th>KS p</th><th>Holm p</th><th>mean shift (σ)</th><th>σ change (σ)</th></tr>");
    for f in &r.input {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td></tr>",
            xml(&f.feature),
            feature_cells(f).join("</td><td>")
        );
    }
    s.push_str("</table><h3>Reference vs new, worst features</h3>");
    for f in worst_first(r).into_iter().take(WORST_FEATURES) {
        let _ = write!(
            s,
            "<figure>{}<figcaption>PSI {:.3}, KS D {:.3}</figcaption></figure>",
            svg::paired_histogram(&f.feature, &f.feature, &f.histogram),
            f.comparison.psi.value,
            f.comparison.ks.statistic
        );
    }
    let o = &r.output.comparison;
    let _ = write!(
        s,
        "<h2>Output drift</h2><figure>{}<figcaption>{}: PSI {:.3}, KS D {:.3}, p {:.2e}</figcaption></figure>",
        svg::paired_histogram(&r.output.score, &r.output.score, &r.output.histogram),
        xml(&r.output.score),
        o.psi.value,
        o.ks.statistic,
        o.ks.p_value
    );
    if let Some(m) = &r.output.class_mix {
        s.push_str("<table><tr><th>predicted class</th><th>reference</th><th>new</th></tr>");
        for (i, c) in m.classes.iter().enumerate() {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                xml(c),
                m.reference[i],
                m.new[i]
            );
        }
        let _ = write!(
            s,
            "</table><p>χ² = {:.2}, df {}, p = {:.2e}; largest share change {:.3}</p>",
            m.test.statistic, m.test.df, m.test.p_value, m.largest_share_change
        );
    }
    if !r.performance.is_empty() {
        s.push_str("<h2>Performance vs the champion's recorded figures</h2><table><tr><th>metric</th><th>new</th><th>champion</th><th>difference (95 % CI)</th></tr>");
        for p in &r.performance {
            let [new, champion, difference] = performance_cells(p).map(|c| xml(&c));
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{new}</td><td>{champion}</td><td>{difference}</td></tr>",
                p.metric
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use gauntlet_measure::drift::{compare, paired_histogram};
    use gauntlet_results::*;

    use super::*;

    fn results() -> DriftResults {
        let r: Vec<f32> = (0..400).map(|i| (i % 40) as f32).collect();
        let q: Vec<f32> = r.iter().map(|x| x + 15.0).collect();
        let feature = |name: &str, new: &[f32]| FeatureRow {
            feature: name.into(),
            comparison: compare(&r, new, 10).unwrap(),
            p_adjusted: 1e-9,
            histogram: paired_histogram(&r, new, 8),
        };
        let gate = |subject: &str, verdict| DriftGateResult {
            gate: "psi at_most 0.2".into(),
            subject: subject.into(),
            value: Some(1.0),
            threshold: Some(0.2),
            verdict,
            evidence: "psi 1.000 > 0.2 <b>".into(),
            task: None,
        };
        let gates = vec![
            gate("Current", Verdict::Fail),
            gate("Voltage", Verdict::Pass),
        ];
        DriftResults {
            schema: DRIFT_SCHEMA.into(),
            version: DRIFT_VERSION,
            drift_id: "drift-1".into(),
            started_at: "t0".into(),
            finished_at: "t1".into(),
            harness: Harness {
                version: "0".into(),
                git_commit: None,
            },
            scenario: FileRef {
                name: "s".into(),
                path: "s.toml".into(),
                sha256: "0".repeat(64),
            },
            model: "m".into(),
            board: DriftBoard {
                id: "stm32".into(),
                class: "qemu-stm32".into(),
                kind: "qemu-stm32".into(),
            },
            source: Source::Emulated,
            champion: DriftChampion {
                promotion_id: 1,
                run_id: "r1".into(),
                variant: "fp32".into(),
                model_sha256: "a".repeat(64),
                promoted_at: None,
                promoted_by: None,
            },
            reference: DriftData {
                kind: "held-out".into(),
                windows: 400,
                recordings: Vec::new(),
            },
            new: DriftData {
                kind: "recordings".into(),
                windows: 400,
                recordings: Vec::new(),
            },
            input: vec![feature("Current", &q), feature("Voltage", &r)],
            output: OutputDrift {
                score: "top-class probability".into(),
                comparison: compare(&r, &r, 10).unwrap(),
                histogram: paired_histogram(&r, &r, 8),
                class_mix: None,
            },
            performance: vec![PerformanceRow {
                metric: gauntlet_results::Metric::Accuracy,
                new: 0.8,
                new_ci: None,
                champion: 0.9,
                champion_ci: None,
                difference: -0.1,
                difference_ci: None,
            }],
            verdict: DriftVerdict::of(&gates),
            gates,
            alpha: 0.05,
        }
    }

    #[test]
    fn every_format_names_the_verdict_the_moved_feature_and_the_source() {
        let r = results();
        assert_eq!(moved_features(&r), ["Current"]);
        let term = drift_terminal(&r);
        assert!(
            term.starts_with("verdict: drifted (moved: Current)"),
            "{term}"
        );
        let md = drift_markdown(&r);
        assert!(
            md.contains("DRIFTED") && md.contains("figures emulated"),
            "{md}"
        );
        assert!(md.contains("| accuracy | 80% | 90% | -10 pp |"), "{md}");
        let html = drift_html(&r);
        assert!(html.contains("figures emulated") && html.contains("moved: Current"));
        assert!(!html.contains("<script"), "self-contained, no JavaScript");
        assert!(!html.contains("<b>"), "evidence is escaped");
        // The PSI bars draw the gate's threshold and Current beyond it.
        assert!(html.contains("gate 0.2") && html.contains("bar-over"));
        assert_eq!(
            html.matches("share of windows").count(),
            3,
            "2 features + the score"
        );
    }
}
