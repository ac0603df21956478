//! Issue 13 item 9: a harness SIGKILLed at any point of a run leaves a readable store in which
//! the run is `incomplete` and holds every block of samples committed before the kill.

mod common;

use std::time::Duration;

use common::*;
use gauntlet_store::{RunStatus, Store};

/// The tail 0.3 of CWRU: 340 windows, replayed in six blocks (57 × 5 and 55) per pass.
const WINDOWS: usize = 340;
const BLOCKS: [usize; 6] = [57, 57, 57, 57, 57, 55];

/// Sample counts a build can hold after whole blocks: any number of full passes, then a prefix
/// of the next pass's blocks.
fn whole_blocks(count: usize) -> bool {
    let within = count % WINDOWS;
    let mut edge = 0;
    BLOCKS.iter().any(|b| {
        edge += b;
        within == 0 || within == edge
    })
}

/// The kill points, in ms after the start: from a fixed seed, so a failure reproduces.
fn kill_points(seed: u64, n: usize) -> Vec<u64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            300 + (state >> 33) % 3_700
        })
        .collect()
}

#[test]
fn a_run_killed_at_ten_seeded_points_keeps_every_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let rig = write(dir.path(), "rig.toml", LOCAL_RIG_WITHOUT_METER);
    let scenario = write(
        dir.path(),
        "s.toml",
        &cwru_scenario(
            "cwru-killed",
            0.3,
            r#"[{ variant = "fp32", onnx = "{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx", reference = true }, { variant = "int8_qdq", onnx = "{repo}/scenarios/models/cwru_cnn/cwru_cnn_int8_qdq.onnx" }]"#,
            "[run]\nwarmup = 8\nmin_duration = \"4s\"",
        ),
    );
    let mut with_samples = 0;
    for (point, delay_ms) in kill_points(13, 10).into_iter().enumerate() {
        let db = dir.path().join(format!("killed-{point}.db"));
        let out = dir.path().join(format!("out-{point}"));
        let mut child = gauntlet()
            .args(run_args(&scenario, &rig, &out, Some(db.to_str().unwrap())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished_first = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !db.exists() {
            // Killed before the store was created: nothing was measured.
            continue;
        }
        let store = Store::open(&db).unwrap_or_else(|e| panic!("point {point}: {e}"));
        let runs = store.list_runs().unwrap();
        let Some(stored) = runs.first() else {
            continue;
        };
        if finished_first {
            assert_eq!(stored.status, RunStatus::Complete, "point {point}");
            continue;
        }
        assert_eq!(
            stored.status,
            RunStatus::Incomplete,
            "point {point} ({delay_ms} ms)"
        );
        let counts = store.sample_counts(&stored.id).unwrap();
        for (key, count) in &counts {
            assert!(
                whole_blocks(*count),
                "point {point} ({delay_ms} ms): {} holds {count} samples, not whole blocks",
                key.variant
            );
        }
        if counts.iter().any(|(_, n)| *n > 0) {
            with_samples += 1;
        }
        // What the store holds is what the user sees.
        let shown = run(&["runs", "show", &stored.id, "--db", db.to_str().unwrap()]);
        assert_eq!(shown.status.code(), Some(0), "point {point}");
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(text.contains("incomplete"), "point {point}: {text}");
        if !counts.is_empty() {
            assert!(text.contains("raw samples kept"), "point {point}: {text}");
        }
    }
    assert!(
        with_samples >= 3,
        "runs killed mid-replay keep their streamed samples ({with_samples} of 10 did)"
    );
}
