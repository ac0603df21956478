//! Issue 16 through the real binary on a real PostgreSQL server (`$GAUNTLET_TEST_PG_URL`; see
//! `scripts/test-postgres.sh`): runs contending for leased boards, a killed holder, the store
//! going away mid-run and `runs import`. Under CI a missing server fails these tests. Besides, the
//! leases a SQLite store records beside the boards' locks.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};

use common::*;

/// One test at a time: the outage test stops the whole server.
fn serial() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh database on the test server, as a URL, or `None` (with a note) without a server.
fn fresh_database(tag: &str) -> Option<String> {
    let url = match std::env::var("GAUNTLET_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "$GAUNTLET_TEST_PG_URL is not set: these tests need a PostgreSQL server (scripts/test-postgres.sh start)"
            )
        }
        _ => {
            eprintln!("skipped: set $GAUNTLET_TEST_PG_URL (scripts/test-postgres.sh start)");
            return None;
        }
    };
    let name = format!("gauntlet_cli_{tag}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        let status = Command::new("psql")
            .args([url.as_str(), "-qc", &sql])
            .status()
            .expect("psql runs");
        assert!(status.success(), "{sql}");
    }
    Some(format!("{}/{name}", &url[..url.rfind('/').unwrap()]))
}

fn rig(dir: &Path, id: &str) -> PathBuf {
    write(
        dir,
        &format!("{id}.toml"),
        &format!(
            "[rig]\nname = \"rig-{id}\"\n\n[[boards]]\nid = \"{id}\"\nkind = \"local\"\nlabels = {{ family = \"x86_64\", slot = \"{id}\" }}\n\n[boards.connection]\nagent = \"bundled\"\ntransport = \"stdio\"\n"
        ),
    )
}

fn scenario(dir: &Path, run_rules: &str) -> PathBuf {
    let builds = r#"[{ variant = "fp32", onnx = "{repo}/scenarios/models/cwru_cnn/cwru_cnn_fp32.onnx", reference = true }]"#;
    write(
        dir,
        "scenario.toml",
        &cwru_scenario(
            "lease-contention",
            0.02,
            builds,
            &format!("[run]\nwarmup = 2\nbatch = 8\n{run_rules}"),
        ),
    )
}

fn spawn_run(scenario: &Path, rig: &Path, out: &Path, db: &str, extra: &[&str]) -> Child {
    let mut args = run_args(scenario, rig, out, Some(db));
    args.extend(extra);
    gauntlet()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a run said about its leases: (event, board, value), value being ms or a ticket.
fn lease_lines(stderr: &str) -> Vec<(String, String, i64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("lease: ")?;
            let (event, rest) = rest.split_once(" board `")?;
            let (board, rest) = rest.split_once('`')?;
            let value = if event == "waiting for" {
                rest.split_once("(ticket ")?
                    .1
                    .split_once(')')?
                    .0
                    .parse()
                    .ok()?
            } else {
                rest.trim()
                    .strip_prefix("at ")?
                    .strip_suffix(" ms")?
                    .parse()
                    .ok()?
            };
            Some((event.to_string(), board.to_string(), value))
        })
        .collect()
}

#[test]
fn eight_runs_share_three_boards_one_holder_at_a_time_in_fifo_order() {
    let _one = serial();
    let Some(db) = fresh_database("contention") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path(), "");
    let rigs: Vec<PathBuf> = (0..3).map(|i| rig(dir.path(), &format!("b{i}"))).collect();
    let children: Vec<Child> = (0..8)
        .map(|i| {
            let out = dir.path().join(format!("out{i}"));
            spawn_run(
                &scenario,
                &rigs[i % 3],
                &out,
                &db,
                &["--wait", "10m", "--lease-ttl", "5s"],
            )
        })
        .collect();
    // Per board: (acquired, released, ticket if it waited), from each run's own lines.
    let mut holds: BTreeMap<String, Vec<(i64, i64, Option<i64>)>> = BTreeMap::new();
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "run {i}: {stderr}");
        let lines = lease_lines(&stderr);
        let get = |event: &str| lines.iter().find(|(e, _, _)| e == event);
        let (_, board, acquired) = get("acquired").unwrap_or_else(|| panic!("run {i}: {stderr}"));
        let (_, _, released) = get("released").unwrap_or_else(|| panic!("run {i}: {stderr}"));
        let ticket = get("waiting for").map(|(_, _, t)| *t);
        assert!(results(&dir.path().join(format!("out{i}")))["entries"][0]["metrics"].is_object());
        holds
            .entry(board.clone())
            .or_default()
            .push((*acquired, *released, ticket));
    }
    assert_eq!(holds.len(), 3, "{holds:?}");
    for (board, mut h) in holds {
        h.sort();
        for pair in h.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "board {board}: two holders at once: {h:?}"
            );
        }
        let tickets: Vec<i64> = h.iter().filter_map(|x| x.2).collect();
        assert!(
            tickets.windows(2).all(|t| t[0] < t[1]),
            "board {board}: not FIFO: {h:?}"
        );
    }
    // Every run is recorded once.
    let listed = gauntlet()
        .args(["runs", "list", "--db", &db])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains("complete")).count(),
        8,
        "{text}"
    );
}

/// Reads a child's stderr on a thread, passing each line on.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    let mut seen = Vec::new();
    loop {
        let Ok(line) = rx.recv() else {
            panic!("the run ended before `{prefix}`:\n{}", seen.join("\n"));
        };
        if line.starts_with(prefix) {
            return line;
        }
        seen.push(line);
    }
}

/// What `sql` prints through psql, unaligned, trimmed.
fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([db, "-qAtc", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn db_now_ms(db: &str) -> i64 {
    psql(
        db,
        "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    )
    .parse()
    .unwrap()
}

/// A run of ten minutes on `rig`'s board with a 3 s lease, once it holds the board: the child,
/// its remaining standard error, and the lease key.
fn hold_board(dir: &Path, rig: &Path, db: &str) -> (Child, mpsc::Receiver<String>, String) {
    let long = scenario(dir, "min_duration = \"10min\"\n");
    let mut holder = spawn_run(&long, rig, &dir.join("a"), db, &["--lease-ttl", "3s"]);
    let lines = lines_of(&mut holder);
    let acquired = wait_for(&lines, "lease: acquired board");
    let key = acquired.split('`').nth(1).unwrap().to_string();
    (holder, lines, key)
}

#[test]
fn a_waiter_gets_the_board_of_a_killed_holder_within_ttl_and_a_heartbeat() {
    let _one = serial();
    let Some(db) = fresh_database("killed") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(dir.path(), "b0");
    // Its standard error is read on until the end, so that a write to it cannot fail.
    let (mut holder, _holder_lines, _) = hold_board(dir.path(), &rig, &db);
    let short = dir.path().join("short");
    std::fs::create_dir_all(&short).unwrap();
    let quick = scenario(&short, "");
    let mut waiter = spawn_run(
        &quick,
        &rig,
        &dir.path().join("b"),
        &db,
        &["--wait", "2m", "--lease-ttl", "3s"],
    );
    let waiter_lines = lines_of(&mut waiter);
    let waiting = wait_for(&waiter_lines, "lease: waiting for board");
    assert!(
        waiting.contains(&format!("held by pid {}", holder.id())),
        "{waiting}"
    );
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let killed_at = db_now_ms(&db);
    let acquired = wait_for(&waiter_lines, "lease: acquired board");
    let acquired_at: i64 = acquired
        .split("at ")
        .nth(1)
        .unwrap()
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    // TTL 3 s, heartbeat every 1 s.
    assert!(acquired_at - killed_at <= 4_000, "{acquired} ({killed_at})");
    assert!(waiter.wait().unwrap().success());
    // The killed run reads incomplete and kept what it streamed.
    let listed = gauntlet()
        .args(["runs", "list", "--db", &db])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("incomplete"), "{text}");
}

/// `gauntlet runs list`, as run id → status.
fn run_statuses(db: &str) -> BTreeMap<String, String> {
    let (code, text) = gauntlet_out(&["runs", "list", "--db", db]);
    assert_eq!(code, Some(0), "{text}");
    text.lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            (cells[0].to_string(), cells[4].to_string())
        })
        .collect()
}

#[test]
fn a_run_killed_on_another_host_reads_incomplete_once_its_ttl_passed() {
    let _one = serial();
    let Some(db) = fresh_database("elsewhere") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(dir.path(), "b0");
    std::fs::create_dir_all(dir.path().join("q")).unwrap();
    let quick = scenario(&dir.path().join("q"), "");
    let (code, text) = gauntlet_out(&run_args(&quick, &rig, &dir.path().join("done"), Some(&db)));
    assert_eq!(code, Some(0), "{text}");
    let (mut holder, _holder_lines, _) = hold_board(dir.path(), &rig, &db);
    // As if it ran on another host: this one cannot look its process up in /proc.
    let killed = psql(
        &db,
        "UPDATE runs SET runner = 'elsewhere' WHERE status = 'running' RETURNING id",
    );
    let done = psql(&db, "SELECT id FROM runs WHERE status = 'complete'");
    let before = run_statuses(&db);
    assert_eq!(before[&killed], "running", "{before:?}");
    assert_eq!(before[&done], "complete", "{before:?}");

    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    // Until its last heartbeat is a TTL (3 s) old by the database's clock.
    while psql(
        &db,
        &format!(
            "SELECT heartbeat_ms + stale_ms < CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) \
             FROM runs WHERE id = '{killed}'"
        ),
    ) != "t"
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let after = run_statuses(&db);
    assert_eq!(after[&killed], "incomplete", "{after:?}");
    assert_eq!(after[&done], "complete", "{after:?}");
    assert_eq!(after.len(), 2, "{after:?}");
    let (code, text) = gauntlet_out(&["runs", "show", &killed, "--db", &db]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("status    incomplete") && text.contains("it did not finish"),
        "{text}"
    );
    // Judged at read: the row itself still says running, for a runner that only lost the
    // database to come back to.
    assert_eq!(
        psql(
            &db,
            &format!("SELECT status FROM runs WHERE id = '{killed}'")
        ),
        "running"
    );
    // The finished run's figures are untouched.
    let (code, text) = gauntlet_out(&["runs", "show", &done, "--db", &db]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("status    complete"), "{text}");
}

#[test]
fn a_run_whose_store_died_keeps_its_results_and_imports_once() {
    let _one = serial();
    let Some(db) = fresh_database("outage") else {
        return;
    };
    // This test stops and restarts the whole server (`pg_ctl stop -m immediate`).
    let script = repo().join("scripts/test-postgres.sh");
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path(), "min_duration = \"3s\"\n");
    let rig = rig(dir.path(), "b0");
    let out = dir.path().join("out");
    let mut child = gauntlet()
        .args(run_args(&scenario, &rig, &out, Some(&db)))
        .env("GAUNTLET_DB_RETRY", "1s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    wait_for(&lines, "lease: acquired board");
    assert!(
        Command::new(&script)
            .arg("kill")
            .status()
            .unwrap()
            .success()
    );
    let rest: Vec<String> = lines.iter().collect();
    let status = child.wait().unwrap();
    assert!(
        Command::new(&script)
            .arg("restart")
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(status.code(), Some(5), "{}", rest.join("\n"));
    assert!(
        rest.iter().any(|l| l.contains("gauntlet runs import")),
        "{rest:?}"
    );
    let results = results(&out);
    assert!(
        results["entries"][0]["metrics"]["latency_device_us"]["n"]
            .as_u64()
            .unwrap()
            > 0
    );
    let run_id = results["run_id"].as_str().unwrap().to_string();

    for expected in ["imported run", "already recorded"] {
        let import = gauntlet()
            .args(["runs", "import", out.to_str().unwrap(), "--db", &db])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&import.stdout);
        assert!(
            import.status.success() && text.contains(expected),
            "{text}{}",
            String::from_utf8_lossy(&import.stderr)
        );
    }
    let listed = gauntlet()
        .args(["runs", "list", "--db", &db])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(&run_id)).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(rows[0].contains("complete"), "{text}");
}

fn gauntlet_out(args: &[&str]) -> (Option<i32>, String) {
    let output = gauntlet().args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn lease_commands_show_release_by_force_and_take_boards_out_of_rotation() {
    let _one = serial();
    let Some(db) = fresh_database("commands") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(dir.path(), "b0");
    let (mut holder, holder_lines, key) = hold_board(dir.path(), &rig, &db);
    assert!(key.starts_with("local://") && key.ends_with("/b0"), "{key}");

    let (code, text) = gauntlet_out(&["lease", "list", "--db", &db]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&key) && text.contains(&format!("held by pid {}", holder.id())),
        "{text}"
    );
    let (code, text) = gauntlet_out(&["lease", "release", &key, "--reason", "x", "--db", &db]);
    assert_eq!(code, Some(2), "release without --force: {text}");
    let (code, text) = gauntlet_out(&[
        "lease",
        "release",
        &key,
        "--force",
        "--reason",
        "job cancelled",
        "--db",
        &db,
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("released"), "{text}");
    // The holder's next heartbeat finds its lease gone and says so.
    wait_for(&holder_lines, "warning: lost the lease of board");
    holder.kill().unwrap();
    holder.wait().unwrap();

    let (code, text) = gauntlet_out(&[
        "lease",
        "out",
        &key,
        "--reason",
        "throttled at 85 C",
        "--db",
        &db,
    ]);
    assert_eq!(code, Some(0), "{text}");
    std::fs::create_dir_all(dir.path().join("q")).unwrap();
    let quick = scenario(&dir.path().join("q"), "");
    let quick_run = |out: &str| {
        let out = dir.path().join(out);
        gauntlet_out(&run_args(&quick, &rig, &out, Some(&db)))
    };
    let (code, text) = quick_run("refused");
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("out of rotation") && text.contains("throttled at 85 C"),
        "{text}"
    );
    let (_, text) = gauntlet_out(&["lease", "list", "--db", &db]);
    assert!(text.contains("out of rotation since"), "{text}");
    let (code, text) = gauntlet_out(&[
        "lease",
        "return",
        &key,
        "--reason",
        "fan fixed",
        "--db",
        &db,
    ]);
    assert_eq!(code, Some(0), "{text}");
    let (_, text) = gauntlet_out(&["lease", "list", "--db", &db]);
    assert!(text.starts_with("no leases in "), "{text}");
    // Who released and rotated what, and why, is on record.
    let out = Command::new("psql")
        .args([
            db.as_str(),
            "-Atc",
            "SELECT event || ':' || reason FROM lease_events ORDER BY id",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "forced-release:job cancelled\nout-of-rotation:throttled at 85 C\nback-in-rotation:fan fixed"
    );

    let (code, text) = quick_run("back");
    assert_eq!(code, Some(0), "{text}");
    let (_, text) = gauntlet_out(&["runs", "list", "--board", "b0", "--db", &db]);
    // The finished run, and the killed one if it streamed a block before it was killed.
    let complete = text.lines().filter(|l| l.contains(" complete ")).count();
    assert_eq!(complete, 1, "{text}");
    let (_, text) = gauntlet_out(&["runs", "list", "--board", "b9", "--db", &db]);
    assert!(text.starts_with("no runs in "), "{text}");
    let (_, text) = gauntlet_out(&["runs", "list", "--runner", "elsewhere", "--db", &db]);
    assert!(text.starts_with("no runs in "), "{text}");
}

#[test]
fn a_run_that_lost_its_lease_mid_run_stops_driving_the_board_and_keeps_its_figures() {
    let _one = serial();
    let Some(db) = fresh_database("lost") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(dir.path(), "b0");
    let scenario = scenario(dir.path(), "min_duration = \"5s\"\n");
    let out = dir.path().join("out");
    let mut run = spawn_run(&scenario, &rig, &out, &db, &["--lease-ttl", "3s"]);
    let lines = lines_of(&mut run);
    let acquired = wait_for(&lines, "lease: acquired board");
    let key = acquired.split('`').nth(1).unwrap().to_string();
    // As a database crash that forgot the lease (synchronous_commit = off) would leave it.
    psql(&db, &format!("DELETE FROM leases WHERE board = '{key}'"));
    let rest: Vec<String> = lines.iter().collect();
    let status = run.wait().unwrap();
    let rest = rest.join("\n");
    assert_eq!(status.code(), Some(3), "{rest}");
    assert!(
        rest.contains(&format!("warning: lost the lease of board `{key}`"))
            && rest.contains(&format!(
                "error: failed to hold board(s) `{key}` for the whole run"
            )),
        "{rest}"
    );
    // Another run may hold the board now: this one stopped driving it at its next block, long
    // before min_duration's 5 s were up, and kept what it had measured, for whoever looks.
    let results = results(&out);
    let board = &results["boards"][0];
    assert_eq!(board["status"], "infra-failed", "{board}");
    assert_eq!(board["failure"]["stage"], "lock", "{board}");
    let reason = board["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("keep board `b0`")
            && reason.contains(&format!("its lease `{key}` was lost")),
        "{reason}"
    );
    assert_eq!(results["entries"][0]["status"], "interrupted");
    let statuses = run_statuses(&db);
    assert_eq!(
        statuses.values().collect::<Vec<_>>(),
        ["complete"],
        "{statuses:?}"
    );
}

#[test]
fn a_sqlite_store_records_who_holds_a_board_and_leaves_the_lock_to_decide() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("local.db").display().to_string();
    let rig = rig(dir.path(), "b0");
    let (mut holder, _holder_lines, key) = hold_board(dir.path(), &rig, &db);
    assert!(key.starts_with("local://") && key.ends_with("/b0"), "{key}");
    let (code, text) = gauntlet_out(&["lease", "list", "--db", &db]);
    assert_eq!(code, Some(0), "{text}");
    let held_by = format!("held by pid {} on ", holder.id());
    assert!(
        text.contains(&format!("{key}  {held_by}")) && text.contains(", run "),
        "{text}"
    );

    std::fs::create_dir_all(dir.path().join("q")).unwrap();
    let quick = scenario(&dir.path().join("q"), "");
    let quick_run =
        |out: &str| gauntlet_out(&run_args(&quick, &rig, &dir.path().join(out), Some(&db)));
    // The lease refuses nobody here: a local board has no lock, so a second run goes ahead.
    let (code, text) = quick_run("second");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("board `{key}` is leased to pid {}", holder.id()))
            && text.contains("its lock decides"),
        "{text}"
    );
    // Out of rotation is refused all the same.
    let (code, text) = gauntlet_out(&["lease", "out", &key, "--reason", "fan broken", "--db", &db]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = quick_run("refused");
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("out of rotation") && text.contains("fan broken"),
        "{text}"
    );
    let (code, text) = gauntlet_out(&["lease", "return", &key, "--reason", "fixed", "--db", &db]);
    assert_eq!(code, Some(0), "{text}");

    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    // On its own host a dead holder's lease is taken at once.
    let (code, text) = quick_run("after");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("lease: acquired board `{key}`")),
        "{text}"
    );
    assert!(
        text.contains(&format!("lease: released board `{key}`")),
        "{text}"
    );
    let (_, text) = gauntlet_out(&["lease", "list", "--db", &db]);
    assert!(text.starts_with("no leases in "), "{text}");
}

/// Three local-agent boards of one family, `p0`…`p2`.
fn pool_rig(dir: &Path) -> PathBuf {
    let boards: String = (0..3)
        .map(|i| {
            format!(
                "[[boards]]\nid = \"p{i}\"\nkind = \"local\"\nlabels = {{ family = \"pi\" }}\n\n[boards.connection]\nagent = \"bundled\"\ntransport = \"stdio\"\n\n"
            )
        })
        .collect();
    write(
        dir,
        "pool.toml",
        &format!("[rig]\nname = \"pool\"\n\n{boards}"),
    )
}

#[test]
fn a_pool_takes_free_boards_past_held_and_out_of_rotation_ones_and_waits_for_enough() {
    let _one = serial();
    let Some(db) = fresh_database("pool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rig = pool_rig(dir.path());
    let scenario = scenario(
        dir.path(),
        "\n[targets]\npools = [{ labels = { family = \"pi\" }, count = 2 }]\n",
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let key = |id: &str| format!("local://{}/{id}", host.trim());
    let (code, text) = gauntlet_out(&[
        "lease",
        "out",
        &key("p0"),
        "--reason",
        "sd card fails",
        "--db",
        &db,
    ]);
    assert_eq!(code, Some(0), "{text}");
    // A holder on another host, whose lease lasts ten minutes.
    let held = format!(
        "INSERT INTO leases (board, token, host, pid, user_name, run_id, acquired_ms, renewed_ms, expires_ms) \
         SELECT '{}', 't', 'elsewhere', 1, 'ci', 'r-other', n, n, n + 600000 \
         FROM (SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS n) now",
        key("p1")
    );
    let status = Command::new("psql")
        .args([db.as_str(), "-qc", &held])
        .status()
        .unwrap();
    assert!(status.success());

    let out = |name: &str| dir.path().join(name);
    let refused_out = out("refused");
    let refused = gauntlet()
        .args(run_args(&scenario, &rig, &refused_out, Some(&db)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{text}");
    assert!(
        text.contains("lease 2 board(s) of pool { family=pi }: 1 free of 3")
            && text.contains("out of rotation: sd card fails")
            && text.contains("held by pid 1 on elsewhere"),
        "{text}"
    );

    let mut waiter = spawn_run(&scenario, &rig, &out("waited"), &db, &["--wait", "2m"]);
    let lines = lines_of(&mut waiter);
    let waiting = wait_for(
        &lines,
        "lease: waiting for 2 board(s) of pool { family=pi }",
    );
    assert!(
        waiting.contains(&format!("`{}` held by pid 1 on elsewhere", key("p1"))),
        "{waiting}"
    );
    // `lease list` shows the waiter in the queue of each candidate, and what it waits for, once
    // it has queued (just after saying it waits).
    let pid = format!(": pid {} on ", waiter.id());
    let waiter_line = |l: &str| {
        l.starts_with("  1. ticket ")
            && l.contains(&pid)
            && l.ends_with(", for 2 board(s) of pool { family=pi }")
    };
    let mut text = String::new();
    for _ in 0..100 {
        text = gauntlet_out(&["lease", "list", "--db", &db]).1;
        if text.lines().any(waiter_line) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let listed: Vec<&str> = text.lines().collect();
    let p1 = listed
        .iter()
        .position(|l| l.starts_with(&format!("{}  held by pid 1 on elsewhere", key("p1"))))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        listed[p1].ends_with(", 1 waiting") && waiter_line(listed[p1 + 1]),
        "{text}"
    );
    let (code, text) = gauntlet_out(&[
        "lease",
        "release",
        &key("p1"),
        "--force",
        "--reason",
        "the other job was cancelled",
        "--db",
        &db,
    ]);
    assert_eq!(code, Some(0), "{text}");
    let rest: Vec<String> = lines.iter().collect();
    assert!(waiter.wait().unwrap().success(), "{}", rest.join("\n"));
    let boards: Vec<String> = results(&out("waited"))["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["board"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(boards, ["p1", "p2"]);
    let acquired: Vec<&String> = rest
        .iter()
        .filter(|l| l.starts_with("lease: acquired board"))
        .collect();
    assert_eq!(acquired.len(), 2, "{rest:?}");
}

#[test]
fn a_requalification_leases_its_board_and_waits_in_line_for_it() {
    let _one = serial();
    let Some(db) = fresh_database("drift") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(dir.path(), "b0");
    let drift_scenario = repo().join("scenarios/skab-drift.toml");
    let champion = dir.path().join("champion");
    let (code, text) = gauntlet_out(&run_args(&drift_scenario, &rig, &champion, Some(&db)));
    assert_eq!(code, Some(0), "{text}");
    let run_id = results(&champion)["run_id"].as_str().unwrap().to_string();
    let (code, text) = gauntlet_out(&[
        "promote",
        &run_id,
        "--model",
        "skab_mlp",
        "--variant",
        "fp32",
        "--by",
        "test",
        "--reason",
        "baseline",
        "--db",
        &db,
    ]);
    assert_eq!(code, Some(0), "{text}");

    let (mut holder, _holder_lines, key) = hold_board(dir.path(), &rig, &db);
    let drift_args = |out: &str| {
        vec![
            "drift".to_string(),
            drift_scenario.to_str().unwrap().to_string(),
            "--rig".into(),
            rig.to_str().unwrap().into(),
            "--db".into(),
            db.clone(),
            "--out".into(),
            dir.path().join(out).to_str().unwrap().into(),
        ]
    };
    // Without --wait a held board is an infrastructure failure that names its holder.
    let refused = gauntlet().args(drift_args("refused")).output().unwrap();
    let text = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!("held by pid {}", holder.id())),
        "{text}"
    );
    assert!(!dir.path().join("refused/drift.json").exists());

    let mut waiter = gauntlet()
        .args(drift_args("judged"))
        .args(["--wait", "2m", "--lease-ttl", "3s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waiter_lines = lines_of(&mut waiter);
    let waiting = wait_for(&waiter_lines, "lease: waiting for board");
    assert!(waiting.contains(&format!("`{key}`")), "{waiting}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let acquired = wait_for(&waiter_lines, "lease: acquired board");
    assert!(acquired.contains(&format!("`{key}`")), "{acquired}");
    wait_for(&waiter_lines, "lease: released board");
    assert!(waiter.wait().unwrap().success());
    assert!(dir.path().join("judged/drift.json").exists());
    let holders = psql(&db, "SELECT count(*) FROM leases");
    assert_eq!(holders, "0", "the requalification left its lease behind");
}
