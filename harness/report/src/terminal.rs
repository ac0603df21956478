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
        let gates: Vec<Vec<String>> = gate_rows(r)
            .into_iter()
            .map(|g| {
                vec![
                    format!("  {}", g.verdict),
                    g.gate,
                    g.board,
                    format!("{}:{}", g.model, g.variant),
                    g.measured.plain(),
                    g.threshold,
                ]
            })
            .collect();
        out.push_str(&aligned(&gates));
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
                format!("{}:{}", v.model, v.variant),
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
        out.push_str(&crate::runtimes::text(r));
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
        let gate_lines = text
            .lines()
            .filter(|l| {
                l.contains("latency.p99 <=") || l.contains(">= 99%") || l.contains("energy_per")
            })
            .count();
        assert_eq!(gate_lines, results.gates.len());
        assert!(text.contains("(emulated)") && text.contains("(simulated):"));
        assert!(text.contains("QEMU instruction-count"));
    }
}
