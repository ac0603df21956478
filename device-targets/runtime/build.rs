//! Reads tract-onnx's resolved version from the workspace's Cargo.lock, so results name the tract
//! that ran (crates cannot read a dependency's version at compile time otherwise).

use std::path::Path;

fn main() {
    // Read at run time: the build script's binary is shared by checkouts with one target folder,
    // and a path baked in at its compile time names another checkout's lock file.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let lock = Path::new(&manifest_dir).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let version = text
        .split("[[package]]")
        .find(|p| p.contains("name = \"tract-onnx\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GAUNTLET_TRACT_VERSION={version}");
}
