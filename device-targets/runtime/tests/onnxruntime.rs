//! onnxruntime through the real library (scripts/test.sh installs the wheel): discovery, settings
//! refused with the reason, and per-window scores equal to the reference pipeline's batch-1 run.

use std::path::{Path, PathBuf};

use gauntlet_runtime::{
    LoadOptions, LoadedModel, OnnxRuntime, OutputSelector, Runtime, RuntimeError, RuntimeSettings,
};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/models")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(models().join(rel)).unwrap()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn cwru(runtime: RuntimeSettings) -> LoadOptions {
    LoadOptions {
        input_name: None,
        window_shape: vec![1, 1, 1024],
        output: OutputSelector::Index(0),
        runtime,
    }
}

fn onnxruntime() -> RuntimeSettings {
    RuntimeSettings {
        name: "onnxruntime".into(),
        ..Default::default()
    }
}

#[test]
fn int8_qop_windows_equal_the_batch1_reference_bit_for_bit() {
    let runtime = OnnxRuntime::new(None);
    let info = runtime
        .check()
        .expect("onnxruntime is installed (scripts/test.sh)");
    assert!(info.version.starts_with("1."), "{info:?}");
    assert!(info.providers.iter().any(|p| p == "cpu"), "{info:?}");
    assert!(info.library_sha256.is_some());
    // Contrib operators (com.microsoft QGemm) that tract rejects.
    let mut model = runtime
        .load(
            &read("cwru_cnn/cwru_cnn_int8_qop.onnx"),
            &cwru(onnxruntime()),
        )
        .unwrap();
    assert_eq!(model.info().output_len, 10);
    assert!(
        model
            .info()
            .ops
            .iter()
            .any(|op| op.starts_with("com.microsoft.")),
        "{:?}",
        model.info().ops
    );
    let inputs = f32s(&read("cwru_cnn/testdata/input.f32"));
    let reference = f32s(&read("cwru_cnn/testdata/ort_b1_int8_qop.f32"));
    let mut out = Vec::new();
    for (i, window) in inputs.chunks_exact(1024).take(20).enumerate() {
        model.run(window, &mut out).unwrap();
        let expected = &reference[i * 10..(i + 1) * 10];
        assert!(
            out.iter()
                .zip(expected)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "window {i}: {out:?} vs {expected:?}"
        );
    }
}

#[test]
fn a_provider_the_library_lacks_is_refused_naming_those_it_has() {
    let runtime = OnnxRuntime::new(None);
    let err = runtime
        .load(
            &read("cwru_cnn/cwru_cnn_fp32.onnx"),
            &cwru(RuntimeSettings {
                providers: vec!["tensorrt".into(), "cpu".into()],
                ..onnxruntime()
            }),
        )
        .err()
        .unwrap();
    match &err {
        RuntimeError::ProviderUnavailable {
            provider,
            available,
            ..
        } => {
            assert_eq!(provider, "tensorrt");
            assert!(available.iter().any(|p| p == "cpu"), "{err}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_missing_rig_library_is_unavailable_with_the_fix() {
    let runtime = OnnxRuntime::new(Some("/nonexistent/libonnxruntime.so".into()));
    let err = runtime.check().unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, RuntimeError::RuntimeUnavailable { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("/nonexistent/libonnxruntime.so") && msg.contains("pip install onnxruntime"),
        "{msg}"
    );
}

#[test]
fn skab_label_output_comes_back_as_f32() {
    let runtime = OnnxRuntime::new(None);
    let bytes = read("skab_mlp/skab_mlp_fp32.onnx");
    let opts = |name: &str| LoadOptions {
        input_name: None,
        window_shape: vec![1, 128],
        output: OutputSelector::Name(name.into()),
        runtime: onnxruntime(),
    };
    let mut probs = runtime.load(&bytes, &opts("probabilities")).unwrap();
    let mut label = runtime.load(&bytes, &opts("label")).unwrap();
    assert_eq!(probs.info().output_len, 2);
    assert_eq!(label.info().outputs[0].dtype.as_deref(), Some("i64"));
    let window: Vec<f32> = (0..128).map(|i| (i % 8) as f32 * 10.0).collect();
    let (mut p, mut l) = (Vec::new(), Vec::new());
    probs.run(&window, &mut p).unwrap();
    label.run(&window, &mut l).unwrap();
    assert_eq!(l, vec![if p[1] > p[0] { 1.0 } else { 0.0 }]);
}
