//! `gauntlet drift` through the real binary and agent, on the committed SKAB recordings: the
//! champion of scenarios/skab-drift.toml (two valve1 experiments) requalifies on held-back valve1
//! experiments and is reported drifted, naming the features that moved, on the `other` group.

mod common;

use std::path::{Path, PathBuf};

use common::{gauntlet, repo};
use gauntlet_measure::drift::{Matrix, input_drift};

const SCENARIO: &str = "scenarios/skab-drift.toml";

/// Runs the real binary, with the firmware cache the STM32 tests share.
fn gauntlet_run(args: &[&str]) -> std::process::Output {
    let output = gauntlet()
        .env("GAUNTLET_CACHE_DIR", common::firmware_cache_dir())
        .args(args)
        .output()
        .expect("start gauntlet");
    eprintln!("--- stdout\n{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// A store in `dir` holding the promoted champion of `scenario`'s `model` fp32 build, run on
/// `rig` (the local rig when `None`).
fn champion_store(dir: &Path, scenario: &str, rig: Option<&Path>, model: &str) -> String {
    let db = dir.join("gauntlet.db").to_str().unwrap().to_string();
    let out = dir.join("run");
    let mut args = vec!["run", scenario, "--db", &db, "--out", out.to_str().unwrap()];
    if let Some(rig) = rig {
        args.extend(["--rig", rig.to_str().unwrap()]);
    }
    assert_eq!(gauntlet_run(&args).status.code(), Some(0));
    let results = common::results(&out);
    let promoted = gauntlet_run(&[
        "promote",
        results["run_id"].as_str().unwrap(),
        "--model",
        model,
        "--variant",
        "fp32",
        "--by",
        "test",
        "--reason",
        "baseline",
        "--db",
        &db,
    ]);
    assert_eq!(promoted.status.code(), Some(0));
    db
}

fn drift(db: &str, out: &Path, recordings: &[&str]) -> std::process::Output {
    let mut args = vec![
        "drift",
        SCENARIO,
        "--db",
        db,
        "--out",
        out.to_str().unwrap(),
    ];
    if !recordings.is_empty() {
        args.push("--recordings");
        args.extend(recordings);
    }
    gauntlet_run(&args)
}

/// (verdict, promotion id, recordings' SHA-256 in order) of every drift check in the store.
fn stored_checks(db: &str) -> Vec<(String, i64, Vec<String>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut checks = conn
        .prepare("SELECT id, verdict, promotion_id FROM drift_checks ORDER BY checked_at")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<(String, String, i64)>>();
    checks
        .drain(..)
        .map(|(id, verdict, promotion)| {
            let shas = conn
                .prepare(
                    "SELECT sha256 FROM drift_recordings WHERE check_id = ?1 ORDER BY position",
                )
                .unwrap()
                .query_map([&id], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (verdict, promotion, shas)
        })
        .collect()
}

fn promotion_id(db: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT MAX(id) FROM promotions", [], |r| r.get(0))
        .unwrap()
}

fn drift_json(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("drift.json")).expect("drift.json written");
    serde_json::from_str(&text).expect("drift.json is JSON")
}

fn failed_subjects(d: &serde_json::Value) -> Vec<String> {
    d["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["verdict"] == "fail")
        .map(|g| g["subject"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn held_back_recordings_of_the_same_group_requalify_the_champion() {
    let dir = tempfile::tempdir().unwrap();
    let db = champion_store(dir.path(), SCENARIO, None, "skab_mlp");
    let out = dir.path().join("same");
    // No --recordings: the scenario's `[drift] recordings`, valve1/3.csv and valve1/7.csv.
    let judged = drift(&db, &out, &[]);
    assert_eq!(judged.status.code(), Some(0), "requalified exits 0");
    let d = drift_json(&out);
    assert_eq!(d["schema"], "gauntlet.drift");
    assert_eq!(d["verdict"], "requalified");
    assert_eq!(d["source"], "measured");
    assert_eq!(d["board"]["class"], "local");
    assert_eq!(d["reference"]["kind"], "held-out");
    assert_eq!(d["new"]["recordings"].as_array().unwrap().len(), 2);
    for r in d["new"]["recordings"].as_array().unwrap() {
        assert_eq!(r["sha256"].as_str().unwrap().len(), 64);
    }
    assert!(failed_subjects(&d).is_empty());
    assert_eq!(d["input"].as_array().unwrap().len(), 8);
    let accuracy = d["performance"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metric"] == "accuracy")
        .expect("accuracy vs the champion");
    let ci = &accuracy["difference_ci"];
    let diff = accuracy["difference"].as_f64().unwrap();
    assert!(ci["lo"].as_f64().unwrap() <= diff && diff <= ci["hi"].as_f64().unwrap());
    let stdout = String::from_utf8_lossy(&judged.stdout);
    assert!(stdout.contains("verdict: requalified"), "{stdout}");
    let html = std::fs::read_to_string(out.join("drift.html")).unwrap();
    assert!(html.contains("Input drift per feature") && html.contains("<svg"));
    let md = std::fs::read_to_string(out.join("drift.md")).unwrap();
    assert!(md.contains("| accuracy |"), "{md}");
    // In the history, linked to the champion's promotion, with each recording's SHA-256.
    let shas: Vec<String> = ["3", "7"]
        .iter()
        .map(|n| {
            let bytes = std::fs::read(repo().join(format!("scenarios/data/skab/valve1/{n}.csv")));
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes.unwrap()))
        })
        .collect();
    assert_eq!(
        stored_checks(&db),
        [("requalified".to_string(), promotion_id(&db), shas)]
    );
    assert_eq!(d["champion"]["promotion_id"], promotion_id(&db));
}

#[test]
fn another_group_is_drift_naming_the_features_that_moved() {
    let dir = tempfile::tempdir().unwrap();
    let db = champion_store(dir.path(), SCENARIO, None, "skab_mlp");
    let out = dir.path().join("other");
    let judged = drift(&db, &out, &["scenarios/data/skab/other/*.csv"]);
    assert_eq!(judged.status.code(), Some(1), "drifted exits 1");
    let d = drift_json(&out);
    assert_eq!(d["verdict"], "drifted");
    assert_eq!(d["new"]["recordings"].as_array().unwrap().len(), 3);
    assert_eq!(stored_checks(&db)[0].0, "drifted");
    let moved = failed_subjects(&d);
    for feature in ["Accelerometer2RMS", "Current"] {
        assert!(moved.contains(&feature.to_string()), "{moved:?}");
    }
    let stdout = String::from_utf8_lossy(&judged.stdout);
    assert!(
        stdout.contains("verdict: drifted (moved: Accelerometer2RMS, Current"),
        "{stdout}"
    );
}

fn refused(db: &str, out: &Path, recordings: &[&str], names: &str) {
    let judged = drift(db, out, recordings);
    assert_eq!(judged.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&judged.stderr);
    assert!(stderr.contains(names), "{stderr}");
    assert!(!out.exists(), "nothing written for refused input");
    assert!(
        stored_checks(db).is_empty(),
        "nothing recorded for refused input"
    );
}

#[test]
fn bad_recordings_and_a_missing_champion_are_refused_naming_the_file_or_scenario() {
    let dir = tempfile::tempdir().unwrap();
    // No champion yet: refused before any board is touched, naming the scenario.
    let fresh = dir.path().join("fresh.db");
    refused(
        fresh.to_str().unwrap(),
        &dir.path().join("no-champion"),
        &[],
        "in scenario `skab-drift` on board class `local`: none promoted yet",
    );
    let db = champion_store(dir.path(), SCENARIO, None, "skab_mlp");
    // Another set of columns: valve1/3.csv without its Current column.
    let text = std::fs::read_to_string(repo().join("scenarios/data/skab/valve1/3.csv")).unwrap();
    let without: String = text
        .lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(';').collect();
            cells.remove(3);
            cells.join(";") + "\n"
        })
        .collect();
    let other_columns = common::write(dir.path(), "other-columns.csv", &without);
    refused(
        &db,
        &dir.path().join("columns"),
        &[other_columns.to_str().unwrap()],
        &format!("find column `Current` in `{}`", other_columns.display()),
    );
    let empty = common::write(dir.path(), "empty.csv", "");
    refused(
        &db,
        &dir.path().join("empty"),
        &[empty.to_str().unwrap()],
        &format!("`{}`: the header is empty", empty.display()),
    );
    refused(
        &db,
        &dir.path().join("missing"),
        &["scenarios/data/skab/nowhere/*.csv"],
        "glob `scenarios/data/skab/nowhere/*.csv`: it matches no file",
    );
}

/// The newest reading of each of the 8 sensors per window, over every valve1 recording.
fn valve1_readings() -> Vec<f32> {
    let scenario = gauntlet_spec::load_scenario(&repo().join(SCENARIO)).unwrap();
    let mut spec = scenario.dataset.clone();
    let files: Vec<PathBuf> = ["1", "13", "3", "7"]
        .iter()
        .map(|n| repo().join(format!("scenarios/data/skab/valve1/{n}.csv")))
        .collect();
    spec.recordings = files
        .into_iter()
        .map(|path| gauntlet_dataset::Recording { path, class: None })
        .collect();
    let w = gauntlet_dataset::load(&spec).unwrap();
    w.data
        .chunks_exact(w.window_len)
        .flat_map(|window| window[(w.rows - 1) * w.features..].to_vec())
        .collect()
}

#[test]
fn twenty_random_splits_of_the_same_recordings_flag_input_drift_at_most_once() {
    let readings = valve1_readings();
    let columns = 8;
    let mut flagged = 0;
    for seed in 0..20u64 {
        // SplitMix64: one fair coin per window, reference or "new".
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        let mut coin = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) >> 63 == 1
        };
        let (mut reference, mut new) = (Vec::new(), Vec::new());
        for row in readings.chunks_exact(columns) {
            if coin() {
                reference.extend_from_slice(row);
            } else {
                new.extend_from_slice(row);
            }
        }
        let drift = input_drift(
            Matrix::new(&reference, columns),
            Matrix::new(&new, columns),
            10,
        )
        .unwrap();
        if drift.iter().any(|f| f.p_adjusted < 0.05) {
            flagged += 1;
        }
    }
    assert!(flagged <= 1, "{flagged} of 20 splits flagged input drift");
}

#[test]
fn drift_needs_recordings_from_somewhere() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::write(
        dir.path(),
        "no-recordings.toml",
        &format!(
            "extends = \"{}\"\n\n[drift]\nmodel = \"skab_mlp\"\nrecordings = []\n",
            repo().join(SCENARIO).display()
        ),
    );
    let out = gauntlet()
        .args([
            "drift",
            scenario.to_str().unwrap(),
            "--db",
            dir.path().join("db").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("name the recordings to requalify on"),
        "{stderr}"
    );
}

#[test]
fn the_champion_is_judged_on_the_emulated_stm32_and_its_figures_say_emulated() {
    let scenario = "scenarios/skab-autoencoder-stm32.toml";
    let rig = repo().join("rigs/local.toml");
    let dir = tempfile::tempdir().unwrap();
    let db = champion_store(dir.path(), scenario, Some(&rig), "skab_ae");
    let judged_out = dir.path().join("drift");
    let judged = gauntlet_run(&[
        "drift",
        scenario,
        "--rig",
        rig.to_str().unwrap(),
        "--board-class",
        "qemu-stm32",
        "--recordings",
        "scenarios/data/skab/other/3.csv",
        "--db",
        &db,
        "--out",
        judged_out.to_str().unwrap(),
    ]);
    let d = drift_json(&judged_out);
    assert_eq!(d["source"], "emulated");
    assert_eq!(d["board"]["kind"], "qemu-stm32");
    assert_eq!(d["output"]["score"], "anomaly score");
    // 48 windows of another group: the pump's flow and temperatures moved beyond doubt.
    assert_eq!(judged.status.code(), Some(1));
    let moved = failed_subjects(&d);
    assert!(
        moved.contains(&"Volume Flow RateRMS".to_string()),
        "{moved:?}"
    );
    let html = std::fs::read_to_string(judged_out.join("drift.html")).unwrap();
    assert!(html.contains("figures emulated"));
}
