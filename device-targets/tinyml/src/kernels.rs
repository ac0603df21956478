//! Kernels over the byte arena. Offsets are bytes; `format` validated every range, and the
//! planner only lets elementwise ops share a buffer between input and output.

use crate::format::{
    BinaryKind, ConvGeom, GemmGeom, Io, Io2, Op, PoolGeom, QParam, ReduceGeom, Requant,
};

pub(crate) fn ld_f32(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn st_f32(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn ld_i32(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn ld_i8(b: &[u8], at: usize) -> i32 {
    b[at] as i8 as i32
}

/// `round(acc · mult · 2^-(31 + shift))` with one 64-bit product and a single rounding, half
/// toward +∞ (TFLite Micro's `TFLITE_SINGLE_ROUNDING`, CMSIS-NN's `arm_nn_requantize` likewise);
/// `mult` is a Q31 value in [2^30, 2^31) for a real multiplier `m·2^-shift`. The result
/// saturates to i32. Valid for `mult ≥ 0` and `-30 ≤ shift ≤ 31` (checked when parsing).
pub fn requantize(acc: i32, mult: i32, shift: i32) -> i32 {
    let total = 31 + shift;
    let r = ((acc as i64) * (mult as i64) + (1i64 << (total - 1))) >> total;
    r.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Ties round to even, as ONNX `QuantizeLinear` specifies; out-of-range values saturate.
fn quantize(x: f32, q: QParam) -> i8 {
    let v = (libm::rintf(x / q.scale) as i32).saturating_add(q.zp);
    v.clamp(-128, 127) as i8
}

fn dequantize(q: i32, p: QParam) -> f32 {
    (q - p.zp) as f32 * p.scale
}

pub(crate) fn execute(op: &Op<'_>, a: &mut [u8]) {
    match *op {
        Op::Quantize { io, n, q } => {
            for i in 0..n {
                a[io.output + i] = quantize(ld_f32(a, io.input + 4 * i), q) as u8;
            }
        }
        Op::Dequantize { io, n, q } => {
            for i in 0..n {
                st_f32(a, io.output + 4 * i, dequantize(ld_i8(a, io.input + i), q));
            }
        }
        Op::Unary { io, n, kind } => {
            for i in 0..n {
                let x = ld_f32(a, io.input + 4 * i);
                st_f32(a, io.output + 4 * i, kind.apply(x));
            }
        }
        Op::Binary {
            io,
            n,
            kind,
            c,
            period,
            inner,
            q,
        } => {
            for i in 0..n {
                let k = ld_f32(c, 4 * ((i / inner) % period));
                match q {
                    None => {
                        let x = ld_f32(a, io.input + 4 * i);
                        st_f32(a, io.output + 4 * i, kind.apply(x, k));
                    }
                    Some([qi, qo]) => {
                        let x = dequantize(ld_i8(a, io.input + i), qi);
                        a[io.output + i] = quantize(kind.apply(x, k), qo) as u8;
                    }
                }
            }
        }
        Op::ConvF32 { io, g, w, b } => conv_f32(a, io, g, w, b),
        Op::GemmF32 { io, g, w, b } => gemm_f32(a, io, g, w, b),
        Op::MaxPool { io, g, int8 } => maxpool(a, io, g, int8),
        Op::ReduceF32 { io, g, scale } => {
            for o in 0..g.outer {
                for j in 0..g.inner {
                    let mut s = 0.0f32;
                    for l in 0..g.len {
                        s += ld_f32(a, io.input + 4 * ((o * g.len + l) * g.inner + j));
                    }
                    st_f32(a, io.output + 4 * (o * g.inner + j), s * scale);
                }
            }
        }
        Op::Softmax { io, g } => softmax(a, io, g),
        Op::Concat {
            out,
            elem,
            outer,
            parts,
        } => {
            let row: usize = (0..parts.len() / 8)
                .map(|p| ld_i32(parts, 8 * p + 4) as u32 as usize)
                .sum();
            let mut col = 0;
            for p in 0..parts.len() / 8 {
                let input = ld_i32(parts, 8 * p) as u32 as usize;
                let chunk = ld_i32(parts, 8 * p + 4) as u32 as usize * elem;
                for o in 0..outer {
                    let src = input + o * chunk;
                    a.copy_within(src..src + chunk, out + o * row * elem + col);
                }
                col += chunk;
            }
        }
        Op::ConvI8 { io, g, w, b, rq } => conv_i8(a, io, g, w, b, rq),
        Op::GemmI8 { io, g, w, b, rq } => gemm_i8(a, io, g, w, b, rq),
        Op::ReduceI8 {
            io,
            g,
            in_zp,
            out_zp,
            mult,
            shift,
        } => {
            for o in 0..g.outer {
                for j in 0..g.inner {
                    let mut acc = 0i32;
                    for l in 0..g.len {
                        acc = acc.saturating_add(
                            ld_i8(a, io.input + (o * g.len + l) * g.inner + j) - in_zp,
                        );
                    }
                    let v = (requantize(acc, mult, shift) as i64 + out_zp as i64).clamp(-128, 127);
                    a[io.output + o * g.inner + j] = v as i8 as u8;
                }
            }
        }
        Op::Lut {
            io,
            n,
            period,
            inner,
            table,
        } => {
            for i in 0..n {
                let q = ld_i8(a, io.input + i);
                a[io.output + i] = table[((i / inner) % period) * 256 + (q + 128) as usize];
            }
        }
        Op::Binary2F32 { io, n, kind } => {
            for i in 0..n {
                let (x, y) = (ld_f32(a, io.a + 4 * i), ld_f32(a, io.b + 4 * i));
                st_f32(a, io.output + 4 * i, kind.apply(x, y));
            }
        }
        Op::Binary2I8 { io, n, kind, q } => binary2_i8(a, io, n, kind, q),
    }
}

fn binary2_i8(a: &mut [u8], io: Io2, n: usize, kind: BinaryKind, [qa, qb, qo]: [QParam; 3]) {
    for i in 0..n {
        let x = dequantize(ld_i8(a, io.a + i), qa);
        let y = dequantize(ld_i8(a, io.b + i), qb);
        a[io.output + i] = quantize(kind.apply(x, y), qo) as u8;
    }
}

/// Input position `lo·stride + kk·dilation − pad`, or `None` inside the padding.
fn conv_pos(g: &ConvGeom, lo: usize, kk: usize) -> Option<usize> {
    (lo * g.stride + kk * g.dilation)
        .checked_sub(g.pad)
        .filter(|&p| p < g.lin)
}

fn conv_f32(a: &mut [u8], io: Io, g: ConvGeom, w: &[u8], b: Option<&[u8]>) {
    let (cin_g, cout_g) = (g.cin / g.groups, g.cout / g.groups);
    for co in 0..g.cout {
        let ci0 = (co / cout_g) * cin_g;
        let bias = b.map_or(0.0, |b| ld_f32(b, 4 * co));
        for lo in 0..g.lout {
            let mut acc = bias;
            for ci in 0..cin_g {
                let wrow = (co * cin_g + ci) * g.k;
                let xrow = io.input + 4 * (ci0 + ci) * g.lin;
                for kk in 0..g.k {
                    if let Some(p) = conv_pos(&g, lo, kk) {
                        acc += ld_f32(w, 4 * (wrow + kk)) * ld_f32(a, xrow + 4 * p);
                    }
                }
            }
            st_f32(a, io.output + 4 * (co * g.lout + lo), acc);
        }
    }
}

fn gemm_f32(a: &mut [u8], io: Io, g: GemmGeom, w: &[u8], b: Option<&[u8]>) {
    for r in 0..g.m {
        for j in 0..g.n {
            let mut acc = b.map_or(0.0, |b| ld_f32(b, 4 * j));
            for k in 0..g.k {
                acc += ld_f32(a, io.input + 4 * (r * g.k + k)) * ld_f32(w, 4 * (j * g.k + k));
            }
            st_f32(a, io.output + 4 * (r * g.n + j), acc);
        }
    }
}

/// The int8 output of one accumulator for output channel `c`.
fn requant_out(acc: i32, c: usize, rq: &Requant<'_>) -> u8 {
    let v =
        requantize(acc, ld_i32(rq.mult, 4 * c), ld_i32(rq.shift, 4 * c)) as i64 + rq.out_zp as i64;
    v.clamp(rq.act_min as i64, rq.act_max as i64) as i8 as u8
}

fn conv_i8(a: &mut [u8], io: Io, g: ConvGeom, w: &[u8], b: Option<&[u8]>, rq: Requant<'_>) {
    let (cin_g, cout_g) = (g.cin / g.groups, g.cout / g.groups);
    for co in 0..g.cout {
        let ci0 = (co / cout_g) * cin_g;
        let bias = b.map_or(0, |b| ld_i32(b, 4 * co));
        for lo in 0..g.lout {
            let mut acc = bias;
            for ci in 0..cin_g {
                let wrow = (co * cin_g + ci) * g.k;
                let xrow = io.input + (ci0 + ci) * g.lin;
                for kk in 0..g.k {
                    // Padding holds the zero point, i.e. real 0, so it contributes nothing.
                    if let Some(p) = conv_pos(&g, lo, kk) {
                        acc =
                            acc.wrapping_add(ld_i8(w, wrow + kk) * (ld_i8(a, xrow + p) - rq.in_zp));
                    }
                }
            }
            a[io.output + co * g.lout + lo] = requant_out(acc, co, &rq);
        }
    }
}

fn gemm_i8(a: &mut [u8], io: Io, g: GemmGeom, w: &[u8], b: Option<&[u8]>, rq: Requant<'_>) {
    for r in 0..g.m {
        for j in 0..g.n {
            let mut acc = b.map_or(0, |b| ld_i32(b, 4 * j));
            for k in 0..g.k {
                acc = acc.wrapping_add(
                    ld_i8(w, j * g.k + k) * (ld_i8(a, io.input + r * g.k + k) - rq.in_zp),
                );
            }
            a[io.output + r * g.n + j] = requant_out(acc, j, &rq);
        }
    }
}

fn maxpool(a: &mut [u8], io: Io, g: PoolGeom, int8: bool) {
    for c in 0..g.channels {
        for lo in 0..g.lout {
            let taps = (0..g.k).filter_map(|kk| {
                (lo * g.stride + kk)
                    .checked_sub(g.pad)
                    .filter(|&p| p < g.lin)
            });
            if int8 {
                let m = taps
                    .map(|p| ld_i8(a, io.input + c * g.lin + p))
                    .max()
                    .unwrap_or(-128);
                a[io.output + c * g.lout + lo] = m as i8 as u8;
            } else {
                let m = taps
                    .map(|p| ld_f32(a, io.input + 4 * (c * g.lin + p)))
                    .fold(f32::NEG_INFINITY, f32::max);
                st_f32(a, io.output + 4 * (c * g.lout + lo), m);
            }
        }
    }
}

fn softmax(a: &mut [u8], io: Io, g: ReduceGeom) {
    let at = |o: usize, l: usize, j: usize| 4 * ((o * g.len + l) * g.inner + j);
    for o in 0..g.outer {
        for j in 0..g.inner {
            let max = (0..g.len)
                .map(|l| ld_f32(a, io.input + at(o, l, j)))
                .fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for l in 0..g.len {
                let e = libm::expf(ld_f32(a, io.input + at(o, l, j)) - max);
                st_f32(a, io.output + at(o, l, j), e);
                sum += e;
            }
            for l in 0..g.len {
                let e = ld_f32(a, io.output + at(o, l, j));
                st_f32(a, io.output + at(o, l, j), e / sum);
            }
        }
    }
}
