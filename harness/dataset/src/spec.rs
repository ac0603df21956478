//! Validated dataset description. Every path is already resolved and every number already checked
//! for sign by the scenario parser; this crate still checks everything that needs the data itself
//! (columns present, windows fitting the recordings, cells numeric).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One recording and, when labels come from files, the class index it stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub path: PathBuf,
    /// Class index for [`LabelSource::PerFile`]; ignored otherwise.
    pub class: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvFormat {
    pub delimiter: u8,
    pub has_header: bool,
}

/// A column named by its header or by zero-based position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnRef {
    Name(String),
    Index(usize),
}

/// How the rows × columns of one window become the flat tensor a model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Oldest row first, all columns of a row together (`[rows, columns]`), e.g. SKAB's 16 × 8.
    RowMajor,
    /// One channel per column, each a contiguous time series (`[columns, rows]`), e.g. a 1-D CNN.
    ChannelsFirst,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Windowing {
    /// Rows (time steps) per window.
    pub rows: usize,
    /// Rows between the starts of consecutive windows.
    pub stride: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LabelSource {
    /// Each recording is one class ([`Recording::class`]).
    PerFile,
    /// A numeric column holding the class index; the window's label is its value at the window's last row.
    Column(ColumnRef),
    /// No class labels: a regression dataset, whose windows carry a [`TargetSpec`] value instead.
    None,
}

/// Regression: what each window is to predict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// A numeric column; the target is its value `horizon` rows after the window's last row.
    pub column: ColumnRef,
    /// Rows ahead (0 = the last row itself, a soft sensor). Windows whose target lies past the end
    /// of their file are dropped and counted ([`crate::Windows::dropped_past_end`]).
    pub horizon: usize,
}

/// Which part of each recording is replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Selection {
    /// Every row.
    All,
    /// The last `fraction` of each recording's rows: rows from `floor(len * (1 - fraction))` on.
    TailFraction(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub name: String,
    pub recordings: Vec<Recording>,
    pub format: CsvFormat,
    pub features: Vec<ColumnRef>,
    pub window: Windowing,
    pub layout: Layout,
    pub labels: LabelSource,
    /// Class names in index order (empty with [`LabelSource::None`]).
    pub classes: Vec<String>,
    pub selection: Selection,
    /// Column with the recording's timestamps (`YYYY-MM-DD HH:MM:SS[.fff]` or seconds), for replay at
    /// the recording's own pace.
    pub timestamp: Option<ColumnRef>,
    /// Regression target per window, when the dataset has one.
    #[serde(default)]
    pub target: Option<TargetSpec>,
}
