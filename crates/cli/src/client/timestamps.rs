//! Timestamps in responses, printed in ISO 8601 as the AWS CLI v2 does
//! (`cli_timestamp_format = iso8601`: `2019-10-25T00:12:52+00:00`); the
//! output shape tells which members are timestamps.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::model;

fn iso8601(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let whole =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");
    let fraction = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
    );
    let formatted = if t.nanosecond() == 0 {
        t.format(&whole)
    } else {
        t.format(&fraction)
    };
    formatted.unwrap_or_else(|_| t.to_string())
}

/// One wire timestamp (epoch seconds or an ISO 8601 string) in ISO 8601.
pub fn normalize(value: &Value) -> Value {
    let parsed = match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128).ok()),
        Value::String(s) => OffsetDateTime::parse(s, &Rfc3339).ok(),
        _ => None,
    };
    match parsed {
        Some(t) => Value::String(iso8601(t)),
        None => value.clone(),
    }
}

/// Rewrites every timestamp member of `value` (of shape `shape_name`).
pub fn rewrite(value: &mut Value, shape_name: &str) {
    let Some(shape) = model::shape(shape_name) else {
        return;
    };
    match model::shape_type(shape_name) {
        "timestamp" => *value = normalize(value),
        "structure" => {
            let (Some(members), Some(obj)) = (
                shape.get("members").and_then(Value::as_object),
                value.as_object_mut(),
            ) else {
                return;
            };
            for (name, member) in members {
                if let (Some(v), Some(s)) = (
                    obj.get_mut(name),
                    member.get("shape").and_then(Value::as_str),
                ) {
                    rewrite(v, s);
                }
            }
        }
        "list" => {
            if let (Some(items), Some(s)) = (
                value.as_array_mut(),
                shape.pointer("/member/shape").and_then(Value::as_str),
            ) {
                for item in items {
                    rewrite(item, s);
                }
            }
        }
        "map" => {
            if let (Some(obj), Some(s)) = (
                value.as_object_mut(),
                shape.pointer("/value/shape").and_then(Value::as_str),
            ) {
                for v in obj.values_mut() {
                    rewrite(v, s);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_timestamps_print_in_iso_8601() {
        assert_eq!(
            normalize(&json!(1571962372)),
            json!("2019-10-25T00:12:52+00:00")
        );
        assert_eq!(
            normalize(&json!("2019-10-25T00:12:52Z")),
            json!("2019-10-25T00:12:52+00:00")
        );
        assert_eq!(
            normalize(&json!("2019-10-25T00:12:52.5Z")),
            json!("2019-10-25T00:12:52.500000+00:00")
        );
        let mut v = json!({"FileDownloadPresignedUrl": "http://x", "ExpiresAt": 1571962372});
        rewrite(&mut v, "GetFileDownloadUrlsResponse");
        assert_eq!(v["ExpiresAt"], "2019-10-25T00:12:52+00:00");
        assert_eq!(v["FileDownloadPresignedUrl"], "http://x");
    }
}
