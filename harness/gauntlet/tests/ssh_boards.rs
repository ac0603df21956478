//! Issue 8: a rig of three real SSH "boards" (sshd in network namespaces, made by
//! scripts/ssh-test-boards.sh) runs a scenario in parallel; a second run finds everything cached.

mod common;

use common::ssh::*;
use common::*;

fn scenario() -> String {
    let builds = r#"[{ variant = "fp32", onnx = "{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx", reference = true }]"#;
    cwru_scenario("cwru-ssh", 0.05, builds, "[run]\nwarmup = 4\nbatch = 8")
}

fn rig(boards: &SshBoards) -> String {
    let mut rig = String::from("[rig]\nname = \"ssh-test\"\n");
    for row in &boards.rows {
        let cache = row.cache.display().to_string();
        rig.push_str(&ssh_board_toml(&row.id, row, &cache, &host_arch(), ""));
    }
    rig
}

#[test]
fn three_ssh_boards_run_in_parallel_and_the_second_run_resends_nothing() {
    let Some(boards) = ssh_boards() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", &scenario());
    let rig = write(dir.path(), "rig.toml", &rig(&boards));
    let db = dir.path().join("g.db").display().to_string();
    let mut runs = Vec::new();
    for name in ["first", "second"] {
        let out = dir.path().join(name);
        let output = run_scenario(&scenario, &rig, &out, Some(&db));
        assert_eq!(output.status.code(), Some(0));
        runs.push(results(&out));
    }
    for (i, results) in runs.iter().enumerate() {
        let boards = results["boards"].as_array().unwrap();
        assert_eq!(boards.len(), 3);
        for board in boards {
            assert_eq!(board["status"], "completed", "{board}");
            assert!(board["health"]["agent_version"].is_string(), "{board}");
            let uploaded = board["deploy"]["uploaded"].as_array().unwrap();
            if i == 1 {
                assert!(uploaded.is_empty(), "second run re-sends nothing: {board}");
                assert!(!board["deploy"]["cache_hits"].as_array().unwrap().is_empty());
            }
        }
        for e in results["entries"].as_array().unwrap() {
            assert_eq!(e["status"], "completed");
            assert!(e["metrics"]["accuracy"].as_f64().unwrap() > 0.9);
        }
    }
}
