//! `Constant`: a tensor held in the node, available to every later node at compile time.

use super::*;

pub(super) const FAMILY: Family = Family {
    ops: &["Constant"],
    lower: None,
    fold: Some(|_, node, _| {
        let t = node
            .attribute
            .iter()
            .find_map(|a| a.t.as_ref())
            .ok_or_else(|| {
                CompileError::Graph(format!(
                    "constant node '{}' holds no tensor",
                    node_label(node)
                ))
            })?;
        onnx::tensor(t)
    }),
};

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn a_constant_node_feeds_later_nodes_as_tract_reads_it() {
        let mut constant = node("Constant", "bias", &[], "c");
        constant.attribute.push(tract_onnx::pb::AttributeProto {
            name: "value".into(),
            r#type: tract_onnx::pb::attribute_proto::AttributeType::Tensor as i32,
            t: Some(floats("", &[1, 4], vec![0.5, -1.0, 2.0, 0.0])),
            ..Default::default()
        });
        let m = model(
            vec![constant, node("Add", "add", &["x", "c"], "y")],
            vec![],
            "y",
        );
        let delta = max_delta_vs_tract(&m, &[1, 4], 20);
        assert_eq!(delta, 0.0);
    }
}
