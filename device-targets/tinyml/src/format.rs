//! Reading and validating the model format; the layout is described in the crate docs and, per
//! op, in [`opcode`]. Everything is checked here once so the kernels can index without checks
//! failing; all size arithmetic is `checked_*` so hostile numbers cannot overflow.

/// First four bytes of every model.
pub const MAGIC: [u8; 4] = *b"GTML";
/// The only version this engine reads; bump on any layout change.
pub const FORMAT_VERSION: u32 = 1;
/// Marks an absent optional constant (e.g. a bias).
pub const NO_CONST: u32 = u32::MAX;

/// Section kinds in the header's section table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SectionKind {
    Meta = 1,
    Ops = 2,
    Const = 3,
}

/// Opcodes and their field layouts (words after `opcode | n_words`). `in`/`out` are arena byte
/// offsets; `*_off` are CONST byte offsets (`NO_CONST` for an absent bias); f32 fields are the
/// IEEE bits; zero points and clamps are i32 bits. The compiler writes `op as u32`; the decoder
/// reads it back with [`Opcode::from_word`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Opcode {
    /// in, out, n, scale, zp — f32 → int8, round half to even, saturating.
    Quantize = 1,
    /// in, out, n, scale, zp — int8 → f32.
    Dequantize = 2,
    /// in, out, n, kind ([`UnaryKind`]) — f32, may run in place.
    UnaryF32 = 3,
    /// in, out, n, kind ([`BinaryKind`]), c_off, period, inner —
    /// element i uses c[(i / inner) % period]; f32, may run in place.
    BinaryF32 = 4,
    /// in, out, cin, lin, cout, lout, k, stride, pad, dilation, groups, w_off, b_off —
    /// weights [cout][cin/groups][k] f32, bias [cout] f32.
    Conv1dF32 = 5,
    /// in, out, m, k, n, w_off, b_off — x [m][k] · wᵀ with w stored [n][k] f32, bias [n].
    GemmF32 = 6,
    /// in, out, channels, lin, lout, k, stride, pad — padding never wins the max.
    MaxpoolF32 = 7,
    /// in, out, outer, len, inner, scale — out[o][i] = scale · Σ_l in[o][l][i] (sum, mean).
    ReduceF32 = 8,
    /// in, out, outer, len, inner — softmax over the middle axis.
    SoftmaxF32 = 9,
    /// out, elem_bytes, outer, n_inputs, n_inputs × (in, chunk) — each output row is the
    /// inputs' rows (chunk elements each) side by side.
    Concat = 10,
    /// in, out, cin, lin, cout, lout, k, stride, pad, dilation, groups, in_zp, out_zp, act_min,
    /// act_max, w_off (i8), b_off (i32), mult_off (i32 per cout), shift_off (i32 per cout).
    Conv1dI8 = 11,
    /// in, out, m, k, n, in_zp, out_zp, act_min, act_max, w_off (i8 [n][k]), b_off, mult_off,
    /// shift_off.
    GemmI8 = 12,
    /// As `MaxpoolF32` on int8.
    MaxpoolI8 = 13,
    /// in, out, outer, len, inner, in_zp, out_zp, mult, shift — Σ (q − in_zp) requantised.
    ReduceI8 = 14,
    /// in, out, n, period, inner, table_off — out = table[(i / inner) % period][q + 128].
    LutI8 = 15,
    /// in_a, in_b, out, n, kind ([`BinaryKind`] Add, Sub, Mul or Div: the compiler orders the inputs rather than reversing the kind) — two f32 activations of `n`
    /// elements each (an input may be given twice, as in `d · d`).
    Binary2F32 = 16,
    /// in_a, in_b, out, n, kind (as `Binary2F32`), a_scale, a_zp, b_scale, b_zp, out_scale,
    /// out_zp — int8 → int8 computed as ONNX's DequantizeLinear → float op → QuantizeLinear does,
    /// in f32 (two inputs make a table 64 Ki entries, too big for flash).
    Binary2I8 = 17,
    /// As `BinaryF32` on int8, then in_scale, in_zp, out_scale, out_zp — computed as ONNX's
    /// DequantizeLinear → float op → QuantizeLinear does, in f32: a per-channel constant (a bias
    /// after an int8 MatMul) would otherwise need a 256-entry table per channel.
    BinaryI8 = 18,
}

impl Opcode {
    /// Every opcode, in word order.
    pub const ALL: [Opcode; 18] = [
        Opcode::Quantize,
        Opcode::Dequantize,
        Opcode::UnaryF32,
        Opcode::BinaryF32,
        Opcode::Conv1dF32,
        Opcode::GemmF32,
        Opcode::MaxpoolF32,
        Opcode::ReduceF32,
        Opcode::SoftmaxF32,
        Opcode::Concat,
        Opcode::Conv1dI8,
        Opcode::GemmI8,
        Opcode::MaxpoolI8,
        Opcode::ReduceI8,
        Opcode::LutI8,
        Opcode::Binary2F32,
        Opcode::Binary2I8,
        Opcode::BinaryI8,
    ];

    /// The opcode an op record's first word names; `None` for a word no engine writes.
    pub fn from_word(word: u32) -> Option<Opcode> {
        Self::ALL.into_iter().find(|op| *op as u32 == word)
    }
}

/// Why a blob is not a model this engine can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    TooShort { needed: usize, got: usize },
    BadMagic,
    UnsupportedVersion(u32),
    LengthMismatch { declared: usize, actual: usize },
    BadSection { index: usize },
    MissingSection(SectionKind),
    DuplicateSection(SectionKind),
    BadMeta(&'static str),
    UnknownOpcode { op: usize, opcode: u32 },
    BadOp { op: usize, what: &'static str },
    TrailingOps,
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FormatError::TooShort { needed, got } => {
                write!(f, "read model header: {got} bytes, need at least {needed}")
            }
            FormatError::BadMagic => write!(f, "read model header: magic is not \"GTML\""),
            FormatError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "read model header: format version {v}, this engine reads {FORMAT_VERSION}"
                )
            }
            FormatError::LengthMismatch { declared, actual } => {
                write!(
                    f,
                    "read model header: declares {declared} bytes but the blob has {actual}"
                )
            }
            FormatError::BadSection { index } => {
                write!(
                    f,
                    "read section table entry {index}: unknown kind, misaligned or out of bounds"
                )
            }
            FormatError::MissingSection(k) => write!(f, "read section table: no {k:?} section"),
            FormatError::DuplicateSection(k) => {
                write!(f, "read section table: {k:?} section appears twice")
            }
            FormatError::BadMeta(what) => write!(f, "read meta section: {what}"),
            FormatError::UnknownOpcode { op, opcode } => {
                write!(f, "decode op {op}: unknown opcode {opcode}")
            }
            FormatError::BadOp { op, what } => write!(f, "decode op {op}: {what}"),
            FormatError::TrailingOps => write!(f, "decode ops: bytes left after the last op"),
        }
    }
}

impl core::error::Error for FormatError {}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub input_len: usize,
    pub output_len: usize,
    pub arena_len: usize,
    pub input_off: usize,
    pub output_off: usize,
    pub op_count: usize,
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The range `off .. off + n·size` if it fits inside `len`.
fn span(off: usize, n: usize, size: usize, len: usize) -> Option<core::ops::Range<usize>> {
    let end = off.checked_add(n.checked_mul(size)?)?;
    (end <= len).then_some(off..end)
}

pub(crate) fn parse(bytes: &[u8]) -> Result<(Meta, &[u8], &[u8]), FormatError> {
    const FIXED: usize = 16;
    if bytes.len() < FIXED {
        return Err(FormatError::TooShort {
            needed: FIXED,
            got: bytes.len(),
        });
    }
    if bytes[..4] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let w = |at| word(bytes, at).unwrap_or(0) as usize;
    let version = w(4) as u32;
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    if w(8) != bytes.len() {
        return Err(FormatError::LengthMismatch {
            declared: w(8),
            actual: bytes.len(),
        });
    }
    let count = w(12);
    let table = span(FIXED, count, 12, bytes.len()).ok_or(FormatError::TooShort {
        needed: FIXED.saturating_add(count.saturating_mul(12)),
        got: bytes.len(),
    })?;
    let mut found: [Option<&[u8]>; 3] = [None; 3];
    for index in 0..count {
        let at = table.start + 12 * index;
        let kind = match w(at) {
            1 => SectionKind::Meta,
            2 => SectionKind::Ops,
            3 => SectionKind::Const,
            _ => return Err(FormatError::BadSection { index }),
        };
        let (off, len) = (w(at + 4), w(at + 8));
        let range = span(off, len, 1, bytes.len()).filter(|_| off % 4 == 0);
        let range = range.ok_or(FormatError::BadSection { index })?;
        let slot = &mut found[kind as usize - 1];
        if slot.is_some() {
            return Err(FormatError::DuplicateSection(kind));
        }
        *slot = Some(&bytes[range]);
    }
    let [meta, ops, consts] = found;
    let meta = meta.ok_or(FormatError::MissingSection(SectionKind::Meta))?;
    let ops = ops.ok_or(FormatError::MissingSection(SectionKind::Ops))?;
    let consts = consts.ok_or(FormatError::MissingSection(SectionKind::Const))?;

    let m = |i: usize| {
        word(meta, 4 * i)
            .map(|v| v as usize)
            .ok_or(FormatError::BadMeta("fewer than 6 words"))
    };
    let meta = Meta {
        input_len: m(0)?,
        output_len: m(1)?,
        arena_len: m(2)?,
        input_off: m(3)?,
        output_off: m(4)?,
        op_count: m(5)?,
    };
    if span(meta.input_off, meta.input_len, 4, meta.arena_len).is_none() {
        return Err(FormatError::BadMeta("input buffer lies outside the arena"));
    }
    if span(meta.output_off, meta.output_len, 4, meta.arena_len).is_none() {
        return Err(FormatError::BadMeta("output buffer lies outside the arena"));
    }
    let mut iter = OpIter::new(ops, consts, meta.op_count);
    iter.arena_len = meta.arena_len;
    for op in iter.by_ref() {
        op?;
    }
    if iter.at != ops.len() {
        return Err(FormatError::TrailingOps);
    }
    Ok((meta, ops, consts))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Io {
    pub input: usize,
    pub output: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct QParam {
    pub scale: f32,
    pub zp: i32,
}

/// The `kind` word of [`Opcode::UnaryF32`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum UnaryKind {
    Relu = 0,
    Sigmoid = 1,
}

impl UnaryKind {
    pub const ALL: [UnaryKind; 2] = [UnaryKind::Relu, UnaryKind::Sigmoid];

    pub fn from_word(word: u32) -> Option<UnaryKind> {
        Self::ALL.into_iter().find(|k| *k as u32 == word)
    }

    /// The one definition of each kind, shared by the kernel and the compiler's lookup tables.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            UnaryKind::Relu => x.max(0.0),
            UnaryKind::Sigmoid => 1.0 / (1.0 + libm::expf(-x)),
        }
    }
}

/// The `kind` word of the binary opcodes: how element `x` meets `c` (a constant, or the second
/// activation of [`Opcode::Binary2F32`] / [`Opcode::Binary2I8`], which take no reversed kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BinaryKind {
    Add = 0,
    Sub = 1,
    RSub = 2,
    Mul = 3,
    Div = 4,
    RDiv = 5,
}

impl BinaryKind {
    pub const ALL: [BinaryKind; 6] = [
        BinaryKind::Add,
        BinaryKind::Sub,
        BinaryKind::RSub,
        BinaryKind::Mul,
        BinaryKind::Div,
        BinaryKind::RDiv,
    ];

    pub fn from_word(word: u32) -> Option<BinaryKind> {
        Self::ALL.into_iter().find(|k| *k as u32 == word)
    }

    /// Whether the kind reverses its operands, which a two-activation op never does.
    pub fn is_reversed(self) -> bool {
        matches!(self, BinaryKind::RSub | BinaryKind::RDiv)
    }

    /// The one definition of each kind, shared by the kernels and the compiler's constant folding.
    pub fn apply(self, x: f32, c: f32) -> f32 {
        match self {
            BinaryKind::Add => x + c,
            BinaryKind::Sub => x - c,
            BinaryKind::RSub => c - x,
            BinaryKind::Mul => x * c,
            BinaryKind::Div => x / c,
            BinaryKind::RDiv => c / x,
        }
    }
}

/// Inputs and output of an op over two activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Io2 {
    pub a: usize,
    pub b: usize,
    pub output: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub cin: usize,
    pub lin: usize,
    pub cout: usize,
    pub lout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub dilation: usize,
    pub groups: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GemmGeom {
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolGeom {
    pub channels: usize,
    pub lin: usize,
    pub lout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReduceGeom {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

/// Output-side integer parameters shared by the int8 Conv and Gemm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Requant<'a> {
    pub in_zp: i32,
    pub out_zp: i32,
    pub act_min: i32,
    pub act_max: i32,
    pub mult: &'a [u8],
    pub shift: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op<'a> {
    Quantize {
        io: Io,
        n: usize,
        q: QParam,
    },
    Dequantize {
        io: Io,
        n: usize,
        q: QParam,
    },
    Unary {
        io: Io,
        n: usize,
        kind: UnaryKind,
    },
    Binary {
        io: Io,
        n: usize,
        kind: BinaryKind,
        c: &'a [u8],
        period: usize,
        inner: usize,
        /// int8 input and output parameters; `None` for f32.
        q: Option<[QParam; 2]>,
    },
    ConvF32 {
        io: Io,
        g: ConvGeom,
        w: &'a [u8],
        b: Option<&'a [u8]>,
    },
    GemmF32 {
        io: Io,
        g: GemmGeom,
        w: &'a [u8],
        b: Option<&'a [u8]>,
    },
    MaxPool {
        io: Io,
        g: PoolGeom,
        int8: bool,
    },
    ReduceF32 {
        io: Io,
        g: ReduceGeom,
        scale: f32,
    },
    Softmax {
        io: Io,
        g: ReduceGeom,
    },
    Concat {
        out: usize,
        elem: usize,
        outer: usize,
        parts: &'a [u8],
    },
    ConvI8 {
        io: Io,
        g: ConvGeom,
        w: &'a [u8],
        b: Option<&'a [u8]>,
        rq: Requant<'a>,
    },
    GemmI8 {
        io: Io,
        g: GemmGeom,
        w: &'a [u8],
        b: Option<&'a [u8]>,
        rq: Requant<'a>,
    },
    ReduceI8 {
        io: Io,
        g: ReduceGeom,
        in_zp: i32,
        out_zp: i32,
        mult: i32,
        shift: i32,
    },
    Lut {
        io: Io,
        n: usize,
        period: usize,
        inner: usize,
        table: &'a [u8],
    },
    Binary2F32 {
        io: Io2,
        n: usize,
        kind: BinaryKind,
    },
    Binary2I8 {
        io: Io2,
        n: usize,
        kind: BinaryKind,
        /// Parameters of `a`, `b` and the output.
        q: [QParam; 3],
    },
}

impl Op<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Quantize { .. } => "quantize",
            Op::Dequantize { .. } => "dequantize",
            Op::Unary {
                kind: UnaryKind::Relu,
                ..
            } => "relu_f32",
            Op::Unary {
                kind: UnaryKind::Sigmoid,
                ..
            } => "sigmoid_f32",
            Op::Binary { q: None, .. } => "binary_f32",
            Op::Binary { q: Some(_), .. } => "binary_i8",
            Op::ConvF32 { .. } => "conv1d_f32",
            Op::GemmF32 { .. } => "gemm_f32",
            Op::MaxPool { int8: false, .. } => "maxpool1d_f32",
            Op::MaxPool { int8: true, .. } => "maxpool1d_i8",
            Op::ReduceF32 { .. } => "reduce_f32",
            Op::Softmax { .. } => "softmax_f32",
            Op::Concat { .. } => "concat",
            Op::ConvI8 { .. } => "conv1d_i8",
            Op::GemmI8 { .. } => "gemm_i8",
            Op::ReduceI8 { .. } => "reduce_i8",
            Op::Lut { .. } => "lut_i8",
            Op::Binary2F32 { .. } => "binary2_f32",
            Op::Binary2I8 { .. } => "binary2_i8",
        }
    }
}

/// Decodes op records one by one. With `arena_len` set (as `parse` does) every arena range is
/// checked; `run` iterates bytes `parse` already accepted.
pub(crate) struct OpIter<'a> {
    ops: &'a [u8],
    consts: &'a [u8],
    remaining: usize,
    index: usize,
    at: usize,
    arena_len: usize,
}

impl<'a> OpIter<'a> {
    pub fn new(ops: &'a [u8], consts: &'a [u8], count: usize) -> OpIter<'a> {
        OpIter {
            ops,
            consts,
            remaining: count,
            index: 0,
            at: 0,
            arena_len: usize::MAX,
        }
    }
}

impl<'a> Iterator for OpIter<'a> {
    type Item = Result<Op<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let op = self.index;
        self.index += 1;
        let bad = |what| FormatError::BadOp { op, what };
        let (Some(code), Some(n_words)) = (word(self.ops, self.at), word(self.ops, self.at + 4))
        else {
            self.remaining = 0;
            return Some(Err(bad("record header runs past the ops section")));
        };
        let Some(body) = span(self.at + 8, n_words as usize, 4, self.ops.len()) else {
            self.remaining = 0;
            return Some(Err(bad("record runs past the ops section")));
        };
        self.at = body.end;
        let mut f = Fields {
            words: &self.ops[body],
            at: 0,
            consts: self.consts,
            arena_len: self.arena_len,
            op,
        };
        let decoded = decode(code, &mut f).and_then(|d| {
            if f.at == f.words.len() {
                Ok(d)
            } else {
                Err(bad("record has extra words"))
            }
        });
        if decoded.is_err() {
            self.remaining = 0;
        }
        Some(decoded)
    }
}

/// A cursor over one record's words with checked conversions.
struct Fields<'a> {
    words: &'a [u8],
    at: usize,
    consts: &'a [u8],
    arena_len: usize,
    op: usize,
}

impl<'a> Fields<'a> {
    fn bad(&self, what: &'static str) -> FormatError {
        FormatError::BadOp { op: self.op, what }
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let v = word(self.words, self.at).ok_or(self.bad("record is too short for its opcode"))?;
        self.at += 4;
        Ok(v)
    }

    fn usize(&mut self) -> Result<usize, FormatError> {
        Ok(self.u32()? as usize)
    }

    /// A dimension: at least 1.
    fn dim(&mut self) -> Result<usize, FormatError> {
        let v = self.usize()?;
        if v == 0 {
            Err(self.bad("a dimension, stride or dilation is zero"))
        } else {
            Ok(v)
        }
    }

    fn i32(&mut self) -> Result<i32, FormatError> {
        Ok(self.u32()? as i32)
    }

    /// An int8 zero point or clamp bound.
    fn i8_range(&mut self) -> Result<i32, FormatError> {
        let v = self.i32()?;
        if (-128..=127).contains(&v) {
            Ok(v)
        } else {
            Err(self.bad("zero point or clamp outside int8"))
        }
    }

    fn f32(&mut self) -> Result<f32, FormatError> {
        Ok(f32::from_bits(self.u32()?))
    }

    fn scale(&mut self) -> Result<f32, FormatError> {
        let s = self.f32()?;
        if s.is_finite() && s > 0.0 {
            Ok(s)
        } else {
            Err(self.bad("scale is not a positive finite number"))
        }
    }

    /// An arena offset whose buffer of `n` elements of `size` bytes fits the arena.
    fn buf(&mut self, n: usize, size: usize) -> Result<usize, FormatError> {
        let off = self.usize()?;
        span(off, n, size, self.arena_len).ok_or(self.bad("buffer lies outside the arena"))?;
        Ok(off)
    }

    fn io(
        &mut self,
        n_in: usize,
        n_out: usize,
        size_in: usize,
        size_out: usize,
    ) -> Result<Io, FormatError> {
        Ok(Io {
            input: self.buf(n_in, size_in)?,
            output: self.buf(n_out, size_out)?,
        })
    }

    /// Two inputs and an output of `n` elements of `size` bytes each, then `n` and the kind of
    /// a two-activation op (no reversed kinds: the compiler orders the inputs instead).
    fn io2(&mut self, size: usize) -> Result<(Io2, usize, BinaryKind), FormatError> {
        let n = self.peek_skip(3)?.dim()?;
        let io = Io2 {
            a: self.buf(n, size)?,
            b: self.buf(n, size)?,
            output: self.buf(n, size)?,
        };
        self.at += 4;
        let kind = BinaryKind::from_word(self.u32()?)
            .filter(|k| !k.is_reversed())
            .ok_or(self.bad("unknown two-input kind"))?;
        Ok((io, n, kind))
    }

    fn qparam(&mut self) -> Result<QParam, FormatError> {
        Ok(QParam {
            scale: self.scale()?,
            zp: self.i8_range()?,
        })
    }

    fn konst(&mut self, n: usize, size: usize) -> Result<&'a [u8], FormatError> {
        let off = self.usize()?;
        let r = span(off, n, size, self.consts.len())
            .ok_or(self.bad("constant lies outside the const section"))?;
        Ok(&self.consts[r])
    }

    fn opt_konst(&mut self, n: usize, size: usize) -> Result<Option<&'a [u8]>, FormatError> {
        if word(self.words, self.at) == Some(NO_CONST) {
            self.at += 4;
            return Ok(None);
        }
        self.konst(n, size).map(Some)
    }

    fn mul(&self, a: usize, b: usize) -> Result<usize, FormatError> {
        a.checked_mul(b).ok_or(self.bad("sizes overflow"))
    }

    /// A cursor `words` ahead: some fields size the buffers named before them.
    fn peek_skip(&mut self, words: usize) -> Result<Fields<'a>, FormatError> {
        let ahead = Fields {
            words: self.words,
            at: self.at + 4 * words,
            consts: self.consts,
            arena_len: self.arena_len,
            op: self.op,
        };
        if ahead.at > self.words.len() {
            return Err(self.bad("record is too short for its opcode"));
        }
        Ok(ahead)
    }

    fn conv_geom(&mut self) -> Result<ConvGeom, FormatError> {
        let g = ConvGeom {
            cin: self.dim()?,
            lin: self.dim()?,
            cout: self.dim()?,
            lout: self.dim()?,
            k: self.dim()?,
            stride: self.dim()?,
            pad: self.usize()?,
            dilation: self.dim()?,
            groups: self.dim()?,
        };
        if !g.cin.is_multiple_of(g.groups) || !g.cout.is_multiple_of(g.groups) {
            return Err(self.bad("channels are not divisible by groups"));
        }
        // The furthest input position the kernel computes must not overflow.
        let reach = self
            .mul(g.lout - 1, g.stride)?
            .checked_add(self.mul(g.k - 1, g.dilation)?);
        if reach.is_none() {
            return Err(self.bad("sizes overflow"));
        }
        Ok(g)
    }

    fn gemm_geom(&mut self) -> Result<GemmGeom, FormatError> {
        Ok(GemmGeom {
            m: self.dim()?,
            k: self.dim()?,
            n: self.dim()?,
        })
    }

    fn pool_geom(&mut self) -> Result<PoolGeom, FormatError> {
        let g = PoolGeom {
            channels: self.dim()?,
            lin: self.dim()?,
            lout: self.dim()?,
            k: self.dim()?,
            stride: self.dim()?,
            pad: self.usize()?,
        };
        if self.mul(g.lout - 1, g.stride)?.checked_add(g.k).is_none() {
            return Err(self.bad("sizes overflow"));
        }
        Ok(g)
    }

    fn reduce_geom(&mut self) -> Result<ReduceGeom, FormatError> {
        Ok(ReduceGeom {
            outer: self.dim()?,
            len: self.dim()?,
            inner: self.dim()?,
        })
    }

    /// Multipliers must be non-negative Q31 values and shifts keep `31 + shift` in 1..=62.
    fn check_requant(&self, mult: i32, shift: i32) -> Result<(), FormatError> {
        if mult >= 0 && (-30..=31).contains(&shift) {
            Ok(())
        } else {
            Err(self.bad("requantisation multiplier or shift out of range"))
        }
    }

    /// in_zp, out_zp, act_min, act_max.
    fn requant(&mut self) -> Result<(i32, i32, i32, i32), FormatError> {
        let zps = (
            self.i8_range()?,
            self.i8_range()?,
            self.i8_range()?,
            self.i8_range()?,
        );
        if zps.2 > zps.3 {
            return Err(self.bad("act_min exceeds act_max"));
        }
        Ok(zps)
    }

    fn channel_params(&mut self, cout: usize) -> Result<(&'a [u8], &'a [u8]), FormatError> {
        let mult = self.konst(cout, 4)?;
        let shift = self.konst(cout, 4)?;
        for c in 0..cout {
            let m = word(mult, 4 * c).unwrap_or(0) as i32;
            let s = word(shift, 4 * c).unwrap_or(0) as i32;
            self.check_requant(m, s)?;
        }
        Ok((mult, shift))
    }
}

fn decode<'a>(word: u32, f: &mut Fields<'a>) -> Result<Op<'a>, FormatError> {
    let code = Opcode::from_word(word).ok_or(FormatError::UnknownOpcode {
        op: f.op,
        opcode: word,
    })?;
    Ok(match code {
        Opcode::Quantize | Opcode::Dequantize => {
            let mut ahead = f.peek_skip(2)?;
            let n = ahead.dim()?;
            let (si, so) = if code == Opcode::Quantize {
                (4, 1)
            } else {
                (1, 4)
            };
            let io = f.io(n, n, si, so)?;
            f.at += 4;
            let q = f.qparam()?;
            if code == Opcode::Quantize {
                Op::Quantize { io, n, q }
            } else {
                Op::Dequantize { io, n, q }
            }
        }
        Opcode::UnaryF32 => {
            let n = f.peek_skip(2)?.dim()?;
            let io = f.io(n, n, 4, 4)?;
            f.at += 4;
            let kind = UnaryKind::from_word(f.u32()?).ok_or(f.bad("unknown unary kind"))?;
            Op::Unary { io, n, kind }
        }
        Opcode::BinaryF32 | Opcode::BinaryI8 => {
            let int8 = code == Opcode::BinaryI8;
            let size = if int8 { 1 } else { 4 };
            let n = f.peek_skip(2)?.dim()?;
            let io = f.io(n, n, size, size)?;
            f.at += 4;
            let kind = BinaryKind::from_word(f.u32()?).ok_or(f.bad("unknown binary kind"))?;
            let period = f.peek_skip(1)?.dim()?;
            let c = f.konst(period, 4)?;
            f.at += 4;
            let inner = f.dim()?;
            let q = if int8 {
                Some([f.qparam()?, f.qparam()?])
            } else {
                None
            };
            Op::Binary {
                io,
                n,
                kind,
                c,
                period,
                inner,
                q,
            }
        }
        Opcode::Conv1dF32 | Opcode::Conv1dI8 => {
            let int8 = code == Opcode::Conv1dI8;
            let g = f.peek_skip(2)?.conv_geom()?;
            let size = if int8 { 1 } else { 4 };
            let io = f.io(f.mul(g.cin, g.lin)?, f.mul(g.cout, g.lout)?, size, size)?;
            f.at += 4 * 9;
            let rq = if int8 { Some(f.requant()?) } else { None };
            let nw = f.mul(f.mul(g.cout, g.cin / g.groups)?, g.k)?;
            let w = f.konst(nw, size)?;
            let b = f.opt_konst(g.cout, 4)?;
            match rq {
                None => Op::ConvF32 { io, g, w, b },
                Some((in_zp, out_zp, act_min, act_max)) => {
                    let (mult, shift) = f.channel_params(g.cout)?;
                    Op::ConvI8 {
                        io,
                        g,
                        w,
                        b,
                        rq: Requant {
                            in_zp,
                            out_zp,
                            act_min,
                            act_max,
                            mult,
                            shift,
                        },
                    }
                }
            }
        }
        Opcode::GemmF32 | Opcode::GemmI8 => {
            let int8 = code == Opcode::GemmI8;
            let g = f.peek_skip(2)?.gemm_geom()?;
            let size = if int8 { 1 } else { 4 };
            let io = f.io(f.mul(g.m, g.k)?, f.mul(g.m, g.n)?, size, size)?;
            f.at += 4 * 3;
            let rq = if int8 { Some(f.requant()?) } else { None };
            let w = f.konst(f.mul(g.n, g.k)?, size)?;
            let b = f.opt_konst(g.n, 4)?;
            match rq {
                None => Op::GemmF32 { io, g, w, b },
                Some((in_zp, out_zp, act_min, act_max)) => {
                    let (mult, shift) = f.channel_params(g.n)?;
                    Op::GemmI8 {
                        io,
                        g,
                        w,
                        b,
                        rq: Requant {
                            in_zp,
                            out_zp,
                            act_min,
                            act_max,
                            mult,
                            shift,
                        },
                    }
                }
            }
        }
        Opcode::MaxpoolF32 | Opcode::MaxpoolI8 => {
            let int8 = code == Opcode::MaxpoolI8;
            let g = f.peek_skip(2)?.pool_geom()?;
            let size = if int8 { 1 } else { 4 };
            let io = f.io(
                f.mul(g.channels, g.lin)?,
                f.mul(g.channels, g.lout)?,
                size,
                size,
            )?;
            f.at += 4 * 6;
            Op::MaxPool { io, g, int8 }
        }
        Opcode::ReduceF32 | Opcode::SoftmaxF32 | Opcode::ReduceI8 => {
            let g = f.peek_skip(2)?.reduce_geom()?;
            let rows = f.mul(g.outer, g.inner)?;
            let n_in = f.mul(rows, g.len)?;
            let n_out = if code == Opcode::SoftmaxF32 {
                n_in
            } else {
                rows
            };
            let size = if code == Opcode::ReduceI8 { 1 } else { 4 };
            let io = f.io(n_in, n_out, size, size)?;
            f.at += 4 * 3;
            match code {
                Opcode::ReduceF32 => Op::ReduceF32 {
                    io,
                    g,
                    scale: f.f32()?,
                },
                Opcode::SoftmaxF32 => Op::Softmax { io, g },
                _ => {
                    let (in_zp, out_zp, mult, shift) =
                        (f.i8_range()?, f.i8_range()?, f.i32()?, f.i32()?);
                    f.check_requant(mult, shift)?;
                    Op::ReduceI8 {
                        io,
                        g,
                        in_zp,
                        out_zp,
                        mult,
                        shift,
                    }
                }
            }
        }
        Opcode::Concat => {
            let mut ahead = f.peek_skip(1)?;
            let (elem, outer, n_inputs) = (ahead.dim()?, ahead.dim()?, ahead.usize()?);
            if !matches!(elem, 1 | 4) {
                return Err(f.bad("concat element size is neither 1 nor 4"));
            }
            let parts_start = ahead.at;
            let mut row = 0usize;
            for _ in 0..n_inputs {
                ahead.at += 4;
                row = row
                    .checked_add(ahead.dim()?)
                    .ok_or(f.bad("sizes overflow"))?;
            }
            let parts = &f.words[parts_start..ahead.at];
            let out = f.buf(f.mul(outer, row)?, elem)?;
            f.at = parts_start;
            for _ in 0..n_inputs {
                let chunk = f.peek_skip(1)?.dim()?;
                f.buf(f.mul(outer, chunk)?, elem)?;
                f.at += 4;
            }
            Op::Concat {
                out,
                elem,
                outer,
                parts,
            }
        }
        Opcode::LutI8 => {
            let mut ahead = f.peek_skip(2)?;
            let (n, period) = (ahead.dim()?, ahead.dim()?);
            let io = f.io(n, n, 1, 1)?;
            f.at += 8;
            let inner = f.dim()?;
            let table = f.konst(f.mul(period, 256)?, 1)?;
            Op::Lut {
                io,
                n,
                period,
                inner,
                table,
            }
        }
        Opcode::Binary2F32 => {
            let (io, n, kind) = f.io2(4)?;
            Op::Binary2F32 { io, n, kind }
        }
        Opcode::Binary2I8 => {
            let (io, n, kind) = f.io2(1)?;
            let q = [f.qparam()?, f.qparam()?, f.qparam()?];
            Op::Binary2I8 { io, n, kind, q }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_the_word_it_is_written_as() {
        for (i, op) in Opcode::ALL.into_iter().enumerate() {
            assert_eq!(op as u32, i as u32 + 1, "opcodes are dense from 1");
            assert_eq!(Opcode::from_word(op as u32), Some(op));
        }
        assert_eq!(Opcode::from_word(0), None);
        assert_eq!(Opcode::from_word(Opcode::ALL.len() as u32 + 1), None);
        for (i, k) in UnaryKind::ALL.into_iter().enumerate() {
            assert_eq!(
                (k as u32, UnaryKind::from_word(i as u32)),
                (i as u32, Some(k))
            );
        }
        assert_eq!(UnaryKind::from_word(2), None);
        for (i, k) in BinaryKind::ALL.into_iter().enumerate() {
            assert_eq!(
                (k as u32, BinaryKind::from_word(i as u32)),
                (i as u32, Some(k))
            );
        }
        assert_eq!(BinaryKind::from_word(6), None);
    }

    #[test]
    fn reversed_kinds_swap_their_operands() {
        assert_eq!(BinaryKind::RSub.apply(2.0, 5.0), 3.0);
        assert_eq!(BinaryKind::RDiv.apply(4.0, 2.0), 0.5);
        assert_eq!(
            BinaryKind::ALL.map(BinaryKind::is_reversed),
            [false, false, true, false, false, true]
        );
        assert_eq!(UnaryKind::Relu.apply(-1.5), 0.0);
        assert_eq!(UnaryKind::Sigmoid.apply(0.0), 0.5);
    }
}
