//! Writes `memory.x` for the selected board and copies the model blob named by
//! `GAUNTLET_MODEL_BLOB` into OUT_DIR, where `include_bytes!` bakes it into flash.

use std::env;
use std::fs;
use std::path::PathBuf;

/// (feature env var, memory.x) per board. Both parts have 128 KiB of SRAM at 0x2000_0000
/// (the F405's extra 64 KiB CCM is left unused: it is not reachable by DMA and QEMU
/// does not model it the same way).
const BOARDS: &[(&str, &str)] = &[
    (
        "CARGO_FEATURE_NETDUINOPLUS2",
        "MEMORY\n{\n  FLASH : ORIGIN = 0x08000000, LENGTH = 1024K\n  RAM : ORIGIN = 0x20000000, LENGTH = 128K\n}\n",
    ),
    (
        "CARGO_FEATURE_NUCLEO_F446RE",
        "MEMORY\n{\n  FLASH : ORIGIN = 0x08000000, LENGTH = 512K\n  RAM : ORIGIN = 0x20000000, LENGTH = 128K\n}\n",
    ),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    let selected: Vec<&str> = BOARDS
        .iter()
        .filter(|(feature, _)| env::var_os(feature).is_some())
        .map(|(_, memory)| *memory)
        .collect();
    let [memory] = selected[..] else {
        panic!(
            "select exactly one board feature: --features netduinoplus2 or --features nucleo-f446re"
        );
    };
    fs::write(out.join("memory.x"), memory).expect("write memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");

    println!("cargo:rerun-if-env-changed=GAUNTLET_MODEL_BLOB");
    let blob = env::var_os("GAUNTLET_MODEL_BLOB").unwrap_or_else(|| {
        panic!(
            "set GAUNTLET_MODEL_BLOB to the absolute path of the compiled .tinyml model to bake in"
        )
    });
    let blob = PathBuf::from(blob);
    println!("cargo:rerun-if-changed={}", blob.display());
    let bytes = fs::read(&blob)
        .unwrap_or_else(|e| panic!("failed to read model blob {}: {e}", blob.display()));
    fs::write(out.join("model.bin"), bytes).expect("write model.bin to OUT_DIR");
}
