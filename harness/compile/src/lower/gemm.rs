//! `Gemm` and `MatMul` against constant weights, fp32 or int8.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["Gemm", "MatMul"],
    lower: Some(lower),
    fold: None,
};

fn lower(l: &mut Lower<'_>, node: &NodeProto, inputs: &[Option<Val>]) -> Result<(), CompileError> {
    let Weighted { x, w, b } = l.weighted_inputs(node, inputs)?;
    l.gemm(node, x, &w, b.as_deref())
}

impl Lower<'_> {
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
            self.push(Opcode::GemmI8, fields, false, macs);
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
        self.push(Opcode::GemmF32, fields, false, macs);
        self.set_act(&out_name, y, shape, Ty::F32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn matmul_and_gemm_with_bias_match_tract() {
        let matmul = model(
            vec![node("MatMul", "mm", &["x", "w"], "y")],
            vec![floats("w", &[8, 5], values(40, 3))],
            "y",
        );
        let gemm = model(
            vec![with_int(
                node("Gemm", "fc", &["x", "w", "b"], "y"),
                "transB",
                1,
            )],
            vec![
                floats("w", &[5, 8], values(40, 4)),
                floats("b", &[5], values(5, 5)),
            ],
            "y",
        );
        for (name, m) in [("MatMul", matmul), ("Gemm", gemm)] {
            let delta = max_delta_vs_tract(&m, &[1, 8], 2);
            assert!(delta <= 1e-5, "{name}: {delta:e}");
        }
    }
}
