//! Gauntlet's wire protocol, shared by the host and every device (Linux agent, MCU firmware).
//!
//! A conversation is strictly request → response, host first: `Hello`, then a model load in
//! chunks checked by SHA-256, then inference requests carrying one or more input windows, then
//! `EndSession` (the device stays up) or `Shutdown` (it stops). Every message travels in one frame
//! (see [`frame`]) built to survive a noisy UART: a corrupted frame is detected by its CRC and
//! dropped, and the decoder resynchronises on the next delimiter.
#![no_std]

extern crate alloc;

pub mod frame;
mod message;

pub use frame::{FrameDecoder, FrameError, encode_frame};
pub use message::*;

/// Bumped on every incompatible change to [`Request`] or [`Response`]. Version 2: `EndSession`
/// ends a session without stopping the agent, and nothing is obeyed before an accepted `Hello`.
/// Version 3: the agent's hello lists its runtimes and what each one's check found. Version 4:
/// the hello declares the device's capabilities. Version 5: window data travels as
/// little-endian bytes. Version 6: `MachineState` asks a device with an operating system (its
/// capabilities say `machine_state`) for load, steal time, clocks, throttling and temperature.
/// Version 7: the board facts carry the CPU extensions that pick int8 and fp16 kernels.
pub const PROTOCOL_VERSION: u16 = 7;

/// Largest encoded request frame the STM32 firmware accepts: four 1024-float windows plus
/// framing. The firmware sizes its receive buffer with it and declares it in its hello.
pub const FIRMWARE_MAX_REQUEST_BYTES: usize = 16 * 1024 + 256;

/// What the STM32 firmware declares in its hello.
pub const FIRMWARE_CAPABILITIES: Capabilities = Capabilities {
    max_request_bytes: FIRMWARE_MAX_REQUEST_BYTES as u32,
    // The UART is read only between requests: a second one sent during an inference would
    // overrun a real USART's one-byte receive register.
    pipeline_depth: 1,
    models: ModelSource::BuiltIn,
    machine_state: false,
};

/// Largest model chunk a host sends in one [`Request::LoadChunk`]; small enough for an MCU's
/// receive buffer, large enough that a Linux agent's load is not dominated by round trips.
pub const LOAD_CHUNK_BYTES: usize = 16 * 1024;

/// Inference runtimes a build may name; the first is the default.
pub const RUNTIME_NAMES: &[&str] = &["tract", "onnxruntime"];
/// onnxruntime graph optimisation levels, as scenarios write them.
pub const GRAPH_OPTIMIZATIONS: &[&str] = &["disabled", "basic", "extended", "all"];
/// Execution providers a build may ask for, short names of onnxruntime's providers.
pub const EXECUTION_PROVIDERS: &[&str] = &["cpu", "cuda", "tensorrt", "xnnpack", "acl"];
