//! What the machine did during a run, block by block, and whether its state changed.
//!
//! The rule (README, "Machine state"), each kind flagged once, at the first block it is seen,
//! every block compared with the run's first:
//! - **governor**: the set of cpufreq governors differs from the first block's;
//! - **frequency**: the fastest core's frequency lies more than [`FREQUENCY_BAND`] from the first
//!   block's;
//! - **load**: the one-minute load average rises above [`LOAD_PER_CORE`] per core from at or
//!   below it at the first block (more runnable tasks than cores: something began to wait for a
//!   CPU). A machine that busy from the start has not changed; the summary shows its load;
//! - **steal**: the hypervisor took more than [`STEAL_SHARE`] of the CPU time during the block,
//!   and at least [`MIN_STOLEN_TICKS`] ticks of it;
//! - **throttling**: a present-state throttling flag (Raspberry Pi bits 0–3) is set;
//! - **temperature**: the hottest zone is more than [`TEMPERATURE_RISE_C`] above the first block's.

use gauntlet_results::{Machine, MachineBlock, MachineChange, MachineSummary};

use crate::record::{BoardRecord, MachineSample};

/// The failure stage of a board refused by `[run] stable_machine`.
pub const UNSTABLE_STAGE: &str = "machine-state";
/// Relative band around the first block's fastest-core frequency.
pub const FREQUENCY_BAND: f64 = 0.10;
/// One-minute load per logical core above which the machine was oversubscribed.
pub const LOAD_PER_CORE: f64 = 1.0;
/// Share of CPU time stolen by the hypervisor within one block.
pub const STEAL_SHARE: f64 = 0.05;
/// Stolen ticks below which a block's steal share is not judged: a block of tens of
/// milliseconds spans a few ticks, so a single stolen tick would read as 10 % or more.
pub const MIN_STOLEN_TICKS: u64 = 5;
/// Rise of the hottest thermal zone over the first block, °C.
pub const TEMPERATURE_RISE_C: f64 = 10.0;
/// Raspberry Pi `get_throttled` bits that describe the present (under-voltage, frequency capped,
/// throttled, soft temperature limit); the higher bits say it happened since boot.
const THROTTLED_NOW: u32 = 0xF;

/// The board's machine record; `None` for a board that never said hello.
pub fn machine(board: &BoardRecord) -> Option<Machine> {
    let hello = board.hello.as_ref()?;
    if !hello.capabilities.machine_state {
        return Some(Machine {
            unavailable: Some(format!(
                "`{}` runs no operating system to read load, clocks or temperatures from",
                hello.agent
            )),
            ..Machine::default()
        });
    }
    let blocks = blocks(&board.machine);
    let cores = hello.facts.cores.unwrap_or(1).max(1);
    Some(Machine {
        unavailable: None,
        summary: (!blocks.is_empty()).then(|| summary(&blocks)),
        changes: changes(&blocks, cores),
        blocks,
    })
}

/// A block per reading taken at a block's start; the next reading (the next block's, or the
/// one after the model's last block) closes its steal interval.
fn blocks(samples: &[MachineSample]) -> Vec<MachineBlock> {
    samples
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let block = s.block?;
            let state = &s.state;
            let steal = samples.get(i + 1).and_then(|next| {
                let (a, b) = (state.cpu_ticks?, next.state.cpu_ticks?);
                let total = b.total.checked_sub(a.total).filter(|&t| t > 0)?;
                let stolen = b.steal.saturating_sub(a.steal);
                Some((stolen as f64 / total as f64, stolen))
            });
            let mhz = |f: &u32| f64::from(*f) / 1000.0;
            Some(MachineBlock {
                model: s.model.clone(),
                repeat: s.repeat,
                block,
                load_1m: state.load_1m,
                steal_share: steal.map(|(share, _)| share),
                steal_ticks: steal.map(|(_, ticks)| ticks),
                freq_mhz_min: state.freq_khz.iter().min().map(mhz),
                freq_mhz_max: state.freq_khz.iter().max().map(mhz),
                governors: state.governors.clone(),
                throttled: state.throttled,
                temperature_c: state.max_temperature_c,
            })
        })
        .collect()
}

fn range(values: impl Iterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    values.fold((None, None), |(lo, hi), v| {
        (
            Some(lo.map_or(v, |l: f64| l.min(v))),
            Some(hi.map_or(v, |h: f64| h.max(v))),
        )
    })
}

fn summary(blocks: &[MachineBlock]) -> MachineSummary {
    let (load_1m_min, load_1m_max) = range(blocks.iter().filter_map(|b| b.load_1m));
    let (_, steal_share_max) = range(blocks.iter().filter_map(|b| b.steal_share));
    let (freq_mhz_min, _) = range(blocks.iter().filter_map(|b| b.freq_mhz_min));
    let (_, freq_mhz_max) = range(blocks.iter().filter_map(|b| b.freq_mhz_max));
    let (temperature_c_min, temperature_c_max) =
        range(blocks.iter().filter_map(|b| b.temperature_c));
    let mut governors: Vec<String> = Vec::new();
    for g in blocks.iter().flat_map(|b| &b.governors) {
        if !governors.contains(g) {
            governors.push(g.clone());
        }
    }
    MachineSummary {
        load_1m_min,
        load_1m_max,
        steal_share_max,
        freq_mhz_min,
        freq_mhz_max,
        governors,
        throttled: blocks
            .iter()
            .any(|b| b.throttled.is_some_and(|t| t & THROTTLED_NOW != 0)),
        temperature_c_min,
        temperature_c_max,
    }
}

fn changes(blocks: &[MachineBlock], cores: u32) -> Vec<MachineChange> {
    let Some(first) = blocks.first() else {
        return Vec::new();
    };
    let mut changes: Vec<MachineChange> = Vec::new();
    for b in blocks {
        let mut flag = |kind: &str, detail: String| {
            if !changes.iter().any(|c| c.kind == kind) {
                changes.push(MachineChange {
                    kind: kind.into(),
                    model: b.model.clone(),
                    repeat: b.repeat,
                    block: b.block,
                    detail,
                });
            }
        };
        if b.governors != first.governors {
            flag(
                "governor",
                format!(
                    "governor {} → {}",
                    governors(&first.governors),
                    governors(&b.governors)
                ),
            );
        }
        if let (Some(f0), Some(f)) = (first.freq_mhz_max, b.freq_mhz_max)
            && (f - f0).abs() > FREQUENCY_BAND * f0
        {
            flag(
                "frequency",
                format!(
                    "CPU frequency {f0:.0} → {f:.0} MHz (beyond ±{:.0} %)",
                    FREQUENCY_BAND * 100.0
                ),
            );
        }
        let busy = |load: f64| load > LOAD_PER_CORE * f64::from(cores);
        if let (Some(load0), Some(load)) = (first.load_1m, b.load_1m)
            && !busy(load0)
            && busy(load)
        {
            flag(
                "load",
                format!("load {load:.2} on {cores} cores (above {LOAD_PER_CORE} per core)"),
            );
        }
        if let (Some(steal), Some(ticks)) = (b.steal_share, b.steal_ticks)
            && steal > STEAL_SHARE
            && ticks >= MIN_STOLEN_TICKS
        {
            flag(
                "steal",
                format!(
                    "steal {:.1} % of CPU time, {ticks} ticks (above {:.0} %)",
                    steal * 100.0,
                    STEAL_SHARE * 100.0
                ),
            );
        }
        if let Some(t) = b.throttled.filter(|t| t & THROTTLED_NOW != 0) {
            flag("throttling", format!("throttled (flags {t:#x})"));
        }
        if let (Some(t0), Some(t)) = (first.temperature_c, b.temperature_c)
            && t - t0 > TEMPERATURE_RISE_C
        {
            flag(
                "temperature",
                format!("temperature {t0:.1} → {t:.1} °C (more than {TEMPERATURE_RISE_C:.0} °C)"),
            );
        }
    }
    changes
}

fn governors(g: &[String]) -> String {
    if g.is_empty() {
        "none".into()
    } else {
        g.join("+")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_wire::{CpuTicks, MachineState};

    fn sample(block: Option<u32>, state: MachineState) -> MachineSample {
        MachineSample {
            model: "m".into(),
            repeat: 0,
            block,
            state,
        }
    }

    fn state(load: f64, total: u64, steal: u64, khz: u32, gov: &str, temp: f64) -> MachineState {
        MachineState {
            load_1m: Some(load),
            cpu_ticks: Some(CpuTicks { total, steal }),
            freq_khz: vec![khz, khz / 2],
            governors: vec![gov.into()],
            throttled: Some(0),
            max_temperature_c: Some(temp),
        }
    }

    #[test]
    fn a_steady_machine_has_ranges_and_no_change() {
        let samples = [
            sample(Some(0), state(0.5, 1000, 10, 1_500_000, "ondemand", 50.0)),
            sample(Some(1), state(0.75, 2000, 20, 1_450_000, "ondemand", 55.0)),
            sample(None, state(0.6, 3000, 40, 1_500_000, "ondemand", 52.0)),
        ];
        let blocks = blocks(&samples);
        assert_eq!(blocks.len(), 2, "the closing reading is not a block");
        assert_eq!(blocks[0].steal_share, Some(0.01));
        assert_eq!(blocks[1].steal_share, Some(0.02));
        assert_eq!(blocks[0].freq_mhz_min, Some(750.0));
        let s = summary(&blocks);
        assert_eq!((s.load_1m_min, s.load_1m_max), (Some(0.5), Some(0.75)));
        assert_eq!(
            (s.freq_mhz_min, s.freq_mhz_max),
            (Some(725.0), Some(1500.0))
        );
        assert_eq!(s.governors, vec!["ondemand"]);
        assert!(!s.throttled);
        assert!(changes(&blocks, 2).is_empty());
    }

    #[test]
    fn each_kind_of_change_is_flagged_once_at_its_first_block() {
        let mut hot = state(2.5, 3000, 300, 1_200_000, "performance", 65.0);
        hot.throttled = Some(0x50004);
        let samples = [
            sample(Some(0), state(0.5, 1000, 10, 1_500_000, "ondemand", 50.0)),
            sample(Some(1), state(0.5, 2000, 20, 1_500_000, "ondemand", 50.0)),
            sample(Some(2), hot.clone()),
            sample(Some(3), hot),
            sample(None, state(0.5, 5000, 400, 1_500_000, "ondemand", 50.0)),
        ];
        let found = changes(&blocks(&samples), 2);
        let kinds: Vec<(&str, u32)> = found.iter().map(|c| (c.kind.as_str(), c.block)).collect();
        assert_eq!(
            kinds,
            vec![
                ("steal", 1),
                ("governor", 2),
                ("frequency", 2),
                ("load", 2),
                ("throttling", 2),
                ("temperature", 2)
            ]
        );
        assert_eq!(
            found[0].detail,
            "steal 28.0 % of CPU time, 280 ticks (above 5 %)"
        );
        assert_eq!(
            found[1].describe(),
            "governor ondemand → performance in block 2 of replay 0 of `m`"
        );
        assert_eq!(
            found[2].detail,
            "CPU frequency 1500 → 1200 MHz (beyond ±10 %)"
        );
        assert_eq!(found[3].detail, "load 2.50 on 2 cores (above 1 per core)");
        assert_eq!(found[4].detail, "throttled (flags 0x50004)");
    }

    #[test]
    fn a_machine_busy_from_the_first_block_has_not_changed() {
        let samples = [
            sample(Some(0), state(3.0, 1000, 0, 1_500_000, "ondemand", 50.0)),
            sample(Some(1), state(3.2, 2000, 0, 1_500_000, "ondemand", 50.0)),
            sample(None, state(2.9, 3000, 0, 1_500_000, "ondemand", 50.0)),
        ];
        assert!(changes(&blocks(&samples), 2).is_empty());
    }

    #[test]
    fn a_single_stolen_tick_in_a_short_block_is_not_steal() {
        let samples = [
            sample(Some(0), state(0.5, 1000, 0, 1_500_000, "ondemand", 50.0)),
            sample(Some(1), state(0.5, 1010, 1, 1_500_000, "ondemand", 50.0)),
            sample(None, state(0.5, 1020, 2, 1_500_000, "ondemand", 50.0)),
        ];
        let blocks = blocks(&samples);
        assert_eq!(blocks[1].steal_share, Some(0.1));
        assert_eq!(blocks[1].steal_ticks, Some(1));
        assert!(changes(&blocks, 2).is_empty());
    }

    #[test]
    fn flags_that_only_say_it_happened_since_boot_are_not_throttling() {
        let mut past = state(0.1, 1000, 0, 1_500_000, "ondemand", 50.0);
        past.throttled = Some(0x50000);
        let blocks = blocks(&[sample(Some(0), past)]);
        assert!(changes(&blocks, 1).is_empty());
        assert!(!summary(&blocks).throttled);
    }
}
