//! The Poisson bootstrap: each observation gets an independent Poisson(1) weight per resample.
//!
//! For large n it is the classic multinomial bootstrap's equal (Hanley & MacGibbon 2006; Chamandy
//! et al. 2012), and its weights are drawn in whatever order the data lie, so one sequential pass
//! over data sorted once serves every resample: the AUC bootstrap needs no re-sort and no scatter.

use serde::{Deserialize, Serialize};

use crate::interval::{ConfidenceInterval, percentile_interval};
use crate::rng::Rng;

/// Resamples used for task-metric intervals unless the caller says otherwise: enough for the
/// 2.5 % and 97.5 % points to settle to about a tenth of the interval's width.
pub const TASK_RESAMPLES: usize = 400;

/// A figure with its percentile-bootstrap interval (`None` with too few observations to resample).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub ci: Option<ConfidenceInterval>,
}

/// How task metrics are resampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapOptions {
    pub resamples: usize,
    pub confidence: f64,
    pub seed: u64,
    /// Consecutive windows (in the order given) that share one weight: a block bootstrap, since
    /// windows cut with a stride shorter than their length share rows and are not independent.
    /// Windows of `rows` rows and stride `s` overlap for about `rows / s` windows.
    pub block: usize,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            resamples: TASK_RESAMPLES,
            confidence: 0.95,
            seed: crate::rng::DEFAULT_SEED,
            block: 1,
        }
    }
}

impl BootstrapOptions {
    /// Blocks covering `n` windows.
    pub(crate) fn blocks(&self, n: usize) -> usize {
        n.div_ceil(self.block.max(1))
    }

    /// The block window `i` belongs to.
    pub(crate) fn block_of(&self, i: usize) -> u32 {
        (i / self.block.max(1)) as u32
    }
}

/// 65,536 × P(Poisson(1) ≤ k) for k = 0…7; a 16-bit uniform above the last is weight 8 (the mass
/// beyond, 1e-6, is below the table's resolution and folds into 8).
const CDF: [u32; 8] = [24109, 48219, 60273, 64292, 65296, 65497, 65531, 65535];

#[inline]
fn poisson(u: u32) -> u8 {
    // Branch-free: weights are random, so a loop's exit would be mispredicted half the time.
    CDF.iter().map(|&c| u8::from(u >= c)).sum()
}

/// Poisson(1) weights, four per 64-bit draw.
pub(crate) struct Weights {
    rng: Rng,
}

impl Weights {
    pub(crate) fn new(seed: u64) -> Self {
        Weights {
            rng: Rng::new(seed),
        }
    }

    /// Fills `out` with fresh weights.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(4) {
            let bits = self.rng.next_u64();
            for (j, w) in chunk.iter_mut().enumerate() {
                *w = poisson(((bits >> (16 * j)) & 0xffff) as u32);
            }
        }
    }
}

/// `statistic` on each of `options.resamples` weight vectors of `blocks` weights, in order.
///
/// Resample r draws from its own stream (seeded by `seed` and r), so the cores can share the
/// resamples and the result does not depend on how many there are.
pub(crate) fn resample<T: Send>(
    options: &BootstrapOptions,
    blocks: usize,
    statistic: impl Fn(&[u8]) -> T + Sync,
) -> Vec<T> {
    let run = |range: std::ops::Range<usize>| {
        let mut buffer = vec![0u8; blocks];
        range
            .map(|r| {
                Weights::new(options.seed ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                    .fill(&mut buffer);
                statistic(&buffer)
            })
            .collect::<Vec<T>>()
    };
    // Small work is not worth a thread.
    let threads = if blocks * options.resamples < 4_000_000 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
    };
    let chunk = options.resamples.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.resamples)
            .step_by(chunk)
            .map(|start| {
                let run = &run;
                scope.spawn(move || run(start..(start + chunk).min(options.resamples)))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a bootstrap statistic does not panic"))
            .collect()
    })
}

/// The percentile interval of the finite `values` of a bootstrap; `None` when fewer than half of
/// the resamples gave one (e.g. a class vanished) or there were fewer than two.
pub(crate) fn interval_of(
    values: impl Iterator<Item = f64>,
    options: &BootstrapOptions,
) -> Option<ConfidenceInterval> {
    let mut stats: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    (options.resamples >= 2 && stats.len() * 2 >= options.resamples)
        .then(|| percentile_interval(&mut stats, options.confidence))
}

/// [`resample`] of one statistic straight into its interval.
pub(crate) fn interval(
    options: &BootstrapOptions,
    blocks: usize,
    statistic: impl Fn(&[u8]) -> f64 + Sync,
) -> Option<ConfidenceInterval> {
    interval_of(resample(options, blocks, statistic).into_iter(), options)
}

/// Per-block sums of `K` per-window quantities, so a resample of additive statistics costs one
/// step per block rather than per window. `max` columns (index ≥ `sums`) keep the block maximum.
pub(crate) struct Blocks<const K: usize> {
    totals: Vec<[f64; K]>,
    sums: usize,
}

impl<const K: usize> Blocks<K> {
    pub(crate) fn new(
        options: &BootstrapOptions,
        n: usize,
        sums: usize,
        value: impl Fn(usize) -> [f64; K],
    ) -> Self {
        let mut totals = vec![[0.0; K]; options.blocks(n)];
        for i in 0..n {
            let t = &mut totals[options.block_of(i) as usize];
            for (k, v) in value(i).into_iter().enumerate() {
                if k < sums {
                    t[k] += v;
                } else {
                    t[k] = t[k].max(v);
                }
            }
        }
        Blocks { totals, sums }
    }

    pub(crate) fn len(&self) -> usize {
        self.totals.len()
    }

    /// Σ weight × block sum, and the largest block maximum of blocks with weight.
    pub(crate) fn weighted(&self, weights: &[u8]) -> [f64; K] {
        let mut out = [0.0; K];
        for (t, &w) in self.totals.iter().zip(weights) {
            let w = f64::from(w);
            for k in 0..K {
                if k < self.sums {
                    out[k] += w * t[k];
                } else if w > 0.0 {
                    out[k] = out[k].max(t[k]);
                }
            }
        }
        out
    }

    /// The sums with every weight 1.
    pub(crate) fn total(&self) -> [f64; K] {
        self.weighted(&vec![1; self.totals.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_have_poisson_one_moments_and_masses() {
        let mut w = Weights::new(5);
        let n = 400_000;
        let mut buffer = vec![0u8; n as usize];
        w.fill(&mut buffer);
        let mut counts = [0u32; 9];
        for k in buffer {
            counts[k as usize] += 1;
        }
        let mean = counts
            .iter()
            .enumerate()
            .map(|(k, &c)| k as f64 * f64::from(c))
            .sum::<f64>()
            / f64::from(n);
        assert!((mean - 1.0).abs() < 0.005, "{mean}");
        // P(0) = P(1) = e^-1 = 0.3679, P(2) = 0.1839.
        for (k, p) in [(0, 0.3679), (1, 0.3679), (2, 0.1839), (3, 0.0613)] {
            let share = f64::from(counts[k]) / f64::from(n);
            assert!((share - p).abs() < 0.003, "P({k}) = {share}");
        }
    }

    #[test]
    fn the_interval_of_a_mean_covers_it_and_shrinks_with_n() {
        let width = |n: usize| {
            let xs: Vec<f64> = (0..n).map(|i| (i % 10) as f64).collect();
            let o = BootstrapOptions::default();
            let blocks = Blocks::new(&o, n, 2, |i| [xs[i], 1.0]);
            let ci = interval(&o, blocks.len(), |w| {
                let [s, t] = blocks.weighted(w);
                s / t
            })
            .unwrap();
            assert!(ci.contains(4.5), "{ci:?}");
            ci.hi - ci.lo
        };
        // The standard error of the mean of 0..9 (sd 2.87) is 2.87 / sqrt(n): ±0.25 at n = 500.
        let (small, large) = (width(500), width(8_000));
        assert!(
            (small / 2.0 - 1.96 * 2.872 / 500f64.sqrt()).abs() < 0.04,
            "{small}"
        );
        assert!((small / large - 4.0).abs() < 0.6, "{small} vs {large}");
    }
}
