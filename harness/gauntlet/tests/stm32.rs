//! Issue 7 end to end: `gauntlet run scenarios/cwru-stm32.toml --rig rigs/local.toml` compiles each
//! build for the MCU engine, builds it into the STM32 firmware, boots it on QEMU's emulated
//! STM32F405 and reports emulated figures. Needs `qemu-system-arm` and Debian's Rust
//! (`scripts/test.sh` installs both).

mod common;

use std::path::Path;

use common::*;
use gauntlet_dataset::{Layout, WindowOrigin, Windows};

const BOARD: &str = "qemu-netduinoplus2";
const SUBSET: usize = 60;

fn run_stm32(rig: &Path, out: &Path, db: &Path) -> std::process::Output {
    let output = gauntlet()
        .env("GAUNTLET_CACHE_DIR", firmware_cache_dir())
        .arg("run")
        .arg("scenarios/cwru-stm32.toml")
        .arg("--rig")
        .arg(rig)
        .arg("--out")
        .arg(out)
        .arg("--db")
        .arg(db)
        .output()
        .expect("start gauntlet");
    eprintln!("--- stdout\n{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Indices (into the 340 held-out windows) of the scenario's stratified subset, by the same
/// selection the harness applies, run over window numbers instead of data.
fn subset_indices() -> Vec<usize> {
    let labels: Vec<u32> = read_f32(&repo().join("scenarios/models/cwru_cnn/testdata/target.f32"))
        .iter()
        .map(|&l| l as u32)
        .collect();
    let numbered = Windows {
        window_len: 1,
        rows: 1,
        features: 1,
        layout: Layout::RowMajor,
        data: (0..labels.len()).map(|i| i as f32).collect(),
        origins: vec![
            WindowOrigin {
                recording: 0,
                first_row: 0
            };
            labels.len()
        ],
        labels,
        timestamps_s: None,
        targets: None,
        last_values: None,
        dropped_past_end: 0,
        sha256: String::new(),
        per_recording: Vec::new(),
        subset_of: None,
    };
    let subset = numbered.stratified_subset(SUBSET);
    subset.data.iter().map(|&i| i as usize).collect()
}

fn metric<'a>(entry: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    path.split('.').fold(&entry["metrics"], |v, key| &v[key])
}

#[test]
fn cwru_fp32_and_int8_run_on_the_emulated_stm32_and_repeat_to_the_tick() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gauntlet.db");
    let rig = repo().join("rigs/local.toml");
    let runs: Vec<serde_json::Value> = ["first", "second"]
        .iter()
        .map(|name| {
            let out = dir.path().join(name);
            let output = run_stm32(&rig, &out, &db);
            assert_eq!(output.status.code(), Some(0), "the STM32 run must pass");
            let results = results(&out);
            let html = std::fs::read_to_string(out.join("report.html")).unwrap();
            assert!(html.contains("a stratified subset of 60 of 340 windows"));
            assert!(html.contains("class=\"badge emulated\""));
            results
        })
        .collect();
    let first = &runs[0];
    assert_eq!(first["dataset"]["windows"], SUBSET);
    assert_eq!(first["dataset"]["subset_of"], 340);
    let board = &first["boards"][0];
    assert_eq!(board["board"], BOARD);
    assert_eq!(board["timing_source"], "emulated");
    assert!(
        board["machine"]["unavailable"]
            .as_str()
            .is_some_and(|why| why.contains("no operating system")),
        "firmware records no machine state and says so: {board}"
    );
    let clock_hz = board["facts"]["clock_hz"]
        .as_f64()
        .expect("the firmware's clock");
    let tick_us = 1e6 / clock_hz;

    let indices = subset_indices();
    let testdata = repo().join("scenarios/models/cwru_cnn/testdata");
    for variant in ["fp32", "int8_qdq"] {
        let e = entry(first, variant);
        assert_eq!(e["status"], "completed", "{variant}: {e}");
        assert_eq!(metric(e, "windows_scored"), SUBSET);
        for figure in [
            "accuracy",
            "stack_high_water_bytes",
            "heap_after_load_bytes",
        ] {
            assert_eq!(metric(e, &format!("sources.{figure}")), "emulated");
        }
        assert_eq!(metric(e, "sources.flash_bytes"), "measured");
        assert_eq!(metric(e, "latency_device_us.source"), "emulated");
        assert!(metric(e, "accuracy_ci.lo").as_f64().unwrap() < 1.0);
        let stack = metric(e, "stack_high_water_bytes").as_u64().unwrap();
        assert!(stack > 0 && stack < 16 * 1024, "{variant}: stack {stack} B");
        assert!(metric(e, "static_ram_bytes").as_u64().is_some());

        // Scores straight from the emulated board against onnxruntime's on the same windows.
        let scores = read_f32(
            &dir.path()
                .join(format!("first/outputs/{BOARD}__cwru_cnn__{variant}.f32")),
        );
        let ort = read_f32(&testdata.join(format!("ort_{variant}.f32")));
        let ort: Vec<f32> = indices
            .iter()
            .flat_map(|&i| ort[i * 10..(i + 1) * 10].to_vec())
            .collect();
        assert_eq!(scores.len(), ort.len());
        let max_delta = scores
            .iter()
            .zip(&ort)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            max_delta <= 1e-4,
            "{variant}: max |Δ| {max_delta} vs onnxruntime"
        );
        assert_eq!(
            argmaxes(&scores, 10),
            argmaxes(&ort, 10),
            "{variant} labels"
        );

        // `-icount shift=0`: the same instructions take the same emulated time, run after run.
        // The median repeats to a tick. A single inference may move by a few: its SysTick
        // readings fall anywhere within a tick (±1), and the SysTick wrap interrupt (every 2^24
        // ticks; ≈10 instructions, under 2 ticks) lands inside some inferences and not others
        // depending on how long the firmware polled its UART before. `+ 2 ns`: ticks → ns rounding.
        let again = entry(&runs[1], variant);
        for (stat, ticks) in [("p50", 1.0), ("min", 3.0), ("max", 3.0)] {
            let (a, b) = (
                metric(e, &format!("latency_device_us.{stat}"))
                    .as_f64()
                    .unwrap(),
                metric(again, &format!("latency_device_us.{stat}"))
                    .as_f64()
                    .unwrap(),
            );
            assert!(
                (a - b).abs() <= ticks * tick_us + 0.002,
                "{variant} {stat}: {a} µs then {b} µs"
            );
        }
    }
    let (fp32, int8) = (entry(first, "fp32"), entry(first, "int8_qdq"));
    let p50 = |e| metric(e, "latency_device_us.p50").as_f64().unwrap();
    assert!(
        p50(int8) < p50(fp32),
        "int8 runs fewer emulated instructions"
    );
    let flash = |e| metric(e, "flash_bytes").as_u64().unwrap();
    assert!(flash(int8) < flash(fp32), "int8 weights take less flash");
}

#[test]
fn a_missing_debug_probe_fails_the_board_naming_its_selector() {
    let dir = tempfile::tempdir().unwrap();
    let rig = write(
        dir.path(),
        "rig.toml",
        r#"
[rig]
name = "bench"

[[boards]]
id = "nucleo"
kind = "stm32-probe"
labels = { family = "stm32" }

[boards.connection]
probe = "0483:374b:gauntlet-no-such-probe"
chip = "STM32F446RETx"
uart = "/dev/gauntlet-no-such-uart"
baud = 921600
"#,
    );
    let out = dir.path().join("out");
    let output = run_stm32(&rig, &out, &dir.path().join("gauntlet.db"));
    assert_eq!(
        output.status.code(),
        Some(3),
        "a missing probe is the rig's fault"
    );
    let results = results(&out);
    let board = &results["boards"][0];
    assert_eq!(board["status"], "infra-failed");
    let reason = board["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("0483:374b:gauntlet-no-such-probe"),
        "{reason}"
    );
    assert!(reason.contains("nucleo"), "{reason}");
    for variant in ["fp32", "int8_qdq"] {
        assert_eq!(entry(&results, variant)["status"], "not-run");
    }
}
