//! Event-level anomaly detection: labelled anomaly segments detected or missed, how late, and false
//! alarms per hour of recorded time.
//!
//! - A **segment** is a maximal run of consecutive anomalous windows of one recording. It is
//!   **detected** when any of its windows raised an alarm; the **delay** is the time from its first
//!   window to its first alarm, on the recording's own timestamps (each window's last row).
//! - A **false alarm** is a maximal run of alarms on consecutive normal windows of one recording,
//!   counted once however long it lasts. **Recorded time** is the sum over recordings of the span of
//!   their windows' timestamps.
//! - Intervals: the detected share has a Wilson interval; the mean delay and the false-alarm rate a
//!   Poisson bootstrap over detected segments and over false alarms respectively (events, not
//!   windows, are the units here, so `block` does not apply).

use serde::{Deserialize, Serialize};

use crate::error::MeasureError;
use crate::interval::wilson_interval;
use crate::poisson::{BootstrapOptions, Estimate, interval};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub recording: usize,
    /// Index of its first window in the replayed order.
    pub first_window: usize,
    pub windows: usize,
    /// Timestamp of its first window, seconds.
    pub start_s: Option<f64>,
    pub detected: bool,
    /// First alarm − first window, seconds (needs timestamps).
    pub delay_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventScores {
    pub segments: Vec<Segment>,
    /// Share of segments detected (`None` without segments).
    pub detected_share: Option<Estimate>,
    pub mean_delay_s: Option<Estimate>,
    pub false_alarms: usize,
    pub recorded_hours: Option<f64>,
    pub false_alarms_per_hour: Option<Estimate>,
}

/// Per-window facts the events are read from, all of one length.
pub struct Timeline<'a> {
    pub anomalous: &'a [bool],
    pub alarms: &'a [bool],
    pub recording: &'a [usize],
    pub timestamps_s: Option<&'a [f64]>,
}

pub fn events(t: &Timeline, options: &BootstrapOptions) -> Result<EventScores, MeasureError> {
    const WHAT: &str = "score anomaly events";
    let n = t.anomalous.len();
    for len in [t.alarms.len(), t.recording.len()]
        .into_iter()
        .chain(t.timestamps_s.map(<[f64]>::len))
    {
        if len != n {
            return Err(MeasureError::LengthMismatch {
                what: WHAT,
                left: n,
                right: len,
            });
        }
    }
    let time = |i: usize| t.timestamps_s.map(|ts| ts[i]);
    let mut segments: Vec<Segment> = Vec::new();
    let mut false_alarms = 0;
    for i in 0..n {
        let continues = i > 0 && t.recording[i - 1] == t.recording[i];
        if t.anomalous[i] {
            if !(continues && t.anomalous[i - 1]) {
                segments.push(Segment {
                    recording: t.recording[i],
                    first_window: i,
                    windows: 0,
                    start_s: time(i),
                    detected: false,
                    delay_s: None,
                });
            }
            let s = segments.last_mut().expect("a segment was opened");
            s.windows += 1;
            if t.alarms[i] && !s.detected {
                s.detected = true;
                s.delay_s = time(i).zip(s.start_s).map(|(a, b)| a - b);
            }
        } else if t.alarms[i] && !(continues && t.alarms[i - 1] && !t.anomalous[i - 1]) {
            false_alarms += 1;
        }
    }
    let recorded_hours = t.timestamps_s.map(|ts| {
        let mut seconds = 0.0;
        let mut start = 0;
        for i in 1..=n {
            if i == n || t.recording[i] != t.recording[start] {
                seconds += ts[i - 1] - ts[start];
                start = i;
            }
        }
        seconds / 3600.0
    });
    let detected = segments.iter().filter(|s| s.detected).count();
    let detected_share = (!segments.is_empty()).then(|| Estimate {
        value: detected as f64 / segments.len() as f64,
        ci: wilson_interval(detected as u64, segments.len() as u64, options.confidence).ok(),
    });
    let delays: Vec<f64> = segments.iter().filter_map(|s| s.delay_s).collect();
    let mean_delay_s = (!delays.is_empty()).then(|| Estimate {
        value: delays.iter().sum::<f64>() / delays.len() as f64,
        ci: interval(options, delays.len(), |w| {
            let (mut sum, mut weight) = (0.0, 0.0);
            for (d, &k) in delays.iter().zip(w) {
                sum += f64::from(k) * d;
                weight += f64::from(k);
            }
            sum / weight
        }),
    });
    let false_alarms_per_hour = recorded_hours.filter(|&h| h > 0.0).map(|hours| Estimate {
        value: false_alarms as f64 / hours,
        ci: interval(options, false_alarms, |w| {
            w.iter().map(|&k| f64::from(k)).sum::<f64>() / hours
        }),
    });
    Ok(EventScores {
        segments,
        detected_share,
        mean_delay_s,
        false_alarms,
        recorded_hours,
        false_alarms_per_hour,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_delays_and_false_alarms_follow_the_timeline() {
        // Two recordings, one window a second. Recording 0: normal, anomaly (windows 1–3, alarm
        // at 2), normal with a two-window false alarm (5, 6). Recording 1: an anomaly at its
        // start that is missed, which must not merge with recording 0's last window.
        let anomalous = [0, 1, 1, 1, 0, 0, 0, 0, 1, 1].map(|x| x == 1);
        let alarms = [0, 0, 1, 1, 0, 1, 1, 0, 0, 0].map(|x| x == 1);
        let recording = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        let ts: Vec<f64> = (0..10).map(|i| 100.0 + f64::from(i)).collect();
        let t = Timeline {
            anomalous: &anomalous,
            alarms: &alarms,
            recording: &recording,
            timestamps_s: Some(&ts),
        };
        let e = events(&t, &BootstrapOptions::default()).unwrap();
        assert_eq!(e.segments.len(), 2);
        assert_eq!(
            e.segments[0],
            Segment {
                recording: 0,
                first_window: 1,
                windows: 3,
                start_s: Some(101.0),
                detected: true,
                delay_s: Some(1.0),
            }
        );
        assert!(!e.segments[1].detected);
        assert_eq!(e.detected_share.unwrap().value, 0.5);
        assert_eq!(e.mean_delay_s.unwrap().value, 1.0);
        assert_eq!(e.false_alarms, 1);
        // Recorded spans: 7 s + 1 s.
        let hours = e.recorded_hours.unwrap();
        assert!((hours - 8.0 / 3600.0).abs() < 1e-12);
        assert!((e.false_alarms_per_hour.unwrap().value - 450.0).abs() < 1e-9);
    }

    #[test]
    fn without_timestamps_there_is_no_delay_or_rate() {
        let flags = [true, false];
        let e = events(
            &Timeline {
                anomalous: &flags,
                alarms: &flags,
                recording: &[0, 0],
                timestamps_s: None,
            },
            &BootstrapOptions::default(),
        )
        .unwrap();
        assert_eq!(e.detected_share.unwrap().value, 1.0);
        assert!(e.mean_delay_s.is_none() && e.false_alarms_per_hour.is_none());
        assert!(
            events(
                &Timeline {
                    anomalous: &flags,
                    alarms: &[true],
                    recording: &[0, 0],
                    timestamps_s: None,
                },
                &BootstrapOptions::default()
            )
            .is_err()
        );
    }
}
