//! One run, from a validated plan to results on disk and in the store.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::SystemTime;

use gauntlet_gate::ChampionLookup;
use gauntlet_report::{Format, MemorySamples, ReportError, ReportInput};
use gauntlet_results::Results;
use gauntlet_runner::{Event, EventSink, Plan, RunMeta, RunRecord};
use gauntlet_store::{EntryKey, NewRun, RunHandle, Store, StoreError};
use thiserror::Error;

use crate::fleet::{self, Leasing};
use crate::output::{OutputError, RunFolder, join_file, write_atomically};

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("render the {format} report: {source}")]
    Render {
        format: &'static str,
        source: ReportError,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(
        "hold board(s) `{0}` for the whole run: the lease was lost (it expired, was released by force, or a database crash forgot it), so another run may have used the board before this one stopped driving it, and the figures measured up to then may be disturbed"
    )]
    LeaseLost(String),
}

/// What a run produced. `problems` lists what could not be written; each output was attempted
/// regardless of the others, so a full store still leaves results.json, and a failed report still
/// leaves the run in the store.
pub struct Finished {
    pub results: Results,
    /// The run folder holding results.json and the reports.
    pub out: PathBuf,
    /// Whether the store holds the finished run.
    pub recorded: bool,
    /// The store could not be reached through every retry, so the run is not recorded:
    /// `gauntlet runs import` records the run folder later.
    pub store_unavailable: bool,
    pub problems: Vec<RunError>,
}

/// Runs `plan` on its boards, judges it and records it in `store` and in `out` (by default
/// `reports/out/<run-id>/`). `events` sees the run's progress. In a PostgreSQL store shared by
/// runners every board is leased as `leasing` says from before the first is touched until the
/// last is done (a SQLite store is one host's, where the boards' `flock` decides and the leases
/// only record who holds what). The scenario's
/// pools get their boards then, and `plan.boards` keeps only the boards the run took. Errors
/// returned are those found before any board was touched; later failures are
/// [`Finished::problems`].
pub fn run(
    plan: &mut Plan,
    store: &mut Store,
    out: Option<PathBuf>,
    events: &dyn EventSink,
    leasing: &Leasing,
) -> Result<Finished, RunError> {
    let started = SystemTime::now();
    let run_id = run_id(started);
    let folder =
        RunFolder::prepare(out.unwrap_or_else(|| PathBuf::from("reports/out").join(&run_id)))?;
    let new_run = NewRun {
        id: run_id.clone(),
        scenario_name: plan.scenario.name.clone(),
        scenario_path: plan.scenario.source.path.display().to_string(),
        scenario_sha256: plan.scenario.source.sha256.clone(),
        rig_name: plan.rig.name.clone(),
        rig_sha256: plan.rig.source.sha256.clone(),
        started_at: timestamp(started),
    };
    let handle = store.begin_run(&new_run)?;
    let shared = store.dialect() == gauntlet_store::Dialect::Postgres;
    let targets = &plan.scenario.targets;
    let fixed = |b: &gauntlet_spec::Board| targets.pools.is_empty() || targets.fixed(b);
    let pools: Vec<fleet::PoolRequest> = targets
        .pools
        .iter()
        .map(|p| fleet::PoolRequest {
            labels: p
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            count: p.count,
            candidates: gauntlet_spec::pool_candidates(targets, p, &plan.rig),
        })
        .collect();
    let fixed_boards: Vec<gauntlet_spec::Board> =
        plan.boards.iter().filter(|b| fixed(b)).cloned().collect();
    // The heartbeat and the leases have a connection of their own, so that they never wait
    // behind the run's writes.
    let held = Store::open_for_leases(&leasing.db).and_then(|beats| {
        let beats = std::sync::Arc::new(beats);
        let alive = fleet::keep_run_alive(beats.clone(), &run_id, leasing.ttl);
        fleet::hold_boards(beats, leasing, shared, &fixed_boards, &pools, &run_id)
            .map(|held| (alive, held))
    });
    let (alive, held) = match held {
        Ok(held) => held,
        Err(e) => {
            let _ = store.abandon_run(handle);
            return Err(e.into());
        }
    };
    plan.boards
        .retain(|b| fixed(b) || held.pooled.contains(&b.id));
    let plan = &*plan;
    let fence = held.fence(&plan.boards);
    let (record, streamed) = replay_streaming(plan, store, &handle, events, &fence);
    // Before the leases end, so that no other run gets an unhealthy board in between.
    let refused = fleet::health_refusals(&record);
    let rotated = (shared && !refused.is_empty())
        .then(|| fleet::take_out_unhealthy(store, &plan.boards, &refused, &run_id).err())
        .flatten();
    let lost = held.release();
    let meta = RunMeta {
        run_id,
        started_at: timestamp(started),
        finished_at: timestamp(SystemTime::now()),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: Some(env!("GAUNTLET_GIT_COMMIT").to_string()).filter(|c| !c.is_empty()),
    };
    let mut results = gauntlet_runner::analyze(plan, &record, &meta);
    let evaluation = gauntlet_gate::evaluate(&plan.scenario, &plan.boards, &results, &*store);
    results.gates = evaluation.gates;
    results.verdicts = evaluation.verdicts;
    results.outcome = evaluation.outcome;
    // A FAIL measured while the machine changed under a scenario asking for a stable one says
    // nothing about the model: the rig was unfit.
    if results.boards.iter().any(|b| {
        b.failure
            .as_ref()
            .is_some_and(|f| f.stage == gauntlet_runner::machine::UNSTABLE_STAGE)
    }) {
        results.outcome = gauntlet_results::Outcome::InfraFailure;
    }
    let mut samples = MemorySamples::new();
    let mut measured = Vec::new();
    for board in &record.boards {
        for build in &board.builds {
            let device_us = device_us(&build.device_ns);
            if !device_us.is_empty() {
                let key = EntryKey {
                    board: board.board.clone(),
                    model: build.model.clone(),
                    variant: build.variant.clone(),
                };
                measured.push((key, device_us.clone()));
            }
            samples.insert(&board.board, &build.model, &build.variant, device_us);
        }
    }
    let champions = champions(store, &results);
    let trends = trends(store, &results, &plan.boards);
    let input = ReportInput::new(&results, &samples)
        .with_champions(&champions)
        .with_trends(&trends);
    // Files first: they do not depend on the store, which may be what fails.
    let mut problems = write_run(&folder, &input, &record);
    problems.extend(rotated.map(RunError::from));
    if !lost.is_empty() {
        problems.push(RunError::LeaseLost(lost.join("`, `")));
    }
    problems.extend(
        fleet::write_samples(folder.root(), &measured)
            .err()
            .map(RunError::from),
    );
    let recorded = if streamed.is_ok() {
        store.finish_run(&handle, &results, &plan.boards)
    } else {
        // The raw samples are written again whole, with the results, in one transaction.
        store
            .import_run(&results, &plan.boards, &measured, &new_run)
            .map(|_| ())
    };
    let store_unavailable = recorded.as_ref().is_err_and(StoreError::is_unavailable);
    let recorded = match recorded {
        Ok(()) => true,
        Err(e) => {
            problems.push(e.into());
            // Best effort: the store just failed, and the run is already on disk.
            let _ = store.abandon_run(handle);
            false
        }
    };
    // Beating until the row is complete (or given up on), so that it never reads incomplete
    // while its results are still being written.
    drop(alive);
    Ok(Finished {
        results,
        out: folder.root().to_path_buf(),
        recorded,
        store_unavailable,
        problems,
    })
}

/// Runs the plan while its raw samples reach the store block by block (one insert, one
/// transaction each), so a harness killed mid-run leaves an `incomplete` run holding every block
/// it committed. A write that fails stops the streaming and is returned; the run goes on.
fn replay_streaming(
    plan: &Plan,
    store: &Store,
    handle: &RunHandle,
    events: &dyn EventSink,
    fence: &dyn gauntlet_runner::BoardFence,
) -> (RunRecord, Result<(), StoreError>) {
    let (blocks, arriving) = mpsc::channel();
    std::thread::scope(|scope| {
        let runner = scope.spawn(move || {
            let sink = StreamBlocks {
                blocks,
                next: events,
            };
            gauntlet_runner::run_plan_fenced(plan, &sink, fence)
        });
        let mut streamed = Ok(());
        for (key, device_ns) in arriving {
            if streamed.is_ok() {
                streamed = store.record_samples(handle, &key, &device_us(&device_ns));
            }
        }
        let record = runner
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (record, streamed)
    })
}

/// Hands measured blocks to the thread that writes the store; other events go on to `next`.
struct StreamBlocks<'a> {
    blocks: mpsc::Sender<(EntryKey, Vec<u64>)>,
    next: &'a dyn EventSink,
}

impl EventSink for StreamBlocks<'_> {
    fn event(&self, event: Event) {
        match event {
            Event::Samples {
                board,
                model,
                variant,
                device_ns,
            } => {
                let key = EntryKey {
                    board,
                    model,
                    variant,
                };
                // The writer only stops reading once the runner is done.
                let _ = self.blocks.send((key, device_ns));
            }
            other => self.next.event(other),
        }
    }
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

/// How many earlier runs the HTML report's trend shows.
const TREND_RUNS: usize = 10;

/// The store's last complete runs of each build of `results` on its board, for the report's
/// trend; none when the store cannot say (the report just leaves the trend out).
fn trends(
    store: &Store,
    results: &Results,
    boards: &[gauntlet_spec::Board],
) -> Vec<gauntlet_report::Trend> {
    let mut history = std::collections::BTreeMap::new();
    let mut trends = Vec::new();
    for e in &results.entries {
        let Some(board) = boards.iter().find(|b| b.id == e.board) else {
            continue;
        };
        let class = gauntlet_gate::board_class(board);
        let points = history.entry(class.clone()).or_insert_with(|| {
            store
                .trend(
                    &results.scenario.name,
                    gauntlet_report::TREND_METRIC.name(),
                    Some(&class),
                    TREND_RUNS,
                )
                .unwrap_or_default()
        });
        let runs: Vec<gauntlet_report::TrendRun> = points
            .iter()
            .filter(|p| p.board == e.board && p.model == e.model && p.variant == e.variant)
            .filter_map(|p| {
                Some(gauntlet_report::TrendRun {
                    run_id: p.run_id.clone(),
                    started_at: p.started_at.clone(),
                    value: p.value?,
                })
            })
            .collect();
        trends.push(gauntlet_report::Trend {
            model: e.model.clone(),
            variant: e.variant.clone(),
            board: e.board.clone(),
            board_class: class,
            history: runs,
        });
    }
    trends
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

/// RFC 3339 to the second, UTC.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A run id from its start time, e.g. `20261201T183017-1a2b`.
pub fn run_id(started: SystemTime) -> String {
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

/// Writes results.json, the reports and each build's raw scores, each regardless of the others;
/// returns what failed.
fn write_run(folder: &RunFolder, input: &ReportInput, record: &RunRecord) -> Vec<RunError> {
    let mut problems = Vec::new();
    for format in Format::RUN_FOLDER {
        let reporter = format.reporter();
        let written = reporter
            .render(input)
            .map_err(|source| RunError::Render {
                format: format.name(),
                source,
            })
            .and_then(|text| {
                let path = folder.root().join(reporter.file_name());
                Ok(write_atomically(&path, text.as_bytes())?)
            });
        problems.extend(written.err());
    }
    let outputs = folder.outputs();
    for board in &record.boards {
        for build in board.builds.iter().filter(|b| !b.outputs.is_empty()) {
            let bytes: Vec<u8> = build.outputs.iter().flat_map(|v| v.to_le_bytes()).collect();
            let parts = [
                ("board id", board.board.as_str()),
                ("model name", build.model.as_str()),
                ("variant", build.variant.as_str()),
            ];
            let written = join_file(&outputs, &parts, ".f32")
                .and_then(|path| write_atomically(&path, &bytes));
            problems.extend(written.err().map(RunError::from));
        }
    }
    problems
}
