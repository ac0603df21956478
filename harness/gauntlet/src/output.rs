//! The run folder: proven writable before any board is touched, and every file in it appears
//! whole or not at all, under a name that cannot leave the folder.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gauntlet_spec::NameProblem;
use thiserror::Error;

/// Bytes written (and synced) by the probe: enough that a full disk refuses them.
const PROBE_BYTES: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum OutputError {
    #[error("create the output folder `{}`: {source}", .path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write a test file into the output folder `{}` before the run: {source}", .path.display())]
    Probe {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write `{}`: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("move results into `{}`: {source}", .path.display())]
    Rename {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("name a file in `{}` after {what} {name:?}: {problem}", .dir.display())]
    UnsafeName {
        dir: PathBuf,
        what: &'static str,
        name: String,
        problem: NameProblem,
    },
}

/// A folder the run writes into.
#[derive(Debug)]
pub struct RunFolder {
    root: PathBuf,
}

impl RunFolder {
    /// Creates the folder (and `outputs/` in it) and proves that a file can be written, synced and
    /// renamed there: a `--out` that is a file, read-only or on a full disk fails now, not after
    /// the measurement.
    pub fn prepare(root: PathBuf) -> Result<RunFolder, OutputError> {
        let folder = RunFolder { root };
        let outputs = folder.outputs();
        std::fs::create_dir_all(&outputs).map_err(|source| OutputError::CreateDir {
            path: outputs.clone(),
            source,
        })?;
        let probe = folder.root.join(".gauntlet-probe");
        let result = write_synced(&temporary(&probe), &probe, &[0u8; PROBE_BYTES]);
        let _ = std::fs::remove_file(&probe);
        result.map_err(|e| match e {
            OutputError::Write { source, .. } | OutputError::Rename { source, .. } => {
                OutputError::Probe {
                    path: folder.root.clone(),
                    source,
                }
            }
            other => other,
        })?;
        Ok(folder)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where each build's raw scores go.
    pub fn outputs(&self) -> PathBuf {
        self.root.join("outputs")
    }
}

/// `dir/<part>__<part>…<suffix>`, refused unless every part passes the spec's name rule and the
/// result is one plain file name: the last guard in front of names that came from files (already
/// validated when they were read).
pub fn join_file(
    dir: &Path,
    parts: &[(&'static str, &str)],
    suffix: &str,
) -> Result<PathBuf, OutputError> {
    let unsafe_name = |what, name: &str, problem| OutputError::UnsafeName {
        dir: dir.to_path_buf(),
        what,
        name: name.to_string(),
        problem,
    };
    for &(what, name) in parts {
        gauntlet_spec::check_path_component(name).map_err(|p| unsafe_name(what, name, p))?;
    }
    let name = parts.iter().map(|(_, n)| *n).collect::<Vec<_>>().join("__") + suffix;
    let mut components = Path::new(&name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => Ok(dir.join(name)),
        _ => Err(unsafe_name("file name", &name, NameProblem::Separator('/'))),
    }
}

/// Writes `bytes` to a temporary file of its own beside `path`, then renames it into place; the
/// temporary file is removed when anything fails.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let tmp = temporary(path);
    let result = std::fs::write(&tmp, bytes)
        .map_err(|source| OutputError::Write {
            path: path.to_path_buf(),
            source,
        })
        .and_then(|()| rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_synced(tmp: &Path, path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    use std::io::Write;
    let write_err = |source| OutputError::Write {
        path: path.to_path_buf(),
        source,
    };
    let written = std::fs::File::create(tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(write_err)
        .and_then(|()| rename(tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

fn rename(tmp: &Path, path: &Path) -> Result<(), OutputError> {
    std::fs::rename(tmp, path).map_err(|source| OutputError::Rename {
        path: path.to_path_buf(),
        source,
    })
}

/// A temporary name no other file of this process shares (report.html and report.md once did).
fn temporary(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.{}.{n}.partial", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_differ_per_file_and_per_call() {
        let html = temporary(Path::new("out/report.html"));
        let md = temporary(Path::new("out/report.md"));
        let again = temporary(Path::new("out/report.html"));
        assert_ne!(html, md);
        assert_ne!(html, again);
        assert_eq!(html.parent(), Some(Path::new("out")));
    }

    #[test]
    fn joined_names_stay_in_their_folder() {
        let dir = Path::new("out/outputs");
        let parts = |board| {
            [
                ("board id", board),
                ("model name", "cnn"),
                ("variant", "fp32"),
            ]
        };
        assert_eq!(
            join_file(dir, &parts("pi"), ".f32").unwrap(),
            dir.join("pi__cnn__fp32.f32")
        );
        for board in ["../../../../tmp/x", "..", "a/b", "", "x\0y"] {
            let err = join_file(dir, &parts(board), ".f32").unwrap_err();
            assert!(err.to_string().contains("board id"), "{err}");
        }
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should go: the rename fails.
        std::fs::create_dir(dir.path().join("report.md")).unwrap();
        let err = write_atomically(&dir.path().join("report.md"), b"x").unwrap_err();
        assert!(matches!(err, OutputError::Rename { .. }), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the folder in the way remains");
    }

    #[test]
    fn prepare_refuses_a_file_as_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        std::fs::write(&file, "x").unwrap();
        let err = RunFolder::prepare(file.clone()).unwrap_err();
        assert!(matches!(err, OutputError::CreateDir { .. }), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }
}
