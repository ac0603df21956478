//! Raw scenario and rig files exactly as written: serde types that reject unknown keys and keep the
//! span of every value that a later check may need to point at. The JSON Schemas are generated from
//! these types, so their doc comments are what editors show.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};

/// A value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Sp<T> {
    pub span: Range<usize>,
    pub value: T,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = toml::Spanned::<T>::deserialize(d)?;
        Ok(Sp {
            span: s.span(),
            value: s.into_inner(),
        })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

pub(crate) type Labels = BTreeMap<String, String>;

/// The keywords a [`KeywordOr`] accepts in its string form.
pub(crate) trait Keywords {
    const KEYWORDS: &'static [&'static str];
}

/// Either one of a few keywords (`"all"`) or a table with parameters (`{ tail = 0.3 }`). Which
/// keyword is checked during validation so the diagnostic can suggest the close one.
#[derive(Debug, Clone)]
pub(crate) enum KeywordOr<T> {
    Keyword(String),
    Table(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for KeywordOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = KeywordOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a keyword string or a table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeywordOr::Keyword(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(KeywordOr::Table)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<T: JsonSchema + Keywords> JsonSchema for KeywordOr<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("KeywordOr_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let table = generator.subschema_for::<T>();
        json_schema!({ "anyOf": [ { "type": "string", "enum": T::KEYWORDS }, table ] })
    }
}

/// A column or output named by its header / tensor name, or by zero-based position.
#[derive(Debug, Clone)]
pub(crate) enum NameOrIndex {
    Name(String),
    Index(i64),
}

impl<'de> Deserialize<'de> for NameOrIndex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NameOrIndex;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or a 0-based index")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NameOrIndex, E> {
                Ok(NameOrIndex::Name(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NameOrIndex, E> {
                Ok(NameOrIndex::Index(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NameOrIndex, E> {
                Ok(NameOrIndex::Index(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for NameOrIndex {
    fn schema_name() -> Cow<'static, str> {
        "NameOrIndex".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A name, or a 0-based index.",
            "anyOf": [ { "type": "string" }, { "type": "integer", "minimum": 0 } ]
        })
    }
}

/// A gate threshold: a bare number (fractions), a quantity with a unit (`"20ms"`), or a relative
/// table.
#[derive(Debug, Clone)]
pub(crate) enum ThresholdRaw {
    Number(f64),
    Quantity(String),
    Relative(RelativeRaw),
}

impl<'de> Deserialize<'de> for ThresholdRaw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ThresholdRaw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, a quantity with a unit such as \"20ms\", or a table such as { of_reference = 0.99 }")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ThresholdRaw, E> {
                Ok(ThresholdRaw::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ThresholdRaw, E> {
                Ok(ThresholdRaw::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ThresholdRaw, E> {
                Ok(ThresholdRaw::Number(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ThresholdRaw, E> {
                Ok(ThresholdRaw::Quantity(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ThresholdRaw, A::Error> {
                RelativeRaw::deserialize(MapAccessDeserializer::new(map))
                    .map(ThresholdRaw::Relative)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ThresholdRaw {
    fn schema_name() -> Cow<'static, str> {
        "Threshold".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let relative = generator.subschema_for::<RelativeRaw>();
        json_schema!({
            "description": "A fraction (accuracy, macro_f1, agreement.label), a quantity with a unit (latency \"20ms\", energy \"2mJ\", memory \"96KiB\"), or a relative threshold.",
            "anyOf": [ { "type": "number" }, { "type": "string" }, relative ]
        })
    }
}

/// Relative threshold; exactly one key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RelativeRaw {
    /// A fraction of the reference variant's value: `{ of_reference = 0.99 }` = 99 % of fp32.
    pub of_reference: Option<Sp<f64>>,
    /// Allowed regression versus the champion, as a fraction: 0.05 = 5 %.
    pub vs_champion: Option<Sp<f64>>,
}

// ---------------------------------------------------------------------------------------------
// Scenario

/// A Gauntlet scenario: which model builds to run on which boards, over which recorded data, and
/// the gates their results must pass.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Gauntlet scenario")]
pub(crate) struct ScenarioFile {
    /// Another scenario this one builds on, relative to this file. Tables merge key by key; arrays
    /// and values written here replace the base's. Resolved before deserialization.
    #[allow(dead_code)]
    pub extends: Option<String>,
    pub scenario: Sp<ScenarioSection>,
    pub dataset: Sp<DatasetSection>,
    pub models: Sp<Vec<Sp<ModelSection>>>,
    pub targets: Option<TargetsSection>,
    pub run: Option<RunSection>,
    #[serde(default)]
    pub gates: Vec<Sp<GateSection>>,
    /// Per-board-class run rules: the first entry whose `boards` selector matches a board replaces
    /// the `[run]` keys it sets, for that board only.
    #[serde(default)]
    pub overrides: Vec<Sp<OverrideSection>>,
    /// How `gauntlet drift` requalifies the champion on fresh recordings.
    pub drift: Option<Sp<crate::drift::DriftSection>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioSection {
    pub name: Sp<String>,
    pub description: Option<String>,
    /// Whether an INCONCLUSIVE verdict fails CI (default true).
    pub inconclusive_fails: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetSection {
    pub name: Sp<String>,
    /// CSV files or glob patterns, relative to the file naming them; globs expand sorted. With
    /// `labels.from = "file"`, file i is class i.
    pub files: Sp<Vec<Sp<String>>>,
    /// One ASCII character (default ",").
    pub delimiter: Option<Sp<String>>,
    /// Whether the first row is a header (default true).
    pub header: Option<bool>,
    /// Feature columns, by header name or 0-based index.
    pub features: Sp<Vec<Sp<NameOrIndex>>>,
    pub window: Sp<WindowSection>,
    /// How a window's rows × columns become the model's tensor (default "row-major").
    pub layout: Option<LayoutRaw>,
    /// Class labels (classification; anomaly detection with classes `[normal, anomaly]`). A
    /// regression dataset names a `target` instead.
    pub labels: Option<Sp<LabelsSection>>,
    /// Regression: `{ column = "Temperature", horizon = 10 }`, the column's value `horizon` rows
    /// after each window's last row (default 0). Windows whose target lies past the end of their
    /// file are dropped.
    pub target: Option<Sp<TargetSection>>,
    /// Held-out part of each recording: "all" or `{ tail = 0.3 }` (default "all").
    pub select: Option<Sp<KeywordOr<SelectTable>>>,
    /// Timestamp column, needed for `pacing = { recorded = … }`.
    pub timestamp: Option<Sp<NameOrIndex>>,
    /// "as-fast-as-possible" (default), `{ recorded = 1.0 }` (speed-up over the recording's own
    /// timestamps) or `{ rate_hz = 100 }`.
    pub pacing: Option<Sp<KeywordOr<PacingTable>>>,
    /// Replay a stratified subset of this many windows (each class keeps its share), for boards
    /// whose link is too slow for the whole held-out set; accuracy then carries a Wilson interval.
    pub subset: Option<Sp<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowSection {
    /// Rows (time steps) per window.
    pub rows: Sp<i64>,
    /// Rows between consecutive window starts.
    pub stride: Sp<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LayoutRaw {
    RowMajor,
    ChannelsFirst,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelsSection {
    /// `from = "file"`: each file is one class, in `classes` order.
    pub from: Option<Sp<String>>,
    /// A numeric column holding the class index (value at each window's last row).
    pub column: Option<Sp<NameOrIndex>>,
    /// Class names in index order.
    pub classes: Sp<Vec<Sp<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetSection {
    pub column: Sp<NameOrIndex>,
    pub horizon: Option<Sp<i64>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SelectTable {
    /// Fraction of each recording's rows, taken from its end, in (0, 1].
    pub tail: Sp<f64>,
}

impl Keywords for SelectTable {
    const KEYWORDS: &'static [&'static str] = &["all"];
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PacingTable {
    /// Replay at the recording's timestamps, sped up by this factor.
    pub recorded: Option<Sp<f64>>,
    /// Replay at a fixed rate.
    pub rate_hz: Option<Sp<f64>>,
}

impl Keywords for PacingTable {
    const KEYWORDS: &'static [&'static str] = &["as-fast-as-possible"];
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelSection {
    pub name: Sp<String>,
    /// Input tensor name (default: the model's first input).
    pub input: Option<String>,
    /// Per-inference input shape including a leading batch dimension of 1; its element count must
    /// equal window rows × features.
    pub input_shape: Sp<Vec<Sp<i64>>>,
    /// Output holding the scores, by name or index (default 0).
    pub output: Option<Sp<NameOrIndex>>,
    /// Runtime for every build of this model: "tract" (default) or "onnxruntime". A build that
    /// names a runtime (here or on the build) gets the variant id `VARIANT@RUNTIME`.
    pub runtime: Option<Sp<String>>,
    /// A matrix: every build runs on each of these runtimes, e.g. ["tract", "onnxruntime"]; the
    /// reference build on the first one is the model's reference.
    pub runtimes: Option<Sp<Vec<Sp<String>>>>,
    /// Intra-op threads (default 1: one window at a time gains nothing from more, and extra
    /// threads share the board's cores with its OS and samplers); onnxruntime only.
    pub threads: Option<Sp<i64>>,
    /// onnxruntime graph optimisation: "disabled", "basic", "extended" or "all" (default).
    pub optimization: Option<Sp<String>>,
    /// onnxruntime execution providers in order of preference, e.g. ["tensorrt", "cuda", "cpu"]
    /// (default: CPU). A provider the board's library lacks rejects the build.
    pub providers: Option<Sp<Vec<Sp<String>>>>,
    /// "classification", "anomaly" or "regression". Default: "anomaly" with an `anomaly` table,
    /// "regression" when the dataset has a `target` and no `labels`, else "classification".
    pub task: Option<Sp<String>>,
    /// Anomaly detection: how a window's score is read and where its alarm threshold comes from.
    pub anomaly: Option<Sp<AnomalySection>>,
    pub builds: Sp<Vec<Sp<BuildSection>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnomalySection {
    /// "output" (default: the selected output is the score, one value per window), or "mse" /
    /// "mae": the selected output is a reconstruction of the input, and the score is its mean
    /// squared / absolute error against the window, in the model's input layout.
    pub score: Option<Sp<String>>,
    /// An alarm is a score strictly above this.
    pub threshold: Option<Sp<f64>>,
    /// Or: each build's threshold is this quantile of its own scores on the normal windows of
    /// these recordings (some of `[dataset] files`).
    pub calibrate: Option<Sp<CalibrateSection>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalibrateSection {
    /// In (0, 1), e.g. 0.99 for a 1 % false-alarm budget on normal data.
    pub quantile: Sp<f64>,
    pub files: Sp<Vec<Sp<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuildSection {
    /// Variant tag such as fp32, fp16, int8_qdq; unique within the model.
    pub variant: Sp<String>,
    /// ONNX file, relative to the file naming it.
    pub onnx: Option<Sp<String>>,
    /// Prebuilt MCU firmware (ELF) with the model inside, relative to the file naming it.
    pub firmware: Option<Sp<String>>,
    /// Exactly one build per model is the reference the others are compared with.
    pub reference: Option<Sp<bool>>,
    /// This build's runtime, over the model's `runtime`/`runtimes`.
    pub runtime: Option<Sp<String>>,
    /// Over the model's `threads`.
    pub threads: Option<Sp<i64>>,
    /// Over the model's `optimization`.
    pub optimization: Option<Sp<String>>,
    /// Over the model's `providers`.
    pub providers: Option<Sp<Vec<Sp<String>>>>,
}

/// Boards to run on: ids and/or label selectors. Omitted or empty = every board of the rig.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetsSection {
    #[serde(default)]
    pub boards: Vec<Sp<String>>,
    /// Each selector picks the boards carrying all its labels (`kind` is always a label).
    #[serde(default)]
    pub selectors: Vec<Sp<Labels>>,
    /// Each pool asks for `count` boards, any of those carrying its labels: at run time the free
    /// ones are taken, skipping boards leased by other runs or out of rotation.
    #[serde(default)]
    pub pools: Vec<Sp<PoolSection>>,
}

/// Any `count` boards carrying `labels`, e.g. `{ labels = { family = "raspberry-pi" }, count = 2 }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolSection {
    /// Label selector, as in `selectors`.
    pub labels: Sp<Labels>,
    /// How many of the matching boards the run takes (default 1).
    pub count: Option<Sp<i64>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunSection {
    /// Inferences before measurement starts (default 20).
    pub warmup: Option<Sp<i64>>,
    /// Replay again until at least this many measured inferences (default 0).
    pub min_inferences: Option<Sp<i64>>,
    /// Replay again until at least this long has been measured, e.g. "10s" (default "0s").
    pub min_duration: Option<Sp<String>>,
    /// Whole-replay repetitions (default 1).
    pub repeats: Option<Sp<i64>>,
    /// Each repetition after the first in a fresh agent process, its models loaded and warmed up
    /// again, where the run starts the agent (local and SSH boards), so repeats are independent
    /// draws of a process's state too (default true; README "Repeats").
    pub fresh_agent: Option<bool>,
    /// Seed for every random choice (default 1).
    pub seed: Option<Sp<i64>>,
    /// Windows per inference request (default 1).
    pub batch: Option<Sp<i64>>,
    /// Builds of a model alternate on a board in blocks of this many windows (default 64).
    pub interleave_block: Option<Sp<i64>>,
    /// On boards with a power sensor: measurement windows of back-to-back inferences per build
    /// (default 5, as MLPerf Tiny's energy mode; 0 skips the energy phase).
    pub energy_windows: Option<Sp<i64>>,
    /// Length of each energy window, e.g. "10s" (default "10s", as MLPerf Tiny).
    pub energy_window: Option<Sp<String>>,
    /// Idle baseline measured before the energy windows, e.g. "2s" (default "2s").
    pub idle_baseline: Option<Sp<String>>,
    /// MLPerf Tiny's performance rule: run the energy windows on every board, sensor or not, and
    /// report throughput as the median over them (default false).
    pub throughput: Option<bool>,
    /// Refuse a run during which the machine's state changed (governor, frequency, load, steal,
    /// throttling, temperature; README "Machine state"): the run becomes an infrastructure
    /// failure, its measurements kept (default false).
    pub stable_machine: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GateSection {
    /// One of: accuracy, macro_f1, latency.p50, latency.p90, latency.p99, latency.mean,
    /// agreement.label, energy_per_inference, peak_ram, flash.
    pub metric: Sp<String>,
    pub at_least: Option<Sp<ThresholdRaw>>,
    pub at_most: Option<Sp<ThresholdRaw>>,
    /// Only boards carrying these labels.
    pub boards: Option<Labels>,
    /// Only these variants.
    #[serde(default)]
    pub variants: Vec<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverrideSection {
    /// Label selector, e.g. `{ kind = "stm32-probe" }`.
    pub boards: Sp<Labels>,
    pub run: RunSection,
}

// ---------------------------------------------------------------------------------------------
// Rig

/// A Gauntlet rig: the boards of a lab and how to reach and measure them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Gauntlet rig")]
pub(crate) struct RigFile {
    /// Another rig file this one builds on (same merge rules as scenarios).
    #[allow(dead_code)]
    pub extends: Option<String>,
    pub rig: RigSection,
    pub boards: Sp<Vec<Sp<BoardSection>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RigSection {
    pub name: String,
    /// Boards driven at once (default: all).
    pub max_parallel: Option<Sp<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BoardSection {
    /// Unique within the rig.
    pub id: Sp<String>,
    #[schemars(extend("enum" = ["local", "linux-ssh", "jetson", "linux-tcp", "linux-serial", "stm32-probe", "qemu-stm32"]))]
    pub kind: Sp<String>,
    /// Free-form labels for selectors; `kind` and `platform` (`linux` or `mcu`) are added
    /// automatically and cannot be set here.
    #[serde(default)]
    pub labels: Sp<Labels>,
    /// How to reach the board; which keys apply depends on `kind`.
    pub connection: Option<Sp<ConnectionSection>>,
    pub power: Option<Sp<PowerSection>>,
    pub power_switch: Option<Sp<PowerSwitchSection>>,
    pub timeouts: Option<TimeoutsSection>,
    /// linux-ssh, jetson: what in the pre-run health check takes the board out of the run
    /// (anything else found is recorded as a warning).
    pub health: Option<Sp<HealthSection>>,
    /// Linux boards: a libonnxruntime.so on this host for the agent's onnxruntime, tried before
    /// ORT_DYLIB_PATH, the Python wheel and the system library path (relative to this file).
    pub onnxruntime: Option<Sp<String>>,
    /// Linux boards: the CPUs the agent and its runtime's threads are held to, e.g. [3], so the
    /// board's other work (its OS, samplers, the harness on a local board) stays off the model's
    /// cores. Default: wherever the board's scheduler puts them.
    pub cpus: Option<Sp<Vec<Sp<i64>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthSection {
    /// Warnings that refuse the board instead: "busy" (load average over 0.5 per core),
    /// "throttled" (Raspberry Pi throttling or under-voltage flags), "governor" (not
    /// `performance`).
    pub refuse: Option<Sp<Vec<Sp<String>>>>,
    /// Refuse a board with any thermal zone hotter than this, in °C.
    pub max_temperature_c: Option<Sp<f64>>,
    /// Refuse a board with less free disk than this where the cache lives, e.g. "200MiB".
    pub min_free_disk: Option<Sp<String>>,
}

impl<T: Default> Default for Sp<T> {
    fn default() -> Self {
        Sp {
            span: 0..0,
            value: T::default(),
        }
    }
}

/// One flat table for every kind; a key that does not apply to the board's kind is an error.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionSection {
    /// local: "bundled" (the agent built beside `gauntlet`) or a path to an agent binary.
    pub agent: Option<Sp<String>>,
    /// local: "stdio" (default), "tcp", or `{ serial = { host = "/dev/pts/3", agent = "/dev/pts/4", baud = 115200 } }`.
    pub transport: Option<Sp<KeywordOr<TransportTable>>>,
    /// linux-ssh, jetson: host name or address.
    pub host: Option<Sp<String>>,
    /// linux-ssh, jetson.
    pub user: Option<Sp<String>>,
    /// linux-ssh, jetson.
    pub port: Option<Sp<i64>>,
    /// linux-ssh, jetson: private key file (`~/` expands to $HOME).
    pub identity: Option<Sp<String>>,
    /// linux-ssh, jetson: "strict" (default), "accept-new" or `{ file = "path" }`.
    pub known_hosts: Option<Sp<KeywordOr<KnownHostsTable>>>,
    /// linux-ssh, jetson: extra OpenSSH `-o Key=Value` options.
    pub options: Option<Sp<Vec<String>>>,
    /// linux-ssh, jetson: remote cache directory (default ".cache/gauntlet").
    pub cache_dir: Option<Sp<String>>,
    /// linux-ssh, jetson: target triple of the board (default "aarch64-unknown-linux-gnu").
    pub arch: Option<Sp<String>>,
    /// linux-tcp: `host:port` of a listening agent.
    pub address: Option<Sp<String>>,
    /// linux-tcp: shared token (prefer `token_env`).
    pub token: Option<Sp<String>>,
    /// linux-tcp: environment variable holding the token.
    pub token_env: Option<Sp<String>>,
    /// linux-serial: serial device the agent listens on, as seen by the host.
    pub device: Option<Sp<String>>,
    /// linux-serial, stm32-probe: baud rate (default 115200).
    pub baud: Option<Sp<i64>>,
    /// stm32-probe: probe selector `VID:PID[:serial]` in hex, e.g. "0483:374b".
    pub probe: Option<Sp<String>>,
    /// stm32-probe: probe-rs chip name, e.g. "STM32F446RETx".
    pub chip: Option<Sp<String>>,
    /// stm32-probe: the firmware's UART as seen by the host, e.g. /dev/serial/by-id/….
    pub uart: Option<Sp<String>>,
    /// qemu-stm32: QEMU machine, e.g. "netduinoplus2".
    pub machine: Option<Sp<String>>,
    /// qemu-stm32: QEMU program (default "qemu-system-arm", looked up on PATH).
    pub qemu: Option<Sp<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransportTable {
    pub serial: Sp<SerialPairSection>,
}

impl Keywords for TransportTable {
    const KEYWORDS: &'static [&'static str] = &["stdio", "tcp"];
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SerialPairSection {
    /// The side the harness opens.
    pub host: String,
    /// The side the agent is started on.
    pub agent: String,
    pub baud: Option<Sp<i64>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KnownHostsTable {
    pub file: String,
}

impl Keywords for KnownHostsTable {
    const KEYWORDS: &'static [&'static str] = &["strict", "accept-new"];
}

/// One flat table for every sensor type; a key that does not apply to `type` is an error.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PowerSection {
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["ina219", "jetson-rails", "simulated"]))]
    pub kind: Sp<String>,
    /// ina219: I2C bus device on the controller, e.g. "/dev/i2c-1".
    pub i2c_bus: Option<Sp<String>>,
    /// ina219: 7-bit address, 0x40–0x4F.
    pub address: Option<Sp<i64>>,
    /// ina219: shunt resistance in ohms (> 0).
    pub shunt_ohms: Option<Sp<f64>>,
    /// ina219: largest expected current in amperes (default 0.32 V / shunt_ohms, the PGA's full range).
    pub max_current_a: Option<Sp<f64>>,
    /// ina219: "9bit", "10bit", "11bit", "12bit" (default) or "avg2" … "avg128".
    pub adc: Option<Sp<String>>,
    /// Samples per second (default: the sensor's fastest for ina219, 100 for jetson-rails,
    /// 1000 for simulated).
    pub sample_hz: Option<Sp<f64>>,
    /// jetson-rails: hwmon directory of the INA3221.
    pub hwmon: Option<Sp<String>>,
    /// jetson-rails: rail labels to read, e.g. ["VDD_IN"].
    pub rails: Option<Sp<Vec<String>>>,
    /// simulated: power when idle, in watts.
    pub idle_watts: Option<Sp<f64>>,
    /// simulated: power while inferring, in watts.
    pub active_watts: Option<Sp<f64>>,
    /// simulated: supply voltage (default 5).
    pub bus_volts: Option<Sp<f64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PowerSwitchSection {
    /// Program and arguments; "on" or "off" is appended.
    pub command: Sp<Vec<String>>,
    /// Pause between off and on (default "500ms").
    pub off_on_delay: Option<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeoutsSection {
    /// Default "10s".
    pub connect: Option<Sp<String>>,
    /// Default "120s".
    pub deploy: Option<Sp<String>>,
    /// Default "60s".
    pub load: Option<Sp<String>>,
    /// One inference request; default "30s".
    pub batch: Option<Sp<String>>,
}
