//! The AWS shared configuration file format: `[section]` headers, `key =
//! value` lines, `#`/`;` comments, and nested settings (a key with an empty
//! value followed by indented `subkey = value` lines, as `[services]`
//! sections use). Parsed into an editable document that is written back
//! with the comments and order it had.

use std::fmt::Write as _;

/// One line of a section's body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// `key = value`.
    Setting(String, String),
    /// `key =` followed by indented `subkey = value` lines.
    Nested(String, Vec<(String, String)>),
    /// A comment or blank line, kept as written.
    Other(String),
}

/// A `[name]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    name: String,
    lines: Vec<Line>,
}

/// A parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    /// Lines before the first section.
    preamble: Vec<String>,
    sections: Vec<Section>,
}

/// A line the format does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

fn is_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#') || t.starts_with(';')
}

fn split_setting(line: &str) -> Option<(String, String)> {
    let (k, v) = line.split_once('=')?;
    let k = k.trim();
    if k.is_empty() {
        return None;
    }
    Some((k.to_string(), v.trim().to_string()))
}

impl Ini {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Ini, ParseError> {
        let mut ini = Ini::default();
        for (i, raw) in text.lines().enumerate() {
            let number = i + 1;
            let err = |reason: &str| ParseError {
                line: number,
                reason: reason.to_string(),
            };
            if is_comment(raw) {
                match ini.sections.last_mut() {
                    Some(s) => s.lines.push(Line::Other(raw.to_string())),
                    None => ini.preamble.push(raw.to_string()),
                }
                continue;
            }
            let indented = raw.starts_with([' ', '\t']);
            let line = raw.trim();
            if !indented && line.starts_with('[') {
                let name = line
                    .strip_prefix('[')
                    .and_then(|l| l.split_once(']'))
                    .map(|(name, rest)| (name.trim(), rest.trim()))
                    .filter(|(_, rest)| rest.is_empty() || is_comment(rest))
                    .ok_or_else(|| err("a section header must be [name]"))?
                    .0;
                ini.sections.push(Section {
                    name: name.split_whitespace().collect::<Vec<_>>().join(" "),
                    lines: Vec::new(),
                });
                continue;
            }
            let section = ini
                .sections
                .last_mut()
                .ok_or_else(|| err("a setting before any [section]"))?;
            if indented {
                // A sub-setting of the nested key above, or a continuation.
                match section
                    .lines
                    .iter_mut()
                    .rev()
                    .find(|l| !matches!(l, Line::Other(_)))
                {
                    Some(Line::Nested(_, subs)) => {
                        let (k, v) = split_setting(line)
                            .ok_or_else(|| err("a nested setting must be key = value"))?;
                        subs.push((k, v));
                    }
                    Some(Line::Setting(_, value)) => {
                        // A continuation line of a value.
                        value.push('\n');
                        value.push_str(line);
                    }
                    _ => return Err(err("an indented line without a setting above it")),
                }
                continue;
            }
            let (k, v) = split_setting(line).ok_or_else(|| err("expected key = value"))?;
            if v.is_empty() {
                section.lines.push(Line::Nested(k, Vec::new()));
            } else {
                section.lines.push(Line::Setting(k, v));
            }
        }
        Ok(ini)
    }

    fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().rev().find(|s| s.name == name)
    }

    /// Whether `[name]` exists.
    pub fn has_section(&self, name: &str) -> bool {
        self.section(name).is_some()
    }

    /// The section names, in order.
    #[cfg(test)]
    pub fn section_names(&self) -> Vec<&str> {
        self.sections.iter().map(|s| s.name.as_str()).collect()
    }

    /// `key` of `[section]` (the last one, as later lines win).
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.section(section)?
            .lines
            .iter()
            .rev()
            .find_map(|l| match l {
                Line::Setting(k, v) if k == key => Some(v.as_str()),
                _ => None,
            })
    }

    /// `key.subkey` of `[section]` (a nested setting).
    pub fn get_nested(&self, section: &str, key: &str, subkey: &str) -> Option<&str> {
        self.section(section)?
            .lines
            .iter()
            .rev()
            .find_map(|l| match l {
                Line::Nested(k, subs) if k == key => subs
                    .iter()
                    .rev()
                    .find(|(s, _)| s == subkey)
                    .map(|(_, v)| v.as_str()),
                _ => None,
            })
    }

    fn section_mut(&mut self, name: &str) -> &mut Section {
        if let Some(i) = self.sections.iter().rposition(|s| s.name == name) {
            return &mut self.sections[i];
        }
        self.sections.push(Section {
            name: name.to_string(),
            lines: Vec::new(),
        });
        let last = self.sections.len() - 1;
        &mut self.sections[last]
    }

    /// Sets `key = value` in `[section]` (made if missing).
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        let s = self.section_mut(section);
        for line in s.lines.iter_mut() {
            if let Line::Setting(k, v) = line {
                if k == key {
                    *v = value.to_string();
                    return;
                }
            }
        }
        // New settings go before trailing blank lines.
        let at = s
            .lines
            .iter()
            .rposition(|l| !matches!(l, Line::Other(t) if t.trim().is_empty()))
            .map(|i| i + 1)
            .unwrap_or(0);
        s.lines
            .insert(at, Line::Setting(key.to_string(), value.to_string()));
    }

    /// Sets the nested `key.subkey = value` in `[section]`.
    pub fn set_nested(&mut self, section: &str, key: &str, subkey: &str, value: &str) {
        let s = self.section_mut(section);
        for line in s.lines.iter_mut() {
            if let Line::Nested(k, subs) = line {
                if k == key {
                    match subs.iter_mut().find(|(sk, _)| sk == subkey) {
                        Some((_, v)) => *v = value.to_string(),
                        None => subs.push((subkey.to_string(), value.to_string())),
                    }
                    return;
                }
            }
        }
        s.lines.push(Line::Nested(
            key.to_string(),
            vec![(subkey.to_string(), value.to_string())],
        ));
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.preamble {
            let _ = writeln!(out, "{line}");
        }
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 && !out.ends_with("\n\n") && !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "[{}]", section.name);
            for line in &section.lines {
                match line {
                    Line::Setting(k, v) => {
                        let mut parts = v.split('\n');
                        let _ = writeln!(out, "{k} = {}", parts.next().unwrap_or_default());
                        for more in parts {
                            let _ = writeln!(out, "    {more}");
                        }
                    }
                    Line::Nested(k, subs) => {
                        let _ = writeln!(out, "{k} =");
                        for (sk, sv) in subs {
                            let _ = writeln!(out, "  {sk} = {sv}");
                        }
                    }
                    Line::Other(text) => {
                        let _ = writeln!(out, "{text}");
                    }
                }
            }
        }
        out
    }
}

/// The section of profile `name` in the config file: `[default]` or
/// `[profile name]`.
pub fn config_section(profile: &str) -> String {
    if profile == "default" {
        "default".into()
    } else {
        format!("profile {profile}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# my settings
[default]
region = us-west-2
output = json

[profile seashell]
region = eu-west-1
services = seashell-services
s3 =
  max_concurrent_requests = 20
  addressing_style = path

[services seashell-services]
cloudshell =
  endpoint_url = http://127.0.0.1:8080/cloudshell
iam =
  endpoint_url = http://127.0.0.1:8080/iam
";

    #[test]
    fn parses_profiles_and_nested_settings() {
        let ini = Ini::parse(CONFIG).expect("parse");
        assert_eq!(
            ini.section_names(),
            ["default", "profile seashell", "services seashell-services"]
        );
        assert_eq!(ini.get("default", "region"), Some("us-west-2"));
        assert_eq!(ini.get("profile seashell", "region"), Some("eu-west-1"));
        assert_eq!(
            ini.get_nested("profile seashell", "s3", "addressing_style"),
            Some("path")
        );
        assert_eq!(
            ini.get_nested("services seashell-services", "cloudshell", "endpoint_url"),
            Some("http://127.0.0.1:8080/cloudshell")
        );
        assert_eq!(ini.get("profile seashell", "s3"), None);
        assert_eq!(config_section("default"), "default");
        assert_eq!(config_section("seashell"), "profile seashell");
    }

    #[test]
    fn writes_back_what_it_read_and_edits_in_place() {
        let mut ini = Ini::parse(CONFIG).expect("parse");
        assert_eq!(ini.render(), CONFIG);
        ini.set("default", "region", "us-east-1");
        ini.set_nested(
            "services seashell-services",
            "sts",
            "endpoint_url",
            "http://h/sts",
        );
        ini.set("profile new", "output", "yaml");
        let again = Ini::parse(&ini.render()).expect("reparse");
        assert_eq!(again.get("default", "region"), Some("us-east-1"));
        assert_eq!(again.get("default", "output"), Some("json"));
        assert_eq!(
            again.get_nested("services seashell-services", "sts", "endpoint_url"),
            Some("http://h/sts")
        );
        assert_eq!(again.get("profile new", "output"), Some("yaml"));
        assert!(again
            .render()
            .starts_with("# my settings\n[default]\nregion = us-east-1\n"));
    }

    #[test]
    fn credentials_files_and_spacing_variants() {
        let ini = Ini::parse("[default]\naws_access_key_id=AKIDEXAMPLE\n  \n[ other ]\naws_secret_access_key =  s3cr3t  \n; note\n")
            .expect("parse");
        assert_eq!(ini.get("default", "aws_access_key_id"), Some("AKIDEXAMPLE"));
        assert_eq!(ini.get("other", "aws_secret_access_key"), Some("s3cr3t"));
        assert_eq!(ini.get("missing", "x"), None);
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        assert_eq!(Ini::parse("region = x\n").unwrap_err().line, 1);
        assert_eq!(Ini::parse("[a]\nnot a setting\n").unwrap_err().line, 2);
        assert_eq!(Ini::parse("[a\n").unwrap_err().line, 1);
        assert_eq!(Ini::parse("[a]\n  x = 1\n").unwrap_err().line, 2);
    }
}
