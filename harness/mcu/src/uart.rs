//! The firmware's UART on a real board, and the READY handshake shared with QEMU sessions.

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use serialport::SerialPort;

use crate::McuError;

/// The line the firmware prints once its USART is enabled and before any frame.
const READY: &[u8] = b"READY gauntlet-stm32";
/// Boot noise tolerated before READY (e.g. a half-received line from a previous session).
const MAX_PREAMBLE_BYTES: usize = 4096;

/// Opens a board's UART (e.g. the ST-LINK virtual COM port) for the wire protocol. Reads time
/// out after `timeout`; open it before resetting the board, or the READY line is missed.
pub fn open_uart(
    path: &str,
    baud: u32,
    timeout: Duration,
) -> Result<Box<dyn SerialPort>, McuError> {
    serialport::new(path, baud)
        .timeout(timeout)
        .open()
        .map_err(|e| McuError::Serial {
            path: path.to_string(),
            baud,
            reason: e.to_string(),
        })
}

/// Reads up to and including the firmware's READY line, byte by byte so that nothing after
/// it is consumed. `port`'s own read timeout bounds each read; `timeout` bounds the whole wait.
pub fn wait_for_ready(port: &mut impl Read, timeout: Duration) -> Result<(), McuError> {
    let start = Instant::now();
    let not_ready = |reason: String| McuError::NotReady {
        waited_ms: start.elapsed().as_millis(),
        reason,
    };
    let mut seen = Vec::new();
    // The last complete line, so a failure shows e.g. the firmware's PANIC message.
    let mut last_line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if start.elapsed() > timeout {
            return Err(not_ready(format!(
                "timed out; last output: {}",
                printable(&last_line, &seen)
            )));
        }
        match port.read(&mut byte) {
            Ok(0) => {
                return Err(not_ready(format!(
                    "link closed; last output: {}",
                    printable(&last_line, &seen)
                )));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(not_ready(e.to_string())),
        }
        if byte[0] == b'\n' {
            if seen.windows(READY.len()).any(|w| w == READY) {
                return Ok(());
            }
            last_line = std::mem::take(&mut seen);
        } else {
            seen.push(byte[0]);
            if seen.len() > MAX_PREAMBLE_BYTES {
                return Err(not_ready(format!(
                    "no READY line in {MAX_PREAMBLE_BYTES} bytes"
                )));
            }
        }
    }
}

fn printable(last_line: &[u8], partial: &[u8]) -> String {
    let text = [last_line, partial].join(&b'|');
    String::from_utf8_lossy(&text).escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_after_noise_is_found_and_nothing_after_it_is_consumed() {
        let mut link: &[u8] = b"garbage\r\n\r\nREADY gauntlet-stm32\r\n\x05frame";
        wait_for_ready(&mut link, Duration::from_secs(5)).unwrap();
        assert_eq!(link, b"\x05frame");
    }

    #[test]
    fn a_link_that_closes_before_ready_says_what_it_saw() {
        let mut link: &[u8] = b"PANIC at src/main.rs\r\n";
        let err = wait_for_ready(&mut link, Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(err.contains("link closed"), "{err}");
        assert!(err.contains("PANIC at src/main.rs"), "{err}");
    }

    #[test]
    fn a_missing_serial_port_is_named() {
        let err = open_uart("/dev/does-not-exist", 921_600, Duration::from_millis(10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/does-not-exist"), "{err}");
    }
}
