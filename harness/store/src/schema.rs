//! The database layout, as an ordered list of migrations. A database records in `schema_version` the
//! migrations it has had; opening applies the missing ones in one transaction.

use rusqlite::{Connection, TransactionBehavior};

/// Migration `i` brings a database from version `i` to `i + 1`. Append only: never edit a shipped one.
const MIGRATIONS: &[&str] = &[V1];

const V1: &str = r#"
CREATE TABLE runs (
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
    pid             INTEGER NOT NULL,
    -- Start time of that process (clock ticks since boot), so a reused pid is not mistaken for it.
    pid_started     INTEGER,
    results_json    TEXT
);
CREATE INDEX runs_by_scenario ON runs (scenario_name, started_at);

-- One row per board x build, with the figures people query by; metrics_json holds them all.
CREATE TABLE entries (
    run_id                 TEXT NOT NULL REFERENCES runs (id),
    board                  TEXT NOT NULL,
    board_class            TEXT NOT NULL,
    model                  TEXT NOT NULL,
    variant                TEXT NOT NULL,
    reference              INTEGER NOT NULL,
    status                 TEXT NOT NULL,
    model_sha256           TEXT NOT NULL,
    accuracy               REAL,
    macro_f1               REAL,
    latency_p50_us         REAL,
    latency_p99_us         REAL,
    latency_mean_us        REAL,
    energy_per_inference_j REAL,
    peak_rss_kib           INTEGER,
    flash_bytes            INTEGER,
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
    chunk     INTEGER NOT NULL,
    device_us BLOB NOT NULL,
    PRIMARY KEY (run_id, board, model, variant, chunk)
);

CREATE TABLE verdicts (
    run_id             TEXT NOT NULL REFERENCES runs (id),
    model              TEXT NOT NULL,
    variant            TEXT NOT NULL,
    board_class        TEXT NOT NULL,
    verdict            TEXT,
    infra_error        TEXT,
    gates_passed       INTEGER NOT NULL,
    gates_failed       INTEGER NOT NULL,
    gates_inconclusive INTEGER NOT NULL,
    PRIMARY KEY (run_id, model, variant, board_class)
);

-- The ledger: rows are only ever added.
CREATE TABLE promotions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    scenario        TEXT NOT NULL,
    model           TEXT NOT NULL,
    variant         TEXT NOT NULL,
    board_class     TEXT NOT NULL,
    promoted_by     TEXT NOT NULL,
    reason          TEXT NOT NULL,
    override_reason TEXT,
    verdict         TEXT,
    promoted_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
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

/// Why migrating failed.
pub(crate) enum MigrateError {
    TooNew { found: usize, supported: usize },
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sql(e)
    }
}

/// Applies the migrations the database lacks. The transaction is IMMEDIATE so two processes opening a
/// fresh database at once do not both migrate it.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found: usize = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    if found > MIGRATIONS.len() {
        return Err(MigrateError::TooNew {
            found,
            supported: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [i + 1])?;
    }
    tx.commit()?;
    Ok(())
}
