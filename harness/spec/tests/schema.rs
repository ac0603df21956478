//! The checked-in JSON Schemas are current and accept every example file.
//! Regenerate with `GAUNTLET_BLESS=1 cargo test -p gauntlet-spec --test schema`.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check_schema(file: &str, schema: serde_json::Value) {
    let path = repo().join("schemas").join(file);
    let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("GAUNTLET_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == text,
        "{} is stale: rerun with GAUNTLET_BLESS=1",
        path.display()
    );
}

#[test]
fn checked_in_schemas_are_current() {
    check_schema(
        "scenario.schema.json",
        gauntlet_spec::scenario_json_schema(),
    );
    check_schema("rig.schema.json", gauntlet_spec::rig_json_schema());
}

fn validate(schema: serde_json::Value, files: &[&str]) {
    let validator = jsonschema::validator_for(&schema).unwrap();
    for f in files {
        let text = std::fs::read_to_string(repo().join(f)).unwrap();
        let doc: serde_json::Value = toml::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{f}: {errors:#?}");
    }
}

#[test]
fn schemas_accept_the_examples() {
    validate(
        gauntlet_spec::scenario_json_schema(),
        // Files that `extends` another (cwru-runtimes, cwru-stm32) are partial documents: the
        // schema describes the merged one.
        &[
            "scenarios/cwru-quantization.toml",
            "scenarios/skab-anomaly.toml",
        ],
    );
    validate(
        gauntlet_spec::rig_json_schema(),
        &["rigs/local.toml", "rigs/lab-example.toml"],
    );
}

#[test]
fn schemas_reject_unknown_keys() {
    let schema = gauntlet_spec::rig_json_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let doc: serde_json::Value = toml::from_str(
        "[rig]\nname = \"r\"\n[[boards]]\nid = \"a\"\nkind = \"local\"\nshunt_ohm = 1\n",
    )
    .unwrap();
    assert!(!validator.is_valid(&doc));
}
