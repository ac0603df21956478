//! Figures for issue 7's closing note, printed rather than asserted:
//! `cargo test -p gauntlet-mcu --test measure_stm32 -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::*;
use gauntlet_mcu::{McuBoard, windows_per_request};
use gauntlet_wire::{InferRequest, PROTOCOL_VERSION, Request, Response, encode_frame};

const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "measurement for the report; run explicitly"]
fn report_emulated_cost_sizes_and_uart_throughput() {
    for variant in ["fp32", "int8_qdq"] {
        let blob = compiled(variant);
        let fw = firmware(McuBoard::Netduinoplus2, &blob);
        let qemu = launch(&fw);
        let mut link = Link::new(&qemu);
        link.call(&Request::Hello {
            protocol_version: PROTOCOL_VERSION,
            token: None,
        });
        let Response::Loaded(loaded) = link.call(&Request::UseBuiltin {
            slot: 0,
            name: variant.into(),
        }) else {
            panic!("load")
        };
        let per_request = windows_per_request(WINDOW);
        let data = held_out_windows(per_request);
        let infer = |slot: u8| {
            Request::Infer(InferRequest {
                slot,
                seq: 0,
                window_len: WINDOW as u32,
                data: data.clone(),
            })
        };
        let Response::Outputs(out) = link.call(&infer(0)) else {
            panic!("infer")
        };
        let Response::Memory(memory) = link.call(&Request::Memory) else {
            panic!("memory")
        };

        // Throughput, interleaved so host load drifts hit both alike. Same bytes on the link
        // each time: the encoded Infer frame, or junk of its length that the firmware receives
        // byte by byte and drops at the delimiter (a corrupt frame, answered at once). The
        // streaming request names an empty slot, so the firmware decodes every float (COBS,
        // CRC, postcard into a Vec) and answers without computing.
        let mut frame = Vec::new();
        encode_frame(&infer(1), &mut frame);
        let junk: Vec<u8> = (0..frame.len() - 1)
            .map(|i| (i % 255) as u8 + 1)
            .chain([0])
            .collect();
        let payload = (data.len() * 4) as f64;
        let (mut raw, mut stream, mut with_compute) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            assert!(matches!(link.send_raw(&junk), Response::Error(_)));
            raw.push(junk.len() as f64 / t.elapsed().as_secs_f64());
            let t = Instant::now();
            assert!(matches!(link.send_raw(&frame), Response::Error(_)));
            stream.push(payload / t.elapsed().as_secs_f64());
            let t = Instant::now();
            assert!(matches!(link.call(&infer(0)), Response::Outputs(_)));
            with_compute.push(payload / t.elapsed().as_secs_f64());
        }
        link.call(&Request::Shutdown);
        qemu.finish(TIMEOUT).unwrap();

        let (raw, stream, with_compute) = (median(raw), median(stream), median(with_compute));
        let mean_ns = out.device_time_ns.iter().sum::<u64>() / out.device_time_ns.len() as u64;
        println!(
            "{variant}: blob {} B, arena {} B | flash {} B, static RAM {} B, heap after load {:?} B, \
             stack high-water {:?} B | emulated {} ns/inference (= instructions at -icount shift=0), \
             per window {:?} | link raw {:.1} KB/s, input streaming {:.1} KB/s ({:.0} %), \
             with compute {:.1} KB/s | frame {} B for {} windows",
            blob.len(),
            gauntlet_tinyml::Model::parse(&blob).unwrap().arena_len(),
            fw.flash_bytes,
            fw.static_ram_bytes,
            loaded.memory_after.heap_bytes,
            memory.stack_high_water_bytes,
            mean_ns,
            out.device_time_ns,
            raw / 1e3,
            stream / 1e3,
            100.0 * stream / raw,
            with_compute / 1e3,
            frame.len(),
            per_request,
        );
    }
}
