//! `gauntlet bench`: what the harness costs, measured side by side in one run against an in-process
//! tract loop and a raw pipe echo, so the figures are ratios that carry over to other machines.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::stdout::say;
use anyhow::{Context, bail};
use gauntlet_runner::events::NoEvents;
use gauntlet_runner::{BuildRecord, Plan};
use gauntlet_runtime::{LoadOptions, LoadedModel, OutputSelector, Runtime, TractRuntime};
use gauntlet_spec::{Connection, LocalTransport, Pacing, Rig, Scenario};

/// SKAB windows are small (128 values, ≈5 µs of compute): a request must carry many to amortise
/// the link.
const SKAB_BATCH: usize = 256;

pub struct BenchOptions {
    pub rounds: usize,
    pub batch: usize,
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

/// Only the reference build, replayed once, over the given transport.
fn single_build_plan(
    scenario: &Scenario,
    transport: LocalTransport,
    batch: usize,
) -> anyhow::Result<Plan> {
    let mut scenario = scenario.clone();
    for model in &mut scenario.models {
        model.builds.retain(|b| b.reference);
    }
    scenario.run.batch = batch;
    scenario.run.warmup = 10;
    scenario.run.repeats = 1;
    scenario.run.min_inferences = 0;
    scenario.run.min_duration = std::time::Duration::ZERO;
    scenario.run.pacing = Pacing::AsFastAsPossible;
    scenario.overrides.clear();
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

/// Per-inference times of the reference build run in this process, and the loop's wall time.
fn in_process(plan: &Plan) -> anyhow::Result<(Vec<f64>, f64)> {
    let model = &plan.models[0];
    let build = &model.builds[0];
    let options = LoadOptions {
        input_name: model.input.clone(),
        window_shape: model.input_shape.clone(),
        output: match &model.output {
            gauntlet_spec::OutputSelector::Index(i) => OutputSelector::Index(*i),
            gauntlet_spec::OutputSelector::Name(n) => OutputSelector::Name(n.clone()),
        },
        ..Default::default()
    };
    let mut loaded = TractRuntime.load(&build.bytes, &options)?;
    let mut out = Vec::new();
    for i in 0..10.min(plan.windows.len()) {
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

/// The machine's floor for one blocking round trip through a child's pipes: `cat` echoing 64 bytes.
fn pipe_echo_floor(round_trips: usize) -> anyhow::Result<f64> {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("start `cat` for the pipe echo floor")?;
    let mut stdin = child.stdin.take().context("cat's stdin")?;
    let mut stdout = child.stdout.take().context("cat's stdout")?;
    let message = [0x5au8; 64];
    let mut back = [0u8; 64];
    let mut times = Vec::with_capacity(round_trips);
    for i in 0..round_trips + 200 {
        let t = Instant::now();
        stdin.write_all(&message)?;
        stdin.flush()?;
        stdout.read_exact(&mut back)?;
        if i >= 200 {
            times.push(t.elapsed().as_nanos() as f64 / 1e3);
        }
    }
    drop(stdin);
    let _ = child.wait();
    Ok(median(&mut times))
}

fn overhead_p50(build: &BuildRecord) -> f64 {
    let mut per_inference: Vec<f64> = build
        .requests
        .iter()
        .map(|r| (r.service_ns as f64 - r.device_ns as f64) / 1e3 / r.windows.max(1) as f64)
        .collect();
    median(&mut per_inference)
}

fn device_us(build: &BuildRecord) -> Vec<f64> {
    build.device_ns.iter().map(|&ns| ns as f64 / 1e3).collect()
}

pub fn bench(repo: &Path, options: &BenchOptions) -> anyhow::Result<()> {
    let cwru = gauntlet_spec::load_scenario(&repo.join("scenarios/cwru-quantization.toml"))
        .map_err(|d| anyhow::anyhow!("load the CWRU scenario:\n{d}"))?;
    let skab = gauntlet_spec::load_scenario(&repo.join("scenarios/skab-anomaly.toml"))
        .map_err(|d| anyhow::anyhow!("load the SKAB scenario:\n{d}"))?;
    let cwru_stdio = single_build_plan(&cwru, LocalTransport::Stdio, options.batch)?;
    let cwru_tcp = single_build_plan(&cwru, LocalTransport::Tcp, options.batch)?;
    let cwru_unbatched = single_build_plan(&cwru, LocalTransport::Stdio, 1)?;
    let skab_stdio = single_build_plan(&skab, LocalTransport::Stdio, SKAB_BATCH)?;

    let (mut inproc_med, mut agent_med) = (Vec::new(), Vec::new());
    let (mut over_stdio, mut over_tcp, mut over_single) = (Vec::new(), Vec::new(), Vec::new());
    let (mut skab_ratio, mut echo) = (Vec::new(), Vec::new());
    // Each round runs every contender back to back, so background load and thermal state hit all.
    for _ in 0..options.rounds {
        let (mut local, _) = in_process(&cwru_stdio)?;
        let stdio = replay(&cwru_stdio)?;
        let tcp = replay(&cwru_tcp)?;
        let single = replay(&cwru_unbatched)?;
        let skab_agent = replay(&skab_stdio)?;
        let (_, skab_local_wall) = in_process(&skab_stdio)?;
        inproc_med.push(median(&mut local));
        agent_med.push(median(&mut device_us(&stdio)));
        over_stdio.push(overhead_p50(&stdio));
        over_tcp.push(overhead_p50(&tcp));
        over_single.push(overhead_p50(&single));
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
        echo.push(pipe_echo_floor(2000)?);
    }
    let inproc = median(&mut inproc_med);
    let agent = median(&mut agent_med);
    say!(
        "gauntlet bench: {} rounds, medians across rounds",
        options.rounds
    );
    say!(
        "cwru_cnn fp32 on-device latency p50: agent {agent:.1} µs vs in-process tract {inproc:.1} µs → ratio {:.3} (target within 5 %)",
        agent / inproc
    );
    say!(
        "harness overhead per inference p50 (batch {}, pipelined): stdio {:.2} µs, TCP {:.2} µs (target ≤ 50 µs)",
        options.batch,
        median(&mut over_stdio),
        median(&mut over_tcp)
    );
    say!(
        "harness overhead per inference p50 (batch 1, two requests in flight): stdio {:.1} µs; raw pipe echo floor (one blocking round trip) on this machine {:.1} µs",
        median(&mut over_single),
        median(&mut echo)
    );
    say!(
        "skab_mlp fp32 replay throughput through the agent (batch {SKAB_BATCH}, pipelined) vs in-process loop: {:.1} % (target ≥ 80 %)",
        100.0 * median(&mut skab_ratio)
    );
    Ok(())
}
