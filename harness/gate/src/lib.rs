//! Gates and verdicts: pure judgement of a run's [`Results`] against a scenario's gates. No I/O; the
//! champion (the last promoted build) comes through the [`ChampionLookup`] trait.
//!
//! # Rules
//!
//! - **Board class** is the board's `class` label when it has one, else its kind name
//!   (`local`, `raspberry-pi` via a label, `qemu-stm32`, …); see [`board_class`]. Verdicts and
//!   champions are per model build × board class.
//! - **Deciding with intervals**: for `at_most`, PASS when the whole interval is ≤ the threshold,
//!   FAIL when the whole interval is above it, else INCONCLUSIVE (mirrored for `at_least`). A figure
//!   without an interval (macro F1, memory, flash, energy from one window) is compared as a point.
//!   A latency percentile with fewer samples than MLPerf LoadGen requires (p90 ≥ 64, p99 ≥ 662) is
//!   INCONCLUSIVE whatever its value.
//! - **Relative to the reference**: threshold = fraction × the reference build's point value on the
//!   same board; not applied to the reference build itself.
//! - **Latency intervals** are the dependence-aware ones (interleaved blocks, replays first; see
//!   `gauntlet_measure`'s `blocks` module); a run with too few blocks for one is INCONCLUSIVE.
//!   Results written before block intervals existed fall back to the per-sample ones.
//! - **Relative to the champion, head to head**: when the champion's own build (its SHA-256) ran in
//!   this run, interleaved with the candidate on the same board, a `latency.p50`/`latency.mean`
//!   gate judges the candidate/champion ratio over block pairs against 1 + X, with its interval.
//! - **Relative to the champion, stored figures** (otherwise): threshold = champion's point value
//!   × (1 + X) for `at_most`, × (1 − X) for `at_least`, each widened by the champion build's own
//!   run-to-run spread ((max − min) / median over its runs on the board class), judged with the
//!   candidate's interval as above; the evidence says which was used. The champion's own
//!   uncertainty is not otherwise propagated. With no champion yet the gate PASSes (nothing to regress against).
//!   When the champion's board had other CPU extensions than this one (other int8/fp16 kernels),
//!   the evidence warns that the comparison is not like for like.
//!   A failed champion lookup is an infrastructure error of that build, never a model FAIL.
//! - **Build status**: a build the board refused (unsupported operator) FAILs every gate that selects
//!   it, and its build verdict is FAIL even when no gate selects it (it cannot be promoted). An
//!   interrupted or not-run build gets no gate verdict; its build verdict carries `infra_error`.
//! - **Outcome**: GateFailed if any gate FAILed (it takes precedence over infrastructure failures,
//!   since the failure is a finding), else InfraFailure if any board or build failed for
//!   infrastructure reasons, else Inconclusive if any gate was INCONCLUSIVE and the scenario says
//!   inconclusive fails, else Pass.
//!
//! What each metric reads is documented on the private `figure` module's `figure` function: latency
//! gates read the device's own time; `flash` falls back to the model file size on Linux boards.

mod figure;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

use std::collections::BTreeMap;

use gauntlet_results::{
    Baseline, BaselineKind, BoardStatus, BuildVerdict, ChampionRatio, Entry, EntryStatus,
    GateResult, GateScale, Metrics, Outcome, Results, Verdict, format, other_cpu_extensions,
};
use gauntlet_spec::{Board, Comparison, GateSpec, Metric, Scenario, Threshold};

use figure::{Figure, figure};

/// The last promoted build of a model for a scenario and board class.
#[derive(Debug, Clone, PartialEq)]
pub struct Champion {
    pub run_id: String,
    pub variant: String,
    pub model_sha256: String,
    pub metrics: Metrics,
    /// The same build's figures in every run of the scenario on the board class (its own run
    /// included), oldest first: calibrates the noise band when the gate must use stored figures.
    pub history: Vec<Metrics>,
    /// The CPU extensions of the board its figures come from (empty when its run recorded none):
    /// int8 and fp16 kernels follow them, so stored figures from a board with other extensions
    /// are compared with a warning.
    pub cpu_features: Vec<String>,
}

/// Reading the champion failed (e.g. the store could not be read).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("read the champion of `{model}` on board class `{board_class}`: {reason}")]
pub struct LookupError {
    pub model: String,
    pub board_class: String,
    pub reason: String,
}

/// Where champions come from: the store in production, a table in tests.
pub trait ChampionLookup {
    fn champion(
        &self,
        scenario: &str,
        model: &str,
        board_class: &str,
    ) -> Result<Option<Champion>, LookupError>;
}

/// No champion anywhere: every champion gate passes with "no champion promoted yet".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoChampions;

impl ChampionLookup for NoChampions {
    fn champion(&self, _: &str, _: &str, _: &str) -> Result<Option<Champion>, LookupError> {
        Ok(None)
    }
}

/// Champions held in memory, keyed by (scenario, model, board class): the test double of the store.
#[derive(Debug, Clone, Default)]
pub struct ChampionTable(pub BTreeMap<(String, String, String), Champion>);

impl ChampionTable {
    pub fn insert(&mut self, scenario: &str, model: &str, board_class: &str, champion: Champion) {
        self.0.insert(
            (scenario.into(), model.into(), board_class.into()),
            champion,
        );
    }
}

impl ChampionLookup for ChampionTable {
    fn champion(
        &self,
        scenario: &str,
        model: &str,
        board_class: &str,
    ) -> Result<Option<Champion>, LookupError> {
        Ok(self
            .0
            .get(&(scenario.into(), model.into(), board_class.into()))
            .cloned())
    }
}

/// What the gates concluded; the caller stores these into `Results.gates/verdicts/outcome`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub gates: Vec<GateResult>,
    pub verdicts: Vec<BuildVerdict>,
    pub outcome: Outcome,
}

/// The parts of a scenario that judging needs.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub scenario: &'a str,
    pub gates: &'a [GateSpec],
    pub inconclusive_fails: bool,
}

impl<'a> From<&'a Scenario> for Rules<'a> {
    fn from(s: &'a Scenario) -> Self {
        Rules {
            scenario: &s.name,
            gates: &s.gates,
            inconclusive_fails: s.inconclusive_fails,
        }
    }
}

/// A build's figure for `metric` and its interval, read as gates read it; `Err` names what was
/// not measured.
pub fn metric_figure(
    metric: Metric,
    m: &Metrics,
) -> Result<(f64, Option<gauntlet_measure::ConfidenceInterval>), String> {
    figure(metric, m).map(|f| (f.value, f.ci))
}

/// The class verdicts and champions are kept per: the `class` label, else the board's kind.
pub fn board_class(board: &Board) -> String {
    board
        .labels
        .get("class")
        .cloned()
        .unwrap_or_else(|| board.kind.name().to_string())
}

/// Judges `results` against the scenario's gates. `boards` are the rig's boards (for labels and
/// classes); `champions` supplies champion baselines.
pub fn evaluate(
    scenario: &Scenario,
    boards: &[Board],
    results: &Results,
    champions: &dyn ChampionLookup,
) -> Evaluation {
    evaluate_rules(Rules::from(scenario), boards, results, champions)
}

/// [`evaluate`] with the scenario reduced to what judging reads.
pub fn evaluate_rules(
    rules: Rules<'_>,
    boards: &[Board],
    results: &Results,
    champions: &dyn ChampionLookup,
) -> Evaluation {
    let mut builds = Tallies::default();
    // Each entry with its board (None when the rig lacks it) and class.
    let mut placed = Vec::with_capacity(results.entries.len());
    // A champion build that joined the run is the yardstick, not a candidate.
    for entry in results.entries.iter().filter(|e| !e.champion) {
        let board = boards.iter().find(|b| b.id == entry.board);
        let class = match board {
            Some(b) => board_class(b),
            None => results
                .boards
                .iter()
                .find(|b| b.board == entry.board)
                .map_or_else(|| "unknown".to_string(), |b| b.kind.clone()),
        };
        let tally = builds.get(entry, &class);
        match (board, entry.status) {
            (None, _) => tally.infra.push(format!(
                "{}: the board is in the results but not in the rig",
                entry.board
            )),
            (Some(_), EntryStatus::Interrupted | EntryStatus::NotRun) => {
                tally.infra.push(infra_reason(entry, results))
            }
            (Some(_), EntryStatus::Rejected) => tally.rejected = true,
            (Some(_), EntryStatus::Completed) => {}
        }
        placed.push((entry, board, class));
    }

    let mut gates = Vec::new();
    for spec in rules.gates {
        for (entry, board, class) in &placed {
            let Some(board) = board else { continue };
            let selected = board.matches(&spec.board_selector)
                && (spec.variants.is_empty() || spec.variants.contains(&entry.variant));
            if !selected || matches!(entry.status, EntryStatus::Interrupted | EntryStatus::NotRun) {
                continue;
            }
            let tally = builds.get(entry, class);
            match judge(rules.scenario, spec, entry, class, results, champions) {
                Judged::Gate(g) => {
                    match g.verdict {
                        Verdict::Pass => tally.passed += 1,
                        Verdict::Fail => tally.failed += 1,
                        Verdict::Inconclusive => tally.inconclusive += 1,
                    }
                    gates.push(*g);
                }
                Judged::NotApplicable => {}
                Judged::Infra(reason) => tally.infra.push(reason),
            }
        }
    }

    let verdicts: Vec<BuildVerdict> = builds.0.into_iter().map(Tally::verdict).collect();
    let any = |v: Verdict| gates.iter().any(|g| g.verdict == v);
    let infra = results
        .boards
        .iter()
        .any(|b| b.status == BoardStatus::InfraFailed)
        || verdicts.iter().any(|v| v.infra_error.is_some());
    let outcome = if any(Verdict::Fail) {
        Outcome::GateFailed
    } else if infra {
        Outcome::InfraFailure
    } else if rules.inconclusive_fails && any(Verdict::Inconclusive) {
        Outcome::Inconclusive
    } else {
        Outcome::Pass
    };
    Evaluation {
        gates,
        verdicts,
        outcome,
    }
}

fn infra_reason(entry: &Entry, results: &Results) -> String {
    let status = match entry.status {
        EntryStatus::Interrupted => "interrupted",
        _ => "not run",
    };
    let why = entry
        .error
        .as_ref()
        .map(|e| format!("{}: {}", e.kind, e.message))
        .or_else(|| {
            results
                .boards
                .iter()
                .find(|b| b.board == entry.board)
                .and_then(|b| b.failure.as_ref())
                .map(|f| format!("{}: {}", f.stage, f.reason))
        })
        .unwrap_or_else(|| "no reason recorded".into());
    format!("{}: build {status} ({why})", entry.board)
}

/// Gate counts and infrastructure errors of one model build on one board class.
struct Tally {
    model: String,
    variant: String,
    class: String,
    infra: Vec<String>,
    rejected: bool,
    passed: usize,
    failed: usize,
    inconclusive: usize,
}

impl Tally {
    fn verdict(self) -> BuildVerdict {
        let infra_error = (!self.infra.is_empty()).then(|| self.infra.join("; "));
        let verdict = if self.failed > 0 || self.rejected {
            Some(Verdict::Fail)
        } else if infra_error.is_some() {
            None
        } else if self.inconclusive > 0 {
            Some(Verdict::Inconclusive)
        } else {
            Some(Verdict::Pass)
        };
        BuildVerdict {
            model: self.model,
            variant: self.variant,
            board_class: self.class,
            verdict,
            infra_error,
            gates_passed: self.passed,
            gates_failed: self.failed,
            gates_inconclusive: self.inconclusive,
        }
    }
}

/// Tallies in order of first appearance.
#[derive(Default)]
struct Tallies(Vec<Tally>);

impl Tallies {
    fn get(&mut self, entry: &Entry, class: &str) -> &mut Tally {
        let found = self
            .0
            .iter()
            .position(|t| t.model == entry.model && t.variant == entry.variant && t.class == class);
        let i = found.unwrap_or_else(|| {
            self.0.push(Tally {
                model: entry.model.clone(),
                variant: entry.variant.clone(),
                class: class.to_string(),
                infra: Vec::new(),
                rejected: false,
                passed: 0,
                failed: 0,
                inconclusive: 0,
            });
            self.0.len() - 1
        });
        &mut self.0[i]
    }
}

enum Judged {
    Gate(Box<GateResult>),
    /// A reference gate on the reference build itself.
    NotApplicable,
    Infra(String),
}

/// The gate as a person would write it: `latency.p99 <= 20 ms on kind=local for fp32, int8`.
fn gate_label(spec: &GateSpec) -> String {
    let metric = spec.metric;
    let op = match spec.comparison {
        Comparison::AtMost => "<=",
        Comparison::AtLeast => ">=",
    };
    let rhs = match spec.threshold {
        Threshold::Absolute(t) => format::metric(metric, t),
        Threshold::OfReference(f) => format!("{} of reference", format::percent(f)),
        Threshold::VsChampion { max_regression } => {
            let sign = match spec.comparison {
                Comparison::AtMost => '+',
                Comparison::AtLeast => '-',
            };
            format!("champion {sign} {}", format::percent(max_regression))
        }
    };
    let mut label = format!("{} {op} {rhs}", metric.name());
    if !spec.board_selector.is_empty() {
        let sel: Vec<String> = spec
            .board_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        label += &format!(" on {}", sel.join(", "));
    }
    // Each result names its build already: a long list would only bury the threshold.
    match spec.variants.as_slice() {
        [] => {}
        few @ [_] | few @ [_, _] | few @ [_, _, _] => label += &format!(" for {}", few.join(", ")),
        [first, second, rest @ ..] => {
            label += &format!(" for {first}, {second} and {} more builds", rest.len())
        }
    }
    label
}

/// A threshold resolved against its baseline, with the words that explain it.
struct Resolved {
    threshold: f64,
    baseline: Option<Baseline>,
    /// e.g. ` (99% of reference fp32 91.2%)`.
    context: String,
}

fn judge(
    scenario: &str,
    spec: &GateSpec,
    entry: &Entry,
    class: &str,
    results: &Results,
    champions: &dyn ChampionLookup,
) -> Judged {
    let metric = spec.metric;
    let mut gate = GateResult {
        gate: gate_label(spec),
        metric,
        board: entry.board.clone(),
        board_class: class.to_string(),
        model: entry.model.clone(),
        variant: entry.variant.clone(),
        comparison: spec.comparison,
        scale: GateScale::Metric,
        threshold: None,
        measured: None,
        measured_ci: None,
        baseline: None,
        verdict: Verdict::Inconclusive,
        evidence: String::new(),
    };
    let done = |mut gate: GateResult, verdict: Verdict, evidence: String| {
        gate.verdict = verdict;
        gate.evidence = evidence;
        Judged::Gate(Box::new(gate))
    };

    if entry.status == EntryStatus::Rejected {
        let why = entry
            .error
            .as_ref()
            .map_or("no reason recorded".to_string(), |e| {
                format!("{}: {}", e.kind, e.message)
            });
        return done(
            gate,
            Verdict::Fail,
            format!("the board refused the build ({why})"),
        );
    }

    let resolved = match &spec.threshold {
        Threshold::Absolute(t) => Resolved {
            threshold: *t,
            baseline: None,
            context: String::new(),
        },
        Threshold::OfReference(fraction) => {
            if entry.reference {
                return Judged::NotApplicable;
            }
            match of_reference(spec, *fraction, entry, results) {
                Ok(r) => r,
                Err(why) => return done(gate, Verdict::Inconclusive, why),
            }
        }
        Threshold::VsChampion { max_regression } => {
            let champion = match champions.champion(scenario, &entry.model, class) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    return done(
                        gate,
                        Verdict::Pass,
                        format!(
                            "no champion promoted yet for {} on {class}: nothing to regress against",
                            entry.model
                        ),
                    );
                }
                Err(e) => return Judged::Infra(format!("{}: {e}", entry.board)),
            };
            if let Some(h2h) = head_to_head_ratio(spec, entry, &champion) {
                return head_to_head(gate, spec, *max_regression, &champion, h2h);
            }
            match vs_champion(spec, *max_regression, &champion) {
                Ok(mut r) => {
                    r.context.push_str(&other_kernels(entry, &champion));
                    r
                }
                Err(why) => return done(gate, Verdict::Inconclusive, why),
            }
        }
    };
    gate.threshold = Some(resolved.threshold);
    gate.baseline = resolved.baseline;

    let fig = match entry
        .metrics
        .as_ref()
        .ok_or_else(|| "no figures were recorded for this build".to_string())
        .and_then(|m| figure(metric, m))
    {
        Ok(f) => f,
        Err(why) => return done(gate, Verdict::Inconclusive, why),
    };
    gate.measured = Some(fig.value);
    gate.measured_ci = fig.ci;
    let shown = format!(
        "{} {}",
        metric.name(),
        format::metric_with_ci(metric, fig.value, fig.ci.as_ref())
    );
    if let Some(why) = &fig.too_few_samples {
        return done(gate, Verdict::Inconclusive, format!("{why} ({shown})"));
    }
    let verdict = decide(spec.comparison, &fig, resolved.threshold);
    let op = match verdict {
        Verdict::Inconclusive => "straddles",
        Verdict::Pass => spec.comparison.passing_sign(),
        Verdict::Fail => spec.comparison.failing_sign(),
    };
    let evidence = format!(
        "{shown} {op} {}{}",
        format::metric(metric, resolved.threshold),
        resolved.context
    );
    done(gate, verdict, evidence)
}

/// PASS/FAIL when the interval (or, without one, the point) lies wholly on one side.
fn decide(comparison: Comparison, fig: &Figure, threshold: f64) -> Verdict {
    let (lo, hi) = fig.ci.map_or((fig.value, fig.value), |c| (c.lo, c.hi));
    let (pass, fail) = match comparison {
        Comparison::AtMost => (hi <= threshold, lo > threshold),
        Comparison::AtLeast => (lo >= threshold, hi < threshold),
    };
    if pass {
        Verdict::Pass
    } else if fail {
        Verdict::Fail
    } else {
        Verdict::Inconclusive
    }
}

/// A baseline's point value, or why it cannot serve (missing, too few samples).
fn baseline_value(spec: &GateSpec, metrics: Option<&Metrics>, who: &str) -> Result<f64, String> {
    let fig = metrics
        .ok_or_else(|| format!("{who} has no figures"))
        .and_then(|m| figure(spec.metric, m).map_err(|why| format!("{who}: {why}")))?;
    match fig.too_few_samples {
        Some(why) => Err(format!("{who}: {why}")),
        None => Ok(fig.value),
    }
}

fn of_reference(
    spec: &GateSpec,
    fraction: f64,
    entry: &Entry,
    results: &Results,
) -> Result<Resolved, String> {
    let reference = results
        .entries
        .iter()
        .find(|e| e.board == entry.board && e.model == entry.model && e.reference)
        .ok_or_else(|| {
            format!(
                "no reference build of {} ran on {}",
                entry.model, entry.board
            )
        })?;
    let who = format!("the reference {}", reference.variant);
    if reference.status != EntryStatus::Completed {
        return Err(format!(
            "{who} did not complete on {}, so there is nothing to compare with",
            entry.board
        ));
    }
    let value = baseline_value(spec, reference.metrics.as_ref(), &who)?;
    Ok(Resolved {
        threshold: fraction * value,
        baseline: Some(Baseline {
            kind: BaselineKind::Reference,
            variant: reference.variant.clone(),
            run_id: None,
            value,
        }),
        context: format!(
            " ({} of reference {} {})",
            format::percent(fraction),
            reference.variant,
            format::metric(spec.metric, value)
        ),
    })
}

/// The head-to-head ratio a latency gate can judge by: the champion's own build (same SHA-256)
/// ran in this run on this board, interleaved with the candidate. Only the central latency
/// figures (p50, mean) are compared this way; tail percentiles use the stored figures.
fn head_to_head_ratio<'e>(
    spec: &GateSpec,
    entry: &'e Entry,
    champion: &Champion,
) -> Option<&'e ChampionRatio> {
    let central = matches!(spec.metric, Metric::LatencyP50 | Metric::LatencyMean);
    if !central || spec.comparison != Comparison::AtMost {
        return None;
    }
    entry
        .metrics
        .as_ref()?
        .latency_ratio_vs_champions
        .iter()
        .find(|r| r.champion_sha256 == champion.model_sha256)
}

/// Judges the candidate/champion ratio measured in this run against 1 + `max_regression`, with
/// its block-pair interval: PASS when the whole interval is at or below, FAIL when wholly above.
fn head_to_head(
    mut gate: GateResult,
    spec: &GateSpec,
    max_regression: f64,
    champion: &Champion,
    h2h: &ChampionRatio,
) -> Judged {
    let limit = 1.0 + max_regression;
    let r = &h2h.ratio;
    gate.scale = GateScale::Ratio;
    gate.threshold = Some(limit);
    gate.measured = Some(r.ratio);
    gate.measured_ci = r.ci;
    gate.baseline = Some(Baseline {
        kind: BaselineKind::Champion,
        variant: champion.variant.clone(),
        run_id: Some(champion.run_id.clone()),
        value: h2h.champion_p50_us,
    });
    let who = format!(
        "head to head with the champion {} of run {} in this run ({} p50 {})",
        champion.variant,
        champion.run_id,
        h2h.champion_variant,
        format::metric(spec.metric, h2h.champion_p50_us)
    );
    let (verdict, evidence) = match r.ci {
        None => (
            Verdict::Inconclusive,
            format!(
                "too few block pairs for an honest interval: {} < {} ({who})",
                r.pairs, r.min_pairs
            ),
        ),
        Some(ci) => {
            let verdict = if ci.hi <= limit {
                Verdict::Pass
            } else if ci.lo > limit {
                Verdict::Fail
            } else {
                Verdict::Inconclusive
            };
            let op = match verdict {
                Verdict::Pass => Comparison::AtMost.passing_sign(),
                Verdict::Fail => Comparison::AtMost.failing_sign(),
                Verdict::Inconclusive => "straddles",
            };
            (
                verdict,
                format!(
                    "latency ratio {:.3} [{:.3}, {:.3}] over {} block pairs {op} {limit:.3} ({who}, + {})",
                    r.ratio,
                    ci.lo,
                    ci.hi,
                    r.pairs,
                    format::percent(max_regression)
                ),
            )
        }
    };
    gate.verdict = verdict;
    gate.evidence = evidence;
    Judged::Gate(Box::new(gate))
}

/// Run-to-run spread of `metric` for the champion's build on its board class: (max − min) /
/// median over the runs its history holds, with the run count; `None` without history.
fn history_spread(spec: &GateSpec, champion: &Champion) -> Option<(f64, usize)> {
    let values: Vec<f64> = champion
        .history
        .iter()
        .filter_map(|m| figure(spec.metric, m).ok().map(|f| f.value))
        .collect();
    if values.is_empty() {
        return None;
    }
    let spread = gauntlet_measure::run_to_run_spread(&values).unwrap_or(0.0);
    Some((spread, values.len()))
}

fn vs_champion(
    spec: &GateSpec,
    max_regression: f64,
    champion: &Champion,
) -> Result<Resolved, String> {
    let who = format!(
        "the champion {} of run {}",
        champion.variant, champion.run_id
    );
    let value = baseline_value(spec, Some(&champion.metrics), &who)?;
    // Its stored figure came from another run: widen the allowance by how much that very build
    // moved from run to run on this board class, so machine noise alone neither fails nor passes.
    let spread = history_spread(spec, champion);
    let band = spread.map_or(0.0, |(s, _)| s);
    let (threshold, sign) = match spec.comparison {
        Comparison::AtMost => (value * (1.0 + max_regression) * (1.0 + band), '+'),
        Comparison::AtLeast => (value * (1.0 - max_regression) * (1.0 - band).max(0.0), '-'),
    };
    let noise = match spread {
        None => String::new(),
        Some((_, 1)) => {
            "; stored figures, no run-to-run spread known (1 run of this build)".to_string()
        }
        Some((s, runs)) => format!(
            "; stored figures, widened by this build's run-to-run spread {} over {runs} runs",
            format::percent(s)
        ),
    };
    Ok(Resolved {
        threshold,
        baseline: Some(Baseline {
            kind: BaselineKind::Champion,
            variant: champion.variant.clone(),
            run_id: Some(champion.run_id.clone()),
            value,
        }),
        context: format!(
            " ({who}: {} {sign} {}{noise})",
            format::metric(spec.metric, value),
            format::percent(max_regression)
        ),
    })
}

/// A warning for the evidence when the champion's stored figures come from a board whose CPU
/// extensions differ from this one's: the two ran other int8/fp16 kernels (an AVX2 and a VNNI
/// machine of one model name score int8 builds differently), so the comparison is not like for
/// like. Empty when they agree or either is unknown.
fn other_kernels(entry: &Entry, champion: &Champion) -> String {
    let here = entry
        .provenance
        .board_facts
        .as_ref()
        .map_or(&[][..], |f| &f.cpu_features);
    match other_cpu_extensions(&champion.cpu_features, here) {
        Some((only_there, only_here)) => format!(
            "; beware: the champion ran on other CPU extensions (only there: {only_there}; only here: {only_here}), so with other int8/fp16 kernels"
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
