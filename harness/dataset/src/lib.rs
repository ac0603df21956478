//! Recorded-dataset replay: cuts CSV recordings into the exact input windows a model sees.
//!
//! The types in [`spec`] are the validated description of a dataset (built by `gauntlet-spec` from a
//! scenario file); [`load`] turns one into [`Windows`]:
//!
//! ```no_run
//! use gauntlet_dataset::*;
//!
//! let spec = DatasetSpec {
//!     name: "skab".into(),
//!     recordings: vec![Recording { path: "scenarios/data/skab/valve1/1.csv".into(), class: None }],
//!     format: CsvFormat { delimiter: b';', has_header: true },
//!     features: vec![ColumnRef::Name("Pressure".into()), ColumnRef::Name("Current".into())],
//!     window: Windowing { rows: 16, stride: 1 },
//!     layout: Layout::RowMajor,
//!     labels: LabelSource::Column(ColumnRef::Name("anomaly".into())),
//!     classes: vec!["normal".into(), "anomaly".into()],
//!     selection: Selection::All,
//!     timestamp: Some(ColumnRef::Name("datetime".into())),
//!     target: None,
//! };
//! let windows = load(&spec).map_err(|e| format!("failed to {e}"))?;
//! for (input, label) in windows.iter() {
//!     assert_eq!(input.len(), 16 * 2);
//! }
//! # Ok::<(), String>(())
//! ```

mod cell;
mod columns;
mod error;
mod load;
pub mod spec;
mod windows;

pub use error::DatasetError;
pub use load::load;
pub use spec::*;
pub use windows::{RecordingInfo, WindowOrigin, Windows, window_count};
