//! Run history, raw samples, verdicts, champions, the promotion ledger and board leases, in SQLite
//! (embedded, the default) or PostgreSQL (a lab shared by many runners) behind one [`Backend`].
//!
//! - **Where**: [`Store::open`] takes a file path, or a `postgres://` URL (see [`backend::Postgres`]
//!   for TLS and the `PG*` variables). Both get the same schema through the same migrations.
//! - **Durability**: SQLite uses a WAL journal, `synchronous = NORMAL` (a committed transaction
//!   survives the process being killed; only a power cut may lose the last ones). Every write is a
//!   transaction; one that fails because the database went away is retried with backoff for up to
//!   [`Store::set_retry`] (default [`DEFAULT_RETRY`]). [`Store::begin_run`] commits the
//!   run row on its own, so a harness killed mid-run leaves a visible row; each
//!   [`Store::record_samples`] call commits a chunk; [`Store::finish_run`] writes everything else in
//!   one transaction.
//! - **Incomplete runs**: a row still `running` is reported as [`RunStatus::Incomplete`] when its
//!   process is gone (checked through `/proc`, with the process start time against pid reuse, so
//!   on the machine that wrote it; [`Store::mark_incomplete_stale`] also rewrites such rows), or,
//!   from any host, when its heartbeat ([`Store::beat_run`]) is older than the staleness bound
//!   the run gave with it. The latter is judged at each read and never written, so a runner that
//!   only lost the database for a while reads running again when its heartbeat resumes.
//! - **Champions** are the latest promotion per scenario, model and board class; promotions are only
//!   ever added. [`Store`] implements [`gauntlet_gate::ChampionLookup`].
//! - **Path**: [`default_db_path`]: `--db` flag, else `$GAUNTLET_DB`, else `.gauntlet/gauntlet.db`.

pub mod backend;
mod drift;
mod lease;
mod process;
mod schema;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use backend::{Backend, DbError, Dialect};
use backend::{Row, Value, vals};
pub use drift::{DriftCheck, NewDriftCheck};
use gauntlet_gate::{Champion, ChampionLookup, LookupError, board_class};
use gauntlet_results::{Entry, Metrics, Outcome, Results, Verdict};
use gauntlet_spec::Board;
pub use lease::{Holder, Lease, LeaseError, LeaseEvent, OutOfRotation, Pool, Ticket};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

/// Environment variable naming the database when no `--db` flag is given.
pub const DB_ENV: &str = "GAUNTLET_DB";
/// How long a failed write is retried when the database went away.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(30);
/// The database used when neither `--db` nor `$GAUNTLET_DB` names one, relative to the working folder.
pub const DEFAULT_DB: &str = ".gauntlet/gauntlet.db";

/// `--db` flag, else `$GAUNTLET_DB` (when set and non-empty), else `.gauntlet/gauntlet.db`.
pub fn default_db_path(flag: Option<&Path>) -> PathBuf {
    resolve_db_path(flag, std::env::var_os(DB_ENV))
}

fn resolve_db_path(flag: Option<&Path>, env: Option<OsString>) -> PathBuf {
    match (flag, env) {
        (Some(flag), _) => flag.to_path_buf(),
        (None, Some(env)) if !env.is_empty() => PathBuf::from(env),
        _ => PathBuf::from(DEFAULT_DB),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("create the folder {} for the database: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("open the database {}: {source}", path.display())]
    Open { path: PathBuf, source: DbError },
    #[error(
        "open the database {}: it has schema version {found}, newer than the {supported} this gauntlet knows; use a newer gauntlet",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        supported: usize,
    },
    #[error("{what}: {source}")]
    Sql { what: String, source: DbError },
    #[error("{what}: stored JSON does not parse: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("find run `{0}`: no such run in the database")]
    NoSuchRun(String),
    #[error("finish run `{run}`: it is {status}, not running")]
    NotRunning { run: String, status: RunStatus },
    #[error("promote from run `{run}`: the run is {status}, and only complete runs have verdicts")]
    RunNotComplete { run: String, status: RunStatus },
    #[error(
        "promote `{model}` `{variant}` from run `{run}`: the run has no verdict for that build{on}"
    )]
    NoSuchBuild {
        run: String,
        model: String,
        variant: String,
        /// ` on <class>` when a class was asked for.
        on: String,
    },
    #[error(
        "promote `{model}` `{variant}` from run `{run}` on `{board_class}`: its verdict is {verdict}; give an override reason to promote it anyway"
    )]
    NotPassed {
        run: String,
        model: String,
        variant: String,
        board_class: String,
        verdict: String,
    },
    #[error("promote from run `{run}`: `{field}` must not be empty")]
    EmptyField { run: String, field: &'static str },
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

impl StoreError {
    /// Whether the database could not be reached (as opposed to refusing the request).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sql { source, .. } | StoreError::Open { source, .. } => source.transient,
            _ => false,
        }
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Wraps a database error with what was being done.
fn sql(what: impl FnOnce() -> String) -> impl FnOnce(DbError) -> StoreError {
    move |source| StoreError::Sql {
        what: what(),
        source,
    }
}

/// What is known about a run when it begins.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub id: String,
    pub scenario_name: String,
    pub scenario_path: String,
    pub scenario_sha256: String,
    pub rig_name: String,
    pub rig_sha256: String,
    /// RFC 3339, UTC.
    pub started_at: String,
}

/// A run this process began and has not finished.
#[derive(Debug)]
pub struct RunHandle {
    id: String,
}

impl RunHandle {
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Which build on which board raw samples belong to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryKey {
    pub board: String,
    pub model: String,
    pub variant: String,
}

impl From<&Entry> for EntryKey {
    fn from(e: &Entry) -> Self {
        EntryKey {
            board: e.board.clone(),
            model: e.model.clone(),
            variant: e.variant.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Complete,
    /// Killed or abandoned before it finished.
    Incomplete,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Incomplete => "incomplete",
        }
    }

    fn parse(s: &str) -> Result<Self, DbError> {
        match s {
            "running" => Ok(RunStatus::Running),
            "complete" => Ok(RunStatus::Complete),
            "incomplete" => Ok(RunStatus::Incomplete),
            other => Err(DbError::new(false, format!("unknown run status `{other}`"))),
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the run history.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub id: String,
    pub scenario_name: String,
    pub scenario_path: String,
    pub scenario_sha256: String,
    pub rig_name: String,
    pub rig_sha256: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// As it really is: a `running` row whose process is gone reads `Incomplete`.
    pub status: RunStatus,
    pub outcome: Option<Outcome>,
}

/// A run with its full results when it finished.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub summary: RunSummary,
    pub results: Option<Results>,
}

/// A request to make a build the champion of its board class(es).
#[derive(Debug, Clone, Copy)]
pub struct PromoteRequest<'a> {
    pub run_id: &'a str,
    pub model: &'a str,
    pub variant: &'a str,
    /// `None` promotes the build on every board class the run judged it on.
    pub board_class: Option<&'a str>,
    pub by: &'a str,
    pub reason: &'a str,
    /// Required to promote a build whose verdict is not PASS; recorded in the ledger.
    pub override_reason: Option<&'a str>,
}

/// One row of the promotion ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    pub id: i64,
    pub run_id: String,
    pub scenario: String,
    pub model: String,
    pub variant: String,
    pub board_class: String,
    pub by: String,
    pub reason: String,
    pub override_reason: Option<String>,
    /// The build's verdict when it was promoted (`None`: infrastructure failed).
    pub verdict: Option<Verdict>,
    /// RFC 3339, UTC.
    pub promoted_at: String,
    pub model_sha256: String,
    pub dataset_sha256: String,
    pub scenario_sha256: String,
    pub rig_sha256: String,
    /// SHA-256 of the run's results.json as stored.
    pub report_sha256: String,
}

/// A serde enum as its JSON string (`gate-failed`, `pass`).
fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .expect("results enums serialise as strings")
}

fn enum_parse<T: DeserializeOwned>(s: &str) -> Result<T, DbError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|e| DbError::new(false, e))
}

/// A run row's columns (`r`), the last saying whether its heartbeat has gone stale by the
/// database's clock.
fn run_columns(dialect: Dialect) -> String {
    format!(
        "r.id, r.scenario_name, r.scenario_path, r.scenario_sha256, r.rig_name, r.rig_sha256, \
         r.started_at, r.finished_at, r.status, r.outcome, r.pid, r.pid_started, r.runner, \
         (r.heartbeat_ms IS NOT NULL AND r.heartbeat_ms + r.stale_ms < {})",
        dialect.now_ms()
    )
}

/// Whether a `running` row's process is known to be gone: it ran on this host (a process on
/// another runner cannot be looked up here) and `/proc` no longer has it.
fn process_gone(row: &Row) -> Result<bool, DbError> {
    let pid = u32::try_from(row.int(10)?).unwrap_or(0);
    let started = row.opt_int(11)?.and_then(|s| u64::try_from(s).ok());
    let here = row.opt_text(12)?.is_none_or(|h| h == lease::host_name());
    Ok(here && !process::alive(pid, started))
}

fn run_summary(row: &Row) -> Result<RunSummary, DbError> {
    let mut status = RunStatus::parse(&row.text(8)?)?;
    // A run on another host is judged by its heartbeat: one a TTL old is a runner that died (or
    // lost the database for that long, and reads running again if it comes back).
    let heartbeat_stale = row.int(13)? != 0;
    if status == RunStatus::Running && (heartbeat_stale || process_gone(row)?) {
        status = RunStatus::Incomplete;
    }
    Ok(RunSummary {
        id: row.text(0)?,
        scenario_name: row.text(1)?,
        scenario_path: row.text(2)?,
        scenario_sha256: row.text(3)?,
        rig_name: row.text(4)?,
        rig_sha256: row.text(5)?,
        started_at: row.text(6)?,
        finished_at: row.opt_text(7)?,
        status,
        outcome: row.opt_text(9)?.map(|s| enum_parse(&s)).transpose()?,
    })
}

const PROMOTION_COLUMNS: &str = "id, run_id, scenario, model, variant, board_class, promoted_by, \
     reason, override_reason, verdict, promoted_at, model_sha256, dataset_sha256, scenario_sha256, \
     rig_sha256, report_sha256";

fn promotion(row: &Row) -> Result<Promotion, DbError> {
    Ok(Promotion {
        id: row.int(0)?,
        run_id: row.text(1)?,
        scenario: row.text(2)?,
        model: row.text(3)?,
        variant: row.text(4)?,
        board_class: row.text(5)?,
        by: row.text(6)?,
        reason: row.text(7)?,
        override_reason: row.opt_text(8)?,
        verdict: row.opt_text(9)?.map(|s| enum_parse(&s)).transpose()?,
        promoted_at: row.text(10)?,
        model_sha256: row.text(11)?,
        dataset_sha256: row.text(12)?,
        scenario_sha256: row.text(13)?,
        rig_sha256: row.text(14)?,
        report_sha256: row.text(15)?,
    })
}

/// A column of JSON text, parsed; `None` when it is NULL.
fn json_column<T: DeserializeOwned>(
    row: &Row,
    i: usize,
    what: impl Fn() -> String,
) -> Result<Option<T>> {
    row.opt_text(i)
        .map_err(sql(&what))?
        .map(|j| serde_json::from_str(&j))
        .transpose()
        .map_err(|source| StoreError::Json {
            what: what(),
            source,
        })
}

/// Every row through `f`, the first error stopping it.
fn all<T>(rows: Vec<Row>, f: impl Fn(&Row) -> Result<T, DbError>) -> Result<Vec<T>, DbError> {
    rows.iter().map(f).collect()
}

/// Little-endian f64s, 8 bytes each.
fn encode(samples: &[f64]) -> Vec<u8> {
    samples.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode(blob: &[u8], out: &mut Vec<f64>) {
    out.extend(
        blob.chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8"))),
    );
}

pub struct Store {
    db: Mutex<Box<dyn Backend>>,
    /// The file, or the server's URL without its password.
    path: PathBuf,
    retry: Duration,
}

impl Store {
    /// Opens and migrates the database at `path`: a SQLite file (created with its folder if
    /// needed), or a PostgreSQL server when `path` is a `postgres://` URL.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with(path, "")
    }

    /// Like [`Store::open`], for a connection that only holds leases: on PostgreSQL its commits
    /// do not wait for the server's disk (`synchronous_commit = off`), which halves a lease round
    /// trip. A server crash may then forget the last lease changes (at most about 0.6 s of them);
    /// a holder whose lease was forgotten finds it gone at its next heartbeat, as after an expiry.
    pub fn open_for_leases(path: &Path) -> Result<Store> {
        Store::open_with(path, "SET synchronous_commit = off")
    }

    fn open_with(path: &Path, session: &str) -> Result<Store> {
        let location = path.to_string_lossy();
        if backend::is_postgres_url(&location) {
            let pg = backend::Postgres::connect_with(&location, session).map_err(|source| {
                StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            return Store::with_backend(Box::new(pg));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let sqlite = backend::Sqlite::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Store::with_backend(Box::new(sqlite))
    }

    /// A store on any backend (e.g. [`backend::testing::Outage`]), migrated.
    pub fn with_backend(mut db: Box<dyn Backend>) -> Result<Store> {
        let path = PathBuf::from(db.describe());
        schema::migrate(db.as_mut()).map_err(|e| match e {
            schema::MigrateError::TooNew { found, supported } => StoreError::TooNew {
                path: path.clone(),
                found,
                supported,
            },
            schema::MigrateError::Db(source) => StoreError::Open {
                path: path.clone(),
                source,
            },
        })?;
        Ok(Store {
            db: Mutex::new(db),
            path,
            retry: DEFAULT_RETRY,
        })
    }

    /// The file, or the server's URL without its password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dialect(&self) -> Dialect {
        self.db().dialect()
    }

    /// How long a write that failed because the database went away is retried.
    pub fn set_retry(&mut self, retry: Duration) {
        self.retry = retry;
    }

    fn db(&self) -> MutexGuard<'_, Box<dyn Backend>> {
        // A panic while holding it leaves no transaction open (each call ends its own), so the
        // connection is still usable.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn query(&self, what: impl FnOnce() -> String, q: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.db().query(q, params).map_err(sql(what))
    }

    /// Runs `f` in one transaction; when the database could not be reached, again with backoff
    /// (100 ms doubling, at most 5 s apart) until `retry` has passed.
    fn transaction<T>(
        &self,
        retry: Duration,
        what: &dyn Fn() -> String,
        mut f: impl FnMut(&mut dyn Backend) -> Result<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + retry;
        let mut pause = Duration::from_millis(100);
        loop {
            let attempt = {
                let mut guard = self.db();
                let db: &mut dyn Backend = guard.as_mut();
                let begin = db.dialect().begin();
                let attempt = db
                    .batch(begin)
                    .map_err(sql(what))
                    .and_then(|()| f(&mut *db))
                    .and_then(|v| db.batch("COMMIT").map_err(sql(what)).map(|()| v));
                if attempt.is_err() {
                    let _ = db.batch("ROLLBACK");
                }
                attempt
            };
            match attempt {
                Ok(v) => return Ok(v),
                Err(e) if e.is_unavailable() && Instant::now() + pause <= deadline => {}
                Err(e) => return Err(e),
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Records a run as `running`, committed at once, so that a harness killed later leaves it
    /// visible (and shown as incomplete).
    pub fn begin_run(&self, run: &NewRun) -> Result<RunHandle> {
        let pid = std::process::id();
        let what = || format!("record the start of run `{}`", run.id);
        self.transaction(self.retry, &what, |db| {
            db.execute(
                "INSERT INTO runs (id, scenario_name, scenario_path, scenario_sha256, rig_name, \
                 rig_sha256, started_at, status, pid, pid_started, runner) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8, ?9, ?10)",
                vals![
                    &run.id,
                    &run.scenario_name,
                    &run.scenario_path,
                    &run.scenario_sha256,
                    &run.rig_name,
                    &run.rig_sha256,
                    &run.started_at,
                    pid,
                    process::start_time(pid),
                    lease::host_name(),
                ],
            )
            .map_err(sql(what))
        })?;
        Ok(RunHandle { id: run.id.clone() })
    }

    /// Appends device latencies (µs) of one build on one board; each call commits on its own and is
    /// not retried (the caller keeps what it could not write, for the next call or the end).
    pub fn record_samples(&self, run: &RunHandle, key: &EntryKey, device_us: &[f64]) -> Result<()> {
        self.record_sample_batches(run, &[(key, device_us)])
    }

    /// Appends several builds' latencies in one transaction.
    pub fn record_sample_batches(
        &self,
        run: &RunHandle,
        batches: &[(&EntryKey, &[f64])],
    ) -> Result<()> {
        let what = || format!("record samples for run `{}`", run.id);
        self.transaction(Duration::ZERO, &what, |db| {
            for (key, device_us) in batches {
                insert_samples(db, &run.id, key, device_us)?;
            }
            Ok(())
        })
    }

    /// Stores the run's results, entries and verdicts and marks it complete, in one transaction.
    /// `boards` are the rig's boards, for each entry's board class.
    pub fn finish_run(
        &mut self,
        run: &RunHandle,
        results: &Results,
        boards: &[Board],
    ) -> Result<()> {
        let what = || format!("store the results of run `{}`", run.id);
        self.transaction(self.retry, &what, |db| {
            let status = db
                .query("SELECT status FROM runs WHERE id = ?1", vals![&run.id])
                .map_err(sql(what))?;
            let status = status
                .first()
                .ok_or_else(|| StoreError::NoSuchRun(run.id.clone()))?
                .text(0)
                .map_err(sql(what))?;
            if status != "running" {
                return Err(StoreError::NotRunning {
                    run: run.id.clone(),
                    status: RunStatus::parse(&status).map_err(sql(what))?,
                });
            }
            write_results(db, &run.id, results, boards)
        })
    }

    /// Records a run from its results.json (`samples`: raw device latencies per build), for a run
    /// whose store write failed. Idempotent: returns `false`, writing nothing, when the run is
    /// already complete; a row left `running` or `incomplete` by the failed run is completed.
    pub fn import_run(
        &self,
        results: &Results,
        boards: &[Board],
        samples: &[(EntryKey, Vec<f64>)],
        source: &NewRun,
    ) -> Result<bool> {
        let what = || format!("import run `{}`", results.run_id);
        self.transaction(self.retry, &what, |db| {
            let found = db
                .query(
                    "SELECT status FROM runs WHERE id = ?1",
                    vals![&results.run_id],
                )
                .map_err(sql(what))?;
            match found
                .first()
                .map(|r| r.text(0))
                .transpose()
                .map_err(sql(what))?
            {
                Some(status) if status == "complete" => return Ok(false),
                Some(_) => {
                    db.execute(
                        "UPDATE runs SET status = 'running' WHERE id = ?1",
                        vals![&results.run_id],
                    )
                    .map_err(sql(what))?;
                    // What it streamed before the store went away is replaced by the whole record.
                    db.execute(
                        "DELETE FROM samples WHERE run_id = ?1",
                        vals![&results.run_id],
                    )
                    .map_err(sql(what))?;
                }
                None => {
                    db.execute(
                        "INSERT INTO runs (id, scenario_name, scenario_path, scenario_sha256, \
                         rig_name, rig_sha256, started_at, status, pid, runner) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', 0, ?8)",
                        vals![
                            &results.run_id,
                            &source.scenario_name,
                            &source.scenario_path,
                            &source.scenario_sha256,
                            &source.rig_name,
                            &source.rig_sha256,
                            &source.started_at,
                            lease::host_name(),
                        ],
                    )
                    .map_err(sql(what))?;
                }
            }
            for (key, device_us) in samples {
                insert_samples(db, &results.run_id, key, device_us)?;
            }
            write_results(db, &results.run_id, results, boards)?;
            Ok(true)
        })
    }

    /// Marks a run this process gives up on (e.g. interrupted by Ctrl-C) as incomplete.
    pub fn abandon_run(&self, run: RunHandle) -> Result<()> {
        let what = || format!("mark run `{}` incomplete", run.id);
        self.transaction(self.retry, &what, |db| {
            db.execute(
                "UPDATE runs SET status = 'incomplete' WHERE id = ?1 AND status = 'running'",
                vals![&run.id],
            )
            .map_err(sql(what))
        })?;
        Ok(())
    }

    /// Renews the heartbeat of a run this process is working on: until `stale_after` has passed
    /// without another beat, every reader takes it for alive. `false`: the run is no longer
    /// running (finished, or given up on).
    pub fn beat_run(&self, run: &str, stale_after: Duration) -> Result<bool> {
        let what = || format!("renew the heartbeat of run `{run}`");
        let now = self.dialect().now_ms();
        let n = self
            .db()
            .execute(
                &format!(
                    "UPDATE runs SET heartbeat_ms = {now}, stale_ms = ?2 \
                     WHERE id = ?1 AND status = 'running'"
                ),
                vals![run, lease::ms(stale_after)],
            )
            .map_err(sql(what))?;
        Ok(n == 1)
    }

    /// Rewrites `running` rows whose process is gone from this host as `incomplete`; returns how
    /// many. A run whose heartbeat is only stale is left `running` (it reads incomplete): its
    /// runner may merely have lost the database for a while, and still finish it.
    pub fn mark_incomplete_stale(&self) -> Result<usize> {
        let what = || "find runs whose process is gone".to_string();
        let rows = self.query(
            what,
            &format!(
                "SELECT {} FROM runs r WHERE r.status = 'running'",
                run_columns(self.dialect())
            ),
            &[],
        )?;
        let mut stale = Vec::new();
        for row in &rows {
            if process_gone(row).map_err(sql(what))? {
                stale.push(row.text(0).map_err(sql(what))?);
            }
        }
        let mut n = 0;
        for id in stale {
            let what = || format!("mark run `{id}` incomplete");
            n += self.transaction(Duration::ZERO, &what, |db| {
                db.execute(
                    "UPDATE runs SET status = 'incomplete' WHERE id = ?1 AND status = 'running'",
                    vals![&id],
                )
                .map_err(sql(what))
            })?;
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Every run, oldest first.
    pub fn list_runs(&self) -> Result<Vec<RunSummary>> {
        self.find_runs(&RunFilter::default())
    }

    /// The runs `filter` selects, oldest first.
    pub fn find_runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>> {
        let what = || "list runs".to_string();
        let rows = self.query(
            what,
            &format!(
                "SELECT {} FROM runs r \
                 WHERE (CAST(?1 AS TEXT) IS NULL OR r.scenario_name = ?1) \
                 AND (CAST(?2 AS TEXT) IS NULL OR r.started_at >= ?2) \
                 AND (CAST(?3 AS TEXT) IS NULL OR r.runner = ?3) \
                 AND (CAST(?4 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM entries e WHERE e.run_id = r.id \
                      AND e.board = ?4) OR EXISTS (SELECT 1 FROM samples s \
                      WHERE s.run_id = r.id AND s.board = ?4)) \
                 ORDER BY r.started_at, r.rowid",
                run_columns(self.dialect())
            ),
            vals![
                filter.scenario.as_deref(),
                filter.since.as_deref(),
                filter.runner.as_deref(),
                filter.board.as_deref(),
            ],
        )?;
        all(rows, run_summary).map_err(sql(what))
    }

    pub fn run(&self, id: &str) -> Result<RunRecord> {
        let what = || format!("read run `{id}`");
        let rows = self.query(
            what,
            &format!(
                "SELECT {}, r.results_json FROM runs r WHERE r.id = ?1",
                run_columns(self.dialect())
            ),
            vals![id],
        )?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::NoSuchRun(id.to_string()))?;
        let summary = run_summary(row).map_err(sql(what))?;
        let results = json_column(row, 14, what)?;
        Ok(RunRecord { summary, results })
    }

    /// The raw device latencies of one build on one board, in the order recorded.
    pub fn samples(&self, run_id: &str, key: &EntryKey) -> Result<Vec<f64>> {
        let what = || {
            format!(
                "read samples of {} {} on {} in run `{run_id}`",
                key.model, key.variant, key.board
            )
        };
        let rows = self.query(
            what,
            "SELECT device_us FROM samples WHERE run_id = ?1 AND board = ?2 AND model = ?3 \
             AND variant = ?4 ORDER BY chunk",
            vals![run_id, &key.board, &key.model, &key.variant],
        )?;
        let mut out = Vec::new();
        for row in rows {
            decode(&row.blob(0).map_err(sql(what))?, &mut out);
        }
        Ok(out)
    }

    /// Drops the run's raw samples, so that they can be written again whole when streaming them
    /// stopped half-way.
    pub fn clear_samples(&self, run: &RunHandle) -> Result<()> {
        let what = || format!("drop the samples of run `{}`", run.id);
        self.transaction(self.retry, &what, |db| {
            db.execute("DELETE FROM samples WHERE run_id = ?1", vals![&run.id])
                .map_err(sql(what))
        })?;
        Ok(())
    }

    /// Every build a run has samples of, with how many (a killed run's partial record).
    pub fn sample_counts(&self, run_id: &str) -> Result<Vec<(EntryKey, usize)>> {
        let what = || format!("count the samples of run `{run_id}`");
        let rows = self.query(
            what,
            "SELECT board, model, variant, SUM(LENGTH(device_us)) / 8 FROM samples \
             WHERE run_id = ?1 GROUP BY board, model, variant ORDER BY board, model, variant",
            vals![run_id],
        )?;
        all(rows, |r| {
            Ok((
                EntryKey {
                    board: r.text(0)?,
                    model: r.text(1)?,
                    variant: r.text(2)?,
                },
                usize::try_from(r.int(3)?).unwrap_or(0),
            ))
        })
        .map_err(sql(what))
    }

    /// One figure of a scenario's builds over its recent complete runs, oldest first: the trend of
    /// `metric` (`latency.p50`, `latency.p90`, `latency.p99`, `accuracy`, `macro_f1`, `energy`) on
    /// `board_class` (every class when `None`), at most `last` runs.
    pub fn trend(
        &self,
        scenario: &str,
        metric: &str,
        board_class: Option<&str>,
        last: usize,
    ) -> Result<Vec<TrendPoint>> {
        let what = || format!("read the trend of `{metric}` in `{scenario}`");
        let rows = self.query(
            what,
            "SELECT r.id, r.started_at, e.board, e.board_class, e.model, e.variant, e.metrics_json \
             FROM entries e JOIN runs r ON r.id = e.run_id \
             WHERE r.scenario_name = ?1 AND r.status = 'complete' \
             AND (CAST(?2 AS TEXT) IS NULL OR e.board_class = ?2) \
             AND r.id IN (SELECT id FROM runs WHERE scenario_name = ?1 AND status = 'complete' \
                          ORDER BY started_at DESC, rowid DESC LIMIT ?3) \
             ORDER BY r.started_at, r.rowid, e.rowid",
            vals![scenario, board_class, last],
        )?;
        let mut points = Vec::with_capacity(rows.len());
        for r in rows {
            let metrics: Option<Metrics> = json_column(&r, 6, what)?;
            points.push(TrendPoint {
                run_id: r.text(0).map_err(sql(what))?,
                started_at: r.text(1).map_err(sql(what))?,
                board: r.text(2).map_err(sql(what))?,
                board_class: r.text(3).map_err(sql(what))?,
                model: r.text(4).map_err(sql(what))?,
                variant: r.text(5).map_err(sql(what))?,
                value: metrics.as_ref().and_then(|m| metric_value(m, metric)),
            });
        }
        Ok(points)
    }

    /// Makes a build the champion of its board class(es), refusing a build whose verdict is not PASS
    /// unless an override reason is given. Nothing is recorded when any class is refused.
    pub fn promote(&mut self, req: &PromoteRequest<'_>) -> Result<Vec<Promotion>> {
        let run_id = req.run_id;
        for (field, value) in [("by", req.by), ("reason", req.reason)] {
            if value.trim().is_empty() {
                return Err(StoreError::EmptyField {
                    run: run_id.into(),
                    field,
                });
            }
        }
        let override_reason = req.override_reason.filter(|r| !r.trim().is_empty());
        if req.override_reason.is_some() && override_reason.is_none() {
            return Err(StoreError::EmptyField {
                run: run_id.into(),
                field: "override",
            });
        }
        let record = self.run(run_id)?;
        let results = match (record.summary.status, &record.results) {
            (RunStatus::Complete, Some(r)) => r,
            (status, _) => {
                return Err(StoreError::RunNotComplete {
                    run: run_id.into(),
                    status,
                });
            }
        };
        let what = || {
            format!(
                "promote `{}` `{}` from run `{run_id}`",
                req.model, req.variant
            )
        };
        let report_json = self.query(
            what,
            "SELECT results_json FROM runs WHERE id = ?1",
            vals![run_id],
        )?[0]
            .text(0)
            .map_err(sql(what))?;
        let report_sha256 = hex::encode(Sha256::digest(report_json.as_bytes()));

        let rows = self.query(
            what,
            "SELECT v.board_class, v.verdict, \
             (SELECT e.model_sha256 FROM entries e WHERE e.run_id = v.run_id \
              AND e.model = v.model AND e.variant = v.variant \
              AND e.board_class = v.board_class ORDER BY e.rowid LIMIT 1) \
             FROM verdicts v WHERE v.run_id = ?1 AND v.model = ?2 AND v.variant = ?3 \
             AND (CAST(?4 AS TEXT) IS NULL OR v.board_class = ?4) ORDER BY v.rowid",
            vals![run_id, req.model, req.variant, req.board_class],
        )?;
        let verdicts: Vec<(String, Option<String>, String)> = all(rows, |r| {
            Ok((
                r.text(0)?,
                r.opt_text(1)?,
                r.opt_text(2)?.unwrap_or_default(),
            ))
        })
        .map_err(sql(what))?;
        if verdicts.is_empty() {
            return Err(StoreError::NoSuchBuild {
                run: run_id.into(),
                model: req.model.into(),
                variant: req.variant.into(),
                on: req
                    .board_class
                    .map_or(String::new(), |c| format!(" on `{c}`")),
            });
        }
        if override_reason.is_none() {
            let pass = enum_text(&Verdict::Pass);
            if let Some((class, verdict, _)) = verdicts
                .iter()
                .find(|(_, v, _)| v.as_deref() != Some(pass.as_str()))
            {
                return Err(StoreError::NotPassed {
                    run: run_id.into(),
                    model: req.model.into(),
                    variant: req.variant.into(),
                    board_class: class.clone(),
                    verdict: verdict
                        .clone()
                        .unwrap_or_else(|| "none (infrastructure failed)".into()),
                });
            }
        }

        self.transaction(self.retry, &what, |db| {
            let mut promotions = Vec::with_capacity(verdicts.len());
            for (class, verdict, model_sha256) in &verdicts {
                let rows = db
                    .query(
                        &format!(
                            "INSERT INTO promotions (run_id, scenario, model, variant, board_class, \
                             promoted_by, reason, override_reason, verdict, model_sha256, \
                             dataset_sha256, scenario_sha256, rig_sha256, report_sha256) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                             RETURNING {PROMOTION_COLUMNS}"
                        ),
                        vals![
                            run_id,
                            &record.summary.scenario_name,
                            req.model,
                            req.variant,
                            class,
                            req.by,
                            req.reason,
                            override_reason,
                            verdict.clone(),
                            model_sha256,
                            &results.dataset.sha256,
                            &record.summary.scenario_sha256,
                            &record.summary.rig_sha256,
                            &report_sha256,
                        ],
                    )
                    .map_err(sql(what))?;
                promotions.push(promotion(&rows[0]).map_err(sql(what))?);
            }
            Ok(promotions)
        })
    }

    /// The current champion (latest promotion) of a model on a board class.
    pub fn champion(
        &self,
        scenario: &str,
        model: &str,
        board_class: &str,
    ) -> Result<Option<Promotion>> {
        let what = || format!("read the champion of `{model}` on `{board_class}` for `{scenario}`");
        let rows = self.query(
            what,
            &format!(
                "SELECT {PROMOTION_COLUMNS} FROM champions \
                 WHERE scenario = ?1 AND model = ?2 AND board_class = ?3"
            ),
            vals![scenario, model, board_class],
        )?;
        rows.first().map(promotion).transpose().map_err(sql(what))
    }

    /// Every current champion of a scenario, by model and board class.
    pub fn champions(&self, scenario: &str) -> Result<Vec<Promotion>> {
        let what = || format!("list the champions of `{scenario}`");
        let rows = self.query(
            what,
            &format!(
                "SELECT {PROMOTION_COLUMNS} FROM champions WHERE scenario = ?1 \
                 ORDER BY model, board_class"
            ),
            vals![scenario],
        )?;
        all(rows, promotion).map_err(sql(what))
    }

    /// The whole promotion ledger of a scenario, oldest first.
    pub fn promotions(&self, scenario: &str) -> Result<Vec<Promotion>> {
        let what = || format!("list the promotions of `{scenario}`");
        let rows = self.query(
            what,
            &format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE scenario = ?1 ORDER BY id"),
            vals![scenario],
        )?;
        all(rows, promotion).map_err(sql(what))
    }

    /// Figures of one build (by its model's SHA-256) on a board class in every completed run of a
    /// scenario, oldest first, one per run (its first board of the class): the build's run-to-run
    /// history, for noise bands.
    pub fn build_history(
        &self,
        scenario: &str,
        model_sha256: &str,
        board_class: &str,
    ) -> Result<Vec<(String, Metrics)>> {
        let what = || format!("read the history of build `{model_sha256}` on `{board_class}`");
        let rows = self.query(
            what,
            "SELECT e.run_id, e.metrics_json FROM entries e JOIN runs r ON r.id = e.run_id \
             WHERE r.scenario_name = ?1 AND e.model_sha256 = ?2 AND e.board_class = ?3 \
             AND e.status = 'completed' AND e.metrics_json IS NOT NULL \
             ORDER BY r.started_at, r.rowid, e.rowid",
            vals![scenario, model_sha256, board_class],
        )?;
        let mut history: Vec<(String, Metrics)> = Vec::new();
        for row in rows {
            let run_id = row.text(0).map_err(sql(what))?;
            if history.last().is_some_and(|(last, _)| *last == run_id) {
                continue;
            }
            let metrics = json_column(&row, 1, what)?.expect("selected NOT NULL");
            history.push((run_id, metrics));
        }
        Ok(history)
    }

    /// The figures of the champion build: those of its first board of the class in its run, and
    /// that board's CPU extensions as the run recorded them (empty when it recorded none).
    fn champion_figures(&self, p: &Promotion) -> Result<Option<(Metrics, Vec<String>)>> {
        let what = || {
            format!(
                "read the figures of `{}` `{}` in run `{}`",
                p.model, p.variant, p.run_id
            )
        };
        let rows = self.query(
            what,
            "SELECT e.metrics_json, e.board, r.results_json FROM entries e \
             JOIN runs r ON r.id = e.run_id WHERE e.run_id = ?1 AND e.model = ?2 \
             AND e.variant = ?3 AND e.board_class = ?4 ORDER BY e.rowid LIMIT 1",
            vals![&p.run_id, &p.model, &p.variant, &p.board_class],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let Some(metrics) = json_column(row, 0, what)? else {
            return Ok(None);
        };
        let board = row.text(1).map_err(sql(what))?;
        let results: Option<serde_json::Value> = json_column(row, 2, what)?;
        Ok(Some((metrics, cpu_features(results.as_ref(), &board))))
    }
}

/// The CPU extensions `board` reported in a run's results.json. Read from the JSON rather than
/// through [`Results`]: runs recorded by older versions parse as well.
fn cpu_features(results: Option<&serde_json::Value>, board: &str) -> Vec<String> {
    results
        .and_then(|r| r["boards"].as_array())
        .and_then(|boards| boards.iter().find(|b| b["board"] == board))
        .and_then(|b| b["facts"]["cpu_features"].as_array())
        .map(|features| {
            features
                .iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Which runs [`Store::find_runs`] lists; `None` fields select everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub scenario: Option<String>,
    /// Boards by id: a run that recorded an entry or samples on it.
    pub board: Option<String>,
    /// RFC 3339: runs started at or after it.
    pub since: Option<String>,
    /// The host that ran it.
    pub runner: Option<String>,
}

/// One build's figure in one run, for [`Store::trend`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    pub run_id: String,
    pub started_at: String,
    pub board: String,
    pub board_class: String,
    pub model: String,
    pub variant: String,
    /// `None`: the build has no such figure in that run.
    pub value: Option<f64>,
}

/// The names [`Store::trend`] accepts: the gates' names for the same figures.
pub const TREND_METRICS: &[&str] = &[
    "latency.p50",
    "latency.p90",
    "latency.p99",
    "accuracy",
    "macro_f1",
    "energy_per_inference",
];

fn metric_value(m: &Metrics, metric: &str) -> Option<f64> {
    let latency = m.latency_device_us.as_ref();
    match metric {
        "latency.p50" => latency.map(|l| l.p50),
        "latency.p90" => latency.map(|l| l.p90),
        "latency.p99" => latency.map(|l| l.p99),
        "accuracy" => m.accuracy,
        "macro_f1" => m.macro_f1,
        "energy_per_inference" => m.energy.as_ref().map(|e| e.per_inference_j),
        _ => None,
    }
}

fn insert_samples(
    db: &mut dyn Backend,
    run_id: &str,
    key: &EntryKey,
    device_us: &[f64],
) -> Result<()> {
    db.execute(
        "INSERT INTO samples (run_id, board, model, variant, chunk, device_us) \
         VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(chunk) + 1, 0) FROM samples \
         WHERE run_id = ?1 AND board = ?2 AND model = ?3 AND variant = ?4), ?5)",
        vals![
            run_id,
            &key.board,
            &key.model,
            &key.variant,
            encode(device_us)
        ],
    )
    .map_err(sql(|| {
        format!(
            "record samples of {} {} on {} for run `{run_id}`",
            key.model, key.variant, key.board
        )
    }))?;
    Ok(())
}

/// The results, entries and verdicts of a `running` run, which becomes complete.
fn write_results(
    db: &mut dyn Backend,
    run_id: &str,
    results: &Results,
    boards: &[Board],
) -> Result<()> {
    let what = || format!("store the results of run `{run_id}`");
    let json = serde_json::to_string(results).expect("results serialise");
    db.execute(
        "UPDATE runs SET status = 'complete', finished_at = ?2, outcome = ?3, results_json = ?4 \
         WHERE id = ?1",
        vals![
            run_id,
            &results.finished_at,
            enum_text(&results.outcome),
            json
        ],
    )
    .map_err(sql(what))?;
    for e in &results.entries {
        let class = boards.iter().find(|b| b.id == e.board).map_or_else(
            || {
                results
                    .boards
                    .iter()
                    .find(|b| b.board == e.board)
                    .map_or_else(|| "unknown".to_string(), |b| b.kind.clone())
            },
            board_class,
        );
        let m = e.metrics.as_ref();
        let latency = m.and_then(|m| m.latency_device_us.as_ref());
        db.execute(
            "INSERT INTO entries (run_id, board, board_class, model, variant, reference, status, \
             model_sha256, accuracy, macro_f1, latency_p50_us, latency_p99_us, latency_mean_us, \
             energy_per_inference_j, peak_rss_kib, flash_bytes, metrics_json) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            vals![
                run_id,
                &e.board,
                class,
                &e.model,
                &e.variant,
                e.reference,
                enum_text(&e.status),
                &e.provenance.model_sha256,
                m.and_then(|m| m.accuracy),
                m.and_then(|m| m.macro_f1),
                latency.map(|l| l.p50),
                latency.map(|l| l.p99),
                latency.map(|l| l.mean),
                m.and_then(|m| m.energy.as_ref())
                    .map(|en| en.per_inference_j),
                m.and_then(|m| m.peak_rss_kib),
                m.and_then(|m| m.flash_bytes),
                m.map(|m| serde_json::to_string(m).expect("metrics serialise")),
            ],
        )
        .map_err(sql(|| {
            format!(
                "store entry {} {} on {} of run `{run_id}`",
                e.model, e.variant, e.board
            )
        }))?;
    }
    for v in &results.verdicts {
        db.execute(
            "INSERT INTO verdicts (run_id, model, variant, board_class, verdict, infra_error, \
             gates_passed, gates_failed, gates_inconclusive) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            vals![
                run_id,
                &v.model,
                &v.variant,
                &v.board_class,
                v.verdict.as_ref().map(enum_text),
                v.infra_error.clone(),
                v.gates_passed,
                v.gates_failed,
                v.gates_inconclusive,
            ],
        )
        .map_err(sql(what))?;
    }
    Ok(())
}

impl ChampionLookup for Store {
    fn champion(
        &self,
        scenario: &str,
        model: &str,
        board_class: &str,
    ) -> Result<Option<Champion>, LookupError> {
        let fail = |reason: String| LookupError {
            model: model.into(),
            board_class: board_class.into(),
            reason,
        };
        let Some(p) =
            Store::champion(self, scenario, model, board_class).map_err(|e| fail(e.to_string()))?
        else {
            return Ok(None);
        };
        let (metrics, cpu_features) = self
            .champion_figures(&p)
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| {
                fail(format!(
                    "the champion `{}` of run `{}` has no recorded figures",
                    p.variant, p.run_id
                ))
            })?;
        let history = self
            .build_history(scenario, &p.model_sha256, board_class)
            .map_err(|e| fail(e.to_string()))?
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        Ok(Some(Champion {
            run_id: p.run_id,
            variant: p.variant,
            model_sha256: p.model_sha256,
            metrics,
            history,
            cpu_features,
        }))
    }
}

#[cfg(test)]
mod tests;
