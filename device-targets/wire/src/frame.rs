//! Framing: `COBS(postcard(message) ‖ CRC-32(postcard(message)) LE) 0x00`.
//!
//! COBS removes every zero byte from the payload so `0x00` always means "end of frame": after line
//! noise the decoder loses at most the damaged frame. The CRC catches the corruption COBS cannot.

use alloc::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Slice-by-16 on hosts: a batch request is hundreds of KiB, and a byte-at-a-time CRC was a
/// third of the agent's per-request overhead. On a microcontroller its 16 KiB table would cost
/// more flash than the model; one 1 KiB table is enough for a UART's pace.
#[cfg(not(target_os = "none"))]
type CrcTable = crc::Table<16>;
#[cfg(target_os = "none")]
type CrcTable = crc::Table<1>;

const CRC: crc::Crc<u32, CrcTable> = crc::Crc::<u32, CrcTable>::new(&crc::CRC_32_ISO_HDLC);
const CRC_LEN: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// More than the decoder's limit arrived before a delimiter; the bytes were discarded.
    TooLong {
        limit: usize,
    },
    /// The bytes between two delimiters are not valid COBS.
    Cobs,
    /// The frame is shorter than its checksum.
    Truncated,
    Crc {
        expected: u32,
        computed: u32,
    },
    /// The frame is intact but is not a message of the expected type.
    Decode,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::TooLong { limit } => write!(f, "frame longer than {limit} bytes"),
            FrameError::Cobs => f.write_str("frame is not valid COBS"),
            FrameError::Truncated => f.write_str("frame shorter than its checksum"),
            FrameError::Crc { expected, computed } => {
                write!(
                    f,
                    "frame checksum {computed:#010x} does not match {expected:#010x}"
                )
            }
            FrameError::Decode => f.write_str("frame does not hold a known message"),
        }
    }
}

impl core::error::Error for FrameError {}

/// Appends one framed message to `out`.
pub fn encode_frame<T: Serialize>(message: &T, out: &mut Vec<u8>) {
    let mut payload =
        postcard::to_allocvec(message).expect("postcard serialises wire messages into a Vec");
    let crc = CRC.checksum(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    cobs_encode(&payload, out);
    out.push(0);
}

/// Longest COBS block: a code byte of 0xFF carries 254 bytes and no implied zero.
const COBS_BLOCK: usize = 254;

/// COBS, a block at a time: each block is a code byte (one more than the bytes that follow it)
/// and the bytes up to the next zero, which the code implies. Block copies rather than a byte
/// loop: a batch request is hundreds of KiB.
fn cobs_encode(mut rest: &[u8], out: &mut Vec<u8>) {
    out.reserve(rest.len() + rest.len() / COBS_BLOCK + 2);
    loop {
        let window = &rest[..rest.len().min(COBS_BLOCK)];
        match window.iter().position(|&b| b == 0) {
            Some(n) => {
                out.push(n as u8 + 1);
                out.extend_from_slice(&rest[..n]);
                rest = &rest[n + 1..];
            }
            None if rest.len() >= COBS_BLOCK => {
                out.push(0xFF);
                out.extend_from_slice(window);
                rest = &rest[COBS_BLOCK..];
                if rest.is_empty() {
                    return;
                }
            }
            None => {
                out.push(rest.len() as u8 + 1);
                out.extend_from_slice(rest);
                return;
            }
        }
    }
}

/// Undoes [`cobs_encode`] in place and answers the decoded length. `frame` holds no zero byte
/// (the decoder splits frames at them), so only a block running past the end is malformed.
fn cobs_decode_in_place(frame: &mut [u8]) -> Result<usize, FrameError> {
    let (mut read, mut write) = (0, 0);
    while read < frame.len() {
        let code = usize::from(frame[read]);
        let (start, end) = (read + 1, read + code);
        if code == 0 || end > frame.len() {
            return Err(FrameError::Cobs);
        }
        // `write` never passes `read`, so the copy only moves bytes towards the front.
        frame.copy_within(start..end, write);
        write += code - 1;
        read = end;
        if code != 0xFF && read < frame.len() {
            frame[write] = 0;
            write += 1;
        }
    }
    Ok(write)
}

/// Accumulates bytes from a stream and yields whole frames. Never panics on any input.
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a delimiter.
    scanned: usize,
    limit: usize,
    /// Dropping an over-long frame until its delimiter arrives.
    discarding: bool,
}

impl FrameDecoder {
    /// `limit` bounds one encoded frame, so a stream without delimiters cannot exhaust memory.
    pub fn new(limit: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            scanned: 0,
            limit,
            discarding: false,
        }
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet part of a complete frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame decoded as `T`, an error for a damaged frame (which is consumed),
    /// or `None` when more bytes are needed.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Option<Result<T, FrameError>> {
        loop {
            let Some(end) = self.buf[self.scanned..].iter().position(|&b| b == 0) else {
                self.scanned = self.buf.len();
                if self.scanned > self.limit {
                    self.buf.clear();
                    self.scanned = 0;
                    if !self.discarding {
                        self.discarding = true;
                        return Some(Err(FrameError::TooLong { limit: self.limit }));
                    }
                }
                return None;
            };
            let end = self.scanned + end;
            self.scanned = 0;
            // Decoded where it lies, then dropped with its delimiter: no copy of the frame.
            let outcome = if core::mem::take(&mut self.discarding) || end == 0 {
                // The tail of an over-long frame, or consecutive delimiters (a sender may emit
                // one to flush line noise).
                None
            } else if end > self.limit {
                Some(Err(FrameError::TooLong { limit: self.limit }))
            } else {
                Some(decode_payload(&mut self.buf[..end]))
            };
            self.buf.drain(..=end);
            if outcome.is_some() {
                return outcome;
            }
        }
    }
}

fn decode_payload<T: DeserializeOwned>(frame: &mut [u8]) -> Result<T, FrameError> {
    let len = cobs_decode_in_place(frame)?;
    let frame = &frame[..len];
    if frame.len() < CRC_LEN {
        return Err(FrameError::Truncated);
    }
    let (payload, crc_bytes) = frame.split_at(frame.len() - CRC_LEN);
    let expected = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    let computed = CRC.checksum(payload);
    if expected != computed {
        return Err(FrameError::Crc { expected, computed });
    }
    let (message, rest) = postcard::take_from_bytes(payload).map_err(|_| FrameError::Decode)?;
    if !rest.is_empty() {
        return Err(FrameError::Decode);
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InferRequest, Request};
    use alloc::vec;

    fn infer(seq: u32, data: Vec<f32>) -> Request {
        Request::Infer(InferRequest {
            slot: 0,
            seq,
            window_len: data.len() as u32,
            data,
        })
    }

    fn cobs(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        cobs_encode(bytes, &mut out);
        out
    }

    #[test]
    fn cobs_matches_the_published_examples() {
        // Cheshire & Baker's examples, as Wikipedia lists them (without the frame delimiter).
        assert_eq!(cobs(&[]), [0x01]);
        assert_eq!(cobs(&[0x00]), [0x01, 0x01]);
        assert_eq!(cobs(&[0x00, 0x00]), [0x01, 0x01, 0x01]);
        assert_eq!(
            cobs(&[0x11, 0x22, 0x00, 0x33]),
            [0x03, 0x11, 0x22, 0x02, 0x33]
        );
        let run: Vec<u8> = (1..=254).collect();
        assert_eq!(cobs(&run), [&[0xFF][..], &run].concat());
        let zero_first: Vec<u8> = (0..=254).collect();
        assert_eq!(cobs(&zero_first), [&[0x01, 0xFF][..], &run].concat());
        let longer: Vec<u8> = (1..=255).collect();
        assert_eq!(cobs(&longer), [&[0xFF][..], &run, &[0x02, 0xFF]].concat());
    }

    #[test]
    fn cobs_round_trips_every_length_and_zero_spacing_around_block_edges() {
        for len in 0..=600 {
            for spacing in [0, 1, 2, 253, 254, 255, 256] {
                let data: Vec<u8> = (0..len)
                    .map(|i| match spacing {
                        0 => 0x5A,
                        s if i % s == s - 1 => 0,
                        _ => (i % 251 + 1) as u8,
                    })
                    .collect();
                let mut wire = cobs(&data);
                assert!(!wire.contains(&0), "len {len} spacing {spacing}");
                let n = cobs_decode_in_place(&mut wire).unwrap();
                assert_eq!(&wire[..n], &data[..], "len {len} spacing {spacing}");
            }
        }
    }

    #[test]
    fn round_trips_a_message_with_zero_bytes() {
        let message = infer(0, vec![0.0, -0.0, 1.5, f32::MAX]);
        let mut wire = Vec::new();
        encode_frame(&message, &mut wire);
        assert_eq!(
            wire.iter().filter(|&&b| b == 0).count(),
            1,
            "only the delimiter is zero"
        );
        let mut decoder = FrameDecoder::new(1024);
        decoder.extend(&wire);
        assert_eq!(decoder.next_message::<Request>(), Some(Ok(message)));
        assert_eq!(decoder.next_message::<Request>(), None);
    }

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let mut wire = Vec::new();
        encode_frame(&infer(1, vec![1.0; 300]), &mut wire);
        encode_frame(&infer(2, vec![2.0; 3]), &mut wire);
        let mut decoder = FrameDecoder::new(4096);
        let mut seqs = Vec::new();
        for chunk in wire.chunks(7) {
            decoder.extend(chunk);
            while let Some(message) = decoder.next_message::<Request>() {
                match message.unwrap() {
                    Request::Infer(r) => seqs.push(r.seq),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(seqs, [1, 2]);
    }

    #[test]
    fn a_flipped_bit_is_caught_and_the_next_frame_survives() {
        let mut wire = Vec::new();
        encode_frame(&infer(1, vec![3.25; 8]), &mut wire);
        let first_len = wire.len();
        encode_frame(&infer(2, vec![4.5; 8]), &mut wire);
        wire[first_len / 2] ^= 0x10;
        let mut decoder = FrameDecoder::new(4096);
        decoder.extend(&wire);
        assert!(matches!(
            decoder.next_message::<Request>(),
            Some(Err(FrameError::Crc { .. }
                | FrameError::Cobs
                | FrameError::Decode))
        ));
        assert_eq!(
            decoder.next_message::<Request>(),
            Some(Ok(infer(2, vec![4.5; 8])))
        );
    }

    #[test]
    fn an_endless_frame_is_dropped_once_and_decoding_resumes() {
        let mut decoder = FrameDecoder::new(64);
        decoder.extend(&[0x55; 100]);
        assert_eq!(
            decoder.next_message::<Request>(),
            Some(Err(FrameError::TooLong { limit: 64 }))
        );
        decoder.extend(&[0x55; 100]);
        assert_eq!(decoder.next_message::<Request>(), None, "reported once");
        let mut wire = vec![0x55, 0x00];
        encode_frame(&Request::Memory, &mut wire);
        decoder.extend(&wire);
        assert_eq!(decoder.next_message::<Request>(), Some(Ok(Request::Memory)));
        assert!(decoder.pending() == 0);
    }
}
