//! `--output text`, as the AWS CLI's `awscli/text.py` writes it: one line
//! per object with its scalar values tab-separated in alphabetical order of
//! their keys, prefixed by the uppercased key it sits under; lists of
//! objects share one column set; missing values print `None`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{is_scalar, scalar};

/// The text of `value`.
pub fn render(value: &Value) -> String {
    let mut out = String::new();
    format(value, None, None, &mut out);
    out
}

fn format(
    value: &Value,
    identifier: Option<&str>,
    scalar_keys: Option<&[String]>,
    out: &mut String,
) {
    match value {
        Value::Object(map) => format_dict(map, identifier, scalar_keys, out),
        Value::Array(list) => format_list(list, identifier, out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn format_list(list: &[Value], identifier: Option<&str>, out: &mut String) {
    if list.is_empty() {
        return;
    }
    if list.iter().any(Value::is_object) {
        let keys = all_scalar_keys(list);
        for element in list {
            format(element, identifier, Some(&keys), out);
        }
    } else if list.iter().any(Value::is_array) {
        let (scalars, others): (Vec<&Value>, Vec<&Value>) = list.iter().partition(|v| is_scalar(v));
        if !scalars.is_empty() {
            format_scalar_list(&scalars, identifier, out);
        }
        for other in others {
            format(other, identifier, None, out);
        }
    } else {
        let all: Vec<&Value> = list.iter().collect();
        format_scalar_list(&all, identifier, out);
    }
}

fn format_scalar_list(elements: &[&Value], identifier: Option<&str>, out: &mut String) {
    match identifier {
        Some(id) => {
            for item in elements {
                out.push_str(&id.to_uppercase());
                out.push('\t');
                out.push_str(&scalar(item));
                out.push('\n');
            }
        }
        None => {
            let row: Vec<String> = elements.iter().map(|v| scalar(v)).collect();
            out.push_str(&row.join("\t"));
            out.push('\n');
        }
    }
}

fn format_dict(
    map: &Map<String, Value>,
    identifier: Option<&str>,
    scalar_keys: Option<&[String]>,
    out: &mut String,
) {
    let mut scalars: Vec<String> = Vec::new();
    let mut others: Vec<(&str, &Value)> = Vec::new();
    match scalar_keys {
        None => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let value = &map[key];
                if is_scalar(value) {
                    scalars.push(scalar(value));
                } else {
                    others.push((key, value));
                }
            }
        }
        Some(keys) => {
            for key in keys {
                scalars.push(scalar(map.get(key).unwrap_or(&Value::Null)));
            }
            let mut rest: Vec<&String> = map.keys().filter(|k| !keys.contains(k)).collect();
            rest.sort();
            for key in rest {
                others.push((key, &map[key]));
            }
        }
    }
    if !scalars.is_empty() {
        if let Some(id) = identifier {
            scalars.insert(0, id.to_uppercase());
        }
        out.push_str(&scalars.join("\t"));
        out.push('\n');
    }
    for (key, value) in others {
        format(value, Some(key), None, out);
    }
}

fn all_scalar_keys(list: &[Value]) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for item in list {
        if let Value::Object(map) = item {
            for (k, v) in map {
                if is_scalar(v) {
                    keys.insert(k.clone());
                }
            }
        }
    }
    keys.into_iter().collect()
}
