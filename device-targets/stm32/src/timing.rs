//! Device time: SysTick on the core clock, extended to 64 bits by counting its wraps, and
//! the DWT cycle counter for per-inference times where the silicon has one.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{DCB, DWT, SCB, SYST};
use cortex_m_rt::exception;

use crate::board;

const RELOAD: u32 = 0x00FF_FFFF;
static WRAPS: AtomicU32 = AtomicU32::new(0);

pub fn start(mut syst: SYST, dcb: &mut DCB, dwt: &mut DWT) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    if board::CYCLE_COUNTER {
        dcb.enable_trace();
        dwt.enable_cycle_counter();
    }
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Core-clock ticks since boot.
pub fn ticks() -> u64 {
    cortex_m::interrupt::free(|_| {
        let wraps = WRAPS.load(Ordering::Relaxed);
        let current = SYST::get_current();
        // With interrupts masked a wrap can be pending but not yet counted; then the first
        // reading may predate the wrap, so read again after it.
        let (wraps, current) = if SCB::is_pendst_pending() {
            (wraps + 1, SYST::get_current())
        } else {
            (wraps, current)
        };
        u64::from(wraps) * (u64::from(RELOAD) + 1) + u64::from(RELOAD - current)
    })
}

pub fn ticks_to_ns(ticks: u64) -> u64 {
    let hz = u64::from(board::CLOCK_HZ);
    // Split so that `ticks * 1e9` cannot overflow for long uptimes.
    (ticks / hz) * 1_000_000_000 + (ticks % hz) * 1_000_000_000 / hz
}

pub fn now_ns() -> u64 {
    ticks_to_ns(ticks())
}

/// Times one inference.
pub struct Stopwatch {
    ticks: u64,
    cycles: u32,
}

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch {
            ticks: ticks(),
            cycles: DWT::cycle_count(),
        }
    }

    pub fn elapsed_ns(&self) -> u64 {
        let ticks = ticks() - self.ticks;
        // CYCCNT is exact to the cycle but wraps after 2^32; SysTick covers longer spans.
        if board::CYCLE_COUNTER && ticks < u64::from(u32::MAX / 2) {
            ticks_to_ns(u64::from(DWT::cycle_count().wrapping_sub(self.cycles)))
        } else {
            ticks_to_ns(ticks)
        }
    }
}
