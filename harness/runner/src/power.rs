//! A board's power sensor, sampled on its own thread beside the session.

use std::sync::Arc;

use gauntlet_power::{
    ActivityLog, Ina219Config, Ina219Sensor, JetsonRails, MonotonicClock, PowerError, PowerProfile,
    PowerSensor, PowerTrace, Sampler, SamplerConfig, SharedClock, SimulatedIna219,
};
use gauntlet_spec::{Board, PowerSensorSpec, SIMULATED_SHUNT_OHMS, simulated_full_scale_a};

pub struct PowerMonitor {
    sampler: Sampler,
    /// Drives the simulated sensor: busy while the board computes.
    activity: Option<Arc<ActivityLog>>,
    clock: SharedClock,
}

impl PowerMonitor {
    /// Starts the board's sensor, if it has one. An error names the board and the sensor; the
    /// session goes on without power figures.
    pub fn start(board: &Board) -> Result<Option<PowerMonitor>, String> {
        let Some(spec) = &board.power else {
            return Ok(None);
        };
        let clock: SharedClock = MonotonicClock::shared();
        let fail = |e: PowerError| format!("start the power sensor of board `{}`: {e}", board.id);
        let (sensor, activity, rate): (Box<dyn PowerSensor>, _, _) = match spec {
            PowerSensorSpec::Ina219 {
                i2c_bus,
                address,
                shunt_ohms,
                max_current_a,
                adc,
                sample_hz,
            } => {
                let config = Ina219Config {
                    address: *address,
                    shunt_ohms: *shunt_ohms,
                    max_current_a: *max_current_a,
                    adc: *adc,
                    ..Ina219Config::default()
                };
                let sensor =
                    Ina219Sensor::open_linux(i2c_bus, &config, clock.clone()).map_err(fail)?;
                (Box::new(sensor), None, *sample_hz)
            }
            PowerSensorSpec::JetsonRails {
                hwmon,
                rails,
                sample_hz,
            } => {
                let rail = rails.first().map(String::as_str).unwrap_or("VDD_IN");
                let sensor = JetsonRails::open(hwmon, rail, clock.clone()).map_err(fail)?;
                (Box::new(sensor), None, *sample_hz)
            }
            PowerSensorSpec::Simulated {
                idle_watts,
                active_watts,
                bus_volts,
                sample_hz,
            } => {
                let activity = Arc::new(ActivityLog::new(clock.clone()));
                let profile = PowerProfile {
                    idle_watts: *idle_watts,
                    active_watts: *active_watts,
                    bus_volts: *bus_volts,
                    shunt_ohms: SIMULATED_SHUNT_OHMS,
                };
                let config = Ina219Config {
                    shunt_ohms: SIMULATED_SHUNT_OHMS,
                    max_current_a: simulated_full_scale_a(*active_watts, *bus_volts),
                    ..Ina219Config::default()
                };
                let chip = SimulatedIna219::from_profile(
                    config.address,
                    profile,
                    activity.clone(),
                    clock.clone(),
                );
                let sensor = Ina219Sensor::simulated(chip, &config, clock.clone()).map_err(fail)?;
                (Box::new(sensor), Some(activity), *sample_hz)
            }
        };
        let config = SamplerConfig {
            rate_hz: rate,
            // The simulated load switches in step with requests: a regular grid could alias.
            dither: activity.is_some(),
            ..SamplerConfig::default()
        };
        let sampler = Sampler::start(sensor, clock.clone(), config).map_err(fail)?;
        Ok(Some(PowerMonitor {
            sampler,
            activity,
            clock,
        }))
    }

    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    pub fn set_busy(&self, busy: bool) {
        if let Some(activity) = &self.activity {
            activity.set_busy(busy);
        }
    }

    pub fn stop(self) -> Result<PowerTrace, PowerError> {
        self.sampler.stop()
    }
}
