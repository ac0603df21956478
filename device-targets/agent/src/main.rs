//! `gauntlet-agent`: serves the harness over stdio (a child process or an SSH channel), TCP or a
//! serial line.

use std::io;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use clap::Parser;
use gauntlet_agent::runtime::Runtimes;
use gauntlet_agent::serve::{ServeConfig, SessionEnd, serve};

/// Runs models for the Gauntlet harness. Speaks the Gauntlet wire protocol on exactly one transport.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Serve one session on standard input/output.
    #[arg(long, conflicts_with_all = ["listen", "serial"])]
    stdio: bool,
    /// Listen on this TCP address (loopback unless `--allow-remote`); port 0 picks one. The bound
    /// address is printed as `listening on ADDR`. Sessions are served concurrently, and the agent
    /// runs until an authenticated host sends `Shutdown`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Accept a non-loopback listen address.
    #[arg(long, requires = "listen")]
    allow_remote: bool,
    /// Environment variable holding the shared token TCP clients must present.
    #[arg(long, default_value = "GAUNTLET_AGENT_TOKEN")]
    token_env: String,
    /// Serve on this serial device (e.g. /dev/ttyGS0).
    #[arg(long, value_name = "PATH")]
    serial: Option<PathBuf>,
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// The onnxruntime shared library to use, before `ORT_DYLIB_PATH`, the Python wheel and the
    /// system library path are tried.
    #[arg(long, value_name = "PATH")]
    onnxruntime: Option<PathBuf>,
    /// Run on these CPUs only, e.g. `3` or `2,3`: the agent and every thread its runtimes start
    /// (a rig's `cpus`). The agent refuses to start unless it got each one.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    cpus: Vec<u32>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gauntlet-agent: failed to {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sessions a listening agent serves at once; beyond it a connection is closed at once. Each is a
/// thread, and a stranger's one lasts at most `HELLO_DEADLINE`.
const MAX_SESSIONS: usize = 8;
/// How often an unauthenticated session wakes to check its hello deadline.
const READ_WAKE: Duration = Duration::from_millis(500);
/// Non-whitespace characters a TCP token needs, so it cannot be guessed in the time the agent's
/// back-off allows.
const MIN_TOKEN_CHARS: usize = 16;

fn run(args: Args) -> Result<(), String> {
    // Before any thread starts (a runtime's pool, a listener's sessions), so all inherit it.
    if !args.cpus.is_empty() {
        gauntlet_affinity::hold_to(&args.cpus).map_err(|e| e.to_string())?;
    }
    let runtime = Runtimes::available(args.onnxruntime.clone());
    let mut config = ServeConfig {
        token: None,
        facts_root: PathBuf::from("/"),
    };
    if let Some(address) = args.listen {
        config.token = Some(token_from_env(&args.token_env)?);
        let resolved: Vec<_> = address
            .to_socket_addrs()
            .map_err(|e| format!("resolve listen address `{address}`: {e}"))?
            .collect();
        if !args.allow_remote && resolved.iter().any(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "listen on `{address}`: not a loopback address (pass --allow-remote to expose the agent)"
            ));
        }
        let listener =
            TcpListener::bind(&resolved[..]).map_err(|e| format!("listen on `{address}`: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("read the bound address: {e}"))?;
        println!("listening on {local}");
        listen(listener, runtime, config)
    } else if let Some(path) = args.serial {
        let port = serialport::new(path.to_string_lossy(), args.baud)
            .timeout(Duration::from_secs(3600))
            .open()
            .map_err(|e| format!("open serial port `{}`: {e}", path.display()))?;
        let mut writer = port
            .try_clone()
            .map_err(|e| format!("clone serial port `{}`: {e}", path.display()))?;
        let mut port = port;
        // The line stays: a host that ends its session may start another on it.
        while serve(&runtime, &config, &mut port, &mut writer).map_err(|e| format!("serve: {e}"))?
            == SessionEnd::Ended
        {}
        Ok(())
    } else if args.stdio {
        enlarge_pipe(0);
        enlarge_pipe(1);
        // Std's stdout is line-buffered: a response holding a 0x0A byte would leave in two
        // writes, waking the host twice. A copy of the descriptor writes each flush in one.
        let stdout = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("duplicate stdout: {e}"))?;
        serve(
            &runtime,
            &config,
            io::stdin().lock(),
            std::fs::File::from(stdout),
        )
        .map_err(|e| format!("serve: {e}"))?;
        Ok(())
    } else {
        Err("choose a transport: --stdio, --listen ADDR or --serial PATH".into())
    }
}

/// The shared secret for TCP clients, refused when it is too weak to guard a port.
fn token_from_env(var: &str) -> Result<String, String> {
    let token = std::env::var(var)
        .map_err(|_| format!("start a TCP listener: set the shared token in ${var}"))?;
    let strong = token.chars().filter(|c| !c.is_whitespace()).count();
    if strong < MIN_TOKEN_CHARS {
        return Err(format!(
            "start a TCP listener: the token in ${var} has {strong} non-whitespace characters, it needs at least {MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 16`)"
        ));
    }
    if token.chars().any(char::is_control) {
        return Err(format!(
            "start a TCP listener: the token in ${var} holds control characters (a stray newline?)"
        ));
    }
    Ok(token)
}

/// Serves every connection on a thread of its own, so an idle or slow client blocks nobody,
/// until an authenticated host asks the agent to shut down.
fn listen(listener: TcpListener, runtime: Runtimes, config: ServeConfig) -> Result<(), String> {
    let config = Arc::new(config);
    let runtime = Arc::new(runtime);
    let sessions = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = mpsc::channel::<Result<(), String>>();
    let acceptor = stop.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    let _ = acceptor.send(Err(format!("accept a connection: {e}")));
                    return;
                }
            };
            if sessions.fetch_add(1, Ordering::SeqCst) >= MAX_SESSIONS {
                sessions.fetch_sub(1, Ordering::SeqCst);
                eprintln!(
                    "gauntlet-agent: refused a connection: {MAX_SESSIONS} sessions already open"
                );
                continue;
            }
            let (runtime, config, sessions, stop) = (
                Arc::clone(&runtime),
                Arc::clone(&config),
                Arc::clone(&sessions),
                stop.clone(),
            );
            thread::spawn(move || {
                match serve_connection(&runtime, &config, stream) {
                    Ok(SessionEnd::Shutdown) => {
                        let _ = stop.send(Ok(()));
                    }
                    Ok(SessionEnd::Refused) => {
                        eprintln!("gauntlet-agent: closed a connection that did not authenticate")
                    }
                    Ok(SessionEnd::Ended | SessionEnd::Closed) => {}
                    // A broken connection ends that session only.
                    Err(e) => eprintln!("gauntlet-agent: session ended: {e}"),
                }
                sessions.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    stopped
        .recv()
        .unwrap_or_else(|_| Err("keep listening: the acceptor stopped".into()))
}

fn serve_connection(
    runtime: &Runtimes,
    config: &ServeConfig,
    stream: TcpStream,
) -> Result<SessionEnd, String> {
    stream
        .set_nodelay(true)
        .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
    stream
        .set_read_timeout(Some(READ_WAKE))
        .map_err(|e| format!("set a read timeout: {e}"))?;
    let reader = stream
        .try_clone()
        .map_err(|e| format!("clone the connection: {e}"))?;
    serve(runtime, config, reader, &stream).map_err(|e| e.to_string())
}

/// A pipe holds 64 KiB by default, and a 32-window CWRU request is 128 KiB: the host's write of
/// the next pipelined request would block until this agent finished the current one and read
/// on, so that transfer would land inside the measured service time (18 % of device time at
/// batch 32). 1 MiB, the unprivileged maximum, lets whole requests wait in the pipe. When stdio
/// is not a pipe (a socket, a terminal) or the size is refused, the default stays: only
/// overhead, never correctness, depends on it.
#[cfg(target_os = "linux")]
fn enlarge_pipe(fd: i32) {
    const PIPE_BYTES: i32 = 1 << 20;
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours; on a descriptor that is
    // not a pipe it fails with EBADF/EINVAL, which is ignored.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES);
    }
}

#[cfg(not(target_os = "linux"))]
fn enlarge_pipe(_fd: i32) {}
