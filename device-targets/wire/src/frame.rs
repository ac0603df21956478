//! Framing: `COBS(postcard(message) ‖ CRC-32(postcard(message)) LE) 0x00`.
//!
//! COBS removes every zero byte from the payload so `0x00` always means "end of frame": after line
//! noise the decoder loses at most the damaged frame. The CRC catches the corruption COBS cannot.

use alloc::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// CRC-32/ISO-HDLC of `bytes`. Hosts use the CPU's carry-less multiply: a batch request is
/// hundreds of KiB, and even a slice-by-16 table CRC was a quarter of the link's cost per window.
/// A microcontroller keeps one 1 KiB table, enough for a UART's pace and cheap in flash.
#[cfg(not(target_os = "none"))]
fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(target_os = "none")]
fn checksum(bytes: &[u8]) -> u32 {
    const CRC: crc::Crc<u32, crc::Table<1>> =
        crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);
    CRC.checksum(bytes)
}

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
    let crc = checksum(&payload);
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
        match memchr::memchr(0, window) {
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
///
/// Linear in its input: each byte is copied in once, searched for a delimiter once and moved at
/// most once when the buffer is compacted (only once consumed bytes are at least half of it), and
/// a frame is decoded where it lies. A frame still open when more than `limit` bytes have arrived
/// is dropped at once, so between reads the decoder holds at most `limit` bytes plus the complete
/// frames of the last [`extend`](FrameDecoder::extend) not yet taken.
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` before this are consumed.
    start: usize,
    /// Bytes of `buf` before this have been searched for a delimiter.
    scanned: usize,
    /// Bytes at the end of `buf` after its last delimiter: the frame still arriving.
    open: usize,
    limit: usize,
    /// Dropping an over-long frame until its delimiter arrives.
    discarding: bool,
    /// An over-long frame was dropped and not yet reported.
    overflowed: bool,
    examined: u64,
}

impl FrameDecoder {
    /// `limit` bounds one encoded frame, so a stream without delimiters cannot exhaust memory.
    pub fn new(limit: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            open: 0,
            limit,
            discarding: false,
            overflowed: false,
            examined: 0,
        }
    }

    pub fn extend(&mut self, mut bytes: &[u8]) {
        if self.discarding {
            let Some(end) = memchr::memchr(0, bytes) else {
                self.examined += bytes.len() as u64;
                return;
            };
            self.examined += end as u64 + 1;
            self.discarding = false;
            bytes = &bytes[end + 1..];
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            (self.start, self.scanned) = (0, 0);
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            // Moves no more bytes than were consumed since the last move.
            self.examined += (self.buf.len() - self.start) as u64;
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        // From the end: only the bytes after the last delimiter are examined here.
        let last = memchr::memrchr(0, bytes);
        let tail = last.map_or(bytes.len(), |i| bytes.len() - i - 1);
        self.examined += tail as u64 + u64::from(last.is_some());
        let open = if last.is_some() {
            tail
        } else {
            self.open + tail
        };
        if open <= self.limit {
            self.examined += bytes.len() as u64;
            self.buf.extend_from_slice(bytes);
            self.open = open;
            return;
        }
        // The frame still arriving is over-long: keep what precedes it, drop it to its delimiter.
        match last {
            Some(i) => self.buf.extend_from_slice(&bytes[..=i]),
            None => self.buf.truncate(self.buf.len() - self.open),
        }
        self.examined += last.map_or(0, |i| i as u64 + 1);
        self.scanned = self.scanned.min(self.buf.len());
        self.open = 0;
        self.discarding = true;
        self.overflowed = true;
    }

    /// Changes the bound on one frame from the next byte on, e.g. raised once a peer is trusted.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Bytes buffered and not yet taken as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes the decoder has copied, searched, moved or decoded so far: a deterministic measure of
    /// its work, which its property test bounds per input byte.
    pub fn bytes_examined(&self) -> u64 {
        self.examined
    }

    /// The next complete frame decoded as `T`, an error for a damaged frame (which is consumed),
    /// or `None` when more bytes are needed.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Option<Result<T, FrameError>> {
        loop {
            let from = self.scanned.max(self.start);
            let Some(found) = memchr::memchr(0, &self.buf[from..]) else {
                self.examined += (self.buf.len() - from) as u64;
                self.scanned = self.buf.len();
                // Reported after the complete frames that arrived before it.
                return core::mem::take(&mut self.overflowed)
                    .then_some(Err(FrameError::TooLong { limit: self.limit }));
            };
            self.examined += found as u64 + 1;
            let (begin, end) = (self.start, from + found);
            (self.start, self.scanned) = (end + 1, end + 1);
            // Consecutive delimiters: a sender may emit one to flush line noise.
            if end == begin {
                continue;
            }
            if end - begin > self.limit {
                return Some(Err(FrameError::TooLong { limit: self.limit }));
            }
            self.examined += (end - begin) as u64;
            // Decoded where it lies: no copy of the frame.
            return Some(decode_payload(&mut self.buf[begin..end]));
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
    let computed = checksum(payload);
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

    /// The catalogue's check value: hosts and boards compute the same CRC-32 by different means.
    #[test]
    fn checksum_is_crc32_iso_hdlc() {
        assert_eq!(checksum(b"123456789"), 0xCBF4_3926);
    }

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
