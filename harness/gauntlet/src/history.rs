//! `gauntlet runs`, `compare`, `promote` and `champion`: read the run store and print tables.

use std::io::Write;

use anyhow::{Context, Result, bail};
use gauntlet_measure::{ConfidenceInterval, RatioOptions, paired_ratio};
use gauntlet_results::format::{self, Quantity};
use gauntlet_results::{Entry, Latency, Metric, Metrics, Outcome, Results, other_cpu_extensions};
use gauntlet_store::{EntryKey, PromoteRequest, RunFilter, RunStatus, Store};

/// Left-aligned columns, two spaces apart, sized to their widest cell.
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// A run's outcome; `-` while it has none (running, or killed before it finished).
fn outcome_text(o: Option<Outcome>) -> &'static str {
    o.map_or("-", format::outcome)
}

/// `gauntlet runs list`: every run, oldest first; killed runs read `incomplete`.
/// `--board/--scenario/--since/--runner` narrow the list.
pub fn runs_list(store: &Store, filter: &RunFilter, out: &mut dyn Write) -> Result<()> {
    let runs = store.find_runs(filter)?;
    if runs.is_empty() {
        writeln!(out, "no runs in {}", store.path().display())?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.scenario_name.clone(),
                r.rig_name.clone(),
                r.started_at.clone(),
                r.status.to_string(),
                outcome_text(r.outcome).into(),
            ]
        })
        .collect();
    table(
        out,
        &["RUN", "SCENARIO", "RIG", "STARTED", "STATUS", "OUTCOME"],
        &rows,
    )
}

/// A build's accuracy with its interval, `-` when it has none.
fn accuracy_cell(m: Option<&Metrics>) -> String {
    m.and_then(|m| m.accuracy).map_or_else(
        || "-".into(),
        |a| {
            format::value_with_ci(
                Quantity::Fraction,
                a,
                m.and_then(|m| m.accuracy_ci.as_ref()),
            )
        },
    )
}

/// `gauntlet runs show ID`: the run, its build verdicts, gate evidence and figures.
pub fn runs_show(store: &Store, id: &str, out: &mut dyn Write) -> Result<()> {
    let record = store.run(id)?;
    let s = &record.summary;
    writeln!(out, "run       {}", s.id)?;
    writeln!(
        out,
        "scenario  {} ({}, sha256 {})",
        s.scenario_name, s.scenario_path, s.scenario_sha256
    )?;
    writeln!(out, "rig       {} (sha256 {})", s.rig_name, s.rig_sha256)?;
    writeln!(
        out,
        "time      {} → {}",
        s.started_at,
        s.finished_at.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "status    {}", s.status)?;
    writeln!(out, "outcome   {}", outcome_text(s.outcome))?;
    let Some(results) = &record.results else {
        let why = match s.status {
            RunStatus::Running => "it is still running",
            _ => "it did not finish",
        };
        writeln!(out, "\nno results: {why}")?;
        let counts = store.sample_counts(id)?;
        if !counts.is_empty() {
            writeln!(
                out,
                "\nraw samples kept (device latencies, streamed as measured)"
            )?;
            let rows: Vec<Vec<String>> = counts
                .iter()
                .map(|(k, n)| {
                    vec![
                        k.board.clone(),
                        k.model.clone(),
                        k.variant.clone(),
                        n.to_string(),
                    ]
                })
                .collect();
            table(out, &["board", "model", "variant", "samples"], &rows)?;
        }
        return Ok(());
    };

    writeln!(out, "\nverdicts")?;
    let rows: Vec<Vec<String>> = results
        .verdicts
        .iter()
        .map(|v| {
            vec![
                v.model.clone(),
                v.variant.clone(),
                v.board_class.clone(),
                format::verdict(v.verdict).into(),
                format!(
                    "{}/{}/{}",
                    v.gates_passed, v.gates_failed, v.gates_inconclusive
                ),
                v.infra_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "MODEL",
            "VARIANT",
            "CLASS",
            "VERDICT",
            "PASS/FAIL/INC",
            "INFRA ERROR",
        ],
        &rows,
    )?;

    if !results.gates.is_empty() {
        writeln!(out, "\ngates")?;
        let rows: Vec<Vec<String>> = results
            .gates
            .iter()
            .map(|g| {
                vec![
                    format::verdict(Some(g.verdict)).into(),
                    g.gate.clone(),
                    g.board.clone(),
                    format!("{}:{}", g.model, g.variant),
                    g.evidence.clone(),
                ]
            })
            .collect();
        table(
            out,
            &["VERDICT", "GATE", "BOARD", "BUILD", "EVIDENCE"],
            &rows,
        )?;
    }

    writeln!(out, "\nfigures")?;
    let rows: Vec<Vec<String>> = results
        .entries
        .iter()
        .map(|e| {
            let m = e.metrics.as_ref();
            let lat = m.and_then(|m| m.latency_device_us.as_ref());
            let ci = lat.and_then(|l| l.honest_intervals().0);
            vec![
                e.board.clone(),
                format!("{}:{}", e.model, e.variant),
                format::entry_status(e.status).into(),
                accuracy_cell(m),
                lat.map_or("-".into(), |l| {
                    format::value_with_ci(Quantity::Micros, l.p50, ci.map(|c| &c.p50))
                }),
                lat.map_or("-".into(), |l| {
                    format::value_with_ci(Quantity::Micros, l.p99, ci.map(|c| &c.p99))
                }),
                lat.map_or("-".into(), |l| l.n.to_string()),
            ]
        })
        .collect();
    table(
        out,
        &["BOARD", "BUILD", "STATUS", "ACCURACY", "P50", "P99", "N"],
        &rows,
    )
}

fn finished(store: &Store, id: &str) -> Result<Results> {
    let record = store.run(id)?;
    match record.results {
        Some(r) => Ok(r),
        None => bail!(
            "compare run `{id}`: it is {} and has no results",
            record.summary.status
        ),
    }
}

fn latency_cell(
    l: Option<&Latency>,
    pick: fn(&Latency) -> (f64, Option<ConfidenceInterval>),
) -> String {
    l.map_or("-".into(), |l| {
        let (v, ci) = pick(l);
        format::value_with_ci(Quantity::Micros, v, ci.as_ref())
    })
}

fn p50(l: &Latency) -> (f64, Option<ConfidenceInterval>) {
    (l.p50, l.honest_intervals().0.map(|c| c.p50))
}

fn p99(l: &Latency) -> (f64, Option<ConfidenceInterval>) {
    (l.p99, l.honest_intervals().0.map(|c| c.p99))
}

fn relative_change(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a != 0.0 => format::signed_percent(b / a - 1.0),
        _ => "-".into(),
    }
}

/// The board class `entry` was judged in: from the run's verdicts, else the board's kind.
fn class_of(results: &Results, entry: &Entry) -> String {
    results
        .verdicts
        .iter()
        .find(|v| v.model == entry.model && v.variant == entry.variant)
        .map(|v| v.board_class.clone())
        .or_else(|| {
            results
                .boards
                .iter()
                .find(|b| b.board == entry.board)
                .map(|b| b.kind.clone())
        })
        .unwrap_or_else(|| entry.board.clone())
}

/// How far the same build's device p50 moved between runs on the same board class: (max − min) /
/// median over its stored runs other than `excluded`, with their count; `None` with fewer than 2.
fn run_to_run_spread(
    store: &Store,
    results: &Results,
    entry: &Entry,
    excluded: &[&str],
) -> Result<Option<(f64, usize)>> {
    let history = store.build_history(
        &results.scenario.name,
        &entry.provenance.model_sha256,
        &class_of(results, entry),
    )?;
    let p50s: Vec<f64> = history
        .iter()
        .filter(|(run, _)| !excluded.contains(&run.as_str()))
        .filter_map(|(_, m)| m.latency_device_us.as_ref().map(|l| l.p50))
        .collect();
    if p50s.len() < 2 {
        return Ok(None);
    }
    Ok(gauntlet_measure::run_to_run_spread(&p50s).map(|s| (s, p50s.len())))
}

/// `gauntlet compare RUN_A RUN_B`: per board and build, B's figures against A's, with intervals,
/// and the ratio of median device latencies from the raw samples (bootstrap interval). A change is
/// significant only beyond the noise band: the same build's run-to-run spread on the same board
/// class from other stored runs (at least 1 %), printed beside it.
/// The CPU extensions of the board `e` ran on, as recorded with it (empty when unknown).
fn cpu_features(e: &Entry) -> &[String] {
    e.provenance
        .board_facts
        .as_ref()
        .map_or(&[], |f| f.cpu_features.as_slice())
}

pub fn compare(store: &Store, run_a: &str, run_b: &str, out: &mut dyn Write) -> Result<()> {
    let (a, b) = (finished(store, run_a)?, finished(store, run_b)?);
    if a.scenario.name != b.scenario.name {
        writeln!(
            out,
            "note: different scenarios (`{}` vs `{}`)",
            a.scenario.name, b.scenario.name
        )?;
    }
    if a.dataset.sha256 != b.dataset.sha256 {
        writeln!(
            out,
            "note: the datasets differ, so accuracies are not paired"
        )?;
    }
    let same =
        |x: &Entry, y: &Entry| x.board == y.board && x.model == y.model && x.variant == y.variant;
    for eb in &b.entries {
        let Some(ea) = a.entries.iter().find(|ea| same(ea, eb)) else {
            writeln!(
                out,
                "\n{} {}:{}  only in {run_b}",
                eb.board, eb.model, eb.variant
            )?;
            continue;
        };
        writeln!(out, "\n{} {}:{}", eb.board, eb.model, eb.variant)?;
        if let Some((only_a, only_b)) = other_cpu_extensions(cpu_features(ea), cpu_features(eb)) {
            writeln!(
                out,
                "  note: the board ran on other CPU extensions (only in {run_a}: {only_a}; only in {run_b}: {only_b}), so with other int8/fp16 kernels: not like for like"
            )?;
        }
        let (ma, mb) = (ea.metrics.as_ref(), eb.metrics.as_ref());
        let acc_change = match (ma.and_then(|m| m.accuracy), mb.and_then(|m| m.accuracy)) {
            (Some(x), Some(y)) => format::difference(Quantity::Fraction, y - x, None),
            _ => "-".into(),
        };
        let (la, lb) = (
            ma.and_then(|m| m.latency_device_us.as_ref()),
            mb.and_then(|m| m.latency_device_us.as_ref()),
        );
        let rows = vec![
            vec![
                "accuracy".into(),
                accuracy_cell(ma),
                accuracy_cell(mb),
                acc_change,
            ],
            vec![
                "latency.p50".into(),
                latency_cell(la, p50),
                latency_cell(lb, p50),
                relative_change(la.map(|l| l.p50), lb.map(|l| l.p50)),
            ],
            vec![
                "latency.p99".into(),
                latency_cell(la, p99),
                latency_cell(lb, p99),
                relative_change(la.map(|l| l.p99), lb.map(|l| l.p99)),
            ],
        ];
        table(out, &["  METRIC", run_a, run_b, "CHANGE"], &indent(rows))?;
        let key = EntryKey::from(eb);
        let (sa, sb) = (store.samples(run_a, &key)?, store.samples(run_b, &key)?);
        if sa.is_empty() || sb.is_empty() {
            writeln!(out, "  median ratio: no raw samples stored for both runs")?;
            continue;
        }
        let spread = run_to_run_spread(store, &b, eb, &[run_a, run_b])?;
        let options = RatioOptions {
            noise: spread.map_or(RatioOptions::default().noise, |(s, _)| {
                s.clamp(RatioOptions::default().noise, 0.99)
            }),
            ..RatioOptions::default()
        };
        match spread {
            Some((s, runs)) => writeln!(
                out,
                "  run-to-run spread of this build on {}: {} over {runs} other runs",
                class_of(&b, eb),
                format::percent(s)
            )?,
            None => writeln!(
                out,
                "  run-to-run spread of this build on {}: unknown (fewer than 2 other runs)",
                class_of(&b, eb)
            )?,
        }
        let r = paired_ratio(&sa, &sb, &options).with_context(|| {
            format!(
                "compare device latencies of {} {}:{}",
                eb.board, eb.model, eb.variant
            )
        })?;
        writeln!(
            out,
            "  median ratio {run_b}/{run_a}: {} [{}, {}] — {} (noise band ±{}, n = {} / {})",
            format::ratio(r.ratio),
            format::ratio(r.ci.lo),
            format::ratio(r.ci.hi),
            if r.significant {
                if r.ratio > 1.0 {
                    "significantly slower"
                } else {
                    "significantly faster"
                }
            } else {
                "no significant difference"
            },
            format::percent(r.noise),
            r.n_a,
            r.n_b
        )?;
    }
    for ea in &a.entries {
        if !b.entries.iter().any(|eb| same(ea, eb)) {
            writeln!(
                out,
                "\n{} {}:{}  only in {run_a}",
                ea.board, ea.model, ea.variant
            )?;
        }
    }
    Ok(())
}

/// `gauntlet trend SCENARIO --model M --variant V`: one build's figures run by run on its board
/// class, oldest first. The history follows the file's SHA-256 (from the newest run that has the
/// build): a rebuilt model starts a trend of its own. A step from one run to the next is called a
/// change only beyond the build's run-to-run spread over the *other* runs (at least 1 %), so two
/// runs cannot widen the band that judges them.
/// `gauntlet trend SCENARIO --metric M [--board-class C] [--last N]`: one figure of every build
/// (a row per board class, model and variant) in each of the scenario's last `last` complete runs
/// (a column each, oldest first); several boards of a class give their median.
pub fn metric_trend(
    store: &Store,
    scenario: &str,
    metric: &str,
    board_class: Option<&str>,
    last: usize,
    out: &mut dyn Write,
) -> Result<()> {
    if !gauntlet_store::TREND_METRICS.contains(&metric) {
        bail!(
            "read the trend of `{scenario}`: unknown metric `{metric}` (one of {})",
            gauntlet_store::TREND_METRICS.join(", ")
        );
    }
    let quantity = Metric::from_name(metric).map_or(Quantity::Plain, Quantity::of);
    let points = store.trend(scenario, metric, board_class, last)?;
    if points.is_empty() {
        writeln!(
            out,
            "no complete runs of `{scenario}`{} in {}",
            board_class.map_or(String::new(), |c| format!(" on `{c}`")),
            store.path().display()
        )?;
        return Ok(());
    }
    let mut runs: Vec<&str> = Vec::new();
    let mut builds: Vec<(&str, &str, &str)> = Vec::new();
    for p in &points {
        if !runs.contains(&p.run_id.as_str()) {
            runs.push(&p.run_id);
        }
        let build = (p.board_class.as_str(), p.model.as_str(), p.variant.as_str());
        if !builds.contains(&build) {
            builds.push(build);
        }
    }
    let rows: Vec<Vec<String>> = builds
        .iter()
        .map(|&(class, model, variant)| {
            let mut row = vec![class.to_string(), model.to_string(), variant.to_string()];
            row.extend(runs.iter().map(|&run| {
                let mut v: Vec<f64> = points
                    .iter()
                    .filter(|p| {
                        p.run_id == run
                            && (p.board_class.as_str(), p.model.as_str(), p.variant.as_str())
                                == (class, model, variant)
                    })
                    .filter_map(|p| p.value)
                    .collect();
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2)
                    .map_or_else(|| "-".to_string(), |x| format::value(quantity, *x))
            }));
            row
        })
        .collect();
    writeln!(
        out,
        "{metric} of `{scenario}` over its last {} complete runs, oldest first",
        runs.len()
    )?;
    let mut header = vec!["CLASS", "MODEL", "VARIANT"];
    header.extend(runs.iter().copied());
    table(out, &header, &rows)
}

pub fn trend(
    store: &Store,
    scenario: &str,
    model: &str,
    variant: &str,
    board_class: Option<&str>,
    out: &mut dyn Write,
) -> Result<()> {
    let newest = store
        .list_runs()?
        .into_iter()
        .rev()
        .filter(|r| r.scenario_name == scenario)
        .find_map(|r| {
            let results = store.run(&r.id).ok()?.results?;
            let entry = results.entries.iter().find(|e| {
                e.model == model
                    && e.variant == variant
                    && board_class.is_none_or(|c| class_of(&results, e) == c)
            })?;
            Some((
                entry.provenance.model_sha256.clone(),
                class_of(&results, entry),
            ))
        });
    let Some((sha256, class)) = newest else {
        bail!(
            "find {model}:{variant}{} in any finished run of scenario `{scenario}`",
            board_class.map_or(String::new(), |c| format!(" on board class `{c}`"))
        );
    };
    let history = store.build_history(scenario, &sha256, &class)?;
    let p50s: Vec<Option<f64>> = history
        .iter()
        .map(|(_, m)| m.latency_device_us.as_ref().map(|l| l.p50))
        .collect();
    writeln!(
        out,
        "{model}:{variant} (sha256 {}) on {class} in `{scenario}`: {} completed runs",
        &sha256[..sha256.len().min(12)],
        history.len()
    )?;
    let mut rows = Vec::new();
    for (i, (run, m)) in history.iter().enumerate() {
        let latency = m.latency_device_us.as_ref();
        let (change, band, reading) = match (i.checked_sub(1).and_then(|j| p50s[j]), p50s[i]) {
            (Some(before), Some(now)) if before > 0.0 => {
                let change = now / before - 1.0;
                let others: Vec<f64> = p50s
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != i && k != i - 1)
                    .filter_map(|(_, p)| *p)
                    .collect();
                let spread = (others.len() >= 2)
                    .then(|| gauntlet_measure::run_to_run_spread(&others))
                    .flatten()
                    .map(|s| s.max(RatioOptions::default().noise));
                let reading = match spread {
                    None => format!(
                        "no noise band yet ({} other run{})",
                        others.len(),
                        if others.len() == 1 { "" } else { "s" }
                    ),
                    Some(band) if change.abs() <= band => "within noise".into(),
                    Some(_) if change > 0.0 => "slower".into(),
                    Some(_) => "faster".into(),
                };
                (
                    format::signed_percent(change),
                    spread.map_or("-".into(), |b| format!("±{}", format::percent(b))),
                    reading,
                )
            }
            _ => ("-".into(), "-".into(), "first run".into()),
        };
        rows.push(vec![
            run.clone(),
            latency_cell(latency, p50),
            latency_cell(latency, p99),
            accuracy_cell(Some(m)),
            change,
            band,
            reading,
        ]);
    }
    table(
        out,
        &[
            "RUN",
            "P50",
            "P99",
            "ACCURACY",
            "P50 CHANGE",
            "NOISE BAND",
            "READING",
        ],
        &rows,
    )?;
    let all: Vec<f64> = p50s.iter().flatten().copied().collect();
    if let Some(spread) = gauntlet_measure::run_to_run_spread(&all).filter(|_| all.len() >= 2) {
        writeln!(
            out,
            "run-to-run spread of the p50 over all {} runs: {} ((max − min) / median)",
            all.len(),
            format::percent(spread)
        )?;
    }
    Ok(())
}

fn indent(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    for row in &mut rows {
        row[0] = format!("  {}", row[0]);
    }
    rows
}

/// `gauntlet promote RUN --model M --variant V --by WHO --reason TEXT [--override REASON]`.
pub fn promote(store: &mut Store, req: &PromoteRequest<'_>, out: &mut dyn Write) -> Result<()> {
    let promoted = store.promote(req)?;
    for p in &promoted {
        writeln!(
            out,
            "promoted {}:{} from run {} as champion of `{}` on {} (verdict {}){}",
            p.model,
            p.variant,
            p.run_id,
            p.scenario,
            p.board_class,
            format::verdict(p.verdict),
            p.override_reason
                .as_deref()
                .map_or(String::new(), |r| format!(", OVERRIDE: {r}"))
        )?;
        writeln!(out, "  by {} at {}: {}", p.by, p.promoted_at, p.reason)?;
        writeln!(
            out,
            "  sha256 model {}  dataset {}  scenario {}  rig {}  report {}",
            p.model_sha256, p.dataset_sha256, p.scenario_sha256, p.rig_sha256, p.report_sha256
        )?;
    }
    Ok(())
}

/// `gauntlet champion SCENARIO`: the current champion per model and board class.
pub fn champion(store: &Store, scenario: &str, out: &mut dyn Write) -> Result<()> {
    let champions = store.champions(scenario)?;
    if champions.is_empty() {
        writeln!(out, "no champion promoted yet for `{scenario}`")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = champions
        .iter()
        .map(|p| {
            vec![
                p.model.clone(),
                p.board_class.clone(),
                p.variant.clone(),
                p.run_id.clone(),
                p.promoted_at.clone(),
                p.by.clone(),
                match &p.override_reason {
                    Some(o) => format!("{} (override: {o})", p.reason),
                    None => p.reason.clone(),
                },
            ]
        })
        .collect();
    table(
        out,
        &[
            "MODEL", "CLASS", "VARIANT", "RUN", "PROMOTED", "BY", "REASON",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gauntlet_gate::fixtures::{SCENARIO, board, entry, latency_of, metrics, on_cpu, results};
    use gauntlet_gate::{NoChampions, Rules, evaluate_rules};
    use gauntlet_spec::{Board, BoardKind, Comparison, GateSpec, Metric, Threshold};
    use gauntlet_store::NewRun;

    use super::*;

    fn boards() -> Vec<Board> {
        vec![board("pc", BoardKind::Local, None)]
    }

    /// Device times around `centre` µs, deterministic.
    fn times(centre: f64) -> Vec<f64> {
        (0..400).map(|i| centre + (i % 20) as f64 - 10.0).collect()
    }

    fn figures(accuracy: f64, samples: &[f64]) -> Metrics {
        Metrics {
            accuracy: Some(accuracy),
            latency_device_us: Some(latency_of(samples)),
            ..metrics()
        }
    }

    /// Runs fp32 (accuracy 0.95, ~`fp32_us` µs) and int8 (accuracy 0.85, ~`int8_us` µs), judged by
    /// `accuracy >= 0.9`, storing their raw samples.
    fn stored_run(store: &mut Store, id: &str, fp32_us: f64, int8_us: f64) {
        stored_run_on(store, id, fp32_us, int8_us, &[]);
    }

    /// [`stored_run`] on a board whose CPU reported `cpu_features`.
    fn stored_run_on(
        store: &mut Store,
        id: &str,
        fp32_us: f64,
        int8_us: f64,
        cpu_features: &[&str],
    ) {
        let run = store
            .begin_run(&NewRun {
                id: id.into(),
                scenario_name: SCENARIO.into(),
                scenario_path: "/scenarios/demo.toml".into(),
                scenario_sha256: "sha-scenario".into(),
                rig_name: "local".into(),
                rig_sha256: "sha-rig".into(),
                started_at: format!("2026-11-26T00:0{}:00Z", store.list_runs().unwrap().len()),
            })
            .unwrap();
        let mut entries = Vec::new();
        for (variant, acc, centre) in [("fp32", 0.95, fp32_us), ("int8", 0.85, int8_us)] {
            let samples = times(centre);
            let mut e = entry("pc", variant, variant == "fp32", figures(acc, &samples));
            if !cpu_features.is_empty() {
                e = on_cpu(e, cpu_features);
            }
            store
                .record_samples(&run, &EntryKey::from(&e), &samples)
                .unwrap();
            entries.push(e);
        }
        let mut r = results(id, entries);
        let gates = [GateSpec {
            metric: Metric::Accuracy,
            comparison: Comparison::AtLeast,
            threshold: Threshold::Absolute(0.9),
            board_selector: BTreeMap::new(),
            variants: Vec::new(),
        }];
        let rules = Rules {
            scenario: SCENARIO,
            gates: &gates,
            inconclusive_fails: true,
        };
        let e = evaluate_rules(rules, &boards(), &r, &NoChampions);
        (r.gates, r.verdicts, r.outcome) = (e.gates, e.verdicts, e.outcome);
        store.finish_run(&run, &r, &boards()).unwrap();
    }

    fn text(f: impl FnOnce(&mut dyn Write) -> Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn runs_list_shows_status_and_outcome() {
        let (_dir, mut store) = store();
        assert!(text(|o| runs_list(&store, &RunFilter::default(), o)).starts_with("no runs in "));
        stored_run(&mut store, "r1", 100.0, 100.0);
        let abandoned = store
            .begin_run(&NewRun {
                id: "r2".into(),
                scenario_name: SCENARIO.into(),
                scenario_path: "p".into(),
                scenario_sha256: "s".into(),
                rig_name: "local".into(),
                rig_sha256: "r".into(),
                started_at: "2026-11-26T01:00:00Z".into(),
            })
            .unwrap();
        store.abandon_run(abandoned).unwrap();
        let out = text(|o| runs_list(&store, &RunFilter::default(), o));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("RUN"));
        assert!(
            lines[1].starts_with("r1") && lines[1].ends_with("GATE FAILED"),
            "{out}"
        );
        assert!(lines[1].contains(" complete "), "{out}");
        assert!(
            lines[2].starts_with("r2") && lines[2].ends_with("incomplete  -"),
            "{out}"
        );
    }

    #[test]
    fn runs_show_prints_verdicts_and_gate_evidence() {
        let (_dir, mut store) = store();
        stored_run(&mut store, "r1", 100.0, 100.0);
        let out = text(|o| runs_show(&store, "r1", o));
        assert!(out.contains("outcome   GATE FAILED"), "{out}");
        assert!(
            out.contains("FAIL     accuracy >= 90%  pc     cnn:int8  accuracy 85% < 90%"),
            "{out}"
        );
        assert!(out.contains("cnn    int8     local  FAIL"), "{out}");
        assert!(runs_show(&store, "nope", &mut Vec::new()).is_err());
    }

    #[test]
    fn compare_reports_deltas_and_a_significant_slowdown() {
        let (_dir, mut store) = store();
        stored_run(&mut store, "a", 100.0, 200.0);
        stored_run(&mut store, "b", 100.0, 240.0);
        let out = text(|o| compare(&store, "a", "b", o));
        let int8 = &out[out.find("pc cnn:int8").expect("int8 section")..];
        assert!(int8.contains("median ratio b/a: 1.20"), "{out}");
        assert!(int8.contains("significantly slower"), "{out}");
        let fp32 = &out[out.find("pc cnn:fp32").unwrap()..out.find("pc cnn:int8").unwrap()];
        assert!(fp32.contains("no significant difference"), "{out}");
        assert!(fp32.contains("+0 pp"), "{out}");
    }

    #[test]
    fn compare_notes_a_board_that_ran_on_other_cpu_extensions() {
        let (_dir, mut store) = store();
        stored_run_on(&mut store, "a", 100.0, 200.0, &["avx2", "fma"]);
        stored_run_on(
            &mut store,
            "b",
            100.0,
            200.0,
            &["avx2", "avx512_vnni", "fma"],
        );
        stored_run_on(&mut store, "c", 100.0, 200.0, &["fma", "avx2"]);
        let out = text(|o| compare(&store, "a", "b", o));
        let int8 = &out[out.find("pc cnn:int8").expect("int8 section")..];
        assert!(
            int8.contains(
                "note: the board ran on other CPU extensions (only in a: none; only in b: avx512_vnni)"
            ),
            "{out}"
        );
        let same = text(|o| compare(&store, "a", "c", o));
        assert!(!same.contains("CPU extensions"), "{same}");
    }

    #[test]
    fn compare_calls_a_change_within_the_builds_run_to_run_spread_noise() {
        let (_dir, mut store) = store();
        // The same int8 build took 200 and 250 µs in two earlier runs: a 22 % spread (50 / 224.5).
        stored_run(&mut store, "r1", 100.0, 200.0);
        stored_run(&mut store, "r2", 100.0, 250.0);
        stored_run(&mut store, "a", 100.0, 200.0);
        stored_run(&mut store, "b", 100.0, 240.0);
        let out = text(|o| compare(&store, "a", "b", o));
        let int8 = &out[out.find("pc cnn:int8").expect("int8 section")..];
        assert!(
            int8.contains("run-to-run spread of this build on local: 22.27% over 2 other runs"),
            "{out}"
        );
        assert!(int8.contains("median ratio b/a: 1.20"), "{out}");
        assert!(int8.contains("no significant difference"), "{out}");
        assert!(int8.contains("noise band ±22.27%"), "{out}");
    }

    #[test]
    fn trend_calls_a_step_a_change_only_beyond_the_other_runs_spread() {
        let (_dir, mut store) = store();
        for (id, int8_us) in [("r1", 200.0), ("r2", 204.0), ("r3", 202.0), ("r4", 260.0)] {
            stored_run(&mut store, id, 100.0, int8_us);
        }
        let out = text(|o| trend(&store, SCENARIO, "cnn", "int8", None, o));
        let line = |run: &str| {
            out.lines()
                .find(|l| l.starts_with(run))
                .unwrap_or_else(|| panic!("{run}:\n{out}"))
                .to_string()
        };
        assert!(out.starts_with("cnn:int8 (sha256 "), "{out}");
        assert!(
            out.contains("on local in `demo`: 4 completed runs"),
            "{out}"
        );
        assert!(line("r1").ends_with("first run"), "{out}");
        // Each step is judged by the spread of the two other runs: r2's and r3's small steps by
        // a band that r4 widens to 25 %; r4's 29 % step by r1 and r2, 2 % apart.
        assert!(line("r2").ends_with("within noise"), "{out}");
        assert!(line("r3").ends_with("within noise"), "{out}");
        assert!(line("r4").ends_with("slower"), "{out}");
        assert!(line("r4").contains("+28."), "{out}");
        assert!(out.contains("over all 4 runs"), "{out}");
        let out = text(|o| metric_trend(&store, SCENARIO, "latency.p50", None, 3, o));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0], "latency.p50 of `demo` over its last 3 complete runs, oldest first",
            "{out}"
        );
        let cells = |i: usize| lines[i].split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            cells(1),
            ["CLASS", "MODEL", "VARIANT", "r2", "r3", "r4"],
            "{out}"
        );
        assert_eq!(
            cells(3),
            [
                "local", "cnn", "int8", "203.5", "µs", "201.5", "µs", "259.5", "µs"
            ],
            "{out}"
        );
        let unknown = metric_trend(&store, SCENARIO, "latency.p42", None, 3, &mut Vec::new());
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown metric `latency.p42`"),
        );
        let missing = trend(&store, SCENARIO, "cnn", "fp16", None, &mut Vec::new()).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("find cnn:fp16 in any finished run of scenario `demo`"),
            "{missing}"
        );
    }

    #[test]
    fn promote_refuses_a_failed_build_and_champion_shows_the_promoted_one() {
        let (_dir, mut store) = store();
        stored_run(&mut store, "r1", 100.0, 100.0);
        assert!(text(|o| champion(&store, SCENARIO, o)).starts_with("no champion"));
        let req = |variant, override_reason| PromoteRequest {
            run_id: "r1",
            model: "cnn",
            variant,
            board_class: None,
            by: "ana",
            reason: "release",
            override_reason,
        };
        let err = promote(&mut store, &req("int8", None), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("its verdict is fail"), "{err}");
        let out = text(|o| promote(&mut store, &req("fp32", None), o));
        assert!(
            out.starts_with(
                "promoted cnn:fp32 from run r1 as champion of `demo` on local (verdict PASS)"
            ),
            "{out}"
        );
        assert!(
            out.contains("sha256 model sha-model-fp32  dataset sha-data"),
            "{out}"
        );
        let out = text(|o| champion(&store, SCENARIO, o));
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .starts_with("cnn    local  fp32     r1"),
            "{out}"
        );
    }
}
