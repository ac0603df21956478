//! Builders of boards and results for tests of this crate and of the crates that store and show
//! verdicts (feature `fixtures`). Every figure is empty unless a test sets it.

use std::collections::BTreeMap;

use gauntlet_measure::{ConfidenceInterval, SummaryOptions, summarize};
use gauntlet_results::*;
use gauntlet_spec::{AgentBinary, Board, BoardKind, Connection, LocalTransport, Timeouts};

/// The scenario name every fixture uses.
pub const SCENARIO: &str = "demo";

/// A local-agent board with the `kind` label and, when given, a `class` label.
pub fn board(id: &str, kind: BoardKind, class: Option<&str>) -> Board {
    let mut labels = BTreeMap::from([("kind".to_string(), kind.name().to_string())]);
    if let Some(c) = class {
        labels.insert("class".into(), c.into());
    }
    Board {
        id: id.into(),
        kind,
        labels,
        connection: Connection::Local {
            agent: AgentBinary::Bundled,
            transport: LocalTransport::Stdio,
        },
        power: None,
        power_switch: None,
        timeouts: Timeouts::default(),
        health: Default::default(),
        onnxruntime: None,
        cpus: Vec::new(),
    }
}

pub fn ci(lo: f64, hi: f64) -> ConfidenceInterval {
    ConfidenceInterval {
        lo,
        hi,
        confidence: 0.95,
    }
}

/// The latency record `results` would hold for these device times (µs).
pub fn latency_of(samples_us: &[f64]) -> Latency {
    let opts = SummaryOptions {
        bootstrap_resamples: 200,
        ..SummaryOptions::default()
    };
    let summary = summarize(samples_us, &opts).expect("fixture samples are valid");
    Latency::from_summary(summary, None, Source::Measured)
}

/// A record of `n` samples whose p99 and its interval are then forced to the given values.
pub fn latency_with_p99(n: usize, p99: f64, p99_ci: ConfidenceInterval) -> Latency {
    let samples: Vec<f64> = (0..n).map(|i| 100.0 + (i % 10) as f64).collect();
    let mut l = latency_of(&samples);
    l.p99 = p99;
    l.summary.p99 = p99;
    l.summary.ci.as_mut().expect("fixture bootstraps").p99 = p99_ci;
    l
}

/// No figures but the model's size (200,000 bytes).
pub fn metrics() -> Metrics {
    Metrics {
        windows_scored: 1000,
        accuracy: None,
        accuracy_ci: None,
        macro_f1: None,
        confusion: None,
        latency_device_us: None,
        latency_roundtrip_us: None,
        overhead_per_inference_us: None,
        windows_per_request: None,
        agreement: None,
        latency_ratio_vs_reference: None,
        latency_ratio_by_block: None,
        latency_ratio_vs_champions: Vec::new(),
        latency_ratio_vs_runtime: None,
        model_load_ms: None,
        rss_before_load_kib: None,
        rss_after_load_kib: None,
        peak_rss_kib: None,
        model_size_bytes: 200_000,
        energy: None,
        throughput: None,
        energy_error: None,
        flash_bytes: None,
        static_ram_bytes: None,
        heap_after_load_bytes: None,
        stack_high_water_bytes: None,
        sources: BTreeMap::new(),
        task: None,
    }
}

/// A completed build of model `cnn`; its model file hashes to `sha-model-<variant>`.
pub fn entry(board: &str, variant: &str, reference: bool, m: Metrics) -> Entry {
    Entry {
        board: board.into(),
        model: "cnn".into(),
        variant: variant.into(),
        reference,
        champion: false,
        runtime: None,
        status: EntryStatus::Completed,
        error: None,
        metrics: Some(m),
        provenance: Provenance {
            model_path: format!("/models/{variant}.onnx"),
            model_sha256: format!("sha-model-{variant}"),
            model_bytes: 200_000,
            firmware_sha256: None,
            dataset_sha256: "sha-data".into(),
            harness_version: "0.1.0".into(),
            board_facts: None,
        },
    }
}

/// An entry measured on a board whose CPU reported `features`.
pub fn on_cpu(mut e: Entry, features: &[&str]) -> Entry {
    e.provenance.board_facts = Some(BoardFacts {
        arch: "x86_64".into(),
        cpu_model: Some("AMD EPYC".into()),
        cores: Some(2),
        ram_kib: None,
        os: None,
        kernel: None,
        cpu_governor: None,
        clock_hz: None,
        cpu_features: features.iter().map(|f| f.to_string()).collect(),
    });
    e
}

/// `e` with another status and the error that explains it.
pub fn with_status(mut e: Entry, status: EntryStatus, kind: RejectionKind, message: &str) -> Entry {
    e.status = status;
    e.error = Some(EntryError {
        kind,
        message: message.into(),
    });
    e
}

/// Results of scenario [`SCENARIO`] (sha `sha-scenario`) on rig `local` (sha `sha-rig`) over dataset
/// sha `sha-data`, with a completed local board per board the entries name; not yet judged.
pub fn results(run_id: &str, entries: Vec<Entry>) -> Results {
    let mut boards: Vec<BoardResult> = Vec::new();
    for e in &entries {
        if !boards.iter().any(|b| b.board == e.board) {
            boards.push(BoardResult {
                board: e.board.clone(),
                kind: "local".into(),
                status: BoardStatus::Completed,
                failure: None,
                agent: None,
                facts: None,
                timing_source: None,
                power_trace: None,
                power_error: None,
                health: None,
                deploy: None,
                temperatures: None,
                session_s: None,
                machine: None,
                fresh_agents: 0,
                agent_cpus: Vec::new(),
            });
        }
    }
    Results {
        schema: SCHEMA.into(),
        schema_version: SCHEMA_VERSION,
        run_id: run_id.into(),
        started_at: "2026-11-26T00:00:00Z".into(),
        finished_at: "2026-11-26T00:01:00Z".into(),
        harness: Harness {
            version: "0.1.0".into(),
            git_commit: None,
        },
        scenario: FileRef {
            name: SCENARIO.into(),
            path: "/scenarios/demo.toml".into(),
            sha256: "sha-scenario".into(),
        },
        rig: FileRef {
            name: "local".into(),
            path: "/rigs/local.toml".into(),
            sha256: "sha-rig".into(),
        },
        dataset: DatasetInfo {
            name: "d".into(),
            sha256: "sha-data".into(),
            windows: 1000,
            subset_of: None,
            window_len: 64,
            classes: vec!["a".into(), "b".into()],
        },
        boards,
        boards_wall_s: None,
        entries,
        gates: Vec::new(),
        verdicts: Vec::new(),
        outcome: Outcome::Pass,
    }
}
