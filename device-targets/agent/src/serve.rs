//! The agent's side of a session: answers wire requests with the runtime, over any byte stream.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use gauntlet_wire::{
    AgentHello, Capabilities, ErrorKind, FrameDecoder, InferRequest, InferResponse, ModelFormat,
    ModelHeader, ModelLoaded, ModelSource, PROTOCOL_VERSION, Request, Response, RuntimeDetails,
    RuntimeReport, TimingSource, WireError, encode_frame,
};
use sha2::{Digest, Sha256};

use crate::facts;
use crate::runtime::{
    GraphOptimization, LoadOptions, LoadedModel, Runtime, RuntimeError, RuntimeSettings,
};

/// A model may be large, but a request never legitimately exceeds chunk or window sizes by much.
const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;
/// Until a hello is accepted only a hello may arrive, and it is small: a peer that has not
/// authenticated cannot make the agent buffer more than this.
const HELLO_FRAME_BYTES: usize = 4 * 1024;

/// Hellos a connection may have refused (wrong token or protocol) before the agent closes it.
pub const MAX_REFUSED_HELLOS: u32 = 3;
/// Wait before answering a wrong token, so guessing costs time on every connection.
const WRONG_TOKEN_BACKOFF: Duration = Duration::from_millis(250);
/// On network transports (a token is required), a connection that has not authenticated within
/// this is closed: a hello follows a connect at once, and an idle stranger holds no session.
pub const HELLO_DEADLINE: Duration = Duration::from_secs(5);

/// The stream buffers requests while one runs, so the host may keep several in flight.
const CAPABILITIES: Capabilities = Capabilities {
    max_request_bytes: MAX_FRAME_BYTES as u32,
    pipeline_depth: 16,
    models: ModelSource::Upload,
    machine_state: true,
};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("read from the host: {0}")]
    Read(io::Error),
    #[error("write to the host: {0}")]
    Write(io::Error),
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// An authenticated host asked the agent to stop.
    Shutdown,
    /// The host ended its session; the agent may serve others.
    Ended,
    /// The host closed the stream.
    Closed,
    /// The agent closed a connection that did not authenticate: too many refused hellos, or on a
    /// network transport no accepted hello within [`HELLO_DEADLINE`].
    Refused,
}

pub struct ServeConfig {
    /// Required in `Hello` when set (network transports).
    pub token: Option<String>,
    /// Filesystem root for board facts; `/` except in tests.
    pub facts_root: std::path::PathBuf,
}

struct PendingLoad {
    header: ModelHeader,
    bytes: Vec<u8>,
}

/// Where a session stands: nothing but a hello is obeyed before one is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Awaiting { refused: u32 },
    Granted,
}

struct Session<'r, R: Runtime + ?Sized> {
    runtime: &'r R,
    config: &'r ServeConfig,
    auth: Auth,
    pending: Option<PendingLoad>,
    slots: HashMap<u8, Box<dyn LoadedModel>>,
    epoch: Instant,
    scratch: Vec<f32>,
}

/// Serves one session: reads requests from `input` until the host ends the session, shuts the
/// agent down, closes the stream, or fails to authenticate.
pub fn serve<R: Runtime + ?Sized>(
    runtime: &R,
    config: &ServeConfig,
    mut input: impl Read,
    output: impl Write,
) -> Result<SessionEnd, ServeError> {
    let mut output = io::BufWriter::with_capacity(64 * 1024, output);
    let mut session = Session {
        runtime,
        config,
        auth: Auth::Awaiting { refused: 0 },
        pending: None,
        slots: HashMap::new(),
        epoch: Instant::now(),
        scratch: Vec::new(),
    };
    let mut decoder = FrameDecoder::new(HELLO_FRAME_BYTES);
    let mut buf = vec![0u8; 64 * 1024];
    let mut frame = Vec::new();
    loop {
        // Transports with a read timeout wake here now and then, so a silent stranger is noticed.
        if config.token.is_some()
            && session.auth != Auth::Granted
            && session.epoch.elapsed() > HELLO_DEADLINE
        {
            return Ok(SessionEnd::Refused);
        }
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(SessionEnd::Closed),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                continue;
            }
            Err(e) => return Err(ServeError::Read(e)),
        };
        decoder.extend(&buf[..n]);
        while let Some(message) = decoder.next_message::<Request>() {
            let (response, end) = match message {
                Ok(request) => session.handle(request),
                Err(e) => (
                    error(ErrorKind::Protocol, format!("dropped a corrupt frame: {e}")),
                    None,
                ),
            };
            if session.auth == Auth::Granted {
                decoder.set_limit(MAX_FRAME_BYTES);
            }
            frame.clear();
            encode_frame(&response, &mut frame);
            output.write_all(&frame).map_err(ServeError::Write)?;
            // Each answer leaves at once, even with more requests already read: the host sends
            // the next request when an answer comes back, and answers held until the last of a
            // burst is done would leave the pipeline empty for a whole round trip after it.
            output.flush().map_err(ServeError::Write)?;
            if let Some(end) = end {
                return Ok(end);
            }
        }
    }
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(WireError {
        kind,
        message: message.into(),
    })
}

fn memory(root: &Path) -> gauntlet_wire::MemoryFacts {
    match facts::memory_facts(root) {
        Ok(m) => gauntlet_wire::MemoryFacts {
            rss_kib: Some(m.rss_kib),
            peak_rss_kib: Some(m.peak_rss_kib),
            ..Default::default()
        },
        Err(_) => gauntlet_wire::MemoryFacts::default(),
    }
}

/// Compares without an early exit, so response timing does not reveal how much of a token matched.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// What each runtime's check found, as the hello reports it.
fn runtime_reports(runtime: &(impl Runtime + ?Sized)) -> Vec<RuntimeReport> {
    runtime
        .inventory()
        .into_iter()
        .map(|(name, found)| RuntimeReport {
            name: name.into(),
            status: found
                .map(|info| RuntimeDetails {
                    version: info.version,
                    providers: info.providers,
                    library_sha256: info.library_sha256,
                })
                .map_err(|e| e.to_string()),
        })
        .collect()
}

impl<R: Runtime + ?Sized> Session<'_, R> {
    /// The response, and whether the session ends with it.
    fn handle(&mut self, request: Request) -> (Response, Option<SessionEnd>) {
        match request {
            Request::Hello {
                protocol_version,
                token,
            } => self.hello(protocol_version, token),
            _ if self.auth != Auth::Granted => (
                error(
                    ErrorKind::Protocol,
                    "the session must start with an accepted hello; nothing else is obeyed before it",
                ),
                None,
            ),
            Request::Shutdown => (Response::Goodbye, Some(SessionEnd::Shutdown)),
            Request::EndSession => (Response::Goodbye, Some(SessionEnd::Ended)),
            request => (self.obey(request), None),
        }
    }

    /// A request of an authenticated session.
    fn obey(&mut self, request: Request) -> Response {
        match request {
            Request::Hello { .. } | Request::Shutdown | Request::EndSession => {
                unreachable!("handled by the session's state")
            }
            Request::LoadBegin(header) => self.load_begin(header),
            Request::LoadChunk { offset, bytes } => self.load_chunk(offset, bytes),
            Request::LoadCommit => self.load_commit(),
            Request::UseBuiltin { name, .. } => error(
                ErrorKind::NoModel,
                format!("this agent has no built-in model `{name}`; send it with a load"),
            ),
            Request::Infer(infer) => self.infer(infer),
            Request::Memory => Response::Memory(memory(&self.config.facts_root)),
            Request::MachineState => {
                Response::MachineState(crate::machine::machine_state(&self.config.facts_root))
            }
            Request::Mark(marker) => Response::Marked {
                marker,
                device_time_ns: self.epoch.elapsed().as_nanos() as u64,
            },
        }
    }

    /// A refused hello takes authentication away and counts towards closing the connection.
    fn refuse(&mut self, response: Response) -> (Response, Option<SessionEnd>) {
        let refused = match self.auth {
            Auth::Awaiting { refused } => refused + 1,
            Auth::Granted => 1,
        };
        self.auth = Auth::Awaiting { refused };
        let end = (refused >= MAX_REFUSED_HELLOS).then_some(SessionEnd::Refused);
        (response, end)
    }

    fn hello(
        &mut self,
        protocol_version: u16,
        token: Option<String>,
    ) -> (Response, Option<SessionEnd>) {
        if protocol_version != PROTOCOL_VERSION {
            return self.refuse(error(
                ErrorKind::VersionMismatch {
                    device: PROTOCOL_VERSION,
                },
                format!(
                    "host speaks protocol {protocol_version}, this agent speaks {PROTOCOL_VERSION}"
                ),
            ));
        }
        if let Some(expected) = &self.config.token
            && !token.is_some_and(|t| same_secret(&t, expected))
        {
            std::thread::sleep(WRONG_TOKEN_BACKOFF);
            return self.refuse(error(
                ErrorKind::Unauthorized,
                format!(
                    "missing or wrong token (the connection is closed after {MAX_REFUSED_HELLOS} refused hellos)"
                ),
            ));
        }
        self.auth = Auth::Granted;
        (Response::Hello(self.agent_hello()), None)
    }

    fn agent_hello(&self) -> AgentHello {
        let facts = facts::board_facts(&self.config.facts_root).ok();
        AgentHello {
            protocol_version: PROTOCOL_VERSION,
            agent: "gauntlet-agent".into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            facts: gauntlet_wire::BoardFacts {
                arch: std::env::consts::ARCH.into(),
                cpu_model: facts.as_ref().and_then(|f| f.cpu_model.clone()),
                cores: facts.as_ref().map(|f| f.logical_cores),
                ram_kib: facts.as_ref().map(|f| f.ram_total_kib),
                os: facts.as_ref().and_then(|f| f.os.clone()),
                kernel: facts.as_ref().and_then(|f| f.kernel.clone()),
                cpu_governor: facts.as_ref().and_then(|f| f.cpu_governor.clone()),
                clock_hz: None,
                cpu_features: facts.map(|f| f.cpu_features).unwrap_or_default(),
            },
            timing: TimingSource::MonotonicClock,
            runtimes: runtime_reports(self.runtime),
            capabilities: CAPABILITIES,
        }
    }

    fn load_begin(&mut self, header: ModelHeader) -> Response {
        if header.format != ModelFormat::Onnx {
            return error(
                ErrorKind::ModelLoad,
                format!("this agent runs ONNX models, not {:?}", header.format),
            );
        }
        let capacity = header.size as usize;
        self.pending = Some(PendingLoad {
            header,
            bytes: Vec::with_capacity(capacity),
        });
        Response::ChunkAck { received: 0 }
    }

    fn load_chunk(&mut self, offset: u32, bytes: Vec<u8>) -> Response {
        let Some(pending) = &mut self.pending else {
            return error(ErrorKind::Protocol, "model chunk before load-begin");
        };
        if offset as usize != pending.bytes.len() {
            return error(
                ErrorKind::Protocol,
                format!(
                    "model chunk at offset {offset}, expected {}",
                    pending.bytes.len()
                ),
            );
        }
        if pending.bytes.len() + bytes.len() > pending.header.size as usize {
            return error(
                ErrorKind::Protocol,
                format!(
                    "model chunks exceed the announced {} bytes",
                    pending.header.size
                ),
            );
        }
        pending.bytes.extend_from_slice(&bytes);
        Response::ChunkAck {
            received: pending.bytes.len() as u32,
        }
    }

    fn load_commit(&mut self) -> Response {
        let Some(PendingLoad { header, bytes }) = self.pending.take() else {
            return error(ErrorKind::Protocol, "load-commit before load-begin");
        };
        if bytes.len() != header.size as usize {
            return error(
                ErrorKind::Checksum,
                format!("received {} of {} model bytes", bytes.len(), header.size),
            );
        }
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if digest != header.sha256 {
            return error(
                ErrorKind::Checksum,
                "model bytes do not match the announced SHA-256",
            );
        }
        // A reload of a slot frees the old model first, so peak memory reflects one model.
        self.slots.remove(&header.slot);
        let options = LoadOptions {
            input_name: header.input.clone(),
            window_shape: header.window_shape.iter().map(|&d| d as usize).collect(),
            output: header.output.clone(),
            runtime: RuntimeSettings {
                name: header.runtime.name.clone(),
                threads: header.runtime.intra_threads as usize,
                optimization: match GraphOptimization::from_keyword(&header.runtime.optimization) {
                    Some(g) => g,
                    None => {
                        return error(
                            ErrorKind::ModelLoad,
                            format!(
                                "unknown graph optimisation level `{}` (known: {})",
                                header.runtime.optimization,
                                GraphOptimization::KEYWORDS.join(", ")
                            ),
                        );
                    }
                },
                providers: header.runtime.providers.clone(),
            },
        };
        let memory_before = memory(&self.config.facts_root);
        let (loaded, took) = facts::timed(|| self.runtime.load(&bytes, &options));
        drop(bytes);
        let model = match loaded {
            Ok(model) => model,
            Err(e) => return runtime_error(e),
        };
        let input_len = options.window_shape.iter().product::<usize>() as u32;
        let output_len = model.info().output_len as u32;
        self.slots.insert(header.slot, model);
        Response::Loaded(ModelLoaded {
            load_time_us: took.as_micros() as u64,
            input_len,
            output_len,
            memory_before,
            memory_after: memory(&self.config.facts_root),
        })
    }

    fn infer(&mut self, request: InferRequest) -> Response {
        let Some(model) = self.slots.get_mut(&request.slot) else {
            return error(
                ErrorKind::NoModel,
                format!("no model loaded in slot {}", request.slot),
            );
        };
        let window_len = request.window_len as usize;
        if window_len == 0 || !request.data.len().is_multiple_of(window_len) {
            return error(
                ErrorKind::ShapeMismatch {
                    expected: window_len as u32,
                    got: request.data.len() as u32,
                },
                format!(
                    "{} input values do not split into windows of {window_len}",
                    request.data.len()
                ),
            );
        }
        let windows = request.windows();
        let output_len = model.info().output_len;
        let mut outputs = Vec::with_capacity(windows * output_len);
        let mut device_time_ns = Vec::with_capacity(windows);
        for window in request.data.chunks_exact(window_len) {
            let start = Instant::now();
            let result = model.run(window, &mut self.scratch);
            let took = start.elapsed();
            if let Err(e) = result {
                return runtime_error(e);
            }
            device_time_ns.push(took.as_nanos() as u64);
            outputs.extend_from_slice(&self.scratch);
        }
        Response::Outputs(InferResponse {
            seq: request.seq,
            output_len: output_len as u32,
            outputs,
            device_time_ns,
        })
    }
}

fn runtime_error(e: RuntimeError) -> Response {
    let kind = match &e {
        RuntimeError::UnsupportedOperator { op, domain, .. } => ErrorKind::UnsupportedOperator {
            op: match domain {
                Some(d) => format!("{d}.{op}"),
                None => op.clone(),
            },
        },
        RuntimeError::ShapeMismatch { .. } | RuntimeError::WindowLength { .. } => {
            let (expected, got) = match &e {
                RuntimeError::WindowLength { expected, got, .. } => (*expected as u32, *got as u32),
                _ => (0, 0),
            };
            ErrorKind::ShapeMismatch { expected, got }
        }
        RuntimeError::UnknownInput { .. }
        | RuntimeError::AmbiguousInput { .. }
        | RuntimeError::UnknownOutput { .. }
        | RuntimeError::Load { .. } => ErrorKind::ModelLoad,
        RuntimeError::Run { .. } => ErrorKind::Inference,
        RuntimeError::RuntimeUnavailable { runtime, .. } => ErrorKind::RuntimeUnavailable {
            runtime: runtime.clone(),
        },
        RuntimeError::ProviderUnavailable { provider, .. } => ErrorKind::ProviderUnavailable {
            provider: provider.clone(),
        },
    };
    error(kind, e.to_string())
}
