//! `MaxPool` over one spatial axis, fp32 or int8.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["MaxPool"],
    lower: Some(|l, node, inputs| {
        let x = l.act_input(node, inputs, 0)?;
        l.maxpool(node, x)
    }),
    fold: None,
};

impl Lower<'_> {
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
            self.push(Opcode::MaxpoolI8, fields, false, 0);
            self.mark_done(&f);
            self.set_act(&f.out, y, shape, Ty::I8(f.q));
            return Ok(());
        }
        let xi = self.f32_of(&x);
        let y = self.new_buf(4 * channels * lout);
        let mut fields = vec![Field::In(xi), Field::Out(y)];
        fields.extend(geom);
        self.push(Opcode::MaxpoolF32, fields, false, 0);
        self.set_act(&node.output[0], y, shape, Ty::F32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn maxpool_with_stride_and_padding_matches_tract() {
        for (k, stride, pad) in [(2, 2, 0), (3, 2, 1), (3, 1, 1)] {
            let pool = with_ints(
                with_ints(
                    with_ints(node("MaxPool", "pool", &["x"], "y"), "kernel_shape", &[k]),
                    "strides",
                    &[stride],
                ),
                "pads",
                &[pad, pad],
            );
            let m = model(vec![pool], vec![], "y");
            let delta = max_delta_vs_tract(&m, &[1, 3, 15], 14);
            assert_eq!(delta, 0.0, "kernel {k} stride {stride} pad {pad}");
        }
    }
}
