//! The shared-lab behaviours on both backends (see `Target` in `tests.rs`): run filters and trends,
//! imports, retried writes, concurrent writers, leases and their queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::backend::testing::Outage;

both!(
    runs_are_listed_by_scenario_board_start_and_runner,
    |t: &Target| {
        let mut store = t.open();
        finished_run(&mut store, "r1", "2026-11-01T00:00:00Z");
        finished_run(&mut store, "r2", "2026-11-20T00:00:00Z");
        let ids = |f: RunFilter| -> Vec<String> {
            store
                .find_runs(&f)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids(RunFilter::default()), ["r1", "r2"]);
        let since = RunFilter {
            since: Some("2026-11-10T00:00:00Z".into()),
            ..RunFilter::default()
        };
        assert_eq!(ids(since), ["r2"]);
        let board = |b: &str| RunFilter {
            board: Some(b.into()),
            ..RunFilter::default()
        };
        assert_eq!(ids(board("pc")), ["r1", "r2"]);
        assert!(ids(board("pi")).is_empty());
        let runner = |r: &str| RunFilter {
            runner: Some(r.into()),
            ..RunFilter::default()
        };
        assert_eq!(ids(runner(&lease::host_name())), ["r1", "r2"]);
        assert!(ids(runner("elsewhere")).is_empty());
        let other = RunFilter {
            scenario: Some("other".into()),
            ..RunFilter::default()
        };
        assert!(ids(other).is_empty());

        let trend = store.trend(SCENARIO, "accuracy", Some("x86"), 10).unwrap();
        let view: Vec<(&str, &str, Option<f64>)> = trend
            .iter()
            .map(|p| (p.run_id.as_str(), p.variant.as_str(), p.value))
            .collect();
        assert_eq!(
            view,
            [
                ("r1", "fp32", Some(0.95)),
                ("r1", "int8", Some(0.85)),
                ("r2", "fp32", Some(0.95)),
                ("r2", "int8", Some(0.85))
            ]
        );
        let last = store.trend(SCENARIO, "accuracy", None, 1).unwrap();
        assert!(last.iter().all(|p| p.run_id == "r2") && last.len() == 2);
        assert!(
            store
                .trend(SCENARIO, "accuracy", Some("arm"), 10)
                .unwrap()
                .is_empty()
        );
    }
);

both!(an_import_records_a_run_once, |t: &Target| {
    let store = t.open();
    let results = judged("r9", &[("fp32", 0.95), ("int8", 0.85)]);
    let samples = vec![(key("fp32"), vec![1.0, 2.0, 3.0])];
    let source = new_run("r9", "2026-11-26T00:00:00Z");
    assert!(
        store
            .import_run(&results, &boards(), &samples, &source)
            .unwrap()
    );
    assert!(
        !store
            .import_run(&results, &boards(), &samples, &source)
            .unwrap()
    );
    assert_eq!(store.list_runs().unwrap().len(), 1);
    assert_eq!(store.run("r9").unwrap().results, Some(results.clone()));
    assert_eq!(store.samples("r9", &key("fp32")).unwrap(), [1.0, 2.0, 3.0]);

    // A run begun before the store went away: its streamed samples are replaced by the whole set.
    let run = store.begin_run(&new_run("r10", "t")).unwrap();
    store.record_samples(&run, &key("fp32"), &[1.0]).unwrap();
    let results = judged("r10", &[("fp32", 0.95)]);
    assert!(
        store
            .import_run(&results, &boards(), &samples, &source)
            .unwrap()
    );
    assert_eq!(store.samples("r10", &key("fp32")).unwrap(), [1.0, 2.0, 3.0]);
    assert_eq!(
        store.run("r10").unwrap().summary.status,
        RunStatus::Complete
    );
});

both!(
    a_write_is_retried_until_the_database_is_back,
    |t: &Target| {
        let (mut store, down) = if t.location.starts_with("postgres") {
            let (outage, down) = Outage::new(backend::Postgres::connect(&t.location).unwrap());
            (Store::with_backend(Box::new(outage)).unwrap(), down)
        } else {
            std::fs::create_dir_all(t.path().parent().unwrap()).unwrap();
            let (outage, down) = Outage::new(backend::Sqlite::open(t.path()).unwrap());
            (Store::with_backend(Box::new(outage)).unwrap(), down)
        };
        let run = store.begin_run(&new_run("r1", "t")).unwrap();
        let results = judged("r1", &[("fp32", 0.95)]);
        down.store(true, Ordering::SeqCst);
        store.set_retry(Duration::from_millis(250));
        let err = store.finish_run(&run, &results, &boards()).unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert!(
            store
                .record_samples(&run, &key("fp32"), &[1.0])
                .unwrap_err()
                .is_unavailable()
        );
        store.set_retry(Duration::from_secs(20));
        let up = {
            let down = down.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(400));
                down.store(false, Ordering::SeqCst);
            })
        };
        store.finish_run(&run, &results, &boards()).unwrap();
        up.join().unwrap();
        assert_eq!(store.list_runs().unwrap()[0].status, RunStatus::Complete);
    }
);

both!(eight_writers_lose_and_duplicate_no_run, |t: &Target| {
    drop(t.open());
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let location = t.location.clone();
            std::thread::spawn(move || {
                let mut store = Store::open(Path::new(&location)).unwrap();
                for i in 0..3 {
                    let id = format!("w{w}-{i}");
                    let run = store.begin_run(&new_run(&id, &format!("t{w}{i}"))).unwrap();
                    store
                        .record_samples(&run, &key("fp32"), &[1.0; 100])
                        .unwrap();
                    store
                        .finish_run(&run, &judged(&id, &[("fp32", 0.95)]), &boards())
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let store = t.open();
    let mut ids: Vec<String> = store
        .list_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    let mut want: Vec<String> = (0..8)
        .flat_map(|w| (0..3).map(move |i| format!("w{w}-{i}")))
        .collect();
    want.sort();
    assert_eq!(ids, want);
    assert!(
        store
            .list_runs()
            .unwrap()
            .iter()
            .all(|r| r.status == RunStatus::Complete)
    );
});

fn holder(run: &str) -> Holder {
    Holder {
        run_id: Some(run.into()),
        ..Holder::current(None)
    }
}

const TTL: Duration = Duration::from_millis(400);

/// A waiter as `lease list` shows it: board, run, what else it waits for.
type Queued = (String, Option<String>, Option<String>);

fn queued(store: &Store) -> Vec<Queued> {
    store
        .waiters(TTL)
        .unwrap()
        .into_iter()
        .map(|t| (t.board, t.holder.run_id, t.wants))
        .collect()
}

both!(
    a_lease_is_exclusive_until_released_or_expired,
    |t: &Target| {
        let store = t.open();
        let first = store
            .acquire_lease("pi-1", &holder("a"), TTL, Duration::ZERO, |_, _| {})
            .unwrap();
        assert_eq!(first.holder.run_id.as_deref(), Some("a"));
        let err = store
            .acquire_lease("pi-1", &holder("b"), TTL, Duration::ZERO, |_, _| {})
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("lease board `pi-1`: held by pid "),
            "{text}"
        );
        assert!(text.contains("run a"), "{text}");
        assert!(store.renew_lease(&first, TTL).unwrap());
        assert_eq!(
            store.leases().unwrap(),
            [store.lease("pi-1").unwrap().unwrap()]
        );
        assert!(store.release_lease(&first).unwrap());
        assert!(!store.release_lease(&first).unwrap());
        let second = store
            .acquire_lease("pi-1", &holder("b"), TTL, Duration::ZERO, |_, _| {})
            .unwrap();
        // A holder that stops renewing loses the board once the TTL has passed.
        std::thread::sleep(TTL + Duration::from_millis(100));
        assert!(store.leases().unwrap().is_empty());
        let third = store
            .acquire_lease("pi-1", &holder("c"), TTL, Duration::ZERO, |_, _| {})
            .unwrap();
        assert!(!store.renew_lease(&second, TTL).unwrap());
        assert!(!store.release_lease(&second).unwrap());
        assert!(store.release_lease(&third).unwrap());
    }
);

both!(waiters_get_a_busy_board_in_fifo_order, |t: &Target| {
    let store = t.open();
    // Held until released, however slowly the waiters line up.
    let held = store
        .acquire_lease(
            "pi-1",
            &holder("first"),
            Duration::from_secs(600),
            Duration::ZERO,
            |_, _| {},
        )
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..3 {
        let (location, order) = (t.location.clone(), order.clone());
        waiters.push(std::thread::spawn(move || {
            let store = Store::open(Path::new(&location)).unwrap();
            let mut told = false;
            let lease = store
                .acquire_lease(
                    "pi-1",
                    &holder(&format!("w{i}")),
                    TTL,
                    Duration::from_secs(30),
                    |l, _| told |= l.holder.run_id.is_some(),
                )
                .unwrap();
            order.lock().unwrap().push(i);
            std::thread::sleep(Duration::from_millis(50));
            assert!(store.release_lease(&lease).unwrap());
            told
        }));
        // Each is queued before the next starts.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.queue("pi-1", TTL).unwrap().len() < i + 1 {
            assert!(Instant::now() < deadline, "waiter {i} never queued");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // The queue as `lease list` shows it: a board wait, first come first.
    let expected: Vec<Queued> = (0..3)
        .map(|i| ("pi-1".to_string(), Some(format!("w{i}")), None))
        .collect();
    assert_eq!(queued(&store), expected);
    // A newcomer that does not wait does not jump the queue either.
    store.release_lease(&held).unwrap();
    let jumped = store
        .try_acquire_lease("pi-1", &holder("late"), TTL, None)
        .unwrap();
    assert!(jumped.is_none(), "{jumped:?}");
    let told: Vec<bool> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    assert!(told[0], "the first waiter was told who held the board");
    assert!(store.queue("pi-1", TTL).unwrap().is_empty());
});

both!(
    a_pool_takes_free_boards_skipping_held_and_out_of_rotation_ones_in_fifo_order,
    |t: &Target| {
        let store = t.open();
        let boards: Vec<String> = ["pi-1", "pi-2", "pi-3"].map(String::from).to_vec();
        store
            .take_out_of_rotation("pi-1", "tester", "sd card fails")
            .unwrap();
        let long = Duration::from_secs(600);
        let held = store
            .acquire_lease("pi-2", &holder("other"), long, Duration::ZERO, |_, _| {})
            .unwrap();
        let pool = |count, run: &str| {
            let pool = Pool {
                name: "family=pi",
                boards: &boards,
                count,
            };
            store.acquire_pool(&pool, &holder(run), TTL, Duration::ZERO, |_| {})
        };
        let text = pool(2, "two").unwrap_err().to_string();
        assert!(
            text.starts_with("lease 2 board(s) of pool { family=pi }: 1 free of 3"),
            "{text}"
        );
        assert!(
            text.contains("`pi-1` out of rotation: sd card fails"),
            "{text}"
        );
        assert!(text.contains("`pi-2` held by pid"), "{text}");
        // All or nothing: the free board is not kept by a pool that could not be filled.
        assert_eq!(store.leases().unwrap(), std::slice::from_ref(&held));
        let one = pool(1, "one").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].board, "pi-3");
        assert!(store.release_lease(&one[0]).unwrap());

        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..2 {
            let (location, order, boards) = (t.location.clone(), order.clone(), boards.clone());
            waiters.push(std::thread::spawn(move || {
                let store = Store::open(Path::new(&location)).unwrap();
                let mut told = Vec::new();
                let leases = store
                    .acquire_pool(
                        &Pool {
                            name: "family=pi",
                            boards: &boards,
                            count: 2,
                        },
                        &holder(&format!("w{i}")),
                        TTL,
                        Duration::from_secs(30),
                        |taken| told.extend_from_slice(taken),
                    )
                    .unwrap();
                order.lock().unwrap().push(i);
                let mut got: Vec<&str> = leases.iter().map(|l| l.board.as_str()).collect();
                got.sort();
                assert_eq!(got, ["pi-2", "pi-3"]);
                std::thread::sleep(Duration::from_millis(50));
                for lease in &leases {
                    assert!(store.release_lease(lease).unwrap());
                }
                told
            }));
            let deadline = Instant::now() + Duration::from_secs(10);
            while store.queue("pi-3", TTL).unwrap().len() < i + 1 {
                assert!(Instant::now() < deadline, "waiter {i} never queued");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Both pool waiters on every candidate, in arrival order, saying what they wait for.
        let wants = Some("2 board(s) of pool { family=pi }".to_string());
        let expected: Vec<Queued> = boards
            .iter()
            .flat_map(|b| (0..2).map(|i| (b.clone(), Some(format!("w{i}")), wants.clone())))
            .collect();
        assert_eq!(queued(&store), expected);
        store.release_lease(&held).unwrap();
        // A newcomer does not jump the queue: pi-3 is promised, or already taken.
        let jumped = store
            .try_acquire_lease("pi-3", &holder("late"), TTL, None)
            .unwrap();
        assert!(jumped.is_none(), "{jumped:?}");
        let told: Vec<Vec<String>> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(*order.lock().unwrap(), [0, 1]);
        assert!(
            told[0].iter().any(|t| t.starts_with("`pi-2` held by")),
            "{told:?}"
        );
        for board in &boards {
            assert!(store.queue(board, TTL).unwrap().is_empty());
        }
    }
);

both!(concurrent_holders_never_overlap, |t: &Target| {
    drop(t.open());
    let held = Arc::new(AtomicBool::new(false));
    let turns = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let (location, held, turns) = (t.location.clone(), held.clone(), turns.clone());
            std::thread::spawn(move || {
                let store = Store::open(Path::new(&location)).unwrap();
                for _ in 0..4 {
                    let lease = store
                        .acquire_lease(
                            "pi-1",
                            &holder(&format!("t{i}")),
                            Duration::from_secs(1),
                            Duration::from_secs(60),
                            |_, _| {},
                        )
                        .unwrap();
                    assert!(!held.swap(true, Ordering::SeqCst), "two holders at once");
                    std::thread::sleep(Duration::from_millis(5));
                    held.store(false, Ordering::SeqCst);
                    turns.fetch_add(1, Ordering::SeqCst);
                    assert!(store.release_lease(&lease).unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(turns.load(Ordering::SeqCst), 24);
});

both!(
    a_board_out_of_rotation_is_leased_to_nobody_and_forced_releases_are_recorded,
    |t: &Target| {
        let store = t.open();
        let lease = store
            .acquire_lease("pi-1", &holder("a"), TTL, Duration::ZERO, |_, _| {})
            .unwrap();
        assert!(matches!(
            store.force_release("pi-1", "ana", " ").unwrap_err(),
            StoreError::Lease(LeaseError::EmptyField {
                field: "reason",
                ..
            })
        ));
        let ended = store.force_release("pi-1", "ana", "job cancelled").unwrap();
        assert_eq!(
            ended.as_ref().map(|l| l.token.as_str()),
            Some(lease.token.as_str())
        );
        assert!(!store.renew_lease(&lease, TTL).unwrap());
        store
            .take_out_of_rotation("pi-1", "health check", "throttled at 85 °C")
            .unwrap();
        let err = store
            .acquire_lease("pi-1", &holder("b"), TTL, Duration::from_secs(5), |_, _| {})
            .unwrap_err();
        assert!(err.to_string().contains("out of rotation"), "{err}");
        assert!(
            store
                .try_acquire_lease("pi-1", &holder("b"), TTL, None)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.out_of_rotation().unwrap()[0].reason,
            "throttled at 85 °C"
        );
        store.put_back("pi-1", "ana", "fan replaced").unwrap();
        assert!(
            store
                .try_acquire_lease("pi-1", &holder("b"), TTL, None)
                .unwrap()
                .is_some()
        );
        let events: Vec<(String, String)> = store
            .lease_events()
            .unwrap()
            .into_iter()
            .map(|e| (e.event, e.reason))
            .collect();
        assert_eq!(
            events,
            [
                ("forced-release".to_string(), "job cancelled".to_string()),
                ("out-of-rotation".into(), "throttled at 85 °C".into()),
                ("back-in-rotation".into(), "fan replaced".into())
            ]
        );
        assert!(
            store.lease_events().unwrap()[0]
                .holder
                .as_deref()
                .unwrap()
                .contains("run a")
        );
    }
);
