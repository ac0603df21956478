//! Plain-text plan and results tables for the terminal.

use crate::stdout::say;
use gauntlet_results::{EntryStatus, Outcome, Results, Verdict};
use gauntlet_runner::Plan;

pub fn print_plan(plan: &Plan) {
    let s = &plan.scenario;
    say!("scenario `{}` ({})", s.name, s.source.path.display());
    say!(
        "dataset `{}`: {} windows of {} values, {} classes",
        s.dataset.name,
        plan.windows.len(),
        plan.windows.window_len,
        s.dataset.classes.len()
    );
    say!(
        "rig `{}`: {} board(s) selected",
        plan.rig.name,
        plan.boards.len()
    );
    for board in &plan.boards {
        say!("  board `{}` ({})", board.id, board.kind.name());
        for model in &plan.models {
            for build in &model.builds {
                say!(
                    "    {}:{}{}  {} bytes  sha256 {}",
                    model.name,
                    build.variant,
                    if build.reference { " (reference)" } else { "" },
                    build.bytes.len(),
                    &hex_prefix(&build.sha256)
                );
            }
        }
    }
    let builds: usize = plan.models.iter().map(|m| m.builds.len()).sum();
    let mut total = 0;
    for board in &plan.boards {
        let rules = s.run_for(board);
        let per_build = plan.measured_per_build(board);
        total += per_build * builds;
        say!(
            "board `{}`: per build {} warm-up + {per_build} measured inferences, at least {:?} of measurement",
            board.id,
            rules.warmup.min(plan.windows.len()),
            rules.min_duration
        );
    }
    say!(
        "measures: accuracy, macro-F1, confusion, agreement with the reference, device and round-trip latency, load time, memory"
    );
    say!("at least {total} measured inferences in all");
    say!("gates: {}", s.gates.len());
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

pub fn print_results(results: &Results) {
    let header = [
        "board", "model", "variant", "status", "accuracy", "macro-F1", "agree", "p50 µs", "p99 µs",
        "n", "RSS KiB",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for e in &results.entries {
        let m = e.metrics.as_ref();
        let lat = m.and_then(|m| m.latency_device_us.as_ref());
        let status = match e.status {
            EntryStatus::Completed => "ok".to_string(),
            EntryStatus::Rejected => "rejected".to_string(),
            EntryStatus::Interrupted => "interrupted".to_string(),
            EntryStatus::NotRun => "not run".to_string(),
        };
        rows.push(vec![
            e.board.clone(),
            e.model.clone(),
            format!("{}{}", e.variant, if e.reference { "*" } else { "" }),
            status,
            opt(m.and_then(|m| m.accuracy), 4),
            opt(m.and_then(|m| m.macro_f1), 4),
            opt(m.and_then(|m| m.agreement.as_ref().map(|a| a.label)), 4),
            opt(lat.map(|l| l.p50), 1),
            match lat {
                Some(l) if l.insufficient.iter().any(|p| p == "p99") => format!("{:.1}†", l.p99),
                Some(l) => format!("{:.1}", l.p99),
                None => "-".into(),
            },
            lat.map_or("-".into(), |l| l.n.to_string()),
            m.and_then(|m| m.peak_rss_kib)
                .map_or("-".into(), |v| v.to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        say!("{}", line.join("  ").trim_end());
    }
    say!("* reference variant   † fewer samples than MLPerf LoadGen needs for a p99 claim (662)");
    let runtimes = gauntlet_report::runtime_comparison(results);
    if !runtimes.is_empty() {
        say!("{}", runtimes.trim_end());
    }
    for e in results.entries.iter().filter(|e| e.error.is_some()) {
        let err = e.error.as_ref().expect("filtered");
        say!(
            "{}:{}:{} {}: {}",
            e.board,
            e.model,
            e.variant,
            err.kind,
            err.message
        );
    }
    // One heading per gate, then one line per build it judged: the gate's text once, not per build.
    let mut labels: Vec<&str> = Vec::new();
    for g in &results.gates {
        if !labels.contains(&g.gate.as_str()) {
            labels.push(&g.gate);
        }
    }
    for label in labels {
        say!();
        say!("gate {label}");
        for g in results.gates.iter().filter(|g| g.gate == label) {
            let verdict = match g.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::Inconclusive => "INCONCLUSIVE",
            };
            say!(
                "  {verdict:<12} {}:{} on {}: {}",
                g.model,
                g.variant,
                g.board,
                g.evidence
            );
        }
    }
    for v in &results.verdicts {
        let verdict = match (v.verdict, &v.infra_error) {
            (Some(Verdict::Pass), _) => "PASS".to_string(),
            (Some(Verdict::Fail), _) => "FAIL".to_string(),
            (Some(Verdict::Inconclusive), _) => "INCONCLUSIVE".to_string(),
            (None, Some(e)) => format!("INFRA ERROR ({e})"),
            (None, None) => "-".to_string(),
        };
        say!(
            "verdict {}:{} on class `{}`: {verdict}",
            v.model,
            v.variant,
            v.board_class
        );
    }
    for b in &results.boards {
        if let Some(f) = &b.failure {
            say!(
                "board `{}` infrastructure failure at {}: {}",
                b.board,
                f.stage,
                f.reason
            );
        }
        if let Some(e) = &b.power_error {
            say!("board `{}` power: {e}", b.board);
        }
    }
    let outcome = match results.outcome {
        Outcome::Pass => "pass",
        Outcome::GateFailed => "a gate failed",
        Outcome::InfraFailure => "infrastructure failure",
        Outcome::Inconclusive => "inconclusive",
    };
    say!("outcome: {outcome} (run {})", results.run_id);
}
