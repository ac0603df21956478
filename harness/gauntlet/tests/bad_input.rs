//! Bad input gets a clear error naming the file and field (and row, for data), exit code 2, and
//! no results written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const SCENARIO: &str = r#"
[scenario]
name = "bad-input"

[dataset]
name = "signal"
files = ["{data}"]
features = ["{column}"]
window = { rows = {rows}, stride = 512 }
labels = { column = "label", classes = ["normal", "ball_007", "ball_014", "ball_021", "inner_race_007", "inner_race_014", "inner_race_021", "outer_race6_007", "outer_race6_014", "outer_race6_021"] }

[[models]]
name = "cwru_cnn"
input = "vibration"
input_shape = {shape}
builds = [{ variant = "fp32", onnx = "{model}", reference = true }]
"#;

struct Case<'a> {
    data: &'a str,
    column: &'a str,
    rows: usize,
    shape: &'a str,
    model: &'a str,
}

impl Default for Case<'_> {
    fn default() -> Self {
        Case {
            data: "signal.csv",
            column: "de_accel_g",
            rows: 1024,
            shape: "[1, 1, 1024]",
            model: "{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx",
        }
    }
}

fn signal_csv(dir: &Path, rows: usize, bad_row: Option<usize>) {
    let mut text = String::from("de_accel_g,label\n");
    for i in 0..rows {
        if Some(i) == bad_row {
            text.push_str("0.1x,0\n");
        } else {
            text.push_str(&format!("{},0\n", (i as f64 * 0.01).sin()));
        }
    }
    std::fs::write(dir.join("signal.csv"), text).unwrap();
}

/// Runs the case and returns stderr, asserting exit code 2 and that nothing was written.
fn rejected(dir: &Path, case: Case) -> String {
    let text = SCENARIO
        .replace("{data}", case.data)
        .replace("{column}", case.column)
        .replace("{rows}", &case.rows.to_string())
        .replace("{shape}", case.shape)
        .replace("{model}", case.model);
    let scenario = write(dir, "scenario.toml", &text);
    let out = dir.join("out");
    let output = run(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "invalid input exits 2");
    assert!(!out.exists(), "nothing written for invalid input");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn missing_scenario_file() {
    let out = tempfile::tempdir().unwrap();
    let output = run(&[
        "run",
        "scenarios/does-not-exist.toml",
        "--out",
        out.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does-not-exist.toml"));
    assert!(!out.path().join("o").exists());
}

#[test]
fn missing_model_file() {
    let dir = tempfile::tempdir().unwrap();
    signal_csv(dir.path(), 3000, None);
    let err = rejected(
        dir.path(),
        Case {
            model: "missing-model.onnx",
            ..Case::default()
        },
    );
    assert!(err.contains("missing-model.onnx"), "{err}");
}

#[test]
fn column_not_in_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    signal_csv(dir.path(), 3000, None);
    let err = rejected(
        dir.path(),
        Case {
            column: "de_accel",
            ..Case::default()
        },
    );
    assert!(
        err.contains("signal.csv") && err.contains("de_accel"),
        "{err}"
    );
}

#[test]
fn window_longer_than_the_data() {
    let dir = tempfile::tempdir().unwrap();
    signal_csv(dir.path(), 600, None);
    let err = rejected(dir.path(), Case::default());
    assert!(err.contains("signal.csv") && err.contains("1024"), "{err}");
}

#[test]
fn input_shape_that_does_not_fit_the_window() {
    let dir = tempfile::tempdir().unwrap();
    signal_csv(dir.path(), 3000, None);
    let err = rejected(
        dir.path(),
        Case {
            shape: "[1, 1, 2048]",
            ..Case::default()
        },
    );
    assert!(
        err.contains("input_shape") && err.contains("scenario.toml:15"),
        "{err}"
    );
}

#[test]
fn model_whose_input_does_not_take_the_window_shape() {
    let dir = tempfile::tempdir().unwrap();
    signal_csv(dir.path(), 3000, None);
    // Same number of values, but the model's input is [B, 1, 1024], not [1, 1024, 1].
    let err = rejected(
        dir.path(),
        Case {
            shape: "[1, 1024, 1]",
            ..Case::default()
        },
    );
    assert!(
        err.contains("cwru_cnn_fp32.onnx") && err.contains("vibration"),
        "{err}"
    );
}

#[test]
fn non_numeric_cell() {
    let dir = tempfile::tempdir().unwrap();
    signal_csv(dir.path(), 3000, Some(1500));
    let err = rejected(dir.path(), Case::default());
    // Data row 1500 is line 1502 of the file (header on line 1).
    assert!(
        err.contains("signal.csv") && err.contains("de_accel_g") && err.contains("0.1x"),
        "{err}"
    );
    assert!(err.contains("1502"), "names the line: {err}");
}

/// Every malformed file of both corpora (the spec's scenario and rig files, and the data files
/// here) through the real binary: exit 2, a located diagnostic, no panic, nothing written. The
/// rendered stderr is snapshotted.
#[test]
fn every_malformed_file_is_refused_before_anything_is_written() {
    let repo = repo();
    let spec = repo.join("harness/spec/tests/invalid");
    let data = repo.join("harness/gauntlet/tests/bad_data");
    let mut files: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for (dir, is_data) in [(&spec, false), (&data, true)] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        names.sort();
        for path in names {
            let file = path.to_str().unwrap().to_string();
            let name = path.file_name().unwrap().to_str().unwrap();
            let args = if is_data {
                vec![file]
            } else if name.starts_with("rig_") {
                let scenario = spec.join("targets_unknown_board.toml");
                vec![scenario.to_str().unwrap().into(), "--rig".into(), file]
            } else {
                let lab = spec.join("support/lab.toml");
                vec![file, "--rig".into(), lab.to_str().unwrap().into()]
            };
            files.push((path, args));
        }
    }
    assert!(files.len() >= 150, "only {} malformed files", files.len());
    for (path, args) in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let (out, db) = (tmp.path().join("out"), tmp.path().join("db/g.db"));
        let output = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
            .arg("run")
            .args(args)
            .arg("--out")
            .arg(&out)
            .arg("--db")
            .arg(&db)
            .current_dir(&repo)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr)
            .replace(&format!("{}/", repo.display()), "")
            .replace(&format!("{}/", tmp.path().display()), "<tmp>/");
        assert_eq!(output.status.code(), Some(2), "{name}:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{name}:\n{stderr}");
        assert!(
            is_located(&stderr),
            "{name} names no file and line:\n{stderr}"
        );
        assert!(!out.exists() && !db.exists(), "{name} wrote output");
        let kind = if path.starts_with(&data) {
            "data"
        } else {
            "spec"
        };
        if kind == "data" {
            let csv = path.with_extension("csv");
            let csv = csv.file_name().unwrap().to_str().unwrap();
            assert!(
                stderr.contains(csv),
                "{name} does not name {csv}:\n{stderr}"
            );
        }
        insta::assert_snapshot!(format!("{kind}__{name}"), stderr);
    }
}

/// Whether a diagnostic points somewhere: `--> file.toml:LINE:COL`, or a CSV file with its line.
fn is_located(text: &str) -> bool {
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let toml = text.split("--> ").skip(1).any(|rest| {
        let place = rest.split_whitespace().next().unwrap_or("");
        let mut parts = place.rsplitn(3, ':');
        let (col, line) = (parts.next(), parts.next());
        digits(col)
            && digits(line)
            && parts
                .next()
                .is_some_and(|f| f.ends_with(".toml") || f.ends_with(".csv"))
    });
    toml || text.contains(".csv` line ")
}
