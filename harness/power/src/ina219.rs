//! The INA219 through the real `ina219` driver, over Linux I2C or over [`SimulatedIna219`].

use std::path::Path;

use embedded_hal::i2c::{ErrorKind, I2c, NoAcknowledgeSource};
use ina219::SyncIna219;
use ina219::address::Address;
use ina219::calibration::{IntCalibration, MicroAmpere};
use ina219::configuration::{
    BusVoltageRange, Configuration, MeasuredSignals, OperatingMode, Reset, Resolution,
    ShuntVoltageRange,
};
use ina219::errors::{InitializationErrorReason, MeasurementError};
use linux_embedded_hal::I2cdev;
use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::error::PowerError;
use crate::sim::SimulatedIna219;
use crate::{PowerReading, PowerSensor, ReadingFlags, SensorInfo, Source};

/// ADC resolution or averaging, applied to both the shunt and the bus conversion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdcMode {
    Bits9,
    Bits10,
    Bits11,
    #[default]
    Bits12,
    Avg2,
    Avg4,
    Avg8,
    Avg16,
    Avg32,
    Avg64,
    Avg128,
}

impl AdcMode {
    /// Every mode with the keyword rig files write for it.
    pub const KEYWORDS: [(&'static str, AdcMode); 11] = [
        ("9bit", AdcMode::Bits9),
        ("10bit", AdcMode::Bits10),
        ("11bit", AdcMode::Bits11),
        ("12bit", AdcMode::Bits12),
        ("avg2", AdcMode::Avg2),
        ("avg4", AdcMode::Avg4),
        ("avg8", AdcMode::Avg8),
        ("avg16", AdcMode::Avg16),
        ("avg32", AdcMode::Avg32),
        ("avg64", AdcMode::Avg64),
        ("avg128", AdcMode::Avg128),
    ];

    pub fn keyword(self) -> &'static str {
        Self::KEYWORDS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(k, _)| k)
    }

    /// Time of one conversion (shunt or bus) in microseconds, datasheet table 5.
    pub fn conversion_us(self) -> f64 {
        match self {
            Self::Bits9 => 84.0,
            Self::Bits10 => 148.0,
            Self::Bits11 => 276.0,
            Self::Bits12 => 532.0,
            Self::Avg2 => 1_060.0,
            Self::Avg4 => 2_130.0,
            Self::Avg8 => 4_260.0,
            Self::Avg16 => 8_510.0,
            Self::Avg32 => 17_020.0,
            Self::Avg64 => 34_050.0,
            Self::Avg128 => 68_100.0,
        }
    }

    fn resolution(self) -> Resolution {
        match self {
            Self::Bits9 => Resolution::Res9Bit,
            Self::Bits10 => Resolution::Res10Bit,
            Self::Bits11 => Resolution::Res11Bit,
            Self::Bits12 => Resolution::Res12Bit,
            Self::Avg2 => Resolution::Avg2,
            Self::Avg4 => Resolution::Avg4,
            Self::Avg8 => Resolution::Avg8,
            Self::Avg16 => Resolution::Avg16,
            Self::Avg32 => Resolution::Avg32,
            Self::Avg64 => Resolution::Avg64,
            Self::Avg128 => Resolution::Avg128,
        }
    }
}

/// Bus voltage full-scale range (BRNG).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusRange {
    #[serde(rename = "16v")]
    V16,
    #[default]
    #[serde(rename = "32v")]
    V32,
}

/// Shunt voltage full-scale range (PGA gain).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pga {
    #[serde(rename = "40mv")]
    Mv40,
    #[serde(rename = "80mv")]
    Mv80,
    #[serde(rename = "160mv")]
    Mv160,
    #[default]
    #[serde(rename = "320mv")]
    Mv320,
}

impl Pga {
    fn full_scale_volts(self) -> f64 {
        match self {
            Self::Mv40 => 0.040,
            Self::Mv80 => 0.080,
            Self::Mv160 => 0.160,
            Self::Mv320 => 0.320,
        }
    }
}

/// How an INA219 is wired and configured, as a rig file gives it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ina219Config {
    pub address: u8,
    pub shunt_ohms: f64,
    pub max_current_a: f64,
    pub adc: AdcMode,
    pub bus_range: BusRange,
    pub pga: Pga,
}

impl Default for Ina219Config {
    /// The common breakout board: 0.1 Ω shunt at 0x40, 3.2 A full scale.
    fn default() -> Self {
        Self {
            address: 0x40,
            shunt_ohms: 0.1,
            max_current_a: 3.2,
            adc: AdcMode::Bits12,
            bus_range: BusRange::V32,
            pga: Pga::Mv320,
        }
    }
}

impl Ina219Config {
    pub fn validate(&self) -> Result<(), PowerError> {
        let invalid = |field, reason: String| Err(PowerError::InvalidConfig { field, reason });
        if !(0x40..=0x4F).contains(&self.address) {
            return invalid(
                "address",
                format!(
                    "{:#04x} is outside the ina219 range 0x40–0x4f",
                    self.address
                ),
            );
        }
        if !(self.shunt_ohms.is_finite() && self.shunt_ohms > 0.0 && self.shunt_ohms < 4_000.0) {
            return invalid(
                "shunt_ohms",
                format!(
                    "{} is not a resistance between 0 and 4000 Ω",
                    self.shunt_ohms
                ),
            );
        }
        if !(self.max_current_a.is_finite() && self.max_current_a > 0.0) {
            return invalid(
                "max_current_a",
                format!("{} is not a positive current", self.max_current_a),
            );
        }
        let full_scale = self.max_current_a * self.shunt_ohms;
        // A relative slack of 1e-9 lets the exact full scale (3.2 A × 0.1 Ω = 320 mV) through.
        if full_scale > self.pga.full_scale_volts() * (1.0 + 1e-9) {
            return invalid(
                "max_current_a",
                format!(
                    "{} A through {} Ω drops {:.1} mV, beyond the pga range of ±{:.0} mV",
                    self.max_current_a,
                    self.shunt_ohms,
                    full_scale * 1e3,
                    self.pga.full_scale_volts() * 1e3
                ),
            );
        }
        self.calibration().map(|_| ())
    }

    /// Current_LSB = I_max / 2^15, rounded up to whole µA (the driver's unit) so I_max still fits.
    pub fn current_lsb_ua(&self) -> i64 {
        (self.max_current_a * 1e6 / 32_768.0).ceil() as i64
    }

    /// Power_LSB = 20 · Current_LSB.
    pub fn power_lsb_w(&self) -> f64 {
        20.0 * self.current_lsb_ua() as f64 * 1e-6
    }

    /// Time for one shunt + bus conversion pair (datasheet table 5).
    pub fn conversion_time_ns(&self) -> u64 {
        let pair_us = self
            .configuration()
            .conversion_time_us()
            .unwrap_or_default();
        u64::from(pair_us) * 1_000
    }

    fn calibration(&self) -> Result<IntCalibration, PowerError> {
        let shunt_uohm = (self.shunt_ohms * 1e6).round() as u32;
        IntCalibration::new(MicroAmpere(self.current_lsb_ua()), shunt_uohm).ok_or_else(|| {
            PowerError::InvalidConfig {
                field: "max_current_a",
                reason: format!(
                    "a current lsb of {} µA with {} Ω gives a calibration outside the 16-bit register",
                    self.current_lsb_ua(),
                    self.shunt_ohms
                ),
            }
        })
    }

    fn configuration(&self) -> Configuration {
        Configuration {
            reset: Reset::Run,
            bus_voltage_range: match self.bus_range {
                BusRange::V16 => BusVoltageRange::Fsr16v,
                BusRange::V32 => BusVoltageRange::Fsr32v,
            },
            shunt_voltage_range: match self.pga {
                Pga::Mv40 => ShuntVoltageRange::Fsr40mv,
                Pga::Mv80 => ShuntVoltageRange::Fsr80mv,
                Pga::Mv160 => ShuntVoltageRange::Fsr160mv,
                Pga::Mv320 => ShuntVoltageRange::Fsr320mv,
            },
            bus_resolution: self.adc.resolution(),
            shunt_resolution: self.adc.resolution(),
            operating_mode: OperatingMode::Continous(MeasuredSignals::ShutAndBusVoltage),
        }
    }
}

/// An INA219 read through the `ina219` driver in continuous shunt+bus mode.
pub struct Ina219Sensor<I2C> {
    driver: SyncIna219<I2C, IntCalibration>,
    info: SensorInfo,
    address: u8,
    clock: SharedClock,
    conversion_ns: u64,
}

impl<I2C: I2c> Ina219Sensor<I2C> {
    /// Resets the chip (the driver checks it reads back as an INA219), writes the calibration and
    /// the configuration. `name` is used in every error.
    pub fn new(
        i2c: I2C,
        cfg: &Ina219Config,
        name: impl Into<String>,
        source: Source,
        clock: SharedClock,
    ) -> Result<Self, PowerError> {
        cfg.validate()?;
        let name = name.into();
        let address = Address::from_byte(cfg.address).map_err(|e| PowerError::InvalidConfig {
            field: "address",
            reason: e.to_string(),
        })?;
        let mut driver =
            SyncIna219::new_calibrated(i2c, address, cfg.calibration()?).map_err(|e| {
                match e.reason {
                    InitializationErrorReason::I2cError(err) => i2c_error(&name, cfg.address, err),
                    reason => PowerError::Init {
                        sensor: name.clone(),
                        detail: format!(
                            "the chip did not behave like an ina219 after reset ({reason:?})"
                        ),
                    },
                }
            })?;
        driver
            .set_configuration(cfg.configuration())
            .map_err(|e| i2c_error(&name, cfg.address, e))?;
        Ok(Self {
            driver,
            info: SensorInfo {
                name,
                kind: "ina219".into(),
                source,
                power_resolution_w: Some(cfg.power_lsb_w()),
            },
            address: cfg.address,
            clock,
            conversion_ns: cfg.conversion_time_ns(),
        })
    }

    /// Gives the bus back, leaving the chip as it is.
    pub fn into_inner(self) -> I2C {
        self.driver.destroy()
    }
}

impl Ina219Sensor<I2cdev> {
    /// Opens a real INA219 on a Linux I2C bus such as `/dev/i2c-1`. Labelled `measured`.
    pub fn open_linux(
        i2c_dev: &Path,
        cfg: &Ina219Config,
        clock: SharedClock,
    ) -> Result<Self, PowerError> {
        cfg.validate()?;
        if !i2c_dev.exists() {
            return Err(PowerError::DeviceMissing {
                path: i2c_dev.to_path_buf(),
            });
        }
        let bus = I2cdev::new(i2c_dev).map_err(|e| PowerError::Open {
            path: i2c_dev.to_path_buf(),
            detail: e.to_string(),
        })?;
        let name = format!("ina219 on {} at {:#04x}", i2c_dev.display(), cfg.address);
        Self::new(bus, cfg, name, Source::Measured, clock)
    }
}

impl Ina219Sensor<SimulatedIna219> {
    /// The real driver reading the register model. Labelled `simulated`.
    pub fn simulated(
        chip: SimulatedIna219,
        cfg: &Ina219Config,
        clock: SharedClock,
    ) -> Result<Self, PowerError> {
        let name = chip.name();
        Self::new(chip, cfg, name, Source::Simulated, clock)
    }
}

fn i2c_error(sensor: &str, address: u8, error: impl embedded_hal::i2c::Error) -> PowerError {
    match error.kind() {
        // Linux reports an address NACK as ENXIO; some adapters cannot tell which byte failed.
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address | NoAcknowledgeSource::Unknown) => {
            PowerError::Nack {
                sensor: sensor.to_string(),
                address,
            }
        }
        _ => PowerError::Bus {
            sensor: sensor.to_string(),
            detail: format!("{error:?}"),
        },
    }
}

impl<I2C: I2c + Send> PowerSensor for Ina219Sensor<I2C> {
    fn describe(&self) -> SensorInfo {
        self.info.clone()
    }

    /// Returns the next conversion: when none is ready (CNVR clear) it polls a few times per
    /// conversion time, and gives up after three conversion times, which only a stalled chip exceeds.
    fn read(&mut self) -> Result<PowerReading, PowerError> {
        let started = self.clock.now_ns();
        let give_up = started + 3 * self.conversion_ns;
        let poll_ns = (self.conversion_ns / 8).max(1_000);
        let mut waited = false;
        loop {
            match self.driver.next_measurement() {
                Ok(Some(m)) => {
                    return Ok(PowerReading {
                        t_ns: self.clock.now_ns(),
                        bus_volts: f64::from(m.bus_voltage.voltage_mv()) * 1e-3,
                        current_amps: m.current.0 as f64 * 1e-6,
                        power_watts: m.power.0 as f64 * 1e-6,
                        flags: ReadingFlags {
                            waited_for_conversion: waited,
                        },
                    });
                }
                Ok(None) => {
                    let now = self.clock.now_ns();
                    if now >= give_up {
                        return Err(PowerError::ConversionTimeout {
                            sensor: self.info.name.clone(),
                            waited_us: (now - started) / 1_000,
                        });
                    }
                    waited = true;
                    self.clock.sleep_until(now + poll_ns);
                }
                Err(MeasurementError::MathOverflow(_)) => {
                    return Err(PowerError::Overflow {
                        sensor: self.info.name.clone(),
                    });
                }
                Err(MeasurementError::I2cError(e)) => {
                    return Err(i2c_error(&self.info.name, self.address, e));
                }
                Err(
                    e @ (MeasurementError::ShuntVoltageReadError(_)
                    | MeasurementError::BusVoltageReadError(_)),
                ) => {
                    return Err(PowerError::OutOfRange {
                        sensor: self.info.name.clone(),
                        detail: format!("{e:?}"),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::activity::{ActivityLog, PowerProfile, SyntheticLoad};
    use crate::clock::{Clock, ManualClock};

    fn simulated(
        amps: f64,
        cfg: &Ina219Config,
        chip_address: u8,
    ) -> (
        Result<Ina219Sensor<SimulatedIna219>, PowerError>,
        Arc<ManualClock>,
    ) {
        let clock = ManualClock::shared();
        let load = Arc::new(SyntheticLoad::new(5.0, move |_| amps));
        let chip = SimulatedIna219::new(chip_address, cfg.shunt_ohms, load, clock.clone());
        (Ina219Sensor::simulated(chip, cfg, clock.clone()), clock)
    }

    #[test]
    fn calibration_follows_the_datasheet_formulas() {
        let cfg = Ina219Config::default();
        // 3.2 A / 2^15 = 97.66 µA, rounded up to 98 µA.
        assert_eq!(cfg.current_lsb_ua(), 98);
        assert!((cfg.power_lsb_w() - 0.00196).abs() < 1e-12);
        // trunc(0.04096 / (98e-6 · 0.1)) = 4179, bit 0 dropped.
        assert_eq!(cfg.calibration().unwrap().as_bits(), 4178);
        assert_eq!(cfg.conversion_time_ns(), 1_064_000);
        let avg = Ina219Config {
            adc: AdcMode::Avg128,
            ..cfg
        };
        assert_eq!(avg.conversion_time_ns(), 136_200_000);
    }

    #[test]
    fn rejects_configs_that_cannot_work() {
        let bad_address = Ina219Config {
            address: 0x50,
            ..Default::default()
        };
        assert!(matches!(
            bad_address.validate(),
            Err(PowerError::InvalidConfig {
                field: "address",
                ..
            })
        ));
        let beyond_pga = Ina219Config {
            max_current_a: 1.0,
            pga: Pga::Mv40,
            ..Default::default()
        };
        let err = beyond_pga.validate().unwrap_err().to_string();
        assert!(
            err.contains("max_current_a") && err.contains("100.0 mV"),
            "{err}"
        );
        let no_shunt = Ina219Config {
            shunt_ohms: 0.0,
            ..Default::default()
        };
        assert!(matches!(
            no_shunt.validate(),
            Err(PowerError::InvalidConfig {
                field: "shunt_ohms",
                ..
            })
        ));
    }

    #[test]
    fn config_parses_from_rig_style_fields() {
        let cfg: Ina219Config = serde_json::from_str(
            r#"{"address": 65, "adc": "avg16", "bus_range": "16v", "pga": "80mv"}"#,
        )
        .unwrap();
        assert_eq!(cfg.address, 0x41);
        assert_eq!(cfg.adc, AdcMode::Avg16);
        assert_eq!(cfg.bus_range, BusRange::V16);
        assert_eq!(cfg.pga, Pga::Mv80);
        assert_eq!(cfg.shunt_ohms, 0.1);
    }

    #[test]
    fn real_driver_reads_the_model() {
        let cfg = Ina219Config::default();
        let (sensor, clock) = simulated(0.5, &cfg, 0x40);
        let mut sensor = sensor.unwrap();
        let info = sensor.describe();
        assert_eq!(info.source, Source::Simulated);
        assert_eq!(
            serde_json::to_string(&info.source).unwrap(),
            "\"simulated\""
        );
        let reading = sensor.read().unwrap();
        assert!(
            reading.flags.waited_for_conversion,
            "the first conversion is not ready at once"
        );
        assert!(reading.t_ns >= cfg.conversion_time_ns() && reading.t_ns == clock.now_ns());
        assert!((reading.bus_volts - 5.0).abs() < 0.004, "{reading:?}");
        assert!(
            (reading.current_amps - 0.5).abs() < 0.5 * 0.002,
            "{reading:?}"
        );
        assert!(
            (reading.power_watts - 2.5).abs() < 2.5 * 0.002 + cfg.power_lsb_w(),
            "{reading:?}"
        );
    }

    #[test]
    fn nack_at_the_configured_address_names_sensor_and_address() {
        let cfg = Ina219Config {
            address: 0x41,
            ..Default::default()
        };
        let (sensor, _clock) = simulated(0.5, &cfg, 0x40);
        let err = sensor.err().unwrap();
        assert_eq!(
            err,
            PowerError::Nack {
                sensor: "simulated ina219 at 0x40".into(),
                address: 0x41
            }
        );
        assert!(err.to_string().contains("0x41"), "{err}");
    }

    #[test]
    fn stuck_overflow_is_an_error_naming_the_sensor() {
        // 0.4 A full scale, but the board draws 2 A: the chip's current register overflows.
        let cfg = Ina219Config {
            max_current_a: 0.4,
            ..Default::default()
        };
        let (sensor, _clock) = simulated(2.0, &cfg, 0x40);
        let mut sensor = sensor.unwrap();
        let err = sensor.read().unwrap_err();
        assert_eq!(
            err,
            PowerError::Overflow {
                sensor: "simulated ina219 at 0x40".into()
            }
        );
        assert_eq!(sensor.read().unwrap_err(), err, "it stays in overflow");
    }

    /// A chip whose conversions never complete: the bus register's CNVR bit always reads 0.
    struct NeverReady(SimulatedIna219);

    impl embedded_hal::i2c::ErrorType for NeverReady {
        type Error = ErrorKind;
    }

    impl I2c for NeverReady {
        fn transaction(
            &mut self,
            address: u8,
            operations: &mut [embedded_hal::i2c::Operation<'_>],
        ) -> Result<(), ErrorKind> {
            let reads_bus = matches!(
                operations.first(),
                Some(embedded_hal::i2c::Operation::Write([2]))
            );
            self.0.transaction(address, operations)?;
            if let (true, Some(embedded_hal::i2c::Operation::Read(buf))) =
                (reads_bus, operations.last_mut())
            {
                buf[1] &= !0b10;
            }
            Ok(())
        }
    }

    #[test]
    fn a_chip_that_never_converts_times_out_naming_the_sensor() {
        let cfg = Ina219Config::default();
        let clock = ManualClock::shared();
        let load = Arc::new(SyntheticLoad::new(5.0, |_| 0.5));
        let chip = NeverReady(SimulatedIna219::new(
            0x40,
            cfg.shunt_ohms,
            load,
            clock.clone(),
        ));
        let mut sensor =
            Ina219Sensor::new(chip, &cfg, "stuck ina219", Source::Simulated, clock.clone())
                .unwrap();
        let err = sensor.read().unwrap_err();
        assert!(
            matches!(err, PowerError::ConversionTimeout { ref sensor, waited_us } if sensor == "stuck ina219" && waited_us >= 3 * 1_064),
            "{err:?}"
        );
    }

    #[test]
    fn missing_i2c_device_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i2c-9");
        let err = Ina219Sensor::open_linux(&path, &Ina219Config::default(), ManualClock::shared())
            .err()
            .unwrap();
        assert_eq!(err, PowerError::DeviceMissing { path: path.clone() });
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn a_file_that_is_not_an_i2c_bus_is_refused_with_its_path() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err =
            Ina219Sensor::open_linux(file.path(), &Ina219Config::default(), ManualClock::shared())
                .err()
                .unwrap();
        assert!(
            err.to_string().contains(&file.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn simulated_power_follows_board_activity() {
        let clock = ManualClock::shared();
        let activity = Arc::new(ActivityLog::new(clock.clone()));
        let profile = PowerProfile {
            idle_watts: 2.0,
            active_watts: 6.0,
            bus_volts: 5.0,
            shunt_ohms: 0.1,
        };
        let chip = SimulatedIna219::from_profile(0x40, profile, activity.clone(), clock.clone());
        let mut sensor =
            Ina219Sensor::simulated(chip, &Ina219Config::default(), clock.clone()).unwrap();
        let idle = sensor.read().unwrap();
        activity.set_busy(true);
        clock.advance(5_000_000);
        let busy = sensor.read().unwrap();
        let lsb = Ina219Config::default().power_lsb_w();
        assert!(
            (idle.power_watts - 2.0).abs() < 2.0 * 0.002 + lsb,
            "{idle:?}"
        );
        assert!(
            (busy.power_watts - 6.0).abs() < 6.0 * 0.002 + lsb,
            "{busy:?}"
        );
    }
}
