//! Raw measurements → figures: the runner's records become the results schema's values.

use std::collections::BTreeMap;

use crate::{
    BoardOutcome, BoardRecord, BuildOutcome, BuildRecord, Plan, PowerRecord, RunRecord,
    TemperatureRecord,
};
use gauntlet_measure::{
    Block, RatioOptions, SummaryOptions, TimedWindow, WindowRule, agreement, argmax,
    block_intervals, block_ratio, classification, median_of_windows, paired_ratio, quantile_sorted,
    summarize,
};
use gauntlet_power::{MeasuredWindow, downsample, energy_per_inference};
use gauntlet_wire::TimingSource;

use gauntlet_results::*;

/// Facts about the run that the measurements do not hold.
pub struct RunMeta {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub harness_version: String,
    pub git_commit: Option<String>,
}

pub fn analyze(plan: &Plan, record: &RunRecord, meta: &RunMeta) -> Results {
    let scenario = &plan.scenario;
    let boards: Vec<BoardResult> = record
        .boards
        .iter()
        .map(|b| board_result(plan, b))
        .collect();
    let work: Vec<(&BoardRecord, &BoardResult, &BuildRecord)> = record
        .boards
        .iter()
        .zip(&boards)
        .flat_map(|(board, result)| board.builds.iter().map(move |b| (board, result, b)))
        .collect();
    // Bootstrap intervals over tens of thousands of samples per build dominate the time after a
    // run; builds are independent, so every core takes its share, and order is kept.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = work.len().div_ceil(threads).max(1);
    let entries: Vec<Entry> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&(board, result, build)| entry(plan, board, result, build, meta))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("analysing a build does not panic"))
            .collect()
    });
    let infra = boards.iter().any(|b| b.status == BoardStatus::InfraFailed)
        || entries.iter().any(|e| e.status == EntryStatus::Interrupted);
    Results {
        schema: SCHEMA.into(),
        schema_version: SCHEMA_VERSION,
        run_id: meta.run_id.clone(),
        started_at: meta.started_at.clone(),
        finished_at: meta.finished_at.clone(),
        harness: Harness {
            version: meta.harness_version.clone(),
            git_commit: meta.git_commit.clone(),
        },
        scenario: FileRef {
            name: scenario.name.clone(),
            path: scenario.source.path.display().to_string(),
            sha256: scenario.source.sha256.clone(),
        },
        rig: FileRef {
            name: plan.rig.name.clone(),
            path: plan.rig.source.path.display().to_string(),
            sha256: plan.rig.source.sha256.clone(),
        },
        dataset: DatasetInfo {
            name: scenario.dataset.name.clone(),
            sha256: plan.windows.sha256.clone(),
            windows: plan.windows.len(),
            subset_of: plan.windows.subset_of,
            window_len: plan.windows.window_len,
            classes: scenario.dataset.classes.clone(),
        },
        boards,
        boards_wall_s: Some(record.wall.as_secs_f64()),
        entries,
        gates: Vec::new(),
        verdicts: Vec::new(),
        outcome: if infra {
            Outcome::InfraFailure
        } else {
            Outcome::Pass
        },
    }
}

/// What a board's times are. A rig that labels a board `emulated = "true"` (an arm64 Linux board
/// under QEMU on an x86 host) says its agent's real clock times an emulator, not the silicon it
/// stands for, whatever that clock is.
fn timing_source(planned: Option<&gauntlet_spec::Board>, timing: TimingSource) -> Source {
    let emulated_board =
        planned.is_some_and(|b| b.labels.get(EMULATED_LABEL).is_some_and(|v| v == "true"));
    match timing {
        TimingSource::EmulatedTicks => Source::Emulated,
        _ if emulated_board => Source::Emulated,
        TimingSource::MonotonicClock | TimingSource::CycleCounter => Source::Measured,
    }
}

/// The rig's board a record is of.
fn planned<'p>(plan: &'p Plan, board: &str) -> Option<&'p gauntlet_spec::Board> {
    plan.boards.iter().find(|b| b.id == board)
}

/// The rig label that marks a board as an emulator.
const EMULATED_LABEL: &str = "emulated";

fn board_result(plan: &Plan, board: &BoardRecord) -> BoardResult {
    let machine = crate::machine::machine(board);
    let planned = planned(plan, &board.board);
    let (status, failure) = match &board.outcome {
        BoardOutcome::Completed => match unstable(plan, planned, board, machine.as_ref()) {
            Some(reason) => (
                BoardStatus::InfraFailed,
                Some(Failure {
                    stage: crate::machine::UNSTABLE_STAGE.into(),
                    reason,
                }),
            ),
            None => (BoardStatus::Completed, None),
        },
        BoardOutcome::InfraFailed { stage, reason } => (
            BoardStatus::InfraFailed,
            Some(Failure {
                stage: serde_json::to_value(stage)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                reason: reason.clone(),
            }),
        ),
    };
    BoardResult {
        board: board.board.clone(),
        kind: board.kind.name().to_string(),
        status,
        failure,
        agent: board.hello.as_ref().map(|h| AgentInfo {
            name: h.agent.clone(),
            version: h.agent_version.clone(),
            protocol_version: h.protocol_version,
        }),
        facts: board.hello.as_ref().map(|h| {
            let f = &h.facts;
            BoardFacts {
                arch: f.arch.clone(),
                cpu_model: f.cpu_model.clone(),
                cores: f.cores,
                ram_kib: f.ram_kib,
                os: f.os.clone(),
                kernel: f.kernel.clone(),
                cpu_governor: f.cpu_governor.clone(),
                clock_hz: f.clock_hz,
                cpu_features: f.cpu_features.clone(),
            }
        }),
        timing_source: board
            .hello
            .as_ref()
            .map(|h| timing_source(planned, h.timing)),
        power_trace: board.power.as_ref().and_then(|p| power_trace(board, p)),
        power_error: board.power.as_ref().and_then(|p| p.error.clone()),
        health: board
            .health
            .as_ref()
            .and_then(|h| serde_json::to_value(h).ok()),
        deploy: board.deployment.as_ref().map(|d| Deploy {
            cache_hits: d.cache_hits.clone(),
            uploaded: d.uploaded.clone(),
            bytes_sent: d.bytes_sent,
        }),
        temperatures: board.temperatures.as_ref().map(temperatures),
        session_s: board.session.map(|d| d.as_secs_f64()),
        machine,
        fresh_agents: board.fresh_agents,
        // An agent that said hello got every CPU it was given: it refuses to start otherwise.
        agent_cpus: match (&board.hello, planned) {
            (Some(_), Some(b)) => b.cpus.clone(),
            _ => Vec::new(),
        },
    }
}

/// Why a board whose scenario asks for a stable machine (`[run] stable_machine`) is not fit: the
/// measurements stand, but they do not describe one machine state.
fn unstable(
    plan: &Plan,
    planned: Option<&gauntlet_spec::Board>,
    board: &BoardRecord,
    machine: Option<&Machine>,
) -> Option<String> {
    let rules = plan.scenario.run_for(planned?);
    let changes = &machine?.changes;
    (rules.stable_machine && !changes.is_empty()).then(|| {
        let what: Vec<String> = changes.iter().map(MachineChange::describe).collect();
        format!(
            "keep the machine of board `{}` stable (`[run] stable_machine = true`): {}",
            board.board,
            what.join("; ")
        )
    })
}

/// One series per thermal zone, zones told apart by their position in each reading (two zones
/// may share a type name).
fn temperatures(record: &TemperatureRecord) -> Temperatures {
    let mut zones: Vec<ZoneTemperatures> = Vec::new();
    for (t_s, reading) in &record.samples {
        for (i, (name, celsius)) in reading.iter().enumerate() {
            if zones.len() <= i {
                zones.push(ZoneTemperatures {
                    zone: name.clone(),
                    min_c: f64::INFINITY,
                    max_c: f64::NEG_INFINITY,
                    t_s: Vec::new(),
                    celsius: Vec::new(),
                });
            }
            let zone = &mut zones[i];
            zone.min_c = zone.min_c.min(*celsius);
            zone.max_c = zone.max_c.max(*celsius);
            zone.t_s.push(*t_s);
            zone.celsius.push(*celsius);
        }
    }
    Temperatures {
        interval_s: record.interval.as_secs_f64(),
        samples: record.samples.len(),
        exposed: !zones.is_empty(),
        zones,
        error: record.error.clone(),
    }
}

fn entry(
    plan: &Plan,
    board: &BoardRecord,
    board_result: &BoardResult,
    build: &BuildRecord,
    meta: &RunMeta,
) -> Entry {
    let (status, error) = match &build.outcome {
        BuildOutcome::Completed => (EntryStatus::Completed, None),
        BuildOutcome::Rejected { kind, message } => (
            EntryStatus::Rejected,
            Some(EntryError {
                kind: *kind,
                message: message.clone(),
            }),
        ),
        BuildOutcome::Interrupted { reason } => (
            EntryStatus::Interrupted,
            Some(EntryError {
                kind: RejectionKind::Infrastructure,
                message: reason.clone(),
            }),
        ),
        BuildOutcome::NotRun => (EntryStatus::NotRun, None),
    };
    let reference = board
        .builds
        .iter()
        .find(|b| b.model == build.model && b.reference);
    Entry {
        board: board.board.clone(),
        model: build.model.clone(),
        variant: build.variant.clone(),
        reference: build.reference,
        champion: build.champion,
        runtime: Some(runtime_used(board, build)),
        status,
        error,
        metrics: build
            .loaded
            .as_ref()
            .map(|_| metrics(plan, board, build, reference)),
        provenance: Provenance {
            model_path: build.artifact.display().to_string(),
            model_sha256: build.sha256.clone(),
            model_bytes: build.size_bytes,
            firmware_sha256: build.firmware.as_ref().map(|f| f.sha256.clone()),
            dataset_sha256: plan.windows.sha256.clone(),
            harness_version: meta.harness_version.clone(),
            board_facts: board_result.facts.clone(),
        },
    }
}

/// The build's runtime settings with what the board said about that runtime; firmware boards run
/// their built-in engine, named by the firmware.
fn runtime_used(board: &BoardRecord, build: &BuildRecord) -> RuntimeUsed {
    let hello = board.hello.as_ref();
    let spec = &build.runtime;
    let firmware = hello.filter(|h| h.runtimes.is_empty());
    let found = hello
        .and_then(|h| h.runtimes.iter().find(|r| r.name == spec.name))
        .and_then(|r| r.status.as_ref().ok());
    RuntimeUsed {
        name: firmware.map_or_else(|| spec.name.clone(), |h| h.agent.clone()),
        version: match firmware {
            Some(h) => Some(h.agent_version.clone()),
            None => found.map(|f| f.version.clone()),
        },
        providers: if spec.providers.is_empty() {
            vec!["cpu".into()]
        } else {
            spec.providers.clone()
        },
        threads: spec.threads,
        optimization: spec.optimization.clone(),
        library_sha256: found.and_then(|f| f.library_sha256.map(hex::encode)),
    }
}

/// `blocks` lays the samples out in interleaved blocks (device times); `None` for figures taken
/// per request, which get per-sample intervals only.
fn latency(
    samples_us: &[f64],
    blocks: Option<&[Block]>,
    seed: u64,
    source: Source,
) -> Option<Latency> {
    let options = SummaryOptions {
        seed,
        ..SummaryOptions::default()
    };
    let s = summarize(samples_us, &options).ok()?;
    let by_block = blocks.and_then(|b| {
        block_intervals(
            samples_us,
            b,
            options.bootstrap_resamples,
            options.confidence,
            seed,
        )
        .ok()
    });
    Some(Latency::from_summary(s, by_block, source))
}

/// The same model file on an earlier runtime on this board (the first of a runtime matrix), which
/// this build is compared with.
fn runtime_baseline<'b>(board: &'b BoardRecord, build: &BuildRecord) -> Option<&'b BuildRecord> {
    let at = board.builds.iter().position(|b| std::ptr::eq(b, build))?;
    board.builds[..at].iter().find(|b| {
        b.model == build.model
            && b.sha256 == build.sha256
            && b.champion == build.champion
            && b.runtime.name != build.runtime.name
    })
}

fn metrics(
    plan: &Plan,
    board: &BoardRecord,
    build: &BuildRecord,
    reference: Option<&BuildRecord>,
) -> Metrics {
    let seed = plan.scenario.run.seed;
    let timing = build
        .timing
        .map(|t| timing_source(planned(plan, &board.board), t))
        .unwrap_or(Source::Measured);
    // Outputs come from the same execution as the timings: emulated execution, emulated scores.
    let execution = timing;
    let scored = build.windows_scored();
    let truth = &plan.windows.labels[..scored.min(plan.windows.labels.len())];
    let predicted: Vec<u32> = build
        .outputs
        .chunks_exact(build.output_len.max(1))
        .map(|s| argmax(s).unwrap_or(u32::MAX))
        .collect();
    let classes = plan.scenario.dataset.classes.len();
    let scores = classification(&predicted, truth, classes).ok();
    let device_us: Vec<f64> = build.device_ns.iter().map(|&ns| ns as f64 / 1e3).collect();
    let roundtrip_us: Vec<f64> = build
        .requests
        .iter()
        .map(|r| r.service_ns as f64 / 1e3)
        .collect();
    let overhead_us: Vec<f64> = build
        .requests
        .iter()
        .map(|r| (r.service_ns as f64 - r.device_ns as f64) / 1e3 / r.windows.max(1) as f64)
        .collect();
    let windows_per_request = (!build.requests.is_empty()).then(|| {
        build.requests.iter().map(|r| r.windows as f64).sum::<f64>() / build.requests.len() as f64
    });
    let agreement = reference
        .filter(|r| !build.reference && r.windows_scored() > 0 && r.output_len == build.output_len)
        .and_then(|r| {
            let n = scored.min(r.windows_scored()) * build.output_len;
            agreement(&build.outputs[..n], &r.outputs[..n], build.output_len)
                .ok()
                .map(|a| AgreementFigures::new(&r.variant, a, execution))
        });
    let latency_ratio_vs_reference = reference
        .filter(|r| !build.reference && !r.device_ns.is_empty() && !build.device_ns.is_empty())
        .and_then(|r| {
            let reference_us: Vec<f64> = r.device_ns.iter().map(|&ns| ns as f64 / 1e3).collect();
            let options = RatioOptions {
                seed,
                ..RatioOptions::default()
            };
            paired_ratio(&reference_us, &device_us, &options).ok()
        });
    let by_block = |baseline: &BuildRecord| {
        let baseline_us: Vec<f64> = baseline
            .device_ns
            .iter()
            .map(|&ns| ns as f64 / 1e3)
            .collect();
        let options = RatioOptions {
            seed,
            ..RatioOptions::default()
        };
        let ratio = block_ratio(
            &baseline_us,
            &baseline.blocks,
            &device_us,
            &build.blocks,
            &options,
        )
        .ok()?;
        Some((ratio, baseline_us))
    };
    let latency_ratio_by_block = reference
        .filter(|r| !build.reference && !r.device_ns.is_empty() && !build.device_ns.is_empty())
        .and_then(|r| by_block(r).map(|(ratio, _)| ratio));
    let with_baseline_p50 = |baseline: &BuildRecord| {
        let (ratio, mut baseline_us) = by_block(baseline)?;
        baseline_us.sort_unstable_by(f64::total_cmp);
        Some((ratio, quantile_sorted(&baseline_us, 0.5)))
    };
    let latency_ratio_vs_champions = board
        .builds
        .iter()
        .filter(|c| c.champion && !build.champion && c.model == build.model)
        .filter_map(|c| {
            let (ratio, champion_p50_us) = with_baseline_p50(c)?;
            Some(ChampionRatio {
                champion_variant: c.variant.clone(),
                champion_sha256: c.sha256.clone(),
                champion_p50_us,
                ratio,
            })
        })
        .collect();
    let latency_ratio_vs_runtime = runtime_baseline(board, build)
        .filter(|b| !b.device_ns.is_empty() && !build.device_ns.is_empty())
        .and_then(|b| {
            let (ratio, baseline_p50_us) = with_baseline_p50(b)?;
            Some(RuntimeRatio {
                baseline_variant: b.variant.clone(),
                baseline_runtime: b.runtime.name.clone(),
                baseline_p50_us,
                ratio,
            })
        });
    let loaded = build.loaded.as_ref();
    let energy = energy(board, build);
    let mut sources = BTreeMap::new();
    let mut metrics = Metrics {
        windows_scored: scored,
        accuracy: scores.as_ref().map(|s| s.accuracy),
        accuracy_ci: scores.as_ref().map(|s| s.accuracy_ci),
        macro_f1: scores.as_ref().map(|s| s.macro_f1),
        confusion: scores.map(|s| s.confusion),
        latency_device_us: latency(&device_us, Some(&build.blocks), seed, timing),
        latency_roundtrip_us: latency(&roundtrip_us, None, seed, Source::Measured),
        overhead_per_inference_us: latency(&overhead_us, None, seed, Source::Measured),
        windows_per_request,
        agreement,
        latency_ratio_vs_reference,
        latency_ratio_by_block,
        latency_ratio_vs_champions,
        latency_ratio_vs_runtime,
        model_load_ms: loaded.map(|l| l.load_time_us as f64 / 1e3),
        rss_before_load_kib: loaded.and_then(|l| l.memory_before.rss_kib),
        rss_after_load_kib: loaded.and_then(|l| l.memory_after.rss_kib),
        peak_rss_kib: loaded.and_then(|l| l.memory_after.peak_rss_kib),
        model_size_bytes: build.size_bytes,
        energy: energy.as_ref().ok().cloned().flatten(),
        throughput: throughput(&build.throughput_windows, timing),
        energy_error: energy.err(),
        flash_bytes: build.firmware.as_ref().map(|f| f.flash_bytes),
        static_ram_bytes: build.firmware.as_ref().map(|f| f.static_ram_bytes),
        heap_after_load_bytes: loaded
            .filter(|_| build.firmware.is_some())
            .and_then(|l| l.memory_after.heap_bytes)
            .map(u64::from),
        stack_high_water_bytes: build
            .memory_end
            .as_ref()
            .and_then(|m| m.stack_high_water_bytes)
            .map(u64::from),
        sources: BTreeMap::new(),
        task: crate::task_analysis::task_figures(plan, build, reference, execution),
    };
    for (name, present, source) in [
        ("accuracy", metrics.accuracy.is_some(), execution),
        ("macro_f1", metrics.macro_f1.is_some(), execution),
        ("confusion", metrics.confusion.is_some(), execution),
        ("model_load_ms", metrics.model_load_ms.is_some(), timing),
        ("peak_rss_kib", metrics.peak_rss_kib.is_some(), execution),
        (
            "rss_before_load_kib",
            metrics.rss_before_load_kib.is_some(),
            execution,
        ),
        (
            "rss_after_load_kib",
            metrics.rss_after_load_kib.is_some(),
            execution,
        ),
        ("model_size_bytes", true, Source::Measured),
        // Section sizes of the ELF: a fact of the image, wherever it runs.
        (
            "flash_bytes",
            metrics.flash_bytes.is_some(),
            Source::Measured,
        ),
        (
            "static_ram_bytes",
            metrics.static_ram_bytes.is_some(),
            Source::Measured,
        ),
        (
            "heap_after_load_bytes",
            metrics.heap_after_load_bytes.is_some(),
            execution,
        ),
        (
            "stack_high_water_bytes",
            metrics.stack_high_water_bytes.is_some(),
            execution,
        ),
    ] {
        if present {
            sources.insert(name.to_string(), source);
        }
    }
    metrics.sources = sources;
    metrics
}

fn power_source(source: gauntlet_power::Source) -> Source {
    match source {
        gauntlet_power::Source::Measured => Source::Measured,
        gauntlet_power::Source::Simulated => Source::Simulated,
    }
}

/// Buckets kept of a power trace: enough to draw, small enough for any report.
const TRACE_BUCKETS: usize = 600;

fn power_trace(board: &BoardRecord, power: &PowerRecord) -> Option<PowerTrace> {
    let trace = power.trace.as_ref()?;
    let origin = trace.samples.first()?.t_ns;
    let seconds = |ns: u64| ns.saturating_sub(origin) as f64 / 1e9;
    let buckets = downsample(&trace.samples, TRACE_BUCKETS);
    let mut windows: Vec<TraceWindow> = power
        .idle
        .iter()
        .map(|(model, w)| TraceWindow {
            label: format!("{model} idle"),
            start_s: seconds(w.start_ns),
            end_s: seconds(w.end_ns),
        })
        .collect();
    for build in &board.builds {
        windows.extend(build.energy_windows.iter().map(|w| TraceWindow {
            label: build.variant.clone(),
            start_s: seconds(w.start_ns),
            end_s: seconds(w.end_ns),
        }));
    }
    Some(PowerTrace {
        sensor: trace.sensor.name.clone(),
        source: power_source(trace.sensor.source),
        t_s: buckets.iter().map(|b| seconds(b.start_ns)).collect(),
        watts_mean: buckets.iter().map(|b| b.mean_w).collect(),
        watts_min: buckets.iter().map(|b| b.min_w).collect(),
        watts_max: buckets.iter().map(|b| b.max_w).collect(),
        windows,
        sample_hz: trace.stats.achieved_rate_hz,
        samples: trace.samples.len(),
        late_fraction: trace.stats.dropped_fraction,
    })
}

/// The windows' median rate, as MLPerf Tiny reports performance, and whether they meet its rule
/// (5 windows of at least 10 s); `None` without windows.
fn throughput(windows: &[MeasuredWindow], source: Source) -> Option<Throughput> {
    let timed: Vec<TimedWindow> = windows
        .iter()
        .filter(|w| w.end_ns > w.start_ns)
        .map(|w| TimedWindow {
            duration_s: (w.end_ns - w.start_ns) as f64 / 1e9,
            inferences: w.inferences,
        })
        .collect();
    let outcome = WindowRule::default().evaluate(&timed);
    let rates = timed.iter().map(|w| w.inferences as f64 / w.duration_s);
    Some(Throughput {
        per_second: outcome.median_throughput?,
        min_per_second: rates.clone().fold(f64::INFINITY, f64::min),
        max_per_second: rates.fold(0.0, f64::max),
        windows: timed.len(),
        window_s: median_of_windows(&timed.iter().map(|w| w.duration_s).collect::<Vec<_>>())?,
        inferences: timed.iter().map(|w| w.inferences).sum(),
        meets_mlperf_tiny_rule: outcome.satisfied,
        source,
    })
}

/// `Ok(None)` when the build was not measured for energy; an error when it was but no figure came.
fn energy(board: &BoardRecord, build: &BuildRecord) -> Result<Option<Energy>, String> {
    let (Some(power), false) = (board.power.as_ref(), build.energy_windows.is_empty()) else {
        return Ok(None);
    };
    let Some(trace) = power.trace.as_ref() else {
        return Err("the power sensor gave no trace".into());
    };
    let Some((_, idle)) = power.idle.iter().find(|(model, _)| *model == build.model) else {
        return Err("no idle baseline was measured".into());
    };
    let estimate = energy_per_inference(&trace.samples, *idle, &build.energy_windows)
        .map_err(|e| format!("failed to {e}"))?;
    Ok(Some(Energy {
        per_inference_j: estimate.energy_per_inference_j,
        per_inference_error_j: estimate.uncertainty_j,
        idle_w: estimate.idle_power_w,
        average_w: estimate.average_power_w,
        peak_w: estimate.peak_power_w,
        total_j: estimate.total_energy_j,
        windows: estimate.windows.len(),
        inferences: build.energy_windows.iter().map(|w| w.inferences).sum(),
        source: power_source(trace.sensor.source),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn temperature_series_per_zone_with_extremes() {
        let reading = |a: f64, b: f64| vec![("cpu".to_string(), a), ("cpu".to_string(), b)];
        let t = temperatures(&TemperatureRecord {
            interval: Duration::from_secs(1),
            samples: vec![(0.0, reading(50.0, 40.0)), (1.0, reading(55.5, 39.0))],
            error: None,
        });
        assert!(t.exposed);
        assert_eq!((t.samples, t.interval_s), (2, 1.0));
        assert_eq!(t.zones.len(), 2, "two zones of one type stay apart");
        assert_eq!((t.zones[0].min_c, t.zones[0].max_c), (50.0, 55.5));
        assert_eq!(t.zones[1].celsius, [40.0, 39.0]);
        assert_eq!(t.zones[1].t_s, [0.0, 1.0]);
    }

    #[test]
    fn a_board_without_thermal_zones_is_not_exposed() {
        let t = temperatures(&TemperatureRecord {
            interval: Duration::from_secs(1),
            samples: vec![(0.0, vec![]), (1.0, vec![])],
            error: None,
        });
        assert!(!t.exposed);
        assert_eq!(t.samples, 2);
        assert!(t.zones.is_empty());
    }

    fn window(seconds: f64, inferences: u64) -> MeasuredWindow {
        let start_ns = 5_000_000_000;
        MeasuredWindow {
            start_ns,
            end_ns: start_ns + (seconds * 1e9) as u64,
            inferences,
        }
    }

    #[test]
    fn throughput_is_the_median_window_rate_and_says_whether_mlperf_tiny_is_met() {
        // 100, 200, 150, 120 and 500 inferences per second: the median is 150.
        let windows = [
            window(10.0, 1_000),
            window(10.0, 2_000),
            window(12.0, 1_800),
            window(10.0, 1_200),
            window(10.0, 5_000),
        ];
        let t = throughput(&windows, Source::Emulated).unwrap();
        assert_eq!(t.per_second, 150.0);
        assert_eq!((t.min_per_second, t.max_per_second), (100.0, 500.0));
        assert_eq!((t.windows, t.window_s, t.inferences), (5, 10.0, 11_000));
        assert!(t.meets_mlperf_tiny_rule);
        assert_eq!(t.source, Source::Emulated);

        let short = throughput(&windows[..3], Source::Measured).unwrap();
        assert_eq!(short.per_second, 150.0);
        assert!(!short.meets_mlperf_tiny_rule, "three windows are too few");
        let brief = throughput(&[window(1.0, 10); 5], Source::Measured).unwrap();
        assert!(!brief.meets_mlperf_tiny_rule, "1 s windows are too short");
        assert!(throughput(&[], Source::Measured).is_none());
    }
}
