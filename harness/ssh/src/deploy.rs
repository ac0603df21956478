use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::board::{Input, SshBoard, quote, remote_dir};
use crate::error::SshError;

/// Tools the deployment scripts rely on; a board lacking one gets [`SshError::MissingTool`].
const REQUIRED_TOOLS: [&str; 5] = ["sha256sum", "mkdir", "mv", "cat", "chmod"];

/// One file to place in the board's cache, e.g. a model build.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// Name used in [`Deployment`]'s lists and in logs.
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub sha256: [u8; 32],
}

/// A file on this machine to place in the board's cache, e.g. a runtime library the rig names.
/// Streamed from disk only when the cache lacks it, and hashed once per process (as the agent is).
#[derive(Debug, Clone, Copy)]
pub struct HostFile<'a> {
    /// Name used in [`Deployment`]'s lists and in logs.
    pub name: &'a str,
    pub path: &'a Path,
}

/// What [`SshBoard::deploy`] left on the board.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Deployment {
    /// Absolute path of the installed agent executable.
    pub agent_remote: String,
    /// Each upload's name and absolute remote path, in the order given.
    pub files: Vec<(String, String)>,
    /// Names already present in the cache (nothing sent).
    pub cache_hits: Vec<String>,
    /// Names sent in this deployment.
    pub uploaded: Vec<String>,
    pub bytes_sent: u64,
}

/// Name under which the agent appears in [`Deployment`]'s lists.
pub const AGENT_NAME: &str = "gauntlet-agent";

struct Item<'a> {
    name: &'a str,
    hex: String,
    mode: &'static str,
    source: Source<'a>,
}

enum Source<'a> {
    Path(&'a Path),
    Bytes(&'a [u8]),
}

impl SshBoard {
    /// Installs `agent` (the local agent binary built for this board's `arch`), `host_files` and
    /// `uploads` into `<cache_dir>/sha256/<hex>`. One remote `test -f` batch finds what is already there; each
    /// missing file is streamed to a temporary name, its SHA-256 checked on the board, then moved
    /// into place, so a present cache entry is always complete and correct. The whole deployment
    /// is bounded by the board's deploy timeout.
    pub fn deploy(
        &self,
        agent: &Path,
        host_files: &[HostFile<'_>],
        uploads: &[Upload<'_>],
    ) -> Result<Deployment, SshError> {
        self.connect()?;
        let started = Instant::now();
        let left = || self.timeouts.deploy.saturating_sub(started.elapsed());
        let mut items = vec![self.host_item(AGENT_NAME, agent, "755", "the agent binary")?];
        for f in host_files {
            items.push(self.host_item(f.name, f.path, "644", &format!("`{}`", f.name))?);
        }
        items.extend(uploads.iter().map(|u| Item {
            name: u.name,
            hex: hex::encode(u.sha256),
            mode: "644",
            source: Source::Bytes(u.bytes),
        }));

        let probe = probe_script(&self.cache_dir, items.iter().map(|i| i.hex.as_str()));
        let listing = self.run_ok("prepare the cache directory", &probe, left())?;
        let (dir, present) = parse_probe(&listing).map_err(|missing| match missing {
            ProbeFailure::MissingTool(tool) => SshError::MissingTool {
                board: self.id.clone(),
                tool,
            },
            ProbeFailure::Garbled => self.remote(
                "prepare the cache directory",
                &format!("unexpected answer `{}`", listing.trim()),
            ),
        })?;

        let mut deployment = Deployment {
            agent_remote: format!("{dir}/{}", items[0].hex),
            files: Vec::new(),
            cache_hits: Vec::new(),
            uploaded: Vec::new(),
            bytes_sent: 0,
        };
        let mut installed: BTreeSet<&str> = present.iter().map(String::as_str).collect();
        for (index, item) in items.iter().enumerate() {
            let path = format!("{dir}/{}", item.hex);
            if installed.contains(item.hex.as_str()) {
                deployment.cache_hits.push(item.name.to_string());
            } else {
                deployment.bytes_sent += self.install(item, &dir, &path, left())?;
                deployment.uploaded.push(item.name.to_string());
                installed.insert(&item.hex);
            }
            // The agent is reported as `agent_remote`, not among the files.
            if index > 0 {
                deployment.files.push((item.name.to_string(), path));
            }
        }
        Ok(deployment)
    }

    /// A file of this machine as a cache item, hashed (once per process for an unchanged file).
    fn host_item<'a>(
        &self,
        name: &'a str,
        path: &'a Path,
        mode: &'static str,
        what: &str,
    ) -> Result<Item<'a>, SshError> {
        let hex = sha256_file(path)
            .map_err(|e| self.local(&format!("read {what} `{}`", path.display()), e))?;
        Ok(Item {
            name,
            hex,
            mode,
            source: Source::Path(path),
        })
    }

    /// Streams one file to a temporary name, verifies it and moves it into place; answers the bytes
    /// sent.
    fn install(
        &self,
        item: &Item<'_>,
        dir: &str,
        path: &str,
        limit: std::time::Duration,
    ) -> Result<u64, SshError> {
        let action = format!("upload `{}` to `{path}`", item.name);
        let (input, size) = match item.source {
            Source::Bytes(bytes) => (Input::Bytes(bytes), bytes.len() as u64),
            Source::Path(local) => {
                let file = File::open(local).map_err(|e| self.local(&action, e))?;
                let size = file.metadata().map_err(|e| self.local(&action, e))?.len();
                (Input::File(file), size)
            }
        };
        let script = install_script(dir, &item.hex, item.mode);
        let finished = self.run(&action, &script, input, limit)?;
        if finished.status.success() {
            return Ok(size);
        }
        if finished.stderr.contains("No space left on device") {
            return Err(SshError::DiskFull {
                board: self.id.clone(),
                path: path.to_string(),
            });
        }
        if let Some(actual) = finished
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("checksum-mismatch "))
        {
            return Err(SshError::ChecksumMismatch {
                board: self.id.clone(),
                path: path.to_string(),
                expected: item.hex.clone(),
                actual: actual.trim().to_string(),
            });
        }
        Err(self.remote(&action, &finished.stderr))
    }
}

/// SHA-256 of a local file, remembered per (path, size, mtime): every board of a run deploys the
/// same agent, and a debug agent is hundreds of megabytes.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    type Key = (std::path::PathBuf, u64, std::time::SystemTime);
    static KNOWN: Mutex<BTreeMap<Key, String>> = Mutex::new(BTreeMap::new());
    let meta = std::fs::metadata(path)?;
    let key = (path.to_path_buf(), meta.len(), meta.modified()?);
    let known = |k: &Key| {
        KNOWN
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(k)
            .cloned()
    };
    if let Some(hex) = known(&key) {
        return Ok(hex);
    }
    let hex = hash_file(path)?;
    KNOWN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, hex.clone());
    Ok(hex)
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// One round trip: checks the tools, creates the cache, prints its absolute path and then
/// `have <hex>` for each cached file.
fn probe_script<'a>(cache_dir: &str, hexes: impl Iterator<Item = &'a str>) -> String {
    let tools = REQUIRED_TOOLS.join(" ");
    let hexes: Vec<&str> = hexes.collect();
    format!(
        "for t in {tools}; do command -v \"$t\" >/dev/null 2>&1 || {{ echo \"missing-tool $t\"; exit 0; }}; done\n\
         mkdir -p {dir}/sha256 && cd {dir}/sha256 && pwd -P || exit 1\n\
         for h in {list}; do if [ -f \"$h\" ]; then echo \"have $h\"; fi; done\n",
        dir = remote_dir(cache_dir),
        list = hexes.join(" "),
    )
}

#[derive(Debug, PartialEq)]
enum ProbeFailure {
    MissingTool(String),
    Garbled,
}

fn parse_probe(listing: &str) -> Result<(String, Vec<String>), ProbeFailure> {
    let mut lines = listing.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().ok_or(ProbeFailure::Garbled)?;
    if let Some(tool) = first.strip_prefix("missing-tool ") {
        return Err(ProbeFailure::MissingTool(tool.to_string()));
    }
    if !first.starts_with('/') {
        return Err(ProbeFailure::Garbled);
    }
    let present = lines
        .map(|l| l.strip_prefix("have ").map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or(ProbeFailure::Garbled)?;
    Ok((first.to_string(), present))
}

/// Receives stdin into a temporary file that is removed whatever happens, checks its SHA-256 and
/// renames it over the final name (atomic within one directory).
fn install_script(dir: &str, hex: &str, mode: &str) -> String {
    let dir = quote(dir);
    format!(
        "t={dir}/.upload-{hex}-$$; f={dir}/{hex}\n\
         trap 'rm -f \"$t\"' EXIT\n\
         cat > \"$t\" || exit 1\n\
         s=$(sha256sum \"$t\") || exit 1; s=${{s%% *}}\n\
         if [ \"$s\" != {hex} ]; then echo \"checksum-mismatch $s\" >&2; exit 3; fi\n\
         chmod {mode} \"$t\" && mv -f \"$t\" \"$f\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn probe_answer_parses_into_directory_and_hits() {
        let (dir, present) =
            parse_probe("/home/ci/.cache/g/sha256\nhave ab12\nhave cd34\n").unwrap();
        assert_eq!(dir, "/home/ci/.cache/g/sha256");
        assert_eq!(present, ["ab12", "cd34"]);
        assert_eq!(
            parse_probe("missing-tool sha256sum\n"),
            Err(ProbeFailure::MissingTool("sha256sum".into()))
        );
        assert_eq!(parse_probe("relative\n"), Err(ProbeFailure::Garbled));
        assert_eq!(parse_probe("/x\nnoise\n"), Err(ProbeFailure::Garbled));
        assert_eq!(parse_probe(""), Err(ProbeFailure::Garbled));
    }

    /// The scripts run here with the local shell, exactly as the board's shell would run them.
    fn sh(script: &str, stdin: &[u8]) -> std::process::Output {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn install_script_verifies_then_moves_into_place() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_str().unwrap();
        let bytes = b"model bytes";
        let hex = hex::encode(Sha256::digest(bytes));
        let out = sh(&install_script(dir, &hex, "644"), bytes);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::read(tmp.path().join(&hex)).unwrap(), bytes);
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "temp file left"
        );

        let wrong = "0".repeat(64);
        let out = sh(&install_script(dir, &wrong, "644"), bytes);
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("checksum-mismatch {hex}")));
        assert!(!tmp.path().join(&wrong).exists());
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "temp file left"
        );
    }

    #[test]
    fn probe_script_creates_the_cache_and_lists_hits() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("c d");
        let cache = cache.to_str().unwrap();
        std::fs::create_dir_all(format!("{cache}/sha256")).unwrap();
        std::fs::write(format!("{cache}/sha256/aa"), b"").unwrap();
        let out = sh(&probe_script(cache, ["aa", "bb"].into_iter()), b"");
        let (dir, present) = parse_probe(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert!(dir.ends_with("/c d/sha256"), "{dir}");
        assert_eq!(present, ["aa"]);
    }
}
