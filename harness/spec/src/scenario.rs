//! Raw scenario → validated [`Scenario`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use gauntlet_dataset::{
    ColumnRef, CsvFormat, DatasetSpec, LabelSource, Layout, Recording, Selection, TargetSpec,
    Windowing,
};

use crate::check::Checker;
use crate::diagnostic::{Diagnostics, did_you_mean};
use crate::load::{self, Loaded};
use crate::raw::{
    DatasetSection, GateSection, KeywordOr, LabelsSection, LayoutRaw, ModelSection, NameOrIndex,
    RunSection, ScenarioFile, Sp, ThresholdRaw,
};
use crate::units;
use crate::validated::*;

type Ck<'a> = Checker<'a, ScenarioFile>;

/// Loads, merges (`extends`) and validates a scenario; model and data files must be readable.
pub fn load_scenario(path: &Path) -> Result<Scenario, Diagnostics> {
    let loaded = load::load::<ScenarioFile>(path, "scenario")?;
    validate(&loaded, path)
}

pub(crate) fn load_raw(path: &Path) -> Result<Loaded<ScenarioFile>, Diagnostics> {
    load::load::<ScenarioFile>(path, "scenario")
}

fn validate(loaded: &Loaded<ScenarioFile>, path: &Path) -> Result<Scenario, Diagnostics> {
    let mut ck = Checker::new(loaded);
    let raw = &loaded.raw;
    let (dataset, pacing) = dataset(&mut ck, &raw.dataset.value);
    let subset = raw
        .dataset
        .value
        .subset
        .as_ref()
        .map(|n| ck.at_least(n, 1, "subset"));
    let models = models(&mut ck, &raw.models, &dataset);
    let run = run_rules(&mut ck, None, raw.run.as_ref(), pacing);
    let overrides = raw
        .overrides
        .iter()
        .map(|o| {
            if o.value.boards.value.is_empty() {
                let d = ck
                    .at(
                        &o.value.boards.span,
                        "an override needs a non-empty `boards` selector",
                    )
                    .help("e.g. boards = { kind = \"stm32-probe\" }");
                ck.push(d);
            }
            RunOverride {
                selector: o.value.boards.value.clone(),
                run: run_rules(&mut ck, Some(&run), Some(&o.value.run), run.pacing.clone()),
            }
        })
        .collect();
    let targets = raw.targets.as_ref().map_or_else(Targets::default, |t| {
        for s in t.selectors.iter().filter(|s| s.value.is_empty()) {
            let d = ck.at(&s.span, "an empty selector would match every board");
            ck.push(d);
        }
        let pools = t
            .pools
            .iter()
            .map(|p| {
                if p.value.labels.value.is_empty() {
                    let d = ck
                        .at(
                            &p.value.labels.span,
                            "a pool needs a non-empty `labels` selector",
                        )
                        .help(
                            "e.g. pools = [{ labels = { family = \"raspberry-pi\" }, count = 2 }]",
                        );
                    ck.push(d);
                }
                Pool {
                    labels: p.value.labels.value.clone(),
                    count: ck.opt_at_least(&p.value.count, 1, "count", 1),
                }
            })
            .collect();
        Targets {
            boards: t.boards.iter().map(|b| b.value.clone()).collect(),
            selectors: t.selectors.iter().map(|s| s.value.clone()).collect(),
            pools,
        }
    });
    let gates = raw
        .gates
        .iter()
        .filter_map(|g| gate(&mut ck, g, &models))
        .collect();
    let drift = crate::drift::validate(&mut ck, raw.drift.as_ref(), &dataset, &models);
    let header = &raw.scenario.value;
    ck.printable(&header.name, "scenario name");
    ck.printable(&raw.dataset.value.name, "dataset name");
    if let Some(labels) = &raw.dataset.value.labels {
        for class in &labels.value.classes.value {
            ck.printable(class, "class name");
        }
    }
    let scenario = Scenario {
        name: header.name.value.clone(),
        description: header.description.clone(),
        source: SourceFile {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            sha256: loaded.sha256.clone(),
        },
        dataset,
        subset,
        models,
        targets,
        run,
        overrides,
        gates,
        inconclusive_fails: header.inconclusive_fails.unwrap_or(true),
        drift,
        dataset_at: loaded.locate(&raw.dataset.value.files.span),
    };
    ck.finish(scenario)
}

fn column(ck: &mut Ck, c: &Sp<NameOrIndex>, key: &str) -> ColumnRef {
    match &c.value {
        NameOrIndex::Name(n) => ColumnRef::Name(n.clone()),
        NameOrIndex::Index(i) => ColumnRef::Index(ck.at_least(
            &Sp {
                span: c.span.clone(),
                value: *i,
            },
            0,
            key,
        )),
    }
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

pub(crate) fn recordings(ck: &mut Ck, files: &Sp<Vec<Sp<String>>>) -> Vec<PathBuf> {
    if files.value.is_empty() {
        let d = ck
            .at(&files.span, "`files` is empty")
            .label("name at least one CSV file");
        ck.push(d);
    }
    let mut out = Vec::new();
    for f in &files.value {
        if !is_glob(&f.value) {
            out.push(ck.readable_file(f, "data file"));
            continue;
        }
        // Only the written part is a pattern: the scenario's own directory may contain `[`.
        let dir = ck.loaded.dir_of(&f.span);
        let pattern = dir.join(&f.value);
        let escaped = format!(
            "{}/{}",
            glob::Pattern::escape(&dir.to_string_lossy()),
            f.value
        );
        let matched = glob::glob(&escaped).map(|paths| {
            let mut v: Vec<PathBuf> = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            v.sort();
            v
        });
        match matched {
            Ok(v) if v.is_empty() => {
                let d = ck
                    .at(&f.span, format!("glob `{}` matches no file", f.value))
                    .label("no match")
                    .note(format!("resolved to `{}`", pattern.display()));
                ck.push(d);
            }
            Ok(v) => out.extend(v),
            Err(e) => {
                let d = ck
                    .at(&f.span, format!("invalid glob `{}`", f.value))
                    .label(e.msg);
                ck.push(d);
            }
        }
    }
    out
}

fn dataset(ck: &mut Ck, ds: &DatasetSection) -> (DatasetSpec, Pacing) {
    let paths = recordings(ck, &ds.files);
    let delimiter = match &ds.delimiter {
        None => b',',
        Some(d) if d.value.len() == 1 && d.value.is_ascii() => d.value.as_bytes()[0],
        Some(d) => {
            let e = ck
                .at(&d.span, "`delimiter` must be one ASCII character")
                .label(format!("{} characters", d.value.chars().count()));
            ck.push(e);
            b','
        }
    };
    if ds.features.value.is_empty() {
        let d = ck
            .at(&ds.features.span, "`features` is empty")
            .label("name at least one column");
        ck.push(d);
    }
    let features: Vec<ColumnRef> = ds
        .features
        .value
        .iter()
        .map(|c| column(ck, c, "features"))
        .collect();
    for (i, f) in features.iter().enumerate() {
        if features[..i].contains(f) {
            let d = ck.at(
                &ds.features.value[i].span,
                "column listed twice in `features`",
            );
            ck.push(d);
        }
    }
    let window = Windowing {
        rows: ck.at_least(&ds.window.value.rows, 1, "window.rows"),
        stride: ck.at_least(&ds.window.value.stride, 1, "window.stride"),
    };
    let (labels, classes) = match &ds.labels {
        Some(l) => labels(ck, l, ds, paths.len()),
        None => {
            if ds.target.is_none() {
                let d = ck
                    .at(&ds.name.span, "the dataset has neither `labels` nor `target`")
                    .help("classes: labels = { column = \"anomaly\", classes = [...] }; regression: target = { column = \"Temperature\", horizon = 10 }");
                ck.push(d);
            }
            (LabelSource::None, Vec::new())
        }
    };
    let target = ds.target.as_ref().map(|t| TargetSpec {
        column: column(ck, &t.value.column, "target.column"),
        horizon: ck.opt_at_least(&t.value.horizon, 0, "target.horizon", 0),
    });
    let per_file = matches!(labels, LabelSource::PerFile);
    let recordings = paths
        .into_iter()
        .enumerate()
        .map(|(i, path)| Recording {
            path,
            class: per_file.then(|| u32::try_from(i).unwrap_or(u32::MAX)),
        })
        .collect();
    let selection = match &ds.select {
        None => Selection::All,
        Some(s) => match &s.value {
            KeywordOr::Keyword(k) => {
                keyword(ck, s, k, &["all"], "selection");
                Selection::All
            }
            KeywordOr::Table(t) => {
                let f = t.tail.value;
                if !(f > 0.0 && f <= 1.0) {
                    let d = ck
                        .at(&t.tail.span, "`tail` must be a fraction in (0, 1]")
                        .label(format!("found {f}"))
                        .help("e.g. tail = 0.3 replays the last 30 % of each recording");
                    ck.push(d);
                }
                Selection::TailFraction(f)
            }
        },
    };
    let timestamp = ds.timestamp.as_ref().map(|t| column(ck, t, "timestamp"));
    let pacing = match &ds.pacing {
        None => Pacing::AsFastAsPossible,
        Some(p) => match &p.value {
            KeywordOr::Keyword(k) => {
                keyword(ck, p, k, &["as-fast-as-possible"], "pacing");
                Pacing::AsFastAsPossible
            }
            KeywordOr::Table(t) => match (&t.recorded, &t.rate_hz) {
                (Some(r), None) => {
                    if timestamp.is_none() {
                        let d = ck
                            .at(
                                &p.span,
                                "`pacing = { recorded = … }` needs a `timestamp` column",
                            )
                            .help("add e.g. timestamp = \"datetime\" to [dataset]");
                        ck.push(d);
                    }
                    Pacing::Recorded {
                        speedup: ck.positive(r, "recorded"),
                    }
                }
                (None, Some(hz)) => Pacing::FixedRate {
                    hz: ck.positive(hz, "rate_hz"),
                },
                _ => {
                    let d = ck
                        .at(
                            &p.span,
                            "`pacing` needs exactly one of `recorded` and `rate_hz`",
                        )
                        .help("e.g. pacing = { rate_hz = 100 }");
                    ck.push(d);
                    Pacing::AsFastAsPossible
                }
            },
        },
    };
    let spec = DatasetSpec {
        name: ds.name.value.clone(),
        recordings,
        format: CsvFormat {
            delimiter,
            has_header: ds.header.unwrap_or(true),
        },
        features,
        window,
        layout: match ds.layout.unwrap_or(LayoutRaw::RowMajor) {
            LayoutRaw::RowMajor => Layout::RowMajor,
            LayoutRaw::ChannelsFirst => Layout::ChannelsFirst,
        },
        labels,
        classes,
        selection,
        timestamp,
        target,
    };
    (spec, pacing)
}

fn labels(
    ck: &mut Ck,
    l: &Sp<LabelsSection>,
    ds: &DatasetSection,
    files: usize,
) -> (LabelSource, Vec<String>) {
    let labels_raw = &l.value;
    let classes: Vec<String> = labels_raw
        .classes
        .value
        .iter()
        .map(|c| c.value.clone())
        .collect();
    if classes.is_empty() {
        let d = ck.at(&labels_raw.classes.span, "`classes` is empty");
        ck.push(d);
    }
    ck.unique(&labels_raw.classes.value, "class");
    let labels = match (&labels_raw.from, &labels_raw.column) {
        (Some(from), None) => {
            if from.value != "file" {
                let d = ck
                    .at(&from.span, format!("unknown label source `{}`", from.value))
                    .label("expected \"file\"")
                    .help("use `from = \"file\"` (one class per file) or `column = \"name\"`");
                ck.push(d);
            } else if files != classes.len() && files > 0 {
                let d = ck
                    .at(
                        &l.span,
                        format!(
                            "`files` names {} recording(s) but `classes` has {}",
                            files,
                            classes.len()
                        ),
                    )
                    .label("with `from = \"file\"`, file i is class i")
                    .note(format!("`files` is at {}", ck.place(&ds.files.span)));
                ck.push(d);
            }
            LabelSource::PerFile
        }
        (None, Some(c)) => LabelSource::Column(column(ck, c, "labels.column")),
        (from, column) => {
            let d = ck
                .at(&l.span, "`labels` needs exactly one of `from` and `column`")
                .label(if from.is_some() && column.is_some() { "both given" } else { "neither given" })
                .help("`{ from = \"file\", classes = [...] }` or `{ column = \"anomaly\", classes = [...] }`");
            ck.push(d);
            LabelSource::PerFile
        }
    };
    (labels, classes)
}

fn keyword<T>(ck: &mut Ck, at: &Sp<T>, word: &str, accepted: &[&str], what: &str) {
    if !accepted.contains(&word) {
        let d = ck
            .at(&at.span, format!("unknown {what} `{word}`"))
            .label("not an accepted value")
            .help_opt(did_you_mean(
                word,
                accepted,
                "accepted keywords (or a table)",
            ));
        ck.push(d);
    }
}

fn models(ck: &mut Ck, models: &Sp<Vec<Sp<ModelSection>>>, ds: &DatasetSpec) -> Vec<Model> {
    if models.value.is_empty() {
        let d = ck
            .at(&models.span, "no models")
            .label("add at least one [[models]] entry");
        ck.push(d);
    }
    ck.unique(models.value.iter().map(|m| &m.value.name), "model name");
    for m in &models.value {
        ck.path_component(&m.value.name, "model name");
    }
    models.value.iter().map(|m| model(ck, m, ds)).collect()
}

fn model(ck: &mut Ck, m: &Sp<ModelSection>, ds: &DatasetSpec) -> Model {
    let rows = ds.window.rows;
    let window_len = rows * ds.features.len();
    let raw = &m.value;
    let shape: Vec<usize> = raw
        .input_shape
        .value
        .iter()
        .map(|d| ck.at_least(d, 1, "input_shape"))
        .collect();
    if shape.is_empty() {
        let d = ck.at(&raw.input_shape.span, "`input_shape` is empty");
        ck.push(d);
    } else if shape[0] != 1 {
        let d = ck
            .at(
                &raw.input_shape.value[0].span,
                "the first dimension of `input_shape` is the batch and must be 1",
            )
            .label(format!("found {}", shape[0]));
        ck.push(d);
    } else if shape.iter().product::<usize>() != window_len {
        let d = ck
            .at(
                &raw.input_shape.span,
                format!(
                    "`input_shape` holds {} values but a window holds {window_len}",
                    shape.iter().product::<usize>()
                ),
            )
            .label("does not fit the window")
            .note(format!(
                "a window is {rows} rows × {} feature column(s)",
                window_len / rows.max(1)
            ));
        ck.push(d);
    }
    let output = match &raw.output {
        None => OutputSelector::Index(0),
        Some(o) => match &o.value {
            NameOrIndex::Name(n) => OutputSelector::Name(n.clone()),
            // An index beyond u32 names no output; the model check reports it.
            NameOrIndex::Index(i) => OutputSelector::Index(
                u32::try_from(ck.at_least(
                    &Sp {
                        span: o.span.clone(),
                        value: *i,
                    },
                    0,
                    "output",
                ))
                .unwrap_or(u32::MAX),
            ),
        },
    };
    let builds_raw = &raw.builds;
    if builds_raw.value.is_empty() {
        let d = ck.at(
            &builds_raw.span,
            format!("model `{}` has no builds", raw.name.value),
        );
        ck.push(d);
    }
    // A variant may appear once per runtime it names (`fp32` on tract and `fp32` on onnxruntime).
    let mut runtimes_named: Vec<Option<&str>> = builds_raw
        .value
        .iter()
        .map(|b| b.value.runtime.as_ref().map(|r| r.value.as_str()))
        .collect();
    runtimes_named.dedup();
    runtimes_named.sort();
    runtimes_named.dedup();
    for named in runtimes_named {
        ck.unique(
            builds_raw
                .value
                .iter()
                .filter(|b| b.value.runtime.as_ref().map(|r| r.value.as_str()) == named)
                .map(|b| &b.value.variant),
            "variant",
        );
    }
    for b in &builds_raw.value {
        ck.path_component(&b.value.variant, "variant");
    }
    let model_runtime = model_runtimes(ck, raw);
    let mut builds = Vec::new();
    for b in &builds_raw.value {
        let artifact = match (&b.value.onnx, &b.value.firmware) {
            (Some(p), None) => Artifact::Onnx(ck.readable_file(p, "model")),
            (None, Some(p)) => Artifact::Firmware(ck.readable_file(p, "firmware")),
            (onnx, _) => {
                let d = ck
                    .at(
                        &b.span,
                        "a build needs exactly one of `onnx` and `firmware`",
                    )
                    .label(if onnx.is_some() {
                        "both given"
                    } else {
                        "neither given"
                    });
                ck.push(d);
                Artifact::Onnx(PathBuf::new())
            }
        };
        let artifact_at = b.value.onnx.as_ref().or(b.value.firmware.as_ref());
        let reference = b.value.reference.as_ref().is_some_and(|r| r.value);
        let variant = &b.value.variant.value;
        let names: Vec<Option<String>> = match &b.value.runtime {
            Some(r) => vec![runtime_name(ck, r)],
            None => model_runtime.clone(),
        };
        let settings = RuntimeKeys {
            threads: b.value.threads.as_ref().or(raw.threads.as_ref()),
            optimization: b.value.optimization.as_ref().or(raw.optimization.as_ref()),
            providers: b.value.providers.as_ref().or(raw.providers.as_ref()),
        }
        .validate(ck);
        for (i, name) in names.iter().enumerate() {
            let runtime = RuntimeSpec {
                name: name.clone().unwrap_or_else(|| RuntimeSpec::default().name),
                ..settings.clone()
            };
            builds.push(Build {
                variant: match name {
                    Some(n) => format!("{variant}@{n}"),
                    None => variant.clone(),
                },
                base_variant: variant.clone(),
                artifact: artifact.clone(),
                // In a matrix, the reference build on the first runtime is the model's reference.
                reference: reference && i == 0,
                runtime,
                artifact_at: ck.loaded.locate(artifact_at.map_or(&b.span, |a| &a.span)),
            });
        }
    }
    let references: Vec<&Sp<bool>> = builds_raw
        .value
        .iter()
        .filter_map(|b| b.value.reference.as_ref().filter(|r| r.value))
        .collect();
    match references.as_slice() {
        [] if !builds_raw.value.is_empty() => {
            let d = ck
                .at(
                    &builds_raw.span,
                    format!("model `{}` has no reference build", raw.name.value),
                )
                .label("mark one build `reference = true`")
                .help("the reference (usually fp32) is what the other variants are compared with");
            ck.push(d);
        }
        [first, rest @ ..] => {
            for r in rest {
                let note = format!("the first reference is at {}", ck.place(&first.span));
                let d = ck
                    .at(
                        &r.span,
                        format!(
                            "model `{}` has more than one reference build",
                            raw.name.value
                        ),
                    )
                    .label("second reference")
                    .note(note);
                ck.push(d);
            }
        }
        [] => {}
    }
    Model {
        name: raw.name.value.clone(),
        input: raw.input.clone(),
        input_shape: shape,
        output,
        task: task(ck, m, ds),
        builds,
        input_shape_at: ck.loaded.locate(&raw.input_shape.span),
    }
}

/// The runtimes a model's builds run on by default: `None` when the scenario names none (the
/// default runtime, and the variant id stays as written).
fn model_runtimes(ck: &mut Ck, raw: &ModelSection) -> Vec<Option<String>> {
    match (&raw.runtime, &raw.runtimes) {
        (Some(r), None) => vec![runtime_name(ck, r)],
        (None, Some(list)) => {
            if list.value.is_empty() {
                let d = ck
                    .at(&list.span, "`runtimes` is empty")
                    .help("e.g. runtimes = [\"tract\", \"onnxruntime\"]");
                ck.push(d);
            }
            ck.unique(list.value.iter(), "runtime");
            list.value.iter().map(|r| runtime_name(ck, r)).collect()
        }
        (Some(r), Some(_)) => {
            let d = ck
                .at(&r.span, "a model takes `runtime` or `runtimes`, not both")
                .help("`runtimes` runs every build on each runtime listed");
            ck.push(d);
            vec![None]
        }
        (None, None) => vec![None],
    }
}

fn runtime_name(ck: &mut Ck, r: &Sp<String>) -> Option<String> {
    keyword(ck, r, &r.value, gauntlet_wire::RUNTIME_NAMES, "runtime");
    Some(r.value.clone())
}

/// Runtime settings of one build, each from the build or else its model.
struct RuntimeKeys<'a> {
    threads: Option<&'a Sp<i64>>,
    optimization: Option<&'a Sp<String>>,
    providers: Option<&'a Sp<Vec<Sp<String>>>>,
}

impl RuntimeKeys<'_> {
    /// Everything but the runtime's name.
    fn validate(&self, ck: &mut Ck) -> RuntimeSpec {
        let defaults = RuntimeSpec::default();
        let threads = self
            .threads
            .map_or(defaults.threads, |t| ck.at_least(t, 1, "threads"));
        let optimization = self.optimization.map_or(defaults.optimization, |o| {
            keyword(
                ck,
                o,
                &o.value,
                gauntlet_wire::GRAPH_OPTIMIZATIONS,
                "graph optimisation level",
            );
            o.value.clone()
        });
        let providers = self.providers.map_or_else(Vec::new, |list| {
            ck.unique(list.value.iter(), "execution provider");
            list.value
                .iter()
                .map(|p| {
                    keyword(
                        ck,
                        p,
                        &p.value,
                        gauntlet_wire::EXECUTION_PROVIDERS,
                        "execution provider",
                    );
                    p.value.clone()
                })
                .collect()
        });
        RuntimeSpec {
            threads,
            optimization,
            providers,
            ..defaults
        }
    }
}

const TASKS: [(&str, &str); 3] = [
    ("classification", "classification"),
    ("anomaly", "anomaly"),
    ("regression", "regression"),
];

/// The model's task, stated or derived, checked against what the dataset provides.
fn task(ck: &mut Ck, m: &Sp<ModelSection>, ds: &DatasetSpec) -> Task {
    let raw = &m.value;
    let has_labels = ds.labels != LabelSource::None;
    let stated = raw.task.as_ref().and_then(|t| ck.one_of(t, "task", &TASKS));
    let name = stated.unwrap_or(if raw.anomaly.is_some() {
        "anomaly"
    } else if ds.target.is_some() && !has_labels {
        "regression"
    } else {
        "classification"
    });
    let at = raw.task.as_ref().map_or(&m.span, |t| &t.span);
    let model = &raw.name.value;
    if name != "anomaly"
        && let Some(a) = &raw.anomaly
    {
        let d = ck
            .at(&a.span, format!("an `anomaly` table on a {name} model"))
            .label("only anomaly models have a score threshold")
            .help("remove it, or set task = \"anomaly\"");
        ck.push(d);
    }
    match name {
        "regression" => {
            if ds.target.is_none() {
                let d = ck
                    .at(at, format!("model `{model}` is a regression model but the dataset names no `target`"))
                    .help("add e.g. target = { column = \"Temperature\", horizon = 10 } to [dataset]");
                ck.push(d);
            }
            Task::Regression
        }
        "anomaly" => {
            if !matches!(ds.labels, LabelSource::Column(_)) || ds.classes.len() != 2 {
                let d = ck
                    .at(at, format!("model `{model}` detects anomalies but the dataset has no 0/1 label column"))
                    .help("anomaly labels are a column: labels = { column = \"anomaly\", classes = [\"normal\", \"anomaly\"] }");
                ck.push(d);
            }
            Task::Anomaly(anomaly(ck, m, ds))
        }
        _ => {
            if !has_labels {
                let d = ck
                    .at(
                        at,
                        format!("model `{model}` is a classifier but the dataset has no `labels`"),
                    )
                    .help(
                        "set task = \"regression\" for a model predicting the dataset's `target`",
                    );
                ck.push(d);
            }
            Task::Classification
        }
    }
}

fn anomaly(ck: &mut Ck, m: &Sp<ModelSection>, ds: &DatasetSpec) -> AnomalyTask {
    let Some(a) = &m.value.anomaly else {
        let d = ck
            .at(&m.span, format!("anomaly model `{}` has no `anomaly` table", m.value.name.value))
            .help("add e.g. anomaly = { threshold = 0.36 } or anomaly = { calibrate = { quantile = 0.99, files = [...] } }");
        ck.push(d);
        return AnomalyTask {
            score: AnomalyScore::Output,
            threshold: AnomalyThreshold::Given(0.0),
        };
    };
    let raw = &a.value;
    let score = match &raw.score {
        None => AnomalyScore::Output,
        Some(s) => ck
            .one_of(
                s,
                "anomaly score",
                &[
                    ("output", AnomalyScore::Output),
                    ("mse", AnomalyScore::ReconstructionMse),
                    ("mae", AnomalyScore::ReconstructionMae),
                ],
            )
            .unwrap_or(AnomalyScore::Output),
    };
    let threshold = match (&raw.threshold, &raw.calibrate) {
        (Some(t), None) if t.value.is_finite() => AnomalyThreshold::Given(t.value),
        (None, Some(c)) => calibration(ck, c, ds),
        (t, c) => {
            let d = ck
                .at(
                    &a.span,
                    "`anomaly` needs exactly one of `threshold` and `calibrate`",
                )
                .label(match (t, c) {
                    (Some(_), Some(_)) => "both given",
                    (Some(_), None) => "the threshold is not a finite number",
                    _ => "neither given",
                });
            ck.push(d);
            AnomalyThreshold::Given(0.0)
        }
    };
    AnomalyTask { score, threshold }
}

fn calibration(
    ck: &mut Ck,
    c: &Sp<crate::raw::CalibrateSection>,
    ds: &DatasetSpec,
) -> AnomalyThreshold {
    let quantile = c.value.quantile.value;
    if !(quantile > 0.0 && quantile < 1.0) {
        let d = ck
            .at(
                &c.value.quantile.span,
                "`quantile` must lie strictly between 0 and 1",
            )
            .label(format!("found {quantile}"))
            .help("e.g. quantile = 0.99 leaves 1 % of normal windows above the threshold");
        ck.push(d);
    }
    if c.value.files.value.is_empty() {
        let d = ck
            .at(&c.value.files.span, "`calibrate.files` is empty")
            .label("name the recordings whose normal windows set the threshold");
        ck.push(d);
    }
    let same = |a: &std::path::Path, b: &std::path::Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    let mut recordings = Vec::new();
    let mut files = Vec::new();
    for f in &c.value.files.value {
        let path = ck.path(f);
        match ds.recordings.iter().position(|r| same(&r.path, &path)) {
            Some(i) => recordings.push(i),
            None => {
                let d = ck
                    .at(
                        &f.span,
                        format!(
                            "calibration file `{}` is not one of the dataset's `files`",
                            f.value
                        ),
                    )
                    .label("not replayed")
                    .note(format!("resolved to `{}`", path.display()));
                ck.push(d);
            }
        }
        files.push(path);
    }
    AnomalyThreshold::Calibrated {
        quantile,
        recordings,
        files,
    }
}

fn run_rules(
    ck: &mut Ck,
    base: Option<&RunRules>,
    run: Option<&RunSection>,
    pacing: Pacing,
) -> RunRules {
    let default = RunRules {
        warmup: 20,
        min_inferences: 0,
        min_duration: Duration::ZERO,
        repeats: 1,
        fresh_agent: true,
        seed: 1,
        batch: 1,
        pacing,
        interleave_block: 64,
        energy_windows: 5,
        energy_window: Duration::from_secs(10),
        idle_baseline: Duration::from_secs(2),
        throughput: false,
        stable_machine: false,
    };
    let base = base.cloned().unwrap_or(default);
    let Some(run) = run else { return base };
    let mut duration = |value: &Option<Sp<String>>, key: &str, default: Duration| {
        value.as_ref().map_or(default, |d| {
            units::duration(&d.value).unwrap_or_else(|e| {
                let diag = ck.at(&d.span, format!("invalid `{key}`")).label(e);
                ck.push(diag);
                default
            })
        })
    };
    let min_duration = duration(&run.min_duration, "min_duration", base.min_duration);
    let energy_window = duration(&run.energy_window, "energy_window", base.energy_window);
    let idle_baseline = duration(&run.idle_baseline, "idle_baseline", base.idle_baseline);
    RunRules {
        warmup: ck.opt_at_least(&run.warmup, 0, "warmup", base.warmup),
        min_inferences: ck.opt_at_least(
            &run.min_inferences,
            0,
            "min_inferences",
            base.min_inferences,
        ),
        min_duration,
        repeats: ck.opt_at_least(&run.repeats, 1, "repeats", base.repeats),
        fresh_agent: run.fresh_agent.unwrap_or(base.fresh_agent),
        seed: run
            .seed
            .as_ref()
            .map_or(base.seed, |s| ck.at_least(s, 0, "seed") as u64),
        batch: ck.opt_at_least(&run.batch, 1, "batch", base.batch),
        pacing: base.pacing,
        interleave_block: ck.opt_at_least(
            &run.interleave_block,
            1,
            "interleave_block",
            base.interleave_block,
        ),
        energy_windows: ck.opt_at_least(
            &run.energy_windows,
            0,
            "energy_windows",
            base.energy_windows,
        ),
        energy_window,
        idle_baseline,
        throughput: run.throughput.unwrap_or(base.throughput),
        stable_machine: run.stable_machine.unwrap_or(base.stable_machine),
    }
}

/// The unit a metric's absolute thresholds are written in.
fn dimension(metric: Metric) -> Option<&'static units::Dimension> {
    use Metric::*;
    match metric {
        RocAuc | PrAuc | F1AtThreshold | PrecisionAtThreshold | RecallAtThreshold
        | EventsDetected | Mape | AgreementDecisions => None,
        // Plain numbers in the target's or the score's own unit (R², skill and Spearman may be
        // negative): see `unbounded`.
        FalseAlarmsPerHour | DetectionDelay | Rmse | Mae | R2 | MaxAbsError | Skill
        | AgreementSpearman | AgreementRmseChange => None,
        Metric::Accuracy | Metric::MacroF1 | Metric::AgreementLabel => None,
        Metric::LatencyP50 | Metric::LatencyP90 | Metric::LatencyP99 | Metric::LatencyMean => {
            Some(&units::LATENCY)
        }
        Metric::EnergyPerInference => Some(&units::ENERGY),
        Metric::PeakRam | Metric::Flash => Some(&units::MEMORY),
    }
}

pub(crate) fn gate(ck: &mut Ck, g: &Sp<GateSection>, models: &[Model]) -> Option<GateSpec> {
    let raw = &g.value;
    let metric = ck.one_of(&raw.metric, "metric", &Metric::ALL);
    let (comparison, value) = match (&raw.at_least, &raw.at_most) {
        (Some(v), None) => (Comparison::AtLeast, v),
        (None, Some(v)) => (Comparison::AtMost, v),
        (l, _) => {
            let d = ck
                .at(
                    &g.span,
                    "a gate needs exactly one of `at_least` and `at_most`",
                )
                .label(if l.is_some() {
                    "both given"
                } else {
                    "neither given"
                });
            ck.push(d);
            return None;
        }
    };
    // A gate names a build id (`fp32@onnxruntime`) or a variant tag, which selects it on
    // every runtime.
    let builds = || models.iter().flat_map(|m| &m.builds);
    let mut variants: Vec<&str> = builds()
        .flat_map(|b| [b.base_variant.as_str(), b.variant.as_str()])
        .collect();
    variants.dedup();
    for v in &raw.variants {
        if !variants.contains(&v.value.as_str()) {
            let d = ck
                .at(&v.span, format!("gate names unknown variant `{}`", v.value))
                .label("no build has this variant")
                .help_opt(did_you_mean(
                    &v.value,
                    &variants,
                    "variants in this scenario",
                ));
            ck.push(d);
        }
    }
    if let (Some(m), Some(higher)) = (metric, metric.and_then(Metric::higher_is_better))
        && higher != (comparison == Comparison::AtLeast)
    {
        let (better, key) = if higher {
            ("higher", "at_least")
        } else {
            ("lower", "at_most")
        };
        let d = ck
            .at(
                &g.span,
                format!("`{}` is better {better}, so its gate is `{key}`", m.name()),
            )
            .label("this gate would pass a worse build");
        ck.push(d);
    }
    if let Some(m) = metric
        && let Some(task) = m.task()
        && !models.iter().any(|m| m.task.name() == task)
    {
        let d = ck
            .at(
                &raw.metric.span,
                format!(
                    "`{}` scores {task} models, and this scenario has none",
                    m.name()
                ),
            )
            .help_opt(
                (task == "anomaly").then(|| "an anomaly model has an `anomaly` table".to_string()),
            );
        ck.push(d);
    }
    let threshold = threshold(ck, value, metric?)?;
    Some(GateSpec {
        metric: metric?,
        comparison,
        threshold,
        board_selector: raw.boards.clone().unwrap_or_default(),
        variants: raw
            .variants
            .iter()
            .flat_map(|v| {
                builds()
                    .filter(|b| b.variant == v.value || b.base_variant == v.value)
                    .map(|b| b.variant.clone())
            })
            .fold(Vec::new(), |mut all, v| {
                if !all.contains(&v) {
                    all.push(v);
                }
                all
            }),
    })
}

/// Metrics whose absolute thresholds are any finite number, in the metric's own unit.
fn unbounded(metric: Metric) -> bool {
    use Metric::*;
    matches!(
        metric,
        FalseAlarmsPerHour
            | DetectionDelay
            | Rmse
            | Mae
            | R2
            | MaxAbsError
            | Skill
            | AgreementSpearman
            | AgreementRmseChange
    )
}

fn threshold(ck: &mut Ck, v: &Sp<ThresholdRaw>, metric: Metric) -> Option<Threshold> {
    let name = metric.name();
    let fail = |ck: &mut Ck, msg: String, label: String, help: Option<String>| {
        let d = ck.at(&v.span, msg).label(label).help_opt(help);
        ck.push(d);
        None
    };
    match (&v.value, dimension(metric)) {
        (ThresholdRaw::Number(x), None) if unbounded(metric) && x.is_finite() => {
            Some(Threshold::Absolute(*x))
        }
        (ThresholdRaw::Number(x), None) if (0.0..=1.0).contains(x) => Some(Threshold::Absolute(*x)),
        (ThresholdRaw::Number(x), None) => fail(
            ck,
            format!("`{name}` is a fraction between 0 and 1"),
            format!("found {x}"),
            (*x > 1.0 && *x <= 100.0).then(|| format!("did you mean {}?", x / 100.0)),
        ),
        (ThresholdRaw::Quantity(q), None) => fail(
            ck,
            format!("`{name}` is a fraction between 0 and 1, not a quantity"),
            format!("found \"{q}\""),
            None,
        ),
        (ThresholdRaw::Number(x), Some(dim)) => fail(
            ck,
            format!("a {} threshold needs a unit", dim.name),
            format!("found the bare number {x}"),
            Some(format!("write it as a string, e.g. {}", dim.example)),
        ),
        (ThresholdRaw::Quantity(q), Some(dim)) => match units::parse(q, dim) {
            Ok(x) => Some(Threshold::Absolute(x)),
            Err(e) => fail(ck, format!("invalid `{name}` threshold"), e, None),
        },
        (ThresholdRaw::Relative(r), _) => match (&r.of_reference, &r.vs_champion) {
            (Some(f), None) => Some(Threshold::OfReference(ck.positive(f, "of_reference"))),
            (None, Some(f)) if f.value >= 0.0 && f.value.is_finite() => {
                Some(Threshold::VsChampion {
                    max_regression: f.value,
                })
            }
            (None, Some(f)) => fail(
                ck,
                "`vs_champion` is an allowed regression and cannot be negative".into(),
                format!("found {}", f.value),
                None,
            ),
            _ => fail(
                ck,
                "a relative threshold needs exactly one of `of_reference` and `vs_champion`".into(),
                "here".into(),
                None,
            ),
        },
    }
}
