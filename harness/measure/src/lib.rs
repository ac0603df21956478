//! Statistics for Gauntlet's results, gates and reports. Pure computation: no I/O, no clocks, no global
//! state; every random choice comes from an explicit seed, so a result file can be recomputed bit for bit.
//!
//! # Definitions
//!
//! - **Percentiles** are type 7 of Hyndman & Fan (1996), the default of R and numpy: for ascending
//!   x₀…xₙ₋₁ and h = (n − 1)·p, the p-quantile is x⌊h⌋ + (h − ⌊h⌋)(x⌊h⌋₊₁ − x⌊h⌋). So p50 of an even
//!   count is the mean of the middle pair, p0 is the minimum and p100 the maximum ([`quantile_sorted`]).
//! - **Mean and spread**: arithmetic mean; `stddev` is the sample standard deviation (n − 1).
//! - **Confidence intervals** of latency statistics and of the A/B ratio are percentile-bootstrap
//!   intervals: B resamples of the same size drawn with replacement (default 2,000), the statistic
//!   recomputed on each, and the interval taken as the type-7 α/2 and 1 − α/2 quantiles of the B values.
//!   The PRNG is xoshiro256++ seeded by SplitMix64 from the `seed` option. Resamples are drawn as counts
//!   over the sorted sample, so each costs O(n) with no sort or selection.
//! - **Accuracy intervals** are Wilson score intervals without continuity correction ([`wilson_interval`]).
//! - **Outliers** use Tukey fences on type-7 quartiles: mild strictly beyond 1.5×IQR (but not 3×IQR),
//!   extreme strictly beyond 3×IQR. They are counted, never removed.
//! - **Minimum samples** follow MLPerf LoadGen's early-stopping rule with zero tolerance at 99% confidence
//!   ([`loadgen_min_samples`]): p50 ≥ 11, p90 ≥ 64, p95 ≥ 130, p99 ≥ 662, p99.9 ≥ 6,636 samples. Below its
//!   minimum a percentile is still computed and is named in [`LatencySummary::insufficient`].
//! - **Macro F1** averages per-class F1 over classes present in the truth or the predictions; a class
//!   absent from both carries no information and is left out. Precision or recall with a zero
//!   denominator counts as 0, as in scikit-learn's default.
//! - **Agreement** between variants compares argmax labels per window and raw score differences.
//! - **A/B ratio** is median(b) / median(a), resampling each variant's samples independently
//!   ([`paired_ratio`]); it is significant when its interval lies wholly outside [1 − noise, 1 + noise].
//!   That per-sample interval assumes independent samples and is kept as a labelled secondary figure.
//! - **Dependence-aware intervals** (what gates judge): samples come in interleaved blocks within
//!   replays; a two-stage bootstrap resamples replays, then blocks within them ([`block_intervals`]),
//!   and an A/B ratio is the median over block pairs of the ratio of block medians ([`block_ratio`]).
//!   Fewer than [`min_blocks`] blocks (6 at 95 %) give no interval: the run is too short for an
//!   honest one. Why: see the `blocks` module.
//! - **Repeated windows** (MLPerf Tiny): the reported figure is the median over ≥ 5 windows of ≥ 10 s
//!   ([`WindowRule`], [`median_of_windows`]).
//!
//! - **Task metrics** (anomaly detection, regression, agreement of continuous outputs) are defined
//!   in their modules' documentation ([`anomaly_scores`], [`events`], [`regression_scores`],
//!   [`output_agreement`]); their intervals come from a Poisson bootstrap of 400 resamples, one
//!   pass over data sorted once per resample, so a million windows take well under two seconds.
//!
//! Invalid input (no samples, NaN, mismatched lengths, out-of-range labels or options) is a
//! [`MeasureError`], never a NaN in the output, so every result type round-trips through JSON.

mod agreement;
mod anomaly;
mod blocks;
mod chart;
mod classify;
pub mod drift;
mod error;
mod events;
mod interval;
mod latency;
mod poisson;
mod quantile;
mod ratio;
mod regression;
mod rng;
mod windows;

pub use agreement::{Agreement, agreement};
pub use anomaly::{AnomalyScores, Curve, anomaly_scores, calibrated_threshold};
pub use blocks::{
    Block, BlockRatio, BlockSummary, block_intervals, block_ratio, min_blocks, run_to_run_spread,
};
pub use chart::{Bin, ecdf_points, histogram};
pub use classify::{ClassMetrics, Classification, argmax, classification};
pub use error::MeasureError;
pub use events::{EventScores, Segment, Timeline, events};
pub use interval::{ConfidenceInterval, wilson_interval};
pub use latency::{
    LatencyIntervals, LatencySummary, SummaryOptions, TukeyOutliers, loadgen_min_samples, summarize,
};
pub use poisson::{BootstrapOptions, Estimate, TASK_RESAMPLES};
pub use quantile::{normal_quantile, quantile_sorted};
pub use ratio::{RatioEstimate, RatioOptions, paired_ratio};
pub use regression::{
    BaselineScores, OutputAgreement, RegressionScores, output_agreement, regression_scores,
};
pub use rng::DEFAULT_SEED;
pub use windows::{TimedWindow, WindowRule, WindowsOutcome, median_of_windows};
