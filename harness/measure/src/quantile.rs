//! Order statistics: the one percentile definition the crate uses, the inverse normal and Student-t CDFs, and a bootstrap
//! resampler that evaluates quantiles of a resample without materialising or sorting it.

use crate::drift::ln_gamma;
use crate::rng::Rng;

/// Type-7 quantile (Hyndman & Fan 1996; R's default, numpy's `linear`) of an ascending, non-empty slice:
/// with h = (n − 1)·p, the value is x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]) (0-based).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    debug_assert!(!sorted.is_empty() && (0.0..=1.0).contains(&p));
    let (lo, frac) = rank(sorted.len(), p);
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// 0-based lower order-statistic index and interpolation weight for a type-7 quantile of `n` values.
fn rank(n: usize, p: f64) -> (usize, f64) {
    let h = (n - 1) as f64 * p;
    let lo = (h.floor() as usize).min(n - 1);
    (lo, h - lo as f64)
}

/// The standard normal quantile Φ⁻¹(p) for 0 < p < 1, by Acklam's rational approximation (relative error
/// below 1.2·10⁻⁹, far finer than any interval here needs).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - P_LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Student's t quantile for `df` ≥ 1 degrees of freedom and 0.5 ≤ p < 1, by bisection on the CDF
/// (the regularised incomplete beta function): to 1e-10, exact enough for any interval here.
pub(crate) fn student_t_quantile(p: f64, df: f64) -> f64 {
    debug_assert!((0.5..1.0).contains(&p) && df >= 1.0);
    // P[T ≤ t] for t ≥ 0.
    let cdf = |t: f64| 1.0 - 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    let mut hi = 1.0;
    while cdf(hi) < p {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    while hi - lo > 1e-10 * hi.max(1.0) {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < p { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

/// The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz's method),
/// taken on whichever side of the mean it converges fast.
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(b, a, 1.0 - x);
    }
    const TINY: f64 = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    d = if d.abs() < TINY { TINY } else { d }.recip();
    let mut f = d;
    for m in 1..300 {
        let m = m as f64;
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            d = if d.abs() < TINY { TINY } else { d }.recip();
            c = 1.0 + numerator / c;
            c = if c.abs() < TINY { TINY } else { c };
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * f / a
}

/// Draws bootstrap resamples of a sorted sample as multiplicity counts. Because the original is sorted,
/// one linear pass over the counts yields the mean and any order statistics of the resample: O(n) per
/// resample instead of copying and selecting, which keeps 2,000 resamples of 10⁵ samples well under a second.
pub(crate) struct Resampler<'a> {
    sorted: &'a [f64],
    counts: Vec<u32>,
}

impl<'a> Resampler<'a> {
    pub(crate) fn new(sorted: &'a [f64]) -> Self {
        Self {
            sorted,
            counts: vec![0; sorted.len()],
        }
    }

    /// Draws a fresh resample of the same size, with replacement.
    pub(crate) fn draw(&mut self, rng: &mut Rng) {
        self.counts.fill(0);
        let n = self.sorted.len();
        for _ in 0..n {
            self.counts[rng.below(n)] += 1;
        }
    }

    /// Mean of the current resample and its type-7 quantiles at `ps` (which must ascend) written to `out`.
    pub(crate) fn mean_and_quantiles(&self, ps: &[f64], out: &mut [f64]) -> f64 {
        weighted_mean_and_quantiles(self.sorted, &self.counts, self.sorted.len(), ps, out)
    }
}

/// Mean and type-7 quantiles at `ps` (ascending) of the multiset holding `sorted[i]` `counts[i]` times,
/// `total` (= Σ counts, positive) values in all, in one linear pass.
pub(crate) fn weighted_mean_and_quantiles(
    sorted: &[f64],
    counts: &[u32],
    total: usize,
    ps: &[f64],
    out: &mut [f64],
) -> f64 {
    debug_assert!(ps.windows(2).all(|w| w[0] <= w[1]) && ps.len() == out.len());
    debug_assert!(total > 0 && sorted.len() == counts.len());
    let n = total;
    // Each quantile needs the resample's order statistics at ranks lo and lo + 1; both ascend with p.
    let ranks: Vec<(usize, usize, f64)> = ps
        .iter()
        .map(|&p| {
            let (lo, frac) = rank(n, p);
            (lo, (lo + 1).min(n - 1), frac)
        })
        .collect();
    let mut lo_vals = vec![0.0; ps.len()];
    let mut hi_vals = vec![0.0; ps.len()];
    let (mut next_lo, mut next_hi) = (0, 0);
    let mut cumulative = 0usize;
    let mut sum = 0.0;
    // No early `continue` on zero counts: about 37% of counts are 0 at random, and the branch would
    // mispredict; a zero count leaves `cumulative` unchanged, so the rank checks stay false anyway.
    for (&x, &c) in sorted.iter().zip(counts) {
        sum += f64::from(c) * x;
        cumulative += c as usize;
        while next_lo < ranks.len() && ranks[next_lo].0 < cumulative {
            lo_vals[next_lo] = x;
            next_lo += 1;
        }
        while next_hi < ranks.len() && ranks[next_hi].1 < cumulative {
            hi_vals[next_hi] = x;
            next_hi += 1;
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = lo_vals[i] + ranks[i].2 * (hi_vals[i] - lo_vals[i]);
    }
    sum / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type7_matches_hand_computed_values() {
        let x = [1.0, 2.0, 3.0, 4.0, 10.0];
        // h = 4p: p=0.5 → x[2]; p=0.9 → h=3.6 → 4 + 0.6·6; p=0.25 → h=1 → x[1]; p=0.99 → h=3.96 → 4 + 0.96·6.
        assert_eq!(quantile_sorted(&x, 0.5), 3.0);
        assert!((quantile_sorted(&x, 0.9) - 7.6).abs() < 1e-12);
        assert_eq!(quantile_sorted(&x, 0.25), 2.0);
        assert!((quantile_sorted(&x, 0.99) - 9.76).abs() < 1e-12);
        assert_eq!(quantile_sorted(&x, 0.0), 1.0);
        assert_eq!(quantile_sorted(&x, 1.0), 10.0);
        // Even count: the median interpolates halfway, as the textbook median does.
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile_sorted(&[42.0], 0.999), 42.0);
    }

    #[test]
    fn normal_quantile_matches_tables() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.995) - 2.575_829_303_548_901).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.001) + 3.090_232_306_167_813).abs() < 1e-8);
    }

    #[test]
    fn student_t_quantile_matches_tables() {
        // Two-sided 95 % and 99 % critical values (any statistics table; scipy.stats.t.ppf).
        for (p, df, want) in [
            (0.975, 1.0, 12.706_204_736_174_7),
            (0.975, 2.0, 4.302_652_729_749_464),
            (0.975, 3.0, 3.182_446_305_284_263),
            (0.975, 9.0, 2.262_157_162_798_205),
            (0.975, 29.0, 2.045_229_642_132_703),
            (0.995, 4.0, 4.604_094_871_349_992),
            (0.5, 5.0, 0.0),
        ] {
            let got = student_t_quantile(p, df);
            assert!(
                (got - want).abs() < 1e-8,
                "t({p}, {df}) = {got}, want {want}"
            );
        }
        // Many degrees of freedom: the normal quantile.
        assert!((student_t_quantile(0.975, 1e6) - normal_quantile(0.975)).abs() < 1e-5);
    }

    #[test]
    fn counted_resample_matches_the_materialised_resample() {
        let mut rng = Rng::new(11);
        let mut data: Vec<f64> = (0..257).map(|_| rng.normal() * 5.0 + 50.0).collect();
        data.sort_by(f64::total_cmp);
        let ps = [0.0, 0.1, 0.5, 0.5, 0.9, 0.99, 1.0];
        let mut resampler = Resampler::new(&data);
        for _ in 0..20 {
            resampler.draw(&mut rng);
            let mut got = [0.0; 7];
            let mean = resampler.mean_and_quantiles(&ps, &mut got);

            let mut expanded: Vec<f64> = data
                .iter()
                .zip(&resampler.counts)
                .flat_map(|(&x, &c)| std::iter::repeat_n(x, c as usize))
                .collect();
            assert_eq!(expanded.len(), data.len());
            expanded.sort_by(f64::total_cmp);
            let want_mean = expanded.iter().sum::<f64>() / expanded.len() as f64;
            assert!((mean - want_mean).abs() < 1e-9);
            for (g, &p) in got.iter().zip(&ps) {
                assert_eq!(*g, quantile_sorted(&expanded, p), "p = {p}");
            }
        }
    }
}
