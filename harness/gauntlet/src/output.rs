//! The run folder: every file appears whole or not at all.

use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum OutputError {
    #[error("write `{path}`: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("move results into `{path}`: {source}")]
    Rename {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|source| OutputError::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| OutputError::Rename {
        path: path.to_path_buf(),
        source,
    })
}
