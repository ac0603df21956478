//! `results.json`: the versioned, documented record of a run. Plain data with no hardware
//! dependencies, so reporters, gates and the store read it without compiling what drives boards;
//! the runner's `analyze` makes it from raw measurements. Readers never compute figures of their own.
//!
//! Every figure carries where it came from ([`Source`]): `measured` on real hardware (this machine
//! included), `emulated` when an emulator executed the model (instruction counts on an emulated
//! MCU, the emulator's run time on an emulated Linux board), or `simulated` when a model of the
//! hardware produced it (e.g. the simulated INA219).

mod drift;
pub mod format;
mod metric;
mod schema;
mod task;

pub use drift::*;
pub use metric::{BaselineKind, Comparison, Metric, RejectionKind};

pub use schema::*;
pub use task::*;
