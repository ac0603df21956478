//! Compiles ONNX models into `gauntlet-tinyml`'s compact format for microcontrollers.
//!
//! ```ignore
//! let c = compile_onnx(&std::fs::read("cwru_cnn_int8_qdq.onnx")?,
//!                      &CompileOptions { input_shape: vec![1, 1, 1024], output: OutputSelector::Index(0) })?;
//! let model = gauntlet_tinyml::Model::parse(&c.bytes)?;   // c.arena_len == model.arena_len()
//! ```
//! The compiler reads the protobuf through tract-onnx's prost types, keeps only the nodes the
//! selected output depends on (so SKAB's ArgMax/ArrayFeatureExtractor label branch is dropped),
//! folds constant subgraphs (e.g. `DequantizeLinear` of int8 weights), infers shapes from the
//! batch-1 input shape, and lowers each node:
//! - a float op whose activation inputs are all `DequantizeLinear` outputs and whose only
//!   consumer is a `QuantizeLinear` (optionally through a `Relu`) becomes an int8 kernel
//!   (Conv, Gemm/MatMul, MaxPool, ReduceSum/Mean, Concat, any one-input elementwise op as a
//!   256-entry table or, with a per-channel constant, computed per element in f32, and
//!   Add/Sub/Mul/Div of two equally shaped tensors, such as an autoencoder's
//!   `x − reconstruction` and its square); a matching `DequantizeLinear`→`QuantizeLinear` pair is
//!   a no-op;
//! - anything else runs in fp32, with explicit dequantize/quantize ops at the boundary.
//!
//! Each operator family lowers in its own file under `lower/`, registered in one list
//! (`lower/ops.rs`) that is the supported set; operators outside it are refused, the first one
//! in graph order named, with [`CompileError::UnsupportedOperator`].

mod emit;
mod lower;
mod onnx;

/// Which graph output the compiled model produces.
pub use gauntlet_wire::OutputSelector;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileOptions {
    /// Shape of one input window including batch 1, e.g. `[1, 1, 1024]`.
    pub input_shape: Vec<usize>,
    pub output: OutputSelector,
}

/// A compiled model and the figures a report wants about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The blob `gauntlet_tinyml::Model::parse` reads.
    pub bytes: Vec<u8>,
    /// Engine op names in execution order, e.g. `conv1d_i8`.
    pub ops: Vec<String>,
    /// Scratch bytes the engine needs (`Model::arena_len`).
    pub arena_len: usize,
    /// Bytes of constants (weights, biases, tables, requantisation parameters).
    pub weights_bytes: usize,
    /// Multiply-accumulates per inference in Conv and Gemm kernels.
    pub macs: u64,
    pub input_len: usize,
    pub output_len: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("parse onnx protobuf: {0}")]
    Protobuf(String),
    #[error("read graph: {0}")]
    Graph(String),
    #[error("select output {selector}: the model's outputs are {available:?}")]
    UnknownOutput {
        selector: OutputSelector,
        available: Vec<String>,
    },
    #[error("bind input '{input}': declared shape {declared} does not accept {given:?}")]
    InputShape {
        input: String,
        declared: String,
        given: Vec<usize>,
    },
    #[error("compile node '{node}': operator {op} is not supported by the MCU engine")]
    UnsupportedOperator { op: String, node: String },
    #[error("compile node '{node}' ({op}): {what}")]
    Unsupported {
        op: String,
        node: String,
        what: String,
    },
    #[error("serialise model: {0}")]
    Internal(String),
    #[error("read tensor '{name}': {what}")]
    Tensor { name: String, what: String },
}

/// Compiles one ONNX model for a batch-1 input of `opts.input_shape`.
pub fn compile_onnx(onnx: &[u8], opts: &CompileOptions) -> Result<Compiled, CompileError> {
    let model = onnx::decode(onnx)?;
    let program = lower::lower(&model, opts)?;
    emit::emit(&program)
}
