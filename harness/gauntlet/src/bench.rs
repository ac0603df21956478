//! `gauntlet bench`: what the harness costs, measured side by side in one run against in-process
//! loops on the same runtimes (tract, and onnxruntime from the same library the agent loads) and a
//! raw pipe echo, so the figures are ratios that carry over to other machines.
//!
//! Each round is one block of every contender, and the order of the agent and the in-process loop
//! alternates from round to round: background load, frequency changes and cache state then fall
//! on both sides alike, and the agent / in-process ratio is the median of per-round block ratios
//! with a block-bootstrap interval (the same statistic gates use for A/B ratios).
//!
//! Within a round the two sides take the windows in turn, one window each, the first of each pair
//! alternating: on a shared virtual machine a core's speed moves by a third within tens of
//! milliseconds (a neighbour on the host), so two sides that each ran a whole pass in turn would
//! be judged on two different machines. For the same reason both sides of a round run on one CPU
//! (another each round): three bench runs' agent / in-process ratios were 0.974-1.036 (tract) and
//! 0.958-1.006 (onnxruntime) here unpinned; five runs pinned agreed within ±2.3 % of their median.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::stdout::say;
use anyhow::{Context, bail};
use gauntlet_measure::{Block, BlockRatio, RatioOptions, block_ratio};
use gauntlet_runner::events::NoEvents;
use gauntlet_runner::{BoardDriver, BuildRecord, Plan};
use gauntlet_runtime::{GraphOptimization, LoadOptions, RuntimeSettings, Runtimes};
use gauntlet_spec::{Connection, LocalTransport, Pacing, Rig, Scenario};

/// SKAB windows are small (128 values, ≈5 µs of compute): a request must carry many to amortise
/// the link.
const SKAB_BATCH: usize = 256;
/// The model file every runtime is measured on: the CWRU CNN's reference build.
const CWRU_SCENARIO: &str = "scenarios/cwru-runtimes.toml";
/// Requests the session keeps in flight on an agent, so the pipe echo is driven as the replay it
/// is the floor of.
const REPLAY_DEPTH: usize = gauntlet_runner::session::PIPELINE_DEPTH;

pub struct BenchOptions {
    pub rounds: usize,
    pub batch: usize,
    /// Whole bench runs, back to back, to show how far their ratios agree.
    pub runs: usize,
    /// The replays' agents and the echo's `cat` on another CPU than the harness (see
    /// [`Placement`]); otherwise where the scheduler puts them.
    pub agent_apart: bool,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Samples in blocks, one block per round.
#[derive(Default)]
struct Blocks {
    samples: Vec<f64>,
    blocks: Vec<Block>,
}

impl Blocks {
    fn push(&mut self, round: usize, samples: &[f64]) {
        self.blocks.push(Block {
            repeat: 0,
            index: round as u32,
            len: samples.len() as u32,
        });
        self.samples.extend_from_slice(samples);
    }

    fn block_medians(&self) -> Vec<f64> {
        let mut at = 0;
        self.blocks
            .iter()
            .map(|b| {
                let mut block = self.samples[at..at + b.len as usize].to_vec();
                at += b.len as usize;
                median(&mut block)
            })
            .collect()
    }
}

/// The reference build on `runtime` alone, replayed once over `transport`.
fn single_build_plan(
    scenario: &Scenario,
    runtime: &str,
    transport: LocalTransport,
    batch: usize,
) -> anyhow::Result<Plan> {
    let mut scenario = scenario.clone();
    for model in &mut scenario.models {
        let reference = model
            .builds
            .iter()
            .find(|b| b.reference)
            .map(|b| b.base_variant.clone());
        model
            .builds
            .retain(|b| Some(&b.base_variant) == reference.as_ref() && b.runtime.name == runtime);
        for b in &mut model.builds {
            b.reference = true;
        }
    }
    scenario.models.retain(|m| !m.builds.is_empty());
    if scenario.models.is_empty() {
        bail!(
            "`{}` has no reference build on {runtime}",
            scenario.source.path.display()
        );
    }
    scenario.run.batch = batch;
    scenario.run.warmup = 10;
    scenario.run.repeats = 1;
    scenario.run.min_inferences = 0;
    scenario.run.min_duration = std::time::Duration::ZERO;
    scenario.run.pacing = Pacing::AsFastAsPossible;
    scenario.overrides.clear();
    scenario.gates.clear();
    let mut rig: Rig = gauntlet_spec::default_rig();
    for board in &mut rig.boards {
        if let Connection::Local { transport: t, .. } = &mut board.connection {
            *t = transport.clone();
        }
        board.power = None;
    }
    gauntlet_runner::plan(scenario, rig).context("plan the benchmark run")
}

fn replay(plan: &Plan) -> anyhow::Result<BuildRecord> {
    let record = gauntlet_runner::run_plan(plan, &NoEvents);
    let build = record
        .boards
        .into_iter()
        .flat_map(|b| b.builds)
        .next()
        .context("the benchmark plan has one build")?;
    if build.device_ns.is_empty() {
        bail!("the agent measured nothing: {:?}", build.outcome);
    }
    Ok(build)
}

/// The plan's one build loaded in this process, with the settings the agent would use.
fn load_in_process(
    runtimes: &Runtimes,
    plan: &Plan,
) -> anyhow::Result<Box<dyn gauntlet_runtime::LoadedModel>> {
    let model = &plan.models[0];
    let build = &model.builds[0];
    let spec = &build.runtime;
    let options = LoadOptions {
        input_name: model.input.clone(),
        window_shape: model.input_shape.clone(),
        output: model.output.clone(),
        runtime: RuntimeSettings {
            name: spec.name.clone(),
            threads: spec.threads,
            optimization: GraphOptimization::from_keyword(&spec.optimization)
                .context("the validated scenario names a known optimisation level")?,
            providers: spec.providers.clone(),
        },
    };
    let runtime = runtimes
        .get(&spec.name)
        .with_context(|| format!("no runtime `{}` in this build of gauntlet", spec.name))?;
    Ok(runtime.load(&build.bytes, &options)?)
}

/// Per-inference times (µs) of the plan's windows through an in-process model, after the same
/// warm-up the agent gets, and the loop's wall time.
fn in_process(runtimes: &Runtimes, plan: &Plan) -> anyhow::Result<(Vec<f64>, f64)> {
    let mut loaded = load_in_process(runtimes, plan)?;
    let mut out = Vec::new();
    for i in 0..plan.scenario.run.warmup.min(plan.windows.len()) {
        loaded.run(plan.windows.window(i), &mut out)?;
    }
    let mut times = Vec::with_capacity(plan.windows.len());
    let started = Instant::now();
    for i in 0..plan.windows.len() {
        let t = Instant::now();
        loaded.run(plan.windows.window(i), &mut out)?;
        times.push(t.elapsed().as_nanos() as f64 / 1e3);
    }
    Ok((times, started.elapsed().as_secs_f64()))
}

/// The calling thread held to some CPUs, and with it what it starts (threads and children inherit
/// the mask), until dropped.
struct Pinned {
    before: Vec<u32>,
}

impl Pinned {
    fn to(cpus: &[u32]) -> anyhow::Result<Pinned> {
        let before = gauntlet_affinity::current()?;
        gauntlet_affinity::hold_to(cpus)?;
        Ok(Pinned { before })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // The mask it was read as; a thread left pinned only times the rest on fewer CPUs.
        let _ = gauntlet_affinity::hold_to(&self.before);
    }
}

/// Where a round runs. The two sides of a paired round never run at once, so they share one CPU
/// and cost each other nothing; on different CPUs of a shared virtual machine they were timed on
/// two machines (one vCPU's neighbour on the host slows it alone: per-round ratios of 0.59-1.63).
///
/// A replay's host and agent run at once. Left to the scheduler, the pipelined echo took 2.2 µs a
/// frame in some rounds and 8 µs in others: `cat` on the other CPU (2.2-2.5 µs when held there)
/// or on the host's own (7.6-7.9 µs with everything under `taskset -c 0`), and the floor moved
/// with it. With `--agent-apart` the host is held to one CPU and the agent and `cat` to another
/// (the rig's `cpus`), as on a board, so every frame crosses between CPUs in both.
struct Placement {
    /// The paired round's one CPU, and the replay's host side when apart.
    host: u32,
    /// The replay's agent and the echo's `cat`: `None` leaves the replays to the scheduler.
    device: Option<u32>,
}

impl Placement {
    /// Another CPU (and pair) each round, so every CPU is sampled; apart only on a machine with
    /// two CPUs to offer.
    fn of_round(round: usize, apart: bool) -> anyhow::Result<Placement> {
        let allowed = gauntlet_affinity::current()?;
        let host = allowed[round % allowed.len()];
        let device = (apart && allowed.len() > 1).then(|| allowed[(round + 1) % allowed.len()]);
        Ok(Placement { host, device })
    }

    fn describe(&self) -> String {
        match self.device {
            Some(device) => format!(
                "the replays and echoes with the harness on CPU {}, agent and echo on CPU {device} (another pair each round)",
                self.host
            ),
            None => "the replays and echoes where the scheduler puts them".into(),
        }
    }
}

/// One round of the on-device comparison: a fresh agent and the plan's build loaded in this
/// process take the windows in turn, one window each (which goes first alternating), after the
/// same warm-up. Turns of 16 windows each, the agent's pipelined as in a replay, gave per-round
/// ratios of 0.62-1.75 here against 1.05-1.42 for turns of one: each side's speed over a run of
/// windows depends on what it alone has left in the caches. Answers the agent's device times and
/// the in-process times, µs, in window order.
fn paired_round(
    runtimes: &Runtimes,
    plan: &Plan,
    round: usize,
    cpu: u32,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    use gauntlet_wire::{InferRequest, Request, Response};
    let _pinned = Pinned::to(&[cpu])?;
    let board = &plan.boards[0];
    let timeouts = &board.timeouts;
    let mut agent = gauntlet_runner::connect::LocalDriver
        .open(board, None)
        .context("start the agent")?;
    gauntlet_runner::session::handshake(&mut *agent, board).map_err(anyhow::Error::msg)?;
    let model = &plan.models[0];
    let mut answer = None;
    for request in gauntlet_runner::session::upload_requests(model, &model.builds[0], 0) {
        answer = Some(agent.link().call(&request, timeouts.load)?);
    }
    if !matches!(answer, Some(Response::Loaded(_))) {
        bail!("the agent did not load the build: {answer:?}");
    }
    let mut local = load_in_process(runtimes, plan)?;
    let windows = &plan.windows;
    let warmup = plan.scenario.run.warmup.min(windows.len());
    let (mut agent_us, mut local_us) = (Vec::new(), Vec::new());
    let mut out = Vec::new();
    // The warm-up windows, then the pass.
    for (step, w) in (0..warmup).chain(0..windows.len()).enumerate() {
        let window = windows.window(w);
        let (mut device, mut in_process) = (0.0, 0.0);
        for side in [(step + round) % 2, 1 - (step + round) % 2] {
            if side == 0 {
                let t = Instant::now();
                local.run(window, &mut out)?;
                in_process = t.elapsed().as_nanos() as f64 / 1e3;
                continue;
            }
            let request = Request::Infer(InferRequest {
                slot: 0,
                seq: step as u32 + 1,
                window_len: windows.window_len as u32,
                data: window.to_vec(),
            });
            device = match agent.link().call(&request, timeouts.batch)? {
                Response::Outputs(o) if o.device_time_ns.len() == 1 => {
                    o.device_time_ns[0] as f64 / 1e3
                }
                other => bail!("the agent answered an inference with {other:?}"),
            };
        }
        if step >= warmup {
            agent_us.push(device);
            local_us.push(in_process);
        }
    }
    let _ = agent.link().call(&Request::EndSession, timeouts.connect);
    Ok((agent_us, local_us))
}

/// The transport's floor under the batch-1 replay: the bytes of a real batch-1 request frame
/// echoed by `cat` through a child's stdio pipes (the agent's transport), kept `depth` deep in
/// flight as the replay keeps its requests, with no framing work, no model and no timing on the
/// echo's side. Answers the wall time per frame (µs), the same per-window statistic as
/// [`overhead_per_inference`] over the same number of frames as the replay has windows.
fn pipe_echo(
    frame: &[u8],
    depth: usize,
    frames: usize,
    cat_cpu: Option<u32>,
) -> anyhow::Result<f64> {
    // All frames in flight sit in the two pipes at once; more than a pipe holds would deadlock.
    const PIPE_BYTES: usize = 64 * 1024;
    let depth = depth.clamp(1, (PIPE_BYTES / frame.len()).max(1));
    let mut child = {
        // `cat` inherits the mask it is started with; this thread gets its own back at once.
        let _for_cat = cat_cpu.map(|cpu| Pinned::to(&[cpu])).transpose()?;
        Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start `cat` for the pipe echo")?
    };
    let mut stdin = child.stdin.take().context("cat's stdin")?;
    let mut stdout = child.stdout.take().context("cat's stdout")?;
    let mut back = vec![0u8; frame.len()];
    let warmup = 200;
    let total = warmup + frames;
    let mut started = Instant::now();
    let mut sent = 0;
    for answered in 0..total {
        while sent < total && sent < answered + depth {
            stdin.write_all(frame)?;
            sent += 1;
        }
        stdout.read_exact(&mut back)?;
        if answered + 1 == warmup {
            started = Instant::now();
        }
    }
    let took = started.elapsed();
    drop(stdin);
    let _ = child.wait();
    if back != frame {
        bail!("`cat` echoed other bytes than it was sent");
    }
    Ok(took.as_nanos() as f64 / 1e3 / frames.max(1) as f64)
}

/// The first window of `plan` as the batch-1 request frame the replay sends.
fn request_frame(plan: &Plan) -> Vec<u8> {
    let mut frame = Vec::new();
    gauntlet_wire::encode_frame(
        &gauntlet_wire::Request::Infer(gauntlet_wire::InferRequest {
            slot: 0,
            seq: 1,
            window_len: plan.windows.window_len as u32,
            data: plan.windows.window(0).to_vec(),
        }),
        &mut frame,
    );
    frame
}

/// What the link and harness add per inference over the replay: the requests' service intervals
/// tile the replay when requests are pipelined, so their sum less the device's own time, per
/// window. (A per-request difference is meaningless with several requests in flight: two
/// responses read together give the second a service interval shorter than its device time.)
fn overhead_per_inference(build: &BuildRecord) -> f64 {
    let service: u64 = build.requests.iter().map(|r| r.service_ns).sum();
    let device: u64 = build.requests.iter().map(|r| r.device_ns).sum();
    let windows: u64 = build.requests.iter().map(|r| u64::from(r.windows)).sum();
    (service as f64 - device as f64) / 1e3 / windows.max(1) as f64
}

/// One runtime's plans and what its rounds measured.
struct RuntimeBench {
    name: String,
    version: String,
    batched: Plan,
    single: Plan,
    in_process: Blocks,
    agent: Blocks,
    overhead_batched: Vec<f64>,
    overhead_single: Vec<f64>,
    /// The pipe echo of the batch-1 request frame, pipelined as the replay is, per round.
    echo: Vec<f64>,
    /// The same echo one frame at a time, for scale.
    echo_blocking: Vec<f64>,
}

impl RuntimeBench {
    fn new(
        runtimes: &Runtimes,
        scenario: &Scenario,
        name: &str,
        batch: usize,
    ) -> anyhow::Result<RuntimeBench> {
        let info = runtimes
            .get(name)
            .with_context(|| format!("no runtime `{name}` in this build of gauntlet"))?
            .check()?;
        Ok(RuntimeBench {
            name: name.to_string(),
            version: info.version,
            batched: single_build_plan(scenario, name, LocalTransport::Stdio, batch)?,
            single: single_build_plan(scenario, name, LocalTransport::Stdio, 1)?,
            in_process: Blocks::default(),
            agent: Blocks::default(),
            overhead_batched: Vec::new(),
            overhead_single: Vec::new(),
            echo: Vec::new(),
            echo_blocking: Vec::new(),
        })
    }

    /// One block of each side, window by window, then the replays that measure the overhead.
    fn round(&mut self, runtimes: &Runtimes, round: usize, apart: bool) -> anyhow::Result<()> {
        // The paired round's CPU is the replay's host CPU, apart or not.
        let placement = Placement::of_round(round, apart)?;
        let (agent, local) = paired_round(runtimes, &self.single, round, placement.host)?;
        self.in_process.push(round, &local);
        self.agent.push(round, &agent);
        let _host = placement
            .device
            .map(|_| Pinned::to(&[placement.host]))
            .transpose()?;
        for plan in [&mut self.batched, &mut self.single] {
            plan.boards[0].cpus = placement.device.into_iter().collect();
        }
        self.overhead_batched
            .push(overhead_per_inference(&replay(&self.batched)?));
        self.overhead_single
            .push(overhead_per_inference(&replay(&self.single)?));
        // Right after the batch-1 replay, so the pair sees the same machine.
        let frame = request_frame(&self.single);
        let frames = self.single.windows.len();
        self.echo
            .push(pipe_echo(&frame, REPLAY_DEPTH, frames, placement.device)?);
        self.echo_blocking
            .push(pipe_echo(&frame, 1, frames, placement.device)?);
        Ok(())
    }

    fn ratio(&self) -> anyhow::Result<BlockRatio> {
        let options = RatioOptions {
            seed: 1,
            ..RatioOptions::default()
        };
        Ok(block_ratio(
            &self.in_process.samples,
            &self.in_process.blocks,
            &self.agent.samples,
            &self.agent.blocks,
            &options,
        )?)
    }

    /// Prints this runtime's figures and returns its agent / in-process ratio.
    fn report(&mut self, batch: usize) -> anyhow::Result<f64> {
        let ratio = self.ratio()?;
        let ci = ratio.ci.as_ref().map_or_else(
            || {
                format!(
                    "no interval: {} rounds, {} needed",
                    ratio.pairs, ratio.min_pairs
                )
            },
            |ci| {
                format!(
                    "[{:.3}, {:.3}] {:.0}% CI",
                    ci.lo,
                    ci.hi,
                    ci.confidence * 100.0
                )
            },
        );
        let mut per_round: Vec<f64> = self
            .agent
            .block_medians()
            .iter()
            .zip(self.in_process.block_medians())
            .map(|(a, l)| a / l)
            .collect();
        per_round.sort_by(f64::total_cmp);
        let agent_p50 = median(&mut self.agent.samples.clone());
        let local_p50 = median(&mut self.in_process.samples.clone());
        say!("{} {} (cwru_cnn fp32):", self.name, self.version);
        say!(
            "  on-device p50: agent {agent_p50:.1} µs vs in-process {local_p50:.1} µs → ratio {:.3} {ci} over {} interleaved rounds; per-round ratios {:.3}–{:.3} (target within 5 %)",
            ratio.ratio,
            ratio.pairs,
            per_round.first().copied().unwrap_or(f64::NAN),
            per_round.last().copied().unwrap_or(f64::NAN),
        );
        let mut echo_ratios: Vec<f64> = self
            .overhead_single
            .iter()
            .zip(&self.echo)
            .map(|(o, e)| o / e)
            .collect();
        let echo_ratio = median(&mut echo_ratios);
        let batched = median(&mut self.overhead_batched);
        let single = median(&mut self.overhead_single);
        let echo = median(&mut self.echo);
        let echo_blocking = median(&mut self.echo_blocking);
        say!(
            "  harness overhead per inference over the replay: batch {batch} {batched:.2} µs = {:.1} % of device time (target ≤ 10 %)",
            100.0 * batched / agent_p50,
        );
        say!(
            "  batch 1: {single:.1} µs = {echo_ratio:.2} × the raw pipe echo of the same {}-byte request frame, {REPLAY_DEPTH} in flight as the replay keeps them, {echo:.1} µs per frame (median of per-round ratios {:.2}–{:.2}; target ≤ 1.2 ×); one frame at a time the echo takes {echo_blocking:.1} µs",
            request_frame(&self.single).len(),
            echo_ratios.first().copied().unwrap_or(f64::NAN),
            echo_ratios.last().copied().unwrap_or(f64::NAN),
        );
        Ok(ratio.ratio)
    }
}

/// One bench run; answers each runtime's name and agent / in-process ratio.
fn bench_once(
    repo: &Path,
    runtimes: &Runtimes,
    options: &BenchOptions,
) -> anyhow::Result<Vec<(String, f64)>> {
    let cwru = gauntlet_spec::load_scenario(&repo.join(CWRU_SCENARIO))
        .map_err(|d| anyhow::anyhow!("load the CWRU scenario:\n{d}"))?;
    let skab = gauntlet_spec::load_scenario(&repo.join("scenarios/skab-anomaly.toml"))
        .map_err(|d| anyhow::anyhow!("load the SKAB scenario:\n{d}"))?;
    let mut benches = Vec::new();
    for name in [gauntlet_runtime::TRACT, gauntlet_runtime::ONNXRUNTIME] {
        match RuntimeBench::new(runtimes, &cwru, name, options.batch) {
            Ok(b) => benches.push(b),
            // tract is built in; onnxruntime needs its library, and the bench still runs without.
            Err(e) if name != gauntlet_runtime::TRACT => {
                say!("{name}: not measured ({e:#})")
            }
            Err(e) => return Err(e),
        }
    }
    let cwru_tcp = single_build_plan(
        &cwru,
        gauntlet_runtime::TRACT,
        LocalTransport::Tcp,
        options.batch,
    )?;
    let skab_stdio = single_build_plan(
        &skab,
        gauntlet_runtime::TRACT,
        LocalTransport::Stdio,
        SKAB_BATCH,
    )?;
    let (mut over_tcp, mut skab_ratio) = (Vec::new(), Vec::new());
    for round in 0..options.rounds {
        for b in &mut benches {
            b.round(runtimes, round, options.agent_apart)?;
        }
        over_tcp.push(overhead_per_inference(&replay(&cwru_tcp)?));
        let skab_agent = replay(&skab_stdio)?;
        let (_, skab_local_wall) = in_process(runtimes, &skab_stdio)?;
        // Throughput: windows per second through the agent over the replay (the requests' service
        // times, which tile the replay when requests are pipelined) against the in-process loop
        // over the same windows. Process start and model load are one-off and left out of both.
        let replay_s = skab_agent
            .requests
            .iter()
            .map(|r| r.service_ns)
            .sum::<u64>() as f64
            / 1e9;
        let agent_rate = skab_agent.device_ns.len() as f64 / replay_s;
        let local_rate = skab_stdio.windows.len() as f64 / skab_local_wall;
        skab_ratio.push(agent_rate / local_rate);
    }
    say!(
        "gauntlet bench: {} rounds; agent and in-process loop alternate within each round, on one CPU (another each round); {}",
        options.rounds,
        Placement::of_round(0, options.agent_apart)?.describe()
    );
    let mut ratios = Vec::new();
    for b in &mut benches {
        let ratio = b.report(options.batch)?;
        ratios.push((b.name.clone(), ratio));
    }
    say!(
        "tract over TCP: harness overhead per inference (batch {}) {:.2} µs (target ≤ 50 µs)",
        options.batch,
        median(&mut over_tcp)
    );
    say!(
        "skab_mlp fp32 replay throughput through the agent (tract, batch {SKAB_BATCH}, pipelined) vs in-process loop: {:.1} % (target ≥ 80 %)",
        100.0 * median(&mut skab_ratio)
    );
    Ok(ratios)
}

pub fn bench(repo: &Path, options: &BenchOptions) -> anyhow::Result<()> {
    if options.rounds == 0 || options.runs == 0 {
        bail!("--rounds and --runs must be at least 1");
    }
    let runtimes = Runtimes::available(None);
    let mut runs: Vec<Vec<(String, f64)>> = Vec::new();
    for run in 0..options.runs {
        if options.runs > 1 {
            say!("run {} of {}", run + 1, options.runs);
        }
        runs.push(bench_once(repo, &runtimes, options)?);
    }
    if options.runs > 1 {
        for (i, (name, _)) in runs[0].iter().enumerate() {
            let ratios: Vec<f64> = runs.iter().filter_map(|r| r.get(i)).map(|r| r.1).collect();
            let mut sorted = ratios.clone();
            let mid = median(&mut sorted);
            let spread = ratios
                .iter()
                .map(|r| (r / mid - 1.0).abs())
                .fold(0.0, f64::max);
            say!(
                "{name}: agent / in-process ratio over {} runs: {} → within ±{:.1} % of their median {mid:.3} (target ±3 %)",
                ratios.len(),
                ratios
                    .iter()
                    .map(|r| format!("{r:.3}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                100.0 * spread
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_thread_and_its_children_keep_to_its_cpu_until_it_is_dropped() {
        let all = gauntlet_affinity::current().unwrap();
        for round in 0..all.len() + 1 {
            assert_eq!(Placement::of_round(round, false).unwrap().device, None);
            let placement = Placement::of_round(round, true).unwrap();
            assert_eq!(placement.host, all[round % all.len()]);
            if all.len() > 1 {
                assert_ne!(placement.device, Some(placement.host));
            }
            let pinned = Pinned::to(&[placement.host]).unwrap();
            assert_eq!(gauntlet_affinity::current().unwrap(), [placement.host]);
            // A child starts with the mask: the agent shares the in-process loop's CPU.
            let child = Command::new("grep")
                .args(["Cpus_allowed_list", "/proc/self/status"])
                .output()
                .unwrap();
            let line = String::from_utf8(child.stdout).unwrap();
            assert_eq!(
                line.split_whitespace().nth(1),
                Some(&*placement.host.to_string()),
                "{line}"
            );
            drop(pinned);
            assert_eq!(gauntlet_affinity::current().unwrap(), all);
        }
    }

    #[test]
    fn the_pipe_echo_returns_every_frame_whatever_the_depth() {
        // A frame too large for four to sit in a pipe must not deadlock the echo.
        for (len, depth) in [(4114, REPLAY_DEPTH), (4114, 1), (40_000, REPLAY_DEPTH)] {
            let frame: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let per_frame = pipe_echo(&frame, depth, 50, None).unwrap();
            assert!(
                per_frame.is_finite() && per_frame > 0.0,
                "{len} bytes, {depth} deep: {per_frame}"
            );
        }
        // With `cat` on a CPU of its own, this thread keeps its mask.
        let all = gauntlet_affinity::current().unwrap();
        let frame = vec![7u8; 4114];
        pipe_echo(&frame, REPLAY_DEPTH, 50, all.last().copied()).unwrap();
        assert_eq!(gauntlet_affinity::current().unwrap(), all);
    }
}
