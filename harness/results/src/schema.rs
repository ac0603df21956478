use std::collections::BTreeMap;

use gauntlet_measure::{
    Agreement, BlockRatio, BlockSummary, ConfidenceInterval, LatencyIntervals, LatencySummary,
    RatioEstimate,
};
use serde::{Deserialize, Serialize};

use crate::{BaselineKind, Comparison, Metric, RejectionKind};

/// Identifies the file format; readers check it before anything else.
pub const SCHEMA: &str = "gauntlet.results";
/// Bumped on any change a reader of the previous version would misread.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub schema: String,
    pub schema_version: u32,
    pub run_id: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub harness: Harness,
    pub scenario: FileRef,
    pub rig: FileRef,
    pub dataset: DatasetInfo,
    pub boards: Vec<BoardResult>,
    /// Wall time of all boards' sessions, run in parallel: against the slowest board's
    /// `session_s`, what running the boards together costs.
    pub boards_wall_s: Option<f64>,
    /// One per board × model build, in scenario order.
    pub entries: Vec<Entry>,
    /// Every gate applied to every entry it selects, in scenario order.
    pub gates: Vec<GateResult>,
    /// One per model build × board class.
    pub verdicts: Vec<BuildVerdict>,
    /// The run's overall outcome, which decides the exit code.
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    /// The interval straddles the threshold, or too few samples to decide.
    Inconclusive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// As written in the scenario, e.g. `accuracy >= 99% of reference`.
    pub gate: String,
    pub metric: Metric,
    pub board: String,
    pub board_class: String,
    pub model: String,
    pub variant: String,
    pub comparison: Comparison,
    /// What `threshold`, `measured` and `measured_ci` are in. Absent in results written before
    /// it existed: those read as `Metric`, though their head-to-head gates hold ratios.
    #[serde(default)]
    pub scale: GateScale,
    /// The threshold after resolving relative gates.
    pub threshold: Option<f64>,
    pub measured: Option<f64>,
    pub measured_ci: Option<ConfidenceInterval>,
    /// What a relative gate compared with.
    pub baseline: Option<Baseline>,
    pub verdict: Verdict,
    /// One sentence a release manager can read: the numbers that decided.
    pub evidence: String,
}

/// The scale a gate judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateScale {
    /// The metric's base unit: µs, bytes, joules, a 0–1 fraction, the score's own unit.
    #[default]
    Metric,
    /// The candidate's figure over its baseline's, both measured in this run (a champion head
    /// to head); the baseline's own figure stays in the metric's unit.
    Ratio,
}

impl GateResult {
    /// How `threshold`, `measured` and `measured_ci` read.
    pub fn quantity(&self) -> crate::format::Quantity {
        match self.scale {
            GateScale::Metric => crate::format::Quantity::of(self.metric),
            GateScale::Ratio => crate::format::Quantity::Ratio,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub kind: BaselineKind,
    pub variant: String,
    /// The champion's run, for champion gates.
    pub run_id: Option<String>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildVerdict {
    pub model: String,
    pub variant: String,
    pub board_class: String,
    /// `None` when infrastructure failed before the build could be judged.
    pub verdict: Option<Verdict>,
    pub infra_error: Option<String>,
    pub gates_passed: usize,
    pub gates_failed: usize,
    pub gates_inconclusive: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    GateFailed,
    InfraFailure,
    Inconclusive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Harness {
    pub version: String,
    pub git_commit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    pub name: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    /// SHA-256 over the replayed recordings' bytes, in order.
    pub sha256: String,
    /// Windows replayed.
    pub windows: usize,
    /// Set when `windows` is a stratified subset (`[dataset] subset`): the full selection's size.
    #[serde(default)]
    pub subset_of: Option<usize>,
    pub window_len: usize,
    pub classes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Measured,
    Emulated,
    Simulated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardResult {
    pub board: String,
    pub kind: String,
    pub status: BoardStatus,
    /// Set when `status` is `infra-failed`: the stage and the reason.
    pub failure: Option<Failure>,
    pub agent: Option<AgentInfo>,
    pub facts: Option<BoardFacts>,
    /// What the device's inference times are: `measured` (a real clock) or `emulated`.
    pub timing_source: Option<Source>,
    /// The power trace of the whole session, downsampled for reports.
    pub power_trace: Option<PowerTrace>,
    /// Why the board has no (or a cut-short) power trace; its other measurements stand.
    pub power_error: Option<String>,
    /// SSH boards: health before the run (agent version, free disk, governor, temperatures,
    /// throttling, load, warnings).
    pub health: Option<serde_json::Value>,
    /// SSH boards: files found in the board's SHA-256 cache and files sent.
    pub deploy: Option<Deploy>,
    /// SSH boards: thermal zones sampled while the board worked.
    pub temperatures: Option<Temperatures>,
    /// Wall time of the board's whole session (lock, connect, deploy, load, replay), seconds.
    pub session_s: Option<f64>,
    /// The machine read at every block boundary, and whether its state changed during the run.
    #[serde(default)]
    pub machine: Option<Machine>,
    /// Agent processes started afresh for the replays after the first (`[run] fresh_agent`):
    /// `repeats − 1` where the run starts the agent (local and SSH boards), 0 where the replays
    /// shared one process or one boot (agents behind TCP or serial, firmware).
    #[serde(default)]
    pub fresh_agents: u32,
    /// The CPUs the agent and its runtime's threads were held to (the rig's `cpus`); empty where
    /// the board's scheduler placed them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_cpus: Vec<u32>,
}

/// The machine a board ran on, block by block (README, "Machine state").
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Machine {
    /// Why nothing was recorded (firmware has no operating system to read); `None` when it was.
    pub unavailable: Option<String>,
    pub blocks: Vec<MachineBlock>,
    pub summary: Option<MachineSummary>,
    /// Each kind of change once, at the first block it was seen; empty when the state held.
    pub changes: Vec<MachineChange>,
}

/// The machine during one interleaved block: read at its start, steal over the whole block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MachineBlock {
    pub model: String,
    pub repeat: u32,
    pub block: u32,
    /// One-minute load average (a trailing mean: it also reflects the minute before the block).
    pub load_1m: Option<f64>,
    /// Share of CPU time the hypervisor gave to others during the block (0 on bare metal).
    pub steal_share: Option<f64>,
    /// Clock ticks (10 ms of one core at the usual 100 Hz) stolen during the block: how coarse
    /// `steal_share` is.
    #[serde(default)]
    pub steal_ticks: Option<u64>,
    /// Slowest and fastest core, MHz.
    pub freq_mhz_min: Option<f64>,
    pub freq_mhz_max: Option<f64>,
    pub governors: Vec<String>,
    /// Raspberry Pi firmware throttling flags.
    pub throttled: Option<u32>,
    /// Hottest thermal zone, °C.
    pub temperature_c: Option<f64>,
}

/// Ranges over the run's blocks; `None` where no block had the figure.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MachineSummary {
    pub load_1m_min: Option<f64>,
    pub load_1m_max: Option<f64>,
    pub steal_share_max: Option<f64>,
    pub freq_mhz_min: Option<f64>,
    pub freq_mhz_max: Option<f64>,
    pub governors: Vec<String>,
    /// Whether any block saw a present-state throttling flag.
    pub throttled: bool,
    pub temperature_c_min: Option<f64>,
    pub temperature_c_max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineChange {
    /// `governor`, `frequency`, `load`, `steal`, `throttling` or `temperature`.
    pub kind: String,
    pub model: String,
    pub repeat: u32,
    pub block: u32,
    /// What changed, with the figures, e.g. `governor ondemand → performance`.
    pub detail: String,
}

impl MachineChange {
    /// The change and where it was first seen, as reports and failure messages say it.
    pub fn describe(&self) -> String {
        format!(
            "{} in block {} of replay {} of `{}`",
            self.detail, self.block, self.repeat, self.model
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Temperatures {
    /// Seconds between samples.
    pub interval_s: f64,
    pub samples: usize,
    /// Whether any thermal zone was readable; `false` means the board exposes none, not that it
    /// is cold.
    pub exposed: bool,
    pub zones: Vec<ZoneTemperatures>,
    /// Why sampling stopped before the board finished; the samples before it stand.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneTemperatures {
    /// The zone's type, e.g. `cpu-thermal`.
    pub zone: String,
    pub min_c: f64,
    pub max_c: f64,
    /// Seconds since the first sample, one per reading.
    pub t_s: Vec<f64>,
    pub celsius: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub cache_hits: Vec<String>,
    pub uploaded: Vec<String>,
    pub bytes_sent: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerTrace {
    pub sensor: String,
    pub source: Source,
    /// Bucket start times, seconds since the session's first sample.
    pub t_s: Vec<f64>,
    pub watts_mean: Vec<f64>,
    pub watts_min: Vec<f64>,
    pub watts_max: Vec<f64>,
    /// Measurement windows, to mark on the trace.
    pub windows: Vec<TraceWindow>,
    pub sample_hz: f64,
    pub samples: usize,
    /// Fraction of samples that came late or were dropped (MLPerf Tiny flags > 0.1 %).
    pub late_fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceWindow {
    pub label: String,
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoardStatus {
    Completed,
    InfraFailed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub stage: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    pub version: String,
    pub protocol_version: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardFacts {
    pub arch: String,
    pub cpu_model: Option<String>,
    pub cores: Option<u32>,
    pub ram_kib: Option<u64>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub cpu_governor: Option<String>,
    pub clock_hz: Option<u32>,
    /// The CPU extensions that pick int8 and fp16 kernels (`avx512_vnni`, `asimddp` …): boards
    /// with one model name but other extensions run other kernels, and int8 scores can differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_features: Vec<String>,
}

/// The CPU extensions only `a` and only `b` have, each space-separated or `none`, when two boards'
/// [`BoardFacts::cpu_features`] differ: they ran other int8/fp16 kernels, so their figures are not
/// like for like. `None` when they agree or either is unknown (recorded before boards reported them).
pub fn other_cpu_extensions(a: &[String], b: &[String]) -> Option<(String, String)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let only = |x: &[String], y: &[String]| {
        let only: Vec<&str> = x
            .iter()
            .filter(|f| !y.contains(f))
            .map(String::as_str)
            .collect();
        if only.is_empty() {
            "none".to_string()
        } else {
            only.join(" ")
        }
    };
    let (only_a, only_b) = (only(a, b), only(b, a));
    (only_a != "none" || only_b != "none").then_some((only_a, only_b))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub board: String,
    pub model: String,
    /// The build id: the variant tag, with `@RUNTIME` when the scenario names the runtime.
    pub variant: String,
    pub reference: bool,
    /// The current champion's own build, joined to the run so candidates are measured head to head
    /// against it under the same machine state; gates do not judge it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub champion: bool,
    /// What ran the build (version 2); absent in version 1 files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeUsed>,
    pub status: EntryStatus,
    /// Why the build did not complete.
    pub error: Option<EntryError>,
    /// Figures from whatever was measured, also for an interrupted build.
    pub metrics: Option<Metrics>,
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeUsed {
    /// `tract`, `onnxruntime`, or the firmware's name on MCU boards.
    pub name: String,
    /// As the board reported it; `None` when the board does not have the runtime.
    pub version: Option<String>,
    /// Execution providers the build ran with, in order.
    pub providers: Vec<String>,
    pub threads: usize,
    /// Graph optimisation level (onnxruntime).
    pub optimization: String,
    /// SHA-256 of the runtime's shared library on the board, when it is one.
    pub library_sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryStatus {
    Completed,
    /// The board refused the build (e.g. an unsupported operator): a finding about the build.
    Rejected,
    /// The board failed mid-build: an infrastructure failure; partial figures are kept.
    Interrupted,
    /// The board failed before this build started.
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryError {
    pub kind: RejectionKind,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub model_path: String,
    pub model_sha256: String,
    pub model_bytes: u64,
    /// MCU builds: the firmware image that carried the model (built here or given prebuilt).
    #[serde(default)]
    pub firmware_sha256: Option<String>,
    pub dataset_sha256: String,
    pub harness_version: String,
    pub board_facts: Option<BoardFacts>,
}

/// A candidate's latency against a champion build measured in the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChampionRatio {
    pub champion_variant: String,
    pub champion_sha256: String,
    /// The champion's device p50 in this run.
    pub champion_p50_us: f64,
    pub ratio: BlockRatio,
}

/// A build's latency against the same model file on another runtime, measured on the same board
/// in the same run with interleaved blocks: what switching runtimes buys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeRatio {
    /// The build id of the same file on the baseline runtime (the first runtime it ran on).
    pub baseline_variant: String,
    pub baseline_runtime: String,
    /// The baseline's device p50 in this run.
    pub baseline_p50_us: f64,
    /// This build's device latency over the baseline's, by interleaved block pairs.
    pub ratio: BlockRatio,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Windows whose scores were compared with their labels (one pass over the dataset).
    pub windows_scored: usize,
    pub accuracy: Option<f64>,
    /// Wilson interval of the accuracy.
    pub accuracy_ci: Option<ConfidenceInterval>,
    pub macro_f1: Option<f64>,
    /// Rows are true classes, columns predicted classes, in the dataset's class order.
    pub confusion: Option<Vec<Vec<u64>>>,
    /// The device's own time per inference (runtime call only), after warm-up.
    pub latency_device_us: Option<Latency>,
    /// Host-side round trip per request, each request carrying `windows_per_request` windows.
    pub latency_roundtrip_us: Option<Latency>,
    /// (round trip − device time) / windows, per request: what the harness and link add.
    pub overhead_per_inference_us: Option<Latency>,
    pub windows_per_request: Option<f64>,
    /// Agreement with the reference variant's outputs on the same board.
    pub agreement: Option<AgreementFigures>,
    /// Paired A/B: median device latency of this build over the reference's on the same board
    /// (their blocks were interleaved), with a per-sample bootstrap CI and whether it exceeds the
    /// 1 % noise band. Secondary: it treats samples as independent; see `latency_ratio_by_block`.
    pub latency_ratio_vs_reference: Option<RatioEstimate>,
    /// The same comparison over interleaved block pairs, replays as the outer level: the median
    /// of per-pair ratios of block medians, with a two-stage block-bootstrap interval (`ci: null`
    /// when too few blocks). What gates and reports judge by.
    #[serde(default)]
    pub latency_ratio_by_block: Option<BlockRatio>,
    /// Head to head: this build's device latency over each champion build that joined the run on
    /// the same board, by interleaved block pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_ratio_vs_champions: Vec<ChampionRatio>,
    /// When the same model file also ran on another runtime on this board: this build against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ratio_vs_runtime: Option<RuntimeRatio>,
    pub model_load_ms: Option<f64>,
    pub rss_before_load_kib: Option<u64>,
    pub rss_after_load_kib: Option<u64>,
    /// Peak resident set of the agent process after this build's load (`VmHWM`).
    pub peak_rss_kib: Option<u64>,
    pub model_size_bytes: u64,
    pub energy: Option<Energy>,
    /// MLPerf Tiny's performance figure from the repeated windows, on the device's clock.
    #[serde(default)]
    pub throughput: Option<Throughput>,
    /// Why a build measured in energy windows has no energy figure.
    pub energy_error: Option<String>,
    /// MCU builds: flash and static RAM from the ELF, stack high-water from the device.
    pub flash_bytes: Option<u64>,
    pub static_ram_bytes: Option<u64>,
    /// MCU builds: heap in use once the model is loaded (the engine's arena lives there).
    #[serde(default)]
    pub heap_after_load_bytes: Option<u64>,
    pub stack_high_water_bytes: Option<u64>,
    /// Where each scalar figure above came from; object figures carry their own `source`.
    pub sources: BTreeMap<String, Source>,
    /// Anomaly-detection and regression models: their task's figures.
    #[serde(default)]
    pub task: Option<crate::task::TaskFigures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
    /// Percentiles with fewer samples than MLPerf LoadGen requires for the claim.
    pub insufficient: Vec<String>,
    /// Per-sample bootstrap intervals (`summary.ci`): a secondary figure that assumes independent
    /// samples.
    pub summary: LatencySummary,
    /// Intervals that resample whole interleaved blocks, replays first; gates use these. Absent in
    /// results written before they existed.
    #[serde(default)]
    pub by_block: Option<BlockSummary>,
    pub source: Source,
}

impl Latency {
    /// The figures of `summary`, with the block intervals of the same samples when they were
    /// measured in blocks.
    pub fn from_summary(
        summary: LatencySummary,
        by_block: Option<BlockSummary>,
        source: Source,
    ) -> Latency {
        Latency {
            p50: summary.p50,
            p90: summary.p90,
            p95: summary.p95,
            p99: summary.p99,
            p999: summary.p999,
            mean: summary.mean,
            stddev: summary.stddev,
            min: summary.min,
            max: summary.max,
            n: summary.n,
            insufficient: summary.insufficient.clone(),
            summary,
            by_block,
            source,
        }
    }

    /// The intervals to judge and to show: those over interleaved blocks, which respect the
    /// dependence between samples, with why there are none when the run had too few blocks; the
    /// per-sample ones only for results written before block intervals existed.
    pub fn honest_intervals(&self) -> (Option<&LatencyIntervals>, Option<String>) {
        match &self.by_block {
            Some(b) => (
                b.ci.as_ref(),
                b.too_few_blocks().then(|| {
                    format!(
                        "too few blocks for an honest interval: {} < {} interleaved blocks",
                        b.blocks, b.min_blocks
                    )
                }),
            ),
            None => (self.summary.ci.as_ref(), None),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    /// Median over measurement windows of (window power − idle power) × duration / inferences.
    pub per_inference_j: f64,
    /// Half-width of the error estimate of `per_inference_j`.
    pub per_inference_error_j: f64,
    pub idle_w: f64,
    pub average_w: f64,
    pub peak_w: f64,
    pub total_j: f64,
    pub windows: usize,
    pub inferences: u64,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Median over the windows of inferences per second (each window: inferences over the time
    /// between the device's start and stop markers).
    pub per_second: f64,
    pub min_per_second: f64,
    pub max_per_second: f64,
    pub windows: usize,
    /// Median window length, seconds of device time.
    pub window_s: f64,
    pub inferences: u64,
    /// At least 5 windows, none under 10 s: MLPerf Tiny's performance rule.
    pub meets_mlperf_tiny_rule: bool,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementFigures {
    pub reference_variant: String,
    /// Fraction of windows whose predicted label equals the reference's.
    pub label: f64,
    pub max_abs_diff: f64,
    pub mean_abs_diff: f64,
    pub n: usize,
    pub source: Source,
}

impl AgreementFigures {
    pub fn new(reference_variant: &str, a: Agreement, source: Source) -> Self {
        AgreementFigures {
            reference_variant: reference_variant.to_string(),
            label: a.label,
            max_abs_diff: a.max_abs_diff,
            mean_abs_diff: a.mean_abs_diff,
            n: a.n,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_measure::{Block, SummaryOptions, block_intervals, summarize};

    fn latency(xs: &[f64], blocks: Option<&[Block]>) -> Latency {
        Latency::from_summary(
            summarize(xs, &SummaryOptions::default()).unwrap(),
            blocks.map(|b| block_intervals(xs, b, 200, 0.95, 1).unwrap()),
            Source::Measured,
        )
    }

    fn blocks(count: u32, len: u32) -> Vec<Block> {
        (0..count)
            .map(|index| Block {
                repeat: 0,
                index,
                len,
            })
            .collect()
    }

    #[test]
    fn block_intervals_come_first_and_too_few_blocks_say_why_there_is_none() {
        let xs: Vec<f64> = (0..120).map(|i| 100.0 + (i % 7) as f64).collect();
        let six = latency(&xs, Some(&blocks(6, 20)));
        let (ci, why) = six.honest_intervals();
        assert!(ci.is_some() && why.is_none());
        assert_eq!(ci, six.by_block.as_ref().unwrap().ci.as_ref());
        assert_ne!(ci, six.summary.ci.as_ref(), "not the per-sample interval");

        let three = latency(&xs, Some(&blocks(3, 40)));
        let (ci, why) = three.honest_intervals();
        assert!(ci.is_none());
        assert!(why.unwrap().contains("3 < 6 interleaved blocks"));

        let old = latency(&xs, None);
        assert_eq!(old.honest_intervals(), (old.summary.ci.as_ref(), None));
    }

    #[test]
    fn a_board_written_before_machine_state_was_recorded_still_reads() {
        let old = r#"{"board": "local", "kind": "local", "status": "completed", "failure": null,
            "agent": null, "facts": null, "timing_source": null, "power_trace": null,
            "power_error": null, "health": null, "deploy": null, "temperatures": null,
            "session_s": 1.5}"#;
        let board: BoardResult = serde_json::from_str(old).unwrap();
        assert_eq!(board.machine, None);
        let block: MachineBlock = serde_json::from_str(
            r#"{"model": "m", "repeat": 0, "block": 0, "load_1m": 0.5,
                "steal_share": 0.0, "freq_mhz_min": null, "freq_mhz_max": null,
                "governors": [], "throttled": null, "temperature_c": null}"#,
        )
        .unwrap();
        assert_eq!(block.steal_ticks, None);
    }
}
