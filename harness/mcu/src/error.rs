use std::path::PathBuf;
use std::process::ExitStatus;

/// Messages read well after "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum McuError {
    #[error("build firmware: Debian's Rust is missing ({path}); install it with `{install}`")]
    ToolchainMissing {
        path: PathBuf,
        install: &'static str,
    },
    #[error(
        "find the firmware sources at {path} (set GAUNTLET_FIRMWARE_DIR to the device-targets/stm32 folder)"
    )]
    FirmwareSources { path: PathBuf },
    #[error("build firmware in {dir} ({status}): {stderr_tail}")]
    Build {
        dir: PathBuf,
        status: ExitStatus,
        stderr_tail: String,
    },
    #[error("fit a {model_bytes} B model into the {board} firmware: {overflow}")]
    DoesNotFit {
        board: &'static str,
        model_bytes: usize,
        overflow: String,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read ELF {path}: {reason}")]
    Elf { path: PathBuf, reason: String },
    #[error("start {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("wait for the firmware's READY line within {waited_ms} ms: {reason}")]
    NotReady { waited_ms: u128, reason: String },
    #[error("finish QEMU: {reason}; its stderr: {stderr_tail}")]
    Qemu { reason: String, stderr_tail: String },
    #[error("open debug probe {selector}: {reason}")]
    ProbeNotFound { selector: String, reason: String },
    #[error("attach to {chip} through probe {selector}: {reason}")]
    Attach {
        selector: String,
        chip: String,
        reason: String,
    },
    #[error("flash {elf} through probe {selector}: {reason}")]
    Flash {
        selector: String,
        elf: PathBuf,
        reason: String,
    },
    #[error("reset the target through probe {selector}: {reason}")]
    Reset { selector: String, reason: String },
    #[error("open serial port {path} at {baud} baud: {reason}")]
    Serial {
        path: String,
        baud: u32,
        reason: String,
    },
}

impl McuError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| McuError::Io {
            action,
            path,
            source,
        }
    }
}
