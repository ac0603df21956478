//! Terminal progress: one bar per board, drawn only when stderr is a terminal.

use std::collections::HashMap;
use std::sync::Mutex;

use gauntlet_runner::{Event, EventSink, Plan};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub struct Progress {
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    pub fn new(plan: &Plan) -> Self {
        let multi = MultiProgress::new();
        let style =
            ProgressStyle::with_template("{prefix:>12} [{bar:32}] {pos}/{len} inferences {msg}")
                .expect("valid progress template")
                .progress_chars("=> ");
        let bars = plan
            .boards
            .iter()
            .map(|b| {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(style.clone());
                bar.set_prefix(b.id.clone());
                (b.id.clone(), bar)
            })
            .collect();
        Progress {
            bars: Mutex::new(bars),
        }
    }

    pub fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }
}

impl EventSink for Progress {
    fn event(&self, event: Event) {
        let Ok(bars) = self.bars.lock() else { return };
        let bar = |board: &str| bars.get(board).cloned();
        match event {
            Event::BoardConnected { board, hello } => {
                if let Some(b) = bar(&board) {
                    b.set_message(format!("{} {}", hello.agent, hello.agent_version));
                }
            }
            Event::BuildLoaded {
                board,
                model,
                variant,
                load_time_us,
            } => {
                if let Some(b) = bar(&board) {
                    b.set_message(format!(
                        "loaded {model}:{variant} in {:.1} ms",
                        load_time_us as f64 / 1e3
                    ));
                }
            }
            Event::BuildFailed {
                board,
                model,
                variant,
                reason,
            } => {
                if let Some(b) = bar(&board) {
                    b.println(format!("{board}: {model}:{variant} cannot run: {reason}"));
                }
            }
            Event::Progress { board, done, total } => {
                if let Some(b) = bar(&board) {
                    b.set_length(total);
                    b.set_position(done);
                }
            }
            Event::BoardFinished { board } => {
                if let Some(b) = bar(&board) {
                    b.finish_with_message("done");
                }
            }
            Event::BoardFailed { board, reason } => {
                if let Some(b) = bar(&board) {
                    b.abandon_with_message(format!("infrastructure failure: {reason}"));
                }
            }
            Event::Samples { .. } => {}
        }
    }
}
