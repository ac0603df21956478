//! Run history, raw samples, verdicts, champions and the promotion ledger in SQLite.
//!
//! - **Durability**: WAL journal, `synchronous = NORMAL` (a committed transaction survives the
//!   process being killed; only a power cut may lose the last ones). [`Store::begin_run`] commits the
//!   run row on its own, so a harness killed mid-run leaves a visible row; each
//!   [`Store::record_samples`] call commits a chunk; [`Store::finish_run`] writes everything else in
//!   one transaction.
//! - **Incomplete runs**: a row still `running` whose process is gone (checked through `/proc`, with
//!   the process start time against pid reuse, so on the machine that wrote it) is reported as
//!   [`RunStatus::Incomplete`]; [`Store::mark_incomplete_stale`] also rewrites such rows.
//! - **Champions** are the latest promotion per scenario, model and board class; promotions are only
//!   ever added. [`Store`] implements [`gauntlet_gate::ChampionLookup`].
//! - **Path**: [`default_db_path`]: `--db` flag, else `$GAUNTLET_DB`, else `.gauntlet/gauntlet.db`.

mod process;
mod schema;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet_gate::{Champion, ChampionLookup, LookupError, board_class};
use gauntlet_results::{Entry, Metrics, Outcome, Results, Verdict};
use gauntlet_spec::Board;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

/// Environment variable naming the database when no `--db` flag is given.
pub const DB_ENV: &str = "GAUNTLET_DB";
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
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
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
    Sql {
        what: String,
        source: rusqlite::Error,
    },
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
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Wraps a rusqlite error with what was being done.
fn sql(what: impl FnOnce() -> String) -> impl FnOnce(rusqlite::Error) -> StoreError {
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

    fn parse(s: &str) -> rusqlite::Result<Self> {
        match s {
            "running" => Ok(RunStatus::Running),
            "complete" => Ok(RunStatus::Complete),
            "incomplete" => Ok(RunStatus::Incomplete),
            other => Err(rusqlite::Error::InvalidColumnType(
                0,
                format!("status `{other}`"),
                rusqlite::types::Type::Text,
            )),
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

fn enum_parse<T: DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

const RUN_COLUMNS: &str = "id, scenario_name, scenario_path, scenario_sha256, rig_name, rig_sha256, \
     started_at, finished_at, status, outcome, pid, pid_started";

fn run_summary(row: &Row<'_>) -> rusqlite::Result<RunSummary> {
    let mut status = RunStatus::parse(&row.get::<_, String>(8)?)?;
    let (pid, started): (u32, Option<u64>) = (row.get(10)?, row.get(11)?);
    if status == RunStatus::Running && !process::alive(pid, started) {
        status = RunStatus::Incomplete;
    }
    Ok(RunSummary {
        id: row.get(0)?,
        scenario_name: row.get(1)?,
        scenario_path: row.get(2)?,
        scenario_sha256: row.get(3)?,
        rig_name: row.get(4)?,
        rig_sha256: row.get(5)?,
        started_at: row.get(6)?,
        finished_at: row.get(7)?,
        status,
        outcome: row
            .get::<_, Option<String>>(9)?
            .map(|s| enum_parse(&s))
            .transpose()?,
    })
}

const PROMOTION_COLUMNS: &str = "id, run_id, scenario, model, variant, board_class, promoted_by, \
     reason, override_reason, verdict, promoted_at, model_sha256, dataset_sha256, scenario_sha256, \
     rig_sha256, report_sha256";

fn promotion(row: &Row<'_>) -> rusqlite::Result<Promotion> {
    Ok(Promotion {
        id: row.get(0)?,
        run_id: row.get(1)?,
        scenario: row.get(2)?,
        model: row.get(3)?,
        variant: row.get(4)?,
        board_class: row.get(5)?,
        by: row.get(6)?,
        reason: row.get(7)?,
        override_reason: row.get(8)?,
        verdict: row
            .get::<_, Option<String>>(9)?
            .map(|s| enum_parse(&s))
            .transpose()?,
        promoted_at: row.get(10)?,
        model_sha256: row.get(11)?,
        dataset_sha256: row.get(12)?,
        scenario_sha256: row.get(13)?,
        rig_sha256: row.get(14)?,
        report_sha256: row.get(15)?,
    })
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
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating it and its folder if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        // Another gauntlet may be writing (a run in CI while someone promotes): wait, don't fail.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(open_err)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(open_err)?;
        schema::migrate(&mut conn).map_err(|e| match e {
            schema::MigrateError::TooNew { found, supported } => StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                supported,
            },
            schema::MigrateError::Sql(source) => open_err(source),
        })?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a run as `running`, committed at once, so that a harness killed later leaves it
    /// visible (and shown as incomplete).
    pub fn begin_run(&self, run: &NewRun) -> Result<RunHandle> {
        let pid = std::process::id();
        self.conn
            .execute(
                "INSERT INTO runs (id, scenario_name, scenario_path, scenario_sha256, rig_name, \
                 rig_sha256, started_at, status, pid, pid_started) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8, ?9)",
                params![
                    run.id,
                    run.scenario_name,
                    run.scenario_path,
                    run.scenario_sha256,
                    run.rig_name,
                    run.rig_sha256,
                    run.started_at,
                    pid,
                    process::start_time(pid),
                ],
            )
            .map_err(sql(|| format!("record the start of run `{}`", run.id)))?;
        Ok(RunHandle { id: run.id.clone() })
    }

    /// Appends device latencies (µs) of one build on one board; each call commits on its own.
    pub fn record_samples(&self, run: &RunHandle, key: &EntryKey, device_us: &[f64]) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO samples (run_id, board, model, variant, chunk, device_us) \
                 VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(chunk) + 1, 0) FROM samples \
                 WHERE run_id = ?1 AND board = ?2 AND model = ?3 AND variant = ?4), ?5)",
                params![run.id, key.board, key.model, key.variant, encode(device_us)],
            )
            .map_err(sql(|| {
                format!(
                    "record samples of {} {} on {} for run `{}`",
                    key.model, key.variant, key.board, run.id
                )
            }))?;
        Ok(())
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
        let json = serde_json::to_string(results).expect("results serialise");
        let tx = self.conn.transaction().map_err(sql(what))?;
        let status: String = tx
            .query_row("SELECT status FROM runs WHERE id = ?1", [&run.id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql(what))?
            .ok_or_else(|| StoreError::NoSuchRun(run.id.clone()))?;
        if status != "running" {
            return Err(StoreError::NotRunning {
                run: run.id.clone(),
                status: RunStatus::parse(&status).map_err(sql(what))?,
            });
        }
        tx.execute(
            "UPDATE runs SET status = 'complete', finished_at = ?2, outcome = ?3, results_json = ?4 \
             WHERE id = ?1",
            params![run.id, results.finished_at, enum_text(&results.outcome), json],
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
            tx.execute(
                "INSERT INTO entries (run_id, board, board_class, model, variant, reference, status, \
                 model_sha256, accuracy, macro_f1, latency_p50_us, latency_p99_us, latency_mean_us, \
                 energy_per_inference_j, peak_rss_kib, flash_bytes, metrics_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                params![
                    run.id,
                    e.board,
                    class,
                    e.model,
                    e.variant,
                    e.reference,
                    enum_text(&e.status),
                    e.provenance.model_sha256,
                    m.and_then(|m| m.accuracy),
                    m.and_then(|m| m.macro_f1),
                    latency.map(|l| l.p50),
                    latency.map(|l| l.p99),
                    latency.map(|l| l.mean),
                    m.and_then(|m| m.energy.as_ref()).map(|en| en.per_inference_j),
                    m.and_then(|m| m.peak_rss_kib),
                    m.and_then(|m| m.flash_bytes),
                    m.map(|m| serde_json::to_string(m).expect("metrics serialise")),
                ],
            )
            .map_err(sql(|| {
                format!(
                    "store entry {} {} on {} of run `{}`",
                    e.model, e.variant, e.board, run.id
                )
            }))?;
        }
        for v in &results.verdicts {
            tx.execute(
                "INSERT INTO verdicts (run_id, model, variant, board_class, verdict, infra_error, \
                 gates_passed, gates_failed, gates_inconclusive) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run.id,
                    v.model,
                    v.variant,
                    v.board_class,
                    v.verdict.as_ref().map(enum_text),
                    v.infra_error,
                    v.gates_passed,
                    v.gates_failed,
                    v.gates_inconclusive,
                ],
            )
            .map_err(sql(what))?;
        }
        tx.commit().map_err(sql(what))
    }

    /// Marks a run this process gives up on (e.g. interrupted by Ctrl-C) as incomplete.
    pub fn abandon_run(&self, run: RunHandle) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET status = 'incomplete' WHERE id = ?1 AND status = 'running'",
                [&run.id],
            )
            .map_err(sql(|| format!("mark run `{}` incomplete", run.id)))?;
        Ok(())
    }

    /// Rewrites `running` rows whose process is gone as `incomplete`; returns how many.
    pub fn mark_incomplete_stale(&self) -> Result<usize> {
        let stale: Vec<String> = self
            .list_runs()?
            .into_iter()
            .filter(|r| r.status == RunStatus::Incomplete)
            .map(|r| r.id)
            .collect();
        let mut n = 0;
        for id in stale {
            n += self
                .conn
                .execute(
                    "UPDATE runs SET status = 'incomplete' WHERE id = ?1 AND status = 'running'",
                    [&id],
                )
                .map_err(sql(|| format!("mark run `{id}` incomplete")))?;
        }
        Ok(n)
    }

    /// Every run, oldest first.
    pub fn list_runs(&self) -> Result<Vec<RunSummary>> {
        let what = || "list runs".to_string();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at, rowid"
            ))
            .map_err(sql(what))?;
        let rows = stmt.query_map([], run_summary).map_err(sql(what))?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql(what))
    }

    pub fn run(&self, id: &str) -> Result<RunRecord> {
        let what = || format!("read run `{id}`");
        let found = self
            .conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS}, results_json FROM runs WHERE id = ?1"),
                [id],
                |row| Ok((run_summary(row)?, row.get::<_, Option<String>>(12)?)),
            )
            .optional()
            .map_err(sql(what))?;
        let (summary, json) = found.ok_or_else(|| StoreError::NoSuchRun(id.to_string()))?;
        let results = json
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|source| StoreError::Json {
                what: what(),
                source,
            })?;
        Ok(RunRecord { summary, results })
    }

    /// The raw device latencies of one build on one board, in the order recorded.
    /// Drops the run's raw samples, so that they can be written again whole when streaming them
    /// stopped half-way.
    pub fn clear_samples(&self, run: &RunHandle) -> Result<()> {
        self.conn
            .execute("DELETE FROM samples WHERE run_id = ?1", [&run.id])
            .map_err(sql(|| format!("drop the samples of run `{}`", run.id)))?;
        Ok(())
    }

    /// How many raw samples the store holds for each entry of run `run_id`, finished or not.
    pub fn sample_counts(&self, run_id: &str) -> Result<Vec<(EntryKey, usize)>> {
        let what = || format!("count the samples of run `{run_id}`");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT board, model, variant, SUM(LENGTH(device_us)) FROM samples \
                 WHERE run_id = ?1 GROUP BY board, model, variant ORDER BY board, model, variant",
            )
            .map_err(sql(what))?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok((
                    EntryKey {
                        board: r.get(0)?,
                        model: r.get(1)?,
                        variant: r.get(2)?,
                    },
                    r.get::<_, i64>(3)? as usize / 8,
                ))
            })
            .map_err(sql(what))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql(what))
    }

    pub fn samples(&self, run_id: &str, key: &EntryKey) -> Result<Vec<f64>> {
        let what = || {
            format!(
                "read samples of {} {} on {} in run `{run_id}`",
                key.model, key.variant, key.board
            )
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT device_us FROM samples WHERE run_id = ?1 AND board = ?2 AND model = ?3 \
                 AND variant = ?4 ORDER BY chunk",
            )
            .map_err(sql(what))?;
        let mut rows = stmt
            .query(params![run_id, key.board, key.model, key.variant])
            .map_err(sql(what))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sql(what))? {
            let blob: Vec<u8> = row.get(0).map_err(sql(what))?;
            decode(&blob, &mut out);
        }
        Ok(out)
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
        let report_json: String = self
            .conn
            .query_row(
                "SELECT results_json FROM runs WHERE id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .map_err(sql(what))?;
        let report_sha256 = hex::encode(Sha256::digest(report_json.as_bytes()));

        let verdicts: Vec<(String, Option<String>, String)> = {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT v.board_class, v.verdict, \
                     (SELECT e.model_sha256 FROM entries e WHERE e.run_id = v.run_id \
                      AND e.model = v.model AND e.variant = v.variant \
                      AND e.board_class = v.board_class ORDER BY e.rowid LIMIT 1) \
                     FROM verdicts v WHERE v.run_id = ?1 AND v.model = ?2 AND v.variant = ?3 \
                     AND (?4 IS NULL OR v.board_class = ?4) ORDER BY v.rowid",
                )
                .map_err(sql(what))?;
            let rows = stmt
                .query_map(
                    params![run_id, req.model, req.variant, req.board_class],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        ))
                    },
                )
                .map_err(sql(what))?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql(what))?
        };
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

        let tx = self.conn.transaction().map_err(sql(what))?;
        let mut ids = Vec::with_capacity(verdicts.len());
        for (class, verdict, model_sha256) in &verdicts {
            tx.execute(
                "INSERT INTO promotions (run_id, scenario, model, variant, board_class, promoted_by, \
                 reason, override_reason, verdict, model_sha256, dataset_sha256, scenario_sha256, \
                 rig_sha256, report_sha256) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    run_id,
                    record.summary.scenario_name,
                    req.model,
                    req.variant,
                    class,
                    req.by,
                    req.reason,
                    override_reason,
                    verdict,
                    model_sha256,
                    results.dataset.sha256,
                    record.summary.scenario_sha256,
                    record.summary.rig_sha256,
                    report_sha256,
                ],
            )
            .map_err(sql(what))?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit().map_err(sql(what))?;
        ids.into_iter()
            .map(|id| {
                self.conn
                    .query_row(
                        &format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = ?1"),
                        [id],
                        promotion,
                    )
                    .map_err(sql(what))
            })
            .collect()
    }

    /// The current champion (latest promotion) of a model on a board class.
    pub fn champion(
        &self,
        scenario: &str,
        model: &str,
        board_class: &str,
    ) -> Result<Option<Promotion>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {PROMOTION_COLUMNS} FROM champions \
                     WHERE scenario = ?1 AND model = ?2 AND board_class = ?3"
                ),
                [scenario, model, board_class],
                promotion,
            )
            .optional()
            .map_err(sql(|| {
                format!("read the champion of `{model}` on `{board_class}` for `{scenario}`")
            }))
    }

    /// Every current champion of a scenario, by model and board class.
    pub fn champions(&self, scenario: &str) -> Result<Vec<Promotion>> {
        let what = || format!("list the champions of `{scenario}`");
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {PROMOTION_COLUMNS} FROM champions WHERE scenario = ?1 \
                 ORDER BY model, board_class"
            ))
            .map_err(sql(what))?;
        let rows = stmt.query_map([scenario], promotion).map_err(sql(what))?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql(what))
    }

    /// The whole promotion ledger of a scenario, oldest first.
    pub fn promotions(&self, scenario: &str) -> Result<Vec<Promotion>> {
        let what = || format!("list the promotions of `{scenario}`");
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {PROMOTION_COLUMNS} FROM promotions WHERE scenario = ?1 ORDER BY id"
            ))
            .map_err(sql(what))?;
        let rows = stmt.query_map([scenario], promotion).map_err(sql(what))?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql(what))
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
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.run_id, e.metrics_json FROM entries e JOIN runs r ON r.id = e.run_id \
                 WHERE r.scenario_name = ?1 AND e.model_sha256 = ?2 AND e.board_class = ?3 \
                 AND e.status = 'completed' AND e.metrics_json IS NOT NULL \
                 ORDER BY r.started_at, e.rowid",
            )
            .map_err(sql(what))?;
        let rows = stmt
            .query_map([scenario, model_sha256, board_class], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(sql(what))?;
        let mut history: Vec<(String, Metrics)> = Vec::new();
        for row in rows {
            let (run_id, json) = row.map_err(sql(what))?;
            if history.last().is_some_and(|(last, _)| *last == run_id) {
                continue;
            }
            let metrics = serde_json::from_str(&json).map_err(|source| StoreError::Json {
                what: what(),
                source,
            })?;
            history.push((run_id, metrics));
        }
        Ok(history)
    }

    /// The figures of the champion build: those of its first board of the class in its run.
    fn champion_figures(&self, p: &Promotion) -> Result<Option<Metrics>> {
        let what = || {
            format!(
                "read the figures of `{}` `{}` in run `{}`",
                p.model, p.variant, p.run_id
            )
        };
        let json: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT metrics_json FROM entries WHERE run_id = ?1 AND model = ?2 AND variant = ?3 \
                 AND board_class = ?4 ORDER BY rowid LIMIT 1",
                [&p.run_id, &p.model, &p.variant, &p.board_class],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(what))?;
        json.flatten()
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|source| StoreError::Json {
                what: what(),
                source,
            })
    }
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
        let metrics = self
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
        }))
    }
}

#[cfg(test)]
mod tests;
