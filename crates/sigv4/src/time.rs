//! The ISO-8601 "basic format" timestamps SigV4 uses (`20150830T123600Z`),
//! converted to and from seconds since the Unix epoch.
//!
//! Written out rather than taken from a date crate because the format is
//! fixed-width and must be parsed strictly: a lenient parser would accept
//! strings a signer never produces, and the string is hashed verbatim.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; signed so that a hostile date before 1970
/// is representable and simply fails the clock checks.
pub(crate) type UnixSeconds = i64;

/// Parses `YYYYMMDDTHHMMSSZ`. Returns `None` unless every field is in range.
pub(crate) fn parse_amz_date(s: &str) -> Option<UnixSeconds> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Formats seconds since the epoch as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_amz_date(t: UnixSeconds) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3_600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Parses an HTTP `Date` header (RFC 7231 forms), the fallback AWS accepts
/// when `X-Amz-Date` is absent.
pub(crate) fn parse_http_date(s: &str) -> Option<UnixSeconds> {
    let t = httpdate::parse_http_date(s).ok()?;
    to_unix(t)
}

/// Converts a `SystemTime` to signed Unix seconds (sub-second part dropped).
pub(crate) fn to_unix(t: SystemTime) -> Option<UnixSeconds> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok(),
        Err(e) => i64::try_from(e.duration().as_secs()).ok().map(|s| -s),
    }
}

/// Converts signed Unix seconds back to a `SystemTime`.
pub(crate) fn from_unix(t: UnixSeconds) -> SystemTime {
    let magnitude = Duration::from_secs(t.unsigned_abs());
    if t >= 0 {
        UNIX_EPOCH.checked_add(magnitude).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH.checked_sub(magnitude).unwrap_or(UNIX_EPOCH)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithm: exact for the proleptic
// Gregorian calendar, with no table and no floating point.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "20150830T123600Z",
            "19700101T000000Z",
            "20000229T235959Z",
            "20991231T000001Z",
        ] {
            let t = parse_amz_date(s);
            assert!(t.is_some(), "{s}");
            assert_eq!(t.map(format_amz_date).as_deref(), Some(s));
        }
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
    }

    #[test]
    fn rejects_out_of_range() {
        for s in [
            "20150230T123600Z",
            "20150830T243600Z",
            "20151330T123600Z",
            "2015083T1236000Z",
            "20150830 123600Z",
            "+0150830T123600Z",
            "2015-08-30T12:36",
            "",
            "20150830T123600Zx",
        ] {
            assert_eq!(parse_amz_date(s), None, "{s}");
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(1_440_938_160)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
