//! MCU boards for Gauntlet: builds the STM32 firmware with a model baked in, runs it on QEMU's
//! emulated STM32F405 or flashes a real board through probe-rs, and opens the UART that carries
//! the wire protocol.
//!
//! A session on either kind of board starts the same way: the firmware prints a plain
//! `READY` line once its USART is enabled (bytes sent earlier are lost), then speaks
//! [`gauntlet_wire`] frames, strictly request → response.

mod elf;
mod error;
mod firmware;
mod probe;
mod qemu;
mod uart;

pub use elf::elf_sizes;
pub use error::McuError;
pub use firmware::{
    DEBIAN_CARGO, Firmware, TOOLCHAIN_INSTALL, build_firmware, firmware_dir, prebuilt_firmware,
};
pub use probe::{DebugProbe, FakeProbe, ProbeCall, ProbeRsProbe, open_probe};
pub use qemu::{QEMU_SYSTEM_ARM, QemuSession};
pub use uart::{open_uart, wait_for_ready};

/// Largest encoded request frame the firmware accepts; owned by the wire crate, which the
/// firmware reads it from.
pub use gauntlet_wire::FIRMWARE_MAX_REQUEST_BYTES as FIRMWARE_MAX_FRAME_BYTES;

/// Windows of `input_len` floats that fit in one Infer request to the firmware (at least 1):
/// what the firmware's hello declares, for tests that talk to it without a session.
pub fn windows_per_request(input_len: usize) -> usize {
    gauntlet_wire::FIRMWARE_CAPABILITIES.windows_per_request(input_len)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum McuBoard {
    /// QEMU's `netduinoplus2` machine (STM32F405, USART1).
    Netduinoplus2,
    /// ST NUCLEO-F446RE (USART2 on the ST-LINK virtual COM port).
    NucleoF446re,
}

impl McuBoard {
    pub const ALL: [McuBoard; 2] = [McuBoard::Netduinoplus2, McuBoard::NucleoF446re];

    /// The board QEMU emulates as `machine`, if the firmware supports it.
    pub fn for_qemu_machine(machine: &str) -> Option<McuBoard> {
        Self::ALL
            .into_iter()
            .find(|b| b.qemu_machine() == Some(machine))
    }

    /// The board carrying `chip` (a probe-rs target name, any case), if the firmware supports it.
    pub fn for_chip(chip: &str) -> Option<McuBoard> {
        Self::ALL
            .into_iter()
            .find(|b| b.probe_chip().is_some_and(|c| c.eq_ignore_ascii_case(chip)))
    }

    /// The firmware's cargo feature that selects this board's module.
    pub fn cargo_feature(self) -> &'static str {
        match self {
            McuBoard::Netduinoplus2 => "netduinoplus2",
            McuBoard::NucleoF446re => "nucleo-f446re",
        }
    }

    /// The `-M` machine for boards QEMU emulates.
    pub fn qemu_machine(self) -> Option<&'static str> {
        match self {
            McuBoard::Netduinoplus2 => Some("netduinoplus2"),
            McuBoard::NucleoF446re => None,
        }
    }

    /// probe-rs chip name for real boards.
    pub fn probe_chip(self) -> Option<&'static str> {
        match self {
            McuBoard::Netduinoplus2 => None,
            McuBoard::NucleoF446re => Some("STM32F446RETx"),
        }
    }

    /// UART rate the firmware programs (QEMU ignores it).
    pub fn uart_baud(self) -> u32 {
        match self {
            McuBoard::Netduinoplus2 => 115_200,
            McuBoard::NucleoF446re => 921_600,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boards_are_found_by_qemu_machine_and_by_chip() {
        assert_eq!(
            McuBoard::for_qemu_machine("netduinoplus2"),
            Some(McuBoard::Netduinoplus2)
        );
        assert_eq!(McuBoard::for_qemu_machine("mps2-an386"), None);
        assert_eq!(
            McuBoard::for_chip("stm32f446retx"),
            Some(McuBoard::NucleoF446re)
        );
        assert_eq!(McuBoard::for_chip("STM32F405RGTx"), None);
    }

    #[test]
    fn a_full_request_of_cwru_windows_fits_the_firmware_frame() {
        let windows = windows_per_request(1024);
        assert!(windows >= 1);
        let request = gauntlet_wire::Request::Infer(gauntlet_wire::InferRequest {
            slot: 0,
            seq: u32::MAX,
            window_len: 1024,
            data: vec![f32::MIN; windows * 1024],
        });
        let mut frame = Vec::new();
        gauntlet_wire::encode_frame(&request, &mut frame);
        assert!(
            frame.len() <= FIRMWARE_MAX_FRAME_BYTES,
            "{} bytes",
            frame.len()
        );
        let one_more = gauntlet_wire::Request::Infer(gauntlet_wire::InferRequest {
            slot: 0,
            seq: 0,
            window_len: 1024,
            data: vec![0.5; (windows + 1) * 1024],
        });
        frame.clear();
        gauntlet_wire::encode_frame(&one_more, &mut frame);
        assert!(
            frame.len() > FIRMWARE_MAX_FRAME_BYTES,
            "batch size is not the largest that fits"
        );
    }
}
