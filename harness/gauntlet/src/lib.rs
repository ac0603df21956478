//! The library behind the `gauntlet` binary: the run pipeline (store → plan → analyze → gates →
//! write → finish) and the run folder it writes, so that `main` keeps only parsing, wiring and
//! exit codes (ripgrep's `main → try_main → library objects`).

pub mod fleet;
pub mod output;
pub mod pipeline;
