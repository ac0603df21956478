//! How every figure and verdict of a run reads for people: one formatter for the terminal,
//! Markdown, HTML and JUnit reports, the gates' evidence and the history commands, so that they
//! agree to the digit.
//!
//! A figure is written with four significant digits (trailing zeros dropped) in the unit its own
//! magnitude makes readable: `1500` µs is `1.5 ms` everywhere. An interval is written in the unit
//! of the figure it belongs to, so its bounds compare with the figure at a glance.

use gauntlet_measure::ConfidenceInterval;

use crate::{EntryStatus, Metric, Outcome, Source, Verdict};

/// What kind of number a figure is, in the base unit `results.json` stores it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// 0–1, written as a percentage.
    Fraction,
    Micros,
    Seconds,
    Joules,
    Bytes,
    PerHour,
    /// In the target's or the score's own unit (RMSE, R², Spearman's ρ).
    Plain,
    /// One figure over another of the same unit: `1.02×`.
    Ratio,
}

impl Quantity {
    pub fn of(metric: Metric) -> Quantity {
        use Metric::*;
        match metric {
            // Shares of windows, segments or decisions, and relative changes.
            Accuracy | MacroF1 | AgreementLabel | F1AtThreshold | PrecisionAtThreshold
            | RecallAtThreshold | EventsDetected | Mape | AgreementDecisions
            | AgreementRmseChange => Quantity::Fraction,
            LatencyP50 | LatencyP90 | LatencyP99 | LatencyMean => Quantity::Micros,
            EnergyPerInference => Quantity::Joules,
            PeakRam | Flash => Quantity::Bytes,
            DetectionDelay => Quantity::Seconds,
            FalseAlarmsPerHour => Quantity::PerHour,
            // Areas under a curve and coefficients read as plain numbers by convention.
            RocAuc | PrAuc | Rmse | Mae | R2 | MaxAbsError | Skill | AgreementSpearman => {
                Quantity::Plain
            }
        }
    }

    /// The display unit for a figure of `magnitude`: its factor from the base unit and its suffix.
    fn scale(self, magnitude: f64) -> (f64, &'static str) {
        const KIB: f64 = 1024.0;
        let m = magnitude.abs();
        match self {
            Quantity::Fraction => (100.0, "%"),
            Quantity::Micros if m < 1e3 => (1.0, " µs"),
            Quantity::Micros if m < 1e6 => (1e-3, " ms"),
            Quantity::Micros => (1e-6, " s"),
            Quantity::Seconds => (1.0, " s"),
            Quantity::Joules if m < 1e-3 => (1e6, " µJ"),
            Quantity::Joules if m < 1.0 => (1e3, " mJ"),
            Quantity::Joules => (1.0, " J"),
            Quantity::Bytes if m < KIB => (1.0, " B"),
            Quantity::Bytes if m < KIB * KIB => (1.0 / KIB, " KiB"),
            Quantity::Bytes => (1.0 / (KIB * KIB), " MiB"),
            Quantity::PerHour => (1.0, "/h"),
            Quantity::Plain => (1.0, ""),
            Quantity::Ratio => (1.0, "×"),
        }
    }
}

/// Four significant digits, trailing zeros dropped: 18.23, 20, 0.01235, 1500.
pub fn number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// `18.23 ms`, `95.12%`, `96 KiB`.
pub fn value(q: Quantity, x: f64) -> String {
    let (factor, suffix) = q.scale(x);
    format!("{}{suffix}", number(x * factor))
}

/// `[17.9, 18.6]`: an interval in the unit the figure `x` is written in.
pub fn bounds(q: Quantity, x: f64, ci: &ConfidenceInterval) -> String {
    let (factor, _) = q.scale(x);
    format!("[{}, {}]", number(ci.lo * factor), number(ci.hi * factor))
}

/// `18.2 ms [17.9, 18.6]`: the figure with its interval, if it has one.
pub fn value_with_ci(q: Quantity, x: f64, ci: Option<&ConfidenceInterval>) -> String {
    match ci {
        Some(ci) => format!("{} {}", value(q, x), bounds(q, x, ci)),
        None => value(q, x),
    }
}

/// `861 µJ ± 41 µJ`: a figure and its one-sigma error, both in the figure's unit.
pub fn plus_minus(q: Quantity, x: f64, error: f64) -> String {
    let (factor, suffix) = q.scale(x);
    format!(
        "{}{suffix} ± {}{suffix}",
        number(x * factor),
        number(error * factor)
    )
}

/// `+11.5 pp [9.5, 13.5]`, `-120 µs`: the difference of two figures, fractions in percentage points.
pub fn difference(q: Quantity, d: f64, ci: Option<&ConfidenceInterval>) -> String {
    let sign = if d >= 0.0 { "+" } else { "" };
    let text = match q {
        Quantity::Fraction => format!("{sign}{} pp", number(d * 100.0)),
        q => format!("{sign}{}", value(q, d)),
    };
    match ci {
        Some(ci) => format!("{text} {}", bounds(q, d, ci)),
        None => text,
    }
}

/// A gate metric's figure in its own unit.
pub fn metric(m: Metric, x: f64) -> String {
    value(Quantity::of(m), x)
}

/// A gate metric's figure with its interval.
pub fn metric_with_ci(m: Metric, x: f64, ci: Option<&ConfidenceInterval>) -> String {
    value_with_ci(Quantity::of(m), x, ci)
}

/// `95.1%`: a fraction as a percentage.
pub fn percent(fraction: f64) -> String {
    value(Quantity::Fraction, fraction)
}

/// `+5.2%`, `-12%`: a relative change.
pub fn signed_percent(fraction: f64) -> String {
    let sign = if fraction >= 0.0 { "+" } else { "" };
    format!("{sign}{}", percent(fraction))
}

pub fn micros(us: f64) -> String {
    value(Quantity::Micros, us)
}

pub fn joules(j: f64) -> String {
    value(Quantity::Joules, j)
}

pub fn bytes(b: f64) -> String {
    value(Quantity::Bytes, b)
}

/// A ratio of two figures: `1.615`.
pub fn ratio(r: f64) -> String {
    format!("{r:.3}")
}

/// A build's verdict; `None` is a build that infrastructure kept from being judged.
pub fn verdict(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Pass) => "PASS",
        Some(Verdict::Fail) => "FAIL",
        Some(Verdict::Inconclusive) => "INCONCLUSIVE",
        None => "INFRA ERROR",
    }
}

pub fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::GateFailed => "GATE FAILED",
        Outcome::InfraFailure => "INFRASTRUCTURE FAILURE",
        Outcome::Inconclusive => "INCONCLUSIVE",
    }
}

pub fn entry_status(s: EntryStatus) -> &'static str {
    match s {
        EntryStatus::Completed => "completed",
        EntryStatus::Rejected => "rejected",
        EntryStatus::Interrupted => "interrupted",
        EntryStatus::NotRun => "not run",
    }
}

pub fn source(s: Source) -> &'static str {
    match s {
        Source::Measured => "measured",
        Source::Emulated => "emulated",
        Source::Simulated => "simulated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(number(18.234), "18.23");
        assert_eq!(number(20.0), "20");
        assert_eq!(number(182.46), "182.5");
        assert_eq!(number(0.0123456), "0.01235");
        assert_eq!(number(1500.0), "1500");
        assert_eq!(number(123_456.0), "123456");
        assert_eq!(number(-0.5), "-0.5");
    }

    #[test]
    fn units_follow_magnitude() {
        assert_eq!(metric(Metric::LatencyP99, 18_200.0), "18.2 ms");
        assert_eq!(metric(Metric::LatencyP50, 150.0), "150 µs");
        assert_eq!(metric(Metric::LatencyP50, 412.34), "412.3 µs");
        assert_eq!(metric(Metric::LatencyMean, 2.5e6), "2.5 s");
        assert_eq!(metric(Metric::EnergyPerInference, 0.002), "2 mJ");
        assert_eq!(metric(Metric::EnergyPerInference, 3.1e-5), "31 µJ");
        assert_eq!(metric(Metric::PeakRam, 96.0 * 1024.0), "96 KiB");
        assert_eq!(metric(Metric::Flash, 3.0 * 1024.0 * 1024.0), "3 MiB");
        assert_eq!(metric(Metric::Flash, 300.0), "300 B");
        assert_eq!(metric(Metric::Accuracy, 0.9375), "93.75%");
        assert_eq!(metric(Metric::DetectionDelay, 12.5), "12.5 s");
        assert_eq!(metric(Metric::FalseAlarmsPerHour, 0.25), "0.25/h");
        assert_eq!(metric(Metric::R2, 0.91234), "0.9123");
        let ci = ConfidenceInterval {
            lo: 17_900.0,
            hi: 18_600.0,
            confidence: 0.95,
        };
        assert_eq!(
            metric_with_ci(Metric::LatencyP99, 18_200.0, Some(&ci)),
            "18.2 ms [17.9, 18.6]"
        );
    }

    /// The Markdown gate row once showed "1500.0 µs" beside "1.5 ms", and the terminal
    /// "7000.0 µs" beside "16.50 ms".
    #[test]
    fn one_figure_reads_the_same_through_every_helper() {
        assert_eq!(micros(1500.0), "1.5 ms");
        assert_eq!(metric(Metric::LatencyP90, 1500.0), "1.5 ms");
        assert_eq!(micros(7000.0), "7 ms");
        assert_eq!(micros(999.4), "999.4 µs");
        assert_eq!(joules(3.7e-4), "370 µJ");
        assert_eq!(bytes(2048.0), "2 KiB");
        assert_eq!(signed_percent(0.052), "+5.2%");
        assert_eq!(signed_percent(-0.12), "-12%");
        assert_eq!(
            plus_minus(Quantity::Joules, 8.61e-4, 4.1e-5),
            "861 µJ ± 41 µJ"
        );
        let ci = ConfidenceInterval {
            lo: 990.0,
            hi: 1010.0,
            confidence: 0.95,
        };
        assert_eq!(bounds(Quantity::Micros, 995.0, &ci), "[990, 1010]");
        let ci = ConfidenceInterval {
            lo: 0.095,
            hi: 0.135,
            confidence: 0.95,
        };
        assert_eq!(
            difference(Quantity::Fraction, 0.115, Some(&ci)),
            "+11.5 pp [9.5, 13.5]"
        );
        assert_eq!(difference(Quantity::Micros, -1200.0, None), "-1.2 ms");
    }
}
