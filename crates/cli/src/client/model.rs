//! The CloudShell service model (the botocore `service-2.json` in docs/),
//! which the `cloudshell` commands are made from: one command per
//! operation, one option per request member, values typed by its shape.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::exit::CliError;

const SERVICE_MODEL: &str = include_str!("../../../../docs/cloudshell/service-2.json");

/// The parsed model.
pub fn model() -> &'static Value {
    static MODEL: OnceLock<Value> = OnceLock::new();
    // The file is part of the source tree and checked by the tests.
    MODEL.get_or_init(|| serde_json::from_str(SERVICE_MODEL).unwrap_or(Value::Null))
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// PascalCase name (`DescribeEnvironments`).
    pub name: String,
    /// The request path's operation (`describeEnvironments`).
    pub wire_name: String,
    /// The command (`describe-environments`).
    pub command: String,
    /// Its documentation, as text.
    pub doc: String,
    /// The request members.
    pub members: Vec<Member>,
}

/// One request member.
#[derive(Debug, Clone)]
pub struct Member {
    /// PascalCase name.
    pub name: String,
    /// The option (`environment-id`).
    pub option: String,
    /// Its shape's name.
    pub shape: String,
    /// Whether it must be given.
    pub required: bool,
    /// Its documentation, as text.
    pub doc: String,
}

/// `DescribeEnvironments` → `describe-environments`.
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && !chars[i - 1].is_uppercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

/// Documentation HTML as plain text.
fn plain(doc: Option<&Value>) -> String {
    let html = doc.and_then(Value::as_str).unwrap_or_default();
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The shape `name`.
pub fn shape(name: &str) -> Option<&'static Value> {
    model().get("shapes")?.get(name)
}

/// Every operation, in the model's (alphabetical) order.
pub fn operations() -> Vec<Operation> {
    let Some(ops) = model().get("operations").and_then(Value::as_object) else {
        return Vec::new();
    };
    ops.iter()
        .map(|(name, op)| {
            let input = op
                .pointer("/input/shape")
                .and_then(Value::as_str)
                .and_then(shape);
            let required: Vec<&str> = input
                .and_then(|s| s.get("required"))
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let members = input
                .and_then(|s| s.get("members"))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(mname, member)| Member {
                            name: mname.clone(),
                            option: kebab(mname),
                            shape: member
                                .get("shape")
                                .and_then(Value::as_str)
                                .unwrap_or("String")
                                .to_string(),
                            required: required.contains(&mname.as_str()),
                            doc: plain(member.get("documentation")),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let wire_name = op
                .pointer("/http/requestUri")
                .and_then(Value::as_str)
                .map(|u| u.trim_start_matches('/').to_string())
                .unwrap_or_else(|| name.clone());
            Operation {
                name: name.clone(),
                wire_name,
                command: kebab(name),
                doc: plain(op.get("documentation")),
                members,
            }
        })
        .collect()
}

/// The type of shape `name` (`string`, `structure`, `list`, …).
pub fn shape_type(name: &str) -> &'static str {
    shape(name)
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("string")
}

/// A command-line value for a member of shape `shape_name`: JSON when it
/// looks like JSON, the AWS CLI shorthand otherwise, typed by the shape.
/// `values` holds several for list members given as `--x a b`.
pub fn parse_value(option: &str, shape_name: &str, values: &[String]) -> Result<Value, CliError> {
    let kind = shape_type(shape_name);
    let bad = |why: String| CliError::usage(format!("Error parsing parameter '--{option}': {why}"));
    let loaded: Vec<String> = values
        .iter()
        .map(|v| load_file(v).map_err(|e| bad(e.to_string())))
        .collect::<Result<_, _>>()?;
    let joined = loaded.join(",");
    let trimmed = joined.trim_start();
    if matches!(kind, "structure" | "list" | "map")
        && (trimmed.starts_with('{') || trimmed.starts_with('['))
        && loaded.len() == 1
    {
        if let Ok(json) = serde_json::from_str::<Value>(&loaded[0]) {
            return typed(&json, shape_name).map_err(bad);
        }
        if trimmed.starts_with('{') && kind != "list" {
            return Err(bad(format!("Invalid JSON: {}", loaded[0])));
        }
    }
    let tree = match kind {
        "structure" | "map" => shorthand::parse_object(&joined).map_err(bad)?,
        "list" if loaded.len() > 1 => Value::Array(
            loaded
                .iter()
                .map(|v| shorthand::parse_value(v))
                .collect::<Result<_, _>>()
                .map_err(bad)?,
        ),
        "list" => match shorthand::parse_value(&joined).map_err(bad)? {
            Value::Array(a) => Value::Array(a),
            one => Value::Array(vec![one]),
        },
        _ => Value::String(loaded.join(" ")),
    };
    typed(&tree, shape_name).map_err(bad)
}

/// `file://path` reads the file, as in the AWS CLI.
fn load_file(value: &str) -> std::io::Result<String> {
    match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path),
        None => Ok(value.to_string()),
    }
}

/// Converts strings to the types the shape says, checking member names.
pub fn typed(value: &Value, shape_name: &str) -> Result<Value, String> {
    let s = shape(shape_name);
    match shape_type(shape_name) {
        "structure" => {
            let obj = value
                .as_object()
                .ok_or_else(|| format!("expected a structure for {shape_name}"))?;
            let members = s
                .and_then(|s| s.get("members"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut out = Map::new();
            for (k, v) in obj {
                let member = members.get(k).ok_or_else(|| {
                    let valid: Vec<&String> = members.keys().collect();
                    format!(
                        "Unknown parameter in {shape_name}: \"{k}\", must be one of: {}",
                        valid
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                let ms = member
                    .get("shape")
                    .and_then(Value::as_str)
                    .unwrap_or("String");
                out.insert(k.clone(), typed(v, ms)?);
            }
            for r in s
                .and_then(|s| s.get("required"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !out.contains_key(r) {
                    return Err(format!(
                        "Missing required parameter in {shape_name}: \"{r}\""
                    ));
                }
            }
            Ok(Value::Object(out))
        }
        "list" => {
            let member = s
                .and_then(|s| s.pointer("/member/shape"))
                .and_then(Value::as_str)
                .unwrap_or("String");
            match value {
                Value::Array(items) => Ok(Value::Array(
                    items
                        .iter()
                        .map(|i| typed(i, member))
                        .collect::<Result<_, _>>()?,
                )),
                one => Ok(Value::Array(vec![typed(one, member)?])),
            }
        }
        "map" => {
            let vshape = s
                .and_then(|s| s.pointer("/value/shape"))
                .and_then(Value::as_str)
                .unwrap_or("String");
            let obj = value.as_object().ok_or("expected a map")?;
            let mut out = Map::new();
            for (k, v) in obj {
                out.insert(k.clone(), typed(v, vshape)?);
            }
            Ok(Value::Object(out))
        }
        "integer" | "long" => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(t) => t
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("invalid literal for int: {t:?}")),
            _ => Err("expected an integer".into()),
        },
        "boolean" => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(t) if t.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(t) if t.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err("expected true or false".into()),
        },
        _ => match value {
            Value::String(t) => {
                if let Some(allowed) = s.and_then(|s| s.get("enum")).and_then(Value::as_array) {
                    if !allowed.iter().any(|a| a.as_str() == Some(t)) {
                        let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                        return Err(format!("{t:?} is not one of {}", names.join(", ")));
                    }
                }
                Ok(value.clone())
            }
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(format!("expected a string for {shape_name}")),
        },
    }
}

/// The AWS CLI's shorthand syntax: `Key=value,Key2=[a,b],Key3={K=V}`;
/// bare values after a `Key=value` extend it to a list (`Ids=a,b`).
mod shorthand {
    use serde_json::{Map, Value};

    struct Parser<'a> {
        chars: Vec<char>,
        pos: usize,
        _text: &'a str,
    }

    /// Parses `Key=value,...` into an object of strings and lists.
    pub fn parse_object(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            chars: text.chars().collect(),
            pos: 0,
            _text: text,
        };
        let v = p.object(None)?;
        if p.pos < p.chars.len() {
            return Err(format!("unexpected {:?} at {}", p.chars[p.pos], p.pos));
        }
        Ok(v)
    }

    /// Parses one value: `[a,b]`, `{K=V}` or a plain string.
    pub fn parse_value(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            chars: text.chars().collect(),
            pos: 0,
            _text: text,
        };
        if p.peek() == Some('[') || p.peek() == Some('{') {
            let v = p.value()?;
            if p.pos < p.chars.len() {
                return Err(format!("unexpected {:?} at {}", p.chars[p.pos], p.pos));
            }
            return Ok(v);
        }
        let items: Vec<Value> = split_top(text)
            .into_iter()
            .map(|s| Value::String(s.trim().to_string()))
            .collect();
        Ok(if items.len() == 1 {
            items.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(items)
        })
    }

    fn split_top(text: &str) -> Vec<String> {
        text.split(',').map(str::to_string).collect()
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<char> {
            self.chars.get(self.pos).copied()
        }

        fn object(&mut self, close: Option<char>) -> Result<Value, String> {
            let mut map = Map::new();
            let mut last: Option<String> = None;
            loop {
                self.skip_ws();
                if self.peek().is_none() || self.peek() == close {
                    break;
                }
                let start = self.pos;
                let word = self.word(&['=', ',', '}', ']'])?;
                if self.peek() == Some('=') {
                    self.pos += 1;
                    let key = word.trim().to_string();
                    if key.is_empty() {
                        return Err(format!("a key is missing at {start}"));
                    }
                    let v = self.value()?;
                    map.insert(key.clone(), v);
                    last = Some(key);
                } else {
                    // A bare value continues the previous key as a list.
                    let key = last
                        .clone()
                        .ok_or_else(|| format!("expected Key=value at {start}"))?;
                    let entry = map.get_mut(&key).ok_or("internal")?;
                    let prev = std::mem::take(entry);
                    *entry = match prev {
                        Value::Array(mut a) => {
                            a.push(Value::String(word.trim().to_string()));
                            Value::Array(a)
                        }
                        other => Value::Array(vec![other, Value::String(word.trim().to_string())]),
                    };
                }
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    None => break,
                    Some(c) if Some(c) == close => break,
                    Some(c) => return Err(format!("unexpected {c:?} at {}", self.pos)),
                }
            }
            Ok(Value::Object(map))
        }

        fn value(&mut self) -> Result<Value, String> {
            self.skip_ws();
            match self.peek() {
                Some('[') => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    loop {
                        self.skip_ws();
                        if self.peek() == Some(']') {
                            self.pos += 1;
                            break;
                        }
                        items.push(self.value()?);
                        self.skip_ws();
                        match self.peek() {
                            Some(',') => self.pos += 1,
                            Some(']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err("a list must end with ]".into()),
                        }
                    }
                    Ok(Value::Array(items))
                }
                Some('{') => {
                    self.pos += 1;
                    let v = self.object(Some('}'))?;
                    if self.peek() != Some('}') {
                        return Err("a structure must end with }".into());
                    }
                    self.pos += 1;
                    Ok(v)
                }
                Some('"') | Some('\'') => {
                    let quote = self.peek().unwrap_or('"');
                    self.pos += 1;
                    let mut s = String::new();
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == quote {
                            return Ok(Value::String(s));
                        }
                        s.push(c);
                    }
                    Err("an unterminated quote".into())
                }
                _ => Ok(Value::String(
                    self.word(&[',', '}', ']'])?.trim().to_string(),
                )),
            }
        }

        fn word(&mut self, stops: &[char]) -> Result<String, String> {
            let mut s = String::new();
            while let Some(c) = self.peek() {
                if stops.contains(&c) {
                    break;
                }
                s.push(c);
                self.pos += 1;
            }
            Ok(s)
        }

        fn skip_ws(&mut self) {
            while self.peek().is_some_and(char::is_whitespace) {
                self.pos += 1;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_operation_of_the_model_is_a_command() {
        let ops = operations();
        let names: Vec<&str> = ops.iter().map(|o| o.command.as_str()).collect();
        for expected in [
            "approve-command",
            "create-environment",
            "create-session",
            "delete-environment",
            "delete-session",
            "describe-environments",
            "get-environment-status",
            "get-file-download-urls",
            "get-file-upload-urls",
            "get-layout",
            "put-credentials",
            "resume-session",
            "send-heart-beat",
            "start-environment",
            "stop-environment",
            "update-layout",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        let status = ops
            .iter()
            .find(|o| o.name == "GetEnvironmentStatus")
            .expect("op");
        assert_eq!(status.wire_name, "getEnvironmentStatus");
        assert_eq!(status.members[0].option, "environment-id");
        assert!(status.members[0].required);
    }

    #[test]
    fn shorthand_and_json_give_the_same_structure() {
        let want = json!({"VpcId": "vpc-1", "SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]});
        for given in [
            "VpcId=vpc-1,SubnetIds=[subnet-a,subnet-b],SecurityGroupIds=[sg-1]",
            "VpcId=vpc-1,SubnetIds=subnet-a,subnet-b,SecurityGroupIds=sg-1",
            r#"{"VpcId": "vpc-1", "SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]}"#,
        ] {
            let v = parse_value("vpc-config", "VpcConfig", &[given.to_string()]).expect(given);
            assert_eq!(v, want, "{given}");
        }
        let list =
            parse_value("subnet-ids", "SubnetIdList", &["a".into(), "b".into()]).expect("list");
        assert_eq!(list, json!(["a", "b"]));
    }

    #[test]
    fn bad_parameters_are_usage_errors() {
        let e =
            parse_value("vpc-config", "VpcConfig", &["VpcId=vpc-1,Bogus=1".into()]).unwrap_err();
        assert_eq!(e.code, 252);
        assert!(
            e.message
                .contains("Unknown parameter in VpcConfig: \"Bogus\""),
            "{}",
            e.message
        );
        let e = parse_value("vpc-config", "VpcConfig", &["VpcId=vpc-1".into()]).unwrap_err();
        assert!(
            e.message.contains("Missing required parameter"),
            "{}",
            e.message
        );
        let e = parse_value("shell", "Shell", &["fish".into()]).unwrap_err();
        assert_eq!(e.code, 252);
    }

    #[test]
    fn names_turn_into_options() {
        assert_eq!(kebab("DescribeEnvironments"), "describe-environments");
        assert_eq!(kebab("EnvironmentId"), "environment-id");
        assert_eq!(kebab("SecurityGroupIds"), "security-group-ids");
        assert_eq!(kebab("VpcConfig"), "vpc-config");
    }
}
