//! Distribution drift between a reference sample and a new one: what `gauntlet drift` judges a
//! champion's fresh recordings by.
//!
//! # Definitions
//!
//! - **PSI** (population stability index) = Σᵢ (qᵢ − pᵢ)·ln(qᵢ / pᵢ) over bins, pᵢ the reference's
//!   share of bin i and qᵢ the new sample's. The bins are cut at the reference's type-7 deciles
//!   (`bins` − 1 interior edges at k/`bins`, k = 1…`bins` − 1; repeated edges, from ties, merged),
//!   and are closed on the right: a value equal to an edge falls into the bin below it, so a
//!   reference with heavy ties still puts each tied value in one bin. A share of 0 (a bin one side
//!   never reaches) is replaced by [`PSI_EPSILON`] on that side, so PSI stays finite; the share is
//!   not renormalised. Rules of thumb: below 0.1 stable, 0.1–0.2 moderate, above 0.2 a shift.
//! - **KS** is the two-sample Kolmogorov–Smirnov statistic D = supₓ |F_ref(x) − F_new(x)| over the
//!   empirical CDFs (ties step both together). Its two-sided p-value is exact when m·n ≤
//!   [`KS_EXACT_LIMIT`]: the share of the C(m+n, m) equally likely orderings of the pooled sample
//!   whose path from (0, 0) to (m, n) leaves the band |i/m − j/n| < D (as SciPy's `method="exact"`,
//!   which also ignores ties). Above it the asymptotic Kolmogorov tail Q(√(mn/(m+n))·D) is used,
//!   Q(λ) = 2 Σₖ (−1)ᵏ⁻¹ e^(−2k²λ²) (SciPy's `kstwobign.sf`).
//! - **Correction across features**: Holm's step-down adjustment of the KS p-values ([`holm`]),
//!   which controls the chance that *any* feature is flagged when none moved at the nominal α.
//! - **Shift in reference-σ units**: mean shift (mean_new − mean_ref) / σ_ref and spread change
//!   (σ_new − σ_ref) / σ_ref, σ the sample standard deviation (n − 1). Absent when σ_ref = 0.
//! - **Class mix**: Pearson's χ² test of homogeneity of the 2 × k table of predicted-class counts
//!   (reference, new), classes absent from both left out, df = k − 1, no continuity correction
//!   (SciPy's `chi2_contingency(..., correction=False)`).
//!
//! Every p-value here assumes independent samples. Windows cut with a stride shorter than the
//! window overlap and neighbouring readings are correlated, so on recordings the p-values are
//! optimistic about significance: gates judge a shift by its size and use the p-value only to
//! refuse calling a large-looking shift real on too few windows.

use serde::{Deserialize, Serialize};

use crate::MeasureError;

/// The share an empty bin is given in PSI, on the side that never reaches it.
pub const PSI_EPSILON: f64 = 1e-4;
/// Largest m·n for which the KS p-value is computed exactly (an O(m·n) lattice count).
pub const KS_EXACT_LIMIT: u64 = 10_000_000;
/// PSI bins when the caller does not choose (deciles of the reference).
pub const DEFAULT_PSI_BINS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Psi {
    pub value: f64,
    /// Interior bin edges (reference quantiles, ties merged): bin i is (edgeᵢ₋₁, edgeᵢ].
    pub edges: Vec<f64>,
    /// Each bin's share of the reference and of the new sample, before the epsilon.
    pub reference: Vec<f64>,
    pub new: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    Exact,
    Asymptotic,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ks {
    pub statistic: f64,
    pub p_value: f64,
    pub method: KsMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    /// (mean_new − mean_ref) / σ_ref.
    pub mean_sd: Option<f64>,
    /// (σ_new − σ_ref) / σ_ref.
    pub sd_change: Option<f64>,
    pub reference_mean: f64,
    pub reference_sd: f64,
    pub new_mean: f64,
    pub new_sd: f64,
}

/// One variable compared between the reference and the new sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub n_reference: usize,
    pub n_new: usize,
    pub psi: Psi,
    pub ks: Ks,
    pub shift: Shift,
}

/// [`Comparison`] of every column, with the KS p-values Holm-adjusted across them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub comparison: Comparison,
    pub p_adjusted: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChiSquare {
    pub statistic: f64,
    pub df: usize,
    pub p_value: f64,
}

/// Row-major values: `values.len() / columns` rows of `columns` values each.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    pub values: &'a [f32],
    pub columns: usize,
}

impl<'a> Matrix<'a> {
    pub fn new(values: &'a [f32], columns: usize) -> Self {
        Matrix { values, columns }
    }

    pub fn rows(&self) -> usize {
        self.values.len().checked_div(self.columns).unwrap_or(0)
    }

    /// Column `c`, sorted ascending, into `out` (reused so a wide matrix costs one buffer).
    fn sorted_column(&self, c: usize, out: &mut Vec<f32>) {
        out.clear();
        out.extend(self.values.iter().skip(c).step_by(self.columns));
        out.sort_unstable_by(f32::total_cmp);
    }
}

fn check(what: &'static str, sorted: &[f32], side: &str) -> Result<(), MeasureError> {
    if sorted.is_empty() {
        return Err(MeasureError::Empty {
            what,
            detail: format!(" in the {side} sample"),
        });
    }
    // Sorted by total order, NaN and infinities sit at the ends; the index is in sorted order.
    match sorted.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MeasureError::NonFinite {
            what,
            index,
            value: f64::from(sorted[index]),
        }),
        None => Ok(()),
    }
}

/// PSI of two ascending samples, with `bins` reference-quantile bins.
pub fn psi_sorted(reference: &[f32], new: &[f32], bins: usize) -> Result<Psi, MeasureError> {
    check("psi", reference, "reference")?;
    check("psi", new, "new")?;
    if bins < 2 {
        return Err(MeasureError::InvalidOption {
            what: "psi",
            field: "bins",
            reason: format!("is {bins}, needs at least 2"),
        });
    }
    let mut edges: Vec<f64> = Vec::with_capacity(bins - 1);
    for e in quantile_points(reference, bins) {
        if edges.last() != Some(&e) {
            edges.push(e);
        }
    }
    let shares = |sorted: &[f32]| -> Vec<f64> {
        let n = sorted.len() as f64;
        let mut below = 0usize;
        let mut out = Vec::with_capacity(edges.len() + 1);
        for &e in &edges {
            let upto = sorted.partition_point(|&x| f64::from(x) <= e);
            out.push((upto - below) as f64 / n);
            below = upto;
        }
        out.push((sorted.len() - below) as f64 / n);
        out
    };
    let (p, q) = (shares(reference), shares(new));
    let value = p
        .iter()
        .zip(&q)
        .map(|(&p, &q)| {
            let (p, q) = (p.max(PSI_EPSILON), q.max(PSI_EPSILON));
            (q - p) * (q / p).ln()
        })
        .sum();
    Ok(Psi {
        value,
        edges,
        reference: p,
        new: q,
    })
}

/// The type-7 quantiles at k/bins, k = 1…bins − 1, of an ascending sample.
fn quantile_points(sorted: &[f32], bins: usize) -> Vec<f64> {
    let n = sorted.len();
    (1..bins)
        .map(|k| {
            let h = (n - 1) as f64 * k as f64 / bins as f64;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let (a, b) = (f64::from(sorted[lo]), f64::from(sorted[hi]));
            a + (h - lo as f64) * (b - a)
        })
        .collect()
}

/// Two-sample KS statistic and two-sided p-value of two ascending samples.
pub fn ks_sorted(a: &[f32], b: &[f32]) -> Result<Ks, MeasureError> {
    check("ks", a, "reference")?;
    check("ks", b, "new")?;
    let (m, n) = (a.len() as u64, b.len() as u64);
    // D·m·n as an integer: |i·n − j·m| at every step of the merged order.
    let (mut i, mut j, mut widest) = (0usize, 0usize, 0u64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
        widest = widest.max((i as u64 * n).abs_diff(j as u64 * m));
    }
    let statistic = widest as f64 / (m * n) as f64;
    let (p_value, method) = if m * n <= KS_EXACT_LIMIT {
        (ks_exact_p(m, n, widest), KsMethod::Exact)
    } else {
        let en = (m * n) as f64 / (m + n) as f64;
        (kolmogorov_sf(en.sqrt() * statistic), KsMethod::Asymptotic)
    };
    Ok(Ks {
        statistic,
        p_value: p_value.clamp(0.0, 1.0),
        method,
    })
}

/// P(D·m·n ≥ h) over uniformly random orderings of m + n values: one minus the probability that
/// the path stays strictly inside |i·n − j·m| < h. Built as probabilities, step by step (the next
/// value is from the first sample with chance (m − i)/(m + n − i − j)), so nothing overflows.
fn ks_exact_p(m: u64, n: u64, h: u64) -> f64 {
    if h == 0 {
        return 1.0;
    }
    let inside = |i: u64, j: u64| (i * n).abs_diff(j * m) < h;
    let mut row = vec![0.0f64; n as usize + 1];
    for i in 0..=m {
        for j in 0..=n {
            let here = if i == 0 && j == 0 {
                1.0
            } else if !inside(i, j) {
                0.0
            } else {
                let left = m + n - i - j + 1;
                let from_a = if i > 0 {
                    row[j as usize] * (m - i + 1) as f64 / left as f64
                } else {
                    0.0
                };
                let from_b = if j > 0 {
                    row[j as usize - 1] * (n - j + 1) as f64 / left as f64
                } else {
                    0.0
                };
                from_a + from_b
            };
            row[j as usize] = here;
        }
    }
    1.0 - row[n as usize]
}

/// The Kolmogorov distribution's upper tail Q(λ) = P(K > λ).
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.18 {
        // The alternating series converges slowly here; Jacobi's dual form converges fast.
        let c = std::f64::consts::PI.powi(2) / (8.0 * lambda * lambda);
        let s: f64 = (1..=8)
            .map(|k| (-((2 * k - 1) as f64).powi(2) * c).exp())
            .sum();
        return 1.0 - (std::f64::consts::TAU).sqrt() / lambda * s;
    }
    let s: f64 = (1..=100)
        .map(|k| {
            let sign = if k % 2 == 1 { 1.0 } else { -1.0 };
            sign * (-2.0 * (k * k) as f64 * lambda * lambda).exp()
        })
        .sum();
    (2.0 * s).clamp(0.0, 1.0)
}

fn mean_sd(sorted: &[f32]) -> (f64, f64) {
    let n = sorted.len() as f64;
    let mean = sorted.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let ss: f64 = sorted.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum();
    let sd = if sorted.len() > 1 {
        (ss / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// Mean and spread of `new` in units of the reference's σ.
pub fn shift(reference: &[f32], new: &[f32]) -> Result<Shift, MeasureError> {
    check("shift", reference, "reference")?;
    check("shift", new, "new")?;
    let (reference_mean, reference_sd) = mean_sd(reference);
    let (new_mean, new_sd) = mean_sd(new);
    let per_sd = |x: f64| (reference_sd > 0.0).then(|| x / reference_sd);
    Ok(Shift {
        mean_sd: per_sd(new_mean - reference_mean),
        sd_change: per_sd(new_sd - reference_sd),
        reference_mean,
        reference_sd,
        new_mean,
        new_sd,
    })
}

/// PSI, KS and shift of one variable; sorts copies of both samples.
pub fn compare(reference: &[f32], new: &[f32], bins: usize) -> Result<Comparison, MeasureError> {
    let mut r = reference.to_vec();
    let mut q = new.to_vec();
    r.sort_unstable_by(f32::total_cmp);
    q.sort_unstable_by(f32::total_cmp);
    compare_sorted(&r, &q, bins)
}

fn compare_sorted(r: &[f32], q: &[f32], bins: usize) -> Result<Comparison, MeasureError> {
    Ok(Comparison {
        n_reference: r.len(),
        n_new: q.len(),
        psi: psi_sorted(r, q, bins)?,
        ks: ks_sorted(r, q)?,
        shift: shift(r, q)?,
    })
}

/// Every column of `new` against the same column of `reference`, KS p-values Holm-adjusted
/// across columns. Holds two sorted columns at a time beside the inputs.
pub fn input_drift(
    reference: Matrix,
    new: Matrix,
    bins: usize,
) -> Result<Vec<FeatureDrift>, MeasureError> {
    if reference.columns != new.columns {
        return Err(MeasureError::LengthMismatch {
            what: "input drift columns",
            left: reference.columns,
            right: new.columns,
        });
    }
    let (mut r, mut q) = (Vec::new(), Vec::new());
    let comparisons = (0..reference.columns)
        .map(|c| {
            reference.sorted_column(c, &mut r);
            new.sorted_column(c, &mut q);
            compare_sorted(&r, &q, bins)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let p: Vec<f64> = comparisons.iter().map(|c| c.ks.p_value).collect();
    Ok(comparisons
        .into_iter()
        .zip(holm(&p))
        .map(|(comparison, p_adjusted)| FeatureDrift {
            comparison,
            p_adjusted,
        })
        .collect())
}

/// Holm's step-down adjusted p-values, in the input's order: the i-th smallest (0-based) of k is
/// multiplied by k − i, made monotone, capped at 1.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let k = p.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; k];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((k - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// χ² test that two samples of class counts come from the same class mix.
pub fn class_mix(reference: &[u64], new: &[u64]) -> Result<ChiSquare, MeasureError> {
    if reference.len() != new.len() {
        return Err(MeasureError::LengthMismatch {
            what: "class mix",
            left: reference.len(),
            right: new.len(),
        });
    }
    let (nr, nn) = (
        reference.iter().sum::<u64>() as f64,
        new.iter().sum::<u64>() as f64,
    );
    if nr == 0.0 || nn == 0.0 {
        return Err(MeasureError::Empty {
            what: "class mix",
            detail: format!(
                " in the {} sample",
                if nr == 0.0 { "reference" } else { "new" }
            ),
        });
    }
    let total = nr + nn;
    let mut statistic = 0.0;
    let mut classes = 0usize;
    for (&a, &b) in reference.iter().zip(new) {
        let column = (a + b) as f64;
        if column == 0.0 {
            continue;
        }
        classes += 1;
        for (observed, row) in [(a as f64, nr), (b as f64, nn)] {
            let expected = row * column / total;
            statistic += (observed - expected).powi(2) / expected;
        }
    }
    let df = classes.saturating_sub(1);
    let p_value = if df == 0 {
        1.0
    } else {
        gamma_q(df as f64 / 2.0, statistic / 2.0)
    };
    Ok(ChiSquare {
        statistic,
        df,
        p_value,
    })
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error ≈ 1e-15).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let s = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |s, (i, &g)| s + g / (x + i as f64 + 1.0));
    0.5 * std::f64::consts::TAU.ln() + (x + 0.5) * t.ln() - t + s.ln()
}

/// The regularized upper incomplete gamma Q(a, x): a series below a + 1, a continued fraction
/// (modified Lentz) above, as in Numerical Recipes §6.2.
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        return (1.0 - sum * front).clamp(0.0, 1.0);
    }
    let tiny = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..1000 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (front * h).clamp(0.0, 1.0)
}

/// Reference and new counts over shared equal-width bins spanning both samples, for drawing them
/// one over the other. Non-finite values are skipped; empty when neither has a finite value.
pub fn paired_histogram(reference: &[f32], new: &[f32], bins: usize) -> Vec<PairedBin> {
    let finite = || {
        reference
            .iter()
            .chain(new)
            .map(|&x| f64::from(x))
            .filter(|x| x.is_finite())
    };
    let Some((lo, hi)) = finite().fold(None, |acc: Option<(f64, f64)>, x| {
        Some(acc.map_or((x, x), |(a, b)| (a.min(x), b.max(x))))
    }) else {
        return Vec::new();
    };
    let bins = if lo == hi { 1 } else { bins.max(1) };
    let width = (hi - lo) / bins as f64;
    let mut out: Vec<PairedBin> = (0..bins)
        .map(|i| PairedBin {
            lo: lo + width * i as f64,
            hi: if i + 1 == bins {
                hi
            } else {
                lo + width * (i + 1) as f64
            },
            reference: 0,
            new: 0,
        })
        .collect();
    let index = |x: f64| {
        if width > 0.0 {
            (((x - lo) / width) as usize).min(bins - 1)
        } else {
            0
        }
    };
    for x in reference
        .iter()
        .map(|&x| f64::from(x))
        .filter(|x| x.is_finite())
    {
        out[index(x)].reference += 1;
    }
    for x in new.iter().map(|&x| f64::from(x)).filter(|x| x.is_finite()) {
        out[index(x)].new += 1;
    }
    out
}

/// One bin `[lo, hi)` (the last also holds `hi`) with each sample's count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedBin {
    pub lo: f64,
    pub hi: f64,
    pub reference: u64,
    pub new: u64,
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
