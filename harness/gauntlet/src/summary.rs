//! The plan, printed before a run; the results are printed by `gauntlet_report::TerminalReporter`.

use crate::stdout::say;
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
