//! A Markdown summary for a CI step summary or a pull-request comment: verdict banner, gates, the
//! quantization comparison and a provenance footnote. Names from scenario files are escaped, so a
//! model called `<script>` or `a|b` cannot break out of its table cell or inject markup.

use crate::rows::{gate_rows, sources_used, variant_rows};
use crate::{ReportError, ReportInput, Reporter, fmt};
use gauntlet_results::Outcome;

#[derive(Debug, Clone, Copy, Default)]
pub struct MarkdownReporter;

impl Reporter for MarkdownReporter {
    fn render(&self, input: &ReportInput) -> Result<String, ReportError> {
        let r = input.results;
        let icon = match r.outcome {
            Outcome::Pass => "✅",
            Outcome::GateFailed => "❌",
            Outcome::InfraFailure => "⚠️",
            Outcome::Inconclusive => "❔",
        };
        let mut out = format!(
            "## {icon} Gauntlet run `{}`: {}\n\nScenario **{}** on rig **{}**, dataset **{}** ({}).\n\n",
            esc(&r.run_id),
            fmt::outcome(r.outcome),
            esc(&r.scenario.name),
            esc(&r.rig.name),
            esc(&r.dataset.name),
            fmt::dataset_windows(&r.dataset)
        );
        out.push_str("| verdict | model | variant | board class | gates passed / failed / inconclusive | champion replaced |\n|---|---|---|---|---|---|\n");
        for v in &r.verdicts {
            let gates = match &v.infra_error {
                Some(e) => format!("infrastructure: {}", esc(e)),
                None => format!(
                    "{} / {} / {}",
                    v.gates_passed, v.gates_failed, v.gates_inconclusive
                ),
            };
            let champion = input.champion(&v.model, &v.board_class).map_or_else(
                || "none".to_string(),
                |c| format!("{} of run {}", esc(&c.variant), esc(&c.run_id)),
            );
            out.push_str(&format!(
                "| **{}** | {} | {} | {} | {gates} | {champion} |\n",
                fmt::verdict(v.verdict),
                esc(&v.model),
                esc(&v.variant),
                esc(&v.board_class)
            ));
        }
        out.push_str("\n### Gates\n\n| verdict | gate | board | build | threshold | measured | evidence |\n|---|---|---|---|---|---|---|\n");
        for g in gate_rows(r) {
            out.push_str(&format!(
                "| {} | {} | {} | {}:{} | {} | {} | {} |\n",
                g.verdict,
                esc(&g.gate),
                esc(&g.board),
                esc(&g.model),
                esc(&g.variant),
                esc(&g.threshold),
                esc(&g.measured.plain()),
                esc(&g.evidence)
            ));
        }
        out.push_str("\n### Quantization comparison\n\n| board | model | variant | accuracy | agreement | latency p50 | latency p99 | energy / inference | throughput | peak RAM | model size |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        for v in variant_rows(r) {
            let variant = if v.reference {
                format!("{} (reference)", esc(&v.variant))
            } else {
                esc(&v.variant)
            };
            let cells = [
                &v.accuracy,
                &v.agreement,
                &v.p50,
                &v.p99,
                &v.energy,
                &v.throughput,
                &v.peak_ram,
                &v.size,
            ]
            .map(|c| esc(&c.plain()));
            out.push_str(&format!(
                "| {} | {} | {variant} | {} |\n",
                esc(&v.board),
                esc(&v.model),
                cells.join(" | ")
            ));
        }
        out.push_str(&crate::runtimes::markdown(r, esc));
        out.push_str(&crate::task::markdown(r, esc));
        out.push('\n');
        let thermal: Vec<_> = r
            .boards
            .iter()
            .filter_map(|b| Some((b, b.temperatures.as_ref()?)))
            .collect();
        if !thermal.is_empty() {
            out.push_str(
                "### Board temperatures during the run

",
            );
            for (b, t) in thermal {
                out.push_str(&format!(
                    "- **{}**: {}\n",
                    esc(&b.board),
                    esc(&fmt::temperatures(t))
                ));
            }
            out.push('\n');
        }
        let changed: Vec<_> = r
            .boards
            .iter()
            .filter_map(|b| Some((b, fmt::machine_changes(b.machine.as_ref()?)?)))
            .collect();
        if !changed.is_empty() {
            out.push_str("### Machine state changes during the run\n\n");
            for (b, line) in changed {
                out.push_str(&format!("- **{}**: {}\n", esc(&b.board), esc(&line)));
            }
            out.push('\n');
        }
        for s in sources_used(r) {
            if let Some((_, meaning)) = fmt::SOURCE_LEGEND.iter().find(|(k, _)| *k == s) {
                out.push_str(&format!("> **{}**: {meaning}.\n", fmt::source(s)));
            }
        }
        out.push_str(&format!(
            "\n<sub>Harness {} (commit {}), run {} → {}; scenario `{}` sha256 {}; rig `{}` sha256 {}; dataset sha256 {}.</sub>\n",
            esc(&r.harness.version),
            esc(r.harness.git_commit.as_deref().unwrap_or("unknown")),
            esc(&r.started_at),
            esc(&r.finished_at),
            esc(&r.scenario.path),
            short_hash(&r.scenario.sha256),
            esc(&r.rig.path),
            short_hash(&r.rig.sha256),
            short_hash(&r.dataset.sha256)
        ));
        Ok(out)
    }

    fn file_name(&self) -> &str {
        "report.md"
    }
}

fn short_hash(h: &str) -> String {
    esc(h.get(..12).unwrap_or(h))
}

/// Escapes text for a Markdown table cell: HTML is entity-encoded (GitHub renders raw HTML), pipes
/// and Markdown punctuation are backslash-escaped, newlines become spaces and other control
/// characters visible escapes.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_unicode()),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Champion, fixture};

    #[test]
    fn escapes_names_that_would_break_markup() {
        assert_eq!(
            esc("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(esc("a|b_c\nd"), "a\\|b\\_c d");
        assert_eq!(esc("x\x1b[31m"), "x\\u{1b}\\[31m");
    }

    #[test]
    fn summary_has_banner_tables_legend_and_footnote() {
        let (results, samples) = fixture::run(30, 0);
        let champions = [Champion {
            model: "kws".into(),
            board_class: "raspberry-pi".into(),
            run_id: "20261101-old".into(),
            variant: "fp32".into(),
            accuracy: Some(0.94),
            latency_p50_us: Some(400.0),
            latency_p99_us: Some(700.0),
            energy_per_inference_j: None,
            promoted_by: Some("ana".into()),
            promoted_at: None,
        }];
        let input = ReportInput::new(&results, &samples).with_champions(&champions);
        let md = MarkdownReporter.render(&input).unwrap();
        assert!(
            md.starts_with("## ⚠️ Gauntlet run `20261125-101500-a1b2`: INFRASTRUCTURE FAILURE")
        );
        assert!(!md.contains("<script>"));
        assert!(md.contains("&lt;script&gt;"));
        assert!(md.contains("fp32 of run 20261101-old"));
        assert!(md.contains("- **pi5-01**: cpu-thermal 51.2–58.9 °C (3 samples, every 1 s)"));
        assert!(md.contains(
            "### Machine state changes during the run\n\n- **pi5-01**: governor ondemand → \
             powersave in block 4 of replay 0 of \\`kws\\`\n"
        ));
        // One table row per verdict, gate and entry, each with the table's column count.
        let rows: Vec<&str> = md
            .lines()
            .filter(|l| {
                l.starts_with("| ") && !l.starts_with("| verdict") && !l.starts_with("| board |")
            })
            .collect();
        assert_eq!(
            rows.len(),
            results.verdicts.len() + results.gates.len() + results.entries.len()
        );
        for row in rows {
            let unescaped_pipes = row.matches('|').count() - row.matches("\\|").count();
            assert!(
                unescaped_pipes == 7 || unescaped_pipes == 8 || unescaped_pipes == 12,
                "{row}"
            );
        }
        assert!(md.contains("> **emulated**: an emulator executed the model"));
        assert!(md.contains("<sub>Harness 0.1.0 (commit 0123456789abcdef"));
    }
}
