use std::time::Duration;

/// What went wrong with one board. Every variant names the board, and each message reads well after
/// "failed to …". All of them are infrastructure failures, never model failures.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// Connection refused, timed out, no route, unknown host name.
    #[error("reach board `{board}` at {target}: {detail}")]
    Unreachable {
        board: String,
        target: String,
        detail: String,
    },
    /// The board's key differs from the known_hosts entry, or none is known under strict checking.
    #[error("verify the host key of board `{board}` at {target}: {detail}")]
    HostKey {
        board: String,
        target: String,
        detail: String,
    },
    #[error("authenticate to board `{board}` at {target}: {detail}")]
    Auth {
        board: String,
        target: String,
        detail: String,
    },
    /// The connection dropped mid-run (cable pulled, board rebooted, sshd killed).
    #[error("keep the SSH connection to board `{board}` at {target}: {detail}")]
    ConnectionLost {
        board: String,
        target: String,
        detail: String,
    },
    /// The agent's process ended without a word while the board still answers: killed or crashed.
    #[error(
        "keep the agent running on board `{board}`: its process ended without an exit status \
         (killed by a signal, or crashed) while the board still answers"
    )]
    AgentEnded { board: String },
    #[error("write `{path}` on board `{board}`: no space left on device")]
    DiskFull { board: String, path: String },
    #[error("find `{tool}` on board `{board}`: not installed or not on PATH")]
    MissingTool { board: String, tool: String },
    #[error("{action} on board `{board}`: no answer within {limit:?}")]
    Timeout {
        board: String,
        action: String,
        limit: Duration,
    },
    #[error("verify `{path}` on board `{board}`: its SHA-256 is {actual}, expected {expected}")]
    ChecksumMismatch {
        board: String,
        path: String,
        expected: String,
        actual: String,
    },
    /// A remote command ran but failed, or its output made no sense.
    #[error("{action} on board `{board}`: {detail}")]
    Remote {
        board: String,
        action: String,
        detail: String,
    },
    /// Something on this machine: starting `ssh`, reading a local file.
    #[error("{action} for board `{board}`: {source}")]
    Local {
        board: String,
        action: String,
        #[source]
        source: std::io::Error,
    },
}

impl SshError {
    /// Whether trying again later may help (flaky link, board rebooting). Host-key, authentication,
    /// disk and tool problems need a person.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            SshError::Unreachable { .. }
                | SshError::ConnectionLost { .. }
                | SshError::Timeout { .. }
                | SshError::Remote { .. }
        )
    }

    pub fn board(&self) -> &str {
        match self {
            SshError::Unreachable { board, .. }
            | SshError::HostKey { board, .. }
            | SshError::ConnectionLost { board, .. }
            | SshError::AgentEnded { board }
            | SshError::Auth { board, .. }
            | SshError::DiskFull { board, .. }
            | SshError::MissingTool { board, .. }
            | SshError::Timeout { board, .. }
            | SshError::ChecksumMismatch { board, .. }
            | SshError::Remote { board, .. }
            | SshError::Local { board, .. } => board,
        }
    }
}

/// Turns what OpenSSH printed when it exited with 255 (its own failure, not the remote command's)
/// into the error a person can act on.
pub(crate) fn classify_ssh_failure(
    board: &str,
    target: &str,
    action: &str,
    stderr: &str,
) -> SshError {
    let lower = stderr.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    let (board, target) = (board.to_string(), target.to_string());
    if has("remote host identification has changed") {
        return SshError::HostKey {
            board,
            target,
            detail: "the board's host key differs from the known_hosts entry (reinstalled board, \
                     or someone else answering at this address)"
                .into(),
        };
    }
    if has("host key verification failed") {
        return SshError::HostKey {
            board,
            target,
            detail: "no host key is known for it and checking is strict (add it to known_hosts, \
                     or set known_hosts = \"accept-new\")"
                .into(),
        };
    }
    if has("permission denied") || has("too many authentication failures") {
        return SshError::Auth {
            board,
            target,
            detail: last_line(stderr),
        };
    }
    const UNREACHABLE: [&str; 7] = [
        "connection refused",
        "connection timed out",
        "operation timed out",
        "no route to host",
        "network is unreachable",
        "could not resolve hostname",
        "connection reset",
    ];
    if UNREACHABLE.iter().any(|n| has(n)) {
        return SshError::Unreachable {
            board,
            target,
            detail: last_line(stderr),
        };
    }
    SshError::Remote {
        board,
        action: action.to_string(),
        detail: if stderr.trim().is_empty() {
            "connection lost (ssh exited with status 255 and printed nothing)".into()
        } else {
            format!("ssh failed: {}", last_line(stderr))
        },
    }
}

/// The most telling line of a tool's stderr: the last non-empty one.
pub(crate) fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no output)")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(stderr: &str) -> SshError {
        classify_ssh_failure("b1", "root@10.0.0.2:22", "connect", stderr)
    }

    #[test]
    fn refused_and_timeout_are_unreachable_and_retryable() {
        for text in [
            "ssh: connect to host 127.0.0.1 port 1: Connection refused\n",
            "ssh: connect to host 10.0.0.9 port 22: Connection timed out\n",
            "ssh: Could not resolve hostname nope: Name or service not known\n",
        ] {
            let e = classify(text);
            assert!(
                matches!(e, SshError::Unreachable { .. }),
                "{text} gave {e:?}"
            );
            assert!(e.retryable());
            assert!(e.to_string().contains("`b1`"), "{e}");
        }
    }

    #[test]
    fn changed_and_unknown_host_keys_are_host_key_errors() {
        let changed = "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                       Host key verification failed.\n";
        let e = classify(changed);
        assert!(matches!(e, SshError::HostKey { .. }), "{e:?}");
        assert!(e.to_string().contains("differs"), "{e}");
        assert!(!e.retryable());
        let unknown = "No ED25519 host key is known for 10.0.0.2 and you have requested strict \
                       checking.\nHost key verification failed.\n";
        let e = classify(unknown);
        assert!(e.to_string().contains("no host key is known"), "{e}");
    }

    #[test]
    fn permission_denied_is_auth() {
        let e = classify("root@10.0.0.2: Permission denied (publickey).\n");
        assert!(matches!(e, SshError::Auth { .. }), "{e:?}");
        assert!(
            e.to_string().ends_with("Permission denied (publickey)."),
            "{e}"
        );
    }

    #[test]
    fn anything_else_keeps_the_last_line() {
        let e = classify("debug noise\nmux_client_request_session: read from master failed\n\n");
        assert!(
            e.to_string()
                .ends_with("ssh failed: mux_client_request_session: read from master failed"),
            "{e}"
        );
        assert!(classify("").to_string().contains("printed nothing"));
    }
}
