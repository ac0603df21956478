//! Issue 13 item 6: a reader that goes away (`gauntlet runs list | head`) is a quiet exit with
//! the command's own code, not a panic (exit 101) or "invalid input" (exit 2).

mod common;

use std::process::Stdio;

use common::*;

/// Runs gauntlet with `args` and its standard output's reader closed before it writes.
fn with_stdout_closed(args: &[&str]) -> (Option<i32>, String) {
    let mut child = gauntlet()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gauntlet");
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn schema_check_and_history_exit_with_their_code_when_the_reader_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    let rig = write(dir.path(), "rig.toml", LOCAL_RIG_WITHOUT_METER);
    let rig = rig.to_str().unwrap();
    for args in [
        vec!["schema", "scenario"],
        vec!["check", "scenarios/skab-anomaly.toml", "--rig", rig],
        vec!["runs", "list", "--db", db],
    ] {
        let (code, stderr) = with_stdout_closed(&args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_run_whose_reader_is_gone_exits_with_its_outcome_and_keeps_its_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let db = dir.path().join("g.db");
    let rig = write(dir.path(), "rig.toml", LOCAL_RIG_WITHOUT_METER);
    let scenario = write(
        dir.path(),
        "s.toml",
        &cwru_scenario(
            "cwru-closed-stdout",
            0.05,
            r#"[{ variant = "fp32", onnx = "{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx", reference = true }]"#,
            "[run]\nwarmup = 4",
        ),
    );
    let (code, stderr) =
        with_stdout_closed(&run_args(&scenario, &rig, &out, Some(db.to_str().unwrap())));
    assert!(!stderr.contains("panicked"), "{stderr}");
    let results = results(&out);
    // The documented exit codes (harness/gauntlet/src/exit.rs).
    let expected = match results["outcome"].as_str().unwrap() {
        "pass" => 0,
        "gate-failed" => 1,
        "infra-failure" => 3,
        "inconclusive" => 4,
        other => panic!("outcome {other}: {stderr}"),
    };
    assert_eq!(code, Some(expected), "{stderr}");
}
