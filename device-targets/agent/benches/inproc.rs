//! In-process tract baseline: the same `TractRuntime` the agent uses, called directly with no
//! transport. The agent's on-device latency and replay throughput are compared against these.
//!
//! `inproc/cwru_cnn_fp32/window`: one CWRU window per iteration (cycling through the held-out set).
//! `inproc/skab_mlp_fp32/heldout`: all 8,745 SKAB held-out windows per iteration (throughput).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gauntlet_agent::runtime::{LoadOptions, LoadedModel, OutputSelector, Runtime, TractRuntime};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/models")
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn load(file: &str, window_shape: &[usize], output: u32) -> impl LoadedModel {
    let bytes = std::fs::read(models().join(file)).unwrap();
    let opts = LoadOptions {
        input_name: None,
        window_shape: window_shape.to_vec(),
        output: OutputSelector::Index(output),
        ..Default::default()
    };
    TractRuntime.load(&bytes, &opts).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("inproc");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    let mut out = Vec::new();

    let cwru_inputs = read_f32(&models().join("cwru_cnn/testdata/input.f32"));
    let mut cwru = load("cwru_cnn/cwru_cnn_fp32.onnx", &[1, 1, 1024], 0);
    let mut windows = cwru_inputs.chunks_exact(1024).cycle();
    group.throughput(Throughput::Elements(1));
    group.bench_function("cwru_cnn_fp32/window", |b| {
        b.iter(|| {
            cwru.run(black_box(windows.next().unwrap()), &mut out)
                .unwrap()
        })
    });

    let skab_inputs = read_f32(&models().join("skab_mlp/testdata/input.f32"));
    let mut skab = load("skab_mlp/skab_mlp_fp32.onnx", &[1, 128], 1);
    group.throughput(Throughput::Elements((skab_inputs.len() / 128) as u64));
    group.sample_size(10);
    group.bench_function("skab_mlp_fp32/heldout", |b| {
        b.iter(|| {
            for window in skab_inputs.chunks_exact(128) {
                skab.run(black_box(window), &mut out).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
