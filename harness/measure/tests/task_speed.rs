//! How long every task metric with its interval takes over a million windows, beside the floor of a
//! single-threaded sort of the same scores. A measurement, so ignored by default:
//! `cargo test --release -p gauntlet-measure --test task_speed -- --ignored --nocapture`.

use std::hint::black_box;
use std::time::Instant;

use gauntlet_measure::{
    BootstrapOptions, Timeline, anomaly_scores, events, output_agreement, regression_scores,
};

/// A reproducible stream of uniforms in [0, 1) (SplitMix64), so the data need no dependency.
fn uniforms(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
fn every_task_metric_over_a_million_windows() {
    let n = 1_000_000;
    let noise = uniforms(1, n);
    // Anomalies in runs of 50 windows, a tenth of the time; scores higher inside them.
    let anomalous: Vec<bool> = (0..n).map(|i| (i / 50) % 10 == 0).collect();
    let scores: Vec<f64> = (0..n)
        .map(|i| noise[i] + if anomalous[i] { 0.3 } else { 0.0 })
        .collect();
    let reference: Vec<f64> = scores.iter().map(|s| s + 1e-3).collect();
    let recording: Vec<usize> = (0..n).map(|i| i / 100_000).collect();
    let timestamps: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let target: Vec<f64> = (0..n).map(|i| 20.0 + (i % 1000) as f64 / 100.0).collect();
    let predicted: Vec<f64> = target
        .iter()
        .zip(&noise)
        .map(|(t, e)| t + e - 0.5)
        .collect();
    let persistence: Vec<f64> = target.iter().map(|t| t - 0.1).collect();
    // Blocks of 16 windows: SKAB's 16-row windows at stride 1, as a scenario would set it.
    let options = BootstrapOptions {
        block: 16,
        ..BootstrapOptions::default()
    };

    let start = Instant::now();
    let mut sorted = scores.clone();
    sorted.sort_unstable_by(f64::total_cmp);
    black_box(&sorted);
    let sort_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let a = anomaly_scores(&scores, &anomalous, 0.9, &options).unwrap();
    let anomaly_s = start.elapsed().as_secs_f64();
    let alarms: Vec<bool> = scores.iter().map(|&s| s > 0.9).collect();
    let start = Instant::now();
    let e = events(
        &Timeline {
            anomalous: &anomalous,
            alarms: &alarms,
            recording: &recording,
            timestamps_s: Some(&timestamps),
        },
        &options,
    )
    .unwrap();
    let events_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let r = regression_scores(&predicted, &target, Some(&persistence), &options).unwrap();
    let regression_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let g = output_agreement(
        &scores,
        &reference,
        Some((0.9, 0.9)),
        Some(&target),
        &options,
    )
    .unwrap();
    let agreement_s = start.elapsed().as_secs_f64();
    let total = anomaly_s + events_s + regression_s + agreement_s;
    println!(
        "{n} windows, {} resamples, blocks of {}: anomaly {anomaly_s:.3} s, events {events_s:.3} s, regression {regression_s:.3} s, agreement {agreement_s:.3} s, total {total:.3} s; single-threaded sort of the scores {sort_s:.3} s (total / sort = {:.1})",
        options.resamples,
        options.block,
        total / sort_s
    );
    assert!(a.roc_auc.ci.is_some() && r.rmse.ci.is_some() && g.spearman.ci.is_some());
    assert_eq!(e.segments.len(), 2_000);
}
