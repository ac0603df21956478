//! Jetson rails against fixture sysfs trees that mirror JetPack 4, 5 and 6 layouts.

use std::path::PathBuf;

use gauntlet_power::{JetsonRails, ManualClock, PowerError, PowerSensor, RailLayout, Source};

fn fixture(board: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(board)
        .join("sys/bus/i2c/drivers")
}

#[test]
fn orin_nano_jp6_hwmon_rails_are_found_and_read() {
    let root = fixture("orin-nano-jp6").join("ina3221");
    let names: Vec<String> = JetsonRails::list(&root)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]);

    let mut rail = JetsonRails::open(&root, "VDD_IN", ManualClock::shared()).unwrap();
    let info = rail.describe();
    assert_eq!(info.source, Source::Measured);
    assert!(info.name.contains("VDD_IN"));
    let reading = rail.read().unwrap();
    assert!((reading.bus_volts - 5.056).abs() < 1e-9);
    assert!((reading.current_amps - 1.384).abs() < 1e-9);
    assert!((reading.power_watts - 5.056 * 1.384).abs() < 1e-9);
}

#[test]
fn agx_orin_jp5_skips_unconnected_channels_across_two_chips() {
    let rails = JetsonRails::list(&fixture("agx-orin-jp5").join("ina3221")).unwrap();
    let names: Vec<&str> = rails.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "VDD_GPU_SOC",
            "VDD_CPU_CV",
            "VIN_SYS_5V0",
            "VDDQ_VDD2_1V8AO"
        ]
    );
    assert!(rails.iter().all(|r| r.layout == RailLayout::Hwmon));
}

#[test]
fn nano_jp4_iio_rails_use_the_reported_power() {
    let root = fixture("nano-jp4");
    let mut rail = JetsonRails::open(&root, "POM_5V_IN", ManualClock::shared()).unwrap();
    let reading = rail.read().unwrap();
    assert!((reading.power_watts - 5.8).abs() < 1e-9);
    assert!((reading.current_amps - 1.16).abs() < 1e-9);
}

#[test]
fn unknown_rail_lists_what_exists() {
    let root = fixture("orin-nano-jp6");
    let err = JetsonRails::open(&root, "VDD_GPU", ManualClock::shared())
        .err()
        .unwrap();
    assert!(matches!(err, PowerError::RailNotFound { .. }));
    let text = err.to_string();
    assert!(
        text.contains("VDD_GPU") && text.contains("VDD_IN, VDD_CPU_GPU_CV, VDD_SOC"),
        "{text}"
    );
}

#[test]
fn a_missing_root_or_unreadable_value_names_the_path() {
    let missing = fixture("no-such-board");
    let err = JetsonRails::list(&missing).unwrap_err();
    assert!(err.to_string().contains("no-such-board"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in1_label"), "VDD_IN\n").unwrap();
    std::fs::write(dir.path().join("in1_input"), "garbage\n").unwrap();
    std::fs::write(dir.path().join("curr1_input"), "100\n").unwrap();
    let err = JetsonRails::open(dir.path(), "VDD_IN", ManualClock::shared())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("in1_input") && err.to_string().contains("garbage"),
        "{err}"
    );
}
