use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use gauntlet_gate::fixtures::{SCENARIO, board, entry, metrics, results};
use gauntlet_gate::{NoChampions, Rules, evaluate_rules};
use gauntlet_spec::{BoardKind, Comparison, GateSpec, Metric, Threshold};
use tempfile::TempDir;

use super::*;

mod shared;

/// Names the PostgreSQL server the store tests also run on (`scripts/test-postgres.sh start`
/// prints one; `scripts/test.sh` exports it).
const PG_URL_ENV: &str = "GAUNTLET_TEST_PG_URL";

/// A database to test against: a SQLite file in a temporary folder, or a fresh database on the
/// test server, dropped with it.
struct Target {
    location: String,
    _dir: Option<TempDir>,
    pg: Option<(String, String)>,
}

impl Target {
    fn sqlite() -> Target {
        let dir = tempfile::tempdir().unwrap();
        // Nested, so opening has to create the folders.
        let location = dir.path().join("nested/folder/gauntlet.db");
        Target {
            location: location.display().to_string(),
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A fresh database on the test server; `None` (with a note) without one, except under CI,
    /// where a missing server fails the test.
    fn postgres() -> Option<Target> {
        let url = match std::env::var(PG_URL_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
                "${PG_URL_ENV} is not set: the PostgreSQL store tests need a server \
                 (scripts/test-postgres.sh start prints its URL; scripts/test.sh exports it)"
            ),
            _ => {
                eprintln!(
                    "skipped: set ${PG_URL_ENV} (scripts/test-postgres.sh start) to test PostgreSQL"
                );
                return None;
            }
        };
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "gauntlet_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        );
        let mut admin = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to ${PG_URL_ENV} `{url}`: {e}"));
        // Each its own statement: neither may run inside a transaction block.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.batch_execute(&sql).unwrap();
        }
        let base = url.split('?').next().unwrap();
        let location = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        Some(Target {
            location,
            _dir: None,
            pg: Some((url, name)),
        })
    }

    fn path(&self) -> &Path {
        Path::new(&self.location)
    }

    fn open(&self) -> Store {
        Store::open(self.path()).unwrap()
    }

    fn is_sqlite(&self) -> bool {
        self.pg.is_none()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some((url, name)) = &self.pg
            && let Ok(mut admin) = postgres::Client::connect(url, postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// `both!(name, |target| ...)`: the tests `name::sqlite` and `name::postgres`.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn sqlite() {
                ($body)(&Target::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(target) = Target::postgres() {
                    ($body)(&target);
                }
            }
        }
    };
}
use both;

/// Runs a query straight on the store's connection, to look at what it wrote.
fn raw(store: &Store, q: &str) -> Vec<Row> {
    store.query(String::new, q, &[]).unwrap()
}

fn new_run(id: &str, started_at: &str) -> NewRun {
    NewRun {
        id: id.into(),
        scenario_name: SCENARIO.into(),
        scenario_path: "/scenarios/demo.toml".into(),
        scenario_sha256: "sha-scenario".into(),
        rig_name: "local".into(),
        rig_sha256: "sha-rig".into(),
        started_at: started_at.into(),
    }
}

fn boards() -> Vec<Board> {
    vec![board("pc", BoardKind::Local, Some("x86"))]
}

fn scored(accuracy: f64) -> Metrics {
    Metrics {
        accuracy: Some(accuracy),
        peak_rss_kib: Some(5000),
        ..metrics()
    }
}

/// Results of these (variant, accuracy) builds on `pc`, judged by `accuracy >= 0.9` with the real
/// gate crate.
fn judged(run_id: &str, builds: &[(&str, f64)]) -> Results {
    let entries = builds
        .iter()
        .map(|&(variant, acc)| entry("pc", variant, variant == "fp32", scored(acc)))
        .collect();
    let mut r = results(run_id, entries);
    let gates = [GateSpec {
        metric: Metric::Accuracy,
        comparison: Comparison::AtLeast,
        threshold: Threshold::Absolute(0.9),
        board_selector: BTreeMap::new(),
        variants: Vec::new(),
    }];
    let rules = Rules {
        scenario: SCENARIO,
        gates: &gates,
        inconclusive_fails: true,
    };
    let e = evaluate_rules(rules, &boards(), &r, &NoChampions);
    (r.gates, r.verdicts, r.outcome) = (e.gates, e.verdicts, e.outcome);
    r
}

fn key(variant: &str) -> EntryKey {
    EntryKey {
        board: "pc".into(),
        model: "cnn".into(),
        variant: variant.into(),
    }
}

/// Stores a finished run of fp32 (accuracy 0.95, PASS) and int8 (accuracy 0.85, FAIL).
fn finished_run(store: &mut Store, id: &str, started_at: &str) -> Results {
    let run = store.begin_run(&new_run(id, started_at)).unwrap();
    store
        .record_samples(&run, &key("fp32"), &[10.0, 11.0])
        .unwrap();
    store.record_samples(&run, &key("fp32"), &[12.5]).unwrap();
    let results = judged(id, &[("fp32", 0.95), ("int8", 0.85)]);
    store.finish_run(&run, &results, &boards()).unwrap();
    results
}

#[test]
fn a_sqlite_store_uses_wal() {
    let t = Target::sqlite();
    let store = t.open();
    assert_eq!(
        raw(&store, "PRAGMA journal_mode")[0].text(0).unwrap(),
        "wal"
    );
}

both!(open_creates_the_schema_and_migrates_once, |t: &Target| {
    drop(t.open());
    let store = t.open();
    let versions: Vec<i64> = raw(
        &store,
        "SELECT version FROM schema_version ORDER BY version",
    )
    .iter()
    .map(|r| r.int(0).unwrap())
    .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
});

both!(a_database_from_a_newer_gauntlet_is_refused, |t: &Target| {
    let store = t.open();
    raw(&store, "INSERT INTO schema_version (version) VALUES (99)");
    drop(store);
    let err = Store::open(t.path()).err().unwrap();
    assert!(
        matches!(
            err,
            StoreError::TooNew {
                found: 99,
                supported: 5,
                ..
            }
        ),
        "{err}"
    );
});

both!(a_finished_run_reads_back_whole, |t: &Target| {
    let mut store = t.open();
    let results = finished_run(&mut store, "r1", "2026-11-26T00:00:00Z");
    assert_eq!(results.outcome, Outcome::GateFailed);

    let runs = store.list_runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Complete);
    assert_eq!(runs[0].outcome, Some(Outcome::GateFailed));
    assert_eq!(runs[0].finished_at.as_deref(), Some("2026-11-26T00:01:00Z"));
    let record = store.run("r1").unwrap();
    assert_eq!(record.results.as_ref(), Some(&results));
    assert_eq!(
        store.samples("r1", &key("fp32")).unwrap(),
        [10.0, 11.0, 12.5]
    );
    assert!(store.samples("r1", &key("int8")).unwrap().is_empty());

    let entry = &raw(
        &store,
        "SELECT board_class, latency_p99_us FROM entries WHERE variant = 'int8'",
    )[0];
    assert_eq!(
        (entry.text(0).unwrap().as_str(), entry.opt_real(1).unwrap()),
        ("x86", None)
    );
    let verdicts: Vec<(String, Option<String>)> = raw(
        &store,
        "SELECT variant, verdict FROM verdicts ORDER BY variant",
    )
    .iter()
    .map(|r| (r.text(0).unwrap(), r.opt_text(1).unwrap()))
    .collect();
    assert_eq!(
        verdicts,
        [
            ("fp32".to_string(), Some("pass".to_string())),
            ("int8".to_string(), Some("fail".to_string()))
        ]
    );
    assert!(matches!(store.run("nope"), Err(StoreError::NoSuchRun(_))));
});

both!(finishing_twice_is_refused, |t: &Target| {
    let mut store = t.open();
    let run = store.begin_run(&new_run("r1", "t")).unwrap();
    let results = judged("r1", &[("fp32", 0.95)]);
    store.finish_run(&run, &results, &boards()).unwrap();
    let err = store.finish_run(&run, &results, &boards()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotRunning {
                status: RunStatus::Complete,
                ..
            }
        ),
        "{err}"
    );
});

both!(a_failed_finish_leaves_nothing_half_written, |t: &Target| {
    let mut store = t.open();
    let run = store.begin_run(&new_run("r1", "t")).unwrap();
    // The same board × build twice violates the entries key after the first row is written.
    let results = judged("r1", &[("fp32", 0.95), ("fp32", 0.95)]);
    let err = store.finish_run(&run, &results, &boards()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("store entry cnn fp32 on pc of run `r1`"),
        "{err}"
    );
    assert_eq!(
        raw(&store, "SELECT COUNT(*) FROM entries")[0]
            .int(0)
            .unwrap(),
        0
    );
    let summary = &store.list_runs().unwrap()[0];
    assert_eq!(
        (summary.status, summary.outcome),
        (RunStatus::Running, None)
    );
    // The connection is usable after the rollback.
    store
        .finish_run(&run, &judged("r1", &[("fp32", 0.95)]), &boards())
        .unwrap();
    assert_eq!(store.list_runs().unwrap()[0].status, RunStatus::Complete);
});

both!(
    a_running_row_whose_process_is_gone_reads_incomplete,
    |t: &Target| {
        let store = t.open();
        store.begin_run(&new_run("mine", "t1")).unwrap();
        store.begin_run(&new_run("orphan", "t2")).unwrap();
        let mut child = Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        store
            .db()
            .execute(
                "UPDATE runs SET pid = ?1, pid_started = NULL WHERE id = 'orphan'",
                vals![dead],
            )
            .unwrap();
        let statuses: Vec<RunStatus> = store
            .list_runs()
            .unwrap()
            .iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, [RunStatus::Running, RunStatus::Incomplete]);
        assert_eq!(store.mark_incomplete_stale().unwrap(), 1);
        assert_eq!(store.mark_incomplete_stale().unwrap(), 0);
        let stored = raw(&store, "SELECT status FROM runs WHERE id = 'orphan'")[0]
            .text(0)
            .unwrap();
        assert_eq!(stored, "incomplete");
    }
);

both!(
    a_run_of_another_host_reads_incomplete_once_its_heartbeat_is_stale,
    |t: &Target| {
        let mut store = t.open();
        finished_run(&mut store, "done", "t0");
        let beating = store.begin_run(&new_run("beating", "t1")).unwrap();
        store.begin_run(&new_run("silent", "t2")).unwrap();
        store.begin_run(&new_run("old", "t3")).unwrap();
        // Their processes are on another host: /proc here says nothing about them.
        raw(
            &store,
            "UPDATE runs SET runner = 'elsewhere' WHERE id <> 'done'",
        );
        let status = |store: &Store, id: &str| store.run(id).unwrap().summary.status;
        assert!(store.beat_run("beating", Duration::from_secs(600)).unwrap());
        assert!(store.beat_run("silent", Duration::from_millis(50)).unwrap());
        // Its heartbeat is 50 ms old by the database's clock once this much has passed.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(status(&store, "beating"), RunStatus::Running);
        assert_eq!(status(&store, "silent"), RunStatus::Incomplete);
        // A row without a heartbeat (an older gauntlet's) is judged as before.
        assert_eq!(status(&store, "old"), RunStatus::Running);
        assert_eq!(status(&store, "done"), RunStatus::Complete);
        let listed: Vec<(String, RunStatus)> = store
            .list_runs()
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.status))
            .collect();
        assert_eq!(
            listed,
            [
                ("done".to_string(), RunStatus::Complete),
                ("beating".to_string(), RunStatus::Running),
                ("silent".to_string(), RunStatus::Incomplete),
                ("old".to_string(), RunStatus::Running),
            ]
        );
        // Judged at read, not written: a runner that comes back beats its run alive again.
        assert_eq!(store.mark_incomplete_stale().unwrap(), 0);
        assert!(store.beat_run("silent", Duration::from_secs(600)).unwrap());
        assert_eq!(status(&store, "silent"), RunStatus::Running);
        // A finished run has no heartbeat to renew.
        store
            .finish_run(&beating, &judged("beating", &[("fp32", 0.9)]), &boards())
            .unwrap();
        assert!(!store.beat_run("beating", Duration::from_secs(600)).unwrap());
        assert_eq!(status(&store, "beating"), RunStatus::Complete);
    }
);

both!(abandoning_a_run_marks_it_incomplete, |t: &Target| {
    let store = t.open();
    let run = store.begin_run(&new_run("r1", "t")).unwrap();
    store.abandon_run(run).unwrap();
    assert_eq!(store.list_runs().unwrap()[0].status, RunStatus::Incomplete);
});

fn request<'a>(run_id: &'a str, variant: &'a str) -> PromoteRequest<'a> {
    PromoteRequest {
        run_id,
        model: "cnn",
        variant,
        board_class: None,
        by: "ana",
        reason: "release 1.2",
        override_reason: None,
    }
}

both!(
    promotion_of_a_passing_build_records_its_hashes,
    |t: &Target| {
        let mut store = t.open();
        finished_run(&mut store, "r1", "t1");
        let promoted = store.promote(&request("r1", "fp32")).unwrap();
        assert_eq!(promoted.len(), 1);
        let p = &promoted[0];
        assert_eq!(
            (
                p.board_class.as_str(),
                p.verdict,
                p.by.as_str(),
                p.reason.as_str()
            ),
            ("x86", Some(Verdict::Pass), "ana", "release 1.2")
        );
        assert_eq!(p.model_sha256, "sha-model-fp32");
        assert_eq!(p.dataset_sha256, "sha-data");
        assert_eq!(
            (p.scenario_sha256.as_str(), p.rig_sha256.as_str()),
            ("sha-scenario", "sha-rig")
        );
        let json = raw(&store, "SELECT results_json FROM runs WHERE id = 'r1'")[0]
            .text(0)
            .unwrap();
        assert_eq!(
            p.report_sha256,
            hex::encode(Sha256::digest(json.as_bytes()))
        );
        assert!(
            p.promoted_at.ends_with('Z') && p.promoted_at.contains('T'),
            "{}",
            p.promoted_at
        );
        assert_eq!(
            store.champion(SCENARIO, "cnn", "x86").unwrap().as_ref(),
            Some(p)
        );
    }
);

both!(
    promotion_of_a_failing_build_needs_an_override_which_is_recorded,
    |t: &Target| {
        let mut store = t.open();
        finished_run(&mut store, "r1", "t1");
        let err = store.promote(&request("r1", "int8")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "promote `cnn` `int8` from run `r1` on `x86`: its verdict is fail; give an override reason to promote it anyway"
        );
        assert!(
            store.promotions(SCENARIO).unwrap().is_empty(),
            "a refusal records nothing"
        );

        let blank = PromoteRequest {
            override_reason: Some("  "),
            ..request("r1", "int8")
        };
        assert!(matches!(
            store.promote(&blank),
            Err(StoreError::EmptyField {
                field: "override",
                ..
            })
        ));
        let forced = PromoteRequest {
            override_reason: Some("accuracy drop accepted for the 2× speed-up"),
            ..request("r1", "int8")
        };
        let p = store.promote(&forced).unwrap().remove(0);
        assert_eq!(p.verdict, Some(Verdict::Fail));
        assert_eq!(
            p.override_reason.as_deref(),
            Some("accuracy drop accepted for the 2× speed-up")
        );
        assert_eq!(store.promotions(SCENARIO).unwrap(), [p]);
    }
);

both!(
    promotion_refuses_unknown_builds_incomplete_runs_and_blank_fields,
    |t: &Target| {
        let mut store = t.open();
        finished_run(&mut store, "r1", "t1");
        assert!(matches!(
            store.promote(&request("r1", "fp16")),
            Err(StoreError::NoSuchBuild { .. })
        ));
        let other_class = PromoteRequest {
            board_class: Some("raspberry-pi"),
            ..request("r1", "fp32")
        };
        let err = store.promote(&other_class).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("no verdict for that build on `raspberry-pi`"),
            "{err}"
        );
        let nobody = PromoteRequest {
            by: "",
            ..request("r1", "fp32")
        };
        assert!(matches!(
            store.promote(&nobody),
            Err(StoreError::EmptyField { field: "by", .. })
        ));
        store.begin_run(&new_run("r2", "t2")).unwrap();
        assert!(matches!(
            store.promote(&request("r2", "fp32")),
            Err(StoreError::RunNotComplete {
                status: RunStatus::Running,
                ..
            })
        ));
    }
);

both!(
    the_champion_is_the_last_promoted_build_with_its_figures,
    |t: &Target| {
        let mut store = t.open();
        finished_run(&mut store, "r1", "t1");
        finished_run(&mut store, "r2", "t2");
        assert_eq!(
            ChampionLookup::champion(&store, SCENARIO, "cnn", "x86").unwrap(),
            None
        );
        store.promote(&request("r2", "fp32")).unwrap();
        let forced = PromoteRequest {
            override_reason: Some("rollback test"),
            ..request("r1", "int8")
        };
        store.promote(&forced).unwrap();

        let champ = ChampionLookup::champion(&store, SCENARIO, "cnn", "x86")
            .unwrap()
            .unwrap();
        assert_eq!(
            (champ.run_id.as_str(), champ.variant.as_str()),
            ("r1", "int8")
        );
        assert_eq!(champ.model_sha256, "sha-model-int8");
        assert_eq!(champ.metrics, scored(0.85));
        assert!(champ.cpu_features.is_empty(), "r1 recorded no board facts");
        assert_eq!(
            ChampionLookup::champion(&store, "other-scenario", "cnn", "x86").unwrap(),
            None
        );
        let all = store.champions(SCENARIO).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].run_id, "r1");
        assert_eq!(store.promotions(SCENARIO).unwrap().len(), 2);

        // The CPU extensions come from the champion's board as its run recorded them.
        let run = store.begin_run(&new_run("r3", "t3")).unwrap();
        let mut results = judged("r3", &[("fp32", 0.95)]);
        results.boards[0].facts = Some(gauntlet_results::BoardFacts {
            arch: "x86_64".into(),
            cpu_model: None,
            cores: None,
            ram_kib: None,
            os: None,
            kernel: None,
            cpu_governor: None,
            clock_hz: None,
            cpu_features: vec!["avx2".into(), "avx512_vnni".into()],
        });
        store.finish_run(&run, &results, &boards()).unwrap();
        store.promote(&request("r3", "fp32")).unwrap();
        let champ = ChampionLookup::champion(&store, SCENARIO, "cnn", "x86")
            .unwrap()
            .unwrap();
        assert_eq!(champ.cpu_features, ["avx2", "avx512_vnni"]);
    }
);

#[test]
fn db_path_prefers_flag_then_env_then_default() {
    let flag = Path::new("/tmp/flag.db");
    let env = Some(OsString::from("/tmp/env.db"));
    assert_eq!(resolve_db_path(Some(flag), env.clone()), flag);
    assert_eq!(resolve_db_path(None, env), Path::new("/tmp/env.db"));
    assert_eq!(
        resolve_db_path(None, Some(OsString::new())),
        Path::new(DEFAULT_DB)
    );
    assert_eq!(resolve_db_path(None, None), Path::new(DEFAULT_DB));
}

/// Set to a database path, it makes `child_writes_until_killed` act as the harness to be killed.
const CHILD_DB: &str = "GAUNTLET_STORE_TEST_CHILD_DB";
const CHILD_READY: &str = "child: first samples committed";

#[test]
#[ignore = "run as a child process by killed_harness_leaves_an_incomplete_run_and_intact_history"]
fn child_writes_until_killed() {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let store = Store::open(Path::new(&db)).unwrap();
    let run = store.begin_run(&new_run("killed", "t9")).unwrap();
    store
        .record_samples(&run, &key("fp32"), &[1.0; 1000])
        .unwrap();
    println!("{CHILD_READY}");
    loop {
        store
            .record_samples(&run, &key("fp32"), &[2.0; 1000])
            .unwrap();
    }
}

both!(
    killed_harness_leaves_an_incomplete_run_and_intact_history,
    |t: &Target| {
        let mut store = t.open();
        let earlier = finished_run(&mut store, "r1", "t1");
        drop(store);

        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::child_writes_until_killed",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &t.location)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines
                .next()
                .expect("child exited before committing its first samples")
                .unwrap();
            if line.contains(CHILD_READY) {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success());

        let store = t.open();
        if t.is_sqlite() {
            assert_eq!(
                raw(&store, "PRAGMA integrity_check")[0].text(0).unwrap(),
                "ok"
            );
        }
        let runs = store.list_runs().unwrap();
        let view: Vec<(&str, RunStatus)> = runs.iter().map(|r| (r.id.as_str(), r.status)).collect();
        assert_eq!(
            view,
            [
                ("r1", RunStatus::Complete),
                ("killed", RunStatus::Incomplete)
            ]
        );
        assert_eq!(store.run("r1").unwrap().results, Some(earlier));
        assert_eq!(
            store.samples("r1", &key("fp32")).unwrap(),
            [10.0, 11.0, 12.5]
        );
        let partial = store.samples("killed", &key("fp32")).unwrap();
        assert!(
            partial.len() >= 1000 && partial.len().is_multiple_of(1000),
            "{}",
            partial.len()
        );
        assert!(partial[..1000].iter().all(|&x| x == 1.0));
        assert!(partial[1000..].iter().all(|&x| x == 2.0));
    }
);

both!(
    sample_counts_follow_streamed_chunks_and_clearing_drops_them,
    |t: &Target| {
        let store = t.open();
        let run = store.begin_run(&new_run("streamed", "t1")).unwrap();
        store
            .record_samples(&run, &key("fp32"), &[1.0; 57])
            .unwrap();
        store
            .record_samples(&run, &key("int8"), &[2.0; 57])
            .unwrap();
        store
            .record_samples(&run, &key("fp32"), &[3.0; 55])
            .unwrap();
        let counts: Vec<(String, usize)> = store
            .sample_counts("streamed")
            .unwrap()
            .into_iter()
            .map(|(k, n)| (k.variant, n))
            .collect();
        assert_eq!(
            counts,
            [("fp32".to_string(), 112), ("int8".to_string(), 57)]
        );
        store.clear_samples(&run).unwrap();
        assert!(store.sample_counts("streamed").unwrap().is_empty());
    }
);

both!(
    a_drift_check_reads_back_with_its_recordings_and_a_repeat_writes_nothing,
    |t: &Target| {
        let mut store = t.open();
        finished_run(&mut store, "r1", "t1");
        let promotion = store.promote(&request("r1", "fp32")).unwrap()[0].id;
        let recordings = [
            ("new/b.csv".to_string(), "sha-b".to_string()),
            ("new/a.csv".to_string(), "sha-a".to_string()),
        ];
        let check = NewDriftCheck {
            id: "d1",
            scenario: SCENARIO,
            model: "cnn",
            board_class: "x86",
            board: "local",
            promotion_id: promotion,
            verdict: "drifted",
            checked_at: "2026-12-01T20:00:00Z",
            recordings: &recordings,
            drift_json: "{}",
        };
        store.record_drift(&check).unwrap();
        let read = store.drift_checks(SCENARIO).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(
            (read[0].promotion_id, read[0].verdict.as_str()),
            (promotion, "drifted")
        );
        assert_eq!(read[0].recordings, recordings, "in replay order");
        // The same id again: refused whole, not one more recording row.
        let again = [("new/c.csv".to_string(), "sha-c".to_string())];
        let repeat = NewDriftCheck {
            recordings: &again,
            ..check
        };
        assert!(store.record_drift(&repeat).is_err());
        let rows = raw(&store, "SELECT COUNT(*) FROM drift_recordings");
        assert_eq!(rows[0].int(0).unwrap(), 2);
    }
);
