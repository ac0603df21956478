//! The one seam between the store's logic and a database: a [`Backend`] runs SQL with plain
//! [`Value`] parameters and returns plain rows. The store's queries are written once, in SQLite's
//! `?N` placeholder style; [`Dialect`] renders what differs (placeholders for PostgreSQL, column
//! types in migrations, the clock). SQLite ([`Sqlite`]) is the embedded default; PostgreSQL
//! ([`Postgres`]) serves a lab shared by many runners. [`testing::Outage`] is the test double: it
//! wraps a real backend and fails like a database that went away.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

macro_rules! value_from {
    ($($t:ty => $v:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Self {
                Value::$v(x $(as $cast)?)
            }
        }
    )*};
}

value_from!(i64 => Int, i32 => Int as i64, u32 => Int as i64, f64 => Real, String => Text, Vec<u8> => Blob);

impl From<bool> for Value {
    fn from(x: bool) -> Self {
        Value::Int(i64::from(x))
    }
}

impl From<usize> for Value {
    fn from(x: usize) -> Self {
        Value::Int(i64::try_from(x).unwrap_or(i64::MAX))
    }
}

impl From<u64> for Value {
    fn from(x: u64) -> Self {
        Value::Int(i64::try_from(x).unwrap_or(i64::MAX))
    }
}

impl From<&str> for Value {
    fn from(x: &str) -> Self {
        Value::Text(x.to_string())
    }
}

impl From<&String> for Value {
    fn from(x: &String) -> Self {
        Value::Text(x.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(x: Option<T>) -> Self {
        x.map_or(Value::Null, Into::into)
    }
}

/// `vals![a, b, c]`: a parameter list.
macro_rules! vals {
    ($($x:expr),* $(,)?) => { &[$($crate::backend::Value::from($x)),*][..] };
}
pub(crate) use vals;

/// A database error, with whether retrying may help (the connection was lost, the server is
/// restarting, SQLite is busy) as opposed to a fault in the request itself.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct DbError {
    pub transient: bool,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl DbError {
    pub fn new(
        transient: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DbError {
            transient,
            source: source.into(),
        }
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

fn column_type(i: usize, want: &str, got: &Value) -> DbError {
    DbError::new(false, format!("column {i}: expected {want}, found {got:?}"))
}

impl Row {
    fn at(&self, i: usize) -> Result<&Value, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::new(false, format!("column {i}: no such column")))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            other => Err(column_type(i, "text", other)),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?
            .ok_or_else(|| column_type(i, "text", &Value::Null))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Int(x) => Ok(Some(*x)),
            other => Err(column_type(i, "an integer", other)),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?
            .ok_or_else(|| column_type(i, "an integer", &Value::Null))
    }

    pub fn opt_real(&self, i: usize) -> Result<Option<f64>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Real(x) => Ok(Some(*x)),
            Value::Int(x) => Ok(Some(*x as f64)),
            other => Err(column_type(i, "a number", other)),
        }
    }

    pub fn blob(&self, i: usize) -> Result<Vec<u8>, DbError> {
        match self.at(i)? {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(column_type(i, "bytes", other)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Starts a write transaction. SQLite's IMMEDIATE takes the write lock at once, so two writers
    /// never deadlock upgrading a read lock.
    pub fn begin(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// Milliseconds since the Unix epoch by the database's clock, as an SQL expression: every runner
    /// of a lab compares lease expiry against the one clock they share.
    pub fn now_ms(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// Serialises transactions that take the same `key` (a text parameter `?1`) until they end;
    /// `None` where [`Dialect::begin`] already serialises every writer.
    pub fn lock_key(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock(hashtext(?1))"),
        }
    }

    /// A migration's text with its `{type}` markers rendered for this database.
    pub fn render(self, ddl: &str) -> String {
        let pairs: &[(&str, &str)] = match self {
            Dialect::Sqlite => &[
                ("{int}", "INTEGER"),
                ("{real}", "REAL"),
                ("{blob}", "BLOB"),
                ("{serial}", "INTEGER PRIMARY KEY AUTOINCREMENT"),
                // SQLite tables have a rowid of their own.
                ("{rowid}", ""),
                ("{now_text}", "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"),
            ],
            Dialect::Postgres => &[
                ("{int}", "BIGINT"),
                ("{real}", "DOUBLE PRECISION"),
                ("{blob}", "BYTEA"),
                (
                    "{serial}",
                    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                ),
                // Insertion order, which the queries sort by as SQLite's rowid.
                ("{rowid}", "rowid BIGINT GENERATED ALWAYS AS IDENTITY,"),
                (
                    "{now_text}",
                    "(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))",
                ),
            ],
        };
        pairs
            .iter()
            .fold(ddl.to_string(), |s, (from, to)| s.replace(from, to))
    }
}

/// A connection to a database. Implementations run one statement per call; [`Backend::batch`]
/// runs several without parameters (transaction control, migrations).
pub trait Backend: Send {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;
    fn batch(&mut self, sql: &str) -> Result<(), DbError>;
    /// Where it is, for messages (a path, or a URL without its password).
    fn describe(&self) -> String;
}

pub struct Sqlite {
    conn: rusqlite::Connection,
    path: String,
}

fn sqlite_err(e: rusqlite::Error) -> DbError {
    let transient = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    DbError::new(transient, e)
}

impl Sqlite {
    /// Opens the file (WAL journal, `synchronous = NORMAL`, foreign keys on).
    pub fn open(path: &Path) -> Result<Sqlite, DbError> {
        let conn = rusqlite::Connection::open(path).map_err(sqlite_err)?;
        // Another gauntlet may be writing (a run in CI while someone promotes): wait, don't fail.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sqlite_err)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(sqlite_err)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(sqlite_err)?;
        Ok(Sqlite {
            conn,
            path: path.display().to_string(),
        })
    }
}

fn to_sqlite(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Int(x) => V::Integer(*x),
        Value::Real(x) => V::Real(*x),
        Value::Text(s) => V::Text(s.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
    }
}

impl Backend for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(sqlite_err)?;
        let params = rusqlite::params_from_iter(params.iter().map(to_sqlite));
        // A statement with RETURNING yields rows, which `execute` refuses: step through them.
        let mut rows = stmt.query(params).map_err(sqlite_err)?;
        while rows.next().map_err(sqlite_err)?.is_some() {}
        drop(rows);
        Ok(self.conn.changes())
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(sqlite_err)?;
        let n = stmt.column_count();
        let params = rusqlite::params_from_iter(params.iter().map(to_sqlite));
        let mut rows = stmt.query(params).map_err(sqlite_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite_err)? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                use rusqlite::types::ValueRef as V;
                values.push(match row.get_ref(i).map_err(sqlite_err)? {
                    V::Null => Value::Null,
                    V::Integer(x) => Value::Int(x),
                    V::Real(x) => Value::Real(x),
                    V::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    V::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.conn.execute_batch(sql).map_err(sqlite_err)
    }

    fn describe(&self) -> String {
        self.path.clone()
    }
}

/// Whether `location` names a PostgreSQL server rather than a SQLite file.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// A PostgreSQL server. Statements are prepared once per connection, so a query after the first
/// is one round trip. A lost connection is re-opened by the next call.
pub struct Postgres {
    config: postgres::Config,
    tls: postgres_native_tls::MakeTlsConnector,
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
    url: String,
    /// Statements run on every new connection (e.g. `SET synchronous_commit = off`).
    session: String,
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The standard libpq variables fill in what the URL leaves out (libpq's own rule; the Rust
/// driver does not read them itself).
fn apply_pg_env(
    config: &mut postgres::Config,
    url: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), DbError> {
    // The driver gives a URL's host without a port 5432 itself, so `$PGPORT` goes with `$PGHOST`:
    // it applies when the URL names no host.
    if config.get_hosts().is_empty() {
        config.host(env("PGHOST").as_deref().unwrap_or("localhost"));
        if let Some(port) = env("PGPORT") {
            let port = port.parse().map_err(|_| {
                DbError::new(false, format!("PGPORT `{port}` is not a port number"))
            })?;
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    if config.get_password().is_none()
        && let Some(password) = env("PGPASSWORD")
    {
        config.password(password);
    }
    if config.get_dbname().is_none()
        && let Some(db) = env("PGDATABASE")
    {
        config.dbname(&db);
    }
    if !url.contains("sslmode=")
        && let Some(mode) = env("PGSSLMODE")
    {
        config.ssl_mode(match mode.as_str() {
            "disable" => postgres::config::SslMode::Disable,
            "prefer" | "allow" => postgres::config::SslMode::Prefer,
            "require" | "verify-ca" | "verify-full" => postgres::config::SslMode::Require,
            other => {
                return Err(DbError::new(
                    false,
                    format!("PGSSLMODE `{other}` is not disable, prefer, require, verify-ca or verify-full"),
                ));
            }
        });
    }
    Ok(())
}

fn pg_err(e: postgres::Error) -> DbError {
    use postgres::error::SqlState;
    let transient = match e.code() {
        Some(code) => [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_FAILURE,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ]
        .contains(code),
        // No answer from a server: it could not be reached, or the connection dropped.
        None => {
            e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
        }
    };
    DbError::new(transient, e)
}

impl Postgres {
    /// Connects to `url`, with TLS as its `sslmode` (or `$PGSSLMODE`) says; a CA certificate from
    /// `$PGSSLROOTCERT` is trusted besides the system's.
    pub fn connect(url: &str) -> Result<Postgres, DbError> {
        Self::connect_with(url, "")
    }

    /// Like [`Postgres::connect`], running `session` on each new connection.
    pub fn connect_with(url: &str, session: &str) -> Result<Postgres, DbError> {
        let mut config: postgres::Config = url.parse().map_err(|e| DbError::new(false, e))?;
        apply_pg_env(&mut config, url, |k| std::env::var(k).ok())?;
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("gauntlet");
        let mut tls = native_tls::TlsConnector::builder();
        if let Some(ca) = std::env::var_os("PGSSLROOTCERT") {
            let pem = std::fs::read(&ca).map_err(|e| {
                DbError::new(
                    false,
                    format!("read PGSSLROOTCERT `{}`: {e}", Path::new(&ca).display()),
                )
            })?;
            let cert =
                native_tls::Certificate::from_pem(&pem).map_err(|e| DbError::new(false, e))?;
            tls.add_root_certificate(cert);
        }
        let tls = tls.build().map_err(|e| DbError::new(false, e))?;
        let mut pg = Postgres {
            config,
            tls: postgres_native_tls::MakeTlsConnector::new(tls),
            client: None,
            statements: HashMap::new(),
            url: redact(url),
            session: session.to_string(),
        };
        pg.client()?;
        Ok(pg)
    }

    fn client(&mut self) -> Result<&mut postgres::Client, DbError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.statements.clear();
            self.client = None;
            let mut client = self.config.connect(self.tls.clone()).map_err(pg_err)?;
            // Notices (e.g. "relation already exists, skipping") are not the user's business.
            if !self.session.is_empty() {
                client.batch_execute(&self.session).map_err(pg_err)?;
            }
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let text = placeholders(sql);
        let statement = self.client()?.prepare(&text).map_err(pg_err)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// `?1` → `$1`: the store's queries are written in SQLite's style.
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

mod pg_value {
    use super::Value;
    use bytes::BytesMut;
    use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

    type BoxError = Box<dyn std::error::Error + Sync + Send>;

    impl ToSql for Value {
        fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
            match self {
                Value::Null => Ok(IsNull::Yes),
                Value::Int(x) => match *ty {
                    Type::INT2 => i16::try_from(*x)?.to_sql(ty, out),
                    Type::INT4 => i32::try_from(*x)?.to_sql(ty, out),
                    Type::BOOL => (*x != 0).to_sql(ty, out),
                    Type::FLOAT8 => (*x as f64).to_sql(ty, out),
                    Type::TEXT | Type::VARCHAR => x.to_string().to_sql(ty, out),
                    _ => x.to_sql(ty, out),
                },
                Value::Real(x) if *ty == Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                Value::Real(x) => x.to_sql(ty, out),
                Value::Text(s) => s.to_sql(ty, out),
                Value::Blob(b) => b.to_sql(ty, out),
            }
        }

        fn accepts(_: &Type) -> bool {
            true
        }

        to_sql_checked!();
    }

    pub(super) fn from_row(row: &postgres::Row) -> Result<Vec<Value>, postgres::Error> {
        let mut values = Vec::with_capacity(row.len());
        for (i, column) in row.columns().iter().enumerate() {
            let ty = column.type_();
            let v = match *ty {
                Type::INT2 => row
                    .try_get::<_, Option<i16>>(i)?
                    .map(|x| Value::Int(x.into())),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(i)?
                    .map(|x| Value::Int(x.into())),
                Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
                Type::BOOL => row
                    .try_get::<_, Option<bool>>(i)?
                    .map(|x| Value::Int(x.into())),
                Type::FLOAT4 => row
                    .try_get::<_, Option<f32>>(i)?
                    .map(|x| Value::Real(x.into())),
                Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Value::Real),
                Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
                Type::VOID => None,
                _ => row.try_get::<_, Option<String>>(i)?.map(Value::Text),
            };
            values.push(v.unwrap_or(Value::Null));
        }
        Ok(values)
    }
}

fn pg_params(params: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl Backend for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let statement = self.statement(sql)?;
        let params = pg_params(params);
        self.client()?.execute(&statement, &params).map_err(pg_err)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let statement = self.statement(sql)?;
        let params = pg_params(params);
        let rows = self.client()?.query(&statement, &params).map_err(pg_err)?;
        rows.iter()
            .map(|r| pg_value::from_row(r).map(Row).map_err(pg_err))
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.client()?.batch_execute(sql).map_err(pg_err)
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

/// Test doubles, for callers' tests too.
pub mod testing {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A real backend behind a switch: while the switch is down every call fails as a lost
    /// connection does (transient), the way a database server that went away looks to a client.
    pub struct Outage<B> {
        inner: B,
        down: Arc<AtomicBool>,
    }

    impl<B: Backend> Outage<B> {
        /// The backend and its switch (`true`: the database is down).
        pub fn new(inner: B) -> (Self, Arc<AtomicBool>) {
            let down = Arc::new(AtomicBool::new(false));
            (
                Outage {
                    inner,
                    down: down.clone(),
                },
                down,
            )
        }

        fn check(&self) -> Result<(), DbError> {
            if self.down.load(Ordering::SeqCst) {
                Err(DbError::new(true, "connection refused (simulated outage)"))
            } else {
                Ok(())
            }
        }
    }

    impl<B: Backend> Backend for Outage<B> {
        fn dialect(&self) -> Dialect {
            self.inner.dialect()
        }

        fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
            self.check()?;
            self.inner.execute(sql, params)
        }

        fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
            self.check()?;
            self.inner.query(sql, params)
        }

        fn batch(&mut self, sql: &str) -> Result<(), DbError> {
            self.check()?;
            self.inner.batch(sql)
        }

        fn describe(&self) -> String {
            self.inner.describe()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_and_passwords_are_hidden() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12 AND d = '?'"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 AND d = '?'"
        );
        assert_eq!(
            redact("postgres://ci:s3cret@db.lab:5432/gauntlet"),
            "postgres://ci@db.lab:5432/gauntlet"
        );
        assert_eq!(redact("postgres://db.lab/g"), "postgres://db.lab/g");
    }

    #[test]
    fn libpq_variables_fill_only_what_the_url_leaves_out() {
        let env = |k: &str| {
            Some(
                match k {
                    "PGHOST" => "10.0.0.9",
                    "PGPORT" => "6543",
                    "PGUSER" => "envuser",
                    "PGPASSWORD" => "envpw",
                    "PGDATABASE" => "envdb",
                    "PGSSLMODE" => "require",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let url = "postgres://urluser@db.lab/urldb";
        let mut c: postgres::Config = url.parse().unwrap();
        apply_pg_env(&mut c, url, env).unwrap();
        assert_eq!(c.get_user(), Some("urluser"));
        assert_eq!(c.get_dbname(), Some("urldb"));
        assert_eq!(c.get_ports(), [5432]);
        assert_eq!(c.get_password(), Some(&b"envpw"[..]));
        assert_eq!(c.get_ssl_mode(), postgres::config::SslMode::Require);
        let url = "postgres:///?sslmode=disable";
        let mut c: postgres::Config = url.parse().unwrap();
        apply_pg_env(&mut c, url, env).unwrap();
        assert_eq!(c.get_user(), Some("envuser"));
        assert_eq!(c.get_dbname(), Some("envdb"));
        assert_eq!(c.get_ports(), [6543]);
        assert_eq!(c.get_ssl_mode(), postgres::config::SslMode::Disable);
        let err = apply_pg_env(&mut c, "postgres:///", |k| {
            (k == "PGSSLMODE").then(|| "sometimes".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains("PGSSLMODE `sometimes`"), "{err}");
    }
}
