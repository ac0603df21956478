//! Issue 13, device side, where a user meets it: the real `gauntlet` against the real agent.
//! A stranger's Shutdown leaves a listening agent serving runs, and an agent that stops reading
//! in the middle of a batch-32 request (128 KiB, twice a pipe's buffer) fails its board within the
//! batch timeout, measurements kept, instead of hanging the run.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use gauntlet_wire::{ErrorKind, FrameDecoder, Request, Response, encode_frame};

const MODEL: &str = "scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx";

fn scenario(run: &str) -> String {
    let builds =
        format!(r#"[{{ variant = "fp32", onnx = "{{repo}}/{MODEL}", reference = true }}]"#);
    cwru_scenario("cwru-agent-link", 0.3, &builds, run)
}

/// The scenario with run rules `run`, and a rig of the one board whose keys follow its `id`.
fn files(dir: &Path, run: &str, board: &str) -> (PathBuf, PathBuf) {
    let rig = format!("[rig]\nname = \"agent-link\"\n\n[[boards]]{board}");
    (
        write(dir, "s.toml", &scenario(run)),
        write(dir, "rig.toml", &rig),
    )
}

#[test]
fn a_strangers_shutdown_is_ignored_and_the_agent_serves_run_after_run() {
    let dir = tempfile::tempdir().unwrap();
    let token = "agent-link-test-token-0123456789";
    let mut agent = Command::new(agent())
        .args(["--listen", "127.0.0.1:0"])
        .env("GAUNTLET_AGENT_TOKEN", token)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(agent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();

    // Seven bytes from anyone who reaches the port used to end the agent.
    let mut stranger = TcpStream::connect(&address).unwrap();
    stranger
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut frame = Vec::new();
    encode_frame(&Request::Shutdown, &mut frame);
    stranger.write_all(&frame).unwrap();
    let mut decoder = FrameDecoder::new(1 << 16);
    let mut buf = [0u8; 1024];
    let answer = loop {
        if let Some(message) = decoder.next_message::<Response>() {
            break message.unwrap();
        }
        let n = stranger.read(&mut buf).unwrap();
        assert!(n > 0, "the agent closed the connection without an answer");
        decoder.extend(&buf[..n]);
    };
    assert!(
        matches!(&answer, Response::Error(e) if e.kind == ErrorKind::Protocol),
        "{answer:?}"
    );

    let (scenario, rig) = files(
        dir.path(),
        "[run]\nwarmup = 4\nbatch = 16",
        &format!(
            r#"
id = "listening"
kind = "linux-tcp"

[boards.connection]
address = "{address}"
token = "{token}"
"#
        ),
    );
    let db = dir.path().join("g.db");
    // The harness ends its session, not the agent: a second run finds it still listening.
    for run in ["first", "second"] {
        let out = dir.path().join(run);
        let output = run_scenario(&scenario, &rig, &out, Some(db.to_str().unwrap()));
        assert_eq!(output.status.code(), Some(0), "{run} run");
        let results = results(&out);
        let e = entry(&results, "fp32");
        assert_eq!(e["status"], "completed", "{run} run: {e}");
        assert_eq!(e["metrics"]["latency_device_us"]["n"], 340, "{run} run");
        // The real agent read this machine before every block and after the last.
        let machine = &results["boards"][0]["machine"];
        let blocks = machine["blocks"]
            .as_array()
            .expect("machine state per block");
        assert!(blocks.len() >= 6, "{run} run: {machine}");
        for b in blocks {
            assert!(b["load_1m"].as_f64().is_some(), "{run} run: {b}");
            // A block shorter than the kernel's 10 ms clock tick may see no tick at all, and then
            // has no steal share rather than a made-up 0.
            match b["steal_share"].as_f64() {
                Some(steal) => assert!((0.0..=1.0).contains(&steal), "{run} run: {b}"),
                None => assert!(b["steal_ticks"].is_null(), "{run} run: {b}"),
            }
        }
        // The blocks' intervals tile the replay, tens of ms on every core: some saw ticks.
        assert!(
            blocks.iter().any(|b| b["steal_share"].as_f64().is_some()),
            "{run} run: {machine}"
        );
        assert!(
            machine["summary"]["load_1m_max"].as_f64().is_some(),
            "{machine}"
        );
    }
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent is still up after both runs"
    );
    let _ = agent.kill();
    let _ = agent.wait();
}

#[test]
fn an_agent_that_stops_reading_mid_request_fails_its_board_within_the_batch_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // Bytes the agent gets: the hello and the model's load (the model plus COBS and headers, at
    // most 1/254 and 512 bytes), a batch-32 warm-up, then the first block of the pass: the 340
    // windows are cut into blocks of 57 (at least six per pass), sent as batches of 32 and 25
    // windows of 1024 f32. Then 24 KiB of the second block's first batch: its remaining 100 KiB
    // cannot fit the 64 KiB pipe, so the harness's write of it blocks.
    let request = |windows: u64| {
        let data = windows * 1024 * 4;
        data + data / 254 + 64
    };
    let model = std::fs::metadata(repo().join(MODEL)).unwrap().len();
    let cut = model + model / 254 + 512 + 2 * request(32) + request(25) + 24 * 1024;
    // Unbuffered, `head` passes each read straight on (else its stdio buffer holds them to exit).
    // The agent's input stops being read where `cut` falls: exactly what a SIGSTOP'd agent, a
    // stuck driver or a stalled SSH channel looks like to the harness, but at a known byte.
    let wrapper = write(
        dir.path(),
        "stalling-agent.sh",
        &format!(
            "#!/bin/sh\n{{ stdbuf -o0 head -c {cut}; exec sleep 20; }} | exec '{}' \"$@\"\n",
            agent().display()
        ),
    );
    Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    let (scenario, rig) = files(
        dir.path(),
        "[run]\nwarmup = 32\nbatch = 32",
        &format!(
            r#"
id = "stall"
kind = "local"

[boards.connection]
agent = "{}"

[boards.timeouts]
connect = "10s"
batch = "2s"
"#,
            wrapper.display()
        ),
    );
    let out = dir.path().join("out");
    let db = dir.path().join("g.db");
    let mut run = gauntlet()
        .args(run_args(&scenario, &rig, &out, Some(db.to_str().unwrap())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A hang guard, not a measurement: before the fix this run never ended.
    let give_up = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > give_up {
            let _ = run.kill();
            panic!("the run hung on a board that stopped reading");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.code(),
        Some(3),
        "infrastructure failure: exit code 3"
    );
    let results = results(&out);
    let board = &results["boards"][0];
    assert_eq!(board["status"], "infra-failed", "{board}");
    assert_eq!(board["failure"]["stage"], "replay", "{board}");
    let reason = board["failure"]["reason"].as_str().unwrap();
    for fragment in ["board `stall`", "within 2s", "stopped reading"] {
        assert!(reason.contains(fragment), "`{fragment}` in: {reason}");
    }
    let e = entry(&results, "fp32");
    assert_eq!(e["status"], "interrupted", "{e}");
    let n = e["metrics"]["latency_device_us"]["n"].as_u64().unwrap_or(0);
    assert_eq!(n, 57, "the answered first block is kept: {e}");
}
