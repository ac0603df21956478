//! `Concat` of activations along one axis.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["Concat"],
    lower: Some(|l, node, inputs| l.concat(node, inputs)),
    fold: None,
};

impl Lower<'_> {
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
        self.push(Opcode::Concat, fields, false, 0);
        self.set_act(&out_name, y, shape, ty);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn concat_along_each_axis_matches_tract() {
        for axis in [1, 2] {
            let m = model(
                vec![
                    node("Relu", "relu", &["x"], "r"),
                    with_int(node("Concat", "cat", &["x", "r"], "y"), "axis", axis),
                ],
                vec![],
                "y",
            );
            let delta = max_delta_vs_tract(&m, &[1, 3, 4], 17);
            assert_eq!(delta, 0.0, "axis {axis}");
        }
    }
}
