//! The decoder faces raw UART noise: any byte sequence must yield frames or errors, never a panic,
//! and valid frames after garbage must still decode.

use gauntlet_wire::{FrameDecoder, InferRequest, InferResponse, Request, Response, encode_frame};
use proptest::prelude::*;

fn request_strategy() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<u16>(), proptest::option::of(".{0,12}")).prop_map(|(v, token)| Request::Hello {
            protocol_version: v,
            token
        }),
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(offset, bytes)| Request::LoadChunk { offset, bytes }),
        (
            any::<u32>(),
            1u32..8,
            proptest::collection::vec(any::<f32>(), 0..64)
        )
            .prop_map(|(seq, window_len, data)| Request::Infer(InferRequest {
                slot: 0,
                seq,
                window_len,
                data
            })),
        Just(Request::Memory),
        Just(Request::MachineState),
        Just(Request::Shutdown),
        Just(Request::EndSession),
    ]
}

fn same(a: &Request, b: &Request) -> bool {
    // NaN payloads round-trip bit for bit but are not `==`; compare encodings instead.
    let (mut x, mut y) = (Vec::new(), Vec::new());
    encode_frame(a, &mut x);
    encode_frame(b, &mut y);
    x == y
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(noise in proptest::collection::vec(any::<u8>(), 0..2048), limit in 1usize..512) {
        let mut decoder = FrameDecoder::new(limit);
        decoder.extend(&noise);
        let mut steps = 0;
        while let Some(result) = decoder.next_message::<Request>() {
            let _ = result;
            steps += 1;
            prop_assert!(steps <= noise.len() + 1, "decoder must make progress");
        }
        let mut decoder = FrameDecoder::new(limit);
        decoder.extend(&noise);
        while decoder.next_message::<Response>().is_some() {}
    }

    #[test]
    fn messages_round_trip_after_garbage(garbage in proptest::collection::vec(any::<u8>(), 0..256), messages in proptest::collection::vec(request_strategy(), 1..6), chunk in 1usize..97) {
        let mut wire = garbage.clone();
        // A delimiter ends whatever the garbage started, as a sender does after a reset.
        wire.push(0);
        for m in &messages {
            encode_frame(m, &mut wire);
        }
        let mut decoder = FrameDecoder::new(1 << 16);
        let mut decoded = Vec::new();
        for piece in wire.chunks(chunk) {
            decoder.extend(piece);
            while let Some(result) = decoder.next_message::<Request>() {
                if let Ok(m) = result {
                    decoded.push(m);
                }
            }
        }
        // Garbage can, rarely, itself be a valid frame: the sent messages must be the tail.
        prop_assert!(decoded.len() >= messages.len());
        let tail = &decoded[decoded.len() - messages.len()..];
        for (a, b) in tail.iter().zip(&messages) {
            prop_assert!(same(a, b), "{a:?} != {b:?}");
        }
    }

    #[test]
    fn single_byte_corruption_is_never_accepted_as_a_different_message(seq in any::<u32>(), data in proptest::collection::vec(-1e3f32..1e3, 1..32), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let sent = Response::Outputs(InferResponse { seq, output_len: data.len() as u32, outputs: data.clone(), device_time_ns: vec![7; 1] });
        let mut wire = Vec::new();
        encode_frame(&sent, &mut wire);
        let i = at.index(wire.len() - 1);
        wire[i] ^= flip;
        let mut decoder = FrameDecoder::new(1 << 16);
        decoder.extend(&wire);
        while let Some(result) = decoder.next_message::<Response>() {
            if let Ok(received) = result {
                prop_assert_eq!(received, sent.clone());
            }
        }
    }
}
