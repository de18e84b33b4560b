//! CloudTrail's timestamp format: ISO 8601 in UTC, whole seconds, `Z` suffix
//! (`2026-11-24T12:03:07Z`).

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Formats `time` the way CloudTrail prints `eventTime`.
#[must_use]
pub fn format(time: &DateTime<Utc>) -> String {
    time.trunc_subsecs(0)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses an RFC 3339 / ISO 8601 timestamp with an offset into UTC.
///
/// # Errors
/// Returns the parser's error when `text` is not such a timestamp.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

/// Serde adapter for a required CloudTrail timestamp.
pub(crate) mod required {
    use super::{format, parse, DateTime, Deserialize, Deserializer, Serializer, Utc};

    pub(crate) fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(time))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn prints_whole_seconds_with_z() {
        let t = Utc.with_ymd_and_hms(2014, 7, 16, 15, 49, 27).single();
        let t = t.map(|t| t + chrono::Duration::milliseconds(987));
        assert_eq!(
            t.map(|t| format(&t)).as_deref(),
            Some("2014-07-16T15:49:27Z")
        );
    }

    #[test]
    fn parses_offsets_into_utc() {
        let t = parse("2014-07-16T17:49:27+02:00").map(|t| format(&t));
        assert_eq!(t.ok().as_deref(), Some("2014-07-16T15:49:27Z"));
        assert!(parse("yesterday").is_err());
    }
}
