//! `Softmax` over one axis, in fp32.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["Softmax"],
    lower: Some(|l, node, inputs| {
        let x = l.act_input(node, inputs, 0)?;
        l.softmax(node, x)
    }),
    fold: None,
};

impl Lower<'_> {
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
        self.push(Opcode::SoftmaxF32, fields, true, 0);
        self.set_act(&node.output[0], y, x.shape, Ty::F32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn softmax_over_the_last_and_a_middle_axis_matches_tract() {
        for (axis, shape) in [(-1, vec![1, 10]), (1, vec![1, 4, 5])] {
            let m = model(
                vec![with_int(
                    node("Softmax", "softmax", &["x"], "y"),
                    "axis",
                    axis,
                )],
                vec![],
                "y",
            );
            let delta = max_delta_vs_tract(&m, &shape, 16);
            assert!(delta <= 1e-6, "axis {axis}: {delta:e}");
        }
    }
}
