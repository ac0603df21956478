//! Issue 13, harness side: nothing measured is lost when writing the results fails, no name
//! escapes `--out`, and what cannot be measured is refused by `check`. Through the real binary.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

const RIG: &str = LOCAL_RIG_WITHOUT_METER;

/// A quick real run: the last 2 % of each CWRU recording on the local agent.
fn scenario(dir: &Path) -> std::path::PathBuf {
    let builds = r#"[{ variant = "fp32", onnx = "{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx", reference = true }]"#;
    let text = cwru_scenario("run-folder", 0.02, builds, "[run]\nwarmup = 2\nbatch = 8\n");
    write(dir, "scenario.toml", &text)
}

fn gauntlet_run(dir: &Path, out: &Path, db: &Path) -> Output {
    let scenario = scenario(dir);
    let rig = write(dir, "rig.toml", RIG);
    run_scenario(&scenario, &rig, out, Some(db.to_str().unwrap()))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn runs_list(db: &Path) -> String {
    let output = run(&["runs", "list", "--db", db.to_str().unwrap()]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(leftovers(&path));
        } else if path.to_string_lossy().ends_with(".partial") {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn an_out_that_is_a_file_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results-file");
    std::fs::write(&out, "keep me").unwrap();
    let db = dir.path().join("g.db");
    let output = gauntlet_run(dir.path(), &out, &db);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(
        err.contains("results-file") && err.contains("output folder"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    assert!(
        !runs_list(&db).contains("run-folder"),
        "no run is started before the output folder is proven"
    );
}

/// Runs `gauntlet` inside a private mount namespace in which `mnt` is a small tmpfs prepared by
/// `setup` (shell). `None` where mount namespaces are not available (not root).
fn in_private_tmpfs(mnt: &Path, setup: &str, args: &[&str]) -> Option<Output> {
    let probe = Command::new("unshare").args(["-m", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: `unshare -m` is not permitted here");
        return None;
    }
    std::fs::create_dir_all(mnt).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=256k tmpfs '{m}' && {setup} && exec \"$@\"",
        m = mnt.display()
    );
    let command = gauntlet();
    let program = command.get_program().to_owned();
    let output = Command::new("unshare")
        .args(["-m", "sh", "-c", &script, "sh"])
        .arg(program)
        .args(args)
        .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(repo())
        .output()
        .unwrap();
    eprintln!("--- stderr\n{}", String::from_utf8_lossy(&output.stderr));
    Some(output)
}

#[test]
fn a_read_only_or_full_out_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path());
    let rig = write(dir.path(), "rig.toml", RIG);
    let db = dir.path().join("g.db");
    let mnt = dir.path().join("mnt");
    let out = mnt.join("out");
    let args = run_args(&scenario, &rig, &out, Some(db.to_str().unwrap()));
    let m = mnt.display();
    let setups = [
        (
            "read-only",
            format!("mount -o remount,ro '{m}'"),
            "Read-only",
        ),
        (
            "full",
            format!("(head -c 1M /dev/zero > '{m}/filler' 2>/dev/null; true)"),
            "No space left",
        ),
    ];
    for (what, setup, reason) in setups {
        let Some(output) = in_private_tmpfs(&mnt, &setup, &args) else {
            return;
        };
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{what}: {err}");
        assert!(err.contains(reason) && err.contains("out"), "{what}: {err}");
        assert!(
            !runs_list(&db).contains("run-folder"),
            "{what}: run started"
        );
    }
}

/// A store that refuses to record the finished run (SQLite reports "database or disk is full").
fn store_that_fills_up(db: &Path) {
    run(&["runs", "list", "--db", db.to_str().unwrap()]);
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER full BEFORE UPDATE OF status ON runs WHEN NEW.status = 'complete' \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
}

#[test]
fn a_store_failure_still_leaves_results_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (out, db) = (dir.path().join("out"), dir.path().join("g.db"));
    store_that_fills_up(&db);
    let output = gauntlet_run(dir.path(), &out, &db);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(err.contains("database or disk is full"), "{err}");
    let results = results(&out);
    assert!(results["entries"][0]["metrics"]["accuracy"].is_number());
    for report in ["report.html", "report.md", "junit.xml"] {
        assert!(out.join(report).is_file(), "{report} missing");
    }
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    assert!(
        err.contains("results.json"),
        "says where the figures are: {err}"
    );
}

#[test]
fn a_report_that_cannot_be_written_still_records_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (out, db) = (dir.path().join("out"), dir.path().join("g.db"));
    // A folder where report.md should go: only that file fails.
    std::fs::create_dir_all(out.join("report.md")).unwrap();
    let output = gauntlet_run(dir.path(), &out, &db);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{err}");
    assert!(err.contains("report.md"), "{err}");
    let results = results(&out);
    assert!(out.join("report.html").is_file());
    let id = results["run_id"].as_str().unwrap();
    let show = run(&["runs", "show", id, "--db", db.to_str().unwrap()]);
    assert_eq!(show.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&show.stdout).contains("complete"));
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

#[test]
fn a_board_id_cannot_write_outside_out() {
    let dir = tempfile::tempdir().unwrap();
    let escape = format!("../../../../tmp/gauntlet-escape-{}", std::process::id());
    let rig = write(
        dir.path(),
        "rig.toml",
        &RIG.replace("id = \"local\"", &format!("id = \"{escape}\"")),
    );
    let scenario = scenario(dir.path());
    let out = dir.path().join("out");
    let output = run_scenario(
        &scenario,
        &rig,
        &out,
        Some(dir.path().join("g.db").to_str().unwrap()),
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("invalid board id") && err.contains("rig.toml:"),
        "{err}"
    );
    assert!(!out.exists());
    let tmp_files: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("gauntlet-escape-{}", std::process::id()))
        })
        .collect();
    assert!(tmp_files.is_empty());
}

/// `gauntlet check SCENARIO --rig RIG` with both written into `dir`.
fn check(dir: &Path, scenario: &str, rig: &str) -> (Option<i32>, String) {
    let scenario = write(dir, "scenario.toml", scenario);
    let rig = write(dir, "rig.toml", rig);
    let output = run(&[
        "check",
        scenario.to_str().unwrap(),
        "--rig",
        rig.to_str().unwrap(),
    ]);
    (output.status.code(), stderr(&output))
}

fn cwru(builds_model: &str) -> String {
    let builds = format!(r#"[{{ variant = "fp32", onnx = "{builds_model}", reference = true }}]"#);
    cwru_scenario("check", 0.02, &builds, "")
}

#[test]
fn check_refuses_a_class_count_the_model_does_not_output() {
    let dir = tempfile::tempdir().unwrap();
    let text = cwru("{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx")
        .replace(", \"outer_race6_021\"]", "]")
        .replace(
            "    \"{repo}/scenarios/data/cwru_bearing/1797rpm_0hp_outer_race6_021.csv\",\n",
            "",
        );
    let (code, err) = check(dir.path(), &text, RIG);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("10 values per window but the dataset has 9 classes")
            && err.contains("scenario.toml:"),
        "{err}"
    );
}

#[test]
fn check_refuses_model_files_that_are_not_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(repo().join("scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx")).unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("empty.onnx", Vec::new()),
        ("truncated.onnx", real[..real.len() / 2].to_vec()),
        ("text.onnx", b"this is a README, not a model\n".to_vec()),
    ];
    for (name, bytes) in cases {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let (code, err) = check(dir.path(), &cwru(name), RIG);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(
            err.contains(name) && err.contains("as ONNX"),
            "{name}: {err}"
        );
        assert_eq!(err.matches("as ONNX").count(), 1, "printed once: {err}");
    }
}

#[test]
fn check_refuses_a_power_sensor_that_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = cwru("{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx");
    let sensors = [
        (
            "idle_watts = 4.0\nactive_watts = 16.0",
            "16 W at 5 V (the default)",
        ),
        (
            "idle_watts = 1.0\nactive_watts = 2.0\nsample_hz = 1e12",
            "sample_hz",
        ),
    ];
    for (keys, expected) in sensors {
        let rig = format!("{RIG}\n[boards.power]\ntype = \"simulated\"\n{keys}\n");
        let (code, err) = check(dir.path(), &scenario, &rig);
        assert_eq!(code, Some(2), "{keys}: {err}");
        assert!(
            err.contains(expected) && err.contains("rig.toml:"),
            "{keys}: {err}"
        );
    }
}

/// The HTML report draws a build's device latency p90 against the store's earlier runs of it:
/// absent on the first run, the first run then this one on the second.
#[test]
fn the_html_report_shows_the_trend_of_earlier_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let first = dir.path().join("first");
    let output = gauntlet_run(dir.path(), &first, &db);
    assert!(output.status.success(), "{}", stderr(&output));
    let html = std::fs::read_to_string(first.join("report.html")).unwrap();
    assert!(!html.contains(r#"<section id="trend">"#));
    let first_id = results(&first)["run_id"].as_str().unwrap().to_string();

    let second = dir.path().join("second");
    let output = gauntlet_run(dir.path(), &second, &db);
    assert!(output.status.success(), "{}", stderr(&output));
    let html = std::fs::read_to_string(second.join("report.html")).unwrap();
    let trend = html
        .split(r#"<section id="trend">"#)
        .nth(1)
        .expect("a trend section")
        .split("</section>")
        .next()
        .unwrap();
    assert!(trend.contains("cwru_cnn:fp32 on `"), "{trend}");
    assert!(trend.contains(r#"<svg class="sparkline""#), "{trend}");
    assert_eq!(
        trend.matches("<tr>").count() + trend.matches("<tr class").count(),
        3,
        "{trend}"
    );
    assert!(trend.contains(&format!("<td>{first_id}</td>")), "{trend}");
    assert!(trend.contains(" (this run)</td>"), "{trend}");
}
