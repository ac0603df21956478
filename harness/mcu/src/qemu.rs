//! The firmware on QEMU's emulated STM32F405, reached through a unix-socket chardev.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{McuError, wait_for_ready};

pub const QEMU_SYSTEM_ARM: &str = "qemu-system-arm";
const POLL: Duration = Duration::from_millis(5);

/// A running QEMU with the firmware past its READY line.
///
/// `-icount shift=0` makes guest time the instruction count (1 ns per instruction), so the
/// firmware's SysTick times repeat across runs whatever the host's load.
pub struct QemuSession {
    child: Child,
    uart: UnixStream,
    stderr_path: PathBuf,
    // Holds the socket and the stderr log; removed when the session ends.
    _dir: tempfile::TempDir,
}

impl QemuSession {
    /// Starts `qemu` on `machine` with `elf`, connects to its UART and waits for READY.
    /// `timeout` bounds the start and every later read from the UART.
    pub fn launch(
        qemu: &Path,
        machine: &str,
        elf: &Path,
        timeout: Duration,
    ) -> Result<Self, McuError> {
        let start = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("gauntlet-qemu")
            .tempdir()
            .map_err(McuError::io("create a folder for", std::env::temp_dir()))?;
        let socket = dir.path().join("uart.sock");
        let stderr_path = dir.path().join("qemu.stderr");
        let stderr = File::create(&stderr_path).map_err(McuError::io("create", &stderr_path))?;
        let mut chardev = std::ffi::OsString::from("socket,id=u0,server=on,wait=on,path=");
        chardev.push(&socket);
        let mut child = Command::new(qemu)
            .args([
                "-M",
                machine,
                "-nographic",
                "-monitor",
                "none",
                "-icount",
                "shift=0",
            ])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-chardev")
            .arg(chardev)
            .args(["-serial", "chardev:u0", "-kernel"])
            .arg(elf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|source| McuError::Spawn {
                program: qemu.to_path_buf(),
                source,
            })?;
        let uart = match connect(&mut child, &socket, start, timeout) {
            Ok(uart) => uart,
            Err(reason) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(McuError::Qemu {
                    reason,
                    stderr_tail: stderr_tail(&stderr_path),
                });
            }
        };
        let mut session = QemuSession {
            child,
            uart,
            stderr_path,
            _dir: dir,
        };
        session
            .uart
            .set_read_timeout(Some(timeout))
            .map_err(McuError::io("set a read timeout on", &socket))?;
        let left = timeout.saturating_sub(start.elapsed());
        wait_for_ready(&mut session.uart, left).map_err(|e| session.with_stderr(e))?;
        Ok(session)
    }

    /// The firmware's UART, as a reader and a writer over the same socket.
    pub fn stream(&self) -> Result<(UnixStream, UnixStream), McuError> {
        let clone = || {
            self.uart
                .try_clone()
                .map_err(McuError::io("clone the socket", "QEMU UART"))
        };
        Ok((clone()?, clone()?))
    }

    /// Waits for QEMU to exit (the firmware ends it after `Shutdown`) and checks its status.
    pub fn finish(mut self, timeout: Duration) -> Result<ExitStatus, McuError> {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(status),
                Ok(Some(status)) => return Err(self.failure(format!("QEMU exited with {status}"))),
                Ok(None) if start.elapsed() > timeout => {
                    return Err(self.failure(format!(
                        "QEMU still running after {} ms",
                        timeout.as_millis()
                    )));
                }
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => return Err(self.failure(format!("waiting for QEMU: {e}"))),
            }
        }
    }

    fn failure(&self, reason: String) -> McuError {
        McuError::Qemu {
            reason,
            stderr_tail: stderr_tail(&self.stderr_path),
        }
    }

    fn with_stderr(&self, error: McuError) -> McuError {
        self.failure(error.to_string())
    }
}

impl Drop for QemuSession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn connect(
    child: &mut Child,
    socket: &Path,
    start: Instant,
    timeout: Duration,
) -> Result<UnixStream, String> {
    loop {
        if let Ok(stream) = UnixStream::connect(socket) {
            return Ok(stream);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("QEMU exited with {status} before opening its UART"));
        }
        if start.elapsed() > timeout {
            return Err(format!("QEMU did not open {} in time", socket.display()));
        }
        std::thread::sleep(POLL);
    }
}

fn stderr_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
