//! `Relu` and `Sigmoid`: in place on fp32, a lookup table between int8 quantisers.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["Relu", "Sigmoid"],
    lower: Some(|l, node, inputs| {
        let x = l.act_input(node, inputs, 0)?;
        l.unary(node, x)
    }),
    fold: None,
};

impl Lower<'_> {
    fn unary(&mut self, node: &NodeProto, x: Act) -> Result<(), CompileError> {
        let kind = if node.op_type == "Sigmoid" {
            UnaryKind::Sigmoid
        } else {
            UnaryKind::Relu
        };
        if let (Ty::Dq(qi), Some(fq)) = (x.ty, self.quant_consumer(&node.output[0], false)) {
            let y = self.lut(&x, qi, fq.q, |v| kind.apply(v));
            self.mark_done(&fq);
            self.set_act(&fq.out, y, x.shape, Ty::I8(fq.q));
            return Ok(());
        }
        let xi = self.f32_of(&x);
        let n: usize = x.shape.iter().product();
        let y = self.new_buf(4 * n);
        self.push(
            Opcode::UnaryF32,
            vec![
                Field::In(xi),
                Field::Out(y),
                Field::W(n as u32),
                Field::W(kind as u32),
            ],
            true,
            0,
        );
        self.set_act(&node.output[0], y, x.shape, Ty::F32);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn relu_and_sigmoid_match_tract() {
        for op in ["Relu", "Sigmoid"] {
            let m = model(vec![node(op, "act", &["x"], "y")], vec![], "y");
            let delta = max_delta_vs_tract(&m, &[1, 64], 13);
            assert!(delta <= 1e-6, "{op}: {delta:e}");
        }
    }
}
