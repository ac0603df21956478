//! Raw measurements of a run, before any statistics: what a board said, sample by sample.

use std::path::PathBuf;

use gauntlet_power::{MeasuredWindow, PowerTrace, Window};
pub use gauntlet_results::RejectionKind;
use gauntlet_spec::BoardKind;
use gauntlet_wire::{AgentHello, MachineState, MemoryFacts, ModelLoaded, TimingSource};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub boards: Vec<BoardRecord>,
    /// From the first board's start to the last board's end.
    #[serde(skip)]
    pub wall: std::time::Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct BoardRecord {
    pub board: String,
    pub kind: BoardKind,
    #[serde(skip)]
    pub hello: Option<AgentHello>,
    pub outcome: BoardOutcome,
    pub builds: Vec<BuildRecord>,
    /// Memory after every build ran.
    #[serde(skip)]
    pub memory_end: Option<MemoryFacts>,
    /// Present when the board has a power sensor (also when it failed: `error` says why).
    #[serde(skip)]
    pub power: Option<PowerRecord>,
    /// SSH boards: the health check before any work, and what deploying sent or found cached.
    #[serde(skip)]
    pub health: Option<gauntlet_ssh::Health>,
    #[serde(skip)]
    pub deployment: Option<gauntlet_ssh::Deployment>,
    /// SSH boards: temperatures sampled while the board worked.
    #[serde(skip)]
    pub temperatures: Option<TemperatureRecord>,
    /// Wall time of the board's whole session, lock and connection included.
    #[serde(skip)]
    pub session: Option<std::time::Duration>,
    /// The machine read at every block boundary, where the device declares it can be.
    #[serde(skip)]
    pub machine: Vec<MachineSample>,
    /// Agent processes started afresh for replays after the first (`[run] fresh_agent`).
    #[serde(skip)]
    pub fresh_agents: u32,
}

/// The machine as the device read it before interleaved block `block` of replay `repeat` of
/// `model`'s builds, or (`block: None`) after that model's last block.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineSample {
    pub model: String,
    pub repeat: u32,
    pub block: Option<u32>,
    pub state: MachineState,
}

#[derive(Debug, Clone)]
pub struct TemperatureRecord {
    pub interval: std::time::Duration,
    /// Seconds since sampling started, and `(zone type, °C)` for every readable thermal zone then.
    pub samples: Vec<(f64, Vec<(String, f64)>)>,
    /// Why sampling stopped before the session ended.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PowerRecord {
    pub trace: Option<PowerTrace>,
    pub error: Option<String>,
    /// Idle baseline window of each model's energy phase, on the sensor's clock.
    pub idle: Vec<(String, Window)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum BoardOutcome {
    Completed,
    /// The board or its link failed: an infrastructure problem, never a model verdict.
    InfraFailed {
        stage: Stage,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Another run holds the board.
    Lock,
    Connect,
    /// The pre-run health check found what the rig's policy refuses.
    Health,
    Handshake,
    Load,
    Replay,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildRecord {
    pub model: String,
    pub variant: String,
    pub reference: bool,
    /// The champion's build, joined for a head-to-head comparison.
    pub champion: bool,
    pub artifact: PathBuf,
    pub sha256: String,
    pub size_bytes: u64,
    /// The runtime and settings the build asked for; what the board ran it with is in its hello.
    pub runtime: gauntlet_spec::RuntimeSpec,
    pub outcome: BuildOutcome,
    #[serde(skip)]
    pub loaded: Option<ModelLoaded>,
    #[serde(skip)]
    pub timing: Option<TimingSource>,
    /// Inferences run before measurement, excluded from every figure.
    pub warmup: usize,
    /// On-device time of each measured inference, in order.
    #[serde(skip)]
    pub device_ns: Vec<u64>,
    /// How `device_ns` divides into interleaved blocks, in order: what dependence-aware intervals
    /// resample.
    #[serde(skip)]
    pub blocks: Vec<gauntlet_measure::Block>,
    /// Host view of each measured request.
    #[serde(skip)]
    pub requests: Vec<RequestTiming>,
    /// Scores of the first pass over the dataset, `output_len` per window, in window order.
    #[serde(skip)]
    pub outputs: Vec<f32>,
    pub output_len: usize,
    /// Inferences run inside the repeated windows (not part of the latency figures).
    pub energy_inferences: u64,
    /// Energy windows on the power sensor's clock, bounded by the device's markers.
    #[serde(skip)]
    pub energy_windows: Vec<MeasuredWindow>,
    /// The same windows on the device's own clock (its marker times), for throughput.
    #[serde(skip)]
    pub throughput_windows: Vec<MeasuredWindow>,
    /// MCU builds: the firmware image that carried the model, and the device's memory figures
    /// (stack high-water) at the end of its session.
    #[serde(skip)]
    pub firmware: Option<gauntlet_mcu::Firmware>,
    #[serde(skip)]
    pub memory_end: Option<MemoryFacts>,
}

impl BuildRecord {
    /// Windows of the first pass that have scores (all of them unless the run was cut short).
    pub fn windows_scored(&self) -> usize {
        self.outputs.len().checked_div(self.output_len).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum BuildOutcome {
    Completed,
    /// The build itself cannot run on this board (unsupported operator, shape): a result, not an
    /// infrastructure failure.
    Rejected {
        kind: RejectionKind,
        message: String,
    },
    /// The board failed while this build was running; samples taken so far are kept.
    Interrupted {
        reason: String,
    },
    /// Never started because the board failed earlier.
    NotRun,
}

/// One request as the host saw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RequestTiming {
    pub windows: u32,
    /// From when the device could first serve the request (sent, and the previous response in)
    /// to its response; with one request in flight this is the plain round trip.
    pub service_ns: u64,
    /// Sum of the device's own times for the request's inferences.
    pub device_ns: u64,
}
