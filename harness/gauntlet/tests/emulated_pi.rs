//! Issue 18: an emulated Raspberry Pi. `rigs/emulated-pi.toml` puts this machine (x86, the bundled
//! agent) beside an arm64 Debian board from scripts/emulated-pi.sh (its own sshd in a network
//! namespace under QEMU user-mode emulation), which gets the aarch64 agent from
//! scripts/cross-agent.sh through SSH deployment and a health check, like a real Pi. The CWRU
//! scenario runs on both, one board at a time, so the two agents score the same windows.
//!
//! scripts/test.sh builds the agent (unoptimised: the `emulated-test` profile) and the image first
//! and sets `GAUNTLET_EMULATED_PI=1`; `GAUNTLET_EMULATED_PI=0` leaves the board out. Without the
//! variable the tests print a loud SKIPPED line; with it, a board or agent that cannot be built
//! fails them, under `CI=true` as anywhere. Needs root (namespaces, mounts, binfmt_misc).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::ssh::is_root;
use common::*;
use gauntlet_store::Store;
use sha2::Digest;
use tempfile::TempDir;

/// The board is one: tests take turns, and the fault test pulls its plug.
static BOARD: Mutex<()> = Mutex::new(());

const PI: &str = "emulated-pi";
/// The builds tract runs; `int8_qop` (onnxruntime contrib ops) is refused everywhere.
const TRACT_BUILDS: [&str; 5] = ["fp32", "int8_qdq", "int8_dynamic", "int8_qop_std", "fp16"];
/// onnxruntime runs them all.
const ORT_BUILDS: [&str; 6] = [
    "fp32",
    "int8_qdq",
    "int8_dynamic",
    "int8_qop_std",
    "fp16",
    "int8_qop",
];

/// Builds the aarch64 agent and the board (each a no-op when cached) and starts the board, a
/// freshly booted one with nothing cached if `fresh`; `None`, said loudly, when the test is not
/// opted into.
fn emulated_pi(fresh: bool) -> Option<()> {
    if std::env::var_os("GAUNTLET_EMULATED_PI").is_none_or(|v| v != "1") {
        eprintln!(
            "SKIPPED: the emulated Pi tests run with GAUNTLET_EMULATED_PI=1 (see the README's \
             \"An emulated Raspberry Pi\")"
        );
        return None;
    }
    assert!(
        is_root(),
        "the emulated Pi needs root (network namespace, overlay, binfmt_misc)"
    );
    let mut steps = vec![vec!["scripts/cross-agent.sh"]];
    if fresh {
        steps.push(vec!["scripts/emulated-pi.sh", "down"]);
    }
    steps.push(vec!["scripts/emulated-pi.sh", "up"]);
    for args in steps {
        let status = Command::new("bash")
            .args(&args)
            .current_dir(repo())
            .status()
            .expect("run bash");
        assert!(status.success(), "`{}` succeeded", args.join(" "));
    }
    Some(())
}

/// The board for this test alone, up (freshly booted if `fresh`), and a folder for the test's files;
/// `None` when the tests are not opted into.
fn board_turn(fresh: bool) -> Option<(MutexGuard<'static, ()>, TempDir)> {
    let turn = BOARD.lock().unwrap_or_else(|e| e.into_inner());
    emulated_pi(fresh)?;
    Some((turn, tempfile::tempdir().unwrap()))
}

/// The committed CWRU scenario on a stratified subset (the last `tail` of every class's
/// recording), with the Raspberry Pi override's run rules replaced by `pi` (TOML inline-table keys)
/// instead of its 10 s minimum per build, and one replay: the scenario's three would triple an
/// emulated run that only checks the answers. For the same reason its gates are the answers'
/// alone: the suite's agent is unoptimised, and its emulated p90 is no Pi's 20 ms budget.
fn scenario(dir: &Path, tail: f64, pi: &str) -> PathBuf {
    write(
        dir,
        &format!("s-{tail}.toml"),
        &format!(
            "extends = \"{{repo}}/scenarios/cwru-quantization.toml\"\n\n\
             [dataset]\nselect = {{ tail = {tail} }}\n\n\
             [run]\nwarmup = 4\nrepeats = 1\n\n\
             [[overrides]]\nboards = {{ family = \"raspberry-pi\" }}\nrun = {{ {pi} }}\n\n\
             [[gates]]\nmetric = \"accuracy\"\nat_least = 0.95\n\
             variants = [\"fp32\", \"int8_qdq\", \"int8_dynamic\", \"int8_qop_std\", \"fp16\"]\n\n\
             [[gates]]\nmetric = \"agreement.label\"\nat_least = 0.95\n\
             variants = [\"int8_qdq\", \"int8_dynamic\", \"int8_qop_std\"]\n"
        ),
    )
}

fn rig() -> PathBuf {
    repo().join("rigs/emulated-pi.toml")
}

fn command(scenario: &Path, out: &Path, locks: &Path) -> Command {
    let mut command = gauntlet();
    command
        .args(run_args(scenario, &rig(), out, None))
        .env("GAUNTLET_LOCK_DIR", locks)
        .stdin(Stdio::null());
    command
}

fn board<'a>(results: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    results["boards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["board"] == id)
        .unwrap_or_else(|| panic!("no board {id}"))
}

fn entry_on<'a>(results: &'a serde_json::Value, id: &str, variant: &str) -> &'a serde_json::Value {
    results["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["board"] == id && e["variant"] == variant)
        .unwrap_or_else(|| panic!("no entry for {variant} on {id}"))
}

/// Checks that `variant` completed on both boards on `runtime` and that the Pi's answers are
/// x86's on the same windows: the same labels, scores within 1e-4 (aarch64 and x86 kernels may
/// round differently). Prints the largest difference and the emulation's slowdown; answers the
/// Pi's entry.
fn same_answers<'a>(
    results: &'a serde_json::Value,
    out: &Path,
    variant: &str,
    runtime: &str,
) -> &'a serde_json::Value {
    let (e_pi, e_x86) = (
        entry_on(results, PI, variant),
        entry_on(results, "local", variant),
    );
    assert_eq!(e_pi["status"], "completed", "{variant} on the Pi: {e_pi}");
    assert_eq!(e_x86["status"], "completed", "{variant} on x86: {e_x86}");
    assert_eq!(e_pi["runtime"]["name"], runtime, "{e_pi}");
    assert_eq!(e_pi["metrics"]["latency_device_us"]["source"], "emulated");
    assert_eq!(e_x86["metrics"]["latency_device_us"]["source"], "measured");
    let windows = e_x86["metrics"]["windows_scored"].as_u64().unwrap();
    assert_eq!(e_pi["metrics"]["windows_scored"].as_u64(), Some(windows));

    let read = |id: &str| read_f32(&out.join(format!("outputs/{id}__cwru_cnn__{variant}.f32")));
    let (arm, x86) = (read(PI), read("local"));
    assert_eq!(arm.len(), x86.len());
    assert_eq!(arm.len() as u64, windows * 10);
    let max_delta = arm
        .iter()
        .zip(&x86)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert_eq!(
        argmaxes(&arm, 10),
        argmaxes(&x86, 10),
        "{variant}: labels agree"
    );
    assert!(
        max_delta <= 1e-4,
        "{variant}: max |aarch64 - x86| {max_delta}"
    );
    let p50 = |e: &serde_json::Value| e["metrics"]["latency_device_us"]["p50"].as_f64().unwrap();
    eprintln!(
        "{variant}: {windows} windows, labels agree, max |aarch64 - x86| = {max_delta:e}; \
         device p50 {:.0} us emulated vs {:.0} us x86 (slowdown {:.1}x)",
        p50(e_pi),
        p50(e_x86),
        p50(e_pi) / p50(e_x86)
    );
    e_pi
}

#[test]
fn cwru_on_the_emulated_pi_agrees_with_x86_and_the_second_run_deploys_nothing() {
    let Some((_turn, dir)) = board_turn(true) else {
        return;
    };
    let locks = dir.path().join("locks");
    let mut runs = Vec::new();
    // The second run only shows what it deploys: a few windows of each class do.
    for (name, tail) in [("first", 0.3), ("second", 0.02)] {
        let scenario = scenario(dir.path(), tail, "warmup = 4");
        let out = dir.path().join(name);
        let output = command(&scenario, &out, &locks).output().unwrap();
        eprintln!("--- {name}\n{}", String::from_utf8_lossy(&output.stdout));
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "{name} run passes");
        runs.push((out, results(&dir.path().join(name))));
    }
    let (out, first) = &runs[0];
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    let tract = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"tract-onnx\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"'))
        .expect("tract-onnx in Cargo.lock");

    let pi = board(first, PI);
    assert_eq!(pi["status"], "completed", "{pi}");
    assert_eq!(pi["facts"]["arch"], "aarch64", "{pi}");
    // The emulated CPU's extensions, not the x86 host's that user-mode emulation's /proc/cpuinfo
    // shows: int8 and fp16 kernels, and the champion gates' warnings, follow them. A Cortex-A72
    // (scripts/emulated-pi.sh, a Pi 4's core) has no half-precision or dot-product instructions.
    let features: Vec<&str> = pi["facts"]["cpu_features"]
        .as_array()
        .expect("cpu_features")
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(features, ["asimd"], "{pi}");
    // Nor the host's model name ("AMD EPYC" …): the emulation has no device tree to name one.
    assert!(pi["facts"]["cpu_model"].is_null(), "{pi}");
    assert_eq!(pi["kind"], "linux-ssh");
    assert_eq!(pi["timing_source"], "emulated", "{pi}");
    assert!(pi["health"].is_object(), "health checked: {pi}");
    let local = board(first, "local");
    assert_eq!(local["facts"]["arch"], std::env::consts::ARCH);
    assert_eq!(local["timing_source"], "measured", "{local}");

    for variant in TRACT_BUILDS {
        let e_pi = same_answers(first, out, variant, "tract");
        assert_eq!(
            e_pi["runtime"]["version"], tract,
            "the cross-built agent's tract"
        );
    }
    // tract refuses onnxruntime's contrib operators on either architecture alike.
    assert_eq!(
        entry_on(first, PI, "int8_qop")["status"],
        entry_on(first, "local", "int8_qop")["status"]
    );

    // The legend explains what emulated means, and every figure of the Pi (and only the Pi's)
    // says it is emulated.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("> **emulated**:"), "the legend: {report}");
    let figures: Vec<&str> = report.lines().filter(|l| l.contains(" 95% CI")).collect();
    assert!(figures.iter().any(|l| l.contains("| local |")), "{report}");
    for line in figures {
        let on_pi = line.contains(&format!("| {PI} |"));
        assert_eq!(line.contains("(emulated)"), on_pi, "{line}");
    }

    let deploy = |r: &serde_json::Value| board(r, PI)["deploy"].clone();
    let (sent, again) = (deploy(first), deploy(&runs[1].1));
    // A fresh board: the agent and the onnxruntime library both travel, once.
    assert_eq!(
        sent["uploaded"],
        serde_json::json!(["gauntlet-agent", "libonnxruntime.so"]),
        "{sent}"
    );
    assert_eq!(
        again["uploaded"],
        serde_json::json!([]),
        "second run: {again}"
    );
    assert_eq!(again["bytes_sent"], 0, "{again}");
    assert_eq!(again["cache_hits"], sent["uploaded"], "{again}");
}

/// onnxruntime on the Pi: the aarch64 wheel's library the rig deploys runs every variant, int8_qop's
/// contrib operators included, with x86 onnxruntime's answers on the same windows. Its code is the
/// wheel's own (optimised), so a few windows of each class cost seconds, not minutes.
#[test]
fn onnxruntime_on_the_emulated_pi_runs_every_variant_with_the_deployed_aarch64_library() {
    let Some((_turn, dir)) = board_turn(false) else {
        return;
    };
    let builds = ORT_BUILDS
        .iter()
        .map(|v| {
            format!(
                "{{ variant = \"{v}\", onnx = \"{{repo}}/scenarios/models/cwru_cnn/cwru_cnn_{v}.onnx\"{} }}",
                if *v == "fp32" { ", reference = true" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(",\n    ");
    // The committed runtime matrix, on onnxruntime alone: tract's builds are the test above's.
    let scenario = write(
        dir.path(),
        "ort.toml",
        &format!(
            "extends = \"{{repo}}/scenarios/cwru-runtimes.toml\"\n\n\
             [dataset]\nselect = {{ tail = 0.05 }}\n\n\
             [run]\nwarmup = 4\nrepeats = 1\n\n\
             [[overrides]]\nboards = {{ family = \"raspberry-pi\" }}\nrun = {{ warmup = 4 }}\n\n\
             [[models]]\nname = \"cwru_cnn\"\ninput = \"vibration\"\ninput_shape = [1, 1, 1024]\n\
             output = 0\nruntimes = [\"onnxruntime\"]\nthreads = 1\nbuilds = [\n    {builds}\n]\n\n\
             [[gates]]\nmetric = \"agreement.label\"\nat_least = 0.95\n"
        ),
    );
    let out = dir.path().join("out");
    let output = command(&scenario, &out, &dir.path().join("locks"))
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = results(&out);
    let library = std::fs::read(repo().join("target/aarch64-agent/onnxruntime/libonnxruntime.so"))
        .expect("scripts/cross-agent.sh fetched the aarch64 library");
    let library = hex::encode(sha2::Sha256::digest(&library));
    for variant in ORT_BUILDS {
        let e_pi = same_answers(
            &results,
            &out,
            &format!("{variant}@onnxruntime"),
            "onnxruntime",
        );
        assert_eq!(
            e_pi["runtime"]["library_sha256"],
            library.as_str(),
            "{e_pi}"
        );
    }
}

/// Device times the run has committed for the Pi so far: the store keeps each measured block as
/// it arrives. Zero while the database is not there yet or busy.
fn pi_samples(db: &Path) -> usize {
    if !db.exists() {
        return 0;
    }
    let Ok(store) = Store::open(db) else {
        return 0;
    };
    let Some(run) = store
        .list_runs()
        .ok()
        .and_then(|runs| runs.into_iter().next())
    else {
        return 0;
    };
    store
        .sample_counts(&run.id)
        .unwrap_or_default()
        .iter()
        .filter(|(key, _)| key.board == PI)
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn the_emulated_pi_losing_power_mid_run_infra_fails_that_board_and_keeps_its_measurements() {
    let Some((_turn, dir)) = board_turn(false) else {
        return;
    };
    // Long enough on the Pi that the plug is pulled while a build replays.
    let scenario = scenario(dir.path(), 0.05, "warmup = 4, min_duration = \"20s\"");
    let out = dir.path().join("out");
    let log = dir.path().join("run.log");
    let db = dir.path().join("history.db");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut child = command(&scenario, &out, &dir.path().join("locks"))
        .args(["--db", db.to_str().unwrap()])
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();

    // The plug is pulled once the Pi has measured a block, while its replay goes on: whatever
    // the agent's speed (an unoptimised build loads a model for seconds under emulation).
    let give_up = Instant::now() + Duration::from_secs(600);
    while pi_samples(&db) == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "gauntlet ended ({status}) before the board was killed:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < give_up, "the Pi never measured a block");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pulled = Command::new("bash")
        .args(["scripts/emulated-pi.sh", "down"])
        .current_dir(repo())
        .status()
        .unwrap();
    assert!(pulled.success(), "the board went down");

    let status: ExitStatus = child.wait().unwrap();
    eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(
        status.code(),
        Some(3),
        "infrastructure failure: exit code 3"
    );
    let results = results(&out);
    let pi = board(&results, PI);
    assert_eq!(pi["status"], "infra-failed", "{pi}");
    let reason = pi["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("`{PI}`")),
        "names the board: {reason}"
    );
    assert_eq!(board(&results, "local")["status"], "completed");
    let measured: u64 = results["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["board"] == PI)
        .map(|e| e["metrics"]["latency_device_us"]["n"].as_u64().unwrap_or(0))
        .sum();
    assert!(measured > 0, "what the Pi measured before it died is kept");
    for variant in TRACT_BUILDS {
        assert_eq!(entry_on(&results, "local", variant)["status"], "completed");
    }
}
