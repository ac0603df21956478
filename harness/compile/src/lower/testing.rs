//! Small ONNX graphs built in code, compiled and run in the engine, and the same graphs run by
//! tract: the differential check every operator family's tests use.

use tract_onnx::pb::{
    self, AttributeProto, GraphProto, OperatorSetIdProto, TensorProto, TypeProto, ValueInfoProto,
};
use tract_onnx::prelude::*;

use super::*;

pub fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

pub fn with_ints(mut n: NodeProto, name: &str, ints: &[i64]) -> NodeProto {
    n.attribute.push(AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    });
    n
}

pub fn with_int(mut n: NodeProto, name: &str, i: i64) -> NodeProto {
    n.attribute.push(AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    });
    n
}

pub fn scalar(name: &str, dtype: i32, v: f32) -> TensorProto {
    let mut t = TensorProto {
        name: name.into(),
        data_type: dtype,
        ..Default::default()
    };
    match dtype {
        dtype::FLOAT => t.float_data = vec![v],
        _ => t.int32_data = vec![v as i32],
    }
    t
}

/// A float32 constant of shape `dims`.
pub fn floats(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    assert_eq!(data.len() as i64, dims.iter().product::<i64>(), "{name}");
    TensorProto {
        name: name.into(),
        data_type: dtype::FLOAT,
        dims: dims.to_vec(),
        float_data: data,
        ..Default::default()
    }
}

/// An int64 constant (shapes, axes).
pub fn int64s(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: dtype::INT64,
        dims: vec![data.len() as i64],
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// Deterministic values in [-1, 1): a linear congruential sequence, so each test's data is
/// fixed without a random-number crate.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Input `x` (float, shape given at compile time) and one output, at ONNX opset 13.
pub fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, output: &str) -> ModelProto {
    let value = |name: &str| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: dtype::FLOAT,
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: inits,
            input: vec![value("x")],
            output: vec![value(output)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Compiles `m` for `x` of `shape` and runs it on `input` in the engine; also returns the
/// engine's op names.
pub fn run_shaped(m: &ModelProto, shape: &[usize], input: &[f32]) -> (Vec<f32>, Vec<String>) {
    let opts = CompileOptions {
        input_shape: shape.to_vec(),
        output: OutputSelector::Index(0),
    };
    let c = crate::emit::emit(&lower(m, &opts).unwrap()).unwrap();
    let model = gauntlet_tinyml::Model::parse(&c.bytes).unwrap();
    let mut out = vec![0.0; model.output_len()];
    let mut arena = vec![0u8; model.arena_len()];
    model.run(input, &mut out, &mut arena).unwrap();
    (out, c.ops)
}

/// Compiles `m` for `x: [1, input.len()]` and runs it on `input` in the engine.
pub fn run(m: &ModelProto, input: &[f32]) -> (Vec<f32>, Vec<String>) {
    run_shaped(m, &[1, input.len()], input)
}

/// tract's output for `input` of `shape`, flattened.
pub fn tract(m: &ModelProto, shape: &[usize], input: &[f32]) -> Vec<f32> {
    let x = Tensor::from_shape(shape, input).unwrap();
    let model = tract_onnx::onnx()
        .model_for_proto_model(m)
        .unwrap()
        .with_input_fact(0, f32::fact(shape).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let out = model.run(tvec!(x.into())).unwrap();
    out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

/// Runs `m` in the engine and in tract on seeded data of `shape` and returns the largest
/// |engine − tract|, after checking both give the same number of values.
pub fn max_delta_vs_tract(m: &ModelProto, shape: &[usize], seed: u64) -> f32 {
    let input = values(shape.iter().product(), seed);
    let (engine, _) = run_shaped(m, shape, &input);
    let reference = tract(m, shape, &input);
    assert_eq!(engine.len(), reference.len(), "output sizes differ");
    engine
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}
