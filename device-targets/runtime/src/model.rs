//! What every runtime shares: load options, the declared model facts, errors, and the loaded-model
//! trait the agent times.

use std::collections::BTreeSet;
use std::fmt;

pub use gauntlet_wire::OutputSelector;

/// onnxruntime's graph optimisation levels; tract always optimises fully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphOptimization {
    Disabled,
    Basic,
    Extended,
    #[default]
    All,
}

impl GraphOptimization {
    pub const KEYWORDS: &'static [&'static str] = gauntlet_wire::GRAPH_OPTIMIZATIONS;

    pub fn keyword(self) -> &'static str {
        Self::KEYWORDS[self as usize]
    }

    pub fn from_keyword(word: &str) -> Option<GraphOptimization> {
        use GraphOptimization::*;
        [Disabled, Basic, Extended, All]
            .into_iter()
            .find(|g| g.keyword() == word)
    }
}

/// How a build asks to be run: which runtime and with which settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// `tract` or `onnxruntime`.
    pub name: String,
    /// Intra-op threads. 1 by default: a streaming board runs one small window at a time, where
    /// extra threads add wake-ups rather than speed, and share cores with the sampler and the OS.
    pub threads: usize,
    pub optimization: GraphOptimization,
    /// Execution providers in order of preference, short names (`cpu`, `cuda`, `tensorrt`,
    /// `xnnpack`, `acl`); empty = the CPU provider only.
    pub providers: Vec<String>,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            name: crate::TRACT.into(),
            threads: 1,
            optimization: GraphOptimization::All,
            providers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// The model input the window feeds; `None` requires the model to have exactly one input.
    pub input_name: Option<String>,
    /// Shape of one inference's input including batch 1, e.g. `[1, 1, 1024]` or `[1, 128]`.
    pub window_shape: Vec<usize>,
    pub output: OutputSelector,
    pub runtime: RuntimeSettings,
}

/// One dimension as the model declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    /// A symbolic dimension such as a dynamic batch `B` (any non-constant expression).
    Symbol(String),
    /// The model leaves this dimension undeclared.
    Unknown,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbol(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// `None` when the model does not declare the rank.
    pub shape: Option<Vec<Dim>>,
    /// Lowercase element type, e.g. `f32`, `i64`; `None` when undeclared.
    pub dtype: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Inputs and outputs as declared in the model file (before symbols are bound).
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    /// Index into `inputs` of the input the window feeds.
    pub selected_input: usize,
    /// Index into `outputs` of the output returned by [`LoadedModel::run`].
    pub selected_output: usize,
    /// Number of f32 values [`LoadedModel::run`] writes per window.
    pub output_len: usize,
    /// Distinct operator types in the graph, domain-qualified when not the default ONNX domain
    /// (e.g. `Conv`, `com.microsoft.QGemm`), sorted.
    pub ops: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "load model: operator {} (node '{node}') is not supported by the runtime{}",
        qualified_op(domain.as_deref(), op),
        if others.is_empty() { String::new() } else { format!(" (also unsupported: {})", others.join(", ")) }
    )]
    UnsupportedOperator {
        op: String,
        /// `None` for the default ONNX domain.
        domain: Option<String>,
        node: String,
        /// Further distinct unsupported operators in the same graph, domain-qualified.
        others: Vec<String>,
    },
    #[error("load model: no input named '{name}' (model inputs: {})", available.join(", "))]
    UnknownInput {
        name: String,
        available: Vec<String>,
    },
    #[error("load model: the model has {} inputs ({}); name the one the window feeds", available.len(), available.join(", "))]
    AmbiguousInput { available: Vec<String> },
    #[error("load model: no output {selector} (model outputs: {})", available.join(", "))]
    UnknownOutput {
        selector: OutputSelector,
        available: Vec<String>,
    },
    #[error(
        "load model: input '{input}' has shape {expected} which does not fit window shape {got:?}"
    )]
    ShapeMismatch {
        input: String,
        expected: String,
        got: Vec<usize>,
    },
    #[error("run inference: window has {got} values but window shape {shape:?} needs {expected}")]
    WindowLength {
        expected: usize,
        got: usize,
        shape: Vec<usize>,
    },
    /// The runtime a build names is not on this device (not built in, or its library not found).
    #[error("load model: runtime `{runtime}` is not available here: {reason}")]
    RuntimeUnavailable { runtime: String, reason: String },
    #[error(
        "load model: {runtime} has no execution provider `{provider}` (it has: {})",
        available.join(", ")
    )]
    ProviderUnavailable {
        runtime: String,
        provider: String,
        available: Vec<String>,
    },
    #[error("load model: {reason}")]
    Load { reason: String },
    #[error("run inference: {reason}")]
    Run { reason: String },
}

pub(crate) fn shape_string<D: fmt::Display>(dims: &[D]) -> String {
    format!(
        "[{}]",
        dims.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

pub(crate) fn qualified_op(domain: Option<&str>, op: &str) -> String {
    match domain {
        Some(d) => format!("{d}.{op}"),
        None => op.to_string(),
    }
}

pub(crate) fn load_err(e: impl fmt::Display) -> RuntimeError {
    RuntimeError::Load {
        reason: e.to_string(),
    }
}

/// A model ready to run batch-1 inferences.
pub trait LoadedModel: Send {
    fn info(&self) -> &ModelInfo;
    /// Runs one window (row-major, `window_shape` elements) and replaces `out`'s contents with the
    /// selected output as f32; `out` is reused so steady-state runs do not reallocate it.
    fn run(&mut self, window: &[f32], out: &mut Vec<f32>) -> Result<(), RuntimeError>;
}

impl<M: LoadedModel + ?Sized> LoadedModel for Box<M> {
    fn info(&self) -> &ModelInfo {
        (**self).info()
    }

    fn run(&mut self, window: &[f32], out: &mut Vec<f32>) -> Result<(), RuntimeError> {
        (**self).run(window, out)
    }
}

pub(crate) fn check_window(window: &[f32], shape: &[usize]) -> Result<(), RuntimeError> {
    let expected = shape.iter().product();
    if window.len() == expected {
        Ok(())
    } else {
        Err(RuntimeError::WindowLength {
            expected,
            got: window.len(),
            shape: shape.to_vec(),
        })
    }
}

pub(crate) fn select_input(
    inputs: &[TensorInfo],
    wanted: Option<&str>,
) -> Result<usize, RuntimeError> {
    let names = || inputs.iter().map(|t| t.name.clone()).collect();
    match wanted {
        Some(name) => {
            inputs
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| RuntimeError::UnknownInput {
                    name: name.to_string(),
                    available: names(),
                })
        }
        None if inputs.len() == 1 => Ok(0),
        None => Err(RuntimeError::AmbiguousInput { available: names() }),
    }
}

pub(crate) fn select_output(
    outputs: &[TensorInfo],
    selector: &OutputSelector,
) -> Result<usize, RuntimeError> {
    let found = match selector {
        OutputSelector::Index(i) => Some(*i as usize).filter(|&i| i < outputs.len()),
        OutputSelector::Name(n) => outputs.iter().position(|t| &t.name == n),
    };
    found.ok_or_else(|| RuntimeError::UnknownOutput {
        selector: selector.clone(),
        available: outputs.iter().map(|t| t.name.clone()).collect(),
    })
}

/// Whether a declared shape admits the window shape: same rank, fixed dimensions equal; symbolic
/// and undeclared dimensions take any value.
pub(crate) fn check_declared_fits(
    declared: &TensorInfo,
    window_shape: &[usize],
) -> Result<(), RuntimeError> {
    let Some(dims) = &declared.shape else {
        return Ok(());
    };
    let fits = dims.len() == window_shape.len()
        && dims
            .iter()
            .zip(window_shape)
            .all(|(d, &w)| !matches!(d, Dim::Fixed(n) if *n != w));
    if fits {
        Ok(())
    } else {
        Err(RuntimeError::ShapeMismatch {
            input: declared.name.clone(),
            expected: shape_string(dims),
            got: window_shape.to_vec(),
        })
    }
}

/// Distinct operator types of an ONNX graph, domain-qualified outside the default domain.
pub(crate) fn graph_ops(graph: &tract_onnx::pb::GraphProto) -> Vec<String> {
    let ops: BTreeSet<String> = graph
        .node
        .iter()
        .map(|n| {
            qualified_op(
                (!n.domain.is_empty() && n.domain != "ai.onnx").then_some(n.domain.as_str()),
                &n.op_type,
            )
        })
        .collect();
    ops.into_iter().collect()
}
