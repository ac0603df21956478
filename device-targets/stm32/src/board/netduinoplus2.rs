//! QEMU's `netduinoplus2` machine: an STM32F405 whose clock tree QEMU does not model (the core
//! always runs at the SoC's 168 MHz) and whose DWT cycle counter reads 0 (QEMU 7.2).

use cortex_m_semihosting::debug;
use gauntlet_wire::TimingSource;

use crate::usart::Usart;

pub const CPU_MODEL: &str = "STM32F405 (QEMU netduinoplus2)";
pub const CLOCK_HZ: u32 = 168_000_000;
/// Under `-icount` SysTick follows the instruction count, not silicon cycles.
pub const TIMING: TimingSource = TimingSource::EmulatedTicks;
pub const CYCLE_COUNTER: bool = false;

const USART1: usize = 0x4001_1000;
/// 115 200 baud from an 84 MHz APB2 clock; QEMU ignores the rate but silicon would not.
const USART1_BRR: u32 = 0x2D9;

pub fn init() -> Usart {
    let uart = console();
    uart.enable(USART1_BRR);
    uart
}

/// The console UART, already enabled by `init`.
pub fn console() -> Usart {
    // SAFETY: USART1's register block; QEMU needs no clock enable.
    unsafe { Usart::new(USART1) }
}

/// QEMU's exit status becomes the session's verdict, so the emulator ends with the session
/// (`EndSession` or `Shutdown`).
pub fn end_session() {
    debug::exit(debug::EXIT_SUCCESS);
}

pub fn halt_failed() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::nop();
    }
}
