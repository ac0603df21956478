//! Issue 15 acceptance: anomaly-detection and regression models scored through the real
//! `gauntlet run`, on windows the harness cuts from the SKAB CSVs itself, against the figures of
//! the independent onnxruntime pipeline (`scenarios/models/<model>/testdata/meta.json`).

mod common;

use common::*;

fn meta(model: &str) -> serde_json::Value {
    let path = repo().join(format!("scenarios/models/{model}/testdata/meta.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The entry of `variant` on onnxruntime, whose batch-1 figures the reference pipeline recorded.
fn model_entry<'a>(
    results: &'a serde_json::Value,
    model: &str,
    variant: &str,
) -> &'a serde_json::Value {
    let id = format!("{variant}@onnxruntime");
    results["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["model"] == model && e["variant"] == id.as_str())
        .unwrap_or_else(|| panic!("no entry for {model} {variant}"))
}

/// Runs `scenario` into a fresh folder and database: the folder, the process output, results.json.
fn run_scenario(scenario: &str) -> (tempfile::TempDir, std::process::Output, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let db = out.path().join("g.db");
    let output = run(&[
        "run",
        scenario,
        "--out",
        out.path().to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    let results = results(out.path());
    (out, output, results)
}

fn close(ours: f64, theirs: f64, what: &str) {
    assert!(
        (ours - theirs).abs() < 5e-5,
        "{what}: {ours} vs onnxruntime {theirs}"
    );
}

fn gate<'a>(results: &'a serde_json::Value, metric: &str, variant: &str) -> &'a serde_json::Value {
    let id = format!("{variant}@onnxruntime");
    results["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metric"] == metric && g["variant"] == id.as_str())
        .unwrap_or_else(|| panic!("no {metric} gate for {variant}"))
}

#[test]
fn the_autoencoder_reproduces_onnxruntime_roc_auc_pr_auc_and_f1() {
    let (out, output, results) = run_scenario("scenarios/skab-autoencoder.toml");
    assert_eq!(results["dataset"]["windows"], 8745);
    let meta = meta("skab_ae");
    // The autoencoder scores skab_mlp's windows.
    let local = onnxruntime::local_batch1_scores("skab_ae", "skab_mlp");
    for variant in ["fp32", "int8_qdq"] {
        let e = model_entry(&results, "skab_ae", variant);
        assert_eq!(e["status"], "completed", "{variant}");
        let task = &e["metrics"]["task"];
        assert_eq!(task["source"], "measured");
        let a = &task["anomaly"];
        assert_eq!(a["threshold_rule"], "given");
        let ours = std::fs::read(
            out.path()
                .join(format!("outputs/local__skab_ae__{variant}@onnxruntime.f32")),
        )
        .unwrap();
        // Where the reference does not apply, fp32 still holds the metric code to it.
        if !onnxruntime::reference_applies("skab_ae", variant, &ours, &local[variant]) {
            continue;
        }
        let m = &meta["variants"][variant];
        for (ours, theirs) in [
            ("roc_auc", "roc_auc"),
            ("pr_auc", "pr_auc"),
            ("f1", "f1_at_threshold"),
            ("precision", "precision_at_threshold"),
            ("recall", "recall_at_threshold"),
        ] {
            let s = &a["scores"][ours];
            let value = s["value"].as_f64().unwrap();
            close(
                value,
                m[theirs].as_f64().unwrap(),
                &format!("{variant} {ours}"),
            );
            let (lo, hi) = (
                s["ci"]["lo"].as_f64().unwrap(),
                s["ci"]["hi"].as_f64().unwrap(),
            );
            assert!(
                lo <= value && value <= hi,
                "{variant} {ours} inside its interval"
            );
        }
        assert!(a["events"]["segments"].as_array().unwrap().len() >= 8);
        assert!(
            a["events"]["false_alarms_per_hour"]["value"]
                .as_f64()
                .is_some()
        );
    }
    // The calibrated model stores its own threshold and where it came from.
    let calibrated =
        &model_entry(&results, "skab_ae_calibrated", "fp32")["metrics"]["task"]["anomaly"];
    assert!(
        calibrated["threshold_rule"]
            .as_str()
            .unwrap()
            .starts_with("calibrated: the 0.99 quantile")
    );
    assert!(calibrated["calibration_windows"].as_u64().unwrap() > 100);
    let agreement = &model_entry(&results, "skab_ae", "int8_qdq")["metrics"]["task"]["agreement"];
    assert!(agreement["spearman"]["value"].as_f64().unwrap() > 0.9);
    assert!(gate(&results, "roc_auc", "int8_qdq")["verdict"].is_string());
    assert!(output.status.code().is_some());
}

#[test]
fn the_forecaster_reproduces_onnxruntime_and_loses_to_persistence() {
    let (out, output, results) = run_scenario("scenarios/skab-forecast.toml");
    assert_eq!(results["dataset"]["windows"], 8665);
    let meta = meta("skab_forecast");
    for variant in ["fp32", "int8_qdq"] {
        let e = model_entry(&results, "skab_forecast", variant);
        assert_eq!(e["status"], "completed", "{variant}");
        let r = &e["metrics"]["task"]["regression"];
        assert_eq!(r["dropped_past_end"], 80, "10 windows from each of 8 files");
        // Without the forecaster's inputs at hand, cwru_cnn's int8 files tell whether this CPU's
        // int8 kernels are the reference machine's; the metric code is held to it by fp32.
        if variant.starts_with("int8") && !onnxruntime::int8_kernels_match_reference() {
            eprintln!("note: skab_forecast {variant}: the reference figures do not apply here");
            continue;
        }
        let m = &meta["variants"][variant];
        for metric in ["rmse", "mae", "r2", "max_abs_error"] {
            let value = r["scores"][metric]["value"].as_f64().unwrap();
            close(
                value,
                m[metric].as_f64().unwrap(),
                &format!("{variant} {metric}"),
            );
        }
    }
    let fp32 = &model_entry(&results, "skab_forecast", "fp32")["metrics"]["task"]["regression"];
    let persistence = &meta["persistence_baseline"];
    for metric in ["rmse", "mae", "r2", "max_abs_error"] {
        close(
            fp32["scores"]["baseline"][metric].as_f64().unwrap(),
            persistence[metric].as_f64().unwrap(),
            &format!("persistence {metric}"),
        );
    }
    assert_eq!(fp32["worse_than_baseline"], true);
    assert!(fp32["scores"]["skill"]["value"].as_f64().unwrap() < 0.0);
    let dynamic = gate(&results, "rmse", "int8_dynamic");
    eprintln!("int8_dynamic rmse gate: {dynamic}");
    if onnxruntime::int8_kernels_match_reference() {
        // int8_dynamic doubles the error (0.594 °C against 0.293 in the reference pipeline).
        assert_eq!(dynamic["verdict"], "fail");
        assert_eq!(output.status.code(), Some(1), "a gate failed");
    } else {
        // Other int8 kernels, another error (0.317 °C on a VNNI machine): the gate still
        // follows its interval against its threshold.
        let figure = |v: &serde_json::Value| v.as_f64().unwrap();
        let threshold = figure(&dynamic["threshold"]);
        let (lo, hi) = (
            figure(&dynamic["measured_ci"]["lo"]),
            figure(&dynamic["measured_ci"]["hi"]),
        );
        let expected = if lo > threshold {
            "fail"
        } else if hi <= threshold {
            "pass"
        } else {
            "inconclusive"
        };
        assert_eq!(dynamic["verdict"], expected, "{dynamic}");
    }
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        report.contains("worse than persistence"),
        "the report says the forecaster loses to doing nothing"
    );
}
