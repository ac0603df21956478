//! ONNX nodes → engine ops over numbered activation buffers, with shapes inferred for batch 1.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use gauntlet_tinyml::opcode;
use tract_onnx::pb::{ModelProto, NodeProto};

use crate::onnx::{self, Const, QuantInfo, attr_f, attr_i, attr_ints, attr_s, dtype};
use crate::{CompileError, CompileOptions, OutputSelector};

pub(crate) type Id = usize;

/// One word of an op record before buffers and constants have offsets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    W(u32),
    In(Id),
    Out(Id),
    Const(Vec<u8>),
    NoConst,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IrOp {
    pub code: u32,
    pub fields: Vec<Field>,
    /// The kernel tolerates its output sharing its input's buffer.
    pub in_place: bool,
    pub macs: u64,
}

#[derive(Debug)]
pub(crate) struct Program {
    /// Bytes of each buffer, by id.
    pub sizes: Vec<usize>,
    pub ops: Vec<IrOp>,
    pub input: Id,
    pub output: Id,
    pub input_len: usize,
    pub output_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Q {
    scale: f32,
    zp: i32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    F32,
    /// Raw int8 values, as a `QuantizeLinear` with these parameters produced them.
    I8(Q),
    /// The float a `DequantizeLinear` makes of int8 buffer `id`: not materialised unless a float
    /// kernel needs it.
    Dq(Q),
}

#[derive(Debug, Clone)]
struct Act {
    id: Id,
    shape: Vec<usize>,
    ty: Ty,
}

#[derive(Debug, Clone)]
enum Val {
    Const(Rc<Const>),
    Act(Act),
}

/// The `QuantizeLinear` that ends a fusable pattern.
struct Fused {
    q: Q,
    skip: Vec<usize>,
    out: String,
    relu: bool,
}

struct Lower<'m> {
    nodes: &'m [NodeProto],
    output_name: String,
    consumers: HashMap<String, Vec<usize>>,
    vals: HashMap<String, Val>,
    sizes: Vec<usize>,
    ops: Vec<IrOp>,
    done: HashSet<usize>,
    materialised: HashMap<Id, Id>,
}

fn f32_bytes(v: impl IntoIterator<Item = f32>) -> Vec<u8> {
    v.into_iter().flat_map(f32::to_le_bytes).collect()
}

fn i32_bytes(v: impl IntoIterator<Item = i32>) -> Vec<u8> {
    v.into_iter().flat_map(i32::to_le_bytes).collect()
}

/// ONNX `QuantizeLinear`: round half to even, saturate to int8.
fn quantize(x: f32, q: Q) -> i8 {
    ((x / q.scale).round_ties_even() as i32 + q.zp).clamp(-128, 127) as i8
}

/// A real multiplier as a Q31 value in [2^30, 2^31) and a right shift, for
/// `gauntlet_tinyml::requantize`.
fn quantize_multiplier(real: f64) -> Option<(i32, i32)> {
    if real == 0.0 {
        return Some((0, 0));
    }
    if !(real.is_finite() && real > 0.0) {
        return None;
    }
    let mut exp = real.log2().floor() as i32 + 1;
    let mut m = (real / 2f64.powi(exp) * 2f64.powi(31)).round() as i64;
    // `log2` can land one off at exact powers of two; normalise into [2^30, 2^31).
    while m >= 1 << 31 {
        m /= 2;
        exp += 1;
    }
    while m < 1 << 30 {
        m *= 2;
        exp -= 1;
    }
    let shift = -exp;
    (-30..=31).contains(&shift).then_some((m as i32, shift))
}

/// How a constant of shape `c` broadcasts over an activation of shape `a` without growing it:
/// element i of the activation uses constant `(i / inner) % period`. The constant's non-1 dims
/// must form one contiguous block.
fn broadcast(a: &[usize], c: &[usize]) -> Option<(usize, usize)> {
    if c.len() > a.len() {
        return None;
    }
    let off = a.len() - c.len();
    let mut block: Option<(usize, usize)> = None;
    for (j, &d) in c.iter().enumerate() {
        if d == 1 {
            continue;
        }
        if d != a[off + j] {
            return None;
        }
        block = match block {
            None => Some((off + j, off + j + 1)),
            Some((s, e)) if e == off + j => Some((s, e + 1)),
            Some(_) => return None,
        };
    }
    Some(match block {
        None => (1, 1),
        Some((s, e)) => (a[s..e].iter().product(), a[e..].iter().product()),
    })
}

fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

/// Standard-domain operators the lowering handles (given supported attributes and shapes).
const SUPPORTED: &[&str] = &[
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "Sigmoid",
    "MaxPool",
    "ReduceSum",
    "ReduceMean",
    "GlobalAveragePool",
    "Softmax",
    "Concat",
    "QuantizeLinear",
    "DequantizeLinear",
    "Cast",
    "Unsqueeze",
    "Squeeze",
    "Reshape",
    "Flatten",
    "Identity",
    "Dropout",
    "Constant",
];

/// How errors name a node: its name, or for an unnamed one (quantisers leave some so) the
/// tensor it writes.
fn node_label(n: &NodeProto) -> String {
    match (n.name.as_str(), n.output.first()) {
        ("", Some(out)) => format!("unnamed, writing {out}"),
        (name, _) => name.to_string(),
    }
}

/// The first node, in graph order, whose operator the engine lacks: reported before anything
/// else so a QOperator model names its QLinearConv/QGemm rather than a detail of its inputs.
fn first_unsupported(nodes: &[NodeProto], order: &[usize]) -> Option<CompileError> {
    order.iter().map(|&i| &nodes[i]).find_map(|n| {
        let standard = n.domain.is_empty() || n.domain == "ai.onnx";
        if standard && SUPPORTED.contains(&n.op_type.as_str()) {
            return None;
        }
        let op = if standard {
            n.op_type.clone()
        } else {
            format!("{}.{}", n.domain, n.op_type)
        };
        Some(CompileError::UnsupportedOperator {
            op,
            node: node_label(n),
        })
    })
}

impl<'m> Lower<'m> {
    fn node_err(&self, node: &NodeProto, what: impl Into<String>) -> CompileError {
        CompileError::Unsupported {
            op: node.op_type.clone(),
            node: node_label(node),
            what: what.into(),
        }
    }

    fn new_buf(&mut self, bytes: usize) -> Id {
        self.sizes.push(bytes);
        self.sizes.len() - 1
    }

    fn push(&mut self, code: u32, fields: Vec<Field>, in_place: bool, macs: u64) {
        self.ops.push(IrOp {
            code,
            fields,
            in_place,
            macs,
        });
    }

    fn set(&mut self, name: &str, v: Val) {
        self.vals.insert(name.to_string(), v);
    }

    fn set_act(&mut self, name: &str, id: Id, shape: Vec<usize>, ty: Ty) {
        self.set(name, Val::Act(Act { id, shape, ty }));
    }

    /// The float buffer holding `a`, dequantising an int8 one once on first use.
    fn f32_of(&mut self, a: &Act) -> Id {
        match a.ty {
            Ty::F32 => a.id,
            Ty::I8(q) | Ty::Dq(q) => {
                if let Some(&id) = self.materialised.get(&a.id) {
                    return id;
                }
                let n: usize = a.shape.iter().product();
                let out = self.new_buf(4 * n);
                self.push(
                    opcode::DEQUANTIZE,
                    vec![
                        Field::In(a.id),
                        Field::Out(out),
                        Field::W(n as u32),
                        Field::W(q.scale.to_bits()),
                        Field::W(q.zp as u32),
                    ],
                    false,
                    0,
                );
                self.materialised.insert(a.id, out);
                out
            }
        }
    }

    /// Per-tensor int8 parameters of a (De)QuantizeLinear node, if it has them.
    fn q_params(&self, n: &NodeProto) -> Option<Q> {
        let konst = |i: usize| match n.input.get(i).and_then(|name| self.vals.get(name)) {
            Some(Val::Const(c)) => Some(c.clone()),
            _ => None,
        };
        let scale = konst(1)?.scalar()? as f32;
        let zp = konst(2)?;
        (zp.dtype == dtype::INT8 && scale > 0.0).then_some(Q {
            scale,
            zp: zp.scalar()? as i32,
        })
    }

    /// The single `QuantizeLinear` (optionally behind a `Relu`) consuming `name`, if any.
    fn quant_consumer(&self, name: &str, allow_relu: bool) -> Option<Fused> {
        if name == self.output_name {
            return None;
        }
        let [c] = self.consumers.get(name)?.as_slice() else {
            return None;
        };
        let n = &self.nodes[*c];
        match n.op_type.as_str() {
            "QuantizeLinear" => Some(Fused {
                q: self.q_params(n)?,
                skip: vec![*c],
                out: n.output[0].clone(),
                relu: false,
            }),
            "Relu" if allow_relu => {
                let mut f = self.quant_consumer(&n.output[0], false)?;
                f.skip.push(*c);
                f.relu = true;
                Some(f)
            }
            _ => None,
        }
    }

    /// A following `Add` of a constant that is per-channel along `axis` of `shape` (or scalar),
    /// as a bias vector, with the Add's node index and output name.
    fn bias_add(
        &self,
        name: &str,
        shape: &[usize],
        axis: usize,
    ) -> Option<(usize, Vec<f64>, String)> {
        if name == self.output_name {
            return None;
        }
        let [c] = self.consumers.get(name)?.as_slice() else {
            return None;
        };
        let n = &self.nodes[*c];
        if n.op_type != "Add" || n.input.len() != 2 {
            return None;
        }
        let other = if n.input[0] == name {
            &n.input[1]
        } else {
            &n.input[0]
        };
        let Some(Val::Const(k)) = self.vals.get(other) else {
            return None;
        };
        let channels = shape[axis];
        let inner: usize = shape[axis + 1..].iter().product();
        let bias = match broadcast(shape, &k.shape)? {
            (1, _) => vec![k.data[0]; channels],
            (p, i) if p == channels && i == inner => k.data.clone(),
            _ => return None,
        };
        Some((*c, bias, n.output[0].clone()))
    }

    fn mark_done(&mut self, f: &Fused) {
        self.done.extend(f.skip.iter().copied());
    }

    /// Integer weights usable by an int8 kernel: int8, zero points 0, per-tensor or per-slice
    /// along `axis`; returns one scale per output channel.
    fn int8_weights(w: &Const, axis: usize, channels: usize) -> Option<(&QuantInfo, Vec<f32>)> {
        let qi = w.quant.as_ref()?;
        if !qi.int8 || qi.zp.iter().any(|&z| z != 0) {
            return None;
        }
        let scales = match qi.scale.len() {
            1 => vec![qi.scale[0]; channels],
            n if n == channels && qi.axis == axis => qi.scale.clone(),
            _ => return None,
        };
        Some((qi, scales))
    }

    /// Per-channel multiplier/shift constants for real multipliers `s_in·s_w[c]/s_out`.
    fn requant_consts(
        &self,
        node: &NodeProto,
        reals: impl Iterator<Item = f64>,
    ) -> Result<(Vec<u8>, Vec<u8>), CompileError> {
        let (mut m, mut s) = (Vec::new(), Vec::new());
        for r in reals {
            let (mult, shift) = quantize_multiplier(r).ok_or_else(|| {
                self.node_err(node, format!("requantisation scale {r} is out of range"))
            })?;
            m.push(mult);
            s.push(shift);
        }
        Ok((i32_bytes(m), i32_bytes(s)))
    }

    /// An int8 → int8 table applying `f` to the dequantised `x` (parameters `qi`).
    fn lut(&mut self, x: &Act, qi: Q, out: Q, f: impl Fn(f32) -> f32) -> Id {
        let table = (-128i32..=127)
            .map(|q| quantize(f((q - qi.zp) as f32 * qi.scale), out) as u8)
            .collect();
        let n: usize = x.shape.iter().product();
        let y = self.new_buf(n);
        let fields = vec![
            Field::In(x.id),
            Field::Out(y),
            Field::W(n as u32),
            Field::W(1),
            Field::W(1),
            Field::Const(table),
        ];
        self.push(opcode::LUT_I8, fields, true, 0);
        y
    }

    fn acts(&self, node: &NodeProto) -> Result<Vec<Option<Val>>, CompileError> {
        node.input
            .iter()
            .map(|n| {
                if n.is_empty() {
                    return Ok(None);
                }
                self.vals.get(n).cloned().map(Some).ok_or_else(|| {
                    CompileError::Graph(format!(
                        "input '{n}' of node '{}' is never produced",
                        node_label(node)
                    ))
                })
            })
            .collect()
    }

    fn node(&mut self, idx: usize) -> Result<(), CompileError> {
        let node = &self.nodes[idx];
        let inputs = self.acts(node)?;
        let all_const = inputs.iter().flatten().all(|v| matches!(v, Val::Const(_)));
        if all_const {
            let c = self.fold(node, &inputs)?;
            self.set(&node.output[0], Val::Const(Rc::new(c)));
            return Ok(());
        }
        let konst = |i: usize| match inputs.get(i) {
            Some(Some(Val::Const(c))) => Some(c.clone()),
            _ => None,
        };
        let act = |i: usize| match inputs.get(i) {
            Some(Some(Val::Act(a))) => Ok(a.clone()),
            _ => Err(self.node_err(node, format!("input {i} must be an activation"))),
        };
        match node.op_type.as_str() {
            "Conv" => {
                let w = konst(1).ok_or_else(|| self.node_err(node, "weights must be constant"))?;
                self.conv(node, act(0)?, &w, konst(2).as_deref())
            }
            "Gemm" | "MatMul" => {
                let w = konst(1).ok_or_else(|| self.node_err(node, "weights must be constant"))?;
                self.gemm(node, act(0)?, &w, konst(2).as_deref())
            }
            "Add" | "Sub" | "Mul" | "Div" => self.binary(node, &inputs),
            "Relu" | "Sigmoid" => self.unary(node, act(0)?),
            "MaxPool" => self.maxpool(node, act(0)?),
            "ReduceSum" | "ReduceMean" | "GlobalAveragePool" => {
                self.reduce(node, act(0)?, konst(1).as_deref())
            }
            "Softmax" => self.softmax(node, act(0)?),
            "Concat" => self.concat(node, &inputs),
            "QuantizeLinear" => self.quantize_linear(node, act(0)?),
            "DequantizeLinear" => {
                let a = act(0)?;
                let q = self.q_params(node).ok_or_else(|| {
                    self.node_err(node, "only per-tensor int8 dequantisation is supported")
                })?;
                match a.ty {
                    Ty::I8(_) => {
                        self.set_act(&node.output[0], a.id, a.shape, Ty::Dq(q));
                        Ok(())
                    }
                    _ => Err(self.node_err(node, "input is not int8")),
                }
            }
            "Cast" if attr_i(node, "to", 0) as i32 != dtype::FLOAT => {
                let to = match attr_i(node, "to", 0) as i32 {
                    dtype::FLOAT16 => "float16".to_string(),
                    t => format!("ONNX element type {t}"),
                };
                let what = format!(
                    "casts to {to} are not supported (the engine computes in float32 and int8)"
                );
                Err(self.node_err(node, what))
            }
            "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" | "Identity" | "Dropout" | "Cast" => {
                let a = act(0)?;
                let shape = self.reshape(node, &a.shape, konst(1).as_deref())?;
                self.set_act(&node.output[0], a.id, shape, a.ty);
                Ok(())
            }
            op => Err(CompileError::UnsupportedOperator {
                op: op.to_string(),
                node: node_label(node),
            }),
        }
    }

    /// Output shape of a shape-only op.
    fn reshape(
        &self,
        node: &NodeProto,
        shape: &[usize],
        arg: Option<&Const>,
    ) -> Result<Vec<usize>, CompileError> {
        let axes = || arg.map(Const::ints).or_else(|| attr_ints(node, "axes"));
        let bad = |what: &str| self.node_err(node, what.to_string());
        Ok(match node.op_type.as_str() {
            "Unsqueeze" => {
                let axes = axes().ok_or_else(|| bad("axes are missing"))?;
                let rank = shape.len() + axes.len();
                let mut axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| norm_axis(a, rank).ok_or_else(|| bad("axis out of range")))
                    .collect::<Result<_, _>>()?;
                axes.sort_unstable();
                let mut out = shape.to_vec();
                for a in axes {
                    out.insert(a.min(out.len()), 1);
                }
                out
            }
            "Squeeze" => match axes() {
                None => shape.iter().copied().filter(|&d| d != 1).collect(),
                Some(axes) => {
                    let axes: Vec<usize> = axes
                        .iter()
                        .map(|&a| norm_axis(a, shape.len()).ok_or_else(|| bad("axis out of range")))
                        .collect::<Result<_, _>>()?;
                    if axes.iter().any(|&a| shape[a] != 1) {
                        return Err(bad("squeezed axis is not 1"));
                    }
                    shape
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !axes.contains(i))
                        .map(|(_, &d)| d)
                        .collect()
                }
            },
            "Reshape" => {
                let target = arg.ok_or_else(|| bad("shape must be constant"))?.ints();
                let total: usize = shape.iter().product();
                let mut out: Vec<usize> = target
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if d == 0 {
                            shape.get(i).copied().unwrap_or(0)
                        } else {
                            d.max(1) as usize
                        }
                    })
                    .collect();
                if let Some(p) = target.iter().position(|&d| d == -1) {
                    let rest: usize = out
                        .iter()
                        .enumerate()
                        .filter(|&(i, _)| i != p)
                        .map(|(_, &d)| d)
                        .product();
                    out[p] = total.checked_div(rest).unwrap_or(0);
                }
                if out.iter().product::<usize>() != total {
                    return Err(bad("target shape has a different element count"));
                }
                out
            }
            "Flatten" => {
                let axis = norm_axis(attr_i(node, "axis", 1), shape.len() + 1)
                    .ok_or_else(|| bad("axis out of range"))?;
                vec![
                    shape[..axis].iter().product(),
                    shape[axis..].iter().product(),
                ]
            }
            _ => shape.to_vec(),
        })
    }

    fn fold(&self, node: &NodeProto, inputs: &[Option<Val>]) -> Result<Const, CompileError> {
        let c = |i: usize| match inputs.get(i) {
            Some(Some(Val::Const(c))) => Some(c.as_ref()),
            _ => None,
        };
        let x = c(0).ok_or_else(|| self.node_err(node, "missing input"))?;
        match node.op_type.as_str() {
            "DequantizeLinear" | "QuantizeLinear" => {
                let scale = c(1).ok_or_else(|| self.node_err(node, "missing scale"))?;
                let zp = c(2);
                let per_channel = scale.len() > 1;
                let axis = if per_channel {
                    norm_axis(attr_i(node, "axis", 1), x.shape.len())
                        .ok_or_else(|| self.node_err(node, "axis out of range"))?
                } else {
                    0
                };
                let inner: usize = if per_channel {
                    x.shape[axis + 1..].iter().product()
                } else {
                    1
                };
                let slot = |i: usize| {
                    if per_channel {
                        (i / inner) % scale.len()
                    } else {
                        0
                    }
                };
                let zps: Vec<i32> = (0..scale.len())
                    .map(|i| zp.map_or(0, |z| z.data[i.min(z.len() - 1)] as i32))
                    .collect();
                let scales: Vec<f32> = scale.data.iter().map(|&s| s as f32).collect();
                if node.op_type == "QuantizeLinear" {
                    let zdt = zp.map_or(dtype::UINT8, |z| z.dtype);
                    let (lo, hi) = if zdt == dtype::INT8 {
                        (-128, 127)
                    } else {
                        (0, 255)
                    };
                    let data = x
                        .data
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| {
                            ((v as f32 / scales[slot(i)]).round_ties_even() as i32 + zps[slot(i)])
                                .clamp(lo, hi) as f64
                        })
                        .collect();
                    return Ok(Const {
                        dtype: zdt,
                        shape: x.shape.clone(),
                        data,
                        quant: None,
                    });
                }
                let q: Vec<i32> = x.data.iter().map(|&v| v as i32).collect();
                let data = q
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| ((v - zps[slot(i)]) as f32 * scales[slot(i)]) as f64)
                    .collect();
                let quant = QuantInfo {
                    q,
                    scale: scales,
                    zp: zps,
                    axis,
                    int8: x.dtype == dtype::INT8,
                };
                Ok(Const {
                    dtype: dtype::FLOAT,
                    shape: x.shape.clone(),
                    data,
                    quant: Some(quant),
                })
            }
            "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" | "Identity" | "Cast" => {
                let shape = self.reshape(node, &x.shape, c(1))?;
                let per_tensor = x.quant.as_ref().is_some_and(|q| q.scale.len() == 1);
                let quant = if per_tensor { x.quant.clone() } else { None };
                let dtype = if node.op_type == "Cast" {
                    attr_i(node, "to", 1) as i32
                } else {
                    x.dtype
                };
                Ok(Const {
                    dtype,
                    shape,
                    data: x.data.clone(),
                    quant,
                })
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let y = c(1).ok_or_else(|| self.node_err(node, "missing input"))?;
                let (shape, n) = if x.len() >= y.len() {
                    (x.shape.clone(), x.len())
                } else {
                    (y.shape.clone(), y.len())
                };
                if !(x.len() == n || x.len() == 1) || !(y.len() == n || y.len() == 1) {
                    return Err(self.node_err(
                        node,
                        "constant folding supports equal shapes or a scalar operand only",
                    ));
                }
                let at = |k: &Const, i: usize| k.data[if k.len() == 1 { 0 } else { i }] as f32;
                let data = (0..n)
                    .map(|i| {
                        let (a, b) = (at(x, i), at(y, i));
                        (match node.op_type.as_str() {
                            "Add" => a + b,
                            "Sub" => a - b,
                            "Mul" => a * b,
                            _ => a / b,
                        }) as f64
                    })
                    .collect();
                Ok(Const {
                    dtype: dtype::FLOAT,
                    shape,
                    data,
                    quant: None,
                })
            }
            op => Err(CompileError::UnsupportedOperator {
                op: op.to_string(),
                node: node_label(node),
            }),
        }
    }

    fn conv(
        &mut self,
        node: &NodeProto,
        x: Act,
        w: &Const,
        b: Option<&Const>,
    ) -> Result<(), CompileError> {
        let bad = |what: &str| self.node_err(node, what.to_string());
        let ([1, c, l], [o, cg, k]) = (x.shape.as_slice(), w.shape.as_slice()) else {
            return Err(bad(
                "only 1-D convolutions of shape [1, C, L] are supported",
            ));
        };
        let (c, l, o, cg, k) = (*c, *l, *o, *cg, *k);
        let groups = attr_i(node, "group", 1).max(1) as usize;
        let one = |name: &str, default: i64| -> Result<usize, CompileError> {
            match attr_ints(node, name).as_deref() {
                None => Ok(default as usize),
                Some([v]) if *v >= 1 => Ok(*v as usize),
                _ => Err(bad(&format!("{name} must have one positive value"))),
            }
        };
        let (stride, dil) = (one("strides", 1)?, one("dilations", 1)?);
        let pads = attr_ints(node, "pads").unwrap_or(vec![0, 0]);
        let auto_pad = attr_s(node, "auto_pad").unwrap_or_default();
        let [pb, pe] = pads.as_slice() else {
            return Err(bad("pads must have two values"));
        };
        if !matches!(auto_pad.as_str(), "" | "NOTSET" | "VALID") || *pb < 0 || *pe < 0 {
            return Err(bad("only explicit non-negative padding is supported"));
        }
        let (pb, pe) = (*pb as usize, *pe as usize);
        if cg * groups != c || o % groups != 0 {
            return Err(bad("channel counts do not match the groups"));
        }
        let span = dil * (k - 1) + 1;
        if l + pb + pe < span {
            return Err(bad("kernel is longer than the padded input"));
        }
        let lout = (l + pb + pe - span) / stride + 1;
        let shape = vec![1, o, lout];
        let geom = [c, l, o, lout, k, stride, pb, dil, groups].map(|v| Field::W(v as u32));
        let macs = (o * lout * cg * k) as u64;
        if let (Ty::Dq(qx), Some((qi, sw)), Some(f)) = (
            x.ty,
            Self::int8_weights(w, 0, o),
            self.quant_consumer(&node.output[0], true),
        ) {
            let (mult, shift) = self.requant_consts(
                node,
                sw.iter()
                    .map(|&s| qx.scale as f64 * s as f64 / f.q.scale as f64),
            )?;
            let bias = b.map(|b| {
                i32_bytes((0..o).map(|ch| {
                    (b.data[ch.min(b.len() - 1)] / (qx.scale as f64 * sw[ch] as f64)).round() as i32
                }))
            });
            let wq: Vec<u8> = qi.q.iter().map(|&v| v as i8 as u8).collect();
            let y = self.new_buf(o * lout);
            let act_min = if f.relu { f.q.zp } else { -128 };
            let mut fields = vec![Field::In(x.id), Field::Out(y)];
            fields.extend(geom);
            fields.extend([qx.zp, f.q.zp, act_min, 127].map(|v| Field::W(v as u32)));
            fields.extend([
                Field::Const(wq),
                bias.map_or(Field::NoConst, Field::Const),
                Field::Const(mult),
                Field::Const(shift),
            ]);
            self.push(opcode::CONV1D_I8, fields, false, macs);
            self.mark_done(&f);
            self.set_act(&f.out, y, shape, Ty::I8(f.q));
            return Ok(());
        }
        let xi = self.f32_of(&x);
        let mut bias: Option<Vec<f64>> =
            b.map(|b| (0..o).map(|ch| b.data[ch.min(b.len() - 1)]).collect());
        let mut out_name = node.output[0].clone();
        if let Some((add, extra, name)) = self.bias_add(&out_name, &shape, 1) {
            let base = bias.unwrap_or_else(|| vec![0.0; o]);
            bias = Some(
                base.iter()
                    .zip(&extra)
                    .map(|(a, e)| (*a as f32 + *e as f32) as f64)
                    .collect(),
            );
            self.done.insert(add);
            out_name = name;
        }
        let y = self.new_buf(4 * o * lout);
        let mut fields = vec![Field::In(xi), Field::Out(y)];
        fields.extend(geom);
        fields.push(Field::Const(f32_bytes(w.data.iter().map(|&v| v as f32))));
        fields.push(bias.map_or(Field::NoConst, |b| {
            Field::Const(f32_bytes(b.iter().map(|&v| v as f32)))
        }));
        self.push(opcode::CONV1D_F32, fields, false, macs);
        self.set_act(&out_name, y, shape, Ty::F32);
        Ok(())
    }

    fn gemm(
        &mut self,
        node: &NodeProto,
        a: Act,
        w: &Const,
        c: Option<&Const>,
    ) -> Result<(), CompileError> {
        let bad = |what: &str| self.node_err(node, what.to_string());
        let is_gemm = node.op_type == "Gemm";
        let trans_b = is_gemm && attr_i(node, "transB", 0) != 0;
        if is_gemm && attr_i(node, "transA", 0) != 0 {
            return Err(bad("transA is not supported"));
        }
        let (alpha, beta) = if is_gemm {
            (attr_f(node, "alpha", 1.0), attr_f(node, "beta", 1.0))
        } else {
            (1.0, 1.0)
        };
        let [kw, nw] = w.shape.as_slice() else {
            return Err(bad("weights must be a matrix"));
        };
        let (k, n) = if trans_b { (*nw, *kw) } else { (*kw, *nw) };
        let Some((&ka, lead)) = a.shape.split_last() else {
            return Err(bad("input must be at least 1-D"));
        };
        if ka != k || (is_gemm && a.shape.len() != 2) {
            return Err(bad("input and weight shapes do not match"));
        }
        let m: usize = lead.iter().product();
        let mut shape = lead.to_vec();
        shape.push(n);
        // Weights are stored [n][k] so each output is one contiguous dot product.
        let wt = |j: usize, i: usize| if trans_b { j * k + i } else { i * n + j };
        let bias_in: Option<Vec<f64>> = match c {
            Some(c) if beta != 0.0 => match broadcast(&[m, n], &c.shape) {
                Some((1, _)) => Some(vec![beta as f64 * c.data[0]; n]),
                Some((p, 1)) if p == n => Some(c.data.iter().map(|&v| beta as f64 * v).collect()),
                _ => return Err(bad("bias must be a scalar or a per-column vector")),
            },
            _ => None,
        };
        let geom = [m, k, n].map(|v| Field::W(v as u32));
        let macs = (m * k * n) as u64;
        let w_axis = if trans_b { 0 } else { 1 };
        if let (Ty::Dq(qa), Some((qi, sw)), Some(f)) = (
            a.ty,
            Self::int8_weights(w, w_axis, n),
            self.quant_consumer(&node.output[0], true),
        ) {
            let acc_scale = |j: usize| alpha as f64 * qa.scale as f64 * sw[j] as f64;
            let (mult, shift) =
                self.requant_consts(node, (0..n).map(|j| acc_scale(j) / f.q.scale as f64))?;
            let bias =
                bias_in.map(|b| i32_bytes((0..n).map(|j| (b[j] / acc_scale(j)).round() as i32)));
            let wq: Vec<u8> = (0..n)
                .flat_map(|j| (0..k).map(move |i| (j, i)))
                .map(|(j, i)| qi.q[wt(j, i)] as i8 as u8)
                .collect();
            let y = self.new_buf(m * n);
            let act_min = if f.relu { f.q.zp } else { -128 };
            let mut fields = vec![Field::In(a.id), Field::Out(y)];
            fields.extend(geom);
            fields.extend([qa.zp, f.q.zp, act_min, 127].map(|v| Field::W(v as u32)));
            fields.extend([
                Field::Const(wq),
                bias.map_or(Field::NoConst, Field::Const),
                Field::Const(mult),
                Field::Const(shift),
            ]);
            self.push(opcode::GEMM_I8, fields, false, macs);
            self.mark_done(&f);
            self.set_act(&f.out, y, shape, Ty::I8(f.q));
            return Ok(());
        }
        let ai = self.f32_of(&a);
        let mut bias = bias_in;
        let mut out_name = node.output[0].clone();
        if let Some((add, extra, name)) = self.bias_add(&out_name, &shape, shape.len() - 1) {
            let base = bias.unwrap_or_else(|| vec![0.0; n]);
            bias = Some(
                base.iter()
                    .zip(&extra)
                    .map(|(b, e)| (*b as f32 + *e as f32) as f64)
                    .collect(),
            );
            self.done.insert(add);
            out_name = name;
        }
        let wf = (0..n)
            .flat_map(|j| (0..k).map(move |i| (j, i)))
            .map(|(j, i)| alpha * w.data[wt(j, i)] as f32);
        let y = self.new_buf(4 * m * n);
        let mut fields = vec![Field::In(ai), Field::Out(y)];
        fields.extend(geom);
        fields.push(Field::Const(f32_bytes(wf)));
        fields.push(bias.map_or(Field::NoConst, |b| {
            Field::Const(f32_bytes(b.iter().map(|&v| v as f32)))
        }));
        self.push(opcode::GEMM_F32, fields, false, macs);
        self.set_act(&out_name, y, shape, Ty::F32);
        Ok(())
    }

    fn binary(&mut self, node: &NodeProto, inputs: &[Option<Val>]) -> Result<(), CompileError> {
        let (x, k, act_first) = match inputs {
            [Some(Val::Act(a)), Some(Val::Const(c))] => (a.clone(), c.clone(), true),
            [Some(Val::Const(c)), Some(Val::Act(a))] => (a.clone(), c.clone(), false),
            [Some(Val::Act(a)), Some(Val::Act(b))] => return self.binary_acts(node, a, b),
            _ => return Err(self.node_err(node, "expects two inputs")),
        };
        let (period, inner) = broadcast(&x.shape, &k.shape).ok_or_else(|| {
            self.node_err(
                node,
                "constant does not broadcast over the activation without growing it",
            )
        })?;
        let kind = match (node.op_type.as_str(), act_first) {
            ("Add", _) => 0,
            ("Sub", true) => 1,
            ("Sub", false) => 2,
            ("Mul", _) => 3,
            ("Div", true) => 4,
            _ => 5,
        };
        let apply = move |v: f32, c: f32| match kind {
            0 => v + c,
            1 => v - c,
            2 => c - v,
            3 => v * c,
            4 => v / c,
            _ => c / v,
        };
        let consts: Vec<f32> = k.data.iter().map(|&v| v as f32).collect();
        let n: usize = x.shape.iter().product();
        let fields = |xi: Id, y: Id| {
            vec![
                Field::In(xi),
                Field::Out(y),
                Field::W(n as u32),
                Field::W(kind),
                Field::Const(f32_bytes(consts.iter().copied())),
                Field::W(period as u32),
                Field::W(inner as u32),
            ]
        };
        if let (Ty::Dq(qi), Some(f)) = (x.ty, self.quant_consumer(&node.output[0], false)) {
            // One constant: a 256-entry table. A per-channel one (a bias after an int8 MatMul)
            // would take a table per channel, so the engine computes it instead, alike.
            let y = if period == 1 {
                self.lut(&x, qi, f.q, |v| apply(v, consts[0]))
            } else {
                let y = self.new_buf(n);
                let mut fields = fields(x.id, y);
                for q in [qi, f.q] {
                    fields.extend([Field::W(q.scale.to_bits()), Field::W(q.zp as u32)]);
                }
                self.push(opcode::BINARY_I8, fields, true, 0);
                y
            };
            self.mark_done(&f);
            self.set_act(&f.out, y, x.shape, Ty::I8(f.q));
            return Ok(());
        }
        let xi = self.f32_of(&x);
        let y = self.new_buf(4 * n);
        self.push(opcode::BINARY_F32, fields(xi, y), true, 0);
        self.set_act(&node.output[0], y, x.shape, Ty::F32);
        Ok(())
    }

    /// An elementwise op of two computed tensors, e.g. an autoencoder's `x − reconstruction`
    /// and its square.
    fn binary_acts(&mut self, node: &NodeProto, a: &Act, b: &Act) -> Result<(), CompileError> {
        if a.shape != b.shape {
            return Err(self.node_err(
                node,
                format!(
                    "broadcasting between two computed tensors ({:?} and {:?}) is not supported",
                    a.shape, b.shape
                ),
            ));
        }
        let kind = match node.op_type.as_str() {
            "Add" => 0,
            "Sub" => 1,
            "Mul" => 3,
            _ => 4,
        };
        let n: usize = a.shape.iter().product();
        let head = |ia: Id, ib: Id, y: Id| {
            vec![
                Field::In(ia),
                Field::In(ib),
                Field::Out(y),
                Field::W(n as u32),
                Field::W(kind),
            ]
        };
        if let (Ty::Dq(qa), Ty::Dq(qb), Some(f)) =
            (a.ty, b.ty, self.quant_consumer(&node.output[0], false))
        {
            let y = self.new_buf(n);
            let mut fields = head(a.id, b.id, y);
            for q in [qa, qb, f.q] {
                fields.extend([Field::W(q.scale.to_bits()), Field::W(q.zp as u32)]);
            }
            self.push(opcode::BINARY2_I8, fields, false, 0);
            self.mark_done(&f);
            self.set_act(&f.out, y, a.shape.clone(), Ty::I8(f.q));
            return Ok(());
        }
        let (ia, ib) = (self.f32_of(a), self.f32_of(b));
        let y = self.new_buf(4 * n);
        self.push(opcode::BINARY2_F32, head(ia, ib, y), false, 0);
        self.set_act(&node.output[0], y, a.shape.clone(), Ty::F32);
        Ok(())
    }

    fn unary(&mut self, node: &NodeProto, x: Act) -> Result<(), CompileError> {
        let sigmoid = node.op_type == "Sigmoid";
        let f = move |v: f32| {
            if sigmoid {
                1.0 / (1.0 + (-v).exp())
            } else {
                v.max(0.0)
            }
        };
        if let (Ty::Dq(qi), Some(fq)) = (x.ty, self.quant_consumer(&node.output[0], false)) {
            let y = self.lut(&x, qi, fq.q, f);
            self.mark_done(&fq);
            self.set_act(&fq.out, y, x.shape, Ty::I8(fq.q));
            return Ok(());
        }
        let xi = self.f32_of(&x);
        let n: usize = x.shape.iter().product();
        let y = self.new_buf(4 * n);
        self.push(
            opcode::UNARY_F32,
            vec![
                Field::In(xi),
                Field::Out(y),
                Field::W(n as u32),
                Field::W(sigmoid as u32),
            ],
            true,
            0,
        );
        self.set_act(&node.output[0], y, x.shape, Ty::F32);
        Ok(())
    }

    fn maxpool(&mut self, node: &NodeProto, x: Act) -> Result<(), CompileError> {
        let bad = |what: &str| self.node_err(node, what.to_string());
        let rank = x.shape.len();
        let sp = rank
            .checked_sub(2)
            .filter(|&s| s >= 1)
            .ok_or_else(|| bad("input must have a spatial dimension"))?;
        let ks = attr_ints(node, "kernel_shape").ok_or_else(|| bad("kernel_shape is missing"))?;
        let strides = attr_ints(node, "strides").unwrap_or(vec![1; sp]);
        let pads = attr_ints(node, "pads").unwrap_or(vec![0; 2 * sp]);
        let dil = attr_ints(node, "dilations").unwrap_or(vec![1; sp]);
        if ks.len() != sp
            || strides.len() != sp
            || pads.len() != 2 * sp
            || dil.iter().any(|&d| d != 1)
            || attr_i(node, "ceil_mode", 0) != 0
        {
            return Err(bad(
                "only plain max pooling (no dilation or ceil mode) is supported",
            ));
        }
        let last = sp - 1;
        if (0..last).any(|i| ks[i] != 1 || strides[i] != 1 || pads[i] != 0 || pads[sp + i] != 0) {
            return Err(bad("only pooling along the last axis is supported"));
        }
        if !matches!(
            attr_s(node, "auto_pad").unwrap_or_default().as_str(),
            "" | "NOTSET" | "VALID"
        ) {
            return Err(bad("only explicit padding is supported"));
        }
        let (k, s, pb, pe) = (
            ks[last] as usize,
            strides[last].max(1) as usize,
            pads[last].max(0) as usize,
            pads[sp + last].max(0) as usize,
        );
        let lin = x.shape[rank - 1];
        if k == 0 || lin + pb + pe < k {
            return Err(bad("kernel is longer than the padded input"));
        }
        let lout = (lin + pb + pe - k) / s + 1;
        let channels: usize = x.shape[..rank - 1].iter().product();
        let mut shape = x.shape.clone();
        shape[rank - 1] = lout;
        let geom = [channels, lin, lout, k, s, pb].map(|v| Field::W(v as u32));
        if let (Ty::Dq(qx), Some(f)) = (x.ty, self.quant_consumer(&node.output[0], false))
            && f.q == qx
        {
            let y = self.new_buf(channels * lout);
            let mut fields = vec![Field::In(x.id), Field::Out(y)];
            fields.extend(geom);
            self.push(opcode::MAXPOOL_I8, fields, false, 0);
            self.mark_done(&f);
            self.set_act(&f.out, y, shape, Ty::I8(f.q));
            return Ok(());
        }
        let xi = self.f32_of(&x);
        let y = self.new_buf(4 * channels * lout);
        let mut fields = vec![Field::In(xi), Field::Out(y)];
        fields.extend(geom);
        self.push(opcode::MAXPOOL_F32, fields, false, 0);
        self.set_act(&node.output[0], y, shape, Ty::F32);
        Ok(())
    }

    fn reduce(
        &mut self,
        node: &NodeProto,
        x: Act,
        axes_in: Option<&Const>,
    ) -> Result<(), CompileError> {
        let bad = |what: &str| self.node_err(node, what.to_string());
        let rank = x.shape.len();
        let (axes, keep, mean) = if node.op_type == "GlobalAveragePool" {
            ((2..rank).map(|a| a as i64).collect(), true, true)
        } else {
            let axes = axes_in
                .map(Const::ints)
                .or_else(|| attr_ints(node, "axes"))
                .unwrap_or_default();
            let axes = if axes.is_empty() && attr_i(node, "noop_with_empty_axes", 0) == 0 {
                (0..rank as i64).collect()
            } else {
                axes
            };
            (
                axes,
                attr_i(node, "keepdims", 1) != 0,
                node.op_type == "ReduceMean",
            )
        };
        if axes.is_empty() {
            return Err(bad("reducing over no axes is not supported"));
        }
        let mut ax: Vec<usize> = axes
            .iter()
            .map(|&a| norm_axis(a, rank).ok_or_else(|| bad("axis out of range")))
            .collect::<Result<_, _>>()?;
        ax.sort_unstable();
        ax.dedup();
        let (first, last) = (ax[0], ax[ax.len() - 1]);
        if last - first + 1 != ax.len() {
            return Err(bad("only contiguous reduction axes are supported"));
        }
        let outer: usize = x.shape[..first].iter().product();
        let len: usize = x.shape[first..=last].iter().product();
        let inner: usize = x.shape[last + 1..].iter().product();
        let shape: Vec<usize> = x
            .shape
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| {
                if ax.contains(&i) {
                    keep.then_some(1)
                } else {
                    Some(d)
                }
            })
            .collect();
        let geom = [outer, len, inner].map(|v| Field::W(v as u32));
        let div = if mean { len as f64 } else { 1.0 };
        if let (Ty::Dq(qx), Some(f)) = (x.ty, self.quant_consumer(&node.output[0], false)) {
            let (mult, shift) = quantize_multiplier(qx.scale as f64 / (f.q.scale as f64 * div))
                .ok_or_else(|| bad("requantisation scale is out of range"))?;
            let y = self.new_buf(outer * inner);
            let mut fields = vec![Field::In(x.id), Field::Out(y)];
            fields.extend(geom);
            fields.extend([qx.zp, f.q.zp, mult, shift].map(|v| Field::W(v as u32)));
            self.push(opcode::REDUCE_I8, fields, false, 0);
            self.mark_done(&f);
            self.set_act(&f.out, y, shape, Ty::I8(f.q));
            return Ok(());
        }
        let xi = self.f32_of(&x);
        let y = self.new_buf(4 * outer * inner);
        let mut fields = vec![Field::In(xi), Field::Out(y)];
        fields.extend(geom);
        fields.push(Field::W((1.0 / div as f32).to_bits()));
        self.push(opcode::REDUCE_F32, fields, false, 0);
        self.set_act(&node.output[0], y, shape, Ty::F32);
        Ok(())
    }

    fn softmax(&mut self, node: &NodeProto, x: Act) -> Result<(), CompileError> {
        let rank = x.shape.len();
        let axis = norm_axis(attr_i(node, "axis", -1), rank)
            .ok_or_else(|| self.node_err(node, "axis out of range"))?;
        let xi = self.f32_of(&x);
        let n: usize = x.shape.iter().product();
        let y = self.new_buf(4 * n);
        let geom = [
            x.shape[..axis].iter().product::<usize>(),
            x.shape[axis],
            x.shape[axis + 1..].iter().product(),
        ];
        let mut fields = vec![Field::In(xi), Field::Out(y)];
        fields.extend(geom.map(|v| Field::W(v as u32)));
        self.push(opcode::SOFTMAX_F32, fields, true, 0);
        self.set_act(&node.output[0], y, x.shape, Ty::F32);
        Ok(())
    }

    fn concat(&mut self, node: &NodeProto, inputs: &[Option<Val>]) -> Result<(), CompileError> {
        let bad = |what: &str| self.node_err(node, what.to_string());
        let acts: Vec<Act> = inputs
            .iter()
            .map(|v| match v {
                Some(Val::Act(a)) => Ok(a.clone()),
                _ => Err(bad("constant inputs are not supported")),
            })
            .collect::<Result<_, _>>()?;
        let rank = acts[0].shape.len();
        let axis =
            norm_axis(attr_i(node, "axis", 0), rank).ok_or_else(|| bad("axis out of range"))?;
        let same = |a: &Act| {
            a.shape.len() == rank && (0..rank).all(|i| i == axis || a.shape[i] == acts[0].shape[i])
        };
        if !acts.iter().all(same) {
            return Err(bad("input shapes differ outside the concatenation axis"));
        }
        let outer: usize = acts[0].shape[..axis].iter().product();
        let mut shape = acts[0].shape.clone();
        shape[axis] = acts.iter().map(|a| a.shape[axis]).sum();
        let chunks: Vec<usize> = acts
            .iter()
            .map(|a| a.shape[axis..].iter().product())
            .collect();
        let n: usize = shape.iter().product();
        let fused = if acts.iter().all(|a| matches!(a.ty, Ty::Dq(_))) {
            self.quant_consumer(&node.output[0], false)
        } else {
            None
        };
        let (elem, ids, ty, out_name) = match fused {
            Some(f) => {
                let ids = acts
                    .iter()
                    .map(|a| match a.ty {
                        Ty::Dq(qi) if qi != f.q => self.lut(a, qi, f.q, |v| v),
                        _ => a.id,
                    })
                    .collect::<Vec<_>>();
                self.mark_done(&f);
                (1, ids, Ty::I8(f.q), f.out)
            }
            None => (
                4,
                acts.iter().map(|a| self.f32_of(a)).collect(),
                Ty::F32,
                node.output[0].clone(),
            ),
        };
        let y = self.new_buf(elem * n);
        let mut fields = vec![
            Field::Out(y),
            Field::W(elem as u32),
            Field::W(outer as u32),
            Field::W(ids.len() as u32),
        ];
        for (id, chunk) in ids.iter().zip(&chunks) {
            fields.extend([Field::In(*id), Field::W(*chunk as u32)]);
        }
        self.push(opcode::CONCAT, fields, false, 0);
        self.set_act(&out_name, y, shape, ty);
        Ok(())
    }

    fn quantize_linear(&mut self, node: &NodeProto, x: Act) -> Result<(), CompileError> {
        let q = self
            .q_params(node)
            .ok_or_else(|| self.node_err(node, "only per-tensor int8 quantisation is supported"))?;
        let n: usize = x.shape.iter().product();
        let id = match x.ty {
            Ty::Dq(q0) if q0 == q => x.id,
            Ty::Dq(qi) => self.lut(&x, qi, q, |v| v),
            Ty::F32 => {
                let y = self.new_buf(n);
                self.push(
                    opcode::QUANTIZE,
                    vec![
                        Field::In(x.id),
                        Field::Out(y),
                        Field::W(n as u32),
                        Field::W(q.scale.to_bits()),
                        Field::W(q.zp as u32),
                    ],
                    false,
                    0,
                );
                y
            }
            Ty::I8(_) => return Err(self.node_err(node, "input is already quantised")),
        };
        self.set_act(&node.output[0], id, x.shape, Ty::I8(q));
        Ok(())
    }
}

pub(crate) fn lower(model: &ModelProto, opts: &CompileOptions) -> Result<Program, CompileError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| CompileError::Graph("model has no graph".into()))?;
    let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let output_name = match &opts.output {
        OutputSelector::Index(i) => graph.output.get(*i).map(|o| o.name.clone()),
        OutputSelector::Name(n) => graph
            .output
            .iter()
            .find(|o| &o.name == n)
            .map(|o| o.name.clone()),
    }
    .ok_or_else(|| CompileError::UnknownOutput {
        selector: opts.output.clone(),
        available: graph.output.iter().map(|o| o.name.clone()).collect(),
    })?;
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(CompileError::Graph(format!(
            "model has {} inputs; exactly one is supported",
            inputs.len()
        )));
    };
    if onnx::elem_type(input) != Some(dtype::FLOAT) {
        return Err(CompileError::Graph(format!(
            "input '{}' is not float32",
            input.name
        )));
    }
    let declared = onnx::declared_dims(input);
    let fits = declared.as_ref().is_none_or(|d| {
        d.len() == opts.input_shape.len()
            && d.iter()
                .zip(&opts.input_shape)
                .all(|(d, g)| d.is_none_or(|d| d == *g))
    });
    if !fits || opts.input_shape.first() != Some(&1) {
        let declared = declared.map_or("unknown".to_string(), |d| {
            format!(
                "{:?}",
                d.iter()
                    .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
                    .collect::<Vec<_>>()
            )
        });
        return Err(CompileError::InputShape {
            input: input.name.clone(),
            declared,
            given: opts.input_shape.clone(),
        });
    }

    // Only the nodes the selected output depends on.
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut needed = HashSet::new();
    let mut stack = vec![output_name.as_str()];
    while let Some(name) = stack.pop() {
        if let Some(&i) = producer.get(name)
            && needed.insert(i)
        {
            stack.extend(
                graph.node[i]
                    .input
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !s.is_empty()),
            );
        }
    }
    let mut order: Vec<usize> = needed.into_iter().collect();
    order.sort_unstable();
    if let Some(e) = first_unsupported(&graph.node, &order) {
        return Err(e);
    }
    let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
    for &i in &order {
        for name in &graph.node[i].input {
            consumers.entry(name.clone()).or_default().push(i);
        }
    }

    let input_len: usize = opts.input_shape.iter().product();
    let mut l = Lower {
        nodes: &graph.node,
        output_name: output_name.clone(),
        consumers,
        vals: HashMap::new(),
        sizes: vec![4 * input_len],
        ops: Vec::new(),
        done: HashSet::new(),
        materialised: HashMap::new(),
    };
    for t in &graph.initializer {
        l.vals
            .insert(t.name.clone(), Val::Const(Rc::new(onnx::tensor(t)?)));
    }
    for n in &graph.node {
        if n.op_type == "Constant" {
            let t = n
                .attribute
                .iter()
                .find_map(|a| a.t.as_ref())
                .ok_or_else(|| {
                    CompileError::Graph(format!(
                        "constant node '{}' holds no tensor",
                        node_label(n)
                    ))
                })?;
            l.vals
                .insert(n.output[0].clone(), Val::Const(Rc::new(onnx::tensor(t)?)));
        }
    }
    l.set_act(&input.name, 0, opts.input_shape.clone(), Ty::F32);
    for i in order {
        if !l.done.contains(&i) && graph.node[i].op_type != "Constant" {
            l.node(i)?;
        }
    }
    let out = match l.vals.get(&output_name) {
        Some(Val::Act(a)) => a.clone(),
        _ => {
            return Err(CompileError::Graph(format!(
                "output '{output_name}' does not depend on the input"
            )));
        }
    };
    let output = l.f32_of(&out);
    Ok(Program {
        sizes: l.sizes,
        ops: l.ops,
        input: 0,
        output,
        input_len,
        output_len: out.shape.iter().product(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_round_trip_through_the_engine() {
        for real in [0.0003, 0.1, 0.5, 0.999, 1.0, 1.7, 300.0] {
            let (m, s) = quantize_multiplier(real).unwrap();
            assert!((1 << 30..=i32::MAX).contains(&m), "{real}: {m}");
            let got = gauntlet_tinyml::requantize(1_000_000, m, s) as f64;
            assert!((got - 1_000_000.0 * real).abs() <= 1.0, "{real}: {got}");
        }
        assert_eq!(quantize_multiplier(1e-12), None);
        assert_eq!(quantize_multiplier(f64::NAN), None);
    }

    #[test]
    fn broadcast_finds_the_channel_block() {
        assert_eq!(broadcast(&[1, 16, 121], &[1, 16, 1]), Some((16, 121)));
        assert_eq!(broadcast(&[1, 10], &[1, 10]), Some((10, 1)));
        assert_eq!(broadcast(&[1, 128], &[128]), Some((128, 1)));
        assert_eq!(broadcast(&[1, 2, 3], &[]), Some((1, 1)));
        assert_eq!(
            broadcast(&[1, 2, 3], &[2, 1]),
            Some((2, 3)),
            "trailing 1s broadcast"
        );
        assert_eq!(broadcast(&[1, 2, 3], &[3, 1]), None, "misaligned dims");
        assert_eq!(
            broadcast(&[1, 10], &[4, 10]),
            None,
            "would grow the activation"
        );
        assert_eq!(
            broadcast(&[2, 3, 4], &[2, 1, 4]),
            None,
            "non-contiguous block"
        );
    }

    mod graphs {
        use tract_onnx::pb::{self, GraphProto, TensorProto, TypeProto, ValueInfoProto};

        use super::*;

        pub fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
            NodeProto {
                op_type: op.into(),
                name: name.into(),
                input: inputs.iter().map(|s| s.to_string()).collect(),
                output: vec![output.into()],
                ..Default::default()
            }
        }

        pub fn scalar(name: &str, dtype: i32, v: f32) -> TensorProto {
            let mut t = TensorProto {
                name: name.into(),
                data_type: dtype,
                ..Default::default()
            };
            match dtype {
                dtype::FLOAT => t.float_data = vec![v],
                _ => t.int32_data = vec![v as i32],
            }
            t
        }

        /// Input `x` (float, `[1, n]` given at compile time) and one output.
        pub fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, output: &str) -> ModelProto {
            let value = |name: &str| ValueInfoProto {
                name: name.into(),
                r#type: Some(TypeProto {
                    value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                        elem_type: dtype::FLOAT,
                        shape: None,
                    })),
                    ..Default::default()
                }),
                ..Default::default()
            };
            ModelProto {
                graph: Some(GraphProto {
                    node: nodes,
                    initializer: inits,
                    input: vec![value("x")],
                    output: vec![value(output)],
                    ..Default::default()
                }),
                ..Default::default()
            }
        }

        /// Compiles `m` for `x: [1, input.len()]` and runs it on `input` in the engine.
        pub fn run(m: &ModelProto, input: &[f32]) -> (Vec<f32>, Vec<String>) {
            let opts = CompileOptions {
                input_shape: vec![1, input.len()],
                output: OutputSelector::Index(0),
            };
            let c = crate::emit::emit(&lower(m, &opts).unwrap()).unwrap();
            let model = gauntlet_tinyml::Model::parse(&c.bytes).unwrap();
            let mut out = vec![0.0; model.output_len()];
            let mut arena = vec![0u8; model.arena_len()];
            model.run(input, &mut out, &mut arena).unwrap();
            (out, c.ops)
        }
    }

    #[test]
    fn two_computed_tensors_combine_in_fp32_in_operand_order() {
        use graphs::*;
        let x = [-2.0f32, -0.5, 1.0, 3.0];
        // e = x + 3 (never 0 here), then op(x, e) with x first: `Sub`/`Div` must not swap.
        for (op, f) in [
            ("Add", (|a, b| a + b) as fn(f32, f32) -> f32),
            ("Sub", |a, b| a - b),
            ("Mul", |a, b| a * b),
            ("Div", |a, b| a / b),
        ] {
            let m = model(
                vec![
                    node("Add", "shift", &["x", "three"], "e"),
                    node(op, "combine", &["x", "e"], "y"),
                ],
                vec![scalar("three", dtype::FLOAT, 3.0)],
                "y",
            );
            let (out, ops) = run(&m, &x);
            let want: Vec<f32> = x.iter().map(|&v| f(v, v + 3.0)).collect();
            assert_eq!(out, want, "{op}");
            assert_eq!(ops, ["binary_f32", "binary2_f32"], "{op}");
        }
    }

    #[test]
    fn two_dequantized_tensors_fuse_into_one_int8_op() {
        use graphs::*;
        // x → Q(0.1, 0) → DQ = a;  Relu(a) → Q(0.05, −128) → DQ = r;  Sub(r, a) → Q(0.2, 3) → DQ.
        let m = model(
            vec![
                node("QuantizeLinear", "qx", &["x", "sx", "zx"], "xq"),
                node("DequantizeLinear", "dx", &["xq", "sx", "zx"], "a"),
                node("Relu", "relu", &["a"], "ra"),
                node("QuantizeLinear", "qr", &["ra", "sr", "zr"], "rq"),
                node("DequantizeLinear", "dr", &["rq", "sr", "zr"], "r"),
                node("Sub", "diff", &["r", "a"], "d"),
                node("QuantizeLinear", "qd", &["d", "sd", "zd"], "dq"),
                node("DequantizeLinear", "dd", &["dq", "sd", "zd"], "y"),
            ],
            vec![
                scalar("sx", dtype::FLOAT, 0.1),
                scalar("zx", dtype::INT8, 0.0),
                scalar("sr", dtype::FLOAT, 0.05),
                scalar("zr", dtype::INT8, -128.0),
                scalar("sd", dtype::FLOAT, 0.2),
                scalar("zd", dtype::INT8, 3.0),
            ],
            "y",
        );
        let x = [-1.0f32, -0.3, 0.0, 0.25, 2.0, 100.0];
        let (out, ops) = run(&m, &x);
        let q = |v: f32, s: f32, z: i32| (quantize(v, Q { scale: s, zp: z }) as i32 - z) as f32 * s;
        let want: Vec<f32> = x
            .iter()
            .map(|&v| {
                let a = q(v, 0.1, 0);
                q(q(a.max(0.0), 0.05, -128) - a, 0.2, 3)
            })
            .collect();
        assert_eq!(out, want);
        assert_eq!(
            ops,
            ["quantize", "lut_i8", "binary2_i8", "dequantize"],
            "the Sub runs on int8 values, never materialising floats"
        );
    }

    #[test]
    fn int8_ops_with_a_constant_use_a_table_for_a_scalar_and_compute_per_channel_ones() {
        use graphs::*;
        let x = [-1.0f32, -0.3, 0.0, 0.25, 2.0, 100.0];
        let bias = [0.5f32, -0.25, 1.0, 0.125, -3.0, 0.0];
        let q = |v: f32, s: f32, z: i32| (quantize(v, Q { scale: s, zp: z }) as i32 - z) as f32 * s;
        for (c, ops) in [
            (vec![0.5f32], ["quantize", "lut_i8", "dequantize"]),
            (bias.to_vec(), ["quantize", "binary_i8", "dequantize"]),
        ] {
            let mut k = scalar("c", dtype::FLOAT, 0.0);
            k.float_data = c.clone();
            k.dims = vec![c.len() as i64];
            let m = model(
                vec![
                    node("QuantizeLinear", "qx", &["x", "sx", "zx"], "xq"),
                    node("DequantizeLinear", "dx", &["xq", "sx", "zx"], "a"),
                    node("Sub", "shift", &["c", "a"], "d"),
                    node("QuantizeLinear", "qd", &["d", "sd", "zd"], "dq"),
                    node("DequantizeLinear", "dd", &["dq", "sd", "zd"], "y"),
                ],
                vec![
                    k,
                    scalar("sx", dtype::FLOAT, 0.1),
                    scalar("zx", dtype::INT8, 0.0),
                    scalar("sd", dtype::FLOAT, 0.03),
                    scalar("zd", dtype::INT8, -5.0),
                ],
                "y",
            );
            let (out, got) = run(&m, &x);
            let want: Vec<f32> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| q(c[i % c.len()] - q(v, 0.1, 0), 0.03, -5))
                .collect();
            assert_eq!(out, want, "{ops:?}");
            assert_eq!(got, ops);
        }
    }

    #[test]
    fn broadcasting_two_computed_tensors_is_refused_naming_the_node() {
        use graphs::*;
        let mut mean = node("ReduceMean", "mean", &["x"], "m");
        mean.attribute.push(tract_onnx::pb::AttributeProto {
            name: "axes".into(),
            ints: vec![1],
            ..Default::default()
        });
        let m = model(
            vec![mean, node("Sub", "center", &["x", "m"], "y")],
            vec![],
            "y",
        );
        let opts = CompileOptions {
            input_shape: vec![1, 4],
            output: OutputSelector::Index(0),
        };
        let err = lower(&m, &opts).unwrap_err();
        assert!(
            matches!(&err, CompileError::Unsupported { op, node, .. } if op == "Sub" && node == "center"),
            "{err:?}"
        );
        assert!(err.to_string().contains("[1, 4] and [1, 1]"), "{err}");
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let q = Q { scale: 0.5, zp: -3 };
        assert_eq!(quantize(0.25, q), -3);
        assert_eq!(quantize(0.75, q), -1);
        assert_eq!(quantize(1000.0, q), 127);
        assert_eq!(quantize(-1000.0, q), -128);
    }
}
