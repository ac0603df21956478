//! A register-level INA219 on an I2C bus, so the real `ina219` driver runs in CI without a chip.
//!
//! Modelled from the datasheet rather than from the driver: registers 00–05, power-on config
//! 0x399F, self-clearing reset, calibration arithmetic with the chip's integer truncation,
//! shunt LSB 10 µV clamped to the PGA range, bus LSB 4 mV clamped to BRNG, conversions that run
//! back to back from the last configuration write with the datasheet's conversion times, CNVR set
//! when a conversion completes and cleared by a power read or a configuration write, OVF when
//! the current or power computation leaves its register, and NACK at any other address.
//! Simplification: every ADC resolution reports at 10 µV / 4 mV steps (no coarser steps at 9–11 bits).

use std::sync::Arc;

use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

use crate::activity::{ActivityLoad, ActivityLog, LoadModel, PowerProfile};
use crate::clock::SharedClock;

const REG_CONFIG: u8 = 0;
const REG_SHUNT: u8 = 1;
const REG_BUS: u8 = 2;
const REG_POWER: u8 = 3;
const REG_CURRENT: u8 = 4;
const REG_CALIBRATION: u8 = 5;
const POWER_ON_CONFIG: u16 = 0x399F;
const RESET_BIT: u16 = 1 << 15;
const SHUNT_LSB_VOLTS: f64 = 10e-6;
const BUS_LSB_VOLTS: f64 = 4e-3;
/// Points at which the load is sampled across one shunt conversion: the ADC integrates over its
/// conversion time, so a burst edge inside a conversion yields an intermediate value.
const SUBSAMPLES_PER_CONVERSION: u64 = 8;

/// The results of one conversion, as held in the shunt and bus registers.
#[derive(Debug, Clone, Copy, Default)]
struct Conversion {
    shunt_raw: i16,
    /// Bus voltage in 4 mV units (bits 15–3 of the bus register).
    bus_raw: u16,
}

pub struct SimulatedIna219 {
    address: u8,
    shunt_ohms: f64,
    load: Arc<dyn LoadModel>,
    clock: SharedClock,
    pointer: u8,
    config: u16,
    calibration: u16,
    /// When the current conversion sequence started (last configuration write).
    started_ns: u64,
    /// When CNVR was last cleared.
    cnvr_cleared_ns: u64,
    /// Register contents carried over from before the last configuration write, shown until the
    /// first conversion of the new sequence completes.
    latched: Conversion,
}

impl SimulatedIna219 {
    pub fn new(address: u8, shunt_ohms: f64, load: Arc<dyn LoadModel>, clock: SharedClock) -> Self {
        let now = clock.now_ns();
        Self {
            address,
            shunt_ohms,
            load,
            clock,
            pointer: REG_CONFIG,
            config: POWER_ON_CONFIG,
            calibration: 0,
            started_ns: now,
            cnvr_cleared_ns: now,
            latched: Conversion::default(),
        }
    }

    /// A board following `profile`, busy whenever `activity` says so.
    pub fn from_profile(
        address: u8,
        profile: PowerProfile,
        activity: Arc<ActivityLog>,
        clock: SharedClock,
    ) -> Self {
        let load = Arc::new(ActivityLoad::new(profile, activity));
        Self::new(address, profile.shunt_ohms, load, clock)
    }

    pub fn address(&self) -> u8 {
        self.address
    }

    pub fn name(&self) -> String {
        format!("simulated ina219 at {:#04x}", self.address)
    }

    fn conversions_completed(&self, at_ns: u64) -> u64 {
        let Some(period) = conversion_period_ns(self.config) else {
            return 0;
        };
        let done = at_ns.saturating_sub(self.started_ns) / period;
        if self.config & 0b100 == 0 {
            done.min(1)
        } else {
            done
        }
    }

    fn conversion_at(&self, now_ns: u64) -> Conversion {
        let n = self.conversions_completed(now_ns);
        let Some(period) = conversion_period_ns(self.config).filter(|_| n > 0) else {
            return self.latched;
        };
        let begin = self.started_ns + (n - 1) * period;
        let mode = self.config & 0b11;
        let shunt_ns = if mode & 0b01 != 0 {
            adc_time_ns(self.config >> 3)
        } else {
            0
        };
        let mut conversion = self.latched;
        if shunt_ns > 0 {
            let mean_amps = (0..SUBSAMPLES_PER_CONVERSION)
                .map(|k| {
                    let t = begin + (2 * k + 1) * shunt_ns / (2 * SUBSAMPLES_PER_CONVERSION);
                    self.load.current_amps(t)
                })
                .sum::<f64>()
                / SUBSAMPLES_PER_CONVERSION as f64;
            let full_scale = 4000.0 * f64::from(1u16 << ((self.config >> 11) & 0b11));
            let raw = (mean_amps * self.shunt_ohms / SHUNT_LSB_VOLTS).round();
            conversion.shunt_raw = raw.clamp(-full_scale, full_scale) as i16;
        }
        if mode & 0b10 != 0 {
            let bus_ns = adc_time_ns(self.config >> 7);
            let volts = self.load.bus_volts(begin + shunt_ns + bus_ns / 2);
            let full_scale = if self.config & (1 << 13) != 0 {
                8000.0
            } else {
                4000.0
            };
            conversion.bus_raw = (volts / BUS_LSB_VOLTS).round().clamp(0.0, full_scale) as u16;
        }
        conversion
    }

    /// The chip's current and power arithmetic on one conversion: (current, power, overflow).
    fn derived(&self, c: Conversion) -> (i16, u16, bool) {
        let current = i32::from(c.shunt_raw) * i32::from(self.calibration) / 4096;
        let current_overflow = i16::try_from(current).is_err();
        let current = current.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        let power = current.unsigned_abs() * u32::from(c.bus_raw) / 5000;
        let power_overflow = power > u32::from(u16::MAX);
        (
            current as i16,
            power.min(u32::from(u16::MAX)) as u16,
            current_overflow || power_overflow,
        )
    }

    fn read_register(&mut self, now_ns: u64) -> u16 {
        let conversion = self.conversion_at(now_ns);
        match self.pointer {
            REG_CONFIG => self.config,
            REG_SHUNT => conversion.shunt_raw as u16,
            REG_BUS => {
                let ready = self.conversions_completed(now_ns)
                    > self.conversions_completed(self.cnvr_cleared_ns);
                let (_, _, overflow) = self.derived(conversion);
                (conversion.bus_raw << 3) | (u16::from(ready) << 1) | u16::from(overflow)
            }
            REG_POWER => {
                self.cnvr_cleared_ns = now_ns;
                self.derived(conversion).1
            }
            REG_CURRENT => self.derived(conversion).0 as u16,
            _ => self.calibration,
        }
    }

    fn write_register(&mut self, register: u8, value: u16, now_ns: u64) {
        match register {
            REG_CONFIG => {
                self.latched = self.conversion_at(now_ns);
                if value & RESET_BIT != 0 {
                    self.config = POWER_ON_CONFIG;
                    self.calibration = 0;
                    self.latched = Conversion::default();
                } else {
                    self.config = value;
                }
                self.started_ns = now_ns;
                self.cnvr_cleared_ns = now_ns;
            }
            // Bit 0 of the calibration register is not implemented in the chip.
            REG_CALIBRATION => self.calibration = value & !1,
            // The result registers are read-only; the chip ignores writes to them.
            _ => {}
        }
    }
}

/// Time for one shunt or bus conversion given the 4-bit ADC field (datasheet table 5).
fn adc_time_ns(field: u16) -> u64 {
    let micros = if field & 0b1000 == 0 {
        [84, 148, 276, 532][usize::from(field & 0b11)]
    } else {
        [532, 1_060, 2_130, 4_260, 8_510, 17_020, 34_050, 68_100][usize::from(field & 0b111)]
    };
    micros * 1_000
}

/// Time between conversions for `config`, or `None` when the ADC is off or powered down.
fn conversion_period_ns(config: u16) -> Option<u64> {
    let mode = config & 0b11;
    if mode == 0 {
        return None;
    }
    let shunt = if mode & 0b01 != 0 {
        adc_time_ns(config >> 3)
    } else {
        0
    };
    let bus = if mode & 0b10 != 0 {
        adc_time_ns(config >> 7)
    } else {
        0
    };
    Some(shunt + bus)
}

impl ErrorType for SimulatedIna219 {
    type Error = ErrorKind;
}

impl I2c for SimulatedIna219 {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), ErrorKind> {
        if address != self.address {
            return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        }
        let now_ns = self.clock.now_ns();
        for operation in operations {
            match operation {
                Operation::Write(bytes) => {
                    let Some((&pointer, data)) = bytes.split_first() else {
                        continue;
                    };
                    if pointer > REG_CALIBRATION {
                        return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data));
                    }
                    self.pointer = pointer;
                    match data {
                        [] => {}
                        &[high, low] => {
                            self.write_register(pointer, u16::from_be_bytes([high, low]), now_ns)
                        }
                        _ => return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data)),
                    }
                }
                Operation::Read(buffer) => {
                    let bytes = self.read_register(now_ns).to_be_bytes();
                    for (i, byte) in buffer.iter_mut().enumerate() {
                        *byte = bytes[i % 2];
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::SyntheticLoad;
    use crate::clock::ManualClock;

    fn chip(amps: f64, volts: f64) -> (SimulatedIna219, Arc<ManualClock>) {
        let clock = ManualClock::shared();
        let load = Arc::new(SyntheticLoad::new(volts, move |_| amps));
        (SimulatedIna219::new(0x40, 0.1, load, clock.clone()), clock)
    }

    fn read(chip: &mut SimulatedIna219, register: u8) -> u16 {
        let mut buf = [0u8; 2];
        chip.write_read(0x40, &[register], &mut buf).unwrap();
        u16::from_be_bytes(buf)
    }

    fn write(chip: &mut SimulatedIna219, register: u8, value: u16) {
        let [high, low] = value.to_be_bytes();
        chip.write(0x40, &[register, high, low]).unwrap();
    }

    #[test]
    fn powers_on_with_datasheet_defaults_and_reset_self_clears() {
        let (mut chip, clock) = chip(0.25, 5.0);
        assert_eq!(read(&mut chip, REG_CONFIG), 0x399F);
        write(&mut chip, REG_CALIBRATION, 4097);
        assert_eq!(
            read(&mut chip, REG_CALIBRATION),
            4096,
            "bit 0 is not implemented"
        );
        write(&mut chip, REG_CONFIG, 0x019F);
        assert_eq!(read(&mut chip, REG_CONFIG), 0x019F);
        clock.advance(5_000_000);
        assert_eq!(read(&mut chip, REG_SHUNT), 2500);
        write(&mut chip, REG_CONFIG, 0x8000);
        assert_eq!(read(&mut chip, REG_CONFIG), 0x399F);
        assert_eq!(read(&mut chip, REG_CALIBRATION), 0);
        assert_eq!(
            read(&mut chip, REG_SHUNT),
            0,
            "registers clear on reset until a conversion completes"
        );
    }

    #[test]
    fn computes_registers_with_the_chip_arithmetic() {
        let (mut chip, clock) = chip(0.25, 5.0);
        write(&mut chip, REG_CALIBRATION, 4096);
        write(&mut chip, REG_CONFIG, 0x399F);
        clock.advance(1_064_000);
        assert_eq!(read(&mut chip, REG_SHUNT), 2500, "25 mV at 10 µV/LSB");
        assert_eq!(read(&mut chip, REG_BUS) >> 3, 1250, "5 V at 4 mV/LSB");
        assert_eq!(read(&mut chip, REG_CURRENT), 2500, "shunt × 4096 / 4096");
        assert_eq!(read(&mut chip, REG_POWER), 625, "2500 × 1250 / 5000");
    }

    #[test]
    fn cnvr_sets_after_the_conversion_time_and_clears_on_power_read() {
        let (mut chip, clock) = chip(0.25, 5.0);
        // 9-bit shunt and bus: 84 µs each.
        write(&mut chip, REG_CONFIG, 0x3807);
        assert_eq!(read(&mut chip, REG_BUS) & 0b10, 0);
        clock.advance(167_000);
        assert_eq!(
            read(&mut chip, REG_BUS) & 0b10,
            0,
            "one conversion takes 168 µs"
        );
        clock.advance(1_000);
        assert_eq!(read(&mut chip, REG_BUS) & 0b10, 0b10);
        read(&mut chip, REG_POWER);
        assert_eq!(
            read(&mut chip, REG_BUS) & 0b10,
            0,
            "a power read clears CNVR"
        );
        clock.advance(168_000);
        assert_eq!(read(&mut chip, REG_BUS) & 0b10, 0b10);
    }

    #[test]
    fn overflow_sets_ovf_and_saturates() {
        // 3 A through 0.1 Ω is 300 mV; a calibration of 31506 makes the current overflow.
        let (mut chip, clock) = chip(3.0, 5.0);
        write(&mut chip, REG_CALIBRATION, 31506);
        write(&mut chip, REG_CONFIG, 0x399F);
        clock.advance(2_000_000);
        assert_eq!(read(&mut chip, REG_BUS) & 1, 1);
        assert_eq!(read(&mut chip, REG_CURRENT), i16::MAX as u16);
    }

    #[test]
    fn shunt_clamps_to_the_pga_range() {
        // 1 A through 0.1 Ω is 100 mV, beyond the ±40 mV range (PGA bits 00).
        let (mut chip, clock) = chip(1.0, 5.0);
        write(&mut chip, REG_CONFIG, 0x219F);
        clock.advance(2_000_000);
        assert_eq!(read(&mut chip, REG_SHUNT), 4000);
    }

    #[test]
    fn wrong_address_and_bad_register_are_not_acknowledged() {
        let (mut chip, _clock) = chip(0.25, 5.0);
        let mut buf = [0u8; 2];
        assert_eq!(
            chip.write_read(0x41, &[0], &mut buf),
            Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))
        );
        assert_eq!(
            chip.write_read(0x40, &[6], &mut buf),
            Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data))
        );
    }

    #[test]
    fn repeated_start_transactions_read_several_registers() {
        let (mut chip, clock) = chip(0.25, 5.0);
        write(&mut chip, REG_CALIBRATION, 4096);
        clock.advance(2_000_000);
        let (mut bus, mut power) = ([0u8; 2], [0u8; 2]);
        chip.transaction(
            0x40,
            &mut [
                Operation::Write(&[REG_BUS]),
                Operation::Read(&mut bus),
                Operation::Write(&[REG_POWER]),
                Operation::Read(&mut power),
            ],
        )
        .unwrap();
        assert_eq!(u16::from_be_bytes(bus) >> 3, 1250);
        assert_eq!(u16::from_be_bytes(power), 625);
    }
}
