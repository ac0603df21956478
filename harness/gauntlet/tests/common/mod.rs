//! Shared helpers: every test runs the real `gauntlet` binary against the real agent.
#![allow(dead_code)] // each test binary uses its own subset

pub mod champion;
pub mod onnxruntime;
pub mod ssh;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// This machine as the only board, with the bundled agent on stdio and no power meter (so no
/// energy phase slows the run).
pub const LOCAL_RIG_WITHOUT_METER: &str = r#"
[rig]
name = "no-meter"

[[boards]]
id = "local"
kind = "local"

[boards.connection]
agent = "bundled"
transport = "stdio"
"#;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn agent() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_gauntlet"));
    let agent = bin.with_file_name("gauntlet-agent");
    assert!(
        agent.is_file(),
        "`{}` is missing: build it first (`cargo build --workspace --bins`)",
        agent.display()
    );
    agent
}

/// Firmware builds shared by the STM32 tests and harness/mcu's, so the suite pays one clean build.
pub fn firmware_cache_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("gauntlet-cache")
}

pub fn gauntlet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    command.env("GAUNTLET_AGENT", agent()).current_dir(repo());
    command
}

pub fn run(args: &[&str]) -> Output {
    let output = gauntlet().args(args).output().expect("start gauntlet");
    eprintln!("--- stdout\n{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

pub fn results(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json written");
    serde_json::from_str(&text).expect("results.json is JSON")
}

pub fn entry<'a>(results: &'a serde_json::Value, variant: &str) -> &'a serde_json::Value {
    results["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["variant"] == variant)
        .unwrap_or_else(|| panic!("no entry for variant {variant}"))
}

/// onnxruntime's accuracy for `variant` from the reference pipeline's meta.json.
pub fn reference_accuracy(model: &str, variant: &str) -> f64 {
    let meta = repo().join(format!("scenarios/models/{model}/testdata/meta.json"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
    meta["variants"][variant]["accuracy"].as_f64().unwrap()
}

pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

pub fn argmaxes(scores: &[f32], per_window: usize) -> Vec<usize> {
    scores
        .chunks_exact(per_window)
        .map(|w| {
            w.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
        .collect()
}

/// Writes `text` as a file in `dir`, with `{repo}` replaced by the repository's absolute path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text.replace("{repo}", repo().to_str().unwrap())).unwrap();
    path
}

/// CWRU classes in the reference model's output order; each is one recording.
const CWRU_CLASSES: [&str; 10] = [
    "normal",
    "ball_007",
    "ball_014",
    "ball_021",
    "inner_race_007",
    "inner_race_014",
    "inner_race_021",
    "outer_race6_007",
    "outer_race6_014",
    "outer_race6_021",
];

/// A cwru_cnn scenario on the committed recordings: the last `tail` of each, the model's `builds`
/// (a TOML array; `{repo}` is expanded by [`write`]), then `rest` (run rules, gates) as given.
pub fn cwru_scenario(name: &str, tail: f64, builds: &str, rest: &str) -> String {
    let files: String = CWRU_CLASSES
        .iter()
        .map(|c| format!("    \"{{repo}}/scenarios/data/cwru_bearing/1797rpm_0hp_{c}.csv\",\n"))
        .collect();
    let classes = CWRU_CLASSES.map(|c| format!("\"{c}\"")).join(", ");
    format!(
        r#"
[scenario]
name = "{name}"

[dataset]
name = "cwru_bearing"
files = [
{files}]
features = ["de_accel_g"]
window = {{ rows = 1024, stride = 512 }}
layout = "channels-first"
labels = {{ from = "file", classes = [{classes}] }}
select = {{ tail = {tail} }}

[[models]]
name = "cwru_cnn"
input = "vibration"
input_shape = [1, 1, 1024]
builds = {builds}

{rest}
"#
    )
}

/// `gauntlet run SCENARIO --rig RIG --out OUT [--db DB]`.
pub fn run_scenario(scenario: &Path, rig: &Path, out: &Path, db: Option<&str>) -> Output {
    run(&run_args(scenario, rig, out, db))
}

/// The arguments of `gauntlet run SCENARIO --rig RIG --out OUT [--db DB]`.
pub fn run_args<'a>(
    scenario: &'a Path,
    rig: &'a Path,
    out: &'a Path,
    db: Option<&'a str>,
) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--rig",
        rig.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(db) = db {
        args.extend(["--db", db]);
    }
    args
}
