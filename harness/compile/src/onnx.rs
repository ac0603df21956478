//! Reading ONNX protobuf pieces (tensors, attributes) into plain host values.

use tract_onnx::pb::{self, NodeProto, TensorProto};
use tract_onnx::prelude::Framework;

use crate::CompileError;

pub(crate) fn decode(onnx: &[u8]) -> Result<pb::ModelProto, CompileError> {
    tract_onnx::onnx()
        .proto_model_for_read(&mut &onnx[..])
        .map_err(|e| CompileError::Protobuf(e.to_string()))
}

/// Integer storage behind a `DequantizeLinear`ed constant, kept so int8 kernels use the exact
/// stored weights rather than re-quantising floats.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuantInfo {
    pub q: Vec<i32>,
    /// One per tensor, or one per slice along `axis`.
    pub scale: Vec<f32>,
    pub zp: Vec<i32>,
    pub axis: usize,
    pub int8: bool,
}

/// A constant tensor. Every f32, int8…int32 and small int64 value is exact in f64.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Const {
    /// ONNX element type (`dtype`), needed to tell int8 from uint8 zero points.
    pub dtype: i32,
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
    pub quant: Option<QuantInfo>,
}

impl Const {
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn scalar(&self) -> Option<f64> {
        (self.data.len() == 1).then(|| self.data[0])
    }

    pub fn ints(&self) -> Vec<i64> {
        self.data.iter().map(|&v| v as i64).collect()
    }
}

pub(crate) mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
}

pub(crate) fn tensor(t: &TensorProto) -> Result<Const, CompileError> {
    let err = |what: &str| CompileError::Tensor {
        name: t.name.clone(),
        what: what.to_string(),
    };
    if t.data_location == Some(1) {
        return Err(err("external data is not supported"));
    }
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err("negative dimension")))
        .collect::<Result<Vec<_>, _>>()?;
    let n: usize = shape.iter().product();
    let raw = &t.raw_data;
    let from_raw = |size: usize, f: &dyn Fn(&[u8]) -> f64| -> Result<Vec<f64>, CompileError> {
        if raw.len() != n * size {
            return Err(err("raw data length does not match the shape"));
        }
        Ok(raw.chunks_exact(size).map(f).collect())
    };
    let data: Vec<f64> = match t.data_type {
        dtype::FLOAT if raw.is_empty() => t.float_data.iter().map(|&v| v as f64).collect(),
        dtype::FLOAT => from_raw(4, &|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)?,
        // ONNX keeps non-raw float16 values as their bit patterns in `int32_data`.
        dtype::FLOAT16 if raw.is_empty() => t.int32_data.iter().map(|&v| f16(v as u16)).collect(),
        dtype::FLOAT16 => from_raw(2, &|b| f16(u16::from_le_bytes([b[0], b[1]])))?,
        dtype::DOUBLE if raw.is_empty() => t.double_data.clone(),
        dtype::DOUBLE => from_raw(8, &|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))?,
        dtype::INT8 if raw.is_empty() => t.int32_data.iter().map(|&v| v as f64).collect(),
        dtype::INT8 => from_raw(1, &|b| b[0] as i8 as f64)?,
        dtype::UINT8 if raw.is_empty() => t.int32_data.iter().map(|&v| v as f64).collect(),
        dtype::UINT8 => from_raw(1, &|b| b[0] as f64)?,
        dtype::INT32 if raw.is_empty() => t.int32_data.iter().map(|&v| v as f64).collect(),
        dtype::INT32 => from_raw(4, &|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)?,
        dtype::INT64 if raw.is_empty() => t.int64_data.iter().map(|&v| v as f64).collect(),
        dtype::INT64 => from_raw(8, &|b| {
            i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64
        })?,
        other => return Err(err(&format!("element type {other} is not supported"))),
    };
    if data.len() != n {
        return Err(err("value count does not match the shape"));
    }
    Ok(Const {
        dtype: t.data_type,
        shape,
        data,
        quant: None,
    })
}

/// An IEEE half-precision value, exactly (every f16 is an f64).
fn f16(bits: u16) -> f64 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub(crate) fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

pub(crate) fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

pub(crate) fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

pub(crate) fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

/// Declared dims of a graph input: `Some(n)` fixed, `None` symbolic or unknown.
pub(crate) fn declared_dims(v: &pb::ValueInfoProto) -> Option<Vec<Option<usize>>> {
    use pb::tensor_shape_proto::dimension::Value;
    let pb::type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(Value::DimValue(n)) if n > 0 => Some(n as usize),
                _ => None,
            })
            .collect(),
    )
}

pub(crate) fn elem_type(v: &pb::ValueInfoProto) -> Option<i32> {
    let pb::type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    Some(t.elem_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values_decode_exactly() {
        assert_eq!(f16(0x3c00), 1.0);
        assert_eq!(f16(0xc000), -2.0);
        assert_eq!(f16(0x3555), 0.333251953125);
        assert_eq!(f16(0x7bff), 65504.0, "largest normal");
        assert_eq!(f16(0x0001), 2f64.powi(-24), "smallest subnormal");
        assert_eq!(f16(0x7c00), f64::INFINITY);
        assert!(f16(0x7e00).is_nan());
    }
}
