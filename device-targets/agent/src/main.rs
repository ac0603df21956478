//! `gauntlet-agent`: serves the harness over stdio (a child process or an SSH channel), TCP or a
//! serial line.

use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
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
    /// address is printed as `listening on ADDR`.
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

fn run(args: Args) -> Result<(), String> {
    let runtime = Runtimes::available(args.onnxruntime.clone());
    let mut config = ServeConfig {
        token: None,
        facts_root: PathBuf::from("/"),
    };
    if let Some(address) = args.listen {
        let token = std::env::var(&args.token_env).map_err(|_| {
            format!(
                "start a TCP listener: set the shared token in ${}",
                args.token_env
            )
        })?;
        if token.len() < 16 {
            return Err(format!(
                "start a TCP listener: the token in ${} must have at least 16 characters",
                args.token_env
            ));
        }
        config.token = Some(token);
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
        for stream in listener.incoming() {
            let stream = stream.map_err(|e| format!("accept a connection: {e}"))?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
            let reader = stream
                .try_clone()
                .map_err(|e| format!("clone the connection: {e}"))?;
            match serve(&runtime, &config, reader, stream) {
                Ok(SessionEnd::Shutdown) => return Ok(()),
                Ok(SessionEnd::Closed) => continue,
                // A broken connection ends that session only; the next client gets a fresh one.
                Err(e) => eprintln!("gauntlet-agent: session ended: {e}"),
            }
        }
        Ok(())
    } else if let Some(path) = args.serial {
        let port = serialport::new(path.to_string_lossy(), args.baud)
            .timeout(Duration::from_secs(3600))
            .open()
            .map_err(|e| format!("open serial port `{}`: {e}", path.display()))?;
        let writer = port
            .try_clone()
            .map_err(|e| format!("clone serial port `{}`: {e}", path.display()))?;
        serve(&runtime, &config, port, writer).map_err(|e| format!("serve: {e}"))?;
        Ok(())
    } else if args.stdio {
        serve(&runtime, &config, io::stdin().lock(), io::stdout().lock())
            .map_err(|e| format!("serve: {e}"))?;
        Ok(())
    } else {
        Err("choose a transport: --stdio, --listen ADDR or --serial PATH".into())
    }
}
