use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use gauntlet_spec::{KnownHostsPolicy, SshConnection, Timeouts};

use crate::error::{SshError, classify_ssh_failure, last_line};

/// Printed by the control master's `LocalCommand` once the connection is authenticated, which is
/// how we learn the master is ready without polling its socket.
const READY: &str = "gauntlet-ssh-ready";

/// How long a control master may take to end after a channel through it lost its connection.
const MASTER_EXIT_GRACE: Duration = Duration::from_secs(1);

/// One Linux board reached with the system `ssh`. All commands share one TCP connection through a
/// control master whose socket lives in a private temporary directory; the master starts on first
/// use and stops on [`SshBoard::cleanup`] or drop.
pub struct SshBoard {
    pub(crate) id: String,
    /// `user@host:port` as far as the rig file says, for messages.
    pub(crate) target: String,
    destination: String,
    /// Options common to every invocation, the destination excluded.
    options: Vec<String>,
    pub(crate) cache_dir: String,
    pub(crate) timeouts: Timeouts,
    control_dir: tempfile::TempDir,
    master: Mutex<Option<Child>>,
}

/// What a remote command printed, once it has ended.
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Where a remote command's standard input comes from.
pub(crate) enum Input<'a> {
    Nothing,
    Bytes(&'a [u8]),
    File(File),
}

impl SshBoard {
    /// Prepares the options; nothing is contacted until the first operation.
    ///
    /// Panics only if no temporary directory can be created on this machine.
    pub fn new(id: &str, conn: &SshConnection, timeouts: &Timeouts) -> Self {
        let control_dir = tempfile::Builder::new()
            .prefix("gauntlet-ssh-")
            .tempdir()
            .expect("create a temporary directory for the ssh control socket");
        let control_path = control_dir.path().join("master");
        let destination = match &conn.user {
            Some(user) => format!("{user}@{}", conn.host),
            None => conn.host.clone(),
        };
        let target = match conn.port {
            Some(port) => format!("{destination}:{port}"),
            None => destination.clone(),
        };
        // OpenSSH keeps the first value it sees for an option, so the rig's own options go first
        // and win over these defaults.
        let mut options = Vec::new();
        for option in &conn.options {
            options.extend(["-o".to_string(), option.clone()]);
        }
        let secs = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        let strict = match conn.known_hosts {
            KnownHostsPolicy::AcceptNew => "accept-new",
            KnownHostsPolicy::Strict | KnownHostsPolicy::File(_) => "yes",
        };
        let mut push = |o: String| options.extend(["-o".to_string(), o]);
        push("BatchMode=yes".into());
        push(format!("ConnectTimeout={}", secs(timeouts.connect)));
        push(format!("StrictHostKeyChecking={strict}"));
        if let KnownHostsPolicy::File(path) = &conn.known_hosts {
            push(format!("UserKnownHostsFile={}", config_path(path)));
        }
        push(format!("ControlPath={}", config_path(&control_path)));
        // A dead link is noticed within ~3 intervals even while the agent channel is idle.
        push(format!(
            "ServerAliveInterval={}",
            secs(timeouts.connect / 2)
        ));
        push("ServerAliveCountMax=3".into());
        if conn.identity.is_some() {
            push("IdentitiesOnly=yes".into());
        }
        if let Some(identity) = &conn.identity {
            options.extend(["-i".to_string(), identity.display().to_string()]);
        }
        if let Some(port) = conn.port {
            options.extend(["-p".to_string(), port.to_string()]);
        }
        // No escape character: the agent channel carries binary frames.
        options.extend(["-e".to_string(), "none".to_string()]);
        SshBoard {
            id: id.to_string(),
            target,
            destination,
            options,
            cache_dir: conn.cache_dir.clone(),
            timeouts: timeouts.clone(),
            control_dir,
            master: Mutex::new(None),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The error for an `ssh` that exited with status 255, e.g. the agent channel from
    /// [`SshBoard::spawn_agent`] dying mid-run, given what it printed on stderr.
    pub fn connection_error(&self, action: &str, stderr: &str) -> SshError {
        classify_ssh_failure(&self.id, &self.target, action, stderr)
    }

    /// Why a channel through the control master (the agent's, from [`SshBoard::spawn_agent`]) ended
    /// with status 255, given what its `ssh` printed: the connection dropped if the master ended too
    /// (it ends with its TCP connection), else the remote process died while the board answers —
    /// OpenSSH reports a remote command killed by a signal as 255 as well.
    pub fn channel_lost(&self, stderr: &str) -> SshError {
        // The master and the channel learn of a dropped connection at about the same moment.
        let deadline = Instant::now() + MASTER_EXIT_GRACE;
        loop {
            if !self.master_running() {
                let log = std::fs::read_to_string(self.control_dir.path().join("master.log"))
                    .unwrap_or_default();
                let said = if log.trim().is_empty() { stderr } else { &log };
                return SshError::ConnectionLost {
                    board: self.id.clone(),
                    target: self.target.clone(),
                    detail: if said.trim().is_empty() {
                        "the connection dropped".into()
                    } else {
                        format!("the connection dropped: {}", last_line(said))
                    },
                };
            }
            if Instant::now() >= deadline {
                return SshError::AgentEnded {
                    board: self.id.clone(),
                };
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the control master unless it is already running. Every operation calls this, so a
    /// master that died (dropped link) is replaced by a fresh connection on the next operation.
    pub fn connect(&self) -> Result<(), SshError> {
        let mut master = self.master.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(child) = master.as_mut()
            && child.try_wait().ok().flatten().is_none()
        {
            return Ok(());
        }
        let log_path = self.control_dir.path().join("master.log");
        let log = File::create(&log_path).map_err(|e| self.local("create the ssh log", e))?;
        let mut child = Command::new("ssh")
            .args(&self.options)
            .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=no"])
            .args(["-o", "PermitLocalCommand=yes"])
            .args(["-o", &format!("LocalCommand=echo {READY}")])
            // `--`: nothing after it is an option, whatever the destination looks like.
            .args(["-N", "--", &self.destination])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| self.local("start ssh", e))?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let ready = BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|l| l.trim() == READY);
            let _ = tx.send(ready);
        });
        // ConnectTimeout bounds the TCP connect only; the handshake and authentication get as long
        // again before the board counts as hanging.
        let limit = self.timeouts.connect * 2;
        match rx.recv_timeout(limit) {
            Ok(true) => {
                *master = Some(child);
                Ok(())
            }
            Ok(false) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
                Err(self.connection_error("connect", &stderr))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(SshError::Timeout {
                    board: self.id.clone(),
                    action: format!("connect to {}", self.target),
                    limit,
                })
            }
        }
    }

    /// An `ssh` invocation through the control master running `script` with the remote user's shell.
    pub(crate) fn command(&self, script: &str) -> Command {
        let mut command = Command::new("ssh");
        command.args(&self.options).args([
            "-o",
            "ControlMaster=no",
            "-T",
            "--",
            &self.destination,
            script,
        ]);
        command
    }

    /// Runs `script` on the board and waits for it, killing it after `limit`. A status of 255 is
    /// OpenSSH's own failure and is classified here; other statuses are for the caller to judge.
    pub(crate) fn run(
        &self,
        action: &str,
        script: &str,
        input: Input<'_>,
        limit: Duration,
    ) -> Result<Finished, SshError> {
        self.connect()?;
        self.exec(action, script, input, limit)
    }

    /// Whether the control master (the board's connection) is up; nothing is contacted.
    pub(crate) fn master_running(&self) -> bool {
        let mut master = self.master.lock().unwrap_or_else(|p| p.into_inner());
        master
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// [`SshBoard::run`] without (re)starting the control master first.
    pub(crate) fn exec(
        &self,
        action: &str,
        script: &str,
        input: Input<'_>,
        limit: Duration,
    ) -> Result<Finished, SshError> {
        let mut command = self.command(script);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let feed = match input {
            Input::Nothing => {
                command.stdin(Stdio::null());
                None
            }
            Input::File(file) => {
                command.stdin(Stdio::from(file));
                None
            }
            Input::Bytes(bytes) => {
                command.stdin(Stdio::piped());
                Some(bytes)
            }
        };
        let mut child = command
            .spawn()
            .map_err(|e| self.local(&format!("start ssh to {action}"), e))?;
        let deadline = Instant::now() + limit;
        let finished = thread::scope(|s| {
            let stdin = child.stdin.take();
            if let (Some(mut stdin), Some(bytes)) = (stdin, feed) {
                // A write error means the remote side stopped reading; its stderr says why.
                s.spawn(move || {
                    let _ = stdin.write_all(bytes);
                });
            }
            let mut stdout = child.stdout.take().expect("stdout was piped");
            let mut stderr = child.stderr.take().expect("stderr was piped");
            let out = s.spawn(move || drain(&mut stdout));
            let err = s.spawn(move || drain(&mut stderr));
            let status = wait_until(&mut child, deadline);
            let stdout = out.join().expect("reader thread does not panic");
            let stderr = err.join().expect("reader thread does not panic");
            status.map(|status| {
                status.map(|status| Finished {
                    status,
                    stdout,
                    stderr,
                })
            })
        });
        let finished = finished
            .map_err(|e| self.local(&format!("wait for ssh to {action}"), e))?
            .ok_or_else(|| SshError::Timeout {
                board: self.id.clone(),
                action: action.to_string(),
                limit,
            })?;
        if finished.status.code() == Some(255) {
            return Err(self.connection_error(action, &finished.stderr));
        }
        Ok(finished)
    }

    /// Like [`SshBoard::run`], but any non-zero status is an error carrying the remote stderr.
    pub(crate) fn run_ok(
        &self,
        action: &str,
        script: &str,
        limit: Duration,
    ) -> Result<String, SshError> {
        let finished = self.run(action, script, Input::Nothing, limit)?;
        if !finished.status.success() {
            return Err(self.remote(action, &finished.stderr));
        }
        Ok(finished.stdout)
    }

    pub(crate) fn remote(&self, action: &str, stderr: &str) -> SshError {
        SshError::Remote {
            board: self.id.clone(),
            action: action.to_string(),
            detail: last_line(stderr),
        }
    }

    pub(crate) fn local(&self, action: &str, source: std::io::Error) -> SshError {
        SshError::Local {
            board: self.id.clone(),
            action: action.to_string(),
            source,
        }
    }

    /// Stops the control master (ending every channel through it, the agent's included). Safe to
    /// call more than once; the next operation would connect again.
    pub fn cleanup(&self) {
        let mut master = self.master.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = master.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SshBoard {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Reads a stream to its end; the bytes of a remote tool's output are text, lossily.
fn drain(stream: &mut impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Waits for `child` until `deadline`, then kills it and answers `None`.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A path as the value of an OpenSSH `-o` option: ssh splits such values at whitespace (a
/// known-hosts option takes several files) and expands `%` tokens, so a path holding either is
/// double-quoted with `"` and `\` escaped, and `%` doubled.
fn config_path(path: &Path) -> String {
    let text = path.display().to_string().replace('%', "%%");
    if !text.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\' || c == '\'') {
        return text;
    }
    let mut quoted = String::from('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Quotes `word` for a POSIX shell.
pub(crate) fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A shell word for a remote directory: `~` and `~/…` expand to the remote home, relative paths are
/// relative to it (where ssh starts), everything else is quoted literally.
pub(crate) fn remote_dir(dir: &str) -> String {
    match dir.strip_prefix('~') {
        Some("") => "\"$HOME\"".to_string(),
        Some(rest) if rest.starts_with('/') => format!("\"$HOME\"{}", quote(rest)),
        _ => quote(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn connection() -> SshConnection {
        SshConnection {
            host: "pi4.lab".into(),
            user: Some("ci".into()),
            port: Some(2222),
            identity: Some(PathBuf::from("/keys/id")),
            known_hosts: KnownHostsPolicy::File(PathBuf::from("/keys/known")),
            options: vec!["StrictHostKeyChecking=no".into()],
            cache_dir: ".cache/gauntlet".into(),
            arch: "aarch64-unknown-linux-gnu".into(),
        }
    }

    fn args(board: &SshBoard) -> Vec<String> {
        board
            .command("true")
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn options_follow_the_connection_and_timeouts() {
        let timeouts = Timeouts {
            connect: Duration::from_millis(2500),
            ..Timeouts::default()
        };
        let board = SshBoard::new("pi", &connection(), &timeouts);
        let args = args(&board);
        let pos = |needle: &str| args.iter().position(|a| a == needle);
        for needle in [
            "BatchMode=yes",
            "ConnectTimeout=3",
            "StrictHostKeyChecking=yes",
            "UserKnownHostsFile=/keys/known",
            "ServerAliveInterval=2",
            "ControlMaster=no",
            "/keys/id",
            "2222",
            "ci@pi4.lab",
        ] {
            assert!(pos(needle).is_some(), "{needle} missing from {args:?}");
        }
        // The rig's own option precedes the default, and OpenSSH keeps the first value.
        assert!(pos("StrictHostKeyChecking=no") < pos("StrictHostKeyChecking=yes"));
        assert_eq!(args.last().map(String::as_str), Some("true"));
        assert_eq!(board.target, "ci@pi4.lab:2222");
    }

    #[test]
    fn the_destination_follows_a_double_dash_and_option_paths_are_quoted() {
        let conn = SshConnection {
            host: "-oProxyCommand=x".into(),
            user: None,
            known_hosts: KnownHostsPolicy::File(PathBuf::from("/lab keys/known \"hosts\" 100%")),
            ..connection()
        };
        let board = SshBoard::new("pi", &conn, &Timeouts::default());
        let args = args(&board);
        let dash = args.iter().position(|a| a == "--").expect("a `--`");
        assert_eq!(args[dash + 1], "-oProxyCommand=x");
        assert!(
            args.contains(&r#"UserKnownHostsFile="/lab keys/known \"hosts\" 100%%""#.to_string()),
            "{args:?}"
        );
    }

    #[test]
    fn accept_new_policy_and_bare_host() {
        let conn = SshConnection {
            user: None,
            port: None,
            identity: None,
            known_hosts: KnownHostsPolicy::AcceptNew,
            options: vec![],
            ..connection()
        };
        let board = SshBoard::new("pi", &conn, &Timeouts::default());
        let args = args(&board);
        assert!(args.contains(&"StrictHostKeyChecking=accept-new".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("UserKnownHostsFile")));
        assert!(!args.contains(&"-i".to_string()));
        assert!(args.contains(&"pi4.lab".to_string()));
    }

    #[test]
    fn quoting_survives_a_shell() {
        let word = "it's a $HOME `x`";
        let out = Command::new("sh")
            .args(["-c", &format!("printf %s {}", quote(word))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), word);
    }

    #[test]
    fn remote_dirs_expand_the_home_only_for_tilde() {
        let expand = |dir: &str| {
            let out = Command::new("sh")
                .env("HOME", "/home/ci")
                .args(["-c", &format!("printf %s {}", remote_dir(dir))])
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(expand("~"), "/home/ci");
        assert_eq!(expand("~/c a"), "/home/ci/c a");
        assert_eq!(expand(".cache/g"), ".cache/g");
        assert_eq!(expand("/srv/$x"), "/srv/$x");
        assert_eq!(expand("~other"), "~other");
    }
}
