//! The listening agent faces whoever reaches its port: the real binary over real TCP on loopback.
//! Nothing but a hello is obeyed before authentication, sessions run concurrently, strangers and
//! token guessers are shown the door, and weak tokens are refused before anything listens. And
//! `--cpus`: the agent runs on the CPUs given, or does not start.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gauntlet_wire::{ErrorKind, FrameDecoder, PROTOCOL_VERSION, Request, Response, encode_frame};

const TOKEN: &str = "0123456789abcdef-listen-test";
/// Guards against a hang only; no test measures time.
const PATIENCE: Duration = Duration::from_secs(60);

struct Agent {
    child: Child,
    address: String,
}

impl Agent {
    fn start() -> Agent {
        Agent::start_with(&[])
    }

    /// A listening agent started with `args` too, once it says where it listens.
    fn start_with(args: &[&str]) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gauntlet-agent"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("GAUNTLET_AGENT_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("agent printed `{line}`"))
            .to_string();
        Agent { child, address }
    }

    fn client(&self) -> Client {
        let stream = TcpStream::connect(&self.address).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            stream,
            decoder: FrameDecoder::new(1 << 20),
        }
    }

    /// Whether the process is still running, waiting up to `PATIENCE` for it to exit when
    /// `expect_exit`.
    fn exited(&mut self, expect_exit: bool) -> Option<std::process::ExitStatus> {
        let give_up = Instant::now()
            + if expect_exit {
                PATIENCE
            } else {
                Duration::ZERO
            };
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= give_up {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    stream: TcpStream,
    decoder: FrameDecoder,
}

impl Client {
    fn send(&mut self, request: &Request) {
        let mut frame = Vec::new();
        encode_frame(request, &mut frame);
        self.stream.write_all(&frame).unwrap();
    }

    /// The next response, or `None` when the agent closed the connection.
    fn recv(&mut self) -> Option<Response> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(message) = self.decoder.next_message::<Response>() {
                return Some(message.unwrap());
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.decoder.extend(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read from the agent: {e}"),
            }
        }
    }

    fn call(&mut self, request: &Request) -> Option<Response> {
        self.send(request);
        self.recv()
    }

    fn hello(&mut self, token: &str) -> Option<Response> {
        self.call(&Request::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: Some(token.into()),
        })
    }
}

fn error_kind(response: Option<Response>) -> ErrorKind {
    match response {
        Some(Response::Error(e)) => e.kind,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn nothing_is_obeyed_before_an_accepted_hello_and_the_agent_outlives_sessions() {
    let mut agent = Agent::start();
    let mut stranger = agent.client();
    for request in [Request::Shutdown, Request::EndSession, Request::Memory] {
        assert_eq!(error_kind(stranger.call(&request)), ErrorKind::Protocol);
    }
    // A wrong token authenticates nothing either.
    assert_eq!(
        error_kind(stranger.hello("not-the-token-at-all")),
        ErrorKind::Unauthorized
    );
    assert_eq!(
        error_kind(stranger.call(&Request::Shutdown)),
        ErrorKind::Protocol
    );
    drop(stranger);
    assert!(
        agent.exited(false).is_none(),
        "an unauthenticated Shutdown stopped the agent"
    );

    // Two sessions one after the other, each ended by its host: the agent stays.
    for _ in 0..2 {
        let mut host = agent.client();
        assert!(matches!(host.hello(TOKEN), Some(Response::Hello(_))));
        assert!(matches!(
            host.call(&Request::Memory),
            Some(Response::Memory(_))
        ));
        assert_eq!(host.call(&Request::EndSession), Some(Response::Goodbye));
        assert_eq!(host.recv(), None, "the session's connection is closed");
    }
    assert!(agent.exited(false).is_none());

    let mut owner = agent.client();
    assert!(matches!(owner.hello(TOKEN), Some(Response::Hello(_))));
    assert_eq!(owner.call(&Request::Shutdown), Some(Response::Goodbye));
    let status = agent
        .exited(true)
        .expect("an authenticated Shutdown stops the agent");
    assert!(status.success(), "{status}");
}

#[test]
fn two_clients_are_served_at_once() {
    let agent = Agent::start();
    let mut first = agent.client();
    assert!(matches!(first.hello(TOKEN), Some(Response::Hello(_))));
    // The first session stays open and idle while a second one works.
    let mut second = agent.client();
    assert!(matches!(second.hello(TOKEN), Some(Response::Hello(_))));
    assert!(matches!(
        second.call(&Request::Memory),
        Some(Response::Memory(_))
    ));
    assert!(matches!(
        first.call(&Request::Memory),
        Some(Response::Memory(_))
    ));
    assert_eq!(second.call(&Request::EndSession), Some(Response::Goodbye));
    assert!(matches!(
        first.call(&Request::Memory),
        Some(Response::Memory(_))
    ));
}

#[test]
fn an_idle_stranger_blocks_nobody_and_is_closed_at_the_hello_deadline() {
    let agent = Agent::start();
    let mut idle = agent.client();
    let mut host = agent.client();
    assert!(matches!(host.hello(TOKEN), Some(Response::Hello(_))));
    assert!(matches!(
        host.call(&Request::Memory),
        Some(Response::Memory(_))
    ));
    // The stranger said nothing: the agent closes its connection (after HELLO_DEADLINE, 5 s).
    assert_eq!(idle.recv(), None);
    // The authenticated session, idle meanwhile just as long, is still served.
    assert!(matches!(
        host.call(&Request::Memory),
        Some(Response::Memory(_))
    ));
}

#[test]
fn guessing_tokens_closes_the_connection() {
    let agent = Agent::start();
    let mut guesser = agent.client();
    for guess in ["guess-number-one-xx", "guess-number-two-xx"] {
        assert_eq!(error_kind(guesser.hello(guess)), ErrorKind::Unauthorized);
    }
    // The third refusal is the last answer on this connection.
    let last = guesser.hello("guess-number-three-x");
    assert_eq!(error_kind(last), ErrorKind::Unauthorized);
    assert_eq!(guesser.recv(), None, "closed after three refused hellos");
    // Even the right token is not heard on it any more; a fresh connection is served.
    let mut hello = Vec::new();
    encode_frame(
        &Request::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: Some(TOKEN.into()),
        },
        &mut hello,
    );
    let _ = guesser.stream.write_all(&hello);
    assert_eq!(guesser.recv(), None);
    let mut host = agent.client();
    assert!(matches!(host.hello(TOKEN), Some(Response::Hello(_))));
}

#[test]
fn weak_tokens_are_refused_at_start() {
    for (token, says) in [
        ("", "0 non-whitespace characters"),
        ("                ", "0 non-whitespace characters"),
        ("short", "5 non-whitespace characters"),
        ("abc def ghi jkl mn", "14 non-whitespace characters"),
        ("0123456789abcdef\n", "control characters"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_gauntlet-agent"))
            .args(["--listen", "127.0.0.1:0"])
            .env("GAUNTLET_AGENT_TOKEN", token)
            .output()
            .unwrap();
        assert!(!output.status.success(), "token {token:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with(
                "gauntlet-agent: failed to start a TCP listener: the token in $GAUNTLET_AGENT_TOKEN"
            ),
            "{stderr}"
        );
        assert!(stderr.contains(says), "{token:?}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("listening"),
            "nothing listens with a weak token"
        );
    }
}

/// The `Cpus_allowed_list` of every thread of process `pid`.
fn thread_cpus(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| {
            let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect()
}

/// `--cpus`: the agent and every thread it starts run on the CPUs given.
#[test]
fn every_thread_of_an_agent_given_cpus_runs_on_them() {
    let last = *gauntlet_affinity::current().unwrap().last().unwrap();
    // Listening: it has loaded its runtimes (and whatever threads they start).
    let agent = Agent::start_with(&["--cpus", &last.to_string()]);
    let cpus = thread_cpus(agent.child.id());
    assert!(cpus.iter().all(|c| *c == last.to_string()), "{cpus:?}");
}

/// `--cpus` naming a CPU the machine does not let the agent have.
#[test]
fn an_agent_given_a_cpu_the_machine_lacks_names_it_and_does_not_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet-agent"))
        .args(["--stdio", "--cpus", "1023"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("gauntlet-agent: failed to hold this thread to CPUs 1023: "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "it spoke: {:?}", out.stdout);
}
