//! The firmware on QEMU's emulated STM32F405, end to end over the real wire protocol
//! (issue 7). Needs `qemu-system-arm` and Debian's Rust (see `gauntlet_mcu::TOOLCHAIN_INSTALL`).

mod common;

use common::*;
use gauntlet_mcu::{McuBoard, windows_per_request};
use gauntlet_wire::{
    ErrorKind, InferRequest, InferResponse, PROTOCOL_VERSION, Request, Response, TimingSource,
};

struct Session {
    outputs: Vec<f32>,
    device_time_ns: Vec<u64>,
    clock_hz: u32,
}

/// One whole session: Hello, UseBuiltin, Infer in full batches, Memory, Shutdown, QEMU's exit.
fn session(blob: &[u8], windows: &[f32]) -> Session {
    let fw = firmware(McuBoard::Netduinoplus2, blob);
    let qemu = launch(&fw);
    let mut link = Link::new(&qemu);

    let Response::Hello(hello) = link.call(&Request::Hello {
        protocol_version: PROTOCOL_VERSION,
        token: None,
    }) else {
        panic!("no Hello answer")
    };
    assert_eq!(hello.agent, "gauntlet-stm32");
    assert_eq!(hello.facts.arch, "thumbv7em");
    assert_eq!(
        hello.facts.cpu_model.as_deref(),
        Some("STM32F405 (QEMU netduinoplus2)")
    );
    assert_eq!(hello.timing, TimingSource::EmulatedTicks);
    let clock_hz = hello.facts.clock_hz.expect("the firmware knows its clock");

    let Response::Loaded(loaded) = link.call(&Request::UseBuiltin {
        slot: 0,
        name: "cwru_cnn".into(),
    }) else {
        panic!("model not loaded")
    };
    assert_eq!(loaded.input_len as usize, WINDOW);
    assert_eq!(loaded.output_len, 10);
    assert!(
        loaded.memory_after.heap_bytes > loaded.memory_before.heap_bytes,
        "arena not allocated"
    );

    let batch = windows_per_request(WINDOW) * WINDOW;
    let (mut outputs, mut device_time_ns) = (Vec::new(), Vec::new());
    for (seq, data) in windows.chunks(batch).enumerate() {
        let request = InferRequest {
            slot: 0,
            seq: seq as u32,
            window_len: WINDOW as u32,
            data: data.to_vec(),
        };
        let Response::Outputs(InferResponse {
            seq: answered,
            outputs: o,
            device_time_ns: t,
            ..
        }) = link.call(&Request::Infer(request))
        else {
            panic!("no outputs for batch {seq}")
        };
        assert_eq!(answered, seq as u32);
        assert_eq!(t.len(), data.len() / WINDOW);
        outputs.extend(o);
        device_time_ns.extend(t);
    }

    let Response::Memory(memory) = link.call(&Request::Memory) else {
        panic!("no memory figures")
    };
    let stack = memory.stack_high_water_bytes.expect("stack painting");
    assert!(stack > 0 && stack < 16 * 1024, "stack high-water {stack} B");
    assert!(memory.heap_bytes.is_some());

    assert_eq!(link.call(&Request::Shutdown), Response::Goodbye);
    qemu.finish(TIMEOUT)
        .unwrap_or_else(|e| panic!("failed to {e}"));
    Session {
        outputs,
        device_time_ns,
        clock_hz,
    }
}

fn check_variant(variant: &str) {
    let blob = compiled(variant);
    let windows = held_out_windows(2 * windows_per_request(WINDOW) + 1);
    let first = session(&blob, &windows);
    // Same engine code, same IEEE f32 operations in the same order: bit-identical scores.
    assert_eq!(
        first.outputs,
        host_outputs(&blob, &windows),
        "{variant}: device vs host engine"
    );
    assert!(first.device_time_ns.iter().all(|&t| t > 0));

    let second = session(&blob, &windows);
    // The same instructions repeat, but an inference's time may move by a few ticks: each SysTick
    // reading falls anywhere within a tick (±1), and the wrap interrupt (every 2^24 ticks, about
    // 10 instructions, under 2 ticks) lands inside some inferences and not others, depending on how
    // long the firmware polled its UART before.
    let tick_ns = 1_000_000_000u64.div_ceil(u64::from(first.clock_hz));
    let tolerance_ns = 3 * tick_ns;
    for (i, (a, b)) in first
        .device_time_ns
        .iter()
        .zip(&second.device_time_ns)
        .enumerate()
    {
        assert!(
            a.abs_diff(*b) <= tolerance_ns,
            "{variant} window {i}: {a} ns then {b} ns"
        );
    }
}

#[test]
fn fp32_cwru_cnn_runs_on_the_emulated_stm32f405_deterministically() {
    check_variant("fp32");
}

#[test]
fn int8_qdq_cwru_cnn_runs_on_the_emulated_stm32f405_deterministically() {
    check_variant("int8_qdq");
}

#[test]
fn the_firmware_refuses_what_it_cannot_do_and_keeps_serving() {
    let fw = firmware(McuBoard::Netduinoplus2, &compiled("fp32"));
    let qemu = launch(&fw);
    let mut link = Link::new(&qemu);
    let error_kind = |response: Response| match response {
        Response::Error(e) => e.kind,
        other => panic!("expected an error, got {other:?}"),
    };
    let infer = |window_len: u32, len: usize| {
        Request::Infer(InferRequest {
            slot: 0,
            seq: 1,
            window_len,
            data: vec![0.0; len],
        })
    };

    assert_eq!(
        error_kind(link.call(&Request::Hello {
            protocol_version: PROTOCOL_VERSION + 1,
            token: None
        })),
        ErrorKind::VersionMismatch {
            device: PROTOCOL_VERSION
        }
    );
    assert_eq!(
        error_kind(link.call(&infer(WINDOW as u32, WINDOW))),
        ErrorKind::NoModel
    );
    assert_eq!(
        error_kind(link.call(&Request::UseBuiltin {
            slot: 1,
            name: "x".into()
        })),
        ErrorKind::NoModel
    );
    assert_eq!(
        error_kind(link.call(&Request::LoadCommit)),
        ErrorKind::Protocol
    );
    assert!(matches!(
        link.call(&Request::UseBuiltin {
            slot: 0,
            name: "cwru".into()
        }),
        Response::Loaded(_)
    ));
    assert_eq!(
        error_kind(link.call(&infer(100, 100))),
        ErrorKind::ShapeMismatch {
            expected: WINDOW as u32,
            got: 100
        }
    );
    // A frame damaged on the line is answered, not fatal.
    let mut frame = Vec::new();
    gauntlet_wire::encode_frame(&Request::Memory, &mut frame);
    frame[1] ^= 0x40;
    assert_eq!(error_kind(link.send_raw(&frame)), ErrorKind::Protocol);
    // So is a frame longer than the firmware's receive limit, which must not exhaust its heap.
    let flood = vec![0x55u8; gauntlet_mcu::FIRMWARE_MAX_FRAME_BYTES + 100];
    assert_eq!(error_kind(link.send_raw(&flood)), ErrorKind::Protocol);
    link.send_raw_no_reply(&[0]);
    assert!(matches!(
        link.call(&infer(WINDOW as u32, WINDOW)),
        Response::Outputs(_)
    ));
    assert_eq!(link.call(&Request::Shutdown), Response::Goodbye);
    qemu.finish(TIMEOUT)
        .unwrap_or_else(|e| panic!("failed to {e}"));
}
