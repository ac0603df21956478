//! Quantities written with units in scenario and rig files ("20ms", "2mJ", "96KiB"), converted to
//! the base units of the validated types.

use std::time::Duration;

/// A kind of quantity: its accepted unit suffixes with their factor to the base unit.
pub(crate) struct Dimension {
    pub name: &'static str,
    pub units: &'static [(&'static str, f64)],
    pub example: &'static str,
}

/// Base unit: seconds.
pub(crate) const TIME: Dimension = Dimension {
    name: "duration",
    units: &[
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("min", 60.0),
        ("h", 3600.0),
    ],
    example: "\"10s\" or \"500ms\"",
};

/// Base unit: microseconds (what latency metrics are reported in).
pub(crate) const LATENCY: Dimension = Dimension {
    name: "latency",
    units: &[
        ("ns", 1e-3),
        ("us", 1.0),
        ("µs", 1.0),
        ("ms", 1e3),
        ("s", 1e6),
    ],
    example: "\"20ms\" or \"150us\"",
};

/// Base unit: joules.
pub(crate) const ENERGY: Dimension = Dimension {
    name: "energy",
    units: &[
        ("nJ", 1e-9),
        ("uJ", 1e-6),
        ("µJ", 1e-6),
        ("mJ", 1e-3),
        ("J", 1.0),
    ],
    example: "\"2mJ\" or \"150uJ\"",
};

/// Base unit: bytes. KB/MB are decimal, KiB/MiB binary, as everywhere else.
pub(crate) const MEMORY: Dimension = Dimension {
    name: "memory size",
    units: &[
        ("B", 1.0),
        ("KB", 1e3),
        ("KiB", 1024.0),
        ("MB", 1e6),
        ("MiB", 1_048_576.0),
        ("GB", 1e9),
        ("GiB", 1_073_741_824.0),
    ],
    example: "\"96KiB\" or \"1MiB\"",
};

/// Parses `"<number><unit>"` (spaces between allowed) into the dimension's base unit.
pub(crate) fn parse(text: &str, dim: &Dimension) -> Result<f64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = (text[..split].trim(), text[split..].trim());
    let accepted = || {
        dim.units
            .iter()
            .map(|(u, _)| *u)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if unit.is_empty() {
        return Err(format!(
            "a {} needs a unit, e.g. {} (units: {})",
            dim.name,
            dim.example,
            accepted()
        ));
    }
    let value: f64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("expected a {} such as {}", dim.name, dim.example))?;
    let factor = dim
        .units
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, f)| *f)
        .ok_or_else(|| format!("unknown {} unit `{unit}` (units: {})", dim.name, accepted()))?;
    if value < 0.0 {
        return Err(format!("a {} cannot be negative", dim.name));
    }
    let base = value * factor;
    if !base.is_finite() {
        return Err(format!("`{text}` is too large for a {}", dim.name));
    }
    Ok(base)
}

pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let seconds = parse(text, &TIME)?;
    // A finite f64 can still exceed what a Duration holds (≈584 billion years).
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("a {} of {seconds:e} s is too long to represent", TIME.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_base_units() {
        assert_eq!(parse("20ms", &LATENCY), Ok(20_000.0));
        assert_eq!(parse("150 us", &LATENCY), Ok(150.0));
        assert_eq!(parse("2mJ", &ENERGY), Ok(0.002));
        assert_eq!(parse("96KiB", &MEMORY), Ok(98_304.0));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2min"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn rejects_missing_wrong_or_negative_units() {
        assert!(parse("20", &LATENCY).unwrap_err().contains("needs a unit"));
        assert!(
            parse("20kg", &LATENCY)
                .unwrap_err()
                .contains("unknown latency unit `kg`")
        );
        assert!(parse("-3ms", &LATENCY).unwrap_err().contains("negative"));
        assert!(parse("fast", &LATENCY).is_err());
    }

    #[test]
    fn refuses_durations_too_long_to_represent() {
        let err = duration("100000000000000000000s").unwrap_err();
        assert!(err.contains("too long"), "{err}");
        assert!(duration("1e400s").is_err());
    }
}
