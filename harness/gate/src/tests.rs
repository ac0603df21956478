use std::collections::BTreeMap;

use gauntlet_results::*;
use gauntlet_spec::{BoardKind, Comparison, GateSpec, Metric, Threshold};

use super::*;
use crate::fixtures::*;

fn with_accuracy(acc: f64, lo: f64, hi: f64) -> Metrics {
    Metrics {
        accuracy: Some(acc),
        accuracy_ci: Some(ci(lo, hi)),
        ..metrics()
    }
}

fn with_p99(p99: f64, lo: f64, hi: f64) -> Metrics {
    Metrics {
        latency_device_us: Some(latency_with_p99(1000, p99, ci(lo, hi))),
        ..metrics()
    }
}

fn gate(metric: Metric, comparison: Comparison, threshold: Threshold) -> GateSpec {
    GateSpec {
        metric,
        comparison,
        threshold,
        board_selector: BTreeMap::new(),
        variants: Vec::new(),
    }
}

fn local() -> Vec<Board> {
    vec![board("pc", BoardKind::Local, None)]
}

fn run(gates: &[GateSpec], entries: Vec<Entry>) -> Evaluation {
    run_with(gates, entries, &NoChampions, true)
}

fn run_with(
    gates: &[GateSpec],
    entries: Vec<Entry>,
    champions: &dyn ChampionLookup,
    inconclusive_fails: bool,
) -> Evaluation {
    let rules = Rules {
        scenario: SCENARIO,
        gates,
        inconclusive_fails,
    };
    evaluate_rules(rules, &local(), &results("run-2", entries), champions)
}

fn only(e: &Evaluation) -> &GateResult {
    assert_eq!(e.gates.len(), 1, "{:#?}", e.gates);
    &e.gates[0]
}

const P99_20MS: Threshold = Threshold::Absolute(20_000.0);

#[test]
fn latency_interval_below_threshold_passes_with_readable_evidence() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, P99_20MS)];
    let e = run(
        &g,
        vec![entry(
            "pc",
            "fp32",
            true,
            with_p99(18_200.0, 17_900.0, 18_600.0),
        )],
    );
    let r = only(&e);
    assert_eq!(r.verdict, Verdict::Pass);
    assert_eq!(
        r.evidence, "latency.p99 18.2 ms [17.9, 18.6] ≤ 20 ms",
        "{r:#?}"
    );
    assert_eq!(r.gate, "latency.p99 <= 20 ms");
    assert_eq!((r.threshold, r.measured), (Some(20_000.0), Some(18_200.0)));
    assert_eq!(r.measured_ci, Some(ci(17_900.0, 18_600.0)));
    assert_eq!(
        (r.board_class.as_str(), r.comparison),
        ("local", Comparison::AtMost)
    );
    assert_eq!(e.outcome, Outcome::Pass);
    assert_eq!(e.verdicts[0].verdict, Some(Verdict::Pass));
    assert_eq!(e.verdicts[0].gates_passed, 1);
}

#[test]
fn latency_interval_above_threshold_fails_and_straddling_is_inconclusive() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, P99_20MS)];
    let fail = run(
        &g,
        vec![entry(
            "pc",
            "fp32",
            true,
            with_p99(22_000.0, 20_100.0, 23_000.0),
        )],
    );
    assert_eq!(only(&fail).verdict, Verdict::Fail);
    assert_eq!(only(&fail).evidence, "latency.p99 22 ms [20.1, 23] > 20 ms");
    assert_eq!(fail.outcome, Outcome::GateFailed);
    assert_eq!(fail.verdicts[0].verdict, Some(Verdict::Fail));

    // The point estimate is below the threshold but the interval reaches over it.
    let straddle = run(
        &g,
        vec![entry(
            "pc",
            "fp32",
            true,
            with_p99(19_800.0, 19_100.0, 20_400.0),
        )],
    );
    assert_eq!(only(&straddle).verdict, Verdict::Inconclusive);
    assert!(only(&straddle).evidence.contains("straddles 20 ms"));
    assert_eq!(straddle.outcome, Outcome::Inconclusive);
    assert_eq!(straddle.verdicts[0].verdict, Some(Verdict::Inconclusive));
}

#[test]
fn inconclusive_passes_when_the_scenario_allows_it() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, P99_20MS)];
    let e = run_with(
        &g,
        vec![entry(
            "pc",
            "fp32",
            true,
            with_p99(19_800.0, 19_100.0, 20_400.0),
        )],
        &NoChampions,
        false,
    );
    assert_eq!(only(&e).verdict, Verdict::Inconclusive);
    assert_eq!(e.outcome, Outcome::Pass);
}

#[test]
fn too_few_samples_for_p99_is_inconclusive_even_when_clearly_below() {
    let m = Metrics {
        latency_device_us: Some(latency_with_p99(300, 150.0, ci(140.0, 160.0))),
        ..metrics()
    };
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, P99_20MS)];
    let e = run(&g, vec![entry("pc", "fp32", true, m.clone())]);
    let r = only(&e);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(
        r.evidence
            .starts_with("too few samples: n = 300 < 662 for p99"),
        "{}",
        r.evidence
    );
    // p50 needs only 11 samples, so the same record decides a p50 gate.
    let g50 = [gate(Metric::LatencyP50, Comparison::AtMost, P99_20MS)];
    assert_eq!(
        only(&run(&g50, vec![entry("pc", "fp32", true, m)])).verdict,
        Verdict::Pass
    );
}

#[test]
fn latency_mean_uses_the_bootstrap_interval_of_the_mean() {
    let mut m = with_p99(1.0, 1.0, 1.0);
    let lat = m.latency_device_us.as_mut().unwrap();
    lat.mean = 105.0;
    lat.summary.ci.as_mut().unwrap().mean = ci(99.0, 111.0);
    let g = [gate(
        Metric::LatencyMean,
        Comparison::AtMost,
        Threshold::Absolute(100.0),
    )];
    let r = run(&g, vec![entry("pc", "fp32", true, m)]);
    assert_eq!(only(&r).verdict, Verdict::Inconclusive);
    assert_eq!(only(&r).measured_ci, Some(ci(99.0, 111.0)));
}

#[test]
fn accuracy_uses_its_wilson_interval() {
    let g = [gate(
        Metric::Accuracy,
        Comparison::AtLeast,
        Threshold::Absolute(0.95),
    )];
    let pass = run(
        &g,
        vec![entry("pc", "fp32", true, with_accuracy(0.97, 0.955, 0.98))],
    );
    assert_eq!(only(&pass).verdict, Verdict::Pass);
    assert_eq!(only(&pass).evidence, "accuracy 97% [95.5, 98] ≥ 95%");
    let fail = run(
        &g,
        vec![entry("pc", "fp32", true, with_accuracy(0.90, 0.88, 0.92))],
    );
    assert_eq!(only(&fail).verdict, Verdict::Fail);
    assert_eq!(only(&fail).evidence, "accuracy 90% [88, 92] < 95%");
    let unsure = run(
        &g,
        vec![entry("pc", "fp32", true, with_accuracy(0.96, 0.93, 0.98))],
    );
    assert_eq!(only(&unsure).verdict, Verdict::Inconclusive);
}

#[test]
fn macro_f1_without_interval_is_judged_as_a_point() {
    let g = [gate(
        Metric::MacroF1,
        Comparison::AtLeast,
        Threshold::Absolute(0.9),
    )];
    let m = |f1| Metrics {
        macro_f1: Some(f1),
        ..metrics()
    };
    assert_eq!(
        only(&run(&g, vec![entry("pc", "a", true, m(0.9))])).verdict,
        Verdict::Pass
    );
    let fail = run(&g, vec![entry("pc", "a", true, m(0.89))]);
    assert_eq!(only(&fail).verdict, Verdict::Fail);
    assert_eq!(only(&fail).measured_ci, None);
}

#[test]
fn agreement_gets_a_wilson_interval_from_its_window_count() {
    let g = [gate(
        Metric::AgreementLabel,
        Comparison::AtLeast,
        Threshold::Absolute(0.95),
    )];
    let m = |label, n| Metrics {
        agreement: Some(AgreementFigures {
            reference_variant: "fp32".into(),
            label,
            max_abs_diff: 0.1,
            mean_abs_diff: 0.01,
            n,
            source: Source::Measured,
        }),
        ..metrics()
    };
    // 97 % of 100 windows: the Wilson interval reaches below 95 %.
    let few = run(&g, vec![entry("pc", "int8", false, m(0.97, 100))]);
    assert_eq!(only(&few).verdict, Verdict::Inconclusive);
    // The same rate over 10,000 windows is decisive.
    let many = run(&g, vec![entry("pc", "int8", false, m(0.97, 10_000))]);
    assert_eq!(only(&many).verdict, Verdict::Pass);
    let ci = only(&many).measured_ci.unwrap();
    assert!(ci.lo > 0.95 && ci.hi < 0.98, "{ci:?}");
}

#[test]
fn energy_error_becomes_a_95_percent_interval() {
    let g = [gate(
        Metric::EnergyPerInference,
        Comparison::AtMost,
        Threshold::Absolute(0.002),
    )];
    let m = |j, err| Metrics {
        energy: Some(Energy {
            per_inference_j: j,
            per_inference_error_j: err,
            idle_w: 1.0,
            average_w: 2.0,
            peak_w: 3.0,
            total_j: 10.0,
            windows: 5,
            inferences: 1000,
            source: Source::Simulated,
        }),
        ..metrics()
    };
    // 1.9 mJ ± 1.96 × 0.1 mJ reaches above 2 mJ; ± 1.96 × 0.04 mJ does not.
    let wide = run(&g, vec![entry("pc", "a", true, m(0.0019, 0.0001))]);
    assert_eq!(only(&wide).verdict, Verdict::Inconclusive);
    let narrow = run(&g, vec![entry("pc", "a", true, m(0.0019, 0.00004))]);
    assert_eq!(only(&narrow).verdict, Verdict::Pass);
    assert!(
        only(&narrow)
            .evidence
            .starts_with("energy_per_inference 1.9 mJ [")
    );
    let point = run(&g, vec![entry("pc", "a", true, m(0.0021, 0.0))]);
    assert_eq!(only(&point).verdict, Verdict::Fail);
}

#[test]
fn peak_ram_reads_rss_on_linux_and_static_plus_stack_on_mcus() {
    let g = [gate(
        Metric::PeakRam,
        Comparison::AtMost,
        Threshold::Absolute(96.0 * 1024.0),
    )];
    let linux = Metrics {
        peak_rss_kib: Some(97),
        ..metrics()
    };
    let r = run(&g, vec![entry("pc", "a", true, linux)]);
    assert_eq!(only(&r).measured, Some(97.0 * 1024.0));
    assert_eq!(only(&r).verdict, Verdict::Fail);
    let mcu = Metrics {
        static_ram_bytes: Some(60 * 1024),
        heap_after_load_bytes: Some(4 * 1024),
        stack_high_water_bytes: Some(30 * 1024),
        ..metrics()
    };
    let r = run(&g, vec![entry("pc", "a", true, mcu)]);
    assert_eq!(only(&r).measured, Some(94.0 * 1024.0));
    assert_eq!(only(&r).evidence, "peak_ram 94 KiB ≤ 96 KiB");
    let unknown = run(&g, vec![entry("pc", "a", true, metrics())]);
    assert_eq!(only(&unknown).verdict, Verdict::Inconclusive);
    assert_eq!(only(&unknown).evidence, "peak_ram was not measured");
}

#[test]
fn flash_prefers_the_firmware_footprint_over_the_model_file() {
    let g = [gate(
        Metric::Flash,
        Comparison::AtMost,
        Threshold::Absolute(512.0 * 1024.0),
    )];
    let mcu = Metrics {
        flash_bytes: Some(600 * 1024),
        ..metrics()
    };
    assert_eq!(
        only(&run(&g, vec![entry("pc", "a", true, mcu)])).verdict,
        Verdict::Fail
    );
    // No firmware: the 200,000-byte model file is what the build occupies.
    let r = run(&g, vec![entry("pc", "a", true, metrics())]);
    assert_eq!(
        (only(&r).verdict, only(&r).measured),
        (Verdict::Pass, Some(200_000.0))
    );
}

#[test]
fn reference_gate_scales_the_reference_value_and_skips_the_reference_itself() {
    let g = [gate(
        Metric::Accuracy,
        Comparison::AtLeast,
        Threshold::OfReference(0.99),
    )];
    let entries = vec![
        entry("pc", "fp32", true, with_accuracy(0.95, 0.94, 0.96)),
        entry("pc", "int8", false, with_accuracy(0.945, 0.9425, 0.948)),
        entry("pc", "int4", false, with_accuracy(0.90, 0.89, 0.91)),
    ];
    let e = run(&g, entries);
    assert_eq!(
        e.gates.len(),
        2,
        "the reference is not judged against itself"
    );
    let (int8, int4) = (&e.gates[0], &e.gates[1]);
    assert_eq!(int8.variant, "int8");
    let expected = 0.99 * 0.95;
    assert!((int8.threshold.unwrap() - expected).abs() < 1e-12);
    assert_eq!(int8.verdict, Verdict::Pass);
    assert_eq!(
        int8.baseline,
        Some(Baseline {
            kind: BaselineKind::Reference,
            variant: "fp32".into(),
            run_id: None,
            value: 0.95
        })
    );
    assert!(
        int8.evidence.ends_with("(99% of reference fp32 95%)"),
        "{}",
        int8.evidence
    );
    assert_eq!(int4.verdict, Verdict::Fail);
    assert_eq!(e.outcome, Outcome::GateFailed);
    assert_eq!(e.verdicts.len(), 3);
    assert_eq!(
        e.verdicts[0].verdict,
        Some(Verdict::Pass),
        "no gate, no failure"
    );
}

#[test]
fn reference_gate_without_a_usable_reference_is_inconclusive() {
    let g = [gate(
        Metric::Accuracy,
        Comparison::AtLeast,
        Threshold::OfReference(0.99),
    )];
    let interrupted = with_status(
        entry("pc", "fp32", true, metrics()),
        EntryStatus::Interrupted,
        RejectionKind::Infrastructure,
        "no reply in 30 s",
    );
    let e = run(
        &g,
        vec![
            interrupted,
            entry("pc", "int8", false, with_accuracy(0.9, 0.89, 0.91)),
        ],
    );
    let r = only(&e);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(
        r.evidence.contains("reference fp32 did not complete"),
        "{}",
        r.evidence
    );
    assert_eq!(e.outcome, Outcome::InfraFailure);

    let alone = run(
        &g,
        vec![entry("pc", "int8", false, with_accuracy(0.9, 0.89, 0.91))],
    );
    assert_eq!(only(&alone).evidence, "no reference build of cnn ran on pc");
}

fn champion(p99: f64) -> Champion {
    Champion {
        run_id: "run-1".into(),
        variant: "fp32".into(),
        model_sha256: "sha-fp32".into(),
        metrics: with_p99(p99, p99 * 0.98, p99 * 1.02),
        history: Vec::new(),
        cpu_features: Vec::new(),
    }
}

fn champions(p99: f64) -> ChampionTable {
    let mut t = ChampionTable::default();
    t.insert(SCENARIO, "cnn", "local", champion(p99));
    t
}

const VS_CHAMPION_5: Threshold = Threshold::VsChampion {
    max_regression: 0.05,
};

#[test]
fn champion_gate_passes_within_and_fails_beyond_the_allowed_regression() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, VS_CHAMPION_5)];
    let table = champions(10_000.0);
    // Allowed: up to 10.5 ms.
    let ok = run_with(
        &g,
        vec![entry(
            "pc",
            "int8",
            false,
            with_p99(10_200.0, 10_000.0, 10_400.0),
        )],
        &table,
        true,
    );
    let r = only(&ok);
    assert_eq!(r.verdict, Verdict::Pass);
    assert!((r.threshold.unwrap() - 10_500.0).abs() < 1e-9);
    assert_eq!(
        r.baseline.as_ref().unwrap().run_id.as_deref(),
        Some("run-1")
    );
    assert_eq!(
        r.evidence,
        "latency.p99 10.2 ms [10, 10.4] ≤ 10.5 ms (the champion fp32 of run run-1: 10 ms + 5%)"
    );
    let worse = run_with(
        &g,
        vec![entry(
            "pc",
            "int8",
            false,
            with_p99(12_000.0, 11_000.0, 13_000.0),
        )],
        &table,
        true,
    );
    assert_eq!(only(&worse).verdict, Verdict::Fail);
    assert_eq!(worse.outcome, Outcome::GateFailed);
    let unsure = run_with(
        &g,
        vec![entry(
            "pc",
            "int8",
            false,
            with_p99(10_400.0, 10_100.0, 10_700.0),
        )],
        &table,
        true,
    );
    assert_eq!(only(&unsure).verdict, Verdict::Inconclusive);
}

#[test]
fn champion_gate_on_accuracy_allows_a_drop_not_a_rise() {
    let g = [gate(Metric::Accuracy, Comparison::AtLeast, VS_CHAMPION_5)];
    let mut table = ChampionTable::default();
    table.insert(
        SCENARIO,
        "cnn",
        "local",
        Champion {
            metrics: with_accuracy(0.9, 0.88, 0.92),
            ..champion(1.0)
        },
    );
    // Allowed down to 0.855.
    let drop = run_with(
        &g,
        vec![entry("pc", "a", true, with_accuracy(0.80, 0.78, 0.82))],
        &table,
        true,
    );
    assert_eq!(only(&drop).verdict, Verdict::Fail);
    assert!((only(&drop).threshold.unwrap() - 0.855).abs() < 1e-12);
    let fine = run_with(
        &g,
        vec![entry("pc", "a", true, with_accuracy(0.88, 0.86, 0.90))],
        &table,
        true,
    );
    assert_eq!(only(&fine).verdict, Verdict::Pass);
}

#[test]
fn stored_champion_figures_from_other_cpu_extensions_are_compared_with_a_warning() {
    let g = [gate(Metric::Accuracy, Comparison::AtLeast, VS_CHAMPION_5)];
    let measured = || entry("pc", "int8", false, with_accuracy(0.90, 0.88, 0.92));
    let evidence = |champion_cpu: &[&str], here: &[&str]| {
        let mut table = ChampionTable::default();
        table.insert(
            SCENARIO,
            "cnn",
            "local",
            Champion {
                metrics: with_accuracy(0.9, 0.88, 0.92),
                cpu_features: champion_cpu.iter().map(|f| f.to_string()).collect(),
                ..champion(1.0)
            },
        );
        let e = run_with(&g, vec![on_cpu(measured(), here)], &table, true);
        assert_eq!(only(&e).verdict, Verdict::Pass, "the warning is no verdict");
        only(&e).evidence.clone()
    };
    let vnni_champion = evidence(&["avx2", "avx512_vnni", "fma"], &["avx2", "fma", "f16c"]);
    assert!(
        vnni_champion.ends_with(
            "; beware: the champion ran on other CPU extensions (only there: avx512_vnni; only here: f16c), so with other int8/fp16 kernels"
        ),
        "{vnni_champion}"
    );
    let same = evidence(&["avx2", "fma"], &["fma", "avx2"]);
    assert!(!same.contains("beware"), "{same}");
    // A champion recorded before boards reported their extensions: nothing to compare.
    let unknown = evidence(&[], &["avx2"]);
    assert!(!unknown.contains("beware"), "{unknown}");
}

#[test]
fn champion_gate_without_champion_passes_and_lookup_is_per_class() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, VS_CHAMPION_5)];
    let e = run(
        &g,
        vec![entry(
            "pc",
            "fp32",
            true,
            with_p99(50_000.0, 49_000.0, 51_000.0),
        )],
    );
    assert_eq!(only(&e).verdict, Verdict::Pass);
    assert!(
        only(&e)
            .evidence
            .starts_with("no champion promoted yet for cnn on local")
    );

    // A champion of another class does not apply.
    let mut table = ChampionTable::default();
    table.insert(SCENARIO, "cnn", "raspberry-pi", champion(1.0));
    let other = run_with(
        &g,
        vec![entry(
            "pc",
            "fp32",
            true,
            with_p99(50_000.0, 49_000.0, 51_000.0),
        )],
        &table,
        true,
    );
    assert_eq!(only(&other).verdict, Verdict::Pass);
}

#[test]
fn champion_with_too_few_samples_cannot_serve_as_baseline() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, VS_CHAMPION_5)];
    let mut table = ChampionTable::default();
    table.insert(
        SCENARIO,
        "cnn",
        "local",
        Champion {
            metrics: Metrics {
                latency_device_us: Some(latency_with_p99(100, 10_000.0, ci(9_000.0, 11_000.0))),
                ..metrics()
            },
            ..champion(1.0)
        },
    );
    let e = run_with(
        &g,
        vec![entry("pc", "a", true, with_p99(1.0, 1.0, 1.0))],
        &table,
        true,
    );
    assert_eq!(only(&e).verdict, Verdict::Inconclusive);
    assert!(
        only(&e)
            .evidence
            .contains("champion fp32 of run run-1: too few samples")
    );
}

struct BrokenStore;

impl ChampionLookup for BrokenStore {
    fn champion(&self, _: &str, model: &str, class: &str) -> Result<Option<Champion>, LookupError> {
        Err(LookupError {
            model: model.into(),
            board_class: class.into(),
            reason: "database is locked".into(),
        })
    }
}

#[test]
fn failed_champion_lookup_is_an_infrastructure_error_not_a_fail() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, VS_CHAMPION_5)];
    let e = run_with(
        &g,
        vec![entry("pc", "a", true, with_p99(1.0, 1.0, 1.0))],
        &BrokenStore,
        true,
    );
    assert!(e.gates.is_empty());
    assert_eq!(e.verdicts[0].verdict, None);
    assert!(
        e.verdicts[0]
            .infra_error
            .as_deref()
            .unwrap()
            .contains("database is locked")
    );
    assert_eq!(e.outcome, Outcome::InfraFailure);
}

#[test]
fn refused_build_fails_its_gates_with_the_boards_reason() {
    let g = [gate(
        Metric::Accuracy,
        Comparison::AtLeast,
        Threshold::Absolute(0.9),
    )];
    let refused = with_status(
        entry("pc", "int8_qop", false, metrics()),
        EntryStatus::Rejected,
        RejectionKind::UnsupportedOperator,
        "com.microsoft QGemm",
    );
    let e = run(&g, vec![refused]);
    let r = only(&e);
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(
        r.evidence,
        "the board refused the build (UnsupportedOperator: com.microsoft QGemm)"
    );
    assert_eq!(e.outcome, Outcome::GateFailed);
    assert_eq!(e.verdicts[0].verdict, Some(Verdict::Fail));
}

#[test]
fn refused_build_without_gates_cannot_pass_but_fails_no_gate() {
    let refused = with_status(
        entry("pc", "int8_qop", false, metrics()),
        EntryStatus::Rejected,
        RejectionKind::UnsupportedOperator,
        "QGemm",
    );
    let e = run(&[], vec![entry("pc", "fp32", true, metrics()), refused]);
    assert_eq!(e.verdicts[0].verdict, Some(Verdict::Pass));
    assert_eq!(e.verdicts[1].verdict, Some(Verdict::Fail));
    assert_eq!(e.outcome, Outcome::Pass);
}

#[test]
fn interrupted_build_gets_no_gate_verdict_but_an_infra_error() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, P99_20MS)];
    let interrupted = with_status(
        entry("pc", "int8", false, metrics()),
        EntryStatus::Interrupted,
        RejectionKind::Infrastructure,
        "agent exited with signal 11",
    );
    let e = run(
        &g,
        vec![
            entry("pc", "fp32", true, with_p99(100.0, 90.0, 110.0)),
            interrupted,
        ],
    );
    assert_eq!(only(&e).variant, "fp32");
    let v = &e.verdicts[1];
    assert_eq!(v.verdict, None);
    assert_eq!(
        v.infra_error.as_deref(),
        Some("pc: build interrupted (Infrastructure: agent exited with signal 11)")
    );
    assert_eq!(e.outcome, Outcome::InfraFailure);
}

#[test]
fn a_gate_failure_takes_precedence_over_an_infra_failure() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, P99_20MS)];
    let not_run = with_status(
        entry("pc", "int8", false, metrics()),
        EntryStatus::NotRun,
        RejectionKind::Infrastructure,
        "unreachable",
    );
    let e = run(
        &g,
        vec![
            entry("pc", "fp32", true, with_p99(30_000.0, 29_000.0, 31_000.0)),
            not_run,
        ],
    );
    assert_eq!(e.outcome, Outcome::GateFailed);
}

#[test]
fn infra_failed_board_alone_makes_the_outcome_infra_failure() {
    let mut r = results("run-2", vec![entry("pc", "fp32", true, metrics())]);
    r.boards.push(BoardResult {
        status: BoardStatus::InfraFailed,
        board: "pi".into(),
        failure: Some(Failure {
            stage: "connect".into(),
            reason: "ssh: no route to host".into(),
        }),
        ..r.boards[0].clone()
    });
    let rules = Rules {
        scenario: SCENARIO,
        gates: &[],
        inconclusive_fails: true,
    };
    assert_eq!(
        evaluate_rules(rules, &local(), &r, &NoChampions).outcome,
        Outcome::InfraFailure
    );
}

#[test]
fn selectors_and_variants_restrict_gates_and_classes_come_from_labels() {
    let boards = vec![
        board("pc", BoardKind::Local, None),
        board("pi4", BoardKind::LinuxSsh, Some("raspberry-pi")),
    ];
    let mut only_pi = gate(Metric::LatencyP99, Comparison::AtMost, P99_20MS);
    only_pi.board_selector = BTreeMap::from([("class".into(), "raspberry-pi".into())]);
    only_pi.variants = vec!["int8".into()];
    let entries = vec![
        entry("pc", "int8", false, with_p99(100.0, 90.0, 110.0)),
        entry("pi4", "fp32", true, with_p99(100.0, 90.0, 110.0)),
        entry("pi4", "int8", false, with_p99(100.0, 90.0, 110.0)),
    ];
    let rules = Rules {
        scenario: SCENARIO,
        gates: std::slice::from_ref(&only_pi),
        inconclusive_fails: true,
    };
    let e = evaluate_rules(rules, &boards, &results("run-2", entries), &NoChampions);
    let r = only(&e);
    assert_eq!((r.board.as_str(), r.variant.as_str()), ("pi4", "int8"));
    assert_eq!(r.board_class, "raspberry-pi");
    assert_eq!(
        r.gate,
        "latency.p99 <= 20 ms on class=raspberry-pi for int8"
    );
    let classes: Vec<(&str, &str)> = e
        .verdicts
        .iter()
        .map(|v| (v.variant.as_str(), v.board_class.as_str()))
        .collect();
    assert_eq!(
        classes,
        [
            ("int8", "local"),
            ("fp32", "raspberry-pi"),
            ("int8", "raspberry-pi")
        ]
    );
}

#[test]
fn builds_on_boards_of_one_class_share_a_verdict() {
    let boards = vec![
        board("pi-a", BoardKind::LinuxSsh, Some("pi")),
        board("pi-b", BoardKind::LinuxSsh, Some("pi")),
    ];
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, P99_20MS)];
    let entries = vec![
        entry("pi-a", "fp32", true, with_p99(100.0, 90.0, 110.0)),
        entry("pi-b", "fp32", true, with_p99(30_000.0, 29_000.0, 31_000.0)),
    ];
    let rules = Rules {
        scenario: SCENARIO,
        gates: &g,
        inconclusive_fails: true,
    };
    let e = evaluate_rules(rules, &boards, &results("run-2", entries), &NoChampions);
    assert_eq!(e.verdicts.len(), 1);
    let v = &e.verdicts[0];
    assert_eq!(
        (v.gates_passed, v.gates_failed, v.verdict),
        (1, 1, Some(Verdict::Fail))
    );
}

#[test]
fn board_missing_from_the_rig_is_an_infra_error() {
    let rules = Rules {
        scenario: SCENARIO,
        gates: &[],
        inconclusive_fails: true,
    };
    let e = evaluate_rules(
        rules,
        &[],
        &results("run-2", vec![entry("pc", "fp32", true, metrics())]),
        &NoChampions,
    );
    assert_eq!(e.outcome, Outcome::InfraFailure);
    assert!(
        e.verdicts[0]
            .infra_error
            .as_deref()
            .unwrap()
            .contains("not in the rig")
    );
}

#[test]
fn completed_build_without_the_metric_is_inconclusive() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, P99_20MS)];
    let e = run(&g, vec![entry("pc", "fp32", true, metrics())]);
    assert_eq!(only(&e).evidence, "latency.p99 was not measured");
    let mut no_figures = entry("pc", "fp32", true, metrics());
    no_figures.metrics = None;
    assert_eq!(
        only(&run(&g, vec![no_figures])).verdict,
        Verdict::Inconclusive
    );
}

#[test]
fn champion_gate_label_shows_direction() {
    let l = gate_label(&gate(Metric::Accuracy, Comparison::AtLeast, VS_CHAMPION_5));
    assert_eq!(l, "accuracy >= champion - 5%");
    let l = gate_label(&gate(
        Metric::Accuracy,
        Comparison::AtLeast,
        Threshold::OfReference(0.99),
    ));
    assert_eq!(l, "accuracy >= 99% of reference");
}

/// Device times of a champion and a candidate `factor` × as slow, replayed as the runner does:
/// `repeats` passes of 12 interleaved blocks of 16 windows, on a machine that switches between a
/// fast and a slow state every 3 blocks (both builds in a block pair see the same state). A small
/// LCG stands in for the clock's jitter (±1 %).
fn head_to_head_figures(seed: u64, factor: f64, repeats: u32) -> ChampionRatio {
    let mut state = seed;
    let mut jitter = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        1.0 + ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.02
    };
    let (mut champion, mut candidate, mut blocks) = (Vec::new(), Vec::new(), Vec::new());
    for repeat in 0..repeats {
        for index in 0..12u32 {
            let level = if ((seed as u32 + repeat * 12 + index) / 3).is_multiple_of(2) {
                63.0
            } else {
                98.0
            };
            for _ in 0..16 {
                champion.push(level * jitter());
                candidate.push(level * factor * jitter());
            }
            blocks.push(gauntlet_measure::Block {
                repeat,
                index,
                len: 16,
            });
        }
    }
    let opts = gauntlet_measure::RatioOptions {
        bootstrap_resamples: 500,
        seed,
        ..Default::default()
    };
    ChampionRatio {
        champion_variant: "champion-fp32".into(),
        champion_sha256: "sha-fp32".into(),
        champion_p50_us: 80.0,
        ratio: gauntlet_measure::block_ratio(&champion, &blocks, &candidate, &blocks, &opts)
            .unwrap(),
    }
}

fn judged_head_to_head(h2h: ChampionRatio) -> Evaluation {
    let g = [gate(
        Metric::LatencyP50,
        Comparison::AtMost,
        Threshold::VsChampion {
            max_regression: 0.10,
        },
    )];
    let mut candidate = entry("pc", "fp32", true, metrics());
    candidate
        .metrics
        .as_mut()
        .unwrap()
        .latency_ratio_vs_champions = vec![h2h];
    // The champion's own build ran too: it is the yardstick, never judged itself.
    let mut yardstick = entry("pc", "champion-fp32", false, metrics());
    yardstick.champion = true;
    run_with(&g, vec![candidate, yardstick], &champions(10_000.0), true)
}

#[test]
fn head_to_head_passes_an_unchanged_build_twice_and_fails_one_20_percent_slower() {
    for seed in [1, 2] {
        let e = judged_head_to_head(head_to_head_figures(seed, 1.0, 2));
        let r = only(&e);
        assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
        assert!(
            r.evidence
                .contains("head to head with the champion fp32 of run run-1 in this run"),
            "{}",
            r.evidence
        );
        assert_eq!(r.threshold, Some(1.1));
        assert_eq!(r.baseline.as_ref().unwrap().kind, BaselineKind::Champion);
        assert_eq!(e.verdicts.len(), 1, "the champion's build gets no verdict");
    }
    let slower = judged_head_to_head(head_to_head_figures(3, 1.2, 2));
    let r = only(&slower);
    assert_eq!(r.verdict, Verdict::Fail, "{r:#?}");
    assert!((r.measured.unwrap() - 1.2).abs() < 0.01, "{r:#?}");
    assert_eq!(slower.outcome, Outcome::GateFailed);
}

#[test]
fn head_to_head_with_too_few_block_pairs_is_inconclusive() {
    let mut h2h = head_to_head_figures(4, 1.0, 1);
    h2h.ratio.ci = None;
    h2h.ratio.pairs = 4;
    let e = judged_head_to_head(h2h);
    assert_eq!(only(&e).verdict, Verdict::Inconclusive);
    assert!(
        only(&e)
            .evidence
            .starts_with("too few block pairs for an honest interval: 4 < 6"),
        "{}",
        only(&e).evidence
    );
}

#[test]
fn stored_champion_figures_are_widened_by_the_builds_run_to_run_spread() {
    let g = [gate(Metric::LatencyP99, Comparison::AtMost, VS_CHAMPION_5)];
    let mut table = ChampionTable::default();
    // The champion's p99 moved 9–11 ms over three runs: a 20 % spread around 10 ms.
    table.insert(
        SCENARIO,
        "cnn",
        "local",
        Champion {
            history: [9_000.0, 10_000.0, 11_000.0]
                .map(|p99| with_p99(p99, p99 * 0.98, p99 * 1.02))
                .to_vec(),
            ..champion(10_000.0)
        },
    );
    // 12 ms would FAIL against 10 ms + 5 %; within 10 ms × 1.05 × 1.2 = 12.6 ms it passes.
    let e = run_with(
        &g,
        vec![entry(
            "pc",
            "int8",
            false,
            with_p99(12_000.0, 11_800.0, 12_200.0),
        )],
        &table,
        true,
    );
    let r = only(&e);
    assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
    assert!((r.threshold.unwrap() - 12_600.0).abs() < 1e-6);
    assert!(
        r.evidence
            .contains("stored figures, widened by this build's run-to-run spread 20% over 3 runs"),
        "{}",
        r.evidence
    );
}
