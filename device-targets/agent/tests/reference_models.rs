//! Replays the reference models' held-out inputs through tract and compares with onnxruntime's
//! saved outputs (fixtures under `scenarios/models/`, see the README there).
//!
//! Run with `--nocapture` to see per-variant accuracy, agreement, max |Δ| and latency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gauntlet_agent::runtime::{
    LoadOptions, LoadedModel, OutputSelector, Runtime, RuntimeError, TractRuntime,
};
use serde_json::Value;

fn model_dir(model: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios/models")
        .join(model)
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        bytes.len() % 4,
        0,
        "{} is not a whole number of f32",
        path.display()
    );
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn argmax(scores: &[f32]) -> usize {
    // First maximum wins, as numpy's argmax (used for the reference accuracy) does.
    scores
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > scores[best] { i } else { best })
}

struct Reference {
    dir: PathBuf,
    meta: Value,
    inputs: Vec<f32>,
    targets: Vec<f32>,
    window_shape: Vec<usize>,
}

impl Reference {
    fn open(model: &str) -> Reference {
        let dir = model_dir(model);
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("testdata/meta.json")).unwrap())
                .unwrap();
        let shape: Vec<usize> = meta["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let inputs = read_f32(&dir.join("testdata/input.f32"));
        let targets = read_f32(&dir.join("testdata/target.f32"));
        assert_eq!(inputs.len(), shape.iter().product::<usize>());
        assert_eq!(targets.len(), shape[0]);
        let window_shape = std::iter::once(1)
            .chain(shape[1..].iter().copied())
            .collect();
        Reference {
            dir,
            meta,
            inputs,
            targets,
            window_shape,
        }
    }

    fn variant(&self, variant: &str) -> &Value {
        &self.meta["variants"][variant]
    }

    fn load(&self, variant: &str) -> Result<Box<dyn LoadedModel>, RuntimeError> {
        let file = self
            .dir
            .join(self.variant(variant)["file"].as_str().unwrap());
        let bytes = std::fs::read(&file).unwrap();
        let opts = LoadOptions {
            input_name: None,
            window_shape: self.window_shape.clone(),
            output: OutputSelector::Index(self.meta["score_output"].as_u64().unwrap() as u32),
            ..Default::default()
        };
        TractRuntime.load(&bytes, &opts)
    }

    fn windows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.inputs.chunks_exact(self.window_shape.iter().product())
    }
}

struct Comparison {
    accuracy: f64,
    agreement: f64,
    max_abs_diff: f32,
    per_window: Duration,
}

/// Runs every `stride`-th window and compares with onnxruntime's saved scores.
fn compare(reference: &Reference, variant: &str, stride: usize) -> Comparison {
    let mut model = reference
        .load(variant)
        .unwrap_or_else(|e| panic!("{variant}: {e}"));
    let classes = model.info().output_len;
    let ort = read_f32(
        &reference
            .dir
            .join("testdata")
            .join(reference.variant(variant)["ort_scores"].as_str().unwrap()),
    );
    assert_eq!(
        ort.len(),
        reference.targets.len() * classes,
        "{variant}: ort scores vs output_len"
    );

    let (mut correct, mut agree, mut max_abs_diff) = (0usize, 0usize, 0f32);
    let mut out = Vec::new();
    let mut busy = Duration::ZERO;
    let mut n = 0;
    for (i, window) in reference.windows().enumerate().step_by(stride) {
        n += 1;
        let start = Instant::now();
        model.run(window, &mut out).unwrap();
        busy += start.elapsed();
        assert_eq!(out.len(), classes);
        let expected = &ort[i * classes..(i + 1) * classes];
        max_abs_diff = out
            .iter()
            .zip(expected)
            .map(|(a, b)| (a - b).abs())
            .fold(max_abs_diff, f32::max);
        let label = argmax(&out);
        correct += usize::from(label == reference.targets[i] as usize);
        agree += usize::from(label == argmax(expected));
    }
    let c = Comparison {
        accuracy: correct as f64 / n as f64,
        agreement: agree as f64 / n as f64,
        max_abs_diff,
        per_window: busy / n as u32,
    };
    eprintln!(
        "{}/{variant}: windows {n}, accuracy {:.4} (ort {:.4}), label agreement {:.2} %, max |Δ| {:.3e}, {:.1} µs/window",
        reference.dir.file_name().unwrap().to_string_lossy(),
        c.accuracy,
        reference.variant(variant)["accuracy"].as_f64().unwrap(),
        c.agreement * 100.0,
        c.max_abs_diff,
        c.per_window.as_secs_f64() * 1e6,
    );
    c
}

fn check_runs_like_onnxruntime(model: &str, variant: &str, exact_labels: bool) {
    let reference = Reference::open(model);
    let c = compare(&reference, variant, 1);
    let ort_accuracy = reference.variant(variant)["accuracy"].as_f64().unwrap();
    assert_eq!(
        format!("{:.4}", c.accuracy),
        format!("{ort_accuracy:.4}"),
        "{model}/{variant} accuracy"
    );
    if exact_labels {
        assert_eq!(c.agreement, 1.0, "{model}/{variant} label agreement");
    }
}

fn check_unsupported(model: &str) {
    let reference = Reference::open(model);
    match reference.load("int8_qop") {
        Err(e @ RuntimeError::UnsupportedOperator { .. }) => {
            eprintln!("{model}/int8_qop: {e}");
            let RuntimeError::UnsupportedOperator {
                op, domain, node, ..
            } = e
            else {
                unreachable!()
            };
            assert!(op == "QGemm" || op == "QLinearMul", "unexpected op {op}");
            assert_eq!(domain.as_deref(), Some("com.microsoft"));
            assert!(!node.is_empty());
        }
        Err(e) => panic!("{model}/int8_qop: expected an unsupported operator, got {e}"),
        Ok(_) => panic!("{model}/int8_qop: expected an unsupported operator, but it loaded"),
    }
}

#[test]
fn cwru_fp32() {
    check_runs_like_onnxruntime("cwru_cnn", "fp32", true);
}

#[test]
fn cwru_int8_qdq() {
    check_runs_like_onnxruntime("cwru_cnn", "int8_qdq", true);
}

#[test]
#[ignore = "known divergence: tract 0.9794 vs onnxruntime 0.9765, label agreement 99.71 %"]
fn cwru_int8_dynamic() {
    check_runs_like_onnxruntime("cwru_cnn", "int8_dynamic", false);
}

#[test]
fn cwru_int8_qop_std() {
    check_runs_like_onnxruntime("cwru_cnn", "int8_qop_std", false);
}

/// tract runs fp16 convolutions ≈500× slower than fp32 on x86 (≈110 ms per window in a debug
/// build), so the default suite checks every 5th window's labels; the ignored test below covers all.
#[test]
fn cwru_fp16_subset_labels_match() {
    let c = compare(&Reference::open("cwru_cnn"), "fp16", 5);
    assert_eq!(
        c.agreement, 1.0,
        "cwru_cnn/fp16 label agreement on every 5th window"
    );
}

#[test]
#[ignore = "slow: ≈40 s in a debug build"]
fn cwru_fp16() {
    check_runs_like_onnxruntime("cwru_cnn", "fp16", false);
}

#[test]
fn cwru_int8_qop_is_unsupported() {
    check_unsupported("cwru_cnn");
}

#[test]
fn skab_fp32() {
    check_runs_like_onnxruntime("skab_mlp", "fp32", true);
}

#[test]
fn skab_int8_qdq() {
    check_runs_like_onnxruntime("skab_mlp", "int8_qdq", true);
}

#[test]
#[ignore = "known divergence: tract 0.8241 vs onnxruntime 0.8384, label agreement 95.67 %"]
fn skab_int8_dynamic() {
    check_runs_like_onnxruntime("skab_mlp", "int8_dynamic", false);
}

#[test]
fn skab_int8_qop_std() {
    check_runs_like_onnxruntime("skab_mlp", "int8_qop_std", false);
}

#[test]
#[ignore = "known divergence: tract 0.8252 vs onnxruntime 0.8249, label agreement 99.91 %"]
fn skab_fp16() {
    check_runs_like_onnxruntime("skab_mlp", "fp16", false);
}

#[test]
fn skab_int8_qop_is_unsupported() {
    check_unsupported("skab_mlp");
}
