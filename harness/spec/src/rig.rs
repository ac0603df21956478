//! Raw rig → validated [`Rig`], the embedded default rig, and board selection for a scenario.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::Checker;
use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::load::{self, Loaded};
use crate::raw::{
    BoardSection, ConnectionSection, HealthSection, KeywordOr, PowerSection, RigFile, Sp,
    TimeoutsSection,
};
use crate::units;
use crate::validated::*;

type Ck<'a> = Checker<'a, RigFile>;

const DEFAULT_BAUD: u32 = 115_200;

/// Loads, merges (`extends`) and validates a rig file.
pub fn load_rig(path: &Path) -> Result<Rig, Diagnostics> {
    let loaded = load::load::<RigFile>(path, "rig")?;
    validate(&loaded, path)
}

/// `rigs/local.toml`, embedded: this machine as the only board. Used when no rig is named.
pub fn default_rig() -> Rig {
    const LOCAL: &str = include_str!("../../../rigs/local.toml");
    let name = Path::new("rigs/local.toml");
    let mut rig = load::load_str::<RigFile>(name, LOCAL)
        .and_then(|l| validate(&l, name))
        .unwrap_or_else(|d| panic!("the embedded rigs/local.toml is invalid:\n{d}"));
    // Not a file on disk: results and the store must not name a path that may not exist.
    rig.source.path = PathBuf::from(DEFAULT_RIG_SOURCE);
    rig
}

/// What the built-in rig's source reads as, wherever a rig file's path would be shown.
pub const DEFAULT_RIG_SOURCE: &str = "built in (a copy of rigs/local.toml)";

fn validate(loaded: &Loaded<RigFile>, path: &Path) -> Result<Rig, Diagnostics> {
    let mut ck = Checker::new(loaded);
    let raw = &loaded.raw;
    if raw.boards.value.is_empty() {
        let d = ck.at(&raw.boards.span, "a rig needs at least one board");
        ck.push(d);
    }
    ck.unique(raw.boards.value.iter().map(|b| &b.value.id), "board id");
    let boards: Vec<Board> = raw
        .boards
        .value
        .iter()
        .filter_map(|b| board(&mut ck, b))
        .collect();
    shared_sensors(&mut ck, &raw.boards.value);
    let max_parallel = ck.opt_at_least(
        &raw.rig.max_parallel,
        1,
        "max_parallel",
        boards.len().max(1),
    );
    let rig = Rig {
        name: raw.rig.name.clone(),
        source: SourceFile {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            sha256: loaded.sha256.clone(),
        },
        boards,
        max_parallel,
    };
    ck.finish(rig)
}

/// Labels every board gets from its kind, which a rig may not set.
const BUILT_IN_LABELS: [&str; 2] = ["kind", "platform"];

fn board(ck: &mut Ck, b: &Sp<BoardSection>) -> Option<Board> {
    let raw = &b.value;
    ck.path_component(&raw.id, "board id");
    let kind = ck.one_of(&raw.kind, "board kind", &BoardKind::ALL);
    for built_in in BUILT_IN_LABELS {
        if raw.labels.value.contains_key(built_in) {
            let d = ck
                .at(
                    &raw.labels.span,
                    format!("`{built_in}` cannot be set in `labels`"),
                )
                .label(format!("`{built_in}` is set from the board's `kind`"))
                .help("use another label name, e.g. `family`");
            ck.push(d);
        }
    }
    let kind = kind?;
    let mut labels = raw.labels.value.clone();
    labels.insert("kind".into(), kind.name().into());
    labels.insert("platform".into(), kind.platform().into());
    let connection = connection(ck, b, kind)?;
    let power = raw.power.as_ref().and_then(|p| power(ck, p));
    let power_switch = raw.power_switch.as_ref().and_then(|s| {
        let Some((program, args)) = s.value.command.value.split_first() else {
            let d = ck
                .at(&s.value.command.span, "`command` is empty")
                .help("e.g. command = [\"uhubctl\", \"-l\", \"1-1\", \"-p\", \"2\", \"-a\"]");
            ck.push(d);
            return None;
        };
        Some(PowerSwitch::Command {
            program: PathBuf::from(program),
            args: args.to_vec(),
            off_on_delay: duration(
                ck,
                s.value.off_on_delay.as_ref(),
                Duration::from_millis(500),
            ),
        })
    });
    Some(Board {
        id: raw.id.value.clone(),
        kind,
        labels,
        connection,
        power,
        power_switch,
        timeouts: timeouts(ck, raw.timeouts.as_ref()),
        health: raw
            .health
            .as_ref()
            .map(|h| health(ck, h, kind))
            .unwrap_or_default(),
        onnxruntime: raw.onnxruntime.as_ref().map(|p| {
            agent_started_here(ck, &p.span, "onnxruntime", kind);
            ck.readable_file(p, "onnxruntime library")
        }),
        cpus: raw
            .cpus
            .as_ref()
            .map(|c| {
                agent_started_here(ck, &c.span, "cpus", kind);
                cpus(ck, c)
            })
            .unwrap_or_default(),
    })
}

/// Reports `key` on a board whose agent the harness does not start (it runs on its own, or is
/// firmware), so nothing could hand the setting on.
fn agent_started_here(ck: &mut Ck, span: &Range<usize>, key: &str, kind: BoardKind) {
    if !matches!(
        kind,
        BoardKind::Local | BoardKind::LinuxSsh | BoardKind::Jetson
    ) {
        let d = ck
            .at(
                span,
                format!(
                    "`{key}` applies to boards the harness starts the agent on, not `{}`",
                    kind.name()
                ),
            )
            .help("local, linux-ssh and jetson boards take it");
        ck.push(d);
    }
}

/// CPUs a Linux affinity mask can name: the kernel's default `cpu_set_t` holds 1024.
const MAX_CPUS: i64 = 1024;

fn cpus(ck: &mut Ck, list: &Sp<Vec<Sp<i64>>>) -> Vec<u32> {
    if list.value.is_empty() {
        let d = ck
            .at(&list.span, "`cpus` is empty")
            .help("name at least one CPU, e.g. cpus = [3], or leave the key out");
        ck.push(d);
    }
    let mut cpus: Vec<u32> = Vec::new();
    for cpu in &list.value {
        match u32::try_from(cpu.value) {
            Ok(n) if cpu.value < MAX_CPUS => {
                if cpus.contains(&n) {
                    let d = ck
                        .at(&cpu.span, format!("CPU {n} is listed twice in `cpus`"))
                        .label("already listed");
                    ck.push(d);
                }
                cpus.push(n);
            }
            _ => {
                let d = ck
                    .at(
                        &cpu.span,
                        format!("`cpus` holds CPU numbers from 0 to {}", MAX_CPUS - 1),
                    )
                    .label(format!("found {}", cpu.value));
                ck.push(d);
            }
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

const HEALTH_REFUSALS: [&str; 3] = ["busy", "throttled", "governor"];

fn health(ck: &mut Ck, h: &Sp<HealthSection>, kind: BoardKind) -> HealthPolicy {
    if !matches!(kind, BoardKind::LinuxSsh | BoardKind::Jetson) {
        let d = ck
            .at(
                &h.span,
                format!(
                    "`[boards.health]` does not apply to board kind `{}`",
                    kind.name()
                ),
            )
            .label("only SSH boards get a health check")
            .help("remove it, or use kind = \"linux-ssh\" or \"jetson\"");
        ck.push(d);
    }
    let h = &h.value;
    let mut policy = HealthPolicy::default();
    for item in h.refuse.iter().flat_map(|r| &r.value) {
        match item.value.as_str() {
            "busy" => policy.refuse_busy = true,
            "throttled" => policy.refuse_throttled = true,
            "governor" => policy.refuse_governor = true,
            other => {
                let d = ck
                    .at(&item.span, format!("unknown health finding `{other}`"))
                    .label("not a finding the health check reports")
                    .help_opt(did_you_mean(other, &HEALTH_REFUSALS, "findings"));
                ck.push(d);
            }
        }
    }
    policy.max_temperature_c = h.max_temperature_c.as_ref().map(|t| {
        if !(t.value.is_finite() && t.value > 0.0) {
            let d = ck
                .at(
                    &t.span,
                    "`max_temperature_c` must be a temperature above 0 °C",
                )
                .label(format!("found {}", t.value));
            ck.push(d);
        }
        t.value
    });
    policy.min_free_disk_bytes =
        h.min_free_disk
            .as_ref()
            .and_then(|d| match units::parse(&d.value, &units::MEMORY) {
                Ok(bytes) => Some(bytes as u64),
                Err(e) => {
                    let diag = ck.at(&d.span, "invalid `min_free_disk`").label(e);
                    ck.push(diag);
                    None
                }
            });
    policy
}

fn duration(ck: &mut Ck, v: Option<&Sp<String>>, default: Duration) -> Duration {
    let Some(v) = v else { return default };
    match units::duration(&v.value) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            let e = ck.at(&v.span, "a timeout or delay must be longer than 0");
            ck.push(e);
            default
        }
        Err(msg) => {
            let e = ck.at(&v.span, "invalid duration").label(msg);
            ck.push(e);
            default
        }
    }
}

fn timeouts(ck: &mut Ck, t: Option<&TimeoutsSection>) -> Timeouts {
    let d = Timeouts::default();
    let Some(t) = t else { return d };
    Timeouts {
        connect: duration(ck, t.connect.as_ref(), d.connect),
        deploy: duration(ck, t.deploy.as_ref(), d.deploy),
        load: duration(ck, t.load.as_ref(), d.load),
        batch: duration(ck, t.batch.as_ref(), d.batch),
    }
}

/// Keys of a flat kind-dependent table that were written, with their spans.
type Present = Vec<(&'static str, Range<usize>)>;

macro_rules! present {
    ($s:expr; $($f:ident),*) => {{
        let mut v: Present = Vec::new();
        $( if let Some(x) = &$s.$f { v.push((stringify!($f), x.span.clone())); } )*
        v
    }};
}

/// Rejects keys that do not apply to `kind` and reports required keys that are missing.
fn applicable(
    ck: &mut Ck,
    table: &Range<usize>,
    present: &Present,
    kind: &str,
    what: &str,
    allowed: &[&str],
    required: &[&str],
) -> bool {
    let mut ok = true;
    for (key, span) in present {
        if !allowed.contains(key) {
            let d = ck
                .at(span, format!("`{key}` does not apply to {what} `{kind}`"))
                .label("not used by this kind")
                .help(if allowed.is_empty() {
                    format!("{what} `{kind}` takes no keys here")
                } else {
                    format!("keys for `{kind}`: {}", allowed.join(", "))
                });
            ck.push(d);
            ok = false;
        }
    }
    for key in required {
        if !present.iter().any(|(k, _)| k == key) {
            let d = ck
                .at(
                    table,
                    format!("missing required key `{key}` for {what} `{kind}`"),
                )
                .label(format!("this table needs `{key}`"));
            ck.push(d);
            ok = false;
        }
    }
    ok
}

fn connection(ck: &mut Ck, b: &Sp<BoardSection>, kind: BoardKind) -> Option<Connection> {
    let (allowed, required): (&[&str], &[&str]) = match kind {
        BoardKind::Local => (&["agent", "transport"], &[]),
        BoardKind::LinuxSsh | BoardKind::Jetson => (
            &[
                "host",
                "user",
                "port",
                "identity",
                "known_hosts",
                "options",
                "cache_dir",
                "arch",
            ],
            &["host"],
        ),
        BoardKind::LinuxTcp => (&["address", "token", "token_env"], &["address"]),
        BoardKind::LinuxSerial => (&["device", "baud"], &["device"]),
        BoardKind::Stm32Probe => (
            &["probe", "chip", "uart", "baud"],
            &["probe", "chip", "uart"],
        ),
        BoardKind::QemuStm32 => (&["machine", "qemu"], &["machine"]),
    };
    let Some(c) = &b.value.connection else {
        if kind == BoardKind::Local {
            return Some(Connection::Local {
                agent: AgentBinary::Bundled,
                transport: LocalTransport::Stdio,
            });
        }
        let d = ck
            .at(
                &b.span,
                format!(
                    "a `{}` board needs a [boards.connection] table",
                    kind.name()
                ),
            )
            .help(format!(
                "keys for `{}`: {}",
                kind.name(),
                allowed.join(", ")
            ));
        ck.push(d);
        return None;
    };
    let s: &ConnectionSection = &c.value;
    let present = present!(s; agent, transport, host, user, port, identity, known_hosts, options, cache_dir, arch, address, token, token_env, device, baud, probe, chip, uart, machine, qemu);
    if !applicable(
        ck,
        &c.span,
        &present,
        kind.name(),
        "a board of kind",
        allowed,
        required,
    ) {
        return None;
    }
    let text = |v: &Option<Sp<String>>| v.as_ref().map(|v| v.value.clone());
    let baud = |ck: &mut Ck, v: &Option<Sp<i64>>| {
        v.as_ref().map_or(DEFAULT_BAUD, |b| {
            u32::try_from(ck.at_least(b, 1, "baud")).unwrap_or(u32::MAX)
        })
    };
    Some(match kind {
        BoardKind::Local => {
            let agent = match &s.agent {
                None => AgentBinary::Bundled,
                Some(a) if a.value == "bundled" => AgentBinary::Bundled,
                Some(a) => AgentBinary::Path(ck.readable_file(a, "agent")),
            };
            let transport = match &s.transport {
                None => LocalTransport::Stdio,
                Some(t) => match &t.value {
                    KeywordOr::Keyword(k) if k == "stdio" => LocalTransport::Stdio,
                    KeywordOr::Keyword(k) if k == "tcp" => LocalTransport::Tcp,
                    KeywordOr::Keyword(k) => {
                        let d = ck
                            .at(&t.span, format!("unknown transport `{k}`"))
                            .label("not an accepted value")
                            .help_opt(did_you_mean(
                                k,
                                &["stdio", "tcp"],
                                "transports (or `{ serial = { host, agent } }`)",
                            ));
                        ck.push(d);
                        return None;
                    }
                    KeywordOr::Table(t) => LocalTransport::Serial {
                        host_side: SerialPort {
                            path: PathBuf::from(&t.serial.value.host),
                            baud: baud(ck, &t.serial.value.baud),
                        },
                        agent_side: PathBuf::from(&t.serial.value.agent),
                    },
                },
            };
            Connection::Local { agent, transport }
        }
        BoardKind::LinuxSsh | BoardKind::Jetson => {
            let port = s.port.as_ref().map(|p| {
                if !(1..=65535).contains(&p.value) {
                    let d = ck
                        .at(&p.span, "`port` must be 1–65535")
                        .label(format!("found {}", p.value));
                    ck.push(d);
                }
                u16::try_from(p.value).unwrap_or(22)
            });
            let known_hosts = match &s.known_hosts {
                None => KnownHostsPolicy::Strict,
                Some(k) => match &k.value {
                    KeywordOr::Keyword(w) if w == "strict" => KnownHostsPolicy::Strict,
                    KeywordOr::Keyword(w) if w == "accept-new" => KnownHostsPolicy::AcceptNew,
                    KeywordOr::Keyword(w) => {
                        let d = ck
                            .at(&k.span, format!("unknown known-hosts policy `{w}`"))
                            .help_opt(did_you_mean(
                                w,
                                &["strict", "accept-new"],
                                "policies (or `{ file = \"path\" }`)",
                            ));
                        ck.push(d);
                        KnownHostsPolicy::Strict
                    }
                    KeywordOr::Table(t) => KnownHostsPolicy::File(ck.path(&Sp {
                        span: k.span.clone(),
                        value: t.file.clone(),
                    })),
                },
            };
            for (key, value) in [("host", &s.host), ("user", &s.user)] {
                if let Some(v) = value
                    && v.value.starts_with('-')
                {
                    let d = ck
                        .at(&v.span, format!("`{key}` must not start with `-`"))
                        .label("ssh would read it as an option")
                        .help("put extra ssh options in `options`, not in the destination");
                    ck.push(d);
                }
            }
            Connection::Ssh(SshConnection {
                host: text(&s.host).unwrap_or_default(),
                user: text(&s.user),
                port,
                identity: s.identity.as_ref().map(|i| ck.path(i)),
                known_hosts,
                options: s
                    .options
                    .as_ref()
                    .map(|o| o.value.clone())
                    .unwrap_or_default(),
                cache_dir: text(&s.cache_dir).unwrap_or_else(|| ".cache/gauntlet".into()),
                arch: text(&s.arch).unwrap_or_else(|| "aarch64-unknown-linux-gnu".into()),
            })
        }
        BoardKind::LinuxTcp => Connection::Tcp {
            address: text(&s.address).unwrap_or_default(),
            token: token(ck, c, s)?,
        },
        BoardKind::LinuxSerial => Connection::Serial(SerialPort {
            path: PathBuf::from(text(&s.device).unwrap_or_default()),
            baud: baud(ck, &s.baud),
        }),
        BoardKind::Stm32Probe => Connection::Probe {
            probe: probe_selector(ck, s.probe.as_ref()?)?,
            chip: text(&s.chip).unwrap_or_default(),
            uart: SerialPort {
                path: PathBuf::from(text(&s.uart).unwrap_or_default()),
                baud: baud(ck, &s.baud),
            },
        },
        BoardKind::QemuStm32 => Connection::Qemu {
            machine: text(&s.machine).unwrap_or_default(),
            qemu: match &s.qemu {
                // A bare program name is looked up on PATH; anything with a slash is a file path.
                Some(q) if q.value.contains('/') => ck.path(q),
                Some(q) => PathBuf::from(&q.value),
                None => PathBuf::from("qemu-system-arm"),
            },
        },
    })
}

fn token(ck: &mut Ck, c: &Sp<ConnectionSection>, s: &ConnectionSection) -> Option<Secret> {
    match (&s.token, &s.token_env) {
        (Some(t), None) => Some(Secret(t.value.clone())),
        (None, Some(var)) => match std::env::var(&var.value) {
            Ok(v) if !v.is_empty() => Some(Secret(v)),
            _ => {
                let d = ck
                    .at(
                        &var.span,
                        format!("environment variable `{}` is not set", var.value),
                    )
                    .label("the token is read from here when the rig loads");
                ck.push(d);
                None
            }
        },
        _ => {
            let d = ck
                .at(
                    &c.span,
                    "a `linux-tcp` board needs exactly one of `token` and `token_env`",
                )
                .help("prefer token_env = \"GAUNTLET_TOKEN\" so the secret stays out of the file");
            ck.push(d);
            None
        }
    }
}

/// `VID:PID[:serial]`, VID and PID in hex (as `lsusb` and probe-rs print them).
pub(crate) fn parse_probe_selector(s: &str) -> Result<ProbeSelector, String> {
    let mut parts = s.splitn(3, ':');
    let hex = |p: Option<&str>, what: &str| -> Result<u16, String> {
        let p = p
            .filter(|p| !p.is_empty())
            .ok_or(format!("missing {what}"))?;
        if !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("{what} `{p}` is not hexadecimal"));
        }
        if p.len() > 4 {
            return Err(format!("{what} `{p}` has more than 4 hex digits"));
        }
        u16::from_str_radix(p, 16).map_err(|e| format!("{what} `{p}`: {e}"))
    };
    let vid = hex(parts.next(), "VID")?;
    let pid = hex(parts.next(), "PID")?;
    let serial = match parts.next() {
        Some("") => return Err("empty serial number after the second `:`".into()),
        other => other.map(str::to_string),
    };
    Ok(ProbeSelector { vid, pid, serial })
}

fn probe_selector(ck: &mut Ck, v: &Sp<String>) -> Option<ProbeSelector> {
    parse_probe_selector(&v.value)
        .map_err(|e| {
            let d = ck
                .at(&v.span, format!("bad probe selector `{}`", v.value))
                .label(e)
                .help("write `VID:PID` or `VID:PID:serial` in hex, e.g. \"0483:374b\" (see `probe-rs list`)");
            ck.push(d);
        })
        .ok()
}

#[derive(Clone, Copy)]
enum SensorType {
    Ina219,
    JetsonRails,
    Simulated,
}

fn power(ck: &mut Ck, p: &Sp<PowerSection>) -> Option<PowerSensorSpec> {
    let s = &p.value;
    let types = [
        ("ina219", SensorType::Ina219),
        ("jetson-rails", SensorType::JetsonRails),
        ("simulated", SensorType::Simulated),
    ];
    let ty = ck.one_of(&s.kind, "power sensor type", &types)?;
    let (allowed, required): (&[&str], &[&str]) = match ty {
        SensorType::Ina219 => (
            &[
                "i2c_bus",
                "address",
                "shunt_ohms",
                "max_current_a",
                "adc",
                "sample_hz",
            ],
            &["i2c_bus", "address", "shunt_ohms"],
        ),
        SensorType::JetsonRails => (&["hwmon", "rails", "sample_hz"], &["hwmon", "rails"]),
        SensorType::Simulated => (
            &["idle_watts", "active_watts", "bus_volts", "sample_hz"],
            &["idle_watts", "active_watts"],
        ),
    };
    let present = present!(s; i2c_bus, address, shunt_ohms, max_current_a, adc, sample_hz, hwmon, rails, idle_watts, active_watts, bus_volts);
    if !applicable(
        ck,
        &p.span,
        &present,
        &s.kind.value,
        "a power sensor of type",
        allowed,
        required,
    ) {
        return None;
    }
    let sample_hz = |ck: &mut Ck, default: f64| {
        s.sample_hz.as_ref().map_or(default, |h| {
            let hz = ck.positive(h, "sample_hz");
            if hz > MAX_SAMPLE_HZ {
                let d = ck
                    .at(&h.span, format!("`sample_hz` {hz} is beyond the power sampler's {MAX_SAMPLE_HZ:.0} samples/s"))
                    .label("too fast to sample");
                ck.push(d);
            }
            hz
        })
    };
    Some(match ty {
        SensorType::Ina219 => {
            let address = s.address.as_ref()?;
            let addr = u8::try_from(address.value).unwrap_or(0);
            if !(0x03..=0x77).contains(&address.value) {
                let d = ck
                    .at(
                        &address.span,
                        format!(
                            "I2C address {} is outside the 7-bit range 0x03–0x77",
                            address.value
                        ),
                    )
                    .label("not a valid I2C device address");
                ck.push(d);
            } else if !(0x40..=0x4F).contains(&addr) {
                // An error, not a warning: the chip's A0/A1 pins can only select these 16 addresses,
                // so any other value is certainly a mistake (often another device on the bus).
                let d = ck
                    .at(
                        &address.span,
                        format!("an INA219 cannot answer at {addr:#04x}"),
                    )
                    .label("INA219 addresses are 0x40–0x4F")
                    .help("the address is set by the A0/A1 pins; 0x40 when both are tied to GND");
                ck.push(d);
            }
            let shunt = s.shunt_ohms.as_ref()?;
            let shunt_ohms = ck.positive(shunt, "shunt_ohms");
            let max_current_a = s
                .max_current_a
                .as_ref()
                .map_or(INA219_MAX_SHUNT_VOLTS / shunt_ohms, |m| {
                    ck.positive(m, "max_current_a")
                });
            if max_current_a * shunt_ohms > INA219_MAX_SHUNT_VOLTS * (1.0 + 1e-9) {
                let m = s.max_current_a.as_ref()?;
                let d = ck
                    .at(&m.span, format!(
                        "{max_current_a} A through {shunt_ohms} Ω drops {:.0} mV, beyond the INA219's ±320 mV range",
                        max_current_a * shunt_ohms * 1e3
                    ))
                    .label("current out of range")
                    .help(format!("at most {:.3} A with this shunt", INA219_MAX_SHUNT_VOLTS / shunt_ohms));
                ck.push(d);
            }
            let adc = match &s.adc {
                None => AdcMode::Bits12,
                Some(a) => ck.one_of(a, "ADC mode", &AdcMode::KEYWORDS)?,
            };
            // Continuous mode converts shunt and bus in turn, so one sample takes two conversions.
            let max_hz = 1e6 / (2.0 * adc.conversion_us());
            let hz = sample_hz(ck, max_hz.floor());
            if let Some(h) = &s.sample_hz
                && hz > max_hz
            {
                let d = ck
                    .at(&h.span, format!("an INA219 in `{}` mode delivers at most {max_hz:.1} samples/s", adc.keyword()))
                    .label(format!("{hz} requested"))
                    .help("lower `sample_hz` or choose a faster `adc` mode (fewer bits or less averaging)");
                ck.push(d);
            }
            PowerSensorSpec::Ina219 {
                i2c_bus: PathBuf::from(&s.i2c_bus.as_ref()?.value),
                address: addr,
                shunt_ohms,
                max_current_a,
                adc,
                sample_hz: hz,
            }
        }
        SensorType::JetsonRails => {
            let rails = s.rails.as_ref()?;
            if rails.value.is_empty() {
                let d = ck
                    .at(&rails.span, "`rails` is empty")
                    .help("e.g. rails = [\"VDD_IN\"]");
                ck.push(d);
            }
            PowerSensorSpec::JetsonRails {
                hwmon: PathBuf::from(&s.hwmon.as_ref()?.value),
                rails: rails.value.clone(),
                sample_hz: sample_hz(ck, 100.0),
            }
        }
        SensorType::Simulated => {
            let idle = s.idle_watts.as_ref()?;
            let active = s.active_watts.as_ref()?;
            let idle_watts = ck.positive(idle, "idle_watts");
            let active_watts = ck.positive(active, "active_watts");
            if active_watts < idle_watts {
                let d = ck
                    .at(&active.span, "`active_watts` is below `idle_watts`")
                    .label(format!("{active_watts} W < {idle_watts} W"));
                ck.push(d);
            }
            let bus_volts = s
                .bus_volts
                .as_ref()
                .map_or(5.0, |v| ck.positive(v, "bus_volts"));
            let full_scale = simulated_full_scale_a(active_watts, bus_volts);
            let measurable = INA219_MAX_SHUNT_VOLTS / SIMULATED_SHUNT_OHMS;
            if full_scale > measurable * (1.0 + 1e-9) {
                let bus = if s.bus_volts.is_some() {
                    ""
                } else {
                    " (the default)"
                };
                let d = ck
                    .at(&active.span, format!(
                        "{active_watts} W at {bus_volts} V{bus} draws {:.2} A; the simulated INA219 needs {full_scale:.2} A of range with headroom, but its {SIMULATED_SHUNT_OHMS} Ω shunt measures at most {measurable:.1} A",
                        active_watts / bus_volts
                    ))
                    .label("more than the simulated sensor can measure")
                    .help(format!(
                        "raise `bus_volts` to at least {:.1} V or lower `active_watts` to at most {:.1} W",
                        active_watts * 1.5 / measurable,
                        measurable / 1.5 * bus_volts
                    ));
                ck.push(d);
            }
            PowerSensorSpec::Simulated {
                idle_watts,
                active_watts,
                bus_volts,
                sample_hz: sample_hz(ck, 1000.0),
            }
        }
    })
}

/// Two boards cannot share one INA219 (same bus device and address).
fn shared_sensors(ck: &mut Ck, boards: &[Sp<BoardSection>]) {
    let mut seen: BTreeMap<(String, i64), &str> = BTreeMap::new();
    for b in boards {
        let Some(p) = &b.value.power else { continue };
        let (Some(bus), Some(addr)) = (&p.value.i2c_bus, &p.value.address) else {
            continue;
        };
        if p.value.kind.value != "ina219" {
            continue;
        }
        if let Some(other) = seen.insert((bus.value.clone(), addr.value), &b.value.id.value) {
            let d = ck
                .at(
                    &addr.span,
                    format!(
                        "board `{other}` already uses the INA219 at {:#04x} on `{}`",
                        addr.value, bus.value
                    ),
                )
                .label("sensor shared by two boards");
            ck.push(d);
        }
    }
}

/// The boards of `rig` a scenario may run on, in rig order: named ids, every board matching a
/// selector, and every candidate of a pool (the run takes `count` of those, [`pool_candidates`]);
/// all boards when the scenario names none. An unknown id, a selector matching nothing or a pool
/// with fewer candidates than its `count` is an error pointing into the scenario file.
pub fn select_boards<'r>(scenario: &Scenario, rig: &'r Rig) -> Result<Vec<&'r Board>, Diagnostics> {
    let t = &scenario.targets;
    if t.boards.is_empty() && t.selectors.is_empty() && t.pools.is_empty() {
        return Ok(rig.boards.iter().collect());
    }
    // Spans are not part of the validated scenario; re-read the file to point at the entry.
    let raw = crate::scenario::load_raw(&scenario.source.path).ok();
    let targets = raw
        .as_ref()
        .and_then(|l| l.raw.targets.as_ref().map(|t| (l, t)));
    let place = |span: Option<&Range<usize>>| match (targets, span) {
        (Some((l, _)), Some(s)) => l.locate(s),
        _ => None,
    };
    let ids: Vec<&str> = rig.boards.iter().map(|b| b.id.as_str()).collect();
    let rig_name = format!("rig `{}` ({})", rig.name, rig.source.path.display());
    let mut diags = Vec::new();
    let mut chosen = vec![false; rig.boards.len()];
    for (i, id) in t.boards.iter().enumerate() {
        match rig.boards.iter().position(|b| &b.id == id) {
            Some(k) => chosen[k] = true,
            None => diags.push(
                Diagnostic::new(format!("unknown board `{id}`"))
                    .at(place(
                        targets.and_then(|(_, t)| t.boards.get(i).map(|b| &b.span)),
                    ))
                    .label(format!("not a board of {rig_name}"))
                    .help_opt(did_you_mean(id, &ids, "boards in this rig")),
            ),
        }
    }
    for (i, sel) in t.selectors.iter().enumerate() {
        let mut any = false;
        for (k, b) in rig.boards.iter().enumerate() {
            if b.matches(sel) {
                chosen[k] = true;
                any = true;
            }
        }
        if !any {
            let labels: Vec<String> = rig
                .boards
                .iter()
                .map(|b| {
                    let l: Vec<String> = b.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("`{}` ({})", b.id, l.join(", "))
                })
                .collect();
            diags.push(
                Diagnostic::new("selector matches no board")
                    .at(place(
                        targets.and_then(|(_, t)| t.selectors.get(i).map(|s| &s.span)),
                    ))
                    .label(format!("no board of {rig_name} has these labels"))
                    .note(format!("boards: {}", labels.join("; "))),
            );
        }
    }
    for (i, pool) in t.pools.iter().enumerate() {
        let candidates = pool_candidates(t, pool, rig);
        for b in &candidates {
            if let Some(k) = rig.boards.iter().position(|r| r.id == b.id) {
                chosen[k] = true;
            }
        }
        if candidates.len() < pool.count {
            let ids: Vec<String> = candidates.iter().map(|b| format!("`{}`", b.id)).collect();
            diags.push(
                Diagnostic::new(format!(
                    "pool asks for {} board(s); {} of {rig_name} match",
                    pool.count,
                    candidates.len()
                ))
                .at(place(
                    targets.and_then(|(_, t)| t.pools.get(i).map(|p| &p.span)),
                ))
                .label("fewer boards carry these labels than `count`")
                .note(if ids.is_empty() {
                    "no board outside `boards` and `selectors` carries them".to_string()
                } else {
                    format!(
                        "matching, outside `boards` and `selectors`: {}",
                        ids.join(", ")
                    )
                }),
            );
        }
    }
    if !diags.is_empty() {
        return Err(Diagnostics { items: diags });
    }
    Ok(rig
        .boards
        .iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|(b, _)| b)
        .collect())
}

/// The boards a pool may take, in rig order: those carrying its labels that the scenario does not
/// run on anyway (named or matched by a selector).
pub fn pool_candidates<'r>(targets: &Targets, pool: &Pool, rig: &'r Rig) -> Vec<&'r Board> {
    rig.boards
        .iter()
        .filter(|b| b.matches(&pool.labels) && !targets.fixed(b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_selector_accepts_hex_with_optional_serial() {
        assert_eq!(
            parse_probe_selector("0483:374b"),
            Ok(ProbeSelector {
                vid: 0x0483,
                pid: 0x374b,
                serial: None
            })
        );
        assert_eq!(
            parse_probe_selector("0483:374B:066DFF49"),
            Ok(ProbeSelector {
                vid: 0x0483,
                pid: 0x374b,
                serial: Some("066DFF49".into())
            })
        );
        assert!(
            parse_probe_selector("0483")
                .unwrap_err()
                .contains("missing PID")
        );
        assert!(
            parse_probe_selector("stlink:374b")
                .unwrap_err()
                .contains("not hexadecimal")
        );
        assert!(
            parse_probe_selector("04831:374b")
                .unwrap_err()
                .contains("more than 4")
        );
        assert!(parse_probe_selector("0483:374b:").is_err());
    }

    #[test]
    fn ina219_default_rate_is_one_shunt_bus_pair_per_period() {
        // 12-bit: 2 × 532 µs per pair, ≈ 940 Hz as measured in FACTS.md.
        let hz = 1e6 / (2.0 * AdcMode::Bits12.conversion_us());
        assert!((939.0..941.0).contains(&hz), "{hz}");
    }
}
