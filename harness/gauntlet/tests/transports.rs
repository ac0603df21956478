//! The same replay over each transport the Linux agent speaks: stdio (in reference_models.rs), TCP
//! with a token, and a serial line (a real pty pair made by socat, opened by `serialport` at both ends).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn scenario() -> String {
    let builds = r#"[
    { variant = "fp32", onnx = "{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx", reference = true },
    { variant = "int8_qdq", onnx = "{repo}/scenarios/models/cwru_cnn/cwru_cnn_int8_qdq.onnx" },
]"#;
    cwru_scenario(
        "cwru-transport",
        0.3,
        builds,
        "[run]\nwarmup = 4\nbatch = 16",
    )
}

fn rig(transport: &str) -> String {
    format!(
        r#"
[rig]
name = "transport-test"

[[boards]]
id = "local"
kind = "local"

[boards.connection]
agent = "bundled"
transport = {transport}
"#
    )
}

fn run_and_check(dir: &Path, rig_text: &str) -> serde_json::Value {
    let scenario = write(dir, "scenario.toml", &scenario());
    let rig = write(dir, "rig.toml", rig_text);
    let out = dir.join("out");
    let output = run_scenario(&scenario, &rig, &out, None);
    assert_eq!(output.status.code(), Some(0));
    let results = results(&out);
    for variant in ["fp32", "int8_qdq"] {
        let e = entry(&results, variant);
        assert_eq!(e["status"], "completed");
        let accuracy = e["metrics"]["accuracy"].as_f64().unwrap();
        assert!((accuracy - reference_accuracy("cwru_cnn", variant)).abs() < 5e-5);
        assert_eq!(e["metrics"]["latency_device_us"]["n"], 340);
    }
    results
}

#[test]
fn tcp_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    run_and_check(dir.path(), &rig(r#""tcp""#));
}

struct Socat(Child);

impl Drop for Socat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serial_pty_pair() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host-tty");
    let device = dir.path().join("device-tty");
    let socat = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", host.display()))
        .arg(format!("pty,raw,echo=0,link={}", device.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat is installed by the test command (scripts/test.sh)");
    let _socat = Socat(socat);
    // socat creates its links asynchronously.
    let started = Instant::now();
    while !(host.exists() && device.exists()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "socat made no ptys"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let transport = format!(
        r#"{{ serial = {{ host = "{}", agent = "{}", baud = 115200 }} }}"#,
        host.display(),
        device.display()
    );
    run_and_check(dir.path(), &rig(&transport));
}

/// The stdio rig with the board's agent held to `cpus`.
fn rig_with_cpus(cpus: &str) -> String {
    rig(r#""stdio""#).replace(
        "[boards.connection]",
        &format!("cpus = {cpus}\n\n[boards.connection]"),
    )
}

/// The rig's `cpus`: the agent runs held to them and results.json says so; a CPU the machine
/// lacks fails the board (exit 3) with the agent's reason, naming the CPU.
#[test]
fn an_agent_held_to_the_cpus_the_rig_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    let last = *gauntlet_affinity::current().unwrap().last().unwrap();
    let held = run_and_check(dir.path(), &rig_with_cpus(&format!("[{last}]")));
    assert_eq!(held["boards"][0]["agent_cpus"], serde_json::json!([last]));
    let report = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(report.contains(&format!("agent on CPU {last}")));

    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "scenario.toml", &scenario());
    let rig = write(dir.path(), "rig.toml", &rig_with_cpus("[1023]"));
    let out = dir.path().join("out");
    let output = run_scenario(&scenario, &rig, &out, None);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let failed = results(&out);
    let board = &failed["boards"][0];
    assert_eq!(board["status"], "infra-failed", "{board}");
    let reason = board["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "hold this thread to CPUs 1023: CPU 1023 is not among those it may run on (it runs on "
        ),
        "{reason}"
    );
    assert!(board.get("agent_cpus").is_none(), "{board}");
}
