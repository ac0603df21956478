//! Scenario and rig files: raw TOML → validated types, with diagnostics that point at the source.
//!
//! Entry points: [`load_scenario`], [`load_rig`], [`default_rig`], [`select_boards`], and the JSON
//! Schemas [`scenario_json_schema`] / [`rig_json_schema`]. Every error is a [`Diagnostics`] whose
//! `Display` is rustc-like (`error: …`, ` --> file:line:col`, the source line with `^^^`, `= help:`).

mod check;
mod diagnostic;
mod drift;
mod load;
mod names;
mod raw;
mod rig;
mod scenario;
mod units;
pub mod validated;

pub use diagnostic::{Diagnostic, Diagnostics, Location};
pub use drift::{DriftGate, DriftSpec, DriftStatistic, resolve_recordings};
pub use names::{MAX_NAME_BYTES, NameProblem, check_path_component};
pub use rig::{DEFAULT_RIG_SOURCE, default_rig, load_rig, pool_candidates, select_boards};
pub use scenario::load_scenario;
pub use validated::*;

/// JSON Schema (draft 2020-12) of scenario files, generated from the raw serde types.
pub fn scenario_json_schema() -> serde_json::Value {
    schemars::schema_for!(raw::ScenarioFile).to_value()
}

/// JSON Schema (draft 2020-12) of rig files, generated from the raw serde types.
pub fn rig_json_schema() -> serde_json::Value {
    schemars::schema_for!(raw::RigFile).to_value()
}
