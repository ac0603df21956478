//! `Conv`: 1-D convolutions, fp32 or int8 (a QDQ pattern fused into one int8 kernel).

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["Conv"],
    lower: Some(lower),
    fold: None,
};

fn lower(l: &mut Lower<'_>, node: &NodeProto, inputs: &[Option<Val>]) -> Result<(), CompileError> {
    let Weighted { x, w, b } = l.weighted_inputs(node, inputs)?;
    l.conv(node, x, &w, b.as_deref())
}

impl Lower<'_> {
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
            self.push(Opcode::Conv1dI8, fields, false, macs);
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
        self.push(Opcode::Conv1dF32, fields, false, macs);
        self.set_act(&out_name, y, shape, Ty::F32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn matches_tract_with_stride_padding_dilation_and_groups() {
        for (strides, pads, dilations, groups) in [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2)] {
            let (cin, cout, k) = (4, 6, 3);
            let conv = with_int(
                with_ints(
                    with_ints(
                        with_ints(
                            node("Conv", "conv", &["x", "w", "b"], "y"),
                            "strides",
                            &[strides],
                        ),
                        "pads",
                        &[pads, pads],
                    ),
                    "dilations",
                    &[dilations],
                ),
                "group",
                groups,
            );
            let w = values((cout * cin / groups * k) as usize, 7);
            let m = model(
                vec![conv],
                vec![
                    floats("w", &[cout, cin / groups, k], w),
                    floats("b", &[cout], values(cout as usize, 8)),
                ],
                "y",
            );
            let delta = max_delta_vs_tract(&m, &[1, cin as usize, 17], 1);
            assert!(
                delta <= 1e-5,
                "stride {strides} pad {pads} dilation {dilations} groups {groups}: {delta:e}"
            );
        }
    }
}
