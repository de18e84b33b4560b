//! `--output table`, as the AWS CLI's `awscli/formatter.py` (TableFormatter)
//! and `awscli/table.py` (MultiTable) draw it: a section titled with the
//! operation, one section per nested list or object, indented by `|`
//! borders; columns scaled to the widest section; a table wider than the
//! terminal (80 columns when stdout is not one) turns single-row sections
//! vertical.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{is_scalar, scalar};

#[derive(Debug, Default, Clone)]
struct Section {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    indent: usize,
    max_widths: Vec<usize>,
}

fn len(text: &str) -> usize {
    text.chars().count()
}

impl Section {
    fn update_widths(&mut self, row: &[String]) {
        if self.max_widths.is_empty() {
            self.max_widths = row.iter().map(|c| len(c)).collect();
        } else {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = self.max_widths.get_mut(i) {
                    *w = (*w).max(len(cell));
                }
            }
        }
    }

    fn add_header(&mut self, headers: Vec<String>) {
        self.update_widths(&headers);
        self.headers = headers;
    }

    fn add_row(&mut self, row: Vec<String>) {
        self.update_widths(&row);
        self.rows.push(row);
    }

    /// Column widths with `padding`, scaled so they sum to `max_width`.
    fn column_widths(&self, padding: usize, max_width: Option<usize>) -> Vec<usize> {
        let unscaled: Vec<usize> = self.max_widths.iter().map(|w| w + padding).collect();
        let Some(max_width) = max_width else {
            return unscaled;
        };
        if unscaled.is_empty() {
            return unscaled;
        }
        let total: usize = unscaled.iter().sum();
        let factor = max_width as f64 / total as f64;
        // Python's round(): halves to even.
        let mut scaled: Vec<i64> = unscaled
            .iter()
            .map(|w| (factor * *w as f64).round_ties_even() as i64)
            .collect();
        let mut off_by: i64 = scaled.iter().sum::<i64>() - max_width as i64;
        while off_by != 0 {
            let order: Vec<usize> = if off_by < 0 {
                (0..scaled.len()).rev().collect()
            } else {
                (0..scaled.len()).collect()
            };
            for i in order {
                if off_by > 0 {
                    scaled[i] -= 1;
                    off_by -= 1;
                } else {
                    scaled[i] += 1;
                    off_by += 1;
                }
                if off_by == 0 {
                    break;
                }
            }
        }
        scaled.into_iter().map(|w| w.max(0) as usize).collect()
    }

    fn total_width(&self, padding: usize, outer: usize) -> usize {
        let border = 2;
        let total: usize = self
            .column_widths(0, None)
            .iter()
            .map(|w| w + padding)
            .sum::<usize>()
            + border
            + 2 * outer;
        (len(&self.title) + border + 2 * outer).max(total)
    }
}

struct Styler {
    color: bool,
}

impl Styler {
    fn row(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m\x1b[34m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn indent(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[2m\x1b[33m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn center(text: &str, text_len: usize, length: usize, left: &str, right: &str) -> String {
    let start = (length / 2) as i64 - (text_len / 2) as i64 - 1;
    let start = start.max(0) as usize;
    let so_far = len(left) + start + text_len;
    let right_spaces = length.saturating_sub(len(right) + so_far);
    format!(
        "{left}{}{text}{}{right}",
        " ".repeat(start),
        " ".repeat(right_spaces)
    )
}

fn align_left(text: &str, text_len: usize, length: usize, left: &str, right: &str) -> String {
    let computed = text_len + 2 + len(left) + len(right);
    let padding = if length >= computed { 2 } else { 0 };
    let so_far = len(left) + padding + text_len;
    let fill = length.saturating_sub(so_far + len(right));
    format!(
        "{left}{}{text}{}{right}",
        " ".repeat(padding),
        " ".repeat(fill)
    )
}

/// The table of `value` titled `title`.
pub fn render(title: &str, value: &Value, color: bool, terminal_width: usize) -> String {
    let mut builder = Builder::default();
    if !builder.build(Some(title), value, 0) {
        return String::new();
    }
    let mut sections = builder.sections;
    let mut max_width = max_width(&sections);
    if max_width > terminal_width {
        to_vertical(&mut sections);
        max_width = self::max_width(&sections);
    }
    let styler = Styler { color };
    let mut out = String::new();
    out.push_str(&"-".repeat(max_width));
    out.push('\n');
    for section in &sections {
        render_section(section, max_width, &styler, &mut out);
    }
    out
}

fn max_width(sections: &[Section]) -> usize {
    sections
        .iter()
        .map(|s| s.total_width(4, s.indent))
        .max()
        .unwrap_or(0)
}

fn to_vertical(sections: &mut [Section]) {
    for section in sections.iter_mut() {
        if section.rows.len() == 1 && !section.headers.is_empty() {
            let mut vertical = Section {
                title: section.title.clone(),
                indent: section.indent,
                ..Section::default()
            };
            for (h, v) in section.headers.iter().zip(&section.rows[0]) {
                vertical.add_row(vec![h.clone(), v.clone()]);
            }
            *section = vertical;
        }
    }
}

/// Writes lines indented by `indent` border characters on both sides.
fn write_line(out: &mut String, indent: usize, styler: &Styler, line: &str) {
    let edge = styler.indent(&"|".repeat(indent));
    if indent > 0 {
        out.push_str(&edge);
    }
    out.push_str(line);
    if indent > 0 {
        out.push_str(&edge);
    }
    out.push('\n');
}

fn line_break(widths: &[usize]) -> String {
    let mut text = String::new();
    for (i, w) in widths.iter().enumerate() {
        if i == 0 {
            text.push_str(&format!("+{}+", "-".repeat(w.saturating_sub(2))));
        } else {
            text.push_str(&format!("{}+", "-".repeat(w.saturating_sub(1))));
        }
    }
    text
}

fn render_section(section: &Section, max_width: usize, styler: &Styler, out: &mut String) {
    let width = max_width.saturating_sub(section.indent * 2);
    let indent = section.indent;
    if !section.title.is_empty() {
        write_line(
            out,
            indent,
            styler,
            &center(&section.title, len(&section.title), width, "|", "|"),
        );
        if section.headers.is_empty() && section.rows.is_empty() {
            write_line(
                out,
                indent,
                styler,
                &format!("+{}+", "-".repeat(width.saturating_sub(2))),
            );
        }
    }
    if !section.headers.is_empty() {
        let widths = section.column_widths(4, Some(width));
        let mut line = String::new();
        for (i, (w, header)) in widths.iter().zip(&section.headers).enumerate() {
            let left = if i == 0 { "|" } else { "" };
            line.push_str(&center(header, len(header), *w, left, "|"));
        }
        write_line(out, indent, styler, &line_break(&widths));
        write_line(out, indent, styler, &line);
    }
    if !section.rows.is_empty() {
        let widths = section.column_widths(4, Some(width));
        if widths.is_empty() {
            return;
        }
        write_line(out, indent, styler, &line_break(&widths));
        for row in &section.rows {
            let mut line = String::new();
            for (i, (w, cell)) in widths.iter().zip(row).enumerate() {
                let left = if i == 0 { "|" } else { "" };
                line.push_str(&align_left(&styler.row(cell), len(cell), *w, left, "|"));
            }
            write_line(out, indent, styler, &line);
        }
        write_line(out, indent, styler, &line_break(&widths));
    }
}

#[derive(Default)]
struct Builder {
    sections: Vec<Section>,
}

fn group_scalar_keys(map: &Map<String, Value>) -> (Vec<String>, Vec<String>) {
    let mut headers = Vec::new();
    let mut more = Vec::new();
    for (k, v) in map {
        if is_scalar(v) {
            headers.push(k.clone());
        } else {
            more.push(k.clone());
        }
    }
    headers.sort();
    more.sort();
    (headers, more)
}

impl Builder {
    fn new_section(&mut self, title: &str, indent: usize) {
        self.sections.push(Section {
            title: title.to_string(),
            indent,
            ..Section::default()
        });
    }

    fn current(&mut self) -> &mut Section {
        if self.sections.is_empty() {
            self.sections.push(Section::default());
        }
        let last = self.sections.len() - 1;
        &mut self.sections[last]
    }

    fn build(&mut self, title: Option<&str>, value: &Value, indent: usize) -> bool {
        let empty = match value {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Number(n) => n.as_f64() == Some(0.0),
        };
        if empty {
            return false;
        }
        if let Some(title) = title {
            self.new_section(title, indent);
        }
        match value {
            Value::Array(list) => {
                if list[0].is_object() {
                    self.sub_table_from_list(list, indent, title);
                } else {
                    for item in list {
                        match item {
                            Value::Array(inner) if inner.iter().all(is_scalar) => {
                                self.current().add_row(inner.iter().map(scalar).collect())
                            }
                            v if is_scalar(v) => self.current().add_row(vec![scalar(v)]),
                            other => {
                                self.build(None, other, 0);
                            }
                        }
                    }
                }
            }
            Value::Object(map) => self.sub_table_from_dict(map, indent),
            _ => {}
        }
        true
    }

    fn sub_table_from_dict(&mut self, map: &Map<String, Value>, indent: usize) {
        let (headers, more) = group_scalar_keys(map);
        if headers.len() == 1 {
            let row = vec![headers[0].clone(), scalar(&map[&headers[0]])];
            self.current().add_row(row);
        } else if !headers.is_empty() {
            let row = headers.iter().map(|k| scalar(&map[k])).collect();
            self.current().add_header(headers);
            self.current().add_row(row);
        }
        for key in more {
            self.build(Some(&key), &map[&key], indent + 1);
        }
    }

    fn sub_table_from_list(&mut self, list: &[Value], indent: usize, title: Option<&str>) {
        let mut headers = BTreeSet::new();
        let mut more = BTreeSet::new();
        for item in list {
            if let Value::Object(map) = item {
                let (h, m) = group_scalar_keys(map);
                headers.extend(h);
                more.extend(m);
            }
        }
        let headers: Vec<String> = headers.into_iter().collect();
        let more: Vec<String> = more.into_iter().collect();
        self.current().add_header(headers.clone());
        for (i, element) in list.iter().enumerate() {
            if i > 0 && !more.is_empty() {
                self.new_section(title.unwrap_or_default(), indent);
                self.current().add_header(headers.clone());
            }
            let row = headers
                .iter()
                .map(|h| element.get(h).map(scalar).unwrap_or_default())
                .collect();
            self.current().add_row(row);
            for key in &more {
                if let Some(v) = element.get(key) {
                    self.build(Some(key), v, indent + 1);
                }
            }
        }
    }
}
