//! Issue 15's target: every task metric with its bootstrap interval for 1,000,000 windows in
//! under 2 s, timed beside the floor it cannot beat, one single-threaded sort of the same scores.
//! `cargo bench -p gauntlet-measure --bench task_metrics` (a plain timer: each call takes seconds,
//! more than criterion's sampling is made for).

use std::time::{Duration, Instant};

use gauntlet_measure::{BootstrapOptions, anomaly_scores, output_agreement, regression_scores};

const WINDOWS: usize = 1_000_000;
const ROUNDS: usize = 3;

/// Scores, labels and targets from a fixed generator: anomalies score higher on average.
fn data() -> (Vec<f64>, Vec<bool>, Vec<f64>, Vec<f64>) {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut scores = Vec::with_capacity(WINDOWS);
    let mut labels = Vec::with_capacity(WINDOWS);
    let mut predicted = Vec::with_capacity(WINDOWS);
    let mut target = Vec::with_capacity(WINDOWS);
    for i in 0..WINDOWS {
        let anomalous = uniform() < 0.3;
        scores.push(uniform() + if anomalous { 0.4 } else { 0.0 });
        labels.push(anomalous);
        let truth = 20.0 + (i as f64 / 5_000.0).sin();
        target.push(truth);
        predicted.push(truth + (uniform() - 0.5) * 0.2);
    }
    (scores, labels, predicted, target)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn time(mut f: impl FnMut()) -> Duration {
    median(
        (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let (scores, labels, predicted, target) = data();
    // Windows cut with stride 1 from 16-row recordings overlap for 16 windows (the SKAB layout).
    let options = BootstrapOptions {
        block: 16,
        ..BootstrapOptions::default()
    };
    let floor = time(|| {
        let mut sorted = scores.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        std::hint::black_box(sorted);
    });
    let anomaly = time(|| {
        std::hint::black_box(anomaly_scores(&scores, &labels, 0.9, &options).unwrap());
    });
    let regression = time(|| {
        std::hint::black_box(regression_scores(&predicted, &target, None, &options).unwrap());
    });
    let agreement = time(|| {
        std::hint::black_box(
            output_agreement(&predicted, &target, None, Some(&target), &options).unwrap(),
        );
    });
    let total = anomaly + regression + agreement;
    println!(
        "task metrics, {WINDOWS} windows, {} resamples, median of {ROUNDS} rounds:",
        options.resamples
    );
    println!(
        "  sort of the scores (floor)   {:>8.3} s",
        floor.as_secs_f64()
    );
    println!(
        "  anomaly (ROC/PR AUC, F1 …)    {:>8.3} s",
        anomaly.as_secs_f64()
    );
    println!(
        "  regression (RMSE, MAE, R² …)  {:>8.3} s",
        regression.as_secs_f64()
    );
    println!(
        "  output agreement              {:>8.3} s",
        agreement.as_secs_f64()
    );
    println!(
        "  all                           {:>8.3} s = {:.1} × the sort (target: under 2 s)",
        total.as_secs_f64(),
        total.as_secs_f64() / floor.as_secs_f64()
    );
}
