//! Energy per inference from a power trace and the device's window markers (MLPerf Tiny method).

use serde::{Deserialize, Serialize};

use crate::PowerSample;

/// A span of the trace on the sensor clock, e.g. the idle baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A window of back-to-back inferences, bounded by the device's start/stop markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuredWindow {
    pub start_ns: u64,
    pub end_ns: u64,
    pub inferences: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowEnergy {
    pub start_ns: u64,
    pub end_ns: u64,
    pub inferences: u64,
    pub mean_power_w: f64,
    pub energy_per_inference_j: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyEstimate {
    /// Median over windows of (mean window power − mean idle power) × window duration / inferences.
    pub energy_per_inference_j: f64,
    /// One-sigma-like uncertainty of `energy_per_inference_j`: the standard error of the median
    /// across windows (1.2533 · s / √n; 0 with one window) combined in quadrature with the
    /// quantisation bound of one power LSB on the idle-subtracted power (the INA219 truncates).
    /// Aliasing from sampling slower than the load changes is not included: sample at ≥ 350 Hz.
    pub uncertainty_j: f64,
    pub idle_power_w: f64,
    pub windows: Vec<WindowEnergy>,
    /// Over the whole trace.
    pub average_power_w: f64,
    pub peak_power_w: f64,
    /// Trapezoidal integral over the whole trace.
    pub total_energy_j: f64,
    /// Smallest power step seen in the trace (estimated LSB), 0 when the trace has one level.
    pub power_resolution_w: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
pub enum EnergyError {
    #[error("estimate energy: the power trace has fewer than two samples")]
    TooFewSamples,
    #[error("estimate energy: no measurement windows were given")]
    NoWindows,
    #[error(
        "estimate energy over {which} [{start_ns}, {end_ns}] ns: it is empty or outside the trace [{trace_start_ns}, {trace_end_ns}] ns"
    )]
    WindowOutsideTrace {
        which: String,
        start_ns: u64,
        end_ns: u64,
        trace_start_ns: u64,
        trace_end_ns: u64,
    },
    #[error("estimate energy over {which}: it holds no inferences")]
    NoInferences { which: String },
}

/// Energy per inference, MLPerf Tiny style, plus trace-wide figures. See [`EnergyEstimate`] for
/// the error estimate.
pub fn energy_per_inference(
    trace: &[PowerSample],
    idle: Window,
    windows: &[MeasuredWindow],
) -> Result<EnergyEstimate, EnergyError> {
    let (first, last) = match trace {
        [first, .., last] => (first.t_ns, last.t_ns),
        _ => return Err(EnergyError::TooFewSamples),
    };
    if windows.is_empty() {
        return Err(EnergyError::NoWindows);
    }
    let idle_power_w = mean_power(trace, "the idle window".into(), idle.start_ns, idle.end_ns)?;
    let per_window = windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let which = format!("measurement window {i}");
            if w.inferences == 0 {
                return Err(EnergyError::NoInferences { which });
            }
            let mean_power_w = mean_power(trace, which, w.start_ns, w.end_ns)?;
            let seconds = (w.end_ns - w.start_ns) as f64 * 1e-9;
            Ok(WindowEnergy {
                start_ns: w.start_ns,
                end_ns: w.end_ns,
                inferences: w.inferences,
                mean_power_w,
                energy_per_inference_j: (mean_power_w - idle_power_w) * seconds
                    / w.inferences as f64,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let values: Vec<f64> = per_window
        .iter()
        .map(|w| w.energy_per_inference_j)
        .collect();
    let power_resolution_w = power_resolution(trace);
    let seconds_per_inference = median(
        &per_window
            .iter()
            .map(|w| (w.end_ns - w.start_ns) as f64 * 1e-9 / w.inferences as f64)
            .collect::<Vec<_>>(),
    );
    let quantisation_j = power_resolution_w * seconds_per_inference;
    let spread_j = if values.len() > 1 {
        1.2533 * std_dev(&values) / (values.len() as f64).sqrt()
    } else {
        0.0
    };
    let total_energy_j = integrate(trace, first, last);
    Ok(EnergyEstimate {
        energy_per_inference_j: median(&values),
        uncertainty_j: spread_j.hypot(quantisation_j),
        idle_power_w,
        windows: per_window,
        average_power_w: total_energy_j / ((last - first) as f64 * 1e-9),
        peak_power_w: trace
            .iter()
            .map(|s| s.power_watts)
            .fold(f64::NEG_INFINITY, f64::max),
        total_energy_j,
        power_resolution_w,
    })
}

/// Energy in joules over `[start_ns, end_ns]`, integrating the linearly interpolated trace.
pub fn integrate_joules(
    trace: &[PowerSample],
    start_ns: u64,
    end_ns: u64,
) -> Result<f64, EnergyError> {
    covered(trace, "the requested span".into(), start_ns, end_ns)?;
    Ok(integrate(trace, start_ns, end_ns))
}

fn covered(
    trace: &[PowerSample],
    which: String,
    start_ns: u64,
    end_ns: u64,
) -> Result<(), EnergyError> {
    let (trace_start_ns, trace_end_ns) = match trace {
        [first, .., last] => (first.t_ns, last.t_ns),
        _ => return Err(EnergyError::TooFewSamples),
    };
    if start_ns < trace_start_ns || end_ns > trace_end_ns || end_ns <= start_ns {
        return Err(EnergyError::WindowOutsideTrace {
            which,
            start_ns,
            end_ns,
            trace_start_ns,
            trace_end_ns,
        });
    }
    Ok(())
}

fn mean_power(
    trace: &[PowerSample],
    which: String,
    start_ns: u64,
    end_ns: u64,
) -> Result<f64, EnergyError> {
    covered(trace, which, start_ns, end_ns)?;
    Ok(integrate(trace, start_ns, end_ns) / ((end_ns - start_ns) as f64 * 1e-9))
}

/// Trapezoidal integral; the span must lie within the trace.
fn integrate(trace: &[PowerSample], start_ns: u64, end_ns: u64) -> f64 {
    let mut prev = (start_ns, power_at(trace, start_ns));
    let mut watt_ns = 0.0;
    let inside = trace.partition_point(|s| s.t_ns <= start_ns);
    for s in trace[inside..].iter().take_while(|s| s.t_ns < end_ns) {
        watt_ns += (s.t_ns - prev.0) as f64 * (s.power_watts + prev.1) / 2.0;
        prev = (s.t_ns, s.power_watts);
    }
    watt_ns += (end_ns - prev.0) as f64 * (power_at(trace, end_ns) + prev.1) / 2.0;
    watt_ns * 1e-9
}

fn power_at(trace: &[PowerSample], t_ns: u64) -> f64 {
    let after = trace
        .partition_point(|s| s.t_ns < t_ns)
        .min(trace.len() - 1);
    let b = trace[after];
    if after == 0 || b.t_ns <= t_ns {
        return b.power_watts;
    }
    let a = trace[after - 1];
    let fraction = (t_ns - a.t_ns) as f64 / (b.t_ns - a.t_ns) as f64;
    a.power_watts + fraction * (b.power_watts - a.power_watts)
}

fn power_resolution(trace: &[PowerSample]) -> f64 {
    let mut levels: Vec<f64> = trace.iter().map(|s| s.power_watts).collect();
    levels.sort_by(f64::total_cmp);
    levels
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .fold(0.0, |min: f64, d| if min == 0.0 { d } else { min.min(d) })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn std_dev(values: &[f64]) -> f64 {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PowerReading, ReadingFlags};

    fn trace(points: &[(u64, f64)]) -> Vec<PowerSample> {
        points
            .iter()
            .map(|&(t_ns, w)| PowerReading {
                t_ns,
                bus_volts: 5.0,
                current_amps: w / 5.0,
                power_watts: w,
                flags: ReadingFlags::default(),
            })
            .collect()
    }

    #[test]
    fn trapezoid_integrates_ramps_exactly_and_clips_windows() {
        // 0 W → 10 W over 1 s, then flat.
        let t = trace(&[(0, 0.0), (1_000_000_000, 10.0), (2_000_000_000, 10.0)]);
        assert!((integrate_joules(&t, 0, 2_000_000_000).unwrap() - 15.0).abs() < 1e-9);
        // From 0.5 s to 1.5 s: 0.5 s averaging 7.5 W, then 0.5 s at 10 W.
        assert!((integrate_joules(&t, 500_000_000, 1_500_000_000).unwrap() - 8.75).abs() < 1e-9);
        assert!(matches!(
            integrate_joules(&t, 0, 3_000_000_000),
            Err(EnergyError::WindowOutsideTrace { .. })
        ));
    }

    #[test]
    fn energy_per_inference_subtracts_idle_and_takes_the_median() {
        let s = 1_000_000_000;
        // Idle 2 W for 1 s; windows at 4 W, 5 W and 12 W (an outlier) of 1 s, 10 inferences each.
        let t = trace(&[
            (0, 2.0),
            (s, 2.0),
            (s + 1, 4.0),
            (2 * s, 4.0),
            (2 * s + 1, 5.0),
            (3 * s, 5.0),
            (3 * s + 1, 12.0),
            (4 * s, 12.0),
        ]);
        let windows: Vec<MeasuredWindow> = (1..4)
            .map(|k| MeasuredWindow {
                start_ns: k * s + 1,
                end_ns: (k + 1) * s,
                inferences: 10,
            })
            .collect();
        let e = energy_per_inference(
            &t,
            Window {
                start_ns: 0,
                end_ns: s,
            },
            &windows,
        )
        .unwrap();
        assert!((e.idle_power_w - 2.0).abs() < 1e-9);
        assert!((e.energy_per_inference_j - 0.3).abs() < 1e-6, "{e:?}");
        assert_eq!(e.peak_power_w, 12.0);
        assert!(
            e.uncertainty_j > 0.1,
            "the outlier window widens the spread: {e:?}"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert!(json["energy_per_inference_j"].as_f64().is_some());
    }

    #[test]
    fn bad_windows_are_named() {
        let t = trace(&[(0, 1.0), (1_000, 1.0)]);
        let idle = Window {
            start_ns: 0,
            end_ns: 500,
        };
        let none = [MeasuredWindow {
            start_ns: 500,
            end_ns: 1_000,
            inferences: 0,
        }];
        assert_eq!(
            energy_per_inference(&t, idle, &none).unwrap_err(),
            EnergyError::NoInferences {
                which: "measurement window 0".into()
            }
        );
        let outside = [MeasuredWindow {
            start_ns: 500,
            end_ns: 2_000,
            inferences: 1,
        }];
        let err = energy_per_inference(&t, idle, &outside)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("measurement window 0") && err.contains("2000"),
            "{err}"
        );
        assert_eq!(
            energy_per_inference(&t, idle, &[]).unwrap_err(),
            EnergyError::NoWindows
        );
    }
}
