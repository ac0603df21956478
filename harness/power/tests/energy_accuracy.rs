//! Acceptance: synthetic current traces of known energy, read by the real `ina219` driver from
//! the register model, sampled and integrated on virtual time.

use std::sync::Arc;

use gauntlet_power::{
    ActivityLog, Clock, Ina219Config, Ina219Sensor, ManualClock, MeasuredWindow, PowerProfile,
    PowerSensor, Sampler, SamplerConfig, SimulatedIna219, Source, SyntheticLoad, Window,
    energy_per_inference,
};

const SECOND: u64 = 1_000_000_000;
const BUS_VOLTS: f64 = 5.0;
const IDLE_AMPS: f64 = 0.4;
const ACTIVE_AMPS: f64 = 1.2;
const IDLE: Window = Window {
    start_ns: SECOND / 2,
    end_ns: 5 * SECOND / 2,
};
const FIRST_BURST_NS: u64 = 3 * SECOND;
const WINDOWS: u64 = 5;
const WINDOW_NS: u64 = 10 * SECOND;

#[derive(Debug, Clone, Copy)]
struct Bursts {
    hz: f64,
    duty: f64,
}

impl Bursts {
    fn period_ns(self) -> u64 {
        (1e9 / self.hz).round() as u64
    }
    fn burst_ns(self) -> u64 {
        (self.duty * self.period_ns() as f64).round() as u64
    }
    fn per_window(self) -> u64 {
        WINDOW_NS.div_ceil(self.period_ns())
    }
    fn end_ns(self) -> u64 {
        FIRST_BURST_NS + WINDOWS * self.per_window() * self.period_ns()
    }
    /// Each burst is one inference drawing the extra current for `burst_ns`.
    fn true_joules_per_inference(self) -> f64 {
        (ACTIVE_AMPS - IDLE_AMPS) * BUS_VOLTS * self.burst_ns() as f64 * 1e-9
    }
}

/// Relative error of the estimated energy per inference for `bursts` sampled at `sample_hz`.
fn relative_error(bursts: Bursts, sample_hz: f64, dither: bool) -> f64 {
    let clock = ManualClock::shared();
    let (period, burst, end) = (bursts.period_ns(), bursts.burst_ns(), bursts.end_ns());
    let load = SyntheticLoad::new(BUS_VOLTS, move |t| {
        let bursting = (FIRST_BURST_NS..end).contains(&t) && (t - FIRST_BURST_NS) % period < burst;
        if bursting { ACTIVE_AMPS } else { IDLE_AMPS }
    });
    let cfg = Ina219Config::default();
    let chip = SimulatedIna219::new(cfg.address, cfg.shunt_ohms, Arc::new(load), clock.clone());
    let sensor = Ina219Sensor::simulated(chip, &cfg, clock.clone()).unwrap();
    let sampling = SamplerConfig {
        rate_hz: sample_hz,
        duration_ns: Some(end + 2 * SECOND),
        dither,
        ..Default::default()
    };
    let trace = Sampler::start(sensor, clock, sampling)
        .unwrap()
        .join()
        .unwrap();
    assert!(trace.error.is_none(), "{:?}", trace.error);
    assert_eq!(trace.sensor.source, Source::Simulated);

    let span = bursts.per_window() * period;
    let windows: Vec<MeasuredWindow> = (0..WINDOWS)
        .map(|i| MeasuredWindow {
            start_ns: FIRST_BURST_NS + i * span,
            end_ns: FIRST_BURST_NS + (i + 1) * span,
            inferences: bursts.per_window(),
        })
        .collect();
    let estimate = energy_per_inference(&trace.samples, IDLE, &windows).unwrap();
    let truth = bursts.true_joules_per_inference();
    (estimate.energy_per_inference_j - truth) / truth
}

const SCENARIOS: [Bursts; 5] = [
    Bursts { hz: 7.0, duty: 0.1 },
    Bursts { hz: 7.0, duty: 0.7 },
    Bursts {
        hz: 23.0,
        duty: 0.3,
    },
    Bursts {
        hz: 47.0,
        duty: 0.1,
    },
    Bursts {
        hz: 113.0,
        duty: 0.5,
    },
];

#[test]
fn energy_per_inference_is_within_2_percent_at_350_hz_and_above() {
    for bursts in SCENARIOS {
        for (sample_hz, dither) in [(350.0, false), (350.0, true), (1_000.0, false)] {
            let error = relative_error(bursts, sample_hz, dither);
            eprintln!(
                "{bursts:?} at {sample_hz} Hz (dither {dither}): {:+.3} %",
                error * 100.0
            );
            assert!(
                error.abs() <= 0.02,
                "{bursts:?} at {sample_hz} Hz erred by {:.2} %",
                error * 100.0
            );
        }
    }
}

/// Documents the error growth at 1 Hz. A window mean cannot leave [idle, active] power, so the
/// relative error is bounded by −100 % and 1/duty − 1. On a regular 1 Hz grid every burst train
/// with a whole-number frequency is phase-locked to the ticks and each sample sees the same
/// phase (here: always idle, −100 %); dithered 1 Hz sampling is unbiased but sees only ten
/// samples per 10 s window, so it still errs by far more than the 2 % met at 350 Hz.
#[test]
fn error_at_1_hz_grows_within_the_two_level_bound() {
    let mut worst = [0.0f64; 2];
    for bursts in SCENARIOS {
        for (slot, dither) in [false, true].into_iter().enumerate() {
            let error = relative_error(bursts, 1.0, dither);
            eprintln!(
                "{bursts:?} at 1 Hz (dither {dither}): {:+.1} %",
                error * 100.0
            );
            let ceiling = (1.0 / bursts.duty - 1.0).max(1.0);
            assert!(
                error.abs() <= ceiling + 0.02,
                "{bursts:?}: {:.1} % beyond the two-level bound",
                error * 100.0
            );
            worst[slot] = worst[slot].max(error.abs());
        }
    }
    assert!(
        worst[0] > 0.9,
        "the phase-locked regular grid should miss the bursts, worst {:.1} %",
        worst[0] * 100.0
    );
    assert!(
        worst[1] > 0.05,
        "ten samples per window should err beyond 5 %, worst {:.1} %",
        worst[1] * 100.0
    );
}

/// 2 ms bursts every 20 ms are phase-locked to a 350 Hz grid (exactly 7 ticks per burst), so a
/// regular grid sees every burst at the same phase; stratified sampling (dither) removes the bias.
#[test]
fn dither_removes_aliasing_of_phase_locked_bursts() {
    let locked = Bursts {
        hz: 50.0,
        duty: 0.1,
    };
    let regular = relative_error(locked, 350.0, false);
    let dithered = relative_error(locked, 350.0, true);
    eprintln!(
        "phase-locked {locked:?} at 350 Hz: regular {:+.2} %, dithered {:+.2} %",
        regular * 100.0,
        dithered * 100.0
    );
    assert!(
        regular.abs() > 0.05,
        "the regular grid should alias, erred {:.2} %",
        regular * 100.0
    );
    assert!(
        dithered.abs() <= 0.02,
        "dithered sampling erred {:.2} %",
        dithered * 100.0
    );
}

/// The runner's path: the board toggles busy/idle, the simulated sensor follows it, and the
/// variant that is busy longer per inference costs more energy.
#[test]
fn activity_driven_variants_rank_by_busy_time() {
    let profile = PowerProfile {
        idle_watts: 2.0,
        active_watts: 6.5,
        bus_volts: BUS_VOLTS,
        shunt_ohms: 0.1,
    };
    let cfg = Ina219Config::default();
    let mut per_variant = Vec::new();
    for busy_ms in [20u64, 45] {
        let clock = ManualClock::shared();
        let activity = Arc::new(ActivityLog::new(clock.clone()));
        let chip =
            SimulatedIna219::from_profile(cfg.address, profile, activity.clone(), clock.clone());
        let sensor = Ina219Sensor::simulated(chip, &cfg, clock.clone()).unwrap();
        assert_eq!(sensor.describe().source, Source::Simulated);
        // Inferences every 100 ms from 3 s to 13 s, scripted ahead on the virtual clock.
        let inferences = 100;
        for k in 0..inferences {
            let start = FIRST_BURST_NS + k * SECOND / 10;
            activity.set_busy_at(start, true);
            activity.set_busy_at(start + busy_ms * 1_000_000, false);
        }
        let window = MeasuredWindow {
            start_ns: FIRST_BURST_NS,
            end_ns: FIRST_BURST_NS + 10 * SECOND,
            inferences,
        };
        let sampling = SamplerConfig {
            duration_ns: Some(window.end_ns + SECOND),
            ..Default::default()
        };
        let trace = Sampler::start(sensor, clock.clone(), sampling)
            .unwrap()
            .join()
            .unwrap();
        assert!(!trace.stats.dropped_flag, "{:?}", trace.stats);
        let estimate = energy_per_inference(&trace.samples, IDLE, &[window]).unwrap();
        let truth = (profile.active_watts - profile.idle_watts)
            * activity.busy_ns_between(window.start_ns, window.end_ns) as f64
            * 1e-9
            / inferences as f64;
        let error = (estimate.energy_per_inference_j - truth) / truth;
        assert!(
            error.abs() <= 0.02,
            "busy {busy_ms} ms: {:.2} % off",
            error * 100.0
        );
        assert!(clock.now_ns() >= window.end_ns);
        per_variant.push(estimate.energy_per_inference_j);
    }
    assert!(per_variant[1] > per_variant[0] * 2.0, "{per_variant:?}");
}
