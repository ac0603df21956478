//! The scenario's `[drift]` table: how `gauntlet drift` requalifies the champion on fresh
//! recordings. Parsed with the rest of the scenario; absent, every key takes its default.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::Checker;
use crate::raw::{GateSection, ScenarioFile, Sp, ThresholdRaw};
use crate::validated::{GateSpec, Model};
use gauntlet_dataset::{ColumnRef, DatasetSpec};

type Ck<'a> = Checker<'a, ScenarioFile>;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriftSection {
    /// The model whose champion is requalified (default: the scenario's first model).
    pub model: Option<Sp<String>>,
    /// Recordings the reference windows are cut from, relative to this file (globs allowed);
    /// default: the scenario's own dataset windows.
    pub reference_files: Option<Sp<Vec<Sp<String>>>>,
    /// Fresh recordings to requalify on when the command line names none (globs allowed).
    pub recordings: Option<Sp<Vec<Sp<String>>>>,
    /// PSI bins, cut at the reference's quantiles (default 10: deciles).
    pub bins: Option<Sp<i64>>,
    /// Significance level of the KS and chi-square tests, after Holm's correction (default 0.05).
    pub alpha: Option<Sp<f64>>,
    /// Drift gates; default `psi` and `score_psi` at most 0.2.
    #[serde(default)]
    pub gates: Vec<Sp<DriftGateSection>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriftGateSection {
    /// A drift statistic (psi, ks, mean_shift, sd_change per input feature; score_psi, score_ks,
    /// class_mix of the outputs) with `at_most`, or any task metric of the model (accuracy, f1,
    /// rmse, roc_auc …) with `at_least`/`at_most`, typically `{ vs_champion = 0.05 }`.
    pub metric: Sp<String>,
    pub at_least: Option<Sp<ThresholdRaw>>,
    pub at_most: Option<Sp<ThresholdRaw>>,
    /// Input statistics: only these feature columns (default: every feature).
    #[serde(default)]
    pub features: Vec<Sp<String>>,
}

/// A size of distribution shift a drift gate bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftStatistic {
    /// Per input feature: population stability index.
    Psi,
    /// Per input feature: two-sample KS statistic D.
    Ks,
    /// Per input feature: |mean shift| in reference-σ units.
    MeanShift,
    /// Per input feature: |σ change| in reference-σ units.
    SdChange,
    /// The model's score (top-class probability, anomaly score or prediction): PSI.
    ScorePsi,
    /// The model's score: KS statistic D.
    ScoreKs,
    /// Predicted classes: the largest change of any class's share.
    ClassMix,
}

impl DriftStatistic {
    pub const ALL: [(&'static str, DriftStatistic); 7] = [
        ("psi", DriftStatistic::Psi),
        ("ks", DriftStatistic::Ks),
        ("mean_shift", DriftStatistic::MeanShift),
        ("sd_change", DriftStatistic::SdChange),
        ("score_psi", DriftStatistic::ScorePsi),
        ("score_ks", DriftStatistic::ScoreKs),
        ("class_mix", DriftStatistic::ClassMix),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("?", |(n, _)| n)
    }

    /// Whether the statistic is computed per input feature.
    pub fn per_feature(self) -> bool {
        matches!(
            self,
            Self::Psi | Self::Ks | Self::MeanShift | Self::SdChange
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum DriftGate {
    /// The statistic must be at most `at_most` (for each selected feature).
    Shift {
        statistic: DriftStatistic,
        at_most: f64,
        /// Empty: every feature.
        features: Vec<String>,
    },
    /// A task metric on the new recordings, judged as a run's gate is (typically vs the champion).
    Task(GateSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftSpec {
    pub model: Option<String>,
    /// `None`: the scenario's own dataset windows are the reference.
    pub reference_files: Option<Vec<PathBuf>>,
    pub recordings: Vec<PathBuf>,
    pub bins: usize,
    pub alpha: f64,
    pub gates: Vec<DriftGate>,
}

impl Default for DriftSpec {
    fn default() -> Self {
        DriftSpec {
            model: None,
            reference_files: None,
            recordings: Vec::new(),
            bins: 10,
            alpha: 0.05,
            gates: default_gates(),
        }
    }
}

fn default_gates() -> Vec<DriftGate> {
    [DriftStatistic::Psi, DriftStatistic::ScorePsi]
        .into_iter()
        .map(|statistic| DriftGate::Shift {
            statistic,
            at_most: 0.2,
            features: Vec::new(),
        })
        .collect()
}

fn feature_names(ds: &DatasetSpec) -> Vec<String> {
    ds.features
        .iter()
        .map(|c| match c {
            ColumnRef::Name(n) => n.clone(),
            ColumnRef::Index(i) => format!("column {i}"),
        })
        .collect()
}

pub(crate) fn validate(
    ck: &mut Ck,
    raw: Option<&Sp<DriftSection>>,
    ds: &DatasetSpec,
    models: &[Model],
) -> DriftSpec {
    let Some(raw) = raw else {
        return DriftSpec::default();
    };
    let d = &raw.value;
    if let Some(m) = &d.model
        && !models.iter().any(|x| x.name == m.value)
    {
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        let diag = ck
            .at(
                &m.span,
                format!("`[drift] model` names unknown model `{}`", m.value),
            )
            .label("no model has this name")
            .help_opt(crate::diagnostic::did_you_mean(
                &m.value,
                &names,
                "models in this scenario",
            ));
        ck.push(diag);
    }
    let alpha = d.alpha.as_ref().map_or(0.05, |a| {
        if a.value > 0.0 && a.value < 1.0 {
            a.value
        } else {
            let diag = ck
                .at(&a.span, "`alpha` is a significance level between 0 and 1")
                .label(format!("found {}", a.value));
            ck.push(diag);
            0.05
        }
    });
    let features = feature_names(ds);
    let gates = if d.gates.is_empty() {
        default_gates()
    } else {
        d.gates
            .iter()
            .filter_map(|g| gate(ck, g, &features, models))
            .collect()
    };
    DriftSpec {
        model: d.model.as_ref().map(|m| m.value.clone()),
        reference_files: d
            .reference_files
            .as_ref()
            .map(|f| crate::scenario::recordings(ck, f)),
        // An empty list is allowed: the command line must then name the recordings.
        recordings: d
            .recordings
            .as_ref()
            .filter(|f| !f.value.is_empty())
            .map(|f| crate::scenario::recordings(ck, f))
            .unwrap_or_default(),
        bins: ck.opt_at_least(&d.bins, 2, "bins", 10),
        alpha,
        gates,
    }
}

fn gate(
    ck: &mut Ck,
    g: &Sp<DriftGateSection>,
    features: &[String],
    models: &[Model],
) -> Option<DriftGate> {
    let raw = &g.value;
    let Some((_, statistic)) = DriftStatistic::ALL
        .iter()
        .find(|(n, _)| *n == raw.metric.value)
    else {
        let known_metric = crate::validated::Metric::ALL
            .iter()
            .any(|(n, _)| *n == raw.metric.value);
        if !known_metric {
            let names: Vec<&str> = DriftStatistic::ALL
                .iter()
                .map(|(n, _)| *n)
                .chain(crate::validated::Metric::ALL.iter().map(|(n, _)| *n))
                .collect();
            let diag = ck
                .at(
                    &raw.metric.span,
                    format!("unknown drift gate metric `{}`", raw.metric.value),
                )
                .label("neither a drift statistic nor a task metric")
                .help_opt(crate::diagnostic::did_you_mean(
                    &raw.metric.value,
                    &names,
                    "drift statistics and task metrics",
                ));
            ck.push(diag);
            return None;
        }
        if !raw.features.is_empty() {
            let diag = ck
                .at(
                    &raw.features[0].span,
                    "`features` selects input statistics only",
                )
                .label(format!("`{}` is a task metric", raw.metric.value));
            ck.push(diag);
        }
        let section = GateSection {
            metric: raw.metric.clone(),
            at_least: raw.at_least.clone(),
            at_most: raw.at_most.clone(),
            boards: None,
            variants: Vec::new(),
        };
        return crate::scenario::gate(
            ck,
            &Sp {
                span: g.span.clone(),
                value: section,
            },
            models,
        )
        .map(DriftGate::Task);
    };
    for f in &raw.features {
        if !features.contains(&f.value) {
            let names: Vec<&str> = features.iter().map(String::as_str).collect();
            let diag = ck
                .at(&f.span, format!("unknown feature `{}`", f.value))
                .label("not one of the dataset's `features`")
                .help_opt(crate::diagnostic::did_you_mean(
                    &f.value, &names, "features",
                ));
            ck.push(diag);
        }
    }
    if !statistic.per_feature() && !raw.features.is_empty() {
        let diag = ck
            .at(
                &raw.features[0].span,
                "`features` selects input statistics only",
            )
            .label(format!(
                "`{}` is computed on the model's outputs",
                statistic.name()
            ));
        ck.push(diag);
    }
    let at_most = match (&raw.at_least, &raw.at_most) {
        (
            None,
            Some(Sp {
                value: ThresholdRaw::Number(x),
                ..
            }),
        ) if x.is_finite() && *x >= 0.0 => *x,
        (None, Some(v)) => {
            let diag = ck
                .at(
                    &v.span,
                    format!("`{}` needs a plain number ≥ 0", statistic.name()),
                )
                .label("a drift size, e.g. 0.2");
            ck.push(diag);
            return None;
        }
        _ => {
            let diag = ck
                .at(
                    &g.span,
                    format!("a `{}` gate takes `at_most` only", statistic.name()),
                )
                .label("a larger drift is worse")
                .help("e.g. { metric = \"psi\", at_most = 0.2 }");
            ck.push(diag);
            return None;
        }
    };
    Some(DriftGate::Shift {
        statistic: *statistic,
        at_most,
        features: raw.features.iter().map(|f| f.value.clone()).collect(),
    })
}

/// Recordings named on the command line: files, or globs, relative to `base` (the working
/// directory). Every pattern must match a file; the error names the pattern.
pub fn resolve_recordings(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let path = base.join(p);
        if !p.contains(['*', '?', '[']) {
            if !path.is_file() {
                return Err(format!("read recording `{p}`: no such file"));
            }
            out.push(path);
            continue;
        }
        let pattern = if Path::new(p).is_absolute() {
            p.clone()
        } else {
            format!("{}/{p}", glob::Pattern::escape(&base.to_string_lossy()))
        };
        let mut matched: Vec<PathBuf> = glob::glob(&pattern)
            .map_err(|e| format!("expand recordings glob `{p}`: {}", e.msg))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        if matched.is_empty() {
            return Err(format!("expand recordings glob `{p}`: it matches no file"));
        }
        matched.sort();
        out.extend(matched);
    }
    Ok(out)
}
