//! The operator registry: which ONNX operators the engine runs, and who lowers each. This list
//! *is* the supported list — the up-front check that names a model's first unsupported node and
//! the per-node dispatch both read it, so they cannot disagree.

use tract_onnx::pb::NodeProto;

use super::{Lower, Val, activation, binary, concat, constant, conv, gemm, pool, quant, reduce};
use super::{shape, softmax};
use crate::CompileError;
use crate::onnx::Const;

/// Lowers a node with at least one activation input into engine ops.
pub(super) type LowerFn =
    fn(&mut Lower<'_>, &NodeProto, &[Option<Val>]) -> Result<(), CompileError>;
/// Evaluates a node whose inputs are all constants, at compile time.
pub(super) type FoldFn = fn(&Lower<'_>, &NodeProto, &[Option<Val>]) -> Result<Const, CompileError>;

/// One family of standard-domain operators lowered by one file.
pub(super) struct Family {
    pub ops: &'static [&'static str],
    /// `None` for operators whose inputs must all be constant.
    pub lower: Option<LowerFn>,
    /// `None` for operators the compiler does not evaluate on constants.
    pub fold: Option<FoldFn>,
}

pub(super) const FAMILIES: &[Family] = &[
    conv::FAMILY,
    gemm::FAMILY,
    binary::FAMILY,
    activation::FAMILY,
    pool::FAMILY,
    reduce::FAMILY,
    softmax::FAMILY,
    concat::FAMILY,
    quant::FAMILY,
    shape::FAMILY,
    constant::FAMILY,
];

pub(super) fn is_standard(n: &NodeProto) -> bool {
    n.domain.is_empty() || n.domain == "ai.onnx"
}

/// The family that lowers `n`, if the engine supports its operator.
pub(super) fn family(n: &NodeProto) -> Option<&'static Family> {
    if !is_standard(n) {
        return None;
    }
    FAMILIES
        .iter()
        .find(|f| f.ops.contains(&n.op_type.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_has_one_family() {
        let mut all: Vec<&str> = FAMILIES
            .iter()
            .flat_map(|f| f.ops.iter().copied())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "an operator is listed by two families");
        assert!(
            FAMILIES
                .iter()
                .all(|f| f.lower.is_some() || f.fold.is_some())
        );
    }

    #[test]
    fn only_the_standard_domain_is_supported() {
        let node = |domain: &str, op: &str| NodeProto {
            op_type: op.into(),
            domain: domain.into(),
            ..Default::default()
        };
        assert!(family(&node("", "Conv")).is_some());
        assert!(family(&node("ai.onnx", "Gemm")).is_some());
        assert!(family(&node("com.microsoft", "Gemm")).is_none());
        assert!(family(&node("", "QLinearMatMul")).is_none());
    }
}
