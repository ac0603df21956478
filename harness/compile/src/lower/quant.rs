//! `QuantizeLinear` and `DequantizeLinear`: per-tensor int8 activations (a dequantised value
//! stays int8 until a float kernel needs it), and constants — per-channel weights among them —
//! folded with their quantisation kept for the int8 kernels.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["QuantizeLinear", "DequantizeLinear"],
    lower: Some(lower),
    fold: Some(fold),
};

fn lower(l: &mut Lower<'_>, node: &NodeProto, inputs: &[Option<Val>]) -> Result<(), CompileError> {
    let x = l.act_input(node, inputs, 0)?;
    if node.op_type == "QuantizeLinear" {
        return l.quantize_linear(node, x);
    }
    let q = l
        .q_params(node)
        .ok_or_else(|| l.node_err(node, "only per-tensor int8 dequantisation is supported"))?;
    match x.ty {
        Ty::I8(_) => {
            l.set_act(&node.output[0], x.id, x.shape, Ty::Dq(q));
            Ok(())
        }
        _ => Err(l.node_err(node, "input is not int8")),
    }
}

fn fold(l: &Lower<'_>, node: &NodeProto, inputs: &[Option<Val>]) -> Result<Const, CompileError> {
    let x = Lower::const_input(inputs, 0).ok_or_else(|| l.node_err(node, "missing input"))?;
    let scale = Lower::const_input(inputs, 1).ok_or_else(|| l.node_err(node, "missing scale"))?;
    let zp = Lower::const_input(inputs, 2);
    let per_channel = scale.len() > 1;
    let axis = if per_channel {
        norm_axis(attr_i(node, "axis", 1), x.shape.len())
            .ok_or_else(|| l.node_err(node, "axis out of range"))?
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
        .map(|i| zp.as_ref().map_or(0, |z| z.data[i.min(z.len() - 1)] as i32))
        .collect();
    let scales: Vec<f32> = scale.data.iter().map(|&s| s as f32).collect();
    if node.op_type == "QuantizeLinear" {
        let zdt = zp.as_ref().map_or(dtype::UINT8, |z| z.dtype);
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
                ((v as f32 / scales[slot(i)]).round_ties_even() as i32 + zps[slot(i)]).clamp(lo, hi)
                    as f64
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

impl Lower<'_> {
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
                    Opcode::Quantize,
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn a_quantise_dequantise_pair_matches_tract_bit_for_bit() {
        for (scale, zp) in [(0.02f32, 3.0f32), (0.007, -128.0), (0.5, 0.0)] {
            let m = model(
                vec![
                    node("QuantizeLinear", "q", &["x", "s", "z"], "xq"),
                    node("DequantizeLinear", "dq", &["xq", "s", "z"], "y"),
                ],
                vec![
                    scalar("s", dtype::FLOAT, scale),
                    scalar("z", dtype::INT8, zp),
                ],
                "y",
            );
            let delta = max_delta_vs_tract(&m, &[1, 64], 18);
            assert_eq!(delta, 0.0, "scale {scale} zero point {zp}");
        }
    }
}
