//! Every file under tests/invalid/ must be rejected; the rendered diagnostic is snapshotted.
//! `rig_*` files are rigs, `targets_*` scenarios are valid alone but name boards that
//! tests/invalid/support/lab.toml lacks, everything else is a scenario.

use std::path::{Path, PathBuf};

use gauntlet_spec::{Diagnostics, load_rig, load_scenario, select_boards};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid")
}

fn diagnose(path: &Path) -> Diagnostics {
    let name = path.file_name().unwrap().to_str().unwrap();
    let result = if name.starts_with("rig_") {
        load_rig(path).map(|_| ())
    } else if name.starts_with("targets_") {
        let scenario = load_scenario(path).expect("targets_* scenarios are valid on their own");
        let rig = load_rig(&corpus().join("support/lab.toml")).expect("support rig is valid");
        select_boards(&scenario, &rig).map(|_| ())
    } else {
        load_scenario(path).map(|_| ())
    };
    result.expect_err("an invalid file was accepted")
}

#[test]
fn every_invalid_file_has_a_located_diagnostic() {
    insta::glob!("invalid/*.toml", |path| {
        let diags = diagnose(path).relative_to(&corpus());
        assert!(!diags.is_empty());
        insta::assert_snapshot!(diags.to_string());
    });
}

#[test]
fn corpus_is_large_enough() {
    let n = std::fs::read_dir(corpus())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(n >= 30, "only {n} invalid files");
}

#[test]
fn missing_scenario_file_is_a_diagnostic_naming_it() {
    let d = load_scenario(&corpus().join("does-not-exist.toml"))
        .unwrap_err()
        .relative_to(&corpus());
    assert_eq!(d.len(), 1);
    assert!(
        d.to_string()
            .starts_with("error: failed to read scenario `does-not-exist.toml`"),
        "{d}"
    );
}
