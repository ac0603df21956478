//! The board drivers: starting a local agent, reaching one that already runs (TCP, serial, SSH),
//! or booting firmware (QEMU, a debug probe), each ending in a [`DeviceSession`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use gauntlet_mcu::{DebugProbe, Firmware, McuBoard, McuError};
use gauntlet_spec::{AgentBinary, Board, BoardKind, Connection, LocalTransport, SerialPort};

use gauntlet_wire::Request;

use crate::driver::{BoardDriver, DeviceSession};
use crate::link::{Link, LinkError};
use crate::thermal::{TEMPERATURE_INTERVAL, TemperatureSampler};

/// Environment variable naming the agent program, overriding the one beside `gauntlet`.
pub const AGENT_ENV: &str = "GAUNTLET_AGENT";

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("find the agent program: {0}")]
    AgentMissing(String),
    #[error("start the agent `{program}`: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("learn the agent's TCP address: {0}")]
    NoAddress(String),
    #[error("connect to `{address}`: {source}")]
    Tcp {
        address: String,
        source: std::io::Error,
    },
    #[error("open serial port `{path}`: {source}")]
    Serial {
        path: PathBuf,
        source: serialport::Error,
    },
    #[error("{0}")]
    Ssh(#[from] gauntlet_ssh::SshError),
    #[error("{0}")]
    Mcu(#[from] gauntlet_mcu::McuError),
    #[error("pass the health check of board `{board}`: {reasons}")]
    Unhealthy {
        board: String,
        reasons: String,
        /// Kept for the results: why the board was refused is part of the record.
        health: Box<gauntlet_ssh::Health>,
    },
    #[error("open a socket pair for an in-process device: {0}")]
    InProcess(std::io::Error),
    #[error("open board `{board}`: no driver for board kind `{kind}`")]
    NoDriver { board: String, kind: &'static str },
    #[error("open board `{board}`: the `{kind}` driver cannot use its connection ({why})")]
    Mismatch {
        board: String,
        kind: &'static str,
        why: &'static str,
    },
    #[error(
        "find the agent built for `{arch}`: no `{path}`; cross-build it (see the README) or set ${AGENT_ENV}_{env}"
    )]
    NoAgentForArch {
        arch: String,
        path: PathBuf,
        env: String,
    },
}

struct AgentProcess {
    child: Child,
    stderr: StderrTail,
}

/// The last lines of an agent's stderr, collected by a thread of their own.
struct StderrTail {
    lines: Arc<Mutex<Vec<String>>>,
    /// Disconnects when the collector has read to the end (the agent and whatever held its
    /// stderr are gone).
    read_to_end: mpsc::Receiver<()>,
}

const STDERR_LINES_KEPT: usize = 20;

/// How long a closed link's agent gets to exit and its last words to arrive: a link closes as the
/// agent exits, before its exit status and the end of its stderr reach this side.
const EXIT_GRACE: Duration = Duration::from_secs(1);

impl AgentProcess {
    fn stderr_tail(&self) -> String {
        self.stderr
            .lines
            .lock()
            .map(|l| l.join("\n"))
            .unwrap_or_default()
    }

    /// Waits up to `grace` for the agent to exit and its stderr to be read to the end.
    fn settle(&mut self, grace: Duration) {
        let deadline = std::time::Instant::now() + grace;
        if self.exits_within(grace) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let _ = self.stderr.read_to_end.recv_timeout(left);
        }
    }

    /// Whether the agent exits within `grace`.
    fn exits_within(&mut self, grace: Duration) -> bool {
        let deadline = std::time::Instant::now() + grace;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Gives a polite shutdown (already sent by the session) up to `grace`, then makes sure.
    fn end(&mut self, grace: Duration) {
        if !self.exits_within(grace) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.end(Duration::from_millis(200));
    }
}

fn collect_stderr(stderr: ChildStderr) -> StderrTail {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let (done, read_to_end) = mpsc::channel();
    thread::spawn(move || {
        let _done = done;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                if l.len() == STDERR_LINES_KEPT {
                    l.remove(0);
                }
                l.push(line);
            }
        }
    });
    StderrTail { lines, read_to_end }
}

/// Finds the agent program: `$GAUNTLET_AGENT`, else `gauntlet-agent` beside the running binary
/// (or one folder up, as for cargo's test binaries in `deps/`).
pub fn bundled_agent() -> Result<PathBuf, ConnectError> {
    if let Some(path) = std::env::var_os(AGENT_ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()
        .map_err(|e| ConnectError::AgentMissing(format!("locate the running program: {e}")))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    [dir.join("gauntlet-agent"), dir.join("../gauntlet-agent")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ConnectError::AgentMissing(format!(
                "no `gauntlet-agent` beside `{}`; build it (`cargo build -p gauntlet-agent`) or set ${AGENT_ENV}",
                exe.display()
            ))
        })
}

fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !filled {
        // Loopback only and short-lived: process id and time still keep other users out.
        let seed = std::process::id() as u128
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
        bytes = seed.to_le_bytes();
    }
    hex::encode(bytes)
}

fn open_serial(port: &SerialPort) -> Result<Box<dyn serialport::SerialPort>, ConnectError> {
    serialport::new(port.path.to_string_lossy(), port.baud)
        .timeout(Duration::from_millis(200))
        .open()
        .map_err(|source| ConnectError::Serial {
            path: port.path.clone(),
            source,
        })
}

fn serial_link(port: &SerialPort) -> Result<Link, ConnectError> {
    let reader = open_serial(port)?;
    let writer = reader.try_clone().map_err(|source| ConnectError::Serial {
        path: port.path.clone(),
        source,
    })?;
    Ok(Link::new(reader, writer))
}

fn tcp_link(address: &str, timeout: Duration) -> Result<Link, ConnectError> {
    let tcp_err = |source| ConnectError::Tcp {
        address: address.to_string(),
        source,
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(address)
        .map_err(tcp_err)?
        .next()
        .ok_or_else(|| ConnectError::NoAddress(format!("`{address}` resolves to nothing")))?;
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(tcp_err)?;
    // Nagle's algorithm would hold every small request back by tens of milliseconds.
    stream.set_nodelay(true).map_err(tcp_err)?;
    let reader = stream.try_clone().map_err(tcp_err)?;
    Ok(Link::new(reader, stream))
}

fn mismatch(board: &Board, why: &'static str) -> ConnectError {
    ConnectError::Mismatch {
        board: board.id.clone(),
        kind: board.kind.name(),
        why,
    }
}

/// A link and nothing else to look after: agents already running behind TCP or a serial line,
/// and flashed boards once their probe has let go.
struct LinkSession {
    link: Link,
    token: Option<String>,
}

impl DeviceSession for LinkSession {
    fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    fn token(&self) -> Option<String> {
        self.token.clone()
    }
}

/// An agent the run started as a child process; dropping the session stops it.
struct AgentSession {
    link: Link,
    token: Option<String>,
    agent: AgentProcess,
    /// What the agent was started for, to start a fresh one.
    board: Board,
}

impl DeviceSession for AgentSession {
    fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    fn token(&self) -> Option<String> {
        self.token.clone()
    }

    fn diagnose(&mut self, board: &str, error: &LinkError) -> String {
        if matches!(error, LinkError::Closed { .. }) {
            self.agent.settle(EXIT_GRACE);
        }
        self.agent.explain(error.reason(board))
    }

    fn restart_agent(&mut self, timeout: Duration) -> Option<Result<(), ConnectError>> {
        let Connection::Local { agent, transport } = &self.board.connection else {
            return None;
        };
        let _ = self.link.call(&Request::EndSession, timeout);
        self.agent.end(timeout);
        let fresh = connect_local(&self.board, agent, transport);
        Some(fresh.map(|fresh| *self = fresh))
    }
}

impl AgentProcess {
    /// `reason` with how the agent exited, if it has, and the last lines of its stderr.
    fn explain(&mut self, mut reason: String) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            reason.push_str(&format!("; the agent exited with {status}"));
        }
        let tail = self.stderr_tail();
        if !tail.is_empty() {
            reason.push_str(&format!("; agent stderr: {tail}"));
        }
        reason
    }
}

/// This machine: the bundled (or named) agent as a child, over stdio, loopback TCP or a serial
/// pair.
pub struct LocalDriver;

impl BoardDriver for LocalDriver {
    fn kind(&self) -> BoardKind {
        BoardKind::Local
    }

    fn open(
        &self,
        board: &Board,
        _image: Option<&Firmware>,
    ) -> Result<Box<dyn DeviceSession>, ConnectError> {
        let Connection::Local { agent, transport } = &board.connection else {
            return Err(mismatch(board, "not a local agent"));
        };
        Ok(Box::new(connect_local(board, agent, transport)?))
    }
}

/// The agent's `--cpus` for the board's rig `cpus`; none where the rig names none.
fn cpus_args(board: &Board) -> Vec<String> {
    if board.cpus.is_empty() {
        return Vec::new();
    }
    vec!["--cpus".into(), gauntlet_affinity::list(&board.cpus)]
}

fn connect_local(
    board: &Board,
    agent: &AgentBinary,
    transport: &LocalTransport,
) -> Result<AgentSession, ConnectError> {
    let program = match agent {
        AgentBinary::Bundled => bundled_agent()?,
        AgentBinary::Path(p) => p.clone(),
    };
    let mut command = Command::new(&program);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match &board.onnxruntime {
        Some(library) => {
            command.arg("--onnxruntime").arg(library);
        }
        // Only the wheel's place is handed on: the agent still looks where discovery says.
        None => {
            if let Some(hint) = gauntlet_runtime::onnxruntime::wheel_hint() {
                command.env(gauntlet_runtime::onnxruntime::WHEEL_HINT_ENV, hint);
            }
        }
    }
    command.args(cpus_args(board));
    let token = match transport {
        LocalTransport::Stdio => {
            command.arg("--stdio");
            None
        }
        LocalTransport::Tcp => {
            let token = fresh_token();
            command
                .args(["--listen", "127.0.0.1:0"])
                .env("GAUNTLET_AGENT_TOKEN", &token);
            Some(token)
        }
        LocalTransport::Serial {
            host_side,
            agent_side,
        } => {
            command
                .arg("--serial")
                .arg(agent_side)
                .args(["--baud", &host_side.baud.to_string()]);
            None
        }
    };
    let mut child = command.spawn().map_err(|source| ConnectError::Spawn {
        program: program.clone(),
        source,
    })?;
    let stderr = collect_stderr(child.stderr.take().expect("stderr is piped"));
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut process = AgentProcess { child, stderr };
    let link = match transport {
        LocalTransport::Stdio => Link::new(stdout, stdin),
        LocalTransport::Tcp => {
            let mut line = String::new();
            let mut stdout = BufReader::new(stdout);
            stdout
                .read_line(&mut line)
                .map_err(|e| ConnectError::NoAddress(e.to_string()))?;
            let Some(address) = line.trim().strip_prefix("listening on ") else {
                let _ = process.child.kill();
                return Err(ConnectError::NoAddress(format!(
                    "the agent printed `{}`; stderr: {}",
                    line.trim(),
                    process.stderr_tail()
                )));
            };
            tcp_link(address, board.timeouts.connect)?
        }
        LocalTransport::Serial { host_side, .. } => {
            // The agent opens its side asynchronously; bytes sent before would be lost.
            thread::sleep(Duration::from_millis(200));
            serial_link(host_side)?
        }
    };
    Ok(AgentSession {
        link,
        token,
        agent: process,
        board: board.clone(),
    })
}

/// An agent already listening on TCP; the rig's token authenticates the host.
pub struct TcpDriver;

impl BoardDriver for TcpDriver {
    fn kind(&self) -> BoardKind {
        BoardKind::LinuxTcp
    }

    fn lock_key(&self, board: &Board) -> Option<String> {
        match &board.connection {
            Connection::Tcp { address, .. } => Some(format!("tcp://{address}")),
            _ => None,
        }
    }

    fn open(
        &self,
        board: &Board,
        _image: Option<&Firmware>,
    ) -> Result<Box<dyn DeviceSession>, ConnectError> {
        let Connection::Tcp { address, token } = &board.connection else {
            return Err(mismatch(board, "not a TCP address"));
        };
        Ok(Box::new(LinkSession {
            link: tcp_link(address, board.timeouts.connect)?,
            token: Some(token.0.clone()),
        }))
    }
}

/// An agent already attached to a serial line.
pub struct SerialDriver;

impl BoardDriver for SerialDriver {
    fn kind(&self) -> BoardKind {
        BoardKind::LinuxSerial
    }

    fn lock_key(&self, board: &Board) -> Option<String> {
        match &board.connection {
            Connection::Serial(port) => Some(format!("serial://{}", port.path.display())),
            _ => None,
        }
    }

    fn open(
        &self,
        board: &Board,
        _image: Option<&Firmware>,
    ) -> Result<Box<dyn DeviceSession>, ConnectError> {
        let Connection::Serial(port) = &board.connection else {
            return Err(mismatch(board, "not a serial port"));
        };
        Ok(Box::new(LinkSession {
            link: serial_link(port)?,
            token: None,
        }))
    }
}

/// The agent binary for a board's target triple: the bundled one for this machine's own triple,
/// else `$GAUNTLET_AGENT_<TRIPLE>` or `target/<triple>/release/gauntlet-agent`.
fn agent_for(arch: &str) -> Result<PathBuf, ConnectError> {
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    if arch == host {
        return bundled_agent();
    }
    let env = arch.to_uppercase().replace('-', "_");
    if let Some(path) = std::env::var_os(format!("{AGENT_ENV}_{env}")) {
        return Ok(PathBuf::from(path));
    }
    let path = PathBuf::from("target")
        .join(arch)
        .join("release/gauntlet-agent");
    if path.is_file() {
        Ok(path)
    } else {
        Err(ConnectError::NoAgentForArch {
            arch: arch.to_string(),
            path,
            env,
        })
    }
}

/// How the rig's onnxruntime library appears among a deployment's files.
pub const ONNXRUNTIME_UPLOAD: &str = "libonnxruntime.so";

/// Linux boards over SSH (a Raspberry Pi, a Jetson): the agent is deployed (cached on the board
/// by SHA-256), the board's health checked, and the agent started on the SSH channel's stdio, so
/// no port is opened on the board.
pub struct SshDriver(pub BoardKind);

impl BoardDriver for SshDriver {
    fn kind(&self) -> BoardKind {
        self.0
    }

    fn lock_key(&self, board: &Board) -> Option<String> {
        let Connection::Ssh(ssh) = &board.connection else {
            return None;
        };
        Some(format!(
            "ssh://{}{}:{}",
            ssh.user
                .as_deref()
                .map(|u| format!("{u}@"))
                .unwrap_or_default(),
            ssh.host,
            ssh.port.unwrap_or(22)
        ))
    }

    fn open(
        &self,
        board: &Board,
        _image: Option<&Firmware>,
    ) -> Result<Box<dyn DeviceSession>, ConnectError> {
        let Connection::Ssh(conn) = &board.connection else {
            return Err(mismatch(board, "not an SSH host"));
        };
        let agent = agent_for(&conn.arch)?;
        let ssh = gauntlet_ssh::SshBoard::new(&board.id, conn, &board.timeouts);
        // A library the rig names is the host's file: it travels to the board's cache like the
        // agent. Without one, the agent finds the board's own installed onnxruntime.
        let host_files: Vec<gauntlet_ssh::HostFile<'_>> = board
            .onnxruntime
            .iter()
            .map(|path| gauntlet_ssh::HostFile {
                name: ONNXRUNTIME_UPLOAD,
                path,
            })
            .collect();
        let deployment = ssh.deploy(&agent, &host_files, &[])?;
        let library_remote = deployment
            .files
            .iter()
            .find(|(name, _)| name == ONNXRUNTIME_UPLOAD)
            .map(|(_, path)| path.as_str());
        let mut agent_args = cpus_args(board);
        if let Some(path) = library_remote {
            agent_args.extend(["--onnxruntime".to_owned(), path.to_owned()]);
        }
        let health = ssh.health_check(&deployment.agent_remote)?;
        let refusals = health.refusals(&board.health);
        if !refusals.is_empty() {
            return Err(ConnectError::Unhealthy {
                board: board.id.clone(),
                reasons: refusals.join("; "),
                health: Box::new(health),
            });
        }
        let (link, agent) = ssh_agent(&ssh, &deployment.agent_remote, &agent_args)?;
        Ok(Box::new(SshSession {
            link,
            agent,
            agent_args,
            health,
            deployment,
            ssh: Arc::new(ssh),
        }))
    }
}

/// Starts the deployed agent on its board over the SSH connection; its stdio is the link.
fn ssh_agent(
    ssh: &gauntlet_ssh::SshBoard,
    agent_remote: &str,
    args: &[String],
) -> Result<(Link, AgentProcess), ConnectError> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = ssh.spawn_agent(agent_remote, &args)?;
    let stderr = collect_stderr(child.stderr.take().expect("stderr is piped"));
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    Ok((Link::new(stdout, stdin), AgentProcess { child, stderr }))
}

struct SshSession {
    link: Link,
    agent: AgentProcess,
    agent_args: Vec<String>,
    health: gauntlet_ssh::Health,
    deployment: gauntlet_ssh::Deployment,
    // Dropped after the agent, so the SSH channel's master outlives the agent's shutdown.
    ssh: Arc<gauntlet_ssh::SshBoard>,
}

impl SshSession {
    /// Whether the agent's channel ended with OpenSSH's own status 255: the connection dropped
    /// or the agent died. Waits a moment for `ssh` to exit, since the link notices first.
    fn channel_loss(&mut self) -> Option<gauntlet_ssh::SshError> {
        self.agent.settle(EXIT_GRACE);
        let status = self.agent.child.try_wait().ok()??;
        (status.code() == Some(255)).then(|| self.ssh.channel_lost(&self.agent.stderr_tail()))
    }
}

impl DeviceSession for SshSession {
    fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    fn diagnose(&mut self, board: &str, error: &LinkError) -> String {
        // A closed SSH channel says little by itself; ask the connection what ended it.
        if matches!(error, LinkError::Closed { .. } | LinkError::Send(_))
            && let Some(lost) = self.channel_loss()
        {
            return lost.to_string();
        }
        self.agent.explain(error.reason(board))
    }

    fn restart_agent(&mut self, timeout: Duration) -> Option<Result<(), ConnectError>> {
        let _ = self.link.call(&Request::EndSession, timeout);
        self.agent.end(timeout);
        let fresh = ssh_agent(&self.ssh, &self.deployment.agent_remote, &self.agent_args);
        Some(fresh.map(|(link, agent)| {
            self.link = link;
            self.agent = agent;
        }))
    }

    fn health(&self) -> Option<gauntlet_ssh::Health> {
        Some(self.health.clone())
    }

    fn deployment(&self) -> Option<gauntlet_ssh::Deployment> {
        Some(self.deployment.clone())
    }

    fn thermal(&self) -> Option<TemperatureSampler> {
        Some(TemperatureSampler::start(
            Arc::clone(&self.ssh),
            TEMPERATURE_INTERVAL,
        ))
    }
}

/// An STM32 emulated by QEMU, booted on each build's firmware; its UART is a socket.
pub struct QemuDriver;

impl BoardDriver for QemuDriver {
    fn kind(&self) -> BoardKind {
        BoardKind::QemuStm32
    }

    fn firmware(&self, board: &Board) -> Option<Result<McuBoard, String>> {
        let Connection::Qemu { machine, .. } = &board.connection else {
            return None;
        };
        Some(crate::mcu::board_support(
            board,
            McuBoard::for_qemu_machine(machine),
            &format!("QEMU machine `{machine}`"),
        ))
    }

    fn open(
        &self,
        board: &Board,
        image: Option<&Firmware>,
    ) -> Result<Box<dyn DeviceSession>, ConnectError> {
        let (Connection::Qemu { machine, qemu }, Some(firmware)) = (&board.connection, image)
        else {
            return Err(mismatch(board, "a QEMU machine boots a firmware image"));
        };
        let session = gauntlet_mcu::QemuSession::launch(
            qemu,
            machine,
            &firmware.elf,
            board.timeouts.connect,
        )?;
        let (reader, writer) = session.stream()?;
        Ok(Box::new(QemuBoardSession {
            link: Link::new(reader, writer),
            qemu: Some(session),
        }))
    }
}

struct QemuBoardSession {
    link: Link,
    qemu: Option<gauntlet_mcu::QemuSession>,
}

impl DeviceSession for QemuBoardSession {
    fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    /// The emulator's exit status ends the session.
    fn finish(&mut self, timeout: Duration) -> Result<(), ConnectError> {
        match self.qemu.take() {
            Some(qemu) => qemu.finish(timeout).map(drop).map_err(ConnectError::Mcu),
            None => Ok(()),
        }
    }
}

/// A byte stream's two halves, as a link takes them.
pub type Stream = (Box<dyn Read + Send>, Box<dyn Write + Send>);

/// How a probe board is wired to this machine: its debug probe, and its UART. The real wiring
/// is probe-rs on USB and a serial port; a double replaces either.
pub trait ProbeWiring: Sync {
    fn probe(
        &self,
        probe: &gauntlet_spec::ProbeSelector,
        chip: &str,
    ) -> Result<Box<dyn DebugProbe>, McuError>;

    fn uart(&self, uart: &SerialPort, timeout: Duration) -> Result<Stream, ConnectError> {
        let port = gauntlet_mcu::open_uart(&uart.path.to_string_lossy(), uart.baud, timeout)?;
        let writer = port.try_clone().map_err(|source| ConnectError::Serial {
            path: uart.path.clone(),
            source,
        })?;
        Ok((Box::new(port), Box::new(writer)))
    }
}

/// Debug probes on this machine's USB, through probe-rs.
pub struct ProbeRs;

impl ProbeWiring for ProbeRs {
    fn probe(
        &self,
        probe: &gauntlet_spec::ProbeSelector,
        chip: &str,
    ) -> Result<Box<dyn DebugProbe>, McuError> {
        let target = gauntlet_mcu::open_probe(probe.vid, probe.pid, probe.serial.as_deref(), chip)?;
        Ok(Box::new(target))
    }
}

/// A real STM32 board: flashed (verified) and reset through its debug probe, then heard on its
/// UART.
pub struct ProbeDriver<'p> {
    pub wiring: &'p dyn ProbeWiring,
}

impl BoardDriver for ProbeDriver<'_> {
    fn kind(&self) -> BoardKind {
        BoardKind::Stm32Probe
    }

    fn firmware(&self, board: &Board) -> Option<Result<McuBoard, String>> {
        let Connection::Probe { chip, .. } = &board.connection else {
            return None;
        };
        Some(crate::mcu::board_support(
            board,
            McuBoard::for_chip(chip),
            &format!("chip `{chip}`"),
        ))
    }

    /// The probe is what gets flashed and reset; its UART belongs to the same board.
    fn lock_key(&self, board: &Board) -> Option<String> {
        let Connection::Probe { probe, .. } = &board.connection else {
            return None;
        };
        Some(format!(
            "probe://{:04x}:{:04x}{}",
            probe.vid,
            probe.pid,
            probe
                .serial
                .as_deref()
                .map(|s| format!(":{s}"))
                .unwrap_or_default()
        ))
    }

    fn open(
        &self,
        board: &Board,
        image: Option<&Firmware>,
    ) -> Result<Box<dyn DeviceSession>, ConnectError> {
        let (Connection::Probe { probe, chip, uart }, Some(firmware)) = (&board.connection, image)
        else {
            return Err(mismatch(
                board,
                "a probe board is flashed with a firmware image",
            ));
        };
        let timeout = board.timeouts.connect;
        let mut target = self.wiring.probe(probe, chip)?;
        // The UART opens before the reset: READY is printed once, right after it.
        let (mut reader, writer) = self.wiring.uart(uart, timeout)?;
        target.flash(&firmware.elf, true)?;
        target.reset()?;
        gauntlet_mcu::wait_for_ready(&mut reader, timeout)?;
        Ok(Box::new(LinkSession {
            link: Link::new(reader, writer),
            token: None,
        }))
    }
}
