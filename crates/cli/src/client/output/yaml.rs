//! `--output yaml` and `yaml-stream` (AWS CLI v2).

use serde_json::Value;

/// The YAML document of `value` (nothing for an empty response).
pub fn render(value: &Value) -> String {
    if value.is_null() || value.as_object().is_some_and(|o| o.is_empty()) {
        return String::new();
    }
    serde_yaml::to_string(value).unwrap_or_default()
}

/// Each page as an element of a YAML list, written as the pages come.
pub fn render_stream(pages: &[Value]) -> String {
    let mut out = String::new();
    for page in pages {
        let doc = serde_yaml::to_string(&vec![page]).unwrap_or_default();
        out.push_str(&doc);
    }
    out
}
