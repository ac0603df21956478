//! The self-contained HTML report: tera templates (embedded defaults, overridable from a folder) fed a
//! view built here. Templates autoescape (their names end in `.html`); the only values inserted
//! unescaped are the SVG charts from [`crate::svg`], which escape their own text.

use std::path::Path;

use gauntlet_measure::{ecdf_points, histogram};
use gauntlet_results::{BoardResult, Entry, Results, Source, Verdict};
use serde::Serialize;
use tera::{Context, Tera};

use crate::rows::{self, Cell, GateRow, VariantRow};
use crate::svg::{self, Marker, Point};
use crate::{Champion, ReportError, ReportInput, Reporter, fmt};

/// Template files, by the name a template directory must use to override them.
const DEFAULT_TEMPLATES: [(&str, &str); 2] = [
    (
        "report.html",
        include_str!("../../../reports/templates/report.html"),
    ),
    (
        "style.css",
        include_str!("../../../reports/templates/style.css"),
    ),
];
const ENTRY: &str = "report.html";
/// Histogram bins and CDF points per chart: enough to read the shape, independent of sample count.
const HISTOGRAM_BINS: usize = 60;
const CDF_POINTS: usize = 300;

pub struct HtmlReporter {
    tera: Tera,
}

impl Default for HtmlReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl HtmlReporter {
    /// With the built-in templates.
    pub fn new() -> Self {
        Self::build(&[]).expect("the built-in templates parse")
    }

    /// Templates in `dir` named like the built-in ones (`report.html`, `style.css`) replace them; the
    /// rest stay built in.
    pub fn with_template_dir(dir: &Path) -> Result<Self, ReportError> {
        if !dir.is_dir() {
            return Err(ReportError::TemplateDir {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            });
        }
        let mut overrides = Vec::new();
        for (name, _) in DEFAULT_TEMPLATES {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => overrides.push((name, text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ReportError::TemplateDir { path, source }),
            }
        }
        Self::build(&overrides)
    }

    fn build(overrides: &[(&str, String)]) -> Result<Self, ReportError> {
        let mut tera = Tera::new();
        tera.autoescape_on([".html"]);
        tera.set_escape_fn(escape_printable_html);
        // Added together: tera resolves `{% include %}` when a template is added.
        let templates = DEFAULT_TEMPLATES.map(|(name, default)| {
            let text = overrides
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(default, |(_, t)| t.as_str());
            (name, text)
        });
        tera.add_raw_templates(templates)
            .map_err(|e| template_error(ENTRY, e))?;
        Ok(HtmlReporter { tera })
    }
}

fn template_error(name: &str, e: tera::Error) -> ReportError {
    // tera's Display is terse; the source chain holds the line and column.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    ReportError::Template {
        template: name.to_string(),
        message,
    }
}

impl Reporter for HtmlReporter {
    fn render(&self, input: &ReportInput) -> Result<String, ReportError> {
        let view = view(input);
        let context = Context::from_serialize(&view).map_err(|e| template_error(ENTRY, e))?;
        self.tera
            .render(ENTRY, &context)
            .map_err(|e| template_error(ENTRY, e))
    }

    fn file_name(&self) -> &str {
        "report.html"
    }
}

#[derive(Serialize)]
struct View<'a> {
    results: &'a Results,
    outcome: &'static str,
    outcome_class: &'static str,
    banners: Vec<Banner<'a>>,
    gates: Vec<GateView>,
    variants: Vec<VariantRow>,
    /// Model files that ran on more than one runtime, with the latency ratio between them.
    runtimes: Vec<crate::runtimes::RuntimeRow>,
    pareto: Vec<ParetoView>,
    boards: Vec<BoardView<'a>>,
    legend: Vec<LegendItem>,
    dataset_windows: String,
    /// Anomaly and regression builds with their inline SVG charts.
    tasks: Vec<TaskView>,
    /// "Worse than persistence" and the like.
    findings: Vec<String>,
    /// This run against the store's last runs of the same builds.
    trends: Vec<crate::trend::TrendView>,
}

#[derive(Serialize)]
struct TaskView {
    title: String,
    charts: Vec<String>,
}

#[derive(Serialize)]
struct Banner<'a> {
    model: &'a str,
    variant: &'a str,
    board_class: &'a str,
    verdict: &'static str,
    class: &'static str,
    detail: String,
    champion: Option<&'a Champion>,
    champion_figures: Option<String>,
    /// Only builds that passed get a command: promoting anything else would bypass the gates.
    promote: Option<String>,
}

#[derive(Serialize)]
struct GateView {
    #[serde(flatten)]
    row: GateRow,
    class: &'static str,
}

#[derive(Serialize)]
struct ParetoView {
    board: String,
    latency: String,
    energy: Option<String>,
}

#[derive(Serialize)]
struct BoardView<'a> {
    id: String,
    board: &'a BoardResult,
    class: &'a str,
    status: &'static str,
    timing_source: Option<&'static str>,
    power: Option<PowerView>,
    temperature: Option<String>,
    machine_changes: Option<String>,
    builds: Vec<BuildView<'a>>,
}

#[derive(Serialize)]
struct PowerView {
    svg: String,
    source: Option<&'static str>,
    late: String,
    late_warning: bool,
}

#[derive(Serialize)]
struct BuildView<'a> {
    id: String,
    entry: &'a Entry,
    status: &'static str,
    latency: Option<LatencyView>,
    confusion: Option<ConfusionView<'a>>,
}

#[derive(Serialize)]
struct LatencyView {
    source: Option<&'static str>,
    stats: Vec<(String, Cell)>,
    histogram: Option<String>,
    cdf: Option<String>,
    /// Why there is no chart, or what the chart leaves out.
    note: Option<String>,
}

#[derive(Serialize)]
struct ConfusionView<'a> {
    classes: &'a [String],
    rows: Vec<ConfusionRow<'a>>,
    source: Option<&'static str>,
}

#[derive(Serialize)]
struct ConfusionRow<'a> {
    class: &'a str,
    cells: Vec<ConfusionCell>,
}

#[derive(Serialize)]
struct ConfusionCell {
    count: u64,
    /// Share of the row (the true class), 0–100, for the heat-map shade.
    percent: u32,
    diagonal: bool,
}

#[derive(Serialize)]
struct LegendItem {
    source: &'static str,
    meaning: &'static str,
}

fn verdict_class(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Pass) => "pass",
        Some(Verdict::Fail) => "fail",
        Some(Verdict::Inconclusive) => "inconclusive",
        None => "infra",
    }
}

fn not_measured(s: Source) -> Option<&'static str> {
    (s != Source::Measured).then(|| fmt::source(s))
}

fn view<'a>(input: &ReportInput<'a>) -> View<'a> {
    let r = input.results;
    let outcome_class = match r.outcome {
        gauntlet_results::Outcome::Pass => "pass",
        gauntlet_results::Outcome::GateFailed => "fail",
        gauntlet_results::Outcome::InfraFailure => "infra",
        gauntlet_results::Outcome::Inconclusive => "inconclusive",
    };
    let banners = r
        .verdicts
        .iter()
        .map(|v| {
            let champion = input.champion(&v.model, &v.board_class);
            Banner {
                model: &v.model,
                variant: &v.variant,
                board_class: &v.board_class,
                verdict: fmt::verdict(v.verdict),
                class: verdict_class(v.verdict),
                detail: v.infra_error.clone().unwrap_or_else(|| {
                    format!(
                        "{} passed · {} failed · {} inconclusive",
                        v.gates_passed, v.gates_failed, v.gates_inconclusive
                    )
                }),
                champion,
                champion_figures: champion.map(champion_figures),
                promote: (v.verdict == Some(Verdict::Pass)).then(|| {
                    fmt::promote_command(
                        &r.run_id,
                        &v.model,
                        &v.variant,
                        &format!("passed {} gates on {}", v.gates_passed, v.board_class),
                    )
                }),
            }
        })
        .collect();
    let gates = rows::gate_rows(r)
        .into_iter()
        .zip(&r.gates)
        .map(|(row, g)| GateView {
            row,
            class: verdict_class(Some(g.verdict)),
        })
        .collect();
    let legend = rows::sources_used(r)
        .into_iter()
        .filter_map(|s| {
            fmt::SOURCE_LEGEND
                .iter()
                .find(|(k, _)| *k == s)
                .map(|(_, meaning)| LegendItem {
                    source: fmt::source(s),
                    meaning,
                })
        })
        .collect();
    View {
        results: r,
        dataset_windows: fmt::dataset_windows(&r.dataset),
        tasks: crate::task::charts(r)
            .into_iter()
            .map(|(title, charts)| TaskView { title, charts })
            .collect(),
        findings: crate::task::findings(r),
        trends: crate::trend::views(r, input.trends),
        outcome: fmt::outcome(r.outcome),
        outcome_class,
        banners,
        gates,
        variants: rows::variant_rows(r),
        runtimes: crate::runtimes::runtime_rows(r),
        pareto: pareto_views(r),
        boards: r
            .boards
            .iter()
            .enumerate()
            .map(|(i, b)| board_view(input, i, b))
            .collect(),
        legend,
    }
}

fn champion_figures(c: &Champion) -> String {
    [
        c.accuracy.map(|a| format!("accuracy {}", fmt::percent(a))),
        c.latency_p50_us.map(|v| format!("p50 {}", fmt::micros(v))),
        c.latency_p99_us.map(|v| format!("p99 {}", fmt::micros(v))),
        c.energy_per_inference_j
            .map(|v| format!("{} / inference", fmt::joules(v))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ")
}

/// Per board, accuracy against p50 latency and against energy: trade-offs are only comparable on the
/// same hardware.
fn pareto_views(r: &Results) -> Vec<ParetoView> {
    let mut boards: Vec<&str> = r.entries.iter().map(|e| e.board.as_str()).collect();
    boards.dedup();
    boards
        .into_iter()
        .filter_map(|board| {
            let entries: Vec<(&Entry, &gauntlet_results::Metrics, f64)> = r
                .entries
                .iter()
                .filter(|e| e.board == board)
                .filter_map(|e| {
                    let m = e.metrics.as_ref()?;
                    Some((e, m, m.accuracy?))
                })
                .collect();
            let label = |e: &Entry| format!("{}:{}", e.model, e.variant);
            let acc_source = |m: &gauntlet_results::Metrics| m.sources.get("accuracy").copied();
            let group = |e: &Entry| {
                e.runtime
                    .as_ref()
                    .map_or_else(String::new, |r| r.name.clone())
            };
            let latency: Vec<Point> = entries
                .iter()
                .filter_map(|(e, m, acc)| {
                    let l = m.latency_device_us.as_ref()?;
                    Some(Point {
                        label: label(e),
                        x: l.p50,
                        y: acc * 100.0,
                        not_measured: l.source != Source::Measured
                            || acc_source(m).is_some_and(|s| s != Source::Measured),
                        group: group(e),
                    })
                })
                .collect();
            if latency.is_empty() {
                return None;
            }
            let energy: Vec<Point> = entries
                .iter()
                .filter_map(|(e, m, acc)| {
                    let en = m.energy.as_ref()?;
                    Some(Point {
                        label: label(e),
                        x: en.per_inference_j * 1e6,
                        y: acc * 100.0,
                        not_measured: en.source != Source::Measured,
                        group: group(e),
                    })
                })
                .collect();
            Some(ParetoView {
                board: board.to_string(),
                latency: svg::pareto(
                    &format!("{board}: accuracy vs device latency p50"),
                    "latency p50 (µs) — lower is better",
                    "accuracy (%)",
                    &latency,
                ),
                energy: (!energy.is_empty()).then(|| {
                    svg::pareto(
                        &format!("{board}: accuracy vs energy per inference"),
                        "energy per inference (µJ) — lower is better",
                        "accuracy (%)",
                        &energy,
                    )
                }),
            })
        })
        .collect()
}

fn board_view<'a>(input: &ReportInput<'a>, index: usize, b: &'a BoardResult) -> BoardView<'a> {
    let r = input.results;
    let power = b.power_trace.as_ref().map(|t| PowerView {
        svg: svg::power(
            &format!(
                "{}: power ({}{})",
                b.board,
                t.sensor,
                match t.source {
                    Source::Measured => String::new(),
                    s => format!(", {}", fmt::source(s)),
                }
            ),
            t,
        ),
        source: not_measured(t.source),
        late: format!(
            "{} samples at {:.0} Hz, {:.3} % late or dropped",
            t.samples,
            t.sample_hz,
            t.late_fraction * 100.0
        ),
        // MLPerf Tiny's energy mode allows at most 0.1 % dropped samples.
        late_warning: t.late_fraction > 0.001,
    });
    let builds = r
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.board == b.board)
        .map(|(i, e)| build_view(input, i, e))
        .collect();
    BoardView {
        id: format!("board-{index}"),
        board: b,
        class: fmt::board_class(r, &b.board),
        status: match b.status {
            gauntlet_results::BoardStatus::Completed => "completed",
            gauntlet_results::BoardStatus::InfraFailed => "infrastructure failure",
        },
        timing_source: b.timing_source.map(fmt::source),
        power,
        temperature: b.temperatures.as_ref().map(fmt::temperatures),
        machine_changes: b.machine.as_ref().and_then(fmt::machine_changes),
        builds,
    }
}

fn build_view<'a>(input: &ReportInput<'a>, index: usize, e: &'a Entry) -> BuildView<'a> {
    let r = input.results;
    let m = e.metrics.as_ref();
    let latency = m.and_then(|m| m.latency_device_us.as_ref()).map(|l| {
        let label = |which: &str, v: f64| (which.to_string(), Cell::bare(fmt::micros(v)));
        let (ci, no_interval) = l.honest_intervals();
        let with_ci = |which: &str, v: f64, c: Option<gauntlet_measure::ConfidenceInterval>| {
            let mut cell = Cell::bare(fmt::micros(v));
            cell.ci = c.map(|c| fmt::interval(fmt::Quantity::Micros, v, &c));
            if l.insufficient.iter().any(|p| p == which) {
                cell.note = Some("indicative: fewer samples than MLPerf LoadGen requires".into());
            } else if let Some(why) = &no_interval {
                cell.note = Some(why.clone());
            }
            (which.to_string(), cell)
        };
        let stats = vec![
            with_ci("p50", l.p50, ci.map(|c| c.p50)),
            with_ci("p90", l.p90, ci.map(|c| c.p90)),
            with_ci("p95", l.p95, ci.map(|c| c.p95)),
            with_ci("p99", l.p99, ci.map(|c| c.p99)),
            with_ci("p999", l.p999, None),
            with_ci("mean", l.mean, ci.map(|c| c.mean)),
            label("stddev", l.stddev),
            label("min", l.min),
            label("max", l.max),
            ("n".to_string(), Cell::bare(l.n.to_string())),
        ];
        let samples = input.samples.device_latency_us(&e.board, &e.model, &e.variant);
        let title = format!("{}:{} on {}", e.model, e.variant, e.board);
        let markers = || {
            vec![
                Marker { label: "p50".into(), x: l.p50 },
                Marker { label: "p99".into(), x: l.p99 },
            ]
        };
        let x_label = match l.source {
            Source::Measured => "device latency (µs)".to_string(),
            s => format!("device latency (µs, {})", fmt::source(s)),
        };
        let (histogram_svg, cdf_svg, note) = match samples {
            Some(mut xs) if !xs.is_empty() => {
                // Sorted once here, the CDF's own sort finds a sorted run and the histogram's body is
                // a prefix: this is what keeps a million-sample build well under a second.
                xs.sort_unstable_by(f64::total_cmp);
                // Equal-width bins over the full range would spend most bins on a handful of slow
                // outliers: bin up to the exact p99.9 and say how many lie beyond.
                let cut = l.p999;
                let body = &xs[..xs.partition_point(|x| *x <= cut)];
                let beyond = xs.len() - body.len();
                let note = (beyond > 0).then(|| {
                    format!(
                        "histogram shows samples up to p99.9 ({}); {beyond} slower samples up to {} are in the CDF",
                        fmt::micros(cut),
                        fmt::micros(l.max)
                    )
                });
                (
                    Some(svg::histogram(
                        &format!("{title}: latency histogram"),
                        &x_label,
                        &histogram(body, HISTOGRAM_BINS),
                        &markers(),
                    )),
                    Some(svg::cdf(
                        &format!("{title}: latency CDF"),
                        &x_label,
                        &ecdf_points(&xs, CDF_POINTS),
                        &markers(),
                    )),
                    note,
                )
            }
            _ => (
                None,
                None,
                Some("raw samples were not kept for this build: statistics only".to_string()),
            ),
        };
        LatencyView {
            source: not_measured(l.source),
            stats,
            histogram: histogram_svg,
            cdf: cdf_svg,
            note,
        }
    });
    let confusion = m.and_then(|m| {
        let matrix = m.confusion.as_ref()?;
        Some(ConfusionView {
            classes: &r.dataset.classes,
            source: m.sources.get("confusion").copied().and_then(not_measured),
            rows: matrix
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let total: u64 = row.iter().sum();
                    ConfusionRow {
                        class: r.dataset.classes.get(i).map_or("?", String::as_str),
                        cells: row
                            .iter()
                            .enumerate()
                            .map(|(j, &count)| ConfusionCell {
                                count,
                                percent: (count * 100).checked_div(total).unwrap_or(0) as u32,
                                diagonal: i == j,
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
    });
    BuildView {
        id: format!("build-{index}"),
        entry: e,
        status: fmt::entry_status(e.status),
        latency,
        confusion,
    }
}

/// HTML escaping of text made printable first: a browser shows no control characters, so a
/// name holding one would look like a different name.
fn escape_printable_html(input: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    tera::escape_html(&crate::printable(input), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    /// The section ids a reader (and the browser test) relies on.
    const SECTIONS: [&str; 8] = [
        "verdicts",
        "gates",
        "quantization",
        "pareto",
        "details",
        "provenance",
        "promotion",
        "legend",
    ];

    fn render(samples_per_build: usize) -> String {
        let (results, samples) = fixture::run(samples_per_build, 100);
        HtmlReporter::new()
            .render(&ReportInput::new(&results, &samples))
            .unwrap()
    }

    #[test]
    fn has_every_section_and_escapes_names() {
        let html = render(2_000);
        for id in SECTIONS {
            assert!(
                html.contains(&format!("id=\"{id}\"")),
                "missing section {id}"
            );
        }
        assert!(!html.contains("<script"), "unescaped script tag");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
        );
        assert!(
            !html.contains(" src=") && !html.contains("<link"),
            "external resource"
        );
        // Five builds with samples: a histogram and a CDF each; two boards with power traces.
        assert_eq!(html.matches("latency histogram</title>").count(), 5);
        assert_eq!(html.matches("latency CDF</title>").count(), 5);
        // Two boards have power traces, each with two measurement windows marked.
        assert_eq!(html.matches("<polygon class=\"band\"").count(), 2);
        assert_eq!(html.matches("<rect class=\"window w").count(), 4);
        assert!(html.contains(
            "Temperature during the run: cpu-thermal 51.2–58.9 °C (3 samples, every 1 s)"
        ));
        assert!(html.contains(
            "<strong>Machine state changed:</strong> governor ondemand → powersave in block 4 of \
             replay 0 of `kws`"
        ));
        assert!(html.contains("class=\"badge emulated\""));
        assert!(html.contains("class=\"badge simulated\""));
        assert!(html.contains("QEMU instruction-count"));
        assert!(html.contains("gauntlet promote 20261125-101500-a1b2 --model kws --variant int8"));
    }

    #[test]
    fn failed_and_unjudged_builds_get_no_promote_command() {
        let html = render(100);
        assert!(!html.contains(
            "--model kws --variant fp32 --by \"$USER\" --reason 'passed 0 gates on stm32'"
        ));
        assert_eq!(html.matches("gauntlet promote ").count(), 3);
    }

    #[test]
    fn template_dir_overrides_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("report.html"),
            "run {{ results.run_id }} {{ banners | length }}",
        )
        .unwrap();
        let (results, samples) = fixture::run(10, 0);
        let out = HtmlReporter::with_template_dir(dir.path())
            .unwrap()
            .render(&ReportInput::new(&results, &samples))
            .unwrap();
        assert_eq!(out, "run 20261125-101500-a1b2 6");
        let err = HtmlReporter::with_template_dir(&dir.path().join("missing"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("missing"), "{err}");
        std::fs::write(dir.path().join("report.html"), "{% if %}").unwrap();
        let err = HtmlReporter::with_template_dir(dir.path()).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("render the `report.html` template"),
            "{err}"
        );
    }

    #[test]
    fn builds_without_samples_say_so() {
        let (results, _) = fixture::run(10, 0);
        let html = HtmlReporter::new()
            .render(&ReportInput::new(&results, &crate::MemorySamples::new()))
            .unwrap();
        assert!(html.contains("raw samples were not kept"));
        assert_eq!(html.matches("latency histogram</title>").count(), 0);
    }
}
