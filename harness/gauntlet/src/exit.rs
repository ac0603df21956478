//! Exit codes: CI tells "the model regressed" apart from "the rig is broken" by these alone.

/// Every gate passed (or the command succeeded; `gauntlet drift`: the champion requalified).
pub const SUCCESS: u8 = 0;
/// A gate failed: the model build is not good enough (`gauntlet drift`: the champion drifted).
pub const GATE_FAILED: u8 = 1;
/// Invalid input: a scenario or rig file, a dataset, a model file, or the command line.
pub const INVALID_INPUT: u8 = 2;
/// Infrastructure failure: a board unreachable, an agent crash, a timeout, an output folder or
/// store that cannot take the results. Never a model verdict.
pub const INFRA_FAILURE: u8 = 3;
/// A gate could not decide (too few samples, an interval straddling the threshold) and the
/// scenario treats that as failing (`gauntlet drift`: the verdict is inconclusive).
pub const INCONCLUSIVE: u8 = 4;
/// The run finished and wrote its results folder, but the store could not record it (the database
/// was unreachable through every retry); `gauntlet runs import DIR` records it later. Takes the
/// place of the outcome's code, which results.json keeps.
pub const NOT_RECORDED: u8 = 5;
