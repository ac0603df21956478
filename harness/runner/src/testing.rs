//! Doubles for testing the session engine without processes, SSH or QEMU: the agent's real
//! `serve()` runs with [`ScriptedRuntime`] on a thread, across a socket pair, and the runner gets
//! it as an ordinary [`DeviceSession`]. Only the device's runtime is scripted; framing, the
//! agent's protocol handling and the host's link are the real ones. A [`DeviceScript`] bends what
//! the device says (its capabilities, a rejection, a wrong sequence number, a link that closes,
//! corrupts or goes silent after so many bytes), and a [`DeviceLog`] records what it was asked.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gauntlet_agent::serve::{ServeConfig, serve};
use gauntlet_mcu::{DebugProbe, FakeProbe, Firmware, McuError, ProbeCall};
use gauntlet_runtime::{SCRIPTED, ScriptedRuntime};
use gauntlet_spec::{Board, BoardKind, ProbeSelector, SerialPort};
use gauntlet_wire::{
    Capabilities, FrameDecoder, MachineState, ModelFormat, ModelHeader, OutputSelector, Request,
    Response, WireError, encode_frame,
};
use sha2::{Digest, Sha256};

use crate::connect::{ConnectError, ProbeWiring, Stream};
use crate::driver::{BoardDriver, DeviceSession};
use crate::link::Link;

/// What happens to the device's output once it has sent so many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The device closes the link.
    Close,
    /// The byte at that offset arrives inverted; everything else arrives intact.
    Corrupt,
    /// The device keeps working but nothing more reaches the host.
    Hang,
}

/// How the device departs from a well-behaved agent.
#[derive(Debug, Clone, Default)]
pub struct DeviceScript {
    /// Declared in the hello instead of the agent's own capabilities.
    pub capabilities: Option<Capabilities>,
    /// The answer to the n-th inference request (0-based, over the whole session) is this error.
    pub reject_infer: Option<(usize, WireError)>,
    /// The answer to the n-th inference request carries the wrong sequence number.
    pub wrong_seq: Option<usize>,
    /// After this many bytes of answers to inference requests (counted from the first), the
    /// link fails this way: the handshake and loads always get through.
    pub cut: Option<(usize, Cut)>,
    /// Stands in for firmware with its model built in: `UseBuiltin` loads the scripted model
    /// for windows of this shape (batch 1 first) instead of being refused.
    pub builtin_window: Option<Vec<u32>>,
    /// Holds each inference answer until this many requests are in flight (for at most 100 ms,
    /// well inside the tests' batch timeouts: a block's last request may be alone in flight), so
    /// a host that pipelines is seen to, however the threads are scheduled.
    pub hold_for_in_flight: usize,
    /// Answers the device's machine-state readings in turn, the last one for every later
    /// reading, in place of what the machine running the test says.
    pub machine_states: Vec<MachineState>,
    /// Every agent process after the first says this is its version (a binary replaced on the
    /// board between replays).
    pub later_agent_version: Option<String>,
}

/// What the device was asked, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceLog {
    /// `(slot, windows)` of every inference request.
    pub infers: Vec<(u8, usize)>,
    /// Every request by name (`hello`, `infer`, …; `corrupt` for a frame that did not decode).
    pub requests: Vec<&'static str>,
    /// Encoded size of the largest inference request, bytes.
    pub largest_infer: usize,
    /// Most inference requests received and not yet answered at any one time.
    pub max_in_flight: usize,
    answered: usize,
    /// What each of the agent's coming answers is to: it answers strictly in order.
    expected: VecDeque<Answer>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Infer,
    Other,
    /// The acknowledgement of a load the double made up: the host never asked for it.
    Swallow,
}

impl DeviceLog {
    fn in_flight(&self) -> usize {
        self.infers.len() - self.answered
    }
}

type SharedLog = Arc<(Mutex<DeviceLog>, Condvar)>;

/// Opens boards of kind `local` as an in-process agent.
pub struct InProcessDriver {
    pub runtime: ScriptedRuntime,
    pub script: DeviceScript,
    log: SharedLog,
}

impl InProcessDriver {
    pub fn new(runtime: ScriptedRuntime, script: DeviceScript) -> InProcessDriver {
        InProcessDriver {
            runtime,
            script,
            log: SharedLog::default(),
        }
    }

    /// Starts a session of the device; the host's end of its stream.
    pub fn serve(&self) -> io::Result<UnixStream> {
        self.device().serve()
    }

    fn device(&self) -> InProcessDevice {
        InProcessDevice {
            runtime: self.runtime.clone(),
            script: self.script.clone(),
            log: Arc::clone(&self.log),
        }
    }

    /// What the device has been asked so far, over every session it served.
    pub fn log(&self) -> DeviceLog {
        self.log.0.lock().expect("device log").clone()
    }
}

impl BoardDriver for InProcessDriver {
    fn kind(&self) -> BoardKind {
        BoardKind::Local
    }

    fn open(
        &self,
        _board: &Board,
        _image: Option<&Firmware>,
    ) -> Result<Box<dyn DeviceSession>, ConnectError> {
        let device = self.device();
        Ok(Box::new(InProcessSession {
            link: device.link()?,
            device,
        }))
    }
}

/// What starts an in-process agent: each start a fresh `serve()`, as each local agent is a
/// fresh process.
struct InProcessDevice {
    runtime: ScriptedRuntime,
    script: DeviceScript,
    log: SharedLog,
}

impl InProcessDevice {
    fn serve(&self) -> io::Result<UnixStream> {
        serve_in_process(
            self.runtime.clone(),
            self.script.clone(),
            Arc::clone(&self.log),
        )
    }

    fn link(&self) -> Result<Link, ConnectError> {
        let host = self.serve().map_err(ConnectError::InProcess)?;
        Ok(Link::new(
            host.try_clone().map_err(ConnectError::InProcess)?,
            host,
        ))
    }
}

/// The host's end of an in-process agent.
pub struct InProcessSession {
    link: Link,
    device: InProcessDevice,
}

impl DeviceSession for InProcessSession {
    fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    fn restart_agent(&mut self, timeout: Duration) -> Option<Result<(), ConnectError>> {
        let _ = self.link.call(&Request::EndSession, timeout);
        Some(self.device.link().map(|link| self.link = link))
    }
}

/// Starts `serve()` on threads and returns the host's end of the stream. The device's threads
/// end when the host's end closes or the host shuts the device down.
fn serve_in_process(
    runtime: ScriptedRuntime,
    script: DeviceScript,
    log: SharedLog,
) -> io::Result<UnixStream> {
    let (host, device) = UnixStream::pair()?;
    // Requests pass through a logger on their way in, so what was asked is known the moment
    // it arrives, not when the single-threaded agent gets round to reading it.
    let (agent_in, mut logged) = UnixStream::pair()?;
    let mut device_in = device.try_clone()?;
    let pump_log = Arc::clone(&log);
    let builtin = script.builtin_window.clone();
    std::thread::Builder::new()
        .name("gauntlet-inproc-requests".into())
        .spawn(move || {
            let mut decoder = FrameDecoder::new(64 * 1024 * 1024);
            let mut buf = vec![0u8; 64 * 1024];
            let mut forward = Vec::new();
            while let Ok(n @ 1..) = device_in.read(&mut buf) {
                decoder.extend(&buf[..n]);
                forward.clear();
                while let Some(request) = decoder.next_message::<Request>() {
                    let (lock, changed) = &*pump_log;
                    let mut log = lock.lock().expect("device log");
                    log.requests.push(request.as_ref().map_or("corrupt", name));
                    match (request, &builtin) {
                        (Ok(Request::UseBuiltin { slot, name }), Some(shape)) => {
                            log.expected.extend([Answer::Swallow, Answer::Other]);
                            builtin_load(slot, name, shape, &mut forward);
                        }
                        (Ok(request), _) => {
                            let at = forward.len();
                            encode_frame(&request, &mut forward);
                            if let Request::Infer(infer) = &request {
                                log.largest_infer = log.largest_infer.max(forward.len() - at);
                                log.infers.push((infer.slot, infer.windows()));
                                log.max_in_flight = log.max_in_flight.max(log.in_flight());
                                log.expected.push_back(Answer::Infer);
                            } else {
                                log.expected.push_back(Answer::Other);
                            }
                        }
                        (Err(_), _) => {
                            // Passed on as a frame that fails its check, for the agent to refuse.
                            forward.extend_from_slice(&[1, 0]);
                            log.expected.push_back(Answer::Other);
                        }
                    }
                    changed.notify_all();
                }
                if logged.write_all(&forward).is_err() {
                    return;
                }
            }
            let _ = logged.shutdown(std::net::Shutdown::Write);
        })?;
    let output = ScriptedOutput {
        socket: device,
        script,
        log,
        decoder: FrameDecoder::new(64 * 1024 * 1024),
        infers: 0,
        machine_states: 0,
        sent: 0,
        frame: Vec::new(),
    };
    std::thread::Builder::new()
        .name("gauntlet-inproc-agent".into())
        .spawn(move || {
            let config = ServeConfig {
                token: None,
                facts_root: PathBuf::from("/"),
            };
            let _ = serve(&runtime, &config, agent_in, output);
        })?;
    Ok(host)
}

/// The load a firmware double makes of its "built-in" model: the scripted runtime ignores the
/// model's bytes, so an empty model with the right window shape stands in for it.
fn builtin_load(slot: u8, name: String, window_shape: &[u32], out: &mut Vec<u8>) {
    let header = ModelHeader {
        slot,
        name,
        format: ModelFormat::Onnx,
        size: 0,
        sha256: Sha256::digest([]).into(),
        input: None,
        window_shape: window_shape.to_vec(),
        output: OutputSelector::Index(0),
        runtime: gauntlet_wire::RuntimeRequest {
            name: SCRIPTED.into(),
            intra_threads: 1,
            optimization: "all".into(),
            providers: Vec::new(),
        },
    };
    encode_frame(&Request::LoadBegin(header), out);
    encode_frame(&Request::LoadCommit, out);
}

fn name(request: &Request) -> &'static str {
    match request {
        Request::Hello { .. } => "hello",
        Request::LoadBegin(_) => "load-begin",
        Request::LoadChunk { .. } => "load-chunk",
        Request::LoadCommit => "load-commit",
        Request::UseBuiltin { .. } => "use-builtin",
        Request::Infer(_) => "infer",
        Request::Memory => "memory",
        Request::MachineState => "machine-state",
        Request::Mark(_) => "mark",
        Request::Shutdown => "shutdown",
        Request::EndSession => "end-session",
    }
}

/// The agent's output stream: responses are decoded, bent by the script, encoded again and
/// sent, and the cut applied to the bytes as they leave.
struct ScriptedOutput {
    socket: UnixStream,
    script: DeviceScript,
    log: SharedLog,
    decoder: FrameDecoder,
    infers: usize,
    machine_states: usize,
    sent: usize,
    frame: Vec<u8>,
}

impl ScriptedOutput {
    /// Bends one response; `false` when it must not reach the host at all.
    fn bend(&mut self, response: &mut Response) -> bool {
        let answers = self.log.0.lock().expect("device log").expected.pop_front();
        match response {
            Response::Hello(hello) => {
                if let Some(capabilities) = self.script.capabilities {
                    hello.capabilities = capabilities;
                }
                let hellos = {
                    let log = self.log.0.lock().expect("device log");
                    log.requests.iter().filter(|&&r| r == "hello").count()
                };
                if let (Some(version), true) = (&self.script.later_agent_version, hellos > 1) {
                    hello.agent_version = version.clone();
                }
            }
            _ if answers == Some(Answer::Swallow) => return false,
            Response::MachineState(state) => {
                let n = self
                    .machine_states
                    .min(self.script.machine_states.len().saturating_sub(1));
                if let Some(scripted) = self.script.machine_states.get(n) {
                    *state = scripted.clone();
                }
                self.machine_states += 1;
            }
            _ if answers == Some(Answer::Infer) => {
                let index = self.infers;
                self.infers += 1;
                self.hold();
                if let Some((at, error)) = &self.script.reject_infer
                    && *at == index
                {
                    *response = Response::Error(error.clone());
                }
                if let Response::Outputs(out) = response
                    && self.script.wrong_seq == Some(index)
                {
                    out.seq = out.seq.wrapping_add(1000);
                }
            }
            _ => {}
        }
        true
    }

    fn hold(&mut self) {
        let (lock, changed) = &*self.log;
        let log = lock.lock().expect("device log");
        let want = self.script.hold_for_in_flight;
        let (mut log, _) = changed
            .wait_timeout_while(log, Duration::from_millis(100), |l| l.in_flight() < want)
            .expect("device log");
        log.max_in_flight = log.max_in_flight.max(log.in_flight());
        log.answered += 1;
    }

    fn emit(&mut self) -> io::Result<()> {
        let mut bytes = std::mem::take(&mut self.frame);
        let start = self.sent;
        if self.infers > 0 {
            self.sent += bytes.len();
        }
        let result = match self.script.cut {
            Some((at, cut)) if at < self.sent => {
                let keep = at.saturating_sub(start);
                match cut {
                    Cut::Close => {
                        let _ = self.socket.write_all(&bytes[..keep]);
                        let _ = self.socket.shutdown(std::net::Shutdown::Both);
                        Err(io::Error::from(io::ErrorKind::BrokenPipe))
                    }
                    Cut::Corrupt => {
                        if at >= start {
                            bytes[keep] = !bytes[keep];
                        }
                        self.socket.write_all(&bytes)
                    }
                    Cut::Hang => self.socket.write_all(&bytes[..keep]),
                }
            }
            _ => self.socket.write_all(&bytes),
        };
        bytes.clear();
        self.frame = bytes;
        result
    }
}

impl Write for ScriptedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.decoder.extend(buf);
        while let Some(response) = self.decoder.next_message::<Response>() {
            let mut response = response.map_err(|e| io::Error::other(e.to_string()))?;
            if self.bend(&mut response) {
                encode_frame(&response, &mut self.frame);
                self.emit()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

/// A probe board wired to doubles: [`FakeProbe`] takes the flash and the reset, and the UART
/// reaches an in-process device that prints `READY` first, as the firmware does after a reset.
pub struct FakeWiring {
    pub probe: Arc<Mutex<FakeProbe>>,
    pub device: InProcessDriver,
}

impl FakeWiring {
    /// The probe calls so far.
    pub fn calls(&self) -> Vec<ProbeCall> {
        self.probe.lock().expect("fake probe").calls.clone()
    }
}

/// The one fake probe of a [`FakeWiring`], lent to each session.
struct SharedProbe(Arc<Mutex<FakeProbe>>);

impl DebugProbe for SharedProbe {
    fn flash(&mut self, elf: &Path, verify: bool) -> Result<(), McuError> {
        self.0.lock().expect("fake probe").flash(elf, verify)
    }

    fn reset(&mut self) -> Result<(), McuError> {
        self.0.lock().expect("fake probe").reset()
    }
}

impl ProbeWiring for FakeWiring {
    fn probe(&self, _probe: &ProbeSelector, _chip: &str) -> Result<Box<dyn DebugProbe>, McuError> {
        Ok(Box::new(SharedProbe(Arc::clone(&self.probe))))
    }

    fn uart(&self, _uart: &SerialPort, _timeout: Duration) -> Result<Stream, ConnectError> {
        let host = self.device.serve().map_err(ConnectError::InProcess)?;
        let reader = io::Cursor::new(&b"\r\nREADY gauntlet-stm32\r\n"[..])
            .chain(host.try_clone().map_err(ConnectError::InProcess)?);
        Ok((Box::new(reader), Box::new(host)))
    }
}
