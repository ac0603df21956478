//! `gauntlet drift`: requalify the champion on fresh recordings. The recordings are cut exactly as
//! the scenario cuts its dataset (same columns, window, stride, layout, labels and subset; every
//! row of a fresh recording is new data, so no held-out selection), replayed through the
//! champion's own build on a board of its class through the same plan and board drivers as
//! `gauntlet run`, and compared with the reference windows replayed the same way.
//!
//! Judging (documented for users in README "Drift"):
//! - An input feature is the newest reading of each dataset column in a window (its last row),
//!   so each recording row counts once with stride 1, as the labels are read.
//! - A size gate (`psi`, `ks`, `mean_shift`, `sd_change`, `score_psi`, `score_ks`, `class_mix`
//!   `at_most X`) PASSes when the size is at most X. Above X it FAILs when the shift is
//!   significant at `alpha` (the feature's Holm-adjusted KS p-value, the score's KS p-value, or
//!   the class mix's χ² p-value), else it is INCONCLUSIVE: too few windows to call it real.
//! - A task gate (`accuracy at_least { vs_champion = 0.05 }` …) is judged exactly as a run's gate
//!   on the new recordings' figures, against the champion's stored ones.
//! - Verdict: `drifted` if any gate FAILs, else `inconclusive` if any is INCONCLUSIVE, else
//!   `requalified`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, anyhow};
use gauntlet_dataset::{ColumnRef, Layout, Recording, Selection, Windows};
use gauntlet_gate::{Rules, board_class, metric_figure};
use gauntlet_measure::ConfidenceInterval;
use gauntlet_measure::drift::{self, Matrix};
use gauntlet_results::{
    ClassMix, DRIFT_SCHEMA, DRIFT_VERSION, DriftBoard, DriftChampion, DriftData, DriftGateResult,
    DriftResults, DriftVerdict, Entry, EntryStatus, FeatureRow, FileRef, Harness, OutputDrift,
    PerformanceRow, RecordingRef, Results, Source, Verdict,
};
use gauntlet_runner::plan::PlannedModel;
use gauntlet_runner::{BuildRecord, Plan, RunMeta};
use gauntlet_spec::{Board, DriftGate, DriftStatistic, GateSpec, Metric, Scenario, Task};
use gauntlet_store::Store;

use gauntlet::fleet::{self, HeldBoards, Leasing};
use gauntlet::pipeline::{RunError, run_id, timestamp};

use crate::head_to_head::champion_build;
use crate::stdout;

/// Bins of the reference-vs-new histograms in drift.json and the reports.
const HISTOGRAM_BINS: usize = 24;

/// Why drift could not be judged: the user's input (exit 2) or the rig (exit 3).
pub enum DriftError {
    Input(anyhow::Error),
    Infra(anyhow::Error),
}

pub struct DriftRequest<'a> {
    pub recordings: &'a [String],
    pub board_class: Option<&'a str>,
    pub out: Option<PathBuf>,
    pub leasing: &'a Leasing,
}

pub struct Judged {
    pub results: DriftResults,
    pub out: PathBuf,
}

/// The scenario's held-out windows, or its `[drift] reference_files` cut the same way.
fn reference_windows(plan: &Plan) -> Result<(Arc<Windows>, &'static str), DriftError> {
    match &plan.scenario.drift.reference_files {
        None => Ok((plan.windows.clone(), "held-out")),
        Some(files) => Ok((Arc::new(cut(&plan.scenario, files)?), "files")),
    }
}

/// Cuts `files` as the scenario cuts its dataset, every row selected.
fn cut(scenario: &Scenario, files: &[PathBuf]) -> Result<Windows, DriftError> {
    let mut spec = scenario.dataset.clone();
    spec.recordings = files
        .iter()
        .map(|path| Recording {
            path: path.clone(),
            class: None,
        })
        .collect();
    spec.selection = Selection::All;
    let windows = gauntlet_dataset::load(&spec).map_err(|e| {
        DriftError::Input(anyhow!(
            "cut the recordings as scenario `{}` cuts `{}`: {e}",
            scenario.name,
            scenario.dataset.name
        ))
    })?;
    if windows.is_empty() {
        return Err(DriftError::Input(anyhow!(
            "cut the recordings as scenario `{}` does: they yield no window",
            scenario.name
        )));
    }
    Ok(match scenario.subset {
        Some(n) => windows.stratified_subset(n),
        None => windows,
    })
}

pub fn drift(plan: Plan, store: &Store, request: &DriftRequest) -> Result<Judged, DriftError> {
    let started = SystemTime::now();
    let drift_id = format!("drift-{}", run_id(started));
    let scenario = &plan.scenario;
    let model = match &scenario.drift.model {
        Some(name) => plan.models.iter().find(|m| &m.name == name),
        None => plan.models.first(),
    }
    .ok_or_else(|| DriftError::Input(anyhow!("find the model of scenario `{}`", scenario.name)))?;
    let recordings = if request.recordings.is_empty() {
        scenario.drift.recordings.clone()
    } else {
        gauntlet_spec::resolve_recordings(request.recordings, Path::new("."))
            .map_err(|e| DriftError::Input(anyhow!(e)))?
    };
    if recordings.is_empty() {
        return Err(DriftError::Input(anyhow!(
            "name the recordings to requalify on: give --recordings or `[drift] recordings` in `{}`",
            scenario.source.path.display()
        )));
    }
    // Bad recordings are the user's to fix before any board or champion is touched.
    let new_windows = Arc::new(cut(scenario, &recordings)?);
    let (reference, reference_kind) = reference_windows(&plan)?;
    let (board, promotion) = champion_board(&plan, store, &model.name, request.board_class)?;
    let build = champion_build(store, &promotion, &promotion.variant).map_err(|why| {
        DriftError::Input(anyhow!(
            "replay the champion {} {} of scenario `{}` (run {}): {why}",
            model.name,
            promotion.variant,
            scenario.name,
            promotion.run_id
        ))
    })?;
    let single = |windows: Arc<Windows>| -> Plan {
        let mut s = plan.scenario.clone();
        s.gates.clear();
        // One pass is what the statistics read; the latency rules of a run do not apply.
        s.run.repeats = 1;
        s.run.min_inferences = 0;
        s.run.min_duration = std::time::Duration::ZERO;
        s.run.energy_windows = 0;
        s.run.throughput = false;
        s.overrides.clear();
        Plan {
            scenario: s,
            rig: plan.rig.clone(),
            boards: vec![board.clone()],
            windows,
            models: vec![PlannedModel {
                builds: vec![gauntlet_runner::PlannedBuild {
                    reference: true,
                    champion: false,
                    ..build.clone()
                }],
                ..model.clone()
            }],
        }
    };
    let reference_plan = single(reference.clone());
    let new_plan = single(new_windows.clone());
    let held = lease_board(store, request.leasing, &board, &drift_id)?;
    let fence = held.fence(std::slice::from_ref(&board));
    let (_, reference_outputs) = replay(&reference_plan, "reference", &fence)?;
    let (new_run, new_outputs) = replay(&new_plan, "new recordings", &fence)?;
    let lost = held.release();
    if !lost.is_empty() {
        return Err(DriftError::Infra(anyhow!(RunError::LeaseLost(
            lost.join("`, `")
        ))));
    }
    let new_entry = new_run
        .entries
        .first()
        .ok_or_else(|| DriftError::Infra(anyhow!("replay the new recordings: no entry")))?;

    let features = feature_names(scenario);
    let input = input_drift(&reference, &new_windows, &features, scenario.drift.bins)?;
    let output = output_drift(
        &model.name,
        scenario,
        &reference_plan,
        &reference_outputs,
        &new_plan,
        &new_outputs,
    )?;
    let class = board_class(&board);
    let champion =
        gauntlet_gate::ChampionLookup::champion(store, &scenario.name, &model.name, &class)
            .map_err(|e| DriftError::Infra(anyhow!(e)))?;
    let performance = match (&new_entry.metrics, &champion) {
        (Some(m), Some(c)) => performance(scenario, &model.name, m, &c.metrics),
        _ => Vec::new(),
    };
    let mut gates = Vec::new();
    for gate in &scenario.drift.gates {
        match gate {
            DriftGate::Shift {
                statistic,
                at_most,
                features: selected,
            } => gates.extend(shift_gate(
                *statistic,
                *at_most,
                selected,
                &input,
                &output,
                scenario.drift.alpha,
            )),
            DriftGate::Task(spec) => {
                gates.push(task_gate(scenario, spec, &plan.boards, &new_run, store))
            }
        }
    }
    let verdict = DriftVerdict::of(&gates);
    let source = new_entry
        .metrics
        .as_ref()
        .and_then(|m| m.latency_device_us.as_ref().map(|l| l.source))
        .unwrap_or(Source::Measured);
    let results = DriftResults {
        schema: DRIFT_SCHEMA.into(),
        version: DRIFT_VERSION,
        drift_id: drift_id.clone(),
        started_at: timestamp(started),
        finished_at: timestamp(SystemTime::now()),
        harness: Harness {
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: Some(env!("GAUNTLET_GIT_COMMIT").to_string()).filter(|c| !c.is_empty()),
        },
        scenario: FileRef {
            name: scenario.name.clone(),
            path: scenario.source.path.display().to_string(),
            sha256: scenario.source.sha256.clone(),
        },
        model: model.name.clone(),
        board: DriftBoard {
            id: board.id.clone(),
            class,
            kind: board.kind.name().to_string(),
        },
        source,
        champion: DriftChampion {
            promotion_id: promotion.id,
            run_id: promotion.run_id.clone(),
            variant: promotion.variant.clone(),
            model_sha256: promotion.model_sha256.clone(),
            promoted_at: Some(promotion.promoted_at.clone()),
            promoted_by: Some(promotion.by.clone()),
        },
        reference: data(reference_kind, &reference),
        new: data("recordings", &new_windows),
        input,
        output,
        performance,
        gates,
        verdict,
        alpha: scenario.drift.alpha,
    };
    let out = request
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports/drift").join(&drift_id));
    Ok(Judged { results, out })
}

/// The board to requalify on and the champion of its class: `--board-class`, else the first
/// board of the rig (in rig order) whose class has a champion.
fn champion_board(
    plan: &Plan,
    store: &Store,
    model: &str,
    wanted: Option<&str>,
) -> Result<(Board, gauntlet_store::Promotion), DriftError> {
    let scenario = &plan.scenario.name;
    let boards: Vec<&Board> = plan
        .boards
        .iter()
        .filter(|b| wanted.is_none_or(|c| board_class(b) == c))
        .collect();
    if boards.is_empty() {
        let class = wanted.unwrap_or("?");
        return Err(DriftError::Input(anyhow!(
            "find a board of class `{class}` in rig `{}` for scenario `{scenario}`",
            plan.rig.name
        )));
    }
    for board in &boards {
        let class = board_class(board);
        let champion = store
            .champion(scenario, model, &class)
            .map_err(|e| DriftError::Infra(anyhow!(e)))?;
        if let Some(p) = champion {
            return Ok(((*board).clone(), p));
        }
    }
    let classes: Vec<String> = boards.iter().map(|b| board_class(b)).collect();
    Err(DriftError::Input(anyhow!(
        "find the champion of model `{model}` in scenario `{scenario}` on board class {}: none promoted yet (`gauntlet promote` makes one)",
        classes
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    )))
}

/// Leases `board` for both replays as `gauntlet run` leases its boards (waiting up to
/// `--wait`), so that in a shared lab no run or other requalification drives it meanwhile.
fn lease_board(
    store: &Store,
    leasing: &Leasing,
    board: &Board,
    holder_run: &str,
) -> Result<HeldBoards, DriftError> {
    let shared = store.dialect() == gauntlet_store::Dialect::Postgres;
    Store::open_for_leases(&leasing.db)
        .and_then(|beats| {
            fleet::hold_boards(
                Arc::new(beats),
                leasing,
                shared,
                std::slice::from_ref(board),
                &[],
                holder_run,
            )
        })
        .map_err(|e| DriftError::Infra(anyhow!(e)))
}

/// Runs a one-build plan while `fence` lets it drive the board; returns its analysed results
/// and the build's record.
fn replay(
    plan: &Plan,
    what: &str,
    fence: &dyn gauntlet_runner::BoardFence,
) -> Result<(Results, BuildRecord), DriftError> {
    let progress = crate::progress::Progress::new(plan);
    let record = gauntlet_runner::run_plan_fenced(plan, &progress, fence);
    progress.finish();
    let meta = RunMeta {
        run_id: run_id(SystemTime::now()),
        started_at: timestamp(SystemTime::now()),
        finished_at: timestamp(SystemTime::now()),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: None,
    };
    let results = gauntlet_runner::analyze(plan, &record, &meta);
    let board = &record.boards[0];
    if let gauntlet_runner::BoardOutcome::InfraFailed { stage, reason } = &board.outcome {
        return Err(DriftError::Infra(anyhow!(
            "replay the {what} on board `{}` ({stage:?}): {reason}",
            board.board
        )));
    }
    let build =
        board.builds.first().cloned().ok_or_else(|| {
            DriftError::Infra(anyhow!("replay the {what}: the board ran no build"))
        })?;
    let entry: Option<&Entry> = results.entries.first();
    if entry.is_none_or(|e| e.status != EntryStatus::Completed)
        || build.windows_scored() < plan.windows.len()
    {
        let why = entry.and_then(|e| e.error.as_ref()).map_or_else(
            || "it did not score every window".to_string(),
            |e| e.message.clone(),
        );
        return Err(DriftError::Infra(anyhow!(
            "replay the {what} through build `{}` on board `{}`: {why}",
            build.variant,
            board.board
        )));
    }
    Ok((results, build))
}

fn feature_names(scenario: &Scenario) -> Vec<String> {
    scenario
        .dataset
        .features
        .iter()
        .map(|c| match c {
            ColumnRef::Name(n) => n.clone(),
            ColumnRef::Index(i) => format!("column {i}"),
        })
        .collect()
}

/// Each window's newest reading of every feature column, row-major (windows × features).
fn newest_readings(w: &Windows) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len() * w.features);
    for window in w.data.chunks_exact(w.window_len) {
        match w.layout {
            Layout::RowMajor => out.extend_from_slice(&window[(w.rows - 1) * w.features..]),
            Layout::ChannelsFirst => {
                out.extend((0..w.features).map(|f| window[f * w.rows + w.rows - 1]))
            }
        }
    }
    out
}

fn input_drift(
    reference: &Windows,
    new: &Windows,
    features: &[String],
    bins: usize,
) -> Result<Vec<FeatureRow>, DriftError> {
    let (r, q) = (newest_readings(reference), newest_readings(new));
    let columns = features.len();
    let (rm, qm) = (Matrix::new(&r, columns), Matrix::new(&q, columns));
    let stats = drift::input_drift(rm, qm, bins)
        .map_err(|e| DriftError::Input(anyhow!("compute input drift: {e}")))?;
    let column =
        |v: &[f32], c: usize| -> Vec<f32> { v.iter().skip(c).step_by(columns).copied().collect() };
    Ok(stats
        .into_iter()
        .enumerate()
        .map(|(c, s)| FeatureRow {
            feature: features[c].clone(),
            comparison: s.comparison,
            p_adjusted: s.p_adjusted,
            histogram: drift::paired_histogram(&column(&r, c), &column(&q, c), HISTOGRAM_BINS),
        })
        .collect())
}

/// Each window's score (what output drift compares) and, where the task has classes, its
/// predicted class.
fn window_scores(
    plan: &Plan,
    build: &BuildRecord,
    scenario: &Scenario,
    model: &str,
) -> (&'static str, Vec<f32>, Option<Vec<usize>>) {
    let n = plan.windows.len();
    let task = scenario
        .models
        .iter()
        .find(|m| m.name == model)
        .map(|m| m.task.clone())
        .unwrap_or(Task::Classification);
    let width = build.output_len.max(1);
    match task {
        Task::Classification => {
            let (scores, classes) = build
                .outputs
                .chunks_exact(width)
                .take(n)
                .map(|o| {
                    let (i, top) =
                        o.iter()
                            .enumerate()
                            .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
                                if x > best.1 { (i, x) } else { best }
                            });
                    (top, i)
                })
                .unzip();
            ("top-class probability", scores, Some(classes))
        }
        Task::Anomaly(a) => {
            let scores = gauntlet_runner::anomaly_scores(plan, build, &a, n);
            let threshold = match a.threshold {
                gauntlet_spec::AnomalyThreshold::Given(t) => Some(t),
                _ => None,
            };
            let classes = threshold.map(|t| scores.iter().map(|&s| usize::from(s > t)).collect());
            (
                "anomaly score",
                scores.into_iter().map(|s| s as f32).collect(),
                classes,
            )
        }
        Task::Regression => (
            "prediction",
            build
                .outputs
                .chunks_exact(width)
                .take(n)
                .map(|o| o[0])
                .collect(),
            None,
        ),
    }
}

fn output_drift(
    model: &str,
    scenario: &Scenario,
    reference_plan: &Plan,
    reference: &BuildRecord,
    new_plan: &Plan,
    new: &BuildRecord,
) -> Result<OutputDrift, DriftError> {
    let (what, r, rc) = window_scores(reference_plan, reference, scenario, model);
    let (_, q, qc) = window_scores(new_plan, new, scenario, model);
    let comparison = drift::compare(&r, &q, scenario.drift.bins)
        .map_err(|e| DriftError::Infra(anyhow!("compare the scores of `{model}`: {e}")))?;
    let class_mix = match (rc, qc) {
        (Some(rc), Some(qc)) => {
            let k = scenario.dataset.classes.len().max(2);
            let count = |c: &[usize]| {
                let mut v = vec![0u64; k];
                for &i in c {
                    v[i.min(k - 1)] += 1;
                }
                v
            };
            let (reference, new) = (count(&rc), count(&qc));
            let test = drift::class_mix(&reference, &new)
                .map_err(|e| DriftError::Infra(anyhow!("compare the class mix: {e}")))?;
            let share = |v: &[u64], i: usize| v[i] as f64 / v.iter().sum::<u64>() as f64;
            let largest_share_change = (0..k)
                .map(|i| (share(&new, i) - share(&reference, i)).abs())
                .fold(0.0, f64::max);
            let mut classes = scenario.dataset.classes.clone();
            classes.resize_with(k, || "?".into());
            Some(ClassMix {
                classes,
                reference,
                new,
                test,
                largest_share_change,
            })
        }
        _ => None,
    };
    Ok(OutputDrift {
        score: what.into(),
        histogram: drift::paired_histogram(&r, &q, HISTOGRAM_BINS),
        comparison,
        class_mix,
    })
}

/// The task's quality metrics (and any a task gate names) on the new recordings beside the
/// champion's recorded figures.
fn performance(
    scenario: &Scenario,
    model: &str,
    new: &gauntlet_results::Metrics,
    champion: &gauntlet_results::Metrics,
) -> Vec<PerformanceRow> {
    let task = scenario
        .models
        .iter()
        .find(|m| m.name == model)
        .map_or("classification", |m| m.task.name());
    let mut metrics: Vec<Metric> = match task {
        "anomaly" => vec![
            Metric::RocAuc,
            Metric::PrAuc,
            Metric::F1AtThreshold,
            Metric::PrecisionAtThreshold,
            Metric::RecallAtThreshold,
        ],
        "regression" => vec![Metric::Rmse, Metric::Mae, Metric::R2, Metric::MaxAbsError],
        _ => vec![Metric::Accuracy, Metric::MacroF1],
    };
    for gate in &scenario.drift.gates {
        if let DriftGate::Task(g) = gate
            && !metrics.contains(&g.metric)
        {
            metrics.push(g.metric);
        }
    }
    metrics
        .into_iter()
        .filter_map(|metric| {
            let (value, ci) = metric_figure(metric, new).ok()?;
            let (champ, champ_ci) = metric_figure(metric, champion).ok()?;
            Some(PerformanceRow {
                metric,
                new: value,
                new_ci: ci,
                champion: champ,
                champion_ci: champ_ci,
                difference: value - champ,
                difference_ci: difference_ci(value, ci, champ, champ_ci),
            })
        })
        .collect()
}

/// MOVER (Zou & Donner 2008): the difference's interval from each side's own interval.
fn difference_ci(
    new: f64,
    new_ci: Option<ConfidenceInterval>,
    champion: f64,
    champion_ci: Option<ConfidenceInterval>,
) -> Option<ConfidenceInterval> {
    let n = new_ci?;
    let d = new - champion;
    let (c_lo, c_hi) = champion_ci.map_or((champion, champion), |c| (c.lo, c.hi));
    Some(ConfidenceInterval {
        lo: d - ((new - n.lo).powi(2) + (c_hi - champion).powi(2)).sqrt(),
        hi: d + ((n.hi - new).powi(2) + (champion - c_lo).powi(2)).sqrt(),
        ..n
    })
}

/// Judges one size gate on every subject it covers.
fn shift_gate(
    statistic: DriftStatistic,
    at_most: f64,
    selected: &[String],
    input: &[FeatureRow],
    output: &OutputDrift,
    alpha: f64,
) -> Vec<DriftGateResult> {
    let label = format!("{} at_most {at_most}", statistic.name());
    let judge = |subject: String, value: f64, p: f64, test: &str| {
        let (verdict, evidence) = if value <= at_most {
            (
                Verdict::Pass,
                format!("{} {value:.3} ≤ {at_most}", statistic.name()),
            )
        } else if p < alpha {
            (
                Verdict::Fail,
                format!(
                    "{} {value:.3} > {at_most}, and the shift is significant ({test} p = {p:.2e} < {alpha})",
                    statistic.name()
                ),
            )
        } else {
            (
                Verdict::Inconclusive,
                format!(
                    "{} {value:.3} > {at_most}, but not significant ({test} p = {p:.3} ≥ {alpha}): too few windows to call it",
                    statistic.name()
                ),
            )
        };
        DriftGateResult {
            gate: label.clone(),
            subject,
            value: Some(value),
            threshold: Some(at_most),
            verdict,
            evidence,
            task: None,
        }
    };
    let score = &output.comparison;
    match statistic {
        DriftStatistic::ScorePsi => vec![judge(
            "score".into(),
            score.psi.value,
            score.ks.p_value,
            "KS",
        )],
        DriftStatistic::ScoreKs => vec![judge(
            "score".into(),
            score.ks.statistic,
            score.ks.p_value,
            "KS",
        )],
        DriftStatistic::ClassMix => match &output.class_mix {
            Some(m) => vec![judge(
                "class mix".into(),
                m.largest_share_change,
                m.test.p_value,
                "χ²",
            )],
            None => vec![DriftGateResult {
                gate: label.clone(),
                subject: "class mix".into(),
                value: None,
                threshold: Some(at_most),
                verdict: Verdict::Inconclusive,
                evidence: "the model's task predicts no classes here (no fixed threshold)".into(),
                task: None,
            }],
        },
        _ => input
            .iter()
            .filter(|f| selected.is_empty() || selected.contains(&f.feature))
            .map(|f| {
                let c = &f.comparison;
                let value = match statistic {
                    DriftStatistic::Psi => Some(c.psi.value),
                    DriftStatistic::Ks => Some(c.ks.statistic),
                    DriftStatistic::MeanShift => c.shift.mean_sd.map(f64::abs),
                    _ => c.shift.sd_change.map(f64::abs),
                };
                match value {
                    Some(v) => judge(f.feature.clone(), v, f.p_adjusted, "Holm-adjusted KS"),
                    None => DriftGateResult {
                        gate: label.clone(),
                        subject: f.feature.clone(),
                        value: None,
                        threshold: Some(at_most),
                        verdict: Verdict::Inconclusive,
                        evidence: "the reference holds one value only (σ = 0)".into(),
                        task: None,
                    },
                }
            })
            .collect(),
    }
}

/// A task gate judged as a run's gate would judge it on the new recordings' figures.
fn task_gate(
    scenario: &Scenario,
    spec: &GateSpec,
    boards: &[Board],
    new_run: &Results,
    store: &Store,
) -> DriftGateResult {
    let gates = [spec.clone()];
    let rules = Rules {
        scenario: &scenario.name,
        gates: &gates,
        inconclusive_fails: scenario.inconclusive_fails,
    };
    let evaluation = gauntlet_gate::evaluate_rules(rules, boards, new_run, store);
    match evaluation.gates.into_iter().next() {
        Some(g) => DriftGateResult {
            gate: g.gate.clone(),
            subject: g.metric.name().into(),
            value: g.measured,
            threshold: g.threshold,
            verdict: g.verdict,
            evidence: g.evidence.clone(),
            task: Some(g),
        },
        None => DriftGateResult {
            gate: spec.metric.name().into(),
            subject: spec.metric.name().into(),
            value: None,
            threshold: None,
            verdict: Verdict::Inconclusive,
            evidence: "the gate selected no build".into(),
            task: None,
        },
    }
}

fn data(kind: &str, w: &Windows) -> DriftData {
    DriftData {
        kind: kind.into(),
        windows: w.len(),
        recordings: w
            .per_recording
            .iter()
            .map(|r| RecordingRef {
                path: r.path.display().to_string(),
                sha256: r.sha256.clone(),
                windows: r.windows,
            })
            .collect(),
    }
}

/// Writes drift.json into `out`, proven writable first.
pub fn write(judged: &Judged) -> anyhow::Result<PathBuf> {
    let folder = gauntlet::output::RunFolder::prepare(judged.out.clone())?;
    let json = serde_json::to_string_pretty(&judged.results).context("serialise drift.json")?;
    let path = folder.root().join("drift.json");
    gauntlet::output::write_atomically(&path, json.as_bytes())?;
    let r = &judged.results;
    gauntlet::output::write_atomically(
        &folder.root().join("drift.md"),
        gauntlet_report::drift_markdown(r).as_bytes(),
    )?;
    gauntlet::output::write_atomically(
        &folder.root().join("drift.html"),
        gauntlet_report::drift_html(r).as_bytes(),
    )?;
    Ok(path)
}

/// Records the verdict in the store's history, linked to the champion's promotion, with every
/// recording's SHA-256.
pub fn record(store: &Store, judged: &Judged) -> anyhow::Result<()> {
    let r = &judged.results;
    let json = serde_json::to_string(r).context("serialise drift.json")?;
    let recordings: Vec<(String, String)> = r
        .new
        .recordings
        .iter()
        .map(|x| (x.path.clone(), x.sha256.clone()))
        .collect();
    store.record_drift(&gauntlet_store::NewDriftCheck {
        id: &r.drift_id,
        scenario: &r.scenario.name,
        model: &r.model,
        board_class: &r.board.class,
        board: &r.board.id,
        promotion_id: r.champion.promotion_id,
        verdict: r.verdict.name(),
        checked_at: &r.finished_at,
        recordings: &recordings,
        drift_json: &json,
    })?;
    Ok(())
}

/// The terminal summary: the verdict, the gates that did not pass, the worst features.
pub fn print_summary(r: &DriftResults) {
    let mut text = format!(
        "drift of {} {} (champion from run {}) on {} ({}, {}): {} reference windows ({}) vs {} new\n",
        r.model,
        r.champion.variant,
        r.champion.run_id,
        r.board.id,
        r.board.class,
        match r.source {
            Source::Emulated => "emulated",
            Source::Simulated => "simulated",
            Source::Measured => "measured",
        },
        r.reference.windows,
        r.reference.kind,
        r.new.windows
    );
    text.push_str(&gauntlet_report::drift_terminal(r));
    stdout::say!("{}", text.trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(feature: &str, shift: f32, n: usize) -> FeatureRow {
        let r: Vec<f32> = (0..n).map(|i| (i % 97) as f32 / 97.0).collect();
        let q: Vec<f32> = r.iter().map(|x| x + shift).collect();
        let comparison = drift::compare(&r, &q, 10).unwrap();
        FeatureRow {
            feature: feature.into(),
            p_adjusted: comparison.ks.p_value,
            comparison,
            histogram: Vec::new(),
        }
    }

    fn output() -> OutputDrift {
        let r: Vec<f32> = (0..500).map(|i| (i % 50) as f32 / 50.0).collect();
        OutputDrift {
            score: "score".into(),
            comparison: drift::compare(&r, &r, 10).unwrap(),
            histogram: Vec::new(),
            class_mix: None,
        }
    }

    #[test]
    fn a_large_significant_shift_fails_a_small_one_passes_a_large_unproven_one_is_inconclusive() {
        let input = [
            row("steady", 0.0, 2000),
            row("moved", 0.5, 2000),
            // Wholly apart on 3 windows each: PSI is large, but KS p = 2 / C(6, 3) = 0.1.
            row("few", 0.3, 3),
        ];
        let gates = shift_gate(DriftStatistic::Psi, 0.2, &[], &input, &output(), 0.05);
        let verdicts: Vec<(&str, Verdict)> = gates
            .iter()
            .map(|g| (g.subject.as_str(), g.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("steady", Verdict::Pass),
                ("moved", Verdict::Fail),
                ("few", Verdict::Inconclusive)
            ]
        );
        let only = shift_gate(
            DriftStatistic::MeanShift,
            1.0,
            &["moved".into()],
            &input,
            &output(),
            0.05,
        );
        assert_eq!(only.len(), 1);
        assert!(only[0].value.unwrap() > 1.0 && only[0].verdict == Verdict::Fail);
    }

    #[test]
    fn class_mix_without_classes_is_inconclusive_not_a_pass() {
        let g = shift_gate(DriftStatistic::ClassMix, 0.1, &[], &[], &output(), 0.05);
        assert_eq!(g[0].verdict, Verdict::Inconclusive);
        assert_eq!(
            DriftVerdict::of(&g),
            DriftVerdict::Inconclusive,
            "nothing failed, something undecided"
        );
    }

    #[test]
    fn difference_interval_combines_both_sides_mover() {
        let ci = |lo, hi| ConfidenceInterval {
            lo,
            hi,
            confidence: 0.95,
        };
        let d = difference_ci(0.80, Some(ci(0.77, 0.83)), 0.90, Some(ci(0.88, 0.92))).unwrap();
        // lo = -0.10 - sqrt(0.03² + 0.02²), hi = -0.10 + sqrt(0.03² + 0.02²).
        assert!((d.lo - (-0.10 - 0.036_055_5)).abs() < 1e-6, "{d:?}");
        assert!((d.hi - (-0.10 + 0.036_055_5)).abs() < 1e-6, "{d:?}");
        let shifted = difference_ci(0.80, Some(ci(0.77, 0.83)), 0.90, None).unwrap();
        assert!((shifted.lo + 0.13).abs() < 1e-9 && (shifted.hi + 0.07).abs() < 1e-9);
        assert_eq!(difference_ci(0.8, None, 0.9, None), None);
    }

    #[test]
    fn newest_readings_take_each_windows_last_row_in_either_layout() {
        let mut w = Windows {
            window_len: 6,
            rows: 3,
            features: 2,
            layout: Layout::RowMajor,
            data: vec![1., 2., 3., 4., 5., 6.],
            labels: vec![0],
            origins: Vec::new(),
            timestamps_s: None,
            targets: None,
            last_values: None,
            dropped_past_end: 0,
            sha256: String::new(),
            per_recording: Vec::new(),
            subset_of: None,
        };
        assert_eq!(newest_readings(&w), [5., 6.]);
        w.layout = Layout::ChannelsFirst;
        assert_eq!(newest_readings(&w), [3., 6.]);
    }
}
