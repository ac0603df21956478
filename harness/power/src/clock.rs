use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Monotonic time in nanoseconds since the clock's own epoch.
///
/// Sensors stamp readings with it, the sampler paces itself with it and the activity log stamps
/// busy/idle edges with it, so all three must share one instance ([`SharedClock`]).
pub trait Clock: Send + Sync {
    fn now_ns(&self) -> u64;
    /// Blocks until `now_ns() >= t_ns`.
    fn sleep_until(&self, t_ns: u64);
}

pub type SharedClock = Arc<dyn Clock>;

/// The real monotonic clock; its epoch is the instant it was created.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    epoch: Instant,
}

impl MonotonicClock {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }

    /// Converts an instant taken elsewhere (e.g. a window marker) onto this clock's time line.
    /// Instants before the epoch map to 0.
    pub fn ns_at(&self, instant: Instant) -> u64 {
        duration_ns(instant.saturating_duration_since(self.epoch))
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ns(&self) -> u64 {
        duration_ns(self.epoch.elapsed())
    }

    fn sleep_until(&self, t_ns: u64) {
        let now = self.now_ns();
        if t_ns > now {
            std::thread::sleep(Duration::from_nanos(t_ns - now));
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Virtual time for tests: it only moves when someone sleeps or calls [`ManualClock::advance`],
/// so a sampler on it runs as fast as the CPU allows and every result is reproducible.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ns: AtomicU64,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn shared() -> Arc<Self> {
        Arc::new(Self::new())
    }

    pub fn advance(&self, by_ns: u64) {
        self.now_ns.fetch_add(by_ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, t_ns: u64) {
        self.now_ns.fetch_max(t_ns, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let clock = ManualClock::new();
        clock.sleep_until(500);
        clock.sleep_until(200);
        assert_eq!(clock.now_ns(), 500);
        clock.advance(25);
        assert_eq!(clock.now_ns(), 525);
    }

    #[test]
    fn monotonic_clock_maps_instants_onto_its_epoch() {
        let clock = MonotonicClock::new();
        let later = Instant::now() + Duration::from_millis(3);
        let ns = clock.ns_at(later);
        assert!(ns >= 3_000_000, "{ns}");
        if let Some(before) = Instant::now().checked_sub(Duration::from_secs(1)) {
            assert_eq!(clock.ns_at(before), 0);
        }
    }
}
