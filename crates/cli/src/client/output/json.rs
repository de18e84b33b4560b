//! `--output json`: four-space indentation, non-ASCII kept, a final
//! newline, as `json.dumps(indent=4, ensure_ascii=False)` writes it.

use serde::Serialize;
use serde_json::Value;

/// The JSON text of `value`; an empty response (`{}` or null) prints
/// nothing, as in the AWS CLI.
pub fn render(value: &Value) -> String {
    if value.is_null() || value.as_object().is_some_and(|o| o.is_empty()) {
        return String::new();
    }
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into memory cannot fail.
    let _ = value.serialize(&mut ser);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    text.push('\n');
    text
}
