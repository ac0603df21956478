//! The plain-text summary printed at the end of `gauntlet run`.

use crate::rows::{aligned, gate_rows, sources_used, variant_rows};
use crate::{ReportError, ReportInput, Reporter, fmt};

#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalReporter;

impl Reporter for TerminalReporter {
    fn render(&self, input: &ReportInput) -> Result<String, ReportError> {
        let r = input.results;
        let mut out = format!(
            "run {}: {}\nscenario `{}` · rig `{}` · dataset `{}` ({})\n\nverdicts\n",
            r.run_id,
            fmt::outcome(r.outcome),
            r.scenario.name,
            r.rig.name,
            r.dataset.name,
            fmt::dataset_windows(&r.dataset)
        );
        let verdicts: Vec<Vec<String>> = r
            .verdicts
            .iter()
            .map(|v| {
                let detail = v.infra_error.clone().unwrap_or_else(|| {
                    format!(
                        "{} passed, {} failed, {} inconclusive",
                        v.gates_passed, v.gates_failed, v.gates_inconclusive
                    )
                });
                vec![
                    format!("  {}", fmt::verdict(v.verdict)),
                    format!("{}:{}", v.model, v.variant),
                    format!("on {}", v.board_class),
                    detail,
                ]
            })
            .collect();
        out.push_str(&aligned(&verdicts));
        out.push_str("\ngates\n");
        // Under each gate, one line per build it judged: the gate's text once, not per build.
        let rows = gate_rows(r);
        let mut labels: Vec<&str> = Vec::new();
        for g in &rows {
            if !labels.contains(&g.gate.as_str()) {
                labels.push(&g.gate);
            }
        }
        for label in labels {
            out.push_str(&format!("  {label}\n"));
            let judged: Vec<Vec<String>> = rows
                .iter()
                .filter(|g| g.gate == label)
                .map(|g| {
                    vec![
                        format!("    {}", g.verdict),
                        format!("{}:{}", g.model, g.variant),
                        format!("on {}", g.board),
                        g.measured.plain(),
                        g.threshold.clone(),
                    ]
                })
                .collect();
            out.push_str(&aligned(&judged));
        }
        out.push_str("\nbuilds\n");
        let mut table = vec![
            [
                "  board",
                "build",
                "status",
                "accuracy",
                "agreement",
                "p50",
                "p99",
                "energy/inf",
                "peak RAM",
                "size",
            ]
            .map(String::from)
            .to_vec(),
        ];
        table.extend(variant_rows(r).into_iter().map(|v| {
            vec![
                format!("  {}", v.board),
                format!(
                    "{}:{}{}",
                    v.model,
                    v.variant,
                    if v.reference { " (reference)" } else { "" }
                ),
                v.status.to_string(),
                v.accuracy.short(),
                v.agreement.short(),
                v.p50.short(),
                v.p99.short(),
                v.energy.short(),
                v.peak_ram.short(),
                v.size.short(),
            ]
        }));
        out.push_str(&aligned(&table));
        for e in &r.entries {
            if let Some(err) = &e.error {
                out.push_str(&format!(
                    "  {} {}:{} {}: {}\n",
                    e.board, e.model, e.variant, err.kind, err.message
                ));
            }
        }
        out.push_str(&crate::runtimes::text(r));
        for b in &r.boards {
            if let Some(f) = &b.failure {
                out.push_str(&format!(
                    "\nboard `{}` infrastructure failure at {}: {}",
                    b.board, f.stage, f.reason
                ));
            }
            if let Some(e) = &b.power_error {
                out.push_str(&format!("\nboard `{}` power: {e}", b.board));
            }
        }
        for s in sources_used(r) {
            let (_, meaning) = fmt::SOURCE_LEGEND
                .iter()
                .find(|(k, _)| *k == s)
                .expect("the legend covers every non-measured source");
            out.push_str(&format!("\n({}): {meaning}", fmt::source(s)));
        }
        if !sources_used(r).is_empty() {
            out.push('\n');
        }
        Ok(crate::printable(&out).into_owned())
    }

    fn file_name(&self) -> &str {
        "summary.txt"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn summary_lists_every_verdict_gate_and_build_with_sources() {
        let (results, samples) = fixture::run(30, 0);
        let text = TerminalReporter
            .render(&ReportInput::new(&results, &samples))
            .unwrap();
        assert!(text.starts_with("run 20261125-101500-a1b2: INFRASTRUCTURE FAILURE\n"));
        assert!(text.contains("INFRA ERROR"), "{text}");
        assert!(text.contains("board jetson-01 failed health check"));
        // Each gate's text once, then a line per build it judged.
        let mut labels: Vec<&str> = results.gates.iter().map(|g| g.gate.as_str()).collect();
        labels.dedup();
        for label in &labels {
            assert_eq!(
                text.lines().filter(|l| l.trim() == *label).count(),
                1,
                "{label}:\n{text}"
            );
        }
        let judged = text
            .lines()
            .filter(|l| {
                ["PASS", "FAIL", "INCONCLUSIVE"]
                    .iter()
                    .any(|v| l.starts_with(&format!("    {v}")))
            })
            .count();
        assert_eq!(judged, results.gates.len(), "{text}");
        assert!(text.contains("(emulated)") && text.contains("(simulated):"));
        assert!(text.contains("QEMU instruction-count"));
        // What `gauntlet run` prints, as a whole.
        insta::assert_snapshot!(text);
    }
}
