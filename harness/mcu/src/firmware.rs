//! Firmware builds: one ELF per (board, model blob, firmware sources), cached by content hash.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{McuBoard, McuError, elf_sizes};

/// Debian's cargo: the rustup toolchains here lack `rust-src`, and build-std needs a compiler
/// and library sources of the same release (shared FACTS.md).
pub const DEBIAN_CARGO: &str = "/usr/bin/cargo";
pub const TOOLCHAIN_INSTALL: &str = "apt-get install -y --no-install-recommends rustc-web cargo-web rust-web-src lld qemu-system-arm";

const FIRMWARE_TARGET: &str = "thumbv7em-none-eabihf";
const FIRMWARE_BIN: &str = "gauntlet-stm32";
/// Variables a surrounding cargo (e.g. `cargo test`) sets that would redirect or alter the
/// firmware build.
const INHERITED_CARGO_ENV: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTDOC",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "RUSTUP_TOOLCHAIN",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    pub elf: PathBuf,
    pub flash_bytes: u64,
    pub static_ram_bytes: u64,
    /// SHA-256 of the ELF, hex.
    pub sha256: String,
}

/// The firmware's cargo workspace: `GAUNTLET_FIRMWARE_DIR`, else `device-targets/stm32` of
/// the repository this crate was built from.
pub fn firmware_dir() -> Result<PathBuf, McuError> {
    let dir = match std::env::var_os("GAUNTLET_FIRMWARE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../device-targets/stm32"),
    };
    if !dir.join("Cargo.toml").is_file() {
        return Err(McuError::FirmwareSources { path: dir });
    }
    Ok(dir)
}

/// Builds (or reuses from `cache_dir`) the firmware for `board` with `model_blob` baked in.
///
/// The cache key hashes the board, the blob and every source file of the firmware and of its
/// path dependencies, so an unchanged model on unchanged sources is never rebuilt. Builds share
/// one cargo target directory under `cache_dir`, so a new model only relinks (≈2 s) after the
/// first clean build (≈1 min on 2 cores).
pub fn build_firmware(
    board: McuBoard,
    model_blob: &[u8],
    cache_dir: &Path,
) -> Result<Firmware, McuError> {
    build_with(Path::new(DEBIAN_CARGO), board, model_blob, cache_dir)
}

fn build_with(
    cargo: &Path,
    board: McuBoard,
    model_blob: &[u8],
    cache_dir: &Path,
) -> Result<Firmware, McuError> {
    let dir = firmware_dir()?;
    let key = cache_key(board, model_blob, &dir)?;
    let entry = cache_dir.join(format!("{}-{}", board.cargo_feature(), &key[..16]));
    let elf = entry.join("firmware.elf");
    if !elf.is_file() {
        build_into(cargo, board, model_blob, &dir, cache_dir, &entry, &elf)?;
    }
    prebuilt_firmware(elf)
}

/// Describes a firmware ELF built elsewhere (a scenario's `firmware = "…"` build).
pub fn prebuilt_firmware(elf: PathBuf) -> Result<Firmware, McuError> {
    let (flash_bytes, static_ram_bytes) = elf_sizes(&elf)?;
    let bytes = fs::read(&elf).map_err(McuError::io("read", &elf))?;
    Ok(Firmware {
        sha256: hex::encode(Sha256::digest(&bytes)),
        elf,
        flash_bytes,
        static_ram_bytes,
    })
}

fn build_into(
    cargo: &Path,
    board: McuBoard,
    model_blob: &[u8],
    dir: &Path,
    cache_dir: &Path,
    entry: &Path,
    elf: &Path,
) -> Result<(), McuError> {
    if !cargo.is_file() {
        return Err(McuError::ToolchainMissing {
            path: cargo.to_path_buf(),
            install: TOOLCHAIN_INSTALL,
        });
    }
    fs::create_dir_all(entry).map_err(McuError::io("create cache folder", entry))?;
    // Builds share a target directory: hold a lock from build to copy so a concurrent build of
    // another model cannot relink the ELF in between.
    let lock_path = cache_dir.join("build.lock");
    let lock = File::create(&lock_path).map_err(McuError::io("create", &lock_path))?;
    lock.lock().map_err(McuError::io("lock", &lock_path))?;
    if elf.is_file() {
        return Ok(()); // built by whoever held the lock before us
    }
    let blob_path = entry.join("model.tinyml");
    fs::write(&blob_path, model_blob).map_err(McuError::io("write", &blob_path))?;
    let blob_path = fs::canonicalize(&blob_path).map_err(McuError::io("resolve", &blob_path))?;
    // Absolute: cargo runs in the firmware folder, and a relative target dir would build there
    // while the ELF below is copied from the caller's, silently a stale model's.
    let target_dir = cache_dir.join("cargo-target");
    let target_dir =
        std::path::absolute(&target_dir).map_err(McuError::io("resolve", &target_dir))?;

    let mut command = Command::new(cargo);
    for var in INHERITED_CARGO_ENV {
        command.env_remove(var);
    }
    let output = command
        .current_dir(dir)
        .args(["build", "--release", "--features", board.cargo_feature()])
        .env("RUSTC_BOOTSTRAP", "1")
        .env("GAUNTLET_MODEL_BLOB", &blob_path)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .map_err(|source| McuError::Spawn {
            program: cargo.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if let Some(overflow) = memory_overflow(&stderr) {
            return Err(McuError::DoesNotFit {
                board: board.cargo_feature(),
                model_bytes: model_blob.len(),
                overflow,
            });
        }
        return Err(McuError::Build {
            dir: dir.to_path_buf(),
            status: output.status,
            stderr_tail: tail(&stderr, 20),
        });
    }
    let built = target_dir
        .join(FIRMWARE_TARGET)
        .join("release")
        .join(FIRMWARE_BIN);
    // Copy then rename, so a reader never sees a half-written ELF under the cache name.
    let partial = entry.join("firmware.elf.partial");
    fs::copy(&built, &partial).map_err(McuError::io("copy the built firmware", &built))?;
    fs::rename(&partial, elf).map_err(McuError::io("rename into place", &partial))?;
    Ok(())
}

fn cache_key(board: McuBoard, model_blob: &[u8], dir: &Path) -> Result<String, McuError> {
    let mut hasher = Sha256::new();
    hasher.update(board.cargo_feature().as_bytes());
    hasher.update([0]);
    hasher.update((model_blob.len() as u64).to_le_bytes());
    hasher.update(model_blob);
    let mut roots = vec![dir.to_path_buf()];
    roots.extend(path_dependencies(dir)?);
    for root in roots {
        let mut files = Vec::new();
        source_files(&root, &root, &mut files)?;
        files.sort();
        for relative in files {
            let path = root.join(&relative);
            let bytes = fs::read(&path).map_err(McuError::io("read", &path))?;
            hasher.update(relative.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Folders of the firmware's `path = …` dependencies (the wire protocol, the engine).
fn path_dependencies(dir: &Path) -> Result<Vec<PathBuf>, McuError> {
    let manifest_path = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest_path).map_err(McuError::io("read", &manifest_path))?;
    let manifest: toml::Table = text.parse().map_err(|e: toml::de::Error| McuError::Io {
        action: "parse",
        path: manifest_path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    let deps = manifest.get("dependencies").and_then(|d| d.as_table());
    Ok(deps
        .into_iter()
        .flat_map(|table| table.values())
        .filter_map(|dep| dep.get("path").and_then(|p| p.as_str()))
        .map(|path| dir.join(path))
        .collect())
}

/// Every file under `root` but build output and hidden folders other than `.cargo`.
fn source_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), McuError> {
    for entry in fs::read_dir(dir).map_err(McuError::io("list", dir))? {
        let entry = entry.map_err(McuError::io("list", dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let file_type = entry.file_type().map_err(McuError::io("inspect", &path))?;
        if file_type.is_dir() {
            if name == "target" || (name.starts_with('.') && name != ".cargo") {
                continue;
            }
            source_files(root, &path, out)?;
        } else if file_type.is_file() {
            out.push(
                path.strip_prefix(root)
                    .expect("walk stays under root")
                    .to_path_buf(),
            );
        }
    }
    Ok(())
}

/// The linker's word that the image outgrew the chip, e.g. lld's "section '.rodata' will not
/// fit in region 'FLASH': overflowed by 612 bytes": a fact about the model, not a broken build.
fn memory_overflow(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find(|line| line.contains("will not fit in region") || line.contains("overflowed by"))
        .and_then(|line| line.rsplit("error: ").next())
        .map(|message| message.trim().to_string())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_changes_with_blob_board_and_sources() {
        let sources = tempfile::tempdir().unwrap();
        fs::write(
            sources.path().join("Cargo.toml"),
            "[package]\nname = \"fw\"\n",
        )
        .unwrap();
        fs::create_dir(sources.path().join("src")).unwrap();
        fs::write(sources.path().join("src/main.rs"), "fn main() {}").unwrap();
        let base = cache_key(McuBoard::Netduinoplus2, b"model", sources.path()).unwrap();
        assert_eq!(
            base,
            cache_key(McuBoard::Netduinoplus2, b"model", sources.path()).unwrap()
        );
        assert_ne!(
            base,
            cache_key(McuBoard::Netduinoplus2, b"model2", sources.path()).unwrap()
        );
        assert_ne!(
            base,
            cache_key(McuBoard::NucleoF446re, b"model", sources.path()).unwrap()
        );
        fs::create_dir(sources.path().join("target")).unwrap();
        fs::write(sources.path().join("target/junk"), "x").unwrap();
        assert_eq!(
            base,
            cache_key(McuBoard::Netduinoplus2, b"model", sources.path()).unwrap()
        );
        fs::write(sources.path().join("src/main.rs"), "fn main() { }").unwrap();
        assert_ne!(
            base,
            cache_key(McuBoard::Netduinoplus2, b"model", sources.path()).unwrap()
        );
    }

    #[test]
    fn cache_key_covers_path_dependencies() {
        let root = tempfile::tempdir().unwrap();
        let fw = root.path().join("fw");
        let dep = root.path().join("dep");
        fs::create_dir_all(&fw).unwrap();
        fs::create_dir_all(&dep).unwrap();
        fs::write(
            fw.join("Cargo.toml"),
            "[dependencies]\ndep = { path = \"../dep\" }\n",
        )
        .unwrap();
        fs::write(dep.join("lib.rs"), "1").unwrap();
        let before = cache_key(McuBoard::Netduinoplus2, b"m", &fw).unwrap();
        fs::write(dep.join("lib.rs"), "2").unwrap();
        assert_ne!(
            before,
            cache_key(McuBoard::Netduinoplus2, b"m", &fw).unwrap()
        );
    }

    #[test]
    fn a_missing_debian_cargo_names_the_install_command() {
        let cache = tempfile::tempdir().unwrap();
        let err = build_with(
            Path::new("/nonexistent/cargo"),
            McuBoard::Netduinoplus2,
            b"m",
            cache.path(),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/nonexistent/cargo"), "{message}");
        assert!(message.contains(TOOLCHAIN_INSTALL), "{message}");
    }

    #[test]
    fn a_relative_cache_dir_reaches_cargo_as_an_absolute_target_dir() {
        use std::os::unix::fs::PermissionsExt;
        // Relative to the test's working directory, as `GAUNTLET_CACHE_DIR=target/…` would be.
        let work = tempfile::tempdir_in(".").unwrap();
        let relative = PathBuf::from(work.path().file_name().unwrap());
        let seen = work.path().join("seen");
        let cargo = work.path().join("cargo");
        let script = format!(
            "#!/bin/sh\necho \"$CARGO_TARGET_DIR\" > '{}'\n",
            seen.display()
        );
        fs::write(&cargo, script).unwrap();
        fs::set_permissions(&cargo, fs::Permissions::from_mode(0o755)).unwrap();
        let cache = relative.join("cache");
        // The stand-in builds nothing, so the copy fails; what matters is where cargo was sent.
        let err = build_with(&cargo, McuBoard::Netduinoplus2, b"m", &cache).unwrap_err();
        assert!(err.to_string().contains("copy the built firmware"), "{err}");
        let target = fs::read_to_string(&seen).unwrap();
        assert_eq!(
            Path::new(target.trim()),
            std::path::absolute(cache.join("cargo-target")).unwrap()
        );
    }

    #[test]
    fn a_linker_overflow_is_recognised_among_other_errors() {
        let stderr = "   Compiling gauntlet-stm32 v0.1.0\n\
                      error: linking with `ld.lld` failed: exit status: 1\n  \
                      = note: ld.lld: error: section '.rodata' will not fit in region 'FLASH': overflowed by 612 bytes\n";
        assert_eq!(
            memory_overflow(stderr).as_deref(),
            Some("section '.rodata' will not fit in region 'FLASH': overflowed by 612 bytes")
        );
        assert_eq!(memory_overflow("error[E0308]: mismatched types"), None);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
