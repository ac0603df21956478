//! Whether the process that began a run still lives, from Linux's `/proc`. A run row says `running`
//! until its process finishes it; if the process was killed, the row stays `running` and this is how
//! readers tell that it is really incomplete.

use std::fs;

/// State letter and start time (clock ticks since boot) of a process, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may hold spaces or parentheses itself.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state); field 22 (starttime) is therefore `fields[19]`.
    let state = fields.first()?.chars().next()?;
    let started = fields.get(19)?.parse().ok()?;
    Some((state, started))
}

/// Start time of a live process, recorded with a run so a later reuse of its pid is recognised.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, started)| started)
}

/// Whether `pid` is a live process started at `started` (when known). Zombies count as gone.
pub(crate) fn alive(pid: u32, started: Option<u64>) -> bool {
    match stat(pid) {
        None => false,
        Some((state, now_started)) => {
            !matches!(state, 'Z' | 'X' | 'x') && started.is_none_or(|s| s == now_started)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_different_start_time_is_not_it() {
        let me = std::process::id();
        let started = start_time(me).expect("/proc is readable on Linux");
        assert!(alive(me, Some(started)));
        assert!(alive(me, None));
        assert!(!alive(me, Some(started + 1)));
    }

    #[test]
    fn a_reaped_child_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Until it is reaped, the child (running or a zombie) is still listed.
        let started = start_time(pid);
        assert!(started.is_some());
        child.wait().unwrap();
        assert!(!alive(pid, started));
    }
}
