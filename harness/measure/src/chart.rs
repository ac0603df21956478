//! Downsampling for charts. Non-finite samples are skipped: a chart shows what can be drawn, while the
//! statistics functions reject such samples outright.

use serde::{Deserialize, Serialize};

/// One histogram bin `[lo, hi)`; the last bin also includes `hi`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

/// Equal-width histogram spanning min..max in `bins` bins. Empty when there are no finite samples or
/// `bins` is 0; a single zero-width bin when all samples are equal.
pub fn histogram(samples: &[f64], bins: usize) -> Vec<Bin> {
    let finite = || samples.iter().copied().filter(|x| x.is_finite());
    let Some((min, max)) = finite().fold(None, |acc: Option<(f64, f64)>, x| {
        Some(acc.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))))
    }) else {
        return Vec::new();
    };
    if bins == 0 {
        return Vec::new();
    }
    if min == max {
        return vec![Bin {
            lo: min,
            hi: max,
            count: finite().count() as u64,
        }];
    }
    let width = (max - min) / bins as f64;
    let mut out: Vec<Bin> = (0..bins)
        .map(|i| Bin {
            lo: min + width * i as f64,
            hi: if i + 1 == bins {
                max
            } else {
                min + width * (i + 1) as f64
            },
            count: 0,
        })
        .collect();
    for x in finite() {
        let i = (((x - min) / width) as usize).min(bins - 1);
        out[i].count += 1;
    }
    out
}

/// Points (x, F(x)) of the empirical CDF, F(x_(i)) = (i + 1)/n over the sorted finite samples, thinned to
/// at most `max_points` evenly spaced ranks. The first and last points are always the exact minimum (at
/// 1/n) and maximum (at 1); `max_points` below 2 is treated as 2.
pub fn ecdf_points(samples: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    let point = |i: usize| (sorted[i], (i + 1) as f64 / n as f64);
    if n <= max_points.max(2) {
        return (0..n).map(point).collect();
    }
    let m = max_points.max(2);
    (0..m)
        .map(|k| point(((k as f64 * (n - 1) as f64 / (m - 1) as f64).round() as usize).min(n - 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_and_counts() {
        let xs = [0.0, 1.0, 2.0, 2.5, 4.0, f64::NAN];
        let h = histogram(&xs, 4);
        assert_eq!(h.len(), 4);
        assert_eq!(h.iter().map(|b| b.count).collect::<Vec<_>>(), [1, 1, 2, 1]);
        assert_eq!((h[0].lo, h[0].hi, h[3].hi), (0.0, 1.0, 4.0));
        assert_eq!(
            histogram(&[3.0, 3.0], 5),
            [Bin {
                lo: 3.0,
                hi: 3.0,
                count: 2
            }]
        );
        assert!(histogram(&[], 5).is_empty());
        assert!(histogram(&[1.0, 2.0], 0).is_empty());
    }

    #[test]
    fn ecdf_keeps_exact_ends_when_thinning() {
        let xs: Vec<f64> = (0..1_000).rev().map(f64::from).collect();
        let pts = ecdf_points(&xs, 11);
        assert_eq!(pts.len(), 11);
        assert_eq!(pts[0], (0.0, 0.001));
        assert_eq!(pts[10], (999.0, 1.0));
        assert!(pts.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        assert_eq!(pts[5], (500.0, 0.501)); // rank round(5 · 999 / 10) = 500

        let all = ecdf_points(&[3.0, 1.0, 2.0], 10);
        assert_eq!(all, [(1.0, 1.0 / 3.0), (2.0, 2.0 / 3.0), (3.0, 1.0)]);
        assert_eq!(
            ecdf_points(&[5.0, 1.0, 9.0, 2.0], 0),
            [(1.0, 0.25), (9.0, 1.0)]
        );
        assert!(ecdf_points(&[], 10).is_empty());
    }
}
