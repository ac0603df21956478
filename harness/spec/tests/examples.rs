//! The example scenarios and rigs shipped in the repository validate, and mean what they say.

use std::path::{Path, PathBuf};

use gauntlet_dataset::{LabelSource, Layout, Selection};
use gauntlet_spec::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ok<T>(r: Result<T, Diagnostics>) -> T {
    r.unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn cwru_scenario_validates() {
    let s = ok(load_scenario(
        &repo().join("scenarios/cwru-quantization.toml"),
    ));
    assert_eq!(s.dataset.recordings.len(), 10);
    assert_eq!(s.dataset.classes.len(), 10);
    for (i, r) in s.dataset.recordings.iter().enumerate() {
        assert_eq!(r.class, Some(i as u32));
        assert!(r.path.is_absolute());
        assert!(
            r.path
                .ends_with(format!("1797rpm_0hp_{}.csv", s.dataset.classes[i])),
            "{:?}",
            r.path
        );
    }
    assert_eq!(s.dataset.layout, Layout::ChannelsFirst);
    assert_eq!(s.dataset.selection, Selection::TailFraction(0.3));
    let m = &s.models[0];
    assert_eq!(m.builds.len(), 6);
    assert_eq!(m.reference().variant, "fp32");
    assert_eq!(m.input_shape, vec![1, 1, 1024]);
    let latency = s
        .gates
        .iter()
        .find(|g| g.metric == Metric::LatencyP90)
        .unwrap();
    assert_eq!(latency.threshold, Threshold::Absolute(20_000.0));
    assert!(s.targets.boards.is_empty());
    assert_eq!(
        s.targets.selectors,
        vec![std::collections::BTreeMap::from([(
            "platform".to_string(),
            "linux".to_string()
        )])]
    );
}

#[test]
fn skab_scenario_validates() {
    let s = ok(load_scenario(&repo().join("scenarios/skab-anomaly.toml")));
    assert_eq!(s.dataset.format.delimiter, b';');
    assert_eq!(s.dataset.features.len(), 8);
    assert!(matches!(s.dataset.labels, LabelSource::Column(_)));
    let names: Vec<_> = s
        .dataset
        .recordings
        .iter()
        .map(|r| {
            r.path
                .strip_prefix(repo().join("scenarios/data/skab"))
                .unwrap()
                .to_path_buf()
        })
        .collect();
    let expected: Vec<PathBuf> = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(repo().join("scenarios/models/skab_mlp/testdata/dataset.json"))
            .unwrap(),
    )
    .unwrap()["test_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f.as_str().unwrap().strip_prefix("skab/").unwrap()))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(s.models[0].output, OutputSelector::Index(1));
}

#[test]
fn local_rig_validates_and_is_the_default() {
    let rig = ok(load_rig(&repo().join("rigs/local.toml")));
    let default = default_rig();
    assert_eq!(rig.boards, default.boards);
    assert_eq!(rig.source.sha256, default.source.sha256);
    let b = &rig.boards[0];
    assert_eq!((b.id.as_str(), b.kind), ("local", BoardKind::Local));
    assert!(matches!(
        b.connection,
        Connection::Local {
            agent: AgentBinary::Bundled,
            transport: LocalTransport::Stdio
        }
    ));
    assert!(matches!(b.power, Some(PowerSensorSpec::Simulated { .. })));
}

#[test]
fn lab_rig_validates() {
    let rig = ok(load_rig(&repo().join("rigs/lab-example.toml")));
    let kinds: Vec<_> = rig.boards.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            BoardKind::LinuxSsh,
            BoardKind::Jetson,
            BoardKind::Stm32Probe,
            BoardKind::QemuStm32
        ]
    );
    let nucleo = &rig.boards[2];
    match &nucleo.connection {
        Connection::Probe { probe, chip, .. } => {
            assert_eq!(
                (probe.vid, probe.pid, chip.as_str()),
                (0x0483, 0x374b, "STM32F446RETx")
            );
        }
        other => panic!("{other:?}"),
    }
    match nucleo.power {
        // avg2: two 1.06 ms conversions per sample → 471 Hz at most, the default.
        Some(PowerSensorSpec::Ina219 {
            address, sample_hz, ..
        }) => assert_eq!((address, sample_hz), (0x41, 471.0)),
        ref other => panic!("{other:?}"),
    }
    assert_eq!(
        rig.boards[0].labels.get("kind").map(String::as_str),
        Some("linux-ssh")
    );
    assert_eq!(rig.max_parallel, 3);
}

#[test]
fn examples_select_their_boards_on_either_rig() {
    let lab = ok(load_rig(&repo().join("rigs/lab-example.toml")));
    for f in [
        "cwru-quantization.toml",
        "cwru-runtimes.toml",
        "skab-anomaly.toml",
        "skab-autoencoder.toml",
        "skab-forecast.toml",
    ] {
        let s = ok(load_scenario(&repo().join("scenarios").join(f)));
        let ids = |rig: &Rig| -> Vec<String> {
            ok(select_boards(&s, rig))
                .iter()
                .map(|b| b.id.clone())
                .collect()
        };
        assert_eq!(ids(&default_rig()), ["local"], "{f} on the local rig");
        assert_eq!(ids(&lab), ["rpi4-01", "orin-nano-01"], "{f} on the lab rig");
    }
    let stm32 = ok(load_scenario(&repo().join("scenarios/cwru-stm32.toml")));
    let mcu: Vec<&str> = ok(select_boards(&stm32, &lab))
        .iter()
        .map(|b| b.id.as_str())
        .collect();
    assert_eq!(mcu, ["nucleo-f446re-01", "qemu-netduinoplus2"]);
}

#[test]
fn extends_merges_tables_and_overrides_apply_per_board() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid");
    let s = ok(load_scenario(&dir.join("derived.toml")));
    assert_eq!(s.name, "derived");
    assert!(!s.inconclusive_fails, "kept from base");
    assert_eq!(
        (s.dataset.window.rows, s.dataset.window.stride),
        (2, 1),
        "table replaced key by key"
    );
    assert_eq!(s.dataset.features.len(), 2, "kept from base");
    assert_eq!(
        s.dataset.recordings.len(),
        1,
        "glob in base resolves against base's directory"
    );
    assert_eq!((s.run.warmup, s.run.seed, s.run.batch), (3, 7, 4));
    assert_eq!(s.run.min_duration, std::time::Duration::from_millis(1500));
    assert_eq!(s.run.pacing, Pacing::FixedRate { hz: 50.0 });
    assert_eq!(s.gates.len(), 3, "arrays replace, not append");
    assert_eq!(s.gates[0].threshold, Threshold::Absolute(150.0));
    assert_eq!(s.gates[1].threshold, Threshold::Absolute(98_304.0));
    assert_eq!(
        s.gates[2].threshold,
        Threshold::VsChampion {
            max_regression: 0.05
        }
    );
    let lab = ok(load_rig(&repo().join("rigs/lab-example.toml")));
    let pi = &lab.boards[0];
    assert_eq!(s.run_for(pi).warmup, 50);
    assert_eq!(
        s.run_for(pi).batch,
        4,
        "unset override keys keep the scenario's"
    );
    assert_eq!(s.run_for(&lab.boards[1]).warmup, 3);
}

#[test]
fn the_built_in_rig_does_not_claim_a_file_path() {
    let rig = gauntlet_spec::default_rig();
    assert_eq!(
        rig.source.path,
        std::path::Path::new(gauntlet_spec::DEFAULT_RIG_SOURCE)
    );
}

#[test]
fn runtime_matrix_expands_every_build_on_each_runtime() {
    let s = ok(load_scenario(&repo().join("scenarios/cwru-runtimes.toml")));
    let model = &s.models[0];
    let ids: Vec<&str> = model.builds.iter().map(|b| b.variant.as_str()).collect();
    assert_eq!(ids.len(), 12, "{ids:?}");
    assert!(ids.contains(&"int8_qop@onnxruntime") && ids.contains(&"fp32@tract"));
    // The reference build on the matrix's first runtime is the only reference.
    assert_eq!(model.reference().variant, "fp32@tract");
    assert_eq!(model.builds.iter().filter(|b| b.reference).count(), 1);
    let ort = model
        .builds
        .iter()
        .find(|b| b.variant == "fp16@onnxruntime")
        .unwrap();
    assert_eq!(
        (
            ort.base_variant.as_str(),
            ort.runtime.name.as_str(),
            ort.runtime.threads
        ),
        ("fp16", "onnxruntime", 1)
    );
    assert_eq!(ort.runtime.providers, ["cpu"]);
    // A gate naming a variant tag selects it on both runtimes; a build id only that build.
    let accuracy = &s.gates[0];
    assert!(accuracy.variants.contains(&"fp32@tract".to_string()));
    assert!(accuracy.variants.contains(&"fp32@onnxruntime".to_string()));
    assert!(
        accuracy
            .variants
            .contains(&"int8_qop@onnxruntime".to_string())
    );
    assert!(!accuracy.variants.contains(&"int8_qop@tract".to_string()));
}

#[test]
fn builds_without_a_runtime_keep_their_variant_as_id() {
    let s = ok(load_scenario(&repo().join("scenarios/skab-anomaly.toml")));
    let ids: Vec<&str> = s.models[0]
        .builds
        .iter()
        .map(|b| b.variant.as_str())
        .collect();
    assert_eq!(&ids[..2], ["fp32", "fp16"]);
    assert!(ids.contains(&"int8_qop@onnxruntime"));
    assert_eq!(s.models[0].builds[0].runtime.name, "tract");
}
