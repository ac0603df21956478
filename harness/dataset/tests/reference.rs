//! The windows cut from the committed CSV copies must be the reference models' held-out inputs
//! (`scenarios/models/<model>/testdata/input.f32`) and labels (`target.f32`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use gauntlet_dataset::{
    ColumnRef, CsvFormat, DatasetSpec, LabelSource, Layout, Recording, Selection, Windowing,
    Windows, load,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn testdata(model: &str, file: &str) -> PathBuf {
    repo()
        .join("scenarios/models")
        .join(model)
        .join("testdata")
        .join(file)
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn dataset_json(model: &str) -> serde_json::Value {
    let path = testdata(model, "dataset.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Loads `spec` and compares it with the model's reference tensors; returns the windows and how
/// many values differ by exactly one ulp (the README allows that for rare values, since pandas'
/// f64 parse is not always correctly rounded).
fn assert_matches_reference(spec: &DatasetSpec, model: &str) -> (Windows, usize) {
    let started = Instant::now();
    let windows = load(spec).unwrap_or_else(|e| panic!("failed to {e}"));
    eprintln!(
        "{model}: {} windows loaded in {:?}",
        windows.len(),
        started.elapsed()
    );

    let input = read_f32(&testdata(model, "input.f32"));
    let target = read_f32(&testdata(model, "target.f32"));
    assert_eq!(windows.len(), target.len(), "window count");
    assert_eq!(windows.data.len(), input.len(), "value count");
    let labels: Vec<f32> = windows.labels.iter().map(|&l| l as f32).collect();
    assert_eq!(labels, target, "labels");

    let mut one_ulp = 0;
    for (i, (&ours, &theirs)) in windows.data.iter().zip(&input).enumerate() {
        let ulps = (ours.to_bits() as i64 - theirs.to_bits() as i64).unsigned_abs();
        assert!(
            ulps <= 1 && ours.is_sign_negative() == theirs.is_sign_negative(),
            "value {i} (window {}, offset {}): ours {ours:e}, reference {theirs:e}",
            i / windows.window_len,
            i % windows.window_len
        );
        one_ulp += usize::from(ulps == 1);
    }
    eprintln!("{model}: {} values, {one_ulp} differ by 1 ulp", input.len());
    (windows, one_ulp)
}

#[test]
fn cwru_held_out_windows_equal_the_reference_input() {
    let meta = dataset_json("cwru_cnn");
    let classes = strings(&meta["classes"]);
    let window = meta["window"].as_u64().unwrap() as usize;
    let data = repo().join("scenarios/data/cwru_bearing");
    let spec = DatasetSpec {
        name: "cwru".into(),
        recordings: (0..)
            .zip(&classes)
            .map(|(class, name)| Recording {
                path: data.join(format!("1797rpm_0hp_{name}.csv")),
                class: Some(class),
            })
            .collect(),
        format: CsvFormat {
            delimiter: b',',
            has_header: true,
        },
        features: vec![ColumnRef::Name("de_accel_g".into())],
        window: Windowing {
            rows: window,
            stride: window / 2,
        },
        layout: Layout::ChannelsFirst,
        labels: LabelSource::PerFile,
        classes,
        selection: Selection::TailFraction(0.3),
        timestamp: None,
        target: None,
    };
    let (windows, one_ulp) = assert_matches_reference(&spec, "cwru_cnn");
    assert_eq!(
        one_ulp, 0,
        "6-significant-digit values round the same either way"
    );
    assert_eq!(windows.len(), 340);
    for info in &windows.per_recording {
        assert_eq!(
            (info.rows, info.first_selected, info.windows),
            (60_000, 42_000, 34)
        );
    }
    // Data row 42,000 (0-based) of each file is line 42,002: header + 1-based.
    assert_eq!(windows.origins[34].recording, 1);
    assert_eq!(windows.origins[34].first_row, 42_002);
    assert_eq!(windows.origins[35].first_row, 42_002 + 512);
    assert_eq!(windows.window_shape(), [1, 1024]);
}

#[test]
fn skab_held_out_windows_equal_the_reference_input() {
    let meta = dataset_json("skab_mlp");
    let rows = meta["window_rows"].as_u64().unwrap() as usize;
    let data = repo().join("scenarios/data");
    let spec = DatasetSpec {
        name: "skab".into(),
        recordings: strings(&meta["test_files"])
            .iter()
            .map(|file| Recording {
                path: data.join(file),
                class: None,
            })
            .collect(),
        format: CsvFormat {
            delimiter: b';',
            has_header: true,
        },
        features: strings(&meta["columns"])
            .into_iter()
            .map(ColumnRef::Name)
            .collect(),
        window: Windowing { rows, stride: 1 },
        layout: Layout::RowMajor,
        labels: LabelSource::Column(ColumnRef::Name("anomaly".into())),
        classes: vec!["normal".into(), "anomaly".into()],
        selection: Selection::All,
        timestamp: Some(ColumnRef::Name("datetime".into())),
        target: None,
    };
    let (windows, one_ulp) = assert_matches_reference(&spec, "skab_mlp");
    assert_eq!(windows.len(), 8_745);
    assert!(
        one_ulp * 10_000 <= windows.data.len(),
        "1-ulp differences must stay rare: {one_ulp}"
    );
    assert_eq!(windows.window_shape(), [16, 8]);

    // valve1/1.csv is the 4th file; its 16th data row (line 17) reads `2020-03-09 10:34:49`, 16 s
    // after its first, as the recording skips 10:34:39.
    let first_of_valve1 = windows
        .origins
        .iter()
        .position(|o| o.recording == 3)
        .unwrap();
    assert!(spec.recordings[3].path.ends_with("valve1/1.csv"));
    assert_eq!(windows.origins[first_of_valve1].first_row, 2);
    let timestamps = windows.timestamps_s.as_ref().unwrap();
    assert_eq!(timestamps[first_of_valve1], 1_583_750_073.0 + 16.0);
    assert!(timestamps.windows(2).filter(|p| p[1] < p[0]).count() < windows.per_recording.len());
}
