//! The one board-specific module compiled in, chosen by cargo feature. Each provides the same
//! items: `CPU_MODEL`, `CLOCK_HZ`, `TIMING`, `CYCLE_COUNTER`, `init`, `console`,
//! `end_session` and `halt_failed`.

#[cfg(feature = "netduinoplus2")]
mod netduinoplus2;
#[cfg(feature = "netduinoplus2")]
pub use netduinoplus2::*;

#[cfg(feature = "nucleo-f446re")]
mod nucleo_f446re;
#[cfg(feature = "nucleo-f446re")]
pub use nucleo_f446re::*;
