//! Runs one sensor on its own thread at a fixed rate and keeps the trace.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::error::PowerError;
use crate::{PowerSample, PowerSensor, SensorInfo};

/// A sample more than this many periods after the previous one counts as late (plus one period
/// when dithering, since dithered samples may legitimately be up to two periods apart).
const LATE_PERIODS: f64 = 1.5;
/// MLPerf Tiny's limit on dropped samples in an energy run.
const MAX_DROPPED_FRACTION: f64 = 0.001;
/// Longest single sleep, so `stop` is answered promptly even at low rates.
const STOP_CHECK_NS: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerConfig {
    pub rate_hz: f64,
    /// Stop by itself after this long; `None` samples until [`Sampler::stop`].
    pub duration_ns: Option<u64>,
    /// Consecutive failed reads after which sampling ends with the last error.
    pub max_consecutive_errors: u32,
    /// Take each sample at a pseudo-random point of its period instead of at its start
    /// (stratified sampling), so a workload whose period is a multiple of the sampling period is
    /// not seen at the same phase every time (aliasing). Off by default: a regular grid.
    pub dither: bool,
}

impl Default for SamplerConfig {
    /// 1 kHz, as MLPerf Tiny's energy mode asks; a 12-bit INA219 pair converts at ≈940 Hz.
    fn default() -> Self {
        Self {
            rate_hz: 1_000.0,
            duration_ns: None,
            max_consecutive_errors: 5,
            dither: false,
        }
    }
}

impl SamplerConfig {
    fn period_ns(&self) -> Result<u64, PowerError> {
        if !(self.rate_hz.is_finite() && self.rate_hz > 0.0 && self.rate_hz <= 1e6) {
            return Err(PowerError::InvalidSampler {
                reason: format!("rate_hz {} is not between 0 and 1 MHz", self.rate_hz),
            });
        }
        if self.max_consecutive_errors == 0 {
            return Err(PowerError::InvalidSampler {
                reason: "max_consecutive_errors must be at least 1".into(),
            });
        }
        Ok((1e9 / self.rate_hz).round() as u64)
    }
}

/// Timing quality of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplerStats {
    pub samples: u64,
    /// Gaps between consecutive samples longer than 1.5 periods (2.5 when dithering).
    pub late: u64,
    /// Ticks that got no sample because the previous read overran them.
    pub missed_ticks: u64,
    pub failed_reads: u64,
    /// (late + failed reads) / attempted reads.
    pub dropped_fraction: f64,
    /// `dropped_fraction` above 0.1 %: the trace does not meet the MLPerf Tiny bar.
    pub dropped_flag: bool,
    pub achieved_rate_hz: f64,
}

impl SamplerStats {
    fn of(samples: &[PowerSample], late: u64, missed_ticks: u64, failed_reads: u64) -> Self {
        let attempted = samples.len() as u64 + failed_reads;
        let dropped_fraction = if attempted == 0 {
            0.0
        } else {
            (late + failed_reads) as f64 / attempted as f64
        };
        let span_ns = match (samples.first(), samples.last()) {
            (Some(first), Some(last)) if last.t_ns > first.t_ns => (last.t_ns - first.t_ns) as f64,
            _ => 0.0,
        };
        Self {
            samples: samples.len() as u64,
            late,
            missed_ticks,
            failed_reads,
            dropped_fraction,
            dropped_flag: dropped_fraction > MAX_DROPPED_FRACTION,
            achieved_rate_hz: if span_ns > 0.0 {
                (samples.len() - 1) as f64 * 1e9 / span_ns
            } else {
                0.0
            },
        }
    }
}

/// What a sampler run produced. `error` is set when sampling ended because the sensor kept
/// failing; the samples before it are kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerTrace {
    pub sensor: SensorInfo,
    pub rate_hz: f64,
    pub samples: Vec<PowerSample>,
    pub stats: SamplerStats,
    pub error: Option<PowerError>,
}

/// A sensor being sampled on its own thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<PowerTrace>,
    sensor: String,
}

impl Sampler {
    /// Starts sampling. `clock` must be the clock the sensor stamps readings with.
    pub fn start<S: PowerSensor + 'static>(
        mut sensor: S,
        clock: SharedClock,
        cfg: SamplerConfig,
    ) -> Result<Self, PowerError> {
        let period_ns = cfg.period_ns()?;
        let info = sensor.describe();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let name = info.name.clone();
        let handle = std::thread::Builder::new()
            .name(format!("power sampler: {name}"))
            .spawn(move || {
                let start = clock.now_ns();
                let end = cfg.duration_ns.map(|d| start + d);
                let mut samples =
                    Vec::with_capacity(cfg.duration_ns.map_or(0, |d| (d / period_ns + 1) as usize));
                let (mut failed_reads, mut consecutive_errors, mut error) = (0, 0, None);
                let (mut late, mut missed_ticks) = (0, 0);
                let mut dither = Dither::new(if cfg.dither { period_ns } else { 0 });
                let late_gap_ns = (LATE_PERIODS * period_ns as f64) as u64 + dither.span;
                let mut previous_ns: Option<u64> = None;
                let mut grid = start;
                'sampling: while end.is_none_or(|end| grid < end) {
                    let tick = grid + dither.next_offset();
                    loop {
                        if stop_flag.load(Ordering::Relaxed) {
                            break 'sampling;
                        }
                        let now = clock.now_ns();
                        if now >= tick {
                            break;
                        }
                        clock.sleep_until(tick.min(now + STOP_CHECK_NS));
                    }
                    match sensor.read() {
                        Ok(reading) => {
                            late += u64::from(
                                previous_ns.is_some_and(|p| reading.t_ns > p + late_gap_ns),
                            );
                            previous_ns = Some(reading.t_ns);
                            samples.push(reading);
                            consecutive_errors = 0;
                        }
                        Err(e) => {
                            failed_reads += 1;
                            consecutive_errors += 1;
                            if consecutive_errors >= cfg.max_consecutive_errors {
                                error = Some(e);
                                break;
                            }
                        }
                    }
                    // Stay on the tick grid; periods overrun by a slow read are skipped, not
                    // bunched. A dithered period is still usable until its end has passed.
                    let now = clock.now_ns();
                    grid += period_ns;
                    if grid + dither.span <= now {
                        let next = start + ((now - start) / period_ns + 1) * period_ns;
                        missed_ticks += (next - grid) / period_ns;
                        grid = next;
                    }
                }
                PowerTrace {
                    stats: SamplerStats::of(&samples, late, missed_ticks, failed_reads),
                    sensor: info,
                    rate_hz: cfg.rate_hz,
                    samples,
                    error,
                }
            })
            .map_err(|e| PowerError::InvalidSampler {
                reason: format!("spawn the sampler thread: {e}"),
            })?;
        Ok(Self {
            stop,
            handle,
            sensor: name,
        })
    }

    /// True once sampling has ended by itself (duration reached or the sensor kept failing).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Ends sampling now and returns the trace.
    pub fn stop(self) -> Result<PowerTrace, PowerError> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for sampling to end by itself; with no `duration_ns` that is only on sensor failure.
    pub fn join(self) -> Result<PowerTrace, PowerError> {
        self.handle.join().map_err(|_| PowerError::SamplerPanicked {
            sensor: self.sensor,
        })
    }
}

/// Offsets in `[0, span)` from the golden-ratio sequence: deterministic and of low discrepancy,
/// so the phases seen against any periodic workload even out far faster than random offsets do.
struct Dither {
    k: u64,
    span: u64,
}

impl Dither {
    const GOLDEN_FRACTION: f64 = 0.618_033_988_749_894_9;

    fn new(span: u64) -> Self {
        Self { k: 0, span }
    }

    /// The first offset is 0, so a trace starts when the sampler does.
    fn next_offset(&mut self) -> u64 {
        let offset = (self.k as f64 * Self::GOLDEN_FRACTION).fract() * self.span as f64;
        self.k += 1;
        offset as u64
    }
}

/// Power over one time bucket of a downsampled trace.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub start_ns: u64,
    pub end_ns: u64,
    pub samples: usize,
    pub min_w: f64,
    pub max_w: f64,
    pub mean_w: f64,
}

/// Splits the trace's time span into `buckets` equal spans and keeps min/max/mean power of each;
/// spans without samples are left out. Min and max keep short spikes visible in a report.
pub fn downsample(samples: &[PowerSample], buckets: usize) -> Vec<Bucket> {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Vec::new();
    };
    if buckets == 0 {
        return Vec::new();
    }
    let span = (last.t_ns - first.t_ns).max(1);
    let width = span.div_ceil(buckets as u64).max(1);
    let mut out: Vec<Bucket> = Vec::new();
    for s in samples {
        let index = ((s.t_ns - first.t_ns) / width).min(buckets as u64 - 1);
        let start_ns = first.t_ns + index * width;
        match out.last_mut() {
            Some(b) if b.start_ns == start_ns => {
                b.min_w = b.min_w.min(s.power_watts);
                b.max_w = b.max_w.max(s.power_watts);
                b.mean_w += (s.power_watts - b.mean_w) / (b.samples + 1) as f64;
                b.samples += 1;
            }
            _ => out.push(Bucket {
                start_ns,
                end_ns: start_ns + width,
                samples: 1,
                min_w: s.power_watts,
                max_w: s.power_watts,
                mean_w: s.power_watts,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::{PowerReading, ReadingFlags, Source};

    /// Reads a ramp; every read takes `read_ns` of (virtual) time, and reads listed in `fail_at`
    /// fail, so timing and error handling can be checked exactly.
    struct FakeSensor {
        clock: Arc<ManualClock>,
        read_ns: Vec<u64>,
        fail_from: Option<usize>,
        reads: usize,
    }

    impl PowerSensor for FakeSensor {
        fn describe(&self) -> SensorInfo {
            SensorInfo {
                name: "fake".into(),
                kind: "fake".into(),
                source: Source::Simulated,
                power_resolution_w: None,
            }
        }
        fn read(&mut self) -> Result<PowerReading, PowerError> {
            let n = self.reads;
            self.reads += 1;
            self.clock.advance(self.read_ns[n % self.read_ns.len()]);
            if self.fail_from.is_some_and(|from| n >= from) {
                return Err(PowerError::Overflow {
                    sensor: "fake".into(),
                });
            }
            Ok(PowerReading {
                t_ns: self.clock.now_ns(),
                bus_volts: 5.0,
                current_amps: n as f64,
                power_watts: n as f64,
                flags: ReadingFlags::default(),
            })
        }
    }

    fn run(read_ns: Vec<u64>, fail_from: Option<usize>, cfg: SamplerConfig) -> PowerTrace {
        let clock = ManualClock::shared();
        let sensor = FakeSensor {
            clock: clock.clone(),
            read_ns,
            fail_from,
            reads: 0,
        };
        Sampler::start(sensor, clock, cfg).unwrap().join().unwrap()
    }

    #[test]
    fn samples_on_the_tick_grid_for_the_configured_duration() {
        let cfg = SamplerConfig {
            rate_hz: 1_000.0,
            duration_ns: Some(1_000_000_000),
            dither: false,
            ..Default::default()
        };
        let trace = run(vec![10_000], None, cfg);
        assert_eq!(trace.samples.len(), 1_000);
        assert_eq!(trace.samples[1].t_ns - trace.samples[0].t_ns, 1_000_000);
        assert_eq!(trace.stats.late, 0);
        assert!(!trace.stats.dropped_flag);
        assert!((trace.stats.achieved_rate_hz - 1_000.0).abs() < 1e-6);
        assert!(trace.error.is_none());
    }

    #[test]
    fn slow_reads_count_as_late_and_raise_the_flag() {
        // One read in 100 overruns by 2.5 periods: 1 % of intervals are late, above 0.1 %.
        let mut read_ns = vec![10_000; 100];
        read_ns[50] = 2_500_000;
        let cfg = SamplerConfig {
            rate_hz: 1_000.0,
            duration_ns: Some(1_000_000_000),
            dither: false,
            ..Default::default()
        };
        let trace = run(read_ns, None, cfg);
        assert!(
            trace.stats.late >= 9 && trace.stats.late <= 10,
            "{:?}",
            trace.stats
        );
        assert!(
            (trace.stats.dropped_fraction - 0.01).abs() < 0.001,
            "{:?}",
            trace.stats
        );
        assert_eq!(trace.stats.missed_ticks, 2 * trace.stats.late);
        assert!(trace.stats.dropped_flag);
    }

    #[test]
    fn a_failing_sensor_ends_sampling_with_its_error_and_keeps_earlier_samples() {
        let cfg = SamplerConfig {
            max_consecutive_errors: 3,
            rate_hz: 100.0,
            duration_ns: Some(10_000_000_000),
            dither: false,
        };
        let trace = run(vec![1_000], Some(20), cfg);
        assert_eq!(trace.samples.len(), 20);
        assert_eq!(trace.stats.failed_reads, 3);
        assert_eq!(
            trace.error,
            Some(PowerError::Overflow {
                sensor: "fake".into()
            })
        );
    }

    #[test]
    fn stop_ends_an_open_ended_run_on_the_real_clock() {
        let clock: SharedClock = Arc::new(crate::clock::MonotonicClock::new());
        struct Steady(SharedClock);
        impl PowerSensor for Steady {
            fn describe(&self) -> SensorInfo {
                SensorInfo {
                    name: "steady".into(),
                    kind: "fake".into(),
                    source: Source::Measured,
                    power_resolution_w: None,
                }
            }
            fn read(&mut self) -> Result<PowerReading, PowerError> {
                Ok(PowerReading {
                    t_ns: self.0.now_ns(),
                    bus_volts: 5.0,
                    current_amps: 1.0,
                    power_watts: 5.0,
                    flags: ReadingFlags::default(),
                })
            }
        }
        let sampler =
            Sampler::start(Steady(clock.clone()), clock, SamplerConfig::default()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!sampler.is_finished());
        let trace = sampler.stop().unwrap();
        assert!(!trace.samples.is_empty());
        assert!(trace.samples.windows(2).all(|w| w[1].t_ns > w[0].t_ns));
    }

    #[test]
    fn dither_spreads_samples_over_their_period_without_counting_them_late() {
        let cfg = SamplerConfig {
            rate_hz: 1_000.0,
            duration_ns: Some(1_000_000_000),
            dither: true,
            ..Default::default()
        };
        // Reads take 40 % of a period, so a late-dithered sample overruns into the next period,
        // which must still be sampled rather than skipped.
        let trace = run(vec![400_000], None, cfg);
        assert_eq!(trace.samples.len(), 1_000);
        let phases: Vec<u64> = trace.samples.iter().map(|s| s.t_ns % 1_000_000).collect();
        assert!(
            phases.iter().any(|&p| p < 250_000) && phases.iter().any(|&p| p > 750_000),
            "phases cover the period"
        );
        assert_eq!(trace.stats.late, 0);
        assert_eq!(trace.stats.missed_ticks, 0);
    }

    #[test]
    fn rejects_a_zero_rate() {
        let clock = ManualClock::shared();
        let sensor = FakeSensor {
            clock: clock.clone(),
            read_ns: vec![1],
            fail_from: None,
            reads: 0,
        };
        let cfg = SamplerConfig {
            rate_hz: 0.0,
            ..Default::default()
        };
        assert!(matches!(
            Sampler::start(sensor, clock, cfg),
            Err(PowerError::InvalidSampler { .. })
        ));
    }

    #[test]
    fn downsampling_keeps_extremes_and_means() {
        let samples: Vec<PowerSample> = (0..100u64)
            .map(|i| PowerReading {
                t_ns: i * 1_000,
                bus_volts: 5.0,
                current_amps: 0.0,
                power_watts: if i == 37 { 50.0 } else { i as f64 },
                flags: ReadingFlags::default(),
            })
            .collect();
        let buckets = downsample(&samples, 10);
        assert_eq!(buckets.len(), 10);
        assert_eq!(buckets.iter().map(|b| b.samples).sum::<usize>(), 100);
        let spike = buckets
            .iter()
            .find(|b| b.start_ns <= 37_000 && 37_000 < b.end_ns)
            .unwrap();
        assert_eq!(spike.max_w, 50.0);
        assert!((buckets[0].mean_w - 4.5).abs() < 1e-9, "{:?}", buckets[0]);
        assert_eq!(buckets[0].min_w, 0.0);
    }
}
