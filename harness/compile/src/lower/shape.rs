//! Operators that change only a shape (`Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`,
//! `Identity`, `Dropout` and a `Cast` to float32): no engine op, the buffer is relabelled.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &[
        "Unsqueeze",
        "Squeeze",
        "Reshape",
        "Flatten",
        "Identity",
        "Dropout",
        "Cast",
    ],
    lower: Some(lower),
    fold: Some(fold),
};

fn lower(l: &mut Lower<'_>, node: &NodeProto, inputs: &[Option<Val>]) -> Result<(), CompileError> {
    if node.op_type == "Cast" && attr_i(node, "to", 0) as i32 != dtype::FLOAT {
        let to = match attr_i(node, "to", 0) as i32 {
            dtype::FLOAT16 => "float16".to_string(),
            t => format!("ONNX element type {t}"),
        };
        let what =
            format!("casts to {to} are not supported (the engine computes in float32 and int8)");
        return Err(l.node_err(node, what));
    }
    let a = l.act_input(node, inputs, 0)?;
    let shape = l.reshape(node, &a.shape, Lower::const_input(inputs, 1).as_deref())?;
    l.set_act(&node.output[0], a.id, shape, a.ty);
    Ok(())
}

fn fold(l: &Lower<'_>, node: &NodeProto, inputs: &[Option<Val>]) -> Result<Const, CompileError> {
    let x = Lower::const_input(inputs, 0).ok_or_else(|| l.node_err(node, "missing input"))?;
    let shape = l.reshape(node, &x.shape, Lower::const_input(inputs, 1).as_deref())?;
    let per_tensor = x.quant.as_ref().is_some_and(|q| q.scale.len() == 1);
    let quant = if per_tensor { x.quant.clone() } else { None };
    let dtype = if node.op_type == "Cast" {
        attr_i(node, "to", 1) as i32
    } else {
        x.dtype
    };
    Ok(Const {
        dtype,
        shape,
        data: x.data.clone(),
        quant,
    })
}

impl Lower<'_> {
    /// Output shape of a shape-only op.
    fn reshape(
        &self,
        node: &NodeProto,
        shape: &[usize],
        arg: Option<&Const>,
    ) -> Result<Vec<usize>, CompileError> {
        let axes = || arg.map(Const::ints).or_else(|| attr_ints(node, "axes"));
        let bad = |what: &str| self.node_err(node, what.to_string());
        Ok(match node.op_type.as_str() {
            "Unsqueeze" => {
                let axes = axes().ok_or_else(|| bad("axes are missing"))?;
                let rank = shape.len() + axes.len();
                let mut axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| norm_axis(a, rank).ok_or_else(|| bad("axis out of range")))
                    .collect::<Result<_, _>>()?;
                axes.sort_unstable();
                let mut out = shape.to_vec();
                for a in axes {
                    out.insert(a.min(out.len()), 1);
                }
                out
            }
            "Squeeze" => match axes() {
                None => shape.iter().copied().filter(|&d| d != 1).collect(),
                Some(axes) => {
                    let axes: Vec<usize> = axes
                        .iter()
                        .map(|&a| norm_axis(a, shape.len()).ok_or_else(|| bad("axis out of range")))
                        .collect::<Result<_, _>>()?;
                    if axes.iter().any(|&a| shape[a] != 1) {
                        return Err(bad("squeezed axis is not 1"));
                    }
                    shape
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !axes.contains(i))
                        .map(|(_, &d)| d)
                        .collect()
                }
            },
            "Reshape" => {
                let target = arg.ok_or_else(|| bad("shape must be constant"))?.ints();
                let total: usize = shape.iter().product();
                let mut out: Vec<usize> = target
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if d == 0 {
                            shape.get(i).copied().unwrap_or(0)
                        } else {
                            d.max(1) as usize
                        }
                    })
                    .collect();
                if let Some(p) = target.iter().position(|&d| d == -1) {
                    let rest: usize = out
                        .iter()
                        .enumerate()
                        .filter(|&(i, _)| i != p)
                        .map(|(_, &d)| d)
                        .product();
                    out[p] = total.checked_div(rest).unwrap_or(0);
                }
                if out.iter().product::<usize>() != total {
                    return Err(bad("target shape has a different element count"));
                }
                out
            }
            "Flatten" => {
                let axis = norm_axis(attr_i(node, "axis", 1), shape.len() + 1)
                    .ok_or_else(|| bad("axis out of range"))?;
                vec![
                    shape[..axis].iter().product(),
                    shape[axis..].iter().product(),
                ]
            }
            _ => shape.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn shape_only_ops_keep_the_values_tract_gives() {
        let reshape = node("Reshape", "reshape", &["x", "shape"], "r");
        let flatten = with_int(node("Flatten", "flatten", &["x"], "r"), "axis", 1);
        let unsqueeze = node("Unsqueeze", "unsqueeze", &["x", "axes"], "r");
        for (name, first, inits) in [
            ("Reshape", reshape, vec![int64s("shape", &[1, -1])]),
            ("Flatten", flatten, vec![]),
            ("Unsqueeze", unsqueeze, vec![int64s("axes", &[0])]),
        ] {
            // A Relu after the shape op gives the engine an op to run on the relabelled buffer.
            let m = model(vec![first, node("Relu", "relu", &["r"], "y")], inits, "y");
            let delta = max_delta_vs_tract(&m, &[1, 2, 6], 19);
            assert_eq!(delta, 0.0, "{name}");
        }
    }

    #[test]
    fn a_cast_to_float16_is_refused_naming_the_node() {
        let m = model(
            vec![with_int(
                node("Cast", "to_half", &["x"], "y"),
                "to",
                dtype::FLOAT16 as i64,
            )],
            vec![],
            "y",
        );
        let opts = CompileOptions {
            input_shape: vec![1, 4],
            output: OutputSelector::Index(0),
        };
        let err = crate::lower::lower(&m, &opts).unwrap_err().to_string();
        assert!(err.contains("to_half") && err.contains("float16"), "{err}");
    }
}
