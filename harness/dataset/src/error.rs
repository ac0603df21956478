use std::path::PathBuf;

/// Why a dataset could not be cut into windows. Messages are fragments that read after
/// "failed to …" and name the file, line and column involved.
///
/// Lines are 1-based line numbers in the file as an editor shows them (the header is line 1).
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("use dataset `{name}`: {reason}")]
    InvalidSpec { name: String, reason: String },

    #[error("read `{}`: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("parse `{}` as CSV: {source}", .path.display())]
    Csv { path: PathBuf, source: csv::Error },

    #[error("read `{}` line {line}: found {found} fields where the first record has {expected}", .path.display())]
    RaggedRow {
        path: PathBuf,
        line: u64,
        expected: u64,
        found: u64,
    },

    #[error("find column `{column}` in `{}`: {hint}", .path.display())]
    MissingColumn {
        path: PathBuf,
        column: String,
        /// "did you mean `X`?", or what the header offers instead.
        hint: String,
    },

    #[error("read `{}` line {line} column `{column}`: `{value}` is not a finite number", .path.display())]
    NotANumber {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },

    #[error("read `{}` line {line} column `{column}` (field {field}): `{value}` is beyond the range of a 32-bit float (±3.4e38), which the model takes", .path.display())]
    OutOfRange {
        path: PathBuf,
        line: u64,
        column: String,
        /// 1-based position of the field in its record.
        field: usize,
        value: String,
    },

    #[error("read `{}` line {line} column `{column}`: `{value}` is not a timestamp (`YYYY-MM-DD HH:MM:SS[.fff]` or seconds)", .path.display())]
    BadTimestamp {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },

    #[error("read label of `{}` line {line} column `{column}`: {value} is not a class index (an integer from 0 to {max_class})", .path.display())]
    LabelOutOfRange {
        path: PathBuf,
        line: u64,
        column: String,
        value: f64,
        max_class: usize,
    },

    #[error("label `{}`: {reason}", .path.display())]
    FileClass { path: PathBuf, reason: String },

    #[error("cut a window of {needed} rows from `{}`: only {available} rows are selected", .path.display())]
    TooShort {
        path: PathBuf,
        available: usize,
        needed: usize,
    },

    #[error("cut regression targets: `target.horizon` = {horizon} rows lies past the end of every file (the longest, `{}`, has {rows} rows; a window needs {window} plus the horizon)", .path.display())]
    HorizonPastEnd {
        horizon: usize,
        path: PathBuf,
        rows: usize,
        window: usize,
    },

    #[error("load dataset `{name}`: it yields no windows")]
    Empty { name: String },
}
