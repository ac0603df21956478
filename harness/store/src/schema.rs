//! The database layout, as an ordered list of migrations written once for both databases: `{int}`,
//! `{real}`, `{blob}`, `{serial}`, `{rowid}` and `{now_text}` are rendered by [`Dialect::render`]
//! (for SQLite exactly as V1 first shipped). A database records in `schema_version` the migrations it
//! has had; opening applies the missing ones in one transaction.

use crate::backend::{Backend, DbError, Dialect, vals};

/// Migration `i` brings a database from version `i` to `i + 1`. Append only: never edit a shipped one.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

const V1: &str = r#"
CREATE TABLE runs (
    {rowid}
    id              TEXT PRIMARY KEY,
    scenario_name   TEXT NOT NULL,
    scenario_path   TEXT NOT NULL,
    scenario_sha256 TEXT NOT NULL,
    rig_name        TEXT NOT NULL,
    rig_sha256      TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    -- 'running' rows whose process is gone are shown as incomplete (see Store::list_runs).
    status          TEXT NOT NULL CHECK (status IN ('running', 'complete', 'incomplete')),
    outcome         TEXT,
    pid             {int} NOT NULL,
    -- Start time of that process (clock ticks since boot), so a reused pid is not mistaken for it.
    pid_started     {int},
    results_json    TEXT
);
CREATE INDEX runs_by_scenario ON runs (scenario_name, started_at);

-- One row per board x build, with the figures people query by; metrics_json holds them all.
CREATE TABLE entries (
    {rowid}
    run_id                 TEXT NOT NULL REFERENCES runs (id),
    board                  TEXT NOT NULL,
    board_class            TEXT NOT NULL,
    model                  TEXT NOT NULL,
    variant                TEXT NOT NULL,
    reference              {int} NOT NULL,
    status                 TEXT NOT NULL,
    model_sha256           TEXT NOT NULL,
    accuracy               {real},
    macro_f1               {real},
    latency_p50_us         {real},
    latency_p99_us         {real},
    latency_mean_us        {real},
    energy_per_inference_j {real},
    peak_rss_kib           {int},
    flash_bytes            {int},
    metrics_json           TEXT,
    PRIMARY KEY (run_id, board, model, variant)
);
CREATE INDEX entries_by_build ON entries (model, variant, board_class);

-- Raw device latencies in chunks as written during the run: little-endian f64, 8 bytes each.
CREATE TABLE samples (
    run_id    TEXT NOT NULL REFERENCES runs (id),
    board     TEXT NOT NULL,
    model     TEXT NOT NULL,
    variant   TEXT NOT NULL,
    chunk     {int} NOT NULL,
    device_us {blob} NOT NULL,
    PRIMARY KEY (run_id, board, model, variant, chunk)
);

CREATE TABLE verdicts (
    {rowid}
    run_id             TEXT NOT NULL REFERENCES runs (id),
    model              TEXT NOT NULL,
    variant            TEXT NOT NULL,
    board_class        TEXT NOT NULL,
    verdict            TEXT,
    infra_error        TEXT,
    gates_passed       {int} NOT NULL,
    gates_failed       {int} NOT NULL,
    gates_inconclusive {int} NOT NULL,
    PRIMARY KEY (run_id, model, variant, board_class)
);

-- The ledger: rows are only ever added.
CREATE TABLE promotions (
    id              {serial},
    run_id          TEXT NOT NULL REFERENCES runs (id),
    scenario        TEXT NOT NULL,
    model           TEXT NOT NULL,
    variant         TEXT NOT NULL,
    board_class     TEXT NOT NULL,
    promoted_by     TEXT NOT NULL,
    reason          TEXT NOT NULL,
    override_reason TEXT,
    verdict         TEXT,
    promoted_at     TEXT NOT NULL DEFAULT {now_text},
    model_sha256    TEXT NOT NULL,
    dataset_sha256  TEXT NOT NULL,
    scenario_sha256 TEXT NOT NULL,
    rig_sha256      TEXT NOT NULL,
    report_sha256   TEXT NOT NULL
);

-- The champion of a scenario, model and board class is its latest promotion.
CREATE VIEW champions AS
SELECT p.* FROM promotions p
WHERE p.id = (
    SELECT MAX(q.id) FROM promotions q
    WHERE q.scenario = p.scenario AND q.model = p.model AND q.board_class = p.board_class
);
"#;

/// Board leases shared by every runner of a lab (see `lease.rs`), and which host began a run.
const V2: &str = r#"
ALTER TABLE runs ADD COLUMN runner TEXT;

-- The current holder of each board; a row whose expires_ms has passed may be taken over.
CREATE TABLE leases (
    board       TEXT PRIMARY KEY,
    token       TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         {int} NOT NULL,
    user_name   TEXT NOT NULL,
    ci_job      TEXT,
    run_id      TEXT,
    acquired_ms {int} NOT NULL,
    renewed_ms  {int} NOT NULL,
    expires_ms  {int} NOT NULL
);

-- Runs waiting for a board, served in ticket order; a waiter that stops renewing seen_ms drops out.
CREATE TABLE lease_queue (
    ticket      {serial},
    board       TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         {int} NOT NULL,
    user_name   TEXT NOT NULL,
    run_id      TEXT,
    enqueued_ms {int} NOT NULL,
    seen_ms     {int} NOT NULL
);
CREATE INDEX lease_queue_by_board ON lease_queue (board, ticket);

-- Boards out of rotation for everyone (a failed health check, or by hand) until put back.
CREATE TABLE boards_out (
    board    TEXT PRIMARY KEY,
    reason   TEXT NOT NULL,
    by_whom  TEXT NOT NULL,
    since_ms {int} NOT NULL
);

-- Forced releases and rotation changes, with who and why: only ever added to.
CREATE TABLE lease_events (
    id      {serial},
    board   TEXT NOT NULL,
    event   TEXT NOT NULL,
    holder  TEXT,
    by_whom TEXT NOT NULL,
    reason  TEXT NOT NULL,
    at_ms   {int} NOT NULL
);
"#;

/// Drift verdicts (`gauntlet drift`, see `drift.rs`), each linked to the promotion it judged.
const V3: &str = r#"
CREATE TABLE drift_checks (
    {rowid}
    id           TEXT PRIMARY KEY,
    scenario     TEXT NOT NULL,
    model        TEXT NOT NULL,
    board_class  TEXT NOT NULL,
    board        TEXT NOT NULL,
    promotion_id {int} NOT NULL REFERENCES promotions (id),
    verdict      TEXT NOT NULL CHECK (verdict IN ('requalified', 'drifted', 'inconclusive')),
    checked_at   TEXT NOT NULL,
    drift_json   TEXT NOT NULL
);
CREATE INDEX drift_checks_by_scenario ON drift_checks (scenario, checked_at);

-- The recordings a check replayed, with their SHA-256, in replay order.
CREATE TABLE drift_recordings (
    {rowid}
    check_id TEXT NOT NULL REFERENCES drift_checks (id),
    position {int} NOT NULL,
    path     TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    PRIMARY KEY (check_id, position)
);
"#;

/// A run's heartbeat (see `Store::beat_run`): a `running` row whose `heartbeat_ms` is older than
/// its own `stale_ms` (the run's lease TTL) reads incomplete, whichever host looks.
const V4: &str = r#"
ALTER TABLE runs ADD COLUMN heartbeat_ms {int};
ALTER TABLE runs ADD COLUMN stale_ms {int};
"#;

/// What `gauntlet lease list` shows of a waiter besides V2's: its CI job, and what it waits for
/// when that is more than the board (`wants`: a pool, e.g. `2 board(s) of pool { family=pi }`).
const V5: &str = r#"
ALTER TABLE lease_queue ADD COLUMN ci_job TEXT;
ALTER TABLE lease_queue ADD COLUMN wants TEXT;
"#;

/// Why migrating failed.
pub(crate) enum MigrateError {
    TooNew { found: usize, supported: usize },
    Db(DbError),
}

impl From<DbError> for MigrateError {
    fn from(e: DbError) -> Self {
        MigrateError::Db(e)
    }
}

/// Applies the migrations the database lacks, in one transaction that excludes every other
/// gauntlet opening the same database (two processes opening a fresh one do not both migrate it).
pub(crate) fn migrate(db: &mut dyn Backend) -> Result<(), MigrateError> {
    let dialect = db.dialect();
    db.batch(dialect.begin())?;
    let done = apply(db, dialect);
    match done {
        Ok(()) => Ok(db.batch("COMMIT")?),
        Err(e) => {
            let _ = db.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn apply(db: &mut dyn Backend, dialect: Dialect) -> Result<(), MigrateError> {
    if let Some(lock) = dialect.lock_key() {
        db.execute(lock, vals!["gauntlet schema"])?;
    }
    db.batch(
        &dialect.render("CREATE TABLE IF NOT EXISTS schema_version (version {int} NOT NULL)"),
    )?;
    let found = db.query("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?[0].int(0)?;
    let found = usize::try_from(found).unwrap_or(usize::MAX);
    if found > MIGRATIONS.len() {
        return Err(MigrateError::TooNew {
            found,
            supported: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        db.batch(&dialect.render(sql))?;
        db.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            vals![i + 1],
        )?;
    }
    Ok(())
}
