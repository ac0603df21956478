//! Reading recordings and cutting them into windows.

use std::path::Path;

use csv::ByteRecord;
use sha2::{Digest, Sha256};

use crate::cell;
use crate::columns::{Column, resolve};
use crate::error::DatasetError;
use crate::spec::{ColumnRef, DatasetSpec, LabelSource, Recording, Selection};
use crate::windows::window_count_to;
use crate::windows::{RecordingInfo, WindowOrigin, Windows, push_window, window_count};

/// Reads every recording of `spec` and cuts it into windows, in recording order, each recording's
/// windows in time order. Windows never cross recordings.
///
/// Every cell of the used columns is checked, in selected rows and the rest alike, so a broken
/// file fails the same way whatever the selection.
pub fn load(spec: &DatasetSpec) -> Result<Windows, DatasetError> {
    validate(spec)?;
    let features = spec.features.len();
    let rows = spec.window.rows;
    let mut windows = Windows {
        window_len: rows * features,
        rows,
        features,
        layout: spec.layout,
        data: Vec::new(),
        labels: Vec::new(),
        origins: Vec::new(),
        timestamps_s: spec.timestamp.as_ref().map(|_| Vec::new()),
        targets: spec.target.as_ref().map(|_| Vec::new()),
        last_values: spec.target.as_ref().map(|_| Vec::new()),
        dropped_past_end: 0,
        sha256: String::new(),
        per_recording: Vec::with_capacity(spec.recordings.len()),
        subset_of: None,
    };
    let mut fingerprint = Sha256::new();
    for (index, recording) in spec.recordings.iter().enumerate() {
        let path = recording.path.as_path();
        let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        fingerprint.update(&bytes);
        let file_class = match spec.labels {
            LabelSource::PerFile => Some(file_class(recording, spec.classes.len())?),
            LabelSource::Column(_) => None,
            LabelSource::None => Some(0),
        };
        let table = Table::read(&bytes, spec, path)?;
        let first = spec.selection.first_row(table.rows);
        let count = window_count(table.rows - first, rows, spec.window.stride);
        if count == 0 {
            return Err(DatasetError::TooShort {
                path: path.to_path_buf(),
                available: table.rows - first,
                needed: rows,
            });
        }
        // A target `horizon` rows ahead must still lie inside the file.
        let kept = spec.target.as_ref().map_or(count, |t| {
            window_count_to(
                table.rows.saturating_sub(t.horizon),
                first,
                rows,
                spec.window.stride,
            )
        });
        windows.dropped_past_end += count - kept;
        windows.data.reserve(kept * windows.window_len);
        for start in (first..).step_by(spec.window.stride).take(kept) {
            let last = start + rows - 1;
            if let (Some(t), Some(targets), Some(last_values)) =
                (&spec.target, &mut windows.targets, &mut windows.last_values)
            {
                targets.push(table.targets[last + t.horizon]);
                last_values.push(table.targets[last]);
            }
            push_window(
                &mut windows.data,
                &table.values,
                features,
                start,
                rows,
                spec.layout,
            );
            windows
                .labels
                .push(file_class.unwrap_or_else(|| table.labels[last]));
            windows.origins.push(WindowOrigin {
                recording: index,
                first_row: table.lines[start],
            });
            if let Some(timestamps) = &mut windows.timestamps_s {
                timestamps.push(table.timestamps[last]);
            }
        }
        windows.per_recording.push(RecordingInfo {
            path: path.to_path_buf(),
            rows: table.rows,
            first_selected: first,
            windows: kept,
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
    }
    windows.sha256 = hex::encode(fingerprint.finalize());
    if let (Some(target), true) = (&spec.target, windows.is_empty()) {
        let longest = windows
            .per_recording
            .iter()
            .max_by_key(|r| r.rows)
            .expect("a dataset has recordings");
        return Err(DatasetError::HorizonPastEnd {
            horizon: target.horizon,
            path: longest.path.clone(),
            rows: longest.rows,
            window: rows,
        });
    }
    Ok(windows)
}

/// Checks what the scenario parser may have let through and the loop above relies on.
fn validate(spec: &DatasetSpec) -> Result<(), DatasetError> {
    let reason = if spec.recordings.is_empty() {
        return Err(DatasetError::Empty {
            name: spec.name.clone(),
        });
    } else if spec.window.rows == 0 || spec.window.stride == 0 {
        "window rows and stride must be at least 1"
    } else if spec.features.is_empty() {
        "no feature columns are named"
    } else if spec.classes.is_empty() && spec.labels != LabelSource::None {
        "no classes are named"
    } else if spec.labels == LabelSource::None && spec.target.is_none() {
        "it names neither class labels nor a regression target"
    } else if matches!(spec.selection, Selection::TailFraction(f) if !(f > 0.0 && f <= 1.0)) {
        "a tail fraction must be above 0 and at most 1"
    } else {
        return Ok(());
    };
    Err(DatasetError::InvalidSpec {
        name: spec.name.clone(),
        reason: reason.into(),
    })
}

fn file_class(recording: &Recording, classes: usize) -> Result<u32, DatasetError> {
    let reason = match recording.class {
        Some(class) if (class as usize) < classes => return Ok(class),
        Some(class) => format!("class {class} is not below the {classes} classes named"),
        None => "labels are per file but the recording names no class".into(),
    };
    Err(DatasetError::FileClass {
        path: recording.path.clone(),
        reason,
    })
}

/// The used columns of one recording, parsed.
struct Table {
    rows: usize,
    /// Feature values, row-major (`rows × features`).
    values: Vec<f32>,
    /// Per-row class index, when labels come from a column.
    labels: Vec<u32>,
    /// Per-row timestamp in seconds, when the spec names a timestamp column.
    timestamps: Vec<f64>,
    /// Per-row regression target column, cast through f32.
    targets: Vec<f64>,
    /// Per-row 1-based line number in the file.
    lines: Vec<u64>,
}

impl Table {
    fn read(bytes: &[u8], spec: &DatasetSpec, path: &Path) -> Result<Table, DatasetError> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(spec.format.delimiter)
            .has_headers(spec.format.has_header)
            .from_reader(bytes);
        // Without a header this is the first record, which is still read as data below.
        let first = reader
            .byte_headers()
            .map_err(|source| csv_failure(path, &mut Lines::new(bytes), source))?;
        let width = first.len();
        let names: Option<Vec<String>> = spec.format.has_header.then(|| {
            first
                .iter()
                .map(|name| String::from_utf8_lossy(name).into_owned())
                .collect()
        });
        let find = |column: &ColumnRef| resolve(column, names.as_deref(), width, path);
        let features = spec
            .features
            .iter()
            .map(find)
            .collect::<Result<Vec<_>, _>>()?;
        let label = match &spec.labels {
            LabelSource::Column(column) => Some(find(column)?),
            LabelSource::PerFile | LabelSource::None => None,
        };
        let target = spec.target.as_ref().map(|t| find(&t.column)).transpose()?;
        let timestamp = spec.timestamp.as_ref().map(find).transpose()?;

        let mut table = Table {
            rows: 0,
            values: Vec::new(),
            labels: Vec::new(),
            timestamps: Vec::new(),
            targets: Vec::new(),
            lines: Vec::new(),
        };
        let mut record = ByteRecord::new();
        let mut lines = Lines::new(bytes);
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(source) => return Err(csv_failure(path, &mut lines, source)),
            }
            let line = lines.at(record.position().map_or(0, |p| p.byte() as usize));
            let field = |column: &Column| record.get(column.index).unwrap_or_default();
            for column in &features {
                let value = cell::feature(field(column))
                    .ok_or_else(|| not_a_number(path, line, column, field(column)))?
                    .map_err(|_| DatasetError::OutOfRange {
                        path: path.to_path_buf(),
                        line,
                        column: column.name.clone(),
                        field: column.index + 1,
                        value: String::from_utf8_lossy(field(column)).trim().to_string(),
                    })?;
                table.values.push(value);
            }
            if let Some(column) = &label {
                let value = cell::number(field(column))
                    .ok_or_else(|| not_a_number(path, line, column, field(column)))?;
                let class = class_index(value, spec.classes.len()).ok_or_else(|| {
                    DatasetError::LabelOutOfRange {
                        path: path.to_path_buf(),
                        line,
                        column: column.name.clone(),
                        value,
                        max_class: spec.classes.len() - 1,
                    }
                })?;
                table.labels.push(class);
            }
            if let Some(column) = &target {
                let value = cell::number(field(column))
                    .ok_or_else(|| not_a_number(path, line, column, field(column)))?;
                table.targets.push(f64::from(value as f32));
            }
            if let Some(column) = &timestamp {
                let seconds =
                    cell::timestamp(field(column)).ok_or_else(|| DatasetError::BadTimestamp {
                        path: path.to_path_buf(),
                        line,
                        column: column.name.clone(),
                        value: String::from_utf8_lossy(field(column)).into_owned(),
                    })?;
                table.timestamps.push(seconds);
            }
            table.lines.push(line);
            table.rows += 1;
        }
        Ok(table)
    }
}

/// Line numbers of records from their byte offsets. csv's own line counter (and record offset)
/// stops short of the `\n` of a CRLF line end (SKAB's), so lines are counted here, up to the
/// record's first byte past line ends.
struct Lines<'a> {
    bytes: &'a [u8],
    line: u64,
    counted_to: usize,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Lines {
            bytes,
            line: 1,
            counted_to: 0,
        }
    }

    /// The 1-based line of the record at `offset`; offsets must not decrease between calls.
    fn at(&mut self, offset: usize) -> u64 {
        let offset = offset.max(self.counted_to);
        let start = offset
            + self.bytes[offset..]
                .iter()
                .take_while(|&&b| matches!(b, b'\r' | b'\n'))
                .count();
        let newlines = self.bytes[self.counted_to..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines as u64;
        self.counted_to = start;
        self.line
    }
}

fn csv_failure(path: &Path, lines: &mut Lines, source: csv::Error) -> DatasetError {
    if let csv::ErrorKind::UnequalLengths {
        pos: Some(pos),
        expected_len,
        len,
    } = source.kind()
    {
        return DatasetError::RaggedRow {
            path: path.to_path_buf(),
            line: lines.at(pos.byte() as usize),
            expected: *expected_len,
            found: *len,
        };
    }
    DatasetError::Csv {
        path: path.to_path_buf(),
        source,
    }
}

fn class_index(value: f64, classes: usize) -> Option<u32> {
    (value >= 0.0 && value.fract() == 0.0 && value < classes as f64).then_some(value as u32)
}

#[cold]
fn not_a_number(path: &Path, line: u64, column: &Column, cell: &[u8]) -> DatasetError {
    DatasetError::NotANumber {
        path: path.to_path_buf(),
        line,
        column: column.name.clone(),
        value: String::from_utf8_lossy(cell).into_owned(),
    }
}
