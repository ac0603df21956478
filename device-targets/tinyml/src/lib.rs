//! A `no_std`, allocation-free inference engine for microcontrollers, and its compact model format.
//!
//! Models are compiled from ONNX on the host by `gauntlet-compile`; this crate only reads and runs
//! them, so it builds for `thumbv7em-none-eabihf` and is tested on the host alike.
//!
//! # API (stable: the firmware codes against exactly this)
//! ```ignore
//! pub struct Model<'a> { /* borrows the model bytes; nothing is copied */ }
//! impl<'a> Model<'a> {
//!     /// Validates the whole blob once (header, sections, every op, every buffer and constant
//!     /// range); never panics, whatever the bytes.
//!     pub fn parse(bytes: &'a [u8]) -> Result<Model<'a>, FormatError>;
//!     pub fn input_len(&self) -> usize;   // f32 elements of one input window (batch 1)
//!     pub fn output_len(&self) -> usize;  // f32 elements of the selected output
//!     pub fn arena_len(&self) -> usize;   // scratch needed by `run`, in BYTES
//!     pub fn op_count(&self) -> usize;
//!     /// `arena` needs at least `arena_len()` bytes and no particular alignment.
//!     pub fn run(&self, input: &[f32], output: &mut [f32], arena: &mut [u8]) -> Result<(), RunError>;
//! }
//! pub enum FormatError { .. }  // Display + core::error::Error
//! pub enum RunError { InputLength { expected, got }, OutputLength { expected, got }, ArenaTooSmall { needed, got } }
//! ```
//! Usage on a board: `static ARENA: [u8; N]` sized from `arena_len()` (the harness reports it at
//! compile time), `include_bytes!` the blob, `Model::parse` once at boot, `run` per window.
//!
//! # Why bytes rather than typed slices
//! Every multi-byte value (f32 weights, i32 biases, activations in the arena) is read and written
//! with `from_le_bytes`/`to_le_bytes`. That keeps the crate free of `unsafe`, makes the blob
//! usable straight from flash at any base address (Cortex-M4 `LDR` tolerates unaligned words;
//! the format still aligns every f32/i32 constant to 4 bytes so the common case is aligned) and
//! fixes the byte order independently of the target.
//!
//! # Format (version 1, all integers little-endian u32 unless stated)
//! ```text
//! header:   magic "GTML" | version | total_len | section_count | section_count × (kind, offset, len)
//! META (1): input_len | output_len | arena_len | input_off | output_off | op_count
//! OPS  (2): op_count records, each: opcode | n_words | n_words field words (layouts in `format`)
//! CONST(3): raw constant bytes; ops reference them by byte offset from the section start
//! ```
//! Sections start 4-aligned; each kind appears exactly once. Activations live in the arena at
//! byte offsets chosen by the compiler's planner (f32 buffers 4-aligned).
//!
//! # Numerics
//! fp32 kernels accumulate in f32 in the order of the ONNX definition. int8 kernels follow TFLite
//! Micro / CMSIS-NN: int8 × int8 products summed in i32 with the input zero point subtracted,
//! i32 bias at scale `s_in·s_w[c]`, then requantised per output channel by a Q31 multiplier and a
//! shift (`requantize`): one 64-bit product and a single rounding, half toward +∞ (TFLite's
//! `TFLITE_SINGLE_ROUNDING` mode), then `+ out_zp` and clamping to `[act_min, act_max]` (which
//! is how a fused ReLU is expressed). `QuantizeLinear` at the graph input rounds half to even as
//! ONNX specifies. Elementwise int8 functions of one input (sigmoid, `c - x`, `x · c`, a change of
//! scale) are 256-entry tables the compiler computes from the exact ONNX float semantics; those
//! with a per-channel constant (a bias after an int8 MatMul) or of two int8 inputs dequantise,
//! compute and quantise in f32, as the ONNX graph itself does, so both agree with it bit for bit.
#![no_std]
#![forbid(unsafe_code)]

mod format;
mod kernels;

pub use format::{
    BinaryKind, FORMAT_VERSION, FormatError, MAGIC, NO_CONST, Opcode, SectionKind, UnaryKind,
};
pub use kernels::requantize;

use format::{Meta, Op, OpIter};

/// A validated model borrowing its bytes (e.g. straight from flash).
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    meta: Meta,
    ops: &'a [u8],
    consts: &'a [u8],
}

/// Why one inference could not run; the model itself was validated by [`Model::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunError {
    InputLength { expected: usize, got: usize },
    OutputLength { expected: usize, got: usize },
    ArenaTooSmall { needed: usize, got: usize },
}

impl core::fmt::Display for RunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RunError::InputLength { expected, got } => {
                write!(f, "input has {got} values but the model takes {expected}")
            }
            RunError::OutputLength { expected, got } => {
                write!(
                    f,
                    "output buffer has {got} values but the model produces {expected}"
                )
            }
            RunError::ArenaTooSmall { needed, got } => {
                write!(f, "arena has {got} bytes but the model needs {needed}")
            }
        }
    }
}

impl core::error::Error for RunError {}

impl<'a> Model<'a> {
    /// Checks header, sections and every op once, so `run` can trust them.
    pub fn parse(bytes: &'a [u8]) -> Result<Model<'a>, FormatError> {
        let (meta, ops, consts) = format::parse(bytes)?;
        Ok(Model { meta, ops, consts })
    }

    pub fn input_len(&self) -> usize {
        self.meta.input_len
    }

    pub fn output_len(&self) -> usize {
        self.meta.output_len
    }

    /// Scratch bytes `run` needs; any alignment will do.
    pub fn arena_len(&self) -> usize {
        self.meta.arena_len
    }

    pub fn op_count(&self) -> usize {
        self.meta.op_count
    }

    /// Runs one window: `input` is copied into the arena, the ops run in order, and the selected
    /// output is copied out as f32 (int8 outputs are dequantised by the model's last op).
    pub fn run(&self, input: &[f32], output: &mut [f32], arena: &mut [u8]) -> Result<(), RunError> {
        let m = &self.meta;
        if input.len() != m.input_len {
            return Err(RunError::InputLength {
                expected: m.input_len,
                got: input.len(),
            });
        }
        if output.len() != m.output_len {
            return Err(RunError::OutputLength {
                expected: m.output_len,
                got: output.len(),
            });
        }
        if arena.len() < m.arena_len {
            return Err(RunError::ArenaTooSmall {
                needed: m.arena_len,
                got: arena.len(),
            });
        }
        let arena = &mut arena[..m.arena_len];
        for (i, v) in input.iter().enumerate() {
            kernels::st_f32(arena, m.input_off + 4 * i, *v);
        }
        // `parse` decoded and validated every op from these same bytes, so decoding cannot fail.
        for op in OpIter::new(self.ops, self.consts, m.op_count).flatten() {
            kernels::execute(&op, arena);
        }
        for (i, v) in output.iter_mut().enumerate() {
            *v = kernels::ld_f32(arena, m.output_off + 4 * i);
        }
        Ok(())
    }

    /// The decoded ops, e.g. for a host-side listing; `parse` guarantees each decodes.
    pub fn ops(&self) -> impl Iterator<Item = &'static str> + 'a {
        OpIter::new(self.ops, self.consts, self.meta.op_count)
            .flatten()
            .map(|op: Op<'a>| op.name())
    }
}

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// A blob with the given meta words, op records and constants.
    fn assemble(meta: &[u32], ops: &[u32], consts: &[u8]) -> Vec<u8> {
        let (meta, ops) = (words(meta), words(ops));
        let header = 16 + 36;
        let total = header + meta.len() + ops.len() + consts.len();
        let mut b = words(&[u32::from_le_bytes(MAGIC), FORMAT_VERSION, total as u32, 3]);
        let mut at = header;
        for (kind, len) in [(1u32, meta.len()), (2, ops.len()), (3, consts.len())] {
            b.extend(words(&[kind, at as u32, len as u32]));
            at += len;
        }
        b.extend(meta);
        b.extend(ops);
        b.extend_from_slice(consts);
        b
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// x[2] → gemm (w [[1,2],[3,4]], b [0.5,-1]) → relu: arena input at 0, output at 8.
    fn gemm_relu() -> Vec<u8> {
        let consts = [f32s(&[1.0, 2.0, 3.0, 4.0]), f32s(&[0.5, -1.0])].concat();
        let ops = [
            &[Opcode::GemmF32 as u32, 7, 0, 8, 1, 2, 2, 0, 16][..],
            &[Opcode::UnaryF32 as u32, 4, 8, 8, 2, 0][..],
        ]
        .concat();
        assemble(&[2, 2, 16, 0, 8, 2], &ops, &consts)
    }

    #[test]
    fn gemm_with_bias_then_relu() {
        let bytes = gemm_relu();
        let m = Model::parse(&bytes).unwrap();
        assert_eq!(
            (m.input_len(), m.output_len(), m.arena_len(), m.op_count()),
            (2, 2, 16, 2)
        );
        let mut out = [0.0; 2];
        let mut arena = [0u8; 16];
        m.run(&[1.0, 2.0], &mut out, &mut arena).unwrap();
        assert_eq!(out, [5.5, 10.0]);
        m.run(&[-1.0, -2.0], &mut out, &mut arena).unwrap();
        assert_eq!(
            out,
            [0.0, 0.0],
            "relu clamps 1·-1 + 2·-2 + 0.5 and 3·-1 + 4·-2 − 1"
        );
        assert_eq!(m.ops().collect::<Vec<_>>(), ["gemm_f32", "relu_f32"]);
    }

    #[test]
    fn int8_gemm_requantises_per_channel() {
        // quantize (s=0.5, zp=1) → gemm_i8 (w [[2],[−3]], bias [4, 0], out zp −2, mult 0.5 / 0.25)
        // → dequantize (s=1, zp=−2). Input 1.5 → q 4 → x−zp 3 → acc [10, −9] → [5, −2.25→−2]
        let half = 1u32 << 30;
        let consts = [
            std::vec![2u8, (-3i8) as u8, 0, 0],
            words(&[4, 0]),
            words(&[half, half]),
            words(&[0, 1]),
        ]
        .concat();
        let ops = [
            &[Opcode::Quantize as u32, 5, 0, 4, 1, 0.5f32.to_bits(), 1][..],
            &[
                Opcode::GemmI8 as u32,
                13,
                4,
                8,
                1,
                1,
                2,
                1,
                (-2i32) as u32,
                (-128i32) as u32,
                127,
                0,
                4,
                12,
                20,
            ][..],
            &[
                Opcode::Dequantize as u32,
                5,
                8,
                12,
                2,
                1.0f32.to_bits(),
                (-2i32) as u32,
            ][..],
        ]
        .concat();
        let bytes = assemble(&[1, 2, 20, 0, 12, 3], &ops, &consts);
        let m = Model::parse(&bytes).unwrap();
        let mut out = [0.0; 2];
        m.run(&[1.5], &mut out, &mut [0u8; 20]).unwrap();
        assert_eq!(out, [5.0, -2.0]);
    }

    #[test]
    fn requantize_rounds_half_up_once() {
        let half = 1 << 30;
        assert_eq!(requantize(100, half, 0), 50);
        assert_eq!(requantize(1, half, 0), 1, "0.5 rounds up");
        assert_eq!(requantize(-1, half, 0), 0, "−0.5 rounds toward +∞");
        assert_eq!(requantize(3, half, 1), 1, "0.75");
        assert_eq!(
            requantize(5, half, -2),
            10,
            "left shifts for multipliers ≥ 1"
        );
        assert_eq!(requantize(i32::MAX, i32::MAX, -30), i32::MAX, "saturates");
    }

    #[test]
    fn run_checks_buffer_lengths() {
        let bytes = gemm_relu();
        let m = Model::parse(&bytes).unwrap();
        let mut out = [0.0; 2];
        assert_eq!(
            m.run(&[1.0], &mut out, &mut [0; 16]),
            Err(RunError::InputLength {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            m.run(&[1.0, 2.0], &mut [0.0; 3], &mut [0; 16]),
            Err(RunError::OutputLength {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(
            m.run(&[1.0, 2.0], &mut out, &mut [0; 15]),
            Err(RunError::ArenaTooSmall {
                needed: 16,
                got: 15
            })
        );
    }

    #[test]
    fn parse_rejects_malformed_headers_and_ops() {
        let good = gemm_relu();
        assert!(matches!(
            Model::parse(&good[..10]),
            Err(FormatError::TooShort { .. })
        ));
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(Model::parse(&b).unwrap_err(), FormatError::BadMagic);
        let mut b = good.clone();
        b[4] = 9;
        assert_eq!(
            Model::parse(&b).unwrap_err(),
            FormatError::UnsupportedVersion(9)
        );
        let mut b = good.clone();
        b.push(0);
        assert!(matches!(
            Model::parse(&b),
            Err(FormatError::LengthMismatch { .. })
        ));
        // An op writing past the arena: the relu's output offset 8 → 12 (needs 8 bytes of 16).
        let mut b = good.clone();
        let relu_out = b.len() - 24 - 24 + 12;
        b[relu_out] = 12;
        assert_eq!(
            Model::parse(&b).unwrap_err(),
            FormatError::BadOp {
                op: 1,
                what: "buffer lies outside the arena"
            }
        );
    }

    /// x[2] → quantize (s 0.5) → binary2_i8 q·q (out s 0.5) → dequantize: one buffer read as
    /// both inputs; arena: x at 0, q at 8, q² at 12, output at 16.
    fn square_i8() -> Vec<u8> {
        let half = 0.5f32.to_bits();
        let ops = [
            &[Opcode::Quantize as u32, 5, 0, 8, 2, half, 0][..],
            &[
                Opcode::Binary2I8 as u32,
                11,
                8,
                8,
                12,
                2,
                3,
                half,
                0,
                half,
                0,
                half,
                0,
            ][..],
            &[Opcode::Dequantize as u32, 5, 12, 16, 2, half, 0][..],
        ]
        .concat();
        assemble(&[2, 2, 24, 0, 16, 3], &ops, &[])
    }

    #[test]
    fn two_input_int8_op_rounds_half_to_even() {
        let bytes = square_i8();
        let m = Model::parse(&bytes).unwrap();
        let mut out = [0.0; 2];
        // q = 1, 3 → (q/2)² / 0.5 = 0.5, 4.5 → 0, 4 (half up would give 1, 5).
        m.run(&[0.5, 1.5], &mut out, &mut [0u8; 24]).unwrap();
        assert_eq!(out, [0.0, 2.0]);
        assert_eq!(
            m.ops().collect::<Vec<_>>(),
            ["quantize", "binary2_i8", "dequantize"]
        );
    }

    #[test]
    fn two_input_ops_refuse_reversed_kinds_and_stray_buffers() {
        let good = square_i8();
        // The binary2 record starts after the header, meta and the 7-word quantize record.
        let at = 16 + 36 + 24 + 4 * 7;
        let word = |b: &mut Vec<u8>, i: usize, v: u32| {
            b[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes())
        };
        let mut b = good.clone();
        word(&mut b, 6, 2);
        assert_eq!(
            Model::parse(&b).unwrap_err(),
            FormatError::BadOp {
                op: 1,
                what: "unknown two-input kind"
            }
        );
        let mut b = good.clone();
        word(&mut b, 3, 23);
        assert_eq!(
            Model::parse(&b).unwrap_err(),
            FormatError::BadOp {
                op: 1,
                what: "buffer lies outside the arena"
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = Model::parse(&bytes);
        }

        #[test]
        fn corrupted_models_never_panic(edits in proptest::collection::vec((0usize..200, proptest::num::u8::ANY), 1..6)) {
            let mut b = gemm_relu();
            let len = b.len();
            for (at, v) in edits {
                b[at % len] = v;
            }
            if let Ok(m) = Model::parse(&b) {
                let input = std::vec![1.0; m.input_len().min(1 << 16)];
                let mut out = std::vec![0.0; m.output_len().min(1 << 16)];
                let mut arena = std::vec![0u8; m.arena_len().min(1 << 20)];
                let _ = m.run(&input, &mut out, &mut arena);
            }
        }
    }
}
