//! A lab shared by many runners: the board leases a run holds while it works (`--wait`, heartbeat),
//! the raw samples a run folder keeps so that `gauntlet runs import` can record a run the store
//! missed, and the `lease` commands.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, UNIX_EPOCH};

use gauntlet_results::Results;
use gauntlet_runner::{BoardFence, BoardOutcome, RunRecord, Stage};
use gauntlet_spec::{Board, Connection};
use gauntlet_store::{EntryKey, Holder, Lease, NewRun, Store, StoreError, Ticket};

use crate::output::{OutputError, join_file, write_atomically};

/// A lease's time-to-live when `--lease-ttl` is not given: a killed runner's boards come back
/// this long after its last heartbeat.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// How a run leases its boards.
#[derive(Debug, Clone)]
pub struct Leasing {
    /// The database again (a file or URL): the heartbeat has a connection of its own, so that it
    /// never waits behind the run's writes.
    pub db: std::path::PathBuf,
    pub ttl: Duration,
    /// How long to wait in line for a busy board; zero fails at once.
    pub wait: Duration,
}

/// Database-clock milliseconds as RFC 3339.
pub fn at(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// What a lease of `board` is keyed by: its address, as the `flock` is (one Pi named twice is one
/// board), else the board as this host's (a local agent or QEMU machine).
pub fn lease_key(board: &Board) -> Option<String> {
    let driver = gauntlet_runner::driver::driver_for(gauntlet_runner::DRIVERS, board).ok();
    if let Some(address) = driver.and_then(|d| d.lock_key(board)) {
        return Some(address);
    }
    let local = matches!(
        board.connection,
        Connection::Local { .. } | Connection::Qemu { .. }
    );
    local.then(|| format!("local://{}/{}", Holder::current(None).host, board.id))
}

/// A scenario's pool at run time: any `count` of `candidates` (rig order), whichever are free.
pub struct PoolRequest<'a> {
    /// The pool's labels, as `k=v, …`, for messages.
    pub labels: String,
    pub count: usize,
    pub candidates: Vec<&'a Board>,
}

/// A thread calling `beat` every third of a TTL until dropped (which waits for a beat under way).
struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    fn start(ttl: Duration, mut beat: impl FnMut() + Send + 'static) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            loop {
                std::thread::park_timeout(ttl / 3);
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                beat();
            }
        });
        Heartbeat {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// A run's heartbeat in the store, renewed every third of `ttl` until dropped: another host
/// reads the run as incomplete once its last beat is `ttl` old (its runner died), as it finds
/// the run's leases expired. The first beat is written before this returns.
pub struct RunAlive {
    _heartbeat: Heartbeat,
}

pub fn keep_run_alive(store: Arc<Store>, run_id: &str, ttl: Duration) -> RunAlive {
    let run_id = run_id.to_string();
    let mut failing = false;
    let mut beat = move || match store.beat_run(&run_id, ttl) {
        Ok(_) => failing = false,
        // Once per outage: the next beats try again.
        Err(e) if !failing => {
            failing = true;
            eprintln!("warning: failed to {e}");
        }
        Err(_) => {}
    };
    beat();
    RunAlive {
        _heartbeat: Heartbeat::start(ttl, beat),
    }
}

/// The boards of a run, leased until dropped; a thread renews them every third of the TTL.
pub struct HeldBoards {
    /// The ids of the boards taken from the pools.
    pub pooled: Vec<String>,
    leases: Vec<Lease>,
    store: Option<Arc<Store>>,
    heartbeat: Option<Heartbeat>,
    /// Boards whose lease was found gone at a renewal or at the release.
    lost: Arc<Mutex<Vec<String>>>,
    /// Whether the leases are what keeps other runs off the boards (a shared store), rather than
    /// a record beside the `flock`.
    guarding: bool,
}

/// Leases (through `store`) every board of `boards` that needs one (in key order, so two runs needing the same two
/// boards cannot each hold one and wait for the other), waiting up to `leasing.wait` for each,
/// then `count` boards of each pool. Says on standard error what it waits for and when it
/// acquired and released each board. With a store of this host's own (SQLite) the `flock`
/// decides who uses a board, as it always has, and the leases only record who does: none is
/// waited for or refused (but a board out of rotation), and a pool takes its first candidates.
pub fn hold_boards(
    store: Arc<Store>,
    leasing: &Leasing,
    shared: bool,
    boards: &[Board],
    pools: &[PoolRequest],
    run_id: &str,
) -> Result<HeldBoards, StoreError> {
    let guard = |b: &Board| lease_key(b).filter(|_| shared);
    let mut keys: Vec<String> = boards.iter().filter_map(guard).collect();
    keys.sort();
    keys.dedup();
    let mut held = HeldBoards {
        pooled: Vec::new(),
        leases: Vec::new(),
        store: None,
        heartbeat: None,
        lost: Arc::default(),
        guarding: shared,
    };
    // Boards a lease does not guard (no shared store, or nothing to key them by) are always free.
    let mut leasable = Vec::new();
    for pool in pools {
        let free: Vec<&Board> = pool
            .candidates
            .iter()
            .filter(|b| !held.pooled.contains(&b.id))
            .copied()
            .collect();
        let (unguarded, guarded): (Vec<&Board>, Vec<&Board>) =
            free.into_iter().partition(|b| guard(b).is_none());
        let direct = unguarded.len().min(pool.count);
        held.pooled
            .extend(unguarded[..direct].iter().map(|b| b.id.clone()));
        if direct < pool.count {
            leasable.push((pool, pool.count - direct, guarded));
        }
    }
    let holder = Holder::current(Some(run_id));
    if !shared {
        let pooled = pools
            .iter()
            .flat_map(|p| p.candidates.iter().copied())
            .filter(|b| held.pooled.contains(&b.id));
        let mut recorded: Vec<String> = boards.iter().chain(pooled).filter_map(lease_key).collect();
        recorded.sort();
        recorded.dedup();
        for key in recorded {
            if let Some(lease) = store.record_lease(&key, &holder, leasing.ttl)? {
                eprintln!("lease: acquired board `{key}` at {} ms", lease.acquired_ms);
                held.leases.push(lease);
            } else if let Some(current) = store.lease(&key)? {
                eprintln!(
                    "lease: board `{key}` is leased to {} in this host's store; its lock decides whether this run may use it",
                    current.holder
                );
            }
        }
    }
    if keys.is_empty() && leasable.is_empty() && held.leases.is_empty() {
        return Ok(held);
    }
    held.store = Some(store.clone());
    for key in keys {
        let mut told = None;
        let lease = store.acquire_lease(
            &key,
            &holder,
            leasing.ttl,
            leasing.wait,
            |current, ticket| {
                if told.as_ref() != Some(&current.token) {
                    eprintln!(
                        "lease: waiting for board `{key}` (ticket {}): held by {} since {}",
                        ticket.ticket,
                        current.holder,
                        at(current.acquired_ms)
                    );
                    told = Some(current.token.clone());
                }
            },
        )?;
        eprintln!("lease: acquired board `{key}` at {} ms", lease.acquired_ms);
        held.leases.push(lease);
    }
    for (pool, count, candidates) in leasable {
        // A board an earlier pool took is not this one's.
        let candidates: Vec<&Board> = candidates
            .into_iter()
            .filter(|b| !held.pooled.contains(&b.id))
            .collect();
        let by_key: Vec<(String, &Board)> = candidates
            .iter()
            .filter_map(|b| guard(b).map(|k| (k, *b)))
            .collect();
        let keys: Vec<String> = by_key.iter().map(|(k, _)| k.clone()).collect();
        let mut told = Vec::new();
        let leases = store.acquire_pool(
            &gauntlet_store::Pool {
                name: &pool.labels,
                boards: &keys,
                count,
            },
            &holder,
            leasing.ttl,
            leasing.wait,
            |taken| {
                if told != taken {
                    eprintln!(
                        "lease: waiting for {count} board(s) of pool {{ {} }}: {}",
                        pool.labels,
                        taken.join("; ")
                    );
                    told = taken.to_vec();
                }
            },
        )?;
        for lease in leases {
            eprintln!(
                "lease: acquired board `{}` at {} ms",
                lease.board, lease.acquired_ms
            );
            if let Some((_, b)) = by_key.iter().find(|(k, _)| *k == lease.board) {
                held.pooled.push(b.id.clone());
            }
            held.leases.push(lease);
        }
    }
    let (leases, ttl, lost) = (held.leases.clone(), leasing.ttl, held.lost.clone());
    held.heartbeat = Some(Heartbeat::start(ttl, move || {
        for lease in &leases {
            match store.renew_lease(lease, ttl) {
                Ok(true) => {}
                Ok(false) => {
                    if note_lost(&lost, &lease.board) {
                        eprintln!(
                            "warning: lost the lease of board `{}` (expired, released by force, or forgotten by a database crash); another run may use it now",
                            lease.board
                        );
                    }
                }
                // The database away for a moment: the next beat tries again.
                Err(e) => eprintln!("warning: failed to {e}"),
            }
        }
    }));
    Ok(held)
}

/// Adds `board` to `lost`; `true` the first time.
fn note_lost(lost: &Mutex<Vec<String>>, board: &str) -> bool {
    let mut lost = lost.lock().unwrap_or_else(|e| e.into_inner());
    let first = !lost.iter().any(|b| b == board);
    if first {
        lost.push(board.to_string());
    }
    first
}

/// The run's right to drive its boards, as the session engine asks for it before every block.
pub struct LeaseFence {
    lost: Arc<Mutex<Vec<String>>>,
    /// Each board id the leases guard, with its lease key.
    guarded: Vec<(String, String)>,
}

impl BoardFence for LeaseFence {
    fn revoked(&self, board: &str) -> Option<String> {
        let (_, key) = self.guarded.iter().find(|(id, _)| id == board)?;
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        lost.contains(key).then(|| {
            format!(
                "its lease `{key}` was lost (it expired, was released by force, or a database crash forgot it) and another run may hold it now"
            )
        })
    }
}

impl HeldBoards {
    /// The fence of `boards`: one whose lease is found lost stops at its next block, where the
    /// leases are what keeps other runs off the boards (with a store of this host's own the
    /// `flock`, held to the end, does).
    pub fn fence(&self, boards: &[Board]) -> LeaseFence {
        let guarded = if self.guarding {
            boards
                .iter()
                .filter_map(|b| lease_key(b).map(|key| (b.id.clone(), key)))
                .collect()
        } else {
            Vec::new()
        };
        LeaseFence {
            lost: self.lost.clone(),
            guarded,
        }
    }

    /// Gives every board back; returns the boards whose lease was lost while the run held them,
    /// where the lease was what kept other runs off them: their figures may be disturbed.
    pub fn release(mut self) -> Vec<String> {
        self.end();
        if !self.guarding {
            return Vec::new();
        }
        std::mem::take(&mut *self.lost.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn end(&mut self) {
        // No renewal may race the releases below.
        drop(self.heartbeat.take());
        let Some(store) = &self.store else { return };
        for lease in std::mem::take(&mut self.leases) {
            match store.release_lease_at(&lease) {
                Ok(Some(ms)) => eprintln!("lease: released board `{}` at {ms} ms", lease.board),
                Ok(None) => {
                    note_lost(&self.lost, &lease.board);
                }
                // It expires after its TTL.
                Err(e) => eprintln!("warning: failed to {e}"),
            }
        }
    }
}

impl Drop for HeldBoards {
    fn drop(&mut self) {
        self.end();
    }
}

/// `gauntlet lease list`.
pub fn lease_list(store: &Store, out: &mut dyn Write) -> anyhow::Result<()> {
    let leases = store.leases()?;
    let out_of_rotation = store.out_of_rotation()?;
    let waiters = store.waiters(DEFAULT_TTL)?;
    if leases.is_empty() && out_of_rotation.is_empty() && waiters.is_empty() {
        writeln!(out, "no leases in {}", store.path().display())?;
        return Ok(());
    }
    let now = store.now_ms()?;
    let queue_of =
        |board: &str| -> Vec<&Ticket> { waiters.iter().filter(|t| t.board == board).collect() };
    let mut listed: Vec<&str> = Vec::new();
    for l in &leases {
        let queue = queue_of(&l.board);
        writeln!(
            out,
            "{}  held by {} since {}, expires in {:.1} s, {} waiting",
            l.board,
            l.holder,
            at(l.acquired_ms),
            (l.expires_ms - now) as f64 / 1e3,
            queue.len()
        )?;
        write_queue(out, &queue)?;
        listed.push(&l.board);
    }
    for o in &out_of_rotation {
        writeln!(
            out,
            "{}  out of rotation since {}: {} (by {})",
            o.board,
            at(o.since_ms),
            o.reason,
            o.by
        )?;
        write_queue(out, &queue_of(&o.board))?;
        listed.push(&o.board);
    }
    // Free boards with a queue: promised to its first waiter, which takes it at its next look.
    let mut rest: Vec<&str> = waiters
        .iter()
        .map(|t| t.board.as_str())
        .filter(|b| !listed.contains(b))
        .collect();
    rest.dedup();
    for board in rest {
        let queue = queue_of(board);
        writeln!(out, "{board}  free, {} waiting", queue.len())?;
        write_queue(out, &queue)?;
    }
    Ok(())
}

/// A board's waiters, first first, one a line under it.
fn write_queue(out: &mut dyn Write, queue: &[&Ticket]) -> std::io::Result<()> {
    for (place, t) in queue.iter().enumerate() {
        let wants = t
            .wants
            .as_ref()
            .map_or(String::new(), |w| format!(", for {w}"));
        writeln!(
            out,
            "  {}. ticket {}: {} since {}{wants}",
            place + 1,
            t.ticket,
            t.holder,
            at(t.enqueued_ms)
        )?;
    }
    Ok(())
}

/// The boards of a run whose pre-run health check refused them, with the reason.
pub fn health_refusals(record: &RunRecord) -> Vec<(&str, &str)> {
    record
        .boards
        .iter()
        .filter_map(|b| match &b.outcome {
            BoardOutcome::InfraFailed {
                stage: Stage::Health,
                reason,
            } => Some((b.board.as_str(), reason.as_str())),
            _ => None,
        })
        .collect()
}

/// Takes each refused board of `boards` out of rotation for every runner of the shared store
/// (LAVA's rule: an unhealthy board must not fail the next run too) until `gauntlet lease
/// return`; the reason and the run are recorded.
pub fn take_out_unhealthy(
    store: &Store,
    boards: &[Board],
    refused: &[(&str, &str)],
    run_id: &str,
) -> Result<(), StoreError> {
    let by = format!("run {run_id} ({})", me());
    for (id, reason) in refused {
        let Some(key) = boards.iter().find(|b| b.id == *id).and_then(lease_key) else {
            continue;
        };
        store.take_out_of_rotation(&key, &by, &format!("health check: {reason}"))?;
        eprintln!("lease: took board `{key}` out of rotation: its health check failed");
    }
    Ok(())
}

/// Who is doing this, for the record.
fn me() -> String {
    let h = Holder::current(None);
    format!("{}@{}", h.user, h.host)
}

/// `gauntlet lease release BOARD --force --reason TEXT`.
pub fn lease_release(
    store: &Store,
    board: &str,
    reason: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match store.force_release(board, &me(), reason)? {
        Some(l) => writeln!(out, "released `{board}` from {}", l.holder)?,
        None => writeln!(out, "`{board}` was not leased; recorded anyway")?,
    }
    Ok(())
}

/// `gauntlet lease out|return BOARD --reason TEXT`.
pub fn lease_rotation(
    store: &Store,
    board: &str,
    reason: &str,
    back: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if back {
        store.put_back(board, &me(), reason)?;
        writeln!(out, "`{board}` is back in rotation")?;
    } else {
        store.take_out_of_rotation(board, &me(), reason)?;
        writeln!(
            out,
            "`{board}` is out of rotation until `gauntlet lease return {board}`"
        )?;
    }
    Ok(())
}

/// Raw device latencies of each build, kept in the run folder so that `runs import` can record
/// a run the store missed: `samples/<board>__<model>__<variant>.f64`, little-endian µs.
pub const SAMPLES_DIR: &str = "samples";

/// `samples/<board>__<model>__<variant>.f64` in `root`, refused as output files are when a name
/// is not a plain file name.
fn samples_file(root: &Path, key: &EntryKey) -> Result<std::path::PathBuf, OutputError> {
    let parts = [
        ("board id", key.board.as_str()),
        ("model name", key.model.as_str()),
        ("variant", key.variant.as_str()),
    ];
    join_file(&root.join(SAMPLES_DIR), &parts, ".f64")
}

/// Writes each build's raw device latencies into the run folder `root`.
pub fn write_samples(root: &Path, samples: &[(EntryKey, Vec<f64>)]) -> Result<(), OutputError> {
    let dir = root.join(SAMPLES_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| OutputError::CreateDir { path: dir, source })?;
    for (key, device_us) in samples {
        let bytes: Vec<u8> = device_us.iter().flat_map(|x| x.to_le_bytes()).collect();
        write_atomically(&samples_file(root, key)?, &bytes)?;
    }
    Ok(())
}

/// The row a run's results describe, for recording it after the fact.
pub fn new_run(results: &Results) -> NewRun {
    NewRun {
        id: results.run_id.clone(),
        scenario_name: results.scenario.name.clone(),
        scenario_path: results.scenario.path.clone(),
        scenario_sha256: results.scenario.sha256.clone(),
        rig_name: results.rig.name.clone(),
        rig_sha256: results.rig.sha256.clone(),
        started_at: results.started_at.clone(),
    }
}

/// `gauntlet runs import DIR`: records a run folder's results.json and samples; a run already
/// recorded is left as it is.
pub fn runs_import(store: &Store, dir: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let path = dir.join("results.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read `{}`", path.display()))?;
    let results: Results = serde_json::from_str(&text)
        .with_context(|| format!("parse `{}` as Gauntlet results", path.display()))?;
    // The rig's boards give each entry its class, as when the run recorded itself.
    let boards = gauntlet_spec::load_rig(Path::new(&results.rig.path))
        .ok()
        .filter(|r| r.source.sha256 == results.rig.sha256)
        .map(|r| r.boards)
        .unwrap_or_default();
    let mut samples = Vec::new();
    for e in &results.entries {
        let key = EntryKey::from(e);
        let file = samples_file(dir, &key)?;
        match std::fs::read(&file) {
            Ok(bytes) => {
                let device_us = bytes
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8")))
                    .collect();
                samples.push((key, device_us));
            }
            // A build that measured nothing has no file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("read `{}`", file.display())),
        }
    }
    if store.import_run(&results, &boards, &samples, &new_run(&results))? {
        writeln!(
            out,
            "imported run {} from {}",
            results.run_id,
            dir.display()
        )?;
    } else {
        writeln!(
            out,
            "run {} is already recorded; nothing imported",
            results.run_id
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_spec::BoardKind;

    #[test]
    fn lease_list_shows_each_boards_waiters_first_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("lab.db")).unwrap();
        let ttl = Duration::from_secs(60);
        let holder = |run: &str| Holder::current(Some(run));
        store
            .acquire_lease("held", &holder("r1"), ttl, Duration::ZERO, |_, _| {})
            .unwrap();
        store.enqueue("held", &holder("r2")).unwrap();
        store.enqueue("held", &holder("r3")).unwrap();
        store.enqueue("free", &holder("r4")).unwrap();
        let mut listed = Vec::new();
        lease_list(&store, &mut listed).unwrap();
        let listed = String::from_utf8(listed).unwrap();
        let lines: Vec<&str> = listed.lines().collect();
        assert_eq!(lines.len(), 5, "{listed}");
        assert!(
            lines[0].starts_with("held  held by ") && lines[0].ends_with(", 2 waiting"),
            "{listed}"
        );
        assert!(
            lines[1].starts_with("  1. ticket 1: pid ") && lines[1].contains(", run r2) since "),
            "{listed}"
        );
        assert!(
            lines[2].starts_with("  2. ticket 2: pid ") && lines[2].contains(", run r3) since "),
            "{listed}"
        );
        assert_eq!(lines[3], "free  free, 1 waiting");
        assert!(lines[4].starts_with("  1. ticket 3: ") && lines[4].contains(", run r4) since "));
    }

    #[test]
    fn a_board_failing_its_health_check_is_out_of_rotation_for_everyone_until_returned() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lab.db");
        let store = Store::open(&db).unwrap();
        let boards = [
            gauntlet_gate::fixtures::board("pi", BoardKind::Local, None),
            gauntlet_gate::fixtures::board("pc", BoardKind::Local, None),
        ];
        let refused = [("pi", "12 MiB free where the cache lives")];
        take_out_unhealthy(&store, &boards, &refused, "r-7").unwrap();
        let key = lease_key(&boards[0]).unwrap();
        let out: Vec<String> = store
            .out_of_rotation()
            .unwrap()
            .into_iter()
            .map(|o| o.board)
            .collect();
        assert_eq!(out, std::slice::from_ref(&key), "only the refused board");

        // Another runner's store, the same database.
        let other = Store::open(&db).unwrap();
        let holder = Holder::current(Some("r-8"));
        let ttl = Duration::from_secs(5);
        let refused_lease = other
            .acquire_lease(&key, &holder, ttl, Duration::ZERO, |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(
            refused_lease.contains("out of rotation")
                && refused_lease.contains("health check: 12 MiB free"),
            "{refused_lease}"
        );
        let mut listed = Vec::new();
        lease_list(&other, &mut listed).unwrap();
        let listed = String::from_utf8(listed).unwrap();
        assert!(
            listed.contains(&format!("{key}  out of rotation since"))
                && listed.contains("health check: 12 MiB free where the cache lives (by run r-7 ("),
            "{listed}"
        );
        let events = other.lease_events().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "out-of-rotation");
        assert!(events[0].by.starts_with("run r-7 ("), "{:?}", events[0]);
        // The healthy board is untouched.
        let pc = lease_key(&boards[1]).unwrap();
        let lease = other
            .acquire_lease(&pc, &holder, ttl, Duration::ZERO, |_, _| {})
            .unwrap();
        assert!(other.release_lease(&lease).unwrap());

        lease_rotation(&other, &key, "disk cleaned", true, &mut Vec::new()).unwrap();
        let lease = other
            .acquire_lease(&key, &holder, ttl, Duration::ZERO, |_, _| {})
            .unwrap();
        assert!(other.release_lease(&lease).unwrap());
    }
}
