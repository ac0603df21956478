//! What the runner tells reporters while it works; reporters render, they never decide.

use gauntlet_wire::AgentHello;

#[derive(Debug, Clone)]
pub enum Event {
    BoardConnected {
        board: String,
        hello: AgentHello,
    },
    BuildLoaded {
        board: String,
        model: String,
        variant: String,
        load_time_us: u64,
    },
    BuildFailed {
        board: String,
        model: String,
        variant: String,
        reason: String,
    },
    /// Device times (ns) of one measured block of a build, as they arrive: the store keeps them
    /// while the run goes, so a harness killed mid-run keeps what it measured.
    Samples {
        board: String,
        model: String,
        variant: String,
        device_ns: Vec<u64>,
    },
    /// Measured inferences done on a board, out of the planned total.
    Progress {
        board: String,
        done: u64,
        total: u64,
    },
    BoardFinished {
        board: String,
    },
    BoardFailed {
        board: String,
        reason: String,
    },
}

pub trait EventSink: Sync {
    fn event(&self, event: Event);
}

/// Discards events (library use, tests).
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _: Event) {}
}
