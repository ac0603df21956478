//! `ReduceSum`, `ReduceMean` and `GlobalAveragePool`: a sum over contiguous axes, scaled.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["ReduceSum", "ReduceMean", "GlobalAveragePool"],
    lower: Some(|l, node, inputs| {
        let x = l.act_input(node, inputs, 0)?;
        l.reduce(node, x, Lower::const_input(inputs, 1).as_deref())
    }),
    fold: None,
};

impl Lower<'_> {
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
            self.push(Opcode::ReduceI8, fields, false, 0);
            self.mark_done(&f);
            self.set_act(&f.out, y, shape, Ty::I8(f.q));
            return Ok(());
        }
        let xi = self.f32_of(&x);
        let y = self.new_buf(4 * outer * inner);
        let mut fields = vec![Field::In(xi), Field::Out(y)];
        fields.extend(geom);
        fields.push(Field::W((1.0 / div as f32).to_bits()));
        self.push(Opcode::ReduceF32, fields, false, 0);
        self.set_act(&node.output[0], y, shape, Ty::F32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn sums_and_means_over_an_axis_match_tract() {
        let mean = with_int(
            with_ints(node("ReduceMean", "mean", &["x"], "y"), "axes", &[2]),
            "keepdims",
            0,
        );
        let sum = node("ReduceSum", "sum", &["x", "axes"], "y");
        let gap = node("GlobalAveragePool", "gap", &["x"], "y");
        for (name, m) in [
            ("ReduceMean", model(vec![mean], vec![], "y")),
            (
                "ReduceSum",
                model(vec![sum], vec![int64s("axes", &[1])], "y"),
            ),
            ("GlobalAveragePool", model(vec![gap], vec![], "y")),
        ] {
            let delta = max_delta_vs_tract(&m, &[1, 3, 8], 15);
            assert!(delta <= 1e-6, "{name}: {delta:e}");
        }
    }
}
