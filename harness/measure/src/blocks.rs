//! Intervals that hold from run to run: resampling whole interleaved blocks, repeats first.
//!
//! Latency samples are not independent. A machine's speed changes in steps that last seconds (CPU
//! placement and frequency, neighbours on a shared host, DVFS and throttling on a board), so
//! neighbouring samples share a state and a per-sample bootstrap, which treats every sample as a
//! fresh draw, describes the spread of single samples within one state, not the uncertainty of the
//! figure: on this project's machines it gave a ratio ±1–2 % while runs minutes apart differed by
//! 60 %. The unit that is (nearly) independent is the interleaved block: the runner replays
//! `interleave_block` windows through one build, then the same windows through the next, so a
//! block pair (A's block and B's block over the same windows, seconds apart at most) sees one
//! machine state, and the ratio of their medians cancels most of it.
//!
//! - **Two levels.** Blocks belong to a replay (`repeat`). Each bootstrap resample first draws the
//!   replays with replacement, then, inside each drawn replay, its blocks (or block pairs) with
//!   replacement, and recomputes the statistic on the union — a two-stage bootstrap (Davison &
//!   Hinkley 1997, §3.8). Resampling both stages overstates the variance slightly when the replays
//!   are alike, which errs on the honest side; with one replay it is the plain block bootstrap.
//! - **Statistics.** A latency figure (median, p90 …) is recomputed on the resampled blocks' samples
//!   ([`block_intervals`]). An A/B ratio is the median over block pairs of median(B block) /
//!   median(A block), and its interval is that median's over resampled pairs ([`block_ratio`]),
//!   widened where needed to the distribution-free order-statistic interval of the pair ratios'
//!   median: with a handful of pairs the bootstrap of a median is coarse and runs narrow.
//! - **Few replays.** With R replays the bootstrap's outer stage has only R values to draw from, and
//!   a bootstrap over few clusters is too narrow (the few-clusters problem: Cameron, Gelbach & Miller
//!   2008): it draws the replay-level mean with variance (R − 1)/R · s²/R and cuts it at normal-like
//!   percentiles, where R estimates with unknown variance call for Student's t with R − 1 degrees of
//!   freedom — at R = 3 that is ±4.30 s/√R, against about ±1.6 s/√R from the bootstrap. So with two or
//!   more replays each figure also gets the t interval over the replays' own estimates (each replay's
//!   median pair ratio, on the log scale; each replay's latency figure), ȳ ± t(R − 1)·s/√R, and
//!   reports the hull of the intervals. The replays are independent draws of the machine's state only
//!   as far as they are apart in time and process: see the runner's `fresh_agent` (README).
//! - **Too few blocks.** Below [`min_blocks`] blocks (6 at 95 %) no distribution-free interval of a
//!   median exists even for independent units: the interval of the extremes, [min, max], covers the
//!   median with probability 1 − 2^(1 − n), under 95 % for n ≤ 5. Such a figure has no interval
//!   (`ci: None`), and gates call it INCONCLUSIVE, as they do for percentiles LoadGen calls
//!   insufficient.

use serde::{Deserialize, Serialize};

use crate::error::{MeasureError, check_confidence, check_finite};
use crate::interval::{ConfidenceInterval, percentile_interval};
use crate::latency::LatencyIntervals;
use crate::quantile::{quantile_sorted, student_t_quantile, weighted_mean_and_quantiles};
use crate::ratio::RatioOptions;
use crate::rng::Rng;

/// `len` consecutive measured samples taken in interleaved block `index` of replay `repeat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub repeat: u32,
    pub index: u32,
    pub len: u32,
}

/// Fewest independent blocks for a distribution-free two-sided interval of a median at
/// `confidence`: the smallest n with 1 − 2^(1 − n) ≥ confidence (6 at 95 %, 8 at 99 %).
pub fn min_blocks(confidence: f64) -> usize {
    (1..64)
        .find(|&n| 1.0 - 0.5_f64.powi(n as i32 - 1) >= confidence)
        .unwrap_or(64)
}

/// Distribution-free interval of the median of `sorted` (ascending) independent values: the order
/// statistics [x₍ₖ₎, x₍ₙ₊₁₋ₖ₎] with the largest k for which 2·P[Binomial(n, ½) < k] ≤ 1 − confidence
/// (e.g. [min, max] for n = 6 at 95 %). `None` below [`min_blocks`] values.
fn median_order_interval(sorted: &[f64], confidence: f64) -> Option<ConfidenceInterval> {
    let n = sorted.len();
    let alpha = 1.0 - confidence;
    // P[X ≤ j] for X ~ Binomial(n, ½), accumulated term by term.
    let (mut term, mut below, mut k) = (0.5_f64.powi(n as i32), 0.0, 0usize);
    for j in 0..n {
        below += term;
        if 2.0 * below > alpha {
            break;
        }
        k = j + 1;
        term *= (n - j) as f64 / (j + 1) as f64;
    }
    (k >= 1).then(|| ConfidenceInterval {
        lo: sorted[k - 1],
        hi: sorted[n - k],
        confidence,
    })
}

/// Student-t interval of the mean of per-replay estimates, ȳ ± t(R − 1)·s/√R: the outer level's
/// honest width when there are few replays. `None` below two replays.
fn replay_t_interval(values: &[f64], confidence: f64) -> Option<ConfidenceInterval> {
    let r = values.len();
    if r < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / r as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (r - 1) as f64;
    let half = student_t_quantile(1.0 - (1.0 - confidence) / 2.0, (r - 1) as f64)
        * (var / r as f64).sqrt();
    Some(ConfidenceInterval {
        lo: mean - half,
        hi: mean + half,
        confidence,
    })
}

/// The smallest interval holding both.
fn hull(a: ConfidenceInterval, b: Option<ConfidenceInterval>) -> ConfidenceInterval {
    match b {
        Some(b) => ConfidenceInterval {
            lo: a.lo.min(b.lo),
            hi: a.hi.max(b.hi),
            confidence: a.confidence,
        },
        None => a,
    }
}

/// How far one build's figure moved from run to run: (max − min) / median of its per-run values;
/// `None` without values or with a non-positive median.
pub fn run_to_run_spread(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let mid = quantile_sorted(&sorted, 0.5);
    (!sorted.is_empty() && mid > 0.0).then(|| (sorted[sorted.len() - 1] - sorted[0]) / mid)
}

/// Dependence-aware intervals of one build's latency sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockSummary {
    /// Blocks and replays the samples came in.
    pub blocks: usize,
    pub repeats: usize,
    /// Blocks an honest interval needs at this confidence ([`min_blocks`]).
    pub min_blocks: usize,
    /// Two-stage block-bootstrap intervals; `None` when there were too few blocks.
    pub ci: Option<LatencyIntervals>,
}

impl BlockSummary {
    pub fn too_few_blocks(&self) -> bool {
        self.ci.is_none()
    }
}

/// An A/B ratio judged over interleaved block pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockRatio {
    /// Median over block pairs of median(b's block) / median(a's block): above 1, b is slower.
    pub ratio: f64,
    /// Two-stage bootstrap interval of that median; `None` with fewer than `min_pairs` pairs.
    pub ci: Option<ConfidenceInterval>,
    /// True when the interval lies wholly outside [1 − noise, 1 + noise].
    pub significant: bool,
    pub noise: f64,
    pub pairs: usize,
    pub repeats: usize,
    pub min_pairs: usize,
    pub resamples: usize,
    pub seed: u64,
}

/// Blocks grouped by replay, in the order the replays first appear; each block as a sample range.
fn by_repeat(blocks: &[Block]) -> Vec<Vec<std::ops::Range<usize>>> {
    let mut repeats: Vec<(u32, Vec<std::ops::Range<usize>>)> = Vec::new();
    let mut at = 0usize;
    for b in blocks {
        let range = at..at + b.len as usize;
        at = range.end;
        if range.is_empty() {
            continue;
        }
        match repeats.iter_mut().find(|(r, _)| *r == b.repeat) {
            Some((_, v)) => v.push(range),
            None => repeats.push((b.repeat, vec![range])),
        }
    }
    repeats.into_iter().map(|(_, v)| v).collect()
}

fn check_layout(what: &'static str, samples: &[f64], blocks: &[Block]) -> Result<(), MeasureError> {
    let covered: usize = blocks.iter().map(|b| b.len as usize).sum();
    if covered != samples.len() {
        return Err(MeasureError::LengthMismatch {
            what,
            left: samples.len(),
            right: covered,
        });
    }
    check_finite(what, samples, 0)
}

/// Two-stage resampling: multiplicities of every unit (units numbered repeat by repeat), the
/// replays drawn first, then units inside each drawn replay.
fn draw_two_stage(sizes: &[usize], rng: &mut Rng, weights: &mut [u32]) {
    weights.fill(0);
    let offsets: Vec<usize> = sizes
        .iter()
        .scan(0, |acc, &k| {
            let at = *acc;
            *acc += k;
            Some(at)
        })
        .collect();
    for _ in 0..sizes.len() {
        let r = rng.below(sizes.len());
        for _ in 0..sizes[r] {
            weights[offsets[r] + rng.below(sizes[r])] += 1;
        }
    }
}

/// Latency intervals that resample whole blocks, replays first (see the module documentation).
/// Fails when the blocks do not add up to the samples, a sample is not finite, or the options are
/// bad; too few blocks is not an error but a summary without intervals.
pub fn block_intervals(
    samples_us: &[f64],
    blocks: &[Block],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Result<BlockSummary, MeasureError> {
    const WHAT: &str = "resample latency by block";
    check_confidence(WHAT, confidence)?;
    check_layout(WHAT, samples_us, blocks)?;
    let repeats = by_repeat(blocks);
    let units: Vec<std::ops::Range<usize>> = repeats.iter().flatten().cloned().collect();
    let need = min_blocks(confidence);
    let mut summary = BlockSummary {
        blocks: units.len(),
        repeats: repeats.len(),
        min_blocks: need,
        ci: None,
    };
    if units.len() < need || resamples == 0 {
        return Ok(summary);
    }
    // Sorted once with each sample's block, so a resample is a weight per block and one pass.
    let mut order: Vec<(f64, usize)> = units
        .iter()
        .enumerate()
        .flat_map(|(u, range)| samples_us[range.clone()].iter().map(move |&x| (x, u)))
        .collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let sorted: Vec<f64> = order.iter().map(|&(x, _)| x).collect();
    let sizes: Vec<usize> = repeats.iter().map(Vec::len).collect();
    const PS: [f64; 4] = [0.50, 0.90, 0.95, 0.99];
    let mut rng = Rng::new(seed);
    let mut weights = vec![0u32; units.len()];
    let mut counts = vec![0u32; sorted.len()];
    let mut means = Vec::with_capacity(resamples);
    let mut quantiles: [Vec<f64>; 4] = std::array::from_fn(|_| Vec::with_capacity(resamples));
    let mut out = [0.0; 4];
    for _ in 0..resamples {
        draw_two_stage(&sizes, &mut rng, &mut weights);
        let mut total = 0usize;
        for (c, &(_, u)) in counts.iter_mut().zip(&order) {
            *c = weights[u];
            total += *c as usize;
        }
        means.push(weighted_mean_and_quantiles(
            &sorted, &counts, total, &PS, &mut out,
        ));
        for (stats, &q) in quantiles.iter_mut().zip(&out) {
            stats.push(q);
        }
    }
    // Each replay's own mean and percentiles, for the outer level's t interval.
    let per_replay: Vec<[f64; 5]> = repeats
        .iter()
        .map(|units| {
            let mut xs: Vec<f64> = units
                .iter()
                .flat_map(|r| samples_us[r.clone()].iter().copied())
                .collect();
            xs.sort_unstable_by(f64::total_cmp);
            let mut out = [xs.iter().sum::<f64>() / xs.len() as f64, 0.0, 0.0, 0.0, 0.0];
            for (o, &p) in out[1..].iter_mut().zip(&PS) {
                *o = quantile_sorted(&xs, p);
            }
            out
        })
        .collect();
    let outer = |k: usize| {
        let values: Vec<f64> = per_replay.iter().map(|v| v[k]).collect();
        replay_t_interval(&values, confidence)
    };
    let [p50, p90, p95, p99] = quantiles.map(|mut s| percentile_interval(&mut s, confidence));
    summary.ci = Some(LatencyIntervals {
        mean: hull(percentile_interval(&mut means, confidence), outer(0)),
        p50: hull(p50, outer(1)),
        p90: hull(p90, outer(2)),
        p95: hull(p95, outer(3)),
        p99: hull(p99, outer(4)),
        resamples,
        seed,
    });
    Ok(summary)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

/// Compares b against baseline a over their interleaved block pairs (same replay, same block
/// index): the median over pairs of median(b block) / median(a block), with a two-stage bootstrap
/// interval (see the module documentation). Blocks only one side has are left out (a build
/// rejected part-way). Fails on mismatched layouts, non-finite samples, a non-positive baseline
/// block median, no common block, or bad options.
pub fn block_ratio(
    a: &[f64],
    a_blocks: &[Block],
    b: &[f64],
    b_blocks: &[Block],
    opts: &RatioOptions,
) -> Result<BlockRatio, MeasureError> {
    const WHAT: &str = "compare variants by block pairs";
    opts.check(WHAT)?;
    check_layout("compare variants by block pairs: baseline a", a, a_blocks)?;
    check_layout("compare variants by block pairs: candidate b", b, b_blocks)?;
    let ranges = |blocks: &[Block]| {
        let mut at = 0usize;
        blocks
            .iter()
            .map(|blk| {
                let r = at..at + blk.len as usize;
                at = r.end;
                ((blk.repeat, blk.index), r)
            })
            .filter(|(_, r)| !r.is_empty())
            .collect::<Vec<_>>()
    };
    let b_ranges = ranges(b_blocks);
    // Pair ratios grouped by replay, replays in order of first appearance.
    let mut repeats: Vec<(u32, Vec<f64>)> = Vec::new();
    for (key, ra) in ranges(a_blocks) {
        let Some((_, rb)) = b_ranges.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        let ma = median(&a[ra.clone()]);
        if ma <= 0.0 {
            return Err(MeasureError::NotPositive {
                what: "compare variants by block pairs: baseline a",
                index: ra.start,
                value: ma,
            });
        }
        let ratio = median(&b[rb.clone()]) / ma;
        match repeats.iter_mut().find(|(r, _)| *r == key.0) {
            Some((_, v)) => v.push(ratio),
            None => repeats.push((key.0, vec![ratio])),
        }
    }
    let ratios: Vec<f64> = repeats
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    if ratios.is_empty() {
        return Err(MeasureError::Empty {
            what: WHAT,
            detail: " in blocks both builds measured".to_owned(),
        });
    }
    let min_pairs = min_blocks(opts.confidence);
    let ci = (ratios.len() >= min_pairs && opts.bootstrap_resamples > 0).then(|| {
        let sizes: Vec<usize> = repeats.iter().map(|(_, v)| v.len()).collect();
        let mut rng = Rng::new(opts.seed);
        let mut weights = vec![0u32; ratios.len()];
        let mut drawn = Vec::with_capacity(ratios.len() * 2);
        let mut medians: Vec<f64> = (0..opts.bootstrap_resamples)
            .map(|_| {
                draw_two_stage(&sizes, &mut rng, &mut weights);
                drawn.clear();
                for (&r, &w) in ratios.iter().zip(&weights) {
                    drawn.extend(std::iter::repeat_n(r, w as usize));
                }
                drawn.sort_unstable_by(f64::total_cmp);
                quantile_sorted(&drawn, 0.5)
            })
            .collect();
        // With few pairs the bootstrap of a median is coarse and runs narrow; the order-statistic
        // interval is exact for independent pairs but blind to the replay level. Their hull holds
        // under either assumption.
        let boot = percentile_interval(&mut medians, opts.confidence);
        let mut sorted = ratios.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let ci = hull(boot, median_order_interval(&sorted, opts.confidence));
        // The replays' own median ratios, on the log scale where a ratio's errors are symmetric.
        let logs: Option<Vec<f64>> = repeats
            .iter()
            .map(|(_, v)| {
                let m = median(v);
                (m > 0.0).then(|| m.ln())
            })
            .collect();
        let outer = logs
            .and_then(|l| replay_t_interval(&l, opts.confidence))
            .map(|c| ConfidenceInterval {
                lo: c.lo.exp(),
                hi: c.hi.exp(),
                confidence: c.confidence,
            });
        hull(ci, outer)
    });
    Ok(BlockRatio {
        ratio: median(&ratios),
        significant: ci.is_some_and(|c| c.hi < 1.0 - opts.noise || c.lo > 1.0 + opts.noise),
        ci,
        noise: opts.noise,
        pairs: ratios.len(),
        repeats: repeats.len(),
        min_pairs,
        resamples: opts.bootstrap_resamples,
        seed: opts.seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::{SummaryOptions, summarize};
    use crate::ratio::paired_ratio;
    use crate::rng::Rng;

    #[test]
    fn order_interval_matches_the_binomial_table() {
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        // n = 6: [min, max] (coverage 96.9 %); n = 5 has none at 95 %.
        let six = median_order_interval(&xs[..6], 0.95).unwrap();
        assert_eq!((six.lo, six.hi), (1.0, 6.0));
        assert!(median_order_interval(&xs[..5], 0.95).is_none());
        // n = 20: k = 6, [x₍₆₎, x₍₁₅₎], coverage 95.9 %.
        let twenty = median_order_interval(&xs, 0.95).unwrap();
        assert_eq!((twenty.lo, twenty.hi), (6.0, 15.0));
    }

    #[test]
    fn six_blocks_at_95_percent_eight_at_99() {
        assert_eq!(min_blocks(0.95), 6);
        assert_eq!(min_blocks(0.99), 8);
        assert_eq!(min_blocks(0.5), 2);
    }

    /// A fake clock for two builds interleaved the way the runner replays them: `repeats` passes
    /// of `blocks` blocks of `len` windows, A's block then B's. The machine holds one of two states
    /// for `stretch` consecutive blocks at a time; in the fast state A takes 63 µs and B 98 µs
    /// (ratio 1.56), in the slow one A takes 98 µs and B 117 µs (ratio 1.19), each sample with 1 %
    /// jitter — the two clusters seen on this project's CI machine.
    struct TwoLevels {
        a: Vec<f64>,
        b: Vec<f64>,
        layout: Vec<Block>,
    }

    fn two_levels(seed: u64, repeats: u32, blocks: u32, len: u32, stretch: u32) -> TwoLevels {
        let mut rng = Rng::new(seed);
        let (mut a, mut b, mut layout) = (Vec::new(), Vec::new(), Vec::new());
        let mut k = 0;
        for repeat in 0..repeats {
            for index in 0..blocks {
                let fast = (k / stretch).is_multiple_of(2);
                k += 1;
                let (la, lb) = if fast { (63.0, 98.0) } else { (98.0, 117.0) };
                for _ in 0..len {
                    a.push(la * (1.0 + 0.01 * rng.normal()));
                    b.push(lb * (1.0 + 0.01 * rng.normal()));
                }
                layout.push(Block { repeat, index, len });
            }
        }
        TwoLevels { a, b, layout }
    }

    fn opts() -> RatioOptions {
        RatioOptions {
            bootstrap_resamples: 1_000,
            ..RatioOptions::default()
        }
    }

    /// Fewer resamples where many runs are judged: coverage needs no fine interval edges.
    fn few() -> RatioOptions {
        RatioOptions {
            bootstrap_resamples: 300,
            ..RatioOptions::default()
        }
    }

    #[test]
    fn block_intervals_widen_to_both_machine_states_where_per_sample_ones_do_not() {
        // Two replays of 12 blocks of 64, the state switching every 5 blocks: 60 % fast, 40 % slow.
        let run = two_levels(3, 2, 12, 64, 5);
        let per_sample = paired_ratio(&run.a, &run.b, &opts()).unwrap();
        let blocks = block_ratio(&run.a, &run.layout, &run.b, &run.layout, &opts()).unwrap();
        let ci = blocks.ci.expect("24 pairs are enough");
        assert_eq!((blocks.pairs, blocks.repeats), (24, 2));
        assert!(
            ci.lo <= 1.20 && ci.hi >= 1.55,
            "block pairs cover both states' ratios: {ci:?}"
        );
        // Pooled medians both fall in the majority (fast) state: the per-sample interval is a
        // hair's width there and blind to the slow state's 1.19.
        assert!(
            !per_sample.ci.contains(1.19) && per_sample.ci.hi - per_sample.ci.lo < 0.02,
            "per-sample interval: {:?}",
            per_sample.ci
        );
        assert!(!blocks.significant || ci.lo > 1.01, "{blocks:?}");

        // One build's median: per-sample within one state, by block across both.
        let fine = summarize(
            &run.a,
            &SummaryOptions {
                bootstrap_resamples: 1_000,
                ..SummaryOptions::default()
            },
        )
        .unwrap()
        .ci
        .unwrap();
        let coarse = block_intervals(&run.a, &run.layout, 1_000, 0.95, 1)
            .unwrap()
            .ci
            .unwrap();
        assert!(
            fine.p50.hi < 70.0,
            "per-sample p50 stays in the fast state: {:?}",
            fine.p50
        );
        assert!(
            coarse.p50.lo <= 64.0 && coarse.p50.hi >= 97.0,
            "block p50 spans both states: {:?}",
            coarse.p50
        );
    }

    #[test]
    fn steady_machine_gives_a_tight_interval_around_the_true_ratio() {
        // One state throughout (stretch longer than the run): ratio 98 / 63.
        let run = two_levels(5, 1, 12, 64, 1_000);
        let r = block_ratio(&run.a, &run.layout, &run.b, &run.layout, &opts()).unwrap();
        let ci = r.ci.unwrap();
        assert!(ci.contains(98.0 / 63.0) && ci.hi - ci.lo < 0.02, "{ci:?}");
        assert!(r.significant);
    }

    #[test]
    fn too_few_blocks_gives_no_interval() {
        let run = two_levels(7, 1, 5, 64, 1_000);
        let r = block_ratio(&run.a, &run.layout, &run.b, &run.layout, &opts()).unwrap();
        assert_eq!((r.pairs, r.min_pairs), (5, 6));
        assert!(r.ci.is_none() && !r.significant);
        let s = block_intervals(&run.a, &run.layout, 100, 0.95, 1).unwrap();
        assert!(s.too_few_blocks() && s.blocks == 5);
    }

    #[test]
    fn coverage_across_independent_runs_holds_where_per_sample_does_not() {
        // Twenty runs, each starting in a random state; the "truth" is the median of the runs'
        // estimates, as in the acceptance benchmark.
        let runs: Vec<TwoLevels> = (0..20)
            .map(|s| {
                let mut rng = Rng::new(100 + s);
                let offset = rng.below(5) as u32;
                let mut run = two_levels(200 + s, 3, 12 + offset, 32, 4);
                // Drop the first `offset` blocks so runs start in different phases of the states.
                let skip: usize = run.layout[..offset as usize]
                    .iter()
                    .map(|b| b.len as usize)
                    .sum();
                run.a.drain(..skip);
                run.b.drain(..skip);
                run.layout.drain(..offset as usize);
                run
            })
            .collect();
        let estimates: Vec<BlockRatio> = runs
            .iter()
            .map(|r| block_ratio(&r.a, &r.layout, &r.b, &r.layout, &few()).unwrap())
            .collect();
        let naive: Vec<_> = runs
            .iter()
            .map(|r| paired_ratio(&r.a, &r.b, &few()).unwrap())
            .collect();
        let centre = median(&estimates.iter().map(|e| e.ratio).collect::<Vec<_>>());
        let covered = estimates
            .iter()
            .filter(|e| e.ci.unwrap().contains(centre))
            .count();
        let naive_centre = median(&naive.iter().map(|e| e.ratio).collect::<Vec<_>>());
        let naive_covered = naive.iter().filter(|e| e.ci.contains(naive_centre)).count();
        assert!(
            covered >= 17,
            "{covered} of 20 block intervals cover {centre}"
        );
        assert!(
            naive_covered <= 10,
            "{naive_covered} of 20 per-sample intervals"
        );
    }

    /// Replays that each hold their own machine state for the whole pass: inside a replay the block
    /// pairs agree to 1 %, between replays the ratio moves by 10 % (log-normal), so only the outer
    /// level can see the uncertainty, and with 3 replays only a t interval sizes it honestly.
    fn state_per_replay(seed: u64, repeats: u32) -> TwoLevels {
        let mut rng = Rng::new(seed);
        let (mut a, mut b, mut layout) = (Vec::new(), Vec::new(), Vec::new());
        for repeat in 0..repeats {
            let ratio = 1.5 * (0.10 * rng.normal()).exp();
            for index in 0..6 {
                for _ in 0..32 {
                    a.push(60.0 * (1.0 + 0.01 * rng.normal()));
                    b.push(60.0 * ratio * (1.0 + 0.01 * rng.normal()));
                }
                layout.push(Block {
                    repeat,
                    index,
                    len: 32,
                });
            }
        }
        TwoLevels { a, b, layout }
    }

    #[test]
    fn few_replays_that_differ_get_a_student_t_interval() {
        let (runs, mut covered, mut median_covered) = (40, 0, 0);
        for s in 0..runs {
            let run = state_per_replay(500 + s, 3);
            let r = block_ratio(&run.a, &run.layout, &run.b, &run.layout, &few()).unwrap();
            let ci = r.ci.unwrap();
            // The truth is the centre of the replay states, 1.5.
            covered += usize::from(ci.contains(1.5));
            let lat = block_intervals(&run.b, &run.layout, 300, 0.95, s).unwrap();
            median_covered += usize::from(lat.ci.unwrap().p50.contains(90.0));
        }
        // 95 % nominal; 40 runs put 34 at about the 1st percentile of Binomial(40, 0.95).
        assert!(
            covered >= 34,
            "{covered} of {runs} ratio intervals cover 1.5"
        );
        assert!(
            median_covered >= 34,
            "{median_covered} of {runs} p50 intervals cover 90 µs"
        );

        // The t interval itself: three replay ratios 1.2, 1.35, 1.5 (blocks exact within each).
        let (mut a, mut b, mut layout) = (Vec::new(), Vec::new(), Vec::new());
        for (repeat, ratio) in [1.2, 1.35, 1.5].into_iter().enumerate() {
            for index in 0..4 {
                a.extend([100.0; 8]);
                b.extend([100.0 * ratio; 8]);
                layout.push(Block {
                    repeat: repeat as u32,
                    index,
                    len: 8,
                });
            }
        }
        let ci = block_ratio(&a, &layout, &b, &layout, &opts())
            .unwrap()
            .ci
            .unwrap();
        let logs = [1.2_f64.ln(), 1.35_f64.ln(), 1.5_f64.ln()];
        let want = replay_t_interval(&logs, 0.95).unwrap();
        assert!(
            (ci.lo - want.lo.exp()).abs() < 1e-9 && (ci.hi - want.hi.exp()).abs() < 1e-9,
            "{ci:?} is the t interval exp({want:?})"
        );
        // ±4.30 · s/√3 with s = 0.1116 on the log scale: about [1.03, 1.78].
        assert!(ci.lo < 1.05 && ci.hi > 1.75, "{ci:?}");
    }

    #[test]
    fn rejects_layouts_that_do_not_match_the_samples() {
        let blocks = [Block {
            repeat: 0,
            index: 0,
            len: 3,
        }];
        assert!(matches!(
            block_intervals(&[1.0, 2.0], &blocks, 10, 0.95, 1),
            Err(MeasureError::LengthMismatch { .. })
        ));
        assert!(matches!(
            block_ratio(&[1.0; 3], &blocks, &[1.0; 3], &[], &opts()),
            Err(MeasureError::LengthMismatch { .. })
        ));
        let other = [Block {
            repeat: 1,
            index: 0,
            len: 3,
        }];
        assert!(matches!(
            block_ratio(&[1.0; 3], &blocks, &[1.0; 3], &other, &opts()),
            Err(MeasureError::Empty { .. })
        ));
    }
}
