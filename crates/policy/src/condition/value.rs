//! Typed values of condition operators: numbers, dates, booleans, binary data
//! and IP addresses, parsed the same way on the policy side and the request side.

use std::net::IpAddr;

use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};
use ipnet::IpNet;

/// Parses an IAM number: optional sign, digits, optional fraction. Unlike
/// `f64::from_str` it refuses `inf`, `NaN`, exponents and hex.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let int_ok = int.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    if int.is_empty() || !int_ok || !frac_ok {
        return None;
    }
    t.parse().ok().filter(|v: &f64| v.is_finite())
}

/// Parses an IAM date: ISO 8601 (date, date and time, with `Z`, an offset or
/// no zone — taken as UTC — and optional fractional seconds) or epoch seconds.
/// Returns nanoseconds since the epoch, so that all forms compare exactly.
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    let t = s.trim();
    // `aws:CurrentTime` and friends arrive in this one form on every request:
    // read it without the general parser.
    if let Some(nanos) = parse_utc_seconds(t) {
        return Some(nanos);
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) || t.starts_with('-') {
        let secs: i64 = t.parse().ok()?;
        return Some(i128::from(secs) * 1_000_000_000);
    }
    let nanos = |dt: NaiveDateTime| {
        let utc = dt.and_utc();
        i128::from(utc.timestamp()) * 1_000_000_000 + i128::from(utc.timestamp_subsec_nanos())
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(nanos(dt.naive_utc()));
    }
    for format in [
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, format) {
            return Some(nanos(dt.naive_utc()));
        }
    }
    let no_zone = t.strip_suffix(['Z', 'z']).unwrap_or(t);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(no_zone, format) {
            return Some(nanos(dt));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(no_zone, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(nanos);
    }
    None
}

/// `YYYY-MM-DDTHH:MM:SSZ` exactly, to nanoseconds since the epoch.
fn parse_utc_seconds(t: &str) -> Option<i128> {
    let b = t.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let mut n = 0i64;
        for &c in b.get(range)? {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(c - b'0');
        }
        Some(n)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32, day as u32)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = i64::from(date.num_days_from_ce()) - 719_163; // 1970-01-01
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(i128::from(secs) * 1_000_000_000)
}

/// Parses `true`/`false` (any case).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Decodes base64 (standard alphabet, padding optional).
pub(crate) fn parse_binary(s: &str) -> Option<Vec<u8>> {
    let t = s.trim();
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t))
        .ok()
}

/// Parses a policy-side address: a CIDR block or a single address (taken as /32
/// or /128).
pub(crate) fn parse_cidr(s: &str) -> Option<IpNet> {
    let t = s.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Some(net);
    }
    t.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Parses a request-side address. IPv4-mapped IPv6 addresses are compared as
/// IPv4, so a dual-stack listener does not slip past an IPv4 block.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("10"), Some(10.0));
        assert_eq!(parse_number("-1.5"), Some(-1.5));
        assert_eq!(parse_number("+3"), Some(3.0));
        assert_eq!(parse_number("007"), Some(7.0));
        for bad in [
            "", "-", "1.", ".5", "1e3", "inf", "NaN", "0x10", "1,000", "1.2.3",
        ] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_in_every_form_agree() {
        let midnight = parse_date("2024-03-01T00:00:00Z");
        assert!(midnight.is_some());
        assert_eq!(parse_date("2024-03-01"), midnight);
        assert_eq!(parse_date("2024-03-01T00:00:00"), midnight);
        assert_eq!(parse_date("2024-03-01T00:00Z"), midnight);
        assert_eq!(parse_date("2024-03-01T01:00:00+01:00"), midnight);
        assert_eq!(parse_date("2024-02-29T19:00:00-05:00"), midnight);
        assert_eq!(parse_date("2024-03-01T00:00:00.000Z"), midnight);
        assert_eq!(parse_utc_seconds("2024-03-01T00:00:00Z"), midnight);
        assert_eq!(
            parse_utc_seconds("1969-12-31T23:59:59Z"),
            Some(-1_000_000_000)
        );
        assert_eq!(parse_utc_seconds("2024-02-30T00:00:00Z"), None);
        assert_eq!(parse_utc_seconds("2024-03-01T24:00:00Z"), None);
        assert_eq!(parse_date("1709251200"), midnight);
        assert!(parse_date("2024-03-01T00:00:00.5Z") > midnight);
        for bad in ["", "yesterday", "2024-13-01", "2024-02-30", "12:00"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn bools_binary_ips() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_binary("QmluYXJ5"), Some(b"Binary".to_vec()));
        assert_eq!(parse_binary("QQ"), Some(b"A".to_vec()));
        assert_eq!(parse_binary("!!"), None);
        assert_eq!(
            parse_cidr("203.0.113.0/24").map(|n| n.prefix_len()),
            Some(24)
        );
        assert_eq!(parse_cidr("203.0.113.7").map(|n| n.prefix_len()), Some(32));
        assert_eq!(
            parse_cidr("2001:db8::/32").map(|n| n.prefix_len()),
            Some(32)
        );
        assert_eq!(parse_cidr("300.0.0.0/8"), None);
        assert_eq!(
            parse_ip("::ffff:203.0.113.7"),
            "203.0.113.7".parse::<IpAddr>().ok()
        );
        assert_eq!(parse_ip("not-an-ip"), None);
    }
}
