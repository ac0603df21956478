//! The `[drift]` table: scenarios/skab-drift.toml means what it says, and a scenario without
//! one gets the documented defaults.

use std::path::Path;

use gauntlet_spec::{DriftGate, DriftStatistic, Metric, Threshold, load_scenario};

fn scenario(name: &str) -> gauntlet_spec::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(name);
    load_scenario(&path).unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn skab_drift_gates_the_pump_features_and_accuracy_vs_the_champion() {
    let d = scenario("skab-drift.toml").drift;
    assert_eq!(d.model.as_deref(), Some("skab_mlp"));
    assert_eq!(
        d.reference_files, None,
        "the reference is the held-out windows"
    );
    assert_eq!(d.recordings.len(), 2);
    assert!(d.recordings.iter().all(|p| p.is_absolute() && p.is_file()));
    assert_eq!((d.bins, d.alpha), (10, 0.05));
    assert_eq!(
        d.gates[0],
        DriftGate::Shift {
            statistic: DriftStatistic::Psi,
            at_most: 0.2,
            features: ["Accelerometer2RMS", "Current", "Pressure", "Voltage"]
                .map(String::from)
                .to_vec(),
        }
    );
    match &d.gates[1] {
        DriftGate::Task(g) => {
            assert_eq!(g.metric, Metric::Accuracy);
            assert_eq!(
                g.threshold,
                Threshold::VsChampion {
                    max_regression: 0.10
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_scenario_without_drift_gets_psi_and_score_psi_at_most_0_2() {
    let d = scenario("skab-anomaly.toml").drift;
    assert_eq!(d, gauntlet_spec::DriftSpec::default());
    let names: Vec<&str> = d
        .gates
        .iter()
        .map(|g| match g {
            DriftGate::Shift {
                statistic, at_most, ..
            } => {
                assert_eq!(*at_most, 0.2);
                statistic.name()
            }
            DriftGate::Task(_) => "task",
        })
        .collect();
    assert_eq!(names, ["psi", "score_psi"]);
}
