//! Shared helpers: every test runs the real `gauntlet` binary against the real agent.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
