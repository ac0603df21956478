use super::*;
use crate::normal_quantile;
use crate::rng::{Rng, normal_sample};

fn f32s(seed: u64, n: usize, mean: f64) -> Vec<f32> {
    normal_sample(seed, n, mean, 1.0)
        .into_iter()
        .map(|x| x as f32)
        .collect()
}

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} is not within {tolerance} of {expected}"
    );
}

/// Φ by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

// The SciPy figures below come from `python3 harness/measure/scripts/drift_constants.py` (SciPy
// 1.17.1, numpy 2.4.6), which ports the crate's seeded normal generator bit for bit and rounds the
// samples to f32 as these functions read them.

#[test]
fn ks_exact_matches_scipy_on_small_samples() {
    let ks = compare(&f32s(1, 60, 0.0), &f32s(2, 80, 0.5), 10)
        .unwrap()
        .ks;
    assert_eq!(ks.method, KsMethod::Exact);
    close(ks.statistic, 0.366_666_666_666_666_64, 1e-12);
    // scipy.stats.ks_2samp(a, b, method="exact").pvalue
    close(ks.p_value, 0.000_136_927_197_919_308_2, 1e-9);
}

#[test]
fn ks_asymptotic_matches_scipy_kstwobign_on_large_samples() {
    let ks = compare(&f32s(3, 4000, 0.0), &f32s(4, 3000, 0.06), 10)
        .unwrap()
        .ks;
    assert_eq!(ks.method, KsMethod::Asymptotic);
    close(ks.statistic, 0.032_333_333_333_333_325, 1e-12);
    // scipy.stats.kstwobign.sf(sqrt(m n / (m + n)) D); ks_2samp(method="asymp") gives 0.05434
    // from the finite-n Kolmogorov law (kstwo) instead.
    close(ks.p_value, 0.055_506_499_878_267_11, 1e-9);
}

#[test]
fn exact_and_asymptotic_p_values_agree_where_both_apply() {
    // m n = 2.4e6 (exact), and the limit law at the same D: they differ by O(1/sqrt(n)).
    let (a, b) = (f32s(11, 2000, 0.0), f32s(12, 1200, 0.08));
    let ks = compare(&a, &b, 10).unwrap().ks;
    assert_eq!(ks.method, KsMethod::Exact);
    let en = 2000.0 * 1200.0 / 3200.0_f64;
    let asymptotic = kolmogorov_sf(en.sqrt() * ks.statistic);
    assert!(
        (ks.p_value - asymptotic).abs() < 0.02,
        "exact {} vs asymptotic {asymptotic}",
        ks.p_value
    );
}

#[test]
fn ks_and_psi_of_a_shifted_normal_match_the_closed_form() {
    let (a, b) = (f32s(5, 20_000, 0.0), f32s(6, 20_000, 0.5));
    let c = compare(&a, &b, 10).unwrap();
    // Closed form: sup |Φ(x) − Φ(x − δ)| = 2Φ(δ/2) − 1 at x = δ/2.
    let d = 2.0 * normal_cdf(0.25) - 1.0;
    close(d, 0.197_412_651_365_847_4, 1e-6);
    // With n = m = 20,000, the sampling sd of D is ≈ 0.004.
    close(c.ks.statistic, d, 0.012);
    close(c.ks.statistic, 0.19605, 1e-12); // scipy.stats.ks_2samp(a, b).statistic
    // Closed form PSI on the true deciles: pᵢ = 0.1, qᵢ = Φ(zᵢ − δ) − Φ(zᵢ₋₁ − δ).
    let mut edges = vec![f64::NEG_INFINITY];
    edges.extend((1..10).map(|k| normal_quantile(k as f64 / 10.0)));
    edges.push(f64::INFINITY);
    let psi_true: f64 = edges
        .windows(2)
        .map(|w| {
            let q = normal_cdf(w[1] - 0.5) - normal_cdf(w[0] - 0.5);
            (q - 0.1) * (q / 0.1).ln()
        })
        .sum();
    close(psi_true, 0.237_749_204_686_275_9, 1e-5);
    close(c.psi.value, psi_true, 0.02);
    // The definition computed by numpy (np.quantile, np.searchsorted side="left").
    close(c.psi.value, 0.235_504_560_681_531_53, 1e-9);
    close(c.shift.mean_sd.unwrap(), 0.5, 0.03);
    close(c.shift.sd_change.unwrap(), 0.0, 0.03);
}

#[test]
fn psi_of_two_samples_of_one_normal_is_small() {
    let c = compare(&f32s(5, 20_000, 0.0), &f32s(7, 20_000, 0.0), 10).unwrap();
    close(c.psi.value, 0.000_993_760_685_469_485_2, 1e-9); // numpy, as above
    assert!(c.ks.p_value > 0.05, "{:?}", c.ks);
}

#[test]
fn psi_bins_follow_ties_and_empty_bins_get_epsilon() {
    // Half the reference is one value: the deciles repeat and merge.
    let reference: Vec<f32> = (0..100)
        .map(|i| if i < 50 { 0.0 } else { i as f32 })
        .collect();
    let new = vec![1000.0f32; 10];
    let psi = psi_sorted(&reference, &new, 10).unwrap();
    assert!(psi.edges.windows(2).all(|w| w[0] < w[1]), "{:?}", psi.edges);
    assert_eq!(psi.edges.len() + 1, psi.reference.len());
    close(psi.reference[0], 0.5, 1e-12); // every 0.0 falls into the bin the edge 0.0 closes
    close(*psi.new.last().unwrap(), 1.0, 1e-12);
    // The new sample's empty bins count as epsilon, not as zero (which would make PSI infinite).
    assert!(psi.value.is_finite() && psi.value > 1.0, "{}", psi.value);
}

#[test]
fn chi_square_matches_scipy_chi2_contingency() {
    // scipy.stats.chi2_contingency(table, correction=False)
    let c = class_mix(&[520, 480], &[430, 570]).unwrap();
    close(c.statistic, 16.240_601_503_759_4, 1e-9);
    close(c.p_value, 5.578_564_131_855_008e-5, 1e-12);
    assert_eq!(c.df, 1);
    let c = class_mix(&[300, 500, 200, 0], &[250, 500, 250, 0]).unwrap();
    close(c.statistic, 10.101_010_101_010_1, 1e-9);
    close(c.p_value, 0.006_406_097_226_458_328, 1e-12);
    assert_eq!(
        c.df, 2,
        "a class absent from both carries no degree of freedom"
    );
}

#[test]
fn holm_adjusts_step_down_and_keeps_order() {
    let adjusted = holm(&[0.04, 0.01, 0.03, 0.5]);
    // Sorted 0.01, 0.03, 0.04, 0.5 → ×4, ×3, ×2, ×1 = 0.04, 0.09, 0.08→0.09, 0.5.
    for (a, e) in adjusted.iter().zip([0.09, 0.04, 0.09, 0.5]) {
        close(*a, e, 1e-12);
    }
}

#[test]
fn twenty_random_splits_of_one_sample_flag_drift_at_most_once() {
    // Eight correlated features from one population; each split assigns rows at random.
    let (rows, columns) = (1200, 8);
    let base = normal_sample(21, rows * 2, 0.0, 1.0);
    let base = &base;
    let values: Vec<f32> = (0..rows)
        .flat_map(|r| (0..columns).map(move |c| (base[r] + base[rows + r] * c as f64) as f32))
        .collect();
    let mut flagged = 0;
    for split in 0..20 {
        let mut rng = Rng::new(100 + split);
        let (mut reference, mut new) = (Vec::new(), Vec::new());
        for row in values.chunks(columns) {
            if rng.below(2) == 0 {
                reference.extend_from_slice(row)
            } else {
                new.extend_from_slice(row)
            }
        }
        let drift = input_drift(
            Matrix::new(&reference, columns),
            Matrix::new(&new, columns),
            10,
        )
        .unwrap();
        if drift.iter().any(|f| f.p_adjusted < 0.05) {
            flagged += 1;
        }
    }
    assert!(flagged <= 1, "{flagged} of 20 splits flagged drift");
}

#[test]
fn a_real_shift_is_flagged_on_the_moved_feature_only() {
    let (rows, columns) = (1000, 3);
    let make = |seed: u64, moved: f64| -> Vec<f32> {
        let x = normal_sample(seed, rows * columns, 0.0, 1.0);
        x.chunks(columns)
            .flat_map(|r| [r[0] as f32, (r[1] + moved) as f32, r[2] as f32])
            .collect()
    };
    let (reference, new) = (make(31, 0.0), make(32, 0.6));
    let drift = input_drift(
        Matrix::new(&reference, columns),
        Matrix::new(&new, columns),
        10,
    )
    .unwrap();
    // The moved feature beyond doubt; the others only by chance (α = 5 % family-wise), and small.
    assert!(drift[1].p_adjusted < 1e-9, "{:?}", drift[1]);
    for c in [0, 2] {
        assert!(drift[c].comparison.psi.value < 0.05, "{:?}", drift[c]);
    }
    assert!(drift[1].comparison.psi.value > 0.2);
}

#[test]
fn bad_input_is_an_error_not_a_nan() {
    assert!(matches!(
        compare(&[], &[1.0], 10),
        Err(MeasureError::Empty { .. })
    ));
    assert!(matches!(
        compare(&[1.0, f32::NAN], &[1.0], 10),
        Err(MeasureError::NonFinite { .. })
    ));
    assert!(matches!(
        class_mix(&[1, 2], &[1]),
        Err(MeasureError::LengthMismatch { .. })
    ));
    let constant = compare(&[2.0; 5], &[2.0, 3.0], 10).unwrap();
    assert_eq!(constant.shift.mean_sd, None);
}

#[test]
fn paired_histogram_counts_both_samples_on_shared_bins() {
    let bins = paired_histogram(&[0.0, 1.0, 2.0], &[2.0, 3.0], 3);
    assert_eq!(bins.len(), 3);
    assert_eq!(bins.iter().map(|b| b.reference).sum::<u64>(), 3);
    assert_eq!(bins.iter().map(|b| b.new).sum::<u64>(), 2);
    assert_eq!(bins[2].new, 2);
}
