//! Issue 15 on the MCU engine: `gauntlet run scenarios/skab-forecast-stm32.toml --rig
//! rigs/local.toml` (and its autoencoder twin) compiles the SKAB model (fp32 and int8 QDQ) for the
//! MCU engine, boots each build on QEMU's emulated STM32F405, and the board's score for every
//! window of the subset is within 1e-4 of tract's for the same window. Needs `qemu-system-arm` and
//! Debian's Rust (`scripts/test.sh` installs both).

mod common;

use common::*;
use gauntlet_runtime::{LoadOptions, Runtime, TractRuntime};
use gauntlet_spec::Artifact;

const BOARD: &str = "qemu-netduinoplus2";

/// tract's scores, at batch 1 as the board runs them, for each window the harness replayed: the
/// scenario's own dataset and subset, cut by the same code the runner uses.
fn tract_scores(scenario: &gauntlet_spec::Scenario) -> Vec<(String, Vec<f32>)> {
    let windows = gauntlet_dataset::load(&scenario.dataset).unwrap();
    let windows = windows.stratified_subset(scenario.subset.expect("the scenario is a subset"));
    let model = &scenario.models[0];
    let output = model.output.clone();
    model
        .builds
        .iter()
        .map(|build| {
            let Artifact::Onnx(path) = &build.artifact else {
                panic!("{}: the scenario compiles ONNX builds", build.variant)
            };
            let options = LoadOptions {
                window_shape: model.input_shape.clone(),
                output: output.clone(),
                ..LoadOptions::default()
            };
            let mut loaded = TractRuntime
                .load(&std::fs::read(path).unwrap(), &options)
                .unwrap();
            let mut out = Vec::new();
            let scores = (0..windows.len())
                .flat_map(|i| {
                    loaded.run(windows.window(i), &mut out).unwrap();
                    out.clone()
                })
                .collect();
            (build.variant.clone(), scores)
        })
        .collect()
}

/// Runs `scenario_path` (relative to the repository) on the emulated STM32 and compares every window's
/// score of `model` with tract's; `windows` is the size of the whole held-out set.
fn emulated_scores_match_tract(scenario_path: &str, model: &str, windows: usize) {
    let scenario = gauntlet_spec::load_scenario(&repo().join(scenario_path)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = gauntlet()
        .env("GAUNTLET_CACHE_DIR", firmware_cache_dir())
        .args(run_args(
            &repo().join(scenario_path),
            &repo().join("rigs/local.toml"),
            &out,
            Some(dir.path().join("gauntlet.db").to_str().unwrap()),
        ))
        .output()
        .expect("start gauntlet");
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&output.stderr));
    // 48 windows leave the int8 gate INCONCLUSIVE, which these scenarios do not fail on.
    assert_eq!(output.status.code(), Some(0), "the STM32 run must pass");
    let results = results(&out);
    let subset = scenario.subset.unwrap();
    assert_eq!(results["dataset"]["windows"], subset);
    assert_eq!(results["dataset"]["subset_of"], windows);
    assert_eq!(results["boards"][0]["board"], BOARD);
    assert_eq!(results["boards"][0]["timing_source"], "emulated");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("class=\"badge emulated\""));

    for (variant, tract) in tract_scores(&scenario) {
        let e = entry(&results, &variant);
        assert_eq!(e["status"], "completed", "{variant}: {e}");
        let m = &e["metrics"];
        assert_eq!(m["latency_device_us"]["source"], "emulated", "{variant}");
        assert_eq!(m["task"]["source"], "emulated", "{variant}");
        let board = read_f32(&out.join(format!("outputs/{BOARD}__{model}__{variant}.f32")));
        assert_eq!(board.len(), tract.len(), "{variant}: one score per window");
        let deltas: Vec<f32> = board
            .iter()
            .zip(&tract)
            .map(|(b, t)| (b - t).abs())
            .collect();
        let max = deltas.iter().copied().fold(0.0, f32::max);
        eprintln!(
            "{model} {variant}: max |emulated − tract| {max:e} over {} windows; flash {} B, static RAM {} B, heap after load {} B, stack {} B",
            deltas.len(),
            m["flash_bytes"],
            m["static_ram_bytes"],
            m["heap_after_load_bytes"],
            m["stack_high_water_bytes"],
        );
        for (i, d) in deltas.iter().enumerate() {
            assert!(
                *d <= 1e-4,
                "{model} {variant} window {i}: board {} vs tract {}",
                board[i],
                tract[i]
            );
        }
    }
}

#[test]
fn skab_forecasts_on_the_emulated_stm32_match_tract_window_by_window() {
    emulated_scores_match_tract("scenarios/skab-forecast-stm32.toml", "skab_forecast", 8665);
}

#[test]
fn skab_reconstruction_errors_on_the_emulated_stm32_match_tract_window_by_window() {
    emulated_scores_match_tract("scenarios/skab-autoencoder-stm32.toml", "skab_ae", 8745);
}
