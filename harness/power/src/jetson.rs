//! Jetson onboard power rails: INA3221 channels exposed through sysfs.
//!
//! Two layouts exist. JetPack 5/6 (upstream `ina3221` hwmon driver, e.g.
//! `/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/`): `in{N}_label` names channel N,
//! `in{N}_input` is its bus voltage in mV and `curr{N}_input` its current in mA; power is their
//! product. JetPack 4 (NVIDIA's `ina3221x` IIO driver, e.g.
//! `/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/`): `rail_name_{K}` names channel K with
//! `in_voltage{K}_input` (mV), `in_current{K}_input` (mA) and `in_power{K}_input` (mW).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::error::PowerError;
use crate::{PowerReading, PowerSensor, ReadingFlags, SensorInfo, Source};

/// How deep below the root to look: from `/sys/bus/i2c/drivers`, `ina3221/1-0040/hwmon/hwmon3`
/// is four levels down.
const MAX_DEPTH: usize = 4;
/// Sysfs links that lead back up the tree or elsewhere; following them only wastes reads.
const SKIPPED_LINKS: &[&str] = &[
    "subsystem",
    "driver",
    "device",
    "of_node",
    "firmware_node",
    "power",
    "module",
    "supplier",
    "consumer",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RailLayout {
    /// JetPack 5/6 hwmon files, channel N.
    Hwmon,
    /// JetPack 4 IIO files, channel K.
    Iio,
}

/// One rail found under a sysfs root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RailInfo {
    pub name: String,
    pub dir: PathBuf,
    pub channel: u32,
    pub layout: RailLayout,
}

/// One onboard rail read as a [`PowerSensor`]. Labelled `measured`.
pub struct JetsonRails {
    rail: RailInfo,
    info: SensorInfo,
    clock: SharedClock,
}

impl JetsonRails {
    /// Rails under `root` (a sysfs directory such as `/sys/bus/i2c/drivers/ina3221` or
    /// `/sys/class/hwmon`, or a fixture tree), in discovery order.
    pub fn list(root: &Path) -> Result<Vec<RailInfo>, PowerError> {
        let mut rails = Vec::new();
        collect(root, 0, &mut rails)?;
        rails.sort_by(|a, b| (&a.dir, a.channel).cmp(&(&b.dir, b.channel)));
        Ok(rails)
    }

    /// Opens the rail named `rail` (e.g. `VDD_IN` on Orin, `POM_5V_IN` on Nano) under `root`.
    pub fn open(root: &Path, rail: &str, clock: SharedClock) -> Result<Self, PowerError> {
        let rails = Self::list(root)?;
        let Some(found) = rails.iter().find(|r| r.name == rail) else {
            return Err(PowerError::RailNotFound {
                rail: rail.to_string(),
                root: root.to_path_buf(),
                available: rails
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let info = SensorInfo {
            name: format!("jetson rail {} ({})", found.name, found.dir.display()),
            kind: "ina3221".into(),
            source: Source::Measured,
            power_resolution_w: None,
        };
        let mut sensor = Self {
            rail: found.clone(),
            info,
            clock,
        };
        // Fail at open, not at the first sample, when the files cannot be read.
        sensor.read()?;
        Ok(sensor)
    }

    fn value(&self, file: String) -> Result<f64, PowerError> {
        let path = self.rail.dir.join(file);
        let text = fs::read_to_string(&path).map_err(|e| PowerError::Sysfs {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        text.trim().parse::<f64>().map_err(|e| PowerError::Sysfs {
            path,
            detail: format!("{:?} is not a number: {e}", text.trim()),
        })
    }
}

impl PowerSensor for JetsonRails {
    fn describe(&self) -> SensorInfo {
        self.info.clone()
    }

    fn read(&mut self) -> Result<PowerReading, PowerError> {
        let k = self.rail.channel;
        let (millivolts, milliamps, milliwatts) = match self.rail.layout {
            RailLayout::Hwmon => {
                let mv = self.value(format!("in{k}_input"))?;
                let ma = self.value(format!("curr{k}_input"))?;
                (mv, ma, mv * ma / 1_000.0)
            }
            RailLayout::Iio => {
                let mv = self.value(format!("in_voltage{k}_input"))?;
                let ma = self.value(format!("in_current{k}_input"))?;
                let mw = match self.rail.dir.join(format!("in_power{k}_input")).exists() {
                    true => self.value(format!("in_power{k}_input"))?,
                    false => mv * ma / 1_000.0,
                };
                (mv, ma, mw)
            }
        };
        Ok(PowerReading {
            t_ns: self.clock.now_ns(),
            bus_volts: millivolts * 1e-3,
            current_amps: milliamps * 1e-3,
            power_watts: milliwatts * 1e-3,
            flags: ReadingFlags::default(),
        })
    }
}

fn collect(dir: &Path, depth: usize, rails: &mut Vec<RailInfo>) -> Result<(), PowerError> {
    let entries = fs::read_dir(dir).map_err(|e| PowerError::Sysfs {
        path: dir.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        let path = entry.path();
        if let Some((layout, channel)) = rail_channel(name) {
            let label = fs::read_to_string(&path).map_err(|e| PowerError::Sysfs {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            let label = label.trim();
            let has_current = match layout {
                RailLayout::Hwmon => dir.join(format!("curr{channel}_input")).exists(),
                RailLayout::Iio => dir.join(format!("in_current{channel}_input")).exists(),
            };
            // Unconnected channels are labelled NC on several carrier boards.
            if has_current && !label.is_empty() && label != "NC" {
                rails.push(RailInfo {
                    name: label.to_string(),
                    dir: dir.to_path_buf(),
                    channel,
                    layout,
                });
            }
        } else if depth < MAX_DEPTH && !SKIPPED_LINKS.contains(&name) && path.is_dir() {
            subdirs.push(path);
        }
    }
    for sub in subdirs {
        // Unreadable corners of sysfs are not rails; only the root must be readable.
        let _ = collect(&sub, depth + 1, rails);
    }
    Ok(())
}

fn rail_channel(file: &str) -> Option<(RailLayout, u32)> {
    if let Some(n) = file
        .strip_prefix("in")
        .and_then(|rest| rest.strip_suffix("_label"))
    {
        return n.parse().ok().map(|n| (RailLayout::Hwmon, n));
    }
    file.strip_prefix("rail_name_")
        .and_then(|k| k.parse().ok())
        .map(|k| (RailLayout::Iio, k))
}
