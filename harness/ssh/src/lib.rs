//! Linux boards reached with the system OpenSSH client (`ssh`), so `~/.ssh/config`, agents, jump
//! hosts and known_hosts behave as users expect. No Rust SSH library: every operation is an `ssh`
//! process multiplexed over one control master per board.
//!
//! A board session, all blocking (the runner gives each board an OS thread of its own):
//! ```no_run
//! # use gauntlet_ssh::{SshBoard, Upload};
//! # fn demo(conn: &gauntlet_spec::SshConnection, model: &[u8], sha: [u8; 32]) -> Result<(), gauntlet_ssh::SshError> {
//! let board = SshBoard::new("pi4-a", conn, &gauntlet_spec::Timeouts::default());
//! let deployment = board.deploy(
//!     std::path::Path::new("target/aarch64-unknown-linux-gnu/release/gauntlet-agent"),
//!     &[],
//!     &[Upload { name: "kws/int8", bytes: model, sha256: sha }],
//! )?;
//! let health = board.health_check(&deployment.agent_remote)?;
//! let agent = board.spawn_agent(&deployment.agent_remote, &[])?; // wire protocol on its stdin/stdout
//! # drop((health, agent));
//! board.cleanup();
//! # Ok(()) }
//! ```
//!
//! Security defaults: `BatchMode=yes` (never prompts), `StrictHostKeyChecking=yes` unless the rig
//! says `accept-new`, and the rig's own `options` take precedence over these defaults.

mod board;
mod deploy;
mod error;
mod health;

pub use board::SshBoard;
pub use deploy::{AGENT_NAME, Deployment, HostFile, Upload};
pub use error::SshError;
pub use health::Health;
