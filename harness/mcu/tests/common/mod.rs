//! Shared by the QEMU tests: compiled reference models, firmware builds cached under the
//! target folder, and a minimal wire-protocol client.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gauntlet_compile::{CompileOptions, OutputSelector, compile_onnx};
use gauntlet_mcu::{
    FIRMWARE_MAX_FRAME_BYTES, Firmware, McuBoard, QEMU_SYSTEM_ARM, QemuSession, build_firmware,
};
use gauntlet_wire::{FrameDecoder, Request, Response, encode_frame};

pub const TIMEOUT: Duration = Duration::from_secs(120);
pub const WINDOW: usize = 1024;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Firmware builds outlive one test run so only the first run pays the clean build.
pub fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    // The same folder `gauntlet run` uses in the CLI tests (GAUNTLET_CACHE_DIR), so the clean
    // firmware build is paid once per suite.
    target.join("gauntlet-cache/firmware")
}

/// `cwru_cnn_<variant>.onnx` compiled for the MCU engine.
pub fn compiled(variant: &str) -> Vec<u8> {
    let path = repo().join(format!("scenarios/models/cwru_cnn/cwru_cnn_{variant}.onnx"));
    let onnx = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let options = CompileOptions {
        input_shape: vec![1, 1, WINDOW],
        output: OutputSelector::Index(0),
    };
    compile_onnx(&onnx, &options)
        .unwrap_or_else(|e| panic!("compile {}: {e}", path.display()))
        .bytes
}

/// Builds are serialised: they share one cargo target folder, and two test threads starting a
/// clean build at once would only wait on cargo's lock.
pub fn firmware(board: McuBoard, blob: &[u8]) -> Firmware {
    static BUILDS: OnceLock<Mutex<()>> = OnceLock::new();
    let _one_at_a_time = BUILDS.get_or_init(|| Mutex::new(())).lock().unwrap();
    build_firmware(board, blob, &cache_dir()).unwrap_or_else(|e| panic!("failed to {e}"))
}

pub fn held_out_windows(count: usize) -> Vec<f32> {
    let path = repo().join("scenarios/models/cwru_cnn/testdata/input.f32");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    // Spread over the classes: the windows are stored class by class, 34 per class.
    let total = bytes.len() / 4 / WINDOW;
    (0..count)
        .flat_map(|i| {
            let w = (i * 34 + i % 34) % total;
            bytes[w * WINDOW * 4..(w + 1) * WINDOW * 4]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The engine on the host: the same code the firmware runs, as reference.
pub fn host_outputs(blob: &[u8], windows: &[f32]) -> Vec<f32> {
    let model = gauntlet_tinyml::Model::parse(blob).expect("compiled model parses");
    let mut arena = vec![0u8; model.arena_len()];
    let mut out = vec![0.0; windows.len() / model.input_len() * model.output_len()];
    for (window, scores) in windows
        .chunks_exact(model.input_len())
        .zip(out.chunks_exact_mut(model.output_len()))
    {
        model
            .run(window, scores, &mut arena)
            .expect("host inference");
    }
    out
}

pub fn launch(fw: &Firmware) -> QemuSession {
    QemuSession::launch(
        Path::new(QEMU_SYSTEM_ARM),
        "netduinoplus2",
        &fw.elf,
        TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("failed to {e}"))
}

/// Request → response over the firmware's UART.
pub struct Link {
    reader: UnixStream,
    writer: UnixStream,
    decoder: FrameDecoder,
    buf: Vec<u8>,
}

impl Link {
    pub fn new(session: &QemuSession) -> Self {
        let (reader, writer) = session.stream().unwrap();
        Link {
            reader,
            writer,
            decoder: FrameDecoder::new(1 << 20),
            buf: vec![0; 64 * 1024],
        }
    }

    pub fn call(&mut self, request: &Request) -> Response {
        let mut frame = Vec::new();
        encode_frame(request, &mut frame);
        assert!(
            frame.len() <= FIRMWARE_MAX_FRAME_BYTES,
            "request of {} bytes",
            frame.len()
        );
        self.send_raw(&frame)
    }

    /// Sends bytes as they are and returns the next response.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Response {
        self.send_raw_no_reply(bytes);
        self.receive()
    }

    pub fn send_raw_no_reply(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    pub fn receive(&mut self) -> Response {
        loop {
            if let Some(message) = self.decoder.next_message::<Response>() {
                return message.unwrap();
            }
            let n = self.reader.read(&mut self.buf).unwrap();
            assert!(n > 0, "QEMU closed the UART");
            self.decoder.extend(&self.buf[..n]);
        }
    }
}
