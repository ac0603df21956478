//! Issue 5 acceptance: the JUnit XML validates against the JUnit schema CI systems use.

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/tools.rs"]
mod tools;

use std::path::Path;
use std::process::Command;

use gauntlet_report::{JunitReporter, MemorySamples, ReportInput, Reporter};

const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/JUnit.xsd");

fn validate(xml: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, xml).unwrap();
    Command::new("xmllint")
        .args(["--noout", "--schema", XSD])
        .arg(&path)
        .output()
        .expect("run xmllint")
}

#[test]
fn junit_xml_validates_against_the_junit_xsd() {
    if tools::require("xmllint", "libxml2-utils").is_none() {
        return;
    }
    assert!(Path::new(XSD).is_file());
    let (results, samples) = fixture::run(50, 0);
    let xml = JunitReporter
        .render(&ReportInput::new(&results, &samples))
        .unwrap();
    let out = validate(&xml);
    assert!(
        out.status.success(),
        "xmllint rejected junit.xml:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The schema check itself must be able to fail: a suite without its required attributes.
    let broken = xml.replacen(" hostname=\"", " host=\"", 1);
    assert!(!validate(&broken).status.success());
}

#[test]
fn junit_xml_validates_with_no_gates_and_only_infra_errors() {
    if tools::require("xmllint", "libxml2-utils").is_none() {
        return;
    }
    let (mut results, _) = fixture::run(10, 0);
    results.gates.clear();
    results.verdicts.retain(|v| v.infra_error.is_some());
    let samples = MemorySamples::new();
    let xml = JunitReporter
        .render(&ReportInput::new(&results, &samples))
        .unwrap();
    assert!(xml.contains("<error type=\"infrastructure\""));
    let out = validate(&xml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
