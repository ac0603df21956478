//! MCU boards: the model is baked into the firmware, so every build is its own firmware image and
//! its own boot of the board, and builds run one after another rather than interleaved. On an
//! emulated board that costs nothing in fairness: time there is an instruction count, which host
//! load and drift do not touch.

use std::path::PathBuf;

use gauntlet_compile::{CompileOptions, compile_onnx};
use gauntlet_mcu::{Firmware, McuBoard, McuError, build_firmware, prebuilt_firmware};
use gauntlet_results::RejectionKind;
use gauntlet_spec::Board;

use crate::plan::{PlannedBuild, PlannedModel};

/// Environment variable naming the folder for cached firmware builds (default
/// `$XDG_CACHE_HOME/gauntlet`, else `~/.cache/gauntlet`).
pub const CACHE_ENV: &str = "GAUNTLET_CACHE_DIR";

pub(crate) enum Prepared {
    Ready(Firmware),
    /// The build cannot become firmware (e.g. an operator the MCU engine lacks): a finding about
    /// the build, not a board failure.
    Refused {
        kind: RejectionKind,
        message: String,
    },
}

/// The firmware's board support `found` for `board` (its `what`: a QEMU machine, a chip), or why
/// there is none, naming what is supported.
pub(crate) fn board_support(
    board: &Board,
    found: Option<McuBoard>,
    what: &str,
) -> Result<McuBoard, String> {
    found.ok_or_else(|| {
        let supported: Vec<String> = McuBoard::ALL
            .iter()
            .flat_map(|b| b.qemu_machine().into_iter().chain(b.probe_chip()))
            .map(str::to_string)
            .collect();
        format!(
            "build firmware for board `{}`: the firmware has no board support for {what} (supported: {})",
            board.id,
            supported.join(", ")
        )
    })
}

/// The firmware image for one build: a prebuilt ELF as given, or the ONNX model compiled for the
/// MCU engine and built into the firmware (cached by content, so an unchanged build is reused).
pub(crate) fn prepare(
    support: McuBoard,
    model: &PlannedModel,
    build: &PlannedBuild,
) -> Result<Prepared, McuError> {
    if build.prebuilt_firmware {
        return prebuilt_firmware(build.artifact.clone()).map(Prepared::Ready);
    }
    let options = CompileOptions {
        input_shape: model.input_shape.clone(),
        output: model.output.clone(),
    };
    let compiled = match compile_onnx(&build.bytes, &options) {
        Ok(compiled) => compiled,
        Err(e) => {
            return Ok(Prepared::Refused {
                kind: RejectionKind::Compile,
                message: format!(
                    "compile `{}` for the MCU engine: {e}",
                    build.artifact.display()
                ),
            });
        }
    };
    match build_firmware(support, &compiled.bytes, &cache_dir()) {
        Ok(firmware) => Ok(Prepared::Ready(firmware)),
        // Too big for the chip: the finding an MCU comparison exists to make, not a rig fault.
        Err(e @ McuError::DoesNotFit { .. }) => Ok(Prepared::Refused {
            kind: RejectionKind::DoesNotFit,
            message: e.to_string(),
        }),
        Err(e) => Err(e),
    }
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os(CACHE_ENV)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("gauntlet")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/gauntlet")))
        .unwrap_or_else(|| std::env::temp_dir().join("gauntlet-cache"));
    base.join("firmware")
}
