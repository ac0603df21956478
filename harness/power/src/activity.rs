use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;

/// What a simulated board draws, as a function of time on the shared clock.
pub trait LoadModel: Send + Sync {
    fn bus_volts(&self, t_ns: u64) -> f64;
    fn current_amps(&self, t_ns: u64) -> f64;
}

/// A board's power envelope for the simulated sensor: it draws `idle_watts` while idle and
/// `active_watts` while computing, at `bus_volts`, through a shunt of `shunt_ohms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerProfile {
    pub idle_watts: f64,
    pub active_watts: f64,
    pub bus_volts: f64,
    pub shunt_ohms: f64,
}

/// Busy/idle edges of a board, shared between the runner (which toggles it when the board starts
/// and stops computing) and the simulated sensor (which asks what the state was at time t).
pub struct ActivityLog {
    clock: SharedClock,
    /// (time, busy) edges in time order; before the first edge the board is idle.
    edges: Mutex<Vec<(u64, bool)>>,
}

impl ActivityLog {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            edges: Mutex::new(Vec::new()),
        }
    }

    /// Records a busy/idle edge now.
    pub fn set_busy(&self, busy: bool) {
        self.set_busy_at(self.clock.now_ns(), busy);
    }

    /// Records an edge at `t_ns`; an edge earlier than the last one is moved up to it so the log
    /// stays ordered (two threads may race to stamp edges).
    pub fn set_busy_at(&self, t_ns: u64, busy: bool) {
        let mut edges = self
            .edges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let t_ns = edges.last().map_or(t_ns, |&(last, _)| t_ns.max(last));
        edges.push((t_ns, busy));
    }

    pub fn is_busy_at(&self, t_ns: u64) -> bool {
        let edges = self
            .edges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let after = edges.partition_point(|&(t, _)| t <= t_ns);
        after > 0 && edges[after - 1].1
    }

    /// Busy time within `[start_ns, end_ns)`: the ground truth for energy tests.
    pub fn busy_ns_between(&self, start_ns: u64, end_ns: u64) -> u64 {
        let edges = self
            .edges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut busy_ns = 0;
        for (i, &(t, busy)) in edges.iter().enumerate() {
            let next = edges.get(i + 1).map_or(u64::MAX, |&(t_next, _)| t_next);
            if busy {
                let from = t.max(start_ns);
                let to = next.min(end_ns);
                busy_ns += to.saturating_sub(from);
            }
        }
        busy_ns
    }
}

/// A board following a [`PowerProfile`], busy exactly when its [`ActivityLog`] says so.
pub struct ActivityLoad {
    profile: PowerProfile,
    activity: std::sync::Arc<ActivityLog>,
}

impl ActivityLoad {
    pub fn new(profile: PowerProfile, activity: std::sync::Arc<ActivityLog>) -> Self {
        Self { profile, activity }
    }
}

impl LoadModel for ActivityLoad {
    fn bus_volts(&self, _t_ns: u64) -> f64 {
        self.profile.bus_volts
    }

    fn current_amps(&self, t_ns: u64) -> f64 {
        let watts = if self.activity.is_busy_at(t_ns) {
            self.profile.active_watts
        } else {
            self.profile.idle_watts
        };
        watts / self.profile.bus_volts
    }
}

/// A load given directly as a current function of time, for traces of known energy.
pub struct SyntheticLoad<F> {
    bus_volts: f64,
    current: F,
}

impl<F: Fn(u64) -> f64 + Send + Sync> SyntheticLoad<F> {
    pub fn new(bus_volts: f64, current_amps: F) -> Self {
        Self {
            bus_volts,
            current: current_amps,
        }
    }
}

impl<F: Fn(u64) -> f64 + Send + Sync> LoadModel for SyntheticLoad<F> {
    fn bus_volts(&self, _t_ns: u64) -> f64 {
        self.bus_volts
    }

    fn current_amps(&self, t_ns: u64) -> f64 {
        (self.current)(t_ns)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn activity_state_follows_edges_and_busy_time_adds_up() {
        let clock = ManualClock::shared();
        let log = Arc::new(ActivityLog::new(clock.clone()));
        clock.advance(100);
        log.set_busy(true);
        clock.advance(50);
        log.set_busy(false);
        log.set_busy_at(300, true);
        log.set_busy_at(400, false);

        assert!(!log.is_busy_at(99));
        assert!(log.is_busy_at(100));
        assert!(log.is_busy_at(149));
        assert!(!log.is_busy_at(150));
        assert!(log.is_busy_at(350));
        assert_eq!(log.busy_ns_between(0, 1_000), 150);
        assert_eq!(log.busy_ns_between(120, 350), 30 + 50);

        let profile = PowerProfile {
            idle_watts: 1.0,
            active_watts: 4.0,
            bus_volts: 5.0,
            shunt_ohms: 0.1,
        };
        let load = ActivityLoad::new(profile, log);
        assert!((load.current_amps(120) - 0.8).abs() < 1e-12);
        assert!((load.current_amps(200) - 0.2).abs() < 1e-12);
    }
}
