//! `--cpus`: the real agent binary holds itself and every thread it starts to the CPUs given,
//! and refuses to start on CPUs the machine does not let it have.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const TOKEN: &str = "0123456789abcdef-cpus-test";

/// The `Cpus_allowed_list` of every thread of process `pid`.
fn thread_cpus(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| {
            let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn every_thread_of_an_agent_given_cpus_runs_on_them() {
    let last = *gauntlet_affinity::current().unwrap().last().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gauntlet-agent"))
        .args(["--listen", "127.0.0.1:0", "--cpus", &last.to_string()])
        .env("GAUNTLET_AGENT_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Listening: it has loaded its runtimes (and whatever threads they start).
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on "), "agent printed `{line}`");
    let cpus = thread_cpus(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(cpus.iter().all(|c| *c == last.to_string()), "{cpus:?}");
}

#[test]
fn an_agent_given_a_cpu_the_machine_lacks_names_it_and_does_not_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet-agent"))
        .args(["--stdio", "--cpus", "1023"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("gauntlet-agent: failed to hold this thread to CPUs 1023: "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "it spoke: {:?}", out.stdout);
}
