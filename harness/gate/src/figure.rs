//! What each gate metric reads from [`Metrics`].

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
