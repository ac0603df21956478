//! The plan: everything a run needs, loaded and checked before any board is touched, so bad input
//! fails fast and nothing half-measured is written.

use std::path::PathBuf;
use std::sync::Arc;

use gauntlet_agent::runtime::{
    LoadOptions, LoadedModel, OutputSelector, Runtime, RuntimeError, TractRuntime,
};
use gauntlet_dataset::{DatasetError, Windows};
use gauntlet_spec::{
    AnomalyScore, AnomalyThreshold, Artifact, Board, Diagnostics, Rig, Scenario, Task,
};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Targets(Diagnostics),
    #[error("load dataset `{name}` of `{scenario}`: {source}")]
    Dataset {
        name: String,
        scenario: PathBuf,
        // Boxed: it carries paths and cell text, and would otherwise bloat every plan result.
        source: Box<DatasetError>,
    },
    #[error("read model `{model}` build `{variant}` from `{path}`: {source}")]
    ModelFile {
        model: String,
        variant: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "fit model `{model}` to the dataset in `{scenario}`: `input_shape` {shape:?} holds {elements} values but a window of `{dataset}` has {window}"
    )]
    WindowSize {
        model: String,
        scenario: PathBuf,
        shape: Vec<usize>,
        elements: usize,
        dataset: String,
        window: usize,
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
    },
    #[error(
        "calibrate the threshold of model `{model}` (`anomaly.calibrate.files` in `{scenario}`): {files} hold no normal window (label 0) to calibrate on"
    )]
    NoNormalWindow {
        model: String,
        scenario: PathBuf,
        files: String,
    },
    #[error("fit model `{model}` build `{variant}` (`{path}`) to the scenario's input: {source}")]
    ModelShape {
        model: String,
        variant: String,
        path: PathBuf,
        source: Box<RuntimeError>,
    },
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
}

#[derive(Debug, Clone)]
pub struct PlannedModel {
    pub name: String,
    pub input: Option<String>,
    pub input_shape: Vec<usize>,
    pub output: gauntlet_spec::OutputSelector,
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

fn runtime_selector(output: &gauntlet_spec::OutputSelector) -> OutputSelector {
    match output {
        gauntlet_spec::OutputSelector::Index(i) => OutputSelector::Index(*i),
        gauntlet_spec::OutputSelector::Name(n) => OutputSelector::Name(n.clone()),
    }
}

/// Builds the plan: selects boards, loads the dataset, reads every model and checks it fits.
pub fn plan(scenario: Scenario, rig: Rig) -> Result<Plan, PlanError> {
    let boards: Vec<Board> = gauntlet_spec::select_boards(&scenario, &rig)
        .map_err(PlanError::Targets)?
        .into_iter()
        .cloned()
        .collect();
    let windows =
        gauntlet_dataset::load(&scenario.dataset).map_err(|source| PlanError::Dataset {
            name: scenario.dataset.name.clone(),
            scenario: scenario.source.path.clone(),
            source: Box::new(source),
        })?;
    let windows = match scenario.subset {
        Some(n) => windows.stratified_subset(n),
        None => windows,
    };
    let mut models = Vec::new();
    for model in &scenario.models {
        let elements: usize = model.input_shape.iter().product();
        if elements != windows.window_len {
            return Err(PlanError::WindowSize {
                model: model.name.clone(),
                scenario: scenario.source.path.clone(),
                shape: model.input_shape.clone(),
                elements,
                dataset: scenario.dataset.name.clone(),
                window: windows.window_len,
            });
        }
        let mut builds = Vec::new();
        for build in &model.builds {
            let path = build.artifact.path().to_path_buf();
            let bytes = std::fs::read(&path).map_err(|source| PlanError::ModelFile {
                model: model.name.clone(),
                variant: build.variant.clone(),
                path: path.clone(),
                source,
            })?;
            if let Artifact::Onnx(_) = build.artifact
                && let Some(width) = check_fits(model, &build.variant, &path, &bytes)?
            {
                check_output_width(model, &build.variant, &path, width, windows.window_len)?;
            }
            builds.push(PlannedBuild {
                model: model.name.clone(),
                variant: build.variant.clone(),
                reference: build.reference,
                artifact: path,
                prebuilt_firmware: matches!(build.artifact, Artifact::Firmware(_)),
                sha256: Sha256::digest(&bytes).into(),
                bytes: Arc::new(bytes),
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
fn check_output_width(
    model: &gauntlet_spec::Model,
    variant: &str,
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
        variant: variant.to_string(),
        path: path.to_path_buf(),
        task: model.task.name(),
        found: width,
        expected: if expected == 1 {
            "the task reads one (`output` names the score or prediction)".into()
        } else {
            format!("a reconstruction (`anomaly.score`) must match the input's {expected}")
        },
    })
}

/// A calibrated threshold needs normal windows in its calibration recordings.
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

/// Loads the model on the host with the scenario's input and output so a misfit is an input error
/// now, not a board failure later, and returns the selected output's values per window. What the
/// host's runtime cannot run (an unsupported operator) is left for the board to report: another
/// board's runtime may run it.
fn check_fits(
    model: &gauntlet_spec::Model,
    variant: &str,
    path: &std::path::Path,
    bytes: &[u8],
) -> Result<Option<usize>, PlanError> {
    let options = LoadOptions {
        input_name: model.input.clone(),
        window_shape: model.input_shape.clone(),
        output: runtime_selector(&model.output),
    };
    match TractRuntime.load(bytes, &options) {
        Ok(loaded) => Ok(Some(loaded.info().output_len)),
        Err(
            source @ (RuntimeError::ShapeMismatch { .. }
            | RuntimeError::UnknownInput { .. }
            | RuntimeError::AmbiguousInput { .. }
            | RuntimeError::UnknownOutput { .. }
            | RuntimeError::WindowLength { .. }),
        ) => Err(PlanError::ModelShape {
            model: model.name.clone(),
            variant: variant.to_string(),
            path: path.to_path_buf(),
            source: Box::new(source),
        }),
        Err(_) => Ok(None),
    }
}
