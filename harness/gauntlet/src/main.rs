//! `gauntlet`: the command line. Thin: parsing, wiring the libraries together, rendering, and
//! mapping outcomes to the documented exit codes in [`exit`].

mod bench;
mod exit;
mod history;
mod progress;
mod summary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gauntlet_gate::ChampionLookup;
use gauntlet_report::{Format, MemorySamples, ReportInput};
use gauntlet_results::{Outcome, Results};
use gauntlet_runner::{Plan, RunMeta, RunRecord};
use gauntlet_store::{EntryKey, NewRun, PromoteRequest, Store};

#[derive(Parser)]
#[command(
    version,
    about = "Hardware-in-the-loop test and benchmarking for edge ML"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario on a rig and write results.json into the run's folder.
    Run {
        scenario: PathBuf,
        /// Rig file; the built-in local rig (this machine) when omitted.
        #[arg(long)]
        rig: Option<PathBuf>,
        /// Output folder; `reports/out/<run-id>/` when omitted.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List runs, or show one.
    Runs {
        #[command(subcommand)]
        command: Option<RunsCommand>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Compare two runs per board and variant, with intervals.
    Compare {
        run_a: String,
        run_b: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Make a build the champion of its board class(es); refused unless its gates passed.
    Promote {
        run: String,
        #[arg(long)]
        model: String,
        #[arg(long)]
        variant: String,
        /// Only this board class (default: every class the run judged the build on).
        #[arg(long)]
        board_class: Option<String>,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
        /// Promote although the gates did not pass; the reason is recorded.
        #[arg(long = "override", value_name = "REASON")]
        override_reason: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Regenerate a run's report from the store.
    Report {
        run: String,
        /// html, md, junit, json or terminal.
        #[arg(long, default_value = "html")]
        format: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
    },
    /// Show the current champion of a scenario per board class.
    Champion {
        scenario: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Validate a scenario (and rig) without touching any board, and print the plan.
    Check {
        scenario: PathBuf,
        #[arg(long)]
        rig: Option<PathBuf>,
    },
    /// Measure the harness's own cost against an in-process tract loop and a raw pipe echo.
    Bench {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Windows per inference request.
        #[arg(long, default_value_t = 32)]
        batch: usize,
    },
    /// Print the JSON Schema of scenario or rig files.
    Schema {
        #[arg(value_enum)]
        kind: SchemaKind,
    },
}

#[derive(clap::Args)]
struct DbArg {
    /// Run database; else `$GAUNTLET_DB`, else `.gauntlet/gauntlet.db`.
    #[arg(long, global = true)]
    db: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RunsCommand {
    List,
    Show { id: String },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaKind {
    Scenario,
    Rig,
}

/// An error with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn input_error(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: exit::INVALID_INPUT,
        error: error.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run {
            scenario,
            rig,
            out,
            db,
        } => run(&scenario, rig.as_deref(), out, db.db.as_deref()),
        Command::Runs { command, db } => with_store(db.db.as_deref(), |store, out| match command {
            None | Some(RunsCommand::List) => history::runs_list(store, out),
            Some(RunsCommand::Show { id }) => history::runs_show(store, &id, out),
        }),
        Command::Compare { run_a, run_b, db } => with_store(db.db.as_deref(), |store, out| {
            history::compare(store, &run_a, &run_b, out)
        }),
        Command::Promote {
            run,
            model,
            variant,
            board_class,
            by,
            reason,
            override_reason,
            db,
        } => with_store(db.db.as_deref(), |store, out| {
            let request = PromoteRequest {
                run_id: &run,
                model: &model,
                variant: &variant,
                board_class: board_class.as_deref(),
                by: &by,
                reason: &reason,
                override_reason: override_reason.as_deref(),
            };
            history::promote(store, &request, out)
        }),
        Command::Report {
            run,
            format,
            out,
            db,
        } => report(&run, &format, out.as_deref(), db.db.as_deref()),
        Command::Champion { scenario, db } => with_store(db.db.as_deref(), |store, out| {
            history::champion(store, &scenario, out)
        }),
        Command::Check { scenario, rig } => check(&scenario, rig.as_deref()),
        Command::Bench { rounds, batch } => {
            bench::bench(Path::new("."), &bench::BenchOptions { rounds, batch })
                .map(|()| exit::SUCCESS)
                .map_err(|error| Failure {
                    code: exit::INFRA_FAILURE,
                    error,
                })
        }
        Command::Schema { kind } => {
            let schema = match kind {
                SchemaKind::Scenario => gauntlet_spec::scenario_json_schema(),
                SchemaKind::Rig => gauntlet_spec::rig_json_schema(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schemas serialise")
            );
            Ok(exit::SUCCESS)
        }
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, error }) => {
            eprintln!("error: failed to {error:#}");
            ExitCode::from(code)
        }
    }
}

fn open_store(db: Option<&Path>) -> Result<Store, Failure> {
    let path = gauntlet_store::default_db_path(db);
    Store::open(&path).map_err(|e| Failure {
        code: exit::INFRA_FAILURE,
        error: e.into(),
    })
}

/// Runs a history command; a missing run or a refused promotion is the user's input (exit 2).
fn with_store(
    db: Option<&Path>,
    command: impl FnOnce(&mut Store, &mut dyn std::io::Write) -> anyhow::Result<()>,
) -> Result<u8, Failure> {
    let mut store = open_store(db)?;
    store.mark_incomplete_stale().map_err(|e| Failure {
        code: exit::INFRA_FAILURE,
        error: e.into(),
    })?;
    command(&mut store, &mut std::io::stdout().lock()).map_err(input_error)?;
    Ok(exit::SUCCESS)
}

/// The champion each judged build would replace, for the report's release-manager section.
fn champions(store: &Store, results: &Results) -> Vec<gauntlet_report::Champion> {
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
fn stored_samples(store: &Store, results: &Results) -> MemorySamples {
    let mut samples = MemorySamples::new();
    for e in &results.entries {
        if let Ok(s) = store.samples(&results.run_id, &EntryKey::from(e)) {
            samples.insert(&e.board, &e.model, &e.variant, s);
        }
    }
    samples
}

fn report(run: &str, format: &str, out: Option<&Path>, db: Option<&Path>) -> Result<u8, Failure> {
    let format = Format::from_name(format).ok_or_else(|| {
        input_error(anyhow::anyhow!(
            "render a report: unknown format `{format}` (html, md, junit, json, terminal)"
        ))
    })?;
    let store = open_store(db)?;
    let stored = store.run(run).map_err(input_error)?;
    let results = stored.results.ok_or_else(|| {
        input_error(anyhow::anyhow!(
            "render a report of run `{run}`: it never finished"
        ))
    })?;
    let samples = stored_samples(&store, &results);
    let champions = champions(&store, &results);
    let input = ReportInput::new(&results, &samples).with_champions(&champions);
    let text = format.reporter().render(&input).map_err(|e| Failure {
        code: exit::INFRA_FAILURE,
        error: e.into(),
    })?;
    match out {
        Some(path) => write_atomically(path, text.as_bytes()).map_err(|error| Failure {
            code: exit::INFRA_FAILURE,
            error,
        })?,
        None => print!("{text}"),
    }
    Ok(exit::SUCCESS)
}

fn load_plan(scenario: &Path, rig: Option<&Path>) -> Result<Plan, Failure> {
    let scenario = gauntlet_spec::load_scenario(scenario).map_err(|d| {
        eprint!("{d}");
        input_error(anyhow::anyhow!("load scenario `{}`", scenario.display()))
    })?;
    let rig = match rig {
        Some(path) => gauntlet_spec::load_rig(path).map_err(|d| {
            eprint!("{d}");
            input_error(anyhow::anyhow!("load rig `{}`", path.display()))
        })?,
        None => gauntlet_spec::default_rig(),
    };
    gauntlet_runner::plan(scenario, rig).map_err(input_error)
}

fn check(scenario: &Path, rig: Option<&Path>) -> Result<u8, Failure> {
    let plan = load_plan(scenario, rig)?;
    summary::print_plan(&plan);
    Ok(exit::SUCCESS)
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

fn run(
    scenario: &Path,
    rig: Option<&Path>,
    out: Option<PathBuf>,
    db: Option<&Path>,
) -> Result<u8, Failure> {
    let plan = load_plan(scenario, rig)?;
    let infra = |error: anyhow::Error| Failure {
        code: exit::INFRA_FAILURE,
        error,
    };
    let mut store = open_store(db)?;
    let started = SystemTime::now();
    let run_id = run_id(started);
    let handle = store
        .begin_run(&NewRun {
            id: run_id.clone(),
            scenario_name: plan.scenario.name.clone(),
            scenario_path: plan.scenario.source.path.display().to_string(),
            scenario_sha256: plan.scenario.source.sha256.clone(),
            rig_name: plan.rig.name.clone(),
            rig_sha256: plan.rig.source.sha256.clone(),
            started_at: timestamp(started),
        })
        .map_err(|e| infra(e.into()))?;
    let out = out.unwrap_or_else(|| PathBuf::from("reports/out").join(&run_id));
    let progress = progress::Progress::new(&plan);
    let record = gauntlet_runner::run_plan(&plan, &progress);
    progress.finish();
    let meta = RunMeta {
        run_id,
        started_at: timestamp(started),
        finished_at: timestamp(SystemTime::now()),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: Some(env!("GAUNTLET_GIT_COMMIT").to_string()).filter(|c| !c.is_empty()),
    };
    let mut results = gauntlet_runner::analyze(&plan, &record, &meta);
    let evaluation = gauntlet_gate::evaluate(&plan.scenario, &plan.boards, &results, &store);
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
            let device_us: Vec<f64> = build.device_ns.iter().map(|&ns| ns as f64 / 1e3).collect();
            store
                .record_samples(&handle, &key, &device_us)
                .map_err(|e| infra(e.into()))?;
        }
    }
    let mut samples = MemorySamples::new();
    for board in &record.boards {
        for build in &board.builds {
            let device_us = build.device_ns.iter().map(|&ns| ns as f64 / 1e3).collect();
            samples.insert(&board.board, &build.model, &build.variant, device_us);
        }
    }
    let champions = champions(&store, &results);
    let input = ReportInput::new(&results, &samples).with_champions(&champions);
    write_run(&out, &input, &record).map_err(infra)?;
    store
        .finish_run(&handle, &results, &plan.boards)
        .map_err(|e| infra(e.into()))?;
    summary::print_results(&results);
    println!("results: {}", out.join("results.json").display());
    Ok(outcome_code(&results))
}

fn outcome_code(results: &Results) -> u8 {
    match results.outcome {
        Outcome::Pass => exit::SUCCESS,
        Outcome::GateFailed => exit::GATE_FAILED,
        Outcome::InfraFailure => exit::INFRA_FAILURE,
        Outcome::Inconclusive => exit::INCONCLUSIVE,
    }
}

/// Writes results.json, the reports and each build's raw scores; each file appears whole or not at all.
fn write_run(out: &Path, input: &ReportInput, record: &RunRecord) -> anyhow::Result<()> {
    let outputs = out.join("outputs");
    std::fs::create_dir_all(&outputs)
        .with_context(|| format!("create the output folder `{}`", outputs.display()))?;
    for board in &record.boards {
        for build in board.builds.iter().filter(|b| !b.outputs.is_empty()) {
            let bytes: Vec<u8> = build.outputs.iter().flat_map(|v| v.to_le_bytes()).collect();
            let name = format!("{}__{}__{}.f32", board.board, build.model, build.variant);
            write_atomically(&outputs.join(name), &bytes)?;
        }
    }
    for format in Format::RUN_FOLDER {
        let reporter = format.reporter();
        let text = reporter
            .render(input)
            .with_context(|| format!("render the {} report", format.name()))?;
        write_atomically(&out.join(reporter.file_name()), text.as_bytes())?;
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("move results into `{}`", path.display()))
}
