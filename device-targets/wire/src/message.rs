use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// Host → device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// First message of every session; the device answers [`Response::Hello`] or a
    /// [`ErrorKind::VersionMismatch`] / [`ErrorKind::Unauthorized`] error. Until it has accepted
    /// one, a device obeys no other request (not even `Shutdown`), and a listening agent closes
    /// the connection after a few refused hellos.
    Hello {
        protocol_version: u16,
        /// Shared secret for transports reachable by others (TCP); `None` on private links.
        token: Option<String>,
    },
    /// Starts a model load; chunks follow, then [`Request::LoadCommit`].
    LoadBegin(ModelHeader),
    LoadChunk {
        offset: u32,
        bytes: Vec<u8>,
    },
    /// Checks size and SHA-256 of the received bytes and loads the model.
    LoadCommit,
    /// Uses the model the device already holds (firmware with the model baked in) in `slot`.
    UseBuiltin {
        slot: u8,
        name: String,
    },
    Infer(InferRequest),
    /// Current memory figures.
    Memory,
    /// What the operating system says about the machine now (load, CPU time, clocks,
    /// throttling, temperature). Asked only of devices whose capabilities declare
    /// `machine_state`; the host asks at every block boundary.
    MachineState,
    /// Energy-window boundary, answered with the device's own timestamp.
    Mark(Marker),
    /// Stops the device: a listening agent answers [`Response::Goodbye`] and exits, ending every
    /// session. Obeyed only once the session is authenticated.
    Shutdown,
    /// Ends this session only; the device answers [`Response::Goodbye`] and closes the stream. A
    /// listening agent goes on serving other and later sessions.
    EndSession,
}

/// Device → host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Hello(AgentHello),
    ChunkAck { received: u32 },
    Loaded(ModelLoaded),
    Outputs(InferResponse),
    Memory(MemoryFacts),
    MachineState(MachineState),
    Marked { marker: Marker, device_time_ns: u64 },
    Error(WireError),
    Goodbye,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentHello {
    pub protocol_version: u16,
    /// Program name, e.g. `gauntlet-agent` or `gauntlet-stm32`.
    pub agent: String,
    pub agent_version: String,
    pub facts: BoardFacts,
    pub timing: TimingSource,
    /// Inference runtimes the device has (and those it lacks, with why); empty on firmware,
    /// whose engine is built in.
    pub runtimes: Vec<RuntimeReport>,
    /// What the host may ask of this device; the device is the one owner of its limits.
    pub capabilities: Capabilities,
}

/// One runtime as the device found it at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeReport {
    /// `tract`, `onnxruntime`.
    pub name: String,
    /// `Ok` with what the runtime is, or `Err` with why it cannot run here.
    pub status: Result<RuntimeDetails, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeDetails {
    pub version: String,
    /// Execution providers it can use, short lowercase names (`cpu`, `cuda` …).
    pub providers: Vec<String>,
    /// SHA-256 of the shared library it runs from, when it is one.
    pub library_sha256: Option<[u8; 32]>,
}

/// The device's limits and how it gets its models, declared in its hello so the host sizes
/// requests from what the device says rather than from a copy of its constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Largest encoded request frame the device accepts, bytes.
    pub max_request_bytes: u32,
    /// Requests the device accepts before it answers the first (1: it reads its link only
    /// between requests, as firmware on a UART with a one-byte receive register must).
    pub pipeline_depth: u8,
    pub models: ModelSource,
    /// Whether the device answers [`Request::MachineState`]: an operating system to read it from.
    pub machine_state: bool,
}

/// How a device comes to hold the model it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelSource {
    /// Sent by the host in chunks ([`Request::LoadBegin`] …).
    Upload,
    /// Built into the firmware image ([`Request::UseBuiltin`]).
    BuiltIn,
}

impl Capabilities {
    /// Windows of `window_len` floats that fit in one [`Request::Infer`] (at least 1).
    pub fn windows_per_request(&self, window_len: usize) -> usize {
        // COBS adds one byte in 254, postcard at most 5 bytes per length and the CRC 4; 64 bytes
        // covers the fixed fields with room to spare.
        let payload = u64::from(self.max_request_bytes).saturating_sub(64) * 254 / 255;
        (payload / (window_len as u64 * 4).max(1)).max(1) as usize
    }
}

/// Facts the device knows about itself; `None` where it cannot read them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BoardFacts {
    pub arch: String,
    pub cpu_model: Option<String>,
    pub cores: Option<u32>,
    pub ram_kib: Option<u64>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub cpu_governor: Option<String>,
    /// Core clock in Hz where the device knows it (MCUs).
    pub clock_hz: Option<u32>,
    /// The CPU extensions among those that pick a runtime's int8 and fp16 kernels, as the OS
    /// names them (x86 `flags`, ARM `Features`); empty where it does not say.
    pub cpu_features: Vec<String>,
}

/// The machine at one moment, as the device's operating system exposes it; `None` or empty
/// where it does not (no cpufreq in a virtual machine, no thermal zones, not a Raspberry Pi).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MachineState {
    /// One-minute load average.
    pub load_1m: Option<f64>,
    /// CPU time of all cores since boot, in clock ticks: counters, so the host takes the share
    /// stolen over an interval from two readings.
    pub cpu_ticks: Option<CpuTicks>,
    /// Current frequency of each core that reports one, kHz.
    pub freq_khz: Vec<u32>,
    /// Each distinct cpufreq governor, in core order.
    pub governors: Vec<String>,
    /// Raspberry Pi firmware's throttling flags (`get_throttled`); bits 0–3 are the present state.
    pub throttled: Option<u32>,
    /// The hottest thermal zone, °C.
    pub max_temperature_c: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CpuTicks {
    /// Every state /proc/stat counts (user … steal), guest time excluded as it is inside user.
    pub total: u64,
    /// Time the hypervisor ran something else while this machine wanted the CPU.
    pub steal: u64,
}

/// How the device's own inference times are taken, so reports can label them honestly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimingSource {
    /// A monotonic clock on real hardware.
    MonotonicClock,
    /// A cycle or tick counter on real silicon.
    CycleCounter,
    /// An emulator's instruction-count time (e.g. QEMU `-icount`): not silicon cycles.
    EmulatedTicks,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    /// Which of the device's model slots to fill; several builds stay loaded for A/B interleaving.
    pub slot: u8,
    pub name: String,
    pub format: ModelFormat,
    pub size: u32,
    pub sha256: [u8; 32],
    /// Input tensor name; `None` takes the model's first input.
    pub input: Option<String>,
    /// Shape of one inference's input, batch dimension (1) included.
    pub window_shape: Vec<u32>,
    pub output: OutputSelector,
    pub runtime: RuntimeRequest,
}

/// Which runtime a model runs on, with the settings that matter for edge latency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeRequest {
    pub name: String,
    pub intra_threads: u16,
    /// Graph optimisation keyword (`disabled`, `basic`, `extended`, `all`).
    pub optimization: String,
    /// Execution providers in order of preference; empty = CPU.
    pub providers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelFormat {
    Onnx,
    /// Gauntlet's compact MCU model format.
    Tinyml,
}

/// Which output of a model the device returns per window. The one definition: scenarios, the
/// host's model check, the MCU compiler and every device use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputSelector {
    Index(u32),
    Name(String),
}

impl Default for OutputSelector {
    fn default() -> Self {
        OutputSelector::Index(0)
    }
}

impl core::fmt::Display for OutputSelector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OutputSelector::Index(i) => write!(f, "#{i}"),
            OutputSelector::Name(n) => write!(f, "'{n}'"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLoaded {
    /// Time from commit to a runnable model, on the device's clock.
    pub load_time_us: u64,
    /// Floats per input window.
    pub input_len: u32,
    /// Floats per output (scores of the selected output).
    pub output_len: u32,
    /// Memory before the load started and after it finished.
    pub memory_before: MemoryFacts,
    pub memory_after: MemoryFacts,
}

/// One request may carry several windows, back to back, to amortise the link's round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferRequest {
    pub slot: u8,
    pub seq: u32,
    pub window_len: u32,
    #[serde(with = "f32_le_bytes")]
    pub data: Vec<f32>,
}

/// Window data travels as one run of little-endian bytes: postcard's element-by-element encoding
/// of a float sequence was half of the link's cost per window at batch 32 (≈2 µs of each
/// CWRU window's 4 KiB, on each end).
mod f32_le_bytes {
    use alloc::vec::Vec;
    use core::fmt;
    use serde::{Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(values: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = alloc::vec![0u8; values.len() * 4];
        for (out, v) in bytes.chunks_exact_mut(4).zip(values) {
            out.copy_from_slice(&v.to_le_bytes());
        }
        s.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        struct LeFloats;
        impl de::Visitor<'_> for LeFloats {
            type Value = Vec<f32>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("little-endian f32 values, 4 bytes each")
            }

            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<f32>, E> {
                if !bytes.len().is_multiple_of(4) {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                Ok(bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect())
            }
        }
        d.deserialize_bytes(LeFloats)
    }
}

impl InferRequest {
    pub fn windows(&self) -> usize {
        if self.window_len == 0 {
            0
        } else {
            self.data.len() / self.window_len as usize
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferResponse {
    pub seq: u32,
    pub output_len: u32,
    /// `output_len` scores per window, in request order.
    pub outputs: Vec<f32>,
    /// On-device time of each inference (the runtime call only), nanoseconds.
    pub device_time_ns: Vec<u64>,
}

/// Memory figures in KiB; `None` where the device cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemoryFacts {
    pub rss_kib: Option<u64>,
    /// Peak resident set (`VmHWM` on Linux).
    pub peak_rss_kib: Option<u64>,
    /// Deepest stack use seen (MCU stack painting), bytes.
    pub stack_high_water_bytes: Option<u32>,
    /// Heap or arena in use, bytes.
    pub heap_bytes: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Marker {
    WindowStart(u32),
    WindowEnd(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    VersionMismatch {
        device: u16,
    },
    Unauthorized,
    /// A request that does not fit the conversation (e.g. a chunk before `LoadBegin`).
    Protocol,
    Checksum,
    NoModel,
    UnsupportedOperator {
        op: String,
    },
    ModelLoad,
    ShapeMismatch {
        expected: u32,
        got: u32,
    },
    Inference,
    OutOfMemory,
    Internal,
    /// The runtime a build names is not on the device.
    RuntimeUnavailable {
        runtime: String,
    },
    /// The runtime lacks an execution provider the build asks for.
    ProviderUnavailable {
        provider: String,
    },
}
