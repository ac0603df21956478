//! One run, from a validated plan to results on disk and in the store.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gauntlet_gate::ChampionLookup;
use gauntlet_report::{Format, MemorySamples, ReportError, ReportInput};
use gauntlet_results::{Results, RunMeta};
use gauntlet_runner::{EventSink, Plan, RunRecord};
use gauntlet_store::{EntryKey, NewRun, Store, StoreError};
use thiserror::Error;

use crate::output::{OutputError, write_atomically};

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("create the output folder `{path}`: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("render the {format} report: {source}")]
    Render {
        format: &'static str,
        source: ReportError,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// What a run produced.
pub struct Finished {
    pub results: Results,
    /// The run folder holding results.json and the reports.
    pub out: PathBuf,
}

/// Runs `plan` on its boards, judges it and records it in `store` and in `out` (by default
/// `reports/out/<run-id>/`). `events` sees the run's progress.
pub fn run(
    plan: &Plan,
    store: &mut Store,
    out: Option<PathBuf>,
    events: &dyn EventSink,
) -> Result<Finished, RunError> {
    let started = SystemTime::now();
    let run_id = run_id(started);
    let handle = store.begin_run(&NewRun {
        id: run_id.clone(),
        scenario_name: plan.scenario.name.clone(),
        scenario_path: plan.scenario.source.path.display().to_string(),
        scenario_sha256: plan.scenario.source.sha256.clone(),
        rig_name: plan.rig.name.clone(),
        rig_sha256: plan.rig.source.sha256.clone(),
        started_at: timestamp(started),
    })?;
    let out = out.unwrap_or_else(|| PathBuf::from("reports/out").join(&run_id));
    let record = gauntlet_runner::run_plan(plan, events);
    let meta = RunMeta {
        run_id,
        started_at: timestamp(started),
        finished_at: timestamp(SystemTime::now()),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: Some(env!("GAUNTLET_GIT_COMMIT").to_string()).filter(|c| !c.is_empty()),
    };
    let mut results = gauntlet_results::analyze(plan, &record, &meta);
    let evaluation = gauntlet_gate::evaluate(&plan.scenario, &plan.boards, &results, &*store);
    results.gates = evaluation.gates;
    results.verdicts = evaluation.verdicts;
    results.outcome = evaluation.outcome;
    for board in &record.boards {
        for build in board.builds.iter().filter(|b| !b.device_ns.is_empty()) {
            let key = EntryKey {
                board: board.board.clone(),
                model: build.model.clone(),
                variant: build.variant.clone(),
            };
            store.record_samples(&handle, &key, &device_us(&build.device_ns))?;
        }
    }
    let mut samples = MemorySamples::new();
    for board in &record.boards {
        for build in &board.builds {
            samples.insert(
                &board.board,
                &build.model,
                &build.variant,
                device_us(&build.device_ns),
            );
        }
    }
    let champions = champions(store, &results);
    let input = ReportInput::new(&results, &samples).with_champions(&champions);
    write_run(&out, &input, &record)?;
    store.finish_run(&handle, &results, &plan.boards)?;
    Ok(Finished { results, out })
}

fn device_us(device_ns: &[u64]) -> Vec<f64> {
    device_ns.iter().map(|&ns| ns as f64 / 1e3).collect()
}

/// The champion each judged build would replace, for the report's release-manager section.
pub fn champions(store: &Store, results: &Results) -> Vec<gauntlet_report::Champion> {
    let ledger = store.champions(&results.scenario.name).unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    results
        .verdicts
        .iter()
        .filter(|v| seen.insert((v.model.clone(), v.board_class.clone())))
        .filter_map(|v| {
            let champion =
                ChampionLookup::champion(store, &results.scenario.name, &v.model, &v.board_class)
                    .ok()
                    .flatten()?;
            let promotion = ledger
                .iter()
                .rev()
                .find(|p| p.model == v.model && p.board_class == v.board_class);
            let m = &champion.metrics;
            Some(gauntlet_report::Champion {
                model: v.model.clone(),
                board_class: v.board_class.clone(),
                run_id: champion.run_id.clone(),
                variant: champion.variant.clone(),
                accuracy: m.accuracy,
                latency_p50_us: m.latency_device_us.as_ref().map(|l| l.p50),
                latency_p99_us: m.latency_device_us.as_ref().map(|l| l.p99),
                energy_per_inference_j: m.energy.as_ref().map(|e| e.per_inference_j),
                promoted_by: promotion.map(|p| p.by.clone()),
                promoted_at: promotion.map(|p| p.promoted_at.clone()),
            })
        })
        .collect()
}

/// Raw device latencies of every entry of a stored run.
pub fn stored_samples(store: &Store, results: &Results) -> MemorySamples {
    let mut samples = MemorySamples::new();
    for e in &results.entries {
        if let Ok(s) = store.samples(&results.run_id, &EntryKey::from(e)) {
            samples.insert(&e.board, &e.model, &e.variant, s);
        }
    }
    samples
}

fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn run_id(started: SystemTime) -> String {
    let stamp = timestamp(started).replace([':', '-'], "");
    let nanos = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{:04x}",
        stamp.trim_end_matches('Z'),
        (nanos ^ std::process::id()) & 0xffff
    )
}

/// Writes results.json, the reports and each build's raw scores.
fn write_run(out: &Path, input: &ReportInput, record: &RunRecord) -> Result<(), RunError> {
    let outputs = out.join("outputs");
    std::fs::create_dir_all(&outputs).map_err(|source| RunError::CreateDir {
        path: outputs.clone(),
        source,
    })?;
    for board in &record.boards {
        for build in board.builds.iter().filter(|b| !b.outputs.is_empty()) {
            let bytes: Vec<u8> = build.outputs.iter().flat_map(|v| v.to_le_bytes()).collect();
            let name = format!("{}__{}__{}.f32", board.board, build.model, build.variant);
            write_atomically(&outputs.join(name), &bytes)?;
        }
    }
    for format in Format::RUN_FOLDER {
        let reporter = format.reporter();
        let text = reporter.render(input).map_err(|source| RunError::Render {
            format: format.name(),
            source,
        })?;
        write_atomically(&out.join(reporter.file_name()), text.as_bytes())?;
    }
    Ok(())
}
