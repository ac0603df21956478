//! Whether a run may still drive a board. In a shared lab the right to a board is a lease, and a
//! lease that expired or was released by force may already be another run's: two runs driving
//! one board at once both publish disturbed figures, so a board's session asks before every
//! block and stops, keeping what it measured, once the answer is no.

use std::sync::atomic::{AtomicUsize, Ordering};

pub trait BoardFence: Sync {
    /// Why this run may no longer drive `board` (its id); `None` while it may.
    fn revoked(&self, board: &str) -> Option<String>;
}

/// Boards held by their `flock` alone, which nothing takes away mid-run.
pub struct Unfenced;

impl BoardFence for Unfenced {
    fn revoked(&self, _: &str) -> Option<String> {
        None
    }
}

/// The test double: `board` is revoked once it has been asked about `allowed` times.
pub struct RevokedAfter {
    board: String,
    allowed: usize,
    asked: AtomicUsize,
}

impl RevokedAfter {
    pub fn new(board: &str, allowed: usize) -> RevokedAfter {
        RevokedAfter {
            board: board.to_string(),
            allowed,
            asked: AtomicUsize::new(0),
        }
    }

    /// How often the fence was asked about its board.
    pub fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl BoardFence for RevokedAfter {
    fn revoked(&self, board: &str) -> Option<String> {
        if board != self.board {
            return None;
        }
        let asked = self.asked.fetch_add(1, Ordering::SeqCst);
        (asked >= self.allowed).then(|| "the test's fence revoked it".to_string())
    }
}
