//! How figures read in every format, so the terminal, Markdown and HTML reports agree to the digit.

use gauntlet_measure::ConfidenceInterval;
use gauntlet_results::{Machine, MachineChange, Metric, Metrics, Results, Source, Temperatures};

pub(crate) use gauntlet_results::format::{
    Quantity, bytes, entry_status, joules, micros, outcome, percent, plus_minus, source, value,
    verdict,
};

/// `[17.9, 18.6] 95% CI`: an interval in the unit of the figure `x` it belongs to.
pub(crate) fn interval(q: Quantity, x: f64, ci: &ConfidenceInterval) -> String {
    format!(
        "{} {:.0}% CI",
        gauntlet_results::format::bounds(q, x, ci),
        ci.confidence * 100.0
    )
}

/// How many windows were replayed, saying so when they are a stratified subset.
pub(crate) fn dataset_windows(d: &gauntlet_results::DatasetInfo) -> String {
    match d.subset_of {
        Some(all) => format!(
            "a stratified subset of {} of {all} windows; accuracy intervals are Wilson 95 %",
            d.windows
        ),
        None => format!("{} windows", d.windows),
    }
}

/// What each source means, for the legend every report carries when any figure is not measured.
pub(crate) const SOURCE_LEGEND: [(Source, &str); 2] = [
    (
        Source::Emulated,
        "an emulator executed the model, so its times are not silicon's: QEMU instruction-count ticks \
         (-icount) on an emulated MCU (no pipeline, wait states or FPU latency), the emulator's own \
         time on the host for an emulated Linux board",
    ),
    (
        Source::Simulated,
        "a model of the hardware produced the figure (e.g. the simulated INA219 power sensor), not a \
         physical sensor",
    ),
];

/// Where a gate metric's figure came from, read from the entry's own labels.
pub(crate) fn metric_source(m: &Metrics, metric: Metric) -> Option<Source> {
    match metric {
        Metric::EnergyPerInference => m.energy.as_ref().map(|e| e.source),
        Metric::AgreementLabel => m.agreement.as_ref().map(|a| a.source),
        Metric::PeakRam => m.sources.get("peak_rss_kib").copied(),
        Metric::Flash => m.sources.get("flash_bytes").copied(),
        x if x.is_latency() => m.latency_device_us.as_ref().map(|l| l.source),
        x => m.sources.get(x.name()).copied(),
    }
}

/// The board class a board was judged in: as the gates recorded it, else the board's kind.
pub(crate) fn board_class<'r>(results: &'r Results, board: &'r str) -> &'r str {
    results
        .gates
        .iter()
        .find(|g| g.board == board)
        .map(|g| g.board_class.as_str())
        .or_else(|| {
            results
                .boards
                .iter()
                .find(|b| b.board == board)
                .map(|b| b.kind.as_str())
        })
        .unwrap_or(board)
}

/// The command a release manager runs to promote a build, quoted for a POSIX shell; `$USER` is left
/// for the shell to expand so the ledger records who ran it.
pub(crate) fn promote_command(run_id: &str, model: &str, variant: &str, reason: &str) -> String {
    format!(
        "gauntlet promote {} --model {} --variant {} --by \"$USER\" --reason {}",
        shell_quote(run_id),
        shell_quote(model),
        shell_quote(variant),
        shell_quote(reason)
    )
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@%+=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Escapes text for XML and SVG attributes and content, replacing characters XML 1.0 forbids.
pub(crate) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// One line on a board whose machine state changed during the run: each change and the block it
/// was first seen in; `None` when the state held (or was not recorded).
pub(crate) fn machine_changes(m: &Machine) -> Option<String> {
    let changes: Vec<String> = m.changes.iter().map(MachineChange::describe).collect();
    (!changes.is_empty()).then(|| changes.join("; "))
}

/// One line on a board's temperatures during the run: each zone's range, or that the board exposes
/// none, and why sampling stopped early if it did.
pub(crate) fn temperatures(t: &Temperatures) -> String {
    let every = format!(
        "{} sample{}, every {}",
        t.samples,
        if t.samples == 1 { "" } else { "s" },
        seconds(t.interval_s)
    );
    let mut line = if t.exposed {
        let zones: Vec<String> = t
            .zones
            .iter()
            .map(|z| format!("{} {:.1}–{:.1} °C", z.zone, z.min_c, z.max_c))
            .collect();
        format!("{} ({every})", zones.join(", "))
    } else {
        format!("not exposed by the board: no readable thermal zone ({every})")
    };
    if let Some(e) = &t.error {
        line.push_str(&format!("; sampling stopped: {e}"));
    }
    line
}

fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_forbidden_characters() {
        assert_eq!(
            xml("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
    }

    #[test]
    fn temperatures_say_when_the_board_exposes_none_and_why_sampling_stopped() {
        let t = Temperatures {
            interval_s: 0.5,
            samples: 1,
            exposed: false,
            zones: vec![],
            error: Some("keep the SSH connection to board `pi`: dropped".into()),
        };
        assert_eq!(
            temperatures(&t),
            "not exposed by the board: no readable thermal zone (1 sample, every 0.5 s); \
             sampling stopped: keep the SSH connection to board `pi`: dropped"
        );
    }

    #[test]
    fn promote_command_quotes_what_a_shell_would_misread() {
        assert_eq!(
            promote_command("r1", "kws", "int8", "passed 3 gates"),
            "gauntlet promote r1 --model kws --variant int8 --by \"$USER\" --reason 'passed 3 gates'"
        );
        assert_eq!(
            promote_command("r1", "it's $(rm)", "v", "x"),
            "gauntlet promote r1 --model 'it'\\''s $(rm)' --variant v --by \"$USER\" --reason x"
        );
    }
}
