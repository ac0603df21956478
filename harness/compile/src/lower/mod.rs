//! ONNX nodes → engine ops over numbered activation buffers, with shapes inferred for batch 1.
//! Each operator family lowers in its own file; [`ops::FAMILIES`] lists them and is the
//! compiler's supported-operator list.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use gauntlet_tinyml::{BinaryKind, Opcode, UnaryKind};
use tract_onnx::pb::{ModelProto, NodeProto};

use crate::onnx::{self, Const, QuantInfo, attr_f, attr_i, attr_ints, attr_s, dtype};
use crate::{CompileError, CompileOptions, OutputSelector};
use ops::Family;

mod activation;
mod binary;
mod concat;
mod constant;
mod conv;
mod gemm;
mod ops;
mod pool;
mod quant;
mod reduce;
mod shape;
mod softmax;
#[cfg(test)]
mod testing;

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
    pub code: Opcode,
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

/// The inputs of an op with constant weights.
struct Weighted {
    x: Act,
    w: Rc<Const>,
    b: Option<Rc<Const>>,
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

/// The engine's kind for an ONNX `Add`/`Sub`/`Mul`/`Div` whose activation is its first operand
/// (`act_first`) or its second (`c − x`, `c / x`).
fn binary_kind(op_type: &str, act_first: bool) -> BinaryKind {
    match (op_type, act_first) {
        ("Add", _) => BinaryKind::Add,
        ("Sub", true) => BinaryKind::Sub,
        ("Sub", false) => BinaryKind::RSub,
        ("Mul", _) => BinaryKind::Mul,
        ("Div", true) => BinaryKind::Div,
        _ => BinaryKind::RDiv,
    }
}

fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

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
    order
        .iter()
        .map(|&i| &nodes[i])
        .find(|n| ops::family(n).is_none())
        .map(unsupported_operator)
}

fn unsupported_operator(n: &NodeProto) -> CompileError {
    let op = if ops::is_standard(n) {
        n.op_type.clone()
    } else {
        format!("{}.{}", n.domain, n.op_type)
    };
    CompileError::UnsupportedOperator {
        op,
        node: node_label(n),
    }
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

    fn push(&mut self, code: Opcode, fields: Vec<Field>, in_place: bool, macs: u64) {
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
                    Opcode::Dequantize,
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
        self.push(Opcode::LutI8, fields, true, 0);
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
        let family = ops::family(node).ok_or_else(|| unsupported_operator(node))?;
        let inputs = self.acts(node)?;
        if inputs.iter().flatten().all(|v| matches!(v, Val::Const(_))) {
            let fold = family
                .fold
                .ok_or_else(|| self.node_err(node, "constant inputs are not folded"))?;
            let c = fold(self, node, &inputs)?;
            self.set(&node.output[0], Val::Const(Rc::new(c)));
            return Ok(());
        }
        let lower = family
            .lower
            .ok_or_else(|| self.node_err(node, "inputs must be constant"))?;
        lower(self, node, &inputs)
    }

    /// Activation input `i` of `node`.
    fn act_input(
        &self,
        node: &NodeProto,
        inputs: &[Option<Val>],
        i: usize,
    ) -> Result<Act, CompileError> {
        match inputs.get(i) {
            Some(Some(Val::Act(a))) => Ok(a.clone()),
            _ => Err(self.node_err(node, format!("input {i} must be an activation"))),
        }
    }

    /// The activation, constant weights and optional constant bias of a Conv or Gemm.
    fn weighted_inputs(
        &self,
        node: &NodeProto,
        inputs: &[Option<Val>],
    ) -> Result<Weighted, CompileError> {
        let w = Lower::const_input(inputs, 1)
            .ok_or_else(|| self.node_err(node, "weights must be constant"))?;
        Ok(Weighted {
            x: self.act_input(node, inputs, 0)?,
            w,
            b: Lower::const_input(inputs, 2),
        })
    }

    /// Constant input `i` of `node`, folded already.
    fn const_input(inputs: &[Option<Val>], i: usize) -> Option<Rc<Const>> {
        match inputs.get(i) {
            Some(Some(Val::Const(c))) => Some(c.clone()),
            _ => None,
        }
    }
}

pub(crate) fn lower(model: &ModelProto, opts: &CompileOptions) -> Result<Program, CompileError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| CompileError::Graph("model has no graph".into()))?;
    let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let output_name = match &opts.output {
        OutputSelector::Index(i) => graph.output.get(*i as usize).map(|o| o.name.clone()),
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
    l.set_act(&input.name, 0, opts.input_shape.clone(), Ty::F32);
    for i in order {
        if !l.done.contains(&i) {
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

    #[test]
    fn two_dequantized_tensors_fuse_into_one_int8_op() {
        use super::testing::*;
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
        use super::testing::*;
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
        use super::testing::*;
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
