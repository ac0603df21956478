//! Issue 4: gates, champions, promotions and the documented exit codes, through the real binary.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const RIG: &str = LOCAL_RIG_WITHOUT_METER;

/// The last 5 % of each CWRU recording (40 windows): enough to tell fp32 from fp16 apart, quick
/// enough for CI.
fn scenario(model_file: &str, gates: &str) -> String {
    scenario_of(&format!("scenarios/models/cwru_cnn/{model_file}"), gates)
}

/// As [`scenario`], with the candidate's model at `model` (a path in the repository).
fn scenario_of(model: &str, gates: &str) -> String {
    let builds =
        format!(r#"[{{ variant = "candidate", onnx = "{{repo}}/{model}", reference = true }}]"#);
    cwru_scenario(
        "cwru-champion",
        0.05,
        &builds,
        &format!("[run]\nwarmup = 4\nbatch = 8\n\n{gates}"),
    )
}

struct Case<'a> {
    dir: &'a Path,
    db: String,
}

impl Case<'_> {
    fn new(dir: &Path) -> Case<'_> {
        Case {
            dir,
            db: dir.join("g.db").display().to_string(),
        }
    }

    fn run(&self, name: &str, scenario_text: &str) -> (Option<i32>, serde_json::Value) {
        self.run_on(name, scenario_text, RIG)
    }

    /// Runs `scenario_text` on the rig `rig_text`, both written as files named after `name`.
    fn run_on(
        &self,
        name: &str,
        scenario_text: &str,
        rig_text: &str,
    ) -> (Option<i32>, serde_json::Value) {
        let scenario = write(self.dir, &format!("{name}.toml"), scenario_text);
        let rig = write(self.dir, &format!("{name}-rig.toml"), rig_text);
        let out = self.dir.join(name);
        let output = run_scenario(&scenario, &rig, &out, Some(&self.db));
        (output.status.code(), results(&out))
    }

    fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--db", &self.db]);
        let output = run(&all);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

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
    let (code, _) = case.cli(&[
        "promote",
        first_id,
        "--model",
        "cwru_cnn",
        "--variant",
        "candidate",
        "--by",
        "ci",
        "--reason",
        "baseline",
    ]);
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
    let (code, _) = case.cli(&[
        "promote",
        second_id,
        "--model",
        "cwru_cnn",
        "--variant",
        "candidate",
        "--by",
        "ci",
        "--reason",
        "try",
    ]);
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

/// Issue 19: with the champion's artifact still in place, its own build joins every later run and
/// the gate judges the candidate/champion ratio measured side by side, so an unchanged build passes
/// run after run whatever the machine's speed in each, and a build that really computes more
/// (`tests/models/cwru_cnn_fp32_slower.onnx`, the same model with its first and last conv blocks
/// computed twice, 1.31–1.35× head to head, see `make_slower.py` there) fails.
#[test]
fn head_to_head_passes_an_unchanged_build_run_after_run_and_fails_a_slower_one() {
    let dir = tempfile::tempdir().unwrap();
    let case = Case::new(dir.path());
    let gates = r#"
[[gates]]
metric = "latency.p50"
at_most = { vs_champion = 0.10 }
"#;
    // Twenty replays, each in a fresh agent: 120 block pairs and a t level with 19 degrees of
    // freedom. An unchanged pair's interval reached at most 1.05 in 14 such runs at load 4–5;
    // with the replays sharing one agent it reached 1.146, as one process's placement of the two
    // builds' weights held for the whole run.
    let with_repeats = |text: String| text.replace("[run]", "[run]\nrepeats = 20");
    let text = with_repeats(scenario("cwru_cnn_fp32.onnx", gates));
    let (code, first) = case.run("first", &text);
    assert_eq!(code, Some(0));
    let first_id = first["run_id"].as_str().unwrap().to_string();
    let (code, _) = case.cli(&[
        "promote",
        &first_id,
        "--model",
        "cwru_cnn",
        "--variant",
        "candidate",
        "--by",
        "ci",
        "--reason",
        "baseline",
    ]);
    assert_eq!(code, Some(0));
    for name in ["again", "and-again"] {
        let (code, results) = case.run(name, &text);
        let gate = &results["gates"][0];
        assert_eq!(code, Some(0), "{gate}");
        assert_eq!(gate["verdict"], "pass", "{gate}");
        let evidence = gate["evidence"].as_str().unwrap();
        assert!(
            evidence.contains(&format!(
                "head to head with the champion candidate of run {first_id} in this run"
            )),
            "{evidence}"
        );
        let entries = results["entries"].as_array().unwrap();
        let champion = entries
            .iter()
            .find(|e| e["variant"] == "champion-candidate")
            .expect("the champion's build joined the run");
        assert_eq!(champion["champion"], true);
        assert_eq!(
            results["gates"].as_array().unwrap().len(),
            1,
            "the champion's own build is not judged"
        );
    }

    let slower = with_repeats(scenario_of(
        "harness/gauntlet/tests/models/cwru_cnn_fp32_slower.onnx",
        gates,
    ));
    let (code, results) = case.run("slower", &slower);
    let gate = &results["gates"][0];
    assert_eq!(code, Some(1), "a gate failed: {gate}");
    assert_eq!(results["outcome"], "gate-failed");
    assert_eq!(gate["verdict"], "fail", "{gate}");
    assert!(
        gate["evidence"].as_str().unwrap().contains(&format!(
            "head to head with the champion candidate of run {first_id} in this run"
        )),
        "{gate}"
    );
    // Slower by its own extra compute, not by a different answer: the logits are the champion's.
    let entries = results["entries"].as_array().unwrap();
    let metric = |variant: &str, name: &str| {
        entries.iter().find(|e| e["variant"] == variant).unwrap()["metrics"][name].clone()
    };
    let accuracy = metric("candidate", "accuracy");
    assert!(accuracy.as_f64().is_some(), "{accuracy}");
    assert_eq!(accuracy, metric("champion-candidate", "accuracy"));
}
