//! One session per board, boards in parallel: connect, handshake, load every build, then replay
//! the dataset through the builds of each model interleaved in blocks (A B A B …), so drift and
//! background load hit every variant alike.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::{Duration, Instant};

use gauntlet_results::RejectionKind;
use gauntlet_spec::{Board, Pacing};
use gauntlet_wire::{
    ErrorKind, InferRequest, LOAD_CHUNK_BYTES, ModelFormat, ModelHeader, ModelSource,
    PROTOCOL_VERSION, Request, Response, WireError,
};

use crate::connect::ConnectError;
use crate::driver::{BoardDriver, DRIVERS, DeviceSession, driver_for};
use crate::events::{Event, EventSink};
use crate::fence::{BoardFence, Unfenced};
use crate::link::LinkError;
use crate::mcu::Prepared;
use crate::plan::{Plan, PlannedBuild, PlannedModel};
use crate::power::PowerMonitor;
use crate::record::*;
use crate::thermal::TemperatureSampler;
use gauntlet_mcu::McuBoard;
use gauntlet_power::{MeasuredWindow, Window};
use gauntlet_wire::Marker;

/// Requests in flight at once, where the device takes that many: one being computed and three
/// waiting, so the link's round trip and the host's own wake-ups hide behind the device's work.
/// With two, a 50 µs model at batch 1 sat idle between requests on a loaded 2-core machine.
pub const PIPELINE_DEPTH: usize = 4;

/// Runs the plan on every board at once; a failing board never stops the others.
///
/// One OS thread per board, not an async runtime: every board's work is blocking (OpenSSH child
/// processes, pipes, serial ports, the link's reader thread), so tokio would only move it onto
/// `spawn_blocking` threads — the same threads, plus a runtime. A rig has a handful of boards, not
/// thousands of connections, and each deadline is enforced where it is waited for.
pub fn run_plan(plan: &Plan, events: &dyn EventSink) -> RunRecord {
    run_plan_with(plan, DRIVERS, events, &Unfenced)
}

/// [`run_plan`] on boards the run may lose mid-run (leases of a shared lab): a board whose
/// `fence` is revoked stops at the next block.
pub fn run_plan_fenced(plan: &Plan, events: &dyn EventSink, fence: &dyn BoardFence) -> RunRecord {
    run_plan_with(plan, DRIVERS, events, fence)
}

/// [`run_plan_fenced`] with boards opened by `drivers` instead of [`DRIVERS`] (in-process
/// doubles).
pub fn run_plan_with(
    plan: &Plan,
    drivers: &[&dyn BoardDriver],
    events: &dyn EventSink,
    fence: &dyn BoardFence,
) -> RunRecord {
    let started = Instant::now();
    let boards = std::thread::scope(|scope| {
        let handles: Vec<_> = plan
            .boards
            .iter()
            .map(|board| {
                scope.spawn(move || {
                    let started = Instant::now();
                    let mut record = match driver_for(drivers, board) {
                        Ok(driver) => run_board(plan, board, driver, events, fence),
                        Err(e) => failed_board(plan, board, Stage::Connect, e.to_string()),
                    };
                    record.session = Some(started.elapsed());
                    record
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(&plan.boards)
            .map(|(h, board)| {
                h.join().unwrap_or_else(|_| {
                    failed_board(
                        plan,
                        board,
                        Stage::Replay,
                        "the board's session panicked".into(),
                    )
                })
            })
            .collect()
    });
    RunRecord {
        boards,
        wall: started.elapsed(),
    }
}

fn not_run(build: &PlannedBuild) -> BuildRecord {
    BuildRecord {
        model: build.model.clone(),
        variant: build.variant.clone(),
        reference: build.reference,
        champion: build.champion,
        artifact: build.artifact.clone(),
        sha256: hex::encode(build.sha256),
        size_bytes: build.bytes.len() as u64,
        runtime: build.runtime.clone(),
        outcome: BuildOutcome::NotRun,
        loaded: None,
        timing: None,
        warmup: 0,
        device_ns: Vec::new(),
        blocks: Vec::new(),
        requests: Vec::new(),
        outputs: Vec::new(),
        output_len: 0,
        energy_inferences: 0,
        energy_windows: Vec::new(),
        throughput_windows: Vec::new(),
        firmware: None,
        memory_end: None,
    }
}

/// Every build of the plan, none of them started.
fn all_not_run(plan: &Plan) -> Vec<BuildRecord> {
    plan.models
        .iter()
        .flat_map(|m| m.builds.iter().map(not_run))
        .collect()
}

fn failed_board(plan: &Plan, board: &Board, stage: Stage, reason: String) -> BoardRecord {
    BoardRecord {
        outcome: BoardOutcome::InfraFailed { stage, reason },
        builds: all_not_run(plan),
        ..empty_record(board)
    }
}

fn empty_record(board: &Board) -> BoardRecord {
    BoardRecord {
        board: board.id.clone(),
        kind: board.kind,
        hello: None,
        outcome: BoardOutcome::Completed,
        builds: Vec::new(),
        memory_end: None,
        power: None,
        health: None,
        deployment: None,
        temperatures: None,
        session: None,
        machine: Vec::new(),
        fresh_agents: 0,
    }
}

/// Why a board session stopped early.
struct BoardFault {
    stage: Stage,
    reason: String,
}

/// Connection attempts for infrastructure failures that may pass (a board rebooting, a dropped
/// link); each waits twice as long as the one before.
const CONNECT_ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

fn connect_with_retries(
    driver: &dyn BoardDriver,
    board: &Board,
) -> Result<Box<dyn DeviceSession>, ConnectError> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match driver.open(board, None) {
            Err(ConnectError::Ssh(e)) if e.retryable() && attempt < CONNECT_ATTEMPTS => {
                std::thread::sleep(backoff);
                backoff *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn run_board(
    plan: &Plan,
    board: &Board,
    driver: &dyn BoardDriver,
    events: &dyn EventSink,
    fence: &dyn BoardFence,
) -> BoardRecord {
    // Held until this function returns, past the agent's shutdown.
    let _lock = match crate::lock::lock(board, &crate::lock::default_dir()) {
        Ok(lock) => lock,
        Err(e) => {
            let reason = e.to_string();
            events.event(Event::BoardFailed {
                board: board.id.clone(),
                reason: reason.clone(),
            });
            return failed_board(plan, board, Stage::Lock, reason);
        }
    };
    let mut record = empty_record(board);
    let (monitor, power_error) = match driver.power(board) {
        Ok(m) => (m, None),
        Err(e) => (None, Some(e)),
    };
    let builds: usize = plan.models.iter().map(|m| m.builds.len()).sum();
    let mut run = BoardRun {
        plan,
        board,
        driver,
        events,
        fence,
        power: monitor.as_ref(),
        idle: Vec::new(),
        machine: Vec::new(),
        fresh_agents: 0,
        done: 0,
        total: (plan.measured_per_build(board) * builds) as u64,
    };
    let fault = match driver.firmware(board) {
        None => run.run_agent_board(&mut record),
        Some(support) => run.run_mcu_board(support, &mut record),
    };
    let idle = std::mem::take(&mut run.idle);
    record.machine = std::mem::take(&mut run.machine);
    record.fresh_agents = run.fresh_agents;
    if monitor.is_some() {
        // Keep sampling a little past the last window, so it ends inside the trace.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if monitor.is_some() || power_error.is_some() {
        let (trace, error) = match monitor.map(PowerMonitor::stop) {
            Some(Ok(trace)) => {
                let error = trace
                    .error
                    .as_ref()
                    .map(|e| format!("read the power sensor of board `{}`: {e}", board.id));
                (Some(trace), error)
            }
            Some(Err(e)) => (
                None,
                Some(format!(
                    "stop the power sensor of board `{}`: {e}",
                    board.id
                )),
            ),
            None => (None, power_error),
        };
        record.power = Some(PowerRecord { trace, error, idle });
    }
    match fault {
        Some(BoardFault { stage, reason }) => {
            events.event(Event::BoardFailed {
                board: board.id.clone(),
                reason: reason.clone(),
            });
            record.outcome = BoardOutcome::InfraFailed { stage, reason };
        }
        None => events.event(Event::BoardFinished {
            board: board.id.clone(),
        }),
    }
    record
}

/// What lasts across a board's sessions: one for an agent board, one per build for an MCU board.
struct BoardRun<'a> {
    plan: &'a Plan,
    board: &'a Board,
    driver: &'a dyn BoardDriver,
    events: &'a dyn EventSink,
    fence: &'a dyn BoardFence,
    power: Option<&'a PowerMonitor>,
    /// Idle baseline of each model's energy phase.
    idle: Vec<(String, Window)>,
    machine: Vec<MachineSample>,
    fresh_agents: u32,
    done: u64,
    total: u64,
}

impl BoardRun<'_> {
    /// A build that will not run leaves the progress total.
    fn forget_build_progress(&mut self) {
        let per_build = self.plan.measured_per_build(self.board) as u64;
        self.total = self.total.saturating_sub(per_build);
    }

    fn run_agent_board(&mut self, record: &mut BoardRecord) -> Option<BoardFault> {
        let mut conn = match connect_with_retries(self.driver, self.board) {
            Ok(c) => c,
            Err(e) => {
                record.builds = all_not_run(self.plan);
                let stage = match &e {
                    ConnectError::Unhealthy { health, .. } => {
                        record.health = Some((**health).clone());
                        Stage::Health
                    }
                    _ => Stage::Connect,
                };
                return Some(BoardFault {
                    stage,
                    reason: e.to_string(),
                });
            }
        };
        record.health = conn.health();
        record.deployment = conn.deployment();
        let thermal = conn.thermal();
        let models = &self.plan.models;
        let fault = self.drive(conn.as_mut(), models, record);
        record.temperatures = thermal.map(TemperatureSampler::stop);
        fault
    }

    fn run_mcu_board(
        &mut self,
        support: Result<McuBoard, String>,
        record: &mut BoardRecord,
    ) -> Option<BoardFault> {
        let support = match support {
            Ok(s) => s,
            Err(reason) => {
                record.builds = all_not_run(self.plan);
                return Some(BoardFault {
                    stage: Stage::Connect,
                    reason,
                });
            }
        };
        let mut fault = None;
        for model in &self.plan.models {
            for build in &model.builds {
                if fault.is_some() {
                    record.builds.push(not_run(build));
                    continue;
                }
                fault = self.run_firmware_build(support, model, build, record);
            }
        }
        fault
    }

    /// One build on an MCU board: its firmware, one boot, one session, the emulator's exit.
    fn run_firmware_build(
        &mut self,
        support: McuBoard,
        model: &PlannedModel,
        build: &PlannedBuild,
        record: &mut BoardRecord,
    ) -> Option<BoardFault> {
        let firmware = match crate::mcu::prepare(support, model, build) {
            Ok(Prepared::Ready(firmware)) => firmware,
            Ok(Prepared::Refused { kind, message }) => {
                self.events.event(Event::BuildFailed {
                    board: self.board.id.clone(),
                    model: build.model.clone(),
                    variant: build.variant.clone(),
                    reason: message.clone(),
                });
                self.forget_build_progress();
                let mut rejected = not_run(build);
                rejected.outcome = BuildOutcome::Rejected { kind, message };
                record.builds.push(rejected);
                return None;
            }
            Err(e) => {
                record.builds.push(not_run(build));
                return Some(BoardFault {
                    stage: Stage::Load,
                    reason: format!(
                        "prepare firmware of `{}:{}` for board `{}`: {e}",
                        build.model, build.variant, self.board.id
                    ),
                });
            }
        };
        let mut conn = match self.driver.open(self.board, Some(&firmware)) {
            Ok(conn) => conn,
            Err(e) => {
                record.builds.push(not_run(build));
                return Some(BoardFault {
                    stage: Stage::Connect,
                    reason: format!("boot board `{}`: {e}", self.board.id),
                });
            }
        };
        let first = record.builds.len();
        let single = PlannedModel {
            builds: vec![build.clone()],
            ..model.clone()
        };
        let mut fault = self.drive(conn.as_mut(), std::slice::from_ref(&single), record);
        if fault.is_none()
            && let Err(e) = conn.finish(self.board.timeouts.connect)
        {
            fault = Some(BoardFault {
                stage: Stage::Replay,
                reason: format!("end the session on board `{}`: {e}", self.board.id),
            });
        }
        for r in &mut record.builds[first..] {
            r.firmware = Some(firmware.clone());
            r.memory_end = record.memory_end.take();
        }
        fault
    }

    /// One session on an open link: handshake, every build of `models`, memory, shutdown.
    fn drive(
        &mut self,
        conn: &mut dyn DeviceSession,
        models: &[PlannedModel],
        record: &mut BoardRecord,
    ) -> Option<BoardFault> {
        let reason = match handshake(conn, self.board) {
            Ok(hello) => {
                if record.hello.is_none() {
                    self.events.event(Event::BoardConnected {
                        board: self.board.id.clone(),
                        hello: hello.clone(),
                    });
                    record.hello = Some(hello.clone());
                }
                return self.run_session(conn, &hello, models, record);
            }
            Err(reason) => reason,
        };
        record
            .builds
            .extend(models.iter().flat_map(|m| m.builds.iter().map(not_run)));
        Some(BoardFault {
            stage: Stage::Handshake,
            reason,
        })
    }

    fn run_session(
        &mut self,
        conn: &mut dyn DeviceSession,
        hello: &gauntlet_wire::AgentHello,
        models: &[PlannedModel],
        record: &mut BoardRecord,
    ) -> Option<BoardFault> {
        let mut session = BoardSession {
            run: self,
            conn,
            hello: hello.clone(),
            seq: 0,
        };
        let mut fault = None;
        for model in models {
            if fault.is_some() {
                record.builds.extend(model.builds.iter().map(not_run));
                continue;
            }
            let (builds, model_fault) = session.run_model(model);
            record.builds.extend(builds);
            fault = model_fault;
        }
        if fault.is_none() {
            let timeouts = &session.run.board.timeouts;
            let link = session.conn.link();
            if let Ok(Response::Memory(m)) = link.call(&Request::Memory, timeouts.batch) {
                record.memory_end = Some(m);
            }
            let _ = link.call(&Request::EndSession, timeouts.connect);
        }
        fault
    }
}

/// `Hello` and the agent's answer; the failure reason otherwise.
pub fn handshake(
    conn: &mut dyn DeviceSession,
    board: &Board,
) -> Result<gauntlet_wire::AgentHello, String> {
    let hello = Request::Hello {
        protocol_version: PROTOCOL_VERSION,
        token: conn.token(),
    };
    match conn.link().call(&hello, board.timeouts.connect) {
        Ok(Response::Hello(hello)) => Ok(hello),
        Ok(other) => Err(format!(
            "complete the handshake: the device answered {}",
            summary(&other)
        )),
        Err(e) => Err(conn.diagnose(&board.id, &e)),
    }
}

/// The first way `fresh` differs from `first`, as "what: before → now".
fn hello_change(
    first: &gauntlet_wire::AgentHello,
    fresh: &gauntlet_wire::AgentHello,
) -> Option<String> {
    let agent = |h: &gauntlet_wire::AgentHello| {
        format!(
            "{} {} (protocol {})",
            h.agent, h.agent_version, h.protocol_version
        )
    };
    let runtimes = |h: &gauntlet_wire::AgentHello| {
        h.runtimes
            .iter()
            .map(|r| match &r.status {
                Ok(d) => format!(
                    "{} {} [{}]{}",
                    r.name,
                    d.version,
                    d.providers.join(", "),
                    d.library_sha256
                        .map(|h| format!(" library {}", &hex::encode(h)[..12]))
                        .unwrap_or_default()
                ),
                Err(why) => format!("{} unavailable ({why})", r.name),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let compared = [
        ("agent", agent(first), agent(fresh)),
        ("runtimes", runtimes(first), runtimes(fresh)),
        (
            "timing source",
            format!("{:?}", first.timing),
            format!("{:?}", fresh.timing),
        ),
        (
            "capabilities",
            format!("{:?}", first.capabilities),
            format!("{:?}", fresh.capabilities),
        ),
        (
            "board facts",
            format!("{:?}", first.facts),
            format!("{:?}", fresh.facts),
        ),
    ];
    compared
        .into_iter()
        .find(|(_, before, now)| before != now)
        .map(|(what, before, now)| format!("{what}: {before} → {now}"))
}

fn summary(response: &Response) -> String {
    match response {
        Response::Error(WireError { kind, message }) => format!("error {kind:?}: {message}"),
        Response::Hello(_) => "hello".into(),
        Response::ChunkAck { .. } => "a chunk acknowledgement".into(),
        Response::Loaded(_) => "model loaded".into(),
        Response::Outputs(_) => "outputs".into(),
        Response::Memory(_) => "memory facts".into(),
        Response::MachineState(_) => "machine state".into(),
        Response::Marked { .. } => "a marker".into(),
        Response::Goodbye => "goodbye".into(),
    }
}

struct BoardSession<'d, 'a> {
    run: &'d mut BoardRun<'a>,
    conn: &'d mut dyn DeviceSession,
    /// What the agent said it is, has and takes; a fresh agent must say the same.
    hello: gauntlet_wire::AgentHello,
    seq: u32,
}

/// A build taking part in the replay.
struct Active {
    slot: u8,
    record: BuildRecord,
}

enum Step<T> {
    Done(T),
    /// The device refused: the build is out, the board goes on.
    Rejected {
        kind: RejectionKind,
        message: String,
    },
}

impl BoardSession<'_, '_> {
    fn set_busy(&self, busy: bool) {
        if let Some(power) = self.run.power {
            power.set_busy(busy);
        }
    }

    /// MLPerf Tiny's repeated windows: on a board with a power sensor an idle baseline first;
    /// then per build windows of back-to-back inferences, each bounded by the device's own
    /// start/stop markers. They give energy where a sensor reads power, and throughput on the
    /// device's clock wherever they run (every board when the scenario asks for throughput).
    fn windows(&mut self, active: &mut [Active]) -> Result<Option<Window>, BoardFault> {
        let power = self.run.power;
        let rules = self.run.plan.scenario.run_for(self.run.board).clone();
        let wanted = power.is_some() || rules.throughput;
        if !wanted || rules.energy_windows == 0 || active.is_empty() {
            return Ok(None);
        }
        let idle = power.map(|power| {
            let start_ns = power.now_ns();
            std::thread::sleep(rules.idle_baseline);
            Window {
                start_ns,
                end_ns: power.now_ns(),
            }
        });
        let n = self.run.plan.windows.len();
        let block = rules.interleave_block.max(1);
        for index in 0..active.len() {
            for w in 0..rules.energy_windows as u32 {
                if matches!(active[index].record.outcome, BuildOutcome::Rejected { .. }) {
                    break;
                }
                let device_start_ns = self.mark(Marker::WindowStart(w))?;
                let sensor_start_ns = power.map(|p| p.now_ns());
                let before = active[index].record.energy_inferences;
                let started = Instant::now();
                let mut at = 0;
                while started.elapsed() < rules.energy_window {
                    let range = at..(at + block).min(n);
                    self.run_block(active, index, range.clone(), Phase::Energy)?;
                    at = if range.end >= n { 0 } else { range.end };
                }
                let device_end_ns = self.mark(Marker::WindowEnd(w))?;
                let sensor_end_ns = power.map(|p| p.now_ns());
                let record = &mut active[index].record;
                let inferences = record.energy_inferences - before;
                record.throughput_windows.push(MeasuredWindow {
                    start_ns: device_start_ns,
                    end_ns: device_end_ns,
                    inferences,
                });
                if let (Some(start_ns), Some(end_ns)) = (sensor_start_ns, sensor_end_ns) {
                    record.energy_windows.push(MeasuredWindow {
                        start_ns,
                        end_ns,
                        inferences,
                    });
                }
            }
        }
        Ok(idle)
    }

    /// Reads the machine between blocks, when nothing is in flight, so the reading neither waits
    /// behind inferences nor lands inside a timed one.
    fn sample_machine(
        &mut self,
        model: &str,
        repeat: usize,
        block: Option<usize>,
    ) -> Result<(), BoardFault> {
        if !self.hello.capabilities.machine_state {
            return Ok(());
        }
        let timeout = self.run.board.timeouts.batch;
        match self.conn.link().call(&Request::MachineState, timeout) {
            Ok(Response::MachineState(state)) => {
                self.run.machine.push(MachineSample {
                    model: model.to_string(),
                    repeat: repeat as u32,
                    block: block.map(|b| b as u32),
                    state,
                });
                Ok(())
            }
            Ok(other) => Err(BoardFault {
                stage: Stage::Replay,
                reason: format!(
                    "read the machine state of board `{}`: the device answered {}",
                    self.run.board.id,
                    summary(&other)
                ),
            }),
            Err(e) => Err(self.link_fault(Stage::Replay, &e)),
        }
    }

    /// Marks the device's timeline; its own time of the mark, in ns.
    fn mark(&mut self, marker: Marker) -> Result<u64, BoardFault> {
        match self
            .conn
            .link()
            .call(&Request::Mark(marker), self.run.board.timeouts.batch)
        {
            Ok(Response::Marked { device_time_ns, .. }) => Ok(device_time_ns),
            Ok(other) => Err(BoardFault {
                stage: Stage::Replay,
                reason: format!(
                    "mark an energy window: the device answered {}",
                    summary(&other)
                ),
            }),
            Err(e) => Err(self.link_fault(Stage::Replay, &e)),
        }
    }

    fn link_fault(&mut self, stage: Stage, e: &LinkError) -> BoardFault {
        BoardFault {
            stage,
            reason: self.conn.diagnose(&self.run.board.id, e),
        }
    }

    fn run_model(&mut self, model: &PlannedModel) -> (Vec<BuildRecord>, Option<BoardFault>) {
        let mut finished = Vec::new();
        let mut active = Vec::new();
        for (slot, build) in model.builds.iter().enumerate() {
            let mut record = not_run(build);
            match self.load(model, build, slot as u8) {
                Ok(Step::Done(loaded)) => {
                    self.run.events.event(Event::BuildLoaded {
                        board: self.run.board.id.clone(),
                        model: build.model.clone(),
                        variant: build.variant.clone(),
                        load_time_us: loaded.load_time_us,
                    });
                    record.output_len = loaded.output_len as usize;
                    record.loaded = Some(loaded);
                    record.timing = Some(self.hello.timing);
                    active.push(Active {
                        slot: slot as u8,
                        record,
                    });
                }
                Ok(Step::Rejected { kind, message }) => {
                    self.run.events.event(Event::BuildFailed {
                        board: self.run.board.id.clone(),
                        model: build.model.clone(),
                        variant: build.variant.clone(),
                        reason: message.clone(),
                    });
                    self.run.forget_build_progress();
                    record.outcome = BuildOutcome::Rejected { kind, message };
                    finished.push(record);
                }
                Err(e) => {
                    let fault = self.link_fault(Stage::Load, &e);
                    record.outcome = BuildOutcome::Interrupted {
                        reason: fault.reason.clone(),
                    };
                    finished.push(record);
                    finished.extend(model.builds[slot + 1..].iter().map(not_run));
                    finished.extend(active.into_iter().map(|a| interrupted(a, &fault)));
                    return (finished, Some(fault));
                }
            }
        }
        let mut fault = self.replay(model, &mut active, &mut finished);
        if fault.is_none() {
            match self.windows(&mut active) {
                Ok(Some(idle)) => self.run.idle.push((model.name.clone(), idle)),
                Ok(None) => {}
                Err(f) => fault = Some(f),
            }
        }
        for a in active {
            finished.push(match &fault {
                Some(f) => interrupted(a, f),
                None => {
                    let mut r = a.record;
                    if r.outcome == BuildOutcome::NotRun {
                        r.outcome = BuildOutcome::Completed;
                    }
                    r
                }
            });
        }
        // Report builds in the scenario's order whatever order they finished in.
        finished.sort_by_key(|r| model.builds.iter().position(|b| b.variant == r.variant));
        (finished, fault)
    }

    fn load(
        &mut self,
        model: &PlannedModel,
        build: &PlannedBuild,
        slot: u8,
    ) -> Result<Step<gauntlet_wire::ModelLoaded>, LinkError> {
        let timeout = self.run.board.timeouts.load;
        if self.hello.capabilities.models == ModelSource::BuiltIn {
            let request = Request::UseBuiltin {
                slot: 0,
                name: format!("{}:{}", build.model, build.variant),
            };
            return Ok(loaded_or_rejected(
                self.conn.link().call(&request, timeout)?,
            ));
        }
        if build.prebuilt_firmware {
            return Ok(Step::Rejected {
                kind: RejectionKind::Unsupported,
                message: "a firmware image runs only on MCU boards (qemu-stm32, stm32-probe)"
                    .into(),
            });
        }
        if let Some(refusal) = missing_runtime(&self.run.board.id, &self.hello.runtimes, build) {
            return Ok(refusal);
        }
        let requests = upload_requests(model, build, slot);
        for request in &requests {
            match self.conn.link().call(request, timeout)? {
                Response::ChunkAck { .. } => {}
                other => return Ok(loaded_or_rejected(other)),
            }
        }
        Ok(Step::Rejected {
            kind: RejectionKind::Protocol,
            message: "the device never confirmed the load".into(),
        })
    }

    /// Warm-up, then measured passes over the dataset, builds interleaved block by block.
    fn replay(
        &mut self,
        planned: &PlannedModel,
        active: &mut Vec<Active>,
        finished: &mut Vec<BuildRecord>,
    ) -> Option<BoardFault> {
        let model = planned.name.as_str();
        let rules = self.run.plan.scenario.run_for(self.run.board);
        let n = self.run.plan.windows.len();
        if n == 0 || active.is_empty() {
            return None;
        }
        let warmup = rules.warmup.min(n);
        for a in active.iter_mut() {
            a.record.warmup = warmup;
        }
        // At least as many blocks per pass as an honest interval needs, however short the dataset
        // (gauntlet_measure::min_blocks): a pass of one long block could only be judged per sample.
        let block = rules
            .interleave_block
            .max(1)
            .min(n.div_ceil(gauntlet_measure::min_blocks(0.95)).max(1));
        let mut pass = 0usize;
        let started = Instant::now();
        loop {
            let measured = pass * n;
            let enough = pass >= rules.repeats.max(1)
                && measured >= rules.min_inferences
                && started.elapsed() >= rules.min_duration;
            if enough {
                return self
                    .sample_machine(model, pass.saturating_sub(1), None)
                    .err();
            }
            // Each of the `repeats` replays in a process of its own; passes added only to reach
            // `min_inferences` or `min_duration` stay in the last one, as a short dataset may need
            // hundreds of them.
            let fresh = if pass > 0 && pass < rules.repeats && rules.fresh_agent {
                match self.restart_agent(planned, active) {
                    Ok(restarted) => restarted,
                    Err(fault) => return Some(fault),
                }
            } else {
                false
            };
            // Warm-up runs as the first "block" of a process's first pass, and is not recorded.
            if (pass == 0 || fresh) && warmup > 0 {
                for i in 0..active.len() {
                    if let Err(fault) = self.run_block(active, i, 0..warmup, Phase::Warmup) {
                        return Some(fault);
                    }
                }
            }
            let mut start = 0;
            let mut block_index = 0;
            while start < n {
                if let Err(fault) = self.sample_machine(model, pass, Some(block_index)) {
                    return Some(fault);
                }
                let range = start..(start + block).min(n);
                // Rotate which build goes first so none always follows the same neighbour.
                let count = active.len();
                let order: Vec<usize> = (0..count).map(|k| (k + block_index) % count).collect();
                for i in order {
                    if i >= active.len() {
                        continue;
                    }
                    let phase = if pass == 0 {
                        Phase::FirstPass
                    } else {
                        Phase::Repeat
                    };
                    let before = active[i].record.device_ns.len();
                    if let Err(fault) = self.run_block(active, i, range.clone(), phase) {
                        return Some(fault);
                    }
                    let record = &mut active[i].record;
                    let len = (record.device_ns.len() - before) as u32;
                    if len > 0 {
                        record.blocks.push(gauntlet_measure::Block {
                            repeat: pass as u32,
                            index: block_index as u32,
                            len,
                        });
                    }
                }
                let (out, keep): (Vec<Active>, Vec<Active>) = std::mem::take(active)
                    .into_iter()
                    .partition(|a| matches!(a.record.outcome, BuildOutcome::Rejected { .. }));
                finished.extend(out.into_iter().map(|a| a.record));
                *active = keep;
                if active.is_empty() {
                    return self.sample_machine(model, pass, None).err();
                }
                start = range.end;
                block_index += 1;
            }
            pass += 1;
        }
    }

    /// A fresh agent process for the next replay, where the run starts the agent, with every
    /// build still in the replay loaded again into its slot. `Ok(false)`, nothing done, where the
    /// board's agent cannot be restarted.
    fn restart_agent(
        &mut self,
        model: &PlannedModel,
        active: &mut [Active],
    ) -> Result<bool, BoardFault> {
        let board = self.run.board;
        match self.conn.restart_agent(board.timeouts.connect) {
            None => return Ok(false),
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(BoardFault {
                    stage: Stage::Connect,
                    reason: format!(
                        "start a fresh agent on board `{}` for the next replay: {e}",
                        board.id
                    ),
                });
            }
        }
        let fresh = handshake(&mut *self.conn, board).map_err(|reason| BoardFault {
            stage: Stage::Handshake,
            reason: format!("a fresh agent for the next replay: {reason}"),
        })?;
        // Replays pooled into one figure must come from the same agent, runtimes and limits: a
        // binary or library replaced on the board mid-run would mix two builds' timings.
        if let Some(change) = hello_change(&self.hello, &fresh) {
            return Err(BoardFault {
                stage: Stage::Handshake,
                reason: format!(
                    "a fresh agent for the next replay on board `{}` differs from the first: {change}",
                    board.id
                ),
            });
        }
        self.run.fresh_agents += 1;
        for a in active.iter_mut() {
            // A build's slot is its index among its model's builds.
            let build = &model.builds[usize::from(a.slot)];
            match self.load(model, build, a.slot) {
                Ok(Step::Done(_)) => {}
                Ok(Step::Rejected { kind, message }) => {
                    a.record.outcome = BuildOutcome::Rejected {
                        kind,
                        message: format!("load again in a fresh agent: {message}"),
                    };
                }
                Err(e) => return Err(self.link_fault(Stage::Load, &e)),
            }
        }
        Ok(true)
    }

    /// Sends the windows of `range` to one build, pipelined, and records what comes back.
    fn run_block(
        &mut self,
        active: &mut [Active],
        index: usize,
        range: Range<usize>,
        phase: Phase,
    ) -> Result<(), BoardFault> {
        if matches!(active[index].record.outcome, BuildOutcome::Rejected { .. }) {
            return Ok(());
        }
        if let Some(why) = self.run.fence.revoked(&self.run.board.id) {
            return Err(BoardFault {
                stage: Stage::Lock,
                reason: format!(
                    "keep board `{}`: {why}; this run stopped driving it, keeping what it measured",
                    self.run.board.id
                ),
            });
        }
        let rules = self.run.plan.scenario.run_for(self.run.board);
        let paced = !matches!(rules.pacing, Pacing::AsFastAsPossible);
        let windows = &self.run.plan.windows;
        let window_len = windows.window_len;
        let (batch, depth) = if paced {
            (1, 1)
        } else {
            (
                rules
                    .batch
                    .clamp(1, self.hello.capabilities.windows_per_request(window_len)),
                PIPELINE_DEPTH.min(usize::from(self.hello.capabilities.pipeline_depth).max(1)),
            )
        };
        let batches: Vec<Range<usize>> = range
            .clone()
            .step_by(batch)
            .map(|s| s..(s + batch).min(range.end))
            .collect();
        let slot = active[index].slot;
        let measured_before = active[index].record.device_ns.len();
        let timeout = self.run.board.timeouts.batch;
        let mut in_flight: VecDeque<(u32, Range<usize>, Instant)> = VecDeque::new();
        let mut next = 0;
        let mut last_response: Option<Instant> = None;
        let mut rejected: Option<(RejectionKind, String)> = None;
        let pace_origin = Instant::now();
        // Once the build is rejected nothing more is sent, but what is in flight is still read.
        while (rejected.is_none() && next < batches.len()) || !in_flight.is_empty() {
            while rejected.is_none() && in_flight.len() < depth && next < batches.len() {
                let b = batches[next].clone();
                if paced && let Some(due) = self.due(b.start - range.start) {
                    let wait = (pace_origin + due).saturating_duration_since(Instant::now());
                    std::thread::sleep(wait);
                }
                self.seq = self.seq.wrapping_add(1);
                let request = Request::Infer(InferRequest {
                    slot,
                    seq: self.seq,
                    window_len: window_len as u32,
                    data: windows.data[b.start * window_len..b.end * window_len].to_vec(),
                });
                self.conn
                    .link()
                    .send(&request)
                    .map_err(|e| self.link_fault(Stage::Replay, &e))?;
                if in_flight.is_empty() {
                    self.set_busy(true);
                }
                in_flight.push_back((self.seq, b, Instant::now()));
                next += 1;
            }
            let response = self
                .conn
                .link()
                .recv(timeout)
                .map_err(|e| self.link_fault(Stage::Replay, &e))?;
            let received = Instant::now();
            let (seq, b, sent) = in_flight
                .pop_front()
                .expect("a response answers a request in flight");
            if in_flight.is_empty() {
                self.set_busy(false);
            }
            match response {
                Response::Outputs(out) if out.seq == seq && rejected.is_none() => {
                    let record = &mut active[index].record;
                    let count = b.len();
                    if out.device_time_ns.len() != count
                        || out.outputs.len() != count * record.output_len
                    {
                        rejected = Some((
                            RejectionKind::Protocol,
                            format!(
                                "the device answered {} times and {} scores for {count} windows",
                                out.device_time_ns.len(),
                                out.outputs.len()
                            ),
                        ));
                        continue;
                    }
                    let start = last_response.map_or(sent, |l| l.max(sent));
                    last_response = Some(received);
                    if phase == Phase::Warmup {
                        continue;
                    }
                    if phase == Phase::Energy {
                        record.energy_inferences += count as u64;
                        continue;
                    }
                    let device: u64 = out.device_time_ns.iter().sum();
                    record.requests.push(RequestTiming {
                        windows: count as u32,
                        service_ns: (received - start).as_nanos() as u64,
                        device_ns: device,
                    });
                    record.device_ns.extend_from_slice(&out.device_time_ns);
                    if phase == Phase::FirstPass {
                        record.outputs.extend_from_slice(&out.outputs);
                    }
                    self.progress(count as u64);
                }
                Response::Outputs(_) if rejected.is_some() => {}
                Response::Error(WireError { kind, message }) => {
                    rejected.get_or_insert((rejection_kind(&kind), message));
                }
                other => {
                    return Err(BoardFault {
                        stage: Stage::Replay,
                        reason: format!(
                            "keep the conversation in step: expected outputs for request {seq}, got {}",
                            summary(&other)
                        ),
                    });
                }
            }
        }
        let a = &active[index];
        if a.record.device_ns.len() > measured_before {
            self.run.events.event(Event::Samples {
                board: self.run.board.id.clone(),
                model: a.record.model.clone(),
                variant: a.record.variant.clone(),
                device_ns: a.record.device_ns[measured_before..].to_vec(),
            });
        }
        if let Some((kind, message)) = rejected {
            let a = &mut active[index];
            self.run.events.event(Event::BuildFailed {
                board: self.run.board.id.clone(),
                model: a.record.model.clone(),
                variant: a.record.variant.clone(),
                reason: message.clone(),
            });
            a.record.outcome = BuildOutcome::Rejected { kind, message };
        }
        Ok(())
    }

    /// When window `offset` of a paced block is due, relative to the block's start.
    fn due(&self, offset: usize) -> Option<Duration> {
        match self.run.plan.scenario.run_for(self.run.board).pacing {
            Pacing::AsFastAsPossible => None,
            Pacing::FixedRate { hz } => Some(Duration::from_secs_f64(offset as f64 / hz)),
            Pacing::Recorded { speedup } => {
                let stamps = self.run.plan.windows.timestamps_s.as_ref()?;
                let first = *stamps.first()?;
                let at = *stamps.get(offset)?;
                Some(Duration::from_secs_f64(((at - first) / speedup).max(0.0)))
            }
        }
    }

    fn progress(&mut self, windows: u64) {
        let before = self.run.done * 100 / self.run.total.max(1);
        self.run.done += windows;
        if self.run.done * 100 / self.run.total.max(1) != before || self.run.done >= self.run.total
        {
            self.run.events.event(Event::Progress {
                board: self.run.board.id.clone(),
                done: self.run.done,
                total: self.run.total,
            });
        }
    }
}

/// A build whose runtime the board lacks is refused before its bytes are sent, naming the board,
/// the runtime and how to install it; the board's other builds go on.
fn missing_runtime(
    board: &str,
    runtimes: &[gauntlet_wire::RuntimeReport],
    build: &PlannedBuild,
) -> Option<Step<gauntlet_wire::ModelLoaded>> {
    let wanted = &build.runtime.name;
    let message = match runtimes.iter().find(|r| &r.name == wanted) {
        Some(gauntlet_wire::RuntimeReport {
            status: Ok(found), ..
        }) => {
            let missing = build
                .runtime
                .providers
                .iter()
                .find(|p| !found.providers.contains(p))?;
            return Some(Step::Rejected {
                kind: RejectionKind::ProviderUnavailable,
                message: format!(
                    "board `{board}` cannot run `{}`: {wanted} {} has no execution provider `{missing}` (it has: {})",
                    build.variant,
                    found.version,
                    found.providers.join(", ")
                ),
            });
        }
        Some(gauntlet_wire::RuntimeReport {
            status: Err(why), ..
        }) => {
            format!(
                "board `{board}` has no {wanted} for `{}`: {why}",
                build.variant
            )
        }
        None => format!(
            "board `{board}` has no runtime `{wanted}` for `{}` (its agent has: {}); {}",
            build.variant,
            runtimes
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            gauntlet_runtime::onnxruntime::INSTALL_HINT
        ),
    };
    Some(Step::Rejected {
        kind: RejectionKind::RuntimeUnavailable,
        message,
    })
}

/// The results' name for what the device refused a build for; the error's payload is in its message.
fn rejection_kind(kind: &ErrorKind) -> RejectionKind {
    match kind {
        ErrorKind::VersionMismatch { .. } => RejectionKind::VersionMismatch,
        ErrorKind::Unauthorized => RejectionKind::Unauthorized,
        ErrorKind::Protocol => RejectionKind::Protocol,
        ErrorKind::Checksum => RejectionKind::Checksum,
        ErrorKind::NoModel => RejectionKind::NoModel,
        ErrorKind::UnsupportedOperator { .. } => RejectionKind::UnsupportedOperator,
        ErrorKind::ModelLoad => RejectionKind::ModelLoad,
        ErrorKind::ShapeMismatch { .. } => RejectionKind::ShapeMismatch,
        ErrorKind::Inference => RejectionKind::Inference,
        ErrorKind::OutOfMemory => RejectionKind::OutOfMemory,
        ErrorKind::Internal => RejectionKind::Internal,
        ErrorKind::RuntimeUnavailable { .. } => RejectionKind::RuntimeUnavailable,
        ErrorKind::ProviderUnavailable { .. } => RejectionKind::ProviderUnavailable,
    }
}

/// The requests that upload `build` into `slot`: its header, its bytes in chunks, the commit.
pub fn upload_requests(model: &PlannedModel, build: &PlannedBuild, slot: u8) -> Vec<Request> {
    let header = ModelHeader {
        slot,
        name: format!("{}:{}", build.model, build.variant),
        format: ModelFormat::Onnx,
        size: build.bytes.len() as u32,
        sha256: build.sha256,
        input: model.input.clone(),
        window_shape: model.input_shape.iter().map(|&d| d as u32).collect(),
        output: model.output.clone(),
        runtime: gauntlet_wire::RuntimeRequest {
            name: build.runtime.name.clone(),
            intra_threads: build.runtime.threads.min(u16::MAX as usize) as u16,
            optimization: build.runtime.optimization.clone(),
            providers: build.runtime.providers.clone(),
        },
    };
    let mut requests = vec![Request::LoadBegin(header)];
    requests.extend(
        build
            .bytes
            .chunks(LOAD_CHUNK_BYTES)
            .enumerate()
            .map(|(i, chunk)| Request::LoadChunk {
                offset: (i * LOAD_CHUNK_BYTES) as u32,
                bytes: chunk.to_vec(),
            }),
    );
    requests.push(Request::LoadCommit);
    requests
}

/// The device's last answer to a load: the model, or why the build is out.
fn loaded_or_rejected(response: Response) -> Step<gauntlet_wire::ModelLoaded> {
    match response {
        Response::Loaded(loaded) => Step::Done(loaded),
        Response::Error(WireError { kind, message }) => Step::Rejected {
            kind: rejection_kind(&kind),
            message,
        },
        other => Step::Rejected {
            kind: RejectionKind::Protocol,
            message: format!("load answered with {}", summary(&other)),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    /// Back-to-back inferences inside an energy window: counted, not timed.
    Energy,
    FirstPass,
    Repeat,
}

fn interrupted(a: Active, fault: &BoardFault) -> BuildRecord {
    let mut r = a.record;
    if !matches!(r.outcome, BuildOutcome::Rejected { .. }) {
        r.outcome = BuildOutcome::Interrupted {
            reason: fault.reason.clone(),
        };
    }
    r
}
