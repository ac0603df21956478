//! Parsing of single CSV cells, straight from the record's bytes (no per-cell allocation).

/// A finite number. Surrounding ASCII whitespace is ignored, as pandas does.
///
/// Parsed as f64 (Rust's parser is correctly rounded, like pandas' default parser for the
/// 6-significant-digit values of the datasets here), so a later cast to f32 gives the reference
/// pipeline's values.
pub(crate) fn number(cell: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(cell.trim_ascii()).ok()?;
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A feature value as the model receives it: finite as f64 and still finite once rounded to f32
/// (`1e300` is a number but would reach the model as +inf). `Err(value)` is out of f32 range.
pub(crate) fn feature(cell: &[u8]) -> Option<Result<f32, f64>> {
    let value = number(cell)?;
    // f64 first, then f32: the reference pipeline's rounding.
    let narrowed = value as f32;
    Some(if narrowed.is_finite() {
        Ok(narrowed)
    } else {
        Err(value)
    })
}

/// Seconds since 1970-01-01 00:00:00 of a naive `YYYY-MM-DD HH:MM:SS[.fff]` timestamp (a `T`
/// separator also works; no time zone is applied), or a plain number of seconds.
pub(crate) fn timestamp(cell: &[u8]) -> Option<f64> {
    let cell = cell.trim_ascii();
    if let Some(seconds) = number(cell) {
        return Some(seconds);
    }
    let (date, time) = (cell.get(..10)?, cell.get(11..)?);
    if !matches!(cell[10], b' ' | b'T') || date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let year = digits(&date[..4])?;
    let month = digits(&date[5..7])?;
    let day = digits(&date[8..10])?;
    if time.len() < 8 || time[2] != b':' || time[5] != b':' {
        return None;
    }
    let hour = digits(&time[..2])?;
    let minute = digits(&time[3..5])?;
    let second = digits(&time[6..8])?;
    let fraction = match &time[8..] {
        [] => 0.0,
        [b'.', rest @ ..] if !rest.is_empty() && rest.iter().all(u8::is_ascii_digit) => {
            number(&time[8..])?
        }
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year as i64, month, day);
    Some((days * 86_400 + i64::from(hour * 3600 + minute * 60 + second)) as f64 + fraction)
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_as_f64_and_reject_junk() {
        assert_eq!(number(b"0.0559714"), Some(0.0559714));
        assert_eq!(number(b" -1.5e-3 "), Some(-0.0015));
        assert_eq!(number(b"32.0"), Some(32.0));
        for junk in [&b""[..], b"abc", b"1,5", b"nan", b"inf", b"\xff"] {
            assert_eq!(number(junk), None, "{:?}", String::from_utf8_lossy(junk));
        }
    }

    #[test]
    fn features_must_fit_an_f32() {
        assert_eq!(feature(b"1.5"), Some(Ok(1.5)));
        assert_eq!(feature(b"3.4e38"), Some(Ok(3.4e38)));
        assert_eq!(feature(b"1e300"), Some(Err(1e300)));
        assert_eq!(feature(b"-1e39"), Some(Err(-1e39)));
        assert_eq!(feature(b"x"), None);
    }

    #[test]
    fn timestamps_count_seconds_since_the_unix_epoch() {
        assert_eq!(timestamp(b"1970-01-01 00:00:00"), Some(0.0));
        // `date -u -d '2020-03-09 10:34:33' +%s` prints 1583750073.
        assert_eq!(timestamp(b"2020-03-09 10:34:33"), Some(1_583_750_073.0));
        assert_eq!(timestamp(b"2020-03-09T10:34:34"), Some(1_583_750_074.0));
        assert_eq!(timestamp(b"2000-02-29 23:59:59.25"), Some(951_868_799.25));
        assert_eq!(timestamp(b"12.5"), Some(12.5));
        for junk in [
            &b"2020-13-09 10:34:33"[..],
            b"2020-03-09",
            b"2020/03/09 10:34:33",
            b"2020-03-09 10:34:33.",
            b"x",
        ] {
            assert_eq!(timestamp(junk), None, "{:?}", String::from_utf8_lossy(junk));
        }
    }
}
