//! Issue 16's store figures, on SQLite and (when `GAUNTLET_BENCH_PG_URL` names a database the
//! bench may write to) PostgreSQL, side by side in one run:
//! - a lease's acquire + release round trip, p50 and p99, beside a bare `SELECT 1` on the same
//!   connection, the two interleaved so that drift on the machine hits both alike;
//! - recording a run of 6 builds × 20,000 samples, streamed in blocks of 500 as a run does;
//! - 50 short runs recorded by 8 writers at once, none lost or duplicated.
//!
//! `scripts/bench-store.sh` starts a throw-away cluster on loopback and runs
//! `cargo bench -p gauntlet-store --bench store` against it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gauntlet_gate::fixtures::{board, entry, metrics, results};
use gauntlet_spec::{Board, BoardKind};
use gauntlet_store::{EntryKey, Holder, NewRun, RunStatus, Store};

const PG_URL_ENV: &str = "GAUNTLET_BENCH_PG_URL";
/// Lease rounds measured, after as many again to warm the connection and the server's caches.
const LEASE_ROUNDS: usize = 2000;
const WARMUP_ROUNDS: usize = 200;

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// A run id no earlier bench run on the same database used.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn new_run(id: &str) -> NewRun {
    NewRun {
        id: id.into(),
        scenario_name: "bench".into(),
        scenario_path: "benches/store.rs".into(),
        scenario_sha256: "-".into(),
        rig_name: "bench".into(),
        rig_sha256: "-".into(),
        started_at: "2026-12-01T00:00:00Z".into(),
    }
}

fn boards() -> Vec<Board> {
    vec![board("pc", BoardKind::Local, None)]
}

fn key(variant: &str) -> EntryKey {
    EntryKey {
        board: "pc".into(),
        model: "cnn".into(),
        variant: variant.into(),
    }
}

/// Records a run of `variants`, each with `samples` streamed in blocks of 500.
fn record(store: &mut Store, id: &str, variants: &[String], samples: &[f64]) {
    let run = store.begin_run(&new_run(id)).expect("begin a run");
    for v in variants {
        for block in samples.chunks(500) {
            store
                .record_samples(&run, &key(v), block)
                .expect("record samples");
        }
    }
    let entries = variants
        .iter()
        .map(|v| entry("pc", v, v == &variants[0], metrics()))
        .collect();
    store
        .finish_run(&run, &results(id, entries), &boards())
        .expect("finish the run");
}

fn leases(name: &str, location: &Path) {
    let store = Store::open_for_leases(location).expect("open the store for leases");
    let me = Holder::current(None);
    let ttl = Duration::from_secs(30);
    let board = unique("bench-board");
    // Where a lease's time goes, each part timed in the same round: the acquire and the release
    // alone, and a one-row write that commits (a renewal).
    let [mut select, mut lease, mut acquire, mut release, mut renew] = [(); 5].map(|()| Vec::new());
    for i in 0..WARMUP_ROUNDS + LEASE_ROUNDS {
        let start = Instant::now();
        store.ping().expect("SELECT 1");
        let s = start.elapsed();
        let start = Instant::now();
        let held = store
            .try_acquire_lease(&board, &me, ttl, None)
            .expect("acquire")
            .expect("nobody else holds the bench's board");
        let a = start.elapsed();
        assert!(store.release_lease(&held).expect("release"));
        let l = start.elapsed();
        let held = store
            .try_acquire_lease(&board, &me, ttl, None)
            .expect("acquire")
            .expect("nobody else holds the bench's board");
        let start = Instant::now();
        assert!(store.renew_lease(&held, ttl).expect("renew"));
        let n = start.elapsed();
        assert!(store.release_lease(&held).expect("release"));
        if i >= WARMUP_ROUNDS {
            select.push(s);
            lease.push(l);
            acquire.push(a);
            release.push(l - a);
            renew.push(n);
        }
    }
    for v in [
        &mut select,
        &mut lease,
        &mut acquire,
        &mut release,
        &mut renew,
    ] {
        v.sort();
    }
    let (s50, s99) = (percentile(&select, 0.5), percentile(&select, 0.99));
    let (l50, l99) = (percentile(&lease, 0.5), percentile(&lease, 0.99));
    println!(
        "{name}: lease acquire + release p50 {l50:?} p99 {l99:?}; SELECT 1 p50 {s50:?} p99 {s99:?}; \
         ratio p50 {:.2} p99 {:.2}{}, {LEASE_ROUNDS} interleaved rounds",
        ratio(l50, s50),
        ratio(l99, s99),
        if name == "postgres" {
            " (target ≤ 3)"
        } else {
            " (in-process: no round trip to compare with)"
        },
    );
    let part = |v: &[Duration]| {
        let p50 = percentile(v, 0.5);
        format!("{p50:?} ({:.2}× SELECT 1)", ratio(p50, s50))
    };
    // The same round trip on a connection whose commits wait for the disk, in a loop of its own:
    // such a commit slows the statements after it.
    let synchronous = Store::open(location).expect("open the store");
    let mut lease_sync = Vec::new();
    for i in 0..(WARMUP_ROUNDS + LEASE_ROUNDS) / 2 {
        let start = Instant::now();
        let held = synchronous
            .try_acquire_lease(&board, &me, ttl, None)
            .expect("acquire")
            .expect("nobody else holds the bench's board");
        assert!(synchronous.release_lease(&held).expect("release"));
        if i >= WARMUP_ROUNDS / 2 {
            lease_sync.push(start.elapsed());
        }
    }
    lease_sync.sort();
    println!(
        "{name}: p50 of the parts: acquire {}, release {}, a renewal (one-row write) {}; \
         acquire + release with commits waiting for the disk {}",
        part(&acquire),
        part(&release),
        part(&renew),
        part(&lease_sync)
    );
}

fn recording(name: &str, location: &Path) {
    let mut store = Store::open(location).expect("open the store");
    let variants: Vec<String> = (0..6).map(|i| format!("b{i}")).collect();
    let samples: Vec<f64> = (0..20_000).map(f64::from).collect();
    let start = Instant::now();
    record(&mut store, &unique("big"), &variants, &samples);
    println!(
        "{name}: recording 6 builds × 20,000 samples (blocks of 500) and the results took {:?}",
        start.elapsed()
    );
}

fn writers(name: &str, location: &Path) {
    let prefix = unique("short");
    let start = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|w| {
            let (location, prefix) = (location.to_path_buf(), prefix.clone());
            std::thread::spawn(move || {
                let mut store = Store::open(&location).expect("open the store");
                for i in (w..50).step_by(8) {
                    record(
                        &mut store,
                        &format!("{prefix}-{i}"),
                        &["fp32".into()],
                        &[1.0; 200],
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a writer finished");
    }
    let elapsed = start.elapsed();
    let store = Store::open(location).expect("open the store");
    let runs = store.list_runs().expect("list runs");
    let mine: Vec<_> = runs
        .iter()
        .filter(|r| r.id.starts_with(&format!("{prefix}-")))
        .collect();
    let mut ids: Vec<&str> = mine.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    let complete = mine
        .iter()
        .filter(|r| r.status == RunStatus::Complete)
        .count();
    println!(
        "{name}: 50 short runs by 8 writers at once took {elapsed:?}: {} recorded, {} distinct, {complete} complete",
        mine.len(),
        ids.len()
    );
    assert_eq!(
        (mine.len(), ids.len(), complete),
        (50, 50, 50),
        "{name}: runs lost or duplicated"
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs the binary with no arguments
    // and only checks that it builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut targets = vec![("sqlite", dir.path().join("bench.db"))];
    match std::env::var(PG_URL_ENV) {
        Ok(url) if !url.is_empty() => targets.push(("postgres", PathBuf::from(url))),
        _ => println!("postgres: skipped (set ${PG_URL_ENV}; scripts/bench-store.sh does)"),
    }
    for (name, location) in &targets {
        leases(name, location);
        recording(name, location);
        writers(name, location);
    }
}
