//! Gauntlet's inference runtimes behind one trait, shared by the agent (which times them) and the
//! host-side model check (which loads a build once to see it fits the scenario).
//!
//! Modelled on tract's `core/src/runtime.rs`: each runtime has a `name`, a `check` that says
//! whether it can run on this machine (with its version and execution providers), and `load`.
//! [`Runtimes::available`] is the registry: every runtime, with what `check` found.
//!
//! - [`TractRuntime`]: pure Rust, always available.
//! - [`OnnxRuntime`]: onnxruntime's C library through the `ort` crate, loaded at run time; see
//!   [`onnxruntime::discover`] for where it is looked for.
//! - [`ScriptedRuntime`]: a deterministic test double for the layers above.

mod model;
pub mod onnxruntime;
mod scripted;
mod tract;

use std::path::PathBuf;

pub use model::{
    Dim, GraphOptimization, LoadOptions, LoadedModel, ModelInfo, OutputSelector, RuntimeError,
    RuntimeSettings, TensorInfo,
};
pub use onnxruntime::OnnxRuntime;
pub use scripted::{FakeModel, SCRIPTED, ScriptedRuntime};
pub use tract::{TRACT_VERSION, TractModel, TractRuntime};

/// Runtime names as scenarios write them (the wire crate owns the list).
pub use gauntlet_wire::RUNTIME_NAMES;
pub const TRACT: &str = RUNTIME_NAMES[0];
pub const ONNXRUNTIME: &str = RUNTIME_NAMES[1];

/// What a runtime is on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub name: String,
    pub version: String,
    /// Execution providers it can use here, short lowercase names (`cpu`, `cuda`, `xnnpack` …).
    pub providers: Vec<String>,
    /// The shared library it runs from, when it is one.
    pub library: Option<PathBuf>,
    /// SHA-256 of that library.
    pub library_sha256: Option<[u8; 32]>,
}

/// Loads models; one implementation per inference engine.
pub trait Runtime: Send + Sync {
    /// The key scenarios use (`tract`, `onnxruntime`).
    fn name(&self) -> &'static str;
    /// Whether this runtime can run here; `Err` says why not (e.g. no library found).
    fn check(&self) -> Result<RuntimeInfo, RuntimeError>;
    fn load(&self, onnx: &[u8], opts: &LoadOptions) -> Result<Box<dyn LoadedModel>, RuntimeError>;

    /// Every runtime behind this one, with what its check found, for the agent's hello.
    fn inventory(&self) -> Vec<(&'static str, Result<RuntimeInfo, RuntimeError>)> {
        vec![(self.name(), self.check())]
    }
}

/// The registry: every runtime this build of Gauntlet has, dispatching each load to the runtime
/// its options name.
pub struct Runtimes {
    runtimes: Vec<Box<dyn Runtime>>,
}

impl Runtimes {
    /// tract, and onnxruntime from the first library [`onnxruntime::discover`] finds, starting
    /// with `onnxruntime_library` when the rig gives one.
    pub fn available(onnxruntime_library: Option<PathBuf>) -> Runtimes {
        Runtimes::new(vec![
            Box::new(TractRuntime),
            Box::new(OnnxRuntime::new(onnxruntime_library)),
        ])
    }

    pub fn new(runtimes: Vec<Box<dyn Runtime>>) -> Runtimes {
        Runtimes { runtimes }
    }

    pub fn get(&self, name: &str) -> Option<&dyn Runtime> {
        self.runtimes
            .iter()
            .find(|r| r.name() == name)
            .map(|r| r.as_ref())
    }
}

impl Runtime for Runtimes {
    fn name(&self) -> &'static str {
        "runtimes"
    }

    /// The registry itself always works; its members may not.
    fn check(&self) -> Result<RuntimeInfo, RuntimeError> {
        Ok(RuntimeInfo {
            name: self.name().into(),
            version: env!("CARGO_PKG_VERSION").into(),
            providers: Vec::new(),
            library: None,
            library_sha256: None,
        })
    }

    fn load(&self, onnx: &[u8], opts: &LoadOptions) -> Result<Box<dyn LoadedModel>, RuntimeError> {
        let name = opts.runtime.name.as_str();
        match self.get(name) {
            Some(runtime) => runtime.load(onnx, opts),
            None => Err(RuntimeError::RuntimeUnavailable {
                runtime: name.into(),
                reason: format!(
                    "this agent has {}",
                    self.runtimes
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    fn inventory(&self) -> Vec<(&'static str, Result<RuntimeInfo, RuntimeError>)> {
        self.runtimes.iter().flat_map(|r| r.inventory()).collect()
    }
}
