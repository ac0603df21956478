//! `Add`, `Sub`, `Mul`, `Div`: an activation with a broadcast constant, two equally shaped
//! activations, or two constants folded at compile time.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["Add", "Sub", "Mul", "Div"],
    lower: Some(|l, node, inputs| l.binary(node, inputs)),
    fold: Some(fold),
};

fn fold(l: &Lower<'_>, node: &NodeProto, inputs: &[Option<Val>]) -> Result<Const, CompileError> {
    let (Some(x), Some(y)) = (Lower::const_input(inputs, 0), Lower::const_input(inputs, 1)) else {
        return Err(l.node_err(node, "missing input"));
    };
    let (shape, n) = if x.len() >= y.len() {
        (x.shape.clone(), x.len())
    } else {
        (y.shape.clone(), y.len())
    };
    if !(x.len() == n || x.len() == 1) || !(y.len() == n || y.len() == 1) {
        return Err(l.node_err(
            node,
            "constant folding supports equal shapes or a scalar operand only",
        ));
    }
    let kind = binary_kind(&node.op_type, true);
    let at = |k: &Const, i: usize| k.data[if k.len() == 1 { 0 } else { i }] as f32;
    let data = (0..n)
        .map(|i| kind.apply(at(&x, i), at(&y, i)) as f64)
        .collect();
    Ok(Const {
        dtype: dtype::FLOAT,
        shape,
        data,
        quant: None,
    })
}

impl Lower<'_> {
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
        let kind = binary_kind(&node.op_type, act_first);
        let consts: Vec<f32> = k.data.iter().map(|&v| v as f32).collect();
        let n: usize = x.shape.iter().product();
        let fields = |xi: Id, y: Id| {
            vec![
                Field::In(xi),
                Field::Out(y),
                Field::W(n as u32),
                Field::W(kind as u32),
                Field::Const(f32_bytes(consts.iter().copied())),
                Field::W(period as u32),
                Field::W(inner as u32),
            ]
        };
        if let (Ty::Dq(qi), Some(f)) = (x.ty, self.quant_consumer(&node.output[0], false)) {
            // One constant: a 256-entry table. A per-channel one (a bias after an int8 MatMul)
            // would take a table per channel, so the engine computes it instead, alike.
            let y = if period == 1 {
                self.lut(&x, qi, f.q, |v| kind.apply(v, consts[0]))
            } else {
                let y = self.new_buf(n);
                let mut fields = fields(x.id, y);
                for q in [qi, f.q] {
                    fields.extend([Field::W(q.scale.to_bits()), Field::W(q.zp as u32)]);
                }
                self.push(Opcode::BinaryI8, fields, true, 0);
                y
            };
            self.mark_done(&f);
            self.set_act(&f.out, y, x.shape, Ty::I8(f.q));
            return Ok(());
        }
        let xi = self.f32_of(&x);
        let y = self.new_buf(4 * n);
        self.push(Opcode::BinaryF32, fields(xi, y), true, 0);
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
        let kind = binary_kind(&node.op_type, true);
        let n: usize = a.shape.iter().product();
        let head = |ia: Id, ib: Id, y: Id| {
            vec![
                Field::In(ia),
                Field::In(ib),
                Field::Out(y),
                Field::W(n as u32),
                Field::W(kind as u32),
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
            self.push(Opcode::Binary2I8, fields, false, 0);
            self.mark_done(&f);
            self.set_act(&f.out, y, a.shape.clone(), Ty::I8(f.q));
            return Ok(());
        }
        let (ia, ib) = (self.f32_of(a), self.f32_of(b));
        let y = self.new_buf(4 * n);
        self.push(Opcode::Binary2F32, head(ia, ib, y), false, 0);
        self.set_act(&node.output[0], y, a.shape.clone(), Ty::F32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_op_with_a_constant_on_either_side_matches_tract() {
        // The divisor keeps away from 0 so a quotient's rounding is comparable in absolute terms.
        let away_from_zero: Vec<f32> = values(6, 9)
            .iter()
            .map(|v| v.signum() * (1.0 + v.abs()))
            .collect();
        for op in ["Add", "Sub", "Mul", "Div"] {
            for (inputs, name) in [(["x", "c"], "x op c"), (["c", "x"], "c op x")] {
                let shift = node("Add", "shift", &["x", "two"], "x2");
                let m = model(
                    vec![
                        shift,
                        node(
                            op,
                            "op",
                            &inputs.map(|i| if i == "x" { "x2" } else { i }),
                            "y",
                        ),
                    ],
                    vec![
                        scalar("two", dtype::FLOAT, 2.0),
                        floats("c", &[1, 6], away_from_zero.clone()),
                    ],
                    "y",
                );
                let delta = max_delta_vs_tract(&m, &[1, 6], 11);
                assert!(delta <= 1e-6, "{op} ({name}): {delta:e}");
            }
        }
    }

    #[test]
    fn two_constants_fold_to_what_tract_computes() {
        let m = model(
            vec![
                node("Div", "fold", &["a", "b"], "k"),
                node("Mul", "scale", &["x", "k"], "y"),
            ],
            vec![
                floats("a", &[4], vec![1.0, -3.0, 0.5, 7.0]),
                scalar("b", dtype::FLOAT, 3.0),
            ],
            "y",
        );
        let delta = max_delta_vs_tract(&m, &[1, 4], 12);
        assert!(delta <= 1e-6, "{delta:e}");
        assert_eq!(
            run(&m, &[1.0; 4]).1,
            ["binary_f32"],
            "the Div is gone at compile time"
        );
    }
}
