//! Reporters: render a run's [`Results`] as a terminal summary, `results.json`, JUnit XML, a Markdown
//! summary and a self-contained HTML report.
//!
//! Reporters only render. Every figure, gate outcome and verdict comes from the [`Results`] (computed by
//! `gauntlet-results` and `gauntlet-gate`); the one thing a reporter derives itself is what to draw:
//! histograms and CDFs downsampled from the raw samples a [`SampleSource`] provides, and which points of
//! a scatter chart are Pareto-optimal.
//!
//! Every figure that did not come from a real clock or sensor is marked with its [`Source`]
//! (`emulated`, `simulated`) wherever it is shown.

mod drift;
mod fmt;
mod html;
mod json;
mod junit;
mod markdown;
mod printable;
mod rows;
mod runtimes;
mod svg;
mod task;
mod terminal;
mod trend;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gauntlet_results::Results;
#[cfg(doc)]
use gauntlet_results::Source;
use serde::Serialize;

pub use drift::{drift_html, drift_markdown, drift_terminal, moved_features};
pub use html::HtmlReporter;
pub use json::JsonReporter;
pub use junit::JunitReporter;
pub use markdown::MarkdownReporter;
pub use printable::printable;
pub use terminal::TerminalReporter;
pub use trend::{TREND_METRIC, Trend, TrendRun};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("render the `{template}` template: {message}")]
    Template { template: String, message: String },
    #[error("load report templates from `{path}`: {source}")]
    TemplateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("serialize results to JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("write report `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Raw per-inference samples, which `results.json` summarises but does not hold: they live in the run
/// folder or the store. Reports use them only to draw distributions; statistics come from the results.
pub trait SampleSource {
    /// Device-side inference times in µs of one build on one board, after warm-up; `None` if not kept.
    fn device_latency_us(&self, board: &str, model: &str, variant: &str) -> Option<Vec<f64>>;
}

/// Samples held in memory, keyed by board, model and variant; also the test double for [`SampleSource`].
#[derive(Debug, Clone, Default)]
pub struct MemorySamples {
    device_latency_us: BTreeMap<(String, String, String), Vec<f64>>,
}

impl MemorySamples {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, board: &str, model: &str, variant: &str, samples_us: Vec<f64>) {
        self.device_latency_us.insert(
            (board.to_string(), model.to_string(), variant.to_string()),
            samples_us,
        );
    }
}

impl SampleSource for MemorySamples {
    fn device_latency_us(&self, board: &str, model: &str, variant: &str) -> Option<Vec<f64>> {
        self.device_latency_us
            .get(&(board.to_string(), model.to_string(), variant.to_string()))
            .cloned()
    }
}

/// The build currently promoted for a model on a board class: what promoting a build of this run would
/// replace. Comes from the store's promotion ledger; its figures are the champion run's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Champion {
    pub model: String,
    pub board_class: String,
    pub run_id: String,
    pub variant: String,
    pub accuracy: Option<f64>,
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    pub energy_per_inference_j: Option<f64>,
    /// Who promoted it and when (RFC 3339), from the ledger.
    pub promoted_by: Option<String>,
    pub promoted_at: Option<String>,
}

/// Everything a reporter reads.
#[derive(Clone, Copy)]
pub struct ReportInput<'a> {
    pub results: &'a Results,
    pub samples: &'a dyn SampleSource,
    /// Current champions, at most one per model and board class; builds without one show "none".
    pub champions: &'a [Champion],
    /// Earlier runs of the builds, from the store: the HTML report draws this run against them.
    pub trends: &'a [Trend],
}

impl<'a> ReportInput<'a> {
    pub fn new(results: &'a Results, samples: &'a dyn SampleSource) -> Self {
        Self {
            results,
            samples,
            champions: &[],
            trends: &[],
        }
    }

    pub fn with_champions(self, champions: &'a [Champion]) -> Self {
        Self { champions, ..self }
    }

    pub fn with_trends(self, trends: &'a [Trend]) -> Self {
        Self { trends, ..self }
    }

    fn champion(&self, model: &str, board_class: &str) -> Option<&'a Champion> {
        self.champions
            .iter()
            .find(|c| c.model == model && c.board_class == board_class)
    }
}

/// One output format.
pub trait Reporter {
    fn render(&self, input: &ReportInput) -> Result<String, ReportError>;
    /// The file name it is written under in a run folder.
    fn file_name(&self) -> &str;
}

/// The formats `gauntlet report --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Terminal,
    Json,
    Junit,
    Markdown,
    Html,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Terminal,
        Format::Json,
        Format::Junit,
        Format::Markdown,
        Format::Html,
    ];

    /// The files `gauntlet run` writes into every run folder.
    pub const RUN_FOLDER: [Format; 4] =
        [Format::Json, Format::Html, Format::Markdown, Format::Junit];

    pub fn name(self) -> &'static str {
        match self {
            Format::Terminal => "terminal",
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Markdown => "md",
            Format::Html => "html",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The reporter with its default settings (built-in HTML templates).
    pub fn reporter(self) -> Box<dyn Reporter> {
        match self {
            Format::Terminal => Box::new(TerminalReporter),
            Format::Json => Box::new(JsonReporter),
            Format::Junit => Box::new(JunitReporter),
            Format::Markdown => Box::new(MarkdownReporter),
            Format::Html => Box::new(HtmlReporter::new()),
        }
    }
}

/// Renders each reporter and writes its output into `dir` under its file name; returns the paths
/// written. Renders everything before writing anything, so a template error leaves no partial set.
pub fn write_reports(
    dir: &Path,
    input: &ReportInput,
    reporters: &[Box<dyn Reporter>],
) -> Result<Vec<PathBuf>, ReportError> {
    let rendered = reporters
        .iter()
        .map(|r| Ok((dir.join(r.file_name()), r.render(input)?)))
        .collect::<Result<Vec<_>, ReportError>>()?;
    rendered
        .into_iter()
        .map(|(path, text)| match std::fs::write(&path, text) {
            Ok(()) => Ok(path),
            Err(source) => Err(ReportError::Write { path, source }),
        })
        .collect()
}

#[cfg(test)]
#[path = "../tests/common/fixture.rs"]
pub(crate) mod fixture;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_by_name() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("pdf"), None);
    }

    #[test]
    fn writes_every_run_folder_file() {
        let (results, samples) = fixture::run(500, 100);
        let input = ReportInput::new(&results, &samples);
        let dir = tempfile::tempdir().unwrap();
        let reporters: Vec<_> = Format::RUN_FOLDER.iter().map(|f| f.reporter()).collect();
        let written = write_reports(dir.path(), &input, &reporters).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            ["results.json", "report.html", "report.md", "junit.xml"]
        );
        for p in &written {
            assert!(std::fs::metadata(p).unwrap().len() > 100, "{}", p.display());
        }
    }

    /// Every format writes each gate's figure, its interval and its threshold with the one
    /// formatter, so they agree to the digit (the Markdown gate row once showed "1500.0 µs" beside
    /// "1.5 ms").
    #[test]
    fn every_format_writes_a_gate_figure_the_same_way() {
        use gauntlet_results::format;
        let (results, samples) = fixture::run(500, 100);
        let input = ReportInput::new(&results, &samples);
        let outputs: Vec<(Format, String)> = [
            Format::Terminal,
            Format::Markdown,
            Format::Html,
            Format::Junit,
        ]
        .into_iter()
        .map(|f| (f, f.reporter().render(&input).unwrap()))
        .collect();
        for g in &results.gates {
            let measured = g.measured.unwrap();
            let unit = g.quantity();
            let figure = format::value(unit, measured);
            let bounds = format::bounds(unit, measured, g.measured_ci.as_ref().unwrap());
            let threshold = format::value(unit, g.threshold.unwrap());
            for (f, text) in &outputs {
                // JUnit spells out figures only for the gates it reports as failed or skipped.
                if *f == Format::Junit && g.verdict == gauntlet_results::Verdict::Pass {
                    continue;
                }
                for expected in [&figure, &bounds, &threshold] {
                    let escaped = match f {
                        Format::Markdown => markdown::esc(expected),
                        Format::Html | Format::Junit => fmt::xml(expected),
                        _ => expected.clone(),
                    };
                    assert!(
                        text.contains(&escaped),
                        "{} lacks `{expected}` for {}",
                        f.name(),
                        g.gate
                    );
                }
            }
        }
    }

    #[test]
    fn write_error_names_the_file() {
        let (results, samples) = fixture::run(20, 0);
        let input = ReportInput::new(&results, &samples);
        let missing = Path::new("/nonexistent-gauntlet-dir");
        let err = write_reports(missing, &input, &[Format::Json.reporter()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent-gauntlet-dir/results.json"),
            "{err}"
        );
    }
}
