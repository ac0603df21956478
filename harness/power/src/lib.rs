//! Power sensors, the sampler that runs one beside a board session, and energy integration.
//!
//! Sensors sit behind [`PowerSensor`]: a real INA219 on Linux I2C ([`Ina219Sensor::open_linux`]),
//! Jetson onboard INA3221 rails ([`JetsonRails`]) and a register-level INA219 model
//! ([`SimulatedIna219`]) read through the real `ina219` driver. Time comes from a [`Clock`] so the
//! same code runs on the monotonic clock in a run and on virtual time in tests.
//!
//! The runner's flow with the simulated sensor (use [`MonotonicClock::shared`] in a real run;
//! the virtual clock here only makes the example instant):
//!
//! ```
//! use std::sync::Arc;
//! use gauntlet_power::*;
//!
//! let clock = ManualClock::shared();
//! let activity = Arc::new(ActivityLog::new(clock.clone()));
//! let profile = PowerProfile { idle_watts: 2.0, active_watts: 5.0, bus_volts: 5.0, shunt_ohms: 0.1 };
//! let cfg = Ina219Config::default();
//! let chip = SimulatedIna219::from_profile(cfg.address, profile, activity.clone(), clock.clone());
//! let sensor = Ina219Sensor::simulated(chip, &cfg, clock.clone())?;
//! // The board session toggles activity and marks windows on the same clock (scripted ahead
//! // here, because a sampler on virtual time races ahead as fast as it can):
//! let idle = Window { start_ns: 100_000_000, end_ns: 900_000_000 };
//! for k in 0..20u64 {
//!     let start = 1_000_000_000 + k * 50_000_000;
//!     activity.set_busy_at(start, true);
//!     activity.set_busy_at(start + 20_000_000, false);
//! }
//! let window = MeasuredWindow { start_ns: 1_000_000_000, end_ns: 2_000_000_000, inferences: 20 };
//! let sampler = Sampler::start(sensor, clock.clone(), SamplerConfig {
//!     duration_ns: Some(3_000_000_000),
//!     ..Default::default()
//! })?;
//! let trace = sampler.join()?; // a real run calls `stop()` when the session ends
//! let energy = energy_per_inference(&trace.samples, idle, &[window])?;
//! // 3 W above idle for 20 ms per inference ≈ 60 mJ.
//! assert!((energy.energy_per_inference_j - 0.060).abs() < 0.060 * 0.02);
//! assert_eq!(trace.sensor.source, Source::Simulated);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod activity;
mod clock;
mod energy;
mod error;
mod ina219;
mod jetson;
mod sampler;
mod sim;

pub use activity::{ActivityLoad, ActivityLog, LoadModel, PowerProfile, SyntheticLoad};
pub use clock::{Clock, ManualClock, MonotonicClock, SharedClock};
pub use energy::{
    EnergyError, EnergyEstimate, MeasuredWindow, Window, WindowEnergy, energy_per_inference,
    integrate_joules,
};
pub use error::PowerError;
pub use ina219::{AdcMode, BusRange, Ina219Config, Ina219Sensor, Pga};
pub use jetson::{JetsonRails, RailInfo, RailLayout};
pub use sampler::{Bucket, PowerTrace, Sampler, SamplerConfig, SamplerStats, downsample};
pub use sim::SimulatedIna219;

use serde::{Deserialize, Serialize};

/// Whether a figure came from an instrument or from a model of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Measured,
    Simulated,
}

/// What a sensor is, for reports and error messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorInfo {
    /// Human-readable identity used in every error, e.g. `ina219 on /dev/i2c-1 at 0x40`.
    pub name: String,
    /// Sensor family: `ina219`, `ina3221`.
    pub kind: String,
    pub source: Source,
    /// Smallest power step the sensor reports, when known (one power-register LSB for the INA219).
    pub power_resolution_w: Option<f64>,
}

/// Conditions attached to one reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadingFlags {
    /// The sensor had no fresh conversion at the tick and the reading waited for one (CNVR poll).
    pub waited_for_conversion: bool,
}

/// One timestamped reading. `t_ns` is nanoseconds since the epoch of the [`Clock`] the sensor was
/// built with; the sampler and the activity log must share that clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerReading {
    pub t_ns: u64,
    pub bus_volts: f64,
    pub current_amps: f64,
    pub power_watts: f64,
    pub flags: ReadingFlags,
}

/// A reading as kept in a trace.
pub type PowerSample = PowerReading;

/// A power instrument at the hardware boundary.
pub trait PowerSensor: Send {
    fn describe(&self) -> SensorInfo;
    fn read(&mut self) -> Result<PowerReading, PowerError>;
}

impl PowerSensor for Box<dyn PowerSensor> {
    fn describe(&self) -> SensorInfo {
        (**self).describe()
    }
    fn read(&mut self) -> Result<PowerReading, PowerError> {
        (**self).read()
    }
}
