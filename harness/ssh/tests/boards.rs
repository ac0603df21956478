//! Real sshd "boards" from `scripts/ssh-test-boards.sh` (one network namespace each, or loopback
//! ports where namespaces are unavailable) running the real agent. No mock SSH.
//!
//! Needs root (namespaces, tmpfs, sshd as root). Without root and without `CI` the tests say loudly
//! that they skipped; under `CI=true` they always run.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gauntlet_spec::{KnownHostsPolicy, SshConnection, Timeouts};
use gauntlet_ssh::{AGENT_NAME, SshBoard, SshError, Upload};
use gauntlet_wire::{FrameDecoder, PROTOCOL_VERSION, Request, Response, encode_frame};
use sha2::{Digest, Sha256};

struct Rig {
    state: PathBuf,
    boards: Vec<Row>,
    small_cache: Option<PathBuf>,
    agent: PathBuf,
}

struct Row {
    id: String,
    host: String,
    port: u16,
    user: String,
    identity: PathBuf,
    cache: PathBuf,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The boards, started (idempotently) on first use; `None` when the tests must skip.
fn rig() -> Option<&'static Rig> {
    static RIG: OnceLock<Option<Rig>> = OnceLock::new();
    RIG.get_or_init(|| {
        if !is_root() && std::env::var_os("CI").is_none() {
            eprintln!(
                "\n!!! SKIPPED: gauntlet-ssh board tests need root (network namespaces, sshd, tmpfs); \
                 run as root or with CI=true !!!\n"
            );
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ssh-test-boards.sh");
        let out = Command::new("bash").arg(&script).args(["up", "3"]).output().unwrap();
        assert!(
            out.status.success(),
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let state = std::env::var_os("GAUNTLET_SSH_BOARDS")
            .map_or_else(|| PathBuf::from("/tmp/gauntlet-ssh-boards"), PathBuf::from);
        let table = std::fs::read_to_string(state.join("boards.tsv")).unwrap();
        let boards = table
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                Row {
                    id: f[0].into(),
                    host: f[1].into(),
                    port: f[2].parse().unwrap(),
                    user: f[3].into(),
                    identity: f[4].into(),
                    cache: f[5].into(),
                }
            })
            .collect();
        let small = std::fs::read_to_string(state.join("small_cache")).unwrap();
        Some(Rig {
            small_cache: (!small.trim().is_empty()).then(|| PathBuf::from(small.trim())),
            boards,
            agent: agent_binary(),
            state,
        })
    })
    .as_ref()
}

/// `$GAUNTLET_AGENT`, else `gauntlet-agent` beside this test's target directory.
fn agent_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("GAUNTLET_AGENT") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe.parent().and_then(Path::parent).unwrap();
    let agent = debug_dir.join("gauntlet-agent");
    assert!(
        agent.is_file(),
        "no agent at {}: run `cargo build -p gauntlet-agent` with the same CARGO_TARGET_DIR, or set GAUNTLET_AGENT",
        agent.display()
    );
    agent
}

impl Rig {
    fn connection(&self, row: &Row, cache: &Path) -> SshConnection {
        SshConnection {
            host: row.host.clone(),
            user: Some(row.user.clone()),
            port: Some(row.port),
            identity: Some(row.identity.clone()),
            known_hosts: KnownHostsPolicy::File(self.state.join("known_hosts")),
            options: vec![],
            cache_dir: cache.display().to_string(),
            arch: "x86_64-unknown-linux-gnu".into(),
        }
    }

    /// Board `index` with a cache directory of its own for this test, emptied first (the boards
    /// share this machine's filesystem, so the test can look at what landed).
    fn board(&self, index: usize, test: &str) -> (SshBoard, PathBuf) {
        let row = &self.boards[index];
        let cache = row.cache.join(test);
        let _ = std::fs::remove_dir_all(&cache);
        let board = SshBoard::new(&row.id, &self.connection(row, &cache), &timeouts());
        (board, cache)
    }
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(10),
        ..Timeouts::default()
    }
}

fn model(seed: u8, len: usize) -> (String, Vec<u8>, [u8; 32]) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
        .collect();
    let sha = Sha256::digest(&bytes).into();
    (format!("model-{seed}"), bytes, sha)
}

fn uploads(models: &[(String, Vec<u8>, [u8; 32])]) -> Vec<Upload<'_>> {
    models
        .iter()
        .map(|(name, bytes, sha)| Upload {
            name,
            bytes,
            sha256: *sha,
        })
        .collect()
}

#[test]
fn deploy_installs_verified_files_and_a_second_deploy_sends_nothing() {
    let Some(rig) = rig() else { return };
    let models = [model(3, 200_000), model(7, 5_000)];
    let (board, cache) = rig.board(0, "redeploy");

    let started = Instant::now();
    let first = board.deploy(&rig.agent, &[], &uploads(&models)).unwrap();
    let first_time = started.elapsed();
    assert_eq!(first.uploaded, [AGENT_NAME, "model-3", "model-7"]);
    assert!(first.cache_hits.is_empty());
    let agent_bytes = std::fs::read(&rig.agent).unwrap();
    assert_eq!(first.bytes_sent, (agent_bytes.len() + 205_000) as u64);
    assert_eq!(std::fs::read(&first.agent_remote).unwrap(), agent_bytes);
    for ((name, path), (model_name, bytes, sha)) in first.files.iter().zip(&models) {
        assert_eq!(name, model_name);
        assert!(path.ends_with(&hex::encode(sha)), "{path}");
        assert_eq!(&std::fs::read(path).unwrap(), bytes);
    }
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary uploads left: {leftovers:?}"
    );
    board.cleanup();

    // A fresh connection, as in the next run.
    let row = &rig.boards[0];
    let board = SshBoard::new(&row.id, &rig.connection(row, &cache), &timeouts());
    let started = Instant::now();
    let second = board.deploy(&rig.agent, &[], &uploads(&models)).unwrap();
    let second_time = started.elapsed();
    assert_eq!(second.cache_hits, [AGENT_NAME, "model-3", "model-7"]);
    assert!(second.uploaded.is_empty());
    assert_eq!(second.bytes_sent, 0);
    assert_eq!(second.agent_remote, first.agent_remote);
    eprintln!(
        "deploy of {} bytes: first {first_time:?}, second (all cache hits) {second_time:?}",
        first.bytes_sent
    );

    let changed = [model(3, 200_000), model(9, 5_000)];
    let third = board.deploy(&rig.agent, &[], &uploads(&changed)).unwrap();
    assert_eq!(third.cache_hits, [AGENT_NAME, "model-3"]);
    assert_eq!(third.uploaded, ["model-9"]);
    assert_eq!(third.bytes_sent, 5_000);
}

#[test]
fn health_check_reads_the_board() {
    let Some(rig) = rig() else { return };
    let (board, _) = rig.board(1, "health");
    let deployment = board.deploy(&rig.agent, &[], &[]).unwrap();
    let health = board.health_check(&deployment.agent_remote).unwrap();
    eprintln!("{health:#?}");

    // The boards share this machine's kernel, so its own view is the reference.
    let local = Command::new(&rig.agent).arg("--version").output().unwrap();
    let local = String::from_utf8(local.stdout).unwrap();
    assert_eq!(
        local.trim(),
        format!("gauntlet-agent {}", health.agent_version)
    );
    let cores = Command::new("getconf")
        .arg("_NPROCESSORS_ONLN")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(cores.stdout).unwrap().trim(),
        health.cores.to_string()
    );
    assert!(health.free_disk_bytes > 0);
    let zones = std::fs::read_dir("/sys/class/thermal")
        .map(|d| {
            d.filter(|e| {
                let path = e.as_ref().unwrap().path();
                std::fs::read_to_string(path.join("temp")).is_ok()
            })
            .count()
        })
        .unwrap_or(0);
    assert_eq!(health.temperatures_c.len(), zones);
    assert_eq!(board.sample_temperatures().unwrap().len(), zones);
    let busy = health.load_avg_1m > 0.5 * f64::from(health.cores);
    assert_eq!(health.warnings.iter().any(|w| w.contains("busy")), busy);

    let missing = board
        .health_check(&format!("{}.missing", deployment.agent_remote))
        .unwrap_err();
    assert!(
        missing.to_string().contains("missing or not executable"),
        "{missing}"
    );
}

/// One request and its response over an agent channel.
fn exchange(
    child: &mut std::process::Child,
    decoder: &mut FrameDecoder,
    request: Request,
) -> Result<Response, String> {
    let mut frame = Vec::new();
    encode_frame(&request, &mut frame);
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all(&frame).map_err(|e| e.to_string())?;
    stdin.flush().map_err(|e| e.to_string())?;
    let stdout = child.stdout.as_mut().unwrap();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(m) = decoder.next_message::<Response>() {
            return m.map_err(|e| e.to_string());
        }
        let n = stdout.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("channel closed".into());
        }
        decoder.extend(&buf[..n]);
    }
}

fn hello() -> Request {
    Request::Hello {
        protocol_version: PROTOCOL_VERSION,
        token: None,
    }
}

/// Speaks the real wire protocol: `Hello` → `AgentHello`, `Shutdown` → `Goodbye`.
fn hello_over(child: &mut std::process::Child) -> Result<gauntlet_wire::AgentHello, String> {
    let mut decoder = FrameDecoder::new(1 << 20);
    let hello = match exchange(child, &mut decoder, hello())? {
        Response::Hello(h) => h,
        other => return Err(format!("expected Hello, got {other:?}")),
    };
    match exchange(child, &mut decoder, Request::Shutdown)? {
        Response::Goodbye => Ok(hello),
        other => Err(format!("expected Goodbye, got {other:?}")),
    }
}

#[test]
fn agent_speaks_the_wire_protocol_over_the_ssh_channel() {
    let Some(rig) = rig() else { return };
    let (board, _) = rig.board(2, "wire");
    let deployment = board.deploy(&rig.agent, &[], &[]).unwrap();
    let mut agent = board.spawn_agent(&deployment.agent_remote, &[]).unwrap();
    let hello = hello_over(&mut agent).unwrap();
    assert_eq!(hello.agent, "gauntlet-agent");
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    assert!(agent.wait().unwrap().success());
}

#[test]
fn a_dropped_connection_ends_the_channel_and_the_next_operation_reconnects() {
    let Some(rig) = rig() else { return };
    let (board, _) = rig.board(0, "drop");
    let deployment = board.deploy(&rig.agent, &[], &[]).unwrap();
    let mut agent = board.spawn_agent(&deployment.agent_remote, &[]).unwrap();
    let mut decoder = FrameDecoder::new(1 << 20);
    // An answer proves the channel runs through the control master.
    let answer = exchange(&mut agent, &mut decoder, hello()).unwrap();
    assert!(matches!(answer, Response::Hello(_)), "{answer:?}");
    // Killing the control master is what a pulled cable does, minus the wait for keep-alives.
    board.cleanup();
    let err = exchange(&mut agent, &mut decoder, hello()).unwrap_err();
    assert!(!err.is_empty());
    let status = agent.wait().unwrap();
    assert_eq!(status.code(), Some(255), "ssh reports its own failure");
    let mut stderr = String::new();
    agent
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let e = board.connection_error("talk to the agent", &stderr);
    assert_eq!(e.board(), rig.boards[0].id);
    assert!(e.retryable(), "a dropped link is worth a retry: {e}");
    let lost = board.channel_lost(&stderr);
    assert!(matches!(lost, SshError::ConnectionLost { .. }), "{lost:?}");
    assert!(lost.to_string().contains("connection dropped"), "{lost}");

    let again = board.health_check(&deployment.agent_remote).unwrap();
    assert!(!again.agent_version.is_empty());
}

#[test]
fn three_boards_deploy_and_answer_in_parallel() {
    let Some(rig) = rig() else { return };
    let one = |index: usize| {
        let (board, _) = rig.board(index, "parallel");
        let started = Instant::now();
        let deployment = board.deploy(&rig.agent, &[], &[]).unwrap();
        board.health_check(&deployment.agent_remote).unwrap();
        let mut agent = board.spawn_agent(&deployment.agent_remote, &[]).unwrap();
        hello_over(&mut agent).unwrap();
        agent.wait().unwrap();
        started.elapsed()
    };
    let started = Instant::now();
    let each: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..rig.boards.len())
            .map(|i| s.spawn(move || one(i)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "parallel deploy+health+hello on {} boards: wall {:?}, each {each:?}",
        each.len(),
        started.elapsed()
    );
}

#[test]
fn unreachable_board_is_named_and_retryable() {
    let Some(rig) = rig() else { return };
    // A loopback port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let row = Row {
        id: "ghost".into(),
        host: "127.0.0.1".into(),
        port,
        ..clone_row(&rig.boards[0])
    };
    let board = SshBoard::new(
        "ghost",
        &rig.connection(&row, Path::new("/tmp")),
        &timeouts(),
    );
    let e = board.deploy(&rig.agent, &[], &[]).unwrap_err();
    assert!(matches!(e, SshError::Unreachable { .. }), "{e:?}");
    assert!(e.retryable());
    let text = e.to_string();
    assert!(
        text.contains("`ghost`") && text.contains("Connection refused"),
        "{text}"
    );
}

fn clone_row(row: &Row) -> Row {
    Row {
        id: row.id.clone(),
        host: row.host.clone(),
        port: row.port,
        user: row.user.clone(),
        identity: row.identity.clone(),
        cache: row.cache.clone(),
    }
}

#[test]
fn host_key_mismatch_and_unknown_keys_are_refused() {
    let Some(rig) = rig() else { return };
    let row = &rig.boards[1];
    let mut conn = rig.connection(row, Path::new("/tmp/unused"));
    conn.known_hosts = KnownHostsPolicy::File(rig.state.join("known_hosts_impostor"));
    let e = SshBoard::new(&row.id, &conn, &timeouts())
        .connect()
        .unwrap_err();
    assert!(matches!(e, SshError::HostKey { .. }), "{e:?}");
    assert!(e.to_string().contains("differs"), "{e}");
    assert!(!e.retryable());

    let empty = tempfile::NamedTempFile::new().unwrap();
    conn.known_hosts = KnownHostsPolicy::File(empty.path().into());
    let e = SshBoard::new(&row.id, &conn, &timeouts())
        .connect()
        .unwrap_err();
    assert!(e.to_string().contains("no host key is known"), "{e}");

    // accept-new records the key on first contact; the rig's options redirect the file.
    conn.known_hosts = KnownHostsPolicy::AcceptNew;
    conn.options = vec![format!("UserKnownHostsFile={}", empty.path().display())];
    SshBoard::new(&row.id, &conn, &timeouts())
        .connect()
        .unwrap();
    // Debian hashes known_hosts entries, so prove the record by connecting strictly with it.
    conn.known_hosts = KnownHostsPolicy::File(empty.path().into());
    conn.options.clear();
    SshBoard::new(&row.id, &conn, &timeouts())
        .connect()
        .unwrap();
}

#[test]
fn a_wrong_key_is_an_auth_failure() {
    let Some(rig) = rig() else { return };
    let row = &rig.boards[2];
    let mut conn = rig.connection(row, Path::new("/tmp/unused"));
    conn.identity = Some(rig.state.join("impostor_key"));
    let e = SshBoard::new(&row.id, &conn, &timeouts())
        .connect()
        .unwrap_err();
    assert!(matches!(e, SshError::Auth { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("`{}`", row.id)), "{e}");
}

#[test]
fn disk_full_names_the_board_and_the_remote_path() {
    let Some(rig) = rig() else { return };
    let Some(small) = &rig.small_cache else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount the small tmpfs"
        );
        eprintln!("\n!!! SKIPPED: no 1 MiB tmpfs for the disk-full test !!!\n");
        return;
    };
    let row = &rig.boards[2];
    let cache = small.join("full");
    let _ = std::fs::remove_dir_all(&cache);
    let board = SshBoard::new(&row.id, &rig.connection(row, &cache), &timeouts());
    let big = model(5, 2 << 20);
    let e = board.deploy(&rig.agent, &[], &uploads(&[big])).unwrap_err();
    let SshError::DiskFull { board: id, path } = &e else {
        panic!("expected disk full, got {e:?}")
    };
    assert_eq!(id, &row.id);
    assert!(path.starts_with(&cache.display().to_string()), "{path}");
    assert!(e.to_string().contains("no space left"), "{e}");
    let left: Vec<_> = std::fs::read_dir(cache.join("sha256")).unwrap().collect();
    assert!(left.is_empty(), "partial upload left behind: {left:?}");
}

#[test]
fn a_known_hosts_path_with_spaces_is_one_file() {
    let Some(rig) = rig() else { return };
    let row = &rig.boards[0];
    let mut conn = rig.connection(row, Path::new("/tmp/unused"));
    // Split at its spaces, this path would name files that do not exist (and `%` would be
    // read as a token), and the strict check would find no key.
    let dir = tempfile::tempdir().unwrap();
    let spaced = dir.path().join("lab keys 100%").join("known hosts");
    std::fs::create_dir_all(spaced.parent().unwrap()).unwrap();
    std::fs::copy(rig.state.join("known_hosts"), &spaced).unwrap();
    conn.known_hosts = KnownHostsPolicy::File(spaced);
    SshBoard::new(&row.id, &conn, &timeouts())
        .connect()
        .unwrap();
}
