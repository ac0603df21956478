use std::process::{Child, Stdio};

use gauntlet_spec::HealthPolicy;

use crate::board::{Input, SshBoard, quote, remote_dir};
use crate::error::SshError;

/// A board's state before work starts, recorded in results. Fields the board does not expose are
/// `None` or empty rather than guessed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Health {
    /// From `<agent> --version`; running it also proves the binary suits the board's architecture.
    pub agent_version: String,
    /// Free space in the cache directory's filesystem.
    pub free_disk_bytes: u64,
    /// cpu0's cpufreq governor.
    pub cpu_governor: Option<String>,
    /// `(zone type, °C)` for every readable `/sys/class/thermal/thermal_zone*`.
    pub temperatures_c: Vec<(String, f64)>,
    /// Raspberry Pi throttling flags (`vcgencmd get_throttled`, else the firmware's sysfs file),
    /// e.g. `0x50005`.
    pub throttled: Option<String>,
    pub load_avg_1m: f64,
    pub cores: u32,
    /// Reasons the measurements may be unreliable; the runner decides whether any is fatal.
    pub warnings: Vec<String>,
}

/// Load per core above which a board counts as busy (sbc-bench refuses to run then).
const BUSY_LOAD_PER_CORE: f64 = 0.5;

/// What a warning is about, so a rig's health policy can make it fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finding {
    Governor,
    Busy,
    Throttled,
}

impl Health {
    /// Reasons the measurements may be unreliable, each with what it is about.
    fn findings(&self) -> Vec<(Finding, String)> {
        let mut found = Vec::new();
        match &self.cpu_governor {
            Some(g) if g == "performance" => {}
            Some(g) => found.push((
                Finding::Governor,
                format!("cpu governor is `{g}`, not `performance`: clock changes add timing noise"),
            )),
            None => found.push((
                Finding::Governor,
                "cpu governor unknown (no cpufreq in sysfs)".to_string(),
            )),
        }
        if self.load_avg_1m > BUSY_LOAD_PER_CORE * f64::from(self.cores) {
            found.push((
                Finding::Busy,
                format!(
                    "board is busy: load average {:.2} on {} cores (over {BUSY_LOAD_PER_CORE} per core)",
                    self.load_avg_1m, self.cores
                ),
            ));
        }
        if let Some(flags) = &self.throttled {
            match u64::from_str_radix(flags.trim_start_matches("0x"), 16) {
                Ok(0) => {}
                Ok(_) => found.push((
                    Finding::Throttled,
                    format!(
                        "throttling flags set ({flags}): under-voltage or thermal throttling now or since boot"
                    ),
                )),
                Err(_) => found.push((
                    Finding::Throttled,
                    format!("unreadable throttling flags `{flags}`"),
                )),
            }
        }
        found
    }

    /// Why `policy` takes the board out of the run; empty when the board may run.
    pub fn refusals(&self, policy: &HealthPolicy) -> Vec<String> {
        let mut refused: Vec<String> = self
            .findings()
            .into_iter()
            .filter(|(finding, _)| match finding {
                Finding::Governor => policy.refuse_governor,
                Finding::Busy => policy.refuse_busy,
                Finding::Throttled => policy.refuse_throttled,
            })
            .map(|(_, message)| message)
            .collect();
        if let Some(limit) = policy.max_temperature_c {
            refused.extend(
                self.temperatures_c
                    .iter()
                    .filter(|(_, celsius)| *celsius > limit)
                    .map(|(zone, celsius)| {
                        format!(
                            "thermal zone `{zone}` is at {celsius:.1} °C, over the {limit} °C limit"
                        )
                    }),
            );
        }
        if let Some(min) = policy.min_free_disk_bytes
            && self.free_disk_bytes < min
        {
            refused.push(format!(
                "{:.1} MiB free where the cache lives, under the {:.1} MiB required",
                self.free_disk_bytes as f64 / 1_048_576.0,
                min as f64 / 1_048_576.0
            ));
        }
        refused
    }
}

/// Prints `temp<TAB>type<TAB>millidegrees` per readable thermal zone.
const TEMPERATURES: &str = "for z in /sys/class/thermal/thermal_zone*; do\n\
     [ -r \"$z/temp\" ] || continue\n\
     t=$(cat \"$z/temp\" 2>/dev/null) || continue\n\
     n=$(cat \"$z/type\" 2>/dev/null) || n=${z##*/}\n\
     printf 'temp\\t%s\\t%s\\n' \"$n\" \"$t\"\n\
     done\n";

impl SshBoard {
    /// Reads agent version, free disk, governor, temperatures, throttling and load in one round
    /// trip, bounded by the connect timeout. A missing or unrunnable agent is an error.
    pub fn health_check(&self, agent_remote: &str) -> Result<Health, SshError> {
        let script = format!(
            "a={agent}\n\
             if [ -x \"$a\" ]; then printf 'agent\\t%s\\n' \"$(\"$a\" --version 2>&1 | head -n 1)\"; fi\n\
             d={cache}; [ -d \"$d\" ] || d=.\n\
             set -- $(df -Pk \"$d\" | tail -n 1); printf 'free_kib\\t%s\\n' \"$4\"\n\
             g=/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor\n\
             [ -r $g ] && printf 'governor\\t%s\\n' \"$(cat $g)\"\n\
             {TEMPERATURES}\
             if command -v vcgencmd >/dev/null 2>&1; then printf 'throttled\\t%s\\n' \"$(vcgencmd get_throttled)\"\n\
             elif [ -r /sys/devices/platform/soc/soc:firmware/get_throttled ]; then\n\
             printf 'throttled\\t0x%s\\n' \"$(cat /sys/devices/platform/soc/soc:firmware/get_throttled)\"; fi\n\
             printf 'loadavg\\t%s\\n' \"$(cat /proc/loadavg)\"\n\
             printf 'cores\\t%s\\n' \"$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)\"\n",
            agent = quote(agent_remote),
            cache = remote_dir(&self.cache_dir),
        );
        let text = self.run_ok("check health", &script, self.timeouts.connect)?;
        parse_health(&text).map_err(|detail| SshError::Remote {
            board: self.id.clone(),
            action: format!("check health (agent `{agent_remote}`)"),
            detail,
        })
    }

    /// Current temperatures, for sampling during a run, over the running connection only: a
    /// sampler must not reconnect a board whose connection dropped under the agent.
    pub fn sample_temperatures(&self) -> Result<Vec<(String, f64)>, SshError> {
        let action = "read temperatures";
        if !self.master_running() {
            return Err(SshError::ConnectionLost {
                board: self.id.clone(),
                target: self.target.clone(),
                detail: "the connection is down".into(),
            });
        }
        let finished = self.exec(action, TEMPERATURES, Input::Nothing, self.timeouts.connect)?;
        if !finished.status.success() {
            return Err(self.remote(action, &finished.stderr));
        }
        let text = finished.stdout;
        parse_temperatures(&text).map_err(|detail| SshError::Remote {
            board: self.id.clone(),
            action: "read temperatures".into(),
            detail,
        })
    }

    /// Starts `<agent_remote> <args…> --stdio` over the control master: the child's stdin and
    /// stdout are the agent's wire channel, its stderr carries the agent's and ssh's messages
    /// (drain it; on exit status 255 pass it to [`SshBoard::connection_error`]). No port is opened
    /// on the board.
    pub fn spawn_agent(&self, agent_remote: &str, args: &[&str]) -> Result<Child, SshError> {
        self.connect()?;
        let args: String = args.iter().map(|a| format!(" {}", quote(a))).collect();
        self.command(&format!("exec {}{args} --stdio", quote(agent_remote)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.local("start ssh for the agent channel", e))
    }
}

/// Parses the health script's `key<TAB>value` lines and derives the warnings.
fn parse_health(text: &str) -> Result<Health, String> {
    let mut agent = None;
    let mut free_kib = None;
    let mut governor = None;
    let mut throttled = None;
    let mut load = None;
    let mut cores = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('\t') else {
            continue;
        };
        let value = value.trim();
        match key {
            "agent" => agent = Some(value.to_string()),
            "free_kib" => free_kib = value.parse::<u64>().ok(),
            "governor" => governor = Some(value.to_string()),
            "throttled" => {
                throttled = Some(
                    value
                        .strip_prefix("throttled=")
                        .unwrap_or(value)
                        .to_string(),
                )
            }
            "loadavg" => load = value.split_whitespace().next().and_then(|v| v.parse().ok()),
            "cores" => cores = value.parse::<u32>().ok().filter(|&c| c > 0),
            _ => {}
        }
    }
    let agent = agent.ok_or("the agent is missing or not executable")?;
    let agent_version = match agent.split_whitespace().collect::<Vec<_>>()[..] {
        ["gauntlet-agent", version] => version.to_string(),
        _ => return Err(format!("the agent does not run here: `{agent}`")),
    };
    let free_kib = free_kib.ok_or("no free-space figure from df")?;
    let load_avg_1m: f64 = load.ok_or("no load average in /proc/loadavg")?;
    let cores = cores.ok_or("no core count from getconf or nproc")?;
    let temperatures_c = parse_temperatures(text)?;

    let mut health = Health {
        agent_version,
        free_disk_bytes: free_kib * 1024,
        cpu_governor: governor,
        temperatures_c,
        throttled,
        load_avg_1m,
        cores,
        warnings: Vec::new(),
    };
    health.warnings = health.findings().into_iter().map(|(_, m)| m).collect();
    Ok(health)
}

fn parse_temperatures(text: &str) -> Result<Vec<(String, f64)>, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("temp\t"))
        .map(|rest| {
            let (name, milli) = rest
                .rsplit_once('\t')
                .ok_or_else(|| format!("malformed temperature line `{rest}`"))?;
            let milli: f64 = milli
                .trim()
                .parse()
                .map_err(|_| format!("temperature of `{name}` is `{milli}`, not a number"))?;
            Ok((name.to_string(), milli / 1000.0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PI: &str = "agent\tgauntlet-agent 0.3.1\nfree_kib\t2048\ngovernor\tondemand\n\
                      temp\tcpu-thermal\t61234\nthrottled\tthrottled=0x50005\n\
                      loadavg\t3.10 1.00 0.50 2/100 999\ncores\t4\n";

    #[test]
    fn a_busy_throttled_pi_gets_every_warning() {
        let h = parse_health(PI).unwrap();
        assert_eq!(h.agent_version, "0.3.1");
        assert_eq!(h.free_disk_bytes, 2048 * 1024);
        assert_eq!(h.cpu_governor.as_deref(), Some("ondemand"));
        assert_eq!(h.temperatures_c, vec![("cpu-thermal".to_string(), 61.234)]);
        assert_eq!(h.throttled.as_deref(), Some("0x50005"));
        assert_eq!((h.load_avg_1m, h.cores), (3.10, 4));
        assert_eq!(h.warnings.len(), 3, "{:?}", h.warnings);
        assert!(h.warnings[0].contains("ondemand"));
        assert!(h.warnings[1].contains("busy"));
        assert!(h.warnings[2].contains("0x50005"));
    }

    #[test]
    fn a_rig_policy_turns_chosen_findings_into_refusals() {
        let h = parse_health(PI).unwrap();
        assert!(
            h.refusals(&HealthPolicy::default()).is_empty(),
            "warnings only by default"
        );
        let policy = HealthPolicy {
            refuse_busy: true,
            max_temperature_c: Some(60.0),
            min_free_disk_bytes: Some(4 * 1_048_576),
            ..HealthPolicy::default()
        };
        let refused = h.refusals(&policy);
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused[0].contains("busy"));
        assert!(refused[1].contains("`cpu-thermal` is at 61.2 °C, over the 60 °C limit"));
        assert!(refused[2].contains("2.0 MiB free"), "{}", refused[2]);
        let cool = HealthPolicy {
            refuse_throttled: true,
            max_temperature_c: Some(70.0),
            ..HealthPolicy::default()
        };
        assert_eq!(h.refusals(&cool).len(), 1, "only the throttling flags");
    }

    #[test]
    fn a_quiet_performance_board_has_no_warnings() {
        let text = PI
            .replace("ondemand", "performance")
            .replace("0x50005", "0x0")
            .replace("3.10", "1.90");
        let h = parse_health(&text).unwrap();
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
    }

    #[test]
    fn missing_sysfs_gives_none_and_an_unknown_governor_warning() {
        let text = "agent\tgauntlet-agent 1.0.0\nfree_kib\t10\nloadavg\t0.00 0 0 1/1 1\ncores\t2\n";
        let h = parse_health(text).unwrap();
        assert_eq!(h.cpu_governor, None);
        assert_eq!(h.throttled, None);
        assert!(h.temperatures_c.is_empty());
        assert_eq!(h.warnings, ["cpu governor unknown (no cpufreq in sysfs)"]);
    }

    #[test]
    fn a_broken_agent_or_missing_figure_is_an_error() {
        let wrong_arch = PI.replace("gauntlet-agent 0.3.1", "sh: 1: /c/agent: Exec format error");
        let e = parse_health(&wrong_arch).unwrap_err();
        assert!(e.contains("Exec format error"), "{e}");
        let no_agent = PI.replace("agent\tgauntlet-agent 0.3.1\n", "");
        assert!(parse_health(&no_agent).unwrap_err().contains("missing"));
        let no_cores = PI.replace("cores\t4", "cores\t");
        assert!(parse_health(&no_cores).unwrap_err().contains("core count"));
        let bad_temp = PI.replace("61234", "hot");
        assert!(
            parse_health(&bad_temp)
                .unwrap_err()
                .contains("`cpu-thermal`")
        );
    }
}
