//! Validated scenario and rig types: what the rest of Gauntlet sees. Built once by the parser; every
//! path is absolute (resolved against the file that named it), every reference checked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use gauntlet_dataset::DatasetSpec;
use serde::Serialize;

/// Where a loaded file came from, for provenance and diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceFile {
    pub path: PathBuf,
    /// SHA-256 (hex) of the file's bytes and of every file it `extends`, in order.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub source: SourceFile,
    pub dataset: DatasetSpec,
    /// Replay only a stratified subset of this many windows (`[dataset] subset`).
    pub subset: Option<usize>,
    pub models: Vec<Model>,
    pub targets: Targets,
    pub run: RunRules,
    /// Per-board-class run rules; the first whose selector matches a board's labels wins.
    pub overrides: Vec<RunOverride>,
    pub gates: Vec<GateSpec>,
    /// Whether an INCONCLUSIVE verdict fails CI (exit code 4) or passes.
    pub inconclusive_fails: bool,
    /// `[drift]`: how `gauntlet drift` requalifies the champion (defaults when absent).
    pub drift: crate::DriftSpec,
    /// Where `[dataset] files` is written, for errors found when the data is read.
    #[serde(skip)]
    pub dataset_at: Option<crate::Location>,
}

impl Scenario {
    /// The run rules for one board: the first matching override, else the scenario's `[run]`.
    pub fn run_for(&self, board: &Board) -> &RunRules {
        self.overrides
            .iter()
            .find(|o| board.matches(&o.selector))
            .map_or(&self.run, |o| &o.run)
    }
}

/// `[run]` keys replaced for the boards a selector matches (already merged with the scenario's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOverride {
    pub selector: BTreeMap<String, String>,
    pub run: RunRules,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub name: String,
    /// Input tensor name; `None` takes the model's first input.
    pub input: Option<String>,
    /// Per-inference input shape including the batch dimension of 1, e.g. `[1, 1, 1024]`.
    pub input_shape: Vec<usize>,
    pub output: OutputSelector,
    pub task: Task,
    pub builds: Vec<Build>,
    /// Where `input_shape` is written, for misfits found when the model is loaded.
    #[serde(skip)]
    pub input_shape_at: Option<crate::Location>,
}

/// What a model's output means, and so which metrics score it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Task {
    /// Class scores against class labels (accuracy, macro F1).
    Classification,
    /// A score per window against 0/1 labels (class 1 = anomalous).
    Anomaly(AnomalyTask),
    /// A value per window against the dataset's `target`.
    Regression,
}

impl Task {
    pub fn name(&self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Anomaly(_) => "anomaly",
            Task::Regression => "regression",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyTask {
    pub score: AnomalyScore,
    pub threshold: AnomalyThreshold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AnomalyScore {
    /// The selected output is the score.
    Output,
    /// Mean squared error of the selected output (a reconstruction) against the input window.
    ReconstructionMse,
    /// Mean absolute error of the reconstruction.
    ReconstructionMae,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AnomalyThreshold {
    Given(f64),
    /// Per build: the `quantile` of its scores on the normal windows of these recordings
    /// (indices into the dataset's recordings, with their paths for messages).
    Calibrated {
        quantile: f64,
        recordings: Vec<usize>,
        files: Vec<PathBuf>,
    },
}

impl Model {
    /// The build every other variant is compared with (exactly one per model, checked by the parser).
    pub fn reference(&self) -> &Build {
        self.builds
            .iter()
            .find(|b| b.reference)
            .expect("validated model has exactly one reference build")
    }
}

pub use gauntlet_results::{Comparison, Metric};
pub use gauntlet_wire::OutputSelector;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Build {
    /// The build's id within its model: the variant tag (`fp32`, `int8_qdq` …), followed by
    /// `@RUNTIME` when the scenario names the runtime (`fp32@onnxruntime`).
    pub variant: String,
    /// The variant tag as written, without the runtime.
    pub base_variant: String,
    pub artifact: Artifact,
    pub reference: bool,
    /// Where the artifact is named, for errors found when it is read or loaded.
    #[serde(skip)]
    pub artifact_at: Option<crate::Location>,
    pub runtime: RuntimeSpec,
}

/// The runtime a build runs on and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeSpec {
    /// One of [`gauntlet_wire::RUNTIME_NAMES`].
    pub name: String,
    pub threads: usize,
    /// One of [`gauntlet_wire::GRAPH_OPTIMIZATIONS`].
    pub optimization: String,
    /// Execution providers in order; empty = CPU.
    pub providers: Vec<String>,
}

impl Default for RuntimeSpec {
    fn default() -> Self {
        RuntimeSpec {
            name: gauntlet_wire::RUNTIME_NAMES[0].into(),
            threads: 1,
            optimization: "all".into(),
            providers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Artifact {
    Onnx(PathBuf),
    /// A prebuilt MCU firmware image (ELF) with the model baked in.
    Firmware(PathBuf),
}

impl Artifact {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Artifact::Onnx(p) | Artifact::Firmware(p) => p,
        }
    }
}

/// Which boards of the rig a scenario runs on: named ids plus label selectors (all labels must match).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Targets {
    pub boards: Vec<String>,
    pub selectors: Vec<BTreeMap<String, String>>,
    /// Boards allocated at run time from those a pool's labels match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<Pool>,
}

/// Any `count` of the boards carrying `labels`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pool {
    pub labels: BTreeMap<String, String>,
    pub count: usize,
}

impl Targets {
    /// Whether the scenario runs on `board` whatever is free: named, or matched by a selector.
    pub fn fixed(&self, board: &Board) -> bool {
        self.boards.contains(&board.id) || self.selectors.iter().any(|s| board.matches(s))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRules {
    /// Inferences per build and board before measurement starts (excluded from statistics).
    pub warmup: usize,
    /// Replay the selected windows again until at least this many measured inferences.
    pub min_inferences: usize,
    /// Replay again until at least this long has been measured.
    pub min_duration: Duration,
    pub repeats: usize,
    /// Each repetition after the first in a fresh agent process, where the run starts the agent.
    pub fresh_agent: bool,
    pub seed: u64,
    /// Windows carried by one inference request.
    pub batch: usize,
    pub pacing: Pacing,
    /// Paired A/B: builds of a model on a board alternate in blocks of this many windows.
    pub interleave_block: usize,
    /// Energy phase on boards with a power sensor: windows per build (0 = none), their length,
    /// and the idle baseline before them.
    pub energy_windows: usize,
    pub energy_window: Duration,
    pub idle_baseline: Duration,
    /// Run those windows on every board, not only on boards with a power sensor, for throughput
    /// (MLPerf Tiny: the median over 5 windows of at least 10 s).
    pub throughput: bool,
    /// A change of the machine's state during the run makes it an infrastructure failure.
    pub stable_machine: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Pacing {
    AsFastAsPossible,
    /// At the recording's own timestamps, sped up by `speedup`.
    Recorded {
        speedup: f64,
    },
    FixedRate {
        hz: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateSpec {
    pub metric: Metric,
    pub comparison: Comparison,
    pub threshold: Threshold,
    /// Restrict the gate to boards with these labels (e.g. `kind = "raspberry-pi"`); empty = all.
    pub board_selector: BTreeMap<String, String>,
    /// Restrict the gate to these variants; empty = all.
    pub variants: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Threshold {
    /// In the metric's base unit: fraction for accuracy, microseconds for latency, joules for energy,
    /// bytes for memory.
    Absolute(f64),
    /// A fraction of the reference variant's value (0.99 = 99 % of fp32).
    OfReference(f64),
    /// No regression beyond this fraction relative to the champion (0.05 = 5 %).
    VsChampion { max_regression: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rig {
    pub name: String,
    pub source: SourceFile,
    pub boards: Vec<Board>,
    /// Boards driven at once.
    pub max_parallel: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Board {
    pub id: String,
    pub kind: BoardKind,
    /// Free-form labels used by selectors; `kind` is always present as a label too.
    pub labels: BTreeMap<String, String>,
    pub connection: Connection,
    pub power: Option<PowerSensorSpec>,
    pub power_switch: Option<PowerSwitch>,
    pub timeouts: Timeouts,
    /// SSH boards: which health findings take the board out of the run.
    pub health: HealthPolicy,
    /// Linux boards: the host's libonnxruntime.so the rig names for this board.
    pub onnxruntime: Option<PathBuf>,
    /// Linux boards: the CPUs the agent is held to, ascending; empty where the rig names none.
    pub cpus: Vec<u32>,
}

/// What in a board's pre-run health check refuses it; by default nothing does, and every
/// finding is a recorded warning.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct HealthPolicy {
    pub refuse_busy: bool,
    pub refuse_throttled: bool,
    pub refuse_governor: bool,
    pub max_temperature_c: Option<f64>,
    pub min_free_disk_bytes: Option<u64>,
}

impl Board {
    /// Whether the board carries every label of `selector` (an empty selector matches all).
    pub fn matches(&self, selector: &BTreeMap<String, String>) -> bool {
        selector.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BoardKind {
    Local,
    LinuxSsh,
    Jetson,
    LinuxTcp,
    LinuxSerial,
    Stm32Probe,
    QemuStm32,
}

impl BoardKind {
    pub const ALL: [(&'static str, BoardKind); 7] = [
        ("local", BoardKind::Local),
        ("linux-ssh", BoardKind::LinuxSsh),
        ("jetson", BoardKind::Jetson),
        ("linux-tcp", BoardKind::LinuxTcp),
        ("linux-serial", BoardKind::LinuxSerial),
        ("stm32-probe", BoardKind::Stm32Probe),
        ("qemu-stm32", BoardKind::QemuStm32),
    ];

    /// The built-in `platform` label: `linux` for boards running the agent (they run ONNX builds),
    /// `mcu` for microcontrollers (firmware builds). A scenario selecting `platform = "linux"`
    /// runs on this machine with the local rig and on a lab's Pis and Jetsons alike.
    pub fn platform(self) -> &'static str {
        match self {
            BoardKind::Local
            | BoardKind::LinuxSsh
            | BoardKind::Jetson
            | BoardKind::LinuxTcp
            | BoardKind::LinuxSerial => "linux",
            BoardKind::Stm32Probe | BoardKind::QemuStm32 => "mcu",
        }
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .expect("every board kind is listed in ALL")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Connection {
    /// This machine: the agent runs as a child process.
    Local {
        agent: AgentBinary,
        transport: LocalTransport,
    },
    /// An agent already listening on TCP (e.g. a service on the board); the token authenticates.
    Tcp {
        address: String,
        token: Secret,
    },
    /// An agent already attached to a serial line.
    Serial(SerialPort),
    Ssh(SshConnection),
    Probe {
        probe: ProbeSelector,
        chip: String,
        uart: SerialPort,
    },
    Qemu {
        machine: String,
        qemu: PathBuf,
    },
}

/// Which agent program the harness starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AgentBinary {
    /// The `gauntlet-agent` built beside the running `gauntlet` binary.
    Bundled,
    Path(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum LocalTransport {
    Stdio,
    /// The harness starts the agent listening on loopback with a fresh token.
    Tcp,
    /// The harness starts the agent on `agent_side` and talks on `host_side` (e.g. a pty pair).
    Serial {
        host_side: SerialPort,
        agent_side: PathBuf,
    },
}

/// A secret read from the rig file or an environment variable; never printed.
#[derive(Clone, PartialEq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SerialPort {
    pub path: PathBuf,
    pub baud: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SshConnection {
    pub host: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    pub known_hosts: KnownHostsPolicy,
    /// Extra `-o Key=Value` options passed to OpenSSH.
    pub options: Vec<String>,
    /// Remote directory where agents and models are cached by SHA-256.
    pub cache_dir: String,
    /// Target triple of the board, selecting which agent binary to upload.
    pub arch: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum KnownHostsPolicy {
    Strict,
    AcceptNew,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeSelector {
    pub vid: u16,
    pub pid: u16,
    pub serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PowerSensorSpec {
    Ina219 {
        i2c_bus: PathBuf,
        address: u8,
        shunt_ohms: f64,
        max_current_a: f64,
        adc: AdcMode,
        sample_hz: f64,
    },
    JetsonRails {
        hwmon: PathBuf,
        rails: Vec<String>,
        sample_hz: f64,
    },
    Simulated {
        idle_watts: f64,
        active_watts: f64,
        bus_volts: f64,
        sample_hz: f64,
    },
}

/// The simulated sensor is an INA219 register model on the common breakout's 0.1 Ω shunt.
pub const SIMULATED_SHUNT_OHMS: f64 = 0.1;

/// The INA219's largest shunt voltage (PGA /8).
pub const INA219_MAX_SHUNT_VOLTS: f64 = 0.32;

/// The fastest rate a power sensor is sampled at (the power sampler's limit).
pub const MAX_SAMPLE_HZ: f64 = 1e6;

/// Full scale of the simulated sensor's INA219: headroom over the active draw so the modelled
/// current never overflows its registers.
pub fn simulated_full_scale_a(active_watts: f64, bus_volts: f64) -> f64 {
    (active_watts / bus_volts * 1.5).max(0.4)
}

pub use gauntlet_power::AdcMode;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PowerSwitch {
    /// A command run with `on`/`off` as its last argument (e.g. a USB hub or relay tool).
    Command {
        program: PathBuf,
        args: Vec<String>,
        off_on_delay: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeouts {
    pub connect: Duration,
    pub deploy: Duration,
    pub load: Duration,
    /// For one inference request (a batch of windows).
    pub batch: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            deploy: Duration::from_secs(120),
            load: Duration::from_secs(60),
            batch: Duration::from_secs(30),
        }
    }
}
