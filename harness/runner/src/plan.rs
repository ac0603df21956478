//! The plan: everything a run needs, loaded and checked before any board is touched, so bad input
//! fails fast and nothing half-measured is written.

use std::path::PathBuf;
use std::sync::Arc;

use gauntlet_dataset::{DatasetError, Windows};
use gauntlet_runtime::{
    LoadOptions, LoadedModel, OutputSelector, Runtime, RuntimeError, TractRuntime,
};
use gauntlet_spec::{
    AnomalyScore, AnomalyThreshold, Artifact, Board, Diagnostic, Diagnostics, Location, Rig,
    Scenario, Task,
};
use sha2::{Digest, Sha256};

/// Causes are written into each message rather than chained as `source`, so that the message
/// reads whole once (a chain printed with `{:#}` would repeat it).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Targets(Diagnostics),
    #[error("load dataset `{name}`: {cause}")]
    Dataset {
        name: String,
        // Boxed: it carries paths and cell text, and would otherwise bloat every plan result.
        cause: Box<DatasetError>,
        at: Option<Location>,
    },
    #[error("read model `{model}` build `{variant}` from `{}`: {cause}", .path.display())]
    ModelFile {
        model: String,
        variant: String,
        path: PathBuf,
        cause: std::io::Error,
        at: Option<Location>,
    },
    #[error(
        "fit model `{model}` to the dataset: `input_shape` {shape:?} holds {elements} values but a window of `{dataset}` has {window}"
    )]
    WindowSize {
        model: String,
        shape: Vec<usize>,
        elements: usize,
        dataset: String,
        window: usize,
        at: Option<Location>,
    },
    #[error(
        "fit model `{model}` build `{variant}` (`{path}`) to its {task} task: the selected output holds {found} values per window where {expected}"
    )]
    OutputWidth {
        model: String,
        variant: String,
        path: PathBuf,
        task: &'static str,
        found: usize,
        expected: String,
        at: Option<Location>,
    },
    #[error(
        "calibrate the threshold of model `{model}` (`anomaly.calibrate.files` in `{scenario}`): {files} hold no normal window (label 0) to calibrate on"
    )]
    NoNormalWindow {
        model: String,
        scenario: PathBuf,
        files: String,
    },
    #[error("fit model `{model}` build `{variant}` (`{}`) to the scenario's input: {cause}", .path.display())]
    ModelShape {
        model: String,
        variant: String,
        path: PathBuf,
        cause: Box<RuntimeError>,
        at: Option<Location>,
    },
    #[error("read model `{model}` build `{variant}` (`{}`) as ONNX: {reason}", .path.display())]
    NotOnnx {
        model: String,
        variant: String,
        path: PathBuf,
        reason: String,
        at: Option<Location>,
    },
    #[error(
        "fit model `{model}` build `{variant}` (`{}`) to the dataset's labels: its output has {outputs} values per window but the dataset has {classes} classes", .path.display()
    )]
    OutputSize {
        model: String,
        variant: String,
        path: PathBuf,
        outputs: usize,
        classes: usize,
        at: Option<Location>,
    },
}

impl PlanError {
    /// The error as diagnostics pointing at the scenario line it concerns.
    pub fn diagnostics(&self) -> Diagnostics {
        let at = match self {
            PlanError::Targets(d) => return d.clone(),
            PlanError::Dataset { at, .. }
            | PlanError::ModelFile { at, .. }
            | PlanError::WindowSize { at, .. }
            | PlanError::ModelShape { at, .. }
            | PlanError::NotOnnx { at, .. }
            | PlanError::OutputSize { at, .. }
            | PlanError::OutputWidth { at, .. } => at.clone(),
            // The files are named in the scenario, which the message names.
            PlanError::NoNormalWindow { .. } => None,
        };
        let label = match self {
            PlanError::Targets(_) | PlanError::Dataset { .. } => "the data named here",
            PlanError::WindowSize { .. } => "the shape given here",
            _ => "the model named here",
        };
        let d = Diagnostic::new(format!("failed to {self}"))
            .at(at)
            .label(label);
        match self {
            PlanError::NotOnnx { .. } => d.help("is this the right file? an empty or half-copied file is refused here"),
            PlanError::OutputSize { .. } => {
                d.help("list one class per model output (the dataset's `classes`), or select another `output`")
            }
            _ => d,
        }
        .into()
    }
}

#[derive(Debug, Clone)]
pub struct PlannedBuild {
    pub model: String,
    pub variant: String,
    pub reference: bool,
    pub artifact: PathBuf,
    /// The artifact is a firmware ELF for MCU boards, not an ONNX model.
    pub prebuilt_firmware: bool,
    pub bytes: Arc<Vec<u8>>,
    pub sha256: [u8; 32],
    /// The current champion's build, joined so candidates meet it head to head (not a candidate).
    pub champion: bool,
    pub runtime: gauntlet_spec::RuntimeSpec,
}

#[derive(Debug, Clone)]
pub struct PlannedModel {
    pub name: String,
    pub input: Option<String>,
    pub input_shape: Vec<usize>,
    pub output: OutputSelector,
    pub builds: Vec<PlannedBuild>,
}

pub struct Plan {
    pub scenario: Scenario,
    pub rig: Rig,
    pub boards: Vec<Board>,
    pub windows: Arc<Windows>,
    pub models: Vec<PlannedModel>,
}

impl Plan {
    /// Measured inferences per build and board, for progress and time estimates.
    pub fn measured_per_build(&self, board: &Board) -> usize {
        let rules = self.scenario.run_for(board);
        let n = self.windows.len().max(1);
        n * rules.min_inferences.div_ceil(n).max(rules.repeats.max(1))
    }
}

/// Builds the plan: selects boards, loads the dataset, reads every model and checks it fits.
// A plan error is made at most once per run, on the way to exit 2: its size (it carries the scenario
// line it points at) costs nothing worth boxing every variant for.
#[allow(clippy::result_large_err)]
pub fn plan(scenario: Scenario, rig: Rig) -> Result<Plan, PlanError> {
    let boards: Vec<Board> = gauntlet_spec::select_boards(&scenario, &rig)
        .map_err(PlanError::Targets)?
        .into_iter()
        .cloned()
        .collect();
    let windows =
        gauntlet_dataset::load(&scenario.dataset).map_err(|cause| PlanError::Dataset {
            name: scenario.dataset.name.clone(),
            cause: Box::new(cause),
            at: scenario.dataset_at.clone(),
        })?;
    let windows = match scenario.subset {
        Some(n) => windows.stratified_subset(n),
        None => windows,
    };
    let mut models = Vec::new();
    let mut checked = std::collections::HashSet::new();
    for model in &scenario.models {
        let elements: usize = model.input_shape.iter().product();
        if elements != windows.window_len {
            return Err(PlanError::WindowSize {
                model: model.name.clone(),
                shape: model.input_shape.clone(),
                elements,
                dataset: scenario.dataset.name.clone(),
                window: windows.window_len,
                at: model.input_shape_at.clone(),
            });
        }
        let mut builds = Vec::new();
        for build in &model.builds {
            let path = build.artifact.path().to_path_buf();
            let bytes = std::fs::read(&path).map_err(|cause| PlanError::ModelFile {
                model: model.name.clone(),
                variant: build.variant.clone(),
                path: path.clone(),
                cause,
                at: build.artifact_at.clone(),
            })?;
            let sha256: [u8; 32] = Sha256::digest(&bytes).into();
            // A matrix names one file once per runtime; its fit does not depend on the runtime.
            if let Artifact::Onnx(_) = build.artifact
                && checked.insert(sha256)
                && let Some(width) =
                    check_model(model, build, scenario.dataset.classes.len(), &bytes)?
            {
                check_output_width(model, build, &path, width, windows.window_len)?;
            }
            builds.push(PlannedBuild {
                model: model.name.clone(),
                variant: build.variant.clone(),
                reference: build.reference,
                artifact: path,
                prebuilt_firmware: matches!(build.artifact, Artifact::Firmware(_)),
                sha256,
                bytes: Arc::new(bytes),
                champion: false,
                runtime: build.runtime.clone(),
            });
        }
        check_calibration_set(&scenario, model, &windows)?;
        models.push(PlannedModel {
            name: model.name.clone(),
            input: model.input.clone(),
            input_shape: model.input_shape.clone(),
            output: model.output.clone(),
            builds,
        });
    }
    Ok(Plan {
        scenario,
        rig,
        boards,
        windows: Arc::new(windows),
        models,
    })
}

/// Anomaly scores and regression predictions are one value per window; a reconstruction is one per
/// input value.
#[allow(clippy::result_large_err)]
fn check_output_width(
    model: &gauntlet_spec::Model,
    build: &gauntlet_spec::Build,
    path: &std::path::Path,
    width: usize,
    window_len: usize,
) -> Result<(), PlanError> {
    let expected = match &model.task {
        Task::Classification => return Ok(()),
        Task::Anomaly(a) if a.score != AnomalyScore::Output => window_len,
        Task::Anomaly(_) | Task::Regression => 1,
    };
    if width == expected {
        return Ok(());
    }
    Err(PlanError::OutputWidth {
        model: model.name.clone(),
        variant: build.variant.clone(),
        path: path.to_path_buf(),
        task: model.task.name(),
        found: width,
        expected: if expected == 1 {
            "the task reads one (`output` names the score or prediction)".into()
        } else {
            format!("a reconstruction (`anomaly.score`) must match the input's {expected}")
        },
        at: build.artifact_at.clone(),
    })
}

/// A calibrated threshold needs normal windows in its calibration recordings.
#[allow(clippy::result_large_err)]
fn check_calibration_set(
    scenario: &Scenario,
    model: &gauntlet_spec::Model,
    windows: &Windows,
) -> Result<(), PlanError> {
    let Task::Anomaly(task) = &model.task else {
        return Ok(());
    };
    let AnomalyThreshold::Calibrated {
        recordings, files, ..
    } = &task.threshold
    else {
        return Ok(());
    };
    let normal = windows
        .labels
        .iter()
        .zip(&windows.origins)
        .any(|(&l, o)| l == 0 && recordings.contains(&o.recording));
    if normal {
        return Ok(());
    }
    let names: Vec<String> = files.iter().map(|f| format!("`{}`", f.display())).collect();
    Err(PlanError::NoNormalWindow {
        model: model.name.clone(),
        scenario: scenario.source.path.clone(),
        files: names.join(", "),
    })
}

/// Loads the model on the host (with tract, which every host has) with the scenario's input and
/// output so a misfit is an input error now, not a board failure later: a file that is not ONNX at
/// all, an input that does not take the window, a classifier's output whose size is not the class
/// count. Returns the selected output's values per window. What the host's runtime cannot run (an
/// unsupported operator) is left for the board to report: another board's runtime may run it.
#[allow(clippy::result_large_err)]
fn check_model(
    model: &gauntlet_spec::Model,
    build: &gauntlet_spec::Build,
    classes: usize,
    bytes: &[u8],
) -> Result<Option<usize>, PlanError> {
    let path = build.artifact.path();
    let options = LoadOptions {
        input_name: model.input.clone(),
        window_shape: model.input_shape.clone(),
        output: model.output.clone(),
        ..Default::default()
    };
    let not_onnx = |reason: String| PlanError::NotOnnx {
        model: model.name.clone(),
        variant: build.variant.clone(),
        path: path.to_path_buf(),
        reason,
        at: build.artifact_at.clone(),
    };
    onnx_graph(bytes).map_err(not_onnx)?;
    match TractRuntime.load(bytes, &options) {
        Ok(loaded)
            if matches!(model.task, Task::Classification)
                && loaded.info().output_len != classes =>
        {
            Err(PlanError::OutputSize {
                model: model.name.clone(),
                variant: build.variant.clone(),
                path: path.to_path_buf(),
                outputs: loaded.info().output_len,
                classes,
                at: build.artifact_at.clone(),
            })
        }
        Ok(loaded) => Ok(Some(loaded.info().output_len)),
        Err(
            cause @ (RuntimeError::ShapeMismatch { .. }
            | RuntimeError::UnknownInput { .. }
            | RuntimeError::AmbiguousInput { .. }
            | RuntimeError::UnknownOutput { .. }
            | RuntimeError::WindowLength { .. }),
        ) => Err(PlanError::ModelShape {
            model: model.name.clone(),
            variant: build.variant.clone(),
            path: path.to_path_buf(),
            cause: Box::new(cause),
            at: build.artifact_at.clone(),
        }),
        Err(_) => Ok(None),
    }
}

/// What no runtime could load: bytes that are not an ONNX protobuf, or one with no graph to run
/// (an empty file decodes as an empty protobuf message).
fn onnx_graph(bytes: &[u8]) -> Result<(), String> {
    use tract_onnx::prelude::Framework;
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| format!("{e:#}"))?;
    match proto.graph {
        None => Err(format!(
            "the file ({} bytes) holds no ONNX graph",
            bytes.len()
        )),
        Some(g) if g.node.is_empty() || g.output.is_empty() => {
            Err("its graph has no nodes or no outputs".to_string())
        }
        Some(_) => Ok(()),
    }
}
