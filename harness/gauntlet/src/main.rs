//! `gauntlet`: the command line. Thin: parsing, wiring the libraries together, rendering, and
//! mapping outcomes to the documented exit codes in [`exit`].

mod bench;
mod drift;
mod exit;
mod head_to_head;
mod history;
mod progress;
mod stdout;
mod summary;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gauntlet::fleet;
use gauntlet::output::write_atomically;
use gauntlet::pipeline::{self, champions, stored_samples};
use gauntlet_report::{Format, ReportInput, Reporter};
use gauntlet_results::{Outcome, Results};
use gauntlet_runner::Plan;
use gauntlet_store::{PromoteRequest, Store};

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
        #[command(flatten)]
        lease: LeaseArgs,
    },
    /// Board leases in the store: who holds which board, forced releases, rotation.
    Lease {
        #[command(subcommand)]
        command: LeaseCommand,
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
    /// One build's figures run by run on its board class, each step judged against the build's
    /// run-to-run spread.
    Trend {
        /// The scenario's name, as in `runs list`.
        scenario: String,
        #[arg(long, required_unless_present = "metric")]
        model: Option<String>,
        /// The build id, e.g. `int8_qdq` or `fp32@onnxruntime`.
        #[arg(long, required_unless_present = "metric")]
        variant: Option<String>,
        /// Only this board class (default: the class of the newest run that has the build).
        #[arg(long)]
        board_class: Option<String>,
        /// Instead: this figure (latency.p50/p90/p99, accuracy, macro_f1, energy) of every build
        /// over the last runs.
        #[arg(long, conflicts_with_all = ["model", "variant"])]
        metric: Option<String>,
        /// With --metric: how many of the latest complete runs.
        #[arg(long, default_value_t = 10)]
        last: usize,
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
        /// Rounds per run: each is one interleaved block of the agent and the in-process loop.
        /// With 15, five runs' onnxruntime ratios spread ±2.0-3.3 % here; with 30, ±2.4 %.
        #[arg(long, default_value_t = 30)]
        rounds: usize,
        /// Windows per inference request.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Whole runs back to back, to show how far their agent / in-process ratios agree.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Hold the replays' agents (and the echo's `cat`) to another CPU than the harness, as a
        /// rig's `cpus` does on a board with a core of its own.
        #[arg(long)]
        agent_apart: bool,
    },
    /// Requalify the champion on fresh recordings: replay them through its build on a board of
    /// its class and judge input, output and performance drift against the reference.
    Drift {
        scenario: PathBuf,
        /// CSV recordings or globs (default: the scenario's `[drift] recordings`).
        #[arg(long, num_args = 1..)]
        recordings: Vec<String>,
        /// The board class whose champion is requalified (default: the first with one).
        #[arg(long)]
        board_class: Option<String>,
        #[arg(long)]
        rig: Option<PathBuf>,
        /// Output folder; `reports/drift/<id>/` when omitted.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        lease: LeaseArgs,
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

#[derive(clap::Args)]
struct LeaseArgs {
    /// Wait up to this long for a board another run holds (e.g. `10m`), in line behind earlier
    /// waiters; by default a held board fails the run at once.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    wait: std::time::Duration,
    /// A lease lasts this long unless renewed (every third of it, while the run works).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    lease_ttl: std::time::Duration,
}

#[derive(Subcommand)]
enum RunsCommand {
    List {
        /// Runs that measured on this board id.
        #[arg(long)]
        board: Option<String>,
        #[arg(long)]
        scenario: Option<String>,
        /// RFC 3339 time or date (`2026-11-30`): runs started then or later.
        #[arg(long)]
        since: Option<String>,
        /// The host that ran it.
        #[arg(long)]
        runner: Option<String>,
    },
    Show {
        id: String,
    },
    /// Records a run folder whose store write failed (idempotent).
    Import {
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum LeaseCommand {
    /// Current leases and boards out of rotation.
    List,
    /// Ends a board's lease whoever holds it; who and why are recorded.
    Release {
        board: String,
        /// Required: releasing someone else's board is deliberate.
        #[arg(long, required = true)]
        force: bool,
        #[arg(long)]
        reason: String,
    },
    /// Takes a board out of rotation for every runner until `lease return`.
    Out {
        board: String,
        #[arg(long)]
        reason: String,
    },
    /// Puts a board back in rotation.
    Return {
        board: String,
        #[arg(long)]
        reason: String,
    },
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
            lease,
        } => run(&scenario, rig.as_deref(), out, db.db.as_deref(), &lease),
        Command::Runs { command, db } => with_store(db.db.as_deref(), |store, out| match command {
            None => history::runs_list(store, &gauntlet_store::RunFilter::default(), out),
            Some(RunsCommand::List {
                board,
                scenario,
                since,
                runner,
            }) => {
                let filter = gauntlet_store::RunFilter {
                    board,
                    scenario,
                    since,
                    runner,
                };
                history::runs_list(store, &filter, out)
            }
            Some(RunsCommand::Show { id }) => history::runs_show(store, &id, out),
            Some(RunsCommand::Import { dir }) => fleet::runs_import(store, &dir, out),
        }),
        Command::Lease { command, db } => {
            with_store(db.db.as_deref(), |store, out| match command {
                LeaseCommand::List => fleet::lease_list(store, out),
                LeaseCommand::Release { board, reason, .. } => {
                    fleet::lease_release(store, &board, &reason, out)
                }
                LeaseCommand::Out { board, reason } => {
                    fleet::lease_rotation(store, &board, &reason, false, out)
                }
                LeaseCommand::Return { board, reason } => {
                    fleet::lease_rotation(store, &board, &reason, true, out)
                }
            })
        }
        Command::Compare { run_a, run_b, db } => with_store(db.db.as_deref(), |store, out| {
            history::compare(store, &run_a, &run_b, out)
        }),
        Command::Trend {
            scenario,
            model,
            variant,
            board_class,
            metric,
            last,
            db,
        } => with_store(db.db.as_deref(), |store, out| {
            match (metric, model, variant) {
                (Some(metric), _, _) => history::metric_trend(
                    store,
                    &scenario,
                    &metric,
                    board_class.as_deref(),
                    last,
                    out,
                ),
                (None, Some(model), Some(variant)) => history::trend(
                    store,
                    &scenario,
                    &model,
                    &variant,
                    board_class.as_deref(),
                    out,
                ),
                _ => unreachable!("clap requires --model and --variant without --metric"),
            }
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
        Command::Drift {
            scenario,
            recordings,
            board_class,
            rig,
            out,
            db,
            lease,
        } => drift_command(
            &scenario,
            rig.as_deref(),
            db.db.as_deref(),
            &drift::DriftRequest {
                recordings: &recordings,
                board_class: board_class.as_deref(),
                out,
                leasing: &leasing(db.db.as_deref(), &lease),
            },
        ),
        Command::Bench {
            rounds,
            batch,
            runs,
            agent_apart,
        } => bench::bench(
            Path::new("."),
            &bench::BenchOptions {
                rounds,
                batch,
                runs,
                agent_apart,
            },
        )
        .map(|()| exit::SUCCESS)
        .map_err(|error| Failure {
            code: exit::INFRA_FAILURE,
            error,
        }),
        Command::Schema { kind } => {
            let schema = match kind {
                SchemaKind::Scenario => gauntlet_spec::scenario_json_schema(),
                SchemaKind::Rig => gauntlet_spec::rig_json_schema(),
            };
            stdout::say!(
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

/// Overrides how long a store write is retried when the database went away (e.g. `5s`).
const DB_RETRY_ENV: &str = "GAUNTLET_DB_RETRY";

fn open_store(db: Option<&Path>) -> Result<Store, Failure> {
    let path = gauntlet_store::default_db_path(db);
    let mut store = Store::open(&path).map_err(|e| Failure {
        code: exit::INFRA_FAILURE,
        error: e.into(),
    })?;
    if let Some(retry) = std::env::var_os(DB_RETRY_ENV) {
        let retry = retry.to_string_lossy();
        let retry = humantime::parse_duration(&retry)
            .map_err(|e| input_error(anyhow::anyhow!("read ${DB_RETRY_ENV} `{retry}`: {e}")))?;
        store.set_retry(retry);
    }
    Ok(store)
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
    command(&mut store, &mut stdout::Quiet).map_err(input_error)?;
    Ok(exit::SUCCESS)
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
        Some(path) => write_atomically(path, text.as_bytes()).map_err(|e| Failure {
            code: exit::INFRA_FAILURE,
            error: e.into(),
        })?,
        None => {
            use std::io::Write as _;
            let _ = stdout::Quiet.write_all(text.as_bytes());
        }
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
    let path = scenario.source.path.clone();
    gauntlet_runner::plan(scenario, rig).map_err(|e| {
        eprint!("{}", e.diagnostics());
        input_error(anyhow::anyhow!("plan the run of `{}`", path.display()))
    })
}

fn check(scenario: &Path, rig: Option<&Path>) -> Result<u8, Failure> {
    let plan = load_plan(scenario, rig)?;
    summary::print_plan(&plan);
    Ok(exit::SUCCESS)
}

fn run(
    scenario: &Path,
    rig: Option<&Path>,
    out: Option<PathBuf>,
    db: Option<&Path>,
    lease: &LeaseArgs,
) -> Result<u8, Failure> {
    let mut plan = load_plan(scenario, rig)?;
    let mut store = open_store(db)?;
    for note in head_to_head::join_champions(&mut plan, &store) {
        eprintln!("{note}");
    }
    let progress = progress::Progress::new(&plan);
    let finished = pipeline::run(&mut plan, &mut store, out, &progress, &leasing(db, lease));
    progress.finish();
    let finished = finished.map_err(|e| Failure {
        code: exit::INFRA_FAILURE,
        error: e.into(),
    })?;
    // The run is measured and written by now: a summary that cannot be rendered must not change
    // its exit code.
    match gauntlet_report::TerminalReporter.render(&ReportInput::new(
        &finished.results,
        &gauntlet_report::MemorySamples::new(),
    )) {
        Ok(text) => stdout::say!("{}", text.trim_end()),
        Err(e) => eprintln!("warning: failed to render the terminal summary: {e}"),
    }
    let results_json = finished.out.join("results.json");
    let written = results_json.is_file();
    if written {
        stdout::say!("results: {}", results_json.display());
    }
    if finished.problems.is_empty() {
        return Ok(outcome_code(&finished.results));
    }
    for problem in &finished.problems {
        eprintln!("error: failed to {problem}");
    }
    let kept = match (written, finished.recorded) {
        (true, true) => format!(
            "its figures are in `{}` and in the store",
            results_json.display()
        ),
        (true, false) => format!(
            "its figures are in `{}`; the store does not hold the finished run",
            results_json.display()
        ),
        (false, true) => "its figures are in the store: `gauntlet report` renders them".into(),
        (false, false) => "nothing of it could be kept".into(),
    };
    if written && finished.store_unavailable {
        eprintln!(
            "the store could not be reached: record the run later with `gauntlet runs import {}`",
            finished.out.display()
        );
    }
    Err(Failure {
        code: if written && finished.store_unavailable {
            exit::NOT_RECORDED
        } else {
            exit::INFRA_FAILURE
        },
        error: anyhow::anyhow!(
            "write every output of run `{}`: {kept}",
            finished.results.run_id
        ),
    })
}

fn leasing(db: Option<&Path>, lease: &LeaseArgs) -> fleet::Leasing {
    fleet::Leasing {
        db: gauntlet_store::default_db_path(db),
        ttl: lease.lease_ttl,
        wait: lease.wait,
    }
}

fn drift_command(
    scenario: &Path,
    rig: Option<&Path>,
    db: Option<&Path>,
    request: &drift::DriftRequest,
) -> Result<u8, Failure> {
    let plan = load_plan(scenario, rig)?;
    let inconclusive_fails = plan.scenario.inconclusive_fails;
    let store = open_store(db)?;
    let judged = drift::drift(plan, &store, request).map_err(|e| match e {
        drift::DriftError::Input(error) => input_error(error),
        drift::DriftError::Infra(error) => Failure {
            code: exit::INFRA_FAILURE,
            error,
        },
    })?;
    drift::print_summary(&judged.results);
    let path = drift::write(&judged).map_err(|error| Failure {
        code: exit::INFRA_FAILURE,
        error,
    })?;
    stdout::say!("drift: {}", path.display());
    drift::record(&store, &judged).map_err(|error| Failure {
        code: exit::INFRA_FAILURE,
        error: error.context(format!(
            "record the drift verdict: its figures are in `{}`",
            path.display()
        )),
    })?;
    Ok(match judged.results.verdict {
        gauntlet_results::DriftVerdict::Requalified => exit::SUCCESS,
        gauntlet_results::DriftVerdict::Drifted => exit::GATE_FAILED,
        gauntlet_results::DriftVerdict::Inconclusive if inconclusive_fails => exit::INCONCLUSIVE,
        gauntlet_results::DriftVerdict::Inconclusive => exit::SUCCESS,
    })
}

fn outcome_code(results: &Results) -> u8 {
    match results.outcome {
        Outcome::Pass => exit::SUCCESS,
        Outcome::GateFailed => exit::GATE_FAILED,
        Outcome::InfraFailure => exit::INFRA_FAILURE,
        Outcome::Inconclusive => exit::INCONCLUSIVE,
    }
}
