//! `results.json`: the versioned, documented record of a run, and how raw measurements become its
//! figures. Reporters and gates read this; they never compute figures of their own.
//!
//! Every figure carries where it came from ([`Source`]): `measured` on real hardware (this machine
//! included), `emulated` when an emulator executed the model (its clock is instruction counts), or
//! `simulated` when a model of the hardware produced it (e.g. the simulated INA219).

mod analyze;
mod schema;
mod task;
mod task_analysis;

pub use analyze::{RunMeta, analyze};
pub use schema::*;
pub use task::*;
