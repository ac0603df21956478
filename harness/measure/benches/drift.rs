//! Issue 17's figure: input drift statistics (PSI, KS with its p-value, shift, Holm) over
//! 1,000,000 reference and 1,000,000 new windows × 128 features, beside the floor, one pass
//! that only reads the same values. Peak memory is the process's VmHWM, read before the
//! statistics (inputs allocated) and after.
//! `cargo bench -p gauntlet-measure --bench drift` (a plain timer: each call takes seconds).

use std::time::{Duration, Instant};

use gauntlet_measure::drift::{DEFAULT_PSI_BINS, Matrix, input_drift};

const WINDOWS: usize = 1_000_000;
const FEATURES: usize = 128;
const ROUNDS: usize = 3;

/// Row-major windows; the new ones have every 16th feature moved by 0.1 σ.
fn data(seed: u64, moved: f32) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..WINDOWS * FEATURES)
        .map(|i| {
            // Sum of three uniforms: bell-shaped, cheap, with ties only by accident.
            let x = uniform() + uniform() + uniform() - 1.5;
            if (i % FEATURES).is_multiple_of(16) {
                x + moved * 0.5
            } else {
                x
            }
        })
        .collect()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let reference = data(0x9e37_79b9_7f4a_7c15, 0.0);
    let new = data(0x2545_f491_4f6c_dd1d, 0.1);
    let inputs_kib = peak_rss_kib();
    let (r, q) = (
        Matrix::new(&reference, FEATURES),
        Matrix::new(&new, FEATURES),
    );
    let mut floor_times = Vec::new();
    let mut drift_times = Vec::new();
    let mut moved = 0;
    // Side by side, round by round, so both see the same machine.
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let sum: f64 = reference.iter().chain(&new).map(|&x| f64::from(x)).sum();
        std::hint::black_box(sum);
        floor_times.push(start.elapsed());
        let start = Instant::now();
        let drift = input_drift(r, q, DEFAULT_PSI_BINS).expect("finite data");
        drift_times.push(start.elapsed());
        moved = drift.iter().filter(|f| f.p_adjusted < 0.05).count();
    }
    let peak_kib = peak_rss_kib();
    let (floor, drift) = (median(floor_times), median(drift_times));
    println!(
        "{WINDOWS} reference + {WINDOWS} new windows x {FEATURES} features (f32), median of {ROUNDS}:"
    );
    println!(
        "  read every value once (floor): {:.3} s",
        floor.as_secs_f64()
    );
    println!(
        "  input drift (PSI, KS + p, shift, Holm): {:.3} s = {:.1} x the floor; {moved} of {FEATURES} features flagged (8 moved)",
        drift.as_secs_f64(),
        drift.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  peak RSS: {:.0} MiB with the inputs, {:.0} MiB after the statistics (+{:.1} MiB)",
        inputs_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        (peak_kib - inputs_kib) as f64 / 1024.0
    );
}
