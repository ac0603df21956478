//! NUCLEO-F446RE: core at 180 MHz from the 16 MHz HSI (the ST-LINK's 8 MHz MCO is not fitted
//! on every board revision, the HSI always is), console on USART2 (PA2/PA3) which the board
//! routes to the ST-LINK virtual COM port.
//!
//! Clock setup follows RM0390 §6.3 and §5.1.4: voltage scale 1 and over-drive are required
//! above 168 MHz, flash needs 5 wait states at 180 MHz and 2.7–3.6 V.

use core::ptr::{read_volatile, write_volatile};

use gauntlet_wire::TimingSource;

use crate::usart::Usart;

pub const CPU_MODEL: &str = "STM32F446RE (NUCLEO-F446RE)";
pub const CLOCK_HZ: u32 = 180_000_000;
pub const TIMING: TimingSource = TimingSource::CycleCounter;
pub const CYCLE_COUNTER: bool = true;

const RCC: usize = 0x4002_3800;
const RCC_CR: usize = RCC;
const RCC_PLLCFGR: usize = RCC + 0x04;
const RCC_CFGR: usize = RCC + 0x08;
const RCC_AHB1ENR: usize = RCC + 0x30;
const RCC_APB1ENR: usize = RCC + 0x40;
const PWR_CR: usize = 0x4000_7000;
const PWR_CSR: usize = 0x4000_7004;
const FLASH_ACR: usize = 0x4002_3C00;
const GPIOA_MODER: usize = 0x4002_0000;
const GPIOA_AFRL: usize = 0x4002_0020;
const USART2: usize = 0x4000_4400;

/// 921 600 baud from the 45 MHz APB1 clock: BRR = round(45 MHz / 921 600) = 49 (USARTDIV
/// 3 + 1/16, 0.35 % fast); the ST-LINK/V2-1 bridge carries this rate.
pub const USART2_BRR: u32 = 49;

pub fn init() -> Usart {
    clocks_180mhz();
    // GPIOA clock, USART2 clock.
    set(RCC_AHB1ENR, 1 << 0);
    set(RCC_APB1ENR, 1 << 17);
    // PA2 (TX) and PA3 (RX) in alternate function 7.
    modify(GPIOA_MODER, |v| (v & !(0xF << 4)) | (0b1010 << 4));
    modify(GPIOA_AFRL, |v| (v & !(0xFF << 8)) | (0x77 << 8));
    let uart = console();
    uart.enable(USART2_BRR);
    uart
}

pub fn console() -> Usart {
    // SAFETY: USART2's register block, clocked by `init`.
    unsafe { Usart::new(USART2) }
}

/// A real board stays up for the next session; the harness resets it through the probe.
pub fn end_session() {}

pub fn halt_failed() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

fn clocks_180mhz() {
    // Power interface clock, then voltage scale 1.
    set(RCC_APB1ENR, 1 << 28);
    modify(PWR_CR, |v| (v & !(0b11 << 14)) | (0b11 << 14));
    // PLL from HSI: 16 MHz / M=8 × N=180 / P=2 = 180 MHz; Q=8 and R=2 keep the other
    // outputs within limits (they are unused).
    write(
        RCC_PLLCFGR,
        8 | (180 << 6) | (0b00 << 16) | (8 << 24) | (2 << 28),
    );
    set(RCC_CR, 1 << 24);
    wait(RCC_CR, 1 << 25);
    // Over-drive, then over-drive switching.
    set(PWR_CR, 1 << 16);
    wait(PWR_CSR, 1 << 16);
    set(PWR_CR, 1 << 17);
    wait(PWR_CSR, 1 << 17);
    // 5 wait states, prefetch, instruction and data caches.
    write(FLASH_ACR, 5 | (1 << 8) | (1 << 9) | (1 << 10));
    while read(FLASH_ACR) & 0xF != 5 {}
    // AHB /1, APB1 /4 (45 MHz, its maximum), APB2 /2 (90 MHz), then switch to the PLL.
    modify(RCC_CFGR, |v| {
        (v & !0xFCF3) | (0b101 << 10) | (0b100 << 13) | 0b10
    });
    while (read(RCC_CFGR) >> 2) & 0b11 != 0b10 {}
}

fn read(addr: usize) -> u32 {
    // SAFETY: the addresses above are this chip's RCC, PWR, FLASH and GPIOA registers.
    unsafe { read_volatile(addr as *const u32) }
}

fn write(addr: usize, value: u32) {
    // SAFETY: as in `read`.
    unsafe { write_volatile(addr as *mut u32, value) }
}

fn modify(addr: usize, f: impl FnOnce(u32) -> u32) {
    write(addr, f(read(addr)));
}

fn set(addr: usize, bits: u32) {
    modify(addr, |v| v | bits);
}

fn wait(addr: usize, bits: u32) {
    while read(addr) & bits != bits {}
}
