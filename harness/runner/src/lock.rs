//! One run at a time per board: an exclusive `flock` on a lock file per board address, taken before
//! connecting and held until the board's session ends.
//!
//! Keyed by the address, not the board's id: two rig files may name the same Pi differently, and it
//! is still one board. Boards the run starts itself (a local agent, a QEMU machine) are not shared
//! and take no lock. The kernel drops an `flock` when its holder exits, however it exits, so a
//! cancelled CI job never leaves a stale lock behind (the orphaned-lock complaint about labgrid).
//!
//! A board that is locked fails at once with the holder's pid instead of waiting: a CI job is better
//! retried by its scheduler than left hanging on a board held by a run of unknown length.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use gauntlet_spec::Board;
use sha2::{Digest, Sha256};

/// Overrides the directory of lock files (default: `gauntlet-locks` in the system's temporary
/// directory, shared by every user and run on this machine).
pub const LOCK_DIR_ENV: &str = "GAUNTLET_LOCK_DIR";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "lock board `{board}` ({address}): another gauntlet run holds it ({holder}); lock file `{path}`"
    )]
    Held {
        board: String,
        address: String,
        holder: String,
        path: PathBuf,
    },
    #[error("lock board `{board}`: `{path}`: {source}")]
    Io {
        board: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held while the file is open; dropping it releases the board.
#[derive(Debug)]
pub struct BoardLock {
    _file: File,
}

pub fn default_dir() -> PathBuf {
    std::env::var_os(LOCK_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("gauntlet-locks"))
}

/// Locks `board` under `dir`; `Ok(None)` for a board that needs no lock.
pub fn lock(board: &Board, dir: &Path) -> Result<Option<BoardLock>, LockError> {
    let driver = crate::driver::driver_for(crate::driver::DRIVERS, board).ok();
    let Some(address) = driver.and_then(|d| d.lock_key(board)) else {
        return Ok(None);
    };
    let path = dir.join(format!(
        "{}.lock",
        &hex::encode(Sha256::digest(address.as_bytes()))[..16]
    ));
    let io = |source| LockError::Io {
        board: board.id.clone(),
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Held {
                board: board.id.clone(),
                address,
                holder: if holder.is_empty() {
                    "pid not yet written".into()
                } else {
                    holder.to_string()
                },
                path,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // Who holds it, for the message of the run that finds it locked.
    let holder = format!("pid {}, board `{}`", std::process::id(), board.id);
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()))
        .map_err(io)?;
    Ok(Some(BoardLock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_spec::{Connection, KnownHostsPolicy, SshConnection, Timeouts};

    fn ssh_board(id: &str, host: &str) -> Board {
        Board {
            id: id.into(),
            kind: gauntlet_spec::BoardKind::LinuxSsh,
            labels: Default::default(),
            connection: Connection::Ssh(SshConnection {
                host: host.into(),
                user: Some("ci".into()),
                port: None,
                identity: None,
                known_hosts: KnownHostsPolicy::Strict,
                options: vec![],
                cache_dir: ".cache/gauntlet".into(),
                arch: "aarch64-unknown-linux-gnu".into(),
            }),
            power: None,
            power_switch: None,
            timeouts: Timeouts::default(),
            health: Default::default(),
            onnxruntime: None,
            cpus: Vec::new(),
        }
    }

    #[test]
    fn a_held_board_names_the_holder_until_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(&ssh_board("pi-a", "10.0.0.2"), dir.path())
            .unwrap()
            .expect("an SSH board is locked");
        // Another name for the same board is still the same board.
        let e = lock(&ssh_board("pi-b", "10.0.0.2"), dir.path()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("board `pi-b` (ssh://ci@10.0.0.2:22)"),
            "{text}"
        );
        assert!(
            text.contains(&format!("pid {}, board `pi-a`", std::process::id())),
            "{text}"
        );
        // A different board is free.
        assert!(lock(&ssh_board("pi-c", "10.0.0.3"), dir.path()).is_ok());
        drop(first);
        assert!(lock(&ssh_board("pi-b", "10.0.0.2"), dir.path()).is_ok());
    }

    #[test]
    fn boards_the_run_starts_itself_take_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let local = Board {
            connection: Connection::Local {
                agent: gauntlet_spec::AgentBinary::Bundled,
                transport: gauntlet_spec::LocalTransport::Stdio,
            },
            ..ssh_board("local", "unused")
        };
        assert!(lock(&local, dir.path()).unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
