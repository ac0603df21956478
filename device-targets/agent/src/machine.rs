//! The machine's state at one moment, read from /proc and /sys under a root (`/` on a board) so
//! tests can point it at a fixture tree.
//!
//! Everything is optional: a virtual machine has no cpufreq, most have no thermal zones, only a
//! Raspberry Pi has firmware throttling flags. A file that is missing or does not parse gives
//! `None` for its figure and never fails the request: the host records what there is.

use std::fs;
use std::path::Path;

use gauntlet_wire::{CpuTicks, MachineState};

/// Where Raspberry Pi OS kernels expose the firmware's `vcgencmd get_throttled` flags.
const PI_THROTTLED: &str = "sys/devices/platform/soc/soc:firmware/get_throttled";

fn read(root: &Path, rel: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(root.join(rel)).ok()
}

/// Reads the machine's state under `root`.
pub fn machine_state(root: &Path) -> MachineState {
    let cpus = cpu_dirs(root);
    let cpufreq = |cpu: &str, file: &str| read(root, format!("{cpu}/cpufreq/{file}"));
    let mut governors: Vec<String> = Vec::new();
    for g in cpus.iter().filter_map(|c| cpufreq(c, "scaling_governor")) {
        let g = g.trim().to_string();
        if !g.is_empty() && !governors.contains(&g) {
            governors.push(g);
        }
    }
    MachineState {
        load_1m: read(root, "proc/loadavg").and_then(|t| load_1m(&t)),
        cpu_ticks: read(root, "proc/stat").and_then(|t| cpu_ticks(&t)),
        freq_khz: cpus
            .iter()
            .filter_map(|c| cpufreq(c, "scaling_cur_freq")?.trim().parse().ok())
            .collect(),
        governors,
        throttled: read(root, PI_THROTTLED).and_then(|t| throttled(&t)),
        max_temperature_c: max_temperature_c(root),
    }
}

fn load_1m(loadavg: &str) -> Option<f64> {
    loadavg.split_whitespace().next()?.parse().ok()
}

/// The aggregate `cpu` line: user nice system idle iowait irq softirq steal [guest guest_nice].
/// Guest time is already inside user and nice, so the total stops at steal.
fn cpu_ticks(stat: &str) -> Option<CpuTicks> {
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // Kernels before 2.6.11 have no steal column: no steal to report rather than a wrong one.
    (fields.len() == 8).then(|| CpuTicks {
        total: fields.iter().sum(),
        steal: fields[7],
    })
}

/// `cpuN` directories in numeric order, relative to `root`.
fn cpu_dirs(root: &Path) -> Vec<String> {
    let base = "sys/devices/system/cpu";
    let Ok(entries) = fs::read_dir(root.join(base)) else {
        return Vec::new();
    };
    let mut cpus: Vec<u32> = entries
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("cpu")?
                .parse()
                .ok()
        })
        .collect();
    cpus.sort_unstable();
    cpus.iter().map(|n| format!("{base}/cpu{n}")).collect()
}

/// The firmware writes the flags in hex, with or without `0x`.
fn throttled(text: &str) -> Option<u32> {
    let t = text.trim();
    u32::from_str_radix(t.strip_prefix("0x").unwrap_or(t), 16).ok()
}

/// Thermal zones report millidegrees; a zone that cannot be read (some error while asleep) is
/// skipped.
fn max_temperature_c(root: &Path) -> Option<f64> {
    let entries = fs::read_dir(root.join("sys/class/thermal")).ok()?;
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_name()
                .to_str()?
                .starts_with("thermal_zone")
                .then_some(())?;
            let milli: i64 = fs::read_to_string(e.path().join("temp"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some(milli as f64 / 1000.0)
        })
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::tests::tree;

    const STAT: &str = "cpu  3006343 415686 566397 1023740 15358 0 5804 3736 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2\n";

    #[test]
    fn reads_a_raspberry_pi() {
        let cpu = |n: u32, file: &str| format!("sys/devices/system/cpu/cpu{n}/cpufreq/{file}");
        let files = [
            ("proc/loadavg", "0.64 1.24 2.12 3/104 25654\n".to_string()),
            ("proc/stat", STAT.to_string()),
            (PI_THROTTLED, "50005\n".to_string()),
            (
                "sys/class/thermal/thermal_zone0/temp",
                "61850\n".to_string(),
            ),
            (
                "sys/class/thermal/thermal_zone1/temp",
                "48000\n".to_string(),
            ),
            (
                "sys/class/thermal/cooling_device0/cur_state",
                "1\n".to_string(),
            ),
            (&cpu(10, "scaling_cur_freq"), "600000\n".to_string()),
            (&cpu(10, "scaling_governor"), "powersave\n".to_string()),
            (&cpu(2, "scaling_cur_freq"), "1500000\n".to_string()),
            (&cpu(2, "scaling_governor"), "ondemand\n".to_string()),
            (&cpu(1, "scaling_cur_freq"), "1800000\n".to_string()),
            (&cpu(1, "scaling_governor"), "ondemand\n".to_string()),
            ("sys/devices/system/cpu/cpufreq/policy0/x", String::new()),
        ];
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let root = tree(&files);
        let s = machine_state(root.path());
        assert_eq!(s.load_1m, Some(0.64));
        assert_eq!(
            s.cpu_ticks,
            Some(CpuTicks {
                total: 3006343 + 415686 + 566397 + 1023740 + 15358 + 5804 + 3736,
                steal: 3736
            })
        );
        assert_eq!(
            s.freq_khz,
            vec![1_800_000, 1_500_000, 600_000],
            "cpu1, cpu2, cpu10"
        );
        assert_eq!(s.governors, vec!["ondemand", "powersave"]);
        assert_eq!(s.throttled, Some(0x50005));
        assert_eq!(s.max_temperature_c, Some(61.85));
    }

    #[test]
    fn a_virtual_machine_without_cpufreq_or_zones_reports_load_and_ticks_only() {
        let root = tree(&[
            ("proc/loadavg", "1.50 1.00 0.50 2/90 1\n"),
            ("proc/stat", STAT),
            ("sys/devices/system/cpu/cpu0/cache/index0/level", "1\n"),
            ("sys/devices/system/cpu/online", "0-1\n"),
        ]);
        let s = machine_state(root.path());
        assert_eq!(s.load_1m, Some(1.5));
        assert_eq!(s.cpu_ticks.map(|t| t.steal), Some(3736));
        assert!(s.freq_khz.is_empty() && s.governors.is_empty());
        assert_eq!((s.throttled, s.max_temperature_c), (None, None));
    }

    #[test]
    fn garbled_or_missing_files_give_no_figure_rather_than_a_wrong_one() {
        let root = tree(&[
            ("proc/loadavg", "high\n"),
            ("proc/stat", "cpu  1 2 3 4 5 6 7\n"),
            (PI_THROTTLED, "0xzz\n"),
            ("sys/class/thermal/thermal_zone0/temp", "n/a\n"),
        ]);
        assert_eq!(machine_state(root.path()), MachineState::default());
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(machine_state(empty.path()), MachineState::default());
    }

    #[test]
    fn live_machine_reports_load_and_ticks() {
        let s = machine_state(Path::new("/"));
        assert!(s.load_1m.is_some(), "{s:?}");
        assert!(s.cpu_ticks.is_some_and(|t| t.total > t.steal), "{s:?}");
    }
}
