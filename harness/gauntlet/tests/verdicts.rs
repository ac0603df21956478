//! Issue 4: gates, champions, promotions and the documented exit codes, through the real binary.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::champion::{Case, scenario};
use common::*;

const RIG: &str = LOCAL_RIG_WITHOUT_METER;

const VS_CHAMPION: &str = r#"
[[gates]]
metric = "latency.p50"
at_most = { vs_champion = 0.10 }
"#;

#[test]
fn promoted_champion_then_a_slower_build_fails_and_cannot_be_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let case = Case::new(dir.path());

    // No champion yet: the gate passes so a first build can be promoted.
    let (code, first) = case.run("first", &scenario("cwru_cnn_fp32.onnx", VS_CHAMPION));
    assert_eq!(code, Some(0));
    assert_eq!(first["outcome"], "pass");
    let first_id = first["run_id"].as_str().unwrap();
    let code = case.promote(first_id, "baseline");
    assert_eq!(code, Some(0));
    let (code, champion) = case.cli(&["champion", "cwru-champion"]);
    assert_eq!(code, Some(0));
    assert!(champion.contains(first_id), "{champion}");

    // The same build name now points at the fp16 export, far slower on tract: FAIL vs the champion.
    let (code, second) = case.run("second", &scenario("cwru_cnn_fp16.onnx", VS_CHAMPION));
    assert_eq!(code, Some(1), "a gate failed");
    assert_eq!(second["outcome"], "gate-failed");
    let gate = &second["gates"][0];
    assert_eq!(gate["verdict"], "fail");
    assert_eq!(gate["baseline"]["kind"], "champion");
    assert_eq!(gate["baseline"]["run_id"], first_id);
    let second_id = second["run_id"].as_str().unwrap();
    let code = case.promote(second_id, "try");
    assert_eq!(
        code,
        Some(2),
        "a failed build is refused without --override"
    );
    let (code, champion) = case.cli(&["champion", "cwru-champion"]);
    assert_eq!(code, Some(0));
    assert!(
        champion.contains(first_id) && !champion.contains(second_id),
        "{champion}"
    );

    // Every stored run regenerates its reports.
    let (code, html) = case.cli(&["report", first_id, "--format", "html"]);
    assert_eq!(code, Some(0));
    assert!(html.contains("<html"));
}

#[test]
fn too_few_samples_for_a_p99_claim_is_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    let case = Case::new(dir.path());
    let gates = r#"
[[gates]]
metric = "latency.p99"
at_most = "1s"
"#;
    let (code, results) = case.run("few", &scenario("cwru_cnn_fp32.onnx", gates));
    assert_eq!(code, Some(4), "inconclusive fails CI by default");
    assert_eq!(results["outcome"], "inconclusive");
    assert_eq!(results["gates"][0]["verdict"], "inconclusive");
    assert!(
        results["gates"][0]["evidence"]
            .as_str()
            .unwrap()
            .contains("662")
    );
}

#[test]
fn an_unreachable_board_is_an_infrastructure_failure_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let case = Case::new(dir.path());
    // An agent that exits at once: the handshake never completes.
    let rig = RIG.replace(r#"agent = "bundled""#, r#"agent = "/bin/true""#);
    let (code, results) = case.run_on("s", &scenario("cwru_cnn_fp32.onnx", VS_CHAMPION), &rig);
    assert_eq!(code, Some(3));
    assert_eq!(results["outcome"], "infra-failure");
    assert_eq!(results["boards"][0]["status"], "infra-failed");
    assert_eq!(results["entries"][0]["status"], "not-run");
    assert!(
        results["gates"].as_array().unwrap().is_empty(),
        "no verdict on a model that never ran"
    );
}

#[test]
fn a_harness_killed_mid_run_leaves_the_run_incomplete_and_earlier_runs_intact() {
    let dir = tempfile::tempdir().unwrap();
    let case = Case::new(dir.path());
    let (code, earlier) = case.run("earlier", &scenario("cwru_cnn_fp32.onnx", ""));
    assert_eq!(code, Some(0));
    // fp16 is slow on tract: this run is still replaying when it is killed.
    let slow = write(
        dir.path(),
        "slow.toml",
        &scenario("cwru_cnn_fp16.onnx", "").replace("[run]", "[run]\nrepeats = 50"),
    );
    let rig = write(dir.path(), "rig.toml", RIG);
    let mut child = gauntlet()
        .args([
            "run",
            slow.to_str().unwrap(),
            "--rig",
            rig.to_str().unwrap(),
            "--db",
            &case.db,
        ])
        .args(["--out", dir.path().join("slow-out").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let (_, list) = case.cli(&["runs", "list"]);
        if list.contains("running") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run never showed as running: {list}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (code, list) = case.cli(&["runs", "list"]);
    assert_eq!(code, Some(0));
    assert!(list.contains("incomplete"), "{list}");
    let earlier_id = earlier["run_id"].as_str().unwrap();
    let line = list
        .lines()
        .find(|l| l.contains(earlier_id))
        .expect("earlier run listed");
    assert!(
        line.contains("complete") && !line.contains("incomplete"),
        "{line}"
    );
    let (code, shown) = case.cli(&["runs", "show", earlier_id]);
    assert_eq!(code, Some(0));
    assert!(shown.contains("candidate"), "{shown}");
}

#[test]
fn a_missing_power_sensor_is_reported_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let case = Case::new(dir.path());
    let rig = format!(
        "{RIG}\n[boards.power]\ntype = \"ina219\"\ni2c_bus = \"/dev/i2c-99\"\naddress = 0x40\nshunt_ohms = 0.1\nmax_current_a = 2.0\n"
    );
    let (code, results) = case.run_on("s", &scenario("cwru_cnn_fp32.onnx", ""), &rig);
    assert_eq!(code, Some(0), "a sensor fault is not a model verdict");
    let error = results["boards"][0]["power_error"].as_str().unwrap();
    assert!(
        error.contains("local") && error.contains("/dev/i2c-99"),
        "{error}"
    );
    let e = entry(&results, "candidate");
    assert_eq!(e["status"], "completed");
    assert!(
        e["metrics"]["accuracy"].as_f64().is_some(),
        "the other measurements are kept"
    );
    assert!(e["metrics"]["energy"].is_null());
}
