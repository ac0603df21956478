//! Opening a link to a board: starting a local agent, or reaching one that already runs.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use gauntlet_spec::{AgentBinary, Board, Connection, LocalTransport, SerialPort};

use crate::link::Link;

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
    #[error("reach board `{0}`: an MCU board is booted with a firmware image per build")]
    FirmwareNeeded(String),
    #[error("boot board `{0}` on firmware: it runs the agent, not firmware")]
    NotMcu(String),
    #[error(
        "find the agent built for `{arch}`: no `{path}`; cross-build it (see the README) or set ${AGENT_ENV}_{env}"
    )]
    NoAgentForArch {
        arch: String,
        path: PathBuf,
        env: String,
    },
}

/// A link plus whatever keeps it alive; dropping it stops a local agent.
pub struct Connected {
    pub link: Link,
    /// Present for TCP agents, which must prove the shared secret in `Hello`.
    pub token: Option<String>,
    /// SSH boards: the health check taken before any work, and what the deployment sent.
    pub health: Option<gauntlet_ssh::Health>,
    pub deployment: Option<gauntlet_ssh::Deployment>,
    agent: Option<AgentProcess>,
    /// QEMU boards: the emulator, whose exit status ends the session.
    qemu: Option<gauntlet_mcu::QemuSession>,
    // Dropped after the agent, so the SSH channel's master outlives the agent's shutdown.
    ssh: Option<Arc<gauntlet_ssh::SshBoard>>,
}

impl Connected {
    /// The last lines the local agent wrote to stderr, to explain a crash.
    pub fn agent_stderr(&self) -> Option<String> {
        self.agent.as_ref().map(|a| a.stderr_tail())
    }

    /// Waits for an emulated board to exit after `Shutdown` and checks its status; other boards
    /// have nothing to wait for.
    pub fn finish(&mut self, timeout: Duration) -> Result<(), ConnectError> {
        match self.qemu.take() {
            Some(qemu) => qemu.finish(timeout).map(drop).map_err(ConnectError::Mcu),
            None => Ok(()),
        }
    }

    /// Whether a local agent process has exited, and how.
    pub fn agent_exit(&mut self) -> Option<String> {
        let agent = self.agent.as_mut()?;
        match agent.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// SSH boards: the board's connection, shared with samplers running beside the session.
    pub fn ssh(&self) -> Option<Arc<gauntlet_ssh::SshBoard>> {
        self.ssh.clone()
    }

    /// SSH boards whose agent channel ended with OpenSSH's own status 255: whether the connection
    /// dropped or the agent died. Waits a moment for `ssh` to exit, since the link notices first.
    pub fn ssh_channel_loss(&mut self) -> Option<gauntlet_ssh::SshError> {
        let ssh = self.ssh.as_ref()?;
        let agent = self.agent.as_mut()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let status = loop {
            match agent.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if std::time::Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10))
                }
                _ => return None,
            }
        };
        (status.code() == Some(255)).then(|| ssh.channel_lost(&agent.stderr_tail()))
    }
}

struct AgentProcess {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

const STDERR_LINES_KEPT: usize = 20;

impl AgentProcess {
    fn stderr_tail(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        // Give a polite shutdown (already sent by the session) a moment, then make sure.
        for _ in 0..20 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect_stderr(stderr: ChildStderr) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                if l.len() == STDERR_LINES_KEPT {
                    l.remove(0);
                }
                l.push(line);
            }
        }
    });
    lines
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

/// Opens a link to `board`.
pub fn connect(board: &Board) -> Result<Connected, ConnectError> {
    match &board.connection {
        Connection::Local { agent, transport } => connect_local(board, agent, transport),
        Connection::Tcp { address, token } => Ok(Connected::plain(
            tcp_link(address, board.timeouts.connect)?,
            Some(token.0.clone()),
        )),
        Connection::Serial(port) => Ok(Connected::plain(serial_link(port)?, None)),
        Connection::Ssh(ssh) => connect_ssh(board, ssh),
        Connection::Probe { .. } | Connection::Qemu { .. } => {
            Err(ConnectError::FirmwareNeeded(board.id.clone()))
        }
    }
}

/// Boots an MCU board on `firmware`: QEMU starts it; a real board is flashed through its debug
/// probe (verified), reset, and heard on its UART. Either way the session begins after READY.
pub fn connect_firmware(
    board: &Board,
    firmware: &gauntlet_mcu::Firmware,
) -> Result<Connected, ConnectError> {
    let timeout = board.timeouts.connect;
    match &board.connection {
        Connection::Qemu { machine, qemu } => {
            let session = gauntlet_mcu::QemuSession::launch(qemu, machine, &firmware.elf, timeout)?;
            let (reader, writer) = session.stream()?;
            Ok(Connected {
                qemu: Some(session),
                ..Connected::plain(Link::new(reader, writer), None)
            })
        }
        Connection::Probe { probe, chip, uart } => {
            let mut target =
                gauntlet_mcu::open_probe(probe.vid, probe.pid, probe.serial.as_deref(), chip)?;
            // The UART opens before the reset: READY is printed once, right after it.
            let mut port =
                gauntlet_mcu::open_uart(&uart.path.to_string_lossy(), uart.baud, timeout)?;
            gauntlet_mcu::DebugProbe::flash(&mut target, &firmware.elf, true)?;
            gauntlet_mcu::DebugProbe::reset(&mut target)?;
            gauntlet_mcu::wait_for_ready(&mut port, timeout)?;
            let writer = port.try_clone().map_err(|source| ConnectError::Serial {
                path: uart.path.clone(),
                source,
            })?;
            Ok(Connected::plain(Link::new(port, writer), None))
        }
        _ => Err(ConnectError::NotMcu(board.id.clone())),
    }
}

fn connect_local(
    board: &Board,
    agent: &AgentBinary,
    transport: &LocalTransport,
) -> Result<Connected, ConnectError> {
    let program = match agent {
        AgentBinary::Bundled => bundled_agent()?,
        AgentBinary::Path(p) => p.clone(),
    };
    let mut command = Command::new(&program);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(library) = &board.onnxruntime {
        command.arg("--onnxruntime").arg(library);
    }
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
    Ok(Connected {
        agent: Some(process),
        ..Connected::plain(link, token)
    })
}

impl Connected {
    fn plain(link: Link, token: Option<String>) -> Connected {
        Connected {
            link,
            token,
            health: None,
            deployment: None,
            agent: None,
            qemu: None,
            ssh: None,
        }
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

/// Deploys the agent (cached on the board by SHA-256), checks the board's health, and starts the
/// agent on the SSH channel's stdio: no port is opened on the board.
fn connect_ssh(
    board: &Board,
    conn: &gauntlet_spec::SshConnection,
) -> Result<Connected, ConnectError> {
    let agent = agent_for(&conn.arch)?;
    let ssh = gauntlet_ssh::SshBoard::new(&board.id, conn, &board.timeouts);
    let deployment = ssh.deploy(&agent, &[])?;
    let health = ssh.health_check(&deployment.agent_remote)?;
    let refusals = health.refusals(&board.health);
    if !refusals.is_empty() {
        return Err(ConnectError::Unhealthy {
            board: board.id.clone(),
            reasons: refusals.join("; "),
            health: Box::new(health),
        });
    }
    let mut child = ssh.spawn_agent(&deployment.agent_remote)?;
    let stderr = collect_stderr(child.stderr.take().expect("stderr is piped"));
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    Ok(Connected {
        health: Some(health),
        deployment: Some(deployment),
        agent: Some(AgentProcess { child, stderr }),
        ssh: Some(Arc::new(ssh)),
        ..Connected::plain(Link::new(stdout, stdin), None)
    })
}
