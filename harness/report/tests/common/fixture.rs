//! A realistic run built from the schema types, shared by the unit tests, the integration tests and the
//! bench (each includes this file as a module; the including crate root must have `MemorySamples` in
//! scope). Three boards: a Raspberry Pi measured with an INA219, an STM32 in QEMU (emulated timing,
//! simulated power), and a Jetson whose session failed; two models, one with a hostile name.

use std::collections::BTreeMap;

use gauntlet_measure::{ConfidenceInterval, SummaryOptions, summarize};
use gauntlet_results::*;

use super::MemorySamples;

pub const HOSTILE_MODEL: &str = "<script>alert(1)</script>";

/// The fixture's results, with `samples_per_build` device latency samples behind each completed build.
/// `bootstrap_resamples` is kept small by callers that use millions of samples (the bootstrap is O(n·B)).
pub fn run(samples_per_build: usize, bootstrap_resamples: usize) -> (Results, MemorySamples) {
    let mut samples = MemorySamples::new();
    let builds = [
        (
            "pi5-01",
            "kws",
            "fp32",
            true,
            410.0,
            0.943,
            Source::Measured,
        ),
        (
            "pi5-01",
            "kws",
            "int8",
            false,
            265.0,
            0.938,
            Source::Measured,
        ),
        (
            "pi5-01",
            HOSTILE_MODEL,
            "fp32",
            true,
            120.0,
            0.871,
            Source::Measured,
        ),
        (
            "qemu-stm32",
            "kws",
            "fp32",
            true,
            9_800.0,
            0.943,
            Source::Emulated,
        ),
        (
            "qemu-stm32",
            "kws",
            "int8",
            false,
            4_100.0,
            0.925,
            Source::Emulated,
        ),
    ];
    let classes = ["yes", "no", "up", "down"];
    let mut entries = Vec::new();
    for (i, &(board, model, variant, reference, median, accuracy, timing)) in
        builds.iter().enumerate()
    {
        let xs = latency_samples(samples_per_build, median, i as u64 + 1);
        let s = summarize(
            &xs,
            &SummaryOptions {
                bootstrap_resamples,
                ..SummaryOptions::default()
            },
        )
        .expect("fixture samples are finite");
        samples.insert(board, model, variant, xs);
        let latency = Latency::from_summary(s, None, timing);
        let windows = 400;
        let correct = (accuracy * windows as f64).round() as u64;
        let mcu = board == "qemu-stm32";
        let power = if mcu {
            Source::Simulated
        } else {
            Source::Measured
        };
        let mut sources = BTreeMap::new();
        for key in ["accuracy", "macro_f1", "confusion", "model_size_bytes"] {
            sources.insert(key.to_string(), Source::Measured);
        }
        if !mcu {
            sources.insert("peak_rss_kib".to_string(), Source::Measured);
        }
        entries.push(Entry {
            board: board.into(),
            model: model.into(),
            variant: variant.into(),
            reference,
            champion: false,
            runtime: None,
            status: EntryStatus::Completed,
            error: None,
            metrics: Some(Metrics {
                windows_scored: windows,
                accuracy: Some(accuracy),
                accuracy_ci: Some(ConfidenceInterval {
                    lo: accuracy - 0.023,
                    hi: accuracy + 0.019,
                    confidence: 0.95,
                }),
                macro_f1: Some(accuracy - 0.01),
                confusion: Some(confusion(classes.len(), correct, windows as u64)),
                latency_device_us: Some(latency),
                latency_roundtrip_us: None,
                overhead_per_inference_us: None,
                windows_per_request: Some(1.0),
                agreement: (!reference).then(|| AgreementFigures {
                    reference_variant: "fp32".into(),
                    label: 0.975,
                    max_abs_diff: 0.12,
                    mean_abs_diff: 0.004,
                    n: windows,
                    source: timing,
                }),
                latency_ratio_vs_reference: None,
                latency_ratio_by_block: None,
                latency_ratio_vs_champions: Vec::new(),
                latency_ratio_vs_runtime: None,
                model_load_ms: Some(12.0),
                rss_before_load_kib: None,
                rss_after_load_kib: None,
                peak_rss_kib: (!mcu).then_some(if variant == "int8" { 18_000 } else { 24_500 }),
                model_size_bytes: if variant == "int8" { 52_000 } else { 201_000 },
                energy: Some(Energy {
                    per_inference_j: median * 1e-6 * if mcu { 0.09 } else { 2.1 },
                    per_inference_error_j: median * 1e-7,
                    idle_w: if mcu { 0.02 } else { 2.7 },
                    average_w: if mcu { 0.11 } else { 4.8 },
                    peak_w: if mcu { 0.13 } else { 6.2 },
                    total_j: 3.5,
                    windows: 5,
                    inferences: 20_000,
                    source: power,
                }),
                energy_error: None,
                throughput: Some(Throughput {
                    per_second: 1e6 / median,
                    min_per_second: 0.97e6 / median,
                    max_per_second: 1.02e6 / median,
                    windows: 5,
                    window_s: 10.2,
                    inferences: 20_000,
                    meets_mlperf_tiny_rule: true,
                    source: if mcu {
                        Source::Emulated
                    } else {
                        Source::Measured
                    },
                }),
                flash_bytes: mcu.then_some(148_000),
                static_ram_bytes: mcu.then_some(61_000),
                heap_after_load_bytes: mcu.then_some(12_032),
                stack_high_water_bytes: mcu.then_some(7_712),
                sources,
                task: None,
            }),
            provenance: Provenance {
                model_path: format!("models/{variant}.onnx"),
                model_sha256: format!("{:064x}", i + 0xabc),
                model_bytes: 201_000,
                firmware_sha256: mcu.then(|| "f".repeat(64)),
                dataset_sha256: "d".repeat(64),
                harness_version: "0.1.0".into(),
                board_facts: None,
            },
        });
    }
    entries.push(Entry {
        board: "jetson-01".into(),
        model: "kws".into(),
        variant: "fp32".into(),
        reference: true,
        champion: false,
        runtime: None,
        status: EntryStatus::NotRun,
        error: Some(EntryError {
            kind: RejectionKind::Infrastructure,
            message: "ssh connection refused".into(),
        }),
        metrics: None,
        provenance: Provenance {
            model_path: "models/fp32.onnx".into(),
            model_sha256: "0".repeat(64),
            model_bytes: 201_000,
            firmware_sha256: None,
            dataset_sha256: "d".repeat(64),
            harness_version: "0.1.0".into(),
            board_facts: None,
        },
    });
    let gate = |gate: &str,
                metric: &str,
                board: &str,
                model: &str,
                variant: &str,
                cmp: &str,
                threshold: f64,
                measured: f64,
                verdict: Verdict| GateResult {
        gate: gate.into(),
        metric: Metric::from_name(metric).expect("the fixture names known metrics"),
        board: board.into(),
        board_class: class_of(board).into(),
        model: model.into(),
        variant: variant.into(),
        comparison: match cmp {
            "at-most" => Comparison::AtMost,
            _ => Comparison::AtLeast,
        },
        scale: GateScale::Metric,
        threshold: Some(threshold),
        measured: Some(measured),
        measured_ci: Some(ConfidenceInterval {
            lo: measured * 0.97,
            hi: measured * 1.03,
            confidence: 0.95,
        }),
        baseline: None,
        verdict,
        evidence: format!("{metric} {measured:.4} vs threshold {threshold:.4} on {board}"),
    };
    // A champion head to head judges the candidate/champion ratio, not microseconds.
    let head_to_head = GateResult {
        scale: GateScale::Ratio,
        baseline: Some(Baseline {
            kind: BaselineKind::Champion,
            variant: "int8".into(),
            run_id: Some("20260101T000000-0001".into()),
            value: 455.0,
        }),
        ..gate(
            "latency.p50 <= champion + 10%",
            "latency.p50",
            "pi5-01",
            "kws",
            "int8",
            "at-most",
            1.1,
            0.98,
            Verdict::Pass,
        )
    };
    let gates = vec![
        head_to_head,
        gate(
            "latency.p99 <= 1 ms",
            "latency.p99",
            "pi5-01",
            "kws",
            "fp32",
            "at-most",
            1000.0,
            690.0,
            Verdict::Pass,
        ),
        gate(
            "accuracy >= 99% of reference",
            "accuracy",
            "pi5-01",
            "kws",
            "int8",
            "at-least",
            0.933,
            0.938,
            Verdict::Pass,
        ),
        gate(
            "latency.p99 <= 1 ms",
            "latency.p99",
            "pi5-01",
            "kws",
            "int8",
            "at-most",
            1000.0,
            450.0,
            Verdict::Pass,
        ),
        gate(
            "latency.p99 <= 1 ms",
            "latency.p99",
            "pi5-01",
            HOSTILE_MODEL,
            "fp32",
            "at-most",
            1000.0,
            210.0,
            Verdict::Pass,
        ),
        gate(
            "latency.p99 <= 12 ms",
            "latency.p99",
            "qemu-stm32",
            "kws",
            "fp32",
            "at-most",
            12_000.0,
            16_500.0,
            Verdict::Fail,
        ),
        gate(
            "accuracy >= 99% of reference",
            "accuracy",
            "qemu-stm32",
            "kws",
            "int8",
            "at-least",
            0.933,
            0.925,
            Verdict::Inconclusive,
        ),
        gate(
            "latency.p99 <= 12 ms",
            "latency.p99",
            "qemu-stm32",
            "kws",
            "int8",
            "at-most",
            12_000.0,
            7_000.0,
            Verdict::Pass,
        ),
        gate(
            "energy_per_inference <= 1 mJ",
            "energy_per_inference",
            "qemu-stm32",
            "kws",
            "int8",
            "at-most",
            1e-3,
            3.7e-4,
            Verdict::Pass,
        ),
    ];
    let verdict =
        |model: &str, variant: &str, class: &str, verdict: Option<Verdict>, infra: Option<&str>| {
            let count = |v| {
                gates
                    .iter()
                    .filter(|g| {
                        g.model == model
                            && g.variant == variant
                            && g.board_class == class
                            && g.verdict == v
                    })
                    .count()
            };
            BuildVerdict {
                model: model.into(),
                variant: variant.into(),
                board_class: class.into(),
                verdict,
                infra_error: infra.map(String::from),
                gates_passed: count(Verdict::Pass),
                gates_failed: count(Verdict::Fail),
                gates_inconclusive: count(Verdict::Inconclusive),
            }
        };
    let verdicts = vec![
        verdict("kws", "fp32", "raspberry-pi", Some(Verdict::Pass), None),
        verdict("kws", "int8", "raspberry-pi", Some(Verdict::Pass), None),
        verdict(
            HOSTILE_MODEL,
            "fp32",
            "raspberry-pi",
            Some(Verdict::Pass),
            None,
        ),
        verdict("kws", "fp32", "stm32", Some(Verdict::Fail), None),
        verdict("kws", "int8", "stm32", Some(Verdict::Inconclusive), None),
        verdict(
            "kws",
            "fp32",
            "jetson",
            None,
            Some("board jetson-01 failed health check: ssh connection refused"),
        ),
    ];
    let pi_facts = BoardFacts {
        arch: "aarch64".into(),
        cpu_model: Some("Cortex-A76".into()),
        cores: Some(4),
        ram_kib: Some(8_000_000),
        os: Some("Debian GNU/Linux 12".into()),
        kernel: Some("6.6.51".into()),
        cpu_governor: Some("performance".into()),
        clock_hz: None,
        cpu_features: vec!["asimd".into(), "asimdhp".into(), "asimddp".into()],
    };
    let mcu_facts = BoardFacts {
        arch: "thumbv7em".into(),
        cpu_model: Some("STM32F405 (QEMU netduinoplus2)".into()),
        cores: Some(1),
        ram_kib: Some(192),
        os: None,
        kernel: None,
        cpu_governor: None,
        clock_hz: Some(168_000_000),
        cpu_features: Vec::new(),
    };
    let boards = vec![
        BoardResult {
            board: "pi5-01".into(),
            kind: "raspberry-pi".into(),
            status: BoardStatus::Completed,
            failure: None,
            agent: Some(AgentInfo {
                name: "gauntlet-agent".into(),
                version: "0.1.0".into(),
                protocol_version: 1,
            }),
            facts: Some(pi_facts),
            timing_source: Some(Source::Measured),
            power_trace: Some(power_trace(Source::Measured, &["kws:fp32", "kws:int8"])),
            power_error: None,
            health: None,
            deploy: None,
            temperatures: Some(Temperatures {
                interval_s: 1.0,
                samples: 3,
                exposed: true,
                zones: vec![ZoneTemperatures {
                    zone: "cpu-thermal".into(),
                    min_c: 51.2,
                    max_c: 58.9,
                    t_s: vec![0.0, 1.0, 2.0],
                    celsius: vec![51.2, 55.0, 58.9],
                }],
                error: None,
            }),
            session_s: Some(12.5),
            machine: Some(gauntlet_results::Machine {
                changes: vec![gauntlet_results::MachineChange {
                    kind: "governor".into(),
                    model: "kws".into(),
                    repeat: 0,
                    block: 4,
                    detail: "governor ondemand → powersave".into(),
                }],
                ..Default::default()
            }),
            fresh_agents: 2,
            agent_cpus: vec![3],
        },
        BoardResult {
            board: "qemu-stm32".into(),
            kind: "stm32".into(),
            status: BoardStatus::Completed,
            failure: None,
            agent: Some(AgentInfo {
                name: "gauntlet-fw".into(),
                version: "0.1.0".into(),
                protocol_version: 1,
            }),
            facts: Some(mcu_facts),
            timing_source: Some(Source::Emulated),
            power_trace: Some(power_trace(Source::Simulated, &["kws:fp32", "kws:int8"])),
            power_error: None,
            health: None,
            deploy: None,
            temperatures: None,
            session_s: None,
            machine: None,
            fresh_agents: 0,
            agent_cpus: Vec::new(),
        },
        BoardResult {
            board: "jetson-01".into(),
            kind: "jetson".into(),
            status: BoardStatus::InfraFailed,
            failure: Some(Failure {
                stage: "health-check".into(),
                reason: "ssh connection refused".into(),
            }),
            agent: None,
            facts: None,
            timing_source: None,
            power_trace: None,
            power_error: Some("no session: the board failed its health check".into()),
            health: None,
            deploy: None,
            temperatures: None,
            session_s: None,
            machine: None,
            fresh_agents: 0,
            agent_cpus: Vec::new(),
        },
    ];
    let results = Results {
        schema: SCHEMA.into(),
        schema_version: SCHEMA_VERSION,
        run_id: "20261125-101500-a1b2".into(),
        started_at: "2026-11-25T10:15:00Z".into(),
        finished_at: "2026-11-25T10:21:42Z".into(),
        harness: Harness {
            version: "0.1.0".into(),
            git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        },
        scenario: FileRef {
            name: "kws-release".into(),
            path: "scenarios/kws.toml".into(),
            sha256: "5".repeat(64),
        },
        rig: FileRef {
            name: "lab".into(),
            path: "rigs/lab.toml".into(),
            sha256: "7".repeat(64),
        },
        dataset: DatasetInfo {
            name: "speech-commands-mini".into(),
            sha256: "d".repeat(64),
            windows: 400,
            subset_of: None,
            window_len: 16_000,
            classes: classes.iter().map(|c| c.to_string()).collect(),
        },
        boards,
        boards_wall_s: None,
        entries,
        gates,
        verdicts,
        outcome: Outcome::InfraFailure,
    };
    (results, samples)
}

fn class_of(board: &str) -> &'static str {
    match board {
        "pi5-01" => "raspberry-pi",
        "qemu-stm32" => "stm32",
        _ => "jetson",
    }
}

/// Right-skewed samples around `median` µs with a sparse slow tail, from a fixed-seed generator.
pub fn latency_samples(n: usize, median: f64, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let u = uniform().max(1e-12);
            let tail = if uniform() < 0.01 { 3.0 } else { 1.0 };
            median * (1.0 + 0.15 * (-u.ln() - std::f64::consts::LN_2)) * tail
        })
        .map(|x| x.max(median * 0.5))
        .collect()
}

fn confusion(k: usize, correct: u64, total: u64) -> Vec<Vec<u64>> {
    let per_class = total / k as u64;
    let wrong = per_class - correct / k as u64;
    (0..k)
        .map(|r| {
            (0..k)
                .map(|c| {
                    if r == c {
                        per_class - wrong
                    } else if c == (r + 1) % k {
                        wrong
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect()
}

fn power_trace(source: Source, labels: &[&str]) -> PowerTrace {
    let n = 600;
    let t_s: Vec<f64> = (0..n).map(|i| i as f64 * 0.1).collect();
    let windows: Vec<TraceWindow> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| TraceWindow {
            label: l.to_string(),
            start_s: 5.0 + i as f64 * 25.0,
            end_s: 25.0 + i as f64 * 25.0,
        })
        .collect();
    let busy = |t: f64| windows.iter().any(|w| w.start_s <= t && t < w.end_s);
    let watts_mean: Vec<f64> = t_s
        .iter()
        .map(|&t| if busy(t) { 4.8 } else { 2.7 } + 0.1 * (t * 3.0).sin())
        .collect();
    PowerTrace {
        sensor: if source == Source::Simulated {
            "simulated-ina219".into()
        } else {
            "ina219@0x40".into()
        },
        source,
        watts_min: watts_mean.iter().map(|w| w - 0.2).collect(),
        watts_max: watts_mean.iter().map(|w| w + 0.3).collect(),
        watts_mean,
        t_s,
        windows,
        sample_hz: 940.0,
        samples: 56_400,
        late_fraction: 0.0004,
    }
}
