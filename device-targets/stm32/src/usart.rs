//! Polled driver for the STM32F4 USART (same register block on USART1/2/6).
//!
//! Polling, not interrupts: the protocol is strictly request → response, so the firmware is
//! always either waiting for bytes or computing, never both.

use core::ptr::{read_volatile, write_volatile};

const SR: usize = 0x00;
const DR: usize = 0x04;
const BRR: usize = 0x08;
const CR1: usize = 0x0C;

const SR_RXNE: u32 = 1 << 5;
const SR_TC: u32 = 1 << 6;
const SR_TXE: u32 = 1 << 7;
const CR1_RE: u32 = 1 << 2;
const CR1_TE: u32 = 1 << 3;
const CR1_UE: u32 = 1 << 13;

#[derive(Clone, Copy)]
pub struct Usart {
    base: usize,
}

impl Usart {
    /// # Safety
    /// `base` must be the address of a USART register block whose clock is enabled, and the
    /// caller must own that peripheral.
    pub const unsafe fn new(base: usize) -> Self {
        Usart { base }
    }

    /// 8N1 at the baud rate that `brr` encodes for the peripheral clock (16× oversampling).
    pub fn enable(&self, brr: u32) {
        self.write(BRR, brr);
        self.write(CR1, CR1_UE | CR1_TE | CR1_RE);
    }

    pub fn read_byte(&self) -> u8 {
        // An overrun (a byte lost while the core was busy) also sets RXNE, and reading DR
        // clears both; the lost byte then shows up as a frame checksum error on the host.
        while self.read(SR) & SR_RXNE == 0 {}
        self.read(DR) as u8
    }

    pub fn write_all(&self, bytes: &[u8]) {
        for &b in bytes {
            while self.read(SR) & SR_TXE == 0 {}
            self.write(DR, u32::from(b));
        }
    }

    /// Waits until the last byte has left the shift register (before an exit or reset).
    pub fn flush(&self) {
        while self.read(SR) & SR_TC == 0 {}
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `new` requires `base` to be a USART register block; offsets are in range.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }
}

impl core::fmt::Write for Usart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_all(s.as_bytes());
        Ok(())
    }
}
