//! Times `summarize` with the default 2,000 bootstrap resamples on 10^5 log-normal samples, the size of a
//! long latency run. Run with `cargo run --release -p gauntlet-measure --example bootstrap_speed`.

use std::time::Instant;

use gauntlet_measure::{RatioOptions, SummaryOptions, normal_quantile, paired_ratio, summarize};

fn main() {
    // A deterministic log-normal sample (median ≈ 55 µs) from evenly spaced quantiles in shuffled order.
    let samples: Vec<f64> = (0..100_000u64)
        .map(|i| {
            let u = ((i as f64 + 0.5) * 0.618_033_988_749_895).fract();
            (4.0 + 0.3 * normal_quantile(u)).exp()
        })
        .collect();
    let start = Instant::now();
    let summary = summarize(&samples, &SummaryOptions::default()).expect("samples are finite");
    println!(
        "summarize n={} resamples=2000: {:.3} s (p50 {:.2}, p99 {:.2})",
        summary.n,
        start.elapsed().as_secs_f64(),
        summary.p50,
        summary.p99
    );
    let start = Instant::now();
    let ratio =
        paired_ratio(&samples, &samples, &RatioOptions::default()).expect("samples are positive");
    println!(
        "paired_ratio n=2x{} resamples=2000: {:.3} s (ratio {:.4}, ci {:.4}..{:.4})",
        ratio.n_a,
        start.elapsed().as_secs_f64(),
        ratio.ratio,
        ratio.ci.lo,
        ratio.ci.hi
    );
}
