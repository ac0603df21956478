//! The session engine against the agent's real `serve()` on a thread (scripted runtime), through
//! the runner's own link: no processes, no SSH, no QEMU. Each test runs well under a second.

use std::path::Path;

use gauntlet_mcu::ProbeCall;
use gauntlet_runner::connect::ProbeDriver;
use gauntlet_runner::testing::{Cut, DeviceLog, DeviceScript, FakeWiring, InProcessDriver};
use gauntlet_runner::{
    BoardDriver, BoardOutcome, BoardRecord, BuildOutcome, BuildRecord, Plan, RejectionKind, Stage,
    Unfenced, events::NoEvents, fence::RevokedAfter, plan, run_plan_with,
};
use gauntlet_runtime::ScriptedRuntime;
use gauntlet_wire::{Capabilities, ErrorKind, FIRMWARE_CAPABILITIES, ModelSource, WireError};

const CLASSES: usize = 2;

const LOCAL_BOARD: &str = r#"
kind = "local"

[boards.connection]
agent = "bundled"
transport = "stdio"
"#;

/// A 135-byte ONNX model, `y = x · I` for `x` of shape [1, 2] (written by hand, checked with
/// onnxruntime).
const IDENTITY_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/identity_2x2.onnx");

/// A plan over `windows` windows of two values each, `variants` builds of one model, with the
/// scenario's `[run]` table set to `run`, on one local board.
fn plan_with(dir: &Path, windows: usize, variants: &[&str], run: &str) -> Plan {
    let builds = variants
        .iter()
        .map(|v| {
            // The scripted runtime ignores the bytes, but the plan loads each file (it refuses
            // what is not ONNX or does not fit): an identity over the two-value window does.
            std::fs::copy(IDENTITY_MODEL, dir.join(format!("{v}.onnx"))).unwrap();
            (v.to_string(), format!("onnx = \"{v}.onnx\""))
        })
        .collect();
    plan_on(dir, windows, builds, run, LOCAL_BOARD)
}

/// `builds` are `(variant, artifact key)`; `board` is the board's table after its id.
fn plan_on(
    dir: &Path,
    windows: usize,
    builds: Vec<(String, String)>,
    run: &str,
    board: &str,
) -> Plan {
    let mut csv = String::from("x,label\n");
    for row in 0..windows * 2 {
        csv.push_str(&format!("{},{}\n", row as f32 * 0.5, (row / 2) % CLASSES));
    }
    std::fs::write(dir.join("data.csv"), csv).unwrap();
    let builds: Vec<String> = builds
        .iter()
        .enumerate()
        .map(|(i, (variant, artifact))| {
            format!(
                "{{ variant = \"{variant}\", {artifact}{} }}",
                if i == 0 { ", reference = true" } else { "" }
            )
        })
        .collect();
    let scenario = format!(
        r#"
[scenario]
name = "inproc"

[dataset]
name = "ramp"
files = ["data.csv"]
features = ["x"]
window = {{ rows = 2, stride = 2 }}
labels = {{ column = "label", classes = ["a", "b"] }}

[[models]]
name = "m"
input_shape = [1, 2]
builds = [{}]

[run]
{run}
"#,
        builds.join(", ")
    );
    std::fs::write(dir.join("scenario.toml"), scenario).unwrap();
    std::fs::write(
        dir.join("rig.toml"),
        format!(
            r#"
[rig]
name = "inproc"

[[boards]]
id = "dut"
{board}
[boards.timeouts]
connect = "5s"
load = "5s"
batch = "300ms"
"#
        ),
    )
    .unwrap();
    let scenario = gauntlet_spec::load_scenario(&dir.join("scenario.toml")).unwrap();
    let rig = gauntlet_spec::load_rig(&dir.join("rig.toml")).unwrap();
    plan(scenario, rig).unwrap()
}

fn run(plan: &Plan, driver: &dyn BoardDriver) -> BoardRecord {
    let mut record = run_plan_with(plan, &[driver], &NoEvents, &Unfenced);
    assert_eq!(record.boards.len(), 1);
    record.boards.remove(0)
}

/// The double answers as tract, the runtime the scenario's builds ask for by default.
fn scripted() -> ScriptedRuntime {
    ScriptedRuntime::new(CLASSES).standing_in_for("tract")
}

fn slots(driver: &InProcessDriver) -> Vec<u8> {
    driver.log().infers.iter().map(|&(slot, _)| slot).collect()
}

#[test]
fn builds_take_turns_block_by_block_and_the_first_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(
        dir.path(),
        4,
        &["a", "b"],
        "warmup = 0\ninterleave_block = 2",
    );
    let driver = InProcessDriver::new(scripted(), DeviceScript::default());
    let board = run(&plan, &driver);
    assert_eq!(board.outcome, BoardOutcome::Completed);
    // At least six blocks a pass, so four windows make blocks of one (not the two asked for):
    // block 0 a then b, block 1 b then a, and so on.
    assert_eq!(slots(&driver), [0, 1, 1, 0, 0, 1, 1, 0]);
    let expected: Vec<f32> = plan
        .windows
        .data
        .chunks(plan.windows.window_len)
        .flat_map(|w| scripted().expected_scores(w))
        .collect();
    for build in &board.builds {
        assert_eq!(build.outcome, BuildOutcome::Completed, "{}", build.variant);
        assert_eq!(
            build.outputs, expected,
            "{} scores in window order",
            build.variant
        );
        assert_eq!(build.device_ns.len(), 4);
    }
}

#[test]
fn warm_up_runs_first_and_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(dir.path(), 4, &["a"], "warmup = 3");
    let driver = InProcessDriver::new(scripted(), DeviceScript::default());
    let board = run(&plan, &driver);
    let build = &board.builds[0];
    assert_eq!(build.outcome, BuildOutcome::Completed);
    assert_eq!(
        driver.log().infers.len(),
        3 + 4,
        "three warm-up requests, then the pass"
    );
    assert_eq!(build.warmup, 3);
    assert_eq!(build.device_ns.len(), 4);
    assert_eq!(build.requests.len(), 4);
    assert_eq!(build.outputs.len(), 4 * CLASSES);
}

#[test]
fn min_duration_repeats_whole_passes_and_keeps_the_first_pass_scores() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(dir.path(), 4, &["a"], "warmup = 0\nmin_duration = \"40ms\"");
    let mut runtime = scripted();
    runtime.compute = std::time::Duration::from_millis(2);
    let driver = InProcessDriver::new(runtime, DeviceScript::default());
    let build = run(&plan, &driver).builds.remove(0);
    assert_eq!(build.outcome, BuildOutcome::Completed);
    let measured = build.device_ns.len();
    assert!(
        measured > 4,
        "a pass of 4 × 2 ms cannot fill 40 ms: {measured} inferences"
    );
    assert_eq!(measured % 4, 0, "whole passes only: {measured}");
    assert!(build.device_ns.iter().all(|&ns| ns >= 2_000_000));
    assert_eq!(
        build.outputs.len(),
        4 * CLASSES,
        "scores of the first pass only"
    );
}

/// Two builds replayed three times, warm-up two, with `[run]` extended by `extra`.
fn three_replays(extra: &str) -> (BoardRecord, DeviceLog) {
    let dir = tempfile::tempdir().unwrap();
    let run_table = format!("warmup = 2\nrepeats = 3\ninterleave_block = 1\n{extra}");
    let plan = plan_with(dir.path(), 6, &["a", "b"], &run_table);
    let driver = InProcessDriver::new(scripted(), DeviceScript::default());
    let board = run(&plan, &driver);
    assert_eq!(board.outcome, BoardOutcome::Completed);
    for build in &board.builds {
        assert_eq!(build.outcome, BuildOutcome::Completed, "{}", build.variant);
        assert_eq!(build.device_ns.len(), 3 * 6, "three whole passes measured");
        assert_eq!(build.outputs.len(), 6 * CLASSES, "scores of the first pass");
        let repeats: Vec<u32> = build.blocks.iter().map(|b| b.repeat).collect();
        assert_eq!(repeats, [[0; 6], [1; 6], [2; 6]].concat());
    }
    (board, driver.log())
}

fn count(log: &DeviceLog, request: &str) -> usize {
    log.requests.iter().filter(|&&r| r == request).count()
}

#[test]
fn each_replay_runs_in_a_fresh_agent_loaded_and_warmed_up_again() {
    let (board, log) = three_replays("");
    assert_eq!(board.fresh_agents, 2);
    assert_eq!(count(&log, "hello"), 3, "one handshake per agent process");
    assert_eq!(
        count(&log, "load-commit"),
        3 * 2,
        "both builds in every process"
    );
    assert_eq!(count(&log, "end-session"), 3);
    assert_eq!(
        log.infers.len(),
        3 * 2 * 2 + 3 * 6 * 2,
        "every process warms both builds up before its pass"
    );
}

#[test]
fn replays_share_one_agent_when_the_scenario_says_so() {
    let (board, log) = three_replays("fresh_agent = false");
    assert_eq!(board.fresh_agents, 0);
    assert_eq!(count(&log, "hello"), 1);
    assert_eq!(count(&log, "load-commit"), 2);
    assert_eq!(log.infers.len(), 2 * 2 + 3 * 6 * 2, "one warm-up");
}

#[test]
fn a_fresh_agent_that_is_not_the_same_agent_fails_the_board_and_keeps_the_first_replay() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(dir.path(), 6, &["a"], "warmup = 0\nrepeats = 3");
    let script = DeviceScript {
        later_agent_version: Some("9.9.9".into()),
        ..DeviceScript::default()
    };
    let driver = InProcessDriver::new(scripted(), script);
    let board = run(&plan, &driver);
    let BoardOutcome::InfraFailed { stage, reason } = &board.outcome else {
        panic!("{:?}", board.outcome);
    };
    assert_eq!(*stage, Stage::Handshake);
    assert!(
        reason.contains("differs from the first: agent:") && reason.contains("9.9.9"),
        "{reason}"
    );
    assert_eq!(board.fresh_agents, 0);
    assert_eq!(
        board.builds[0].device_ns.len(),
        6,
        "the first replay's measurements are kept"
    );
}

#[test]
fn a_board_whose_fence_is_revoked_stops_at_the_next_block_and_keeps_what_it_measured() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(
        dir.path(),
        6,
        &["a", "b"],
        "warmup = 0\ninterleave_block = 1",
    );
    let driver = InProcessDriver::new(scripted(), DeviceScript::default());
    let fence = RevokedAfter::new("dut", 5);
    let mut record = run_plan_with(&plan, &[&driver as &dyn BoardDriver], &NoEvents, &fence);
    let board = record.boards.remove(0);
    let BoardOutcome::InfraFailed { stage, reason } = &board.outcome else {
        panic!("{:?}", board.outcome);
    };
    assert_eq!(*stage, Stage::Lock);
    assert!(
        reason.contains("keep board `dut`") && reason.contains("the test's fence revoked it"),
        "{reason}"
    );
    assert_eq!(
        fence.asked(),
        6,
        "asked before every block, up to the refused one"
    );
    assert_eq!(
        driver.log().infers.len(),
        5,
        "nothing is sent to the board once the fence is revoked"
    );
    let measured: usize = board.builds.iter().map(|b| b.device_ns.len()).sum();
    assert_eq!(measured, 5, "the five blocks before it are kept");
    for build in &board.builds {
        assert!(
            matches!(build.outcome, BuildOutcome::Interrupted { .. }),
            "{}: {:?}",
            build.variant,
            build.outcome
        );
    }
}

/// Replays 42 windows of one build at `batch` on a device that holds each answer until
/// `hold_for_in_flight` requests are in flight (or a moment passes); the build and the device's log.
fn replay_holding(batch: usize, hold_for_in_flight: usize) -> (BuildRecord, DeviceLog) {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(
        dir.path(),
        42,
        &["a"],
        &format!("warmup = 0\nbatch = {batch}"),
    );
    let script = DeviceScript {
        hold_for_in_flight,
        ..DeviceScript::default()
    };
    let driver = InProcessDriver::new(scripted(), script);
    let build = run(&plan, &driver).builds.remove(0);
    assert_eq!(build.outcome, BuildOutcome::Completed);
    (build, driver.log())
}

#[test]
fn requests_carry_a_batch_and_up_to_four_are_in_flight() {
    // 42 windows make six blocks of seven, each sent as batches of 3, 3 and 1.
    let (build, log) = replay_holding(3, 3);
    let windows: Vec<usize> = log.infers.iter().map(|&(_, w)| w).collect();
    assert_eq!(windows, [3, 3, 1].repeat(6));
    assert_eq!(
        log.max_in_flight, 3,
        "a whole block of three requests in flight"
    );
    let host: Vec<u32> = build.requests.iter().map(|r| r.windows).collect();
    assert_eq!(host, [3, 3, 1].repeat(6));
    assert_eq!(build.device_ns.len(), 42);

    // One window per request: seven requests a block, never more than four in flight.
    let (_, log) = replay_holding(1, 5);
    assert_eq!(log.max_in_flight, 4);
}

#[test]
fn a_device_declaring_small_frames_and_no_pipelining_is_sent_one_small_request_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(dir.path(), 7, &["a"], "warmup = 0\nbatch = 5");
    // Room for two windows of two floats per request, and nothing queued behind it.
    let capabilities = Capabilities {
        max_request_bytes: 82,
        pipeline_depth: 1,
        models: ModelSource::Upload,
        machine_state: true,
    };
    assert_eq!(capabilities.windows_per_request(2), 2);
    let script = DeviceScript {
        capabilities: Some(capabilities),
        ..DeviceScript::default()
    };
    let driver = InProcessDriver::new(scripted(), script);
    let build = run(&plan, &driver).builds.remove(0);
    assert_eq!(build.outcome, BuildOutcome::Completed);
    let log = driver.log();
    let windows: Vec<usize> = log.infers.iter().map(|&(_, w)| w).collect();
    assert_eq!(windows, [2, 2, 2, 1]);
    assert_eq!(log.max_in_flight, 1);
    assert!(log.largest_infer <= 82, "{} bytes", log.largest_infer);
}

#[test]
fn a_device_with_its_model_built_in_is_asked_to_use_it_not_sent_one() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(dir.path(), 4, &["a"], "warmup = 0");
    let script = DeviceScript {
        capabilities: Some(FIRMWARE_CAPABILITIES),
        ..DeviceScript::default()
    };
    let driver = InProcessDriver::new(scripted(), script);
    let board = run(&plan, &driver);
    let requests = driver.log().requests;
    assert!(requests.contains(&"use-builtin"), "{requests:?}");
    assert!(!requests.contains(&"load-begin"), "{requests:?}");
    // The agent holds no built-in model: that build is out, the board is fine.
    assert!(matches!(
        &board.builds[0].outcome,
        BuildOutcome::Rejected { kind, .. } if *kind == RejectionKind::NoModel
    ));
    assert_eq!(board.outcome, BoardOutcome::Completed);
}

#[test]
fn a_build_rejected_mid_block_leaves_and_the_other_build_finishes() {
    let dir = tempfile::tempdir().unwrap();
    // 24 windows: six blocks of four, so the second request is inside a's first block.
    let plan = plan_with(
        dir.path(),
        24,
        &["a", "b"],
        "warmup = 0\ninterleave_block = 4",
    );
    let script = DeviceScript {
        reject_infer: Some((
            1,
            WireError {
                kind: ErrorKind::Inference,
                message: "scripted failure".into(),
            },
        )),
        ..DeviceScript::default()
    };
    let driver = InProcessDriver::new(scripted(), script);
    let board = run(&plan, &driver);
    assert_eq!(board.outcome, BoardOutcome::Completed);
    let (a, b) = (&board.builds[0], &board.builds[1]);
    assert_eq!(
        a.outcome,
        BuildOutcome::Rejected {
            kind: RejectionKind::Inference,
            message: "scripted failure".into()
        }
    );
    assert_eq!(b.outcome, BuildOutcome::Completed);
    assert_eq!(b.device_ns.len(), 24);
    // Nothing more was sent to the rejected build once its answer came back: at most its first
    // block's four requests, all of which may be in flight before the failure returns.
    let to_a = slots(&driver).iter().filter(|&&s| s == 0).count();
    assert!(to_a <= 4, "{to_a} requests to the rejected build");
}

#[test]
fn an_answer_to_the_wrong_request_stops_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(dir.path(), 4, &["a"], "warmup = 0");
    let script = DeviceScript {
        wrong_seq: Some(1),
        ..DeviceScript::default()
    };
    let driver = InProcessDriver::new(scripted(), script);
    let board = run(&plan, &driver);
    let BoardOutcome::InfraFailed { stage, reason } = &board.outcome else {
        panic!("{:?}", board.outcome)
    };
    assert_eq!(*stage, Stage::Replay);
    assert!(reason.contains("keep the conversation in step"), "{reason}");
    assert!(matches!(
        board.builds[0].outcome,
        BuildOutcome::Interrupted { .. }
    ));
    assert_eq!(
        board.builds[0].device_ns.len(),
        1,
        "the answer before it is kept"
    );
}

fn cut_run(cut: Cut) -> BoardRecord {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(dir.path(), 8, &["a"], "warmup = 0");
    let script = DeviceScript {
        // An answer is about 20 bytes: at least one whole answer gets through first.
        cut: Some((45, cut)),
        ..DeviceScript::default()
    };
    run(&plan, &InProcessDriver::new(scripted(), script))
}

fn interrupted_in_replay(board: &BoardRecord) -> &str {
    let BoardOutcome::InfraFailed { stage, reason } = &board.outcome else {
        panic!("{:?}", board.outcome)
    };
    assert_eq!(*stage, Stage::Replay, "{reason}");
    let build = &board.builds[0];
    assert!(matches!(build.outcome, BuildOutcome::Interrupted { .. }));
    assert!(
        (1..8).contains(&build.device_ns.len()),
        "samples before the cut are kept: {}",
        build.device_ns.len()
    );
    reason
}

#[test]
fn a_link_that_closes_mid_replay_interrupts_the_build() {
    let board = cut_run(Cut::Close);
    let reason = interrupted_in_replay(&board);
    assert!(
        reason.contains("closed it") || reason.contains("send to board `dut`"),
        "{reason}"
    );
}

#[test]
fn a_corrupted_byte_mid_replay_interrupts_the_build() {
    let board = cut_run(Cut::Corrupt);
    let reason = interrupted_in_replay(&board);
    assert!(reason.contains("corrupted on the link"), "{reason}");
}

#[test]
fn a_device_that_stops_answering_is_a_timeout_not_a_hang() {
    let board = cut_run(Cut::Hang);
    let reason = interrupted_in_replay(&board);
    assert!(reason.contains("within 300ms"), "{reason}");
    assert!(reason.contains("stopped answering"), "{reason}");
}

#[test]
fn a_probe_board_is_flashed_reset_and_run_through_the_debug_probe_trait() {
    let dir = tempfile::tempdir().unwrap();
    // Any ELF with loadable sections passes the fake probe's check, as firmware would the real
    // one's; this test program is one.
    let elf = dir.path().join("fw.elf");
    std::os::unix::fs::symlink(std::env::current_exe().unwrap(), &elf).unwrap();
    let board = r#"
kind = "stm32-probe"

[boards.connection]
probe = "0483:374b"
chip = "STM32F446RETx"
uart = "/dev/null"
"#;
    let builds = vec![("fw".to_string(), "firmware = \"fw.elf\"".to_string())];
    let plan = plan_on(dir.path(), 4, builds, "warmup = 1", board);
    let wiring = FakeWiring {
        probe: Default::default(),
        device: InProcessDriver::new(
            scripted(),
            DeviceScript {
                capabilities: Some(FIRMWARE_CAPABILITIES),
                builtin_window: Some(vec![1, 2]),
                ..DeviceScript::default()
            },
        ),
    };
    let driver = ProbeDriver { wiring: &wiring };
    let record = run(&plan, &driver);
    assert_eq!(record.outcome, BoardOutcome::Completed);
    let build = &record.builds[0];
    assert_eq!(build.outcome, BuildOutcome::Completed);
    assert_eq!(build.device_ns.len(), 4);
    assert_eq!(build.outputs.len(), 4 * CLASSES);
    assert!(build.firmware.as_ref().is_some_and(|f| f.elf == elf));
    assert_eq!(
        wiring.calls(),
        [ProbeCall::Flash { elf, verify: true }, ProbeCall::Reset]
    );
    let log = wiring.device.log();
    assert!(log.requests.contains(&"use-builtin"), "{:?}", log.requests);
    assert_eq!(log.max_in_flight, 1, "firmware takes one request at a time");
}

/// A machine that reads `governor` at `mhz` on both cores.
fn machine_at(governor: &str, mhz: u32) -> gauntlet_wire::MachineState {
    gauntlet_wire::MachineState {
        load_1m: Some(0.5),
        freq_khz: vec![mhz * 1000; 2],
        governors: vec![governor.into()],
        ..Default::default()
    }
}

/// Six windows in blocks of one, two builds; the machine drops from 1500 MHz `ondemand` to
/// 600 MHz `powersave` from the fourth reading (block 3) on.
fn machine_change_run(run: &str) -> (BoardRecord, gauntlet_results::Results) {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_with(dir.path(), 6, &["a", "b"], run);
    let steady = machine_at("ondemand", 1500);
    let script = DeviceScript {
        machine_states: vec![
            steady.clone(),
            steady.clone(),
            steady,
            machine_at("powersave", 600),
        ],
        ..DeviceScript::default()
    };
    let driver = InProcessDriver::new(scripted(), script);
    let record = run_plan_with(&plan, &[&driver as &dyn BoardDriver], &NoEvents, &Unfenced);
    let meta = gauntlet_runner::RunMeta {
        run_id: "r".into(),
        started_at: "t0".into(),
        finished_at: "t1".into(),
        harness_version: "0".into(),
        git_commit: None,
    };
    let results = gauntlet_runner::analyze(&plan, &record, &meta);
    let requests = driver.log().requests;
    let readings = requests.iter().filter(|r| **r == "machine-state").count();
    assert_eq!(
        readings,
        6 + 1,
        "one reading per block and one after the last: {requests:?}"
    );
    (record.boards.into_iter().next().unwrap(), results)
}

#[test]
fn a_machine_state_change_between_blocks_is_flagged_with_its_block() {
    let (board, results) = machine_change_run("warmup = 0");
    assert_eq!(board.outcome, BoardOutcome::Completed);
    let machine = results.boards[0]
        .machine
        .as_ref()
        .expect("machine recorded");
    let blocks: Vec<(u32, Option<f64>)> = machine
        .blocks
        .iter()
        .map(|b| (b.block, b.freq_mhz_max))
        .collect();
    assert_eq!(
        blocks,
        [0, 1, 2, 3, 4, 5].map(|b| (b, Some(if b < 3 { 1500.0 } else { 600.0 })))
    );
    let summary = machine.summary.as_ref().unwrap();
    assert_eq!(
        (summary.freq_mhz_min, summary.freq_mhz_max),
        (Some(600.0), Some(1500.0))
    );
    assert_eq!(summary.governors, ["ondemand", "powersave"]);
    let changes: Vec<(&str, u32)> = machine
        .changes
        .iter()
        .map(|c| (c.kind.as_str(), c.block))
        .collect();
    assert_eq!(changes, [("governor", 3), ("frequency", 3)]);
    assert_eq!(
        results.outcome,
        gauntlet_results::Outcome::Pass,
        "flagged, not refused"
    );
}

#[test]
fn a_stable_machine_scenario_refuses_the_run_as_infrastructure_and_keeps_the_samples() {
    let (board, results) = machine_change_run("warmup = 0\nstable_machine = true");
    let b = &results.boards[0];
    assert_eq!(b.status, gauntlet_results::BoardStatus::InfraFailed);
    let failure = b.failure.as_ref().unwrap();
    assert_eq!(failure.stage, "machine-state");
    assert!(
        failure.reason.contains("board `dut`")
            && failure
                .reason
                .contains("governor ondemand → powersave in block 3 of replay 0 of `m`"),
        "{}",
        failure.reason
    );
    assert_eq!(results.outcome, gauntlet_results::Outcome::InfraFailure);
    for (build, entry) in board.builds.iter().zip(&results.entries) {
        assert_eq!(build.device_ns.len(), 6, "{}", build.variant);
        let latency = entry
            .metrics
            .as_ref()
            .and_then(|m| m.latency_device_us.as_ref());
        assert_eq!(latency.map(|l| l.n), Some(6), "{}", entry.variant);
    }
}
