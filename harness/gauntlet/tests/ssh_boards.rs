//! Issue 8: a rig of three real SSH "boards" (sshd in network namespaces, made by
//! scripts/ssh-test-boards.sh) runs a scenario in parallel; a second run finds everything cached.

mod common;

use std::process::Command;

use common::*;

fn scenario() -> String {
    let builds = r#"[{ variant = "fp32", onnx = "{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx", reference = true }]"#;
    cwru_scenario("cwru-ssh", 0.05, builds, "[run]\nwarmup = 4\nbatch = 8")
}

fn boards_up() -> Option<String> {
    let root = is_root();
    if !root && std::env::var_os("CI").is_none() {
        eprintln!("SKIPPED: the SSH board tests need root (network namespaces and sshd)");
        return None;
    }
    let status = Command::new("bash")
        .arg(repo().join("scripts/ssh-test-boards.sh"))
        .args(["up", "3"])
        .status()
        .expect("run scripts/ssh-test-boards.sh");
    assert!(status.success(), "the SSH test boards came up");
    Some(std::fs::read_to_string("/tmp/gauntlet-ssh-boards/boards.tsv").expect("boards.tsv"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn rig(boards: &str) -> String {
    let mut rig = String::from("[rig]\nname = \"ssh-test\"\n");
    for line in boards.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (id, host, port, user, identity, cache) = (f[0], f[1], f[2], f[3], f[4], f[5]);
        rig.push_str(&format!(
            "\n[[boards]]\nid = \"{id}\"\nkind = \"linux-ssh\"\n\n[boards.connection]\nhost = \"{host}\"\nport = {port}\nuser = \"{user}\"\nidentity = \"{identity}\"\nknown_hosts = {{ file = \"/tmp/gauntlet-ssh-boards/known_hosts\" }}\ncache_dir = \"{cache}\"\narch = \"{}-unknown-linux-gnu\"\n",
            std::env::consts::ARCH
        ));
    }
    rig
}

#[test]
fn three_ssh_boards_run_in_parallel_and_the_second_run_resends_nothing() {
    let Some(boards) = boards_up() else { return };
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
