//! Real sshd "boards" from scripts/ssh-test-boards.sh (one network namespace each, or loopback ports
//! where namespaces are unavailable), and rig files that reach them. No mock SSH.

use std::path::PathBuf;
use std::process::Command;

use super::repo;

/// Where scripts/ssh-test-boards.sh keeps the boards' keys, known_hosts and table.
pub const STATE: &str = "/tmp/gauntlet-ssh-boards";

/// One line of the boards' table.
#[derive(Debug, Clone)]
pub struct SshRow {
    pub id: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity: String,
    /// A directory of this board's own on this machine (the boards share its filesystem).
    pub cache: PathBuf,
}

pub struct SshBoards {
    pub rows: Vec<SshRow>,
    /// A 1 MiB tmpfs, when it could be mounted.
    pub small_cache: Option<PathBuf>,
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Starts the three boards (idempotently); `None`, said loudly, when the tests must skip.
pub fn ssh_boards() -> Option<SshBoards> {
    if !is_root() && std::env::var_os("CI").is_none() {
        eprintln!("SKIPPED: the SSH board tests need root (network namespaces and sshd)");
        return None;
    }
    let status = Command::new("bash")
        .arg(repo().join("scripts/ssh-test-boards.sh"))
        .args(["up", "3"])
        .status()
        .expect("run scripts/ssh-test-boards.sh");
    assert!(status.success(), "the SSH test boards came up");
    let table = std::fs::read_to_string(format!("{STATE}/boards.tsv")).expect("boards.tsv");
    let rows = table
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            SshRow {
                id: f[0].into(),
                host: f[1].into(),
                port: f[2].parse().expect("a port number"),
                user: f[3].into(),
                identity: f[4].into(),
                cache: f[5].into(),
            }
        })
        .collect();
    let small = std::fs::read_to_string(format!("{STATE}/small_cache")).unwrap_or_default();
    Some(SshBoards {
        rows,
        small_cache: (!small.trim().is_empty()).then(|| PathBuf::from(small.trim())),
    })
}

/// This machine's own target triple, for which the bundled agent is deployed.
pub fn host_arch() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// A `[[boards]]` table for `row` under `id`, with its cache in `cache`, the agent for `arch`, and
/// `timeouts` (TOML lines of `[boards.timeouts]`, may be empty).
pub fn ssh_board_toml(id: &str, row: &SshRow, cache: &str, arch: &str, timeouts: &str) -> String {
    let SshRow {
        host,
        port,
        user,
        identity,
        ..
    } = row;
    format!(
        "\n[[boards]]\nid = \"{id}\"\nkind = \"linux-ssh\"\n\n[boards.connection]\nhost = \"{host}\"\nport = {port}\nuser = \"{user}\"\nidentity = \"{identity}\"\nknown_hosts = {{ file = \"{STATE}/known_hosts\" }}\ncache_dir = \"{cache}\"\narch = \"{arch}\"\n\n[boards.timeouts]\n{timeouts}\n"
    )
}
