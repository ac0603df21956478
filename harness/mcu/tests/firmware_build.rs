//! Firmware builds, their cache and the probe path up to the probe boundary (issue 7).

mod common;

use common::*;
use gauntlet_mcu::{DebugProbe, FakeProbe, McuBoard, ProbeCall, elf_sizes};
use sha2::{Digest, Sha256};

#[test]
fn an_unchanged_model_reuses_the_cached_firmware() {
    let blob = compiled("fp32");
    let first = firmware(McuBoard::Netduinoplus2, &blob);
    let built_at = std::fs::metadata(&first.elf).unwrap().modified().unwrap();
    let again = firmware(McuBoard::Netduinoplus2, &blob);
    assert_eq!(first, again);
    assert_eq!(
        std::fs::metadata(&again.elf).unwrap().modified().unwrap(),
        built_at,
        "rebuilt"
    );

    let bytes = std::fs::read(&first.elf).unwrap();
    assert_eq!(first.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(
        elf_sizes(&first.elf).unwrap(),
        (first.flash_bytes, first.static_ram_bytes)
    );
    // The model is baked into flash; statics must leave the heap and stack most of the 128 KiB.
    assert!(
        first.flash_bytes > blob.len() as u64,
        "flash {} B, model {} B",
        first.flash_bytes,
        blob.len()
    );
    assert!(
        first.static_ram_bytes < 8 * 1024,
        "static RAM {} B",
        first.static_ram_bytes
    );
}

#[test]
fn nucleo_firmware_flashes_and_resets_through_the_fake_probe() {
    let blob = compiled("int8_qdq");
    let nucleo = firmware(McuBoard::NucleoF446re, &blob);
    let emulated = firmware(McuBoard::Netduinoplus2, &blob);
    assert_ne!(nucleo.sha256, emulated.sha256, "one image for two boards");

    let mut probe = FakeProbe::default();
    probe.flash(&nucleo.elf, true).unwrap();
    probe.reset().unwrap();
    assert_eq!(
        probe.calls,
        vec![
            ProbeCall::Flash {
                elf: nucleo.elf.clone(),
                verify: true
            },
            ProbeCall::Reset
        ]
    );
}

#[test]
fn a_model_larger_than_the_chips_flash_is_refused_as_not_fitting() {
    // 600 KiB of weights cannot fit the NUCLEO-F446RE's 512 KiB of flash, whatever the engine.
    let blob = vec![0x5A; 600 * 1024];
    let err = gauntlet_mcu::build_firmware(McuBoard::NucleoF446re, &blob, &cache_dir())
        .expect_err("a 600 KiB model in 512 KiB of flash");
    let message = err.to_string();
    assert!(
        matches!(err, gauntlet_mcu::McuError::DoesNotFit { .. }),
        "{message}"
    );
    assert!(message.contains("nucleo-f446re"), "{message}");
    assert!(message.contains("FLASH"), "{message}");
}
