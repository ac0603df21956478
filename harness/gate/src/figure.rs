//! What each gate metric reads from [`Metrics`], and how its numbers are written for people.

use gauntlet_measure::{ConfidenceInterval, loadgen_min_samples, wilson_interval};
use gauntlet_results::{Latency, Metrics};
use gauntlet_spec::Metric;

/// One figure of a build as a gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub value: f64,
    pub ci: Option<ConfidenceInterval>,
    /// Set when the figure rests on fewer samples than the claim needs: the reason, for the evidence.
    pub too_few_samples: Option<String>,
}

impl Figure {
    fn point(value: f64) -> Self {
        Figure {
            value,
            ci: None,
            too_few_samples: None,
        }
    }
}

/// z for a two-sided 95 % normal interval, used to widen one-sigma error estimates.
const Z95: f64 = 1.959_963_984_540_054;

/// Reads `metric` from a build's figures; `Err` names what was not measured.
///
/// Sources: latency gates read the device's own time per inference (`latency_device_us`), not the
/// host round trip; `agreement.label` gets a Wilson interval from its window count; energy widens
/// the one-sigma error estimate to a 95 % normal interval; `peak_ram` is the agent's peak RSS on
/// Linux boards and static RAM plus stack high-water on MCUs; `flash` is the firmware's flash
/// footprint on MCUs and the model file's size elsewhere (what the build occupies in storage).
pub(crate) fn figure(metric: Metric, m: &Metrics) -> Result<Figure, String> {
    let missing = || format!("{} was not measured", metric.name());
    match metric {
        Metric::Accuracy => m.accuracy.map(|value| Figure {
            value,
            ci: m.accuracy_ci,
            too_few_samples: None,
        }),
        Metric::MacroF1 => m.macro_f1.map(Figure::point),
        Metric::LatencyP50 => latency(m, "p50", 0.50),
        Metric::LatencyP90 => latency(m, "p90", 0.90),
        Metric::LatencyP99 => latency(m, "p99", 0.99),
        Metric::LatencyMean => m.latency_device_us.as_ref().map(|l| {
            let (intervals, too_few_blocks) = l.honest_intervals();
            Figure {
                value: l.mean,
                ci: intervals.map(|c| c.mean),
                too_few_samples: too_few_blocks,
            }
        }),
        Metric::AgreementLabel => m.agreement.as_ref().map(|a| Figure {
            value: a.label,
            ci: wilson_interval((a.label * a.n as f64).round() as u64, a.n as u64, 0.95).ok(),
            too_few_samples: None,
        }),
        Metric::EnergyPerInference => m.energy.as_ref().map(|e| Figure {
            value: e.per_inference_j,
            ci: (e.per_inference_error_j > 0.0).then_some(ConfidenceInterval {
                lo: e.per_inference_j - Z95 * e.per_inference_error_j,
                hi: e.per_inference_j + Z95 * e.per_inference_error_j,
                confidence: 0.95,
            }),
            too_few_samples: None,
        }),
        Metric::PeakRam => match (m.peak_rss_kib, m.static_ram_bytes, m.stack_high_water_bytes) {
            (Some(kib), _, _) => Some(Figure::point(kib as f64 * 1024.0)),
            (None, Some(ram), Some(stack)) => Some(Figure::point(
                (ram + m.heap_after_load_bytes.unwrap_or(0) + stack) as f64,
            )),
            _ => None,
        },
        Metric::Flash => Some(Figure::point(
            m.flash_bytes.unwrap_or(m.model_size_bytes) as f64
        )),
        task => return task_figure(task, m).ok_or_else(missing),
    }
    .ok_or_else(missing)
}

/// The anomaly, regression and output-agreement metrics, each with its bootstrap interval.
fn task_figure(metric: Metric, m: &Metrics) -> Option<Figure> {
    let t = m.task.as_ref()?;
    let a = t.anomaly.as_ref();
    let r = t.regression.as_ref().map(|r| &r.scores);
    let g = t.agreement.as_ref().map(|g| &g.agreement);
    let e = match metric {
        Metric::RocAuc => a?.scores.roc_auc,
        Metric::PrAuc => a?.scores.pr_auc,
        Metric::F1AtThreshold => a?.scores.f1,
        Metric::PrecisionAtThreshold => a?.scores.precision,
        Metric::RecallAtThreshold => a?.scores.recall,
        Metric::FalseAlarmsPerHour => a?.events.false_alarms_per_hour?,
        Metric::EventsDetected => a?.events.detected_share?,
        Metric::DetectionDelay => a?.events.mean_delay_s?,
        Metric::Rmse => r?.rmse,
        Metric::Mae => r?.mae,
        Metric::R2 => r?.r2,
        Metric::Mape => r?.mape?,
        Metric::MaxAbsError => r?.max_abs_error,
        Metric::Skill => r?.skill?,
        Metric::AgreementSpearman => g?.spearman,
        Metric::AgreementDecisions => g?.same_decisions?,
        Metric::AgreementRmseChange => g?.rmse_change?,
        _ => return None,
    };
    Some(Figure {
        value: e.value,
        ci: e.ci,
        too_few_samples: None,
    })
}

fn latency(m: &Metrics, name: &str, p: f64) -> Option<Figure> {
    let l: &Latency = m.latency_device_us.as_ref()?;
    let (intervals, too_few_blocks) = l.honest_intervals();
    let (value, ci) = match name {
        "p50" => (l.p50, intervals.map(|c| c.p50)),
        "p90" => (l.p90, intervals.map(|c| c.p90)),
        _ => (l.p99, intervals.map(|c| c.p99)),
    };
    let too_few_samples = l
        .insufficient
        .iter()
        .any(|s| s == name)
        .then(|| {
            format!(
                "too few samples: n = {} < {} for {name}",
                l.n,
                loadgen_min_samples(p)
            )
        })
        .or(too_few_blocks);
    Some(Figure {
        value,
        ci,
        too_few_samples,
    })
}

/// A unit and the factor from the metric's base unit to it.
struct Scale {
    factor: f64,
    unit: &'static str,
}

/// Picks a unit that keeps `magnitude` readable: µs/ms/s, µJ/mJ/J, B/KiB/MiB, or percent.
fn scale(metric: Metric, magnitude: f64) -> Scale {
    let m = magnitude.abs();
    let s = |factor, unit| Scale { factor, unit };
    match metric {
        Metric::Accuracy | Metric::MacroF1 | Metric::AgreementLabel => s(100.0, "%"),
        Metric::LatencyP50 | Metric::LatencyP90 | Metric::LatencyP99 | Metric::LatencyMean => {
            if m < 1e3 {
                s(1.0, " µs")
            } else if m < 1e6 {
                s(1e-3, " ms")
            } else {
                s(1e-6, " s")
            }
        }
        Metric::EnergyPerInference => {
            if m < 1e-3 {
                s(1e6, " µJ")
            } else if m < 1.0 {
                s(1e3, " mJ")
            } else {
                s(1.0, " J")
            }
        }
        Metric::RocAuc
        | Metric::PrAuc
        | Metric::F1AtThreshold
        | Metric::PrecisionAtThreshold
        | Metric::RecallAtThreshold
        | Metric::EventsDetected
        | Metric::Mape
        | Metric::AgreementDecisions
        | Metric::AgreementRmseChange => s(100.0, "%"),
        Metric::DetectionDelay => s(1.0, " s"),
        Metric::FalseAlarmsPerHour => s(1.0, "/h"),
        // In the target's or the score's own unit.
        Metric::Rmse
        | Metric::Mae
        | Metric::R2
        | Metric::MaxAbsError
        | Metric::Skill
        | Metric::AgreementSpearman => s(1.0, ""),
        Metric::PeakRam | Metric::Flash => {
            if m < 1024.0 {
                s(1.0, " B")
            } else if m < 1024.0 * 1024.0 {
                s(1.0 / 1024.0, " KiB")
            } else {
                s(1.0 / (1024.0 * 1024.0), " MiB")
            }
        }
    }
}

/// Three significant digits, trailing zeros dropped: 18.2, 20, 0.0123, 182.
fn number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = 2 - x.abs().log10().floor() as i32;
    let text = format!("{:.*}", digits.max(0) as usize, x);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// `18.2 ms`, `95.1%`, `96 KiB`.
pub(crate) fn value(metric: Metric, x: f64) -> String {
    let s = scale(metric, x);
    format!("{}{}", number(x * s.factor), s.unit)
}

/// `18.2 ms [17.9, 18.6]`: the interval in the value's own unit.
pub(crate) fn value_with_ci(metric: Metric, x: f64, ci: Option<&ConfidenceInterval>) -> String {
    let s = scale(metric, x);
    match ci {
        Some(ci) => format!(
            "{}{} [{}, {}]",
            number(x * s.factor),
            s.unit,
            number(ci.lo * s.factor),
            number(ci.hi * s.factor)
        ),
        None => format!("{}{}", number(x * s.factor), s.unit),
    }
}

/// `+5%`, `12.5%`: a fraction as a percentage.
pub(crate) fn percent(fraction: f64) -> String {
    format!("{}%", number(fraction * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(number(18.234), "18.2");
        assert_eq!(number(20.0), "20");
        assert_eq!(number(182.4), "182");
        assert_eq!(number(0.012345), "0.0123");
        assert_eq!(number(1500.0), "1500");
    }

    #[test]
    fn units_follow_magnitude() {
        assert_eq!(value(Metric::LatencyP99, 18_200.0), "18.2 ms");
        assert_eq!(value(Metric::LatencyP50, 150.0), "150 µs");
        assert_eq!(value(Metric::LatencyMean, 2.5e6), "2.5 s");
        assert_eq!(value(Metric::EnergyPerInference, 0.002), "2 mJ");
        assert_eq!(value(Metric::EnergyPerInference, 3.1e-5), "31 µJ");
        assert_eq!(value(Metric::PeakRam, 96.0 * 1024.0), "96 KiB");
        assert_eq!(value(Metric::Flash, 300.0), "300 B");
        assert_eq!(value(Metric::Accuracy, 0.951), "95.1%");
        let ci = ConfidenceInterval {
            lo: 17_900.0,
            hi: 18_600.0,
            confidence: 0.95,
        };
        assert_eq!(
            value_with_ci(Metric::LatencyP99, 18_200.0, Some(&ci)),
            "18.2 ms [17.9, 18.6]"
        );
    }
}
